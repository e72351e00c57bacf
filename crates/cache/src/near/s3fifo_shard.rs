//! The near cache's shard for the default policy: S3-FIFO specialised so a
//! hit touches as few cache lines as possible.
//!
//! ```text
//!   key ──hash──► index (slot ids) ──► slots[slot] = { (key, value), weight, frequency, queue }
//!                                          ▲
//!   small: VecDeque<slot>  main: VecDeque<slot>  (FIFO rings of slot ids)
//!   ghost: direct-mapped fingerprints of keys evicted from small
//! ```
//!
//! Same algorithm and constants as [`crate::policy::S3Fifo`] (which the
//! deterministic store keeps using); the layout is what differs:
//!
//! - The per-entry policy state (2-bit frequency, queue) lives in the slot
//!   next to the key and value, so a hit reads the index and then one slot
//!   (32 bytes for `u64` keys and values), instead of the index, the slab
//!   entry and the policy's own per-slot record.
//! - The queues are rings of slot ids rather than linked lists, so an
//!   eviction step reads the ring (sequential) and one slot, and moving a
//!   slot from the tail to the head writes no neighbour's links.
//! - A removed (or expired) entry is dropped at once but its slot stays
//!   reserved ("dead") until its queue reaches it, so a ring never refers
//!   to a reused slot. Dead slots are bounded by compaction.
//! - Deadlines sit in a side array read only for slots flagged as having
//!   one; a cache without TTLs never touches it.
//!
//! The near cache needs no cross-run determinism, but this shard is still
//! a pure function of its calls (no clock, no randomness).

use std::borrow::Borrow;
use std::collections::{BTreeSet, VecDeque};
use std::hash::Hash;

use super::shard::NearShard;
use super::slot_index::SlotIndex;
use crate::hash::hash_of;
use crate::policy::SlotId;
use crate::policy::ghost::Ghost;
use crate::policy::hit_bits::HitCell;
use crate::policy::s3fifo::{FREQUENCY_MAX, PROMOTE_FREQUENCY_MIN, SMALL_SHARE_PERCENT};

/// Entries a new shard makes room for up front (its index and slab then
/// never regrow when entries weigh 1); larger shards grow on demand.
const PRESIZE_ENTRIES_MAX: u64 = 1 << 14;
/// Dead slots allowed beyond the live count before the rings are compacted.
const DEAD_SLACK: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    /// On the free list; in no ring.
    Free,
    Small,
    Main,
    /// Removed, but its ring still holds the slot id.
    Dead,
}

/// One slot: the entry and everything S3-FIFO keeps about it.
#[derive(Debug)]
struct Slot<K, V> {
    entry: Option<(K, V)>,
    /// At most `u32::MAX` (checked by [`S3FifoShard::fits`]).
    weight: u32,
    frequency: HitCell,
    queue: Queue,
    /// Whether `deadlines[slot]` holds this entry's deadline.
    has_deadline: bool,
}

/// A bounded S3-FIFO cache shard. See the module docs.
#[derive(Debug)]
pub(super) struct S3FifoShard<K, V> {
    capacity_weight: u64,
    slots: Vec<Slot<K, V>>,
    free_slots: Vec<SlotId>,
    index: SlotIndex,
    small: VecDeque<SlotId>,
    main: VecDeque<SlotId>,
    /// Live entries (not dead ones) in each ring.
    small_len: u64,
    main_len: u64,
    small_weight: u64,
    weight_total: u64,
    dead_len: u64,
    ghost: Ghost,
    /// Indexed by slot; meaningful only where `Slot::has_deadline`.
    deadlines: Vec<u64>,
    /// `(expire_at_ms, slot)` for every entry with a deadline, soonest first.
    expiry: BTreeSet<(u64, SlotId)>,
}

impl<K: Hash + Eq, V> S3FifoShard<K, V> {
    /// # Panics
    /// If `capacity_weight` is zero.
    pub(super) fn new(capacity_weight: u64) -> Self {
        assert!(capacity_weight > 0, "shard capacity must be positive");
        let presize = capacity_weight.min(PRESIZE_ENTRIES_MAX) as usize;
        S3FifoShard {
            capacity_weight,
            slots: Vec::with_capacity(presize),
            free_slots: Vec::new(),
            index: SlotIndex::with_capacity(presize),
            small: VecDeque::new(),
            main: VecDeque::new(),
            small_len: 0,
            main_len: 0,
            small_weight: 0,
            weight_total: 0,
            dead_len: 0,
            ghost: Ghost::default(),
            deadlines: Vec::new(),
            expiry: BTreeSet::new(),
        }
    }

    /// The ghost indexes by bits 24 and up, but within one shard the bits
    /// that chose the shard (32 and up) are constant; rotating gives the
    /// ghost bits that vary.
    #[inline]
    fn ghost_hash(key_hash: u64) -> u64 {
        key_hash.rotate_left(16)
    }

    #[inline]
    fn slot(&self, slot: SlotId) -> &Slot<K, V> {
        &self.slots[slot as usize]
    }

    #[inline]
    fn entry(&self, slot: SlotId) -> &(K, V) {
        match &self.slot(slot).entry {
            Some(entry) => entry,
            None => panic!("slot {slot} is not resident"),
        }
    }

    fn allocate(&mut self, key: K, value: V, weight: u32, queue: Queue) -> SlotId {
        let fresh = Slot {
            entry: Some((key, value)),
            weight,
            frequency: HitCell::default(),
            queue,
            has_deadline: false,
        };
        match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = fresh;
                slot
            }
            None => {
                let slot = SlotId::try_from(self.slots.len())
                    .ok()
                    .filter(|&slot| slot != crate::policy::NIL_SLOT)
                    .unwrap_or_else(|| panic!("shard slab is full ({} slots)", self.slots.len()));
                self.slots.push(fresh);
                slot
            }
        }
    }

    fn set_deadline(&mut self, slot: SlotId, expire_at_ms: Option<u64>) {
        let index = slot as usize;
        if self.slots[index].has_deadline {
            let removed = self.expiry.remove(&(self.deadlines[index], slot));
            assert!(removed, "slot {slot} missing from the expiry index");
        }
        self.slots[index].has_deadline = expire_at_ms.is_some();
        if let Some(expire_at_ms) = expire_at_ms {
            if self.deadlines.len() <= index {
                self.deadlines.resize(self.slots.len(), 0);
            }
            self.deadlines[index] = expire_at_ms;
            self.expiry.insert((expire_at_ms, slot));
        }
    }

    /// Drops a resident slot from the index, the expiry index and the
    /// accounting; returns its entry. The caller decides what happens to
    /// the slot itself (freed, or dead until its ring reaches it).
    fn detach(&mut self, slot: SlotId) -> (K, V, Option<u64>) {
        let index = slot as usize;
        let deadline = self.slots[index]
            .has_deadline
            .then(|| self.deadlines[index]);
        self.set_deadline(slot, None);
        let state = &mut self.slots[index];
        let (key, value) = match state.entry.take() {
            Some(entry) => entry,
            None => panic!("slot {slot} is not resident"),
        };
        let weight = u64::from(state.weight);
        match state.queue {
            Queue::Small => {
                self.small_len -= 1;
                self.small_weight -= weight;
            }
            Queue::Main => self.main_len -= 1,
            queue => panic!("slot {slot} is resident but in queue {queue:?}"),
        }
        self.weight_total -= weight;
        self.index.remove(hash_of(&key), slot);
        (key, value, deadline)
    }

    fn free(&mut self, slot: SlotId) {
        self.slots[slot as usize].queue = Queue::Free;
        self.free_slots.push(slot);
    }

    /// Makes room for `incoming_weight` more, never evicting `protected`.
    fn evict_to_fit(&mut self, incoming_weight: u64, protected: Option<SlotId>) {
        while self.weight_total + incoming_weight > self.capacity_weight {
            let small_over_share =
                self.small_weight * 100 >= self.weight_total * SMALL_SHARE_PERCENT;
            let victim = if small_over_share || self.main_len == 0 {
                self.evict_small(protected)
                    .or_else(|| self.evict_main(protected))
            } else {
                self.evict_main(protected)
                    .or_else(|| self.evict_small(protected))
            };
            let Some((victim, from_small)) = victim else {
                panic!(
                    "over capacity ({} + {incoming_weight} > {}) with nothing to evict",
                    self.weight_total, self.capacity_weight
                );
            };
            let (key, _, _) = self.detach(victim);
            if from_small {
                let resident_len = self.small_len + self.main_len;
                self.ghost
                    .remember(Self::ghost_hash(hash_of(&key)), resident_len);
            }
            self.free(victim);
        }
    }

    /// Walks small from its tail: promotes hit slots to main, frees dead
    /// ones, returns the first cold one (already out of the ring).
    fn evict_small(&mut self, protected: Option<SlotId>) -> Option<(SlotId, bool)> {
        let steps_max = self.small.len() + 1;
        for _ in 0..steps_max {
            let slot = self.small.pop_front()?;
            let state = &mut self.slots[slot as usize];
            if state.queue == Queue::Dead {
                self.dead_len -= 1;
                self.free(slot);
            } else if Some(slot) == protected {
                self.small.push_back(slot);
                if self.small_len == 1 {
                    return None;
                }
            } else if state.frequency.get() >= PROMOTE_FREQUENCY_MIN {
                state.frequency.set(0);
                state.queue = Queue::Main;
                self.small_len -= 1;
                self.small_weight -= u64::from(state.weight);
                self.main_len += 1;
                self.main.push_back(slot);
            } else {
                return Some((slot, true));
            }
        }
        None
    }

    /// CLOCK over main: reinserts slots with a count (decremented), frees
    /// dead ones, returns the first without a count.
    fn evict_main(&mut self, protected: Option<SlotId>) -> Option<(SlotId, bool)> {
        let steps_max = (usize::from(FREQUENCY_MAX) + 1) * self.main.len() + 1;
        for _ in 0..steps_max {
            let slot = self.main.pop_front()?;
            let state = &self.slots[slot as usize];
            if state.queue == Queue::Dead {
                self.dead_len -= 1;
                self.free(slot);
                continue;
            }
            let frequency = state.frequency.get();
            if frequency > 0 || Some(slot) == protected {
                state.frequency.set(frequency.saturating_sub(1));
                self.main.push_back(slot);
                if self.main_len == 1 && Some(slot) == protected {
                    return None;
                }
            } else {
                return Some((slot, false));
            }
        }
        None
    }

    /// Drops dead slot ids from the rings once they outnumber the live ones
    /// (plus slack), so removals without evictions cannot grow the rings
    /// without bound.
    fn compact_if_needed(&mut self) {
        if self.dead_len <= self.small_len + self.main_len + DEAD_SLACK {
            return;
        }
        let mut freed = Vec::new();
        for ring in [&mut self.small, &mut self.main] {
            ring.retain(|&slot| {
                let dead = self.slots[slot as usize].queue == Queue::Dead;
                if dead {
                    freed.push(slot);
                }
                !dead
            });
        }
        for slot in freed {
            self.free(slot);
        }
        self.dead_len = 0;
    }
}

impl<K: Hash + Eq, V> NearShard<K, V> for S3FifoShard<K, V> {
    #[inline]
    fn find<Q>(&self, key_hash: u64, key: &Q) -> Option<SlotId>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slots = &self.slots;
        self.index
            .find(key_hash, |slot| match &slots[slot as usize].entry {
                Some((resident, _)) => resident.borrow() == key,
                None => false,
            })
    }

    #[inline]
    fn value(&self, slot: SlotId) -> &V {
        &self.entry(slot).1
    }

    #[inline]
    fn expire_at_ms(&self, slot: SlotId) -> Option<u64> {
        self.slot(slot)
            .has_deadline
            .then(|| self.deadlines[slot as usize])
    }

    #[inline]
    fn record_hit_shared(&self, slot: SlotId) -> bool {
        self.slot(slot).frequency.bump(FREQUENCY_MAX);
        true
    }

    fn record_hit(&mut self, slot: SlotId) {
        self.slot(slot).frequency.bump(FREQUENCY_MAX);
    }

    fn fits(&self, weight: u64) -> bool {
        weight <= self.capacity_weight && u32::try_from(weight).is_ok()
    }

    #[inline]
    fn has_deadlines(&self) -> bool {
        !self.expiry.is_empty()
    }

    fn reclaim_expired(&mut self, now_ms: u64, reclaim_max: u64) {
        for _ in 0..reclaim_max {
            match self.expiry.first() {
                Some(&(expire_at_ms, slot)) if expire_at_ms <= now_ms => {
                    self.remove(slot);
                }
                _ => break,
            }
        }
    }

    fn insert(&mut self, key: K, key_hash: u64, value: V, weight: u64, expire_at_ms: Option<u64>) {
        assert!(self.fits(weight), "entry of weight {weight} cannot fit");
        debug_assert!(
            self.find(key_hash, &key).is_none(),
            "insert of a present key"
        );
        self.evict_to_fit(weight, None);
        let ghost_hash = Self::ghost_hash(key_hash);
        let to_main = self.ghost.contains(ghost_hash);
        let queue = if to_main {
            self.ghost.forget(ghost_hash);
            Queue::Main
        } else {
            Queue::Small
        };
        let slot = self.allocate(key, value, weight as u32, queue);
        if to_main {
            self.main_len += 1;
            self.main.push_back(slot);
        } else {
            self.small_len += 1;
            self.small_weight += weight;
            self.small.push_back(slot);
        }
        self.weight_total += weight;
        self.index.insert(key_hash, slot);
        if expire_at_ms.is_some() {
            self.set_deadline(slot, expire_at_ms);
        }
    }

    fn replace(&mut self, slot: SlotId, value: V, weight: u64, expire_at_ms: Option<u64>) {
        assert!(self.fits(weight), "entry of weight {weight} cannot fit");
        let state = &mut self.slots[slot as usize];
        let (_, resident) = match &mut state.entry {
            Some(entry) => entry,
            None => panic!("slot {slot} is not resident"),
        };
        *resident = value;
        let old_weight = u64::from(state.weight);
        state.weight = weight as u32;
        state.frequency.bump(FREQUENCY_MAX);
        if state.queue == Queue::Small {
            self.small_weight = self.small_weight - old_weight + weight;
        }
        self.weight_total = self.weight_total - old_weight + weight;
        self.set_deadline(slot, expire_at_ms);
        self.evict_to_fit(0, Some(slot));
    }

    fn remove(&mut self, slot: SlotId) -> (V, Option<u64>) {
        let (_, value, deadline) = self.detach(slot);
        self.slots[slot as usize].queue = Queue::Dead;
        self.dead_len += 1;
        self.compact_if_needed();
        (value, deadline)
    }

    fn len(&self) -> u64 {
        self.small_len + self.main_len
    }

    fn weight_total(&self) -> u64 {
        self.weight_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(shard: &mut S3FifoShard<u64, u64>, key: u64) {
        shard.insert(key, hash_of(&key), key, 1, None);
    }

    #[test]
    fn a_hit_key_survives_a_flood_of_one_hit_wonders() {
        let mut shard = S3FifoShard::new(100);
        insert(&mut shard, 0);
        let slot = shard.find(hash_of(&0u64), &0).expect("resident");
        shard.record_hit(slot);
        for key in 1..10_000 {
            insert(&mut shard, key);
            assert!(shard.weight_total() <= 100);
        }
        assert!(shard.find(hash_of(&0u64), &0).is_some(), "hot key evicted");
    }

    #[test]
    fn removals_without_evictions_stay_bounded() {
        let mut shard = S3FifoShard::new(1_000);
        for key in 0..100_000u64 {
            insert(&mut shard, key);
            let slot = shard.find(hash_of(&key), &key).expect("resident");
            assert_eq!(shard.remove(slot), (key, None));
        }
        assert_eq!(shard.len(), 0);
        assert!(shard.small.len() as u64 <= DEAD_SLACK + 1);
        assert!(shard.slots.len() as u64 <= DEAD_SLACK + 2);
    }

    #[test]
    fn replace_keeps_the_entry_and_the_weight_bound() {
        let mut shard = S3FifoShard::new(10);
        for key in 0..10 {
            insert(&mut shard, key);
        }
        let slot = shard.find(hash_of(&3u64), &3).expect("resident");
        shard.replace(slot, 33, 10, Some(5));
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.weight_total(), 10);
        let slot = shard
            .find(hash_of(&3u64), &3)
            .expect("the replaced entry stays");
        assert_eq!(*shard.value(slot), 33);
        assert_eq!(shard.expire_at_ms(slot), Some(5));
        shard.reclaim_expired(5, 4);
        assert_eq!(shard.len(), 0);
    }
}
