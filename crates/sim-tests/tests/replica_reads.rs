//! Reads any replica may serve (`read_from = READ_FROM_ANY_REPLICA`, RESP's
//! `READONLY`), on whole `distcache` nodes under simulation: a follower
//! asks its leader for a read index and answers from its own machine once
//! it has applied through it, so a follower read must be exactly as
//! linearizable as a leader's. Six nodes (two groups of three); clients
//! write through the product client and read through random nodes with
//! `ANY_REPLICA` (raw calls to random nodes, or the product client's
//! `read_from` option); the whole history is checked with the kv model (an
//! "unknown" verdict fails), and the nodes' `distcache_follower_reads`
//! counters must show that followers served reads.
//!
//! Faults: a node paused or cut off from its peers while its clients still
//! reach it (a follower that lost its leader must not answer from what it
//! has), and nodes killed and restarted (a follower that restarts behind).

#![cfg(madsim)]

use std::time::Duration;

use std::sync::atomic::Ordering;

use distcache_client::ReadFrom;
use labrpc::sim::NodeId;
use sim_tests::harness::{phase, within};
use sim_tests::replica_reads::ReplicaReadKv;
use sim_tests::server::{Cluster, NODES, RunOutcome, random_node, run_under_with};

const TEST_LIMIT: Duration = Duration::from_secs(180);
const CLIENTS: usize = 4;

/// Clients whose reads any replica may answer: half of them send each
/// read to a node drawn at random (`ReplicaReadKv`), half are the product
/// client with `read_from = AnyReplica` (its nodes in turn).
///
/// Also checks the liveness phase: once the faults end and the cluster is
/// healed, followers answer reads again (the 3 s `run_under` runs healed).
async fn run_with_replica_reads(faults: impl AsyncFnOnce(&Cluster)) -> (Cluster, RunOutcome) {
    let cluster = Cluster::start(0);
    let urls = cluster.grpc_urls();
    let made = std::sync::atomic::AtomicUsize::new(0);
    let healed_at = std::sync::Mutex::new(Vec::new());
    let outcome = run_under_with(
        CLIENTS,
        &cluster,
        move |cluster| {
            let random = made.fetch_add(1, Ordering::Relaxed).is_multiple_of(2);
            cluster.client_over(
                |config| config.read_from = ReadFrom::AnyReplica,
                |client| ReplicaReadKv::new(client, urls.clone(), random),
            )
        },
        async |cluster| {
            faults(cluster).await;
            cluster.net.heal_all();
            *healed_at.lock().expect("lock") = follower_reads_per_node(cluster).await;
        },
    )
    .await;
    // No node restarts after the faults, so each counter only grew.
    let healed_at = healed_at.into_inner().expect("lock");
    let after = follower_reads_per_node(&cluster).await;
    let since: f64 = after
        .iter()
        .zip(&healed_at)
        .map(|(after, before)| (after - before).max(0.0))
        .sum();
    println!("follower reads after healing: {since}");
    assert!(
        since > 0.0,
        "no follower answered a read once the cluster was healed"
    );
    (cluster, outcome)
}

/// `distcache_follower_reads_total` of each node (0 for one that does not
/// answer; a restarted node counts from its restart).
async fn follower_reads_per_node(cluster: &Cluster) -> Vec<f64> {
    let mut counts = Vec::new();
    for node in 1..=NODES {
        counts.push(
            cluster
                .metric(node, "distcache_follower_reads_total")
                .await
                .unwrap_or(0.0),
        );
    }
    counts
}

async fn follower_reads(cluster: &Cluster) -> f64 {
    follower_reads_per_node(cluster).await.iter().sum()
}

#[madsim::test]
async fn follower_reads_are_linearizable_with_no_faults() {
    within("test", TEST_LIMIT, async {
        phase("six nodes, four clients reading through random nodes from any replica");
        let (cluster, outcome) = run_with_replica_reads(async |_| {
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        outcome.assert_served_linearizably(CLIENTS);
        let served = follower_reads(&cluster).await;
        println!("follower reads: {served}");
        assert!(
            served >= 50.0,
            "only {served} reads were served by followers: the reads did not spread"
        );
    })
    .await;
}

#[madsim::test]
async fn follower_reads_are_linearizable_under_pauses_and_partitions() {
    within("test", TEST_LIMIT, async {
        phase("pause a node, or cut it off from every other server; clients still reach it");
        let (cluster, outcome) = run_with_replica_reads(async |cluster| {
            for round in 0..6 {
                let node = random_node(cluster);
                if round % 2 == 0 {
                    tracing::info!(node = %cluster.net.describe(node), "pause");
                    cluster.net.pause(node);
                    sleep_a_while().await;
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
                    sleep_a_while().await;
                    cluster.net.heal_all();
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
        .await;
        outcome.assert_served_linearizably(CLIENTS);
        let served = follower_reads(&cluster).await;
        println!("follower reads: {served}");
        assert!(served > 0.0, "no read was served by a follower");
    })
    .await;
}

#[madsim::test]
async fn follower_reads_are_linearizable_across_kills_and_restarts() {
    within("test", TEST_LIMIT, async {
        phase("kill -9 a random node, restart it from its files, five times");
        let (cluster, outcome) = run_with_replica_reads(async |cluster| {
            for _ in 0..5 {
                let node = random_node(cluster);
                tracing::info!(node = %cluster.net.describe(node), "kill");
                cluster.net.kill(node);
                sleep_a_while().await;
                cluster.net.restart(node).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
        .await;
        outcome.assert_served_linearizably(CLIENTS);
        let served = follower_reads(&cluster).await;
        println!("follower reads: {served}");
        assert!(served > 0.0, "no read was served by a follower");
    })
    .await;
}

/// 0.5-2.5 s.
async fn sleep_a_while() {
    tokio::time::sleep(Duration::from_millis(
        500 + madsim::rand::random::<u64>() % 2000,
    ))
    .await;
}
