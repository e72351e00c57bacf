//! Proposals of this replica waiting for their entry to apply.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::oneshot;

struct Waiter<O> {
    /// The index Raft gave the proposal (None until `start` returned).
    index: Option<u64>,
    answer: oneshot::Sender<O>,
}

/// Waiters by proposal number, and by index once known.
///
/// A waiter ends in one of three ways: its own entry applies (it gets the
/// output); another entry applies at its index, or a snapshot covers its
/// index (its sender drops: the proposal lost its place, the caller hears
/// "not the leader"); or the caller gives up and removes it.
pub(crate) struct Waiters<O> {
    by_proposal: BTreeMap<u64, Waiter<O>>,
    /// `(index, proposal)` of every waiter whose index is known.
    by_index: BTreeSet<(u64, u64)>,
}

impl<O> Waiters<O> {
    pub(crate) fn new() -> Waiters<O> {
        Waiters {
            by_proposal: BTreeMap::new(),
            by_index: BTreeSet::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_proposal.len()
    }

    /// Waits for proposal `proposal` (numbers are never reused).
    pub(crate) fn register(&mut self, proposal: u64) -> oneshot::Receiver<O> {
        let (answer, answered) = oneshot::channel();
        let previous = self.by_proposal.insert(
            proposal,
            Waiter {
                index: None,
                answer,
            },
        );
        assert!(previous.is_none(), "proposal number {proposal} reused");
        answered
    }

    /// Raft placed `proposal` at `index`. False if the waiter is gone
    /// (answered already, or removed).
    pub(crate) fn place(&mut self, proposal: u64, index: u64) -> bool {
        let Some(waiter) = self.by_proposal.get_mut(&proposal) else {
            return false;
        };
        if let Some(old) = waiter.index.replace(index) {
            self.by_index.remove(&(old, proposal));
        }
        self.by_index.insert((index, proposal));
        true
    }

    pub(crate) fn remove(&mut self, proposal: u64) {
        if let Some(waiter) = self.by_proposal.remove(&proposal)
            && let Some(index) = waiter.index
        {
            self.by_index.remove(&(index, proposal));
        }
    }

    /// Answers `proposal`'s waiter before its entry applies (asynchronous
    /// replication's early answer); its entry applying later finds no
    /// waiter. False if nobody waits for it any more.
    pub(crate) fn answer_early(&mut self, proposal: u64, output: O) -> bool {
        let Some(waiter) = self.by_proposal.remove(&proposal) else {
            return false;
        };
        if let Some(placed) = waiter.index {
            self.by_index.remove(&(placed, proposal));
        }
        waiter.answer.send(output).is_ok()
    }

    /// The entry at `index` applied; it is `own` (a proposal number of this
    /// replica's current incarnation) or someone else's. The own waiter
    /// gets `output`; waiters placed at or before `index` lost their place.
    pub(crate) fn applied(&mut self, index: u64, own: Option<u64>, output: O) {
        if let Some(proposal) = own
            && let Some(waiter) = self.by_proposal.remove(&proposal)
        {
            if let Some(placed) = waiter.index {
                self.by_index.remove(&(placed, proposal));
            }
            // The caller may have stopped waiting: fine.
            let _ = waiter.answer.send(output);
        }
        self.drop_through(index);
    }

    /// Drops every waiter placed at or before `index` (their entries were
    /// overtaken, or covered by an installed snapshot).
    pub(crate) fn drop_through(&mut self, index: u64) {
        while let Some(&(placed, proposal)) = self.by_index.first() {
            if placed > index {
                break;
            }
            self.by_index.pop_first();
            self.by_proposal.remove(&proposal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_gets_its_own_output_and_overtaken_ones_are_dropped() {
        let mut waiters = Waiters::new();
        let mut first = waiters.register(1);
        let mut second = waiters.register(2);
        let mut third = waiters.register(3);
        assert!(waiters.place(1, 10));
        assert!(waiters.place(2, 11));
        // Proposal 3's entry applies at 11 before `start` even returned;
        // proposal 2, placed at 11, lost its place; 1 at 10 too.
        waiters.applied(11, Some(3), "three");
        assert_eq!(third.try_recv(), Ok("three"));
        assert!(first.try_recv().is_err());
        assert!(second.try_recv().is_err());
        assert_eq!(waiters.len(), 0);
        assert!(!waiters.place(3, 11), "answered waiters are gone");
    }

    #[test]
    fn snapshots_drop_covered_waiters_and_removal_is_clean() {
        let mut waiters: Waiters<u8> = Waiters::new();
        let _low = waiters.register(1);
        let mut high = waiters.register(2);
        let _unplaced = waiters.register(3);
        waiters.place(1, 5);
        waiters.place(2, 9);
        waiters.drop_through(7);
        assert_eq!(waiters.len(), 2);
        waiters.remove(3);
        waiters.applied(9, Some(2), 42);
        assert_eq!(high.try_recv(), Ok(42));
        assert_eq!(waiters.len(), 0);
        assert!(waiters.by_index.is_empty());
    }
}
