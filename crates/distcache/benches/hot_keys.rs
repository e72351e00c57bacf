#![cfg_attr(madsim, allow(unused))]
//! Hot keys, the near cache and reads from any replica (issue 22): a Zipf
//! 1.2 read-mostly load from `TASKS` application instances (each its own
//! `distcache-client`), once with plain reads (every read a linearizable
//! read on the owning group's leader), once with each client's near
//! cache, and once with `read_from = AnyReplica` (linearizable reads the
//! group's followers answer too), on the demo's shape (3 groups x 3
//! replicas, real gRPC and disks, in this process).
//!
//! ```text
//! cargo bench -p distcache --bench hot_keys
//! KEYS=1000000 LOADED=100000 TASKS=32 SECONDS=10 cargo bench -p distcache --bench hot_keys
//! ```
//!
//! Keys are ranks of Zipf(`KEYS`, 1.2) (rank 0 the hottest); the first
//! `LOADED` ranks are written (100-byte values) before the runs, the rest
//! are read as absent, which is still a read of the owning group. Each of
//! `TASKS` tasks runs its own seeded trace for `SECONDS`: 99 reads to 1
//! write (a SET of a key of the same trace, so hot keys are written too
//! and their invalidations travel). Printed per mode: operations per
//! second, p50/p99 latency, the requests that reached the cluster (all of
//! them without the near cache; misses and writes with it), those that
//! reached the hottest key's group, and this process's CPU time per
//! thousand operations (client and all nine replicas: they share it).
//! For the replica-reads mode also: how many of the hot group's reads its
//! followers answered (their `distcache_follower_reads_total`), which is
//! the load taken off its leader. A fourth mode reads from any replica
//! with answers at most 100 ms old (`ReadFrom::AnyReplicaWithin`), where a
//! follower reuses a read index for 100 ms instead of asking each time.
//!
//! With `PROCESSES=1` the nine nodes are real `distcache node` processes
//! (the release binary of this build), so each node's CPU is its own: the
//! run then also prints the CPU of the node leading the hottest key's
//! group (found from `/v1/cluster` before and after each mode), which is
//! what hot-key mitigation is meant to spare, and the CPU of all nodes.
//!
//! ```text
//! PROCESSES=1 cargo bench -p distcache --bench hot_keys
//! ```

#[cfg(not(madsim))]
#[path = "../tests/support/mod.rs"]
mod support;

#[cfg(not(madsim))]
#[tokio::main(flavor = "multi_thread")]
async fn main() {
    bench::run().await;
}

/// The benchmark measures real gRPC; it does not run under simulation.
#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
mod bench {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use distcache::config::NodeConfig;
    use distcache_client::{Client, ClientConfig, NearConfig, ReadFrom};
    use labrpc::runtime::now;

    use super::support::cluster::TestCluster;
    use super::support::processes::NodeProcesses;

    /// Whether a key belongs to the hottest key's group.
    type InHotGroup = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

    const EXPONENT: f64 = 1.2;
    const VALUE_BYTES: usize = 100;
    /// One operation in this many is a write.
    const WRITE_EVERY: usize = 100;
    /// The staleness bound of the fourth mode.
    const BOUND: Duration = Duration::from_millis(100);

    fn env(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    }

    fn key(rank: u64) -> Vec<u8> {
        format!("key:{rank}").into_bytes()
    }

    /// The nodes, in this process or as processes of their own.
    enum Nodes {
        InProcess(TestCluster),
        Processes(NodeProcesses),
    }

    /// The nine nodes, their configurations (the same `[[nodes]]` table
    /// in each) and, for processes, each node's process id.
    struct Cluster {
        nodes: Nodes,
        configs: Vec<NodeConfig>,
        pids: BTreeMap<u64, u32>,
    }

    impl Cluster {
        async fn start(processes: bool) -> Cluster {
            let builder = TestCluster::builder()
                .groups(3)
                .replicas(3)
                .ready_timeout(Duration::from_secs(120));
            if !processes {
                let cluster = builder.start().await;
                let configs = cluster.configs.clone();
                return Cluster {
                    nodes: Nodes::InProcess(cluster),
                    configs,
                    pids: BTreeMap::new(),
                };
            }
            let mut processes = NodeProcesses::new();
            let configs = builder.configs(processes.dir.path());
            for config in &configs {
                processes.write_config(config.node_id, &config.to_toml());
                processes.start(config.node_id);
            }
            let pids = processes
                .children
                .iter()
                .map(|(&node, child)| (node, child.id()))
                .collect();
            let cluster = Cluster {
                nodes: Nodes::Processes(processes),
                configs,
                pids,
            };
            for (node, http) in cluster.http_addrs() {
                super::support::keys::wait_for(
                    "every node ready",
                    Duration::from_secs(120),
                    Duration::from_millis(200),
                    || async move {
                        let connected = tokio::net::TcpStream::connect(http).await.is_ok();
                        (connected
                            && super::support::http::request(
                                http,
                                "GET",
                                "/readyz",
                                None,
                                Vec::new(),
                            )
                            .await
                            .status
                                == 200)
                            .then_some(())
                    },
                )
                .await;
                println!("node {node} ready");
            }
            cluster
        }

        fn grpc_seeds(&self) -> Vec<String> {
            self.configs[0]
                .nodes
                .iter()
                .map(|entry| format!("{}:{}", entry.host, entry.grpc_port))
                .collect()
        }

        fn http_addrs(&self) -> Vec<(u64, SocketAddr)> {
            self.configs[0]
                .nodes
                .iter()
                .filter_map(|entry| {
                    let port = entry.http_port?;
                    Some((entry.id, format!("{}:{port}", entry.host).parse().ok()?))
                })
                .collect()
        }

        /// The nodes hosting a replica of data group `gid`.
        fn group_nodes(&self, gid: u64) -> Vec<u64> {
            self.configs[0]
                .nodes
                .iter()
                .filter(|entry| entry.group == Some(gid))
                .map(|entry| entry.id)
                .collect()
        }

        /// `/v1/cluster` as node 1 answers it.
        async fn view(&self) -> serde_json::Value {
            let (_, http) = self.http_addrs()[0];
            super::support::http::request(http, "GET", "/v1/cluster", None, Vec::new())
                .await
                .json()
        }

        /// The node whose data replica leads group `gid`, if one does.
        async fn leader_of(&self, gid: u64) -> Option<u64> {
            let view = self.view().await;
            view["nodes"].as_array()?.iter().find_map(|node| {
                let leads = node["replicas"].as_array()?.iter().any(|replica| {
                    replica["role"] == "data"
                        && replica["gid"] == gid
                        && replica["is_leader"] == true
                });
                leads.then(|| node["node_id"].as_u64()).flatten()
            })
        }

        /// CPU time of each node process so far (empty in process).
        fn node_cpu(&self) -> BTreeMap<u64, Duration> {
            self.pids
                .iter()
                .map(|(&node, &pid)| (node, cpu_time(&format!("/proc/{pid}/stat"))))
                .collect()
        }

        async fn shutdown(self) {
            match self.nodes {
                Nodes::InProcess(cluster) => cluster.shutdown().await,
                Nodes::Processes(processes) => drop(processes),
            }
        }
    }

    /// A process's CPU time (user + system) from its `stat` file.
    fn cpu_time(stat_path: &str) -> Duration {
        let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
        // Fields after the command's closing parenthesis; utime and stime
        // are the 12th and 13th of them, in clock ticks (100 per second).
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |index: usize| {
            fields
                .get(index)
                .and_then(|field| field.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Duration::from_millis((ticks(11) + ticks(12)) * 10)
    }

    struct Measured {
        operations: u64,
        to_cluster: u64,
        to_hot_group: u64,
        latencies: Vec<Duration>,
        /// This process's CPU (with `PROCESSES=1`, the clients' alone).
        cpu: Duration,
        /// CPU of each node process (empty in process).
        node_cpu: BTreeMap<u64, Duration>,
        /// The node leading the hottest key's group, before and after.
        hot_leader: (Option<u64>, Option<u64>),
        elapsed: Duration,
    }

    /// Runs the load, trace `i` on `clients[i]`; `hot_group(key)` says
    /// whether a key belongs to the hottest key's group.
    async fn run_load(
        cluster: &Cluster,
        hot_gid: u64,
        clients: &[Client],
        traces: &[Vec<u64>],
        seconds: u64,
        hot_group: InHotGroup,
    ) -> Measured {
        let to_hot_group = Arc::new(AtomicU64::new(0));
        let leader_before = cluster.leader_of(hot_gid).await;
        let node_cpu_before = cluster.node_cpu();
        let cpu_before = cpu_time("/proc/self/stat");
        let started = now();
        let until = started + Duration::from_secs(seconds);
        let tasks = traces.iter().cloned().zip(clients).map(|(trace, client)| {
            let client = client.clone();
            let hot_group = Arc::clone(&hot_group);
            let to_hot_group = Arc::clone(&to_hot_group);
            tokio::spawn(async move {
                let value = vec![b'v'; VALUE_BYTES];
                let mut latencies = Vec::new();
                let mut sent = 0u64;
                for (index, rank) in trace.iter().cycle().enumerate() {
                    if now() >= until {
                        break;
                    }
                    let key = key(*rank);
                    let write = index % WRITE_EVERY == WRITE_EVERY - 1;
                    let misses = client.near_stats().map(|stats| stats.misses);
                    let began = now();
                    if write {
                        client.set(&key, &value).await.expect("set");
                    } else {
                        client.get(&key).await.expect("get");
                    }
                    latencies.push(began.elapsed());
                    // Whether this operation reached the cluster: always
                    // without a near cache; with one (this task's alone), a
                    // write or a miss.
                    let reached = write
                        || misses.is_none()
                        || client.near_stats().map(|stats| stats.misses) != misses;
                    if reached {
                        sent += 1;
                        if hot_group(&key) {
                            to_hot_group.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                (latencies, sent)
            })
        });
        let mut latencies = Vec::new();
        let mut counted = 0;
        for task in futures::future::join_all(tasks).await {
            let (task_latencies, sent) = task.expect("load task");
            latencies.extend(task_latencies);
            counted += sent;
        }
        let elapsed = started.elapsed();
        let cpu = cpu_time("/proc/self/stat").saturating_sub(cpu_before);
        let node_cpu = cluster
            .node_cpu()
            .into_iter()
            .map(|(node, total)| {
                let before = node_cpu_before.get(&node).copied().unwrap_or_default();
                (node, total.saturating_sub(before))
            })
            .collect();
        let leader_after = cluster.leader_of(hot_gid).await;
        latencies.sort();
        Measured {
            operations: latencies.len() as u64,
            to_cluster: counted,
            to_hot_group: to_hot_group.load(Ordering::Relaxed),
            latencies,
            cpu,
            node_cpu,
            hot_leader: (leader_before, leader_after),
            elapsed,
        }
    }

    fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
        let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
        sorted[index.min(sorted.len().saturating_sub(1))]
    }

    fn report(name: &str, measured: &Measured) -> f64 {
        let seconds = measured.elapsed.as_secs_f64();
        let throughput = measured.operations as f64 / seconds;
        println!(
            "{name:<12} {:>9.0} ops/s  p50 {:>8.1} us  p99 {:>8.1} us  to cluster {:>8.0}/s  \
             to the hot key's group {:>8.0}/s  cpu {:>6.1} ms per 1000 ops",
            throughput,
            percentile(&measured.latencies, 0.50).as_secs_f64() * 1e6,
            percentile(&measured.latencies, 0.99).as_secs_f64() * 1e6,
            measured.to_cluster as f64 / seconds,
            measured.to_hot_group as f64 / seconds,
            measured.cpu.as_secs_f64() * 1e3 / (measured.operations.max(1) as f64 / 1e3),
        );
        if !measured.node_cpu.is_empty() {
            let per_1000 =
                |cpu: Duration| cpu.as_secs_f64() * 1e3 / (measured.operations.max(1) as f64 / 1e3);
            let nodes: Duration = measured.node_cpu.values().sum();
            let (before, after) = measured.hot_leader;
            let leader = match (before, after) {
                (Some(node), Some(after)) if node == after => format!(
                    "node {node}: {:.1} ms per 1000 ops, {:.0}% of a core",
                    per_1000(measured.node_cpu.get(&node).copied().unwrap_or_default()),
                    100.0
                        * measured
                            .node_cpu
                            .get(&node)
                            .copied()
                            .unwrap_or_default()
                            .as_secs_f64()
                        / seconds
                ),
                _ => format!("changed during the run ({before:?} -> {after:?}): not counted"),
            };
            println!(
                "{:<12} hot group's leader {leader}; all nodes {:.1} ms per 1000 ops, {:.0}% of a core",
                "",
                per_1000(nodes),
                100.0 * nodes.as_secs_f64() / seconds,
            );
        }
        throughput
    }

    /// The nodes' CPU over 5 idle seconds, in cores (`None` in process).
    async fn idle_node_cpu(cluster: &Cluster) -> Option<f64> {
        let before = cluster.node_cpu();
        if before.is_empty() {
            return None;
        }
        let started = now();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let spent: Duration = cluster
            .node_cpu()
            .iter()
            .map(|(node, total)| {
                total.saturating_sub(before.get(node).copied().unwrap_or_default())
            })
            .sum();
        Some(spent.as_secs_f64() / started.elapsed().as_secs_f64())
    }

    /// `distcache_follower_reads_total` summed over the nodes whose data
    /// replica is in group `gid`.
    async fn hot_group_follower_reads(cluster: &Cluster, gid: u64) -> f64 {
        let mut total = 0.0;
        let in_group = cluster.group_nodes(gid);
        for (node, http) in cluster.http_addrs() {
            if !in_group.contains(&node) {
                continue;
            }
            let metrics = super::support::http::request(http, "GET", "/metrics", None, Vec::new())
                .await
                .text();
            total += metrics
                .lines()
                .filter_map(|line| line.strip_prefix("distcache_follower_reads_total "))
                .filter_map(|value| value.trim().parse::<f64>().ok())
                .sum::<f64>();
        }
        total
    }

    pub async fn run() {
        let keys = env("KEYS", 1_000_000);
        let loaded = env("LOADED", 100_000).min(keys);
        let tasks = env("TASKS", 32) as usize;
        let seconds = env("SECONDS", 10);
        let cluster = Cluster::start(env("PROCESSES", 0) != 0).await;
        let seeds = cluster.grpc_seeds();
        let seed_refs: Vec<&str> = seeds.iter().map(String::as_str).collect();
        let plain = Client::new(&seed_refs, ClientConfig::default()).expect("client");
        // One client per application instance; the near-cache clients
        // open their streams on the nodes in turn.
        let clients = |near: bool, read_from: ReadFrom| -> Vec<Client> {
            (0..tasks)
                .map(|task| {
                    let mut seeds = seed_refs.clone();
                    seeds.rotate_left(task % seed_refs.len());
                    let config = ClientConfig {
                        near_cache: near.then(NearConfig::default),
                        read_from,
                        ..ClientConfig::default()
                    };
                    Client::new(&seeds, config).expect("client")
                })
                .collect()
        };

        // Load the first `loaded` ranks, 64 writers at a time.
        let load_started = now();
        let value = vec![b'v'; VALUE_BYTES];
        let writers = (0..64u64).map(|writer| {
            let plain = plain.clone();
            let value = value.clone();
            tokio::spawn(async move {
                let mut rank = writer;
                while rank < loaded {
                    plain.set(&key(rank), &value).await.expect("load");
                    rank += 64;
                }
            })
        });
        for writer in futures::future::join_all(writers).await {
            writer.expect("loader");
        }
        println!(
            "loaded {loaded} of {keys} keys in {:.1} s; Zipf {EXPONENT}, {tasks} tasks, {seconds} s per mode, \
             1 write per {WRITE_EVERY} operations",
            load_started.elapsed().as_secs_f64()
        );

        // The hottest key's group, by the cluster's shard map.
        let owners: Vec<u64> = cluster.view().await["shards"]
            .as_array()
            .expect("/v1/cluster names the shards' owners")
            .iter()
            .map(|owner| owner.as_u64().expect("a group id"))
            .collect();
        let hot_gid = owners[shardkv::key_to_shard(&key(0), owners.len())];
        let hot_group: InHotGroup =
            Arc::new(move |key: &[u8]| owners[shardkv::key_to_shard(key, owners.len())] == hot_gid);
        let hot_share = cache::workload::Zipf::new(keys, EXPONENT).probability(0);
        println!("the hottest key (rank 0, p = {hot_share:.3}) is in group {hot_gid}");

        let traces: Vec<Vec<u64>> = (0..tasks)
            .map(|task| cache::workload::zipf_trace(keys, EXPONENT, 200_000, 1 + task as u64))
            .collect();
        let plain_clients = clients(false, ReadFrom::Leader);
        let near_clients = clients(true, ReadFrom::Leader);
        let replica_clients = clients(false, ReadFrom::AnyReplica);
        let bounded_clients = clients(false, ReadFrom::AnyReplicaWithin(BOUND));
        // Warm every client's connections and routing (and open the near
        // caches' streams); with node processes, the nodes' CPU while idle
        // before and after (what open streams cost without any load).
        let idle_before = idle_node_cpu(&cluster).await;
        for client in plain_clients
            .iter()
            .chain(&near_clients)
            .chain(&replica_clients)
            .chain(&bounded_clients)
        {
            for rank in 0..20 {
                client.get(&key(rank)).await.expect("warm-up");
            }
        }
        let idle_after = idle_node_cpu(&cluster).await;
        if let (Some(before), Some(after)) = (idle_before, idle_after) {
            println!(
                "idle nodes: {:.1}% of a core before the clients connected, {:.1}% with their \
                 connections and the near caches' streams open",
                before * 100.0,
                after * 100.0
            );
        }
        let without = run_load(
            &cluster,
            hot_gid,
            &plain_clients,
            &traces,
            seconds,
            Arc::clone(&hot_group),
        )
        .await;
        let with = run_load(
            &cluster,
            hot_gid,
            &near_clients,
            &traces,
            seconds,
            Arc::clone(&hot_group),
        )
        .await;
        let followers_before = hot_group_follower_reads(&cluster, hot_gid).await;
        let spread = run_load(
            &cluster,
            hot_gid,
            &replica_clients,
            &traces,
            seconds,
            Arc::clone(&hot_group),
        )
        .await;
        let followers_answered =
            hot_group_follower_reads(&cluster, hot_gid).await - followers_before;
        let followers_before = hot_group_follower_reads(&cluster, hot_gid).await;
        let bounded = run_load(
            &cluster,
            hot_gid,
            &bounded_clients,
            &traces,
            seconds,
            hot_group,
        )
        .await;
        let followers_answered_bounded =
            hot_group_follower_reads(&cluster, hot_gid).await - followers_before;
        let plain_rate = report("plain", &without);
        let near_rate = report("near cache", &with);
        let spread_rate = report("any replica", &spread);
        let bounded_rate = report("any replica, <= 100 ms old", &bounded);
        for (mode, measured, answered, rate) in [
            ("any replica", &spread, followers_answered, spread_rate),
            (
                "any replica, <= 100 ms old",
                &bounded,
                followers_answered_bounded,
                bounded_rate,
            ),
        ] {
            let hot_reads = measured.to_hot_group - measured.to_hot_group / WRITE_EVERY as u64;
            println!(
                "{mode}: the hot group's followers answered {answered:.0} of about {hot_reads} \
                 reads of its keys ({:.0}%); throughput {:.2}x plain, cpu per operation {:.2}x plain",
                100.0 * answered / hot_reads.max(1) as f64,
                rate / plain_rate,
                (measured.cpu.as_secs_f64() / measured.operations.max(1) as f64)
                    / (without.cpu.as_secs_f64() / without.operations.max(1) as f64).max(1e-12),
            );
        }

        let stats = near_clients.iter().filter_map(Client::near_stats).fold(
            distcache_client::NearStats::default(),
            |sum, one| distcache_client::NearStats {
                hits: sum.hits + one.hits,
                misses: sum.misses + one.misses,
                invalidations: sum.invalidations + one.invalidations,
                flushes: sum.flushes + one.flushes,
                entries: sum.entries + one.entries,
                bytes: sum.bytes + one.bytes,
            },
        );
        println!(
            "near cache: {} hits, {} misses ({:.1}% hits), {} invalidations, {} flushes, {} entries, {} bytes",
            stats.hits,
            stats.misses,
            100.0 * stats.hits as f64 / (stats.hits + stats.misses).max(1) as f64,
            stats.invalidations,
            stats.flushes,
            stats.entries,
            stats.bytes
        );
        let per_second =
            |measured: &Measured, count: u64| count as f64 / measured.elapsed.as_secs_f64();
        println!(
            "ratios (near cache / plain): throughput {:.2}x, requests to the hot key's group {:.3}x, \
             cpu per operation {:.2}x",
            near_rate / plain_rate,
            per_second(&with, with.to_hot_group)
                / per_second(&without, without.to_hot_group).max(1e-9),
            (with.cpu.as_secs_f64() / with.operations.max(1) as f64)
                / (without.cpu.as_secs_f64() / without.operations.max(1) as f64).max(1e-12),
        );
        cluster.shutdown().await;
    }
}
