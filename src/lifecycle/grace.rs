//! Warn first, then act (issue 12 §3). With `warn_days > 0` in `[cleanup]` or `[license]`, an
//! account a run selects is not acted on: it is warned (a `warning` audit record with to / what /
//! when / run id, and an entry in the store's `grace` tree, one transaction) and its action waits
//! there until the grace period ends. Then [`Jobs::grace_sweep`] reads the target's accounts again
//! (a fresh listing, as cleanup does) and decides with [`recheck`]: someone who logged in after
//! the warning is left alone (`kept: active during grace`), an account another path already
//! deactivated or that no longer exists is closed with nothing to do, an account that became an
//! admin or protected is kept, and the rest get the warned action, queued through the outbox
//! under the warning run's actor and run id (so `undo` of that run finds it).
//!
//! The sweep runs from a background task of the server ([`spawn`]), woken by the clock at the
//! next due time (at least hourly), and at the start of every applied cleanup and licence run, so
//! the CLI without a server also acts on what fell due. A run during the grace period neither
//! warns again nor queues anything for an account already warned: it lists the pending warning.
//!
//! The warning e-mail goes out through the notifications lane: [`warning_email`] builds its
//! `Notice::UserWarning`, written in the warning's own transaction (never in dry run, never for
//! an account without an e-mail address). `[notify.smtp]` is required whenever `warn_days > 0`
//! (config validation), so a warning is never recorded that could not be sent.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::context::{self, TargetView};
use super::report::{from_ms, rfc3339, Finding, Mode, Report, TargetSummary};
use super::{Jobs, LifecycleError};
use crate::atlassian::Product;
use crate::notify::Notice;
use crate::policy::{contains_ci, Intent};
use crate::store::{ActivityRecord, GraceEntry, Operator};

/// The exact words for an account that logged in during its grace period (audit and report).
pub const KEPT_ACTIVE: &str = "kept: active during grace";

/// One sweep at a time in a process (the server's task and an applied run's own sweep), so a due
/// entry is acted on once. sled admits one process per store, so a process-wide lock suffices.
static SWEEP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The facts of the warning e-mail to the user (issue 12 §4 sends it): ONE call site, so the
/// notifications lane wires here. `to` is the account's Atlassian e-mail (null when it has none:
/// the warning is recorded but cannot be delivered, and the action still waits the full period).
pub fn user_warning_notice(entry: &GraceEntry, dry_run: bool) -> Value {
    let what = match entry.action.as_str() {
        "remove_license" => format!("your licence for {} will be removed", entry.target),
        "delete" => format!("your {} account will be deleted", entry.target),
        "anonymize" => format!("your {} account will be anonymized", entry.target),
        _ => format!("your {} account will be deactivated", entry.target),
    };
    json!({
        "event": "user_warning",
        "to": entry.email,
        "username": entry.username,
        "target": entry.target,
        "action": entry.action,
        "what": what,
        "when": entry.due_at,
        "why": entry.reason,
        "keep": format!("Log in to {} before {} to keep it; nothing else is needed.", entry.target, entry.due_at),
        "warned_at": entry.warned_at,
        "run_id": entry.operator.run_id,
        "actor": entry.operator.actor,
        "dry_run": dry_run,
    })
}

/// The warning e-mail for `entry` (issue 12 §3: what will happen, when, and that logging in
/// before then keeps the account; see `notify/templates/warning.txt`). `None` when the account
/// has no usable e-mail address (none, or one a mail server would refuse, e.g. a bare name).
pub fn warning_email(entry: &GraceEntry, product: Option<Product>, last_active: Option<String>) -> Option<Notice> {
    let to = entry.email.as_deref().map(str::trim).filter(|e| e.parse::<lettre::Address>().is_ok())?.to_string();
    Some(Notice::UserWarning {
        to,
        username: entry.username.clone(),
        display_name: None,
        target: entry.target.clone(),
        product: product.map(|p| product_name(p).to_string()),
        action: entry.action.clone(),
        reason: super::report::reason_of(&entry.kind, &entry.action).to_string(),
        last_active,
        due_at: entry.due_at.clone(),
        run_id: entry.operator.run_id.clone(),
    })
}

/// The product's name as its users know it.
fn product_name(p: Product) -> &'static str {
    match p {
        Product::Jira => "Jira",
        Product::Confluence => "Confluence",
        Product::Crowd => "Crowd",
        Product::Bitbucket => "Bitbucket",
    }
}

/// Says in the log that a user was warned (the e-mail is on its way through the lane), or why
/// no e-mail goes out.
fn log_user_warning(entry: &GraceEntry, emailed: bool, dry_run: bool) {
    if emailed {
        tracing::info!(target_name = %entry.target, username = %entry.username, due_at = %entry.due_at, run_id = %entry.operator.run_id, "User warned by e-mail: the action falls due after the grace period unless they log in.");
    } else if dry_run {
        tracing::warn!(target_name = %entry.target, username = %entry.username, due_at = %entry.due_at, run_id = %entry.operator.run_id, "Dry run: the warning is recorded but no e-mail is sent to the user.");
    } else if let Some(to) = entry.email.as_deref().filter(|e| e.trim().parse::<lettre::Address>().is_err()) {
        tracing::warn!(target_name = %entry.target, username = %entry.username, address = %to, due_at = %entry.due_at, run_id = %entry.operator.run_id, "User selected for an action after the grace period, but the account's e-mail is not a usable address: the warning cannot be delivered.");
    } else if entry.email.is_none() {
        tracing::warn!(target_name = %entry.target, username = %entry.username, due_at = %entry.due_at, run_id = %entry.operator.run_id, "User selected for an action after the grace period, but the account has no e-mail address: the warning cannot be delivered.");
    } else {
        tracing::warn!(target_name = %entry.target, username = %entry.username, due_at = %entry.due_at, run_id = %entry.operator.run_id, "User selected for an action after the grace period, but no [notify.smtp] is configured to e-mail the warning.");
    }
}

/// What the re-check at due time decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    /// Queue the warned action.
    Act,
    /// Leave the account alone, and why.
    Kept(String),
    /// Nothing left to do (already done by something else, or no such account), and why.
    Closed(String),
}

/// The decision at due time for one warned account, from a fresh listing (`acc`, `None` when the
/// target no longer lists it), whether it is now an admin or protected, and (licence reclaims)
/// whether it still holds the licence group.
pub fn recheck(
    entry: &GraceEntry,
    acc: Option<&ActivityRecord>,
    admin_or_protected: bool,
    holds: Option<bool>,
) -> Recheck {
    let Some(acc) = acc else {
        return Recheck::Closed(format!("no longer exists in {}: nothing to do", entry.target));
    };
    // Delete and anonymize act on deactivated accounts too (cleanup selects them so).
    let needs_active = !matches!(entry.action.as_str(), "delete" | "anonymize");
    if needs_active && !acc.active {
        return Recheck::Closed("already deactivated by something else during grace: nothing to do".into());
    }
    if acc.last_active_ms.is_some_and(|t| t > entry.warned_ms) {
        return Recheck::Kept(KEPT_ACTIVE.into());
    }
    if !acc.activity_reported {
        return Recheck::Kept("kept: activity no longer reported, so the grace period cannot be checked".into());
    }
    if admin_or_protected {
        return Recheck::Kept("kept: admin or protected at due time".into());
    }
    if holds == Some(false) {
        return Recheck::Closed("no longer holds the licence group: nothing to do".into());
    }
    Recheck::Act
}

/// Counts of a run's warn-first step.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Warned {
    /// Warned by this run (in a dry run: would be).
    pub new: u64,
    /// Already warned by an earlier run, still in their grace period.
    pub pending: u64,
}

impl Jobs {
    /// The clock's now for a due date `days` ahead.
    fn due(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
        now + chrono::Duration::days(days)
    }

    /// Warn first instead of acting: for each selected account (its finding and the intents its
    /// action needs), a pending warning is listed as it stands; otherwise (apply) the warning is
    /// recorded and the action waits `days`, or (dry run) the finding says when it would fall due.
    /// Nothing is queued.
    ///
    /// # Errors
    /// On a store error (warnings already recorded stay recorded).
    pub(crate) fn warn_first(
        &self,
        kind: &str,
        mode: Mode,
        days: i64,
        selected: Vec<(&mut Finding, Vec<Intent>)>,
        now: DateTime<Utc>,
    ) -> Result<Warned, LifecycleError> {
        let mut out = Warned::default();
        let due = Self::due(now, days);
        let dry_run = self.config.policy.dry_run;
        for (f, intents) in selected {
            if let Some(e) = self.store.grace_get(kind, &f.target, &f.username)? {
                annotate(f, &e);
                out.pending += 1;
                continue;
            }
            f.warn_to = f.email.clone();
            f.due_at = Some(rfc3339(due));
            out.new += 1;
            if mode != Mode::Apply {
                continue;
            }
            let Some(first) = intents.first() else { continue };
            let entry = GraceEntry {
                kind: kind.to_string(),
                target: f.target.clone(),
                username: f.username.clone(),
                user_id: first.user_id.clone(),
                email: f.email.clone(),
                warned_at: rfc3339(now),
                warned_ms: now.timestamp_millis(),
                due_at: rfc3339(due),
                due_ms: due.timestamp_millis(),
                action: f.action.clone(),
                // The evidence in words; the reason word follows from the kind and action.
                reason: f.detail.clone(),
                intents: intents.iter().filter_map(|i| serde_json::to_value(i).ok()).collect(),
                operator: self.operator().clone(),
            };
            let record = json!({
                "type": "warning", "at": entry.warned_at, "kind": kind, "target": entry.target,
                "user_id": entry.user_id, "username": entry.username, "to": entry.email, "what": entry.action,
                "when": entry.due_at, "reason": super::report::reason_of(kind, &entry.action), "detail": entry.reason, "actor": entry.operator.actor,
                "run_id": entry.operator.run_id, "dry_run": dry_run,
                "notice": user_warning_notice(&entry, dry_run),
            });
            let product = self.config.targets.iter().find(|t| t.spec.name == entry.target).map(|t| t.spec.product);
            let row = match warning_email(&entry, product, f.last_active.clone()).filter(|_| !dry_run) {
                Some(notice) => self.store.notice_row(&notice)?,
                None => None,
            };
            if self.store.grace_warn(&entry, &entry.user_id, &record, row.as_ref())? {
                f.warned_at = Some(entry.warned_at.clone());
                log_user_warning(&entry, row.is_some(), dry_run);
            }
        }
        Ok(out)
    }

    /// Acts on every warned account whose grace period has ended by `now`, after re-reading its
    /// target; records how each ended (audit and this sweep's report). `None` when nothing was
    /// due. A target that cannot be read keeps its entries for the next sweep.
    ///
    /// # Errors
    /// On a store error.
    pub async fn grace_sweep(&self, now: DateTime<Utc>) -> Result<Option<Report>, LifecycleError> {
        let _one = SWEEP.lock().await;
        let now_ms = now.timestamp_millis();
        let mut by_target: BTreeMap<String, Vec<GraceEntry>> = BTreeMap::new();
        for e in self.store.grace_entries()?.into_iter().filter(|e| e.due_ms <= now_ms) {
            by_target.entry(e.target.clone()).or_default().push(e);
        }
        if by_target.is_empty() {
            return Ok(None);
        }
        let mut report = Report::new("grace", Mode::Apply, now);
        let mut runs: Vec<String> = Vec::new();
        let policy = &self.config.policy;
        let prov = context::provisioned(&self.store, policy)?;
        for (target, entries) in by_target {
            let mut summary = TargetSummary { target: target.clone(), ..TargetSummary::default() };
            match self.sweep_target(&target, &entries, &prov, &mut report, &mut summary, now).await {
                Ok(()) => {}
                Err(LifecycleError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(target_name = %target, error = %e, "Could not re-check warned accounts at the end of their grace period; trying again at the next sweep.");
                    summary.error = Some(e.to_string());
                }
            }
            for e in &entries {
                if !runs.contains(&e.operator.run_id) {
                    runs.push(e.operator.run_id.clone());
                }
            }
            report.targets.push(summary);
        }
        report.details = json!({"warned_by_runs": runs});
        Ok(Some(self.finish(report)?))
    }

    async fn sweep_target(
        &self,
        target: &str,
        entries: &[GraceEntry],
        prov: &HashMap<String, context::Provisioned>,
        report: &mut Report,
        summary: &mut TargetSummary,
        now: DateTime<Utc>,
    ) -> Result<(), LifecycleError> {
        let policy = &self.config.policy;
        let Ok(conn) = self.connector(target) else {
            // The target left the configuration: nothing can be (or needs to be) done there.
            let why = format!("closed: target {target} is no longer configured, nothing to do");
            for e in entries {
                let rec = json!({
                    "type": "grace", "at": rfc3339(now), "kind": e.kind, "target": e.target, "user_id": e.user_id,
                    "username": e.username, "what": e.action, "outcome": "closed", "reason": super::report::reason_of(&e.kind, &e.action), "detail": why,
                    "actor": e.operator.actor, "run_id": e.operator.run_id,
                });
                self.store.grace_close(e, &e.user_id, &rec)?;
            }
            summary.skipped.insert(why, entries.len() as u64);
            return Ok(());
        };
        let lc = &self.config.lifecycle.license;
        let licence_group = lc
            .license_group
            .clone()
            .filter(|_| lc.target.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(target)))
            .filter(|_| entries.iter().any(|e| e.kind == "license"));
        let license_groups = self
            .config
            .targets
            .iter()
            .find(|t| t.spec.name == target)
            .map(|t| t.license_groups.clone())
            .unwrap_or_default();
        let extra: Vec<String> = licence_group.iter().cloned().collect();
        let view = TargetView::read(conn, policy, &license_groups, &extra).await?;
        let wanted: Vec<String> = entries.iter().map(|e| e.username.to_lowercase()).collect();
        let mut fresh: HashMap<String, ActivityRecord> = HashMap::new();
        let (stats, _) = super::activity::refresh_target(&self.store, conn, now, |acc| {
            let lower = acc.username.to_lowercase();
            if wanted.contains(&lower) {
                fresh.insert(lower, acc.clone());
            }
        })
        .await?;
        summary.accounts = stats.accounts;
        for e in entries {
            let lower = e.username.to_lowercase();
            let acc = fresh.get(&lower);
            let p = prov.get(&lower);
            let groups = view.groups_of(&e.username, acc.and_then(|a| a.groups.as_deref()));
            let guarded = view.is_admin(&groups) || context::is_protected(policy, &e.username, &groups, p);
            let holds = licence_group.as_deref().filter(|_| e.kind == "license").map(|g| {
                view.members(g).is_some_and(|m| m.contains(&lower))
                    || acc.and_then(|a| a.groups.as_ref()).is_some_and(|gs| contains_ci(gs, g))
            });
            let decision = recheck(e, acc, guarded, holds);
            let fallback = ActivityRecord::placeholder(&e.username, now.timestamp_millis());
            let mut f = super::cleanup::finding(
                target,
                acc.unwrap_or(&fallback),
                groups,
                p,
                e.action.clone(),
                e.reason.clone(),
                None,
            );
            f.user_id =
                p.map(|p| p.id.clone()).or_else(|| Some(e.user_id.clone()).filter(|u| !u.starts_with("atlassian:")));
            annotate(&mut f, e);
            let base = json!({
                "type": "grace", "at": rfc3339(now), "kind": e.kind, "target": e.target, "user_id": e.user_id,
                "username": e.username, "what": e.action, "warned_at": e.warned_at, "due_at": e.due_at,
                "to": e.email, "actor": e.operator.actor, "run_id": e.operator.run_id,
                "last_active": acc.and_then(|a| a.last_active_ms).and_then(from_ms).map(rfc3339),
            });
            match decision {
                Recheck::Act => {
                    let reason = format!(
                        "{}; warned at {}, no activity since; grace period ended {}",
                        e.reason, e.warned_at, e.due_at
                    );
                    let intents: Vec<(Intent, String)> = e
                        .intents
                        .iter()
                        .filter_map(|v| serde_json::from_value::<Intent>(v.clone()).ok())
                        .map(|i| (i, reason.clone()))
                        .collect();
                    // Queued under the warning run's operator: the action belongs to that run.
                    let warned_by = self.clone().with_operator(e.operator.clone());
                    report.enqueued += context::enqueue(&self.store, warned_by.operator(), &intents, now)?;
                    // A crash between the two writes queues the action again at the next sweep;
                    // delivery is idempotent, so that costs one call, never a lost action.
                    let mut rec = base;
                    rec["outcome"] = json!("queued");
                    rec["reason"] = json!(super::report::reason_of(&e.kind, &e.action));
                    rec["detail"] = json!(reason);
                    self.store.grace_close(e, &e.user_id, &rec)?;
                    if e.kind == "license" {
                        super::license::record_reclaimed(&self.store, e, &reason, now)?;
                    }
                    f.reason = super::report::reason_of(&e.kind, &e.action).to_string();
                    f.detail = reason;
                    summary.affected += 1;
                    tracing::info!(target_name = %target, username = %e.username, action = %e.action, run_id = %e.operator.run_id, "Grace period ended without activity; the warned action is queued.");
                    report.findings.push(f);
                }
                Recheck::Kept(why) | Recheck::Closed(why) => {
                    let outcome = if why.starts_with("kept") { "kept" } else { "closed" };
                    let mut rec = base;
                    rec["outcome"] = json!(outcome);
                    rec["reason"] = json!(super::report::reason_of(&e.kind, &e.action));
                    rec["detail"] = json!(why);
                    self.store.grace_close(e, &e.user_id, &rec)?;
                    tracing::info!(target_name = %target, username = %e.username, outcome, reason = %why, "Grace period ended; the warned action is not taken.");
                    *summary.skipped.entry(why.clone()).or_insert(0) += 1;
                    f.action = "none".into();
                    f.reason = super::report::reason_of(&e.kind, &e.action).to_string();
                    f.detail = why;
                    report.findings.push(f);
                }
            }
        }
        Ok(())
    }
}

/// Adds a target's warn-first counts to the run's details: `warn_days`, `warned` (now, or would
/// be in a dry run) and `in_grace` (warned earlier, not yet due).
pub(crate) fn count_warned(report: &mut Report, days: i64, w: Warned) {
    if !report.details.is_object() {
        report.details = json!({});
    }
    let d = &mut report.details;
    d["warn_days"] = json!(days);
    d["warned"] = json!(d["warned"].as_u64().unwrap_or(0) + w.new);
    d["in_grace"] = json!(d["in_grace"].as_u64().unwrap_or(0) + w.pending);
}

/// Shows a pending warning on a finding.
fn annotate(f: &mut Finding, e: &GraceEntry) {
    f.warn_to = e.email.clone();
    f.warned_at = Some(e.warned_at.clone());
    f.due_at = Some(e.due_at.clone());
}

/// The earliest pending due time after `swept_at` (the time the last sweep judged by), if any.
/// Entries due by then that are still pending could not be re-checked (their target could not
/// be read): they wait for the next regular wake-up instead of spinning. One that fell due
/// between the sweep and now (the clock moved meanwhile) wakes the sweep at once.
fn next_due(jobs: &Jobs, swept_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let entries = jobs.store.grace_entries().ok()?;
    entries.iter().map(|e| e.due_ms).filter(|d| *d > swept_at.timestamp_millis()).min().and_then(from_ms)
}

/// The background sweep; `stop` ends it after the sweep in progress.
pub struct GraceHandle {
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
}

impl GraceHandle {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.join.await;
    }
}

/// How long the sweep sleeps at most: new warnings are picked up within this.
const SWEEP_AT_LEAST_EVERY: i64 = 3600;

/// Starts the sweep for a server (`None` without targets: nothing can be warned). Says at start
/// when a configured job acts without warning first, so an upgraded install is told.
pub fn spawn(jobs: Jobs) -> Option<GraceHandle> {
    let lc = &jobs.config.lifecycle;
    for (table, enabled, days, set) in [
        ("cleanup", lc.cleanup.enabled, lc.cleanup.warn_days, lc.cleanup.warn_days_set),
        ("license", lc.license.enabled, lc.license.warn_days, lc.license.warn_days_set),
    ] {
        if enabled && days == 0 {
            let why = if set { "warn_days = 0" } else { "warn_days is not set (default 0)" };
            tracing::warn!(table, "[{table}] acts without warning users first ({why}); set warn_days = 7 to e-mail each selected user and act only after 7 days without a login.");
        }
    }
    if jobs.config.targets.is_empty() {
        return None;
    }
    let jobs = jobs.with_operator(Operator::new("grace-period"));
    let (stop, mut stopped) = watch::channel(false);
    let join = tokio::spawn(async move {
        loop {
            let now = jobs.now();
            let run = jobs.clone().with_operator(jobs.operator().next_run());
            let outcome = tokio::select! {
                r = run.grace_sweep(now) => r,
                _ = stopped.changed() => return,
            };
            match outcome {
                Ok(Some(r)) => tracing::info!(report = r.id, acted = r.enqueued, "Grace-period sweep recorded."),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "The grace-period sweep failed; it runs again shortly."),
            }
            let cap = jobs.now() + chrono::Duration::seconds(SWEEP_AT_LEAST_EVERY);
            let wake = next_due(&jobs, now).map_or(cap, |d| d.min(cap));
            let clock = jobs.clock();
            tokio::select! {
                _ = clock.sleep_until(wake) => {}
                _ = stopped.changed() => return,
            }
        }
    });
    Some(GraceHandle { stop, join })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;

    fn entry(action: &str) -> GraceEntry {
        GraceEntry {
            kind: "cleanup".into(),
            target: "jira".into(),
            username: "ann".into(),
            user_id: "atlassian:ann".into(),
            email: Some("ann@example.com".into()),
            warned_at: "2026-01-01T00:00:00Z".into(),
            warned_ms: 1_000 * DAY_MS,
            due_at: "2026-01-08T00:00:00Z".into(),
            due_ms: 1_007 * DAY_MS,
            action: action.into(),
            reason: "no activity for 100 days".into(),
            intents: vec![],
            operator: Operator::new("test"),
        }
    }

    fn acc(last_day: Option<i64>, active: bool) -> ActivityRecord {
        ActivityRecord {
            active,
            last_active_ms: last_day.map(|d| d * DAY_MS),
            ..ActivityRecord::placeholder("ann", 900 * DAY_MS)
        }
    }

    #[test]
    fn the_recheck_at_due_time_holds_row_by_row() {
        let e = entry("deactivate");
        let reported = |a: ActivityRecord| ActivityRecord { activity_reported: true, ..a };
        assert_eq!(recheck(&e, None, false, None), Recheck::Closed("no longer exists in jira: nothing to do".into()));
        assert!(matches!(recheck(&e, Some(&reported(acc(Some(900), false))), false, None), Recheck::Closed(_)));
        assert_eq!(
            recheck(&e, Some(&reported(acc(Some(1_003), true))), false, None),
            Recheck::Kept(KEPT_ACTIVE.into())
        );
        assert_eq!(recheck(&e, Some(&reported(acc(Some(900), true))), false, None), Recheck::Act);
        assert_eq!(recheck(&e, Some(&reported(acc(None, true))), false, None), Recheck::Act, "never logged in");
        assert!(matches!(recheck(&e, Some(&reported(acc(Some(900), true))), true, None), Recheck::Kept(_)));
        assert!(matches!(recheck(&e, Some(&acc(Some(900), true)), false, None), Recheck::Kept(_)), "unreported");
        let l = entry("remove_license");
        assert!(matches!(recheck(&l, Some(&reported(acc(Some(900), true))), false, Some(false)), Recheck::Closed(_)));
        // Delete acts on an account that is already deactivated.
        assert_eq!(recheck(&entry("delete"), Some(&reported(acc(Some(900), false))), false, None), Recheck::Act);
    }

    #[test]
    fn the_notice_says_what_when_and_how_to_keep_the_account() {
        let n = user_warning_notice(&entry("deactivate"), false);
        assert_eq!(n["to"], "ann@example.com");
        assert_eq!(n["when"], "2026-01-08T00:00:00Z");
        assert!(n["what"].as_str().is_some_and(|w| w.contains("deactivated")), "{n}");
        assert!(n["keep"].as_str().is_some_and(|k| k.contains("Log in to jira before 2026-01-08")), "{n}");
    }

    #[test]
    fn the_warning_email_goes_to_the_account_and_says_what_when_and_how_to_keep_it() {
        let e = entry("deactivate");
        let n = warning_email(&e, Some(Product::Jira), Some("2025-09-01T00:00:00Z".into())).expect("a notice");
        let Notice::UserWarning { to, reason, due_at, run_id, .. } = &n else { panic!("{n:?}") };
        assert_eq!(
            (to.as_str(), reason.as_str(), due_at.as_str()),
            ("ann@example.com", "inactive", "2026-01-08T00:00:00Z")
        );
        assert_eq!(run_id, &e.operator.run_id);
        let mail = crate::notify::render::user_email(&n).expect("renders").expect("an email");
        assert!(mail.text.contains("deactivated on 2026-01-08T00:00:00Z"), "{}", mail.text);
        assert!(mail.text.contains("Logging in to Jira before then keeps your account"), "{}", mail.text);
        let none = GraceEntry { email: None, ..e.clone() };
        assert!(warning_email(&none, None, None).is_none(), "no address: nothing to send");
        let blank = GraceEntry { email: Some(" ".into()), ..e.clone() };
        assert!(warning_email(&blank, None, None).is_none());
        let bare = GraceEntry { email: Some("ann".into()), ..e };
        assert!(warning_email(&bare, None, None).is_none(), "a bare name is no address to send to");
    }
}
