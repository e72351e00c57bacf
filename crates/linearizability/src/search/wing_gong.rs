//! [`search_partition`]: the Wing-Gong search with Lowe's memoization.

use std::hash::{Hash, Hasher};

use hashbrown::{Equivalent, HashSet};

use crate::budget::Budget;
use crate::history::Operation;
use crate::model::Model;
use crate::search::entry_list::{Entry, EntryList};
use crate::search::fx_hasher::FxBuildHasher;
use crate::search::linearized_set::{LinearizedSet, LinearizedSnapshot};

/// What the search of one partition found. Operations are partition-local
/// indices (positions in the slice given to [`search_partition`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SearchOutcome {
    /// A witness: every known-outcome operation, plus the unknown-outcome ones
    /// the witness lets take effect (the rest never happened), in linearization
    /// order.
    Linearizable { order: Vec<usize> },
    /// No order exists. `longest_prefix` is the longest legal linearization of
    /// a prefix the search found before giving up on every branch.
    NotLinearizable { longest_prefix: Vec<usize> },
    /// The budget ran out first.
    OutOfBudget { longest_prefix: Vec<usize> },
}

/// A decision the search can undo: the call node it linearized and the state
/// before it.
struct Frame<S> {
    call_node: usize,
    return_node: usize,
    operation: usize,
    state_before: S,
}

/// A configuration already explored without success: the same linearized set in
/// the same state can only fail again (Lowe's memoization).
#[derive(PartialEq, Eq)]
struct MemoKey<S> {
    linearized: LinearizedSnapshot,
    state: S,
}

/// A borrowed view of a configuration, to look it up in the memo without
/// copying the bitset or the state (most lookups that hit never need a copy).
struct MemoProbe<'a, S> {
    linearized: &'a LinearizedSet,
    state: &'a S,
}

// The key and the probe must hash identically: the set's incremental hash, then
// the state.
impl<S: Hash> Hash for MemoKey<S> {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        hasher.write_u64(self.linearized.hash());
        self.state.hash(hasher);
    }
}

impl<S: Hash> Hash for MemoProbe<'_, S> {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        hasher.write_u64(self.linearized.hash());
        self.state.hash(hasher);
    }
}

impl<S: Eq> Equivalent<MemoKey<S>> for MemoProbe<'_, S> {
    fn equivalent(&self, key: &MemoKey<S>) -> bool {
        key.linearized.matches(self.linearized) && key.state == *self.state
    }
}

/// Records a configuration in the memo; `false` if it was already there.
fn remember<S: Clone + Eq + Hash>(
    memo: &mut HashSet<MemoKey<S>, FxBuildHasher>,
    linearized: &LinearizedSet,
    state: &S,
) -> bool {
    let mut inserted = false;
    memo.get_or_insert_with(&MemoProbe { linearized, state }, |probe| {
        inserted = true;
        MemoKey {
            linearized: probe.linearized.snapshot(),
            state: probe.state.clone(),
        }
    });
    inserted
}

/// Searches one partition for a linearization.
///
/// The list holds the call and return events in time order. Walking from the
/// front, every call met before the first return is a candidate to take effect
/// next. Linearizing a candidate lifts its call and return out of the list and
/// restarts the walk; meeting a return means that operation must already have
/// taken effect but has not, so the search backtracks the last decision and
/// tries the next candidate after it. An unknown-outcome operation's return is
/// at "forever": reaching one means every known operation is linearized, and
/// the unknown ones still pending simply never took effect.
///
/// `steps_taken` counts loop iterations across partitions and is what the
/// budget sees. With `memoize` false this is plain Wing-Gong (exponential; kept
/// to measure what the memo buys).
pub(crate) fn search_partition<M: Model, B: Budget>(
    model: &M,
    operations: &[&Operation<M::Input, M::Output>],
    budget: &mut B,
    steps_taken: &mut u64,
    memoize: bool,
) -> SearchOutcome {
    let intervals: Vec<(u64, Option<u64>)> = operations
        .iter()
        .map(|operation| (operation.call_time, operation.return_time()))
        .collect();
    let mut list = EntryList::new(&intervals);
    let mut linearized = LinearizedSet::new(operations.len());
    let mut memo: HashSet<MemoKey<M::State>, FxBuildHasher> = HashSet::default();
    let mut state = model.initial_state();
    let mut decisions: Vec<Frame<M::State>> = Vec::new();
    let mut longest_prefix: Vec<usize> = Vec::new();
    let mut node = list.first();

    loop {
        *steps_taken += 1;
        if budget.is_exhausted(*steps_taken) {
            return SearchOutcome::OutOfBudget { longest_prefix };
        }
        let Some(current) = node else {
            return SearchOutcome::Linearizable {
                order: operation_order(&decisions),
            };
        };
        match list.entry(current) {
            Entry::Call {
                operation,
                return_node,
            } => {
                let candidate = operations[operation];
                node = list.after(current);
                let Some(next_state) = model.step(&state, &candidate.input, candidate.output())
                else {
                    continue;
                };
                linearized.insert(operation);
                let unexplored = !memoize || remember(&mut memo, &linearized, &next_state);
                if !unexplored {
                    linearized.remove(operation);
                    continue;
                }
                list.lift(current, return_node);
                decisions.push(Frame {
                    call_node: current,
                    return_node,
                    operation,
                    state_before: std::mem::replace(&mut state, next_state),
                });
                if decisions.len() > longest_prefix.len() {
                    longest_prefix = operation_order(&decisions);
                }
                node = list.first();
            }
            Entry::Return { known: false, .. } => {
                return SearchOutcome::Linearizable {
                    order: operation_order(&decisions),
                };
            }
            Entry::Return { known: true, .. } => {
                let Some(frame) = decisions.pop() else {
                    return SearchOutcome::NotLinearizable { longest_prefix };
                };
                state = frame.state_before;
                linearized.remove(frame.operation);
                list.unlift(frame.call_node, frame.return_node);
                node = list.after(frame.call_node);
            }
        }
    }
}

fn operation_order<S>(decisions: &[Frame<S>]) -> Vec<usize> {
    decisions.iter().map(|frame| frame.operation).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Unlimited;
    use crate::history::Outcome;
    use crate::models::{KvOutput, RegisterInput, RegisterModel};

    type RegisterOperation = Operation<RegisterInput, KvOutput>;

    fn write(call_time: u64, return_time: u64, value: &str) -> RegisterOperation {
        Operation {
            client: 0,
            call_time,
            input: RegisterInput::Write {
                value: value.into(),
            },
            outcome: Outcome::Returned {
                time: return_time,
                output: KvOutput::Done,
            },
        }
    }

    fn read(call_time: u64, return_time: u64, value: Option<&str>) -> RegisterOperation {
        Operation {
            client: 1,
            call_time,
            input: RegisterInput::Read,
            outcome: Outcome::Returned {
                time: return_time,
                output: KvOutput::Value(value.map(str::to_string)),
            },
        }
    }

    fn search(operations: &[RegisterOperation], memoize: bool) -> SearchOutcome {
        let borrowed: Vec<&RegisterOperation> = operations.iter().collect();
        search_partition(&RegisterModel, &borrowed, &mut Unlimited, &mut 0, memoize)
    }

    #[test]
    fn finds_the_order_that_explains_a_concurrent_read() {
        // write x [0,10] overlaps read -> x [5,15]; write y [20,30] follows.
        let history = [
            read(5, 15, Some("x")),
            write(0, 10, "x"),
            write(20, 30, "y"),
        ];
        for memoize in [true, false] {
            assert_eq!(
                search(&history, memoize),
                SearchOutcome::Linearizable {
                    order: vec![1, 0, 2]
                }
            );
        }
    }

    #[test]
    fn reports_the_longest_prefix_of_a_stale_read() {
        // write x completes, then a read returns nothing.
        let history = [write(0, 10, "x"), read(20, 30, None)];
        assert_eq!(
            search(&history, true),
            SearchOutcome::NotLinearizable {
                longest_prefix: vec![0]
            }
        );
    }

    #[test]
    fn an_unknown_write_may_never_happen() {
        let mut lost = write(0, 10, "x");
        lost.outcome = Outcome::Unknown {
            gave_up_at: Some(10),
        };
        let history = [lost, read(20, 30, None)];
        // The witness lets the write take effect after the read (it may arrive
        // late); what matters is that the read of nothing is allowed.
        assert_eq!(
            search(&history, true),
            SearchOutcome::Linearizable { order: vec![1, 0] }
        );
    }
}
