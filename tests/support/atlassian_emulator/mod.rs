//! A stateful, in-process emulator of Atlassian Data Center: Jira, Confluence, Crowd and
//! Bitbucket, one product per instance, on `127.0.0.1:0` under the product's usual context path
//! (`/jira`, `/confluence`, `/crowd`, `/bitbucket`).
//!
//! It serves the REAL paths, bodies and status codes of `shared/reference/atlassian-dc.md` with
//! their quirks (Jira 400 on a duplicate membership, Crowd 409, Confluence's idempotent PUTs
//! and 202 + long-task delete, Jira's one-at-a-time anonymization lock), requires
//! authentication (401 otherwise), records every request, and scripts faults: the next N
//! answers as 429/503/500, "down for D", slow answers, dropped connections.
//!
//! The HTTP side is a deliberately tiny HTTP/1.1 server on plain Tokio (one request per
//! connection, `Connection: close`), so a "dropped connection" really closes the socket
//! without a byte of answer, which a framework would not let us do.
//!
//! ```ignore
//! let emu = Emulator::start(Product::Jira).await;
//! emu.add_user("alice");
//! let exec = emu.connector().execute(&Action::Deactivate { username: "alice".into() }).await;
//! assert!(!emu.user("alice").unwrap().active);
//! ```
//!
//! Dead-code lints are allowed by whoever includes this module (`tests/support/mod.rs`, the
//! offboarding bench): each test binary uses a different part of it.

mod bitbucket;
mod confluence;
mod crowd;
mod jira;
mod server;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::net::TcpListener;

use scimbridge::atlassian::{Auth, Connector, PollPolicy, Product, Secret, TargetSpec};

/// The Bearer token (personal access token) Jira, Confluence and Bitbucket accept.
pub const TOKEN: &str = "emulator-pat-0123456789";
/// Crowd's application name and password (Basic).
pub const CROWD_APP: &str = "scimbridge";
pub const CROWD_PASSWORD: &str = "crowd-app-secret";
/// The service account the token belongs to (Jira `/myself`).
pub const SERVICE_USER: &str = "svc-scimbridge";
pub const SERVICE_KEY: &str = "JIRAUSER10000";

/// A user as the emulated product holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    /// Current username (changes on Jira anonymization and Bitbucket erasure).
    pub name: String,
    /// Jira's immutable user key, Confluence's userKey.
    pub key: String,
    pub display_name: String,
    pub email: String,
    pub active: bool,
    pub groups: BTreeSet<String>,
    pub deleted: bool,
    pub anonymized: bool,
    /// Open sessions (Jira): set by [`Emulator::set_sessions`], cleared by the session kill.
    pub sessions: u32,
    /// Last login / authentication; `None` = never (served as each product writes it).
    pub last_active: Option<DateTime<Utc>>,
    /// Creation time (served by Crowd as `created-date`).
    pub created: Option<DateTime<Utc>>,
    /// User directory (served by Bitbucket as `directoryName`).
    pub directory: String,
}

/// A Jira application role: the licence-count unit of `/applicationrole` (atlassian-dc.md §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub groups: BTreeSet<String>,
    /// `None` = unlimited.
    pub seats: Option<u64>,
}

/// One scripted answer, consumed by the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` value, if any) instead of serving the route.
    Status { status: u16, retry_after: Option<String> },
    /// Close the socket without answering.
    Drop,
    /// Wait, then serve normally.
    Delay(Duration),
}

impl Fault {
    pub fn status(status: u16) -> Fault {
        Fault::Status { status, retry_after: None }
    }

    pub fn rate_limited(retry_after: &str) -> Fault {
        Fault::Status { status: 429, retry_after: Some(retry_after.to_string()) }
    }
}

/// One request as the emulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    /// Relative to the product base URL (context path stripped), query as sent.
    pub path: String,
    /// `None` when the connection was dropped on purpose.
    pub status: Option<u16>,
}

/// A route the emulator serves: method, path template relative to the base URL (`{name}` for a
/// path parameter), and every status the handler (or the auth check) can answer.
pub struct Route {
    pub method: &'static str,
    pub template: &'static str,
    pub statuses: &'static [u16],
    /// Query parameters the handler reads.
    pub query: &'static [&'static str],
    /// Top-level JSON body fields the handler reads.
    pub body: &'static [&'static str],
    pub(crate) handler: Handler,
}

pub(crate) type Handler = fn(&mut State, &Req, &Params) -> Resp;

/// Path parameters of a matched route, percent-decoded.
pub(crate) type Params = BTreeMap<&'static str, String>;

/// A parsed request.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(status: u16, body: Value) -> Resp {
        Resp { status, headers: vec![("content-type".into(), "application/json".into())], body: body.to_string() }
    }

    pub fn empty(status: u16) -> Resp {
        Resp { status, headers: vec![], body: String::new() }
    }
}

/// Everything the emulated product holds, plus the test controls.
pub(crate) struct State {
    pub product: Product,
    /// Keyed by the username the user was created with (lower-case): stable across renames.
    pub users: BTreeMap<String, UserState>,
    pub groups: BTreeSet<String>,
    pub next_id: u64,
    pub received: Vec<Received>,
    pub faults: VecDeque<Fault>,
    pub down_until: Option<Instant>,
    pub delay: Duration,
    pub violations: Vec<String>,
    /// Polls a long task answers "in progress" before it completes.
    pub task_polls: u32,
    /// Jira: an anonymization started elsewhere holds the lock.
    pub foreign_anonymization: bool,
    pub tasks: BTreeMap<String, Task>,
    /// Licence seats (Confluence 402, Bitbucket 403 on create); `None` = unlimited.
    pub seat_limit: Option<usize>,
    /// Jira refuses to delete these users with this 400 message (assigned issues…).
    pub delete_blockers: BTreeMap<String, String>,
    /// Jira application roles by key.
    pub roles: BTreeMap<String, Role>,
    /// Jira serves `/user/list` (10.3+); false emulates an older Jira (404, null for uri).
    pub jira_user_list: bool,
    /// Offset paging without rescanning: (listing, offset) → the `users` key served just before
    /// that offset, so the next page resumes with a range query instead of skipping `offset`
    /// users. Filled as pages are served; cleared when large.
    pub resume: HashMap<(String, usize), String>,
}

/// A long-running task: Jira anonymization or Confluence user deletion.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    /// `users` key of the subject.
    pub user: String,
    pub polls_left: u32,
    pub done: bool,
}

impl State {
    /// The `users` key of the live (or, with `include_deleted`, deleted) user named `name`.
    pub fn find(&self, name: &str, include_deleted: bool) -> Option<String> {
        // Fast path: the key is the lower-cased creation name, which is the current name unless
        // the user was renamed (anonymized, erased).
        let key = name.to_lowercase();
        if self.users.get(&key).is_some_and(|u| u.name.eq_ignore_ascii_case(name) && (include_deleted || !u.deleted)) {
            return Some(key);
        }
        self.users
            .iter()
            .find(|(_, u)| u.name.eq_ignore_ascii_case(name) && (include_deleted || !u.deleted))
            .map(|(k, _)| k.clone())
    }

    pub fn find_by_key(&self, key: &str) -> Option<String> {
        self.users.iter().find(|(_, u)| u.key == key).map(|(k, _)| k.clone())
    }

    pub fn user_mut(&mut self, id: &str) -> &mut UserState {
        self.users.get_mut(id).expect("user ids come from find()")
    }

    pub fn new_user(&mut self, name: &str, display_name: &str, email: &str) -> String {
        self.next_id += 1;
        let key = match self.product {
            Product::Jira => format!("JIRAUSER{}", 10000 + self.next_id),
            _ => format!("{:032x}", 0x4028_d676_0000_u64 + self.next_id),
        };
        let id = name.to_lowercase();
        self.users.insert(
            id.clone(),
            UserState {
                name: name.to_string(),
                key,
                display_name: display_name.to_string(),
                email: email.to_string(),
                active: true,
                groups: BTreeSet::new(),
                deleted: false,
                anonymized: false,
                sessions: 0,
                last_active: None,
                created: None,
                directory: default_directory(self.product).to_string(),
            },
        );
        id
    }

    /// One page of the `users` keys that pass `keep`, in key order, from offset `start`; and
    /// whether more follow. O(log n + page) when the previous page of the same `listing` was
    /// served, so a full listing costs O(n), not O(n²).
    pub fn page(
        &mut self,
        listing: &str,
        start: usize,
        limit: usize,
        keep: impl Fn(&UserState) -> bool,
    ) -> (Vec<String>, bool) {
        let lower = match self.resume.get(&(listing.to_string(), start)) {
            Some(after) => Bound::Excluded(after.clone()),
            None if start == 0 => Bound::Unbounded,
            None => {
                // Cold start in the middle: skip once (O(start)), then resume from there.
                match self.users.iter().filter(|(_, u)| keep(u)).nth(start - 1) {
                    Some((k, _)) => Bound::Excluded(k.clone()),
                    None => return (Vec::new(), false),
                }
            }
        };
        let mut matching =
            self.users.range::<String, _>((lower, Bound::Unbounded)).filter(|(_, u)| keep(u)).map(|(k, _)| k.clone());
        let ids: Vec<String> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        if self.resume.len() > 10_000 {
            self.resume.clear();
        }
        if let Some(last) = ids.last() {
            self.resume.insert((listing.to_string(), start + ids.len()), last.clone());
        }
        (ids, more)
    }

    /// Users holding a seat of Jira role `key`: active, not deleted, in one of its groups.
    pub fn role_users(&self, key: &str) -> u64 {
        let Some(role) = self.roles.get(key) else {
            return 0;
        };
        let n =
            self.users.values().filter(|u| u.active && !u.deleted && u.groups.iter().any(|g| role.groups.contains(g)));
        n.count() as u64
    }

    pub fn licensed_users(&self) -> usize {
        self.users.values().filter(|u| u.active && !u.deleted).count()
    }

    pub fn new_task(&mut self, user: String) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.tasks.insert(id.clone(), Task { user, polls_left: self.task_polls, done: false });
        id
    }
}

/// Percent-decodes a path segment or query component (`+` is a space in queries only).
pub(crate) fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Matches `path` against `template`; returns the decoded `{params}`.
pub(crate) fn match_template(template: &'static str, path: &str) -> Option<Params> {
    let t: Vec<&'static str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = Params::new();
    for (ts, ps) in t.iter().zip(p) {
        if let Some(name) = ts.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if ps.is_empty() {
                return None;
            }
            params.insert(name, decode(ps, false));
        } else if *ts != ps {
            return None;
        }
    }
    Some(params)
}

fn default_directory(product: Product) -> &'static str {
    match product {
        Product::Jira => "Jira Internal Directory",
        Product::Confluence => "Confluence Internal Directory",
        Product::Crowd => "Crowd Internal Directory",
        Product::Bitbucket => "Bitbucket Internal Directory",
    }
}

/// A page size query value, or the product default; capped.
pub(crate) fn limit_param(req: &Req, name: &str, default: usize, max: usize) -> usize {
    req.q(name).and_then(|v| v.parse::<usize>().ok()).unwrap_or(default).clamp(1, max)
}

/// An offset query value (0 when absent or unreadable).
pub(crate) fn offset_param(req: &Req, name: &str) -> usize {
    req.q(name).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0)
}

fn context_path(product: Product) -> &'static str {
    match product {
        Product::Jira => "/jira",
        Product::Confluence => "/confluence",
        Product::Crowd => "/crowd",
        Product::Bitbucket => "/bitbucket",
    }
}

/// The routes an emulated product serves (the contract test checks these against OpenAPI).
pub fn routes(product: Product) -> &'static [Route] {
    match product {
        Product::Jira => jira::ROUTES,
        Product::Confluence => confluence::ROUTES,
        Product::Crowd => crowd::ROUTES,
        Product::Bitbucket => bitbucket::ROUTES,
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    product: Product,
    base_url: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Emulator {
    /// Binds `127.0.0.1:0` and serves `product` under its context path.
    ///
    /// # Panics
    /// If the port cannot be bound.
    pub async fn start(product: Product) -> Emulator {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let mut state = State {
            product,
            users: BTreeMap::new(),
            groups: BTreeSet::new(),
            next_id: 0,
            received: Vec::new(),
            faults: VecDeque::new(),
            down_until: None,
            delay: Duration::ZERO,
            violations: Vec::new(),
            task_polls: 1,
            foreign_anonymization: false,
            tasks: BTreeMap::new(),
            seat_limit: None,
            delete_blockers: BTreeMap::new(),
            roles: BTreeMap::new(),
            jira_user_list: true,
            resume: HashMap::new(),
        };
        if product == Product::Jira {
            // The service account behind the token; it must not count as a test user's peer,
            // but Jira needs it as the new owner of anonymized users' objects.
            let id = state.new_user(SERVICE_USER, "SCIM bridge", "svc@example.com");
            state.user_mut(&id).key = SERVICE_KEY.into();
        }
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    server::serve(socket, state).await;
                });
            }
        });
        Emulator { product, base_url: format!("http://{addr}{}", context_path(product)), state, server }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not hide the state from the test that inspects it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn product(&self) -> Product {
        self.product
    }

    /// Base URL including the context path, e.g. `http://127.0.0.1:4321/jira`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Credentials the emulator accepts.
    pub fn auth(&self) -> Auth {
        match self.product {
            Product::Crowd => Auth::Basic { username: CROWD_APP.into(), password: Secret::new(CROWD_PASSWORD) },
            _ => Auth::Bearer(Secret::new(TOKEN)),
        }
    }

    pub fn spec(&self) -> TargetSpec {
        TargetSpec {
            name: format!("emulated-{}", self.product),
            product: self.product,
            url: self.base_url.clone(),
            auth: self.auth(),
            timeout: Duration::from_secs(5),
        }
    }

    /// A connector for this emulator with millisecond polling.
    ///
    /// # Panics
    /// If the connector cannot be built (it always can for the emulator's spec).
    pub fn connector(&self) -> Connector {
        Connector::new(self.spec()).expect("emulator spec is valid").with_poll_policy(fast_polling())
    }

    // ---- seeding ----

    /// Adds an active user `name` with `name@example.com`.
    pub fn add_user(&self, name: &str) {
        self.lock().new_user(name, &format!("User {name}"), &format!("{name}@example.com"));
    }

    /// Adds an active user `name` with this email (accounts that predate the bridge).
    pub fn add_user_with_email(&self, name: &str, email: &str) {
        self.lock().new_user(name, &format!("User {name}"), email);
    }

    pub fn add_group(&self, group: &str) {
        self.lock().groups.insert(group.to_string());
    }

    /// Puts `user` in `group`, creating the group if needed.
    ///
    /// # Panics
    /// If the user does not exist.
    pub fn add_member(&self, user: &str, group: &str) {
        let mut s = self.lock();
        s.groups.insert(group.to_string());
        let id = s.find(user, false).expect("add_member: unknown user");
        s.user_mut(&id).groups.insert(group.to_string());
    }

    pub fn set_active(&self, user: &str, active: bool) {
        let mut s = self.lock();
        let id = s.find(user, true).expect("set_active: unknown user");
        s.user_mut(&id).active = active;
    }

    pub fn set_sessions(&self, user: &str, sessions: u32) {
        let mut s = self.lock();
        let id = s.find(user, false).expect("set_sessions: unknown user");
        s.user_mut(&id).sessions = sessions;
    }

    /// Jira: refuse to delete `user` with 400 and this message (e.g. assigned issues).
    pub fn block_delete(&self, user: &str, message: &str) {
        self.lock().delete_blockers.insert(user.to_lowercase(), message.to_string());
    }

    /// Licence seats; creating a user beyond them fails (Confluence 402, Bitbucket 403).
    pub fn set_seat_limit(&self, seats: usize) {
        self.lock().seat_limit = Some(seats);
    }

    /// How many polls a long task (Jira anonymization, Confluence delete) stays in progress.
    pub fn set_task_polls(&self, polls: u32) {
        self.lock().task_polls = polls;
    }

    /// Jira: another anonymization is running (or not), so scheduling answers 409.
    pub fn set_foreign_anonymization(&self, running: bool) {
        self.lock().foreign_anonymization = running;
    }

    /// Last login / authentication of `user`; `None` = never logged in.
    ///
    /// # Panics
    /// If the user does not exist.
    pub fn set_last_active(&self, user: &str, when: Option<DateTime<Utc>>) {
        let mut s = self.lock();
        let id = s.find(user, true).expect("set_last_active: unknown user");
        s.user_mut(&id).last_active = when;
    }

    /// # Panics
    /// If the user does not exist.
    pub fn set_created(&self, user: &str, when: Option<DateTime<Utc>>) {
        let mut s = self.lock();
        let id = s.find(user, true).expect("set_created: unknown user");
        s.user_mut(&id).created = when;
    }

    /// # Panics
    /// If the user does not exist.
    pub fn set_directory(&self, user: &str, directory: &str) {
        let mut s = self.lock();
        let id = s.find(user, true).expect("set_directory: unknown user");
        s.user_mut(&id).directory = directory.to_string();
    }

    /// Seeds many users under one lock: `(name, last_active, active)` each, `name@example.com`.
    pub fn seed_users(&self, users: impl IntoIterator<Item = (String, Option<DateTime<Utc>>, bool)>) {
        let mut s = self.lock();
        for (name, last_active, active) in users {
            let id = s.new_user(&name, &format!("User {name}"), &format!("{name}@example.com"));
            let u = s.user_mut(&id);
            u.last_active = last_active;
            u.active = active;
        }
    }

    /// Seeds many accounts under one lock: `(name, email, last_active, active)` each.
    pub fn seed_accounts(&self, accounts: impl IntoIterator<Item = (String, String, Option<DateTime<Utc>>, bool)>) {
        let mut s = self.lock();
        for (name, email, last_active, active) in accounts {
            let id = s.new_user(&name, &format!("User {name}"), &email);
            let u = s.user_mut(&id);
            u.last_active = last_active;
            u.active = active;
        }
    }

    /// Jira: defines application role `key` granted by `groups`, with `seats` (`None` =
    /// unlimited). The groups are created.
    pub fn set_role(&self, key: &str, groups: &[&str], seats: Option<u64>) {
        let mut s = self.lock();
        for g in groups {
            s.groups.insert(g.to_string());
        }
        let role = Role { name: key.to_string(), groups: groups.iter().map(|g| g.to_string()).collect(), seats };
        s.roles.insert(key.to_string(), role);
    }

    /// Jira: whether `/user/list` exists (false emulates Jira before 10.3: 404).
    pub fn set_jira_user_list(&self, served: bool) {
        self.lock().jira_user_list = served;
    }

    // ---- faults ----

    /// The next answers, in order, are these faults.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// The next `n` answers are `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.push_faults((0..n).map(|_| fault.clone()));
    }

    /// Every request answers 503 for `d` from now.
    pub fn down_for(&self, d: Duration) {
        self.lock().down_until = Some(Instant::now() + d);
    }

    /// Every answer is delayed by `d` (zero to stop).
    pub fn set_delay(&self, d: Duration) {
        self.lock().delay = d;
    }

    // ---- inspection ----

    /// The user created as (or currently named) `name`, deleted or not.
    pub fn user(&self, name: &str) -> Option<UserState> {
        let s = self.lock();
        s.users.get(&name.to_lowercase()).or_else(|| s.find(name, true).and_then(|id| s.users.get(&id))).cloned()
    }

    pub fn group_exists(&self, group: &str) -> bool {
        self.lock().groups.contains(group)
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Requests matching `method` whose path starts with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.lock().received.iter().filter(|r| r.method == method && r.path.starts_with(prefix)).count()
    }

    /// Answers a route gave that its declared status list does not contain, and requests no
    /// route matched. Tests assert this is empty.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }
}

/// Millisecond polling for tests.
pub fn fast_polling() -> PollPolicy {
    PollPolicy {
        first_delay: Duration::from_millis(5),
        interval: Duration::from_millis(10),
        deadline: Duration::from_secs(2),
        busy_retry_after: Duration::from_secs(30),
    }
}

/// Parses a JSON body or answers 400 with the product's error shape via `bad`.
pub(crate) fn body_or(req: &Req, bad: impl Fn(&str) -> Resp) -> Result<Value, Resp> {
    req.json().ok_or_else(|| bad("Unable to parse the request body as JSON"))
}
