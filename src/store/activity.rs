//! The lifecycle jobs' trees (issue 4): the activity snapshot read from each target, the reports
//! every run records, and the licence optimizer's state. They are opened lazily with
//! `Db::open_tree`, hold no SCIM data, and are never part of a SCIM transaction.
//!
//! | tree | key → value |
//! | --- | --- |
//! | `activity` | target 0x00 lowercased username → [`ActivityRecord`] JSON |
//! | `activity_runs` | target → summary JSON of the last complete refresh |
//! | `reports` | sequence (u64 BE) → report JSON |
//! | `license` | `reclaimed`/`queue` 0x00 target 0x00 lowercased username → JSON; `seats` 0x00 target → JSON; `history` 0x00 sequence (u64 BE) → JSON |
//!
//! A refresh overwrites records as pages arrive (a newer observation is still true), and drops
//! the accounts a target no longer lists only after a complete listing (`activity_prune`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{StoreError, StoreResult};
use super::keys;
use super::records::Record;
use super::{tree, Store};

pub(crate) const ACTIVITY: &str = "activity";
pub(crate) const ACTIVITY_RUNS: &str = "activity_runs";
pub(crate) const REPORTS: &str = "reports";
pub(crate) const LICENSE: &str = "license";

/// One account of one target as the last refresh saw it. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRecord {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub active: bool,
    /// Last login; `None` with `activity_reported` = never logged in.
    #[serde(default)]
    pub last_active_ms: Option<i64>,
    pub activity_reported: bool,
    /// Creation time where the product gives it (Crowd).
    #[serde(default)]
    pub created_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// When scimbridge first listed this account: the age of a never-logged-in account whose
    /// product gives no creation date.
    pub first_seen_ms: i64,
    /// When this record was last written by a refresh.
    pub fetched_ms: i64,
}

impl ActivityRecord {
    /// A stand-in for an account the target's listing did not return: active, nothing known
    /// about its activity, first seen `now_ms`.
    pub fn placeholder(username: &str, now_ms: i64) -> ActivityRecord {
        ActivityRecord {
            username: username.to_string(),
            display_name: None,
            email: None,
            active: true,
            last_active_ms: None,
            activity_reported: false,
            created_ms: None,
            directory: None,
            groups: None,
            first_seen_ms: now_ms,
            fetched_ms: now_ms,
        }
    }
}

fn encode<T: Serialize>(v: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn account_key(target: &str, username: &str) -> Vec<u8> {
    keys::pair(target, &username.to_lowercase())
}

/// `a 0x00 b 0x00 c`.
fn triple(a: &str, b: &str, c: &str) -> Vec<u8> {
    let mut k = keys::pair(a, b);
    k.push(0);
    k.extend_from_slice(c.as_bytes());
    k
}

impl Store {
    fn lifecycle_tree(&self, name: &str) -> StoreResult<sled::Tree> {
        Ok(self.inner.db().open_tree(name)?)
    }

    /// Writes one account seen by a refresh, keeping the `first_seen_ms` of an earlier record.
    ///
    /// # Errors
    /// On a sled error, or when the stored record is unreadable.
    pub fn activity_put(&self, target: &str, rec: &mut ActivityRecord) -> StoreResult<()> {
        let t = self.lifecycle_tree(ACTIVITY)?;
        let key = account_key(target, &rec.username);
        if let Some(old) = t.get(&key)? {
            if let Ok(old) = decode::<ActivityRecord>(&old) {
                rec.first_seen_ms = rec.first_seen_ms.min(old.first_seen_ms);
            }
        }
        t.insert(key, encode(rec)?)?;
        Ok(())
    }

    /// One account of the snapshot.
    ///
    /// # Errors
    /// On a sled error or an unreadable record.
    pub fn activity_get(&self, target: &str, username: &str) -> StoreResult<Option<ActivityRecord>> {
        self.lifecycle_tree(ACTIVITY)?.get(account_key(target, username))?.map(|v| decode(&v)).transpose()
    }

    /// Streams a target's snapshot in username order.
    ///
    /// # Errors
    /// When the tree cannot be opened; each item carries its own read error.
    pub fn activity_scan(&self, target: &str) -> StoreResult<impl Iterator<Item = StoreResult<ActivityRecord>>> {
        let t = self.lifecycle_tree(ACTIVITY)?;
        Ok(t.scan_prefix(keys::prefix(target)).values().map(|v| decode(&v?)))
    }

    /// Drops the accounts of `target` not written since `fetched_ms` (gone from the target);
    /// returns how many.
    ///
    /// # Errors
    /// On a sled error.
    pub fn activity_prune(&self, target: &str, fetched_ms: i64) -> StoreResult<u64> {
        let t = self.lifecycle_tree(ACTIVITY)?;
        let mut gone = 0;
        for kv in t.scan_prefix(keys::prefix(target)) {
            let (k, v) = kv?;
            let stale = decode::<ActivityRecord>(&v).map_or(true, |r| r.fetched_ms < fetched_ms);
            if stale {
                t.remove(k)?;
                gone += 1;
            }
        }
        Ok(gone)
    }

    /// Records the summary of a complete refresh of `target`.
    ///
    /// # Errors
    /// On a sled error.
    pub fn activity_run_put(&self, target: &str, summary: &Value) -> StoreResult<()> {
        self.lifecycle_tree(ACTIVITY_RUNS)?.insert(target.as_bytes(), encode(summary)?)?;
        Ok(())
    }

    /// The summary of the last complete refresh of `target`.
    ///
    /// # Errors
    /// On a sled error.
    pub fn activity_run(&self, target: &str) -> StoreResult<Option<Value>> {
        self.lifecycle_tree(ACTIVITY_RUNS)?.get(target.as_bytes())?.map(|v| decode(&v)).transpose()
    }

    /// Stores a report and returns its id.
    ///
    /// # Errors
    /// On a sled error.
    pub fn report_put(&self, report: &mut Value) -> StoreResult<u64> {
        let t = self.lifecycle_tree(REPORTS)?;
        let id = t.last()?.map(|(k, _)| keys::decode_u64(&k)).unwrap_or(0) + 1;
        if let Some(o) = report.as_object_mut() {
            o.insert("id".into(), Value::from(id));
        }
        t.insert(id.to_be_bytes(), encode(report)?)?;
        Ok(id)
    }

    /// One stored report.
    ///
    /// # Errors
    /// On a sled error.
    pub fn report(&self, id: u64) -> StoreResult<Option<Value>> {
        self.lifecycle_tree(REPORTS)?.get(id.to_be_bytes())?.map(|v| decode(&v)).transpose()
    }

    /// The newest stored report of run `run_id` (its `run_id` field), read one at a time from the
    /// newest: a run's report is found without holding every report in memory.
    ///
    /// # Errors
    /// On a sled error or an unreadable report.
    pub fn report_of_run(&self, run_id: &str) -> StoreResult<Option<Value>> {
        for kv in self.lifecycle_tree(REPORTS)?.iter().rev() {
            let r: Value = decode(&kv?.1)?;
            if r.get("run_id").and_then(Value::as_str) == Some(run_id) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// The newest `limit` reports, newest first.
    ///
    /// # Errors
    /// On a sled error.
    pub fn reports(&self, limit: usize) -> StoreResult<Vec<Value>> {
        self.lifecycle_tree(REPORTS)?.iter().rev().take(limit).map(|kv| decode(&kv?.1)).collect()
    }

    /// A licence-state entry (`kind` is `reclaimed` or `queue`).
    ///
    /// # Errors
    /// On a sled error.
    pub fn license_entry(&self, kind: &str, target: &str, username: &str) -> StoreResult<Option<Value>> {
        let key = triple(kind, target, &username.to_lowercase());
        self.lifecycle_tree(LICENSE)?.get(key)?.map(|v| decode(&v)).transpose()
    }

    /// Writes (`Some`) or removes (`None`) a licence-state entry.
    ///
    /// # Errors
    /// On a sled error.
    pub fn license_set(&self, kind: &str, target: &str, username: &str, value: Option<&Value>) -> StoreResult<()> {
        let t = self.lifecycle_tree(LICENSE)?;
        let key = triple(kind, target, &username.to_lowercase());
        match value {
            Some(v) => t.insert(key, encode(v)?)?,
            None => t.remove(key)?,
        };
        Ok(())
    }

    /// Every entry of one kind for one target, in username order.
    ///
    /// # Errors
    /// On a sled error.
    pub fn license_entries(&self, kind: &str, target: &str) -> StoreResult<Vec<Value>> {
        let mut prefix = keys::pair(kind, target);
        prefix.push(0);
        self.lifecycle_tree(LICENSE)?.scan_prefix(prefix).values().map(|v| decode(&v?)).collect()
    }

    /// The last seat count read from `target`.
    ///
    /// # Errors
    /// On a sled error.
    pub fn license_seats(&self, target: &str) -> StoreResult<Option<Value>> {
        self.lifecycle_tree(LICENSE)?.get(keys::pair("seats", target))?.map(|v| decode(&v)).transpose()
    }

    /// # Errors
    /// On a sled error.
    pub fn license_seats_put(&self, target: &str, seats: &Value) -> StoreResult<()> {
        self.lifecycle_tree(LICENSE)?.insert(keys::pair("seats", target), encode(seats)?)?;
        Ok(())
    }

    /// Appends one entry to the optimizer's history.
    ///
    /// # Errors
    /// On a sled error.
    pub fn license_history_add(&self, entry: &Value) -> StoreResult<()> {
        let t = self.lifecycle_tree(LICENSE)?;
        let seq = self.next_seq();
        let mut key = b"history\0".to_vec();
        key.extend_from_slice(&seq.to_be_bytes());
        t.insert(key, encode(entry)?)?;
        Ok(())
    }

    /// The newest `limit` history entries, oldest first.
    ///
    /// # Errors
    /// On a sled error.
    pub fn license_history(&self, limit: usize) -> StoreResult<Vec<Value>> {
        let t = self.lifecycle_tree(LICENSE)?;
        let mut out: Vec<Value> =
            t.scan_prefix(b"history\0").values().rev().take(limit).map(|v| decode(&v?)).collect::<StoreResult<_>>()?;
        out.reverse();
        Ok(out)
    }

    /// Streams every SCIM user record (the lifecycle jobs' view of who the IdP provisioned).
    pub fn users_iter(&self) -> impl Iterator<Item = StoreResult<Record>> + '_ {
        self.t(tree::USERS).iter().values().map(|v| Record::decode(&v?))
    }

    /// Streams every SCIM group record (names a mistyped `--group` may have meant).
    pub fn groups_iter(&self) -> impl Iterator<Item = StoreResult<Record>> + '_ {
        self.t(tree::GROUPS).iter().values().map(|v| Record::decode(&v?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, first: i64, fetched: i64) -> ActivityRecord {
        ActivityRecord {
            username: name.into(),
            display_name: None,
            email: None,
            active: true,
            last_active_ms: None,
            activity_reported: true,
            created_ms: None,
            directory: None,
            groups: None,
            first_seen_ms: first,
            fetched_ms: fetched,
        }
    }

    #[test]
    fn a_refresh_keeps_first_seen_and_prune_drops_accounts_no_longer_listed() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        store.activity_put("jira", &mut rec("Ann", 10, 10)).expect("put");
        store.activity_put("jira", &mut rec("bob", 10, 10)).expect("put");
        store.activity_put("wiki", &mut rec("ann", 10, 10)).expect("put");
        store.activity_put("jira", &mut rec("ann", 20, 20)).expect("put");
        assert_eq!(store.activity_get("jira", "ANN").expect("get").map(|r| r.first_seen_ms), Some(10));
        assert_eq!(store.activity_prune("jira", 20).expect("prune"), 1);
        let left: Vec<String> = store.activity_scan("jira").expect("scan").map(|r| r.expect("rec").username).collect();
        assert_eq!(left, ["ann"]);
        assert!(store.activity_get("wiki", "ann").expect("get").is_some());
    }

    #[test]
    fn reports_get_increasing_ids_and_list_newest_first() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        let a = store.report_put(&mut serde_json::json!({"kind": "a"})).expect("put");
        let b = store.report_put(&mut serde_json::json!({"kind": "b"})).expect("put");
        assert_eq!((a, b), (1, 2));
        assert_eq!(store.reports(10).expect("list")[0]["kind"], "b");
        assert_eq!(store.report(1).expect("get").expect("some")["id"], 1);
    }
}
