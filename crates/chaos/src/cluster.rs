//! The cluster under test: real `distcache node` processes, one
//! configuration file and one data directory each, under the run directory.
//!
//! Layout: nodes 1-3 host the controller and data group 1, nodes 4-6 host
//! data group 2. Every node listens on its own ports on 127.0.0.1; a node's
//! configuration names the *other* nodes' peer ports as its
//! [`PeerView`] maps them (the real ports, or the ports of the harness's
//! proxies on the links leaving that node).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use distcache_client::proto::admin_client::AdminClient;
use distcache_client::proto::{NodeStatusReply, NodeStatusRequest};

/// Number of nodes: 3 (controller + group 1) and 3 (group 2).
pub const NODE_COUNT: u64 = 6;
/// Data groups and their nodes.
pub const GROUPS: [(u64, [u64; 3]); 2] = [(1, [1, 2, 3]), (2, [4, 5, 6])];
/// Nodes hosting a controller replica.
pub const CONTROLLER_NODES: [u64; 3] = [1, 2, 3];
/// Most ports one run asks the kernel for (bounded: nodes x ports plus
/// a proxy per directed peer link and port kind).
const PORTS_MAX: usize = 512;

/// A peer-traffic port kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerPort {
    Controller,
    Data,
}

/// The real ports one node listens on.
#[derive(Clone, Debug)]
pub struct NodePorts {
    pub grpc: u16,
    pub resp: u16,
    pub controller: Option<u16>,
    pub group: Option<u64>,
    pub data: Option<u16>,
}

/// How one node sees another's peer port: `(from, to, kind) -> port`.
pub type PeerView = BTreeMap<(u64, u64, PeerPort), u16>;

/// Free loopback ports for the nodes, taken from below the kernel's
/// ephemeral range (bound together, then released).
///
/// Below that range on purpose: the proxies bind port 0 and every outgoing
/// connection gets an ephemeral port, and either could otherwise land on a
/// node's port while the node is down (killed, about to restart), which then
/// fails to start with "address in use". The starting point is spread by the
/// process id so that concurrent runs rarely probe the same ports.
pub fn free_ports(count: usize) -> std::io::Result<Vec<u16>> {
    if count > PORTS_MAX {
        return Err(std::io::Error::other(format!(
            "{count} ports asked for, more than {PORTS_MAX}"
        )));
    }
    const LOWEST_PORT: u32 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral_low.saturating_sub(LOWEST_PORT);
    if span < (count as u32) * 4 {
        return Err(std::io::Error::other(format!(
            "the ephemeral port range starts at {ephemeral_low}: too few ports below it"
        )));
    }
    let start = std::process::id() * 131 % span;
    let mut listeners = Vec::with_capacity(count);
    // Bounded: the whole span below the ephemeral range, once.
    for offset in 0..span {
        if listeners.len() == count {
            break;
        }
        let port = LOWEST_PORT + (start + offset) % span;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port as u16)) {
            listeners.push(listener);
        }
    }
    if listeners.len() < count {
        return Err(std::io::Error::other(format!(
            "only {} free ports between {LOWEST_PORT} and {ephemeral_low}",
            listeners.len()
        )));
    }
    listeners
        .iter()
        .map(|listener| listener.local_addr().map(|address| address.port()))
        .collect()
}

/// What the harness knows of one node process.
struct Process {
    child: Child,
    paused: bool,
}

/// The running cluster.
pub struct Cluster {
    dir: PathBuf,
    binary: PathBuf,
    pub ports: BTreeMap<u64, NodePorts>,
    view: PeerView,
    /// Extra top-level TOML lines for every node (the broken build's switch).
    extra_config: String,
    processes: BTreeMap<u64, Process>,
}

impl Cluster {
    /// Picks ports and writes the configuration files; starts nothing.
    pub fn new(dir: &Path, binary: &Path, extra_config: &str) -> std::io::Result<Cluster> {
        let mut ports = free_ports(NODE_COUNT as usize * 4)?.into_iter();
        let mut next = || ports.next().expect("asked for enough ports");
        let mut table = BTreeMap::new();
        for node in 1..=NODE_COUNT {
            let group = GROUPS
                .iter()
                .find(|(_, nodes)| nodes.contains(&node))
                .map(|(gid, _)| *gid);
            table.insert(
                node,
                NodePorts {
                    grpc: next(),
                    resp: next(),
                    controller: CONTROLLER_NODES.contains(&node).then(&mut next),
                    group,
                    data: group.map(|_| next()),
                },
            );
        }
        let cluster = Cluster {
            dir: dir.to_path_buf(),
            binary: binary.to_path_buf(),
            ports: table,
            view: PeerView::new(),
            extra_config: extra_config.to_string(),
            processes: BTreeMap::new(),
        };
        Ok(cluster)
    }

    /// Every directed peer link `(from, to, kind)` and the real port it
    /// reaches: what a proxy per link would forward to.
    pub fn peer_links(&self) -> Vec<((u64, u64, PeerPort), u16)> {
        let mut links = Vec::new();
        for &from in self.ports.keys() {
            for (&to, ports) in &self.ports {
                if from == to {
                    continue;
                }
                if let Some(port) = ports.controller {
                    links.push(((from, to, PeerPort::Controller), port));
                }
                if let Some(port) = ports.data {
                    links.push(((from, to, PeerPort::Data), port));
                }
            }
        }
        links
    }

    /// Sets how nodes see each other's peer ports (before the configs are
    /// written). Links not in `view` use the real port.
    pub fn set_view(&mut self, view: PeerView) {
        self.view = view;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config_path(&self, node: u64) -> PathBuf {
        self.dir.join(format!("node{node}.toml"))
    }

    pub fn data_dir(&self, node: u64) -> PathBuf {
        self.dir.join(format!("data{node}"))
    }

    pub fn log_path(&self, node: u64) -> PathBuf {
        self.dir.join(format!("node{node}.log"))
    }

    pub fn grpc_addr(&self, node: u64) -> String {
        format!("127.0.0.1:{}", self.ports[&node].grpc)
    }

    pub fn resp_addr(&self, node: u64) -> String {
        format!("127.0.0.1:{}", self.ports[&node].resp)
    }

    pub fn grpc_addrs(&self) -> Vec<String> {
        self.ports
            .keys()
            .map(|&node| self.grpc_addr(node))
            .collect()
    }

    /// Writes every node's configuration file: the same `[[nodes]]` table
    /// (ids, groups, client ports), with peer ports as that node sees them.
    pub fn write_configs(&self) -> std::io::Result<()> {
        for &owner in self.ports.keys() {
            let mut text = format!(
                "cluster_id = \"chaos\"\nnode_id = {owner}\ndata_dir = {:?}\nrequest_timeout_ms = 3000\nmax_raft_state_bytes = 262144\n{}\n",
                self.data_dir(owner),
                self.extra_config
            );
            for (&node, ports) in &self.ports {
                let seen = |kind: PeerPort, real: u16| -> u16 {
                    if node == owner {
                        real
                    } else {
                        self.view.get(&(owner, node, kind)).copied().unwrap_or(real)
                    }
                };
                text.push_str(&format!(
                    "[[nodes]]\nid = {node}\nhost = \"127.0.0.1\"\ngrpc_port = {}\nresp_port = {}\n",
                    ports.grpc, ports.resp
                ));
                if let Some(port) = ports.controller {
                    text.push_str(&format!(
                        "controller_port = {}\n",
                        seen(PeerPort::Controller, port)
                    ));
                }
                if let (Some(gid), Some(port)) = (ports.group, ports.data) {
                    text.push_str(&format!(
                        "group = {gid}\ndata_port = {}\n",
                        seen(PeerPort::Data, port)
                    ));
                }
                text.push('\n');
            }
            std::fs::write(self.config_path(owner), text)?;
        }
        Ok(())
    }

    /// Starts `node` (on its data directory, which may hold earlier state).
    pub fn start(&mut self, node: u64) -> std::io::Result<()> {
        if self.processes.contains_key(&node) {
            return Ok(());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(node))?;
        let child = Command::new(&self.binary)
            .args(["node", "--config"])
            .arg(self.config_path(node))
            .env("RUST_LOG", "warn,distcache=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.processes.insert(
            node,
            Process {
                child,
                paused: false,
            },
        );
        self.write_pid_file()
    }

    /// SIGKILL: the process ends at once, unsynced nothing (Raft fsyncs
    /// before it answers).
    pub fn kill(&mut self, node: u64) -> std::io::Result<()> {
        let Some(mut process) = self.processes.remove(&node) else {
            return Ok(());
        };
        process.child.kill()?;
        process.child.wait()?;
        self.write_pid_file()
    }

    /// SIGSTOP (`pause = true`) or SIGCONT.
    pub fn signal_pause(&mut self, node: u64, pause: bool) -> std::io::Result<()> {
        let Some(process) = self.processes.get_mut(&node) else {
            return Ok(());
        };
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .arg(signal)
            .arg(process.child.id().to_string())
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "kill {signal} {} failed",
                process.child.id()
            )));
        }
        process.paused = pause;
        Ok(())
    }

    pub fn is_running(&self, node: u64) -> bool {
        self.processes.contains_key(&node)
    }

    /// Nodes whose process exited on its own (a crash: the harness never
    /// lets a node exit unless it killed it), with the exit status.
    pub fn exited(&mut self) -> Vec<(u64, String)> {
        let mut exited = Vec::new();
        for (&node, process) in &mut self.processes {
            if let Ok(Some(status)) = process.child.try_wait() {
                exited.push((node, status.to_string()));
            }
        }
        for (node, _) in &exited {
            self.processes.remove(node);
        }
        exited
    }

    pub fn paused(&self) -> BTreeSet<u64> {
        self.processes
            .iter()
            .filter(|(_, process)| process.paused)
            .map(|(&node, _)| node)
            .collect()
    }

    /// Stops every process (SIGCONT first, then SIGKILL).
    pub fn stop_all(&mut self) {
        let nodes: Vec<u64> = self.processes.keys().copied().collect();
        for node in nodes {
            let _ = self.signal_pause(node, false);
            let _ = self.kill(node);
        }
        crate::cleanup::unregister();
    }

    /// The pids of the running nodes, for the crash clean-up of a later run
    /// (see [`crate::cleanup`]).
    fn write_pid_file(&self) -> std::io::Result<()> {
        let pids: Vec<String> = self
            .processes
            .values()
            .map(|process| process.child.id().to_string())
            .collect();
        std::fs::write(self.dir.join("node.pids"), pids.join("\n"))?;
        crate::cleanup::register_pids(&pids)
    }

    /// Each node's own `Admin.NodeStatus`, `None` for a node that did not
    /// answer within `timeout` (paused or dead).
    async fn node_statuses(&self, timeout: Duration) -> Vec<(u64, Option<NodeStatusReply>)> {
        let queries = self.processes.keys().map(|&node| {
            let address = self.grpc_addr(node);
            async move {
                let reply = tokio::time::timeout(timeout, async {
                    let mut admin = AdminClient::connect(format!("http://{address}"))
                        .await
                        .ok()?;
                    admin
                        .node_status(NodeStatusRequest {})
                        .await
                        .ok()
                        .map(tonic::Response::into_inner)
                })
                .await
                .ok()
                .flatten();
                (node, reply)
            }
        });
        futures::future::join_all(queries).await
    }

    /// Reads the data replicas answered while following, summed over the
    /// nodes that answer `Admin.NodeStatus` within `timeout` (each counts
    /// since its process started).
    pub async fn follower_reads(&self, timeout: Duration) -> u64 {
        self.node_statuses(timeout)
            .await
            .into_iter()
            .filter_map(|(_, reply)| reply)
            .flat_map(|reply| reply.replicas)
            .map(|replica| replica.follower_reads)
            .sum()
    }

    /// Asynchronous replication's counters summed over the data replicas
    /// that answer within `timeout` (since each node's last start): writes
    /// answered early, those seen lost, those mispredicted.
    pub async fn async_acks(&self, timeout: Duration) -> (u64, u64, u64) {
        self.node_statuses(timeout)
            .await
            .into_iter()
            .filter_map(|(_, reply)| reply)
            .flat_map(|reply| reply.replicas)
            .fold((0, 0, 0), |(early, lost, wrong), replica| {
                (
                    early + replica.async_acks,
                    lost + replica.async_acks_lost,
                    wrong + replica.async_acks_mispredicted,
                )
            })
    }

    /// Who leads what, per each node's own `Admin.NodeStatus` (a paused or
    /// dead node does not answer within `timeout`).
    pub async fn leaders(&self, timeout: Duration) -> Leaders {
        let mut leaders = Leaders::default();
        for (node, reply) in self.node_statuses(timeout).await {
            let Some(reply) = reply else { continue };
            for replica in reply.replicas {
                if !replica.is_leader {
                    continue;
                }
                let gid = if replica.role == "controller" {
                    0
                } else {
                    replica.gid
                };
                let entry = leaders.by_group.entry(gid).or_insert((node, 0));
                if replica.term >= entry.1 {
                    *entry = (node, replica.term);
                }
            }
        }
        leaders
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The leader of each group as the nodes report it: gid (0: the controller)
/// -> (node, term).
#[derive(Clone, Debug, Default)]
pub struct Leaders {
    pub by_group: BTreeMap<u64, (u64, u64)>,
}

impl Leaders {
    pub fn of(&self, gid: u64) -> Option<u64> {
        self.by_group.get(&gid).map(|(node, _)| *node)
    }
}
