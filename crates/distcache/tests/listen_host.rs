//! `listen_host` on real `distcache node` processes (not simulation): a
//! node's listeners bind one address while the cluster and its clients are
//! told another, the node's `host`, as on Kubernetes, where `host` is a
//! per-pod Service's ClusterIP (stable for the Service's lifetime, but no
//! interface of the pod) and the node listens on 0.0.0.0.
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so the
//! nodes' `host` is 127.0.0.2 and a listener on 0.0.0.0 also answers at
//! 127.0.0.3. Without `listen_host` the nodes would bind 127.0.0.2 (which
//! works on loopback, and so proves nothing by itself); what shows the
//! listeners follow `listen_host` is that every one of them (gRPC, RESP,
//! HTTP, controller and data peer ports) accepts at 127.0.0.3 too.

#![cfg(not(madsim))]

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use distcache::NodeConfig;
use distcache_client::proto::StatusRequest;
use distcache_client::proto::admin_client::AdminClient;
use distcache_client::{Client, ClientConfig};
use support::cluster::TestCluster;
use support::keys::{check_all, wait_for, write_keys};
use support::processes::{BINARY, NodeProcesses};
use tokio::net::TcpStream;

/// The address the nodes are told and reached at (the ClusterIP's role).
const ADVERTISED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// An address that reaches a listener only if it is bound to 0.0.0.0.
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// How often a test waiting on a condition looks again.
const POLL: Duration = Duration::from_millis(100);

/// The configurations of a test cluster of `replicas` nodes (each a
/// controller replica and a replica of group 1) whose table lists
/// [`ADVERTISED`] as every node's host, changed by `adjust`, written to
/// `processes`' directory.
fn write_configs(
    processes: &NodeProcesses,
    replicas: usize,
    adjust: impl Fn(&mut NodeConfig),
) -> Vec<NodeConfig> {
    let mut configs = TestCluster::builder()
        .cluster_id("test")
        .groups(1)
        .replicas(replicas)
        .request_timeout_ms(3000)
        .configs(processes.dir.path());
    for config in &mut configs {
        for entry in &mut config.nodes {
            entry.host = ADVERTISED.to_string();
        }
        adjust(config);
        config.validate().expect("a valid configuration");
        processes.write_config(config.node_id, &config.to_toml());
    }
    configs
}

/// Every port node `node_id`'s table entry gives it, by name.
fn ports_of(config: &NodeConfig, node_id: u64) -> Vec<(&'static str, u16)> {
    let entry = config
        .nodes
        .iter()
        .find(|entry| entry.id == node_id)
        .expect("the node is in the table");
    let mut ports = vec![("grpc", entry.grpc_port)];
    let optional = [
        ("resp", entry.resp_port),
        ("http", entry.http_port),
        ("controller", entry.controller_port),
        ("data", entry.data_port),
    ];
    ports.extend(
        optional
            .into_iter()
            .filter_map(|(name, port)| port.map(|port| (name, port))),
    );
    ports
}

/// Whether something accepts TCP connections at `ip:port` (within 1 s).
async fn accepts(ip: Ipv4Addr, port: u16) -> bool {
    let address = SocketAddr::new(IpAddr::V4(ip), port);
    matches!(
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(address)).await,
        Ok(Ok(_))
    )
}

/// Three nodes listen on 0.0.0.0 and are told, and reached, at 127.0.0.2:
/// Raft between them, a client, and the cluster's status all go through
/// the advertised address, and every listener answers elsewhere too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_listen_on_listen_host_and_are_reached_at_their_host() {
    let mut processes = NodeProcesses::new();
    let configs = write_configs(&processes, 3, |config| {
        config.listen_host = Some("0.0.0.0".into());
        // A password-less node keeps its client listeners on loopback
        // (protected mode, the next test); here they follow listen_host.
        config.protected_mode = false;
    });
    let table = &configs[0];

    // Phase 1: three processes form the cluster; their peers (controller
    // and data Raft) reach each other at 127.0.0.2 only.
    for node_id in 1..=3 {
        processes.start(node_id);
    }
    let seeds: Vec<String> = (1..=3)
        .map(|node_id| format!("{ADVERTISED}:{}", ports_of(table, node_id)[0].1))
        .collect();
    let seed_refs: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let client = Client::new(
        &seed_refs,
        ClientConfig {
            rpc_timeout: Duration::from_secs(2),
            operation_deadline: Duration::from_secs(30),
            ..ClientConfig::default()
        },
    )
    .expect("client");

    // Phase 2: a client at the advertised addresses writes and reads.
    let mut acknowledged = BTreeMap::new();
    write_keys(&client, "first", 0..20, &mut acknowledged).await;
    check_all(&client, &acknowledged, "through 127.0.0.2").await;

    // Phase 3: every listener of every node is bound to listen_host, not
    // to its host: it accepts at 127.0.0.3 too.
    for node_id in 1..=3 {
        for (name, port) in ports_of(table, node_id) {
            assert!(
                accepts(ELSEWHERE, port).await,
                "node {node_id}'s {name} listener (port {port}) does not accept at {ELSEWHERE}: \
                 it is not bound to listen_host 0.0.0.0\n{}",
                processes.log_of(node_id)
            );
        }
    }

    // Phase 4: the cluster tells the advertised addresses, never the
    // address it listens on.
    let status = wait_for(
        "a status naming all three nodes",
        Duration::from_secs(20),
        POLL,
        || {
            let seed = seeds[0].clone();
            async move {
                let mut admin = AdminClient::connect(format!("http://{seed}")).await.ok()?;
                let reply = admin.status(StatusRequest {}).await.ok()?.into_inner();
                let all_reachable =
                    reply.nodes.len() == 3 && reply.nodes.iter().all(|node| node.reachable);
                all_reachable.then_some(reply)
            }
        },
    )
    .await;
    for node in &status.nodes {
        let grpc_port = ports_of(table, node.node_id)[0].1;
        assert_eq!(
            node.grpc_addr,
            format!("{ADVERTISED}:{grpc_port}"),
            "node {}'s gRPC address as told",
            node.node_id
        );
        assert!(
            !node.replicas.is_empty(),
            "node {} lists no replica",
            node.node_id
        );
        for replica in &node.replicas {
            assert!(
                replica.peer_addr.starts_with(&format!("{ADVERTISED}:")),
                "node {}'s {} replica is told at {}",
                node.node_id,
                replica.role,
                replica.peer_addr
            );
        }
    }
}

/// Protected mode holds with listen_host: without a password the client
/// listeners bind loopback (127.0.0.1) only, while the peer listeners bind
/// listen_host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_mode_keeps_client_listeners_on_loopback_with_listen_host() {
    let mut processes = NodeProcesses::new();
    let configs = write_configs(&processes, 1, |config| {
        config.listen_host = Some("0.0.0.0".into());
    });
    let ports = ports_of(&configs[0], 1);
    processes.start(1);

    // Phase 1: the node serves its clients on 127.0.0.1.
    let grpc_port = ports[0].1;
    wait_for(
        "the gRPC listener on 127.0.0.1",
        Duration::from_secs(20),
        POLL,
        || async { accepts(Ipv4Addr::LOCALHOST, grpc_port).await.then_some(()) },
    )
    .await;

    // Phase 2: client ports answer on loopback only; peer ports on
    // listen_host.
    for (name, port) in ports {
        let client_listener = matches!(name, "grpc" | "resp" | "http");
        if client_listener {
            assert!(
                accepts(Ipv4Addr::LOCALHOST, port).await,
                "the {name} listener does not accept on 127.0.0.1"
            );
        }
        assert_eq!(
            accepts(ELSEWHERE, port).await,
            !client_listener,
            "the {name} listener at {ELSEWHERE}: a client listener must not accept there \
             (no password), a peer listener must (listen_host 0.0.0.0)\n{}",
            processes.log_of(1)
        );
    }
}

/// A password from the environment alone (`DISTCACHE_REQUIREPASS`, as a
/// Kubernetes Secret gives it) lifts protected mode: the client listeners
/// bind listen_host, and they ask for the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_from_the_environment_opens_the_client_listeners() {
    let mut processes = NodeProcesses::new();
    let configs = write_configs(&processes, 1, |config| {
        config.listen_host = Some("0.0.0.0".into());
    });
    let ports = ports_of(&configs[0], 1);
    processes.start_with_env(1, &[("DISTCACHE_REQUIREPASS", "from-a-secret")]);
    let grpc_port = ports[0].1;
    wait_for(
        "the gRPC listener at the advertised address",
        Duration::from_secs(20),
        POLL,
        || async { accepts(ELSEWHERE, grpc_port).await.then_some(()) },
    )
    .await;
    for (name, port) in ports {
        assert!(
            accepts(ELSEWHERE, port).await,
            "the {name} listener does not accept at {ELSEWHERE}\n{}",
            processes.log_of(1)
        );
    }
    let addr = format!("{ELSEWHERE}:{grpc_port}");
    let set = |password: &str| {
        Command::new(BINARY)
            .args(["set", "--addr", &addr, "--password", password, "k", "v"])
            .output()
            .expect("run distcache")
    };
    wait_for(
        "a write with the password",
        Duration::from_secs(20),
        POLL,
        || async { set("from-a-secret").status.success().then_some(()) },
    )
    .await;
    let refused = set("a-wrong-one");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "served with a wrong password");
    assert!(stderr.to_lowercase().contains("password"), "{stderr}");
}

/// `DISTCACHE_LISTEN_HOST` and `--listen-host` set `listen_host` (the flag
/// wins); a value that is no IP address is refused before the node starts,
/// naming the field.
#[test]
fn listen_host_comes_from_the_environment_and_flags_and_is_checked() {
    let processes = NodeProcesses::new();
    write_configs(&processes, 1, |_| {});
    let print = |environment: Option<&str>, flag: Option<&str>| {
        let mut command = Command::new(BINARY);
        command
            .args(["node", "--print-config", "--config"])
            .arg(processes.config_path(1))
            .env_remove("DISTCACHE_LISTEN_HOST");
        if let Some(value) = environment {
            command.env("DISTCACHE_LISTEN_HOST", value);
        }
        if let Some(value) = flag {
            command.args(["--listen-host", value]);
        }
        command.output().expect("run distcache")
    };

    let from_file = print(None, None);
    assert!(from_file.status.success());
    assert!(
        !String::from_utf8_lossy(&from_file.stdout).contains("listen_host"),
        "the file sets no listen_host"
    );

    let from_environment = print(Some("0.0.0.0"), None);
    let text = String::from_utf8_lossy(&from_environment.stdout);
    assert!(from_environment.status.success(), "{text}");
    assert!(text.contains("listen_host = \"0.0.0.0\""), "{text}");
    assert!(text.contains(&format!("host = \"{ADVERTISED}\"")), "{text}");

    let from_flag = print(Some("0.0.0.0"), Some("::"));
    let text = String::from_utf8_lossy(&from_flag.stdout);
    assert!(from_flag.status.success(), "{text}");
    assert!(text.contains("listen_host = \"::\""), "{text}");

    let refused = print(Some("distcache-g1-0"), None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "configuration error in `listen_host`: \"distcache-g1-0\" is not an IP address"
        ),
        "{stderr}"
    );
}
