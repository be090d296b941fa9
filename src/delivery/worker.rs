//! The outbox worker: delivers intents in order per (target, user) lane and in parallel across
//! lanes, bounded by a semaphore. Lane queues live in memory and are rebuilt from sled at start,
//! so a crash loses nothing: an intent leaves the outbox only in the transaction that records
//! its outcome. An attempt interrupted by a crash is repeated after restart, which is safe
//! because every connector action is idempotent.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Semaphore};

use super::groups::{Gate, GroupGuard};
use super::health::{Health, Verdict};
use super::link::{self, Step};
use super::retry::{self, Decision};
use crate::atlassian::{Action, Call, Connector, Effect};
use crate::config::Delivery;
use crate::metrics::Metrics;
use crate::policy::{Intent, IntentAction, Trigger};
use crate::redact::Pii;
use crate::store::{Decided, OutboxEntry, Store, StoreResult};

type Lane = (String, String);

/// How one attempt ended, as the scheduler needs to know it.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The entry left the outbox (delivered, dry run, or dead letter).
    Closed,
    /// Still pending; try again at this time (ms since epoch).
    RetryAt(u64),
}

struct Done {
    lane: Lane,
    outcome: Outcome,
}

/// A running worker; `stop` lets in-flight attempts finish and record their outcome.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.join.await;
    }
}

/// Everything an attempt needs; shared by all attempts.
pub struct Deliverer {
    pub store: Store,
    pub connectors: HashMap<String, Arc<Connector>>,
    pub cfg: Delivery,
    pub metrics: Arc<Metrics>,
    /// Which Atlassian groups may be changed, and their creation (`groups.rs`).
    pub groups: GroupGuard,
    /// `[policy] link_existing`: how a create looks for an existing account (`link.rs`).
    pub link_existing: crate::policy::LinkExisting,
    /// Each target's circuit: down targets wait behind one probe (`health.rs`).
    pub health: Arc<Health>,
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub(super) fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One effect for the actions of an intent, the one an admin must notice first: "no such
/// account", then the fallback (issue 9 item 3), then "applied" if anything changed, else
/// "already done".
fn overall(effects: &[Effect]) -> Effect {
    [Effect::NoSuchAccount, Effect::AccessRemovedByGroups, Effect::Applied]
        .into_iter()
        .find(|e| effects.contains(e))
        .unwrap_or(Effect::AlreadyDone)
}

/// `a` with the fields of the object `b` added.
fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn is_offboarding(t: Trigger) -> bool {
    matches!(t, Trigger::Disabled | Trigger::Deleted | Trigger::AccessLost)
}

impl Deliverer {
    /// Starts the worker loop.
    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = watch::channel(false);
        let join = tokio::spawn(Arc::new(self).run(stopped));
        WorkerHandle { stop, join }
    }

    async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        // A concurrency budget per target: a hung target never holds another's slots.
        let mut permits: HashMap<String, Arc<Semaphore>> = HashMap::new();
        // Lanes that cannot start now (target down, rate limited, or its budget in use), by
        // target, each once; released when the target takes calls and has room.
        let mut held: HashMap<String, VecDeque<Lane>> = HashMap::new();
        let mut holding: HashSet<Lane> = HashSet::new();
        // Enqueue time per pending intent: a lane waiting for a down target still ages out.
        let mut enqueued: HashMap<u64, u64> = HashMap::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut lanes: HashMap<Lane, VecDeque<(u64, u64)>> = HashMap::new();
        let mut busy: HashSet<Lane> = HashSet::new();
        let mut timers: BTreeSet<(u64, Lane)> = BTreeSet::new();
        let mut ready: VecDeque<Lane> = VecDeque::new();
        // Per pending intent, what tells whether a later one in its lane supersedes it.
        let mut decided: HashMap<u64, Decided> = HashMap::new();
        let mut high_water = 0u64;
        let mut seen = super::store_gate::Seen::default();
        loop {
            if seen.must_pause(&self.store) {
                let all = self.cfg.concurrency as u32;
                if !seen.pause(&self.store, &permits, all, &mut done_rx, &mut stopped).await {
                    break;
                }
                (lanes, busy, timers, ready, decided, high_water) = Default::default();
                (held, holding, enqueued) = Default::default();
            }
            // Take in everything committed since the last look.
            match self.store.outbox_after(high_water) {
                Ok(items) => {
                    for item in items {
                        high_water = item.seq;
                        decided.insert(item.seq, item.entry.decided_as());
                        enqueued.insert(item.seq, item.entry.enqueued_ms);
                        let lane = (item.entry.target().to_string(), item.entry.user_id().to_string());
                        let q = lanes.entry(lane.clone()).or_default();
                        q.push_back((item.seq, item.entry.next_ms));
                        if q.len() == 1 && !busy.contains(&lane) {
                            ready.push_back(lane);
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "Reading the outbox failed; retrying shortly."),
            }
            // Lanes whose retry time has come.
            let now = now_ms();
            while let Some(first) = timers.first().cloned() {
                if first.0 > now {
                    break;
                }
                timers.remove(&first);
                // A held lane's own timer (its max_age) looks at it again.
                holding.remove(&first.1);
                ready.push_back(first.1);
            }
            // Held lanes of targets that take calls again, as many as their budget has room for.
            for (target, q) in held.iter_mut() {
                if !q.is_empty() && self.health.admits(target, now) {
                    let room = permits.get(target).map_or(q.len(), |p| p.available_permits());
                    for lane in q.drain(..room.min(q.len())) {
                        holding.remove(&lane);
                        ready.push_back(lane);
                    }
                }
            }
            // Start as many lane heads as each target's state and budget allow.
            while let Some(lane) = ready.pop_front() {
                if busy.contains(&lane) || holding.contains(&lane) {
                    continue;
                }
                let Some(&(seq, next_ms)) = lanes.get(&lane).and_then(VecDeque::front) else { continue };
                if next_ms > now {
                    timers.insert((next_ms, lane));
                    continue;
                }
                let admitted = self.health.admits(&lane.0, now);
                let expires =
                    enqueued.get(&seq).map_or(u64::MAX, |e| e.saturating_add(self.cfg.max_age.as_millis() as u64));
                if !admitted && expires <= now {
                    // Waited for the target longer than max_age: a dead letter, loudly.
                    busy.insert(lane.clone());
                    let (me, tx) = (self.clone(), done_tx.clone());
                    tokio::spawn(async move {
                        let outcome = me.age_out(seq).await.unwrap_or_else(|e| {
                            tracing::error!(seq, error = %e, "Recording a dead letter failed; will try again.");
                            Outcome::RetryAt(now_ms() + 1000)
                        });
                        let _ = tx.send(Done { lane, outcome });
                    });
                    continue;
                }
                let budget = permits
                    .entry(lane.0.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.concurrency)))
                    .clone();
                let permit = match (admitted, budget.try_acquire_owned()) {
                    (true, Ok(permit)) => permit,
                    _ => {
                        if !admitted && expires != u64::MAX {
                            timers.insert((expires, lane.clone()));
                        }
                        holding.insert(lane.clone());
                        held.entry(lane.0.clone()).or_default().push_back(lane);
                        continue;
                    }
                };
                busy.insert(lane.clone());
                // The newest later intent of the lane that makes this one stale, if any.
                let superseded_by = decided.get(&seq).and_then(|head| {
                    let later = lanes.get(&lane).into_iter().flatten().skip(1).map(|(s, _)| *s);
                    later.filter(|s| decided.get(s).is_some_and(|d| d.supersedes(head))).max()
                });
                let (me, tx) = (self.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let outcome = me.attempt(seq, superseded_by).await.unwrap_or_else(|e| {
                        tracing::error!(seq, error = %e, "Recording a delivery outcome failed; the attempt will repeat.");
                        Outcome::RetryAt(now_ms() + 1000)
                    });
                    drop(permit);
                    let _ = tx.send(Done { lane, outcome });
                });
            }
            let next_timer = timers.first().map(|(t, _)| *t).into_iter().chain(self.health.next_wake(now)).min();
            let sleep =
                next_timer.map_or(Duration::from_secs(3600), |t| Duration::from_millis(t.saturating_sub(now_ms())));
            tokio::select! {
                _ = self.store.outbox_signal().notified() => {}
                _ = self.health.changed().notified() => {}
                Some(done) = done_rx.recv() => {
                    busy.remove(&done.lane);
                    if let Some(q) = lanes.get_mut(&done.lane) {
                        match done.outcome {
                            Outcome::Closed => {
                                if let Some((seq, _)) = q.pop_front() {
                                    decided.remove(&seq);
                                    enqueued.remove(&seq);
                                }
                            }
                            Outcome::RetryAt(at) => { if let Some(h) = q.front_mut() { h.1 = at; } }
                        }
                        if q.is_empty() {
                            lanes.remove(&done.lane);
                        } else {
                            ready.push_back(done.lane);
                        }
                    }
                }
                _ = tokio::time::sleep(sleep) => {}
                _ = stopped.changed() => break,
            }
        }
        // Let in-flight attempts reach their recorded outcome before returning.
        let all = self.cfg.concurrency as u32;
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            for p in permits.values() {
                let _ = p.acquire_many(all).await;
            }
        })
        .await;
    }

    pub(super) fn audit(
        &self,
        intent: &Intent,
        seq: u64,
        entry: &OutboxEntry,
        outcome: &str,
        calls: &[Call],
        extra: Value,
    ) -> Value {
        delivery_record(intent, seq, entry, outcome, calls, extra)
    }

    /// One attempt at one outbox entry; writes its outcome to the store before returning.
    /// `superseded_by`: a later pending intent of the lane that makes this one stale.
    async fn attempt(&self, seq: u64, superseded_by: Option<u64>) -> StoreResult<Outcome> {
        let Some(mut entry) = self.store.outbox_get(seq)? else { return Ok(Outcome::Closed) };
        let mut intent: Intent = match serde_json::from_value(entry.intent.clone()) {
            Ok(i) => i,
            Err(e) => {
                let audit = json!({"type": "delivery", "at": now_text(), "job": seq, "outcome": "dead", "error": format!("unreadable intent: {e}"), "reason": entry.reason()});
                self.store.outbox_bury(seq, &entry, entry.user_id(), &audit)?;
                return Ok(Outcome::Closed);
            }
        };
        let age_ms = now_ms().saturating_sub(entry.enqueued_ms);
        if intent.dry_run {
            let audit = self.audit(&intent, seq, &entry, "dry_run", &[], json!({}));
            self.store.outbox_finish(seq, &intent.user_id, &audit)?;
            self.metrics.record_delivery_for(&intent.target, "dry_run", &entry.reason());
            tracing::info!(job = seq, target = %intent.target, username = %Pii(&intent.username), action = ?intent.action, "Dry run: recorded an intent without sending it.");
            return Ok(Outcome::Closed);
        }
        // Only while the newer intent is still pending: an operator may have dropped it.
        let superseded_by = match superseded_by {
            Some(by) if self.store.outbox_get(by)?.is_some() => Some(by),
            _ => None,
        };
        if let Some(by) = superseded_by {
            let audit = self.audit(
                &intent,
                seq,
                &entry,
                "superseded",
                &[],
                json!({"superseded_by": by, "detail": format!("superseded by job {by}, a newer decision for this user and target; not sent")}),
            );
            self.store.supersede_pending(seq, by, &audit)?;
            self.metrics.record_delivery_for(&intent.target, "superseded", &entry.reason());
            tracing::info!(job = seq, superseded_by = by, target = %intent.target, username = %Pii(&intent.username), action = ?intent.action, "Skipped an intent: superseded by a newer one.");
            return Ok(Outcome::Closed);
        }
        let Some(connector) = self.connectors.get(&intent.target) else {
            return self.bury(seq, entry, &intent, &[], format!("target '{}' is not configured", intent.target));
        };
        let started = Instant::now();
        // The account this intent acts on: a recorded link, an existing account found now (DESIGN:
        // linking happens at delivery, before a create), or held for review (`link.rs`).
        let (mut calls, steps, link, link_note, mut failure) = match self
            .plan(connector, seq, &entry, &mut intent)
            .await?
        {
            link::Plan::Held => return Ok(Outcome::Closed),
            link::Plan::Skip(reason) => {
                tracing::warn!(job = seq, target = %intent.target, username = %Pii(&intent.username), "An intent of an earlier owner of a re-linked account was not sent.");
                return self.skip(seq, &entry, &intent, &[], reason);
            }
            // A failed look-up is retried like any failed call.
            link::Plan::Failed(f, calls) => (calls, Vec::new(), None, Value::Null, Some(f)),
            link::Plan::Deliver { steps, link, note, calls } => (calls, steps, link, note, None),
        };
        if failure.is_none() {
            match self.groups.gate(connector, &intent).await? {
                Gate::Proceed(made) => calls.extend(made),
                Gate::Skip(made, reason) => {
                    calls.extend(made);
                    return self.skip(seq, &entry, &intent, &calls, reason);
                }
                Gate::Fail(made, f) => {
                    calls.extend(made);
                    failure = Some(f);
                }
            }
        }
        if failure.is_none() {
            // What a run's action may take, recorded before it is taken (`removed.rs`).
            failure = self.snapshot_groups(connector, seq, &mut entry, &intent).await?.err();
        }
        let mut notes = Vec::new();
        let mut effects = Vec::new();
        let mut fallbacks = Vec::new();
        let takes_back = matches!(intent.action, IntentAction::CreateUser { .. })
            && steps.iter().any(|s| matches!(s, Step::Act(Action::Reactivate { .. })));
        let restored = if matches!(intent.action, IntentAction::Reactivate) {
            super::restore::groups_to_restore(&self.store.audit_of(&intent.user_id)?, &intent.target)
        } else if takes_back {
            // A create that takes an existing account back (re-hire, link): its history is the
            // account's, written under the SCIM user that had it before.
            super::restore::groups_to_restore(&self.store.audit_of_account(&intent.username)?, &intent.target)
        } else {
            Vec::new()
        };
        let mut resume = None;
        // At most twice: again only when the group of a failed addition was missing and has
        // just been created again (`GroupGuard::recreate_if_missing`).
        let mut runs = if failure.is_none() { 2 } else { 0 };
        while runs > 0 {
            runs -= 1;
            failure = None;
            effects.clear();
            let mut planned = steps.clone();
            planned.extend(
                restored
                    .iter()
                    .map(|g| Step::Act(Action::AddToGroup { username: intent.username.clone(), group: g.clone() })),
            );
            for step in planned {
                let (result, step_resume) = match step {
                    Step::Act(action) => {
                        let ex = connector.execute_resuming(&action, entry.resume.as_deref()).await;
                        calls.extend(ex.calls);
                        fallbacks.extend(ex.fallback);
                        notes.extend(ex.notes);
                        (ex.result, ex.resume)
                    }
                    Step::Rename { old, new } => {
                        let (made, result) = connector.rename_user(&old, &new).await;
                        calls.extend(made);
                        (result, None)
                    }
                };
                match result {
                    Ok(effect) => {
                        effects.push(effect);
                        if effect == Effect::NoSuchAccount {
                            break;
                        }
                    }
                    Err(f) => {
                        failure = Some(f);
                        resume = step_resume;
                        break;
                    }
                }
            }
            match &failure {
                Some(_) if runs > 0 => match self.groups.recreate_if_missing(connector, &intent).await? {
                    Some(made) => calls.extend(made),
                    None => runs = 0,
                },
                _ => runs = 0,
            }
        }
        if let (None, Some(link)) = (&failure, link) {
            if !effects.contains(&Effect::NoSuchAccount) {
                self.record_link(*link, &effects)?;
            }
        }
        // How access ended, when the product refused a plain deactivation (issue 9 item 3).
        let mut how = if fallbacks.is_empty() { json!({}) } else { json!({ "fallback": fallbacks }) };
        if !restored.is_empty() {
            how["restored_groups"] = json!(restored);
        }
        if let Some(before) = &entry.groups_before {
            how["groups_removed"] = json!(super::removed::removed(&intent.action, before, &fallbacks));
        }
        // What the admin should know although the action succeeded (sessions not ended…).
        if !notes.is_empty() {
            how["notes"] = json!(notes);
        }
        if !link_note.is_null() {
            how["link"] = link_note;
        }
        let verdict = self.health.observe(&intent.target, failure.as_ref(), &calls);
        let Some(failure) = failure else {
            self.groups.delivered(&intent)?;
            how["took_ms"] = json!(started.elapsed().as_millis() as u64);
            return self.delivered(seq, &entry, &intent, &calls, overall(&effects), how);
        };
        if let Verdict::Wait(wait) = verdict {
            // The target is down or rate limiting: not this intent's fault, not charged.
            let failed = super::outage::Failed { failure: &failure, calls: &calls, resume, how };
            return self.wait_for_target(seq, entry, &intent, failed, wait);
        }
        let attempt = entry.attempts + 1;
        let unit: f64 = rand::thread_rng().gen();
        match retry::decide(&failure, attempt, Duration::from_millis(age_ms), &self.cfg, unit) {
            Decision::Bury(reason) => {
                if matches!(failure, crate::atlassian::Failure::Retryable { .. })
                    && age_ms >= self.cfg.max_age.as_millis() as u64
                {
                    self.aged_alert(seq, &intent, age_ms, &reason);
                }
                self.bury_with(seq, entry, &intent, &calls, reason, how)
            }
            Decision::Retry(wait) => {
                let audit = self.audit(
                    &intent,
                    seq,
                    &entry,
                    "retry",
                    &calls,
                    merge(
                        json!({"error": failure.reason(), "retry_in_ms": wait.as_millis() as u64, "resume": resume}),
                        how,
                    ),
                );
                self.store.audit_append(&intent.user_id, &audit)?;
                let next_ms = now_ms() + wait.as_millis() as u64;
                let mut updated = entry;
                updated.attempts = attempt;
                updated.next_ms = next_ms;
                updated.last_error = Some(failure.reason().to_string());
                updated.resume = resume;
                self.store.outbox_update(seq, &updated)?;
                self.metrics.record_delivery_for(&intent.target, "retry", &updated.reason());
                tracing::warn!(job = seq, target = %intent.target, username = %Pii(&intent.username), attempt, retry_in_ms = wait.as_millis() as u64, error = %failure.reason(), "Delivery failed; will retry.");
                Ok(Outcome::RetryAt(next_ms))
            }
        }
    }

    /// Records a delivery (or a "no such account" answer) and marks the dead letters it makes stale.
    fn delivered(
        &self,
        seq: u64,
        entry: &OutboxEntry,
        intent: &Intent,
        calls: &[Call],
        effect: Effect,
        how: Value,
    ) -> StoreResult<Outcome> {
        let latency_ms = now_ms().saturating_sub(entry.enqueued_ms);
        let no_account = effect == Effect::NoSuchAccount;
        let outcome = if no_account { "no_such_account" } else { "delivered" };
        let mut extra = merge(json!({"effect": effect, "latency_ms": latency_ms}), how);
        if no_account {
            extra["detail"] = json!(format!(
                "target '{}' has no account named '{}', so there was nothing to change; if this user should have one there, check the username mapping or link",
                intent.target, intent.username
            ));
        }
        let at = now_text();
        let audit = self.audit(intent, seq, entry, outcome, calls, extra);
        if !no_account {
            // Before the outcome is recorded: a crash in between delivers the (idempotent)
            // intent again and repeats the notice rather than losing it.
            super::notices::offboarded(&self.store, seq, entry, intent)?;
        }
        let marked = self.store.outbox_deliver(seq, entry, &audit, &at)?;
        self.metrics.record_delivery_for(&intent.target, outcome, &entry.reason());
        for _ in &marked {
            self.metrics.record_delivery(&intent.target, "superseded");
        }
        if !marked.is_empty() {
            tracing::info!(job = seq, superseded = ?marked, target = %intent.target, username = %Pii(&intent.username), "Dead letters made stale by this delivery are marked superseded.");
        }
        if no_account {
            tracing::warn!(job = seq, target = %intent.target, username = %Pii(&intent.username), action = ?intent.action, "The target has no such account; nothing to change (check the username mapping or link if it should).");
            return Ok(Outcome::Closed);
        }
        if is_offboarding(intent.trigger) {
            self.metrics.offboarding_latency.observe(latency_ms as f64 / 1000.0);
        }

        tracing::info!(job = seq, target = %intent.target, username = %Pii(&intent.username), action = ?intent.action, latency_ms, "Delivered an intent.");
        Ok(Outcome::Closed)
    }

    /// Closes an intent the group gate decided not to carry out, with the reason on record.
    fn skip(
        &self,
        seq: u64,
        entry: &OutboxEntry,
        intent: &Intent,
        calls: &[Call],
        reason: String,
    ) -> StoreResult<Outcome> {
        let audit = self.audit(intent, seq, entry, "skipped", calls, json!({"detail": reason}));
        self.store.outbox_finish(seq, &intent.user_id, &audit)?;
        self.metrics.record_delivery_for(&intent.target, "skipped", &entry.reason());
        tracing::info!(job = seq, target = %intent.target, username = %Pii(&intent.username), action = ?intent.action, reason = %reason, "Skipped an intent.");
        Ok(Outcome::Closed)
    }

    fn bury(
        &self,
        seq: u64,
        entry: OutboxEntry,
        intent: &Intent,
        calls: &[Call],
        reason: String,
    ) -> StoreResult<Outcome> {
        self.bury_with(seq, entry, intent, calls, reason, json!({}))
    }

    pub(super) fn bury_with(
        &self,
        seq: u64,
        mut entry: OutboxEntry,
        intent: &Intent,
        calls: &[Call],
        reason: String,
        extra: Value,
    ) -> StoreResult<Outcome> {
        let audit = self.audit(intent, seq, &entry, "dead", calls, merge(json!({"error": reason}), extra));
        entry.attempts += 1;
        entry.last_error = Some(reason.clone());
        entry.dead_at = Some(now_text());
        let notice = self.store.notice_row(&super::notices::dead_letter(seq, &entry, intent, &reason))?;
        self.store.outbox_bury_noticed(seq, &entry, &intent.user_id, &audit, notice.as_ref())?;
        self.metrics.record_delivery_for(&intent.target, "dead", &entry.reason());
        tracing::error!(job = seq, target = %intent.target, username = %Pii(&intent.username), action = ?intent.action, error = %reason, "An intent became a dead letter; an operator must look at it (scimbridge jobs list).");
        Ok(Outcome::Closed)
    }
}

/// The audit record of one delivery attempt of job `seq` (also of one held for review): the
/// intent, the outcome, the calls, `extra`'s fields, and the actor and run id of the operator
/// run that queued it, if any, so `audit --run` finds every outcome of a run.
pub(super) fn delivery_record(
    intent: &Intent,
    seq: u64,
    entry: &OutboxEntry,
    outcome: &str,
    calls: &[Call],
    extra: Value,
) -> Value {
    let mut v = json!({
        "type": "delivery",
        "at": now_text(),
        "job": seq,
        "target": intent.target,
        "user_id": intent.user_id,
        "username": intent.username,
        "action": intent.action,
        "trigger": intent.trigger,
        "reason": entry.reason(),
        "attempt": entry.attempts + 1,
        "outcome": outcome,
        "calls": calls,
    });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    // Who caused the intent and in which run, so a delivery names its operator.
    if let (Some(o), Some(op)) = (v.as_object_mut(), &entry.operator) {
        o.insert("actor".into(), op.actor.clone().into());
        o.insert("run_id".into(), op.run_id.clone().into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{IntentAction, Trigger};

    #[test]
    fn a_delivery_record_names_the_run_that_queued_the_intent() {
        let intent = Intent {
            target: "jira".into(),
            user_id: "u1".into(),
            username: "erin".into(),
            action: IntentAction::Deactivate,
            trigger: Trigger::Cleanup,
            dry_run: false,
        };
        let mut entry = OutboxEntry::new(serde_json::to_value(&intent).expect("intent"), "t", 0);
        entry.operator = Some(crate::store::Operator { actor: "admin-ops (cli:al)".into(), run_id: "run-9".into() });
        let r = delivery_record(&intent, 7, &entry, "held_for_review", &[], json!({"detail": "waiting"}));
        assert_eq!(
            (&r["actor"], &r["run_id"], &r["outcome"], &r["detail"], &r["job"]),
            (&json!("admin-ops (cli:al)"), &json!("run-9"), &json!("held_for_review"), &json!("waiting"), &json!(7))
        );
        // The reason word, derived from the trigger (issue 12 §2).
        assert_eq!(r["reason"], json!("inactive"));
    }
}
