//! A shard arriving in pieces: the bytes of its encoded transfer received
//! so far, kept in the group's state (so they survive restarts through the
//! log and snapshots) until the last piece makes it whole.

use api::MachineConfig;
use serde::{Deserialize, Serialize};

use crate::rpc::ShardChunk;

/// Per-session allowance in a transfer's bound: the recorded reply (at
/// most one value) plus the entry's own fields.
const SESSION_ALLOWANCE_BYTES: u64 = 1024;

/// The largest encoded transfer a group accepts for one shard: twice the
/// store's capacity (the store's encoding carries its policy's metadata
/// next to the entries) plus room for every exactly-once record. Checked
/// on every piece, before any byte of it is kept.
pub fn max_transfer_bytes(limits: &MachineConfig) -> u64 {
    let sessions = limits.max_clients.saturating_mul(
        limits
            .max_value_bytes
            .saturating_add(SESSION_ALLOWANCE_BYTES),
    );
    limits
        .store
        .capacity_bytes
        .saturating_mul(2)
        .saturating_add(sessions)
}

/// What happened to one piece.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Kept; `received_bytes` of the transfer are here now.
    Stored { received_bytes: u64 },
    /// The last piece: the shard is installed (and served).
    Installed,
    /// Not for a shard this group is pulling in this configuration (stale
    /// or duplicate), or not at the next offset: nothing changed.
    Ignored,
    /// Malformed (bad checksum, sizes out of bounds, does not decode):
    /// nothing kept of this piece; `restarted` says whether the pieces
    /// received before were dropped too (the pull starts again at 0).
    Refused { reason: String, restarted: bool },
}

/// The pieces of one shard received so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct IncomingShard {
    pub(super) total_bytes: u64,
    pub(super) total_crc32: u32,
    pub(super) bytes: Vec<u8>,
}

/// The result of adding a piece.
pub(super) enum Added {
    /// Kept, more to come.
    Partial(u64),
    /// Whole, and the checksum matches: these are the transfer's bytes.
    Complete(Vec<u8>),
    Ignored,
    Refused {
        reason: String,
        restarted: bool,
    },
}

impl IncomingShard {
    /// Checks a piece on its own: its checksum and that it lies inside a
    /// transfer no larger than `max_bytes`.
    pub(super) fn check_chunk(chunk: &ShardChunk, max_bytes: u64) -> Result<(), String> {
        if chunk.total_bytes > max_bytes {
            return Err(format!(
                "transfer of {} bytes is over the {max_bytes}-byte bound",
                chunk.total_bytes
            ));
        }
        let end = chunk.offset.checked_add(chunk.data.len() as u64);
        if end.is_none_or(|end| end > chunk.total_bytes) {
            return Err(format!(
                "piece at {} of {} bytes runs past the {}-byte transfer",
                chunk.offset,
                chunk.data.len(),
                chunk.total_bytes
            ));
        }
        if chunk.data.is_empty() && chunk.offset != chunk.total_bytes {
            return Err(format!("empty piece at {} before the end", chunk.offset));
        }
        let crc = crc32fast::hash(&chunk.data);
        if crc != chunk.data_crc32 {
            return Err(format!(
                "piece at {} has checksum {crc:#010x}, expected {:#010x}",
                chunk.offset, chunk.data_crc32
            ));
        }
        Ok(())
    }

    /// Adds a checked piece to what `staged` holds (None: nothing yet).
    /// A piece of a different transfer (other size or checksum: the donor
    /// encoded it differently) at offset 0 starts over; elsewhere it drops
    /// what was staged so the next pull starts at 0.
    pub(super) fn add(staged: &mut Option<IncomingShard>, chunk: &ShardChunk) -> Added {
        let same_transfer = staged.as_ref().is_none_or(|incoming| {
            incoming.total_bytes == chunk.total_bytes && incoming.total_crc32 == chunk.total_crc32
        });
        if !same_transfer {
            if chunk.offset != 0 {
                *staged = None;
                return Added::Refused {
                    reason: "a piece of a different encoding of the shard".into(),
                    restarted: true,
                };
            }
            *staged = None;
        }
        if staged.is_none() && chunk.offset != 0 {
            return Added::Ignored;
        }
        let incoming = staged.get_or_insert_with(|| IncomingShard {
            total_bytes: chunk.total_bytes,
            total_crc32: chunk.total_crc32,
            bytes: Vec::new(),
        });
        if chunk.offset != incoming.bytes.len() as u64 {
            return Added::Ignored;
        }
        incoming.bytes.extend_from_slice(&chunk.data);
        let received = incoming.bytes.len() as u64;
        if received < incoming.total_bytes {
            return Added::Partial(received);
        }
        let whole = staged
            .take()
            .map(|incoming| incoming.bytes)
            .unwrap_or_default();
        let crc = crc32fast::hash(&whole);
        if crc != chunk.total_crc32 {
            return Added::Refused {
                reason: format!(
                    "whole transfer has checksum {crc:#010x}, expected {:#010x}",
                    chunk.total_crc32
                ),
                restarted: true,
            };
        }
        Added::Complete(whole)
    }
}
