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
use crate::search::state_table::{StateId, StateTable};
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
struct Frame {
    call_node: usize,
    return_node: usize,
    operation: usize,
    state_before: StateId,
    /// Taken without trying the alternatives (an operation that never
    /// changes the state, see [`Model::never_changes_state`]): when
    /// everything after it fails, the decision before it fails too.
    forced: bool,
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
        let mut inserted_bytes = None;
        self.set
            .get_or_insert_with(&MemoProbe { linearized, state }, |probe| {
                let linearized = probe.linearized.snapshot();
                inserted_bytes = Some(linearized.heap_bytes() + state_heap_bytes as u64);
                MemoKey {
                    linearized,
                    state: probe.state.clone(),
                }
            });
        if let Some(bytes) = inserted_bytes {
            self.owned_bytes += bytes;
        }
        inserted_bytes.is_some()
    }

    /// Whether a configuration is recorded.
    fn contains(&self, linearized: &LinearizedSet, state: &S) -> bool {
        self.set.contains(&MemoProbe { linearized, state })
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

/// The search of one partition, resumable: [`PartitionSearch::run`] takes at
/// most a given number of steps and then pauses, so that the checker can
/// interleave the partitions of a history (see `checker.rs`).
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
/// A candidate that never changes the state ([`Model::never_changes_state`],
/// a read) and is legal is *forced*: linearized at once, and if everything
/// after it fails, the search backtracks past it instead of trying the next
/// candidate in its place (some linearization could put it first if any
/// could; see the trait's docs). On register and kv histories this removes
/// the branching over where each read goes.
///
/// States are interned in a [`StateTable`]: the memo and the stack hold
/// [`StateId`]s, and each `(state, operation)` step asks the model once.
///
/// With `options.memoize` false this is plain Wing-Gong (exponential; kept to
/// measure what the memo buys); `options.lookahead` false turns the lookahead
/// off.
pub(crate) struct PartitionSearch<'history, M: Model> {
    operations: Vec<&'history Operation<M::Input, M::Output>>,
    /// Per operation: [`Model::never_changes_state`].
    never_changes_state: Vec<bool>,
    /// Per operation: whether its outcome is unknown (it may never happen).
    unknown_outcome: Vec<bool>,
    memoize: bool,
    list: EntryList,
    linearized: LinearizedSet,
    lookahead: Option<Lookahead>,
    memo: Memo<StateId>,
    states: StateTable<M::State>,
    state: StateId,
    decisions: Vec<Frame>,
    longest_prefix: Vec<usize>,
    /// Where the walk is: the next entry to look at (`None`: the list is empty).
    node: Option<usize>,
}

impl<'history, M: Model> PartitionSearch<'history, M> {
    pub(crate) fn new(
        model: &M,
        operations: Vec<&'history Operation<M::Input, M::Output>>,
        options: CheckOptions,
    ) -> Self {
        let intervals: Vec<(u64, Option<u64>)> = operations
            .iter()
            .map(|operation| (operation.call_time, operation.return_time()))
            .collect();
        let list = EntryList::new(&intervals);
        let linearized = LinearizedSet::new(operations.len());
        let lookahead = if options.lookahead {
            Lookahead::new(model, &operations)
        } else {
            None
        };
        let never_changes_state = operations
            .iter()
            .map(|operation| model.never_changes_state(&operation.input))
            .collect();
        let unknown_outcome: Vec<bool> = operations
            .iter()
            .map(|operation| operation.output().is_none())
            .collect();
        let node = list.first();
        let initial_state = model.initial_state();
        let initial_heap_bytes = model.state_heap_bytes(&initial_state);
        let (states, state) = StateTable::new(initial_state, initial_heap_bytes);
        Self {
            operations,
            never_changes_state,
            unknown_outcome,
            memoize: options.memoize,
            list,
            linearized,
            lookahead,
            memo: Memo::new(),
            states,
            state,
            decisions: Vec::new(),
            longest_prefix: Vec::new(),
            node,
        }
    }

    /// The memo's entries and estimated bytes (what a
    /// [`MemoryBudget`](crate::MemoryBudget) bounds).
    /// The state table counts toward the bytes: it grows with the memo.
    pub(crate) fn memo_size(&self) -> (u64, u64) {
        (self.memo.entries(), self.memo.bytes() + self.states.bytes())
    }

    /// Searches for at most `steps_max` steps. Returns the outcome once the
    /// search is over, or `None` when it paused with `steps_max` used up (call
    /// again to continue from where it stopped).
    ///
    /// Every step adds one to `usage.steps_taken` and asks `budget`; when the
    /// budget is exhausted the outcome is [`SearchOutcome::OutOfBudget`].
    /// `usage.memo_entries` and `usage.memo_bytes` are kept at `memo_elsewhere`
    /// (the memos of the other partitions still being searched) plus this
    /// memo, and `peak` keeps the largest total seen.
    pub(crate) fn run<B: Budget>(
        &mut self,
        model: &M,
        steps_max: u64,
        budget: &mut B,
        usage: &mut Usage,
        memo_elsewhere: (u64, u64),
        peak: &mut MemoPeak,
    ) -> Option<SearchOutcome> {
        let (entries, bytes) = self.memo_size();
        usage.memo_entries = memo_elsewhere.0 + entries;
        usage.memo_bytes = memo_elsewhere.1 + bytes;
        for _ in 0..steps_max {
            usage.steps_taken += 1;
            if budget.is_exhausted(usage) {
                return Some(SearchOutcome::OutOfBudget {
                    longest_prefix: self.longest_prefix.clone(),
                });
            }
            if let Some(outcome) = self.step(model, usage, memo_elsewhere, peak) {
                return Some(outcome);
            }
        }
        None
    }

    /// One step of the walk: look at one entry. `Some` once the search is over.
    fn step(
        &mut self,
        model: &M,
        usage: &mut Usage,
        memo_elsewhere: (u64, u64),
        peak: &mut MemoPeak,
    ) -> Option<SearchOutcome> {
        let Some(current) = self.node else {
            return Some(SearchOutcome::Linearizable {
                order: operation_order(&self.decisions),
            });
        };
        match self.list.entry(current) {
            Entry::Call {
                operation,
                return_node,
            } => {
                let candidate = self.operations[operation];
                self.node = self.list.after(current);
                let next_state = self.states.step(
                    self.state,
                    operation,
                    |state| model.step(state, &candidate.input, candidate.output()),
                    |state| model.state_heap_bytes(state),
                )?;
                if self.lookahead.as_ref().is_some_and(|lookahead| {
                    !lookahead.allows(
                        model,
                        &self.operations,
                        self.states.state(next_state),
                        operation,
                    )
                }) {
                    return None;
                }
                let unchanged = next_state == self.state;
                if unchanged && self.unknown_outcome[operation] {
                    // An unknown-outcome operation that changes nothing here
                    // may as well never happen: the configuration without it
                    // (the current one) covers every order with it.
                    return None;
                }
                let forced = unchanged && self.never_changes_state[operation];
                self.linearized.insert(operation);
                let unexplored = !self.memoize
                    || (self.memo.remember(&self.linearized, &next_state, 0)
                        && !self.dominated(operation, next_state));
                if !unexplored {
                    self.linearized.remove(operation);
                    // Forced: what follows it already failed, so this
                    // configuration fails too.
                    return if forced { self.backtrack() } else { None };
                }
                let (entries, bytes) = self.memo_size();
                usage.memo_entries = memo_elsewhere.0 + entries;
                usage.memo_bytes = memo_elsewhere.1 + bytes;
                peak.record(usage);
                if let Some(lookahead) = self.lookahead.as_mut() {
                    lookahead.linearized(operation);
                }
                self.list.lift(current, return_node);
                self.decisions.push(Frame {
                    call_node: current,
                    return_node,
                    operation,
                    state_before: std::mem::replace(&mut self.state, next_state),
                    forced,
                });
                if self.decisions.len() > self.longest_prefix.len() {
                    self.longest_prefix = operation_order(&self.decisions);
                }
                self.node = self.list.first();
                None
            }
            Entry::Return { known: false, .. } => Some(SearchOutcome::Linearizable {
                order: operation_order(&self.decisions),
            }),
            Entry::Return { known: true, .. } => self.backtrack(),
        }
    }

    /// Whether the configuration just recorded (the linearized set, which
    /// now holds `entering`, in `state`) is already known to fail because the
    /// same set without one of its unknown-outcome operations failed in the
    /// same state: an order from here would, with that operation never
    /// happening, be an order from there. Such a configuration is left in the
    /// memo: it has failed too.
    ///
    /// A configuration in the memo has failed unless it is on the current
    /// path; the only one of this size on the path is the current
    /// configuration (the set without `entering`, in `self.state`).
    fn dominated(&mut self, entering: usize, state: StateId) -> bool {
        let linearized_unknown = self
            .decisions
            .iter()
            .map(|frame| frame.operation)
            .chain(std::iter::once(entering))
            .filter(|&operation| self.unknown_outcome[operation]);
        for operation in linearized_unknown {
            if operation == entering && state == self.state {
                continue;
            }
            self.linearized.remove(operation);
            let failed = self.memo.contains(&self.linearized, &state);
            self.linearized.insert(operation);
            if failed {
                return true;
            }
        }
        false
    }

    /// Undoes the last decision and moves on to the next candidate after it;
    /// a forced decision is undone together with the one before it. `Some`
    /// when there is nothing left to undo: no linearization exists.
    fn backtrack(&mut self) -> Option<SearchOutcome> {
        // Each pass pops one frame, so this ends within the stack's depth.
        loop {
            let Some(frame) = self.decisions.pop() else {
                return Some(SearchOutcome::NotLinearizable {
                    longest_prefix: std::mem::take(&mut self.longest_prefix),
                });
            };
            self.state = frame.state_before;
            self.linearized.remove(frame.operation);
            if let Some(lookahead) = self.lookahead.as_mut() {
                lookahead.unlinearized(frame.operation);
            }
            self.list.unlift(frame.call_node, frame.return_node);
            if !frame.forced {
                self.node = self.list.after(frame.call_node);
                return None;
            }
        }
    }
}

/// Searches one partition to the end (or until `budget` runs out), as one
/// [`PartitionSearch`] run without pauses.
pub(crate) fn search_partition<M: Model, B: Budget>(
    model: &M,
    operations: &[&Operation<M::Input, M::Output>],
    budget: &mut B,
    usage: &mut Usage,
    peak: &mut MemoPeak,
    options: CheckOptions,
) -> SearchOutcome {
    let mut search = PartitionSearch::new(model, operations.to_vec(), options);
    loop {
        if let Some(outcome) = search.run(model, u64::MAX, budget, usage, (0, 0), peak) {
            return outcome;
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
    pub(crate) fn record(&mut self, usage: &Usage) {
        self.entries = self.entries.max(usage.memo_entries);
        self.bytes = self.bytes.max(usage.memo_bytes);
    }
}

fn operation_order(decisions: &[Frame]) -> Vec<usize> {
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
