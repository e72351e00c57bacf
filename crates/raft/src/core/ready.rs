//! The core's output: what to persist, send and apply.

use super::entry::{Entry, HardState, Snapshot};
use super::held_snapshot::SnapshotRead;
use super::message::Message;
use super::read_only::ReadState;

/// Everything the core asks its driver to do, in one batch. The driver must,
/// in this order:
///
/// 1. persist `snapshot` (if `persist`), `entries` and `hard_state` in one
///    durable write (group commit: one fsync for the whole batch);
/// 2. send `messages` (they may depend on what was just persisted: a vote,
///    a term, entries a follower acknowledges), and the snapshot pieces
///    `snapshot_reads` asks for, read back from storage;
/// 3. hand `snapshot` (if `apply`) and then `committed_entries` to the
///    service, in order;
/// 4. call [`crate::core::RawNode::advance`] with this `Ready`.
///
/// A driver may relax two points (the crate docs say why each is safe, and
/// the node's driver does both): leave a change of the commit index alone
/// unwritten until the next write, and send a leader's AppendEntries and
/// heartbeats before its own write when the term and vote do not change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// The hard state, if it changed since the last `Ready`.
    pub hard_state: Option<HardState>,
    /// A snapshot to persist and/or to hand to the service.
    pub snapshot: Option<ReadySnapshot>,
    /// Entries to append to stable storage. If `entries[0].index` is at or
    /// below the stored last index, the stored entries from there on are
    /// replaced (a leader overwrote a conflicting tail).
    pub entries: Vec<Entry>,
    /// Messages to send, after persisting.
    pub messages: Vec<Message>,
    /// Pieces of the stored snapshot to read back and send as
    /// `InstallSnapshot` (see [`crate::core::RawNode::snapshot_stored`]):
    /// empty unless the driver said that its storage holds the snapshot.
    /// A read that finds another snapshot stored (a newer one, installed
    /// since) is dropped: the leader sends again.
    pub snapshot_reads: Vec<SnapshotRead>,
    /// Committed entries to apply, consecutive, after the snapshot if any.
    pub committed_entries: Vec<Entry>,
    /// Reads confirmed by a majority (see `RawNode::read_index`): answer
    /// each once the service has applied through its index.
    pub read_states: Vec<ReadState>,
}

impl Ready {
    /// True if there is something to write to storage.
    pub fn must_persist(&self) -> bool {
        self.hard_state.is_some()
            || !self.entries.is_empty()
            || self.snapshot.as_ref().is_some_and(|s| s.persist)
    }
}

/// A snapshot in a [`Ready`], with what to do with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadySnapshot {
    pub snapshot: Snapshot,
    /// Save it and drop the stored log entries it covers (all stored entries
    /// if the entry at its last index has a different term).
    pub persist: bool,
    /// Hand it to the service (`ApplyMsg::Snapshot`): it came from the leader,
    /// or it was loaded at restart.
    pub apply: bool,
}
