//! The reqwest side: one [`Connector`] per configured target, and a [`Session`] that sends the
//! pure [`Request`] values of one action, records every [`Call`], and reads capped bodies.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Url;

use super::activity::ReadPolicy;
use super::classify::{Reply, KEPT_HEADERS};
use super::fallback::{Fallback, Offboarding};
use super::request::Request;
use super::types::{
    support, Action, ActionKind, Auth, Call, Effect, Execution, Failure, Product, Support, TargetError, TargetSpec,
};
use super::version::{self, Version};
use super::{bitbucket, confluence, crowd, jira};

/// Bodies larger than this are cut: answers to actions are small JSON documents.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Listing pages (up to 1000 user beans with avatar URLs) are larger; still capped.
pub(crate) const MAX_PAGE_BYTES: usize = 16 << 20;

/// How long-running target tasks (Jira anonymization, Confluence user deletion) are awaited.
/// When the deadline passes the action is reported retryable, so the worker comes back later
/// instead of holding the user's lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPolicy {
    /// Wait before the first poll (the Jira UI waits 10 s, atlassian-dc.md §2.5).
    pub first_delay: Duration,
    /// Wait between polls (the Jira UI polls every 3 s).
    pub interval: Duration,
    /// Give up waiting (not the task) after this long.
    pub deadline: Duration,
    /// Suggested wait when Jira says another anonymization holds the lock (409).
    pub busy_retry_after: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first_delay: Duration::from_secs(2),
            interval: Duration::from_secs(3),
            deadline: Duration::from_secs(60),
            busy_retry_after: Duration::from_secs(30),
        }
    }
}

/// A client for one configured Atlassian target.
#[derive(Debug, Clone)]
pub struct Connector {
    name: String,
    product: Product,
    /// Base URL without a trailing slash.
    base: String,
    auth: Auth,
    timeout: Duration,
    http: reqwest::Client,
    poll: PollPolicy,
    read: ReadPolicy,
    offboarding: Offboarding,
    /// The target's release, read once (see `version.rs`); shared by clones.
    version: Arc<tokio::sync::OnceCell<Option<Version>>>,
    /// Jira: the username that becomes the owner of what an anonymized user owned.
    anonymize_new_owner: Option<String>,
}

impl Connector {
    /// Validates the spec and builds the HTTP client. Opens no connection.
    ///
    /// # Errors
    /// [`TargetError`] when the URL is not a plain http(s) base URL, the timeout is zero, Crowd
    /// is given a Bearer token, or the TLS client cannot be built.
    pub fn new(spec: TargetSpec) -> Result<Connector, TargetError> {
        let name = spec.name.clone();
        let url = Url::parse(spec.url.trim())
            .map_err(|_| TargetError::InvalidUrl { name: name.clone(), url: spec.url.clone() })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(TargetError::InvalidUrl { name, url: spec.url });
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
            return Err(TargetError::UrlWithExtras { name });
        }
        if spec.product == Product::Crowd && matches!(spec.auth, Auth::Bearer(_)) {
            return Err(TargetError::CrowdNeedsBasic { name });
        }
        if spec.product == Product::Bitbucket && matches!(spec.auth, Auth::Bearer(_)) {
            return Err(TargetError::BitbucketNeedsBasic { name });
        }
        if spec.timeout.is_zero() {
            return Err(TargetError::ZeroTimeout { name });
        }
        let http = reqwest::Client::builder()
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout)
            .user_agent(concat!("scimbridge/", env!("CARGO_PKG_VERSION")))
            // A redirect would re-send credentials somewhere we were not configured to go.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| TargetError::Client { name: name.clone(), source })?;
        Ok(Connector {
            name,
            product: spec.product,
            base: url.as_str().trim_end_matches('/').to_string(),
            auth: spec.auth,
            timeout: spec.timeout,
            http,
            poll: PollPolicy::default(),
            read: ReadPolicy::default(),
            offboarding: Offboarding::default(),
            version: Arc::new(tokio::sync::OnceCell::new()),
            anonymize_new_owner: None,
        })
    }

    /// Jira: the user (by username) who becomes the new owner of the projects, components and
    /// filter subscriptions of an anonymized user (`anonymize_new_owner`). Without it Jira
    /// anonymization is refused rather than handing them to the bridge's own account.
    pub fn with_anonymize_new_owner(mut self, username: Option<String>) -> Connector {
        self.anonymize_new_owner = username.map(|u| u.trim().to_string()).filter(|u| !u.is_empty());
        self
    }

    pub(crate) fn anonymize_new_owner(&self) -> Option<&str> {
        self.anonymize_new_owner.as_deref()
    }

    /// The target's release, read on first use and then remembered (see `version.rs`);
    /// `Ok(None)` when the product does not tell (Crowd).
    ///
    /// # Errors
    /// As the read: retryable when the target did not answer (nothing is remembered then).
    pub async fn server_version(&self) -> Result<Option<Version>, Failure> {
        Session::new(self).version().await
    }

    /// Reads the release with `session` (so its calls are recorded with the action that needed
    /// it) unless it is known already.
    async fn version_with(&self, session: &mut Session<'_>) -> Result<Option<Version>, Failure> {
        self.version
            .get_or_try_init(|| async {
                let found = version::read(session, self.product).await?;
                match found {
                    Some(v) => tracing::info!(target_name = %self.name, product = %self.product, version = %v, "Read the target's version."),
                    None => tracing::info!(target_name = %self.name, product = %self.product, "The target does not tell its version."),
                }
                Ok(found)
            })
            .await
            .copied()
    }

    /// Replaces the long-task polling policy (tests use short waits).
    pub fn with_poll_policy(mut self, poll: PollPolicy) -> Connector {
        self.poll = poll;
        self
    }

    /// Replaces the paging and waiting policy of the read side (tests use small pages).
    pub fn with_read_policy(mut self, read: ReadPolicy) -> Connector {
        self.read = read;
        self
    }

    /// Sets the target's licence groups, Jira lead successor and the protected groups, used when
    /// the product refuses to deactivate (see `fallback.rs`).
    pub fn with_offboarding(mut self, offboarding: Offboarding) -> Connector {
        self.offboarding = offboarding;
        self
    }

    pub(crate) fn read_policy(&self) -> &ReadPolicy {
        &self.read
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn product(&self) -> Product {
        self.product
    }

    /// Whether `product` can carry out `action_kind`, or what to do instead. Pure.
    pub fn supports(product: Product, action_kind: ActionKind) -> Support {
        support(product, action_kind)
    }

    /// Carries out one action, idempotently, and reports every call made.
    pub async fn execute(&self, action: &Action) -> Execution {
        self.execute_resuming(action, None).await
    }

    /// As [`Connector::execute`], resuming from the [`Execution::resume`] an earlier attempt of
    /// the same action left (a Jira anonymization task still running): the task is followed
    /// instead of being scheduled again.
    pub async fn execute_resuming(&self, action: &Action, resume: Option<&str>) -> Execution {
        let mut session = Session::new(self);
        session.resume_in = resume.map(str::to_string);
        let result = match Connector::supports(self.product, action.kind()) {
            Support::Supported => match self.product {
                Product::Jira => jira::execute(&mut session, action).await,
                Product::Confluence => confluence::execute(&mut session, action).await,
                Product::Crowd => crowd::execute(&mut session, action).await,
                Product::Bitbucket => bitbucket::execute(&mut session, action).await,
            },
            Support::Unsupported { reason } => Err(Failure::permanent(reason)),
            Support::Substitute { kind, reason } => Err(Failure::permanent(format!("{reason}; send {kind:?} instead"))),
        };
        match &result {
            Ok(effect) => tracing::info!(
                target_name = %self.name,
                product = %self.product,
                action = ?action.kind(),
                effect = ?effect,
                calls = session.calls.len(),
                "Atlassian action finished."
            ),
            Err(failure) => tracing::warn!(
                target_name = %self.name,
                product = %self.product,
                action = ?action.kind(),
                error = %failure,
                calls = session.calls.len(),
                "Atlassian action failed."
            ),
        }
        for note in &session.notes {
            tracing::warn!(target_name = %self.name, product = %self.product, action = ?action.kind(), note = %note, "Atlassian action note.");
        }
        Execution {
            calls: session.calls,
            result,
            fallback: session.fallback,
            notes: session.notes,
            resume: session.resume_out,
        }
    }

    /// The delivery circuit's probe while a target is down (`delivery/health.rs`): the product's
    /// one cheap read of [`Connector::health`], without the version read, with its call recorded
    /// so the caller can tell "no answer" from an answer.
    pub async fn probe(&self) -> (Vec<Call>, Result<(), Failure>) {
        let mut session = Session::new(self);
        let outcome = match self.product {
            Product::Jira => jira::health(&mut session).await,
            Product::Confluence => confluence::health(&mut session).await,
            Product::Crowd => crowd::health(&mut session).await,
            Product::Bitbucket => bitbucket::health(&mut session).await,
        };
        (session.calls, outcome)
    }

    /// One read-only call proving the URL, credentials and permissions work.
    ///
    /// # Errors
    /// A human-readable reason when the target is unreachable or refuses the credentials.
    pub async fn health(&self) -> Result<(), String> {
        let mut session = Session::new(self);
        let outcome = match self.product {
            Product::Jira => jira::health(&mut session).await,
            Product::Confluence => confluence::health(&mut session).await,
            Product::Crowd => crowd::health(&mut session).await,
            Product::Bitbucket => bitbucket::health(&mut session).await,
        };
        outcome.map_err(|f| f.reason().to_string())?;
        // Read (and log) the release at start; a target that does not tell is still healthy.
        if let Err(e) = self.server_version().await {
            tracing::warn!(target_name = %self.name, error = %e, "Could not read the target's version; will try again.");
        }
        Ok(())
    }
}

/// The calls of one action against one target.
pub(crate) struct Session<'a> {
    conn: &'a Connector,
    pub calls: Vec<Call>,
    max_body: usize,
    /// Set by a product module that fell back from a refused deactivation.
    pub fallback: Option<Fallback>,
    /// What the admin should know about an action that still succeeded (see [`Execution::notes`]).
    pub notes: Vec<String>,
    /// The resume token an earlier attempt left, and the one this attempt leaves.
    pub resume_in: Option<String>,
    pub resume_out: Option<String>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(conn: &'a Connector) -> Session<'a> {
        Session::with_cap(conn, MAX_BODY_BYTES)
    }

    /// A session for listings: larger body cap. The caller clears `calls` as it goes, so a
    /// listing of 100,000 accounts does not keep 100,000 call records.
    pub(crate) fn for_reading(conn: &'a Connector) -> Session<'a> {
        Session::with_cap(conn, MAX_PAGE_BYTES)
    }

    fn with_cap(conn: &'a Connector, max_body: usize) -> Session<'a> {
        Session {
            conn,
            calls: Vec::new(),
            max_body,
            fallback: None,
            notes: Vec::new(),
            resume_in: None,
            resume_out: None,
        }
    }

    /// The target's release (read once per connector; the read is recorded in this session).
    pub async fn version(&mut self) -> Result<Option<Version>, Failure> {
        let conn = self.conn;
        conn.version_with(self).await
    }

    pub fn connector(&self) -> &Connector {
        self.conn
    }

    /// Records something the admin should know (also logged with the action's outcome).
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn target_name(&self) -> &str {
        &self.conn.name
    }

    pub fn poll(&self) -> &PollPolicy {
        &self.conn.poll
    }

    pub fn offboarding(&self) -> &Offboarding {
        &self.conn.offboarding
    }

    /// Sends one request and records it. Any HTTP answer is `Ok`, whatever its status.
    ///
    /// # Errors
    /// A retryable [`Failure`] when no answer arrived (connection refused or dropped, timeout).
    pub async fn send(&mut self, req: &Request) -> Result<Reply, Failure> {
        let url = format!("{}{}", self.conn.base, req.target());
        let log_path = req.log_path();
        let mut builder = self.conn.http.request(req.method.clone(), url);
        for (name, value) in req.headers() {
            builder = builder.header(name, value);
        }
        // reqwest marks these authorization headers sensitive.
        builder = match &self.conn.auth {
            _ if req.anonymous => builder,
            Auth::Bearer(token) => builder.bearer_auth(token.expose()),
            Auth::Basic { username, password } => builder.basic_auth(username, Some(password.expose())),
        };
        if let Some(body) = &req.body {
            builder = builder.body(body.to_string());
        }
        let started = Instant::now();
        let outcome = match builder.send().await {
            Ok(resp) => read_reply(resp, self.max_body).await,
            Err(e) => Err(e),
        };
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let status = outcome.as_ref().ok().map(|r| r.status);
        self.calls.push(Call { method: req.method.to_string(), path: log_path.clone(), status, latency_ms });
        match outcome {
            Ok(reply) => {
                tracing::debug!(
                    target_name = %self.conn.name,
                    method = %req.method,
                    path = %log_path,
                    status = reply.status,
                    latency_ms,
                    "Atlassian call answered."
                );
                Ok(reply)
            }
            Err(e) => {
                // without_url: the URL may carry a secret query value (Bitbucket's password).
                let e = e.without_url();
                let reason = if e.is_timeout() {
                    format!(
                        "{} {log_path}: no answer within {}s (timeout)",
                        req.method,
                        self.conn.timeout.as_secs_f32()
                    )
                } else if e.is_connect() {
                    format!("{} {log_path}: connection failed: {e}", req.method)
                } else {
                    format!("{} {log_path}: transport error (connection dropped?): {e}", req.method)
                };
                tracing::warn!(
                    target_name = %self.conn.name,
                    method = %req.method,
                    path = %log_path,
                    latency_ms,
                    error = %reason,
                    "Atlassian call got no answer."
                );
                Err(Failure::retry(reason))
            }
        }
    }

    pub fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

async fn read_reply(mut resp: reqwest::Response, max_body: usize) -> Result<Reply, reqwest::Error> {
    let status = resp.status().as_u16();
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let v = resp.headers().get(*name)?.to_str().ok()?;
            Some((name.to_string(), v.to_string()))
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = max_body.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// Sends `req` and returns the reply when it is a 2xx, else the classified failure.
pub(crate) async fn expect_success(session: &mut Session<'_>, req: &Request) -> Result<Reply, Failure> {
    let reply = session.send(req).await?;
    if reply.is_success() {
        Ok(reply)
    } else {
        Err(super::classify::failure(&reply, session.now()))
    }
}

/// Runs `step` once per group, failing fast; `AlreadyDone` only when every step was, and
/// `NoSuchAccount` when any step found no account.
pub(crate) fn combine(effects: &[Effect]) -> Effect {
    if effects.contains(&Effect::NoSuchAccount) {
        Effect::NoSuchAccount
    } else if effects.contains(&Effect::Applied) {
        Effect::Applied
    } else {
        Effect::AlreadyDone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atlassian::Secret;

    fn spec(product: Product, url: &str, auth: Auth) -> TargetSpec {
        TargetSpec { name: "t".into(), product, url: url.into(), auth, timeout: Duration::from_secs(5) }
    }

    fn bearer() -> Auth {
        Auth::Bearer(Secret::new("tok-123"))
    }

    #[test]
    fn new_accepts_a_base_url_with_context_path_and_trims_the_slash() {
        let c = Connector::new(spec(Product::Jira, "https://h.example/jira/", bearer())).unwrap();
        assert_eq!(c.base, "https://h.example/jira");
    }

    #[test]
    fn new_rejects_urls_that_are_not_plain_http_bases() {
        for url in ["ftp://h/x", "not a url", "https://u:p@h/x", "https://h/x?token=1"] {
            assert!(Connector::new(spec(Product::Jira, url, bearer())).is_err(), "{url}");
        }
    }

    #[test]
    fn crowd_requires_basic_application_credentials() {
        let err = Connector::new(spec(Product::Crowd, "https://h/crowd", bearer())).unwrap_err();
        assert!(matches!(err, TargetError::CrowdNeedsBasic { .. }));
    }

    #[test]
    fn bitbucket_refuses_a_token_since_its_admin_endpoints_do() {
        let err = Connector::new(spec(Product::Bitbucket, "https://h/bitbucket", bearer())).unwrap_err();
        assert!(matches!(err, TargetError::BitbucketNeedsBasic { .. }));
        assert!(err.to_string().contains("BSERV-10482"), "{err}");
        let basic = Auth::Basic { username: "svc".into(), password: Secret::new("pw") };
        assert!(Connector::new(spec(Product::Bitbucket, "https://h/bitbucket", basic)).is_ok());
    }

    #[test]
    fn connector_debug_output_hides_the_token() {
        let c = Connector::new(spec(Product::Jira, "https://h/jira", bearer())).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("tok-123"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn combine_reports_applied_when_any_step_changed_something() {
        assert_eq!(combine(&[Effect::AlreadyDone, Effect::Applied]), Effect::Applied);
        assert_eq!(combine(&[Effect::AlreadyDone]), Effect::AlreadyDone);
        assert_eq!(combine(&[]), Effect::AlreadyDone);
        assert_eq!(combine(&[Effect::NoSuchAccount]), Effect::NoSuchAccount);
    }
}
