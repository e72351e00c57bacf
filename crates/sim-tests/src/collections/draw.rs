//! The random draw of collection commands over the keys of one hash tag.

use linearizability::CollectionsInput;
use linearizability::models::collections::{Aggregate, Combine, End, LexBound, Score, ZAddFlags};
use madsim::rand::Rng;

/// The key names under each tag, by the type the workload mostly gives
/// them (any command may still meet any key).
const HASHES: [&str; 1] = ["h"];
const LISTS: [&str; 2] = ["l1", "l2"];
const SETS: [&str; 2] = ["s1", "s2"];
const ZSETS: [&str; 2] = ["z1", "z2"];
const STRING: &str = "str";
/// A sorted set whose scores are all 0, for the commands by member
/// (`ZRANGEBYLEX`, ...), which Redis defines only then: only those and
/// score-0 `ZADD`s touch it.
const LEX_ZSET: &str = "zx";

/// Members, fields and list elements.
const MEMBERS: [&str; 4] = ["a", "b", "c", "d"];

/// Every key of `tag` the workload uses, in a fixed order.
pub fn tag_keys(tag: &str) -> Vec<String> {
    HASHES
        .iter()
        .chain(&LISTS)
        .chain(&SETS)
        .chain(&ZSETS)
        .chain([&STRING, &LEX_ZSET])
        .map(|name| format!("{{{tag}}}{name}"))
        .collect()
}

fn pick<'a>(rng: &mut impl Rng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

fn end(rng: &mut impl Rng) -> End {
    if rng.gen_bool(0.5) {
        End::Left
    } else {
        End::Right
    }
}

fn members(rng: &mut impl Rng, most: usize) -> Vec<String> {
    (0..rng.gen_range(1..=most))
        .map(|_| pick(rng, &MEMBERS).to_owned())
        .collect()
}

fn score(rng: &mut impl Rng) -> Score {
    Score::new(f64::from(rng.gen_range(-2..6)))
}

/// A key of `tag`: usually one of `names`, one time in ten any key of
/// the tag (so that types clash).
fn key(rng: &mut impl Rng, tag: &str, names: &[&str]) -> String {
    let name = if rng.gen_range(0..10) == 0 {
        let all: Vec<&str> = HASHES
            .iter()
            .chain(&LISTS)
            .chain(&SETS)
            .chain(&ZSETS)
            .copied()
            .chain(std::iter::once(STRING))
            .collect();
        pick(rng, &all)
    } else {
        pick(rng, names)
    };
    format!("{{{tag}}}{name}")
}

/// Any key of `tag` (for the commands that take every type).
fn any_key(rng: &mut impl Rng, tag: &str) -> String {
    let all: Vec<&str> = HASHES
        .iter()
        .chain(&LISTS)
        .chain(&SETS)
        .chain(&ZSETS)
        .copied()
        .chain(std::iter::once(STRING))
        .collect();
    format!("{{{tag}}}{}", pick(rng, &all))
}

fn member(rng: &mut impl Rng) -> String {
    pick(rng, &MEMBERS).to_owned()
}

/// A hash value: usually a small integer, sometimes text (so that
/// `HINCRBY` and `HINCRBYFLOAT` are refused now and then).
fn hash_value(rng: &mut impl Rng) -> String {
    match rng.gen_range(0..6) {
        0 => "x".to_owned(),
        number => number.to_string(),
    }
}

fn lex_min(rng: &mut impl Rng) -> LexBound {
    match rng.gen_range(0..3) {
        0 => LexBound::Lowest,
        1 => LexBound::Inclusive(member(rng)),
        _ => LexBound::Exclusive(member(rng)),
    }
}

fn lex_max(rng: &mut impl Rng) -> LexBound {
    match rng.gen_range(0..3) {
        0 => LexBound::Highest,
        1 => LexBound::Inclusive(member(rng)),
        _ => LexBound::Exclusive(member(rng)),
    }
}

fn small(rng: &mut impl Rng, low: i64, high: i64) -> i64 {
    rng.gen_range(low..=high)
}

fn one_of<T: Copy>(rng: &mut impl Rng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

fn combine(rng: &mut impl Rng) -> Combine {
    one_of(rng, &[Combine::Inter, Combine::Union, Combine::Diff])
}

fn zadd_flags(rng: &mut impl Rng) -> ZAddFlags {
    let none = ZAddFlags::default();
    let condition = one_of(
        rng,
        &[
            none,
            none,
            ZAddFlags { nx: true, ..none },
            ZAddFlags { xx: true, ..none },
            ZAddFlags { gt: true, ..none },
            ZAddFlags { lt: true, ..none },
        ],
    );
    ZAddFlags {
        ch: rng.gen_bool(0.5),
        ..condition
    }
}

/// One random command over the keys of `tag`.
pub fn random_command(rng: &mut impl Rng, tag: &str) -> CollectionsInput {
    use CollectionsInput as I;
    match rng.gen_range(0..68) {
        0 => I::Set {
            key: key(rng, tag, &[STRING]),
            value: member(rng),
        },
        1 => I::Type {
            key: key(rng, tag, &[STRING]),
        },
        2 => I::Del {
            key: key(rng, tag, &HASHES),
        },
        3 => I::HSet {
            key: key(rng, tag, &HASHES),
            pairs: members(rng, 2)
                .into_iter()
                .map(|field| (field, hash_value(rng)))
                .collect(),
        },
        4 => I::HSetNx {
            key: key(rng, tag, &HASHES),
            field: member(rng),
            value: hash_value(rng),
        },
        5 => I::HDel {
            key: key(rng, tag, &HASHES),
            fields: members(rng, 2),
        },
        6 => I::HIncrBy {
            key: key(rng, tag, &HASHES),
            field: member(rng),
            delta: small(rng, -3, 3),
        },
        7 => I::HGetAll {
            key: key(rng, tag, &HASHES),
        },
        8 => I::HGet {
            key: key(rng, tag, &HASHES),
            field: member(rng),
        },
        9 => I::HRandField {
            key: key(rng, tag, &HASHES),
            count: one_of(rng, &[None, Some(2), Some(-3)]),
            with_values: rng.gen_bool(0.5),
        },
        10 | 11 => I::Push {
            key: key(rng, tag, &LISTS),
            end: end(rng),
            elements: members(rng, 3),
            only_existing: rng.gen_range(0..5) == 0,
        },
        12 => I::Pop {
            key: key(rng, tag, &LISTS),
            end: end(rng),
            count: one_of(rng, &[None, Some(2)]),
        },
        13 => I::LRange {
            key: key(rng, tag, &LISTS),
            start: 0,
            stop: -1,
        },
        14 => I::LMove {
            source: key(rng, tag, &LISTS),
            destination: key(rng, tag, &LISTS),
            from: end(rng),
            to: end(rng),
        },
        15 => I::LRem {
            key: key(rng, tag, &LISTS),
            count: small(rng, -2, 2),
            element: member(rng),
        },
        16 => I::LTrim {
            key: key(rng, tag, &LISTS),
            start: small(rng, 0, 2),
            stop: small(rng, -2, -1),
        },
        17 => I::LSet {
            key: key(rng, tag, &LISTS),
            index: small(rng, -2, 2),
            element: member(rng),
        },
        18 => I::LInsert {
            key: key(rng, tag, &LISTS),
            before: rng.gen_bool(0.5),
            pivot: member(rng),
            element: member(rng),
        },
        19 => I::LIndex {
            key: key(rng, tag, &LISTS),
            index: small(rng, -2, 2),
        },
        20 | 21 => I::SAdd {
            key: key(rng, tag, &SETS),
            members: members(rng, 3),
        },
        22 => I::SRem {
            key: key(rng, tag, &SETS),
            members: members(rng, 2),
        },
        23 => I::SMembers {
            key: key(rng, tag, &SETS),
        },
        24 => I::SPop {
            key: key(rng, tag, &SETS),
            count: one_of(rng, &[None, Some(2)]),
        },
        25 => I::SRandMember {
            key: key(rng, tag, &SETS),
            count: one_of(rng, &[None, Some(2), Some(-3)]),
        },
        26 => I::SMove {
            source: key(rng, tag, &SETS),
            destination: key(rng, tag, &SETS),
            member: member(rng),
        },
        27 => I::SCombine {
            how: combine(rng),
            keys: vec![key(rng, tag, &SETS), key(rng, tag, &SETS)],
        },
        28 => I::SStore {
            how: combine(rng),
            destination: key(rng, tag, &SETS),
            sources: vec![key(rng, tag, &SETS), key(rng, tag, &SETS)],
        },
        29 => I::SInterCard {
            keys: vec![key(rng, tag, &SETS), key(rng, tag, &SETS)],
            limit: rng.gen_range(0..3),
        },
        30 | 31 => I::ZAdd {
            key: key(rng, tag, &ZSETS),
            entries: members(rng, 3)
                .into_iter()
                .map(|member| (score(rng), member))
                .collect(),
            flags: zadd_flags(rng),
        },
        // ZINCRBY
        32 => I::ZAdd {
            key: key(rng, tag, &ZSETS),
            entries: vec![(score(rng), member(rng))],
            flags: ZAddFlags {
                incr: true,
                ..ZAddFlags::default()
            },
        },
        33 => I::ZRange {
            key: key(rng, tag, &ZSETS),
            start: 0,
            stop: -1,
            reverse: rng.gen_bool(0.5),
        },
        34 => I::ZRangeByScore {
            key: key(rng, tag, &ZSETS),
            min: Score::new(0.0),
            max: Score::new(3.0),
            reverse: rng.gen_bool(0.5),
        },
        35 => I::ZRank {
            key: key(rng, tag, &ZSETS),
            member: member(rng),
            reverse: rng.gen_bool(0.5),
        },
        36 => I::ZPop {
            key: key(rng, tag, &ZSETS),
            highest: rng.gen_bool(0.5),
            count: one_of(rng, &[None, Some(2)]),
        },
        37 if rng.gen_bool(0.5) => I::ZRemRangeByRank {
            key: key(rng, tag, &ZSETS),
            start: 0,
            stop: 0,
        },
        37 => I::ZRemRangeByScore {
            key: key(rng, tag, &ZSETS),
            min: Score::new(-2.0),
            max: Score::new(-1.0),
        },
        38 => I::ZRandMember {
            key: key(rng, tag, &ZSETS),
            count: one_of(rng, &[None, Some(2), Some(-3)]),
        },
        40 => I::Rename {
            source: any_key(rng, tag),
            destination: any_key(rng, tag),
        },
        41 => I::Copy {
            source: any_key(rng, tag),
            destination: any_key(rng, tag),
            replace: rng.gen_bool(0.5),
        },
        42 => I::HMGet {
            key: key(rng, tag, &HASHES),
            fields: members(rng, 3),
        },
        43 => I::LPos {
            key: key(rng, tag, &LISTS),
            element: member(rng),
            from_tail: rng.gen_bool(0.5),
        },
        44 => I::LMPop {
            keys: vec![key(rng, tag, &LISTS), key(rng, tag, &LISTS)],
            end: end(rng),
            count: rng.gen_range(1..=3),
        },
        45 => I::SMIsMember {
            key: key(rng, tag, &SETS),
            members: members(rng, 3),
        },
        46 => I::ZMScore {
            key: key(rng, tag, &ZSETS),
            members: members(rng, 3),
        },
        47 => I::ZMPop {
            keys: vec![key(rng, tag, &ZSETS), key(rng, tag, &ZSETS)],
            highest: rng.gen_bool(0.5),
            count: rng.gen_range(1..=3),
        },
        48 => I::ZRangeStore {
            destination: key(rng, tag, &ZSETS),
            source: key(rng, tag, &ZSETS),
            start: small(rng, -2, 0),
            stop: -1,
        },
        49 => {
            let how = combine(rng);
            let keys = vec![key(rng, tag, &ZSETS), key(rng, tag, &SETS)];
            I::ZCombine {
                how,
                weights: if how == Combine::Diff {
                    Vec::new()
                } else {
                    keys.iter()
                        .map(|_| Score::new(f64::from(rng.gen_range(0..3u8))))
                        .collect()
                },
                keys,
                aggregate: one_of(rng, &[Aggregate::Sum, Aggregate::Min, Aggregate::Max]),
            }
        }
        51 => I::ZRem {
            key: key(rng, tag, &ZSETS),
            members: members(rng, 2),
        },
        52 => I::ZCount {
            key: key(rng, tag, &ZSETS),
            min: Score::new(-1.0),
            max: Score::new(2.0),
        },
        53 => I::ZCard {
            key: key(rng, tag, &ZSETS),
        },
        54 => I::ZScore {
            key: key(rng, tag, &ZSETS),
            member: member(rng),
        },
        55 => I::SCard {
            key: key(rng, tag, &SETS),
        },
        56 => I::SIsMember {
            key: key(rng, tag, &SETS),
            member: member(rng),
        },
        57 => I::LLen {
            key: key(rng, tag, &LISTS),
        },
        58 => I::HLen {
            key: key(rng, tag, &HASHES),
        },
        63 => I::ZAdd {
            key: format!("{{{tag}}}{LEX_ZSET}"),
            entries: members(rng, 3)
                .into_iter()
                .map(|member| (Score::new(0.0), member))
                .collect(),
            flags: ZAddFlags::default(),
        },
        64 => I::ZRangeByLex {
            key: format!("{{{tag}}}{LEX_ZSET}"),
            min: lex_min(rng),
            max: lex_max(rng),
            reverse: rng.gen_bool(0.5),
            limit: one_of(rng, &[None, Some((0, 2)), Some((1, -1))]),
        },
        65 => I::ZLexCount {
            key: format!("{{{tag}}}{LEX_ZSET}"),
            min: lex_min(rng),
            max: lex_max(rng),
        },
        66 => I::ZRemRangeByLex {
            key: format!("{{{tag}}}{LEX_ZSET}"),
            min: lex_min(rng),
            max: lex_max(rng),
        },
        59 => I::HExists {
            key: key(rng, tag, &HASHES),
            field: member(rng),
        },
        60 => I::HStrLen {
            key: key(rng, tag, &HASHES),
            field: member(rng),
        },
        61 => I::HKeysOrVals {
            key: key(rng, tag, &HASHES),
            values: rng.gen_bool(0.5),
        },
        62 => I::HIncrByFloat {
            key: key(rng, tag, &HASHES),
            field: member(rng),
            delta: small(rng, -3, 3),
        },
        50 => I::ZInterCard {
            keys: vec![key(rng, tag, &ZSETS), key(rng, tag, &SETS)],
            limit: rng.gen_range(0..3),
        },
        _ => {
            let how = combine(rng);
            let sources = vec![key(rng, tag, &ZSETS), key(rng, tag, &SETS)];
            // ZDIFFSTORE takes no weights.
            let weights = if how == Combine::Diff {
                Vec::new()
            } else {
                sources
                    .iter()
                    .map(|_| Score::new(f64::from(rng.gen_range(0..3u8))))
                    .collect()
            };
            I::ZStore {
                how,
                destination: key(rng, tag, &ZSETS),
                sources,
                weights,
                aggregate: one_of(rng, &[Aggregate::Sum, Aggregate::Min, Aggregate::Max]),
            }
        }
    }
}
