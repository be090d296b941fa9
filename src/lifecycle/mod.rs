//! Lifecycle jobs that are not triggered by the IdP (issue 4): the activity snapshot, inactive-user
//! cleanup, the licence optimizer, bulk deactivation and reactivation, and drift reconciliation.
//! Each reads the Atlassian side through the connectors' read methods, decides with a pure
//! function of (snapshot, provisioned users, config, `now`), and writes intents to the outbox,
//! the one way an action reaches Atlassian (DESIGN.md): so every job inherits retries, audit,
//! dead letters and the global dry run. A job never calls a connector's `execute`.
//!
//! `--dry-run` (the default) only reports; `--apply` enqueues. Every run returns a [`Report`]
//! that is stored in sled and written as CSV + JSON by the CLI. A run is attributed to an
//! operator (`Jobs::with_operator`: actor and run id), which its report and every intent it
//! queues carry, each intent with a `queued` audit record saying why.
//!
//! Layout: `config.rs` (the TOML tables), `schedule.rs` (schedules and the scheduler task),
//! `report.rs`, `context.rs` (what a job knows about a target and the IdP's users),
//! `activity.rs` (refresh), `cleanup.rs`, `bulk.rs`, `license.rs`, `reconcile.rs`, `grace.rs` (warn
//! first, then act after a grace period), `undo.rs` (undo of a run).

mod activity;
mod bulk;
mod cleanup;
mod config;
mod context;
mod grace;
mod guard_check;
mod license;
mod link_preview;
mod reconcile;
mod report;
mod schedule;
mod suggest;
mod undo;

use std::collections::HashMap;
use std::sync::Arc;

use crate::atlassian::{Connector, ReadPolicy, TargetError};
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::store::{Operator, Store, StoreError};

pub use bulk::{usernames_from_csv, BulkKind, BulkRequest};
pub use cleanup::{judge, Criteria, Facts, Verdict};
pub use config::warnings_need_email;
pub use config::{
    validate, CleanupAction, CleanupConfig, CleanupFile, JobConfig, JobFile, LicenseConfig, LicenseFile,
    LifecycleConfig, Sections,
};
pub use grace::{recheck, spawn as spawn_grace, user_warning_notice, GraceHandle, Recheck, KEPT_ACTIVE};
pub use license::{licence_withheld, on_idp_signal, GRANT_HINT};
pub use link_preview::{Orphan, Preview, PreviewRow, TargetPreview};
pub use report::{
    apply_hint, csv_row, write_files, Finding, Mode, Report, TargetSummary, FINDING_COLUMNS, KINDS, RUN_COLUMNS,
};
pub use schedule::{spawn as spawn_scheduler, Schedule, SchedulerHandle};

/// Why a job could not run at all (a target that fails mid-run is recorded in its report
/// instead, and the job carries on with the next target).
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Target(#[from] TargetError),
    /// The name asked for, quoted, and any close matches.
    #[error("no [[target]] is named {0}")]
    UnknownTarget(String),
    #[error("{0}")]
    Invalid(String),
    #[error("reading {target} failed: {reason}")]
    Read { target: String, reason: String },
    /// `undo` of a run id no record names.
    #[error("{0}")]
    UnknownRun(String),
    /// An `--apply` the mass-offboarding brake refuses up front (the message says how many and
    /// the flag that allows it).
    #[error("{0}")]
    OverGuard(String),
}

/// Everything a job needs: the store, the validated configuration, one connector per target, and
/// the operator its runs are attributed to (actor and run id, carried by every intent a run
/// queues and by its report).
#[derive(Clone)]
pub struct Jobs {
    pub store: Store,
    pub config: Arc<Config>,
    connectors: Arc<HashMap<String, Connector>>,
    operator: Operator,
    /// What "now" is for runs started without an explicit time and for the grace period.
    clock: SharedClock,
    /// `--allow-over-guard`: an `--apply` over the brake's limit queues anyway (audited).
    allow_over_guard: bool,
}

impl Jobs {
    /// Builds the connectors (opens no connection).
    ///
    /// # Errors
    /// When a target's spec cannot make a client.
    pub fn new(store: Store, config: Config) -> Result<Jobs, LifecycleError> {
        let mut connectors = HashMap::new();
        for t in &config.targets {
            connectors.insert(t.spec.name.clone(), t.connector()?);
        }
        // Callers name the operator (`with_operator`); a run nobody attributed says so.
        Ok(Jobs {
            store,
            config: Arc::new(config),
            connectors: Arc::new(connectors),
            operator: Operator::new("unattributed"),
            clock: SystemClock::shared(),
            allow_over_guard: false,
        })
    }

    /// The same jobs, attributed to `op` (its run id names the runs made with it).
    pub fn with_operator(self, op: Operator) -> Jobs {
        Jobs { operator: op, ..self }
    }

    /// The same jobs on `clock` (the server's; a test's manual clock).
    pub fn with_clock(self, clock: SharedClock) -> Jobs {
        Jobs { clock, ..self }
    }

    /// The jobs' clock.
    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// Now, by the jobs' clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Who the runs are attributed to.
    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// Replaces the read policy of every connector (tests and benchmarks use small waits).
    pub fn with_read_policy(self, policy: ReadPolicy) -> Jobs {
        let connectors = self.connectors.iter().map(|(k, c)| (k.clone(), c.clone().with_read_policy(policy.clone())));
        Jobs { connectors: Arc::new(connectors.collect()), ..self }
    }

    pub(crate) fn connector(&self, target: &str) -> Result<&Connector, LifecycleError> {
        self.connectors.get(target).ok_or_else(|| self.unknown_target(target))
    }

    /// "no [[target]] is named "jria" (did you mean: jira?)".
    fn unknown_target(&self, name: &str) -> LifecycleError {
        let known = self.config.targets.iter().map(|t| t.spec.name.as_str());
        LifecycleError::UnknownTarget(format!(
            "{name:?}{}",
            suggest::did_you_mean(&suggest::close_matches(name, known))
        ))
    }

    /// The configured targets, or only `only` (case-insensitive).
    pub(crate) fn targets(&self, only: Option<&str>) -> Result<Vec<&crate::config::Target>, LifecycleError> {
        let all = self.config.targets.iter();
        if self.config.targets.is_empty() {
            // A run over no target would report "0 accounts" as if it had looked.
            return Err(LifecycleError::Invalid(
                "no [[target]] is configured, so there is no account to read; add a [[target]] block for \
                 each Jira, Confluence, Crowd or Bitbucket (`scimbridge check-config` checks it)"
                    .into(),
            ));
        }
        match only {
            None => Ok(all.collect()),
            Some(name) => {
                let t = all.filter(|t| t.spec.name.eq_ignore_ascii_case(name)).collect::<Vec<_>>();
                if t.is_empty() {
                    return Err(self.unknown_target(name));
                }
                Ok(t)
            }
        }
    }

    /// Stores the finished report and returns it with its id.
    pub(crate) fn finish(&self, report: Report) -> Result<Report, LifecycleError> {
        let mut report = report.reasoned();
        report.finished_at = report::rfc3339(chrono::Utc::now());
        report.operator = Some(self.operator.clone());
        let mut v = serde_json::to_value(&report).map_err(|e| LifecycleError::Invalid(e.to_string()))?;
        report.id = self.store.report_put(&mut v)?;
        tracing::info!(kind = %report.kind, mode = report.mode.as_str(), report = report.id, actor = %self.operator.actor, run_id = %self.operator.run_id, affected = report.findings.len(), enqueued = report.enqueued, "Lifecycle run recorded.");
        Ok(report)
    }
}
