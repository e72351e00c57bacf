//! `distcache demo`: a whole cluster in one process on loopback.
//!
//! `groups x replicas` nodes, each hosting one data replica; the first three
//! nodes (fewer if there are fewer nodes) also host the controller's
//! replicas. Ports, for `n` nodes numbered from 0:
//!
//! ```text
//!   node i: grpc = grpc_port + i      resp = resp_port + i      http = http_port + i
//!           controller peer = grpc_port + n + i      (first three nodes)
//!           data peer       = grpc_port + 2n + i
//! ```
//!
//! Everything is real: gRPC between the nodes, Raft logs in files under the
//! data directory (a temporary one, removed at exit, unless `--data-dir`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{NodeConfig, NodeEntry};
use crate::node::{Node, NodeError, NodeState};

/// Replicas of the demo's controller group.
pub const DEMO_CONTROLLER_REPLICAS: usize = 3;
/// Largest demo (nodes in one process).
pub const MAX_DEMO_NODES: usize = 64;
/// The demo cluster's id (its peer certificates name it).
pub const DEMO_CLUSTER_ID: &str = "demo";

/// What the demo runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    pub data_dir: Option<PathBuf>,
    pub grpc_port: u16,
    pub resp_port: u16,
    pub http_port: u16,
    pub groups: usize,
    pub replicas: usize,
    pub host: String,
    /// The default user's password on every front end (`--requirepass`).
    pub requirepass: Option<String>,
    /// More users, as ACL-file lines (`--acl "user app on >pw ~app:* +@all"`).
    pub users: Vec<String>,
    /// Redis Cluster mode on the RESP ports (`--cluster-mode`).
    pub cluster_mode: bool,
    /// Serve RESP, HTTP and gRPC over TLS only, with a throwaway CA and
    /// node certificate generated under `<data-dir>/tls` (`--tls`).
    pub tls: bool,
    /// Reads under a leader lease (`lease_reads`; `--no-lease-reads`
    /// turns it off).
    pub lease_reads: bool,
    /// Every group replicates asynchronously (`--async-replication`).
    pub async_replication: bool,
    /// Every group's shards keep what memory evicts on disk, under the
    /// data directory (`--disk-tier`; `[disk_tier]` with its defaults).
    pub disk_tier: bool,
    /// Every node keeps a near cache of [`DEMO_NEAR_CACHE_BYTES`]
    /// (`--near-cache`; `[clients] near_cache_bytes`).
    pub near_cache: bool,
}

/// The near cache each demo node keeps with `--near-cache`.
pub const DEMO_NEAR_CACHE_BYTES: u64 = 64 << 20;

impl Default for DemoOptions {
    fn default() -> DemoOptions {
        DemoOptions {
            data_dir: None,
            grpc_port: 50051,
            resp_port: 6379,
            http_port: 8080,
            groups: 3,
            replicas: 3,
            host: "127.0.0.1".into(),
            requirepass: None,
            users: Vec::new(),
            cluster_mode: false,
            lease_reads: true,
            tls: false,
            async_replication: false,
            disk_tier: false,
            near_cache: false,
        }
    }
}

/// Why the demo did not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--{flag}: {problem}")]
    BadOption { flag: &'static str, problem: String },
    #[error("node {node_id}: {source}")]
    Node {
        node_id: u64,
        #[source]
        source: NodeError,
    },
    #[error("the cluster did not become ready within {0:?}")]
    NotReady(Duration),
    #[error("temporary data directory: {0}")]
    TempDir(std::io::Error),
}

fn port(flag: &'static str, base: u16, offset: usize) -> Result<u16, DemoError> {
    u16::try_from(usize::from(base) + offset).map_err(|_| DemoError::BadOption {
        flag,
        problem: format!("{base} + {offset} is past port 65535"),
    })
}

/// The node configurations of the demo cluster, rooted at `data_dir`.
pub fn demo_configs(
    options: &DemoOptions,
    data_dir: &std::path::Path,
) -> Result<Vec<NodeConfig>, DemoError> {
    if options.groups == 0 || options.groups > 16 {
        return Err(DemoError::BadOption {
            flag: "groups",
            problem: format!("{} is not in 1..=16", options.groups),
        });
    }
    if options.replicas == 0 || options.replicas > 7 {
        return Err(DemoError::BadOption {
            flag: "replicas",
            problem: format!("{} is not in 1..=7", options.replicas),
        });
    }
    let count = options.groups * options.replicas;
    if count > MAX_DEMO_NODES {
        return Err(DemoError::BadOption {
            flag: "groups",
            problem: format!("{count} nodes, more than {MAX_DEMO_NODES}"),
        });
    }
    let mut nodes = Vec::with_capacity(count);
    for index in 0..count {
        let group = (index / options.replicas) as u64 + 1;
        nodes.push(NodeEntry {
            id: index as u64 + 1,
            host: options.host.clone(),
            grpc_port: port("grpc-port", options.grpc_port, index)?,
            resp_port: Some(port("resp-port", options.resp_port, index)?),
            http_port: Some(port("http-port", options.http_port, index)?),
            controller_port: if index < DEMO_CONTROLLER_REPLICAS {
                Some(port("grpc-port", options.grpc_port, count + index)?)
            } else {
                None
            },
            group: Some(group),
            data_port: Some(port("grpc-port", options.grpc_port, 2 * count + index)?),
            joining: false,
        });
    }
    let configs = nodes
        .iter()
        .map(|entry| NodeConfig {
            cluster_id: DEMO_CLUSTER_ID.into(),
            node_id: entry.id,
            data_dir: data_dir.join(format!("node{}", entry.id)),
            shard_count: 10,
            request_timeout_ms: 5000,
            max_raft_state_bytes: 8 << 20,
            snapshot_log_percent: crate::config::DEFAULT_SNAPSHOT_LOG_PERCENT,
            shard_capacity_bytes: crate::config::DEFAULT_SHARD_CAPACITY_BYTES,
            lease_reads: options.lease_reads,
            lease_clock_drift_percent: 10,
            write_fence: true,
            unsafe_ack_before_commit: false,
            balance_load: false,
            balance_interval_ms: 30_000,
            balance_after_intervals: 3,
            requirepass: options.requirepass.clone().map(crate::config::Secret),
            users: options
                .users
                .iter()
                .cloned()
                .map(crate::config::Secret)
                .collect(),
            protected_mode: true,
            listen_host: None,
            cluster_mode: options.cluster_mode,
            tls: options.tls.then(|| demo_tls_settings(data_dir, entry.id)),
            clients: crate::config::ClientLimits {
                near_cache_bytes: if options.near_cache {
                    DEMO_NEAR_CACHE_BYTES
                } else {
                    0
                },
                ..crate::config::ClientLimits::default()
            },
            tracing: crate::config::TracingSettings::default(),
            replication: crate::config::ReplicationSettings {
                async_groups: if options.async_replication {
                    (1..=options.groups as u64).collect()
                } else {
                    Vec::new()
                },
                ..crate::config::ReplicationSettings::default()
            },
            disk_tier: crate::config::DiskTierSettings {
                groups: if options.disk_tier {
                    (1..=options.groups as u64).collect()
                } else {
                    Vec::new()
                },
                ..crate::config::DiskTierSettings::default()
            },
            nodes: nodes.clone(),
        })
        .collect::<Vec<_>>();
    for config in &configs {
        config.validate().map_err(|error| DemoError::BadOption {
            flag: flag_of_field(&error.field),
            problem: error.to_string(),
        })?;
    }
    Ok(configs)
}

/// The demo flag that sets a configuration field.
fn flag_of_field(field: &str) -> &'static str {
    if field.starts_with("users") {
        "acl"
    } else if field.starts_with("requirepass") {
        "requirepass"
    } else if field.starts_with("tls") {
        "tls"
    } else if field.starts_with("data_dir") {
        "data-dir"
    } else if field.contains("resp_port") {
        "resp-port"
    } else if field.contains("http_port") {
        "http-port"
    } else {
        "grpc-port"
    }
}

/// Where `--tls` keeps the demo's certificates: `<data-dir>/tls`.
pub fn demo_tls_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("tls")
}

/// The `[tls]` of demo node `node_id`: the one client front end
/// certificate the throwaway CA signed, that CA as the cluster's, and the
/// node's own peer certificate (mutual TLS between the nodes, the same CA).
fn demo_tls_settings(data_dir: &std::path::Path, node_id: u64) -> crate::config::TlsSettings {
    let dir = demo_tls_dir(data_dir);
    crate::config::TlsSettings {
        cert: dir.join("node.pem"),
        key: dir.join("node-key.pem"),
        client_ca: None,
        ca: Some(dir.join("ca.pem")),
        peer_ca: Some(dir.join("ca.pem")),
        peer_cert: Some(dir.join(format!("peer-node-{node_id}.pem"))),
        peer_key: Some(dir.join(format!("peer-node-{node_id}-key.pem"))),
    }
}

/// Writes a throwaway CA (`<data-dir>/tls/ca.pem`), a node certificate it
/// signs for loopback and `host`, and a peer certificate for each of the
/// demo's `node_count` nodes.
#[cfg(not(madsim))]
fn generate_tls(
    data_dir: &std::path::Path,
    host: &str,
    node_count: usize,
) -> Result<(), DemoError> {
    let nodes: Vec<u64> = (1..=node_count.min(MAX_DEMO_NODES) as u64).collect();
    crate::tls::generate_cluster_certificates(
        &demo_tls_dir(data_dir),
        &[host.to_string()],
        DEMO_CLUSTER_ID,
        &nodes,
    )
    .map(|_| ())
    .map_err(|error| DemoError::BadOption {
        flag: "tls",
        problem: error.to_string(),
    })
}

#[cfg(madsim)]
fn generate_tls(
    _data_dir: &std::path::Path,
    _host: &str,
    _node_count: usize,
) -> Result<(), DemoError> {
    Err(DemoError::BadOption {
        flag: "tls",
        problem: "TLS is not available in the simulation build".into(),
    })
}

/// A running demo cluster. Its nodes can be stopped and started again
/// (from the dashboard: `POST /v1/demo/nodes/{id}/stop|start` on any node).
pub struct Demo {
    nodes: Arc<DemoNodes>,
    pub configs: Vec<NodeConfig>,
    pub data_dir: PathBuf,
    // Removed when the demo ends (None with --data-dir).
    _temporary: Option<tempfile::TempDir>,
}

impl Demo {
    /// Starts every node and waits until every group serves.
    pub async fn start(options: &DemoOptions, ready_timeout: Duration) -> Result<Demo, DemoError> {
        let (data_dir, temporary) = match &options.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temporary = tempfile::Builder::new()
                    .prefix("distcache-demo-")
                    .tempdir()
                    .map_err(DemoError::TempDir)?;
                (temporary.path().to_path_buf(), Some(temporary))
            }
        };
        if options.tls {
            generate_tls(
                &data_dir,
                &options.host,
                options.groups.saturating_mul(options.replicas),
            )?;
        }
        let configs = demo_configs(options, &data_dir)?;
        let mut demo = Demo::start_configs(configs, data_dir, ready_timeout).await?;
        demo._temporary = temporary;
        Ok(demo)
    }

    /// Starts every node of `configs` (one cluster's, as [`demo_configs`]
    /// makes them, possibly adjusted: the tests' cluster builder sets its
    /// own cluster id and certificates) and waits until every group
    /// serves. `data_dir` is what [`Demo::data_dir`] reports; the caller
    /// keeps it.
    pub async fn start_configs(
        configs: Vec<NodeConfig>,
        data_dir: PathBuf,
        ready_timeout: Duration,
    ) -> Result<Demo, DemoError> {
        if configs.is_empty() {
            return Err(DemoError::BadOption {
                flag: "groups",
                problem: "no node to start".into(),
            });
        }
        let control = Arc::new_cyclic(|me| DemoNodes {
            configs: configs.clone(),
            slots: std::sync::Mutex::new(
                configs
                    .iter()
                    .map(|config| (config.node_id, Slot::Busy))
                    .collect(),
            ),
            me: me.clone(),
        });
        let started = futures::future::join_all(configs.iter().cloned().map(|config| {
            let shared: crate::http::dashboard::SharedDemo = control.clone();
            Node::start_with(config, Some(shared))
        }))
        .await;
        let mut nodes = Vec::with_capacity(started.len());
        for (config, node) in configs.iter().zip(started) {
            match node {
                Ok(node) => nodes.push(node),
                Err(source) => {
                    for node in nodes {
                        node.shutdown().await;
                    }
                    return Err(DemoError::Node {
                        node_id: config.node_id,
                        source,
                    });
                }
            }
        }
        if !nodes[0].wait_ready(ready_timeout).await {
            for node in nodes {
                node.shutdown().await;
            }
            return Err(DemoError::NotReady(ready_timeout));
        }
        for (config, node) in configs.iter().zip(nodes) {
            control.put(config.node_id, Slot::Running(Box::new(node)));
        }
        Ok(Demo {
            nodes: control,
            configs,
            data_dir,
            _temporary: None,
        })
    }

    /// What runs where, for people.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        let first = &self.configs[0];
        let groups = first
            .nodes
            .iter()
            .filter_map(|entry| entry.group)
            .max()
            .unwrap_or(0);
        text.push_str(&format!(
            "distcache demo: {} nodes: {} data groups of {} replicas, a {}-replica controller; data in {}\n",
            first.nodes.len(),
            groups,
            first.nodes.len() / groups.max(1) as usize,
            first.nodes.iter().filter(|entry| entry.controller_port.is_some()).count(),
            self.data_dir.display(),
        ));
        for entry in &first.nodes {
            text.push_str(&format!(
                "  node {:>2}  grpc {}:{}  group {} (peer {})",
                entry.id,
                entry.host,
                entry.grpc_port,
                entry.group.unwrap_or(0),
                entry.data_port.unwrap_or(0),
            ));
            if let Some(port) = entry.controller_port {
                text.push_str(&format!("  controller (peer {port})"));
            }
            text.push('\n');
        }
        let tls = first.tls.as_ref().and_then(|tls| tls.ca.clone());
        if let Some(resp) = self.resp_addr(first.node_id) {
            match &tls {
                Some(ca) => text.push_str(&format!(
                    "  RESP {resp} (TLS only; node 1, every node serves RESP on the ports after it): redis-cli --tls --cacert {} -h {} -p {}\n",
                    ca.display(),
                    resp.ip(),
                    resp.port()
                )),
                None => text.push_str(&format!(
                    "  RESP {resp} (node 1; every node serves RESP on the ports after it): redis-cli -p {}\n",
                    resp.port()
                )),
            }
        }
        if let Some(http) = self.http_addr(first.node_id) {
            match &tls {
                Some(ca) => text.push_str(&format!(
                    "  HTTPS https://{http}/ (TLS only; node 1, every node serves HTTPS on the ports after it): dashboard at /, REST under /v1, curl --cacert {} https://{http}/v1/cluster\n",
                    ca.display()
                )),
                None => text.push_str(&format!(
                    "  HTTP http://{http}/ (node 1; every node serves HTTP on the ports after it): dashboard at /, REST under /v1, curl http://{http}/v1/cluster\n"
                )),
            }
        }
        match &tls {
            Some(ca) => text.push_str(&format!(
                "  connect: any gRPC client over TLS to {0} trusting {1} (proto/distcache/v1), e.g. grpcurl -cacert {1} {0} list\n",
                self.grpc_addr(),
                ca.display()
            )),
            None => text.push_str(&format!(
                "  connect: any gRPC client to {0} (proto/distcache/v1), or `distcache status --addr {0}`\n",
                self.grpc_addr()
            )),
        }
        text
    }

    /// Node 1's gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.configs[0]
            .validate()
            .ok()
            .and_then(|topology| topology.grpc.get(&self.configs[0].node_id).copied())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The HTTP gateway of `node_id`, while it runs.
    pub fn http_addr(&self, node_id: u64) -> Option<SocketAddr> {
        self.nodes.with_node(node_id, Node::http_addr).flatten()
    }

    /// The RESP listener of `node_id`, while it runs.
    pub fn resp_addr(&self, node_id: u64) -> Option<SocketAddr> {
        self.nodes.with_node(node_id, Node::resp_addr).flatten()
    }

    /// What the services of `node_id` share, while it runs.
    pub fn node_state(&self, node_id: u64) -> Option<Arc<NodeState>> {
        self.nodes
            .with_node(node_id, |node| Arc::clone(node.state()))
    }

    /// Reads `node_id`'s certificate files again, as SIGHUP does
    /// ([`Node::reload_tls`]); `None` if the node is not running.
    #[cfg(not(madsim))]
    pub fn reload_tls(&self, node_id: u64) -> Option<Result<(), crate::tls::TlsError>> {
        self.nodes.with_node(node_id, Node::reload_tls)
    }

    /// The ids of the nodes running now.
    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .slots
            .lock()
            .expect("demo lock")
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Running(_)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Stops `node_id` and waits until it has stopped.
    pub async fn stop_node(&self, node_id: u64) -> Result<(), String> {
        self.nodes
            .stop_now(node_id)
            .await
            .map_err(|(_, _, message)| message)
    }

    /// Stops `node_id` like [`Demo::stop_node`] but without handing its
    /// leaderships to a peer first (to measure what the hand-off saves).
    pub async fn stop_node_without_handoff(&self, node_id: u64) -> Result<(), String> {
        let node = self
            .nodes
            .take_running(node_id)
            .map_err(|(_, _, message)| message)?;
        node.shutdown_with_handoff(false).await;
        self.nodes.put(node_id, Slot::Stopped);
        Ok(())
    }

    /// Starts `node_id` again on its data directory and waits until it runs.
    pub async fn start_node(&self, node_id: u64) -> Result<(), String> {
        self.nodes
            .start_now(node_id)
            .await
            .map_err(|(_, _, message)| message)
    }

    pub async fn shutdown(self) {
        let running: Vec<Node> = {
            let mut slots = self.nodes.slots.lock().expect("demo lock");
            std::mem::take(&mut *slots)
                .into_values()
                .filter_map(|slot| match slot {
                    Slot::Running(node) => Some(*node),
                    _ => None,
                })
                .collect()
        };
        // The whole cluster stops: no replica is left to hand leadership to.
        futures::future::join_all(
            running
                .into_iter()
                .map(|node| node.shutdown_with_handoff(false)),
        )
        .await;
    }
}

/// The demo's nodes, which the dashboard can stop and start.
struct DemoNodes {
    configs: Vec<NodeConfig>,
    slots: std::sync::Mutex<BTreeMap<u64, Slot>>,
    me: std::sync::Weak<DemoNodes>,
}

enum Slot {
    Running(Box<Node>),
    /// Stopping or starting.
    Busy,
    Stopped,
}

type Refusal = (u16, &'static str, String);

impl DemoNodes {
    fn with_node<R>(&self, node_id: u64, look: impl FnOnce(&Node) -> R) -> Option<R> {
        match self.slots.lock().expect("demo lock").get(&node_id) {
            Some(Slot::Running(node)) => Some(look(node)),
            _ => None,
        }
    }

    /// Takes the running node `node_id` out (its slot becomes Busy).
    fn take_running(&self, node_id: u64) -> Result<Node, Refusal> {
        let mut slots = self.slots.lock().expect("demo lock");
        let Some(slot) = slots.get_mut(&node_id) else {
            return Err((404, "no_node", format!("the demo has no node {node_id}")));
        };
        match std::mem::replace(slot, Slot::Busy) {
            Slot::Running(node) => Ok(*node),
            other => {
                let state = if matches!(other, Slot::Stopped) {
                    "stopped"
                } else {
                    "busy"
                };
                *slot = other;
                Err((409, "already", format!("node {node_id} is {state}")))
            }
        }
    }

    /// Marks the stopped node `node_id` as starting and returns its config.
    fn take_stopped(&self, node_id: u64) -> Result<NodeConfig, Refusal> {
        let mut slots = self.slots.lock().expect("demo lock");
        let Some(slot) = slots.get_mut(&node_id) else {
            return Err((404, "no_node", format!("the demo has no node {node_id}")));
        };
        if !matches!(slot, Slot::Stopped) {
            return Err((409, "already", format!("node {node_id} is running or busy")));
        }
        *slot = Slot::Busy;
        self.configs
            .iter()
            .find(|config| config.node_id == node_id)
            .cloned()
            .ok_or((404, "no_node", format!("the demo has no node {node_id}")))
    }

    fn put(&self, node_id: u64, slot: Slot) {
        self.slots.lock().expect("demo lock").insert(node_id, slot);
    }

    async fn stop_now(&self, node_id: u64) -> Result<(), Refusal> {
        let node = self.take_running(node_id)?;
        node.shutdown().await;
        self.put(node_id, Slot::Stopped);
        Ok(())
    }

    async fn start_now(&self, node_id: u64) -> Result<(), Refusal> {
        let config = self.take_stopped(node_id)?;
        self.start_taken(node_id, config).await
    }

    async fn start_taken(&self, node_id: u64, config: NodeConfig) -> Result<(), Refusal> {
        let control = self
            .me
            .upgrade()
            .map(|me| me as crate::http::dashboard::SharedDemo);
        match Node::start_with(config, control).await {
            Ok(node) => {
                self.put(node_id, Slot::Running(Box::new(node)));
                Ok(())
            }
            Err(error) => {
                tracing::warn!(node_id, "demo: node did not start again: {error}");
                self.put(node_id, Slot::Stopped);
                Err((503, "start_failed", error.to_string()))
            }
        }
    }
}

impl crate::http::dashboard::DemoControl for DemoNodes {
    fn stop(&self, node_id: u64) -> Result<(), Refusal> {
        let node = self.take_running(node_id)?;
        let me = self.me.upgrade();
        tokio::spawn(async move {
            node.shutdown().await;
            if let Some(me) = me {
                me.put(node_id, Slot::Stopped);
            }
        });
        Ok(())
    }

    fn start(&self, node_id: u64) -> Result<(), Refusal> {
        let config = self.take_stopped(node_id)?;
        let me = self.me.upgrade();
        tokio::spawn(async move {
            if let Some(me) = me {
                let _ = me.start_taken(node_id, config).await;
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_option_is_reported_under_its_own_flag() {
        let dir = std::path::Path::new("/tmp/distcache-demo-flags");
        let bad_acl = DemoOptions {
            users: vec!["user app on +nosuchcommand".into()],
            ..DemoOptions::default()
        };
        let error = demo_configs(&bad_acl, dir).expect_err("a bad --acl line");
        assert!(error.to_string().starts_with("--acl: "), "{error}");
        let empty_password = DemoOptions {
            requirepass: Some(String::new()),
            ..DemoOptions::default()
        };
        let error = demo_configs(&empty_password, dir).expect_err("an empty password");
        assert!(error.to_string().starts_with("--requirepass: "), "{error}");
        let high_port = DemoOptions {
            grpc_port: 65530,
            ..DemoOptions::default()
        };
        let error = demo_configs(&high_port, dir).expect_err("ports past 65535");
        assert!(error.to_string().starts_with("--grpc-port: "), "{error}");
    }

    #[test]
    fn the_disk_tier_flag_gives_every_group_a_tier() {
        let dir = std::path::Path::new("/tmp/distcache-demo-flags");
        let configs = demo_configs(
            &DemoOptions {
                disk_tier: true,
                ..DemoOptions::default()
            },
            dir,
        )
        .expect("valid");
        for config in &configs {
            assert_eq!(config.disk_tier.groups, vec![1, 2, 3]);
        }
        let configs = demo_configs(&DemoOptions::default(), dir).expect("valid");
        assert!(
            configs
                .iter()
                .all(|config| config.disk_tier.groups.is_empty())
        );
    }

    #[test]
    fn the_near_cache_flag_gives_every_node_a_near_cache() {
        let dir = std::path::Path::new("/tmp/distcache-demo-flags");
        let options = DemoOptions {
            near_cache: true,
            ..DemoOptions::default()
        };
        for config in demo_configs(&options, dir).expect("valid") {
            assert_eq!(config.clients.near_cache_bytes, DEMO_NEAR_CACHE_BYTES);
        }
        for config in demo_configs(&DemoOptions::default(), dir).expect("valid") {
            assert_eq!(config.clients.near_cache_bytes, 0, "off by default");
        }
    }
}
