//! The key index of a miniature cache: key hash -> slot, open addressing.

use serde::{Deserialize, Serialize};

use super::SlotId;
use super::list::NIL;

/// Smallest table, in buckets.
const BUCKETS_MIN: usize = 16;

/// Key hash -> slot, for a miniature cache: a table of slot ids with linear
/// probing and backward-shift deletion; the keys themselves live in the
/// caller's per-slot array (`key_of_slot`), so a bucket is 4 bytes.
///
/// Why not a `BTreeMap`: each sampled request looks a key up in five
/// shadows, and a B-tree lookup walks several nodes where this reads one
/// or two buckets (with the adaptive policy, `store-speed` went from 938
/// to 794 instructions per operation under cachegrind). Deterministic: the layout is a function of the calls (growth
/// re-inserts in bucket order) and is serialized as it is, so a restored
/// index continues identically. At most half full; it grows and never
/// shrinks, so it is bounded by twice the most entries it ever held (in
/// buckets, rounded up to a power of two).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyIndex {
    buckets: Vec<SlotId>,
    len: usize,
}

impl KeyIndex {
    #[inline]
    fn home(&self, key_hash: u64) -> usize {
        // The low bits: sampling chose keys by a salted re-hash, so these
        // are still uniform.
        key_hash as usize & (self.buckets.len() - 1)
    }

    /// The bucket holding `key_hash`, if any.
    #[inline]
    fn position(&self, key_hash: u64, key_of_slot: &[u64]) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let mut position = self.home(key_hash);
        // At most half full, so an empty bucket ends every probe.
        for _ in 0..self.buckets.len() {
            let slot = self.buckets[position];
            if slot == NIL {
                return None;
            }
            if key_of_slot[slot as usize] == key_hash {
                return Some(position);
            }
            position = (position + 1) & mask;
        }
        None
    }

    #[inline]
    pub(crate) fn get(&self, key_hash: u64, key_of_slot: &[u64]) -> Option<SlotId> {
        self.position(key_hash, key_of_slot)
            .map(|position| self.buckets[position])
    }

    /// Indexes `slot`, whose key `key_of_slot[slot]` must not be indexed.
    pub(crate) fn insert(&mut self, slot: SlotId, key_of_slot: &[u64]) {
        if (self.len + 1) * 2 > self.buckets.len() {
            self.rebuild((self.buckets.len() * 2).max(BUCKETS_MIN), key_of_slot);
        }
        self.place(slot, key_of_slot);
        self.len += 1;
    }

    fn place(&mut self, slot: SlotId, key_of_slot: &[u64]) {
        let mask = self.buckets.len() - 1;
        let mut position = self.home(key_of_slot[slot as usize]);
        while self.buckets[position] != NIL {
            position = (position + 1) & mask;
        }
        self.buckets[position] = slot;
    }

    fn rebuild(&mut self, bucket_count: usize, key_of_slot: &[u64]) {
        let old = std::mem::replace(&mut self.buckets, vec![NIL; bucket_count]);
        for slot in old.into_iter().filter(|&slot| slot != NIL) {
            self.place(slot, key_of_slot);
        }
    }

    /// The indexed slots, in bucket order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = SlotId> + '_ {
        self.buckets.iter().copied().filter(|&slot| slot != NIL)
    }

    /// Removes `key_hash` (which must be indexed), shifting later entries
    /// of its probe run back so every probe still ends at an empty bucket.
    pub(crate) fn remove(&mut self, key_hash: u64, key_of_slot: &[u64]) {
        let mut hole = self
            .position(key_hash, key_of_slot)
            .unwrap_or_else(|| panic!("key hash {key_hash:#x} is not in the miniature's index"));
        let mask = self.buckets.len() - 1;
        let mut position = (hole + 1) & mask;
        loop {
            let slot = self.buckets[position];
            if slot == NIL {
                break;
            }
            let home = self.home(key_of_slot[slot as usize]);
            // Move it into the hole unless its home lies cyclically in
            // (hole, position]: then it is already as close as it can be.
            let distance_to_home = position.wrapping_sub(home) & mask;
            let distance_to_hole = position.wrapping_sub(hole) & mask;
            if distance_to_home >= distance_to_hole {
                self.buckets[hole] = slot;
                hole = position;
            }
            position = (position + 1) & mask;
        }
        self.buckets[hole] = NIL;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::hash::fmix64;

    /// Random inserts and removes, checked against a `BTreeMap`.
    #[test]
    fn agrees_with_a_map() {
        let mut index = KeyIndex::default();
        let mut model: BTreeMap<u64, SlotId> = BTreeMap::new();
        let slots = 300;
        let mut key_of_slot = vec![0u64; slots];
        let mut free: Vec<SlotId> = (0..slots as SlotId).collect();
        for step in 0..20_000u64 {
            // Few distinct keys, some colliding in the low bits.
            let key_hash = fmix64(step % 997) & 0xffff_0000_0fff;
            match model.get(&key_hash) {
                Some(&slot) if step % 3 != 0 => {
                    index.remove(key_hash, &key_of_slot);
                    model.remove(&key_hash);
                    free.push(slot);
                }
                Some(_) => {}
                None => {
                    if let Some(slot) = free.pop() {
                        key_of_slot[slot as usize] = key_hash;
                        index.insert(slot, &key_of_slot);
                        model.insert(key_hash, slot);
                    }
                }
            }
            for (&key, &slot) in model.iter().take(5) {
                assert_eq!(index.get(key, &key_of_slot), Some(slot), "step {step}");
            }
            assert_eq!(index.len, model.len());
        }
        for (&key, &slot) in &model {
            assert_eq!(index.get(key, &key_of_slot), Some(slot));
        }
        assert_eq!(index.get(1, &key_of_slot), None);
    }
}
