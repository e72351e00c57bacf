//! Sorted-set operations on a store: Redis 7.0's answers, a property test
//! against a `BTreeMap` model with the store's byte count checked after
//! every operation, refused operations changing nothing, and the
//! multi-key stores.

use std::collections::BTreeMap;

use api::{
    Aggregate, Combination, Error, Float, Limits, Op, Outcome, SetOp, ZAddCondition, ZRange,
    ZSetOp, execute, read,
};
use cache::store::ENTRY_OVERHEAD_BYTES;
use cache::store::value::{LexBound, ScoreBound, ZSET_MEMBER_OVERHEAD_BYTES, ZSetValue};
use cache::store::{Kind, Value};
use cache::{Store, StoreConfig};
use proptest::prelude::*;

fn store() -> Store {
    Store::new(StoreConfig::new(1 << 22))
}

/// Runs `op`; a read is also run on the read path and must agree.
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

fn run(store: &mut Store, op: Op) -> Result<Outcome, Error> {
    run_with(store, op, &Limits::default())
}

fn zset(key: &str, op: ZSetOp) -> Op {
    Op::ZSet {
        key: key.into(),
        op,
    }
}

fn add(key: &str, entries: &[(f64, &str)]) -> Op {
    add_with(key, entries, ZAddCondition::default(), false, false)
}

fn add_with(
    key: &str,
    entries: &[(f64, &str)],
    condition: ZAddCondition,
    changed: bool,
    increment: bool,
) -> Op {
    zset(
        key,
        ZSetOp::Add {
            entries: entries
                .iter()
                .map(|(score, member)| (Float(*score), member.as_bytes().to_vec()))
                .collect(),
            condition,
            changed,
            increment,
        },
    )
}

fn scored(items: &[(&str, f64)]) -> Outcome {
    Outcome::Scored(
        items
            .iter()
            .map(|(member, score)| (member.as_bytes().to_vec(), Float(*score)))
            .collect(),
    )
}

fn range(key: &str, range: ZRange, reverse: bool, limit: Option<(i64, i64)>) -> Op {
    zset(
        key,
        ZSetOp::Range {
            range,
            reverse,
            limit,
        },
    )
}

fn rank(start: i64, stop: i64) -> ZRange {
    ZRange::Rank { start, stop }
}

#[test]
fn zadd_options_answer_as_redis() {
    let mut store = store();
    // Phase 1: plain adds, duplicates in one command (the last wins).
    assert_eq!(
        run(&mut store, add("z", &[(1.0, "a"), (2.0, "b"), (3.0, "a")])),
        Ok(Outcome::Integer(2))
    );
    assert_eq!(
        run(&mut store, range("z", rank(0, -1), false, None)),
        Ok(scored(&[("b", 2.0), ("a", 3.0)]))
    );
    // Phase 2: CH counts updates; an unchanged score is no update.
    let ch = |entries: &[(f64, &str)], condition| add_with("z", entries, condition, true, false);
    assert_eq!(
        run(
            &mut store,
            ch(
                &[(2.0, "b"), (5.0, "a"), (0.0, "c")],
                ZAddCondition::default()
            )
        ),
        Ok(Outcome::Integer(2))
    );
    // Phase 3: NX adds only, XX updates only, GT/LT only in their direction.
    let nx = ZAddCondition {
        only_new: true,
        ..ZAddCondition::default()
    };
    let xx = ZAddCondition {
        only_existing: true,
        ..ZAddCondition::default()
    };
    let gt = ZAddCondition {
        only_greater: true,
        ..ZAddCondition::default()
    };
    let lt = ZAddCondition {
        only_less: true,
        ..ZAddCondition::default()
    };
    assert_eq!(
        run(&mut store, ch(&[(9.0, "a"), (1.0, "d")], nx)),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(&mut store, ch(&[(9.0, "a"), (1.0, "e")], xx)),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(&mut store, ch(&[(1.0, "a"), (1.0, "f")], gt)),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(&mut store, ch(&[(1.0, "a"), (9.0, "b")], lt)),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(
            &mut store,
            zset(
                "z",
                ZSetOp::Scores {
                    members: vec![b"a".to_vec(), b"b".to_vec(), b"e".to_vec()]
                }
            )
        ),
        Ok(Outcome::Scores(vec![
            Some(Float(1.0)),
            Some(Float(2.0)),
            None
        ]))
    );
    // Phase 4: INCR answers the new score, nil when a condition stops it,
    // and XX on an absent key creates nothing.
    let incr = |delta: f64, member: &str, condition| {
        add_with("z", &[(delta, member)], condition, false, true)
    };
    assert_eq!(
        run(&mut store, incr(2.5, "a", ZAddCondition::default())),
        Ok(Outcome::Scores(vec![Some(Float(3.5))]))
    );
    assert_eq!(
        run(&mut store, incr(1.0, "a", nx)),
        Ok(Outcome::Scores(vec![None]))
    );
    assert_eq!(
        run(&mut store, incr(-1.0, "a", gt)),
        Ok(Outcome::Scores(vec![None]))
    );
    assert_eq!(
        run(
            &mut store,
            add_with("absent", &[(1.0, "a")], xx, false, true)
        ),
        Ok(Outcome::Scores(vec![None]))
    );
    assert_eq!(store.kind(b"absent", 0), None);
    // Phase 5: -0 is stored as 0; inf is a score.
    run(
        &mut store,
        add("zero", &[(-0.0, "m"), (f64::INFINITY, "top")]),
    )
    .expect("adds");
    assert_eq!(
        run(&mut store, range("zero", rank(0, -1), false, None)),
        Ok(scored(&[("m", 0.0), ("top", f64::INFINITY)]))
    );
    let Ok(Outcome::Scored(found)) = run(&mut store, range("zero", rank(0, 0), false, None)) else {
        panic!("a range answers members");
    };
    assert!(found[0].1.0.is_sign_positive(), "-0 reads back as 0");
}

#[test]
fn a_nan_sum_and_a_full_set_are_refused_and_change_nothing() {
    let mut store = store();
    run(&mut store, add("z", &[(f64::INFINITY, "a")])).expect("adds");
    let held = |store: &Store| {
        (
            store.peek_value(b"z", 0).cloned(),
            store.peek_value(b"s", 0).cloned(),
            store.used_bytes(),
        )
    };
    let before = held(&store);
    assert_eq!(
        run(
            &mut store,
            add_with(
                "z",
                &[(f64::NEG_INFINITY, "a")],
                ZAddCondition::default(),
                false,
                true
            )
        ),
        Err(Error::NotFinite)
    );
    let limits = Limits {
        max_collection_elements: 2,
        ..Limits::default()
    };
    assert!(matches!(
        run_with(&mut store, add("z", &[(1.0, "b"), (2.0, "c")]), &limits),
        Err(Error::TooManyElements { count: 3, limit: 2 })
    ));
    assert_eq!(held(&store), before);
    let put = Op::Put {
        key: b"s".to_vec(),
        value: b"v".to_vec(),
        ttl_ms: None,
    };
    assert_eq!(run(&mut store, put), Ok(Outcome::Done));
    let before = held(&store);
    assert_eq!(
        run(&mut store, add("s", &[(1.0, "a")])),
        Err(Error::WrongType)
    );
    assert_eq!(
        run(&mut store, zset("s", ZSetOp::Card)),
        Err(Error::WrongType)
    );
    assert_eq!(held(&store), before);
}

#[test]
fn ranges_by_score_and_member_with_limit_and_reverse() {
    let mut store = store();
    run(
        &mut store,
        add(
            "z",
            &[(1.0, "a"), (2.0, "b"), (2.0, "c"), (3.0, "d"), (4.0, "e")],
        ),
    )
    .expect("adds");
    let by_score = |min, max| ZRange::Score { min, max };
    use ScoreBound::{Exclusive, Inclusive};
    assert_eq!(
        run(
            &mut store,
            range(
                "z",
                by_score(Exclusive(1.0), Inclusive(3.0)),
                false,
                Some((1, 2))
            )
        ),
        Ok(scored(&[("c", 2.0), ("d", 3.0)]))
    );
    assert_eq!(
        run(
            &mut store,
            range(
                "z",
                by_score(Inclusive(2.0), Inclusive(f64::INFINITY)),
                true,
                Some((0, -1))
            )
        ),
        Ok(scored(&[("e", 4.0), ("d", 3.0), ("c", 2.0), ("b", 2.0)]))
    );
    assert_eq!(
        run(
            &mut store,
            range(
                "z",
                by_score(Inclusive(0.0), Inclusive(9.0)),
                false,
                Some((-1, 3))
            )
        ),
        Ok(scored(&[]))
    );
    assert_eq!(
        run(&mut store, range("z", rank(-2, -1), true, None)),
        Ok(scored(&[("b", 2.0), ("a", 1.0)]))
    );
    assert_eq!(
        run(
            &mut store,
            zset(
                "z",
                ZSetOp::Count {
                    range: by_score(Exclusive(1.0), Exclusive(4.0))
                }
            )
        ),
        Ok(Outcome::Integer(3))
    );
    assert_eq!(
        run(
            &mut store,
            zset(
                "z",
                ZSetOp::Rank {
                    member: b"d".to_vec(),
                    reverse: true
                }
            )
        ),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(
        run(
            &mut store,
            zset(
                "z",
                ZSetOp::Rank {
                    member: b"x".to_vec(),
                    reverse: false
                }
            )
        ),
        Ok(Outcome::Value(None))
    );
    run(
        &mut store,
        add("lex", &[(0.0, "a"), (0.0, "b"), (0.0, "c"), (0.0, "d")]),
    )
    .expect("adds");
    let lex = |min, max| ZRange::Lex { min, max };
    assert_eq!(
        run(
            &mut store,
            range(
                "lex",
                lex(LexBound::Exclusive(b"a".to_vec()), LexBound::Highest),
                true,
                Some((1, 5))
            )
        ),
        Ok(scored(&[("c", 0.0), ("b", 0.0)]))
    );
    assert_eq!(
        run(
            &mut store,
            zset(
                "lex",
                ZSetOp::RemRange {
                    range: lex(LexBound::Lowest, LexBound::Inclusive(b"b".to_vec()))
                }
            )
        ),
        Ok(Outcome::Integer(2))
    );
    assert_eq!(
        run(
            &mut store,
            zset(
                "z",
                ZSetOp::Pop {
                    highest: true,
                    count: Some(2)
                }
            )
        ),
        Ok(scored(&[("e", 4.0), ("d", 3.0)]))
    );
    assert_eq!(
        run(
            &mut store,
            zset("z", ZSetOp::RemRange { range: rank(0, -1) })
        ),
        Ok(Outcome::Integer(3))
    );
    assert_eq!(store.kind(b"z", 0), None, "an emptied set is removed");
}

#[test]
fn stores_combine_weights_aggregates_and_plain_sets() {
    let mut store = store();
    run(
        &mut store,
        add("{t}a", &[(1.0, "x"), (2.0, "y"), (f64::INFINITY, "z")]),
    )
    .expect("adds");
    run(
        &mut store,
        add("{t}b", &[(10.0, "y"), (20.0, "w"), (1.0, "z")]),
    )
    .expect("adds");
    run(
        &mut store,
        Op::Sets {
            key: b"{t}s".to_vec(),
            op: SetOp::Add {
                members: vec![b"y".to_vec()],
            },
        },
    )
    .expect("adds");
    let store_op = |how, sources: &[&str], weights: &[f64], aggregate| {
        zset(
            "{t}d",
            ZSetOp::Store {
                how,
                sources: sources.iter().map(|key| key.as_bytes().to_vec()).collect(),
                weights: weights.iter().copied().map(Float).collect(),
                aggregate,
            },
        )
    };
    let all = range("{t}d", rank(0, -1), false, None);
    assert_eq!(
        run(
            &mut store,
            store_op(
                Combination::Union,
                &["{t}a", "{t}b"],
                &[2.0, 0.0],
                Aggregate::Sum
            )
        ),
        Ok(Outcome::Integer(4))
    );
    // inf × 2 + 1 × 0 = inf; 20 × 0 = 0.
    assert_eq!(
        run(&mut store, all.clone()),
        Ok(scored(&[
            ("w", 0.0),
            ("x", 2.0),
            ("y", 4.0),
            ("z", f64::INFINITY)
        ]))
    );
    assert_eq!(
        run(
            &mut store,
            store_op(
                Combination::Intersection,
                &["{t}a", "{t}b", "{t}s"],
                &[],
                Aggregate::Max
            )
        ),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(run(&mut store, all.clone()), Ok(scored(&[("y", 10.0)])));
    assert_eq!(
        run(
            &mut store,
            store_op(
                Combination::Difference,
                &["{t}a", "{t}b"],
                &[],
                Aggregate::Sum
            )
        ),
        Ok(Outcome::Integer(1))
    );
    assert_eq!(run(&mut store, all.clone()), Ok(scored(&[("x", 1.0)])));
    // inf + -inf is NaN: counted as 0.
    run(&mut store, add("{t}n", &[(f64::NEG_INFINITY, "z")])).expect("adds");
    run(
        &mut store,
        store_op(Combination::Union, &["{t}a", "{t}n"], &[], Aggregate::Sum),
    )
    .expect("stores");
    assert_eq!(
        run(
            &mut store,
            zset(
                "{t}d",
                ZSetOp::Scores {
                    members: vec![b"z".to_vec()]
                }
            )
        ),
        Ok(Outcome::Scores(vec![Some(Float(0.0))]))
    );
    // An empty result removes the destination; a string source is WRONGTYPE.
    assert_eq!(
        run(
            &mut store,
            store_op(
                Combination::Intersection,
                &["{t}a", "{t}absent"],
                &[],
                Aggregate::Sum
            )
        ),
        Ok(Outcome::Integer(0))
    );
    assert_eq!(store.kind(b"{t}d", 0), None);
    run(
        &mut store,
        Op::Put {
            key: b"{t}str".to_vec(),
            value: b"v".to_vec(),
            ttl_ms: None,
        },
    )
    .expect("puts");
    assert_eq!(
        run(
            &mut store,
            store_op(Combination::Union, &["{t}a", "{t}str"], &[], Aggregate::Sum)
        ),
        Err(Error::WrongType)
    );
    // ZRANGESTORE.
    let range_store = zset(
        "{t}r",
        ZSetOp::RangeStore {
            source: b"{t}b".to_vec(),
            range: ZRange::Score {
                min: ScoreBound::Inclusive(5.0),
                max: ScoreBound::Inclusive(f64::INFINITY),
            },
            reverse: false,
            limit: Some((0, 1)),
        },
    );
    assert_eq!(run(&mut store, range_store), Ok(Outcome::Integer(1)));
    assert_eq!(
        run(&mut store, range("{t}r", rank(0, -1), false, None)),
        Ok(scored(&[("y", 10.0)]))
    );
}

/// One random sorted-set operation for the model test.
#[derive(Debug, Clone)]
enum Step {
    Add(Vec<(i8, u8)>, u8, bool),
    Incr(i8, u8, u8),
    Rem(Vec<u8>),
    Pop(bool, u8),
    RemRank(i8, i8),
    RemScore(i8, i8),
    Range(i8, i8, bool),
    RangeScore(i8, i8, bool, i8, i8),
    Count(i8, i8),
    Rank(u8, bool),
}

fn member(index: u8) -> Vec<u8> {
    format!("m{}", index % 24)
        .repeat(1 + usize::from(index % 2))
        .into_bytes()
}

fn score(raw: i8) -> f64 {
    match raw {
        i8::MIN => f64::NEG_INFINITY,
        i8::MAX => f64::INFINITY,
        other => f64::from(other % 16) / 2.0,
    }
}

fn condition(bits: u8) -> ZAddCondition {
    // Only the combinations Redis accepts: NX alone, XX with GT or LT.
    match bits % 6 {
        0 => ZAddCondition::default(),
        1 => ZAddCondition {
            only_new: true,
            ..ZAddCondition::default()
        },
        2 => ZAddCondition {
            only_existing: true,
            ..ZAddCondition::default()
        },
        3 => ZAddCondition {
            only_greater: true,
            ..ZAddCondition::default()
        },
        4 => ZAddCondition {
            only_less: true,
            ..ZAddCondition::default()
        },
        _ => ZAddCondition {
            only_existing: true,
            only_greater: true,
            ..ZAddCondition::default()
        },
    }
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let entries = proptest::collection::vec((any::<i8>(), any::<u8>()), 1..5);
    proptest::collection::vec(
        prop_oneof![
            4 => (entries, any::<u8>(), any::<bool>()).prop_map(|(e, c, ch)| Step::Add(e, c, ch)),
            1 => (any::<i8>(), any::<u8>(), any::<u8>()).prop_map(|(d, m, c)| Step::Incr(d, m, c)),
            1 => proptest::collection::vec(any::<u8>(), 1..4).prop_map(Step::Rem),
            1 => (any::<bool>(), 0u8..4).prop_map(|(h, c)| Step::Pop(h, c)),
            1 => (any::<i8>(), any::<i8>()).prop_map(|(a, b)| Step::RemRank(a % 8, b % 8)),
            1 => (any::<i8>(), any::<i8>()).prop_map(|(a, b)| Step::RemScore(a, b)),
            2 => (any::<i8>(), any::<i8>(), any::<bool>()).prop_map(|(a, b, r)| Step::Range(a % 10, b % 10, r)),
            2 => (any::<i8>(), any::<i8>(), any::<bool>(), any::<i8>(), any::<i8>())
                .prop_map(|(a, b, r, o, c)| Step::RangeScore(a, b, r, o % 4, c % 4)),
            1 => (any::<i8>(), any::<i8>()).prop_map(|(a, b)| Step::Count(a, b)),
            1 => (any::<u8>(), any::<bool>()).prop_map(|(m, r)| Step::Rank(m, r)),
        ],
        1..60,
    )
}

type Model = BTreeMap<Vec<u8>, f64>;

fn ordered(model: &Model) -> Vec<(Vec<u8>, f64)> {
    let mut entries: Vec<(Vec<u8>, f64)> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
    entries.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    entries
}

fn model_outcome(entries: &[(Vec<u8>, f64)]) -> Outcome {
    Outcome::Scored(
        entries
            .iter()
            .map(|(m, s)| (m.clone(), Float(*s)))
            .collect(),
    )
}

/// Redis's rank span, written out again for the model.
fn model_span(start: i64, stop: i64, len: usize) -> Vec<usize> {
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
    if start > stop || start >= len {
        return Vec::new();
    }
    (start as usize..=stop as usize).collect()
}

/// Applies `step` to the model and answers what Redis would.
fn model_step(model: &mut Model, step: &Step) -> Outcome {
    let entries = ordered(model);
    let in_scores = |low: i8, high: i8| {
        let (low, high) = (score(low), score(high));
        entries
            .iter()
            .filter(|(_, s)| *s >= low && *s <= high)
            .cloned()
            .collect::<Vec<_>>()
    };
    match step {
        Step::Add(pairs, bits, ch) => {
            let condition = condition(*bits);
            let (mut added, mut updated) = (0, 0);
            for (raw, m) in pairs {
                let (new_score, m) = (score(*raw), member(*m));
                match model.get(&m).copied() {
                    None if condition.only_existing => {}
                    None => {
                        model.insert(m, if new_score == 0.0 { 0.0 } else { new_score });
                        added += 1;
                    }
                    Some(_) if condition.only_new => {}
                    Some(old) => {
                        let blocked = (condition.only_greater && new_score <= old)
                            || (condition.only_less && new_score >= old);
                        if !blocked && new_score != old {
                            model.insert(m, if new_score == 0.0 { 0.0 } else { new_score });
                            updated += 1;
                        }
                    }
                }
            }
            Outcome::Integer(if *ch { added + updated } else { added })
        }
        Step::Incr(delta, m, bits) => {
            let condition = condition(*bits);
            let m = member(*m);
            let old = model.get(&m).copied();
            let new_score = old.unwrap_or(0.0) + score(*delta);
            let allowed = match old {
                None => !condition.only_existing,
                Some(old) => {
                    let blocked = condition.only_new
                        || (condition.only_greater && new_score <= old)
                        || (condition.only_less && new_score >= old);
                    !blocked
                }
            };
            if allowed {
                model.insert(m, if new_score == 0.0 { 0.0 } else { new_score });
                Outcome::Scores(vec![Some(Float(if new_score == 0.0 {
                    0.0
                } else {
                    new_score
                }))])
            } else {
                Outcome::Scores(vec![None])
            }
        }
        Step::Rem(members) => {
            let mut removed = 0;
            for m in members {
                if model.remove(&member(*m)).is_some() {
                    removed += 1;
                }
            }
            Outcome::Integer(removed)
        }
        Step::Pop(highest, count) => {
            let mut chosen = entries.clone();
            if *highest {
                chosen.reverse();
            }
            chosen.truncate(usize::from(*count));
            for (m, _) in &chosen {
                model.remove(m);
            }
            model_outcome(&chosen)
        }
        Step::RemRank(start, stop) => {
            let ranks = model_span(i64::from(*start), i64::from(*stop), entries.len());
            for &rank in &ranks {
                model.remove(&entries[rank].0);
            }
            Outcome::Integer(ranks.len() as i64)
        }
        Step::RemScore(low, high) => {
            let doomed = in_scores(*low, *high);
            for (m, _) in &doomed {
                model.remove(m);
            }
            Outcome::Integer(doomed.len() as i64)
        }
        Step::Range(start, stop, reverse) => {
            let mut from = entries.clone();
            if *reverse {
                from.reverse();
            }
            let picked: Vec<_> = model_span(i64::from(*start), i64::from(*stop), from.len())
                .into_iter()
                .map(|rank| from[rank].clone())
                .collect();
            model_outcome(&picked)
        }
        Step::RangeScore(low, high, reverse, offset, count) => {
            let mut found = in_scores(*low, *high);
            if *reverse {
                found.reverse();
            }
            let picked: Vec<_> = if *offset < 0 {
                Vec::new()
            } else {
                let rest = found.into_iter().skip(*offset as usize);
                if *count < 0 {
                    rest.collect()
                } else {
                    rest.take(*count as usize).collect()
                }
            };
            model_outcome(&picked)
        }
        Step::Count(low, high) => Outcome::Integer(in_scores(*low, *high).len() as i64),
        Step::Rank(m, reverse) => {
            let m = member(*m);
            match entries.iter().position(|(other, _)| *other == m) {
                Some(rank) if *reverse => Outcome::Integer((entries.len() - 1 - rank) as i64),
                Some(rank) => Outcome::Integer(rank as i64),
                None => Outcome::Value(None),
            }
        }
    }
}

fn step_op(step: &Step) -> Op {
    let score_range = |low: i8, high: i8| ZRange::Score {
        min: ScoreBound::Inclusive(score(low)),
        max: ScoreBound::Inclusive(score(high)),
    };
    let op = match step {
        Step::Add(pairs, bits, ch) => ZSetOp::Add {
            entries: pairs
                .iter()
                .map(|(s, m)| (Float(score(*s)), member(*m)))
                .collect(),
            condition: condition(*bits),
            changed: *ch,
            increment: false,
        },
        Step::Incr(delta, m, bits) => ZSetOp::Add {
            entries: vec![(Float(score(*delta)), member(*m))],
            condition: condition(*bits),
            changed: false,
            increment: true,
        },
        Step::Rem(members) => ZSetOp::Rem {
            members: members.iter().map(|m| member(*m)).collect(),
        },
        Step::Pop(highest, count) => ZSetOp::Pop {
            highest: *highest,
            count: Some(u64::from(*count)),
        },
        Step::RemRank(start, stop) => ZSetOp::RemRange {
            range: rank(i64::from(*start), i64::from(*stop)),
        },
        Step::RemScore(low, high) => ZSetOp::RemRange {
            range: score_range(*low, *high),
        },
        Step::Range(start, stop, reverse) => ZSetOp::Range {
            range: rank(i64::from(*start), i64::from(*stop)),
            reverse: *reverse,
            limit: None,
        },
        Step::RangeScore(low, high, reverse, offset, count) => ZSetOp::Range {
            // Reverse ranges name the same bounds; the order flips.
            range: score_range(*low, *high),
            reverse: *reverse,
            limit: Some((i64::from(*offset), i64::from(*count))),
        },
        Step::Count(low, high) => ZSetOp::Count {
            range: score_range(*low, *high),
        },
        Step::Rank(m, reverse) => ZSetOp::Rank {
            member: member(*m),
            reverse: *reverse,
        },
    };
    zset("z", op)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sorted_set_operations_match_a_btreemap_model(steps in steps()) {
        let mut store = store();
        let mut model = Model::new();
        for step in &steps {
            let answer = run(&mut store, step_op(step));
            // A NaN sum is refused by the store and skipped by the model.
            if let Step::Incr(delta, m, _) = step {
                let old = model.get(&member(*m)).copied().unwrap_or(0.0);
                if (old + score(*delta)).is_nan() {
                    prop_assert_eq!(answer, Err(Error::NotFinite));
                    continue;
                }
            }
            let expected = model_step(&mut model, step);
            prop_assert_eq!(answer, Ok(expected), "{:?}", step);
            // The store's bytes are the model's, exactly.
            let held = store.peek_value(b"z", 0);
            let expected_bytes = if model.is_empty() {
                prop_assert!(held.is_none(), "an empty set is removed");
                0
            } else {
                let mut reference = ZSetValue::default();
                for (m, s) in &model {
                    reference.insert(m, *s);
                }
                let value = Value::ZSet(reference);
                prop_assert_eq!(held, Some(&value));
                // Key, entry overhead, and per member twice its bytes plus
                // the member overhead (the formula, not the code).
                1 + ENTRY_OVERHEAD_BYTES
                    + model
                        .keys()
                        .map(|m| 2 * m.len() as u64 + ZSET_MEMBER_OVERHEAD_BYTES)
                        .sum::<u64>()
            };
            prop_assert_eq!(store.used_bytes(), expected_bytes);
            prop_assert_eq!(store.check_invariants(), Ok(()));
            if !model.is_empty() {
                prop_assert_eq!(store.kind(b"z", 0), Some(Kind::ZSet));
            }
        }
    }
}
