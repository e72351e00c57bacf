//! Exact-output tests of single-server membership changes
//! (`core/membership.rs`): every step of a change, learners, a removed
//! leader stepping down, removed nodes kept from disrupting the group, the
//! unsafe interleavings refused, and the configuration through conflicts,
//! snapshots and restarts.

use crate::fixture;

use fixture::*;
use raft::core::{
    Entry, EntryKind, HardState, InstallSnapshot, Membership, MembershipChange, MembershipError,
    MessageBody, PersistentState, RawNode, Role, Snapshot, SnapshotMeta, StepError,
};

fn config_entry(index: u64, term: u64, membership: &Membership) -> Entry {
    Entry {
        index,
        term,
        kind: EntryKind::Config,
        data: membership.encode().into(),
    }
}

fn voters(ids: &[u64]) -> Membership {
    Membership::from_voters(ids.iter().copied())
}

fn with_learners(voter_ids: &[u64], learner_ids: &[u64]) -> Membership {
    let mut membership = voters(voter_ids);
    membership.learners.extend(learner_ids.iter().copied());
    membership
}

/// Node 0 of `size`, leader of term 2, having committed a command of its
/// term at index 2 (acknowledged by nodes 1.., a bare majority).
fn ready_leader(size: u64) -> RawNode {
    let mut node = node_with_log(config(0, size), 1, &[1], 1);
    elect(&mut node);
    assert_eq!(node.term(), 2);
    let (index, term) = node.propose(b"first".to_vec()).unwrap();
    drain(&mut node);
    for peer in 1..size / 2 + 1 {
        node.step(append_ok(peer, 0, term, index)).unwrap();
        drain(&mut node);
    }
    assert_eq!(node.log().commit_index(), index);
    node
}

// ---- the unsafe interleavings ------------------------------------------------

#[test]
fn a_change_before_the_leader_commits_an_entry_of_its_term_is_refused() {
    let mut node = node_with_log(config(0, 3), 1, &[1], 1);
    elect(&mut node);
    let last_index = node.log().last_index();
    assert_eq!(
        node.propose_membership_change(MembershipChange::AddLearner(3)),
        Err(MembershipError::LeaderNotReady { term: 2 })
    );
    assert_eq!(node.log().last_index(), last_index, "nothing appended");
    assert_eq!(node.membership(), &voters(&[0, 1, 2]));
    assert!(!node.has_ready());
}

#[test]
fn a_second_change_while_one_is_uncommitted_is_refused() {
    let mut node = ready_leader(3);
    let (index, term) = node
        .propose_membership_change(MembershipChange::AddLearner(3))
        .unwrap();
    assert_eq!((index, term), (3, 2));
    drain(&mut node);
    assert_eq!(
        node.propose_membership_change(MembershipChange::AddLearner(4)),
        Err(MembershipError::ChangeInProgress { index: 3 })
    );
    assert_eq!(node.log().last_index(), 3, "nothing appended");
    // Once it commits, the next change is accepted.
    node.step(append_ok(1, 0, 2, 3)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), 3);
    assert_eq!(
        node.propose_membership_change(MembershipChange::AddLearner(4)),
        Ok((4, 2))
    );
}

#[test]
fn a_follower_cannot_propose_a_change() {
    let mut node = node_with_log(config(1, 3), 2, &[1], 1);
    assert_eq!(
        node.propose_membership_change(MembershipChange::Remove(2)),
        Err(MembershipError::NotLeader {
            term: 2,
            leader_hint: None
        })
    );
}

#[test]
fn changes_that_make_no_sense_are_refused() {
    let mut node = ready_leader(3);
    for (change, reason) in [
        (MembershipChange::AddVoter(1), "already a member"),
        (MembershipChange::PromoteLearner(2), "not a learner"),
        (MembershipChange::Remove(7), "not a member"),
    ] {
        match node.propose_membership_change(change) {
            Err(MembershipError::Invalid { reason: got, .. }) => {
                assert!(got.contains(reason), "{change:?}: {got}")
            }
            other => panic!("{change:?}: {other:?}"),
        }
    }
    assert!(!node.has_ready());
    let mut single = ready_leader(1);
    assert!(matches!(
        single.propose_membership_change(MembershipChange::Remove(0)),
        Err(MembershipError::Invalid { .. })
    ));
}

// ---- adding a learner and promoting it ----------------------------------------

#[test]
fn a_learner_takes_effect_when_appended_and_is_probed_at_once() {
    let mut node = ready_leader(3);
    node.propose_membership_change(MembershipChange::AddLearner(3))
        .unwrap();
    assert_eq!(
        node.membership(),
        &with_learners(&[0, 1, 2], &[3]),
        "in force before it commits"
    );
    let ready = take_ready(&mut node);
    let expected_entry = config_entry(3, 2, &with_learners(&[0, 1, 2], &[3]));
    assert_eq!(ready.entries, vec![expected_entry.clone()]);
    // Node 1 replicates: it gets the entry; node 2 still awaits the answer
    // to its probe; the learner is probed at the end of the log.
    assert_eq!(appends_to(&ready.messages, 1), vec![(2, 1)]);
    assert_eq!(appends_to(&ready.messages, 2), vec![]);
    assert_eq!(
        ready.messages.iter().find(|m| m.to == 3).cloned(),
        Some(append(0, 3, 2, (3, 2), vec![], 2))
    );
    assert!(node.progress(3).is_some());
}

#[test]
fn a_learner_does_not_count_for_commitment() {
    // Voters 0 and 1, learner 2.
    let mut node = ready_leader(2);
    node.propose_membership_change(MembershipChange::AddLearner(2))
        .unwrap();
    drain(&mut node);
    node.step(append_ok(1, 0, 2, 3)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), 3);
    let (index, _) = node.propose(b"x".to_vec()).unwrap();
    drain(&mut node);
    node.step(append_ok(2, 0, 2, index)).unwrap();
    drain(&mut node);
    assert_eq!(
        node.log().commit_index(),
        3,
        "the learner's copy does not commit"
    );
    node.step(append_ok(1, 0, 2, index)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), index);
}

#[test]
fn a_learner_is_promoted_only_once_caught_up_within_the_bound() {
    let mut config = config(0, 3);
    config.max_learner_lag_entries = 2;
    let mut node = node_with_log(config, 1, &[1], 1);
    elect(&mut node);
    node.propose(b"first".to_vec()).unwrap();
    drain(&mut node);
    node.step(append_ok(1, 0, 2, 2)).unwrap();
    drain(&mut node);
    node.propose_membership_change(MembershipChange::AddLearner(3))
        .unwrap();
    drain(&mut node);
    node.step(append_ok(1, 0, 2, 3)).unwrap();
    for _ in 0..3 {
        node.propose(b"more".to_vec()).unwrap();
    }
    drain(&mut node);
    node.step(append_ok(1, 0, 2, 6)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), 6);
    // The learner holds 3 of 6 entries: 3 behind, the bound is 2.
    node.step(append_ok(3, 0, 2, 3)).unwrap();
    assert_eq!(
        node.propose_membership_change(MembershipChange::PromoteLearner(3)),
        Err(MembershipError::LearnerBehind {
            learner: 3,
            match_index: 3,
            last_index: 6,
            max_lag: 2
        })
    );
    node.step(append_ok(3, 0, 2, 5)).unwrap();
    drain(&mut node);
    assert_eq!(
        node.propose_membership_change(MembershipChange::PromoteLearner(3)),
        Ok((7, 2))
    );
    assert_eq!(node.membership(), &voters(&[0, 1, 2, 3]));
    // Four voters: a majority is 3, so node 1's copy alone does not commit.
    drain(&mut node);
    node.step(append_ok(1, 0, 2, 7)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), 6);
    node.step(append_ok(3, 0, 2, 7)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), 7);
}

#[test]
fn a_node_that_is_not_a_voter_never_campaigns_until_a_configuration_makes_it_one() {
    // Node 3 joins a group whose bootstrap voters are 0, 1 and 2.
    let mut node = node_with_log(config_of(3, &[0, 1, 2]), 0, &[], 0);
    tick_times(&mut node, 5 * ELECTION_TICKS);
    assert_eq!(node.role(), Role::Follower);
    assert!(drain(&mut node).is_empty(), "no vote requests");
    // The leader adds it as a learner, then promotes it.
    let as_learner = config_entry(1, 1, &with_learners(&[0, 1, 2], &[3]));
    node.step(append(0, 3, 1, (0, 0), vec![as_learner], 1))
        .unwrap();
    drain(&mut node);
    assert!(node.membership().is_learner(3));
    tick_times(&mut node, 5 * ELECTION_TICKS);
    assert!(drain(&mut node).is_empty(), "a learner does not campaign");
    let as_voter = config_entry(2, 1, &voters(&[0, 1, 2, 3]));
    node.step(append(0, 3, 1, (1, 1), vec![as_voter], 2))
        .unwrap();
    drain(&mut node);
    assert!(node.is_voter());
    tick_times(&mut node, ELECTION_TICKS);
    let requests = drain(&mut node);
    let mut asked: Vec<u64> = requests
        .iter()
        .filter(|m| matches!(m.body, MessageBody::RequestVote(_)))
        .map(|m| m.to)
        .collect();
    asked.sort_unstable();
    assert_eq!(asked, vec![0, 1, 2], "a voter asks the other voters");
    assert_eq!(node.role(), Role::Candidate);
}

/// A config for node `id` whose bootstrap voters are `peers`.
fn config_of(id: u64, peers: &[u64]) -> raft::core::Config {
    let mut config = config(id, 1);
    config.peers = peers.to_vec();
    config
}

// ---- removing nodes -------------------------------------------------------------

#[test]
fn a_removed_leader_replicates_its_removal_then_steps_down_and_stays_quiet() {
    let mut node = ready_leader(3);
    node.propose_membership_change(MembershipChange::Remove(0))
        .unwrap();
    assert_eq!(node.membership(), &voters(&[1, 2]));
    assert!(node.is_leader(), "it leads until the removal commits");
    drain(&mut node);
    // Voters are now 1 and 2: the leader's own copy does not count.
    node.step(append_ok(1, 0, 2, 3)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), 2);
    assert!(node.is_leader());
    node.step(append_ok(2, 0, 2, 3)).unwrap();
    assert_eq!(node.log().commit_index(), 3);
    assert_eq!(node.role(), Role::Follower, "stepped down once committed");
    assert_eq!(node.leader_id(), None);
    drain(&mut node);
    tick_times(&mut node, 5 * ELECTION_TICKS);
    assert!(
        drain(&mut node).is_empty(),
        "a removed node does not campaign"
    );
    assert_eq!(node.term(), 2);
}

#[test]
fn removing_a_voter_shrinks_the_majority_at_once() {
    // Five voters; node 4 is removed. The entry commits with 3 of the 4
    // remaining voters' copies (the leader's included).
    let mut node = ready_leader(5);
    node.propose_membership_change(MembershipChange::Remove(4))
        .unwrap();
    drain(&mut node);
    assert!(node.progress(4).is_none(), "the removed node is forgotten");
    node.step(append_ok(1, 0, 2, 3)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), 2);
    node.step(append_ok(2, 0, 2, 3)).unwrap();
    drain(&mut node);
    assert_eq!(node.log().commit_index(), 3);
    // A late answer of the removed node is dropped without effect.
    assert_eq!(node.step(append_ok(4, 0, 2, 3)), Ok(()));
    assert_eq!(node.refused_messages(), 0);
}

#[test]
fn a_removed_node_that_keeps_campaigning_neither_wins_a_vote_nor_raises_the_term() {
    // Node 1 knows node 2 was removed and hears from leader 0; node 2 has
    // not learned of its removal and campaigns. PreVote and leader
    // stickiness (the defaults) hold it off.
    let removal = config_entry(2, 1, &voters(&[0, 1]));
    let state = PersistentState {
        hard_state: HardState {
            term: 1,
            voted_for: None,
            commit_index: 2,
        },
        snapshot: None,
        entries: vec![entry(1, 1), removal],
    };
    let mut node = RawNode::restart(config_with_prevote_and_check_quorum(1, 3), state);
    drain(&mut node);
    node.step(message(
        0,
        1,
        1,
        MessageBody::Heartbeat(raft::core::Heartbeat {
            commit_index: 2,
            read_id: 0,
        }),
    ))
    .unwrap();
    drain(&mut node);
    node.step(pre_vote(2, 1, 2, 5, 1)).unwrap();
    node.step(vote_request(2, 1, 9, 5, 1)).unwrap();
    let replies = drain(&mut node);
    assert_eq!(
        replies,
        vec![
            pre_vote_reply(1, 2, 1, false),
            message(
                1,
                2,
                1,
                MessageBody::RequestVoteReply(raft::core::RequestVoteReply {
                    vote_granted: false
                })
            ),
        ]
    );
    assert_eq!((node.term(), node.voted_for()), (1, None));
}

#[test]
fn a_voter_grants_its_vote_to_a_candidate_of_a_configuration_it_has_not_seen() {
    // Node 3 was added as a voter at index 2, which node 1 has not
    // received; node 3 may be needed to elect anyone, so node 1 still
    // answers it by the usual rules (thesis 4.1).
    let mut node = node_with_log(config(1, 3), 1, &[1], 1);
    node.step(vote_request(3, 1, 2, 2, 1)).unwrap();
    assert_eq!(node.voted_for(), Some(3));
    assert_eq!(node.term(), 2);
}

#[test]
fn a_candidate_counts_only_the_votes_of_its_voters() {
    // Voters 0 and 1 and 2, learner 3 (its grant is ignored).
    let learner_added = config_entry(1, 1, &with_learners(&[0, 1, 2], &[3]));
    let state = PersistentState {
        hard_state: HardState {
            term: 1,
            voted_for: None,
            commit_index: 1,
        },
        snapshot: None,
        entries: vec![learner_added],
    };
    let mut node = RawNode::restart(config(0, 3), state);
    drain(&mut node);
    tick_times(&mut node, ELECTION_TICKS);
    let requests = drain(&mut node);
    assert!(
        requests.iter().all(|m| m.to != 3),
        "the learner is not asked"
    );
    let grant = raft::core::RequestVoteReply { vote_granted: true };
    node.step(message(
        3,
        0,
        2,
        MessageBody::RequestVoteReply(grant.clone()),
    ))
    .unwrap();
    assert_eq!(node.role(), Role::Candidate);
    node.step(message(1, 0, 2, MessageBody::RequestVoteReply(grant)))
        .unwrap();
    assert_eq!(node.role(), Role::Leader);
}

// ---- validation ----------------------------------------------------------------

#[test]
fn a_configuration_entry_that_does_not_decode_is_refused() {
    let mut node = node_with_log(config(1, 3), 1, &[1], 1);
    for data in [vec![0xff, 0xff, 0xff], Membership::default().encode(), {
        let mut both = voters(&[0, 1]);
        both.learners.insert(1);
        both.encode()
    }] {
        let bad = Entry {
            index: 2,
            term: 1,
            kind: EntryKind::Config,
            data: data.into(),
        };
        let result = node.step(append(0, 1, 1, (1, 1), vec![bad], 1));
        assert!(
            matches!(result, Err(StepError::BadMembership { index: 2, .. })),
            "{result:?}"
        );
    }
    assert_eq!(node.log().last_index(), 1, "nothing stored");
    assert_eq!(node.membership(), &voters(&[0, 1, 2]));
    assert_eq!(node.refused_messages(), 3);
    assert!(!node.has_ready());
}

#[test]
fn a_snapshot_naming_an_invalid_configuration_is_refused() {
    let mut node = node_with_log(config(1, 3), 1, &[1], 1);
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            membership: Some(Membership::default()),
            ..SnapshotMeta::at(5, 1)
        },
        data: b"state".to_vec().into(),
    };
    let piece = InstallSnapshot::piece(&snapshot, 0, 1 << 20);
    let result = node.step(message(0, 1, 1, MessageBody::InstallSnapshot(piece)));
    assert!(
        matches!(result, Err(StepError::BadMembership { index: 5, .. })),
        "{result:?}"
    );
    assert_eq!(node.log().last_index(), 1);
}

// ---- conflicts, snapshots, restarts -------------------------------------------------

#[test]
fn a_cut_uncommitted_configuration_gives_way_to_the_one_before() {
    let mut node = node_with_log(config(1, 3), 1, &[1], 1);
    let added = config_entry(2, 1, &voters(&[0, 1, 2, 3]));
    node.step(append(0, 1, 1, (1, 1), vec![added], 1)).unwrap();
    drain(&mut node);
    assert_eq!(node.membership(), &voters(&[0, 1, 2, 3]));
    // A leader of term 2 never had it: its entry 2 replaces it.
    node.step(append(2, 1, 2, (1, 1), vec![entry(2, 2)], 1))
        .unwrap();
    drain(&mut node);
    assert_eq!(node.membership(), &voters(&[0, 1, 2]));
    assert_eq!(node.log().last_config_index(), 0);
}

#[test]
fn the_configuration_survives_compaction_and_restart() {
    let removal = config_entry(2, 1, &voters(&[0, 1]));
    let mut node = node_with_log(config(1, 3), 1, &[1], 1);
    node.step(append(
        0,
        1,
        1,
        (1, 1),
        vec![removal.clone(), entry(3, 1)],
        3,
    ))
    .unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(ready.entries, vec![removal.clone(), entry(3, 1)]);
    assert_eq!(
        ready.committed_entries,
        vec![removal.clone(), entry(3, 1)],
        "a configuration entry is applied in order like any other"
    );
    // Restart from the log alone.
    let from_log = PersistentState {
        hard_state: node.hard_state(),
        snapshot: None,
        entries: vec![entry(1, 1), removal, entry(3, 1)],
    };
    let restarted = RawNode::restart(config(1, 3), from_log);
    assert_eq!(restarted.membership(), &voters(&[0, 1]));
    // Compaction past the entry keeps the configuration in the snapshot.
    node.snapshot(3, b"state".to_vec()).unwrap();
    let ready = take_ready(&mut node);
    let snapshot = ready.snapshot.expect("snapshot to persist").snapshot;
    assert_eq!(snapshot.meta.membership, Some(voters(&[0, 1])));
    assert_eq!(node.membership(), &voters(&[0, 1]));
    let from_snapshot = PersistentState {
        hard_state: node.hard_state(),
        snapshot: Some(snapshot),
        entries: vec![],
    };
    let restarted = RawNode::restart(config(1, 3), from_snapshot);
    assert_eq!(restarted.membership(), &voters(&[0, 1]));
}

#[test]
fn an_installed_snapshot_brings_its_configuration() {
    // A new node (bootstrap config without itself) catches up by snapshot.
    let mut node = node_with_log(config_of(3, &[0, 1, 2]), 0, &[], 0);
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            membership: Some(with_learners(&[0, 1, 2], &[3])),
            ..SnapshotMeta::at(7, 1)
        },
        data: b"state".to_vec().into(),
    };
    let piece = InstallSnapshot::piece(&snapshot, 0, 1 << 20);
    node.step(message(0, 3, 1, MessageBody::InstallSnapshot(piece)))
        .unwrap();
    assert_eq!(node.membership(), &with_learners(&[0, 1, 2], &[3]));
    let ready = take_ready(&mut node);
    assert_eq!(ready.snapshot.map(|s| s.snapshot), Some(snapshot));
}
