//! The only code that touches sled.
//!
//! Key layout (all trees in one sled `Db`, layout version in `meta`/`layout`):
//!
//! | tree | key → value |
//! | --- | --- |
//! | `users`, `groups` | id → `Record` JSON (attributes + meta; groups never hold members) |
//! | `user_by_name` | lowercased userName → id (unique, case-insensitive) |
//! | `user_by_ext`, `group_by_ext` | externalId 0x00 id → () (not unique) |
//! | `group_by_name` | lowercased displayName → id (unique) |
//! | `members` | group id 0x00 member id → member type (`User`/`Group`) |
//! | `member_of` | member id 0x00 group id → () |
//! | `audit` | sequence (u64 BE) → audit record JSON |
//! | `audit_by_subject` | resource id 0x00 sequence → () |
//! | `outbox` | sequence (u64 BE) → intent JSON (written by the same transaction as the change) |
//! | `meta` | `layout`, `seq`, `count:users`, `count:groups` |
//! | `tokens` | token name → hashed token record |
//! | `activity`, `activity_runs`, `reports`, `license` | lifecycle jobs' state (see `activity.rs`) |
//!
//! Invariants: every index entry points at an existing record and every record has its index
//! entries; `members` and `member_of` mirror each other. Each SCIM write is one multi-tree
//! transaction (record, indexes, memberships, audit, outbox), taken under one writer lock so
//! transactions never conflict, and is acknowledged only after a `flush_async` that concurrent
//! writers share (group commit). What was flushed survives `kill -9`.

mod activity;
mod audit;
mod backup;
mod error;
mod keys;
mod members;
mod outbox;
mod query;
mod records;
mod tokens;
pub mod writes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use activity::ActivityRecord;
pub use audit::AuditRecord;
pub use backup::{restore, BackupStats};
pub use error::{StoreError, StoreResult};
pub use outbox::{OutboxEntry, OutboxItem};
pub use query::{ListQuery, ListResult};
pub use records::{Kind, Record, RecordMeta};
pub use tokens::TokenRecord;
pub use writes::{Actor, Change, ChangeHook, ChangeOp, MemberEdit, NoHook, Planned, WriteCtx, WriteOutcome};

/// Layout version written into `meta`; bump with a migration when the key layout changes.
pub const LAYOUT_VERSION: u64 = 1;

/// sled page cache size.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) mod tree {
    pub const USERS: usize = 0;
    pub const GROUPS: usize = 1;
    pub const USER_BY_NAME: usize = 2;
    pub const USER_BY_EXT: usize = 3;
    pub const GROUP_BY_NAME: usize = 4;
    pub const GROUP_BY_EXT: usize = 5;
    pub const MEMBERS: usize = 6;
    pub const MEMBER_OF: usize = 7;
    pub const AUDIT: usize = 8;
    pub const AUDIT_BY_SUBJECT: usize = 9;
    pub const OUTBOX: usize = 10;
    pub const META: usize = 11;
    pub const DEAD: usize = 12;
    pub const NAMES: [&str; 13] = [
        "users",
        "groups",
        "user_by_name",
        "user_by_ext",
        "group_by_name",
        "group_by_ext",
        "members",
        "member_of",
        "audit",
        "audit_by_subject",
        "outbox",
        "meta",
        "dead_letters",
    ];
}

/// The open store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    tokens: sled::Tree,
    /// Serialises read-modify-write of SCIM resources; held only while the transaction runs,
    /// never across the flush, so durability waits overlap.
    writer: std::sync::Mutex<()>,
    seq: AtomicU64,
    /// Woken after a transaction that wrote intents, so delivery starts at once.
    outbox_signal: tokio::sync::Notify,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    /// When the directory cannot be opened (for example another process holds it: sled admits
    /// one process) or the layout is newer than this build understands.
    pub fn open(dir: &std::path::Path) -> StoreResult<Store> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            // sled's default page cache is 1 GiB; the working set (indexes, hot records) is far
            // smaller, and resident memory is a stated target.
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let trees = tree::NAMES.iter().map(|n| db.open_tree(n)).collect::<Result<Vec<_>, _>>()?;
        let tokens = db.open_tree("tokens")?;
        let meta = &trees[tree::META];
        match meta.get(b"layout")? {
            None => {
                meta.insert(b"layout", &LAYOUT_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = keys::decode_u64(&v);
                if found > LAYOUT_VERSION {
                    return Err(StoreError::Layout(found));
                }
            }
        }
        // The counter is persisted with each SCIM write; delivery records take numbers between
        // those writes, so also look at the newest keys of the sequence-keyed trees.
        let mut seq = meta.get(b"seq")?.map(|v| keys::decode_u64(&v)).unwrap_or(0);
        for t in [tree::AUDIT, tree::OUTBOX, tree::DEAD] {
            if let Some((k, _)) = trees[t].last()? {
                seq = seq.max(keys::decode_u64(&k));
            }
        }
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                trees,
                tokens,
                writer: std::sync::Mutex::new(()),
                seq: AtomicU64::new(seq),
                outbox_signal: tokio::sync::Notify::new(),
            }),
        })
    }

    pub(crate) fn t(&self, index: usize) -> &sled::Tree {
        &self.inner.trees[index]
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Waits until everything written so far is on disk. Concurrent callers share the fsync.
    ///
    /// # Errors
    /// On an I/O error from sled.
    pub async fn flush(&self) -> StoreResult<()> {
        self.inner.db.flush_async().await?;
        Ok(())
    }

    /// Approximate size of the store on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.inner.db.size_on_disk().unwrap_or(0)
    }

    /// The number of live users or groups (kept as a counter, not counted by a scan).
    pub fn count(&self, kind: Kind) -> u64 {
        self.t(tree::META).get(kind.count_key()).ok().flatten().map(|v| keys::decode_u64(&v)).unwrap_or(0)
    }

    /// Whether the store answers reads (readiness).
    pub fn is_ready(&self) -> bool {
        self.t(tree::META).get(b"layout").is_ok()
    }
}

impl Store {
    /// Intents not yet delivered.
    pub fn outbox_depth(&self) -> usize {
        self.t(tree::OUTBOX).len()
    }

    /// Dead letters waiting for an operator.
    pub fn dead_letter_count(&self) -> usize {
        self.t(tree::DEAD).len()
    }
}
