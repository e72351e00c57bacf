//! Throughput of the sans-IO core: a 3-node group in one thread, messages
//! passed in memory, in-memory storage, `P` closed-loop proposers (each
//! proposes its next command when the previous one is applied at the
//! leader). Prints commits/s and p50/p99 commit latency for P = 1, 64, 256,
//! 1024.
//!
//! `cargo bench -p raft --bench core_throughput`
//!
//! This measures the core alone (no network, no async runtime, one thread),
//! which is the ceiling for what the driver can reach.

// A benchmark measures real elapsed time, which the lints ban elsewhere.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use common::Group;

const COMMAND_SIZE_BYTES: usize = 16;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * fraction) as usize]
}

fn run(proposers: usize, total_commits: usize) {
    let mut group = Group::new();
    group.elect();
    let mut proposed_at: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut latencies = Vec::with_capacity(total_commits);
    let start = Instant::now();
    let mut outstanding = 0;
    let mut committed = 0;
    while committed < total_commits {
        while outstanding < proposers {
            let (index, _) = group.nodes[0]
                .propose(vec![7; COMMAND_SIZE_BYTES])
                .expect("leader accepts");
            proposed_at.push_back((index, Instant::now()));
            outstanding += 1;
        }
        group.settle();
        let now = Instant::now();
        for index in group.applied_at_leader.drain(..) {
            let (proposed_index, at) = proposed_at.pop_front().expect("applied what was proposed");
            assert_eq!(proposed_index, index);
            latencies.push(now - at);
            outstanding -= 1;
            committed += 1;
        }
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    println!(
        "proposers {proposers:>5}: {:>10.0} commits/s   p50 {:>9.1?}   p99 {:>9.1?}",
        committed as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
}

fn main() {
    println!(
        "3 nodes, one thread, in-memory messages and storage, {COMMAND_SIZE_BYTES}-byte commands"
    );
    for proposers in [1, 64, 256, 1024] {
        run(proposers, 200_000);
    }
}
