//! [`Budget`]: how much searching the caller allows before the answer becomes
//! "unknown".
//!
//! The search core never reads a clock (it is sans-IO, like the rest of the
//! project's cores). A caller that wants a wall-clock limit passes a
//! [`DeadlineBudget`] with a closure that reads whatever clock it trusts; tests
//! use a [`StepBudget`], which is deterministic.
//!
//! The budget bounds memory as well as time: each step adds at most one entry to
//! the memo and one frame to the backtracking stack.

/// Decides when the search must give up. Running out of budget makes the
/// verdict [`Verdict::Unknown`](crate::Verdict::Unknown), never a guess.
pub trait Budget {
    /// Called once per search step with the number of steps taken so far in
    /// the whole check (all partitions). Returns `true` to stop searching.
    ///
    /// It is on the hot path: keep it cheap, or do the expensive part only every
    /// few thousand steps (as [`DeadlineBudget`] does).
    fn is_exhausted(&mut self, steps_taken: u64) -> bool;
}

/// No limit: search until the answer is known.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unlimited;

impl Budget for Unlimited {
    fn is_exhausted(&mut self, _steps_taken: u64) -> bool {
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
    fn is_exhausted(&mut self, steps_taken: u64) -> bool {
        steps_taken > self.steps_max
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
    fn is_exhausted(&mut self, steps_taken: u64) -> bool {
        if !self.passed && steps_taken.is_multiple_of(Self::CHECK_INTERVAL_STEPS) {
            self.passed = (self.deadline_passed)();
        }
        self.passed
    }
}

impl<B: Budget + ?Sized> Budget for &mut B {
    fn is_exhausted(&mut self, steps_taken: u64) -> bool {
        (**self).is_exhausted(steps_taken)
    }
}

/// Both budgets apply: exhausted as soon as either is (for example a step limit
/// and a deadline together).
impl<A: Budget, B: Budget> Budget for (A, B) {
    fn is_exhausted(&mut self, steps_taken: u64) -> bool {
        // Both are asked every step, so a deadline's own interval counting holds.
        let first = self.0.is_exhausted(steps_taken);
        let second = self.1.is_exhausted(steps_taken);
        first || second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_budget_allows_exactly_its_steps() {
        let mut budget = StepBudget::new(3);
        assert!(!budget.is_exhausted(3));
        assert!(budget.is_exhausted(4));
    }

    #[test]
    fn deadline_budget_reads_the_clock_only_every_interval_and_stays_exhausted() {
        let reads = std::cell::Cell::new(0);
        let interval = DeadlineBudget::<fn() -> bool>::CHECK_INTERVAL_STEPS;
        let mut budget = DeadlineBudget::new(|| {
            reads.set(reads.get() + 1);
            reads.get() >= 2
        });
        assert!(!budget.is_exhausted(interval));
        assert!(!budget.is_exhausted(interval + 1));
        assert!(budget.is_exhausted(2 * interval));
        assert!(budget.is_exhausted(2 * interval + 1));
        assert_eq!(reads.get(), 2);
    }

    #[test]
    fn a_pair_is_exhausted_when_either_is() {
        let mut pair = (StepBudget::new(10), StepBudget::new(5));
        assert!(!pair.is_exhausted(5));
        assert!(pair.is_exhausted(6));
    }
}
