//! Dispatch of `/scim/v2/...` requests. Path segments are matched case-insensitively
//! (`/users` works, as Microsoft's test collection sends it); known endpoints answer 405 for
//! methods they do not take, unknown ones 404 with a SCIM error body.

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use super::body;
use super::discovery;
use super::error::{ApiError, ApiResult, SCIM_JSON};
use super::ops::{self, kind_of};
use super::query::{param, parse_pairs, ListParams};
use super::render::{push_json, render, write_text, Links};
use super::AppState;
use crate::auth::Principal;
use crate::scim::projection::Projection;
use crate::scim::schema::LIST_RESPONSE_SCHEMA;
use crate::scim::ScimError;
use crate::store::{Kind, ListQuery, StoredRecord};

/// The SCIM root URL as the client reached it (or as configured). `X-Forwarded-Proto`/`-Host`
/// are believed only from `trusted_proxies`; from anyone else they could redirect `Location`
/// and `$ref` URLs to a host of the sender's choosing.
pub fn base_url(state: &AppState, req: &HttpRequest) -> String {
    if let Some(u) = &state.config.public_url {
        return format!("{u}/scim/v2");
    }
    let trusted = req.peer_addr().is_some_and(|p| state.config.trusted_proxies.iter().any(|c| c.contains(p.ip())));
    if trusted {
        let info = req.connection_info();
        return format!("{}://{}/scim/v2", info.scheme(), info.host());
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .map(str::to_string)
        .unwrap_or_else(|| req.app_config().host().to_string());
    let scheme = if req.app_config().secure() { "https" } else { "http" };
    format!("{scheme}://{host}/scim/v2")
}

fn principal(req: &HttpRequest) -> ApiResult<Principal> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ScimError::new(401, None, "A bearer token is required.").into())
}

fn method_not_allowed(what: &str) -> ApiError {
    ScimError::new(405, None, format!("{what} does not support this method.")).into()
}

pub async fn not_found(req: HttpRequest) -> ApiResult<HttpResponse> {
    Err(ScimError::not_found(format!("No endpoint at {}.", req.path())).into())
}

/// `/scim/v2` itself.
pub async fn root(req: HttpRequest) -> ApiResult<HttpResponse> {
    not_found(req).await
}

pub async fn collection(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    dispatch_collection(req, &path.into_inner(), payload, state).await
}

/// `/Users` and `/Groups` exactly as the IdPs write them: routed without a pattern match (the
/// `{collection}` route also takes them, and any other case).
pub async fn users(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    dispatch_collection(req, "Users", payload, state).await
}

pub async fn groups(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    dispatch_collection(req, "Groups", payload, state).await
}

async fn dispatch_collection(
    req: HttpRequest,
    seg: &str,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let m = req.method().clone();
    if let Some(kind) = kind_of(seg) {
        return match m {
            Method::GET => list(&state, &req, kind, None).await,
            Method::POST => create(&state, &req, kind, payload).await,
            _ => Err(method_not_allowed(kind.endpoint())),
        };
    }
    match seg.to_ascii_lowercase().as_str() {
        "serviceproviderconfig" => match m {
            Method::GET => discovery::service_provider_config(&state, &req),
            _ => Err(method_not_allowed("ServiceProviderConfig")),
        },
        "schemas" => match m {
            Method::GET => discovery::schemas(&state, &req, None),
            _ => Err(method_not_allowed("Schemas")),
        },
        "resourcetypes" => match m {
            Method::GET => discovery::resource_types(&state, &req, None),
            _ => Err(method_not_allowed("ResourceTypes")),
        },
        ".search" => match m {
            Method::POST => search_root(&state, &req, payload).await,
            _ => Err(method_not_allowed("/.search")),
        },
        "bulk" => match m {
            Method::POST => super::bulk::handle(&state, &req, payload).await,
            _ => Err(method_not_allowed("Bulk")),
        },
        "me" => {
            Err(ScimError::new(501, None, "/Me is not supported: this server has no notion of the calling user.")
                .into())
        }
        _ => Err(ScimError::not_found(format!("No endpoint at {}.", req.path())).into()),
    }
}

pub async fn item(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (seg, id) = path.into_inner();
    let m = req.method().clone();
    if let Some(kind) = kind_of(&seg) {
        if id == ".search" {
            return match m {
                Method::POST => {
                    let bytes = body::read(&req, payload, state.config.limits.max_body_bytes).await?;
                    let params = ListParams::from_search(&body::json(&bytes)?, &state.config.limits)?;
                    list(&state, &req, kind, Some(params)).await
                }
                _ => Err(method_not_allowed(".search")),
            };
        }
        return match m {
            Method::GET => get(&state, &req, kind, &id),
            Method::PUT | Method::PATCH => write(&state, &req, kind, &id, payload, m == Method::PATCH).await,
            Method::DELETE => delete(&state, &req, kind, &id).await,
            _ => Err(method_not_allowed(kind.endpoint())),
        };
    }
    match seg.to_ascii_lowercase().as_str() {
        "schemas" => match m {
            Method::GET => discovery::schemas(&state, &req, Some(&id)),
            _ => Err(method_not_allowed("Schemas")),
        },
        "resourcetypes" => match m {
            Method::GET => discovery::resource_types(&state, &req, Some(&id)),
            _ => Err(method_not_allowed("ResourceTypes")),
        },
        "me" => Err(ScimError::new(501, None, "/Me is not supported.").into()),
        _ => Err(ScimError::not_found(format!("No endpoint at {}.", req.path())).into()),
    }
}

/// The projection asked for in the query string (valid on every response, writes included).
fn projection(req: &HttpRequest) -> ApiResult<Projection> {
    let pairs = parse_pairs(req.query_string());
    Ok(Projection::parse(param(&pairs, "attributes"), param(&pairs, "excludedAttributes"))?)
}

fn if_match(req: &HttpRequest) -> Option<String> {
    req.headers().get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn respond(status: StatusCode, etag: String, body: Vec<u8>, location: Option<String>) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.content_type(SCIM_JSON).insert_header((header::ETAG, etag));
    if let Some(l) = location {
        b.insert_header((header::LOCATION, l));
    }
    b.body(body)
}

fn get(state: &AppState, req: &HttpRequest, kind: Kind, id: &str) -> ApiResult<HttpResponse> {
    let stored = ops::get_stored(state, kind, id)?;
    let etag = stored.view()?.meta.etag();
    let inm = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if inm.is_some_and(|v| v.split(',').any(|t| t.trim() == "*" || t.trim() == etag)) {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish());
    }
    let body = resource_body(state, &base_url(state, req), kind, &stored, &projection(req)?)?;
    Ok(respond(StatusCode::OK, etag, body, None))
}

async fn create(state: &AppState, req: &HttpRequest, kind: Kind, payload: web::Payload) -> ApiResult<HttpResponse> {
    let who = principal(req)?;
    let proj = projection(req)?;
    let bytes = body::read(req, payload, state.config.limits.max_body_bytes).await?;
    let value = body::json(&bytes)?;
    let written = ops::create(state, &who, kind, &value)?;
    state.store.flush_write(written.seq).await?;
    let body = resource_body(state, &base_url(state, req), kind, &StoredRecord::from_record(&written.record)?, &proj)?;
    let location = format!("{}/{}/{}", base_url(state, req), kind.endpoint(), written.record.id);
    Ok(respond(StatusCode::CREATED, written.record.meta.etag(), body, Some(location)))
}

async fn write(
    state: &AppState,
    req: &HttpRequest,
    kind: Kind,
    id: &str,
    payload: web::Payload,
    is_patch: bool,
) -> ApiResult<HttpResponse> {
    let who = principal(req)?;
    let proj = projection(req)?;
    let bytes = body::read(req, payload, state.config.limits.max_body_bytes).await?;
    let value = body::json(&bytes)?;
    let im = if_match(req);
    let written = if is_patch {
        ops::patch(state, &who, kind, id, &value, im.as_deref())?
    } else {
        ops::replace(state, &who, kind, id, &value, im.as_deref())?
    };
    state.store.flush_write(written.seq).await?;
    // Groups answer PATCH with 204 (what Entra ID expects) unless attributes were asked for.
    if is_patch && kind == Kind::Group && proj.is_default() {
        return Ok(HttpResponse::NoContent().insert_header((header::ETAG, written.record.meta.etag())).finish());
    }
    let body = resource_body(state, &base_url(state, req), kind, &StoredRecord::from_record(&written.record)?, &proj)?;
    Ok(respond(StatusCode::OK, written.record.meta.etag(), body, None))
}

async fn delete(state: &AppState, req: &HttpRequest, kind: Kind, id: &str) -> ApiResult<HttpResponse> {
    let who = principal(req)?;
    let seq = ops::delete(state, &who, kind, id, if_match(req).as_deref())?;
    state.store.flush_write(seq).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A ListResponse (RFC 7644 §3.4.2); `page` is `None` for `count=0` (no `Resources` at all).
fn list_response(
    state: &AppState,
    base: &str,
    proj: &Projection,
    total: usize,
    start_index: usize,
    page: Option<&[(Kind, StoredRecord)]>,
) -> ApiResult<HttpResponse> {
    let count = page.map_or(0, <[_]>::len);
    let mut body = Vec::with_capacity(256 + 768 * count);
    body.extend_from_slice(b"{\"schemas\":[");
    push_json(&mut body, LIST_RESPONSE_SCHEMA);
    body.extend_from_slice(
        format!("],\"totalResults\":{total},\"startIndex\":{start_index},\"itemsPerPage\":{count}").as_bytes(),
    );
    if let Some(page) = page {
        body.extend_from_slice(b",\"Resources\":[");
        for (i, (kind, rec)) in page.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            write_resource(&mut body, state, base, *kind, rec, proj)?;
        }
        body.push(b']');
    }
    body.push(b'}');
    Ok(HttpResponse::Ok().content_type(SCIM_JSON).body(body))
}

/// One resource as JSON; without a projection, written straight from the stored text.
fn write_resource(
    out: &mut Vec<u8>,
    state: &AppState,
    base: &str,
    kind: Kind,
    rec: &StoredRecord,
    proj: &Projection,
) -> ApiResult<()> {
    let schema = ops::schema_of(state, kind);
    let links = Links { include: proj.includes(schema, kind.links_attr()) };
    if proj.is_default() {
        return Ok(write_text(out, &state.store, schema, kind, &rec.view()?, base, links)?);
    }
    push_json(out, &proj.apply(&render(&state.store, schema, kind, &rec.decode()?, base, links)?, schema));
    Ok(())
}

fn resource_body(
    state: &AppState,
    base: &str,
    kind: Kind,
    rec: &StoredRecord,
    proj: &Projection,
) -> ApiResult<Vec<u8>> {
    let mut out = Vec::with_capacity(1024);
    write_resource(&mut out, state, base, kind, rec, proj)?;
    Ok(out)
}

async fn list(state: &AppState, req: &HttpRequest, kind: Kind, params: Option<ListParams>) -> ApiResult<HttpResponse> {
    let params = match params {
        Some(p) => p,
        None => ListParams::from_query(&parse_pairs(req.query_string()), &state.config.limits)?,
    };
    let schema = ops::schema_of(state, kind);
    if let Some(f) = &params.filter {
        f.validate(schema)?;
    }
    let q = ListQuery {
        kind,
        schema,
        filter: params.filter.as_ref(),
        sort_by: params.sort_by.as_ref(),
        descending: params.descending,
        start_index: params.start_index,
        count: params.count,
    };
    let result = state.store.list(&q)?;
    let page: Vec<(Kind, StoredRecord)> = result.records.into_iter().map(|r| (kind, r)).collect();
    let shown = (params.count > 0).then_some(page.as_slice());
    list_response(state, &base_url(state, req), &params.projection, result.total, params.start_index, shown)
}

/// POST `/.search` at the root: Users, then Groups, one list (RFC 7644 §3.4.3).
async fn search_root(state: &AppState, req: &HttpRequest, payload: web::Payload) -> ApiResult<HttpResponse> {
    let bytes = body::read(req, payload, state.config.limits.max_body_bytes).await?;
    let params = ListParams::from_search(&body::json(&bytes)?, &state.config.limits)?;
    let mut all: Vec<(Kind, StoredRecord)> = Vec::new();
    let mut total = 0;
    for kind in [Kind::User, Kind::Group] {
        let schema = ops::schema_of(state, kind);
        let q = ListQuery {
            kind,
            schema,
            filter: params.filter.as_ref(),
            sort_by: params.sort_by.as_ref(),
            descending: params.descending,
            start_index: 1,
            count: usize::MAX,
        };
        let result = state.store.list(&q)?;
        total += result.total;
        let wanted = (params.start_index - 1).saturating_add(params.count).saturating_sub(all.len());
        all.extend(result.records.into_iter().take(wanted).map(|r| (kind, r)));
    }
    let page: Vec<(Kind, StoredRecord)> = all.into_iter().skip(params.start_index - 1).take(params.count).collect();
    let shown = (params.count > 0).then_some(page.as_slice());
    list_response(state, &base_url(state, req), &params.projection, total, params.start_index, shown)
}
