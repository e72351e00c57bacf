//! Whole `distcache` nodes under a random fault mix.
//!
//! The six-node cluster of [`crate::server`] (a controller group and two
//! data groups started from one config table) with three recording
//! clients on `distcache-client`. For the fault phase the seed draws, step
//! after step: a node killed and restarted from its data directory, a node
//! paused and resumed, a node cut off from its peers (its clients still
//! reach it), or lossy peer links. Then everything heals, the clients run
//! 3 s more, and the whole history must be linearizable.

use std::collections::BTreeMap;
use std::time::Duration;

use madsim::rand::{Rng, thread_rng};

use super::Report;
use crate::server::{Cluster, NODES, random_node, run_under};

/// How long faults are injected, in simulated time.
const FAULT_PHASE: Duration = Duration::from_secs(20);
const CLIENTS: usize = 3;
/// Apart from the other layers' nodes in the same simulation.
const SUBNET: u8 = 50;

pub async fn run() -> Report {
    let cluster = Cluster::start(SUBNET);
    let mut faults = BTreeMap::new();
    let outcome = run_under(CLIENTS, &cluster, async |cluster| {
        inject_faults(cluster, &mut faults).await;
    })
    .await;
    let mut report = Report {
        layer: "server",
        nodes: NODES,
        clients: CLIENTS,
        faults,
        calls_ok: outcome.acknowledged,
        calls_failed: outcome.unknown,
        // Peer traffic (labrpc); client calls go over madsim's gRPC.
        rpcs_sent: cluster.net.total_rpc_count(),
        rpcs_delivered: cluster
            .nodes
            .iter()
            .map(|&node| cluster.net.rpc_count(node))
            .sum(),
        bytes: cluster.net.total_bytes(),
        ..Report::default()
    };
    report.check(
        "the cluster served (more than 20 acknowledged operations per client)",
        if outcome.acknowledged > 20 * CLIENTS as u64 {
            Ok(())
        } else {
            Err(format!("{} acknowledged", outcome.acknowledged))
        },
    );
    report.check(
        "the whole history (every acknowledged write) is linearizable",
        outcome.linearizable,
    );
    report
}

async fn inject_faults(cluster: &Cluster, counts: &mut BTreeMap<&'static str, u64>) {
    let deadline = labrpc::runtime::now() + FAULT_PHASE;
    while labrpc::runtime::now() < deadline {
        let node = random_node(cluster);
        let hold = Duration::from_millis(thread_rng().gen_range(200..2500));
        let kind = match thread_rng().gen_range(0..4) {
            0 => {
                cluster.net.kill(node);
                tokio::time::sleep(hold).await;
                cluster.net.restart(node).await;
                "kill_restart"
            }
            1 => {
                cluster.net.pause(node);
                tokio::time::sleep(hold).await;
                cluster.net.resume(node);
                "pause"
            }
            2 => {
                for &other in cluster.nodes.iter().filter(|&&other| other != node) {
                    cluster.net.cut_link(node, other);
                }
                tokio::time::sleep(hold).await;
                cluster.net.heal_all();
                "cut_off"
            }
            _ => {
                cluster.net.set_reliable(false);
                tokio::time::sleep(hold).await;
                cluster.net.set_reliable(true);
                "lossy"
            }
        };
        *counts.entry(kind).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(thread_rng().gen_range(500..1500))).await;
    }
}
