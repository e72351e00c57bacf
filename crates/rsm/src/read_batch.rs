//! Concurrent reads share one confirmation: on a leader, one ReadIndex
//! heartbeat round; on a follower, one ask of the leader for a read index
//! (`follower_read.rs`).
//!
//! ```text
//!  reader ─┐                      driver task (one at a time)
//!  reader ─┼─► waiting ──take──► fetch() ──────────► every reader of
//!  reader ─┘   (arrive while       (one round, or     that batch gets
//!               a round runs)       one ask)          the same answer
//! ```
//!
//! A batch is taken only after all its readers arrived, and its answer is
//! asked for after that, so each reader's read index is one Raft fixed
//! after the reader's request: linearizable as if each had asked alone.
//! Readers that arrive during a round wait for the next one (at most two
//! rounds).

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

struct BatchState<T> {
    /// A driver task is running.
    driving: bool,
    waiting: Vec<oneshot::Sender<Option<T>>>,
}

/// See the module docs. Cheap to clone; `T` is what one round answers.
pub(crate) struct ReadBatcher<T> {
    state: Arc<Mutex<BatchState<T>>>,
}

impl<T> Clone for ReadBatcher<T> {
    fn clone(&self) -> Self {
        ReadBatcher {
            state: Arc::clone(&self.state),
        }
    }
}

impl<T> Default for ReadBatcher<T> {
    fn default() -> Self {
        ReadBatcher {
            state: Arc::new(Mutex::new(BatchState {
                driving: false,
                waiting: Vec::new(),
            })),
        }
    }
}

/// Too many readers wait already.
pub(crate) struct TooManyReads {
    pub(crate) waiting: usize,
}

impl<T: Clone + Send + 'static> ReadBatcher<T> {
    /// The answer of a round started after this call (None: the round's
    /// driver was dropped, or `fetch` had none), or a refusal past
    /// `max_waiting` readers. `fetch` runs one round; the driver that
    /// this call starts (if none runs) uses this caller's `fetch` for
    /// every round until nobody waits.
    pub(crate) async fn join<F, Fut>(
        &self,
        max_waiting: usize,
        fetch: F,
    ) -> Result<Option<T>, TooManyReads>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Option<T>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        {
            let mut state = self.lock();
            if state.waiting.len() >= max_waiting {
                return Err(TooManyReads {
                    waiting: state.waiting.len(),
                });
            }
            state.waiting.push(answer);
            if !state.driving {
                state.driving = true;
                labrpc::runtime::spawn(self.clone().drive(fetch));
            }
        }
        // A dropped sender (the driver's node was killed) is "no answer".
        Ok(answered.await.ok().flatten())
    }

    async fn drive<F, Fut>(self, fetch: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        loop {
            let batch = {
                let mut state = self.lock();
                if state.waiting.is_empty() {
                    state.driving = false;
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            let answer = fetch().await;
            for reader in batch {
                // The reader may have given up: fine.
                let _ = reader.send(answer.clone());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BatchState<T>> {
        self.state.lock().expect("read batch lock poisoned")
    }
}
