//! The Redis-shaped operations: conditional set, increments, expiry, ranges.

use std::sync::Mutex;

use api::{
    Error, ExpireCondition, Float, GetExTtl, KeyExpireTime, KeyTtl, KvClient, Limits, Op, Outcome,
    SetCondition, SetTtl, execute, read,
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
        unix_ms: None,
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

/// When `key` expires, through the log and the read path (which agree).
fn expire_time(store: &mut Store, key: &str, now_ms: u64) -> KeyExpireTime {
    let op = Op::ExpireTime { key: key.into() };
    let by_read = read(store, &op, &Limits::default(), now_ms);
    let by_log = run(store, op, now_ms);
    assert_eq!(
        by_read, by_log,
        "ExpireTime through the log and the read path"
    );
    match by_log {
        Ok(Outcome::ExpireTime(expire_time)) => expire_time,
        other => panic!("expire time answered {other:?}"),
    }
}

/// Issue 16: `SET k v PXAT t` then `PEXPIRETIME k` must answer `t` itself,
/// whatever log time has passed since, and every write that keeps the
/// deadline (KEEPTTL, APPEND, INCR, INCRBYFLOAT, SETRANGE), moves it
/// (RENAME) or copies it (COPY) keeps the instant; a snapshot (how a shard
/// moves between groups) carries it. Expiry itself follows log time.
#[test]
fn a_wall_clock_deadline_reads_back_exactly_through_every_write_that_keeps_it() {
    const AT: i64 = 1_767_225_600_123; // what the client sent with PXAT
    let mut store = store();
    let op = set(
        "k",
        "1",
        SetCondition::Always,
        SetTtl::At {
            ttl_ms: 10_000,
            unix_ms: AT,
        },
        false,
    );
    run(&mut store, op, 7).expect("set pxat");
    assert_eq!(expire_time(&mut store, "k", 7), KeyExpireTime::UnixMs(AT));
    // Log time passes (as it does while the answer is forwarded back and
    // the next command arrives): the instant does not drift with it.
    assert_eq!(
        expire_time(&mut store, "k", 3_000),
        KeyExpireTime::UnixMs(AT)
    );
    assert_eq!(ttl(&mut store, "k", 3_000), KeyTtl::RemainingMs(7_007));

    let keep_ttl = set("k", "2", SetCondition::Always, SetTtl::Keep, false);
    run(&mut store, keep_ttl, 3_001).expect("set keepttl");
    let append = Op::Append {
        key: "k".into(),
        value: "0".into(),
    };
    run(&mut store, append, 3_002).expect("append");
    let incr = Op::Increment {
        key: "k".into(),
        delta: 1,
    };
    assert_eq!(run(&mut store, incr, 3_003), Ok(Outcome::Integer(21)));
    let incr_float = Op::IncrementFloat {
        key: "k".into(),
        delta: Float(0.5),
    };
    run(&mut store, incr_float, 3_004).expect("incrbyfloat");
    let set_range = Op::SetRange {
        key: "k".into(),
        offset: 0,
        value: "3".into(),
    };
    run(&mut store, set_range, 3_005).expect("setrange");
    assert_eq!(
        expire_time(&mut store, "k", 3_006),
        KeyExpireTime::UnixMs(AT)
    );
    assert_eq!(ttl(&mut store, "k", 3_006), KeyTtl::RemainingMs(7_001));

    let copy = Op::Copy {
        source: "k".into(),
        destination: "c".into(),
        replace: false,
    };
    assert_eq!(run(&mut store, copy, 3_007), Ok(Outcome::Applied(true)));
    let rename = Op::Rename {
        source: "k".into(),
        destination: "r".into(),
        only_if_new: false,
    };
    assert_eq!(run(&mut store, rename, 3_008), Ok(Outcome::Applied(true)));
    assert_eq!(expire_time(&mut store, "k", 3_009), KeyExpireTime::Missing);
    assert_eq!(
        expire_time(&mut store, "c", 3_009),
        KeyExpireTime::UnixMs(AT)
    );
    assert_eq!(
        expire_time(&mut store, "r", 3_009),
        KeyExpireTime::UnixMs(AT)
    );

    // A snapshot (the form in which a shard moves) keeps the instant.
    let mut restored = Store::restore(&store.snapshot()).expect("restore");
    assert_eq!(
        expire_time(&mut restored, "r", 3_010),
        KeyExpireTime::UnixMs(AT)
    );

    // The key expires by log time, as before.
    assert_eq!(
        expire_time(&mut restored, "r", 10_006),
        KeyExpireTime::UnixMs(AT)
    );
    assert_eq!(
        expire_time(&mut restored, "r", 10_007),
        KeyExpireTime::Missing
    );
    assert_eq!(value(&mut restored, "r", 10_007), None);
}

#[test]
fn expire_getex_and_persist_set_or_clear_the_wall_clock_instant() {
    let mut store = store();
    put(&mut store, "k", "v", None, 0);
    assert_eq!(expire_time(&mut store, "k", 0), KeyExpireTime::Persistent);
    assert_eq!(expire_time(&mut store, "absent", 0), KeyExpireTime::Missing);

    let expire_at = Op::Expire {
        key: "k".into(),
        ttl_ms: 5_000,
        unix_ms: Some(1_000_005_000),
        condition: ExpireCondition::default(),
    };
    assert_eq!(run(&mut store, expire_at, 10), Ok(Outcome::Applied(true)));
    assert_eq!(
        expire_time(&mut store, "k", 20),
        KeyExpireTime::UnixMs(1_000_005_000)
    );

    let getex = Op::GetEx {
        key: "k".into(),
        ttl: GetExTtl::At {
            ttl_ms: 9_000,
            unix_ms: 1_000_009_000,
        },
    };
    run(&mut store, getex, 30).expect("getex pxat");
    assert_eq!(
        expire_time(&mut store, "k", 40),
        KeyExpireTime::UnixMs(1_000_009_000)
    );
    assert_eq!(ttl(&mut store, "k", 40), KeyTtl::RemainingMs(8_990));

    // A relative TTL without an instant (gRPC, REST): the remaining time.
    assert_eq!(
        run(
            &mut store,
            expire("k", 2_000, ExpireCondition::default()),
            50
        ),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(
        expire_time(&mut store, "k", 60),
        KeyExpireTime::RemainingMs(1_990)
    );

    let getex_past = Op::GetEx {
        key: "k".into(),
        ttl: GetExTtl::At {
            ttl_ms: 0,
            unix_ms: 1,
        },
    };
    assert_eq!(
        run(&mut store, getex_past, 70),
        Ok(Outcome::Value(Some(b"v".to_vec())))
    );
    assert_eq!(expire_time(&mut store, "k", 70), KeyExpireTime::Missing);

    let set_past = set(
        "p",
        "v",
        SetCondition::Always,
        SetTtl::At {
            ttl_ms: 0,
            unix_ms: 1,
        },
        false,
    );
    run(&mut store, set_past, 80).expect("set pxat in the past");
    assert_eq!(value(&mut store, "p", 80), None);

    let set_at = set(
        "q",
        "v",
        SetCondition::Always,
        SetTtl::At {
            ttl_ms: 100,
            unix_ms: 7,
        },
        false,
    );
    run(&mut store, set_at, 90).expect("set");
    assert_eq!(
        run(&mut store, Op::Persist { key: "q".into() }, 91),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(expire_time(&mut store, "q", 92), KeyExpireTime::Persistent);
    // A plain SET clears the deadline and its instant.
    let set_at = set(
        "q",
        "v",
        SetCondition::Always,
        SetTtl::At {
            ttl_ms: 100,
            unix_ms: 7,
        },
        false,
    );
    run(&mut store, set_at, 93).expect("set");
    put(&mut store, "q", "w", None, 94);
    assert_eq!(expire_time(&mut store, "q", 95), KeyExpireTime::Persistent);
}

/// `EXPIREAT k t GT` on a key set with the instant `t` changes nothing,
/// even when the TTLs (measured on the receiving node's clock, not in log
/// time) say the new one is later: instants are compared when both exist.
#[test]
fn gt_and_lt_compare_wall_clock_instants_when_both_have_one() {
    let mut store = store();
    let op = set(
        "k",
        "v",
        SetCondition::Always,
        SetTtl::At {
            ttl_ms: 1_000,
            unix_ms: 5_000,
        },
        false,
    );
    run(&mut store, op, 0).expect("set");
    let expire_at = |ttl_ms, unix_ms, if_greater, if_less| Op::Expire {
        key: "k".into(),
        ttl_ms,
        unix_ms: Some(unix_ms),
        condition: ExpireCondition {
            if_greater,
            if_less,
            ..ExpireCondition::default()
        },
    };
    // 500 ms of log time later the key has 500 ms left; the same instant
    // arrives as a TTL of 1000 (the node's clock lagged): not later.
    assert_eq!(
        run(&mut store, expire_at(1_000, 5_000, true, false), 500),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(
        run(&mut store, expire_at(1_000, 5_000, false, true), 500),
        Ok(Outcome::Applied(false))
    );
    assert_eq!(
        run(&mut store, expire_at(1_000, 5_001, true, false), 500),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(
        expire_time(&mut store, "k", 501),
        KeyExpireTime::UnixMs(5_001)
    );
    assert_eq!(
        run(&mut store, expire_at(100, 4_000, false, true), 600),
        Ok(Outcome::Applied(true))
    );
    assert_eq!(
        expire_time(&mut store, "k", 601),
        KeyExpireTime::UnixMs(4_000)
    );
}

/// Makes key `h` a hash (a key of another type for the string reads).
fn hset_h(store: &mut Store) {
    let hash = Op::Hash {
        key: "h".into(),
        op: api::HashOp::Set {
            pairs: vec![(b"f".to_vec(), b"v".to_vec())],
            only_new: false,
        },
    };
    run(store, hash, 0).expect("hset");
}

#[test]
fn a_get_through_the_read_path_answers_as_through_the_log() {
    let mut store = store();
    let get = |key: &str| Op::Get { key: key.into() };
    let get_ex = |key: &str| Op::GetEx {
        key: key.into(),
        ttl: GetExTtl::Unchanged,
    };
    let put = |key: &str, ttl_ms| Op::Put {
        key: key.into(),
        value: b"v".to_vec(),
        ttl_ms,
    };
    run(&mut store, put("live", None), 0).expect("put");
    run(&mut store, put("expiring", Some(100)), 0).expect("put");
    hset_h(&mut store);
    let value = |bytes: &[u8]| Ok(Outcome::Value(Some(bytes.to_vec())));
    for (key, now_ms, expected) in [
        ("live", 50, value(b"v")),
        ("expiring", 50, value(b"v")),
        ("expiring", 100, Ok(Outcome::Value(None))),
        ("absent", 50, Ok(Outcome::Value(None))),
        ("h", 50, Err(Error::WrongType)),
    ] {
        for op in [get(key), get_ex(key)] {
            let by_read = read(&store, &op, &Limits::default(), now_ms);
            assert_eq!(
                by_read, expected,
                "{op:?} at {now_ms} ms through the read path"
            );
            let mut copy = store.clone();
            assert_eq!(
                run(&mut copy, op.clone(), now_ms),
                expected,
                "{op:?} through the log"
            );
        }
    }
}

#[test]
fn get_with_ttl_answers_the_value_and_its_ttl_of_one_instant() {
    let mut store = store();
    let get_with_ttl = |key: &str| Op::GetWithTtl { key: key.into() };
    let both_paths = |store: &mut Store, op: Op, now_ms| {
        let by_read = read(store, &op, &Limits::default(), now_ms);
        let by_log = run(store, op, now_ms);
        assert_eq!(
            by_read, by_log,
            "GetWithTtl through the log and the read path"
        );
        by_log
    };
    let put = |key: &str, ttl_ms| Op::Put {
        key: key.into(),
        value: b"v".to_vec(),
        ttl_ms,
    };
    run(&mut store, put("with", Some(1_000)), 0).expect("put");
    run(&mut store, put("without", None), 0).expect("put");
    assert_eq!(
        both_paths(&mut store, get_with_ttl("with"), 250),
        Ok(Outcome::ValueWithTtl {
            value: Some(b"v".to_vec()),
            ttl: KeyTtl::RemainingMs(750),
        })
    );
    assert_eq!(
        both_paths(&mut store, get_with_ttl("without"), 250),
        Ok(Outcome::ValueWithTtl {
            value: Some(b"v".to_vec()),
            ttl: KeyTtl::Persistent,
        })
    );
    // Expired and absent keys read alike.
    for key in ["with", "absent"] {
        assert_eq!(
            both_paths(&mut store, get_with_ttl(key), 1_000),
            Ok(Outcome::ValueWithTtl {
                value: None,
                ttl: KeyTtl::Missing,
            })
        );
    }
    // A key of another type: WRONGTYPE, as for GET.
    hset_h(&mut store);
    assert!(matches!(
        both_paths(&mut store, get_with_ttl("h"), 0),
        Err(Error::WrongType)
    ));
    assert!(get_with_ttl("k").is_read());
}
