//! `LMPOP`/`ZMPOP` (`ListOp::MultiPop`, `ZSetOp::MultiPop`), `APPEND`'s
//! length and `OBJECT ENCODING` (`Op::Encoding`) on a store: Redis 7.0's
//! answers, and refusals changing nothing.

use api::{End, Error, Float, Limits, ListOp, Op, Outcome, ZAddCondition, ZSetOp, execute, read};
use cache::{Store, StoreConfig};

fn store() -> Store {
    Store::new(StoreConfig::new(1 << 20))
}

fn run(store: &mut Store, op: Op) -> Result<Outcome, Error> {
    let limits = Limits::default();
    let answer = if op.is_read() {
        let by_read = read(store, &op, &limits, 0);
        assert_eq!(by_read, execute(store, &op, &limits, 0), "{op:?}");
        by_read
    } else {
        execute(store, &op, &limits, 0)
    };
    store.check_invariants().expect("store invariants");
    answer
}

fn push(key: &str, items: &[&str]) -> Op {
    Op::List {
        key: key.into(),
        op: ListOp::Push {
            end: End::Right,
            elements: items.iter().map(|item| item.as_bytes().to_vec()).collect(),
            only_existing: false,
        },
    }
}

fn lmpop(keys: &[&str], end: End, count: u64) -> Op {
    Op::List {
        key: keys[0].into(),
        op: ListOp::MultiPop {
            others: keys[1..]
                .iter()
                .map(|key| key.as_bytes().to_vec())
                .collect(),
            end,
            count,
        },
    }
}

fn zmpop(keys: &[&str], highest: bool, count: u64) -> Op {
    Op::ZSet {
        key: keys[0].into(),
        op: ZSetOp::MultiPop {
            others: keys[1..]
                .iter()
                .map(|key| key.as_bytes().to_vec())
                .collect(),
            highest,
            count,
        },
    }
}

fn zadd(key: &str, entries: &[(f64, &str)]) -> Op {
    Op::ZSet {
        key: key.into(),
        op: ZSetOp::Add {
            entries: entries
                .iter()
                .map(|(score, member)| (Float(*score), member.as_bytes().to_vec()))
                .collect(),
            condition: ZAddCondition::default(),
            changed: false,
            increment: false,
        },
    }
}

fn set_string(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: value.into(),
        ttl_ms: None,
    }
}

#[test]
fn lmpop_takes_from_the_first_present_list() {
    let mut store = store();
    assert_eq!(
        run(&mut store, lmpop(&["a", "b"], End::Left, 1)),
        Ok(Outcome::Value(None))
    );
    run(&mut store, push("b", &["1", "2", "3"])).expect("push");
    assert_eq!(
        run(&mut store, lmpop(&["a", "b"], End::Right, 2)),
        Ok(Outcome::KeyValues {
            key: b"b".to_vec(),
            values: vec![b"3".to_vec(), b"2".to_vec()],
        })
    );
    // A count past the length answers what is there, and the list goes.
    assert_eq!(
        run(&mut store, lmpop(&["a", "b"], End::Left, 10)),
        Ok(Outcome::KeyValues {
            key: b"b".to_vec(),
            values: vec![b"1".to_vec()],
        })
    );
    assert_eq!(store.len(), 0, "the emptied list is removed");
}

#[test]
fn a_wrong_type_before_the_list_refuses_and_changes_nothing() {
    let mut store = store();
    run(&mut store, set_string("s", "x")).expect("set");
    run(&mut store, push("l", &["1"])).expect("push");
    assert_eq!(
        run(&mut store, lmpop(&["s", "l"], End::Left, 1)),
        Err(Error::WrongType)
    );
    assert_eq!(
        run(&mut store, lmpop(&["missing", "s"], End::Left, 1)),
        Err(Error::WrongType)
    );
    // After the list: not looked at, as in Redis.
    assert_eq!(
        run(&mut store, lmpop(&["l", "s"], End::Left, 1)),
        Ok(Outcome::KeyValues {
            key: b"l".to_vec(),
            values: vec![b"1".to_vec()],
        })
    );
}

#[test]
fn zmpop_takes_lowest_or_highest_with_scores() {
    let mut store = store();
    assert_eq!(
        run(&mut store, zmpop(&["z"], false, 1)),
        Ok(Outcome::Value(None))
    );
    run(
        &mut store,
        zadd("z2", &[(1.0, "a"), (2.0, "b"), (3.0, "c")]),
    )
    .expect("zadd");
    assert_eq!(
        run(&mut store, zmpop(&["z", "z2"], false, 2)),
        Ok(Outcome::KeyScored {
            key: b"z2".to_vec(),
            members: vec![(b"a".to_vec(), Float(1.0)), (b"b".to_vec(), Float(2.0))],
        })
    );
    assert_eq!(
        run(&mut store, zmpop(&["z2"], true, 5)),
        Ok(Outcome::KeyScored {
            key: b"z2".to_vec(),
            members: vec![(b"c".to_vec(), Float(3.0))],
        })
    );
    run(&mut store, push("l", &["1"])).expect("push");
    assert_eq!(
        run(&mut store, zmpop(&["l"], true, 1)),
        Err(Error::WrongType)
    );
}

#[test]
fn multi_pops_name_every_key() {
    let op = lmpop(&["a", "b", "c"], End::Left, 1);
    assert!(op.is_multi_key());
    assert_eq!(op.keys().collect::<Vec<_>>(), [&b"a"[..], b"b", b"c"]);
    let op = zmpop(&["x", "y"], true, 1);
    assert!(op.is_multi_key());
    assert_eq!(op.keys().collect::<Vec<_>>(), [&b"x"[..], b"y"]);
}

#[test]
fn append_answers_the_length_it_made() {
    let mut store = store();
    let append = |value: &str| Op::Append {
        key: b"k".to_vec(),
        value: value.into(),
    };
    assert_eq!(run(&mut store, append("abc")), Ok(Outcome::Integer(3)));
    assert_eq!(run(&mut store, append("de")), Ok(Outcome::Integer(5)));
    assert_eq!(run(&mut store, append("")), Ok(Outcome::Integer(5)));
}

#[test]
fn object_encoding_names_what_is_held() {
    let mut store = store();
    let encoding = |store: &mut Store, key: &str| match run(store, Op::Encoding { key: key.into() })
    {
        Ok(Outcome::Value(name)) => name.map(|name| String::from_utf8(name).expect("ascii")),
        other => panic!("OBJECT ENCODING answered {other:?}"),
    };
    assert_eq!(encoding(&mut store, "absent"), None);
    run(&mut store, set_string("int", "12345")).expect("set");
    run(&mut store, set_string("not_int", "012")).expect("set");
    run(&mut store, set_string("short", "hello")).expect("set");
    run(&mut store, set_string("long", &"x".repeat(45))).expect("set");
    run(&mut store, set_string("edge", &"x".repeat(44))).expect("set");
    run(&mut store, push("list", &["1"])).expect("push");
    run(&mut store, zadd("zset", &[(1.0, "a")])).expect("zadd");
    assert_eq!(encoding(&mut store, "int").as_deref(), Some("int"));
    assert_eq!(encoding(&mut store, "not_int").as_deref(), Some("embstr"));
    assert_eq!(encoding(&mut store, "short").as_deref(), Some("embstr"));
    assert_eq!(encoding(&mut store, "edge").as_deref(), Some("embstr"));
    assert_eq!(encoding(&mut store, "long").as_deref(), Some("raw"));
    assert_eq!(encoding(&mut store, "list").as_deref(), Some("quicklist"));
    assert_eq!(encoding(&mut store, "zset").as_deref(), Some("skiplist"));
}

#[test]
fn memory_usage_is_the_store_accounting_of_the_key() {
    let mut store = store();
    let usage = |store: &mut Store, key: &str| match run(store, Op::MemoryUsage { key: key.into() })
    {
        Ok(Outcome::Integer(bytes)) => Some(bytes),
        Ok(Outcome::Value(None)) => None,
        other => panic!("MEMORY USAGE answered {other:?}"),
    };
    assert_eq!(usage(&mut store, "absent"), None);
    run(&mut store, set_string("s", "hello")).expect("set");
    let string = usage(&mut store, "s").expect("present");
    assert_eq!(
        string as u64,
        cache::store::entry_weight_bytes(b"s", &cache::store::Value::Str(b"hello".to_vec())),
    );
    assert_eq!(
        string as u64,
        store.used_bytes(),
        "the only key holds every byte"
    );
    run(&mut store, push("list", &["1"])).expect("push");
    let one = usage(&mut store, "list").expect("present");
    run(&mut store, push("list", &["2", "3"])).expect("push");
    let three = usage(&mut store, "list").expect("present");
    assert!(three > one, "a list grows: {one} then {three}");
    assert_eq!((string + three) as u64, store.used_bytes());
}
