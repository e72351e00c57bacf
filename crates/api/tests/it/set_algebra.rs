//! The set operations over several keys (`SINTER`, `SUNION`, `SDIFF`,
//! their `STORE` forms, `SINTERCARD`, `SMOVE`) on a store: Redis 7's
//! answers and edge cases, refused operations changing nothing, and a
//! model-based property test against `BTreeSet` with the store's byte
//! accounting checked after every operation.

use std::collections::{BTreeMap, BTreeSet};

use api::{Combination, Error, Limits, Op, Outcome, SetOp, execute, read};
use cache::store::value::SET_MEMBER_OVERHEAD_BYTES;
use cache::store::{ENTRY_OVERHEAD_BYTES, Kind};
use cache::{Store, StoreConfig};
use proptest::prelude::*;

fn store() -> Store {
    Store::new(StoreConfig::new(1 << 20))
}

/// Runs `op`; a read is also run on the read path and must agree.
fn run_with(store: &mut Store, op: &Op, limits: &Limits) -> Result<Outcome, Error> {
    if op.is_read() {
        let by_read = read(store, op, limits, 0);
        let by_log = execute(store, op, limits, 0);
        assert_eq!(by_read, by_log, "{op:?} through the log and the read path");
        by_log
    } else {
        execute(store, op, limits, 0)
    }
}

fn run(store: &mut Store, op: &Op) -> Result<Outcome, Error> {
    run_with(store, op, &Limits::default())
}

fn bytes(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|item| item.as_bytes().to_vec()).collect()
}

fn values(items: &[&str]) -> Outcome {
    Outcome::Values(
        items
            .iter()
            .map(|item| Some(item.as_bytes().to_vec()))
            .collect(),
    )
}

fn sets(key: &str, op: SetOp) -> Op {
    Op::Sets {
        key: key.into(),
        op,
    }
}

fn sadd(store: &mut Store, key: &str, members: &[&str]) {
    let op = sets(
        key,
        SetOp::Add {
            members: bytes(members),
        },
    );
    run(store, &op).expect("SADD");
}

fn combine(how: Combination, keys: &[&str]) -> Op {
    sets(
        keys[0],
        SetOp::Combine {
            how,
            others: bytes(&keys[1..]),
        },
    )
}

fn store_op(how: Combination, destination: &str, sources: &[&str]) -> Op {
    sets(
        destination,
        SetOp::Store {
            how,
            sources: bytes(sources),
        },
    )
}

fn smove(source: &str, destination: &str, member: &str) -> Op {
    sets(
        source,
        SetOp::Move {
            destination: destination.into(),
            member: member.into(),
        },
    )
}

fn members(store: &mut Store, key: &str) -> Outcome {
    run(store, &sets(key, SetOp::Members)).expect("SMEMBERS")
}

fn fixture() -> Store {
    let mut store = store();
    sadd(&mut store, "a", &["1", "2", "3", "4"]);
    sadd(&mut store, "b", &["3", "4", "5"]);
    sadd(&mut store, "c", &["4", "6"]);
    store
}

#[test]
fn combinations_answer_in_byte_order() {
    let mut store = fixture();
    use Combination::*;
    let cases: &[(Combination, &[&str], &[&str])] = &[
        (Intersection, &["a", "b"], &["3", "4"]),
        (Intersection, &["a", "b", "c"], &["4"]),
        (Intersection, &["a"], &["1", "2", "3", "4"]),
        (Union, &["a", "b", "c"], &["1", "2", "3", "4", "5", "6"]),
        (Difference, &["a", "b"], &["1", "2"]),
        (Difference, &["a", "b", "c"], &["1", "2"]),
        (Difference, &["b", "a"], &["5"]),
        // An absent key is an empty set.
        (Intersection, &["a", "none"], &[]),
        (Union, &["none", "c"], &["4", "6"]),
        (Difference, &["none", "a"], &[]),
        (Difference, &["a", "none"], &["1", "2", "3", "4"]),
    ];
    for (how, keys, expected) in cases {
        assert_eq!(
            run(&mut store, &combine(*how, keys)),
            Ok(values(expected)),
            "{how:?} of {keys:?}"
        );
    }
}

#[test]
fn any_key_of_another_type_is_wrongtype_even_after_an_absent_one() {
    let mut store = fixture();
    let put = Op::Put {
        key: "s".into(),
        value: "x".into(),
        ttl_ms: None,
    };
    run(&mut store, &put).expect("PUT");
    for how in [
        Combination::Intersection,
        Combination::Union,
        Combination::Difference,
    ] {
        for keys in [
            &["a", "s"][..],
            &["none", "s"],
            &["s", "a"],
            &["a", "none", "s"],
        ] {
            assert_eq!(
                run(&mut store, &combine(how, keys)),
                Err(Error::WrongType),
                "{how:?} {keys:?}"
            );
            assert_eq!(
                run(&mut store, &store_op(how, "d", keys)),
                Err(Error::WrongType),
                "{how:?}STORE {keys:?}"
            );
        }
    }
    let card = sets(
        "none",
        SetOp::InterCard {
            others: bytes(&["s"]),
            limit: 0,
        },
    );
    assert_eq!(run(&mut store, &card), Err(Error::WrongType));
    assert_eq!(store.kind(b"d", 0), None, "a refused STORE wrote nothing");
}

#[test]
fn store_replaces_any_type_drops_the_deadline_and_deletes_on_empty() {
    let mut store = fixture();
    let put = Op::Put {
        key: "d".into(),
        value: "old".into(),
        ttl_ms: Some(10_000),
    };
    run(&mut store, &put).expect("PUT");
    let stored = run(&mut store, &store_op(Combination::Union, "d", &["b", "c"]));
    assert_eq!(stored, Ok(Outcome::Integer(4)));
    assert_eq!(members(&mut store, "d"), values(&["3", "4", "5", "6"]));
    assert_eq!(
        run(&mut store, &Op::Ttl { key: "d".into() }),
        Ok(Outcome::Ttl(api::KeyTtl::Persistent))
    );
    // The destination may be a source.
    let stored = run(
        &mut store,
        &store_op(Combination::Difference, "d", &["d", "a"]),
    );
    assert_eq!(stored, Ok(Outcome::Integer(2)));
    assert_eq!(members(&mut store, "d"), values(&["5", "6"]));
    // An empty result removes the destination.
    let stored = run(
        &mut store,
        &store_op(Combination::Intersection, "d", &["a", "none"]),
    );
    assert_eq!(stored, Ok(Outcome::Integer(0)));
    assert_eq!(store.kind(b"d", 0), None);
    store.check_invariants().expect("store invariants");
}

#[test]
fn intercard_counts_up_to_its_limit() {
    let mut store = fixture();
    let card = |others: &[&str], limit| {
        sets(
            "a",
            SetOp::InterCard {
                others: bytes(others),
                limit,
            },
        )
    };
    assert_eq!(run(&mut store, &card(&[], 0)), Ok(Outcome::Integer(4)));
    assert_eq!(run(&mut store, &card(&[], 3)), Ok(Outcome::Integer(3)));
    assert_eq!(run(&mut store, &card(&["b"], 0)), Ok(Outcome::Integer(2)));
    assert_eq!(run(&mut store, &card(&["b"], 1)), Ok(Outcome::Integer(1)));
    assert_eq!(run(&mut store, &card(&["b"], 99)), Ok(Outcome::Integer(2)));
    assert_eq!(
        run(&mut store, &card(&["none"], 0)),
        Ok(Outcome::Integer(0))
    );
}

#[test]
fn smove_follows_redis_order_of_checks() {
    let mut store = fixture();
    let put = Op::Put {
        key: "s".into(),
        value: "x".into(),
        ttl_ms: None,
    };
    run(&mut store, &put).expect("PUT");
    // Absent source: 0, even onto a key of another type.
    assert_eq!(
        run(&mut store, &smove("none", "s", "1")),
        Ok(Outcome::Integer(0))
    );
    assert_eq!(
        run(&mut store, &smove("s", "a", "1")),
        Err(Error::WrongType)
    );
    assert_eq!(
        run(&mut store, &smove("a", "s", "1")),
        Err(Error::WrongType)
    );
    assert_eq!(
        run(&mut store, &smove("a", "s", "nope")),
        Err(Error::WrongType)
    );
    // Onto itself: whether the member is there, nothing changes.
    assert_eq!(
        run(&mut store, &smove("a", "a", "1")),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(&mut store, &smove("a", "a", "9")),
        Ok(Outcome::Integer(0))
    );
    assert_eq!(
        run(&mut store, &smove("a", "b", "9")),
        Ok(Outcome::Integer(0))
    );
    assert_eq!(
        run(&mut store, &smove("a", "b", "1")),
        Ok(Outcome::Integer(1))
    );
    // Already in the destination: still 1, and it leaves the source.
    assert_eq!(
        run(&mut store, &smove("a", "b", "3")),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(members(&mut store, "a"), values(&["2", "4"]));
    assert_eq!(members(&mut store, "b"), values(&["1", "3", "4", "5"]));
    // The last member moved removes the source; a new destination appears.
    assert_eq!(
        run(&mut store, &smove("c", "n", "4")),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(&mut store, &smove("c", "n", "6")),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(store.kind(b"c", 0), None);
    assert_eq!(members(&mut store, "n"), values(&["4", "6"]));
    store.check_invariants().expect("store invariants");
}

#[test]
fn limits_refuse_before_anything_changes() {
    let mut store = fixture();
    let limits = Limits {
        max_collection_elements: 5,
        ..Limits::default()
    };
    let union = combine(Combination::Union, &["a", "b", "c"]);
    assert!(matches!(
        run_with(&mut store, &union, &limits),
        Err(Error::TooManyElements { count: 6, limit: 5 })
    ));
    let stored = store_op(Combination::Union, "a", &["a", "b", "c"]);
    assert!(matches!(
        run_with(&mut store, &stored, &limits),
        Err(Error::TooManyElements { .. })
    ));
    assert_eq!(members(&mut store, "a"), values(&["1", "2", "3", "4"]));
    // A full destination refuses a member it lacks, and the source keeps it.
    sadd(&mut store, "full", &["1", "2", "3", "4", "5"]);
    assert!(matches!(
        run_with(&mut store, &smove("c", "full", "6"), &limits),
        Err(Error::TooManyElements { .. })
    ));
    assert_eq!(members(&mut store, "c"), values(&["4", "6"]));
    // ... but takes one it holds already.
    assert_eq!(
        run_with(&mut store, &smove("c", "full", "4"), &limits),
        Ok(Outcome::Integer(1))
    );
    // A stored result larger than the whole store is refused (its long
    // key makes it so).
    let mut small = Store::new(StoreConfig::new(400));
    sadd(&mut small, "x", &["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "b"]);
    sadd(&mut small, "y", &["cccccccccccccccccccccccccccccc", "d"]);
    let before = small.stats().bytes;
    let long_key = "z".repeat(300);
    let stored = store_op(Combination::Union, &long_key, &["x", "y"]);
    assert!(matches!(
        run(&mut small, &stored),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(small.kind(long_key.as_bytes(), 0), None);
    assert_eq!(small.stats().entries, 2);
    assert_eq!(small.stats().bytes, before);
}

#[test]
fn every_key_is_named_so_servers_can_refuse_several_shards() {
    let op = store_op(Combination::Union, "d", &["a", "b"]);
    assert!(op.is_multi_key());
    assert_eq!(op.keys().collect::<Vec<_>>(), [&b"d"[..], b"a", b"b"]);
    let op = smove("a", "b", "m");
    assert!(op.is_multi_key());
    assert!(!op.is_read());
    assert_eq!(op.keys().collect::<Vec<_>>(), [&b"a"[..], b"b"]);
    assert!(combine(Combination::Intersection, &["a", "b"]).is_read());
    assert!(!sets("a", SetOp::Card).is_multi_key());
    // Too many keys for one operation.
    let limits = Limits {
        max_collection_elements: 2,
        ..Limits::default()
    };
    let op = combine(Combination::Union, &["a", "b", "c"]);
    assert!(matches!(
        limits.check(&op),
        Err(Error::TooManyElements { count: 3, .. })
    ));
}

// The model: each of three keys absent, a set, or a string.

const KEYS: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug, PartialEq)]
enum Held {
    Set(BTreeSet<Vec<u8>>),
    Str,
}

type Model = BTreeMap<&'static str, Held>;

fn model_sets(model: &Model, keys: &[&str]) -> Result<Vec<BTreeSet<Vec<u8>>>, Error> {
    keys.iter()
        .map(|key| match model.get(key) {
            None => Ok(BTreeSet::new()),
            Some(Held::Set(set)) => Ok(set.clone()),
            Some(Held::Str) => Err(Error::WrongType),
        })
        .collect()
}

fn model_combine(how: Combination, sets: &[BTreeSet<Vec<u8>>]) -> BTreeSet<Vec<u8>> {
    let mut result = sets[0].clone();
    for set in &sets[1..] {
        result = match how {
            Combination::Intersection => result.intersection(set).cloned().collect(),
            Combination::Union => result.union(set).cloned().collect(),
            Combination::Difference => result.difference(set).cloned().collect(),
        };
    }
    result
}

fn as_values(set: &BTreeSet<Vec<u8>>) -> Outcome {
    Outcome::Values(set.iter().map(|member| Some(member.clone())).collect())
}

#[derive(Clone, Debug)]
enum Step {
    Add(usize, Vec<Vec<u8>>),
    MakeString(usize),
    Combine(Combination, Vec<usize>),
    Store(Combination, usize, Vec<usize>),
    InterCard(Vec<usize>, u64),
    Move(usize, usize, Vec<u8>),
}

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec!["m0", "m1", "m2", "m3", "m4", "m5", "longer-member"])
        .prop_map(|text| text.as_bytes().to_vec())
}

fn combination() -> impl Strategy<Value = Combination> {
    prop_oneof![
        Just(Combination::Intersection),
        Just(Combination::Union),
        Just(Combination::Difference),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0..KEYS.len();
    let keys = prop::collection::vec(0..KEYS.len(), 1..4);
    prop_oneof![
        4 => (key.clone(), prop::collection::vec(member(), 1..4)).prop_map(|(k, m)| Step::Add(k, m)),
        1 => key.clone().prop_map(Step::MakeString),
        2 => (combination(), keys.clone()).prop_map(|(how, keys)| Step::Combine(how, keys)),
        3 => (combination(), key.clone(), keys.clone())
            .prop_map(|(how, destination, keys)| Step::Store(how, destination, keys)),
        1 => (keys, 0..4u64).prop_map(|(keys, limit)| Step::InterCard(keys, limit)),
        3 => (key.clone(), key, member()).prop_map(|(from, to, m)| Step::Move(from, to, m)),
    ]
}

fn names(indexes: &[usize]) -> Vec<&'static str> {
    indexes.iter().map(|&index| KEYS[index]).collect()
}

/// Applies `step` to the model and answers as the store should.
fn model_step(model: &mut Model, step: &Step) -> Result<Outcome, Error> {
    match step {
        Step::Add(key, members) => match model
            .entry(KEYS[*key])
            .or_insert(Held::Set(BTreeSet::new()))
        {
            Held::Set(set) => {
                let added = members.iter().filter(|m| set.insert((*m).clone())).count();
                Ok(Outcome::Integer(added as i64))
            }
            Held::Str => Err(Error::WrongType),
        },
        Step::MakeString(key) => {
            model.insert(KEYS[*key], Held::Str);
            Ok(Outcome::Done)
        }
        Step::Combine(how, keys) => Ok(as_values(&model_combine(
            *how,
            &model_sets(model, &names(keys))?,
        ))),
        Step::Store(how, destination, keys) => {
            let result = model_combine(*how, &model_sets(model, &names(keys))?);
            let size = result.len() as i64;
            if result.is_empty() {
                model.remove(KEYS[*destination]);
            } else {
                model.insert(KEYS[*destination], Held::Set(result));
            }
            Ok(Outcome::Integer(size))
        }
        Step::InterCard(keys, limit) => {
            let size = model_combine(Combination::Intersection, &model_sets(model, &names(keys))?)
                .len() as u64;
            let size = if *limit == 0 { size } else { size.min(*limit) };
            Ok(Outcome::Integer(size as i64))
        }
        Step::Move(from, to, member) => {
            let (source, destination) = (KEYS[*from], KEYS[*to]);
            let Some(held) = model.get(source) else {
                return Ok(Outcome::Integer(0));
            };
            let Held::Set(set) = held else {
                return Err(Error::WrongType);
            };
            let holds = set.contains(member);
            if matches!(model.get(destination), Some(Held::Str)) {
                return Err(Error::WrongType);
            }
            if source == destination || !holds {
                return Ok(Outcome::Integer(i64::from(holds)));
            }
            if let Some(Held::Set(set)) = model.get_mut(source) {
                set.remove(member);
                if set.is_empty() {
                    model.remove(source);
                }
            }
            match model
                .entry(destination)
                .or_insert(Held::Set(BTreeSet::new()))
            {
                Held::Set(set) => {
                    set.insert(member.clone());
                }
                Held::Str => unreachable!("checked above"),
            }
            Ok(Outcome::Integer(1))
        }
    }
}

fn store_op_of(step: &Step) -> Op {
    match step {
        Step::Add(key, members) => sets(
            KEYS[*key],
            SetOp::Add {
                members: members.clone(),
            },
        ),
        Step::MakeString(key) => Op::Put {
            key: KEYS[*key].into(),
            value: b"text".to_vec(),
            ttl_ms: None,
        },
        Step::Combine(how, keys) => combine(*how, &names(keys)),
        Step::Store(how, destination, keys) => store_op(*how, KEYS[*destination], &names(keys)),
        Step::InterCard(keys, limit) => {
            let keys = names(keys);
            sets(
                keys[0],
                SetOp::InterCard {
                    others: bytes(&keys[1..]),
                    limit: *limit,
                },
            )
        }
        Step::Move(from, to, member) => Op::Sets {
            key: KEYS[*from].into(),
            op: SetOp::Move {
                destination: KEYS[*to].into(),
                member: member.clone(),
            },
        },
    }
}

/// The bytes the store should count for the model's keys, from the
/// documented per-member and per-entry costs.
fn model_bytes(model: &Model) -> u64 {
    model
        .iter()
        .map(|(key, held)| {
            let value_bytes = match held {
                Held::Set(set) => set
                    .iter()
                    .map(|member| member.len() as u64 + SET_MEMBER_OVERHEAD_BYTES)
                    .sum(),
                Held::Str => b"text".len() as u64,
            };
            key.len() as u64 + value_bytes + ENTRY_OVERHEAD_BYTES
        })
        .sum()
}

proptest! {
    #[test]
    fn set_algebra_matches_btreeset_and_bytes_stay_exact(steps in prop::collection::vec(step(), 1..50)) {
        let mut store = store();
        let mut model = Model::new();
        for step in &steps {
            let expected = model_step(&mut model, step);
            let got = run(&mut store, &store_op_of(step));
            prop_assert_eq!(&got, &expected, "{:?}", step);
            for key in KEYS {
                let kind = match model.get(key) {
                    None => None,
                    Some(Held::Set(set)) => {
                        prop_assert_eq!(members(&mut store, key), as_values(set), "{}", key);
                        Some(Kind::Set)
                    }
                    Some(Held::Str) => Some(Kind::String),
                };
                prop_assert_eq!(store.kind(key.as_bytes(), 0), kind, "{}", key);
            }
            prop_assert_eq!(store.stats().bytes, model_bytes(&model), "bytes after {:?}", step);
            prop_assert!(store.check_invariants().is_ok());
        }
    }
}
