//! The sorted-set commands over several keys ([`ZSetOp::Store`],
//! [`ZSetOp::RangeStore`], [`ZSetOp::Combine`], [`ZSetOp::InterCard`]):
//! Redis 7.0's `ZUNIONSTORE`, `ZINTERSTORE`, `ZDIFFSTORE`, `ZRANGESTORE`,
//! `ZUNION`, `ZINTER`, `ZDIFF` and `ZINTERCARD`.
//!
//! **One shard, one step.** As for the set algebra
//! ([`crate::set_algebra`]): every key must be in one shard (the servers
//! refuse the rest with [`Error::CrossShard`]), and each command is one
//! operation on one store, so it is atomic and replays identically.
//!
//! **Redis's rules.** A source may be a sorted set or a plain set (each
//! member scoring 1); an absent key is empty; any other type is
//! [`Error::WrongType`]. A member's score is multiplied by its source's
//! weight (a NaN product, `inf` × 0, counts as 0) and the scores of equal
//! members are combined by [`Aggregate`] (a NaN sum counts as 0). A
//! difference keeps the first set's scores. The destination is replaced
//! whatever it held, without a deadline; an empty result removes it.
//! `ZRANGESTORE`'s source must be a sorted set.
//!
//! **Bounds.** A result over `max_collection_elements` members is refused
//! ([`Error::TooManyElements`]), as is one that could never fit the store
//! ([`Error::TooLarge`]), before anything changes. Costs: union and
//! difference O(total members · log), intersection O(n · k · log) for the
//! smallest source's n and k sources.

use std::collections::BTreeMap;

use cache::Store;
use cache::store::value::{SetValue, ZSetValue};
use cache::store::{Kind, Value, entry_weight_bytes};

use crate::collections::{too_many, wrong_type};
use crate::execute::store_error;
use crate::multikey::check_weight;
use crate::op::Float;
use crate::set_algebra::Combination;
use crate::zsets::{Aggregate, ZSetOp, range_members};
use crate::{Error, Limits, Outcome, Reply};

/// A source of members with scores.
#[derive(Clone, Copy)]
enum Source<'a> {
    Sorted(&'a ZSetValue),
    /// A set: every member scores 1.
    Plain(&'a SetValue),
}

impl<'a> Source<'a> {
    fn len(self) -> usize {
        match self {
            Source::Sorted(zset) => zset.len(),
            Source::Plain(set) => set.len(),
        }
    }

    fn score(self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Sorted(zset) => zset.score(member),
            Source::Plain(set) => set.contains(member).then_some(1.0),
        }
    }

    fn entries(self) -> Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a> {
        match self {
            Source::Sorted(zset) => Box::new(zset.iter()),
            Source::Plain(set) => Box::new(set.iter().map(|member| (member, 1.0))),
        }
    }
}

/// The sources at `keys` (absent: `None`), or [`Error::WrongType`] if any
/// holds neither a sorted set nor a set.
fn sources_at<'a>(
    store: &'a Store,
    keys: &'a [Vec<u8>],
    now_ms: u64,
) -> Result<Vec<Option<Source<'a>>>, Error> {
    keys.iter()
        .map(|key| match store.peek_value(key, now_ms) {
            None => Ok(None),
            Some(Value::ZSet(zset)) => Ok(Some(Source::Sorted(zset))),
            Some(Value::Set(set)) => Ok(Some(Source::Plain(set))),
            Some(_) => Err(Error::WrongType),
        })
        .collect()
}

fn weighted(score: f64, weight: f64) -> f64 {
    let product = score * weight;
    if product.is_nan() { 0.0 } else { product }
}

fn combine_scores(current: f64, next: f64, aggregate: Aggregate) -> f64 {
    match aggregate {
        Aggregate::Sum => {
            let sum = current + next;
            if sum.is_nan() { 0.0 } else { sum }
        }
        Aggregate::Min => current.min(next),
        Aggregate::Max => current.max(next),
    }
}

/// Combines the sources as `how` says.
fn combine(
    how: Combination,
    sources: &[Option<Source<'_>>],
    weights: &[f64],
    aggregate: Aggregate,
    limits: &Limits,
) -> Result<ZSetValue, Error> {
    let weight = |index: usize| weights.get(index).copied().unwrap_or(1.0);
    let mut result: BTreeMap<&[u8], f64> = BTreeMap::new();
    match how {
        Combination::Union => {
            for (index, source) in sources.iter().enumerate() {
                let Some(source) = source else { continue };
                for (member, score) in source.entries() {
                    let score = weighted(score, weight(index));
                    match result.get_mut(member) {
                        Some(current) => *current = combine_scores(*current, score, aggregate),
                        None => {
                            too_many(result.len(), 1, limits)?;
                            result.insert(member, score);
                        }
                    }
                }
            }
        }
        Combination::Intersection => {
            let present: Option<Vec<Source<'_>>> = sources.iter().copied().collect();
            let Some(present) = present else {
                return Ok(ZSetValue::default());
            };
            let Some(smallest) = present.iter().min_by_key(|source| source.len()) else {
                return Ok(ZSetValue::default());
            };
            'members: for (member, _) in smallest.entries() {
                let mut combined: Option<f64> = None;
                for (index, source) in present.iter().enumerate() {
                    let Some(score) = source.score(member) else {
                        continue 'members;
                    };
                    let score = weighted(score, weight(index));
                    combined = Some(match combined {
                        None => score,
                        Some(current) => combine_scores(current, score, aggregate),
                    });
                }
                if let Some(score) = combined {
                    result.insert(member, score);
                }
            }
        }
        Combination::Difference => {
            let Some(Some(first)) = sources.first() else {
                return Ok(ZSetValue::default());
            };
            for (member, score) in first.entries() {
                if !sources[1..]
                    .iter()
                    .flatten()
                    .any(|other| other.score(member).is_some())
                {
                    result.insert(member, score);
                }
            }
        }
    }
    let mut zset = ZSetValue::default();
    for (member, score) in result {
        zset.insert(member, score);
    }
    Ok(zset)
}

/// Replaces `key` with `result` (an empty one removes it), after checking
/// that it fits.
fn store_result(
    store: &mut Store,
    key: &[u8],
    result: ZSetValue,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    too_many(0, result.len(), limits)?;
    let size = result.len() as i64;
    let value = Value::ZSet(result);
    check_weight(store, entry_weight_bytes(key, &value))?;
    store
        .put_value(key, value, None, now_ms)
        .map_err(store_error)?;
    Ok(Outcome::Integer(size))
}

/// Answers the reads ([`ZSetOp::Combine`], [`ZSetOp::InterCard`]) over
/// the key's set and the others; changes nothing.
///
/// # Panics
/// If `op` is neither: a bug in the caller.
pub(crate) fn read_zset_combination(
    store: &Store,
    key: &[u8],
    op: &ZSetOp,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    let keys: Vec<Vec<u8>> = std::iter::once(key.to_vec())
        .chain(op.other_keys().iter().cloned())
        .collect();
    let found = sources_at(store, &keys, now_ms)?;
    match op {
        ZSetOp::Combine {
            how,
            weights,
            aggregate,
            ..
        } => {
            let weights: Vec<f64> = weights.iter().map(|weight| weight.0).collect();
            let result = combine(*how, &found, &weights, *aggregate, limits)?;
            Ok(Outcome::Scored(
                result
                    .iter()
                    .map(|(member, score)| (member.to_vec(), Float(score)))
                    .collect(),
            ))
        }
        ZSetOp::InterCard { limit, .. } => {
            let result = combine(
                Combination::Intersection,
                &found,
                &[],
                Aggregate::Sum,
                limits,
            )?;
            let size = result.len() as u64;
            let counted = if *limit == 0 { size } else { size.min(*limit) };
            Ok(Outcome::Integer(counted as i64))
        }
        other => panic!("api::zset_algebra: {other:?} is not a sorted-set combination read"),
    }
}

/// Runs [`ZSetOp::Store`] and [`ZSetOp::RangeStore`] into `key`: every
/// check first, so a refused one changes nothing.
///
/// # Panics
/// If `op` is neither: a bug in the caller.
pub(crate) fn execute_zset_store(
    store: &mut Store,
    key: &[u8],
    op: &ZSetOp,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    let result = match op {
        ZSetOp::Store {
            how,
            sources,
            weights,
            aggregate,
        } => {
            let found = sources_at(store, sources, now_ms)?;
            let weights: Vec<f64> = weights.iter().map(|weight| weight.0).collect();
            combine(*how, &found, &weights, *aggregate, limits)?
        }
        ZSetOp::RangeStore {
            source,
            range,
            reverse,
            limit,
        } => {
            let mut result = ZSetValue::default();
            if let Some(zset) =
                wrong_type::<ZSetValue>(Kind::ZSet, store.peek_value(source, now_ms))?
            {
                for (member, score) in range_members(zset, range, *reverse, *limit) {
                    result.insert(member, score);
                }
            }
            result
        }
        other => panic!("api::zset_algebra: {other:?} is not a sorted-set store"),
    };
    store_result(store, key, result, limits, now_ms)
}
