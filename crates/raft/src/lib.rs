//! # raft: the replicated log (6.5840 Lab 3)
//!
//! Raft keeps a log of commands identical on a majority of a group of
//! nodes, so that a service applying the log in order behaves as one
//! fault-tolerant machine. This crate has three parts, readable in this
//! order:
//!
//! - [`core`]: one Raft node as a plain synchronous state machine, in the
//!   style of etcd/raft and raft-rs. No clock, no network, no disk, no
//!   global randomness: it counts ticks, takes messages, and says what to
//!   do in a [`core::Ready`].
//! - [`storage`]: where a node keeps its term, vote, log and snapshot
//!   ([`storage::Storage`]; in memory, or in checksummed, versioned,
//!   crash-safe files on a real disk through tokio's blocking pool, or on a
//!   simulated disk that loses unsynced writes when its node is killed).
//!   The log lives in append-only segments, removed whole once a snapshot
//!   covers them, so a restart reads only what is kept; term and vote have
//!   their own file. Loading checks the snapshot against the log and
//!   refuses files that disagree, or of an unknown format version, so a
//!   damaged replica does not start.
//! - [`node`]: the driver, an async task that runs the core on the runtime
//!   seam (tokio, or madsim under `--cfg madsim`), talks to peers through
//!   a [`node::Transport`] (`labrpc` in production and simulation, or the
//!   in-process [`node::LocalNetwork`] for benches), and offers the 6.5840 API: [`node::RaftNode::make`],
//!   `start(command) -> Option<(index, term)>`, `state() -> (term,
//!   is_leader)`, `snapshot(index, data)`, `read_index()`, `kill()`, and
//!   [`node::ApplyMsg`]s on a bounded channel; and, as additions,
//!   `propose_membership_change(change)` and `transfer_leader(target)`. A storage failure (ENOSPC,
//!   EIO) stops the node for good: its owner gets a typed
//!   [`node::FatalError`] and the [`node::FatalHook`] runs (a server
//!   binary's ends the process, exit code 74).
//!
//! ## The loop
//!
//! Whoever drives a [`core::RawNode`] (the async driver, a test, a bench)
//! runs this loop:
//!
//! ```text
//!        every 10 ms            from the network          from the service
//!            |                        |                          |
//!         tick()              step(message)              propose(command)
//!            |                        |                   snapshot(index, data)
//!            v                        v                          v
//!   +----------------------------------------------------------------------+
//!   |                        RawNode (sans-IO core)                        |
//!   |  role, term, vote | log + commit/applied/stable | progress per peer  |
//!   +----------------------------------------------------------------------+
//!            |  has_ready()?  ready() -> Ready
//!            v
//!   1. persist   Ready.snapshot (if persist) + entries + hard_state,
//!                in ONE durable write (group commit)    --> Storage::save
//!   2. send      Ready.messages (they may promise what step 1 saved:
//!                a vote, a term, entries acknowledged)  --> network
//!                and Ready.snapshot_reads, each a piece of the stored
//!                snapshot read back      --> Storage::read_snapshot_piece
//!   3. apply     Ready.snapshot (if apply), then Ready.committed_entries,
//!                in order                               --> service
//!   4. advance(ready): the core learns what is now stable and applied
//! ```
//!
//! The order is what makes it safe: a node never sends a message that
//! depends on state it could lose in a crash. Everything the core does in
//! between (elections, replication, commitment) is triggered by the three
//! inputs and shows up only in the next `Ready`.
//!
//! Two refinements of that order in the driver (`node/event_loop.rs`), each
//! because no message promises what it moves:
//! - a `Ready` whose only change is the commit index is not written: the
//!   index goes with the next write that must be durable anyway (etcd's
//!   `MustSync`). The commit index is volatile state (paper Figure 2);
//!   after a crash the stored one may be behind, the core takes at least
//!   the snapshot's index as committed, and the leader tells the rest.
//!   Writing it at once would cost every node an fsync each time entries
//!   commit, in the path of every write.
//! - a leader's AppendEntries and heartbeats go out before its own write
//!   (thesis 10.2.1), so its fsync and its followers' overlap; the core
//!   counts the leader's own entries only once stable (after `advance`),
//!   and a write that changes the term or vote keeps every message back.
//!
//! And one about what a round takes in: while the events it handled left
//! entries to write, the loop gives way to the node's other tasks (up to
//! three times, stopping at a turn that brings nothing) and takes what they
//! queued meanwhile into the same round, so the round's one fsync carries
//! more entries. A round with nothing to write (heartbeats, lease reads)
//! does not wait.
//!
//! One exception to step 1, because no message promises it: a snapshot
//! the node's own service took is written by a task of its own
//! (`Storage::stage_snapshot`) while the loop goes on, and installed (a
//! rename, the covered segments removed) once written. Until then the
//! stored log still holds every entry the snapshot covers, so a crash
//! loses nothing; the node restarts from the older snapshot and replays
//! more of the log. The core's snapshot is meanwhile ahead of the stored
//! one (the observer is told when it is stored). Written in line, a large
//! snapshot held the loop for 0.4-1.6 s under load, stalling its group. A
//! leader's snapshot is still saved in line, after any staged one.
//!
//! **The snapshot lives on disk, not in memory.** The core needs the
//! latest snapshot's bytes only to send them to a follower that fell
//! behind the log, and they are as large as the service's state. Once the
//! driver has stored a snapshot (saved, staged and installed, or loaded at
//! restart) and the storage reads pieces back
//! (`Storage::reads_snapshot_pieces`: `FileStorage` and `MemoryStorage`
//! do), it calls `RawNode::snapshot_stored(meta)`, and the core keeps only
//! the metadata and size; each piece it would send becomes a
//! `SnapshotRead` in `Ready::snapshot_reads`, which the driver reads from
//! the snapshot file (checked whole against its CRC on the first read)
//! and sends as `InstallSnapshot`. A read that finds a newer snapshot
//! stored sends nothing; the leader's retry starts the follower on the
//! newer one. `NodeStatus::snapshot_held_bytes` shows what is still held
//! (`tests/snapshot_from_disk.rs`).
//!
//! ## Time
//!
//! The core counts ticks; the driver ticks every
//! [`core::TICK_INTERVAL_MS`] = 10 ms. Defaults ([`core::Config::new`]):
//! heartbeats every 10 ticks (100 ms: at most 10 per second, the lab's
//! limit) and election timeouts drawn from 30..60 ticks (300-600 ms) by a
//! ChaCha8 RNG seeded from the config, so a run replays from its seed. A
//! new leader is normally elected within one or two timeouts (under 1.5 s),
//! well inside the lab's 5 s.
//!
//! ## What the core implements
//!
//! - Leader election with randomized timeouts, one vote per term, the
//!   up-to-date rule (paper 5.2, 5.4.1).
//! - PreVote (thesis 9.6, `Config::pre_vote`, on by default): a node first
//!   asks whether a majority would vote for it, without changing its term;
//!   pre-votes are granted only to up-to-date logs by nodes that have not
//!   heard from a leader for a minimum election timeout. A node cut off
//!   from the group does not inflate its term and does not depose a healthy
//!   leader when it rejoins. See `core/election.rs`.
//! - Vote re-sends (`Config::vote_resend_interval_ticks`,
//!   `vote_resends_per_round_max`): a (pre-)candidate asks the peers that
//!   have not answered again every 10 ticks, at most 3 times a round, so a
//!   lost request or reply costs 100 ms, not a new election timeout (two
//!   with PreVote). Repeating is safe: a pre-vote changes nothing and a
//!   voter grants its vote again to the candidate it voted for.
//! - CheckQuorum (thesis 6.2 and 4.2.3, `Config::check_quorum`, on by
//!   default): a leader that heard from no majority during a minimum
//!   election timeout steps down; a node that heard from its leader within
//!   that time disregards vote requests.
//! - Log replication with fast backup: a rejecting follower returns the
//!   conflicting term and its first index, so the leader skips a whole term
//!   per round trip (paper 5.3 and the 6.5840 guide).
//! - Commitment only by counting replicas of current-term entries (paper
//!   5.4.2, Figure 8); the leader counts its own entries once persisted.
//! - Snapshots: the service compacts the log with `snapshot(index, data)`;
//!   a follower whose next entry was compacted gets InstallSnapshot
//!   (paper 7) in pieces of at most `snapshot_chunk_bytes` (4 MiB, under
//!   the entry bound, so a piece fits a labrpc message), one piece per
//!   answer, each answer saying how many bytes the follower holds (a lost
//!   piece is sent again after `snapshot_retry_ticks`, from there, not
//!   from the start); every piece carries the CRC-32 of its bytes, and a
//!   piece that fails it is refused and asked for again; the follower
//!   keeps the pieces in order in memory,
//!   bounded by `max_snapshot_bytes`, and installs after the last
//!   (`core_snapshot_pieces.rs`); restart resumes from the stored
//!   snapshot and log.
//! - Throughput: all proposals between two `Ready`s go out batched (bounded
//!   by entries and bytes per message), and several batches per follower
//!   may be in flight (bounded); a rejection or a stalled pipeline falls
//!   back to probing. See `core/progress.rs`.
//! - ReadIndex reads (paper section 8): `read_index(context)` confirms
//!   leadership with one heartbeat round and hands back the index a read
//!   must wait for, without writing to the log. See `core/read_only.rs`.
//! - Lease reads (thesis 6.4.1, `Config::lease_reads`, off by default here,
//!   on in `rsm`): a confirmed round gives the leader a lease of
//!   `Config::read_lease_ms` on its clock (`RawNode::set_now_ms`), during
//!   which `read_index` answers at once; each heartbeat round renews it
//!   (`core/replication.rs`, `renew_lease`). Safe under a clock-drift bound
//!   (`lease_clock_drift_percent`) because CheckQuorum voters refuse votes
//!   for a minimum election timeout after hearing from the leader; a node
//!   grants no vote for that long after it starts, and a transfer or a
//!   membership change ends the lease. `tests/cluster_lease.rs`: no stale
//!   read inside the bound under faults, stale reads past it, and each
//!   rule red when removed. The driver answers such reads beside its loop
//!   (`RaftNode::lease_read_index`, from the lease the loop publishes
//!   before anything of a round leaves it); `tests/node_lease.rs`: they
//!   stop when the lease ends and before any new leader is elected.
//! - Bounds: uncommitted entries counted and in bytes
//!   (`max_uncommitted_bytes`), bytes per entry (`max_entry_bytes`, so one
//!   entry alone fits a labrpc message), pending reads, entries and bytes
//!   per message, entries per `Ready`, batches in flight, vote re-sends,
//!   snapshot retries.
//! - Membership change (`core/membership.rs`, `docs/membership.md`):
//!   single-server changes (add a voter, add a learner, promote a learner,
//!   remove a node) through [`core::RawNode::propose_membership_change`],
//!   with the 2015 fix (a leader changes the configuration only after
//!   committing an entry of its term, and one change at a time). A
//!   configuration is a log entry ([`core::EntryKind::Config`]) holding the
//!   whole new [`core::Membership`], in force once appended; the snapshot
//!   metadata carries it, so restarts rebuild it from snapshot + log.
//!   Learners get the log and snapshots but neither vote nor count for
//!   commitment, and are promoted only within
//!   `Config::max_learner_lag_entries` of the leader. A leader that
//!   removed itself steps down once the removal commits; a node that is
//!   not a voter never campaigns, and voters refuse vote requests from
//!   non-voters, so a removed node cannot disrupt the group.
//! - Leadership transfer (thesis 3.10, [`core::RawNode::transfer_leader`]):
//!   the leader refuses proposals, brings the target (a voter) up to
//!   date, and sends it `TimeoutNow`; the target campaigns at once,
//!   without PreVote, and its vote requests carry `leadership_transfer`,
//!   so voters grant them despite having heard from the leader recently.
//!   Abandoned after `election_timeout_ticks_min` ticks
//!   (`core_transfer.rs`).
//! - Peer input is validated, never asserted (`core/validate.rs`): a
//!   message a peer could send that breaks what the handlers rely on (a
//!   term or index that would overflow, a second leader in a term, entries
//!   with a gap or terms out of order, a reply beyond the leader's log, a
//!   payload the service cannot decode, per `Config::payload_check`, a
//!   configuration that does not decode) is
//!   refused by `step` with a typed [`core::StepError`], logged, and
//!   counted ([`core::RawNode::refused_messages`],
//!   [`node::NodeStatus::peer_messages_refused`]); it changes nothing. The
//!   asserts left in the core guard the node's own invariants
//!   (`core_hostile.rs` sends each forged message).
//!
//! ## Tests
//!
//! `cargo test -p raft` runs:
//! - exact-output tests of the core (`tests/core_*.rs`): one event in, the
//!   exact `Ready` out (`core_prevote.rs` for PreVote and CheckQuorum,
//!   `core_vote_resend.rs` for re-sends, `core_membership.rs` for
//!   membership changes and their refused interleavings, `core_bounds.rs` for the byte
//!   bounds against labrpc's message limit, `core_hostile.rs` for forged
//!   and corrupt peer messages; the other files pin the classic
//!   rules with PreVote, CheckQuorum and re-sends off);
//! - `tests/cluster_membership.rs`: 200 seeded runs of 5 cores (3 bootstrap
//!   voters, 2 outside) under the same faults while the leader changes the
//!   configuration and hands leadership over at random, with the same
//!   checks every tick, then every node is added back and all converge;
//! - `tests/cluster_safety.rs`: ~950 seeded runs of 3, 5 and 7 cores
//!   exchanging messages through a queue that drops, delays, reorders and
//!   partitions, with crashes and restarts from storage, checking election
//!   safety, log matching, leader completeness and state machine safety on
//!   every tick, then healing and requiring convergence;
//! - `tests/storage_file.rs`: real-file storage against torn and corrupted
//!   files (a crash at every byte of every save loads the state before or
//!   after it; a log cut anywhere below its acknowledged length, record
//!   boundaries included, is refused), snapshot and log files that
//!   disagree (refused with [`storage::StorageError::Inconsistent`] naming
//!   both), and a property test against the in-memory model;
//! - `tests/storage_segments.rs`: a log 38 times the snapshot threshold
//!   restarts reading only what is kept (bytes read are bounded and
//!   asserted) and writing nothing; conflicts and snapshots append, never
//!   rewrite; the vote outlives a lost log, a lost hard state file is
//!   refused; files of a newer format version are refused by name;
//! - `tests/storage_failure.rs`: a disk that fills under a running node;
//! - `tests/node_loopback.rs`: three drivers over real labrpc on loopback.
//!
//! The driver and file storage on madsim's network and disk are tested in
//! sim-tests (`crates/sim-tests/tests/it/raft_node.rs`: a node restarting
//! from its files while cut off from the others; `raft_storage.rs`: a killed
//! node loses its unsynced writes and still loads every acknowledged save),
//! with the other simulation suites, so that they share its build.
//!
//! `cargo bench -p raft --bench core_throughput`: commits/s and latency of
//! the core alone (3 nodes, one thread, in-memory messages and storage).
//! `cargo bench -p raft --bench driver_throughput`: the same through the
//! whole driver (see "Performance" below).
//! `cargo bench -p raft --bench allocations`: heap allocations per
//! committed entry in the core (a counting allocator; docs/status.md).
//! `cargo bench -p raft --features vs-openraft --bench vs_openraft`: the
//! driver and openraft side by side in one run (see "Performance").
//!
//! ## Performance
//!
//! `benches/driver_throughput.rs` runs three [`node::RaftNode`]s in one
//! process on a 2-thread tokio runtime, requests delivered in memory by
//! [`node::LocalNetwork`], logs in [`storage::MemoryStorage`], 16-byte
//! commands, every node's service snapshotting every 10 000 entries. `P`
//! closed-loop proposers call `start` on the leader and wait for the apply
//! on the leader; latency is from `start` to that apply.
//!
//! `benches/vs_openraft.rs` runs the same group and, in the same run and
//! shape, openraft (the crates.io release, through adapters of ours in
//! `benches/openraft_group/`: in-memory log and state machine, RPCs by
//! direct calls, the same snapshot interval), printing commits/s, p50,
//! p99 and the ratio ours / openraft for P = 1, 64, 256, 1024. openraft is
//! slow to build, so it comes only with the `vs-openraft` feature and
//! never under madsim. The measured tables, the profile and what it led
//! to are in `docs/status.md` ("raft driver against openraft"), with their
//! dates and machine load.
//!
//! The driver sends each peer's requests from one sender task, so
//! pipelined AppendEntries reach a follower in order (sent from a task per
//! request they raced, and every reordering cost a rejection and a probe).
//! An entry's payload is a reference-counted `bytes::Bytes`, shared by
//! the log, each `Ready`, the AppendEntries to every follower, the
//! in-memory storage and the `ApplyMsg` that hands it to the service, so
//! no layer copies it (it is encoded as the `Vec<u8>` it once was: no
//! format changed). Followers move the leader's entries into their log.
//! A proposal and an applied command take `try_send` when their channel
//! has room and wait only when it is full.
//!
//! ## Status
//!
//! The 6.5840 Lab 3 suite runs under simulation in
//! `sim-tests/tests/it/raft.rs` (every TESTS.md name plus
//! `raft_invariants_swarm`), with invariant checkers fed by
//! [`node::Observer`] after every durable write, and
//! `prevote_rejoin_no_disruption` (a follower cut off for ten election
//! timeouts rejoins without changing the leader or the term; it fails with
//! PreVote and CheckQuorum off) and `check_quorum_isolated_leader_steps_down`
//! (a leader cut off from every follower stops claiming to lead within 2 s;
//! it fails with CheckQuorum off). Membership change and leadership
//! transfer reach the driver as [`node::RaftNode::propose_membership_change`]
//! and [`node::RaftNode::transfer_leader`] (additions: `start` and `state`
//! are unchanged); `node_loopback.rs` adds a node as a learner, promotes
//! it, removes the leader and hands over. Not yet: the simulation suite
//! for it and the services above (`docs/membership.md`).

pub mod core;
pub mod node;
pub mod storage;
