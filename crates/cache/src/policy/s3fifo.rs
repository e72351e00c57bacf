//! S3-FIFO eviction (Yang et al., "FIFO queues are all you need for cache
//! eviction", SOSP 2023).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::list::{Links, List, NIL};
use super::{Policy, SlotId};
use crate::hash::FixedState;

/// A slot's access count saturates here (two bits in the paper).
const FREQUENCY_MAX: u8 = 3;
/// The small queue's share of the resident weight, in percent.
const SMALL_SHARE_PERCENT: u64 = 10;
/// A slot leaving the small queue with at least this count is promoted.
const PROMOTE_FREQUENCY_MIN: u8 = 1;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
enum Queue {
    #[default]
    None,
    Small,
    Main,
}

/// S3-FIFO: three FIFO queues.
///
/// - **small** (10% of the weight) takes newcomers. Most keys in real traces
///   are requested once; they leave through small quickly without disturbing
///   main ("quick demotion").
/// - **main** (the rest) holds keys that were hit while in small. Eviction from
///   main is CLOCK-like: a slot with a non-zero count is reinserted at the head
///   with its count decremented.
/// - **ghost** remembers the hashes (not the data) of keys evicted from small;
///   a key that comes back while still remembered goes straight to main.
///
/// Hits only bump a 2-bit counter (no list movement). Each eviction walks at
/// most `FREQUENCY_MAX` laps of main, so its work is bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Fifo {
    links: Links,
    small: List,
    main: List,
    small_weight: u64,
    total_weight: u64,
    frequency: Vec<u8>,
    weight: Vec<u64>,
    queue: Vec<Queue>,
    key_hash: Vec<u64>,
    /// Ghost entries, oldest first: `(key hash, insertion number)`.
    ghost_fifo: VecDeque<(u64, u64)>,
    /// Derived from `ghost_fifo` (latest insertion number per hash), so it is
    /// not serialized: a `HashMap`'s byte order would depend on its history.
    #[serde(skip)]
    ghost_index: HashMap<u64, u64, FixedState>,
    ghost_next_number: u64,
}

impl S3Fifo {
    fn is_ghost(&self, key_hash: u64) -> bool {
        self.ghost_index.contains_key(&key_hash)
    }

    fn remember_ghost(&mut self, key_hash: u64) {
        let number = self.ghost_next_number;
        self.ghost_next_number += 1;
        self.ghost_fifo.push_back((key_hash, number));
        self.ghost_index.insert(key_hash, number);
        // The paper sizes the ghost like main; resident entries bound it here.
        let ghost_len_max = (self.small.len + self.main.len).max(1) as usize;
        while self.ghost_fifo.len() > ghost_len_max {
            if let Some((old_hash, old_number)) = self.ghost_fifo.pop_front()
                && self.ghost_index.get(&old_hash) == Some(&old_number)
            {
                self.ghost_index.remove(&old_hash);
            }
        }
    }

    fn detach(&mut self, slot: SlotId) {
        let index = slot as usize;
        match self.queue[index] {
            Queue::Small => {
                self.links.unlink(&mut self.small, slot);
                self.small_weight -= self.weight[index];
            }
            Queue::Main => self.links.unlink(&mut self.main, slot),
            Queue::None => panic!("slot {slot} is not resident in S3-FIFO"),
        }
        self.queue[index] = Queue::None;
    }

    fn forget(&mut self, slot: SlotId) {
        self.detach(slot);
        self.total_weight -= self.weight[slot as usize];
    }

    /// Walks small from the tail: promotes hit slots to main, returns the
    /// first cold one (remembered in the ghost), or `None` if small has no
    /// evictable slot.
    fn evict_small(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        let steps_max = self.small.len + 1;
        for _ in 0..steps_max {
            let slot = self.small.tail;
            if slot == NIL || (Some(slot) == protected && self.small.len == 1) {
                return None;
            }
            let index = slot as usize;
            if Some(slot) == protected {
                // An overwritten slot can sit anywhere in small; it was just
                // touched, so it goes to the head rather than out.
                self.links.move_to_head(&mut self.small, slot);
            } else if self.frequency[index] >= PROMOTE_FREQUENCY_MIN {
                self.detach(slot);
                self.frequency[index] = 0;
                self.queue[index] = Queue::Main;
                self.links.push_head(&mut self.main, slot);
            } else {
                self.forget(slot);
                self.remember_ghost(self.key_hash[index]);
                return Some(slot);
            }
        }
        None
    }

    /// CLOCK over main: reinserts slots with a count, returns the first without.
    fn evict_main(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        let steps_max = (u64::from(FREQUENCY_MAX) + 1) * self.main.len + 1;
        for _ in 0..steps_max {
            let slot = self.main.tail;
            if slot == NIL {
                return None;
            }
            let index = slot as usize;
            if self.frequency[index] > 0 || Some(slot) == protected {
                self.frequency[index] = self.frequency[index].saturating_sub(1);
                self.links.move_to_head(&mut self.main, slot);
                if self.main.len == 1 && Some(slot) == protected {
                    return None;
                }
            } else {
                self.forget(slot);
                return Some(slot);
            }
        }
        None
    }
}

impl Policy for S3Fifo {
    fn on_insert(&mut self, slot: SlotId, key_hash: u64, weight: u64) {
        let index = slot as usize;
        if self.queue.len() <= index {
            self.frequency.resize(index + 1, 0);
            self.weight.resize(index + 1, 0);
            self.queue.resize(index + 1, Queue::None);
            self.key_hash.resize(index + 1, 0);
        }
        assert_eq!(self.queue[index], Queue::None, "slot {slot} inserted twice");
        self.frequency[index] = 0;
        self.weight[index] = weight;
        self.key_hash[index] = key_hash;
        self.total_weight += weight;
        if self.is_ghost(key_hash) {
            self.queue[index] = Queue::Main;
            self.links.push_head(&mut self.main, slot);
        } else {
            self.queue[index] = Queue::Small;
            self.small_weight += weight;
            self.links.push_head(&mut self.small, slot);
        }
    }

    fn on_hit(&mut self, slot: SlotId) {
        let frequency = &mut self.frequency[slot as usize];
        *frequency = (*frequency + 1).min(FREQUENCY_MAX);
    }

    fn on_resize(&mut self, slot: SlotId, weight: u64) {
        let index = slot as usize;
        let old = self.weight[index];
        self.total_weight = self.total_weight - old + weight;
        if self.queue[index] == Queue::Small {
            self.small_weight = self.small_weight - old + weight;
        }
        self.weight[index] = weight;
    }

    fn on_remove(&mut self, slot: SlotId) {
        self.forget(slot);
    }

    fn evict(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        let small_over_share = self.small_weight * 100 >= self.total_weight * SMALL_SHARE_PERCENT;
        let victim = if small_over_share || self.main.is_empty() {
            self.evict_small(protected)
                .or_else(|| self.evict_main(protected))
        } else {
            self.evict_main(protected)
                .or_else(|| self.evict_small(protected))
        };
        match (victim, protected) {
            (Some(slot), _) => Some(slot),
            // Only the protected slot is left: the contract lets us take it.
            (None, Some(slot)) if self.small.len + self.main.len == 1 => {
                self.forget(slot);
                Some(slot)
            }
            (None, _) => {
                assert_eq!(self.small.len + self.main.len, 0, "S3-FIFO found no victim");
                None
            }
        }
    }

    fn len(&self) -> u64 {
        self.small.len + self.main.len
    }

    fn rebuild_derived(&mut self) {
        self.ghost_index.clear();
        for &(key_hash, number) in &self.ghost_fifo {
            self.ghost_index.insert(key_hash, number);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hit_wonders_leave_through_small() {
        let mut policy = S3Fifo::default();
        // Ten slots; slot 0 is hit, so it is promoted rather than evicted.
        for slot in 0..10 {
            policy.on_insert(slot, u64::from(slot), 1);
        }
        policy.on_hit(0);
        assert_eq!(policy.evict(None), Some(1));
        assert_eq!(policy.queue[0], Queue::Main);
        assert!(policy.is_ghost(1));
    }

    #[test]
    fn ghost_hit_goes_straight_to_main() {
        let mut policy = S3Fifo::default();
        for slot in 0..4 {
            policy.on_insert(slot, 100 + u64::from(slot), 1);
        }
        let victim = policy.evict(None).expect("a victim");
        policy.on_insert(victim, 100 + u64::from(victim), 1);
        assert_eq!(policy.queue[victim as usize], Queue::Main);
    }

    #[test]
    fn protected_slot_is_kept_while_others_exist() {
        let mut policy = S3Fifo::default();
        policy.on_insert(0, 0, 1);
        policy.on_insert(1, 1, 1);
        assert_eq!(policy.evict(Some(0)), Some(1));
        assert_eq!(policy.evict(Some(0)), Some(0));
        assert_eq!(policy.evict(None), None);
    }
}
