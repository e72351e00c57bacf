//! The wire types: what clerks send, what groups send each other, and the
//! typed errors they answer.
//!
//! Client operations reuse kvraft's [`Op`] and [`Outcome`]; only the
//! errors differ (a sharded group can also answer [`ShardKvError::WrongGroup`]).

use serde::{Deserialize, Serialize};
use shardctrler::Gid;

pub use kvraft::session::SessionEntry;
pub use kvraft::{Op, Outcome};

use crate::shard_key::ShardId;

/// A clerk's request to the group it believes serves the key's shard.
/// `(client_id, seq)` identifies it for exactly-once, across groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardKvRequest {
    pub client_id: u64,
    /// Increases by one per operation of this client; a retry keeps it.
    pub seq: u64,
    /// The configuration the clerk routed by (for diagnostics only; the
    /// group decides by its own configuration).
    pub config_num: u64,
    pub op: Op,
}

impl labrpc::Rpc for ShardKvRequest {
    const NAME: &'static str = "shardkv.Command";
    type Reply = Result<Outcome, ShardKvError>;
}

/// Why a group did not (or cannot tell whether it did) apply a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ShardKvError {
    /// This group does not serve `shard` in its configuration `config_num`
    /// (not the owner, or the shard's data has not arrived yet). Nothing
    /// changed; the clerk re-reads the configuration and retries.
    #[error("shard {shard} is not served here (group configuration {config_num})")]
    WrongGroup { shard: ShardId, config_num: u64 },
    /// This server does not lead its group.
    #[error("not the leader (hint: {leader_hint:?})")]
    WrongLeader { leader_hint: Option<u64> },
    /// Proposed but not seen applied in time; it may still apply.
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
    /// A seq older than this client's latest write on the shard.
    #[error("request seq {seq} is older than the client's latest ({latest})")]
    Stale { seq: u64, latest: u64 },
}

impl From<kvraft::ServerError> for ShardKvError {
    fn from(error: kvraft::ServerError) -> ShardKvError {
        match error {
            kvraft::ServerError::WrongLeader { leader_hint } => {
                ShardKvError::WrongLeader { leader_hint }
            }
            kvraft::ServerError::Timeout => ShardKvError::Timeout,
            kvraft::ServerError::TooLarge {
                what,
                size_bytes,
                limit_bytes,
            } => ShardKvError::TooLarge {
                what,
                size_bytes,
                limit_bytes,
            },
            kvraft::ServerError::ZeroTtl => ShardKvError::ZeroTtl,
            kvraft::ServerError::Stale { seq, latest } => ShardKvError::Stale { seq, latest },
        }
    }
}

/// A shard as it moves between groups: the store's snapshot, the shard's
/// logical time (TTL deadlines inside the store are in it), and its
/// exactly-once records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardTransfer {
    pub shard: ShardId,
    /// [`cache::Store::snapshot`] bytes.
    pub store: Vec<u8>,
    pub shard_now_ms: u64,
    /// The shard's exactly-once entries, by client id.
    pub sessions: Vec<(u64, SessionEntry<Result<Outcome, ShardKvError>>)>,
}

/// The new owner asks the previous owner for shards it gave up in
/// configuration `config_num`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullShards {
    pub config_num: u64,
    pub shards: Vec<ShardId>,
    /// The asking group (diagnostics).
    pub from_gid: Gid,
}

impl labrpc::Rpc for PullShards {
    const NAME: &'static str = "shardkv.PullShards";
    type Reply = Result<Vec<ShardTransfer>, MigrationError>;
}

/// The new owner tells the previous owner it holds the shards of
/// configuration `config_num`: the previous owner may delete its copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteShards {
    pub config_num: u64,
    pub shards: Vec<ShardId>,
    pub from_gid: Gid,
}

impl labrpc::Rpc for DeleteShards {
    const NAME: &'static str = "shardkv.DeleteShards";
    type Reply = Result<(), MigrationError>;
}

/// Why a pull or delete did not succeed (the caller retries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MigrationError {
    /// The donor has not applied configuration `wanted` yet.
    #[error("the donor is at configuration {donor_config_num}, not yet {wanted}")]
    NotReady { donor_config_num: u64, wanted: u64 },
    /// The donor has moved past `wanted`: it handed these shards over and
    /// deleted them (so the asker already confirmed having them).
    #[error("the donor is at configuration {donor_config_num}, past {wanted}")]
    MovedOn { donor_config_num: u64, wanted: u64 },
    /// The donor does not hold `shard` for handing over in `wanted`.
    #[error("shard {shard} is not offered in configuration {wanted}")]
    NotOffered { shard: ShardId, wanted: u64 },
    #[error("not the leader (hint: {leader_hint:?})")]
    WrongLeader { leader_hint: Option<u64> },
    #[error("the request was not applied in time")]
    Timeout,
}
