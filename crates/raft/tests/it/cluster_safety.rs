//! Many seeded runs of a whole cluster of cores under message loss, delay
//! (reordering), partitions and crashes, checking election safety, log
//! matching, leader completeness and state machine safety on every tick,
//! and that confirmed ReadIndex reads are not stale, then a heal phase in
//! which the cluster must converge.

use crate::support;

use support::{Cluster, Faults};

fn random_faults(seed: u64) -> Faults {
    Faults {
        drop_probability: [0.0, 0.05, 0.2][(seed % 3) as usize],
        max_delay_ticks: [1, 5, 30][(seed / 3 % 3) as usize],
        crash_probability: [0.0, 0.002, 0.01][(seed / 9 % 3) as usize],
        partition_probability: [0.0, 0.005, 0.02][(seed / 27 % 3) as usize],
    }
}

fn run_seed(seed: u64, size: usize, snapshot_interval: Option<u64>) -> u64 {
    let mut cluster = Cluster::new(size, seed, random_faults(seed));
    cluster.snapshot_interval = snapshot_interval;
    for _ in 0..2_000 {
        if cluster.now_ticks.is_multiple_of(3) {
            cluster.propose_at_leaders();
        }
        if cluster.now_ticks.is_multiple_of(7) {
            cluster.read_at_leaders();
        }
        cluster.step();
    }
    cluster.converge(5_000);
    cluster.reads_confirmed
}

#[test]
fn safety_three_nodes_many_seeds() {
    let mut reads = 0;
    for seed in 0..400 {
        reads += run_seed(seed, 3, None);
    }
    assert!(reads > 10_000, "reads were exercised: {reads}");
}

#[test]
fn safety_five_nodes_with_snapshots_many_seeds() {
    for seed in 1000..1400 {
        let _ = run_seed(seed, 5, Some(10));
    }
}

#[test]
fn safety_seven_nodes_many_seeds() {
    for seed in 2000..2150 {
        let _ = run_seed(seed, 7, Some(25));
    }
}
