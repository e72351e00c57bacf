//! One node: the replicas its configuration names, the forwarder, and the
//! public gRPC API, started in that order and stopped in reverse.
//!
//! ```text
//!  Node::start(config)
//!    validate config ─► claim data_dir (IDENTITY) ─► controller replica?
//!      (FileStorage in data_dir/controller, labrpc on controller_port)
//!    ─► data replica? (FileStorage in data_dir/data, labrpc on data_port)
//!    ─► Forwarder ─► gRPC API (Cache, Admin) on grpc_port ─► RESP on
//!       resp_port ─► HTTP gateway on http_port (each if configured)
//!    ─► bootstrap (controller hosts, fresh cluster only): Join every group
//!       the configuration lists, once, in one change
//!  Node::shutdown()
//!    each replica that leads hands leadership to a peer (raft
//!    transfer_leader, bounded) while the node still serves
//!    ─► refuse new pooled writes ─► stop accepting gRPC, let in-flight
//!    requests finish (bounded) ─► stop the replicas (their state is on
//!    disk: Raft persists before it answers)
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use distcache_client::proto;
use distcache_client::proto::admin_server::AdminServer;
use distcache_client::proto::cache_server::CacheServer;
use raft::node::FatalHook;
use raft::storage::FileStorage;
use shardctrler::{ControllerClient, ControllerServer, ControllerServerConfig};
use shardkv::{Op, ShardServer, ShardServerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{ClientLimits, ConfigError, NodeConfig, Topology};
use crate::forward::Forwarder;
use crate::identity::{self, CONTROLLER_DIR_NAME, DATA_DIR_NAME, DISK_DIR_NAME, IdentityError};
use crate::metrics::{Metrics, ShardStat};
use crate::service::{AdminService, CacheService};

/// Largest gRPC message accepted or sent (a MultiGet of large values).
pub const MAX_GRPC_MESSAGE_BYTES: usize = 64 << 20;
/// gRPC streams one client connection may have open at once (HTTP/2's
/// `SETTINGS_MAX_CONCURRENT_STREAMS`).
const GRPC_MAX_STREAMS_PER_CONNECTION: u32 = 1024;
/// gRPC requests of one connection handled at once; more wait their turn.
const GRPC_CONCURRENCY_PER_CONNECTION: usize = 256;
/// Largest header block a gRPC request may send (metadata).
const GRPC_MAX_HEADER_LIST_BYTES: u32 = 64 << 10;
/// An idle gRPC connection is pinged this often, and closed when a ping
/// goes unanswered for [`GRPC_KEEPALIVE_TIMEOUT`] (a vanished client).
const GRPC_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
const GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("controller replica: {0}")]
    Controller(rsm::StartError),
    #[error("data replica: {0}")]
    Data(rsm::StartError),
    #[error("cannot serve the gRPC API on {addr}: {detail}")]
    Listen { addr: SocketAddr, detail: String },
}

/// What the services of one node share.
pub struct NodeState {
    pub node_id: u64,
    pub cluster_id: String,
    pub topology: Topology,
    /// This node's gRPC address as it is told (its `host`; loopback when
    /// protected mode keeps the client listeners there). The listener may
    /// bind another address (`listen_host`).
    pub grpc_addr: SocketAddr,
    pub forwarder: Arc<Forwarder>,
    /// This node's Prometheus registry (the forwarder records into it).
    pub metrics: Arc<Metrics>,
    /// Every node's HTTP gateway (the nodes with an `http_port`).
    pub http_peers: BTreeMap<u64, SocketAddr>,
    /// The users of the client front ends (RESP, HTTP, gRPC).
    pub acl: Arc<::resp::Acl>,
    /// The gRPC front end's client-side caching (`Cache.Track`).
    pub(crate) tracking: Arc<crate::tracking::grpc::GrpcTracking>,
    /// How this node calls the other nodes' front ends when they serve
    /// TLS (`[tls] ca`); `None` without `[tls]`.
    #[cfg(not(madsim))]
    pub peer_tls: Option<crate::tls::PeerClient>,
    /// Who this node is to its peers and whom its replicas' servers admit
    /// (labrpc's policy: cluster id, members, mutual TLS); its refusals
    /// are a metric.
    pub peer_security: labrpc::PeerSecurity,
    controller: Option<(ControllerServer, SocketAddr)>,
    data: Option<(ShardServer, SocketAddr)>,
    /// Held while an operator's membership change runs here (one at a
    /// time; a second is refused, `crate::membership`).
    pub(crate) membership_change: tokio::sync::Mutex<()>,
}

impl NodeState {
    /// This node's replicas as `Admin.NodeStatus` reports them.
    pub fn local_status(&self) -> proto::NodeStatusReply {
        let mut replicas = Vec::new();
        if let Some((controller, addr)) = &self.controller {
            let status = controller.raft().status();
            replicas.push(proto::ReplicaStatus {
                role: "controller".into(),
                gid: 0,
                is_leader: status.is_leader,
                leader_contact: status.leader_contact,
                term: status.term,
                commit_index: status.commit_index,
                applied_index: status.applied_index,
                config_num: controller.status().latest_config,
                peer_addr: addr.to_string(),
                ..proto::ReplicaStatus::default()
            });
        }
        if let Some((data, addr)) = &self.data {
            let status = data.raft().status();
            let shards = data.status();
            let early = data.rsm().status().early_acks;
            let (disk_tier, stores) = data.with_machine(|machine| {
                (machine.disk_placement().is_some(), machine.shard_stats())
            });
            let store =
                stores
                    .values()
                    .fold(cache::store::Stats::default(), |mut sum, (_, stats)| {
                        sum.entries += stats.entries;
                        sum.bytes += stats.bytes;
                        sum.hits += stats.hits;
                        sum.misses += stats.misses;
                        sum.disk_entries += stats.disk_entries;
                        sum.disk_bytes += stats.disk_bytes;
                        sum.disk_hits += stats.disk_hits;
                        sum
                    });
            replicas.push(proto::ReplicaStatus {
                role: "data".into(),
                gid: data.gid(),
                is_leader: status.is_leader,
                leader_contact: status.leader_contact,
                term: status.term,
                commit_index: status.commit_index,
                applied_index: status.applied_index,
                config_num: shards.config_num,
                peer_addr: addr.to_string(),
                follower_reads: data.rsm().follower_reads(),
                async_acks: early.early_acks,
                async_acks_lost: early.lost,
                async_acks_mispredicted: early.mispredicted,
                store_keys: store.entries,
                store_bytes: store.bytes,
                store_hits: store.hits,
                store_misses: store.misses,
                disk_tier,
                disk_keys: store.disk_entries,
                disk_bytes: store.disk_bytes,
                disk_hits: store.disk_hits,
                waiting: shards
                    .waiting
                    .iter()
                    .map(|wait| proto::ShardWait {
                        shard: wait.shard as u64,
                        waiting_on_group: wait.waiting_on_group,
                        waiting_since_config: wait.waiting_since_config,
                        waiting_for_ms: wait.waiting_for_ms,
                    })
                    .collect(),
                lost_shards: shards
                    .lost_shards
                    .iter()
                    .map(|(&shard, lost)| proto::LostShard {
                        shard: shard as u64,
                        lost_at_config: lost.config_num,
                        previous_owner: lost.previous_owner,
                    })
                    .collect(),
                declared_lost: shards.declared_lost,
            });
        }
        proto::NodeStatusReply {
            node_id: self.node_id,
            grpc_addr: self.grpc_addr.to_string(),
            reachable: true,
            replicas,
            hot_keys: self
                .metrics
                .hot_keys(crate::metrics::HOT_KEYS_EXPORTED)
                .into_iter()
                .map(|(key, requests)| proto::HotKey { key, requests })
                .collect(),
            shard_requests: self.metrics.shard_requests(),
        }
    }

    /// The shards of this node's data replica: number, state, counters.
    pub fn shard_report(&self) -> Vec<(usize, String, cache::store::Stats)> {
        let Some((data, _)) = &self.data else {
            return Vec::new();
        };
        data.with_machine(|machine| machine.shard_stats())
            .into_iter()
            .map(|(shard, (state, stats))| {
                let name = format!("{state:?}");
                let name = name.split([' ', '{']).next().unwrap_or("").to_string();
                (shard, name, stats)
            })
            .collect()
    }

    /// The disk tier's value reads of each held shard's store, and their
    /// summed time (local to this replica; empty without a data replica).
    pub fn disk_read_report(&self) -> BTreeMap<usize, cache::store::DiskReadStats> {
        let Some((data, _)) = &self.data else {
            return BTreeMap::new();
        };
        data.with_machine(|machine| machine.disk_read_stats())
    }

    /// Reads the replicas' Raft status and shard stores into the metrics'
    /// gauges (before a scrape).
    pub fn observe(&self) {
        self.metrics
            .observe_peer_refusals(&self.peer_security.refusals());
        if let Some(stats) = self.forwarder.read_cache_stats() {
            self.metrics.observe_read_cache(stats.weight);
        }
        if let Some(stats) = self.forwarder.near_cache_stats() {
            self.metrics.observe_near_cache(stats.weight);
        }
        if let Some((controller, _)) = &self.controller {
            self.metrics
                .observe_raft("controller", 0, &controller.raft().status());
        }
        if let Some((data, _)) = &self.data {
            self.metrics
                .observe_raft("data", data.gid(), &data.raft().status());
            self.metrics
                .observe_follower_reads(data.rsm().follower_reads(), data.rsm().reused_grants());
            self.metrics
                .observe_async_acks(&data.rsm().status().early_acks);
            let shards = data.with_machine(|machine| machine.shard_stats());
            let disk_reads = self.disk_read_report();
            let migrating = shards
                .values()
                .filter(|(state, _)| !matches!(state, shardkv::ShardState::Serving))
                .count();
            let stats: Vec<ShardStat> = shards
                .iter()
                .map(|(&shard, (_, stats))| ShardStat {
                    shard,
                    entries: stats.entries,
                    bytes: stats.bytes,
                    hits: stats.hits,
                    misses: stats.misses,
                    evictions: stats.evictions,
                    expirations: stats.expirations,
                    disk_hits: stats.disk_hits,
                    disk_misses: stats.disk_misses,
                    disk_entries: stats.disk_entries,
                    disk_bytes: stats.disk_bytes,
                    disk_reads: disk_reads.get(&shard).map_or(0, |read| read.reads),
                    disk_read_time_us: disk_reads
                        .get(&shard)
                        .map_or(0, |read| read.read_time_us_total),
                })
                .collect();
            self.metrics.observe_shards(data.gid(), &stats, migrating);
            self.metrics
                .observe_migration_refusals(data.migration_requests_refused());
            let (sent, received) = data.migration_bytes();
            self.metrics.observe_migration_bytes(sent, received);
            let waits: Vec<(usize, u64, u64)> = data
                .waiting()
                .iter()
                .map(|wait| (wait.shard, wait.waiting_on_group, wait.waiting_for_ms))
                .collect();
            let (lost_total, capacity, revision) = data.with_machine(|machine| {
                let capacity = machine
                    .capacity_logged()
                    .then_some(machine.store_capacity_bytes());
                let revision = machine.policy_revision().number();
                (machine.shards_lost_total(), capacity, revision)
            });
            self.metrics.observe_pull_waits(&waits, lost_total);
            self.metrics.observe_store_settings(capacity, revision);
        }
    }

    /// `/readyz`: every replica here knows its leader and has applied
    /// what it knows committed, the data replica has reached the routing
    /// configuration, and none of its shards is still arriving. `Err` says
    /// what is missing.
    pub fn readiness(&self) -> Result<(), String> {
        let routing_num = self.forwarder.routing().num;
        if routing_num == 0 {
            return Err("no shard configuration is known yet".into());
        }
        let mut raft = Vec::new();
        if let Some((controller, _)) = &self.controller {
            raft.push(("controller", controller.raft().status()));
        }
        if let Some((data, _)) = &self.data {
            raft.push(("data", data.raft().status()));
        }
        for (role, status) in raft {
            if status.leader_id.is_none() && !status.is_leader {
                return Err(format!("the {role} replica knows no leader"));
            }
            if status.applied_index < status.commit_index {
                return Err(format!(
                    "the {role} replica has applied {} of {} committed entries",
                    status.applied_index, status.commit_index
                ));
            }
        }
        if let Some((data, _)) = &self.data {
            let status = data.status();
            if status.config_num < routing_num {
                return Err(format!(
                    "the data replica is at configuration {}, the cluster at {routing_num}",
                    status.config_num
                ));
            }
            let arriving = status
                .shard_states
                .iter()
                .filter(|(_, state)| matches!(state, shardkv::ShardState::Pulling { .. }))
                .count();
            if arriving > 0 {
                return Err(format!("{arriving} shard(s) still arriving"));
            }
        }
        Ok(())
    }
}

/// A running node.
pub struct Node {
    state: Arc<NodeState>,
    request_timeout: Duration,
    stop_grpc: oneshot::Sender<()>,
    grpc_task: JoinHandle<Result<(), String>>,
    bootstrap_task: Option<JoinHandle<()>>,
    /// The load balancer (`balance_load`, on controller hosts only).
    balance_task: Option<JoinHandle<()>>,
    resp: Option<crate::resp::RespServer>,
    http: Option<crate::http::HttpServer>,
    /// The front ends' certificate and its SIGHUP reloader.
    #[cfg(not(madsim))]
    tls: Option<(crate::tls::ServerTls, Option<JoinHandle<()>>)>,
}

impl Node {
    /// Validates `config`, claims its data directory, starts the replicas
    /// and serves the gRPC API. Nothing starts if the configuration or the
    /// data directory is refused.
    /// A replica of the node that stops for good (a failed disk) ends the
    /// process: this is how `distcache node` runs.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        Node::start_inner(config, None, false).await
    }

    /// [`Node::start`] for a node that shares its process with others (a
    /// test's cluster, a simulation): a replica that stops for good stops
    /// alone instead of ending the process (`fatal_hook`).
    pub async fn start_in_process(config: NodeConfig) -> Result<Node, NodeError> {
        Node::start_inner(config, None, true).await
    }

    /// [`Node::start_in_process`] for a node of `distcache demo`, offering
    /// `demo` (node control) on the HTTP gateway.
    pub async fn start_with(
        config: NodeConfig,
        demo: Option<crate::http::dashboard::SharedDemo>,
    ) -> Result<Node, NodeError> {
        Node::start_inner(config, demo, true).await
    }

    async fn start_inner(
        config: NodeConfig,
        demo: Option<crate::http::dashboard::SharedDemo>,
        in_process: bool,
    ) -> Result<Node, NodeError> {
        let topology = config.validate()?;
        let on_fatal = fatal_hook(config.node_id, in_process);
        let acl = Arc::new(config.acl()?);
        let loopback_only = config.loopback_only()?;
        // Where the listeners bind when `host` is not a local interface
        // (`listen_host`); None: each binds its advertised address.
        let listen_ip = config.listen_ip()?;
        let listen_at =
            |advertised: SocketAddr| listen_ip.map(|ip| SocketAddr::new(ip, advertised.port()));
        let identity = labrpc::PeerIdentity {
            cluster_id: config.cluster_id.clone(),
            node_id: config.node_id,
        };
        // Any node of the cluster: a group added at run time has nodes the
        // older nodes' tables do not list. With mutual TLS the cluster's
        // CA decides who is a node of the cluster.
        let members = labrpc::Members::Any;
        #[cfg(not(madsim))]
        let (tls, peer_tls, peer_security) = match &config.tls {
            Some(settings) => {
                let mut tls = crate::tls::ServerTls::from_settings(settings)?;
                let peer = crate::tls::PeerClient::from_settings(settings).map_err(|error| {
                    ConfigError {
                        field: "tls.ca".into(),
                        problem: error.to_string(),
                    }
                })?;
                let peer_security = match crate::peer_tls::PeerTlsFiles::from_settings(
                    settings,
                    &config.cluster_id,
                    config.node_id,
                )? {
                    Some(files) => {
                        let labrpc_tls = files
                            .labrpc()
                            .map_err(|error| ConfigError::new("tls.peer_ca", error.to_string()))?;
                        tls = tls.with_peer(files);
                        labrpc::PeerSecurity::with_tls(identity, members, labrpc_tls)
                    }
                    None => labrpc::PeerSecurity::new(identity, members),
                };
                (Some(tls), Some(peer), peer_security)
            }
            None => (None, None, labrpc::PeerSecurity::new(identity, members)),
        };
        #[cfg(madsim)]
        let peer_security = labrpc::PeerSecurity::new(identity, members);
        #[cfg(not(madsim))]
        let acceptor = |alpn: &[&[u8]]| -> Result<Option<crate::tls::Acceptor>, NodeError> {
            tls.as_ref()
                .map(|tls| tls.acceptor(alpn))
                .transpose()
                .map_err(|error| {
                    NodeError::Config(ConfigError {
                        field: "tls".into(),
                        problem: error.to_string(),
                    })
                })
        };
        let me = config.me().cloned().ok_or_else(|| ConfigError {
            field: "node_id".into(),
            problem: format!("{} is not an id of [[nodes]]", config.node_id),
        })?;
        identity::claim(&config.data_dir, &config.cluster_id, config.node_id).await?;
        // Clerks try the controller's positions first (in Raft id order, so
        // that leader hints index them), then the replicas listed as
        // joining it; a replica reached that does not lead passes a
        // request on to a leader the list does not hold
        // (`ControllerServer`).
        let controller_addrs: Vec<SocketAddr> = topology
            .controller
            .iter()
            .chain(&topology.controller_joining)
            .map(|(_, addr)| *addr)
            .collect();
        let controller_positions: Vec<SocketAddr> =
            topology.controller.iter().map(|(_, addr)| *addr).collect();
        let max_raft_state = Some(config.max_raft_state_bytes);

        let joining_controller_addr = topology
            .controller_joining
            .iter()
            .find(|(id, _)| *id == config.node_id)
            .map(|(_, addr)| *addr);
        let controller_index = match (
            topology
                .controller
                .iter()
                .position(|(id, _)| *id == config.node_id),
            joining_controller_addr,
        ) {
            (Some(index), _) => Some((index, controller_positions.clone())),
            // A joining replica serves at its own address, after the
            // positions (`RsmConfig::raft_id`).
            (None, Some(addr)) => {
                let mut peer_addrs = controller_positions.clone();
                peer_addrs.push(addr);
                Some((peer_addrs.len() - 1, peer_addrs))
            }
            (None, None) => None,
        };
        let controller = match controller_index {
            Some((index, peer_addrs)) => {
                let own_addr = peer_addrs[index];
                let mut server_config = ControllerServerConfig::new(
                    index,
                    peer_addrs,
                    config.shard_count,
                    config.node_id.wrapping_mul(7919),
                );
                if joining_controller_addr.is_some() {
                    server_config.replica.join = true;
                    server_config.replica.raft_id = topology.raft_id(0, config.node_id);
                    tracing::info!(
                        raft_id = ?server_config.replica.raft_id,
                        "controller replica joins the controller group: it waits to be added (add-replica or replace-replica --group 0)"
                    );
                }
                // A replica that joined has Raft id 2^32 + its node id; the
                // others' clerks cannot name it as a leader.
                server_config.replica.joined_raft_id_base =
                    Some(crate::config::JOINED_RAFT_ID_BASE);
                server_config.pass_on_from = Some(crate::config::JOINED_RAFT_ID_BASE);
                server_config.replica.listen_addr = listen_at(own_addr);
                server_config.replica.max_raft_state = max_raft_state;
                server_config.replica.snapshot_log_percent = config.snapshot_log_percent;
                server_config.replica.lease_reads = config.lease_reads;
                server_config.replica.lease_clock_drift_percent = config.lease_clock_drift_percent;
                server_config.replica.peer_security = peer_security.clone();
                server_config.replica.raft_nodes =
                    Some(topology.controller.iter().map(|(id, _)| *id).collect());
                server_config.replica.on_fatal = Some(on_fatal.clone());
                let storage = FileStorage::new(config.data_dir.join(CONTROLLER_DIR_NAME));
                let server = ControllerServer::start(server_config, storage)
                    .await
                    .map_err(NodeError::Controller)?;
                Some((server, own_addr))
            }
            None => None,
        };

        let data = match me.group {
            Some(gid) => {
                let replicas = topology.groups.get(&gid).cloned().unwrap_or_default();
                let mut peer_addrs: Vec<SocketAddr> =
                    replicas.iter().map(|(_, addr)| *addr).collect();
                // A joining replica serves at its own address, after the
                // group's positions (`RsmConfig::raft_id`).
                let joining_addr = topology
                    .joining
                    .get(&gid)
                    .and_then(|joining| joining.iter().find(|(id, _)| *id == config.node_id))
                    .map(|(_, addr)| *addr);
                let index = match (
                    replicas.iter().position(|(id, _)| *id == config.node_id),
                    joining_addr,
                ) {
                    (Some(index), _) => index,
                    (None, Some(addr)) => {
                        peer_addrs.push(addr);
                        peer_addrs.len() - 1
                    }
                    (None, None) => {
                        return Err(ConfigError {
                            field: format!("nodes (id {}).group", config.node_id),
                            problem: "this node is not among its group's replicas".into(),
                        }
                        .into());
                    }
                };
                let mut server_config = ShardServerConfig::new(
                    gid,
                    index,
                    peer_addrs.clone(),
                    config.shard_count,
                    config.node_id.wrapping_mul(104_729),
                );
                if me.joining {
                    server_config.replica.join = true;
                    server_config.replica.raft_id = topology.raft_id(gid, config.node_id);
                    tracing::info!(
                        gid,
                        raft_id = ?server_config.replica.raft_id,
                        "data replica joins its running group: it waits to be added (add-replica or replace-replica)"
                    );
                }
                server_config.replica.listen_addr = listen_at(peer_addrs[index]);
                server_config.replica.max_raft_state = max_raft_state;
                server_config.replica.snapshot_log_percent = config.snapshot_log_percent;
                server_config.replica.lease_reads = config.lease_reads;
                server_config.replica.lease_clock_drift_percent = config.lease_clock_drift_percent;
                server_config.write_fence = config.write_fence;
                server_config.replica.early_acks = config.replication.early_acks(gid);
                server_config.replica.on_fatal = Some(on_fatal.clone());
                server_config.replica.peer_security = peer_security.clone();
                server_config.replica.raft_nodes =
                    Some(replicas.iter().map(|(id, _)| *id).collect());
                // A replica that joined has Raft id 2^32 + its node id,
                // listed in no table.
                server_config.replica.joined_raft_id_base =
                    Some(crate::config::JOINED_RAFT_ID_BASE);
                // A pull or delete speaks for the group it names: a sender
                // the node table lists must be one of that group's
                // replicas there. (A node the table does not list belongs
                // to a group added since; the configuration check stands.)
                let table: BTreeMap<u64, Option<u64>> = config
                    .nodes
                    .iter()
                    .map(|entry| (entry.id, entry.group))
                    .collect();
                server_config.group_membership =
                    Some(shardkv::GroupMembership::new(move |gid, node| {
                        table.get(&node).map(|group| *group == Some(gid))
                    }));
                server_config.machine.store.capacity_bytes = config.shard_capacity_bytes;
                if let Some(disk) = config.disk_tier.disk(gid) {
                    server_config.machine.store.disk = Some(disk);
                    server_config.disk_dir =
                        Some(config.data_dir.join(DISK_DIR_NAME).join(format!("g{gid}")));
                }
                let storage = FileStorage::new(config.data_dir.join(DATA_DIR_NAME));
                let source = shardkv::Controller::with_security(
                    controller_addrs.clone(),
                    peer_security.clone(),
                );
                let server = ShardServer::start(server_config, source, storage)
                    .await
                    .map_err(NodeError::Data)?;
                Some((server, peer_addrs[index]))
            }
            None => None,
        };

        let request_timeout = Duration::from_millis(config.request_timeout_ms);
        let metrics = Arc::new(Metrics::for_shards(config.shard_count));
        let forwarder = Arc::new(
            Forwarder::new(
                controller_addrs,
                config.shard_count,
                data.as_ref().map(|(server, _)| server.clone()),
                request_timeout,
                peer_security.clone(),
            )
            .with_metrics(Arc::clone(&metrics))
            .with_read_cache(config.clients.read_cache_bytes),
        );
        forwarder.enable_near_cache(config.clients.near_cache_bytes);
        if config.unsafe_ack_before_commit {
            tracing::warn!(
                "unsafe_ack_before_commit is set: writes are acknowledged before they commit (a deliberately broken build for the chaos harness)"
            );
            forwarder.enable_unsafe_ack_before_commit();
        }
        let grpc_addr = topology
            .grpc
            .get(&config.node_id)
            .copied()
            .ok_or_else(|| ConfigError {
                field: "node_id".into(),
                problem: "no gRPC address".into(),
            })?;
        // Without a password, clients are let in only from this machine
        // unless the configuration says otherwise (protected mode): the
        // client listeners then bind loopback, whatever `host` and
        // `listen_host` say, and the node tells its loopback address (the
        // only one that reaches them). Otherwise they bind `listen_host`
        // (else `host`) and the node tells `host`.
        let bind_ip = listen_ip.unwrap_or(grpc_addr.ip());
        let (client_listen_ip, client_ip) = if loopback_only && !bind_ip.is_loopback() {
            // The family of the address clients are told (`host`): with
            // `listen_host = "::"` and an IPv4 host, a local client dials
            // 127.0.0.1, not [::1].
            let loopback = match grpc_addr.ip() {
                std::net::IpAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                std::net::IpAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            };
            tracing::warn!(
                "no password is set: the client listeners (gRPC, RESP, HTTP) bind to {loopback} only; set requirepass (or protected_mode = false) to serve other hosts"
            );
            (loopback, loopback)
        } else {
            // On loopback only this machine's processes reach the node, as
            // in `distcache demo`: nothing to warn about.
            if !acl.requires_auth() && !bind_ip.is_loopback() {
                tracing::warn!(
                    "no password is set and protected_mode is off: any host that reaches the client listeners (bound to {bind_ip}) can read and write every key"
                );
            }
            (bind_ip, grpc_addr.ip())
        };
        let grpc_listen_addr = SocketAddr::new(client_listen_ip, grpc_addr.port());
        let grpc_addr = SocketAddr::new(client_ip, grpc_addr.port());
        let state = Arc::new(NodeState {
            node_id: config.node_id,
            cluster_id: config.cluster_id.clone(),
            topology,
            grpc_addr,
            forwarder: Arc::clone(&forwarder),
            metrics,
            http_peers: config
                .nodes
                .iter()
                .filter_map(|entry| {
                    let ip = entry.host.parse().ok()?;
                    Some((entry.id, SocketAddr::new(ip, entry.http_port?)))
                })
                .collect(),
            acl: Arc::clone(&acl),
            tracking: crate::tracking::grpc::GrpcTracking::new(Arc::clone(&forwarder)),
            membership_change: tokio::sync::Mutex::new(()),
            #[cfg(not(madsim))]
            peer_tls,
            peer_security,
            controller,
            data,
        });
        let (stop_grpc, stop_signal) = oneshot::channel::<()>();
        #[cfg(not(madsim))]
        let grpc_task = serve_grpc(
            Arc::clone(&state),
            grpc_listen_addr,
            stop_signal,
            acceptor(&[b"h2"])?,
        )
        .await?;
        #[cfg(madsim)]
        let grpc_task = serve_grpc(Arc::clone(&state), grpc_listen_addr, stop_signal).await?;
        let resp = match me.resp_port {
            Some(port) => {
                let addr = SocketAddr::new(client_listen_ip, port);
                let cluster = crate::resp::ClusterMap::for_node(
                    &config,
                    &state.topology,
                    SocketAddr::new(client_ip, port),
                );
                let limits = &config.clients;
                let config = crate::resp::RespConfig {
                    max_clients: limits.max_clients,
                    idle_timeout: ClientLimits::optional(limits.idle_timeout_ms),
                    write_timeout: ClientLimits::optional(limits.write_timeout_ms),
                    acl: Arc::clone(&acl),
                    cluster: cluster.map(Arc::new),
                    #[cfg(not(madsim))]
                    tls: acceptor(&[])?,
                    ..crate::resp::RespConfig::default()
                };
                let server = crate::resp::RespServer::start(addr, Arc::clone(&forwarder), config)
                    .await
                    .map_err(|error| NodeError::Listen {
                        addr,
                        detail: error.to_string(),
                    })?;
                Some(server)
            }
            None => None,
        };
        let http = match me.http_port {
            Some(port) => {
                let addr = SocketAddr::new(client_listen_ip, port);
                let config = crate::http::HttpConfig {
                    header_read_timeout: Duration::from_millis(
                        config.clients.header_read_timeout_ms,
                    ),
                    #[cfg(not(madsim))]
                    tls: acceptor(&[b"http/1.1"])?,
                    ..crate::http::HttpConfig::default()
                };
                let app = crate::http::AppState::new(Arc::clone(&state), config).with_demo(demo);
                let server = crate::http::HttpServer::start(addr, app)
                    .await
                    .map_err(|error| NodeError::Listen {
                        addr,
                        detail: error.to_string(),
                    })?;
                Some(server)
            }
            None => None,
        };
        let bootstrap_task = state
            .controller
            .is_some()
            .then(|| tokio::spawn(bootstrap(Arc::clone(&state))));
        // Only a node with a controller replica can lead the controller,
        // and only the leader's balancer acts.
        let balance_task = (config.balance_load && state.controller.is_some()).then(|| {
            let settings = crate::balance::BalanceSettings {
                interval: Duration::from_millis(config.balance_interval_ms),
                after_intervals: config.balance_after_intervals,
            };
            let authorization = config
                .requirepass
                .as_ref()
                .map(|password| format!("Bearer {}", password.expose()));
            crate::balance::spawn(Arc::clone(&state), settings, authorization)
        });
        #[cfg(not(madsim))]
        let tls = tls.map(|tls| {
            // Without a SIGHUP handler the certificates can still be
            // reloaded through Node::reload_tls.
            let reloader = tls
                .reload_on_sighup()
                .inspect_err(|error| tracing::warn!("no SIGHUP reload of TLS: {error}"))
                .ok();
            (tls, reloader)
        });
        tracing::info!(node_id = config.node_id, %grpc_addr, "node started");
        Ok(Node {
            #[cfg(not(madsim))]
            tls,
            state,
            request_timeout,
            stop_grpc,
            grpc_task,
            bootstrap_task,
            balance_task,
            resp,
            http,
        })
    }

    /// Where clients reach this node's gRPC API (`NodeState::grpc_addr`).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.state.grpc_addr
    }

    /// Where the RESP listener is bound (when the configuration gives a
    /// `resp_port`): `0.0.0.0:<port>` under `listen_host = "0.0.0.0"`.
    pub fn resp_addr(&self) -> Option<SocketAddr> {
        self.resp.as_ref().map(crate::resp::RespServer::local_addr)
    }

    /// Where the HTTP gateway is bound (when the configuration gives an
    /// `http_port`): `0.0.0.0:<port>` under `listen_host = "0.0.0.0"`.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(crate::http::HttpServer::local_addr)
    }

    pub fn state(&self) -> &Arc<NodeState> {
        &self.state
    }

    /// Reads the `[tls]` certificate and key again (what SIGHUP does);
    /// new handshakes on every front end use them. On error the previous
    /// ones stay. A node without `[tls]` has nothing to reload.
    #[cfg(not(madsim))]
    pub fn reload_tls(&self) -> Result<(), crate::tls::TlsError> {
        match &self.tls {
            Some((tls, _)) => tls.reload(),
            None => Ok(()),
        }
    }

    /// Waits until every data group the configuration lists has a leader
    /// that serves: one read per group through the forwarder succeeds.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = crate::clock::now() + timeout;
        let forwarder = &self.state.forwarder;
        while crate::clock::now() < deadline {
            forwarder.refresh().await;
            let config = forwarder.routing();
            let expected = self.state.topology.groups.keys();
            if config.num > 0 && expected.clone().all(|gid| config.groups.contains_key(gid)) {
                let mut all_served = true;
                for &gid in self.state.topology.groups.keys() {
                    let Some(key) = probe_key(&config.shards, gid) else {
                        // A group that owns no shard serves nothing to probe.
                        continue;
                    };
                    let read = tokio::time::timeout(
                        deadline.saturating_duration_since(crate::clock::now()),
                        forwarder.run(Op::Get { key }, None),
                    )
                    .await;
                    if !matches!(read, Ok(Ok(_))) {
                        all_served = false;
                        break;
                    }
                }
                if all_served {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Stops the node: see the module docs. A replica that leads its group
    /// hands leadership to a peer first ([`Node::shutdown_with_handoff`]).
    pub async fn shutdown(self) {
        self.shutdown_with_handoff(true).await;
    }

    /// Stops the node; with `handoff`, each replica of this node that leads
    /// its group (data or controller) first hands leadership to another
    /// replica ([`hand_off`], at most [`HANDOFF_WAIT`] per peer tried),
    /// while this node still serves and forwards, so the group elects no
    /// one after an election timeout and clients see no gap. Without it
    /// (a whole cluster stopping, or a test measuring the difference) the
    /// group notices the leader is gone only when its election timer
    /// fires. Then bounded by the request timeout plus one second.
    pub async fn shutdown_with_handoff(self, handoff: bool) {
        tracing::info!(node_id = self.state.node_id, handoff, "shutting down");
        if handoff {
            let data = self
                .state
                .data
                .as_ref()
                .map(|(data, _)| hand_off("data", data.raft()));
            let controller = self
                .state
                .controller
                .as_ref()
                .map(|(controller, _)| hand_off("controller", controller.raft()));
            futures::future::join(
                async {
                    if let Some(data) = data {
                        data.await;
                    }
                },
                async {
                    if let Some(controller) = controller {
                        controller.await;
                    }
                },
            )
            .await;
        }
        #[cfg(not(madsim))]
        if let Some((_, Some(reloader))) = &self.tls {
            reloader.abort();
        }
        if let Some(resp) = self.resp {
            resp.shutdown().await;
        }
        if let Some(http) = self.http {
            http.shutdown().await;
        }
        // Track streams end (their clients drop what they cached), so the
        // gRPC server's graceful stop does not wait for them.
        self.state.tracking.close();
        self.state.forwarder.close();
        if let Some(task) = &self.bootstrap_task {
            task.abort();
        }
        if let Some(task) = &self.balance_task {
            task.abort();
        }
        let _ = self.stop_grpc.send(());
        let grace = self.request_timeout + Duration::from_secs(1);
        match tokio::time::timeout(grace, self.grpc_task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!("gRPC server ended with an error: {error}"),
            Ok(Err(_)) => tracing::warn!("gRPC server task ended abnormally"),
            Err(_) => tracing::warn!("in-flight requests did not finish within {grace:?}"),
        }
        // Raft stops first (the replica answers WrongLeader), then the peer
        // server, which releases its port: a demo restarts the node in this
        // process on the same addresses.
        if let Some((data, _)) = &self.state.data {
            stop_replica("data", grace, data.shutdown()).await;
        }
        if let Some((controller, _)) = &self.state.controller {
            stop_replica("controller", grace, controller.shutdown()).await;
        }
        tracing::info!(node_id = self.state.node_id, "stopped");
    }
}

/// How long an operator's leadership transfer may take before it is
/// reported as not done (Raft abandons it after its minimum election
/// timeout, 300 ms; the rest is margin for a slow disk or network).
pub const TRANSFER_WAIT: Duration = Duration::from_secs(2);

/// What a node did with an operator's leadership transfer of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalTransfer {
    /// The group is led by the replica on node `leader_node_id` now.
    Done { leader_node_id: u64 },
    /// This node hosts no replica of the group, or its replica does not
    /// lead (`leader_node_id`: the leader it knows of, if any).
    NotLeader { leader_node_id: Option<u64> },
    /// Refused (an unknown group or node); the reason says why.
    Failed(String),
    /// The target did not take over in time; Raft abandoned the transfer.
    NotTakenOver(String),
}

impl NodeState {
    /// The replicas of group `gid` (0: the controller group) as every
    /// node's configuration lists them, in Raft id order (node id, peer
    /// address); None for a group the configuration does not list.
    pub fn group_replicas(&self, gid: u64) -> Option<&[(u64, SocketAddr)]> {
        self.topology.positions(gid)
    }

    /// This node's data replica and its peer address, if it hosts one.
    pub(crate) fn data_replica(&self) -> Option<&(ShardServer, SocketAddr)> {
        self.data.as_ref()
    }

    /// This node's controller replica and its peer address, if it hosts
    /// one.
    pub(crate) fn controller_replica(&self) -> Option<&(ControllerServer, SocketAddr)> {
        self.controller.as_ref()
    }

    /// This node's Raft node of group `gid` (0: the controller), if it
    /// hosts one.
    pub fn raft_of(&self, gid: u64) -> Option<&raft::node::RaftNode> {
        if gid == 0 {
            return self.controller.as_ref().map(|(server, _)| server.raft());
        }
        self.data
            .as_ref()
            .filter(|(server, _)| server.gid() == gid)
            .map(|(server, _)| server.raft())
    }

    /// Hands the leadership of group `gid` to its replica on node
    /// `to_node_id` if this node's replica leads it, and waits (at most
    /// [`TRANSFER_WAIT`]) until the target leads.
    pub async fn transfer_leader_here(&self, gid: u64, to_node_id: u64) -> LocalTransfer {
        if self.group_replicas(gid).is_none() {
            return LocalTransfer::Failed(format!("no group {gid} in the configuration"));
        }
        let node_of = |raft_id: u64| self.node_of_raft_id(gid, raft_id);
        let Some(raft) = self.raft_of(gid) else {
            return LocalTransfer::NotLeader {
                leader_node_id: None,
            };
        };
        let status = raft.status();
        if !status.is_leader {
            return LocalTransfer::NotLeader {
                leader_node_id: status.leader_id.and_then(node_of),
            };
        }
        // The leader's configuration says who may lead: a replica that
        // joined counts, one that was removed does not.
        let voters = raft.membership().1.voters;
        let Some(target) = self
            .raft_id_of(gid, to_node_id)
            .filter(|target| voters.contains(target))
        else {
            return LocalTransfer::Failed(format!(
                "node {to_node_id} hosts no replica of group {gid} (its replicas are on nodes {:?})",
                voters
                    .iter()
                    .filter_map(|&voter| node_of(voter))
                    .collect::<Vec<_>>()
            ));
        };
        if to_node_id == self.node_id {
            return LocalTransfer::Done {
                leader_node_id: to_node_id,
            };
        }
        match raft.transfer_leader(target).await {
            Ok(()) => {}
            Err(raft::core::TransferError::NotLeader { leader_hint, .. }) => {
                return LocalTransfer::NotLeader {
                    leader_node_id: leader_hint.and_then(node_of),
                };
            }
            Err(error) => return LocalTransfer::Failed(error.to_string()),
        }
        tracing::info!(
            gid,
            to_node_id,
            "leadership transfer requested by an operator"
        );
        let deadline = crate::clock::now() + TRANSFER_WAIT;
        while crate::clock::now() < deadline {
            let status = raft.status();
            if !status.is_leader && status.leader_id == Some(target) {
                return LocalTransfer::Done {
                    leader_node_id: to_node_id,
                };
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let status = raft.status();
        LocalTransfer::NotTakenOver(format!(
            "node {to_node_id} did not take over group {gid} within {TRANSFER_WAIT:?} (down, cut \
             off or far behind?); the leader is now {}",
            match status.leader_id.and_then(node_of) {
                Some(node) => format!("node {node}"),
                None => "unknown".to_string(),
            }
        ))
    }
}

/// A key whose shard `gid` owns in `shards`, if it owns any.
fn probe_key(shards: &[u64], gid: u64) -> Option<Vec<u8>> {
    if !shards.contains(&gid) {
        return None;
    }
    // Bounded: with n shards a key lands in each with probability 1/n.
    (0..100_000u32)
        .map(|i| format!("distcache-ready-probe-{i}").into_bytes())
        .find(|key| shards[shardkv::key_to_shard(key, shards.len())] == gid)
}

/// Forms a fresh cluster: if the controller's latest configuration is the
/// initial one, joins every group the node configuration lists in one
/// change. Every controller host tries; the controller accepts one (the
/// others are refused with "already joined"). A cluster that has formed is
/// never touched, so an operator's later Leave is not undone on restart.
async fn bootstrap(state: Arc<NodeState>) {
    let groups: BTreeMap<u64, Vec<SocketAddr>> = state
        .topology
        .groups
        .iter()
        .map(|(&gid, replicas)| (gid, replicas.iter().map(|(_, addr)| *addr).collect()))
        .collect();
    let clerk = state.forwarder.controller().clone();
    loop {
        match clerk.query(None).await {
            Ok(config) if config.num > 0 => {
                tracing::info!(config_num = config.num, "cluster formed");
                return;
            }
            Ok(_) => match clerk.join(groups.clone()).await {
                Ok(num) => {
                    tracing::info!(config_num = num, "bootstrap: joined the configured groups");
                    return;
                }
                Err(error) => tracing::debug!("bootstrap join: {error}"),
            },
            Err(error) => tracing::debug!("bootstrap query: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long a leader that is stopping waits for one peer to take over:
/// raft abandons a transfer after its minimum election timeout (300 ms).
pub const HANDOFF_WAIT: Duration = Duration::from_millis(500);

/// How a replica's leadership hand-off ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handoff {
    /// The replica did not lead (nothing to do).
    NotLeader,
    /// Raft replica `to` leads now (or another replica won the term the
    /// transfer started).
    Moved { to: Option<u64> },
    /// No peer took over in time (or the group has no other replica); the
    /// group elects after its timeout.
    Failed,
}

/// Hands the leadership of `raft` to another voter of its configuration
/// (the configuration in force, so a replica that joined or left counts as
/// it should): raft's `transfer_leader` first brings the target's log up
/// to the leader's last entry, then has it campaign at once. The voters
/// are tried in turn starting after this replica's id (one that is down
/// costs one [`HANDOFF_WAIT`]); proposals are refused while a transfer
/// runs, so the forwarder retries them on the new leader.
pub async fn hand_off(role: &str, raft: &raft::node::RaftNode) -> Handoff {
    if !raft.state().1 {
        return Handoff::NotLeader;
    }
    let me = raft.id();
    let voters: Vec<u64> = raft.membership().1.voters.into_iter().collect();
    let (after, before): (Vec<u64>, Vec<u64>) = voters
        .into_iter()
        .filter(|&voter| voter != me)
        .partition(|&voter| voter > me);
    let targets: Vec<u64> = after.into_iter().chain(before).collect();
    if targets.is_empty() {
        // A group of one: no one to hand over to, nothing to wait for.
        return Handoff::Failed;
    }
    let started = crate::clock::now();
    for target in targets {
        match raft.transfer_leader(target).await {
            Ok(()) => {}
            Err(raft::core::TransferError::NotLeader { .. }) => break,
            Err(error) => {
                tracing::debug!(role, target, "hand-off: {error}");
                continue;
            }
        }
        let deadline = crate::clock::now() + HANDOFF_WAIT;
        while crate::clock::now() < deadline {
            let status = raft.status();
            if !status.is_leader {
                tracing::info!(
                    role,
                    target,
                    leader = ?status.leader_id,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "leadership handed off"
                );
                return Handoff::Moved {
                    to: status.leader_id,
                };
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tracing::debug!(role, target, "hand-off: the peer did not take over in time");
    }
    if raft.state().1 {
        tracing::warn!(
            role,
            "no peer took over the leadership; the group will elect after its timeout"
        );
        Handoff::Failed
    } else {
        Handoff::Moved {
            to: raft.status().leader_id,
        }
    }
}

/// What a replica of this node does when it stops for good (a failed
/// disk, committed state it cannot use; `raft::node::fatal`). A node
/// process ends with the reason's exit status (74 for storage), so that a
/// failed replica does not linger and a supervisor sees it. A node that
/// shares its process (`in_process`: `distcache demo`, a test's cluster)
/// stops alone, as a crashed machine would: the others go on, and the
/// reason is written to stderr at once (a test harness that captures
/// output would otherwise lose it). Ending the process there would also
/// hide why: a test that panics drops its temporary directory while its
/// nodes still run, and the first write into it would end the test binary
/// with a bare 74 instead of the panic's message.
fn fatal_hook(node_id: u64, in_process: bool) -> FatalHook {
    if !in_process {
        return FatalHook::exit_process();
    }
    FatalHook::new(move |fatal| {
        tracing::error!(node_id, %fatal, "a replica of this node stopped for good");
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "fatal: node {node_id}: {fatal}; this node's replica stopped, the other nodes go on"
        );
    })
}

/// Waits (at most `grace`) for a replica's peer server to stop.
async fn stop_replica(
    role: &str,
    grace: Duration,
    stopped: impl std::future::Future<Output = Result<(), String>>,
) {
    match tokio::time::timeout(grace, stopped).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!("{role} replica's server ended with an error: {error}"),
        Err(_) => tracing::warn!("{role} replica's server did not stop within {grace:?}"),
    }
}

#[cfg(not(madsim))]
async fn serve_grpc(
    state: Arc<NodeState>,
    addr: SocketAddr,
    stop_signal: oneshot::Receiver<()>,
    tls: Option<crate::tls::Acceptor>,
) -> Result<JoinHandle<Result<(), String>>, NodeError> {
    let listener =
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|error| NodeError::Listen {
                addr,
                detail: error.to_string(),
            })?;
    if let Some(tls) = tls {
        return Ok(serve_grpc_tls(state, stop_signal, listener, tls));
    }
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let router = routes(state);
    Ok(tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_signal.await;
            })
            .await
            .map_err(|error| error.to_string())
    }))
}

/// Handshakes in progress at once on the gRPC port; more connections
/// wait in the kernel's backlog.
#[cfg(not(madsim))]
const MAX_GRPC_HANDSHAKES: usize = 256;

/// The gRPC API over TLS: an accept task hands each connection's
/// handshake to its own task (bounded in number and, by the acceptor, in
/// time) and passes finished TLS streams to tonic. A client that fails
/// the handshake (plaintext, another CA, a stall) is closed.
#[cfg(not(madsim))]
fn serve_grpc_tls(
    state: Arc<NodeState>,
    stop_signal: oneshot::Receiver<()>,
    listener: tokio::net::TcpListener,
    tls: crate::tls::Acceptor,
) -> JoinHandle<Result<(), String>> {
    type Stream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    let (ready, streams) = tokio::sync::mpsc::channel::<std::io::Result<Stream>>(64);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_GRPC_HANDSHAKES));
    let accept = tokio::spawn(async move {
        loop {
            let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!("gRPC accept: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let tls = tls.clone();
            let ready = ready.clone();
            tokio::spawn(async move {
                match tls.accept(stream).await {
                    Ok(stream) => {
                        let _ = ready.send(Ok(stream)).await;
                    }
                    Err(error) => tracing::debug!("gRPC TLS handshake failed: {error}"),
                }
                drop(permit);
            });
        }
    });
    let incoming = futures::stream::unfold(streams, |mut streams| async move {
        streams.recv().await.map(|stream| (stream, streams))
    });
    let router = routes(state);
    tokio::spawn(async move {
        let served = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_signal.await;
            })
            .await
            .map_err(|error| error.to_string());
        // Releases the port: the listener lives in the accept task.
        accept.abort();
        served
    })
}

#[cfg(madsim)]
async fn serve_grpc(
    state: Arc<NodeState>,
    addr: SocketAddr,
    stop_signal: oneshot::Receiver<()>,
) -> Result<JoinHandle<Result<(), String>>, NodeError> {
    let router = routes(state);
    Ok(tokio::spawn(async move {
        router
            .serve_with_shutdown(addr, async {
                let _ = stop_signal.await;
            })
            .await
            .map_err(|error| error.to_string())
    }))
}

fn routes(state: Arc<NodeState>) -> tonic::transport::server::Router {
    let cache = CacheServer::new(CacheService {
        forwarder: Arc::clone(&state.forwarder),
        acl: Arc::clone(&state.acl),
        tracking: Arc::clone(&state.tracking),
    })
    .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    let admin = AdminServer::new(AdminService::new(state));
    // A caller's `traceparent` names the trace (not simulated: the
    // simulated transport carries no trace context).
    #[cfg(not(madsim))]
    let (cache, admin) = (
        crate::grpc_trace::TraceParent(cache),
        crate::grpc_trace::TraceParent(admin),
    );
    tonic::transport::Server::builder()
        .max_concurrent_streams(GRPC_MAX_STREAMS_PER_CONNECTION)
        .concurrency_limit_per_connection(GRPC_CONCURRENCY_PER_CONNECTION)
        .http2_max_header_list_size(GRPC_MAX_HEADER_LIST_BYTES)
        .http2_keepalive_interval(Some(GRPC_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(GRPC_KEEPALIVE_TIMEOUT))
        .add_service(cache)
        .add_service(admin)
}
