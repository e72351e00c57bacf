//! Least-frequently-used eviction with dynamic aging (LFU-DA).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Policy, SlotId};

/// Per-slot bookkeeping: the priority key the slot is filed under.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Rank {
    frequency: u64,
    priority: u64,
    sequence: u64,
}

/// LFU with dynamic aging (Arlitt et al., "LFU-DA").
///
/// Plain LFU never forgets: a key that was hot yesterday keeps a count no
/// newcomer can reach. LFU-DA files each slot under
/// `priority = cache_age + frequency`, where `cache_age` is the priority of
/// the last victim. As victims are evicted the age rises, so a newcomer starts
/// level with old keys whose counts were earned long ago, and stale counts
/// age out without an O(n) halving pass.
///
/// Ties break by the last-touch sequence number (least recent first), so the
/// order is total and deterministic. Each hit costs O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lfu {
    /// `(priority, sequence, slot)`: the first element is the next victim.
    order: BTreeSet<(u64, u64, SlotId)>,
    ranks: Vec<Rank>,
    cache_age: u64,
    next_sequence: u64,
}

impl Lfu {
    fn file(&mut self, slot: SlotId, frequency: u64) {
        let rank = Rank {
            frequency,
            priority: self.cache_age.saturating_add(frequency),
            sequence: self.next_sequence,
        };
        self.next_sequence += 1;
        self.ranks[slot as usize] = rank;
        let inserted = self.order.insert((rank.priority, rank.sequence, slot));
        assert!(inserted, "slot {slot} filed twice");
    }

    fn unfile(&mut self, slot: SlotId) -> Rank {
        let rank = self.ranks[slot as usize];
        let removed = self.order.remove(&(rank.priority, rank.sequence, slot));
        assert!(removed, "slot {slot} is not resident in the LFU order");
        rank
    }
}

impl Policy for Lfu {
    fn on_insert(&mut self, slot: SlotId, _key_hash: u64, _weight: u64) {
        if self.ranks.len() <= slot as usize {
            crate::growth::resize_to(&mut self.ranks, slot as usize + 1, Rank::default());
        }
        self.file(slot, 1);
    }

    fn on_hit(&mut self, slot: SlotId) {
        let rank = self.unfile(slot);
        self.file(slot, rank.frequency.saturating_add(1));
    }

    fn on_resize(&mut self, _slot: SlotId, _weight: u64) {}

    fn on_remove(&mut self, slot: SlotId) {
        self.unfile(slot);
    }

    fn evict(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        let mut candidates = self.order.iter();
        let first = *candidates.next()?;
        let victim = match (protected == Some(first.2), candidates.next()) {
            (true, Some(second)) => *second,
            _ => first,
        };
        self.order.remove(&victim);
        // Dynamic aging: later insertions start at the victim's priority.
        self.cache_age = self.cache_age.max(victim.0);
        Some(victim.2)
    }

    fn len(&self) -> u64 {
        self.order.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_frequent_then_least_recent() {
        let mut lfu = Lfu::default();
        for slot in 0..3 {
            lfu.on_insert(slot, 0, 1);
        }
        lfu.on_hit(0);
        lfu.on_hit(0);
        lfu.on_hit(2);
        assert_eq!(lfu.evict(None), Some(1));
        assert_eq!(lfu.evict(None), Some(2));
    }

    #[test]
    fn aging_lets_newcomers_displace_stale_heavy_hitters() {
        let mut lfu = Lfu::default();
        lfu.on_insert(0, 0, 1);
        for _ in 0..5 {
            lfu.on_hit(0); // slot 0: frequency 6, priority 6
        }
        // A stream of newcomers, each hit a few times, raises the cache age.
        let mut newest = 1;
        for slot in 1..40 {
            lfu.on_insert(slot, 0, 1);
            lfu.on_hit(slot);
            lfu.on_hit(slot);
            if slot > 1 {
                lfu.evict(Some(slot));
            }
            newest = slot;
        }
        assert!(lfu.ranks[0].priority < lfu.ranks[newest as usize].priority);
        assert!(
            !lfu.order.iter().any(|entry| entry.2 == 0),
            "stale slot 0 aged out"
        );
    }
}
