//! # distcache-client: the Rust client of a distcache cluster
//!
//! A [`Client`] talks to the public gRPC API (`proto/distcache/v1/`,
//! package `distcache.v1`). It is a *smart* client: it reads the shard map
//! from any node (`Admin.Status`), sends each key straight to the node that
//! hosts the leader of the key's group (so the cluster needs no forwarding
//! hop), and re-reads the map when a call fails. One client is shared by any
//! number of tasks: one HTTP/2 channel per node, one routing table, and a
//! bounded pool of exactly-once sessions.
//!
//! ```text
//!   task ─┐                          ┌─► node hosting group 1's leader
//!   task ─┼─► Client ── routing ─────┼─► node hosting group 2's leader
//!   task ─┘   (sessions, channels)   └─► any node (map unknown: it forwards)
//! ```
//!
//! Writes carry a session `(client_id, seq)`; retries keep the seq, so a
//! write applies at most once even when its first attempt's answer was lost.
//!
//! ```no_run
//! # async fn example() -> Result<(), distcache_client::ClientError> {
//! let client = distcache_client::Client::connect("127.0.0.1:50051")?;
//! client.set(b"greeting", b"hello").await?;
//! assert_eq!(client.get(b"greeting").await?, Some(b"hello".to_vec()));
//! # Ok(()) }
//! ```
//!
//! The client implements [`api::KvClient`] too (see the `kv` module for
//! which operations the gRPC API carries), so code written against the
//! trait runs over the lab clerks and over a real cluster alike.
//!
//! ## Errors
//!
//! Every error status a node sends carries a machine-readable reason in
//! its details ([`details`]: a `google.rpc.ErrorInfo` with domain
//! `distcache.v1`). The client turns the reasons that are an
//! [`api::Error`] back into it ([`ClientError::Refused`]), so a program
//! matches on `api::Error::TooLarge` or `api::Error::NotAnInteger` rather
//! than on message texts.
//!
//! The generated message types, clients and server traits are in [`proto`];
//! the `distcache` node implements the servers.
//!
//! ## Tests
//!
//! `cargo test -p distcache` runs this client against real node processes.

mod client;
pub mod details;
mod error;
mod kv;
pub mod near;
pub mod proto;
mod routing;

pub use client::{Client, ClientConfig, Condition, Credentials, ReadFrom, SetOptions};
pub use error::ClientError;
pub use kv::NOT_IN_THE_API;
pub use near::{NearConfig, NearStats, RuntimeClock};

/// Accepts `host:port` or `http://host:port`; the URL gRPC channels use.
pub fn grpc_url(address: &str) -> Result<String, ClientError> {
    client::normalize_address(address)
}
