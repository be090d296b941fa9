//! Bulk deactivation and reactivation of one target's accounts chosen by one selector: members
//! of a group, a user directory, inactivity, or a list of usernames (the CLI reads it from
//! `--from-csv`). `scimbridge deactivate|reactivate`, `POST /admin/deactivate|reactivate`.
//! Admins and protected users are never deactivated; reactivation only picks inactive accounts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cleanup::{finding, inactivity, Criteria};
use super::context::{self, action_name, intent, TargetView};
use super::report::{Mode, Report, TargetSummary};
use super::{CleanupAction, Jobs, LifecycleError};
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
        if n != 1 {
            return Err("give exactly one of --group, --directory, --inactive-days, --from-csv".into());
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
            .ok_or_else(|| LifecycleError::UnknownTarget(req.target.clone()))?;
        if kind == BulkKind::Deactivate && (req.directory.is_some() || req.inactive_days.is_some()) {
            let criteria = Criteria {
                inactive_days: req.inactive_days.unwrap_or(0),
                include_never_logged_in: self.config.lifecycle.cleanup.include_never_logged_in,
                scope_groups: Vec::new(),
                scope_directories: req.directory.iter().cloned().collect(),
                include_inactive_accounts: matches!(action, CleanupAction::Delete | CleanupAction::Anonymize),
            };
            self.select(&mut report, Some(&target.spec.name), &criteria, action, Trigger::Bulk, now).await?;
            return self.finish(report);
        }
        let policy = &self.config.policy;
        let conn = self.connector(&target.spec.name)?;
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
        let mut skip = |why: &str| *summary.skipped.entry(why.to_string()).or_insert(0) += 1;
        if kind == BulkKind::Reactivate && (req.directory.is_some() || req.inactive_days.is_some()) {
            let read = super::activity::refresh_target(&self.store, conn, now, |acc| {
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
                    Ok(None) => skip("not found in the target"),
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
            report.findings.push(finding(&view.name, acc, groups, p, label.clone(), reason, days));
            for a in &plan {
                intents.push(intent(&view.name, &acc.username, p, a.clone(), Trigger::Bulk, policy));
            }
        }
        summary.affected = report.findings.len() as u64;
        report.targets.push(summary);
        if report.mode == Mode::Apply {
            report.enqueued = context::enqueue(&self.store, &intents, now)?;
        }
        self.finish(report)
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
