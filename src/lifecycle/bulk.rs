//! Bulk deactivation and reactivation of one target's accounts chosen by one selector: members
//! of a group, a user directory, inactivity, or a list of usernames (the CLI reads it from
//! `--from-csv`). `scimbridge deactivate|reactivate`, `POST /admin/deactivate|reactivate`.
//! Admins and protected users are never deactivated; reactivation only picks inactive accounts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cleanup::{finding, inactivity, Criteria};
use super::context::{self, action_name, intent, TargetView};
use super::report::{Mode, Report, TargetSummary};
use super::{suggest, CleanupAction, Jobs, LifecycleError};
use crate::atlassian::{Connector, Failure};
use crate::policy::{self, Trigger};
use crate::store::ActivityRecord;

/// Deactivate (with an action) or reactivate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkKind {
    Deactivate,
    Reactivate,
}

/// One bulk operation, as the CLI and `POST /admin/deactivate` send it. Exactly one selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub target: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub directory: Option<String>,
    #[serde(default)]
    pub inactive_days: Option<i64>,
    /// Usernames (from `--from-csv`).
    #[serde(default)]
    pub usernames: Option<Vec<String>>,
    #[serde(default)]
    pub mode: Mode,
    /// `deactivate` (default), `remove_license`, `delete`, `anonymize`; deactivation only.
    #[serde(default)]
    pub action: Option<String>,
    /// Only orphans (accounts linked to no SCIM user, issue 9): alone, every orphan of the
    /// target; with another selector, the orphans among its accounts.
    #[serde(default)]
    pub orphans: bool,
}

impl BulkRequest {
    /// # Errors
    /// A message when not exactly one selector is given or the action is unknown.
    pub fn check(&self, kind: BulkKind) -> Result<CleanupAction, String> {
        let n =
            [self.group.is_some(), self.directory.is_some(), self.inactive_days.is_some(), self.usernames.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
        if n > 1 || (n == 0 && !self.orphans) {
            return Err(
                "give exactly one of --group, --directory, --inactive-days, --from-csv (--orphans alone, or with one of them)"
                    .into(),
            );
        }
        if self.inactive_days.is_some_and(|d| d < 1) {
            return Err("--inactive-days must be at least 1".into());
        }
        match (kind, self.action.as_deref()) {
            (BulkKind::Reactivate, Some(_)) => Err("--action applies to deactivate only".into()),
            (BulkKind::Reactivate, None) | (BulkKind::Deactivate, None) => Ok(CleanupAction::Deactivate),
            (BulkKind::Deactivate, Some(a)) => match CleanupAction::parse(a) {
                Some(CleanupAction::None) | None => {
                    Err(format!("--action {a:?} is not one of deactivate, remove_license, delete, anonymize"))
                }
                Some(action) => Ok(action),
            },
        }
    }
}

/// Reads usernames from CSV text: the `username` column when a header names it, else the first
/// column; blank lines and a `#` comment are skipped.
pub fn usernames_from_csv(text: &str) -> Vec<String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).peekable();
    let mut column = 0;
    if let Some(first) = lines.peek() {
        let cells: Vec<String> = first.split(',').map(|c| c.trim().trim_matches('"').to_ascii_lowercase()).collect();
        if let Some(i) = cells.iter().position(|c| c == "username" || c == "user" || c == "name") {
            column = i;
            lines.next();
        }
    }
    lines
        .filter_map(|l| l.split(',').nth(column))
        .map(|c| c.trim().trim_matches('"').to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Fails unless some account of `target` is in directory `asked` (a mistyped name would select
/// nobody and report "0 affected"); the error names the directories the target reported.
fn require_directory(target: &str, asked: &str, seen: Vec<String>) -> Result<(), LifecycleError> {
    if seen.iter().any(|d| d.eq_ignore_ascii_case(asked)) {
        return Ok(());
    }
    let mut seen = seen;
    seen.sort();
    seen.dedup();
    if seen.is_empty() {
        return Err(LifecycleError::Invalid(format!(
            "{target} reports no user directory for any account, so --directory {asked:?} selects nobody"
        )));
    }
    let hint = suggest::did_you_mean(&suggest::close_matches(asked, seen.iter().map(String::as_str)));
    Err(LifecycleError::Invalid(format!(
        "no account of {target} is in a directory {asked:?}{hint}; its directories: {}",
        seen.join(", ")
    )))
}

impl Jobs {
    /// Runs one bulk operation.
    ///
    /// # Errors
    /// An invalid request, an unknown target, a target that cannot be read, or a store error.
    pub async fn bulk(&self, kind: BulkKind, req: &BulkRequest, now: DateTime<Utc>) -> Result<Report, LifecycleError> {
        let action = req.check(kind).map_err(LifecycleError::Invalid)?;
        let name = match kind {
            BulkKind::Deactivate => "deactivate",
            BulkKind::Reactivate => "reactivate",
        };
        let mut report = Report::new(name, req.mode, now);
        let target = self
            .targets(Some(&req.target))?
            .into_iter()
            .next()
            .ok_or_else(|| LifecycleError::UnknownTarget(format!("{:?}", req.target)))?;
        let only_orphans = req.orphans && req.group.is_none() && req.usernames.is_none();
        let listing = req.directory.is_some() || req.inactive_days.is_some() || only_orphans;
        if kind == BulkKind::Deactivate && listing {
            let criteria = Criteria {
                inactive_days: req.inactive_days.unwrap_or(0),
                // Orphans alone: every orphan, whether it ever logged in or not.
                include_never_logged_in: self.config.lifecycle.cleanup.include_never_logged_in
                    || (only_orphans && req.inactive_days.is_none()),
                scope_groups: Vec::new(),
                scope_directories: req.directory.iter().cloned().collect(),
                include_inactive_accounts: matches!(action, CleanupAction::Delete | CleanupAction::Anonymize),
                orphans_only: req.orphans,
            };
            self.select(&mut report, Some(&target.spec.name), &criteria, action, Trigger::Bulk, now).await?;
            if let (Some(d), true) = (&req.directory, report.targets.iter().all(|t| t.error.is_none())) {
                // The listing just stored every account with its directory.
                let mut seen = Vec::new();
                for acc in self.store.activity_scan(&target.spec.name)? {
                    seen.extend(acc?.directory);
                }
                require_directory(&target.spec.name, d, seen)?;
            }
            return self.finish(report);
        }
        let policy = &self.config.policy;
        let conn = self.connector(&target.spec.name)?;
        if let Some(g) = &req.group {
            self.require_group(conn, g, &target.license_groups).await?;
        }
        let extra: Vec<String> = req.group.iter().cloned().collect();
        let view = TargetView::read(conn, policy, &target.license_groups, &extra).await?;
        let prov = context::provisioned(&self.store, policy)?;
        let plan = match kind {
            BulkKind::Deactivate => super::cleanup::actions(&view, action),
            BulkKind::Reactivate => policy::reactivate_intents(view.product, &view.license_groups),
        };
        let label = plan.iter().map(action_name).collect::<Vec<_>>().join("+");
        // The candidates: a group's members or the given names, each looked up in the target.
        let mut candidates: Vec<ActivityRecord> = Vec::new();
        let mut summary = TargetSummary { target: target.spec.name.clone(), ..TargetSummary::default() };
        let mut not_found: Vec<String> = Vec::new();
        let mut skip = |why: &str| *summary.skipped.entry(why.to_string()).or_insert(0) += 1;
        let linked = self.linked_accounts(&target.spec.name)?;
        if kind == BulkKind::Reactivate && listing {
            let mut seen: Vec<String> = Vec::new();
            let read = super::activity::refresh_target(&self.store, conn, now, |acc| {
                if let Some(d) = &acc.directory {
                    if !seen.contains(d) {
                        seen.push(d.clone());
                    }
                }
                let dir_ok = req
                    .directory
                    .as_deref()
                    .is_none_or(|d| acc.directory.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(d)));
                let age_ok = req.inactive_days.is_none_or(|n| inactivity(acc, None, now).is_some_and(|(d, _)| d >= n));
                if dir_ok && age_ok {
                    candidates.push(acc.clone());
                }
            })
            .await;
            read?;
            if let Some(d) = &req.directory {
                require_directory(&target.spec.name, d, seen)?;
            }
        } else {
            let names: Vec<String> = match (&req.group, &req.usernames) {
                (Some(g), _) => view.members(g).map(|m| m.iter().cloned().collect()).unwrap_or_default(),
                (None, Some(list)) => list.clone(),
                _ => Vec::new(),
            };
            let mut names = names;
            names.sort();
            names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
            for n in names {
                match conn.account(&n).await {
                    Ok(Some(a)) => candidates.push(super::activity::record(&a, now.timestamp_millis())),
                    Ok(None) => {
                        skip("not found in the target");
                        not_found.push(n);
                    }
                    Err(f) => {
                        return Err(LifecycleError::Read {
                            target: target.spec.name.clone(),
                            reason: format!("account {n:?}: {f}"),
                        })
                    }
                }
            }
        }
        summary.accounts = candidates.len() as u64;
        let mut intents = Vec::new();
        for acc in &candidates {
            let p = prov.get(&acc.username.to_lowercase());
            if req.orphans && (p.is_some() || linked.contains(&acc.username.to_lowercase())) {
                skip("not an orphan: linked to a SCIM user");
                continue;
            }
            let groups = view.groups_of(&acc.username, acc.groups.as_deref());
            let reason = match kind {
                // Bitbucket has no inactive state to read: restoring the licence groups is the
                // reactivation and is harmless for a member.
                BulkKind::Reactivate if acc.active && view.product != crate::atlassian::Product::Bitbucket => {
                    skip("already active");
                    continue;
                }
                BulkKind::Reactivate => "bulk reactivation".to_string(),
                BulkKind::Deactivate
                    if !acc.active && !matches!(action, CleanupAction::Delete | CleanupAction::Anonymize) =>
                {
                    skip("already inactive");
                    continue;
                }
                BulkKind::Deactivate if view.is_admin(&groups) => {
                    skip("admin");
                    continue;
                }
                BulkKind::Deactivate if context::is_protected(policy, &acc.username, &groups, p) => {
                    skip("protected");
                    continue;
                }
                BulkKind::Deactivate => match (&req.group, &req.usernames) {
                    (Some(g), _) => format!("member of {g}"),
                    _ => "listed in the CSV".to_string(),
                },
            };
            let days = inactivity(acc, p.and_then(|p| p.created_ms), now).map(|(d, _)| d);
            for a in &plan {
                intents.push((intent(&view.name, &acc.username, p, a.clone(), Trigger::Bulk, policy), reason.clone()));
            }
            report.findings.push(finding(&view.name, acc, groups, p, label.clone(), reason, days));
        }
        summary.affected = report.findings.len() as u64;
        context::add_target_groups(conn, &mut report.findings, self.config.delivery.concurrency).await;
        summary.not_found = not_found;
        report.targets.push(summary);
        if report.mode == Mode::Apply {
            self.check_guard(intents.iter().map(|(i, _)| i), now)?;
            report.enqueued = context::enqueue(&self.store, self.operator(), &intents, now)?;
        }
        self.finish(report)
    }

    /// Fails unless the target has group `group` (a mistyped name would select nobody and
    /// report "0 affected"); the error names close matches among the groups this bridge knows.
    async fn require_group(
        &self,
        conn: &Connector,
        group: &str,
        license_groups: &[String],
    ) -> Result<(), LifecycleError> {
        match conn.group_members(group).await {
            Err(Failure::Permanent { reason }) if reason.starts_with("404") => {
                let mut known: Vec<String> = license_groups.to_vec();
                known.extend(self.config.policy.protected_groups.iter().cloned());
                known.extend(Connector::admin_groups(conn.product()).iter().map(|g| g.to_string()));
                let lc = &self.config.lifecycle.license;
                known.extend(lc.access_group.iter().chain(&lc.license_group).cloned());
                for g in self.store.groups_iter() {
                    if let Some(name) = g?.str_attr("displayName") {
                        known.push(name.to_string());
                    }
                }
                let hint = suggest::did_you_mean(&suggest::close_matches(group, known.iter().map(String::as_str)));
                Err(LifecycleError::Invalid(format!("{} has no group {group:?}{hint}", conn.name())))
            }
            // Other failures surface when the members are read for the run.
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_usernames_come_from_the_username_column_or_the_first() {
        assert_eq!(usernames_from_csv("email,username\nx@y,ann\n\n# c\nz@y,\"bob\"\n"), ["ann", "bob"]);
        assert_eq!(usernames_from_csv("ann\nbob,extra\n"), ["ann", "bob"]);
    }

    #[test]
    fn exactly_one_selector_and_a_known_action_are_required() {
        let base = BulkRequest { target: "jira".into(), ..BulkRequest::default() };
        assert!(base.check(BulkKind::Deactivate).is_err());
        let both = BulkRequest { group: Some("g".into()), directory: Some("d".into()), ..base.clone() };
        assert!(both.check(BulkKind::Deactivate).is_err());
        let g = BulkRequest { group: Some("g".into()), ..base.clone() };
        assert_eq!(g.check(BulkKind::Deactivate), Ok(CleanupAction::Deactivate));
        let del = BulkRequest { action: Some("delete".into()), ..g.clone() };
        assert_eq!(del.check(BulkKind::Deactivate), Ok(CleanupAction::Delete));
        assert!(del.check(BulkKind::Reactivate).is_err());
        let bad = BulkRequest { action: Some("none".into()), ..g };
        assert!(bad.check(BulkKind::Deactivate).is_err());
    }
}
