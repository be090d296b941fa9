//! What the worker does with an attempt the target's state decided (`health.rs`): a failure
//! while the target is down or rate limiting is recorded but not charged to the intent, and an
//! intent that waited longer than `max_age_secs` becomes a dead letter with a loud alert (an
//! error log line and `scimbridge_dead_letters_max_age_total`).

use std::time::Duration;

use serde_json::{json, Value};

use super::worker::{now_ms, Deliverer, Outcome};
use crate::atlassian::{Call, Failure};
use crate::policy::Intent;
use crate::redact::Pii;
use crate::store::{OutboxEntry, StoreResult};

/// A failed attempt as the worker hands it over.
pub(super) struct Failed<'a> {
    pub failure: &'a Failure,
    pub calls: &'a [Call],
    pub resume: Option<String>,
    pub how: Value,
}

impl Deliverer {
    /// Records a failure caused by the target's state (down, or rate limiting): audited as a
    /// retry, attempts unchanged, tried again once the target takes calls (not before `wait`).
    /// An intent already older than `max_age_secs` becomes a dead letter instead.
    pub(super) fn wait_for_target(
        &self,
        seq: u64,
        entry: OutboxEntry,
        intent: &Intent,
        failed: Failed<'_>,
        wait: Duration,
    ) -> StoreResult<Outcome> {
        let age_ms = now_ms().saturating_sub(entry.enqueued_ms);
        let reason = failed.failure.reason().to_string();
        if age_ms >= self.cfg.max_age.as_millis() as u64 {
            let why = max_age_reason(&intent.target, age_ms, &reason);
            self.aged_alert(seq, intent, age_ms, &why);
            return self.bury_with(seq, entry, intent, failed.calls, why, failed.how);
        }
        let down = !self.health.admits(&intent.target, now_ms());
        let mut extra = json!({
            "error": reason,
            "retry_in_ms": wait.as_millis() as u64,
            "resume": failed.resume,
            "charged": false,
            "detail": format!(
                "target '{}' is {}; this attempt does not count toward max_attempts",
                intent.target,
                if down { "down or rate limiting: the intent waits until it takes calls again" } else { "failing" }
            ),
        });
        if let (Some(o), Value::Object(h)) = (extra.as_object_mut(), failed.how) {
            o.extend(h);
        }
        let audit = self.audit(intent, seq, &entry, "retry", failed.calls, extra);
        self.store.audit_append(&intent.user_id, &audit)?;
        let next_ms = now_ms() + wait.as_millis() as u64;
        let mut updated = entry;
        updated.next_ms = next_ms;
        updated.last_error = Some(reason.clone());
        updated.resume = failed.resume;
        self.store.outbox_update(seq, &updated)?;
        self.metrics.record_delivery(&intent.target, "retry");
        tracing::info!(job = seq, target = %intent.target, username = %Pii(&intent.username), error = %reason, "Target not taking calls; the intent waits (not counted as an attempt).");
        Ok(Outcome::RetryAt(next_ms))
    }

    /// A lane that waited for its down target past `max_age_secs`: its head becomes a dead
    /// letter with the alert, without a call. If the target came back meanwhile, it is tried.
    pub(super) async fn age_out(&self, seq: u64) -> StoreResult<Outcome> {
        let Some(entry) = self.store.outbox_get(seq)? else { return Ok(Outcome::Closed) };
        let Ok(intent) = serde_json::from_value::<Intent>(entry.intent.clone()) else {
            return Ok(Outcome::RetryAt(0));
        };
        if self.health.admits(&intent.target, now_ms()) {
            return Ok(Outcome::RetryAt(0));
        }
        let age_ms = now_ms().saturating_sub(entry.enqueued_ms);
        let last = entry.last_error.clone().unwrap_or_else(|| "target down".to_string());
        let why = max_age_reason(&intent.target, age_ms, &last);
        self.aged_alert(seq, &intent, age_ms, &why);
        self.bury_with(seq, entry, &intent, &[], why, json!({"max_age": true}))
    }

    /// The loud part of a dead letter made by `max_age_secs`.
    pub(super) fn aged_alert(&self, seq: u64, intent: &Intent, age_ms: u64, reason: &str) {
        self.health.aged_out(&intent.target);
        tracing::error!(
            job = seq,
            target = %intent.target,
            username = %Pii(&intent.username),
            action = ?intent.action,
            age_secs = age_ms / 1000,
            max_age_secs = self.cfg.max_age.as_secs(),
            error = %reason,
            "ALERT: an intent was given up because it is older than max_age_secs; it was never delivered. Act on it by hand or retry it (scimbridge jobs list)."
        );
    }
}

fn max_age_reason(target: &str, age_ms: u64, last: &str) -> String {
    format!(
        "gave up after {}s (older than max_age_secs) waiting for target '{target}'; last error: {last}",
        age_ms / 1000
    )
}
