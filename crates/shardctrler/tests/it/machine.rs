//! The controller's replicated state machine: exactly-once changes through
//! the shared session table, queries never recorded, snapshots.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rsm::session::SessionLimits;
use rsm::{ApplyContext, ReplicatedMachine, RestoreError, encode};
use shardctrler::{
    ConfigAnswer, ConfigError, ConfigOp, ControllerMachine, ControllerRequest, Limits, ServerError,
};

fn machine() -> ControllerMachine {
    ControllerMachine::new(Limits::new(10), SessionLimits::default())
}

fn at(index: u64, now_ms: u64) -> ApplyContext {
    ApplyContext { index, now_ms }
}

fn join(client_id: u64, seq: u64, gid: u64) -> ControllerRequest {
    let server: SocketAddr = SocketAddr::from(([10, 0, 0, gid as u8], 7000));
    ControllerRequest {
        client_id,
        seq,
        op: ConfigOp::Join {
            groups: BTreeMap::from([(gid, vec![server])]),
        },
    }
}

fn query(num: Option<u64>) -> ControllerRequest {
    ControllerRequest {
        client_id: 0,
        seq: 0,
        op: ConfigOp::Query { num },
    }
}

#[test]
fn a_retried_change_applies_once() {
    let mut machine = machine();
    let first = machine.apply(&join(7, 1, 1), &at(1, 10));
    assert_eq!(first, Ok(ConfigAnswer::Changed { num: 1 }));
    let retry = machine.apply(&join(7, 1, 1), &at(2, 20));
    assert_eq!(retry, first, "a retry gets the recorded answer");
    assert_eq!(machine.latest().num, 1, "the retry made no configuration");
    assert_eq!(machine.recorded_reply(7, 1), Some(first));
}

#[test]
fn a_refused_change_is_recorded_and_changes_no_configuration() {
    let mut machine = machine();
    machine.apply(&join(1, 1, 5), &at(1, 0)).expect("join");
    let refused = machine.apply(&join(2, 1, 5), &at(2, 0));
    assert_eq!(
        refused,
        Err(ServerError::Refused(ConfigError::GroupExists { gid: 5 }))
    );
    assert_eq!(machine.latest().num, 1);
    // Its retry gets the same refusal, even after the group has left.
    let leave = ControllerRequest {
        client_id: 1,
        seq: 2,
        op: ConfigOp::Leave { gids: vec![5] },
    };
    machine.apply(&leave, &at(3, 0)).expect("leave");
    assert_eq!(machine.apply(&join(2, 1, 5), &at(4, 0)), refused);
    assert_eq!(machine.latest().num, 2);
}

#[test]
fn an_older_seq_is_stale() {
    let mut machine = machine();
    machine.apply(&join(3, 1, 1), &at(1, 0)).expect("join 1");
    machine.apply(&join(3, 2, 2), &at(2, 0)).expect("join 2");
    assert_eq!(
        machine.apply(&join(3, 1, 1), &at(3, 0)),
        Err(ServerError::Stale { seq: 1, latest: 2 })
    );
    assert_eq!(machine.latest().num, 2);
}

#[test]
fn queries_are_answered_and_never_recorded() {
    let mut machine = machine();
    machine.apply(&join(3, 1, 1), &at(1, 0)).expect("join");
    let latest = machine.apply(&query(None), &at(2, 0));
    assert_eq!(latest, Ok(ConfigAnswer::Config(machine.latest().clone())));
    assert_eq!(
        machine.apply(&query(Some(5)), &at(3, 0)),
        Err(ServerError::Refused(ConfigError::FutureConfig {
            num: 5,
            latest: 1
        }))
    );
    assert_eq!(machine.session_count(), 1, "only the join's client");
}

#[test]
fn idle_clients_are_forgotten_in_log_time() {
    let mut machine = ControllerMachine::new(
        Limits::new(10),
        SessionLimits {
            max_clients: 100,
            idle_expiry_ms: 1000,
        },
    );
    machine.apply(&join(3, 1, 1), &at(1, 0)).expect("join");
    machine.apply(&query(None), &at(2, 999)).expect("query");
    assert_eq!(machine.session_count(), 1);
    machine.apply(&query(None), &at(3, 1000)).expect("query");
    assert_eq!(machine.session_count(), 0);
}

#[test]
fn snapshot_round_trips_and_bad_snapshots_are_refused() {
    let mut machine = machine();
    machine.apply(&join(3, 1, 1), &at(1, 0)).expect("join");
    machine.apply(&join(3, 2, 2), &at(2, 0)).expect("join");
    let restored = machine.restore(&machine.snapshot()).expect("restores");
    assert_eq!(restored, machine);

    let mut bytes = machine.snapshot();
    bytes.push(0);
    assert!(matches!(
        machine.restore(&bytes),
        Err(RestoreError::TrailingBytes { .. })
    ));
    assert!(matches!(
        machine.restore(&bytes[..bytes.len() / 2]),
        Err(RestoreError::Decode { .. })
    ));
    // A replica configured for another shard count refuses the snapshot.
    let other = ControllerMachine::new(Limits::new(12), SessionLimits::default());
    assert!(matches!(
        other.restore(&machine.snapshot()),
        Err(RestoreError::Inconsistent { .. })
    ));
    // A snapshot that decodes but breaks an invariant is refused: in
    // bincode, configuration 0's number is the byte after the limits and
    // the one-byte length of the configuration list, then the one-byte
    // length of its shard list, then shard 0's group (0, unassigned); put
    // shard 0 on group 5, which the configuration does not list.
    let mut encoded = encode(&ControllerMachine::new(
        Limits::new(10),
        SessionLimits::default(),
    ));
    let number_at = encode(&Limits::new(10)).len() + 1;
    assert_eq!(encoded[number_at..number_at + 3], [0, 10, 0]);
    encoded[number_at + 2] = 5;
    assert!(matches!(
        machine.restore(&encoded),
        Err(RestoreError::Inconsistent { .. })
    ));
}

#[test]
fn a_retried_balance_load_moves_once() {
    let mut machine = machine();
    machine.apply(&join(1, 1, 1), &at(1, 0)).expect("join 1");
    machine.apply(&join(1, 2, 2), &at(2, 0)).expect("join 2");
    let balance = ControllerRequest {
        client_id: 9,
        seq: 1,
        op: ConfigOp::BalanceLoad {
            loads: vec![90, 90, 90, 90, 0, 0, 0, 0, 0, 0],
            max_moves: 1,
        },
    };
    let first = machine.apply(&balance, &at(3, 0));
    assert_eq!(first, Ok(ConfigAnswer::Changed { num: 3 }));
    let moved = machine.latest().shards.clone();
    // Applied again, the same loads would move one more shard; the retry
    // gets the recorded answer instead.
    let retry = machine.apply(&balance, &at(4, 0));
    assert_eq!(retry, first);
    assert_eq!(machine.latest().num, 3);
    assert_eq!(machine.latest().shards, moved);
}
