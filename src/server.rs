//! Assembles a running server from a validated `Config`: opens the store, makes sure an IdP
//! token exists, binds the listener and starts HTTP. `main.rs` and the integration tests both
//! start the server through here.

use std::net::SocketAddr;
use std::sync::Arc;

use std::collections::HashMap;

use crate::auth::{Scope, TokenAuth};
use crate::config::Config;
use crate::delivery::{Deliverer, WorkerHandle};
use crate::http::tls::ReloadableCert;
use crate::http::{self, AppState, Limiters, Listener, TargetHealth};

/// How often each target's health is probed for `/readyz` and the log.
const TARGET_HEALTH_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
use crate::intake::PolicyHook;
use crate::metrics::Metrics;
use crate::scim::schema::Registry;
use crate::secret::Secret;
use crate::store::{ChangeHook, NoHook, Store};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    // The causes are in the message, not `source` fields: `{:#}` would print them twice.
    #[error("cannot open the store in {dir}: {cause}")]
    Store { dir: String, cause: crate::store::StoreError },
    #[error(
        "the store in {dir} is in use by another process (a running `scimbridge serve`, or a CLI command \
         working on it): sled admits one process at a time"
    )]
    StoreInUse { dir: String },
    #[error("cannot listen on {addr}: {cause}")]
    Bind { addr: SocketAddr, cause: std::io::Error },
    #[error("the schema documents are broken: {0}")]
    Schemas(crate::scim::ScimError),
    #[error("TLS: {0}")]
    Tls(crate::http::tls::TlsError),
    #[error("target configuration: {0}")]
    Target(#[from] crate::atlassian::TargetError),
    #[error("JWT validation: {0}")]
    Jwt(#[from] crate::auth::jwt::JwtSetupError),
    #[error("{0}")]
    Credentials(#[from] crate::config::ConfigError),
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub server: actix_web::dev::ServerHandle,
    pub join: tokio::task::JoinHandle<std::io::Result<()>>,
    /// A token created because none existed; shown once to the operator, never stored in clear.
    pub first_token: Option<Secret>,
    pub store: Store,
    /// The handlers' shared state; once no worker holds it, the store (and sled's file lock)
    /// is released.
    state: std::sync::Weak<AppState>,
    worker: WorkerHandle,
    /// The lifecycle scheduler (`[cleanup]`, `[license]`, `[reconcile]`, `[activity]` schedules).
    scheduler: Option<crate::lifecycle::SchedulerHandle>,
    /// The grace-period sweep (warned actions that fall due, `lifecycle/grace.rs`).
    grace: Option<crate::lifecycle::GraceHandle>,
    /// The notification sender (`[notify]`), when a channel is configured.
    notifier: Option<crate::notify::SenderHandle>,
    /// `[retention]` pruning in the background.
    retention: Option<crate::retention::RetentionTask>,
    /// The served certificate, when TLS is on; `reload` it on SIGHUP.
    pub tls: Option<Arc<ReloadableCert>>,
    /// The separate admin listener (`admin_listen`), if configured.
    pub admin: Option<(SocketAddr, actix_web::dev::ServerHandle, tokio::task::JoinHandle<std::io::Result<()>>)>,
}

/// What SIGHUP reloads in a running server (see [`Running::reloader`]).
pub struct Reloader {
    tls: Option<(Arc<ReloadableCert>, String)>,
    state: std::sync::Weak<AppState>,
}

impl Reloader {
    /// Re-reads the TLS certificate and key (when `[tls]` is on) and the stored tokens. Returns
    /// one sentence saying what was reloaded, and whether everything worked; on a failure the
    /// previous certificate stays in use. The configuration file and the environment are read
    /// once at start: the sentence says so, since a reload does not apply them.
    pub fn reload(&self) -> (String, bool) {
        let mut parts = Vec::new();
        let mut ok = true;
        match &self.tls {
            Some((cert, files)) => match cert.reload() {
                Ok(()) => parts.push(format!("TLS certificate and key re-read ({files})")),
                Err(e) => {
                    ok = false;
                    parts.push(format!("TLS certificate NOT reloaded, still serving the previous one ({e})"));
                }
            },
            None => parts.push("no TLS configured".to_string()),
        }
        match self.state.upgrade() {
            Some(state) => parts.push(format!("stored tokens re-read ({})", state.auth.reload_stored())),
            None => parts.push("server stopping; tokens not re-read".to_string()),
        }
        parts.push("configuration file and environment unchanged until a restart".to_string());
        (parts.join("; "), ok)
    }
}

impl Running {
    /// What SIGHUP calls; holds no strong handle, so it does not keep the server alive.
    pub fn reloader(&self) -> Reloader {
        let files = self
            .state
            .upgrade()
            .and_then(|s| s.config.tls.as_ref().map(|(c, k)| format!("{}, {}", c.display(), k.display())))
            .unwrap_or_default();
        Reloader { tls: self.tls.clone().map(|c| (c, files)), state: self.state.clone() }
    }

    /// Stops gracefully: in-flight requests finish, and the store is closed when this returns,
    /// so the same data dir can be opened again at once (a restart in-process).
    pub async fn stop(self) {
        let Running { server, join, store, state, worker, scheduler, grace, notifier, retention, admin, .. } = self;
        server.stop(true).await;
        let _ = join.await;
        if let Some((_, handle, join)) = admin {
            handle.stop(true).await;
            let _ = join.await;
        }
        if let Some(s) = scheduler {
            s.stop().await;
        }
        if let Some(g) = grace {
            g.stop().await;
        }
        if let Some(r) = retention {
            r.stop().await;
        }
        worker.stop().await;
        if let Some(n) = notifier {
            n.stop().await;
        }
        // Delivery outcomes and job writes since the last request flush reach the disk now,
        // not at the background flusher's next tick.
        if let Err(e) = store.flush_blocking() {
            tracing::error!(error = %e, "The final flush failed.");
        }
        let closed = store.close_watch();
        drop(store);
        // actix-server reports a worker stopped before that worker's thread drops its `App`
        // (and with it our state), and the background flush may be holding the store for one
        // last fsync: wait for the last handle rather than race sled's lock.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while (state.strong_count() > 0 || !closed.is_closed()) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
}

/// Opens the store and starts serving.
///
/// # Errors
/// When the store cannot be opened, the address cannot be bound, or schemas are broken.
pub async fn start(config: Config) -> Result<Running, StartError> {
    start_with_clock(config, crate::clock::SystemClock::shared()).await
}

/// [`start`] on `clock`: what the lifecycle jobs and the grace period take as now. Only Rust code
/// that assembles a server chooses it (an in-process test passes a `ManualClock`); nothing a
/// request or the CLI can reach changes it.
///
/// # Errors
/// As [`start`].
pub async fn start_with_clock(config: Config, clock: crate::clock::SharedClock) -> Result<Running, StartError> {
    // Serving delivers to every target: each needs its credential (see `Config::require_credentials`).
    config.require_credentials(None)?;
    let store = Store::open_with_cache(&config.data_dir, config.cache_bytes).map_err(|e| {
        let dir = config.data_dir.display().to_string();
        if e.is_locked() {
            StartError::StoreInUse { dir }
        } else {
            StartError::Store { dir, cause: e }
        }
    })?;
    store.set_guard(config.guard);
    let registry = Registry::load().map_err(StartError::Schemas)?;
    let mut auth = TokenAuth::new(store.clone(), &config.tokens, &config.admin_tokens);
    if !config.jwt.is_empty() {
        let jwt = crate::auth::JwtValidator::new(&config.jwt)?;
        jwt.warm_up();
        auth = auth.with_jwt(jwt);
    }
    // The first token is made only once everything else has started (below): a start that fails
    // later (port taken, TLS, a target) must not store a token that is never shown.
    let needs_first_token = !auth.has_scim_tokens();
    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|e| StartError::Bind { addr: config.listen, cause: e })?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind { addr: config.listen, cause: e })?;
    let metrics = Arc::new(Metrics::default());
    let mut connectors = HashMap::new();
    for t in &config.targets {
        // A long task is followed for `long_task_wait` per attempt, then resumed by the next one.
        let poll = crate::atlassian::PollPolicy { deadline: config.delivery.long_task_wait, ..Default::default() };
        let c = t.connector()?.with_poll_policy(poll).with_offboarding(t.offboarding(&config.policy));
        connectors.insert(t.spec.name.clone(), Arc::new(c));
    }
    // Health checks warn; they never block serving (the outbox holds intents until a target is
    // back). Their last result is shown by /readyz. In dry run nothing may reach a target, not
    // even a read.
    let target_health: TargetHealth = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    // Each target's delivery circuit (issue 11); shown by /readyz and /metrics.
    let delivery_health = crate::delivery::Health::new(
        crate::delivery::HealthConfig::from_delivery(&config.delivery).with_target_down(config.notify.target_down),
        connectors.clone(),
        store.clone(),
    );
    for c in connectors.values().filter(|_| !config.policy.dry_run) {
        let (c, health) = (c.clone(), Arc::downgrade(&target_health));
        let circuit = Arc::downgrade(&delivery_health);
        tokio::spawn(async move {
            let mut was_ok = None;
            loop {
                // While delivery has the target down, its probes are the only calls it gets.
                if circuit.upgrade().is_some_and(|h| h.is_down(c.name())) {
                    if health.strong_count() == 0 {
                        break;
                    }
                    tokio::time::sleep(TARGET_HEALTH_EVERY).await;
                    continue;
                }
                let result = c.health().await;
                match (&result, was_ok) {
                    (Ok(()), Some(true)) | (Err(_), Some(false)) => {}
                    (Ok(()), _) => {
                        tracing::info!(target_name = %c.name(), product = %c.product(), "Target is reachable.")
                    }
                    (Err(e), _) => {
                        tracing::warn!(target_name = %c.name(), error = %e, "Target health check failed; intents will wait in the outbox.")
                    }
                }
                was_ok = Some(result.is_ok());
                // Only a weak handle: the loop ends once the server is gone.
                let Some(health) = health.upgrade() else { break };
                if let Ok(mut h) = health.lock() {
                    h.insert(c.name().to_string(), result.err());
                }
                drop(health);
                tokio::time::sleep(TARGET_HEALTH_EVERY).await;
            }
        });
    }
    let hook: Arc<dyn ChangeHook> = if config.target_policies.is_empty() {
        Arc::new(NoHook)
    } else {
        Arc::new(PolicyHook {
            policy: config.policy.clone(),
            targets: config.target_policies.clone(),
            license: Some(config.lifecycle.license.clone()),
        })
    };
    let worker = Deliverer {
        store: store.clone(),
        connectors,
        cfg: config.delivery.clone(),
        metrics: metrics.clone(),
        groups: crate::delivery::GroupGuard::new(store.clone(), config.policy.groups.clone()),
        link_existing: config.policy.link_existing,
        health: delivery_health.clone(),
    }
    .spawn();
    let notifier = crate::notify::sender::start(&store, &config.notify);
    // A job that fails to start is logged; serving goes on (the jobs also run on demand).
    let (scheduler, grace) = match crate::lifecycle::Jobs::new(store.clone(), config.clone()) {
        Ok(jobs) => {
            let jobs = jobs.with_clock(clock.clone());
            (crate::lifecycle::spawn_scheduler(jobs.clone()), crate::lifecycle::spawn_grace(jobs))
        }
        Err(e) => {
            tracing::error!(error = %e, "The lifecycle scheduler could not start.");
            (None, None)
        }
    };
    let admin_listener = match config.admin_listen {
        Some(a) => Some(std::net::TcpListener::bind(a).map_err(|e| StartError::Bind { addr: a, cause: e })?),
        None => None,
    };
    let retention = crate::retention::RetentionTask::spawn(
        store.clone(),
        config.retention,
        config.reports_dir.clone(),
        metrics.retention.clone(),
    );
    let limiters = Limiters::from_config(&config.limits);
    let state = Arc::new(AppState {
        store: store.clone(),
        registry,
        config,
        auth,
        hook,
        metrics,
        limiters,
        target_health,
        delivery_health,
        clock,
    });
    let weak_state = Arc::downgrade(&state);
    let tls_cert = match &state.config.tls {
        Some((cert, key)) => Some(ReloadableCert::new(cert.clone(), key.clone()).map_err(StartError::Tls)?),
        None => None,
    };
    let tls_config = || tls_cert.as_ref().map(|c| c.server_config()).transpose().map_err(StartError::Tls);
    let admin = match admin_listener {
        Some(l) => {
            let admin_addr = l.local_addr().map_err(|e| StartError::Bind { addr, cause: e })?;
            let server = http::serve(state.clone(), l, Listener::Admin, tls_config()?)
                .map_err(|e| StartError::Bind { addr: admin_addr, cause: e })?;
            let handle = server.handle();
            Some((admin_addr, handle, tokio::spawn(server)))
        }
        None => None,
    };
    let issuer = state.clone();
    let server =
        http::serve(state, listener, Listener::Main, tls_config()?).map_err(|e| StartError::Bind { addr, cause: e })?;
    let first_token = if needs_first_token {
        let dir = issuer.config.data_dir.display().to_string();
        let now = crate::http::now();
        Some(issuer.auth.issue("initial", Scope::Scim, &now).map_err(|e| StartError::Store { dir, cause: e })?)
    } else {
        None
    };
    drop(issuer);
    let handle = server.handle();
    let join = tokio::spawn(server);
    Ok(Running {
        addr,
        server: handle,
        join,
        first_token,
        store,
        state: weak_state,
        worker,
        scheduler,
        grace,
        notifier,
        retention,
        admin,
        tls: tls_cert,
    })
}
