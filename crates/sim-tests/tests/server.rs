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
//! writes lost, as after a power cut), a node paused (a long GC or SIGSTOP),
//! a node cut off from its peers (its clients still reach it, so it must
//! forward or refuse, never answer from a stale state).

#![cfg(madsim)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use distcache::{Node, NodeConfig};
use distcache_client::{Client, ClientConfig, ClientError};
use labrpc::sim::{Network, NodeId};
use linearizability::{KvInput, KvModel, KvOutput, Recorder, StepBudget, Verdict, check};
use sim_tests::harness::{client_ip, node_ip, phase, within};

const NODES: usize = 6;
const GRPC_PORT: u16 = 50051;
const CONTROLLER_PORT: u16 = 7001;
const DATA_PORT: u16 = 7101;
const TEST_LIMIT: Duration = Duration::from_secs(180);
/// Few keys, so that clients contend and the checker sees real overlap.
const KEYS: usize = 6;

/// The TOML every node reads (the same `[[nodes]]` table for all, as a
/// real deployment's files).
fn config_text(node_id: usize) -> String {
    let mut text = format!(
        "cluster_id = \"sim\"\nnode_id = {node_id}\ndata_dir = \"/data/node{node_id}\"\n\
         shard_count = 10\nrequest_timeout_ms = 3000\nmax_raft_state_bytes = 65536\n\
         protected_mode = false\n"
    );
    for id in 1..=NODES {
        let host = node_ip(id - 1);
        let group = if id <= 3 { 1 } else { 2 };
        text.push_str(&format!(
            "\n[[nodes]]\nid = {id}\nhost = \"{host}\"\ngrpc_port = {GRPC_PORT}\n\
             group = {group}\ndata_port = {DATA_PORT}\n"
        ));
        if id <= 3 {
            text.push_str(&format!("controller_port = {CONTROLLER_PORT}\n"));
        }
    }
    text
}

struct Cluster {
    net: Network,
    nodes: Vec<NodeId>,
    recorder: Recorder<KvInput, KvOutput>,
    start: tokio::time::Instant,
    next_client: AtomicU64,
}

impl Cluster {
    fn start() -> Cluster {
        let net = Network::new();
        let nodes = (1..=NODES)
            .map(|id| {
                net.add_node(&format!("node{id}"), node_ip(id - 1), move || async move {
                    let config = NodeConfig::from_toml(&config_text(id), "sim")
                        .unwrap_or_else(|error| panic!("node {id}: {error}"));
                    let node = Node::start(config)
                        .await
                        .unwrap_or_else(|error| panic!("node {id} did not start: {error}"));
                    // Serve until the simulation kills this node.
                    std::future::pending::<()>().await;
                    drop(node);
                })
            })
            .collect();
        Cluster {
            net,
            nodes,
            recorder: Recorder::new(),
            start: labrpc::runtime::now(),
            next_client: AtomicU64::new(0),
        }
    }

    fn seeds() -> Vec<String> {
        (0..NODES)
            .map(|index| format!("{}:{GRPC_PORT}", node_ip(index)))
            .collect()
    }

    /// A recording client on a host of its own.
    fn client(&self) -> RecordingClient {
        let index = self.next_client.fetch_add(1, Ordering::Relaxed);
        let host = self
            .net
            .add_client_node(&format!("client{index}"), client_ip(index as usize));
        let seeds = Cluster::seeds();
        let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
        let config = ClientConfig {
            operation_deadline: Duration::from_secs(8),
            rpc_timeout: Duration::from_secs(1),
            ..ClientConfig::default()
        };
        let client = Client::new(&seeds, config).expect("seed addresses parse");
        RecordingClient {
            id: index,
            host,
            net: self.net.clone(),
            client: Arc::new(client),
            recorder: self.recorder.clone(),
            start: self.start,
        }
    }

    fn check_linearizable(&self) {
        let history = self
            .recorder
            .history()
            .expect("simulated clock never goes backwards");
        let operations = history.operations().len();
        let result = check(&KvModel, &history, StepBudget::new(200_000_000));
        match result.verdict {
            Verdict::Linearizable => tracing::info!(operations, "history is linearizable"),
            Verdict::NotLinearizable => panic!(
                "history of {operations} operations is not linearizable:\n{}",
                result.explain(&KvModel, &history)
            ),
            Verdict::Unknown => panic!(
                "linearizability of {operations} operations unknown after {} steps",
                result.steps_taken
            ),
        }
    }
}

#[derive(Clone)]
struct RecordingClient {
    id: u64,
    host: NodeId,
    net: Network,
    client: Arc<Client>,
    recorder: Recorder<KvInput, KvOutput>,
    start: tokio::time::Instant,
}

/// What one call ended in, for the workload's counters.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Ok,
    Unknown,
}

impl RecordingClient {
    fn now_us(&self) -> u64 {
        u64::try_from(
            labrpc::runtime::now()
                .duration_since(self.start)
                .as_micros(),
        )
        .unwrap_or(u64::MAX)
    }

    /// One random operation on one of the shared keys, recorded. A timeout
    /// is an unknown outcome; any other error is a bug (the workload sends
    /// only valid requests).
    async fn random_op(&self, sequence: u64) -> Ended {
        let key = format!("key-{}", madsim::rand::random::<u64>() % KEYS as u64);
        let value = format!("c{}-{sequence}", self.id);
        let client = &self.client;
        match madsim::rand::random::<u8>() % 10 {
            0..=3 => {
                let input = KvInput::Get { key: key.clone() };
                self.recorded(input, async {
                    let value = client.get(key.as_bytes()).await?;
                    Ok(KvOutput::Value(value.map(|bytes| {
                        String::from_utf8(bytes).expect("the workload writes UTF-8")
                    })))
                })
                .await
            }
            4..=6 => {
                let input = KvInput::Put {
                    key: key.clone(),
                    value: value.clone(),
                };
                self.recorded(input, async {
                    client.set(key.as_bytes(), value.as_bytes()).await?;
                    Ok(KvOutput::Done)
                })
                .await
            }
            7 => {
                let input = KvInput::Delete { key: key.clone() };
                self.recorded(input, async {
                    Ok(KvOutput::Deleted(client.delete(key.as_bytes()).await?))
                })
                .await
            }
            _ => {
                // Expect this client's previous value (or absence): a guess,
                // so both outcomes happen.
                let expected = madsim::rand::random::<bool>()
                    .then(|| format!("c{}-{}", self.id, sequence.saturating_sub(1)));
                let input = KvInput::Cas {
                    key: key.clone(),
                    expected: expected.clone(),
                    value: value.clone(),
                };
                self.recorded(input, async {
                    let expected = expected.as_deref().map(str::as_bytes);
                    let swapped = client
                        .compare_and_set(key.as_bytes(), expected, value.as_bytes())
                        .await?;
                    Ok(KvOutput::Cas(swapped))
                })
                .await
            }
        }
    }

    async fn recorded(
        &self,
        input: KvInput,
        call: impl Future<Output = Result<KvOutput, ClientError>>,
    ) -> Ended {
        let pending = self.recorder.call(self.id, input.clone(), self.now_us());
        let result = call.await;
        let now_us = self.now_us();
        match result {
            Ok(output) => {
                self.recorder.returned(pending, output, now_us);
                Ended::Ok
            }
            Err(ClientError::Timeout { .. }) => {
                self.recorder.timed_out(pending, now_us);
                Ended::Unknown
            }
            Err(error) => panic!("client {}: {input:?} failed: {error}", self.id),
        }
    }

    /// Runs operations until `stop` is set; (acknowledged, unknown).
    fn spawn_workload(&self, stop: Arc<AtomicBool>) -> madsim::task::JoinHandle<(u64, u64)> {
        let me = self.clone();
        self.net.spawn(self.host, async move {
            let (mut acknowledged, mut unknown) = (0, 0);
            let mut sequence = 0;
            while !stop.load(Ordering::Relaxed) {
                sequence += 1;
                match me.random_op(sequence).await {
                    Ended::Ok => acknowledged += 1,
                    Ended::Unknown => unknown += 1,
                }
                tokio::time::sleep(Duration::from_millis(madsim::rand::random::<u64>() % 20)).await;
            }
            (acknowledged, unknown)
        })
    }
}

/// Waits until a write through the cluster succeeds (every group elected,
/// the controller's first configuration made).
async fn wait_ready(cluster: &Cluster) {
    let probe = cluster.client();
    let client = Arc::clone(&probe.client);
    within(
        "the cluster answers a write",
        Duration::from_secs(60),
        cluster.net.spawn(probe.host, async move {
            loop {
                if client.set(b"ready-probe", b"1").await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }),
    )
    .await
    .expect("client hosts are never killed");
}

/// Runs `clients` workloads while `faults` acts on the cluster, then heals,
/// lets the clients finish, and checks the history.
async fn run_under(clients: usize, cluster: Cluster, faults: impl AsyncFnOnce(&Cluster)) {
    wait_ready(&cluster).await;
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..clients)
        .map(|_| cluster.client().spawn_workload(Arc::clone(&stop)))
        .collect();
    faults(&cluster).await;
    cluster.net.heal_all();
    // Some time healed, so the last operations complete.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acknowledged, mut unknown) = (0, 0);
    for worker in workers {
        let (ok, lost) = worker.await.expect("client hosts are never killed");
        acknowledged += ok;
        unknown += lost;
    }
    let operations = cluster
        .recorder
        .history()
        .map_or(0, |h| h.operations().len());
    // Printed (shown with --nocapture) so a run says how much it checked.
    println!(
        "{clients} clients: {acknowledged} acknowledged, {unknown} unknown, {operations} recorded"
    );
    assert!(
        acknowledged > 20 * clients as u64,
        "only {acknowledged} operations were acknowledged ({unknown} unknown): the cluster did not serve"
    );
    cluster.check_linearizable();
}

fn random_node(cluster: &Cluster) -> NodeId {
    cluster.nodes[madsim::rand::random::<u64>() as usize % cluster.nodes.len()]
}

#[madsim::test]
async fn nodes_serve_linearizably_with_no_faults() {
    within("test", TEST_LIMIT, async {
        phase("six nodes from their config files, four clients, no faults");
        run_under(4, Cluster::start(), async |_| {
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
    })
    .await;
}

#[madsim::test]
async fn nodes_killed_and_restarted_from_their_data_directories() {
    within("test", TEST_LIMIT, async {
        phase("kill -9 a random node, restart it from its files, five times");
        run_under(4, Cluster::start(), async |cluster| {
            for _ in 0..5 {
                let node = random_node(cluster);
                tracing::info!(node = %cluster.net.describe(node), "kill");
                cluster.net.kill(node);
                tokio::time::sleep(Duration::from_millis(
                    500 + madsim::rand::random::<u64>() % 2000,
                ))
                .await;
                cluster.net.restart(node).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
        .await;
    })
    .await;
}

#[madsim::test]
async fn nodes_paused_and_cut_off_from_their_peers() {
    within("test", TEST_LIMIT, async {
        phase("pause a node, or cut it off from every other server; clients still reach it");
        run_under(4, Cluster::start(), async |cluster| {
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
        .await;
    })
    .await;
}
