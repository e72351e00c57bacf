//! Whole histories, judged by the checker under the model.

use super::super::*;
use super::{s, strings};
use crate::{Recorder, Unlimited, Verdict, check};
use CollectionsInput as I;
use CollectionsOutput as O;

/// A history with the given operations, each `(client, input, output,
/// call, return)`; `None` output: the client gave up.
fn history(
    operations: &[(u64, I, Option<O>, u64, u64)],
) -> crate::History<CollectionsInput, CollectionsOutput> {
    let recorder = Recorder::new();
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (index, (_, _, _, call, returned)) in operations.iter().enumerate() {
        events.push((*call, false, index));
        events.push((*returned, true, index));
    }
    events.sort();
    let mut pending: Vec<Option<crate::PendingCall>> = operations.iter().map(|_| None).collect();
    for (time, is_return, index) in events {
        let (client, input, output, _, _) = &operations[index];
        if is_return {
            let call = pending[index].take().expect("called before returning");
            match output {
                Some(output) => recorder.returned(call, output.clone(), time),
                None => recorder.timed_out(call, time),
            }
        } else {
            pending[index] = Some(recorder.call(*client, input.clone(), time));
        }
    }
    recorder.history().expect("times in order")
}

fn verdict(operations: &[(u64, I, Option<O>, u64, u64)]) -> Verdict {
    check(&CollectionsModel, &history(operations), Unlimited).verdict
}

#[test]
fn histories_are_judged_by_real_time() {
    let push = |element: &str| I::Push {
        key: s("{q}l"),
        end: End::Right,
        elements: strings(&[element]),
        only_existing: false,
    };
    let pop = || I::Pop {
        key: s("{q}l"),
        end: End::Left,
        count: None,
    };
    // Two concurrent pushes, then pops that see them in either order.
    let concurrent = [
        (1, push("a"), Some(O::Integer(2)), 0, 10),
        (2, push("b"), Some(O::Integer(1)), 1, 9),
        (1, pop(), Some(O::Value(Some(s("b")))), 20, 30),
        (2, pop(), Some(O::Value(Some(s("a")))), 31, 40),
    ];
    assert_eq!(verdict(&concurrent), Verdict::Linearizable);
    // One element popped by two clients: impossible.
    let popped_twice = [
        (1, push("a"), Some(O::Integer(1)), 0, 10),
        (1, pop(), Some(O::Value(Some(s("a")))), 20, 30),
        (2, pop(), Some(O::Value(Some(s("a")))), 21, 29),
    ];
    assert_eq!(verdict(&popped_twice), Verdict::NotLinearizable);
    // A stale read: SMEMBERS after SADD returned misses the member.
    let stale = [
        (
            1,
            I::SAdd {
                key: s("{q}s"),
                members: strings(&["m"]),
            },
            Some(O::Integer(1)),
            0,
            10,
        ),
        (
            2,
            I::SMembers { key: s("{q}s") },
            Some(O::Values(Vec::new())),
            11,
            20,
        ),
    ];
    assert_eq!(verdict(&stale), Verdict::NotLinearizable);
    // A move whose effect is seen on one key but not the other (not
    // atomic): impossible.
    let torn_move = [
        (
            1,
            I::SAdd {
                key: s("{q}a"),
                members: strings(&["m"]),
            },
            Some(O::Integer(1)),
            0,
            1,
        ),
        (
            1,
            I::SMove {
                source: s("{q}a"),
                destination: s("{q}b"),
                member: s("m"),
            },
            None,
            2,
            3,
        ),
        (
            2,
            I::SCombine {
                how: Combine::Union,
                keys: strings(&["{q}a", "{q}b"]),
            },
            Some(O::Values(Vec::new())),
            10,
            11,
        ),
    ];
    assert_eq!(verdict(&torn_move), Verdict::NotLinearizable);
    // An SPOP that timed out, then reads that agree on what it took.
    let unknown_pop = [
        (
            1,
            I::SAdd {
                key: s("{q}s"),
                members: strings(&["a", "b", "c"]),
            },
            Some(O::Integer(3)),
            0,
            1,
        ),
        (
            1,
            I::SPop {
                key: s("{q}s"),
                count: Some(2),
            },
            None,
            2,
            3,
        ),
        (2, I::SCard { key: s("{q}s") }, Some(O::Integer(1)), 10, 11),
        (
            2,
            I::SIsMember {
                key: s("{q}s"),
                member: s("b"),
            },
            Some(O::Integer(1)),
            12,
            13,
        ),
        (
            3,
            I::SMembers { key: s("{q}s") },
            Some(O::Values(strings(&["b"]))),
            14,
            15,
        ),
    ];
    assert_eq!(verdict(&unknown_pop), Verdict::Linearizable);
    let mut disagreeing = unknown_pop.to_vec();
    disagreeing[4].2 = Some(O::Values(strings(&["a"])));
    assert_eq!(verdict(&disagreeing), Verdict::NotLinearizable);
}

#[test]
fn operations_are_partitioned_by_tag() {
    let input = I::ZStore {
        how: Combine::Union,
        destination: s("{board}d"),
        sources: strings(&["{board}a", "{board}b"]),
        weights: Vec::new(),
        aggregate: Aggregate::Sum,
    };
    assert_eq!(CollectionsModel.partition(&input), "board");
    assert_eq!(input.keys(), vec!["{board}d", "{board}a", "{board}b"]);
}
