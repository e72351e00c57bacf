//! [`Lookahead`]: prune a state that no later read can agree with.
//!
//! A known-outcome read `r` that is not linearized yet must take effect
//! later. The operations that can take effect before it are the ones still
//! pending, minus those called after `r` returned (real-time order puts
//! them after `r`). If all of those are monotone ([`Model::is_monotone`]),
//! the state can only move forward until `r`, so a state from which
//! [`Model::may_still_observe`] says `r`'s answer is out of reach is a dead
//! end, however the rest is ordered.
//!
//! ```text
//!   time ->      pending non-monotone ops (put, delete, cas): earliest call C
//!   reads r1 r2 r3 |  r4 ...    reads returning before C are "in view"
//!   ---------------+--------->  only monotone ops can come before them
//! ```
//!
//! For `kv` with appends this is what keeps one key with many concurrent
//! appends tractable: the memo cannot merge two orders of appends (their
//! values differ), but a later read's value fixes the order, and every other
//! order dies at its first wrong append instead of at the read.
//!
//! Checking every read in view costs O(reads) per step; the search checks
//! two, which is sound (any subset is) and catches nearly everything: the
//! first read in view (the nearest constraint) and the last (for
//! append-only histories, the longest value).

use std::collections::BTreeSet;

use crate::history::Operation;
use crate::model::Model;

/// Which operations constrain or block the lookahead, kept current as the
/// search linearizes and backtracks.
pub(crate) struct Lookahead {
    /// Known-outcome reads not linearized yet, by `(return time, operation)`.
    reads: BTreeSet<(u64, usize)>,
    /// Non-monotone operations not linearized yet, by `(call time, operation)`.
    blockers: BTreeSet<(u64, usize)>,
    role: Vec<Role>,
}

#[derive(Clone, Copy)]
enum Role {
    Read {
        return_time: u64,
    },
    Blocker {
        call_time: u64,
    },
    /// Monotone writes, and unknown-outcome reads (never searched).
    Neither,
}

impl Lookahead {
    /// `None` when it cannot prune anything: no known-outcome read, or the
    /// model has no monotone write (so no bookkeeping is paid).
    pub(crate) fn new<M: Model>(
        model: &M,
        operations: &[&Operation<M::Input, M::Output>],
    ) -> Option<Self> {
        let role: Vec<Role> = operations
            .iter()
            .map(|operation| {
                let read_only = model.is_read_only(&operation.input);
                match operation.return_time() {
                    Some(return_time) if read_only => Role::Read { return_time },
                    _ if read_only || model.is_monotone(&operation.input) => Role::Neither,
                    _ => Role::Blocker {
                        call_time: operation.call_time,
                    },
                }
            })
            .collect();
        let has_read = role.iter().any(|role| matches!(role, Role::Read { .. }));
        let has_monotone_write = operations.iter().any(|operation| {
            !model.is_read_only(&operation.input) && model.is_monotone(&operation.input)
        });
        if !has_read || !has_monotone_write {
            return None;
        }
        let mut lookahead = Self {
            reads: BTreeSet::new(),
            blockers: BTreeSet::new(),
            role,
        };
        for operation in 0..operations.len() {
            lookahead.unlinearized(operation);
        }
        Some(lookahead)
    }

    /// `operation` was linearized.
    pub(crate) fn linearized(&mut self, operation: usize) {
        match self.role[operation] {
            Role::Read { return_time } => {
                self.reads.remove(&(return_time, operation));
            }
            Role::Blocker { call_time } => {
                self.blockers.remove(&(call_time, operation));
            }
            Role::Neither => {}
        }
    }

    /// `operation` was taken back (or never linearized).
    pub(crate) fn unlinearized(&mut self, operation: usize) {
        match self.role[operation] {
            Role::Read { return_time } => {
                self.reads.insert((return_time, operation));
            }
            Role::Blocker { call_time } => {
                self.blockers.insert((call_time, operation));
            }
            Role::Neither => {}
        }
    }

    /// Whether `state`, entered by linearizing `entering`, can still agree
    /// with the reads in view (see the module docs). `false` means no
    /// linearization continues from here.
    pub(crate) fn allows<M: Model>(
        &self,
        model: &M,
        operations: &[&Operation<M::Input, M::Output>],
        state: &M::State,
        entering: usize,
    ) -> bool {
        // Reads returning strictly before the earliest pending blocker's
        // call: a call at the same instant as a return counts as concurrent.
        let horizon = self
            .blockers
            .iter()
            .find(|&&(_, operation)| operation != entering)
            .map_or(u64::MAX, |&(call_time, _)| call_time);
        let mut in_view = self
            .reads
            .range(..(horizon, 0))
            .filter(|&&(_, operation)| operation != entering);
        let first = in_view.next();
        let last = in_view.next_back();
        [first, last].into_iter().flatten().all(|&(_, read)| {
            let operation = operations[read];
            let output = operation
                .output()
                .expect("only known-outcome reads are tracked");
            model.may_still_observe(state, &operation.input, output)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;
    use crate::models::{KvInput, KvModel, KvOutput};

    type KvOperation = Operation<KvInput, KvOutput>;

    fn operation(input: KvInput, call_time: u64, output: Option<KvOutput>) -> KvOperation {
        Operation {
            client: 0,
            call_time,
            input,
            outcome: match output {
                Some(output) => Outcome::Returned {
                    time: call_time + 10,
                    output,
                },
                None => Outcome::Unknown { gave_up_at: None },
            },
        }
    }

    fn append(call_time: u64, value: &str) -> KvOperation {
        let input = KvInput::Append {
            key: "k".into(),
            value: value.into(),
        };
        operation(input, call_time, Some(KvOutput::Done))
    }

    fn get(call_time: u64, value: &str) -> KvOperation {
        let input = KvInput::Get { key: "k".into() };
        operation(
            input,
            call_time,
            Some(KvOutput::Value(Some(value.to_string()))),
        )
    }

    fn put(call_time: u64, value: &str) -> KvOperation {
        let input = KvInput::Put {
            key: "k".into(),
            value: value.into(),
        };
        operation(input, call_time, None)
    }

    fn state(value: &str) -> Option<std::sync::Arc<str>> {
        Some(value.into())
    }

    #[test]
    fn a_state_no_later_read_can_grow_into_is_refused() {
        // appends a, b; then a get that saw "ba".
        let history = [append(0, "a"), append(0, "b"), get(20, "ba")];
        let operations: Vec<&KvOperation> = history.iter().collect();
        let lookahead = Lookahead::new(&KvModel::new(), &operations).expect("prunes kv appends");
        assert!(!lookahead.allows(&KvModel::new(), &operations, &state("a"), 0));
        assert!(lookahead.allows(&KvModel::new(), &operations, &state("b"), 1));
    }

    #[test]
    fn a_pending_put_called_before_the_read_returned_blocks_the_pruning() {
        // The put (unknown outcome, called at 25, before the get returned at
        // 30) may reset the value in between.
        let history = [append(0, "a"), get(20, "ba"), put(25, "")];
        let operations: Vec<&KvOperation> = history.iter().collect();
        let mut lookahead =
            Lookahead::new(&KvModel::new(), &operations).expect("prunes kv appends");
        assert!(lookahead.allows(&KvModel::new(), &operations, &state("a"), 0));
        // Once the put is linearized, nothing blocks.
        lookahead.linearized(2);
        assert!(!lookahead.allows(&KvModel::new(), &operations, &state("a"), 0));
        lookahead.unlinearized(2);
        assert!(lookahead.allows(&KvModel::new(), &operations, &state("a"), 0));
    }

    #[test]
    fn a_put_called_after_the_read_returned_does_not_block() {
        let history = [append(0, "a"), get(20, "ba"), put(31, "")];
        let operations: Vec<&KvOperation> = history.iter().collect();
        let lookahead = Lookahead::new(&KvModel::new(), &operations).expect("prunes kv appends");
        assert!(!lookahead.allows(&KvModel::new(), &operations, &state("a"), 0));
    }

    #[test]
    fn the_read_being_linearized_is_not_its_own_constraint() {
        let history = [append(0, "a"), get(20, "a"), get(40, "ab")];
        let operations: Vec<&KvOperation> = history.iter().collect();
        let mut lookahead =
            Lookahead::new(&KvModel::new(), &operations).expect("prunes kv appends");
        lookahead.linearized(0);
        assert!(lookahead.allows(&KvModel::new(), &operations, &state("a"), 1));
    }

    #[test]
    fn nothing_to_prune_without_monotone_writes_or_reads() {
        let puts = [put(0, "a"), get(20, "a")];
        let operations: Vec<&KvOperation> = puts.iter().collect();
        assert!(Lookahead::new(&KvModel::new(), &operations).is_none());
        let appends = [append(0, "a"), append(5, "b")];
        let operations: Vec<&KvOperation> = appends.iter().collect();
        assert!(Lookahead::new(&KvModel::new(), &operations).is_none());
    }
}
