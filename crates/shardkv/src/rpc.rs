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

/// Several clerk requests to one group in one message: a node forwarding
/// its clients' concurrent commands to a leader sends them together
/// (distcache's `hop_batch`). Each is served as if sent alone, with its
/// own session, sequence number and reply, concurrently with the others;
/// the reply lists the replies in the requests' order. A batch of more
/// than [`MAX_BATCH_REQUESTS`] is refused whole ([`api::Error::TooManyElements`]).
///
/// Wire: added after `shardkv.Command`; a node of an older build answers
/// that it does not know the call, and the sender sends each alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardKvBatch {
    pub requests: Vec<ShardKvRequest>,
    /// The trace context of each request, by position (the labrpc call
    /// carries one for the whole batch): its spans at the leader are
    /// children of it. Missing or malformed entries trace nothing.
    pub traces: Vec<Option<BatchTrace>>,
}

/// One request's W3C trace context in a [`ShardKvBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchTrace {
    pub trace_id: u128,
    pub span_id: u64,
}

impl From<labrpc::trace::TraceContext> for BatchTrace {
    fn from(context: labrpc::trace::TraceContext) -> BatchTrace {
        BatchTrace {
            trace_id: context.trace_id,
            span_id: context.span_id,
        }
    }
}

impl BatchTrace {
    /// The context, if valid (W3C: neither id is zero). Input from a peer.
    pub fn context(self) -> Option<labrpc::trace::TraceContext> {
        (self.trace_id != 0 && self.span_id != 0).then_some(labrpc::trace::TraceContext {
            trace_id: self.trace_id,
            span_id: self.span_id,
        })
    }
}

/// Most requests one [`ShardKvBatch`] may carry.
pub const MAX_BATCH_REQUESTS: usize = 64;

impl labrpc::Rpc for ShardKvBatch {
    const NAME: &'static str = "shardkv.CommandBatch";
    type Reply = Result<Vec<Reply>, api::Error>;
    /// A forwarding node's batches to one peer share a stream: its handler
    /// ends once each request is answered or has timed out on its own.
    const STREAMED: bool = true;
}

/// A read served by the replica that receives it, leader or follower: a
/// follower asks its leader for a read index and reads once it has
/// applied through it (`rsm`'s follower reads), so the answer is as
/// linearizable as a read on the leader. What spreads a hot key's reads
/// over a group. A replica answers `WrongLeader` when it cannot serve it
/// (no known leader, not caught up in time, reads configured to go
/// through the log, an operation that is not a read): read from the
/// leader then, with [`ShardKvRequest`].
///
/// With `max_staleness_ms > 0` the answer may be that old: a follower
/// answers from a read index it was granted at most that long ago, without
/// asking its leader (`rsm`'s `read_within`); it reflects every write
/// acknowledged more than `max_staleness_ms` before the read began. Above
/// [`MAX_STALENESS_MS`] it counts as [`MAX_STALENESS_MS`] (a fresher answer
/// is always allowed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadAnywhere {
    /// As in [`ShardKvRequest`]: diagnostics only.
    pub config_num: u64,
    pub op: Op,
    /// How old the answer may be, in ms; 0: linearizable.
    pub max_staleness_ms: u64,
}

/// The largest staleness bound a read may ask for (one minute): front ends
/// refuse larger ones, and a replica holds a larger one to this.
pub const MAX_STALENESS_MS: u64 = 60_000;

impl labrpc::Rpc for ReadAnywhere {
    const NAME: &'static str = "shardkv.ReadAnywhere";
    type Reply = Reply;
}

/// Wait, on the group's leader, until one of `keys` (all in one shard) is
/// present or written, or `wait_ms` passes: the long poll behind the
/// blocking commands (`crate::server` module `key_watch`). Changes nothing
/// and is never logged. The reply: [`Outcome::Applied`]`(true)` if a key
/// is present now or was written while waiting (the caller then runs its
/// operation, which may still find nothing), `(false)` if the wait ended
/// first; `WrongLeader`, `WrongGroup`, or `Busy` when the leader's bound
/// on waiters is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitKeys {
    pub keys: Vec<Vec<u8>>,
    /// At most [`crate::server::MAX_WAIT_MS`] (longer asks are cut).
    pub wait_ms: u64,
}

impl labrpc::Rpc for WaitKeys {
    const NAME: &'static str = "shardkv.WaitKeys";
    type Reply = Reply;
}

/// Long poll on the group's leader for the keys its writes changed after
/// log index `after` (client-side caching's invalidations; the `server`
/// module `change_feed`): answers as soon as one is known, or after
/// `wait_ms` with none, always after confirming leadership through the
/// read index, so every write acknowledged before the answer and after
/// `after` is in it (or the answer is [`Changes::Reset`]). Changes nothing
/// and is never logged; `WrongLeader` from a replica that does not lead,
/// `Busy` to a poller refused a lease (too many pollers, or one that held
/// writes back too long): it gets no answer, so it flushes its clients.
///
/// Wire: `poller` was added with the write fence (issue 22). labrpc
/// messages carry no version, so a node of an older build cannot decode a
/// newer node's poll and the other way round: across a rolling upgrade
/// the nodes' pollers get no answer from groups led by the other build and
/// flush their clients every few seconds (caching degrades, nothing is
/// served stale beyond the old bound).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchChanges {
    /// Who polls: a random number each node's feed poller draws when it
    /// starts (the leader's write fence keeps a lease per poller; see the
    /// `server::write_fence` module).
    pub poller: u64,
    /// The poller's cursor: the `through` of its previous answer (0 at
    /// first, which answers `Reset`). Sending it says that every change
    /// through it was handed to the poller's clients' connections: the
    /// leader's write fence answers writes up to it.
    pub after: u64,
    /// At most [`crate::server::MAX_WAIT_MS`] (longer asks are cut).
    pub wait_ms: u64,
}

impl labrpc::Rpc for WatchChanges {
    const NAME: &'static str = "shardkv.WatchChanges";
    type Reply = Result<Changes, api::Error>;
}

/// What a [`WatchChanges`] poll learns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Changes {
    /// The keys written in log indexes `(after, through]` (a key may come
    /// twice); the next poll asks after `through`.
    Keys { keys: Vec<Vec<u8>>, through: u64 },
    /// Changes after the cursor are not all known here (a new leader, a
    /// poller too far behind, a flushed shard, a lost group): whoever
    /// cached values of this group drops them all, then polls after
    /// `through`.
    Reset { through: u64 },
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

impl ShardTransfer {
    /// The transfer as bytes (the shared `codec`), the form it moves in,
    /// chunk by chunk ([`ShardChunk`]).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// A transfer from [`ShardTransfer::encode`] bytes (decoded within
    /// `codec::STATE_LIMIT`); refuses trailing bytes and anything that
    /// does not decode.
    pub fn decode(bytes: &[u8]) -> Result<ShardTransfer, String> {
        codec::decode(bytes, codec::STATE_LIMIT).map_err(|error| format!("shard transfer {error}"))
    }
}

/// Which shards of configuration `config_num` a receiver wants from their
/// previous owner: the argument of [`crate::ShardMachine::offer`], the
/// donor's read of its frozen shards. (The servers move shards with
/// [`PullChunk`], one bounded piece at a time.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullShards {
    pub config_num: u64,
    pub shards: Vec<ShardId>,
    /// The asking group: it must be the one the configuration gives the
    /// shards to.
    pub from_gid: Gid,
}

/// The new owner asks the previous owner for the bytes of `shard`'s
/// encoded [`ShardTransfer`] from `offset` on, at most `max_bytes` of
/// them. Asking again for the same offset gets the same bytes (the shard
/// is frozen), so a lost reply costs one retry and nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullChunk {
    pub config_num: u64,
    pub shard: ShardId,
    pub offset: u64,
    pub max_bytes: u64,
    /// The asking group: it must be the one the configuration gives the
    /// shard to.
    pub from_gid: Gid,
}

impl labrpc::Rpc for PullChunk {
    const NAME: &'static str = "shardkv.PullChunk";
    type Reply = Result<ShardChunk, MigrationError>;
}

/// One piece of a shard's encoded [`ShardTransfer`]: `data` is bytes
/// `offset..offset + data.len()` of `total_bytes`. Both checksums are
/// CRC-32 (IEEE): `data_crc32` of this piece, checked before the piece is
/// kept; `total_crc32` of the whole, checked before it is installed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardChunk {
    pub shard: ShardId,
    pub total_bytes: u64,
    pub total_crc32: u32,
    pub offset: u64,
    pub data: Vec<u8>,
    pub data_crc32: u32,
}

impl ShardChunk {
    /// Bytes `offset..offset + max_bytes` (clipped to the end) of `whole`,
    /// whose CRC-32 is `total_crc32`.
    ///
    /// # Panics
    /// If `offset` is past the end of `whole` (the caller checks it).
    pub fn cut(
        shard: ShardId,
        whole: &[u8],
        total_crc32: u32,
        offset: u64,
        max_bytes: u64,
    ) -> ShardChunk {
        let start = usize::try_from(offset).expect("offset checked against the length");
        assert!(
            start <= whole.len(),
            "chunk offset {start} past {}",
            whole.len()
        );
        let length = usize::try_from(max_bytes)
            .unwrap_or(usize::MAX)
            .min(whole.len() - start);
        let data = whole[start..start + length].to_vec();
        ShardChunk {
            shard,
            total_bytes: whole.len() as u64,
            total_crc32,
            offset,
            data_crc32: crc32fast::hash(&data),
            data,
        }
    }
}

/// The new owner tells the previous owner it holds the shards of
/// configuration `config_num`: the previous owner may delete its copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteShards {
    pub config_num: u64,
    pub shards: Vec<ShardId>,
    /// The asking group: only shards offered to it are deleted.
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
    /// A chunk was asked for past the end of the shard's transfer.
    #[error("offset {offset} is past the end of shard {shard}'s {total_bytes}-byte transfer")]
    BadOffset {
        shard: ShardId,
        offset: u64,
        total_bytes: u64,
    },
    /// The configuration gives `shard` to group `owner`, not to the asking
    /// `from_gid`: a pull or delete from any other group is refused (and
    /// counted; retrying does not help).
    #[error(
        "shard {shard} goes to group {owner} in configuration {wanted}, not to group {from_gid}"
    )]
    WrongReceiver {
        shard: ShardId,
        wanted: u64,
        from_gid: Gid,
        owner: Gid,
    },
    /// The donor did not apply the request (not the leader, not seen
    /// applied in time, busy): the caller retries later.
    #[error("{0}")]
    Replica(#[from] SubmitError),
    /// The request names group `from_gid`, but the node that sent it (as
    /// labrpc's peer policy authenticated it) is not one of that group's
    /// replicas (counted with `WrongReceiver`; retrying does not help).
    /// Last, so that the other variants keep their encoding.
    #[error("node {node} is not a replica of group {from_gid}, which the request names")]
    NotGroupMember { from_gid: Gid, node: u64 },
    /// This donor replica could not read `shard` back from its disk tier
    /// (an IO error, a damaged record): it hands over nothing rather than
    /// a wrong copy, and the caller asks another replica of the group.
    /// Appended after `NotGroupMember` for the same reason.
    #[error("shard {shard} cannot be read from this replica's disk tier: {detail}")]
    DonorFault { shard: ShardId, detail: String },
}
