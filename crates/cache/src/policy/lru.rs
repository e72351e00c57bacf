//! Exact least-recently-used eviction.

use serde::{Deserialize, Serialize};

use super::list::{LinkStore, Links, List, NIL};
use super::{Policy, SlotId};

/// Exact LRU: one list ordered by last access; the victim is the tail.
///
/// Every hit moves the slot to the head, so a hit costs a few pointer writes
/// under the caller's exclusive borrow. LRU is the baseline the other
/// policies are measured against; it is defenceless against scans (one pass
/// over cold keys flushes the whole cache).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lru {
    links: Links,
    list: List,
}

impl Policy for Lru {
    #[inline]
    fn on_insert(&mut self, slot: SlotId, _key_hash: u64, _weight: u64) {
        self.links.ensure(slot);
        self.list.push_head(&mut self.links, slot);
    }

    #[inline]
    fn on_hit(&mut self, slot: SlotId) {
        self.list.move_to_head(&mut self.links, slot);
    }

    fn on_resize(&mut self, _slot: SlotId, _weight: u64) {}

    fn on_remove(&mut self, slot: SlotId) {
        self.list.unlink(&mut self.links, slot);
    }

    fn evict(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        let mut victim = self.list.tail;
        if victim != NIL && Some(victim) == protected && self.list.len > 1 {
            victim = self.links.newer(victim);
        }
        if victim == NIL {
            return None;
        }
        self.list.unlink(&mut self.links, victim);
        Some(victim)
    }

    fn len(&self) -> u64 {
        self.list.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_and_respects_protection() {
        let mut lru = Lru::default();
        for slot in 0..3 {
            lru.on_insert(slot, 0, 1);
        }
        lru.on_hit(0);
        assert_eq!(lru.evict(None), Some(1));
        assert_eq!(lru.evict(Some(2)), Some(0));
        assert_eq!(
            lru.evict(Some(2)),
            Some(2),
            "the only resident may be evicted"
        );
        assert_eq!(lru.evict(None), None);
    }
}
