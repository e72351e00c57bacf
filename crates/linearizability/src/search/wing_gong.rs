//! [`search_partition`]: the Wing-Gong search with Lowe's memoization.

use std::hash::{Hash, Hasher};

use hashbrown::{Equivalent, HashSet};

use crate::budget::{Budget, Usage};
use crate::checker::CheckOptions;
use crate::history::Operation;
use crate::model::Model;
use crate::search::entry_list::{Entry, EntryList};
use crate::search::linearized_set::{LinearizedSet, LinearizedSnapshot};
use crate::search::lookahead::Lookahead;
use rustc_hash::FxBuildHasher;

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

/// The memo and what it holds, for the [`MemoryBudget`](crate::MemoryBudget).
struct Memo<S> {
    set: HashSet<MemoKey<S>, FxBuildHasher>,
    /// Heap bytes the entries own (bitset words, states' heap), estimated.
    owned_bytes: u64,
}

/// Allocator bookkeeping per heap block, roughly (a bitset snapshot is one).
const ALLOCATION_OVERHEAD_BYTES: u64 = 16;

impl<S: Clone + Eq + Hash> Memo<S> {
    fn new() -> Self {
        Self {
            set: HashSet::default(),
            owned_bytes: 0,
        }
    }

    /// Records a configuration; `false` if it was already there.
    /// `state_heap_bytes` is the model's estimate for `state`.
    fn remember(&mut self, linearized: &LinearizedSet, state: &S, state_heap_bytes: usize) -> bool {
        let mut inserted = false;
        self.set
            .get_or_insert_with(&MemoProbe { linearized, state }, |probe| {
                inserted = true;
                MemoKey {
                    linearized: probe.linearized.snapshot(),
                    state: probe.state.clone(),
                }
            });
        if inserted {
            self.owned_bytes += linearized.word_count() as u64 * 8
                + ALLOCATION_OVERHEAD_BYTES
                + state_heap_bytes as u64;
        }
        inserted
    }

    fn entries(&self) -> u64 {
        self.set.len() as u64
    }

    /// The table (every bucket, used or not, plus a control byte each) and
    /// what the entries own.
    fn bytes(&self) -> u64 {
        let bucket_bytes = std::mem::size_of::<MemoKey<S>>() as u64 + 1;
        self.set.capacity() as u64 * bucket_bytes + self.owned_bytes
    }
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
/// Before a state is entered, the [`Lookahead`] asks whether the known reads
/// still to come can agree with it (for `kv` appends: whether it is a prefix
/// of what they saw); if not, that candidate is skipped as if its step had
/// failed.
///
/// `usage` carries the steps taken across partitions and this partition's
/// memo size; it is what the budget sees, and `peak` keeps the largest memo
/// seen. With `options.memoize` false this is plain Wing-Gong (exponential;
/// kept to measure what the memo buys); `options.lookahead` false turns the
/// lookahead off.
pub(crate) fn search_partition<M: Model, B: Budget>(
    model: &M,
    operations: &[&Operation<M::Input, M::Output>],
    budget: &mut B,
    usage: &mut Usage,
    peak: &mut MemoPeak,
    options: CheckOptions,
) -> SearchOutcome {
    let memoize = options.memoize;
    let intervals: Vec<(u64, Option<u64>)> = operations
        .iter()
        .map(|operation| (operation.call_time, operation.return_time()))
        .collect();
    let mut list = EntryList::new(&intervals);
    let mut linearized = LinearizedSet::new(operations.len());
    let mut lookahead = if options.lookahead {
        Lookahead::new(model, operations)
    } else {
        None
    };
    let mut memo: Memo<M::State> = Memo::new();
    let mut state = model.initial_state();
    let mut decisions: Vec<Frame<M::State>> = Vec::new();
    let mut longest_prefix: Vec<usize> = Vec::new();
    let mut node = list.first();
    usage.memo_entries = 0;
    usage.memo_bytes = 0;

    loop {
        usage.steps_taken += 1;
        if budget.is_exhausted(usage) {
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
                if lookahead.as_ref().is_some_and(|lookahead| {
                    !lookahead.allows(model, operations, &next_state, operation)
                }) {
                    continue;
                }
                linearized.insert(operation);
                let unexplored = !memoize
                    || memo.remember(
                        &linearized,
                        &next_state,
                        model.state_heap_bytes(&next_state),
                    );
                if !unexplored {
                    linearized.remove(operation);
                    continue;
                }
                usage.memo_entries = memo.entries();
                usage.memo_bytes = memo.bytes();
                peak.record(usage);
                if let Some(lookahead) = lookahead.as_mut() {
                    lookahead.linearized(operation);
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
                if let Some(lookahead) = lookahead.as_mut() {
                    lookahead.unlinearized(frame.operation);
                }
                list.unlift(frame.call_node, frame.return_node);
                node = list.after(frame.call_node);
            }
        }
    }
}

/// The largest memo any partition reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MemoPeak {
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
}

impl MemoPeak {
    fn record(&mut self, usage: &Usage) {
        self.entries = self.entries.max(usage.memo_entries);
        self.bytes = self.bytes.max(usage.memo_bytes);
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
        search_partition(
            &RegisterModel,
            &borrowed,
            &mut Unlimited,
            &mut Usage::default(),
            &mut MemoPeak::default(),
            CheckOptions {
                memoize,
                ..CheckOptions::default()
            },
        )
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
