//! Model-based property test: with room for everything (no evictions), the
//! store answers exactly like a `BTreeMap` with deadlines, for every
//! operation and every policy. This pins down the semantics (TTL at the
//! deadline, which writes keep or replace it, CAS and increment rules) that
//! the determinism properties in `store_props.rs` take for granted.

use std::collections::BTreeMap;

use cache::store::Ttl;
use cache::{PolicyKind, Store, StoreConfig, StoreError};
use proptest::prelude::*;

/// The reference: key -> (value, deadline).
#[derive(Default)]
struct Model {
    entries: BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)>,
    now_ms: u64,
}

impl Model {
    fn visible(&mut self, key: &[u8]) -> Option<&mut (Vec<u8>, Option<u64>)> {
        let now_ms = self.now_ms;
        if self
            .entries
            .get(key)
            .is_some_and(|(_, deadline)| deadline.is_some_and(|at| now_ms >= at))
        {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }
}

#[derive(Debug, Clone)]
enum Operation {
    Get(u8),
    Put(u8, u8, Option<u64>),
    Append(u8, u8),
    Delete(u8),
    CompareAndSet(u8, Option<u8>, u8),
    Increment(u8, i64),
    Expire(u8, u64),
    Persist(u8),
    Ttl(u8),
}

fn operation() -> impl Strategy<Value = Operation> {
    let key = 0u8..8;
    let value = 0u8..4;
    prop_oneof![
        key.clone().prop_map(Operation::Get),
        (key.clone(), value.clone(), prop::option::of(0u64..30))
            .prop_map(|(k, v, t)| Operation::Put(k, v, t)),
        (key.clone(), value.clone()).prop_map(|(k, v)| Operation::Append(k, v)),
        key.clone().prop_map(Operation::Delete),
        (key.clone(), prop::option::of(value.clone()), value)
            .prop_map(|(k, e, v)| Operation::CompareAndSet(k, e, v)),
        (key.clone(), -2i64..3).prop_map(|(k, d)| Operation::Increment(k, d)),
        (key.clone(), 0u64..30).prop_map(|(k, t)| Operation::Expire(k, t)),
        key.clone().prop_map(Operation::Persist),
        key.prop_map(Operation::Ttl),
    ]
}

fn key(index: u8) -> Vec<u8> {
    vec![b'k', index]
}

/// Values are short digit strings so that increment sometimes succeeds.
fn value(index: u8) -> Vec<u8> {
    match index {
        0 => b"7".to_vec(),
        1 => b"-12".to_vec(),
        2 => b"x".to_vec(),
        _ => Vec::new(),
    }
}

fn apply_model(model: &mut Model, operation: &Operation) -> String {
    let now_ms = model.now_ms;
    match operation {
        Operation::Get(k) => format!("{:?}", model.visible(&key(*k)).map(|(v, _)| v.as_slice())),
        Operation::Put(_, _, Some(0)) => format!("{:?}", Err::<(), _>(StoreError::ZeroTtl)),
        Operation::Put(k, v, ttl_ms) => {
            model
                .entries
                .insert(key(*k), (value(*v), ttl_ms.map(|ttl| now_ms + ttl)));
            format!("{:?}", Ok::<(), StoreError>(()))
        }
        Operation::Append(k, v) => {
            let entry = match model.visible(&key(*k)) {
                Some(entry) => entry,
                None => model.entries.entry(key(*k)).or_insert((Vec::new(), None)),
            };
            entry.0.extend(value(*v));
            format!("{:?}", Ok::<u64, StoreError>(entry.0.len() as u64))
        }
        Operation::Delete(k) => {
            let present = model.visible(&key(*k)).is_some();
            model.entries.remove(&key(*k));
            format!("{present:?}")
        }
        Operation::CompareAndSet(k, expected, new) => {
            let current = model.visible(&key(*k)).map(|(v, _)| v.clone());
            if current != expected.map(value) {
                format!("{:?}", Err::<(), _>(StoreError::CasMismatch { current }))
            } else {
                model.entries.insert(key(*k), (value(*new), None));
                format!("{:?}", Ok::<(), StoreError>(()))
            }
        }
        Operation::Increment(k, delta) => {
            let current = model.visible(&key(*k)).map(|(v, d)| (v.clone(), *d));
            let parsed = match &current {
                None => Ok(0),
                Some((v, _)) => std::str::from_utf8(v)
                    .ok()
                    .filter(|text| {
                        let digits = text.strip_prefix('-').unwrap_or(text);
                        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|text| text.parse::<i64>().ok())
                    .ok_or(StoreError::NotAnInteger),
            };
            let result =
                parsed.and_then(|n| n.checked_add(*delta).ok_or(StoreError::IncrementOverflow));
            if let Ok(next) = result {
                let deadline = current.and_then(|(_, d)| d);
                model
                    .entries
                    .insert(key(*k), (next.to_string().into_bytes(), deadline));
            }
            format!("{result:?}")
        }
        Operation::Expire(_, 0) => format!("{:?}", Err::<bool, _>(StoreError::ZeroTtl)),
        Operation::Expire(k, ttl_ms) => {
            let result = match model.visible(&key(*k)) {
                Some(entry) => {
                    entry.1 = Some(now_ms + ttl_ms);
                    true
                }
                None => false,
            };
            format!("{:?}", Ok::<bool, StoreError>(result))
        }
        Operation::Persist(k) => {
            let result = match model.visible(&key(*k)) {
                Some(entry) if entry.1.is_some() => {
                    entry.1 = None;
                    true
                }
                _ => false,
            };
            format!("{result:?}")
        }
        Operation::Ttl(k) => {
            let ttl = match model.visible(&key(*k)) {
                None => Ttl::Missing,
                Some((_, None)) => Ttl::Persistent,
                Some((_, Some(at))) => Ttl::RemainingMs(*at - now_ms),
            };
            format!("{ttl:?}")
        }
    }
}

fn apply_store(store: &mut Store, operation: &Operation, now_ms: u64) -> String {
    match operation {
        Operation::Get(k) => format!("{:?}", store.get(&key(*k), now_ms)),
        Operation::Put(k, v, ttl_ms) => {
            format!("{:?}", store.put(&key(*k), value(*v), *ttl_ms, now_ms))
        }
        Operation::Append(k, v) => format!("{:?}", store.append(&key(*k), &value(*v), now_ms)),
        Operation::Delete(k) => format!("{:?}", store.delete(&key(*k), now_ms)),
        Operation::CompareAndSet(k, expected, new) => {
            let expected = expected.map(value);
            format!(
                "{:?}",
                store.compare_and_set(&key(*k), expected.as_deref(), value(*new), None, now_ms)
            )
        }
        Operation::Increment(k, delta) => {
            format!("{:?}", store.increment(&key(*k), *delta, now_ms))
        }
        Operation::Expire(k, ttl_ms) => format!("{:?}", store.expire(&key(*k), *ttl_ms, now_ms)),
        Operation::Persist(k) => format!("{:?}", store.persist(&key(*k), now_ms)),
        Operation::Ttl(k) => format!("{:?}", store.ttl(&key(*k), now_ms)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn store_answers_like_a_map_with_deadlines(
        policy_index in 0..PolicyKind::ALL.len(),
        reclaim_per_op in 0u64..3,
        steps in prop::collection::vec((operation(), 0u64..8), 1..200),
    ) {
        // Little or no cleanup, so lookups meet expired entries themselves.
        let mut config = StoreConfig::new(1 << 20).with_policy(PolicyKind::ALL[policy_index]);
        config.reclaim_per_op = reclaim_per_op;
        let mut store = Store::new(config);
        let mut model = Model::default();
        for (operation, step_ms) in &steps {
            model.now_ms += step_ms;
            let expected = apply_model(&mut model, operation);
            let actual = apply_store(&mut store, operation, model.now_ms);
            prop_assert_eq!(&actual, &expected, "after {:?} at {} ms", operation, model.now_ms);
        }
        prop_assert_eq!(store.stats().evictions, 0);
    }
}
