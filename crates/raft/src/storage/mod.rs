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
use std::pin::Pin;

pub use error::StorageError;
pub use file::{
    DEFAULT_LOCK_WAIT, DEFAULT_SEGMENT_SIZE_BYTES, FileStorage, HARD_STATE_FILE_NAME,
    LEGACY_LOG_FILE_NAME, LoadStats, SEGMENT_FILE_PREFIX, SNAPSHOT_FILE_NAME,
    STAGED_SNAPSHOT_FILE_PREFIX,
};
pub use format::{LOG_HEADER_BYTES, RECORD_SIZE_BYTES_MAX};
pub use memory::MemoryStorage;
pub use write::{StorageWrite, check_loaded_log, reconcile_loaded, reconcile_with_snapshot};

use crate::core::{PersistentState, Snapshot, SnapshotMeta};

/// The slow half of storing a snapshot (see [`Storage::stage_snapshot`]):
/// encoding it and writing it durably. It borrows nothing, so it can run on
/// a task of its own while the caller goes on.
pub type StagedSnapshotWrite = Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send>>;

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

    /// Starts storing a snapshot this node's service took, in two halves,
    /// so that its caller need not wait for the slow one:
    /// - the returned write encodes the snapshot and writes it durably
    ///   beside the stored state, where `load` does not see it; it borrows
    ///   nothing and may run anywhere;
    /// - once it has completed, [`Storage::install_staged_snapshot`] makes
    ///   it the stored snapshot, as a `save` of it alone would (for
    ///   `FileStorage`: a rename and the removal of the segments it covers).
    ///
    /// Until installed, the stored state is as before: a crash loses only
    /// the staged copy, and the log still holds every entry it covers.
    /// Saves of entries and hard state may come between the halves; a save
    /// with a snapshot discards the staged one. One at a time: while one is
    /// staged (until installed or discarded), another is handed back.
    ///
    /// `Err(snapshot)` hands the snapshot back, to be saved by `save`: the
    /// storage does not stage snapshots (the default), or not now (another
    /// is staged), or not this one (it would clear the stored log).
    fn stage_snapshot(&mut self, snapshot: Snapshot) -> Result<StagedSnapshotWrite, Snapshot> {
        Err(snapshot)
    }

    /// Installs the snapshot staged at `meta` (see
    /// [`Storage::stage_snapshot`]), durably. Refused if no such snapshot
    /// is staged.
    fn install_staged_snapshot(
        &mut self,
        meta: &SnapshotMeta,
    ) -> impl Future<Output = Result<(), StorageError>> + Send {
        let refused = StorageError::InvalidWrite {
            reason: format!(
                "no snapshot is staged at index {}: this storage does not stage snapshots",
                meta.last_included_index
            ),
        };
        async move { Err(refused) }
    }

    /// True if [`Storage::read_snapshot_piece`] reads pieces of the stored
    /// snapshot back: then the node drops its in-memory copy of a snapshot
    /// once stored, and reads each piece it sends to a lagging follower
    /// from here. False (the default): the node keeps the bytes.
    fn reads_snapshot_pieces(&self) -> bool {
        false
    }

    /// The `length_bytes` bytes at `offset` of the stored snapshot's data,
    /// if the stored snapshot is the one at `meta`; `Ok(None)` if another
    /// is stored (a newer one replaced it since it was asked for).
    ///
    /// Contract: data returned is what was stored (a storage checks it
    /// against its checksums before returning any of it); `offset +
    /// length_bytes` within the snapshot's data, else an error.
    fn read_snapshot_piece(
        &mut self,
        meta: &SnapshotMeta,
        offset: u64,
        length_bytes: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send {
        let _ = (meta, offset, length_bytes);
        std::future::ready(Ok(None))
    }

    /// Bytes of Raft state (hard state and log, not the snapshot) as stored:
    /// the figure the 6.5840 tests bound and the service watches to decide
    /// when to snapshot. A staged snapshot counts as installed: the service
    /// does not take another one for the entries it covers.
    fn raft_state_size_bytes(&self) -> u64;

    /// Bytes of the stored snapshot's data.
    fn snapshot_size_bytes(&self) -> u64;
}
