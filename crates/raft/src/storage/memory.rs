//! [`MemoryStorage`]: the whole persistent state in memory.

use std::future::Future;

use crate::core::{PersistentState, SnapshotMeta};

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

    fn reads_snapshot_pieces(&self) -> bool {
        true
    }

    fn read_snapshot_piece(
        &mut self,
        meta: &SnapshotMeta,
        offset: u64,
        length_bytes: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send {
        let piece = match self.state.state().snapshot.as_ref() {
            Some(stored) if stored.meta == *meta => piece_of(&stored.data, offset, length_bytes)
                .map(|piece| Some(piece.to_vec()))
                .ok_or_else(|| StorageError::InvalidRead {
                    reason: format!(
                        "snapshot piece of {length_bytes} bytes at {offset} past the {} bytes \
                         stored at index {}",
                        stored.data.len(),
                        meta.last_included_index
                    ),
                }),
            _ => Ok(None),
        };
        std::future::ready(piece)
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

/// The `length_bytes` of `data` at `offset`, if all within it.
fn piece_of(data: &[u8], offset: u64, length_bytes: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(length_bytes).ok()?)?;
    data.get(start..end)
}
