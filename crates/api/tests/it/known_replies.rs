//! [`api::reply_known_before`]: the reply it tells before a write runs is
//! the reply [`api::execute`] gives, whatever the store holds (strings,
//! other types, deadlines, a full store), and it tells nothing for writes
//! whose reply depends on the store.

use api::{HashOp, Limits, Op, SetCondition, SetTtl, execute, reply_known_before};
use cache::{Store, StoreConfig};
use proptest::prelude::*;

/// A write the test throws at a store, to set it up or to predict.
fn write(kind: u8, key: u8, size: usize, ttl_ms: u64) -> Op {
    let key = vec![b'k', key % 4];
    let value = vec![b'v'; size];
    match kind % 8 {
        0 => Op::Put {
            key,
            value,
            ttl_ms: (!ttl_ms.is_multiple_of(3)).then_some(ttl_ms % 50),
        },
        1 => Op::Set {
            key,
            value,
            condition: SetCondition::Always,
            ttl: match ttl_ms % 4 {
                0 => SetTtl::Clear,
                1 => SetTtl::Keep,
                2 => SetTtl::Ms(ttl_ms % 50),
                _ => SetTtl::At {
                    ttl_ms: ttl_ms % 50,
                    unix_ms: 1_000,
                },
            },
            return_old: ttl_ms.is_multiple_of(5),
        },
        2 => Op::Set {
            key,
            value,
            condition: SetCondition::IfAbsent,
            ttl: SetTtl::Clear,
            return_old: false,
        },
        3 => Op::Hash {
            key,
            op: HashOp::Set {
                pairs: vec![(b"f".to_vec(), value)],
                only_new: false,
            },
        },
        4 => Op::Append { key, value },
        5 | 6 => Op::MultiSet {
            pairs: vec![
                (key, value.clone()),
                (vec![b'k', (size % 4) as u8], value[..size / 2].to_vec()),
            ],
            only_if_none_exist: kind % 8 == 6,
        },
        _ => Op::Delete { key },
    }
}

proptest! {
    #[test]
    fn a_reply_told_before_is_the_reply_given(
        setup in proptest::collection::vec((any::<u8>(), any::<u8>(), 0usize..300, any::<u64>()), 0..20),
        predicted in (any::<u8>(), any::<u8>(), 0usize..600, any::<u64>()),
        capacity_bytes in 200u64..2_000,
    ) {
        let limits = Limits { max_value_bytes: 500, ..Limits::default() };
        let config = StoreConfig::new(capacity_bytes);
        let mut store = Store::new(config);
        let mut now_ms = 0;
        for (kind, key, size, ttl_ms) in setup {
            now_ms += ttl_ms % 20;
            let _ = execute(&mut store, &write(kind, key, size, ttl_ms), &limits, now_ms);
        }
        let (kind, key, size, ttl_ms) = predicted;
        let op = write(kind, key, size, ttl_ms);
        if let Some(told) = reply_known_before(&op, &limits, store.config()) {
            prop_assert_eq!(execute(&mut store, &op, &limits, now_ms), told);
        }
    }
}

#[test]
fn only_plain_string_writes_that_fit_are_told() {
    let limits = Limits {
        max_value_bytes: 500,
        ..Limits::default()
    };
    let config = StoreConfig::new(1_000);
    let told = |op: &Op| reply_known_before(op, &limits, &config).is_some();
    assert!(told(&write(0, 1, 10, 1)), "a Put with a TTL");
    assert!(told(&write(1, 1, 10, 1)), "a SET with KEEPTTL");
    assert!(told(&write(0, 1, 10, 3)), "a Put without a TTL");
    assert!(
        !told(&Op::Put {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ttl_ms: Some(0),
        }),
        "a Put with a zero TTL is refused by the store"
    );
    assert!(
        !told(&write(1, 1, 10, 5)),
        "SET ... GET answers the old value"
    );
    assert!(!told(&write(2, 1, 10, 0)), "SET NX depends on the key");
    assert!(!told(&write(3, 1, 10, 0)), "HSET answers a count");
    assert!(!told(&write(4, 1, 10, 0)), "APPEND answers a length");
    assert!(told(&write(5, 1, 10, 0)), "MSET");
    assert!(!told(&write(6, 1, 10, 0)), "MSETNX depends on the keys");
    assert!(
        !told(&write(7, 1, 10, 0)),
        "DEL answers whether it was there"
    );
    assert!(!told(&write(0, 1, 501, 1)), "over the value limit");
    let small = StoreConfig::new(300);
    assert!(
        reply_known_before(&write(0, 1, 200, 1), &limits, &small).is_some(),
        "fits a 300-byte store"
    );
    assert!(
        reply_known_before(&write(0, 1, 400, 1), &limits, &small).is_none(),
        "within the value limit but heavier than the store: refused"
    );
}
