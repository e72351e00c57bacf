//! # shardctrler: the shard controller (6.5840 Lab 5A) — being built
//!
//! A Raft-replicated configuration service (Join, Leave, Move, Query) with a
//! deterministic placement function: balanced (largest group holds at most
//! one shard more than the smallest) and moving the fewest shards.
//!
//! Built so far: [`Config`] (read by shardkv), [`placement::rebalance`]
//! (pure; property-tested against an independently computed minimum) and
//! [`ConfigHistory`] (the pure controller state: numbered, immutable
//! configurations; refused requests get a [`ConfigError`] and change
//! nothing). The server and clerk come next.
//!
//! ```text
//! cargo test -p shardctrler                          # unit + property tests
//! cargo bench -p shardctrler --bench placement       # 1024 shards x 100 groups
//! ```

pub mod clerk;
pub mod config;
pub mod history;
pub mod placement;
pub mod rpc;
pub mod server;

pub use clerk::{Clerk, ClerkConfig, ClerkError};
pub use config::{Config, Gid, UNASSIGNED};
pub use history::{ConfigAnswer, ConfigError, ConfigHistory, ConfigOp, Limits};
pub use rpc::{CtrlerRequest, Reply, ServerError};
pub use server::{
    CtrlerMachine, CtrlerServer, CtrlerServerConfig, CtrlerStatus, QueryPath, StartError,
};
