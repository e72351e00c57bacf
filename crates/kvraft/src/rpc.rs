//! What clerks send and servers answer: one request type for every operation.

use serde::{Deserialize, Serialize};

/// One operation on the store. Keys and values are bytes.
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
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Append { key, .. }
            | Op::Delete { key }
            | Op::CompareAndSet { key, .. } => key,
        }
    }

    /// Reads change nothing, so they are never recorded for exactly-once.
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
}

/// A clerk's request: `(client_id, seq)` identifies it for exactly-once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRequest {
    pub client_id: u64,
    /// Increases by one per write of this client; a retry keeps its seq.
    pub seq: u64,
    pub op: Op,
}

impl labrpc::Rpc for KvRequest {
    const NAME: &'static str = "kvraft.Command";
    type Reply = Result<Outcome, ServerError>;
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

/// Why a server did not (or could not tell whether it did) apply a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ServerError {
    /// This server does not lead; `leader_hint` is the one it believes does.
    #[error("not the leader (hint: {leader_hint:?})")]
    WrongLeader { leader_hint: Option<u64> },
    /// The request was proposed but not seen applied in time (leadership
    /// may have moved). It may still apply: retry with the same seq.
    #[error("the request was not applied in time")]
    Timeout,
    /// The key or value is over the size limit; nothing changed.
    #[error("{what} of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    TooLarge {
        what: String,
        size_bytes: u64,
        limit_bytes: u64,
    },
    /// A TTL of 0 ms; nothing changed.
    #[error("a TTL of 0 ms is refused")]
    ZeroTtl,
    /// A seq older than this client's latest write: its answer is gone.
    #[error("request seq {seq} is older than the client's latest ({latest})")]
    Stale { seq: u64, latest: u64 },
}
