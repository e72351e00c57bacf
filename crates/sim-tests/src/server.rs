//! Whole `distcache` nodes in one simulation, for `tests/server.rs` and the
//! swarm's server scenario: six nodes from one TOML `[[nodes]]` table
//! (nodes 1-3 host a controller replica and a replica of data group 1,
//! nodes 4-6 a replica of data group 2), started by `distcache::Node` from
//! their config as a user's processes are, and clients on
//! `distcache-client` (routing by the shard map, exactly-once sessions)
//! on hosts of their own, every call recorded for the kv linearizability
//! model.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use api::KvClient;
use distcache::http::dashboard::DashboardView;
use distcache::{Node, NodeConfig};
use distcache_client::{Client, ClientConfig};
use labrpc::sim::{Network, NodeId};
use linearizability::{KvInput, KvModel, KvOutput, Recorder, StepBudget};

use tokio::sync::Notify;

use crate::harness::{self, RecordingKv, check_history, within};

pub const NODES: usize = 6;
const GRPC_PORT: u16 = 50051;
const CONTROLLER_PORT: u16 = 7001;
const DATA_PORT: u16 = 7101;
const HTTP_PORT: u16 = 8080;
/// Every node also serves RESP (the blocking commands' test talks to it).
pub const RESP_PORT: u16 = 6379;
/// The shard count every node's configuration names.
pub const SHARDS: usize = 10;
/// Few keys, so that clients contend and the checker sees real overlap.
const KEYS: usize = 6;

/// The TOML every node reads (the same `[[nodes]]` table for all, as a
/// real deployment's files), with `settings` (top-level lines) added.
fn config_text(subnet: u8, node_id: usize, settings: &str) -> String {
    let mut text = format!(
        "cluster_id = \"sim\"\nnode_id = {node_id}\ndata_dir = \"/data/node{node_id}\"\n\
         shard_count = {SHARDS}\nrequest_timeout_ms = 3000\nmax_raft_state_bytes = 65536\n\
         protected_mode = false\n{settings}"
    );
    for id in 1..=NODES {
        let host = server_ip(subnet, id);
        let group = if id <= 3 { 1 } else { 2 };
        text.push_str(&format!(
            "\n[[nodes]]\nid = {id}\nhost = \"{host}\"\ngrpc_port = {GRPC_PORT}\n\
             group = {group}\ndata_port = {DATA_PORT}\nhttp_port = {HTTP_PORT}\n\
             resp_port = {RESP_PORT}\n"
        ));
        if id <= 3 {
            text.push_str(&format!("controller_port = {CONTROLLER_PORT}\n"));
        }
    }
    text
}

pub struct Cluster {
    pub net: Network,
    pub nodes: Vec<NodeId>,
    subnet: u8,
    recorder: Recorder<KvInput, KvOutput>,
    /// One per node (index = node id - 1): a graceful stop request. A stop
    /// asked while the node is down applies when it next starts.
    stops: Arc<Vec<Notify>>,
    start: tokio::time::Instant,
    next_client: AtomicU64,
}

impl Cluster {
    /// Starts the six nodes with addresses 10.`subnet`.0.x (clients on
    /// 10.`subnet + 1`.x.y), apart from other clusters in one simulation.
    pub fn start(subnet: u8) -> Cluster {
        Cluster::start_with(subnet, "")
    }

    /// [`Cluster::start`] with `settings`, top-level lines of the nodes'
    /// TOML (`"balance_load = true\n"`), the same on every node.
    pub fn start_with(subnet: u8, settings: &str) -> Cluster {
        let settings: Arc<str> = Arc::from(settings);
        let net = Network::new();
        let stops: Arc<Vec<Notify>> = Arc::new((1..=NODES).map(|_| Notify::new()).collect());
        let nodes = (1..=NODES)
            .map(|id| {
                let stops = Arc::clone(&stops);
                let settings = Arc::clone(&settings);
                net.add_node(&format!("node{id}"), server_ip(subnet, id), move || {
                    let stops = Arc::clone(&stops);
                    let settings = Arc::clone(&settings);
                    async move {
                        let config =
                            NodeConfig::from_toml(&config_text(subnet, id, &settings), "sim")
                                .unwrap_or_else(|error| panic!("node {id}: {error}"));
                        let node = Node::start_in_process(config)
                            .await
                            .unwrap_or_else(|error| panic!("node {id} did not start: {error}"));
                        // Serve until the simulation kills this node, or
                        // until a graceful stop (as on SIGTERM: leaders
                        // hand off first); then stay down until restarted.
                        stops[id - 1].notified().await;
                        node.shutdown().await;
                        tracing::info!(node_id = id, "stopped gracefully");
                        std::future::pending::<()>().await;
                    }
                })
            })
            .collect();
        Cluster {
            net,
            nodes,
            stops,
            subnet,
            recorder: Recorder::new(),
            start: labrpc::runtime::now(),
            next_client: AtomicU64::new(0),
        }
    }

    /// Asks `node` to stop as `distcache node` does on SIGTERM
    /// ([`Node::shutdown`]: a leader hands off first, in-flight requests
    /// finish or fail, the data directory is flushed). It stays down until
    /// `net.restart(node)`.
    pub fn stop_gracefully(&self, node: NodeId) {
        let index = self
            .nodes
            .iter()
            .position(|&n| n == node)
            .expect("a node of this cluster");
        self.stops[index].notify_one();
    }

    fn seeds(&self) -> Vec<String> {
        (1..=NODES)
            .map(|id| format!("{}:{GRPC_PORT}", server_ip(self.subnet, id)))
            .collect()
    }

    /// `GET /v1/dashboard` on node `via` (1-based), from a client host of
    /// its own; `None` if it did not answer within 5 s.
    pub async fn dashboard(&self, via: usize) -> Option<DashboardView> {
        let index = self.next_client.fetch_add(1, Ordering::Relaxed);
        let host = self
            .net
            .add_client_node(&format!("client{index}"), client_ip(self.subnet, index));
        let addr = std::net::SocketAddr::new(server_ip(self.subnet, via), HTTP_PORT);
        let body = self.net.spawn(host, async move {
            tokio::time::timeout(Duration::from_secs(5), http_get(addr, "/v1/dashboard"))
                .await
                .ok()
                .flatten()
        });
        let body = body.await.expect("client hosts are never killed")?;
        Some(serde_json::from_slice(&body).expect("/v1/dashboard answers its schema"))
    }

    /// The sum of metric `name`'s samples (all label sets) in node
    /// `via`'s (1-based) `GET /metrics`, from a client host of its own;
    /// `None` if it did not answer within 5 s. Counters restart with
    /// their node.
    pub async fn metric(&self, via: usize, name: &str) -> Option<f64> {
        let text = self.metrics_text(via).await?;
        Some(
            text.lines()
                .filter(|line| {
                    line.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
                })
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }

    /// Node `via`'s (1-based) `GET /metrics`, from a client host of its
    /// own; `None` if it did not answer within 5 s.
    pub async fn metrics_text(&self, via: usize) -> Option<String> {
        let addr = std::net::SocketAddr::new(server_ip(self.subnet, via), HTTP_PORT);
        let body = self.net.spawn(self.client_host(), async move {
            tokio::time::timeout(Duration::from_secs(5), http_get(addr, "/metrics"))
                .await
                .ok()
                .flatten()
        });
        let body = body.await.expect("client hosts are never killed")?;
        Some(String::from_utf8(body).expect("/metrics is text"))
    }

    /// Node `via`'s (1-based) requests per shard so far
    /// (`distcache_shard_requests_total{shard}` of its `GET /metrics`; a
    /// shard with none is 0), from a client host of its own; `None` if it
    /// did not answer within 5 s.
    pub async fn shard_requests(&self, via: usize) -> Option<Vec<u64>> {
        let text = self.metrics_text(via).await?;
        let mut requests = vec![0; SHARDS];
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("distcache_shard_requests_total{shard=\"") else {
                continue;
            };
            let (shard, value) = rest.split_once("\"} ").expect("a counter sample");
            let shard: usize = shard.parse().expect("a shard number");
            requests[shard] = value.parse().expect("a count");
        }
        Some(requests)
    }

    /// A client host of its own, for a test's own clients (RESP over the
    /// simulated TCP).
    pub fn client_host(&self) -> NodeId {
        let index = self.next_client.fetch_add(1, Ordering::Relaxed);
        self.net
            .add_client_node(&format!("client{index}"), client_ip(self.subnet, index))
    }

    /// Node `node_id`'s (1-based) RESP address.
    pub fn resp_addr(&self, node_id: usize) -> std::net::SocketAddr {
        std::net::SocketAddr::new(server_ip(self.subnet, node_id), RESP_PORT)
    }

    /// Node `node_id`'s (1-based) gRPC address (`distcache_client` seeds).
    pub fn grpc_addr(&self, node_id: usize) -> std::net::SocketAddr {
        std::net::SocketAddr::new(server_ip(self.subnet, node_id), GRPC_PORT)
    }

    /// Moves `shard` to group `gid` through node `via`'s (1-based) REST
    /// admin API (`POST /v1/admin/move`), from a client host of its own;
    /// whether it answered 200 within 5 s.
    pub async fn move_shard(&self, via: usize, shard: usize, gid: u64) -> bool {
        let body = format!("{{\"shard\":{shard},\"gid\":{gid}}}");
        let head = format!(
            "POST /v1/admin/move HTTP/1.0\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.http(via, head).await.is_some_and(|answer| {
            answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
        })
    }

    /// The body of `GET path` on node `via`'s HTTP port, if it answered
    /// 200 within 5 s.
    pub async fn http_get(&self, via: usize, path: &str) -> Option<String> {
        let answer = self
            .http(via, format!("GET {path} HTTP/1.0\r\n\r\n"))
            .await?;
        if !(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")) {
            return None;
        }
        let (_, body) = answer.split_once("\r\n\r\n")?;
        Some(body.to_owned())
    }

    /// Sends `request` (HTTP/1.0, without a `Host` line) to node `via`'s
    /// HTTP port from a client host; the whole answer, if one came within
    /// 5 s.
    async fn http(&self, via: usize, request: String) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = std::net::SocketAddr::new(server_ip(self.subnet, via), HTTP_PORT);
        let (line, rest) = request.split_once("\r\n")?;
        let request = format!("{line}\r\nHost: {addr}\r\n{rest}");
        let asked = self.net.spawn(self.client_host(), async move {
            let exchange = async {
                let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
                stream.write_all(request.as_bytes()).await.ok()?;
                stream.flush().await.ok()?;
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer).await.ok()?;
                String::from_utf8(answer).ok()
            };
            tokio::time::timeout(Duration::from_secs(5), exchange)
                .await
                .ok()
                .flatten()
        });
        asked.await.expect("client hosts are never killed")
    }

    /// A recording client on a host of its own.
    pub fn client(&self) -> RecordingClient {
        self.client_over(|_| {}, |client| client)
    }

    /// Every node's gRPC URL.
    pub fn grpc_urls(&self) -> Vec<String> {
        (1..=NODES)
            .map(|id| format!("http://{}", self.grpc_addr(id)))
            .collect()
    }

    /// [`Cluster::client`] with its configuration changed by `adjust` and
    /// its calls made by `wrap` of the product client.
    pub fn client_over<C: KvClient + 'static>(
        &self,
        adjust: impl FnOnce(&mut ClientConfig),
        wrap: impl FnOnce(Client) -> C,
    ) -> harness::RecordingClient<C> {
        let index = self.next_client.fetch_add(1, Ordering::Relaxed);
        let host = self
            .net
            .add_client_node(&format!("client{index}"), client_ip(self.subnet, index));
        let seeds = self.seeds();
        let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
        let mut config = ClientConfig {
            operation_deadline: Duration::from_secs(8),
            rpc_timeout: Duration::from_secs(1),
            ..ClientConfig::default()
        };
        adjust(&mut config);
        let client = Client::new(&seeds, config).expect("seed addresses parse");
        let kv = RecordingKv::new(index, wrap(client), Some(self.recorder.clone()), self.start);
        harness::RecordingClient::new(&self.net, host, kv)
    }

    /// Whether the recorded history is linearizable; the checker's
    /// explanation if not.
    pub fn linearizability(&self) -> Result<(), String> {
        check_history(
            &self.recorder,
            &KvModel::new(),
            StepBudget::new(200_000_000),
        )
        .map(|_| ())
    }

    /// Milliseconds since the cluster started: the clock of the recorded
    /// history (whose times are in microseconds since then).
    pub fn elapsed_ms(&self) -> u64 {
        harness::elapsed_ms(self.start)
    }

    /// [`Cluster::linearizability`] with every `Put` acknowledged inside
    /// one of `windows` (`(from_ms, to_ms)`, [`Cluster::elapsed_ms`]
    /// times) taken as an unknown outcome: it may have happened at any
    /// time after its call, or never. What asynchronous replication
    /// promises: a put answered before its commit is lost only if its
    /// leader fails first (so only around a fault), and no read sees a
    /// put before it commits, nor misses one answered before the read
    /// began.
    pub fn linearizability_with_puts_unknown_within(
        &self,
        windows: &[(u64, u64)],
    ) -> Result<(), String> {
        let history = self
            .recorder
            .history()
            .map_err(|error| format!("the history is malformed: {error}"))?;
        let in_window = |time_us: u64| {
            windows
                .iter()
                .any(|&(from_ms, to_ms)| (from_ms * 1000..=to_ms * 1000).contains(&time_us))
        };
        let operations = history
            .operations()
            .iter()
            .cloned()
            .map(|mut operation| {
                if let KvInput::Put { .. } = operation.input
                    && let linearizability::Outcome::Returned { time, .. } = operation.outcome
                    && in_window(time)
                {
                    operation.outcome = linearizability::Outcome::Unknown {
                        gave_up_at: Some(time),
                    };
                }
                operation
            })
            .collect();
        let history = linearizability::History::new(operations)
            .map_err(|error| format!("the history is malformed: {error}"))?;
        harness::check_operations(&history, &KvModel::new(), StepBudget::new(200_000_000))
            .map(|_| ())
    }
}

/// A product client on a host of its own whose every call is recorded.
pub type RecordingClient = harness::RecordingClient<Client>;

/// What one call ended in, for the workload's counters.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Ok,
    Unknown,
}

/// One random operation on one of the shared keys, recorded. A timeout is
/// an unknown outcome; any other error is a bug (the workload sends only
/// valid requests).
async fn random_op<C: KvClient>(kv: &RecordingKv<C>, sequence: u64) -> Ended {
    let key = format!("key-{}", madsim::rand::random::<u64>() % KEYS as u64);
    let value = format!("c{}-{sequence}", kv.client_id());
    let answered = match madsim::rand::random::<u8>() % 10 {
        0..=3 => kv.get(&key).await.is_some(),
        4..=6 => kv.put(&key, &value).await.is_some(),
        7 => kv.delete(&key).await.is_some(),
        _ => {
            // Expect this client's previous value (or absence): a guess,
            // so both outcomes happen.
            let expected = madsim::rand::random::<bool>()
                .then(|| format!("c{}-{}", kv.client_id(), sequence.saturating_sub(1)));
            kv.compare_and_set(&key, expected.as_deref(), &value)
                .await
                .is_some()
        }
    };
    if answered { Ended::Ok } else { Ended::Unknown }
}

impl<C: KvClient + 'static> harness::RecordingClient<C> {
    /// Runs operations until `stop` is set; (acknowledged, unknown).
    pub fn spawn_workload(&self, stop: Arc<AtomicBool>) -> madsim::task::JoinHandle<(u64, u64)> {
        self.spawn(|kv| async move {
            let (mut acknowledged, mut unknown) = (0, 0);
            let mut sequence = 0;
            while !stop.load(Ordering::Relaxed) {
                sequence += 1;
                match random_op(&kv, sequence).await {
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
pub async fn wait_ready(cluster: &Cluster) {
    let probe = cluster.client();
    within(
        "the cluster answers a write",
        Duration::from_secs(60),
        probe.spawn(|kv| async move {
            loop {
                if kv.inner().set(b"ready-probe", b"1").await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }),
    )
    .await
    .expect("client hosts are never killed");
}

/// What a run under faults ended in.
#[derive(Debug)]
pub struct RunOutcome {
    pub acknowledged: u64,
    pub unknown: u64,
    /// Whether the whole history is linearizable (the checker's
    /// explanation if not).
    pub linearizable: Result<(), String>,
}

impl RunOutcome {
    /// Panics unless the cluster served (more than 20 acknowledged
    /// operations per client) and the history is linearizable.
    pub fn assert_served_linearizably(&self, clients: usize) {
        assert!(
            self.acknowledged > 20 * clients as u64,
            "only {} operations were acknowledged ({} unknown): the cluster did not serve",
            self.acknowledged,
            self.unknown
        );
        if let Err(explanation) = &self.linearizable {
            panic!("{explanation}");
        }
    }
}

/// Runs `clients` workloads while `faults` acts on the cluster, then heals,
/// lets the clients finish (3 s healed), and checks the history.
pub async fn run_under(
    clients: usize,
    cluster: &Cluster,
    faults: impl AsyncFnOnce(&Cluster),
) -> RunOutcome {
    run_under_with(clients, cluster, Cluster::client, faults).await
}

/// [`run_under`] with clients made by `new_client`.
pub async fn run_under_with<C: KvClient + 'static>(
    clients: usize,
    cluster: &Cluster,
    new_client: impl Fn(&Cluster) -> harness::RecordingClient<C>,
    faults: impl AsyncFnOnce(&Cluster),
) -> RunOutcome {
    wait_ready(cluster).await;
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..clients)
        .map(|_| new_client(cluster).spawn_workload(Arc::clone(&stop)))
        .collect();
    faults(cluster).await;
    cluster.net.heal_all();
    // The liveness phase of the scenario: the workload runs 3 s on the
    // healed cluster (so the history holds operations served after the
    // faults), then stops.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acknowledged, mut unknown) = (0, 0);
    for worker in workers {
        let (ok, lost) = worker.await.expect("client hosts are never killed");
        acknowledged += ok;
        unknown += lost;
    }
    // Printed (shown with --nocapture) so a run says how much it checked.
    println!("{clients} clients: {acknowledged} acknowledged, {unknown} unknown");
    RunOutcome {
        acknowledged,
        unknown,
        linearizable: cluster.linearizability(),
    }
}

/// The body of a `GET path` (HTTP/1.0: the server closes after it), or
/// `None` on a failed connection or a status other than 200.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    // (The simulated stream sends buffered bytes on flush.)
    stream.flush().await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let head_end = answer.windows(4).position(|window| window == b"\r\n\r\n")?;
    let status_line = answer.split(|&byte| byte == b'\r').next()?;
    if !status_line.windows(5).any(|window| window == b" 200 ") {
        return None;
    }
    Some(answer.split_off(head_end + 4))
}

fn server_ip(subnet: u8, node_id: usize) -> std::net::IpAddr {
    let host = u8::try_from(node_id).expect("fewer than 255 nodes");
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, subnet, 0, host))
}

fn client_ip(subnet: u8, index: u64) -> std::net::IpAddr {
    let [_, _, high, low] = u32::try_from(index + 1)
        .expect("fewer than 2^32 clients")
        .to_be_bytes();
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, subnet + 1, high, low))
}

/// A node drawn at random.
pub fn random_node(cluster: &Cluster) -> NodeId {
    cluster.nodes[madsim::rand::random::<u64>() as usize % cluster.nodes.len()]
}
