//! Inactive-user cleanup (`[cleanup]`, `scimbridge cleanup`, `POST /admin/cleanup`). The decision
//! is [`judge`]: a pure function of one snapshot account, what is known about it ([`Facts`]), the
//! criteria and `now`. Precedence, top to bottom: an account already inactive, an admin (the
//! product's admin groups), a protected user or group member, out of scope (groups, directories),
//! activity not reported, then the age of the last activity (never-logged-in accounts: their
//! creation date, else when the IdP provisioned them, else when scimbridge first saw them).
//! Inactive for exactly `inactive_days` counts as inactive.

use chrono::{DateTime, Utc};

use super::context::{self, action_name, intent, Provisioned, TargetView};
use super::report::{from_ms, rfc3339, Finding, Mode, Report, TargetSummary};
use super::{activity, CleanupAction, Jobs, LifecycleError};
use crate::policy::{self, contains_ci, IntentAction, OffboardAction, Trigger};
use crate::store::ActivityRecord;

const DAY_MS: i64 = 86_400_000;

/// Which accounts count as inactive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Criteria {
    pub inactive_days: i64,
    pub include_never_logged_in: bool,
    pub scope_groups: Vec<String>,
    pub scope_directories: Vec<String>,
    /// Whether accounts already inactive are candidates (delete and anonymize act on them too).
    pub include_inactive_accounts: bool,
    /// Only orphans: accounts linked to no SCIM user (`--orphans`, issue 9).
    pub orphans_only: bool,
}

/// What is known about an account besides its snapshot record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The groups it is in, as far as they were read.
    pub groups: Vec<String>,
    pub admin: bool,
    pub protected: bool,
    /// When the IdP provisioned it (SCIM `meta.created`), if it did.
    pub provisioned_ms: Option<i64>,
    /// Linked to no SCIM user: neither provisioned under its name nor linked (issue 9).
    pub orphan: bool,
}

/// The decision for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Affected: why, and for how many days inactive.
    Affect { reason: String, inactive_days: i64 },
    /// Left alone, and why (a short, countable reason).
    Skip(&'static str),
}

/// Days inactive and whether the account never logged in; `None` when the product did not
/// report activity for it.
pub(crate) fn inactivity(acc: &ActivityRecord, provisioned_ms: Option<i64>, now: DateTime<Utc>) -> Option<(i64, bool)> {
    if !acc.activity_reported {
        return None;
    }
    let now_ms = now.timestamp_millis();
    match acc.last_active_ms {
        Some(t) => Some(((now_ms - t).div_euclid(DAY_MS), false)),
        None => {
            let since = acc.created_ms.or(provisioned_ms).unwrap_or(acc.first_seen_ms);
            Some(((now_ms - since).div_euclid(DAY_MS), true))
        }
    }
}

/// Decides one account (see the module docs for the precedence).
pub fn judge(acc: &ActivityRecord, facts: &Facts, c: &Criteria, now: DateTime<Utc>) -> Verdict {
    if !acc.active && !c.include_inactive_accounts {
        return Verdict::Skip("already inactive");
    }
    if facts.admin {
        return Verdict::Skip("admin");
    }
    if facts.protected {
        return Verdict::Skip("protected");
    }
    if c.orphans_only && !facts.orphan {
        return Verdict::Skip("not an orphan: linked to a SCIM user");
    }
    if !c.scope_groups.is_empty() && !facts.groups.iter().any(|g| contains_ci(&c.scope_groups, g)) {
        return Verdict::Skip("out of scope: not in scope_groups");
    }
    if !c.scope_directories.is_empty()
        && !acc.directory.as_deref().is_some_and(|d| contains_ci(&c.scope_directories, d))
    {
        return Verdict::Skip("out of scope: not in scope_directories");
    }
    let Some((days, never)) = inactivity(acc, facts.provisioned_ms, now) else {
        return Verdict::Skip("activity not reported");
    };
    if never && !c.include_never_logged_in {
        return Verdict::Skip("never logged in (include_never_logged_in = false)");
    }
    if days < c.inactive_days {
        return Verdict::Skip(if never { "never logged in, but created recently" } else { "recently active" });
    }
    let reason = if never {
        let since = if acc.created_ms.is_some() {
            "created"
        } else if facts.provisioned_ms.is_some() {
            "provisioned by the IdP"
        } else {
            "first seen by scimbridge"
        };
        format!("never logged in; {since} {days} days ago (threshold {})", c.inactive_days)
    } else {
        format!("no activity for {days} days (threshold {})", c.inactive_days)
    };
    Verdict::Affect { reason, inactive_days: days }
}

/// The finding for an affected account.
pub(crate) fn finding(
    target: &str,
    acc: &ActivityRecord,
    groups: Vec<String>,
    prov: Option<&Provisioned>,
    action: String,
    reason: String,
    inactive_days: Option<i64>,
) -> Finding {
    Finding {
        target: target.to_string(),
        username: acc.username.clone(),
        user_id: prov.map(|p| p.id.clone()),
        display_name: acc.display_name.clone(),
        email: acc.email.clone(),
        last_active: acc.last_active_ms.and_then(from_ms).map(rfc3339),
        inactive_days,
        groups,
        directory: acc.directory.clone(),
        action,
        // The reason word is the run's (`Report::reasoned`); this is the evidence.
        reason: String::new(),
        detail: reason,
        ..Finding::default()
    }
}

/// The intents of a cleanup action on one target's product.
pub(crate) fn actions(view: &TargetView, action: CleanupAction) -> Vec<IntentAction> {
    let offboard = |a| policy::offboard_intents(view.product, a, &view.license_groups);
    match action {
        CleanupAction::Deactivate => offboard(OffboardAction::Deactivate),
        CleanupAction::Delete => offboard(OffboardAction::Delete),
        CleanupAction::Anonymize => offboard(OffboardAction::Anonymize),
        CleanupAction::None => Vec::new(),
        CleanupAction::RemoveLicense => vec![IntentAction::RemoveLicense { groups: view.license_groups.clone() }],
    }
}

impl Jobs {
    /// Runs inactive-user cleanup on every target (or one): a fresh listing per target, judged
    /// account by account as pages arrive. Dry run reports; apply also enqueues.
    ///
    /// # Errors
    /// An unknown target, or a store error; a target that cannot be read is recorded in the
    /// report and skipped.
    pub async fn cleanup(
        &self,
        mode: Mode,
        target: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Report, LifecycleError> {
        self.cleanup_selecting(mode, target, false, now).await
    }

    /// [`Jobs::cleanup`], restricted to orphans (accounts linked to no SCIM user) when `orphans`.
    ///
    /// # Errors
    /// As [`Jobs::cleanup`].
    pub async fn cleanup_selecting(
        &self,
        mode: Mode,
        target: Option<&str>,
        orphans: bool,
        now: DateTime<Utc>,
    ) -> Result<Report, LifecycleError> {
        let cfg = &self.config.lifecycle.cleanup;
        let criteria = Criteria {
            inactive_days: cfg.inactive_days,
            include_never_logged_in: cfg.include_never_logged_in,
            scope_groups: cfg.scope_groups.clone(),
            scope_directories: cfg.scope_directories.clone(),
            include_inactive_accounts: matches!(cfg.action, CleanupAction::Delete | CleanupAction::Anonymize),
            orphans_only: orphans,
        };
        let mut report = Report::new("cleanup", mode, now);
        if mode == Mode::Apply {
            // What fell due is acted on (or kept) before anything new is selected.
            let sweep = self.clone().with_operator(self.operator().next_run());
            if let Some(r) = sweep.grace_sweep(now).await? {
                report.details = serde_json::json!({"grace_report": r.id});
            }
        }
        self.select(&mut report, target, &criteria, cfg.action, Trigger::Cleanup, now).await?;
        self.finish(report)
    }

    /// Lists each target and judges every account with `criteria`; appends findings and, in
    /// apply mode, enqueues the intents of `action`. Shared by cleanup and bulk `--inactive-days`
    /// / `--directory` (which pass their own criteria).
    pub(crate) async fn select(
        &self,
        report: &mut Report,
        target: Option<&str>,
        criteria: &Criteria,
        action: CleanupAction,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Result<(), LifecycleError> {
        let policy = &self.config.policy;
        let prov = context::provisioned(&self.store, policy)?;
        // Queued together after every target is read, so the brake can refuse the run up front.
        let mut queued = Vec::new();
        for t in self.targets(target)? {
            let conn = self.connector(&t.spec.name)?;
            let mut summary = TargetSummary { target: t.spec.name.clone(), ..TargetSummary::default() };
            let view = match TargetView::read(conn, policy, &t.license_groups, &criteria.scope_groups).await {
                Ok(v) => v,
                Err(e) => {
                    summary.error = Some(e.to_string());
                    report.targets.push(summary);
                    continue;
                }
            };
            let plan = actions(&view, action);
            let label = if plan.is_empty() {
                "none".to_string()
            } else {
                plan.iter().map(action_name).collect::<Vec<_>>().join("+")
            };
            let mut found: Vec<Finding> = Vec::new();
            let linked = self.linked_accounts(&t.spec.name)?;
            let listed = activity::refresh_target(&self.store, conn, now, |acc| {
                summary.accounts += 1;
                let p = prov.get(&acc.username.to_lowercase());
                let groups = view.groups_of(&acc.username, acc.groups.as_deref());
                let facts = Facts {
                    admin: view.is_admin(&groups),
                    protected: context::is_protected(policy, &acc.username, &groups, p),
                    provisioned_ms: p.and_then(|p| p.created_ms),
                    groups,
                    orphan: p.is_none() && !linked.contains(&acc.username.to_lowercase()),
                };
                match judge(acc, &facts, criteria, now) {
                    Verdict::Affect { reason, inactive_days } => {
                        found.push(finding(
                            &view.name,
                            acc,
                            facts.groups,
                            p,
                            label.clone(),
                            reason,
                            Some(inactive_days),
                        ));
                    }
                    Verdict::Skip(why) => *summary.skipped.entry(why.to_string()).or_insert(0) += 1,
                }
            })
            .await;
            if let Err(e) = listed {
                // A partial listing is discarded: nothing is decided for this target.
                tracing::warn!(target_name = %t.spec.name, error = %e, "Lifecycle run skipped a target it could not list.");
                summary.error = Some(e.to_string());
                summary.accounts = 0;
                summary.skipped.clear();
                report.targets.push(summary);
                continue;
            }
            // Most inactive first.
            found.sort_by(|a, b| b.inactive_days.cmp(&a.inactive_days).then_with(|| a.username.cmp(&b.username)));
            context::add_target_groups(conn, &mut found, self.config.delivery.concurrency).await;
            summary.affected = found.len() as u64;
            // Warn first (issue 12 §3): cleanup's own runs only, not bulk's inactivity selection.
            let warn_days = self.config.lifecycle.cleanup.warn_days;
            if trigger == Trigger::Cleanup && warn_days > 0 && !plan.is_empty() {
                let selected = found
                    .iter_mut()
                    .map(|f| {
                        let p = prov.get(&f.username.to_lowercase());
                        let i = plan.iter().map(|a| intent(&view.name, &f.username, p, a.clone(), trigger, policy));
                        let intents = i.collect();
                        (f, intents)
                    })
                    .collect();
                let warned = self.warn_first("cleanup", report.mode, warn_days, selected, now)?;
                super::grace::count_warned(report, warn_days, warned);
            } else if mode_is_apply(report) && !plan.is_empty() {
                let mut intents = Vec::with_capacity(found.len() * plan.len());
                for f in &found {
                    let p = prov.get(&f.username.to_lowercase());
                    intents.extend(
                        plan.iter().map(|a| {
                            (intent(&view.name, &f.username, p, a.clone(), trigger, policy), f.detail.clone())
                        }),
                    );
                }
                queued.extend(intents);
            }
            report.findings.extend(found);
            report.targets.push(summary);
        }
        if !queued.is_empty() {
            self.check_guard(queued.iter().map(|(i, _)| i), now)?;
            report.enqueued += context::enqueue(&self.store, self.operator(), &queued, now)?;
        }
        Ok(())
    }
}

fn mode_is_apply(report: &Report) -> bool {
    report.mode == Mode::Apply
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap()
    }

    fn days_ago(d: i64) -> Option<i64> {
        Some(now().timestamp_millis() - d * DAY_MS)
    }

    fn acc(last: Option<i64>, created: Option<i64>) -> ActivityRecord {
        ActivityRecord {
            username: "u".into(),
            display_name: None,
            email: None,
            active: true,
            last_active_ms: last,
            activity_reported: true,
            created_ms: created,
            directory: Some("Internal".into()),
            groups: None,
            first_seen_ms: now().timestamp_millis(),
            fetched_ms: now().timestamp_millis(),
        }
    }

    fn criteria() -> Criteria {
        Criteria {
            inactive_days: 90,
            include_never_logged_in: true,
            scope_groups: vec![],
            scope_directories: vec![],
            include_inactive_accounts: false,
            orphans_only: false,
        }
    }

    fn affected(v: &Verdict) -> bool {
        matches!(v, Verdict::Affect { .. })
    }

    /// (name, account, facts, criteria, Ok(days affected) or Err(skip reason)).
    type Row<'a> = (&'a str, ActivityRecord, Facts, &'a Criteria, Result<i64, &'a str>);

    #[test]
    fn the_decision_table_holds_row_by_row() {
        let c = criteria();
        let f = Facts::default();
        let never_off = Criteria { include_never_logged_in: false, ..criteria() };
        let scoped = Criteria { scope_groups: vec!["jira-users".into()], ..criteria() };
        let dir_scoped = Criteria { scope_directories: vec!["LDAP".into()], ..criteria() };
        let orphans = Criteria { orphans_only: true, ..criteria() };
        let in_group = Facts { groups: vec!["JIRA-USERS".into()], ..Facts::default() };
        let inactive = ActivityRecord { active: false, ..acc(days_ago(400), None) };
        let unknown = ActivityRecord { activity_reported: false, ..acc(None, None) };
        #[rustfmt::skip]
        let rows: Vec<Row<'_>> = vec![
            ("protected beats everything", acc(days_ago(400), None), Facts { protected: true, ..Facts::default() }, &c, Err("protected")),
            ("admins are never touched", acc(days_ago(400), None), Facts { admin: true, protected: true, ..Facts::default() }, &c, Err("admin")),
            ("already inactive", inactive, f.clone(), &c, Err("already inactive")),
            ("one day short of the boundary", acc(days_ago(89), None), f.clone(), &c, Err("recently active")),
            ("exactly inactive_days is inactive", acc(days_ago(90), None), f.clone(), &c, Ok(90)),
            ("long inactive", acc(days_ago(200), None), f.clone(), &c, Ok(200)),
            ("never logged in, old creation", acc(None, days_ago(120)), f.clone(), &c, Ok(120)),
            ("never logged in, new creation", acc(None, days_ago(10)), f.clone(), &c, Err("never logged in, but created recently")),
            ("never logged in, excluded", acc(None, days_ago(120)), f.clone(), &never_off, Err("never logged in (include_never_logged_in = false)")),
            ("never logged in, IdP provisioned long ago", acc(None, None), Facts { provisioned_ms: days_ago(95), ..Facts::default() }, &c, Ok(95)),
            ("never logged in, first seen today", acc(None, None), f.clone(), &c, Err("never logged in, but created recently")),
            ("activity unknown", unknown, f.clone(), &c, Err("activity not reported")),
            ("out of scope group", acc(days_ago(400), None), f.clone(), &scoped, Err("out of scope: not in scope_groups")),
            ("in scope group (case-insensitive)", acc(days_ago(400), None), in_group, &scoped, Ok(400)),
            ("out of scope directory", acc(days_ago(400), None), f.clone(), &dir_scoped, Err("out of scope: not in scope_directories")),
            ("orphans only: a linked account", acc(days_ago(400), None), f.clone(), &orphans, Err("not an orphan: linked to a SCIM user")),
            ("orphans only: an orphan", acc(days_ago(400), None), Facts { orphan: true, ..Facts::default() }, &orphans, Ok(400)),
        ];
        for (name, a, facts, crit, want) in rows {
            let got = judge(&a, &facts, crit, now());
            match (want, &got) {
                (Ok(days), Verdict::Affect { inactive_days, .. }) => assert_eq!(*inactive_days, days, "{name}"),
                (Err(why), Verdict::Skip(got_why)) => assert_eq!(*got_why, why, "{name}"),
                _ => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn delete_and_anonymize_also_take_accounts_that_are_already_inactive() {
        let c = Criteria { include_inactive_accounts: true, ..criteria() };
        let a = ActivityRecord { active: false, ..acc(days_ago(400), None) };
        assert!(affected(&judge(&a, &Facts::default(), &c, now())));
    }

    #[test]
    fn the_reason_names_the_evidence() {
        match judge(&acc(None, days_ago(120)), &Facts::default(), &criteria(), now()) {
            Verdict::Affect { reason, .. } => {
                assert!(reason.contains("never logged in; created 120 days ago"), "{reason}")
            }
            v => panic!("{v:?}"),
        }
    }
}
