//! The set commands over several keys ([`SetOp::Combine`],
//! [`SetOp::Store`], [`SetOp::InterCard`], [`SetOp::Move`]): Redis 7's
//! `SINTER`, `SUNION`, `SDIFF`, their `STORE` forms, `SINTERCARD` and
//! `SMOVE`.
//!
//! **One shard, one step.** Every key must be in one shard ([`Op::keys`](crate::Op::keys)
//! names them all and [`Op::is_multi_key`](crate::Op::is_multi_key) holds, so the servers refuse
//! the rest with [`Error::CrossShard`]); each command is one operation on
//! one store, so it is atomic and replays identically on every replica.
//!
//! **Redis's rules.** An absent key is an empty set; a key of another
//! type is [`Error::WrongType`] (every key is checked, whatever comes
//! before it). A `STORE` form overwrites its destination whatever it held
//! (without a deadline, as Redis's `SET` leaves it) and removes it when the
//! result is empty. `SMOVE` answers 0 for an absent source (before looking
//! at the destination's type), and for a source that does not hold the
//! member; a move onto the same key answers whether the member is there.
//!
//! **Order and bounds.** Results are in byte order (a [`SetValue`]'s
//! order), the same on every replica; Redis leaves the order unspecified.
//! A union may hold more than one set may: a union of more than
//! `max_collection_elements` members is refused
//! ([`Error::TooManyElements`]), read or stored, and a stored result that
//! could never fit the store is refused ([`Error::TooLarge`]), both before
//! anything changes. Costs: intersection O(n·k) for the smallest set's n
//! and k keys, union and difference O(total members · log).

use cache::Store;
use cache::store::value::{SetValue, set_member_bytes};
use cache::store::{Kind, Value, entry_weight_bytes};
use serde::{Deserialize, Serialize};

use crate::collections::{AsCollection, SetOp, too_many, wrong_type};
use crate::execute::store_error;
use crate::multikey::check_weight;
use crate::{Error, Limits, Outcome, Reply};

/// How [`SetOp::Combine`] and [`SetOp::Store`] combine their sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combination {
    /// Members of every set (`SINTER`).
    Intersection,
    /// Members of any set (`SUNION`).
    Union,
    /// Members of the first set in none of the others (`SDIFF`).
    Difference,
}

/// The sets at `keys` (absent: `None`, an empty set), or
/// [`Error::WrongType`] if any holds another type.
fn sets_at<'a>(
    store: &'a Store,
    keys: impl Iterator<Item = &'a [u8]>,
    now_ms: u64,
) -> Result<Vec<Option<&'a SetValue>>, Error> {
    keys.map(|key| wrong_type::<SetValue>(Kind::Set, store.peek_value(key, now_ms)))
        .collect()
}

/// Combines `sets` (absent ones empty) as `how` says, in byte order.
fn combine(
    how: Combination,
    sets: &[Option<&SetValue>],
    limits: &Limits,
) -> Result<SetValue, Error> {
    let mut result = SetValue::default();
    match how {
        Combination::Intersection => {
            // Any empty set empties the intersection; otherwise walk the
            // smallest and probe the rest.
            if sets.iter().any(Option::is_none) {
                return Ok(result);
            }
            let present: Vec<&SetValue> = sets.iter().flatten().copied().collect();
            let Some(smallest) = present.iter().min_by_key(|set| set.len()) else {
                return Ok(result);
            };
            for member in smallest.iter() {
                if present.iter().all(|set| set.contains(member)) {
                    result.insert(member);
                }
            }
        }
        Combination::Union => {
            for set in sets.iter().flatten() {
                for member in set.iter() {
                    if result.insert(member) {
                        too_many(result.len() - 1, 1, limits)?;
                    }
                }
            }
        }
        Combination::Difference => {
            let Some(Some(first)) = sets.first() else {
                return Ok(result);
            };
            let others = &sets[1..];
            for member in first.iter() {
                if !others.iter().flatten().any(|set| set.contains(member)) {
                    result.insert(member);
                }
            }
        }
    }
    Ok(result)
}

/// How many members the intersection has, counting at most `limit` (0:
/// no limit).
fn intersection_size(sets: &[Option<&SetValue>], limit: u64) -> u64 {
    if sets.iter().any(Option::is_none) {
        return 0;
    }
    let present: Vec<&SetValue> = sets.iter().flatten().copied().collect();
    let Some(smallest) = present.iter().min_by_key(|set| set.len()) else {
        return 0;
    };
    let limit = if limit == 0 { u64::MAX } else { limit };
    let mut count = 0;
    for member in smallest.iter() {
        if count >= limit {
            break;
        }
        if present.iter().all(|set| set.contains(member)) {
            count += 1;
        }
    }
    count
}

fn members_outcome(set: &SetValue) -> Outcome {
    Outcome::Values(set.iter().map(|member| Some(member.to_vec())).collect())
}

/// Answers the reads ([`SetOp::Combine`], [`SetOp::InterCard`]) of the
/// set operation on `key`; changes nothing.
///
/// # Panics
/// If `op` is not one of them: a bug in the caller.
pub(crate) fn read_algebra(
    store: &Store,
    key: &[u8],
    op: &SetOp,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    let keys = || std::iter::once(key);
    match op {
        SetOp::Combine { how, others } => {
            let sets = sets_at(
                store,
                keys().chain(others.iter().map(Vec::as_slice)),
                now_ms,
            )?;
            Ok(members_outcome(&combine(*how, &sets, limits)?))
        }
        SetOp::InterCard { others, limit } => {
            let sets = sets_at(
                store,
                keys().chain(others.iter().map(Vec::as_slice)),
                now_ms,
            )?;
            Ok(Outcome::Integer(intersection_size(&sets, *limit) as i64))
        }
        other => panic!("api::set_algebra: {other:?} is not a multi-set read"),
    }
}

/// Runs the writes ([`SetOp::Store`] at `key`, [`SetOp::Move`] from
/// `key`): every check first, so a refused one changes nothing.
///
/// # Panics
/// If `op` is not one of them: a bug in the caller.
pub(crate) fn execute_algebra(
    store: &mut Store,
    key: &[u8],
    op: &SetOp,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    match op {
        SetOp::Store { how, sources } => {
            let sets = sets_at(store, sources.iter().map(Vec::as_slice), now_ms)?;
            let result = combine(*how, &sets, limits)?;
            too_many(0, result.len(), limits)?;
            let size = result.len() as i64;
            let value = Value::Set(result);
            check_weight(store, entry_weight_bytes(key, &value))?;
            // An empty result removes the destination (put_value does).
            store
                .put_value(key, value, None, now_ms)
                .map_err(store_error)?;
            Ok(Outcome::Integer(size))
        }
        SetOp::Move {
            destination,
            member,
        } => move_member(store, key, destination, member, limits, now_ms),
        other => panic!("api::set_algebra: {other:?} is not a multi-set write"),
    }
}

/// `SMOVE`, with Redis 7.0's order of checks (see the module docs).
fn move_member(
    store: &mut Store,
    source: &[u8],
    destination: &[u8],
    member: &[u8],
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    let Some(source_value) = store.peek_value(source, now_ms) else {
        return Ok(Outcome::Integer(0));
    };
    let source_set: &SetValue = match source_value.kind() {
        Kind::Set => source_value.as_collection().expect("the kind is set"),
        _ => return Err(Error::WrongType),
    };
    let holds = source_set.contains(member);
    let target_value = store.peek_value(destination, now_ms);
    let target = wrong_type::<SetValue>(Kind::Set, target_value)?;
    if source == destination {
        return Ok(Outcome::Integer(i64::from(holds)));
    }
    if !holds {
        return Ok(Outcome::Integer(0));
    }
    if !target.is_some_and(|set| set.contains(member)) {
        let weight_after = match (target, target_value) {
            (Some(set), Some(value)) => {
                too_many(set.len(), 1, limits)?;
                entry_weight_bytes(destination, value) + set_member_bytes(member)
            }
            _ => {
                let mut single = SetValue::default();
                single.insert(member);
                entry_weight_bytes(destination, &Value::Set(single))
            }
        };
        check_weight(store, weight_after)?;
    }
    store.update(source, Kind::Set, 0, now_ms, |value| {
        let set: &mut SetValue = value.as_collection_mut();
        set.remove(member);
        Ok::<_, Error>(())
    })?;
    // Checked above: the destination fits, so this cannot be refused.
    store.update(
        destination,
        Kind::Set,
        set_member_bytes(member),
        now_ms,
        |value| {
            let set: &mut SetValue = value.as_collection_mut();
            set.insert(member);
            Ok::<_, Error>(())
        },
    )?;
    Ok(Outcome::Integer(1))
}
