//! A pure description of one HTTP request (method, path, query, headers, body), built by the
//! product modules and sent by `client.rs`. Building never touches the network, so every
//! product's requests are unit-tested as values.

use reqwest::Method;
use serde_json::Value;

pub(crate) const ACCEPT: &str = "accept";
pub(crate) const CONTENT_TYPE: &str = "content-type";
pub(crate) const JSON: &str = "application/json";
/// atlassian-rest's opt-out of its XSRF check. `XsrfResourceFilter` refuses a mutating request
/// whose media type is absent or form-like with `403 XSRF check failed` (enforced for POST, only
/// logged for PUT/DELETE), unless this header says `no-check` (atlassian-calls-review.md §1.1,
/// X1/X2: scala-steward #1863, atlantis #465). Sent on every write of every product.
pub(crate) const XSRF_TOKEN: &str = "x-atlassian-token";
pub(crate) const NO_CHECK: &str = "no-check";
/// Shown instead of a secret query value in [`Request::log_path`].
pub(crate) const REDACTED: &str = "***";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryParam {
    pub name: &'static str,
    pub value: String,
    /// Never logged nor recorded (Bitbucket takes the initial password as a query parameter).
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub method: Method,
    /// Percent-encoded path relative to the target base URL, starting with `/`.
    pub path: String,
    pub query: Vec<QueryParam>,
    pub body: Option<Value>,
    /// Sent without credentials (a resource documented as open to anyone).
    pub anonymous: bool,
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>) -> Request {
        Request { method, path: path.into(), query: Vec::new(), body: None, anonymous: false }
    }

    /// Sends no `Authorization` header: for resources open to anyone whose API would read the
    /// bridge's credentials as something else (Crowd's admin API takes users, not applications).
    pub fn without_credentials(mut self) -> Request {
        self.anonymous = true;
        self
    }

    pub fn get(path: impl Into<String>) -> Request {
        Request::new(Method::GET, path)
    }

    pub fn post(path: impl Into<String>) -> Request {
        Request::new(Method::POST, path)
    }

    pub fn put(path: impl Into<String>) -> Request {
        Request::new(Method::PUT, path)
    }

    pub fn delete(path: impl Into<String>) -> Request {
        Request::new(Method::DELETE, path)
    }

    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.query.push(QueryParam { name, value: value.into(), secret: false });
        self
    }

    pub fn secret_query(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.query.push(QueryParam { name, value: value.into(), secret: true });
        self
    }

    pub fn json(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }

    /// Path and encoded query, to append to the base URL.
    pub fn target(&self) -> String {
        self.render(false)
    }

    /// Path and query as recorded in [`crate::atlassian::Call::path`] and logs: secrets redacted.
    pub fn log_path(&self) -> String {
        self.render(true)
    }

    fn render(&self, redact: bool) -> String {
        let mut out = self.path.clone();
        for (i, p) in self.query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(p.name);
            out.push('=');
            if redact && p.secret {
                out.push_str(REDACTED);
            } else {
                out.push_str(&encode(&p.value));
            }
        }
        out
    }

    /// Headers other than authorization, which `client.rs` adds as a sensitive header.
    /// Crowd answers XML unless asked for JSON, so every request asks for JSON; every write
    /// carries `X-Atlassian-Token: no-check` (see [`XSRF_TOKEN`]).
    pub fn headers(&self) -> Vec<(&'static str, &'static str)> {
        let mut h = vec![(ACCEPT, JSON)];
        if self.body.is_some() {
            h.push((CONTENT_TYPE, JSON));
        }
        if self.is_write() {
            h.push((XSRF_TOKEN, NO_CHECK));
        }
        h
    }

    /// Whether the method changes something (what atlassian-rest calls "mutative").
    pub fn is_write(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a value is safe both as a
/// path segment and as a query value (`/`, `?`, `&`, `+`, `#`, spaces all encoded).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A random initial password for products that require one. Users sign in through SSO, so the
/// value is never stored or shown; it only keeps the account from having a guessable password.
pub(crate) fn random_password() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::thread_rng().gen();
    format!("Sb1!{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encode_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(encode("alice.o-k_~1"), "alice.o-k_~1");
        assert_eq!(encode("a b/c?d&e+f#g"), "a%20b%2Fc%3Fd%26e%2Bf%23g");
        assert_eq!(encode("jörg"), "j%C3%B6rg");
    }

    #[test]
    fn target_encodes_query_values_in_order() {
        let r = Request::get("/rest/api/2/user").query("username", "a&b").query("expand", "groups");
        assert_eq!(r.target(), "/rest/api/2/user?username=a%26b&expand=groups");
    }

    #[test]
    fn log_path_redacts_secret_query_values() {
        let r = Request::post("/x").query("name", "bob").secret_query("password", "hunter2");
        assert_eq!(r.log_path(), "/x?name=bob&password=***");
        assert!(r.target().contains("hunter2"));
    }

    #[test]
    fn headers_ask_for_json_and_declare_a_json_body() {
        assert_eq!(Request::get("/x").headers(), vec![(ACCEPT, JSON)]);
        let with_body = Request::put("/x").json(json!({}));
        assert_eq!(with_body.headers(), vec![(ACCEPT, JSON), (CONTENT_TYPE, JSON), (XSRF_TOKEN, NO_CHECK)]);
    }

    #[test]
    fn every_write_and_no_read_carries_the_xsrf_opt_out() {
        for write in [Request::post("/x"), Request::put("/x"), Request::delete("/x")] {
            assert!(write.headers().contains(&(XSRF_TOKEN, NO_CHECK)), "{:?}", write.method);
        }
        assert!(!Request::get("/x").headers().iter().any(|(n, _)| *n == XSRF_TOKEN));
    }

    #[test]
    fn random_passwords_differ_and_are_long() {
        let (a, b) = (random_password(), random_password());
        assert_ne!(a, b);
        assert!(a.len() >= 40);
    }
}
