//! The request pipeline around every handler: a request id (echoed as `X-Request-Id` and on
//! every log line of the request's span), authentication by path, and one log line plus
//! metrics per request. Tokens never reach a log line.

use std::borrow::Cow;

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, WWW_AUTHENTICATE};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use tracing::Instrument;

use super::error::error_response;
use super::head_guard::{self, Oversized};
use super::limits::client_ip;
use super::route_label::route_label;
use super::{AppState, Listener};
use crate::auth::{AuthFailure, Principal, Scope};
use crate::scim::ScimError;

pub const REQUEST_ID: &str = "x-request-id";

/// The admin API and metrics: admin credentials, and the admin listener when there is one.
fn is_admin_path(path: &str) -> bool {
    path.starts_with("/admin") || path == "/metrics"
}

/// Which credential a path needs; `None` for the unauthenticated health endpoints.
fn scope_for(path: &str) -> Option<Scope> {
    match path {
        "/healthz" | "/readyz" => None,
        p if is_admin_path(p) => Some(Scope::Admin),
        _ => Some(Scope::Scim),
    }
}

/// The path with repeated slashes merged and trailing ones trimmed (`/scim/v2//Users/` →
/// `/scim/v2/Users`), or `None` when it is already normal (nearly always: checked without
/// allocating, unlike actix's `NormalizePath`, which ran a regex on every request).
fn normalized(path: &str) -> Option<String> {
    if !path.contains("//") && (path.len() <= 1 || !path.ends_with('/')) {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Rewrites the request's URI to its normalized path, keeping the query, before routing.
fn normalize_path(req: &mut ServiceRequest) {
    let Some(path) = normalized(req.path()) else { return };
    let target = match req.query_string() {
        "" => path,
        q => format!("{path}?{q}"),
    };
    let mut parts = req.uri().clone().into_parts();
    let Ok(pq) = target.parse::<actix_web::http::uri::PathAndQuery>() else { return };
    parts.path_and_query = Some(pq);
    if let Ok(uri) = actix_web::http::Uri::from_parts(parts) {
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
}

fn bearer(req: &ServiceRequest) -> Option<&str> {
    let v = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// What the request pipeline refuses before any handler runs, and why.
fn refusal(
    status: u16,
    detail: impl Into<String>,
    retry_after: Option<std::time::Duration>,
) -> actix_web::HttpResponse {
    let mut res = error_response(&ScimError::new(status, None, detail));
    if let Some(wait) = retry_after {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            res.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
        }
    }
    res
}

/// Size limits on the request line and headers (URL 414, headers 431). On HTTP/1 the
/// connection's head guard enforces them first; this stays for whatever reaches a handler
/// another way.
fn oversized(req: &ServiceRequest, limits: &crate::config::Limits) -> Option<actix_web::HttpResponse> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > limits.max_url_bytes {
        return Some(too_large(Oversized::Url, limits));
    }
    let headers: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if headers > limits.max_header_bytes {
        return Some(too_large(Oversized::Headers, limits));
    }
    None
}

/// The SCIM error for a request line or headers over the limits.
fn too_large(why: Oversized, limits: &crate::config::Limits) -> actix_web::HttpResponse {
    let effective = head_guard::HeadLimits::new(limits.max_url_bytes, limits.max_header_bytes);
    match why {
        Oversized::Url => {
            refusal(414, format!("The request URL is longer than {} bytes.", effective.max_url_bytes), None)
        }
        Oversized::Headers => {
            refusal(431, format!("The request headers exceed {} bytes.", effective.max_header_bytes), None)
        }
        Oversized::FieldCount => {
            refusal(431, format!("The request has more than {} header fields.", head_guard::MAX_HEADER_FIELDS), None)
        }
    }
}

/// With a separate admin listener, each listener serves only its own half.
fn wrong_listener(path: &str, role: Listener, separate_admin: bool) -> bool {
    let admin_path = is_admin_path(path);
    match role {
        Listener::Main => separate_admin && admin_path,
        Listener::Admin => !admin_path && path != "/healthz" && path != "/readyz",
    }
}

/// Decides whether a request may reach its handler: the right listener, size limits, its
/// credential (a failure counts toward its address's limit), and the credential's rate.
/// `Ok(None)` for the unauthenticated health endpoints.
async fn admit(
    req: &ServiceRequest,
    state: &AppState,
    role: Listener,
    path: &str,
) -> Result<Option<Principal>, actix_web::HttpResponse> {
    if wrong_listener(path, role, state.config.admin_listen.is_some()) {
        return Err(refusal(404, format!("No endpoint at {path}."), None));
    }
    if let Some(refused) = oversized(req, &state.config.limits) {
        return Err(refused);
    }
    let Some(scope) = scope_for(path) else { return Ok(None) };
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = client_ip(req.peer_addr().map(|a| a.ip()), forwarded, &state.config.trusted_proxies);
    let client_key = || client.map(|c| c.to_string()).unwrap_or_default();
    // The credential is checked first (in constant time), so a valid one is never refused for
    // what others sent from the same address (a NAT, a proxy not in `trusted_proxies`): only
    // failures count toward the address's limit, and only failures are throttled.
    let principal = match state.auth.authenticate(bearer(req), scope).await {
        Ok(p) => p,
        Err(failure) => return Err(refuse_failed_login(state, client_key(), &failure)),
    };
    if let Some(wait) =
        state.limiters.per_credential.as_ref().and_then(|l| l.check(&principal.name, Instant::now()).err())
    {
        tracing::warn!(credential = %principal.name, "Rate limited a credential.");
        return Err(refusal(429, "Too many requests for this credential; slow down.", Some(wait)));
    }
    Ok(Some(principal))
}

/// The answer to a request whose credential failed: 429 once its address is over its
/// failed-authentication limit (that failure is counted too), 401 otherwise.
fn refuse_failed_login(state: &AppState, client_key: String, failure: &AuthFailure) -> actix_web::HttpResponse {
    state.metrics.auth_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Err(wait) = state.limiters.auth_failures.check(&client_key, Instant::now()) {
        tracing::warn!(client = %client_key, "Refused a request: too many failed authentications from this address.");
        return refusal(429, "Too many failed authentications from this address; try again later.", Some(wait));
    }
    if let AuthFailure::InvalidJwt(r) = failure {
        tracing::warn!(client = %client_key, issuer = r.issuer.as_deref().unwrap_or("-"), reason = %r.reason, "Rejected a JWT bearer token.");
    } else {
        tracing::warn!(client = %client_key, has_credentials = *failure != AuthFailure::Missing, "Rejected a request without a valid bearer token.");
    }
    let mut res = error_response(&ScimError::new(401, None, failure.detail()));
    res.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(failure.www_authenticate()));
    res
}

/// [`admit`], unless the connection's head guard already refused the request.
async fn admit_or_refuse(
    req: &ServiceRequest,
    state: &AppState,
    role: Listener,
    path: &str,
    guard_refusal: Option<Oversized>,
) -> Result<Option<Principal>, actix_web::HttpResponse> {
    let admitted = match guard_refusal {
        Some(why) => Err(too_large(why, &state.config.limits)),
        None => admit(req, state, role, path).await,
    }?;
    // While the store holds a write it could not make durable (until it can be reopened, see
    // store/reopen.rs), reads could show it: SCIM and admin requests wait for the recovery.
    if let Err(why) = state.store.readable() {
        if path.starts_with("/scim/") || path.starts_with("/admin") {
            let detail = format!("The store is recovering from a failed write: {why}. Retry later.");
            return Err(super::error::error_response(&crate::scim::ScimError::new(503, None, detail)));
        }
    }
    Ok(admitted)
}

pub async fn authenticate(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    normalize_path(&mut req);
    // A head the connection's guard refused arrives as a synthetic request (head_guard.rs).
    let guard_refusal = head_guard::refused(req.path());
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        // A v4 UUID from the thread-local generator: `Uuid::new_v4` asks the kernel each time.
        .unwrap_or_else(|| uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string());
    let method = req.method().to_string();
    let path = match guard_refusal {
        Some(_) => "(oversized request head)".to_string(),
        None => req.path().to_string(),
    };
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let role = req.app_data::<Listener>().copied().unwrap_or(Listener::Main);
    async move {
        let mut res = match &state {
            None => next.call(req).await?.map_into_boxed_body(),
            Some(state) => match admit_or_refuse(&req, state, role, &path, guard_refusal).await {
                Ok(principal) => {
                    if let Some(p) = principal {
                        req.extensions_mut().insert(p);
                    }
                    next.call(req).await?.map_into_boxed_body()
                }
                Err(refused) => req.into_response(refused),
            },
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            res.headers_mut().insert(HeaderName::from_static(REQUEST_ID), v);
        }
        let status = res.status().as_u16();
        let secs = started.elapsed().as_secs_f64();
        if let Some(state) = &state {
            // A refused oversized head has no path of its own: its label says what it was.
            let route = if guard_refusal.is_some() { Cow::Borrowed(path.as_str()) } else { route_label(&path) };
            state.metrics.record_request(&method, &route, status, secs);
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
    fn paths_choose_the_credential_they_need() {
        assert_eq!(scope_for("/healthz"), None);
        assert_eq!(scope_for("/metrics"), Some(Scope::Admin));
        assert_eq!(scope_for("/scim/v2/Users"), Some(Scope::Scim));
        assert_eq!(scope_for("/nope"), Some(Scope::Scim));
    }

    #[test]
    fn paths_are_normalized_only_when_needed() {
        assert_eq!(normalized("/scim/v2/Users"), None);
        assert_eq!(normalized("/"), None);
        assert_eq!(normalized("/scim/v2/Users/").as_deref(), Some("/scim/v2/Users"));
        assert_eq!(normalized("//scim//v2///Users//").as_deref(), Some("/scim/v2/Users"));
        assert_eq!(normalized("//").as_deref(), Some("/"));
    }
}
