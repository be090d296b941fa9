//! The lifecycle commands' backend (`activity refresh`, `cleanup`, `license …`, `deactivate`,
//! `reactivate`, `reconcile`, `undo`): with a server running they call its admin API, otherwise they
//! open the store and run the same `lifecycle::Jobs` functions, so both give one answer.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::Utc;
use serde_json::Value;

use crate::cli::{url_encode, Backend};
use crate::config::Config;
use crate::lifecycle::{BulkKind, BulkRequest, Jobs, Mode, Report};

/// One lifecycle operation.
#[derive(Debug, Clone)]
pub enum LifecycleOp {
    Refresh { target: Option<String> },
    Cleanup { mode: Mode, target: Option<String>, orphans: bool },
    LicenseReport,
    LicenseOptimize { mode: Mode },
    LicenseGrant { user: String },
    Bulk { kind: BulkKind, request: BulkRequest },
    Reconcile { mode: Mode },
    Undo { run_id: String, mode: Mode },
}

fn with_target(path: String, target: &Option<String>) -> String {
    match target {
        Some(t) => format!("{path}&target={}", url_encode(t)),
        None => path,
    }
}

impl LifecycleOp {
    /// The one target the operation calls, when it names one (else it may call them all).
    pub fn target(&self) -> Option<&str> {
        match self {
            LifecycleOp::Refresh { target } | LifecycleOp::Cleanup { target, .. } => target.as_deref(),
            LifecycleOp::Bulk { request, .. } => Some(&request.target),
            _ => None,
        }
    }

    /// Method, admin API path and body of the operation.
    fn request(&self) -> (reqwest::Method, String, Option<Value>) {
        use reqwest::Method as M;
        match self {
            LifecycleOp::Refresh { target } => (
                M::POST,
                target
                    .as_ref()
                    .map_or("/activity/refresh".into(), |t| format!("/activity/refresh?target={}", url_encode(t))),
                None,
            ),
            LifecycleOp::Cleanup { mode, target, orphans } => {
                let orphans = if *orphans { "&orphans=true" } else { "" };
                (M::POST, with_target(format!("/cleanup?mode={}{orphans}", mode.as_str()), target), None)
            }
            LifecycleOp::LicenseReport => (M::GET, "/license/report".into(), None),
            LifecycleOp::LicenseOptimize { mode } => {
                (M::POST, format!("/license/optimize?mode={}", mode.as_str()), None)
            }
            LifecycleOp::LicenseGrant { user } => (M::POST, format!("/license/grant/{}", url_encode(user)), None),
            LifecycleOp::Bulk { kind, request } => {
                let path = match kind {
                    BulkKind::Deactivate => "/deactivate",
                    BulkKind::Reactivate => "/reactivate",
                };
                (M::POST, path.into(), serde_json::to_value(request).ok())
            }
            LifecycleOp::Reconcile { mode } => (M::POST, format!("/reconcile?mode={}", mode.as_str()), None),
            LifecycleOp::Undo { run_id, mode } => {
                (M::POST, format!("/undo/{}?mode={}", url_encode(run_id), mode.as_str()), None)
            }
        }
    }
}

impl Backend {
    /// Runs `op` locally or through the running server.
    ///
    /// # Errors
    /// The job's error, or the server's answer when it is not a report.
    pub async fn lifecycle(&self, config: &Config, op: LifecycleOp) -> anyhow::Result<Report> {
        self.lifecycle_over_guard(config, op, false).await
    }

    /// [`Backend::lifecycle`]; `allow_over_guard` lets an `--apply` over the mass-offboarding
    /// brake's limit queue anyway (audited on the run).
    ///
    /// # Errors
    /// As [`Backend::lifecycle`]; the brake's refusal.
    pub async fn lifecycle_over_guard(
        &self,
        config: &Config,
        op: LifecycleOp,
        allow_over_guard: bool,
    ) -> anyhow::Result<Report> {
        match self {
            Backend::Local(store) => {
                // Run here, the job calls the targets itself: it needs their credentials (through
                // a server, the server has them).
                if !matches!(op, LifecycleOp::Undo { .. }) {
                    config.require_credentials(op.target())?;
                }
                let jobs = Jobs::new(store.clone(), config.clone())?
                    .with_operator(crate::store::Operator::cli())
                    .with_allow_over_guard(allow_over_guard);
                let now = Utc::now();
                // The job calls the targets: on a runtime worker (see cli_signals.rs).
                let run = async move {
                    match op {
                        LifecycleOp::Refresh { target } => jobs.refresh(target.as_deref(), now).await,
                        LifecycleOp::Cleanup { mode, target, orphans } => {
                            jobs.cleanup_selecting(mode, target.as_deref(), orphans, now).await
                        }
                        LifecycleOp::LicenseReport => jobs.license_report(now).await,
                        LifecycleOp::LicenseOptimize { mode } => jobs.license_optimize(mode, now).await,
                        LifecycleOp::LicenseGrant { user } => jobs.license_grant(&user, now).await,
                        LifecycleOp::Bulk { kind, request } => jobs.bulk(kind, &request, now).await,
                        LifecycleOp::Reconcile { mode } => jobs.reconcile(mode, now).await,
                        LifecycleOp::Undo { run_id, mode } => jobs.undo(&run_id, mode, now).await,
                    }
                };
                Ok(crate::cli_signals::off_main_thread(run).await??)
            }
            Backend::Remote(api) => {
                let (method, mut path, body) = op.request();
                if allow_over_guard {
                    path.push(if path.contains('?') { '&' } else { '?' });
                    path.push_str("allow_over_guard=true");
                }
                let v = api.call(method.clone(), &path, body.as_ref()).await?;
                serde_json::from_value(v).map_err(|e| {
                    anyhow::anyhow!("{method} {}{path} answered JSON that is not a run's report: {e}", api.base())
                })
            }
        }
    }
}

/// `--dry-run` (the default) or `--apply`, and where the CSV and JSON reports go.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Only report who would be affected and why (the default).
    #[arg(long, conflicts_with = "apply")]
    pub dry_run: bool,
    /// Queue the actions for delivery (through the outbox: retries, audit, dry run all apply).
    #[arg(long)]
    pub apply: bool,
    /// With --apply: queue even when the run would take access away from more accounts than
    /// the mass-offboarding brake ([guard]) lets through (audited on the run).
    #[arg(long, requires = "apply")]
    pub allow_over_guard: bool,
    /// Folder for the CSV and JSON reports (default: `reports_dir`, `./reports`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl RunArgs {
    pub fn mode(&self) -> Mode {
        if self.apply {
            Mode::Apply
        } else {
            Mode::DryRun
        }
    }
}

/// `scimbridge cleanup`.
#[derive(Debug, Clone, clap::Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Only this target.
    #[arg(long)]
    pub target: Option<String>,
    /// Only orphans: accounts linked to no SCIM user (see `links preview`).
    #[arg(long)]
    pub orphans: bool,
}

/// `scimbridge activity …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ActivityCmd {
    /// Read every account and its last activity from the targets into the store.
    Refresh {
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// Folder for the CSV and JSON reports (default: `reports_dir`, `./reports`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `scimbridge undo RUN_ID`.
#[derive(Debug, Clone, clap::Args)]
pub struct UndoArgs {
    /// The run to undo: the `run_id` of its report (printed by every run, `scimbridge audit --run`).
    pub run_id: String,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `scimbridge license …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LicenseCmd {
    /// Seats total/used/free per product, inactive holders, seats that would be freed, history.
    Report {
        /// Folder for the CSV and JSON reports (default: `reports_dir`, `./reports`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the optimizer now: reclaim from inactive holders, grant to the queue.
    Optimize(RunArgs),
    /// Give USER (SCIM userName or Atlassian username) a licence back now, or queue them.
    Grant {
        user: String,
        /// Folder for the CSV and JSON reports (default: `reports_dir`, `./reports`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `scimbridge deactivate|reactivate`: one target, exactly one selector.
#[derive(Debug, Clone, clap::Args)]
pub struct BulkArgs {
    /// The [[target]] name.
    #[arg(long)]
    pub target: String,
    /// Members of this group in the target.
    #[arg(long)]
    pub group: Option<String>,
    /// Accounts of this user directory.
    #[arg(long)]
    pub directory: Option<String>,
    /// Accounts without activity for at least N days.
    #[arg(long)]
    pub inactive_days: Option<i64>,
    /// Usernames from a CSV file (a `username` column, else the first column).
    #[arg(long)]
    pub from_csv: Option<PathBuf>,
    /// deactivate (default), remove_license, delete or anonymize (deactivate only).
    #[arg(long)]
    pub action: Option<String>,
    /// Only orphans (accounts linked to no SCIM user): alone, or narrowing another selector.
    #[arg(long)]
    pub orphans: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

impl BulkArgs {
    /// The request and the report folder.
    ///
    /// # Errors
    /// When the CSV file cannot be read.
    pub fn request(&self, kind: BulkKind) -> anyhow::Result<LifecycleOp> {
        let usernames = match &self.from_csv {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("while reading {}", path.display()))?;
                Some(crate::lifecycle::usernames_from_csv(&text))
            }
            None => None,
        };
        let request = BulkRequest {
            target: self.target.clone(),
            group: self.group.clone(),
            directory: self.directory.clone(),
            inactive_days: self.inactive_days,
            usernames,
            mode: self.run.mode(),
            action: self.action.clone(),
            orphans: self.orphans,
        };
        request.check(kind).map_err(|e| anyhow::anyhow!(e))?;
        Ok(LifecycleOp::Bulk { kind, request })
    }
}

/// Where a run's report files go: a folder given outright, or `--out` when given and else the
/// configured `reports_dir`.
pub trait ReportDir {
    fn resolve<'a>(&'a self, config: &'a Config) -> &'a Path;
}

impl ReportDir for Path {
    fn resolve<'a>(&'a self, _: &'a Config) -> &'a Path {
        self
    }
}

impl ReportDir for PathBuf {
    fn resolve<'a>(&'a self, _: &'a Config) -> &'a Path {
        self
    }
}

impl ReportDir for Option<PathBuf> {
    fn resolve<'a>(&'a self, config: &'a Config) -> &'a Path {
        self.as_deref().unwrap_or(&config.reports_dir)
    }
}

/// Runs `op`, prints who is affected and why plus the per-target/action summary, and writes
/// the CSV and JSON reports into `out` (see [`ReportDir`]). Never reads stdin.
///
/// # Errors
/// The job's error, or the report files cannot be written.
pub async fn run(config: &Config, op: LifecycleOp, out: &(impl ReportDir + ?Sized)) -> anyhow::Result<()> {
    run_over_guard(config, op, false, out).await
}

/// [`run`]; `allow_over_guard` is `--allow-over-guard` (see [`Backend::lifecycle_over_guard`]).
///
/// # Errors
/// As [`run`].
pub async fn run_over_guard(
    config: &Config,
    op: LifecycleOp,
    allow_over_guard: bool,
    out: &(impl ReportDir + ?Sized),
) -> anyhow::Result<()> {
    let out = out.resolve(config);
    let backend = Backend::connect(config)?;
    let report = backend.lifecycle_over_guard(config, op, allow_over_guard).await?;
    // The files first: a reader that stops early (`| head`) ends the process at the next print.
    let (csv, json) = crate::lifecycle::write_files(&report, out)
        .with_context(|| format!("while writing the report into {}", out.display()))?;
    println!("{}", crate::lifecycle::FINDING_COLUMNS.join("\t"));
    for f in &report.findings {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            f.target,
            f.username,
            f.user_id.as_deref().unwrap_or(""),
            f.display_name.as_deref().unwrap_or(""),
            f.email.as_deref().unwrap_or(""),
            f.last_active.as_deref().unwrap_or("never"),
            f.inactive_days.map(|d| d.to_string()).unwrap_or_default(),
            f.groups.join(";"),
            f.directory.as_deref().unwrap_or(""),
            f.action,
            f.reason,
            f.detail
        );
    }
    if !report.details.is_null() {
        println!("{}", serde_json::to_string_pretty(&report.details)?);
    }
    print!("{}", report.summary());
    for t in &report.targets {
        if !t.skipped.is_empty() {
            let skipped: Vec<String> = t.skipped.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            println!("  {} ({} accounts) left alone: {}", t.target, t.accounts, skipped.join(", "));
        }
    }
    println!("Report {}: {} and {}", report.id, csv.display(), json.display());
    if report.targets.iter().any(|t| t.error.is_some()) {
        bail!("some targets could not be processed (see above)");
    }
    let missing: Vec<String> = report
        .targets
        .iter()
        .filter(|t| !t.not_found.is_empty())
        .map(|t| format!("{} in {}", t.not_found.join(", "), t.target))
        .collect();
    if !missing.is_empty() {
        // A leaver list with a typo must not end as a success: that user keeps their access.
        bail!("users listed but not found, so nothing was done for them: {} (see the report)", missing.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_the_admin_api() {
        let (m, p, _) =
            LifecycleOp::Cleanup { mode: Mode::Apply, target: Some("jira x".into()), orphans: false }.request();
        assert_eq!((m, p.as_str()), (reqwest::Method::POST, "/cleanup?mode=apply&target=jira%20x"));
        let (_, p, _) = LifecycleOp::Cleanup { mode: Mode::DryRun, target: None, orphans: true }.request();
        assert_eq!(p, "/cleanup?mode=dry-run&orphans=true");
        let (_, p, _) = LifecycleOp::LicenseGrant { user: "a@b".into() }.request();
        assert_eq!(p, "/license/grant/a%40b");
        let (_, p, _) = LifecycleOp::Undo { run_id: "0190 x".into(), mode: Mode::Apply }.request();
        assert_eq!(p, "/undo/0190%20x?mode=apply");
        let (_, p, b) = LifecycleOp::Bulk { kind: BulkKind::Reactivate, request: BulkRequest::default() }.request();
        assert_eq!(p, "/reactivate");
        assert!(b.is_some());
    }
}
