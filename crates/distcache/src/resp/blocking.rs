//! `LMPOP`/`ZMPOP`, the blocking pops and moves, and `OBJECT`.
//!
//! A multi-key pop is one replicated operation on one shard
//! (`api::ListOp::MultiPop`, `api::ZSetOp::MultiPop`), so its keys must
//! share a shard (`CROSSSLOT` otherwise, before anything runs).
//!
//! **Blocking.** The connection is on any node; the keys' group leader may
//! be elsewhere. A blocking command loops:
//!
//! ```text
//!   pop (a normal replicated write, one session and seq, resent after a
//!        timeout until answered: exactly once)
//!     got something ─► answer
//!     nothing ─► wait_for_keys(keys, min(left, one poll))   long poll on the
//!                   Changed / Unknown ─► pop again           leader (WaitKeys)
//!                   TimedOut ─► wait again (deadline: null answer)
//!                   Full ─► error (the leader's bound on waiters)
//! ```
//!
//! The element moves only in the pop's log entry, so it is never lost to a
//! wait that is cancelled or a leader that steps down (the wait carries no
//! data), and never answered twice (a resent pop is answered from the
//! exactly-once record). While it blocks, the connection answers nothing
//! else (its later commands wait, as in Redis); the connection task watches
//! the socket meanwhile, and a client that disconnects drops this future,
//! which unregisters the wait on the leader's next look.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::resp::Frame;
use ::resp::command::{BlockTimeout, ListEnd, MultiPop, ObjectQuery, PopFrom, PopReply};
use api::{End, ListOp, ZSetOp};
use bytes::Bytes;
use shardkv::{Op, Outcome};

use super::execute::{Backend, forward_error};
use super::lists::CROSSSLOT;
use crate::forward::{ForwardError, KeyWait};

/// The longest one wait asks for before the loop looks again (the
/// forwarder cuts it further to fit one RPC).
const WAIT_STEP: Duration = Duration::from_secs(5);
/// Pause after a wait that learned nothing (no leader answered), before
/// the pop is tried again.
const UNKNOWN_BACKOFF: Duration = Duration::from_millis(50);

fn end(end: ListEnd) -> End {
    match end {
        ListEnd::Left => End::Left,
        ListEnd::Right => End::Right,
    }
}

fn error_frame(error: &ForwardError) -> Frame {
    match error {
        ForwardError::Refused(api::Error::CrossShard) => Frame::error(CROSSSLOT),
        other => forward_error(other),
    }
}

/// Whether every key is in the first key's shard.
fn one_shard<B: Backend>(backend: &B, keys: &[&[u8]]) -> bool {
    let shards = backend.shard_count();
    let Some(first) = keys.first() else {
        return true;
    };
    let shard = shardkv::key_to_shard(first, shards);
    keys.iter()
        .all(|key| shardkv::key_to_shard(key, shards) == shard)
}

/// When a blocking command gives up (`None`: never).
fn deadline_of(timeout: BlockTimeout) -> Option<tokio::time::Instant> {
    if timeout.ms == 0 {
        return None;
    }
    crate::clock::now().checked_add(Duration::from_millis(timeout.ms))
}

/// Runs `op` until it answers something other than nil, blocking between
/// tries while `deadline` allows. `Ok(None)`: timed out.
async fn pop_blocking<B: Backend>(
    backend: &B,
    op: Op,
    watched: Vec<Vec<u8>>,
    deadline: Option<tokio::time::Instant>,
    blocked: &AtomicU64,
) -> Result<Option<Outcome>, Frame> {
    loop {
        match backend.run_until_answered(op.clone()).await {
            Ok(Outcome::Value(None)) => {}
            Ok(outcome) => return Ok(Some(outcome)),
            Err(error) => return Err(error_frame(&error)),
        }
        // Nothing yet: wait for a write to one of the keys (counted in
        // INFO's blocked_clients meanwhile).
        let _blocked = Blocked::count(blocked);
        loop {
            let step = match deadline {
                None => WAIT_STEP,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(crate::clock::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left.min(WAIT_STEP)
                }
            };
            match backend.wait_for_keys(watched.clone(), step).await {
                KeyWait::Changed => break,
                KeyWait::TimedOut => {}
                KeyWait::Unknown => {
                    tokio::time::sleep(UNKNOWN_BACKOFF).await;
                    break;
                }
                KeyWait::Full => {
                    return Err(Frame::error(
                        "ERR too many clients blocked on these keys (the waiter limit of the \
                         keys' group leader is reached); try again later",
                    ));
                }
            }
        }
    }
}

/// One blocked client in INFO's `blocked_clients`, for as long as it
/// lives (dropped when the wait ends or the command is cancelled).
struct Blocked<'a>(&'a AtomicU64);

impl<'a> Blocked<'a> {
    fn count(counter: &'a AtomicU64) -> Blocked<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Blocked(counter)
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `LMPOP`, `ZMPOP`, `BLPOP`, `BRPOP`, `BLMPOP`, `BZPOPMIN`, `BZPOPMAX`,
/// `BZMPOP`.
/// Scores are doubles (RESP2 writes them as bulk strings).
pub(super) async fn multi_pop<B: Backend>(
    backend: &B,
    command: MultiPop,
    blocked: &AtomicU64,
) -> Frame {
    let MultiPop {
        keys,
        from,
        count,
        reply,
        timeout,
    } = command;
    let key_slices: Vec<&[u8]> = keys.iter().map(Bytes::as_ref).collect();
    if !one_shard(backend, &key_slices) {
        return Frame::error(CROSSSLOT);
    }
    let Some((first, others)) = keys.split_first() else {
        return Frame::error("ERR wrong number of arguments");
    };
    let others: Vec<Vec<u8>> = others.iter().map(|key| key.to_vec()).collect();
    let op = match from {
        PopFrom::List(at) => Op::List {
            key: first.to_vec(),
            op: ListOp::MultiPop {
                others,
                end: end(at),
                count,
            },
        },
        PopFrom::ZSet { highest } => Op::ZSet {
            key: first.to_vec(),
            op: ZSetOp::MultiPop {
                others,
                highest,
                count,
            },
        },
    };
    let outcome = match timeout {
        None => match backend.run(op).await {
            Ok(outcome) => Some(outcome),
            Err(error) => return error_frame(&error),
        },
        Some(timeout) => {
            let watched = keys.iter().map(|key| key.to_vec()).collect();
            match pop_blocking(backend, op, watched, deadline_of(timeout), blocked).await {
                Ok(outcome) => outcome,
                Err(reply) => return reply,
            }
        }
    };
    match (outcome, reply) {
        // Nothing anywhere (or the wait timed out): Redis's null array.
        (None | Some(Outcome::Value(None)), _) => Frame::NullArray,
        (Some(Outcome::KeyValues { key, values }), PopReply::Nested) => Frame::Array(vec![
            Frame::bulk(key),
            Frame::Array(values.into_iter().map(Frame::bulk).collect()),
        ]),
        (Some(Outcome::KeyValues { key, values }), PopReply::Flat) => {
            let mut frames = vec![Frame::bulk(key)];
            frames.extend(values.into_iter().take(1).map(Frame::bulk));
            Frame::Array(frames)
        }
        (Some(Outcome::KeyScored { key, members }), PopReply::Nested) => Frame::Array(vec![
            Frame::bulk(key),
            Frame::Array(
                members
                    .into_iter()
                    .map(|(member, score)| {
                        Frame::Array(vec![Frame::bulk(member), Frame::Double(score.0)])
                    })
                    .collect(),
            ),
        ]),
        (Some(Outcome::KeyScored { key, members }), PopReply::Flat) => {
            let mut frames = vec![Frame::bulk(key)];
            if let Some((member, score)) = members.into_iter().next() {
                frames.push(Frame::bulk(member));
                frames.push(Frame::Double(score.0));
            }
            Frame::Array(frames)
        }
        (Some(other), _) => Frame::error(&format!("ERR unexpected outcome {other:?}")),
    }
}

/// `BLMOVE`, `BRPOPLPUSH`: `LMOVE` that waits for the source.
pub(super) async fn blocking_move<B: Backend>(
    backend: &B,
    source: Bytes,
    destination: Bytes,
    from: ListEnd,
    to: ListEnd,
    timeout: BlockTimeout,
    blocked: &AtomicU64,
) -> Frame {
    if !one_shard(backend, &[source.as_ref(), destination.as_ref()]) {
        return Frame::error(CROSSSLOT);
    }
    let op = Op::List {
        key: source.to_vec(),
        op: ListOp::Move {
            destination: destination.to_vec(),
            from: end(from),
            to: end(to),
        },
    };
    let watched = vec![source.to_vec()];
    match pop_blocking(backend, op, watched, deadline_of(timeout), blocked).await {
        Ok(Some(Outcome::Value(Some(element)))) => Frame::bulk(element),
        // Timed out: Redis answers a blocked client's timeout with the
        // null array, whatever the command.
        Ok(None | Some(Outcome::Value(None))) => Frame::NullArray,
        Ok(Some(other)) => Frame::error(&format!("ERR unexpected outcome {other:?}")),
        Err(reply) => reply,
    }
}

/// `OBJECT ENCODING key` (`api::Op::Encoding`), `OBJECT REFCOUNT key`,
/// `MEMORY USAGE key` (`api::Op::MemoryUsage`).
pub(super) async fn object<B: Backend>(backend: &B, key: Bytes, query: ObjectQuery) -> Frame {
    let op = match query {
        ObjectQuery::Encoding | ObjectQuery::RefCount => Op::Encoding { key: key.to_vec() },
        ObjectQuery::MemoryUsage => Op::MemoryUsage { key: key.to_vec() },
    };
    match (backend.run(op).await, query) {
        (Ok(Outcome::Value(None)), _) => Frame::Null,
        (Ok(Outcome::Value(Some(name))), ObjectQuery::Encoding) => Frame::bulk(name),
        // Every value is held once, by its key: nothing is shared (Redis
        // shares small integers, which answer 2147483647 there).
        (Ok(Outcome::Value(Some(_))), ObjectQuery::RefCount) => Frame::Integer(1),
        (Ok(Outcome::Integer(bytes)), ObjectQuery::MemoryUsage) => Frame::Integer(bytes),
        (Ok(other), _) => Frame::error(&format!("ERR unexpected outcome {other:?}")),
        (Err(error), _) => error_frame(&error),
    }
}
