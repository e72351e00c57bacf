//! The one error type of an operation, from the store to the user.

use serde::{Deserialize, Serialize};

/// Why an operation has no [`crate::Outcome`].
///
/// Servers answer with it on the wire, clients act on it, users see it:
/// the variants marked *internal* are consumed by the clients (they
/// re-route or retry) and reach a user only from a client that does not
/// retry; the others are final answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Error {
    /// The key, the value (or an append's result), or the whole entry is
    /// over a limit; nothing changed.
    #[error("{what} of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    TooLarge {
        what: String,
        size_bytes: u64,
        limit_bytes: u64,
    },
    /// A TTL of 0 ms would expire the entry before anyone could read it;
    /// nothing changed.
    #[error("a TTL of 0 ms is refused")]
    ZeroTtl,
    /// An increment of a key whose value is not a decimal 64-bit signed
    /// integer (Redis's "value is not an integer or out of range");
    /// nothing changed.
    #[error("the value is not an integer or out of range")]
    NotAnInteger,
    /// An increment whose result leaves the 64-bit signed range; nothing
    /// changed.
    #[error("increment or decrement would overflow")]
    IncrementOverflow,
    /// A float increment of a key whose value is not a number; nothing
    /// changed.
    #[error("the value is not a valid float")]
    NotAFloat,
    /// A float increment whose result is NaN or infinite; nothing changed.
    #[error("increment would produce NaN or Infinity")]
    NotFinite,
    /// The key holds a value of another type than the operation works on
    /// (Redis's `WRONGTYPE`); nothing changed.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// `HINCRBY` of a field that is not a decimal 64-bit integer; nothing
    /// changed.
    #[error("hash value is not an integer")]
    HashNotInteger,
    /// `HINCRBYFLOAT` of a field that is not a number; nothing changed.
    #[error("hash value is not a float")]
    HashNotFloat,
    /// A collection would hold (or a count asks for) more elements than
    /// the limit; nothing changed.
    #[error("{count} elements exceed the limit of {limit} per collection")]
    TooManyElements { count: u64, limit: u64 },
    /// A `RENAME` of a key that is absent (Redis's "no such key"); nothing
    /// changed.
    #[error("no such key")]
    NoSuchKey,
    /// A multi-key operation whose keys are not all in one shard (Redis's
    /// `CROSSSLOT`): one log entry changes one shard. Nothing changed.
    #[error("the keys of a multi-key operation are not all in one shard (CROSSSLOT)")]
    CrossShard,
    /// `LSET` past either end of the list (Redis's `ERR index out of
    /// range`); nothing changed.
    #[error("index out of range")]
    IndexOutOfRange,
    /// The client gave up: no server gave a final answer before its
    /// deadline. A write may or may not have taken effect.
    #[error("no answer within {deadline_ms} ms after {attempts} attempts (the outcome is unknown)")]
    Timeout { deadline_ms: u64, attempts: u64 },
    /// *Internal.* The server proposed the operation but did not see it
    /// applied within its wait (leadership may have moved). It may still
    /// apply: retry with the same exactly-once identity.
    #[error("the operation was not seen applied in time (it may still apply)")]
    NotApplied,
    /// *Internal.* The server has too much pending work; nothing was
    /// proposed. Clients back off and retry the same server (it still
    /// leads) rather than look for another leader.
    #[error("the server is busy ({pending} operations pending); nothing was proposed")]
    Busy { pending: u64 },
    /// *Internal.* This server does not lead its group; `leader_hint` is
    /// the replica id it believes does.
    #[error("not the leader (hint: {leader_hint:?})")]
    WrongLeader { leader_hint: Option<u64> },
    /// *Internal.* This group does not serve `shard` in its configuration
    /// `config_num` (not the owner, or the shard's data has not arrived
    /// yet). Nothing changed; the client re-reads the configuration.
    #[error("shard {shard} is not served here (group configuration {config_num})")]
    WrongGroup { shard: u64, config_num: u64 },
    /// *Internal.* A seq older than the client's latest write: its answer
    /// is gone. Two clients share a client id (a client bug).
    #[error("request seq {seq} is older than the client's latest ({latest})")]
    Stale { seq: u64, latest: u64 },
    /// A server answered an operation with an outcome of another kind (a
    /// server or protocol bug); what the operation did is unknown.
    #[error("{op} was answered with {outcome}")]
    UnexpectedOutcome { op: String, outcome: String },
}

/// What an operation answers.
pub type Reply = Result<crate::Outcome, Error>;
