//! `/Bulk` (RFC 7644 §3.7): operations run in order through the same code as single requests,
//! `bulkId:` references resolved across operations (an operation whose reference is not yet
//! known waits for a later pass), `failOnErrors` honoured, `maxOperations` and
//! `maxPayloadSize` enforced with 413. One flush makes the whole request durable before the
//! answer.

use std::collections::HashMap;

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::body;
use super::error::{ApiResult, SCIM_JSON};
use super::ops::{self, kind_of};
use super::resources::base_url;
use super::AppState;
use crate::auth::Principal;
use crate::scim::schema::BULK_RESPONSE_SCHEMA;
use crate::scim::{ScimError, ScimResult};

const BULK_ID_PREFIX: &str = "bulkId:";

struct Op {
    index: usize,
    method: String,
    bulk_id: Option<String>,
    path: String,
    data: Option<Value>,
    version: Option<String>,
}

fn parse_ops(body: &Value, max_ops: usize) -> ScimResult<(Vec<Op>, Option<usize>)> {
    let obj = body.as_object().ok_or_else(|| ScimError::invalid_syntax("A BulkRequest must be a JSON object."))?;
    let get = |n: &str| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v);
    let ops = get("Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("A BulkRequest needs an Operations array."))?;
    if ops.len() > max_ops {
        return Err(ScimError::too_large(format!(
            "The bulk request has {} operations; the maximum is {max_ops}.",
            ops.len()
        )));
    }
    let fail_on_errors = match get("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| ScimError::invalid_value("failOnErrors must be a positive integer."))?
                as usize,
        ),
    };
    let mut out = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let o =
            op.as_object().ok_or_else(|| ScimError::invalid_syntax(format!("Operation {index} is not an object.")))?;
        let field = |n: &str| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v);
        let method = field("method")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_syntax(format!("Operation {index} has no method.")))?
            .to_ascii_uppercase();
        let path = field("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_syntax(format!("Operation {index} has no path.")))?
            .to_string();
        let bulk_id = field("bulkId").and_then(Value::as_str).map(str::to_string);
        if method == "POST" && bulk_id.is_none() {
            return Err(ScimError::invalid_syntax(format!("Operation {index} is a POST without a bulkId.")));
        }
        out.push(Op {
            index,
            method,
            bulk_id,
            path,
            data: field("data").cloned(),
            version: field("version").and_then(Value::as_str).map(str::to_string),
        });
    }
    Ok((out, fail_on_errors))
}

/// Replaces `bulkId:x` references in strings; `Err(id)` names the first one not yet known.
fn resolve(v: &Value, ids: &HashMap<String, String>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => match s.strip_prefix(BULK_ID_PREFIX) {
            Some(b) => Value::String(ids.get(b).cloned().ok_or_else(|| b.to_string())?),
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, ids)).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(
            o.iter().map(|(k, x)| Ok((k.clone(), resolve(x, ids)?))).collect::<Result<Map<_, _>, String>>()?,
        ),
        other => other.clone(),
    })
}

fn resolve_path(path: &str, ids: &HashMap<String, String>) -> Result<String, String> {
    path.split('/')
        .map(|seg| match seg.strip_prefix(BULK_ID_PREFIX) {
            Some(b) => ids.get(b).cloned().ok_or_else(|| b.to_string()),
            None => Ok(seg.to_string()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join("/"))
}

fn error_result(op: &Op, e: &ScimError) -> Value {
    let mut r = json!({"method": op.method, "status": e.status.to_string(), "response": e.to_body()});
    if let Some(b) = &op.bulk_id {
        r["bulkId"] = json!(b);
    }
    r
}

/// Runs one operation; returns (status, location, version, the write's sequence) or the error.
fn run(
    state: &AppState,
    who: &Principal,
    op: &Op,
    path: &str,
    data: Option<&Value>,
    base: &str,
) -> ScimResult<(u16, Option<String>, Option<String>, u64)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let kind = parts
        .first()
        .and_then(|s| kind_of(s))
        .ok_or_else(|| ScimError::invalid_path(format!("'{path}' is not /Users or /Groups.")))?;
    let data = || data.ok_or_else(|| ScimError::invalid_syntax(format!("{} {path} needs data.", op.method)));
    let located = |id: &str| Some(format!("{base}/{}/{id}", kind.endpoint()));
    let store_err = |e: crate::store::StoreError| e.to_scim();
    match (op.method.as_str(), parts.get(1)) {
        ("POST", None) => {
            let w = ops::create(state, who, kind, data()?).map_err(store_err)?;
            Ok((201, located(&w.record.id), Some(w.record.meta.etag()), w.seq))
        }
        ("PUT", Some(id)) => {
            let w = ops::replace(state, who, kind, id, data()?, op.version.as_deref()).map_err(store_err)?;
            Ok((200, located(id), Some(w.record.meta.etag()), w.seq))
        }
        ("PATCH", Some(id)) => {
            let w = ops::patch(state, who, kind, id, data()?, op.version.as_deref()).map_err(store_err)?;
            Ok((200, located(id), Some(w.record.meta.etag()), w.seq))
        }
        ("DELETE", Some(id)) => {
            let seq = ops::delete(state, who, kind, id, op.version.as_deref()).map_err(store_err)?;
            Ok((204, located(id), None, seq))
        }
        _ => Err(ScimError::invalid_syntax(format!("{} {path} is not a valid bulk operation.", op.method))),
    }
}

pub async fn handle(state: &AppState, req: &HttpRequest, payload: web::Payload) -> ApiResult<HttpResponse> {
    let who = req
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ScimError::new(401, None, "A bearer token is required."))?;
    let limits = &state.config.limits;
    let bytes = body::read(req, payload, limits.bulk_max_payload_bytes.max(limits.max_body_bytes)).await?;
    if bytes.len() > limits.bulk_max_payload_bytes {
        return Err(ScimError::too_large(format!(
            "The bulk request is larger than maxPayloadSize ({} bytes).",
            limits.bulk_max_payload_bytes
        ))
        .into());
    }
    let (ops, fail_on_errors) = parse_ops(&body::json(&bytes)?, limits.bulk_max_operations)?;
    let base = base_url(state, req);
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut pending: Vec<&Op> = ops.iter().collect();
    let mut errors = 0usize;
    let mut written: Vec<(&Op, u64)> = Vec::new();
    'passes: while !pending.is_empty() {
        let mut waiting = Vec::new();
        let before = pending.len();
        for op in pending {
            if fail_on_errors.is_some_and(|n| errors >= n) {
                break 'passes;
            }
            let resolved = resolve_path(&op.path, &ids)
                .and_then(|p| op.data.as_ref().map(|d| resolve(d, &ids)).transpose().map(|d| (p, d)));
            let (path, data) = match resolved {
                Ok(x) => x,
                Err(_) => {
                    waiting.push(op);
                    continue;
                }
            };
            let result = match run(state, &who, op, &path, data.as_ref(), &base) {
                Ok((status, location, version, seq)) => {
                    written.push((op, seq));
                    if let (Some(b), Some(loc)) = (&op.bulk_id, &location) {
                        if let Some(id) = loc.rsplit('/').next() {
                            ids.insert(b.clone(), id.to_string());
                        }
                    }
                    let mut r = json!({"method": op.method, "status": status.to_string()});
                    if let Some(b) = &op.bulk_id {
                        r["bulkId"] = json!(b);
                    }
                    if let Some(l) = location {
                        r["location"] = json!(l);
                    }
                    if let Some(v) = version {
                        r["version"] = json!(v);
                    }
                    r
                }
                Err(e) => {
                    errors += 1;
                    error_result(op, &e)
                }
            };
            results[op.index] = Some(result);
        }
        if waiting.len() == before {
            // No progress: the remaining references can never resolve (unknown or circular).
            for op in waiting {
                let e = ScimError::new(
                    409,
                    Some(crate::scim::ScimType::InvalidValue),
                    "A bulkId reference could not be resolved.",
                );
                results[op.index] = Some(error_result(op, &e));
            }
            break;
        }
        pending = waiting;
    }
    // One flush for the whole request; an operation whose write did not become durable (the
    // store could not write) is answered with that error, never as done.
    let flushed = state.store.flush().await;
    for (op, seq) in written {
        if let Err(e) = state.store.write_durable(seq, flushed.as_ref().err()) {
            results[op.index] = Some(error_result(op, &e.to_scim()));
        }
    }
    let done: Vec<Value> = results.into_iter().flatten().collect();
    let body = json!({"schemas": [BULK_RESPONSE_SCHEMA], "Operations": done});
    Ok(HttpResponse::Ok().content_type(SCIM_JSON).body(body.to_string()))
}
