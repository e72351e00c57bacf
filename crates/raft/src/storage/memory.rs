//! [`MemoryStorage`]: the whole persistent state in memory.

use std::future::Future;

use crate::core::PersistentState;

use super::sized_state::SizedState;
use super::{Storage, StorageError, StorageWrite};

/// Keeps the persistent state in memory. "Durable" means: survives as long as
/// this value does, which is what tests that restart a node from its storage
/// need.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    state: SizedState,
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// What is stored now.
    pub fn state(&self) -> &PersistentState {
        self.state.state()
    }

    /// Synchronous form of [`Storage::save`], for pure (non-async) harnesses.
    pub fn save_now(&mut self, write: StorageWrite<'_>) -> Result<(), StorageError> {
        self.state.apply(write)
    }
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> impl Future<Output = Result<PersistentState, StorageError>> + Send {
        std::future::ready(Ok(self.state.state().clone()))
    }

    fn save(
        &mut self,
        write: StorageWrite<'_>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send {
        std::future::ready(self.save_now(write))
    }

    fn raft_state_size_bytes(&self) -> u64 {
        self.state.raft_state_size_bytes()
    }

    fn snapshot_size_bytes(&self) -> u64 {
        self.state
            .state()
            .snapshot
            .as_ref()
            .map_or(0, |s| s.data.len() as u64)
    }
}
