//! The state machine alone: apply, exactly-once, limits, logical-time TTL,
//! session expiry and snapshots, with no Raft and no network.

use kvraft::{Command, Error, MachineConfig, Op, Outcome, Reply, StateMachine};
use rsm::{ApplyContext, ReplicatedMachine};

/// A command with the log time the rsm would pass with it.
struct Stamped {
    command: Command,
    now_ms: u64,
}

fn command(client_id: u64, seq: u64, op: Op, now_ms: u64) -> Stamped {
    Stamped {
        command: Command { client_id, seq, op },
        now_ms,
    }
}

/// Applies like the rsm: the context carries the entry's log time.
trait ApplyStamped {
    fn apply_at(&mut self, stamped: &Stamped) -> Reply;
}

impl ApplyStamped for StateMachine {
    fn apply_at(&mut self, stamped: &Stamped) -> Reply {
        let context = ApplyContext {
            index: 0,
            now_ms: stamped.now_ms,
        };
        ReplicatedMachine::apply(self, &stamped.command, &context)
    }
}

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: value.into(),
        ttl_ms: None,
    }
}

fn append(key: &str, value: &str) -> Op {
    Op::Append {
        key: key.into(),
        value: value.into(),
    }
}

fn get(key: &str) -> Op {
    Op::Get { key: key.into() }
}

fn read(machine: &mut StateMachine, key: &str, now_ms: u64) -> Option<Vec<u8>> {
    match machine.apply_at(&command(999, 0, get(key), now_ms)) {
        Ok(Outcome::Value(value)) => value,
        other => panic!("get answered {other:?}"),
    }
}

#[test]
fn applies_every_operation() {
    let mut machine = StateMachine::new(MachineConfig::default());
    assert_eq!(
        machine.apply_at(&command(1, 1, put("k", "a"), 0)),
        Ok(Outcome::Done)
    );
    assert_eq!(
        machine.apply_at(&command(1, 2, append("k", "b"), 0)),
        Ok(Outcome::Integer(2))
    );
    assert_eq!(read(&mut machine, "k", 0), Some(b"ab".to_vec()));
    let cas = |expected: Option<&str>, value: &str| Op::CompareAndSet {
        key: "k".into(),
        expected: expected.map(|e| e.as_bytes().to_vec()),
        value: value.into(),
        ttl_ms: None,
    };
    assert_eq!(
        machine.apply_at(&command(1, 3, cas(Some("zz"), "c"), 0)),
        Ok(Outcome::Swapped(false))
    );
    assert_eq!(
        machine.apply_at(&command(1, 4, cas(Some("ab"), "c"), 0)),
        Ok(Outcome::Swapped(true))
    );
    assert_eq!(read(&mut machine, "k", 0), Some(b"c".to_vec()));
    let delete = Op::Delete { key: "k".into() };
    assert_eq!(
        machine.apply_at(&command(1, 5, delete.clone(), 0)),
        Ok(Outcome::Deleted(true))
    );
    assert_eq!(
        machine.apply_at(&command(1, 6, delete, 0)),
        Ok(Outcome::Deleted(false))
    );
    assert_eq!(read(&mut machine, "k", 0), None);
    assert_eq!(
        machine.apply_at(&command(1, 7, append("fresh", "x"), 0)),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(read(&mut machine, "fresh", 0), Some(b"x".to_vec()));
}

#[test]
fn a_retried_write_applies_once_and_gets_its_first_answer() {
    let mut machine = StateMachine::new(MachineConfig::default());
    let first = command(7, 1, append("k", "x"), 0);
    assert_eq!(machine.apply_at(&first), Ok(Outcome::Integer(1)));
    assert_eq!(machine.apply_at(&first), Ok(Outcome::Integer(1)));
    assert_eq!(read(&mut machine, "k", 0), Some(b"x".to_vec()));
    assert_eq!(machine.recorded_reply(7, 1), Some(Ok(Outcome::Integer(1))));

    let delete = command(7, 2, Op::Delete { key: "k".into() }, 0);
    assert_eq!(machine.apply_at(&delete), Ok(Outcome::Deleted(true)));
    // The retry answers what the first attempt saw, not "absent now".
    assert_eq!(machine.apply_at(&delete), Ok(Outcome::Deleted(true)));
    // An older seq than the latest is refused and changes nothing.
    assert_eq!(
        machine.apply_at(&first),
        Err(Error::Stale { seq: 1, latest: 2 })
    );
    assert_eq!(read(&mut machine, "k", 0), None);
}

#[test]
fn oversize_keys_and_values_are_refused_and_change_nothing() {
    let config = MachineConfig {
        max_key_bytes: 4,
        max_value_bytes: 8,
        ..MachineConfig::default()
    };
    let mut machine = StateMachine::new(config);
    assert!(matches!(
        machine.apply_at(&command(1, 1, put("toolong", "v"), 0)),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        machine.apply_at(&command(1, 2, put("k", "123456789"), 0)),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(
        machine.apply_at(&command(1, 3, put("k", "1234"), 0)),
        Ok(Outcome::Done)
    );
    // The append's result would be 9 bytes.
    assert!(matches!(
        machine.apply_at(&command(1, 4, append("k", "56789"), 0)),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(read(&mut machine, "k", 0), Some(b"1234".to_vec()));
    assert!(matches!(
        machine.check_sizes(&put("toolong", "")),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn ttl_follows_the_log_time_stamped_on_entries() {
    let mut machine = StateMachine::new(MachineConfig::default());
    let with_ttl = Op::Put {
        key: "k".into(),
        value: "v".into(),
        ttl_ms: Some(100),
    };
    assert_eq!(
        machine.apply_at(&command(1, 1, with_ttl, 1000)),
        Ok(Outcome::Done)
    );
    assert_eq!(read(&mut machine, "k", 1099), Some(b"v".to_vec()));
    // A read served without an entry (ReadIndex) sees the same and
    // changes nothing.
    let before = machine.snapshot();
    assert_eq!(
        machine.read(&get("k"), 1099),
        Ok(Outcome::Value(Some(b"v".to_vec())))
    );
    assert_eq!(machine.read(&get("k"), 1100), Ok(Outcome::Value(None)));
    assert_eq!(machine.snapshot(), before, "a read changed the machine");
    assert_eq!(read(&mut machine, "k", 1100), None);
    let zero = Op::Put {
        key: "z".into(),
        value: "v".into(),
        ttl_ms: Some(0),
    };
    assert_eq!(
        machine.apply_at(&command(1, 2, zero, 1100)),
        Err(Error::ZeroTtl)
    );
}

#[test]
fn sessions_expire_in_log_time_and_are_bounded() {
    let config = MachineConfig {
        max_clients: 2,
        client_idle_expiry_ms: 1000,
        ..MachineConfig::default()
    };
    let mut machine = StateMachine::new(config);
    machine.apply_at(&command(1, 1, put("a", "1"), 0)).unwrap();
    machine.apply_at(&command(2, 1, put("b", "1"), 10)).unwrap();
    machine.apply_at(&command(3, 1, put("c", "1"), 20)).unwrap();
    // Bounded: client 1, least recently active, was forgotten.
    assert_eq!(machine.session_count(), 2);
    assert_eq!(machine.recorded_reply(1, 1), None);
    assert_eq!(machine.recorded_reply(3, 1), Some(Ok(Outcome::Done)));
    // Idle for 1000 ms of log time: forgotten at the first entry past it.
    read(&mut machine, "a", 1010);
    assert_eq!(machine.recorded_reply(2, 1), None);
    assert_eq!(machine.recorded_reply(3, 1), Some(Ok(Outcome::Done)));
    read(&mut machine, "a", 1020);
    assert_eq!(machine.session_count(), 0);
}

#[test]
fn a_snapshot_round_trips_store_sessions_and_time() {
    let mut machine = StateMachine::new(MachineConfig::default());
    machine.apply_at(&command(1, 1, put("k", "v"), 50)).unwrap();
    machine
        .apply_at(&command(2, 1, append("k", "w"), 60))
        .unwrap();
    let bytes = machine.snapshot();
    let blank = StateMachine::new(MachineConfig::default());
    let mut restored = blank.restore(&bytes).expect("restores");
    assert_eq!(restored.session_count(), 2);
    assert_eq!(restored.recorded_reply(2, 1), Some(Ok(Outcome::Integer(2))));
    // A retry after the restore still applies once.
    restored
        .apply_at(&command(2, 1, append("k", "w"), 70))
        .unwrap();
    assert_eq!(read(&mut restored, "k", 70), Some(b"vw".to_vec()));
    // Both continue identically.
    assert_eq!(restored.snapshot(), {
        machine
            .apply_at(&command(2, 1, append("k", "w"), 70))
            .unwrap();
        read(&mut machine, "k", 70);
        machine.snapshot()
    });
    assert!(blank.restore(&bytes[..bytes.len() - 1]).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(blank.restore(&trailing).is_err());
}
