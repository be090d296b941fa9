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
//! | `audit_by_subject` | subject 0x00 sequence → (): a SCIM id or delivery lane, `name:` + folded userName, `username:` + folded Atlassian username, `token:` + name (see `audit.rs`) |
//! | `outbox` | sequence (u64 BE) → intent JSON (written by the same transaction as the change) |
//! | `meta` | `layout`, `seq`, `count:users`, `count:groups`, `retention_sweep_below` (see `retention.rs`) |
//! | `tokens` | token name → hashed token record |
//! | `activity`, `activity_runs`, `reports`, `license` | lifecycle jobs' state (see `activity.rs`) |
//! | `dead_letters`, `superseded`, `dead_by_lane` | jobs out of the outbox (see `supersede.rs`) |
//! | `grace` | actions waiting out a warning's grace period (see `grace.rs`) |
//! | `managed_groups` | Atlassian groups scimbridge created or mapped, per target (`managed_groups.rs`) |
//! | `notify_outbox`, `notify_sent` | notices waiting to be sent and sent ones (see `notices.rs`) |
//! | `guard_held`, `guard_held_by_lane`, `guard_window` | intents the mass-offboarding brake holds (`guard_held.rs`) |
//! | `links`, `links_by_account`, `links_by_ext`, `link_review`, `link_held` | account links (see `links.rs`) |
//!
//! Invariants: every index entry points at an existing record and every record has its index
//! entries; `members` and `member_of` mirror each other. Each SCIM write is one multi-tree
//! transaction (record, indexes, memberships, audit, outbox), taken under one writer lock so
//! transactions never conflict, and is acknowledged only after a `flush_async` that concurrent
//! writers share (group commit). What was flushed survives `kill -9`.

mod activity;
mod audit;
mod backup;
mod deactivations;
mod error;
mod grace;
mod guard_held;
mod health;
mod keys;
mod links;
mod managed_groups;
mod member_counts;
mod members;
mod names;
mod notices;
mod operator;
mod outbox;
mod query;
mod record_cache;
mod records;
mod reopen;
mod retention;
mod supersede;
mod tokens;
pub mod writes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use activity::ActivityRecord;
pub use audit::AuditRecord;
pub use backup::{restore, BackupStats};
pub use deactivations::Deactivation;
pub use error::{StoreError, StoreResult};
pub use grace::GraceEntry;
pub use guard_held::{GuardStatus, HeldDecision, GUARD_HELD_STATE, GUARD_SUBJECT};
pub use links::{Link, LinkSource, Review, HELD_STATE};
pub use managed_groups::{GroupOrigin, ManagedGroup};
pub use notices::{ChannelLog, NoticeRecord, NoticeRow};
pub use operator::{local_user, Operator, OPERATOR_HEADER};
pub use outbox::{OutboxEntry, OutboxItem};
pub use query::{ListQuery, ListResult};
pub use records::{Kind, RawRecord, Record, RecordMeta, StoredRecord};
pub use retention::Pruned;
pub use supersede::{Basis, Decided};
pub use tokens::TokenRecord;
pub use writes::{Actor, Change, ChangeHook, ChangeOp, MemberEdit, NoHook, Planned, WriteCtx, WriteOutcome};

/// Layout version written into `meta`; bump with a migration when the key layout changes.
pub const LAYOUT_VERSION: u64 = 1;

/// Memory for caching the store unless configured (`cache_mb`), shared by `cache_split`.
///
/// The reads that matter are IdPs' lookups of single users at random; any cache that holds fewer
/// records than there are users misses in proportion, and a miss in sled costs a `pread` and the
/// decoding of a whole page. So most of the budget goes to the record cache (`record_cache.rs`),
/// which keeps only the records, and sled keeps a small page cache for its index and the pages
/// writes touch. Measured at 100,000 users (bench/results.txt): 80 MiB all in sled's cache served
/// GETs at about three quarters of the rate of 18 MiB sled + 72 MiB records (every user cached),
/// with more resident memory: sled's page cache holds fewer records per MiB than the ring does.
pub const DEFAULT_CACHE_BYTES: u64 = 90 * 1024 * 1024;

/// Splits the cache budget: a fifth (at least 8 MiB) to sled's page cache, the rest to records.
fn cache_split(total: u64) -> (u64, usize) {
    let sled = (total / 5).max(8 << 20).min(total);
    (sled, usize::try_from(total - sled).unwrap_or(usize::MAX))
}

/// How often writes that no request waits for are flushed.
const BACKGROUND_FLUSH: std::time::Duration = std::time::Duration::from_millis(200);

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

/// What lives as long as the store, across reopens (see `reopen.rs`): the locks, counters and
/// in-memory mirrors every clone shares. The sled database itself is in `gen`.
struct Inner {
    dir: std::path::PathBuf,
    sled_cache: u64,
    /// The sled database now open. Replaced when the store is reopened after a failed write
    /// (`reopen.rs`); `None` only while that happens.
    gen: std::sync::RwLock<Option<Arc<Gen>>>,
    /// Serialises read-modify-write of SCIM resources; held only while the transaction runs,
    /// never across the flush, so durability waits overlap.
    writer: std::sync::Mutex<()>,
    seq: AtomicU64,
    /// Woken after a transaction that wrote intents, so delivery starts at once.
    outbox_signal: tokio::sync::Notify,
    /// Writes applied and writes known to be on disk, counted, for group commit.
    committed: AtomicU64,
    flushed: AtomicU64,
    /// One flush at a time; the others wait for it and usually find their writes covered.
    flusher: tokio::sync::Mutex<()>,
    /// Bumped whenever a token is issued or revoked, so authentication can cache the set.
    tokens_version: AtomicU64,
    /// The unique-name indexes mirrored in memory (see `names.rs`).
    names: names::NameIndex,
    /// Group counts per member, for rendering (see `member_counts.rs`).
    member_counts: member_counts::MemberCounts,
    /// Recently read users and groups, for rendering (see `record_cache.rs`).
    records: record_cache::RecordCache,
    /// The notification lane's wanted events and wake-up (see `notices.rs`).
    notices: notices::NoticeLane,
    /// Whether the store can write now, and why not (see `health.rs`).
    health: health::Health,
    /// The mass-offboarding brake's held queue and window (see `guard_held.rs`).
    guard: guard_held::GuardCell,
}

/// One opening of the sled database.
pub(crate) struct Gen {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    tokens: sled::Tree,
    /// sled's log file, opened once for `fdatasync`.
    log_file: Option<std::fs::File>,
    /// The brake's trees, opened once per opening rather than by name on every write.
    guard: guard_held::GuardTrees,
}

impl Inner {
    /// The sled database now open (waits out a reopen in progress).
    fn gen(&self) -> Arc<Gen> {
        loop {
            if let Some(g) = self.gen.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
                return g.clone();
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn db(&self) -> sled::Db {
        self.gen().db.clone()
    }
}

/// A tree of the open database; holds that opening alive while in use.
pub(crate) struct TreeRef {
    gen: Arc<Gen>,
    index: usize,
}

impl std::ops::Deref for TreeRef {
    type Target = sled::Tree;
    fn deref(&self) -> &sled::Tree {
        if self.index == usize::MAX {
            &self.gen.tokens
        } else {
            &self.gen.trees[self.index]
        }
    }
}

/// Data dirs whose store the background flush thread holds at this moment. When the owner drops
/// its last handle during such a flush, the store (and sled's lock on the dir) lives on until the
/// flush ends; a reopen in this process (a restart in-process, a test) waits for that instead of
/// failing on the lock. A store held by a live owner, or by another process, still fails at once
/// (after at most the one flush in progress).
static BACKGROUND_HOLDS: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

fn background_hold(dir: &std::path::Path, take: impl FnOnce() -> Option<Store>) -> Option<Store> {
    let mut holds = BACKGROUND_HOLDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let store = take()?;
    holds.push(dir.to_path_buf());
    Some(store)
}

fn background_release(dir: &std::path::Path) {
    let mut holds = BACKGROUND_HOLDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(i) = holds.iter().position(|d| d == dir) {
        holds.swap_remove(i);
    }
}

/// Waits (bounded) while the background flush holds a store of `dir` (see [`BACKGROUND_HOLDS`]).
fn wait_for_background_flush(dir: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let held = BACKGROUND_HOLDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().any(|d| d == dir);
        if !held {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Data dirs whose store this process closed. sled releases its file lock only when its own
/// thread pool has finished the log writes still queued at the close, a moment after the last
/// handle is dropped; a reopen of such a dir (a restart in-process, a test) waits for that
/// instead of failing on the lock. A dir this process never had open fails at once, as does
/// one whose store is still open here.
static CLOSED_HERE: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

impl Drop for Inner {
    fn drop(&mut self) {
        let mut closed = CLOSED_HERE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !closed.contains(&self.dir) {
            closed.push(self.dir.clone());
        }
    }
}

/// Waits (bounded) until sled has let go of the lock of a store this process closed.
fn wait_for_sled_release(dir: &std::path::Path) {
    let closed_here = CLOSED_HERE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().any(|d| d == dir);
    if !closed_here {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        // sled locks `<dir>/db` with flock; std's `try_lock` is the same lock on Linux.
        match std::fs::File::open(dir.join("db")).map(|f| f.try_lock()) {
            Ok(Err(std::fs::TryLockError::WouldBlock)) => std::thread::sleep(std::time::Duration::from_millis(2)),
            // Free (dropping the file unlocks it), gone, or not lockable here: let sled decide.
            _ => return,
        }
    }
}

/// See [`Store::close_watch`].
pub struct CloseWatch(std::sync::Weak<Inner>);

impl CloseWatch {
    /// Whether the store is closed: no clone of it is left.
    pub fn is_closed(&self) -> bool {
        self.0.strong_count() == 0
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    /// When the directory cannot be opened (for example another process holds it: sled admits
    /// one process) or the layout is newer than this build understands.
    pub fn open(dir: &std::path::Path) -> StoreResult<Store> {
        Store::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the store in `dir` with `cache_bytes` of caches (see `cache_split`).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with_cache(dir: &std::path::Path, cache_bytes: u64) -> StoreResult<Store> {
        wait_for_background_flush(dir);
        wait_for_sled_release(dir);
        let (page_cache, record_cache) = cache_split(cache_bytes);
        let gen = reopen::open_gen(dir, page_cache)?;
        // Open here now: a second open of it must fail at once again.
        CLOSED_HERE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|d| d != dir);
        // Held jobs keep their numbers: the counter starts above them too.
        let (guard, last_held) = guard_held::GuardCell::open(&gen.db)?;
        let seq = gen.last_seq()?.max(last_held);
        let names = names::NameIndex::load(&gen.trees[tree::USER_BY_NAME], &gen.trees[tree::GROUP_BY_NAME])?;
        let member_counts = member_counts::MemberCounts::load(&gen.trees[tree::MEMBER_OF])?;
        let store = Store {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                sled_cache: page_cache,
                gen: std::sync::RwLock::new(Some(Arc::new(gen))),
                writer: std::sync::Mutex::new(()),
                seq: AtomicU64::new(seq),
                outbox_signal: tokio::sync::Notify::new(),
                committed: AtomicU64::new(0),
                flushed: AtomicU64::new(0),
                flusher: tokio::sync::Mutex::new(()),
                tokens_version: AtomicU64::new(0),
                names,
                member_counts,
                records: record_cache::RecordCache::new(record_cache),
                notices: notices::NoticeLane::default(),
                health: health::Health::default(),
                guard,
            }),
        };
        store.index_dead_lanes()?;
        store.start_background_flush(dir);
        Ok(store)
    }

    /// A handle that tells when every clone of this store is gone, and with it sled's lock on the
    /// data dir (a clone may outlive its owner briefly: the background flush holds one while it
    /// flushes).
    pub fn close_watch(&self) -> CloseWatch {
        CloseWatch(Arc::downgrade(&self.inner))
    }

    /// Writes outside SCIM requests (delivery outcomes, tokens) are made durable by this thread
    /// within `BACKGROUND_FLUSH`; it holds only a weak handle, so it ends with the store.
    fn start_background_flush(&self, dir: &std::path::Path) {
        let weak = Arc::downgrade(&self.inner);
        let dir = dir.to_path_buf();
        let spawned = std::thread::Builder::new().name("scimbridge-flush".into()).spawn(move || loop {
            std::thread::sleep(BACKGROUND_FLUSH);
            // Taken under the registry's lock, so a reopen either sees the hold or finds the
            // store gone (see `wait_for_background_flush`).
            let Some(store) = background_hold(&dir, || weak.upgrade().map(|inner| Store { inner })) else { break };
            store.background_tick();
            drop(store);
            background_release(&dir);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "Could not start the background flush thread.");
        }
    }

    pub(crate) fn t(&self, index: usize) -> TreeRef {
        TreeRef { gen: self.inner.gen(), index }
    }

    /// The tokens tree.
    pub(crate) fn tokens_tree(&self) -> TreeRef {
        TreeRef { gen: self.inner.gen(), index: usize::MAX }
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Waits until everything written so far is on disk. Concurrent callers share one fsync
    /// (group commit): a caller whose writes a running flush already covers just waits for it.
    ///
    /// # Errors
    /// On an I/O error from sled.
    pub async fn flush(&self) -> StoreResult<()> {
        let wanted = self.inner.committed.load(Ordering::SeqCst);
        let _one_flusher = self.inner.flusher.lock().await;
        if self.inner.flushed.load(Ordering::SeqCst) >= wanted {
            return Ok(());
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.flush_or_reopen())
            .await
            .map_err(|e| StoreError::Corrupt(format!("flush task failed: {e}")))?
    }

    /// Flushes with the writer lock held. sled 0.34 can deadlock when a transaction waits to
    /// start while a flush holds its concurrency-control read lock (seen here under load: the
    /// flush waits for an I/O buffer whose writer waits behind the transaction). So flushes and
    /// transactions never overlap, and sled's own background flusher is off (`flush_every_ms`).
    ///
    /// A failure leaves sled unable to write until it is reopened (its global error); the caller
    /// decides whether to reopen (`flush_or_reopen`).
    pub fn flush_blocking(&self) -> StoreResult<()> {
        self.ensure_writable()?;
        let _guard = self.lock();
        let upto = self.inner.committed.load(Ordering::SeqCst);
        let gen = self.inner.gen();
        gen.db.flush()?;
        // sled 0.34 makes its log stable with sync_file_range, which neither flushes the
        // device's write cache nor the file's metadata; an acknowledged write must survive a
        // power cut too, so fdatasync the log file itself.
        gen.sync_log()?;
        self.inner.flushed.fetch_max(upto, Ordering::SeqCst);
        Ok(())
    }

    /// Notes that a write was applied (called under the writer lock), for group commit.
    pub(crate) fn mark_committed(&self) {
        self.inner.committed.fetch_add(1, Ordering::SeqCst);
    }

    /// Approximate size of the store on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.inner.gen().db.size_on_disk().unwrap_or(0)
    }

    /// Users and groups the record cache holds; fewer than are stored means reads of the rest go
    /// to disk (`cache_mb`).
    pub fn cached_records(&self) -> usize {
        self.inner.records.len()
    }

    /// The number of live users or groups (kept as a counter, not counted by a scan).
    pub fn count(&self, kind: Kind) -> u64 {
        self.t(tree::META).get(kind.count_key()).ok().flatten().map(|v| keys::decode_u64(&v)).unwrap_or(0)
    }

    /// Whether the store answers reads and can write (readiness).
    pub fn is_ready(&self) -> bool {
        self.writable().is_ok() && self.t(tree::META).get(b"layout").is_ok()
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

    /// When the oldest pending intent was enqueued (ms since the epoch): the outbox is keyed by
    /// sequence, so its first entry is the oldest. `None` when nothing is pending.
    pub fn outbox_oldest_enqueued_ms(&self) -> Option<u64> {
        let (_, v) = self.t(tree::OUTBOX).first().ok()??;
        outbox::OutboxEntry::decode(&v).ok().map(|e| e.enqueued_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::{cache_split, Store};

    #[test]
    fn a_store_closed_with_log_writes_in_flight_reopens_at_once_and_a_live_one_still_refuses() {
        let dir = tempfile::tempdir().expect("tmp");
        for round in 0..200u32 {
            let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("round {round}: {e}"));
            // Writes leave log buffers for sled's own threads to write out after the close.
            for i in 0..20u32 {
                store.t(super::tree::META).insert(format!("k{round}-{i}"), &[0u8; 512][..]).expect("insert");
            }
            drop(store);
        }
        let live = Store::open(dir.path()).expect("open");
        let started = std::time::Instant::now();
        let second = Store::open(dir.path());
        assert!(second.as_ref().err().is_some_and(|e| e.is_locked()), "sled admits one owner");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "a live store is refused at once");
        drop(live);
    }

    #[test]
    fn the_cache_budget_gives_a_fifth_to_sled_and_never_less_than_8_mib() {
        assert_eq!(cache_split(90 << 20), (18 << 20, 72 << 20));
        assert_eq!(cache_split(20 << 20), (8 << 20, 12 << 20));
        assert_eq!(cache_split(8 << 20), (8 << 20, 0));
        assert_eq!(cache_split(1 << 20), (1 << 20, 0), "never more than the whole budget");
    }
}
