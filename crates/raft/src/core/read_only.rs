//! Linearizable reads without writing to the log (Raft paper section 8,
//! "ReadIndex" in etcd/raft and the Raft thesis 6.4).
//!
//! A leader serving a read must be sure it is still the leader. It notes its
//! commit index, sends a heartbeat carrying the read's id, and once a
//! majority answered that heartbeat (or a later one), no other leader can
//! have committed anything it has not: the read is answered as a
//! [`ReadState`], and the service serves it once it has applied through
//! `ReadState::index`.

use std::collections::{BTreeSet, VecDeque};

use super::entry::NodeId;

/// A read confirmed by a majority: serve it once the service has applied
/// through `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub index: u64,
    /// What the caller passed to `read_index`, to match the answer.
    pub context: Vec<u8>,
}

#[derive(Debug)]
struct PendingRead {
    id: u64,
    index: u64,
    /// None: a round that only renews the leader's lease
    /// ([`ReadOnly::add_renewal`]); nobody waits for its answer.
    context: Option<Vec<u8>>,
    /// The leader's clock when the read arrived (its first heartbeat
    /// left then): a majority confirming it starts a lease no later.
    sent_ms: u64,
    /// Peers (the leader included) that answered a heartbeat sent after this
    /// read arrived.
    acknowledged_by: BTreeSet<NodeId>,
}

/// The leader's reads waiting for confirmation, oldest first.
#[derive(Debug, Default)]
pub(super) struct ReadOnly {
    /// Ids grow for the node's whole life, so an answer to a heartbeat of an
    /// earlier leadership can never confirm a newer read.
    last_id: u64,
    pending: VecDeque<PendingRead>,
    confirmed: Vec<ReadState>,
}

impl ReadOnly {
    pub(super) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The newest id ever issued (0: none): no honest reply names more.
    pub(super) fn last_id(&self) -> u64 {
        self.last_id
    }

    /// The id to put in heartbeats (0: nothing pending).
    pub(super) fn newest_pending_id(&self) -> u64 {
        self.pending.back().map_or(0, |read| read.id)
    }

    /// Registers a read at `index`, arrived at `now_ms`; returns its id.
    pub(super) fn add(&mut self, index: u64, context: Vec<u8>, leader: NodeId, now_ms: u64) -> u64 {
        self.push(index, Some(context), leader, now_ms)
    }

    /// Registers a round with no read in it, sent at `now_ms`: its
    /// confirmation only extends the lease (no [`ReadState`]).
    pub(super) fn add_renewal(&mut self, leader: NodeId, now_ms: u64) -> u64 {
        self.push(0, None, leader, now_ms)
    }

    fn push(&mut self, index: u64, context: Option<Vec<u8>>, leader: NodeId, now_ms: u64) -> u64 {
        self.last_id += 1;
        self.pending.push_back(PendingRead {
            id: self.last_id,
            index,
            context,
            sent_ms: now_ms,
            acknowledged_by: BTreeSet::from([leader]),
        });
        self.last_id
    }

    /// A read the leader alone confirms (a group of one).
    pub(super) fn confirm_now(&mut self, index: u64, context: Vec<u8>) {
        self.confirmed.push(ReadState { index, context });
    }

    /// `peer` answered the heartbeat carrying `read_id`: that confirms every
    /// read up to that id. Reads acknowledged by a majority of the voters
    /// (`is_quorum`) move to `confirmed`, in order. Returns the arrival
    /// time of the newest read confirmed now, if any: a majority heard
    /// from this leader after it.
    pub(super) fn acknowledge(
        &mut self,
        peer: NodeId,
        read_id: u64,
        is_quorum: impl Fn(&BTreeSet<NodeId>) -> bool,
    ) -> Option<u64> {
        let mut confirmed_sent_ms = None;
        for read in self
            .pending
            .iter_mut()
            .take_while(|read| read.id <= read_id)
        {
            read.acknowledged_by.insert(peer);
        }
        while self
            .pending
            .front()
            .is_some_and(|read| is_quorum(&read.acknowledged_by))
        {
            let read = self.pending.pop_front().expect("front exists");
            confirmed_sent_ms = confirmed_sent_ms.max(Some(read.sent_ms));
            if let Some(context) = read.context {
                self.confirmed.push(ReadState {
                    index: read.index,
                    context,
                });
            }
        }
        confirmed_sent_ms
    }

    pub(super) fn has_confirmed(&self) -> bool {
        !self.confirmed.is_empty()
    }

    pub(super) fn take_confirmed(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.confirmed)
    }

    /// Leadership lost: pending reads can no longer be confirmed; they are
    /// dropped (callers time out and retry at the new leader).
    pub(super) fn clear_pending(&mut self) {
        self.pending.clear();
    }
}
