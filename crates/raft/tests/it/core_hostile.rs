//! Exact-output tests of forged and corrupt peer messages: each is refused
//! with its typed reason, counted, and changes nothing (the node's whole
//! state, as its `Debug` shows it, is the same after as before, and it has
//! nothing to persist or send). Before `core/validate.rs` each of these
//! crashed the node (an assert, an index out of range, an overflow) or
//! stored something that crashed it at every restart.

use crate::fixture;

use fixture::*;
use raft::core::{
    AppendEntriesReply, Config, Conflict, Heartbeat, HeartbeatReply, InstallSnapshot,
    InstallSnapshotReply, MAX_TERM, MAX_TERM_STEP, Message, MessageBody, PayloadCheck, RawNode,
    Role, Snapshot, SnapshotMeta, StepError,
};

/// The node's state without its refusal counter.
fn fingerprint(node: &RawNode) -> String {
    format!("{node:?}").replace(
        &format!("refused_messages: {}", node.refused_messages()),
        "",
    )
}

/// Steps `message`, which must be refused without any effect; returns why.
fn refused(node: &mut RawNode, message: Message) -> StepError {
    assert!(!node.has_ready(), "test starts from a drained node");
    let before = fingerprint(node);
    let count = node.refused_messages();
    let error = node.step(message).expect_err("a forged message is refused");
    assert_eq!(fingerprint(node), before, "refusal changed the node");
    assert!(
        !node.has_ready(),
        "refusal left something to persist or send"
    );
    assert_eq!(node.refused_messages(), count + 1, "refusal counted");
    error
}

/// Leader (node 0) of term 1 of 3 with entries 1 and 2 of its term.
fn leader() -> RawNode {
    let mut node = node_with_log(config(0, 3), 0, &[], 0);
    elect(&mut node);
    node.propose(b"a".to_vec()).unwrap();
    node.propose(b"b".to_vec()).unwrap();
    drain(&mut node);
    node
}

/// Follower (node 1) of node 0 in term 2, log of terms [1, 2], 1 committed.
fn follower() -> RawNode {
    let mut node = node_with_log(config(1, 3), 2, &[1, 2], 1);
    let heartbeat = Heartbeat {
        commit_index: 1,
        read_id: 0,
    };
    node.step(message(0, 1, 2, MessageBody::Heartbeat(heartbeat)))
        .unwrap();
    drain(&mut node);
    assert_eq!(node.leader_id(), Some(0));
    node
}

fn heartbeat(from: u64, term: u64) -> Message {
    let heartbeat = Heartbeat {
        commit_index: 0,
        read_id: 0,
    };
    message(from, 0, term, MessageBody::Heartbeat(heartbeat))
}

fn snapshot_piece(from: u64, to: u64, term: u64, meta: SnapshotMeta, data: &[u8]) -> Message {
    let snapshot = Snapshot {
        meta,
        data: data.to_vec().into(),
    };
    message(
        from,
        to,
        term,
        MessageBody::InstallSnapshot(InstallSnapshot::piece(&snapshot, 0, 1 << 20)),
    )
}

#[test]
fn leader_messages_of_the_leaders_own_term_are_refused() {
    let mut node = leader();
    let second = StepError::SecondLeader { from: 2, term: 1 };
    assert_eq!(refused(&mut node, heartbeat(2, 1)), second);
    let append = append(2, 0, 1, (2, 1), vec![entry(3, 1)], 3);
    assert_eq!(refused(&mut node, append), second);
    let meta = SnapshotMeta::at(9, 1);
    let install = snapshot_piece(2, 0, 1, meta, b"state");
    assert_eq!(refused(&mut node, install), second);
    assert_eq!(
        second.to_string(),
        "node 2 acts as leader of term 1, which has another leader"
    );
    assert!(node.is_leader());
    assert_eq!(node.refused_messages(), 3);
}

#[test]
fn a_follower_refuses_a_second_leader_in_its_leaders_term() {
    let mut node = follower();
    let mut forged = heartbeat(2, 2);
    forged.to = 1;
    assert_eq!(
        refused(&mut node, forged),
        StepError::SecondLeader { from: 2, term: 2 }
    );
    assert_eq!(node.leader_id(), Some(0));
}

#[test]
fn entries_with_an_index_gap_are_refused() {
    let mut node = follower();
    let gap = append(0, 1, 2, (2, 2), vec![entry(3, 2), entry(5, 2)], 2);
    assert_eq!(
        refused(&mut node, gap),
        StepError::EntryIndexGap {
            expected: 4,
            found: 5
        }
    );
    // Not starting right after prev_log_index either.
    let detached = append(0, 1, 2, (1, 1), vec![entry(7, 2)], 2);
    assert_eq!(
        refused(&mut node, detached),
        StepError::EntryIndexGap {
            expected: 2,
            found: 7
        }
    );
    assert_eq!(node.log().last_index(), 2);
}

#[test]
fn entry_terms_out_of_order_or_beyond_the_message_are_refused() {
    let mut node = follower();
    let backwards = append(0, 1, 2, (2, 2), vec![entry(3, 2), entry(4, 1)], 2);
    assert_eq!(
        refused(&mut node, backwards),
        StepError::EntryTermOutOfOrder {
            index: 4,
            entry_term: 1,
            previous_term: 2
        }
    );
    let future = append(0, 1, 2, (2, 2), vec![entry(3, 3)], 2);
    assert_eq!(
        refused(&mut node, future),
        StepError::EntryTermAboveMessage {
            index: 3,
            entry_term: 3,
            message_term: 2
        }
    );
}

#[test]
fn an_entry_older_than_the_committed_entry_before_it_is_refused() {
    // Log [1, 2], both committed. The request's prev (index 1) is below the
    // commit index, so entry 2 is dropped and entry 3 follows committed
    // entry 2 of term 2: term 1 cannot follow it (it hit the log's append
    // assert).
    let mut node = node_with_log(config(1, 3), 3, &[1, 2], 2);
    let request = append(0, 1, 3, (1, 1), vec![entry(2, 1), entry(3, 1)], 3);
    assert_eq!(
        refused(&mut node, request),
        StepError::EntryTermOutOfOrder {
            index: 3,
            entry_term: 1,
            previous_term: 2
        }
    );
}

#[test]
fn a_reply_naming_an_index_beyond_the_leaders_log_is_refused() {
    let mut node = leader();
    let beyond = StepError::BeyondLeaderLog {
        index: 100,
        last_index: 2,
    };
    assert_eq!(refused(&mut node, append_ok(1, 0, 1, 100)), beyond);
    let rejection = AppendEntriesReply {
        success: false,
        match_index: 0,
        rejected_prev_index: u64::MAX,
        conflict: Some(Conflict {
            term: None,
            index: u64::MAX,
        }),
    };
    assert_eq!(
        refused(
            &mut node,
            message(1, 0, 1, MessageBody::AppendEntriesReply(rejection))
        ),
        StepError::BeyondLeaderLog {
            index: u64::MAX,
            last_index: 2
        }
    );
    let snapshot_reply = InstallSnapshotReply {
        match_index: 100,
        snapshot_index: 0,
        received_bytes: 0,
    };
    assert_eq!(
        refused(
            &mut node,
            message(1, 0, 1, MessageBody::InstallSnapshotReply(snapshot_reply))
        ),
        beyond
    );
    // The honest answer still works.
    node.step(append_ok(1, 0, 1, 2)).unwrap();
    assert_eq!(node.log().commit_index(), 2);
}

#[test]
fn a_heartbeat_reply_to_a_read_never_issued_is_refused() {
    let mut node = leader();
    let reply = HeartbeatReply { read_id: 99 };
    assert_eq!(
        refused(
            &mut node,
            message(1, 0, 1, MessageBody::HeartbeatReply(reply))
        ),
        StepError::UnknownReadId {
            read_id: 99,
            last_id: 0
        }
    );
}

#[test]
fn terms_that_would_overflow_or_leap_are_refused() {
    let mut node = follower();
    let forged = vote_request(2, 1, u64::MAX, 10, 10);
    assert_eq!(
        refused(&mut node, forged),
        StepError::TermTooLarge {
            term: u64::MAX,
            limit: 2 + MAX_TERM_STEP
        }
    );
    // The largest step is accepted (and raises the term).
    let mut leap = heartbeat(0, 2 + MAX_TERM_STEP);
    leap.to = 1;
    node.step(leap).unwrap();
    assert_eq!(node.term(), 2 + MAX_TERM_STEP);
}

#[test]
fn a_node_at_the_largest_term_refuses_more_and_does_not_campaign() {
    let mut node = node_with_log(config(1, 3), MAX_TERM, &[1], 0);
    let forged = vote_request(2, 1, MAX_TERM + 1, 10, 10);
    assert_eq!(
        refused(&mut node, forged),
        StepError::TermTooLarge {
            term: MAX_TERM + 1,
            limit: MAX_TERM
        }
    );
    // `term + 1` would pass what peers accept: the node stays a follower.
    tick_times(&mut node, 3 * ELECTION_TICKS);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), MAX_TERM);
    assert!(drain(&mut node).is_empty());
}

#[test]
fn indexes_that_would_overflow_are_refused() {
    let mut node = follower();
    let request = append(0, 1, 2, (u64::MAX, 2), vec![entry(0, 2)], 0);
    assert_eq!(
        refused(&mut node, request),
        StepError::IndexTooLarge {
            index: u64::MAX,
            limit: raft::core::MAX_INDEX
        }
    );
    let meta = SnapshotMeta::at(u64::MAX, 2);
    assert_eq!(
        refused(&mut node, snapshot_piece(0, 1, 2, meta, b"state")),
        StepError::IndexTooLarge {
            index: u64::MAX,
            limit: raft::core::MAX_INDEX
        }
    );
}

/// The service's check in these tests: a payload is usable if it starts
/// with "ok".
fn with_payload_check(mut config: Config) -> Config {
    config.payload_check = Some(PayloadCheck::new(|kind, data| {
        if data.starts_with(b"ok") {
            Ok(())
        } else {
            Err(format!("{kind:?} does not start with ok"))
        }
    }));
    config
}

#[test]
fn an_entry_the_service_cannot_decode_is_refused_before_it_is_stored() {
    let mut node = node_with_log(with_payload_check(config(1, 3)), 2, &[], 0);
    let mut good = entry(1, 2);
    good.data = b"ok 1".to_vec().into();
    let mut bad = entry(2, 2);
    bad.data = b"garbage".to_vec().into();
    let request = append(0, 1, 2, (0, 0), vec![good.clone(), bad], 0);
    assert_eq!(
        refused(&mut node, request),
        StepError::UnusablePayload {
            index: 2,
            reason: "Entry does not start with ok".to_string()
        }
    );
    // A usable entry is stored as before.
    node.step(append(0, 1, 2, (0, 0), vec![good], 0)).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(ready.entries.len(), 1);
}

#[test]
fn a_snapshot_the_service_cannot_decode_is_refused_whole() {
    let mut node = node_with_log(with_payload_check(config(1, 3)), 2, &[], 0);
    let meta = SnapshotMeta::at(5, 2);
    node.step(snapshot_piece(0, 1, 2, meta.clone(), b"garbage"))
        .unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(ready.snapshot, None, "nothing to persist or apply");
    assert!(ready.entries.is_empty());
    assert_eq!(node.refused_messages(), 1);
    assert_eq!(node.log().snapshot_meta(), &SnapshotMeta::default());
    // The leader is told to start over from byte 0.
    assert_eq!(
        ready.messages,
        vec![message(
            1,
            0,
            2,
            MessageBody::InstallSnapshotReply(InstallSnapshotReply {
                match_index: 0,
                snapshot_index: 5,
                received_bytes: 0,
            })
        )]
    );
    // A usable one installs.
    node.step(snapshot_piece(0, 1, 2, meta.clone(), b"ok state"))
        .unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.snapshot.map(|s| s.snapshot.data),
        Some(b"ok state".to_vec().into())
    );
    assert_eq!(node.log().snapshot_meta(), &meta);
}
