//! [`HistoryError`]: why a history could not be read.

use std::fmt;

use thiserror::Error;

/// A history that cannot be checked: not JSON, a missing or malformed field, an
/// unknown model or op, a return before its call, or (for the line-based
/// formats of [`formats`](crate::formats)) a line that cannot be read. Every
/// variant names where the problem is, so a user can fix the file.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// The text is not JSON at all.
    #[error("not valid JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// A problem with a top-level field (`model`, `operations`).
    #[error("field \"{field}\": {problem}")]
    Document { field: String, problem: String },
    /// A problem with one operation.
    #[error("{operation}: field \"{field}\": {problem}")]
    Operation {
        operation: OperationLabel,
        field: String,
        problem: String,
    },
    /// A problem with one line of a line-based log (lines count from 1).
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: String },
}

/// Names an operation in messages: its position in the history (as written in the
/// file, counting from 0) and, once known, its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperationLabel {
    pub index: usize,
    pub client: Option<u64>,
}

impl fmt::Display for OperationLabel {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.client {
            Some(client) => write!(formatter, "operation {} (client {client})", self.index),
            None => write!(formatter, "operation {}", self.index),
        }
    }
}
