//! The Redis-shaped operations: conditional set, increments, expiry, ranges.

use std::sync::Mutex;

use api::{
    Error, ExpireCondition, Float, GetExTtl, KeyTtl, KvClient, Limits, Op, Outcome, SetCondition,
    SetTtl, execute, read,
};
use cache::{Store, StoreConfig};

fn store() -> Store {
    Store::new(StoreConfig::new(1 << 20))
}

fn run(store: &mut Store, op: Op, now_ms: u64) -> Result<Outcome, Error> {
    execute(store, &op, &Limits::default(), now_ms)
}

fn value(store: &mut Store, key: &str, now_ms: u64) -> Option<Vec<u8>> {
    match run(store, Op::Get { key: key.into() }, now_ms) {
        Ok(Outcome::Value(value)) => value,
        other => panic!("get answered {other:?}"),
    }
}

fn ttl(store: &mut Store, key: &str, now_ms: u64) -> KeyTtl {
    let op = Op::Ttl { key: key.into() };
    let by_read = read(store, &op, &Limits::default(), now_ms);
    let by_log = run(store, op, now_ms);
    assert_eq!(by_read, by_log, "Ttl through the log and the read path");
    match by_log {
        Ok(Outcome::Ttl(ttl)) => ttl,
        other => panic!("ttl answered {other:?}"),
    }
}

fn set(key: &str, value: &str, condition: SetCondition, ttl: SetTtl, return_old: bool) -> Op {
    Op::Set {
        key: key.into(),
        value: value.into(),
        condition,
        ttl,
        return_old,
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

#[test]
fn set_conditions_return_old_and_keep_ttl() {
    let mut store = store();
    let always = set("k", "a", SetCondition::Always, SetTtl::Ms(1000), true);
    assert_eq!(
        run(&mut store, always, 0),
        Ok(Outcome::Set {
            applied: true,
            previous: None
        })
    );
    // NX on a present key: nothing changes, the old value is answered.
    let nx = set("k", "b", SetCondition::IfAbsent, SetTtl::Clear, true);
    assert_eq!(
        run(&mut store, nx, 10),
        Ok(Outcome::Set {
            applied: false,
            previous: Some(b"a".to_vec())
        })
    );
    assert_eq!(value(&mut store, "k", 10), Some(b"a".to_vec()));
    assert_eq!(ttl(&mut store, "k", 10), KeyTtl::RemainingMs(990));
    // XX with KEEPTTL: the value changes, the deadline stays.
    let xx = set("k", "c", SetCondition::IfPresent, SetTtl::Keep, false);
    assert_eq!(
        run(&mut store, xx, 100),
        Ok(Outcome::Set {
            applied: true,
            previous: None
        })
    );
    assert_eq!(value(&mut store, "k", 100), Some(b"c".to_vec()));
    assert_eq!(ttl(&mut store, "k", 100), KeyTtl::RemainingMs(900));
    // A plain set clears the deadline.
    let plain = set("k", "d", SetCondition::Always, SetTtl::Clear, true);
    assert_eq!(
        run(&mut store, plain, 200),
        Ok(Outcome::Set {
            applied: true,
            previous: Some(b"c".to_vec())
        })
    );
    assert_eq!(ttl(&mut store, "k", 5000), KeyTtl::Persistent);
    // XX on an absent key writes nothing.
    let xx_absent = set("gone", "x", SetCondition::IfPresent, SetTtl::Clear, false);
    assert_eq!(
        run(&mut store, xx_absent, 200),
        Ok(Outcome::Set {
            applied: false,
            previous: None
        })
    );
    assert_eq!(value(&mut store, "gone", 200), None);
    // A deadline already past (TTL 0): the key ends absent.
    let past = set("k", "e", SetCondition::Always, SetTtl::Ms(0), true);
    assert_eq!(
        run(&mut store, past, 300),
        Ok(Outcome::Set {
            applied: true,
            previous: Some(b"d".to_vec())
        })
    );
    assert_eq!(value(&mut store, "k", 300), None);
}

#[test]
fn increment_follows_redis_integers_and_keeps_the_deadline() {
    let mut store = store();
    let incr = |delta| Op::Increment {
        key: "n".into(),
        delta,
    };
    assert_eq!(run(&mut store, incr(5), 0), Ok(Outcome::Integer(5)));
    assert_eq!(run(&mut store, incr(-7), 0), Ok(Outcome::Integer(-2)));
    put(&mut store, "n", "10", Some(1000), 0);
    assert_eq!(run(&mut store, incr(1), 400), Ok(Outcome::Integer(11)));
    assert_eq!(ttl(&mut store, "n", 400), KeyTtl::RemainingMs(600));
    // Values Redis does not read as integers: refused, nothing changed.
    for text in [
        "1.5",
        " 1",
        "1 ",
        "+1",
        "01",
        "-0",
        "",
        "abc",
        "99999999999999999999",
    ] {
        put(&mut store, "bad", text, None, 500);
        let op = Op::Increment {
            key: "bad".into(),
            delta: 1,
        };
        assert_eq!(
            run(&mut store, op, 500),
            Err(Error::NotAnInteger),
            "{text:?}"
        );
        assert_eq!(
            value(&mut store, "bad", 500),
            Some(text.as_bytes().to_vec())
        );
    }
    put(&mut store, "max", &i64::MAX.to_string(), None, 500);
    let overflow = Op::Increment {
        key: "max".into(),
        delta: 1,
    };
    assert_eq!(
        run(&mut store, overflow, 500),
        Err(Error::IncrementOverflow)
    );
    assert_eq!(
        value(&mut store, "max", 500),
        Some(i64::MAX.to_string().into_bytes())
    );
}

#[test]
fn increment_float_formats_like_redis() {
    let mut store = store();
    let incr = |delta: f64| Op::IncrementFloat {
        key: "f".into(),
        delta: Float(delta),
    };
    assert_eq!(
        run(&mut store, incr(1.0), 0),
        Ok(Outcome::Value(Some(b"1".to_vec())))
    );
    assert_eq!(
        run(&mut store, incr(0.25), 0),
        Ok(Outcome::Value(Some(b"1.25".to_vec())))
    );
    put(&mut store, "f", "10.5", Some(100), 0);
    assert_eq!(
        run(&mut store, incr(0.1), 10),
        Ok(Outcome::Value(Some(b"10.6".to_vec())))
    );
    assert_eq!(ttl(&mut store, "f", 10), KeyTtl::RemainingMs(90));
    put(&mut store, "f", "17179869184", None, 10);
    assert_eq!(
        run(&mut store, incr(1.5), 10),
        Ok(Outcome::Value(Some(b"17179869185.5".to_vec())))
    );
    // No negative zero, no exponent form.
    put(&mut store, "f", "0", None, 10);
    run(&mut store, incr(1.0 / 41.0), 10).unwrap();
    assert_eq!(
        run(&mut store, incr(-1.0 / 41.0), 10),
        Ok(Outcome::Value(Some(b"0".to_vec())))
    );
    put(&mut store, "f", "1e20", None, 10);
    assert_eq!(
        run(&mut store, incr(1.0), 10),
        Ok(Outcome::Value(Some(b"100000000000000000000".to_vec())))
    );
    // Refusals change nothing.
    put(&mut store, "f", " 1", None, 10);
    assert_eq!(run(&mut store, incr(1.0), 10), Err(Error::NotAFloat));
    put(&mut store, "f", "1", None, 10);
    assert_eq!(
        run(&mut store, incr(f64::INFINITY), 10),
        Err(Error::NotFinite)
    );
    assert_eq!(value(&mut store, "f", 10), Some(b"1".to_vec()));
}

#[test]
fn getdel_and_getex() {
    let mut store = store();
    put(&mut store, "k", "v", None, 0);
    let getdel = Op::GetDel { key: "k".into() };
    assert_eq!(
        run(&mut store, getdel.clone(), 0),
        Ok(Outcome::Value(Some(b"v".to_vec())))
    );
    assert_eq!(run(&mut store, getdel, 0), Ok(Outcome::Value(None)));
    assert_eq!(value(&mut store, "k", 0), None);

    put(&mut store, "k", "v", None, 0);
    let getex = |ttl| Op::GetEx {
        key: "k".into(),
        ttl,
    };
    assert!(getex(GetExTtl::Unchanged).is_read());
    assert!(!getex(GetExTtl::Persist).is_read());
    assert_eq!(
        run(&mut store, getex(GetExTtl::Ms(500)), 0),
        Ok(Outcome::Value(Some(b"v".to_vec())))
    );
    assert_eq!(ttl(&mut store, "k", 100), KeyTtl::RemainingMs(400));
    assert_eq!(
        run(&mut store, getex(GetExTtl::Persist), 100),
        Ok(Outcome::Value(Some(b"v".to_vec())))
    );
    assert_eq!(ttl(&mut store, "k", 100), KeyTtl::Persistent);
    assert_eq!(
        run(&mut store, getex(GetExTtl::Ms(0)), 100),
        Ok(Outcome::Value(Some(b"v".to_vec())))
    );
    assert_eq!(ttl(&mut store, "k", 100), KeyTtl::Missing);
    assert_eq!(
        run(&mut store, getex(GetExTtl::Ms(10)), 100),
        Ok(Outcome::Value(None))
    );
}

fn expire(key: &str, ttl_ms: u64, condition: ExpireCondition) -> Op {
    Op::Expire {
        key: key.into(),
        ttl_ms,
        condition,
    }
}

#[test]
fn expire_conditions_persist_and_ttl() {
    let mut store = store();
    let always = ExpireCondition::default();
    let nx = ExpireCondition {
        if_no_ttl: true,
        ..always
    };
    let xx = ExpireCondition {
        if_has_ttl: true,
        ..always
    };
    let gt = ExpireCondition {
        if_greater: true,
        ..always
    };
    let lt = ExpireCondition {
        if_less: true,
        ..always
    };
    assert_eq!(
        run(&mut store, expire("k", 100, always), 0),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(ttl(&mut store, "k", 0), KeyTtl::Missing);
    put(&mut store, "k", "v", None, 0);
    // No deadline counts as infinite: GT fails, LT holds; XX fails, NX holds.
    assert_eq!(
        run(&mut store, expire("k", 100, gt), 0),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(
        run(&mut store, expire("k", 100, xx), 0),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(ttl(&mut store, "k", 0), KeyTtl::Persistent);
    assert_eq!(
        run(&mut store, expire("k", 1000, nx), 0),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(
        run(&mut store, expire("k", 500, nx), 0),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(
        run(&mut store, expire("k", 500, gt), 0),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(
        run(&mut store, expire("k", 2000, gt), 0),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(
        run(&mut store, expire("k", 3000, lt), 0),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(
        run(
            &mut store,
            expire(
                "k",
                1500,
                ExpireCondition {
                    if_has_ttl: true,
                    if_less: true,
                    ..always
                }
            ),
            0
        ),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(ttl(&mut store, "k", 500), KeyTtl::RemainingMs(1000));
    assert_eq!(
        run(&mut store, Op::Persist { key: "k".into() }, 500),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(
        run(&mut store, Op::Persist { key: "k".into() }, 500),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(ttl(&mut store, "k", 10_000), KeyTtl::Persistent);
    // A deadline already past removes the key.
    assert_eq!(
        run(&mut store, expire("k", 0, always), 10_000),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(value(&mut store, "k", 10_000), None);
    // The key vanishes at its deadline.
    put(&mut store, "t", "v", None, 20_000);
    run(&mut store, expire("t", 50, always), 20_000).unwrap();
    assert_eq!(ttl(&mut store, "t", 20_049), KeyTtl::RemainingMs(1));
    assert_eq!(ttl(&mut store, "t", 20_050), KeyTtl::Missing);
}

#[test]
fn strlen_getrange_setrange() {
    let mut store = store();
    let strlen = |key: &str| Op::Strlen { key: key.into() };
    assert_eq!(run(&mut store, strlen("k"), 0), Ok(Outcome::Integer(0)));
    put(&mut store, "k", "Hello World", Some(100), 0);
    assert_eq!(run(&mut store, strlen("k"), 0), Ok(Outcome::Integer(11)));
    let range = |start, end| Op::GetRange {
        key: "k".into(),
        start,
        end,
    };
    assert_eq!(
        read(&store, &range(-5, -1), &Limits::default(), 0),
        Ok(Outcome::Value(Some(b"World".to_vec())))
    );
    assert_eq!(
        run(&mut store, range(0, 4), 0),
        Ok(Outcome::Value(Some(b"Hello".to_vec())))
    );
    let setrange = |key: &str, offset, value: &str| Op::SetRange {
        key: key.into(),
        offset,
        value: value.into(),
    };
    assert_eq!(
        run(&mut store, setrange("k", 6, "Redis"), 10),
        Ok(Outcome::Integer(11))
    );
    assert_eq!(value(&mut store, "k", 10), Some(b"Hello Redis".to_vec()));
    assert_eq!(ttl(&mut store, "k", 10), KeyTtl::RemainingMs(90));
    assert_eq!(
        run(&mut store, setrange("new", 3, "ab"), 10),
        Ok(Outcome::Integer(5))
    );
    assert_eq!(value(&mut store, "new", 10), Some(b"\0\0\0ab".to_vec()));
    // An empty value changes nothing (and creates nothing).
    assert_eq!(
        run(&mut store, setrange("none", 100, ""), 10),
        Ok(Outcome::Integer(0))
    );
    assert_eq!(value(&mut store, "none", 10), None);
    // Past the value limit: refused before anything changes.
    let limits = Limits {
        max_key_bytes: 16,
        max_value_bytes: 8,
        ..Limits::default()
    };
    assert!(matches!(
        execute(&mut store, &setrange("new", 7, "ab"), &limits, 10),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(value(&mut store, "new", 10), Some(b"\0\0\0ab".to_vec()));
}

#[test]
fn reads_are_the_pure_ones() {
    let key = || b"k".to_vec();
    for op in [
        Op::Ttl { key: key() },
        Op::Strlen { key: key() },
        Op::GetRange {
            key: key(),
            start: 0,
            end: -1,
        },
    ] {
        assert!(op.is_read(), "{}", op.name());
    }
    for op in [
        Op::Persist { key: key() },
        Op::GetDel { key: key() },
        Op::Increment {
            key: key(),
            delta: 1,
        },
    ] {
        assert!(!op.is_read(), "{}", op.name());
    }
}

/// A client that runs operations on one in-memory store.
struct Local(Mutex<Store>);

impl KvClient for Local {
    async fn run(&self, op: Op) -> Result<Outcome, Error> {
        let mut store = self.0.lock().unwrap();
        execute(&mut store, &op, &Limits::default(), 0)
    }
}

#[test]
fn typed_methods_of_the_new_operations() {
    futures::executor::block_on(typed_methods());
}

async fn typed_methods() {
    let client = Local(Mutex::new(store()));
    assert_eq!(client.increment("n", 3).await, Ok(3));
    assert_eq!(client.increment_float("n", 0.5).await, Ok(b"3.5".to_vec()));
    assert_eq!(client.strlen("n").await, Ok(3));
    assert_eq!(client.get_range("n", 0, 0).await, Ok(b"3".to_vec()));
    assert_eq!(client.set_range("n", 0, "4").await, Ok(3));
    assert_eq!(
        client
            .set("n", "x", SetCondition::IfPresent, SetTtl::Ms(100), true)
            .await,
        Ok((true, Some(b"4.5".to_vec())))
    );
    assert_eq!(client.ttl("n").await, Ok(KeyTtl::RemainingMs(100)));
    assert_eq!(client.persist("n").await, Ok(true));
    assert_eq!(
        client.expire("n", 10, ExpireCondition::default()).await,
        Ok(true)
    );
    assert_eq!(
        client.get_ex("n", GetExTtl::Persist).await,
        Ok(Some(b"x".to_vec()))
    );
    assert_eq!(client.get_del("n").await, Ok(Some(b"x".to_vec())));
    assert_eq!(client.ttl("n").await, Ok(KeyTtl::Missing));
}
