//! [`Tester`]: a Raft group on the simulated network with 6.5840's test
//! helpers (`config.go`), in simulated time.
//!
//! Each server is a madsim node whose init (run again on every restart)
//! opens its files on the node's simulated disk, starts `RaftNode::make`
//! with an observer feeding the [`Checker`], serves Raft over labrpc, and
//! spawns an applier task that checks every `ApplyMsg` in the [`Service`]
//! (and, with a snapshot interval, hands Raft a snapshot every
//! `interval` entries, as the lab's `applierSnap` does).
//!
//! Faults follow the lab: `disconnect`/`connect` cut a server off the
//! network; `crash1` disconnects and kills it (its files survive);
//! `start1` restarts it from its files, still disconnected until
//! `connect`. Clients (the tests) call `start` directly on the servers'
//! handles, as the lab's tester calls `rf.Start`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ::raft::node::{ApplyMsg, NodeConfig, Observer, RaftNode};
use ::raft::storage::FileStorage;
use labrpc::sim::{Network, NodeId};
use labrpc::{Client, Router, Server, ServerConfig};
use madsim::rand::{Rng, thread_rng};
use tokio::sync::mpsc;

use super::invariants::{Checker, CheckerSummary, Link};
use super::service::{Service, describe};
use crate::harness::{SERVICE_PORT, phase};

/// The lab's `RaftElectionTimeout`: the tests' unit of "long enough for a
/// new leader".
pub const ELECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// Simulated time limit of every test (TESTS.md).
pub const TEST_LIMIT: Duration = Duration::from_secs(120);
/// 3D: the service snapshots every this many entries.
pub const SNAPSHOT_INTERVAL: u64 = 10;
/// 3D: persisted Raft state (hard state and log) must stay under this.
pub const MAX_LOG_SIZE_BYTES: u64 = 2000;
/// Where each server keeps its Raft files on its simulated disk.
const RAFT_DIR: &str = "/raft";

/// How to build a [`Tester`].
#[derive(Clone, Copy, Debug)]
pub struct TesterConfig {
    pub servers: usize,
    /// False: 10% of requests and replies lost, 0-27 ms extra delay.
    pub reliable: bool,
    /// Snapshot every this many applied entries (3D), or never.
    pub snapshot_interval: Option<u64>,
    /// Servers get addresses 10.`subnet`.0.1, .2, ... (the suites use 0,
    /// the swarm another, so its nodes do not clash with other layers').
    pub subnet: u8,
}

impl TesterConfig {
    /// `servers` servers, reliable network, no snapshots.
    pub fn new(servers: usize) -> TesterConfig {
        TesterConfig {
            servers,
            reliable: true,
            snapshot_interval: None,
            subnet: 0,
        }
    }

    pub fn unreliable(self) -> TesterConfig {
        TesterConfig {
            reliable: false,
            ..self
        }
    }

    /// The lab's 3D configuration: snapshot every [`SNAPSHOT_INTERVAL`].
    pub fn with_snapshots(self) -> TesterConfig {
        TesterConfig {
            snapshot_interval: Some(SNAPSHOT_INTERVAL),
            ..self
        }
    }
}

/// One server as the tester sees it.
#[derive(Default)]
struct Slot {
    /// The running incarnation (None while crashed).
    raft: Option<RaftNode>,
    /// The lab's `connected[i]`: alive and reachable.
    connected: bool,
    /// Incarnations started so far.
    starts: u64,
    /// Persisted Raft state size last seen (kept while crashed).
    raft_state_size_bytes: u64,
}

/// What the servers' tasks and the tester share.
struct Shared {
    slots: Vec<Slot>,
    service: Service,
}

struct Inner {
    net: Network,
    nodes: Vec<NodeId>,
    shared: Arc<Mutex<Shared>>,
    checker: Arc<Mutex<Checker>>,
    started: tokio::time::Instant,
}

/// A Raft group under test. Cheap to clone; clones drive the same group
/// (concurrent clients in a test hold one each).
#[derive(Clone)]
pub struct Tester {
    inner: Arc<Inner>,
}

impl Tester {
    /// Starts `config.servers` servers, all connected (6.5840's
    /// `make_config`), and waits until each has started.
    pub async fn new(config: TesterConfig) -> Tester {
        let servers = config.servers;
        let net = Network::new();
        net.set_reliable(config.reliable);
        let shared = Arc::new(Mutex::new(Shared {
            slots: (0..servers).map(|_| Slot::default()).collect(),
            service: Service::new(servers),
        }));
        let checker = Arc::new(Mutex::new(Checker::new()));
        let nodes = (0..servers)
            .map(|index| {
                let init = server_init(
                    index,
                    servers,
                    config.subnet,
                    config.snapshot_interval,
                    Arc::clone(&shared),
                    Arc::clone(&checker),
                );
                net.add_node(
                    &format!("raft-{index}"),
                    server_addr(config.subnet, index).ip(),
                    init,
                )
            })
            .collect();
        let tester = Tester {
            inner: Arc::new(Inner {
                net,
                nodes,
                shared,
                checker,
                started: labrpc::runtime::now(),
            }),
        };
        for index in 0..servers {
            tester.wait_started(index, 1).await;
            tester.lock().slots[index].connected = true;
        }
        tester
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.inner
            .shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn servers(&self) -> usize {
        self.inner.nodes.len()
    }

    pub fn net(&self) -> &Network {
        &self.inner.net
    }

    /// The madsim node of server `index`.
    pub fn node(&self, index: usize) -> NodeId {
        self.inner.nodes[index]
    }

    /// The running incarnation of server `index` (the lab's `rafts[i]`).
    pub fn raft(&self, index: usize) -> Option<RaftNode> {
        self.lock().slots[index].raft.clone()
    }

    pub fn is_connected(&self, index: usize) -> bool {
        self.lock().slots[index].connected
    }

    /// `rafts[index].Start(command)`, or None if it is crashed or refuses.
    pub async fn start(&self, index: usize, command: Vec<u8>) -> Option<(u64, u64)> {
        let raft = self.raft(index)?;
        raft.start(command).await
    }

    /// `rafts[index].GetState()`, or None if it is crashed.
    pub fn state(&self, index: usize) -> Option<(u64, bool)> {
        self.raft(index).map(|raft| raft.state())
    }

    /// Cuts server `index` off the network.
    pub fn disconnect(&self, index: usize) {
        self.inner.net.disconnect(self.node(index));
        self.lock().slots[index].connected = false;
    }

    /// Puts server `index` back on the network.
    pub fn connect(&self, index: usize) {
        self.inner.net.connect(self.node(index));
        self.lock().slots[index].connected = true;
    }

    /// Sets the whole network reliable or not.
    pub fn set_reliable(&self, reliable: bool) {
        self.inner.net.set_reliable(reliable);
    }

    pub fn set_long_reordering(&self, long_reordering: bool) {
        self.inner.net.set_long_reordering(long_reordering);
    }

    /// 6.5840's `crash1`: disconnect, then kill every task of the server.
    /// Its files survive. No-op on a crashed server.
    pub fn crash1(&self, index: usize) {
        self.disconnect(index);
        let raft = {
            let mut shared = self.lock();
            let slot = &mut shared.slots[index];
            let raft = slot.raft.take();
            if let Some(raft) = &raft {
                slot.raft_state_size_bytes = raft.status().raft_state_size_bytes;
            }
            raft
        };
        if let Some(raft) = raft {
            raft.kill();
        }
        self.inner.net.kill(self.node(index));
    }

    /// 6.5840's `start1`: crash the server if it runs, then start a new
    /// incarnation from its files (its service starts empty and must be
    /// brought up to date by Raft). It stays disconnected until
    /// [`Tester::connect`].
    pub async fn start1(&self, index: usize) {
        self.crash1(index);
        let starts = self.lock().slots[index].starts;
        self.inner.net.restart(self.node(index)).await;
        self.wait_started(index, starts + 1).await;
    }

    async fn wait_started(&self, index: usize, starts: u64) {
        let deadline = labrpc::runtime::now() + Duration::from_secs(1);
        while self.lock().slots[index].starts < starts {
            assert!(
                labrpc::runtime::now() < deadline,
                "server {index} did not start within 1 s of simulated time"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// 6.5840's `checkOneLeader`: up to ten polls 450-550 ms apart (about
    /// 5 s, the lab's bound for electing a new leader); fails if a term has
    /// two leaders among connected servers, or if no leader shows up.
    pub async fn check_one_leader(&self) -> usize {
        for _ in 0..10 {
            let pause_ms = thread_rng().gen_range(450..550);
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            let mut leaders: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
            for index in 0..self.servers() {
                if !self.is_connected(index) {
                    continue;
                }
                if let Some((term, true)) = self.state(index) {
                    leaders.entry(term).or_default().push(index);
                }
            }
            for (term, in_term) in &leaders {
                assert!(
                    in_term.len() <= 1,
                    "term {term} has {} (>1) leaders: {in_term:?}",
                    in_term.len()
                );
            }
            if let Some((_, in_term)) = leaders.iter().next_back() {
                return in_term[0];
            }
        }
        panic!("expected one leader, got none (polled ten times over about 5 s)");
    }

    /// 6.5840's `checkTerms`: every connected server reports the same term.
    pub fn check_terms(&self) -> u64 {
        let terms: Vec<(usize, u64)> = (0..self.servers())
            .filter(|&index| self.is_connected(index))
            .filter_map(|index| self.state(index).map(|(term, _)| (index, term)))
            .collect();
        let first = terms.first().expect("at least one connected server").1;
        assert!(
            terms.iter().all(|&(_, term)| term == first),
            "servers disagree on term: (server, term) {terms:?}"
        );
        first
    }

    /// 6.5840's `checkNoLeader`: no connected server thinks it leads.
    pub fn check_no_leader(&self) {
        for index in 0..self.servers() {
            if self.is_connected(index)
                && let Some((term, true)) = self.state(index)
            {
                panic!("expected no leader among connected servers, but {index} leads term {term}");
            }
        }
    }

    /// 6.5840's `nCommitted`: how many servers' services applied `index`,
    /// and the command there (the applier has already checked they agree).
    pub fn n_committed(&self, index: u64) -> (usize, Option<Vec<u8>>) {
        let shared = self.lock();
        let (count, command) = shared.service.n_committed(index);
        (count, command.map(<[u8]>::to_vec))
    }

    /// 6.5840's `one`: submits `command` to whichever connected server
    /// accepts it, and waits until at least `expected_servers` applied it at
    /// the index it got. Tries again (if `retry`) for up to 10 s, waiting
    /// 2 s per attempt. Returns the index.
    pub async fn one(&self, command: Vec<u8>, expected_servers: usize, retry: bool) -> u64 {
        let began = labrpc::runtime::now();
        let mut starts = 0;
        while began.elapsed() < Duration::from_secs(10) {
            let mut index = None;
            for _ in 0..self.servers() {
                starts = (starts + 1) % self.servers();
                if !self.is_connected(starts) {
                    continue;
                }
                if let Some((at, _)) = self.start(starts, command.clone()).await {
                    index = Some(at);
                    break;
                }
            }
            let Some(index) = index else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let submitted = labrpc::runtime::now();
            while submitted.elapsed() < Duration::from_secs(2) {
                let (count, applied) = self.n_committed(index);
                if count > 0 && count >= expected_servers && applied.as_deref() == Some(&command) {
                    return index;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                retry,
                "one({}) failed to reach agreement at index {index} on {expected_servers} servers",
                describe(&command)
            );
        }
        panic!(
            "one({}) failed to reach agreement on {expected_servers} servers within 10 s",
            describe(&command)
        );
    }

    /// 6.5840's `wait`: waits (with backoff, about 30 s at most) until `n`
    /// servers applied `index`, and returns the command there. With
    /// `start_term`, returns None as soon as some server moved past that
    /// term (the caller retries).
    pub async fn wait(&self, index: u64, n: usize, start_term: Option<u64>) -> Option<Vec<u8>> {
        let mut pause = Duration::from_millis(10);
        for _ in 0..30 {
            if self.n_committed(index).0 >= n {
                break;
            }
            tokio::time::sleep(pause).await;
            if pause < Duration::from_secs(1) {
                pause *= 2;
            }
            if let Some(start_term) = start_term {
                let moved_on = (0..self.servers())
                    .filter_map(|server| self.state(server))
                    .any(|(term, _)| term > start_term);
                if moved_on {
                    return None;
                }
            }
        }
        let (count, command) = self.n_committed(index);
        assert!(
            count >= n,
            "only {count} decided for index {index}; wanted {n}"
        );
        command
    }

    /// Largest persisted Raft state (hard state and log) of any server, in
    /// bytes (the lab's `LogSize`).
    pub fn log_size_bytes(&self) -> u64 {
        let shared = self.lock();
        shared
            .slots
            .iter()
            .map(|slot| match &slot.raft {
                Some(raft) => raft.status().raft_state_size_bytes,
                None => slot.raft_state_size_bytes,
            })
            .max()
            .unwrap_or(0)
    }

    /// Requests delivered to server `index` (the lab's `rpcCount`).
    pub fn rpc_count(&self, index: usize) -> u64 {
        self.inner.net.rpc_count(self.node(index))
    }

    /// Requests delivered to all servers.
    pub fn rpc_count_all(&self) -> u64 {
        (0..self.servers()).map(|index| self.rpc_count(index)).sum()
    }

    /// Requests that entered the network (the lab's `rpcTotal`).
    pub fn rpc_total(&self) -> u64 {
        self.inner.net.total_rpc_count()
    }

    /// Request and reply bytes (the lab's `bytesTotal`).
    pub fn bytes_total(&self) -> u64 {
        self.inner.net.total_bytes()
    }

    /// The commands applied at indexes 1.. so far.
    pub fn applied_commands(&self) -> Vec<Vec<u8>> {
        self.lock()
            .service
            .applied_commands()
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// The last entry server `index` stores, if it is running, has
    /// committed it and its service has applied it (None otherwise): equal
    /// tips on all servers mean one log, fully applied everywhere.
    pub fn converged_tip(&self, index: usize) -> Option<Link> {
        let raft = self.raft(index)?;
        let status = raft.status();
        let checker = self
            .inner
            .checker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let log = checker.node_log(index as u64)?;
        let tip = log.link_at(log.last_index())?;
        let applied = self.lock().service.server(index).last_applied;
        (status.commit_index == tip.index && applied == tip.index).then_some(tip)
    }

    pub fn checker_summary(&self) -> CheckerSummary {
        self.inner
            .checker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .summary()
    }

    /// Logs what the test did (the lab's `end`): simulated time, RPCs,
    /// bytes, invariant checks.
    pub fn end(&self) {
        let summary = self.checker_summary();
        let message = format!(
            "passed in {:.1} s simulated: {} servers, {} RPCs, {} bytes, {} commits checked; \
             invariants checked on {} observations ({} terms with a leader, {} leader \
             completeness checks)",
            self.inner.started.elapsed().as_secs_f64(),
            self.servers(),
            self.rpc_total(),
            self.bytes_total(),
            self.lock().service.max_applied_index(),
            summary.observations,
            summary.leader_terms,
            summary.leader_completeness_checks,
        );
        phase(&message);
        for index in 0..self.servers() {
            self.crash1(index);
        }
    }
}

/// The labrpc address of server `index`: 10.`subnet`.0.`index + 1`, port
/// [`SERVICE_PORT`] (subnet 0 is the harness's [`crate::harness::node_addr`]).
pub fn server_addr(subnet: u8, index: usize) -> SocketAddr {
    let host = u8::try_from(index + 1).expect("at most 254 servers");
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, subnet, 0, host)), SERVICE_PORT)
}

/// A 64-bit command, as the lab's `rand.Int()` commands.
pub fn command(value: u64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

/// A random 64-bit command.
pub fn random_command() -> Vec<u8> {
    command(thread_rng().r#gen())
}

/// The init of server `index`: runs at creation and on every restart.
fn server_init(
    index: usize,
    servers: usize,
    subnet: u8,
    snapshot_interval: Option<u64>,
    shared: Arc<Mutex<Shared>>,
    checker: Arc<Mutex<Checker>>,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + Sync + 'static {
    move || {
        let shared = Arc::clone(&shared);
        let checker = Arc::clone(&checker);
        Box::pin(async move {
            lock(&shared).service.restart(index);
            let peers: Vec<SocketAddr> =
                (0..servers).map(|peer| server_addr(subnet, peer)).collect();
            let mut config = NodeConfig::new(index as u64, peers, thread_rng().r#gen());
            config.observer = Some(Observer::new(move |observation| {
                checker
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .observe(&observation);
            }));
            // Small segments: the suites exercise removing whole segments.
            let storage = FileStorage::with_segment_size(RAFT_DIR, 4 << 10);
            let (raft, applies) = RaftNode::make(config, storage, Client::default())
                .await
                .unwrap_or_else(|error| panic!("server {index}: its files do not load: {error}"));
            let mut router = Router::new();
            raft.add_handlers(&mut router);
            Server::start(server_addr(subnet, index), router, ServerConfig::default())
                .await
                .unwrap_or_else(|error| panic!("server {index}: labrpc server: {error}"));
            tokio::spawn(apply_loop(
                index,
                raft.clone(),
                applies,
                Arc::clone(&shared),
                snapshot_interval,
            ));
            let mut shared = lock(&shared);
            let slot = &mut shared.slots[index];
            slot.raft = Some(raft);
            slot.starts += 1;
        })
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The lab's `applier` / `applierSnap`: checks each `ApplyMsg` in the
/// service; with a snapshot interval, snapshots after index `i` when
/// `(i + 1) % interval == 0`.
async fn apply_loop(
    index: usize,
    raft: RaftNode,
    mut applies: mpsc::Receiver<ApplyMsg>,
    shared: Arc<Mutex<Shared>>,
    snapshot_interval: Option<u64>,
) {
    while let Some(message) = applies.recv().await {
        let mut shared = lock(&shared);
        let outcome = match &message {
            ApplyMsg::Command {
                index: at,
                term,
                command,
            } => shared.service.apply_command(index, *at, *term, command),
            ApplyMsg::Snapshot {
                index: at,
                term,
                data,
            } => shared.service.apply_snapshot(index, *at, *term, data),
        };
        if let Err(error) = outcome {
            panic!("apply error: {error}");
        }
        if let (ApplyMsg::Command { index: at, .. }, Some(interval)) = (&message, snapshot_interval)
            && (at + 1) % interval == 0
        {
            raft.snapshot(*at, shared.service.snapshot_data(index));
        }
    }
}
