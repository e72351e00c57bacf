//! The whole-shard operations: scan, count, flush, random key.

use std::collections::BTreeSet;

use api::{
    Error, Limits, Op, Outcome, SCAN_COUNT_MAX, SCAN_POSITION_END, execute, read, scan_position,
};
use cache::{Store, StoreConfig};

fn store_with(keys: impl IntoIterator<Item = String>) -> Store {
    let mut store = Store::new(StoreConfig::new(1 << 24));
    for key in keys {
        let op = Op::Put {
            key: key.into_bytes(),
            value: b"v".to_vec(),
            ttl_ms: None,
        };
        assert_eq!(
            execute(&mut store, &op, &Limits::default(), 0),
            Ok(Outcome::Done)
        );
    }
    store
}

fn scan_op(position: u64, count: u64, pattern: Option<&str>, type_name: Option<&str>) -> Op {
    Op::ScanShard {
        shard: 0,
        position,
        count,
        pattern: pattern.map(|pattern| pattern.as_bytes().to_vec()),
        type_name: type_name.map(|name| name.as_bytes().to_vec()),
    }
}

/// One step, through the read path and the log path (they must agree).
fn step(store: &mut Store, op: &Op, now_ms: u64) -> (Vec<String>, u64) {
    let by_read = read(store, op, &Limits::default(), now_ms);
    let by_log = execute(store, op, &Limits::default(), now_ms);
    assert_eq!(by_read, by_log, "a scan step by read and by the log");
    match by_log {
        Ok(Outcome::Keys {
            keys,
            next_position,
        }) => (
            keys.into_iter()
                .map(|key| String::from_utf8(key).expect("utf-8 keys"))
                .collect(),
            next_position,
        ),
        other => panic!("scan answered {other:?}"),
    }
}

/// A whole scan, step by step; every step visits at most `count` keys
/// (ties aside, which these keys do not have).
fn full_scan(store: &mut Store, count: u64, pattern: Option<&str>) -> Vec<String> {
    let mut position = 0;
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let (keys, next) = step(store, &scan_op(position, count, pattern, None), 0);
        assert!(
            keys.len() as u64 <= count,
            "{} keys for count {count}",
            keys.len()
        );
        assert!(next > position, "the scan moves forward");
        seen.extend(keys);
        if next == SCAN_POSITION_END {
            return seen;
        }
        position = next;
    }
    panic!("the scan did not end");
}

#[test]
fn a_scan_visits_every_key_once_in_steps_of_count() {
    let names: Vec<String> = (0..500).map(|index| format!("key:{index}")).collect();
    let mut store = store_with(names.clone());
    let seen = full_scan(&mut store, 7, None);
    assert_eq!(seen.len(), names.len(), "no key twice");
    let seen: BTreeSet<String> = seen.into_iter().collect();
    assert_eq!(seen, names.into_iter().collect::<BTreeSet<_>>());
}

#[test]
fn a_scan_survives_writes_between_steps() {
    let names: Vec<String> = (0..300).map(|index| format!("old:{index}")).collect();
    let mut store = store_with(names.clone());
    let mut position = 0;
    let mut seen = Vec::new();
    let mut round = 0;
    loop {
        let (keys, next) = step(&mut store, &scan_op(position, 10, Some("old:*"), None), 0);
        seen.extend(keys);
        // Grow the store (its table resizes) between steps.
        for index in 0..50 {
            let op = Op::Put {
                key: format!("new:{round}:{index}").into_bytes(),
                value: b"v".to_vec(),
                ttl_ms: None,
            };
            execute(&mut store, &op, &Limits::default(), 0).expect("put");
        }
        round += 1;
        if next == SCAN_POSITION_END {
            break;
        }
        position = next;
    }
    assert_eq!(
        seen.len(),
        names.len(),
        "every old key exactly once: {seen:?}"
    );
    let seen: BTreeSet<String> = seen.into_iter().collect();
    assert_eq!(seen, names.into_iter().collect::<BTreeSet<_>>());
}

#[test]
fn scan_filters_by_pattern_and_type() {
    let mut store = store_with(["user:1", "user:2", "item:1"].map(String::from));
    let (keys, next) = step(&mut store, &scan_op(0, 100, Some("user:*"), None), 0);
    assert_eq!(next, SCAN_POSITION_END);
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, ["user:1", "user:2"]);
    let (strings, _) = step(&mut store, &scan_op(0, 100, None, Some("STRING")), 0);
    assert_eq!(strings.len(), 3);
    let (hashes, _) = step(&mut store, &scan_op(0, 100, None, Some("hash")), 0);
    assert!(hashes.is_empty());
}

#[test]
fn scan_skips_expired_keys_and_refuses_bad_counts() {
    let mut store = store_with(["live".to_string()]);
    let op = Op::Put {
        key: b"brief".to_vec(),
        value: b"v".to_vec(),
        ttl_ms: Some(10),
    };
    execute(&mut store, &op, &Limits::default(), 0).expect("put");
    let (keys, _) = step(&mut store, &scan_op(0, 10, None, None), 20);
    assert_eq!(keys, ["live"]);
    for count in [0, SCAN_COUNT_MAX + 1] {
        let answer = read(
            &store,
            &scan_op(0, count, None, None),
            &Limits::default(),
            0,
        );
        assert!(
            matches!(answer, Err(Error::TooLarge { .. })),
            "count {count}: {answer:?}"
        );
    }
}

#[test]
fn count_flush_and_random_key() {
    let names: Vec<String> = (0..40).map(|index| format!("k{index}")).collect();
    let mut store = store_with(names.clone());
    let count = Op::CountShard { shard: 3 };
    assert_eq!(
        read(&store, &count, &Limits::default(), 0),
        Ok(Outcome::Integer(40))
    );
    // Random keys: present, the same for the same seed, and spread.
    let mut picked = BTreeSet::new();
    for seed in 0..64u64 {
        let op = Op::RandomKey {
            shard: 3,
            seed: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        };
        let first = read(&store, &op, &Limits::default(), 0);
        assert_eq!(first, read(&store, &op, &Limits::default(), 0));
        match first {
            Ok(Outcome::Value(Some(key))) => {
                let key = String::from_utf8(key).expect("utf-8");
                assert!(names.contains(&key));
                picked.insert(key);
            }
            other => panic!("random key answered {other:?}"),
        }
    }
    assert!(picked.len() > 10, "64 seeds picked only {picked:?}");
    let flush = Op::FlushShard { shard: 3 };
    assert!(!flush.is_read());
    assert_eq!(
        execute(&mut store, &flush, &Limits::default(), 0),
        Ok(Outcome::Integer(40))
    );
    assert_eq!(
        execute(&mut store, &count, &Limits::default(), 0),
        Ok(Outcome::Integer(0))
    );
    let random = Op::RandomKey { shard: 3, seed: 1 };
    assert_eq!(
        read(&store, &random, &Limits::default(), 0),
        Ok(Outcome::Value(None))
    );
}

#[test]
fn scan_positions_are_pinned() {
    // fmix64(FNV-1a 64) >> 16, computed independently (a Python
    // one-off): cursors handed out stay valid across versions only while
    // these hold.
    assert_eq!(scan_position(b""), 0xefd0_1f60_ba99);
    assert_eq!(scan_position(b"a"), 0x82a2_a958_a9be);
    assert!(scan_position(b"anything") < SCAN_POSITION_END);
}
