//! The disk tier (L3) on real nodes (issue 22): a group of three replicas
//! with `[disk_tier] groups = [1]` and the smallest memory a shard may
//! have (1 MiB). More than memory holds is written; everything reads back
//! exactly (the cold values from disk, as the shards' disk counters
//! show); the group snapshots meanwhile (a small `max_raft_state_bytes`,
//! so snapshots are encoded from copies of stores with a tier); then
//! every node is stopped and started again (the tiers are rebuilt from
//! the snapshots and logs in fresh directories) and everything still
//! reads back exactly.

#![cfg(not(madsim))]

mod support;

use std::time::Duration;

use distcache::config::DiskTierSettings;
use distcache::demo::Demo;
use distcache_client::{Client, ClientConfig};
use support::cluster::{READY_TIMEOUT, TestCluster};
use support::http::request;
use support::keys::wait_for;

/// 40 values of 100 KiB under one hash tag: about 4 MiB in one shard
/// whose memory holds 1 MiB.
const KEYS: usize = 40;
const VALUE_BYTES: usize = 100 << 10;
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn key(index: usize) -> String {
    format!("{{cold}}{index}")
}

/// A value that names its key, so a value read back under another key, or
/// cut short, is seen.
fn value(index: usize) -> Vec<u8> {
    let mut value = format!("value of key {index}:").into_bytes();
    value.resize(VALUE_BYTES, b'a' + (index % 26) as u8);
    value
}

async fn read_all(client: &Client, phase: &str) {
    for index in 0..KEYS {
        let got = client
            .get(key(index).as_bytes())
            .await
            .unwrap_or_else(|error| panic!("{phase}: read of {} failed: {error}", key(index)));
        assert!(
            got.as_deref() == Some(value(index).as_slice()),
            "{phase}: {} does not hold its value ({} bytes read)",
            key(index),
            got.map_or(0, |got| got.len())
        );
    }
}

/// Node `node_id`'s shards, summed: (entries on disk, values its replica
/// read back from the tier's files).
fn disk_counters(cluster: &TestCluster, node_id: u64) -> (u64, u64) {
    let state = cluster.node_state(node_id).expect("the node runs");
    let entries = state
        .shard_report()
        .iter()
        .map(|(_, _, stats)| stats.disk_entries)
        .sum();
    let reads = state
        .disk_read_report()
        .values()
        .map(|read| read.reads)
        .sum();
    (entries, reads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_values_come_back_from_disk_and_survive_a_restart() {
    eprintln!("phase 1: start three nodes whose group 1 has the disk tier");
    let builder = TestCluster::builder()
        .groups(1)
        .replicas(3)
        .shard_capacity_bytes(1 << 20)
        .max_raft_state_bytes(1 << 20);
    let directory = tempfile::Builder::new()
        .prefix("distcache-disk-")
        .tempdir()
        .expect("a temporary directory");
    let mut configs = builder.configs(directory.path());
    for config in &mut configs {
        config.disk_tier = DiskTierSettings {
            groups: vec![1],
            capacity_bytes: 16 << 20,
            segment_bytes: 256 << 10,
        };
        config.validate().expect("a valid configuration");
    }
    let node_ids: Vec<u64> = configs.iter().map(|config| config.node_id).collect();
    let demo = Demo::start_configs(configs, directory.path().to_path_buf(), READY_TIMEOUT)
        .await
        .expect("the cluster starts");
    let cluster = TestCluster::from_demo(demo, directory);
    let client = Client::new(
        &cluster
            .grpc_seeds()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ClientConfig {
            rpc_timeout: Duration::from_secs(10),
            operation_deadline: STEP_TIMEOUT,
            ..ClientConfig::default()
        },
    )
    .expect("a client");

    eprintln!("phase 2: write about four times what memory holds");
    for index in 0..KEYS {
        client
            .set(key(index).as_bytes(), &value(index))
            .await
            .unwrap_or_else(|error| panic!("write of {} failed: {error}", key(index)));
    }
    // Every replica applies the writes and spills alike.
    for &node_id in &node_ids {
        wait_for(
            "every replica holds most values on disk",
            STEP_TIMEOUT,
            Duration::from_millis(100),
            || async { (disk_counters(&cluster, node_id).0 >= (KEYS / 2) as u64).then_some(()) },
        )
        .await;
    }

    eprintln!("phase 3: everything reads back, the cold values from disk");
    read_all(&client, "before the restart").await;
    // Reads are answered by the leader without the log (ReadIndex): read
    // through to disk, changing nothing, so counted locally.
    let reads: u64 = node_ids
        .iter()
        .map(|&node_id| disk_counters(&cluster, node_id).1)
        .sum();
    assert!(
        reads >= (KEYS / 2) as u64,
        "only {reads} values read from disk"
    );
    let http = cluster
        .http_addr(node_ids[0])
        .expect("the node serves HTTP");
    let metrics = request(http, "GET", "/metrics", None, Vec::new()).await;
    assert_eq!(metrics.status, 200);
    for name in [
        "shard_disk_keys",
        "shard_disk_reads",
        "shard_disk_read_seconds",
    ] {
        assert!(
            metrics.text().contains(name),
            "the metrics lack {name}:\n{}",
            metrics.text()
        );
    }
    // The operator's views: `/v1/cluster` (as `distcache status`) sums the
    // group's stores with the tier's figures; `/v1/node` (the dashboard)
    // has them per shard.
    let cluster_view = request(http, "GET", "/v1/cluster", None, Vec::new()).await;
    assert_eq!(cluster_view.status, 200);
    let cluster_view: serde_json::Value =
        serde_json::from_str(&cluster_view.text()).expect("/v1/cluster is JSON");
    let stores: Vec<&serde_json::Value> = cluster_view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .flat_map(|node| node["replicas"].as_array().into_iter().flatten())
        .filter(|replica| replica["role"] == "data")
        .map(|replica| &replica["store"])
        .collect();
    assert_eq!(stores.len(), node_ids.len(), "{cluster_view}");
    for store in stores {
        assert_eq!(store["disk_tier"], true, "{store}");
        assert!(
            store["disk_keys"].as_u64().expect("disk_keys") >= (KEYS / 2) as u64,
            "{store}"
        );
        assert!(store["keys"].as_u64().expect("keys") > 0, "{store}");
    }
    let node_view = request(http, "GET", "/v1/node", None, Vec::new()).await;
    let node_view: serde_json::Value =
        serde_json::from_str(&node_view.text()).expect("/v1/node is JSON");
    let on_disk: u64 = node_view["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|shard| shard["disk_keys"].as_u64().expect("disk_keys"))
        .sum();
    assert!(on_disk >= (KEYS / 2) as u64, "{node_view}");

    eprintln!("phase 4: every node stops and starts again");
    for &node_id in &node_ids {
        cluster
            .stop_node_without_handoff(node_id)
            .await
            .expect("the node stops");
    }
    for &node_id in &node_ids {
        cluster.start_node(node_id).await.expect("the node starts");
    }

    eprintln!("phase 5: everything still reads back exactly");
    read_all(&client, "after the restart").await;
    for &node_id in &node_ids {
        wait_for(
            "every restarted replica holds values on disk again",
            STEP_TIMEOUT,
            Duration::from_millis(100),
            || async { (disk_counters(&cluster, node_id).0 > 0).then_some(()) },
        )
        .await;
    }
    cluster.shutdown().await;
}
