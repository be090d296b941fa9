//! Whether the store can write, and why not: the state behind 503s on writes, `/readyz` and
//! `scimbridge_store_writable`. A write that sled could not make durable (a full disk, an I/O
//! error) marks the store unwritable; the background thread then probes the data dir with a
//! real write until space is back (see `reopen.rs` for what happens to the failed write).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often an unwritable store checks whether it can write again.
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Bytes the probe writes and syncs: two of sled's 512 KiB log segments, so "writable" means
/// sled can roll to a new segment, not just that a byte fits.
const PROBE_BYTES: usize = 1 << 20;

pub(crate) struct Health {
    writable: AtomicBool,
    reopens: AtomicU64,
    state: Mutex<State>,
    /// Woken when the store becomes writable again.
    pub(crate) recovered: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    reason: Option<String>,
    since: Option<String>,
    needs_reopen: bool,
    last_probe: Option<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            writable: AtomicBool::new(true),
            reopens: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            recovered: tokio::sync::Notify::new(),
        }
    }
}

impl Health {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn count_reopen(&self) {
        self.reopens.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn reopens(&self) -> u64 {
        self.reopens.load(Ordering::SeqCst)
    }

    pub(crate) fn is_writable(&self) -> bool {
        self.writable.load(Ordering::SeqCst)
    }

    /// The reason writes are refused, when they are.
    pub(crate) fn reason(&self) -> Option<String> {
        if self.is_writable() {
            return None;
        }
        let s = self.state();
        Some(s.reason.clone().unwrap_or_else(|| "it cannot write".into()))
    }

    /// Since when (RFC 3339), while unwritable.
    pub(crate) fn since(&self) -> Option<String> {
        if self.is_writable() {
            None
        } else {
            self.state().since.clone()
        }
    }

    /// A write failed for `reason`.
    pub(crate) fn failed(&self, reason: String) {
        let mut s = self.state();
        if self.writable.swap(false, Ordering::SeqCst) {
            tracing::error!(reason = %reason, "The store cannot write; SCIM writes answer 503 until it can again.");
            s.since = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        s.reason = Some(reason);
        s.last_probe = Some(Instant::now());
    }

    pub(crate) fn set_needs_reopen(&self, v: bool) {
        self.state().needs_reopen = v;
    }

    pub(crate) fn needs_reopen(&self) -> bool {
        self.state().needs_reopen
    }

    /// Whether a probe is due now (at most one per `PROBE_EVERY`); notes it as made.
    pub(crate) fn probe_due(&self) -> bool {
        let mut s = self.state();
        let due = s.last_probe.is_none_or(|t| t.elapsed() >= PROBE_EVERY);
        if due {
            s.last_probe = Some(Instant::now());
        }
        due
    }

    /// The probe wrote: writes are accepted again.
    pub(crate) fn writable_again(&self) {
        let mut s = self.state();
        if !self.writable.swap(true, Ordering::SeqCst) {
            tracing::warn!(was = ?s.reason, "The store can write again; writes and deliveries resume.");
        }
        s.reason = None;
        s.since = None;
        drop(s);
        self.recovered.notify_waiters();
    }

    /// The probe failed again; keeps the newest reason.
    pub(crate) fn still_failing(&self, reason: String) {
        self.state().reason = Some(reason);
    }
}

/// Writes, syncs and removes a probe file in `dir`: the cheapest honest test that a write of
/// sled's size would succeed now.
pub(crate) fn probe_space(dir: &std::path::Path) -> std::io::Result<()> {
    let path = dir.join(".scimbridge-write-probe");
    let result = (|| {
        let mut f = std::fs::File::create(&path)?;
        f.write_all(&vec![0u8; PROBE_BYTES])?;
        f.sync_data()
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// Says why an I/O error stops writes, in words an operator acts on.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    let full = e.kind() == std::io::ErrorKind::StorageFull
        || e.raw_os_error() == Some(28)
        || text.contains("No space left on device")
        || text.contains("os error 28")
        || text.contains("StorageFull");
    let quota = e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(122)
        || text.contains("Disk quota exceeded")
        || text.contains("os error 122");
    if full {
        "the store is out of space (no space left on device)".into()
    } else if quota {
        "the store is out of space (disk quota exceeded)".into()
    } else {
        format!("the store cannot write ({text})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_named_out_of_space_whatever_sled_made_of_the_error() {
        let raw = std::io::Error::from_raw_os_error(28);
        assert_eq!(describe_io(&raw), "the store is out of space (no space left on device)");
        // sled 0.34 clones its global error as a new error carrying the old one's Debug text.
        let cloned = std::io::Error::new(raw.kind(), format!("{raw:?}"));
        assert_eq!(describe_io(&cloned), "the store is out of space (no space left on device)");
        let quota = std::io::Error::from_raw_os_error(122);
        assert_eq!(describe_io(&quota), "the store is out of space (disk quota exceeded)");
        let other = std::io::Error::from_raw_os_error(5);
        assert!(describe_io(&other).starts_with("the store cannot write ("), "{}", describe_io(&other));
    }

    #[test]
    fn health_refuses_until_the_probe_succeeds_and_then_wakes_waiters() {
        let h = Health::default();
        assert!(h.is_writable() && h.reason().is_none());
        h.failed("the store is out of space (no space left on device)".into());
        assert!(!h.is_writable());
        assert_eq!(h.reason().as_deref(), Some("the store is out of space (no space left on device)"));
        assert!(h.since().is_some());
        assert!(!h.probe_due(), "a probe right after the failure is not due yet");
        h.writable_again();
        assert!(h.is_writable() && h.reason().is_none() && h.since().is_none());
    }
}
