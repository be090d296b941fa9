//! The admin API (its own tokens, never the IdP's): jobs and dead letters, the audit log.
//! `GET /admin/jobs[?state=pending|dead|superseded|held_for_review]`, `GET /admin/jobs/{id}`,
//! `POST /admin/jobs/{id}/retry[?force=true]` (409 when superseded), `POST /admin/jobs/retry[?target=T]`
//! (every dead letter still current), `POST /admin/jobs/{id}/drop` (also `DELETE /admin/jobs/{id}`),
//! `GET /admin/audit?user=NAME`.
//! `GET /admin/audit?run=RUN_ID`. Every change is attributed to the request's operator
//! (`operator.rs`): the token's name, and the CLI user in `X-Scimbridge-Operator`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::error::ApiResult;
use super::operator::operator;
use super::query::{param, parse_pairs};
use super::AppState;
use crate::admin::{self, JobFilter};
use crate::scim::ScimError;

fn job_id(s: &str) -> ApiResult<u64> {
    s.parse().map_err(|_| ScimError::invalid_value(format!("'{s}' is not a job id (a whole number).")).into())
}

fn json_ok(v: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(v.to_string())
}

pub async fn jobs(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let pairs = parse_pairs(req.query_string());
    let filter = JobFilter::parse(param(&pairs, "state"))
        .ok_or_else(|| ScimError::invalid_value("state must be pending, dead, superseded, held_for_review or all."))?;
    let jobs = admin::list_jobs(&state.store, filter)?;
    Ok(json_ok(json!({"total": jobs.len(), "jobs": jobs})))
}

pub async fn job(path: web::Path<String>, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let id = job_id(&path)?;
    match admin::show_job(&state.store, id)? {
        Some(j) => Ok(json_ok(j)),
        None => Err(ScimError::not_found(format!("No job {id}.")).into()),
    }
}

pub async fn retry(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let id = job_id(&path)?;
    let op = operator(&req)?;
    let pairs = parse_pairs(req.query_string());
    let force = match param(&pairs, "force") {
        None | Some("false") => false,
        Some("true") | Some("") => true,
        Some(other) => {
            return Err(ScimError::invalid_value(format!("force must be true or false, not '{other}'.")).into())
        }
    };
    match admin::retry_job(&state.store, id, force, &op)? {
        admin::Retry::Queued(new_id) => Ok(json_ok(json!({"retried": id, "job": new_id, "forced": force}))),
        admin::Retry::Superseded { by } => Ok(HttpResponse::Conflict()
            .content_type("application/json")
            .body(json!({"status": "409", "detail": admin::Retry::refusal(id, by), "superseded_by": by}).to_string())),
        admin::Retry::NotFound => Err(ScimError::not_found(format!(
            "No dead letter {id}; only dead letters (and, with force, superseded jobs) can be retried."
        ))
        .into()),
    }
}

/// `POST /admin/jobs/retry[?target=T]`: retries every dead letter that is still current.
pub async fn retry_all(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let pairs = parse_pairs(req.query_string());
    let target = param(&pairs, "target");
    if let Some(t) = target {
        if !state.config.targets.iter().any(|c| c.spec.name == t) {
            return Err(ScimError::invalid_value(format!("No target named '{t}' is configured.")).into());
        }
    }
    let done = admin::retry_all(&state.store, target, &operator(&req)?)?;
    let pairs = |v: &[(u64, u64)], k: &str| -> Vec<serde_json::Value> {
        v.iter().map(|(job, other)| json!({"job": job, k: other})).collect()
    };
    Ok(json_ok(json!({
        "retried": pairs(&done.retried, "as"),
        "superseded": pairs(&done.superseded, "superseded_by"),
    })))
}

pub async fn drop(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let id = job_id(&path)?;
    let op = operator(&req)?;
    if admin::drop_job(&state.store, id, &op)? {
        Ok(json_ok(json!({"dropped": id})))
    } else {
        Err(ScimError::not_found(format!("No job {id}.")).into())
    }
}

pub async fn audit(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let pairs = parse_pairs(req.query_string());
    if let Some(run) = param(&pairs, "run") {
        return match admin::audit_for_run(&state.store, run)? {
            Some(records) => Ok(json_ok(json!({"run": run, "records": records}))),
            None => Err(ScimError::not_found(format!("No record of run '{run}'.")).into()),
        };
    }
    let user = param(&pairs, "user")
        .ok_or_else(|| ScimError::invalid_value("user or run is required: ?user=NAME or ?run=RUN_ID."))?;
    match admin::audit_for_user(&state.store, user)? {
        Some(records) => Ok(json_ok(json!({"user": user, "records": records}))),
        None => Err(ScimError::not_found(format!("No history for '{user}'.")).into()),
    }
}

/// `GET /admin/backup`: a consistent export of the whole store, streamed as it is written.
pub async fn backup(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(16);
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut sink = ChannelWriter { tx, buf: Vec::with_capacity(CHUNK) };
        let result = store.backup(&mut sink, &crate::http::now());
        if let Err(e) = result {
            tracing::error!(error = %e, "Backup failed.");
            let _ = sink.tx.blocking_send(Err(std::io::Error::other("backup failed")));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok(HttpResponse::Ok().content_type("application/x-ndjson").streaming(stream))
}

const CHUNK: usize = 64 * 1024;

/// Hands the backup to the response in chunks; the blocking writer waits when the client is
/// slower than the export (the channel is bounded), so memory stays small.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<web::Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = web::Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::other("the client went away"))
    }
}

/// `GET /admin/tokens`: names, scopes, creation times and sources (`store`, `environment`) —
/// never tokens or digests.
pub async fn tokens(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let list = crate::admin_tokens::list(&state.store, &state.config.env_tokens)?;
    Ok(json_ok(json!({"tokens": list})))
}

/// `POST /admin/tokens?name=N[&scope=admin]`: issues a token and shows it this once.
pub async fn token_new(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let pairs = parse_pairs(req.query_string());
    let name = param(&pairs, "name")
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("name is required: ?name=NAME."))?;
    if name.starts_with("env:") {
        return Err(
            ScimError::invalid_value("Names starting with env: are reserved for tokens from the environment.").into()
        );
    }
    let scope = match param(&pairs, "scope") {
        None | Some("scim") => crate::auth::Scope::Scim,
        Some("admin") => crate::auth::Scope::Admin,
        Some(other) => {
            return Err(ScimError::invalid_value(format!("scope must be scim or admin, not '{other}'.")).into())
        }
    };
    if state.store.tokens()?.iter().any(|t| t.name == name) {
        return Err(ScimError::uniqueness(format!(
            "A token named '{name}' exists; revoke it first or pick another name."
        ))
        .into());
    }
    let op = operator(&req)?;
    let token = state.auth.issue(name, scope, &crate::http::now())?;
    admin::record_action(
        &state.store,
        &op,
        &admin::token_subject(name),
        "token_new",
        json!({"token": name, "scope": scope.as_str()}),
    )?;
    tracing::info!(token_name = %name, scope = scope.as_str(), actor = %op.actor, "Issued a token through the admin API.");
    Ok(json_ok(json!({"name": name, "scope": scope.as_str(), "token": token.expose()})))
}

/// `DELETE /admin/tokens/{name}`: revokes at once; `also_in_environment` names the environment
/// tokens (`env:VAR#n`) with the same value, which stay accepted. An environment token's own
/// name is refused (409): only its environment can take it away.
pub async fn token_revoke(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    use crate::admin_tokens::Revoke;
    let name = path.into_inner();
    let op = operator(&req)?;
    match crate::admin_tokens::revoke(&state.store, &state.config.env_tokens, &name)? {
        Revoke::Revoked { also_in_environment } => {
            admin::record_action(&state.store, &op, &admin::token_subject(&name), "token_revoke", json!({"token": name}))?;
            tracing::info!(token_name = %name, actor = %op.actor, still_in_environment = also_in_environment.len(), "Revoked a token through the admin API.");
            Ok(json_ok(json!({"revoked": name, "also_in_environment": also_in_environment})))
        }
        Revoke::NotFound => Err(ScimError::not_found(format!("No stored token named '{name}'.")).into()),
        Revoke::FromEnvironment { variable } => Err(ScimError::new(
            409,
            None,
            format!("'{name}' comes from the environment variable {variable} of the server, which cannot be revoked here: remove it from {variable} and restart the server."),
        )
        .into()),
    }
}
