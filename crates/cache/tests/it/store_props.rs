//! Property tests for the deterministic store (one random operation sequence
//! per case, every policy):
//! - two stores fed the same sequence stay byte-identical, answers included;
//! - snapshot, restore and continue equals continuing (also for the
//!   default adaptive policy restored in the middle of adapting);
//! - the byte count always equals the sum of entry weights, and capacity is
//!   never exceeded after an operation (`check_invariants`).

use cache::{PolicyKind, Store, StoreConfig};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Operation {
    Get(u8),
    GetMany(Vec<u8>),
    Put(u8, usize, Option<u64>),
    Append(u8, usize),
    Delete(u8),
    CompareAndSet(u8, Option<usize>, usize),
    Increment(u8, i64),
    Expire(u8, u64),
    Persist(u8),
    Ttl(u8),
}

fn operation() -> impl Strategy<Value = (Operation, u64)> {
    let key = 0u8..24;
    let size = 0usize..48;
    let ttl = prop_oneof![Just(None), (0u64..40).prop_map(Some)];
    let operation = prop_oneof![
        3 => key.clone().prop_map(Operation::Get),
        1 => prop::collection::vec(key.clone(), 0..4).prop_map(Operation::GetMany),
        3 => (key.clone(), size.clone(), ttl).prop_map(|(k, s, t)| Operation::Put(k, s, t)),
        1 => (key.clone(), size.clone()).prop_map(|(k, s)| Operation::Append(k, s)),
        1 => key.clone().prop_map(Operation::Delete),
        1 => (key.clone(), prop::option::of(0usize..4), size.clone())
            .prop_map(|(k, e, s)| Operation::CompareAndSet(k, e, s)),
        1 => (key.clone(), -3i64..3).prop_map(|(k, d)| Operation::Increment(k, d)),
        1 => (key.clone(), 0u64..40).prop_map(|(k, t)| Operation::Expire(k, t)),
        1 => key.clone().prop_map(Operation::Persist),
        1 => key.prop_map(Operation::Ttl),
    ];
    // Time advances by small steps (sometimes not at all, never backwards).
    (operation, 0u64..6)
}

fn key_bytes(key: u8) -> Vec<u8> {
    format!("key-{key}").into_bytes()
}

fn value_bytes(size: usize) -> Vec<u8> {
    vec![b'a' + (size % 26) as u8; size]
}

/// Applies one operation; returns a printable answer to compare stores by.
fn apply(store: &mut Store, operation: &Operation, now_ms: u64) -> String {
    match operation {
        Operation::Get(key) => format!("{:?}", store.get(&key_bytes(*key), now_ms)),
        Operation::GetMany(keys) => {
            let keys: Vec<Vec<u8>> = keys.iter().map(|key| key_bytes(*key)).collect();
            let borrowed: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            format!("{:?}", store.get_many(&borrowed, now_ms))
        }
        Operation::Put(key, size, ttl_ms) => {
            format!(
                "{:?}",
                store.put(&key_bytes(*key), value_bytes(*size), *ttl_ms, now_ms)
            )
        }
        Operation::Append(key, size) => {
            format!(
                "{:?}",
                store.append(&key_bytes(*key), &value_bytes(*size), now_ms)
            )
        }
        Operation::Delete(key) => format!("{:?}", store.delete(&key_bytes(*key), now_ms)),
        Operation::CompareAndSet(key, expected, size) => {
            let expected = expected.map(value_bytes);
            let outcome = store.compare_and_set(
                &key_bytes(*key),
                expected.as_deref(),
                value_bytes(*size),
                None,
                now_ms,
            );
            format!("{outcome:?}")
        }
        Operation::Increment(key, delta) => {
            format!("{:?}", store.increment(&key_bytes(*key), *delta, now_ms))
        }
        Operation::Expire(key, ttl_ms) => {
            format!("{:?}", store.expire(&key_bytes(*key), *ttl_ms, now_ms))
        }
        Operation::Persist(key) => format!("{:?}", store.persist(&key_bytes(*key), now_ms)),
        Operation::Ttl(key) => format!("{:?}", store.ttl(&key_bytes(*key), now_ms)),
    }
}

fn config(policy_index: usize, capacity_bytes: u64, capacity_entries: Option<u64>) -> StoreConfig {
    let mut config = StoreConfig::new(capacity_bytes).with_policy(PolicyKind::ALL[policy_index]);
    config.capacity_entries = capacity_entries;
    // Vary cleanup too (derived from the other inputs to keep cases small):
    // with little cleanup, expired entries linger and must stay invisible.
    config.reclaim_per_op = capacity_bytes % 4;
    config
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn same_operations_give_same_state_and_answers(
        policy_index in 0..PolicyKind::ALL.len(),
        capacity_bytes in 100u64..1_500,
        capacity_entries in prop::option::of(1u64..12),
        operations in prop::collection::vec(operation(), 1..300),
    ) {
        let config = config(policy_index, capacity_bytes, capacity_entries);
        let mut first = Store::new(config);
        let mut second = Store::new(config);
        let mut now_ms = 0;
        for (operation, step_ms) in &operations {
            now_ms += step_ms;
            let answer_first = apply(&mut first, operation, now_ms);
            let answer_second = apply(&mut second, operation, now_ms);
            prop_assert_eq!(answer_first, answer_second);
            first.check_invariants().map_err(TestCaseError::fail)?;
            let stats = first.stats();
            prop_assert!(stats.bytes <= capacity_bytes);
            prop_assert!(capacity_entries.is_none_or(|capacity| stats.entries <= capacity));
        }
        prop_assert_eq!(first.snapshot(), second.snapshot());
    }

    #[test]
    fn snapshot_restore_continue_equals_continue(
        policy_index in 0..PolicyKind::ALL.len(),
        capacity_bytes in 100u64..1_500,
        operations in prop::collection::vec(operation(), 2..300),
        split_fraction in 0.0f64..1.0,
    ) {
        let config = config(policy_index, capacity_bytes, None);
        let split = ((operations.len() as f64) * split_fraction) as usize;
        let mut original = Store::new(config);
        let mut now_ms = 0;
        let mut times_ms = Vec::new();
        for (_, step_ms) in &operations {
            now_ms += step_ms;
            times_ms.push(now_ms);
        }
        for ((operation, _), now_ms) in operations[..split].iter().zip(&times_ms) {
            apply(&mut original, operation, *now_ms);
        }
        let mut restored = Store::restore(&original.snapshot())
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        for ((operation, _), now_ms) in operations[split..].iter().zip(&times_ms[split..]) {
            let answer_original = apply(&mut original, operation, *now_ms);
            let answer_restored = apply(&mut restored, operation, *now_ms);
            prop_assert_eq!(answer_original, answer_restored);
            restored.check_invariants().map_err(TestCaseError::fail)?;
        }
        prop_assert_eq!(original.snapshot(), restored.snapshot());
    }
}

/// The default (adaptive) policy changes its configuration only after
/// thousands of requests, which the random cases above never reach. Here
/// a store of the default policy on a shifting trace is snapshotted while
/// it adapts; the restored copy must answer, evict and serialize exactly
/// as the original over the rest of the trace.
#[test]
fn default_policy_restored_while_adapting_continues_identically() {
    let trace = cache::workload::shifting_trace(5_000, 0.8, 120_000, 2, 21);
    let (first_part, second_part) = trace.split_at(60_000);
    let config = StoreConfig::new(u64::MAX).with_capacity_entries(400);
    assert_eq!(config.policy, PolicyKind::DEFAULT);
    let mut original = Store::new(config);
    let replay = |store: &mut Store, keys: &[u64], start_ms: usize| -> u64 {
        let mut hits = 0;
        for (offset, key) in keys.iter().enumerate() {
            let now_ms = (start_ms + offset) as u64;
            let key = key.to_be_bytes();
            if store.get(&key, now_ms).is_some() {
                hits += 1;
            } else {
                store
                    .put(&key, key.to_vec(), None, now_ms)
                    .expect("one small entry fits");
            }
        }
        hits
    };
    replay(&mut original, first_part, 0);
    let mut restored = Store::restore(&original.snapshot()).expect("restores");
    let hits_original = replay(&mut original, second_part, first_part.len());
    let hits_restored = replay(&mut restored, second_part, first_part.len());
    assert_eq!(hits_original, hits_restored, "hits after the restore");
    // It did adapt: S3-FIFO, where adaptive starts, hits less here.
    let mut s3fifo = Store::new(config.with_policy(PolicyKind::S3Fifo));
    replay(&mut s3fifo, first_part, 0);
    let hits_s3fifo = replay(&mut s3fifo, second_part, first_part.len());
    assert!(
        hits_original > hits_s3fifo,
        "adaptive {hits_original} hits, S3-FIFO {hits_s3fifo}: the policy did not adapt"
    );
    assert!(
        original.snapshot() == restored.snapshot(),
        "the restored store diverged from the original"
    );
}
