//! SIEVE eviction (Zhang et al., NSDI 2024).

use serde::{Deserialize, Serialize};

use super::hit_bits::HitBits;
use super::list::{LinkStore, Links, List, NIL};
use super::{Policy, SlotId};

/// SIEVE: a FIFO queue, one "visited" bit per slot and a hand.
///
/// A hit only sets the bit (no list movement, which is what makes SIEVE cheap
/// under concurrency). To evict, the hand walks from where it stopped towards
/// the head, clearing bits, and takes the first unvisited slot; newcomers enter
/// at the head, so a one-hit wonder is evicted the first time the hand passes.
/// The walk is bounded: after one full lap every bit is clear.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sieve {
    links: Links,
    queue: List,
    visited: HitBits,
    /// Next slot the hand examines; [`NIL`] means "start at the tail".
    hand: SlotId,
}

impl Sieve {
    pub fn new() -> Self {
        Sieve {
            hand: NIL,
            ..Sieve::default()
        }
    }

    /// The next slot for the hand after `slot`, wrapping to the tail.
    fn step(&self, slot: SlotId) -> SlotId {
        match self.links.newer(slot) {
            NIL => self.queue.tail,
            newer => newer,
        }
    }
}

impl Policy for Sieve {
    #[inline]
    fn on_insert(&mut self, slot: SlotId, _key_hash: u64, _weight: u64) {
        if self.visited.len() <= slot as usize {
            self.visited.resize(slot as usize + 1);
        }
        self.visited.set(slot as usize, 0);
        self.links.ensure(slot);
        self.queue.push_head(&mut self.links, slot);
    }

    #[inline]
    fn on_hit(&mut self, slot: SlotId) {
        self.visited.bump(slot as usize, 1);
    }

    #[inline]
    fn on_hit_shared(&self, slot: SlotId) -> bool {
        self.visited.bump(slot as usize, 1);
        true
    }

    fn on_resize(&mut self, _slot: SlotId, _weight: u64) {}

    fn on_remove(&mut self, slot: SlotId) {
        if self.hand == slot {
            self.hand = self.links.newer(slot);
        }
        self.queue.unlink(&mut self.links, slot);
    }

    fn evict(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        if self.queue.is_empty() {
            return None;
        }
        let mut cursor = if self.hand == NIL {
            self.queue.tail
        } else {
            self.hand
        };
        // Two laps clear every bit and pass every unprotected slot once.
        let steps_max = 2 * self.queue.len + 1;
        for _ in 0..steps_max {
            let index = cursor as usize;
            if self.visited.get(index) != 0 {
                self.visited.set(index, 0);
            } else if Some(cursor) != protected || self.queue.len == 1 {
                self.hand = self.links.newer(cursor);
                self.queue.unlink(&mut self.links, cursor);
                return Some(cursor);
            }
            cursor = self.step(cursor);
        }
        unreachable!(
            "SIEVE hand made two laps of {} slots without a victim",
            self.queue.len
        )
    }

    fn len(&self) -> u64 {
        self.queue.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visited_slots_survive_one_pass() {
        let mut sieve = Sieve::new();
        for slot in 0..4 {
            sieve.on_insert(slot, 0, 1);
        }
        sieve.on_hit(0);
        sieve.on_hit(2);
        assert_eq!(sieve.evict(None), Some(1));
        assert_eq!(sieve.evict(None), Some(3));
        assert_eq!(
            sieve.evict(None),
            Some(0),
            "bits were cleared by the first pass"
        );
    }
}
