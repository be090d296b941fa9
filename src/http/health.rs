//! `/healthz` (liveness, no auth), `/readyz` (the store answers; no auth) and `/metrics`
//! (admin token).

use actix_web::{web, HttpResponse};

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(r#"{"status":"ok"}"#)
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.store.is_ready() {
        HttpResponse::Ok().content_type("application/json").body(r#"{"status":"ready"}"#)
    } else {
        HttpResponse::ServiceUnavailable().content_type("application/json").body(r#"{"status":"store unavailable"}"#)
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let users = state.store.count(crate::store::Kind::User) as f64;
    let groups = state.store.count(crate::store::Kind::Group) as f64;
    let text = state.metrics.render(&[
        ("scimbridge_store_size_bytes", "Size of the embedded store on disk.", state.store.size_on_disk() as f64),
        ("scimbridge_users", "Users stored.", users),
        ("scimbridge_groups", "Groups stored.", groups),
        ("scimbridge_outbox_depth", "Intents waiting for delivery.", state.store.outbox_depth() as f64),
    ]);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}
