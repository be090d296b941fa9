//! The audit log: one record per SCIM change (written in the change's transaction), per intent an
//! operator run queued, per delivery attempt and per operator action, plus an index by subject so
//! a person's history is a few prefix scans. A record is indexed under:
//! - its SCIM id or delivery lane (`atlassian:NAME` for accounts the IdP never provisioned);
//! - `name:` + the folded userName of a SCIM user record (before and after a rename), so a user
//!   is found by name after its DELETE removed the name index;
//! - `username:` + the folded Atlassian username of a queued or delivery record, so accounts
//!   only a cleanup or bulk run touched are found by the name the admin knows;
//! - the SCIM id of each member a group change made intents for, so the change that caused a
//!   delivery is in the member's own history;
//! - `run:` + the run id of a record an operator run (or a SCIM change, `scim-SEQ`) caused, so
//!   everything one run did is one prefix scan (`audit --run`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::error::{StoreError, StoreResult};
use super::keys::{self, fold};
use super::operator::Operator;
use super::records::Kind;
use super::writes::{Change, ChangeOp};
use super::{tree, Store};

/// At most this many member ids are listed in one audit record; the counts are always exact.
const MEMBER_IDS_IN_AUDIT: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Always `scim` for these records (delivery records say `delivery`).
    #[serde(rename = "type")]
    pub record_type: String,
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub op: ChangeOp,
    pub kind: Kind,
    pub id: String,
    /// userName or displayName after (or before, for deletes) the change.
    pub name: Option<String>,
    /// Changed top-level attributes: name → [before, after].
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub changed: Map<String, Value>,
    #[serde(default)]
    pub members_added: usize,
    #[serde(default)]
    pub members_removed: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_ids: Vec<String>,
    #[serde(default)]
    pub intents: usize,
}

/// The index subject of a SCIM userName.
pub(super) fn name_subject(user_name: &str) -> String {
    format!("name:{}", fold(user_name))
}

/// The index subject of an Atlassian username.
pub(super) fn username_subject(username: &str) -> String {
    format!("username:{}", fold(username))
}

/// The index subject of a run: everything it queued, delivered or did.
pub(super) fn run_subject(run_id: &str) -> String {
    format!("run:{run_id}")
}

/// Writes one audit record and its subject-index keys ([`index_keys`]) inside the caller's
/// transaction, so a record and the index that finds it (and that retention sweeps) never part.
pub(super) fn put_in(
    audit: &sled::transaction::TransactionalTree,
    by_subject: &sled::transaction::TransactionalTree,
    seq: u64,
    record: &[u8],
    index: &[Vec<u8>],
) -> Result<(), sled::transaction::UnabortableTransactionError> {
    audit.insert(&seq.to_be_bytes(), record)?;
    for k in index {
        by_subject.insert(k.as_slice(), &[])?;
    }
    Ok(())
}

/// The index keys of a record about `subject` (queued, delivery, operator): the subject, the
/// Atlassian username the record names, and the run it belongs to, if any.
pub(super) fn index_keys(subject: &str, record: &Value, seq: u64) -> Vec<Vec<u8>> {
    let mut keys = vec![keys::seq_pair(subject, seq)];
    if let Some(u) = record.get("username").and_then(Value::as_str).filter(|u| !u.is_empty()) {
        keys.push(keys::seq_pair(&username_subject(u), seq));
    }
    if let Some(r) = record.get("run_id").and_then(Value::as_str).filter(|r| !r.is_empty()) {
        keys.push(keys::seq_pair(&run_subject(r), seq));
    }
    keys
}

pub(super) fn encode(record: &Value) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn record_bytes(change: &Change<'_>, intents: usize) -> StoreResult<Vec<u8>> {
    let empty = Map::new();
    let before = change.before.map(|r| &r.attrs).unwrap_or(&empty);
    let after = change.after.map(|r| &r.attrs).unwrap_or(&empty);
    let mut changed = Map::new();
    for key in before.keys().chain(after.keys()) {
        let (b, a) = (before.get(key), after.get(key));
        if b != a && !changed.contains_key(key) {
            changed.insert(
                key.clone(),
                Value::Array(vec![b.cloned().unwrap_or(Value::Null), a.cloned().unwrap_or(Value::Null)]),
            );
        }
    }
    let name = change.after.or(change.before).and_then(|r| r.unique_name(change.kind)).map(str::to_string);
    let member_ids = change
        .members_added
        .iter()
        .map(|i| format!("+{i}"))
        .chain(change.members_removed.iter().map(|i| format!("-{i}")))
        .take(MEMBER_IDS_IN_AUDIT)
        .collect();
    let rec = AuditRecord {
        record_type: "scim".to_string(),
        seq: change.seq,
        at: change.at.to_string(),
        actor: change.actor.to_string(),
        op: change.op,
        kind: change.kind,
        id: change.id.to_string(),
        name,
        changed,
        members_added: change.members_added.len(),
        members_removed: change.members_removed.len(),
        member_ids,
        intents,
    };
    serde_json::to_vec(&rec).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Sequences of the records indexed under `subject`, oldest first.
    fn audit_seqs(&self, subject: &str) -> StoreResult<Vec<u64>> {
        self.t(tree::AUDIT_BY_SUBJECT)
            .scan_prefix(keys::prefix(subject))
            .map(|kv| kv.map(|(k, _)| keys::decode_u64(&k[k.len().saturating_sub(8)..])).map_err(StoreError::from))
            .collect()
    }

    /// The records that name the Atlassian account `username` (any target, any SCIM user), oldest
    /// first, from the username index only: never a scan of the whole log.
    ///
    /// # Errors
    /// On a storage error or an unreadable record.
    pub fn audit_of_account(&self, username: &str) -> StoreResult<Vec<Value>> {
        let mut out = Vec::new();
        for seq in self.audit_seqs(&username_subject(username))? {
            out.extend(self.audit_record(seq)?);
        }
        Ok(out)
    }

    fn audit_record(&self, seq: u64) -> StoreResult<Option<Value>> {
        self.t(tree::AUDIT)
            .get(seq.to_be_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Everything any action did to the person or account `who` names, oldest first: found by
    /// SCIM id, by userName (also of deleted and renamed users), and by Atlassian username
    /// (also accounts the IdP never provisioned, deactivated by a cleanup or bulk run).
    /// `None` when nothing names `who`.
    ///
    /// # Errors
    /// On a storage error or an unreadable record.
    pub fn audit_of_person(&self, who: &str) -> StoreResult<Option<Vec<Value>>> {
        // `who` as a subject itself: a SCIM id (also of a deleted user), a delivery lane, `token:NAME`.
        let mut subjects: BTreeSet<String> = BTreeSet::from([who.to_string()]);
        let mut seqs: BTreeSet<u64> = BTreeSet::new();
        if let Some(id) = self.id_by_name(Kind::User, who)? {
            subjects.insert(id);
        }
        // SCIM records that carried this userName name the ids it belonged to.
        for seq in self.audit_seqs(&name_subject(who))? {
            if let Some(id) =
                self.audit_record(seq)?.and_then(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
            {
                subjects.insert(id);
            }
        }
        // Records about the Atlassian account, and the lane (SCIM id) they were delivered in.
        for seq in self.audit_seqs(&username_subject(who))? {
            seqs.insert(seq);
            if let Some(lane) =
                self.audit_record(seq)?.and_then(|r| r.get("user_id").and_then(Value::as_str).map(str::to_string))
            {
                subjects.insert(lane);
            }
        }
        // The lane of an account the IdP never provisioned (`lifecycle::context::lane_id`), also
        // for records written before the username index existed.
        subjects.insert(format!("atlassian:{}", who.to_lowercase()));
        for s in &subjects {
            seqs.extend(self.audit_seqs(s)?);
        }
        if seqs.is_empty() {
            // Records written before the name index existed: the SCIM records that name the user,
            // read one at a time (a miss reads the whole log, but never holds it in memory).
            let wanted = fold(who);
            let mut ids: BTreeSet<String> = BTreeSet::new();
            for kv in self.t(tree::AUDIT).iter() {
                let (_, v) = kv?;
                let Ok(r) = serde_json::from_slice::<AuditRecord>(&v) else { continue };
                if r.record_type == "scim" && r.name.as_deref().is_some_and(|n| fold(n) == wanted) {
                    ids.insert(r.id);
                }
            }
            for id in ids {
                seqs.extend(self.audit_seqs(&id)?);
            }
        }
        if seqs.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            out.extend(self.audit_record(seq)?);
        }
        Ok(Some(out))
    }

    /// Everything one run did (`run_id` of a report, a retry, a token change, or `scim-SEQ` of a
    /// SCIM change), oldest first; `None` when no record names the run.
    ///
    /// # Errors
    /// On a storage error or an unreadable record.
    pub fn audit_of_run(&self, run_id: &str) -> StoreResult<Option<Vec<Value>>> {
        let mut out = Vec::new();
        for seq in self.audit_seqs(&run_subject(run_id))? {
            out.extend(self.audit_record(seq)?);
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// Records one operator action (`action`: `token_new`, `job_drop`, `link_set`…) about
    /// `subject` (a SCIM id, a delivery lane, `token:NAME`…) with the operator's actor and run id
    /// and `details` (an object whose fields are added to the record). The one way code outside
    /// the store records an operator action that has no intent of its own.
    ///
    /// # Errors
    /// On a storage error.
    pub fn audit_operator(
        &self,
        op: &Operator,
        subject: &str,
        action: &str,
        details: Value,
        now: &str,
    ) -> StoreResult<()> {
        self.audit_append(subject, &operator_record(op, action, details, now))
    }

    /// The audit records of one resource (its SCIM changes and the Atlassian delivery outcomes
    /// they caused), oldest first, as JSON: SCIM records are `AuditRecord`s, delivery records
    /// carry `"type": "delivery"`.
    pub fn audit_of(&self, id: &str) -> StoreResult<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        for kv in self.t(tree::AUDIT_BY_SUBJECT).scan_prefix(keys::prefix(id)) {
            let (k, _) = kv?;
            let seq = keys::decode_u64(&k[k.len().saturating_sub(8)..]);
            if let Some(v) = self.t(tree::AUDIT).get(seq.to_be_bytes())? {
                out.push(serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?);
            }
        }
        Ok(out)
    }

    /// The most recent `limit` audit records, newest first.
    pub fn audit_tail(&self, limit: usize) -> StoreResult<Vec<serde_json::Value>> {
        self.t(tree::AUDIT)
            .iter()
            .rev()
            .take(limit)
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }
}

/// An operator record: `type` `operator`, the action, actor and run id, and `details`' fields.
pub(super) fn operator_record(op: &Operator, action: &str, details: Value, now: &str) -> Value {
    let mut v = json!({"type": "operator", "at": now, "action": action, "actor": op.actor, "run_id": op.run_id});
    if let (Some(o), Value::Object(d)) = (v.as_object_mut(), details) {
        for (k, val) in d {
            o.entry(k).or_insert(val);
        }
    }
    // An operator's own act (`crate::reason`), unless the details name a reason of their own.
    if let Some(o) = v.as_object_mut() {
        o.entry("reason").or_insert(crate::reason::OPERATOR.into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(tmp.path()).expect("open");
        (tmp, store)
    }

    #[test]
    fn records_are_found_by_the_atlassian_username_they_name_in_any_case() {
        let (_tmp, store) = store();
        let op = Operator { actor: "cli:al".into(), run_id: "r1".into() };
        let rec = json!({"type": "delivery", "user_id": "atlassian:hank", "username": "Hank", "outcome": "delivered"});
        store.audit_append("atlassian:hank", &rec).expect("append");
        store.audit_operator(&op, "token:ops", "token_new", json!({"token": "ops"}), "t").expect("op");
        let found = store.audit_of_person("HANK").expect("read").expect("found");
        assert_eq!(found, vec![rec]);
        let token = store.audit_of_person("token:ops").expect("read").expect("found");
        assert_eq!((token[0]["actor"].as_str(), token[0]["run_id"].as_str()), (Some("cli:al"), Some("r1")));
        assert_eq!(store.audit_of_person("nobody").expect("read"), None);
    }

    #[test]
    fn scim_records_written_before_the_name_index_are_still_found_by_name() {
        let (_tmp, store) = store();
        // As an older release wrote it: indexed only under the resource id.
        let legacy = json!({"type": "scim", "seq": 1, "at": "t", "actor": "config-1", "op": "delete", "kind": "User",
                            "id": "legacy-id", "name": "Olga@example.com", "intents": 0});
        store.audit_append("legacy-id", &legacy).expect("append");
        assert_eq!(store.audit_of_person("olga@example.com").expect("read"), Some(vec![legacy]));
    }
}
