//! The operations a user runs on a key, and what they answer.

use serde::{Deserialize, Serialize};

/// One operation on the store. Keys and values are bytes.
///
/// Adding an operation (increment, expire, multi-get, ...) means a variant
/// here, its meaning in [`crate::execute`], its size in
/// [`Op::value_size_bytes`], and (if users call it by name) a provided
/// method on [`crate::KvClient`]; every server and client carries it
/// unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Read a key (absent or expired: `None`).
    Get { key: Vec<u8> },
    /// Set a key; with `ttl_ms` the entry expires that many logical
    /// milliseconds after the entry's log time.
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    /// Concatenate onto a key's value (an absent key starts empty); keeps
    /// the key's deadline.
    Append { key: Vec<u8>, value: Vec<u8> },
    /// Remove a key.
    Delete { key: Vec<u8> },
    /// Set the key to `value` if its current value is `expected` (`None`:
    /// the key must be absent).
    CompareAndSet {
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
}

impl Op {
    /// The key the operation acts on (what routing shards by).
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Append { key, .. }
            | Op::Delete { key }
            | Op::CompareAndSet { key, .. } => key,
        }
    }

    /// Reads change nothing, so they are never recorded for exactly-once
    /// and may be served without a log entry.
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Get { .. })
    }

    /// The largest value this operation carries (expected or new), in bytes.
    pub fn value_size_bytes(&self) -> usize {
        match self {
            Op::Get { .. } | Op::Delete { .. } => 0,
            Op::Put { value, .. } | Op::Append { value, .. } => value.len(),
            Op::CompareAndSet {
                expected, value, ..
            } => value.len().max(expected.as_ref().map_or(0, Vec::len)),
        }
    }

    /// The operation's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get { .. } => "Get",
            Op::Put { .. } => "Put",
            Op::Append { .. } => "Append",
            Op::Delete { .. } => "Delete",
            Op::CompareAndSet { .. } => "CompareAndSet",
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The answer to a Get.
    Value(Option<Vec<u8>>),
    /// A Put or Append took effect.
    Done,
    /// A Delete took effect; whether the key was there.
    Deleted(bool),
    /// A compare-and-set ran; whether it swapped.
    Swapped(bool),
}
