//! # rsm: the replicated state machine under every service
//!
//! kvraft, the shard controller and shardkv are siblings on this crate.
//! It holds what they share: the server loop that replicates a
//! deterministic machine with Raft ([`Rsm`]), the exactly-once table
//! ([`session`]), and the leader-finding caller with the client half of
//! exactly-once ([`group_client`]).
//!
//! A service implements [`ReplicatedMachine`] (a pure, deterministic
//! `apply`, plus `snapshot`/`restore`) and runs it in an [`Rsm`]. The rsm
//! starts Raft, applies committed entries in log order on every replica,
//! answers each local proposal with its own entry's output, stamps
//! proposals with the leader's logical time, and snapshots when the stored
//! Raft state reaches `max_raft_state` bytes.
//!
//! ```text
//!  service handler (its own labrpc method)
//!     │ rsm.with_machine(|m| ..)      local precheck (sizes, a recorded reply)
//!     │ rsm.submit(command) ──┐       leader? stamp log time; register a waiter
//!     │ rsm.read(|m, ctx| ..) │       under this proposal's id; propose
//!     │         │             ▼
//!     │         │   raft.start(Envelope{proposal id, stamp_ms, command})
//!     │         │             │ replicate, commit (every replica)
//!     │         │             ▼
//!     │         │   apply task: log time = max(log time, stamp_ms)
//!     │         │     output = machine.apply(command, {index, log time})
//!     │         │     own proposal?      -> its waiter gets `output`
//!     │         │     waiters placed <= index, not answered -> dropped
//!     │         │     raft state >= max_raft_state -> copy the machine;
//!     │         │       on the blocking pool: raft.snapshot(index,
//!     │         │         {log time, copy.snapshot_into(frame)})
//!     │         ▼
//!     │   ReadIndex: raft.read_index() (a heartbeat round confirms the
//!     │   lead; concurrent reads share one round), wait until applied
//!     │   >= that index, run the closure on &M
//!     ▼
//!  Ok(output) | WrongLeader{leader_hint} | Timeout | Busy
//! ```
//!
//! ## Using it
//!
//! ```text
//! let rsm = Rsm::start(RsmConfig::new(id, peer_addrs, seed), machine, storage).await?;
//! rsm.serve(|router| {                           // Raft's methods are added by serve
//!     router.add::<MyRequest, _, _>(..);         // the service's methods
//! }).await?;                                     // one labrpc server at peer_addrs[id]
//!
//! // a handler: a local precheck, then one of
//! rsm.read_reply(|machine, context| machine.read(&op, context.now_ms)).await
//! rsm.submit_reply(command, |output| output).await
//! ```
//!
//! A service puts all its methods (shardkv: client requests and shard
//! transfers) on the one server Raft also uses.
//!
//! ## Contracts
//!
//! - A proposal is identified by `(incarnation, number)`: a random id drawn
//!   when this replica started and a counter. Its waiter matches only its
//!   own entry, so services need not put client ids in commands to be
//!   answered correctly (exactly-once is a separate matter: see
//!   [`crate::session`]).
//! - `submit` answers `Ok` only with the output of the caller's own entry
//!   (with [`EarlyAcks`], asynchronous replication, possibly before the
//!   entry commits: the output the machine predicted, which is checked
//!   when the entry applies).
//!   `WrongLeader` means the proposal was not made or lost its place;
//!   `Timeout` means it may still apply (retry with the same
//!   exactly-once identity); `Busy` means nothing was proposed.
//! - Log time ([`ApplyContext::now_ms`]) is the largest stamp applied so
//!   far, identical on every replica at every index and carried in the
//!   snapshot. A leader's stamps advance from its last apply at its local
//!   clock's rate.
//! - `read` waits until the replica has applied through the read index.
//!   Raft hands the service only command entries, and a read index is
//!   often a new leader's no-op; so "applied through" is what Raft reports
//!   handed over once the apply channel is empty (Raft reports after
//!   sending), not the last command's index.
//! - Entries and snapshots from a leader are decoded before Raft stores
//!   them (`raft::core::Config::payload_check`): one that does not decode
//!   is refused, logged and counted, and never reaches the disk. A
//!   committed entry or a snapshot that still fails (a snapshot frame that
//!   decodes but whose machine state does not restore, or damage on this
//!   node's own disk, or a newer format version written there before a
//!   rollback) stops the replica rather than serve other state: through
//!   Raft's fatal path (`RaftNode::stop_fatal` with
//!   `FatalReason::Unusable`, naming the index and why; for a newer
//!   version, the version and "upgrade this node"), not a panic, so the
//!   state lock is not poisoned and `on_fatal` ends a server's process
//!   (exit 65). Nothing of that entry is applied.
//! - Entries and snapshots carry format versions (the shared `codec`
//!   crate's header): the rsm's own layout (`rsm log entry` / `rsm
//!   snapshot`: version 2 for the address entries and snapshots that hold
//!   addresses, 1 otherwise) and the machine's
//!   ([`ReplicatedMachine::FORMAT_VERSION`], raised when its commands or
//!   state change shape). A version newer than this build's is refused
//!   with an error naming the data and both versions: a follower's
//!   payload check refuses such an entry or snapshot, so it is never
//!   stored. A machine version older than
//!   [`ReplicatedMachine::OLDEST_READABLE_FORMAT_VERSION`] is refused the
//!   same way, never decoded into the newer shape. Entries and snapshots
//!   written before versions existed (no header) read as version 1 of
//!   both. Decoding is bounded:
//!   an entry by `codec::ENTRY_LIMIT`, a snapshot by `codec::STATE_LIMIT`.
//! - Bounds: pending proposals and reads (`max_pending_proposals`), how
//!   long a proposal or read waits (`apply_wait`); the apply channel is
//!   Raft's. Message sizes come from one number, `max_message_bytes`
//!   (labrpc's 16 MiB by default): Raft's entry, batch and snapshot-piece
//!   bounds are derived from it ([`fit_raft_to_message_limit`]), so every
//!   message Raft sends fits, snapshots included (sent in pieces).
//! - A storage failure stops the replica; with `on_fatal` set to
//!   `FatalHook::exit_process` it ends the process (exit 74; 65 for
//!   committed state this build cannot use, above).
//!
//! ## Pieces
//!
//! | file | what |
//! |---|---|
//! | `replica.rs` | [`Rsm`], [`RsmConfig`], [`SubmitError`]: the server loop; [`Rsm::read_reply`] and [`Rsm::submit_reply`]: how every service handler ends (a read or a command, the rsm's refusal turned into the service's error); [`Rsm::serve`] and [`ListenError`]: the replica's labrpc server; [`StartError`]: why a replica did not start |
//! | `format.rs` | how entries (a machine's command, or the rsm's own `PeerAddress`) and snapshots are written for Raft and read back, behind version headers; the payload check Raft runs before storing a leader's entries |
//! | `machine.rs` | [`ReplicatedMachine`] (the contract, with the default snapshot and restore), [`ApplyContext`], [`RestoreError`] |
//! | `membership.rs` | [`Rsm::change_membership`] (the new member's address recorded on every replica through the log first), [`Rsm::transfer_leader`], [`ChangeError`] |
//! | `clock.rs` | the leader's logical clock (stamps proposals) |
//! | `waiters.rs` | proposals waiting for their entry |
//! | `read_batch.rs` | concurrent reads share one confirmation: a leader's heartbeat round, a follower's ask |
//! | `follower_read.rs` | [`Rsm::read_anywhere`]: linearizable reads on a follower (it asks its leader for a read index, [`AskReadIndex`], and reads once applied through it); [`Rsm::read_within`]: reads up to a bound old, reusing a grant asked for within it |
//! | `session.rs` | [`session::SessionTable`]: generic, serializable exactly-once table (bound, idle expiry in log time, export/import) |
//! | `group_client.rs` | [`group_client::GroupClient`], [`group_client::ClientSession`], [`group_client::SessionClient`]: leader finding, retries, backoff, deadline; client id and seq; the two together. [`group_client::SessionClerk`]: the clerk of one key/value group (an `api::KvClient`; kvraft's clerk). [`group_client::GroupClients`]: one group client per group, for callers that route by configuration (shardkv's clerk, the node's forwarder) |
//!
//! Time, randomness and spawning go through labrpc's runtime seam
//! (`labrpc::runtime`), so a simulation replays from its seed.
//!
//! ## Tests
//!
//! ```text
//! cargo test -p rsm     # unit: waiters, leader clock, session table;
//!                       # tests/rsm.rs: the rsm on real gRPC + files
//! RUSTFLAGS="--cfg madsim" cargo test -p sim-tests --test it kvraft:: \
//!     --target-dir target/sim   # the services' suites exercise it under faults
//! ```

mod clock;
mod early_ack;
mod follower_read;
mod format;
pub mod group_client;
mod machine;
mod membership;
mod read_batch;
mod replica;
pub mod session;
mod waiters;

/// The shared codec's encoder, for machines' tests and callers that build
/// snapshot bytes by hand.
pub use codec::encode;
pub use early_ack::{
    DEFAULT_MAX_UNREPLICATED, EarlyAcks, SpeculationStats, mispredictions_in_process,
};
pub use follower_read::{AskReadIndex, ReadGrant};
pub use machine::{ApplyContext, ReplicatedMachine, RestoreError};
pub use membership::{ChangeError, reflects};
pub use replica::{
    Applied, AppliedHook, DEFAULT_MAX_RAFT_STATE_BYTES, ListenError, LogPlace, Rsm, RsmConfig,
    RsmStatus, StartError, SubmitError, fit_raft_to_message_limit,
};
