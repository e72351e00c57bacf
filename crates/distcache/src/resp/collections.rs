//! Hash and set commands to replicated operations (`api::Op::Hash`,
//! `api::Op::Sets`): one operation per command, so each is atomic.
//! Writes go through the log; reads (`HGET`, `SMEMBERS`, ...) take the read
//! path. `SPOP`, `SRANDMEMBER` and `HRANDFIELD` carry a seed this node
//! draws from the runtime seam's generator: the log carries the choice, so
//! replicas cannot diverge.
//!
//! `SINTER`, `SUNION`, `SDIFF` (+`STORE`), `SINTERCARD` and `SMOVE` name
//! several keys and run as one operation, so every key must be in one
//! shard: others get Redis Cluster's `-CROSSSLOT` before anything runs
//! (one `{hash tag}` keeps keys together).

use ::resp::Frame;
use ::resp::command::{HashCommand, SetCombination, SetCommand};
use api::{Combination, Float, HashOp, SetOp};
use bytes::Bytes;
use shardkv::{Op, Outcome};

use super::execute::{Backend, forward_error};

fn vec(bytes: &Bytes) -> Vec<u8> {
    bytes.to_vec()
}

fn vecs(items: &[Bytes]) -> Vec<Vec<u8>> {
    items.iter().map(vec).collect()
}

fn seed() -> u64 {
    labrpc::runtime::random_u64()
}

fn unexpected(outcome: &Outcome) -> Frame {
    Frame::error(&format!("ERR unexpected outcome {outcome:?}"))
}

/// An array of bulk strings (nil where absent).
fn values_frame(values: Vec<Option<Vec<u8>>>) -> Frame {
    Frame::Array(
        values
            .into_iter()
            .map(|value| value.map_or(Frame::Null, Frame::bulk))
            .collect(),
    )
}

/// `[cursor, [element ...]]`, the cursor 0 when the collection is done.
pub(super) fn scan_reply(next_position: u64, elements: Vec<Frame>) -> Frame {
    let cursor = if next_position >= api::SCAN_POSITION_END {
        0
    } else {
        next_position
    };
    Frame::Array(vec![
        Frame::bulk(cursor.to_string()),
        Frame::Array(elements),
    ])
}

/// `COUNT`'s default, as Redis's.
const SCAN_COUNT_DEFAULT: u64 = 10;

/// The reply to a hash or set operation, in the shape Redis gives.
fn reply(outcome: Outcome) -> Frame {
    match outcome {
        Outcome::Integer(number) => Frame::Integer(number),
        Outcome::Value(value) => value.map_or(Frame::Null, Frame::bulk),
        Outcome::Values(values) => values_frame(values),
        Outcome::Integers(numbers) => {
            Frame::Array(numbers.into_iter().map(Frame::Integer).collect())
        }
        // HSCAN and SSCAN.
        Outcome::Keys {
            keys,
            next_position,
        } => scan_reply(next_position, keys.into_iter().map(Frame::bulk).collect()),
        other => unexpected(&other),
    }
}

async fn run<B: Backend>(backend: &B, op: Op) -> Result<Outcome, Frame> {
    backend.run(op).await.map_err(|error| forward_error(&error))
}

/// Runs a hash command; `version` shapes `HRANDFIELD ... WITHVALUES`
/// (RESP3: one field-value pair per element, as Redis 7 answers).
pub(super) async fn hash<B: Backend>(
    backend: &B,
    key: Bytes,
    command: HashCommand,
    version: ::resp::Version,
) -> Frame {
    let mut legacy_ok = false;
    let mut paired = false;
    let op = match command {
        HashCommand::Set {
            pairs,
            only_new,
            legacy,
        } => {
            legacy_ok = legacy;
            HashOp::Set {
                pairs: pairs.iter().map(|(f, v)| (vec(f), vec(v))).collect(),
                only_new,
            }
        }
        HashCommand::Get { field } => HashOp::Get { field: vec(&field) },
        HashCommand::MGet { fields } => HashOp::MGet {
            fields: vecs(&fields),
        },
        HashCommand::Del { fields } => HashOp::Del {
            fields: vecs(&fields),
        },
        HashCommand::Exists { field } => HashOp::Exists { field: vec(&field) },
        HashCommand::Len => HashOp::Len,
        HashCommand::StrLen { field } => HashOp::StrLen { field: vec(&field) },
        HashCommand::GetAll => HashOp::GetAll,
        HashCommand::Keys => HashOp::Keys,
        HashCommand::Vals => HashOp::Vals,
        HashCommand::IncrBy { field, delta } => HashOp::IncrBy {
            field: vec(&field),
            delta,
        },
        HashCommand::IncrByFloat { field, delta } => HashOp::IncrByFloat {
            field: vec(&field),
            delta: Float(delta),
        },
        HashCommand::RandField { count, with_values } => {
            paired = with_values && count.is_some() && version == ::resp::Version::Resp3;
            HashOp::RandField {
                count,
                with_values,
                seed: seed(),
            }
        }
        HashCommand::Scan(scan) => HashOp::Scan {
            position: scan.cursor,
            count: scan.count.unwrap_or(SCAN_COUNT_DEFAULT),
            pattern: scan.pattern.map(|pattern| pattern.to_vec()),
        },
    };
    let op = Op::Hash { key: vec(&key), op };
    match run(backend, op).await {
        Ok(Outcome::Integer(_)) if legacy_ok => Frame::ok(),
        Ok(Outcome::Values(values)) if paired => Frame::Array(
            values
                .chunks(2)
                .map(|pair| values_frame(pair.to_vec()))
                .collect(),
        ),
        Ok(outcome) => reply(outcome),
        Err(frame) => frame,
    }
}

/// Runs a set command.
pub(super) async fn set<B: Backend>(backend: &B, key: Bytes, command: SetCommand) -> Frame {
    let op = match command {
        SetCommand::Add { members } => SetOp::Add {
            members: vecs(&members),
        },
        SetCommand::Rem { members } => SetOp::Rem {
            members: vecs(&members),
        },
        SetCommand::IsMember { member } => SetOp::IsMember {
            member: vec(&member),
        },
        SetCommand::MIsMember { members } => SetOp::MIsMember {
            members: vecs(&members),
        },
        SetCommand::Members => SetOp::Members,
        SetCommand::Card => SetOp::Card,
        SetCommand::Pop { count } => SetOp::Pop {
            count,
            seed: seed(),
        },
        SetCommand::RandMember { count } => SetOp::RandMember {
            count,
            seed: seed(),
        },
        SetCommand::Combine { how, others } => SetOp::Combine {
            how: combination(how),
            others: vecs(&others),
        },
        SetCommand::Store { how, sources } => SetOp::Store {
            how: combination(how),
            sources: vecs(&sources),
        },
        SetCommand::InterCard { others, limit } => SetOp::InterCard {
            others: vecs(&others),
            limit,
        },
        SetCommand::Move {
            destination,
            member,
        } => SetOp::Move {
            destination: vec(&destination),
            member: vec(&member),
        },
        SetCommand::Scan(scan) => SetOp::Scan {
            position: scan.cursor,
            count: scan.count.unwrap_or(SCAN_COUNT_DEFAULT),
            pattern: scan.pattern.map(|pattern| pattern.to_vec()),
        },
    };
    let op = Op::Sets { key: vec(&key), op };
    // One operation changes one shard: keys of several are refused here
    // before anything runs (the replicas refuse them too).
    if op.is_multi_key() && super::multikey::one_shard(backend, op.keys()).is_none() {
        return Frame::error(super::multikey::CROSSSLOT);
    }
    match run(backend, op).await {
        Ok(outcome) => reply(outcome),
        Err(frame) => frame,
    }
}

fn combination(how: SetCombination) -> Combination {
    match how {
        SetCombination::Intersection => Combination::Intersection,
        SetCombination::Union => Combination::Union,
        SetCombination::Difference => Combination::Difference,
    }
}

/// `TYPE`: the type's name, `none` if absent.
pub(super) async fn type_of<B: Backend>(backend: &B, key: Bytes) -> Frame {
    match run(backend, Op::Type { key: vec(&key) }).await {
        Ok(Outcome::Value(Some(name))) => {
            Frame::simple(std::str::from_utf8(&name).unwrap_or("none"))
        }
        Ok(Outcome::Value(None)) => Frame::simple("none"),
        Ok(other) => unexpected(&other),
        Err(frame) => frame,
    }
}

/// Whether `key` exists, whatever its type (`EXISTS`).
pub(super) async fn exists<B: Backend>(backend: &B, key: &Bytes) -> Result<bool, Frame> {
    match run(backend, Op::Type { key: vec(key) }).await {
        Ok(Outcome::Value(found)) => Ok(found.is_some()),
        Ok(other) => Err(unexpected(&other)),
        Err(frame) => Err(frame),
    }
}
