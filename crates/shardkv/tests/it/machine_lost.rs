//! A dead donor (issue 13): a group waiting for a shard from a group whose
//! replicas are all gone says which shard waits on which group since when,
//! and once the controller declares that group lost the shard is installed
//! empty, marked lost, and served; the migration finishes and later
//! configurations apply. Exchanges the other way (a shard offered to a lost
//! group, a confirmation it can never give) end too, and a group that was
//! itself declared lost serves nothing. Configurations come from the
//! controller's own history, so both sides agree on them.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use api::{Error, MachineConfig};
use shardctrler::{Config, ConfigHistory, ConfigOp, Gid, Limits};
use shardkv::{
    GroupCommand, GroupOutput, LostShard, Op, Outcome, PullShards, PullWait, ShardId, ShardMachine,
    ShardState, key_to_shard,
};

const SHARDS: usize = 10;

fn group(gid: Gid) -> ShardMachine {
    crate::logged(ShardMachine::new(gid, SHARDS, MachineConfig::default()))
}

fn servers(gid: Gid) -> Vec<SocketAddr> {
    vec![format!("10.0.0.{gid}:7000").parse().expect("address")]
}

/// The controller: applies `op` and returns the configuration it made.
fn change(history: &mut ConfigHistory, op: ConfigOp) -> Config {
    history
        .apply(&op)
        .expect("the controller accepts the change");
    history.query(None).expect("the latest")
}

fn join(history: &mut ConfigHistory, gids: &[Gid]) -> Config {
    let groups = gids.iter().map(|&gid| (gid, servers(gid))).collect();
    change(history, ConfigOp::Join { groups })
}

/// A key in `shard` (searching a bounded range of names).
fn key_in(shard: ShardId) -> Vec<u8> {
    (0..10_000)
        .map(|index| format!("k{index}").into_bytes())
        .find(|key| key_to_shard(key, SHARDS) == shard)
        .expect("every shard has a key among the first 10000 names")
}

fn put(machine: &mut ShardMachine, client_id: u64, key: &[u8], value: &str, now_ms: u64) {
    let op = Op::Put {
        key: key.to_vec(),
        value: value.as_bytes().to_vec(),
        ttl_ms: None,
    };
    let command = GroupCommand::Client {
        client_id,
        seq: 1,
        op,
    };
    match machine.apply(&command, now_ms) {
        GroupOutput::Client(Ok(Outcome::Done)) => {}
        other => panic!("a put answered {other:?}"),
    }
}

fn read(machine: &mut ShardMachine, key: &[u8], now_ms: u64) -> Result<Option<Vec<u8>>, Error> {
    let command = GroupCommand::Client {
        client_id: 0,
        seq: 0,
        op: Op::Get { key: key.to_vec() },
    };
    match machine.apply(&command, now_ms) {
        GroupOutput::Client(reply) => reply.map(|outcome| match outcome {
            Outcome::Value(value) => value,
            other => panic!("a get answered {other:?}"),
        }),
        other => panic!("a client command answered {other:?}"),
    }
}

fn reconfigure(machine: &mut ShardMachine, next: &Config, now_ms: u64) -> bool {
    match machine.apply(&GroupCommand::Reconfigure(next.clone()), now_ms) {
        GroupOutput::Reconfigured { applied } => applied,
        other => panic!("a reconfigure answered {other:?}"),
    }
}

fn groups_lost(machine: &mut ShardMachine, lost: &[(Gid, u64)], now_ms: u64) -> GroupOutput {
    let lost = lost.iter().copied().collect();
    machine.apply(&GroupCommand::GroupsLost { lost }, now_ms)
}

/// Groups 1 and 2 share the shards (configuration 1 gives them all to 1,
/// configuration 2 rebalances onto 2): group 2 pulls five shards from 1.
/// Returns the controller, group 2 blocked at configuration 2, and the
/// shards it waits for.
fn receiver_blocked_on_group_1() -> (ConfigHistory, ShardMachine, Vec<ShardId>) {
    let mut history = ConfigHistory::new(Limits::new(SHARDS));
    let first = join(&mut history, &[1]);
    let second = join(&mut history, &[2]);
    let mut g2 = group(2);
    assert!(reconfigure(&mut g2, &first, 100));
    assert!(reconfigure(&mut g2, &second, 200));
    let pulled = second.shards_of(2);
    assert_eq!(pulled.len(), 5);
    assert!(!g2.migration_done());
    (history, g2, pulled)
}

#[test]
fn a_pull_from_a_group_declared_lost_ends_with_the_shard_served_empty_and_marked() {
    let (mut history, mut g2, pulled) = receiver_blocked_on_group_1();

    // Phase 1: blocked. Status shows who waits on whom since when.
    let waits = g2.pull_waits();
    let expected: Vec<PullWait> = pulled
        .iter()
        .map(|&shard| PullWait {
            shard,
            from: 1,
            config_num: 2,
            since_ms: 200,
        })
        .collect();
    assert_eq!(waits, expected);
    assert_eq!(g2.peers_waited_on(), vec![1]);
    let key = key_in(pulled[0]);
    assert!(matches!(
        read(&mut g2, &key, 300),
        Err(Error::WrongGroup { .. })
    ));
    let third = join(&mut history, &[3]);
    assert!(
        !reconfigure(&mut g2, &third, 300),
        "a blocked group takes no later configuration"
    );

    // Phase 2: the operator declares group 1 lost; the leader learns it.
    let declared = change(&mut history, ConfigOp::DeclareLost { gid: 1 });
    let lost_at = declared.lost_groups[&1];
    let output = groups_lost(&mut g2, &[(1, lost_at)], 400);
    assert_eq!(
        output,
        GroupOutput::GroupsLost {
            emptied: pulled.clone(),
            dropped: vec![],
        }
    );
    for &shard in &pulled {
        assert_eq!(g2.shard_states()[&shard], ShardState::Serving);
        assert_eq!(
            g2.lost_shards()[&shard],
            LostShard {
                config_num: 2,
                previous_owner: 1
            }
        );
    }
    assert!(g2.migration_done());
    assert!(g2.pull_waits().is_empty());
    assert!(g2.peers_waited_on().is_empty());
    assert_eq!(g2.lost_groups(), &BTreeMap::from([(1, lost_at)]));
    g2.check_invariants().expect("invariants");

    // A key of a lost shard just misses; new writes are served.
    assert_eq!(read(&mut g2, &key, 410), Ok(None));
    put(&mut g2, 9, &key, "after", 420);
    assert_eq!(read(&mut g2, &key, 430), Ok(Some(b"after".to_vec())));

    // Learning it again changes nothing (a second leader, a retry).
    assert_eq!(
        groups_lost(&mut g2, &[(1, lost_at)], 440),
        GroupOutput::GroupsLost {
            emptied: vec![],
            dropped: vec![],
        }
    );
    assert_eq!(read(&mut g2, &key, 450), Ok(Some(b"after".to_vec())));

    // Phase 3: the group moves on through the later configurations.
    assert!(reconfigure(&mut g2, &third, 500));
    assert!(
        !g2.pull_waits().iter().any(|wait| wait.from == 1),
        "configuration 3 names group 1 as donor again, but it is known lost"
    );
    g2.check_invariants().expect("invariants");
}

#[test]
fn a_later_configuration_naming_a_lost_group_as_donor_installs_empty() {
    // Group 3 is at configuration 1 (group 1 holds everything). It learns
    // that 1 is lost only from the configurations it applies.
    let mut history = ConfigHistory::new(Limits::new(SHARDS));
    let first = join(&mut history, &[1]);
    let second = join(&mut history, &[2]);
    let declared = change(&mut history, ConfigOp::DeclareLost { gid: 1 });
    let mut g2 = group(2);
    assert!(reconfigure(&mut g2, &first, 10));
    assert!(reconfigure(&mut g2, &second, 20));
    assert_eq!(
        g2.pulls_wanted().get(&1).map(Vec::len),
        Some(5),
        "configuration 2 names group 1 (not yet declared lost) as donor"
    );
    // Configuration 3 declares 1 lost; group 2 cannot apply it while
    // blocked, but its leader reads it and proposes GroupsLost.
    assert!(!reconfigure(&mut g2, &declared, 30));
    groups_lost(&mut g2, &[(1, declared.num)], 40);
    assert!(reconfigure(&mut g2, &declared, 50));
    // Every shard is group 2's now: the five it had (empty, marked at 2)
    // and the five group 1 still owned in configuration 2 (empty, marked at
    // 3, the configuration that would have had 1 hand them over).
    assert_eq!(g2.shard_states().len(), SHARDS);
    assert!(g2.migration_done());
    let lost = g2.lost_shards();
    assert_eq!(lost.len(), SHARDS);
    for (shard, marker) in lost {
        let expected = if second.shards[shard] == 2 { 2 } else { 3 };
        assert_eq!(
            marker,
            LostShard {
                config_num: expected,
                previous_owner: 1
            },
            "shard {shard}"
        );
    }
    g2.check_invariants().expect("invariants");

    // A group that joins later and is given a shard whose holder was lost
    // long ago pulls it from its real holder, not from the lost group.
    let fourth = join(&mut history, &[4]);
    let mut g4 = group(4);
    for next in [&first, &second, &declared, &fourth] {
        assert!(reconfigure(&mut g4, next, 60));
    }
    assert!(g4.lost_shards().is_empty());
    assert_eq!(g4.peers_waited_on(), vec![2]);
}

#[test]
fn exchanges_with_a_lost_receiver_or_donor_end() {
    let mut history = ConfigHistory::new(Limits::new(SHARDS));
    let first = join(&mut history, &[1]);
    let second = join(&mut history, &[2]);
    let mut g1 = group(1);
    assert!(reconfigure(&mut g1, &first, 10));
    let kept_shard = first
        .shards
        .iter()
        .enumerate()
        .position(|(shard, _)| second.shards[shard] == 1)
        .expect("group 1 keeps some shards");
    let key = key_in(kept_shard);
    put(&mut g1, 5, &key, "kept", 15);
    assert!(reconfigure(&mut g1, &second, 20));
    let offered: Vec<ShardId> = second.shards_of(2);
    assert!(
        offered
            .iter()
            .all(|shard| g1.shard_states()[shard] == ShardState::Offering { to: 2 })
    );
    assert_eq!(g1.peers_waited_on(), vec![2]);

    // Group 2 is lost before it pulled: group 1 drops what it offered (the
    // data belongs to the configuration that gave it to 2) and moves on.
    let declared = change(&mut history, ConfigOp::DeclareLost { gid: 2 });
    assert_eq!(
        groups_lost(&mut g1, &[(2, declared.num)], 30),
        GroupOutput::GroupsLost {
            emptied: vec![],
            dropped: offered.clone(),
        }
    );
    assert!(g1.migration_done());
    assert!(reconfigure(&mut g1, &declared, 40));
    assert_eq!(read(&mut g1, &key, 50), Ok(Some(b"kept".to_vec())));
    for shard in &offered {
        assert_eq!(
            g1.lost_shards().get(shard).map(|lost| lost.previous_owner),
            Some(2),
            "shard {shard} comes back empty, marked lost"
        );
    }
    g1.check_invariants().expect("invariants");

    // A receiver that has the data but could not confirm: just Serving.
    let mut history = ConfigHistory::new(Limits::new(SHARDS));
    let first = join(&mut history, &[1]);
    let second = join(&mut history, &[2]);
    let (mut g1, mut g2) = (group(1), group(2));
    for machine in [&mut g1, &mut g2] {
        assert!(reconfigure(machine, &first, 10));
    }
    let moved = second.shards_of(2)[0];
    let moved_key = key_in(moved);
    put(&mut g1, 6, &moved_key, "moved", 15);
    for machine in [&mut g1, &mut g2] {
        assert!(reconfigure(machine, &second, 20));
    }
    let request = PullShards {
        config_num: 2,
        shards: second.shards_of(2),
        from_gid: 2,
    };
    let transfers = g1.offer(&request).expect("offered");
    g2.apply(
        &GroupCommand::InstallShards {
            config_num: 2,
            transfers,
        },
        30,
    );
    assert_eq!(
        g2.shard_states()[&moved],
        ShardState::Confirming { from: 1 }
    );
    let declared = change(&mut history, ConfigOp::DeclareLost { gid: 1 });
    groups_lost(&mut g2, &[(1, declared.num)], 40);
    assert_eq!(g2.shard_states()[&moved], ShardState::Serving);
    assert!(!g2.lost_shards().contains_key(&moved), "its data is here");
    assert_eq!(read(&mut g2, &moved_key, 50), Ok(Some(b"moved".to_vec())));
}

#[test]
fn a_group_declared_lost_drops_its_shards_and_serves_nothing() {
    let mut history = ConfigHistory::new(Limits::new(SHARDS));
    join(&mut history, &[1, 2]);
    let joined = history.query(None).expect("latest");
    let mut g1 = group(1);
    assert!(reconfigure(&mut g1, &joined, 10));
    let key = key_in(joined.shards_of(1)[0]);
    put(&mut g1, 1, &key, "old", 20);

    // Its replicas come back after the operator gave it up: the first
    // configuration it applies that lists it lost empties it.
    let declared = change(&mut history, ConfigOp::DeclareLost { gid: 1 });
    assert!(reconfigure(&mut g1, &declared, 30));
    assert!(g1.is_declared_lost());
    assert!(g1.shard_states().is_empty());
    assert!(matches!(
        read(&mut g1, &key, 40),
        Err(Error::WrongGroup { .. })
    ));
    g1.check_invariants().expect("invariants");

    // Or, blocked mid-migration, from GroupsLost naming itself.
    let mut history = ConfigHistory::new(Limits::new(SHARDS));
    let first = join(&mut history, &[1]);
    let second = join(&mut history, &[2]);
    let mut g1 = group(1);
    assert!(reconfigure(&mut g1, &first, 10));
    assert!(reconfigure(&mut g1, &second, 20));
    let declared = change(&mut history, ConfigOp::DeclareLost { gid: 1 });
    let output = groups_lost(&mut g1, &[(1, declared.num)], 30);
    assert_eq!(
        output,
        GroupOutput::GroupsLost {
            emptied: vec![],
            dropped: (0..SHARDS).collect(),
        }
    );
    assert!(g1.shard_states().is_empty());
    assert!(matches!(
        read(&mut g1, &key_in(0), 40),
        Err(Error::WrongGroup { .. })
    ));
    assert!(g1.migration_done());
    // A restored snapshot keeps all of it.
    let restored = ShardMachine::restore(&g1.snapshot()).expect("restores");
    assert!(restored.is_declared_lost());
}

#[test]
fn markers_and_the_lost_set_survive_a_snapshot() {
    let (mut history, mut g2, pulled) = receiver_blocked_on_group_1();
    let declared = change(&mut history, ConfigOp::DeclareLost { gid: 1 });
    groups_lost(&mut g2, &[(1, declared.num)], 400);
    let restored = ShardMachine::restore(&crate::snapshot_checked(&g2)).expect("restores");
    assert_eq!(restored.lost_shards(), g2.lost_shards());
    assert_eq!(restored.lost_groups(), g2.lost_groups());
    assert_eq!(restored.lost_shards().len(), pulled.len());
}
