//! Users and groups as stored, in front of sled's `get`, for the reads that only render them.
//!
//! IdPs look users up one at a time and at random, so a cache helps in proportion to the share of
//! records it holds; this one holds only records (no page structure around them), and takes most
//! of the store's cache budget (`cache_split` in mod.rs). Entries are the `IVec`s sled returned.
//! Eviction is first-in first-out per shard: under random lookups it does as well as LRU, and a
//! hit needs no bookkeeping beyond a map lookup under the shard's lock.
//!
//! Consistency: every committed change to a user or group bumps `generation` and then drops the
//! entry, both after the transaction and under the writer lock (before the write is acknowledged).
//! A fill records the generation it saw before reading sled and is dropped if a change happened
//! since, so a value read before a commit can never outlive it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use uuid::Uuid;

use super::keys::uuid_of;
use super::records::Kind;

const SHARDS: usize = 16;

type Key = (Kind, Uuid);

pub(crate) struct RecordCache {
    shards: Vec<Mutex<Shard>>,
    generation: AtomicU64,
    shard_budget: usize,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Key, (sled::IVec, u64)>,
    /// Insertion order for eviction; a key whose stamp no longer matches was replaced or dropped.
    order: VecDeque<(Key, u64)>,
    bytes: usize,
    stamp: u64,
}

/// What a slot costs besides its value (map slot, queue entry, allocation headers).
const ENTRY_OVERHEAD: usize = 96;

impl RecordCache {
    pub(crate) fn new(budget_bytes: usize) -> RecordCache {
        RecordCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            generation: AtomicU64::new(0),
            shard_budget: budget_bytes / SHARDS,
        }
    }

    fn shard(&self, key: &Key) -> Option<&Mutex<Shard>> {
        self.shards.get((key.1.as_u128() as usize) % SHARDS)
    }

    pub(crate) fn get(&self, kind: Kind, id: &str) -> Option<sled::IVec> {
        let key = (kind, uuid_of(id)?);
        let shard = self.shard(&key)?.lock().ok()?;
        shard.entries.get(&key).map(|(v, _)| v.clone())
    }

    /// The generation to pass to `fill` for a read about to start.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps `value`, read from sled after `seen` was taken, unless a change happened since.
    pub(crate) fn fill(&self, kind: Kind, id: &str, value: &sled::IVec, seen: u64) {
        let Some(uuid) = uuid_of(id) else { return };
        let key = (kind, uuid);
        let size = value.len() + ENTRY_OVERHEAD;
        if size > self.shard_budget {
            return;
        }
        let Some(Ok(mut shard)) = self.shard(&key).map(Mutex::lock) else { return };
        // Checked under the shard lock: `changed` takes the same lock after bumping.
        if self.generation.load(Ordering::SeqCst) != seen || shard.entries.contains_key(&key) {
            return;
        }
        shard.stamp += 1;
        let stamp = shard.stamp;
        shard.entries.insert(key, (value.clone(), stamp));
        shard.order.push_back((key, stamp));
        shard.bytes += size;
        while shard.bytes > self.shard_budget {
            let Some((old, old_stamp)) = shard.order.pop_front() else { break };
            if shard.entries.get(&old).is_some_and(|(_, s)| *s == old_stamp) {
                if let Some((v, _)) = shard.entries.remove(&old) {
                    shard.bytes -= v.len() + ENTRY_OVERHEAD;
                }
            }
        }
    }

    /// A committed write changed or removed this record.
    pub(crate) fn changed(&self, kind: Kind, id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let Some(uuid) = uuid_of(id) else { return };
        let key = (kind, uuid);
        let Some(Ok(mut shard)) = self.shard(&key).map(Mutex::lock) else { return };
        if let Some((v, _)) = shard.entries.remove(&key) {
            shard.bytes -= v.len() + ENTRY_OVERHEAD;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0192a4e0-0000-7000-8000-000000000001";

    #[test]
    fn a_fill_that_started_before_a_change_is_dropped() {
        let cache = RecordCache::new(1 << 20);
        let seen = cache.generation();
        cache.changed(Kind::User, ID);
        cache.fill(Kind::User, ID, &sled::IVec::from(&b"old"[..]), seen);
        assert!(cache.get(Kind::User, ID).is_none(), "a value read before the change must not be kept");
        let seen = cache.generation();
        cache.fill(Kind::User, ID, &sled::IVec::from(&b"new"[..]), seen);
        assert_eq!(cache.get(Kind::User, ID).as_deref(), Some(&b"new"[..]));
        assert!(cache.get(Kind::Group, ID).is_none(), "kinds are separate");
        cache.changed(Kind::User, ID);
        assert!(cache.get(Kind::User, ID).is_none(), "a change drops the entry");
    }

    #[test]
    fn the_budget_evicts_the_oldest_entries() {
        let cache = RecordCache::new(SHARDS * (2 * (100 + ENTRY_OVERHEAD)));
        let ids: Vec<String> =
            (0..64u32).map(|i| format!("0192a4e0-0000-7000-8000-{:012x}", i * SHARDS as u32)).collect();
        for id in &ids {
            cache.fill(Kind::User, id, &sled::IVec::from(vec![0u8; 100]), cache.generation());
        }
        // All 64 ids fall in one shard, which holds two values.
        let kept: Vec<_> = ids.iter().filter(|id| cache.get(Kind::User, id).is_some()).collect();
        assert_eq!(kept, vec![&ids[62], &ids[63]]);
    }
}
