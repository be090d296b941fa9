//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`, served from
//! the committed documents in `schemas/` with `meta.location` made absolute, and the
//! configured limits written into the service provider configuration so it never advertises
//! more than is enforced.

use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::{ApiResult, SCIM_JSON};
use super::resources::base_url;
use super::AppState;
use crate::scim::schema::{documents, LIST_RESPONSE_SCHEMA};
use crate::scim::ScimError;

fn doc(text: &str) -> ApiResult<Value> {
    serde_json::from_str(text).map_err(|_| ScimError::internal("A discovery document is malformed.").into())
}

/// Makes `meta.location` absolute.
fn locate(mut v: Value, base: &str) -> Value {
    if let Some(loc) = v.pointer("/meta/location").and_then(Value::as_str) {
        if loc.starts_with('/') {
            let abs = format!("{base}{loc}");
            v["meta"]["location"] = Value::String(abs);
        }
    }
    v
}

fn ok(v: Value) -> HttpResponse {
    HttpResponse::Ok().content_type(SCIM_JSON).body(v.to_string())
}

fn list(items: Vec<Value>) -> HttpResponse {
    ok(json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": items.len(),
        "startIndex": 1,
        "itemsPerPage": items.len(),
        "Resources": items,
    }))
}

pub fn service_provider_config(state: &AppState, req: &HttpRequest) -> ApiResult<HttpResponse> {
    let mut v = locate(doc(documents::SERVICE_PROVIDER_CONFIG)?, &base_url(state, req));
    let l = &state.config.limits;
    if v.get("bulk").is_some() {
        v["bulk"]["maxOperations"] = json!(l.bulk_max_operations);
        v["bulk"]["maxPayloadSize"] = json!(l.bulk_max_payload_bytes);
    }
    if v.get("filter").is_some() {
        v["filter"]["maxResults"] = json!(l.max_results);
    }
    Ok(ok(v))
}

fn find(all: &[&str], id: Option<&str>, base: &str, what: &str) -> ApiResult<HttpResponse> {
    let docs = all.iter().map(|t| doc(t).map(|v| locate(v, base))).collect::<ApiResult<Vec<_>>>()?;
    match id {
        None => Ok(list(docs)),
        Some(id) => docs
            .into_iter()
            .find(|d| d.get("id").and_then(Value::as_str).is_some_and(|i| i.eq_ignore_ascii_case(id)))
            .map(ok)
            .ok_or_else(|| ScimError::not_found(format!("{what} {id} not found.")).into()),
    }
}

pub fn schemas(state: &AppState, req: &HttpRequest, id: Option<&str>) -> ApiResult<HttpResponse> {
    find(&documents::SCHEMAS, id, &base_url(state, req), "Schema")
}

pub fn resource_types(state: &AppState, req: &HttpRequest, id: Option<&str>) -> ApiResult<HttpResponse> {
    find(&documents::RESOURCE_TYPES, id, &base_url(state, req), "ResourceType")
}
