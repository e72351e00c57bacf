//! Recording every clerk call to the controller and checking the whole
//! history against the configurations the replicas agree on.
//!
//! The controller is not a key/value register, so the `linearizability`
//! crate's models do not fit it. Its state is a growing sequence of
//! configurations; a change appends one and answers its number; a query
//! reads one entry (or the last). [`check_history`] checks, for the final
//! sequence of configurations `0..=L` held by the replicas:
//!
//! 1. **Sequential spec, exactly once.** Replaying the clients' changes in
//!    number order through a fresh [`ConfigHistory`] reproduces every
//!    configuration exactly: the change that answered `n` produced config
//!    `n`; a config no client was told about was produced by one change
//!    whose outcome the client never learnt (timed out), each used at most
//!    once. So every accepted change is present once, and nothing else is.
//! 2. **Identical contents for identical numbers**: every configuration a
//!    query returned equals the replicas' configuration of that number.
//! 3. **Real-time order** (the rest of linearizability for a sequence that
//!    only grows): a change's number exceeds every number any call had
//!    observed before the change was invoked; a read of the latest (a Query
//!    of the latest, or a refusal naming the latest) is at least every
//!    number observed before it was invoked; and nothing returns a number
//!    whose change was invoked after the call returned.
//! 4. **Placement**: every configuration made by a Join or Leave is
//!    balanced and moved exactly [`minimum_moves`] shards from its
//!    predecessor; one made by a BalanceLoad moved at most its
//!    `max_moves` shards, lists the same groups, and did not raise the
//!    largest group load under the loads it carried.
//! 5. **Retention**: a query refused with `Pruned { num, oldest }` asked
//!    for a number below the oldest kept, and the replica that answered had
//!    made configuration `oldest + K - 1` (with K =
//!    `Limits::max_retained_configs`; no group reports in these testers,
//!    so a replica drops configurations only past K, and `oldest` is
//!    exactly its latest minus K plus one): that number existed (it is
//!    at most the replicas' latest) and its change was invoked before the
//!    query returned. If any call is a Report, only `oldest` itself is
//!    known to have existed. Every other answer is checked as before.
//!
//! A Move of a shard to the group that already owns it makes no
//! configuration and answers the latest number: such a call (its number's
//! configuration already gives the shard to that group, and either the one
//! before did too or another change claims the number) is checked like a
//! read of the latest, not as the maker of a configuration. A DeclareLost
//! of a group already lost is the same kind of no-op (its number's
//! configuration lists the group lost, and the one before did too or
//! another change claims the number); one that removed a member is checked
//! for placement like a Leave. A BalanceLoad that found nothing worth
//! moving is one too: its placement, run on its number's configuration,
//! moves nothing (and, as for a Move, on the one before as well, or
//! another change claims the number).
//!
//! Refusals of changes are not checked against a linearization point
//! (a concurrent change may legitimately have made them valid or not).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use shardctrler::load::{HYSTERESIS_PERCENT, balance_load, group_loads};
use shardctrler::placement::{is_balanced, minimum_moves, moved_count};
use shardctrler::{Config, ConfigError, ConfigHistory, ConfigOp, Gid, Limits};

/// What a call returned (None in [`Call::outcome`]: no answer, unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A change made configuration `num`.
    Changed(u64),
    /// A query's configuration.
    Config(Config),
    /// A report was taken; the oldest configuration kept.
    Reported(u64),
    Refused(ConfigError),
}

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    pub client: u64,
    pub op: ConfigOp,
    pub invoked_us: u64,
    /// When it returned; for an unknown outcome, when the clerk gave up.
    pub returned_us: u64,
    pub outcome: Option<Outcome>,
}

impl Call {
    /// The largest configuration number this call proves existed when it
    /// returned. A `Pruned` answer proves `oldest + pruned_span - 1` (see
    /// the module docs, check 5).
    fn observed(&self, pruned_span: u64) -> Option<u64> {
        match &self.outcome {
            Some(Outcome::Changed(num)) => Some(*num),
            Some(Outcome::Config(config)) => Some(config.num),
            Some(Outcome::Refused(ConfigError::FutureConfig { latest, .. })) => Some(*latest),
            Some(Outcome::Refused(ConfigError::Pruned { oldest, .. })) => {
                Some(oldest + pruned_span - 1)
            }
            _ => None,
        }
    }

    /// The latest configuration number at the call's linearization point,
    /// if the call read it.
    fn read_latest(&self) -> Option<u64> {
        match (&self.op, &self.outcome) {
            (ConfigOp::Query { num: None }, Some(Outcome::Config(config))) => Some(config.num),
            // QueryApplied's "not yet" may lag: not a read of the latest.
            (
                ConfigOp::Query { .. },
                Some(Outcome::Refused(ConfigError::FutureConfig { latest, .. })),
            ) => Some(*latest),
            _ => None,
        }
    }
}

/// Collects calls from every clerk. Cheap to clone.
#[derive(Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl CallLog {
    pub fn push(&self, call: Call) {
        self.calls.lock().expect("call log lock").push(call);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("call log lock").clone()
    }
}

/// Checks `calls` against the replicas' `configs` (numbers 0..=L in
/// order). See the module docs. Returns how many configurations were
/// matched to calls whose outcome was unknown.
pub fn check_history(limits: Limits, configs: &[Config], calls: &[Call]) -> Result<u64, String> {
    for (position, config) in configs.iter().enumerate() {
        if config.num != position as u64 {
            return Err(format!(
                "the replicas' configuration at {position} is numbered {}",
                config.num
            ));
        }
    }
    let latest = configs.len() as u64 - 1;
    let (creators, noop_moves) = replay(limits, configs, calls)?;
    check_placement(configs, calls, &creators)?;
    // How many configurations a `Pruned` answer proves its replica held
    // (module docs, check 5).
    let reports = calls
        .iter()
        .any(|call| matches!(call.op, ConfigOp::Report { .. }));
    let pruned_span = if reports {
        1
    } else {
        limits.max_retained_configs as u64
    };
    for call in calls {
        let Some(outcome) = &call.outcome else {
            continue;
        };
        match outcome {
            Outcome::Config(config) => {
                let agreed = configs.get(config.num as usize).ok_or_else(|| {
                    format!(
                        "client {} read configuration {}, but the replicas' latest is {latest}",
                        call.client, config.num
                    )
                })?;
                if agreed != config {
                    return Err(format!(
                        "client {} read configuration {} as {config:?}; the replicas hold {agreed:?}",
                        call.client, config.num
                    ));
                }
            }
            Outcome::Refused(ConfigError::Pruned { num, oldest }) => {
                let proven = oldest + pruned_span - 1;
                if num >= oldest || proven > latest {
                    return Err(format!(
                        "client {} was told configuration {num} is no longer kept, the oldest \
                         kept being {oldest} (so configuration {proven} existed); the replicas' \
                         latest is {latest}",
                        call.client
                    ));
                }
            }
            Outcome::Refused(ConfigError::FutureConfig { num, latest: seen })
                if num <= seen || *seen > latest =>
            {
                return Err(format!(
                    "client {} was told configuration {num} is after the latest {seen} \
                     (replicas' latest {latest})",
                    call.client
                ));
            }
            _ => {}
        }
    }
    check_real_time(calls, &creators, &noop_moves, pruned_span)?;
    Ok(creators
        .iter()
        .skip(1)
        .filter(|&&creator| calls[creator].outcome.is_none())
        .count() as u64)
}

/// Whether `call` is a Move whose shard configuration `num` already gives
/// to the Move's group, a DeclareLost of a group configuration `num`
/// already lists lost, or a BalanceLoad that finds nothing to move in
/// configuration `num` (so the call may have changed nothing at `num`).
fn may_be_noop_move(call: &Call, configs: &[Config], num: u64) -> bool {
    let Some(config) = configs.get(num as usize) else {
        return false;
    };
    match &call.op {
        ConfigOp::Move { shard, gid } => config.owner(*shard) == Some(*gid),
        ConfigOp::DeclareLost { gid } => config.is_lost(*gid),
        ConfigOp::BalanceLoad { loads, max_moves } => {
            // A malformed one is refused, never answered with a number.
            if loads.len() != config.shard_count() {
                return false;
            }
            let gids: BTreeSet<Gid> = config.groups.keys().copied().collect();
            balance_load(&config.shards, &gids, loads, *max_moves, HYSTERESIS_PERCENT)
                == config.shards
        }
        _ => false,
    }
}

/// Whether `call` can have made configuration `num` from the one before,
/// as far as the configurations tell: for a BalanceLoad, its placement
/// from `num - 1` gives `num`; for the others, unknown here (true), the
/// replay checks them.
fn may_have_made(call: &Call, configs: &[Config], num: u64) -> bool {
    let ConfigOp::BalanceLoad { loads, max_moves } = &call.op else {
        return true;
    };
    let (Some(before), Some(after)) = (
        num.checked_sub(1)
            .and_then(|previous| configs.get(previous as usize)),
        configs.get(num as usize),
    ) else {
        return false;
    };
    if loads.len() != before.shard_count() || before.groups != after.groups {
        return false;
    }
    let gids: BTreeSet<Gid> = before.groups.keys().copied().collect();
    balance_load(&before.shards, &gids, loads, *max_moves, HYSTERESIS_PERCENT) == after.shards
}

/// Whether `call` (told `num`) is certainly a Move that changed nothing:
/// the configuration before `num` already gave its shard to its group.
fn is_noop_move(call: &Call, configs: &[Config], num: u64) -> bool {
    num > 0 && may_be_noop_move(call, configs, num) && may_be_noop_move(call, configs, num - 1)
}

/// Rebuilds the configurations from the calls; returns, per number, the
/// index of the call that made it (index 0 is a placeholder for config 0),
/// and the calls that were Moves changing nothing.
fn replay(
    limits: Limits,
    configs: &[Config],
    calls: &[Call],
) -> Result<(Vec<usize>, BTreeSet<usize>), String> {
    let latest = configs.len() as u64 - 1;
    let mut by_num: Vec<Option<usize>> = vec![None; configs.len()];
    let mut noop_moves = BTreeSet::new();
    for (index, call) in calls.iter().enumerate() {
        if let Some(Outcome::Changed(num)) = call.outcome {
            let slot = by_num.get_mut(num as usize).ok_or_else(|| {
                format!(
                    "client {} was told its {:?} made configuration {num}, but the replicas' \
                     latest is {latest}",
                    call.client, call.op
                )
            })?;
            if num == 0 || is_noop_move(call, configs, num) {
                if !may_be_noop_move(call, configs, num) {
                    return Err(format!(
                        "client {} was told its {:?} made configuration 0",
                        call.client, call.op
                    ));
                }
                noop_moves.insert(index);
                continue;
            }
            let Some(other) = *slot else {
                *slot = Some(index);
                continue;
            };
            // Two claim `num`: one may be a Move that found nothing to do.
            // When both may be, the one that cannot have made `num` is it
            // (two BalanceLoads with different loads are not
            // interchangeable, unlike two Moves of one shard to one group).
            let call_noop = may_be_noop_move(call, configs, num);
            let other_noop = may_be_noop_move(&calls[other], configs, num);
            let call_rather =
                !may_have_made(call, configs, num) || may_have_made(&calls[other], configs, num);
            if call_noop && (call_rather || !other_noop) {
                noop_moves.insert(index);
            } else if other_noop {
                noop_moves.insert(other);
                *slot = Some(index);
            } else {
                return Err(format!(
                    "two changes were told they made configuration {num}: {:?} (client {}) and \
                     {:?} (client {})",
                    calls[other].op, calls[other].client, call.op, call.client
                ));
            }
        }
    }
    let mut unknown: Vec<usize> = (0..calls.len())
        .filter(|&index| calls[index].outcome.is_none() && !calls[index].op.is_read())
        .collect();
    let mut history = ConfigHistory::new(limits);
    if history.latest() != &configs[0] {
        return Err(format!("configuration 0 is {:?}", configs[0]));
    }
    let mut creators = vec![usize::MAX];
    for num in 1..=latest {
        let expected = &configs[num as usize];
        let creator = match by_num[num as usize] {
            Some(index) => {
                let mut next = history.clone();
                match next.apply(&calls[index].op) {
                    Ok(_) if next.latest() == expected => index,
                    result => {
                        return Err(format!(
                            "replaying {:?} (client {}, told configuration {num}) gives \
                             {result:?} / {:?}; the replicas hold {expected:?}",
                            calls[index].op,
                            calls[index].client,
                            next.latest()
                        ));
                    }
                }
            }
            None => {
                let found = unknown.iter().position(|&index| {
                    let mut next = history.clone();
                    next.apply(&calls[index].op).is_ok() && next.latest() == expected
                });
                match found {
                    Some(position) => unknown.remove(position),
                    None => {
                        return Err(format!(
                            "configuration {num} ({expected:?}) was made by no change any client \
                             sent (or by one applied twice)"
                        ));
                    }
                }
            }
        };
        history
            .apply(&calls[creator].op)
            .expect("the replay just applied this change");
        creators.push(creator);
    }
    Ok((creators, noop_moves))
}

fn check_placement(configs: &[Config], calls: &[Call], creators: &[usize]) -> Result<(), String> {
    for num in 1..configs.len() {
        let op = &calls[creators[num]].op;
        let (before, after) = (&configs[num - 1], &configs[num]);
        if let ConfigOp::BalanceLoad { loads, max_moves } = op {
            check_load_placement(num, before, after, loads, *max_moves)?;
            continue;
        }
        let rebalances = match op {
            ConfigOp::Join { .. } | ConfigOp::Leave { .. } => true,
            // Like a Leave when it removed a member; otherwise nothing moved.
            ConfigOp::DeclareLost { gid } => before.groups.contains_key(gid),
            _ => false,
        };
        if !rebalances {
            continue;
        }
        let gids: BTreeSet<Gid> = after.groups.keys().copied().collect();
        if !is_balanced(&after.shards, &gids) {
            return Err(format!(
                "configuration {num} (after {op:?}) is not balanced: {:?}",
                after.shards
            ));
        }
        let minimum = minimum_moves(&before.shards, &gids);
        let moved = moved_count(&before.shards, &after.shards);
        if moved != minimum {
            return Err(format!(
                "configuration {num} (after {op:?}) moved {moved} shards, the minimum is \
                 {minimum}: {:?} -> {:?}",
                before.shards, after.shards
            ));
        }
    }
    Ok(())
}

/// A configuration a BalanceLoad made: the same groups, at most
/// `max_moves` shards moved, and the largest group load under `loads` not
/// above what it was (computed here from the configurations, not taken
/// from the controller's placement).
fn check_load_placement(
    num: usize,
    before: &Config,
    after: &Config,
    loads: &[u64],
    max_moves: usize,
) -> Result<(), String> {
    if after.groups != before.groups {
        return Err(format!(
            "configuration {num} (a BalanceLoad) changed the groups"
        ));
    }
    let moved = moved_count(&before.shards, &after.shards);
    if moved == 0 || moved > max_moves {
        return Err(format!(
            "configuration {num} (a BalanceLoad of at most {max_moves} moves) moved {moved} \
             shards: {:?} -> {:?}",
            before.shards, after.shards
        ));
    }
    let gids: BTreeSet<Gid> = before.groups.keys().copied().collect();
    let largest = |shards: &[Gid]| group_loads(shards, &gids, loads).into_values().max();
    if largest(&after.shards) > largest(&before.shards) {
        return Err(format!(
            "configuration {num} (a BalanceLoad) raised the largest group load from {:?} to \
             {:?}: {:?} -> {:?} under loads {loads:?}",
            largest(&before.shards),
            largest(&after.shards),
            before.shards,
            after.shards
        ));
    }
    Ok(())
}

fn check_real_time(
    calls: &[Call],
    creators: &[usize],
    noop_moves: &BTreeSet<usize>,
    pruned_span: u64,
) -> Result<(), String> {
    // Calls that completed with an observation, by return time.
    let mut observed: Vec<(u64, u64, usize)> = calls
        .iter()
        .enumerate()
        .filter_map(|(index, call)| {
            call.observed(pruned_span)
                .map(|num| (call.returned_us, num, index))
        })
        .collect();
    observed.sort_unstable();
    // Highest number observed by any call returned strictly before `t`.
    let highest_before = |t: u64| -> Option<(u64, usize)> {
        observed
            .iter()
            .take_while(|(returned_us, _, _)| *returned_us < t)
            .map(|&(_, num, index)| (num, index))
            .max()
    };
    for (position, call) in calls.iter().enumerate() {
        let Some(num) = call.observed(pruned_span) else {
            continue;
        };
        let bound = if noop_moves.contains(&position) {
            // It read the latest: nothing newer was observed before it.
            highest_before(call.invoked_us).filter(|&(seen, _)| seen > num)
        } else if matches!(call.outcome, Some(Outcome::Changed(_))) {
            // A change linearizes after everything observed before it.
            highest_before(call.invoked_us).filter(|&(seen, _)| seen >= num)
        } else if let Some(latest) = call.read_latest() {
            highest_before(call.invoked_us).filter(|&(seen, _)| seen > latest)
        } else {
            None
        };
        if let Some((seen, index)) = bound {
            return Err(format!(
                "client {}'s {:?} observed configuration {num}, yet client {}'s {:?} had already \
                 returned with configuration {seen} before it was invoked",
                call.client, call.op, calls[index].client, calls[index].op
            ));
        }
        if num > 0 {
            let creator = &calls[creators[num as usize]];
            if creator.invoked_us > call.returned_us {
                return Err(format!(
                    "client {}'s {:?} returned configuration {num} before client {}'s {:?}, \
                     which made it, was invoked",
                    call.client, call.op, creator.client, creator.op
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn call(client: u64, op: ConfigOp, at: u64, outcome: Outcome) -> Call {
        Call {
            client,
            op,
            invoked_us: at,
            returned_us: at + 1,
            outcome: Some(outcome),
        }
    }

    /// Configurations 0 and 1 (group 1 joined), made by a recorded Join.
    fn joined() -> (Limits, Vec<Config>, Call) {
        let limits = Limits::new(4);
        let mut history = ConfigHistory::new(limits);
        let join = ConfigOp::Join {
            groups: BTreeMap::from([(1, vec!["10.0.0.1:1".parse().expect("address")])]),
        };
        history.apply(&join).expect("join");
        let configs = vec![
            history.get(0).expect("0").clone(),
            history.get(1).expect("1").clone(),
        ];
        (limits, configs, call(1, join, 0, Outcome::Changed(1)))
    }

    /// K = 2: configurations 0..=2 made by two Joins, each
    /// recorded; a replica holding 1 and 2 answers 0 with `Pruned`.
    fn pruned_after_two_joins() -> (Limits, Vec<Config>, Vec<Call>) {
        let (limits, mut configs, join) = joined();
        let limits = Limits {
            max_retained_configs: 2,
            ..limits
        };
        let mut history = ConfigHistory::new(Limits {
            max_retained_configs: 8,
            ..limits
        });
        history.apply(&join.op).expect("join");
        let mut calls = vec![join];
        history
            .apply(&ConfigOp::Join {
                groups: BTreeMap::from([(2, vec!["10.0.0.2:1".parse().expect("address")])]),
            })
            .expect("second join");
        configs.push(history.get(2).expect("2").clone());
        calls.push(call(
            1,
            ConfigOp::Join {
                groups: BTreeMap::from([(2, vec!["10.0.0.2:1".parse().expect("address")])]),
            },
            10,
            Outcome::Changed(2),
        ));
        (limits, configs, calls)
    }

    #[test]
    fn a_pruned_answer_below_the_oldest_kept_passes() {
        let (limits, configs, mut calls) = pruned_after_two_joins();
        calls.push(call(
            2,
            ConfigOp::Query { num: Some(0) },
            20,
            Outcome::Refused(ConfigError::Pruned { num: 0, oldest: 1 }),
        ));
        assert_eq!(check_history(limits, &configs, &calls), Ok(0));
    }

    #[test]
    fn a_pruned_answer_for_a_kept_number_is_caught() {
        let (limits, configs, mut calls) = pruned_after_two_joins();
        calls.push(call(
            2,
            ConfigOp::Query { num: Some(1) },
            20,
            Outcome::Refused(ConfigError::Pruned { num: 1, oldest: 1 }),
        ));
        assert!(check_history(limits, &configs, &calls).is_err());
    }

    #[test]
    fn a_pruned_answer_before_k_configurations_existed_is_caught() {
        // Oldest 2 with K = 2 means configuration 3 existed: it never did.
        let (limits, configs, mut calls) = pruned_after_two_joins();
        calls.push(call(
            2,
            ConfigOp::Query { num: Some(1) },
            20,
            Outcome::Refused(ConfigError::Pruned { num: 1, oldest: 2 }),
        ));
        assert!(check_history(limits, &configs, &calls).is_err());
        // Pruning before the change that made K configurations was invoked.
        let (limits, configs, mut calls) = pruned_after_two_joins();
        calls.push(call(
            2,
            ConfigOp::Query { num: Some(0) },
            5,
            Outcome::Refused(ConfigError::Pruned { num: 0, oldest: 1 }),
        ));
        assert!(check_history(limits, &configs, &calls).is_err());
    }

    #[test]
    fn a_move_that_changed_nothing_shares_the_latest_number() {
        let (limits, configs, join) = joined();
        let noop = call(
            2,
            ConfigOp::Move { shard: 0, gid: 1 },
            10,
            Outcome::Changed(1),
        );
        assert_eq!(check_history(limits, &configs, &[join, noop]), Ok(0));
    }

    #[test]
    fn a_move_claiming_a_number_it_did_not_make_is_caught() {
        let (limits, configs, join) = joined();
        // Group 2 never joined, so no configuration gives it shard 0.
        let forged = call(
            2,
            ConfigOp::Move { shard: 0, gid: 2 },
            10,
            Outcome::Changed(1),
        );
        assert!(check_history(limits, &configs, &[join, forged]).is_err());
    }

    /// Configurations 0..=2: groups 1 and 2 joined, then 2 declared lost.
    fn declared() -> (Limits, Vec<Config>, Vec<Call>) {
        let limits = Limits::new(4);
        let mut history = ConfigHistory::new(limits);
        let servers = vec!["10.0.0.1:1".parse().expect("address")];
        let join = ConfigOp::Join {
            groups: BTreeMap::from([(1, servers.clone()), (2, servers)]),
        };
        history.apply(&join).expect("join");
        let lost = ConfigOp::DeclareLost { gid: 2 };
        history.apply(&lost).expect("declare");
        let configs = (0..=2)
            .map(|num| history.get(num).expect("kept").clone())
            .collect();
        let calls = vec![
            call(1, join, 0, Outcome::Changed(1)),
            call(2, lost, 10, Outcome::Changed(2)),
        ];
        (limits, configs, calls)
    }

    #[test]
    fn a_declaration_of_a_lost_group_is_checked_like_a_leave() {
        let (limits, configs, calls) = declared();
        assert_eq!(check_history(limits, &configs, &calls), Ok(0));
        // Declaring it again changed nothing and shares the latest number.
        let mut again = calls.clone();
        again.push(call(
            3,
            ConfigOp::DeclareLost { gid: 2 },
            20,
            Outcome::Changed(2),
        ));
        assert_eq!(check_history(limits, &configs, &again), Ok(0));
        // A rejoin of the lost gid must have been refused.
        let mut rejoined = calls.clone();
        rejoined.push(call(
            4,
            ConfigOp::Join {
                groups: BTreeMap::from([(2, vec!["10.0.0.2:1".parse().expect("address")])]),
            },
            30,
            Outcome::Changed(3),
        ));
        assert!(check_history(limits, &configs, &rejoined).is_err());
    }

    #[test]
    fn a_declaration_claiming_a_number_it_did_not_make_is_caught() {
        let (limits, configs, mut calls) = declared();
        // Group 1 was never declared lost: this cannot have answered 2.
        calls.push(call(
            3,
            ConfigOp::DeclareLost { gid: 1 },
            20,
            Outcome::Changed(2),
        ));
        assert!(check_history(limits, &configs, &calls).is_err());
    }

    #[test]
    fn a_noop_move_cannot_return_before_the_configuration_existed() {
        let (limits, configs, mut join) = joined();
        join.invoked_us = 100;
        join.returned_us = 101;
        let early = call(
            2,
            ConfigOp::Move { shard: 0, gid: 1 },
            10,
            Outcome::Changed(1),
        );
        assert!(check_history(limits, &configs, &[join, early]).is_err());
    }

    /// Configurations 0..=2: groups 1 and 2 joined ([1, 1, 2, 2]), then a
    /// BalanceLoad with group 1's shards hot moved shard 0 to group 2.
    fn balanced() -> (Limits, Vec<Config>, Vec<Call>) {
        let limits = Limits::new(4);
        let mut history = ConfigHistory::new(limits);
        let join = ConfigOp::Join {
            groups: BTreeMap::from([
                (1, vec!["10.0.0.1:1".parse().expect("address")]),
                (2, vec!["10.0.0.2:1".parse().expect("address")]),
            ]),
        };
        history.apply(&join).expect("join");
        let balance = ConfigOp::BalanceLoad {
            loads: vec![10, 10, 0, 0],
            max_moves: 1,
        };
        history.apply(&balance).expect("balance");
        let configs: Vec<Config> = (0..=2)
            .map(|num| history.get(num).expect("kept").clone())
            .collect();
        assert_eq!(configs[2].shards, vec![2, 1, 2, 2]);
        let calls = vec![
            call(1, join, 0, Outcome::Changed(1)),
            call(2, balance, 10, Outcome::Changed(2)),
        ];
        (limits, configs, calls)
    }

    #[test]
    fn a_balance_load_is_replayed_and_a_noop_one_shares_the_latest_number() {
        let (limits, configs, calls) = balanced();
        assert_eq!(check_history(limits, &configs, &calls), Ok(0));
        let mut noop = calls.clone();
        noop.push(call(
            3,
            // Nothing worth moving in configuration 2; from 1 it would
            // move shard 1, not shard 0, so it did not make 2.
            ConfigOp::BalanceLoad {
                loads: vec![100, 50, 1, 0],
                max_moves: 1,
            },
            20,
            Outcome::Changed(2),
        ));
        assert_eq!(check_history(limits, &configs, &noop), Ok(0));
        // Listed first, the one that changed nothing is still told apart
        // from the one that made configuration 2.
        let mut reversed = noop.clone();
        reversed.swap(1, 2);
        assert_eq!(check_history(limits, &configs, &reversed), Ok(0));
        // Equal loads on the uneven counts of configuration 2 would move a
        // shard: that call cannot have answered 2 without a move.
        let mut uneven = calls.clone();
        uneven.push(call(
            3,
            ConfigOp::BalanceLoad {
                loads: vec![5; 4],
                max_moves: 4,
            },
            20,
            Outcome::Changed(2),
        ));
        assert!(check_history(limits, &configs, &uneven).is_err());
    }

    #[test]
    fn a_balance_load_claiming_a_number_it_did_not_make_is_caught() {
        let (limits, configs, mut calls) = balanced();
        // Under these loads group 2 (150) would give to group 1 (0) in
        // configuration 2, so this did not answer 2 without a move, and
        // from configuration 1 it moves nothing, so it did not make 2.
        calls.push(call(
            3,
            ConfigOp::BalanceLoad {
                loads: vec![50, 0, 50, 50],
                max_moves: 1,
            },
            20,
            Outcome::Changed(2),
        ));
        assert!(check_history(limits, &configs, &calls).is_err());
    }
}
