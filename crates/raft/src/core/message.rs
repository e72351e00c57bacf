//! The messages Raft nodes exchange.
//!
//! Every message travels in a [`Message`] envelope that carries the sender's
//! term; the body says what it is. Requests and replies are both plain
//! messages, as in etcd/raft: the driver sends a request with an RPC and steps
//! the reply it gets back into the core like any other message. All types are
//! serde, so the driver can encode them with bincode.

use serde::{Deserialize, Serialize};

use super::entry::{Entry, NodeId, Snapshot, SnapshotMeta};
use super::held_snapshot::SnapshotRead;

/// A message between two nodes of the group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's current term.
    pub term: u64,
    pub body: MessageBody,
}

/// What a [`Message`] says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    RequestVote(RequestVote),
    RequestVoteReply(RequestVoteReply),
    AppendEntries(AppendEntries),
    AppendEntriesReply(AppendEntriesReply),
    Heartbeat(Heartbeat),
    HeartbeatReply(HeartbeatReply),
    InstallSnapshot(InstallSnapshot),
    InstallSnapshotReply(InstallSnapshotReply),
    /// "Would you vote for me?" (PreVote, thesis 9.6). The envelope carries
    /// the term the sender would campaign in (its term + 1); the receiver
    /// does not adopt it.
    PreVote(RequestVote),
    /// A granted pre-vote carries the term asked about; a refusal carries
    /// the voter's own term.
    PreVoteReply(RequestVoteReply),
    /// The leader hands over (leadership transfer, thesis 3.10): the
    /// recipient, whose log matches the leader's, campaigns at once.
    TimeoutNow,
    /// Acknowledges a `TimeoutNow` (every request gets one reply); the
    /// leader does nothing with it.
    TimeoutNowReply,
}

impl MessageBody {
    /// True for what only a leader sends.
    pub fn is_from_leader(&self) -> bool {
        matches!(
            self,
            MessageBody::AppendEntries(_)
                | MessageBody::Heartbeat(_)
                | MessageBody::InstallSnapshot(_)
                | MessageBody::TimeoutNow
        )
    }

    /// True for messages that expect a reply (the driver sends these as RPCs).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            MessageBody::RequestVote(_)
                | MessageBody::AppendEntries(_)
                | MessageBody::Heartbeat(_)
                | MessageBody::InstallSnapshot(_)
                | MessageBody::PreVote(_)
                | MessageBody::TimeoutNow
        )
    }
}

/// A candidate asks for a vote (paper Figure 2, RequestVote RPC).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVote {
    pub last_log_index: u64,
    pub last_log_term: u64,
    /// The candidate campaigns because its leader handed over
    /// (`TimeoutNow`): voters grant it even though they heard from that
    /// leader recently (CheckQuorum's leader stickiness, thesis 3.10).
    pub leadership_transfer: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteReply {
    pub vote_granted: bool,
}

/// The leader replicates entries (paper Figure 2, AppendEntries RPC).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntries {
    pub prev_log_index: u64,
    pub prev_log_term: u64,
    /// Consecutive entries starting at `prev_log_index + 1`; may be empty (a
    /// probe).
    pub entries: Vec<Entry>,
    pub leader_commit: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesReply {
    /// The follower's log matched at the request's `prev_log_index`.
    pub success: bool,
    /// On success: the follower's log is known to match the leader's up to
    /// this index. On rejection: 0.
    pub match_index: u64,
    /// The `prev_log_index` of the request this answers, so the leader can
    /// ignore stale rejections when several requests are in flight.
    pub rejected_prev_index: u64,
    /// On rejection: where the leader should look next (fast backup, as in
    /// the 6.5840 "XTerm/XIndex" scheme).
    pub conflict: Option<Conflict>,
}

/// The follower's hint on rejection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The term of the follower's entry at `prev_log_index`, or `None` if the
    /// follower's log is too short to have one.
    pub term: Option<u64>,
    /// With `term`: the first index the follower holds for that term. Without:
    /// the follower's last index + 1.
    pub index: u64,
}

/// The leader's periodic "I am alive", sent to followers whose replication
/// is up to date or in flight. Carries no log position, so it never triggers
/// a rejection; it commits up to what the leader knows the follower has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// `min(leader commit, follower's match index)`: safe for the follower to
    /// commit because its log matches the leader's up to there.
    pub commit_index: u64,
    /// The newest read-index request the leader wants confirmed (0: none);
    /// echoed in the reply.
    pub read_id: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The `read_id` of the heartbeat answered.
    pub read_id: u64,
}

/// One piece of the leader's snapshot, for a follower whose next entry was
/// compacted away (paper section 7, InstallSnapshot RPC, with its `offset`
/// and `done`): `data` is bytes `offset..offset + data.len()` of the
/// snapshot's `total_bytes`. Pieces are at most
/// `Config::snapshot_chunk_bytes`, so a snapshot of any size moves in
/// messages of bounded size; the follower installs it after the last one.
/// Each piece carries the CRC-32 (IEEE) of its `data`: a follower keeps a
/// piece only if it matches, and otherwise answers where it stands, so the
/// leader sends that piece again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshot {
    pub meta: SnapshotMeta,
    pub offset: u64,
    pub total_bytes: u64,
    pub data: Vec<u8>,
    /// CRC-32 (IEEE) of `data`.
    pub data_crc32: u32,
    /// This piece ends the snapshot (`offset + data.len() == total_bytes`).
    pub done: bool,
}

impl InstallSnapshot {
    /// The piece of `snapshot` that starts at `offset`, at most `max_bytes`
    /// long (clipped to the end).
    ///
    /// # Panics
    /// If `offset` is past the end of the snapshot's data.
    pub fn piece(snapshot: &Snapshot, offset: u64, max_bytes: usize) -> InstallSnapshot {
        InstallSnapshot::piece_of(&snapshot.meta, &snapshot.data, offset, max_bytes)
    }

    /// [`InstallSnapshot::piece`] of the snapshot at `meta` whose bytes are
    /// `data`.
    ///
    /// # Panics
    /// If `offset` is past the end of `data`.
    pub fn piece_of(
        meta: &SnapshotMeta,
        data: &[u8],
        offset: u64,
        max_bytes: usize,
    ) -> InstallSnapshot {
        let total = data.len();
        let start = usize::try_from(offset)
            .ok()
            .filter(|&start| start <= total)
            .unwrap_or_else(|| panic!("snapshot piece at {offset} past its {total} bytes"));
        let end = start + max_bytes.min(total - start);
        InstallSnapshot::with_data(
            meta.clone(),
            offset,
            total as u64,
            data[start..end].to_vec(),
        )
    }

    /// The piece `read` asked for, its bytes `data` read back from the
    /// storage (`Storage::read_snapshot_piece`).
    ///
    /// # Panics
    /// If `data` is not as long as `read` asked: the storage broke its
    /// contract.
    pub fn from_stored(read: &SnapshotRead, data: Vec<u8>) -> InstallSnapshot {
        assert_eq!(
            data.len() as u64,
            read.length_bytes,
            "snapshot piece at {} (index {}) read back with the wrong length",
            read.offset,
            read.meta.last_included_index
        );
        InstallSnapshot::with_data(read.meta.clone(), read.offset, read.total_bytes, data)
    }

    fn with_data(
        meta: SnapshotMeta,
        offset: u64,
        total_bytes: u64,
        data: Vec<u8>,
    ) -> InstallSnapshot {
        let done = offset + data.len() as u64 == total_bytes;
        InstallSnapshot {
            meta,
            offset,
            total_bytes,
            data_crc32: crc32fast::hash(&data),
            data,
            done,
        }
    }

    /// The piece's data is what the leader sent (its checksum matches).
    pub fn checksum_matches(&self) -> bool {
        crc32fast::hash(&self.data) == self.data_crc32
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotReply {
    /// The follower's log matches the leader's up to here (at least the
    /// snapshot's last included index once installed, or the follower's
    /// commit index).
    pub match_index: u64,
    /// The snapshot (by last included index) the follower is receiving.
    pub snapshot_index: u64,
    /// How many of its bytes the follower holds: the next piece starts
    /// here.
    pub received_bytes: u64,
}
