//! The multi-key writes: `MSET`, `MSETNX`, `RENAME`, `RENAMENX`, `COPY`.
//!
//! Keys map to shards by Redis Cluster's hash slots (`shardkv::shard_key`);
//! one replicated operation (one log entry) changes one shard. So:
//!
//! - `MSETNX`, `RENAME`, `RENAMENX`, `COPY`: one operation
//!   (`Op::MultiSet`/`Rename`/`Copy`), atomic, when every key is in one
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
use bytes::Bytes;
use futures::future::join_all;
use shardkv::shard_key::key_to_shard;
use shardkv::{Op, Outcome};

use super::execute::{Backend, forward_error};

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
