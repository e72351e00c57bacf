//! The sorted set's indexes against a reference model: a `BTreeMap` of
//! member to score, sorted by (score, member) on every check. After every
//! operation the ranks, ranges by rank, score and member, and the byte
//! count must equal the model's.

use std::collections::BTreeMap;

use cache::store::value::{LexBound, Score, ScoreBound, ZSET_MEMBER_OVERHEAD_BYTES, ZSetValue};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Insert(u8, i8),
    Remove(u8),
}

fn member(index: u8) -> Vec<u8> {
    // Members of different lengths, so byte order and length both matter.
    format!("m{}", index % 40)
        .repeat(1 + usize::from(index % 3))
        .into_bytes()
}

fn score(raw: i8) -> f64 {
    match raw {
        i8::MIN => f64::NEG_INFINITY,
        i8::MAX => f64::INFINITY,
        -1 => -0.0,
        other => f64::from(other) / 4.0,
    }
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        prop_oneof![
            3 => (any::<u8>(), any::<i8>()).prop_map(|(m, s)| Step::Insert(m, s)),
            1 => any::<u8>().prop_map(Step::Remove),
        ],
        1..200,
    )
}

fn sorted(model: &BTreeMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
    let mut entries: Vec<(Vec<u8>, f64)> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
    entries.sort_by(|a, b| (Score(a.1), &a.0).cmp(&(Score(b.1), &b.0)));
    entries
}

fn owned<'a>(walk: impl Iterator<Item = (&'a [u8], f64)>) -> Vec<(Vec<u8>, f64)> {
    walk.map(|(m, s)| (m.to_vec(), s)).collect()
}

fn check(zset: &ZSetValue, model: &BTreeMap<Vec<u8>, f64>, probe: (i8, i8, u8, u8)) {
    let expected = sorted(model);
    assert_eq!(zset.len(), model.len());
    assert_eq!(owned(zset.iter()), expected, "whole order");
    let bytes: u64 = model
        .keys()
        .map(|m| 2 * m.len() as u64 + ZSET_MEMBER_OVERHEAD_BYTES)
        .sum();
    assert_eq!(zset.bytes(), bytes, "byte count");
    assert_eq!(zset.check_indexes(), Ok(bytes));
    for (rank, (m, s)) in expected.iter().enumerate() {
        assert_eq!(zset.rank(m), Some(rank), "rank of {m:?}");
        assert_eq!(zset.nth(rank), Some((m.as_slice(), *s)));
    }
    // A window by rank, both ways.
    let start = usize::from(probe.2) % (expected.len() + 2);
    let limit = usize::from(probe.3 % 16);
    let forward: Vec<_> = expected.iter().skip(start).take(limit).cloned().collect();
    assert_eq!(
        owned(zset.walk(start, true, limit)),
        forward,
        "walk up from {start}"
    );
    let backward: Vec<_> = expected
        .iter()
        .take(start.saturating_add(1))
        .rev()
        .take(limit)
        .cloned()
        .collect();
    let backward = if start >= expected.len() {
        Vec::new()
    } else {
        backward
    };
    assert_eq!(
        owned(zset.walk(start, false, limit)),
        backward,
        "walk down from {start}"
    );
    // Score ranges with every kind of bound.
    let (low, high) = (score(probe.0), score(probe.1));
    for (min, max) in [
        (ScoreBound::Inclusive(low), ScoreBound::Inclusive(high)),
        (ScoreBound::Exclusive(low), ScoreBound::Inclusive(high)),
        (ScoreBound::Inclusive(low), ScoreBound::Exclusive(high)),
        (ScoreBound::Exclusive(low), ScoreBound::Exclusive(high)),
    ] {
        let inside = |s: f64| {
            (match min {
                ScoreBound::Inclusive(b) => s >= b,
                ScoreBound::Exclusive(b) => s > b,
            }) && (match max {
                ScoreBound::Inclusive(b) => s <= b,
                ScoreBound::Exclusive(b) => s < b,
            })
        };
        let wanted: Vec<_> = expected
            .iter()
            .filter(|(_, s)| inside(*s))
            .cloned()
            .collect();
        assert_eq!(
            owned(zset.range_by_score(min, max)),
            wanted,
            "{min:?}..{max:?}"
        );
        let mut reversed = wanted.clone();
        reversed.reverse();
        assert_eq!(owned(zset.range_by_score_rev(min, max)), reversed);
        let (first, end) = zset.score_ranks(min, max);
        assert_eq!(end - first, wanted.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn sorted_set_matches_a_btreemap_model(steps in steps(), probe in any::<(i8, i8, u8, u8)>()) {
        let mut zset = ZSetValue::default();
        let mut model: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
        for step in &steps {
            match step {
                Step::Insert(m, s) => {
                    let s = score(*s);
                    let stored = if s == 0.0 { 0.0 } else { s };
                    let new = model.insert(member(*m), stored).is_none();
                    prop_assert_eq!(zset.insert(&member(*m), s), new);
                }
                Step::Remove(m) => {
                    prop_assert_eq!(zset.remove(&member(*m)), model.remove(&member(*m)).is_some());
                }
            }
            check(&zset, &model, probe);
        }
    }

    #[test]
    fn lex_ranges_match_the_model_when_scores_are_equal(
        members in proptest::collection::btree_set(any::<u8>(), 0..60),
        bounds in any::<(u8, u8, u8, u8)>(),
    ) {
        let mut zset = ZSetValue::default();
        for m in &members {
            zset.insert(&member(*m), 1.0);
        }
        let all: Vec<Vec<u8>> = zset.iter().map(|(m, _)| m.to_vec()).collect();
        let bound = |kind: u8, at: u8| match kind % 4 {
            0 => LexBound::Lowest,
            1 => LexBound::Highest,
            2 => LexBound::Inclusive(member(at)),
            _ => LexBound::Exclusive(member(at)),
        };
        let (min, max) = (bound(bounds.0, bounds.1), bound(bounds.2, bounds.3));
        let above_min = |m: &[u8]| match &min {
            LexBound::Lowest => true,
            LexBound::Highest => false,
            LexBound::Inclusive(b) => m >= b.as_slice(),
            LexBound::Exclusive(b) => m > b.as_slice(),
        };
        let below_max = |m: &[u8]| match &max {
            LexBound::Lowest => false,
            LexBound::Highest => true,
            LexBound::Inclusive(b) => m <= b.as_slice(),
            LexBound::Exclusive(b) => m < b.as_slice(),
        };
        let wanted = all.iter().filter(|m| above_min(m) && below_max(m)).count();
        let (start, end) = zset.lex_ranks(&min, &max);
        prop_assert_eq!(end - start, wanted);
        if wanted > 0 {
            prop_assert!(above_min(&all[start]) && below_max(&all[end - 1]));
        }
    }
}

/// 200 000 members inserted in score order (a sorted input is what makes
/// an unbalanced tree degenerate) and ~28 600 ranks answered: the treap's
/// priorities do not depend on the keys.
#[test]
fn sorted_input_keeps_rank_queries_fast() {
    let mut zset = ZSetValue::default();
    let count = 200_000u32;
    for index in 0..count {
        zset.insert(&index.to_be_bytes(), f64::from(index));
    }
    for index in (0..count).step_by(7) {
        assert_eq!(zset.rank(&index.to_be_bytes()), Some(index as usize));
    }
    assert_eq!(zset.nth(123_456).map(|(_, s)| s), Some(123_456.0));
    // A degenerate (linear) tree would recurse 200 000 deep on insert
    // (overflowing the test thread's stack) and need ~10^10 steps here.
    assert_eq!(zset.check_indexes().map(|_| ()), Ok(()));
}
