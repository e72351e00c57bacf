//! Property tests of load-aware placement (`shardctrler::load`) over
//! random assignments and loads, checking what its module docs promise:
//! at most `max_moves` moves, the maximum group load never rises, every
//! move goes from a group at the maximum to the least-loaded group and is
//! worth more than the margin, placement stops only when no move anywhere
//! is worth it (checked by trying every giver and every receiver, not
//! only the least-loaded), equal loads leave a count-balanced assignment
//! alone, one call of `k + j` moves equals a call of `k` then one of `j`,
//! and the answer does not depend on anything but the inputs.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use shardctrler::Gid;
use shardctrler::load::{balance_load, group_loads, plan_load_moves};
use shardctrler::placement::{moved_count, rebalance};

/// Random groups (1 to 8 gids out of 1..=12), an assignment of
/// `shard_count` shards among them, and loads: mostly small with a few hot
/// shards, sometimes anything up to `u64::MAX`.
#[derive(Clone, Debug)]
struct Case {
    groups: BTreeSet<Gid>,
    shards: Vec<Gid>,
    loads: Vec<u64>,
    max_moves: usize,
    hysteresis_percent: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::btree_set(1u64..=12, 1..=8),
        1usize..=64,
        0usize..=12,
        prop_oneof![Just(0u64), Just(10u64), 0u64..=60],
    )
        .prop_flat_map(|(groups, shard_count, max_moves, hysteresis_percent)| {
            let gids: Vec<Gid> = groups.iter().copied().collect();
            let load = prop_oneof![
                6 => 0u64..=100,
                2 => 1_000u64..=100_000,
                1 => any::<u64>(),
            ];
            (
                proptest::collection::vec(0..gids.len(), shard_count),
                proptest::collection::vec(load, shard_count),
            )
                .prop_map(move |(picks, loads)| Case {
                    groups: groups.clone(),
                    shards: picks.iter().map(|&pick| gids[pick]).collect(),
                    loads,
                    max_moves,
                    hysteresis_percent,
                })
        })
}

fn max_load(loads: &BTreeMap<Gid, u128>) -> u128 {
    loads.values().copied().max().unwrap_or(0)
}

/// Whether moving a shard of load `load` from a group at `max` to a group
/// at `to_load` lowers the larger of the two by more than the margin
/// (`gain * 100 * n > total * percent`), computed independently of the
/// library.
fn worth_it(max: u128, to_load: u128, load: u128, total: u128, case: &Case) -> bool {
    if load == 0 || to_load + load >= max {
        return false;
    }
    let gain = max - (max - load).max(to_load + load);
    gain * 100 * case.groups.len() as u128 > total * u128::from(case.hysteresis_percent)
}

fn sum_of_squares(loads: &BTreeMap<Gid, u128>) -> Option<u128> {
    loads
        .values()
        .try_fold(0u128, |sum, &load| sum.checked_add(load.checked_mul(load)?))
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let Case {
        groups,
        shards,
        loads,
        max_moves,
        hysteresis_percent,
    } = case;
    let moves = plan_load_moves(shards, groups, loads, *max_moves, *hysteresis_percent);
    let after = balance_load(shards, groups, loads, *max_moves, *hysteresis_percent);
    prop_assert_eq!(
        &after,
        &balance_load(shards, groups, loads, *max_moves, *hysteresis_percent),
        "not deterministic"
    );
    prop_assert!(moves.len() <= *max_moves, "{} moves", moves.len());
    prop_assert!(moved_count(shards, &after) <= *max_moves);
    let before_loads = group_loads(shards, groups, loads);
    let total: u128 = before_loads.values().sum();
    let after_loads = group_loads(&after, groups, loads);
    prop_assert!(
        max_load(&after_loads) <= max_load(&before_loads),
        "the maximum rose from {} to {}",
        max_load(&before_loads),
        max_load(&after_loads)
    );
    prop_assert!(after.iter().all(|gid| groups.contains(gid)));

    // Replay the moves one by one.
    let mut placed = shards.clone();
    for step in &moves {
        let current = group_loads(&placed, groups, loads);
        let max = max_load(&current);
        let least = current
            .values()
            .copied()
            .min()
            .expect("groups is not empty");
        prop_assert_eq!(placed[step.shard], step.from);
        prop_assert_eq!(
            current[&step.from],
            max,
            "{:?} is not from a busiest group",
            step
        );
        prop_assert_eq!(
            current[&step.to],
            least,
            "{:?} is not to a least-loaded group",
            step
        );
        prop_assert!(worth_it(
            max,
            least,
            u128::from(loads[step.shard]),
            total,
            case
        ));
        placed[step.shard] = step.to;
        let next = group_loads(&placed, groups, loads);
        if let (Some(before), Some(after)) = (sum_of_squares(&current), sum_of_squares(&next)) {
            prop_assert!(
                after < before,
                "{:?} did not lower the sum of squares",
                step
            );
        }
    }
    prop_assert_eq!(&placed, &after);

    // Stopped early: no move from any busiest group to any group is worth it.
    if moves.len() < *max_moves {
        let max = max_load(&after_loads);
        for (shard, gid) in after.iter().enumerate() {
            if after_loads[gid] != max {
                continue;
            }
            for (&to, &to_load) in &after_loads {
                prop_assert!(
                    to == *gid || !worth_it(max, to_load, u128::from(loads[shard]), total, case),
                    "stopped, yet shard {} could move from {} to {}",
                    shard,
                    gid,
                    to
                );
            }
        }
    }

    // k + j moves at once are k moves, then j more.
    let first = max_moves / 2;
    let halfway = balance_load(shards, groups, loads, first, *hysteresis_percent);
    let rest = balance_load(
        &halfway,
        groups,
        loads,
        max_moves - first,
        *hysteresis_percent,
    );
    prop_assert_eq!(
        rest,
        after,
        "split into {} and {} moves",
        first,
        max_moves - first
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn load_moves_keep_their_promises(case in case()) {
        check(&case)?;
    }

    /// The minimal-move property: with every shard equally loaded, an
    /// assignment `rebalance` made (counts balanced) is left alone, for
    /// any margin and any number of allowed moves.
    #[test]
    fn equal_loads_move_nothing_from_balanced_counts(
        case in case(),
        load in prop_oneof![Just(0u64), 1u64..=1_000, Just(u64::MAX)],
    ) {
        let balanced = rebalance(&case.shards, &case.groups);
        let loads = vec![load; balanced.len()];
        let moves = plan_load_moves(
            &balanced,
            &case.groups,
            &loads,
            case.max_moves + 1,
            case.hysteresis_percent,
        );
        prop_assert!(moves.is_empty(), "equal loads moved {:?}", moves);
    }

    /// Large shard counts: the properties hold at 1024 shards too.
    #[test]
    fn large_assignments(
        gids in proptest::collection::btree_set(1u64..=200, 2..=100),
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 1024),
        loads in proptest::collection::vec(prop_oneof![9 => 0u64..=10, 1 => 0u64..=10_000], 1024),
        max_moves in 0usize..=40,
    ) {
        let ordered: Vec<Gid> = gids.iter().copied().collect();
        let shards = picks.iter().map(|pick| ordered[pick.index(ordered.len())]).collect();
        check(&Case { groups: gids, shards, loads, max_moves, hysteresis_percent: 10 })?;
    }
}
