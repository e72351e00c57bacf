//! The multi-key commands: `MSET`, `MSETNX`, `RENAME`, `RENAMENX`, `COPY`,
//! and the two-key read `LCS`.
//!
//! Keys map to shards by Redis Cluster's hash slots (`shardkv::shard_key`);
//! one replicated operation (one log entry) changes one shard. So:
//!
//! - `MSETNX`, `RENAME`, `RENAMENX`, `COPY`, `LCS`: one operation
//!   (`Op::MultiSet`/`Rename`/`Copy`/`Lcs`), atomic, when every key is in one
//!   shard; otherwise Redis Cluster's `-CROSSSLOT` error and nothing
//!   changes. Keys with the same `{hash tag}` are always in one shard.
//!   This is looser than Redis Cluster, which wants one *slot*: keys of
//!   different slots that one shard owns are accepted (each shard owns a
//!   contiguous slot range, so which pairs these are depends on the shard
//!   count; a client that follows Redis's one-slot rule is never refused).
//! - `MSET`: split by shard, one `Op::MultiSet` per shard, run
//!   concurrently. Each shard's part is atomic; the whole is atomic only
//!   when all keys share a shard (Redis Cluster refuses such an `MSET`
//!   outright; a plain Redis client expects it to work, so proxy mode
//!   splits it).
//! - `MGET`, `DEL`, `UNLINK`, `EXISTS` (in `execute.rs`): one operation
//!   per key, concurrently, never atomic across keys.

use std::collections::BTreeMap;

use ::resp::Frame;
use ::resp::command::LcsOptions;
use api::lcs::LcsAnswer;
use bytes::Bytes;
use futures::future::join_all;
use shardkv::shard_key::key_to_shard;
use shardkv::{Op, Outcome};

use super::execute::{Backend, forward_error};
use crate::forward::ForwardError;

/// Redis Cluster's error for keys of several slots.
pub(crate) const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Redis's error for a `COPY` onto itself.
const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// The shard every key is in, or `None` if they span shards.
pub(super) fn one_shard<'a, B: Backend>(
    backend: &B,
    keys: impl IntoIterator<Item = &'a [u8]>,
) -> Option<usize> {
    let shard_count = backend.shard_count().max(1);
    let mut keys = keys.into_iter();
    let first = key_to_shard(keys.next().unwrap_or_default(), shard_count);
    keys.all(|key| key_to_shard(key, shard_count) == first)
        .then_some(first)
}

/// Key/value pairs as an operation carries them.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn pairs_of(pairs: &[(Bytes, Bytes)]) -> Pairs {
    pairs
        .iter()
        .map(|(key, value)| (key.to_vec(), value.to_vec()))
        .collect()
}

async fn applied<B: Backend>(backend: &B, op: Op) -> Result<bool, Frame> {
    match backend.run(op).await {
        Ok(Outcome::Applied(applied)) => Ok(applied),
        Ok(other) => Err(Frame::error(&format!("ERR unexpected outcome {other:?}"))),
        Err(error) => Err(forward_error(&error)),
    }
}

/// `MSET`: one `MultiSet` per shard the keys fall in (see the module docs).
pub(super) async fn mset<B: Backend>(backend: &B, pairs: &[(Bytes, Bytes)]) -> Result<(), Frame> {
    let shard_count = backend.shard_count().max(1);
    let mut by_shard: BTreeMap<usize, Pairs> = BTreeMap::new();
    for (key, value) in pairs {
        by_shard
            .entry(key_to_shard(key, shard_count))
            .or_default()
            .push((key.to_vec(), value.to_vec()));
    }
    let writes = by_shard.into_values().map(|pairs| {
        applied(
            backend,
            Op::MultiSet {
                pairs,
                only_if_none_exist: false,
            },
        )
    });
    for result in join_all(writes).await {
        result?;
    }
    Ok(())
}

/// `MSETNX`: 1 if every key was absent and all were written, else 0.
pub(super) async fn msetnx<B: Backend>(backend: &B, pairs: &[(Bytes, Bytes)]) -> Frame {
    if one_shard(backend, pairs.iter().map(|(key, _)| key.as_ref())).is_none() {
        return Frame::error(CROSSSLOT);
    }
    let op = Op::MultiSet {
        pairs: pairs_of(pairs),
        only_if_none_exist: true,
    };
    match applied(backend, op).await {
        Ok(applied) => Frame::Integer(i64::from(applied)),
        Err(reply) => reply,
    }
}

/// `RENAME` (`OK`) and `RENAMENX` (1 or 0).
pub(super) async fn rename<B: Backend>(
    backend: &B,
    source: &Bytes,
    destination: &Bytes,
    only_if_new: bool,
) -> Frame {
    if one_shard(backend, [source.as_ref(), destination.as_ref()]).is_none() {
        return Frame::error(CROSSSLOT);
    }
    let op = Op::Rename {
        source: source.to_vec(),
        destination: destination.to_vec(),
        only_if_new,
    };
    match applied(backend, op).await {
        Ok(applied) if only_if_new => Frame::Integer(i64::from(applied)),
        Ok(_) => Frame::ok(),
        Err(reply) => reply,
    }
}

/// `COPY source destination [REPLACE]`: 1 if copied, else 0.
pub(super) async fn copy<B: Backend>(
    backend: &B,
    source: &Bytes,
    destination: &Bytes,
    replace: bool,
) -> Frame {
    if source == destination {
        return Frame::error(SAME_OBJECT);
    }
    if one_shard(backend, [source.as_ref(), destination.as_ref()]).is_none() {
        return Frame::error(CROSSSLOT);
    }
    let op = Op::Copy {
        source: source.to_vec(),
        destination: destination.to_vec(),
        replace,
    };
    match applied(backend, op).await {
        Ok(applied) => Frame::Integer(i64::from(applied)),
        Err(reply) => reply,
    }
}

/// `LCS a b [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`, Redis 7.0's
/// replies: the subsequence, its length (`LEN`), or with `IDX` a map of
/// `matches` (runs from the end backwards, each `[[a_start, a_end],
/// [b_start, b_end]]` plus its length with `WITHMATCHLEN`, runs shorter
/// than `MINMATCHLEN` left out) and `len`. One read of both keys.
pub(super) async fn lcs<B: Backend>(
    backend: &B,
    first: &Bytes,
    second: &Bytes,
    options: LcsOptions,
) -> Frame {
    if one_shard(backend, [first.as_ref(), second.as_ref()]).is_none() {
        return Frame::error(CROSSSLOT);
    }
    let answer = if options.indexes {
        LcsAnswer::Matches
    } else if options.length_only {
        LcsAnswer::Length
    } else {
        LcsAnswer::Subsequence
    };
    let op = Op::Lcs {
        first: first.to_vec(),
        second: second.to_vec(),
        answer,
    };
    match backend.run(op).await {
        Ok(Outcome::Value(subsequence)) => Frame::bulk(subsequence.unwrap_or_default()),
        Ok(Outcome::Integer(length)) => Frame::Integer(length),
        Ok(Outcome::LcsMatches { matches, length }) => {
            let min_length = u64::try_from(options.min_match_length).unwrap_or(0);
            let pair = |(start, end): (u64, u64)| Frame::Array(vec![integer(start), integer(end)]);
            let runs = matches
                .iter()
                .filter(|run| run.length() >= min_length)
                .map(|run| {
                    let mut items = vec![pair(run.first), pair(run.second)];
                    if options.with_match_length {
                        items.push(integer(run.length()));
                    }
                    Frame::Array(items)
                })
                .collect();
            Frame::Map(vec![
                (Frame::bulk("matches"), Frame::Array(runs)),
                (Frame::bulk("len"), integer(length)),
            ])
        }
        Ok(other) => Frame::error(&format!("ERR unexpected outcome {other:?}")),
        Err(ForwardError::Refused(api::Error::WrongType)) => {
            Frame::error("ERR The specified keys must contain string values")
        }
        Err(ForwardError::OverLimit(api::Error::TooLarge {
            size_bytes,
            limit_bytes,
            ..
        })) => Frame::error(&format!(
            "ERR Insufficient memory, transient memory for LCS exceeds the limit ({size_bytes} bytes for (len(a)+1)*(len(b)+1) cells of 4 bytes; at most {limit_bytes})"
        )),
        Err(error) => forward_error(&error),
    }
}

fn integer(value: u64) -> Frame {
    Frame::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}
