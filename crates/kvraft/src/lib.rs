//! # kvraft: fault-tolerant key/value service (6.5840 Lab 4)
//!
//! A linearizable key/value service on one Raft group (Get, Put with an
//! optional TTL, Append, Delete, compare-and-set). Each replica applies the
//! log in order to a [`StateMachine`]: the `cache` crate's deterministic
//! [`cache::Store`] plus an exactly-once table.
//!
//! The crate is also the home of the pieces the shard controller and
//! shardkv reuse: [`rsm`] (the Raft-replicated state machine loop),
//! [`session`] (the exactly-once table) and [`group_client`] (the
//! leader-finding caller and the client session).
//!
//! ```text
//!  Clerk (= GroupClient + ClientSession)
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
//! | `rsm/` | [`rsm::Rsm`], [`rsm::ReplicatedMachine`]: generic server loop (proposals and their waiters, log time, ReadIndex reads, snapshots) |
//! | `session.rs` | [`session::SessionTable`]: generic, serializable exactly-once table (bound, idle expiry in log time, export/import) |
//! | `group_client.rs` | [`group_client::GroupClient`], [`group_client::ClientSession`]: leader finding, retries, deadline; client id and seq |
//! | `rpc.rs` | [`KvRequest`], [`Op`], [`Outcome`], [`ServerError`] (the wire types) |
//! | `server/state_machine.rs` | [`StateMachine`]: pure, deterministic; store, sessions, snapshot |
//! | `server/mod.rs` | [`KvServer`]: the labrpc handler on an `Rsm<StateMachine>` |
//! | `clerk.rs` | [`Clerk`]: kvraft's operations on a group client, typed [`ClerkError`] |
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
//! cargo test -p kvraft          # unit: rsm (waiters, clock), session, state machine;
//!                               # tests/rsm.rs: the rsm on real gRPC + files
//! RUSTFLAGS="--cfg madsim" cargo test -p sim-tests --test kvraft \
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
//! `benches/kv_throughput.rs`, production mode: a 3-replica group in one
//! process on real tokio (multi-thread), gRPC on loopback, `FileStorage`
//! on ext4 (one fsync per Raft `Ready`: group commit), snapshots at 8 MiB;
//! each client one clerk, one operation at a time; 1000 keys, 100-byte
//! values; 3 s per cell after 0.5 s warm-up. Measured 2026-11-22 at
//! 01:39 UTC on this 2-core machine shared with other agents (load
//! average 7.5 before and after; run under `nice`), so absolute numbers
//! are low and noisy:
//!
//! | operation | clients | ops/s | p50 ms | p99 ms |
//! |---|---|---|---|---|
//! | Put | 1 | 237 | 3.87 | 14.27 |
//! | Put | 16 | 2,584 | 4.50 | 23.14 |
//! | Put | 64 | 3,379 | 15.60 | 59.74 |
//! | Get (log) | 1 | 259 | 1.58 | 22.79 |
//! | Get (log) | 16 | 1,971 | 7.25 | 24.66 |
//! | Get (log) | 64 | 3,354 | 15.75 | 59.54 |
//! | Get (ReadIndex) | 1 | 1,758 | 0.14 | 9.64 |
//! | Get (ReadIndex) | 16 | 4,211 | 1.30 | 14.90 |
//! | Get (ReadIndex) | 64 | 5,215 | 12.03 | 27.52 |
//!
//! Re-run on the idle machine (2026-11-22 02:33 UTC, load average under
//! 1 before; 3 s per cell, no operation failed):
//!
//! | operation | 1 client | 16 clients | 64 clients |
//! |---|---|---|---|
//! | Put | 771 ops/s (p50 1.26, p99 1.95 ms) | 4,900 (3.14, 6.91) | 9,533 (6.16, 12.92) |
//! | Get (log) | 781 (1.23, 2.27) | 5,945 (2.60, 4.71) | 10,059 (6.17, 11.03) |
//! | Get (ReadIndex) | 4,386 (0.21, 0.46) | 17,387 (0.89, 1.79) | 34,489 (1.83, 3.20) |
//!
//! ReadIndex: 5.6x the log reads' throughput with 1 client, 2.9x with 16,
//! 3.4x with 64. The loaded-machine table above is the first measurement.
//!
//! No operation failed. ReadIndex reads skip the log entry and its fsync:
//! 6.8x the throughput of log reads with one client, 2.1x with 16, 1.6x
//! with 64, and half the p99 at 64. How noisy this machine is: a run four
//! minutes earlier (before concurrent reads shared heartbeat rounds) gave
//! Put 273 / 1,795 / 4,774 ops/s, Get (log) 307 / 2,129 / 5,399 and Get
//! (ReadIndex) 3,131 / 4,482 / 4,998 for 1 / 16 / 64 clients. At 64
//! clients the two shared cores (three replicas, the clients and gRPC all
//! in one process) are the limit. For scale (figures from the issue, not
//! measured here): etcd does about 44k writes/s on three 8-core machines
//! with 1000 clients; redis-server (one replica, no consensus) about 85k
//! SET/s on this machine with 50 clients.
//!
//! ## Status
//!
//! - Built: server, state machine, clerk, snapshots and restore, ReadIndex
//!   reads (the default; [`ReadPath::Log`] for comparison). The server
//!   loop, exactly-once table and clerk logic are the shared generic
//!   [`rsm`], [`session`] and [`group_client`], which shardkv and the
//!   shard controller use too.
//! - Unit tests: `rsm` waiters and leader clock, `session` (check, bound,
//!   idle expiry, export/import, decode refusing an over-bound table),
//!   `tests/state_machine.rs` (apply, exactly-once, TooLarge, log-time TTL,
//!   reads that change nothing, session expiry, snapshot round trip),
//!   `tests/rsm.rs` in production mode (proposals answered with their own
//!   output, refusals on a follower, a read before any command (read index
//!   at the no-op), a leader without a majority serves no read, restart
//!   from snapshot and log with Raft state bounded).
//! - Simulated suite (`sim-tests/tests/kvraft.rs`, kvtest's): all 25
//!   tests (including `capacity_eviction_is_deterministic`) pass 20 seeds
//!   and the determinism check with ReadIndex reads on (2026-11-22, on
//!   main at 2e8ecaa). It caught the one ReadIndex bug found so far: a
//!   read index at a new leader's no-op, which Raft never hands to the
//!   service, waited forever (fixed: the apply task publishes how far
//!   Raft handed entries over).
//! - `corrupt_replica_refuses_to_serve`: a replica whose snapshot and log
//!   disagree after a crash fails to start (raft's storage load refuses
//!   them with `StorageError::Inconsistent`, naming both files); the other
//!   replicas keep serving a linearizable history.
//! - Rounds without progress: under random partitions on a lossy network
//!   about 1 round of 3 s in 64 completed no append (14 of 300 runs of
//!   three tests, seeds 1-100, 2026-12-02): a bare majority (3 of 5) had
//!   to win a pre-vote and a vote with 10% loss each way, and a candidate
//!   sent its requests once per round. Raft now re-sends them to silent
//!   peers every 100 ms; the same 300 runs pass, and the tests require
//!   progress in every round again (`sim_tests::kvraft::workload`).

pub mod clerk;
pub mod group_client;
mod random;
pub mod rpc;
pub mod rsm;
pub mod server;
pub mod session;

pub use clerk::{Clerk, ClerkConfig, ClerkError};
pub use rpc::{KvRequest, Op, Outcome, ServerError};
pub use server::{
    Command, KvServer, MachineConfig, ReadPath, Reply, ServerConfig, ServerStatus, StateMachine,
};
