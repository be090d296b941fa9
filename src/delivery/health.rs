//! Per-target health (issue 11): a circuit per target, so an outage pauses that target's lanes
//! behind ONE probe instead of every job backing off (and dying) on its own.
//!
//! - A call that got no answer (refused, dropped, timed out) or a 502/503/504 is a *down signal*;
//!   a 500 or other 5xx is a *soft* one (it may be about this one request). `down_after_failures`
//!   of them in a row (any lane, no healthy answer in between) open the circuit: the target is
//!   down, its lanes wait, and one probe (the connector's cheap health read) goes out every
//!   `probe_interval_secs`.
//! - A probe that gets a healthy answer makes the target half-open: every waiting lane resumes
//!   at once. The first real call answered healthily closes it (up); a down signal opens it again.
//!   In half-open a soft failure is charged to its intent: the probe proved the target answers.
//! - A 429 is rate limiting, not an outage: the whole target waits out its `Retry-After` (DC
//!   limits are per account, and every lane uses the same account), and nothing is charged.
//! - Failures caused by the target being down never count toward `max_attempts`; only permanent
//!   answers and `max_age_secs` make dead letters (`outage.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::atlassian::{Call, Connector, Failure};
use crate::config::Delivery;
use crate::store::Store;

/// What one attempt's answer says about its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A healthy answer: success, or an answer about the request (4xx, a task still running).
    Healthy,
    /// Rate limited (429): wait, target-wide, for this long.
    Throttled(Duration),
    /// A 500 or other 5xx: the target may be failing, or only this request.
    Soft,
    /// No answer, or 502/503/504: the target (or the path to it) is not serving.
    Down,
}

/// Reads the signal from the last call of an attempt (the one that decided its outcome).
pub fn signal(failure: Option<&Failure>, calls: &[Call], floor: Duration) -> Signal {
    let Some(Failure::Retryable { retry_after, .. }) = failure else { return Signal::Healthy };
    match calls.last().map(|c| c.status) {
        Some(None) => Signal::Down,
        Some(Some(502..=504)) => Signal::Down,
        Some(Some(429)) => Signal::Throttled(retry_after.unwrap_or(floor).max(floor)),
        Some(Some(500..=599)) => Signal::Soft,
        _ => Signal::Healthy,
    }
}

/// The state of one target's circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    /// Down since this time (ms since epoch).
    Down {
        since_ms: u64,
    },
    /// A probe answered; real calls not yet confirmed. `since_ms`: when it went down.
    HalfOpen {
        since_ms: u64,
    },
}

/// What the worker does with a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// An ordinary failure: counts toward `max_attempts`, usual backoff.
    Charge,
    /// Caused by the target's state: not counted; try again after this long at the earliest
    /// (the lane also waits while the target is down or throttled).
    Wait(Duration),
}

#[derive(Debug)]
struct Circuit {
    state: State,
    /// Down or soft signals in a row, with no healthy answer between.
    streak: u32,
    /// Rate limited until (ms since epoch).
    throttled_until: u64,
    last_error: Option<String>,
    probing: bool,
    probes: u64,
    /// Intents dead-lettered by `max_age_secs` since start.
    aged_out: u64,
    /// The outage (its `since_ms`) whose `target_down` notice is stored: one per outage.
    down_noticed: Option<u64>,
}

impl Circuit {
    fn new() -> Circuit {
        Circuit {
            state: State::Up,
            streak: 0,
            throttled_until: 0,
            last_error: None,
            probing: false,
            probes: 0,
            aged_out: 0,
            down_noticed: None,
        }
    }
}

/// Settings of the circuit (from `[delivery]`).
#[derive(Debug, Clone)]
pub struct HealthConfig {
    pub probe_interval: Duration,
    pub down_after: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A target down this long gets one `target_down` notice (`[notify] target_down_secs`).
    pub target_down: Duration,
}

impl HealthConfig {
    pub fn from_delivery(d: &Delivery) -> HealthConfig {
        HealthConfig {
            probe_interval: d.probe_interval,
            down_after: d.down_after_failures,
            backoff_initial: d.backoff_initial,
            backoff_max: d.backoff_max,
            target_down: Duration::from_secs(crate::notify::config::DEFAULT_TARGET_DOWN_SECS),
        }
    }

    /// With `[notify] target_down_secs`.
    pub fn with_target_down(self, target_down: Duration) -> HealthConfig {
        HealthConfig { target_down, ..self }
    }
}

/// Every target's circuit, shared by the worker (writes), the probes, `/readyz` and `/metrics`.
pub struct Health {
    cfg: HealthConfig,
    circuits: Mutex<BTreeMap<String, Circuit>>,
    connectors: HashMap<String, Arc<Connector>>,
    store: Store,
    /// Woken when a target may take calls again (probe answered, throttle over).
    changed: Notify,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl Health {
    pub fn new(cfg: HealthConfig, connectors: HashMap<String, Arc<Connector>>, store: Store) -> Arc<Health> {
        let circuits = connectors.keys().map(|n| (n.clone(), Circuit::new())).collect();
        Arc::new(Health { cfg, circuits: Mutex::new(circuits), connectors, store, changed: Notify::new() })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Circuit>> {
        self.circuits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Woken when a target may take calls again.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    /// Whether `target` takes calls now (up or half-open, not rate limited).
    pub fn admits(&self, target: &str, now: u64) -> bool {
        self.lock().get(target).is_none_or(|c| !matches!(c.state, State::Down { .. }) && c.throttled_until <= now)
    }

    /// Whether `target` is down (its circuit open), for the readiness check loop.
    pub fn is_down(&self, target: &str) -> bool {
        self.lock().get(target).is_some_and(|c| matches!(c.state, State::Down { .. }))
    }

    /// The earliest end of a rate-limit wait still ahead, to wake the worker then.
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        self.lock().values().map(|c| c.throttled_until).filter(|t| *t > now).min()
    }

    /// Records the answer of one attempt at `target` and says what to do with its failure.
    pub fn observe(self: &Arc<Self>, target: &str, failure: Option<&Failure>, calls: &[Call]) -> Verdict {
        let sig = signal(failure, calls, self.cfg.backoff_initial.max(Duration::from_secs(1)));
        // No call made (a refusal decided here): nothing learnt about the target.
        if calls.is_empty() {
            return Verdict::Charge;
        }
        let now = now_ms();
        let mut map = self.lock();
        let Some(c) = map.get_mut(target) else { return Verdict::Charge };
        let reason = failure.map(|f| f.reason().to_string());
        let (verdict, event) = step(c, sig, &self.cfg, now, reason);
        // Down (first time, or again from half-open) and nobody probing: start the probe.
        let probe = matches!(c.state, State::Down { .. }) && !c.probing;
        if probe {
            c.probing = true;
        }
        let facts = event.map(|e| (e, c.state, c.last_error.clone()));
        drop(map);
        if let Some((e, state, error)) = facts {
            self.announce(target, e, state, error, now);
        }
        if probe {
            self.spawn_probe(target);
        }
        if matches!(sig, Signal::Throttled(_)) || event.is_some() {
            // Held lanes may go, or the worker must recompute its sleep (a throttle's end).
            self.changed.notify_one();
        }
        verdict
    }

    /// Counts a dead letter made by `max_age_secs` (shown in `/metrics` and `/readyz`).
    pub fn aged_out(&self, target: &str) {
        if let Some(c) = self.lock().get_mut(target) {
            c.aged_out += 1;
        }
    }

    fn spawn_probe(self: &Arc<Self>, target: &str) {
        let Some(connector) = self.connectors.get(target).cloned() else { return };
        let weak = Arc::downgrade(self);
        let interval = self.cfg.probe_interval;
        tokio::spawn(probe_loop(weak, target.to_string(), connector, interval));
    }

    /// Whether the probe of a target should go out now; clears `probing` when it is no longer
    /// down (an in-flight call succeeded meanwhile), ending that probe loop.
    fn still_down(&self, target: &str) -> bool {
        let mut map = self.lock();
        let Some(c) = map.get_mut(target) else { return false };
        let down = matches!(c.state, State::Down { .. });
        if !down {
            c.probing = false;
        }
        down
    }

    /// One probe's answer: half-open on a healthy one; true when probing should go on.
    fn probed(&self, target: &str, failure: Option<&Failure>, calls: &[Call]) -> bool {
        let sig = signal(failure, calls, Duration::from_secs(1));
        let now = now_ms();
        let mut map = self.lock();
        let Some(c) = map.get_mut(target) else { return false };
        c.probes += 1;
        let State::Down { since_ms } = c.state else {
            c.probing = false;
            return false;
        };
        if matches!(sig, Signal::Down | Signal::Soft) {
            c.last_error = failure.map(|f| f.reason().to_string());
            return true;
        }
        c.state = State::HalfOpen { since_ms };
        c.probing = false;
        if let Signal::Throttled(d) = sig {
            c.throttled_until = now + d.as_millis() as u64;
        }
        drop(map);
        tracing::warn!(target_name = %target, down_for_secs = now.saturating_sub(since_ms) / 1000, "Target answered its probe; every waiting intent resumes (half-open until real calls succeed).");
        self.changed.notify_one();
        false
    }

    /// Logs the moment a target goes down or comes back, records it in the audit log and hands
    /// the facts to [`target_notice`].
    fn announce(self: &Arc<Self>, target: &str, event: Event, state: State, error: Option<String>, now: u64) {
        let since_ms = match state {
            State::Down { since_ms } | State::HalfOpen { since_ms } => since_ms,
            State::Up => now,
        };
        if event == Event::Down {
            self.watch_outage(target, since_ms);
        }
        let (store, target_name) = (self.store.clone(), target.to_string());
        let facts = move |pending: usize| match event {
            Event::Down => json!({
                "type": "target", "event": "target_down", "at": rfc3339(now), "target": target_name,
                "since": rfc3339(since_ms), "pending": pending, "error": error,
            }),
            Event::Up => json!({
                "type": "target", "event": "target_up", "at": rfc3339(now), "target": target_name,
                "since": rfc3339(since_ms), "down_for_secs": now.saturating_sub(since_ms) / 1000, "pending": pending,
            }),
        };
        // Counting the target's pending intents reads the outbox: off the async threads.
        let target = target.to_string();
        tokio::task::spawn_blocking(move || {
            let pending = store
                .outbox_after(0)
                .map(|items| items.iter().filter(|i| i.entry.target() == target).count())
                .unwrap_or(0);
            let facts = facts(pending);
            match event {
                Event::Down => {
                    tracing::error!(target_name = %target, pending, error = %facts["error"], "Target is DOWN: its intents wait (nothing is given up while it is down); one probe every few seconds until it answers.")
                }
                Event::Up => {
                    tracing::warn!(target_name = %target, pending, down_for_secs = %facts["down_for_secs"], "Target is back up; its waiting intents are being delivered.")
                }
            }
            if let Err(e) = store.audit_append(&format!("target:{target}"), &facts) {
                tracing::error!(target_name = %target, error = %e, "Could not record the target's state change in the audit log.");
            }
            target_notice(&facts);
        });
    }

    /// Once the outage that began at `since_ms` has lasted `target_down`, stores ONE
    /// `target_down` notice for it; nothing if the target is back sooner. A half-open target
    /// (a probe answered, real calls not yet confirmed) is looked at again a probe later.
    fn watch_outage(self: &Arc<Self>, target: &str, since_ms: u64) {
        let (weak, target) = (Arc::downgrade(self), target.to_string());
        let due = since_ms.saturating_add(self.cfg.target_down.as_millis() as u64);
        let recheck = self.cfg.probe_interval.max(Duration::from_secs(1));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(due.saturating_sub(now_ms()))).await;
            loop {
                let Some(h) = weak.upgrade() else { return };
                match h.outage_lasted(&target, since_ms) {
                    Some(true) => drop(h),
                    Some(false) => return,
                    None => {
                        let (store, notice) = (h.store.clone(), h.down_notice(&target, since_ms));
                        let stored = tokio::task::spawn_blocking(move || store.enqueue_notice(&notice)).await;
                        if let Ok(Err(e)) = stored {
                            tracing::error!(target_name = %target, error = %e, "Could not store the target_down notification.");
                        }
                        return;
                    }
                }
                tokio::time::sleep(recheck).await;
            }
        });
    }

    /// Whether the outage since `since_ms` is still on: None when it is down and not yet
    /// notified (marked notified now), Some(true) when half-open (look again), Some(false) when
    /// over or already notified.
    fn outage_lasted(&self, target: &str, since_ms: u64) -> Option<bool> {
        let mut map = self.lock();
        let c = map.get_mut(target)?;
        match c.state {
            State::Down { since_ms: s } if s == since_ms && c.down_noticed != Some(since_ms) => {
                c.down_noticed = Some(since_ms);
                None
            }
            State::HalfOpen { since_ms: s } if s == since_ms => Some(true),
            _ => Some(false),
        }
    }

    fn down_notice(&self, target: &str, since_ms: u64) -> crate::notify::Notice {
        let error = self.lock().get(target).and_then(|c| c.last_error.clone()).unwrap_or_default();
        crate::notify::Notice::TargetDown {
            target: target.to_string(),
            since: rfc3339(since_ms),
            down_secs: now_ms().saturating_sub(since_ms) / 1000,
            error,
        }
    }

    /// Each target's state for `/readyz`.
    pub fn snapshot(&self) -> BTreeMap<String, Value> {
        let now = now_ms();
        self.lock()
            .iter()
            .map(|(name, c)| {
                let mut v = match c.state {
                    State::Up => json!({"state": "up"}),
                    State::Down { since_ms } => json!({"state": "down", "down_since": rfc3339(since_ms),
                        "down_for_secs": now.saturating_sub(since_ms) / 1000, "probes": c.probes}),
                    State::HalfOpen { since_ms } => json!({"state": "half_open", "down_since": rfc3339(since_ms)}),
                };
                if c.throttled_until > now {
                    v["rate_limited_for_ms"] = json!(c.throttled_until - now);
                }
                if c.state != State::Up {
                    v["last_error"] = json!(c.last_error);
                }
                v["dead_letters_by_max_age"] = json!(c.aged_out);
                (name.clone(), v)
            })
            .collect()
    }

    /// The per-target lines of `/metrics` (Prometheus text).
    pub fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let now = now_ms();
        let map = self.lock();
        let mut out = String::from("# HELP scimbridge_target_state Delivery state of each target (1 for its current state): up, down (circuit open, one probe at a time) or half_open (a probe answered, real calls not yet confirmed).\n# TYPE scimbridge_target_state gauge\n");
        for (name, c) in map.iter() {
            let cur = match c.state {
                State::Up => "up",
                State::Down { .. } => "down",
                State::HalfOpen { .. } => "half_open",
            };
            for s in ["up", "down", "half_open"] {
                let _ =
                    writeln!(out, "scimbridge_target_state{{target=\"{name}\",state=\"{s}\"}} {}", u8::from(s == cur));
            }
        }
        out.push_str("# HELP scimbridge_target_down_seconds Seconds since the target went down (0 while up).\n# TYPE scimbridge_target_down_seconds gauge\n");
        for (name, c) in map.iter() {
            let secs = match c.state {
                State::Up => 0,
                State::Down { since_ms } | State::HalfOpen { since_ms } => now.saturating_sub(since_ms) / 1000,
            };
            let _ = writeln!(out, "scimbridge_target_down_seconds{{target=\"{name}\"}} {secs}");
        }
        out.push_str("# HELP scimbridge_target_probes_total Health probes sent to targets while they were down.\n# TYPE scimbridge_target_probes_total counter\n");
        for (name, c) in map.iter() {
            let _ = writeln!(out, "scimbridge_target_probes_total{{target=\"{name}\"}} {}", c.probes);
        }
        out.push_str("# HELP scimbridge_dead_letters_max_age_total Intents given up because they were older than max_age_secs (since start); alert on any increase.\n# TYPE scimbridge_dead_letters_max_age_total counter\n");
        for (name, c) in map.iter() {
            let _ = writeln!(out, "scimbridge_dead_letters_max_age_total{{target=\"{name}\"}} {}", c.aged_out);
        }
        out
    }
}

/// A change the admin must hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Down,
    Up,
}

/// The circuit's transition on one attempt's signal (pure; unit-tested below).
fn step(
    c: &mut Circuit,
    sig: Signal,
    cfg: &HealthConfig,
    now: u64,
    reason: Option<String>,
) -> (Verdict, Option<Event>) {
    match sig {
        Signal::Healthy => {
            c.streak = 0;
            if c.state != State::Up {
                c.state = State::Up;
                c.last_error = None;
                return (Verdict::Charge, Some(Event::Up));
            }
            (Verdict::Charge, None)
        }
        Signal::Throttled(d) => {
            c.throttled_until = c.throttled_until.max(now + d.as_millis() as u64);
            (Verdict::Wait(d), None)
        }
        Signal::Down | Signal::Soft => {
            c.streak = c.streak.saturating_add(1);
            c.last_error = reason;
            let wait = crate::delivery::jittered(
                crate::delivery::backoff(
                    c.streak,
                    &crate::config::Delivery {
                        backoff_initial: cfg.backoff_initial,
                        backoff_max: cfg.backoff_max,
                        ..Default::default()
                    },
                ),
                rand::random::<f64>(),
            );
            match (c.state, sig) {
                // Already down: whatever was in flight is not charged.
                (State::Down { .. }, _) => (Verdict::Wait(wait), None),
                // The probe answered, so a 500 is about this request.
                (State::HalfOpen { .. }, Signal::Soft) => (Verdict::Charge, None),
                (State::HalfOpen { since_ms }, _) => {
                    c.state = State::Down { since_ms };
                    (Verdict::Wait(wait), None)
                }
                (State::Up, _) if c.streak >= cfg.down_after => {
                    c.state = State::Down { since_ms: now };
                    (Verdict::Wait(wait), Some(Event::Down))
                }
                (State::Up, Signal::Soft) => (Verdict::Charge, None),
                (State::Up, _) => (Verdict::Wait(wait), None),
            }
        }
    }
}

/// One probe every `interval` while the target is down; stops once it answers, the circuit
/// closed by itself (an in-flight call succeeded), or the worker is gone.
async fn probe_loop(health: Weak<Health>, target: String, connector: Arc<Connector>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(h) = health.upgrade() else { return };
        if !h.still_down(&target) {
            return;
        }
        drop(h);
        let (calls, result) = connector.probe().await;
        let Some(h) = health.upgrade() else { return };
        if !h.probed(&target, result.as_ref().err(), &calls) {
            return;
        }
        tracing::info!(target_name = %target, error = %result.err().map(|f| f.reason().to_string()).unwrap_or_default(), "Target still down; probing again.");
    }
}

/// The transition facts: called once when a target goes down (`event: "target_down"`, with
/// `since`, `pending`, `error`) and once when it is back up (`"target_up"`, with `since`,
/// `down_for_secs`, `pending`). The facts are already logged and in the audit log (subject
/// `target:<name>`). The admins' notification is not sent from here: it waits until the outage
/// has lasted `target_down_secs` (`Health::watch_outage`), so a short blip notifies nobody.
pub fn target_notice(facts: &Value) -> Value {
    facts.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HealthConfig {
        HealthConfig {
            probe_interval: Duration::from_secs(5),
            down_after: 3,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            target_down: Duration::from_secs(300),
        }
    }

    fn call(status: Option<u16>) -> Vec<Call> {
        vec![Call { method: "GET".into(), path: "/x".into(), status, latency_ms: 1 }]
    }

    fn retry(after: Option<Duration>) -> Failure {
        Failure::Retryable { reason: "r".into(), retry_after: after }
    }

    #[test]
    fn signals_read_the_last_call() {
        let floor = Duration::from_secs(1);
        assert_eq!(signal(Some(&retry(None)), &call(None), floor), Signal::Down);
        for s in [502, 503, 504] {
            assert_eq!(signal(Some(&retry(None)), &call(Some(s)), floor), Signal::Down, "{s}");
        }
        assert_eq!(signal(Some(&retry(None)), &call(Some(500)), floor), Signal::Soft);
        assert_eq!(
            signal(Some(&retry(Some(Duration::from_secs(7)))), &call(Some(429)), floor),
            Signal::Throttled(Duration::from_secs(7))
        );
        assert_eq!(signal(Some(&retry(Some(Duration::ZERO))), &call(Some(429)), floor), Signal::Throttled(floor));
        // A 409 for one user, a 408, a permanent answer: about the request, not the target.
        assert_eq!(signal(Some(&Failure::permanent("409")), &call(Some(409)), floor), Signal::Healthy);
        assert_eq!(signal(Some(&retry(None)), &call(Some(408)), floor), Signal::Healthy);
        assert_eq!(signal(None, &call(Some(200)), floor), Signal::Healthy);
    }

    #[test]
    fn down_signals_open_the_circuit_after_the_streak_and_are_never_charged() {
        let (mut c, cfg) = (Circuit::new(), cfg());
        assert!(matches!(step(&mut c, Signal::Down, &cfg, 10, None), (Verdict::Wait(_), None)));
        assert!(matches!(step(&mut c, Signal::Down, &cfg, 11, None), (Verdict::Wait(_), None)));
        assert_eq!(c.state, State::Up);
        assert!(matches!(step(&mut c, Signal::Down, &cfg, 12, None), (Verdict::Wait(_), Some(Event::Down))));
        assert_eq!(c.state, State::Down { since_ms: 12 });
        // In-flight results while down: not charged, no second notice.
        assert!(matches!(step(&mut c, Signal::Soft, &cfg, 13, None), (Verdict::Wait(_), None)));
    }

    #[test]
    fn a_healthy_answer_between_failures_resets_the_streak() {
        let (mut c, cfg) = (Circuit::new(), cfg());
        for _ in 0..10 {
            step(&mut c, Signal::Down, &cfg, 1, None);
            step(&mut c, Signal::Down, &cfg, 1, None);
            step(&mut c, Signal::Healthy, &cfg, 1, None);
        }
        assert_eq!(c.state, State::Up);
    }

    #[test]
    fn soft_failures_are_charged_until_they_are_a_storm() {
        let (mut c, cfg) = (Circuit::new(), cfg());
        assert_eq!(step(&mut c, Signal::Soft, &cfg, 1, None).0, Verdict::Charge);
        assert_eq!(step(&mut c, Signal::Soft, &cfg, 1, None).0, Verdict::Charge);
        assert!(matches!(step(&mut c, Signal::Soft, &cfg, 1, None), (Verdict::Wait(_), Some(Event::Down))));
    }

    #[test]
    fn half_open_closes_on_a_healthy_answer_and_reopens_on_a_down_signal() {
        let (mut c, cfg) = (Circuit::new(), cfg());
        c.state = State::HalfOpen { since_ms: 5 };
        // A 500 after the probe answered is about the request: charged, still half-open.
        assert_eq!(step(&mut c, Signal::Soft, &cfg, 6, None).0, Verdict::Charge);
        assert!(matches!(step(&mut c, Signal::Down, &cfg, 7, None), (Verdict::Wait(_), None)));
        assert_eq!(c.state, State::Down { since_ms: 5 }, "still down since the first time, no new notice");
        c.state = State::HalfOpen { since_ms: 5 };
        assert_eq!(step(&mut c, Signal::Healthy, &cfg, 8, None), (Verdict::Charge, Some(Event::Up)));
        assert_eq!(c.state, State::Up);
    }

    #[test]
    fn rate_limiting_pauses_the_target_without_marking_it_down_or_charging() {
        let (mut c, cfg) = (Circuit::new(), cfg());
        for _ in 0..5 {
            let (v, e) = step(&mut c, Signal::Throttled(Duration::from_secs(2)), &cfg, 1000, None);
            assert_eq!((v, e), (Verdict::Wait(Duration::from_secs(2)), None));
        }
        assert_eq!((c.state, c.throttled_until), (State::Up, 3000));
    }
}
