//! What each deterministic command answers and leaves, from Redis 7's
//! documented semantics (see the module docs of [`super`]).
//!
//! Every command runs on a copy of the keyspace; a refused one answers its
//! [`Refusal`] and leaves the keyspace as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::{
    Aggregate, CollectionsInput, CollectionsOutput, Combine, End, Keyspace, LexBound, Refusal,
    Score, Value, ZAddFlags,
};

type Answer = Result<CollectionsOutput, Refusal>;
type Hash = BTreeMap<String, String>;
type Set = BTreeSet<String>;
type ZSet = BTreeMap<String, Score>;

/// The answer to `input` from `keyspace`, and the keyspace after it.
///
/// # Panics
///
/// If `input` is a random command (judged by [`super::choices`]).
pub(super) fn apply(
    keyspace: &Keyspace,
    input: &CollectionsInput,
) -> (CollectionsOutput, Keyspace) {
    let mut next = keyspace.clone();
    match run(&mut next, input) {
        Ok(output) => (output, next),
        Err(refusal) => (CollectionsOutput::Refused(refusal), keyspace.clone()),
    }
}

/// Whether `observed` is the answer `expected`, in any order where Redis
/// leaves the order open (`SMEMBERS`, `SINTER`/`SUNION`/`SDIFF`,
/// `HGETALL`, `HKEYS`, `HVALS`).
pub(super) fn same_answer(
    input: &CollectionsInput,
    observed: &CollectionsOutput,
    expected: &CollectionsOutput,
) -> bool {
    use CollectionsOutput::Values;
    match (input, observed, expected) {
        (
            CollectionsInput::SMembers { .. }
            | CollectionsInput::SCombine { .. }
            | CollectionsInput::HKeysOrVals { .. },
            Values(observed),
            Values(expected),
        ) => {
            let mut observed = observed.clone();
            observed.sort();
            let mut expected = expected.clone();
            expected.sort();
            observed == expected
        }
        (CollectionsInput::HGetAll { .. }, Values(observed), Values(expected)) => {
            pairs_sorted(observed) == pairs_sorted(expected)
        }
        _ => observed == expected,
    }
}

/// `field, value, field, value, ...` as sorted pairs (`None` if the count
/// is odd).
fn pairs_sorted(flat: &[String]) -> Option<Vec<(&String, &String)>> {
    if !flat.len().is_multiple_of(2) {
        return None;
    }
    let mut pairs: Vec<(&String, &String)> =
        flat.chunks(2).map(|pair| (&pair[0], &pair[1])).collect();
    pairs.sort();
    Some(pairs)
}

/// A sorted set's members in Redis's order: by score, then member bytes.
pub(crate) fn by_score(zset: &ZSet) -> Vec<(String, Score)> {
    let mut members: Vec<(String, Score)> = zset
        .iter()
        .map(|(member, score)| (member.clone(), *score))
        .collect();
    members.sort_by(|(a, a_score), (b, b_score)| a_score.cmp(b_score).then_with(|| a.cmp(b)));
    members
}

/// The positions `start..=stop` select of a sequence of `len` (Redis's
/// `LRANGE`, `LTRIM`, `ZRANGE`, `ZREMRANGEBYRANK`): negative counts from
/// the end, out-of-range ends are clamped, an inverted range is empty.
pub(crate) fn rank_span(start: i64, stop: i64, len: usize) -> Range<usize> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop + len
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return 0..0;
    }
    // Both within 0..len here.
    start as usize..stop as usize + 1
}

/// The position `index` names in a list of `len` (negative from the
/// tail), if inside it.
fn list_position(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let index = if index < 0 { index + len } else { index };
    (0..len).contains(&index).then_some(index as usize)
}

/// The hash at `key` (absent: `None`).
pub(crate) fn hash_at<'a>(keyspace: &'a Keyspace, key: &str) -> Result<Option<&'a Hash>, Refusal> {
    match keyspace.get(key) {
        None => Ok(None),
        Some(Value::Hash(hash)) => Ok(Some(hash)),
        Some(_) => Err(Refusal::WrongType),
    }
}

pub(crate) fn list_at<'a>(
    keyspace: &'a Keyspace,
    key: &str,
) -> Result<Option<&'a Vec<String>>, Refusal> {
    match keyspace.get(key) {
        None => Ok(None),
        Some(Value::List(list)) => Ok(Some(list)),
        Some(_) => Err(Refusal::WrongType),
    }
}

pub(crate) fn set_at<'a>(keyspace: &'a Keyspace, key: &str) -> Result<Option<&'a Set>, Refusal> {
    match keyspace.get(key) {
        None => Ok(None),
        Some(Value::Set(set)) => Ok(Some(set)),
        Some(_) => Err(Refusal::WrongType),
    }
}

pub(crate) fn zset_at<'a>(keyspace: &'a Keyspace, key: &str) -> Result<Option<&'a ZSet>, Refusal> {
    match keyspace.get(key) {
        None => Ok(None),
        Some(Value::ZSet(zset)) => Ok(Some(zset)),
        Some(_) => Err(Refusal::WrongType),
    }
}

/// Stores `value` at `key`; a collection left empty removes the key.
pub(crate) fn put(keyspace: &mut Keyspace, key: &str, value: Value) {
    if value.is_empty_collection() {
        keyspace.remove(key);
    } else {
        keyspace.insert(key.to_owned(), value);
    }
}

fn count(n: usize) -> CollectionsOutput {
    CollectionsOutput::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn run(keyspace: &mut Keyspace, input: &CollectionsInput) -> Answer {
    use CollectionsInput as I;
    use CollectionsOutput as O;
    match input {
        I::Set { key, value } => {
            keyspace.insert(key.clone(), Value::String(value.clone()));
            Ok(O::Done)
        }
        I::Get { key } => match keyspace.get(key) {
            None => Ok(O::Value(None)),
            Some(Value::String(text)) => Ok(O::Value(Some(text.clone()))),
            Some(_) => Err(Refusal::WrongType),
        },
        I::Del { key } => Ok(count(usize::from(keyspace.remove(key).is_some()))),
        I::Type { key } => Ok(O::Value(
            keyspace.get(key).map(|value| value.type_name().to_owned()),
        )),
        I::Rename {
            source,
            destination,
        } => {
            let value = keyspace.remove(source).ok_or(Refusal::NoSuchKey)?;
            keyspace.insert(destination.clone(), value);
            Ok(O::Done)
        }
        I::Copy {
            source,
            destination,
            replace,
        } => {
            let copies = source != destination
                && keyspace.contains_key(source)
                && (*replace || !keyspace.contains_key(destination));
            if copies {
                let value = keyspace[source].clone();
                keyspace.insert(destination.clone(), value);
            }
            Ok(count(usize::from(copies)))
        }
        I::HSet { .. }
        | I::HSetNx { .. }
        | I::HDel { .. }
        | I::HIncrBy { .. }
        | I::HGet { .. }
        | I::HGetAll { .. }
        | I::HLen { .. }
        | I::HMGet { .. }
        | I::HExists { .. }
        | I::HStrLen { .. }
        | I::HKeysOrVals { .. }
        | I::HIncrByFloat { .. } => run_hash(keyspace, input),
        I::Push { .. }
        | I::Pop { .. }
        | I::LRange { .. }
        | I::LLen { .. }
        | I::LIndex { .. }
        | I::LMove { .. }
        | I::LRem { .. }
        | I::LTrim { .. }
        | I::LSet { .. }
        | I::LInsert { .. }
        | I::LPos { .. }
        | I::LMPop { .. } => run_list(keyspace, input),
        I::SAdd { .. }
        | I::SRem { .. }
        | I::SCard { .. }
        | I::SIsMember { .. }
        | I::SMembers { .. }
        | I::SMove { .. }
        | I::SCombine { .. }
        | I::SStore { .. }
        | I::SInterCard { .. }
        | I::SMIsMember { .. } => run_set(keyspace, input),
        I::ZAdd { .. }
        | I::ZRem { .. }
        | I::ZCard { .. }
        | I::ZScore { .. }
        | I::ZRank { .. }
        | I::ZRange { .. }
        | I::ZRangeByScore { .. }
        | I::ZCount { .. }
        | I::ZPop { .. }
        | I::ZRemRangeByRank { .. }
        | I::ZRemRangeByScore { .. }
        | I::ZStore { .. }
        | I::ZMScore { .. }
        | I::ZMPop { .. }
        | I::ZRangeStore { .. }
        | I::ZCombine { .. }
        | I::ZInterCard { .. }
        | I::ZRangeByLex { .. }
        | I::ZLexCount { .. }
        | I::ZRemRangeByLex { .. } => run_zset(keyspace, input),
        I::SPop { .. } | I::SRandMember { .. } | I::HRandField { .. } | I::ZRandMember { .. } => {
            panic!("collections model: {input:?} is random, judged by choices")
        }
    }
}

fn run_hash(keyspace: &mut Keyspace, input: &CollectionsInput) -> Answer {
    use CollectionsInput as I;
    use CollectionsOutput as O;
    let key = input.keys()[0].to_owned();
    let mut hash = hash_at(keyspace, &key)?.cloned().unwrap_or_default();
    let output = match input {
        I::HSet { pairs, .. } => {
            let mut added = 0;
            for (field, value) in pairs {
                if hash.insert(field.clone(), value.clone()).is_none() {
                    added += 1;
                }
            }
            count(added)
        }
        I::HSetNx { field, value, .. } => {
            if hash.contains_key(field) {
                O::Integer(0)
            } else {
                hash.insert(field.clone(), value.clone());
                O::Integer(1)
            }
        }
        I::HDel { fields, .. } => count(
            fields
                .iter()
                .filter(|field| hash.remove(*field).is_some())
                .count(),
        ),
        I::HIncrBy { field, delta, .. } => {
            let current = match hash.get(field) {
                None => 0,
                Some(text) => text.parse::<i64>().map_err(|_| Refusal::NotAnInteger)?,
            };
            let sum = current.checked_add(*delta).ok_or(Refusal::NotAnInteger)?;
            hash.insert(field.clone(), sum.to_string());
            O::Integer(sum)
        }
        I::HGet { field, .. } => O::Value(hash.get(field).cloned()),
        I::HGetAll { .. } => O::Values(
            hash.iter()
                .flat_map(|(field, value)| [field.clone(), value.clone()])
                .collect(),
        ),
        I::HLen { .. } => count(hash.len()),
        I::HExists { field, .. } => count(usize::from(hash.contains_key(field))),
        I::HStrLen { field, .. } => count(hash.get(field).map_or(0, String::len)),
        I::HKeysOrVals { values, .. } => O::Values(
            hash.iter()
                .map(|(field, value)| if *values { value } else { field }.clone())
                .collect(),
        ),
        I::HIncrByFloat { field, delta, .. } => {
            let current = match hash.get(field) {
                None => 0,
                Some(text) => text.parse::<i64>().map_err(|_| Refusal::NotAFloat)?,
            };
            let sum = current.checked_add(*delta).ok_or(Refusal::NotAFloat)?;
            hash.insert(field.clone(), sum.to_string());
            O::Value(Some(sum.to_string()))
        }
        I::HMGet { fields, .. } => O::MaybeValues(
            fields
                .iter()
                .map(|field| hash.get(field).cloned())
                .collect(),
        ),
        other => unreachable!("not a hash command: {other:?}"),
    };
    put(keyspace, &key, Value::Hash(hash));
    Ok(output)
}

fn push(list: &mut Vec<String>, end: End, element: String) {
    match end {
        End::Left => list.insert(0, element),
        End::Right => list.push(element),
    }
}

fn pop(list: &mut Vec<String>, end: End) -> Option<String> {
    if list.is_empty() {
        return None;
    }
    Some(match end {
        End::Left => list.remove(0),
        End::Right => list.remove(list.len() - 1),
    })
}

fn run_list(keyspace: &mut Keyspace, input: &CollectionsInput) -> Answer {
    use CollectionsInput as I;
    use CollectionsOutput as O;
    if let I::LMPop { keys, end, count } = input {
        for key in keys {
            let Some(list) = list_at(keyspace, key)? else {
                continue;
            };
            let mut list = list.clone();
            let wanted = usize::try_from(*count).unwrap_or(usize::MAX);
            let popped: Vec<String> = (0..wanted).map_while(|_| pop(&mut list, *end)).collect();
            put(keyspace, key, Value::List(list));
            return Ok(O::KeyValues(key.clone(), popped));
        }
        return Ok(O::Value(None));
    }
    let key = input.keys()[0].to_owned();
    let existed = list_at(keyspace, &key)?.is_some();
    let mut list = list_at(keyspace, &key)?.cloned().unwrap_or_default();
    let output = match input {
        I::Push { only_existing, .. } if *only_existing && !existed => O::Integer(0),
        I::Push { end, elements, .. } => {
            for element in elements {
                push(&mut list, *end, element.clone());
            }
            count(list.len())
        }
        I::Pop {
            count: None, end, ..
        } => O::Value(pop(&mut list, *end)),
        I::Pop { .. } if !existed => O::Value(None),
        I::Pop {
            count: Some(wanted),
            end,
            ..
        } => {
            let mut popped = Vec::new();
            while (popped.len() as u64) < *wanted {
                match pop(&mut list, *end) {
                    Some(element) => popped.push(element),
                    None => break,
                }
            }
            O::Values(popped)
        }
        I::LRange { start, stop, .. } => {
            O::Values(list[rank_span(*start, *stop, list.len())].to_vec())
        }
        I::LLen { .. } => count(list.len()),
        I::LIndex { index, .. } => {
            O::Value(list_position(*index, list.len()).map(|at| list[at].clone()))
        }
        I::LMove {
            destination,
            from,
            to,
            ..
        } => {
            let Some(element) = pop(&mut list, *from) else {
                return Ok(O::Value(None));
            };
            if *destination == key {
                push(&mut list, *to, element.clone());
            } else {
                let mut target = list_at(keyspace, destination)?.cloned().unwrap_or_default();
                push(&mut target, *to, element.clone());
                put(keyspace, destination, Value::List(target));
            }
            O::Value(Some(element))
        }
        I::LRem {
            count: wanted,
            element,
            ..
        } => {
            let limit = if *wanted == 0 {
                usize::MAX
            } else {
                usize::try_from(wanted.unsigned_abs()).unwrap_or(usize::MAX)
            };
            let mut removed = 0;
            let mut kept = Vec::new();
            let from_tail = *wanted < 0;
            let walk: Box<dyn Iterator<Item = &String>> = if from_tail {
                Box::new(list.iter().rev())
            } else {
                Box::new(list.iter())
            };
            for item in walk {
                if item == element && removed < limit {
                    removed += 1;
                } else {
                    kept.push(item.clone());
                }
            }
            if from_tail {
                kept.reverse();
            }
            list = kept;
            count(removed)
        }
        I::LTrim { start, stop, .. } => {
            list = list[rank_span(*start, *stop, list.len())].to_vec();
            O::Done
        }
        I::LSet { index, element, .. } => {
            if !existed {
                return Err(Refusal::NoSuchKey);
            }
            let at = list_position(*index, list.len()).ok_or(Refusal::IndexOutOfRange)?;
            list[at] = element.clone();
            O::Done
        }
        I::LPos {
            element, from_tail, ..
        } => {
            let mut found: Vec<i64> = list
                .iter()
                .enumerate()
                .filter(|(_, item)| *item == element)
                .map(|(index, _)| index as i64)
                .collect();
            if *from_tail {
                found.reverse();
            }
            O::Integers(found)
        }
        I::LInsert { .. } if !existed => O::Integer(0),
        I::LInsert {
            before,
            pivot,
            element,
            ..
        } => match list.iter().position(|item| item == pivot) {
            None => O::Integer(-1),
            Some(found) => {
                list.insert(if *before { found } else { found + 1 }, element.clone());
                count(list.len())
            }
        },
        other => unreachable!("not a list command: {other:?}"),
    };
    put(keyspace, &key, Value::List(list));
    Ok(output)
}

/// The sets at `keys` (absent ones empty), or [`Refusal::WrongType`] if
/// any key holds another type.
fn sets_at(keyspace: &Keyspace, keys: &[String]) -> Result<Vec<Set>, Refusal> {
    keys.iter()
        .map(|key| Ok(set_at(keyspace, key)?.cloned().unwrap_or_default()))
        .collect()
}

fn combine_sets(how: Combine, sets: &[Set]) -> Set {
    let Some((first, rest)) = sets.split_first() else {
        return Set::new();
    };
    first
        .iter()
        .chain(if how == Combine::Union {
            rest.iter().flatten().collect::<Vec<_>>()
        } else {
            Vec::new()
        })
        .filter(|member| match how {
            Combine::Inter => rest.iter().all(|set| set.contains(*member)),
            Combine::Union => true,
            Combine::Diff => !rest.iter().any(|set| set.contains(*member)),
        })
        .cloned()
        .collect()
}

fn run_set(keyspace: &mut Keyspace, input: &CollectionsInput) -> Answer {
    use CollectionsInput as I;
    use CollectionsOutput as O;
    match input {
        I::SCombine { how, keys } => {
            return Ok(O::Values(
                combine_sets(*how, &sets_at(keyspace, keys)?)
                    .into_iter()
                    .collect(),
            ));
        }
        I::SInterCard { keys, limit } => {
            let size = combine_sets(Combine::Inter, &sets_at(keyspace, keys)?).len();
            let limit = if *limit == 0 {
                usize::MAX
            } else {
                usize::try_from(*limit).unwrap_or(usize::MAX)
            };
            return Ok(count(size.min(limit)));
        }
        I::SStore {
            how,
            destination,
            sources,
        } => {
            let result = combine_sets(*how, &sets_at(keyspace, sources)?);
            let size = result.len();
            keyspace.remove(destination);
            put(keyspace, destination, Value::Set(result));
            return Ok(count(size));
        }
        I::SMove {
            source,
            destination,
            member,
        } => {
            let Some(from) = set_at(keyspace, source)? else {
                return Ok(O::Integer(0));
            };
            let holds = from.contains(member);
            let mut from = from.clone();
            let mut to = set_at(keyspace, destination)?.cloned().unwrap_or_default();
            if !holds || source == destination {
                return Ok(count(usize::from(holds)));
            }
            from.remove(member);
            to.insert(member.clone());
            put(keyspace, source, Value::Set(from));
            put(keyspace, destination, Value::Set(to));
            return Ok(O::Integer(1));
        }
        _ => {}
    }
    let key = input.keys()[0].to_owned();
    let mut set = set_at(keyspace, &key)?.cloned().unwrap_or_default();
    let output = match input {
        I::SAdd { members, .. } => count(
            members
                .iter()
                .filter(|member| set.insert((*member).clone()))
                .count(),
        ),
        I::SRem { members, .. } => {
            count(members.iter().filter(|member| set.remove(*member)).count())
        }
        I::SCard { .. } => count(set.len()),
        I::SIsMember { member, .. } => count(usize::from(set.contains(member))),
        I::SMIsMember { members, .. } => O::Integers(
            members
                .iter()
                .map(|member| i64::from(set.contains(member)))
                .collect(),
        ),
        I::SMembers { .. } => O::Values(set.iter().cloned().collect()),
        other => unreachable!("not a set command: {other:?}"),
    };
    put(keyspace, &key, Value::Set(set));
    Ok(output)
}

fn zadd(zset: &mut ZSet, entries: &[(Score, String)], flags: ZAddFlags) -> CollectionsOutput {
    let (mut added, mut changed) = (0, 0);
    let mut incremented = None;
    for (score, member) in entries {
        incremented = None;
        let new_score = match (zset.get(member), flags.incr) {
            (Some(current), true) => Score::new(current.value() + score.value()),
            _ => *score,
        };
        match zset.get(member).copied() {
            None if flags.xx => continue,
            None => {
                zset.insert(member.clone(), new_score);
                added += 1;
            }
            Some(_) if flags.nx => continue,
            Some(current) => {
                if (flags.gt && new_score <= current) || (flags.lt && new_score >= current) {
                    continue;
                }
                if new_score != current {
                    zset.insert(member.clone(), new_score);
                    changed += 1;
                }
            }
        }
        incremented = Some(new_score);
    }
    if flags.incr {
        CollectionsOutput::Scores(vec![incremented])
    } else if flags.ch {
        count(added + changed)
    } else {
        count(added)
    }
}

/// Whether `member` lies between the bounds (byte order).
fn in_lex(member: &str, min: &LexBound, max: &LexBound) -> bool {
    let above_min = match min {
        LexBound::Lowest => true,
        LexBound::Highest => false,
        LexBound::Inclusive(bound) => member >= bound.as_str(),
        LexBound::Exclusive(bound) => member > bound.as_str(),
    };
    let below_max = match max {
        LexBound::Lowest => false,
        LexBound::Highest => true,
        LexBound::Inclusive(bound) => member <= bound.as_str(),
        LexBound::Exclusive(bound) => member < bound.as_str(),
    };
    above_min && below_max
}

/// `LIMIT offset count` over `found`: a negative offset selects nothing,
/// a negative count everything after the offset.
fn limited<T>(found: Vec<T>, limit: Option<(i64, i64)>) -> Vec<T> {
    let Some((offset, count)) = limit else {
        return found;
    };
    let Ok(offset) = usize::try_from(offset) else {
        return Vec::new();
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    found.into_iter().skip(offset).take(count).collect()
}

fn in_scores(score: Score, min: Score, max: Score) -> bool {
    min <= score && score <= max
}

/// A source of `ZUNIONSTORE`...: a sorted set, or a set scoring 1 each.
fn scored_source(keyspace: &Keyspace, key: &str) -> Result<ZSet, Refusal> {
    match keyspace.get(key) {
        None => Ok(ZSet::new()),
        Some(Value::ZSet(zset)) => Ok(zset.clone()),
        Some(Value::Set(set)) => Ok(set
            .iter()
            .map(|member| (member.clone(), Score::new(1.0)))
            .collect()),
        Some(_) => Err(Refusal::WrongType),
    }
}

/// Redis's rule: a product or sum that is NaN (`inf * 0`, `inf - inf`)
/// counts as 0.
fn not_nan(value: f64) -> Score {
    Score::new(if value.is_nan() { 0.0 } else { value })
}

fn combine_zsets(how: Combine, sources: &[ZSet], weights: &[Score], aggregate: Aggregate) -> ZSet {
    let weight = |index: usize| weights.get(index).map_or(1.0, |weight| weight.value());
    let merge = |a: Score, b: Score| match aggregate {
        Aggregate::Sum => not_nan(a.value() + b.value()),
        Aggregate::Min => a.min(b),
        Aggregate::Max => a.max(b),
    };
    let Some((first, rest)) = sources.split_first() else {
        return ZSet::new();
    };
    match how {
        // ZDIFFSTORE takes no weights: the first set's scores.
        Combine::Diff => first
            .iter()
            .filter(|(member, _)| !rest.iter().any(|other| other.contains_key(*member)))
            .map(|(member, score)| (member.clone(), *score))
            .collect(),
        Combine::Inter => first
            .keys()
            .filter(|member| rest.iter().all(|other| other.contains_key(*member)))
            .map(|member| {
                let score = sources
                    .iter()
                    .enumerate()
                    .map(|(index, source)| not_nan(source[member].value() * weight(index)))
                    .reduce(merge)
                    .expect("at least the first source");
                (member.clone(), score)
            })
            .collect(),
        Combine::Union => {
            let mut result = ZSet::new();
            for (index, source) in sources.iter().enumerate() {
                for (member, score) in source {
                    let score = not_nan(score.value() * weight(index));
                    let merged = match result.get(member) {
                        Some(current) => merge(*current, score),
                        None => score,
                    };
                    result.insert(member.clone(), merged);
                }
            }
            result
        }
    }
}

fn run_zset(keyspace: &mut Keyspace, input: &CollectionsInput) -> Answer {
    use CollectionsInput as I;
    use CollectionsOutput as O;
    if let I::ZStore {
        how,
        destination,
        sources,
        weights,
        aggregate,
    } = input
    {
        let found: Vec<ZSet> = sources
            .iter()
            .map(|key| scored_source(keyspace, key))
            .collect::<Result<_, _>>()?;
        let result = combine_zsets(*how, &found, weights, *aggregate);
        let size = result.len();
        keyspace.remove(destination);
        put(keyspace, destination, Value::ZSet(result));
        return Ok(count(size));
    }
    match input {
        I::ZCombine {
            how,
            keys,
            weights,
            aggregate,
        } => {
            let found: Vec<ZSet> = keys
                .iter()
                .map(|key| scored_source(keyspace, key))
                .collect::<Result<_, _>>()?;
            return Ok(O::Scored(by_score(&combine_zsets(
                *how, &found, weights, *aggregate,
            ))));
        }
        I::ZInterCard { keys, limit } => {
            let found: Vec<ZSet> = keys
                .iter()
                .map(|key| scored_source(keyspace, key))
                .collect::<Result<_, _>>()?;
            let size = combine_zsets(Combine::Inter, &found, &[], Aggregate::Sum).len();
            let limit = if *limit == 0 {
                usize::MAX
            } else {
                usize::try_from(*limit).unwrap_or(usize::MAX)
            };
            return Ok(count(size.min(limit)));
        }
        I::ZRangeStore {
            destination,
            source,
            start,
            stop,
        } => {
            let ordered = by_score(&zset_at(keyspace, source)?.cloned().unwrap_or_default());
            let result: ZSet = ordered[rank_span(*start, *stop, ordered.len())]
                .iter()
                .cloned()
                .collect();
            let size = result.len();
            keyspace.remove(destination);
            put(keyspace, destination, Value::ZSet(result));
            return Ok(count(size));
        }
        I::ZMPop {
            keys,
            highest,
            count,
        } => {
            for key in keys {
                let Some(zset) = zset_at(keyspace, key)? else {
                    continue;
                };
                let mut walk = by_score(zset);
                if *highest {
                    walk.reverse();
                }
                walk.truncate(usize::try_from(*count).unwrap_or(usize::MAX));
                let mut zset = zset.clone();
                for (member, _) in &walk {
                    zset.remove(member);
                }
                put(keyspace, key, Value::ZSet(zset));
                return Ok(O::KeyScored(key.clone(), walk));
            }
            return Ok(O::Value(None));
        }
        _ => {}
    }
    let key = input.keys()[0].to_owned();
    let existed = zset_at(keyspace, &key)?.is_some();
    let mut zset = zset_at(keyspace, &key)?.cloned().unwrap_or_default();
    let ordered = by_score(&zset);
    let output = match input {
        I::ZAdd { entries, flags, .. } => zadd(&mut zset, entries, *flags),
        I::ZRem { members, .. } => count(
            members
                .iter()
                .filter(|member| zset.remove(*member).is_some())
                .count(),
        ),
        I::ZCard { .. } => count(zset.len()),
        I::ZScore { member, .. } => O::Scores(vec![zset.get(member).copied()]),
        I::ZMScore { members, .. } => O::Scores(
            members
                .iter()
                .map(|member| zset.get(member).copied())
                .collect(),
        ),
        I::ZRank {
            member, reverse, ..
        } => match ordered.iter().position(|(m, _)| m == member) {
            None => O::Value(None),
            Some(rank) if *reverse => count(ordered.len() - 1 - rank),
            Some(rank) => count(rank),
        },
        I::ZRange {
            start,
            stop,
            reverse,
            ..
        } => {
            let mut walk = ordered.clone();
            if *reverse {
                walk.reverse();
            }
            O::Scored(walk[rank_span(*start, *stop, walk.len())].to_vec())
        }
        I::ZRangeByScore {
            min, max, reverse, ..
        } => {
            let mut found: Vec<(String, Score)> = ordered
                .iter()
                .filter(|(_, score)| in_scores(*score, *min, *max))
                .cloned()
                .collect();
            if *reverse {
                found.reverse();
            }
            O::Scored(found)
        }
        I::ZRangeByLex {
            min,
            max,
            reverse,
            limit,
            ..
        } => {
            let mut found: Vec<(String, Score)> = ordered
                .iter()
                .filter(|(member, _)| in_lex(member, min, max))
                .cloned()
                .collect();
            if *reverse {
                found.reverse();
            }
            O::Scored(limited(found, *limit))
        }
        I::ZLexCount { min, max, .. } => count(
            zset.keys()
                .filter(|member| in_lex(member, min, max))
                .count(),
        ),
        I::ZRemRangeByLex { min, max, .. } => {
            let before = zset.len();
            zset.retain(|member, _| !in_lex(member, min, max));
            count(before - zset.len())
        }
        I::ZCount { min, max, .. } => count(
            zset.values()
                .filter(|score| in_scores(**score, *min, *max))
                .count(),
        ),
        I::ZPop { .. } if !existed => O::Scored(Vec::new()),
        I::ZPop { highest, count, .. } => {
            let mut walk = ordered.clone();
            if *highest {
                walk.reverse();
            }
            let wanted = usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX);
            walk.truncate(wanted);
            for (member, _) in &walk {
                zset.remove(member);
            }
            O::Scored(walk)
        }
        I::ZRemRangeByRank { start, stop, .. } => {
            let doomed = &ordered[rank_span(*start, *stop, ordered.len())];
            for (member, _) in doomed {
                zset.remove(member);
            }
            count(doomed.len())
        }
        I::ZRemRangeByScore { min, max, .. } => {
            let before = zset.len();
            zset.retain(|_, score| !in_scores(*score, *min, *max));
            count(before - zset.len())
        }
        other => unreachable!("not a sorted-set command: {other:?}"),
    };
    put(keyspace, &key, Value::ZSet(zset));
    Ok(output)
}
