//! Users and groups as stored, in front of sled's `get`, for the reads that only render them.
//!
//! IdPs look users up one at a time and at random, so a cache helps in proportion to the share of
//! records it holds; this one holds only records and takes most of the store's cache budget
//! (`cache_split` in mod.rs). Each shard keeps its records back to back in one ring buffer, first
//! in first out: under random lookups FIFO does as well as LRU, a hit needs no bookkeeping, and a
//! record costs its bytes plus ~60 (a header and a map slot) instead of a heap allocation each
//! (a 540-byte record took a 640-byte allocation, plus ~130 bytes of map and queue).
//!
//! Consistency: every committed change to a user or group bumps `generation` and then drops the
//! entry, both after the transaction and under the writer lock (before the write is acknowledged).
//! A fill records the generation it saw before reading sled and is dropped if a change happened
//! since, so a value read before a commit can never outlive it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use uuid::Uuid;

use super::keys::uuid_of;
use super::records::Kind;

const SHARDS: usize = 16;

/// Entry header in the ring: kind (1), id (16), value length (4).
const HEADER: usize = 21;

/// What a map slot costs besides the ring bytes (key, offset, control byte, spare capacity).
const SLOT: usize = 40;

type Key = (Kind, Uuid);

pub(crate) struct RecordCache {
    shards: Vec<Mutex<Ring>>,
    generation: AtomicU64,
}

impl RecordCache {
    pub(crate) fn new(budget_bytes: usize) -> RecordCache {
        let per_shard = budget_bytes / SHARDS;
        RecordCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Ring::new(per_shard))).collect(),
            generation: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &Key) -> Option<&Mutex<Ring>> {
        self.shards.get((key.1.as_u128() as usize) % SHARDS)
    }

    /// A copy of the cached record (so the shard's lock is held only for the copy).
    pub(crate) fn get(&self, kind: Kind, id: &str) -> Option<sled::IVec> {
        let key = (kind, uuid_of(id)?);
        let ring = self.shard(&key)?.lock().ok()?;
        ring.get(&key).map(sled::IVec::from)
    }

    /// The generation to pass to `fill` for a read about to start.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps `value`, read from sled after `seen` was taken, unless a change happened since.
    pub(crate) fn fill(&self, kind: Kind, id: &str, value: &[u8], seen: u64) {
        let Some(uuid) = uuid_of(id) else { return };
        let key = (kind, uuid);
        let Some(Ok(mut ring)) = self.shard(&key).map(Mutex::lock) else { return };
        // Checked under the shard lock: `changed` takes the same lock after bumping.
        if self.generation.load(Ordering::SeqCst) == seen {
            ring.put(key, value);
        }
    }

    /// Records held now.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().filter_map(|s| s.lock().ok().map(|r| r.map.len())).sum()
    }

    /// Forgets every record (the store was reopened from disk: what is cached may be gone).
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for shard in &self.shards {
            if let Ok(mut ring) = shard.lock() {
                ring.map.clear();
                ring.buf = Vec::new();
                (ring.head, ring.tail) = (0, 0);
            }
        }
    }

    /// A committed write changed or removed this record.
    pub(crate) fn changed(&self, kind: Kind, id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let Some(uuid) = uuid_of(id) else { return };
        let key = (kind, uuid);
        if let Some(Ok(mut ring)) = self.shard(&key).map(Mutex::lock) {
            ring.map.remove(&key);
        }
    }
}

/// Records back to back in a buffer used as a ring. `head` and `tail` are positions that only grow
/// (the byte at position `p` is `buf[p % capacity]`); the entries between them are in the ring,
/// oldest first. An entry never wraps: when it does not fit before the end of the buffer, a pad
/// byte marks the rest as empty and it goes to the start. `map` points at live entries only; an
/// entry dropped from it stays in the ring until `head` passes it.
struct Ring {
    buf: Vec<u8>,
    capacity: usize,
    map: HashMap<Key, u32>,
    head: u64,
    tail: u64,
}

const USER: u8 = 0;
const GROUP: u8 = 1;
const PAD: u8 = 0xFF;

impl Ring {
    fn new(budget: usize) -> Ring {
        // The map's slots come out of the same budget; assume records of ~500 bytes.
        let capacity = budget.saturating_sub(budget / 500 * SLOT).min(u32::MAX as usize);
        Ring { buf: Vec::new(), capacity, map: HashMap::new(), head: 0, tail: 0 }
    }

    fn offset(&self, pos: u64) -> usize {
        (pos % self.capacity as u64) as usize
    }

    /// The key and value length of the entry at `at`, or None for a pad byte.
    fn header(&self, at: usize) -> Option<(Key, usize)> {
        let h = self.buf.get(at..at + HEADER)?;
        let kind = match h[0] {
            USER => Kind::User,
            GROUP => Kind::Group,
            _ => return None,
        };
        let id = Uuid::from_slice(&h[1..17]).ok()?;
        let len = u32::from_le_bytes([h[17], h[18], h[19], h[20]]) as usize;
        Some(((kind, id), len))
    }

    fn get(&self, key: &Key) -> Option<&[u8]> {
        let at = *self.map.get(key)? as usize;
        let (found, len) = self.header(at)?;
        (found == *key).then(|| self.buf.get(at + HEADER..at + HEADER + len)).flatten()
    }

    fn put(&mut self, key: Key, value: &[u8]) {
        let size = HEADER + value.len();
        if size > self.capacity || self.map.contains_key(&key) {
            return;
        }
        let free_to_end = self.capacity - self.offset(self.tail);
        let start = if size > free_to_end { self.tail + free_to_end as u64 } else { self.tail };
        while start + size as u64 - self.head > self.capacity as u64 {
            if self.head >= self.tail {
                // Empty, and the entry still does not fit after the pad: start it right here.
                (self.head, self.tail) = (start, start);
                break;
            }
            self.evict_oldest();
        }
        if start != self.tail {
            let at = self.offset(self.tail);
            self.write(at, &[PAD]);
        }
        let at = self.offset(start);
        let kind = if key.0 == Kind::Group { GROUP } else { USER };
        self.write(at, &[kind]);
        self.write(at + 1, key.1.as_bytes());
        self.write(at + 17, &(value.len() as u32).to_le_bytes());
        self.write(at + HEADER, value);
        self.tail = start + size as u64;
        self.map.insert(key, at as u32);
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        let end = at + bytes.len();
        if self.buf.len() < end {
            // Only on the first pass through the buffer: it grows with what it holds (address
            // space for all of it at once, so growing never copies; pages become resident as
            // they are written).
            self.buf.reserve_exact(self.capacity - self.buf.len());
            self.buf.resize(end, 0);
        }
        self.buf[at..end].copy_from_slice(bytes);
    }

    /// Drops the entry (or the pad) at `head`.
    fn evict_oldest(&mut self) {
        if self.head >= self.tail {
            return;
        }
        let at = self.offset(self.head);
        match self.header(at) {
            Some((key, len)) => {
                if self.map.get(&key) == Some(&(at as u32)) {
                    self.map.remove(&key);
                }
                self.head += (HEADER + len) as u64;
            }
            None => self.head += (self.capacity - at) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0192a4e0-0000-7000-8000-000000000001";

    fn id(i: u32) -> String {
        // Multiples of SHARDS all land in shard 0.
        format!("0192a4e0-0000-7000-8000-{:012x}", i * SHARDS as u32)
    }

    #[test]
    fn a_fill_that_started_before_a_change_is_dropped() {
        let cache = RecordCache::new(1 << 20);
        let seen = cache.generation();
        cache.changed(Kind::User, ID);
        cache.fill(Kind::User, ID, b"old", seen);
        assert!(cache.get(Kind::User, ID).is_none(), "a value read before the change must not be kept");
        let seen = cache.generation();
        cache.fill(Kind::User, ID, b"new", seen);
        assert_eq!(cache.get(Kind::User, ID).as_deref(), Some(&b"new"[..]));
        assert!(cache.get(Kind::Group, ID).is_none(), "kinds are separate");
        cache.changed(Kind::User, ID);
        assert!(cache.get(Kind::User, ID).is_none(), "a change drops the entry");
    }

    #[test]
    fn the_oldest_entries_go_first_and_the_ring_wraps_with_every_value_intact() {
        // One shard's ring holds three entries of 100-byte values (3 * 121 = 363 bytes).
        let mut ring = Ring { capacity: 400, ..Ring::new(0) };
        let key = |i: u32| (Kind::User, uuid_of(&id(i)).expect("uuid"));
        let value = |i: u32| vec![i as u8; 100];
        for i in 0..50u32 {
            ring.put(key(i), &value(i));
            let kept: Vec<u32> = (0..=i).filter(|j| ring.get(&key(*j)).is_some()).collect();
            let expect: Vec<u32> = (i.saturating_sub(2)..=i).collect();
            assert_eq!(kept, expect, "after {i}");
            for j in kept {
                assert_eq!(ring.get(&key(j)), Some(&value(j)[..]), "value of {j} after {i}");
            }
            assert!(ring.buf.len() <= 400);
        }
        assert_eq!(ring.map.len(), 3);
    }

    #[test]
    fn values_of_mixed_sizes_pad_at_the_end_and_dropped_entries_are_skipped() {
        let mut ring = Ring { capacity: 1000, ..Ring::new(0) };
        let key = |i: u32| (Kind::Group, uuid_of(&id(i)).expect("uuid"));
        let mut live = std::collections::BTreeMap::new();
        for i in 0..400u32 {
            let v = vec![(i % 251) as u8; (i as usize * 37) % 300 + 1];
            ring.put(key(i), &v);
            live.insert(i, v);
            if i % 7 == 0 && i > 0 {
                ring.map.remove(&key(i / 2));
                live.remove(&(i / 2));
            }
            // Whatever the ring still has is exactly what was put last under that key.
            for (j, v) in &live {
                if let Some(got) = ring.get(&key(*j)) {
                    assert_eq!(got, &v[..], "value of {j} after {i}");
                }
            }
            assert!(ring.get(&key(i)).is_some(), "the newest entry is always kept");
            assert!(ring.tail - ring.head <= 1000);
        }
        // Values of more than half the ring: each one evicts everything before it.
        for i in 400..420u32 {
            let v = vec![i as u8; 600 + (i as usize % 3) * 150];
            ring.put(key(i), &v);
            assert_eq!(ring.get(&key(i)), Some(&v[..]), "{i}");
            assert_eq!(ring.map.len(), 1, "{i}");
        }
        let too_big = vec![0u8; 1000];
        ring.put(key(9999), &too_big);
        assert!(ring.get(&key(9999)).is_none(), "a value larger than the ring is not cached");
    }

    #[test]
    fn a_budget_too_small_for_any_record_caches_nothing() {
        let cache = RecordCache::new(0);
        cache.fill(Kind::User, ID, b"x", cache.generation());
        assert!(cache.get(Kind::User, ID).is_none());
    }
}
