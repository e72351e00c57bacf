//! The controller's pure state: Join, Leave, Move, Query; numbered,
//! immutable configurations; refused requests change nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use shardctrler::placement::is_balanced;
use shardctrler::{
    Config, ConfigAnswer, ConfigError, ConfigHistory, ConfigOp, Gid, Limits, UNASSIGNED,
};

fn addr(gid: Gid, replica: u16) -> SocketAddr {
    SocketAddr::from(([10, 9, (gid % 256) as u8, replica as u8], 7000 + replica))
}

fn servers(gid: Gid, count: u16) -> Vec<SocketAddr> {
    (0..count).map(|replica| addr(gid, replica)).collect()
}

fn join(history: &mut ConfigHistory, gids: &[Gid]) -> Result<ConfigAnswer, ConfigError> {
    let groups = gids.iter().map(|&gid| (gid, servers(gid, 3))).collect();
    history.apply(&ConfigOp::Join { groups })
}

fn leave(history: &mut ConfigHistory, gids: &[Gid]) -> Result<ConfigAnswer, ConfigError> {
    history.apply(&ConfigOp::Leave {
        gids: gids.to_vec(),
    })
}

fn latest(history: &ConfigHistory) -> Config {
    history.query(None).expect("the latest always exists")
}

fn assert_balanced(config: &Config) {
    let gids = config.groups.keys().copied().collect();
    assert!(
        is_balanced(&config.shards, &gids),
        "configuration {} is not balanced: {:?} over {:?}",
        config.num,
        config.shards,
        gids
    );
}

/// Applies a request that must be refused and checks nothing changed.
fn assert_refused(history: &mut ConfigHistory, op: ConfigOp, expected: ConfigError) {
    let before = history.clone();
    assert_eq!(history.apply(&op), Err(expected), "{op:?}");
    assert_eq!(*history, before, "refused {op:?} changed the history");
}

#[test]
fn starts_with_configuration_zero() {
    let history = ConfigHistory::new(Limits::new(10));
    let config = latest(&history);
    assert_eq!(config, Config::initial(10));
    assert_eq!(history.query(Some(0)), Ok(config));
}

#[test]
fn every_change_makes_the_next_number_and_keeps_the_old() {
    let mut history = ConfigHistory::new(Limits::new(10));
    assert_eq!(
        join(&mut history, &[1]),
        Ok(ConfigAnswer::Changed { num: 1 })
    );
    assert_eq!(
        join(&mut history, &[2]),
        Ok(ConfigAnswer::Changed { num: 2 })
    );
    assert_eq!(
        history.apply(&ConfigOp::Move { shard: 0, gid: 2 }),
        Ok(ConfigAnswer::Changed { num: 3 })
    );
    assert_eq!(
        leave(&mut history, &[2]),
        Ok(ConfigAnswer::Changed { num: 4 })
    );
    let one = history.query(Some(1)).expect("config 1 exists");
    assert_eq!(one.shards, vec![1; 10]);
    assert_eq!(one.groups.keys().copied().collect::<Vec<_>>(), vec![1]);
    let two = history.query(Some(2)).expect("config 2 exists");
    assert_balanced(&two);
    assert_eq!(two.shards_of(1).len(), 5);
    let three = history.query(Some(3)).expect("config 3 exists");
    assert_eq!(three.owner(0), Some(2));
    assert_eq!(three.shards_of(2).len(), 6);
    let four = latest(&history);
    assert_eq!(four.num, 4);
    assert_eq!(four.shards, vec![1; 10]);
    assert_eq!(
        history.apply(&ConfigOp::Query { num: Some(2) }),
        Ok(ConfigAnswer::Config(two))
    );
}

#[test]
fn join_of_several_groups_at_once_is_one_configuration() {
    let mut history = ConfigHistory::new(Limits::new(10));
    assert_eq!(
        join(&mut history, &[3, 1, 2]),
        Ok(ConfigAnswer::Changed { num: 1 })
    );
    let config = latest(&history);
    assert_balanced(&config);
    assert_eq!(config.groups[&2], servers(2, 3));
    // Groups are listed by gid; the extra shard goes to the smallest gid.
    assert_eq!(config.shards_of(1).len(), 4);
}

#[test]
fn leaving_every_group_unassigns_every_shard() {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1, 2]).expect("join");
    leave(&mut history, &[2, 1]).expect("leave");
    let config = latest(&history);
    assert!(config.groups.is_empty());
    assert_eq!(config.shards, vec![UNASSIGNED; 10]);
}

/// With no group left, each shard is parked with the group that held it
/// (so its data can be handed to the next group), one Leave at a time or
/// all at once; the next Join assigns them all and parks nothing.
#[test]
fn shards_left_without_a_group_are_parked_with_their_last_holder() {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1, 2]).expect("join");
    let both = latest(&history);
    leave(&mut history, &[1]).expect("leave 1");
    leave(&mut history, &[2]).expect("leave 2");
    let empty = latest(&history);
    assert_eq!(
        empty.parked_shards,
        (0..10).map(|shard| (shard, 2)).collect()
    );
    assert_eq!(empty.parked_groups, BTreeMap::from([(2, servers(2, 3))]));
    assert_eq!(empty.holder(4), 2);
    assert_eq!(empty.servers_of(2), servers(2, 3).as_slice());

    join(&mut history, &[1, 2]).expect("join again");
    leave(&mut history, &[1, 2]).expect("leave together");
    let parked = latest(&history);
    for shard in 0..10 {
        assert_eq!(parked.parked_shards[&shard], both.shards[shard]);
    }
    assert_eq!(parked.parked_groups.len(), 2);

    join(&mut history, &[3]).expect("a new group joins");
    let back = latest(&history);
    assert_eq!(back.shards, vec![3; 10]);
    assert!(back.parked_shards.is_empty() && back.parked_groups.is_empty());
    history
        .check_invariants()
        .expect("every configuration is consistent");
}

#[test]
fn bad_joins_are_refused_and_change_nothing() {
    let mut history = ConfigHistory::new(Limits {
        max_groups: 3,
        max_servers_per_group: 2,
        ..Limits::new(10)
    });
    history
        .apply(&ConfigOp::Join {
            groups: BTreeMap::from([(1, servers(1, 2))]),
        })
        .expect("join of gid 1");
    let join_op = |groups: Vec<(Gid, Vec<SocketAddr>)>| ConfigOp::Join {
        groups: groups.into_iter().collect(),
    };
    assert_refused(
        &mut history,
        join_op(vec![(1, servers(1, 2))]),
        ConfigError::GroupExists { gid: 1 },
    );
    assert_refused(
        &mut history,
        join_op(vec![(0, servers(0, 1))]),
        ConfigError::ReservedGid,
    );
    assert_refused(
        &mut history,
        join_op(vec![(2, servers(2, 1)), (5, vec![])]),
        ConfigError::NoServers { gid: 5 },
    );
    assert_refused(
        &mut history,
        join_op(vec![(2, servers(2, 3))]),
        ConfigError::TooManyServers {
            gid: 2,
            count: 3,
            limit: 2,
        },
    );
    assert_refused(
        &mut history,
        join_op(vec![
            (2, servers(2, 1)),
            (3, servers(3, 1)),
            (4, servers(4, 1)),
        ]),
        ConfigError::TooManyGroups { count: 4, limit: 3 },
    );
    assert_refused(&mut history, join_op(vec![]), ConfigError::EmptyRequest);
}

#[test]
fn bad_leaves_moves_and_queries_are_refused_and_change_nothing() {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1, 2]).expect("join");
    let leave_op = |gids: &[Gid]| ConfigOp::Leave {
        gids: gids.to_vec(),
    };
    assert_refused(
        &mut history,
        leave_op(&[2, 7]),
        ConfigError::UnknownGroup { gid: 7 },
    );
    assert_refused(
        &mut history,
        leave_op(&[1, 1]),
        ConfigError::DuplicateGid { gid: 1 },
    );
    assert_refused(&mut history, leave_op(&[0]), ConfigError::ReservedGid);
    assert_refused(&mut history, leave_op(&[]), ConfigError::EmptyRequest);
    assert_refused(
        &mut history,
        ConfigOp::Move { shard: 10, gid: 1 },
        ConfigError::ShardOutOfRange {
            shard: 10,
            shard_count: 10,
        },
    );
    assert_refused(
        &mut history,
        ConfigOp::Move { shard: 3, gid: 9 },
        ConfigError::UnknownGroup { gid: 9 },
    );
    assert_refused(
        &mut history,
        ConfigOp::Move { shard: 3, gid: 0 },
        ConfigError::ReservedGid,
    );
    assert_refused(
        &mut history,
        ConfigOp::Query { num: Some(2) },
        ConfigError::FutureConfig { num: 2, latest: 1 },
    );
    assert_refused(
        &mut history,
        ConfigOp::Query {
            num: Some(u64::MAX),
        },
        ConfigError::FutureConfig {
            num: u64::MAX,
            latest: 1,
        },
    );
}

#[test]
fn join_after_moves_rebalances_with_fewest_moves() {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1, 2]).expect("join");
    for shard in 0..10 {
        history
            .apply(&ConfigOp::Move { shard, gid: 1 })
            .expect("move");
    }
    let lopsided = latest(&history);
    assert_eq!(lopsided.shards, vec![1; 10]);
    // Five of the ten moves changed something (group 1 held five shards).
    assert_eq!(lopsided.num, 6);
    join(&mut history, &[3]).expect("join");
    let config = latest(&history);
    assert_balanced(&config);
    // Group 1 keeps 4 (it held the most), 2 and 3 take 3 each: 6 moves.
    assert_eq!(config.shards_of(1), vec![0, 1, 2, 3]);
    assert_eq!(
        config
            .shards
            .iter()
            .zip(&lopsided.shards)
            .filter(|(a, b)| a != b)
            .count(),
        6
    );
}

#[test]
fn a_move_that_changes_nothing_makes_no_configuration() {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1, 2]).expect("join");
    let before = latest(&history);
    let owner = before.shards[0];
    for _ in 0..3 {
        assert_eq!(
            history
                .apply(&ConfigOp::Move {
                    shard: 0,
                    gid: owner
                })
                .expect("move"),
            ConfigAnswer::Changed { num: before.num },
            "a no-op Move answers the latest number"
        );
    }
    assert_eq!(history.len(), 2, "configurations 0 and 1 only");
    assert_eq!(latest(&history), before);
    let other = if owner == 1 { 2 } else { 1 };
    assert_eq!(
        history
            .apply(&ConfigOp::Move {
                shard: 0,
                gid: other
            })
            .expect("move"),
        ConfigAnswer::Changed {
            num: before.num + 1
        },
        "a Move that changes the owner still makes one"
    );
}

#[test]
fn set_servers_lists_a_groups_new_replicas_and_moves_no_shard() {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1, 2]).expect("join");
    let before = latest(&history);
    let mut replaced = servers(2, 3);
    replaced[2] = addr(2, 9);
    let answer = history.apply(&ConfigOp::SetServers {
        gid: 2,
        servers: replaced.clone(),
    });
    assert_eq!(
        answer,
        Ok(ConfigAnswer::Changed {
            num: before.num + 1
        })
    );
    let after = latest(&history);
    assert_eq!(after.shards, before.shards, "a shard moved");
    assert_eq!(after.groups[&2], replaced);
    assert_eq!(after.groups[&1], before.groups[&1]);
    // The same servers again: no new configuration.
    let again = history.apply(&ConfigOp::SetServers {
        gid: 2,
        servers: replaced,
    });
    assert_eq!(again, Ok(ConfigAnswer::Changed { num: after.num }));
    assert_eq!(latest(&history), after);
}

#[test]
fn bad_set_servers_are_refused_and_change_nothing() {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1]).expect("join");
    assert_refused(
        &mut history,
        ConfigOp::SetServers {
            gid: 7,
            servers: servers(7, 3),
        },
        ConfigError::UnknownGroup { gid: 7 },
    );
    assert_refused(
        &mut history,
        ConfigOp::SetServers {
            gid: 1,
            servers: Vec::new(),
        },
        ConfigError::NoServers { gid: 1 },
    );
    assert_refused(
        &mut history,
        ConfigOp::SetServers {
            gid: UNASSIGNED,
            servers: servers(1, 1),
        },
        ConfigError::ReservedGid,
    );
    assert_refused(
        &mut history,
        ConfigOp::SetServers {
            gid: 1,
            servers: servers(1, 65),
        },
        ConfigError::TooManyServers {
            gid: 1,
            count: 65,
            limit: 64,
        },
    );
}

fn balance(loads: &[u64], max_moves: usize) -> ConfigOp {
    ConfigOp::BalanceLoad {
        loads: loads.to_vec(),
        max_moves,
    }
}

#[test]
fn balance_load_moves_a_shard_off_the_hot_group() {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1, 2]).expect("join");
    let before = latest(&history);
    assert_eq!(before.shards, vec![1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    // Shards 0 and 1 (group 1) are hot: group 1 at 203, group 2 at 5.
    let loads = [100, 100, 1, 1, 1, 1, 1, 1, 1, 1];
    let answer = history.apply(&balance(&loads, 1));
    assert_eq!(
        answer,
        Ok(ConfigAnswer::Changed {
            num: before.num + 1
        })
    );
    let after = latest(&history);
    assert_eq!(after.shards, vec![2, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    assert_eq!(after.groups, before.groups, "the groups' servers changed");
    assert_eq!(history.query(Some(before.num)), Ok(before));
    history.check_invariants().expect("invariants");
    // With these loads the split 103 / 105 leaves nothing worth moving.
    let again = history.apply(&balance(&loads, 3));
    assert_eq!(again, Ok(ConfigAnswer::Changed { num: after.num }));
    assert_eq!(latest(&history), after);
}

#[test]
fn balance_load_with_equal_loads_makes_no_configuration() {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1, 2, 3]).expect("join");
    let before = latest(&history);
    for load in [0, 1, 1000] {
        let answer = history.apply(&balance(&[load; 10], 10));
        assert_eq!(answer, Ok(ConfigAnswer::Changed { num: before.num }));
    }
    assert_eq!(latest(&history), before);
    // A Join afterwards still balances counts with the fewest moves.
    join(&mut history, &[4]).expect("join 4");
    assert_balanced(&latest(&history));
}

#[test]
fn balance_load_without_groups_changes_nothing() {
    let mut history = ConfigHistory::new(Limits::new(4));
    let answer = history.apply(&balance(&[5, 0, 0, 0], 1));
    assert_eq!(answer, Ok(ConfigAnswer::Changed { num: 0 }));
    join(&mut history, &[1]).expect("join");
    leave(&mut history, &[1]).expect("leave");
    let parked = latest(&history);
    let answer = history.apply(&balance(&[5, 0, 0, 0], 1));
    assert_eq!(answer, Ok(ConfigAnswer::Changed { num: parked.num }));
    assert_eq!(latest(&history), parked);
}

#[test]
fn balance_load_never_gives_to_a_lost_group() {
    let mut history = ConfigHistory::new(Limits::new(6));
    join(&mut history, &[1, 2, 3]).expect("join");
    history
        .apply(&ConfigOp::DeclareLost { gid: 3 })
        .expect("declare 3 lost");
    let before = latest(&history);
    // Group 3's shards 4 and 5 went to groups 1 and 2.
    assert_eq!(before.shards, vec![1, 1, 2, 2, 1, 2]);
    let answer = history.apply(&balance(&[50, 50, 1, 1, 50, 1], 6));
    assert_eq!(
        answer,
        Ok(ConfigAnswer::Changed {
            num: before.num + 1
        })
    );
    let after = latest(&history);
    assert!(after.is_lost(3));
    // One move (150 / 3 -> 100 / 53); a second 50 would overshoot.
    assert_eq!(after.shards, vec![2, 1, 2, 2, 1, 2]);
    history.check_invariants().expect("invariants");
}

#[test]
fn bad_balance_loads_are_refused_and_change_nothing() {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1, 2]).expect("join");
    assert_refused(
        &mut history,
        balance(&[1; 9], 1),
        ConfigError::LoadCount {
            count: 9,
            shard_count: 10,
        },
    );
    assert_refused(
        &mut history,
        balance(&[1; 11], 1),
        ConfigError::LoadCount {
            count: 11,
            shard_count: 10,
        },
    );
    assert_refused(
        &mut history,
        balance(&[1; 10], 0),
        ConfigError::MoveLimit {
            max_moves: 0,
            shard_count: 10,
        },
    );
    assert_refused(
        &mut history,
        balance(&[1; 10], 11),
        ConfigError::MoveLimit {
            max_moves: 11,
            shard_count: 10,
        },
    );
    // The shape check alone refuses them, before any state is looked at.
    let limits = Limits::new(10);
    assert!(balance(&[1; 10], 10).check_shape(&limits).is_ok());
    assert!(balance(&[1; 3], 1).check_shape(&limits).is_err());
}
