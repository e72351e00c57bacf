//! # labrpc: typed RPC for every distcache layer, real or simulated
//!
//! labrpc is the bottom layer: Raft peers, kvraft clerks, the shard
//! controller and shardkv groups all talk through it. It is modelled on
//! 6.5840's labrpc, with two transports behind one API:
//!
//! - **production**: gRPC over HTTP/2 and TCP (tonic);
//! - **simulation** (`RUSTFLAGS="--cfg madsim"`): madsim's simulated
//!   network (one connection per call, one server task per call), plus a
//!   fault layer (`sim::Network`, built only under madsim) that drops, delays, reorders and
//!   partitions, all from the seed.
//!
//! Everything above the wire (the typed API, encoding, size limits,
//! deadlines, in-flight bounds, handler dispatch) is the same code in both;
//! the wire itself is chosen in one place, `transport/mod.rs`.
//!
//! ## The model
//!
//! A service is defined once: each request type implements [`Rpc`], naming
//! its method and its reply. A server registers a handler per method on a
//! [`Router`]; a [`Client`] calls a peer by address. Requests and replies are
//! serialized with the shared `codec` crate (bincode, decoded under
//! `codec::MESSAGE_LIMIT`) in both worlds, so byte counts are real and an
//! encoding bug shows up in simulation too.
//!
//! ```text
//!   caller task                                       peer node
//!  ─────────────                                    ─────────────
//!  client.call(peer, &Req)                           Router
//!    │ encode (codec)                                  ▲  "raft.RequestVote" -> handler
//!    │ size check, in-flight slot per peer             │  decode, run, encode
//!    ▼                                                 │
//!  ┌──────────── sim::Network (madsim only) ──────┐    │
//!  │ link up?  unreliable: delay 0-27ms, 10% loss │    │
//!  │ reply: lost if link went down, 10% loss,     │    │
//!  │        long reordering delays 200-2200 ms    │    │
//!  └───────────────────────┬──────────────────────┘    │
//!                          ▼                           │
//!              { method, payload } on the wire ────────┘
//!   (gRPC LabRpc.Call on TCP, or a madsim connection in simulation;
//!    methods with `Rpc::STREAMED` share one LabRpc.Stream per peer)
//! ```
//!
//! Every call has a deadline ([`ClientConfig::timeout`], or
//! [`Client::call_with_timeout`]). A dead, unreachable, paused or
//! partitioned peer is an [`RpcError`] no later than the deadline, never a
//! panic; after a transport error the connection is dropped and the next
//! call reconnects, so a peer that comes back is reachable again. Calls in
//! flight to one peer are bounded ([`ClientConfig::max_in_flight_per_peer`]);
//! messages over [`ClientConfig::max_message_bytes`] or
//! [`ServerConfig::max_message_bytes`] are refused with
//! [`RpcError::TooLarge`] on the side that notices, and nothing else breaks.
//!
//! ## Who may call
//!
//! A node's servers and clients share a [`PeerSecurity`]: calls carry the
//! node's cluster id and node id, servers admit only members of their
//! cluster, and with [`PeerTls`] every connection is mutual TLS whose
//! client certificate must name the node the call claims. See
//! [`security`]. The default policy admits anyone (the labs, simulation).
//!
//! ## Faults and statistics (simulation)
//!
//! See the `sim` module (madsim builds) for the exact meaning of each fault (disconnect, cut link,
//! unreliable, long reordering, long delays, kill, restart, pause) and of
//! each counter (RPCs per server, total RPCs, total bytes). All randomness
//! comes from madsim's seeded RNG, so `MADSIM_TEST_SEED=<seed>` replays a
//! failing run exactly.
//!
//! ## Tests
//!
//! - `cargo test -p labrpc`: the real gRPC transport on loopback (a call, a
//!   burst of 1000 concurrent calls, a dead peer, a restarted peer, an
//!   oversize message); `tests/peer_security.rs`: peer authentication
//!   over rustls (a member admitted; another node's certificate, another
//!   cluster, an unknown node, another CA and plain TCP refused).
//! - `RUSTFLAGS="--cfg madsim" cargo test -p sim-tests --test it labrpc::
//!   --target-dir target/sim`: the simulated suite (TESTS.md's labrpc names).

mod client;
mod error;
mod rpc;
pub mod runtime;
pub mod security;
mod server;
pub mod trace;
mod transport;

#[cfg(madsim)]
pub mod sim;

pub use client::{Client, ClientConfig, KeepAlive};
pub use error::{CodecError, RpcError};
pub use rpc::{Rpc, decode, encode};
#[cfg(not(madsim))]
pub use security::PeerTls;
pub use security::{Members, PeerIdentity, PeerSecurity, Refusal, caller};
pub use server::{Router, Server, ServerConfig, SharedServer};

/// Default limit on a request or reply payload: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;
