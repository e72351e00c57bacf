//! The kvraft tester: a group of [`KvServer`]s on simulated nodes, clerks on
//! client nodes whose every call is recorded, and the checks of 6.5840's
//! Lab 4 (linearizability of the whole history, Raft state bounds).

mod membership;
mod workload;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvraft::{
    Clerk, ClerkConfig, KvServer, MachineConfig, Op, Outcome, ServerConfig, ServerStatus,
};
use labrpc::sim::{Network, NodeId};
use linearizability::{KvInput, KvModel, KvOutput, MemoryBudget, Recorder, StepBudget};
use raft::node::Observer;
use raft::storage::FileStorage;

use crate::raft::invariants::Checker;

use crate::harness::{
    RecordingClient, RecordingKv, SERVICE_PORT, check_history, client_ip, node_addr, phase,
};

pub use membership::{
    ChangeReport, ReplaceOutcome, ReplaceScenario, replace_under_faults, start_load,
};
pub use rsm::reflects as membership_reflects;
pub use workload::{GenericTest, generic_test};

/// The linearizability checker's budget per history: beyond it the verdict
/// is "unknown", which fails the test (rather than the machine running out
/// of memory).
pub const CHECK_STEPS_MAX: u64 = 200_000_000;
pub const CHECK_MEMO_BYTES_MAX: u64 = 1 << 30;

/// The election timeout the lab waits after healing (ours is shorter).
pub const ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);

type Slots = Arc<Mutex<Vec<Option<KvServer>>>>;
type SharedChecker = Arc<Mutex<Checker>>;

/// The shape of a kvraft group under test.
#[derive(Clone, Copy, Debug)]
pub struct TesterConfig {
    pub servers: usize,
    pub reliable: bool,
    pub max_raft_state: Option<u64>,
    /// The replicas' state machine limits (store capacity, sessions).
    pub machine: MachineConfig,
    /// How long a clerk tries one operation before giving up (the call's
    /// outcome is then unknown).
    pub operation_deadline: Duration,
    /// `None`: the harness's addresses (servers 10.0.x.y, clients
    /// 10.1.x.y). `Some(s)`: servers 10.s.0.x, clients 10.s.1.x, to share a
    /// simulation with other layers (the swarm).
    pub subnet: Option<u8>,
    /// Server ids the clerks know (at least `servers`): room for replicas
    /// added later by membership changes ([`Tester::add_server`]), as a
    /// client configured with every address the group may use.
    pub max_servers: usize,
    /// Raft's safety invariants (`crate::raft::invariants::Checker`) on
    /// every step of every replica, original or added.
    pub check_raft_invariants: bool,
}

impl TesterConfig {
    pub fn new(servers: usize) -> TesterConfig {
        TesterConfig {
            servers,
            reliable: true,
            max_raft_state: None,
            machine: MachineConfig::default(),
            operation_deadline: Duration::from_secs(60),
            subnet: None,
            max_servers: servers,
            check_raft_invariants: false,
        }
    }

    fn server_addr(&self, id: usize) -> SocketAddr {
        match self.subnet {
            None => node_addr(id),
            Some(subnet) => SocketAddr::new(subnet_ip(subnet, 0, id), SERVICE_PORT),
        }
    }

    fn client_ip(&self, index: usize) -> IpAddr {
        match self.subnet {
            None => client_ip(index),
            Some(subnet) => subnet_ip(subnet, 1, index),
        }
    }
}

/// 10.`subnet`.`block`.`index + 1` (at most 254 hosts per block).
fn subnet_ip(subnet: u8, block: u8, index: usize) -> IpAddr {
    let host = u8::try_from(index + 1)
        .ok()
        .filter(|&host| host < 255)
        .expect("at most 254 nodes per block");
    IpAddr::V4(Ipv4Addr::new(10, subnet, block, host))
}

/// One kvraft group and its clients.
pub struct Tester {
    net: Network,
    config: TesterConfig,
    /// The simulated node of each server id (grows with `add_server`).
    server_nodes: Mutex<Vec<NodeId>>,
    slots: Slots,
    checker: Option<SharedChecker>,
    recorder: Recorder<KvInput, KvOutput>,
    start: tokio::time::Instant,
    next_client: AtomicU64,
    /// Each replica's Raft state size when [`Tester::kill_server`] took it
    /// down (its files cannot grow while it is down).
    size_at_kill: Mutex<Vec<Option<u64>>>,
}

impl Tester {
    /// Starts `servers` replicas with file storage.
    pub fn new(servers: usize, reliable: bool, max_raft_state: Option<u64>) -> Tester {
        Tester::with_config(TesterConfig {
            reliable,
            max_raft_state,
            ..TesterConfig::new(servers)
        })
    }

    /// Starts the group `config` describes, on a new simulated network.
    pub fn with_config(config: TesterConfig) -> Tester {
        let net = Network::new();
        net.set_reliable(config.reliable);
        let slots: Slots = Arc::new(Mutex::new(vec![None; config.servers]));
        let checker = config
            .check_raft_invariants
            .then(|| Arc::new(Mutex::new(Checker::new())));
        let server_nodes = (0..config.servers)
            .map(|id| add_server_node(&net, id, false, config, &slots, checker.as_ref()))
            .collect();
        Tester {
            net,
            config,
            server_nodes: Mutex::new(server_nodes),
            slots,
            checker,
            recorder: Recorder::new(),
            start: labrpc::runtime::now(),
            next_client: AtomicU64::new(0),
            size_at_kill: Mutex::new(vec![None; config.servers]),
        }
    }

    pub fn net(&self) -> &Network {
        &self.net
    }

    /// Server ids started so far (original and added).
    pub fn servers(&self) -> usize {
        self.server_nodes.lock().expect("nodes lock").len()
    }

    pub fn server_node(&self, id: usize) -> NodeId {
        self.server_nodes.lock().expect("nodes lock")[id]
    }

    /// The labrpc address of server `id`.
    pub fn server_addr(&self, id: usize) -> SocketAddr {
        self.config.server_addr(id)
    }

    /// Starts a new server with the next id, joining the running group
    /// (`RsmConfig::join`: it campaigns for nothing until the group adds
    /// it). It knows the addresses of ids up to its own; the group learns
    /// its address from the membership change. Returns its id.
    ///
    /// # Panics
    /// Past `max_servers` ids (the clerks would not know it).
    pub fn add_server(&self) -> usize {
        let mut nodes = self.server_nodes.lock().expect("nodes lock");
        let id = nodes.len();
        assert!(
            id < self.config.max_servers,
            "server {id}: the clerks know only {} ids (TesterConfig::max_servers)",
            self.config.max_servers
        );
        self.slots.lock().expect("slots lock").push(None);
        self.size_at_kill.lock().expect("size lock").push(None);
        let node = add_server_node(
            &self.net,
            id,
            true,
            self.config,
            &self.slots,
            self.checker.as_ref(),
        );
        nodes.push(node);
        id
    }

    /// The running server `id` (None while it is down).
    pub fn server(&self, id: usize) -> Option<KvServer> {
        self.slots.lock().expect("slots lock")[id].clone()
    }

    /// What the invariant checker saw so far (None if it is off).
    pub fn checker_summary(&self) -> Option<crate::raft::invariants::CheckerSummary> {
        self.checker
            .as_ref()
            .map(|checker| checker.lock().expect("checker lock").summary())
    }

    /// A new client on a node of its own, connected to everything.
    pub fn make_client(&self) -> TestClient {
        let index = self.next_client.fetch_add(1, Ordering::Relaxed);
        let node = self.net.add_client_node(
            &format!("kv-client-{index}"),
            self.config.client_ip(index as usize),
        );
        let servers = (0..self.config.max_servers.max(self.servers()))
            .map(|id| self.config.server_addr(id))
            .collect();
        let config = ClerkConfig {
            rpc_timeout: Duration::from_millis(500),
            operation_deadline: self.config.operation_deadline,
            ..ClerkConfig::default()
        };
        let kv = RecordingKv::new(
            index,
            Clerk::new(servers, config),
            Some(self.recorder.clone()),
            self.start,
        );
        RecordingClient::new(&self.net, node, kv)
    }

    /// Splits servers and clients into groups that talk only among
    /// themselves.
    pub fn partition(&self, groups: &[(&[usize], &[&TestClient])]) {
        let server_nodes = self.server_nodes.lock().expect("nodes lock").clone();
        let node_groups: Vec<Vec<NodeId>> = groups
            .iter()
            .map(|(servers, clients)| {
                servers
                    .iter()
                    .map(|&id| server_nodes[id])
                    .chain(clients.iter().map(|client| client.node()))
                    .collect()
            })
            .collect();
        let borrowed: Vec<&[NodeId]> = node_groups.iter().map(Vec::as_slice).collect();
        self.net.partition(&borrowed);
    }

    /// Heals every partition and reconnects everything.
    pub fn connect_all(&self) {
        self.net.heal_all();
    }

    /// The replica `id`'s current counters (of its latest incarnation).
    pub fn status(&self, id: usize) -> Option<ServerStatus> {
        self.slots.lock().expect("slots lock")[id]
            .as_ref()
            .map(KvServer::status)
    }

    /// The Raft status of replica `id`'s latest incarnation.
    pub fn raft_status(&self, id: usize) -> Option<raft::node::NodeStatus> {
        self.slots.lock().expect("slots lock")[id]
            .as_ref()
            .map(|server| server.raft().status())
    }

    /// The replica that believes it leads, if exactly one does.
    pub fn leader(&self) -> Option<usize> {
        let slots = self.slots.lock().expect("slots lock");
        let leaders: Vec<usize> = slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| {
                slot.as_ref()
                    .is_some_and(|server| !server.raft().is_killed() && server.raft().state().1)
            })
            .map(|(id, _)| id)
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Kills every replica, then restarts each from its files.
    pub async fn crash_and_restart_all(&self) {
        let server_nodes = self.server_nodes.lock().expect("nodes lock").clone();
        phase("crash every server");
        for &node in &server_nodes {
            self.net.kill(node);
        }
        // The scenario, not a wait for a condition: the group stays down
        // for a while (the lab's pause) before it comes back.
        tokio::time::sleep(ELECTION_TIMEOUT).await;
        phase("restart every server from its files");
        for &node in &server_nodes {
            self.net.restart(node).await;
        }
    }

    /// Kills one replica (its files stay).
    pub fn kill_server(&self, id: usize) {
        let size = self.status(id).map(|status| status.raft_state_size_bytes);
        self.size_at_kill.lock().expect("size lock")[id] = size;
        self.slots.lock().expect("slots lock")[id] = None;
        self.net.kill(self.server_node(id));
    }

    /// What replica `id`'s state machine holds for each of `keys` (absent:
    /// `None`), read locally without a log entry, and its applied index.
    pub fn local_values(&self, id: usize, keys: &[String]) -> Option<(u64, Vec<Option<String>>)> {
        let slots = self.slots.lock().expect("slots lock");
        let server = slots[id].as_ref()?;
        let status = server.status();
        let values = server.rsm().with_machine(|machine| {
            keys.iter()
                .map(|key| {
                    let op = Op::Get {
                        key: key.as_bytes().to_vec(),
                    };
                    match machine.read(&op, status.logical_now_ms) {
                        Ok(Outcome::Value(value)) => value.map(|bytes| {
                            String::from_utf8(bytes).expect("tests store UTF-8 values")
                        }),
                        other => panic!("a local read of {key} answered {other:?}"),
                    }
                })
                .collect()
        });
        Some((status.last_applied, values))
    }

    /// The store's own invariants on replica `id` (capacity bounds
    /// included).
    pub fn machine_invariants(&self, id: usize) -> Option<Result<(), String>> {
        let slots = self.slots.lock().expect("slots lock");
        let server = slots[id].as_ref()?;
        Some(
            server
                .rsm()
                .with_machine(|machine| machine.check_invariants()),
        )
    }

    /// The recorded history checked with another model (for example
    /// [`KvModel::evicting`]); the summary, or what went wrong.
    pub fn linearizability_with<M>(&self, model: &M) -> Result<String, String>
    where
        M: linearizability::Model<Input = KvInput, Output = KvOutput>,
    {
        let budget = (
            StepBudget::new(CHECK_STEPS_MAX),
            MemoryBudget::bytes(CHECK_MEMO_BYTES_MAX),
        );
        check_history(&self.recorder, model, budget)
    }

    /// Kills and restarts one replica.
    pub async fn restart_server(&self, id: usize) {
        self.net.restart(self.server_node(id)).await;
    }

    /// TESTS.md: Raft state at most 8 x max_raft_state on every replica.
    pub fn check_raft_state_bounded(&self) {
        if let Err(problem) = self.raft_state_bounded() {
            panic!("{problem}");
        }
    }

    /// [`Tester::check_raft_state_bounded`] as a result, for reports.
    ///
    /// A running replica is measured now; one that [`Tester::kill_server`]
    /// took down is measured as it was when killed (a down replica's files
    /// do not grow). A replica measured neither way is named as skipped,
    /// and a check that measured no replica at all is an error, not a pass.
    pub fn raft_state_bounded(&self) -> Result<(), String> {
        let Some(max_raft_state) = self.config.max_raft_state else {
            return Ok(());
        };
        let at_kill = self.size_at_kill.lock().expect("size lock").clone();
        let mut measured = 0;
        for (id, size_at_kill) in at_kill.into_iter().enumerate() {
            let size = match self.status(id) {
                Some(status) => status.raft_state_size_bytes,
                None => match size_at_kill {
                    Some(size) => size,
                    None => {
                        println!("raft state bound: server {id} skipped (down, never measured)");
                        continue;
                    }
                },
            };
            measured += 1;
            if size > 8 * max_raft_state {
                return Err(format!(
                    "server {id}: Raft state {size} bytes > 8 x max_raft_state ({max_raft_state})"
                ));
            }
        }
        if measured == 0 {
            return Err("raft state bound: no replica could be measured".into());
        }
        Ok(())
    }

    /// The largest snapshot any replica took or installed, in bytes.
    pub fn max_snapshot_bytes(&self) -> u64 {
        (0..self.servers())
            .filter_map(|id| self.status(id))
            .map(|status| status.last_snapshot_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Checks the whole recorded history with the kv model; panics on a
    /// violation or on an unknown verdict (budget exhausted).
    pub fn check_linearizable(&self) {
        match self.linearizability() {
            Ok(summary) => println!("history: {summary}"),
            Err(problem) => panic!("{problem}"),
        }
    }

    /// [`Tester::check_linearizable`] as a result: the checker's summary,
    /// or what went wrong (a violation explained, or an unknown verdict).
    pub fn linearizability(&self) -> Result<String, String> {
        self.linearizability_with(&KvModel::new())
    }
}

/// Creates server `id`'s simulated node (its init starts the server, at
/// creation and on every restart).
fn add_server_node(
    net: &Network,
    id: usize,
    join: bool,
    config: TesterConfig,
    slots: &Slots,
    checker: Option<&SharedChecker>,
) -> NodeId {
    let slots = Arc::clone(slots);
    let checker = checker.cloned();
    net.add_node(
        &format!("kv-{id}"),
        config.server_addr(id).ip(),
        move || start_server(id, join, config, Arc::clone(&slots), checker.clone()),
    )
}

async fn start_server(
    id: usize,
    join: bool,
    config: TesterConfig,
    slots: Slots,
    checker: Option<SharedChecker>,
) {
    // An original server knows the group it was started with; a joining
    // one the ids up to its own (`RsmConfig::join`).
    let known = if join { id + 1 } else { config.servers };
    let addrs = (0..known).map(|peer| config.server_addr(peer)).collect();
    let mut server_config = ServerConfig::new(id, addrs, madsim::rand::random());
    server_config.replica.max_raft_state = config.max_raft_state;
    server_config.replica.join = join;
    server_config.machine = config.machine;
    if let Some(checker) = checker {
        server_config.replica.raft_observer = Some(Observer::new(move |observation| {
            checker
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .observe(&observation);
        }));
    }
    let server = KvServer::start(server_config, FileStorage::new("/kvraft"))
        .await
        .unwrap_or_else(|error| panic!("kv server {id} failed to start: {error}"));
    slots.lock().expect("slots lock")[id] = Some(server);
}

/// A kvraft clerk on a client node, every call recorded.
pub type TestClient = RecordingClient<Clerk>;

/// A kvraft clerk whose every call is recorded.
pub type RecordingClerk = RecordingKv<Clerk>;
