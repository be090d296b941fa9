//! Request bodies: media type check (415), size cap before reading (413), JSON parse (400).

use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::Value;

use super::error::ApiResult;
use crate::scim::ScimError;

/// Nesting deeper than this is refused before serde sees it: no SCIM body needs more than a few
/// levels, and deep nesting is a cheap way to burn stack.
pub const MAX_JSON_DEPTH: usize = 32;

fn media_type_ok(req: &HttpRequest) -> bool {
    match req.headers().get(actix_web::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        // Some clients send no Content-Type on small bodies; the JSON parse still guards us.
        None => true,
        Some(ct) => {
            let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            essence == "application/json" || essence == "application/scim+json"
        }
    }
}

/// Reads the whole body, at most `limit` bytes.
///
/// # Errors
/// 415 for a non-JSON media type, 413 past the limit, 400 for a broken stream.
pub async fn read(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> ApiResult<web::Bytes> {
    if !media_type_ok(req) {
        return Err(ScimError::new(415, None, "Requests must be application/scim+json or application/json.").into());
    }
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit).into());
    }
    // A client that trickles its body (slowloris) is cut off after the request timeout.
    let timeout = req
        .app_data::<web::Data<super::AppState>>()
        .map_or(std::time::Duration::from_secs(30), |s| s.config.limits.request_timeout);
    let collect = async {
        let mut buf = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| ScimError::invalid_syntax("The request body could not be read."))?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(ScimError::new(408, None, "The request body did not arrive in time.").into()),
    }
}

fn too_large(limit: usize) -> ScimError {
    ScimError::too_large(format!("The request body is larger than the limit of {limit} bytes."))
}

/// Parses a JSON body.
///
/// # Errors
/// 400 `invalidSyntax` for invalid UTF-8, invalid JSON or nesting deeper than `MAX_JSON_DEPTH`.
pub fn json(bytes: &[u8]) -> ApiResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax("The request body is empty; a JSON object was expected.").into());
    }
    if nesting_depth(bytes) > MAX_JSON_DEPTH {
        return Err(
            ScimError::invalid_syntax(format!("The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")).into()
        );
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("The body is not valid JSON: {e}.")).into())
}

/// The deepest bracket nesting outside strings, found without building anything.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_outside_strings_only() {
        assert_eq!(nesting_depth(br#"{"a":[{"b":"[[[[["}]}"#), 3);
        assert!(json(&b"[".repeat(100)).is_err());
        assert!(json(b"  ").is_err());
        assert!(json(b"{\"a\":1}").is_ok());
    }
}
