//! Why each account was last taken away, per (target, SCIM user): the `deactivations` tree
//! (target 0x00 user id → [`Deactivation`]). Reactivation respects it (issue 12 §2): an account
//! deactivated for inactivity comes back on any IdP signal, one the IdP disabled only when the
//! IdP enables it (`policy/comeback.rs`, read by `intake.rs`).
//!
//! When it is written, and why both:
//! - when a lifecycle run QUEUES an offboarding (`queued`, in the same transaction as the intent):
//!   an IdP signal that arrives while the cleanup's deactivation still waits must bring the user
//!   back too, or the deactivation would land after the signal and stay;
//! - when an offboarding is DELIVERED (`delivered`, in the delivery's transaction): the truth of
//!   what happened to the account. A delivered create, reactivation or licence restore clears it.
//!
//! A queued record counts only while its job is still pending in the outbox: one superseded,
//! dropped, rejected or dead-lettered never happened, so it must not bring back (re-enable) an
//! account nobody deactivated for that reason. Records only move forward in job order, so an
//! older delivery never overwrites what a newer decision recorded.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{StoreError, StoreResult};
use super::keys;
use super::{tree, Store};

pub(crate) const DEACTIVATIONS: &str = "deactivations";

/// The last offboarding of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deactivation {
    /// The reason word (`crate::reason`).
    pub reason: String,
    /// The intent's action type (`deactivate`, `remove_license`, `delete`, `anonymize`).
    pub action: String,
    /// The job that did (or will do) it.
    pub job: u64,
    /// `queued` or `delivered`.
    pub state: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// What one record (a delivery or `queued` audit record) does to the account's entry.
pub(crate) enum Effect {
    Set(Vec<u8>, Vec<u8>, u64),
    Clear(Vec<u8>, u64),
}

fn action_type(record: &Value) -> &str {
    record.get("action").and_then(|a| a.get("type")).and_then(Value::as_str).unwrap_or_default()
}

fn text<'a>(record: &'a Value, k: &str) -> &'a str {
    record.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// The effect of `record` (of job `job`, in `state`), if it is about an account's existence.
pub(crate) fn effect(record: &Value, job: u64, state: &str) -> StoreResult<Option<Effect>> {
    if record.get("dry_run").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let key = keys::pair(text(record, "target"), text(record, "user_id"));
    let action = action_type(record);
    Ok(match action {
        "deactivate" | "remove_license" | "delete" | "anonymize" => {
            let d = Deactivation {
                reason: text(record, "reason").to_string(),
                action: action.to_string(),
                job,
                state: state.to_string(),
                at: text(record, "at").to_string(),
                run_id: record.get("run_id").and_then(Value::as_str).map(str::to_string),
            };
            Some(Effect::Set(key, serde_json::to_vec(&d).map_err(|e| StoreError::Corrupt(e.to_string()))?, job))
        }
        // Only a delivered restore clears: a queued one may yet be dropped.
        "create_user" | "reactivate" | "restore_license" if state == "delivered" => Some(Effect::Clear(key, job)),
        _ => None,
    })
}

type TxError = sled::transaction::ConflictableTransactionError<StoreError>;

/// Applies `e` inside a transaction: only forward in job order.
pub(crate) fn apply(t: &sled::transaction::TransactionalTree, e: &Effect) -> Result<(), TxError> {
    let (key, job) = match e {
        Effect::Set(k, _, j) | Effect::Clear(k, j) => (k, *j),
    };
    let newer = t
        .get(key.as_slice())?
        .and_then(|v| serde_json::from_slice::<Deactivation>(&v).ok())
        .is_some_and(|d| d.job > job);
    if newer {
        return Ok(());
    }
    match e {
        Effect::Set(k, v, _) => {
            t.insert(k.as_slice(), v.as_slice())?;
        }
        Effect::Clear(k, _) => {
            t.remove(k.as_slice())?;
        }
    }
    Ok(())
}

impl Store {
    pub(crate) fn deactivations_tree(&self) -> StoreResult<sled::Tree> {
        Ok(self.inner.db().open_tree(DEACTIVATIONS)?)
    }

    /// The recorded last offboarding of `user_id`'s account on `target`, in any state.
    pub fn deactivation(&self, target: &str, user_id: &str) -> StoreResult<Option<Deactivation>> {
        self.deactivations_tree()?
            .get(keys::pair(target, user_id))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// The last offboarding of `user_id`'s account on `target`, while it holds: delivered, or
    /// queued with its job still pending in the outbox.
    pub fn deactivation_in_force(&self, target: &str, user_id: &str) -> StoreResult<Option<Deactivation>> {
        let Some(d) = self.deactivation(target, user_id)? else { return Ok(None) };
        let holds = d.state == "delivered" || self.t(tree::OUTBOX).contains_key(d.job.to_be_bytes())?;
        Ok(holds.then_some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(action: &str, reason: &str) -> Value {
        json!({"target": "jira", "user_id": "u1", "action": {"type": action}, "reason": reason, "at": "t"})
    }

    #[test]
    fn offboardings_set_delivered_restores_clear_and_other_actions_do_nothing() {
        assert!(matches!(effect(&rec("deactivate", "inactive"), 3, "queued"), Ok(Some(Effect::Set(..)))));
        assert!(matches!(effect(&rec("reactivate", "idp_enabled"), 4, "delivered"), Ok(Some(Effect::Clear(..)))));
        assert!(matches!(effect(&rec("reactivate", "bulk"), 4, "queued"), Ok(None)));
        assert!(matches!(effect(&rec("add_to_group", "group_joined"), 5, "delivered"), Ok(None)));
        let mut dry = rec("deactivate", "inactive");
        dry["dry_run"] = json!(true);
        assert!(matches!(effect(&dry, 6, "queued"), Ok(None)));
    }

    #[test]
    fn an_outbox_entry_written_before_reasons_loads_and_derives_its_reason() {
        let old = br#"{"intent":{"target":"jira","user_id":"u1","username":"erin","action":{"type":"deactivate"},"trigger":"disabled","dry_run":false},"enqueued_at":"t","enqueued_ms":1}"#;
        let e = crate::store::OutboxEntry::decode(old).expect("an old entry still loads");
        assert_eq!((e.reason.as_deref(), e.reason().as_str()), (None, "idp_disabled"));
        let fresh = crate::store::OutboxEntry::new(e.intent.clone(), "t", 1);
        assert_eq!(fresh.reason.as_deref(), Some("idp_disabled"), "new entries store it");
        let back = crate::store::OutboxEntry::decode(&fresh.encode().expect("encode")).expect("decode");
        assert_eq!(back.reason.as_deref(), Some("idp_disabled"));
    }

    #[test]
    fn a_retried_dead_letter_keeps_its_reason_and_a_forced_retry_is_the_operators() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(tmp.path()).expect("open");
        let intent = json!({"target": "jira", "user_id": "u1", "username": "erin", "action": {"type": "deactivate"}, "trigger": "cleanup", "dry_run": false});
        let op = crate::store::Operator { actor: "ops".into(), run_id: "r1".into() };
        for (force, want) in [(false, "inactive"), (true, "operator")] {
            let seq = store.enqueue(&[crate::store::OutboxEntry::new(intent.clone(), "t", 0)]).expect("enqueue")[0];
            let entry = store.outbox_get(seq).expect("get").expect("pending");
            store.outbox_bury(seq, &entry, "u1", &json!({"outcome": "dead"})).expect("bury");
            let new = store.retry_dead(seq, &op, "t", 1, force, &json!({})).expect("retry").expect("retried");
            let retried = store.outbox_get(new).expect("get").expect("pending");
            assert_eq!(retried.reason(), want, "force = {force}");
            store.outbox_finish(new, "u1", &json!({})).expect("finish");
        }
    }

    #[test]
    fn records_move_forward_only_and_a_queued_one_holds_while_its_job_is_pending() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(tmp.path()).expect("open");
        let tree = store.deactivations_tree().expect("tree");
        let write = |e: Effect| {
            tree.transaction(|t| apply(t, &e)).expect("tx");
        };
        let set = |reason: &str, job: u64, state: &str| {
            effect(&rec("deactivate", reason), job, state).expect("effect").expect("some")
        };
        write(set("idp_disabled", 10, "delivered"));
        write(set("inactive", 5, "delivered"));
        let reason = store.deactivation_in_force("jira", "u1").expect("read").map(|d| d.reason);
        assert_eq!(reason.as_deref(), Some("idp_disabled"));
        write(effect(&rec("reactivate", "x"), 7, "delivered").expect("e").expect("some"));
        assert!(store.deactivation("jira", "u1").expect("read").is_some(), "an older restore does not clear");
        write(set("inactive", 20, "queued"));
        assert_eq!(store.deactivation_in_force("jira", "u1").expect("read"), None, "job 20 is not in the outbox");
    }
}
