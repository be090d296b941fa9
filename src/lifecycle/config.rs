//! The `[cleanup]`, `[license]`, `[reconcile]` and `[activity]` tables (key names of issue 4),
//! their defaults, and a pure validation into [`LifecycleConfig`] that reports every problem as
//! an [`Issue`] `{key, reason}`. Unknown keys are rejected by serde.

use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use crate::atlassian::Product;
use crate::policy::{Issue, TargetPolicy};

/// What cleanup does to an inactive account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanupAction {
    #[default]
    Deactivate,
    RemoveLicense,
    Delete,
    Anonymize,
    /// Report only.
    None,
}

impl CleanupAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupAction::Deactivate => "deactivate",
            CleanupAction::RemoveLicense => "remove_license",
            CleanupAction::Delete => "delete",
            CleanupAction::Anonymize => "anonymize",
            CleanupAction::None => "none",
        }
    }

    /// Parses the config / CLI spelling.
    pub fn parse(s: &str) -> Option<CleanupAction> {
        [Self::Deactivate, Self::RemoveLicense, Self::Delete, Self::Anonymize, Self::None]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()) || a.as_str().replace('_', "-") == s.trim())
    }
}

/// `[cleanup]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CleanupFile {
    pub enabled: bool,
    pub inactive_days: i64,
    pub include_never_logged_in: bool,
    pub action: CleanupAction,
    pub scope_groups: Vec<String>,
    pub scope_directories: Vec<String>,
    pub schedule: String,
    /// Days between the warning and the action; 0 = act at once. Absent = [`WARN_DAYS_DEFAULT`].
    pub warn_days: Option<i64>,
}

/// `warn_days` when the file does not say (issue 12 §3; see README "Warn first, then act"): 0,
/// so an upgraded install acts exactly as before (the server says at start that it does not warn);
/// the example configuration new installs start from sets 7.
pub const WARN_DAYS_DEFAULT: i64 = 0;

impl Default for CleanupFile {
    fn default() -> Self {
        CleanupFile {
            enabled: false,
            inactive_days: 90,
            include_never_logged_in: true,
            action: CleanupAction::Deactivate,
            scope_groups: Vec::new(),
            scope_directories: Vec::new(),
            schedule: "daily 02:00".into(),
            warn_days: None,
        }
    }
}

/// `[license]` as written. `target`, `application_role` and `schedule` are optional additions:
/// the target defaults to the first Jira target (else the first that reports seats), the Jira
/// application role to the one whose key begins `license_group`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LicenseFile {
    pub enabled: bool,
    pub access_group: Option<String>,
    pub license_group: Option<String>,
    pub inactive_days: i64,
    pub keep_free_seats: u64,
    pub target: Option<String>,
    pub application_role: Option<String>,
    pub schedule: String,
    /// As `[cleanup] warn_days`, for licence reclaims.
    pub warn_days: Option<i64>,
}

impl Default for LicenseFile {
    fn default() -> Self {
        LicenseFile {
            enabled: false,
            access_group: None,
            license_group: None,
            inactive_days: 30,
            keep_free_seats: 5,
            target: None,
            application_role: None,
            schedule: "daily 03:00".into(),
            warn_days: None,
        }
    }
}

/// `[reconcile]` and `[activity]`: a scheduled job with no other settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobFile {
    pub enabled: bool,
    pub schedule: String,
}

impl Default for JobFile {
    fn default() -> Self {
        JobFile { enabled: false, schedule: "daily 04:00".into() }
    }
}

/// The four tables as `FileConfig` holds them.
pub struct Sections<'a> {
    pub cleanup: &'a CleanupFile,
    pub license: &'a LicenseFile,
    pub reconcile: &'a JobFile,
    pub activity: &'a JobFile,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupConfig {
    pub enabled: bool,
    pub inactive_days: i64,
    pub include_never_logged_in: bool,
    pub action: CleanupAction,
    pub scope_groups: Vec<String>,
    pub scope_directories: Vec<String>,
    pub schedule: Schedule,
    /// The grace period between the warning and the action, in days; 0 = no warning.
    pub warn_days: i64,
    /// Whether `warn_days` was written in the file (else the default applies, and the server
    /// says so at start: an upgraded install is told its runs now warn first).
    pub warn_days_set: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseConfig {
    pub enabled: bool,
    pub access_group: Option<String>,
    pub license_group: Option<String>,
    pub inactive_days: i64,
    pub keep_free_seats: u64,
    /// The resolved target name (`None` when no target can hold licences).
    pub target: Option<String>,
    pub application_role: Option<String>,
    pub schedule: Schedule,
    /// As [`CleanupConfig::warn_days`].
    pub warn_days: i64,
    pub warn_days_set: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConfig {
    pub enabled: bool,
    pub schedule: Schedule,
}

/// The validated lifecycle settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    pub cleanup: CleanupConfig,
    pub license: LicenseConfig,
    pub reconcile: JobConfig,
    pub activity: JobConfig,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        let (c, l, j) = (CleanupFile::default(), LicenseFile::default(), JobFile::default());
        let sections = Sections { cleanup: &c, license: &l, reconcile: &j, activity: &j };
        validate(&sections, &[]).unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

fn names(list: &[String], key: &str, issues: &mut Vec<Issue>) -> Vec<String> {
    for (i, n) in list.iter().enumerate() {
        if n.trim().is_empty() {
            issues.push(Issue { key: format!("{key}[{i}]"), reason: "is empty; remove it or write a name".into() });
        }
    }
    list.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect()
}

fn schedule(text: &str, key: &str, issues: &mut Vec<Issue>) -> Schedule {
    Schedule::parse(text).unwrap_or_else(|reason| {
        issues.push(Issue { key: key.into(), reason });
        Schedule::Daily { hour: 2, minute: 0 }
    })
}

fn days(v: i64, key: &str, example: &str, issues: &mut Vec<Issue>) -> i64 {
    if !(1..=3650).contains(&v) {
        issues.push(Issue { key: key.into(), reason: format!("must be between 1 and 3650 days, e.g. {example}") });
    }
    v
}

fn warn_days(v: Option<i64>, key: &str, issues: &mut Vec<Issue>) -> i64 {
    let d = v.unwrap_or(WARN_DAYS_DEFAULT);
    if !(0..=365).contains(&d) {
        issues.push(Issue {
            key: key.into(),
            reason: "must be between 0 (no warning: act at once) and 365 days, e.g. warn_days = 7".into(),
        });
    }
    d
}

/// A warning that can never be e-mailed must not be silent (issue 12 §3): `warn_days > 0` in
/// `[cleanup]` or `[license]` needs `[notify.smtp]` (`has_smtp`: the table is present; its
/// variables are checked with the other credentials). One issue per table that warns.
pub fn warnings_need_email(lc: &LifecycleConfig, has_smtp: bool) -> Vec<Issue> {
    if has_smtp {
        return Vec::new();
    }
    [("cleanup.warn_days", lc.cleanup.warn_days), ("license.warn_days", lc.license.warn_days)]
        .into_iter()
        .filter(|(_, days)| *days > 0)
        .map(|(key, days)| Issue {
            key: key.into(),
            reason: format!(
                "is {days}, but warnings are e-mailed and there is no [notify.smtp] table: configure \
                 [notify.smtp] (url_env, from, admins) so users are told, or set warn_days = 0 to act \
                 without warning"
            ),
        })
        .collect()
}

fn group(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// Validates the lifecycle tables against the configured targets.
///
/// # Errors
/// Every [`Issue`] found, in file order.
pub fn validate(s: &Sections<'_>, targets: &[TargetPolicy]) -> Result<LifecycleConfig, Vec<Issue>> {
    let mut issues = Vec::new();
    let c = s.cleanup;
    let cleanup = CleanupConfig {
        enabled: c.enabled,
        inactive_days: days(c.inactive_days, "cleanup.inactive_days", "inactive_days = 90", &mut issues),
        include_never_logged_in: c.include_never_logged_in,
        action: c.action,
        scope_groups: names(&c.scope_groups, "cleanup.scope_groups", &mut issues),
        scope_directories: names(&c.scope_directories, "cleanup.scope_directories", &mut issues),
        schedule: schedule(&c.schedule, "cleanup.schedule", &mut issues),
        warn_days: warn_days(c.warn_days, "cleanup.warn_days", &mut issues),
        warn_days_set: c.warn_days.is_some(),
    };
    if c.action == CleanupAction::RemoveLicense {
        for t in targets.iter().filter(|t| t.license_groups.is_empty()) {
            issues.push(Issue {
                key: "cleanup.action".into(),
                reason: format!(
                    "remove_license needs the licence groups of every target, but target {:?} has no license_groups; \
                     add e.g. license_groups = [\"jira-software-users\"] to it",
                    t.name
                ),
            });
        }
    }

    let l = s.license;
    let (access_group, license_group) = (group(&l.access_group), group(&l.license_group));
    let target = match group(&l.target) {
        Some(name) => match targets.iter().find(|t| t.name.eq_ignore_ascii_case(&name)) {
            Some(t) if t.product == Product::Crowd => {
                issues.push(Issue {
                    key: "license.target".into(),
                    reason: format!("target {name:?} is Crowd, which reports no licence seats; name a Jira, Confluence or Bitbucket target"),
                });
                None
            }
            Some(t) => Some(t.name.clone()),
            None => {
                issues.push(Issue { key: "license.target".into(), reason: format!("no [[target]] is named {name:?}") });
                None
            }
        },
        None => targets
            .iter()
            .find(|t| t.product == Product::Jira)
            .or_else(|| targets.iter().find(|t| t.product != Product::Crowd))
            .map(|t| t.name.clone()),
    };
    if l.enabled {
        if access_group.is_none() {
            issues.push(Issue {
                key: "license.access_group".into(),
                reason: "is required when the optimizer is enabled, e.g. access_group = \"jira-eligible\"".into(),
            });
        }
        if license_group.is_none() {
            issues.push(Issue {
                key: "license.license_group".into(),
                reason: "is required when the optimizer is enabled, e.g. license_group = \"jira-software-users\""
                    .into(),
            });
        }
        if access_group.is_some() && access_group == license_group {
            issues.push(Issue {
                key: "license.license_group".into(),
                reason: "must differ from access_group: the licence group is kept a subset of the access group".into(),
            });
        }
        if target.is_none() && l.target.is_none() {
            issues.push(Issue {
                key: "license.target".into(),
                reason: "the optimizer needs a Jira, Confluence or Bitbucket [[target]]".into(),
            });
        }
    }
    let license = LicenseConfig {
        enabled: l.enabled,
        access_group,
        license_group,
        inactive_days: days(l.inactive_days, "license.inactive_days", "inactive_days = 30", &mut issues),
        keep_free_seats: l.keep_free_seats,
        target,
        application_role: group(&l.application_role),
        schedule: schedule(&l.schedule, "license.schedule", &mut issues),
        warn_days: warn_days(l.warn_days, "license.warn_days", &mut issues),
        warn_days_set: l.warn_days.is_some(),
    };
    let reconcile = JobConfig {
        enabled: s.reconcile.enabled,
        schedule: schedule(&s.reconcile.schedule, "reconcile.schedule", &mut issues),
    };
    let activity = JobConfig {
        enabled: s.activity.enabled,
        schedule: schedule(&s.activity.schedule, "activity.schedule", &mut issues),
    };
    if issues.is_empty() {
        Ok(LifecycleConfig { cleanup, license, reconcile, activity })
    } else {
        Err(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jira() -> TargetPolicy {
        TargetPolicy { name: "jira".into(), product: Product::Jira, license_groups: vec![] }
    }

    fn check(cleanup: &str, license: &str) -> Result<LifecycleConfig, Vec<Issue>> {
        let c: CleanupFile = toml::from_str(cleanup).expect("cleanup toml");
        let l: LicenseFile = toml::from_str(license).expect("license toml");
        let j = JobFile::default();
        validate(&Sections { cleanup: &c, license: &l, reconcile: &j, activity: &j }, &[jira()])
    }

    fn keys(r: Result<LifecycleConfig, Vec<Issue>>) -> Vec<String> {
        r.expect_err("issues").into_iter().map(|i| i.key).collect()
    }

    #[test]
    fn the_documented_tables_parse_with_their_defaults() {
        let c = check(
            "enabled = true\ninactive_days = 90\ninclude_never_logged_in = true\naction = \"remove_license\"\nscope_groups = []\nscope_directories = []\nschedule = \"daily 02:00\"",
            "enabled = true\naccess_group = \"jira-eligible\"\nlicense_group = \"jira-software-users\"\ninactive_days = 30\nkeep_free_seats = 5",
        );
        // remove_license with a target that has no license_groups is refused.
        assert_eq!(keys(c), ["cleanup.action"]);
        let ok = check("enabled = true", "enabled = true\naccess_group = \"a\"\nlicense_group = \"b\"").expect("valid");
        assert_eq!(ok.cleanup.inactive_days, 90);
        assert!(ok.cleanup.include_never_logged_in);
        assert_eq!(ok.license.keep_free_seats, 5);
        assert_eq!(ok.license.target.as_deref(), Some("jira"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_with_their_key() {
        assert!(toml::from_str::<CleanupFile>("inactive_dayz = 3").is_err());
        assert!(toml::from_str::<CleanupFile>("action = \"archive\"").is_err());
        let k = keys(check("inactive_days = 0\nschedule = \"weekly\"\nscope_groups = [\" \"]", "enabled = true"));
        assert_eq!(
            k,
            [
                "cleanup.inactive_days",
                "cleanup.scope_groups[0]",
                "cleanup.schedule",
                "license.access_group",
                "license.license_group"
            ]
        );
        assert_eq!(keys(check("", "target = \"nope\"")), ["license.target"]);
    }

    #[test]
    fn warn_days_defaults_to_no_warning_says_whether_it_was_written_and_is_bounded() {
        let d = check("", "").expect("valid");
        assert_eq!((d.cleanup.warn_days, d.cleanup.warn_days_set), (0, false));
        assert_eq!((d.license.warn_days, d.license.warn_days_set), (0, false));
        let on = check("warn_days = 7", "warn_days = 14").expect("valid");
        assert_eq!((on.cleanup.warn_days, on.cleanup.warn_days_set), (7, true));
        assert_eq!(on.license.warn_days, 14);
        assert_eq!(keys(check("warn_days = -1", "warn_days = 400")), ["cleanup.warn_days", "license.warn_days"]);
    }

    #[test]
    fn warning_without_smtp_is_refused_naming_both_keys() {
        let on = check("warn_days = 7", "warn_days = 0").expect("valid");
        assert!(warnings_need_email(&on, true).is_empty());
        let found = warnings_need_email(&on, false);
        assert_eq!(found.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["cleanup.warn_days"]);
        assert!(found[0].reason.contains("[notify.smtp]") && found[0].reason.contains("warn_days = 0"), "{found:?}");
        let both = check("warn_days = 7", "warn_days = 14").expect("valid");
        assert_eq!(warnings_need_email(&both, false).len(), 2);
        assert!(warnings_need_email(&check("", "").expect("valid"), false).is_empty(), "the default warns nobody");
    }

    #[test]
    fn actions_parse_in_config_and_cli_spellings() {
        assert_eq!(CleanupAction::parse("remove-license"), Some(CleanupAction::RemoveLicense));
        assert_eq!(CleanupAction::parse("Remove_License"), Some(CleanupAction::RemoveLicense));
        assert_eq!(CleanupAction::parse("nuke"), None);
    }
}
