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

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{NodeConfig, NodeEntry};
use crate::node::{Node, NodeError};

/// Replicas of the demo's controller group.
pub const DEMO_CONTROLLER_REPLICAS: usize = 3;
/// Largest demo (nodes in one process).
pub const MAX_DEMO_NODES: usize = 64;

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
}

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
        });
    }
    let configs = nodes
        .iter()
        .map(|entry| NodeConfig {
            cluster_id: "demo".into(),
            node_id: entry.id,
            data_dir: data_dir.join(format!("node{}", entry.id)),
            shard_count: 10,
            request_timeout_ms: 5000,
            max_raft_state_bytes: 8 << 20,
            unsafe_ack_before_commit: false,
            nodes: nodes.clone(),
        })
        .collect::<Vec<_>>();
    for config in &configs {
        config.validate().map_err(|error| DemoError::BadOption {
            flag: "grpc-port",
            problem: error.to_string(),
        })?;
    }
    Ok(configs)
}

/// A running demo cluster.
pub struct Demo {
    pub nodes: Vec<Node>,
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
        let configs = demo_configs(options, &data_dir)?;
        let started = futures::future::join_all(configs.iter().cloned().map(Node::start)).await;
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
        Ok(Demo {
            nodes,
            configs,
            data_dir,
            _temporary: temporary,
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
        if let Some(resp) = self.nodes[0].resp_addr() {
            text.push_str(&format!(
                "  RESP {resp} (node 1; every node serves RESP on the ports after it): redis-cli -p {}\n",
                resp.port()
            ));
        }
        if let Some(http) = self.nodes[0].http_addr() {
            text.push_str(&format!(
                "  HTTP http://{http}/ (node 1; every node serves HTTP on the ports after it): dashboard at /, REST under /v1, curl http://{http}/v1/cluster\n"
            ));
        }
        text.push_str(&format!(
            "  connect: any gRPC client to {0} (proto/distcache/v1), or `distcache status --addr {0}`\n",
            self.nodes[0].grpc_addr()
        ));
        text
    }

    pub async fn shutdown(self) {
        futures::future::join_all(self.nodes.into_iter().map(Node::shutdown)).await;
    }
}
