//! Retry rules, pure: exponential backoff with jitter, `Retry-After` as a floor, and when a
//! failing intent becomes a dead letter (attempts or age exhausted, or a permanent error).

use std::time::Duration;

use crate::atlassian::Failure;
use crate::config::Delivery;

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this long.
    Retry(Duration),
    /// Give up: the intent becomes a dead letter, with the reason.
    Bury(String),
}

/// The delay before attempt `attempt + 1` after `attempt` failures (1-based), without jitter:
/// `initial * 2^(attempt-1)`, capped at `max`.
pub fn backoff(attempt: u32, cfg: &Delivery) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1).min(30)).unwrap_or(u32::MAX);
    cfg.backoff_initial.saturating_mul(factor).min(cfg.backoff_max)
}

/// "Equal jitter": half the delay fixed, half random, so a burst of failures does not retry in
/// lock-step. `unit` is a random number in [0, 1).
pub fn jittered(delay: Duration, unit: f64) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// Decides after `attempt` failed attempts, `age` after the intent was enqueued.
pub fn decide(failure: &Failure, attempt: u32, age: Duration, cfg: &Delivery, unit: f64) -> Decision {
    match failure {
        Failure::Permanent { reason } => Decision::Bury(format!("permanent failure: {reason}")),
        Failure::Retryable { reason, retry_after } => {
            if attempt >= cfg.max_attempts {
                return Decision::Bury(format!("gave up after {attempt} attempts; last error: {reason}"));
            }
            if age >= cfg.max_age {
                return Decision::Bury(format!("gave up after {}s; last error: {reason}", age.as_secs()));
            }
            let wait = jittered(backoff(attempt, cfg), unit);
            // The target said when to come back: never earlier than that.
            Decision::Retry(retry_after.map_or(wait, |ra| wait.max(ra)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Delivery {
        Delivery {
            concurrency: 4,
            max_attempts: 5,
            max_age: Duration::from_secs(3600),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(5),
            ..Delivery::default()
        }
    }

    #[test]
    fn backoff_doubles_per_attempt_up_to_the_cap() {
        let c = cfg();
        let steps: Vec<u128> = (1..=7).map(|a| backoff(a, &c).as_millis()).collect();
        assert_eq!(steps, vec![500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(backoff(u32::MAX, &c), c.backoff_max);
    }

    #[test]
    fn jitter_stays_between_half_and_the_full_delay() {
        let d = Duration::from_secs(4);
        assert_eq!(jittered(d, 0.0), Duration::from_secs(2));
        assert!(jittered(d, 0.999) < d && jittered(d, 0.999) > Duration::from_millis(3990));
        assert_eq!(jittered(d, 7.0), d);
    }

    #[test]
    fn retry_after_is_a_floor_on_the_wait() {
        let f = Failure::Retryable { reason: "429".into(), retry_after: Some(Duration::from_secs(2)) };
        assert_eq!(decide(&f, 1, Duration::ZERO, &cfg(), 0.0), Decision::Retry(Duration::from_secs(2)));
        let long = Failure::Retryable { reason: "503".into(), retry_after: Some(Duration::from_millis(10)) };
        assert_eq!(decide(&long, 4, Duration::ZERO, &cfg(), 0.0), Decision::Retry(Duration::from_millis(2000)));
    }

    #[test]
    fn permanent_failures_and_exhausted_retries_become_dead_letters() {
        let c = cfg();
        assert!(
            matches!(decide(&Failure::Permanent { reason: "403".into() }, 1, Duration::ZERO, &c, 0.5), Decision::Bury(r) if r.contains("403"))
        );
        let f = Failure::Retryable { reason: "503".into(), retry_after: None };
        assert!(matches!(decide(&f, 5, Duration::ZERO, &c, 0.5), Decision::Bury(r) if r.contains("5 attempts")));
        assert!(matches!(decide(&f, 1, Duration::from_secs(3600), &c, 0.5), Decision::Bury(_)));
        assert!(matches!(decide(&f, 4, Duration::ZERO, &c, 0.5), Decision::Retry(_)));
    }
}
