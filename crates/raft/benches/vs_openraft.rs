//! Our driver against openraft (the crates.io release), side by side in
//! one run and in the same shape: three nodes in one process on one
//! tokio runtime (2 worker threads by default), logs and state machines
//! in memory, requests delivered by direct calls, 16-byte commands, a
//! snapshot every 10 000 entries on every node. `P` closed-loop proposers
//! each submit a command to the leader, wait until the leader has applied
//! it, and submit again: ours through `RaftNode::start` and the service's
//! apply channel (as in `driver_throughput`), openraft's through
//! `Raft::client_write`, which answers after the apply. Each row starts a
//! fresh group of each, ours first; latency is from submitting to the
//! apply on the leader.
//!
//! ```text
//! cargo bench -p raft --features vs-openraft --bench vs_openraft
//! cargo bench -p raft --features vs-openraft --bench vs_openraft -- --smoke   # 0.3 s per row
//! BENCH_SECS=5 BENCH_PROPOSERS=64,256 BENCH_THREADS=2 \
//!     cargo bench -p raft --features vs-openraft --bench vs_openraft
//! ```
//!
//! The feature `vs-openraft` brings in openraft, which is slow to build,
//! so that the gate's builds need not compile it (crates/raft/Cargo.toml).
//!
//! Prints, per proposer count, commits/s, p50 and p99 for each, the cores
//! each kept busy (CPU-seconds of the process per second), the ratio ours
//! / openraft of commits/s, and the same ratio per CPU-second (on a
//! machine shared with other work the two runs of a row may get unequal
//! CPU). The
//! adapters for openraft are in `openraft_group/`; ours is the group of
//! `driver_common/`. Not built under madsim (openraft needs the real
//! tokio), where this is an empty program.

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
mod openraft_group;

#[cfg(not(madsim))]
mod bench {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use openraft::{Raft, ServerState};
    use raft::node::RaftNode;

    use crate::driver_common::{
        self, COMMAND_SIZE_BYTES, Proposal, Waiters, percentile, process_cpu_time,
    };
    use crate::openraft_group::{self, TypeConfig};

    #[derive(Clone, Copy)]
    enum System {
        Ours,
        Openraft,
    }

    enum Group {
        Ours(driver_common::Group),
        Openraft(openraft_group::Group),
    }

    /// What a proposer submits through: the leader of either group.
    #[derive(Clone)]
    enum Leader {
        Ours {
            node: RaftNode,
            waiters: Arc<Mutex<Waiters>>,
        },
        Openraft(Raft<TypeConfig>),
    }

    impl Group {
        async fn start(system: System) -> Group {
            match system {
                System::Ours => Group::Ours(driver_common::start_group().await),
                System::Openraft => Group::Openraft(openraft_group::start_group().await),
            }
        }

        fn leader(&self) -> Leader {
            match self {
                Group::Ours(group) => Leader::Ours {
                    node: group.nodes[group.leader].clone(),
                    waiters: Arc::clone(&group.waiters[group.leader]),
                },
                // openraft_group::start_group waits for node 0 to lead.
                Group::Openraft(group) => Leader::Openraft(group.rafts[0].clone()),
            }
        }

        /// `(term, whether the node leading at the start still leads)`,
        /// to check that no election disturbed a run.
        fn leader_term(&self) -> (u64, bool) {
            match self {
                Group::Ours(group) => group.nodes[group.leader].state(),
                Group::Openraft(group) => {
                    let metrics = group.rafts[0].metrics();
                    let metrics = metrics.borrow();
                    (metrics.current_term, metrics.state == ServerState::Leader)
                }
            }
        }

        async fn stop(self) {
            match self {
                Group::Ours(group) => {
                    for node in &group.nodes {
                        node.kill();
                    }
                }
                Group::Openraft(group) => {
                    for raft in &group.rafts {
                        raft.shutdown().await.expect("openraft node shuts down");
                    }
                }
            }
        }
    }

    impl Leader {
        async fn propose_and_wait(&self) -> Proposal {
            let command = vec![7; COMMAND_SIZE_BYTES];
            match self {
                Leader::Ours { node, waiters } => {
                    driver_common::propose_and_wait(node, waiters, command).await
                }
                Leader::Openraft(raft) => openraft_group::propose_and_wait(raft, command).await,
            }
        }
    }

    /// One closed-loop proposer: returns its latencies while measuring.
    async fn proposer(
        leader: Leader,
        stop: Arc<AtomicBool>,
        commits: Arc<AtomicU64>,
        measuring: Arc<AtomicBool>,
    ) -> Vec<Duration> {
        let mut latencies = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let began = Instant::now();
            match leader.propose_and_wait().await {
                Proposal::Applied => {}
                Proposal::Refused => {
                    // Too many uncommitted entries, or leadership moved
                    // (the run then fails its leadership check).
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

    /// One system's result for one proposer count.
    struct Measured {
        commits_per_second: f64,
        p50: Duration,
        p99: Duration,
        /// CPU-seconds the process used per second of the run, if known.
        cores_busy: Option<f64>,
    }

    async fn measure(
        system: System,
        proposers: usize,
        warmup: Duration,
        duration: Duration,
    ) -> Measured {
        let group = Group::start(system).await;
        let leader = group.leader();
        let stop = Arc::new(AtomicBool::new(false));
        let measuring = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..proposers)
            .map(|_| {
                tokio::spawn(proposer(
                    leader.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&commits),
                    Arc::clone(&measuring),
                ))
            })
            .collect();
        tokio::time::sleep(warmup).await;
        let term_before = group.leader_term().0;
        measuring.store(true, Ordering::Relaxed);
        let began = Instant::now();
        let cpu_before = process_cpu_time();
        tokio::time::sleep(duration).await;
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
        let (term_after, still_leader) = group.leader_term();
        assert!(
            still_leader && term_after == term_before,
            "leadership changed during the run (term {term_before} -> {term_after})"
        );
        group.stop().await;
        Measured {
            commits_per_second: committed as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
            cores_busy: cpu.map(|cpu| cpu.as_secs_f64() / elapsed.as_secs_f64()),
        }
    }

    impl Measured {
        fn cores(&self) -> String {
            self.cores_busy
                .map_or("?".to_string(), |cores| format!("{cores:.2}"))
        }

        /// Commits per CPU-second of the whole process, if known.
        fn per_cpu_second(&self) -> Option<f64> {
            self.cores_busy
                .filter(|cores| *cores > 0.0)
                .map(|cores| self.commits_per_second / cores)
        }
    }

    /// Ours / openraft in commits per CPU-second: steadier than the plain
    /// ratio when other work on the machine takes CPUs from one system's
    /// run and not the other's.
    fn per_cpu_ratio(ours: &Measured, theirs: &Measured) -> String {
        ours.per_cpu_second()
            .zip(theirs.per_cpu_second())
            .map_or("?".to_string(), |(ours, theirs)| {
                format!("{:.2}", ours / theirs)
            })
    }

    fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
        match std::env::var(name) {
            Ok(value) => value
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value} does not parse")),
            Err(_) => default,
        }
    }

    pub fn main() {
        // `cargo bench` passes `--bench`; `-- --smoke` asks for short rows.
        let smoke = std::env::args().any(|argument| argument == "--smoke");
        let (default_seconds, warmup) = if smoke {
            (0.3, Duration::from_millis(100))
        } else {
            (3.0, Duration::from_millis(500))
        };
        let seconds: f64 = env_or("BENCH_SECS", default_seconds);
        let proposer_counts: Vec<usize> = std::env::var("BENCH_PROPOSERS")
            .ok()
            .map(|list| {
                list.split(',')
                    .map(|count| count.trim().parse().expect("BENCH_PROPOSERS: counts"))
                    .collect()
            })
            .unwrap_or_else(|| vec![1, 64, 256, 1024]);
        let threads: usize = env_or("BENCH_THREADS", 2);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("tokio runtime");
        println!(
            "3 nodes in one process, {threads} runtime threads, in-memory log and network, \
             {COMMAND_SIZE_BYTES}-byte commands, {seconds} s per run after {warmup:?} of warm-up; \
             ours against openraft 0.9"
        );
        println!(
            "| P    | ours commits/s | p50       | p99       | cores | openraft commits/s | p50       | p99       | cores | ratio | per CPU |"
        );
        println!(
            "|------|----------------|-----------|-----------|-------|--------------------|-----------|-----------|-------|-------|---------|"
        );
        let duration = Duration::from_secs_f64(seconds);
        for proposers in proposer_counts {
            let ours = runtime.block_on(measure(System::Ours, proposers, warmup, duration));
            let theirs = runtime.block_on(measure(System::Openraft, proposers, warmup, duration));
            println!(
                "| {proposers:<4} | {:>14.0} | {:>9.1?} | {:>9.1?} | {:>5} | {:>18.0} | {:>9.1?} | {:>9.1?} | {:>5} | {:>5.2} | {:>7} |",
                ours.commits_per_second,
                ours.p50,
                ours.p99,
                ours.cores(),
                theirs.commits_per_second,
                theirs.p50,
                theirs.p99,
                theirs.cores(),
                ours.commits_per_second / theirs.commits_per_second,
                per_cpu_ratio(&ours, &theirs),
            );
        }
    }
}
