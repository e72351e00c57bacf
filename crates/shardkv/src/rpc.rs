//! The wire types: what clerks send, what groups send each other, and the
//! typed errors they answer.
//!
//! Client operations, their answers and errors are the `api` crate's
//! ([`Op`], [`Outcome`], `api::Error`); a sharded group also answers
//! `api::Error::WrongGroup`, on which the clerk re-reads the configuration.

use serde::{Deserialize, Serialize};
use shardctrler::Gid;

pub use api::{Op, Outcome, Reply};
use rsm::SubmitError;
pub use rsm::session::SessionEntry;

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
    type Reply = Reply;
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
    pub sessions: Vec<(u64, SessionEntry<Reply>)>,
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
    /// The donor did not apply the request (not the leader, not seen
    /// applied in time, busy): the caller retries later.
    #[error("{0}")]
    Replica(#[from] SubmitError),
}
