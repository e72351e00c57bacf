//! The Rust client's routing while a node is paused: whole `distcache`
//! nodes (the six of `sim_tests::server`) and one writer per key, each on
//! its own `distcache-client` with a user's default settings (2 s RPC
//! timeout, the shard map re-read every 5 s and after any failure), all
//! seeded with the same list whose first seed is the node paused.
//!
//! Phase A pauses that first seed, a group-1 replica that leads nothing,
//! for longer than two routing refreshes: no write needs it, so every
//! writer must go on being acknowledged with no gap longer than
//! [`MAX_GAP`]. A client that re-read the map by asking its seeds one
//! after another, each with the full RPC timeout, stopped for 2 s at each
//! refresh.
//!
//! Phase B pauses group 1's leader: the group's writers wait for a new
//! leader (a write out to the paused leader waits out the 2 s RPC
//! timeout), so they get a looser bound, [`MAX_GAP_LEADER_PAUSED`];
//! group 2's writers keep [`MAX_GAP`].

#![cfg(madsim)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distcache_client::{Client, ClientConfig};
use sim_tests::harness::{phase, within};
use sim_tests::server::{Cluster, NODES, SHARDS, wait_ready};
use tokio::time::Instant;

const TEST_LIMIT: Duration = Duration::from_secs(120);
/// Longest a writer may go without an acknowledged write while a node
/// that leads nothing is paused. A write takes a few milliseconds and a
/// writer pauses 50 ms between two; a refresh that waits on a dead seed
/// costs the 2 s RPC timeout.
const MAX_GAP: Duration = Duration::from_millis(1500);
/// Longest a writer of the paused leader's group may go without an
/// acknowledged write: the write out to it waits the 2 s RPC timeout, then
/// the retry goes to another node (not the paused one again), which
/// forwards it to the new leader once the group elected one. A client
/// that re-read the map before that retry waited on a slow `Admin.Status`
/// too (the answering node probes the paused one).
const MAX_GAP_LEADER_PAUSED: Duration = Duration::from_millis(3000);
/// How long each node is paused: longer than two routing refreshes
/// (`routing_max_age`, 5 s), so every writer's map goes stale while it is.
const PAUSE: Duration = Duration::from_secs(12);
/// A writer's pause between two writes.
const WRITE_PAUSE: Duration = Duration::from_millis(50);
/// Writers per data group.
const WRITERS_PER_GROUP: usize = 2;

/// One writer's key and when each of its writes was acknowledged.
struct Writer {
    key: String,
    gid: u64,
    acknowledged: Arc<Mutex<Vec<Instant>>>,
    failed: Arc<Mutex<u64>>,
}

/// The longest stretch of `[from, to]` without an acknowledgment, and
/// when it began.
fn longest_gap(acknowledged: &[Instant], from: Instant, to: Instant) -> (Duration, Instant) {
    let mut points = vec![from];
    points.extend(
        acknowledged
            .iter()
            .copied()
            .filter(|&at| at > from && at < to),
    );
    points.push(to);
    points
        .windows(2)
        .map(|pair| (pair[1] - pair[0], pair[0]))
        .max_by_key(|&(gap, _)| gap)
        .expect("at least two points")
}

/// Which group owns each shard, and group `gid`'s leader (1-based node),
/// as node `via` shows them.
async fn shards_and_leader(cluster: &Cluster, via: usize, gid: u64) -> (Vec<u64>, usize) {
    let bound = Duration::from_secs(20);
    let deadline = labrpc::runtime::now() + bound;
    loop {
        if let Some(view) = cluster.dashboard(via).await {
            let leader = view
                .groups
                .iter()
                .find(|group| group.gid == gid)
                .and_then(|group| group.leader_node_id);
            if let Some(leader) = leader
                && view.shards.len() == SHARDS
            {
                return (view.shards, leader as usize);
            }
        }
        assert!(
            labrpc::runtime::now() < deadline,
            "node {via}'s dashboard named no leader of group {gid} within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Keys (`key-<n>`, the first that fit) owned `WRITERS_PER_GROUP` by each
/// group.
fn keys_per_group(shard_owners: &[u64]) -> Vec<(String, u64)> {
    let mut keys = Vec::new();
    for gid in [1, 2] {
        let owned = (0..1000)
            .map(|index| format!("key-{index}"))
            .filter(|key| shard_owners[shardkv::key_to_shard(key.as_bytes(), SHARDS)] == gid)
            .take(WRITERS_PER_GROUP);
        keys.extend(owned.map(|key| (key, gid)));
    }
    assert_eq!(
        keys.len(),
        2 * WRITERS_PER_GROUP,
        "both groups own shards: {shard_owners:?}"
    );
    keys
}

/// Pauses node `victim` (1-based) for [`PAUSE`]; when the pause began and
/// ended.
async fn pause(cluster: &Cluster, victim: usize) -> (Instant, Instant) {
    let node = cluster.nodes[victim - 1];
    cluster.net.pause(node);
    let began = labrpc::runtime::now();
    tokio::time::sleep(PAUSE).await;
    cluster.net.resume(node);
    (began, labrpc::runtime::now())
}

/// Checks every writer's longest gap in `[from, to]` against its bound
/// (`leader_group`'s writers: [`MAX_GAP_LEADER_PAUSED`]); the failures.
fn gaps_over_bound(
    what: &str,
    writers: &[Writer],
    from: Instant,
    to: Instant,
    leader_group: Option<u64>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for writer in writers {
        let acknowledged = writer.acknowledged.lock().unwrap();
        let (gap, began) = longest_gap(&acknowledged, from, to);
        let bound = if Some(writer.gid) == leader_group {
            MAX_GAP_LEADER_PAUSED
        } else {
            MAX_GAP
        };
        println!(
            "{what}: {} (group {}): longest gap {} ms, from {} ms into the pause (bound {} ms)",
            writer.key,
            writer.gid,
            gap.as_millis(),
            (began - from).as_millis(),
            bound.as_millis()
        );
        if gap > bound {
            failures.push(format!(
                "{what}: {} (group {}) acknowledged nothing for {} ms from {} ms into the \
                 pause; expected at most {} ms",
                writer.key,
                writer.gid,
                gap.as_millis(),
                (began - from).as_millis(),
                bound.as_millis()
            ));
        }
    }
    failures
}

#[madsim::test]
async fn writes_go_on_while_a_seed_or_a_leader_is_paused() {
    within("test", TEST_LIMIT, async {
        phase("six nodes; find group 1's leader and a group-1 node that leads nothing");
        let cluster = Cluster::start(0);
        wait_ready(&cluster).await;
        let (shard_owners, leader) = shards_and_leader(&cluster, 4, 1).await;
        let quiet_seed = (1..=3)
            .find(|&node| node != leader)
            .expect("group 1 has three replicas");
        println!(
            "group 1's leader: node {leader}; the first seed, paused first: node {quiet_seed}"
        );

        phase("one writer per key, seeded with the quiet node first");
        let seeds: Vec<String> = std::iter::once(quiet_seed)
            .chain((1..=NODES).filter(|&node| node != quiet_seed))
            .map(|node| cluster.grpc_addr(node).to_string())
            .collect();
        let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
        let running = Arc::new(AtomicBool::new(true));
        let mut writers = Vec::new();
        let mut tasks = Vec::new();
        for (key, gid) in keys_per_group(&shard_owners) {
            let client = Client::new(&seeds, ClientConfig::default()).expect("seeds parse");
            let writer = Writer {
                key: key.clone(),
                gid,
                acknowledged: Arc::default(),
                failed: Arc::default(),
            };
            let (acknowledged, failed) =
                (Arc::clone(&writer.acknowledged), Arc::clone(&writer.failed));
            let running = Arc::clone(&running);
            tasks.push(cluster.net.spawn(cluster.client_host(), async move {
                let mut number = 0u64;
                while running.load(Ordering::Relaxed) {
                    number += 1;
                    match client
                        .set(key.as_bytes(), number.to_string().as_bytes())
                        .await
                    {
                        Ok(()) => acknowledged.lock().unwrap().push(labrpc::runtime::now()),
                        Err(_) => *failed.lock().unwrap() += 1,
                    }
                    tokio::time::sleep(WRITE_PAUSE).await;
                }
            }));
            writers.push(writer);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;

        phase("A: the first seed (leads nothing) paused");
        let (a_from, a_to) = pause(&cluster, quiet_seed).await;
        tokio::time::sleep(Duration::from_secs(3)).await;

        phase("B: group 1's leader paused");
        let (b_from, b_to) = pause(&cluster, leader).await;
        tokio::time::sleep(Duration::from_secs(3)).await;

        phase("healed: stop the writers and judge the gaps");
        running.store(false, Ordering::Relaxed);
        for task in tasks {
            task.await.expect("client hosts are never killed");
        }
        let mut failures = gaps_over_bound("A", &writers, a_from, a_to, None);
        failures.extend(gaps_over_bound("B", &writers, b_from, b_to, Some(1)));
        for writer in &writers {
            let acknowledged = writer.acknowledged.lock().unwrap().len();
            let failed = *writer.failed.lock().unwrap();
            println!(
                "{}: {acknowledged} writes acknowledged, {failed} failed",
                writer.key
            );
            assert!(
                acknowledged > 100,
                "{}: only {acknowledged} writes acknowledged: the writer barely ran",
                writer.key
            );
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    })
    .await;
}
