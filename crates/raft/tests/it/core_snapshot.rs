//! Exact-output tests of snapshots and log compaction (paper section 7).

use crate::fixture;

use fixture::*;
use raft::core::{
    InstallSnapshot, InstallSnapshotReply, Membership, MessageBody, ProgressState, ReadySnapshot,
    Snapshot, SnapshotError, SnapshotMeta,
};

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta::at(index, term),
        data: format!("state through {index}").into_bytes().into(),
    }
}

/// The whole snapshot in one piece (it is smaller than a piece).
fn install(from: u64, to: u64, term: u64, snapshot: Snapshot) -> raft::core::Message {
    message(
        from,
        to,
        term,
        MessageBody::InstallSnapshot(InstallSnapshot::piece(&snapshot, 0, usize::MAX)),
    )
}

/// The answer to the whole of `snapshot`, from a follower whose log now
/// matches up to `match_index`.
fn installed(match_index: u64, snapshot: &Snapshot) -> MessageBody {
    MessageBody::InstallSnapshotReply(InstallSnapshotReply {
        match_index,
        snapshot_index: snapshot.meta.last_included_index,
        received_bytes: snapshot.data.len() as u64,
    })
}

#[test]
fn install_snapshot_discards_a_log_that_does_not_contain_its_last_entry() {
    let mut node = node_with_log(config(1, 3), 2, &[1, 1, 1, 1, 1], 2);
    node.step(install(0, 1, 2, snapshot(7, 2))).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.snapshot,
        Some(ReadySnapshot {
            snapshot: snapshot(7, 2),
            persist: true,
            apply: true
        })
    );
    assert_eq!(
        ready.messages,
        vec![message(1, 0, 2, installed(7, &snapshot(7, 2)))]
    );
    assert!(
        ready.committed_entries.is_empty(),
        "entries 3-5 are superseded by the snapshot"
    );
    assert_eq!(ready.hard_state.map(|h| h.commit_index), Some(7));
    let log = node.log();
    assert_eq!(
        (log.first_index(), log.last_index(), log.applied_index()),
        (8, 7, 7)
    );
}

#[test]
fn install_snapshot_keeps_the_entries_after_a_matching_last_entry() {
    let mut node = node_with_log(config(1, 3), 1, &[1; 10], 0);
    node.step(install(0, 1, 1, snapshot(5, 1))).unwrap();
    let ready = take_ready(&mut node);
    assert!(ready.entries.is_empty(), "entries 6-10 were already stable");
    let log = node.log();
    assert_eq!(
        (log.first_index(), log.last_index(), log.commit_index()),
        (6, 10, 5)
    );
    assert_eq!(log.entry(6), Some(&entry(6, 1)));
}

#[test]
fn install_snapshot_at_or_below_the_commit_index_changes_nothing() {
    let mut node = node_with_log(config(1, 3), 1, &[1; 8], 8);
    node.step(install(0, 1, 1, snapshot(5, 1))).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(ready.snapshot, None);
    assert_eq!(
        ready.messages,
        vec![message(1, 0, 1, installed(8, &snapshot(5, 1)))]
    );
    assert_eq!(node.log().first_index(), 1);
}

/// Node 0 leads with its log compacted through 5 (term 1), entries 6-7.
fn compacted_leader() -> raft::core::RawNode {
    let entries = vec![entry(6, 1), entry(7, 1)];
    let mut node = node_with_snapshot(config(0, 3), 1, snapshot(5, 1), entries);
    elect(&mut node);
    node
}

#[test]
fn leader_sends_its_snapshot_when_the_next_entry_was_compacted() {
    let mut node = compacted_leader();
    let term = node.term();
    // Follower 1 has nothing: the probe at 7 is rejected, its log ends at 0.
    let reply = raft::core::AppendEntriesReply {
        success: false,
        match_index: 0,
        rejected_prev_index: 7,
        conflict: Some(raft::core::Conflict {
            term: None,
            index: 1,
        }),
    };
    node.step(message(1, 0, term, MessageBody::AppendEntriesReply(reply)))
        .unwrap();
    let messages = take_ready(&mut node).messages;
    assert_eq!(messages, vec![install(0, 1, term, snapshot(5, 1))]);
    assert!(matches!(
        node.progress(1).unwrap().state,
        ProgressState::Snapshot {
            snapshot_index: 5,
            ..
        }
    ));
    // Installed: replication resumes after the snapshot.
    node.step(message(1, 0, term, installed(5, &snapshot(5, 1))))
        .unwrap();
    let messages = take_ready(&mut node).messages;
    assert_eq!(appends_to(&messages, 1), vec![(5, 2)]);
}

#[test]
fn unanswered_snapshot_is_sent_again_after_the_retry_timeout() {
    let mut node = compacted_leader();
    let term = node.term();
    let reply = raft::core::AppendEntriesReply {
        success: false,
        match_index: 0,
        rejected_prev_index: 7,
        conflict: Some(raft::core::Conflict {
            term: None,
            index: 1,
        }),
    };
    node.step(message(1, 0, term, MessageBody::AppendEntriesReply(reply)))
        .unwrap();
    drain(&mut node);
    let mut resent = 0;
    for _ in 0..30 {
        node.tick();
        resent += drain(&mut node)
            .iter()
            .filter(|m| m.to == 1 && matches!(m.body, MessageBody::InstallSnapshot(_)))
            .count();
    }
    assert_eq!(
        resent, 1,
        "one retry after 30 ticks (Config::snapshot_retry_ticks)"
    );
    assert_eq!(
        node.progress(1).unwrap().match_index,
        0,
        "a retry does not assume delivery"
    );
}

#[test]
fn service_snapshot_compacts_the_applied_prefix() {
    let mut node = node_with_log(config(1, 3), 1, &[1; 6], 4);
    assert_eq!(node.log().applied_index(), 4);
    assert_eq!(
        node.snapshot(5, b"s".to_vec()),
        Err(SnapshotError::NotApplied {
            index: 5,
            applied_index: 4
        })
    );
    node.snapshot(3, b"s".to_vec()).unwrap();
    let ready = take_ready(&mut node);
    // The snapshot carries the configuration as of its last entry (here
    // the bootstrap one).
    let expected = Snapshot {
        meta: SnapshotMeta {
            membership: Some(Membership::from_voters([0, 1, 2])),
            ..SnapshotMeta::at(3, 1)
        },
        data: b"s".to_vec().into(),
    };
    assert_eq!(
        ready.snapshot,
        Some(ReadySnapshot {
            snapshot: expected,
            persist: true,
            apply: false
        })
    );
    assert_eq!((node.log().first_index(), node.log().last_index()), (4, 6));
    node.snapshot(2, b"older".to_vec()).unwrap();
    assert!(!node.has_ready(), "an older snapshot is ignored");
}

#[test]
fn restart_hands_the_snapshot_to_the_service_before_later_entries() {
    let state = raft::core::PersistentState {
        hard_state: raft::core::HardState {
            term: 2,
            voted_for: Some(0),
            commit_index: 7,
        },
        snapshot: Some(snapshot(5, 1)),
        entries: vec![entry(6, 2), entry(7, 2), entry(8, 2)],
    };
    let mut node = raft::core::RawNode::restart(config(1, 3), state);
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.snapshot,
        Some(ReadySnapshot {
            snapshot: snapshot(5, 1),
            persist: false,
            apply: true
        })
    );
    assert_eq!(ready.committed_entries, vec![entry(6, 2), entry(7, 2)]);
    assert!(
        ready.entries.is_empty() && ready.hard_state.is_none(),
        "nothing new to persist"
    );
    assert_eq!(node.voted_for(), Some(0), "the vote survives the restart");
}
