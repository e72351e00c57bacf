//! Intrusive doubly-linked lists over slot ids, shared by the queue-based
//! policies.
//!
//! Why intrusive: a policy must move or unlink a slot in O(1) given only its
//! id, and must not allocate per entry. The links live in per-slot storage
//! (any [`LinkStore`]): LRU and SIEVE use the plain arrays of [`Links`];
//! S3-FIFO keeps its links inside its per-slot record so that one cache line
//! holds everything an eviction step reads. One store can carry several
//! [`List`]s (S3-FIFO's small and main queues) because a slot is in at most
//! one list at a time.

use serde::{Deserialize, Serialize};

use super::SlotId;

/// "No slot": the end of a list.
pub const NIL: SlotId = SlotId::MAX;

/// Per-slot "newer"/"older" pointers.
pub trait LinkStore {
    fn newer(&self, slot: SlotId) -> SlotId;
    fn older(&self, slot: SlotId) -> SlotId;
    fn set_newer(&mut self, slot: SlotId, newer: SlotId);
    fn set_older(&mut self, slot: SlotId, older: SlotId);
}

/// The ends of one list. The head is the newest slot, the tail the oldest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct List {
    pub head: SlotId,
    pub tail: SlotId,
    pub len: u64,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl List {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Links `slot`, which must not be in any list, as the head.
    #[inline]
    pub fn push_head<L: LinkStore>(&mut self, links: &mut L, slot: SlotId) {
        links.set_newer(slot, NIL);
        links.set_older(slot, self.head);
        if self.head == NIL {
            self.tail = slot;
        } else {
            links.set_newer(self.head, slot);
        }
        self.head = slot;
        self.len += 1;
    }

    /// Unlinks `slot`, which must be in this list.
    #[inline]
    pub fn unlink<L: LinkStore>(&mut self, links: &mut L, slot: SlotId) {
        assert!(self.len > 0, "unlink of slot {slot} from an empty list");
        let (newer, older) = (links.newer(slot), links.older(slot));
        if newer == NIL {
            assert_eq!(
                self.head, slot,
                "slot {slot} has no newer neighbour but is not the head"
            );
            self.head = older;
        } else {
            links.set_older(newer, older);
        }
        if older == NIL {
            assert_eq!(
                self.tail, slot,
                "slot {slot} has no older neighbour but is not the tail"
            );
            self.tail = newer;
        } else {
            links.set_newer(older, newer);
        }
        links.set_newer(slot, NIL);
        links.set_older(slot, NIL);
        self.len -= 1;
    }

    /// Moves `slot`, which must be in this list, to the head.
    #[inline]
    pub fn move_to_head<L: LinkStore>(&mut self, links: &mut L, slot: SlotId) {
        if self.head != slot {
            self.unlink(links, slot);
            self.push_head(links, slot);
        }
    }
}

/// Links kept in two plain arrays indexed by slot id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    newer: Vec<SlotId>,
    older: Vec<SlotId>,
}

impl Links {
    /// The links of `slot` (newer, older), if the arrays reach it.
    pub fn get(&self, slot: SlotId) -> Option<(SlotId, SlotId)> {
        let index = slot as usize;
        Some((*self.newer.get(index)?, *self.older.get(index)?))
    }

    /// Grows the arrays so that `slot` has links.
    pub fn ensure(&mut self, slot: SlotId) {
        let needed = slot as usize + 1;
        if self.newer.len() < needed {
            crate::growth::resize_to(&mut self.newer, needed, NIL);
            crate::growth::resize_to(&mut self.older, needed, NIL);
        }
    }
}

impl LinkStore for Links {
    #[inline]
    fn newer(&self, slot: SlotId) -> SlotId {
        self.newer[slot as usize]
    }

    #[inline]
    fn older(&self, slot: SlotId) -> SlotId {
        self.older[slot as usize]
    }

    #[inline]
    fn set_newer(&mut self, slot: SlotId, newer: SlotId) {
        self.newer[slot as usize] = newer;
    }

    #[inline]
    fn set_older(&mut self, slot: SlotId, older: SlotId) {
        self.older[slot as usize] = older;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(links: &Links, list: &List) -> Vec<SlotId> {
        let mut out = Vec::new();
        let mut cursor = list.head;
        while cursor != NIL {
            out.push(cursor);
            cursor = links.older(cursor);
        }
        out
    }

    #[test]
    fn push_unlink_and_move_keep_order() {
        let mut links = Links::default();
        let mut list = List::default();
        for slot in 0..4 {
            links.ensure(slot);
            list.push_head(&mut links, slot);
        }
        assert_eq!(collect(&links, &list), vec![3, 2, 1, 0]);
        list.unlink(&mut links, 2);
        list.move_to_head(&mut links, 0);
        assert_eq!(collect(&links, &list), vec![0, 3, 1]);
        assert_eq!((list.head, list.tail, list.len), (0, 1, 3));
    }
}
