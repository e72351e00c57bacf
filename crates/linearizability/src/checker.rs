//! [`check`]: split a history into partitions and search each one.

use std::collections::BTreeMap;

use crate::budget::{Budget, MemoryBudget, StepBudget, Usage};
use crate::history::{History, Operation};
use crate::model::Model;
use crate::report::{CheckResult, PartitionResult, Verdict};
use crate::search::{MemoPeak, SearchOutcome, search_partition};

/// Knobs that change how the search runs (not what it answers).
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// Lowe's memoization of explored `(linearized set, state)` pairs. Turning it
    /// off gives plain Wing-Gong, which is exponential; it exists so benchmarks
    /// can measure what the memo buys.
    pub memoize: bool,
    /// Lookahead pruning ([`Model::may_still_observe`]): a state no later
    /// read can agree with is not entered. Off, one key with many
    /// overlapping appends can take exponential time and memory; it exists
    /// so benchmarks can measure what the lookahead buys.
    pub lookahead: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            memoize: true,
            lookahead: true,
        }
    }
}

/// The private budget of the search that improves an explanation (see
/// [`check_with_options`]); it does not count toward the caller's budget.
const EXPLANATION_STEPS_MAX: u64 = 1_000_000;
const EXPLANATION_MEMO_BYTES_MAX: u64 = 256 << 20;

/// Checks whether `history` is linearizable with respect to `model`.
///
/// The history is split by [`Model::partition`]; partitions are searched one at
/// a time in key order, and checking stops at the first partition that is not
/// linearizable (the answer is then known) or when `budget` runs out (the answer
/// is then [`Verdict::Unknown`], even if every partition searched so far was
/// fine).
///
/// The lookahead finds violations early, so its longest linearizable
/// prefix stops short of the operation that really cannot be placed (for
/// example at the first append, when the trouble is a read at the end).
/// When a partition is not linearizable, the search is run once more
/// without the lookahead, on a small budget of its own, and its longer
/// prefix is reported if it finishes; the verdict never depends on it.
pub fn check<M: Model, B: Budget>(
    model: &M,
    history: &History<M::Input, M::Output>,
    budget: B,
) -> CheckResult {
    check_with_options(model, history, budget, CheckOptions::default())
}

/// [`check`] with explicit [`CheckOptions`].
pub fn check_with_options<M: Model, B: Budget>(
    model: &M,
    history: &History<M::Input, M::Output>,
    mut budget: B,
    options: CheckOptions,
) -> CheckResult {
    let partitions = partition(model, history);
    let partition_count = partitions.len();
    let mut results = Vec::new();
    let mut usage = Usage::default();
    let mut peak = MemoPeak::default();
    let mut verdict = Verdict::Linearizable;
    for (key, members) in partitions {
        // Unknown-outcome reads can neither fail nor change the state: leave them
        // out of the search (see `Model::is_read_only`).
        let searched: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&index| {
                let operation = &history.operations()[index];
                operation.output().is_some() || !model.is_read_only(&operation.input)
            })
            .collect();
        let operations: Vec<&Operation<M::Input, M::Output>> = searched
            .iter()
            .map(|&index| &history.operations()[index])
            .collect();
        let mut outcome = search_partition(
            model,
            &operations,
            &mut budget,
            &mut usage,
            &mut peak,
            options,
        );
        if options.lookahead
            && let SearchOutcome::NotLinearizable { longest_prefix } = &outcome
            && let Some(longer) = longest_prefix_without_lookahead(model, &operations, options)
            && longer.len() > longest_prefix.len()
        {
            outcome = SearchOutcome::NotLinearizable {
                longest_prefix: longer,
            };
        }
        let to_history_indices = |local: Vec<usize>| {
            local
                .into_iter()
                .map(|index| searched[index])
                .collect::<Vec<_>>()
        };
        let result = match outcome {
            SearchOutcome::Linearizable { order } => PartitionResult {
                key,
                verdict: Verdict::Linearizable,
                linearization: to_history_indices(order),
                stuck_at: None,
                operations: members,
            },
            SearchOutcome::NotLinearizable { longest_prefix } => {
                let linearization = to_history_indices(longest_prefix);
                let stuck_at = first_return_outside(history, &members, &linearization);
                PartitionResult {
                    key,
                    verdict: Verdict::NotLinearizable,
                    linearization,
                    stuck_at,
                    operations: members,
                }
            }
            SearchOutcome::OutOfBudget { longest_prefix } => PartitionResult {
                key,
                verdict: Verdict::Unknown,
                linearization: to_history_indices(longest_prefix),
                stuck_at: None,
                operations: members,
            },
        };
        verdict = result.verdict;
        results.push(result);
        if verdict != Verdict::Linearizable {
            break;
        }
    }
    CheckResult {
        verdict,
        partitions: results,
        partition_count,
        steps_taken: usage.steps_taken,
        peak_memo_entries: peak.entries,
        peak_memo_bytes: peak.bytes,
    }
}

/// The longest linearizable prefix the search finds without the lookahead,
/// if it decides within its private budget.
fn longest_prefix_without_lookahead<M: Model>(
    model: &M,
    operations: &[&Operation<M::Input, M::Output>],
    options: CheckOptions,
) -> Option<Vec<usize>> {
    let mut budget = (
        StepBudget::new(EXPLANATION_STEPS_MAX),
        MemoryBudget::bytes(EXPLANATION_MEMO_BYTES_MAX),
    );
    let outcome = search_partition(
        model,
        operations,
        &mut budget,
        &mut Usage::default(),
        &mut MemoPeak::default(),
        CheckOptions {
            lookahead: false,
            ..options
        },
    );
    match outcome {
        SearchOutcome::NotLinearizable { longest_prefix } => Some(longest_prefix),
        SearchOutcome::Linearizable { .. } | SearchOutcome::OutOfBudget { .. } => None,
    }
}

/// Groups operation indices by partition key, in key order (a `BTreeMap`, so
/// the order of checking never depends on hashing).
fn partition<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
) -> BTreeMap<String, Vec<usize>> {
    let mut partitions: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, operation) in history.operations().iter().enumerate() {
        partitions
            .entry(model.partition(&operation.input))
            .or_default()
            .push(index);
    }
    partitions
}

/// The operation where a failed search got stuck: of those not in the longest
/// linearizable prefix, the one that returned first. Every order extending the
/// prefix had to place it before its return, and none could.
fn first_return_outside<I, O>(
    history: &History<I, O>,
    members: &[usize],
    prefix: &[usize],
) -> Option<usize> {
    members
        .iter()
        .copied()
        .filter(|index| !prefix.contains(index))
        .filter_map(|index| Some((history.operations()[index].return_time()?, index)))
        .min()
        .map(|(_, index)| index)
}
