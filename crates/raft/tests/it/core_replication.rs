//! Exact-output tests of log replication and commitment (paper sections 5.3,
//! 5.4.2), fast conflict backup, batching and pipelining.

use crate::fixture;

use fixture::*;
use raft::core::{
    AppendEntriesReply, Conflict, Heartbeat, HeartbeatReply, MessageBody, ProgressState, RawNode,
    Role,
};

fn only_reply(node: &mut RawNode) -> AppendEntriesReply {
    let messages = take_ready(node).messages;
    assert_eq!(messages.len(), 1, "expected one reply, got {messages:?}");
    match &messages[0].body {
        MessageBody::AppendEntriesReply(reply) => reply.clone(),
        other => panic!("expected an append reply, got {other:?}"),
    }
}

fn rejection(rejected_prev_index: u64, conflict: Conflict) -> AppendEntriesReply {
    AppendEntriesReply {
        success: false,
        match_index: 0,
        rejected_prev_index,
        conflict: Some(conflict),
    }
}

fn success(match_index: u64) -> AppendEntriesReply {
    AppendEntriesReply {
        success: true,
        match_index,
        rejected_prev_index: 0,
        conflict: None,
    }
}

// ---- follower side ----------------------------------------------------------

#[test]
fn follower_too_short_hints_its_last_index_plus_one() {
    let mut node = node_with_log(config(1, 3), 1, &[1, 1], 0);
    node.step(append(0, 1, 1, (5, 1), vec![entry(6, 1)], 0))
        .unwrap();
    assert_eq!(
        only_reply(&mut node),
        rejection(
            5,
            Conflict {
                term: None,
                index: 3
            }
        )
    );
    assert_eq!(
        node.log().last_index(),
        2,
        "nothing appended after a mismatch"
    );
}

#[test]
fn follower_with_conflicting_term_hints_the_first_index_of_that_term() {
    let mut node = node_with_log(config(1, 3), 3, &[1, 1, 2, 2, 2], 0);
    node.step(append(0, 1, 3, (5, 3), vec![], 0)).unwrap();
    assert_eq!(
        only_reply(&mut node),
        rejection(
            5,
            Conflict {
                term: Some(2),
                index: 3
            }
        )
    );
}

#[test]
fn follower_replaces_a_conflicting_tail_and_persists_the_new_entries() {
    let mut node = node_with_log(config(1, 3), 3, &[1, 1, 2, 2], 0);
    node.step(append(0, 1, 3, (2, 1), vec![entry(3, 3), entry(4, 3)], 1))
        .unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.entries,
        vec![entry(3, 3), entry(4, 3)],
        "the rewritten tail is persisted"
    );
    assert_eq!(ready.committed_entries, vec![entry(1, 1)]);
    assert_eq!(
        ready.messages,
        vec![message(
            1,
            0,
            3,
            MessageBody::AppendEntriesReply(success(4))
        )]
    );
    assert_eq!(node.log().term_at(3), Some(3));
}

#[test]
fn follower_keeps_entries_a_delayed_shorter_request_already_delivered() {
    let mut node = node_with_log(config(1, 3), 2, &[1], 0);
    node.step(append(0, 1, 2, (1, 1), vec![entry(2, 2), entry(3, 2)], 0))
        .unwrap();
    drain(&mut node);
    // A reordered older request with fewer entries must not cut the log.
    node.step(append(0, 1, 2, (1, 1), vec![entry(2, 2)], 0))
        .unwrap();
    assert_eq!(only_reply(&mut node), success(2));
    assert_eq!(node.log().last_index(), 3);
}

#[test]
fn follower_commit_is_bounded_by_the_entries_the_request_covers() {
    let mut node = node_with_log(config(1, 3), 2, &[1, 1, 1], 0);
    // The leader has committed 10, but this request only vouches for 2.
    node.step(append(0, 1, 2, (1, 1), vec![entry(2, 1)], 10))
        .unwrap();
    assert_eq!(node.log().commit_index(), 2);
}

#[test]
fn follower_answers_a_request_below_its_commit_index_with_its_commit_index() {
    let mut node = node_with_log(config(1, 3), 2, &[1, 1, 1, 1], 4);
    node.step(append(0, 1, 2, (1, 1), vec![entry(2, 1)], 4))
        .unwrap();
    assert_eq!(only_reply(&mut node), success(4));
}

#[test]
fn heartbeat_commits_and_restarts_the_election_timer() {
    let mut node = node_with_log(config(1, 3), 1, &[1, 1], 0);
    tick_times(&mut node, ELECTION_TICKS - 1);
    node.step(message(
        0,
        1,
        1,
        MessageBody::Heartbeat(Heartbeat {
            commit_index: 2,
            read_id: 0,
        }),
    ))
    .unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.messages,
        vec![message(
            1,
            0,
            1,
            MessageBody::HeartbeatReply(HeartbeatReply { read_id: 0 })
        )]
    );
    assert_eq!(ready.committed_entries, vec![entry(1, 1), entry(2, 1)]);
    tick_times(&mut node, ELECTION_TICKS - 1);
    assert_eq!(node.role(), Role::Follower);
}

// ---- leader side ------------------------------------------------------------

/// Node 0 leads a 3-node group; followers 1 and 2 are confirmed up to the
/// leader's last index and in Replicate state.
fn replicating_leader(terms: &[u64], tune: impl Fn(&mut raft::core::Config)) -> RawNode {
    let mut config = config(0, 3);
    tune(&mut config);
    let term = terms.last().copied().unwrap_or(0);
    let mut node = node_with_log(config, term, terms, 0);
    elect(&mut node);
    let (last, term) = (node.log().last_index(), node.term());
    for follower in [1, 2] {
        node.step(append_ok(follower, 0, term, last)).unwrap();
    }
    drain(&mut node);
    node
}

#[test]
fn leader_skips_a_whole_term_it_does_not_have() {
    let mut node = node_with_log(config(0, 3), 5, &[1, 1, 1, 4, 4, 5, 5], 0);
    elect(&mut node);
    let term = node.term();
    // Probe at 7 rejected; the follower's entry at 7 is of term 2, first at 4.
    let reply = rejection(
        7,
        Conflict {
            term: Some(2),
            index: 4,
        },
    );
    node.step(message(1, 0, term, MessageBody::AppendEntriesReply(reply)))
        .unwrap();
    assert_eq!(node.progress(1).unwrap().next_index, 4);
    assert_eq!(appends_to(&take_ready(&mut node).messages, 1), vec![(3, 4)]);
}

#[test]
fn leader_jumps_to_the_end_of_a_term_it_shares() {
    let mut node = node_with_log(config(0, 3), 5, &[1, 1, 1, 4, 4, 5, 5], 0);
    elect(&mut node);
    let term = node.term();
    let reply = rejection(
        7,
        Conflict {
            term: Some(4),
            index: 4,
        },
    );
    node.step(message(1, 0, term, MessageBody::AppendEntriesReply(reply)))
        .unwrap();
    assert_eq!(
        node.progress(1).unwrap().next_index,
        6,
        "after our last entry of term 4"
    );
}

#[test]
fn leader_backs_up_to_a_short_follower_end() {
    let mut node = node_with_log(config(0, 3), 5, &[1, 1, 1, 4, 4, 5, 5], 0);
    elect(&mut node);
    let term = node.term();
    let reply = rejection(
        7,
        Conflict {
            term: None,
            index: 3,
        },
    );
    node.step(message(1, 0, term, MessageBody::AppendEntriesReply(reply)))
        .unwrap();
    assert_eq!(node.progress(1).unwrap().next_index, 3);
}

#[test]
fn leader_ignores_a_rejection_of_an_older_probe() {
    let mut node = node_with_log(config(0, 3), 5, &[1, 1, 1, 4, 4, 5, 5], 0);
    elect(&mut node);
    let term = node.term();
    let reply = rejection(
        3,
        Conflict {
            term: None,
            index: 1,
        },
    );
    node.step(message(1, 0, term, MessageBody::AppendEntriesReply(reply)))
        .unwrap();
    assert_eq!(
        node.progress(1).unwrap().next_index,
        8,
        "the probe in flight is at 7, not 3"
    );
}

#[test]
fn figure8_old_term_entries_commit_only_with_a_current_term_entry() {
    // Entry 2 of term 2 is on a majority once node 1 acknowledges it, but a
    // leader of term 4 must not count replicas of an older term's entry.
    let mut node = node_with_log(config(0, 3), 3, &[1, 2], 0);
    elect(&mut node);
    assert_eq!(node.term(), 4);
    node.step(append_ok(1, 0, 4, 2)).unwrap();
    assert_eq!(
        node.log().commit_index(),
        0,
        "Figure 8: no commit by counting old-term replicas"
    );
    let (index, term) = node.propose(b"x".to_vec()).unwrap();
    assert_eq!((index, term), (3, 4));
    drain(&mut node);
    node.step(append_ok(1, 0, 4, 3)).unwrap();
    assert_eq!(
        node.log().commit_index(),
        3,
        "the current-term entry commits, and all before it"
    );
}

#[test]
fn leader_commits_once_a_majority_holds_the_entry() {
    let mut config = config(0, 5);
    config.noop_on_election = false;
    let mut node = node_with_log(config, 0, &[], 0);
    elect(&mut node);
    let term = node.term();
    node.propose(b"a".to_vec()).unwrap();
    drain(&mut node);
    node.step(append_ok(1, 0, term, 1)).unwrap();
    assert_eq!(node.log().commit_index(), 0, "2 of 5");
    node.step(append_ok(3, 0, term, 1)).unwrap();
    assert_eq!(node.log().commit_index(), 1, "3 of 5");
    let ready = take_ready(&mut node);
    assert_eq!(ready.committed_entries.len(), 1);
    assert_eq!(ready.hard_state.map(|h| h.commit_index), Some(1));
}

#[test]
fn leader_counts_its_own_entry_only_once_persisted() {
    let mut node = node_with_log(config(0, 1), 0, &[], 0);
    elect(&mut node);
    node.propose(b"a".to_vec()).unwrap();
    let ready = node.ready();
    assert_eq!(ready.entries.len(), 1);
    assert!(
        ready.committed_entries.is_empty(),
        "not committed before it is on disk"
    );
    node.advance(ready);
    assert_eq!(take_ready(&mut node).committed_entries.len(), 1);
}

#[test]
fn proposals_are_refused_by_followers_with_a_leader_hint() {
    let mut node = node_with_log(config(1, 3), 1, &[], 0);
    node.step(append(0, 1, 1, (0, 0), vec![], 0)).unwrap();
    let error = node.propose(b"x".to_vec()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "not the leader in term 1 (leader hint: Some(0))"
    );
}

#[test]
fn proposals_are_batched_into_bounded_messages() {
    let mut node = replicating_leader(&[], |config| {
        config.max_entries_per_message = 3;
        config.max_inflight_messages = 8;
    });
    for i in 0..7 {
        node.propose(vec![i]).unwrap();
    }
    let messages = take_ready(&mut node).messages;
    assert_eq!(appends_to(&messages, 1), vec![(0, 3), (3, 3), (6, 1)]);
    assert_eq!(appends_to(&messages, 2), vec![(0, 3), (3, 3), (6, 1)]);
}

#[test]
fn batches_are_bounded_in_bytes_but_never_empty() {
    let mut node = replicating_leader(&[], |config| {
        config.max_bytes_per_message = 100;
    });
    node.propose(vec![0; 60]).unwrap();
    node.propose(vec![0; 60]).unwrap();
    node.propose(vec![0; 500]).unwrap();
    let messages = take_ready(&mut node).messages;
    assert_eq!(appends_to(&messages, 1), vec![(0, 1), (1, 1), (2, 1)]);
}

#[test]
fn pipelining_is_bounded_by_max_inflight_and_resumes_on_acknowledgement() {
    let mut node = replicating_leader(&[], |config| {
        config.max_entries_per_message = 1;
        config.max_inflight_messages = 2;
    });
    let term = node.term();
    for i in 0..5 {
        node.propose(vec![i]).unwrap();
    }
    assert_eq!(
        appends_to(&take_ready(&mut node).messages, 1),
        vec![(0, 1), (1, 1)]
    );
    assert!(
        appends_to(&take_ready(&mut node).messages, 1).is_empty(),
        "two batches in flight: the pipeline is full"
    );
    node.step(append_ok(1, 0, term, 1)).unwrap();
    assert_eq!(appends_to(&take_ready(&mut node).messages, 1), vec![(2, 1)]);
    node.step(append_ok(1, 0, term, 3)).unwrap();
    assert_eq!(
        appends_to(&take_ready(&mut node).messages, 1),
        vec![(3, 1), (4, 1)]
    );
}

#[test]
fn probe_sends_one_message_until_answered_or_the_next_heartbeat() {
    let mut node = node_with_log(config(0, 3), 1, &[1, 1], 0);
    let probes = elect(&mut node);
    assert_eq!(appends_to(&probes, 1), vec![(2, 0)]);
    node.propose(b"x".to_vec()).unwrap();
    assert!(
        appends_to(&take_ready(&mut node).messages, 1).is_empty(),
        "probe in flight"
    );
    tick_times(&mut node, HEARTBEAT_TICKS);
    assert_eq!(
        appends_to(&take_ready(&mut node).messages, 1),
        vec![(2, 1)],
        "re-probe at heartbeat"
    );
}

#[test]
fn stalled_pipeline_falls_back_to_probe_at_the_heartbeat() {
    let mut node = replicating_leader(&[], |_| {});
    let term = node.term();
    node.propose(b"lost".to_vec()).unwrap();
    assert_eq!(appends_to(&take_ready(&mut node).messages, 1), vec![(0, 1)]);
    node.step(append_ok(2, 0, term, 1)).unwrap();
    drain(&mut node);
    // Node 1's batch is lost. The first heartbeat only starts the clock
    // (an acknowledgement arrived earlier in this interval)...
    tick_times(&mut node, HEARTBEAT_TICKS);
    let messages = take_ready(&mut node).messages;
    assert_eq!(
        appends_to(&messages, 1),
        vec![],
        "still waiting: {messages:?}"
    );
    // ...a whole interval with a batch in flight and no acknowledgement is a stall.
    tick_times(&mut node, HEARTBEAT_TICKS);
    let messages = take_ready(&mut node).messages;
    assert_eq!(
        appends_to(&messages, 1),
        vec![(0, 1)],
        "resent from the match index as a probe"
    );
    assert_eq!(
        node.progress(1).unwrap().state,
        ProgressState::Probe { paused: true }
    );
    assert!(
        messages.iter().any(|m| m.to == 2
            && m.body
                == MessageBody::Heartbeat(Heartbeat {
                    commit_index: 1,
                    read_id: 0
                })),
        "the healthy follower gets a plain heartbeat carrying its commit: {messages:?}"
    );
}

#[test]
fn idle_leader_sends_one_heartbeat_per_follower_per_interval() {
    let mut node = replicating_leader(&[], |_| {});
    let mut heartbeats = 0;
    for _ in 0..10 * HEARTBEAT_TICKS {
        node.tick();
        heartbeats += drain(&mut node).len();
    }
    assert_eq!(heartbeats, 20, "10 intervals x 2 followers");
}

#[test]
fn uncommitted_entries_are_bounded() {
    let mut node = replicating_leader(&[], |config| config.max_uncommitted_entries = 3);
    for i in 0..3 {
        node.propose(vec![i]).unwrap();
    }
    let error = node.propose(vec![3]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "3 entries are uncommitted (limit 3); retry later"
    );
}
