//! The near cache's hash index: key hash ─► slot id, in one array.
//!
//! Each bucket is one `u64`: the low 32 bits of the key's hash in the high
//! half, the slot id in the low half. Open addressing with linear probing,
//! at most half full, and backward-shift deletion (no tombstones).
//!
//! Why not `hashbrown::HashTable<SlotId>` as in [`crate::table`]: a
//! hashbrown lookup reads a control-byte group and then, in another cache
//! line, the bucket holding the slot id, before the slot itself; here the
//! hash fragment and the slot id share a bucket, so a hit reads one index
//! line and then the slot. Measured with `near-speed`: see the crate docs.

use crate::policy::{NIL_SLOT, SlotId};

/// No slot id is `NIL_SLOT`, so this never collides with an occupied bucket.
const EMPTY: u64 = u64::MAX;
/// Smallest table, in buckets (a power of two).
const BUCKETS_MIN: usize = 16;

#[derive(Debug, Clone)]
pub(super) struct SlotIndex {
    buckets: Vec<u64>,
    /// `buckets.len() - 1`; the length is a power of two.
    mask: usize,
    len: usize,
}

impl SlotIndex {
    /// An index that holds `len_expected` slots without growing.
    pub(super) fn with_capacity(len_expected: usize) -> Self {
        let bucket_count = len_expected
            .saturating_mul(2)
            .max(BUCKETS_MIN)
            .next_power_of_two();
        SlotIndex {
            buckets: vec![EMPTY; bucket_count],
            mask: bucket_count - 1,
            len: 0,
        }
    }

    #[inline]
    fn fragment(key_hash: u64) -> u32 {
        key_hash as u32
    }

    #[inline]
    fn home(&self, fragment: u32) -> usize {
        fragment as usize & self.mask
    }

    /// The first slot indexed under `key_hash` for which `is_key` holds.
    #[inline]
    pub(super) fn find(
        &self,
        key_hash: u64,
        mut is_key: impl FnMut(SlotId) -> bool,
    ) -> Option<SlotId> {
        let fragment = Self::fragment(key_hash);
        let mut position = self.home(fragment);
        // At most half full, so an empty bucket ends every probe; the bound
        // only guards the invariant.
        for _ in 0..self.buckets.len() {
            let bucket = self.buckets[position];
            if bucket == EMPTY {
                return None;
            }
            if (bucket >> 32) as u32 == fragment {
                let slot = bucket as SlotId;
                if is_key(slot) {
                    return Some(slot);
                }
            }
            position = (position + 1) & self.mask;
        }
        None
    }

    /// Indexes `slot` under `key_hash` (the caller guarantees it is not
    /// indexed yet).
    pub(super) fn insert(&mut self, key_hash: u64, slot: SlotId) {
        assert!(slot != NIL_SLOT, "slot id {slot} is reserved");
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow();
        }
        let fragment = Self::fragment(key_hash);
        let mut position = self.home(fragment);
        while self.buckets[position] != EMPTY {
            position = (position + 1) & self.mask;
        }
        self.buckets[position] = (u64::from(fragment) << 32) | u64::from(slot);
        self.len += 1;
    }

    /// Removes `slot`, indexed under `key_hash`.
    ///
    /// # Panics
    /// If `slot` is not indexed under `key_hash`.
    pub(super) fn remove(&mut self, key_hash: u64, slot: SlotId) {
        let fragment = Self::fragment(key_hash);
        let wanted = (u64::from(fragment) << 32) | u64::from(slot);
        let mut hole = self.home(fragment);
        let mut probes = 0;
        while self.buckets[hole] != wanted {
            assert!(
                self.buckets[hole] != EMPTY && probes < self.buckets.len(),
                "slot {slot} missing from the index"
            );
            hole = (hole + 1) & self.mask;
            probes += 1;
        }
        // Backward shift: pull later members of the run into the hole when
        // their home is at or before it, so no probe meets a gap early.
        let mut next = (hole + 1) & self.mask;
        while self.buckets[next] != EMPTY {
            let home = self.home((self.buckets[next] >> 32) as u32);
            let distance_home_to_next = next.wrapping_sub(home) & self.mask;
            let distance_hole_to_next = next.wrapping_sub(hole) & self.mask;
            if distance_home_to_next >= distance_hole_to_next {
                self.buckets[hole] = self.buckets[next];
                hole = next;
            }
            next = (next + 1) & self.mask;
        }
        self.buckets[hole] = EMPTY;
        self.len -= 1;
    }

    fn grow(&mut self) {
        let bucket_count = self.buckets.len() * 2;
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; bucket_count]);
        self.mask = bucket_count - 1;
        for bucket in old.into_iter().filter(|&bucket| bucket != EMPTY) {
            let mut position = self.home((bucket >> 32) as u32);
            while self.buckets[position] != EMPTY {
                position = (position + 1) & self.mask;
            }
            self.buckets[position] = bucket;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Inserts and removes with deliberately colliding hashes; every
        /// indexed slot stays findable and removed ones disappear.
        #[test]
        fn agrees_with_a_map(operations in prop::collection::vec((0u64..64, any::<bool>()), 1..400)) {
            let mut index = SlotIndex::with_capacity(0);
            let mut model: BTreeMap<u64, SlotId> = BTreeMap::new();
            for (step, (key, insert)) in operations.into_iter().enumerate() {
                // Few distinct hashes, so runs and wrap-around are common.
                let key_hash = key % 7 * 3 + 0xFFFF_FFF0;
                match (insert, model.get(&key).copied()) {
                    (true, None) => {
                        index.insert(key_hash, step as SlotId);
                        model.insert(key, step as SlotId);
                    }
                    (false, Some(slot)) => {
                        index.remove(key_hash, slot);
                        model.remove(&key);
                    }
                    _ => {}
                }
                for (&key, &slot) in &model {
                    let key_hash = key % 7 * 3 + 0xFFFF_FFF0;
                    prop_assert_eq!(index.find(key_hash, |found| found == slot), Some(slot));
                }
                prop_assert_eq!(index.len, model.len());
            }
        }
    }
}
