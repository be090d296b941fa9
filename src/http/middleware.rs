//! The request pipeline around every handler: a request id (echoed as `X-Request-Id` and on
//! every log line of the request's span), authentication by path, and one log line plus
//! metrics per request. Tokens never reach a log line.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, WWW_AUTHENTICATE};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use tracing::Instrument;

use super::error::error_response;
use super::AppState;
use crate::auth::{AuthFailure, Scope};
use crate::scim::ScimError;

pub const REQUEST_ID: &str = "x-request-id";

/// Which credential a path needs; `None` for the unauthenticated health endpoints.
fn scope_for(path: &str) -> Option<Scope> {
    match path {
        "/healthz" | "/readyz" => None,
        p if p.starts_with("/admin") || p == "/metrics" => Some(Scope::Admin),
        _ => Some(Scope::Scim),
    }
}

/// A low-cardinality route label: ids replaced by `{id}`.
fn route_label(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 4 && parts[1] == "scim" {
        return format!("/scim/v2/{}/{{id}}", parts[3]);
    }
    if parts.len() > 4 && parts[1] == "admin" {
        return format!("/admin/{}/{{id}}", parts[2]);
    }
    if path.len() > 64 {
        return "other".to_string();
    }
    path.to_string()
}

fn bearer(req: &ServiceRequest) -> Option<&str> {
    let v = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().to_string();
    let path = req.path().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    async move {
        let mut res = match (scope_for(&path), &state) {
            (Some(scope), Some(state)) => match state.auth.authenticate(bearer(&req), scope).await {
                Ok(principal) => {
                    req.extensions_mut().insert(principal);
                    next.call(req).await?.map_into_boxed_body()
                }
                Err(failure) => {
                    state.metrics.auth_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
                    if let AuthFailure::InvalidJwt(r) = &failure {
                        tracing::warn!(peer = %peer, issuer = r.issuer.as_deref().unwrap_or("-"), reason = %r.reason, "Rejected a JWT bearer token.");
                    } else {
                        tracing::warn!(peer = %peer, has_credentials = failure != AuthFailure::Missing, "Rejected a request without a valid bearer token.");
                    }
                    let mut res = req.into_response(error_response(&ScimError::new(401, None, failure.detail())));
                    res.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(failure.www_authenticate()));
                    res
                }
            },
            _ => next.call(req).await?.map_into_boxed_body(),
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            res.headers_mut().insert(HeaderName::from_static(REQUEST_ID), v);
        }
        let status = res.status().as_u16();
        let secs = started.elapsed().as_secs_f64();
        if let Some(state) = &state {
            state.metrics.record_request(&method, &route_label(&path), status, secs);
        }
        tracing::info!(status, latency_ms = (secs * 1000.0) as u64, "Request finished.");
        Ok(res)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_without_ids() {
        assert_eq!(route_label("/scim/v2/Users/0190-abc"), "/scim/v2/Users/{id}");
        assert_eq!(route_label("/scim/v2/Users"), "/scim/v2/Users");
        assert_eq!(scope_for("/healthz"), None);
        assert_eq!(scope_for("/metrics"), Some(Scope::Admin));
        assert_eq!(scope_for("/scim/v2/Users"), Some(Scope::Scim));
        assert_eq!(scope_for("/nope"), Some(Scope::Scim));
    }
}
