//! [`check`]: split a history into partitions and search each one.

use std::collections::{BTreeMap, VecDeque};

use crate::budget::{Budget, MemoryBudget, StepBudget, Usage};
use crate::history::{History, Operation};
use crate::model::Model;
use crate::report::{CheckResult, PartitionResult, Verdict};
use crate::search::{MemoPeak, PartitionSearch, SearchOutcome, search_partition};

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
    /// When a partition is not linearizable, run [`improve_explanation`]
    /// before returning (on its own budget; the verdict never depends on it).
    /// Off, the verdict comes back as soon as it is known and the caller may
    /// run [`improve_explanation`] afterwards, as the command line does.
    pub improve_explanation: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            memoize: true,
            lookahead: true,
            improve_explanation: true,
        }
    }
}

/// The private budget of the search that improves an explanation (see
/// [`improve_explanation`]); it does not count toward the caller's budget.
pub const EXPLANATION_STEPS_MAX: u64 = 1_000_000;
pub const EXPLANATION_MEMO_BYTES_MAX: u64 = 256 << 20;

/// How many steps one partition's search takes before the next partition's
/// turn. Small enough that a partition that fails in a few thousand steps is
/// found quickly behind a hard linearizable one; large enough that switching
/// (a few memory reads) costs nothing measurable.
pub const PARTITION_SLICE_STEPS: u64 = 1024;

/// Checks whether `history` is linearizable with respect to `model`.
///
/// The history is split by [`Model::partition`]. The partitions are searched
/// interleaved, round-robin in key order, [`PARTITION_SLICE_STEPS`] steps at
/// a time (deterministic: the same history and budget always give the same
/// result). The history is linearizable when every partition is, so checking
/// stops as soon as one partition is not (the answer is then known), or when
/// `budget` runs out (the answer is then [`Verdict::Unknown`], even if every
/// partition decided so far was fine). Interleaving is what keeps a violation
/// cheap to find when an earlier key is hard but linearizable: the search
/// costs at most about the partition count times the steps of the cheapest
/// failing partition, not the sum of every partition before it in key order.
///
/// The lookahead finds violations early, so its longest linearizable
/// prefix stops short of the operation that really cannot be placed (for
/// example at the first append, when the trouble is a read at the end).
/// When a partition is not linearizable, [`improve_explanation`] runs the
/// search once more without the lookahead, on a small budget of its own,
/// and reports its longer prefix if it finishes; the verdict never depends
/// on it ([`CheckOptions::improve_explanation`] turns this off).
pub fn check<M: Model, B: Budget>(
    model: &M,
    history: &History<M::Input, M::Output>,
    budget: B,
) -> CheckResult {
    check_with_options(model, history, budget, CheckOptions::default())
}

/// A partition waiting for its next turn.
struct PendingPartition<'history, M: Model> {
    key: String,
    /// All its operations (history indices, history order).
    members: Vec<usize>,
    /// Those the search sees (history indices; its local index `i` is
    /// `searched[i]`).
    searched: Vec<usize>,
    search: PartitionSearch<'history, M>,
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
    let mut pending: VecDeque<PendingPartition<'_, M>> = partitions
        .into_iter()
        .map(|(key, members)| {
            let searched = searched_operations(model, history, &members);
            let operations = searched
                .iter()
                .map(|&index| &history.operations()[index])
                .collect();
            PendingPartition {
                key,
                members,
                searched,
                search: PartitionSearch::new(model, operations, options),
            }
        })
        .collect();
    let mut results = Vec::new();
    let mut usage = Usage::default();
    let mut peak = MemoPeak::default();
    let mut verdict = Verdict::Linearizable;
    // The memos of the partitions waiting for their turn: what the memory
    // budget sees besides the one being searched.
    let mut memo_waiting = pending
        .iter()
        .fold((0u64, 0u64), |(entries, bytes), waiting| {
            let (more_entries, more_bytes) = waiting.search.memo_size();
            (entries + more_entries, bytes + more_bytes)
        });
    while let Some(mut current) = pending.pop_front() {
        let (entries, bytes) = current.search.memo_size();
        memo_waiting = (memo_waiting.0 - entries, memo_waiting.1 - bytes);
        let Some(outcome) = current.search.run(
            model,
            PARTITION_SLICE_STEPS,
            &mut budget,
            &mut usage,
            memo_waiting,
            &mut peak,
        ) else {
            let (entries, bytes) = current.search.memo_size();
            memo_waiting = (memo_waiting.0 + entries, memo_waiting.1 + bytes);
            pending.push_back(current);
            continue;
        };
        let result = partition_result(
            history,
            current.key,
            current.members,
            &current.searched,
            outcome,
        );
        verdict = result.verdict;
        results.push(result);
        if verdict != Verdict::Linearizable {
            break;
        }
    }
    let mut result = CheckResult {
        verdict,
        partitions: results,
        partition_count,
        steps_taken: usage.steps_taken,
        peak_memo_entries: peak.entries,
        peak_memo_bytes: peak.bytes,
    };
    if options.improve_explanation && options.lookahead {
        improve_explanation(model, history, &mut result);
    }
    result
}

/// The operations of a partition the search needs to see. Unknown-outcome
/// reads can neither fail nor change the state, so they are left out (see
/// [`Model::is_read_only`]).
fn searched_operations<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    members: &[usize],
) -> Vec<usize> {
    members
        .iter()
        .copied()
        .filter(|&index| {
            let operation = &history.operations()[index];
            operation.output().is_some() || !model.is_read_only(&operation.input)
        })
        .collect()
}

/// A partition's search outcome in history terms.
fn partition_result<I, O>(
    history: &History<I, O>,
    key: String,
    members: Vec<usize>,
    searched: &[usize],
    outcome: SearchOutcome,
) -> PartitionResult {
    let to_history_indices = |local: Vec<usize>| {
        local
            .into_iter()
            .map(|index| searched[index])
            .collect::<Vec<_>>()
    };
    match outcome {
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
    }
}

/// Improves the explanation of a [`Verdict::NotLinearizable`] result, after
/// the verdict: the failing partition is searched once more without the
/// lookahead, on a private budget ([`EXPLANATION_STEPS_MAX`] steps,
/// [`EXPLANATION_MEMO_BYTES_MAX`] bytes of memo, not counted in the result),
/// and if that search finishes with a longer linearizable prefix, the
/// partition's prefix and `stuck_at` are replaced by it. The verdict and the
/// counters never change. Does nothing for other verdicts.
///
/// `result` must come from checking `history` against `model`.
pub fn improve_explanation<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    result: &mut CheckResult,
) {
    if result.verdict != Verdict::NotLinearizable {
        return;
    }
    let Some(failing) = result
        .partitions
        .iter_mut()
        .find(|partition| partition.verdict == Verdict::NotLinearizable)
    else {
        return;
    };
    let searched = searched_operations(model, history, &failing.operations);
    let operations: Vec<&Operation<M::Input, M::Output>> = searched
        .iter()
        .map(|&index| &history.operations()[index])
        .collect();
    let mut budget = (
        StepBudget::new(EXPLANATION_STEPS_MAX),
        MemoryBudget::bytes(EXPLANATION_MEMO_BYTES_MAX),
    );
    let outcome = search_partition(
        model,
        &operations,
        &mut budget,
        &mut Usage::default(),
        &mut MemoPeak::default(),
        CheckOptions {
            lookahead: false,
            ..CheckOptions::default()
        },
    );
    let SearchOutcome::NotLinearizable { longest_prefix } = outcome else {
        return;
    };
    if longest_prefix.len() <= failing.linearization.len() {
        return;
    }
    let linearization: Vec<usize> = longest_prefix
        .into_iter()
        .map(|index| searched[index])
        .collect();
    failing.stuck_at = first_return_outside(history, &failing.operations, &linearization);
    failing.linearization = linearization;
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
