//! Who caused an action that is not an IdP change, and which run it belongs to: the [`Operator`]
//! every operator action carries (lifecycle runs, jobs retry/drop, token changes, link changes)
//! into the outbox, the delivery audit record and the run's report. It serializes as two plain
//! fields, `actor` and `run_id`, so it can be flattened into any JSON record.
//!
//! The actor names the credential or person: the admin token's name when the action came through
//! the admin API (with the CLI user the CLI forwarded in [`OPERATOR_HEADER`], as claimed by the
//! caller), `cli:$USER` when the CLI opened the store itself, `scheduler` for scheduled runs.

use serde::{Deserialize, Serialize};

/// The header the CLI sets to the local user it runs as, so an action made through the admin
/// API names the person as well as the token. The token is the authority; this is a label.
pub const OPERATOR_HEADER: &str = "X-Scimbridge-Operator";

/// The longest forwarded operator name kept (longer ones are refused).
const MAX_FORWARDED: usize = 64;

/// The actor and run id of one operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub actor: String,
    pub run_id: String,
}

impl Operator {
    /// `actor` starting a new run (a fresh, time-ordered run id).
    pub fn new(actor: impl Into<String>) -> Operator {
        Operator { actor: actor.into(), run_id: new_run_id() }
    }

    /// The same actor, a new run (each scheduled or repeated run gets its own id).
    pub fn next_run(&self) -> Operator {
        Operator::new(self.actor.clone())
    }

    /// The CLI working on the store directly: `cli:$USER` (or `$LOGNAME`, else `cli:unknown`).
    pub fn cli() -> Operator {
        Operator::new(format!("cli:{}", local_user().unwrap_or_else(|| "unknown".into())))
    }

    /// A scheduled lifecycle run.
    pub fn scheduler() -> Operator {
        Operator::new("scheduler")
    }

    /// A request on the admin API: the token's name, and the CLI user when one was forwarded
    /// (`admin-ops (cli:alice)`).
    ///
    /// # Errors
    /// When the forwarded name is empty, too long or has characters other than letters, digits
    /// and `._@-` (it ends up in logs, CSV and terminals), naming the header.
    pub fn from_admin(token_name: &str, forwarded: Option<&str>) -> Result<Operator, String> {
        match forwarded {
            None => Ok(Operator::new(token_name)),
            Some(user) => {
                let user = user.trim();
                let ok = !user.is_empty()
                    && user.len() <= MAX_FORWARDED
                    && user.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
                if !ok {
                    return Err(format!(
                        "{OPERATOR_HEADER} must be a user name of at most {MAX_FORWARDED} letters, digits or ._@- characters."
                    ));
                }
                Ok(Operator::new(format!("{token_name} (cli:{user})")))
            }
        }
    }
}

/// The local user the CLI runs as, from `USER`, else `LOGNAME`.
pub fn local_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operator_serializes_as_two_plain_fields() {
        let op = Operator { actor: "admin-ops".into(), run_id: "r1".into() };
        assert_eq!(serde_json::to_value(&op).expect("json"), serde_json::json!({"actor": "admin-ops", "run_id": "r1"}));
    }

    #[test]
    fn every_run_gets_its_own_id() {
        let a = Operator::new("x");
        assert_ne!(a.run_id, a.next_run().run_id);
        assert_eq!(a.next_run().actor, "x");
    }

    #[test]
    fn the_forwarded_cli_user_is_named_beside_the_token_and_checked() {
        assert_eq!(Operator::from_admin("admin-ops", Some("alice")).expect("ok").actor, "admin-ops (cli:alice)");
        assert_eq!(Operator::from_admin("admin-ops", None).expect("ok").actor, "admin-ops");
        for bad in ["", "a b", "x\ny", "al,ice", &"a".repeat(65)] {
            assert!(Operator::from_admin("t", Some(bad)).is_err(), "{bad:?}");
        }
    }
}
