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

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use raft::core::{Config, Message, RawNode};
use raft::storage::{MemoryStorage, StorageWrite};

const GROUP_SIZE: u64 = 3;
const COMMAND_SIZE_BYTES: usize = 16;

struct Group {
    nodes: Vec<RawNode>,
    storages: Vec<MemoryStorage>,
    queue: VecDeque<Message>,
    /// Commands applied at the leader, per round.
    applied_at_leader: Vec<u64>,
}

impl Group {
    fn new() -> Group {
        let peers: Vec<u64> = (0..GROUP_SIZE).collect();
        let nodes = peers
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, peers.clone(), id);
                // Node 0 campaigns first; the others wait.
                if id == 0 {
                    config.election_timeout_ticks_min = 11;
                    config.election_timeout_ticks_max = 12;
                } else {
                    config.election_timeout_ticks_min = 1_000_000;
                    config.election_timeout_ticks_max = 1_000_001;
                }
                RawNode::new(config)
            })
            .collect();
        Group {
            nodes,
            storages: vec![MemoryStorage::new(); GROUP_SIZE as usize],
            queue: VecDeque::new(),
            applied_at_leader: Vec::new(),
        }
    }

    /// Handles every node's Ready and delivers every message, until quiet.
    fn settle(&mut self) {
        loop {
            let mut progressed = false;
            for id in 0..self.nodes.len() {
                while self.nodes[id].has_ready() {
                    progressed = true;
                    let ready = self.nodes[id].ready();
                    self.storages[id]
                        .save_now(StorageWrite::from_ready(&ready))
                        .expect("save");
                    self.queue.extend(ready.messages.iter().cloned());
                    if id == 0 {
                        self.applied_at_leader
                            .extend(ready.committed_entries.iter().map(|e| e.index));
                    }
                    self.nodes[id].advance(ready);
                }
            }
            while let Some(message) = self.queue.pop_front() {
                progressed = true;
                let to = message.to as usize;
                self.nodes[to].step(message).expect("valid message");
            }
            if !progressed {
                return;
            }
        }
    }

    fn elect(&mut self) {
        for _ in 0..20 {
            for node in &mut self.nodes {
                node.tick();
            }
            self.settle();
        }
        assert!(self.nodes[0].is_leader(), "node 0 should lead");
    }
}

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
