//! Leader election (Raft paper section 5.2, and 5.4.1 for the voting rule),
//! with PreVote (Raft thesis 9.6) in front when `Config::pre_vote` is set:
//!
//! ```text
//!   Follower --timeout--> PreCandidate --majority of pre-votes--> Candidate --majority--> Leader
//!                          (term, vote     (term + 1, votes for itself)
//!                           unchanged)
//! ```
//!
//! A pre-vote is granted to an up-to-date log by a node that has not heard
//! from a leader for at least the minimum election timeout. A node cut off
//! from the group never gets a majority of them, so its term stays put, and
//! when it rejoins it has nothing to disrupt the leader with.

use super::entry::{Entry, EntryKind, NodeId};
use super::message::{MessageBody, RequestVote, RequestVoteReply};
use super::raw_node::{RawNode, Role};

impl RawNode {
    /// The election timer fired (with PreVote): ask whether a majority
    /// would vote for us in the next term, without changing ours.
    pub(super) fn pre_campaign(&mut self) {
        self.role = Role::PreCandidate;
        tracing::debug!(node = self.config.id, term = self.term, "pre-campaigning");
        if self.start_vote_round() {
            self.send_vote_requests();
        } else {
            self.campaign();
        }
    }

    /// Asks every peer that has not answered in this round: for a pre-vote
    /// in the next term as a pre-candidate, for a vote in this term as a
    /// candidate. Both are safe to repeat: a pre-vote changes nothing, and a
    /// voter grants its vote again to the candidate it voted for.
    fn send_vote_requests(&mut self) {
        let request = RequestVote {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            leadership_transfer: self.campaign_transfer && self.role == Role::Candidate,
        };
        let silent_peers: Vec<NodeId> = self
            .other_voters()
            .into_iter()
            .filter(|peer| !self.votes.contains_key(peer))
            .collect();
        for peer in silent_peers {
            match self.role {
                Role::PreCandidate => {
                    self.send_with_term(peer, self.term + 1, MessageBody::PreVote(request.clone()))
                }
                Role::Candidate => self.send(peer, MessageBody::RequestVote(request.clone())),
                Role::Follower | Role::Leader => unreachable!(
                    "node {}: vote requests sent as {:?} in term {}",
                    self.config.id, self.role, self.term
                ),
            }
        }
    }

    /// One tick of a (pre-)candidate's round before its election timeout:
    /// every `vote_resend_interval_ticks`, up to `vote_resends_per_round_max`
    /// times, the peers that have not answered are asked again. Without
    /// this, one lost request or reply costs a whole election timeout (two
    /// with PreVote), which under loss can leave a bare majority without a
    /// leader for seconds.
    pub(super) fn tick_vote_round(&mut self) {
        if self.vote_resends_this_round >= self.config.vote_resends_per_round_max {
            return;
        }
        self.vote_round_elapsed_ticks += 1;
        if self.vote_round_elapsed_ticks < self.config.vote_resend_interval_ticks {
            return;
        }
        self.vote_round_elapsed_ticks = 0;
        self.vote_resends_this_round += 1;
        tracing::debug!(
            node = self.config.id,
            term = self.term,
            role = ?self.role,
            resend = self.vote_resends_this_round,
            "re-sending vote requests to peers that have not answered"
        );
        self.send_vote_requests();
    }

    /// Common to both rounds: forget the leader, restart the timer and the
    /// re-send count, vote for ourselves. Returns true if the others must
    /// be asked, false if our own vote is already a majority (a group of
    /// one).
    fn start_vote_round(&mut self) -> bool {
        self.leader_id = None;
        self.reset_election_timer();
        self.vote_round_elapsed_ticks = 0;
        self.vote_resends_this_round = 0;
        self.votes.clear();
        self.votes.insert(self.config.id, true);
        self.votes_granted() < self.quorum()
    }

    /// True if this node believes a leader is alive: it leads, or it heard
    /// from the leader less than a minimum election timeout ago.
    pub(super) fn leader_recently_active(&self) -> bool {
        self.role == Role::Leader
            || (self.leader_id.is_some()
                && self.election_elapsed_ticks < self.config.election_timeout_ticks_min)
    }

    /// True while this node grants no vote (nor pre-vote): a leader is
    /// alive as far as it knows, or, with lease reads, it started less than
    /// a minimum election timeout ago (it may have heard from a leader,
    /// and so promised it that time, before a restart).
    pub(super) fn refuses_votes(&self) -> bool {
        self.leader_recently_active()
            || (self.config.lease_reads
                && self.ticks_since_start < self.config.election_timeout_ticks_min)
    }

    /// A pre-vote for `term` (the candidate's term + 1). Granted only to an
    /// up-to-date log, for a term beyond ours, if no leader is known to be
    /// alive. Changes nothing here: no term, no vote, no timer.
    pub(super) fn handle_pre_vote(&mut self, candidate: NodeId, term: u64, request: &RequestVote) {
        let vote_granted = term > self.term
            && !self.refuses_votes()
            && self
                .log
                .is_up_to_date(request.last_log_index, request.last_log_term);
        let reply_term = if vote_granted { term } else { self.term };
        self.send_with_term(
            candidate,
            reply_term,
            MessageBody::PreVoteReply(RequestVoteReply { vote_granted }),
        );
    }

    /// A pre-vote answer; `term` is its envelope's (a grant echoes ours + 1;
    /// a refusal from a newer term already made us a follower).
    pub(super) fn handle_pre_vote_reply(
        &mut self,
        voter: NodeId,
        term: u64,
        reply: &RequestVoteReply,
    ) {
        if self.role != Role::PreCandidate {
            return;
        }
        self.votes
            .insert(voter, reply.vote_granted && term == self.term + 1);
        if self.votes_granted() >= self.quorum() {
            self.campaign();
        }
    }

    /// The election timer fired, or a majority granted pre-votes: start an
    /// election in the next term.
    pub(super) fn campaign(&mut self) {
        self.term += 1;
        self.voted_for = Some(self.config.id);
        self.role = Role::Candidate;
        tracing::debug!(node = self.config.id, term = self.term, "campaigning");
        if self.start_vote_round() {
            self.send_vote_requests();
        } else {
            self.become_leader();
        }
    }

    /// Granted votes of voters of our configuration (a learner's or a
    /// non-member's grant does not count).
    fn votes_granted(&self) -> usize {
        let membership = self.membership();
        self.votes
            .iter()
            .filter(|&(&voter, &granted)| granted && membership.is_voter(voter))
            .count()
    }

    /// Grant at most one vote per term, and only to a candidate whose log is
    /// at least as up-to-date as ours (election restriction, section 5.4.1).
    pub(super) fn handle_request_vote(&mut self, candidate: NodeId, request: &RequestVote) {
        let can_vote = self.voted_for.is_none() || self.voted_for == Some(candidate);
        let vote_granted = can_vote
            && self
                .log
                .is_up_to_date(request.last_log_index, request.last_log_term);
        if vote_granted {
            self.voted_for = Some(candidate);
            self.reset_election_timer();
        }
        self.send(
            candidate,
            MessageBody::RequestVoteReply(RequestVoteReply { vote_granted }),
        );
    }

    pub(super) fn handle_request_vote_reply(&mut self, voter: NodeId, reply: &RequestVoteReply) {
        if self.role != Role::Candidate {
            return;
        }
        self.votes.insert(voter, reply.vote_granted);
        if self.votes_granted() >= self.quorum() {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "node {}: becoming leader of term {} without being a candidate",
            self.config.id,
            self.term
        );
        tracing::debug!(node = self.config.id, term = self.term, "became leader");
        self.role = Role::Leader;
        self.leader_id = Some(self.config.id);
        self.lease_until_ms = 0;
        self.lease_forfeited = false;
        self.votes.clear();
        self.heartbeat_elapsed_ticks = 0;
        // Now counts ticks to the first CheckQuorum round.
        self.election_elapsed_ticks = 0;
        self.progress.clear();
        self.sync_progress();
        if self.config.noop_on_election {
            let index = self.log.last_index() + 1;
            self.log.append(Entry {
                index,
                term: self.term,
                kind: EntryKind::Noop,
                data: bytes::Bytes::new(),
            });
        }
        // Entries of earlier terms after the commit index are uncommitted
        // too; counted once here, then kept up to date by propose and commit.
        self.uncommitted_bytes = self
            .log
            .size_bytes_between(self.log.commit_index() + 1, self.log.last_index());
        // Probes go out with the next Ready: they announce the new leader.
    }
}
