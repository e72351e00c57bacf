//! The multi-key operations: MSET/MSETNX, RENAME/RENAMENX, COPY as one
//! step on one store, any value type, deadlines kept, refusals change
//! nothing.

use api::{Error, HashOp, KeyTtl, Limits, Op, Outcome, SetOp, execute};
use cache::{Store, StoreConfig};

fn store() -> Store {
    Store::new(StoreConfig::new(1 << 20))
}

fn run(store: &mut Store, op: Op, now_ms: u64) -> Result<Outcome, Error> {
    execute(store, &op, &Limits::default(), now_ms)
}

fn get(store: &mut Store, key: &str, now_ms: u64) -> Option<String> {
    match run(store, Op::Get { key: key.into() }, now_ms) {
        Ok(Outcome::Value(value)) => value.map(|bytes| String::from_utf8(bytes).expect("utf-8")),
        other => panic!("get answered {other:?}"),
    }
}

fn ttl(store: &mut Store, key: &str, now_ms: u64) -> KeyTtl {
    match run(store, Op::Ttl { key: key.into() }, now_ms) {
        Ok(Outcome::Ttl(ttl)) => ttl,
        other => panic!("ttl answered {other:?}"),
    }
}

fn type_of(store: &mut Store, key: &str, now_ms: u64) -> Option<String> {
    match run(store, Op::Type { key: key.into() }, now_ms) {
        Ok(Outcome::Value(value)) => value.map(|bytes| String::from_utf8(bytes).expect("utf-8")),
        other => panic!("type answered {other:?}"),
    }
}

fn put(store: &mut Store, key: &str, value: &str, ttl_ms: Option<u64>, now_ms: u64) {
    let op = Op::Put {
        key: key.into(),
        value: value.into(),
        ttl_ms,
    };
    assert_eq!(run(store, op, now_ms), Ok(Outcome::Done));
}

fn mset(pairs: &[(&str, &str)], only_if_none_exist: bool) -> Op {
    Op::MultiSet {
        pairs: pairs
            .iter()
            .map(|(key, value)| (key.as_bytes().to_vec(), value.as_bytes().to_vec()))
            .collect(),
        only_if_none_exist,
    }
}

fn rename(source: &str, destination: &str, only_if_new: bool) -> Op {
    Op::Rename {
        source: source.into(),
        destination: destination.into(),
        only_if_new,
    }
}

fn copy(source: &str, destination: &str, replace: bool) -> Op {
    Op::Copy {
        source: source.into(),
        destination: destination.into(),
        replace,
    }
}

#[test]
fn mset_writes_every_pair_and_clears_deadlines() {
    let mut store = store();
    put(&mut store, "a", "old", Some(10_000), 0);
    let op = mset(&[("a", "1"), ("b", "2"), ("a", "3")], false);
    assert_eq!(run(&mut store, op, 1), Ok(Outcome::Applied(true)));
    assert_eq!(
        get(&mut store, "a", 2).as_deref(),
        Some("3"),
        "the last pair wins"
    );
    assert_eq!(get(&mut store, "b", 2).as_deref(), Some("2"));
    assert_eq!(
        ttl(&mut store, "a", 2),
        KeyTtl::Persistent,
        "MSET clears the TTL"
    );
}

#[test]
fn mset_overwrites_a_key_of_another_type() {
    let mut store = store();
    let hash = Op::Hash {
        key: "h".into(),
        op: HashOp::Set {
            pairs: vec![(b"f".to_vec(), b"v".to_vec())],
            only_new: false,
        },
    };
    run(&mut store, hash, 0).expect("hset");
    assert_eq!(
        run(&mut store, mset(&[("h", "s")], false), 1),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(type_of(&mut store, "h", 2).as_deref(), Some("string"));
}

#[test]
fn msetnx_writes_all_or_nothing() {
    let mut store = store();
    put(&mut store, "a", "1", None, 0);
    let refused = mset(&[("c", "3"), ("a", "x")], true);
    assert_eq!(run(&mut store, refused, 1), Ok(Outcome::Applied(false)));
    assert_eq!(get(&mut store, "c", 2), None, "nothing was written");
    assert_eq!(get(&mut store, "a", 2).as_deref(), Some("1"));
    let accepted = mset(&[("c", "3"), ("d", "4"), ("c", "5")], true);
    assert_eq!(run(&mut store, accepted, 3), Ok(Outcome::Applied(true)));
    assert_eq!(get(&mut store, "c", 4).as_deref(), Some("5"));
    assert_eq!(get(&mut store, "d", 4).as_deref(), Some("4"));
}

#[test]
fn msetnx_counts_a_key_of_any_type_as_present() {
    let mut store = store();
    let set = Op::Sets {
        key: "s".into(),
        op: SetOp::Add {
            members: vec![b"m".to_vec()],
        },
    };
    run(&mut store, set, 0).expect("sadd");
    let op = mset(&[("s", "x"), ("t", "y")], true);
    assert_eq!(run(&mut store, op, 1), Ok(Outcome::Applied(false)));
    assert_eq!(type_of(&mut store, "s", 2).as_deref(), Some("set"));
    assert_eq!(get(&mut store, "t", 2), None);
}

#[test]
fn an_mset_that_cannot_fit_changes_nothing() {
    let mut store = Store::new(StoreConfig::new(4096));
    let big = "x".repeat(8192);
    let op = mset(&[("a", "1"), ("b", &big)], false);
    assert!(matches!(
        run(&mut store, op, 0),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(
        get(&mut store, "a", 1),
        None,
        "the first pair was not written"
    );
}

#[test]
fn too_many_pairs_or_a_long_key_are_refused_before_anything_changes() {
    let mut store = store();
    let limits = Limits {
        max_collection_elements: 2,
        ..Limits::default()
    };
    let op = mset(&[("a", "1"), ("b", "2"), ("c", "3")], false);
    assert_eq!(
        execute(&mut store, &op, &limits, 0),
        Err(Error::TooManyElements { count: 3, limit: 2 })
    );
    let long_key = "k".repeat(2000);
    let op = mset(&[("a", "1"), (&long_key, "2")], false);
    assert!(matches!(
        run(&mut store, op, 0),
        Err(Error::TooLarge { .. })
    ));
    let op = rename("a", &long_key, false);
    assert!(matches!(
        run(&mut store, op, 0),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(get(&mut store, "a", 1), None);
}

#[test]
fn rename_moves_the_value_and_its_deadline() {
    let mut store = store();
    put(&mut store, "src", "v", Some(10_000), 1_000);
    put(&mut store, "dst", "old", None, 1_000);
    assert_eq!(
        run(&mut store, rename("src", "dst", false), 4_000),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(get(&mut store, "src", 4_000), None);
    assert_eq!(get(&mut store, "dst", 4_000).as_deref(), Some("v"));
    assert_eq!(
        ttl(&mut store, "dst", 5_000),
        KeyTtl::RemainingMs(6_000),
        "the same absolute deadline (11000)"
    );
    assert_eq!(get(&mut store, "dst", 11_000), None, "and it expires then");
}

#[test]
fn rename_of_an_absent_key_is_no_such_key() {
    let mut store = store();
    put(&mut store, "dst", "keep", None, 0);
    assert_eq!(
        run(&mut store, rename("nope", "dst", false), 1),
        Err(Error::NoSuchKey)
    );
    assert_eq!(
        run(&mut store, rename("nope", "nope", false), 1),
        Err(Error::NoSuchKey),
        "even onto itself, as Redis"
    );
    assert_eq!(get(&mut store, "dst", 2).as_deref(), Some("keep"));
}

#[test]
fn renamenx_leaves_an_existing_destination() {
    let mut store = store();
    put(&mut store, "a", "1", None, 0);
    put(&mut store, "b", "2", None, 0);
    assert_eq!(
        run(&mut store, rename("a", "b", true), 1),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(get(&mut store, "a", 2).as_deref(), Some("1"));
    assert_eq!(get(&mut store, "b", 2).as_deref(), Some("2"));
    assert_eq!(
        run(&mut store, rename("a", "c", true), 3),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(get(&mut store, "c", 4).as_deref(), Some("1"));
    // Onto itself: RENAME answers OK, RENAMENX 0; nothing changes.
    assert_eq!(
        run(&mut store, rename("c", "c", false), 5),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(
        run(&mut store, rename("c", "c", true), 5),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(get(&mut store, "c", 6).as_deref(), Some("1"));
}

#[test]
fn rename_and_copy_carry_every_value_type() {
    let mut store = store();
    let hash = Op::Hash {
        key: "h".into(),
        op: HashOp::Set {
            pairs: vec![
                (b"f1".to_vec(), b"v1".to_vec()),
                (b"f2".to_vec(), b"v2".to_vec()),
            ],
            only_new: false,
        },
    };
    run(&mut store, hash, 0).expect("hset");
    let set = Op::Sets {
        key: "s".into(),
        op: SetOp::Add {
            members: vec![b"x".to_vec(), b"y".to_vec()],
        },
    };
    run(&mut store, set, 0).expect("sadd");
    let expire = Op::Expire {
        key: "s".into(),
        ttl_ms: 5_000,
        unix_ms: Some(1_700_000_005_000),
        condition: api::ExpireCondition::default(),
    };
    assert_eq!(run(&mut store, expire, 0), Ok(Outcome::Applied(true)));

    assert_eq!(
        run(&mut store, copy("h", "h2", false), 1),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(
        run(&mut store, rename("s", "s2", false), 1),
        Ok(Outcome::Applied(true))
    );
    let all = |key: &str| Op::Hash {
        key: key.into(),
        op: HashOp::GetAll,
    };
    let h = run(&mut store, all("h"), 2);
    assert_eq!(
        run(&mut store, all("h2"), 2),
        h,
        "the copy holds the same fields"
    );
    assert_eq!(type_of(&mut store, "h2", 2).as_deref(), Some("hash"));
    assert_eq!(type_of(&mut store, "s", 2), None);
    assert_eq!(type_of(&mut store, "s2", 2).as_deref(), Some("set"));
    let members = Op::Sets {
        key: "s2".into(),
        op: SetOp::Members,
    };
    assert_eq!(
        run(&mut store, members, 2),
        Ok(Outcome::Values(vec![
            Some(b"x".to_vec()),
            Some(b"y".to_vec())
        ]))
    );
    assert_eq!(ttl(&mut store, "s2", 2), KeyTtl::RemainingMs(4_998));
    // Changing the copy leaves the source as it was.
    let hdel = Op::Hash {
        key: "h2".into(),
        op: HashOp::Del {
            fields: vec![b"f1".to_vec()],
        },
    };
    run(&mut store, hdel, 3).expect("hdel");
    assert_eq!(run(&mut store, all("h"), 4), h);
    store.check_invariants().expect("store invariants");
}

#[test]
fn copy_keeps_the_source_and_needs_replace_to_overwrite() {
    let mut store = store();
    put(&mut store, "src", "v", Some(10_000), 0);
    put(&mut store, "dst", "old", None, 0);
    assert_eq!(
        run(&mut store, copy("src", "dst", false), 1),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(get(&mut store, "dst", 2).as_deref(), Some("old"));
    assert_eq!(
        run(&mut store, copy("src", "dst", true), 3),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(get(&mut store, "dst", 4).as_deref(), Some("v"));
    assert_eq!(get(&mut store, "src", 4).as_deref(), Some("v"));
    assert_eq!(ttl(&mut store, "dst", 4), KeyTtl::RemainingMs(9_996));
    // A persistent source gives a persistent copy, even over a key with a TTL.
    put(&mut store, "p", "v", None, 5);
    put(&mut store, "q", "w", Some(1_000), 5);
    assert_eq!(
        run(&mut store, copy("p", "q", true), 6),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(ttl(&mut store, "q", 7), KeyTtl::Persistent);
    assert_eq!(
        run(&mut store, copy("nope", "x", true), 8),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(
        run(&mut store, copy("p", "p", true), 8),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(get(&mut store, "x", 9), None);
}

#[test]
fn multi_key_ops_name_all_their_keys_and_are_writes() {
    let op = mset(&[("a", "1"), ("b", "2")], false);
    assert_eq!(op.keys().collect::<Vec<_>>(), vec![b"a".as_slice(), b"b"]);
    assert!(op.is_multi_key() && !op.is_read());
    let op = rename("s", "d", false);
    assert_eq!(op.keys().collect::<Vec<_>>(), vec![b"s".as_slice(), b"d"]);
    assert_eq!(op.key(), b"s", "routed by the source");
    let op = Op::Get { key: "k".into() };
    assert_eq!(op.keys().collect::<Vec<_>>(), vec![b"k".as_slice()]);
    assert!(!op.is_multi_key());
    let op = Op::CountShard { shard: 1 };
    assert_eq!(op.keys().count(), 0);
}
