//! [`HeldSnapshot`]: the latest snapshot as the core holds it, with its
//! bytes in memory or, once the driver has stored it, only on disk.
//!
//! A leader sends its latest snapshot to followers that fell behind its
//! log. Holding the bytes for that costs as much memory as the service's
//! state again; once the driver's storage holds them and can read pieces
//! back (`Storage::read_snapshot_piece`), the core keeps only the
//! metadata and the size, and asks the driver for each piece instead
//! ([`SnapshotRead`] in a `Ready`).

use super::entry::{NodeId, Snapshot, SnapshotMeta};
use super::message::InstallSnapshot;

/// A piece of the stored snapshot for the driver to read back and send:
/// `InstallSnapshot` from this node to `to` in `term`, its data the
/// `length_bytes` at `offset` of the snapshot at `meta` (see
/// [`InstallSnapshot::from_stored`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRead {
    pub to: NodeId,
    /// The leader's term when it asked: the message carries it.
    pub term: u64,
    pub meta: SnapshotMeta,
    pub offset: u64,
    /// Exactly this many bytes (the piece is clipped to the snapshot's end).
    pub length_bytes: u64,
    /// The snapshot's whole size.
    pub total_bytes: u64,
}

/// Where the bytes of a piece come from.
#[derive(Debug)]
pub(super) enum PieceSource {
    /// The core holds the bytes: here is the piece.
    Held(InstallSnapshot),
    /// Only the storage holds them: the driver reads the piece.
    Stored { offset: u64, length_bytes: u64 },
}

/// The latest snapshot (the service's, the leader's, or the one loaded at
/// restart). Its bytes are held until [`HeldSnapshot::release`] says the
/// storage holds them.
#[derive(Clone, Debug, Default)]
pub(super) struct HeldSnapshot {
    meta: SnapshotMeta,
    size_bytes: u64,
    /// None once released.
    data: Option<bytes::Bytes>,
}

impl HeldSnapshot {
    pub(super) fn new(snapshot: Snapshot) -> HeldSnapshot {
        HeldSnapshot {
            meta: snapshot.meta,
            size_bytes: snapshot.data.len() as u64,
            data: Some(snapshot.data),
        }
    }

    pub(super) fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    pub(super) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Bytes of the snapshot in memory: all of it until released, then 0.
    pub(super) fn held_bytes(&self) -> u64 {
        self.data.as_ref().map_or(0, |data| data.len() as u64)
    }

    /// Drops the bytes if this is the snapshot at `meta`: the caller
    /// guarantees that its storage holds exactly these bytes at `meta` and
    /// reads pieces of them back. Another `meta` is ignored.
    pub(super) fn release(&mut self, meta: &SnapshotMeta) {
        if self.meta == *meta {
            self.data = None;
        }
    }

    /// The piece starting at `offset`, at most `max_bytes` long (clipped
    /// to the end).
    ///
    /// # Panics
    /// If `offset` is past the end of the snapshot.
    pub(super) fn piece(&self, offset: u64, max_bytes: usize) -> PieceSource {
        assert!(
            offset <= self.size_bytes,
            "snapshot piece at {offset} past its {} bytes (index {})",
            self.size_bytes,
            self.meta.last_included_index
        );
        match &self.data {
            Some(data) => PieceSource::Held(InstallSnapshot::piece_of(
                &self.meta, data, offset, max_bytes,
            )),
            None => PieceSource::Stored {
                offset,
                length_bytes: (max_bytes as u64).min(self.size_bytes - offset),
            },
        }
    }
}
