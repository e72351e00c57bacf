//! The deterministic commands, type by type.

use super::super::*;
use super::{only, refuses, run, s, score, strings};
use CollectionsInput as I;
use CollectionsOutput as O;

#[test]
fn hashes_count_fields_and_vanish_when_empty() {
    let state = run(&[
        (
            I::HSet {
                key: s("{t}h"),
                pairs: vec![(s("a"), s("1")), (s("b"), s("2")), (s("a"), s("3"))],
            },
            O::Integer(2),
        ),
        (
            I::HSetNx {
                key: s("{t}h"),
                field: s("a"),
                value: s("9"),
            },
            O::Integer(0),
        ),
        (
            I::HIncrBy {
                key: s("{t}h"),
                field: s("a"),
                delta: 4,
            },
            O::Integer(7),
        ),
        (
            I::HGetAll { key: s("{t}h") },
            // Any order of the pairs.
            O::Values(strings(&["b", "2", "a", "7"])),
        ),
        (
            I::HSet {
                key: s("{t}h"),
                pairs: vec![(s("c"), s("x"))],
            },
            O::Integer(1),
        ),
        (
            I::HIncrBy {
                key: s("{t}h"),
                field: s("c"),
                delta: 1,
            },
            O::Refused(Refusal::NotAnInteger),
        ),
        (
            I::HDel {
                key: s("{t}h"),
                fields: strings(&["a", "b", "c", "zz"]),
            },
            O::Integer(3),
        ),
        (I::Type { key: s("{t}h") }, O::Value(None)),
        (I::HLen { key: s("{t}h") }, O::Integer(0)),
        (
            I::HIncrByFloat {
                key: s("{t}h"),
                field: s("n"),
                delta: -2,
            },
            O::Value(Some(s("-2"))),
        ),
        (
            I::HSet {
                key: s("{t}h"),
                pairs: vec![(s("word"), s("abc"))],
            },
            O::Integer(1),
        ),
        (
            I::HIncrByFloat {
                key: s("{t}h"),
                field: s("word"),
                delta: 1,
            },
            O::Refused(Refusal::NotAFloat),
        ),
        (
            I::HStrLen {
                key: s("{t}h"),
                field: s("word"),
            },
            O::Integer(3),
        ),
        (
            I::HExists {
                key: s("{t}h"),
                field: s("none"),
            },
            O::Integer(0),
        ),
        (
            I::HKeysOrVals {
                key: s("{t}h"),
                values: true,
            },
            O::Values(strings(&["abc", "-2"])),
        ),
    ]);
    refuses(
        &state,
        &I::HKeysOrVals {
            key: s("{t}h"),
            values: false,
        },
        &O::Values(strings(&["n"])),
    );
    assert_eq!(only(&state).len(), 1, "only the hash remains");
    let state = run(&[(
        I::HSet {
            key: s("{t}h"),
            pairs: vec![(s("a"), s("1"))],
        },
        O::Integer(1),
    )]);
    // A value that does not belong to its field, a pair dropped.
    refuses(
        &state,
        &I::HGetAll { key: s("{t}h") },
        &O::Values(strings(&["a", "2"])),
    );
    refuses(
        &state,
        &I::HGetAll { key: s("{t}h") },
        &O::Values(strings(&["a"])),
    );
}

#[test]
fn wrong_type_is_refused_and_changes_nothing() {
    let state = run(&[
        (
            I::Set {
                key: s("{t}s"),
                value: s("v"),
            },
            O::Done,
        ),
        (
            I::Push {
                key: s("{t}l"),
                end: End::Right,
                elements: strings(&["x"]),
                only_existing: false,
            },
            O::Integer(1),
        ),
        (
            I::HSet {
                key: s("{t}s"),
                pairs: vec![(s("a"), s("1"))],
            },
            O::Refused(Refusal::WrongType),
        ),
        (I::Get { key: s("{t}l") }, O::Refused(Refusal::WrongType)),
        (I::SCard { key: s("{t}l") }, O::Refused(Refusal::WrongType)),
        (
            I::LMove {
                source: s("{t}l"),
                destination: s("{t}s"),
                from: End::Left,
                to: End::Left,
            },
            O::Refused(Refusal::WrongType),
        ),
        (
            I::SCombine {
                how: Combine::Union,
                keys: strings(&["{t}none", "{t}l"]),
            },
            O::Refused(Refusal::WrongType),
        ),
        (
            I::ZStore {
                how: Combine::Union,
                destination: s("{t}d"),
                sources: strings(&["{t}s"]),
                weights: Vec::new(),
                aggregate: Aggregate::Sum,
            },
            O::Refused(Refusal::WrongType),
        ),
        (I::Type { key: s("{t}l") }, O::Value(Some(s("list")))),
        (
            I::LRange {
                key: s("{t}l"),
                start: 0,
                stop: -1,
            },
            O::Values(strings(&["x"])),
        ),
    ]);
    // The refused move left the list where it was.
    assert_eq!(only(&state).len(), 2);
    // A write that "succeeded" on the wrong type is impossible.
    refuses(
        &state,
        &I::SAdd {
            key: s("{t}s"),
            members: strings(&["m"]),
        },
        &O::Integer(1),
    );
}

#[test]
fn lists_follow_redis_positions() {
    let key = || s("{t}l");
    let state = run(&[
        (
            I::Push {
                key: key(),
                end: End::Left,
                elements: strings(&["a", "b", "c"]),
                only_existing: false,
            },
            O::Integer(3),
        ),
        (
            I::LRange {
                key: key(),
                start: 0,
                stop: -1,
            },
            O::Values(strings(&["c", "b", "a"])),
        ),
        (
            I::Push {
                key: s("{t}absent"),
                end: End::Left,
                elements: strings(&["z"]),
                only_existing: true,
            },
            O::Integer(0),
        ),
        (
            I::LInsert {
                key: key(),
                before: false,
                pivot: s("c"),
                element: s("b"),
            },
            O::Integer(4),
        ),
        (
            I::LRem {
                key: key(),
                count: -1,
                element: s("b"),
            },
            O::Integer(1),
        ),
        (
            I::LRange {
                key: key(),
                start: -10,
                stop: 10,
            },
            O::Values(strings(&["c", "b", "a"])),
        ),
        (
            I::LSet {
                key: key(),
                index: -1,
                element: s("z"),
            },
            O::Done,
        ),
        (
            I::LSet {
                key: key(),
                index: 3,
                element: s("z"),
            },
            O::Refused(Refusal::IndexOutOfRange),
        ),
        (
            I::LSet {
                key: s("{t}absent"),
                index: 0,
                element: s("z"),
            },
            O::Refused(Refusal::NoSuchKey),
        ),
        (
            I::LIndex {
                key: key(),
                index: -1,
            },
            O::Value(Some(s("z"))),
        ),
        (
            I::LMove {
                source: key(),
                destination: key(),
                from: End::Left,
                to: End::Right,
            },
            O::Value(Some(s("c"))),
        ),
        (
            I::LMove {
                source: key(),
                destination: s("{t}other"),
                from: End::Right,
                to: End::Left,
            },
            O::Value(Some(s("c"))),
        ),
        (
            I::Pop {
                key: key(),
                end: End::Left,
                count: Some(5),
            },
            O::Values(strings(&["b", "z"])),
        ),
        (I::Type { key: key() }, O::Value(None)),
        (
            I::Pop {
                key: key(),
                end: End::Left,
                count: Some(5),
            },
            O::Value(None),
        ),
        (
            I::LMove {
                source: key(),
                destination: s("{t}other"),
                from: End::Right,
                to: End::Left,
            },
            O::Value(None),
        ),
        (
            I::LTrim {
                key: s("{t}other"),
                start: 1,
                stop: 0,
            },
            O::Done,
        ),
    ]);
    assert!(only(&state).is_empty(), "LTRIM to nothing removes the key");
}

#[test]
fn sets_combine_and_store_over_any_destination() {
    let state = run(&[
        (
            I::SAdd {
                key: s("{t}a"),
                members: strings(&["1", "2", "3", "2"]),
            },
            O::Integer(3),
        ),
        (
            I::SAdd {
                key: s("{t}b"),
                members: strings(&["2", "3", "4"]),
            },
            O::Integer(3),
        ),
        (
            I::Set {
                key: s("{t}d"),
                value: s("string"),
            },
            O::Done,
        ),
        (
            I::SStore {
                how: Combine::Inter,
                destination: s("{t}d"),
                sources: strings(&["{t}a", "{t}b"]),
            },
            O::Integer(2),
        ),
        (
            I::SMembers { key: s("{t}d") },
            O::Values(strings(&["3", "2"])),
        ),
        (
            I::SCombine {
                how: Combine::Diff,
                keys: strings(&["{t}a", "{t}b", "{t}absent"]),
            },
            O::Values(strings(&["1"])),
        ),
        (
            I::SCombine {
                how: Combine::Union,
                keys: strings(&["{t}absent", "{t}b", "{t}a"]),
            },
            O::Values(strings(&["1", "2", "3", "4"])),
        ),
        (
            I::SInterCard {
                keys: strings(&["{t}a", "{t}b"]),
                limit: 1,
            },
            O::Integer(1),
        ),
        (
            I::SMove {
                source: s("{t}a"),
                destination: s("{t}b"),
                member: s("1"),
            },
            O::Integer(1),
        ),
        (
            I::SMove {
                source: s("{t}absent"),
                destination: s("{t}a"),
                member: s("1"),
            },
            O::Integer(0),
        ),
        (
            I::SStore {
                how: Combine::Diff,
                destination: s("{t}d"),
                sources: strings(&["{t}a", "{t}b"]),
            },
            O::Integer(0),
        ),
        (I::Type { key: s("{t}d") }, O::Value(None)),
        (
            I::SRem {
                key: s("{t}a"),
                members: strings(&["2", "3", "9"]),
            },
            O::Integer(2),
        ),
        (I::Type { key: s("{t}a") }, O::Value(None)),
    ]);
    refuses(
        &state,
        &I::SMembers { key: s("{t}b") },
        &O::Values(strings(&["1", "2", "3", "4", "4"])),
    );
}

#[test]
fn sorted_sets_order_by_score_then_member() {
    let key = || s("{t}z");
    let add = |entries: &[(f64, &str)], flags: ZAddFlags| I::ZAdd {
        key: key(),
        entries: entries
            .iter()
            .map(|(value, member)| (score(*value), s(member)))
            .collect(),
        flags,
    };
    let flags = ZAddFlags::default();
    let scored =
        |items: &[(&str, f64)]| O::Scored(items.iter().map(|(m, v)| (s(m), score(*v))).collect());
    run(&[
        (
            add(&[(2.0, "b"), (1.0, "c"), (2.0, "a")], flags),
            O::Integer(3),
        ),
        (
            I::ZRange {
                key: key(),
                start: 0,
                stop: -1,
                reverse: false,
            },
            scored(&[("c", 1.0), ("a", 2.0), ("b", 2.0)]),
        ),
        (
            I::ZRange {
                key: key(),
                start: 0,
                stop: 0,
                reverse: true,
            },
            scored(&[("b", 2.0)]),
        ),
        (
            I::ZRank {
                key: key(),
                member: s("a"),
                reverse: true,
            },
            O::Integer(1),
        ),
        (
            I::ZRank {
                key: key(),
                member: s("zz"),
                reverse: false,
            },
            O::Value(None),
        ),
        // NX: existing members untouched, new one added.
        (
            add(&[(9.0, "a"), (0.5, "d")], ZAddFlags { nx: true, ..flags }),
            O::Integer(1),
        ),
        // XX CH: only existing ones, and counted as changed.
        (
            add(
                &[(3.0, "a"), (7.0, "e")],
                ZAddFlags {
                    xx: true,
                    ch: true,
                    ..flags
                },
            ),
            O::Integer(1),
        ),
        // GT: a lower score does not update; a new member is still added.
        (
            add(
                &[(0.0, "a"), (4.0, "f")],
                ZAddFlags {
                    gt: true,
                    ch: true,
                    ..flags
                },
            ),
            O::Integer(1),
        ),
        (
            add(
                &[(2.0, "a")],
                ZAddFlags {
                    incr: true,
                    ..flags
                },
            ),
            O::Scores(vec![Some(score(5.0))]),
        ),
        (
            add(
                &[(-1.0, "a")],
                ZAddFlags {
                    incr: true,
                    gt: true,
                    ..flags
                },
            ),
            O::Scores(vec![None]),
        ),
        (
            I::ZRangeByScore {
                key: key(),
                min: score(1.0),
                max: score(4.0),
                reverse: true,
            },
            scored(&[("f", 4.0), ("b", 2.0), ("c", 1.0)]),
        ),
        (
            I::ZCount {
                key: key(),
                min: score(2.0),
                max: score(5.0),
            },
            O::Integer(3),
        ),
        (
            I::ZPop {
                key: key(),
                highest: true,
                count: Some(2),
            },
            scored(&[("a", 5.0), ("f", 4.0)]),
        ),
        (
            I::ZRemRangeByRank {
                key: key(),
                start: 0,
                stop: 0,
            },
            O::Integer(1),
        ),
        (
            I::ZRemRangeByScore {
                key: key(),
                min: score(0.0),
                max: score(1.5),
            },
            O::Integer(1),
        ),
        (
            I::ZScore {
                key: key(),
                member: s("b"),
            },
            O::Scores(vec![Some(score(2.0))]),
        ),
        (
            I::ZPop {
                key: key(),
                highest: false,
                count: None,
            },
            scored(&[("b", 2.0)]),
        ),
        (I::Type { key: key() }, O::Value(None)),
    ]);
}

#[test]
fn sorted_set_stores_weigh_and_aggregate() {
    let zadd = |key: &str, entries: &[(f64, &str)]| I::ZAdd {
        key: s(key),
        entries: entries.iter().map(|(v, m)| (score(*v), s(m))).collect(),
        flags: ZAddFlags::default(),
    };
    let store = |how, sources: &[&str], weights: &[f64], aggregate| I::ZStore {
        how,
        destination: s("{t}d"),
        sources: strings(sources),
        weights: weights.iter().map(|w| score(*w)).collect(),
        aggregate,
    };
    let all = || I::ZRange {
        key: s("{t}d"),
        start: 0,
        stop: -1,
        reverse: false,
    };
    let scored =
        |items: &[(&str, f64)]| O::Scored(items.iter().map(|(m, v)| (s(m), score(*v))).collect());
    run(&[
        (zadd("{t}a", &[(1.0, "x"), (2.0, "y")]), O::Integer(2)),
        (zadd("{t}b", &[(10.0, "y"), (20.0, "z")]), O::Integer(2)),
        (
            I::SAdd {
                key: s("{t}s"),
                members: strings(&["y", "w"]),
            },
            O::Integer(2),
        ),
        (
            store(
                Combine::Union,
                &["{t}a", "{t}b"],
                &[2.0, 1.0],
                Aggregate::Sum,
            ),
            O::Integer(3),
        ),
        (all(), scored(&[("x", 2.0), ("y", 14.0), ("z", 20.0)])),
        (
            store(
                Combine::Inter,
                &["{t}a", "{t}b", "{t}s"],
                &[],
                Aggregate::Max,
            ),
            O::Integer(1),
        ),
        (all(), scored(&[("y", 10.0)])),
        (
            store(Combine::Union, &["{t}s", "{t}a"], &[], Aggregate::Min),
            O::Integer(3),
        ),
        (all(), scored(&[("w", 1.0), ("x", 1.0), ("y", 1.0)])),
        (
            store(Combine::Diff, &["{t}b", "{t}a"], &[], Aggregate::Sum),
            O::Integer(1),
        ),
        (all(), scored(&[("z", 20.0)])),
        (
            store(Combine::Inter, &["{t}a", "{t}absent"], &[], Aggregate::Sum),
            O::Integer(0),
        ),
        (I::Type { key: s("{t}d") }, O::Value(None)),
    ]);
}

#[test]
fn lex_ranges_over_equal_scores() {
    let key = || s("{t}x");
    let zero = |members: &[&str]| -> Vec<(String, Score)> {
        members
            .iter()
            .map(|member| (s(member), score(0.0)))
            .collect()
    };
    let inclusive = |member: &str| LexBound::Inclusive(s(member));
    let exclusive = |member: &str| LexBound::Exclusive(s(member));
    let state = run(&[
        (
            I::ZAdd {
                key: key(),
                entries: zero(&["d", "a", "c", "b", "e"])
                    .into_iter()
                    .map(|(member, score)| (score, member))
                    .collect(),
                flags: ZAddFlags::default(),
            },
            O::Integer(5),
        ),
        (
            I::ZRangeByLex {
                key: key(),
                min: exclusive("a"),
                max: inclusive("d"),
                reverse: false,
                limit: None,
            },
            O::Scored(zero(&["b", "c", "d"])),
        ),
        (
            I::ZRangeByLex {
                key: key(),
                min: LexBound::Lowest,
                max: LexBound::Highest,
                reverse: true,
                limit: Some((1, 2)),
            },
            O::Scored(zero(&["d", "c"])),
        ),
        (
            I::ZRangeByLex {
                key: key(),
                min: LexBound::Lowest,
                max: LexBound::Highest,
                reverse: false,
                limit: Some((3, -1)),
            },
            O::Scored(zero(&["d", "e"])),
        ),
        (
            I::ZRangeByLex {
                key: key(),
                min: LexBound::Lowest,
                max: LexBound::Highest,
                reverse: false,
                limit: Some((-1, 2)),
            },
            O::Scored(Vec::new()),
        ),
        (
            I::ZLexCount {
                key: key(),
                min: inclusive("b"),
                max: exclusive("e"),
            },
            O::Integer(3),
        ),
        (
            I::ZRemRangeByLex {
                key: key(),
                min: LexBound::Lowest,
                max: inclusive("c"),
            },
            O::Integer(3),
        ),
    ]);
    refuses(
        &state,
        &I::ZLexCount {
            key: key(),
            min: LexBound::Lowest,
            max: LexBound::Highest,
        },
        &O::Integer(5),
    );
}
