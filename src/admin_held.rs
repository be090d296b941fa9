//! The intents the mass-offboarding brake holds (issue 12 §1): list, approve, reject. Shared by
//! the admin API (`http/admin_held.rs`) and the CLI on a stopped store (`cli_held.rs`), so both
//! give one answer. Every decision is audited with its actor and a run id of its own (an
//! approved batch is a run that `undo` can name).

use serde_json::{json, Value};

use crate::scim::ScimError;
use crate::store::{Operator, Store, StoreError, StoreResult};

/// Which held intents a decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Ids(Vec<u64>),
}

/// The held intents, oldest first, with the brake's figures.
pub fn list(store: &Store) -> StoreResult<Value> {
    let held = store.guard_held()?;
    Ok(json!({
        "total": held.len(),
        "guard": store.guard_status(),
        "held": held,
    }))
}

/// Approves (`approve`) or rejects the selected held intents in their original order. Unknown
/// job numbers refuse the whole decision (404 naming them): nothing is decided then.
pub fn decide(store: &Store, which: &Selection, approve: bool, op: &Operator) -> StoreResult<Value> {
    let ids = match which {
        Selection::All => None,
        Selection::Ids(ids) => {
            if ids.is_empty() {
                return Err(ScimError::invalid_value("Name the held jobs to decide on, or all of them.").into());
            }
            let mut unknown = Vec::new();
            for id in ids {
                if store.guard_held_get(*id)?.is_none() {
                    unknown.push(id.to_string());
                }
            }
            if !unknown.is_empty() {
                return Err(StoreError::Scim(ScimError::not_found(format!(
                    "Not held by the brake: {} (see `scimbridge held list`); nothing was decided.",
                    unknown.join(", ")
                ))));
            }
            Some(ids.as_slice())
        }
    };
    let t = chrono::Utc::now();
    let now = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let d = store.guard_decide(ids, approve, op, &now, u64::try_from(t.timestamp_millis()).unwrap_or(0))?;
    Ok(json!({
        "decision": if approve { "approve" } else { "reject" },
        "actor": op.actor,
        "run_id": op.run_id,
        "approved": d.approved.iter().map(|(job, new)| json!({"job": job, "as": new})).collect::<Vec<_>>(),
        "rejected": d.rejected,
        "still_held": store.guard_status().held,
    }))
}
