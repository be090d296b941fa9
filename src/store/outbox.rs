//! The outbox: intents waiting for delivery, keyed by sequence, and the dead letters that ran
//! out of attempts. Intents enter in the SCIM change's own transaction (`writes.rs`) or through
//! `enqueue` (jobs, retries); they leave only in a transaction that also writes the outcome to
//! the audit log, so no intent is ever finished without a record of how.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::Transactional;

use super::error::{StoreError, StoreResult};
use super::keys;
use super::{tree, Store};

/// One stored intent with its delivery state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The policy's intent (`policy::Intent` as JSON).
    pub intent: Value,
    pub enqueued_at: String,
    /// Milliseconds since the epoch of `enqueued_at`, for latency and age.
    pub enqueued_ms: u64,
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (ms since epoch); 0 = now.
    #[serde(default)]
    pub next_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_at: Option<String>,
    /// Where the next attempt resumes (a Jira anonymization task still running), so a long task
    /// is followed to completion instead of being scheduled again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
}

impl OutboxEntry {
    pub fn new(intent: Value, now: &str, now_ms: u64) -> OutboxEntry {
        OutboxEntry {
            intent,
            enqueued_at: now.to_string(),
            enqueued_ms: now_ms,
            attempts: 0,
            next_ms: 0,
            last_error: None,
            dead_at: None,
            resume: None,
        }
    }
    pub fn encode(&self) -> StoreResult<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
    pub fn decode(bytes: &[u8]) -> StoreResult<OutboxEntry> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
    /// The SCIM user id the intent is for (its delivery lane, with the target).
    pub fn user_id(&self) -> &str {
        self.intent.get("user_id").and_then(Value::as_str).unwrap_or_default()
    }
    pub fn target(&self) -> &str {
        self.intent.get("target").and_then(Value::as_str).unwrap_or_default()
    }
}

/// An entry with its sequence number, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxItem {
    pub seq: u64,
    /// `pending` or `dead`.
    pub state: &'static str,
    #[serde(flatten)]
    pub entry: OutboxEntry,
}

fn decode_item(k: &[u8], v: &[u8], state: &'static str) -> StoreResult<OutboxItem> {
    Ok(OutboxItem { seq: keys::decode_u64(k), state, entry: OutboxEntry::decode(v)? })
}

impl Store {
    /// Woken whenever intents are added.
    pub fn outbox_signal(&self) -> &tokio::sync::Notify {
        &self.inner.outbox_signal
    }

    /// Pending entries with a sequence greater than `after`, in order.
    pub fn outbox_after(&self, after: u64) -> StoreResult<Vec<OutboxItem>> {
        self.t(tree::OUTBOX)
            .range((after.saturating_add(1)).to_be_bytes()..)
            .map(|kv| {
                let (k, v) = kv?;
                decode_item(&k, &v, "pending")
            })
            .collect()
    }

    pub fn outbox_get(&self, seq: u64) -> StoreResult<Option<OutboxEntry>> {
        self.t(tree::OUTBOX).get(seq.to_be_bytes())?.map(|v| OutboxEntry::decode(&v)).transpose()
    }

    /// Records a failed attempt (attempt count, next time, error) on a pending entry.
    pub fn outbox_update(&self, seq: u64, entry: &OutboxEntry) -> StoreResult<()> {
        let _guard = self.lock();
        self.t(tree::OUTBOX).insert(seq.to_be_bytes(), entry.encode()?)?;
        self.mark_committed();
        Ok(())
    }

    /// Removes a pending entry and writes its audit record, atomically.
    pub fn outbox_finish(&self, seq: u64, subject: &str, audit: &Value) -> StoreResult<()> {
        self.outbox_close(seq, subject, audit, None)
    }

    /// Moves a pending entry to the dead letters with its audit record, atomically.
    pub fn outbox_bury(&self, seq: u64, entry: &OutboxEntry, subject: &str, audit: &Value) -> StoreResult<()> {
        self.outbox_close(seq, subject, audit, Some(entry))
    }

    fn outbox_close(&self, seq: u64, subject: &str, audit: &Value, dead: Option<&OutboxEntry>) -> StoreResult<()> {
        // Every write takes the writer lock, so a backup (which holds it) is one point in time.
        let _guard = self.lock();
        let audit_seq = self.next_seq();
        let audit_bytes = serde_json::to_vec(audit).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let dead_bytes = dead.map(OutboxEntry::encode).transpose()?;
        let (outbox, dead_tree, audit_tree, by_subject) =
            (self.t(tree::OUTBOX), self.t(tree::DEAD), self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        (outbox, dead_tree, audit_tree, by_subject).transaction(|(o, d, a, s)| {
            o.remove(&seq.to_be_bytes())?;
            if let Some(b) = &dead_bytes {
                d.insert(&seq.to_be_bytes(), b.as_slice())?;
            }
            a.insert(&audit_seq.to_be_bytes(), audit_bytes.as_slice())?;
            s.insert(keys::seq_pair(subject, audit_seq), &[])?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        Ok(())
    }

    /// Adds intents to the outbox outside a SCIM change (jobs, retried dead letters). Takes the
    /// writer lock so sequence order equals commit order, which the delivery worker relies on.
    pub fn enqueue(&self, entries: &[OutboxEntry]) -> StoreResult<Vec<u64>> {
        let _guard = self.lock();
        let mut seqs = Vec::with_capacity(entries.len());
        let mut batch = sled::Batch::default();
        for e in entries {
            let seq = self.next_seq();
            batch.insert(&seq.to_be_bytes(), e.encode()?);
            seqs.push(seq);
        }
        self.t(tree::OUTBOX).apply_batch(batch)?;
        self.mark_committed();
        if !seqs.is_empty() {
            self.inner.outbox_signal.notify_one();
        }
        Ok(seqs)
    }

    /// Pending entries and dead letters, oldest first.
    pub fn jobs(&self) -> StoreResult<Vec<OutboxItem>> {
        let mut out: Vec<OutboxItem> = Vec::new();
        for (t, state) in [(tree::OUTBOX, "pending"), (tree::DEAD, "dead")] {
            for kv in self.t(t).iter() {
                let (k, v) = kv?;
                out.push(decode_item(&k, &v, state)?);
            }
        }
        out.sort_by_key(|i| i.seq);
        Ok(out)
    }

    /// One job by sequence, pending or dead.
    pub fn job(&self, seq: u64) -> StoreResult<Option<OutboxItem>> {
        for (t, state) in [(tree::OUTBOX, "pending"), (tree::DEAD, "dead")] {
            if let Some(v) = self.t(t).get(seq.to_be_bytes())? {
                return Ok(Some(decode_item(&seq.to_be_bytes(), &v, state)?));
            }
        }
        Ok(None)
    }

    /// Puts a dead letter back in the outbox (at the back of its lane) with a fresh attempt
    /// count; returns its new sequence, or None if there is no such dead letter.
    pub fn retry_dead(&self, seq: u64, now: &str, now_ms: u64) -> StoreResult<Option<u64>> {
        let _guard = self.lock();
        let Some(v) = self.t(tree::DEAD).get(seq.to_be_bytes())? else { return Ok(None) };
        let fresh = OutboxEntry::new(OutboxEntry::decode(&v)?.intent, now, now_ms).encode()?;
        let new_seq = self.next_seq();
        let (outbox, dead) = (self.t(tree::OUTBOX), self.t(tree::DEAD));
        (outbox, dead).transaction(|(o, d)| {
            o.insert(&new_seq.to_be_bytes(), fresh.as_slice())?;
            d.remove(&seq.to_be_bytes())?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        self.inner.outbox_signal.notify_one();
        Ok(Some(new_seq))
    }

    /// Removes a job (pending or dead) without delivering it; true if it existed.
    pub fn drop_job(&self, seq: u64, subject: &str, audit: &Value) -> StoreResult<bool> {
        if self.t(tree::OUTBOX).contains_key(seq.to_be_bytes())? {
            self.outbox_finish(seq, subject, audit)?;
            return Ok(true);
        }
        let _guard = self.lock();
        if self.t(tree::DEAD).remove(seq.to_be_bytes())?.is_some() {
            let audit_seq = self.next_seq();
            let bytes = serde_json::to_vec(audit).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.t(tree::AUDIT).insert(audit_seq.to_be_bytes(), bytes)?;
            self.t(tree::AUDIT_BY_SUBJECT).insert(keys::seq_pair(subject, audit_seq), &[])?;
            self.mark_committed();
            return Ok(true);
        }
        Ok(false)
    }
}

impl Store {
    /// Appends one audit record about `subject` outside a SCIM change (a failed delivery attempt).
    pub fn audit_append(&self, subject: &str, audit: &Value) -> StoreResult<()> {
        let _guard = self.lock();
        let seq = self.next_seq();
        let bytes = serde_json::to_vec(audit).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (a, s) = (self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        (a, s).transaction(|(a, s)| {
            a.insert(&seq.to_be_bytes(), bytes.as_slice())?;
            s.insert(keys::seq_pair(subject, seq), &[])?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        Ok(())
    }
}
