//! Placement: which group serves which shard after a Join or Leave.
//!
//! [`rebalance`] is a pure, deterministic function of the current
//! assignment and the new set of groups. It uses no randomness and no
//! hash-map order: every replica computes the same answer.
//!
//! ## What it guarantees
//!
//! With `S` shards and `n > 0` groups, let `floor = S / n` and
//! `r = S % n`. Afterwards:
//!
//! - **Balanced**: every group holds `floor` or `floor + 1` shards (exactly
//!   `r` groups hold `floor + 1`), so the largest holds at most one more
//!   than the smallest.
//! - **Fewest moves**: a shard keeps its group whenever it can. A shard
//!   must move if its group is not in the new set (it left, or the shard
//!   was [`UNASSIGNED`]); otherwise it moves only if its group holds more
//!   than the group's target. Giving group `g` (holding `c_g` shards) the
//!   target `t_g` keeps `min(c_g, t_g)` of its shards, so the number of
//!   moves is `S - Σ min(c_g, t_g)`. The `r` larger targets are worth one
//!   extra kept shard exactly to the groups that hold more than `floor`, so
//!   they go to the groups holding the most shards (ties: smaller gid
//!   first). That choice maximises the kept count, hence minimises moves;
//!   and no group both gives and receives.
//! - **Deterministic choice of which shards**: a group over its target
//!   keeps its lowest-numbered shards; freed shards, in ascending order,
//!   fill the groups under their targets in ascending gid order.
//! - With no groups every shard is [`UNASSIGNED`].
//!
//! From a balanced assignment, joining groups moves shards only to the new
//! groups, and removing groups moves shards only away from the removed
//! ones (the lab's "minimal transfer" checks), because the remaining
//! groups' targets never fall below (join) or rise above (leave) what they
//! already hold.
//!
//! Cost: `O(S + n log n)` time and `O(S + n)` memory.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Gid, UNASSIGNED};

/// The assignment after the set of groups became `groups`: balanced, with
/// the fewest shard moves from `shards` (see the module docs).
///
/// `shards[s]` is shard `s`'s current group; a group not in `groups`
/// (including [`UNASSIGNED`]) counts as gone, so its shards must move.
///
/// # Panics
/// If `groups` contains [`UNASSIGNED`] (gid 0 is reserved; callers refuse
/// it before it gets here).
pub fn rebalance(shards: &[Gid], groups: &BTreeSet<Gid>) -> Vec<Gid> {
    assert!(
        !groups.contains(&UNASSIGNED),
        "gid {UNASSIGNED} is reserved for unassigned shards and cannot be a group"
    );
    if groups.is_empty() {
        return vec![UNASSIGNED; shards.len()];
    }
    let targets = targets(shards, groups);

    // Shards each remaining group holds, ascending; and the shards with no
    // remaining group.
    let mut held: BTreeMap<Gid, Vec<usize>> = groups.iter().map(|&gid| (gid, Vec::new())).collect();
    let mut freed: Vec<usize> = Vec::new();
    for (shard, gid) in shards.iter().enumerate() {
        match held.get_mut(gid) {
            Some(list) => list.push(shard),
            None => freed.push(shard),
        }
    }
    // Groups over target give up their highest-numbered shards.
    for (gid, list) in &mut held {
        let target = targets[gid];
        if list.len() > target {
            freed.extend(list.drain(target..));
        }
    }
    freed.sort_unstable();

    let mut placed = shards.to_vec();
    let mut freed = freed.into_iter();
    for (gid, list) in &held {
        for _ in list.len()..targets[gid] {
            let shard = freed
                .next()
                .expect("targets sum to the shard count, so a freed shard is left for every gap");
            placed[shard] = *gid;
        }
    }
    assert!(
        freed.next().is_none(),
        "targets sum to the shard count, so every freed shard finds a group"
    );
    placed
}

/// Each group's target count: `floor` for all, `floor + 1` for the `r`
/// groups holding the most shards now (ties: smaller gid).
fn targets(shards: &[Gid], groups: &BTreeSet<Gid>) -> BTreeMap<Gid, usize> {
    let group_count = groups.len();
    let floor = shards.len() / group_count;
    let with_extra = shards.len() % group_count;
    let mut counts: BTreeMap<Gid, usize> = groups.iter().map(|&gid| (gid, 0)).collect();
    for gid in shards {
        if let Some(count) = counts.get_mut(gid) {
            *count += 1;
        }
    }
    let mut by_size: Vec<(Gid, usize)> = counts.into_iter().collect();
    // Most shards first; among equals the smaller gid (the BTreeMap gave
    // ascending gids and the sort is stable).
    by_size.sort_by_key(|&(_, held)| std::cmp::Reverse(held));
    by_size
        .into_iter()
        .enumerate()
        .map(|(rank, (gid, _))| (gid, floor + usize::from(rank < with_extra)))
        .collect()
}

/// Whether every group in `groups` holds `floor` or `floor + 1` of
/// `shards` and no shard is outside `groups` (with no groups: every shard
/// [`UNASSIGNED`]).
pub fn is_balanced(shards: &[Gid], groups: &BTreeSet<Gid>) -> bool {
    if groups.is_empty() {
        return shards.iter().all(|&gid| gid == UNASSIGNED);
    }
    let mut counts: BTreeMap<Gid, usize> = groups.iter().map(|&gid| (gid, 0)).collect();
    for gid in shards {
        match counts.get_mut(gid) {
            Some(count) => *count += 1,
            None => return false,
        }
    }
    let min = counts.values().copied().min().unwrap_or(0);
    let max = counts.values().copied().max().unwrap_or(0);
    max <= min + 1
}

/// The fewest shard moves that can balance `before` over `groups`,
/// computed from counts alone (independently of [`rebalance`], which tests
/// compare against it). Every balanced assignment gives `floor` shards to
/// each group and one more to `r` of them; a group keeps at most
/// `min(held, target)` of its shards, and the extra slot raises that by one
/// only for a group holding more than `floor`. So at most
/// `Σ min(held, floor) + min(r, #groups holding more than floor)` shards
/// stay, and every other shard moves. With no groups, every assigned shard
/// moves (to [`UNASSIGNED`]).
pub fn minimum_moves(before: &[Gid], groups: &BTreeSet<Gid>) -> usize {
    if groups.is_empty() {
        return before.iter().filter(|&&gid| gid != UNASSIGNED).count();
    }
    let floor = before.len() / groups.len();
    let extra_slots = before.len() % groups.len();
    let mut held: BTreeMap<Gid, usize> = groups.iter().map(|&gid| (gid, 0)).collect();
    for gid in before {
        if let Some(count) = held.get_mut(gid) {
            *count += 1;
        }
    }
    let kept_at_floor: usize = held.values().map(|&count| count.min(floor)).sum();
    let above_floor = held.values().filter(|&&count| count > floor).count();
    before.len() - (kept_at_floor + extra_slots.min(above_floor))
}

/// How many shards have a different group in `after` than in `before`.
pub fn moved_count(before: &[Gid], after: &[Gid]) -> usize {
    assert_eq!(
        before.len(),
        after.len(),
        "assignments of different shard counts"
    );
    before.iter().zip(after).filter(|(a, b)| a != b).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(gids: &[Gid]) -> BTreeSet<Gid> {
        gids.iter().copied().collect()
    }

    #[test]
    fn first_join_takes_every_shard() {
        let placed = rebalance(&[UNASSIGNED; 10], &set(&[5]));
        assert_eq!(placed, vec![5; 10]);
    }

    #[test]
    fn second_join_takes_the_upper_half() {
        let placed = rebalance(&[1; 10], &set(&[1, 2]));
        assert_eq!(placed, vec![1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    }

    #[test]
    fn third_join_takes_from_both_and_larger_keeps_extra() {
        // 1 holds 6, 2 holds 4: with 3 groups targets are 4/3/3, the 4 goes
        // to group 1 (holds most), so 1 gives 2 and 2 gives 1.
        let before = vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2];
        let placed = rebalance(&before, &set(&[1, 2, 3]));
        assert_eq!(placed, vec![1, 1, 1, 1, 3, 3, 2, 2, 2, 3]);
        assert_eq!(moved_count(&before, &placed), 3);
    }

    #[test]
    fn ties_give_the_extra_shard_to_the_smaller_gid() {
        // 9 and 4 both hold 5; one more group: targets 4/3/3 and the 4 goes
        // to gid 4.
        let before = vec![9, 9, 9, 9, 9, 4, 4, 4, 4, 4];
        let placed = rebalance(&before, &set(&[4, 9, 7]));
        assert_eq!(placed, vec![9, 9, 9, 7, 7, 4, 4, 4, 4, 7]);
    }

    #[test]
    fn leave_moves_only_the_leavers_shards() {
        let before = vec![1, 1, 1, 1, 3, 3, 2, 2, 2, 3];
        let placed = rebalance(&before, &set(&[1, 2]));
        assert_eq!(placed, vec![1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    }

    #[test]
    fn last_leave_unassigns_everything() {
        assert_eq!(rebalance(&[4; 3], &set(&[])), vec![UNASSIGNED; 3]);
    }

    #[test]
    fn more_groups_than_shards_moves_nothing_needlessly() {
        let before = vec![1, 2, 3];
        let placed = rebalance(&before, &set(&[1, 2, 3, 4, 5]));
        assert_eq!(placed, before);
        // A group holding two of three shards gives one to a newcomer.
        let placed = rebalance(&[1, 1, 2], &set(&[1, 2, 3]));
        assert_eq!(placed, vec![1, 3, 2]);
    }

    #[test]
    fn balanced_assignment_is_left_alone() {
        let before = vec![3, 1, 2, 3, 1, 2, 3, 1, 2, 1];
        assert_eq!(rebalance(&before, &set(&[1, 2, 3])), before);
    }

    #[test]
    fn balance_check_sees_strays_and_spread() {
        assert!(is_balanced(&[1, 2, 1], &set(&[1, 2])));
        assert!(!is_balanced(&[1, 1, 1, 2], &set(&[1, 2])));
        assert!(!is_balanced(&[1, 3], &set(&[1, 2])));
        assert!(!is_balanced(&[1, 1], &set(&[1, 2, 3])));
        assert!(is_balanced(&[1, 2], &set(&[1, 2, 3])));
        assert!(is_balanced(&[UNASSIGNED; 2], &set(&[])));
        assert!(!is_balanced(&[1, 2, 1], &set(&[])));
    }

    #[test]
    #[should_panic(expected = "reserved")]
    fn gid_zero_is_refused() {
        rebalance(&[UNASSIGNED; 2], &set(&[0, 1]));
    }
}
