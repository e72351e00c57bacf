//! List commands to replicated operations (`api::Op::List`): one
//! operation per command, so each is atomic. Writes go through the log;
//! `LLEN`, `LINDEX`, `LRANGE` and `LPOS` take the read path.
//!
//! `LMOVE`/`RPOPLPUSH` move between two keys in one operation, so both
//! must live in the same shard: a pair in different shards is refused
//! here with Redis Cluster's `CROSSSLOT` error before anything runs (put
//! both keys under one `{hash tag}` to keep them together).

use ::resp::Frame;
use ::resp::command::{ListCommand, ListEnd};
use api::{End, ListOp};
use bytes::Bytes;
use shardkv::{Op, Outcome};

use super::execute::{Backend, forward_error};
use crate::forward::ForwardError;

/// Redis Cluster's error for keys in different slots (here: shards).
pub(super) const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

fn end(end: ListEnd) -> End {
    match end {
        ListEnd::Left => End::Left,
        ListEnd::Right => End::Right,
    }
}

fn error_frame(error: &ForwardError) -> Frame {
    match error {
        ForwardError::Refused(api::Error::NoSuchKey) => Frame::error("ERR no such key"),
        ForwardError::Refused(api::Error::IndexOutOfRange) => {
            Frame::error("ERR index out of range")
        }
        ForwardError::Refused(api::Error::CrossShard) => Frame::error(CROSSSLOT),
        other => forward_error(other),
    }
}

fn unexpected(outcome: &Outcome) -> Frame {
    Frame::error(&format!("ERR unexpected outcome {outcome:?}"))
}

fn values_frame(values: Vec<Option<Vec<u8>>>) -> Frame {
    Frame::Array(
        values
            .into_iter()
            .map(|value| value.map_or(Frame::Null, Frame::bulk))
            .collect(),
    )
}

/// Runs a list command.
pub(super) async fn list<B: Backend>(backend: &B, key: Bytes, command: ListCommand) -> Frame {
    // How the answer is shaped for the commands whose shape depends on
    // their arguments.
    let mut pop_count = false;
    let mut pos_single = false;
    let op = match command {
        ListCommand::Push {
            end: at,
            elements,
            only_existing,
        } => ListOp::Push {
            end: end(at),
            elements: elements.iter().map(|e| e.to_vec()).collect(),
            only_existing,
        },
        ListCommand::Pop { end: at, count } => {
            pop_count = count.is_some();
            ListOp::Pop {
                end: end(at),
                count,
            }
        }
        ListCommand::Len => ListOp::Len,
        ListCommand::Index { index } => ListOp::Index { index },
        ListCommand::Range { start, stop } => ListOp::Range { start, stop },
        ListCommand::Set { index, element } => ListOp::Set {
            index,
            element: element.to_vec(),
        },
        ListCommand::Rem { count, element } => ListOp::Rem {
            count,
            element: element.to_vec(),
        },
        ListCommand::Trim { start, stop } => ListOp::Trim { start, stop },
        ListCommand::Insert {
            before,
            pivot,
            element,
        } => ListOp::Insert {
            before,
            pivot: pivot.to_vec(),
            element: element.to_vec(),
        },
        ListCommand::Pos {
            element,
            rank,
            count,
            max_len,
        } => {
            pos_single = count.is_none();
            ListOp::Pos {
                element: element.to_vec(),
                rank,
                count: count.unwrap_or(1),
                max_len,
            }
        }
        ListCommand::Move {
            destination,
            from,
            to,
        } => {
            let shards = backend.shard_count();
            if shardkv::key_to_shard(&key, shards) != shardkv::key_to_shard(&destination, shards) {
                return Frame::error(CROSSSLOT);
            }
            ListOp::Move {
                destination: destination.to_vec(),
                from: end(from),
                to: end(to),
            }
        }
    };
    let outcome = match backend
        .run(Op::List {
            key: key.to_vec(),
            op,
        })
        .await
    {
        Ok(outcome) => outcome,
        Err(error) => return error_frame(&error),
    };
    match outcome {
        Outcome::Integer(number) => Frame::Integer(number),
        Outcome::Done => Frame::ok(),
        // A pop with a count of an absent key: Redis's null array.
        Outcome::Value(None) if pop_count => Frame::NullArray,
        Outcome::Value(value) => value.map_or(Frame::Null, Frame::bulk),
        Outcome::Values(values) => values_frame(values),
        Outcome::Integers(indexes) if pos_single => indexes
            .first()
            .map_or(Frame::Null, |&index| Frame::Integer(index)),
        Outcome::Integers(indexes) => {
            Frame::Array(indexes.into_iter().map(Frame::Integer).collect())
        }
        other => unexpected(&other),
    }
}
