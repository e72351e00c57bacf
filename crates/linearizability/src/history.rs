//! [`History`]: the operations a set of clients performed, with their timing.

use crate::error::{HistoryError, OperationLabel};

/// One client operation: when it was called, what it asked, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// Which client issued it. Each client is expected to have at most one
    /// operation outstanding at a time, but the checker does not rely on it.
    pub client: u64,
    /// When the client sent the request, on the history's clock.
    pub call_time: u64,
    /// What the client asked for.
    pub input: I,
    /// When and how the operation ended, if the client knows.
    pub outcome: Outcome<O>,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<O> {
    /// The client got an answer at `time`. The operation took effect at one
    /// instant between its call and this time.
    Returned { time: u64, output: O },
    /// The client never learned the result (it timed out, or the history ended
    /// first). The request may still be in flight, so the operation may take
    /// effect at any instant after its call, or never. `gave_up_at` is when the
    /// client stopped waiting; it is kept for pictures only and constrains
    /// nothing.
    Unknown { gave_up_at: Option<u64> },
}

impl<O> Outcome<O> {
    /// The return time, if the outcome is known.
    pub fn return_time(&self) -> Option<u64> {
        match self {
            Outcome::Returned { time, .. } => Some(*time),
            Outcome::Unknown { .. } => None,
        }
    }

    /// The output, if the outcome is known.
    pub fn output(&self) -> Option<&O> {
        match self {
            Outcome::Returned { output, .. } => Some(output),
            Outcome::Unknown { .. } => None,
        }
    }
}

impl<I, O> Operation<I, O> {
    /// The last time this operation could have taken effect: its return time,
    /// or `None` (forever) when the outcome is unknown.
    pub fn return_time(&self) -> Option<u64> {
        self.outcome.return_time()
    }

    /// The output, if the outcome is known.
    pub fn output(&self) -> Option<&O> {
        self.outcome.output()
    }
}

/// A validated history: every known return is at or after its call.
///
/// Operations keep the order they were given in (they need not be sorted by
/// time); reports refer to an operation by its index in that order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History<I, O> {
    operations: Vec<Operation<I, O>>,
}

impl<I, O> History<I, O> {
    /// Validates `operations` into a history.
    ///
    /// # Errors
    ///
    /// [`HistoryError::Operation`] naming field `return` if an operation
    /// returned before it was called.
    pub fn new(operations: Vec<Operation<I, O>>) -> Result<Self, HistoryError> {
        for (index, operation) in operations.iter().enumerate() {
            if let Outcome::Returned { time, .. } = operation.outcome
                && time < operation.call_time
            {
                return Err(HistoryError::Operation {
                    operation: OperationLabel {
                        index,
                        client: Some(operation.client),
                    },
                    field: "return".to_string(),
                    problem: format!(
                        "return time {time} is before call time {}",
                        operation.call_time
                    ),
                });
            }
        }
        Ok(Self { operations })
    }

    /// The operations, in the order they were given.
    pub fn operations(&self) -> &[Operation<I, O>] {
        &self.operations
    }

    /// How many operations there are.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// How many operations have an unknown outcome.
    pub fn unknown_outcome_count(&self) -> usize {
        self.operations
            .iter()
            .filter(|operation| operation.output().is_none())
            .count()
    }
}
