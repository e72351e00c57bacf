//! [`Budget`]: how much searching the caller allows before the answer becomes
//! "unknown".
//!
//! The search core never reads a clock (it is sans-IO, like the rest of the
//! project's cores). A caller that wants a wall-clock limit passes a
//! [`DeadlineBudget`] with a closure that reads whatever clock it trusts; tests
//! use a [`StepBudget`], which is deterministic.
//!
//! Memory has a budget of its own, [`MemoryBudget`]: the memo keeps every
//! configuration it has explored, and on a hard partition (one key, many
//! long-overlapping writes) it can grow by gigabytes long before a step limit
//! that suits ordinary histories is reached. Each step adds at most one memo
//! entry and one frame to the backtracking stack; the memo is per partition
//! and freed when the partition is done.

/// How much the search has used so far; what a [`Budget`] looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Search steps taken in the whole check (all partitions).
    pub steps_taken: u64,
    /// Entries in the memos of the partitions being searched (they are
    /// searched interleaved, so several memos may be alive at once).
    pub memo_entries: u64,
    /// An estimate of the bytes those entries hold: each entry's key (the
    /// linearized-set bitset and the state, with what the state owns on the
    /// heap as [`Model::state_heap_bytes`](crate::Model::state_heap_bytes)
    /// reports it) plus the hash table's per-entry overhead.
    pub memo_bytes: u64,
}

/// Decides when the search must give up. Running out of budget makes the
/// verdict [`Verdict::Unknown`](crate::Verdict::Unknown), never a guess.
pub trait Budget {
    /// Called once per search step with what the search has used so far.
    /// Returns `true` to stop searching.
    ///
    /// It is on the hot path: keep it cheap, or do the expensive part only every
    /// few thousand steps (as [`DeadlineBudget`] does).
    fn is_exhausted(&mut self, usage: &Usage) -> bool;
}

/// No limit: search until the answer is known.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unlimited;

impl Budget for Unlimited {
    fn is_exhausted(&mut self, _usage: &Usage) -> bool {
        false
    }
}

/// At most `steps_max` search steps. Deterministic, so tests can rely on it.
#[derive(Clone, Copy, Debug)]
pub struct StepBudget {
    pub steps_max: u64,
}

impl StepBudget {
    pub fn new(steps_max: u64) -> Self {
        Self { steps_max }
    }
}

impl Budget for StepBudget {
    fn is_exhausted(&mut self, usage: &Usage) -> bool {
        usage.steps_taken > self.steps_max
    }
}

/// At most `memo_bytes_max` bytes (estimated, see [`Usage::memo_bytes`]) and
/// at most `memo_entries_max` entries in the memos of the partitions being
/// searched (together).
/// Deterministic. The process's real footprint is larger by the backtracking
/// stack (at most one frame per operation of the partition) and the
/// allocator's slack, so leave headroom.
#[derive(Clone, Copy, Debug)]
pub struct MemoryBudget {
    pub memo_bytes_max: u64,
    pub memo_entries_max: u64,
}

impl MemoryBudget {
    /// A bound in bytes only.
    pub fn bytes(memo_bytes_max: u64) -> Self {
        Self {
            memo_bytes_max,
            memo_entries_max: u64::MAX,
        }
    }

    /// A bound on the number of memo entries only.
    pub fn entries(memo_entries_max: u64) -> Self {
        Self {
            memo_bytes_max: u64::MAX,
            memo_entries_max,
        }
    }
}

impl Budget for MemoryBudget {
    fn is_exhausted(&mut self, usage: &Usage) -> bool {
        usage.memo_bytes > self.memo_bytes_max || usage.memo_entries > self.memo_entries_max
    }
}

/// Stops when `deadline_passed()` says so. The closure is consulted only every
/// [`DeadlineBudget::CHECK_INTERVAL_STEPS`] steps, because reading a clock costs
/// more than a search step.
pub struct DeadlineBudget<F: FnMut() -> bool> {
    deadline_passed: F,
    passed: bool,
}

impl<F: FnMut() -> bool> DeadlineBudget<F> {
    /// How many steps pass between two calls of the closure.
    pub const CHECK_INTERVAL_STEPS: u64 = 1024;

    pub fn new(deadline_passed: F) -> Self {
        Self {
            deadline_passed,
            passed: false,
        }
    }
}

impl<F: FnMut() -> bool> Budget for DeadlineBudget<F> {
    fn is_exhausted(&mut self, usage: &Usage) -> bool {
        if !self.passed && usage.steps_taken.is_multiple_of(Self::CHECK_INTERVAL_STEPS) {
            self.passed = (self.deadline_passed)();
        }
        self.passed
    }
}

impl<B: Budget + ?Sized> Budget for &mut B {
    fn is_exhausted(&mut self, usage: &Usage) -> bool {
        (**self).is_exhausted(usage)
    }
}

/// Both budgets apply: exhausted as soon as either is (for example a step limit
/// and a deadline together).
impl<A: Budget, B: Budget> Budget for (A, B) {
    fn is_exhausted(&mut self, usage: &Usage) -> bool {
        // Both are asked every step, so a deadline's own interval counting holds.
        let first = self.0.is_exhausted(usage);
        let second = self.1.is_exhausted(usage);
        first || second
    }
}

/// All three apply (for example steps, memory and a deadline).
impl<A: Budget, B: Budget, C: Budget> Budget for (A, B, C) {
    fn is_exhausted(&mut self, usage: &Usage) -> bool {
        let first = self.0.is_exhausted(usage);
        let second = self.1.is_exhausted(usage);
        let third = self.2.is_exhausted(usage);
        first || second || third
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(steps_taken: u64) -> Usage {
        Usage {
            steps_taken,
            ..Usage::default()
        }
    }

    #[test]
    fn step_budget_allows_exactly_its_steps() {
        let mut budget = StepBudget::new(3);
        assert!(!budget.is_exhausted(&steps(3)));
        assert!(budget.is_exhausted(&steps(4)));
    }

    #[test]
    fn memory_budget_bounds_bytes_and_entries() {
        let usage = |memo_entries, memo_bytes| Usage {
            steps_taken: 1,
            memo_entries,
            memo_bytes,
        };
        let mut bytes = MemoryBudget::bytes(1000);
        assert!(!bytes.is_exhausted(&usage(u64::MAX, 1000)));
        assert!(bytes.is_exhausted(&usage(1, 1001)));
        let mut entries = MemoryBudget::entries(10);
        assert!(!entries.is_exhausted(&usage(10, u64::MAX)));
        assert!(entries.is_exhausted(&usage(11, 0)));
    }

    #[test]
    fn deadline_budget_reads_the_clock_only_every_interval_and_stays_exhausted() {
        let reads = std::cell::Cell::new(0);
        let interval = DeadlineBudget::<fn() -> bool>::CHECK_INTERVAL_STEPS;
        let mut budget = DeadlineBudget::new(|| {
            reads.set(reads.get() + 1);
            reads.get() >= 2
        });
        assert!(!budget.is_exhausted(&steps(interval)));
        assert!(!budget.is_exhausted(&steps(interval + 1)));
        assert!(budget.is_exhausted(&steps(2 * interval)));
        assert!(budget.is_exhausted(&steps(2 * interval + 1)));
        assert_eq!(reads.get(), 2);
    }

    #[test]
    fn a_pair_is_exhausted_when_either_is() {
        let mut pair = (StepBudget::new(10), StepBudget::new(5));
        assert!(!pair.is_exhausted(&steps(5)));
        assert!(pair.is_exhausted(&steps(6)));
        let mut triple = (StepBudget::new(10), Unlimited, MemoryBudget::entries(3));
        assert!(triple.is_exhausted(&Usage {
            steps_taken: 1,
            memo_entries: 4,
            memo_bytes: 0
        }));
    }
}
