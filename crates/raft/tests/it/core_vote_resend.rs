//! Exact-output tests of vote re-sends: a (pre-)candidate asks the peers
//! that have not answered again every `vote_resend_interval_ticks`, at most
//! `vote_resends_per_round_max` times a round, so a lost request or reply
//! costs one interval instead of a whole election timeout.

use crate::fixture;

use fixture::*;
use raft::core::{Config, Message, MessageBody, RawNode, RequestVoteReply, Role};

const RESEND_TICKS: u64 = 10;
const RESENDS_MAX: u64 = 2;

/// Classic rules plus re-sends every [`RESEND_TICKS`], [`RESENDS_MAX`] a
/// round. The election timeout is exactly `ELECTION_TICKS` (30), so a round
/// has room for the 2 re-sends, at ticks 10 and 20.
fn resend_config(id: u64, size: u64) -> Config {
    let mut config = config(id, size);
    config.vote_resend_interval_ticks = RESEND_TICKS;
    config.vote_resends_per_round_max = RESENDS_MAX;
    config
}

fn vote_reply(from: u64, to: u64, term: u64, vote_granted: bool) -> Message {
    message(
        from,
        to,
        term,
        MessageBody::RequestVoteReply(RequestVoteReply { vote_granted }),
    )
}

/// A candidate of term 1 (log empty) that sent its first requests.
fn candidate(size: u64) -> RawNode {
    let mut node = node_with_log(resend_config(0, size), 0, &[], 0);
    tick_times(&mut node, ELECTION_TICKS);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(drain(&mut node).len() as u64, size - 1, "first requests");
    node
}

#[test]
fn a_candidate_asks_again_only_the_peers_that_have_not_answered() {
    let mut node = candidate(5);
    // Node 1 refuses, node 2 grants: 2 of 5 votes, no majority yet.
    node.step(vote_reply(1, 0, 1, false)).unwrap();
    node.step(vote_reply(2, 0, 1, true)).unwrap();
    tick_times(&mut node, RESEND_TICKS - 1);
    assert!(!node.has_ready(), "nothing before the re-send interval");
    node.tick();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![vote_request(0, 3, 1, 0, 0), vote_request(0, 4, 1, 0, 0)],
        "same term, same log position, to the silent peers only"
    );
    assert_eq!(node.term(), 1, "a re-send is not a new round");
    // An answer to the re-send completes the majority.
    node.step(vote_reply(4, 0, 1, true)).unwrap();
    assert!(node.is_leader());
}

#[test]
fn re_sends_stop_at_the_cap_and_the_next_round_starts_a_new_count() {
    let mut node = candidate(3);
    let mut resends = Vec::new();
    for tick in 1..ELECTION_TICKS {
        node.tick();
        for sent in drain(&mut node) {
            resends.push((tick, sent));
        }
    }
    assert_eq!(
        resends,
        vec![
            (10, vote_request(0, 1, 1, 0, 0)),
            (10, vote_request(0, 2, 1, 0, 0)),
            (20, vote_request(0, 1, 1, 0, 0)),
            (20, vote_request(0, 2, 1, 0, 0)),
        ],
        "{RESENDS_MAX} re-sends, then silence until the timeout"
    );
    // The election timeout starts term 2 with fresh requests and a fresh
    // re-send count.
    node.tick();
    assert_eq!(
        drain(&mut node),
        vec![vote_request(0, 1, 2, 0, 0), vote_request(0, 2, 2, 0, 0)]
    );
    tick_times(&mut node, RESEND_TICKS);
    assert_eq!(
        drain(&mut node),
        vec![vote_request(0, 1, 2, 0, 0), vote_request(0, 2, 2, 0, 0)],
        "the count restarted with the round"
    );
}

#[test]
fn a_pre_candidate_re_sends_pre_votes_for_the_same_next_term() {
    let mut config = resend_config(0, 3);
    config.pre_vote = true;
    let mut node = node_with_log(config, 2, &[1, 2], 0);
    tick_times(&mut node, ELECTION_TICKS);
    assert_eq!(node.role(), Role::PreCandidate);
    drain(&mut node);
    node.step(pre_vote_reply(1, 0, 2, false)).unwrap();
    tick_times(&mut node, RESEND_TICKS);
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.messages,
        vec![pre_vote(0, 2, 3, 2, 2)],
        "to node 2 only, still for term 3"
    );
    assert_eq!(ready.hard_state, None, "a pre-vote changes no state");
    // The pre-vote granted in reply to the re-send starts the election,
    // whose requests go to everyone.
    node.step(pre_vote_reply(2, 0, 3, true)).unwrap();
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(
        take_ready(&mut node).messages,
        vec![vote_request(0, 1, 3, 2, 2), vote_request(0, 2, 3, 2, 2)]
    );
}

#[test]
fn a_candidate_that_heard_from_everyone_sends_nothing_more() {
    let mut node = candidate(5);
    for voter in 1..=3 {
        node.step(vote_reply(voter, 0, 1, false)).unwrap();
    }
    node.step(vote_reply(4, 0, 1, true)).unwrap();
    assert_eq!(node.role(), Role::Candidate, "2 of 5");
    drain(&mut node);
    tick_times(&mut node, ELECTION_TICKS - 1);
    assert!(
        !node.has_ready(),
        "every peer answered: nobody to ask again"
    );
}

#[test]
fn a_duplicate_grant_from_a_re_send_counts_once() {
    let mut node = candidate(5);
    node.step(vote_reply(1, 0, 1, true)).unwrap();
    tick_times(&mut node, RESEND_TICKS);
    drain(&mut node);
    // Node 1 also answers a copy that crossed its first reply.
    node.step(vote_reply(1, 0, 1, true)).unwrap();
    assert_eq!(node.role(), Role::Candidate, "2 of 5, not 3");
}

#[test]
fn a_voter_grants_a_re_sent_request_again_and_no_other_candidate() {
    let mut voter = node_with_log(resend_config(1, 3), 0, &[], 0);
    voter.step(vote_request(0, 1, 1, 0, 0)).unwrap();
    assert_eq!(drain(&mut voter), vec![vote_reply(1, 0, 1, true)]);
    // The reply was lost; the candidate asks again.
    voter.step(vote_request(0, 1, 1, 0, 0)).unwrap();
    assert_eq!(drain(&mut voter), vec![vote_reply(1, 0, 1, true)]);
    voter.step(vote_request(2, 1, 1, 0, 0)).unwrap();
    assert_eq!(
        drain(&mut voter),
        vec![vote_reply(1, 2, 1, false)],
        "still one vote per term"
    );
}

#[test]
fn followers_and_leaders_re_send_nothing() {
    let mut follower = node_with_log(resend_config(1, 3), 1, &[1], 0);
    follower.step(append(0, 1, 1, (1, 1), vec![], 1)).unwrap();
    drain(&mut follower);
    tick_times(&mut follower, ELECTION_TICKS - 1);
    assert!(!follower.has_ready());

    let mut leader = candidate(3);
    leader.step(vote_reply(1, 0, 1, true)).unwrap();
    assert!(leader.is_leader());
    drain(&mut leader);
    let mut sent = Vec::new();
    for _ in 0..ELECTION_TICKS {
        leader.tick();
        sent.extend(drain(&mut leader));
    }
    assert!(
        sent.iter().all(|m| !matches!(
            m.body,
            MessageBody::RequestVote(_) | MessageBody::PreVote(_)
        )),
        "a leader sends no vote requests: {sent:?}"
    );
}
