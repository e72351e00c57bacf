//! Declaring a group lost (issue 13, a dead donor): removed as by Leave,
//! recorded in every later configuration, refused rejoin, exactly once,
//! and the refusals (unknown gid, the last group, gid 0) change nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rsm::session::SessionLimits;
use rsm::{ApplyContext, ReplicatedMachine};
use shardctrler::placement::is_balanced;
use shardctrler::{
    Config, ConfigAnswer, ConfigError, ConfigHistory, ConfigOp, ControllerMachine,
    ControllerRequest, Gid, Limits, ServerError,
};

fn servers(gid: Gid) -> Vec<SocketAddr> {
    vec![SocketAddr::from(([10, 8, gid as u8, 1], 7000))]
}

fn join(history: &mut ConfigHistory, gids: &[Gid]) -> Result<ConfigAnswer, ConfigError> {
    let groups = gids.iter().map(|&gid| (gid, servers(gid))).collect();
    history.apply(&ConfigOp::Join { groups })
}

fn declare_lost(history: &mut ConfigHistory, gid: Gid) -> Result<ConfigAnswer, ConfigError> {
    history.apply(&ConfigOp::DeclareLost { gid })
}

fn latest(history: &ConfigHistory) -> Config {
    history.query(None).expect("the latest always exists")
}

fn three_groups() -> ConfigHistory {
    let mut history = ConfigHistory::new(Limits::new(10));
    join(&mut history, &[1, 2, 3]).expect("join");
    history
}

#[test]
fn a_lost_member_is_removed_as_by_leave_and_recorded_from_then_on() {
    let mut history = three_groups();
    let before = latest(&history);
    let mut left = history.clone();
    left.apply(&ConfigOp::Leave { gids: vec![2] })
        .expect("leave");

    assert_eq!(
        declare_lost(&mut history, 2),
        Ok(ConfigAnswer::Changed { num: 2 })
    );
    let after = latest(&history);
    assert_eq!(
        after.shards,
        latest(&left).shards,
        "the same placement as a Leave"
    );
    assert!(!after.groups.contains_key(&2));
    assert!(is_balanced(
        &after.shards,
        &after.groups.keys().copied().collect()
    ));
    assert_eq!(after.lost_groups, BTreeMap::from([(2, 2)]));
    assert!(after.is_lost(2) && !before.is_lost(2));

    // Carried into every later configuration.
    join(&mut history, &[4]).expect("join 4");
    history
        .apply(&ConfigOp::Move { shard: 0, gid: 4 })
        .expect("move");
    assert_eq!(latest(&history).lost_groups, BTreeMap::from([(2, 2)]));
    history.check_invariants().expect("invariants");
}

#[test]
fn declaring_a_lost_group_again_changes_nothing() {
    let mut history = three_groups();
    declare_lost(&mut history, 3).expect("declare");
    let kept = history.clone();
    assert_eq!(
        declare_lost(&mut history, 3),
        Ok(ConfigAnswer::Changed { num: 2 }),
        "the latest number, no new configuration"
    );
    assert_eq!(history, kept);
}

#[test]
fn a_lost_gid_may_not_join_again() {
    let mut history = three_groups();
    declare_lost(&mut history, 1).expect("declare");
    let kept = history.clone();
    assert_eq!(
        join(&mut history, &[1]),
        Err(ConfigError::GroupLost {
            gid: 1,
            declared_in: 2
        })
    );
    assert_eq!(
        join(&mut history, &[5, 1]),
        Err(ConfigError::GroupLost {
            gid: 1,
            declared_in: 2
        }),
        "refused as a whole, group 5 did not join either"
    );
    assert_eq!(history, kept);
    let message = ConfigError::GroupLost {
        gid: 1,
        declared_in: 2,
    }
    .to_string();
    assert!(message.contains("declared lost"), "{message}");
}

#[test]
fn unknown_last_and_reserved_gids_are_refused_and_change_nothing() {
    let mut history = three_groups();
    let kept = history.clone();
    assert_eq!(
        declare_lost(&mut history, 9),
        Err(ConfigError::UnknownGroup { gid: 9 })
    );
    assert_eq!(declare_lost(&mut history, 0), Err(ConfigError::ReservedGid));
    assert_eq!(history, kept);

    declare_lost(&mut history, 1).expect("declare 1");
    declare_lost(&mut history, 2).expect("declare 2");
    let kept = history.clone();
    assert_eq!(
        declare_lost(&mut history, 3),
        Err(ConfigError::LastGroup { gid: 3 })
    );
    assert_eq!(history, kept);
    assert_eq!(latest(&history).shards, vec![3; 10]);

    // No group at all: nothing to declare.
    let mut empty = ConfigHistory::new(Limits::new(10));
    assert_eq!(
        declare_lost(&mut empty, 1),
        Err(ConfigError::UnknownGroup { gid: 1 })
    );
}

#[test]
fn a_group_that_left_can_be_declared_lost_without_moving_shards() {
    // Group 2 left (a kept configuration still lists it): declaring it
    // lost makes a configuration with the same placement, so that a group
    // still waiting on it learns.
    let mut history = three_groups();
    history
        .apply(&ConfigOp::Leave { gids: vec![2] })
        .expect("leave");
    let before = latest(&history);
    assert_eq!(
        declare_lost(&mut history, 2),
        Ok(ConfigAnswer::Changed { num: 3 })
    );
    let after = latest(&history);
    assert_eq!(after.shards, before.shards);
    assert_eq!(after.groups, before.groups);
    assert_eq!(after.lost_groups, BTreeMap::from([(2, 3)]));
}

#[test]
fn a_lost_group_holds_no_configuration_back() {
    // Groups 1 and 3 report everything; group 2 never does. Once it is
    // declared lost, the configurations only it needed are dropped.
    let mut history = three_groups();
    for _ in 0..4 {
        history
            .apply(&ConfigOp::Move { shard: 0, gid: 1 })
            .expect("move");
        history
            .apply(&ConfigOp::Move { shard: 0, gid: 3 })
            .expect("move");
    }
    let latest_num = latest(&history).num;
    for gid in [1, 3] {
        history
            .apply(&ConfigOp::Report {
                gid,
                num: latest_num,
            })
            .expect("report");
    }
    assert_eq!(history.oldest(), 0, "group 2 never reported");
    declare_lost(&mut history, 2).expect("declare");
    assert_eq!(
        history.oldest(),
        latest_num,
        "only what groups 1 and 3 may still need is kept"
    );
    history.check_invariants().expect("invariants");
}

fn request(client_id: u64, seq: u64, op: ConfigOp) -> ControllerRequest {
    ControllerRequest { client_id, seq, op }
}

fn at(index: u64) -> ApplyContext {
    ApplyContext { index, now_ms: 0 }
}

#[test]
fn a_retried_declaration_applies_once_and_gets_its_recorded_answer() {
    let mut machine = ControllerMachine::new(Limits::new(10), SessionLimits::default());
    let groups = [1, 2, 3].map(|gid| (gid, servers(gid))).into();
    machine
        .apply(&request(1, 1, ConfigOp::Join { groups }), &at(1))
        .expect("join");
    let declare = request(7, 1, ConfigOp::DeclareLost { gid: 2 });
    let first = machine.apply(&declare, &at(2));
    assert_eq!(first, Ok(ConfigAnswer::Changed { num: 2 }));
    // Group 4 joins; the retry of the declaration must not make anything.
    let groups = BTreeMap::from([(4, servers(4))]);
    machine
        .apply(&request(1, 2, ConfigOp::Join { groups }), &at(3))
        .expect("join 4");
    assert_eq!(machine.apply(&declare, &at(4)), first);
    assert_eq!(machine.latest().num, 3);
    assert_eq!(machine.recorded_reply(7, 1), Some(first));
    // A refusal is recorded too and answered again on retry.
    let unknown = request(8, 1, ConfigOp::DeclareLost { gid: 9 });
    let refused = Err(ServerError::Refused(ConfigError::UnknownGroup { gid: 9 }));
    assert_eq!(machine.apply(&unknown, &at(5)), refused);
    assert_eq!(machine.apply(&unknown, &at(6)), refused);
    assert_eq!(machine.latest().num, 3);
}
