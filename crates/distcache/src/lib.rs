//! # distcache: the node, the demo and the operator CLI
//!
//! This crate turns the lab layers into a product: a `distcache` binary
//! that runs a node of a cluster from a configuration file, a one-command
//! demo cluster, and the `status` / `admin` commands.
//!
//! ```text
//!              gRPC (distcache.v1: Cache, Admin)
//!                          │
//!   ┌──────────────── node ▼ ─────────────────────────────┐
//!   │  service.rs   Cache: request ─► Op    Admin: status, │
//!   │                  │                 join/leave/move   │
//!   │  forward.rs   Forwarder: key ─► shard ─► group       │
//!   │                  │ leader here? submit locally       │
//!   │                  │ else one labrpc hop to the leader │
//!   │  replicas     controller (shardctrler) and/or one    │
//!   │               data group replica (shardkv), Raft     │
//!   │               logs in data_dir (FileStorage)         │
//!   └──────────────────────────────────────────────────────┘
//!            peer traffic: labrpc (gRPC) on controller_port, data_port
//!            (cluster and node id on every call; mutual TLS with [tls] peer_ca)
//! ```
//!
//! | file | what |
//! |---|---|
//! | `config.rs` | [`NodeConfig`]: TOML, env and flag layers, validation naming the field |
//! | `identity.rs` | the data directory's owner file; foreign directories refused |
//! | `node.rs` | [`Node`]: start, bootstrap, readiness, graceful shutdown (leaders hand off first) |
//! | `forward.rs` | [`Forwarder`]: any node answers any key (one hop, a deadline) |
//! | `near_cache.rs` | answers kept for plain GETs of keys this node forwards, invalidated by their groups through a tracker of its own (opt-in) |
//! | `read_cache.rs` | answers kept for reads that allow staleness, for keys this node forwards (exact bound, no invalidation needed) |
//! | `replica_turns.rs` | which replica of a group gets the next read any replica may serve (in turn, passing over recent failures) |
//! | `service.rs` | the gRPC `Cache` and `Admin` services; errors with typed details |
//! | `membership.rs` | an operator's add/remove/replace-replica of a data group, on its leader |
//! | `grpc_trace.rs` | a gRPC caller's `traceparent` names the request's trace |
//! | `tls.rs` | TLS on the client front ends (rustls), SIGHUP reload, the demo's throwaway CA |
//! | `peer_tls.rs` | mutual TLS between nodes: the peer certificate and cluster CA behind labrpc's `PeerTls`, reloaded on SIGHUP |
//! | `auth.rs` | credentials of the HTTP and gRPC front ends (the RESP users); docs/security.md |
//! | `resp/` | the RESP (Redis protocol) listener |
//! | `http/` | the HTTP gateway: REST API, `/livez` `/readyz`, OpenAPI, `/metrics` |
//! | `metrics.rs` | [`metrics::Metrics`]: the node's Prometheus registry; requests per shard |
//! | `balance.rs` | the load balancer (`balance_load`): per-shard request deltas from every node, a `BalanceLoad` when one group stays busiest |
//! | `demo.rs` | `distcache demo`: a whole cluster in one process |
//! | `cli.rs` | command-line flags, `status` and `admin` |
//!
//! ## Tests
//!
//! ```text
//! cargo test -p distcache     # config errors (every documented example),
//!                             # real node processes: kill -9 a leader,
//!                             # restart, nothing acknowledged lost;
//!                             # grpc_api.rs: every typed error, KvClient
//!                             # over the product client; handoff.rs: the
//!                             # unavailability window with and without
//!                             # the leadership hand-off
//! tests/python/run.sh         # a Python grpcio client against the demo
//! scripts/latency-report.sh   # release build: gRPC and RESP latency, the
//!                             # forwarding hop, redis-server alongside
//! ```

pub mod auth;
pub mod balance;
pub mod cli;
mod clock;
pub mod config;
pub mod demo;
pub mod forward;
#[cfg(not(madsim))]
pub mod grpc_trace;
mod hop_batch;
pub mod hostile;
pub mod http;
pub mod identity;
pub mod keyspace;
pub mod membership;
pub mod metrics;
pub mod near_cache;
pub mod node;
#[cfg(not(madsim))]
pub mod otlp;
#[cfg(not(madsim))]
pub mod peer_tls;
pub mod read_cache;
mod replica_turns;
pub mod resp;
pub mod service;
#[cfg(not(madsim))]
pub mod tls;
pub mod tracking;

pub use config::{ConfigError, NodeConfig, NodeEntry, Overrides, Topology};
pub use forward::{ForwardError, Forwarder};
pub use node::{Node, NodeError};
