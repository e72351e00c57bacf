//! Load-aware placement on whole `distcache` nodes (issue 22): six nodes
//! (two data groups of three, ten shards), clients hammering keys of two
//! shards that group 1 owns, so group 1 takes nearly every request.
//!
//! - `a_hot_group_gives_a_shard_away`: with `balance_load` on (a 500 ms
//!   interval, three intervals in a row), the balancer on the controller's
//!   leader asks the controller to move one of the two hot shards to group
//!   2. Group 1's share of the requests, measured from the nodes'
//!   `distcache_shard_requests_total` counters, drops from nearly all to
//!   about half, and nothing moves after that (the split is even, within
//!   the margin). The moved shard migrates under load: every call is
//!   recorded and the history must be linearizable.
//! - `without_balance_load_nothing_moves`: the control run, the same
//!   workload for longer than the first test needed, with the setting off
//!   (the default): the configuration stays as the nodes formed it.

#![cfg(madsim)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sim_tests::harness::{elapsed_ms, phase, wait_until, within};
use sim_tests::server::{Cluster, NODES, SHARDS, wait_ready};

const TEST_LIMIT: Duration = Duration::from_secs(120);
const CLIENTS: usize = 4;
/// Keys per hot shard (clients contend on them).
const KEYS_PER_SHARD: usize = 3;
const BALANCE_ON: &str =
    "balance_load = true\nbalance_interval_ms = 500\nbalance_after_intervals = 3\n";
/// How long the balancer may take to move a shard: a baseline interval,
/// three intervals in a row, the controller's change and the migration,
/// with room to spare.
const MOVE_BOUND: Duration = Duration::from_secs(20);
/// How long the control run hammers: longer than `MOVE_BOUND`.
const CONTROL_RUN: Duration = Duration::from_secs(25);

/// The configuration number and shard owners, as node 1's dashboard
/// reports them, once both groups are listed.
async fn shard_map(cluster: &Cluster) -> (u64, Vec<u64>) {
    let found = Mutex::new(None);
    wait_until(
        "node 1's dashboard lists a configuration with both groups",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let found = &found;
            async move {
                let Some(view) = cluster.dashboard(1).await else {
                    return false;
                };
                let groups = view.shards.contains(&1) && view.shards.contains(&2);
                if groups {
                    *found.lock().expect("lock") = Some((view.config_num, view.shards));
                }
                groups
            }
        },
    )
    .await;
    found
        .into_inner()
        .expect("lock")
        .expect("wait_until returned, so the map was found")
}

/// The two lowest shards `group` owns, and keys in each.
fn hot_keys(shards: &[u64], group: u64) -> ([usize; 2], Vec<String>) {
    let owned: Vec<usize> = (0..shards.len())
        .filter(|&shard| shards[shard] == group)
        .collect();
    assert!(owned.len() >= 2, "group {group} owns {owned:?}");
    let hot = [owned[0], owned[1]];
    let mut keys = Vec::new();
    for shard in hot {
        let in_shard = (0..100_000u32)
            .map(|i| format!("hot-{i}"))
            .filter(|key| shardkv::key_to_shard(key.as_bytes(), SHARDS) == shard)
            .take(KEYS_PER_SHARD);
        keys.extend(in_shard);
    }
    assert_eq!(keys.len(), 2 * KEYS_PER_SHARD, "keys for shards {hot:?}");
    (hot, keys)
}

/// `CLIENTS` recording clients, each writing and reading `keys` at random
/// until `stop`; the acknowledged operations.
fn hammer(
    cluster: &Cluster,
    keys: &[String],
    stop: &Arc<AtomicBool>,
) -> Vec<madsim::task::JoinHandle<u64>> {
    (0..CLIENTS)
        .map(|_| {
            let keys = keys.to_vec();
            let stop = Arc::clone(stop);
            cluster.client().spawn(move |kv| async move {
                let mut acknowledged = 0;
                let mut sequence = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    sequence += 1;
                    let key = &keys[madsim::rand::random::<u64>() as usize % keys.len()];
                    let answered = if madsim::rand::random::<bool>() {
                        let value = format!("c{}-{sequence}", kv.client_id());
                        kv.put(key, &value).await.is_some()
                    } else {
                        kv.get(key).await.is_some()
                    };
                    acknowledged += u64::from(answered);
                    tokio::time::sleep(Duration::from_millis(
                        1 + madsim::rand::random::<u64>() % 5,
                    ))
                    .await;
                }
                acknowledged
            })
        })
        .collect()
}

/// Stops the clients; how many operations they had acknowledged.
async fn stop_hammer(stop: &AtomicBool, workers: Vec<madsim::task::JoinHandle<u64>>) -> u64 {
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = 0;
    for worker in workers {
        acknowledged += worker.await.expect("client hosts are never killed");
    }
    acknowledged
}

/// Requests per shard so far, summed over every node.
async fn cluster_requests(cluster: &Cluster) -> Vec<u64> {
    let mut sum = vec![0; SHARDS];
    for node in 1..=NODES {
        let requests = cluster
            .shard_requests(node)
            .await
            .unwrap_or_else(|| panic!("node {node} did not answer GET /metrics"));
        for (total, count) in sum.iter_mut().zip(requests) {
            *total += count;
        }
    }
    sum
}

/// The share of `requests` on shards `shards` gives to `group`.
fn share(requests: &[u64], shards: &[u64], group: u64) -> f64 {
    let total: u64 = requests.iter().sum();
    let on_group: u64 = (0..SHARDS)
        .filter(|&shard| shards[shard] == group)
        .map(|shard| requests[shard])
        .sum();
    on_group as f64 / total.max(1) as f64
}

fn minus(after: &[u64], before: &[u64]) -> Vec<u64> {
    after.iter().zip(before).map(|(a, b)| a - b).collect()
}

#[madsim::test]
async fn a_hot_group_gives_a_shard_away() {
    within("a_hot_group_gives_a_shard_away", TEST_LIMIT, async {
        phase("six nodes with balance_load on (500 ms intervals, 3 in a row)");
        let cluster = Cluster::start_with(0, BALANCE_ON);
        wait_ready(&cluster).await;
        let (formed_num, formed) = shard_map(&cluster).await;
        let (hot, keys) = hot_keys(&formed, 1);

        phase(&format!("clients hammer shards {hot:?} of group 1"));
        let stop = Arc::new(AtomicBool::new(false));
        let started = cluster_requests(&cluster).await;
        let hammer_started = labrpc::runtime::now();
        let workers = hammer(&cluster, &keys, &stop);

        phase("the controller moves one hot shard off group 1");
        let moved = Mutex::new(None);
        wait_until(
            "a configuration that gives one hot shard to group 2",
            MOVE_BOUND,
            Duration::from_millis(250),
            || {
                let (moved, cluster) = (&moved, &cluster);
                async move {
                    let Some(view) = cluster.dashboard(1).await else {
                        return false;
                    };
                    let away = hot.iter().filter(|&&shard| view.shards[shard] != 1).count();
                    if away > 0 {
                        *moved.lock().expect("lock") = Some((view.config_num, view.shards));
                    }
                    away > 0
                }
            },
        )
        .await;
        let (moved_num, moved) = moved
            .into_inner()
            .expect("lock")
            .expect("wait_until returned");
        let changed: Vec<usize> = (0..SHARDS)
            .filter(|&shard| moved[shard] != formed[shard])
            .collect();
        assert_eq!(
            changed.len(),
            1,
            "configuration {moved_num} moved shards {changed:?} (from {formed:?} to {moved:?}); \
             a balance moves one"
        );
        assert!(
            hot.contains(&changed[0]) && moved[changed[0]] == 2,
            "shard {} went to group {}, expected a hot shard {hot:?} to group 2",
            changed[0],
            moved[changed[0]]
        );
        let before_move = minus(&cluster_requests(&cluster).await, &started);
        let share_before = share(&before_move, &formed, 1);
        println!(
            "configuration {formed_num} -> {moved_num} after {} ms of load: shard {} to group 2; \
             group 1 had {:.0} % of {} requests",
            elapsed_ms(hammer_started),
            changed[0],
            share_before * 100.0,
            before_move.iter().sum::<u64>()
        );
        assert!(
            share_before > 0.9,
            "group 1 had {share_before:.2} of the requests before the move: {before_move:?}"
        );

        phase("group 1's share drops to about half, and nothing moves after");
        let at_move = cluster_requests(&cluster).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let after_move = minus(&cluster_requests(&cluster).await, &at_move);
        let share_after = share(&after_move, &moved, 1);
        println!(
            "after the move group 1 had {:.0} % of {} requests",
            share_after * 100.0,
            after_move.iter().sum::<u64>()
        );
        assert!(
            (0.3..0.7).contains(&share_after),
            "group 1 had {share_after:.2} of the requests after the move: {after_move:?} over \
             {moved:?}"
        );
        let (still_num, still) = shard_map(&cluster).await;
        assert_eq!(
            (still_num, &still),
            (moved_num, &moved),
            "a move after the split was even"
        );

        phase("stop the clients; the history is linearizable");
        let acknowledged = stop_hammer(&stop, workers).await;
        assert!(
            acknowledged > 100,
            "only {acknowledged} operations were acknowledged"
        );
        if let Err(explanation) = cluster.linearizability() {
            panic!("{explanation}");
        }
    })
    .await;
}

#[madsim::test]
async fn without_balance_load_nothing_moves() {
    within("without_balance_load_nothing_moves", TEST_LIMIT, async {
        phase("six nodes with balance_load off (the default)");
        let cluster = Cluster::start(0);
        wait_ready(&cluster).await;
        let (formed_num, formed) = shard_map(&cluster).await;
        let (hot, keys) = hot_keys(&formed, 1);

        phase(&format!(
            "clients hammer shards {hot:?} of group 1 for {CONTROL_RUN:?}"
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let started = cluster_requests(&cluster).await;
        let workers = hammer(&cluster, &keys, &stop);
        tokio::time::sleep(CONTROL_RUN).await;
        let requests = minus(&cluster_requests(&cluster).await, &started);
        let acknowledged = stop_hammer(&stop, workers).await;

        phase("nothing moved; group 1 still takes nearly every request");
        let (num, shards) = shard_map(&cluster).await;
        assert_eq!(
            (num, &shards),
            (formed_num, &formed),
            "the configuration changed without balance_load"
        );
        let group_share = share(&requests, &formed, 1);
        assert!(
            group_share > 0.9,
            "group 1 had {group_share:.2} of the requests: {requests:?}"
        );
        assert!(
            acknowledged > 100,
            "only {acknowledged} operations were acknowledged"
        );
    })
    .await;
}
