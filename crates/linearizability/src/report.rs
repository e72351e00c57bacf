//! [`CheckResult`]: the verdict, and enough detail to explain it.

use std::fmt;

use crate::history::History;
use crate::model::Model;

/// At most this many operations of the longest prefix are listed by
/// [`CheckResult::explain`] (the last ones, nearest to where the search got stuck).
pub const EXPLAINED_PREFIX_MAX: usize = 30;

/// The answer to "is this history linearizable?".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The budget ran out before the search finished. This is not a guess in
    /// either direction.
    Unknown,
}

impl fmt::Display for Verdict {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not linearizable",
            Verdict::Unknown => "unknown",
        })
    }
}

/// The outcome of [`check`](crate::check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub verdict: Verdict,
    /// The partitions decided, in the order their searches ended (the
    /// partitions are searched interleaved, see [`check`](crate::check)).
    /// Checking stops at the first one that is not linearizable or runs out of
    /// budget (it is then the last), so this may be shorter than
    /// `partition_count`.
    pub partitions: Vec<PartitionResult>,
    /// How many partitions the history has.
    pub partition_count: usize,
    /// Search steps taken in all partitions (what a [`StepBudget`](crate::StepBudget) counts).
    pub steps_taken: u64,
    /// The most memo entries held at once, and their estimated bytes, over the
    /// partitions being searched together (what a
    /// [`MemoryBudget`](crate::MemoryBudget) bounds).
    pub peak_memo_entries: u64,
    pub peak_memo_bytes: u64,
}

/// The outcome of searching one partition. Operations are named by their index
/// in the [`History`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionResult {
    /// The partition key (for `kv`, the key; `""` for a model with one partition).
    pub key: String,
    /// The partition's operations, in history order.
    pub operations: Vec<usize>,
    pub verdict: Verdict,
    /// If linearizable: a witness order (operations of unknown outcome that never
    /// took effect are left out). Otherwise: the longest linearizable prefix the
    /// search found.
    pub linearization: Vec<usize>,
    /// If not linearizable: the operation the search could not get past (the
    /// first to return among those outside the longest prefix).
    pub stuck_at: Option<usize>,
}

impl PartitionResult {
    /// How reports name the partition: `key "k1"`, or `the history` when there is
    /// only the default partition.
    pub fn name(&self) -> String {
        if self.key.is_empty() {
            "the history".to_string()
        } else {
            format!("key {:?}", self.key)
        }
    }
}

impl CheckResult {
    /// The first partition that was not linearizable (or ran out of budget).
    pub fn failing_partition(&self) -> Option<&PartitionResult> {
        self.partitions
            .iter()
            .find(|partition| partition.verdict != Verdict::Linearizable)
    }

    /// One line: the verdict and, when not linearizable, where it failed.
    pub fn summary(&self) -> String {
        let searched = format!(
            "{} of {} partitions decided, {} steps, largest memo {} entries ({:.1} MiB)",
            self.partitions.len(),
            self.partition_count,
            self.steps_taken,
            self.peak_memo_entries,
            self.peak_memo_bytes as f64 / f64::from(1u32 << 20)
        );
        match (self.verdict, self.failing_partition()) {
            (Verdict::NotLinearizable, Some(partition)) => format!(
                "not linearizable: {} has no linearization (longest linearizable prefix: {} of {} \
                 operations; stuck at operation {}); {searched}",
                partition.name(),
                partition.linearization.len(),
                partition.operations.len(),
                partition
                    .stuck_at
                    .map_or_else(|| "?".to_string(), |index| index.to_string()),
            ),
            (Verdict::Unknown, Some(partition)) => format!(
                "unknown: the budget ran out while searching {}; {searched}",
                partition.name()
            ),
            (verdict, _) => format!("{verdict}; {searched}"),
        }
    }

    /// A multi-line explanation of a failing partition for humans: the longest
    /// linearizable prefix in order, the state it leads to, and the operation
    /// that could not be linearized. Empty if every partition was linearizable.
    pub fn explain<M: Model>(&self, model: &M, history: &History<M::Input, M::Output>) -> String {
        let Some(partition) = self.failing_partition() else {
            return String::new();
        };
        let describe = |index: usize| {
            let operation = &history.operations()[index];
            let returned = operation
                .return_time()
                .map_or_else(|| "unknown".to_string(), |time| time.to_string());
            format!(
                "operation {index} (client {}, call {}, return {returned}): {}",
                operation.client,
                operation.call_time,
                model.describe_operation(&operation.input, operation.output())
            )
        };
        let mut lines = vec![format!(
            "{} is {}. Longest linearizable prefix ({} of {} operations):",
            partition.name(),
            partition.verdict,
            partition.linearization.len(),
            partition.operations.len()
        )];
        // Only the end of a long prefix is listed: that is where it got stuck.
        let first_listed = partition
            .linearization
            .len()
            .saturating_sub(EXPLAINED_PREFIX_MAX);
        if first_listed > 0 {
            lines.push(format!("  ({first_listed} earlier operations not listed)"));
        }
        let mut state = model.initial_state();
        for (position, &index) in partition.linearization.iter().enumerate() {
            let operation = &history.operations()[index];
            state = model
                .step(&state, &operation.input, operation.output())
                .unwrap_or_else(|| {
                    panic!("the search's prefix must replay, but operation {index} does not")
                });
            if position >= first_listed {
                lines.push(format!("  {:>4}. {}", position + 1, describe(index)));
            }
        }
        lines.push(format!(
            "State after the prefix: {}",
            model.describe_state(&state)
        ));
        if let Some(stuck) = partition.stuck_at {
            lines.push(format!(
                "Stuck at {}: no legal order of the remaining operations lets it take effect \
                 before it returns.",
                describe(stuck)
            ));
        }
        lines.join("\n")
    }
}
