//! # kvraft: fault-tolerant key/value service (6.5840 Lab 4)
//!
//! A linearizable key/value service on one Raft group (Get, Put with an
//! optional TTL, Append, Delete, compare-and-set). Each replica applies the
//! log in order to a [`StateMachine`]: the `cache` crate's deterministic
//! [`cache::Store`] plus an exactly-once table.
//!
//! The server loop, the exactly-once table and the leader-finding caller
//! are the `rsm` crate's (the shard controller and shardkv use them too);
//! the operations, their answers and errors, and their meaning on a store
//! are the `api` crate's (shardkv applies the same ones).
//!
//! ```text
//!  Clerk (= rsm's SessionClerk<KvRequest>: GroupClient + ClientSession)
//!   │ KvRequest{client_id, seq, op}; remembered leader, then the hint,
//!   │ then the next; backoff, bounded by a deadline
//!   ▼
//!  KvServer::handle ── sizes ok? recorded answer of a retry? (local)
//!   │                  Get with ReadPath::ReadIndex ──► Rsm::read(peek)
//!   ▼
//!  Rsm::submit(Command) ──► raft.start(Envelope{proposal, stamp_ms, command})
//!   ▲                              │ replicate, commit
//!   │                              ▼
//!   │                  rsm apply task (every replica, log order)
//!   │                    log time = max(log time, stamp_ms)
//!   │                    StateMachine::apply(command, {index, log time})
//!   │                      SessionTable: New / Duplicate / Stale
//!   │                      Store op at log time (TTL, eviction)
//!   └── own proposal's output ──┘    raft state >= max_raft_state?
//!                                      raft.snapshot(index, {log time, machine})
//! ```
//!
//! ## Pieces
//!
//! | file | what |
//! |---|---|
//! | `rpc.rs` | [`KvRequest`]: the wire request (an `api::Op` with its exactly-once identity) |
//! | `server/state_machine.rs` | [`StateMachine`]: pure, deterministic; store, sessions, snapshot |
//! | `server/mod.rs` | [`KvServer`]: the labrpc handler on an `Rsm<StateMachine>` |
//! | `clerk.rs` | [`Clerk`]: the rsm's one-group [`rsm::group_client::SessionClerk`] (a [`KvClient`]: a group client and a session) over [`KvRequest`] |
//!
//! ## Guarantees and how
//!
//! - **Linearizable**: every write is a log entry; a handler answers only
//!   with the output of its own entry (proposals carry a unique id).
//! - **Reads by ReadIndex** (the default, [`ReadPath::ReadIndex`]; the
//!   6.5840 way, every Get a log entry, is [`ReadPath::Log`]): the leader
//!   asks Raft for a read index (the commit index, once a heartbeat round
//!   confirmed the lead; a new leader first commits an entry of its term),
//!   waits until it has applied that far, and answers from its machine
//!   with `Store::peek`. No entry, no fsync; concurrent reads share one
//!   heartbeat round. Trade-offs:
//!   - such a Get is not an access for the eviction policy (LRU/LFU see
//!     only writes and log reads): it runs on the leader alone, and
//!     replicas must stay identical;
//!   - its TTL check uses the leader's current stamp (what a write proposed
//!     now would carry), so an idle group still expires keys. Stamps come
//!     from each leader's local clock since its last apply; a new leader's
//!     first stamps could lag a deposed leader's last read by the commit
//!     propagation delay minus the election timeout. We assume clocks
//!     whose rates agree well enough that the election timeout (at least
//!     150 ms) covers that, so a key one read saw expired is not seen
//!     alive by a later read. Writes are unaffected (log time is a max).
//! - **Exactly once**: a clerk is one session `(client_id, seq)`, one
//!   operation at a time; a write's answer is recorded per client; a retry
//!   gets the recorded answer. The table is in the snapshot. It is bounded
//!   (`max_clients`, least recently active forgotten first) and clients
//!   idle for `client_idle_expiry_ms` of *log* time are forgotten, the same
//!   way on every replica. A client forgotten while a retry is in flight
//!   could see that write applied twice: the expiry must exceed the
//!   clerk's operation deadline (defaults: 10 minutes vs 30 s).
//! - **Logical time**: the leader stamps each entry, advanced from the
//!   last applied entry's time at the leader's local clock rate (no clock
//!   base shared between machines is assumed); the log time is the
//!   maximum stamp applied so far (kept by the rsm, in its snapshot). TTLs
//!   and session expiry use only this, so every replica expires the same
//!   keys at the same log position.
//! - **Limits**: keys over `max_key_bytes`, values (or an append's result)
//!   over `max_value_bytes`, or entries over the store's capacity answer
//!   `TooLarge` and change nothing.
//! - **Snapshots**: when the stored Raft state reaches `max_raft_state`
//!   bytes, the replica hands Raft a snapshot of the whole machine; on
//!   restart Raft hands it back first. A snapshot that does not decode
//!   stops the replica (panic with context) rather than serve other state.
//!
//! ## Tests
//!
//! ```text
//! cargo test -p kvraft          # tests/state_machine.rs: the state machine
//! RUSTFLAGS="--cfg madsim" cargo test -p sim-tests --test it kvraft:: \
//!     --target-dir target/sim   # the 6.5840 Lab 4 suite
//! MADSIM_TEST_NUM=20 ...; MADSIM_TEST_CHECK_DETERMINISM=1 ...
//! cargo bench -p kvraft --bench kv_throughput    # the production benchmark
//! ```
//!
//! Every simulated test records its full client history and checks it with
//! the `linearizability` crate (an "unknown" verdict fails).
//!
//! ## Performance
//!
//! `benches/kv_throughput.rs` measures a 3-replica group in one process in
//! production mode (real tokio, gRPC on loopback, `FileStorage` with one
//! fsync per Raft `Ready`); the dated numbers are in `docs/status.md`.
//!
//! ## Status
//!
//! Built: server, state machine, clerk, snapshots and restore, ReadIndex
//! reads (the default; [`ReadPath::Log`] for comparison). The measured
//! state of the suites and the known liveness limits are in
//! `docs/status.md`.

pub mod clerk;
pub mod rpc;
pub mod server;

pub use api::{Error, KvClient, Op, Outcome, Reply};
pub use clerk::{Clerk, ClerkConfig};
pub use rpc::KvRequest;
pub use server::{
    Command, KvServer, MachineConfig, ReadPath, ServerConfig, ServerStatus, StateMachine,
};
