//! What every lifecycle run produces: a [`Report`] (who is affected, why, which action, per-target
//! counts, who ran it and its run id), stored in sled and written as CSV and JSON files for the
//! admin (`--out DIR`). The CSV has one row per finding, each naming the run's actor and run id;
//! the JSON is the whole report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::Operator;

/// Preview or do it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    DryRun,
    Apply,
}

impl Mode {
    /// `dry-run` / `dry_run` / `apply`; absent = dry run.
    pub fn parse(s: Option<&str>) -> Option<Mode> {
        match s.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("dry-run") | Some("dry_run") | Some("dryrun") => Some(Mode::DryRun),
            Some("apply") => Some(Mode::Apply),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Apply => "apply",
        }
    }
}

/// One account the run affects (or, in dry run, would affect), with the evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub target: String,
    pub username: String,
    /// SCIM id when the IdP provisioned the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Last activity (RFC 3339), `None` = never or unknown (see `reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active: Option<String>,
    /// Days since last activity (or since creation for never-logged-in accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_days: Option<i64>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// `deactivate`, `remove_license`, `restore_license`, `add_to_group`…, or `none` (report only).
    pub action: String,
    /// The reason word of the action (`crate::reason`: `inactive`, `license_reclaimed`, `bulk`,
    /// `reconcile`…), the same as on its intent and delivery records; set by [`Report::reasoned`].
    #[serde(default)]
    pub reason: String,
    /// The evidence in words (`no activity for 200 days (threshold 90)`).
    #[serde(default)]
    pub detail: String,
    /// Warn first (`warn_days`, issue 12 §3): where the warning goes (or went), the account's
    /// Atlassian email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_to: Option<String>,
    /// When the warning was recorded (absent in a dry run: it would be warned now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warned_at: Option<String>,
    /// When `action` falls due: the end of the grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
}

/// The reason word of a finding with `action` in a run of `kind` (`crate::reason`); empty for
/// reports that act on nothing (`activity-refresh`).
pub fn reason_of(kind: &str, action: &str) -> &'static str {
    match (kind, action) {
        ("cleanup", _) => crate::reason::INACTIVE,
        ("license" | "license-report" | "license-grant", "remove_license") => crate::reason::LICENSE_RECLAIMED,
        ("license" | "license-report" | "license-grant", _) => crate::reason::LICENSE_GRANTED,
        ("deactivate" | "reactivate", _) => crate::reason::BULK,
        ("reconcile", _) => crate::reason::RECONCILE,
        ("undo", _) => crate::reason::OPERATOR,
        _ => "",
    }
}

/// One target's part of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSummary {
    pub target: String,
    pub accounts: u64,
    pub affected: u64,
    /// Accounts looked at and left alone, by reason.
    #[serde(default)]
    pub skipped: BTreeMap<String, u64>,
    /// Set when the target could not be read; nothing was decided for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Usernames the run was given (`--from-csv`) that the target does not have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<String>,
}

/// A lifecycle run's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Sequence in the `reports` tree (0 until stored).
    #[serde(default)]
    pub id: u64,
    /// `activity-refresh`, `cleanup`, `license`, `license-grant`, `deactivate`, `reactivate`, `reconcile`.
    pub kind: String,
    pub mode: Mode,
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub targets: Vec<TargetSummary>,
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Intents written to the outbox (apply only).
    #[serde(default)]
    pub enqueued: u64,
    /// Extra figures of the job (licence seats, history…).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
    /// Who ran it and its run id (`actor`, `run_id`), the same as on every intent it queued.
    #[serde(flatten)]
    pub operator: Option<Operator>,
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

impl Report {
    pub fn new(kind: &str, mode: Mode, now: DateTime<Utc>) -> Report {
        Report { kind: kind.into(), mode, started_at: rfc3339(now), ..Report::default() }
    }

    /// Every finding with its reason word ([`reason_of`]) where it has none yet.
    pub fn reasoned(mut self) -> Report {
        for f in self.findings.iter_mut().filter(|f| f.reason.is_empty()) {
            f.reason = reason_of(&self.kind, &f.action).to_string();
        }
        self
    }

    /// Findings counted per (target, action), for the confirmation summary.
    pub fn counts(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for f in &self.findings {
            *out.entry((f.target.clone(), f.action.clone())).or_insert(0) += 1;
        }
        out
    }

    /// The human summary printed by the CLI: what the run did or would do, per target and action.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} ({}): {} account(s) affected{}.\n",
            self.kind,
            self.mode.as_str(),
            self.findings.len(),
            if self.mode == Mode::Apply {
                format!(", {} intent(s) queued for delivery", self.enqueued)
            } else {
                String::new()
            }
        );
        for ((target, action), n) in self.counts() {
            s.push_str(&format!("  {target}\t{action}\t{n}\n"));
        }
        if let Some(op) = &self.operator {
            s.push_str(&format!("  run {} by {}\n", op.run_id, op.actor));
            if self.mode == Mode::Apply && self.enqueued > 0 {
                // Deliveries end after the run: where their outcomes (delivered, no such account,
                // held for review, superseded, dead letter) are read.
                s.push_str(&format!("  delivery outcomes: scimbridge audit --run {}\n", op.run_id));
            }
        }
        if let Some(days) = self.details.get("warn_days").and_then(Value::as_i64) {
            // Warn first (issue 12 §3): the actions above wait out the grace period.
            let n = |k: &str| self.details.get(k).and_then(Value::as_u64).unwrap_or(0);
            let verb = if self.mode == Mode::Apply { "warned now" } else { "would be warned now" };
            s.push_str(&format!(
                "  warn first (warn_days = {days}): {} {verb}, {} already warned and in their grace period; \
                 nothing is done before each finding's due_at, and a login before then keeps the account\n",
                n("warned"),
                n("in_grace")
            ));
        }
        if let Some(id) = self.details.get("grace_report").and_then(Value::as_u64) {
            s.push_str(&format!("  grace periods that ended first: report {id}\n"));
        }
        for t in &self.targets {
            if let Some(e) = &t.error {
                s.push_str(&format!("  {}: NOT PROCESSED: {e}\n", t.target));
            }
        }
        for t in self.targets.iter().filter(|t| !t.not_found.is_empty()) {
            s.push_str(&format!("  {}: NOT FOUND ({}): {}\n", t.target, t.not_found.len(), t.not_found.join(", ")));
        }
        if self.mode == Mode::DryRun && !self.findings.is_empty() {
            match apply_hint(&self.kind) {
                Some(cmd) => s.push_str(&format!("Nothing was changed (dry run); to do it, run: {cmd}\n")),
                None => s.push_str("Nothing was changed (report only).\n"),
            }
        }
        s
    }
}

/// The command that does what a dry run of `kind` previewed (same selection flags as the dry
/// run), or `None` for reports that have no apply. Each is checked against the CLI's parser.
pub fn apply_hint(kind: &str) -> Option<&'static str> {
    match kind {
        "cleanup" => Some("scimbridge cleanup --apply (with the same --target)"),
        "license" | "license-report" => Some("scimbridge license optimize --apply"),
        "deactivate" => Some("scimbridge deactivate --apply (with the same --target and selector)"),
        "reactivate" => Some("scimbridge reactivate --apply (with the same --target and selector)"),
        "reconcile" => Some("scimbridge reconcile --apply"),
        "undo" => Some("scimbridge undo RUN_ID --apply (the same RUN_ID)"),
        _ => None,
    }
}

/// Every report kind a run can have (for checking `apply_hint`).
pub const KINDS: [&str; 9] = [
    "activity-refresh",
    "cleanup",
    "license",
    "license-report",
    "license-grant",
    "deactivate",
    "reactivate",
    "reconcile",
    "undo",
];

/// The columns of one finding (`csv_row`), also the CLI's on-screen table.
pub const FINDING_COLUMNS: [&str; 15] = [
    "target",
    "username",
    "user_id",
    "display_name",
    "email",
    "last_active",
    "inactive_days",
    "groups",
    "directory",
    "action",
    "reason",
    "detail",
    "warn_to",
    "warned_at",
    "due_at",
];

/// The CSV file's columns after a finding's ([`FINDING_COLUMNS`]): the run's actor and run id.
pub const RUN_COLUMNS: [&str; 2] = ["actor", "run_id"];

fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One finding as a CSV row (`FINDING_COLUMNS`).
pub fn csv_row(f: &Finding) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        f.target.clone(),
        f.username.clone(),
        o(&f.user_id),
        o(&f.display_name),
        o(&f.email),
        o(&f.last_active),
        f.inactive_days.map(|d| d.to_string()).unwrap_or_default(),
        f.groups.join(";"),
        o(&f.directory),
        f.action.clone(),
        f.reason.clone(),
        f.detail.clone(),
        o(&f.warn_to),
        o(&f.warned_at),
        o(&f.due_at),
    ]
    .iter()
    .map(|c| cell(c))
    .collect::<Vec<_>>()
    .join(",")
}

/// Writes `<kind>-<mode>-<time>.csv` and `.json` into `dir` (created if needed); returns both
/// paths.
///
/// # Errors
/// When the folder or the files cannot be written.
pub fn write_files(report: &Report, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let stamp = report.started_at.replace([':', '-'], "");
    let base = format!(
        "{}-{}-{stamp}{}",
        report.kind,
        report.mode.as_str(),
        if report.id > 0 { format!("-{}", report.id) } else { String::new() }
    );
    let csv_path = dir.join(format!("{base}.csv"));
    let json_path = dir.join(format!("{base}.json"));
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
    let header: Vec<&str> = FINDING_COLUMNS.iter().chain(&RUN_COLUMNS).copied().collect();
    writeln!(csv, "{}", header.join(","))?;
    let (actor, run_id) = report.operator.as_ref().map_or(("", ""), |o| (o.actor.as_str(), o.run_id.as_str()));
    let run = format!("{},{}", cell(actor), cell(run_id));
    for f in &report.findings {
        writeln!(csv, "{},{run}", csv_row(f))?;
    }
    for t in &report.targets {
        for name in &t.not_found {
            let f = Finding {
                target: t.target.clone(),
                username: name.clone(),
                action: "not_found".into(),
                reason: reason_of(&report.kind, "not_found").into(),
                detail: "listed, but the target has no such user; nothing was done".into(),
                ..Finding::default()
            };
            writeln!(csv, "{},{run}", csv_row(&f))?;
        }
    }
    csv.flush()?;
    let json = std::io::BufWriter::new(std::fs::File::create(&json_path)?);
    serde_json::to_writer_pretty(json, report)?;
    Ok((csv_path, json_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_quote_commas_and_join_groups() {
        let f = Finding {
            target: "jira".into(),
            username: "ann".into(),
            display_name: Some("Ann, \"A\"".into()),
            groups: vec!["a".into(), "b".into()],
            inactive_days: Some(91),
            action: "deactivate".into(),
            reason: "inactive".into(),
            detail: "no activity for 91 days".into(),
            ..Finding::default()
        };
        assert_eq!(
            csv_row(&f),
            "jira,ann,,\"Ann, \"\"A\"\"\",,,91,a;b,,deactivate,inactive,no activity for 91 days,,,"
        );
        assert_eq!(reason_of("license", "remove_license"), "license_reclaimed");
        assert_eq!(reason_of("deactivate", "deactivate"), "bulk");
        assert_eq!(reason_of("reconcile", "remove_from_group"), "reconcile");
    }

    #[test]
    fn a_warn_first_runs_summary_says_who_is_warned_and_that_nothing_is_done_yet() {
        let mut r = Report::new("cleanup", Mode::Apply, Utc::now());
        r.details = serde_json::json!({"warn_days": 7, "warned": 3, "in_grace": 2, "grace_report": 9});
        let s = r.summary();
        assert!(s.contains("warn first (warn_days = 7): 3 warned now, 2 already warned"), "{s}");
        assert!(s.contains("report 9"), "{s}");
    }

    #[test]
    fn a_dry_runs_summary_names_the_command_that_applies_it() {
        let mut r = Report::new("license-report", Mode::DryRun, Utc::now());
        r.findings.push(Finding { target: "jira".into(), username: "a".into(), ..Finding::default() });
        let s = r.summary();
        assert!(s.contains("scimbridge license optimize --apply") && !s.contains("again with --apply"), "{s}");
        r.kind = "activity-refresh".into();
        assert!(r.summary().contains("report only"), "{}", r.summary());
        r.kind = "cleanup".into();
        r.targets.push(TargetSummary {
            target: "jira".into(),
            not_found: vec!["x".into()],
            ..TargetSummary::default()
        });
        assert!(r.summary().contains("scimbridge cleanup --apply") && r.summary().contains("NOT FOUND (1): x"));
    }

    #[test]
    fn files_hold_every_finding_and_the_summary_counts_per_target_and_action() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut r = Report::new("cleanup", Mode::DryRun, Utc::now());
        r.operator = Some(Operator { actor: "admin-ops (cli:al)".into(), run_id: "run-1".into() });
        for name in ["a", "b"] {
            r.findings.push(Finding {
                target: "jira".into(),
                username: name.into(),
                action: "deactivate".into(),
                ..Finding::default()
            });
        }
        let (csv, json) = write_files(&r, dir.path()).expect("write");
        let text = std::fs::read_to_string(csv).expect("csv");
        assert_eq!(text.lines().count(), 3);
        assert!(text.lines().next().is_some_and(|h| h.ends_with(",actor,run_id")), "{text}");
        assert!(text.lines().nth(1).is_some_and(|l| l.ends_with(",admin-ops (cli:al),run-1")), "{text}");
        let back: Report = serde_json::from_str(&std::fs::read_to_string(json).expect("json")).expect("parse");
        assert_eq!(back, r);
        assert!(r.summary().contains("jira\tdeactivate\t2"), "{}", r.summary());
        assert!(r.summary().contains("run run-1 by admin-ops (cli:al)"), "{}", r.summary());
        assert!(!r.summary().contains("audit --run"), "a dry run queues nothing: {}", r.summary());
        r.mode = Mode::Apply;
        r.enqueued = 2;
        assert!(r.summary().contains("delivery outcomes: scimbridge audit --run run-1"), "{}", r.summary());
        assert_eq!(Mode::parse(None), Some(Mode::DryRun));
        assert_eq!(Mode::parse(Some("apply")), Some(Mode::Apply));
        assert_eq!(Mode::parse(Some("yes")), None);
    }
}
