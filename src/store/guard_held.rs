//! The held queue of the mass-offboarding brake (issue 12 §1, rule in `guard/`). Every writer of
//! the outbox (a SCIM change in `writes.rs`, `enqueue` and `enqueue_audited` for jobs) asks
//! [`Store::guard_plan`] under the writer lock and writes the plan in its own transaction, so an
//! intent is either pending or held, never lost between, and the IdP is answered at once.
//!
//! | tree | key → value |
//! | --- | --- |
//! | `guard_held` | sequence (u64 BE) → `OutboxEntry` JSON: held, not delivered |
//! | `guard_held_by_lane` | target 0x00 user 0x00 sequence → () |
//! | `guard_window` | ms since the epoch (u64 BE), sequence (u64 BE) → (): destructive intents let through, so the window survives a restart |
//!
//! Order in a lane: a destructive intent behind a held one is held too; a newer intent that
//! supersedes a held one (the IdP enabled the user again) moves it to the superseded jobs in the
//! same transaction (`supersede.rs`), so approving later never replays the stale decision.
//! Approved intents go to the back of the outbox in their original order under the approver's
//! run id, and are not counted again; rejected ones are recorded and dropped.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::{json, Value};
use sled::transaction::TransactionalTree;
use sled::Transactional;

use super::audit::{encode, index_keys, operator_record};
use super::error::{StoreError, StoreResult};
use super::keys;
use super::operator::Operator;
use super::outbox::{OutboxEntry, OutboxItem};
use super::records::Kind;
use super::supersede::lane_key;
use super::{tree, Store};
use crate::guard::{brake_engaged_notice, held_notification, is_destructive, BrakeFacts, Guard, Verdict, Window};

/// The `jobs list` state of an intent the brake holds.
pub const GUARD_HELD_STATE: &str = "held";
/// The audit subject of the brake's own records (engaged, released).
pub const GUARD_SUBJECT: &str = "guard";
/// Approvals and rejections are written in transactions of at most this many intents.
const DECISION_BATCH: usize = 500;

type TxResult = Result<(), sled::transaction::ConflictableTransactionError<StoreError>>;

/// One decided intent: its held job, lane key, and new job and bytes when approved.
type Move = (u64, Vec<u8>, Option<(u64, Vec<u8>)>);

/// The brake's in-memory state (the rule, the window, how many are held). Its trees are opened
/// from the database now open ([`Store::guard_trees`]): a reopen after a full disk replaces it.
pub(crate) struct GuardCell {
    state: Mutex<GuardState>,
}

/// The brake's trees, and the superseded jobs (`supersede.rs`), for writers whose transaction
/// spans them.
#[derive(Clone)]
pub(crate) struct GuardTrees {
    pub(crate) held: sled::Tree,
    pub(crate) lanes: sled::Tree,
    pub(crate) window: sled::Tree,
    pub(crate) superseded: sled::Tree,
    /// The notification lane (`notices.rs`): the brake's notice is written with what it held.
    pub(crate) notices: sled::Tree,
}

struct GuardState {
    rule: Guard,
    window: Window,
    held: u64,
    /// Runs an operator let over the brake (`--allow-over-guard`), by run id.
    allowed_runs: HashSet<String>,
}

fn window_key(ms: u64, seq: u64) -> Vec<u8> {
    let mut k = ms.to_be_bytes().to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn lane_prefix(target: &str, user: &str) -> Vec<u8> {
    let mut k = keys::pair(target, user);
    k.push(keys::SEP);
    k
}

fn action_type(e: &OutboxEntry) -> &str {
    e.intent.pointer("/action/type").and_then(Value::as_str).unwrap_or_default()
}

fn is_dry_run(e: &OutboxEntry) -> bool {
    e.intent.get("dry_run").and_then(Value::as_bool).unwrap_or(false)
}

impl GuardCell {
    /// Reads the window and counts what is held; the last held job number is returned so the
    /// store's counter starts above it.
    pub(super) fn open(db: &sled::Db) -> StoreResult<(GuardCell, u64)> {
        let (held, window) = (db.open_tree("guard_held")?, db.open_tree("guard_window")?);
        let mut w = Window::default();
        for kv in window.iter() {
            let (k, _) = kv?;
            if k.len() == 16 {
                w.admit(keys::decode_u64(&k[..8]), keys::decode_u64(&k[8..]));
            }
        }
        let last = held.last()?.map(|(k, _)| keys::decode_u64(&k)).unwrap_or(0);
        let state =
            GuardState { rule: Guard::default(), window: w, held: held.len() as u64, allowed_runs: HashSet::new() };
        Ok((GuardCell { state: Mutex::new(state) }, last))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GuardState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What one write does about the brake: which of its intents are held, which held ones it makes
/// stale, what enters the window, and the audit records of all that. Written by the caller's
/// transaction ([`GuardPlan::write`]), then applied to memory ([`Store::guard_applied`]).
#[derive(Default)]
pub(crate) struct GuardPlan {
    held: Vec<bool>,
    held_rows: Vec<(u64, Vec<u8>, Vec<u8>)>,
    superseded: Vec<(u64, Vec<u8>, Vec<u8>)>,
    admitted: Vec<(u64, u64)>,
    forgotten: Vec<(u64, u64)>,
    records: Vec<(u64, Vec<u8>, Vec<Vec<u8>>)>,
    engaged: Option<Value>,
    /// The `held` notification of an engagement, when a channel wants it.
    notice: Option<super::NoticeRow>,
}

/// The brake's trees inside a caller's transaction.
pub(crate) struct GuardTx<'a> {
    pub held: &'a TransactionalTree,
    pub lanes: &'a TransactionalTree,
    pub window: &'a TransactionalTree,
    pub superseded: &'a TransactionalTree,
    pub audit: &'a TransactionalTree,
    pub by_subject: &'a TransactionalTree,
    pub notices: &'a TransactionalTree,
}

impl GuardPlan {
    /// Whether the write's `i`-th intent is held (the caller leaves it out of the outbox).
    pub fn is_held(&self, i: usize) -> bool {
        self.held.get(i).copied().unwrap_or(false)
    }

    /// Whether [`GuardPlan::write`] has anything to write: a write with no destructive intent
    /// (most IdP traffic) leaves the brake's trees out of its transaction.
    pub fn writes_anything(&self) -> bool {
        !(self.held_rows.is_empty()
            && self.superseded.is_empty()
            && self.admitted.is_empty()
            && self.forgotten.is_empty()
            && self.records.is_empty()
            && self.notice.is_none())
    }

    pub fn write(&self, t: &GuardTx<'_>) -> TxResult {
        for (seq, lane, bytes) in &self.held_rows {
            t.held.insert(&seq.to_be_bytes(), bytes.as_slice())?;
            t.lanes.insert(lane.as_slice(), &[])?;
        }
        for (seq, lane, bytes) in &self.superseded {
            t.held.remove(&seq.to_be_bytes())?;
            t.lanes.remove(lane.as_slice())?;
            t.superseded.insert(&seq.to_be_bytes(), bytes.as_slice())?;
        }
        for (ms, seq) in &self.admitted {
            t.window.insert(window_key(*ms, *seq), &[])?;
        }
        for (ms, seq) in &self.forgotten {
            t.window.remove(window_key(*ms, *seq))?;
        }
        for (seq, bytes, index) in &self.records {
            super::audit::put_in(t.audit, t.by_subject, *seq, bytes, index)?;
        }
        if let Some(row) = &self.notice {
            row.put(t.notices)?;
        }
        Ok(())
    }
}

/// The brake's figures, for `/metrics`, `held list` and refusals.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GuardStatus {
    pub held: u64,
    /// Destructive intents let through in the current window.
    pub used: u64,
    /// None when there is no brake (`max_offboardings = 0`).
    pub limit: Option<u64>,
    pub window_secs: u64,
}

/// The outcome of approving or rejecting held intents.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HeldDecision {
    /// (held job, new job) of each approved intent, in the original order.
    pub approved: Vec<(u64, u64)>,
    pub rejected: Vec<u64>,
}

impl Store {
    /// Sets the brake's rule (from `[guard]`); until called, the default (50 per hour) applies.
    pub fn set_guard(&self, rule: Guard) {
        self.inner.guard.state().rule = rule;
    }

    pub fn guard_rule(&self) -> Guard {
        self.inner.guard.state().rule
    }

    /// How many intents are held, what the window has used and its limit.
    pub fn guard_status(&self) -> GuardStatus {
        let known = self.count(Kind::User);
        let mut st = self.inner.guard.state();
        let rule = st.rule;
        st.window.prune(now_ms(), rule.window_ms());
        GuardStatus {
            held: st.held,
            used: st.window.used(),
            limit: rule.limit(known),
            window_secs: rule.window.as_secs(),
        }
    }

    /// Whether a run of `count` destructive intents would go over the brake now.
    pub fn guard_run_exceeds(&self, count: u64) -> bool {
        let status = self.guard_status();
        let known = self.count(Kind::User);
        self.guard_rule().run_exceeds(count, status.used, known)
    }

    /// Lets run `run_id`'s intents past the brake (an operator's `--allow-over-guard`, audited by
    /// the caller); they are not counted either.
    pub fn guard_allow_run(&self, run_id: &str) {
        self.inner.guard.state().allowed_runs.insert(run_id.to_string());
    }

    /// Decides, for intents about to be written with job numbers `items`, which are held (see
    /// the module header). Call under the writer lock; write the plan in the same transaction
    /// as the intents, then call [`Store::guard_applied`].
    pub(crate) fn guard_plan(&self, items: &[(u64, &OutboxEntry)], now: &str, now_ms: u64) -> StoreResult<GuardPlan> {
        let cell = self.guard_trees()?;
        let mut st = self.inner.guard.state();
        let mut plan = GuardPlan { held: vec![false; items.len()], ..GuardPlan::default() };
        let rule = st.rule;
        if st.held == 0 && !rule.enabled() {
            return Ok(plan);
        }
        plan.forgotten = st.window.prune(now_ms, rule.window_ms());
        let mut used = st.window.used();
        let known = self.count(Kind::User);
        let limit = rule.limit(known);
        let mut gone: HashSet<u64> = HashSet::new();
        let mut held_lanes: HashSet<(&str, &str)> = HashSet::new();
        for (i, (seq, e)) in items.iter().enumerate() {
            if is_dry_run(e) {
                continue;
            }
            let mut lane_held = held_lanes.contains(&(e.target(), e.user_id()));
            if st.held > 0 {
                for kv in cell.lanes.scan_prefix(lane_prefix(e.target(), e.user_id())) {
                    let (k, _) = kv?;
                    let hseq = keys::decode_u64(&k[k.len().saturating_sub(8)..]);
                    if gone.contains(&hseq) {
                        continue;
                    }
                    let Some(v) = cell.held.get(hseq.to_be_bytes())? else { continue };
                    let mut old = OutboxEntry::decode(&v)?;
                    if !e.supersedes(*seq, &old, hseq) {
                        lane_held = true;
                        continue;
                    }
                    old.superseded_by = Some(*seq);
                    let record = json!({
                        "type": "delivery", "at": now, "job": hseq, "outcome": "superseded", "superseded_by": seq,
                        "target": old.target(), "user_id": old.user_id(), "username": old.intent.get("username"),
                        "action": old.intent.get("action"), "trigger": old.intent.get("trigger"),
                        "detail": format!("held job {hseq} is superseded by job {seq}, a newer decision for this user and target; it will not be delivered"),
                    });
                    self.guard_record(&mut plan, old.user_id(), &record)?;
                    plan.superseded.push((hseq, k.to_vec(), old.encode()?));
                    gone.insert(hseq);
                }
            }
            if !is_destructive(action_type(e)) {
                continue;
            }
            if e.operator.as_ref().is_some_and(|o| st.allowed_runs.contains(&o.run_id)) {
                continue;
            }
            if lane_held || rule.verdict(used, known) == Verdict::Hold {
                plan.held[i] = true;
                held_lanes.insert((e.target(), e.user_id()));
                let why = if lane_held {
                    "an earlier intent for this user and target is held".to_string()
                } else {
                    format!(
                        "{used} destructive intents in the last {} s reached the limit of {}",
                        rule.window.as_secs(),
                        limit.unwrap_or(0)
                    )
                };
                let op = e.operator.clone();
                let record = json!({
                    "type": "delivery", "at": now, "job": seq, "outcome": "held",
                    "target": e.target(), "user_id": e.user_id(), "username": e.intent.get("username"),
                    "action": e.intent.get("action"), "trigger": e.intent.get("trigger"),
                    "actor": op.as_ref().map(|o| o.actor.clone()), "run_id": op.as_ref().map(|o| o.run_id.clone()),
                    "detail": format!("held by the mass-offboarding brake ([guard]): {why}; not delivered until `scimbridge held approve`"),
                });
                self.guard_record(&mut plan, e.user_id(), &record)?;
                plan.held_rows.push((*seq, lane_key(e.target(), e.user_id(), *seq), e.encode()?));
            } else {
                used += 1;
                plan.admitted.push((now_ms, *seq));
            }
        }
        if st.held == 0 {
            if let Some((first, _, _)) = plan.held_rows.first() {
                let op = items.iter().find(|(s, _)| s == first).and_then(|(_, e)| e.operator.clone());
                let facts = BrakeFacts {
                    at: now.to_string(),
                    used,
                    limit: limit.unwrap_or(0),
                    window_secs: rule.window.as_secs(),
                    held: plan.held_rows.len() as u64,
                    first_job: *first,
                    actor: op.as_ref().map(|o| o.actor.clone()).unwrap_or_default(),
                    run_id: op.map(|o| o.run_id).unwrap_or_default(),
                };
                let notice = brake_engaged_notice(&facts);
                self.guard_record(&mut plan, GUARD_SUBJECT, &notice)?;
                plan.engaged = Some(notice);
                // Once per engagement: only a write that finds nothing held yet engages it.
                plan.notice = self.notice_row(&held_notification(&facts))?;
            }
        }
        // Nothing is held by a plan that holds nothing; keep the tree of a quiet window small.
        drop(st);
        Ok(plan)
    }

    fn guard_record(&self, plan: &mut GuardPlan, subject: &str, record: &Value) -> StoreResult<()> {
        let seq = self.next_seq();
        plan.records.push((seq, encode(record)?, index_keys(subject, record, seq)));
        Ok(())
    }

    /// Applies a written plan to the brake's memory and says loudly when it engaged.
    pub(crate) fn guard_applied(&self, plan: GuardPlan) {
        if plan.notice.is_some() {
            self.notice_written();
        }
        if plan.held_rows.is_empty() && plan.superseded.is_empty() && plan.admitted.is_empty() {
            return;
        }
        let mut st = self.inner.guard.state();
        for (ms, seq) in &plan.admitted {
            st.window.admit(*ms, *seq);
        }
        st.held = (st.held + plan.held_rows.len() as u64).saturating_sub(plan.superseded.len() as u64);
        let held = st.held;
        drop(st);
        if let Some(notice) = plan.engaged {
            tracing::error!(
                held,
                used = notice["used"].as_u64(),
                limit = notice["limit"].as_u64(),
                window_secs = notice["window_secs"].as_u64(),
                "{}",
                notice["detail"].as_str().unwrap_or("The mass-offboarding brake engaged.")
            );
        }
    }

    /// The intents the brake holds, oldest first (state `held`).
    pub fn guard_held(&self) -> StoreResult<Vec<OutboxItem>> {
        self.guard_trees()?
            .held
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok(OutboxItem { seq: keys::decode_u64(&k), state: GUARD_HELD_STATE, entry: OutboxEntry::decode(&v)? })
            })
            .collect()
    }

    /// One held intent by job number.
    pub fn guard_held_get(&self, seq: u64) -> StoreResult<Option<OutboxEntry>> {
        self.guard_trees()?.held.get(seq.to_be_bytes())?.map(|v| OutboxEntry::decode(&v)).transpose()
    }

    /// The held intents of one lane, oldest first (for supersession checks of operator retries).
    pub(crate) fn guard_held_in_lane(&self, target: &str, user: &str) -> StoreResult<Vec<OutboxItem>> {
        let cell = self.guard_trees()?;
        let mut out = Vec::new();
        for kv in cell.lanes.scan_prefix(lane_prefix(target, user)) {
            let (k, _) = kv?;
            let seq = keys::decode_u64(&k[k.len().saturating_sub(8)..]);
            if let Some(e) = self.guard_held_get(seq)? {
                out.push(OutboxItem { seq, state: GUARD_HELD_STATE, entry: e });
            }
        }
        Ok(out)
    }

    /// Approves (`approve`) or rejects held intents: `seqs` (all of them when None), in their
    /// original order. Approved ones go to the back of the outbox attributed to `op` (its run id
    /// names the approved batch, for `undo`), with a fresh enqueue time, and are not counted by
    /// the brake again; rejected ones leave, and the account stays as it is. Each gets an
    /// operator record (`held_approve` / `held_reject`, the cause it had) in the transaction that
    /// moves it. Numbers that are not held are left out: the caller checks them first.
    ///
    /// # Errors
    /// On a storage error; batches already written stay written.
    pub fn guard_decide(
        &self,
        seqs: Option<&[u64]>,
        approve: bool,
        op: &Operator,
        now: &str,
        now_ms: u64,
    ) -> StoreResult<HeldDecision> {
        let mut chosen: Vec<u64> = match seqs {
            Some(s) => s.to_vec(),
            None => self.guard_held()?.into_iter().map(|i| i.seq).collect(),
        };
        chosen.sort_unstable();
        chosen.dedup();
        let mut out = HeldDecision::default();
        for chunk in chosen.chunks(DECISION_BATCH) {
            self.guard_decide_batch(chunk, approve, op, now, now_ms, &mut out)?;
        }
        if !out.approved.is_empty() {
            self.inner.outbox_signal.notify_one();
        }
        let held = self.inner.guard.state().held;
        tracing::warn!(
            approved = out.approved.len(),
            rejected = out.rejected.len(),
            still_held = held,
            actor = %op.actor,
            run_id = %op.run_id,
            "An operator decided on intents held by the mass-offboarding brake."
        );
        Ok(out)
    }

    fn guard_decide_batch(
        &self,
        seqs: &[u64],
        approve: bool,
        op: &Operator,
        now: &str,
        now_ms: u64,
        out: &mut HeldDecision,
    ) -> StoreResult<()> {
        let _guard = self.lock();
        let cell = self.guard_trees()?;
        let mut moves: Vec<Move> = Vec::new();
        let mut records = Vec::new();
        for seq in seqs {
            let Some(v) = cell.held.get(seq.to_be_bytes())? else { continue };
            let e = OutboxEntry::decode(&v)?;
            let lane = lane_key(e.target(), e.user_id(), *seq);
            let new = if approve {
                let new_seq = self.next_seq();
                let fresh =
                    OutboxEntry { enqueued_at: now.to_string(), enqueued_ms: now_ms, ..e.clone() }.with_operator(op);
                Some((new_seq, fresh.encode()?))
            } else {
                None
            };
            let details = json!({
                "job": seq, "new_job": new.as_ref().map(|n| n.0), "outcome": if approve { "approved" } else { "rejected" },
                "target": e.target(), "user_id": e.user_id(), "username": e.intent.get("username"),
                "intent": e.intent.get("action"), "trigger": e.intent.get("trigger"),
                "held_since": e.enqueued_at, "caused_by": e.operator,
            });
            let record = operator_record(op, if approve { "held_approve" } else { "held_reject" }, details, now);
            let audit_seq = self.next_seq();
            records.push((audit_seq, encode(&record)?, index_keys(e.user_id(), &record, audit_seq)));
            moves.push((*seq, lane, new));
        }
        let (outbox, audit_tree, by_subject) =
            (self.t(tree::OUTBOX), self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        let trees = (&cell.held, &cell.lanes, &*outbox, &*audit_tree, &*by_subject);
        trees.transaction(|(h, l, o, a, s)| {
            for (seq, lane, new) in &moves {
                h.remove(&seq.to_be_bytes())?;
                l.remove(lane.as_slice())?;
                if let Some((new_seq, bytes)) = new {
                    o.insert(&new_seq.to_be_bytes(), bytes.as_slice())?;
                }
            }
            for (seq, bytes, index) in &records {
                super::audit::put_in(a, s, *seq, bytes, index)?;
            }
            TxResult::Ok(())
        })?;
        if let Some((last, _, _)) = records.last() {
            self.t(tree::META).insert(b"seq", &last.to_be_bytes())?;
        }
        self.mark_committed();
        let mut st = self.inner.guard.state();
        st.held = st.held.saturating_sub(moves.len() as u64);
        drop(st);
        for (seq, _, new) in moves {
            match new {
                Some((n, _)) => out.approved.push((seq, n)),
                None => out.rejected.push(seq),
            }
        }
        Ok(())
    }

    /// The brake's trees and the superseded jobs, for writers whose transaction spans them.
    pub(crate) fn guard_trees(&self) -> StoreResult<GuardTrees> {
        Ok(self.inner.gen().guard.clone())
    }
}

/// [`Store::guard_trees`] of one opening of the database (a writer's transaction spans only
/// trees of the same opening).
pub(crate) fn guard_trees_of(db: &sled::Db) -> StoreResult<GuardTrees> {
    Ok(GuardTrees {
        held: db.open_tree("guard_held")?,
        lanes: db.open_tree("guard_held_by_lane")?,
        window: db.open_tree("guard_window")?,
        superseded: db.open_tree(super::supersede::SUPERSEDED)?,
        notices: db.open_tree(super::notices::NOTIFY_OUTBOX)?,
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Intent, IntentAction, Trigger};
    use std::time::Duration;

    fn entry(user: &str, action: IntentAction) -> OutboxEntry {
        let intent = Intent {
            target: "jira".into(),
            user_id: user.into(),
            username: user.into(),
            action,
            trigger: Trigger::Disabled,
            dry_run: false,
        };
        OutboxEntry::new(serde_json::to_value(intent).expect("intent"), "t", now_ms())
    }

    fn store(max: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("store");
        store.set_guard(Guard { max_offboardings: max, window: Duration::from_secs(3600), max_fraction: None });
        (dir, store)
    }

    #[test]
    fn beyond_the_limit_destructive_intents_are_held_and_the_rest_flow() {
        let (_d, store) = store(2);
        for u in ["a", "b", "c", "d"] {
            store.enqueue(&[entry(u, IntentAction::Deactivate)]).expect("enqueue");
        }
        store.enqueue(&[entry("e", IntentAction::AddToGroup { group: "g".into() })]).expect("enqueue");
        let mut dry = entry("f", IntentAction::Delete);
        dry.intent["dry_run"] = Value::Bool(true);
        store.enqueue(&[dry]).expect("enqueue");
        assert_eq!(store.outbox_depth(), 4, "two deactivations, the group add and the dry run");
        let held: Vec<String> =
            store.guard_held().expect("held").iter().map(|h| h.entry.user_id().to_string()).collect();
        assert_eq!(held, vec!["c", "d"]);
        let s = store.guard_status();
        assert_eq!((s.held, s.used, s.limit), (2, 2, Some(2)));
        // A newer decision about a held user's account replaces the held one, and is held itself.
        let c_first = store.guard_held().expect("held")[0].seq;
        store.enqueue(&[entry("c", IntentAction::Delete)]).expect("enqueue");
        assert_eq!(store.guard_status().held, 2);
        assert_eq!(store.job(c_first).expect("job").expect("kept").state, "superseded");
        // `jobs drop` of a held job rejects it.
        let op = Operator { actor: "t".into(), run_id: "run-2".into() };
        let last = store.guard_held().expect("held")[1].seq;
        assert!(crate::admin::drop_job(&store, last, &op).expect("drop"));
        assert_eq!(store.guard_status().held, 1);
        assert!(store.audit_of_run("run-2").expect("audit").expect("run").iter().any(|r| r["action"] == "held_reject"));
    }

    #[test]
    fn each_engagement_stores_one_held_notice_with_the_holding_write() {
        let (_d, store) = store(2);
        store.want_notices(["held".to_string()]);
        for u in ["a", "b", "c", "d", "e"] {
            store.enqueue(&[entry(u, IntentAction::Deactivate)]).expect("enqueue");
        }
        let notices: Vec<Value> = store.pending_notices().expect("notices").into_iter().map(|n| n.notice).collect();
        assert_eq!(notices.len(), 1, "one per engagement, not per held intent: {notices:?}");
        assert_eq!(notices[0], json!({"event": "held", "held": 1, "limit": 2, "window_secs": 3600}));
        // Released (all rejected) and engaged again: a second engagement, a second notice.
        let op = Operator { actor: "t".into(), run_id: "run-1".into() };
        store.guard_decide(None, false, &op, "t", now_ms()).expect("reject");
        store.enqueue(&[entry("f", IntentAction::Deactivate), entry("g", IntentAction::Delete)]).expect("enqueue");
        let notices = store.pending_notices().expect("notices");
        assert_eq!(notices.len(), 2);
        assert_eq!(notices[1].notice["held"], 2);
    }

    #[test]
    fn a_reactivation_supersedes_the_held_deactivation_and_approval_skips_it() {
        let (dir, store) = store(1);
        store.enqueue(&[entry("a", IntentAction::Deactivate)]).expect("enqueue");
        let b = store.enqueue(&[entry("b", IntentAction::Deactivate)]).expect("enqueue")[0];
        let c = store.enqueue(&[entry("c", IntentAction::Deactivate)]).expect("enqueue")[0];
        let r = store.enqueue(&[entry("b", IntentAction::Reactivate)]).expect("enqueue")[0];
        let job = store.job(b).expect("job").expect("kept");
        assert_eq!((job.state, job.entry.superseded_by), ("superseded", Some(r)));
        assert_eq!(store.guard_status().held, 1);
        let op = Operator { actor: "t".into(), run_id: "run-1".into() };
        let d = store.guard_decide(None, true, &op, "t", now_ms()).expect("approve");
        assert_eq!(d.approved.len(), 1);
        assert_eq!(d.approved[0].0, c);
        let pending = store.outbox_get(d.approved[0].1).expect("get").expect("queued");
        assert_eq!(pending.operator, Some(op.clone()), "the approval's run");
        assert!(store
            .audit_of_run("run-1")
            .expect("audit")
            .expect("run")
            .iter()
            .any(|r| r["action"] == "held_approve"));
        assert_eq!(store.guard_status().held, 0);
        // The window and the held queue survive a reopen.
        store.enqueue(&[entry("x", IntentAction::Deactivate)]).expect("enqueue");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        store.set_guard(Guard { max_offboardings: 1, ..Guard::default() });
        let s = store.guard_status();
        assert_eq!((s.held, s.used), (1, 1));
        let seq = store.enqueue(&[entry("y", IntentAction::Deactivate)]).expect("enqueue")[0];
        assert!(seq > store.guard_held().expect("held")[0].seq, "numbers keep rising after a reopen");
    }
}
