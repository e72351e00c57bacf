//! Helpers shared by the suites: addresses, bounded waits, phases, (in
//! [`recording`]) the recording client every key/value tester uses and the
//! check of its history, and (in [`membership`]) membership changes made
//! on whichever replica leads.

pub mod membership;
pub mod recording;

pub use recording::{LONG_TTL_MS, RecordingClient, RecordingKv, check_history, check_operations};

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The port every simulated node serves labrpc on.
pub const SERVICE_PORT: u16 = 7000;

/// The address of simulated node number `index` (0-based): 10.0.x.y.
pub fn node_ip(index: usize) -> IpAddr {
    let index = u16::try_from(index + 1).expect("fewer than 65535 nodes");
    let [high, low] = index.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, 0, high, low))
}

/// The address of a client node (kept apart from servers): 10.1.x.y.
pub fn client_ip(index: usize) -> IpAddr {
    let index = u16::try_from(index + 1).expect("fewer than 65535 clients");
    let [high, low] = index.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, 1, high, low))
}

/// The labrpc address of simulated node `index`.
pub fn node_addr(index: usize) -> SocketAddr {
    SocketAddr::new(node_ip(index), SERVICE_PORT)
}

/// Runs `simulation` in a fresh madsim runtime seeded with `seed`,
/// stopped after `time_limit` of simulated time: one seed of a binary
/// that loops over seeds itself (the swarm, the migration benchmark).
/// `None` if it panicked (the panic hook has printed the message).
pub fn run_seed<T>(
    seed: u64,
    time_limit: Duration,
    simulation: impl Future<Output = T>,
) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut runtime =
            madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
        runtime.set_time_limit(time_limit);
        runtime.block_on(simulation)
    }))
    .ok()
}

/// Announces a test phase, so a failure's log shows where it happened.
pub fn phase(name: &str) {
    tracing::info!("phase: {name}");
}

/// Polls `condition` every `poll` until it holds, for at most `bound` of
/// simulated time.
///
/// # Panics
/// With `what` and the bound, if the condition never held.
pub async fn wait_until<F, Fut>(what: &str, bound: Duration, poll: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = labrpc::runtime::now() + bound;
    loop {
        if condition().await {
            return;
        }
        assert!(
            labrpc::runtime::now() < deadline,
            "waited {bound:?} of simulated time for: {what}"
        );
        tokio::time::sleep(poll).await;
    }
}

/// Lower and upper bounds, `sigmas` standard deviations wide, on how many of
/// `trials` independent events of probability `p` occur. Used to check drop
/// rates without flaking: at 5 sigmas a correct network fails about once in
/// 3.5 million runs.
pub fn binomial_bounds(trials: u64, p: f64, sigmas: f64) -> (u64, u64) {
    let n = trials as f64;
    let mean = n * p;
    let spread = sigmas * (n * p * (1.0 - p)).sqrt();
    let low = (mean - spread).floor().max(0.0) as u64;
    let high = (mean + spread).ceil().min(n) as u64;
    (low, high)
}

/// Simulated milliseconds since `start`.
pub fn elapsed_ms(start: tokio::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Ends a run of client tasks: clears `running`, waits for the writers,
/// then returns what each reader returned, in order. Client hosts are
/// never killed, so every task ends by itself.
pub async fn stop_clients<T>(
    running: &std::sync::atomic::AtomicBool,
    writers: Vec<madsim::task::JoinHandle<()>>,
    readers: Vec<madsim::task::JoinHandle<T>>,
) -> Vec<T> {
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("client hosts are never killed");
    }
    let mut outcomes = Vec::new();
    for reader in readers {
        outcomes.push(reader.await.expect("client hosts are never killed"));
    }
    outcomes
}

/// Runs `future` with a simulated-time limit; panics naming `what` if it
/// does not finish (TESTS.md: 120 s per test).
pub async fn within<T>(what: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    // With RUST_LOG set, the run's events go to stdout with simulated
    // timestamps: two runs of one seed can be compared line by line
    // (scripts/replay-check.sh).
    if std::env::var_os("RUST_LOG").is_some() {
        madsim::runtime::init_logger();
    }
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {limit:?} of simulated time"),
    }
}

/// A labrpc client living on a client node of its own, so the network's
/// faults apply to its calls (madsim's supervisor task has no address and
/// cannot make calls itself). Cheap to clone.
#[derive(Clone)]
pub struct Caller {
    net: labrpc::sim::Network,
    node: labrpc::sim::NodeId,
    client: labrpc::Client,
}

impl Caller {
    /// Creates client node `index` (address [`client_ip`]) and a client on it.
    pub fn new(net: &labrpc::sim::Network, index: usize, config: labrpc::ClientConfig) -> Caller {
        let node = net.add_client_node(&format!("client-{index}"), client_ip(index));
        Caller {
            net: net.clone(),
            node,
            client: labrpc::Client::new(config),
        }
    }

    pub fn node(&self) -> labrpc::sim::NodeId {
        self.node
    }

    /// Makes the call from the client node and waits for its outcome.
    pub async fn call<R>(&self, peer: SocketAddr, request: &R) -> Result<R::Reply, labrpc::RpcError>
    where
        R: labrpc::Rpc + Clone,
    {
        let client = self.client.clone();
        let request = request.clone();
        self.net
            .spawn(self.node, async move { client.call(peer, &request).await })
            .await
            .expect("client nodes are never killed, so their tasks finish")
    }
}
