//! [`TestCluster`]: a cluster of real nodes in the test's process (real
//! gRPC between them, Raft logs on disk, loopback TCP), laid out as
//! `distcache demo` lays one out (`distcache::demo`), on a free port
//! block below the ephemeral range, in a temporary directory.
//!
//! ```ignore
//! let cluster = TestCluster::builder().groups(2).replicas(3).start().await;
//! let http = cluster.http_addr(1).expect("node 1 serves HTTP");
//! ...
//! cluster.shutdown().await;
//! ```
//!
//! It derefs to [`Demo`], whose methods stop, start and look at its nodes.

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use distcache::config::{NodeConfig, NodeEntry, TlsSettings};
use distcache::demo::{Demo, DemoOptions, demo_configs};
use distcache::tls::DemoCertificates;

use testkit::ports::free_port_block;

/// How long [`TestClusterBuilder::start`] waits for every group to serve,
/// unless told otherwise.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What the cluster runs; see [`TestCluster::builder`].
pub struct TestClusterBuilder {
    groups: usize,
    replicas: usize,
    cluster_id: String,
    requirepass: Option<String>,
    users: Vec<String>,
    tls: Option<TlsSettings>,
    peer_certificates: Option<DemoCertificates>,
    request_timeout_ms: Option<u64>,
    shard_capacity_bytes: Option<u64>,
    max_raft_state_bytes: Option<u64>,
    near_cache_bytes: Option<u64>,
    ready_timeout: Duration,
}

impl TestClusterBuilder {
    /// Data groups (default 1).
    pub fn groups(mut self, groups: usize) -> TestClusterBuilder {
        self.groups = groups;
        self
    }

    /// Replicas per data group (default 3). The first three nodes also
    /// host the controller's replicas.
    pub fn replicas(mut self, replicas: usize) -> TestClusterBuilder {
        self.replicas = replicas;
        self
    }

    /// The configuration's `cluster_id` (default "demo").
    pub fn cluster_id(mut self, cluster_id: &str) -> TestClusterBuilder {
        self.cluster_id = cluster_id.into();
        self
    }

    /// The default user's password on every front end.
    pub fn requirepass(mut self, password: &str) -> TestClusterBuilder {
        self.requirepass = Some(password.into());
        self
    }

    /// One more user, as an ACL-file line (`user reader on >pw ~* +get`).
    pub fn acl(mut self, line: &str) -> TestClusterBuilder {
        self.users.push(line.into());
        self
    }

    /// TLS on every client front end with these certificates (the node
    /// certificate, its key, and the CA as the cluster's).
    pub fn tls(mut self, certificates: &DemoCertificates) -> TestClusterBuilder {
        self.tls = Some(TlsSettings {
            cert: certificates.cert.clone(),
            key: certificates.key.clone(),
            client_ca: None,
            ca: Some(certificates.ca.clone()),
            peer_ca: None,
            peer_cert: None,
            peer_key: None,
        });
        self
    }

    /// [`TestClusterBuilder::tls`], plus mutual TLS between the nodes:
    /// `certificates.ca` as the cluster CA and each node's peer
    /// certificate from `certificates.peers` (make them with
    /// `generate_cluster_certificates` for every node id).
    pub fn peer_tls(mut self, certificates: &DemoCertificates) -> TestClusterBuilder {
        self = self.tls(certificates);
        self.peer_certificates = Some(certificates.clone());
        self
    }

    /// With [`TestClusterBuilder::tls`]: every client must present a
    /// certificate signed by the CA in `ca`.
    pub fn client_ca(mut self, ca: &Path) -> TestClusterBuilder {
        let tls = self
            .tls
            .as_mut()
            .expect("client_ca goes with tls: call tls first");
        tls.client_ca = Some(ca.to_path_buf());
        self
    }

    /// Deadline of one client request inside the cluster.
    pub fn request_timeout_ms(mut self, timeout_ms: u64) -> TestClusterBuilder {
        self.request_timeout_ms = Some(timeout_ms);
        self
    }

    /// Memory of one shard's store (`shard_capacity_bytes`).
    pub fn shard_capacity_bytes(mut self, bytes: u64) -> TestClusterBuilder {
        self.shard_capacity_bytes = Some(bytes);
        self
    }

    /// Raft log size that makes a replica snapshot (`max_raft_state_bytes`).
    pub fn max_raft_state_bytes(mut self, bytes: u64) -> TestClusterBuilder {
        self.max_raft_state_bytes = Some(bytes);
        self
    }

    /// The nodes' near cache (`clients.near_cache_bytes`).
    pub fn near_cache_bytes(mut self, bytes: u64) -> TestClusterBuilder {
        self.near_cache_bytes = Some(bytes);
        self
    }

    /// How long [`TestClusterBuilder::start`] waits for every group to serve.
    pub fn ready_timeout(mut self, timeout: Duration) -> TestClusterBuilder {
        self.ready_timeout = timeout;
        self
    }

    /// The nodes' configurations on a free port block, data under
    /// `data_dir`; valid (checked here).
    pub fn configs(&self, data_dir: &Path) -> Vec<NodeConfig> {
        let nodes = self.groups * self.replicas;
        // The demo's layout: 3n gRPC and peer ports, then n RESP, n HTTP.
        let nodes = u16::try_from(nodes).expect("a small cluster");
        let base = free_port_block(5 * nodes);
        let options = DemoOptions {
            grpc_port: base,
            resp_port: base + 3 * nodes,
            http_port: base + 4 * nodes,
            groups: self.groups,
            replicas: self.replicas,
            requirepass: self.requirepass.clone(),
            users: self.users.clone(),
            ..DemoOptions::default()
        };
        let mut configs = demo_configs(&options, data_dir).expect("a valid test cluster");
        for config in &mut configs {
            config.cluster_id = self.cluster_id.clone();
            config.tls = self.tls.clone();
            if let (Some(tls), Some(certificates)) = (&mut config.tls, &self.peer_certificates) {
                let (cert, key) = certificates
                    .peers
                    .get(&config.node_id)
                    .unwrap_or_else(|| panic!("no peer certificate for node {}", config.node_id));
                tls.peer_ca = Some(certificates.ca.clone());
                tls.peer_cert = Some(cert.clone());
                tls.peer_key = Some(key.clone());
            }
            if let Some(timeout_ms) = self.request_timeout_ms {
                config.request_timeout_ms = timeout_ms;
            }
            if let Some(bytes) = self.shard_capacity_bytes {
                config.shard_capacity_bytes = bytes;
            }
            if let Some(bytes) = self.max_raft_state_bytes {
                config.max_raft_state_bytes = bytes;
            }
            if let Some(bytes) = self.near_cache_bytes {
                config.clients.near_cache_bytes = bytes;
            }
            if let Err(error) = config.validate() {
                panic!("test cluster node {}: {error}", config.node_id);
            }
        }
        configs
    }

    /// Starts every node and waits (at most the ready timeout) until every
    /// group serves.
    pub async fn start(self) -> TestCluster {
        let directory = tempfile::Builder::new()
            .prefix("distcache-test-")
            .tempdir()
            .expect("a temporary directory");
        let configs = self.configs(directory.path());
        let demo = Demo::start_configs(configs, directory.path().to_path_buf(), self.ready_timeout)
            .await
            .unwrap_or_else(|error| panic!("the test cluster starts: {error}"));
        TestCluster {
            demo,
            _directory: directory,
        }
    }
}

/// A running in-process cluster; see the module docs.
pub struct TestCluster {
    demo: Demo,
    // Removed after the demo's nodes are gone (fields drop in order).
    _directory: tempfile::TempDir,
}

impl TestCluster {
    /// One data group of three replicas, no password, no TLS.
    pub fn builder() -> TestClusterBuilder {
        TestClusterBuilder {
            groups: 1,
            replicas: 3,
            cluster_id: "demo".into(),
            requirepass: None,
            users: Vec::new(),
            tls: None,
            peer_certificates: None,
            request_timeout_ms: None,
            shard_capacity_bytes: None,
            max_raft_state_bytes: None,
            near_cache_bytes: None,
            ready_timeout: READY_TIMEOUT,
        }
    }

    /// A cluster started otherwise (`Demo::start_configs` on configurations
    /// a test changed), its data under `directory`.
    pub fn from_demo(demo: Demo, directory: tempfile::TempDir) -> TestCluster {
        TestCluster {
            demo,
            _directory: directory,
        }
    }

    /// Every node's gRPC address, as `host:port` (client seeds).
    pub fn grpc_seeds(&self) -> Vec<String> {
        self.demo.configs[0]
            .nodes
            .iter()
            .map(|entry| format!("{}:{}", entry.host, entry.grpc_port))
            .collect()
    }

    /// Node `index`'s (0-based) RESP and HTTP addresses.
    pub fn front_ends(&self, index: usize) -> (std::net::SocketAddr, std::net::SocketAddr) {
        let entry = &self.demo.configs[0].nodes[index];
        let host: std::net::IpAddr = entry.host.parse().expect("an IP address");
        (
            std::net::SocketAddr::new(host, entry.resp_port.expect("a RESP port")),
            std::net::SocketAddr::new(host, entry.http_port.expect("an HTTP port")),
        )
    }

    /// Stops every node (no hand-off: the whole cluster goes).
    pub async fn shutdown(self) {
        self.demo.shutdown().await;
    }
}

impl Deref for TestCluster {
    type Target = Demo;

    fn deref(&self) -> &Demo {
        &self.demo
    }
}

/// Node `node_id`'s configuration: a copy of `template`'s table plus
/// itself as a joining replica of group `gid` (0: a node hosting only a
/// controller replica, joining the controller group) at two free ports.
pub fn joining_config(
    template: &NodeConfig,
    node_id: u64,
    gid: u64,
    data_dir: &std::path::Path,
) -> NodeConfig {
    let base = free_port_block(2);
    let peer_port = Some(base + 1);
    let mut config = template.clone();
    config.node_id = node_id;
    config.data_dir = data_dir.join(format!("node{node_id}"));
    config.nodes.push(NodeEntry {
        id: node_id,
        host: "127.0.0.1".into(),
        grpc_port: base,
        resp_port: None,
        http_port: None,
        controller_port: peer_port.filter(|_| gid == 0),
        group: Some(gid).filter(|&gid| gid != 0),
        data_port: peer_port.filter(|_| gid != 0),
        joining: true,
    });
    config.validate().expect("a valid joining node");
    config
}
