//! Property tests of the placement function: for random sequences of joins,
//! leaves and moves (up to 100 groups, 1024 shards), every Join and Leave
//! leaves a balanced assignment and moves exactly the minimum number of
//! shards. The minimum is `placement::minimum_moves`, a counting argument
//! over the before/after group counts that shares no code with
//! `rebalance`, and is itself checked here against a brute-force search
//! over every balanced assignment for tiny cases.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use shardctrler::placement::{minimum_moves, rebalance};
use shardctrler::{Gid, UNASSIGNED};

const MAX_GROUPS: usize = 100;

/// Shards per group among `groups` (groups holding none included).
fn counts(shards: &[Gid], groups: &BTreeSet<Gid>) -> BTreeMap<Gid, usize> {
    let mut counts: BTreeMap<Gid, usize> = groups.iter().map(|&gid| (gid, 0)).collect();
    for gid in shards {
        if let Some(count) = counts.get_mut(gid) {
            *count += 1;
        }
    }
    counts
}

/// Balance as the lab checks it, plus: nothing outside `groups`.
fn assert_balanced(shards: &[Gid], groups: &BTreeSet<Gid>) {
    if groups.is_empty() {
        assert!(
            shards.iter().all(|&gid| gid == UNASSIGNED),
            "no groups, yet shards are assigned: {shards:?}"
        );
        return;
    }
    for (shard, gid) in shards.iter().enumerate() {
        assert!(
            groups.contains(gid),
            "shard {shard} is on gid {gid}, which is not among the groups {groups:?}"
        );
    }
    let counts = counts(shards, groups);
    let min = *counts.values().min().expect("groups is not empty");
    let max = *counts.values().max().expect("groups is not empty");
    assert!(
        max <= min + 1,
        "unbalanced: max {max} shards per group, min {min} ({counts:?})"
    );
}

fn moved(before: &[Gid], after: &[Gid]) -> usize {
    before.iter().zip(after).filter(|(a, b)| a != b).count()
}

/// No group both loses and gains shards (a wasted move would).
fn assert_no_group_gives_and_takes(before: &[Gid], after: &[Gid]) {
    let mut gave = BTreeSet::new();
    let mut took = BTreeSet::new();
    for (a, b) in before.iter().zip(after) {
        if a != b {
            gave.insert(*a);
            took.insert(*b);
        }
    }
    let both: Vec<_> = gave.intersection(&took).collect();
    assert!(both.is_empty(), "groups {both:?} both gave and took shards");
}

/// One step of a random history, interpreted against the current state so
/// that it is always a valid request.
#[derive(Clone, Debug)]
enum Step {
    Join { count: usize },
    Leave { count: usize, pick: u64 },
    Move { shard_pick: u64, group_pick: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..=8).prop_map(|count| Step::Join { count }),
        3 => (1usize..=8, any::<u64>()).prop_map(|(count, pick)| Step::Leave { count, pick }),
        2 => (any::<u64>(), any::<u64>())
            .prop_map(|(shard_pick, group_pick)| Step::Move { shard_pick, group_pick }),
    ]
}

/// Applies `steps` from an empty start; checks each Join and Leave.
fn run_history(shard_count: usize, steps: &[Step]) {
    let mut shards = vec![UNASSIGNED; shard_count];
    let mut groups: BTreeSet<Gid> = BTreeSet::new();
    let mut next_gid: Gid = 1;
    for step in steps {
        match *step {
            Step::Join { count } => {
                let room = MAX_GROUPS - groups.len();
                for _ in 0..count.min(room) {
                    groups.insert(next_gid);
                    next_gid += 1;
                }
            }
            Step::Leave { count, pick } => {
                let mut pick = pick;
                for _ in 0..count.min(groups.len()) {
                    let index = (pick % groups.len() as u64) as usize;
                    let gid = *groups.iter().nth(index).expect("index < len");
                    groups.remove(&gid);
                    pick = pick.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
                }
            }
            Step::Move {
                shard_pick,
                group_pick,
            } => {
                // Move is not a rebalance: one shard changes hands.
                if !groups.is_empty() {
                    let shard = (shard_pick % shard_count as u64) as usize;
                    let index = (group_pick % groups.len() as u64) as usize;
                    shards[shard] = *groups.iter().nth(index).expect("index < len");
                }
                continue;
            }
        }
        let after = rebalance(&shards, &groups);
        assert_balanced(&after, &groups);
        let expected = minimum_moves(&shards, &groups);
        let actual = moved(&shards, &after);
        assert_eq!(
            actual,
            expected,
            "{step:?} over {} groups moved {actual} shards, the minimum is {expected}",
            groups.len()
        );
        assert_no_group_gives_and_takes(&shards, &after);
        shards = after;
    }
}

/// Every assignment of `shard_count` shards to `groups` (as indices), for
/// a brute-force minimum.
fn brute_force_minimum(before: &[Gid], groups: &BTreeSet<Gid>) -> usize {
    let gids: Vec<Gid> = groups.iter().copied().collect();
    let shard_count = before.len();
    let total = gids.len().pow(shard_count as u32);
    let mut best = usize::MAX;
    for code in 0..total {
        let mut rest = code;
        let mut candidate = Vec::with_capacity(shard_count);
        for _ in 0..shard_count {
            candidate.push(gids[rest % gids.len()]);
            rest /= gids.len();
        }
        let counts = counts(&candidate, groups);
        let min = *counts.values().min().expect("groups is not empty");
        let max = *counts.values().max().expect("groups is not empty");
        if max <= min + 1 {
            best = best.min(moved(before, &candidate));
        }
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random histories over up to 1024 shards and 100 groups.
    #[test]
    fn joins_and_leaves_stay_balanced_with_fewest_moves(
        shard_count in 1usize..=1024,
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        run_history(shard_count, &steps);
    }

    /// The lab's shape: 10 shards, small groups counts, long histories.
    #[test]
    fn lab_sized_histories(steps in proptest::collection::vec(step(), 1..120)) {
        run_history(10, &steps);
    }

    /// Tiny cases against a brute-force search over every balanced
    /// assignment (this also checks the counting argument above).
    #[test]
    fn fewest_moves_matches_brute_force(
        before in proptest::collection::vec(0u64..=5, 1..=7),
        group_mask in 1u8..32,
    ) {
        let groups: BTreeSet<Gid> = (1..=5).filter(|gid| group_mask & (1 << (gid - 1)) != 0).collect();
        if groups.len() <= 4 {
            let after = rebalance(&before, &groups);
            assert_balanced(&after, &groups);
            let brute = brute_force_minimum(&before, &groups);
            prop_assert_eq!(minimum_moves(&before, &groups), brute);
            prop_assert_eq!(moved(&before, &after), brute);
        }
    }

    /// From a balanced start, joining one group moves shards only to it
    /// and at most ceil(S / n) of them; a leave moves only the leaver's.
    #[test]
    fn single_join_or_leave_touches_only_that_group(
        shard_count in 1usize..=1024,
        group_count in 1u64..=99,
    ) {
        let groups: BTreeSet<Gid> = (1..=group_count).collect();
        let balanced = rebalance(&vec![UNASSIGNED; shard_count], &groups);
        let newcomer = group_count + 1;
        let mut joined = groups.clone();
        joined.insert(newcomer);
        let after_join = rebalance(&balanced, &joined);
        for (shard, (a, b)) in balanced.iter().zip(&after_join).enumerate() {
            prop_assert!(a == b || *b == newcomer, "join moved shard {} from {} to {}", shard, a, b);
        }
        prop_assert!(moved(&balanced, &after_join) <= shard_count.div_ceil(joined.len()));
        let after_leave = rebalance(&after_join, &groups);
        for (shard, (a, b)) in after_join.iter().zip(&after_leave).enumerate() {
            prop_assert!(a == b || *a == newcomer, "leave moved shard {} from {} to {}", shard, a, b);
        }
    }
}
