//! The notification lane: notices (`notify::Notice` as JSON) waiting to be sent, in a tree of
//! their own (`notify_outbox`: id → [`NoticeRecord`]), and the ones every channel is done with
//! (`notify_sent`: id → the same record with each channel's outcome). Ids come from sled's
//! persistent id generator, so they only grow, also across a crash.
//!
//! A notice enters with its cause where that matters: [`Store::notice_row`] prepares it and
//! [`NoticeRow::put`] writes it inside the cause's own transaction (a dead letter and its notice
//! are one write); [`Store::enqueue_notice`] is the same on its own. It leaves the outbox only in
//! the transaction that moves it, with every channel's outcome, to `notify_sent`, and each
//! channel's success is written (and flushed by the sender) before the next channel is tried, so
//! a restart resends nothing already marked sent.
//!
//! Only events some configured channel wants are stored ([`Store::want_notices`], set by `serve`
//! from `[notify]`): without notifications configured, an offboarding writes nothing here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::Transactional;

use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;

pub(crate) const NOTIFY_OUTBOX: &str = "notify_outbox";
pub(crate) const NOTIFY_SENT: &str = "notify_sent";

/// The lane's in-memory state: which events are wanted, and a wake-up for the sender.
#[derive(Default)]
pub(crate) struct NoticeLane {
    wanted: std::sync::RwLock<BTreeSet<String>>,
    signal: tokio::sync::Notify,
}

/// One channel's progress with one notice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelLog {
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// `sent`, `digest` (sent as part of a digest) or `failed` (given up); absent while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<String>,
}

/// A stored notice with each channel's progress (channels are named by `notify`: `smtp`,
/// `webhook:<url_env>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticeRecord {
    #[serde(default)]
    pub id: u64,
    /// The notice (`notify::Notice` as JSON: `{"event": ..., ...}`).
    pub notice: Value,
    pub at: String,
    pub at_ms: u64,
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelLog>,
}

impl NoticeRecord {
    /// The notice's event name (`held`, `dead_letter`, ...).
    pub fn event(&self) -> &str {
        self.notice.get("event").and_then(Value::as_str).unwrap_or_default()
    }

    /// Whether `channel` is done with this notice (sent or given up).
    pub fn is_done(&self, channel: &str) -> bool {
        self.channels.get(channel).is_some_and(|c| c.outcome.is_some())
    }

    fn encode(&self) -> StoreResult<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    fn decode(k: &[u8], v: &[u8]) -> StoreResult<NoticeRecord> {
        let mut r: NoticeRecord = serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        r.id = keys::decode_u64(k);
        Ok(r)
    }
}

/// A notice ready to be written inside another transaction (see the module header).
pub struct NoticeRow {
    id: u64,
    bytes: Vec<u8>,
}

impl NoticeRow {
    /// Writes the notice in a transaction over [`Store::notice_tree`].
    ///
    /// # Errors
    /// As any write in a sled transaction.
    pub fn put(
        &self,
        tree: &sled::transaction::TransactionalTree,
    ) -> Result<(), sled::transaction::UnabortableTransactionError> {
        tree.insert(&self.id.to_be_bytes(), self.bytes.as_slice())?;
        Ok(())
    }

    pub fn id(&self) -> u64 {
        self.id
    }
}

fn now() -> (String, u64) {
    let now = chrono::Utc::now();
    (now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), u64::try_from(now.timestamp_millis()).unwrap_or(0))
}

impl Store {
    /// Sets the events some channel wants (from `[notify]`); notices of others are not stored.
    pub fn want_notices(&self, events: impl IntoIterator<Item = String>) {
        let mut w = self.inner.notices.wanted.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *w = events.into_iter().collect();
    }

    /// Whether a notice of `event` would be stored.
    pub fn wants_notice(&self, event: &str) -> bool {
        self.inner.notices.wanted.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(event)
    }

    /// Woken when a notice is stored.
    pub fn notice_signal(&self) -> &tokio::sync::Notify {
        &self.inner.notices.signal
    }

    /// The tree to name in a transaction that writes a [`NoticeRow`].
    ///
    /// # Errors
    /// On a storage error.
    pub fn notice_tree(&self) -> StoreResult<sled::Tree> {
        Ok(self.inner.db().open_tree(NOTIFY_OUTBOX)?)
    }

    fn notice_sent_tree(&self) -> StoreResult<sled::Tree> {
        Ok(self.inner.db().open_tree(NOTIFY_SENT)?)
    }

    /// Prepares `notice` (anything serialising to `{"event": ..., ...}`, i.e. `notify::Notice`)
    /// for [`NoticeRow::put`]; `None` when no channel wants its event. Call
    /// [`Store::notice_written`] after the transaction commits.
    ///
    /// # Errors
    /// When the notice does not serialise, or on a storage error.
    pub fn notice_row(&self, notice: &impl Serialize) -> StoreResult<Option<NoticeRow>> {
        let notice = serde_json::to_value(notice).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let event = notice.get("event").and_then(Value::as_str).unwrap_or_default();
        if !self.wants_notice(event) {
            return Ok(None);
        }
        let (at, at_ms) = now();
        let record = NoticeRecord { id: 0, notice, at, at_ms, channels: BTreeMap::new() };
        Ok(Some(NoticeRow { id: self.inner.db().generate_id()?, bytes: record.encode()? }))
    }

    /// Wakes the sender after a transaction wrote a [`NoticeRow`].
    pub fn notice_written(&self) {
        self.mark_committed();
        self.inner.notices.signal.notify_one();
    }

    /// Stores one notice for sending (durable with the next flush, at most `BACKGROUND_FLUSH`
    /// later); returns its id, or `None` when no channel wants its event.
    ///
    /// # Errors
    /// When the notice does not serialise, or on a storage error.
    pub fn enqueue_notice(&self, notice: &impl Serialize) -> StoreResult<Option<u64>> {
        let Some(row) = self.notice_row(notice)? else { return Ok(None) };
        let _guard = self.lock();
        self.notice_tree()?.insert(row.id.to_be_bytes(), row.bytes)?;
        self.notice_written();
        Ok(Some(row.id))
    }

    /// Notices not yet done by every channel, oldest first.
    ///
    /// # Errors
    /// On a storage error or an unreadable record.
    pub fn pending_notices(&self) -> StoreResult<Vec<NoticeRecord>> {
        self.notice_tree()?
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                NoticeRecord::decode(&k, &v)
            })
            .collect()
    }

    /// How many notices wait for a channel (`/metrics`: a growing number means a channel fails).
    pub fn pending_notice_count(&self) -> usize {
        self.notice_tree().map(|t| t.len()).unwrap_or(0)
    }

    /// Notices every channel is done with, oldest first.
    ///
    /// # Errors
    /// On a storage error or an unreadable record.
    pub fn sent_notices(&self) -> StoreResult<Vec<NoticeRecord>> {
        self.notice_sent_tree()?
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                NoticeRecord::decode(&k, &v)
            })
            .collect()
    }

    /// Writes the progress of pending notices; those with `finished` set move to `notify_sent`.
    /// One transaction, so a digest marks all the notices it carried at once.
    ///
    /// # Errors
    /// On a storage error; nothing is written then.
    pub fn update_notices(&self, records: &[(NoticeRecord, bool)]) -> StoreResult<()> {
        let rows = records
            .iter()
            .map(|(r, finished)| Ok((r.id.to_be_bytes(), r.encode()?, *finished)))
            .collect::<StoreResult<Vec<_>>>()?;
        let _guard = self.lock();
        let (outbox, sent) = (self.notice_tree()?, self.notice_sent_tree()?);
        (&outbox, &sent).transaction(|(o, s)| {
            for (key, bytes, finished) in &rows {
                if *finished {
                    o.remove(key)?;
                    s.insert(key, bytes.as_slice())?;
                } else if o.get(key)?.is_some() {
                    o.insert(key, bytes.as_slice())?;
                }
            }
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_wanted_events_are_stored_and_a_finished_notice_moves_to_sent() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.enqueue_notice(&json!({"event": "dead_letter", "job": 1})).expect("enqueue"), None);
        store.want_notices(["dead_letter".to_string()]);
        let id = store.enqueue_notice(&json!({"event": "dead_letter", "job": 1})).expect("enqueue").expect("id");
        let later = store.enqueue_notice(&json!({"event": "dead_letter", "job": 2})).expect("enqueue").expect("id");
        assert!(later > id);
        let mut pending = store.pending_notices().expect("pending");
        assert_eq!(pending.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id, later]);
        let mut first = pending.remove(0);
        first
            .channels
            .insert("smtp".into(), ChannelLog { attempts: 1, outcome: Some("sent".into()), ..Default::default() });
        store.update_notices(&[(first.clone(), true)]).expect("update");
        assert_eq!(store.pending_notices().expect("pending").len(), 1);
        assert_eq!(store.sent_notices().expect("sent"), vec![first]);
    }
}
