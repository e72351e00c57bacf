//! The operations on a store with a disk tier (L3) answer exactly as on a
//! store without one: a proptest of random operations through `execute`
//! (the apply path) and `read` (reads served outside the log), against an
//! unbounded store as the model, with a memory tier small enough that most
//! keys live on disk and a disk large enough never to evict.

use api::{Combination, End, Limits, ListOp, Op, SetOp, execute, read};
use cache::store::DiskConfig;
use cache::{Store, StoreConfig};
use proptest::prelude::*;

fn key(index: u8) -> Vec<u8> {
    format!("key-{index}").into_bytes()
}

fn bytes(size: u8) -> Vec<u8> {
    vec![b'a' + size % 26; size as usize]
}

fn operation() -> impl Strategy<Value = Op> {
    let index = 0u8..30;
    let size = 0u8..12;
    prop_oneof![
        3 => index.clone().prop_map(|k| Op::Get { key: key(k) }),
        3 => (index.clone(), size.clone()).prop_map(|(k, s)| Op::Put { key: key(k), value: bytes(s), ttl_ms: None }),
        1 => (index.clone(), 1u64..50).prop_map(|(k, t)| Op::Put { key: key(k), value: bytes(3), ttl_ms: Some(t) }),
        1 => index.clone().prop_map(|k| Op::Delete { key: key(k) }),
        1 => index.clone().prop_map(|k| Op::Strlen { key: key(k) }),
        1 => index.clone().prop_map(|k| Op::Ttl { key: key(k) }),
        2 => (index.clone(), size.clone()).prop_map(|(k, s)| Op::Sets { key: key(k), op: SetOp::Add { members: vec![bytes(s)] } }),
        1 => index.clone().prop_map(|k| Op::Sets { key: key(k), op: SetOp::Members }),
        1 => (index.clone(), index.clone()).prop_map(|(k, o)| Op::Sets { key: key(k), op: SetOp::Combine { how: Combination::Union, others: vec![key(o)] } }),
        2 => (index.clone(), size.clone()).prop_map(|(k, s)| Op::List { key: key(k), op: ListOp::Push { end: End::Right, elements: vec![bytes(s)], only_existing: false } }),
        1 => index.clone().prop_map(|k| Op::List { key: key(k), op: ListOp::Range { start: 0, stop: -1 } }),
        1 => index.clone().prop_map(|k| Op::List { key: key(k), op: ListOp::Pop { end: End::Left, count: None } }),
        1 => (index.clone(), index.clone()).prop_map(|(k, o)| Op::Sets { key: key(k), op: SetOp::Store { how: Combination::Union, sources: vec![key(k), key(o)] } }),
        1 => (index.clone(), index.clone()).prop_map(|(s, d)| Op::Rename { source: key(s), destination: key(d), only_if_new: false }),
        1 => Just(Op::CountShard { shard: 0 }),
        1 => Just(Op::ScanShard { shard: 0, position: 0, count: 100, pattern: None, type_name: None }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn a_store_with_a_disk_tier_answers_as_one_without(
        operations in prop::collection::vec((operation(), 0u64..4), 1..200),
    ) {
        let directory = tempfile::tempdir().map_err(|error| TestCaseError::fail(error.to_string()))?;
        // Memory for a few entries; collections stay small (a few members).
        let config = StoreConfig::new(1_200).with_disk(DiskConfig {
            capacity_bytes: 1 << 20,
            segment_bytes: 1_024,
        });
        let mut tiered = Store::open(config, directory.path())
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        let mut model = Store::new(StoreConfig::new(u64::MAX));
        let limits = Limits::default();
        let mut now_ms = 0;
        for (op, step_ms) in &operations {
            now_ms += step_ms;
            if op.is_read() {
                // Served outside the log first (changes nothing), then
                // through it.
                prop_assert_eq!(read(&tiered, op, &limits, now_ms), read(&model, op, &limits, now_ms), "read {:?}", op);
            }
            let expected = execute(&mut model, op, &limits, now_ms);
            prop_assert_eq!(execute(&mut tiered, op, &limits, now_ms), expected, "{:?}", op);
            tiered.check_invariants().map_err(TestCaseError::fail)?;
            prop_assert!(tiered.disk_fault().is_none());
        }
        let stats = tiered.stats();
        prop_assert_eq!(stats.disk_evictions, 0);
        if model.used_bytes() > tiered.config().capacity_bytes {
            prop_assert!(stats.disk_writes > 0, "more than memory holds, yet nothing went to disk");
        }
    }
}
