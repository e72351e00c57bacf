//! List operations on a store: Redis 7's answers (checked against
//! redis-server 7.0.15 by hand and in tests/python/test_types.py), reads
//! identical through the log and the read path, refusals changing
//! nothing, and a property test against a plain `Vec` model with the
//! byte accounting checked after every operation.

use api::{End, Error, Limits, ListOp, Op, Outcome, execute, read};
use cache::{Store, StoreConfig};
use proptest::prelude::*;

fn store() -> Store {
    Store::new(StoreConfig::new(1 << 20))
}

fn run_with(store: &mut Store, op: Op, limits: &Limits) -> Result<Outcome, Error> {
    let answer = if op.is_read() {
        let by_read = read(store, &op, limits, 0);
        let by_log = execute(store, &op, limits, 0);
        assert_eq!(by_read, by_log, "{op:?} through the log and the read path");
        by_log
    } else {
        execute(store, &op, limits, 0)
    };
    store.check_invariants().expect("store invariants");
    answer
}

fn run(store: &mut Store, op: Op) -> Result<Outcome, Error> {
    run_with(store, op, &Limits::default())
}

fn list(key: &str, op: ListOp) -> Op {
    Op::List {
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

fn push(key: &str, end: End, items: &[&str]) -> Op {
    list(
        key,
        ListOp::Push {
            end,
            elements: bytes(items),
            only_existing: false,
        },
    )
}

fn range(store: &mut Store, key: &str) -> Outcome {
    run(store, list(key, ListOp::Range { start: 0, stop: -1 })).expect("range")
}

#[test]
fn pushes_pops_and_ranges_answer_as_redis() {
    let mut store = store();
    assert_eq!(
        run(&mut store, push("l", End::Left, &["a", "b"])),
        Ok(Outcome::Integer(2))
    );
    assert_eq!(
        run(&mut store, push("l", End::Right, &["c", "d"])),
        Ok(Outcome::Integer(4))
    );
    assert_eq!(range(&mut store, "l"), values(&["b", "a", "c", "d"]));
    for (start, stop, expected) in [
        (1, 2, vec!["a", "c"]),
        (-2, -1, vec!["c", "d"]),
        (-100, 100, vec!["b", "a", "c", "d"]),
        (3, 1, vec![]),
        (5, 10, vec![]),
        (0, -5, vec![]),
    ] {
        assert_eq!(
            run(&mut store, list("l", ListOp::Range { start, stop })),
            Ok(values(&expected)),
            "LRANGE {start} {stop}"
        );
    }
    assert_eq!(
        run(&mut store, list("l", ListOp::Index { index: -1 })),
        Ok(Outcome::Value(Some(b"d".to_vec())))
    );
    assert_eq!(
        run(&mut store, list("l", ListOp::Index { index: 4 })),
        Ok(Outcome::Value(None))
    );
    assert_eq!(
        run(&mut store, list("l", ListOp::Len)),
        Ok(Outcome::Integer(4))
    );
    assert_eq!(
        run(
            &mut store,
            list(
                "l",
                ListOp::Pop {
                    end: End::Right,
                    count: None
                }
            )
        ),
        Ok(Outcome::Value(Some(b"d".to_vec())))
    );
    assert_eq!(
        run(
            &mut store,
            list(
                "l",
                ListOp::Pop {
                    end: End::Left,
                    count: Some(0)
                }
            )
        ),
        Ok(values(&[]))
    );
    assert_eq!(
        run(
            &mut store,
            list(
                "l",
                ListOp::Pop {
                    end: End::Left,
                    count: Some(10)
                }
            )
        ),
        Ok(values(&["b", "a", "c"]))
    );
    assert_eq!(store.kind(b"l", 0), None, "an emptied list is removed");
    assert_eq!(
        run(
            &mut store,
            list(
                "l",
                ListOp::Pop {
                    end: End::Left,
                    count: Some(2)
                }
            )
        ),
        Ok(Outcome::Value(None)),
        "a pop with a count of an absent key is nil"
    );
    assert_eq!(
        run(
            &mut store,
            list(
                "l",
                ListOp::Push {
                    end: End::Left,
                    elements: bytes(&["x"]),
                    only_existing: true
                }
            )
        ),
        Ok(Outcome::Integer(0))
    );
    assert_eq!(store.kind(b"l", 0), None, "LPUSHX creates nothing");
}

#[test]
fn set_insert_rem_trim_and_pos_answer_as_redis() {
    let mut store = store();
    assert_eq!(
        run(
            &mut store,
            list(
                "nokey",
                ListOp::Set {
                    index: 0,
                    element: b"x".to_vec()
                }
            )
        ),
        Err(Error::NoSuchKey)
    );
    run(
        &mut store,
        push("l", End::Right, &["a", "b", "c", "a", "b"]),
    )
    .expect("push");
    assert_eq!(
        run(
            &mut store,
            list(
                "l",
                ListOp::Set {
                    index: 5,
                    element: b"x".to_vec()
                }
            )
        ),
        Err(Error::IndexOutOfRange)
    );
    assert_eq!(
        run(
            &mut store,
            list(
                "l",
                ListOp::Set {
                    index: -5,
                    element: b"A".to_vec()
                }
            )
        ),
        Ok(Outcome::Done)
    );
    let pos = |element: &str, rank: i64, count: u64, max_len: u64| {
        list(
            "l",
            ListOp::Pos {
                element: element.as_bytes().to_vec(),
                rank,
                count,
                max_len,
            },
        )
    };
    // A b c a b
    assert_eq!(
        run(&mut store, pos("b", 1, 0, 0)),
        Ok(Outcome::Integers(vec![1, 4]))
    );
    assert_eq!(
        run(&mut store, pos("b", -1, 1, 0)),
        Ok(Outcome::Integers(vec![4]))
    );
    assert_eq!(
        run(&mut store, pos("b", 2, 1, 0)),
        Ok(Outcome::Integers(vec![4]))
    );
    assert_eq!(
        run(&mut store, pos("b", 1, 0, 2)),
        Ok(Outcome::Integers(vec![1]))
    );
    assert_eq!(
        run(&mut store, pos("b", i64::MIN, 1, 0)),
        Ok(Outcome::Integers(vec![4])),
        "Redis 7.0 reads RANK -2^63 as -1"
    );
    let insert = |before: bool, pivot: &str| {
        list(
            "l",
            ListOp::Insert {
                before,
                pivot: pivot.as_bytes().to_vec(),
                element: b"x".to_vec(),
            },
        )
    };
    assert_eq!(
        run(&mut store, insert(true, "zz")),
        Ok(Outcome::Integer(-1))
    );
    assert_eq!(run(&mut store, insert(false, "b")), Ok(Outcome::Integer(6)));
    assert_eq!(run(&mut store, insert(true, "A")), Ok(Outcome::Integer(7)));
    assert_eq!(
        range(&mut store, "l"),
        values(&["x", "A", "b", "x", "c", "a", "b"])
    );
    let rem = |count: i64, element: &str| {
        list(
            "l",
            ListOp::Rem {
                count,
                element: element.as_bytes().to_vec(),
            },
        )
    };
    assert_eq!(run(&mut store, rem(-1, "x")), Ok(Outcome::Integer(1)));
    assert_eq!(
        range(&mut store, "l"),
        values(&["x", "A", "b", "c", "a", "b"])
    );
    assert_eq!(run(&mut store, rem(0, "b")), Ok(Outcome::Integer(2)));
    assert_eq!(range(&mut store, "l"), values(&["x", "A", "c", "a"]));
    assert_eq!(
        run(&mut store, list("l", ListOp::Trim { start: 1, stop: -2 })),
        Ok(Outcome::Done)
    );
    assert_eq!(range(&mut store, "l"), values(&["A", "c"]));
    assert_eq!(
        run(&mut store, list("l", ListOp::Trim { start: 5, stop: 10 })),
        Ok(Outcome::Done)
    );
    assert_eq!(store.kind(b"l", 0), None, "an empty trim removes the key");
    assert_eq!(
        run(&mut store, insert(true, "A")),
        Ok(Outcome::Integer(0)),
        "LINSERT on an absent key"
    );
}

#[test]
fn moves_rotate_and_check_the_destination_first() {
    let mut store = store();
    run(&mut store, push("a", End::Right, &["1", "2", "3"])).expect("push");
    let mv = |source: &str, destination: &str, from: End, to: End| {
        list(
            source,
            ListOp::Move {
                destination: destination.as_bytes().to_vec(),
                from,
                to,
            },
        )
    };
    assert_eq!(
        run(&mut store, mv("a", "a", End::Right, End::Left)),
        Ok(Outcome::Value(Some(b"3".to_vec())))
    );
    assert_eq!(range(&mut store, "a"), values(&["3", "1", "2"]));
    assert_eq!(
        run(&mut store, mv("a", "b", End::Left, End::Right)),
        Ok(Outcome::Value(Some(b"3".to_vec())))
    );
    assert_eq!(range(&mut store, "b"), values(&["3"]));
    assert_eq!(
        run(&mut store, mv("none", "b", End::Left, End::Right)),
        Ok(Outcome::Value(None))
    );
    store.put(b"s", b"str".to_vec(), None, 0).expect("put");
    let before = store.used_bytes();
    assert_eq!(
        run(&mut store, mv("a", "s", End::Left, End::Right)),
        Err(Error::WrongType)
    );
    assert_eq!(store.used_bytes(), before, "a refused move changes nothing");
    assert_eq!(range(&mut store, "a"), values(&["1", "2"]));
    assert_eq!(
        run(&mut store, mv("s", "a", End::Left, End::Right)),
        Err(Error::WrongType)
    );
    // The destination at the element limit: refused, nothing moved.
    let limits = Limits {
        max_collection_elements: 1,
        ..Limits::default()
    };
    assert!(matches!(
        run_with(&mut store, mv("a", "b", End::Left, End::Right), &limits),
        Err(Error::TooManyElements { .. })
    ));
    assert_eq!(range(&mut store, "a"), values(&["1", "2"]));
    assert_eq!(
        Op::List {
            key: b"a".to_vec(),
            op: ListOp::Move {
                destination: b"b".to_vec(),
                from: End::Left,
                to: End::Left
            }
        }
        .keys()
        .collect::<Vec<_>>(),
        vec![b"a".as_slice(), b"b".as_slice()]
    );
}

#[test]
fn wrong_types_and_limits_are_refused_without_change() {
    let mut store = store();
    store.put(b"s", b"str".to_vec(), None, 0).expect("put");
    for op in [
        push("s", End::Left, &["x"]),
        list("s", ListOp::Len),
        list("s", ListOp::Range { start: 0, stop: -1 }),
        list(
            "s",
            ListOp::Pop {
                end: End::Left,
                count: None,
            },
        ),
        list(
            "s",
            ListOp::Set {
                index: 0,
                element: b"x".to_vec(),
            },
        ),
    ] {
        assert_eq!(run(&mut store, op.clone()), Err(Error::WrongType), "{op:?}");
    }
    let limits = Limits {
        max_collection_elements: 3,
        ..Limits::default()
    };
    run_with(&mut store, push("l", End::Left, &["a", "b"]), &limits).expect("push");
    assert!(matches!(
        run_with(&mut store, push("l", End::Left, &["c", "d"]), &limits),
        Err(Error::TooManyElements { count: 4, limit: 3 })
    ));
    assert_eq!(range(&mut store, "l"), values(&["b", "a"]));
    // A value carrying more bytes than the value limit in total.
    let limits = Limits {
        max_value_bytes: 4,
        ..Limits::default()
    };
    assert!(matches!(
        run_with(&mut store, push("l", End::Left, &["abc", "de"]), &limits),
        Err(Error::TooLarge { .. })
    ));
    // The store's bytes follow the list as it grows and shrinks.
    let empty = store.used_bytes();
    run(&mut store, push("l", End::Left, &["0123456789"])).expect("push");
    assert_eq!(
        store.used_bytes(),
        empty + 10 + cache::store::value::LIST_ELEMENT_OVERHEAD_BYTES
    );
    run(
        &mut store,
        list(
            "l",
            ListOp::Pop {
                end: End::Left,
                count: None,
            },
        ),
    )
    .expect("pop");
    assert_eq!(store.used_bytes(), empty);
}

/// A list operation on keys `a` and `b` with small elements.
fn arbitrary_op() -> impl Strategy<Value = (bool, ListOp)> {
    let element = prop::sample::select(vec![b"x".to_vec(), b"y".to_vec(), b"zz".to_vec()]);
    let end = prop::sample::select(vec![End::Left, End::Right]);
    let index = -6i64..6;
    prop_oneof![
        (
            end.clone(),
            prop::collection::vec(element.clone(), 1..4),
            any::<bool>()
        )
            .prop_map(|(end, elements, only_existing)| ListOp::Push {
                end,
                elements,
                only_existing
            }),
        (end.clone(), prop::option::of(0u64..4))
            .prop_map(|(end, count)| ListOp::Pop { end, count }),
        index.clone().prop_map(|index| ListOp::Index { index }),
        (index.clone(), index.clone()).prop_map(|(start, stop)| ListOp::Range { start, stop }),
        (index.clone(), element.clone())
            .prop_map(|(index, element)| ListOp::Set { index, element }),
        (-3i64..3, element.clone()).prop_map(|(count, element)| ListOp::Rem { count, element }),
        (index.clone(), index.clone()).prop_map(|(start, stop)| ListOp::Trim { start, stop }),
        (any::<bool>(), element.clone(), element.clone()).prop_map(|(before, pivot, element)| {
            ListOp::Insert {
                before,
                pivot,
                element,
            }
        }),
        (element, prop_oneof![-3i64..0, 1i64..3], 0u64..3, 0u64..4).prop_map(
            |(element, rank, count, max_len)| ListOp::Pos {
                element,
                rank,
                count,
                max_len
            }
        ),
        (any::<bool>(), end.clone(), end.clone()).prop_map(|(other, from, to)| ListOp::Move {
            destination: if other { b"b".to_vec() } else { b"a".to_vec() },
            from,
            to
        }),
        (prop::collection::vec(any::<bool>(), 0..3), end, 1u64..4).prop_map(
            |(others, end, count)| ListOp::MultiPop {
                others: others
                    .into_iter()
                    .map(|on_b| if on_b { b"b".to_vec() } else { b"a".to_vec() })
                    .collect(),
                end,
                count,
            }
        ),
    ]
    .prop_flat_map(|op| (any::<bool>(), Just(op)))
}

/// The plain model: Redis's rules written directly on `Vec`s.
fn model(lists: &mut [Vec<Vec<u8>>; 2], on_b: bool, op: &ListOp) -> Result<Outcome, Error> {
    let me = usize::from(on_b);
    let norm = |index: i64, len: usize| -> Option<usize> {
        let i = if index < 0 { index + len as i64 } else { index };
        (i >= 0 && i < len as i64).then_some(i as usize)
    };
    let span = |start: i64, stop: i64, len: usize| -> Vec<usize> {
        let len = len as i64;
        let start = if start < 0 {
            (start + len).max(0)
        } else {
            start
        };
        let stop = if stop < 0 {
            stop + len
        } else {
            stop.min(len - 1)
        };
        (start..=stop).map(|i| i as usize).collect()
    };
    let some = |v: &Vec<u8>| Some(v.clone());
    let list = &mut lists[me];
    Ok(match op {
        ListOp::Push {
            end,
            elements,
            only_existing,
        } => {
            if *only_existing && list.is_empty() {
                return Ok(Outcome::Integer(0));
            }
            for element in elements {
                match end {
                    End::Left => list.insert(0, element.clone()),
                    End::Right => list.push(element.clone()),
                }
            }
            Outcome::Integer(list.len() as i64)
        }
        ListOp::Pop { end, count } => {
            if list.is_empty() {
                return Ok(Outcome::Value(None));
            }
            let mut popped = Vec::new();
            for _ in 0..count.unwrap_or(1) {
                if list.is_empty() {
                    break;
                }
                popped.push(Some(match end {
                    End::Left => list.remove(0),
                    End::Right => list.pop().expect("non-empty"),
                }));
            }
            match count {
                None => Outcome::Value(popped.pop().flatten()),
                Some(_) => Outcome::Values(popped),
            }
        }
        ListOp::Len => Outcome::Integer(list.len() as i64),
        ListOp::Index { index } => {
            Outcome::Value(norm(*index, list.len()).map(|i| list[i].clone()))
        }
        ListOp::Range { start, stop } => Outcome::Values(
            span(*start, *stop, list.len())
                .into_iter()
                .map(|i| some(&list[i]))
                .collect(),
        ),
        ListOp::Set { index, element } => {
            if list.is_empty() {
                return Err(Error::NoSuchKey);
            }
            let i = norm(*index, list.len()).ok_or(Error::IndexOutOfRange)?;
            list[i] = element.clone();
            Outcome::Done
        }
        ListOp::Rem { count, element } => {
            let mut positions: Vec<usize> =
                (0..list.len()).filter(|&i| list[i] == *element).collect();
            if *count < 0 {
                positions.reverse();
            }
            if *count != 0 {
                positions.truncate(count.unsigned_abs() as usize);
            }
            positions.sort_unstable();
            for &i in positions.iter().rev() {
                list.remove(i);
            }
            Outcome::Integer(positions.len() as i64)
        }
        ListOp::Trim { start, stop } => {
            let kept: Vec<Vec<u8>> = span(*start, *stop, list.len())
                .into_iter()
                .map(|i| list[i].clone())
                .collect();
            *list = kept;
            Outcome::Done
        }
        ListOp::Insert {
            before,
            pivot,
            element,
        } => {
            if list.is_empty() {
                return Ok(Outcome::Integer(0));
            }
            match list.iter().position(|item| item == pivot) {
                None => Outcome::Integer(-1),
                Some(i) => {
                    list.insert(if *before { i } else { i + 1 }, element.clone());
                    Outcome::Integer(list.len() as i64)
                }
            }
        }
        ListOp::Pos {
            element,
            rank,
            count,
            max_len,
        } => {
            let mut order: Vec<usize> = (0..list.len()).collect();
            if *rank < 0 {
                order.reverse();
            }
            if *max_len > 0 {
                order.truncate(*max_len as usize);
            }
            let matches: Vec<i64> = order
                .into_iter()
                .filter(|&i| list[i] == *element)
                .skip(rank.unsigned_abs() as usize - 1)
                .take(if *count == 0 {
                    usize::MAX
                } else {
                    *count as usize
                })
                .map(|i| i as i64)
                .collect();
            Outcome::Integers(matches)
        }
        ListOp::Move {
            destination,
            from,
            to,
        } => {
            if list.is_empty() {
                return Ok(Outcome::Value(None));
            }
            let element = match from {
                End::Left => list.remove(0),
                End::Right => list.pop().expect("non-empty"),
            };
            let target = &mut lists[usize::from(destination == b"b")];
            match to {
                End::Left => target.insert(0, element.clone()),
                End::Right => target.push(element.clone()),
            }
            Outcome::Value(Some(element))
        }
        ListOp::MultiPop { others, end, count } => {
            let candidates =
                std::iter::once(me).chain(others.iter().map(|key| usize::from(key == b"b")));
            for candidate in candidates {
                let list = &mut lists[candidate];
                if list.is_empty() {
                    continue;
                }
                let mut values = Vec::new();
                while values.len() < *count as usize && !list.is_empty() {
                    values.push(match end {
                        End::Left => list.remove(0),
                        End::Right => list.pop().expect("non-empty"),
                    });
                }
                let key = if candidate == 1 {
                    b"b".to_vec()
                } else {
                    b"a".to_vec()
                };
                return Ok(Outcome::KeyValues { key, values });
            }
            Outcome::Value(None)
        }
    })
}

proptest! {
    #[test]
    fn lists_match_the_plain_model(ops in prop::collection::vec(arbitrary_op(), 1..60)) {
        let mut store = store();
        let mut lists: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
        for (on_b, op) in ops {
            let key = if on_b { "b" } else { "a" };
            let expected = model(&mut lists, on_b, &op);
            let got = run(&mut store, list(key, op.clone()));
            prop_assert_eq!(&got, &expected, "{:?} on {}", op, key);
            for (name, items) in [("a", &lists[0]), ("b", &lists[1])] {
                let stored = range(&mut store, name);
                prop_assert_eq!(
                    stored,
                    Outcome::Values(items.iter().map(|i| Some(i.clone())).collect())
                );
                let expected_kind = (!items.is_empty()).then_some(cache::store::Kind::List);
                prop_assert_eq!(store.kind(name.as_bytes(), 0), expected_kind);
            }
        }
    }
}
