//! [`EntryList`]: a partition's call and return events in time order, as a
//! doubly linked list whose nodes can be lifted out and put back (dancing links).
//!
//! ```text
//!   head -> call a -> call b -> return a -> call c -> return b -> return c -> (head)
//! ```
//!
//! Linearizing an operation lifts its call and its return out of the list;
//! backtracking puts them back. Lifting and restoring in LIFO order is O(1)
//! because a lifted node keeps its own links.

/// What a node of the list stands for. `operation` is the operation's index
/// within its partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Call {
        operation: usize,
        return_node: usize,
    },
    /// `known` is false for an operation of unknown outcome: its return is at
    /// "forever", after every other event.
    Return { operation: usize, known: bool },
}

/// The list. Node 0 is the head sentinel; the list is circular through it, so
/// no link is ever missing.
pub(crate) struct EntryList {
    entries: Vec<Entry>,
    next: Vec<usize>,
    previous: Vec<usize>,
}

const HEAD: usize = 0;

impl EntryList {
    /// Builds the list from each operation's `(call time, return time)`; `None`
    /// means the outcome is unknown.
    ///
    /// Events are ordered by time; at equal times calls come before returns, so
    /// operations that merely touch count as concurrent (the lenient reading, as
    /// in porcupine), and ties between calls go to the lower operation index so
    /// the order never depends on the sort algorithm.
    pub(crate) fn new(intervals: &[(u64, Option<u64>)]) -> Self {
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        struct Event {
            at_forever: bool,
            time: u64,
            is_return: bool,
            operation: usize,
        }
        let mut events = Vec::with_capacity(intervals.len() * 2);
        for (operation, &(call_time, return_time)) in intervals.iter().enumerate() {
            events.push(Event {
                at_forever: false,
                time: call_time,
                is_return: false,
                operation,
            });
            events.push(Event {
                at_forever: return_time.is_none(),
                time: return_time.unwrap_or(u64::MAX),
                is_return: true,
                operation,
            });
        }
        events.sort_unstable();

        // Node of each operation's return, to link calls to their returns.
        let mut return_node_of = vec![0; intervals.len()];
        for (position, event) in events.iter().enumerate() {
            if event.is_return {
                return_node_of[event.operation] = position + 1;
            }
        }
        let node_count = events.len() + 1;
        let mut entries = Vec::with_capacity(node_count);
        // The sentinel's entry is never read; any value will do.
        entries.push(Entry::Return {
            operation: usize::MAX,
            known: true,
        });
        entries.extend(events.iter().map(|event| {
            if event.is_return {
                Entry::Return {
                    operation: event.operation,
                    known: !event.at_forever,
                }
            } else {
                Entry::Call {
                    operation: event.operation,
                    return_node: return_node_of[event.operation],
                }
            }
        }));
        let next = (0..node_count)
            .map(|node| (node + 1) % node_count)
            .collect();
        let previous = (0..node_count)
            .map(|node| (node + node_count - 1) % node_count)
            .collect();
        Self {
            entries,
            next,
            previous,
        }
    }

    /// The first node still in the list, or `None` if the list is empty.
    #[inline]
    pub(crate) fn first(&self) -> Option<usize> {
        self.after(HEAD)
    }

    /// The node after `node`, or `None` at the end.
    #[inline]
    pub(crate) fn after(&self, node: usize) -> Option<usize> {
        let next = self.next[node];
        (next != HEAD).then_some(next)
    }

    #[inline]
    pub(crate) fn entry(&self, node: usize) -> Entry {
        self.entries[node]
    }

    /// Removes a call node and its return node.
    pub(crate) fn lift(&mut self, call_node: usize, return_node: usize) {
        self.unlink(call_node);
        self.unlink(return_node);
    }

    /// Puts back what the matching [`lift`](Self::lift) removed. Lifts must be
    /// undone in reverse order.
    pub(crate) fn unlift(&mut self, call_node: usize, return_node: usize) {
        self.relink(return_node);
        self.relink(call_node);
    }

    fn unlink(&mut self, node: usize) {
        let (previous, next) = (self.previous[node], self.next[node]);
        self.next[previous] = next;
        self.previous[next] = previous;
    }

    fn relink(&mut self, node: usize) {
        let (previous, next) = (self.previous[node], self.next[node]);
        self.next[previous] = node;
        self.previous[next] = node;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(list: &EntryList) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut node = list.first();
        while let Some(current) = node {
            entries.push(list.entry(current));
            node = list.after(current);
        }
        entries
    }

    #[test]
    fn orders_by_time_with_calls_first_at_ties_and_unknown_returns_last() {
        // op 0: [10, 20]; op 1: [20, unknown]; op 2: [5, 20]
        let list = EntryList::new(&[(10, Some(20)), (20, None), (5, Some(20))]);
        let order: Vec<(usize, bool)> = walk(&list)
            .into_iter()
            .map(|entry| match entry {
                Entry::Call { operation, .. } => (operation, false),
                Entry::Return { operation, .. } => (operation, true),
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (2, false),
                (0, false),
                (1, false),
                (0, true),
                (2, true),
                (1, true)
            ]
        );
    }

    #[test]
    fn lift_and_unlift_restore_the_list() {
        let mut list = EntryList::new(&[(0, Some(3)), (1, Some(2)), (4, None)]);
        let before = walk(&list);
        let first_call = list.first().expect("non-empty");
        let Entry::Call { return_node, .. } = list.entry(first_call) else {
            panic!("the first event is a call");
        };
        list.lift(first_call, return_node);
        assert_eq!(walk(&list).len(), 4);
        let second_call = list.first().expect("non-empty");
        let Entry::Call {
            return_node: second_return,
            ..
        } = list.entry(second_call)
        else {
            panic!("the next event is a call");
        };
        list.lift(second_call, second_return);
        assert_eq!(walk(&list).len(), 2);
        list.unlift(second_call, second_return);
        list.unlift(first_call, return_node);
        assert_eq!(walk(&list), before);
    }
}
