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
mod directory;
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

#[allow(unused_imports)] // used by the integration tests, not by every bench
pub use directory::DirMode;

/// The Bearer token (personal access token) Jira, Confluence and Bitbucket accept.
pub const TOKEN: &str = "emulator-pat-0123456789";
/// Crowd's application name and password (Basic).
pub const CROWD_APP: &str = "scimbridge";
pub const CROWD_PASSWORD: &str = "crowd-app-secret";
/// Bitbucket's admin account: Bitbucket takes Basic on its admin endpoints, not tokens
/// (BSERV-10482, see `server.rs`).
pub const BITBUCKET_USER: &str = "svc-scimbridge";
pub const BITBUCKET_PASSWORD: &str = "bitbucket-admin-secret";

/// The variables (and secrets) the blocks of [`Emulator::target_toml`] read.
pub const TARGET_ENV: [(&str, &str); 3] =
    [("ATL_TOKEN", TOKEN), ("CROWD_PASSWORD", CROWD_PASSWORD), ("BB_PASSWORD", BITBUCKET_PASSWORD)];
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
    /// Given to users created without `applicationKeys` (its first group is the default group).
    pub selected_by_default: bool,
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
    /// Hung: requests are read, then never answered (see [`Emulator::hang`]).
    pub hung: tokio::sync::watch::Sender<bool>,
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
    /// Mutating requests refused by the XSRF check (tests assert none).
    pub xsrf_refusals: u64,
    /// The product version served by its server-info resource ("10.3.0").
    pub version: String,
    /// What the credential may do: product administrator, and (Jira) system administrator.
    pub caller_admin: bool,
    pub caller_sysadmin: bool,
    /// Bitbucket global permissions granted to groups and (keyed by `users` id) directly to users.
    pub group_permissions: BTreeMap<String, String>,
    pub user_permissions: BTreeMap<String, String>,
    /// Jira: how long an anonymization task runs (on top of `task_polls`).
    pub task_duration: Duration,
    /// Jira: anonymization tasks finish COMPLETED but with errors in a step.
    pub anonymization_step_errors: bool,
    /// Offset paging without rescanning: (listing, offset) → the `users` key served just before
    /// that offset, so the next page resumes with a range query instead of skipping `offset`
    /// users. Filled as pages are served; cleared when large.
    pub resume: HashMap<(String, usize), String>,
    /// Directories, leads, sysadmins, "can use" groups (`directory.rs`).
    pub estate: directory::Estate,
}

/// A long-running task: Jira anonymization or Confluence user deletion.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    /// `users` key of the subject.
    pub user: String,
    pub polls_left: u32,
    pub done: bool,
    /// Not finished before this instant (a long task).
    pub busy_until: Instant,
    /// Jira: the `newOwnerKey` it was scheduled with.
    pub new_owner: Option<String>,
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

    /// Users holding a licence. Bitbucket: the LICENSED_USER global permission (or higher), granted
    /// to one of the user's groups or directly to the user (8.14 OpenAPI, admin/permissions; review
    /// finding 9), active and not deleted. Elsewhere: active, not deleted.
    pub fn licensed_users(&self) -> usize {
        self.users
            .iter()
            .filter(|(_, u)| u.active && !u.deleted)
            .filter(|(id, u)| {
                self.product != Product::Bitbucket
                    || self.user_permissions.contains_key(*id)
                    || u.groups.iter().any(|g| self.group_permissions.contains_key(g))
            })
            .count()
    }

    pub fn new_task(&mut self, user: String) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let busy_until = Instant::now() + self.task_duration;
        self.tasks
            .insert(id.clone(), Task { user, polls_left: self.task_polls, done: false, busy_until, new_owner: None });
        id
    }

    /// Whether the served version is at least `major.minor`.
    pub fn version_at_least(&self, major: u32, minor: u32) -> bool {
        let mut parts = self.version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (a, b) >= (major, minor)
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

/// The version each emulated product serves unless a test picks another with
/// [`Emulator::set_version`].
pub fn default_version(product: Product) -> &'static str {
    match product {
        Product::Jira => "10.3.0",
        Product::Confluence => "9.2.0",
        Product::Crowd => "5.3.0",
        Product::Bitbucket => "8.19.0",
    }
}

/// Routes documented as needing no authentication: Bitbucket `GET /application-properties` ("No
/// authentication is required to call this resource", 8.14 OpenAPI), Jira `GET /serverInfo`
/// (served to anonymous callers, which is how its login page shows the version) and Crowd `GET
/// /rest/admin/1.0/server-info` ("should always return server information"; whether it also
/// takes an application's credentials is undocumented, so the bridge sends none).
pub fn public_route(template: &str) -> bool {
    template.ends_with("/application-properties")
        || template.ends_with("/serverInfo")
        || template.ends_with("/server-info")
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
            hung: tokio::sync::watch::channel(false).0,
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
            estate: directory::Estate::default(),
            xsrf_refusals: 0,
            version: default_version(product).to_string(),
            caller_admin: true,
            caller_sysadmin: true,
            group_permissions: BTreeMap::new(),
            user_permissions: BTreeMap::new(),
            task_duration: Duration::ZERO,
            anonymization_step_errors: false,
        };
        if product == Product::Jira {
            // The service account behind the token; it must not count as a test user's peer,
            // but Jira needs it as the new owner of anonymized users' objects.
            let id = state.new_user(SERVICE_USER, "SCIM bridge", "svc@example.com");
            state.user_mut(&id).key = SERVICE_KEY.into();
            // Every Jira Software has this role, selected by default with its default group:
            // users created without `applicationKeys` get it and take a seat (review J7/J8,
            // KB "How to create a user on Jira using REST API").
            state.groups.insert("jira-software-users".into());
            state.roles.insert(
                "jira-software".into(),
                Role {
                    name: "Jira Software".into(),
                    groups: ["jira-software-users".to_string()].into(),
                    seats: None,
                    selected_by_default: true,
                },
            );
        }
        if product == Product::Bitbucket {
            // Bitbucket's default group holds LICENSED_USER (8.14 OpenAPI: create user's
            // addToDefaultGroup "would exceed the server's license limit").
            state.groups.insert("stash-users".into());
            state.group_permissions.insert("stash-users".into(), "LICENSED_USER".into());
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

    /// Credentials the emulator accepts: Crowd's application, Bitbucket's admin account (Basic),
    /// a personal access token elsewhere.
    pub fn auth(&self) -> Auth {
        match self.product {
            Product::Crowd => Auth::Basic { username: CROWD_APP.into(), password: Secret::new(CROWD_PASSWORD) },
            Product::Bitbucket => {
                Auth::Basic { username: BITBUCKET_USER.into(), password: Secret::new(BITBUCKET_PASSWORD) }
            }
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

    /// A whole `[[target]]` block named `name`, reading its secret from the variables of
    /// [`TARGET_ENV`]; every product but Crowd gets `license_groups = ["stash-users"]` (Bitbucket
    /// needs one to offboard at all).
    pub fn target_toml(&self, name: &str) -> String {
        let url = self.base_url();
        match self.product {
            Product::Crowd => format!(
                "[[target]]\nname = \"{name}\"\nproduct = \"crowd\"\nurl = \"{url}\"\nusername = \"{CROWD_APP}\"\npassword_env = \"CROWD_PASSWORD\"\n"
            ),
            Product::Bitbucket => format!(
                "[[target]]\nname = \"{name}\"\nproduct = \"bitbucket\"\nurl = \"{url}\"\nusername = \"{BITBUCKET_USER}\"\npassword_env = \"BB_PASSWORD\"\nlicense_groups = [\"stash-users\"]\n"
            ),
            p => format!(
                "[[target]]\nname = \"{name}\"\nproduct = \"{p}\"\nurl = \"{url}\"\ntoken_env = \"ATL_TOKEN\"\nlicense_groups = [\"stash-users\"]\n"
            ),
        }
    }

    /// The credential lines of a `[[target]]` block for this emulator, reading the secret from
    /// the variable `var` (whose value is [`Emulator::secret`]): Basic for Crowd and Bitbucket, a
    /// token elsewhere.
    pub fn credentials_toml(&self, var: &str) -> String {
        match self.product {
            Product::Crowd => format!("username = \"{CROWD_APP}\"\npassword_env = \"{var}\"\n"),
            Product::Bitbucket => format!("username = \"{BITBUCKET_USER}\"\npassword_env = \"{var}\"\n"),
            _ => format!("token_env = \"{var}\"\n"),
        }
    }

    /// The secret [`Emulator::credentials_toml`] expects in its variable.
    pub fn secret(&self) -> &'static str {
        match self.product {
            Product::Crowd => CROWD_PASSWORD,
            Product::Bitbucket => BITBUCKET_PASSWORD,
            _ => TOKEN,
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

    /// Deletes `group` and every membership of it (a change made by hand in the product).
    pub fn delete_group(&self, group: &str) {
        let mut s = self.lock();
        s.groups.remove(group);
        for u in s.users.values_mut() {
            u.groups.remove(group);
        }
    }

    /// Takes `user` out of `group` (a change made by hand in the product).
    ///
    /// # Panics
    /// If the user does not exist.
    pub fn remove_member(&self, user: &str, group: &str) {
        let mut s = self.lock();
        let id = s.find(user, false).expect("remove_member: unknown user");
        s.user_mut(&id).groups.remove(group);
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
        let selected_by_default = s.roles.get(key).is_some_and(|r| r.selected_by_default);
        let role = Role {
            name: key.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            seats,
            selected_by_default,
        };
        s.roles.insert(key.to_string(), role);
    }

    /// Jira: whether `/user/list` exists (false emulates Jira before 10.3: 404).
    pub fn set_jira_user_list(&self, served: bool) {
        self.lock().jira_user_list = served;
    }

    /// The product version to emulate ("8.20.0", "9.12.3", "10.3.0"; Confluence "7.19.0", "8.5.0",
    /// "9.2.0"; Bitbucket "8.19.0"; Crowd "5.3.0"). Version-dependent routes follow it: Jira
    /// `/user/list` from 10.3, `/user/session/{u}` from 9.11, `active` in `PUT /user` from 8.3;
    /// Confluence admin user REST from 8.4, `/rest/api/server-information` from 9.1.
    pub fn set_version(&self, version: &str) {
        let mut s = self.lock();
        s.version = version.to_string();
        if s.product == Product::Jira {
            s.jira_user_list = s.version_at_least(10, 3);
        }
    }

    /// What the bridge's credential may do (both true by default): product administrator, and
    /// Jira system administrator.
    pub fn set_caller_rights(&self, admin: bool, sysadmin: bool) {
        let mut s = self.lock();
        s.caller_admin = admin;
        s.caller_sysadmin = sysadmin;
    }

    /// Bitbucket: grants `permission` (LICENSED_USER, PROJECT_CREATE, ADMIN, SYS_ADMIN) to `user`
    /// directly, not through a group.
    ///
    /// # Panics
    /// If the user does not exist.
    pub fn grant_permission(&self, user: &str, permission: &str) {
        let mut s = self.lock();
        let id = s.find(user, false).expect("grant_permission: unknown user");
        s.user_permissions.insert(id, permission.to_string());
    }

    /// Bitbucket: grants `permission` (e.g. LICENSED_USER) to every member of `group`.
    pub fn grant_group_permission(&self, group: &str, permission: &str) {
        let mut s = self.lock();
        s.groups.insert(group.to_string());
        s.group_permissions.insert(group.to_string(), permission.to_string());
    }

    /// Jira: each anonymization task runs at least this long.
    pub fn set_task_duration(&self, d: Duration) {
        self.lock().task_duration = d;
    }

    /// Jira: anonymization tasks end COMPLETED with an error in one step.
    pub fn set_anonymization_step_errors(&self, on: bool) {
        self.lock().anonymization_step_errors = on;
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

    /// Hung (`true`): every request is read and recorded, then never answered, as a Jira whose
    /// request threads are all stuck (a database lock, a full GC, an exhausted pool) behaves: the
    /// TCP connection is accepted and stays silent until the client gives up. Nothing is applied.
    /// `false` ends it: held connections are closed without an answer, later requests are served.
    pub fn hang(&self, on: bool) {
        self.lock().hung.send_replace(on);
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

    /// Jira: the `newOwnerKey` of every anonymization task scheduled, in order.
    pub fn anonymization_owners(&self) -> Vec<String> {
        let s = self.lock();
        let mut tasks: Vec<(u64, String)> =
            s.tasks.iter().filter_map(|(id, t)| Some((id.parse().unwrap_or(0), t.new_owner.clone()?))).collect();
        tasks.sort();
        tasks.into_iter().map(|(_, o)| o).collect()
    }

    /// Mutating requests refused with `403 XSRF check failed`.
    pub fn xsrf_refusals(&self) -> u64 {
        self.lock().xsrf_refusals
    }

    /// Jira: seats of application role `key` in use (active users in one of its groups).
    pub fn seats_used(&self, key: &str) -> u64 {
        self.lock().role_users(key)
    }

    /// Users holding a licence (Bitbucket: LICENSED_USER by group or direct grant).
    pub fn licensed_count(&self) -> usize {
        self.lock().licensed_users()
    }

    /// Bitbucket: the permission granted directly to `user`, if any.
    pub fn direct_permission(&self, user: &str) -> Option<String> {
        let s = self.lock();
        s.find(user, true).and_then(|id| s.user_permissions.get(&id).cloned())
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
