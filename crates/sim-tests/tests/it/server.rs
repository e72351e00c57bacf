//! Whole `distcache` nodes under simulation: the product's node (config,
//! bootstrap from the config alone, the public gRPC API, forwarding, the
//! data directory) rather than the lab servers. Six nodes: 1-3 host a
//! controller replica and a replica of data group 1, 4-6 a replica of data
//! group 2. Clients use `distcache-client` (routing by the shard map, sessions
//! for exactly-once writes) on their own simulated hosts; every call is
//! recorded and the whole history is checked for linearizability (an
//! "unknown" verdict fails).
//!
//! Faults: a node killed and restarted from its data directory (unsynced
//! writes lost, as after a power cut), a node stopped gracefully as on
//! SIGTERM (a leader hands off first) and restarted, a node paused (a long GC or SIGSTOP),
//! a node cut off from its peers (its clients still reach it, so it must
//! forward or refuse, never answer from a stale state).

#![cfg(madsim)]

use std::time::Duration;

use distcache::http::dashboard::DashboardView;
use labrpc::sim::NodeId;
use sim_tests::harness::{phase, within};
use sim_tests::server::{Cluster, random_node, run_under, wait_ready};

const TEST_LIMIT: Duration = Duration::from_secs(180);
const CLIENTS: usize = 4;

#[madsim::test]
async fn nodes_serve_linearizably_with_no_faults() {
    within("test", TEST_LIMIT, async {
        phase("six nodes from their config files, four clients, no faults");
        run_under(CLIENTS, &Cluster::start(0), async |_| {
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await
        .assert_served_linearizably(CLIENTS);
    })
    .await;
}

#[madsim::test]
async fn nodes_killed_and_restarted_from_their_data_directories() {
    within("test", TEST_LIMIT, async {
        phase("kill -9 a random node, restart it from its files, five times");
        run_under(CLIENTS, &Cluster::start(0), async |cluster| {
            stop_and_restart_five_times(cluster, Stop::Kill).await;
        })
        .await
        .assert_served_linearizably(CLIENTS);
    })
    .await;
}

#[madsim::test]
async fn nodes_stopped_gracefully_and_restarted() {
    within("test", TEST_LIMIT, async {
        phase(
            "stop a random node as SIGTERM does (a leader hands off first), restart it, five times",
        );
        run_under(CLIENTS, &Cluster::start(0), async |cluster| {
            stop_and_restart_five_times(cluster, Stop::Graceful).await;
        })
        .await
        .assert_served_linearizably(CLIENTS);
    })
    .await;
}

/// How a node is stopped before its restart.
enum Stop {
    /// kill -9: unsynced writes are lost.
    Kill,
    /// As on SIGTERM: a leading replica hands off first.
    Graceful,
}

/// Five times: stop a random node, leave it down 0.5-2.5 s, restart it from
/// its data directory, let it serve 2 s.
async fn stop_and_restart_five_times(cluster: &Cluster, how: Stop) {
    for _ in 0..5 {
        let node = random_node(cluster);
        match how {
            Stop::Kill => {
                tracing::info!(node = %cluster.net.describe(node), "kill");
                cluster.net.kill(node);
            }
            Stop::Graceful => {
                tracing::info!(node = %cluster.net.describe(node), "graceful stop");
                cluster.stop_gracefully(node);
            }
        }
        tokio::time::sleep(Duration::from_millis(
            500 + madsim::rand::random::<u64>() % 2000,
        ))
        .await;
        cluster.net.restart(node).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[madsim::test]
async fn nodes_paused_and_cut_off_from_their_peers() {
    within("test", TEST_LIMIT, async {
        phase("pause a node, or cut it off from every other server; clients still reach it");
        run_under(CLIENTS, &Cluster::start(0), async |cluster| {
            for round in 0..6 {
                let node = random_node(cluster);
                if round % 2 == 0 {
                    tracing::info!(node = %cluster.net.describe(node), "pause");
                    cluster.net.pause(node);
                    tokio::time::sleep(Duration::from_millis(
                        500 + madsim::rand::random::<u64>() % 2000,
                    ))
                    .await;
                    cluster.net.resume(node);
                } else {
                    tracing::info!(node = %cluster.net.describe(node), "cut off from its peers");
                    let others: Vec<NodeId> = cluster
                        .nodes
                        .iter()
                        .copied()
                        .filter(|&n| n != node)
                        .collect();
                    for &other in &others {
                        cluster.net.cut_link(node, other);
                    }
                    tokio::time::sleep(Duration::from_millis(
                        500 + madsim::rand::random::<u64>() % 2000,
                    ))
                    .await;
                    cluster.net.heal_all();
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
        .await
        .assert_served_linearizably(CLIENTS);
    })
    .await;
}

/// The dashboard tells a partitioned node from a healthy follower: node 5
/// (group 2) is cut off from every other server's replication traffic while
/// its HTTP gateway still answers (as with a firewall on the peer ports).
/// Under PreVote it keeps its term, so only its lost leader contact shows
/// it; after the heal it is shown in contact again.
#[madsim::test]
async fn dashboard_shows_a_node_cut_off_from_its_group() {
    within("test", TEST_LIMIT, async {
        let cluster = Cluster::start(0);
        wait_ready(&cluster).await;
        let cut = cluster.nodes[4];
        phase(
            "cut node 5 off from its peers; the dashboard (served by node 1) marks it, and only it",
        );
        for &other in cluster.nodes.iter().filter(|&&node| node != cut) {
            cluster.net.cut_link(cut, other);
        }
        let cut_off = |view: &DashboardView| -> Vec<u64> {
            view.nodes
                .iter()
                .filter(|node| node.cut_off)
                .map(|node| node.node_id)
                .collect()
        };
        let view = wait_for_dashboard(&cluster, "node 5 alone shown cut off", |view| {
            cut_off(view) == [5] && view.nodes.iter().all(|node| node.up)
        })
        .await;
        let group_2 = view.groups.iter().find(|group| group.gid == 2);
        assert!(
            group_2.is_some_and(|group| group.leader_node_id.is_some_and(|leader| leader != 5)),
            "group 2 has a leader other than the cut-off node: {:?}",
            view.groups
        );
        phase("heal: node 5 is back in contact with its group's leader");
        cluster.net.heal_all();
        wait_for_dashboard(&cluster, "no node shown cut off", |view| {
            cut_off(view).is_empty() && view.nodes.iter().all(|node| node.up)
        })
        .await;
    })
    .await;
}

/// Polls node 1's dashboard until `done` holds (20 s at most).
async fn wait_for_dashboard(
    cluster: &Cluster,
    what: &str,
    done: impl Fn(&DashboardView) -> bool,
) -> DashboardView {
    let mut last = None;
    for _ in 0..40 {
        if let Some(view) = cluster.dashboard(1).await {
            if done(&view) {
                return view;
            }
            last = Some(view);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let nodes: Vec<(u64, bool, bool)> = last
        .map(|view| {
            view.nodes
                .iter()
                .map(|node| (node.node_id, node.up, node.cut_off))
                .collect()
        })
        .unwrap_or_default();
    panic!("the dashboard never showed {what}; last (node, up, cut off): {nodes:?}");
}
