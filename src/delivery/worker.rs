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

use super::link;
use super::retry::{self, Decision};
use crate::atlassian::{Call, Connector};
use crate::config::Delivery;
use crate::metrics::Metrics;
use crate::policy::{Intent, Trigger};
use crate::redact::Pii;
use crate::store::{OutboxEntry, Store, StoreResult};

type Lane = (String, String);

/// How one attempt ended, as the scheduler needs to know it.
#[derive(Debug)]
enum Outcome {
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
    /// `[policy] link_existing`: how a create looks for an existing account (`link.rs`).
    pub link_existing: crate::policy::LinkExisting,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
        let permits = Arc::new(Semaphore::new(self.cfg.concurrency));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut lanes: HashMap<Lane, VecDeque<(u64, u64)>> = HashMap::new();
        let mut busy: HashSet<Lane> = HashSet::new();
        let mut timers: BTreeSet<(u64, Lane)> = BTreeSet::new();
        let mut ready: VecDeque<Lane> = VecDeque::new();
        let mut high_water = 0u64;
        loop {
            // Take in everything committed since the last look.
            match self.store.outbox_after(high_water) {
                Ok(items) => {
                    for item in items {
                        high_water = item.seq;
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
                ready.push_back(first.1);
            }
            // Start as many lane heads as permits allow.
            while let Some(lane) = ready.pop_front() {
                if busy.contains(&lane) {
                    continue;
                }
                let Some(&(seq, next_ms)) = lanes.get(&lane).and_then(VecDeque::front) else { continue };
                if next_ms > now {
                    timers.insert((next_ms, lane));
                    continue;
                }
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    ready.push_front(lane);
                    break;
                };
                busy.insert(lane.clone());
                let (me, tx) = (self.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let outcome = me.attempt(seq).await.unwrap_or_else(|e| {
                        tracing::error!(seq, error = %e, "Recording a delivery outcome failed; the attempt will repeat.");
                        Outcome::RetryAt(now_ms() + 1000)
                    });
                    drop(permit);
                    let _ = tx.send(Done { lane, outcome });
                });
            }
            let next_timer = timers.first().map(|(t, _)| *t);
            let sleep =
                next_timer.map_or(Duration::from_secs(3600), |t| Duration::from_millis(t.saturating_sub(now_ms())));
            tokio::select! {
                _ = self.store.outbox_signal().notified() => {}
                Some(done) = done_rx.recv() => {
                    busy.remove(&done.lane);
                    if let Some(q) = lanes.get_mut(&done.lane) {
                        match done.outcome {
                            Outcome::Closed => { q.pop_front(); }
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
        let _ = tokio::time::timeout(Duration::from_secs(30), permits.acquire_many(all)).await;
    }

    fn audit(
        &self,
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
            "attempt": entry.attempts + 1,
            "outcome": outcome,
            "calls": calls,
        });
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        v
    }

    /// One attempt at one outbox entry; writes its outcome to the store before returning.
    async fn attempt(&self, seq: u64) -> StoreResult<Outcome> {
        let Some(entry) = self.store.outbox_get(seq)? else { return Ok(Outcome::Closed) };
        let mut intent: Intent = match serde_json::from_value(entry.intent.clone()) {
            Ok(i) => i,
            Err(e) => {
                let audit = json!({"type": "delivery", "at": now_text(), "job": seq, "outcome": "dead", "reason": format!("unreadable intent: {e}")});
                self.store.outbox_bury(seq, &entry, entry.user_id(), &audit)?;
                return Ok(Outcome::Closed);
            }
        };
        let age_ms = now_ms().saturating_sub(entry.enqueued_ms);
        if intent.dry_run {
            let audit = self.audit(&intent, seq, &entry, "dry_run", &[], json!({}));
            self.store.outbox_finish(seq, &intent.user_id, &audit)?;
            self.metrics.record_delivery(&intent.target, "dry_run");
            tracing::info!(job = seq, target = %intent.target, username = %Pii(&intent.username), action = ?intent.action, "Dry run: recorded an intent without sending it.");
            return Ok(Outcome::Closed);
        }
        let Some(connector) = self.connectors.get(&intent.target) else {
            return self.bury(seq, entry, &intent, &[], format!("target '{}' is not configured", intent.target));
        };
        let started = Instant::now();
        let (calls, failure, link_note) = match self.plan(connector, seq, &entry, &mut intent).await? {
            link::Plan::Held => return Ok(Outcome::Closed),
            link::Plan::Failed(f, calls) => (calls, Some(f), Value::Null),
            link::Plan::Deliver { steps, link, note, calls: mut looked_up } => {
                let (calls, effects, failure) = self.run_steps(connector, steps).await;
                if let (None, Some(link)) = (&failure, link) {
                    self.record_link(*link, &effects)?;
                }
                looked_up.extend(calls);
                (looked_up, failure, note)
            }
        };
        let Some(failure) = failure else {
            let latency_ms = now_ms().saturating_sub(entry.enqueued_ms);
            let audit = self.audit(
                &intent,
                seq,
                &entry,
                "delivered",
                &calls,
                json!({"latency_ms": latency_ms, "took_ms": started.elapsed().as_millis() as u64, "link": link_note}),
            );
            self.store.outbox_finish(seq, &intent.user_id, &audit)?;
            self.metrics.record_delivery(&intent.target, "delivered");
            if is_offboarding(intent.trigger) {
                self.metrics.offboarding_latency.observe(latency_ms as f64 / 1000.0);
            }
            tracing::info!(job = seq, target = %intent.target, username = %Pii(&intent.username), action = ?intent.action, latency_ms, "Delivered an intent.");
            return Ok(Outcome::Closed);
        };
        let attempt = entry.attempts + 1;
        let unit: f64 = rand::thread_rng().gen();
        match retry::decide(&failure, attempt, Duration::from_millis(age_ms), &self.cfg, unit) {
            Decision::Bury(reason) => self.bury(seq, entry, &intent, &calls, reason),
            Decision::Retry(wait) => {
                let audit = self.audit(
                    &intent,
                    seq,
                    &entry,
                    "retry",
                    &calls,
                    json!({"error": failure.reason(), "retry_in_ms": wait.as_millis() as u64}),
                );
                self.store.audit_append(&intent.user_id, &audit)?;
                let next_ms = now_ms() + wait.as_millis() as u64;
                let mut updated = entry;
                updated.attempts = attempt;
                updated.next_ms = next_ms;
                updated.last_error = Some(failure.reason().to_string());
                self.store.outbox_update(seq, &updated)?;
                self.metrics.record_delivery(&intent.target, "retry");
                tracing::warn!(job = seq, target = %intent.target, username = %Pii(&intent.username), attempt, retry_in_ms = wait.as_millis() as u64, error = %failure.reason(), "Delivery failed; will retry.");
                Ok(Outcome::RetryAt(next_ms))
            }
        }
    }

    fn bury(
        &self,
        seq: u64,
        mut entry: OutboxEntry,
        intent: &Intent,
        calls: &[Call],
        reason: String,
    ) -> StoreResult<Outcome> {
        let audit = self.audit(intent, seq, &entry, "dead", calls, json!({"error": reason}));
        entry.attempts += 1;
        entry.last_error = Some(reason.clone());
        entry.dead_at = Some(now_text());
        self.store.outbox_bury(seq, &entry, &intent.user_id, &audit)?;
        self.metrics.record_delivery(&intent.target, "dead");
        tracing::error!(job = seq, target = %intent.target, username = %Pii(&intent.username), action = ?intent.action, error = %reason, "An intent became a dead letter; an operator must look at it (scimbridge jobs list).");
        Ok(Outcome::Closed)
    }
}
