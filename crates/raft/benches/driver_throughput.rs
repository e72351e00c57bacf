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
mod driver_common;

#[cfg(not(madsim))]
mod bench {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use raft::node::RaftNode;

    use crate::driver_common::{
        COMMAND_SIZE_BYTES, Proposal, Waiters, percentile, process_cpu_time, propose_and_wait,
        start_group,
    };

    /// One closed-loop proposer: returns its latencies.
    async fn proposer(
        node: RaftNode,
        waiters: Arc<std::sync::Mutex<Waiters>>,
        stop: Arc<AtomicBool>,
        commits: Arc<AtomicU64>,
        measuring: Arc<AtomicBool>,
    ) -> Vec<Duration> {
        let mut latencies = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let began = Instant::now();
            match propose_and_wait(&node, &waiters, vec![7; COMMAND_SIZE_BYTES]).await {
                Proposal::Applied => {}
                Proposal::Refused => {
                    // Too many uncommitted entries, or leadership moved.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                Proposal::Stopped => break,
            }
            if measuring.load(Ordering::Relaxed) {
                latencies.push(began.elapsed());
                commits.fetch_add(1, Ordering::Relaxed);
            }
        }
        latencies
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
