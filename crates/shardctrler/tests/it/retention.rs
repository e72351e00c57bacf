//! Which configurations the controller keeps: those a listed group has not
//! reported passing, and never more than `max_retained_configs`; older
//! numbers get `ConfigError::Pruned`. Reports are checked like any other
//! request, and the machine's snapshot stays bounded over thousands of
//! changes.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rsm::session::SessionLimits;
use rsm::{ApplyContext, ReplicatedMachine};
use shardctrler::{
    ConfigAnswer, ConfigError, ConfigHistory, ConfigOp, ControllerMachine, ControllerRequest, Gid,
    Limits,
};

const SHARDS: usize = 10;

fn limits(max_retained_configs: usize) -> Limits {
    Limits {
        max_retained_configs,
        ..Limits::new(SHARDS)
    }
}

fn join(history: &mut ConfigHistory, gids: &[Gid]) {
    let groups = gids
        .iter()
        .map(|&gid| {
            let addr = SocketAddr::from(([10, 8, 0, gid as u8], 7000));
            (gid, vec![addr])
        })
        .collect();
    history
        .apply(&ConfigOp::Join { groups })
        .expect("join of new groups");
}

/// Moves shard 0 to the group that does not hold it (one new
/// configuration each time), between groups 1 and 2.
fn flip(history: &mut ConfigHistory) -> u64 {
    let gid = if history.latest().shards[0] == 1 {
        2
    } else {
        1
    };
    match history.apply(&ConfigOp::Move { shard: 0, gid }) {
        Ok(ConfigAnswer::Changed { num }) => num,
        other => panic!("move answered {other:?}"),
    }
}

fn report(history: &mut ConfigHistory, gid: Gid, num: u64) -> Result<u64, ConfigError> {
    match history.apply(&ConfigOp::Report { gid, num })? {
        ConfigAnswer::Reported { oldest } => Ok(oldest),
        other => panic!("a report answered {other:?}"),
    }
}

fn assert_refused(history: &mut ConfigHistory, op: ConfigOp, expected: ConfigError) {
    let before = history.clone();
    assert_eq!(history.apply(&op), Err(expected), "{op:?}");
    assert_eq!(*history, before, "refused {op:?} changed the history");
}

#[test]
fn without_reports_everything_up_to_the_bound_is_kept() {
    let mut history = ConfigHistory::new(limits(1000));
    join(&mut history, &[1, 2]);
    for _ in 0..50 {
        flip(&mut history);
    }
    assert_eq!(history.oldest(), 0, "no group reported: nothing dropped");
    assert_eq!(history.len(), 52);
    assert!(history.query(Some(0)).is_ok());
}

#[test]
fn configurations_every_listed_group_passed_are_dropped() {
    let mut history = ConfigHistory::new(limits(1000));
    join(&mut history, &[1, 2]); // 1
    for _ in 0..9 {
        flip(&mut history); // 2..=10
    }
    assert_eq!(
        report(&mut history, 1, 7),
        Ok(0),
        "group 2 has not reported"
    );
    assert_eq!(history.oldest(), 0);
    // Group 2 at 4: both passed 0..=3; 4 is still needed by no one, but
    // group 2 asks for 5 next, which stays; 4 itself goes only once both
    // are past it.
    assert_eq!(report(&mut history, 2, 4), Ok(4));
    assert_eq!(
        history.query(Some(3)),
        Err(ConfigError::Pruned { num: 3, oldest: 4 })
    );
    assert_eq!(history.query(Some(4)).map(|config| config.num), Ok(4));
    // Reports never go backwards, and a repeat changes nothing.
    assert_eq!(report(&mut history, 2, 2), Ok(4));
    let before = history.clone();
    assert_eq!(report(&mut history, 2, 4), Ok(4));
    assert_eq!(history, before);
    // Both at the latest: only the latest is kept.
    report(&mut history, 1, 10).expect("report");
    assert_eq!(report(&mut history, 2, 10), Ok(10));
    assert_eq!(history.len(), 1);
    assert_eq!(history.latest().num, 10);
    history.check_invariants().expect("consistent");
}

#[test]
fn a_new_group_holds_the_rest_until_it_reports() {
    let mut history = ConfigHistory::new(limits(1000));
    join(&mut history, &[1, 2]); // 1
    flip(&mut history); // 2
    report(&mut history, 1, 2).expect("report");
    report(&mut history, 2, 2).expect("report");
    assert_eq!(history.oldest(), 2);
    join(&mut history, &[3]); // 3
    for _ in 0..5 {
        flip(&mut history); // 4..=8
    }
    report(&mut history, 1, 8).expect("report");
    report(&mut history, 2, 8).expect("report");
    assert_eq!(
        history.oldest(),
        2,
        "group 3 never reported: it may still walk from 2"
    );
    report(&mut history, 3, 6).expect("report");
    assert_eq!(history.oldest(), 6);
}

#[test]
fn a_group_that_left_is_forgotten_once_past_its_leave() {
    let mut history = ConfigHistory::new(limits(1000));
    join(&mut history, &[1, 2, 3]); // 1
    history
        .apply(&ConfigOp::Leave { gids: vec![3] })
        .expect("leave"); // 2
    report(&mut history, 1, 2).expect("report");
    report(&mut history, 2, 2).expect("report");
    assert_eq!(history.oldest(), 0, "group 3 must still learn it left");
    report(&mut history, 3, 2).expect("report");
    assert_eq!(history.oldest(), 2);
    assert!(
        !history.reported().contains_key(&3),
        "no kept configuration lists group 3: its report is dropped"
    );
    assert_refused(
        &mut history,
        ConfigOp::Report { gid: 3, num: 2 },
        ConfigError::UnknownGroup { gid: 3 },
    );
}

#[test]
fn bad_reports_are_refused_and_change_nothing() {
    let mut history = ConfigHistory::new(limits(1000));
    join(&mut history, &[1]);
    assert_refused(
        &mut history,
        ConfigOp::Report { gid: 0, num: 1 },
        ConfigError::ReservedGid,
    );
    assert_refused(
        &mut history,
        ConfigOp::Report { gid: 1, num: 2 },
        ConfigError::FutureConfig { num: 2, latest: 1 },
    );
    assert_refused(
        &mut history,
        ConfigOp::Report { gid: 9, num: 1 },
        ConfigError::UnknownGroup { gid: 9 },
    );
}

#[test]
fn the_hard_bound_holds_over_thousands_of_changes() {
    const K: usize = 16;
    let mut history = ConfigHistory::new(limits(K));
    join(&mut history, &[1, 2]);
    let mut latest = 1;
    for _ in 0..5000 {
        latest = flip(&mut history);
        assert!(history.len() <= K, "{} configurations kept", history.len());
    }
    assert_eq!(history.len(), K);
    assert_eq!(history.oldest(), latest + 1 - K as u64);
    assert_eq!(
        history.query(Some(3)),
        Err(ConfigError::Pruned {
            num: 3,
            oldest: latest + 1 - K as u64
        }),
        "an old number gets the clear error"
    );
    assert_eq!(
        history.query(Some(latest + 1 - K as u64)).map(|c| c.num),
        Ok(latest + 1 - K as u64)
    );
    history.check_invariants().expect("consistent");
}

#[test]
fn the_snapshot_stops_growing_with_changes() {
    let mut machine = ControllerMachine::new(limits(64), SessionLimits::default());
    let mut seq = 0;
    let mut index = 0;
    let mut change = |machine: &mut ControllerMachine, op: ConfigOp| {
        seq += 1;
        index += 1;
        let request = ControllerRequest {
            client_id: 1,
            seq,
            op,
        };
        machine
            .apply(&request, &ApplyContext { index, now_ms: 0 })
            .expect("change applied");
    };
    change(
        &mut machine,
        ConfigOp::Join {
            groups: BTreeMap::from([(1, vec![SocketAddr::from(([10, 8, 0, 1], 7000))])]),
        },
    );
    change(
        &mut machine,
        ConfigOp::Join {
            groups: BTreeMap::from([(2, vec![SocketAddr::from(([10, 8, 0, 2], 7000))])]),
        },
    );
    let mut sizes = Vec::new();
    for round in 0..4000 {
        let gid = if machine.latest().shards[0] == 1 {
            2
        } else {
            1
        };
        change(&mut machine, ConfigOp::Move { shard: 0, gid });
        if round % 1000 == 999 {
            sizes.push(machine.snapshot().len());
        }
    }
    println!("snapshot bytes after 1000, 2000, 3000, 4000 changes (K = 64): {sizes:?}");
    assert_eq!(machine.history().len(), 64);
    let (first, last) = (sizes[0], *sizes.last().expect("sizes"));
    // Varint configuration numbers may add a byte each; nothing more.
    assert!(
        last <= first + 64 * 2,
        "snapshot grew from {first} to {last} bytes over 3000 changes: {sizes:?}"
    );
    let restored = machine
        .restore(&machine.snapshot())
        .expect("a bounded snapshot restores");
    assert_eq!(restored, machine);
}
