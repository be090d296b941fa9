//! Actions waiting out a grace period (issue 12 §3): one entry per warned account in the
//! `grace` tree, key `kind 0x00 target 0x00 lower-cased username` (kind = `cleanup` | `license`).
//! An entry is written in the same transaction as the audit record of its warning, and removed
//! in the same transaction as the record of how it ended, so a crash or restart during the grace
//! period neither loses a warned action nor warns twice. The warning e-mail's notice (when one is
//! sent) is written in that same transaction, so it is neither lost nor sent twice either. The
//! entry itself is a plain fact list;
//! `lifecycle/grace.rs` decides what it means.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::Transactional;

use super::audit::{encode, index_keys};
use super::error::{StoreError, StoreResult};
use super::keys;
use super::notices::NoticeRow;
use super::operator::Operator;
use super::{tree, Store};

const GRACE: &str = "grace";

/// One warned account and the action that falls due after its grace period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraceEntry {
    /// The job that selected it: `cleanup` or `license`.
    pub kind: String,
    pub target: String,
    /// The Atlassian username.
    pub username: String,
    /// The delivery lane (the SCIM id when the IdP provisioned the user).
    pub user_id: String,
    /// Where the warning goes (the account's Atlassian email); `None` when the account has none.
    #[serde(default)]
    pub email: Option<String>,
    pub warned_at: String,
    pub warned_ms: i64,
    pub due_at: String,
    pub due_ms: i64,
    /// What will happen (`deactivate`, `remove_license`…).
    pub action: String,
    /// Why the account was selected.
    pub reason: String,
    /// The intents (policy `Intent` JSON) queued when the grace period ends.
    pub intents: Vec<Value>,
    /// The run that warned (its actor and run id are carried by the intents queued at due time).
    pub operator: Operator,
}

impl GraceEntry {
    fn key(&self) -> Vec<u8> {
        grace_key(&self.kind, &self.target, &self.username)
    }
}

fn grace_key(kind: &str, target: &str, username: &str) -> Vec<u8> {
    let mut k = keys::pair(kind, target);
    k.push(keys::SEP);
    k.extend_from_slice(username.to_lowercase().as_bytes());
    k
}

fn decode(v: &[u8]) -> StoreResult<GraceEntry> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("grace entry: {e}")))
}

impl Store {
    fn grace_tree(&self) -> StoreResult<sled::Tree> {
        Ok(self.inner.db().open_tree(GRACE)?)
    }

    /// The pending entry of one account, if it was warned and its action has not ended.
    ///
    /// # Errors
    /// On a sled error or an undecodable entry.
    pub fn grace_get(&self, kind: &str, target: &str, username: &str) -> StoreResult<Option<GraceEntry>> {
        self.grace_tree()?.get(grace_key(kind, target, username))?.map(|v| decode(&v)).transpose()
    }

    /// Every pending entry, in key order.
    ///
    /// # Errors
    /// On a sled error or an undecodable entry.
    pub fn grace_entries(&self) -> StoreResult<Vec<GraceEntry>> {
        self.grace_tree()?.iter().values().map(|v| decode(&v?)).collect()
    }

    /// Records a warning: the entry, its audit record (indexed under `subject`, the username
    /// and the run) and the warning e-mail's `notice` (prepared by [`Store::notice_row`]; `None`
    /// when none is sent), in one transaction. Returns false, writing nothing, when the account
    /// already has a pending entry of this kind: nobody is warned twice for one action.
    ///
    /// # Errors
    /// On a storage error; nothing is written then.
    pub fn grace_warn(
        &self,
        entry: &GraceEntry,
        subject: &str,
        audit: &Value,
        notice: Option<&NoticeRow>,
    ) -> StoreResult<bool> {
        let _guard = self.lock();
        let grace = self.grace_tree()?;
        let key = entry.key();
        if grace.contains_key(&key)? {
            return Ok(false);
        }
        let bytes = serde_json::to_vec(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.with_audit(&grace, subject, audit, notice, |g| {
            g.insert(key.as_slice(), bytes.as_slice())?;
            Ok(())
        })?;
        if notice.is_some() {
            self.notice_written();
        }
        Ok(true)
    }

    /// Ends a pending entry with the audit record of how it ended, in one transaction; false when
    /// it was no longer pending (another sweep ended it).
    ///
    /// # Errors
    /// On a storage error; nothing is written then.
    pub fn grace_close(&self, entry: &GraceEntry, subject: &str, audit: &Value) -> StoreResult<bool> {
        let _guard = self.lock();
        let grace = self.grace_tree()?;
        let key = entry.key();
        if !grace.contains_key(&key)? {
            return Ok(false);
        }
        self.with_audit(&grace, subject, audit, None, |g| {
            g.remove(key.as_slice())?;
            Ok(())
        })?;
        Ok(true)
    }

    /// Runs `change` on the grace tree, appends `audit` and writes `notice` in one transaction
    /// (writer lock held by the caller).
    fn with_audit<F>(
        &self,
        grace: &sled::Tree,
        subject: &str,
        audit: &Value,
        notice: Option<&NoticeRow>,
        change: F,
    ) -> StoreResult<()>
    where
        F: Fn(&sled::transaction::TransactionalTree) -> Result<(), sled::transaction::UnabortableTransactionError>,
    {
        let seq = self.next_seq();
        let bytes = encode(audit)?;
        let index = index_keys(subject, audit, seq);
        let (audit_tree, by_subject) = (self.t(tree::AUDIT), self.t(tree::AUDIT_BY_SUBJECT));
        let notices = self.notice_tree()?;
        (grace, &*audit_tree, &*by_subject, &notices).transaction(|(g, a, s, n)| {
            change(g)?;
            if let Some(row) = notice {
                row.put(n)?;
            }
            super::audit::put_in(a, s, seq, &bytes, &index)?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        self.mark_committed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user: &str) -> GraceEntry {
        GraceEntry {
            kind: "cleanup".into(),
            target: "jira".into(),
            username: user.into(),
            user_id: format!("atlassian:{}", user.to_lowercase()),
            email: Some(format!("{user}@example.com")),
            warned_at: "2026-01-01T00:00:00Z".into(),
            warned_ms: 0,
            due_at: "2026-01-08T00:00:00Z".into(),
            due_ms: 7 * 86_400_000,
            action: "deactivate".into(),
            reason: "no activity for 100 days".into(),
            intents: vec![],
            operator: Operator::new("test"),
        }
    }

    #[test]
    fn a_warning_is_recorded_once_with_its_audit_record_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let store = Store::open(dir.path()).expect("open");
            store.want_notices(["user_warning".to_string()]);
            let rec = serde_json::json!({"type": "warning", "username": "Ann"});
            let mail = |to: &str| serde_json::json!({"event": "user_warning", "to": to});
            let row = store.notice_row(&mail("ann@example.com")).expect("row");
            assert!(store.grace_warn(&entry("Ann"), "atlassian:ann", &rec, row.as_ref()).expect("warn"));
            let again = store.notice_row(&mail("ann@example.com")).expect("row");
            assert!(
                !store.grace_warn(&entry("ANN"), "atlassian:ann", &rec, again.as_ref()).expect("warn again"),
                "never twice"
            );
            assert_eq!(store.audit_of("atlassian:ann").expect("audit").len(), 1);
            store.flush_blocking().expect("flush");
        }
        let store = Store::open(dir.path()).expect("reopen");
        let pending = store.grace_entries().expect("entries");
        assert_eq!(pending.len(), 1);
        let mails = store.pending_notices().expect("notices");
        assert_eq!(mails.len(), 1, "the warning's e-mail is written with it, once: {mails:?}");
        assert_eq!(mails[0].notice["to"], "ann@example.com");
        assert!(store.grace_get("cleanup", "jira", "ann").expect("get").is_some());
        let closed = serde_json::json!({"type": "grace", "username": "Ann"});
        assert!(store.grace_close(&pending[0], "atlassian:ann", &closed).expect("close"));
        assert!(!store.grace_close(&pending[0], "atlassian:ann", &closed).expect("close again"));
        assert!(store.grace_entries().expect("entries").is_empty());
        assert_eq!(store.audit_of("atlassian:ann").expect("audit").len(), 2);
    }
}
