//! The brake's held intents on the admin API (issue 12 §1), the equivalents of `scimbridge held …`:
//! `GET /admin/held` (the held intents and the brake's figures), `POST /admin/held/approve` and
//! `POST /admin/held/reject` with `{"all": true}` or `{"ids": [JOB, …]}`. Decisions are audited
//! with the request's operator (the token's name and the forwarded CLI user) and a run id.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::error::ApiResult;
use super::operator::operator;
use super::AppState;
use crate::admin_held::{self, Selection};
use crate::scim::ScimError;

fn json_ok(v: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(v.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    #[serde(default)]
    all: bool,
    #[serde(default)]
    ids: Vec<u64>,
}

fn selection(body: &[u8]) -> ApiResult<Selection> {
    let b: DecideBody = serde_json::from_slice(body).map_err(|e| {
        ScimError::invalid_value(format!("The body must be {{\"all\": true}} or {{\"ids\": [JOB, …]}}: {e}."))
    })?;
    match (b.all, b.ids.is_empty()) {
        (true, true) => Ok(Selection::All),
        (false, false) => Ok(Selection::Ids(b.ids)),
        _ => Err(ScimError::invalid_value("Give exactly one of \"all\": true and \"ids\": [JOB, …].").into()),
    }
}

pub async fn list(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    Ok(json_ok(admin_held::list(&state.store)?))
}

pub async fn approve(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let op = operator(&req)?;
    let which = selection(&body)?;
    let store = state.store.clone();
    let out = web::block(move || admin_held::decide(&store, &which, true, &op))
        .await
        .map_err(|e| ScimError::new(500, None, format!("the approval task failed: {e}")))??;
    Ok(json_ok(out))
}

pub async fn reject(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let op = operator(&req)?;
    let which = selection(&body)?;
    let store = state.store.clone();
    let out = web::block(move || admin_held::decide(&store, &which, false, &op))
        .await
        .map_err(|e| ScimError::new(500, None, format!("the rejection task failed: {e}")))??;
    Ok(json_ok(out))
}
