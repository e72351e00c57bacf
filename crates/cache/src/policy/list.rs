//! Intrusive doubly-linked lists over slot ids, shared by the queue-based
//! policies.
//!
//! Why intrusive: a policy must move or unlink a slot in O(1) given only its
//! id, and must not allocate per entry. The links live in two arrays indexed
//! by slot id; one [`Links`] can carry several [`List`]s (S3-FIFO's small and
//! main queues) because a slot is in at most one list at a time.

use serde::{Deserialize, Serialize};

use super::SlotId;

/// "No slot": the end of a list.
pub const NIL: SlotId = SlotId::MAX;

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
}

/// Previous/next pointers for every slot id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    prev: Vec<SlotId>,
    next: Vec<SlotId>,
}

impl Links {
    /// Grows the arrays so that `slot` has links.
    pub fn ensure(&mut self, slot: SlotId) {
        let needed = slot as usize + 1;
        if self.prev.len() < needed {
            self.prev.resize(needed, NIL);
            self.next.resize(needed, NIL);
        }
    }

    /// The slot after `slot` towards the head (newer), or [`NIL`].
    pub fn newer(&self, slot: SlotId) -> SlotId {
        self.prev[slot as usize]
    }

    /// The slot after `slot` towards the tail (older), or [`NIL`].
    #[cfg(test)]
    pub fn older(&self, slot: SlotId) -> SlotId {
        self.next[slot as usize]
    }

    /// Links `slot`, which must not be in any list, as the head of `list`.
    pub fn push_head(&mut self, list: &mut List, slot: SlotId) {
        self.ensure(slot);
        let index = slot as usize;
        self.prev[index] = NIL;
        self.next[index] = list.head;
        if list.head == NIL {
            list.tail = slot;
        } else {
            self.prev[list.head as usize] = slot;
        }
        list.head = slot;
        list.len += 1;
    }

    /// Unlinks `slot`, which must be in `list`.
    pub fn unlink(&mut self, list: &mut List, slot: SlotId) {
        assert!(list.len > 0, "unlink of slot {slot} from an empty list");
        let index = slot as usize;
        let (newer, older) = (self.prev[index], self.next[index]);
        if newer == NIL {
            assert_eq!(
                list.head, slot,
                "slot {slot} has no newer neighbour but is not the head"
            );
            list.head = older;
        } else {
            self.next[newer as usize] = older;
        }
        if older == NIL {
            assert_eq!(
                list.tail, slot,
                "slot {slot} has no older neighbour but is not the tail"
            );
            list.tail = newer;
        } else {
            self.prev[older as usize] = newer;
        }
        self.prev[index] = NIL;
        self.next[index] = NIL;
        list.len -= 1;
    }

    /// Moves `slot`, which must be in `list`, to its head.
    pub fn move_to_head(&mut self, list: &mut List, slot: SlotId) {
        if list.head != slot {
            self.unlink(list, slot);
            self.push_head(list, slot);
        }
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
            links.push_head(&mut list, slot);
        }
        assert_eq!(collect(&links, &list), vec![3, 2, 1, 0]);
        links.unlink(&mut list, 2);
        links.move_to_head(&mut list, 0);
        assert_eq!(collect(&links, &list), vec![0, 3, 1]);
        assert_eq!((list.head, list.tail, list.len), (0, 1, 3));
    }
}
