//! The HTTP side of the emulator: a tiny HTTP/1.1 server on plain Tokio, one request per
//! connection (`Connection: close`), so a scripted "drop" really closes the socket unanswered.
//! Each request is recorded, then answered by the down window, a scripted fault, the auth
//! check, or the matched route, in that order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use scimbridge::atlassian::Product;

use super::{
    context_path, decode, match_template, public_route, routes, Fault, Received, Req, Resp, State, BITBUCKET_PASSWORD,
    BITBUCKET_USER, CROWD_APP, CROWD_PASSWORD, TOKEN,
};

/// What to do with one request.
enum Outcome {
    Answer(Resp),
    Drop,
    /// Say nothing until the hang ends (or the client gives up), then close.
    Hang(tokio::sync::watch::Receiver<bool>),
}

pub(super) async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let Some(req) = read_request(&mut socket).await else {
        return;
    };
    let (outcome, delay) = decide(&state, req);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match outcome {
        Outcome::Drop => drop(socket),
        Outcome::Hang(mut hung) => {
            let mut byte = [0u8; 1];
            tokio::select! {
                _ = hung.wait_for(|h| !*h) => {}
                // The client closed (its timeout): nothing more to hold.
                _ = socket.read(&mut byte) => {}
            }
            drop(socket);
        }
        Outcome::Answer(resp) => {
            let mut head = format!(
                "HTTP/1.1 {} {}\r\ncontent-length: {}\r\nconnection: close\r\n",
                resp.status,
                reason(resp.status),
                resp.body.len()
            );
            for (n, v) in &resp.headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(resp.body.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn read_request(socket: &mut TcpStream) -> Option<Req> {
    const MAX: usize = 1 << 20;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: BTreeMap<String, String> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string())).collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len.min(MAX) {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k, true), decode(v, true))
        })
        .collect();
    Some(Req { method, path, query, headers, body })
}

/// Records the request and picks the answer: down window, scripted fault, auth, route.
fn decide(state: &Arc<Mutex<State>>, req: Req) -> (Outcome, Duration) {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let product = s.product;
    let relative = req.path.strip_prefix(context_path(product)).unwrap_or(&req.path).to_string();
    let raw_query = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let logged = if raw_query.is_empty() { relative.clone() } else { format!("{relative}?{raw_query}") };
    let mut delay = s.delay;
    let outcome = if *s.hung.borrow() {
        Outcome::Hang(s.hung.subscribe())
    } else if s.down_until.is_some_and(|t| Instant::now() < t) {
        Outcome::Answer(Resp::json(503, json!({"message": "Service Unavailable"})))
    } else {
        match s.faults.pop_front() {
            Some(Fault::Drop) => Outcome::Drop,
            Some(Fault::Status { status, retry_after }) => {
                let mut r = Resp::json(status, json!({"message": "injected fault"}));
                if let Some(v) = retry_after {
                    r.headers.push(("retry-after".into(), v));
                }
                if status == 429 {
                    r.headers.push(("x-ratelimit-remaining".into(), "0".into()));
                    r.headers.push(("x-ratelimit-interval-seconds".into(), "1".into()));
                }
                Outcome::Answer(r)
            }
            Some(Fault::Delay(d)) => {
                delay += d;
                Outcome::Answer(route(&mut s, &req, &relative))
            }
            None => Outcome::Answer(route(&mut s, &req, &relative)),
        }
    };
    let status = match &outcome {
        Outcome::Answer(r) => Some(r.status),
        Outcome::Drop | Outcome::Hang(_) => None,
    };
    s.received.push(Received { method: req.method.clone(), path: logged, status });
    (outcome, delay)
}

fn authorized(product: Product, req: &Req) -> bool {
    let Some(header) = req.headers.get("authorization") else {
        return false;
    };
    match product {
        Product::Crowd => *header == format!("Basic {}", base64(&format!("{CROWD_APP}:{CROWD_PASSWORD}"))),
        // Basic for the admin account; a token is accepted only where Bitbucket accepts tokens
        // (`bearer_on_admin` refuses it first on admin paths).
        Product::Bitbucket => {
            *header == format!("Basic {}", base64(&format!("{BITBUCKET_USER}:{BITBUCKET_PASSWORD}")))
                || *header == format!("Bearer {TOKEN}")
        }
        _ => *header == format!("Bearer {TOKEN}"),
    }
}

/// Bitbucket refuses personal/HTTP access tokens on admin and user-management endpoints: KB
/// "How-to use OAuth2 tokens for administrative endpoints of Bitbucket Data Center", BSERV-10482
/// ("doesn't support HTTP token authentication for administrative endpoints, user management, or
/// any other REST endpoints that change the application settings"). The exact status is not
/// documented; 401 (what Bitbucket answers for any credential it will not use) is modelled, on
/// every `/admin/` path, reads included, as the stricter choice.
fn bearer_on_admin(req: &Req, relative: &str) -> bool {
    relative.contains("/admin/") && req.headers.get("authorization").is_some_and(|h| h.starts_with("Bearer "))
}

fn bitbucket_token_refused() -> Resp {
    Resp::json(
        401,
        json!({"errors": [{"context": null, "message": "HTTP access tokens are not supported for administrative or user-management endpoints; authenticate with Basic (BSERV-10482).", "exceptionName": "com.atlassian.bitbucket.AuthorisationException"}]}),
    )
}

/// atlassian-rest's `XsrfResourceFilter` (atlassian-calls-review.md §1.1, X1): a mutating request
/// with no media type, or a form-like one, fails with `403 XSRF check failed` unless it carries
/// `X-Atlassian-Token: no-check` (observed on Bitbucket, X2). The filter enforces it for POST and
/// only logs it for PUT/DELETE; modelled strictly here, for every mutating method and whatever the
/// media type, on every product: the stricter plausible answer, so a client that forgets the
/// header on any write fails in tests.
fn xsrf_refusal(req: &Req) -> Option<Resp> {
    let mutating = matches!(req.method.as_str(), "POST" | "PUT" | "DELETE" | "PATCH");
    let opted_out = req.headers.get("x-atlassian-token").is_some_and(|v| v.eq_ignore_ascii_case("no-check"));
    (mutating && !opted_out).then(|| Resp {
        status: 403,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: "XSRF check failed".into(),
    })
}

fn unauthorized(product: Product) -> Resp {
    let mut r = match product {
        Product::Jira => Resp::json(
            401,
            json!({"errorMessages": ["You are not authenticated. Authentication required to perform this operation."], "errors": {}}),
        ),
        Product::Confluence => Resp::json(
            401,
            json!({"statusCode": 401, "message": "This request requires authentication", "reason": "Unauthorized"}),
        ),
        Product::Crowd => Resp::json(
            401,
            json!({"reason": "APPLICATION_ACCESS_DENIED", "message": "Application failed to authenticate"}),
        ),
        Product::Bitbucket => Resp::json(
            401,
            json!({"errors": [{"context": null, "message": "Authentication failed. Please check your credentials and try again.", "exceptionName": "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]}),
        ),
    };
    r.headers.push(("www-authenticate".into(), "Basic realm=\"emulator\"".into()));
    r
}

fn route(s: &mut State, req: &Req, relative: &str) -> Resp {
    let product = s.product;
    let Some((route, params)) = routes(product)
        .iter()
        .filter(|r| r.method == req.method)
        .find_map(|r| match_template(r.template, relative).map(|p| (r, p)))
    else {
        s.violations.push(format!("no route for {} {relative}", req.method));
        return Resp::json(404, json!({"message": "null for uri"}));
    };
    if public_route(route.template) {
        // Documented as needing no authentication.
    } else if product == Product::Bitbucket && bearer_on_admin(req, relative) {
        return bitbucket_token_refused();
    } else if !authorized(product, req) {
        return unauthorized(product);
    }
    if let Some(refusal) = xsrf_refusal(req) {
        s.xsrf_refusals += 1;
        s.violations.push(format!("XSRF check failed: {} {relative} without X-Atlassian-Token: no-check", req.method));
        return refusal;
    }
    let resp = (route.handler)(s, req, &params);
    if !route.statuses.contains(&resp.status) {
        s.violations.push(format!(
            "{} {} answered {} which the route does not declare",
            route.method, route.template, resp.status
        ));
    }
    resp
}

/// Standard base64 (for comparing Basic credentials; tests have no base64 crate).
pub(crate) fn base64(input: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = input.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
