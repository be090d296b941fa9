//! The lifecycle jobs on the admin API (admin token), so they can be scripted and so the CLI can
//! use them while `serve` holds the store. Each answers the run's report (JSON, as stored):
//! `POST /admin/activity/refresh[?target=T]`, `POST /admin/cleanup?mode=dry-run|apply[&target=T][&orphans=true]`,
//! `GET /admin/license/report`, `POST /admin/license/optimize?mode=…`,
//! `POST /admin/license/grant/{user}`, `POST /admin/deactivate` and `POST /admin/reactivate`
//! (body: a `BulkRequest`), `POST /admin/reconcile?mode=…`, `GET /admin/reports[?limit=N]`,
//! `GET /admin/reports/{id}`, `POST /admin/undo/{run_id}?mode=…`. Each run is attributed to the
//! request's operator (the admin token's name and the forwarded CLI user) with a run id of its own.
//! An apply over the mass-offboarding brake's limit answers 409 unless the request says
//! `allow_over_guard=true` (audited).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::operator::operator;
use super::query::{param, parse_pairs};
use super::AppState;
use crate::lifecycle::{BulkKind, BulkRequest, Jobs, LifecycleError, Mode, Report};
use crate::scim::ScimError;

fn api_error(e: LifecycleError) -> ApiError {
    match e {
        LifecycleError::Store(s) => s.into(),
        LifecycleError::Invalid(_) | LifecycleError::UnknownTarget(_) => ScimError::invalid_value(e.to_string()).into(),
        LifecycleError::UnknownRun(_) => ScimError::not_found(e.to_string()).into(),
        LifecycleError::OverGuard(_) => ScimError::new(409, None, e.to_string()).into(),
        LifecycleError::Read { .. } | LifecycleError::Target(_) => {
            tracing::warn!(error = %e, "A lifecycle job could not read a target.");
            ScimError::new(502, None, e.to_string()).into()
        }
    }
}

/// The jobs, attributed to the request's operator (a fresh run id per request).
fn jobs(state: &AppState, req: &HttpRequest) -> ApiResult<Jobs> {
    let op = operator(req)?;
    // `allow_over_guard=true`: an apply over the mass-offboarding brake's limit queues anyway.
    let allow = match param(&parse_pairs(req.query_string()), "allow_over_guard") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(
                ScimError::invalid_value(format!("allow_over_guard must be true or false, not '{other}'.")).into()
            )
        }
    };
    Ok(Jobs::new(state.store.clone(), state.config.clone())
        .map_err(api_error)?
        .with_operator(op)
        .with_clock(state.clock.clone())
        .with_allow_over_guard(allow))
}

fn mode(req: &HttpRequest) -> ApiResult<Mode> {
    let pairs = parse_pairs(req.query_string());
    Mode::parse(param(&pairs, "mode")).ok_or_else(|| ScimError::invalid_value("mode must be dry-run or apply.").into())
}

fn target(req: &HttpRequest) -> Option<String> {
    param(&parse_pairs(req.query_string()), "target").map(str::to_string)
}

fn answer(r: Result<Report, LifecycleError>) -> ApiResult<HttpResponse> {
    let report = r.map_err(api_error)?;
    let body = serde_json::to_string(&report).map_err(|e| ApiError(ScimError::new(500, None, e.to_string())))?;
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}

pub async fn refresh(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    answer(jobs(&state, &req)?.refresh(target(&req).as_deref(), state.clock.now()).await)
}

pub async fn cleanup(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let m = mode(&req)?;
    let orphans = match param(&parse_pairs(req.query_string()), "orphans") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ScimError::invalid_value(format!("orphans must be true or false, not '{other}'.")).into())
        }
    };
    answer(jobs(&state, &req)?.cleanup_selecting(m, target(&req).as_deref(), orphans, state.clock.now()).await)
}

pub async fn license_report(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    answer(jobs(&state, &req)?.license_report(state.clock.now()).await)
}

pub async fn license_optimize(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let m = mode(&req)?;
    answer(jobs(&state, &req)?.license_optimize(m, state.clock.now()).await)
}

pub async fn license_grant(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    answer(jobs(&state, &req)?.license_grant(&path, state.clock.now()).await)
}

async fn bulk(
    kind: BulkKind,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let request: BulkRequest = serde_json::from_slice(&body)
        .map_err(|e| ScimError::invalid_value(format!("The body is not a bulk request: {e}.")))?;
    answer(jobs(&state, &req)?.bulk(kind, &request, state.clock.now()).await)
}

pub async fn deactivate(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    bulk(BulkKind::Deactivate, req, body, state).await
}

pub async fn reactivate(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    bulk(BulkKind::Reactivate, req, body, state).await
}

pub async fn reconcile(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let m = mode(&req)?;
    answer(jobs(&state, &req)?.reconcile(m, state.clock.now()).await)
}

/// `POST /admin/undo/{run_id}?mode=dry-run|apply`: the undo's own report.
pub async fn undo(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let m = mode(&req)?;
    answer(jobs(&state, &req)?.undo(&path, m, state.clock.now()).await)
}

pub async fn reports(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let pairs = parse_pairs(req.query_string());
    let limit = param(&pairs, "limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    let list = state.store.reports(limit)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json!({"total": list.len(), "reports": list}).to_string()))
}

pub async fn report(path: web::Path<String>, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let id: u64 = path.parse().map_err(|_| ScimError::invalid_value("A report id is a whole number."))?;
    match state.store.report(id)? {
        Some(r) => Ok(HttpResponse::Ok().content_type("application/json").body(r.to_string())),
        None => Err(ScimError::not_found(format!("No report {id}.")).into()),
    }
}
