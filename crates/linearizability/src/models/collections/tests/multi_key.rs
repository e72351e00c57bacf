//! Renames, copies, the multi-key pops and reads.

use super::super::*;
use super::{refuses, run, s, score, strings};
use CollectionsInput as I;
use CollectionsOutput as O;

#[test]
fn renames_copies_and_the_multi_key_pops() {
    let scored =
        |items: &[(&str, f64)]| O::Scored(items.iter().map(|(m, v)| (s(m), score(*v))).collect());
    let state = run(&[
        (
            I::Push {
                key: s("{t}l"),
                end: End::Right,
                elements: strings(&["a", "b", "a", "c"]),
                only_existing: false,
            },
            O::Integer(4),
        ),
        (
            I::LPos {
                key: s("{t}l"),
                element: s("a"),
                from_tail: true,
            },
            O::Integers(vec![2, 0]),
        ),
        (
            I::Copy {
                source: s("{t}l"),
                destination: s("{t}m"),
                replace: false,
            },
            O::Integer(1),
        ),
        (
            I::Copy {
                source: s("{t}l"),
                destination: s("{t}m"),
                replace: false,
            },
            O::Integer(0),
        ),
        (
            I::Rename {
                source: s("{t}m"),
                destination: s("{t}n"),
            },
            O::Done,
        ),
        (
            I::Rename {
                source: s("{t}m"),
                destination: s("{t}n"),
            },
            O::Refused(Refusal::NoSuchKey),
        ),
        // An absent key is skipped; the first list is popped.
        (
            I::LMPop {
                keys: strings(&["{t}absent", "{t}n", "{t}l"]),
                end: End::Left,
                count: 3,
            },
            O::KeyValues(s("{t}n"), strings(&["a", "b", "a"])),
        ),
        (
            I::HSet {
                key: s("{t}h"),
                pairs: vec![(s("f"), s("1"))],
            },
            O::Integer(1),
        ),
        (
            I::HMGet {
                key: s("{t}h"),
                fields: strings(&["g", "f"]),
            },
            O::MaybeValues(vec![None, Some(s("1"))]),
        ),
        // A key of another type before the first list: WRONGTYPE.
        (
            I::LMPop {
                keys: strings(&["{t}h", "{t}l"]),
                end: End::Left,
                count: 1,
            },
            O::Refused(Refusal::WrongType),
        ),
        (
            I::SAdd {
                key: s("{t}s"),
                members: strings(&["x", "y"]),
            },
            O::Integer(2),
        ),
        (
            I::SMIsMember {
                key: s("{t}s"),
                members: strings(&["y", "q"]),
            },
            O::Integers(vec![1, 0]),
        ),
        (
            I::ZAdd {
                key: s("{t}z"),
                entries: vec![
                    (score(3.0), s("x")),
                    (score(1.0), s("w")),
                    (score(2.0), s("v")),
                ],
                flags: ZAddFlags::default(),
            },
            O::Integer(3),
        ),
        (
            I::ZMScore {
                key: s("{t}z"),
                members: strings(&["w", "none"]),
            },
            O::Scores(vec![Some(score(1.0)), None]),
        ),
        (
            I::ZCombine {
                how: Combine::Union,
                keys: strings(&["{t}z", "{t}s"]),
                weights: vec![score(1.0), score(10.0)],
                aggregate: Aggregate::Sum,
            },
            scored(&[("w", 1.0), ("v", 2.0), ("y", 10.0), ("x", 13.0)]),
        ),
        (
            I::ZInterCard {
                keys: strings(&["{t}z", "{t}s"]),
                limit: 0,
            },
            O::Integer(1),
        ),
        (
            I::ZRangeStore {
                destination: s("{t}s"),
                source: s("{t}z"),
                start: -2,
                stop: -1,
            },
            O::Integer(2),
        ),
        (
            I::ZMPop {
                keys: strings(&["{t}absent", "{t}s"]),
                highest: true,
                count: 5,
            },
            O::KeyScored(s("{t}s"), vec![(s("x"), score(3.0)), (s("v"), score(2.0))]),
        ),
        (I::Type { key: s("{t}s") }, O::Value(None)),
        (
            I::ZMPop {
                keys: strings(&["{t}absent"]),
                highest: false,
                count: 1,
            },
            O::Value(None),
        ),
        (
            I::ZRangeStore {
                destination: s("{t}d"),
                source: s("{t}h"),
                start: 0,
                stop: -1,
            },
            O::Refused(Refusal::WrongType),
        ),
    ]);
    // Popping from a list that is not the first non-empty one is wrong.
    refuses(
        &state,
        &I::LMPop {
            keys: strings(&["{t}n", "{t}l"]),
            end: End::Left,
            count: 1,
        },
        &O::KeyValues(s("{t}l"), strings(&["a"])),
    );
}
