//! Operations on sorted sets ([`Op::ZSet`](crate::Op::ZSet)), with Redis 7.0's meaning:
//! `ZADD` (NX, XX, GT, LT, CH, INCR), `ZINCRBY`, `ZREM`, `ZCARD`,
//! `ZSCORE`, `ZMSCORE`, `ZRANK`, `ZREVRANK`, the `ZRANGE` family (by rank,
//! score or member, either direction, `LIMIT`), `ZCOUNT`, `ZLEXCOUNT`,
//! `ZPOPMIN`/`ZPOPMAX`, the `ZREMRANGEBY*` family and `ZRANDMEMBER`. The
//! commands over several keys (`ZUNIONSTORE`, `ZINTERSTORE`,
//! `ZDIFFSTORE`, `ZRANGESTORE`) are in [`crate::zset_algebra`].
//!
//! Each is one deterministic state-machine command: the same store,
//! operation and log time give the same answer and store on every
//! replica. `ZRANDMEMBER` draws from a seed the operation carries (the
//! node that receives the command picks it, as for `SRANDMEMBER`).
//!
//! **Scores** are `f64`s, never NaN: the RESP layer refuses a NaN
//! argument, and a `ZADD ... INCR` whose sum is NaN (`inf` + `-inf`) is
//! refused ([`Error::NotFinite`], which the RESP front end words as
//! Redis's "resulting score is not a number (NaN)") before anything
//! changes; an infinite sum is a score like any other.
//!
//! **Answers.** Ranges, pops and random members answer
//! [`Outcome::Scored`] (members with their scores, in answer order; the
//! front end drops the scores unless `WITHSCORES` was asked);
//! `ZSCORE`, `ZMSCORE`, `ZINCRBY` and `ZADD ... INCR` answer
//! [`Outcome::Scores`]; counts answer [`Outcome::Integer`]; a rank
//! answers [`Outcome::Integer`], or [`Outcome::Value`]`(None)` when the
//! member is absent.
//!
//! **Bounds and costs.** A set holds at most `max_collection_elements`
//! members (a `ZADD` that would pass it is refused and changes nothing);
//! an operation carries at most `max_value_bytes` of members. Every
//! lookup, rank and range start is O(log n), as in Redis's skip list;
//! answers cost O(1) per member.

use cache::Store;
/// The bounds [`ZRange`] is built from (the store's own types).
pub use cache::store::value::{LexBound, ScoreBound};
use cache::store::value::{ZSetValue, zset_member_bytes};
use cache::store::{Kind, Value};
use serde::{Deserialize, Serialize};

use crate::collections::{AsCollection, random_positions, too_many, wrong_type};
use crate::op::Float;
use crate::set_algebra::Combination;
use crate::{Error, Limits, Outcome, Reply};

/// `ZADD`'s conditions; all that are set must hold for a member to change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZAddCondition {
    /// `NX`: only add new members.
    pub only_new: bool,
    /// `XX`: only update existing members.
    pub only_existing: bool,
    /// `GT`: only update when the new score is greater.
    pub only_greater: bool,
    /// `LT`: only update when the new score is less.
    pub only_less: bool,
}

/// Which members a range, a count or a removal selects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ZRange {
    /// Ranks `start..=stop`, negative from the end (`ZRANGE 0 -1`).
    Rank { start: i64, stop: i64 },
    /// Scores between the bounds.
    Score { min: ScoreBound, max: ScoreBound },
    /// Members between the bounds by bytes (all scores equal, as Redis
    /// asks).
    Lex { min: LexBound, max: LexBound },
}

/// Bounds compared by their bits, so [`crate::Op`] stays `Eq` (NaN is
/// refused before an operation is built).
impl Eq for ZRange {}

/// An operation on the sorted set at [`crate::Op::ZSet`]'s key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZSetOp {
    /// `ZADD`; with `increment`, `ZADD ... INCR` and `ZINCRBY` (one
    /// entry). [`Outcome::Integer`]: members added (with `changed`: added
    /// or updated); with `increment`, [`Outcome::Scores`] with the new
    /// score, or `None` when a condition stopped it.
    Add {
        entries: Vec<(Float, Vec<u8>)>,
        condition: ZAddCondition,
        changed: bool,
        increment: bool,
    },
    /// `ZREM`: [`Outcome::Integer`], members removed.
    Rem { members: Vec<Vec<u8>> },
    /// `ZCARD`. A read.
    Card,
    /// `ZSCORE` (one member) and `ZMSCORE`: [`Outcome::Scores`]. A read.
    Scores { members: Vec<Vec<u8>> },
    /// `ZRANK`/`ZREVRANK`. A read.
    Rank { member: Vec<u8>, reverse: bool },
    /// The `ZRANGE` family: [`Outcome::Scored`]. With `reverse`, ranks
    /// count from the highest score and the answer is highest first.
    /// `limit` is `LIMIT offset count` (by score or member only; a
    /// negative count: all after the offset). A read.
    Range {
        range: ZRange,
        reverse: bool,
        limit: Option<(i64, i64)>,
    },
    /// `ZCOUNT` and `ZLEXCOUNT` (a [`ZRange::Score`] or [`ZRange::Lex`]):
    /// [`Outcome::Integer`]. A read.
    Count { range: ZRange },
    /// `ZPOPMIN`/`ZPOPMAX` (`highest`): up to `count` (none: one) members,
    /// [`Outcome::Scored`].
    Pop { highest: bool, count: Option<u64> },
    /// `ZMPOP` (and the pop of `BZPOPMIN`/`BZPOPMAX`/`BZMPOP`): up to
    /// `count` members, lowest scores first (`highest`: highest first),
    /// from the first non-empty sorted set among [`crate::Op::ZSet`]'s
    /// key, then `others`, in order. [`Outcome::KeyScored`]: that key and
    /// the members; nil ([`Outcome::Value`]`(None)`) if every key is
    /// absent. A key of another type met before that set answers
    /// [`crate::Error::WrongType`]. All keys in one shard.
    MultiPop {
        others: Vec<Vec<u8>>,
        highest: bool,
        count: u64,
    },
    /// The `ZREMRANGEBY*` family: [`Outcome::Integer`], members removed.
    RemRange { range: ZRange },
    /// `ZRANDMEMBER`: Redis's count rules (see [`crate::HashOp::RandField`]),
    /// [`Outcome::Scored`]. A read.
    RandMember { count: Option<i64>, seed: u64 },
    /// `ZUNIONSTORE`/`ZINTERSTORE`/`ZDIFFSTORE`: the combination of
    /// `sources` (sorted sets, or sets with every score 1) replaces
    /// whatever the key held (an empty one removes it); each source's
    /// scores are multiplied by its weight (none: 1) and equal members'
    /// scores combined by `aggregate` (a difference keeps the first set's
    /// scores). [`Outcome::Integer`]: the result's size.
    Store {
        how: Combination,
        sources: Vec<Vec<u8>>,
        weights: Vec<Float>,
        aggregate: Aggregate,
    },
    /// `ZUNION`/`ZINTER`/`ZDIFF`: the combination of the key's set and
    /// `others` (in that order), as [`ZSetOp::Store`] computes it,
    /// answered as [`Outcome::Scored`] in score order. A read.
    Combine {
        how: Combination,
        others: Vec<Vec<u8>>,
        weights: Vec<Float>,
        aggregate: Aggregate,
    },
    /// `ZINTERCARD`: the size of the intersection of the key's set and
    /// `others`, counting at most `limit` (0: all). [`Outcome::Integer`].
    /// A read.
    InterCard { others: Vec<Vec<u8>>, limit: u64 },
    /// `ZSCAN`: one step (the `element_scan` module),
    /// [`Outcome::ScoredPage`]. A read.
    Scan {
        position: u64,
        count: u64,
        pattern: Option<Vec<u8>>,
    },
    /// `ZRANGESTORE`: the members a [`ZSetOp::Range`] of `source` would
    /// answer replace whatever the key held. [`Outcome::Integer`]: how
    /// many.
    RangeStore {
        source: Vec<u8>,
        range: ZRange,
        reverse: bool,
        limit: Option<(i64, i64)>,
    },
}

/// How `ZUNIONSTORE` and `ZINTERSTORE` combine a member's scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregate {
    /// Their sum (a NaN sum, `inf` + `-inf`, is 0, as Redis).
    #[default]
    Sum,
    Min,
    Max,
}

impl ZSetOp {
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            ZSetOp::Card
                | ZSetOp::Scores { .. }
                | ZSetOp::Rank { .. }
                | ZSetOp::Range { .. }
                | ZSetOp::Count { .. }
                | ZSetOp::RandMember { .. }
                | ZSetOp::Combine { .. }
                | ZSetOp::InterCard { .. }
                | ZSetOp::Scan { .. }
        )
    }

    /// The keys besides [`crate::Op::ZSet`]'s own that the operation
    /// reads, in order.
    pub fn other_keys(&self) -> &[Vec<u8>] {
        match self {
            ZSetOp::Store { sources, .. } => sources,
            ZSetOp::Combine { others, .. } | ZSetOp::InterCard { others, .. } => others,
            ZSetOp::RangeStore { source, .. } => std::slice::from_ref(source),
            ZSetOp::MultiPop { others, .. } => others,
            _ => &[],
        }
    }

    /// Whether the operation names keys besides its own (and so must find
    /// them all in its shard).
    pub fn is_multi_key(&self) -> bool {
        matches!(
            self,
            ZSetOp::Store { .. }
                | ZSetOp::RangeStore { .. }
                | ZSetOp::Combine { .. }
                | ZSetOp::InterCard { .. }
                | ZSetOp::MultiPop { .. }
        )
    }

    /// The bytes the operation carries.
    pub fn carried_bytes(&self) -> usize {
        match self {
            ZSetOp::Add { entries, .. } => entries
                .iter()
                .map(|(_, member)| member.len() + std::mem::size_of::<f64>())
                .sum(),
            ZSetOp::Rem { members } | ZSetOp::Scores { members } => {
                members.iter().map(Vec::len).sum()
            }
            ZSetOp::Rank { member, .. } => member.len(),
            ZSetOp::Range { range, .. }
            | ZSetOp::Count { range }
            | ZSetOp::RemRange { range }
            | ZSetOp::RangeStore { range, .. } => range_bytes(range),
            ZSetOp::Card
            | ZSetOp::Pop { .. }
            | ZSetOp::RandMember { .. }
            | ZSetOp::Store { .. }
            | ZSetOp::Combine { .. }
            | ZSetOp::InterCard { .. } => 0,
            ZSetOp::Scan { pattern, .. } => pattern.as_ref().map_or(0, Vec::len),
            ZSetOp::MultiPop { others, .. } => others.iter().map(Vec::len).sum(),
        }
    }
}

fn range_bytes(range: &ZRange) -> usize {
    let bound = |bound: &LexBound| match bound {
        LexBound::Inclusive(member) | LexBound::Exclusive(member) => member.len(),
        LexBound::Lowest | LexBound::Highest => 0,
    };
    match range {
        ZRange::Lex { min, max } => bound(min) + bound(max),
        ZRange::Rank { .. } | ZRange::Score { .. } => 0,
    }
}

impl AsCollection<ZSetValue> for Value {
    fn as_collection(&self) -> Option<&ZSetValue> {
        match self {
            Value::ZSet(zset) => Some(zset),
            _ => None,
        }
    }

    fn as_collection_mut(&mut self) -> &mut ZSetValue {
        match self {
            Value::ZSet(zset) => zset,
            _ => unreachable!("Store::update checked the type"),
        }
    }
}

/// Ranks `start..end` a range selects in ascending order, before any
/// `LIMIT` (empty: `start == end`).
pub(crate) fn selected_ranks(zset: &ZSetValue, range: &ZRange, reverse: bool) -> (usize, usize) {
    let len = zset.len();
    match range {
        ZRange::Rank { start, stop } => {
            let (first, end) = rank_span(*start, *stop, len);
            if reverse {
                // Ranks counted from the highest score.
                (len - end, len - first)
            } else {
                (first, end)
            }
        }
        ZRange::Score { min, max } => zset.score_ranks(*min, *max),
        ZRange::Lex { min, max } => zset.lex_ranks(min, max),
    }
}

/// Redis's rank range `start..=stop` (negative from the end) as a clamped
/// half-open span.
fn rank_span(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let start = if start < 0 {
        start.saturating_add(len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop.saturating_add(len)
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return (0, 0);
    }
    (start as usize, stop as usize + 1)
}

/// The members a [`ZSetOp::Range`] answers, in answer order.
pub(crate) fn range_members<'a>(
    zset: &'a ZSetValue,
    range: &ZRange,
    reverse: bool,
    limit: Option<(i64, i64)>,
) -> Vec<(&'a [u8], f64)> {
    let (start, end) = selected_ranks(zset, range, reverse);
    let mut count = end - start;
    let mut skip = 0;
    if let Some((offset, limit_count)) = limit {
        // A negative offset selects nothing, a negative count everything
        // after the offset (Redis's loops).
        let Ok(offset) = usize::try_from(offset) else {
            return Vec::new();
        };
        skip = offset.min(count);
        count -= skip;
        if let Ok(limit_count) = usize::try_from(limit_count) {
            count = count.min(limit_count);
        }
    }
    if count == 0 {
        return Vec::new();
    }
    if reverse {
        zset.walk(end - 1 - skip, false, count).collect()
    } else {
        zset.walk(start + skip, true, count).collect()
    }
}

fn scored(members: Vec<(&[u8], f64)>) -> Outcome {
    Outcome::Scored(
        members
            .into_iter()
            .map(|(member, score)| (member.to_vec(), Float(score)))
            .collect(),
    )
}

/// `ZMPOP`: pops from the first present sorted set among `key`, then
/// `others` (see [`ZSetOp::MultiPop`]).
fn multi_pop(
    store: &mut Store,
    key: &[u8],
    others: &[Vec<u8>],
    highest: bool,
    count: u64,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    for candidate in std::iter::once(key).chain(others.iter().map(Vec::as_slice)) {
        if wrong_type::<ZSetValue>(Kind::ZSet, store.peek_value(candidate, now_ms))?.is_none() {
            continue;
        }
        let pop = ZSetOp::Pop {
            highest,
            count: Some(count),
        };
        let Outcome::Scored(members) = execute_zset(store, candidate, &pop, limits, now_ms)? else {
            unreachable!("a sorted-set pop answers scored members");
        };
        return Ok(Outcome::KeyScored {
            key: candidate.to_vec(),
            members,
        });
    }
    Ok(Outcome::Value(None))
}

/// Runs a sorted-set operation (writes through [`Store::update`]).
pub(crate) fn execute_zset(
    store: &mut Store,
    key: &[u8],
    op: &ZSetOp,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    if let ZSetOp::MultiPop {
        others,
        highest,
        count,
    } = op
    {
        return multi_pop(store, key, others, *highest, *count, limits, now_ms);
    }
    if op.is_multi_key() {
        crate::collections::touch_keys(store, key, op.other_keys(), now_ms);
        return if op.is_read() {
            crate::zset_algebra::read_zset_combination(store, key, op, limits, now_ms)
        } else {
            crate::zset_algebra::execute_zset_store(store, key, op, limits, now_ms)
        };
    }
    if op.is_read() {
        let value = store.value(key, now_ms);
        return read_zset(wrong_type(Kind::ZSet, value)?, op, limits);
    }
    match op {
        ZSetOp::Add {
            entries,
            condition,
            changed,
            increment,
        } => add(
            store, key, entries, *condition, *changed, *increment, limits, now_ms,
        ),
        ZSetOp::Rem { members } => store.update(key, Kind::ZSet, 0, now_ms, |value| {
            let zset: &mut ZSetValue = value.as_collection_mut();
            let removed = members.iter().filter(|member| zset.remove(member)).count();
            Ok(Outcome::Integer(removed as i64))
        }),
        ZSetOp::Pop { highest, count } => {
            if wrong_type::<ZSetValue>(Kind::ZSet, store.peek_value(key, now_ms))?.is_none() {
                return Ok(Outcome::Scored(Vec::new()));
            }
            store.update(key, Kind::ZSet, 0, now_ms, |value| {
                let zset: &mut ZSetValue = value.as_collection_mut();
                let wanted = usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX);
                let start = if *highest {
                    zset.len().saturating_sub(1)
                } else {
                    0
                };
                let popped: Vec<(Vec<u8>, Float)> = zset
                    .walk(start, !*highest, wanted)
                    .map(|(member, score)| (member.to_vec(), Float(score)))
                    .collect();
                for (member, _) in &popped {
                    zset.remove(member);
                }
                Ok(Outcome::Scored(popped))
            })
        }
        ZSetOp::RemRange { range } => {
            if wrong_type::<ZSetValue>(Kind::ZSet, store.peek_value(key, now_ms))?.is_none() {
                return Ok(Outcome::Integer(0));
            }
            store.update(key, Kind::ZSet, 0, now_ms, |value| {
                let zset: &mut ZSetValue = value.as_collection_mut();
                let (start, end) = selected_ranks(zset, range, false);
                let doomed: Vec<Vec<u8>> = zset
                    .walk(start, true, end - start)
                    .map(|(member, _)| member.to_vec())
                    .collect();
                for member in &doomed {
                    zset.remove(member);
                }
                Ok(Outcome::Integer(doomed.len() as i64))
            })
        }
        _ => unreachable!("reads are answered above"),
    }
}

/// `ZADD` and `ZINCRBY`, with Redis 7.0's rules: every check (NaN sum,
/// element limit, size) before the first change.
#[allow(clippy::too_many_arguments)] // ZADD's options, named as Redis names them
fn add(
    store: &mut Store,
    key: &[u8],
    entries: &[(Float, Vec<u8>)],
    condition: ZAddCondition,
    changed: bool,
    increment: bool,
    limits: &Limits,
    now_ms: u64,
) -> Reply {
    let current = wrong_type::<ZSetValue>(Kind::ZSet, store.peek_value(key, now_ms))?;
    if current.is_none() && condition.only_existing {
        return Ok(if increment {
            Outcome::Scores(vec![None])
        } else {
            Outcome::Integer(0)
        });
    }
    if increment {
        // One entry (the front end refuses more): its sum is checked here.
        if let Some((delta, member)) = entries.first() {
            let base = current.and_then(|zset| zset.score(member)).unwrap_or(0.0);
            if (base + delta.0).is_nan() {
                return Err(Error::NotFinite);
            }
        }
    }
    let growth = entries
        .iter()
        .map(|(_, member)| zset_member_bytes(member))
        .sum();
    store.update(key, Kind::ZSet, growth, now_ms, |value| {
        let zset: &mut ZSetValue = value.as_collection_mut();
        if !condition.only_existing {
            let new: std::collections::BTreeSet<&[u8]> = entries
                .iter()
                .map(|(_, member)| member.as_slice())
                .filter(|member| zset.score(member).is_none())
                .collect();
            too_many(zset.len(), new.len(), limits)?;
        }
        let (mut added, mut updated) = (0, 0);
        let mut last_score = None;
        for (score, member) in entries {
            let current = zset.score(member);
            let score = match (increment, current) {
                (true, Some(base)) => base + score.0,
                _ => score.0,
            };
            last_score = None;
            match current {
                None if condition.only_existing => continue,
                None => {
                    zset.insert(member, score);
                    added += 1;
                }
                Some(_) if condition.only_new => continue,
                Some(old) => {
                    if (condition.only_greater && score <= old)
                        || (condition.only_less && score >= old)
                    {
                        continue;
                    }
                    if score != old {
                        zset.insert(member, score);
                        updated += 1;
                    }
                }
            }
            last_score = zset.score(member);
        }
        Ok(if increment {
            Outcome::Scores(vec![last_score.map(Float)])
        } else if changed {
            Outcome::Integer(added + updated)
        } else {
            Outcome::Integer(added)
        })
    })
}

/// Answers a sorted-set read from the set (`None`: the key is absent).
pub(crate) fn read_zset(zset: Option<&ZSetValue>, op: &ZSetOp, limits: &Limits) -> Reply {
    let empty = ZSetValue::default();
    let zset = zset.unwrap_or(&empty);
    Ok(match op {
        ZSetOp::Card => Outcome::Integer(zset.len() as i64),
        ZSetOp::Scores { members } => Outcome::Scores(
            members
                .iter()
                .map(|member| zset.score(member).map(Float))
                .collect(),
        ),
        ZSetOp::Rank { member, reverse } => match zset.rank(member) {
            Some(rank) if *reverse => Outcome::Integer((zset.len() - 1 - rank) as i64),
            Some(rank) => Outcome::Integer(rank as i64),
            None => Outcome::Value(None),
        },
        ZSetOp::Range {
            range,
            reverse,
            limit,
        } => scored(range_members(zset, range, *reverse, *limit)),
        ZSetOp::Count { range } => {
            let (start, end) = selected_ranks(zset, range, false);
            Outcome::Integer((end - start) as i64)
        }
        ZSetOp::RandMember { count, seed } => {
            let positions = random_positions(
                zset.len(),
                count.unwrap_or(1),
                limits.max_collection_elements,
                *seed,
            )?;
            scored(
                positions
                    .into_iter()
                    .filter_map(|index| zset.nth(index))
                    .collect(),
            )
        }
        ZSetOp::Add { .. }
        | ZSetOp::Rem { .. }
        | ZSetOp::Pop { .. }
        | ZSetOp::RemRange { .. }
        | ZSetOp::Store { .. }
        | ZSetOp::RangeStore { .. }
        | ZSetOp::MultiPop { .. } => {
            panic!("api::read: a sorted-set write is not a read")
        }
        ZSetOp::Scan {
            position,
            count,
            pattern,
        } => {
            let (found, next_position) = crate::element_scan::scan_elements(
                zset.members_from(&[]),
                *position,
                *count,
                pattern.as_deref(),
            )?;
            Outcome::ScoredPage {
                members: found
                    .into_iter()
                    .map(|(member, score)| (member.to_vec(), Float(score)))
                    .collect(),
                next_position,
            }
        }
        ZSetOp::Combine { .. } | ZSetOp::InterCard { .. } => {
            panic!("api::read: a read of several sorted sets is answered by zset_algebra")
        }
    })
}
