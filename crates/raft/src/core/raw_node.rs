//! [`RawNode`]: one Raft node as a synchronous state machine.
//!
//! This file holds the node's state, its public interface and message
//! dispatch; elections live in `election.rs`, replication in
//! `replication.rs`.

use std::collections::BTreeMap;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use super::config::Config;
use super::entry::{Entry, EntryKind, HardState, NodeId, PersistentState, Snapshot, SnapshotMeta};
use super::held_snapshot::{HeldSnapshot, SnapshotRead};
use super::log::RaftLog;
use super::membership::{Membership, MembershipChange};
use super::message::{
    AppendEntriesReply, Heartbeat, HeartbeatReply, InstallSnapshotReply, Message, MessageBody,
    RequestVoteReply,
};
use super::progress::Progress;
use super::read_only::ReadOnly;
use super::ready::{Ready, ReadySnapshot};
use super::replication::IncomingSnapshot;
use super::validate::MAX_TERM;

/// A node's role in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    /// Asking for pre-votes (`Config::pre_vote`): the term and vote are
    /// unchanged until a majority says it would vote for this node.
    PreCandidate,
    Candidate,
    Leader,
}

/// Why `propose` refused a command. Nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProposeError {
    #[error("not the leader in term {term} (leader hint: {leader_hint:?})")]
    NotLeader {
        term: u64,
        leader_hint: Option<NodeId>,
    },
    #[error("{uncommitted} entries are uncommitted (limit {limit}); retry later")]
    TooManyUncommitted { uncommitted: u64, limit: u64 },
    #[error(
        "{uncommitted_bytes} bytes are uncommitted and the entry adds {entry_bytes} \
         (limit {limit}); retry later"
    )]
    TooManyUncommittedBytes {
        uncommitted_bytes: u64,
        entry_bytes: u64,
        limit: u64,
    },
    /// Permanent for this command: it can never fit in one message.
    #[error("entry of {entry_bytes} bytes exceeds the limit of {limit} bytes per entry")]
    EntryTooLarge { entry_bytes: u64, limit: u64 },
    /// This leader is handing over to `target`: retry there, or here if
    /// the transfer times out.
    #[error("leadership transfer to node {target} in progress; retry")]
    TransferInProgress { target: NodeId },
}

/// Why `transfer_leader` refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TransferError {
    #[error("not the leader in term {term} (leader hint: {leader_hint:?})")]
    NotLeader {
        term: u64,
        leader_hint: Option<NodeId>,
    },
    #[error("node {target} is not a voter of the configuration")]
    NotAVoter { target: NodeId },
    #[error("node {target} already leads")]
    AlreadyLeader { target: NodeId },
}

/// Leader: a leadership transfer under way (thesis 3.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Transfer {
    pub(super) target: NodeId,
    /// Ticks since it started; it is abandoned after
    /// `Config::election_timeout_ticks_min`.
    pub(super) elapsed_ticks: u64,
    /// `TimeoutNow` went out (once per transfer).
    pub(super) timeout_now_sent: bool,
}

/// Why `step` refused a message. The node's state did not change; the
/// refusal was logged and counted in [`RawNode::refused_messages`]. See
/// `core/validate.rs` for what is checked and why an honest peer never
/// fails it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StepError {
    #[error("message addressed to node {to}, this is node {this}")]
    WrongRecipient { to: NodeId, this: NodeId },
    #[error("message from node {from}, which is this node")]
    UnknownSender { from: NodeId },
    #[error("term {term} is beyond the largest accepted now ({limit})")]
    TermTooLarge { term: u64, limit: u64 },
    #[error("index {index} is beyond the largest accepted ({limit})")]
    IndexTooLarge { index: u64, limit: u64 },
    #[error("node {from} acts as leader of term {term}, which has another leader")]
    SecondLeader { from: NodeId, term: u64 },
    #[error("entries do not follow each other: index {found} where {expected} was due")]
    EntryIndexGap { expected: u64, found: u64 },
    #[error("entry {index} of term {entry_term} follows one of term {previous_term}")]
    EntryTermOutOfOrder {
        index: u64,
        entry_term: u64,
        previous_term: u64,
    },
    #[error("index {index} has term {entry_term}, beyond the message's term {message_term}")]
    EntryTermAboveMessage {
        index: u64,
        entry_term: u64,
        message_term: u64,
    },
    #[error("entry {index} of {bytes} bytes exceeds the limit of {limit} bytes per entry")]
    EntryTooLarge { index: u64, bytes: u64, limit: u64 },
    #[error("entry {index} is unusable by the service: {reason}")]
    UnusablePayload { index: u64, reason: String },
    #[error("reply names index {index}, beyond this leader's last index {last_index}")]
    BeyondLeaderLog { index: u64, last_index: u64 },
    /// A snapshot piece that does not fit its snapshot (answered, not
    /// refused by `step`: the leader learns to start over).
    #[error("snapshot piece refused: {reason}")]
    MalformedSnapshotPiece { reason: String },
    #[error("reply to read {read_id}, but this leader issued reads up to {last_id} only")]
    UnknownReadId { read_id: u64, last_id: u64 },
    #[error("configuration at index {index} is unusable: {reason}")]
    BadMembership { index: u64, reason: String },
}

/// Why `propose_membership_change` refused a change. Nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MembershipError {
    #[error("not the leader in term {term} (leader hint: {leader_hint:?})")]
    NotLeader {
        term: u64,
        leader_hint: Option<NodeId>,
    },
    /// The 2015 fix for single-server changes: a new leader first commits
    /// an entry of its own term (with `Config::noop_on_election`, at once).
    #[error("leader of term {term} has not committed an entry of its term yet; retry")]
    LeaderNotReady { term: u64 },
    /// At most one change in flight.
    #[error("the configuration change at index {index} is not committed yet; retry")]
    ChangeInProgress { index: u64 },
    /// A leadership transfer is under way; no proposals until it ends.
    #[error("leadership transfer to node {target} in progress; retry")]
    TransferInProgress { target: NodeId },
    #[error(
        "learner {learner} is at index {match_index}, more than {max_lag} behind the leader's {last_index}"
    )]
    LearnerBehind {
        learner: NodeId,
        match_index: u64,
        last_index: u64,
        max_lag: u64,
    },
    /// The change makes no sense in the current configuration (adding a
    /// member, removing a non-member, promoting a voter, removing the last
    /// voter).
    #[error("invalid configuration change {change:?}: {reason}")]
    Invalid {
        change: MembershipChange,
        reason: String,
    },
    /// The log's bounds refused the entry (see [`ProposeError`]).
    #[error("{0}")]
    Propose(ProposeError),
}

/// Why `read_index` refused a read. Nothing is pending for it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReadIndexError {
    #[error("not the leader in term {term} (leader hint: {leader_hint:?})")]
    NotLeader {
        term: u64,
        leader_hint: Option<NodeId>,
    },
    /// A new leader does not know the commit index until an entry of its own
    /// term commits (with `Config::noop_on_election` that is at once).
    #[error("leader of term {term} has not committed an entry of its term yet; retry")]
    LeaderNotReady { term: u64 },
    #[error("{pending} reads await confirmation (limit {limit}); retry later")]
    TooManyPendingReads { pending: usize, limit: usize },
}

/// A leader's lease as a read may use it ([`RawNode::lease_read`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRead {
    /// The read index: the leader's commit index.
    pub commit_index: u64,
    /// The clock reading ([`RawNode::set_now_ms`]) from which the lease no
    /// longer holds.
    pub until_ms: u64,
}

/// Why `snapshot` refused the service's snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SnapshotError {
    #[error("snapshot through index {index} but only {applied_index} was applied")]
    NotApplied { index: u64, applied_index: u64 },
}

/// One Raft node, without IO: feed it ticks, messages and proposals; collect
/// its [`Ready`] output; call [`RawNode::advance`] once that is handled.
#[derive(Debug)]
pub struct RawNode {
    pub(super) config: Config,
    /// `Config::peers` as a configuration: in force until the log or the
    /// snapshot names another.
    pub(super) bootstrap: Membership,
    pub(super) term: u64,
    pub(super) voted_for: Option<NodeId>,
    pub(super) role: Role,
    pub(super) leader_id: Option<NodeId>,
    pub(super) log: RaftLog,
    /// The latest snapshot (the service's, or the leader's), sent to lagging
    /// followers: its bytes in memory until the driver has stored them
    /// (`snapshot_stored`), then read back from storage piece by piece.
    pub(super) snapshot: HeldSnapshot,
    pub(super) rng: ChaCha8Rng,
    /// Ticks since the last sign of a live leader (or the last vote granted);
    /// on the leader, ticks since the last CheckQuorum round.
    pub(super) election_elapsed_ticks: u64,
    pub(super) election_timeout_ticks: u64,
    pub(super) heartbeat_elapsed_ticks: u64,
    /// (Pre-)candidate: the answers received in this round (own vote
    /// included).
    pub(super) votes: BTreeMap<NodeId, bool>,
    /// (Pre-)candidate: ticks since the round started or since the last
    /// re-send of its requests, and how many re-sends this round made.
    pub(super) vote_round_elapsed_ticks: u64,
    pub(super) vote_resends_this_round: u64,
    /// Leader: one entry per other peer.
    pub(super) progress: BTreeMap<NodeId, Progress>,
    pub(super) messages: Vec<Message>,
    /// Leader: pieces of the stored snapshot for the driver to read back
    /// and send (at most one per peer per round of pieces).
    pub(super) snapshot_reads: Vec<SnapshotRead>,
    /// Leader: reads awaiting confirmation.
    pub(super) read_only: ReadOnly,
    /// Leader: the summed `Entry::size_bytes` of the entries after the
    /// commit index (bounded by `Config::max_uncommitted_bytes`).
    pub(super) uncommitted_bytes: u64,
    pending_snapshot: Option<ReadySnapshot>,
    /// Follower: the pieces of a snapshot received so far (at most
    /// `Config::max_snapshot_bytes`).
    pub(super) incoming_snapshot: Option<IncomingSnapshot>,
    saved_hard_state: HardState,
    ready_outstanding: bool,
    /// Peer messages refused by `step` (and snapshots refused once
    /// assembled) since this node started.
    pub(super) refused_messages: u64,
    /// Leader: the leadership transfer under way.
    pub(super) transfer: Option<Transfer>,
    /// Candidate: this campaign follows a `TimeoutNow`, so its vote
    /// requests say so.
    pub(super) campaign_transfer: bool,
    /// The driver's clock (`set_now_ms`), for lease reads; 0 until set.
    pub(super) now_ms: u64,
    /// Leader with `Config::lease_reads`: reads are answered from the
    /// commit index without a heartbeat round while `now_ms` is below this.
    pub(super) lease_until_ms: u64,
    /// Leader: a leadership transfer started in this term, so no lease
    /// again until a new leadership (a `TimeoutNow` still on its way would
    /// let its target be elected at once).
    pub(super) lease_forfeited: bool,
    /// Leader: the clock reading of the last configuration change it
    /// proposed. A round sent at or before it extends no lease: the
    /// change ended the lease, and a round confirmed by the old voters
    /// must not grant it again.
    pub(super) lease_not_before_ms: Option<u64>,
    /// Ticks since this node started (saturating): with lease reads it
    /// grants no vote during its first `election_timeout_ticks_min`.
    pub(super) ticks_since_start: u64,
    /// Reads answered under the lease since this node started.
    pub(super) lease_reads_served: u64,
}

impl RawNode {
    /// A node that has never run: empty log, term 0.
    pub fn new(config: Config) -> RawNode {
        RawNode::restart(config, PersistentState::default())
    }

    /// A node restarting from what its storage loaded. If there is a
    /// snapshot, the first `Ready` hands it to the service.
    pub fn restart(config: Config, state: PersistentState) -> RawNode {
        config.validate();
        let log = RaftLog::restore(&state);
        let mut rng = ChaCha8Rng::seed_from_u64(config.rng_seed);
        let election_timeout_ticks =
            rng.gen_range(config.election_timeout_ticks_min..config.election_timeout_ticks_max);
        let pending_snapshot = state.snapshot.clone().map(|snapshot| ReadySnapshot {
            snapshot,
            persist: false,
            apply: true,
        });
        RawNode {
            bootstrap: Membership::from_voters(config.peers.iter().copied()),
            term: state.hard_state.term,
            voted_for: state.hard_state.voted_for,
            role: Role::Follower,
            leader_id: None,
            snapshot: HeldSnapshot::new(state.snapshot.unwrap_or_default()),
            rng,
            election_elapsed_ticks: 0,
            election_timeout_ticks,
            heartbeat_elapsed_ticks: 0,
            votes: BTreeMap::new(),
            vote_round_elapsed_ticks: 0,
            vote_resends_this_round: 0,
            progress: BTreeMap::new(),
            messages: Vec::new(),
            snapshot_reads: Vec::new(),
            read_only: ReadOnly::default(),
            uncommitted_bytes: 0,
            pending_snapshot,
            incoming_snapshot: None,
            saved_hard_state: state.hard_state,
            ready_outstanding: false,
            refused_messages: 0,
            transfer: None,
            campaign_transfer: false,
            now_ms: 0,
            lease_until_ms: 0,
            lease_forfeited: false,
            lease_not_before_ms: None,
            ticks_since_start: 0,
            lease_reads_served: 0,
            log,
            config,
        }
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The leader of the current term, if known.
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }

    /// The driver's clock in milliseconds (any fixed origin, never going
    /// back: an earlier value is ignored). Only lease reads use it: set it
    /// before each batch of ticks, messages and calls.
    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// Reads this node answered under its lease since it started.
    pub fn lease_reads_served(&self) -> u64 {
        self.lease_reads_served
    }

    /// What a read may use under this leader's lease without asking the
    /// core again (`RaftNode`'s reads that skip the loop): the commit
    /// index, and the clock reading ([`RawNode::set_now_ms`]) at which the
    /// lease ends, which the caller compares with its own clock. None
    /// where [`RawNode::read_index`] would not answer under the lease
    /// whatever the time: not the leader, the lease forfeited or none yet,
    /// a transfer under way, no entry of this term committed.
    pub fn lease_read(&self) -> Option<LeaseRead> {
        let commit_index = self.log.commit_index();
        let usable = self.lease_may_hold()
            && self.lease_until_ms > 0
            && self.log.term_at(commit_index) == Some(self.term);
        usable.then_some(LeaseRead {
            commit_index,
            until_ms: self.lease_until_ms,
        })
    }

    /// A leader whose lease holds now (`Config::lease_reads`).
    pub fn lease_valid(&self) -> bool {
        self.lease_may_hold() && self.now_ms < self.lease_until_ms
    }

    /// A leader that may hold a lease, whatever the time: leases on, not
    /// given up for this term, no transfer under way.
    pub(super) fn lease_may_hold(&self) -> bool {
        self.config.lease_reads
            && self.role == Role::Leader
            && !self.lease_forfeited
            && self.transfer.is_none()
    }

    /// A majority heard from this leader after `sent_ms`: the lease runs
    /// to `sent_ms + Config::read_lease_ms()`.
    pub(super) fn extend_lease(&mut self, sent_ms: u64) {
        if self.config.lease_reads
            && self.role == Role::Leader
            && !self.lease_forfeited
            && self
                .lease_not_before_ms
                .is_none_or(|change_ms| sent_ms > change_ms)
        {
            let until = sent_ms.saturating_add(self.config.read_lease_ms());
            self.lease_until_ms = self.lease_until_ms.max(until);
        }
    }

    /// True if this node leads, or heard from its term's leader less than
    /// a minimum election timeout ago (the PreVote test). A follower cut
    /// off from its leader keeps its term under PreVote, so this, not the
    /// term, is what shows it is partitioned.
    pub fn leader_contact(&self) -> bool {
        self.leader_recently_active()
    }

    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// Peer messages refused since start: by [`RawNode::step`] (each with
    /// its [`StepError`]) and snapshots the service's payload check refused
    /// once assembled. A node exports it as a metric.
    pub fn refused_messages(&self) -> u64 {
        self.refused_messages
    }

    /// Counts and logs a refused peer message.
    pub(super) fn refuse(&mut self, from: NodeId, error: &StepError) {
        self.refused_messages += 1;
        tracing::warn!(
            node = self.config.id,
            term = self.term,
            from,
            %error,
            "peer message refused"
        );
    }

    /// Read access to the log, for status and invariant checks.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// The leader's replication state for `peer` (None on non-leaders).
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        self.progress.get(&peer)
    }

    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
            commit_index: self.log.commit_index(),
        }
    }

    /// The configuration in force: the newest in the log (committed or
    /// not), else the snapshot's, else `Config::peers`.
    pub fn membership(&self) -> &Membership {
        self.log.membership().unwrap_or(&self.bootstrap)
    }

    /// True if this node votes in its configuration (only voters campaign).
    pub fn is_voter(&self) -> bool {
        self.membership().is_voter(self.config.id)
    }

    /// True if this node may start an election: it is a voter, or it was
    /// one before a change that is not committed yet (its own removal,
    /// say). Such a change may still need this node to be elected, counted
    /// among the voters of the configuration: with no vote of its own, it
    /// wins only with a majority of the others, commits the change and
    /// steps down (`cluster_membership.rs` deadlocked without it). A
    /// learner, a node not added yet, and a node whose removal is committed
    /// never campaign.
    pub(super) fn may_campaign(&self) -> bool {
        if self.is_voter() {
            return true;
        }
        let config_index = self.log.last_config_index();
        config_index > self.log.commit_index()
            && self
                .log
                .membership_at(config_index - 1)
                .unwrap_or(&self.bootstrap)
                .is_voter(self.config.id)
    }

    /// Number of votes (or acknowledgements) that make a majority.
    pub(super) fn quorum(&self) -> usize {
        self.membership().quorum()
    }

    /// The other voters, in id order (asked for votes).
    pub(super) fn other_voters(&self) -> Vec<NodeId> {
        let id = self.config.id;
        self.membership()
            .voters
            .iter()
            .copied()
            .filter(|&p| p != id)
            .collect()
    }

    /// The nodes the leader replicates to: every other member, voters and
    /// learners, in id order.
    pub(super) fn replication_targets(&self) -> Vec<NodeId> {
        let id = self.config.id;
        self.membership().members().filter(|&p| p != id).collect()
    }

    /// Leader: one progress per replication target, no more. A new member
    /// is probed from the end of the log; a removed one is forgotten.
    pub(super) fn sync_progress(&mut self) {
        let targets = self.replication_targets();
        self.progress.retain(|peer, _| targets.contains(peer));
        let last_index = self.log.last_index();
        for peer in targets {
            self.progress
                .entry(peer)
                .or_insert_with(|| Progress::new(last_index));
        }
    }

    pub(super) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    /// Sends with another term than ours in the envelope (pre-votes).
    pub(super) fn send_with_term(&mut self, to: NodeId, term: u64, body: MessageBody) {
        self.messages.push(Message {
            from: self.config.id,
            to,
            term,
            body,
        });
    }

    pub(super) fn reset_election_timer(&mut self) {
        self.election_elapsed_ticks = 0;
        self.election_timeout_ticks = self.rng.gen_range(
            self.config.election_timeout_ticks_min..self.config.election_timeout_ticks_max,
        );
    }

    /// One unit of logical time (`config::TICK_INTERVAL_MS` in the driver).
    pub fn tick(&mut self) {
        self.ticks_since_start = self.ticks_since_start.saturating_add(1);
        match self.role {
            Role::Leader => self.tick_leader(),
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                self.election_elapsed_ticks += 1;
                if self.election_elapsed_ticks >= self.election_timeout_ticks {
                    if !self.may_campaign() {
                        // A learner, a node removed from the group or one
                        // not yet added: it never campaigns, so it cannot
                        // disrupt the voters.
                        self.reset_election_timer();
                    } else if self.term >= MAX_TERM {
                        // Only forged terms get here (`validate.rs`); a
                        // campaign would pass the largest term peers accept.
                        tracing::error!(
                            node = self.config.id,
                            term = self.term,
                            "term at its limit; not campaigning"
                        );
                        self.reset_election_timer();
                    } else {
                        self.campaign_transfer = false;
                        if self.config.pre_vote {
                            self.pre_campaign();
                        } else {
                            self.campaign();
                        }
                    }
                } else if self.role != Role::Follower {
                    self.tick_vote_round();
                }
            }
        }
    }

    /// Handles one message from a peer. A message that fails a check
    /// (`core/validate.rs`) is refused: `Err` says why, nothing changed,
    /// and no reply is queued.
    pub fn step(&mut self, message: Message) -> Result<(), StepError> {
        let checked = if message.to != self.config.id {
            Err(StepError::WrongRecipient {
                to: message.to,
                this: self.config.id,
            })
        } else if message.from == self.config.id {
            // Requests are handled without consulting our configuration
            // (thesis 4.1): a node may be a voter, or the leader, in a
            // configuration that has not reached us yet, and the group can
            // need our vote for it (refusing deadlocked
            // `cluster_membership.rs`). A removed node that keeps
            // campaigning is held off by PreVote and by leader stickiness
            // (CheckQuorum): no vote, no term change, while a leader is
            // alive.
            Err(StepError::UnknownSender { from: message.from })
        } else {
            self.check_message(&message)
        };
        if let Err(error) = checked {
            self.refuse(message.from, &error);
            return Err(error);
        }
        if !message.body.is_request() && !self.membership().contains(message.from) {
            // A reply from a node that left the configuration since it
            // was asked: nothing to do with it.
            return Ok(());
        }
        if message.term > self.term {
            match &message.body {
                // A pre-vote carries the term its sender would campaign in,
                // and a granted pre-vote echoes it: neither is a term anyone
                // is in yet.
                MessageBody::PreVote(_) => {}
                MessageBody::PreVoteReply(reply) if reply.vote_granted => {}
                // Thesis 4.2.3: while a leader is known to be alive, a vote
                // request does not even raise our term. It is refused (with
                // our lower term, which its sender drops as stale) so that
                // every request still gets exactly one reply.
                MessageBody::RequestVote(request)
                    if self.config.check_quorum
                        && self.refuses_votes()
                        && !request.leadership_transfer =>
                {
                    let refusal = RequestVoteReply {
                        vote_granted: false,
                    };
                    self.send(message.from, MessageBody::RequestVoteReply(refusal));
                    return Ok(());
                }
                _ => {
                    // A newer term: whatever we were, we follow now (paper
                    // Figure 2, "Rules for all servers"). Only a message from
                    // the new leader names it; only that kind of message is a
                    // sign of a live leader.
                    let from_leader = message.body.is_from_leader();
                    let leader = from_leader.then_some(message.from);
                    self.become_follower(message.term, leader, from_leader);
                }
            }
        } else if message.term < self.term {
            self.answer_stale_request(&message);
            return Ok(());
        }
        if message.term == self.term
            && self.role == Role::Leader
            && let Some(progress) = self.progress.get_mut(&message.from)
        {
            progress.recent_active = true;
        }
        let from = message.from;
        match message.body {
            MessageBody::RequestVote(request) => self.handle_request_vote(from, &request),
            MessageBody::RequestVoteReply(reply) => self.handle_request_vote_reply(from, &reply),
            MessageBody::AppendEntries(request) => self.handle_append_entries(from, request),
            MessageBody::AppendEntriesReply(reply) => {
                self.handle_append_entries_reply(from, &reply)
            }
            MessageBody::Heartbeat(heartbeat) => self.handle_heartbeat(from, &heartbeat),
            MessageBody::HeartbeatReply(reply) => self.handle_heartbeat_reply(from, &reply),
            MessageBody::InstallSnapshot(request) => self.handle_install_snapshot(from, request),
            MessageBody::InstallSnapshotReply(reply) => {
                self.handle_install_snapshot_reply(from, &reply)
            }
            MessageBody::PreVote(request) => self.handle_pre_vote(from, message.term, &request),
            MessageBody::PreVoteReply(reply) => {
                self.handle_pre_vote_reply(from, message.term, &reply)
            }
            MessageBody::TimeoutNow => self.handle_timeout_now(from),
            MessageBody::TimeoutNowReply => {}
        }
        Ok(())
    }

    /// A request from an older term is refused with our term, which makes the
    /// sender step down; a stale reply is dropped.
    fn answer_stale_request(&mut self, message: &Message) {
        let body = match &message.body {
            MessageBody::RequestVote(_) => MessageBody::RequestVoteReply(RequestVoteReply {
                vote_granted: false,
            }),
            // Our newer term in the refusal makes the pre-candidate catch up.
            MessageBody::PreVote(_) => MessageBody::PreVoteReply(RequestVoteReply {
                vote_granted: false,
            }),
            MessageBody::AppendEntries(request) => {
                MessageBody::AppendEntriesReply(AppendEntriesReply {
                    success: false,
                    match_index: 0,
                    rejected_prev_index: request.prev_log_index,
                    conflict: None,
                })
            }
            MessageBody::Heartbeat(heartbeat) => MessageBody::HeartbeatReply(HeartbeatReply {
                read_id: heartbeat.read_id,
            }),
            MessageBody::InstallSnapshot(_) => {
                MessageBody::InstallSnapshotReply(InstallSnapshotReply {
                    match_index: 0,
                    snapshot_index: 0,
                    received_bytes: 0,
                })
            }
            MessageBody::TimeoutNow => MessageBody::TimeoutNowReply,
            MessageBody::TimeoutNowReply
            | MessageBody::RequestVoteReply(_)
            | MessageBody::AppendEntriesReply(_)
            | MessageBody::HeartbeatReply(_)
            | MessageBody::InstallSnapshotReply(_)
            | MessageBody::PreVoteReply(_) => return,
        };
        self.send(message.from, body);
    }

    /// Steps down (or stays) a follower in `term`. `reset_timer` is false when
    /// only a candidate's higher term was seen: the election timer restarts
    /// only on signs of a live leader or on granting a vote, so a candidate
    /// with a stale log cannot keep up-to-date nodes from campaigning.
    pub(super) fn become_follower(&mut self, term: u64, leader: Option<NodeId>, reset_timer: bool) {
        assert!(
            term >= self.term,
            "node {}: becoming follower in term {term} below current term {}",
            self.config.id,
            self.term
        );
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        let was_leader = self.role == Role::Leader;
        self.role = Role::Follower;
        self.leader_id = leader;
        self.votes.clear();
        self.progress.clear();
        self.uncommitted_bytes = 0;
        self.read_only.clear_pending();
        self.transfer = None;
        self.lease_until_ms = 0;
        if reset_timer || was_leader {
            self.reset_election_timer();
        }
    }

    /// The service asks to replicate `command`. Returns where it will be in the
    /// log if it commits (it may not: a leader can lose its office first).
    pub fn propose(&mut self, command: Vec<u8>) -> Result<(u64, u64), ProposeError> {
        self.propose_entry(EntryKind::Command, command)
    }

    pub(super) fn propose_entry(
        &mut self,
        kind: EntryKind,
        data: Vec<u8>,
    ) -> Result<(u64, u64), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                term: self.term,
                leader_hint: self.leader_id,
            });
        }
        if let Some(transfer) = self.transfer {
            return Err(ProposeError::TransferInProgress {
                target: transfer.target,
            });
        }
        let uncommitted = self.log.last_index() - self.log.commit_index();
        if uncommitted >= self.config.max_uncommitted_entries {
            return Err(ProposeError::TooManyUncommitted {
                uncommitted,
                limit: self.config.max_uncommitted_entries,
            });
        }
        let entry = Entry {
            index: self.log.last_index() + 1,
            term: self.term,
            kind,
            // Takes the command's allocation over: no copy.
            data: bytes::Bytes::from(data),
        };
        let entry_bytes = entry.size_bytes() as u64;
        if entry_bytes > self.config.max_entry_bytes as u64 {
            return Err(ProposeError::EntryTooLarge {
                entry_bytes,
                limit: self.config.max_entry_bytes as u64,
            });
        }
        if self.uncommitted_bytes + entry_bytes > self.config.max_uncommitted_bytes {
            return Err(ProposeError::TooManyUncommittedBytes {
                uncommitted_bytes: self.uncommitted_bytes,
                entry_bytes,
                limit: self.config.max_uncommitted_bytes,
            });
        }
        let index = entry.index;
        self.uncommitted_bytes += entry_bytes;
        self.log.append(entry);
        Ok((index, self.term))
    }

    /// Proposes one single-server configuration change (see
    /// `core/membership.rs`). Returns where the configuration entry will be
    /// if it commits; it takes effect at once, on this leader as on every
    /// node that appends it. Refused while this leader has not committed
    /// an entry of its term, while another change is uncommitted, during a
    /// leadership transfer, when the change makes no sense, and when a
    /// learner to promote lags more than `Config::max_learner_lag_entries`.
    pub fn propose_membership_change(
        &mut self,
        change: MembershipChange,
    ) -> Result<(u64, u64), MembershipError> {
        if self.role != Role::Leader {
            return Err(MembershipError::NotLeader {
                term: self.term,
                leader_hint: self.leader_id,
            });
        }
        if let Some(transfer) = self.transfer {
            return Err(MembershipError::TransferInProgress {
                target: transfer.target,
            });
        }
        let commit_index = self.log.commit_index();
        if self.log.term_at(commit_index) != Some(self.term) {
            return Err(MembershipError::LeaderNotReady { term: self.term });
        }
        let config_index = self.log.last_config_index();
        if config_index > commit_index {
            return Err(MembershipError::ChangeInProgress {
                index: config_index,
            });
        }
        let next = self
            .membership()
            .apply(change)
            .map_err(|reason| MembershipError::Invalid { change, reason })?;
        if let MembershipChange::PromoteLearner(learner) = change {
            let match_index = self.progress.get(&learner).map_or(0, |p| p.match_index);
            let last_index = self.log.last_index();
            let max_lag = self.config.max_learner_lag_entries;
            if last_index.saturating_sub(match_index) > max_lag {
                return Err(MembershipError::LearnerBehind {
                    learner,
                    match_index,
                    last_index,
                    max_lag,
                });
            }
        }
        let position = self
            .propose_entry(EntryKind::Config, next.encode())
            .map_err(MembershipError::Propose)?;
        tracing::info!(
            node = self.config.id,
            term = self.term,
            index = position.0,
            ?change,
            voters = ?next.voters,
            learners = ?next.learners,
            "configuration change appended"
        );
        // The voters change: a lease confirmed by the old ones ends (a new
        // one needs a majority of the configuration in force, for a round
        // sent after this).
        self.lease_until_ms = 0;
        self.lease_not_before_ms = Some(self.now_ms);
        self.sync_progress();
        Ok(position)
    }

    /// Hands leadership to `target`, a voter (thesis 3.10): from now on
    /// this leader refuses proposals (`TransferInProgress`), brings the
    /// target's log up to date, then sends it `TimeoutNow`, on which the
    /// target campaigns at once, without PreVote, and voters grant it even
    /// though they heard from this leader recently. If the target has not
    /// taken over within `Config::election_timeout_ticks_min` ticks, the
    /// transfer is abandoned and proposals are accepted again. A new call
    /// replaces a transfer under way.
    pub fn transfer_leader(&mut self, target: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                term: self.term,
                leader_hint: self.leader_id,
            });
        }
        if target == self.config.id {
            return Err(TransferError::AlreadyLeader { target });
        }
        if !self.membership().is_voter(target) {
            return Err(TransferError::NotAVoter { target });
        }
        tracing::info!(
            node = self.config.id,
            term = self.term,
            target,
            "leadership transfer started"
        );
        self.transfer = Some(Transfer {
            target,
            elapsed_ticks: 0,
            timeout_now_sent: false,
        });
        // The target may be elected at once: the lease ends here, for the
        // rest of this term.
        self.lease_until_ms = 0;
        self.lease_forfeited = true;
        self.maybe_send_timeout_now();
        Ok(())
    }

    /// The target of the leadership transfer under way, if any.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|transfer| transfer.target)
    }

    /// Sends `TimeoutNow` if a transfer waits for it and its target's log
    /// matches ours to the end.
    pub(super) fn maybe_send_timeout_now(&mut self) {
        let Some(transfer) = self.transfer.filter(|t| !t.timeout_now_sent) else {
            return;
        };
        let caught_up = self
            .progress
            .get(&transfer.target)
            .is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            self.transfer = Some(Transfer {
                timeout_now_sent: true,
                ..transfer
            });
            self.send(transfer.target, MessageBody::TimeoutNow);
        }
    }

    /// Our leader hands over: campaign now, skipping PreVote (the leader
    /// vouches that our log is up to date).
    fn handle_timeout_now(&mut self, leader: NodeId) {
        self.send(leader, MessageBody::TimeoutNowReply);
        if !self.may_campaign() || self.term >= MAX_TERM {
            return;
        }
        tracing::info!(
            node = self.config.id,
            term = self.term,
            leader,
            "leader hands over; campaigning"
        );
        self.campaign_transfer = true;
        self.campaign();
    }

    /// Asks for a linearizable read point (see `read_only.rs`). When a
    /// majority confirms this node still leads, a later `Ready` carries a
    /// [`super::ReadState`] with `context` and the index the service must
    /// have applied before serving the read. If leadership is lost first, the
    /// read is dropped; the caller retries after a timeout.
    pub fn read_index(&mut self, context: Vec<u8>) -> Result<(), ReadIndexError> {
        self.read_index_in(context, true)
    }

    /// [`RawNode::read_index`] that takes a heartbeat round even while the
    /// lease holds. The round's heartbeats carry the commit index, so every
    /// follower in touch learns it within the round: what a follower that
    /// asked for this read index needs, to apply through it without
    /// waiting for the next heartbeat.
    pub fn read_index_with_round(&mut self, context: Vec<u8>) -> Result<(), ReadIndexError> {
        self.read_index_in(context, false)
    }

    fn read_index_in(&mut self, context: Vec<u8>, lease: bool) -> Result<(), ReadIndexError> {
        if self.role != Role::Leader {
            return Err(ReadIndexError::NotLeader {
                term: self.term,
                leader_hint: self.leader_id,
            });
        }
        let commit_index = self.log.commit_index();
        if self.log.term_at(commit_index) != Some(self.term) {
            return Err(ReadIndexError::LeaderNotReady { term: self.term });
        }
        if lease && self.lease_valid() {
            // No other leader can have been elected since a majority last
            // confirmed this one (`Config::lease_reads`).
            self.lease_reads_served += 1;
            self.read_only.confirm_now(commit_index, context);
            return Ok(());
        }
        let pending = self.read_only.pending_count();
        if pending >= self.config.max_pending_reads {
            return Err(ReadIndexError::TooManyPendingReads {
                pending,
                limit: self.config.max_pending_reads,
            });
        }
        if self.quorum() == 1 && self.is_voter() {
            self.read_only.confirm_now(commit_index, context);
            return Ok(());
        }
        let read_id = self
            .read_only
            .add(commit_index, context, self.config.id, self.now_ms);
        let targets: Vec<(NodeId, u64)> = self
            .progress
            .iter()
            .map(|(&peer, progress)| (peer, progress.match_index))
            .collect();
        for (peer, match_index) in targets {
            let heartbeat = Heartbeat {
                commit_index: commit_index.min(match_index),
                read_id,
            };
            self.send(peer, MessageBody::Heartbeat(heartbeat));
        }
        Ok(())
    }

    /// The service saved its state through `index` (which it has applied):
    /// drop the log entries the snapshot covers. An `index` at or below the
    /// current snapshot is ignored (a stale request).
    pub fn snapshot(&mut self, index: u64, data: impl Into<Bytes>) -> Result<(), SnapshotError> {
        if index <= self.log.snapshot_meta().last_included_index {
            return Ok(());
        }
        if index > self.log.applied_index() {
            return Err(SnapshotError::NotApplied {
                index,
                applied_index: self.log.applied_index(),
            });
        }
        let meta = self.log.compact_to(index, &self.bootstrap);
        let snapshot = Snapshot {
            meta,
            data: data.into(),
        };
        // Held until stored: lagging followers may need it before then.
        self.snapshot = HeldSnapshot::new(snapshot.clone());
        self.pending_snapshot = Some(ReadySnapshot {
            snapshot,
            persist: true,
            apply: false,
        });
        Ok(())
    }

    /// The driver's storage holds the snapshot at `meta` durably and reads
    /// pieces of it back (`Storage::read_snapshot_piece`): if it is the
    /// latest snapshot, the core drops its own copy of the bytes and from
    /// now on asks for pieces to send in [`Ready::snapshot_reads`]. Call it
    /// after each durable write of a snapshot (saved, or staged and
    /// installed) and at restart for the loaded one. Another `meta` (a
    /// snapshot since replaced) is ignored. A driver that never calls it
    /// gets the old behaviour: the bytes stay in memory.
    pub fn snapshot_stored(&mut self, meta: &SnapshotMeta) {
        self.snapshot.release(meta);
    }

    /// Bytes of the latest snapshot held in memory: its size until
    /// [`RawNode::snapshot_stored`] released them, then 0.
    pub fn snapshot_held_bytes(&self) -> u64 {
        self.snapshot.held_bytes()
    }

    pub(super) fn set_pending_snapshot(&mut self, snapshot: ReadySnapshot) {
        self.pending_snapshot = Some(snapshot);
    }

    /// True if [`RawNode::ready`] has something to hand out.
    pub fn has_ready(&self) -> bool {
        !self.messages.is_empty()
            || !self.snapshot_reads.is_empty()
            || self.hard_state() != self.saved_hard_state
            || self.pending_snapshot.is_some()
            || !self.log.unstable_entries().is_empty()
            || self.log.applied_index() < self.log.commit_index()
            || self.has_appends_to_send()
            || self.read_only.has_confirmed()
    }

    /// Collects what the driver must persist, send and apply (see [`Ready`]).
    /// Batches all entries proposed since the last call into as few
    /// AppendEntries as the limits allow.
    ///
    /// # Panics
    /// If the previous `Ready` was not passed to [`RawNode::advance`].
    pub fn ready(&mut self) -> Ready {
        assert!(
            !self.ready_outstanding,
            "node {}: ready() called before advance() of the previous Ready",
            self.config.id
        );
        self.send_pending_appends();
        let hard_state = self.hard_state();
        let ready = Ready {
            hard_state: (hard_state != self.saved_hard_state).then_some(hard_state),
            // Taken, not copied (a snapshot is as large as the service's
            // state): `advance` needs only its metadata.
            snapshot: self.pending_snapshot.take(),
            entries: self.log.unstable_entries().to_vec(),
            messages: std::mem::take(&mut self.messages),
            snapshot_reads: std::mem::take(&mut self.snapshot_reads),
            committed_entries: self
                .log
                .entries_to_apply(self.config.max_committed_entries_per_ready),
            read_states: self.read_only.take_confirmed(),
        };
        self.ready_outstanding = true;
        ready
    }

    /// The driver persisted, sent and applied `ready`. Only the positions in
    /// `ready` are read (indexes, terms, snapshot metadata), so the driver
    /// may move the entries' data out before handing it back.
    pub fn advance(&mut self, ready: Ready) {
        assert!(
            self.ready_outstanding,
            "node {}: advance() without an outstanding Ready",
            self.config.id
        );
        self.ready_outstanding = false;
        if let Some(hard_state) = ready.hard_state {
            self.saved_hard_state = hard_state;
        }
        if let Some(last) = ready.entries.last() {
            self.log.stable_to(last.index, last.term);
        }
        if let Some(last) = ready.committed_entries.last() {
            self.log.applied_to(last.index);
        }
        // `ready` took the pending snapshot: a pending one now came after.
        if self.role == Role::Leader {
            // The leader counts its own log only once it is on disk.
            self.maybe_commit();
        }
    }
}
