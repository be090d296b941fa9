//! Account links on the admin API (issue 9), the equivalents of `scimbridge links …`:
//! `GET /admin/links[?target=T]` (links and the review list), `GET /admin/links/preview[?target=T]`
//! (changes nothing), `POST /admin/links` with `{"user", "username", "target"[, "new": true]}`
//! (set; the account must exist on the target unless `new`), and
//! `DELETE /admin/links?user=U[&target=T]` (clear). Changes are audited like every operator
//! action: the token's name (and the forwarded CLI user) as `actor`, with a run id.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::operator::operator;
use super::query::{param, parse_pairs};
use super::AppState;
use crate::admin_links;
use crate::scim::ScimError;

fn json_ok(v: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(v.to_string())
}

fn targets(state: &AppState) -> Vec<String> {
    state.config.targets.iter().map(|t| t.spec.name.clone()).collect()
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let pairs = parse_pairs(req.query_string());
    Ok(json_ok(admin_links::list(&state.store, &targets(&state), param(&pairs, "target"))?))
}

pub async fn preview(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let pairs = parse_pairs(req.query_string());
    let jobs = crate::lifecycle::Jobs::new(state.store.clone(), state.config.clone())
        .map_err(|e| ApiError(ScimError::new(500, None, e.to_string())))?;
    let preview = jobs.links_preview(param(&pairs, "target")).await.map_err(|e| match e {
        crate::lifecycle::LifecycleError::Store(s) => ApiError::from(s),
        other => ApiError(ScimError::invalid_value(other.to_string())),
    })?;
    let body = serde_json::to_string(&preview).map_err(|e| ApiError(ScimError::new(500, None, e.to_string())))?;
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    user: String,
    username: String,
    target: String,
    /// Link a name the target has no account of yet (the held create makes it).
    #[serde(default)]
    new: bool,
}

pub async fn set(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let op = operator(&req)?;
    let b: SetBody = serde_json::from_slice(&body).map_err(|e| {
        ScimError::invalid_value(format!(
            "The body must be {{\"user\": SCIM_USER, \"username\": ATLASSIAN_USERNAME, \"target\": T}}: {e}."
        ))
    })?;
    admin_links::target_name(&targets(&state), &b.target)?;
    if !b.new {
        admin_links::check_account(&state.config, &b.target, &b.username).await?;
    }
    Ok(json_ok(admin_links::set(&state.store, &targets(&state), &b.user, &b.username, &b.target, &op)?))
}

pub async fn clear(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let op = operator(&req)?;
    let pairs = parse_pairs(req.query_string());
    let user = param(&pairs, "user").ok_or_else(|| ScimError::invalid_value("user is required: ?user=SCIM_USER."))?;
    let out = admin_links::clear(&state.store, &targets(&state), user, param(&pairs, "target"), &op)?;
    Ok(json_ok(json!(out)))
}
