//! The near cache's shard for the default policy: S3-FIFO specialised so a
//! hit touches as few cache lines as possible.
//!
//! ```text
//!   key ──hash──► buckets[home..] = { key, value, hash fragment, frequency, queue, ring seq }
//!                     ▲  (open addressing, linear probing; the entry *is* the bucket)
//!   small: Ring of bucket positions   main: Ring of bucket positions
//!   ghost: direct-mapped fingerprints of keys evicted from small
//! ```
//!
//! Same algorithm and constants as [`crate::policy::S3Fifo`] (which the
//! deterministic store keeps using); the layout is what differs:
//!
//! - Entries live in the hash table's buckets, with S3-FIFO's per-entry
//!   state (2-bit frequency, queue) beside the key and value, so a hit
//!   usually reads one cache line: no control bytes, no slot-id indirection,
//!   no separate policy record.
//! - The queues are rings of bucket positions rather than linked lists, so
//!   an eviction step reads the ring (sequentially) and one bucket, and
//!   moving an entry from the tail to the head writes no neighbour's links.
//!   Each entry knows its sequence number in its ring, so when deletion
//!   shifts an entry to another bucket its ring element is updated in O(1),
//!   and a removed entry's ring element is overwritten with a tombstone.
//! - Deadlines sit in a side array read only for entries flagged as having
//!   one; a cache without TTLs never touches it.
//!
//! Bucket positions are the [`SlotId`]s handed out by [`NearShard::find`];
//! they stay valid until the shard is next modified.
//!
//! The near cache needs no cross-run determinism, but this shard is still a
//! pure function of its calls (no clock, no randomness).

use std::borrow::Borrow;
use std::collections::{BTreeSet, VecDeque};
use std::hash::Hash;

use super::shard::NearShard;
use crate::hash::hash_of;
use crate::policy::SlotId;
use crate::policy::ghost::Ghost;
use crate::policy::hit_bits::HitCell;
use crate::policy::s3fifo::{FREQUENCY_MAX, PROMOTE_FREQUENCY_MIN, SMALL_SHARE_PERCENT};

/// Entries a new shard makes room for up front (it then never rehashes when
/// entries weigh 1); larger shards, and shards whose capacity is in bytes,
/// grow on demand rather than allocate for a count they may never reach.
const PRESIZE_ENTRIES_MAX: u64 = 1 << 12;
/// The table is at most this full (numerator / denominator). Linear
/// probing's runs grow fast with load, and deletion shifts a whole run:
/// measured with cachegrind on the near-speed workload (per operation), 2/3
/// gave 282 instructions and 1.90 misses of a 1 MiB cache, 1/2 gave 241
/// and 1.57, 2/5 gave 231 and 1.48 for a quarter more memory.
const LOAD_NUMERATOR: usize = 1;
const LOAD_DENOMINATOR: usize = 2;
/// Smallest table, in buckets.
const BUCKETS_MIN: usize = 16;
/// Tombstones allowed beyond the live count before the rings are compacted.
const TOMBSTONE_SLACK: usize = 64;
/// A ring element whose entry was removed.
const TOMBSTONE: SlotId = SlotId::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Small,
    Main,
}

/// One resident entry and everything S3-FIFO keeps about it (32 bytes for
/// `u64` keys and values).
#[derive(Debug)]
struct Resident<K, V> {
    key: K,
    value: V,
    /// The low 32 bits of the key's hash: picks the home bucket, filters
    /// probes, and lets deletion shift entries without rehashing keys.
    fragment: u32,
    /// Position in its queue's ring (see [`Ring::sequence_of_back`]).
    ring_sequence: u32,
    /// At most `u32::MAX` (checked by [`S3FifoShard::fits`]).
    weight: u32,
    frequency: HitCell,
    queue: Queue,
    /// Whether `deadlines[bucket]` holds this entry's deadline.
    has_deadline: bool,
}

/// A FIFO of bucket positions, addressed by wrapping sequence numbers so an
/// element can be rewritten in place when its entry moves.
#[derive(Debug, Default)]
struct Ring {
    positions: VecDeque<SlotId>,
    /// Sequence number of `positions[0]`.
    front_sequence: u32,
    tombstones: usize,
}

impl Ring {
    fn sequence_of_back(&self) -> u32 {
        self.front_sequence
            .wrapping_add(self.positions.len() as u32)
            .wrapping_sub(1)
    }

    fn push_back(&mut self, position: SlotId) -> u32 {
        self.positions.push_back(position);
        self.sequence_of_back()
    }

    fn pop_front(&mut self) -> Option<SlotId> {
        let position = self.positions.pop_front()?;
        self.front_sequence = self.front_sequence.wrapping_add(1);
        if position == TOMBSTONE {
            self.tombstones -= 1;
        }
        Some(position)
    }

    fn element(&mut self, sequence: u32) -> &mut SlotId {
        let offset = sequence.wrapping_sub(self.front_sequence) as usize;
        &mut self.positions[offset]
    }

    fn live_len(&self) -> usize {
        self.positions.len() - self.tombstones
    }
}

/// A bounded S3-FIFO cache shard. See the module docs.
#[derive(Debug)]
pub(super) struct S3FifoShard<K, V> {
    capacity_weight: u64,
    buckets: Vec<Option<Resident<K, V>>>,
    len: usize,
    small: Ring,
    main: Ring,
    small_weight: u64,
    weight_total: u64,
    ghost: Ghost<u32>,
    /// Indexed by bucket; meaningful only where `Resident::has_deadline`.
    deadlines: Vec<u64>,
    /// `(expire_at_ms, key hash)` for every entry with a deadline.
    expiry: BTreeSet<(u64, u64)>,
    /// The bucket an overwrite is protecting from its own eviction pass;
    /// followed when deletion shifts it.
    protected: Option<SlotId>,
}

impl<K: Hash + Eq, V> S3FifoShard<K, V> {
    /// # Panics
    /// If `capacity_weight` is zero.
    pub(super) fn new(capacity_weight: u64) -> Self {
        S3FifoShard::presized(capacity_weight, capacity_weight.min(PRESIZE_ENTRIES_MAX))
    }

    /// A shard with room for `presize` entries before it grows.
    ///
    /// # Panics
    /// If `capacity_weight` is zero.
    pub(super) fn presized(capacity_weight: u64, presize: u64) -> Self {
        assert!(capacity_weight > 0, "shard capacity must be positive");
        let presize = presize.min(PRESIZE_ENTRIES_MAX) as usize;
        let bucket_count = (presize * LOAD_DENOMINATOR / LOAD_NUMERATOR + 1).max(BUCKETS_MIN);
        S3FifoShard {
            capacity_weight,
            buckets: std::iter::repeat_with(|| None).take(bucket_count).collect(),
            len: 0,
            small: Ring::default(),
            main: Ring::default(),
            small_weight: 0,
            weight_total: 0,
            ghost: Ghost::default(),
            deadlines: Vec::new(),
            expiry: BTreeSet::new(),
            protected: None,
        }
    }

    /// What the ghost is given for a key: its hash fragment, placed where a
    /// `u32` ghost takes its fingerprint (bits 24..56). The fragment varies
    /// within a shard (the shard bits are 32 and up) and is kept in every
    /// entry, so eviction feeds the ghost without rehashing the key.
    #[inline]
    fn ghost_hash(fragment: u32) -> u64 {
        u64::from(fragment) << 24
    }

    /// Multiply-shift range reduction: any table size, no division.
    #[inline]
    fn home(&self, fragment: u32) -> usize {
        ((u64::from(fragment) * self.buckets.len() as u64) >> 32) as usize
    }

    /// Steps forward (wrapping) from `from` to `to` in a table of
    /// `bucket_count`; no division, which dominated deletion when it used `%`.
    #[inline]
    fn distance(from: usize, to: usize, bucket_count: usize) -> usize {
        if to >= from {
            to - from
        } else {
            to + bucket_count - from
        }
    }

    #[inline]
    fn next_position(&self, position: usize) -> usize {
        if position + 1 == self.buckets.len() {
            0
        } else {
            position + 1
        }
    }

    #[inline]
    fn resident(&self, slot: SlotId) -> &Resident<K, V> {
        match &self.buckets[slot as usize] {
            Some(resident) => resident,
            None => panic!("bucket {slot} is empty"),
        }
    }

    fn ring(&mut self, queue: Queue) -> &mut Ring {
        match queue {
            Queue::Small => &mut self.small,
            Queue::Main => &mut self.main,
        }
    }

    fn deadline_of(&self, slot: SlotId) -> Option<u64> {
        self.resident(slot)
            .has_deadline
            .then(|| self.deadlines[slot as usize])
    }

    /// Moves the entry in bucket `from` to the empty bucket `to`, keeping its
    /// ring element, deadline and protection pointing at it.
    fn move_bucket(&mut self, from: usize, to: usize) {
        let resident = self.buckets[from].take();
        let Some(resident) = resident else {
            panic!("moving empty bucket {from}");
        };
        assert!(self.buckets[to].is_none(), "moving onto full bucket {to}");
        *self.ring(resident.queue).element(resident.ring_sequence) = to as SlotId;
        if resident.has_deadline {
            self.deadlines[to] = self.deadlines[from];
        }
        if self.protected == Some(from as SlotId) {
            self.protected = Some(to as SlotId);
        }
        self.buckets[to] = Some(resident);
    }

    /// Empties bucket `position` and shifts later members of its probe run
    /// back, so no probe meets a gap before its key (no tombstones).
    fn take_bucket(&mut self, position: usize) -> Resident<K, V> {
        let Some(resident) = self.buckets[position].take() else {
            panic!("bucket {position} is empty");
        };
        self.len -= 1;
        let bucket_count = self.buckets.len();
        let mut hole = position;
        let mut next = self.next_position(hole);
        for _ in 0..bucket_count {
            let Some(candidate) = &self.buckets[next] else {
                break;
            };
            let home = self.home(candidate.fragment);
            if Self::distance(home, next, bucket_count) >= Self::distance(hole, next, bucket_count)
            {
                self.move_bucket(next, hole);
                hole = next;
            }
            next = self.next_position(next);
        }
        resident
    }

    /// Drops a resident entry from the table, the expiry index and the
    /// accounting. Its ring element is the caller's business.
    fn detach(&mut self, slot: SlotId) -> (Resident<K, V>, Option<u64>) {
        let deadline = self.deadline_of(slot);
        let resident = self.take_bucket(slot as usize);
        if let Some(deadline) = deadline {
            self.expiry.remove(&(deadline, hash_of(&resident.key)));
        }
        let weight = u64::from(resident.weight);
        if resident.queue == Queue::Small {
            self.small_weight -= weight;
        }
        self.weight_total -= weight;
        (resident, deadline)
    }

    fn grow(&mut self) {
        let bucket_count = self.buckets.len() * 2;
        let old_buckets = std::mem::replace(
            &mut self.buckets,
            std::iter::repeat_with(|| None).take(bucket_count).collect(),
        );
        let old_deadlines = std::mem::take(&mut self.deadlines);
        if !old_deadlines.is_empty() {
            self.deadlines = vec![0; bucket_count];
        }
        for (old_position, resident) in old_buckets.into_iter().enumerate() {
            let Some(resident) = resident else { continue };
            let position = self.free_position(resident.fragment);
            *self.ring(resident.queue).element(resident.ring_sequence) = position as SlotId;
            if resident.has_deadline {
                self.deadlines[position] = old_deadlines[old_position];
            }
            self.buckets[position] = Some(resident);
        }
    }

    /// The first empty bucket of `fragment`'s probe sequence.
    fn free_position(&self, fragment: u32) -> usize {
        let mut position = self.home(fragment);
        for _ in 0..self.buckets.len() {
            if self.buckets[position].is_none() {
                return position;
            }
            position = self.next_position(position);
        }
        panic!("shard table is full ({} buckets)", self.buckets.len());
    }

    /// Makes room for `incoming_weight` more, never evicting `self.protected`.
    fn evict_to_fit(&mut self, incoming_weight: u64) {
        while self.weight_total + incoming_weight > self.capacity_weight {
            let small_over_share =
                self.small_weight * 100 >= self.weight_total * SMALL_SHARE_PERCENT;
            let victim = if small_over_share || self.main.live_len() == 0 {
                self.evict_small().or_else(|| self.evict_main())
            } else {
                self.evict_main().or_else(|| self.evict_small())
            };
            let Some(victim) = victim else {
                panic!(
                    "over capacity ({} + {incoming_weight} > {}) with nothing to evict",
                    self.weight_total, self.capacity_weight
                );
            };
            let (resident, _) = self.detach(victim);
            if resident.queue == Queue::Small {
                let resident_len = self.len as u64;
                self.ghost
                    .remember(Self::ghost_hash(resident.fragment), resident_len);
            }
        }
    }

    /// Walks small from its tail: promotes hit entries to main, returns the
    /// first cold one (already out of the ring).
    fn evict_small(&mut self) -> Option<SlotId> {
        let steps_max = self.small.positions.len() + 1;
        for _ in 0..steps_max {
            let slot = self.small.pop_front()?;
            if slot == TOMBSTONE {
                continue;
            }
            if Some(slot) == self.protected {
                let sequence = self.small.push_back(slot);
                self.bucket_mut(slot).ring_sequence = sequence;
                if self.small.live_len() == 1 {
                    return None;
                }
                continue;
            }
            let resident = self.resident(slot);
            if resident.frequency.get() >= PROMOTE_FREQUENCY_MIN {
                let weight = u64::from(resident.weight);
                self.small_weight -= weight;
                let sequence = self.main.push_back(slot);
                let resident = self.bucket_mut(slot);
                resident.frequency.set(0);
                resident.queue = Queue::Main;
                resident.ring_sequence = sequence;
            } else {
                return Some(slot);
            }
        }
        None
    }

    /// CLOCK over main: reinserts entries with a count (decremented) and
    /// returns the first without one (already out of the ring).
    fn evict_main(&mut self) -> Option<SlotId> {
        let steps_max = (usize::from(FREQUENCY_MAX) + 1) * self.main.positions.len() + 1;
        for _ in 0..steps_max {
            let slot = self.main.pop_front()?;
            if slot == TOMBSTONE {
                continue;
            }
            let protected = Some(slot) == self.protected;
            let frequency = self.resident(slot).frequency.get();
            if frequency > 0 || protected {
                let sequence = self.main.push_back(slot);
                let resident = self.bucket_mut(slot);
                resident.frequency.set(frequency.saturating_sub(1));
                resident.ring_sequence = sequence;
                if protected && self.main.live_len() == 1 {
                    return None;
                }
            } else {
                return Some(slot);
            }
        }
        None
    }

    fn bucket_mut(&mut self, slot: SlotId) -> &mut Resident<K, V> {
        match &mut self.buckets[slot as usize] {
            Some(resident) => resident,
            None => panic!("bucket {slot} is empty"),
        }
    }

    /// Drops tombstones from the rings once they outnumber the live
    /// elements (plus slack), so removals without evictions cannot grow the
    /// rings without bound; renumbers the survivors.
    fn compact_if_needed(&mut self) {
        for queue in [Queue::Small, Queue::Main] {
            let ring = self.ring(queue);
            if ring.tombstones <= ring.live_len() + TOMBSTONE_SLACK {
                continue;
            }
            ring.positions.retain(|&position| position != TOMBSTONE);
            ring.tombstones = 0;
            let front_sequence = ring.front_sequence;
            let positions = std::mem::take(&mut ring.positions);
            for (offset, &position) in positions.iter().enumerate() {
                self.bucket_mut(position).ring_sequence =
                    front_sequence.wrapping_add(offset as u32);
            }
            self.ring(queue).positions = positions;
        }
    }

    fn set_deadline(&mut self, slot: SlotId, key_hash: u64, expire_at_ms: Option<u64>) {
        if let Some(old) = self.deadline_of(slot) {
            self.expiry.remove(&(old, key_hash));
        }
        self.bucket_mut(slot).has_deadline = expire_at_ms.is_some();
        if let Some(expire_at_ms) = expire_at_ms {
            if self.deadlines.is_empty() {
                self.deadlines = vec![0; self.buckets.len()];
            }
            self.deadlines[slot as usize] = expire_at_ms;
            self.expiry.insert((expire_at_ms, key_hash));
        }
    }
}

impl<K: Hash + Eq, V> NearShard<K, V> for S3FifoShard<K, V> {
    #[inline]
    fn find<Q>(&self, key_hash: u64, key: &Q) -> Option<SlotId>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let fragment = key_hash as u32;
        let mut position = self.home(fragment);
        // At most half full, so an empty bucket ends every probe; the bound
        // only guards that invariant.
        for _ in 0..self.buckets.len() {
            match &self.buckets[position] {
                None => return None,
                Some(resident) if resident.fragment == fragment && resident.key.borrow() == key => {
                    return Some(position as SlotId);
                }
                Some(_) => position = self.next_position(position),
            }
        }
        None
    }

    #[inline]
    fn value(&self, slot: SlotId) -> &V {
        &self.resident(slot).value
    }

    #[inline]
    fn expire_at_ms(&self, slot: SlotId) -> Option<u64> {
        self.deadline_of(slot)
    }

    #[inline]
    fn record_hit_shared(&self, slot: SlotId) -> bool {
        self.resident(slot).frequency.bump(FREQUENCY_MAX);
        true
    }

    fn record_hit(&mut self, slot: SlotId) {
        self.resident(slot).frequency.bump(FREQUENCY_MAX);
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
            let Some(&(expire_at_ms, key_hash)) = self.expiry.first() else {
                break;
            };
            if expire_at_ms > now_ms {
                break;
            }
            self.expiry.pop_first();
            // The expiry index is keyed by hash, not key; any entry with this
            // hash fragment and deadline is equally expired.
            let fragment = key_hash as u32;
            let mut position = self.home(fragment);
            for _ in 0..self.buckets.len() {
                let Some(resident) = &self.buckets[position] else {
                    break;
                };
                if resident.fragment == fragment
                    && resident.has_deadline
                    && self.deadlines[position] == expire_at_ms
                {
                    // Already out of the expiry index: clear the flag so
                    // `remove` does not look for it again.
                    self.bucket_mut(position as SlotId).has_deadline = false;
                    self.remove(position as SlotId);
                    break;
                }
                position = self.next_position(position);
            }
        }
    }

    fn insert(&mut self, key: K, key_hash: u64, value: V, weight: u64, expire_at_ms: Option<u64>) {
        assert!(self.fits(weight), "entry of weight {weight} cannot fit");
        debug_assert!(
            self.find(key_hash, &key).is_none(),
            "insert of a present key"
        );
        // The ghost is read before evicting: its cache miss then overlaps
        // the eviction's, and a victim's fingerprint cannot displace this
        // key's first.
        let fragment = key_hash as u32;
        let ghost_hash = Self::ghost_hash(fragment);
        let returning = self.ghost.contains(ghost_hash);
        self.evict_to_fit(weight);
        if (self.len + 1) * LOAD_DENOMINATOR > self.buckets.len() * LOAD_NUMERATOR {
            self.grow();
        }
        let queue = if returning {
            self.ghost.forget(ghost_hash);
            Queue::Main
        } else {
            self.small_weight += weight;
            Queue::Small
        };
        let position = self.free_position(fragment);
        let ring_sequence = self.ring(queue).push_back(position as SlotId);
        self.buckets[position] = Some(Resident {
            key,
            value,
            fragment,
            ring_sequence,
            weight: weight as u32,
            frequency: HitCell::default(),
            queue,
            has_deadline: false,
        });
        self.len += 1;
        self.weight_total += weight;
        if expire_at_ms.is_some() {
            self.set_deadline(position as SlotId, key_hash, expire_at_ms);
        }
    }

    fn replace(&mut self, slot: SlotId, value: V, weight: u64, expire_at_ms: Option<u64>) {
        assert!(self.fits(weight), "entry of weight {weight} cannot fit");
        let key_hash = hash_of(&self.resident(slot).key);
        self.set_deadline(slot, key_hash, expire_at_ms);
        let resident = self.bucket_mut(slot);
        resident.value = value;
        let old_weight = u64::from(resident.weight);
        resident.weight = weight as u32;
        resident.frequency.bump(FREQUENCY_MAX);
        if resident.queue == Queue::Small {
            self.small_weight = self.small_weight - old_weight + weight;
        }
        self.weight_total = self.weight_total - old_weight + weight;
        self.protected = Some(slot);
        self.evict_to_fit(0);
        self.protected = None;
    }

    fn remove(&mut self, slot: SlotId) -> (V, Option<u64>) {
        let (resident, deadline) = self.detach(slot);
        let ring = self.ring(resident.queue);
        *ring.element(resident.ring_sequence) = TOMBSTONE;
        ring.tombstones += 1;
        self.compact_if_needed();
        (resident.value, deadline)
    }

    fn len(&self) -> u64 {
        self.len as u64
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

    fn find(shard: &S3FifoShard<u64, u64>, key: u64) -> Option<SlotId> {
        shard.find(hash_of(&key), &key)
    }

    #[test]
    fn a_hit_key_survives_a_flood_of_one_hit_wonders() {
        let mut shard = S3FifoShard::new(100);
        insert(&mut shard, 0);
        let slot = find(&shard, 0).expect("resident");
        shard.record_hit(slot);
        for key in 1..10_000 {
            insert(&mut shard, key);
            assert!(shard.weight_total() <= 100);
            let slot = find(&shard, key).expect("just inserted");
            assert_eq!(*shard.value(slot), key);
        }
        assert!(find(&shard, 0).is_some(), "hot key evicted");
        assert_eq!(shard.len(), 100);
    }

    #[test]
    fn removals_without_evictions_stay_bounded() {
        let mut shard = S3FifoShard::new(1_000);
        for key in 0..100_000u64 {
            insert(&mut shard, key);
            insert(&mut shard, key + 1_000_000);
            let slot = find(&shard, key).expect("resident");
            assert_eq!(shard.remove(slot), (key, None));
        }
        // The last removal left a gap of one.
        assert_eq!(shard.len(), 999);
        assert!(
            shard.small.positions.len() + shard.main.positions.len()
                <= 2 * 1_000 + 2 * TOMBSTONE_SLACK + 2
        );
        for key in 99_001..100_000u64 {
            assert!(find(&shard, key + 1_000_000).is_some(), "{key} lost");
        }
    }

    #[test]
    fn growth_and_shifts_keep_every_entry_findable() {
        // Capacity far above the presize, so the table grows; removals shift.
        let mut shard = S3FifoShard::new(1 << 20);
        for key in 0..50_000u64 {
            insert(&mut shard, key);
        }
        for key in (0..50_000u64).step_by(3) {
            let slot = find(&shard, key).expect("resident");
            shard.remove(slot);
        }
        for key in 0..50_000u64 {
            assert_eq!(find(&shard, key).is_some(), key % 3 != 0, "key {key}");
        }
        for queue in [Queue::Small, Queue::Main] {
            let ring = shard.ring(queue);
            let front_sequence = ring.front_sequence;
            let positions: Vec<SlotId> = ring.positions.iter().copied().collect();
            for (offset, position) in positions.into_iter().enumerate() {
                if position != TOMBSTONE {
                    let resident = shard.resident(position);
                    assert_eq!(resident.queue, queue);
                    assert_eq!(
                        resident.ring_sequence,
                        front_sequence.wrapping_add(offset as u32)
                    );
                }
            }
        }
    }

    #[test]
    fn replace_keeps_the_entry_and_the_weight_bound() {
        let mut shard = S3FifoShard::new(10);
        for key in 0..10 {
            insert(&mut shard, key);
        }
        let slot = find(&shard, 3).expect("resident");
        shard.replace(slot, 33, 10, Some(5));
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.weight_total(), 10);
        let slot = find(&shard, 3).expect("the replaced entry stays");
        assert_eq!(*shard.value(slot), 33);
        assert_eq!(shard.expire_at_ms(slot), Some(5));
        shard.reclaim_expired(5, 4);
        assert_eq!(shard.len(), 0);
        assert!(!shard.has_deadlines());
    }
}
