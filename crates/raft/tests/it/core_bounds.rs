//! Exact-output tests of the leader's bounds in bytes: per entry
//! (`max_entry_bytes`, so one entry always fits a transport message), over
//! the uncommitted entries (`max_uncommitted_bytes`, next to the entry
//! count), and per AppendEntries (`max_entries_per_message`,
//! `max_bytes_per_message`), with the defaults checked against labrpc's
//! message limit on the encoded messages.

use crate::fixture;

use fixture::*;
use raft::core::{Config, Entry, EntryKind, Message, MessageBody, ProposeError, RawNode};

/// `Entry::size_bytes` of a command of `len` bytes (the header is fixed).
fn entry_bytes(len: usize) -> u64 {
    Entry {
        index: 0,
        term: 0,
        kind: EntryKind::Command,
        data: vec![0; len].into(),
    }
    .size_bytes() as u64
}

/// The leader of term 1 of 3 nodes whose followers have acknowledged
/// everything so far.
fn leader(tune: impl Fn(&mut Config)) -> RawNode {
    let mut config = config(0, 3);
    tune(&mut config);
    let mut node = node_with_log(config, 0, &[], 0);
    elect(&mut node);
    node
}

fn acknowledge_all(node: &mut RawNode) {
    let (last, term) = (node.log().last_index(), node.term());
    for follower in [1, 2] {
        node.step(append_ok(follower, 0, term, last)).unwrap();
    }
    drain(node);
}

#[test]
fn uncommitted_bytes_are_bounded_and_freed_by_commitment() {
    let limit = 3 * entry_bytes(100);
    let mut node = leader(|config| {
        config.max_uncommitted_bytes = limit;
        config.max_entry_bytes = 200;
    });
    for _ in 0..3 {
        node.propose(vec![7; 100]).unwrap();
    }
    drain(&mut node);
    let last_index = node.log().last_index();
    let error = node.propose(vec![7; 1]).unwrap_err();
    assert_eq!(
        error,
        ProposeError::TooManyUncommittedBytes {
            uncommitted_bytes: limit,
            entry_bytes: entry_bytes(1),
            limit,
        }
    );
    assert_eq!(node.log().last_index(), last_index, "nothing appended");
    assert!(!node.has_ready(), "nothing to persist or send");
    // Commitment frees the budget.
    acknowledge_all(&mut node);
    assert_eq!(node.log().commit_index(), last_index);
    node.propose(vec![7; 100]).unwrap();
}

#[test]
fn the_byte_bound_holds_with_few_entries_and_the_count_bound_with_small_ones() {
    // Two bounds, whichever is reached first.
    let mut node = leader(|config| {
        config.max_uncommitted_entries = 1000;
        config.max_uncommitted_bytes = 10_000;
        config.max_entry_bytes = 10_000;
    });
    node.propose(vec![0; 9_000]).unwrap();
    assert!(matches!(
        node.propose(vec![0; 2_000]),
        Err(ProposeError::TooManyUncommittedBytes { .. })
    ));
    let mut node = leader(|config| config.max_uncommitted_entries = 2);
    node.propose(vec![]).unwrap();
    node.propose(vec![]).unwrap();
    assert!(matches!(
        node.propose(vec![]),
        Err(ProposeError::TooManyUncommitted { .. })
    ));
}

#[test]
fn an_entry_larger_than_the_per_entry_limit_is_refused_for_good() {
    let mut node = leader(|config| config.max_entry_bytes = 1000);
    let last_index = node.log().last_index();
    let error = node.propose(vec![0; 1000]).unwrap_err();
    assert_eq!(
        error,
        ProposeError::EntryTooLarge {
            entry_bytes: entry_bytes(1000),
            limit: 1000
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "entry of {} bytes exceeds the limit of 1000 bytes per entry",
            entry_bytes(1000)
        )
    );
    assert_eq!(node.log().last_index(), last_index);
    assert!(!node.has_ready());
    let largest = 1000 - entry_bytes(0) as usize;
    node.propose(vec![0; largest]).unwrap();
}

#[test]
fn a_new_leader_counts_the_uncommitted_entries_of_earlier_terms() {
    // Entries 1 and 2 (term 1, 3 bytes of data each) are not known
    // committed; the budget leaves room for one empty entry beside them.
    let mut config = config(0, 3);
    config.max_uncommitted_bytes = 2 * entry_bytes(3) + entry_bytes(0);
    config.max_entry_bytes = 30;
    let mut node = node_with_log(config, 1, &[1, 1], 0);
    elect(&mut node);
    assert!(matches!(
        node.propose(vec![0; 3]),
        Err(ProposeError::TooManyUncommittedBytes {
            uncommitted_bytes,
            ..
        }) if uncommitted_bytes == 2 * entry_bytes(3)
    ));
    node.propose(vec![]).unwrap();
    // Once an entry of this term commits, so do the earlier ones, and the
    // whole budget is free again.
    acknowledge_all(&mut node);
    assert_eq!(node.log().commit_index(), 3);
    node.propose(vec![0; 3]).unwrap();
    node.propose(vec![0; 3]).unwrap();
}

#[test]
fn leadership_lost_and_regained_recounts_from_the_log() {
    let mut node = leader(|config| {
        config.max_uncommitted_bytes = 2 * entry_bytes(10);
        config.max_entry_bytes = 50;
    });
    node.propose(vec![0; 10]).unwrap();
    drain(&mut node);
    // A newer term deposes it; it wins the next election with its log.
    let term = node.term();
    node.step(vote_request(1, 0, term + 1, 0, 0)).unwrap();
    drain(&mut node);
    assert!(!node.is_leader());
    elect(&mut node);
    node.propose(vec![0; 10]).unwrap();
    assert!(
        matches!(
            node.propose(vec![0; 10]),
            Err(ProposeError::TooManyUncommittedBytes { .. })
        ),
        "the entry of the earlier term still counts"
    );
}

/// The AppendEntries a leader sends to node 1 right after `propose`s.
fn appends_sent(node: &mut RawNode) -> Vec<Message> {
    drain(node)
        .into_iter()
        .filter(|m| m.to == 1 && matches!(m.body, MessageBody::AppendEntries(_)))
        .collect()
}

#[test]
fn default_limits_fit_one_labrpc_message() {
    let defaults = Config::new(0, vec![0, 1, 2], 7);
    let limit = labrpc::DEFAULT_MAX_MESSAGE_BYTES;
    let largest = defaults.max_entry_bytes - entry_bytes(0) as usize;

    // The largest entry, alone.
    let mut node = leader(|config| {
        config.max_entry_bytes = defaults.max_entry_bytes;
        config.max_uncommitted_bytes = defaults.max_uncommitted_bytes;
    });
    acknowledge_all(&mut node);
    node.propose(vec![0xab; largest]).unwrap();
    let sent = appends_sent(&mut node);
    assert_eq!(sent.len(), 1);
    let encoded = labrpc::encode(&sent[0]).unwrap().len();
    assert!(
        encoded <= limit,
        "largest entry: {encoded} encoded bytes > labrpc limit {limit}"
    );

    // A full batch of small entries: cut at max_entries_per_message and
    // max_bytes_per_message.
    let mut node = leader(|config| {
        config.max_entries_per_message = defaults.max_entries_per_message;
        config.max_bytes_per_message = defaults.max_bytes_per_message;
        config.max_inflight_messages = 1;
    });
    acknowledge_all(&mut node);
    for _ in 0..2 * defaults.max_entries_per_message {
        node.propose(vec![0xcd; 100]).unwrap();
    }
    let sent = appends_sent(&mut node);
    let MessageBody::AppendEntries(batch) = &sent[0].body else {
        unreachable!("filtered to AppendEntries");
    };
    assert_eq!(batch.entries.len(), defaults.max_entries_per_message);
    let encoded = labrpc::encode(&sent[0]).unwrap().len();
    assert!(encoded <= defaults.max_bytes_per_message + 64 * 1024);
    assert!(encoded <= limit);
}

#[test]
fn defaults_are_consistent() {
    let defaults = Config::new(0, vec![0, 1, 2], 7);
    defaults.validate();
    assert!(defaults.max_uncommitted_bytes >= 4 * defaults.max_entry_bytes as u64);
}

#[test]
#[should_panic(expected = "max_entry_bytes 2000 exceeds max_uncommitted_bytes 1000")]
fn a_per_entry_limit_above_the_uncommitted_limit_is_refused() {
    let mut config = config(0, 3);
    config.max_entry_bytes = 2000;
    config.max_uncommitted_bytes = 1000;
    RawNode::new(config);
}
