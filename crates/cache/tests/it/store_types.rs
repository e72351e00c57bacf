//! Typed values in the store: byte accounting as collections grow and
//! shrink, WRONGTYPE, empty collections removed, TTL kept, eviction and
//! capacity, snapshots of every type, sorted-set order and ranges; and a
//! property test of every collection against a BTreeMap/Vec reference
//! model with the accounting checked after every operation.

use std::collections::{BTreeMap, BTreeSet};

use cache::store::value::{
    HASH_FIELD_OVERHEAD_BYTES, LIST_ELEMENT_OVERHEAD_BYTES, SET_MEMBER_OVERHEAD_BYTES, ScoreBound,
    ZSET_MEMBER_OVERHEAD_BYTES, hash_field_bytes,
};
use cache::store::{ENTRY_OVERHEAD_BYTES, Kind, Ttl, Value};
use cache::{Store, StoreConfig, StoreError};
use proptest::prelude::*;

fn store(capacity_bytes: u64) -> Store {
    Store::new(StoreConfig::new(capacity_bytes))
}

fn hash_set(store: &mut Store, key: &[u8], field: &[u8], value: &[u8], now_ms: u64) -> bool {
    store
        .update(
            key,
            Kind::Hash,
            hash_field_bytes(field, value),
            now_ms,
            |held| match held {
                Value::Hash(hash) => Ok::<_, StoreError>(hash.insert(field, value.to_vec())),
                _ => unreachable!(),
            },
        )
        .expect("fits")
}

fn hash_del(store: &mut Store, key: &[u8], field: &[u8], now_ms: u64) -> bool {
    store
        .update(key, Kind::Hash, 0, now_ms, |held| match held {
            Value::Hash(hash) => Ok::<_, StoreError>(hash.remove(field)),
            _ => unreachable!(),
        })
        .expect("fits")
}

#[test]
fn a_hash_is_charged_exactly_as_it_grows_and_shrinks() {
    let mut store = store(1 << 20);
    assert!(hash_set(&mut store, b"h", b"f1", b"abc", 0));
    let one = 1 + ENTRY_OVERHEAD_BYTES + 2 + 3 + HASH_FIELD_OVERHEAD_BYTES;
    assert_eq!(store.used_bytes(), one);
    assert!(hash_set(&mut store, b"h", b"f2", b"", 0));
    assert_eq!(store.used_bytes(), one + 2 + HASH_FIELD_OVERHEAD_BYTES);
    // Overwriting a field changes the charge by the value's difference.
    assert!(!hash_set(&mut store, b"h", b"f1", b"abcdefgh", 0));
    assert_eq!(store.used_bytes(), one + 5 + 2 + HASH_FIELD_OVERHEAD_BYTES);
    store.check_invariants().expect("invariants");
    assert!(hash_del(&mut store, b"h", b"f2", 0));
    assert_eq!(store.used_bytes(), one + 5);
    // The last field gone: the key is gone, as in Redis.
    assert!(hash_del(&mut store, b"h", b"f1", 0));
    assert_eq!(store.used_bytes(), 0);
    assert_eq!(store.kind(b"h", 0), None);
    assert!(store.is_empty());
}

#[test]
fn every_type_has_its_per_element_charge() {
    let mut store = store(1 << 20);
    store
        .update(b"s", Kind::Set, 100, 0, |held| match held {
            Value::Set(set) => Ok::<_, StoreError>(set.insert(b"four")),
            _ => unreachable!(),
        })
        .expect("fits");
    assert_eq!(
        store.used_bytes(),
        1 + ENTRY_OVERHEAD_BYTES + 4 + SET_MEMBER_OVERHEAD_BYTES
    );
    store.delete(b"s", 0);
    store
        .update(b"l", Kind::List, 100, 0, |held| match held {
            Value::List(list) => {
                list.push_back(b"xy".to_vec());
                list.push_front(b"z".to_vec());
                Ok::<_, StoreError>(())
            }
            _ => unreachable!(),
        })
        .expect("fits");
    assert_eq!(
        store.used_bytes(),
        1 + ENTRY_OVERHEAD_BYTES + 3 + 2 * LIST_ELEMENT_OVERHEAD_BYTES
    );
    store.delete(b"l", 0);
    store
        .update(b"z", Kind::ZSet, 100, 0, |held| match held {
            Value::ZSet(zset) => Ok::<_, StoreError>(zset.insert(b"abc", 1.5)),
            _ => unreachable!(),
        })
        .expect("fits");
    assert_eq!(
        store.used_bytes(),
        1 + ENTRY_OVERHEAD_BYTES + 6 + ZSET_MEMBER_OVERHEAD_BYTES
    );
    store.check_invariants().expect("invariants");
}

#[test]
fn the_wrong_type_is_refused_and_changes_nothing() {
    let mut store = store(1 << 20);
    store.put(b"str", b"v".to_vec(), None, 0).expect("fits");
    hash_set(&mut store, b"h", b"f", b"v", 0);
    let before = store.snapshot();
    let refused = store.update(b"str", Kind::Hash, 10, 1, |_| Ok::<_, StoreError>(()));
    assert_eq!(refused, Err(StoreError::WrongType));
    let refused = store.update(b"h", Kind::Set, 10, 1, |_| Ok::<_, StoreError>(()));
    assert_eq!(refused, Err(StoreError::WrongType));
    assert_eq!(store.append(b"h", b"x", 1), Err(StoreError::WrongType));
    assert_eq!(store.increment(b"h", 1, 1), Err(StoreError::WrongType));
    assert_eq!(
        store.compare_and_set(b"h", None, b"x".to_vec(), None, 1),
        Err(StoreError::WrongType)
    );
    // A string read of a hash sees no string.
    assert_eq!(store.peek(b"h", 1), None);
    assert_eq!(store.kind(b"h", 1), Some(Kind::Hash));
    assert_eq!(store.kind(b"str", 1), Some(Kind::String));
    // Counters aside (a get counts), nothing changed: compare the entries.
    let restored = Store::restore(&before).expect("restores");
    let entries = |store: &Store| {
        store
            .entries(1)
            .map(|entry| (entry.key.to_vec(), entry.value.clone(), entry.expire_at_ms))
            .collect::<Vec<_>>()
    };
    assert_eq!(entries(&store), entries(&restored));
    // A plain put replaces a value of any type.
    store
        .put(b"h", b"now a string".to_vec(), None, 2)
        .expect("fits");
    assert_eq!(store.get(b"h", 2), Some(&b"now a string"[..]));
}

#[test]
fn a_collection_keeps_its_deadline_when_it_changes() {
    let mut store = store(1 << 20);
    hash_set(&mut store, b"h", b"a", b"1", 0);
    assert_eq!(store.expire(b"h", 100, 0), Ok(true));
    hash_set(&mut store, b"h", b"b", b"2", 10);
    assert_eq!(store.ttl(b"h", 10), Ttl::RemainingMs(90));
    // Expired, it is gone for every type, and a write starts afresh.
    assert_eq!(store.kind(b"h", 100), None);
    hash_set(&mut store, b"h", b"c", b"3", 100);
    assert_eq!(store.ttl(b"h", 100), Ttl::Persistent);
    match store.peek_value(b"h", 100) {
        Some(Value::Hash(hash)) => assert_eq!(hash.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_growing_collection_evicts_others_and_an_oversized_one_is_refused() {
    let capacity = 1000;
    let mut store = store(capacity);
    for key in 0..5u8 {
        store.put(&[key], vec![0; 60], None, 0).expect("fits");
    }
    let mut field = 0u32;
    while store.stats().evictions == 0 {
        hash_set(&mut store, b"big", &field.to_be_bytes(), &[1; 20], 0);
        field += 1;
        assert!(store.used_bytes() <= capacity);
    }
    store.check_invariants().expect("invariants");
    assert_eq!(store.kind(b"big", 0), Some(Kind::Hash));
    // A change whose growth could pass the capacity is refused up front.
    let before = store.used_bytes();
    let refused = store.update(b"big", Kind::Hash, capacity, 0, |held| match held {
        Value::Hash(hash) => Ok::<_, StoreError>(hash.insert(b"huge", vec![0; 900])),
        _ => unreachable!(),
    });
    assert!(matches!(refused, Err(StoreError::TooLarge { .. })));
    assert_eq!(store.used_bytes(), before);
    // A new collection over the capacity is refused and not created.
    let refused = store.update(b"new", Kind::Set, 0, 0, |held| match held {
        Value::Set(set) => Ok::<_, StoreError>(set.insert(&[7; 2000])),
        _ => unreachable!(),
    });
    assert!(matches!(refused, Err(StoreError::TooLarge { .. })));
    assert_eq!(store.kind(b"new", 0), None);
    store.check_invariants().expect("invariants");
}

#[test]
fn snapshots_carry_every_type() {
    let mut store = store(1 << 20);
    store
        .put(b"s", b"str".to_vec(), Some(500), 0)
        .expect("fits");
    hash_set(&mut store, b"h", b"f", b"v", 0);
    store
        .update(b"set", Kind::Set, 100, 0, |held| match held {
            Value::Set(set) => Ok::<_, StoreError>(set.insert(b"m")),
            _ => unreachable!(),
        })
        .expect("fits");
    store
        .update(b"l", Kind::List, 100, 0, |held| match held {
            Value::List(list) => {
                list.push_back(b"e".to_vec());
                Ok::<_, StoreError>(())
            }
            _ => unreachable!(),
        })
        .expect("fits");
    store
        .update(b"z", Kind::ZSet, 100, 0, |held| match held {
            Value::ZSet(zset) => {
                zset.insert(b"b", 2.0);
                zset.insert(b"a", 2.0);
                zset.insert(b"c", -1.0);
                Ok::<_, StoreError>(())
            }
            _ => unreachable!(),
        })
        .expect("fits");
    let bytes = store.snapshot();
    let restored = Store::restore(&bytes).expect("restores");
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(restored.used_bytes(), store.used_bytes());
    for key in [&b"s"[..], b"h", b"set", b"l", b"z"] {
        assert_eq!(restored.peek_value(key, 1), store.peek_value(key, 1));
    }
    match restored.peek_value(b"z", 1) {
        Some(Value::ZSet(zset)) => {
            let order: Vec<&[u8]> = zset.iter().map(|(member, _)| member).collect();
            assert_eq!(order, vec![&b"c"[..], b"a", b"b"]);
            assert_eq!(zset.rank(b"b"), Some(2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sorted_set_ranges_by_score_honour_open_and_closed_bounds() {
    let mut store = store(1 << 20);
    store
        .update(b"z", Kind::ZSet, 1000, 0, |held| match held {
            Value::ZSet(zset) => {
                for (member, score) in [
                    (&b"a"[..], 1.0),
                    (b"b", 2.0),
                    (b"c", 2.0),
                    (b"d", 3.0),
                    (b"inf", f64::INFINITY),
                    (b"ninf", f64::NEG_INFINITY),
                ] {
                    zset.insert(member, score);
                }
                Ok::<_, StoreError>(())
            }
            _ => unreachable!(),
        })
        .expect("fits");
    let Some(Value::ZSet(zset)) = store.peek_value(b"z", 0) else {
        panic!("not a zset")
    };
    let members = |found: Vec<(&[u8], f64)>| -> Vec<String> {
        found
            .into_iter()
            .map(|(member, _)| String::from_utf8_lossy(member).into_owned())
            .collect()
    };
    use ScoreBound::{Exclusive, Inclusive};
    let forward = |min, max| members(zset.range_by_score(min, max).collect());
    let backward = |min, max| members(zset.range_by_score_rev(min, max).collect());
    assert_eq!(forward(Inclusive(2.0), Inclusive(3.0)), ["b", "c", "d"]);
    assert_eq!(forward(Exclusive(2.0), Inclusive(3.0)), ["d"]);
    assert_eq!(forward(Inclusive(1.0), Exclusive(2.0)), ["a"]);
    assert_eq!(
        forward(Inclusive(3.0), Inclusive(2.0)),
        Vec::<String>::new()
    );
    assert_eq!(
        forward(Inclusive(f64::NEG_INFINITY), Inclusive(f64::INFINITY)),
        ["ninf", "a", "b", "c", "d", "inf"]
    );
    assert_eq!(
        forward(Exclusive(f64::INFINITY), Inclusive(f64::INFINITY)),
        Vec::<String>::new()
    );
    assert_eq!(backward(Inclusive(2.0), Inclusive(3.0)), ["d", "c", "b"]);
    assert_eq!(backward(Inclusive(2.0), Exclusive(3.0)), ["c", "b"]);
    assert_eq!(
        backward(Inclusive(3.0), Inclusive(f64::INFINITY)),
        ["inf", "d"]
    );
    assert_eq!(zset.rank(b"ninf"), Some(0));
    assert_eq!(zset.rank(b"d"), Some(4));
    assert_eq!(zset.rank(b"zz"), None);
}

/// One random collection operation, for the reference-model property test.
#[derive(Debug, Clone)]
enum Operation {
    HashSet(u8, u8, usize),
    HashDel(u8, u8),
    SetAdd(u8, u8),
    SetRem(u8, u8),
    ListPush(u8, bool, usize),
    ListPop(u8, bool),
    ListSet(u8, usize, usize),
    ZAdd(u8, u8, i8),
    ZRem(u8, u8),
    Delete(u8),
}

fn operation() -> impl Strategy<Value = Operation> {
    let key = 0u8..6;
    let element = 0u8..12;
    let size = 0usize..40;
    prop_oneof![
        (key.clone(), element.clone(), size.clone())
            .prop_map(|(k, f, s)| Operation::HashSet(k, f, s)),
        (key.clone(), element.clone()).prop_map(|(k, f)| Operation::HashDel(k, f)),
        (key.clone(), element.clone()).prop_map(|(k, m)| Operation::SetAdd(k, m)),
        (key.clone(), element.clone()).prop_map(|(k, m)| Operation::SetRem(k, m)),
        (key.clone(), any::<bool>(), size.clone())
            .prop_map(|(k, f, s)| Operation::ListPush(k, f, s)),
        (key.clone(), any::<bool>()).prop_map(|(k, f)| Operation::ListPop(k, f)),
        (key.clone(), 0usize..6, size).prop_map(|(k, i, s)| Operation::ListSet(k, i, s)),
        (key.clone(), element.clone(), any::<i8>()).prop_map(|(k, m, s)| Operation::ZAdd(k, m, s)),
        (key.clone(), element).prop_map(|(k, m)| Operation::ZRem(k, m)),
        key.prop_map(Operation::Delete),
    ]
}

/// The reference: what each key holds, in the plainest structures.
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    List(Vec<Vec<u8>>),
    ZSet(BTreeMap<Vec<u8>, i8>),
}

impl Model {
    fn is_empty(&self) -> bool {
        match self {
            Model::Hash(map) => map.is_empty(),
            Model::Set(set) => set.is_empty(),
            Model::List(list) => list.is_empty(),
            Model::ZSet(map) => map.is_empty(),
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Model::Hash(map) => map
                .iter()
                .map(|(f, v)| (f.len() + v.len()) as u64 + HASH_FIELD_OVERHEAD_BYTES)
                .sum(),
            Model::Set(set) => set
                .iter()
                .map(|m| m.len() as u64 + SET_MEMBER_OVERHEAD_BYTES)
                .sum(),
            Model::List(list) => list
                .iter()
                .map(|e| e.len() as u64 + LIST_ELEMENT_OVERHEAD_BYTES)
                .sum(),
            Model::ZSet(map) => map
                .keys()
                .map(|m| 2 * m.len() as u64 + ZSET_MEMBER_OVERHEAD_BYTES)
                .sum(),
        }
    }

    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (Model::Hash(map), Value::Hash(hash)) => hash
                .iter()
                .map(|(f, v)| (f.to_vec(), v.to_vec()))
                .eq(map.iter().map(|(f, v)| (f.clone(), v.clone()))),
            (Model::Set(set), Value::Set(held)) => held.iter().eq(set.iter().map(Vec::as_slice)),
            (Model::List(list), Value::List(held)) => {
                held.iter().eq(list.iter().map(Vec::as_slice))
            }
            (Model::ZSet(map), Value::ZSet(held)) => {
                let mut expected: Vec<(f64, Vec<u8>)> = map
                    .iter()
                    .map(|(m, s)| (f64::from(*s), m.clone()))
                    .collect();
                expected.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
                held.iter().map(|(m, s)| (s, m.to_vec())).eq(expected)
                    && map.iter().all(|(m, s)| {
                        let rank = held.rank(m).expect("member");
                        held.iter().nth(rank).map(|(found, _)| found) == Some(m.as_slice())
                            && held.score(m) == Some(f64::from(*s))
                    })
            }
            _ => false,
        }
    }
}

fn element(id: u8) -> Vec<u8> {
    format!("e{id}").into_bytes()
}

fn apply(store: &mut Store, model: &mut BTreeMap<u8, Model>, operation: &Operation) {
    let (key_id, kind) = match operation {
        Operation::HashSet(k, ..) | Operation::HashDel(k, ..) => (*k, Kind::Hash),
        Operation::SetAdd(k, ..) | Operation::SetRem(k, ..) => (*k, Kind::Set),
        Operation::ListPush(k, ..) | Operation::ListPop(k, ..) | Operation::ListSet(k, ..) => {
            (*k, Kind::List)
        }
        Operation::ZAdd(k, ..) | Operation::ZRem(k, ..) => (*k, Kind::ZSet),
        Operation::Delete(k) => {
            let existed = store.delete(&[*k], 0);
            assert_eq!(existed, model.remove(k).is_some());
            return;
        }
    };
    let key = [key_id];
    let model_kind = model.get(&key_id).map(|held| match held {
        Model::Hash(_) => Kind::Hash,
        Model::Set(_) => Kind::Set,
        Model::List(_) => Kind::List,
        Model::ZSet(_) => Kind::ZSet,
    });
    if model_kind.is_some_and(|held| held != kind) {
        let refused = store.update(&key, kind, 0, 0, |_| Ok::<_, StoreError>(()));
        assert_eq!(refused, Err(StoreError::WrongType));
        return;
    }
    let mut entry = model.remove(&key_id).unwrap_or(match kind {
        Kind::Hash => Model::Hash(BTreeMap::new()),
        Kind::Set => Model::Set(BTreeSet::new()),
        Kind::List => Model::List(Vec::new()),
        _ => Model::ZSet(BTreeMap::new()),
    });
    store
        .update(&key, kind, 1 << 16, 0, |held| {
            match (operation, held, &mut entry) {
                (Operation::HashSet(_, f, s), Value::Hash(hash), Model::Hash(map)) => {
                    let new = map.insert(element(*f), vec![b'v'; *s]).is_none();
                    assert_eq!(hash.insert(&element(*f), vec![b'v'; *s]), new);
                }
                (Operation::HashDel(_, f), Value::Hash(hash), Model::Hash(map)) => {
                    assert_eq!(
                        hash.remove(&element(*f)),
                        map.remove(&element(*f)).is_some()
                    );
                }
                (Operation::SetAdd(_, m), Value::Set(set), Model::Set(model)) => {
                    assert_eq!(set.insert(&element(*m)), model.insert(element(*m)));
                }
                (Operation::SetRem(_, m), Value::Set(set), Model::Set(model)) => {
                    assert_eq!(set.remove(&element(*m)), model.remove(&element(*m)));
                }
                (Operation::ListPush(_, front, s), Value::List(list), Model::List(model)) => {
                    if *front {
                        list.push_front(vec![b'x'; *s]);
                        model.insert(0, vec![b'x'; *s]);
                    } else {
                        list.push_back(vec![b'x'; *s]);
                        model.push(vec![b'x'; *s]);
                    }
                }
                (Operation::ListPop(_, front), Value::List(list), Model::List(model)) => {
                    let expected = if model.is_empty() {
                        None
                    } else if *front {
                        Some(model.remove(0))
                    } else {
                        model.pop()
                    };
                    let got = if *front {
                        list.pop_front()
                    } else {
                        list.pop_back()
                    };
                    assert_eq!(got, expected);
                }
                (Operation::ListSet(_, i, s), Value::List(list), Model::List(model)) => {
                    let in_range = *i < model.len();
                    if in_range {
                        model[*i] = vec![b'y'; *s];
                    }
                    assert_eq!(list.set(*i, vec![b'y'; *s]), in_range);
                }
                (Operation::ZAdd(_, m, s), Value::ZSet(zset), Model::ZSet(model)) => {
                    let new = model.insert(element(*m), *s).is_none();
                    assert_eq!(zset.insert(&element(*m), f64::from(*s)), new);
                }
                (Operation::ZRem(_, m), Value::ZSet(zset), Model::ZSet(model)) => {
                    assert_eq!(
                        zset.remove(&element(*m)),
                        model.remove(&element(*m)).is_some()
                    );
                }
                (operation, held, _) => panic!("{operation:?} on {held:?}"),
            }
            Ok::<_, StoreError>(())
        })
        .expect("fits");
    if !entry.is_empty() {
        model.insert(key_id, entry);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn collections_match_a_reference_model_and_are_charged_exactly(
        operations in prop::collection::vec(operation(), 1..120)
    ) {
        let mut store = store(1 << 30);
        let mut model = BTreeMap::new();
        for operation in &operations {
            apply(&mut store, &mut model, operation);
            store.check_invariants().map_err(TestCaseError::fail)?;
            let expected_bytes: u64 = model
                .values()
                .map(|held| held.bytes() + 1 + ENTRY_OVERHEAD_BYTES)
                .sum();
            prop_assert_eq!(store.used_bytes(), expected_bytes);
            prop_assert_eq!(store.len(), model.len() as u64);
            for (key_id, held) in &model {
                let value = store.peek_value(&[*key_id], 0).expect("present");
                prop_assert!(held.matches(value), "{:?} vs {:?}", held, value);
            }
        }
        let restored = Store::restore(&store.snapshot()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(restored.snapshot(), store.snapshot());
    }
}
