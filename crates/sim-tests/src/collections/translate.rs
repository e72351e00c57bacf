//! The model's commands as the `api::Op`s the servers run, and the
//! servers' answers as the model's outputs.

use api::lists::{End as ApiEnd, ListOp};
use api::zsets::{LexBound as ApiLexBound, ScoreBound, ZAddCondition, ZRange, ZSetOp};
use api::{Combination, Error, Float, HashOp, Op, Outcome, SetOp};
use linearizability::models::collections::{Aggregate, Combine, End, LexBound, Refusal, Score};
use linearizability::{CollectionsInput, CollectionsOutput};

fn api_end(end: End) -> ApiEnd {
    match end {
        End::Left => ApiEnd::Left,
        End::Right => ApiEnd::Right,
    }
}

fn combination(how: Combine) -> Combination {
    match how {
        Combine::Inter => Combination::Intersection,
        Combine::Union => Combination::Union,
        Combine::Diff => Combination::Difference,
    }
}

fn api_aggregate(aggregate: Aggregate) -> api::Aggregate {
    match aggregate {
        Aggregate::Sum => api::Aggregate::Sum,
        Aggregate::Min => api::Aggregate::Min,
        Aggregate::Max => api::Aggregate::Max,
    }
}

fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn all_bytes(texts: &[String]) -> Vec<Vec<u8>> {
    texts.iter().map(|text| bytes(text)).collect()
}

fn by_member(min: &LexBound, max: &LexBound) -> ZRange {
    let bound = |bound: &LexBound| match bound {
        LexBound::Lowest => ApiLexBound::Lowest,
        LexBound::Highest => ApiLexBound::Highest,
        LexBound::Inclusive(member) => ApiLexBound::Inclusive(bytes(member)),
        LexBound::Exclusive(member) => ApiLexBound::Exclusive(bytes(member)),
    };
    ZRange::Lex {
        min: bound(min),
        max: bound(max),
    }
}

fn inclusive(min: Score, max: Score) -> ZRange {
    ZRange::Score {
        min: ScoreBound::Inclusive(min.value()),
        max: ScoreBound::Inclusive(max.value()),
    }
}

/// The operation the servers run for `input`; `seed` is the random
/// commands' choice (the receiving node picks it in production).
pub fn to_op(input: &CollectionsInput, seed: u64) -> Op {
    use CollectionsInput as I;
    let hash = |key: &String, op| Op::Hash {
        key: bytes(key),
        op,
    };
    let list = |key: &String, op| Op::List {
        key: bytes(key),
        op,
    };
    let sets = |key: &String, op| Op::Sets {
        key: bytes(key),
        op,
    };
    let zset = |key: &String, op| Op::ZSet {
        key: bytes(key),
        op,
    };
    match input {
        I::Set { key, value } => Op::Set {
            key: bytes(key),
            value: bytes(value),
            condition: api::SetCondition::Always,
            ttl: api::SetTtl::Clear,
            return_old: false,
        },
        I::Get { key } => Op::Get { key: bytes(key) },
        I::Del { key } => Op::Delete { key: bytes(key) },
        I::Rename {
            source,
            destination,
        } => Op::Rename {
            source: bytes(source),
            destination: bytes(destination),
            only_if_new: false,
        },
        I::Copy {
            source,
            destination,
            replace,
        } => Op::Copy {
            source: bytes(source),
            destination: bytes(destination),
            replace: *replace,
        },
        I::HExists { key, field } => hash(
            key,
            HashOp::Exists {
                field: bytes(field),
            },
        ),
        I::HStrLen { key, field } => hash(
            key,
            HashOp::StrLen {
                field: bytes(field),
            },
        ),
        I::HKeysOrVals { key, values } => {
            hash(key, if *values { HashOp::Vals } else { HashOp::Keys })
        }
        I::HIncrByFloat { key, field, delta } => hash(
            key,
            HashOp::IncrByFloat {
                field: bytes(field),
                // A small integer: exact as a float.
                delta: Float(*delta as f64),
            },
        ),
        I::HMGet { key, fields } => hash(
            key,
            HashOp::MGet {
                fields: all_bytes(fields),
            },
        ),
        I::LPos {
            key,
            element,
            from_tail,
        } => list(
            key,
            ListOp::Pos {
                element: bytes(element),
                rank: if *from_tail { -1 } else { 1 },
                count: 0,
                max_len: 0,
            },
        ),
        I::LMPop { keys, end, count } => list(
            &keys[0],
            ListOp::MultiPop {
                others: all_bytes(&keys[1..]),
                end: api_end(*end),
                count: *count,
            },
        ),
        I::SMIsMember { key, members } => sets(
            key,
            SetOp::MIsMember {
                members: all_bytes(members),
            },
        ),
        I::ZMScore { key, members } => zset(
            key,
            ZSetOp::Scores {
                members: all_bytes(members),
            },
        ),
        I::ZMPop {
            keys,
            highest,
            count,
        } => zset(
            &keys[0],
            ZSetOp::MultiPop {
                others: all_bytes(&keys[1..]),
                highest: *highest,
                count: *count,
            },
        ),
        I::ZRangeStore {
            destination,
            source,
            start,
            stop,
        } => zset(
            destination,
            ZSetOp::RangeStore {
                source: bytes(source),
                range: ZRange::Rank {
                    start: *start,
                    stop: *stop,
                },
                reverse: false,
                limit: None,
            },
        ),
        I::ZCombine {
            how,
            keys,
            weights,
            aggregate,
        } => zset(
            &keys[0],
            ZSetOp::Combine {
                how: combination(*how),
                others: all_bytes(&keys[1..]),
                weights: weights.iter().map(|weight| Float(weight.value())).collect(),
                aggregate: api_aggregate(*aggregate),
            },
        ),
        I::ZInterCard { keys, limit } => zset(
            &keys[0],
            ZSetOp::InterCard {
                others: all_bytes(&keys[1..]),
                limit: *limit,
            },
        ),
        I::Type { key } => Op::Type { key: bytes(key) },
        I::HSet { key, pairs } => hash(
            key,
            HashOp::Set {
                pairs: pairs
                    .iter()
                    .map(|(field, value)| (bytes(field), bytes(value)))
                    .collect(),
                only_new: false,
            },
        ),
        I::HSetNx { key, field, value } => hash(
            key,
            HashOp::Set {
                pairs: vec![(bytes(field), bytes(value))],
                only_new: true,
            },
        ),
        I::HDel { key, fields } => hash(
            key,
            HashOp::Del {
                fields: all_bytes(fields),
            },
        ),
        I::HIncrBy { key, field, delta } => hash(
            key,
            HashOp::IncrBy {
                field: bytes(field),
                delta: *delta,
            },
        ),
        I::HGet { key, field } => hash(
            key,
            HashOp::Get {
                field: bytes(field),
            },
        ),
        I::HGetAll { key } => hash(key, HashOp::GetAll),
        I::HLen { key } => hash(key, HashOp::Len),
        I::HRandField {
            key,
            count,
            with_values,
        } => hash(
            key,
            HashOp::RandField {
                count: *count,
                with_values: *with_values,
                seed,
            },
        ),
        I::Push {
            key,
            end,
            elements,
            only_existing,
        } => list(
            key,
            ListOp::Push {
                end: api_end(*end),
                elements: all_bytes(elements),
                only_existing: *only_existing,
            },
        ),
        I::Pop { key, end, count } => list(
            key,
            ListOp::Pop {
                end: api_end(*end),
                count: *count,
            },
        ),
        I::LRange { key, start, stop } => list(
            key,
            ListOp::Range {
                start: *start,
                stop: *stop,
            },
        ),
        I::LLen { key } => list(key, ListOp::Len),
        I::LIndex { key, index } => list(key, ListOp::Index { index: *index }),
        I::LMove {
            source,
            destination,
            from,
            to,
        } => list(
            source,
            ListOp::Move {
                destination: bytes(destination),
                from: api_end(*from),
                to: api_end(*to),
            },
        ),
        I::LRem {
            key,
            count,
            element,
        } => list(
            key,
            ListOp::Rem {
                count: *count,
                element: bytes(element),
            },
        ),
        I::LTrim { key, start, stop } => list(
            key,
            ListOp::Trim {
                start: *start,
                stop: *stop,
            },
        ),
        I::LSet {
            key,
            index,
            element,
        } => list(
            key,
            ListOp::Set {
                index: *index,
                element: bytes(element),
            },
        ),
        I::LInsert {
            key,
            before,
            pivot,
            element,
        } => list(
            key,
            ListOp::Insert {
                before: *before,
                pivot: bytes(pivot),
                element: bytes(element),
            },
        ),
        I::SAdd { key, members } => sets(
            key,
            SetOp::Add {
                members: all_bytes(members),
            },
        ),
        I::SRem { key, members } => sets(
            key,
            SetOp::Rem {
                members: all_bytes(members),
            },
        ),
        I::SCard { key } => sets(key, SetOp::Card),
        I::SIsMember { key, member } => sets(
            key,
            SetOp::IsMember {
                member: bytes(member),
            },
        ),
        I::SMembers { key } => sets(key, SetOp::Members),
        I::SPop { key, count } => sets(
            key,
            SetOp::Pop {
                count: *count,
                seed,
            },
        ),
        I::SRandMember { key, count } => sets(
            key,
            SetOp::RandMember {
                count: *count,
                seed,
            },
        ),
        I::SMove {
            source,
            destination,
            member,
        } => sets(
            source,
            SetOp::Move {
                destination: bytes(destination),
                member: bytes(member),
            },
        ),
        I::SCombine { how, keys } => sets(
            &keys[0],
            SetOp::Combine {
                how: combination(*how),
                others: all_bytes(&keys[1..]),
            },
        ),
        I::SStore {
            how,
            destination,
            sources,
        } => sets(
            destination,
            SetOp::Store {
                how: combination(*how),
                sources: all_bytes(sources),
            },
        ),
        I::SInterCard { keys, limit } => sets(
            &keys[0],
            SetOp::InterCard {
                others: all_bytes(&keys[1..]),
                limit: *limit,
            },
        ),
        I::ZAdd {
            key,
            entries,
            flags,
        } => zset(
            key,
            ZSetOp::Add {
                entries: entries
                    .iter()
                    .map(|(score, member)| (Float(score.value()), bytes(member)))
                    .collect(),
                condition: ZAddCondition {
                    only_new: flags.nx,
                    only_existing: flags.xx,
                    only_greater: flags.gt,
                    only_less: flags.lt,
                },
                changed: flags.ch,
                increment: flags.incr,
            },
        ),
        I::ZRem { key, members } => zset(
            key,
            ZSetOp::Rem {
                members: all_bytes(members),
            },
        ),
        I::ZCard { key } => zset(key, ZSetOp::Card),
        I::ZScore { key, member } => zset(
            key,
            ZSetOp::Scores {
                members: vec![bytes(member)],
            },
        ),
        I::ZRank {
            key,
            member,
            reverse,
        } => zset(
            key,
            ZSetOp::Rank {
                member: bytes(member),
                reverse: *reverse,
            },
        ),
        I::ZRange {
            key,
            start,
            stop,
            reverse,
        } => zset(
            key,
            ZSetOp::Range {
                range: ZRange::Rank {
                    start: *start,
                    stop: *stop,
                },
                reverse: *reverse,
                limit: None,
            },
        ),
        I::ZRangeByScore {
            key,
            min,
            max,
            reverse,
        } => zset(
            key,
            ZSetOp::Range {
                range: inclusive(*min, *max),
                reverse: *reverse,
                limit: None,
            },
        ),
        I::ZCount { key, min, max } => zset(
            key,
            ZSetOp::Count {
                range: inclusive(*min, *max),
            },
        ),
        I::ZPop {
            key,
            highest,
            count,
        } => zset(
            key,
            ZSetOp::Pop {
                highest: *highest,
                count: *count,
            },
        ),
        I::ZRangeByLex {
            key,
            min,
            max,
            reverse,
            limit,
        } => zset(
            key,
            ZSetOp::Range {
                range: by_member(min, max),
                reverse: *reverse,
                limit: *limit,
            },
        ),
        I::ZLexCount { key, min, max } => zset(
            key,
            ZSetOp::Count {
                range: by_member(min, max),
            },
        ),
        I::ZRemRangeByLex { key, min, max } => zset(
            key,
            ZSetOp::RemRange {
                range: by_member(min, max),
            },
        ),
        I::ZRemRangeByRank { key, start, stop } => zset(
            key,
            ZSetOp::RemRange {
                range: ZRange::Rank {
                    start: *start,
                    stop: *stop,
                },
            },
        ),
        I::ZRemRangeByScore { key, min, max } => zset(
            key,
            ZSetOp::RemRange {
                range: inclusive(*min, *max),
            },
        ),
        I::ZRandMember { key, count } => zset(
            key,
            ZSetOp::RandMember {
                count: *count,
                seed,
            },
        ),
        I::ZStore {
            how,
            destination,
            sources,
            weights,
            aggregate,
        } => zset(
            destination,
            ZSetOp::Store {
                how: combination(*how),
                sources: all_bytes(sources),
                weights: weights.iter().map(|weight| Float(weight.value())).collect(),
                aggregate: api_aggregate(*aggregate),
            },
        ),
    }
}

fn scored(members: Vec<(Vec<u8>, Float)>) -> Vec<(String, Score)> {
    members
        .into_iter()
        .map(|(member, score)| (text(member), Score::new(score.0)))
        .collect()
}

pub(super) fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The model's output for the servers' answer to `input`: `Ok(None)` when
/// the client gave up (the outcome is unknown), `Err` for an answer no
/// collection command gives (a harness or server bug, which the caller
/// reports).
pub fn to_output(
    input: &CollectionsInput,
    answer: Result<Outcome, Error>,
) -> Result<Option<CollectionsOutput>, String> {
    use CollectionsOutput as O;
    let output = match (answer, input) {
        (Ok(Outcome::Values(values)), CollectionsInput::HMGet { .. }) => {
            O::MaybeValues(values.into_iter().map(|value| value.map(text)).collect())
        }
        (Ok(Outcome::Applied(true)), CollectionsInput::Rename { .. }) => O::Done,
        (Ok(Outcome::Applied(copied)), CollectionsInput::Copy { .. }) => {
            O::Integer(i64::from(copied))
        }
        (answer, _) => return plain_output(input, answer),
    };
    Ok(Some(output))
}

/// [`to_output`] for the answers whose meaning does not depend on the
/// command.
fn plain_output(
    input: &CollectionsInput,
    answer: Result<Outcome, Error>,
) -> Result<Option<CollectionsOutput>, String> {
    use CollectionsOutput as O;
    let output = match answer {
        Err(Error::Timeout { .. }) => return Ok(None),
        Err(Error::WrongType) => O::Refused(Refusal::WrongType),
        Err(Error::HashNotInteger | Error::IncrementOverflow) => O::Refused(Refusal::NotAnInteger),
        Err(Error::HashNotFloat) => O::Refused(Refusal::NotAFloat),
        Err(Error::NoSuchKey) => O::Refused(Refusal::NoSuchKey),
        Err(Error::IndexOutOfRange) => O::Refused(Refusal::IndexOutOfRange),
        Ok(Outcome::Set { applied: true, .. } | Outcome::Done) => O::Done,
        Ok(Outcome::Deleted(deleted)) => O::Integer(i64::from(deleted)),
        Ok(Outcome::Integer(number)) => O::Integer(number),
        Ok(Outcome::Value(value)) => O::Value(value.map(text)),
        Ok(Outcome::Values(values)) => O::Values(
            values
                .into_iter()
                .map(|value| value.map(text).ok_or("a nil inside an array"))
                .collect::<Result<_, _>>()
                .map_err(|problem| format!("{input:?} answered {problem}"))?,
        ),
        Ok(Outcome::Scored(members)) => O::Scored(scored(members)),
        Ok(Outcome::Integers(numbers)) => O::Integers(numbers),
        Ok(Outcome::KeyValues { key, values }) => {
            O::KeyValues(text(key), values.into_iter().map(text).collect())
        }
        Ok(Outcome::KeyScored { key, members }) => O::KeyScored(text(key), scored(members)),
        Ok(Outcome::Scores(scores)) => O::Scores(
            scores
                .into_iter()
                .map(|score| score.map(|score| Score::new(score.0)))
                .collect(),
        ),
        other => return Err(format!("{input:?} answered {other:?}")),
    };
    Ok(Some(output))
}
