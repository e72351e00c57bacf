//! [`Recorder`]: collects a history while concurrent test clients run.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::HistoryError;
use crate::history::{History, Operation, Outcome};

/// A shared, cheaply cloned log of client operations.
///
/// Each client calls [`call`](Recorder::call) just before sending a request and
/// [`returned`](Recorder::returned) (or [`timed_out`](Recorder::timed_out)) when
/// it has the answer (or gives up). Times are whatever clock the test trusts,
/// in any unit, as long as every client uses the same one; in simulation, pass
/// the simulated time (for example nanoseconds since the simulation started).
///
/// ```
/// use linearizability::{KvInput, KvModel, KvOutput, Recorder, Unlimited, Verdict, check};
///
/// let recorder = Recorder::new();
/// let put = recorder.call(1, KvInput::Put { key: "k".into(), value: "x".into() }, 100);
/// let get = recorder.call(2, KvInput::Get { key: "k".into() }, 150);
/// recorder.returned(put, KvOutput::Done, 200);
/// recorder.returned(get, KvOutput::Value(Some("x".into())), 250);
///
/// let history = recorder.history().expect("returns come after calls");
/// assert_eq!(check(&KvModel::new(), &history, Unlimited).verdict, Verdict::Linearizable);
/// ```
pub struct Recorder<I, O> {
    operations: Arc<Mutex<Vec<RecordedOperation<I, O>>>>,
}

/// An operation that has been called and not yet finished. Finish it with
/// [`Recorder::returned`] or [`Recorder::timed_out`]; if it is simply dropped,
/// the operation stays pending and counts as of unknown outcome.
#[must_use = "finish the call with returned() or timed_out(), or its outcome is unknown"]
#[derive(Debug)]
pub struct PendingCall {
    index: usize,
}

struct RecordedOperation<I, O> {
    client: u64,
    call_time: u64,
    input: I,
    /// `None` while the call is pending.
    outcome: Option<Outcome<O>>,
}

impl<I, O> Clone for Recorder<I, O> {
    fn clone(&self) -> Self {
        Self {
            operations: Arc::clone(&self.operations),
        }
    }
}

impl<I, O> Default for Recorder<I, O> {
    fn default() -> Self {
        Self {
            operations: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<I: Clone, O: Clone> Recorder<I, O> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `client` sent `input` at `call_time`.
    pub fn call(&self, client: u64, input: I, call_time: u64) -> PendingCall {
        let mut operations = self.lock();
        operations.push(RecordedOperation {
            client,
            call_time,
            input,
            outcome: None,
        });
        PendingCall {
            index: operations.len() - 1,
        }
    }

    /// Records that the call got `output` at `return_time`.
    pub fn returned(&self, call: PendingCall, output: O, return_time: u64) {
        self.finish(
            call,
            Outcome::Returned {
                time: return_time,
                output,
            },
        );
    }

    /// Records that the client gave up at `gave_up_at` without learning the
    /// outcome: the operation may take effect later, or never.
    pub fn timed_out(&self, call: PendingCall, gave_up_at: u64) {
        self.finish(
            call,
            Outcome::Unknown {
                gave_up_at: Some(gave_up_at),
            },
        );
    }

    /// How many operations have been called so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The history so far. Calls still pending have an unknown outcome.
    ///
    /// # Errors
    ///
    /// [`HistoryError::Operation`] if some return time is before its call time
    /// (the clock passed in went backwards).
    pub fn history(&self) -> Result<History<I, O>, HistoryError> {
        let operations = self
            .lock()
            .iter()
            .map(|recorded| Operation {
                client: recorded.client,
                call_time: recorded.call_time,
                input: recorded.input.clone(),
                outcome: recorded
                    .outcome
                    .clone()
                    .unwrap_or(Outcome::Unknown { gave_up_at: None }),
            })
            .collect();
        History::new(operations)
    }

    /// # Panics
    ///
    /// If `call` did not come from this recorder (a harness bug).
    fn finish(&self, call: PendingCall, outcome: Outcome<O>) {
        let mut operations = self.lock();
        let recorded_count = operations.len();
        let recorded = operations.get_mut(call.index).unwrap_or_else(|| {
            panic!(
                "call {} finished on a recorder holding {recorded_count} calls",
                call.index
            )
        });
        assert!(
            recorded.outcome.is_none(),
            "call {} finished twice",
            call.index
        );
        recorded.outcome = Some(outcome);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<RecordedOperation<I, O>>> {
        // A client that panicked while holding the lock could only have been
        // pushing or setting one field; the log stays well formed, and the test
        // that panicked reports its own failure.
        self.operations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
