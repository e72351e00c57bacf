//! Line-based history logs from other tools, read into a [`History`]:
//!
//! | format | file | model |
//! |---|---|---|
//! | [`porcupine_kv`] | porcupine's `test_data/kv/*.txt` (6.824 key/value logs, EDN maps) | [`KvModel`](crate::KvModel) |
//! | [`jepsen_etcd`] | porcupine's `test_data/jepsen/etcd_*.log` (Jepsen's etcd register logs) | [`RegisterModel`](crate::RegisterModel) |
//!
//! Both are event logs: one line per invocation and one per completion, in
//! the order they happened, with no timestamps. The line number (counting
//! from 1) becomes the time of the event, so an operation's call and return
//! are the lines of its invocation and its completion, and the order of
//! lines is the real-time order the checker respects.
//!
//! Each reader follows the meaning porcupine's own tests give these logs, so
//! that our verdict and porcupine's can be compared history by history
//! (`scripts/bench-checker-vs-porcupine.sh`); where a reading is ours, the
//! reader's docs say so. A line that cannot be read is an error naming the
//! line, never skipped silently.

pub mod jepsen_etcd;
pub mod porcupine_kv;

use std::collections::BTreeMap;

use crate::error::HistoryError;
use crate::history::{History, Operation, Outcome};

/// The operations read so far and the one each client has outstanding.
struct LogReader<I, O> {
    operations: Vec<Operation<I, O>>,
    /// Client -> (index of its outstanding operation, line of the invocation).
    outstanding: BTreeMap<u64, (usize, usize)>,
}

impl<I, O> LogReader<I, O> {
    fn new() -> Self {
        Self {
            operations: Vec::new(),
            outstanding: BTreeMap::new(),
        }
    }

    /// An invocation by `client` on `line`.
    fn invoke(&mut self, line: usize, client: u64, input: I) -> Result<(), HistoryError> {
        if let Some(&(_, invoked_on)) = self.outstanding.get(&client) {
            return Err(line_error(
                line,
                format!(
                    "process {client} invokes again while its operation from line {invoked_on} \
                     has not completed"
                ),
            ));
        }
        self.outstanding
            .insert(client, (self.operations.len(), line));
        self.operations.push(Operation {
            client,
            call_time: line as u64,
            input,
            outcome: Outcome::Unknown { gave_up_at: None },
        });
        Ok(())
    }

    /// The operation `client` has outstanding, completed on `line`: removed
    /// from the outstanding ones, for the caller to set its outcome.
    fn complete(&mut self, line: usize, client: u64) -> Result<&mut Operation<I, O>, HistoryError> {
        let Some((index, _)) = self.outstanding.remove(&client) else {
            return Err(line_error(
                line,
                format!("process {client} completes an operation it never invoked"),
            ));
        };
        Ok(&mut self.operations[index])
    }

    /// The operations still outstanding at the end of the log, in the order
    /// they were invoked.
    fn outstanding_operations(&mut self) -> impl Iterator<Item = &mut Operation<I, O>> {
        let mut indices: Vec<usize> = self.outstanding.values().map(|&(index, _)| index).collect();
        indices.sort_unstable();
        self.operations
            .iter_mut()
            .enumerate()
            .filter(move |(index, _)| indices.binary_search(index).is_ok())
            .map(|(_, operation)| operation)
    }

    fn into_history(self) -> Result<History<I, O>, HistoryError> {
        History::new(self.operations)
    }
}

fn line_error(line: usize, problem: impl Into<String>) -> HistoryError {
    HistoryError::Line {
        line,
        problem: problem.into(),
    }
}
