//! Exact-output tests of ReadIndex reads (paper section 8).

use crate::fixture;

use fixture::*;
use raft::core::{Heartbeat, HeartbeatReply, MessageBody, RawNode, ReadIndexError, ReadState};

/// Node 0 leads 3 nodes and has committed entry 1 of its term.
fn leader_with_commit_in_term() -> RawNode {
    leader_with_commit_in_term_under(config(0, 3))
}

/// [`leader_with_commit_in_term`] with node 0 configured by `config`.
fn leader_with_commit_in_term_under(config: raft::core::Config) -> RawNode {
    let mut node = node_with_log(config, 0, &[], 0);
    elect(&mut node);
    let term = node.term();
    for follower in [1, 2] {
        node.step(append_ok(follower, 0, term, 0)).unwrap();
    }
    node.propose(b"w".to_vec()).unwrap();
    drain(&mut node);
    node.step(append_ok(1, 0, term, 1)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), 1);
    node
}

fn heartbeat_reply(from: u64, term: u64, read_id: u64) -> raft::core::Message {
    message(
        from,
        0,
        term,
        MessageBody::HeartbeatReply(HeartbeatReply { read_id }),
    )
}

#[test]
fn followers_refuse_reads_with_a_leader_hint() {
    let mut node = node_with_log(config(1, 3), 1, &[], 0);
    node.step(append(0, 1, 1, (0, 0), vec![], 0)).unwrap();
    assert_eq!(
        node.read_index(b"r".to_vec()),
        Err(ReadIndexError::NotLeader {
            term: 1,
            leader_hint: Some(0)
        })
    );
}

#[test]
fn a_new_leader_refuses_reads_until_an_entry_of_its_term_commits() {
    let mut node = node_with_log(config(0, 3), 1, &[1], 1);
    elect(&mut node);
    assert_eq!(
        node.read_index(b"r".to_vec()),
        Err(ReadIndexError::LeaderNotReady { term: 2 })
    );
}

#[test]
fn a_read_is_confirmed_by_a_majority_answering_its_heartbeat() {
    let mut node = leader_with_commit_in_term();
    let term = node.term();
    node.read_index(b"r1".to_vec()).unwrap();
    let messages = take_ready(&mut node).messages;
    assert_eq!(
        messages,
        vec![
            message(
                0,
                1,
                term,
                MessageBody::Heartbeat(Heartbeat {
                    commit_index: 1,
                    read_id: 1
                })
            ),
            message(
                0,
                2,
                term,
                MessageBody::Heartbeat(Heartbeat {
                    commit_index: 0,
                    read_id: 1
                })
            ),
        ],
        "the heartbeat carries each follower's safe commit index and the read id"
    );
    node.step(heartbeat_reply(2, term, 1)).unwrap();
    assert_eq!(
        take_ready(&mut node).read_states,
        vec![ReadState {
            index: 1,
            context: b"r1".to_vec()
        }]
    );
}

#[test]
fn an_answer_to_an_older_heartbeat_does_not_confirm_a_newer_read() {
    let mut node = leader_with_commit_in_term();
    let term = node.term();
    node.read_index(b"r1".to_vec()).unwrap();
    node.read_index(b"r2".to_vec()).unwrap();
    drain(&mut node);
    node.step(heartbeat_reply(1, term, 1)).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.read_states,
        vec![ReadState {
            index: 1,
            context: b"r1".to_vec()
        }]
    );
    node.step(heartbeat_reply(2, term, 2)).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.read_states,
        vec![ReadState {
            index: 1,
            context: b"r2".to_vec()
        }]
    );
}

#[test]
fn pending_reads_are_dropped_when_leadership_is_lost() {
    let mut node = leader_with_commit_in_term();
    let term = node.term();
    node.read_index(b"r".to_vec()).unwrap();
    drain(&mut node);
    node.step(append_ok(1, 0, term + 1, 0)).unwrap();
    node.step(heartbeat_reply(2, term + 1, 1)).unwrap();
    assert!(take_ready(&mut node).read_states.is_empty());
}

#[test]
fn periodic_heartbeats_repeat_the_newest_pending_read() {
    let mut node = leader_with_commit_in_term();
    node.read_index(b"r".to_vec()).unwrap();
    drain(&mut node);
    tick_times(&mut node, HEARTBEAT_TICKS);
    let read_ids = heartbeat_read_ids(&drain(&mut node));
    assert_eq!(
        read_ids,
        vec![1, 1],
        "a lost read heartbeat is retried with the next one"
    );
}

#[test]
fn a_single_node_confirms_reads_at_once() {
    let mut config = config(0, 1);
    config.noop_on_election = true;
    let mut node = node_with_log(config, 0, &[], 0);
    elect(&mut node);
    drain(&mut node);
    assert_eq!(
        node.log().commit_index(),
        1,
        "the no-op of the new term committed"
    );
    node.read_index(b"r".to_vec()).unwrap();
    assert_eq!(
        take_ready(&mut node).read_states,
        vec![ReadState {
            index: 1,
            context: b"r".to_vec()
        }]
    );
}

#[test]
fn pending_reads_are_bounded() {
    let mut node = leader_with_commit_in_term();
    let mut config_limit = 0;
    while node.read_index(vec![]).is_ok() {
        config_limit += 1;
        assert!(config_limit <= 4096, "unbounded pending reads");
    }
    assert_eq!(
        node.read_index(vec![]),
        Err(ReadIndexError::TooManyPendingReads {
            pending: 4096,
            limit: 4096
        })
    );
}

/// Node 0 leads 3 nodes with lease reads on and has committed entry 1 of
/// its term; no lease yet.
fn leader_with_leases() -> RawNode {
    let mut config = config(0, 3);
    config.check_quorum = true;
    config.lease_reads = true;
    let node = leader_with_commit_in_term_under(config);
    assert_eq!(node.lease_read(), None, "no lease before a confirmed round");
    node
}

/// The read ids the heartbeats in `messages` carry.
fn heartbeat_read_ids(messages: &[raft::core::Message]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::Heartbeat(heartbeat) => Some(heartbeat.read_id),
            _ => None,
        })
        .collect()
}

#[test]
fn with_leases_a_periodic_heartbeat_renews_the_lease_and_answers_no_read() {
    let mut node = leader_with_leases();
    let term = node.term();
    let read_lease_ms = raft::core::Config {
        lease_reads: true,
        ..config(0, 3)
    }
    .read_lease_ms();

    node.set_now_ms(1_000);
    tick_times(&mut node, HEARTBEAT_TICKS);
    let read_ids = heartbeat_read_ids(&drain(&mut node));
    assert_eq!(read_ids.len(), 2, "a heartbeat to each follower");
    assert!(
        read_ids[0] != 0 && read_ids[0] == read_ids[1],
        "the heartbeats carry one round of their own: {read_ids:?}"
    );
    node.set_now_ms(1_010);
    node.step(heartbeat_reply(2, term, read_ids[0])).unwrap();
    assert!(
        take_ready(&mut node).read_states.is_empty(),
        "the round answers no read"
    );
    assert_eq!(
        node.lease_read(),
        Some(raft::core::LeaseRead {
            commit_index: 1,
            until_ms: 1_000 + read_lease_ms
        }),
        "a majority's answer starts the lease from when the heartbeat left"
    );
    assert!(node.lease_valid());

    // The next heartbeat renews it from its own departure.
    node.set_now_ms(1_100);
    tick_times(&mut node, HEARTBEAT_TICKS);
    let next_id = heartbeat_read_ids(&drain(&mut node))[0];
    assert!(next_id > read_ids[0]);
    node.step(heartbeat_reply(1, term, next_id)).unwrap();
    assert_eq!(
        node.lease_read().map(|lease| lease.until_ms),
        Some(1_100 + read_lease_ms)
    );
}

#[test]
fn a_pending_read_round_renews_the_lease_without_a_round_of_its_own() {
    let mut node = leader_with_leases();
    node.set_now_ms(1_000);
    node.read_index(b"r".to_vec()).unwrap();
    let read_id = heartbeat_read_ids(&drain(&mut node))[0];
    tick_times(&mut node, HEARTBEAT_TICKS);
    assert_eq!(
        heartbeat_read_ids(&drain(&mut node)),
        vec![read_id, read_id],
        "the heartbeats repeat the read's round; no renewal round joins it"
    );
}

#[test]
fn no_renewal_round_once_a_transfer_started() {
    let mut node = leader_with_leases();
    node.set_now_ms(1_000);
    node.transfer_leader(1).unwrap();
    drain(&mut node);
    tick_times(&mut node, HEARTBEAT_TICKS);
    let read_ids = heartbeat_read_ids(&drain(&mut node));
    assert!(
        read_ids.iter().all(|&id| id == 0),
        "heartbeats carry no round: {read_ids:?}"
    );
    assert_eq!(node.lease_read(), None);
}

#[test]
fn a_round_sent_before_a_configuration_change_does_not_grant_the_lease_again() {
    let mut node = leader_with_leases();
    let term = node.term();
    node.set_now_ms(1_000);
    tick_times(&mut node, HEARTBEAT_TICKS);
    let round = heartbeat_read_ids(&drain(&mut node))[0];
    node.set_now_ms(1_005);
    node.propose_membership_change(raft::core::MembershipChange::AddLearner(3))
        .unwrap();
    drain(&mut node);
    node.set_now_ms(1_010);
    node.step(heartbeat_reply(1, term, round)).unwrap();
    assert_eq!(
        node.lease_read(),
        None,
        "the change ended the lease; a round sent before it does not restart it"
    );

    // A round sent after the change does.
    node.set_now_ms(1_100);
    tick_times(&mut node, HEARTBEAT_TICKS);
    let after = heartbeat_read_ids(&drain(&mut node))
        .into_iter()
        .find(|&id| id != 0)
        .expect("a renewal round");
    node.step(heartbeat_reply(1, term, after)).unwrap();
    assert!(node.lease_read().is_some());
}
