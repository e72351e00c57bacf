//! Throughput of the whole node driver: three [`RaftNode`]s in one process
//! (their event loops, RPC tasks and apply channels on a 2-thread tokio
//! runtime), requests delivered in memory by [`LocalNetwork`], logs in
//! [`MemoryStorage`]. `P` closed-loop proposers each call `start` on the
//! leader, wait until the leader's service has applied that index, and
//! propose again. Prints commits/s and p50/p99 commit latency (from
//! `start` to the apply on the leader) for P = 1, 64, 256, 1024.
//!
//! ```text
//! cargo bench -p raft --bench driver_throughput
//! BENCH_SECS=5 BENCH_PROPOSERS=64,256 BENCH_THREADS=1 cargo bench -p raft --bench driver_throughput
//! ```
//!
//! Every node's service counts what it applies and snapshots every
//! `SNAPSHOT_EVERY` entries, so the logs stay bounded as a real service's
//! would.

// A benchmark measures real elapsed time, which the lints ban elsewhere.
#![allow(clippy::disallowed_methods)]

#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
fn main() {
    bench::main();
}

#[cfg(not(madsim))]
mod bench {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use raft::node::{ApplyMsg, LocalNetwork, NodeConfig, RaftNode};
    use raft::storage::MemoryStorage;
    use tokio::sync::{mpsc, oneshot};

    const GROUP_SIZE: usize = 3;
    const COMMAND_SIZE_BYTES: usize = 16;
    const SNAPSHOT_EVERY: u64 = 10_000;

    /// Proposers waiting for their index to be applied on the leader.
    #[derive(Default)]
    struct Waiters {
        applied_index: u64,
        waiting: BTreeMap<u64, oneshot::Sender<()>>,
    }

    struct Group {
        nodes: Vec<RaftNode>,
        leader: usize,
        waiters: Vec<Arc<Mutex<Waiters>>>,
    }

    /// A node's service: applies in order, wakes proposers, snapshots.
    async fn apply_loop(
        node: RaftNode,
        mut applies: mpsc::Receiver<ApplyMsg>,
        waiters: Arc<Mutex<Waiters>>,
    ) {
        let mut count: u64 = 0;
        while let Some(message) = applies.recv().await {
            let index = match message {
                ApplyMsg::Command { index, command, .. } => {
                    assert_eq!(command.len(), COMMAND_SIZE_BYTES, "bench commands only");
                    count += 1;
                    index
                }
                ApplyMsg::Snapshot { index, data, .. } => {
                    count = u64::from_le_bytes(data.try_into().expect("8-byte snapshot"));
                    index
                }
            };
            {
                let mut waiters = waiters.lock().unwrap();
                waiters.applied_index = index;
                while let Some(entry) = waiters.waiting.first_entry() {
                    if *entry.key() > index {
                        break;
                    }
                    let _ = entry.remove().send(());
                }
            }
            if index % SNAPSHOT_EVERY == 0 {
                node.snapshot(index, count.to_le_bytes().to_vec());
            }
        }
    }

    async fn start_group() -> Group {
        let network = LocalNetwork::new();
        // Unused by the local network, but NodeConfig numbers peers by them.
        let addrs = vec!["127.0.0.1:1".parse().unwrap(); GROUP_SIZE];
        let mut nodes = Vec::new();
        let mut waiters = Vec::new();
        for id in 0..GROUP_SIZE {
            let mut config = NodeConfig::new(id as u64, addrs.clone(), id as u64);
            // Node 0 campaigns first and wins; the others wait for it.
            if id == 0 {
                config.core.election_timeout_ticks_min = 11;
                config.core.election_timeout_ticks_max = 12;
            }
            let (node, applies) = RaftNode::make_with_transport(
                config,
                MemoryStorage::new(),
                Arc::new(network.clone()),
            )
            .await
            .expect("memory storage loads");
            network.register(id as u64, node.clone());
            let node_waiters = Arc::new(Mutex::new(Waiters::default()));
            tokio::spawn(apply_loop(node.clone(), applies, Arc::clone(&node_waiters)));
            nodes.push(node);
            waiters.push(node_waiters);
        }
        let started = Instant::now();
        let leader = loop {
            if let Some(leader) = nodes.iter().position(|n| n.state().1) {
                break leader;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no leader within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        Group {
            nodes,
            leader,
            waiters,
        }
    }

    /// One closed-loop proposer: returns its latencies.
    async fn proposer(
        node: RaftNode,
        waiters: Arc<Mutex<Waiters>>,
        stop: Arc<AtomicBool>,
        commits: Arc<AtomicU64>,
        measuring: Arc<AtomicBool>,
    ) -> Vec<Duration> {
        let mut latencies = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let began = Instant::now();
            let Some((index, _)) = node.start(vec![7; COMMAND_SIZE_BYTES]).await else {
                // Too many uncommitted entries, or leadership moved.
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            let applied = {
                let mut waiters = waiters.lock().unwrap();
                if waiters.applied_index >= index {
                    None
                } else {
                    let (sender, receiver) = oneshot::channel();
                    waiters.waiting.insert(index, sender);
                    Some(receiver)
                }
            };
            if let Some(applied) = applied
                && applied.await.is_err()
            {
                break;
            }
            if measuring.load(Ordering::Relaxed) {
                latencies.push(began.elapsed());
                commits.fetch_add(1, Ordering::Relaxed);
            }
        }
        latencies
    }

    /// CPU time this process has used (all threads), from /proc, so a run
    /// on a machine other work is loading can be judged by commits per
    /// CPU-second as well as per second. None where /proc is missing.
    fn process_cpu_time() -> Option<Duration> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // Fields 14 and 15 of stat(5) (utime, stime), in clock ticks of
        // 1/100 s, counted after the command name.
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[((sorted.len() as f64 - 1.0) * fraction) as usize]
    }

    async fn run(proposers: usize, warmup: Duration, measure: Duration) {
        let group = start_group().await;
        let leader = group.leader;
        let stop = Arc::new(AtomicBool::new(false));
        let measuring = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..proposers)
            .map(|_| {
                tokio::spawn(proposer(
                    group.nodes[leader].clone(),
                    Arc::clone(&group.waiters[leader]),
                    Arc::clone(&stop),
                    Arc::clone(&commits),
                    Arc::clone(&measuring),
                ))
            })
            .collect();
        tokio::time::sleep(warmup).await;
        let term_before = group.nodes[leader].state().0;
        measuring.store(true, Ordering::Relaxed);
        let began = Instant::now();
        let cpu_before = process_cpu_time();
        tokio::time::sleep(measure).await;
        measuring.store(false, Ordering::Relaxed);
        let elapsed = began.elapsed();
        let cpu = process_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        let committed = commits.load(Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.expect("proposer"));
        }
        latencies.sort_unstable();
        let (term_after, still_leader) = group.nodes[leader].state();
        assert!(
            still_leader && term_after == term_before,
            "leadership changed during the run (term {term_before} -> {term_after})"
        );
        let per_cpu_second = cpu
            .filter(|cpu| !cpu.is_zero())
            .map_or("?".to_string(), |cpu| {
                format!("{:.0}", committed as f64 / cpu.as_secs_f64())
            });
        let cpu_cores = cpu.map_or("?".to_string(), |cpu| {
            format!("{:.2}", cpu.as_secs_f64() / elapsed.as_secs_f64())
        });
        println!(
            "proposers {proposers:>5}: {:>9.0} commits/s   p50 {:>9.1?}   p99 {:>9.1?}   \
             {cpu_cores} cores busy   {per_cpu_second} commits/CPU-s",
            committed as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
        );
        for node in &group.nodes {
            node.kill();
        }
    }

    pub fn main() {
        let seconds: f64 = std::env::var("BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0);
        let proposer_counts: Vec<usize> = std::env::var("BENCH_PROPOSERS")
            .ok()
            .map(|s| s.split(',').map(|p| p.trim().parse().unwrap()).collect())
            .unwrap_or_else(|| vec![1, 64, 256, 1024]);
        let threads: usize = std::env::var("BENCH_THREADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("tokio runtime");
        println!(
            "3 RaftNodes in one process, {threads} runtime threads, LocalNetwork, MemoryStorage, \
             {COMMAND_SIZE_BYTES}-byte commands, {seconds} s per run"
        );
        for proposers in proposer_counts {
            runtime.block_on(run(
                proposers,
                Duration::from_millis(500),
                Duration::from_secs_f64(seconds),
            ));
        }
    }
}
