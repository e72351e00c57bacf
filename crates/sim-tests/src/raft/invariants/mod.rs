//! Raft's safety properties (paper Figure 3), checked on every step of
//! every simulated Raft run.
//!
//! Each node's driver hands its [`Observation`]s to a `raft::node::Observer`:
//! once at start with what it loaded, then after every `Ready`, right after
//! the write is durable and before the messages that depend on it leave.
//! The [`Checker`] keeps a mirror of each node's storage ([`NodeLog`]) and
//! runs every property on every observation, one file per property:
//!
//! | file | property | paper |
//! |---|---|---|
//! | `election_safety.rs` | one leader per term; one vote per node per term | §5.2 |
//! | `log_matching.rs` | same index and term => same log up to there | §5.3 |
//! | `leader_completeness.rs` | committed entries are in every later leader's log | §5.4 |
//! | `state_machine_safety.rs` | one committed log at each index | §5.4.3 |
//! | `monotonic.rs` | term, snapshot, commit, applied only move forward; durability | Fig. 2 |
//! | `snapshot_consistency.rs` | snapshots cover committed entries, agree on content | §7 |
//!
//! A broken property panics at once with what broke (node, term, index);
//! in a madsim test that fails the run, and madsim prints the seed.
//!
//! What this does not see: the core's state between two `Ready`s (nothing
//! leaves a node then, so nothing can depend on it), and unstable entries
//! a leader holds before writing them.

mod election_safety;
mod leader_completeness;
mod log_matching;
mod monotonic;
mod node_log;
mod snapshot_consistency;
mod state_machine_safety;

use std::collections::BTreeMap;

use ::raft::core::{NodeId, PersistentState};
use ::raft::node::{Durable, Observation};

pub use election_safety::ElectionSafety;
pub use leader_completeness::LeaderCompleteness;
pub use log_matching::LogMatching;
pub use monotonic::Monotonic;
pub use node_log::{Link, NodeLog, chain};
pub use snapshot_consistency::SnapshotConsistency;
pub use state_machine_safety::{CommitPoint, StateMachineSafety};

/// Every property, over every node of one group.
#[derive(Debug, Default)]
pub struct Checker {
    logs: BTreeMap<NodeId, NodeLog>,
    election_safety: ElectionSafety,
    log_matching: LogMatching,
    leader_completeness: LeaderCompleteness,
    state_machine_safety: StateMachineSafety,
    monotonic: Monotonic,
    snapshot_consistency: SnapshotConsistency,
    observations: u64,
}

/// What the checker saw, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckerSummary {
    pub observations: u64,
    pub leader_terms: usize,
    pub entries_seen: usize,
    pub highest_commit_index: u64,
    pub leader_completeness_checks: u64,
}

impl Checker {
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Checks one observation.
    ///
    /// # Panics
    /// With the broken property, node, term and index.
    pub fn observe(&mut self, observation: &Observation) {
        if let Err(broken) = self.check(observation) {
            panic!(
                "raft invariant broken after {} observations: {broken}",
                self.observations
            );
        }
    }

    /// Like [`Checker::observe`], but returns what broke instead of
    /// panicking.
    pub fn check(&mut self, observation: &Observation) -> Result<(), String> {
        self.observations += 1;
        let node = observation.node;
        if let Durable::Loaded(loaded) = &observation.durable {
            self.check_durability(node, loaded)?;
        }
        let log_matching = &self.log_matching;
        let log = self.logs.entry(node).or_default();
        let new_links = log.apply(&observation.durable, |meta| {
            log_matching.chain_of(node, meta)
        })?;
        self.log_matching.record(node, &new_links)?;
        let log = &self.logs[&node];
        self.monotonic.observe(observation)?;
        self.election_safety.observe(observation)?;
        self.state_machine_safety.record_commit(
            node,
            observation.term,
            observation.commit_index,
            log,
        )?;
        let stored_snapshot = match &observation.durable {
            Durable::Loaded(state) => state.snapshot.as_ref(),
            Durable::Saved { snapshot, .. } => snapshot.as_ref(),
        };
        if let Some(snapshot) = stored_snapshot {
            self.snapshot_consistency.observe(
                node,
                snapshot,
                observation.commit_index,
                log,
                &self.state_machine_safety,
            )?;
        }
        self.leader_completeness
            .observe(observation, log, &self.state_machine_safety)?;
        Ok(())
    }

    /// Durability (Figure 2): a restarting node loads exactly what it made
    /// durable before (nothing at its very first start).
    fn check_durability(&self, node: NodeId, loaded: &PersistentState) -> Result<(), String> {
        let expected = self
            .logs
            .get(&node)
            .map(|log| &log.stored)
            .cloned()
            .unwrap_or_default();
        if *loaded == expected {
            return Ok(());
        }
        let describe = |state: &PersistentState| {
            format!(
                "hard state {:?}, snapshot {:?}, entries {:?}..={:?}",
                state.hard_state,
                state.snapshot.as_ref().map(|s| s.meta.clone()),
                state.entries.first().map(|e| (e.index, e.term)),
                state.entries.last().map(|e| (e.index, e.term)),
            )
        };
        Err(format!(
            "durability (Figure 2): node {node} restarted from {} but had made durable {}",
            describe(loaded),
            describe(&expected)
        ))
    }

    /// The mirror of what `node` has stored, if it ever started.
    pub fn node_log(&self, node: NodeId) -> Option<&NodeLog> {
        self.logs.get(&node)
    }

    pub fn summary(&self) -> CheckerSummary {
        CheckerSummary {
            observations: self.observations,
            leader_terms: self.election_safety.leader_terms(),
            entries_seen: self.log_matching.entries_seen(),
            highest_commit_index: self.state_machine_safety.highest_commit_index(),
            leader_completeness_checks: self.leader_completeness.checks(),
        }
    }
}
