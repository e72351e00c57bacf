//! What the leader knows about one follower's log, and how it sends to it.
//!
//! ```text
//!                  success reply
//!        +-------------------------------+
//!        |                               v
//!      Probe <----------------------- Replicate
//!      ^   |   rejection, or a whole       |
//!      |   |   heartbeat interval with     |
//!      |   |   batches in flight and no    |
//!      |   |   acknowledgement             |
//!      |   | next entry compacted away     | next entry compacted away
//!      |   v                               v
//!      |  Snapshot <-----------------------+
//!      |   |
//!      |   +--- acknowledged (last piece) ------> Replicate
//!      |   +--- piece acknowledged: send the next piece (same state)
//!      |   +--- no answer within Config::snapshot_retry_ticks: send the
//!      |        unacknowledged piece again (same state)
//! ```
//!
//! - **Probe**: the leader does not know where the logs match. It sends one
//!   AppendEntries and waits for the answer (or the next heartbeat) before
//!   sending another; rejections walk `next_index` back with the follower's
//!   hint.
//! - **Replicate**: the logs match up to `match_index`; the leader streams
//!   batches optimistically, advancing `next_index` on send, with at most
//!   `Config::max_inflight_messages` unacknowledged batches (pipelining).
//! - **Snapshot**: the leader sends its snapshot in pieces of at most
//!   `Config::snapshot_chunk_bytes`, one at a time: each answer says how many
//!   bytes the follower holds, and the next piece starts there.

use std::collections::VecDeque;

/// Replication state of one follower, kept by the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Highest index known to match the leader's log.
    pub match_index: u64,
    /// Next index to send.
    pub next_index: u64,
    pub state: ProgressState,
    /// A successful AppendEntries reply arrived since the last heartbeat (a
    /// Replicate pipeline with batches in flight but no acknowledgement for a
    /// whole heartbeat interval is assumed to have lost a batch).
    pub acked_since_heartbeat: bool,
    /// The follower sent the leader a message of the leader's term since
    /// the last CheckQuorum round (`Config::check_quorum`).
    pub recent_active: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgressState {
    Probe {
        /// A probe is in flight: send nothing more until it is answered or the
        /// next heartbeat.
        paused: bool,
    },
    Replicate {
        /// Last index of each batch in flight, oldest first.
        inflight: VecDeque<u64>,
    },
    Snapshot {
        /// Last index of the snapshot sent.
        snapshot_index: u64,
        /// Bytes of it the follower said it holds: the next piece starts
        /// here.
        offset_bytes: u64,
        /// Ticks since the last piece was sent (it is sent again after
        /// `Config::snapshot_retry_ticks`).
        ticks_since_sent: u64,
    },
}

impl Progress {
    /// A new leader knows nothing: probe at its last index + 1.
    pub fn new(last_index: u64) -> Progress {
        Progress {
            match_index: 0,
            next_index: last_index + 1,
            state: ProgressState::Probe { paused: false },
            acked_since_heartbeat: false,
            recent_active: false,
        }
    }

    /// True if the leader should not send AppendEntries now.
    pub fn is_paused(&self, max_inflight_messages: usize) -> bool {
        match &self.state {
            ProgressState::Probe { paused } => *paused,
            ProgressState::Replicate { inflight } => inflight.len() >= max_inflight_messages,
            ProgressState::Snapshot { .. } => true,
        }
    }

    pub fn become_probe(&mut self) {
        self.next_index = self.match_index + 1;
        self.state = ProgressState::Probe { paused: false };
    }

    pub fn become_replicate(&mut self) {
        self.next_index = self.match_index + 1;
        self.state = ProgressState::Replicate {
            inflight: VecDeque::new(),
        };
    }

    pub fn become_snapshot(&mut self, snapshot_index: u64) {
        self.state = ProgressState::Snapshot {
            snapshot_index,
            offset_bytes: 0,
            ticks_since_sent: 0,
        };
    }

    /// Records that an AppendEntries covering up to `last_index` was sent.
    pub fn on_append_sent(&mut self, last_index: u64, entry_count: usize) {
        match &mut self.state {
            ProgressState::Probe { paused } => *paused = true,
            ProgressState::Replicate { inflight } => {
                if entry_count > 0 {
                    self.next_index = last_index + 1;
                    inflight.push_back(last_index);
                }
            }
            ProgressState::Snapshot { .. } => {
                unreachable!("progress: append sent to a follower receiving a snapshot")
            }
        }
    }

    /// The follower confirmed its log matches up to `match_index`. Returns
    /// true if that is news.
    pub fn on_append_success(&mut self, match_index: u64) -> bool {
        self.acked_since_heartbeat = true;
        let advanced = match_index > self.match_index;
        if advanced {
            self.match_index = match_index;
            self.next_index = self.next_index.max(match_index + 1);
        }
        match &mut self.state {
            ProgressState::Probe { .. } => self.become_replicate(),
            ProgressState::Replicate { inflight } => {
                while inflight.front().is_some_and(|&last| last <= match_index) {
                    inflight.pop_front();
                }
            }
            ProgressState::Snapshot { snapshot_index, .. } => {
                if self.match_index >= *snapshot_index {
                    self.become_probe();
                }
            }
        }
        advanced
    }

    /// The follower rejected an AppendEntries whose `prev_log_index` was
    /// `rejected_prev_index`; `hint_next_index` is where the leader computed,
    /// from the follower's conflict hint, that the logs may match. Returns
    /// false if the rejection is stale (answers an older request) and was
    /// ignored.
    ///
    /// `next_index` never goes below `match_index + 1`: a follower does not
    /// lose entries it acknowledged. One that did (its disk was wiped, which
    /// Raft does not allow) keeps rejecting and never catches up; the
    /// leader does not try to repair that.
    pub fn on_append_rejected(&mut self, rejected_prev_index: u64, hint_next_index: u64) -> bool {
        match &self.state {
            ProgressState::Replicate { .. } => {
                // A rejection at or below what is known to match is stale.
                if rejected_prev_index <= self.match_index {
                    return false;
                }
            }
            ProgressState::Probe { .. } => {
                // Only the answer to the probe in flight counts.
                if rejected_prev_index + 1 != self.next_index {
                    return false;
                }
            }
            ProgressState::Snapshot { .. } => return false,
        }
        let next_index = hint_next_index
            .min(rejected_prev_index)
            .max(self.match_index + 1);
        self.state = ProgressState::Probe { paused: false };
        self.next_index = next_index;
        true
    }
}
