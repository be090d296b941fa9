//! Starts the real server in-process on 127.0.0.1:0 with a temporary data dir, and a small HTTP
//! client that speaks to it the way an IdP does.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use scimbridge::config::{self, Config};
use scimbridge::server::Running;

pub const TOKEN: &str = "test-token-0123456789abcdef";
pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";

pub struct TestServer {
    pub base: String,
    pub root: String,
    pub client: reqwest::Client,
    pub token: String,
    pub dir: PathBuf,
    running: Option<Running>,
    _tmp: Option<tempfile::TempDir>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The test environment: loopback on a free port, this data dir, the test tokens.
fn test_env(dir: &Path, extra_env: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("SCIMBRIDGE_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("SCIMBRIDGE_DATA_DIR".into(), dir.display().to_string());
    env.insert("SCIMBRIDGE_TOKEN".into(), TOKEN.into());
    env.insert("SCIMBRIDGE_ADMIN_TOKEN".into(), ADMIN_TOKEN.into());
    for (k, v) in extra_env {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

pub fn test_config(dir: &Path, extra_env: &[(&str, &str)]) -> Config {
    config::load(&config::Sources { file: None, env: &test_env(dir, extra_env) }).expect("test config is valid")
}

impl TestServer {
    pub async fn start() -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_with(test_config(&dir, &[])).await;
        s._tmp = Some(tmp);
        s
    }

    pub async fn start_with(config: Config) -> TestServer {
        Self::start_with_clock(config, scimbridge::clock::SystemClock::shared()).await
    }

    /// A server whose lifecycle jobs and grace periods live by `clock` (a test's `ManualClock`).
    pub async fn start_with_clock(config: Config, clock: scimbridge::clock::SharedClock) -> TestServer {
        let dir = config.data_dir.clone();
        let running = scimbridge::server::start_with_clock(config, clock).await.expect("server starts");
        Self::around(running, dir)
    }

    fn around(running: Running, dir: PathBuf) -> TestServer {
        let root = format!("http://{}", running.addr);
        TestServer {
            base: format!("{root}/scim/v2"),
            root,
            client: reqwest::Client::new(),
            token: TOKEN.to_string(),
            dir,
            running: Some(running),
            _tmp: None,
        }
    }

    /// Stops the server gracefully and starts a new one on the same data dir.
    pub async fn restart(mut self) -> TestServer {
        let tmp = self._tmp.take();
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        let mut s = Self::start_with(test_config(&self.dir, &[])).await;
        s._tmp = tmp;
        s
    }

    /// Stops the server but keeps its data dir; the returned guard removes it when dropped.
    pub async fn stop_keep_dir(mut self) -> Option<tempfile::TempDir> {
        let tmp = self._tmp.take();
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        tmp
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Reply {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) };
        let mut rb = self.client.request(method, url).bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            // A Content-Type among `headers` wins (Okta posts `application/json`).
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
                rb = rb.header("Content-Type", "application/scim+json");
            }
            rb = rb.body(b.to_string());
        }
        Self::read_reply(rb).await
    }

    /// A request with full control: raw body bytes, only the given headers, and the given
    /// `Authorization` header value (`None`: no credentials at all).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
        authorization: Option<&str>,
    ) -> Reply {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) };
        let mut rb = self.client.request(method, url);
        if let Some(a) = authorization {
            rb = rb.header("Authorization", a);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        Self::read_reply(rb).await
    }

    async fn read_reply(rb: reqwest::RequestBuilder) -> Reply {
        let res = rb.send().await.expect("request reaches the server");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, body, text }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body), &[]).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body), &[]).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, path, Some(body), &[]).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// Creates a user with the given userName and returns its id.
    pub async fn create_user(&self, user_name: &str) -> String {
        let r = self
            .post(
                "/Users",
                &serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                    "name": {"givenName": "Test", "familyName": "User"},
                    "emails": [{"value": user_name, "type": "work", "primary": true}],
                    "active": true
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_str().expect("id").to_string()
    }

    /// Creates a user from a whole body and returns the 201 answer's body.
    pub async fn create_user_from(&self, body: Value) -> Value {
        let r = self.post("/Users", &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body
    }

    /// A `PatchOp` body from a list of operations.
    pub fn patch_op(ops: Value) -> Value {
        serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
    }

    /// GET a list and return its `Resources` (empty when absent), asserting 200.
    pub async fn list(&self, path: &str) -> Vec<Value> {
        let r = self.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text);
        r.body["Resources"].as_array().cloned().unwrap_or_default()
    }

    /// The ids a filter on `/Users` or `/Groups` finds, sorted.
    pub async fn ids_matching(&self, collection: &str, filter: &str) -> Vec<String> {
        let path = format!("{collection}?filter={}&count=1000", encode(filter));
        let mut ids: Vec<String> =
            self.list(&path).await.iter().map(|r| r["id"].as_str().expect("id").to_string()).collect();
        ids.sort();
        ids
    }

    /// Creates a group and returns its id.
    pub async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| serde_json::json!({"value": m})).collect();
        let r = self
            .post(
                "/Groups",
                &serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_str().expect("id").to_string()
    }
}

/// Percent-encodes a query parameter value (filters carry spaces, quotes and brackets).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One recorded IdP request, from a JSON file under `tests/replays/`: `method`, `path`, an
/// optional `query` object (decoded; encoded here, in order) and an optional `body`. `{{name}}` placeholders in the path and body are filled from `vars`.
#[derive(Debug, Clone)]
pub struct Replay {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

/// Loads `tests/replays/<name>` and fills its placeholders.
///
/// # Panics
/// When the file is missing or malformed, or a placeholder is left unfilled.
pub fn replay(name: &str, vars: &[(&str, &str)]) -> Replay {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replays").join(name);
    let mut text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    for (k, v) in vars {
        text = text.replace(&format!("{{{{{k}}}}}"), v);
    }
    assert!(!text.contains("{{"), "{name}: unfilled placeholder in {text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut path = v["path"].as_str().expect("path").to_string();
    if let Some(q) = v.get("query").and_then(Value::as_object) {
        let pairs: Vec<String> =
            q.iter().map(|(k, x)| format!("{k}={}", encode(x.as_str().expect("query values are strings")))).collect();
        path = format!("{path}?{}", pairs.join("&"));
    }
    Replay {
        method: Method::from_bytes(v["method"].as_str().expect("method").as_bytes()).expect("a method"),
        path,
        body: v.get("body").cloned(),
    }
}

impl TestServer {
    /// Sends a replayed IdP request as recorded.
    pub async fn play(&self, name: &str, vars: &[(&str, &str)]) -> Reply {
        self.play_with(name, vars, &[]).await
    }

    /// Sends a replayed IdP request with extra headers (a `Content-Type` here replaces ours).
    pub async fn play_with(&self, name: &str, vars: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        let r = replay(name, vars);
        self.send(r.method, &r.path, r.body.as_ref(), headers).await
    }
}

/// Asserts an RFC 7644 §3.12 error body with the given status and scimType.
pub fn assert_scim_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/scim+json"), "{}", r.text);
    assert_eq!(r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{}", r.text);
    assert_eq!(r.body["status"], Value::String(status.to_string()), "{}", r.text);
    assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", r.text);
    if let Some(t) = scim_type {
        assert_eq!(r.body["scimType"], t, "{}", r.text);
    }
}

/// A config with a TOML file body (targets, policy) plus the usual test environment.
pub fn config_with_toml(dir: &Path, toml: &str, extra_env: &[(&str, &str)]) -> Config {
    let file = config::parse_file(toml).expect("test TOML parses");
    config::validate(file, &test_env(dir, extra_env)).expect("test config is valid")
}

impl TestServer {
    /// Starts a server on a fresh temp dir with this TOML configuration.
    pub async fn start_toml(toml: &str, extra_env: &[(&str, &str)]) -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut s = Self::start_with(config_with_toml(tmp.path(), toml, extra_env)).await;
        s._tmp = Some(tmp);
        s
    }

    /// The server's store, for assertions on the audit log and the outbox.
    pub fn store(&self) -> &scimbridge::store::Store {
        &self.running.as_ref().expect("server is running").store
    }
}

/// Waits (bounded) until `check` holds; panics with `what` when it never does.
pub async fn eventually<F: FnMut() -> bool>(what: &str, limit: std::time::Duration, mut check: F) {
    let deadline = std::time::Instant::now() + limit;
    while !check() {
        if std::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
