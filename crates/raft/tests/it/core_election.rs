//! Exact-output tests of leader election (Raft paper sections 5.2, 5.4.1).

use crate::fixture;

use fixture::*;
use raft::core::{
    AppendEntries, AppendEntriesReply, HardState, MessageBody, RawNode, RequestVote,
    RequestVoteReply, Role,
};

fn vote_reply(node: &mut RawNode) -> (u64, bool) {
    let messages = take_ready(node).messages;
    assert_eq!(messages.len(), 1, "expected one reply, got {messages:?}");
    match &messages[0].body {
        MessageBody::RequestVoteReply(RequestVoteReply { vote_granted }) => {
            (messages[0].term, *vote_granted)
        }
        other => panic!("expected a vote reply, got {other:?}"),
    }
}

#[test]
fn follower_campaigns_exactly_at_its_election_timeout() {
    let mut node = node_with_log(config(0, 3), 0, &[], 0);
    tick_times(&mut node, ELECTION_TICKS - 1);
    assert!(!node.has_ready(), "no output before the timeout");
    node.tick();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 1,
            voted_for: Some(0),
            commit_index: 0
        }),
        "the vote for itself is persisted with the new term"
    );
    let request = RequestVote {
        last_log_index: 0,
        last_log_term: 0,
        leadership_transfer: false,
    };
    assert_eq!(
        ready.messages,
        vec![
            message(0, 1, 1, MessageBody::RequestVote(request.clone())),
            message(0, 2, 1, MessageBody::RequestVote(request)),
        ]
    );
    assert_eq!(node.role(), Role::Candidate);
}

#[test]
fn candidate_with_a_majority_becomes_leader_and_probes_every_follower() {
    let mut node = node_with_log(config(0, 3), 2, &[1, 2], 0);
    tick_times(&mut node, ELECTION_TICKS);
    drain(&mut node);
    let granted = RequestVoteReply { vote_granted: true };
    node.step(message(1, 0, 3, MessageBody::RequestVoteReply(granted)))
        .unwrap();
    assert_eq!(node.role(), Role::Leader);
    let probe = AppendEntries {
        prev_log_index: 2,
        prev_log_term: 2,
        entries: vec![],
        leader_commit: 0,
    };
    assert_eq!(
        take_ready(&mut node).messages,
        vec![
            message(0, 1, 3, MessageBody::AppendEntries(probe.clone())),
            message(0, 2, 3, MessageBody::AppendEntries(probe)),
        ],
        "a new leader probes at its last index, which also announces it"
    );
}

#[test]
fn candidate_without_majority_stays_candidate_and_retries_in_a_new_term() {
    let mut node = node_with_log(config(0, 5), 0, &[], 0);
    tick_times(&mut node, ELECTION_TICKS);
    drain(&mut node);
    let granted = RequestVoteReply { vote_granted: true };
    let refused = RequestVoteReply {
        vote_granted: false,
    };
    node.step(message(1, 0, 1, MessageBody::RequestVoteReply(granted)))
        .unwrap();
    node.step(message(
        2,
        0,
        1,
        MessageBody::RequestVoteReply(refused.clone()),
    ))
    .unwrap();
    node.step(message(3, 0, 1, MessageBody::RequestVoteReply(refused)))
        .unwrap();
    assert_eq!(
        node.role(),
        Role::Candidate,
        "2 of 5 votes is not a majority"
    );
    tick_times(&mut node, ELECTION_TICKS);
    assert_eq!(
        node.term(),
        2,
        "split vote: campaign again in the next term"
    );
    assert_eq!(take_ready(&mut node).messages.len(), 4);
}

#[test]
fn one_vote_per_term() {
    let mut node = node_with_log(config(0, 3), 0, &[], 0);
    node.step(vote_request(1, 0, 1, 0, 0)).unwrap();
    assert_eq!(vote_reply(&mut node), (1, true));
    node.step(vote_request(2, 0, 1, 5, 1)).unwrap();
    assert_eq!(
        vote_reply(&mut node),
        (1, false),
        "already voted for 1 in term 1"
    );
    node.step(vote_request(1, 0, 1, 0, 0)).unwrap();
    assert_eq!(
        vote_reply(&mut node),
        (1, true),
        "a retried request gets the same answer"
    );
    node.step(vote_request(2, 0, 2, 0, 0)).unwrap();
    assert_eq!(
        vote_reply(&mut node),
        (2, true),
        "a new term brings a new vote"
    );
    assert_eq!(
        node.hard_state(),
        HardState {
            term: 2,
            voted_for: Some(2),
            commit_index: 0
        }
    );
}

#[test]
fn vote_only_for_an_up_to_date_log() {
    // Log: index 1 term 1, index 2 term 2.
    let mut node = node_with_log(config(0, 3), 2, &[1, 2], 0);
    node.step(vote_request(1, 0, 3, 3, 1)).unwrap();
    assert_eq!(
        vote_reply(&mut node),
        (3, false),
        "longer log but older last term"
    );
    node.step(vote_request(1, 0, 4, 1, 2)).unwrap();
    assert_eq!(
        vote_reply(&mut node),
        (4, false),
        "same last term but shorter log"
    );
    node.step(vote_request(1, 0, 5, 2, 2)).unwrap();
    assert_eq!(
        vote_reply(&mut node),
        (5, true),
        "same last term, same length"
    );
    node.step(vote_request(2, 0, 6, 1, 3)).unwrap();
    assert_eq!(
        vote_reply(&mut node),
        (6, true),
        "later last term wins whatever the length"
    );
}

#[test]
fn refusing_a_vote_does_not_restart_the_election_timer() {
    let mut node = node_with_log(config(0, 3), 2, &[1, 2], 0);
    tick_times(&mut node, ELECTION_TICKS - 1);
    node.step(vote_request(1, 0, 3, 1, 1)).unwrap();
    assert_eq!(vote_reply(&mut node), (3, false));
    node.tick();
    assert_eq!(
        node.role(),
        Role::Candidate,
        "the timer kept running through the refusal"
    );
    assert_eq!(node.term(), 4);
}

#[test]
fn granting_a_vote_restarts_the_election_timer() {
    let mut node = node_with_log(config(0, 3), 0, &[], 0);
    tick_times(&mut node, ELECTION_TICKS - 1);
    node.step(vote_request(1, 0, 1, 0, 0)).unwrap();
    assert_eq!(vote_reply(&mut node), (1, true));
    tick_times(&mut node, ELECTION_TICKS - 1);
    assert_eq!(node.role(), Role::Follower);
    node.tick();
    assert_eq!(node.role(), Role::Candidate);
}

#[test]
fn requests_of_a_stale_term_are_refused_with_the_current_term() {
    let mut node = node_with_log(config(0, 3), 5, &[1, 5], 0);
    node.step(vote_request(1, 0, 3, 9, 9)).unwrap();
    assert_eq!(vote_reply(&mut node), (5, false));
    node.step(append(2, 0, 4, (2, 5), vec![], 2)).unwrap();
    let reply = AppendEntriesReply {
        success: false,
        match_index: 0,
        rejected_prev_index: 2,
        conflict: None,
    };
    assert_eq!(
        take_ready(&mut node).messages,
        vec![message(0, 2, 5, MessageBody::AppendEntriesReply(reply))],
        "the stale leader learns the newer term and steps down"
    );
    assert_eq!(
        node.log().commit_index(),
        0,
        "a stale leader's commit index is ignored"
    );
}

#[test]
fn stale_replies_are_dropped() {
    let mut node = node_with_log(config(0, 3), 0, &[], 0);
    elect(&mut node);
    elect_again(&mut node);
    // A vote reply and an append reply of the old term change nothing.
    let granted = RequestVoteReply { vote_granted: true };
    node.step(message(1, 0, 1, MessageBody::RequestVoteReply(granted)))
        .unwrap();
    node.step(append_ok(1, 0, 1, 0)).unwrap();
    assert!(!node.has_ready());
}

/// Steps `node` down with a higher-term heartbeat-free message, then
/// re-elects it.
fn elect_again(node: &mut RawNode) {
    let term = node.term();
    node.step(vote_request(2, node.id(), term + 1, 0, 0))
        .unwrap();
    drain(node);
    elect(node);
}

#[test]
fn leader_steps_down_on_a_higher_term() {
    let mut node = node_with_log(config(0, 3), 0, &[], 0);
    elect(&mut node);
    node.step(append_ok(1, 0, 7, 0)).unwrap();
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(
        node.hard_state(),
        HardState {
            term: 7,
            voted_for: None,
            commit_index: 0
        }
    );
    assert_eq!(
        node.leader_id(),
        None,
        "a reply does not name the new leader"
    );
}

#[test]
fn candidate_follows_a_leader_of_its_own_term() {
    let mut node = node_with_log(config(0, 3), 0, &[], 0);
    tick_times(&mut node, ELECTION_TICKS);
    drain(&mut node);
    node.step(append(1, 0, 1, (0, 0), vec![], 0)).unwrap();
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.leader_id(), Some(1));
    assert_eq!(node.voted_for(), Some(0), "the vote of the term is kept");
}

#[test]
fn misaddressed_messages_are_refused_without_effect() {
    // A vote request from a node outside our configuration is handled like
    // any other (it may be a voter of a configuration we have not seen:
    // `core_membership.rs`); one addressed to another node, or claiming to
    // come from us, is refused.
    let mut node = node_with_log(config(0, 3), 0, &[], 0);
    assert!(node.step(vote_request(1, 2, 5, 0, 0)).is_err());
    assert!(node.step(vote_request(0, 0, 5, 0, 0)).is_err());
    assert_eq!(node.term(), 0);
    assert!(!node.has_ready());
}
