//! Storage errors. A `Scim` variant carries a protocol error found while checking a rule inside
//! the transaction (uniqueness, unknown member), so the caller can answer it as is.

use crate::scim::ScimError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {}", sled_text(.0))]
    Sled(#[from] sled::Error),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("store layout version {0} is newer than this build understands")]
    Layout(u64),
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// Refused without trying: the store cannot write now (the reason, see `health.rs`).
    #[error("{0}")]
    Unwritable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// sled's text, led by what an I/O failure means for the operator (`out of space`): the CLI
/// prints this when a command cannot write.
fn sled_text(e: &sled::Error) -> String {
    match e {
        sled::Error::Io(io) if !io.to_string().starts_with("could not acquire lock") => {
            format!("{} ({io})", super::health::describe_io(io))
        }
        other => other.to_string(),
    }
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

impl StoreError {
    /// True when opening failed because another process holds the store (sled admits one):
    /// sled 0.34 reports its failed file lock only as this message.
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Sled(sled::Error::Io(e)) if e.to_string().starts_with("could not acquire lock"))
    }

    /// Why the store could not write, when this is an I/O failure of the store (a full disk, a
    /// failed sync) or a refusal while the store is known not to write.
    pub fn unwritable_reason(&self) -> Option<String> {
        match self {
            StoreError::Sled(sled::Error::Io(e)) if !self.is_locked() => Some(super::health::describe_io(e)),
            StoreError::Unwritable(why) => Some(why.clone()),
            _ => None,
        }
    }

    /// The error a SCIM client sees: protocol errors as they are; a write the store could not
    /// make durable a 503 (with `Retry-After`, see `http/error.rs`) that says why; anything else
    /// a bare 500 (the internal text goes to the log, not to the client).
    pub fn to_scim(&self) -> ScimError {
        match self {
            StoreError::Scim(e) => e.clone(),
            _ => match self.unwritable_reason() {
                Some(why) => ScimError::new(
                    503,
                    None,
                    format!("Nothing was stored: {why}. The write was not made durable; retry later."),
                ),
                None => ScimError::internal("The server could not complete the request."),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_a_503_that_says_the_store_is_out_of_space() {
        let e = StoreError::Sled(sled::Error::Io(std::io::Error::from_raw_os_error(28)));
        let scim = e.to_scim();
        assert_eq!(scim.status, 503);
        assert!(scim.detail.contains("out of space"), "{}", scim.detail);
        assert!(scim.detail.contains("Nothing was stored"), "{}", scim.detail);
        let refused = StoreError::Unwritable("the store is out of space (no space left on device)".into());
        assert_eq!(refused.to_scim().status, 503);
        assert!(refused.to_scim().detail.contains("out of space"));
        assert!(e.to_string().contains("out of space"), "the CLI's message names the cause: {e}");
    }

    #[test]
    fn other_io_errors_are_a_503_naming_the_cause_and_the_rest_stays_a_bare_500() {
        let e = StoreError::Sled(sled::Error::Io(std::io::Error::from_raw_os_error(5)));
        let scim = e.to_scim();
        assert_eq!(scim.status, 503);
        assert!(scim.detail.contains("cannot write"), "{}", scim.detail);
        let corrupt = StoreError::Corrupt("bad bytes".into()).to_scim();
        assert_eq!(corrupt.status, 500);
        assert!(!corrupt.detail.contains("bad bytes"), "internal text stays in the log");
        let locked = StoreError::Sled(sled::Error::Io(std::io::Error::other("could not acquire lock on \"db\"")));
        assert!(locked.unwritable_reason().is_none(), "a held lock is not a full disk");
    }
}
