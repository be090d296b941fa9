//! Pruning of audit records, stored run reports and sent notifications (`notify_sent`, by
//! `audit_days`: the audit log of what was told to whom) older than the retention (`[retention]`),
//! in bounded batches: each batch is a few hundred deletions applied under the writer lock, so
//! an IdP write waits at most one small batch, never a pass.
//!
//! What is never pruned, whatever its age:
//! - state: users, groups, memberships, links, link reviews, tokens, the outbox, dead letters,
//!   superseded and held intents, notices not yet sent (only the `audit` tree, its index,
//!   `reports` and `notify_sent` are pruned); pending grace periods (a closed one is only an
//!   audit record);
//! - the records and report of a run that still has an intent pending, dead-lettered,
//!   superseded or held for review (`runs_still_needed`): a dead letter from two years ago still
//!   shows the change that caused it and every attempt made;
//! - records whose time cannot be read (kept, never guessed old).
//!
//! The subject index (`audit_by_subject`) is swept after the records: an entry whose record is
//! gone is removed. The sweep is resumable: `meta`/`retention_sweep_below` says a sweep is owed
//! (written before the first record of a pass is removed), so a crash between the two leaves at
//! most index entries that readers already skip, and the next pass removes them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::error::StoreResult;
use super::keys;
use super::outbox::OutboxEntry;
use super::{tree, Store};

/// Written before records are removed; cleared when the subject index has been swept.
const SWEEP_OWED: &[u8] = b"retention_sweep_below";

/// What one pass removed and kept.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub audit_records: u64,
    pub index_entries: u64,
    pub reports: u64,
    /// Sent (or given up) notifications, from `notify_sent`.
    pub notices: u64,
    /// Records or reports past the retention kept because a pending, dead, superseded or held
    /// intent of their run still needs them.
    pub kept_for_pending: u64,
}

/// The time a stored notice was raised.
#[derive(Deserialize)]
struct AtMs {
    #[serde(default)]
    at_ms: Option<u64>,
}

/// The fields of an audit record or report that decide its fate.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

enum Fate {
    /// Within the retention: this and (nearly always) everything after it stays.
    Recent,
    Old {
        run: Option<String>,
    },
    Undated,
}

fn fate(bytes: &[u8], cutoff: DateTime<Utc>, seq: u64) -> Fate {
    let Ok(head) = serde_json::from_slice::<Head>(bytes) else { return Fate::Undated };
    let when =
        head.at.as_deref().or(head.finished_at.as_deref().filter(|s| !s.is_empty())).or(head.started_at.as_deref());
    let Some(when) = when.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else { return Fate::Undated };
    if when.with_timezone(&Utc) >= cutoff {
        return Fate::Recent;
    }
    // A SCIM change's intents carry `scim-SEQ` as their run (writes.rs).
    let run = head
        .run_id
        .filter(|r| !r.is_empty())
        .or_else(|| (head.kind.as_deref() == Some("scim")).then(|| format!("scim-{seq}")));
    Fate::Old { run }
}

/// The key right after `k` in sled's order.
fn after(k: &[u8]) -> Vec<u8> {
    let mut next = k.to_vec();
    next.push(0);
    next
}

impl Store {
    /// Run ids that an intent still waiting somewhere names: pending, dead-lettered, superseded
    /// or held for link review. Their records and reports are kept.
    ///
    /// # Errors
    /// On a storage error.
    pub fn runs_still_needed(&self) -> StoreResult<HashSet<String>> {
        let mut runs = HashSet::new();
        let trees =
            [self.t(tree::OUTBOX).clone(), self.t(tree::DEAD).clone(), self.superseded_tree()?, self.held_tree()?];
        for t in &trees {
            for kv in t.iter() {
                let (_, v) = kv?;
                // An unreadable entry names no run; it is the dead-letter path's to report.
                if let Some(op) = OutboxEntry::decode(&v).ok().and_then(|e| e.operator) {
                    runs.insert(op.run_id);
                }
            }
        }
        Ok(runs)
    }

    /// Removes audit records older than `cutoff` (and their subject index entries) in batches of
    /// `batch`, except those `needed` runs name. Stops early, between batches, once `stop` is set.
    ///
    /// # Errors
    /// On a storage error; what was removed before it stays removed, consistently.
    pub fn prune_audit(
        &self,
        cutoff: DateTime<Utc>,
        needed: &HashSet<String>,
        batch: usize,
        stop: &AtomicBool,
    ) -> StoreResult<Pruned> {
        let batch = batch.max(1);
        let audit = self.t(tree::AUDIT);
        let mut out = Pruned::default();
        let mut from: Vec<u8> = Vec::new();
        // Index entries below this sequence may point at removed records.
        let mut below = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let mut doomed: Vec<sled::IVec> = Vec::new();
            let (mut seen, mut reached_recent) = (0usize, false);
            for kv in audit.range(from.as_slice()..) {
                let (k, v) = kv?;
                let seq = keys::decode_u64(&k);
                from = after(&k);
                seen += 1;
                match fate(&v, cutoff, seq) {
                    Fate::Recent => {
                        reached_recent = true;
                        break;
                    }
                    Fate::Old { run } if run.as_ref().is_some_and(|r| needed.contains(r)) => out.kept_for_pending += 1,
                    Fate::Undated => {}
                    Fate::Old { .. } => {
                        below = below.max(seq + 1);
                        doomed.push(k);
                    }
                }
                if seen >= batch {
                    break;
                }
            }
            if !doomed.is_empty() {
                self.owe_sweep(below)?;
                let mut removal = sled::Batch::default();
                for k in &doomed {
                    removal.remove(k.clone());
                }
                let _guard = self.lock();
                audit.apply_batch(removal)?;
                self.mark_committed();
                out.audit_records += doomed.len() as u64;
            }
            if reached_recent || seen < batch {
                break;
            }
            std::thread::yield_now();
        }
        out.index_entries = self.sweep_audit_index(batch * 4, stop)?;
        Ok(out)
    }

    /// Records that a sweep of the subject index below `below` is owed (durably, before the
    /// records go), raising an owed sweep's bound.
    fn owe_sweep(&self, below: u64) -> StoreResult<()> {
        let meta = self.t(tree::META);
        let owed = meta.get(SWEEP_OWED)?.map(|v| keys::decode_u64(&v)).unwrap_or(0);
        if below > owed {
            meta.insert(SWEEP_OWED, &below.to_be_bytes())?;
        }
        Ok(())
    }

    /// Removes subject index entries whose record is gone, below the owed bound, `batch` keys at
    /// a time; clears the debt once the whole index has been walked.
    fn sweep_audit_index(&self, batch: usize, stop: &AtomicBool) -> StoreResult<u64> {
        let meta = self.t(tree::META);
        let Some(below) = meta.get(SWEEP_OWED)?.map(|v| keys::decode_u64(&v)) else { return Ok(0) };
        let (index, audit) = (self.t(tree::AUDIT_BY_SUBJECT), self.t(tree::AUDIT));
        let mut from: Vec<u8> = Vec::new();
        let mut removed = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(removed);
            }
            let mut doomed = sled::Batch::default();
            let (mut seen, mut n) = (0usize, 0u64);
            for kv in index.range(from.as_slice()..) {
                let (k, _) = kv?;
                from = after(&k);
                seen += 1;
                let seq = keys::decode_u64(&k[k.len().saturating_sub(8)..]);
                if seq < below && !audit.contains_key(seq.to_be_bytes())? {
                    doomed.remove(k);
                    n += 1;
                }
                if seen >= batch {
                    break;
                }
            }
            if n > 0 {
                let _guard = self.lock();
                index.apply_batch(doomed)?;
                self.mark_committed();
                removed += n;
            }
            if seen < batch {
                break;
            }
            std::thread::yield_now();
        }
        // A pass that raised the bound meanwhile owes its own sweep.
        let _guard = self.lock();
        if meta.get(SWEEP_OWED)?.map(|v| keys::decode_u64(&v)) == Some(below) {
            meta.remove(SWEEP_OWED)?;
        }
        self.mark_committed();
        Ok(removed)
    }

    /// Removes stored run reports finished before `cutoff`, except those of `needed` runs.
    ///
    /// # Errors
    /// On a storage error.
    pub fn prune_reports(
        &self,
        cutoff: DateTime<Utc>,
        needed: &HashSet<String>,
        batch: usize,
        stop: &AtomicBool,
    ) -> StoreResult<Pruned> {
        let reports = self.inner.db().open_tree(super::activity::REPORTS)?;
        let mut out = Pruned::default();
        let mut from: Vec<u8> = Vec::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let mut doomed = sled::Batch::default();
            let (mut seen, mut n, mut reached_recent) = (0usize, 0u64, false);
            for kv in reports.range(from.as_slice()..) {
                let (k, v) = kv?;
                from = after(&k);
                seen += 1;
                match fate(&v, cutoff, 0) {
                    Fate::Recent => {
                        reached_recent = true;
                        break;
                    }
                    Fate::Old { run } if run.as_ref().is_some_and(|r| needed.contains(r)) => out.kept_for_pending += 1,
                    Fate::Undated => {}
                    Fate::Old { .. } => {
                        doomed.remove(k);
                        n += 1;
                    }
                }
                if seen >= batch.max(1) {
                    break;
                }
            }
            if n > 0 {
                let _guard = self.lock();
                reports.apply_batch(doomed)?;
                self.mark_committed();
                out.reports += n;
            }
            if reached_recent || seen < batch.max(1) {
                break;
            }
        }
        Ok(out)
    }

    /// Removes notifications every channel was done with (`notify_sent`) that were raised
    /// before `cutoff`, oldest first (ids grow with time), in batches; stops at the first
    /// recent one. Notices still waiting (`notify_outbox`) are never touched.
    ///
    /// # Errors
    /// On a storage error or an unreadable record.
    pub fn prune_sent_notices(&self, cutoff: DateTime<Utc>, batch: usize, stop: &AtomicBool) -> StoreResult<u64> {
        let sent = self.inner.db().open_tree(super::notices::NOTIFY_SENT)?;
        let cutoff_ms = u64::try_from(cutoff.timestamp_millis()).unwrap_or(0);
        let mut removed = 0;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let mut doomed = sled::Batch::default();
            let (mut n, mut reached_recent) = (0usize, false);
            for kv in sent.iter().take(batch.max(1)) {
                let (k, v) = kv?;
                let at_ms = serde_json::from_slice::<AtMs>(&v).ok().and_then(|h| h.at_ms);
                // An undated record is kept, never guessed old; it also ends the pass.
                if at_ms.is_none_or(|t| t >= cutoff_ms) {
                    reached_recent = true;
                    break;
                }
                doomed.remove(k);
                n += 1;
            }
            if n > 0 {
                let _guard = self.lock();
                sent.apply_batch(doomed)?;
                self.mark_committed();
                removed += n as u64;
            }
            if reached_recent || n < batch.max(1) {
                break;
            }
        }
        Ok(removed)
    }

    /// When the oldest stored report finished (or started), if it says.
    ///
    /// # Errors
    /// On a storage error.
    pub fn oldest_report_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let Some((_, v)) = self.inner.db().open_tree(super::activity::REPORTS)?.first()? else { return Ok(None) };
        let Ok(h) = serde_json::from_slice::<Head>(&v) else { return Ok(None) };
        let when = h.finished_at.filter(|s| !s.is_empty()).or(h.started_at);
        Ok(when.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.with_timezone(&Utc)))
    }

    /// When the oldest dated audit record was written (undated ones, kept forever, are passed
    /// over; only the first thousand records are looked at).
    ///
    /// # Errors
    /// On a storage error.
    pub fn oldest_audit_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        for kv in self.t(tree::AUDIT).iter().take(1000) {
            let (_, v) = kv?;
            let at = serde_json::from_slice::<Head>(&v).ok().and_then(|h| h.at);
            if let Some(t) = at.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()) {
                return Ok(Some(t.with_timezone(&Utc)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(tmp.path()).expect("open");
        (tmp, store)
    }

    fn at(days_ago: i64) -> String {
        (Utc::now() - chrono::Duration::days(days_ago)).to_rfc3339()
    }

    fn index_len(store: &Store) -> usize {
        store.t(tree::AUDIT_BY_SUBJECT).len()
    }

    #[test]
    fn old_records_and_their_index_entries_go_in_small_batches_and_recent_ones_stay() {
        let (_tmp, store) = store();
        for i in 0..25 {
            let rec =
                json!({"type": "delivery", "at": at(500), "username": format!("old{i}"), "run_id": format!("r{i}")});
            store.audit_append(&format!("lane-old-{i}"), &rec).expect("append");
        }
        let recent = json!({"type": "delivery", "at": at(1), "username": "new", "run_id": "rnew"});
        store.audit_append("lane-new", &recent).expect("append");
        assert_eq!(index_len(&store), 26 * 3);
        let stop = AtomicBool::new(false);
        let cutoff = Utc::now() - chrono::Duration::days(400);
        let pruned = store.prune_audit(cutoff, &HashSet::new(), 4, &stop).expect("prune");
        assert_eq!((pruned.audit_records, pruned.index_entries), (25, 75));
        assert_eq!(store.t(tree::AUDIT).len(), 1);
        assert_eq!(index_len(&store), 3, "only the recent record's entries are left");
        assert_eq!(store.audit_of_person("new").expect("read"), Some(vec![recent]));
        assert_eq!(store.audit_of_person("old3").expect("read"), None);
        assert_eq!(store.audit_of_run("r3").expect("read"), None);
        assert!(store.t(tree::META).get(SWEEP_OWED).expect("meta").is_none(), "the sweep's debt is paid");
        // A second pass finds nothing to do.
        assert_eq!(store.prune_audit(cutoff, &HashSet::new(), 4, &stop).expect("prune"), Pruned::default());
    }

    #[test]
    fn records_of_a_run_still_needed_and_undated_records_are_kept() {
        let (_tmp, store) = store();
        let needed_rec = json!({"type": "delivery", "at": at(900), "run_id": "dead-run", "outcome": "dead"});
        store.audit_append("lane-a", &needed_rec).expect("append");
        let undated = json!({"type": "operator", "action": "x", "run_id": "r0"});
        store.audit_append("lane-b", &undated).expect("append");
        let scim = json!({"type": "scim", "at": at(900), "id": "u1", "seq": 3});
        store.audit_append("u1", &scim).expect("append");
        let gone = json!({"type": "delivery", "at": at(900), "run_id": "done-run"});
        store.audit_append("lane-c", &gone).expect("append");
        let scim_seq = keys::decode_u64(&store.t(tree::AUDIT).iter().nth(2).expect("third").expect("kv").0);
        let needed = HashSet::from(["dead-run".to_string(), format!("scim-{scim_seq}")]);
        let stop = AtomicBool::new(false);
        let pruned = store.prune_audit(Utc::now() - chrono::Duration::days(400), &needed, 100, &stop).expect("prune");
        assert_eq!((pruned.audit_records, pruned.kept_for_pending), (1, 2));
        assert_eq!(store.audit_of_run("dead-run").expect("read"), Some(vec![needed_rec]));
        assert_eq!(store.audit_of("u1").expect("read"), vec![scim]);
        assert_eq!(store.audit_of("lane-b").expect("read"), vec![undated]);
        assert_eq!(store.audit_of_run("done-run").expect("read"), None);
    }

    #[test]
    fn an_owed_sweep_is_finished_by_the_next_pass_after_a_stop() {
        let (_tmp, store) = store();
        for i in 0..10 {
            store.audit_append(&format!("l{i}"), &json!({"type": "delivery", "at": at(500)})).expect("append");
        }
        let cutoff = Utc::now() - chrono::Duration::days(400);
        // Records removed but the sweep interrupted: as after a crash between the two.
        let stopped = AtomicBool::new(false);
        store.owe_sweep(u64::MAX).expect("owe");
        store.t(tree::AUDIT).clear().expect("clear");
        stopped.store(true, Ordering::Relaxed);
        assert_eq!(store.sweep_audit_index(3, &stopped).expect("sweep"), 0);
        assert_eq!(index_len(&store), 10);
        let go = AtomicBool::new(false);
        assert_eq!(store.prune_audit(cutoff, &HashSet::new(), 3, &go).expect("prune").index_entries, 10);
        assert_eq!(index_len(&store), 0);
    }

    #[test]
    fn old_reports_go_unless_their_run_still_has_work_waiting() {
        let (_tmp, store) = store();
        let mut old = json!({"kind": "cleanup", "started_at": at(200), "finished_at": at(200), "run_id": "r-old"});
        let mut held = json!({"kind": "cleanup", "started_at": at(200), "finished_at": at(200), "run_id": "r-held"});
        let mut new = json!({"kind": "cleanup", "started_at": at(2), "finished_at": at(2), "run_id": "r-new"});
        let ids = [&mut old, &mut held, &mut new].map(|r| store.report_put(r).expect("put"));
        let stop = AtomicBool::new(false);
        let needed = HashSet::from(["r-held".to_string()]);
        let pruned = store.prune_reports(Utc::now() - chrono::Duration::days(90), &needed, 1, &stop).expect("prune");
        assert_eq!((pruned.reports, pruned.kept_for_pending), (1, 1));
        assert_eq!(store.report(ids[0]).expect("read"), None);
        assert!(store.report(ids[1]).expect("read").is_some());
        assert!(store.report(ids[2]).expect("read").is_some());
    }

    #[test]
    fn sent_notices_older_than_the_cutoff_go_and_waiting_ones_stay() {
        let (_dir, store) = store();
        store.want_notices(["dead_letter".to_string()]);
        for job in 0..3 {
            store.enqueue_notice(&serde_json::json!({"event": "dead_letter", "job": job})).expect("enqueue");
        }
        let mut pending = store.pending_notices().expect("pending");
        let waiting = pending.pop().expect("the third stays waiting");
        let done: Vec<(super::super::NoticeRecord, bool)> = pending.into_iter().map(|r| (r, true)).collect();
        store.update_notices(&done).expect("sent");
        let stop = AtomicBool::new(false);
        let past = Utc::now() - chrono::Duration::days(1);
        assert_eq!(store.prune_sent_notices(past, 1, &stop).expect("prune"), 0, "nothing is that old");
        assert_eq!(store.sent_notices().expect("sent").len(), 2);
        let future = Utc::now() + chrono::Duration::seconds(5);
        assert_eq!(store.prune_sent_notices(future, 1, &stop).expect("prune"), 2, "batches of one, all of them");
        assert!(store.sent_notices().expect("sent").is_empty());
        assert_eq!(store.pending_notices().expect("pending"), vec![waiting], "a waiting notice is never pruned");
    }
}
