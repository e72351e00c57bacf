//! The keyspace-wide commands, fanned out across shards: `KEYS`, `SCAN`,
//! `DBSIZE`, `FLUSHDB`/`FLUSHALL`, `RANDOMKEY` (RESP) and the REST paged
//! scan. Each is built from the whole-shard operations of `api::Op`
//! (`ScanShard`, `CountShard`, `FlushShard`, `RandomKey`), which the
//! forwarder routes to each shard's owning group like any other
//! operation, so every per-shard step is linearizable on its own.
//!
//! ```text
//!   SCAN cursor ─► (shard, position) ─► ScanShard{shard, position, count}
//!                       ▲                   │ keys, next position
//!                       └── next cursor ◄───┘ (shard done: next shard, position 0;
//!                                              last shard done: cursor 0)
//!   KEYS / DBSIZE / FLUSHALL ─► one task per shard, concurrently, summed
//! ```
//!
//! **Not atomic across shards.** A `KEYS` or a `DBSIZE` sees each shard at
//! its own moment, a `FLUSHALL` empties the shards one by one (a write to
//! a shard already flushed survives), as Redis Cluster's fan-out does.
//!
//! **The cursor** is one unsigned 64-bit number, as Redis clients expect:
//! `shard << 48 | position`, `position` a key's place in the shard's scan
//! order (`api::scan_position`). A key present in the same shard for the
//! whole scan is returned exactly once; keys written or moved meanwhile
//! may or may not be. A cursor naming a shard the service does not have
//! is refused.
//!
//! **Bounds.** A `SCAN` step visits at most `COUNT` keys per shard
//! (`COUNT` at most [`SCAN_COUNT_MAX`]) and at most [`SCAN_SHARDS_PER_CALL`]
//! shards; `KEYS` stops with [`KeyspaceError::TooManyKeys`] past
//! [`KEYS_LIMIT`] keys (use `SCAN`).

use std::future::Future;

use api::{SCAN_POSITION_BITS, SCAN_POSITION_END};
use futures::future::join_all;
use shardkv::{Op, Outcome};

use crate::forward::ForwardError;

/// The most keys `KEYS` answers; past it the command fails.
pub const KEYS_LIMIT: usize = 100_000;

/// `SCAN`'s `COUNT` when none is given (Redis's default).
pub const SCAN_COUNT_DEFAULT: u64 = 10;

/// The largest `COUNT` a `SCAN` step passes on (larger ones are capped).
pub const SCAN_COUNT_MAX: u64 = 10_000;

/// The most shards one `SCAN` call visits (it moves on to the next shard
/// while it has found fewer than `COUNT` keys).
pub const SCAN_SHARDS_PER_CALL: usize = 16;

/// How many keys each per-shard step of `KEYS` visits.
const KEYS_STEP_COUNT: u64 = 1000;

/// Why a keyspace command has no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyspaceError {
    /// A per-shard operation failed.
    #[error(transparent)]
    Forward(#[from] ForwardError),
    /// The cursor was not handed out by this service.
    #[error("invalid cursor")]
    InvalidCursor,
    /// `KEYS` would answer more than [`KEYS_LIMIT`] keys.
    #[error("KEYS would return more than {limit} keys; use SCAN")]
    TooManyKeys { limit: usize },
    /// A group answered an operation with an outcome of another kind.
    #[error("unexpected outcome {0}")]
    Unexpected(String),
}

/// The cursor of `position` in `shard`.
pub fn cursor_of(shard: usize, position: u64) -> u64 {
    ((shard as u64) << SCAN_POSITION_BITS) | position
}

/// The shard and position a cursor names, if the service has that shard.
pub fn split_cursor(cursor: u64, shard_count: usize) -> Result<(usize, u64), KeyspaceError> {
    let shard = usize::try_from(cursor >> SCAN_POSITION_BITS).unwrap_or(usize::MAX);
    if shard >= shard_count {
        return Err(KeyspaceError::InvalidCursor);
    }
    Ok((shard, cursor & (SCAN_POSITION_END - 1)))
}

/// One `SCAN` call's parameters.
#[derive(Clone, Debug, Default)]
pub struct ScanRequest {
    pub cursor: u64,
    /// Keys to visit (a hint, as in Redis); capped at [`SCAN_COUNT_MAX`].
    pub count: u64,
    /// A Redis glob the keys must match.
    pub pattern: Option<Vec<u8>>,
    /// A Redis type name the values must have.
    pub type_name: Option<Vec<u8>>,
}

/// One page of a scan: the keys and the cursor to continue from (0: the
/// scan is complete).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanPage {
    pub keys: Vec<Vec<u8>>,
    pub next_cursor: u64,
}

/// Runs operations in the owning groups (the node's forwarder, or a test
/// double), and knows how many shards the service has.
pub trait ShardRunner: Sync {
    fn run_op(&self, op: Op) -> impl Future<Output = Result<Outcome, ForwardError>> + Send;
    fn shard_count(&self) -> usize;
}

async fn scan_step<R: ShardRunner>(
    runner: &R,
    shard: usize,
    position: u64,
    count: u64,
    request: &ScanRequest,
) -> Result<(Vec<Vec<u8>>, u64), KeyspaceError> {
    let op = Op::ScanShard {
        shard: shard as u64,
        position,
        count,
        pattern: request.pattern.clone(),
        type_name: request.type_name.clone(),
    };
    match runner.run_op(op).await? {
        Outcome::Keys {
            keys,
            next_position,
        } => Ok((keys, next_position)),
        other => Err(KeyspaceError::Unexpected(format!("{other:?} for a scan"))),
    }
}

/// One `SCAN` call: from the cursor, through as many shards as it takes
/// to find `count` keys (at most [`SCAN_SHARDS_PER_CALL`]).
pub async fn scan<R: ShardRunner>(
    runner: &R,
    request: &ScanRequest,
) -> Result<ScanPage, KeyspaceError> {
    let shard_count = runner.shard_count();
    let (mut shard, mut position) = split_cursor(request.cursor, shard_count)?;
    let count = request.count.clamp(1, SCAN_COUNT_MAX);
    let mut keys = Vec::new();
    for _ in 0..SCAN_SHARDS_PER_CALL {
        let wanted = count - (keys.len() as u64).min(count - 1);
        let (found, next_position) = scan_step(runner, shard, position, wanted, request).await?;
        keys.extend(found);
        if next_position < SCAN_POSITION_END {
            return Ok(ScanPage {
                keys,
                next_cursor: cursor_of(shard, next_position),
            });
        }
        shard += 1;
        position = 0;
        if shard == shard_count {
            return Ok(ScanPage {
                keys,
                next_cursor: 0,
            });
        }
        if keys.len() as u64 >= count {
            break;
        }
    }
    Ok(ScanPage {
        keys,
        next_cursor: cursor_of(shard, 0),
    })
}

/// `KEYS pattern`: every shard scanned concurrently; fails past `limit`.
pub async fn keys<R: ShardRunner>(
    runner: &R,
    pattern: &[u8],
    limit: usize,
) -> Result<Vec<Vec<u8>>, KeyspaceError> {
    let request = ScanRequest {
        pattern: Some(pattern.to_vec()),
        ..ScanRequest::default()
    };
    let found = std::sync::atomic::AtomicUsize::new(0);
    let per_shard = (0..runner.shard_count()).map(|shard| {
        let request = &request;
        let found = &found;
        async move {
            let mut keys = Vec::new();
            let mut position = 0;
            // Each step moves the position forward, and positions end.
            while position < SCAN_POSITION_END {
                let (step_keys, next_position) =
                    scan_step(runner, shard, position, KEYS_STEP_COUNT, request).await?;
                let total = found.fetch_add(step_keys.len(), std::sync::atomic::Ordering::Relaxed)
                    + step_keys.len();
                if total > limit {
                    return Err(KeyspaceError::TooManyKeys { limit });
                }
                keys.extend(step_keys);
                position = next_position;
            }
            Ok(keys)
        }
    });
    let mut all = Vec::new();
    for shard_keys in join_all(per_shard).await {
        all.extend(shard_keys?);
    }
    Ok(all)
}

/// Runs `op_of(shard)` in every shard concurrently and sums the integers.
async fn sum_over_shards<R: ShardRunner>(
    runner: &R,
    op_of: impl Fn(u64) -> Op,
) -> Result<u64, KeyspaceError> {
    let answers =
        join_all((0..runner.shard_count() as u64).map(|shard| runner.run_op(op_of(shard))));
    let mut total = 0u64;
    for answer in answers.await {
        match answer? {
            Outcome::Integer(count) => total += u64::try_from(count).unwrap_or(0),
            other => return Err(KeyspaceError::Unexpected(format!("{other:?} for a count"))),
        }
    }
    Ok(total)
}

/// `DBSIZE`: the live keys of every shard.
pub async fn count<R: ShardRunner>(runner: &R) -> Result<u64, KeyspaceError> {
    sum_over_shards(runner, |shard| Op::CountShard { shard }).await
}

/// `FLUSHDB`/`FLUSHALL`: every shard emptied; how many keys went.
pub async fn flush<R: ShardRunner>(runner: &R) -> Result<u64, KeyspaceError> {
    sum_over_shards(runner, |shard| Op::FlushShard { shard }).await
}

/// `RANDOMKEY`: a shard drawn in proportion to its keys, then a key of it
/// (`None`: the keyspace is empty). `random` is the caller's randomness
/// (the runtime seam's, so a simulation replays).
pub async fn random_key<R: ShardRunner>(
    runner: &R,
    mut random: impl FnMut() -> u64,
) -> Result<Option<Vec<u8>>, KeyspaceError> {
    let counts = join_all(
        (0..runner.shard_count() as u64).map(|shard| runner.run_op(Op::CountShard { shard })),
    )
    .await;
    let mut counts_by_shard = Vec::with_capacity(counts.len());
    for answer in counts {
        match answer? {
            Outcome::Integer(count) => counts_by_shard.push(u64::try_from(count).unwrap_or(0)),
            other => return Err(KeyspaceError::Unexpected(format!("{other:?} for a count"))),
        }
    }
    let total: u64 = counts_by_shard.iter().sum();
    if total == 0 {
        return Ok(None);
    }
    let mut pick = random() % total;
    let shard = counts_by_shard
        .iter()
        .position(|&count| {
            if pick < count {
                return true;
            }
            pick -= count;
            false
        })
        .expect("pick < total");
    let op = Op::RandomKey {
        shard: shard as u64,
        seed: random(),
    };
    match runner.run_op(op).await? {
        Outcome::Value(key) => Ok(key),
        other => Err(KeyspaceError::Unexpected(format!(
            "{other:?} for a random key"
        ))),
    }
}

impl ShardRunner for crate::forward::Forwarder {
    fn run_op(&self, op: Op) -> impl Future<Output = Result<Outcome, ForwardError>> + Send {
        self.run(op, None)
    }

    fn shard_count(&self) -> usize {
        self.routing().shard_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_unknown_shards() {
        let cursor = cursor_of(7, 12345);
        assert_eq!(split_cursor(cursor, 10), Ok((7, 12345)));
        assert_eq!(split_cursor(0, 10), Ok((0, 0)));
        assert_eq!(
            split_cursor(cursor_of(10, 0), 10),
            Err(KeyspaceError::InvalidCursor)
        );
        assert_eq!(
            split_cursor(u64::MAX, 10),
            Err(KeyspaceError::InvalidCursor)
        );
    }
}
