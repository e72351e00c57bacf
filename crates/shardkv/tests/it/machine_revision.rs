//! The stores' policy revision (`GroupCommand::SetPolicyRevision`): one
//! index of the log switches every replica's eviction behaviour, whatever
//! snapshot each replica replays its log from.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use api::MachineConfig;
use cache::PolicyRevision;
use shardctrler::{Config, Gid};
use shardkv::{GroupCommand, GroupOutput, Op, ShardMachine, ShardTransfer};

/// One shard, so every key lands in one store, which grows through the
/// sizes at which the revisions' shadows sample differently (4096 and
/// 8192 entries).
const SHARDS: usize = 1;
/// Client writes in the log: half of them new keys, half revisits.
const WRITES: u64 = 30_000;
/// Where the switch is: about 5,000 keys in, between the two sizes.
const SWITCH_AT_WRITE: u64 = 10_000;

fn config(num: u64, gid: Gid) -> Config {
    let addr: SocketAddr = format!("10.0.0.{gid}:7000").parse().expect("address");
    Config {
        num,
        shards: vec![gid; SHARDS],
        groups: BTreeMap::from([(gid, vec![addr])]),
        parked_shards: BTreeMap::new(),
        parked_groups: BTreeMap::new(),
        lost_groups: BTreeMap::new(),
    }
}

fn revision(revision: PolicyRevision) -> GroupCommand {
    GroupCommand::SetPolicyRevision {
        revision: revision.number(),
    }
}

/// A group's log: its first configuration and store capacity, then
/// `WRITES` writes, every other one a new key and the rest revisiting
/// the keys so far, skewed towards the older ones (hits, in the stores'
/// policy), with the switch to the latest revision (if `switch`) before
/// write `SWITCH_AT_WRITE`.
fn group_log(switch: bool) -> Vec<GroupCommand> {
    let capacity_bytes = MachineConfig::default().store.capacity_bytes;
    let mut log = vec![
        GroupCommand::Reconfigure(config(1, 1)),
        GroupCommand::SetStoreCapacity { capacity_bytes },
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut keys = 0u64;
    for index in 0..WRITES {
        if switch && index == SWITCH_AT_WRITE {
            log.push(revision(PolicyRevision::LATEST));
        }
        let key = if index % 2 == 0 {
            keys += 1;
            keys - 1
        } else {
            // xorshift; the square skews towards the older keys.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let uniform = state % keys;
            uniform * uniform / keys
        };
        let op = Op::Put {
            key: format!("key{key}").into_bytes(),
            value: format!("value {index}").into_bytes(),
            ttl_ms: None,
        };
        log.push(GroupCommand::Client {
            client_id: 1,
            seq: index + 1,
            op,
        });
    }
    log
}

/// Applies `commands`, the log's entries from index `first` on, each
/// stamped with its index as the leader's time.
fn apply_all(machine: &mut ShardMachine, first: usize, commands: &[GroupCommand]) {
    for (offset, command) in commands.iter().enumerate() {
        let index = first + offset;
        let output = machine.apply(command, index as u64);
        assert!(
            !matches!(output, GroupOutput::PolicyRevision { applied: false }),
            "entry {index} refused"
        );
    }
}

/// Three replicas of one group: one applies the whole log, one restores
/// a snapshot taken before the switch and one a snapshot taken after it,
/// each then applying the rest. All three end with the same bytes; a
/// replica whose log has no switch ends with others (so the comparison
/// sees the shadows).
#[test]
fn replicas_restored_on_either_side_of_the_switch_end_alike() {
    let log = group_log(true);
    let switch_at = log
        .iter()
        .position(|command| matches!(command, GroupCommand::SetPolicyRevision { .. }))
        .expect("the log switches");
    let fresh = || ShardMachine::new(1, SHARDS, MachineConfig::default());

    let mut whole = fresh();
    apply_all(&mut whole, 0, &log);
    assert_eq!(whole.policy_revision(), PolicyRevision::LATEST);
    whole.check_invariants().expect("consistent");

    let mut ends = Vec::new();
    for cut in [switch_at - 1_000, switch_at + 1_000] {
        let mut before_cut = fresh();
        apply_all(&mut before_cut, 0, &log[..cut]);
        let mut restored =
            ShardMachine::restore(&crate::snapshot_checked(&before_cut)).expect("restores");
        apply_all(&mut restored, cut, &log[cut..]);
        restored.check_invariants().expect("consistent");
        ends.push(restored);
    }
    let bytes = crate::snapshot_checked(&whole);
    for (restored, side) in ends.iter().zip(["before", "after"]) {
        assert!(
            crate::snapshot_checked(restored) == bytes,
            "the replica restored {side} the switch differs from the one that applied it all"
        );
    }

    let mut unswitched = fresh();
    apply_all(&mut unswitched, 0, &group_log(false));
    assert_eq!(unswitched.policy_revision(), PolicyRevision::Original);
    assert!(
        unswitched.snapshot() != bytes,
        "the revision changed nothing in the stores: this test would not see a divergence"
    );
}

/// Unknown numbers and older revisions are refused and change nothing;
/// the same revision again is taken and changes nothing either.
#[test]
fn a_revision_unknown_or_older_is_refused_and_changes_nothing() {
    let mut machine = ShardMachine::new(1, SHARDS, MachineConfig::default());
    let commands = group_log(false);
    apply_all(&mut machine, 0, &commands[..2_000]);
    let apply = |machine: &mut ShardMachine, number: u32| match machine
        .apply(&GroupCommand::SetPolicyRevision { revision: number }, 0)
    {
        GroupOutput::PolicyRevision { applied } => applied,
        other => panic!("a revision answered {other:?}"),
    };
    let before = machine.snapshot();
    let unknown = PolicyRevision::ALL.len() as u32;
    assert!(!apply(&mut machine, unknown));
    assert!(!apply(&mut machine, u32::MAX));
    assert!(
        machine.snapshot() == before,
        "a refused revision changed the machine"
    );

    assert!(apply(&mut machine, PolicyRevision::LATEST.number()));
    let switched = machine.snapshot();
    assert!(switched != before, "the revision is in the snapshot");
    assert!(apply(&mut machine, PolicyRevision::LATEST.number()));
    assert!(!apply(&mut machine, PolicyRevision::Original.number()));
    assert!(machine.snapshot() == switched);
    assert_eq!(machine.policy_revision(), PolicyRevision::LATEST);
    machine.check_invariants().expect("consistent");
}

/// A shard that moves to another group keeps to the receiving group's
/// revision, whatever the donor's (the store's bytes do not carry it).
#[test]
fn a_received_shard_keeps_to_the_receiving_group_revision() {
    for (donor_revision, receiver_revision) in [
        (PolicyRevision::LATEST, PolicyRevision::Original),
        (PolicyRevision::Original, PolicyRevision::LATEST),
    ] {
        let capacity_bytes = MachineConfig::default().store.capacity_bytes;
        let setup = |gid: Gid, revision_wanted: PolicyRevision| {
            let mut machine = ShardMachine::new(gid, SHARDS, MachineConfig::default());
            machine.apply(&GroupCommand::SetStoreCapacity { capacity_bytes }, 0);
            machine.apply(&revision(revision_wanted), 0);
            machine.apply(&GroupCommand::Reconfigure(config(1, 1)), 0);
            machine
        };
        let (mut donor, mut receiver) = (setup(1, donor_revision), setup(2, receiver_revision));
        apply_all(&mut donor, 2, &group_log(false)[2..500]);
        let next = config(2, 2);
        for machine in [&mut donor, &mut receiver] {
            machine.apply(&GroupCommand::Reconfigure(next.clone()), 1);
        }
        let bytes = donor
            .offered_copy(2, 0, 2)
            .expect("the donor offers the shard")
            .encode()
            .expect("the shard encodes");
        let transfer = ShardTransfer::decode(&bytes).expect("decodes");
        match receiver.apply(
            &GroupCommand::InstallShards {
                config_num: 2,
                transfers: vec![transfer],
            },
            2,
        ) {
            GroupOutput::Installed { shards } => assert_eq!(shards, vec![0]),
            other => panic!("the install answered {other:?}"),
        }
        receiver
            .check_invariants()
            .expect("the received store keeps to the group's revision");
    }
}

/// A snapshot of format 4 (from before revisions) reads as the original
/// revision, as its stores behaved; the next leader writes the latest.
#[test]
fn a_snapshot_from_before_revisions_reads_as_the_original() {
    let mut machine = ShardMachine::new(1, SHARDS, MachineConfig::default());
    apply_all(&mut machine, 0, &group_log(false)[..1_000]);
    let format_4 = codec::encode_versioned(
        &[codec::Format {
            what: "shard machine snapshot",
            version: 4,
        }],
        &(
            &machine,
            &BTreeMap::<u32, cache::store::DiskSnapshot>::new(),
            machine.pollers_may_exist(),
            machine.capacity_logged(),
        ),
    );
    let restored = ShardMachine::restore(&format_4).expect("format 4 restores");
    assert_eq!(restored.policy_revision(), PolicyRevision::Original);
    assert!(restored.capacity_logged());
    assert!(restored.snapshot() == machine.snapshot());
    // A number this build does not know is refused, not guessed.
    let mut unknown = machine.snapshot();
    let last = unknown.len() - 1;
    unknown[last] = PolicyRevision::ALL.len() as u8;
    let error = ShardMachine::restore(&unknown).expect_err("an unknown revision");
    assert!(error.contains("policy revision"), "{error}");
}

/// Each revision and the shardkv format version that brought it. A build
/// that does not know a revision must refuse the entry that writes it
/// (by its format version) rather than skip it and evict apart from its
/// peers; so a new revision needs a row here, whose version must be newer
/// than the last row's and at most the machine's: a new format version.
#[test]
fn a_new_policy_revision_comes_with_a_new_format_version() {
    use rsm::ReplicatedMachine;
    let introduced = [
        (PolicyRevision::Original, 3),
        (PolicyRevision::SmallerShadows, 10),
    ];
    assert_eq!(
        introduced.map(|(revision, _)| revision),
        PolicyRevision::ALL,
        "a revision without its row: raise ShardMachine::FORMAT_VERSION and add one"
    );
    assert!(introduced.windows(2).all(|pair| pair[0].1 < pair[1].1));
    let (_, newest) = introduced[introduced.len() - 1];
    assert!(newest <= ShardMachine::FORMAT_VERSION);
}
