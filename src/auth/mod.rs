//! Authentication of IdP and admin requests.
//!
//! Bearer tokens are compared as SHA-256 digests in constant time (`subtle`), against both the
//! tokens given in configuration and the ones `scimbridge token new` stored hashed. The stored
//! set is read on every check, so `token revoke` takes effect without a restart. A successful
//! check yields a `Principal` scoped to either the SCIM API or the admin API, never both.
//!
//! When `[[jwt]]` issuers are configured, a bearer value shaped like a JWT is validated as one
//! (`jwt.rs`, keys cached by `jwks.rs`, settings in `jwt_config.rs`); JWTs only reach the SCIM API.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::Secret;
use crate::store::{Store, TokenRecord};

mod jwks;
pub mod jwt;
pub mod jwt_config;

pub use jwks::CacheTiming;
pub use jwt::{looks_like_jwt, JwtRejection, JwtValidator};
pub use jwt_config::{JwtFile, JwtIssuer};

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Scim,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scim => "scim",
            Scope::Admin => "admin",
        }
    }
}

/// An authenticated caller: the credential's name (for audit) and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub scope: Scope,
}

/// The prefix of generated tokens, so secret scanners can recognise a leaked one.
pub const TOKEN_PREFIX: &str = "scb_";

/// A new token: 32 random bytes from the OS generator, hex-encoded.
pub fn generate_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

struct Known {
    name: String,
    digest: [u8; 32],
    scope: Scope,
}

/// Checks bearer tokens.
pub struct TokenAuth {
    configured: Vec<Known>,
    store: Store,
    jwt: Option<JwtValidator>,
    /// The stored tokens' digests, decoded once per change of the token set (keyed by
    /// `Store::tokens_version`) instead of on every request.
    stored: std::sync::RwLock<(u64, Vec<Known>)>,
}

/// Why a request did not authenticate; tells the middleware what to log and answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No bearer token at all.
    Missing,
    /// A token that matches no configured or stored token for the scope.
    InvalidToken,
    /// A JWT that failed validation.
    InvalidJwt(JwtRejection),
}

impl AuthFailure {
    /// The SCIM error `detail`: the reason stays in the log, the client learns only this.
    pub fn detail(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "A bearer token is required.",
            AuthFailure::InvalidToken | AuthFailure::InvalidJwt(_) => "The bearer token is not valid.",
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3); `invalid_token` for a refused JWT.
    pub fn www_authenticate(&self) -> &'static str {
        match self {
            AuthFailure::InvalidJwt(_) => "Bearer realm=\"scimbridge\", error=\"invalid_token\"",
            _ => "Bearer realm=\"scimbridge\"",
        }
    }
}

impl TokenAuth {
    pub fn new(store: Store, scim_tokens: &[Secret], admin_tokens: &[Secret]) -> TokenAuth {
        let mut configured = Vec::new();
        for (i, t) in scim_tokens.iter().enumerate() {
            configured.push(Known {
                name: format!("config-{}", i + 1),
                digest: digest(t.expose()),
                scope: Scope::Scim,
            });
        }
        for (i, t) in admin_tokens.iter().enumerate() {
            configured.push(Known {
                name: format!("admin-config-{}", i + 1),
                digest: digest(t.expose()),
                scope: Scope::Admin,
            });
        }
        TokenAuth { configured, store, jwt: None, stored: std::sync::RwLock::new((u64::MAX, Vec::new())) }
    }

    /// Also accepts JWTs from the validator's issuers (on the SCIM API).
    pub fn with_jwt(mut self, jwt: JwtValidator) -> TokenAuth {
        self.jwt = Some(jwt);
        self
    }

    /// Whether any IdP credential exists at all (a JWT issuer, or a token configured or stored).
    pub fn has_scim_tokens(&self) -> bool {
        self.jwt.is_some()
            || self.configured.iter().any(|k| k.scope == Scope::Scim)
            || self.store.tokens().map(|t| t.iter().any(|r| r.scope == Scope::Scim.as_str())).unwrap_or(false)
    }

    /// The principal a presented token belongs to, if it is valid for `scope`. Every known
    /// digest is compared, without early exit, so timing does not reveal which one matched.
    pub fn check(&self, presented: &str, scope: Scope) -> Option<Principal> {
        let d = digest(presented);
        let mut found: Option<Principal> = None;
        for k in &self.configured {
            if bool::from(k.digest.ct_eq(&d)) && k.scope == scope {
                found = Some(Principal { name: k.name.clone(), scope });
            }
        }
        self.with_stored(|stored| {
            for k in stored {
                if bool::from(k.digest.ct_eq(&d)) && k.scope == scope {
                    found = Some(Principal { name: k.name.clone(), scope });
                }
            }
        });
        found
    }

    /// Drops the cached set of stored tokens so the next check reads the store again (SIGHUP);
    /// returns how many tokens are stored.
    pub fn reload_stored(&self) -> usize {
        if let Ok(mut cache) = self.stored.write() {
            cache.0 = u64::MAX;
        }
        let mut n = 0;
        self.with_stored(|stored| n = stored.len());
        n
    }

    /// Runs `f` over the stored tokens, reloading them first if the set changed.
    fn with_stored(&self, f: impl FnOnce(&[Known])) {
        let version = self.store.tokens_version();
        if let Ok(cache) = self.stored.read() {
            if cache.0 == version {
                return f(&cache.1);
            }
        }
        let fresh: Vec<Known> = self
            .store
            .tokens()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|rec| {
                let digest: [u8; 32] = hex::decode(&rec.sha256).ok()?.try_into().ok()?;
                let scope = if rec.scope == Scope::Admin.as_str() { Scope::Admin } else { Scope::Scim };
                Some(Known { name: rec.name, digest, scope })
            })
            .collect();
        f(&fresh);
        if let Ok(mut cache) = self.stored.write() {
            *cache = (version, fresh);
        }
    }

    /// Checks a request's bearer value: a JWT when JWT issuers are configured and it is shaped
    /// like one, else a static token.
    ///
    /// # Errors
    /// An `AuthFailure` when the value is missing or not valid for `scope`.
    pub async fn authenticate(&self, presented: Option<&str>, scope: Scope) -> Result<Principal, AuthFailure> {
        let token = presented.ok_or(AuthFailure::Missing)?;
        match &self.jwt {
            Some(jwt) if looks_like_jwt(token) => jwt.check(token, scope).await.map_err(AuthFailure::InvalidJwt),
            _ => self.check(token, scope).ok_or(AuthFailure::InvalidToken),
        }
    }

    /// Creates and stores a new token, returning it (shown once; only its digest is kept).
    ///
    /// # Errors
    /// A storage error.
    pub fn issue(&self, name: &str, scope: Scope, now: &str) -> Result<Secret, crate::store::StoreError> {
        let token = generate_token();
        self.store.put_token(&TokenRecord {
            name: name.to_string(),
            sha256: hex::encode(digest(token.expose())),
            created: now.to_string(),
            scope: scope.as_str().to_string(),
        })?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_and_issued_tokens_authenticate_only_in_their_scope() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let auth =
            TokenAuth::new(store, &[Secret::new("idp-token-0123456789")], &[Secret::new("admin-token-0123456789")]);
        assert_eq!(auth.check("idp-token-0123456789", Scope::Scim).map(|p| p.name), Some("config-1".into()));
        assert!(auth.check("idp-token-0123456789", Scope::Admin).is_none());
        assert!(auth.check("admin-token-0123456789", Scope::Scim).is_none());
        assert!(auth.check("wrong", Scope::Scim).is_none());
        let issued = auth.issue("okta", Scope::Scim, "2026-01-01T00:00:00Z").expect("issue");
        assert!(issued.expose().starts_with(TOKEN_PREFIX) && issued.expose().len() == 68);
        assert_eq!(auth.check(issued.expose(), Scope::Scim).map(|p| p.name), Some("okta".into()));
    }

    #[test]
    fn a_revoked_token_stops_working_at_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let auth = TokenAuth::new(store.clone(), &[], &[]);
        let t = auth.issue("entra", Scope::Scim, "now").expect("issue");
        assert!(auth.has_scim_tokens());
        assert!(store.revoke_token("entra").expect("revoke"));
        assert!(auth.check(t.expose(), Scope::Scim).is_none());
        assert!(!auth.has_scim_tokens());
    }

    #[test]
    fn only_the_digest_is_stored() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let auth = TokenAuth::new(store.clone(), &[], &[]);
        let t = auth.issue("x", Scope::Scim, "now").expect("issue");
        let recs = store.tokens().expect("tokens");
        assert!(!serde_json::to_string(&recs[0]).expect("json").contains(t.expose()));
    }
}
