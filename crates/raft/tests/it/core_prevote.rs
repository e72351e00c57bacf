//! Exact-output tests of PreVote and CheckQuorum (Raft thesis 9.6, 6.2,
//! 4.2.3): a node that cannot win does not raise its term, a node that
//! hears a leader does not help depose it, and a leader that hears no
//! majority for an election timeout steps down.

use crate::fixture;

use fixture::*;
use raft::core::{
    HardState, HeartbeatReply, MessageBody, NodeId, RawNode, RequestVote, RequestVoteReply, Role,
};

/// A follower of term `term` with log `terms` that just heard a heartbeat
/// from leader `leader`.
fn follower_of(leader: NodeId, term: u64, terms: &[u64]) -> RawNode {
    let mut node = node_with_log(config_with_prevote_and_check_quorum(0, 3), term, terms, 0);
    node.step(message(
        leader,
        0,
        term,
        MessageBody::Heartbeat(raft::core::Heartbeat {
            commit_index: 0,
            read_id: 0,
        }),
    ))
    .unwrap();
    drain(&mut node);
    assert_eq!(node.leader_id(), Some(leader));
    node
}

#[test]
fn election_timeout_sends_pre_votes_for_the_next_term_without_changing_anything() {
    let mut node = node_with_log(config_with_prevote_and_check_quorum(0, 3), 2, &[1, 2], 0);
    tick_times(&mut node, ELECTION_TICKS);
    assert_eq!(node.role(), Role::PreCandidate);
    let ready = take_ready(&mut node);
    assert_eq!(ready.hard_state, None, "no term or vote to persist");
    assert_eq!(
        ready.messages,
        vec![pre_vote(0, 1, 3, 2, 2), pre_vote(0, 2, 3, 2, 2)],
        "pre-votes carry the term the node would campaign in"
    );
    assert_eq!(node.term(), 2);
    assert_eq!(node.voted_for(), None);
}

#[test]
fn a_majority_of_pre_votes_starts_the_real_election() {
    let mut node = node_with_log(config_with_prevote_and_check_quorum(0, 3), 2, &[1, 2], 0);
    tick_times(&mut node, ELECTION_TICKS);
    drain(&mut node);
    node.step(pre_vote_reply(1, 0, 3, true)).unwrap();
    assert_eq!(node.role(), Role::Candidate);
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 3,
            voted_for: Some(0),
            commit_index: 0
        })
    );
    let request = RequestVote {
        last_log_index: 2,
        last_log_term: 2,
        leadership_transfer: false,
    };
    assert_eq!(
        ready.messages,
        vec![
            message(0, 1, 3, MessageBody::RequestVote(request.clone())),
            message(0, 2, 3, MessageBody::RequestVote(request)),
        ]
    );
}

#[test]
fn a_pre_candidate_without_a_majority_keeps_its_term_round_after_round() {
    let mut node = node_with_log(config_with_prevote_and_check_quorum(0, 3), 2, &[1, 2], 0);
    for round in 0..5 {
        tick_times(&mut node, ELECTION_TICKS);
        let messages = drain(&mut node);
        assert_eq!(
            messages,
            vec![pre_vote(0, 1, 3, 2, 2), pre_vote(0, 2, 3, 2, 2)],
            "round {round}: the same pre-votes, for the same term"
        );
        node.step(pre_vote_reply(1, 0, 2, false)).unwrap();
        assert_eq!(node.role(), Role::PreCandidate);
    }
    assert_eq!(node.term(), 2, "a cut-off node does not inflate its term");
}

#[test]
fn a_pre_vote_refusal_from_a_newer_term_makes_the_pre_candidate_follow_it() {
    let mut node = node_with_log(config_with_prevote_and_check_quorum(0, 3), 2, &[1, 2], 0);
    tick_times(&mut node, ELECTION_TICKS);
    drain(&mut node);
    node.step(pre_vote_reply(1, 0, 5, false)).unwrap();
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(
        take_ready(&mut node).hard_state,
        Some(HardState {
            term: 5,
            voted_for: None,
            commit_index: 0
        })
    );
}

#[test]
fn a_follower_that_hears_its_leader_refuses_pre_votes_with_its_own_term() {
    let mut node = follower_of(1, 4, &[1, 4]);
    tick_times(&mut node, ELECTION_TICKS - 1);
    node.step(pre_vote(2, 0, 5, 2, 4)).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(ready.messages, vec![pre_vote_reply(0, 2, 4, false)]);
    assert_eq!(ready.hard_state, None);
    assert_eq!(node.term(), 4);
    assert_eq!(node.leader_id(), Some(1));
}

#[test]
fn a_pre_vote_is_granted_to_an_up_to_date_log_when_no_leader_is_heard() {
    // Restarted: no leader known.
    let mut node = node_with_log(config_with_prevote_and_check_quorum(0, 3), 4, &[1, 4], 0);
    node.step(pre_vote(2, 0, 5, 2, 4)).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.messages,
        vec![pre_vote_reply(0, 2, 5, true)],
        "a grant echoes the term asked about"
    );
    assert_eq!(ready.hard_state, None, "a pre-vote is not a vote");
    assert_eq!((node.term(), node.voted_for()), (4, None));
    // Nor does it restart the timer: the node times out on schedule.
    tick_times(&mut node, ELECTION_TICKS);
    assert_eq!(node.role(), Role::PreCandidate);
}

#[test]
fn a_pre_vote_is_refused_to_a_stale_log_or_a_term_not_beyond_ours() {
    let mut node = node_with_log(config_with_prevote_and_check_quorum(0, 3), 4, &[1, 4], 0);
    node.step(pre_vote(2, 0, 5, 5, 3)).unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![pre_vote_reply(0, 2, 4, false)],
        "last term 3 < 4: not up to date"
    );
    node.step(pre_vote(2, 0, 4, 2, 4)).unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![pre_vote_reply(0, 2, 4, false)],
        "term 4 is ours: the sender is behind"
    );
    node.step(pre_vote(2, 0, 3, 2, 4)).unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![pre_vote_reply(0, 2, 4, false)],
        "a stale term is refused with ours"
    );
    assert_eq!(node.term(), 4);
}

#[test]
fn a_leader_refuses_pre_votes() {
    let mut node = node_with_log(config_with_prevote_and_check_quorum(0, 3), 0, &[], 0);
    tick_times(&mut node, ELECTION_TICKS);
    drain(&mut node);
    node.step(pre_vote_reply(1, 0, 1, true)).unwrap();
    drain(&mut node);
    node.step(message(
        1,
        0,
        1,
        MessageBody::RequestVoteReply(RequestVoteReply { vote_granted: true }),
    ))
    .unwrap();
    assert!(node.is_leader());
    drain(&mut node);
    node.step(pre_vote(2, 0, 2, 0, 0)).unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![pre_vote_reply(0, 2, 1, false)]
    );
    assert!(node.is_leader());
}

#[test]
fn with_check_quorum_a_vote_request_is_disregarded_while_the_leader_is_heard() {
    let mut node = follower_of(1, 4, &[1, 4]);
    node.step(vote_request(2, 0, 5, 2, 4)).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.messages,
        vec![message(
            0,
            2,
            4,
            MessageBody::RequestVoteReply(RequestVoteReply {
                vote_granted: false
            })
        )],
        "refused with our (older) term, which the candidate drops"
    );
    assert_eq!(ready.hard_state, None, "the term did not move");
    assert_eq!(node.term(), 4);
    // Once the leader has been silent for an election timeout, the node no
    // longer assumes it alive, and the same request is honoured.
    tick_times(&mut node, ELECTION_TICKS);
    drain(&mut node);
    node.step(vote_request(2, 0, 5, 2, 4)).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.messages,
        vec![message(
            0,
            2,
            5,
            MessageBody::RequestVoteReply(RequestVoteReply { vote_granted: true })
        )]
    );
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 5,
            voted_for: Some(2),
            commit_index: 0
        })
    );
}

/// A leader elected with check_quorum on (PreVote off, so `elect` works).
fn check_quorum_leader(size: u64) -> RawNode {
    let mut config = config(0, size);
    config.check_quorum = true;
    let mut node = node_with_log(config, 0, &[], 0);
    elect(&mut node);
    node
}

#[test]
fn a_leader_that_hears_no_majority_for_an_election_timeout_steps_down() {
    let mut node = check_quorum_leader(3);
    let term = node.term();
    tick_times(&mut node, ELECTION_TICKS - 1);
    drain(&mut node);
    assert!(node.is_leader(), "not before a whole election timeout");
    node.tick();
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), term, "stepping down keeps the term");
    assert_eq!(node.leader_id(), None);
    assert!(!node.has_ready(), "nothing to persist or send");
}

#[test]
fn a_leader_that_hears_a_majority_each_round_stays() {
    let mut node = check_quorum_leader(3);
    let term = node.term();
    for round in 0..3 {
        tick_times(&mut node, ELECTION_TICKS - 1);
        drain(&mut node);
        node.step(message(
            1,
            0,
            term,
            MessageBody::HeartbeatReply(HeartbeatReply { read_id: 0 }),
        ))
        .unwrap();
        node.tick();
        drain(&mut node);
        assert!(node.is_leader(), "round {round}: node 1 answered");
    }
    // An answer counts for one round only.
    tick_times(&mut node, ELECTION_TICKS);
    assert_eq!(node.role(), Role::Follower);
}

#[test]
fn in_five_nodes_one_answering_follower_is_not_a_majority() {
    let mut node = check_quorum_leader(5);
    tick_times(&mut node, ELECTION_TICKS - 1);
    drain(&mut node);
    let term = node.term();
    node.step(append_ok(1, 0, term, 0)).unwrap();
    node.tick();
    assert_eq!(node.role(), Role::Follower, "2 of 5 heard");
}
