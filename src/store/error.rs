//! Storage errors. A `Scim` variant carries a protocol error found while checking a rule inside
//! the transaction (uniqueness, unknown member), so the caller can answer it as is.

use crate::scim::ScimError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("store layout version {0} is newer than this build understands")]
    Layout(u64),
    #[error(transparent)]
    Scim(#[from] ScimError),
}

pub type StoreResult<T> = Result<T, StoreError>;

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

    /// The error a SCIM client sees: protocol errors as they are, anything else a bare 500
    /// (the internal text goes to the log, not to the client).
    pub fn to_scim(&self) -> ScimError {
        match self {
            StoreError::Scim(e) => e.clone(),
            _ => ScimError::internal("The server could not complete the request."),
        }
    }
}
