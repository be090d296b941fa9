//! `/healthz` (liveness, no auth), `/readyz` (the store answers and can write; no auth) and
//! `/metrics` (admin token).
//!
//! A store that cannot write (a full disk) fails readiness, not liveness: the process is fine
//! and recovers by itself once space is free (`store/reopen.rs`), so restarting it would gain
//! nothing, while taking it out of service tells the orchestrator and the admin at once.

use actix_web::{web, HttpResponse};

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(r#"{"status":"ok"}"#)
}

/// Ready when the store answers. Targets are reported but do not gate readiness: an IdP must
/// be able to deliver a disable while Jira is down (the outbox holds it), so taking the pod out
/// of service on a target outage would turn a delay into lost IdP events. The body says each
/// target's delivery state (up, down since, half-open) and how old the oldest pending intent is.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let targets: serde_json::Map<String, serde_json::Value> = state
        .target_health
        .lock()
        .map(|h| {
            h.iter()
                .map(|(name, err)| {
                    let v = match err {
                        None => serde_json::json!({"reachable": true}),
                        Some(e) => serde_json::json!({"reachable": false, "error": e}),
                    };
                    (name.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut targets = targets;
    for (name, circuit) in state.delivery_health.snapshot() {
        let entry = targets.entry(name).or_insert_with(|| serde_json::json!({}));
        if let (Some(e), serde_json::Value::Object(c)) = (entry.as_object_mut(), circuit) {
            e.extend(c);
        }
    }
    let ready = state.store.is_ready();
    let outbox = serde_json::json!({
        "pending": state.store.outbox_depth(),
        "oldest_pending_age_secs": oldest_pending_age_secs(&state),
    });
    let mut body = serde_json::json!({"status": if ready { "ready" } else { "store unavailable" }, "store": ready, "targets": targets, "outbox": outbox});
    if let Err(why) = state.store.writable() {
        body["status"] = serde_json::json!(format!("store not writable: {why}"));
        body["store_writable"] = serde_json::json!(false);
        body["store_error"] = serde_json::json!(why);
        body["store_unwritable_since"] = serde_json::json!(state.store.unwritable_since());
    } else {
        body["store_writable"] = serde_json::json!(true);
    }
    let mut res = if ready { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    res.content_type("application/json").body(body.to_string())
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let users = state.store.count(crate::store::Kind::User) as f64;
    let groups = state.store.count(crate::store::Kind::Group) as f64;
    let (review, held) = state.store.review_counts();
    let oldest_audit_age = state
        .store
        .oldest_audit_at()
        .ok()
        .flatten()
        .map_or(0.0, |t| (chrono::Utc::now() - t).num_seconds().max(0) as f64);
    let guard = state.store.guard_status();
    let text = state.metrics.render(&[
        ("scimbridge_store_size_bytes", "Size of the embedded store on disk.", state.store.size_on_disk() as f64),
        (
            "scimbridge_store_writable",
            "1 while the store can make writes durable, 0 while it cannot (full disk, I/O error): writes answer 503 and delivery pauses.",
            if state.store.writable().is_ok() { 1.0 } else { 0.0 },
        ),
        ("scimbridge_users", "Users stored.", users),
        ("scimbridge_groups", "Groups stored.", groups),
        ("scimbridge_outbox_depth", "Intents waiting for delivery.", state.store.outbox_depth() as f64),
        ("scimbridge_dead_letters", "Intents that failed for good and wait for an operator.", state.store.dead_letter_count() as f64),
        (
            "scimbridge_outbox_oldest_pending_age_seconds",
            "Age of the oldest intent waiting for delivery (0 when none): grows while a target is down.",
            oldest_pending_age_secs(&state) as f64,
        ),
        (
            "scimbridge_superseded_intents",
            "Intents not delivered because a newer one for the same user and target supersedes them.",
            state.store.superseded_count() as f64,
        ),
        (
            "scimbridge_link_review_users",
            "Users whose Atlassian account could not be matched without a decision; nothing is done for them until `links set`.",
            review as f64,
        ),
        ("scimbridge_link_held_intents", "Intents held until their user's review is resolved.", held as f64),
        (
            "scimbridge_notifications_pending",
            "Notifications not yet sent on every channel (email, webhooks); growing means a channel keeps failing.",
            state.store.pending_notice_count() as f64,
        ),
        (
            "scimbridge_held_intents",
            "Destructive intents held by the mass-offboarding brake ([guard]) until `held approve` or `held reject`.",
            guard.held as f64,
        ),
        (
            "scimbridge_guard_brake_engaged",
            "1 while the mass-offboarding brake holds anything, else 0.",
            if guard.held > 0 { 1.0 } else { 0.0 },
        ),
        (
            "scimbridge_guard_window_offboardings",
            "Destructive intents let through in the brake's current window (window_secs).",
            guard.used as f64,
        ),
        (
            "scimbridge_guard_limit",
            "Destructive intents the brake lets through per window; 0 = no brake.",
            guard.limit.unwrap_or(0) as f64,
        ),
        (
            "scimbridge_record_cache_records",
            "Users and groups held in the record cache; below users + groups, reads of the rest go to disk (raise cache_mb).",
            state.store.cached_records() as f64,
        ),
        (
            "scimbridge_audit_oldest_record_age_seconds",
            "Age of the oldest audit record kept ([retention] audit_days prunes older ones).",
            oldest_audit_age,
        ),
    ]);
    let text = text + &state.delivery_health.render_metrics();
    let text = text + &state.metrics.retention.render();
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}

/// Seconds since the oldest pending intent was enqueued; 0 when nothing is pending.
fn oldest_pending_age_secs(state: &AppState) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    state.store.outbox_oldest_enqueued_ms().map_or(0, |t| now.saturating_sub(t) / 1000)
}
