//! Real `distcache node` processes on loopback (not simulation): three
//! nodes from configuration files, each hosting a controller replica and a
//! replica of one data group. Writes and reads go through the public gRPC
//! API (`distcache-client`); the group's leader is killed with SIGKILL and
//! restarted on its data directory; nothing acknowledged may be lost.

#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use distcache_client::proto::StatusRequest;
use distcache_client::proto::admin_client::AdminClient;
use distcache_client::{Client, ClientConfig};
use tokio::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_distcache");

/// Free loopback ports (bound, then released).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("local address").port())
        .collect()
}

struct Cluster {
    dir: tempfile::TempDir,
    grpc_ports: Vec<u16>,
    children: BTreeMap<u64, Child>,
}

impl Cluster {
    fn config_path(&self, node_id: u64) -> PathBuf {
        self.dir.path().join(format!("node{node_id}.toml"))
    }

    fn data_dir(&self, node_id: u64) -> PathBuf {
        self.dir.path().join(format!("data{node_id}"))
    }

    fn write_configs(&self, ports: &[u16]) {
        let mut table = String::new();
        for index in 0..3 {
            table.push_str(&format!(
                "[[nodes]]\nid = {}\nhost = \"127.0.0.1\"\ngrpc_port = {}\ncontroller_port = {}\ngroup = 1\ndata_port = {}\n\n",
                index + 1,
                ports[index],
                ports[3 + index],
                ports[6 + index]
            ));
        }
        for node_id in 1..=3u64 {
            let text = format!(
                "cluster_id = \"test\"\nnode_id = {node_id}\ndata_dir = {:?}\nrequest_timeout_ms = 3000\n\n{table}",
                self.data_dir(node_id)
            );
            std::fs::write(self.config_path(node_id), text).expect("write a config file");
        }
    }

    fn start(&mut self, node_id: u64) {
        let log = |suffix: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join(format!("node{node_id}.{suffix}")))
                .expect("open a log file")
        };
        let child = Command::new(BINARY)
            .args(["node", "--config"])
            .arg(self.config_path(node_id))
            .env("RUST_LOG", "warn,distcache=info")
            .stdout(log("out"))
            .stderr(log("err"))
            .spawn()
            .expect("start distcache node");
        self.children.insert(node_id, child);
    }

    fn kill_hard(&mut self, node_id: u64) {
        let mut child = self.children.remove(&node_id).expect("node is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    fn seeds(&self) -> Vec<String> {
        self.grpc_ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect()
    }

    fn log_of(&self, node_id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{node_id}.err")))
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Writes `keys`, recording what was acknowledged.
async fn write_keys(
    client: &Client,
    round: &str,
    keys: std::ops::Range<u32>,
    acknowledged: &mut BTreeMap<String, String>,
) {
    for i in keys {
        let key = format!("key-{i}");
        let value = format!("{round}-{i}");
        match client.set(key.as_bytes(), value.as_bytes()).await {
            Ok(()) => {
                acknowledged.insert(key, value);
            }
            Err(error) => panic!("write {key} in round {round} failed: {error}"),
        }
    }
}

async fn check_all(client: &Client, acknowledged: &BTreeMap<String, String>, phase: &str) {
    for (key, value) in acknowledged {
        let got = client
            .get(key.as_bytes())
            .await
            .unwrap_or_else(|error| panic!("{phase}: read of {key} failed: {error}"));
        assert_eq!(
            got.as_deref(),
            Some(value.as_bytes()),
            "{phase}: {key} lost its acknowledged value {value:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_processes_survive_a_leader_kill_and_restart() {
    let ports = free_ports(9);
    let mut cluster = Cluster {
        dir: tempfile::tempdir().expect("temporary directory"),
        grpc_ports: ports[..3].to_vec(),
        children: BTreeMap::new(),
    };
    cluster.write_configs(&ports);

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
    let leader = wait_for("a data leader", Duration::from_secs(10), || {
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
        &[format!("127.0.0.1:{}", cluster.grpc_ports[(leader - 1) as usize]).as_str()],
        ClientConfig {
            operation_deadline: Duration::from_secs(20),
            ..ClientConfig::default()
        },
    )
    .expect("client");
    check_all(&restarted_only, &acknowledged, "through the restarted node").await;
    check_all(&client, &acknowledged, "after the restart").await;

    // Phase 5: SIGTERM stops every node cleanly (exit 0).
    for (node_id, mut child) in std::mem::take(&mut cluster.children) {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("send SIGTERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        let exit = loop {
            if let Some(exit) = child.try_wait().expect("poll child") {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "node {node_id} did not stop within 15 s of SIGTERM: {}",
                cluster.log_of(node_id)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
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
    let ports = free_ports(9);
    let mut cluster = Cluster {
        dir: tempfile::tempdir().expect("temporary directory"),
        grpc_ports: ports[..3].to_vec(),
        children: BTreeMap::new(),
    };
    cluster.write_configs(&ports);
    for node_id in 1..=3 {
        let path = cluster.config_path(node_id);
        let text = std::fs::read_to_string(&path).expect("read a config file");
        std::fs::write(&path, format!("max_raft_state_bytes = 4096\n{text}"))
            .expect("write a config file");
    }

    // Phase 1: the cluster serves.
    for node_id in 1..=3 {
        cluster.start(node_id);
    }
    let client = client(&cluster);
    let mut acknowledged = BTreeMap::new();
    write_keys(&client, "first", 0..2, &mut acknowledged).await;

    // Phase 2: break a follower's storage, then write until it snapshots.
    let leader = wait_for("a data leader", Duration::from_secs(10), || {
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
