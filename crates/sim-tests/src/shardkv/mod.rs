//! The shardkv tester: a shard controller group and replica groups on
//! simulated nodes, clerks on client nodes whose every call is recorded,
//! and the checks of 6.5840's Lab 5 (linearizability of the whole history,
//! Raft state bounds, stored bytes).
//!
//! ```text
//!  (subnet S: 0 in the tests; the swarm uses its own)
//!  nodes 10.S.0.1-3        controller replicas (shardctrler)
//!  nodes 10.S.0.11-13      group 100 (gid 100 + g: nodes 10 + 10 g + i)
//!  nodes 10.S.0.21-23      group 101
//!  nodes 10.S.0.31-33      group 102
//!  client nodes 10.S+1.x.y recording clerks; one admin node for join/leave
//! ```

mod recording;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use labrpc::sim::{Network, NodeId};
use linearizability::{KvInput, KvModel, KvOutput, Recorder, StepBudget};
use raft::storage::FileStorage;
use shardctrler::{Config, Gid};
use shardkv::{
    Controller, Op, ShardKvRequest, ShardServer, ShardServerConfig, ShardServerStatus, key_to_shard,
};

use crate::harness::{SERVICE_PORT, check_operations, phase};

pub use recording::{RecordingClerk, TestClient};

/// Shards in every test (as in the lab).
pub const SHARDS: usize = 10;
/// Replicas per group and in the controller.
pub const GROUP_SERVERS: usize = 3;
/// The gid of group index `g`.
pub const FIRST_GID: Gid = 100;

/// Message and piece sizes of the groups' shard transfers (a test lowers
/// them so a small shard spans many messages).
#[derive(Clone, Copy, Debug)]
pub struct TransferLimits {
    pub max_message_bytes: usize,
    pub chunk_bytes: u64,
}

/// Each replica's own `shard_capacity_bytes`, by replica index (every
/// group alike); the server's default when a tester does not set them.
pub type StoreCapacities = [u64; GROUP_SERVERS];

/// What a tester changes from the defaults.
#[derive(Clone, Copy, Debug, Default)]
struct Options {
    transfer: Option<TransferLimits>,
    retained_configs: Option<usize>,
    store_capacities: Option<StoreCapacities>,
}

type Slots = Arc<Mutex<Vec<Option<ShardServer>>>>;
type ControllerSlots = Arc<Mutex<Vec<Option<shardctrler::ControllerServer>>>>;

/// One replica group.
struct Group {
    gid: Gid,
    nodes: Vec<NodeId>,
    addrs: Vec<SocketAddr>,
    slots: Slots,
    /// Each replica's Raft state size when [`Tester::shutdown_server`] took
    /// it down (its files cannot grow while it is down).
    size_at_kill: Arc<Mutex<Vec<Option<u64>>>>,
}

/// Controller + groups + clients.
pub struct Tester {
    net: Network,
    controller_nodes: Vec<NodeId>,
    controller_addrs: Vec<SocketAddr>,
    controller_slots: ControllerSlots,
    groups: Vec<Group>,
    recorder: Recorder<KvInput, KvOutput>,
    start: tokio::time::Instant,
    next_client: Arc<AtomicU64>,
    max_raft_state: Option<u64>,
    subnet: u8,
    admin: TestClient,
}

fn controller_addr(subnet: u8, i: usize) -> SocketAddr {
    host_addr(subnet, 1 + i)
}

fn server_addr(subnet: u8, group: usize, i: usize) -> SocketAddr {
    host_addr(subnet, 11 + 10 * group + i)
}

fn host_addr(subnet: u8, host: usize) -> SocketAddr {
    let host = u8::try_from(host).expect("fewer than 255 server nodes");
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, subnet, 0, host)), SERVICE_PORT)
}

/// The address of client node `index` of the tester on `subnet`.
fn tester_client_ip(subnet: u8, index: u64) -> IpAddr {
    let [_, _, high, low] = u32::try_from(index + 1)
        .expect("fewer than 2^32 clients")
        .to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, subnet + 1, high, low))
}

impl Tester {
    /// Starts the controller and `groups` groups of [`GROUP_SERVERS`]
    /// (none joined yet).
    pub fn new(groups: usize, reliable: bool, max_raft_state: Option<u64>) -> Tester {
        Tester::on_subnet(groups, reliable, max_raft_state, 0)
    }

    /// Like [`Tester::new`], with addresses 10.`subnet`.x.y (servers) and
    /// 10.`subnet + 1`.x.y (clients), apart from other testers in the same
    /// simulation.
    pub fn on_subnet(
        groups: usize,
        reliable: bool,
        max_raft_state: Option<u64>,
        subnet: u8,
    ) -> Tester {
        Tester::build(groups, reliable, max_raft_state, subnet, Options::default())
    }

    /// Like [`Tester::new`], with a controller that keeps at most
    /// `retained_configs` configurations (K; the server's default
    /// otherwise).
    pub fn with_controller_retention(
        groups: usize,
        reliable: bool,
        max_raft_state: Option<u64>,
        retained_configs: usize,
    ) -> Tester {
        let options = Options {
            retained_configs: Some(retained_configs),
            ..Options::default()
        };
        Tester::build(groups, reliable, max_raft_state, 0, options)
    }

    /// Like [`Tester::new`], with the groups' shard transfers limited to
    /// `transfer` (message limit and piece size).
    pub fn with_transfer_limits(
        groups: usize,
        reliable: bool,
        max_raft_state: Option<u64>,
        transfer: TransferLimits,
    ) -> Tester {
        let options = Options {
            transfer: Some(transfer),
            ..Options::default()
        };
        Tester::build(groups, reliable, max_raft_state, 0, options)
    }

    /// Like [`Tester::new`], with replica `i` of every group configured
    /// with store capacity `capacities[i]` (as nodes whose files disagree).
    pub fn with_store_capacities(
        groups: usize,
        reliable: bool,
        capacities: StoreCapacities,
    ) -> Tester {
        let options = Options {
            store_capacities: Some(capacities),
            ..Options::default()
        };
        Tester::build(groups, reliable, None, 0, options)
    }

    fn build(
        groups: usize,
        reliable: bool,
        max_raft_state: Option<u64>,
        subnet: u8,
        options: Options,
    ) -> Tester {
        let retained_configs = options.retained_configs;
        let net = Network::new();
        net.set_reliable(reliable);
        let controller_addrs: Vec<SocketAddr> = (0..GROUP_SERVERS)
            .map(|i| controller_addr(subnet, i))
            .collect();
        let controller_slots: ControllerSlots = Arc::new(Mutex::new(vec![None; GROUP_SERVERS]));
        let controller_nodes = (0..GROUP_SERVERS)
            .map(|id| {
                let addrs = controller_addrs.clone();
                let slots = Arc::clone(&controller_slots);
                net.add_node(&format!("ctrler-{id}"), addrs[id].ip(), move || {
                    start_controller(id, addrs.clone(), Arc::clone(&slots), retained_configs)
                })
            })
            .collect();
        let groups = (0..groups)
            .map(|g| {
                let gid = FIRST_GID + g as u64;
                let addrs: Vec<SocketAddr> = (0..GROUP_SERVERS)
                    .map(|i| server_addr(subnet, g, i))
                    .collect();
                let slots: Slots = Arc::new(Mutex::new(vec![None; GROUP_SERVERS]));
                let nodes = (0..GROUP_SERVERS)
                    .map(|id| {
                        let slots = Arc::clone(&slots);
                        let addrs = addrs.clone();
                        let controller_addrs = controller_addrs.clone();
                        net.add_node(&format!("skv-{gid}-{id}"), addrs[id].ip(), move || {
                            start_server(
                                gid,
                                id,
                                addrs.clone(),
                                controller_addrs.clone(),
                                Arc::clone(&slots),
                                max_raft_state,
                                options,
                            )
                        })
                    })
                    .collect();
                Group {
                    gid,
                    nodes,
                    addrs,
                    slots,
                    size_at_kill: Arc::new(Mutex::new(vec![None; GROUP_SERVERS])),
                }
            })
            .collect();
        let recorder = Recorder::new();
        let start = labrpc::runtime::now();
        let next_client = Arc::new(AtomicU64::new(0));
        let admin = TestClient::new(
            &net,
            subnet,
            &controller_addrs,
            &recorder,
            start,
            &next_client,
            false,
        );
        Tester {
            net,
            controller_nodes,
            controller_addrs,
            controller_slots,
            groups,
            recorder,
            start,
            next_client,
            max_raft_state,
            subnet,
            admin,
        }
    }

    pub fn net(&self) -> &Network {
        &self.net
    }

    pub fn gid(&self, group: usize) -> Gid {
        self.groups[group].gid
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Every server node of every group, and the controller's.
    pub fn server_nodes(&self) -> Vec<NodeId> {
        self.controller_nodes
            .iter()
            .chain(self.groups.iter().flat_map(|group| group.nodes.iter()))
            .copied()
            .collect()
    }

    pub fn group_nodes(&self, group: usize) -> &[NodeId] {
        &self.groups[group].nodes
    }

    /// The labrpc addresses of `group`'s replicas (replica `i` at `[i]`),
    /// for a test that sends raw requests to them.
    pub fn group_addrs(&self, group: usize) -> &[SocketAddr] {
        &self.groups[group].addrs
    }

    /// A new recording client on a node of its own.
    pub fn make_client(&self) -> TestClient {
        TestClient::new(
            &self.net,
            self.subnet,
            &self.controller_addrs,
            &self.recorder,
            self.start,
            &self.next_client,
            true,
        )
    }

    /// Joins groups (one controller operation).
    pub async fn join(&self, groups: &[usize]) {
        let servers: BTreeMap<Gid, Vec<SocketAddr>> = groups
            .iter()
            .map(|&g| (self.groups[g].gid, self.groups[g].addrs.clone()))
            .collect();
        phase(&format!("join {:?}", servers.keys().collect::<Vec<_>>()));
        self.admin.controller_join(servers).await;
    }

    /// Removes groups (one controller operation).
    pub async fn leave(&self, groups: &[usize]) {
        let gids: Vec<Gid> = groups.iter().map(|&g| self.groups[g].gid).collect();
        phase(&format!("leave {gids:?}"));
        self.admin.controller_leave(gids).await;
    }

    /// Moves one shard to `group` (one controller operation).
    pub async fn move_shard(&self, shard: usize, group: usize) {
        let gid = self.groups[group].gid;
        phase(&format!("move shard {shard} to {gid}"));
        self.admin.controller_move(shard, gid).await;
    }

    /// Declares `group` lost (one controller operation); returns the
    /// configuration that records it.
    pub async fn declare_lost(&self, group: usize) -> u64 {
        let gid = self.groups[group].gid;
        phase(&format!("declare group {gid} lost"));
        self.admin.controller_declare_lost(gid).await
    }

    /// The controller's latest configuration.
    pub async fn query(&self) -> Config {
        self.admin.controller_query().await
    }

    pub fn shutdown_server(&self, group: usize, i: usize) {
        let size = self
            .status(group, i)
            .map(|status| status.rsm.raft.raft_state_size_bytes);
        self.groups[group].size_at_kill.lock().expect("size lock")[i] = size;
        self.net.kill(self.groups[group].nodes[i]);
        self.groups[group].slots.lock().expect("slots lock")[i] = None;
    }

    pub async fn start_server(&self, group: usize, i: usize) {
        self.net.restart(self.groups[group].nodes[i]).await;
    }

    pub fn shutdown_group(&self, group: usize) {
        phase(&format!("shut down group {}", self.groups[group].gid));
        for i in 0..GROUP_SERVERS {
            self.shutdown_server(group, i);
        }
    }

    pub async fn start_group(&self, group: usize) {
        phase(&format!("start group {}", self.groups[group].gid));
        for i in 0..GROUP_SERVERS {
            self.start_server(group, i).await;
        }
    }

    /// The status of every running replica of `group`.
    /// The controller replicas' statuses (those started).
    pub fn controller_statuses(&self) -> Vec<shardctrler::ControllerStatus> {
        self.controller_slots
            .lock()
            .expect("controller slots lock")
            .iter()
            .flatten()
            .map(shardctrler::ControllerServer::status)
            .collect()
    }

    /// The configuration numbers each running controller replica keeps,
    /// oldest first.
    pub fn controller_retained(&self) -> Vec<Vec<u64>> {
        self.controller_slots
            .lock()
            .expect("controller slots lock")
            .iter()
            .flatten()
            .map(|server| {
                server
                    .local_configs()
                    .iter()
                    .map(|config| config.num)
                    .collect()
            })
            .collect()
    }

    /// The status of replica `i` of `group`, if it is running.
    pub fn status(&self, group: usize, i: usize) -> Option<ShardServerStatus> {
        self.groups[group].slots.lock().expect("slots lock")[i]
            .as_ref()
            .map(ShardServer::status)
    }

    pub fn statuses(&self, group: usize) -> Vec<ShardServerStatus> {
        self.groups[group]
            .slots
            .lock()
            .expect("slots lock")
            .iter()
            .flatten()
            .map(ShardServer::status)
            .collect()
    }

    /// Looks at replica `i` of `group`: its state machine and the log
    /// index it has applied, read together (nothing runs in between), if
    /// the replica is running. A test-only view: nothing is proposed or
    /// changed.
    pub fn with_machine<R>(
        &self,
        group: usize,
        i: usize,
        look: impl FnOnce(&shardkv::ShardMachine, u64) -> R,
    ) -> Option<R> {
        let slots = self.groups[group].slots.lock().expect("slots lock");
        let server = slots[i].as_ref()?;
        let applied = server.status().rsm.last_applied;
        Some(server.with_machine(|machine| look(machine, applied)))
    }

    /// Sends a put for `key` straight to `group`'s servers (bypassing the
    /// clerk's routing) until its leader answers; true if it answered
    /// `WrongGroup`, false if it applied the put.
    ///
    /// # Panics
    /// If no leader answers within 100 rounds.
    pub async fn put_directly(&self, group: usize, key: &str, value: &str) -> bool {
        let request = ShardKvRequest {
            client_id: madsim::rand::random(),
            seq: 1,
            config_num: 0,
            op: Op::Put {
                key: key.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
                ttl_ms: None,
            },
        };
        let addrs = self.groups[group].addrs.clone();
        let gid = self.groups[group].gid;
        self.admin
            .run(move |_| async move {
                let client = labrpc::Client::default();
                for _ in 0..100 {
                    for &addr in &addrs {
                        match client.call(addr, &request).await {
                            Ok(Err(api::Error::WrongGroup { .. })) => return true,
                            Ok(Ok(_)) => return false,
                            _ => {}
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!("no leader of group {gid} answered a direct put")
            })
            .await
    }

    /// Whether every shard is held by exactly one group, the owner in
    /// `latest`, on every running replica of it, with no migration
    /// pending, and no other replica holds it. `Err` says what differs.
    pub fn check_single_owners(&self, latest: &Config) -> Result<(), String> {
        for group in 0..self.groups.len() {
            let gid = self.gid(group);
            for status in self.statuses(group) {
                if status.config_num != latest.num {
                    return Err(format!(
                        "a replica of group {gid} is at configuration {}, not {}",
                        status.config_num, latest.num
                    ));
                }
                for shard in 0..latest.shard_count() {
                    let owner = latest.shards[shard];
                    let held = status.shard_states.get(&shard);
                    let expected = (owner == gid).then_some(&shardkv::ShardState::Serving);
                    if held != expected {
                        return Err(format!(
                            "a replica of group {gid} holds shard {shard} as {held:?}; its \
                             owner in configuration {} is {owner}",
                            latest.num
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// TESTS.md: Raft state at most 8 x max_raft_state on every replica.
    ///
    /// A running replica is measured now; one that
    /// [`Tester::shutdown_server`] took down is measured as it was then (a
    /// down replica's files do not grow). A replica measured neither way is
    /// named as skipped; a group none of whose replicas could be measured
    /// fails the check rather than pass it unmeasured.
    pub fn check_raft_state_bounded(&self) {
        if let Some(problem) = self.raft_state_unbounded() {
            panic!("{problem}");
        }
    }

    /// [`Tester::check_raft_state_bounded`], waiting up to `within` for
    /// the replicas to snapshot (checked every 100 ms): for a check right
    /// after a burst of writes, in place of a fixed sleep before it.
    pub async fn await_raft_state_bounded(&self, within: Duration) {
        let deadline = labrpc::runtime::now() + within;
        while let Some(problem) = self.raft_state_unbounded() {
            assert!(
                labrpc::runtime::now() < deadline,
                "{problem} (waited {within:?})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first replica over the bound, or a group none of whose replicas
    /// could be measured; `None` when the bound holds.
    fn raft_state_unbounded(&self) -> Option<String> {
        let max_raft_state = self.max_raft_state?;
        for group in 0..self.groups.len() {
            let gid = self.gid(group);
            let at_kill = self.groups[group]
                .size_at_kill
                .lock()
                .expect("size lock")
                .clone();
            let mut measured = 0;
            for (i, size_at_kill) in at_kill.into_iter().enumerate() {
                let size = match self.status(group, i) {
                    Some(status) => status.rsm.raft.raft_state_size_bytes,
                    None => match size_at_kill {
                        Some(size) => size,
                        None => {
                            println!(
                                "raft state bound: group {gid} replica {i} skipped (down, never \
                                 measured)"
                            );
                            continue;
                        }
                    },
                };
                measured += 1;
                if size > 8 * max_raft_state {
                    return Some(format!(
                        "group {gid} replica {i}: Raft state {size} bytes > 8 x max_raft_state \
                         ({max_raft_state})"
                    ));
                }
            }
            if measured == 0 {
                return Some(format!(
                    "raft state bound: no replica of group {gid} could be measured"
                ));
            }
        }
        None
    }

    /// Persisted bytes over every replica of every group: Raft state plus
    /// the latest snapshot (the lab's challenge 1 measure).
    pub fn total_persisted_bytes(&self) -> u64 {
        (0..self.groups.len())
            .flat_map(|group| self.statuses(group))
            .map(|status| status.rsm.raft.raft_state_size_bytes + status.rsm.last_snapshot_bytes)
            .sum()
    }

    /// Checks the whole recorded history with the kv model; panics on a
    /// violation or an unknown verdict.
    pub fn check_linearizable(&self) {
        self.check_linearizable_except(&std::collections::BTreeSet::new());
    }

    /// [`Tester::check_linearizable`] over the operations on every key but
    /// `excluded` (keys whose data an operator gave up: the kv model has
    /// no "lost" step, so their histories are checked by the test itself).
    pub fn check_linearizable_except(&self, excluded: &std::collections::BTreeSet<String>) {
        let history = self
            .recorder
            .history()
            .expect("simulated clock never goes backwards");
        let history = if excluded.is_empty() {
            history
        } else {
            let kept = history
                .operations()
                .iter()
                .filter(|operation| !excluded.contains(operation.input.key()))
                .cloned()
                .collect();
            linearizability::History::new(kept).expect("a subset of a valid history is valid")
        };
        match check_operations(&history, &KvModel::new(), StepBudget::new(200_000_000)) {
            Ok(summary) => tracing::info!("history is linearizable: {summary}"),
            Err(problem) => panic!("{problem}"),
        }
    }
}

async fn start_controller(
    id: usize,
    addrs: Vec<SocketAddr>,
    slots: ControllerSlots,
    retained_configs: Option<usize>,
) {
    let mut config =
        shardctrler::ControllerServerConfig::new(id, addrs, SHARDS, madsim::rand::random());
    config.replica.max_raft_state = None;
    if let Some(retained_configs) = retained_configs {
        config.max_retained_configs = retained_configs;
    }
    let server = shardctrler::ControllerServer::start(config, FileStorage::new("/shardctrler"))
        .await
        .unwrap_or_else(|error| panic!("controller {id} failed to start: {error}"));
    slots.lock().expect("controller slots lock")[id] = Some(server);
}

async fn start_server(
    gid: Gid,
    id: usize,
    addrs: Vec<SocketAddr>,
    controller_addrs: Vec<SocketAddr>,
    slots: Slots,
    max_raft_state: Option<u64>,
    options: Options,
) {
    let mut config = ShardServerConfig::new(gid, id, addrs, SHARDS, madsim::rand::random());
    config.replica.max_raft_state = max_raft_state;
    if let Some(capacities) = options.store_capacities {
        config.machine.store.capacity_bytes = capacities[id];
    }
    if let Some(transfer) = options.transfer {
        config.replica.max_message_bytes = transfer.max_message_bytes;
        config.transfer_chunk_bytes = transfer.chunk_bytes;
    }
    let controller = Controller::new(controller_addrs);
    let server = ShardServer::start(config, controller, FileStorage::new("/shardkv"))
        .await
        .unwrap_or_else(|error| panic!("group {gid} server {id} failed to start: {error}"));
    slots.lock().expect("slots lock")[id] = Some(server);
}

/// `count` distinct keys, key `i` in shard `i % SHARDS` (so ten keys hit
/// ten shards, as the lab's keys "0".."9" do with its hash).
pub fn keys(count: usize) -> Vec<String> {
    (0..count)
        .map(|index| {
            let shard = index % SHARDS;
            (0..10_000)
                .map(|suffix| format!("{index}-{suffix}"))
                .find(|key| key_to_shard(key.as_bytes(), SHARDS) == shard)
                .expect("a key for every shard among 10000 suffixes")
        })
        .collect()
}

/// A random printable string of `length` bytes.
pub fn random_string(length: usize) -> String {
    (0..length)
        .map(|_| char::from(b'a' + (madsim::rand::random::<u8>() % 26)))
        .collect()
}

/// A random duration below `max_ms`.
pub fn random_ms(max_ms: u64) -> Duration {
    Duration::from_millis(madsim::rand::random::<u64>() % max_ms.max(1))
}
