//! Real `distcache node` processes on loopback (not simulation): three
//! nodes from configuration files, each hosting a controller replica and a
//! replica of one data group. Writes and reads go through the public gRPC
//! API (`distcache-client`); the group's leader is killed with SIGKILL and
//! restarted on its data directory, or killed with its disk lost and
//! replaced by a new node process; nothing acknowledged may be lost.

#![cfg(not(madsim))]

mod support;

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use distcache::NodeConfig;
use distcache_client::proto::StatusRequest;
use distcache_client::proto::admin_client::AdminClient;
use distcache_client::{Client, ClientConfig};
use support::cluster::{TestCluster, joining_config};
use support::keys::{check_all, wait_for, write_keys, write_until};
use support::processes::{BINARY, NodeProcesses};
use testkit::ports::free_ports;

/// How often a test waiting on a condition looks again.
const POLL: Duration = Duration::from_millis(100);

/// Three node processes, each hosting a controller replica and a replica
/// of data group 1.
struct Cluster {
    processes: NodeProcesses,
    configs: Vec<NodeConfig>,
}

impl Cluster {
    /// Writes the three configuration files, each changed by `adjust`.
    fn new(adjust: impl Fn(&mut NodeConfig)) -> Cluster {
        let processes = NodeProcesses::new();
        let mut configs = TestCluster::builder()
            .cluster_id("test")
            .groups(1)
            .replicas(3)
            .request_timeout_ms(3000)
            .configs(processes.dir.path());
        for config in &mut configs {
            adjust(config);
            processes.write_config(config.node_id, &config.to_toml());
        }
        Cluster { processes, configs }
    }

    fn data_dir(&self, node_id: u64) -> PathBuf {
        self.configs[(node_id - 1) as usize].data_dir.clone()
    }

    fn grpc(&self, node_id: u64) -> String {
        let entry = &self.configs[0].nodes[(node_id - 1) as usize];
        format!("{}:{}", entry.host, entry.grpc_port)
    }

    fn seeds(&self) -> Vec<String> {
        (1..=3).map(|node_id| self.grpc(node_id)).collect()
    }
}

impl Deref for Cluster {
    type Target = NodeProcesses;

    fn deref(&self) -> &NodeProcesses {
        &self.processes
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut NodeProcesses {
        &mut self.processes
    }
}

/// The node id hosting the data group's leader, per `Admin.Status`.
async fn data_leader(cluster: &Cluster) -> Option<u64> {
    for seed in cluster.seeds() {
        let Ok(mut admin) = AdminClient::connect(format!("http://{seed}")).await else {
            continue;
        };
        let Ok(reply) = admin.status(StatusRequest {}).await else {
            continue;
        };
        for node in reply.into_inner().nodes {
            if node
                .replicas
                .iter()
                .any(|replica| replica.role == "data" && replica.is_leader)
            {
                return Some(node.node_id);
            }
        }
    }
    None
}

fn client(cluster: &Cluster) -> Client {
    let seeds = cluster.seeds();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    Client::new(
        &seeds,
        ClientConfig {
            rpc_timeout: Duration::from_secs(2),
            operation_deadline: Duration::from_secs(20),
            ..ClientConfig::default()
        },
    )
    .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_processes_survive_a_leader_kill_and_restart() {
    let mut cluster = Cluster::new(|_| {});

    // Phase 1: three processes from config files form the cluster.
    for node_id in 1..=3 {
        cluster.start(node_id);
    }
    let client = client(&cluster);
    let mut acknowledged = BTreeMap::new();
    write_keys(&client, "first", 0..40, &mut acknowledged).await;
    check_all(&client, &acknowledged, "after the first writes").await;

    // Phase 2: a data directory that belongs to another node is refused.
    let refused = Command::new(BINARY)
        .args(["node", "--config"])
        .arg(cluster.config_path(2))
        .arg("--data-dir")
        .arg(cluster.data_dir(1))
        .arg("--grpc-port")
        .arg(free_ports(1)[0].to_string())
        .stdout(Stdio::null())
        .output()
        .expect("run distcache node");
    assert!(!refused.status.success(), "a foreign data dir was accepted");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("belongs to node 1"),
        "unexpected refusal message: {stderr}"
    );

    // Phase 3: kill -9 the data group's leader; writes and reads go on.
    let leader = wait_for("a data leader", Duration::from_secs(10), POLL, || {
        data_leader(&cluster)
    })
    .await;
    cluster.kill_hard(leader);
    write_keys(&client, "second", 20..60, &mut acknowledged).await;
    check_all(&client, &acknowledged, "with the old leader dead").await;

    // Phase 4: restart it on its data directory; it rejoins with its state.
    cluster.start(leader);
    write_keys(&client, "third", 50..80, &mut acknowledged).await;
    // Read through the restarted node alone: it forwards to the leader if
    // it is not the leader itself.
    let restarted_only = Client::new(
        &[cluster.grpc(leader).as_str()],
        ClientConfig {
            operation_deadline: Duration::from_secs(20),
            ..ClientConfig::default()
        },
    )
    .expect("client");
    check_all(&restarted_only, &acknowledged, "through the restarted node").await;
    check_all(&client, &acknowledged, "after the restart").await;

    // Phase 5: SIGTERM stops every node cleanly (exit 0).
    for node_id in 1..=3 {
        let exit = cluster.terminate(node_id, Duration::from_secs(15)).await;
        assert!(
            exit.success(),
            "node {node_id} exited with {exit}: {}",
            cluster.log_of(node_id)
        );
    }
}

/// `distcache node --print-config` shows the file with the environment and
/// flags applied (flags win).
#[test]
fn print_config_applies_env_then_flags() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cluster/node1.toml");
    let output = Command::new(BINARY)
        .args(["node", "--print-config", "--config"])
        .arg(&examples)
        .env("DISTCACHE_NODE_ID", "2")
        .env("DISTCACHE_REQUEST_TIMEOUT_MS", "1234")
        .args(["--request-timeout-ms", "4321"])
        .output()
        .expect("run distcache");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("node_id = 2"), "{text}");
    assert!(text.contains("request_timeout_ms = 4321"), "{text}");
}

/// Issue 13: a node whose storage fails ends its process with exit status
/// 74 (`EX_IOERR`) and says why, so a supervisor restarts it (before, the
/// replica stopped but the process stayed up, serving nothing). The
/// failure is made real: a non-empty directory stands where a follower's
/// next snapshot file goes (`raft-snapshot`), so storing that snapshot
/// fails once the follower's Raft state passes `max_raft_state_bytes` (set
/// to its minimum): the rename of a snapshot written off the Raft loop, or
/// of a leader's snapshot's temporary file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_storage_fails_exits_with_status_74() {
    let mut cluster = Cluster::new(|config| config.max_raft_state_bytes = 4096);

    // Phase 1: the cluster serves.
    for node_id in 1..=3 {
        cluster.start(node_id);
    }
    let client = client(&cluster);
    let mut acknowledged = BTreeMap::new();
    write_keys(&client, "first", 0..2, &mut acknowledged).await;

    // Phase 2: break a follower's storage, then write until it snapshots.
    let leader = wait_for("a data leader", Duration::from_secs(10), POLL, || {
        data_leader(&cluster)
    })
    .await;
    let broken = (1..=3).find(|&id| id != leader).expect("a follower");
    let snapshot_file = cluster.data_dir(broken).join("data").join("raft-snapshot");
    // A snapshot the node stored already goes (it is never restarted).
    let _ = std::fs::remove_file(&snapshot_file);
    std::fs::create_dir_all(snapshot_file.join("in-the-way")).expect("block the snapshot");
    let value = "v".repeat(1024);
    for i in 0..200 {
        let exited = cluster
            .children
            .get_mut(&broken)
            .expect("the broken node was started")
            .try_wait()
            .expect("poll the child");
        if exited.is_some() {
            break;
        }
        // Writes may fail while the group has one replica fewer: the test
        // is about the broken node, not about them.
        let _ = client
            .set(format!("fill-{i}").as_bytes(), value.as_bytes())
            .await;
    }

    // Phase 3: the broken node's process ends by itself, with status 74.
    let status = wait_for(
        "the node with failed storage exits",
        Duration::from_secs(30),
        POLL,
        || {
            let exited = cluster
                .children
                .get_mut(&broken)
                .expect("the broken node was started")
                .try_wait()
                .expect("poll the child");
            std::future::ready(exited)
        },
    )
    .await;
    let log = cluster.log_of(broken);
    assert_eq!(
        status.code(),
        Some(74),
        "exit status of a node whose storage failed; its log:\n{log}"
    );
    assert!(
        log.contains("storage failed"),
        "the reason is not in the log:\n{log}"
    );
}

/// Issue 21, on real processes: a data group's leader is killed with
/// SIGKILL and its disk is lost (the data directory deleted) while a client
/// writes; a new `distcache node` process with a new id starts empty as a
/// joining replica, and `distcache admin replace-replica` swaps it in. The
/// new node then leads the group, and every write the client saw
/// acknowledged reads back through it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_whose_disk_is_lost_is_replaced_by_a_new_process() {
    let mut cluster = Cluster::new(|_| {});
    for node_id in 1..=3 {
        cluster.start(node_id);
    }
    let replacement = joining_config(&cluster.configs[0], 4, 1, cluster.processes.dir.path());
    cluster.write_config(4, &replacement.to_toml());
    let entry = replacement.nodes.last().expect("node 4's entry");
    let node4_grpc = format!("127.0.0.1:{}", entry.grpc_port);
    let node4_data = format!("127.0.0.1:{}", entry.data_port.expect("a data port"));

    // Phase 1: a client writes all along (it knows nodes 1-3 only).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_until(client(&cluster), Arc::clone(&stop)));
    let leader = wait_for("a data leader", Duration::from_secs(20), POLL, || {
        data_leader(&cluster)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Phase 2: the leader's machine dies with its disk.
    cluster.kill_hard(leader);
    std::fs::remove_dir_all(cluster.data_dir(leader)).expect("the dead node's disk is lost");
    let survivor = (1..=3).find(|&id| id != leader).expect("a survivor");

    // Phase 3: a new node, empty, joins in its place.
    cluster.start(4);
    let leader_text = leader.to_string();
    let (mut succeeded, mut text) = (false, String::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !succeeded && tokio::time::Instant::now() < deadline {
        let output = NodeProcesses::cli(
            &cluster.grpc(survivor),
            &[
                "admin",
                "replace-replica",
                "--group",
                "1",
                "--remove",
                &leader_text,
                "--add",
                "4",
                "--peer-addr",
                &node4_data,
            ],
        );
        succeeded = output.status.success();
        text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !succeeded {
            // The group elects a new leader first; a busy answer retries.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(
        succeeded,
        "replace-replica did not succeed within 60 s: {text}\nnode 4's log:\n{}",
        cluster.log_of(4)
    );
    assert!(
        text.contains(&format!("node 4 ({node4_data})"))
            && !text.contains(&format!("node {leader} (")),
        "{text}"
    );

    // Phase 4: the new replica takes the lead; the client goes on.
    let output = NodeProcesses::cli(
        &cluster.grpc(survivor),
        &["admin", "transfer-leader", "--group", "1", "--to", "4"],
    );
    assert!(
        output.status.success(),
        "transfer-leader to node 4: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, failed) = writer.await.expect("writer");
    assert!(
        acknowledged.len() >= 20,
        "only {} writes acknowledged ({failed} failed)",
        acknowledged.len()
    );

    // Phase 5: every acknowledged write reads back through node 4 alone.
    let through_node4 = Client::new(
        &[node4_grpc.as_str()],
        ClientConfig {
            operation_deadline: Duration::from_secs(20),
            ..ClientConfig::default()
        },
    )
    .expect("client");
    check_all(&through_node4, &acknowledged, "through the new node").await;
    eprintln!(
        "replacement: node {leader} killed and replaced by node 4; {} writes acknowledged \
         ({failed} failed during the change), all read back",
        acknowledged.len()
    );
    for node_id in (1..=4).filter(|&id| id != leader) {
        let exit = cluster.terminate(node_id, Duration::from_secs(15)).await;
        assert!(
            exit.success(),
            "node {node_id} exited with {exit}: {}",
            cluster.log_of(node_id)
        );
    }
}
