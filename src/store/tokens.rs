//! Bearer tokens issued by `scimbridge token new` or the first `serve`: only a SHA-256 hash is
//! stored, so a copy of the data dir does not reveal a usable token.

use serde::{Deserialize, Serialize};

use super::error::{StoreError, StoreResult};
use super::Store;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    pub created: String,
    /// `scim` for IdP tokens, `admin` for the admin API.
    #[serde(default = "default_scope")]
    pub scope: String,
}

fn default_scope() -> String {
    "scim".to_string()
}

impl Store {
    pub fn put_token(&self, rec: &TokenRecord) -> StoreResult<()> {
        let bytes = serde_json::to_vec(rec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        {
            let _guard = self.lock();
            self.tokens_tree().insert(rec.name.as_bytes(), bytes)?;
            self.mark_committed();
            self.inner.tokens_version.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.flush_blocking()?;
        Ok(())
    }

    /// Removes a token; true if it existed.
    pub fn revoke_token(&self, name: &str) -> StoreResult<bool> {
        let existed = {
            let _guard = self.lock();
            let existed = self.tokens_tree().remove(name.as_bytes())?.is_some();
            self.mark_committed();
            self.inner.tokens_version.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            existed
        };
        self.flush_blocking()?;
        Ok(existed)
    }

    /// Changes whenever the stored token set changes (in this process).
    pub fn tokens_version(&self) -> u64 {
        self.inner.tokens_version.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.tokens_tree()
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }
}
