//! Heap allocations per committed entry in the sans-IO core (issue 18:
//! "no per-entry allocation on the hot path, measured with a counting
//! allocator"): the 3-node in-memory group of `core_throughput`, `P`
//! closed-loop proposers, dhat's counting global allocator (testing mode:
//! counts only, no profile written) while the group runs. The command a caller proposes
//! is its own allocation and is counted apart.
//!
//! `cargo bench -p raft --bench allocations`
//! `ALLOCATION_SITES=1 cargo bench -p raft --bench allocations` also writes
//! `dhat-heap.json`: the allocation sites, for dhat's viewer.
//!
//! Counts, not times: the numbers are the same on a loaded machine.

mod common;

use common::Group;

const COMMAND_SIZE_BYTES: usize = 16;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Allocations and bytes allocated so far (dhat's heap statistics).
fn counters() -> (u64, u64) {
    let stats = dhat::HeapStats::get();
    (stats.total_blocks, stats.total_bytes)
}

/// Runs `commits` commits with `proposers` outstanding; allocations and
/// bytes per commit, the proposed commands' own left out.
fn run(proposers: usize, commits: usize) -> (f64, f64) {
    let mut group = Group::new();
    group.elect();
    // Warm up: queues and buffers reach their working size first.
    let mut outstanding = 0;
    let mut committed = 0;
    let mut measure_from = None;
    let mut commands = 0u64;
    while committed < 2 * commits {
        if committed >= commits && measure_from.is_none() {
            measure_from = Some((counters(), committed, commands));
        }
        while outstanding < proposers {
            let command = vec![7; COMMAND_SIZE_BYTES];
            commands += 1;
            group.nodes[0].propose(command).expect("leader accepts");
            outstanding += 1;
        }
        group.settle();
        let applied = group.applied_at_leader.len();
        group.applied_at_leader.clear();
        outstanding -= applied;
        committed += applied;
    }
    let ((allocations_before, bytes_before), committed_before, commands_before) =
        measure_from.expect("measured");
    let (allocations, bytes) = counters();
    let measured = (committed - committed_before) as f64;
    let proposed = commands - commands_before;
    // Each proposed command is one allocation of COMMAND_SIZE_BYTES, made
    // by the caller.
    let own_allocations = (allocations - allocations_before - proposed) as f64;
    let own_bytes = (bytes - bytes_before - proposed * COMMAND_SIZE_BYTES as u64) as f64;
    (own_allocations / measured, own_bytes / measured)
}

fn main() {
    // ALLOCATION_SITES=1: also write dhat-heap.json (every allocation site
    // with its counts, for dhat's viewer or a script) when the run ends.
    let _profiler = if std::env::var_os("ALLOCATION_SITES").is_some() {
        dhat::Profiler::new_heap()
    } else {
        dhat::Profiler::builder().testing().build()
    };
    println!(
        "3 nodes, one thread, in-memory messages and storage, {COMMAND_SIZE_BYTES}-byte \
         commands; heap allocations per committed entry (all three nodes, the proposed \
         command's own allocation left out)"
    );
    for proposers in [1, 64, 256, 1024] {
        let (allocations, bytes) = run(proposers, 100_000);
        println!(
            "proposers {proposers:>5}: {allocations:>7.2} allocations/entry  {bytes:>9.1} bytes/entry"
        );
    }
}
