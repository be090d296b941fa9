//! Listing and revoking bearer tokens, shared by the admin API and the CLI: the stored ones
//! (hashed, revocable) and the ones given in the environment (`env:VAR#n`, which only a change of
//! that environment can take away, so a revoke says when the same value also comes from there).

use serde_json::{json, Value};

use crate::config::EnvToken;
use crate::store::{Store, StoreResult};

/// What `created` shows for a token from the environment.
pub const FROM_ENVIRONMENT: &str = "(environment)";

/// Every token the server accepts: stored ones, then the environment's. Never a token or digest.
///
/// # Errors
/// A store read error.
pub fn list(store: &Store, env: &[EnvToken]) -> StoreResult<Vec<Value>> {
    let mut out: Vec<Value> = store
        .tokens()?
        .into_iter()
        .map(|t| json!({"name": t.name, "scope": t.scope, "created": t.created, "source": "store"}))
        .collect();
    out.extend(env.iter().map(
        |t| json!({"name": t.name, "scope": t.scope.as_str(), "created": FROM_ENVIRONMENT, "source": "environment"}),
    ));
    Ok(out)
}

/// What `revoke` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoke {
    /// Removed from the store; the same value is still accepted from these `env:VAR#n`.
    Revoked { also_in_environment: Vec<String> },
    /// No stored token by that name.
    NotFound,
    /// The name is an environment token's: only changing the environment removes it.
    FromEnvironment { variable: String },
}

/// Revokes the stored token `name`, and says which environment tokens hold the same value.
///
/// # Errors
/// A store error.
pub fn revoke(store: &Store, env: &[EnvToken], name: &str) -> StoreResult<Revoke> {
    if let Some(t) = env.iter().find(|t| t.name == name) {
        let variable = t.name.trim_start_matches("env:").split('#').next().unwrap_or_default().to_string();
        return Ok(Revoke::FromEnvironment { variable });
    }
    let Some(record) = store.tokens()?.into_iter().find(|t| t.name == name) else { return Ok(Revoke::NotFound) };
    if !store.revoke_token(name)? {
        return Ok(Revoke::NotFound);
    }
    let also_in_environment = env
        .iter()
        .filter(|t| hex::encode(crate::auth::digest(t.secret.expose())) == record.sha256)
        .map(|t| t.name.clone())
        .collect();
    Ok(Revoke::Revoked { also_in_environment })
}

/// The operator's message for a revoke that left the value working in the environment.
pub fn still_in_environment(name: &str, names: &[String], whose: &str) -> String {
    let vars: Vec<&str> =
        names.iter().map(|n| n.trim_start_matches("env:").split('#').next().unwrap_or_default()).collect();
    format!(
        "revoked '{name}' in the store, but the same value is also set in {whose} environment ({}) and is still \
         accepted: remove it from {} there and restart the server",
        names.join(", "),
        vars.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Scope, TokenAuth};
    use crate::secret::Secret;

    #[test]
    fn a_revoke_names_the_environment_tokens_with_the_same_value() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let auth = TokenAuth::new(store.clone(), &[], &[]);
        let ops = auth.issue("ops", Scope::Admin, "2026-01-01T00:00:00Z").expect("issue");
        let other = auth.issue("other", Scope::Admin, "2026-01-01T00:00:00Z").expect("issue");
        let env = vec![
            EnvToken {
                name: "env:SCIMBRIDGE_ADMIN_TOKEN#1".into(),
                scope: Scope::Admin,
                secret: Secret::new("x".repeat(20)),
            },
            EnvToken { name: "env:SCIMBRIDGE_ADMIN_TOKEN#2".into(), scope: Scope::Admin, secret: ops.clone() },
        ];
        let listed = list(&store, &env).expect("list");
        let names: Vec<&str> = listed.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(names, ["ops", "other", "env:SCIMBRIDGE_ADMIN_TOKEN#1", "env:SCIMBRIDGE_ADMIN_TOKEN#2"]);
        assert!(!listed.iter().any(|t| t.to_string().contains(ops.expose())));
        assert_eq!(
            revoke(&store, &env, "ops").expect("revoke"),
            Revoke::Revoked { also_in_environment: vec!["env:SCIMBRIDGE_ADMIN_TOKEN#2".into()] }
        );
        assert_eq!(revoke(&store, &env, "other").expect("revoke"), Revoke::Revoked { also_in_environment: vec![] });
        assert_eq!(revoke(&store, &env, "ops").expect("revoke"), Revoke::NotFound);
        assert_eq!(
            revoke(&store, &env, "env:SCIMBRIDGE_ADMIN_TOKEN#1").expect("revoke"),
            Revoke::FromEnvironment { variable: "SCIMBRIDGE_ADMIN_TOKEN".into() }
        );
        drop(other);
    }
}
