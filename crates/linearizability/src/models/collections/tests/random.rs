//! The random commands: any valid choice, and no other.

use super::super::*;
use super::{only, refuses, run, s, score, strings};
use CollectionsInput as I;
use CollectionsOutput as O;

#[test]
fn random_commands_accept_any_valid_choice_only() {
    let state = run(&[
        (
            I::SAdd {
                key: s("{t}s"),
                members: strings(&["a", "b", "c"]),
            },
            O::Integer(3),
        ),
        (
            I::HSet {
                key: s("{t}h"),
                pairs: vec![(s("f"), s("1")), (s("g"), s("2"))],
            },
            O::Integer(2),
        ),
        (
            I::ZAdd {
                key: s("{t}z"),
                entries: vec![(score(1.0), s("m")), (score(2.0), s("n"))],
                flags: ZAddFlags::default(),
            },
            O::Integer(2),
        ),
    ]);
    let rand = |count| I::SRandMember {
        key: s("{t}s"),
        count,
    };
    // Negative counts may repeat; positive ones may not, and are capped at
    // the size.
    assert!(
        CollectionsModel
            .step(
                &state,
                &rand(Some(-4)),
                Some(&O::Values(strings(&["a", "a", "c", "a"])))
            )
            .is_some()
    );
    refuses(&state, &rand(Some(2)), &O::Values(strings(&["a", "a"])));
    refuses(&state, &rand(Some(5)), &O::Values(strings(&["a", "b"])));
    refuses(&state, &rand(None), &O::Value(Some(s("x"))));
    assert!(
        CollectionsModel
            .step(
                &state,
                &rand(Some(5)),
                Some(&O::Values(strings(&["c", "a", "b"])))
            )
            .is_some()
    );
    let fields = |count, with_values| I::HRandField {
        key: s("{t}h"),
        count: Some(count),
        with_values,
    };
    assert!(
        CollectionsModel
            .step(
                &state,
                &fields(-3, true),
                Some(&O::Values(strings(&["g", "2", "g", "2", "f", "1"])))
            )
            .is_some()
    );
    refuses(&state, &fields(1, true), &O::Values(strings(&["g", "1"])));
    let zrand = I::ZRandMember {
        key: s("{t}z"),
        count: None,
    };
    assert!(
        CollectionsModel
            .step(&state, &zrand, Some(&O::Scored(vec![(s("n"), score(2.0))])))
            .is_some()
    );
    refuses(&state, &zrand, &O::Scored(vec![(s("n"), score(1.0))]));

    // SPOP removes exactly what it answered.
    let pop = |count| I::SPop {
        key: s("{t}s"),
        count,
    };
    let after = CollectionsModel
        .step(
            &state,
            &pop(Some(2)),
            Some(&O::Values(strings(&["c", "a"]))),
        )
        .expect("a valid pop");
    assert_eq!(
        only(&after).get("{t}s"),
        Some(&Value::Set(BTreeSet::from([s("b")])))
    );
    refuses(&state, &pop(Some(2)), &O::Values(strings(&["c", "c"])));
    refuses(&state, &pop(None), &O::Value(Some(s("x"))));

    // An SPOP of unknown outcome may have taken any one member; a later
    // answer narrows the possibilities.
    let unknown = CollectionsModel
        .step(&state, &pop(None), None)
        .expect("any outcome");
    assert_eq!(unknown.len(), 3);
    let members = I::SMembers { key: s("{t}s") };
    let narrowed = CollectionsModel
        .step(&unknown, &members, Some(&O::Values(strings(&["a", "c"]))))
        .expect("b was popped");
    assert_eq!(narrowed.len(), 1);
    refuses(&unknown, &members, &O::Values(strings(&["a"])));
}
