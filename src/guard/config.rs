//! `[guard]` as written, and its validation.

use std::time::Duration;

use serde::Deserialize;

use super::Guard;
use crate::config::ConfigIssue;

/// `[guard]`: the mass-offboarding brake.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardFile {
    /// Destructive intents (deactivate, delete, anonymize, remove_license) let through per
    /// window, across all sources and targets; beyond it they are held. 0 = no brake. Default 50.
    pub max_offboardings: Option<u64>,
    /// The sliding window, seconds. Default 3600.
    pub window_secs: Option<u64>,
    /// Also at most this share of known users (0 < share ≤ 1), whichever is lower.
    pub max_fraction: Option<f64>,
}

/// The validated brake; every problem is added to `issues`, naming its key.
pub fn validate(file: &GuardFile, issues: &mut Vec<ConfigIssue>) -> Guard {
    let d = Guard::default();
    let mut issue = |key: &str, reason: &str| {
        issues.push(ConfigIssue { key: format!("guard.{key}"), reason: reason.to_string() });
    };
    let window_secs = file.window_secs.unwrap_or(d.window.as_secs());
    if window_secs == 0 || window_secs > 30 * 24 * 3600 {
        issue("window_secs", "must be between 1 and 2592000 seconds (30 days), for example window_secs = 3600");
    }
    if let Some(f) = file.max_fraction {
        if !(f > 0.0 && f <= 1.0) {
            issue("max_fraction", "must be a share greater than 0 and at most 1, for example max_fraction = 0.05");
        }
    }
    Guard {
        max_offboardings: file.max_offboardings.unwrap_or(d.max_offboardings),
        window: Duration::from_secs(window_secs.max(1)),
        max_fraction: file.max_fraction,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> (Guard, Vec<String>) {
        let file: GuardFile = toml::from_str(toml_text).expect("toml");
        let mut issues = Vec::new();
        let g = validate(&file, &mut issues);
        (g, issues.into_iter().map(|i| i.key).collect())
    }

    #[test]
    fn defaults_and_bad_values_name_their_key() {
        assert_eq!(parse(""), (Guard::default(), vec![]));
        let (g, issues) = parse("max_offboardings = 0\nwindow_secs = 60\nmax_fraction = 0.1");
        assert_eq!((g.max_offboardings, g.window.as_secs(), g.max_fraction, issues.len()), (0, 60, Some(0.1), 0));
        assert_eq!(parse("window_secs = 0").1, vec!["guard.window_secs"]);
        assert_eq!(parse("max_fraction = 1.5").1, vec!["guard.max_fraction"]);
        assert_eq!(parse("max_fraction = 0.0").1, vec!["guard.max_fraction"]);
        assert!(toml::from_str::<GuardFile>("max_offboarding = 5").is_err(), "a typo fails");
    }
}
