//! Exact-output tests of a snapshot sent in pieces (paper section 7,
//! InstallSnapshot's `offset` and `done`): the leader sends one piece at a
//! time from where the follower says it stands; the follower keeps pieces
//! in order, ignores the rest, refuses what is over its bound or fails its
//! checksum, and installs after the last piece.

use crate::fixture;

use fixture::*;
use raft::core::{
    AppendEntriesReply, Conflict, InstallSnapshot, InstallSnapshotReply, Message, MessageBody,
    ProgressState, RawNode, ReadySnapshot, Snapshot, SnapshotMeta, SnapshotRead,
};

/// Piece size in these tests: the snapshot below is 10 pieces and a bit.
const PIECE_BYTES: usize = 100;

fn big_snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta::at(index, term),
        data: (0..1050_u32).map(|byte| (byte % 251) as u8).collect(),
    }
}

fn small_pieces(id: u64) -> raft::core::Config {
    let mut config = config(id, 3);
    config.snapshot_chunk_bytes = PIECE_BYTES;
    config
}

fn piece_message(term: u64, snapshot: &Snapshot, offset: u64) -> Message {
    message(
        0,
        1,
        term,
        MessageBody::InstallSnapshot(InstallSnapshot::piece(snapshot, offset, PIECE_BYTES)),
    )
}

fn answer(match_index: u64, snapshot_index: u64, received_bytes: u64) -> MessageBody {
    MessageBody::InstallSnapshotReply(InstallSnapshotReply {
        match_index,
        snapshot_index,
        received_bytes,
    })
}

/// A leader (node 0) holding `big_snapshot(5, 1)` and entries 6-7, which
/// has just learned follower 1 needs the snapshot; returns its first piece.
fn leader_sending_the_snapshot() -> (RawNode, Vec<Message>) {
    let entries = vec![entry(6, 1), entry(7, 1)];
    let mut node = node_with_snapshot(small_pieces(0), 1, big_snapshot(5, 1), entries);
    elect(&mut node);
    let term = node.term();
    let reply = AppendEntriesReply {
        success: false,
        match_index: 0,
        rejected_prev_index: 7,
        conflict: Some(Conflict {
            term: None,
            index: 1,
        }),
    };
    node.step(message(1, 0, term, MessageBody::AppendEntriesReply(reply)))
        .unwrap();
    let sent = take_ready(&mut node).messages;
    (node, sent)
}

#[test]
fn leader_sends_one_piece_per_answer_from_where_the_follower_stands() {
    let (mut node, sent) = leader_sending_the_snapshot();
    let term = node.term();
    let snapshot = big_snapshot(5, 1);
    assert_eq!(sent, vec![piece_message(term, &snapshot, 0)]);
    let mut offset = 0;
    // 1050 bytes in pieces of 100: 11 pieces.
    for _ in 0..10 {
        offset += PIECE_BYTES as u64;
        node.step(message(1, 0, term, answer(0, 5, offset)))
            .unwrap();
        let sent = take_ready(&mut node).messages;
        let expected = piece_message(term, &snapshot, offset);
        assert_eq!(sent, vec![expected]);
        assert!(matches!(
            node.progress(1).unwrap().state,
            ProgressState::Snapshot {
                snapshot_index: 5,
                offset_bytes,
                ..
            } if offset_bytes == offset
        ));
    }
    // A follower that lost its pieces (it restarted) says so: back to 0.
    node.step(message(1, 0, term, answer(0, 5, 0))).unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![piece_message(term, &snapshot, 0)]
    );
    // Installed: replication resumes after the snapshot.
    node.step(message(1, 0, term, answer(5, 5, 1050))).unwrap();
    let messages = take_ready(&mut node).messages;
    assert_eq!(appends_to(&messages, 1), vec![(5, 2)]);
}

#[test]
fn an_unanswered_piece_is_sent_again_not_the_whole_snapshot() {
    let (mut node, _) = leader_sending_the_snapshot();
    let term = node.term();
    let snapshot = big_snapshot(5, 1);
    node.step(message(1, 0, term, answer(0, 5, 300))).unwrap();
    drain(&mut node);
    let mut resent = Vec::new();
    for _ in 0..30 {
        node.tick();
        resent.extend(drain(&mut node).into_iter().filter_map(|m| match m.body {
            MessageBody::InstallSnapshot(piece) if m.to == 1 => Some(piece),
            _ => None,
        }));
    }
    assert_eq!(
        resent,
        vec![InstallSnapshot::piece(&snapshot, 300, PIECE_BYTES)],
        "one retry after 30 ticks (Config::snapshot_retry_ticks), from byte 300"
    );
}

#[test]
fn once_the_snapshot_is_stored_pieces_are_read_back_not_held() {
    let (mut node, sent) = leader_sending_the_snapshot();
    let term = node.term();
    let snapshot = big_snapshot(5, 1);
    // Phase 1: held in memory, the first piece went out as a message.
    assert_eq!(sent, vec![piece_message(term, &snapshot, 0)]);
    assert_eq!(node.snapshot_held_bytes(), 1050);

    // Phase 2: another snapshot's meta releases nothing.
    node.snapshot_stored(&SnapshotMeta::at(4, 1));
    assert_eq!(node.snapshot_held_bytes(), 1050);

    // Phase 3: stored; the core drops the bytes and asks for each piece.
    node.snapshot_stored(&snapshot.meta);
    assert_eq!(node.snapshot_held_bytes(), 0);
    node.step(message(1, 0, term, answer(0, 5, 1000))).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(ready.messages, Vec::new(), "no piece from memory");
    let expected_read = SnapshotRead {
        to: 1,
        term,
        meta: snapshot.meta.clone(),
        offset: 1000,
        length_bytes: 50,
        total_bytes: 1050,
    };
    assert_eq!(
        ready.snapshot_reads,
        vec![expected_read.clone()],
        "the last 50 bytes"
    );

    // Phase 4: what the driver sends for it is the piece the core would
    // have sent from memory.
    let data = snapshot.data[1000..].to_vec();
    assert_eq!(
        InstallSnapshot::from_stored(&expected_read, data),
        InstallSnapshot::piece(&snapshot, 1000, PIECE_BYTES)
    );

    // Phase 5: an unanswered read is asked again after the retry ticks.
    let mut reads = Vec::new();
    for _ in 0..30 {
        node.tick();
        if node.has_ready() {
            reads.extend(take_ready(&mut node).snapshot_reads);
        }
    }
    assert_eq!(reads, vec![expected_read]);
}

/// A follower (node 1) at term 1 with entries 1-3 committed.
fn follower() -> RawNode {
    node_with_log(small_pieces(1), 1, &[1, 1, 1], 3)
}

#[test]
fn follower_keeps_pieces_in_order_and_installs_after_the_last() {
    let mut node = follower();
    let snapshot = big_snapshot(5, 1);
    let mut offset = 0;
    for index in 0..11 {
        // The piece after this one, early (reordered): ignored.
        if index < 10 {
            node.step(piece_message(1, &snapshot, offset + PIECE_BYTES as u64))
                .unwrap();
            let ready = take_ready(&mut node);
            assert_eq!(
                ready.messages,
                vec![message(1, 0, 1, answer(3, 5, offset))],
                "a piece past the gap is not kept"
            );
        }
        node.step(piece_message(1, &snapshot, offset)).unwrap();
        let ready = take_ready(&mut node);
        offset = (offset + PIECE_BYTES as u64).min(1050);
        if index < 10 {
            assert!(ready.snapshot.is_none(), "installed before the last piece");
            assert_eq!(ready.messages, vec![message(1, 0, 1, answer(3, 5, offset))]);
            // The same piece again (a retry): nothing changes.
            node.step(piece_message(1, &snapshot, offset - PIECE_BYTES as u64))
                .unwrap();
            assert_eq!(
                take_ready(&mut node).messages,
                vec![message(1, 0, 1, answer(3, 5, offset))]
            );
        } else {
            assert_eq!(
                ready.snapshot,
                Some(ReadySnapshot {
                    snapshot: snapshot.clone(),
                    persist: true,
                    apply: true
                })
            );
            assert_eq!(ready.messages, vec![message(1, 0, 1, answer(5, 5, 1050))]);
        }
    }
    assert_eq!(node.log().commit_index(), 5);
}

#[test]
fn a_newer_snapshot_starts_over_and_pieces_of_the_old_one_are_ignored() {
    let mut node = follower();
    let old = big_snapshot(5, 1);
    let new = big_snapshot(6, 1);
    node.step(piece_message(1, &old, 0)).unwrap();
    node.step(piece_message(1, &old, 100)).unwrap();
    drain(&mut node);
    node.step(piece_message(1, &new, 0)).unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![message(1, 0, 1, answer(3, 6, 100))]
    );
    node.step(piece_message(1, &old, 200)).unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![message(1, 0, 1, answer(3, 5, 0))],
        "the old snapshot's pieces are no longer kept"
    );
}

#[test]
fn a_snapshot_over_the_bound_or_a_malformed_piece_is_refused() {
    let mut config = small_pieces(1);
    config.max_snapshot_bytes = 1000;
    let mut node = node_with_log(config, 1, &[1, 1, 1], 3);
    let snapshot = big_snapshot(5, 1);
    node.step(piece_message(1, &snapshot, 0)).unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![message(1, 0, 1, answer(3, 5, 0))],
        "1050 bytes is over max_snapshot_bytes 1000: nothing kept"
    );
    let mut node = follower();
    let mut lying = InstallSnapshot::piece(&snapshot, 0, PIECE_BYTES);
    lying.done = true;
    node.step(message(0, 1, 1, MessageBody::InstallSnapshot(lying)))
        .unwrap();
    let ready = take_ready(&mut node);
    assert!(
        ready.snapshot.is_none(),
        "a piece claiming to be the last is not"
    );
    assert_eq!(ready.messages, vec![message(1, 0, 1, answer(3, 5, 0))]);
}

#[test]
fn a_piece_damaged_on_the_way_is_refused_and_sent_again() {
    let mut node = follower();
    let snapshot = big_snapshot(5, 1);
    node.step(piece_message(1, &snapshot, 0)).unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![message(1, 0, 1, answer(3, 5, 100))]
    );
    // The second piece with one bit flipped in transit (its checksum is
    // the sender's): refused, the first piece kept, the answer asks for
    // the second piece again.
    let mut damaged = InstallSnapshot::piece(&snapshot, 100, PIECE_BYTES);
    damaged.data[17] ^= 0x04;
    assert!(!damaged.checksum_matches());
    node.step(message(0, 1, 1, MessageBody::InstallSnapshot(damaged)))
        .unwrap();
    assert_eq!(
        take_ready(&mut node).messages,
        vec![message(1, 0, 1, answer(3, 5, 100))],
        "a damaged piece is not kept"
    );
    // A damaged last piece is not installed either.
    let mut offset = 100;
    while offset < 1000 {
        node.step(piece_message(1, &snapshot, offset)).unwrap();
        offset += PIECE_BYTES as u64;
        drain(&mut node);
    }
    let mut damaged_last = InstallSnapshot::piece(&snapshot, 1000, PIECE_BYTES);
    damaged_last.data[0] ^= 0x80;
    node.step(message(0, 1, 1, MessageBody::InstallSnapshot(damaged_last)))
        .unwrap();
    let ready = take_ready(&mut node);
    assert!(
        ready.snapshot.is_none(),
        "a damaged last piece installs nothing"
    );
    assert_eq!(ready.messages, vec![message(1, 0, 1, answer(3, 5, 1000))]);
    // The piece sent again: the snapshot installed is the leader's, byte
    // for byte.
    node.step(piece_message(1, &snapshot, 1000)).unwrap();
    let ready = take_ready(&mut node);
    assert_eq!(
        ready.snapshot.map(|ready| ready.snapshot),
        Some(snapshot.clone())
    );
    assert_eq!(ready.messages, vec![message(1, 0, 1, answer(5, 5, 1050))]);
}
