//! Concurrent ReadIndex reads share one heartbeat round.
//!
//! ```text
//!  reader ─┐                      driver task (one at a time)
//!  reader ─┼─► waiting ──take──► raft.read_index() ──► every reader of
//!  reader ─┘   (arrive while       (one heartbeat        that batch gets
//!               a round runs)       round)               the same index
//! ```
//!
//! A batch is taken only after all its readers arrived, and its read index
//! is asked for after that, so each reader's index is one Raft fixed after
//! the reader's request: linearizable as if each had asked alone. Readers
//! that arrive during a round wait for the next one (at most two rounds).

use std::sync::{Arc, Mutex};

use raft::node::RaftNode;
use tokio::sync::oneshot;

#[derive(Default)]
struct BatchState {
    /// A driver task is running.
    driving: bool,
    waiting: Vec<oneshot::Sender<Option<u64>>>,
}

/// See the module docs. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct ReadBatcher {
    state: Arc<Mutex<BatchState>>,
}

/// Too many readers wait already.
pub(crate) struct TooManyReads {
    pub(crate) waiting: usize,
}

impl ReadBatcher {
    /// A read index for a read that arrived now (None: not the leader, or
    /// not ready), or a refusal past `max_waiting` readers.
    pub(crate) async fn read_index(
        &self,
        raft: &RaftNode,
        max_waiting: usize,
    ) -> Result<Option<u64>, TooManyReads> {
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
                labrpc::runtime::spawn(self.clone().drive(raft.clone()));
            }
        }
        // A dropped sender (the driver's node was killed) is "no index".
        Ok(answered.await.ok().flatten())
    }

    async fn drive(self, raft: RaftNode) {
        loop {
            let batch = {
                let mut state = self.lock();
                if state.waiting.is_empty() {
                    state.driving = false;
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            let index = raft.read_index().await;
            for reader in batch {
                // The reader may have given up: fine.
                let _ = reader.send(index);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BatchState> {
        self.state.lock().expect("read batch lock poisoned")
    }
}
