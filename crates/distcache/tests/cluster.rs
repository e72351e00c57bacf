//! Real `distcache node` processes on loopback (not simulation): three
//! nodes from configuration files, each hosting a controller replica and a
//! replica of one data group. Writes and reads go through the public gRPC
//! API (`distcache-client`); the group's leader is killed with SIGKILL and
//! restarted on its data directory; nothing acknowledged may be lost.

#![cfg(not(madsim))]

mod support;

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use distcache::NodeConfig;
use distcache_client::proto::StatusRequest;
use distcache_client::proto::admin_client::AdminClient;
use distcache_client::{Client, ClientConfig};
use support::cluster::TestCluster;
use support::keys::{check_all, wait_for, write_keys};
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
/// failure is made real: a directory stands where a follower's next
/// snapshot write puts its temporary file, so that write fails once the
/// follower's Raft state passes `max_raft_state_bytes` (set to its minimum).
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
    let temporary = cluster
        .data_dir(broken)
        .join("data")
        .join("raft-snapshot.tmp");
    std::fs::create_dir_all(&temporary).expect("block the snapshot write");
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
