//! Links between SCIM users and existing Atlassian accounts, per target (issue 9, "Linking
//! existing accounts"), the review list of users whose match was ambiguous, and the intents held
//! while a user waits for review.
//!
//! Key layout (trees opened by name; `fold` = the case-insensitive folding of unique names):
//!
//! | tree | key → value |
//! | --- | --- |
//! | `links` | SCIM user id 0x00 target → [`Link`] JSON |
//! | `links_by_account` | target 0x00 fold(Atlassian username) → SCIM user id |
//! | `links_by_ext` | target 0x00 externalId 0x00 SCIM user id → () (re-hire by externalId) |
//! | `link_review` | target 0x00 SCIM user id → [`Review`] JSON |
//! | `link_held` | target 0x00 SCIM user id 0x00 outbox sequence (u64 BE) → `OutboxEntry` JSON |
//!
//! Invariants: `links` and `links_by_account` mirror each other (one account is linked to at most
//! one SCIM user per target); every write here is one sled transaction with its audit record, so
//! a link is never recorded without saying who made it and why. A link outlives the SCIM user it
//! belongs to: the deleted user's queued offboarding still needs it, and a re-hire with the same
//! externalId takes it over (`take_over`). Held intents go back to the outbox, in their original
//! order and behind everything already queued, when the review is resolved (`release_held`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::Transactional;

use super::audit::{index_keys, operator_record};
use super::error::{StoreError, StoreResult};
use super::keys::{self, fold};
use super::operator::Operator;
use super::outbox::OutboxEntry;
use super::Store;

const LINKS: &str = "links";
const BY_ACCOUNT: &str = "links_by_account";
const BY_EXT: &str = "links_by_ext";
const REVIEW: &str = "link_review";
const HELD: &str = "link_held";
/// The `jobs list` state of a held intent (the delivery outcome that held it has the same name).
pub const HELD_STATE: &str = "held_for_review";

/// How a link came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkSource {
    /// An existing account had the mapped username (and, where the product tells, the same email).
    Username,
    /// An existing account was the only one with the user's email.
    Email,
    /// No account existed; the bridge created it.
    Created,
    /// The create found an account of that name and `link_existing = "none"` took it as is.
    SameName,
    /// A re-hire: the IdP created a user again with the externalId of a deleted one.
    Rehire,
    /// An operator (`links set`).
    Admin,
    /// `rename = "follow"` renamed the account.
    Renamed,
}

impl LinkSource {
    /// Whether the account existed before the bridge linked it (so a create must reactivate it).
    pub fn pre_existing(self) -> bool {
        !matches!(self, LinkSource::Created | LinkSource::Renamed)
    }
}

/// One recorded link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub target: String,
    pub user_id: String,
    /// The Atlassian username, as the product spells it.
    pub username: String,
    pub source: LinkSource,
    pub at: String,
    /// Who caused it: `delivery` (the bridge at delivery) or the operator's credential name.
    pub actor: String,
    /// The SCIM externalId when the link was made, for re-hire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// A user whose match could not be decided: no action is taken for them on this target until an
/// operator resolves it (`links set`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub target: String,
    pub user_id: String,
    pub user_name: String,
    /// The username the bridge would have used.
    pub wanted: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `ambiguous` (several accounts share the email) or `conflict`.
    pub kind: String,
    pub reason: String,
    /// The candidate Atlassian usernames.
    pub candidates: Vec<String>,
    pub at: String,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn encode<T: Serialize>(v: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(corrupt)
}

type TxResult = Result<(), sled::transaction::ConflictableTransactionError<StoreError>>;

impl Store {
    fn named(&self, name: &str) -> StoreResult<sled::Tree> {
        Ok(self.inner.db().open_tree(name)?)
    }

    /// The link of `user_id` on `target`.
    ///
    /// # Errors
    /// On a storage error or an unreadable record.
    pub fn link(&self, user_id: &str, target: &str) -> StoreResult<Option<Link>> {
        self.named(LINKS)?
            .get(keys::pair(user_id, target))?
            .map(|v| serde_json::from_slice(&v).map_err(corrupt))
            .transpose()
    }

    /// Whether any link exists (a fast path for the policy hook).
    pub fn has_links(&self) -> bool {
        self.named(LINKS).map(|t| !t.is_empty()).unwrap_or(false)
    }

    /// Every link, optionally of one target.
    ///
    /// # Errors
    /// On a storage error.
    pub fn links(&self, target: Option<&str>) -> StoreResult<Vec<Link>> {
        self.all_of(LINKS, target, |l: &Link| &l.target)
    }

    /// Every record of `tree`, optionally only those whose `target_of` is `target`.
    fn all_of<T: serde::de::DeserializeOwned>(
        &self,
        tree: &str,
        target: Option<&str>,
        target_of: fn(&T) -> &str,
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        for kv in self.named(tree)?.iter() {
            let (_, v) = kv?;
            let record: T = serde_json::from_slice(&v).map_err(corrupt)?;
            if target.is_none_or(|t| t == target_of(&record)) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// The SCIM user `username` is linked to on `target`.
    ///
    /// # Errors
    /// On a storage error.
    pub fn linked_user(&self, target: &str, username: &str) -> StoreResult<Option<String>> {
        Ok(self
            .named(BY_ACCOUNT)?
            .get(keys::pair(target, &fold(username)))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records `link` (replacing the user's previous link on that target) with its audit record,
    /// in one transaction, and removes any review of the user on that target.
    ///
    /// # Errors
    /// A 409 `uniqueness` [`StoreError::Scim`] when the account is linked to another SCIM user
    /// that still exists; storage errors.
    pub fn link_put(&self, link: &Link, audit: &Value) -> StoreResult<()> {
        let _guard = self.lock();
        self.link_put_locked(link, audit)
    }

    /// [`Store::link_put`] unless the user already has a link on that target to another account,
    /// checked under the same lock as the write: a delivery that looked the account up for an
    /// unlinked user never replaces a link an operator set while its calls were in flight.
    /// Whether the link was recorded.
    ///
    /// # Errors
    /// As [`Store::link_put`].
    pub fn link_put_unless_linked_elsewhere(&self, link: &Link, audit: &Value) -> StoreResult<bool> {
        let _guard = self.lock();
        if let Some(current) = self.link(&link.user_id, &link.target)? {
            if fold(&current.username) != fold(&link.username) {
                return Ok(false);
            }
        }
        self.link_put_locked(link, audit)?;
        Ok(true)
    }

    fn link_put_locked(&self, link: &Link, audit: &Value) -> StoreResult<()> {
        let (links, by_account, by_ext, review) =
            (self.named(LINKS)?, self.named(BY_ACCOUNT)?, self.named(BY_EXT)?, self.named(REVIEW)?);
        let account_key = keys::pair(&link.target, &fold(&link.username));
        // An account linked to a deleted SCIM user is free again (re-hire under a new id): that
        // user's link is retired in the same transaction.
        let mut retired: Option<Link> = None;
        if let Some(owner) = by_account.get(&account_key)? {
            let owner_id = String::from_utf8_lossy(&owner).into_owned();
            if owner_id != link.user_id && self.get(super::Kind::User, &owner_id)?.is_none() {
                retired = links
                    .get(keys::pair(&owner_id, &link.target))?
                    .map(|v| serde_json::from_slice(&v).map_err(corrupt))
                    .transpose()?;
            } else if owner_id != link.user_id {
                return Err(crate::scim::ScimError::uniqueness(format!(
                    "The {} account '{}' is already linked to SCIM user {}; clear that link first (links clear).",
                    link.target, link.username, owner_id
                ))
                .into());
            }
        }
        let previous: Option<Link> = links
            .get(keys::pair(&link.user_id, &link.target))?
            .map(|v| serde_json::from_slice(&v).map_err(corrupt))
            .transpose()?;
        let bytes = encode(link)?;
        let audit_seq = self.next_seq();
        let audit_bytes = encode(audit)?;
        let index = index_keys(&link.user_id, audit, audit_seq);
        let (audit_tree, by_subject) = (self.t(super::tree::AUDIT), self.t(super::tree::AUDIT_BY_SUBJECT));
        (&links, &by_account, &by_ext, &review, &*audit_tree, &*by_subject).transaction(|(l, a, e, r, at, s)| {
            if let Some(old) = &retired {
                l.remove(keys::pair(&old.user_id, &old.target))?;
                if let Some(x) = &old.external_id {
                    e.remove(ext_key(&old.target, x, &old.user_id))?;
                }
            }
            if let Some(p) = &previous {
                a.remove(keys::pair(&p.target, &fold(&p.username)))?;
                if let Some(x) = &p.external_id {
                    e.remove(ext_key(&p.target, x, &p.user_id))?;
                }
            }
            l.insert(keys::pair(&link.user_id, &link.target), bytes.as_slice())?;
            a.insert(account_key.as_slice(), link.user_id.as_bytes())?;
            if let Some(x) = &link.external_id {
                e.insert(ext_key(&link.target, x, &link.user_id), &[])?;
            }
            r.remove(keys::pair(&link.target, &link.user_id))?;
            super::audit::put_in(at, s, audit_seq, &audit_bytes, &index)?;
            TxResult::Ok(())
        })?;
        self.mark_committed();
        Ok(())
    }

    /// Removes the link of `user_id` on `target` (and any review), audited; the removed link.
    ///
    /// # Errors
    /// On a storage error.
    pub fn link_clear(&self, user_id: &str, target: &str, audit: &Value) -> StoreResult<Option<Link>> {
        let _guard = self.lock();
        let (links, by_account, by_ext, review) =
            (self.named(LINKS)?, self.named(BY_ACCOUNT)?, self.named(BY_EXT)?, self.named(REVIEW)?);
        let previous: Option<Link> =
            links.get(keys::pair(user_id, target))?.map(|v| serde_json::from_slice(&v).map_err(corrupt)).transpose()?;
        let had_review = review.contains_key(keys::pair(target, user_id))?;
        if previous.is_none() && !had_review {
            return Ok(None);
        }
        let audit_seq = self.next_seq();
        let audit_bytes = encode(audit)?;
        let index = index_keys(user_id, audit, audit_seq);
        let (audit_tree, by_subject) = (self.t(super::tree::AUDIT), self.t(super::tree::AUDIT_BY_SUBJECT));
        (&links, &by_account, &by_ext, &review, &*audit_tree, &*by_subject).transaction(|(l, a, e, r, at, s)| {
            if let Some(p) = &previous {
                l.remove(keys::pair(user_id, target))?;
                a.remove(keys::pair(target, &fold(&p.username)))?;
                if let Some(x) = &p.external_id {
                    e.remove(ext_key(target, x, user_id))?;
                }
            }
            r.remove(keys::pair(target, user_id))?;
            super::audit::put_in(at, s, audit_seq, &audit_bytes, &index)?;
            TxResult::Ok(())
        })?;
        self.mark_committed();
        Ok(previous)
    }

    /// Links on `target` made for `external_id` whose SCIM user no longer exists: the accounts a
    /// re-hire with that externalId takes back.
    ///
    /// # Errors
    /// On a storage error.
    pub fn retired_links(&self, target: &str, external_id: &str) -> StoreResult<Vec<Link>> {
        let mut prefix = keys::pair(target, external_id);
        prefix.push(keys::SEP);
        let mut out = Vec::new();
        for kv in self.named(BY_EXT)?.scan_prefix(&prefix) {
            let (k, _) = kv?;
            let Some(user_id) = std::str::from_utf8(&k[prefix.len()..]).ok() else { continue };
            if self.get(super::Kind::User, user_id)?.is_some() {
                continue;
            }
            if let Some(link) = self.link(user_id, target)? {
                out.push(link);
            }
        }
        Ok(out)
    }

    /// Moves `old`'s link to `link.user_id` (a re-hire), audited, in one transaction.
    ///
    /// # Errors
    /// On a storage error.
    pub fn link_take_over(&self, old: &Link, link: &Link, audit: &Value) -> StoreResult<()> {
        {
            let _guard = self.lock();
            let (links, by_account, by_ext) = (self.named(LINKS)?, self.named(BY_ACCOUNT)?, self.named(BY_EXT)?);
            (&links, &by_account, &by_ext).transaction(|(l, a, e)| {
                l.remove(keys::pair(&old.user_id, &old.target))?;
                a.remove(keys::pair(&old.target, &fold(&old.username)))?;
                if let Some(x) = &old.external_id {
                    e.remove(ext_key(&old.target, x, &old.user_id))?;
                }
                TxResult::Ok(())
            })?;
        }
        self.link_put(link, audit)
    }

    /// The review entry of `user_id` on `target`.
    ///
    /// # Errors
    /// On a storage error.
    pub fn review(&self, target: &str, user_id: &str) -> StoreResult<Option<Review>> {
        self.named(REVIEW)?
            .get(keys::pair(target, user_id))?
            .map(|v| serde_json::from_slice(&v).map_err(corrupt))
            .transpose()
    }

    /// Every review entry, optionally of one target.
    ///
    /// # Errors
    /// On a storage error.
    pub fn reviews(&self, target: Option<&str>) -> StoreResult<Vec<Review>> {
        self.all_of(REVIEW, target, |r: &Review| &r.target)
    }

    /// Puts the user on the review list (`review`) and holds outbox entry `seq` (removed from the
    /// outbox), with its audit record, in one transaction. Without a new `review` the entry is held
    /// only while the user is still on the list: `false` when an operator resolved it meanwhile,
    /// and the entry stays in the outbox for the caller to deliver.
    ///
    /// # Errors
    /// On a storage error.
    pub fn hold_for_review(
        &self,
        review: Option<&Review>,
        target: &str,
        user_id: &str,
        seq: u64,
        entry: &OutboxEntry,
        audit: &Value,
    ) -> StoreResult<bool> {
        let _guard = self.lock();
        let (review_tree, held) = (self.named(REVIEW)?, self.named(HELD)?);
        if review.is_none() && !review_tree.contains_key(keys::pair(target, user_id))? {
            return Ok(false);
        }
        let review_bytes = review.map(encode).transpose()?;
        let entry_bytes = entry.encode()?;
        let audit_seq = self.next_seq();
        let audit_bytes = encode(audit)?;
        let index = index_keys(user_id, audit, audit_seq);
        let mut held_key = keys::pair(target, user_id);
        held_key.push(keys::SEP);
        held_key.extend_from_slice(&seq.to_be_bytes());
        let (outbox, audit_tree, by_subject) =
            (self.t(super::tree::OUTBOX), self.t(super::tree::AUDIT), self.t(super::tree::AUDIT_BY_SUBJECT));
        (&review_tree, &held, &*outbox, &*audit_tree, &*by_subject).transaction(|(r, h, o, at, s)| {
            if let Some(b) = &review_bytes {
                r.insert(keys::pair(target, user_id), b.as_slice())?;
            }
            h.insert(held_key.as_slice(), entry_bytes.as_slice())?;
            o.remove(&seq.to_be_bytes())?;
            super::audit::put_in(at, s, audit_seq, &audit_bytes, &index)?;
            TxResult::Ok(())
        })?;
        self.mark_committed();
        Ok(true)
    }

    /// Intents held until their user's review is resolved, as jobs (state `held_for_review`,
    /// their original job numbers), oldest first: `jobs list` shows them beside the pending ones.
    ///
    /// # Errors
    /// On a storage error or an unreadable entry.
    pub(crate) fn held_items(&self) -> StoreResult<Vec<super::outbox::OutboxItem>> {
        let mut out = Vec::new();
        for kv in self.named(HELD)?.iter() {
            let (k, v) = kv?;
            let seq = keys::decode_u64(&k[k.len().saturating_sub(8)..]);
            out.push(super::outbox::OutboxItem { seq, state: HELD_STATE, entry: OutboxEntry::decode(&v)? });
        }
        out.sort_by_key(|i| i.seq);
        Ok(out)
    }

    /// The intents held for `user_id` on `target`, oldest first.
    ///
    /// # Errors
    /// On a storage error or an unreadable entry.
    pub(crate) fn held_in_lane(&self, target: &str, user_id: &str) -> StoreResult<Vec<super::outbox::OutboxItem>> {
        let mut prefix = keys::pair(target, user_id);
        prefix.push(keys::SEP);
        self.named(HELD)?
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                let seq = keys::decode_u64(&k[k.len().saturating_sub(8)..]);
                Ok(super::outbox::OutboxItem { seq, state: HELD_STATE, entry: OutboxEntry::decode(&v)? })
            })
            .collect()
    }

    /// The held-entries tree (`link_held`), for transactions that span it (`Store::drop_job`).
    pub(super) fn held_tree(&self) -> StoreResult<sled::Tree> {
        self.named(HELD)
    }

    /// The key under which job `seq` is held, if it is.
    ///
    /// # Errors
    /// On a storage error.
    pub(super) fn held_key(&self, seq: u64) -> StoreResult<Option<sled::IVec>> {
        for kv in self.named(HELD)?.iter() {
            let (k, _) = kv?;
            if k.len() >= 8 && keys::decode_u64(&k[k.len() - 8..]) == seq {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    /// Users on the review list and intents held for them, over all targets (for `/metrics`).
    pub fn review_counts(&self) -> (usize, usize) {
        let len = |name: &str| self.named(name).map(|t| t.len()).unwrap_or(0);
        (len(REVIEW), len(HELD))
    }

    /// How many intents are held for `user_id` on `target`.
    ///
    /// # Errors
    /// On a storage error.
    pub fn held_count(&self, target: &str, user_id: &str) -> StoreResult<usize> {
        let mut prefix = keys::pair(target, user_id);
        prefix.push(keys::SEP);
        Ok(self.named(HELD)?.scan_prefix(prefix).count())
    }

    /// Puts the intents held for `user_id` on `target` back in the outbox, in their order, and
    /// moves that lane's still pending entries (queued after them) behind them, so the lane keeps
    /// its order; returns the new sequences of the released ones. The worker skips the old
    /// sequences of moved entries (they are gone); one in flight may be delivered twice, which
    /// every connector action tolerates (they are idempotent). Each released intent gets an
    /// operator record (`job_release`, `op`'s actor and run id, its new job number) in the same
    /// transaction, so `jobs show` of the held job says where it went and who let it go.
    ///
    /// # Errors
    /// On a storage error.
    pub fn release_held(&self, target: &str, user_id: &str, op: &Operator, now: &str) -> StoreResult<Vec<u64>> {
        let _guard = self.lock();
        let held = self.named(HELD)?;
        let mut prefix = keys::pair(target, user_id);
        prefix.push(keys::SEP);
        let items: Vec<(sled::IVec, sled::IVec)> = held.scan_prefix(&prefix).collect::<Result<_, _>>()?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let outbox = self.t(super::tree::OUTBOX);
        let mut pending: Vec<(sled::IVec, sled::IVec)> = Vec::new();
        for kv in outbox.iter() {
            let (k, v) = kv?;
            let e = OutboxEntry::decode(&v)?;
            if e.target() == target && e.user_id() == user_id {
                pending.push((k, v));
            }
        }
        let seqs: Vec<u64> = items.iter().chain(&pending).map(|_| self.next_seq()).collect();
        let mut records: Vec<(u64, Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
        for ((k, v), new_job) in items.iter().zip(&seqs) {
            let e = OutboxEntry::decode(v)?;
            let job = keys::decode_u64(&k[k.len().saturating_sub(8)..]);
            let details = serde_json::json!({
                "job": job, "new_job": new_job, "outcome": "released", "target": target, "user_id": user_id,
                "username": e.intent.get("username"), "intent": e.intent.get("action"),
                "trigger": e.intent.get("trigger"),
            });
            let record = operator_record(op, "job_release", details, now);
            let seq = self.next_seq();
            records.push((seq, encode(&record)?, index_keys(user_id, &record, seq)));
        }
        let (audit_tree, by_subject) = (self.t(super::tree::AUDIT), self.t(super::tree::AUDIT_BY_SUBJECT));
        (&held, &*outbox, &*audit_tree, &*by_subject).transaction(|(h, o, at, s)| {
            for (k, _) in &items {
                h.remove(k)?;
            }
            for (k, _) in &pending {
                o.remove(k)?;
            }
            for ((_, v), seq) in items.iter().chain(&pending).zip(&seqs) {
                o.insert(&seq.to_be_bytes(), v)?;
            }
            for (seq, bytes, index) in &records {
                super::audit::put_in(at, s, *seq, bytes, index)?;
            }
            TxResult::Ok(())
        })?;
        if let Some(last) = records.last().map(|r| r.0).or(seqs.last().copied()) {
            self.t(super::tree::META).insert(b"seq", &last.to_be_bytes())?;
        }
        self.mark_committed();
        self.inner.outbox_signal.notify_one();
        Ok(seqs[..items.len()].to_vec())
    }
}

fn ext_key(target: &str, external_id: &str, user_id: &str) -> Vec<u8> {
    let mut k = keys::pair(target, external_id);
    k.push(keys::SEP);
    k.extend_from_slice(user_id.as_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn link(user: &str, username: &str) -> Link {
        Link {
            target: "jira".into(),
            user_id: user.into(),
            username: username.into(),
            source: LinkSource::Username,
            at: "2026-01-01T00:00:00Z".into(),
            actor: "delivery".into(),
            external_id: Some(format!("ext-{user}")),
        }
    }

    #[test]
    fn a_relink_moves_the_index_and_a_deleted_users_account_can_be_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store.link_put(&link("u1", "Dave"), &json!({"type": "link"})).expect("first link");
        assert_eq!(store.linked_user("jira", "dave").expect("read").as_deref(), Some("u1"));
        // u1 is no SCIM user (deleted): its link is retired and a re-hire can take it.
        assert_eq!(store.retired_links("jira", "ext-u1").expect("scan").len(), 1);
        store.link_put(&link("u1", "dave.smith"), &json!({"type": "link"})).expect("relink");
        assert_eq!(store.linked_user("jira", "dave").expect("read"), None);
        assert_eq!(store.link("u1", "jira").expect("read").map(|l| l.username).as_deref(), Some("dave.smith"));
        store.link_put(&link("u2", "DAVE.SMITH"), &json!({"type": "link"})).expect("take over from a deleted user");
        assert_eq!(store.link("u1", "jira").expect("read"), None, "the old link is retired");
        assert_eq!(store.linked_user("jira", "dave.smith").expect("read").as_deref(), Some("u2"));
        assert!(store.retired_links("jira", "ext-u1").expect("scan").is_empty());
    }

    #[test]
    fn held_entries_come_back_in_order_behind_the_outbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let entries: Vec<OutboxEntry> =
            (0..3).map(|i| OutboxEntry::new(json!({"n": i, "user_id": "u1", "target": "jira"}), "t", 0)).collect();
        let seqs = store.enqueue(&entries).expect("enqueue");
        for (seq, e) in seqs.iter().zip(&entries) {
            let review = (*seq == seqs[0]).then(|| Review {
                target: "jira".into(),
                user_id: "u1".into(),
                user_name: "dave".into(),
                wanted: "dave".into(),
                email: None,
                kind: "ambiguous".into(),
                reason: "test".into(),
                candidates: vec![],
                at: "t".into(),
            });
            let held = store.hold_for_review(review.as_ref(), "jira", "u1", *seq, e, &json!({"type": "delivery"}));
            assert!(held.expect("hold"));
        }
        assert_eq!(store.outbox_depth(), 0);
        assert_eq!(store.held_count("jira", "u1").expect("count"), 3);
        // Queued after the hold began (not yet attempted): must stay behind the held ones.
        let later = OutboxEntry::new(json!({"n": 3, "user_id": "u1", "target": "jira"}), "t", 0);
        let other = OutboxEntry::new(json!({"n": 9, "user_id": "u2", "target": "jira"}), "t", 0);
        store.enqueue(&[later, other]).expect("enqueue");
        // Held intents are jobs an operator sees (and may drop), under their own numbers.
        let held: Vec<(u64, &str)> =
            store.jobs().expect("jobs").iter().filter(|j| j.state == HELD_STATE).map(|j| (j.seq, j.state)).collect();
        assert_eq!(held.iter().map(|h| h.0).collect::<Vec<_>>(), seqs, "{held:?}");
        assert_eq!(store.job(seqs[1]).expect("job").map(|j| j.state), Some(HELD_STATE));
        let op = Operator { actor: "admin-ops (cli:al)".into(), run_id: "run-7".into() };
        let back = store.release_held("jira", "u1", &op, "t1").expect("release");
        assert_eq!(back.len(), 3);
        assert!(back.windows(2).all(|w| w[0] < w[1]) && back[0] > seqs[2]);
        let order: Vec<i64> =
            store.outbox_after(0).expect("read").iter().map(|i| i.entry.intent["n"].as_i64().unwrap_or(-1)).collect();
        assert_eq!(order, vec![9, 0, 1, 2, 3], "the lane keeps its order; other lanes stay put");
        assert_eq!(store.held_count("jira", "u1").expect("count"), 0);
        // Each release is an operator record of the run, which `jobs show` of the held number finds.
        let released = store.job_outcome(seqs[1]).expect("outcome").expect("a record");
        assert_eq!(
            (&released["action"], &released["outcome"], &released["actor"], &released["run_id"], &released["new_job"]),
            (&json!("job_release"), &json!("released"), &json!("admin-ops (cli:al)"), &json!("run-7"), &json!(back[1]))
        );
        assert_eq!(store.audit_of_run("run-7").expect("run").map(|r| r.len()), Some(3));
    }

    #[test]
    fn a_held_intent_can_be_dropped_by_its_job_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let e = OutboxEntry::new(json!({"user_id": "u1", "target": "jira"}), "t", 0);
        let seq = store.enqueue(std::slice::from_ref(&e)).expect("enqueue")[0];
        let review = Review {
            target: "jira".into(),
            user_id: "u1".into(),
            user_name: "dave".into(),
            wanted: "dave".into(),
            email: None,
            kind: "ambiguous".into(),
            reason: "test".into(),
            candidates: vec![],
            at: "t".into(),
        };
        assert!(store
            .hold_for_review(Some(&review), "jira", "u1", seq, &e, &json!({"type": "delivery"}))
            .expect("hold"));
        let audit = json!({"type": "delivery", "job": seq, "outcome": "dropped"});
        assert!(store.drop_job(seq, "u1", &audit).expect("drop"));
        assert_eq!((store.held_count("jira", "u1").expect("count"), store.job(seq).expect("job").is_none()), (0, true));
    }
}
