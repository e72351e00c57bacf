//! The shard controller tester: a group of [`ControllerServer`]s on simulated
//! nodes, clerks on client nodes whose every call is recorded, and the
//! checks of 6.5840's Lab 5A (plus the whole-history check of
//! [`history`]). Replicas may be added to the running group
//! ([`Tester::add_server`], [`Tester::change`]); clerks keep the list of
//! the original replicas, as a node keeps its table, and reach a leader
//! that joined later through a replica on it, which passes requests on
//! (`ControllerServerConfig::pass_on_from`).

pub mod history;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use labrpc::sim::{Network, NodeId};
use raft::storage::FileStorage;
use shardctrler::placement::is_balanced;
use shardctrler::{
    Clerk, ClerkConfig, ClerkError, Config, ConfigAnswer, ConfigError, ConfigOp, ControllerClient,
    ControllerServer, ControllerServerConfig, Gid, Limits, UNASSIGNED,
};

use crate::harness::{SERVICE_PORT, phase};
use history::{Call, CallLog, Outcome, check_history};

/// Shards in the lab's tests.
pub const LAB_SHARDS: usize = 10;

/// The shape of a tested controller group.
#[derive(Clone, Copy, Debug)]
pub struct TesterConfig {
    pub servers: usize,
    pub shard_count: usize,
    pub reliable: bool,
    pub max_raft_state: Option<u64>,
    /// Servers get 10.`subnet`.0.x, clients 10.`subnet`.1.x (the suites
    /// use 0; the swarm gives each layer its own).
    pub subnet: u8,
    /// A clerk gives up on a call after this long (its outcome is then
    /// unknown).
    pub clerk_deadline: Duration,
    /// K, the configurations each replica keeps ([`KEEP_EVERY_CONFIG`] in
    /// the lab tests). With fewer, the replicas cannot show the checker
    /// the configurations they dropped, so the tester watches them as
    /// they are made (see [`Tester::retention_seen`]).
    pub retained_configs: usize,
}

impl TesterConfig {
    /// The lab's: 3 servers, 10 shards, reliable, no snapshots.
    pub fn lab() -> TesterConfig {
        TesterConfig {
            servers: 3,
            shard_count: LAB_SHARDS,
            reliable: true,
            max_raft_state: None,
            subnet: 0,
            clerk_deadline: Duration::from_secs(60),
            retained_configs: KEEP_EVERY_CONFIG,
        }
    }

    pub fn server_addr(&self, index: usize) -> SocketAddr {
        let host = u8::try_from(index + 1).expect("fewer than 255 servers");
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, self.subnet, 0, host)),
            SERVICE_PORT,
        )
    }

    fn client_ip(&self, index: u64) -> IpAddr {
        let host = u8::try_from(index + 1).expect("fewer than 255 clients");
        IpAddr::V4(Ipv4Addr::new(10, self.subnet, 1, host))
    }

    /// The limits the replicas run with (the server's defaults, except
    /// K).
    fn limits(&self) -> Limits {
        Limits {
            max_retained_configs: self.retained_configs,
            ..Limits::new(self.shard_count)
        }
    }

    /// Whether the replicas may drop configurations a test makes (K below
    /// [`KEEP_EVERY_CONFIG`]): the tester then watches them.
    fn prunes(&self) -> bool {
        self.retained_configs < KEEP_EVERY_CONFIG
    }
}

/// K of the lab tests: the history checker compares every configuration
/// the replicas made (from 0) with the calls, so they keep them all (no
/// group reports here, and this bound is never reached in a test).
pub const KEEP_EVERY_CONFIG: usize = 1 << 20;

/// How often the watcher of a pruning tester looks at every replica. A
/// configuration lives on each replica until K newer ones are made, and
/// each clerk makes one change at a time, a network round trip (at least
/// 1 ms in the simulation) each: with fewer clerks than K, every
/// configuration is on some replica for many looks.
const WATCH_INTERVAL: Duration = Duration::from_millis(1);

/// What the watcher of a pruning tester saw (see
/// [`TesterConfig::retained_configs`]).
#[derive(Clone, Debug, Default)]
pub struct RetentionSeen {
    /// Every configuration seen on any replica, by number.
    pub configs: BTreeMap<u64, Config>,
    /// A number seen with two different contents (a safety violation).
    pub conflict: Option<String>,
    /// The most configurations one replica kept at once.
    pub max_retained: usize,
    /// The largest snapshot one replica made or installed, in bytes.
    pub max_snapshot_bytes: u64,
    /// The largest Raft state (log and hard state) one replica stored.
    pub max_raft_state_bytes: u64,
    /// How many looks the watcher took.
    pub looks: u64,
}

impl RetentionSeen {
    /// Takes in what one running replica holds now.
    fn look_at(&mut self, replica: usize, server: &ControllerServer) {
        let configs = server.local_configs();
        let status = server.status();
        self.max_retained = self.max_retained.max(configs.len());
        self.max_snapshot_bytes = self.max_snapshot_bytes.max(status.rsm.last_snapshot_bytes);
        self.max_raft_state_bytes = self
            .max_raft_state_bytes
            .max(status.rsm.raft.raft_state_size_bytes);
        for config in configs {
            match self.configs.get(&config.num) {
                Some(known) if *known != config && self.conflict.is_none() => {
                    self.conflict = Some(format!(
                        "replica {replica} holds configuration {} as {config:?}; it was seen \
                         before as {known:?}",
                        config.num
                    ));
                }
                Some(_) => {}
                None => {
                    self.configs.insert(config.num, config);
                }
            }
        }
    }
}

/// Placeholder server addresses of replica group `gid` (the controller only
/// stores them): 10.200.x.y, one port per server.
pub fn group_servers(gid: Gid, count: u16) -> Vec<SocketAddr> {
    let [.., high, low] = gid.to_be_bytes();
    (0..count)
        .map(|server| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 200, high, low)), 8000 + server))
        .collect()
}

type Slots = Arc<Mutex<Vec<Option<ControllerServer>>>>;

/// One controller group and its clients. Cheap to clone.
#[derive(Clone)]
pub struct Tester {
    net: Network,
    config: TesterConfig,
    /// Every replica started, original or added, by id.
    server_nodes: Arc<Mutex<Vec<NodeId>>>,
    slots: Slots,
    calls: CallLog,
    start: tokio::time::Instant,
    next_client: Arc<AtomicU64>,
    /// Filled by the watcher task of a pruning tester (empty otherwise).
    seen: Arc<Mutex<RetentionSeen>>,
}

impl Tester {
    /// Starts the replicas, each with file storage, on a new network.
    pub fn new(config: TesterConfig) -> Tester {
        let net = Network::new();
        Tester::on_network(net, config)
    }

    /// Starts the replicas on an existing network (the swarm's).
    pub fn on_network(net: Network, config: TesterConfig) -> Tester {
        net.set_reliable(config.reliable);
        let slots: Slots = Arc::new(Mutex::new(vec![None; config.servers]));
        let server_nodes = (0..config.servers)
            .map(|id| add_server_node(&net, config, id, false, &slots))
            .collect();
        let seen = Arc::new(Mutex::new(RetentionSeen::default()));
        if config.prunes() {
            tokio::spawn(watch_replicas(Arc::clone(&slots), Arc::clone(&seen)));
        }
        Tester {
            net,
            config,
            server_nodes: Arc::new(Mutex::new(server_nodes)),
            slots,
            calls: CallLog::default(),
            start: labrpc::runtime::now(),
            next_client: Arc::new(AtomicU64::new(0)),
            seen,
        }
    }

    /// What the watcher saw so far (a pruning tester only; empty
    /// otherwise).
    pub fn retention_seen(&self) -> RetentionSeen {
        self.seen.lock().expect("seen lock").clone()
    }

    pub fn net(&self) -> &Network {
        &self.net
    }

    pub fn config(&self) -> &TesterConfig {
        &self.config
    }

    /// Replica ids started so far (original and added).
    pub fn servers(&self) -> usize {
        self.server_nodes.lock().expect("nodes lock").len()
    }

    pub fn server_node(&self, id: usize) -> NodeId {
        self.server_nodes.lock().expect("nodes lock")[id]
    }

    /// Starts a replica with the next id that joins the running group
    /// (`RsmConfig::join`: a voter of nothing until a change adds it; its
    /// Raft id is its id, at or above the original count, so the others
    /// pass clerks' requests on to it when it leads). Returns its id.
    pub fn add_server(&self) -> usize {
        let mut nodes = self.server_nodes.lock().expect("nodes lock");
        let id = nodes.len();
        self.slots.lock().expect("slots lock").push(None);
        nodes.push(add_server_node(
            &self.net,
            self.config,
            id,
            true,
            &self.slots,
        ));
        id
    }

    /// The running replica `id` (None while it is down).
    pub fn server(&self, id: usize) -> Option<ControllerServer> {
        self.slots.lock().expect("slots lock")[id].clone()
    }

    /// Makes `change` (with the new member's address for an addition) on
    /// the replica that leads, retrying within `bound` of simulated time
    /// (`crate::harness::membership`).
    pub async fn change(
        &self,
        change: raft::core::MembershipChange,
        bound: Duration,
    ) -> Result<raft::core::Membership, String> {
        use raft::core::MembershipChange;
        let addr = match change {
            MembershipChange::AddLearner(id) | MembershipChange::AddVoter(id) => {
                Some(self.config.server_addr(id as usize))
            }
            _ => None,
        };
        crate::harness::membership::change_on_leader(|| self.running_rsms(), change, addr, bound)
            .await
            .map(|(membership, report)| {
                println!("{change:?}: {membership:?} after {report:?}");
                membership
            })
    }

    /// The configuration every running replica holds, once they agree
    /// (waiting at most `bound`).
    pub async fn membership_agreed(
        &self,
        bound: Duration,
    ) -> Result<raft::core::Membership, String> {
        crate::harness::membership::membership_agreed(|| self.running_rsms(), bound).await
    }

    fn running_rsms(&self) -> Vec<rsm::Rsm<shardctrler::ControllerMachine>> {
        self.slots
            .lock()
            .expect("slots lock")
            .iter()
            .flatten()
            .map(|server| server.rsm().clone())
            .collect()
    }

    /// A new clerk on a client node of its own, talking to the original
    /// replicas (the list a node's table gives; a replica added later is
    /// reached through them).
    pub fn make_client(&self) -> TestClerk {
        let index = self.next_client.fetch_add(1, Ordering::Relaxed);
        let node = self.net.add_client_node(
            &format!("ctrler-client-{index}"),
            self.config.client_ip(index),
        );
        let servers = (0..self.config.servers)
            .map(|id| self.config.server_addr(id))
            .collect();
        let clerk_config = ClerkConfig {
            rpc_timeout: Duration::from_millis(500),
            operation_deadline: self.config.clerk_deadline,
            ..ClerkConfig::default()
        };
        TestClerk {
            net: self.net.clone(),
            node,
            client: index,
            clerk: Arc::new(Clerk::new(servers, clerk_config)),
            calls: self.calls.clone(),
            start: self.start,
        }
    }

    /// Whether replica `id` is running (started and not shut down).
    pub fn is_up(&self, id: usize) -> bool {
        self.slots.lock().expect("slots lock")[id].is_some()
    }

    /// The lab's ShutdownServer: the replica stops; its files stay.
    pub fn shutdown_server(&self, id: usize) {
        self.net.kill(self.server_node(id));
        self.slots.lock().expect("slots lock")[id] = None;
    }

    /// The lab's StartServer: the replica restarts from its files.
    pub async fn start_server(&self, id: usize) {
        self.net.restart(self.server_node(id)).await;
    }

    /// Heals every partition and reconnects every node.
    pub fn connect_all(&self) {
        self.net.heal_all();
        for &node in self.server_nodes.lock().expect("nodes lock").iter() {
            self.net.connect(node);
        }
    }

    /// The running replica that believes it leads, if exactly one does.
    pub fn leader(&self) -> Option<usize> {
        let slots = self.slots.lock().expect("slots lock");
        let leaders: Vec<usize> = slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.as_ref().is_some_and(|server| server.raft().state().1))
            .map(|(id, _)| id)
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Every configuration replica `id` has applied (None if it is down).
    pub fn replica_configs(&self, id: usize) -> Option<Vec<Config>> {
        self.slots.lock().expect("slots lock")[id]
            .as_ref()
            .map(ControllerServer::local_configs)
    }

    /// Largest Raft state of any running replica, in bytes.
    pub fn max_raft_state_bytes(&self) -> u64 {
        let slots = self.slots.lock().expect("slots lock");
        slots
            .iter()
            .flatten()
            .map(|server| server.status().rsm.raft.raft_state_size_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Waits until every running replica holds the same configurations as
    /// the others, with at least `at_least` as the latest; returns them.
    pub async fn converged_configs(
        &self,
        at_least: u64,
        bound: Duration,
    ) -> Result<Vec<Config>, String> {
        let deadline = labrpc::runtime::now() + bound;
        loop {
            let lists: Vec<Vec<Config>> = (0..self.servers())
                .filter_map(|id| self.replica_configs(id))
                .collect();
            let agreed = !lists.is_empty()
                && lists.iter().all(|list| list == &lists[0])
                && lists[0].last().is_some_and(|latest| latest.num >= at_least);
            if agreed {
                return Ok(lists[0].clone());
            }
            if labrpc::runtime::now() >= deadline {
                let lengths: Vec<usize> = lists.iter().map(Vec::len).collect();
                return Err(format!(
                    "after {bound:?} the running replicas still disagree on the configurations \
                     (counts {lengths:?}, wanted a latest of at least {at_least})"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The whole-history check ([`history`]) against the replicas'
    /// configurations once they agree (within 10 s). Returns how many
    /// configurations came from changes whose clients never learnt the
    /// outcome.
    pub async fn check_history(&self) -> Result<u64, String> {
        let calls = self.calls.calls();
        let highest_seen = calls
            .iter()
            .filter_map(|call| match &call.outcome {
                Some(Outcome::Changed(num)) => Some(*num),
                Some(Outcome::Config(config)) => Some(config.num),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let mut configs = self
            .converged_configs(highest_seen, Duration::from_secs(10))
            .await?;
        if self.config.prunes() {
            configs = self.every_config_made(&configs)?;
        }
        let unknown = check_history(self.config.limits(), &configs, &calls)?;
        tracing::info!(
            calls = calls.len(),
            configs = configs.len(),
            unknown,
            "controller history checked"
        );
        Ok(unknown)
    }

    /// A pruning tester's configurations 0..=latest: what the watcher saw,
    /// checked against what the replicas keep now (`retained`, agreed).
    fn every_config_made(&self, retained: &[Config]) -> Result<Vec<Config>, String> {
        let mut seen = self.retention_seen();
        if let Some(conflict) = seen.conflict {
            return Err(conflict);
        }
        for config in retained {
            match seen.configs.get(&config.num) {
                Some(known) if known != config => {
                    return Err(format!(
                        "the replicas agree on configuration {} as {config:?}; it was seen \
                         before as {known:?}",
                        config.num
                    ));
                }
                Some(_) => {}
                None => {
                    seen.configs.insert(config.num, config.clone());
                }
            }
        }
        let latest = retained.last().map_or(0, |config| config.num);
        (0..=latest)
            .map(|num| {
                seen.configs.get(&num).cloned().ok_or_else(|| {
                    format!(
                        "configuration {num} was never seen on a replica (made and dropped \
                         between two of the watcher's looks, {WATCH_INTERVAL:?} apart)"
                    )
                })
            })
            .collect()
    }

    /// [`Tester::check_history`] that panics on a violation.
    pub async fn assert_history(&self) {
        if let Err(violation) = self.check_history().await {
            panic!("controller history check failed: {violation}");
        }
    }

    /// Every recorded call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.calls()
    }
}

/// A pruning tester's watcher: looks at every running replica every
/// [`WATCH_INTERVAL`] until the simulation ends.
async fn watch_replicas(slots: Slots, seen: Arc<Mutex<RetentionSeen>>) {
    loop {
        let servers: Vec<(usize, ControllerServer)> = slots
            .lock()
            .expect("slots lock")
            .iter()
            .enumerate()
            .filter_map(|(id, slot)| slot.clone().map(|server| (id, server)))
            .collect();
        {
            let mut seen = seen.lock().expect("seen lock");
            for (id, server) in &servers {
                seen.look_at(*id, server);
            }
            seen.looks += 1;
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

/// Creates replica `id`'s simulated node (its init starts the replica, at
/// creation and on every restart).
fn add_server_node(
    net: &Network,
    config: TesterConfig,
    id: usize,
    join: bool,
    slots: &Slots,
) -> NodeId {
    let slots = Arc::clone(slots);
    net.add_node(
        &format!("ctrler-{id}"),
        config.server_addr(id).ip(),
        move || start_server(config, id, join, Arc::clone(&slots)),
    )
}

async fn start_server(config: TesterConfig, id: usize, join: bool, slots: Slots) {
    // An original replica knows the group it was started with; a joining
    // one the ids up to its own (`RsmConfig::join`).
    let known = if join { id + 1 } else { config.servers };
    let peer_addrs = (0..known).map(|peer| config.server_addr(peer)).collect();
    let mut server_config = ControllerServerConfig {
        max_retained_configs: config.retained_configs,
        pass_on_from: Some(config.servers as u64),
        ..ControllerServerConfig::new(id, peer_addrs, config.shard_count, madsim::rand::random())
    };
    server_config.replica.max_raft_state = config.max_raft_state;
    server_config.replica.join = join;
    let server = ControllerServer::start(server_config, FileStorage::new("/shardctrler"))
        .await
        .unwrap_or_else(|error| panic!("controller replica {id} failed to start: {error}"));
    slots.lock().expect("slots lock")[id] = Some(server);
}

/// A clerk on a client node: every call runs on that node (so network
/// faults apply) and is recorded. Cheap to clone (clones share the clerk's
/// session: run one change at a time per [`TestClerk`]).
#[derive(Clone)]
pub struct TestClerk {
    net: Network,
    node: NodeId,
    client: u64,
    clerk: Arc<Clerk>,
    calls: CallLog,
    start: tokio::time::Instant,
}

impl TestClerk {
    pub fn node(&self) -> NodeId {
        self.node
    }

    fn now_us(&self) -> u64 {
        u64::try_from(
            labrpc::runtime::now()
                .duration_since(self.start)
                .as_micros(),
        )
        .unwrap_or(u64::MAX)
    }

    /// Runs `op` from the client node and records it. A timeout is an
    /// unknown outcome (`Err(Timeout)` is returned and recorded as such).
    async fn run_recorded(&self, op: ConfigOp) -> Result<ConfigAnswer, ClerkError> {
        let invoked_us = self.now_us();
        let clerk = Arc::clone(&self.clerk);
        let request = op.clone();
        let result = self
            .net
            .spawn(self.node, async move { clerk.run(request).await })
            .await
            .expect("client nodes are never killed, so their tasks finish");
        let outcome = match &result {
            Ok(ConfigAnswer::Changed { num }) => Some(Outcome::Changed(*num)),
            Ok(ConfigAnswer::Config(config)) => Some(Outcome::Config(config.clone())),
            Ok(ConfigAnswer::Reported { oldest }) => Some(Outcome::Reported(*oldest)),
            Err(ClerkError::Refused(error)) => Some(Outcome::Refused(error.clone())),
            Err(ClerkError::Timeout { .. }) => None,
            Err(error) => panic!("client {}: unexpected error {error}", self.client),
        };
        self.calls.push(Call {
            client: self.client,
            op,
            invoked_us,
            returned_us: self.now_us(),
            outcome,
        });
        result
    }

    /// A Join of groups with three placeholder servers each, that must
    /// succeed.
    pub async fn must_join(&self, gids: &[Gid]) -> u64 {
        let groups = gids
            .iter()
            .map(|&gid| (gid, group_servers(gid, 3)))
            .collect();
        self.join(groups)
            .await
            .unwrap_or_else(|error| panic!("join of {gids:?} failed: {error}"))
    }

    pub async fn must_leave(&self, gids: &[Gid]) -> u64 {
        self.leave(gids.to_vec())
            .await
            .unwrap_or_else(|error| panic!("leave of {gids:?} failed: {error}"))
    }

    pub async fn must_move(&self, shard: usize, gid: Gid) -> u64 {
        self.move_shard(shard, gid)
            .await
            .unwrap_or_else(|error| panic!("move of shard {shard} to {gid} failed: {error}"))
    }

    pub async fn must_query(&self, num: Option<u64>) -> Config {
        self.query(num)
            .await
            .unwrap_or_else(|error| panic!("query of {num:?} failed: {error}"))
    }

    /// A request that must be refused with `expected`.
    pub async fn must_refuse(&self, op: ConfigOp, expected: ConfigError) {
        let what = format!("{op:?}");
        match self.run(op).await {
            Err(ClerkError::Refused(error)) => assert_eq!(
                error, expected,
                "{what} was refused with {error}, expected {expected}"
            ),
            other => panic!("{what} answered {other:?}, expected refusal {expected}"),
        }
    }

    /// The lab's `check`: the latest configuration lists exactly `gids`,
    /// puts every shard on one of them (none unassigned unless there are
    /// no groups) and is balanced. Returns it.
    pub async fn check(&self, gids: &[Gid]) -> Config {
        let config = self.must_query(None).await;
        assert_config(&config, gids);
        config
    }
}

impl ControllerClient for TestClerk {
    /// The clerk's answer, run on the client node and recorded (see
    /// [`TestClerk::run_recorded`]); the typed operations are the trait's.
    async fn run(&self, op: ConfigOp) -> Result<ConfigAnswer, ClerkError> {
        self.run_recorded(op).await
    }
}

/// The lab's `check` on a configuration already in hand.
pub fn assert_config(config: &Config, gids: &[Gid]) {
    let expected: BTreeSet<Gid> = gids.iter().copied().collect();
    let listed: BTreeSet<Gid> = config.groups.keys().copied().collect();
    assert_eq!(
        listed, expected,
        "configuration {} lists groups {listed:?}, expected {expected:?}",
        config.num
    );
    if !expected.is_empty() {
        for (shard, gid) in config.shards.iter().enumerate() {
            assert!(
                *gid != UNASSIGNED && expected.contains(gid),
                "configuration {}: shard {shard} is on group {gid}, not one of {expected:?}",
                config.num
            );
        }
    }
    assert!(
        is_balanced(&config.shards, &expected),
        "configuration {} is not balanced: {:?}",
        config.num,
        config.shards
    );
}

/// The lab's `check_same_config`.
pub fn assert_same_config(seen: &Config, expected: &Config) {
    assert_eq!(
        seen, expected,
        "configuration {} read back differently",
        expected.num
    );
}

/// Checks that from `before` to `after` shards moved only to `joined`
/// groups (a Join) and at most `limit` of them.
pub fn assert_moves_only_to(before: &Config, after: &Config, joined: &[Gid], limit: usize) {
    let moved: Vec<usize> = (0..before.shards.len())
        .filter(|&shard| before.shards[shard] != after.shards[shard])
        .collect();
    for &shard in &moved {
        assert!(
            joined.contains(&after.shards[shard]),
            "configuration {} -> {}: shard {shard} moved from {} to {}, expected moves only to \
             the joining groups {joined:?}",
            before.num,
            after.num,
            before.shards[shard],
            after.shards[shard]
        );
    }
    assert!(
        moved.len() <= limit,
        "configuration {} -> {}: {} shards moved, expected at most {limit}",
        before.num,
        after.num,
        moved.len()
    );
}

/// Checks that from `before` to `after` shards moved only away from `left`
/// groups (a Leave) and at most `limit` of them.
pub fn assert_moves_only_from(before: &Config, after: &Config, left: &[Gid], limit: usize) {
    let moved: Vec<usize> = (0..before.shards.len())
        .filter(|&shard| before.shards[shard] != after.shards[shard])
        .collect();
    for &shard in &moved {
        assert!(
            left.contains(&before.shards[shard]),
            "configuration {} -> {}: shard {shard} moved from {} to {}, expected moves only away \
             from the leaving groups {left:?}",
            before.num,
            after.num,
            before.shards[shard],
            after.shards[shard]
        );
    }
    assert!(
        moved.len() <= limit,
        "configuration {} -> {}: {} shards moved, expected at most {limit}",
        before.num,
        after.num,
        moved.len()
    );
}

/// Shuts every replica down in turn and, with the others serving, reads
/// back each configuration in `expected` (the lab's historical queries).
pub async fn check_historical_queries(tester: &Tester, clerk: &TestClerk, expected: &[Config]) {
    for id in 0..tester.servers() {
        phase(&format!("historical queries with replica {id} down"));
        tester.shutdown_server(id);
        for config in expected {
            let seen = clerk.must_query(Some(config.num)).await;
            assert_same_config(&seen, config);
        }
        tester.start_server(id).await;
        tester.connect_all();
    }
}
