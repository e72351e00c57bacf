//! Exact-output tests of leadership transfer (Raft thesis 3.10): the
//! leader stops taking proposals, brings the target up to date, sends it
//! `TimeoutNow`; the target campaigns at once, past PreVote and past the
//! voters' leader stickiness; a transfer that does not finish in time is
//! abandoned.

use crate::fixture;

use fixture::*;
use raft::core::{
    Heartbeat, MembershipChange, MembershipError, MessageBody, ProposeError, RawNode, RequestVote,
    RequestVoteReply, Role, TransferError,
};

/// Node 0 of 3, leader of term 2 with a command of its term committed at
/// index 2 and node 1 caught up to it; node 2 has answered nothing.
fn leader() -> RawNode {
    let mut node = node_with_log(config_with_prevote_and_check_quorum(0, 3), 1, &[1], 1);
    tick_times(&mut node, ELECTION_TICKS);
    let requests = drain(&mut node);
    assert!(matches!(requests[0].body, MessageBody::PreVote(_)));
    node.step(pre_vote_reply(1, 0, 2, true)).unwrap();
    drain(&mut node);
    node.step(message(
        1,
        0,
        2,
        MessageBody::RequestVoteReply(RequestVoteReply { vote_granted: true }),
    ))
    .unwrap();
    assert!(node.is_leader());
    drain(&mut node);
    node.propose(b"first".to_vec()).unwrap();
    drain(&mut node);
    node.step(append_ok(1, 0, 2, 2)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), 2);
    node
}

#[test]
fn a_caught_up_target_gets_timeout_now_at_once_and_proposals_stop() {
    let mut node = leader();
    node.transfer_leader(1).unwrap();
    assert_eq!(node.transfer_target(), Some(1));
    assert_eq!(
        take_ready(&mut node).messages,
        vec![message(0, 1, 2, MessageBody::TimeoutNow)]
    );
    assert_eq!(
        node.propose(b"late".to_vec()),
        Err(ProposeError::TransferInProgress { target: 1 })
    );
    assert_eq!(
        node.propose_membership_change(MembershipChange::AddLearner(5)),
        Err(MembershipError::TransferInProgress { target: 1 })
    );
    assert_eq!(node.log().last_index(), 2, "nothing appended");
    // The target's vote request of the next term ends this leadership.
    let request = RequestVote {
        last_log_index: 2,
        last_log_term: 2,
        leadership_transfer: true,
    };
    node.step(message(1, 0, 3, MessageBody::RequestVote(request)))
        .unwrap();
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.transfer_target(), None);
    assert_eq!(node.voted_for(), Some(1));
}

#[test]
fn a_lagging_target_is_brought_up_to_date_first() {
    let mut node = leader();
    node.transfer_leader(2).unwrap();
    let messages = take_ready(&mut node).messages;
    assert!(
        !messages
            .iter()
            .any(|m| matches!(m.body, MessageBody::TimeoutNow)),
        "node 2 has not acknowledged anything yet: {messages:?}"
    );
    node.step(append_ok(2, 0, 2, 1)).unwrap();
    let messages = take_ready(&mut node).messages;
    assert_eq!(
        appends_to(&messages, 2),
        vec![(1, 1)],
        "the missing entry goes out"
    );
    assert!(
        !messages
            .iter()
            .any(|m| matches!(m.body, MessageBody::TimeoutNow))
    );
    node.step(append_ok(2, 0, 2, 2)).unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![message(0, 2, 2, MessageBody::TimeoutNow)]
    );
    // Only once per transfer.
    node.step(append_ok(2, 0, 2, 2)).unwrap();
    assert!(drain(&mut node).is_empty());
}

#[test]
fn the_target_campaigns_at_once_without_prevote() {
    let mut node = node_with_log(config_with_prevote_and_check_quorum(1, 3), 2, &[1, 2], 2);
    node.step(message(
        0,
        1,
        2,
        MessageBody::Heartbeat(Heartbeat {
            commit_index: 2,
            read_id: 0,
        }),
    ))
    .unwrap();
    drain(&mut node);
    node.step(message(0, 1, 2, MessageBody::TimeoutNow))
        .unwrap();
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.term(), 3);
    let request = RequestVote {
        last_log_index: 2,
        last_log_term: 2,
        leadership_transfer: true,
    };
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.messages,
        vec![
            message(1, 0, 2, MessageBody::TimeoutNowReply),
            message(1, 0, 3, MessageBody::RequestVote(request.clone())),
            message(1, 2, 3, MessageBody::RequestVote(request)),
        ]
    );
}

#[test]
fn voters_grant_a_transfer_vote_despite_a_live_leader_but_not_an_ordinary_one() {
    let heard_from_leader = || {
        let mut node = node_with_log(config_with_prevote_and_check_quorum(2, 3), 2, &[1, 2], 2);
        node.step(message(
            0,
            2,
            2,
            MessageBody::Heartbeat(Heartbeat {
                commit_index: 2,
                read_id: 0,
            }),
        ))
        .unwrap();
        drain(&mut node);
        node
    };
    let mut node = heard_from_leader();
    node.step(vote_request(1, 2, 3, 2, 2)).unwrap();
    assert_eq!(
        drain(&mut node),
        vec![message(
            2,
            1,
            2,
            MessageBody::RequestVoteReply(RequestVoteReply {
                vote_granted: false
            })
        )],
        "leader stickiness: refused, term kept"
    );
    let mut node = heard_from_leader();
    let request = RequestVote {
        last_log_index: 2,
        last_log_term: 2,
        leadership_transfer: true,
    };
    node.step(message(1, 2, 3, MessageBody::RequestVote(request)))
        .unwrap();
    assert_eq!(
        drain(&mut node),
        vec![message(
            2,
            1,
            3,
            MessageBody::RequestVoteReply(RequestVoteReply { vote_granted: true })
        )]
    );
}

#[test]
fn a_transfer_that_does_not_finish_in_time_is_abandoned() {
    let mut node = leader();
    node.transfer_leader(2).unwrap();
    drain(&mut node);
    tick_times(&mut node, ELECTION_TICKS - 1);
    drain(&mut node);
    assert_eq!(node.transfer_target(), Some(2));
    node.tick();
    assert_eq!(node.transfer_target(), None);
    assert!(node.is_leader());
    assert_eq!(node.propose(b"again".to_vec()), Ok((3, 2)));
}

#[test]
fn transfers_to_non_voters_or_from_followers_are_refused() {
    let mut node = leader();
    assert_eq!(
        node.transfer_leader(0),
        Err(TransferError::AlreadyLeader { target: 0 })
    );
    assert_eq!(
        node.transfer_leader(7),
        Err(TransferError::NotAVoter { target: 7 })
    );
    node.propose_membership_change(MembershipChange::AddLearner(3))
        .unwrap();
    assert_eq!(
        node.transfer_leader(3),
        Err(TransferError::NotAVoter { target: 3 })
    );
    let mut follower = node_with_log(config(1, 3), 2, &[1], 1);
    assert_eq!(
        follower.transfer_leader(2),
        Err(TransferError::NotLeader {
            term: 2,
            leader_hint: None
        })
    );
}

#[test]
fn a_learner_told_to_time_out_does_not_campaign() {
    let mut membership = raft::core::Membership::from_voters([0, 1, 2]);
    membership.learners.insert(3);
    let learner_added = raft::core::Entry {
        index: 1,
        term: 1,
        kind: raft::core::EntryKind::Config,
        data: membership.encode().into(),
    };
    let mut node = node_with_log(config(3, 1), 1, &[], 0);
    node.step(append(0, 3, 1, (0, 0), vec![learner_added], 1))
        .unwrap();
    drain(&mut node);
    node.step(message(0, 3, 1, MessageBody::TimeoutNow))
        .unwrap();
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(
        drain(&mut node),
        vec![message(3, 0, 1, MessageBody::TimeoutNowReply)]
    );
}
