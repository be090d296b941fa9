//! The time the lifecycle jobs and the grace period live by (issue 12 §3). Production uses
//! [`SystemClock`]; an in-process test hands the server a [`ManualClock`] through
//! `server::start_with_clock` and moves it forward by days without waiting. Nothing reachable
//! over HTTP or from the CLI can set a clock: it is chosen once, by the Rust code that assembles
//! the server.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// A source of "now" that can also wait until a given time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `now() >= at` (at once when it already is).
    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The shared handle every component holds.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that only moves when told to ([`ManualClock::advance`], [`ManualClock::set`]); whoever
/// sleeps on it wakes when a move reaches their time. For tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    moved: tokio::sync::Notify,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<ManualClock> {
        Arc::new(ManualClock { now: Mutex::new(start), moved: tokio::sync::Notify::new() })
    }

    /// Moves the clock forward (a negative duration is ignored: time does not run back).
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if by > chrono::Duration::zero() {
            *now += by;
        }
        drop(now);
        self.moved.notify_waiters();
    }

    /// Sets the time (not earlier than it is).
    pub fn set(&self, to: DateTime<Utc>) {
        let by = to - self.now();
        self.advance(by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                // Registered before the check, so a move between the two is not missed.
                let moved = self.moved.notified();
                if self.now() >= at {
                    return;
                }
                moved.await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_moved_past_their_time() {
        let clock = ManualClock::new(Utc::now());
        let start = clock.now();
        let c = clock.clone();
        let sleeper = tokio::spawn(async move { c.sleep_until(start + chrono::Duration::days(7)).await });
        clock.advance(chrono::Duration::days(3));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "three days are not seven");
        clock.advance(chrono::Duration::days(5));
        tokio::time::timeout(std::time::Duration::from_secs(5), sleeper).await.expect("woke").expect("joined");
        clock.advance(chrono::Duration::days(-30));
        assert_eq!(clock.now(), start + chrono::Duration::days(8), "time does not run back");
    }
}
