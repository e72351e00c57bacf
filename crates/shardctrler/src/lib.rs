//! # shardctrler: the shard controller (6.5840 Lab 5A)
//!
//! A Raft-replicated configuration service. A configuration ([`Config`]) is
//! numbered and immutable: which replica group serves each shard, and the
//! servers of each group. Join (add groups), Leave (remove groups) and
//! Move (give one shard to one group) each make the next configuration,
//! and so does BalanceLoad (move a few shards off the busiest groups,
//! given each shard's recent load) when it finds a move worth making;
//! Query reads one (`None`: the latest); Report says which configuration a
//! group has applied, so old ones can be dropped. shardkv groups poll it.
//!
//! ```text
//!   Clerk ──ControllerRequest{client_id, seq, op}──► ControllerServer::handle (any replica)
//!    │ kvraft GroupClient: leader hint,               │ shape ok? (local; no entry)
//!    │ retries, backoff, deadline                     │ Query(n), n known here ─► answer
//!    │ kvraft ClientSession: (client_id, seq)         │ recorded change? ─► its answer
//!    ▼                                                ▼
//!   Ok(num) / Ok(Config)        Query(latest): rsm.read (ReadIndex, no entry)
//!   Refused(ConfigError)        Join/Leave/Move/Report: rsm.submit ─► Raft log
//!   Timeout                                              │ commit, every replica
//!                                                        ▼
//!                            ControllerMachine::apply (rsm::ReplicatedMachine)
//!                              SessionTable: duplicate? recorded answer
//!                              ConfigHistory::apply(op)
//!                                Join/Leave ─► placement::rebalance (pure)
//!                                push config n+1, drop what no group needs
//!                                (at most K kept) ─► answer, record
//! ```
//!
//! ## Pieces
//!
//! | file | what |
//! |---|---|
//! | `config.rs` | [`Config`], [`Gid`], [`UNASSIGNED`] |
//! | `placement.rs` | [`placement::rebalance`]: balanced, fewest moves, deterministic; [`placement::minimum_moves`] (the independent bound tests compare with) |
//! | `load.rs` | [`load::balance_load`]: greedy moves off the busiest group, the maximum load never rising, nothing moved for equal loads (pure) |
//! | `history.rs` | [`ConfigHistory`]: the retained configurations and the groups' reports; [`ConfigOp`], [`ConfigError`], [`Limits`] (pure) |
//! | `rpc.rs` | [`ControllerRequest`], [`ServerError`], `ForwardedRequest` (a request passed on to a leader that joined the group later) (the wire) |
//! | `server/machine.rs` | [`ControllerMachine`]: history + the shared [`rsm::session::SessionTable`] |
//! | `server/mod.rs` | [`ControllerServer`] on [`rsm::Rsm`] (passing clerks' requests on to a joined leader, `pass_on_from`); [`ControllerServerConfig`] |
//! | `clerk.rs` | [`ControllerClient`]: `run(ConfigOp)` and the typed operations over it; [`Clerk`], its implementation on the rsm's [`rsm::group_client::SessionClient`] |
//!
//! Nothing is copied from kvraft: the server loop, exactly-once table,
//! leader-finding client and client session are the `rsm` crate's, which
//! kvraft and shardkv use too.
//!
//! ## API (what shardkv uses)
//!
//! ```text
//! let mut config = ControllerServerConfig::new(id, peer_addrs, shard_count, raft_seed);
//! config.replica.max_raft_state = Some(4096);  // the rsm's settings
//! let server = ControllerServer::start(config, storage).await?;  // server.kill(), server.raft()
//! let clerk = Clerk::new(peer_addrs, ClerkConfig::default());
//! clerk.join(BTreeMap::from([(gid, servers)])).await?;   // -> new config number
//! clerk.leave(vec![gid]).await?;  clerk.move_shard(shard, gid).await?;
//! let latest: Config = clerk.query(None).await?;  let old = clerk.query(Some(3)).await?;
//! ```
//!
//! ## Guarantees and how
//!
//! - **Placement** ([`placement`]): after every Join and Leave each group
//!   holds `floor(S/n)` or `ceil(S/n)` shards, and exactly the fewest
//!   possible shards move (the larger targets go to the groups already
//!   holding most, ties to the smaller gid; over-target groups keep their
//!   lowest-numbered shards; freed shards fill groups in gid order). Shards
//!   are [`UNASSIGNED`] only while there are no groups; then each is
//!   parked with the group that held it last (`Config::parked_shards`),
//!   which keeps its data frozen until the next Join gives it a new owner.
//!   Move does not rebalance (the next Join or Leave does).
//! - **Load-aware placement** ([`load`]): [`ConfigOp::BalanceLoad`]
//!   carries a load per shard and a move limit; each move takes a shard
//!   from a group at the maximum load to the least-loaded group, only if
//!   it lowers the busier of the two by more than 10 % of the mean group
//!   load. The maximum never rises, at most the limit of shards move, and
//!   with equal loads a count-balanced placement stays as it is (so Join
//!   and Leave keep their fewest-moves property). Counts may end uneven;
//!   the next Join or Leave balances them again.
//! - **Immutable, bounded retention**: configuration `n` never changes
//!   once made. shardkv groups walk them one by one and report each one
//!   they applied ([`ConfigOp::Report`], one log entry per group per
//!   change); a configuration is dropped once every group a kept
//!   configuration lists reported passing it, and never more than
//!   [`Limits::max_retained_configs`] (K, default 256) are kept whatever
//!   the reports say. A dropped number gets [`ConfigError::Pruned`] naming
//!   the oldest kept; a shardkv group that holds no shard jumps there, one
//!   that holds shards and fell more than K changes behind stays where it
//!   is and logs the error (see [`history`]). So memory and snapshots are
//!   bounded by K configurations plus one report per listed group. Groups
//!   per configuration and servers per group are bounded ([`Limits`]).
//! - **Lost groups**: [`ConfigOp::DeclareLost`] removes a group whose
//!   replicas are gone for good (as Leave would) and records it in
//!   [`Config::lost_groups`] from then on; shardkv installs its shards
//!   empty, its gid may never join again, and retention stops waiting for
//!   its reports (see [`history`]).
//! - **Bad requests** (gid 0, an empty request, a group with no or too many
//!   servers, join of an existing or a lost group, leave or move of an unknown one, a
//!   gid listed twice, a shard out of range, a query of a future number)
//!   get a typed [`ConfigError`] and change no configuration. Those that do
//!   not depend on the state are refused before proposing (no log entry).
//! - **Exactly once**: a change carries `(client_id, seq)`; the machine
//!   records each client's latest change and its answer in the rsm's shared
//!   session table (bounded, idle expiry in log time, in the snapshot); a
//!   retry gets the recorded answer.
//! - **Linearizable queries**: a query of an existing number is answered by
//!   any replica from its applied state (the configuration is committed and
//!   can never differ); the latest, or a number not known locally, is a
//!   ReadIndex read on the leader ([`QueryPath::ReadIndex`], the default):
//!   no log entry, so asking for a future number costs the log nothing.
//!   [`QueryPath::Log`] puts such queries in the log instead.
//! - **Polls cost no log entry**: [`ConfigOp::QueryApplied`]
//!   ([`Clerk::query_applied`]) answers from what the leader has applied
//!   ("not yet", or a latest that may lag by a moment), never through the
//!   log. shardkv's pollers and clerks use it, so an idle cluster leaves
//!   the controller's log as it is; a lagging answer only delays the next
//!   poll. [`ConfigOp::Query`] stays the linearizable read.
//! - **Snapshots** when the Raft state reaches `max_raft_state` (the rsm's
//!   trigger); a snapshot that does not decode or breaks an invariant stops
//!   the replica rather than serve other state.
//!
//! ## Tests
//!
//! ```text
//! cargo test -p shardctrler                          # unit + property tests
//! cargo bench -p shardctrler --bench placement       # 1024 shards x 100 groups
//! RUSTFLAGS="--cfg madsim" cargo test -p sim-tests --test it shardctrler:: \
//!     --target-dir target/sim                        # the 6.5840 Lab 5A suite
//! MADSIM_TEST_NUM=20 ...; MADSIM_TEST_CHECK_DETERMINISM=1 ...
//! RUSTFLAGS="--cfg madsim" cargo run -p sim-tests --bin swarm \
//!     --target-dir target/sim -- --seeds 5           # includes this layer
//! ```
//!
//! - `tests/placement.rs` (proptest): random join/leave/move histories up
//!   to 100 groups and 1024 shards: balance after every Join/Leave, moved
//!   count equal to [`placement::minimum_moves`], no group both gives and
//!   takes; `minimum_moves` itself against a brute-force search over every
//!   balanced assignment; from a balanced start one join/leave touches
//!   only that group.
//! - `tests/load.rs` (proptest): random assignments and loads, up to 100
//!   groups and 1024 shards: at most `max_moves` moves, the maximum never
//!   rises, each move from a busiest to a least-loaded group and worth the
//!   margin, no move left worth making when it stops early (tried against
//!   every receiver), `k + j` moves equal `k` then `j`, and equal loads
//!   move nothing from a placement `rebalance` made.
//! - `tests/history.rs`, `tests/machine.rs`: every operation, every refusal
//!   (nothing changes), exactly-once, stale seqs, session expiry, snapshot
//!   round trip and refusal of bad snapshots; a Move that changes nothing
//!   makes no configuration.
//! - `tests/retention.rs`: reports drop what every listed group passed, a
//!   group that never reported or that left holds what it may still need,
//!   bad reports are refused, the hard bound holds over 5000 changes (an
//!   old number gets `Pruned`), and the machine's snapshot stays the same
//!   size from 1000 to 4000 changes.
//! - `sim-tests/tests/it/shardctrler.rs`: `ctrler_basic_5a`,
//!   `ctrler_minimal_again_5a`, `ctrler_multi_5a`; every client call is
//!   recorded and the whole history checked (see
//!   `sim_tests::shardctrler::history`).
//!
//! ## Status
//!
//! - Built: placement, history, machine, server, clerk, sim suite, swarm
//!   scenario. The three Lab 5A tests pass 20 seeds and
//!   `MADSIM_TEST_CHECK_DETERMINISM=1`; the swarm (seeds 1-3) passes,
//!   including runs with lost messages, crashes, partitions, 5 replicas,
//!   256 shards and changes whose outcome the clerk never learnt.
//! - Queries of the latest configuration are ReadIndex reads by default
//!   (since 2026-12-03). The determinism failure once seen with them
//!   (shardkv suite, seed 15, divergence at about 548 ms, recorded on
//!   2026-11-22) does not reproduce on this code: with the controller on
//!   ReadIndex and, to stress it, the shardkv pollers sending linearizable
//!   Query instead of QueryApplied, `MADSIM_TEST_CHECK_DETERMINISM=1`
//!   passes the whole shardkv suite on seeds 1..11. Its cause was not
//!   identified (no HashMap, clock or unseeded random is left on the read
//!   path of rsm and raft; the code of that time had none either, so it was
//!   probably fixed by one of the raft/rsm changes since, which this
//!   session could not bisect). A second look on 2026-12-03 ran the
//!   determinism check on seeds 1..40, with the default pollers and with
//!   pollers sending `Query`. Every seed passed, and the cause is still
//!   unknown: docs/status.md lists what was checked.
//! - Retention: the latest K configurations at most, fewer once groups
//!   report (see above); kept configurations are stored in full (no delta
//!   encoding), so K bounds the snapshot at K configurations.
//! - Placement measured with criterion on the shared 2-core machine under
//!   a load average of about 14 (other agents building): join of the
//!   100th group to 99 balanced groups 83 µs, leave of one of 100 groups
//!   80 µs, join after 300 moves 76 µs, all 100 groups joining at once
//!   27 µs (1024 shards).

pub mod clerk;
pub mod config;
pub mod history;
pub mod load;
pub mod placement;
pub mod rpc;
pub mod server;

pub use clerk::{Clerk, ClerkConfig, ClerkError, ControllerClient};
pub use config::{Config, Gid, UNASSIGNED};
pub use history::{ConfigAnswer, ConfigError, ConfigHistory, ConfigOp, Limits};
pub use rpc::{ControllerRequest, Reply, ServerError};
pub use server::{
    ControllerMachine, ControllerServer, ControllerServerConfig, ControllerStatus, QueryPath,
    StartError,
};
