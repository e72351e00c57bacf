//! Property test of the core against arbitrary peer messages: a leader, a
//! follower and a candidate are fed random sequences of messages (small
//! terms and indexes that collide with real state, plus extreme values),
//! ticks and proposals. Whatever comes, the core never panics, and a
//! message `step` refuses leaves the node exactly as it was.

use crate::fixture;

use fixture::*;
use proptest::prelude::*;
use raft::core::{
    AppendEntries, AppendEntriesReply, Conflict, Entry, EntryKind, Heartbeat, HeartbeatReply,
    InstallSnapshot, InstallSnapshotReply, Message, MessageBody, RawNode, RequestVote,
    RequestVoteReply, SnapshotMeta,
};

/// Small values collide with the nodes' real terms and indexes; the
/// extremes probe overflow.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0..6_u64,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(1_u64 << 62),
        1 => any::<u64>(),
    ]
}

fn entry_strategy() -> impl Strategy<Value = Entry> {
    (number(), number(), 0..4_u8).prop_map(|(index, term, kind)| {
        let (kind, data) = match kind {
            0 => (EntryKind::Noop, Vec::new()),
            1 => (EntryKind::Command, vec![b'x'; (index % 4) as usize]),
            // A configuration entry, valid or garbage.
            2 => (
                EntryKind::Config,
                raft::core::Membership::from_voters([0, 1, index % 5]).encode(),
            ),
            _ => (EntryKind::Config, vec![b'x'; (index % 4) as usize]),
        };
        Entry {
            index,
            term,
            kind,
            data: data.into(),
        }
    })
}

/// Mostly well-formed runs of entries, sometimes arbitrary ones.
fn entries_strategy() -> impl Strategy<Value = (u64, Vec<Entry>)> {
    prop_oneof![
        (0..6_u64, 1..4_u64, prop::collection::vec(1..4_u64, 0..4)).prop_map(
            |(prev, first_term, steps)| {
                let mut term = first_term;
                let entries = steps
                    .iter()
                    .enumerate()
                    .map(|(i, step)| {
                        term += step - 1;
                        Entry {
                            index: prev + 1 + i as u64,
                            term,
                            kind: EntryKind::Command,
                            data: vec![b'y'].into(),
                        }
                    })
                    .collect();
                (prev, entries)
            }
        ),
        (number(), prop::collection::vec(entry_strategy(), 0..4)),
    ]
}

fn body_strategy() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (number(), number()).prop_map(|(last_log_index, last_log_term)| {
            MessageBody::RequestVote(RequestVote {
                last_log_index,
                last_log_term,
                leadership_transfer: false,
            })
        }),
        any::<bool>().prop_map(
            |vote_granted| MessageBody::RequestVoteReply(RequestVoteReply { vote_granted })
        ),
        (number(), number()).prop_map(|(last_log_index, last_log_term)| {
            MessageBody::PreVote(RequestVote {
                last_log_index,
                last_log_term,
                leadership_transfer: false,
            })
        }),
        any::<bool>()
            .prop_map(|vote_granted| MessageBody::PreVoteReply(RequestVoteReply { vote_granted })),
        (entries_strategy(), number(), number()).prop_map(
            |((prev_log_index, entries), prev_log_term, leader_commit)| {
                MessageBody::AppendEntries(AppendEntries {
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                })
            }
        ),
        (
            any::<bool>(),
            number(),
            number(),
            prop::option::of((prop::option::of(number()), number()))
        )
            .prop_map(|(success, match_index, rejected_prev_index, conflict)| {
                MessageBody::AppendEntriesReply(AppendEntriesReply {
                    success,
                    match_index,
                    rejected_prev_index,
                    conflict: conflict.map(|(term, index)| Conflict { term, index }),
                })
            }),
        (number(), number()).prop_map(|(commit_index, read_id)| {
            MessageBody::Heartbeat(Heartbeat {
                commit_index,
                read_id,
            })
        }),
        number().prop_map(|read_id| MessageBody::HeartbeatReply(HeartbeatReply { read_id })),
        (
            number(),
            number(),
            number(),
            number(),
            0..6_usize,
            any::<bool>()
        )
            .prop_map(|(index, term, offset, total_bytes, len, done)| {
                let data = vec![b'z'; len];
                MessageBody::InstallSnapshot(InstallSnapshot {
                    meta: SnapshotMeta::at(index, term),
                    offset,
                    total_bytes,
                    data_crc32: crc32fast::hash(&data),
                    data,
                    done,
                })
            }),
        (number(), number(), number()).prop_map(|(match_index, snapshot_index, received_bytes)| {
            MessageBody::InstallSnapshotReply(InstallSnapshotReply {
                match_index,
                snapshot_index,
                received_bytes,
            })
        }),
    ]
}

#[derive(Clone, Debug)]
enum Event {
    Message {
        from: u64,
        term: u64,
        body: MessageBody,
    },
    Tick(u64),
    Propose,
}

fn event_strategy() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (0..4_u64, number(), body_strategy())
            .prop_map(|(from, term, body)| Event::Message { from, term, body }),
        1 => (1..40_u64).prop_map(Event::Tick),
        1 => Just(Event::Propose),
    ]
}

/// Node `id`'s state without its refusal counter.
fn fingerprint(node: &RawNode) -> String {
    format!("{node:?}").replace(
        &format!("refused_messages: {}", node.refused_messages()),
        "",
    )
}

fn run(mut node: RawNode, events: Vec<Event>) {
    let id = node.id();
    for event in events {
        match event {
            Event::Message { from, term, body } => {
                let before = fingerprint(&node);
                let message = Message {
                    from,
                    to: id,
                    term,
                    body,
                };
                if node.step(message).is_err() {
                    assert_eq!(fingerprint(&node), before, "a refusal changed the node");
                }
            }
            Event::Tick(ticks) => tick_times(&mut node, ticks),
            Event::Propose => {
                let _ = node.propose(b"p".to_vec());
            }
        }
        drain(&mut node);
    }
}

fn leader() -> RawNode {
    let mut node = node_with_log(config(0, 3), 1, &[1, 1], 1);
    elect(&mut node);
    node.propose(b"a".to_vec()).unwrap();
    drain(&mut node);
    node
}

fn follower() -> RawNode {
    node_with_log(config(1, 3), 2, &[1, 2, 2], 2)
}

fn candidate() -> RawNode {
    let mut node = node_with_log(config_with_prevote_and_check_quorum(2, 3), 2, &[1, 2], 1);
    tick_times(&mut node, ELECTION_TICKS);
    drain(&mut node);
    node
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_leader_survives_any_messages(events in prop::collection::vec(event_strategy(), 1..24)) {
        run(leader(), events);
    }

    #[test]
    fn a_follower_survives_any_messages(events in prop::collection::vec(event_strategy(), 1..24)) {
        run(follower(), events);
    }

    #[test]
    fn a_candidate_survives_any_messages(events in prop::collection::vec(event_strategy(), 1..24)) {
        run(candidate(), events);
    }
}
