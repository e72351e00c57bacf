//! A miniature cache: a [`Blend`] over a sample of the keys, with its own
//! slots and its own key index, that the adaptive policy runs beside the
//! real cache to see what another window share or ghost size would have
//! hit (miniature simulation: Waldspurger et al., "Cache modeling and
//! optimization using miniature simulations", USENIX ATC 2017).

use serde::{Deserialize, Serialize};

use super::blend::{Blend, GhostSize};
use super::key_index::KeyIndex;
use super::{Policy, SlotId};

/// A shadow cache: sees only sampled requests, holds only key hashes.
///
/// Deterministic: its index ([`KeyIndex`]) is a function of the calls and
/// freed slots are reused last-in first-out. Bounded: it holds at most about `capacity_weight` worth of
/// entries, which the adaptive policy sets to the real cache's weight
/// times the sampling rate. An entry keeps the weight it had when the
/// shadow inserted it (a resize of the real entry is not followed: a
/// shadow estimates, it need not be exact).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Miniature {
    blend: Blend,
    slot_of_key: KeyIndex,
    /// Key hash per slot (meaningful for resident slots only).
    key_of_slot: Vec<u64>,
    free_slots: Vec<SlotId>,
}

impl Miniature {
    pub(crate) fn configure(&mut self, window_share: u32, ghost_size: GhostSize) {
        self.blend.set_window_share(window_share);
        self.blend.set_ghost_size(ghost_size);
    }

    /// Entries resident.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.blend.len()
    }

    /// Slots it has ever used (its per-slot arrays' length).
    pub(crate) fn slot_count(&self) -> u64 {
        self.key_of_slot.len() as u64
    }

    /// Drops every entry whose key hash `keep` refuses (when the sampling
    /// rate halves). O(entries), in key order.
    pub(crate) fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        let dropped: Vec<SlotId> = (self.slot_of_key.slots())
            .filter(|&slot| !keep(self.key_of_slot[slot as usize]))
            .collect();
        for slot in dropped {
            self.blend.on_remove(slot);
            self.slot_of_key
                .remove(self.key_of_slot[slot as usize], &self.key_of_slot);
            self.free_slots.push(slot);
        }
    }

    /// One sampled request: a lookup that inserts on a miss, then evicts
    /// down to `capacity_weight`. Returns whether it hit.
    pub(crate) fn request(&mut self, key_hash: u64, weight: u64, capacity_weight: u64) -> bool {
        if let Some(slot) = self.slot_of_key.get(key_hash, &self.key_of_slot) {
            self.blend.on_hit(slot);
            return true;
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.key_of_slot.push(0);
                (self.key_of_slot.len() - 1) as SlotId
            }
        };
        self.key_of_slot[slot as usize] = key_hash;
        self.slot_of_key.insert(slot, &self.key_of_slot);
        self.blend.on_insert(slot, key_hash, weight);
        // Each pass removes one entry, so at most `len` passes.
        let passes_max = self.blend.len();
        for _ in 0..passes_max {
            if self.blend.weight() <= capacity_weight || self.blend.len() <= 1 {
                break;
            }
            let victim = self
                .blend
                .evict(Some(slot))
                .expect("more than one resident, so a victim");
            let victim_key = self.key_of_slot[victim as usize];
            self.slot_of_key.remove(victim_key, &self.key_of_slot);
            self.free_slots.push(victim);
        }
        false
    }
}
