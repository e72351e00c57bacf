//! # api: what users ask of distcache and what they get back
//!
//! The vocabulary every layer above the store shares, with no IO, no Raft
//! and no RPC: the operations ([`Op`]), their answers ([`Outcome`]), the
//! one error type ([`Error`]), the size limits ([`Limits`],
//! [`MachineConfig`]), what each
//! operation means on a [`cache::Store`] ([`execute`], [`read`]), and the
//! client trait ([`KvClient`]).
//!
//! ```text
//!  user ─► KvClient::get/put/...  (provided: build an Op, read the Outcome)
//!            │ run(op)            (required: kvraft Clerk, shardkv Clerk,
//!            ▼                     the product client, test recorders)
//!          servers: Limits::check before proposing
//!            │ log, commit, apply on every replica
//!            ▼
//!          execute(store, op, limits, log time) -> Result<Outcome, Error>
//! ```
//!
//! kvraft's and shardkv's servers both apply operations with [`execute`]
//! (shardkv on one store per shard), so an operation means the same
//! everywhere. A new operation is a new [`Op`] variant plus its arm in
//! [`execute`]; the compiler then points at every other place to extend.
//!
//! ## Pieces
//!
//! | file | what |
//! |---|---|
//! | `op.rs` | [`Op`], [`Outcome`] |
//! | `error.rs` | [`Error`] (final and internal outcomes), [`Reply`] |
//! | `limits.rs` | [`Limits`]: key and value size bounds, checked before proposing and at apply; [`MachineConfig`]: a key/value machine's settings |
//! | `execute.rs` | [`execute`] and [`read`]: the operations on a store at a log time |
//! | `collections.rs` | hash and set operations ([`HashOp`], [`SetOp`]), `TYPE`, and their meaning on a store |
//! | `set_algebra.rs` | the set operations over several keys of one shard: `SINTER`/`SUNION`/`SDIFF` (+`STORE`), `SINTERCARD`, `SMOVE` |
//! | `zsets.rs` | sorted-set operations ([`ZSetOp`]): `ZADD` ... `ZRANDMEMBER`, ranges by rank, score or member in O(log n + answer) |
//! | `zset_algebra.rs` | `ZUNIONSTORE`/`ZINTERSTORE`/`ZDIFFSTORE` and `ZRANGESTORE` within one shard |
//! | `lists.rs` | list operations ([`ListOp`]): pushes, pops, ranges, `LMOVE` within one shard |
//! | `keyspace.rs` | the whole-shard operations ([`Op::ScanShard`], [`Op::CountShard`], [`Op::FlushShard`], [`Op::RandomKey`]): keys in [`scan_position`] order, so a scan cursor survives store growth and shard moves |
//! | `element_scan.rs` | one step of `HSCAN`, `SSCAN` or `ZSCAN`: a collection's elements in [`scan_position`] order of the element, the cursor a position |
//! | `lcs.rs` | Redis's `LCS` over two keys of one shard, bounded by [`lcs::LCS_TABLE_BYTES_MAX`] |
//! | `multikey.rs` | the multi-key operations ([`Op::MultiSet`], [`Op::Rename`], [`Op::Copy`]): one step on one store, any value type moved with its deadline; the server refuses keys of several shards ([`Error::CrossShard`]) |
//! | `client.rs` | [`KvClient`]: `run(op)` plus the typed operations |
//!
//! ## Tests
//!
//! `cargo test -p api`: the operations on a store (sizes, append limit,
//! TTL, compare-and-set, reads that change nothing) and the typed client
//! methods over an in-memory client.

mod client;
pub mod collections;
mod element_scan;
mod error;
mod execute;
mod keyspace;
pub mod lcs;
mod limits;
pub mod lists;
mod multikey;
mod op;
pub mod set_algebra;
pub mod zset_algebra;
pub mod zsets;

pub use client::KvClient;
pub use collections::{HashOp, SetOp};
pub use error::{Error, Reply};
pub use execute::{
    encoding_name, execute, parse_redis_integer, read, reply_known_before, substring,
};
pub use limits::{
    DEFAULT_CLIENT_IDLE_EXPIRY_MS, DEFAULT_MAX_CLIENTS, DEFAULT_MAX_COLLECTION_ELEMENTS, Limits,
    MachineConfig,
};
pub use lists::{End, ListOp};
pub use op::{
    ExpireCondition, Float, GetExTtl, KeyExpireTime, KeyTtl, Op, Outcome, SCAN_COUNT_MAX,
    SCAN_POSITION_BITS, SCAN_POSITION_END, SetCondition, SetTtl, Target, format_float,
    scan_position,
};
pub use set_algebra::Combination;
pub use zsets::{Aggregate, ZAddCondition, ZRange, ZSetOp};
