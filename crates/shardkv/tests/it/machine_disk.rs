//! Groups whose shards have a disk tier (L3), driven by hand: replicas
//! that apply the same commands stay identical (their snapshots are the
//! same bytes) although each keeps its files in its own directory; a
//! replica rebuilt from another's snapshot in a new directory carries on
//! identically; a shard that moves to another group with the tier brings
//! its cold keys along; a dropped shard's files go; a donor replica whose
//! tier cannot be read back refuses a pull instead of handing a wrong copy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use api::{Error, MachineConfig};
use cache::store::DiskConfig;
use shardctrler::{Config, Gid};
use shardkv::{
    DiskPlacement, GroupCommand, GroupOutput, MigrationError, Op, Outcome, PullShards,
    ShardMachine, key_to_shard,
};

const SHARDS: usize = 4;
const KEYS: u64 = 300;

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

/// Memory holds about 12 entries per shard, the disk about 200: most keys
/// live on disk.
fn limits() -> MachineConfig {
    let mut limits = MachineConfig::default();
    limits.store.capacity_bytes = 2_000;
    limits.store.disk = Some(DiskConfig {
        capacity_bytes: 32_000,
        segment_bytes: 2_048,
    });
    limits
}

fn replica(gid: Gid, root: &Path) -> ShardMachine {
    let placement = DiskPlacement::open(root).expect("a disk placement");
    crate::logged(ShardMachine::with_disk(gid, SHARDS, limits(), placement))
}

fn key(index: u64) -> Vec<u8> {
    format!("key-{index:04}").into_bytes()
}

fn value(index: u64, round: u64) -> String {
    format!("value {index} of round {round} {}", "v".repeat(40))
}

fn client(machine: &mut ShardMachine, seq: u64, op: Op, now_ms: u64) -> Result<Outcome, Error> {
    let command = GroupCommand::Client {
        client_id: 7,
        seq,
        op,
    };
    match machine.apply(&command, now_ms) {
        GroupOutput::Client(reply) => reply,
        other => panic!("a client command answered {other:?}"),
    }
}

/// The same commands on every replica: writes of `round`, deletes of
/// every seventh key. Returns the next sequence number.
fn write_round(replicas: &mut [&mut ShardMachine], round: u64, mut seq: u64) -> u64 {
    for index in 0..KEYS {
        let op = Op::Put {
            key: key(index),
            value: value(index, round).into_bytes(),
            ttl_ms: None,
        };
        for machine in replicas.iter_mut() {
            assert_eq!(
                client(machine, seq, op.clone(), 10 + round),
                Ok(Outcome::Done)
            );
        }
        seq += 1;
    }
    for index in (0..KEYS).step_by(7) {
        let op = Op::Delete { key: key(index) };
        for machine in replicas.iter_mut() {
            client(machine, seq, op.clone(), 10 + round).expect("a delete applies");
        }
        seq += 1;
    }
    seq
}

/// Reads every key through the log on `machine` and checks its value.
fn check_values(machine: &mut ShardMachine, round: u64, now_ms: u64) {
    for index in 0..KEYS {
        let expected = (index % 7 != 0).then(|| value(index, round).into_bytes());
        let reply = client(machine, 0, Op::Get { key: key(index) }, now_ms);
        assert_eq!(
            reply,
            Ok(Outcome::Value(expected)),
            "group {} key {index}",
            machine.gid()
        );
    }
}

fn disk_entries(machine: &ShardMachine) -> u64 {
    machine
        .shard_stats()
        .values()
        .map(|(_, stats)| stats.disk_entries)
        .sum()
}

fn disk_hits(machine: &ShardMachine) -> u64 {
    machine
        .shard_stats()
        .values()
        .map(|(_, stats)| stats.disk_hits)
        .sum()
}

fn directories(root: &Path) -> usize {
    std::fs::read_dir(root)
        .expect("list the placement")
        .filter(|item| item.as_ref().is_ok_and(|item| item.path().is_dir()))
        .count()
}

#[test]
fn replicas_with_their_own_files_stay_identical() {
    let roots: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("a temporary directory"))
        .collect();
    let mut first = replica(1, roots[0].path());
    let mut second = replica(1, roots[1].path());

    eprintln!("phase 1: both replicas take every shard and spill most keys to disk");
    let everything = config(1, [1; SHARDS]);
    for machine in [&mut first, &mut second] {
        assert_eq!(
            machine.apply(&GroupCommand::Reconfigure(everything.clone()), 1),
            GroupOutput::Reconfigured { applied: true }
        );
    }
    assert_eq!(
        directories(roots[0].path()),
        SHARDS,
        "a directory per shard"
    );
    let mut seq = write_round(&mut [&mut first, &mut second], 0, 1);
    assert!(
        disk_entries(&first) > KEYS / 2,
        "most keys should be on disk, {} are",
        disk_entries(&first)
    );
    assert_eq!(first.snapshot(), second.snapshot());

    eprintln!("phase 2: reads bring keys back from disk, alike on both");
    check_values(&mut first, 0, 20);
    check_values(&mut second, 0, 20);
    assert!(disk_hits(&first) > 0, "no read was served from disk");
    assert_eq!(first.snapshot(), second.snapshot());
    assert!(first.disk_fault().is_none() && second.disk_fault().is_none());

    eprintln!("phase 3: the second replica is rebuilt from the first's snapshot elsewhere");
    let snapshot = crate::snapshot_checked(&first);
    let rebuilt = replica(1, roots[2].path())
        .restore_here(&snapshot)
        .expect("the snapshot restores");
    drop(second);
    let mut second = rebuilt;
    assert_eq!(second.snapshot(), snapshot);
    assert!(disk_entries(&second) > KEYS / 2);

    eprintln!("phase 4: both carry on alike");
    seq = write_round(&mut [&mut first, &mut second], 1, seq);
    check_values(&mut first, 1, 30);
    check_values(&mut second, 1, 30);
    assert_eq!(first.snapshot(), second.snapshot());
    assert!(seq > KEYS);
}

#[test]
fn a_moving_shard_brings_its_cold_keys_and_its_files_go() {
    let roots: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("a temporary directory"))
        .collect();
    let mut donor = replica(1, roots[0].path());
    let mut receiver = replica(2, roots[1].path());

    eprintln!("phase 1: group 1 holds every shard, most keys on disk");
    let first = config(1, [1; SHARDS]);
    for machine in [&mut donor, &mut receiver] {
        machine.apply(&GroupCommand::Reconfigure(first.clone()), 1);
    }
    write_round(&mut [&mut donor], 0, 1);
    assert!(disk_entries(&donor) > KEYS / 2);

    eprintln!("phase 2: shard 0 moves to group 2, which installs it with its tier");
    let second = config(2, [2, 1, 1, 1]);
    for machine in [&mut donor, &mut receiver] {
        assert_eq!(
            machine.apply(&GroupCommand::Reconfigure(second.clone()), 2),
            GroupOutput::Reconfigured { applied: true }
        );
    }
    let transfers = donor
        .offer(&PullShards {
            config_num: 2,
            shards: vec![0],
            from_gid: 2,
        })
        .expect("the donor offers shard 0");
    assert_eq!(
        receiver.apply(
            &GroupCommand::InstallShards {
                config_num: 2,
                transfers,
            },
            3,
        ),
        GroupOutput::Installed { shards: vec![0] }
    );
    assert!(
        disk_entries(&receiver) > 0,
        "the cold keys came along on disk"
    );
    let moved: Vec<u64> = (0..KEYS)
        .filter(|&index| key_to_shard(&key(index), SHARDS) == 0)
        .collect();
    assert!(!moved.is_empty());
    for &index in &moved {
        let expected = (index % 7 != 0).then(|| value(index, 0).into_bytes());
        let reply = client(&mut receiver, 0, Op::Get { key: key(index) }, 4);
        assert_eq!(reply, Ok(Outcome::Value(expected)), "key {index}");
    }
    assert!(receiver.disk_fault().is_none());

    eprintln!("phase 3: the donor deletes its copy, and the files with it");
    assert_eq!(directories(roots[0].path()), SHARDS);
    assert_eq!(
        donor.apply(
            &GroupCommand::DeleteShards {
                config_num: 2,
                shards: vec![0],
                from_gid: 2,
            },
            5,
        ),
        GroupOutput::Deleted(Ok(()))
    );
    assert_eq!(directories(roots[0].path()), SHARDS - 1);
}

/// Every segment file under `root` (any depth) with its bytes flipped.
fn damage_segments(root: &Path) -> usize {
    let mut damaged = 0;
    for shard_directory in std::fs::read_dir(root).expect("list the placement") {
        let shard_directory = shard_directory.expect("an entry").path();
        for file in std::fs::read_dir(&shard_directory).expect("list a shard's tier") {
            let path = file.expect("an entry").path();
            let mut bytes = std::fs::read(&path).expect("read a segment");
            for byte in &mut bytes {
                *byte ^= 0x5a;
            }
            std::fs::write(&path, bytes).expect("rewrite a segment");
            damaged += 1;
        }
    }
    damaged
}

#[test]
fn a_damaged_tier_is_a_fault_never_a_wrong_value() {
    let roots: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("a temporary directory"))
        .collect();
    let mut healthy = replica(1, roots[0].path());
    let mut damaged = replica(1, roots[1].path());
    let everything = config(1, [1; SHARDS]);
    for machine in [&mut healthy, &mut damaged] {
        machine.apply(&GroupCommand::Reconfigure(everything.clone()), 1);
    }
    write_round(&mut [&mut healthy, &mut damaged], 0, 1);

    eprintln!("phase 1: every segment file of one replica is damaged");
    assert!(damage_segments(roots[1].path()) > 0);
    assert!(damaged.disk_fault().is_none(), "nothing read yet");

    eprintln!("phase 2: reads on it give the right value or leave a fault");
    for index in 0..KEYS {
        let expected = (index % 7 != 0).then(|| value(index, 0).into_bytes());
        let reply = client(&mut damaged, 0, Op::Get { key: key(index) }, 20);
        if reply != Ok(Outcome::Value(expected.clone())) {
            assert_eq!(
                reply,
                Ok(Outcome::Value(None)),
                "key {index}: a damaged value must read as lost, never as another"
            );
            assert!(expected.is_some(), "key {index} appeared from nowhere");
            assert!(
                damaged.disk_fault().is_some(),
                "key {index} was lost without a fault"
            );
        }
    }
    assert!(
        damaged.disk_fault().is_some(),
        "no fault after reading damaged files"
    );

    eprintln!("phase 3: it is rebuilt from the healthy replica's snapshot");
    let rebuilt = replica(1, roots[1].path())
        .restore_here(&healthy.snapshot())
        .expect("the snapshot restores");
    let mut rebuilt = rebuilt;
    assert!(rebuilt.disk_fault().is_none());
    check_values(&mut rebuilt, 0, 30);
    check_values(&mut healthy, 0, 30);
    assert_eq!(rebuilt.snapshot(), healthy.snapshot());
}

#[test]
fn a_donor_whose_tier_is_damaged_refuses_the_pull_and_another_hands_it_over() {
    let roots: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("a temporary directory"))
        .collect();
    let mut healthy = replica(1, roots[0].path());
    let mut damaged = replica(1, roots[1].path());
    let first = config(1, [1; SHARDS]);
    let second = config(2, [2, 1, 1, 1]);
    for machine in [&mut healthy, &mut damaged] {
        machine.apply(&GroupCommand::Reconfigure(first.clone()), 1);
    }
    write_round(&mut [&mut healthy, &mut damaged], 0, 1);
    for machine in [&mut healthy, &mut damaged] {
        assert_eq!(
            machine.apply(&GroupCommand::Reconfigure(second.clone()), 2),
            GroupOutput::Reconfigured { applied: true }
        );
    }
    assert!(disk_entries(&damaged) > 0, "shard 0 has keys on disk");

    eprintln!("phase 1: one donor replica's segment files are damaged");
    assert!(damage_segments(roots[1].path()) > 0);
    let pull = PullShards {
        config_num: 2,
        shards: vec![0],
        from_gid: 2,
    };
    match damaged.offer(&pull) {
        Err(MigrationError::DonorFault { shard: 0, detail }) => {
            assert!(!detail.is_empty());
        }
        other => panic!("a damaged tier must refuse the pull, got {other:?}"),
    }
    let copy = damaged
        .offered_copy(2, 0, 2)
        .expect("the shard is still offered");
    assert!(
        matches!(
            copy.encode(),
            Err(MigrationError::DonorFault { shard: 0, .. })
        ),
        "the encoded copy is refused too"
    );

    eprintln!("phase 2: the healthy replica hands the same shard over");
    let transfers = healthy.offer(&pull).expect("the healthy donor offers it");
    assert_eq!(transfers.len(), 1);
    let bytes = healthy
        .offered_copy(2, 0, 2)
        .expect("offered")
        .encode()
        .expect("the healthy copy encodes");
    assert!(!bytes.is_empty());
}
