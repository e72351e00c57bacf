//! Stable storage for a Raft node: one trait, several homes.
//!
//! - [`MemoryStorage`]: a `PersistentState` in memory, for tests and benches.
//! - [`FileStorage`]: checksummed, versioned files, crash-safe, one fsync
//!   per [`StorageWrite`] (group commit): the log in append-only segments
//!   removed whole once a snapshot covers them, term and vote in their own
//!   file. Over real files (`std::fs`) normally, over a simulated per-node
//!   disk under `--cfg madsim`, where the files survive a node's kill and
//!   restart but writes not yet synced do not.

mod disk;
mod error;
mod file;
mod format;
mod log_index;
mod memory;
mod sized_state;
mod write;

use std::future::Future;

pub use error::StorageError;
pub use file::{
    DEFAULT_LOCK_WAIT, DEFAULT_SEGMENT_SIZE_BYTES, FileStorage, HARD_STATE_FILE_NAME,
    LEGACY_LOG_FILE_NAME, LoadStats, SEGMENT_FILE_PREFIX, SNAPSHOT_FILE_NAME,
};
pub use format::{LOG_HEADER_BYTES, RECORD_SIZE_BYTES_MAX};
pub use memory::MemoryStorage;
pub use write::{StorageWrite, check_loaded_log, reconcile_loaded, reconcile_with_snapshot};

use crate::core::PersistentState;

/// Where a node keeps its hard state, log and snapshot.
///
/// Contract:
/// - `save` returns only once the write is durable (fsync'ed), and is
///   atomic for the log, the snapshot and the commit index: after a crash
///   at any point, `load` returns them either before or after the write,
///   never a mix. The term and vote may come from the interrupted write
///   (they are made durable first, as a node that updated its term and
///   then crashed would have), never from before an acknowledged one.
/// - A failed `save` (an IO error) leaves the disk state unknown: every
///   later `save` fails until a new `load`. The driver treats it as fatal.
/// - `load` returns the state as of the last successful `save`, or a
///   [`StorageError`] naming the damaged file if the stored data fails its
///   checks. It never returns silently altered data.
pub trait Storage: Send {
    /// Reads everything stored (an empty state on first start).
    fn load(&mut self) -> impl Future<Output = Result<PersistentState, StorageError>> + Send;

    /// Persists `write` durably.
    fn save(
        &mut self,
        write: StorageWrite<'_>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Bytes of Raft state (hard state and log, not the snapshot) as stored:
    /// the figure the 6.5840 tests bound and the service watches to decide
    /// when to snapshot.
    fn raft_state_size_bytes(&self) -> u64;

    /// Bytes of the stored snapshot's data.
    fn snapshot_size_bytes(&self) -> u64;
}
