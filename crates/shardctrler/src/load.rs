//! Load-aware placement: move a few shards off the busiest group.
//!
//! [`rebalance`](crate::placement::rebalance) balances shard *counts*, which
//! is right when every shard is as busy as the others. When a few shards
//! take most of the requests, the group holding them is the bottleneck
//! however evenly the counts are spread. [`plan_load_moves`] takes a load
//! per shard (requests per interval, in any unit, the same for all shards)
//! and picks up to `max_moves` shard moves that lower the load of the
//! busiest group; [`balance_load`] applies them.
//!
//! Like `rebalance` it is pure and deterministic: integers only, groups
//! and shards visited in ascending order, no randomness and no hash-map
//! order, so every controller replica computes the same answer.
//!
//! ## One step
//!
//! Write `L(g)` for a group's load (the sum of its shards' loads), `n` for
//! the number of groups, `T` for the sum of all `L(g)` and `M` for the
//! largest `L(g)`. Each step:
//!
//! 1. The *receiver* `r` is the least-loaded group (ties: the smaller gid).
//! 2. A *candidate* is a shard `s` with load `l > 0` on a group at `M`
//!    (a *giver*) such that `L(r) + l < M`. Moving it turns the pair's
//!    loads `(M, L(r))` into `(M - l, L(r) + l)`, so the larger of the two
//!    drops by the *gain* `min(l, M - L(r) - l)`, which is positive.
//! 3. The candidate with the largest gain moves from its giver to `r`
//!    (ties: the lowest shard number). The step is taken only if the gain
//!    exceeds the *hysteresis margin*, `hysteresis_percent` of the mean
//!    group load `T / n` (compared exactly: `gain * 100 * n > T * percent`);
//!    otherwise placement stops.
//!
//! Steps repeat until `max_moves` were taken or no step is worth taking.
//! The least-loaded group is the best receiver for any shard: for another
//! receiver `u`, `L(u) + l >= L(r) + l`, so the pair's larger load after
//! the move can only be higher, and `r`'s load stays in the maximum.
//!
//! ## What it guarantees, and why
//!
//! - **Deterministic**: the same inputs give the same moves on every
//!   replica (see above).
//! - **At most `max_moves` moves**: each step moves one shard and the loop
//!   takes at most `max_moves` steps, so at most `max_moves` shards change
//!   group (fewer if a shard moved twice).
//! - **The maximum group load never rises**: a step changes two loads, the
//!   giver's (from `M` to `M - l < M`) and the receiver's (to
//!   `L(r) + l < M`, by the candidate rule); every other group keeps its
//!   load, which was at most `M`. When one group alone holds the maximum,
//!   the first step lowers the maximum itself; when several share it, each
//!   step lowers one of them and the maximum falls once each has given.
//! - **Equal loads leave a count-balanced assignment alone** (the
//!   minimal-move property): if every shard has load `c` and every group
//!   holds `k` or `k + 1` shards, any two groups' loads differ by at most
//!   `c`, so `L(r) + c >= M` and no shard is a candidate. Nothing moves,
//!   whatever the margin. (With `c = 0` no shard has a positive load.) So
//!   with uniform load, load-aware placement keeps what `rebalance` made:
//!   Join and Leave still move the fewest shards, and this moves none.
//! - **No cycles**: each step lowers the sum of squared group loads, by
//!   `2l(M - L(r) - l) > 0`, so an assignment never comes back within one
//!   call, and `max_moves` steps of one call are the same as the same
//!   steps taken over several calls with the same loads (each step depends
//!   only on the assignment it starts from).
//! - **Small noise moves nothing**: a step must gain more than the margin
//!   (10 % of the mean group load with [`HYSTERESIS_PERCENT`]), so loads
//!   that are nearly even, or a shard too small to matter, stay put.
//!
//! What it does not promise: the result is not the best assignment for
//! the loads (that is a bin-packing problem; the greedy steps only make
//! the busiest group less busy), and a group may receive a shard in one
//! step and give one in a later step of the same call once the others
//! fell below it, and a shard may move twice (random cases show both).
//! With `max_moves = 1`, which the nodes' balancer sends, neither happens. Shards on a gid not in `groups` (none in a
//! controller's configuration while groups exist) are neither counted nor
//! moved. Counts may end unbalanced: that is the point, and the next Join
//! or Leave balances counts again with the fewest moves.
//!
//! Cost: `O(S + n)` per step, `O(max_moves * (S + n))` in all.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Gid, UNASSIGNED};

/// The controller's hysteresis margin, in percent of the mean group load:
/// a move must lower the busier of its two groups by more than this.
pub const HYSTERESIS_PERCENT: u64 = 10;

/// One shard move chosen by [`plan_load_moves`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadMove {
    pub shard: usize,
    pub from: Gid,
    pub to: Gid,
}

/// The load of each group in `groups` under `shards` (groups holding no
/// shard included, at 0). Shards on a gid not in `groups` count nowhere.
///
/// # Panics
/// If `loads` and `shards` differ in length.
pub fn group_loads(shards: &[Gid], groups: &BTreeSet<Gid>, loads: &[u64]) -> BTreeMap<Gid, u128> {
    assert_eq!(
        shards.len(),
        loads.len(),
        "one load per shard: {} shards, {} loads",
        shards.len(),
        loads.len()
    );
    let mut totals: BTreeMap<Gid, u128> = groups.iter().map(|&gid| (gid, 0)).collect();
    for (gid, &load) in shards.iter().zip(loads) {
        if let Some(total) = totals.get_mut(gid) {
            *total += u128::from(load);
        }
    }
    totals
}

/// The moves, in order, that lower the busiest group's load (see the
/// module docs): at most `max_moves`, each worth more than
/// `hysteresis_percent` of the mean group load.
///
/// # Panics
/// If `loads` and `shards` differ in length, or `groups` contains
/// [`UNASSIGNED`].
pub fn plan_load_moves(
    shards: &[Gid],
    groups: &BTreeSet<Gid>,
    loads: &[u64],
    max_moves: usize,
    hysteresis_percent: u64,
) -> Vec<LoadMove> {
    assert!(
        !groups.contains(&UNASSIGNED),
        "gid {UNASSIGNED} is reserved for unassigned shards and cannot be a group"
    );
    let mut group_load = group_loads(shards, groups, loads);
    let total: u128 = group_load.values().sum();
    let group_count = groups.len() as u128;
    let mut placed = shards.to_vec();
    let mut moves = Vec::new();
    while moves.len() < max_moves {
        let Some(step) = best_step(&placed, &group_load, loads) else {
            break;
        };
        // gain / (total / n) > percent / 100, without rounding.
        let worth_it = step.gain.saturating_mul(100).saturating_mul(group_count)
            > total.saturating_mul(u128::from(hysteresis_percent));
        if !worth_it {
            break;
        }
        let load = u128::from(loads[step.shard]);
        *group_load
            .get_mut(&step.from)
            .expect("the giver is a group") -= load;
        *group_load
            .get_mut(&step.to)
            .expect("the receiver is a group") += load;
        placed[step.shard] = step.to;
        moves.push(LoadMove {
            shard: step.shard,
            from: step.from,
            to: step.to,
        });
    }
    moves
}

/// `shards` after the moves of [`plan_load_moves`].
///
/// # Panics
/// As [`plan_load_moves`].
pub fn balance_load(
    shards: &[Gid],
    groups: &BTreeSet<Gid>,
    loads: &[u64],
    max_moves: usize,
    hysteresis_percent: u64,
) -> Vec<Gid> {
    let mut placed = shards.to_vec();
    for step in plan_load_moves(shards, groups, loads, max_moves, hysteresis_percent) {
        debug_assert_eq!(placed[step.shard], step.from);
        placed[step.shard] = step.to;
    }
    placed
}

/// A candidate move and how much it lowers the busier of its two groups.
struct Step {
    shard: usize,
    from: Gid,
    to: Gid,
    gain: u128,
}

/// The best single move from a group at the maximum load to the
/// least-loaded group, if any shard is a candidate (module docs, steps 1
/// to 3, without the margin).
fn best_step(placed: &[Gid], group_load: &BTreeMap<Gid, u128>, loads: &[u64]) -> Option<Step> {
    let max = *group_load.values().max()?;
    // The least-loaded group, the smaller gid among equals (min_by_key
    // keeps the first, and the map iterates in ascending gid order).
    let (&receiver, &receiver_load) = group_load.iter().min_by_key(|&(_, &load)| load)?;
    let mut best: Option<Step> = None;
    for (shard, gid) in placed.iter().enumerate() {
        if group_load.get(gid) != Some(&max) {
            continue;
        }
        let load = u128::from(loads[shard]);
        if load == 0 || receiver_load + load >= max {
            continue;
        }
        let gain = load.min(max - receiver_load - load);
        // Strictly larger: among equal gains the lowest shard stays.
        if best.as_ref().is_none_or(|best| gain > best.gain) {
            best = Some(Step {
                shard,
                from: *gid,
                to: receiver,
                gain,
            });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(gids: &[Gid]) -> BTreeSet<Gid> {
        gids.iter().copied().collect()
    }

    #[test]
    fn a_hot_shard_moves_to_the_coldest_group() {
        // Group 1 holds shards 0, 1 (hot: 50 + 40), group 2 shards 2, 3,
        // group 3 shards 4, 5. Loads 90 / 20 / 10, mean 40, margin 4.
        let shards = [1, 1, 2, 2, 3, 3];
        let loads = [50, 40, 10, 10, 5, 5];
        let moves = plan_load_moves(&shards, &set(&[1, 2, 3]), &loads, 1, HYSTERESIS_PERCENT);
        // Shard 0: gain min(50, 90 - 10 - 50) = 30; shard 1: min(40, 40) = 40.
        assert_eq!(
            moves,
            vec![LoadMove {
                shard: 1,
                from: 1,
                to: 3
            }]
        );
        let placed = balance_load(&shards, &set(&[1, 2, 3]), &loads, 1, HYSTERESIS_PERCENT);
        assert_eq!(placed, vec![1, 3, 2, 2, 3, 3]);
    }

    #[test]
    fn moves_stop_at_max_moves_and_when_nothing_gains() {
        let shards = [1, 1, 1, 1, 2, 2];
        let loads = [30, 30, 30, 30, 1, 1];
        let groups = set(&[1, 2]);
        // 120 / 2 (margin 6.1): the first move gives 90 / 32 (gain 30),
        // the second 60 / 62 (gain 28); then the best candidate, a load-1
        // shard of group 2, would gain 1, under the margin.
        let all = plan_load_moves(&shards, &groups, &loads, 10, HYSTERESIS_PERCENT);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].shard, 0);
        assert_eq!(all[1].shard, 1);
        let one = plan_load_moves(&shards, &groups, &loads, 1, HYSTERESIS_PERCENT);
        assert_eq!(one, all[..1]);
        assert!(plan_load_moves(&shards, &groups, &loads, 0, HYSTERESIS_PERCENT).is_empty());
    }

    #[test]
    fn equal_loads_on_balanced_counts_move_nothing() {
        let shards = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1];
        let groups = set(&[1, 2, 3]);
        for load in [0, 1, 7, u64::MAX] {
            let loads = [load; 10];
            for percent in [0, 10, 50] {
                assert!(
                    plan_load_moves(&shards, &groups, &loads, 10, percent).is_empty(),
                    "load {load}, margin {percent}%"
                );
            }
        }
    }

    #[test]
    fn the_margin_holds_back_small_gains() {
        // 11 / 9 over two groups: moving shard 1 (load 1) gains 1; the
        // mean is 10, so a 10 % margin (1) holds it back and 5 % lets it.
        let shards = [1, 1, 2];
        let loads = [10, 1, 9];
        let groups = set(&[1, 2]);
        assert!(plan_load_moves(&shards, &groups, &loads, 1, 10).is_empty());
        assert_eq!(
            plan_load_moves(&shards, &groups, &loads, 1, 5),
            vec![LoadMove {
                shard: 1,
                from: 1,
                to: 2
            }]
        );
    }

    #[test]
    fn a_lone_heavy_shard_stays() {
        // Moving the only shard of the busiest group would just move the
        // maximum: no candidate.
        let shards = [1, 2, 2];
        let loads = [100, 1, 1];
        assert!(plan_load_moves(&shards, &set(&[1, 2]), &loads, 5, 0).is_empty());
    }

    #[test]
    fn tied_busiest_groups_each_give() {
        // Groups 1 and 2 both at 20, group 3 empty: one move cannot lower
        // the maximum, but one from each does (20 -> 15).
        let shards = [1, 1, 1, 1, 2, 2, 2, 2];
        let loads = [5; 8];
        let groups = set(&[1, 2, 3]);
        let moves = plan_load_moves(&shards, &groups, &loads, 5, HYSTERESIS_PERCENT);
        assert_eq!(
            moves,
            vec![
                LoadMove {
                    shard: 0,
                    from: 1,
                    to: 3
                },
                LoadMove {
                    shard: 4,
                    from: 2,
                    to: 3
                },
            ]
        );
        let placed = balance_load(&shards, &groups, &loads, 5, HYSTERESIS_PERCENT);
        let after = group_loads(&placed, &groups, &loads);
        assert_eq!(
            after.values().copied().collect::<Vec<_>>(),
            vec![15, 15, 10]
        );
    }

    #[test]
    fn one_group_or_none_moves_nothing() {
        assert!(plan_load_moves(&[4, 4], &set(&[4]), &[5, 9], 3, 0).is_empty());
        assert!(plan_load_moves(&[UNASSIGNED; 2], &set(&[]), &[5, 9], 3, 0).is_empty());
    }

    #[test]
    fn shards_of_unlisted_groups_are_left_alone() {
        // Shard 0 sits on gid 9, not a group: neither counted nor moved.
        let shards = [9, 1, 1, 2];
        let loads = [1000, 10, 10, 0];
        let placed = balance_load(&shards, &set(&[1, 2]), &loads, 5, 0);
        assert_eq!(placed, vec![9, 2, 1, 2]);
    }

    #[test]
    fn huge_loads_do_not_overflow() {
        let shards = [1, 1, 2];
        let loads = [u64::MAX, u64::MAX, 0];
        let placed = balance_load(&shards, &set(&[1, 2]), &loads, 5, HYSTERESIS_PERCENT);
        assert_eq!(placed, vec![2, 1, 2]);
    }

    #[test]
    #[should_panic(expected = "one load per shard")]
    fn a_load_per_shard_is_required() {
        plan_load_moves(&[1, 2], &set(&[1, 2]), &[1], 1, 0);
    }
}
