//! Pure classification of an answer into success, retry (with the target's own delay hint) or
//! give up. Product modules first recognise their idempotent answers (Jira's 400 "already a
//! member", Crowd's 409, a 404 on delete…) and hand everything else to [`failure`].
//!
//! Rate limiting (atlassian-dc.md §1.2): Jira, Confluence and Bitbucket DC answer 429 with
//! `Retry-After` (seconds) and `X-RateLimit-{Limit,Remaining,Interval-Seconds,FillRate}`.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::types::Failure;

pub(crate) const RETRY_AFTER: &str = "retry-after";
pub(crate) const RATE_LIMIT_REMAINING: &str = "x-ratelimit-remaining";
pub(crate) const RATE_LIMIT_INTERVAL: &str = "x-ratelimit-interval-seconds";
/// Not named by the DC docs (Atlassian Cloud sends it); honoured when present.
pub(crate) const RATE_LIMIT_RESET: &str = "x-ratelimit-reset";
/// Set by Jira/Confluence when repeated failed Basic logins tripped a CAPTCHA (§1.1).
pub(crate) const AUTH_DENIED_REASON: &str = "x-authentication-denied-reason";

/// Longest error excerpt carried into a [`Failure`] reason.
const MAX_REASON: usize = 300;

/// An answer as seen by classification: status, the few headers that matter, body text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: u16,
    /// Lower-case names. Only the headers classification reads are kept (never credentials).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Headers kept from a response; everything else is dropped before classification.
pub(crate) const KEPT_HEADERS: [&str; 5] =
    [RETRY_AFTER, RATE_LIMIT_REMAINING, RATE_LIMIT_INTERVAL, RATE_LIMIT_RESET, AUTH_DENIED_REASON];

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// The delay the target asked for, from `Retry-After` (delta-seconds or HTTP-date), else
/// `X-RateLimit-Reset`, else a drained bucket's `X-RateLimit-Interval-Seconds`.
pub(crate) fn retry_after(reply: &Reply, now: SystemTime) -> Option<Duration> {
    if let Some(v) = reply.header(RETRY_AFTER) {
        if let Some(d) = parse_delay(v, now) {
            return Some(d);
        }
    }
    if let Some(d) = reply.header(RATE_LIMIT_RESET).and_then(|v| parse_delay(v, now)) {
        return Some(d);
    }
    let drained = reply.header(RATE_LIMIT_REMAINING) == Some("0");
    match reply.header(RATE_LIMIT_INTERVAL) {
        Some(v) if drained => v.parse::<u64>().ok().map(Duration::from_secs),
        _ => None,
    }
}

/// Seconds, an HTTP-date (RFC 9110 IMF-fixdate, parsed as RFC 2822) or an RFC 3339 time.
fn parse_delay(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        chrono::DateTime::parse_from_rfc2822(value).or_else(|_| chrono::DateTime::parse_from_rfc3339(value)).ok()?;
    let when = SystemTime::from(when);
    // A date in the past means "now"; round up so we never come back a fraction too early.
    let d = when.duration_since(now).unwrap_or(Duration::ZERO);
    Some(Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0)))
}

/// Classifies an answer no product-specific rule claimed. Never called with a 2xx unless its
/// body was judged a failure by the caller (then pass `Some(reason)` in `body_failure`).
pub(crate) fn failure(reply: &Reply, now: SystemTime) -> Failure {
    let detail = error_summary(&reply.body);
    let status = reply.status;
    match status {
        429 | 503 => Failure::Retryable {
            reason: format!("{status} {}{}", label(status), suffix(&detail)),
            retry_after: retry_after(reply, now),
        },
        408 | 500..=599 => Failure::Retryable {
            reason: format!("{status} {}{}", label(status), suffix(&detail)),
            retry_after: retry_after(reply, now),
        },
        401 => Failure::permanent(format!(
            "401 Unauthorized: the target rejected the credentials; check the token or password{}",
            suffix(&detail)
        )),
        403 => {
            let captcha = reply
                .header(AUTH_DENIED_REASON)
                .map(|r| format!(" (X-Authentication-Denied-Reason: {r}; log in once through the UI or use a token)"))
                .unwrap_or_default();
            Failure::permanent(format!(
                "403 Forbidden: the account lacks permission or Basic auth is disabled{captcha}{}",
                suffix(&detail)
            ))
        }
        _ => Failure::permanent(format!("{status} {}{}", label(status), suffix(&detail))),
    }
}

fn label(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("unexpected status")
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// The human part of an Atlassian error body, whatever the product's shape (§1.3): Jira's
/// `errorMessages`/`errors`, Confluence's and Crowd's `message`, Bitbucket's `errors[].message`.
pub(crate) fn error_summary(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return truncate(body.trim());
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(list) = v.get("errorMessages").and_then(Value::as_array) {
        parts.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
    }
    if let Some(map) = v.get("errors").and_then(Value::as_object) {
        // A value is a message, or (Jira anonymization) a nested ErrorCollection per operation.
        parts.extend(map.iter().map(|(k, m)| match m {
            Value::String(text) => format!("{k}: {text}"),
            nested => format!("{k}: {}", error_summary(&nested.to_string())),
        }));
    }
    if let Some(list) = v.get("errors").and_then(Value::as_array) {
        parts.extend(list.iter().filter_map(|e| e.get("message").and_then(Value::as_str)).map(str::to_string));
    }
    if let Some(m) = v.get("message").and_then(Value::as_str) {
        parts.push(m.to_string());
    }
    if let Some(r) = v.get("reason").and_then(Value::as_str) {
        parts.push(format!("({r})"));
    }
    truncate(&parts.join("; "))
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_REASON {
        return s.to_string();
    }
    let mut end = MAX_REASON;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply {
            status,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: body.to_string(),
        }
    }

    fn at(rfc2822: &str) -> SystemTime {
        SystemTime::from(chrono::DateTime::parse_from_rfc2822(rfc2822).unwrap())
    }

    #[test]
    fn rate_limited_answer_is_retryable_with_retry_after_seconds() {
        let f = failure(&reply(429, &[("Retry-After", "2")], ""), SystemTime::now());
        assert!(matches!(f, Failure::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(2)));
    }

    #[test]
    fn retry_after_http_date_becomes_a_delay_from_now() {
        let now = at("Wed, 21 Oct 2015 07:28:00 GMT");
        let r = reply(503, &[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")], "");
        assert_eq!(retry_after(&r, now), Some(Duration::from_secs(30)));
    }

    #[test]
    fn retry_after_in_the_past_means_now() {
        let now = at("Wed, 21 Oct 2015 07:28:00 GMT");
        let r = reply(503, &[("retry-after", "Wed, 21 Oct 2015 07:00:00 GMT")], "");
        assert_eq!(retry_after(&r, now), Some(Duration::ZERO));
    }

    #[test]
    fn drained_bucket_waits_one_interval() {
        let r = reply(
            429,
            &[("X-RateLimit-Remaining", "0"), ("X-RateLimit-Interval-Seconds", "5"), ("X-RateLimit-FillRate", "1")],
            "",
        );
        assert_eq!(retry_after(&r, SystemTime::now()), Some(Duration::from_secs(5)));
    }

    #[test]
    fn rate_limit_reset_date_is_honoured() {
        let now = at("Wed, 21 Oct 2015 07:28:00 GMT");
        let r = reply(429, &[("X-RateLimit-Reset", "2015-10-21T07:28:10Z")], "");
        assert_eq!(retry_after(&r, now), Some(Duration::from_secs(10)));
    }

    #[test]
    fn garbage_retry_after_is_ignored() {
        let r = reply(429, &[("retry-after", "soon")], "");
        assert_eq!(retry_after(&r, SystemTime::now()), None);
    }

    #[test]
    fn server_errors_and_request_timeout_are_retryable() {
        for status in [500, 502, 503, 504, 408] {
            let f = failure(&reply(status, &[], ""), SystemTime::now());
            assert!(matches!(f, Failure::Retryable { .. }), "{status}");
        }
    }

    #[test]
    fn client_errors_are_permanent() {
        for status in [400, 401, 403, 404, 405, 409, 412] {
            let f = failure(&reply(status, &[], ""), SystemTime::now());
            assert!(matches!(f, Failure::Permanent { .. }), "{status}");
        }
    }

    #[test]
    fn captcha_reason_reaches_the_failure() {
        let r = reply(403, &[(AUTH_DENIED_REASON, "CAPTCHA_CHALLENGE")], "");
        assert!(failure(&r, SystemTime::now()).reason().contains("CAPTCHA_CHALLENGE"));
    }

    #[test]
    fn error_summary_reads_every_product_shape() {
        assert_eq!(error_summary(r#"{"errorMessages":["Nope."],"errors":{"name":"bad"}}"#), "Nope.; name: bad");
        assert_eq!(
            error_summary(r#"{"statusCode":404,"message":"No user","reason":"Not Found"}"#),
            "No user; (Not Found)"
        );
        assert_eq!(error_summary(r#"{"errors":[{"context":null,"message":"No such user"}]}"#), "No such user");
        assert_eq!(error_summary("<html>oops</html>"), "<html>oops</html>");
        assert_eq!(
            error_summary(r#"{"errors":{"USER_DISABLE":{"errorMessages":["Directory is read-only."],"errors":{}}}}"#),
            "USER_DISABLE: Directory is read-only."
        );
    }

    #[test]
    fn long_error_bodies_are_truncated() {
        let long = "x".repeat(1000);
        assert!(error_summary(&long).len() < 400);
    }
}
