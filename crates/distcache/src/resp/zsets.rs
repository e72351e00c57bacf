//! Sorted-set commands to replicated operations (`api::Op::ZSet`): one
//! operation per command, so each is atomic. Writes go through the log;
//! `ZSCORE`, `ZRANGE`, `ZRANK`, `ZCOUNT`, `ZRANDMEMBER` ... take the read
//! path. `ZRANDMEMBER` carries a seed this node draws from the runtime
//! seam's generator, so the log (not the replica) makes the choice.
//!
//! `ZUNION`, `ZINTER`, `ZDIFF`, `ZINTERCARD` and the stores
//! (`ZUNIONSTORE`, `ZINTERSTORE`, `ZDIFFSTORE`, `ZRANGESTORE`) name
//! several keys and run as one operation: every key must be in one shard
//! (others get `-CROSSSLOT` before anything runs).
//!
//! **Reply shapes** are Redis 7.0's: scores are doubles (a bulk string in
//! RESP2, `,` in RESP3, written as `%.17g`); members with scores are a
//! flat array in RESP2 and an array of `[member, score]` pairs in RESP3
//! (`ZRANGE ... WITHSCORES`, `ZPOPMIN key count`, `ZRANDMEMBER key count
//! WITHSCORES`), except `ZPOPMIN key` without a count, flat in both.

use ::resp::command::{
    LexBoundArg, ScoreBoundArg, ZAggregate, ZCombination, ZRangeArg, ZSetCommand,
};
use ::resp::{Frame, Version};
use api::{Aggregate, Combination, Float, ZAddCondition, ZRange, ZSetOp};
use bytes::Bytes;
use cache::store::value::{LexBound, ScoreBound};
use shardkv::{Op, Outcome};

use super::execute::{Backend, forward_error};
use crate::forward::ForwardError;

fn unexpected(outcome: &Outcome) -> Frame {
    Frame::error(&format!("ERR unexpected outcome {outcome:?}"))
}

fn score_bound(bound: ScoreBoundArg) -> ScoreBound {
    if bound.exclusive {
        ScoreBound::Exclusive(bound.value)
    } else {
        ScoreBound::Inclusive(bound.value)
    }
}

fn lex_bound(bound: LexBoundArg) -> LexBound {
    match bound {
        LexBoundArg::Lowest => LexBound::Lowest,
        LexBoundArg::Highest => LexBound::Highest,
        LexBoundArg::Inclusive(member) => LexBound::Inclusive(member.to_vec()),
        LexBoundArg::Exclusive(member) => LexBound::Exclusive(member.to_vec()),
    }
}

fn range(range: ZRangeArg) -> ZRange {
    match range {
        ZRangeArg::Rank { start, stop } => ZRange::Rank { start, stop },
        ZRangeArg::Score { min, max } => ZRange::Score {
            min: score_bound(min),
            max: score_bound(max),
        },
        ZRangeArg::Lex { min, max } => ZRange::Lex {
            min: lex_bound(min),
            max: lex_bound(max),
        },
    }
}

fn combination(how: ZCombination) -> Combination {
    match how {
        ZCombination::Union => Combination::Union,
        ZCombination::Intersection => Combination::Intersection,
        ZCombination::Difference => Combination::Difference,
    }
}

fn aggregate_of(aggregate: ZAggregate) -> Aggregate {
    match aggregate {
        ZAggregate::Sum => Aggregate::Sum,
        ZAggregate::Min => Aggregate::Min,
        ZAggregate::Max => Aggregate::Max,
    }
}

/// How the answer of a command is shaped.
#[derive(Clone, Copy)]
enum Shape {
    /// An integer, or nil ([`Outcome::Value`]`(None)`: `ZRANK`).
    Integer,
    /// One score or nil (`ZSCORE`, `ZINCRBY`, `ZADD ... INCR`).
    Score,
    /// An array of scores or nils (`ZMSCORE`).
    Scores,
    /// Members, with their scores if asked (flat in RESP2, pairs in
    /// RESP3).
    Members { with_scores: bool },
    /// `ZPOPMIN key`: one member and its score, flat in both versions.
    PoppedOne,
    /// `ZRANDMEMBER key`: one member, or nil.
    OneMember,
    /// `ZSCAN`: `[cursor, [member, score, ...]]`, scores as bulk strings
    /// in both protocols (as Redis's scans answer).
    Page,
}

fn members_frame(members: Vec<(Vec<u8>, Float)>, with_scores: bool, version: Version) -> Frame {
    if !with_scores {
        return Frame::Array(
            members
                .into_iter()
                .map(|(member, _)| Frame::bulk(member))
                .collect(),
        );
    }
    match version {
        Version::Resp2 => Frame::Array(
            members
                .into_iter()
                .flat_map(|(member, score)| [Frame::bulk(member), Frame::Double(score.0)])
                .collect(),
        ),
        Version::Resp3 => Frame::Array(
            members
                .into_iter()
                .map(|(member, score)| {
                    Frame::Array(vec![Frame::bulk(member), Frame::Double(score.0)])
                })
                .collect(),
        ),
    }
}

fn score_frame(score: Option<Float>) -> Frame {
    score.map_or(Frame::Null, |score| Frame::Double(score.0))
}

fn reply(outcome: Outcome, shape: Shape, version: Version) -> Frame {
    match (shape, outcome) {
        (Shape::Integer, Outcome::Integer(number)) => Frame::Integer(number),
        (Shape::Integer, Outcome::Value(None)) => Frame::Null,
        (Shape::Score, Outcome::Scores(scores)) => score_frame(scores.into_iter().next().flatten()),
        (Shape::Scores, Outcome::Scores(scores)) => {
            Frame::Array(scores.into_iter().map(score_frame).collect())
        }
        (Shape::Members { with_scores }, Outcome::Scored(members)) => {
            members_frame(members, with_scores, version)
        }
        (Shape::PoppedOne, Outcome::Scored(members)) => {
            members_frame(members, true, Version::Resp2)
        }
        (Shape::OneMember, Outcome::Scored(members)) => members
            .into_iter()
            .next()
            .map_or(Frame::Null, |(member, _)| Frame::bulk(member)),
        (
            Shape::Page,
            Outcome::ScoredPage {
                members,
                next_position,
            },
        ) => super::collections::scan_reply(
            next_position,
            members
                .into_iter()
                .flat_map(|(member, score)| {
                    [
                        Frame::bulk(member),
                        Frame::bulk(::resp::format_double(score.0)),
                    ]
                })
                .collect(),
        ),
        (_, other) => unexpected(&other),
    }
}

/// Runs a sorted-set command.
pub(super) async fn zset<B: Backend>(
    backend: &B,
    key: Bytes,
    command: ZSetCommand,
    version: Version,
) -> Frame {
    let (op, shape) = match command {
        ZSetCommand::Add {
            entries,
            only_new,
            only_existing,
            only_greater,
            only_less,
            changed,
            increment,
        } => (
            ZSetOp::Add {
                entries: entries
                    .into_iter()
                    .map(|(score, member)| (Float(score), member.to_vec()))
                    .collect(),
                condition: ZAddCondition {
                    only_new,
                    only_existing,
                    only_greater,
                    only_less,
                },
                changed,
                increment,
            },
            if increment {
                Shape::Score
            } else {
                Shape::Integer
            },
        ),
        ZSetCommand::Rem { members } => (
            ZSetOp::Rem {
                members: members.iter().map(|member| member.to_vec()).collect(),
            },
            Shape::Integer,
        ),
        ZSetCommand::Card => (ZSetOp::Card, Shape::Integer),
        ZSetCommand::Score { members, multiple } => (
            ZSetOp::Scores {
                members: members.iter().map(|member| member.to_vec()).collect(),
            },
            if multiple {
                Shape::Scores
            } else {
                Shape::Score
            },
        ),
        ZSetCommand::Rank { member, reverse } => (
            ZSetOp::Rank {
                member: member.to_vec(),
                reverse,
            },
            Shape::Integer,
        ),
        ZSetCommand::Range {
            range: spec,
            reverse,
            limit,
            with_scores,
        } => (
            ZSetOp::Range {
                range: range(spec),
                reverse,
                limit,
            },
            Shape::Members { with_scores },
        ),
        ZSetCommand::Count { range: spec } => {
            (ZSetOp::Count { range: range(spec) }, Shape::Integer)
        }
        ZSetCommand::Pop { highest, count } => (
            ZSetOp::Pop { highest, count },
            if count.is_some() {
                Shape::Members { with_scores: true }
            } else {
                Shape::PoppedOne
            },
        ),
        ZSetCommand::RemRange { range: spec } => {
            (ZSetOp::RemRange { range: range(spec) }, Shape::Integer)
        }
        ZSetCommand::RandMember { count, with_scores } => (
            ZSetOp::RandMember {
                count,
                seed: labrpc::runtime::random_u64(),
            },
            if count.is_some() {
                Shape::Members { with_scores }
            } else {
                Shape::OneMember
            },
        ),
        ZSetCommand::Store {
            how,
            sources,
            weights,
            aggregate,
        } => (
            ZSetOp::Store {
                how: combination(how),
                sources: sources.iter().map(|source| source.to_vec()).collect(),
                weights: weights.into_iter().map(Float).collect(),
                aggregate: aggregate_of(aggregate),
            },
            Shape::Integer,
        ),
        ZSetCommand::Combine {
            how,
            others,
            weights,
            aggregate,
            with_scores,
        } => (
            ZSetOp::Combine {
                how: combination(how),
                others: others.iter().map(|other| other.to_vec()).collect(),
                weights: weights.into_iter().map(Float).collect(),
                aggregate: aggregate_of(aggregate),
            },
            Shape::Members { with_scores },
        ),
        ZSetCommand::Scan(scan) => (
            ZSetOp::Scan {
                position: scan.cursor,
                count: scan.count.unwrap_or(10),
                pattern: scan.pattern.map(|pattern| pattern.to_vec()),
            },
            Shape::Page,
        ),
        ZSetCommand::InterCard { others, limit } => (
            ZSetOp::InterCard {
                others: others.iter().map(|other| other.to_vec()).collect(),
                limit,
            },
            Shape::Integer,
        ),
        ZSetCommand::RangeStore {
            source,
            range: spec,
            reverse,
            limit,
        } => (
            ZSetOp::RangeStore {
                source: source.to_vec(),
                range: range(spec),
                reverse,
                limit,
            },
            Shape::Integer,
        ),
    };
    let op = Op::ZSet {
        key: key.to_vec(),
        op,
    };
    // One operation changes one shard: keys of several are refused here
    // before anything runs (the replicas refuse them too).
    if op.is_multi_key() && super::multikey::one_shard(backend, op.keys()).is_none() {
        return Frame::error(super::multikey::CROSSSLOT);
    }
    match backend.run(op).await {
        Ok(outcome) => reply(outcome, shape, version),
        // The only non-finite refusal of a sorted set: a NaN sum.
        Err(ForwardError::Refused(api::Error::NotFinite)) => {
            Frame::error("ERR resulting score is not a number (NaN)")
        }
        Err(error) => forward_error(&error),
    }
}
