//! The outbox: intents waiting for delivery, keyed by sequence, and the dead letters that ran
//! out of attempts. Intents enter in the SCIM change's own transaction (`writes.rs`) or through
//! `enqueue` (jobs, retries); they leave only in a transaction that also writes the outcome to
//! the audit log, so no intent is ever finished without a record of how. Dead letters and
//! superseded intents keep their job number (`supersede.rs` says when an intent is stale).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::Transactional;

use super::audit::{encode, index_keys};
use super::error::{StoreError, StoreResult};
use super::guard_held::GuardTx;
use super::keys;
use super::operator::Operator;
use super::supersede::{lane_key, Basis};
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
    /// Who caused the intent and in which run (`actor`, `run_id`): the operator of a lifecycle
    /// run or retry, the IdP credential of a SCIM change; carried into the delivery record.
    #[serde(flatten)]
    pub operator: Option<Operator>,
    /// The state the intent was decided from (absent in entries written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<Basis>,
    /// The newer job that made this one stale (state `superseded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<u64>,
    /// Where the next attempt resumes (a Jira anonymization task still running), so a long task
    /// is followed to completion instead of being scheduled again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// Why the intent exists, in the words of `crate::reason` (`idp_disabled`, `inactive`,
    /// `operator`…). Entries written before reasons were kept have none; [`OutboxEntry::reason`]
    /// then derives it from the intent's trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The account's groups read before a run's first attempt at an action that can remove
    /// groups (`delivery/removed.rs`), so the delivery record and `undo` know what it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_before: Option<Vec<String>>,
}

impl OutboxEntry {
    pub fn new(intent: Value, now: &str, now_ms: u64) -> OutboxEntry {
        OutboxEntry {
            enqueued_at: now.to_string(),
            enqueued_ms: now_ms,
            attempts: 0,
            next_ms: 0,
            last_error: None,
            dead_at: None,
            operator: None,
            basis: None,
            superseded_by: None,
            resume: None,
            reason: Some(crate::reason::of_intent(&intent, None)),
            intent,
            groups_before: None,
        }
    }
    /// The same entry, attributed to `op`.
    pub fn with_operator(mut self, op: &Operator) -> OutboxEntry {
        self.operator = Some(op.clone());
        self
    }
    /// An entry decided in `batch` (one SCIM change, one operator run).
    pub fn decided(intent: Value, now: &str, now_ms: u64, batch: u64) -> OutboxEntry {
        let basis = Some(Basis::of(&intent, batch));
        OutboxEntry { basis, ..OutboxEntry::new(intent, now, now_ms) }
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
    /// The entry's reason: the recorded one, else the one its trigger implies.
    pub fn reason(&self) -> String {
        crate::reason::of_intent(&self.intent, self.reason.as_deref())
    }
}

/// An entry with its sequence number, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxItem {
    pub seq: u64,
    /// `pending`, `dead`, `superseded` or `held_for_review`.
    pub state: &'static str,
    #[serde(flatten)]
    pub entry: OutboxEntry,
}

fn decode_item(k: &[u8], v: &[u8], state: &'static str) -> StoreResult<OutboxItem> {
    let mut entry = OutboxEntry::decode(v)?;
    // Listed with its reason, also when written before reasons were kept.
    entry.reason = Some(entry.reason());
    Ok(OutboxItem { seq: keys::decode_u64(k), state, entry })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
        self.outbox_close(seq, subject, audit, None, None)
    }

    /// Moves a pending entry to the dead letters with its audit record, atomically.
    pub fn outbox_bury(&self, seq: u64, entry: &OutboxEntry, subject: &str, audit: &Value) -> StoreResult<()> {
        self.outbox_close(seq, subject, audit, Some(entry), None)
    }

    /// As [`Store::outbox_bury`], with the dead letter's notice (`notices.rs`) in the same
    /// transaction: a dead letter is never on disk without its notification.
    pub fn outbox_bury_noticed(
        &self,
        seq: u64,
        entry: &OutboxEntry,
        subject: &str,
        audit: &Value,
        notice: Option<&super::NoticeRow>,
    ) -> StoreResult<()> {
        self.outbox_close(seq, subject, audit, Some(entry), notice)
    }

    fn outbox_close(
        &self,
        seq: u64,
        subject: &str,
        audit: &Value,
        dead: Option<&OutboxEntry>,
        notice: Option<&super::NoticeRow>,
    ) -> StoreResult<()> {
        // Every write takes the writer lock, so a backup (which holds it) is one point in time.
        let _guard = self.lock();
        let audit_seq = self.next_seq();
        let audit_bytes = encode(audit)?;
        let index = index_keys(subject, audit, audit_seq);
        let dead_bytes = dead.map(OutboxEntry::encode).transpose()?;
        let lane = dead.map(|e| lane_key(e.target(), e.user_id(), seq));
        let (lanes, notices) = (self.dead_lane_tree()?, self.notice_tree()?);
        let (outbox, dead_tree, audit_tree, by_subject) =
            (self.t(tree::OUTBOX), self.t(tree::DEAD), self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        (&*outbox, &*dead_tree, &*audit_tree, &*by_subject, &lanes, &notices).transaction(|(o, d, a, s, l, n)| {
            if let Some(row) = notice {
                row.put(n)?;
            }
            o.remove(&seq.to_be_bytes())?;
            if let (Some(b), Some(lane)) = (&dead_bytes, &lane) {
                d.insert(&seq.to_be_bytes(), b.as_slice())?;
                l.insert(lane.as_slice(), &[])?;
            }
            super::audit::put_in(a, s, audit_seq, &audit_bytes, &index)?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        if notice.is_some() {
            self.notice_written();
        }
        Ok(())
    }

    /// Adds intents with one audit record each (`queued`: who queued what, in which run, why),
    /// in one transaction, so an intent never exists without the record of who caused it. The
    /// record gets the entry's job number and operator; it is indexed under the entry's lane and
    /// Atlassian username. Takes the writer lock, as [`Store::enqueue`].
    ///
    /// # Errors
    /// On a storage error; nothing of the batch is written then.
    pub fn enqueue_audited(&self, entries: &[(OutboxEntry, Value)]) -> StoreResult<Vec<u64>> {
        let _guard = self.lock();
        let mut rows = Vec::with_capacity(entries.len());
        for (entry, record) in entries {
            let (seq, audit_seq) = (self.next_seq(), self.next_seq());
            let mut record = record.clone();
            if let Some(o) = record.as_object_mut() {
                o.insert("job".into(), seq.into());
                if let Some(op) = &entry.operator {
                    o.insert("actor".into(), op.actor.clone().into());
                    o.insert("run_id".into(), op.run_id.clone().into());
                }
            }
            let index = index_keys(entry.user_id(), &record, audit_seq);
            // A queued offboarding records its reason with it (`deactivations.rs`).
            let deact = super::deactivations::effect(&record, seq, "queued")?;
            rows.push((seq, entry.encode()?, audit_seq, encode(&record)?, index, deact));
        }
        let items: Vec<(u64, &OutboxEntry)> = rows.iter().map(|r| r.0).zip(entries.iter().map(|e| &e.0)).collect();
        let guard = self.guard_plan(&items, &now_text(), now_ms())?;
        let g = self.guard_trees()?;
        let deact_tree = self.deactivations_tree()?;
        let (outbox, audit_tree, by_subject) =
            (self.t(tree::OUTBOX), self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        let trees = (
            &*outbox,
            &*audit_tree,
            &*by_subject,
            &g.held,
            &g.lanes,
            &g.window,
            &g.superseded,
            &deact_tree,
            &g.notices,
        );
        trees.transaction(|(o, a, s, h, l, w, su, z, n)| {
            for (i, (seq, entry, audit_seq, record, index, deact)) in rows.iter().enumerate() {
                if let Some(e) = deact {
                    super::deactivations::apply(z, e)?;
                }
                if !guard.is_held(i) {
                    o.insert(&seq.to_be_bytes(), entry.as_slice())?;
                }
                super::audit::put_in(a, s, *audit_seq, record, index)?;
            }
            guard.write(&GuardTx {
                held: h,
                lanes: l,
                window: w,
                superseded: su,
                audit: a,
                by_subject: s,
                notices: n,
            })?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        self.guard_applied(guard);
        if !rows.is_empty() {
            self.inner.outbox_signal.notify_one();
        }
        Ok(rows.iter().map(|r| r.0).collect())
    }

    /// Adds intents to the outbox outside a SCIM change (jobs, retried dead letters). Takes the
    /// writer lock so sequence order equals commit order, which the delivery worker relies on.
    pub fn enqueue(&self, entries: &[OutboxEntry]) -> StoreResult<Vec<u64>> {
        let _guard = self.lock();
        let mut seqs = Vec::with_capacity(entries.len());
        let mut decided = Vec::with_capacity(entries.len());
        let mut decision = None;
        for e in entries {
            let seq = self.next_seq();
            // Entries without a basis are one decision: the call's first job number names it.
            let decision = *decision.get_or_insert(seq);
            decided.push(match &e.basis {
                Some(_) => e.clone(),
                None => OutboxEntry { basis: Some(Basis::of(&e.intent, decision)), ..e.clone() },
            });
            seqs.push(seq);
        }
        let bytes: Vec<Vec<u8>> = decided.iter().map(OutboxEntry::encode).collect::<StoreResult<_>>()?;
        let items: Vec<(u64, &OutboxEntry)> = seqs.iter().copied().zip(&decided).collect();
        let guard = self.guard_plan(&items, &now_text(), now_ms())?;
        let g = self.guard_trees()?;
        let (outbox, audit_tree, by_subject) =
            (self.t(tree::OUTBOX), self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        let trees = (&*outbox, &*audit_tree, &*by_subject, &g.held, &g.lanes, &g.window, &g.superseded, &g.notices);
        trees.transaction(|(o, a, s, h, l, w, su, n)| {
            for (i, (seq, b)) in seqs.iter().zip(&bytes).enumerate() {
                if !guard.is_held(i) {
                    o.insert(&seq.to_be_bytes(), b.as_slice())?;
                }
            }
            guard.write(&GuardTx {
                held: h,
                lanes: l,
                window: w,
                superseded: su,
                audit: a,
                by_subject: s,
                notices: n,
            })?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        self.guard_applied(guard);
        if !seqs.is_empty() {
            self.inner.outbox_signal.notify_one();
        }
        Ok(seqs)
    }

    /// Pending entries, dead letters, superseded intents and intents held for review, oldest first.
    pub fn jobs(&self) -> StoreResult<Vec<OutboxItem>> {
        let mut out: Vec<OutboxItem> = Vec::new();
        for (t, state) in [(tree::OUTBOX, "pending"), (tree::DEAD, "dead")] {
            for kv in self.t(t).iter() {
                let (k, v) = kv?;
                out.push(decode_item(&k, &v, state)?);
            }
        }
        out.extend(self.superseded_items()?);
        out.extend(self.held_items()?);
        out.extend(self.guard_held()?);
        out.sort_by_key(|i| i.seq);
        Ok(out)
    }

    /// One job by sequence: pending, dead, superseded or held for review.
    pub fn job(&self, seq: u64) -> StoreResult<Option<OutboxItem>> {
        for (t, state) in [(tree::OUTBOX, "pending"), (tree::DEAD, "dead")] {
            if let Some(v) = self.t(t).get(seq.to_be_bytes())? {
                return Ok(Some(decode_item(&seq.to_be_bytes(), &v, state)?));
            }
        }
        if let Some(v) = self.superseded_tree()?.get(seq.to_be_bytes())? {
            return Ok(Some(decode_item(&seq.to_be_bytes(), &v, "superseded")?));
        }
        if let Some(e) = self.guard_held_get(seq)? {
            return Ok(Some(OutboxItem { seq, state: super::GUARD_HELD_STATE, entry: e }));
        }
        Ok(self.held_items()?.into_iter().find(|i| i.seq == seq))
    }

    /// Puts a dead letter (or, when `force`, a superseded intent) back in the outbox at the back
    /// of its lane with a fresh attempt count, attributed to `op`, together with `audit` (the
    /// operator's record, indexed under the user, the username and the run) in the same
    /// transaction; returns its new sequence, or None if there is no such job. A forced retry is a
    /// new decision by the operator, so it gets a batch of its own and supersedes what it
    /// contradicts.
    pub fn retry_dead(
        &self,
        seq: u64,
        op: &Operator,
        now: &str,
        now_ms: u64,
        force: bool,
        audit: &Value,
    ) -> StoreResult<Option<u64>> {
        let _guard = self.lock();
        let sup = self.superseded_tree()?;
        let from_dead = self.t(tree::DEAD).get(seq.to_be_bytes())?;
        let (v, from_dead) = match (from_dead, force) {
            (Some(v), _) => (v, true),
            (None, true) => match sup.get(seq.to_be_bytes())? {
                Some(v) => (v, false),
                None => return Ok(None),
            },
            (None, false) => return Ok(None),
        };
        let old = OutboxEntry::decode(&v)?;
        let new_seq = self.next_seq();
        let basis = match (force, &old.basis) {
            (false, Some(b)) => b.clone(),
            (false, None) => old.basis_or_implied(),
            (true, _) => Basis::of(&old.intent, new_seq),
        };
        let lane = lane_key(old.target(), old.user_id(), seq);
        let subject = old.user_id().to_string();
        // A forced retry is the operator's own decision; a plain retry carries the original reason.
        let reason = Some(if force { crate::reason::OPERATOR.to_string() } else { old.reason() });
        let fresh = OutboxEntry { basis: Some(basis), reason, ..OutboxEntry::new(old.intent, now, now_ms) }
            .with_operator(op)
            .encode()?;
        let audit_seq = self.next_seq();
        let mut audit = audit.clone();
        if let Some(o) = audit.as_object_mut() {
            o.insert("retried_as".into(), Value::from(new_seq));
            o.insert("new_job".into(), Value::from(new_seq));
        }
        let (audit_bytes, index) = (encode(&audit)?, index_keys(&subject, &audit, audit_seq));
        let lanes = self.dead_lane_tree()?;
        let (outbox, dead, a, b) =
            (self.t(tree::OUTBOX), self.t(tree::DEAD), self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        (&*outbox, &*dead, &sup, &lanes, &*a, &*b).transaction(|(o, d, s, l, a, b)| {
            o.insert(&new_seq.to_be_bytes(), fresh.as_slice())?;
            if from_dead {
                d.remove(&seq.to_be_bytes())?;
                l.remove(lane.as_slice())?;
            } else {
                s.remove(&seq.to_be_bytes())?;
            }
            super::audit::put_in(a, b, audit_seq, &audit_bytes, &index)?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        self.inner.outbox_signal.notify_one();
        Ok(Some(new_seq))
    }

    /// Removes a job (pending, dead, superseded or held) without delivering it; true if it existed.
    pub fn drop_job(&self, seq: u64, subject: &str, audit: &Value) -> StoreResult<bool> {
        if self.t(tree::OUTBOX).contains_key(seq.to_be_bytes())? {
            self.outbox_finish(seq, subject, audit)?;
            return Ok(true);
        }
        let _guard = self.lock();
        // Where the job waits, found first, so that leaving it and the audit record of the drop
        // are one transaction.
        let place = if let Some(v) = self.t(tree::DEAD).get(seq.to_be_bytes())? {
            let e = OutboxEntry::decode(&v)?;
            Some(DropFrom::Dead(lane_key(e.target(), e.user_id(), seq)))
        } else if self.superseded_tree()?.contains_key(seq.to_be_bytes())? {
            Some(DropFrom::Superseded)
        } else {
            self.held_key(seq)?.map(DropFrom::Held)
        };
        let Some(place) = place else { return Ok(false) };
        let audit_seq = self.next_seq();
        let bytes = encode(audit)?;
        let index = index_keys(subject, audit, audit_seq);
        let (sup, lanes, held) = (self.superseded_tree()?, self.dead_lane_tree()?, self.held_tree()?);
        let (dead, audit_tree, by_subject) = (self.t(tree::DEAD), self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        let trees = (&*dead, &sup, &lanes, &held, &*audit_tree, &*by_subject);
        trees.transaction(|(d, su, l, h, a, s)| {
            match &place {
                DropFrom::Dead(lane) => {
                    d.remove(&seq.to_be_bytes())?;
                    l.remove(lane.as_slice())?;
                }
                DropFrom::Superseded => {
                    su.remove(&seq.to_be_bytes())?;
                }
                DropFrom::Held(key) => {
                    h.remove(key)?;
                }
            }
            super::audit::put_in(a, s, audit_seq, &bytes, &index)?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        Ok(true)
    }
}

/// Where a job that is not pending waits: a dead letter (with its lane index key), a superseded
/// intent, or an entry held for link review (its key there).
enum DropFrom {
    Dead(Vec<u8>),
    Superseded,
    Held(sled::IVec),
}

impl Store {
    /// Appends one audit record about `subject` outside a SCIM change (a failed delivery attempt,
    /// an operator action), indexed as `audit.rs` describes.
    pub fn audit_append(&self, subject: &str, audit: &Value) -> StoreResult<()> {
        let _guard = self.lock();
        let seq = self.next_seq();
        let bytes = encode(audit)?;
        let index = index_keys(subject, audit, seq);
        let (a, s) = (self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        (&*a, &*s).transaction(|(a, s)| {
            super::audit::put_in(a, s, seq, &bytes, &index)?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        Ok(())
    }
}
