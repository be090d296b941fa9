//! The brake's rule: at most `limit` destructive intents are let through per sliding window;
//! the rest are held. Pure: counts and times in, a verdict out.

use std::collections::VecDeque;
use std::time::Duration;

/// `[guard]`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    /// Destructive intents per window, across all sources and targets; 0 = no brake.
    pub max_offboardings: u64,
    pub window: Duration,
    /// Also at most this share of known users (whichever is lower).
    pub max_fraction: Option<f64>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard { max_offboardings: 50, window: Duration::from_secs(3600), max_fraction: None }
    }
}

/// Whether a delivered intent of this action type (`policy::IntentAction`'s `type`) takes
/// access away: the actions the brake counts and holds.
pub fn is_destructive(action_type: &str) -> bool {
    matches!(action_type, "deactivate" | "delete" | "anonymize" | "remove_license")
}

/// What becomes of one destructive intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Deliver,
    Hold,
}

impl Guard {
    /// No brake at all (`max_offboardings = 0`).
    pub fn off() -> Guard {
        Guard { max_offboardings: 0, ..Guard::default() }
    }

    pub fn enabled(&self) -> bool {
        self.max_offboardings > 0
    }

    pub fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }

    /// The destructive intents allowed per window with `known_users` users; None = no brake.
    /// The share never rounds below one: a single leaver is never a mass offboarding.
    pub fn limit(&self, known_users: u64) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        let by_share = self.max_fraction.map(|f| ((known_users as f64 * f).floor() as u64).max(1));
        Some(by_share.map_or(self.max_offboardings, |s| s.min(self.max_offboardings)))
    }

    /// The verdict for the next destructive intent when `used` were let through in the window.
    pub fn verdict(&self, used: u64, known_users: u64) -> Verdict {
        match self.limit(known_users) {
            Some(limit) if used >= limit => Verdict::Hold,
            _ => Verdict::Deliver,
        }
    }

    /// Whether a run of `count` destructive intents, with `used` already let through in the
    /// window, goes over the limit (a lifecycle `--apply` refuses up front then).
    pub fn run_exceeds(&self, count: u64, used: u64, known_users: u64) -> bool {
        count > 0 && self.limit(known_users).is_some_and(|limit| used.saturating_add(count) > limit)
    }
}

/// The times (ms since the epoch) and job numbers of the destructive intents let through,
/// oldest first, pruned to the window.
#[derive(Debug, Default, Clone)]
pub struct Window {
    admitted: VecDeque<(u64, u64)>,
}

impl Window {
    /// Forgets what is older than `window_ms` before `now_ms`; returns what was forgotten (so
    /// its durable copy can go too).
    pub fn prune(&mut self, now_ms: u64, window_ms: u64) -> Vec<(u64, u64)> {
        let since = now_ms.saturating_sub(window_ms);
        let mut gone = Vec::new();
        while self.admitted.front().is_some_and(|(t, _)| *t <= since) {
            gone.extend(self.admitted.pop_front());
        }
        gone
    }

    /// How many were let through in the window (call `prune` first).
    pub fn used(&self) -> u64 {
        self.admitted.len() as u64
    }

    pub fn admit(&mut self, at_ms: u64, seq: u64) {
        // Kept in time order even if a caller's clock is behind another's.
        let pos = self.admitted.iter().rposition(|(t, _)| *t <= at_ms).map_or(0, |p| p + 1);
        self.admitted.insert(pos, (at_ms, seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lets_fifty_through_per_hour_and_holds_the_rest() {
        let g = Guard::default();
        assert_eq!((g.max_offboardings, g.window_ms(), g.max_fraction), (50, 3_600_000, None));
        assert_eq!(g.verdict(49, 5000), Verdict::Deliver);
        assert_eq!(g.verdict(50, 5000), Verdict::Hold);
        assert_eq!(Guard::off().verdict(1_000_000, 5000), Verdict::Deliver, "0 = no brake");
    }

    #[test]
    fn the_share_of_known_users_applies_when_lower_and_never_below_one() {
        let g = Guard { max_fraction: Some(0.05), ..Guard::default() };
        assert_eq!(g.limit(400), Some(20), "5 % of 400 is lower than 50");
        assert_eq!(g.limit(10_000), Some(50), "50 is lower than 5 % of 10,000");
        assert_eq!(g.limit(3), Some(1), "never below one");
        assert_eq!(Guard { max_fraction: Some(0.5), ..Guard::off() }.limit(10), None);
    }

    #[test]
    fn a_run_exceeds_when_it_would_go_over_what_is_left_of_the_window() {
        let g = Guard::default();
        assert!(!g.run_exceeds(50, 0, 100));
        assert!(g.run_exceeds(51, 0, 100));
        assert!(g.run_exceeds(11, 40, 100));
        assert!(!g.run_exceeds(0, 60, 100), "a run that takes nothing away never exceeds");
        assert!(!Guard::off().run_exceeds(10_000, 0, 100));
    }

    #[test]
    fn only_the_actions_that_take_access_away_are_destructive() {
        for a in ["deactivate", "delete", "anonymize", "remove_license"] {
            assert!(is_destructive(a), "{a}");
        }
        for a in ["create_user", "reactivate", "restore_license", "add_to_group", "remove_from_group", ""] {
            assert!(!is_destructive(a), "{a}");
        }
    }

    #[test]
    fn the_window_slides() {
        let mut w = Window::default();
        w.admit(1_000, 1);
        w.admit(2_000, 2);
        w.admit(1_500, 3);
        assert_eq!(w.prune(3_000, 5_000), vec![]);
        assert_eq!(w.used(), 3);
        assert_eq!(w.prune(6_600, 5_000), vec![(1_000, 1), (1_500, 3)], "oldest first, in time order");
        assert_eq!(w.used(), 1);
        assert_eq!(w.prune(7_000, 5_000), vec![(2_000, 2)], "exactly window_ms old is outside");
    }
}
