//! The audit log: one record per SCIM change, written in the change's transaction, plus an
//! index by subject id so a person's history is a prefix scan.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{StoreError, StoreResult};
use super::keys;
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
