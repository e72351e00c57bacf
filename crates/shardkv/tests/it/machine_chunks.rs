//! A shard moving in pieces (`GroupCommand::ShardChunk`): many pieces make
//! one shard; duplicates, gaps and stale pieces change nothing; a corrupt
//! piece or whole is refused with nothing kept; the transfer bound is
//! checked before a byte is kept; a snapshot taken halfway resumes.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use api::{Error, MachineConfig};
use shardctrler::{Config, Gid};
use shardkv::{
    ChunkOutcome, GroupCommand, GroupOutput, Op, Outcome, ShardChunk, ShardId, ShardMachine,
    key_to_shard, max_transfer_bytes,
};

const SHARDS: usize = 10;
/// The shard that moves from group 1 to group 2 in configuration 2.
const MOVING: ShardId = 7;

fn config(num: u64, shards: [Gid; SHARDS]) -> Config {
    let mut groups = BTreeMap::new();
    for &gid in &shards {
        let addr: SocketAddr = format!("10.0.0.{gid}:7000").parse().expect("address");
        groups.insert(gid, vec![addr]);
    }
    Config {
        num,
        shards: shards.to_vec(),
        groups,
        parked_shards: BTreeMap::new(),
        parked_groups: BTreeMap::new(),
        lost_groups: BTreeMap::new(),
    }
}

/// Keys of `shard`, `count` of them (from a bounded range of names).
fn keys_in(shard: ShardId, count: usize) -> Vec<Vec<u8>> {
    (0..100_000)
        .map(|index| format!("key-{index}").into_bytes())
        .filter(|key| key_to_shard(key, SHARDS) == shard)
        .take(count)
        .collect()
}

fn apply_client(machine: &mut ShardMachine, seq: u64, op: Op) -> Result<Outcome, Error> {
    match machine.apply(
        &GroupCommand::Client {
            client_id: 1,
            seq,
            op,
        },
        seq,
    ) {
        GroupOutput::Client(reply) => reply,
        other => panic!("a client command answered {other:?}"),
    }
}

/// Group 1 fills `MOVING` with `keys` keys of 1 KiB values, then both
/// groups apply configuration 2, which moves it to group 2. Returns the
/// donor, the receiver, the keys and the encoded transfer.
fn moving_shard(keys: usize) -> (ShardMachine, ShardMachine, Vec<Vec<u8>>, Vec<u8>) {
    let donor = crate::logged(ShardMachine::new(1, SHARDS, MachineConfig::default()));
    let receiver = crate::logged(ShardMachine::new(2, SHARDS, MachineConfig::default()));
    moving_shard_between(donor, receiver, keys)
}

/// [`moving_shard`] between the machines given.
fn moving_shard_between(
    mut donor: ShardMachine,
    mut receiver: ShardMachine,
    keys: usize,
) -> (ShardMachine, ShardMachine, Vec<Vec<u8>>, Vec<u8>) {
    let first = config(1, [1; SHARDS]);
    let second = config(2, [1, 1, 1, 1, 1, 1, 1, 2, 1, 1]);
    for machine in [&mut donor, &mut receiver] {
        machine.apply(&GroupCommand::Reconfigure(first.clone()), 1);
    }
    let keys = keys_in(MOVING, keys);
    for (index, key) in keys.iter().enumerate() {
        let put = Op::Put {
            key: key.clone(),
            value: vec![b'a' + (index % 26) as u8; 1024],
            ttl_ms: None,
        };
        assert_eq!(
            apply_client(&mut donor, index as u64 + 1, put),
            Ok(Outcome::Done)
        );
    }
    for machine in [&mut donor, &mut receiver] {
        machine.apply(&GroupCommand::Reconfigure(second.clone()), 1000);
    }
    let whole = donor
        .offered_copy(2, MOVING, 2)
        .expect("the donor offers the moving shard")
        .encode()
        .expect("the shard encodes");
    (donor, receiver, keys, whole)
}

fn send(machine: &mut ShardMachine, config_num: u64, chunk: ShardChunk) -> ChunkOutcome {
    match machine.apply(&GroupCommand::ShardChunk { config_num, chunk }, 2000) {
        GroupOutput::Chunk(outcome) => outcome,
        other => panic!("a piece answered {other:?}"),
    }
}

fn serves(machine: &mut ShardMachine, key: &[u8]) -> bool {
    let get = Op::Get { key: key.to_vec() };
    match apply_client(machine, 0, get) {
        Ok(_) => true,
        Err(Error::WrongGroup { .. }) => false,
        Err(other) => panic!("a get answered {other}"),
    }
}

#[test]
fn a_shard_many_times_the_piece_size_moves_piece_by_piece() {
    let (_donor, mut receiver, keys, whole) = moving_shard(200);
    let crc = crc32fast::hash(&whole);
    let piece_bytes = 4096;
    let pieces = whole.len().div_ceil(piece_bytes as usize);
    assert!(
        pieces >= 40,
        "the transfer is {pieces} pieces: too few to test"
    );
    for index in 0..pieces {
        let offset = receiver.pull_progress(MOVING).expect("still pulling");
        assert_eq!(offset, index as u64 * piece_bytes);
        assert!(
            !serves(&mut receiver, &keys[0]),
            "served before the last piece"
        );
        let chunk = ShardChunk::cut(MOVING, &whole, crc, offset, piece_bytes);
        // A lost reply: the same piece again changes nothing.
        let outcome = send(&mut receiver, 2, chunk.clone());
        assert_eq!(send(&mut receiver, 2, chunk), ChunkOutcome::Ignored);
        if index + 1 < pieces {
            assert_eq!(
                outcome,
                ChunkOutcome::Stored {
                    received_bytes: offset + piece_bytes
                }
            );
        } else {
            assert_eq!(outcome, ChunkOutcome::Installed);
        }
    }
    assert_eq!(receiver.pull_progress(MOVING), None, "installed");
    for key in &keys {
        assert!(serves(&mut receiver, key), "key {key:?} after the move");
    }
    receiver.check_invariants().expect("consistent");
}

#[test]
fn gaps_stale_pieces_and_corrupt_pieces_change_nothing() {
    let (_donor, mut receiver, _keys, whole) = moving_shard(20);
    let crc = crc32fast::hash(&whole);
    let first = ShardChunk::cut(MOVING, &whole, crc, 0, 1000);
    assert_eq!(
        send(&mut receiver, 2, first),
        ChunkOutcome::Stored {
            received_bytes: 1000
        }
    );
    let gap = ShardChunk::cut(MOVING, &whole, crc, 2000, 1000);
    assert_eq!(send(&mut receiver, 2, gap), ChunkOutcome::Ignored);
    let stale = ShardChunk::cut(MOVING, &whole, crc, 1000, 1000);
    assert_eq!(send(&mut receiver, 1, stale.clone()), ChunkOutcome::Ignored);
    assert_eq!(send(&mut receiver, 3, stale), ChunkOutcome::Ignored);
    let mut corrupt = ShardChunk::cut(MOVING, &whole, crc, 1000, 1000);
    corrupt.data[10] ^= 1;
    assert!(matches!(
        send(&mut receiver, 2, corrupt),
        ChunkOutcome::Refused {
            restarted: false,
            ..
        }
    ));
    let mut past_end = ShardChunk::cut(MOVING, &whole, crc, 1000, 1000);
    past_end.total_bytes = 1500;
    assert!(matches!(
        send(&mut receiver, 2, past_end),
        ChunkOutcome::Refused { .. }
    ));
    assert_eq!(receiver.pull_progress(MOVING), Some(1000), "nothing kept");
    receiver.check_invariants().expect("consistent");
}

#[test]
fn a_transfer_over_the_bound_is_refused_before_anything_is_kept() {
    let (_donor, mut receiver, _keys, whole) = moving_shard(2);
    let mut huge = ShardChunk::cut(MOVING, &whole, 0, 0, 100);
    huge.total_bytes = max_transfer_bytes(&MachineConfig::default()) + 1;
    let outcome = send(&mut receiver, 2, huge);
    assert!(
        matches!(&outcome, ChunkOutcome::Refused { reason, .. } if reason.contains("bound")),
        "{outcome:?}"
    );
    assert_eq!(receiver.pull_progress(MOVING), Some(0));
}

#[test]
fn a_whole_that_does_not_match_its_checksum_starts_over() {
    let (_donor, mut receiver, keys, whole) = moving_shard(20);
    let wrong_crc = crc32fast::hash(&whole) ^ 1;
    let half = whole.len() as u64 / 2;
    let first = ShardChunk::cut(MOVING, &whole, wrong_crc, 0, half);
    assert!(matches!(
        send(&mut receiver, 2, first),
        ChunkOutcome::Stored { .. }
    ));
    let rest = ShardChunk::cut(MOVING, &whole, wrong_crc, half, whole.len() as u64);
    assert!(matches!(
        send(&mut receiver, 2, rest),
        ChunkOutcome::Refused {
            restarted: true,
            ..
        }
    ));
    assert_eq!(receiver.pull_progress(MOVING), Some(0), "starts over");
    assert!(!serves(&mut receiver, &keys[0]));

    // Bytes that do not decode as a transfer, with matching checksums.
    let garbage = vec![0xff_u8; 64];
    let chunk = ShardChunk::cut(MOVING, &garbage, crc32fast::hash(&garbage), 0, 64);
    assert!(matches!(
        send(&mut receiver, 2, chunk),
        ChunkOutcome::Refused {
            restarted: true,
            ..
        }
    ));
    assert_eq!(receiver.pull_progress(MOVING), Some(0));

    let right = ShardChunk::cut(
        MOVING,
        &whole,
        crc32fast::hash(&whole),
        0,
        whole.len() as u64,
    );
    assert_eq!(send(&mut receiver, 2, right), ChunkOutcome::Installed);
    assert!(serves(&mut receiver, &keys[0]));
}

#[test]
fn a_snapshot_taken_halfway_resumes_the_transfer() {
    let (_donor, mut receiver, keys, whole) = moving_shard(20);
    let crc = crc32fast::hash(&whole);
    let half = whole.len() as u64 / 2;
    send(
        &mut receiver,
        2,
        ShardChunk::cut(MOVING, &whole, crc, 0, half),
    );
    let mut restored = ShardMachine::restore(&crate::snapshot_checked(&receiver))
        .expect("a snapshot taken halfway restores");
    assert_eq!(restored.pull_progress(MOVING), Some(half));
    let rest = ShardChunk::cut(MOVING, &whole, crc, half, whole.len() as u64);
    assert_eq!(send(&mut restored, 2, rest), ChunkOutcome::Installed);
    for key in &keys {
        assert!(serves(&mut restored, key));
    }
}

/// Limits whose transfer bound is small enough to matter: one client's
/// session, values up to 2,000 bytes, so the bound is twice the capacity
/// plus 3,024 bytes.
fn tight_limits(capacity_bytes: u64) -> MachineConfig {
    let mut limits = MachineConfig::default();
    limits.store.capacity_bytes = capacity_bytes;
    limits.max_clients = 1;
    limits.max_value_bytes = 2_000;
    limits
}

fn set_capacity(machine: &mut ShardMachine, capacity_bytes: u64) -> bool {
    match machine.apply(&GroupCommand::SetStoreCapacity { capacity_bytes }, 2000) {
        GroupOutput::StoreCapacity { applied, .. } => applied,
        other => panic!("a capacity answered {other:?}"),
    }
}

#[test]
fn a_store_capacity_too_small_for_a_shard_arriving_waits_until_it_is_in() {
    let donor = crate::logged(ShardMachine::new(1, SHARDS, tight_limits(1 << 20)));
    let receiver = crate::logged(ShardMachine::new(2, SHARDS, tight_limits(1 << 20)));
    let (_donor, mut receiver, keys, whole) = moving_shard_between(donor, receiver, 20);
    let crc = crc32fast::hash(&whole);
    assert!(whole.len() > 2 * 4_000 + 3_024, "{} bytes", whole.len());
    let chunk = ShardChunk::cut(MOVING, &whole, crc, 0, 1024);
    assert!(matches!(
        send(&mut receiver, 2, chunk),
        ChunkOutcome::Stored { .. }
    ));
    // At 4,000 bytes the held transfer would be over its bound: refused,
    // and the snapshot still restores.
    let smallest = (whole.len() as u64 - 3_024).div_ceil(2);
    assert_eq!(receiver.smallest_store_capacity_for_arrivals(), smallest);
    assert!(receiver.accepts_store_capacity(smallest));
    assert!(!receiver.accepts_store_capacity(smallest - 1));
    assert!(!receiver.accepts_store_capacity(4_000));
    assert!(!set_capacity(&mut receiver, 4_000));
    assert_eq!(receiver.store_capacity_bytes(), 1 << 20);
    ShardMachine::restore(&receiver.snapshot()).expect("the snapshot still restores");
    // A size that keeps it within its bound applies, even a smaller one.
    assert!(set_capacity(&mut receiver, whole.len() as u64));
    ShardMachine::restore(&receiver.snapshot()).expect("the snapshot still restores");
    // Once the shard is in, 4,000 applies.
    let offset = receiver.pull_progress(MOVING).expect("still pulling");
    let rest = ShardChunk::cut(MOVING, &whole, crc, offset, whole.len() as u64);
    assert_eq!(send(&mut receiver, 2, rest), ChunkOutcome::Installed);
    assert!(set_capacity(&mut receiver, 4_000));
    assert!(serves(&mut receiver, &keys[0]) || receiver.stored_bytes() <= 4_000);
}

#[test]
fn replicas_set_differently_decide_a_capacity_alike_while_pieces_arrive() {
    // Two replicas of the receiving group whose files disagree, before the
    // log names a size: whether an entry applies must not depend on the
    // file (the held pieces and the size asked are the same on both).
    let donor = ShardMachine::new(1, SHARDS, tight_limits(1 << 20));
    let mut replicas = Vec::new();
    for own_capacity in [12_000, 64_000] {
        let receiver = ShardMachine::new(2, SHARDS, tight_limits(own_capacity));
        replicas.push(moving_shard_between(
            crate::logged(donor.clone()),
            receiver,
            20,
        ));
    }
    let whole = replicas[0].3.clone();
    assert!(whole.len() > 2 * 4_000 + 3_024 && whole.len() < 2 * 12_000 + 3_024);
    let crc = crc32fast::hash(&whole);
    let decisions: Vec<(bool, bool, bool)> = replicas
        .iter_mut()
        .map(|(_, receiver, _, _)| {
            let chunk = ShardChunk::cut(MOVING, &whole, crc, 0, 1024);
            assert!(matches!(
                send(receiver, 2, chunk),
                ChunkOutcome::Stored { .. }
            ));
            (
                set_capacity(receiver, 16_000),
                set_capacity(receiver, 4_000),
                receiver.capacity_logged(),
            )
        })
        .collect();
    assert_eq!(decisions, vec![(true, false, true); 2]);
    assert_eq!(replicas[0].1.snapshot(), replicas[1].1.snapshot());
}
