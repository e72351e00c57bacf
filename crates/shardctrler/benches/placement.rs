//! Placement at production size: 1024 shards, 100 groups.
//!
//! - `join_1_to_99`: the 100th group joins a balanced 99-group assignment;
//! - `leave_1_of_100`: one of 100 groups leaves;
//! - `join_100_from_empty`: all 100 groups join at once (every shard moves);
//! - `join_after_moves`: a join after 300 Moves left the assignment lopsided.
//!
//! Run: `cargo bench -p shardctrler --bench placement`.

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shardctrler::placement::rebalance;
use shardctrler::{Gid, UNASSIGNED};

const SHARDS: usize = 1024;
const GROUPS: u64 = 100;

fn placement(c: &mut Criterion) {
    let all: BTreeSet<Gid> = (1..=GROUPS).collect();
    let all_but_last: BTreeSet<Gid> = (1..GROUPS).collect();
    let empty = vec![UNASSIGNED; SHARDS];
    let balanced_99 = rebalance(&empty, &all_but_last);
    let balanced_100 = rebalance(&empty, &all);
    let mut lopsided = balanced_99.clone();
    for step in 0..300usize {
        lopsided[(step * 7) % SHARDS] = 1 + (step as u64 % 5);
    }

    let mut group = c.benchmark_group("placement_1024_shards");
    group.bench_function("join_1_to_99", |b| {
        b.iter(|| rebalance(black_box(&balanced_99), black_box(&all)));
    });
    group.bench_function("leave_1_of_100", |b| {
        b.iter(|| rebalance(black_box(&balanced_100), black_box(&all_but_last)));
    });
    group.bench_function("join_100_from_empty", |b| {
        b.iter(|| rebalance(black_box(&empty), black_box(&all)));
    });
    group.bench_function("join_after_moves", |b| {
        b.iter(|| rebalance(black_box(&lopsided), black_box(&all)));
    });
    group.finish();
}

criterion_group!(benches, placement);
criterion_main!(benches);
