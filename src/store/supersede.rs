//! Stale intents: an intent carries the state it was decided from ([`Basis`]), and one that a
//! newer decision for the same user and target contradicts is *superseded*. Delivering it, or
//! retrying it as a dead letter, would replay a decision the IdP has since reversed (issue 10:
//! a retried "reactivate" re-enabled a leaver whose later "disable" had been delivered).
//!
//! Superseded intents keep their job number in the `superseded` tree, with the job that
//! superseded them, until an operator drops them or retries one with `--force`. Dead letters
//! are indexed by lane (`dead_by_lane`: target 0x00 user 0x00 sequence → ()) so that a
//! delivery finds the dead letters it makes stale without scanning them all.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sled::Transactional;

use super::error::{StoreError, StoreResult};
use super::keys;
use super::outbox::{OutboxEntry, OutboxItem};
use super::{tree, Store};

pub(crate) const SUPERSEDED: &str = "superseded";
pub(crate) const DEAD_BY_LANE: &str = "dead_by_lane";

/// What an intent was decided from: the decision it belongs to and what it drives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    /// Intents decided together (one SCIM change, one operator run) share this number; they are
    /// one decision and never supersede each other (an enable is create + reactivate + groups).
    pub batch: u64,
    /// `account` (the account's existence and active state, licence included) or
    /// `group:<name in lower case>` (one membership).
    pub drives: String,
    /// The access the decision gave the user: `true` for create, reactivate, licence restore
    /// and group additions (which the policy makes only while the user has access), `false`
    /// for deactivate, delete, anonymize and licence removal. Absent for a group removal, which
    /// applies whatever the access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<bool>,
}

impl Basis {
    /// The basis of an intent (`policy::Intent` as JSON) decided in `batch`.
    pub fn of(intent: &Value, batch: u64) -> Basis {
        let action = intent.get("action");
        let kind = action.and_then(|a| a.get("type")).and_then(Value::as_str).unwrap_or_default();
        let group = || {
            let g = action.and_then(|a| a.get("group")).and_then(Value::as_str).unwrap_or_default();
            format!("group:{}", g.to_lowercase())
        };
        let (drives, access) = match kind {
            "create_user" | "reactivate" | "restore_license" => ("account".to_string(), Some(true)),
            "deactivate" | "delete" | "anonymize" | "remove_license" => ("account".to_string(), Some(false)),
            "add_to_group" => (group(), Some(true)),
            "remove_from_group" => (group(), None),
            other => (format!("other:{other}"), None),
        };
        // Inactivity cleanup, the licence optimizer and bulk runs decide from Atlassian activity
        // or an operator's list, not from the user's access in the IdP: an IdP group change
        // after them does not contradict them (only a newer decision about the account does).
        let trigger = intent.get("trigger").and_then(Value::as_str).unwrap_or_default();
        let access = access
            .filter(|_| !matches!(trigger, "cleanup" | "license_reclaim" | "license_grant" | "bulk" | "operator"));
        Basis { batch, drives, access }
    }

    /// Whether an intent on this basis, decided later in the same lane, makes `older` stale: it
    /// drives the same thing, or it was decided with the opposite access.
    pub fn supersedes(&self, older: &Basis) -> bool {
        self.batch != older.batch
            && (self.drives == older.drives || matches!((self.access, older.access), (Some(a), Some(b)) if a != b))
    }
}

/// What the delivery worker keeps of each pending intent to tell whether a later one in the same
/// lane supersedes it, without reading the outbox again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    basis: Basis,
    dry_run: bool,
}

impl Decided {
    /// Whether this intent, later in the same lane, supersedes `older`. Dry-run intents are never
    /// sent, so they neither supersede nor are superseded.
    pub fn supersedes(&self, older: &Decided) -> bool {
        !self.dry_run && !older.dry_run && self.basis.supersedes(&older.basis)
    }
}

impl OutboxEntry {
    /// The part of the entry supersession looks at.
    pub fn decided_as(&self) -> Decided {
        Decided { basis: self.basis_or_implied(), dry_run: self.dry_run() }
    }

    /// The recorded basis; for an entry written before bases were recorded, the one its action
    /// implies, with the enqueue time standing in for the batch (one change's intents share it).
    pub fn basis_or_implied(&self) -> Basis {
        self.basis.clone().unwrap_or_else(|| Basis::of(&self.intent, self.enqueued_ms))
    }

    fn dry_run(&self) -> bool {
        self.intent.get("dry_run").and_then(Value::as_bool).unwrap_or(false)
    }

    /// Whether this entry, newer (`self_seq > older_seq`) in the same lane, supersedes `older`.
    pub fn supersedes(&self, self_seq: u64, older: &OutboxEntry, older_seq: u64) -> bool {
        self_seq > older_seq
            && self.target() == older.target()
            && self.user_id() == older.user_id()
            && self.decided_as().supersedes(&older.decided_as())
    }
}

pub(crate) fn lane_key(target: &str, user: &str, seq: u64) -> Vec<u8> {
    let mut k = keys::pair(target, user);
    k.push(keys::SEP);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn lane_prefix(target: &str, user: &str) -> Vec<u8> {
    let mut k = keys::pair(target, user);
    k.push(keys::SEP);
    k
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

type TxResult = Result<(), sled::transaction::ConflictableTransactionError<StoreError>>;

impl Store {
    pub(crate) fn superseded_tree(&self) -> StoreResult<sled::Tree> {
        Ok(self.inner.db().open_tree(SUPERSEDED)?)
    }

    pub(crate) fn dead_lane_tree(&self) -> StoreResult<sled::Tree> {
        Ok(self.inner.db().open_tree(DEAD_BY_LANE)?)
    }

    /// Builds the dead-letter lane index of a store written before it existed, or rebuilds one
    /// that does not match the dead letters (at open, before any writer runs).
    pub(crate) fn index_dead_lanes(&self) -> StoreResult<()> {
        let index = self.dead_lane_tree()?;
        if index.len() == self.t(tree::DEAD).len() {
            return Ok(());
        }
        index.clear()?;
        for kv in self.t(tree::DEAD).iter() {
            let (k, v) = kv?;
            let e = OutboxEntry::decode(&v)?;
            index.insert(lane_key(e.target(), e.user_id(), keys::decode_u64(&k)), &[])?;
        }
        Ok(())
    }

    /// A number for one decision whose intents are enqueued in several calls (a lifecycle run).
    pub fn new_decision(&self) -> u64 {
        self.next_seq()
    }

    /// Superseded intents, as counted by `/metrics`.
    pub fn superseded_count(&self) -> usize {
        self.superseded_tree().map(|t| t.len()).unwrap_or(0)
    }

    /// The dead letters of one lane, oldest first.
    pub(crate) fn dead_in_lane(&self, target: &str, user: &str) -> StoreResult<Vec<(u64, OutboxEntry)>> {
        let index = self.dead_lane_tree()?;
        let mut out = Vec::new();
        for kv in index.scan_prefix(lane_prefix(target, user)) {
            let (k, _) = kv?;
            let seq = keys::decode_u64(&k[k.len().saturating_sub(8)..]);
            if let Some(v) = self.t(tree::DEAD).get(seq.to_be_bytes())? {
                out.push((seq, OutboxEntry::decode(&v)?));
            }
        }
        Ok(out)
    }

    /// The newest pending intent or dead letter that supersedes job `seq` (`entry`), if any.
    /// Scans the outbox once: for operator commands, not for the delivery path.
    pub fn newest_superseding(&self, seq: u64, entry: &OutboxEntry) -> StoreResult<Option<u64>> {
        let mut newest = None;
        for item in self.outbox_after(seq)? {
            if item.entry.supersedes(item.seq, entry, seq) {
                newest = Some(item.seq);
            }
        }
        for (s, e) in self.dead_in_lane(entry.target(), entry.user_id())? {
            if e.supersedes(s, entry, seq) {
                newest = newest.max(Some(s));
            }
        }
        // A newer decision held for a link review counts too: once released it is delivered
        // before anything retried now, which would otherwise replay the stale state after it.
        // So does one the mass-offboarding brake holds (`guard_held.rs`).
        for item in self.guard_held_in_lane(entry.target(), entry.user_id())? {
            if item.seq > seq && item.entry.supersedes(item.seq, entry, seq) {
                newest = newest.max(Some(item.seq));
            }
        }
        for item in self.held_in_lane(entry.target(), entry.user_id())? {
            if item.seq > seq && item.entry.supersedes(item.seq, entry, seq) {
                newest = newest.max(Some(item.seq));
            }
        }
        Ok(newest)
    }

    /// Moves a pending intent to the superseded ones instead of delivering it, with its audit
    /// record, atomically.
    pub fn supersede_pending(&self, seq: u64, by: u64, audit: &Value) -> StoreResult<()> {
        let _guard = self.lock();
        let Some(v) = self.t(tree::OUTBOX).get(seq.to_be_bytes())? else { return Ok(()) };
        let mut entry = OutboxEntry::decode(&v)?;
        entry.superseded_by = Some(by);
        let bytes = entry.encode()?;
        let audit_seq = self.next_seq();
        let audit_bytes = serde_json::to_vec(audit).map_err(corrupt)?;
        let subject = entry.user_id().to_string();
        let index = super::audit::index_keys(&subject, audit, audit_seq);
        let sup = self.superseded_tree()?;
        let (o, s, a, by_subject) = (self.t(tree::OUTBOX), &sup, self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        (&*o, s, &*a, &*by_subject).transaction(|(o, s, a, b)| {
            o.remove(&seq.to_be_bytes())?;
            s.insert(&seq.to_be_bytes(), bytes.as_slice())?;
            super::audit::put_in(a, b, audit_seq, &audit_bytes, &index)?;
            TxResult::Ok(())
        })?;
        self.mark_committed();
        Ok(())
    }

    /// Closes a delivered intent (`seq`, `entry`) with its audit record and, in the same
    /// transaction, marks superseded every dead letter of its lane that it makes stale (each with
    /// an audit record of its own). Returns the job numbers so marked.
    pub fn outbox_deliver(&self, seq: u64, entry: &OutboxEntry, audit: &Value, at: &str) -> StoreResult<Vec<u64>> {
        let _guard = self.lock();
        let subject = entry.user_id().to_string();
        let stale: Vec<(u64, OutboxEntry)> = self
            .dead_in_lane(entry.target(), entry.user_id())?
            .into_iter()
            .filter(|(s, dead)| entry.supersedes(seq, dead, *s))
            .collect();
        let first = self.next_seq();
        let mut records = vec![(
            first,
            serde_json::to_vec(audit).map_err(corrupt)?,
            super::audit::index_keys(&subject, audit, first),
        )];
        let mut moved = Vec::with_capacity(stale.len());
        for (s, mut dead) in stale {
            dead.superseded_by = Some(seq);
            let record = json!({
                "type": "delivery", "at": at, "job": s, "outcome": "superseded", "superseded_by": seq,
                "target": dead.target(), "user_id": dead.user_id(),
                "username": dead.intent.get("username"), "action": dead.intent.get("action"),
                "trigger": dead.intent.get("trigger"),
                "detail": format!("dead letter {s} is superseded by job {seq}, delivered; it left the dead letters"),
            });
            let audit_seq = self.next_seq();
            let index = super::audit::index_keys(&subject, &record, audit_seq);
            records.push((audit_seq, serde_json::to_vec(&record).map_err(corrupt)?, index));
            moved.push((s, lane_key(dead.target(), dead.user_id(), s), dead.encode()?));
        }
        let (sup, lanes) = (self.superseded_tree()?, self.dead_lane_tree()?);
        // Why the account went (or that it is back), with the delivery (`deactivations.rs`).
        let (deact, deact_effect) =
            (self.deactivations_tree()?, super::deactivations::effect(audit, seq, "delivered")?);
        let (outbox, dead_tree) = (self.t(tree::OUTBOX), self.t(tree::DEAD));
        let (audit_tree, by_subject) = (self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        let trees = (&*outbox, &*dead_tree, &sup, &lanes, &*audit_tree, &*by_subject, &deact);
        trees.transaction(|(o, d, s, l, a, b, z)| {
            if let Some(e) = &deact_effect {
                super::deactivations::apply(z, e)?;
            }
            o.remove(&seq.to_be_bytes())?;
            for (old, lane, bytes) in &moved {
                d.remove(&old.to_be_bytes())?;
                l.remove(lane.as_slice())?;
                s.insert(&old.to_be_bytes(), bytes.as_slice())?;
            }
            for (audit_seq, bytes, index) in &records {
                super::audit::put_in(a, b, *audit_seq, bytes, index)?;
            }
            TxResult::Ok(())
        })?;
        self.mark_committed();
        Ok(moved.into_iter().map(|(s, _, _)| s).collect())
    }

    /// The last record of a job that left the outbox for good (delivered, no such account,
    /// dropped, retried as another job…): read newest first, and only back to the job's own
    /// number, since its outcome was written after it.
    pub fn job_outcome(&self, seq: u64) -> StoreResult<Option<Value>> {
        for kv in self.t(tree::AUDIT).range(seq.to_be_bytes()..).rev() {
            let (_, v) = kv?;
            let record: Value = serde_json::from_slice(&v).map_err(corrupt)?;
            if record.get("job").and_then(Value::as_u64) == Some(seq) && record.get("outcome") != Some(&json!("retry"))
            {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// Superseded intents, oldest first.
    pub(crate) fn superseded_items(&self) -> StoreResult<Vec<OutboxItem>> {
        self.superseded_tree()?
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok(OutboxItem { seq: keys::decode_u64(&k), state: "superseded", entry: OutboxEntry::decode(&v)? })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Intent, IntentAction, Trigger};

    fn entry(action: IntentAction, batch: u64) -> OutboxEntry {
        let intent = Intent {
            target: "jira".into(),
            user_id: "u1".into(),
            username: "erin".into(),
            action,
            trigger: Trigger::Enabled,
            dry_run: false,
        };
        let v = serde_json::to_value(intent).expect("intent");
        OutboxEntry { basis: Some(Basis::of(&v, batch)), ..OutboxEntry::new(v, "t", 0) }
    }

    fn group(g: &str) -> String {
        g.to_string()
    }

    #[test]
    fn every_policy_action_has_a_known_basis() {
        let all = [
            IntentAction::CreateUser { display_name: "E".into(), email: "e@x".into() },
            IntentAction::Deactivate,
            IntentAction::Reactivate,
            IntentAction::Delete,
            IntentAction::Anonymize,
            IntentAction::RemoveLicense { groups: vec![] },
            IntentAction::RestoreLicense { groups: vec![] },
            IntentAction::AddToGroup { group: group("g") },
            IntentAction::RemoveFromGroup { group: group("g") },
        ];
        for a in all {
            let b = entry(a.clone(), 1).basis_or_implied();
            assert!(!b.drives.starts_with("other:"), "{a:?} has no basis rule: {b:?}");
        }
    }

    #[test]
    fn a_later_disable_supersedes_the_reactivation_create_and_group_additions_of_an_enable() {
        let disable = entry(IntentAction::Deactivate, 9);
        for (seq, old) in [
            (2, IntentAction::CreateUser { display_name: "E".into(), email: "e@x".into() }),
            (3, IntentAction::Reactivate),
            (4, IntentAction::AddToGroup { group: group("jira-users") }),
            (5, IntentAction::RestoreLicense { groups: vec![group("stash-users")] }),
        ] {
            assert!(disable.supersedes(9, &entry(old.clone(), 1), seq), "{old:?}");
            assert!(!entry(old.clone(), 1).supersedes(seq, &disable, 9), "never an older one: {old:?}");
        }
    }

    #[test]
    fn intents_of_one_decision_never_supersede_each_other() {
        let create = entry(IntentAction::CreateUser { display_name: "E".into(), email: "e@x".into() }, 1);
        let reactivate = entry(IntentAction::Reactivate, 1);
        assert!(!reactivate.supersedes(3, &create, 2));
    }

    #[test]
    fn memberships_are_superseded_by_the_same_group_only_and_removals_survive_offboarding() {
        let add = entry(IntentAction::AddToGroup { group: group("Devs") }, 1);
        let remove_same = entry(IntentAction::RemoveFromGroup { group: group("devs") }, 2);
        let add_other = entry(IntentAction::AddToGroup { group: group("ops") }, 2);
        assert!(remove_same.supersedes(5, &add, 4), "same group, case-insensitively");
        assert!(!add_other.supersedes(5, &add, 4));
        let deactivate = entry(IntentAction::Deactivate, 3);
        assert!(!deactivate.supersedes(6, &remove_same, 5), "a removal applies whatever the access");
        assert!(entry(IntentAction::AddToGroup { group: group("devs") }, 4).supersedes(7, &remove_same, 5));
    }

    #[test]
    fn deletion_supersedes_a_create_and_a_regained_access_supersedes_a_deactivation() {
        let create = entry(IntentAction::CreateUser { display_name: "E".into(), email: "e@x".into() }, 1);
        assert!(entry(IntentAction::Delete, 2).supersedes(3, &create, 2));
        let deactivate = entry(IntentAction::Deactivate, 1);
        assert!(entry(IntentAction::AddToGroup { group: group("g") }, 2).supersedes(3, &deactivate, 2));
    }

    #[test]
    fn an_idp_group_join_does_not_undo_a_cleanup_or_licence_reclaim_but_an_idp_enable_does() {
        for trigger in [Trigger::Cleanup, Trigger::LicenseReclaim, Trigger::Bulk] {
            let mut reclaim = entry(IntentAction::RemoveLicense { groups: vec![group("jira-users")] }, 1);
            reclaim.intent["trigger"] = serde_json::to_value(trigger).expect("trigger");
            reclaim.basis = Some(Basis::of(&reclaim.intent, 1));
            let join = entry(IntentAction::AddToGroup { group: group("devs") }, 2);
            assert!(!join.supersedes(3, &reclaim, 2), "{trigger:?}");
            assert!(entry(IntentAction::Reactivate, 2).supersedes(3, &reclaim, 2), "{trigger:?}");
        }
    }

    /// Enqueues `e` and makes it a dead letter; returns its job number.
    fn dead(store: &Store, e: OutboxEntry) -> u64 {
        let seq = store.enqueue(&[e]).expect("enqueue")[0];
        let entry = store.outbox_get(seq).expect("get").expect("pending");
        store.outbox_bury(seq, &entry, "u1", &json!({"outcome": "dead"})).expect("bury");
        seq
    }

    #[test]
    fn a_delivery_moves_the_dead_letters_it_makes_stale_and_the_lane_index_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let reactivate = dead(&store, entry(IntentAction::Reactivate, 1));
        let removal = dead(&store, entry(IntentAction::RemoveFromGroup { group: group("g") }, 1));
        let mut other_lane = entry(IntentAction::Reactivate, 1);
        other_lane.intent["user_id"] = Value::String("u2".into());
        let other = dead(&store, other_lane);
        assert_eq!(store.dead_letter_count(), 3);

        let disable = store.enqueue(&[entry(IntentAction::Deactivate, 2)]).expect("enqueue")[0];
        let d = store.outbox_get(disable).expect("get").expect("pending");
        assert_eq!(
            store
                .newest_superseding(reactivate, &store.job(reactivate).expect("job").expect("dead").entry)
                .expect("scan"),
            Some(disable)
        );
        let marked = store.outbox_deliver(disable, &d, &json!({"outcome": "delivered"}), "t").expect("deliver");
        assert_eq!(marked, vec![reactivate], "the removal applies whatever the access; other users are apart");
        let moved = store.job(reactivate).expect("job").expect("kept");
        assert_eq!((moved.state, moved.entry.superseded_by), ("superseded", Some(disable)));
        assert_eq!((store.dead_letter_count(), store.superseded_count()), (2, 1));
        assert!(store
            .audit_of("u1")
            .expect("audit")
            .iter()
            .any(|r| r["outcome"] == "superseded" && r["job"] == reactivate));

        // A lost index is rebuilt at open.
        store.dead_lane_tree().expect("tree").clear().expect("clear");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        let lane: Vec<u64> = store.dead_in_lane("jira", "u1").expect("lane").into_iter().map(|(s, _)| s).collect();
        assert_eq!(lane, vec![removal]);
        assert_eq!(store.dead_in_lane("jira", "u2").expect("lane").len(), 1, "{other}");
    }

    #[test]
    fn a_newer_decision_held_for_review_supersedes_a_dead_letter_for_a_single_retry() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        let reactivate = dead(&store, entry(IntentAction::Reactivate, 1));
        let disable_entry = entry(IntentAction::Deactivate, 2);
        let disable = store.enqueue(std::slice::from_ref(&disable_entry)).expect("enqueue")[0];
        let review = super::super::Review {
            target: "jira".into(),
            user_id: "u1".into(),
            user_name: "erin".into(),
            wanted: "erin".into(),
            email: None,
            kind: "ambiguous".into(),
            reason: "test".into(),
            candidates: vec![],
            at: "t".into(),
        };
        let audit = json!({"type": "delivery", "outcome": "held_for_review"});
        assert!(store.hold_for_review(Some(&review), "jira", "u1", disable, &disable_entry, &audit).expect("hold"));
        let dead_entry = store.job(reactivate).expect("job").expect("dead").entry;
        assert_eq!(store.newest_superseding(reactivate, &dead_entry).expect("scan"), Some(disable));
        let op = super::super::Operator { actor: "t".into(), run_id: "r".into() };
        assert_eq!(
            crate::admin::retry_job(&store, reactivate, false, &op).expect("retry"),
            crate::admin::Retry::Superseded { by: disable }
        );
    }

    #[test]
    fn dry_run_intents_and_other_lanes_do_not_count() {
        let reactivate = entry(IntentAction::Reactivate, 1);
        let mut dry = entry(IntentAction::Deactivate, 2);
        dry.intent["dry_run"] = Value::Bool(true);
        assert!(!dry.supersedes(3, &reactivate, 2));
        let mut other_user = entry(IntentAction::Deactivate, 2);
        other_user.intent["user_id"] = Value::String("u2".into());
        assert!(!other_user.supersedes(3, &reactivate, 2));
    }
}
