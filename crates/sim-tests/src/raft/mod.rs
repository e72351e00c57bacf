//! The Raft tester: 6.5840's `config.go` in our own code, on the simulated
//! network, with Raft's safety properties checked on every step.
//!
//! ```text
//!   test (tests/raft.rs)                         simulated nodes 0..n
//!   ─────────────────────                        ──────────────────────────────
//!   Tester::one(cmd) ── RaftNode::start ───────> event loop ── labrpc ──> peers
//!   crash / start / disconnect / connect          │ │
//!        (labrpc::sim::Network)                   │ └─ ApplyMsg ──> applier task
//!                                                 │                  (Service:
//!   Observer after every durable write ───────────┘                   the lab's
//!        └──> invariants::Checker (panics on a broken property)       checkLogs)
//! ```
//!
//! - [`tester`]: a cluster on the simulated network with the lab's helpers
//!   (`one`, `check_one_leader`, `check_terms`, `n_committed`, `wait`,
//!   `crash1`, `start1`, `disconnect`, `connect`, RPC and byte counters).
//! - [`service`]: what the tester's applier checks on every `ApplyMsg`: every
//!   server applies the same command at each index, in order, and snapshots
//!   hold exactly the state they claim.
//! - [`invariants`]: one file per safety property of the Raft paper, fed by
//!   the driver's observer hook (`raft::node::Observer`).

pub mod invariants;
pub mod service;
pub mod tester;
