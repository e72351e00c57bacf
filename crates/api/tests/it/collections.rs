//! Hash and set operations, TYPE and WRONGTYPE, on a store: Redis 7's
//! answers, reads identical through the log and the read path, refused
//! operations changing nothing, seeded random choices deterministic.

use api::{Error, Float, HashOp, Limits, Op, Outcome, SetOp, execute, read};
use cache::{Store, StoreConfig};

fn store() -> Store {
    Store::new(StoreConfig::new(1 << 20))
}

/// Runs `op`; a read is also run on the read path and must agree.
fn run(store: &mut Store, op: Op) -> Result<Outcome, Error> {
    run_with(store, op, &Limits::default())
}

fn run_with(store: &mut Store, op: Op, limits: &Limits) -> Result<Outcome, Error> {
    if op.is_read() {
        let by_read = read(store, &op, limits, 0);
        let by_log = execute(store, &op, limits, 0);
        assert_eq!(by_read, by_log, "{op:?} through the log and the read path");
        by_log
    } else {
        execute(store, &op, limits, 0)
    }
}

fn hash(key: &str, op: HashOp) -> Op {
    Op::Hash {
        key: key.into(),
        op,
    }
}

fn sets(key: &str, op: SetOp) -> Op {
    Op::Sets {
        key: key.into(),
        op,
    }
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

fn hset(key: &str, pairs: &[(&str, &str)]) -> Op {
    hash(
        key,
        HashOp::Set {
            pairs: pairs
                .iter()
                .map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            only_new: false,
        },
    )
}

#[test]
fn hash_writes_and_reads_answer_as_redis() {
    let mut store = store();
    assert_eq!(
        run(&mut store, hset("h", &[("b", "2"), ("a", "1"), ("b", "3")])),
        Ok(Outcome::Integer(2))
    );
    assert_eq!(
        run(&mut store, hset("h", &[("a", "x"), ("c", "")])),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(
            &mut store,
            hash(
                "h",
                HashOp::Get {
                    field: b"a".to_vec()
                }
            )
        ),
        Ok(Outcome::Value(Some(b"x".to_vec())))
    );
    assert_eq!(
        run(
            &mut store,
            hash(
                "h",
                HashOp::MGet {
                    fields: bytes(&["b", "zz", "c"])
                }
            )
        ),
        Ok(Outcome::Values(vec![
            Some(b"3".to_vec()),
            None,
            Some(Vec::new())
        ]))
    );
    assert_eq!(
        run(&mut store, hash("h", HashOp::Len)),
        Ok(Outcome::Integer(3))
    );
    assert_eq!(
        run(&mut store, hash("h", HashOp::GetAll)),
        Ok(values(&["a", "x", "b", "3", "c", ""]))
    );
    assert_eq!(
        run(&mut store, hash("h", HashOp::Keys)),
        Ok(values(&["a", "b", "c"]))
    );
    assert_eq!(
        run(&mut store, hash("h", HashOp::Vals)),
        Ok(values(&["x", "3", ""]))
    );
    assert_eq!(
        run(
            &mut store,
            hash(
                "h",
                HashOp::Exists {
                    field: b"c".to_vec()
                }
            )
        ),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(
            &mut store,
            hash(
                "h",
                HashOp::StrLen {
                    field: b"b".to_vec()
                }
            )
        ),
        Ok(Outcome::Integer(1))
    );
    // HSETNX: only a new field.
    let setnx = |field: &str| {
        hash(
            "h",
            HashOp::Set {
                pairs: vec![(field.as_bytes().to_vec(), b"new".to_vec())],
                only_new: true,
            },
        )
    };
    assert_eq!(run(&mut store, setnx("a")), Ok(Outcome::Integer(0)));
    assert_eq!(run(&mut store, setnx("d")), Ok(Outcome::Integer(1)));
    assert_eq!(
        run(
            &mut store,
            hash(
                "h",
                HashOp::Del {
                    fields: bytes(&["a", "nope", "d"])
                }
            )
        ),
        Ok(Outcome::Integer(2))
    );
    // Absent keys read as empty hashes.
    assert_eq!(
        run(&mut store, hash("none", HashOp::GetAll)),
        Ok(Outcome::Values(vec![]))
    );
    assert_eq!(
        run(
            &mut store,
            hash(
                "none",
                HashOp::Get {
                    field: b"a".to_vec()
                }
            )
        ),
        Ok(Outcome::Value(None))
    );
    // Deleting every field removes the key.
    run(
        &mut store,
        hash(
            "h",
            HashOp::Del {
                fields: bytes(&["b", "c"]),
            },
        ),
    )
    .expect("del");
    assert_eq!(
        run(&mut store, Op::Type { key: b"h".to_vec() }),
        Ok(Outcome::Value(None))
    );
    store.check_invariants().expect("invariants");
}

#[test]
fn hash_increments_refuse_bad_fields_and_change_nothing() {
    let mut store = store();
    run(
        &mut store,
        hset("h", &[("n", "10"), ("s", "abc"), ("f", "1.5")]),
    )
    .expect("hset");
    let incr = |field: &str, delta: i64| {
        hash(
            "h",
            HashOp::IncrBy {
                field: field.as_bytes().to_vec(),
                delta,
            },
        )
    };
    assert_eq!(run(&mut store, incr("n", 5)), Ok(Outcome::Integer(15)));
    assert_eq!(run(&mut store, incr("new", -3)), Ok(Outcome::Integer(-3)));
    assert_eq!(run(&mut store, incr("s", 1)), Err(Error::HashNotInteger));
    assert_eq!(run(&mut store, incr("f", 1)), Err(Error::HashNotInteger));
    assert_eq!(
        run(&mut store, incr("n", i64::MAX)),
        Err(Error::IncrementOverflow)
    );
    let incr_float = |field: &str, delta: f64| {
        hash(
            "h",
            HashOp::IncrByFloat {
                field: field.as_bytes().to_vec(),
                delta: Float(delta),
            },
        )
    };
    assert_eq!(
        run(&mut store, incr_float("f", 0.25)),
        Ok(Outcome::Value(Some(b"1.75".to_vec())))
    );
    assert_eq!(
        run(&mut store, incr_float("s", 1.0)),
        Err(Error::HashNotFloat)
    );
    assert_eq!(
        run(&mut store, incr_float("f", f64::INFINITY)),
        Err(Error::NotFinite)
    );
    assert_eq!(
        run(&mut store, hash("h", HashOp::GetAll)),
        Ok(values(&["f", "1.75", "n", "15", "new", "-3", "s", "abc"]))
    );
}

#[test]
fn sets_answer_as_redis() {
    let mut store = store();
    let add = |members: &[&str]| {
        sets(
            "s",
            SetOp::Add {
                members: bytes(members),
            },
        )
    };
    assert_eq!(
        run(&mut store, add(&["b", "a", "b", "c"])),
        Ok(Outcome::Integer(3))
    );
    assert_eq!(run(&mut store, add(&["c", "d"])), Ok(Outcome::Integer(1)));
    assert_eq!(
        run(&mut store, sets("s", SetOp::Card)),
        Ok(Outcome::Integer(4))
    );
    assert_eq!(
        run(&mut store, sets("s", SetOp::Members)),
        Ok(values(&["a", "b", "c", "d"]))
    );
    assert_eq!(
        run(
            &mut store,
            sets(
                "s",
                SetOp::IsMember {
                    member: b"a".to_vec()
                }
            )
        ),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(
            &mut store,
            sets(
                "s",
                SetOp::MIsMember {
                    members: bytes(&["a", "x", "d"])
                }
            )
        ),
        Ok(Outcome::Integers(vec![1, 0, 1]))
    );
    assert_eq!(
        run(
            &mut store,
            sets(
                "s",
                SetOp::Rem {
                    members: bytes(&["a", "x"])
                }
            )
        ),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(&mut store, Op::Type { key: b"s".to_vec() }),
        Ok(Outcome::Value(Some(b"set".to_vec())))
    );
}

#[test]
fn random_choices_follow_the_seed_and_count_rules() {
    let mut first = store();
    let mut second = store();
    let members: Vec<String> = (0..50).map(|i| format!("m{i:02}")).collect();
    let member_refs: Vec<&str> = members.iter().map(String::as_str).collect();
    for store in [&mut first, &mut second] {
        run(
            store,
            sets(
                "s",
                SetOp::Add {
                    members: bytes(&member_refs),
                },
            ),
        )
        .expect("sadd");
    }
    // The same seed pops the same members on every replica.
    let pop = sets(
        "s",
        SetOp::Pop {
            count: Some(7),
            seed: 42,
        },
    );
    let popped = run(&mut first, pop.clone()).expect("spop");
    assert_eq!(run(&mut second, pop), Ok(popped.clone()));
    let Outcome::Values(popped) = popped else {
        panic!("{popped:?}")
    };
    assert_eq!(popped.len(), 7);
    assert_eq!(first.snapshot(), second.snapshot());
    assert_eq!(
        run(&mut first, sets("s", SetOp::Card)),
        Ok(Outcome::Integer(43))
    );
    // Positive counts are distinct and at most the size; negative may repeat.
    let random = |count| {
        sets(
            "s",
            SetOp::RandMember {
                count: Some(count),
                seed: 7,
            },
        )
    };
    match run(&mut first, random(100)) {
        Ok(Outcome::Values(found)) => {
            let distinct: std::collections::BTreeSet<_> = found.iter().collect();
            assert_eq!((found.len(), distinct.len()), (43, 43));
        }
        other => panic!("{other:?}"),
    }
    match run(&mut first, random(-100)) {
        Ok(Outcome::Values(found)) => assert_eq!(found.len(), 100),
        other => panic!("{other:?}"),
    }
    let limits = Limits {
        max_collection_elements: 10,
        ..Limits::default()
    };
    assert_eq!(
        run_with(&mut first, random(-11), &limits),
        Err(Error::TooManyElements {
            count: 11,
            limit: 10
        })
    );
    // No count: one member, nil for an absent key.
    let one = sets(
        "none",
        SetOp::RandMember {
            count: None,
            seed: 1,
        },
    );
    assert_eq!(run(&mut first, one), Ok(Outcome::Value(None)));
    let pop_one = sets(
        "none",
        SetOp::Pop {
            count: None,
            seed: 1,
        },
    );
    assert_eq!(run(&mut first, pop_one), Ok(Outcome::Value(None)));
    let field = hash(
        "none",
        HashOp::RandField {
            count: Some(3),
            with_values: true,
            seed: 1,
        },
    );
    assert_eq!(run(&mut first, field), Ok(Outcome::Values(vec![])));
}

#[test]
fn the_wrong_type_is_refused_everywhere_and_changes_nothing() {
    let mut store = store();
    run(
        &mut store,
        Op::Put {
            key: b"str".to_vec(),
            value: b"1".to_vec(),
            ttl_ms: None,
        },
    )
    .expect("put");
    run(&mut store, hset("h", &[("f", "v")])).expect("hset");
    run(
        &mut store,
        sets(
            "s",
            SetOp::Add {
                members: bytes(&["m"]),
            },
        ),
    )
    .expect("sadd");
    let before = store.snapshot();
    let refused = [
        hset("str", &[("f", "v")]),
        hash(
            "str",
            HashOp::Get {
                field: b"f".to_vec(),
            },
        ),
        sets(
            "h",
            SetOp::Add {
                members: bytes(&["m"]),
            },
        ),
        sets("h", SetOp::Card),
        hash("s", HashOp::Len),
        Op::Get { key: b"h".to_vec() },
        Op::Append {
            key: b"s".to_vec(),
            value: b"x".to_vec(),
        },
        Op::Increment {
            key: b"h".to_vec(),
            delta: 1,
        },
        Op::IncrementFloat {
            key: b"h".to_vec(),
            delta: Float(1.0),
        },
        Op::Strlen { key: b"s".to_vec() },
        Op::GetRange {
            key: b"s".to_vec(),
            start: 0,
            end: -1,
        },
        Op::SetRange {
            key: b"h".to_vec(),
            offset: 0,
            value: b"x".to_vec(),
        },
        Op::GetDel { key: b"h".to_vec() },
        Op::CompareAndSet {
            key: b"h".to_vec(),
            expected: None,
            value: b"x".to_vec(),
            ttl_ms: None,
        },
    ];
    for op in refused {
        assert_eq!(run(&mut store, op.clone()), Err(Error::WrongType), "{op:?}");
    }
    let after = Store::restore(&store.snapshot()).expect("restores");
    let entries = |store: &Store| {
        store
            .entries(0)
            .map(|entry| (entry.key.to_vec(), entry.value.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        entries(&after),
        entries(&Store::restore(&before).expect("restores"))
    );
    // Type-independent commands work on every type; PUT replaces.
    assert_eq!(
        run(&mut store, Op::Type { key: b"h".to_vec() }),
        Ok(Outcome::Value(Some(b"hash".to_vec())))
    );
    assert_eq!(
        run(
            &mut store,
            Op::Type {
                key: b"str".to_vec()
            }
        ),
        Ok(Outcome::Value(Some(b"string".to_vec())))
    );
    assert_eq!(
        run(&mut store, Op::Delete { key: b"s".to_vec() }),
        Ok(Outcome::Deleted(true))
    );
    run(
        &mut store,
        Op::Put {
            key: b"h".to_vec(),
            value: b"v".to_vec(),
            ttl_ms: None,
        },
    )
    .expect("put");
    assert_eq!(
        run(&mut store, Op::Type { key: b"h".to_vec() }),
        Ok(Outcome::Value(Some(b"string".to_vec())))
    );
}

#[test]
fn collection_limits_refuse_and_change_nothing() {
    let mut store = store();
    let limits = Limits {
        max_collection_elements: 3,
        max_value_bytes: 16,
        ..Limits::default()
    };
    let add = |members: &[&str]| {
        sets(
            "s",
            SetOp::Add {
                members: bytes(members),
            },
        )
    };
    assert_eq!(
        run_with(&mut store, add(&["a", "b"]), &limits),
        Ok(Outcome::Integer(2))
    );
    assert_eq!(
        run_with(&mut store, add(&["a", "c", "d"]), &limits),
        Err(Error::TooManyElements { count: 4, limit: 3 })
    );
    assert_eq!(
        run_with(&mut store, sets("s", SetOp::Card), &limits),
        Ok(Outcome::Integer(2))
    );
    // Re-adding present members adds nothing and passes.
    assert_eq!(
        run_with(&mut store, add(&["a", "b", "c"]), &limits),
        Ok(Outcome::Integer(1))
    );
    // A command carrying more than the value limit in total is refused.
    assert!(matches!(
        run_with(
            &mut store,
            hset("h", &[("0123456789", "0123456789")]),
            &limits
        ),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(
        run_with(&mut store, Op::Type { key: b"h".to_vec() }, &limits),
        Ok(Outcome::Value(None))
    );
}
