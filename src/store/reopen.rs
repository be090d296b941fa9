//! Opening sled, and opening it again after a write it could not make durable.
//!
//! sled 0.34 keeps the first I/O error of its log writer as a global error: from then on every
//! write (and flush) of that `Db` fails until it is opened again (`PageCache::start` resets it).
//! Worse, a transaction whose flush failed stays applied in memory, so readers would see a write
//! the client was told failed, and a later flush could still make it durable. So on a failed
//! write the store drops its sled `Db` and opens it again from disk: the failed write is gone
//! (or, when sled got it to disk before failing, it is there and durable: `flush_write` then
//! acknowledges it). The in-memory mirrors (names, member counts, record cache, sequence) are
//! rebuilt from the reopened data. `Store` clones share the slot, so the server, the delivery
//! worker and the jobs all see the new database without noticing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{StoreError, StoreResult};
use super::{health, keys, member_counts, names, tree, Gen, Store, LAYOUT_VERSION};

/// How long a reopen retries while a straggling reader still holds the old `Db` (and sled's
/// lock on the data dir).
const REOPEN_WAIT: Duration = Duration::from_secs(3);

/// Opens sled in `dir` and checks the layout version.
pub(super) fn open_gen(dir: &std::path::Path, page_cache: u64) -> StoreResult<Gen> {
    let db = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .cache_capacity(page_cache)
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
    let guard = super::guard_held::guard_trees_of(&db)?;
    Ok(Gen { db, trees, tokens, log_file: std::fs::File::open(dir.join("db")).ok(), guard })
}

impl Gen {
    /// The highest sequence number in use. The counter is persisted with each SCIM write;
    /// delivery records take numbers between those writes, so also look at the newest keys of
    /// the sequence-keyed trees.
    pub(super) fn last_seq(&self) -> StoreResult<u64> {
        let mut seq = self.trees[tree::META].get(b"seq")?.map(|v| keys::decode_u64(&v)).unwrap_or(0);
        for t in [tree::AUDIT, tree::OUTBOX, tree::DEAD] {
            if let Some((k, _)) = self.trees[t].last()? {
                seq = seq.max(keys::decode_u64(&k));
            }
        }
        Ok(seq)
    }

    /// `fdatasync` of sled's log (see `Store::flush_blocking`).
    pub(super) fn sync_log(&self) -> StoreResult<()> {
        if let Some(f) = &self.log_file {
            f.sync_data().map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
        }
        Ok(())
    }
}

impl Store {
    /// `Ok` while the store can write; otherwise why not (an operator's words).
    pub fn writable(&self) -> Result<(), String> {
        self.inner.health.reason().map_or(Ok(()), Err)
    }

    /// How many times the store was reopened after a failed write (whoever keeps state derived
    /// from it re-reads it when this changes).
    pub fn reopens(&self) -> u64 {
        self.inner.health.reopens()
    }

    /// `Ok` unless the open database may hold a write that failed (it is dropped by reopening
    /// the store, which sled can only do once there is space again): then why.
    pub fn readable(&self) -> Result<(), String> {
        if self.inner.health.needs_reopen() {
            Err(self.writable().err().unwrap_or_else(|| "the store is being reopened".into()))
        } else {
            Ok(())
        }
    }

    /// Since when the store cannot write (RFC 3339), while it cannot.
    pub fn unwritable_since(&self) -> Option<String> {
        self.inner.health.since()
    }

    /// Resolves once the store can write again (at once when it can).
    pub async fn writable_again(&self) {
        loop {
            let woken = self.inner.health.recovered.notified();
            if self.inner.health.is_writable() {
                return;
            }
            // The probe runs every `PROBE_EVERY`; the timeout only guards a missed wake-up.
            let _ = tokio::time::timeout(health::PROBE_EVERY * 2, woken).await;
        }
    }

    /// Refuses a write at once while the store is known not to be able to make it durable.
    pub(crate) fn ensure_writable(&self) -> StoreResult<()> {
        self.writable().map_err(StoreError::Unwritable)
    }

    /// Flushes; on an I/O failure marks the store unwritable and reopens it, so what was not
    /// made durable is not visible either.
    pub(crate) fn flush_or_reopen(&self) -> StoreResult<()> {
        let result = self.flush_blocking();
        if let Err(e) = &result {
            self.note_error(e);
        }
        result
    }

    /// After a failed write: an I/O error marks the store unwritable and discards what sled
    /// holds in memory only (by reopening it). Call with no tree of the store in hand.
    pub(crate) fn note_error(&self, e: &StoreError) {
        let Some(reason) = e.unwritable_reason() else { return };
        if matches!(e, StoreError::Unwritable(_)) {
            return;
        }
        self.inner.health.failed(reason);
        self.inner.health.set_needs_reopen(true);
        // sled's recovery writes to its log, so it cannot open on a full disk: reopen now only
        // when the failure was not for lack of space; otherwise the background thread reopens
        // once its probe finds space (until then `readable` keeps requests off the failed state).
        if health::probe_space(&self.inner.dir).is_ok() {
            if let Err(e) = self.reopen() {
                tracing::error!(error = %e, "Reopening the store after a failed write failed; retrying in the background.");
            }
        }
    }

    /// Waits until the SCIM write numbered `seq` is durable: flushed, and still in the store.
    /// A write lost in a reopen (its flush failed, here or in another writer's shared flush) is
    /// an error; one that sled got to disk before failing is durable after the reopen's sync and
    /// is acknowledged, so a client told 5xx never finds its write stored afterwards.
    ///
    /// # Errors
    /// When the write is not durable: the flush's error, or `Unwritable`.
    pub async fn flush_write(&self, seq: u64) -> StoreResult<()> {
        let flushed = self.flush().await;
        match self.write_durable(seq, flushed.as_ref().err()) {
            Ok(()) => Ok(()),
            Err(refused) => Err(flushed.err().unwrap_or(refused)),
        }
    }

    /// After the flush that was to cover the SCIM write numbered `seq` (`flush_error` when it
    /// failed): whether that write is durable (see `flush_write`).
    ///
    /// # Errors
    /// `Unwritable` with the reason when it is not.
    pub fn write_durable(&self, seq: u64, flush_error: Option<&StoreError>) -> StoreResult<()> {
        let present = self.t(tree::AUDIT).contains_key(seq.to_be_bytes()).unwrap_or(false);
        let why =
            || self.writable().err().unwrap_or_else(|| "the write was discarded when the store was reopened".into());
        match flush_error {
            None if present => Ok(()),
            None => Err(StoreError::Unwritable(why())),
            // The failure reopened the store and sled had got the write to disk: the reopen
            // synced it, so it is durable and acknowledged. While the reopen is pending, the
            // write is present only in the failed database's memory: not durable.
            Some(e)
                if present
                    && !self.inner.health.needs_reopen()
                    && e.unwritable_reason().is_some()
                    && !matches!(e, StoreError::Unwritable(_)) =>
            {
                Ok(())
            }
            Some(e) => Err(StoreError::Unwritable(e.unwritable_reason().unwrap_or_else(why))),
        }
    }

    /// Drops the sled `Db` and opens it again from disk (see the module header).
    pub(crate) fn reopen(&self) -> StoreResult<()> {
        // With no database open (an earlier reopen could not open it), a writer may hold the
        // writer lock while it waits for one: no transaction can run, so don't wait for the lock.
        let closed = self.inner.gen.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_none();
        let _writer = if closed { None } else { Some(self.lock()) };
        let mut slot = self.inner.gen.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = slot.take().map(|g| Arc::downgrade(&g));
        let deadline = Instant::now() + REOPEN_WAIT;
        let opened = loop {
            match open_gen(&self.inner.dir, self.inner.sled_cache) {
                Ok(g) => break Ok(g),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => break Err(e),
            }
        };
        let gen = match opened {
            Ok(g) => g,
            Err(e) => {
                // A reader still holds the old one (perhaps waiting for this very slot): put it
                // back, unwritable, and let the background thread try again.
                *slot = old.and_then(|w| w.upgrade());
                self.inner.health.set_needs_reopen(true);
                return Err(e);
            }
        };
        let rebuilt = (|| -> StoreResult<()> {
            self.inner.seq.fetch_max(gen.last_seq()?, Ordering::SeqCst);
            self.inner
                .names
                .replace_with(names::NameIndex::load(&gen.trees[tree::USER_BY_NAME], &gen.trees[tree::GROUP_BY_NAME])?);
            self.inner.member_counts.replace_with(member_counts::MemberCounts::load(&gen.trees[tree::MEMBER_OF])?);
            gen.sync_log()
        })();
        self.inner.records.clear();
        self.inner.tokens_version.fetch_add(1, Ordering::SeqCst);
        // Whatever was committed is now either on disk (and synced) or gone.
        self.inner.flushed.fetch_max(self.inner.committed.load(Ordering::SeqCst), Ordering::SeqCst);
        *slot = Some(Arc::new(gen));
        drop(slot);
        self.inner.health.count_reopen();
        self.inner.health.set_needs_reopen(rebuilt.is_err());
        self.inner.outbox_signal.notify_one();
        tracing::warn!(dir = %self.inner.dir.display(), "Reopened the store from disk after a failed write.");
        rebuilt
    }

    /// One tick of the background thread: retry a failed reopen, probe an unwritable store,
    /// or flush what delivery and jobs wrote since the last flush.
    pub(super) fn background_tick(&self) {
        let health = &self.inner.health;
        if health.needs_reopen() {
            // Retried at the probe's pace, once the probe shows space (sled's recovery writes).
            if health.probe_due() && health::probe_space(&self.inner.dir).is_ok() {
                if let Err(e) = self.reopen() {
                    tracing::error!(error = %e, "Reopening the store failed; retrying.");
                }
            }
            return;
        }
        if !health.is_writable() {
            if health.probe_due() {
                match health::probe_space(&self.inner.dir) {
                    Ok(()) => {
                        health.writable_again();
                        self.inner.outbox_signal.notify_one();
                    }
                    Err(e) => health.still_failing(health::describe_io(&e)),
                }
            }
            return;
        }
        if self.inner.flushed.load(Ordering::SeqCst) < self.inner.committed.load(Ordering::SeqCst) {
            if let Err(e) = self.flush_or_reopen() {
                tracing::error!(error = %e, "Background flush failed.");
            }
        }
    }
}
