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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distcache_client::ReadFrom;
use labrpc::sim::NodeId;
use sim_tests::harness::{phase, within};
use sim_tests::replica_reads::ReplicaReadKv;
use sim_tests::server::{Cluster, NODES, RunOutcome, random_node, run_under_with, wait_ready};
use sim_tests::staleness::{Read, StalenessLog, Write};

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

/// Metric `name` summed over every node (0 for one that does not answer).
async fn sum_over_nodes(cluster: &Cluster, name: &str) -> f64 {
    let mut sum = 0.0;
    for node in 1..=NODES {
        sum += cluster.metric(node, name).await.unwrap_or(0.0);
    }
    sum
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

/// How old a bounded read may be in `bounded_reads_*`.
const BOUND: Duration = Duration::from_millis(1_000);

/// Reads that may be up to [`BOUND`] old (`max_staleness_ms`), through
/// random nodes, while a node at a time is paused, cut off from its peers,
/// or loses one link (a follower cut off from its leader keeps its last
/// grant, and other nodes may still read it and cache what it says): each
/// key has one
/// writer writing versions in order, and every read is checked by
/// `sim_tests::staleness` (nothing from the future; every write
/// acknowledged more than the bound before the read began is in it).
/// Followers must have answered reads from a reused grant, and nodes from
/// their read cache (keys of a group they do not host).
#[madsim::test]
async fn bounded_reads_reflect_every_write_older_than_their_bound() {
    within("test", TEST_LIMIT, async {
        phase("two writers, four readers at most 1 s stale; pauses, partitions, cut links");
        let cluster = Cluster::start(0);
        wait_ready(&cluster).await;
        let start = labrpc::runtime::now();
        let since_start = move || labrpc::runtime::now() - start;
        let log = Arc::new(Mutex::new(StalenessLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let keys: Vec<Vec<u8>> = (0..4)
            .map(|k| format!("bounded-{k}").into_bytes())
            .collect();
        let mut tasks = Vec::new();
        for mine in keys.chunks(2) {
            let (mine, log, stop) = (mine.to_vec(), Arc::clone(&log), Arc::clone(&stop));
            tasks.push(cluster.client().spawn(move |kv| async move {
                let mut versions = vec![0u64; mine.len()];
                while !stop.load(Ordering::Relaxed) {
                    let which = madsim::rand::random::<u64>() as usize % mine.len();
                    versions[which] += 1;
                    let version = versions[which];
                    let sent = since_start();
                    let value = format!("v{version}");
                    let acked = kv.inner().set(&mine[which], value.as_bytes()).await.is_ok();
                    let acked = acked.then(since_start);
                    let write = Write {
                        version,
                        sent,
                        acked,
                    };
                    log.lock().expect("log lock").wrote(&mine[which], write);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        let urls = cluster.grpc_urls();
        for _ in 0..4 {
            let (keys, log, stop, urls) = (
                keys.clone(),
                Arc::clone(&log),
                Arc::clone(&stop),
                urls.clone(),
            );
            let reader =
                cluster.client_over(|_| {}, |client| ReplicaReadKv::new(client, urls, true));
            tasks.push(reader.spawn(move |kv| async move {
                let bound_ms = u64::try_from(BOUND.as_millis()).expect("fits");
                while !stop.load(Ordering::Relaxed) {
                    let key = &keys[madsim::rand::random::<u64>() as usize % keys.len()];
                    let sent = since_start();
                    if let Some(value) = kv.inner().read_once(key, bound_ms).await {
                        let version = value.map_or(0, |value| {
                            std::str::from_utf8(&value)
                                .ok()
                                .and_then(|text| text.strip_prefix('v'))
                                .and_then(|digits| digits.parse().ok())
                                .unwrap_or(u64::MAX)
                        });
                        let read = Read {
                            sent,
                            returned: since_start(),
                            version,
                        };
                        log.lock().expect("log lock").read(key, read);
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
        for round in 0..9 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let node = random_node(&cluster);
            match round % 3 {
                0 => {
                    tracing::info!(node = %cluster.net.describe(node), "pause");
                    cluster.net.pause(node);
                    sleep_a_while().await;
                    cluster.net.resume(node);
                }
                1 => {
                    tracing::info!(node = %cluster.net.describe(node), "cut off from its peers");
                    for &other in cluster.nodes.iter().filter(|&&other| other != node) {
                        cluster.net.cut_link(node, other);
                    }
                    sleep_a_while().await;
                    cluster.net.heal_all();
                }
                _ => {
                    // One link only: a follower may lose its leader while
                    // other nodes still reach it (and cache what it says).
                    let other = random_node(&cluster);
                    tracing::info!(
                        node = %cluster.net.describe(node),
                        other = %cluster.net.describe(other),
                        "cut one link"
                    );
                    cluster.net.cut_link(node, other);
                    sleep_a_while().await;
                    cluster.net.heal_all();
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.expect("client hosts are never killed");
        }
        let report = log.lock().expect("log lock").check(BOUND);
        let report = report.unwrap_or_else(|violation| panic!("{violation}"));
        println!("bounded reads: {report:?}");
        assert!(
            report.reads > 200,
            "only {} reads were answered",
            report.reads
        );
        let reused = sum_over_nodes(&cluster, "distcache_follower_reads_reused_total").await;
        println!("reads answered from a reused grant: {reused}");
        assert!(reused > 0.0, "no follower answered from an earlier grant");
        let cached = sum_over_nodes(
            &cluster,
            "distcache_replica_reads_total{served_by=\"cache\"}",
        )
        .await;
        println!("reads answered from a node's read cache: {cached}");
        assert!(cached > 0.0, "no node answered from its read cache");
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
