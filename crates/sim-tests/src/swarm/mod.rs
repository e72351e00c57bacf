//! The swarm: one randomized fault simulation per seed, over every layer
//! built so far, with a readable report.
//!
//! Each layer contributes a scenario. A scenario draws its shape from the
//! seed (node count, fault mix), runs a **fault phase**, then a **heal
//! phase** in which every fault stops and the system must converge within a
//! bound, and finally checks its invariants. Layers so far: labrpc,
//! mapreduce, raft, kvraft, membership change (kvraft groups), shardctrler,
//! shardkv, shardkv with every collection type (checked under the
//! `collections` model, replicas compared key by key), and the server.

pub mod collections_scenario;
pub mod kvraft_scenario;
pub mod labrpc_scenario;
pub mod mapreduce_scenario;
pub mod membership_scenario;
pub mod raft_scenario;
pub mod server_scenario;
pub mod shardctrler_scenario;
pub mod shardkv_scenario;

/// Runs every layer's scenario in this simulation (one seed), bottom layer
/// first. A layer adds itself here with one line.
pub async fn run_all() -> Vec<Report> {
    vec![
        labrpc_scenario::run().await,
        mapreduce_scenario::run().await,
        raft_scenario::run().await,
        kvraft_scenario::run().await,
        membership_scenario::run().await,
        shardctrler_scenario::run().await,
        shardkv_scenario::run().await,
        collections_scenario::run().await,
        server_scenario::run().await,
    ]
}

use std::collections::BTreeMap;
use std::fmt;

/// What one scenario did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub layer: &'static str,
    pub nodes: usize,
    pub clients: usize,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    pub rpcs_sent: u64,
    pub rpcs_delivered: u64,
    pub bytes: u64,
    pub calls_ok: u64,
    pub calls_failed: u64,
    /// Each invariant checked, with whether it held and what was seen.
    pub checks: Vec<(String, Result<(), String>)>,
}

impl Report {
    pub fn check(&mut self, name: &str, outcome: Result<(), String>) {
        self.checks.push((name.to_string(), outcome));
    }

    pub fn passed(&self) -> bool {
        self.checks.iter().all(|(_, outcome)| outcome.is_ok())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  layer {}: {} nodes, {} clients",
            self.layer, self.nodes, self.clients
        )?;
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(kind, count)| format!("{kind}={count}"))
            .collect();
        writeln!(
            f,
            "    faults: {}",
            if faults.is_empty() {
                "none".into()
            } else {
                faults.join(" ")
            }
        )?;
        writeln!(
            f,
            "    rpcs: sent={} delivered={} bytes={}; calls ok={} failed={}",
            self.rpcs_sent, self.rpcs_delivered, self.bytes, self.calls_ok, self.calls_failed
        )?;
        for (name, outcome) in &self.checks {
            match outcome {
                Ok(()) => writeln!(f, "    ok   {name}")?,
                Err(seen) => writeln!(f, "    FAIL {name}: {seen}")?,
            }
        }
        write!(
            f,
            "    verdict: {}",
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}
