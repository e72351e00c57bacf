//! Scaling by groups with real `distcache node` processes, the sequence the
//! Kubernetes manifests run (deploy/README.md), without Kubernetes: the
//! controller on its own nodes (like the `distcache-ctrl` StatefulSet),
//! data group 1 on three more; keys written; group 2 started and joined
//! with `distcache admin join` (what deploy/docker/join.sh runs); shards
//! must move to it and every acknowledged key stay readable; then
//! `distcache admin leave --gid 1`, drained (no shard on group 1, group 2
//! caught up with the latest configuration), every key read, and only then
//! group 1's processes stopped: every key must still be readable from
//! group 2 alone.

#![cfg(not(madsim))]

mod support;

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use distcache_client::proto::admin_client::AdminClient;
use distcache_client::proto::{StatusReply, StatusRequest};
use distcache_client::{Client, ClientConfig};
use support::keys::{check_all, wait_for, write_keys};
use support::processes::NodeProcesses;
use testkit::ports::free_ports;

/// Generous: the machine running the tests may be busy.
const STEP_TIMEOUT: Duration = Duration::from_secs(90);

/// One node of the table: id, gRPC port, and either a controller port or
/// (group, data port).
#[derive(Clone, Copy)]
struct Entry {
    id: u64,
    grpc: u16,
    controller: Option<u16>,
    data: Option<(u64, u16)>,
}

impl Entry {
    fn toml(&self) -> String {
        let mut text = format!(
            "[[nodes]]\nid = {}\nhost = \"127.0.0.1\"\ngrpc_port = {}\n",
            self.id, self.grpc
        );
        if let Some(port) = self.controller {
            text.push_str(&format!("controller_port = {port}\n"));
        }
        if let Some((gid, port)) = self.data {
            text.push_str(&format!("group = {gid}\ndata_port = {port}\n"));
        }
        text.push('\n');
        text
    }
}

struct Cluster {
    processes: NodeProcesses,
    entries: Vec<Entry>,
}

impl Cluster {
    fn new() -> Cluster {
        // Nodes 1-3: controller; 4-6: group 1; 7-9: group 2.
        let ports = free_ports(18);
        let entries = (0..9)
            .map(|index| {
                let id = index as u64 + 1;
                let peer = ports[9 + index];
                Entry {
                    id,
                    grpc: ports[index],
                    controller: (id <= 3).then_some(peer),
                    data: (id > 3).then_some((if id <= 6 { 1 } else { 2 }, peer)),
                }
            })
            .collect();
        Cluster {
            processes: NodeProcesses::new(),
            entries,
        }
    }

    fn entry(&self, id: u64) -> Entry {
        self.entries[(id - 1) as usize]
    }

    fn grpc(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.entry(id).grpc)
    }

    fn data_peers(&self, gid: u64) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|entry| match entry.data {
                Some((group, port)) if group == gid => Some(format!("127.0.0.1:{port}")),
                _ => None,
            })
            .collect()
    }

    /// Writes node `id`'s file: the controller and groups up to `max_gid`
    /// (a node of a group added later lists it; the first nodes do not, so
    /// the controller's bootstrap joins group 1 only, as in Kubernetes).
    fn start(&mut self, id: u64, max_gid: u64) {
        let table: String = self
            .entries
            .iter()
            .filter(|entry| entry.data.is_none_or(|(gid, _)| gid <= max_gid))
            .map(Entry::toml)
            .collect();
        let text = format!(
            "cluster_id = \"scaling\"\nnode_id = {id}\ndata_dir = {:?}\nrequest_timeout_ms = 3000\n\n{table}",
            self.processes.data_dir(id)
        );
        self.processes.write_config(id, &text);
        self.processes.start(id);
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(&mut self, id: u64) {
        let exit = self.processes.terminate(id, Duration::from_secs(20)).await;
        assert!(exit.success(), "node {id} exited with {exit}");
    }

    /// The `distcache` command line against node `via`.
    fn cli(&self, via: u64, args: &[&str]) -> Output {
        NodeProcesses::cli(&self.grpc(via), args)
    }

    fn client(&self, ids: &[u64]) -> Client {
        let seeds: Vec<String> = ids.iter().map(|id| self.grpc(*id)).collect();
        let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
        Client::new(
            &seeds,
            ClientConfig {
                rpc_timeout: Duration::from_secs(3),
                operation_deadline: STEP_TIMEOUT,
                ..ClientConfig::default()
            },
        )
        .expect("client")
    }
}

async fn status(cluster: &Cluster, via: u64) -> Option<StatusReply> {
    let mut admin = AdminClient::connect(format!("http://{}", cluster.grpc(via)))
        .await
        .ok()?;
    Some(admin.status(StatusRequest {}).await.ok()?.into_inner())
}

async fn wait_for_step<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    wait_for(what, STEP_TIMEOUT, Duration::from_millis(200), check).await
}

/// The status once no shard is owned by a group outside `gids` and every
/// data replica of `gids` on a reachable node has applied the controller's
/// latest configuration (its migrations for it are over).
async fn settled(cluster: &Cluster, via: u64, gids: &[u64]) -> Option<StatusReply> {
    let reply = status(cluster, via).await?;
    if reply.shard_owners.iter().any(|gid| !gids.contains(gid)) {
        return None;
    }
    let mut replicas = 0;
    for node in &reply.nodes {
        for replica in &node.replicas {
            if replica.role == "data" && gids.contains(&replica.gid) {
                if !node.reachable || replica.config_num != reply.config_num {
                    return None;
                }
                replicas += 1;
            }
        }
    }
    (replicas == 3 * gids.len()).then_some(reply)
}

fn succeeded(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_a_group_then_drain_and_remove_the_first() {
    let mut cluster = Cluster::new();
    let shard_count = 10;

    // 1. Controller and group 1 (the `small` overlay); keys written.
    for id in 1..=6 {
        cluster.start(id, 1);
    }
    let first = wait_for_step("group 1 serving every shard", || settled(&cluster, 1, &[1])).await;
    assert_eq!(first.shard_owners, vec![1; shard_count]);
    let mut acked = BTreeMap::new();
    write_keys(&cluster.client(&[1, 2, 3]), "one", 0..60, &mut acked).await;

    // 2. Group 2 starts and is joined, as the join Job does it.
    for id in 7..=9 {
        cluster.start(id, 2);
    }
    let peers = cluster.data_peers(2).join(",");
    let out = cluster.cli(1, &["admin", "join", "--gid", "2", "--peers", &peers]);
    succeeded(&out, "distcache admin join");
    let joined = wait_for_step("shards moved to group 2", || settled(&cluster, 7, &[1, 2])).await;
    let on =
        |reply: &StatusReply, gid: u64| reply.shard_owners.iter().filter(|g| **g == gid).count();
    assert_eq!(on(&joined, 1), shard_count / 2, "{:?}", joined.shard_owners);
    assert_eq!(on(&joined, 2), shard_count / 2, "{:?}", joined.shard_owners);
    let everyone = cluster.client(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    check_all(&everyone, &acked, "after group 2 joined").await;
    write_keys(&everyone, "two", 0..60, &mut acked).await;

    // `distcache status` shows the two groups.
    let text = succeeded(&cluster.cli(7, &["status"]), "distcache status");
    let groups = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with("group "))
            .map(|line| line.split("  ").next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(groups(&text), ["group 1", "group 2"], "{text}");

    // 3. Group 1 leaves; drained before its processes go.
    let out = cluster.cli(1, &["admin", "leave", "--gid", "1"]);
    succeeded(&out, "distcache admin leave");
    let drained = wait_for_step("group 1 drained", || settled(&cluster, 7, &[2])).await;
    assert_eq!(drained.shard_owners, vec![2; shard_count]);
    check_all(&everyone, &acked, "after group 1 left").await;
    let text = succeeded(&cluster.cli(7, &["status"]), "distcache status");
    assert_eq!(groups(&text), ["group 2"], "{text}");
    for id in 4..=6 {
        cluster.stop(id).await;
    }

    // 4. Group 1 is gone: every key from group 2 alone, and writes go on.
    let remaining = cluster.client(&[1, 2, 3, 7, 8, 9]);
    check_all(&remaining, &acked, "with group 1's processes stopped").await;
    write_keys(&remaining, "three", 0..60, &mut acked).await;
    check_all(&remaining, &acked, "after the last writes").await;
}
