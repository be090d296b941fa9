//! Optional redaction of personal data in log lines (`log.redact_personal_data = true`): names
//! are replaced by a short, stable SHA-256 prefix, so an operator can still follow one person
//! through the log (and find them with `scimbridge audit`, which is not redacted) while the log
//! itself carries no usernames.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

static REDACT: AtomicBool = AtomicBool::new(false);

/// Turns redaction on or off for the whole process (set once at start).
pub fn set_enabled(on: bool) {
    REDACT.store(on, Ordering::Relaxed);
}

/// A personal value as it may appear in a log line.
pub struct Pii<'a>(pub &'a str);

impl fmt::Display for Pii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if REDACT.load(Ordering::Relaxed) {
            let d = Sha256::digest(self.0.as_bytes());
            write!(f, "sha256:{}", hex::encode(&d[..6]))
        } else {
            f.write_str(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_hashed_stably_when_redaction_is_on() {
        set_enabled(true);
        let a = Pii("alice@example.com").to_string();
        assert!(a.starts_with("sha256:") && a.len() == 19 && !a.contains("alice"), "{a}");
        assert_eq!(a, Pii("alice@example.com").to_string());
        set_enabled(false);
        assert_eq!(Pii("alice@example.com").to_string(), "alice@example.com");
    }
}
