//! `/healthz` (liveness, no auth), `/readyz` (the store answers; no auth) and `/metrics`
//! (admin token).

use actix_web::{web, HttpResponse};

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(r#"{"status":"ok"}"#)
}

/// Ready when the store answers. Targets are reported but do not gate readiness: an IdP must
/// be able to deliver a disable while Jira is down (the outbox holds it), so taking the pod out
/// of service on a target outage would turn a delay into lost IdP events.
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
    let ready = state.store.is_ready();
    let body = serde_json::json!({"status": if ready { "ready" } else { "store unavailable" }, "store": ready, "targets": targets});
    let mut res = if ready { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    res.content_type("application/json").body(body.to_string())
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let users = state.store.count(crate::store::Kind::User) as f64;
    let groups = state.store.count(crate::store::Kind::Group) as f64;
    let (review, held) = state.store.review_counts();
    let guard = state.store.guard_status();
    let text = state.metrics.render(&[
        ("scimbridge_store_size_bytes", "Size of the embedded store on disk.", state.store.size_on_disk() as f64),
        ("scimbridge_users", "Users stored.", users),
        ("scimbridge_groups", "Groups stored.", groups),
        ("scimbridge_outbox_depth", "Intents waiting for delivery.", state.store.outbox_depth() as f64),
        ("scimbridge_dead_letters", "Intents that failed for good and wait for an operator.", state.store.dead_letter_count() as f64),
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
    ]);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}
