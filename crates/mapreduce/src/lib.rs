//! # mapreduce: 6.5840 Lab 1 over labrpc
//!
//! A coordinator hands map and reduce tasks to workers that ask for them;
//! workers run a compiled-in application and publish their files atomically
//! in a directory they all share. The same code runs as real processes
//! (gRPC on TCP, files on disk) and inside madsim's simulation (simulated
//! network, an in-memory shared directory), where tests kill and restart
//! workers at will.
//!
//! ```text
//!                 GetTask / TaskDone (labrpc)
//!   worker 1 ───┐         ┌──────────────────────────────┐
//!   worker 2 ───┼───────► │ coordinator                  │
//!   worker N ───┘         │  Schedule: map slots, reduce │
//!      │                  │  slots, re-issue after 10 s  │
//!      │                  └──────────────────────────────┘
//!      ▼  JobDir (shared directory; atomic temp + rename publishes)
//!   inputs ──map──► mr-X-Y (X: map task, Y: ihash(key) % n_reduce)
//!          ──reduce Y (after every map)──► mr-out-Y   ("key value" lines)
//! ```
//!
//! ## Components
//!
//! - [`coordinator`]: [`coordinator::Schedule`], a sans-IO bookkeeper (time is
//!   an argument; unit-tested through re-issues without sleeping), behind
//!   [`coordinator::Coordinator`], the labrpc service. The coordinator reads
//!   no files.
//! - [`worker`]: the ask / run / publish / report loop.
//! - [`apps`]: `wc`, `indexer` and the lab's test applications `crash`,
//!   `nocrash`, `mtiming`, `rtiming`, `jobcount`, `early_exit`.
//! - [`storage`]: the [`JobDir`] seam. [`LocalDir`] on a real filesystem;
//!   [`SharedMemoryDir`], the simulation's "network filesystem" (one per
//!   test, shared by every node, surviving kills).
//! - [`sequential`]: the reference (`mrsequential`), sharing the grouping
//!   and reduce code with the workers ([`reduce_sorted`]).
//! - [`codec`]: the binary format of intermediate files.
//! - Binaries: `mrcoordinator --listen ADDR --n-reduce N FILES...`,
//!   `mrworker --app NAME --coordinator ADDR`, `mrsequential --app NAME FILES...`.
//!
//! ## Fault tolerance, and what it does not cover
//!
//! A worker may crash or stall at any point: its task is handed out again
//! 10 s after it was handed out, and because every file is published by an
//! atomic rename, a dead or duplicate attempt leaves either nothing or a
//! complete file identical to any other attempt's (applications are
//! deterministic per input, except the timing ones, whose outputs are only
//! inspected for their shape). As in the lab, the coordinator is a single
//! point of failure: its state is in memory.
//!
//! ## Tests
//!
//! - `cargo test -p mapreduce`: unit tests (schedule, codec, apps,
//!   storage), and real processes (`tests/processes.rs`, about 40 s): a
//!   coordinator and three workers for `wc` and `indexer` compared with
//!   `mrsequential`; map and reduce parallelism, job count and early exit
//!   as in the lab's script; a crash test with workers that die at random
//!   (re-issue after 2 s there, to stay near 30 s); and bad command lines
//!   (missing input, unknown application, unreachable coordinator: a clear
//!   message, a non-zero exit, no file written).
//! - `RUSTFLAGS="--cfg madsim" cargo test -p sim-tests --test it mapreduce::`:
//!   the lab's seven tests in simulation (see the shared TESTS.md), and the
//!   swarm scenario in `sim-tests/src/swarm/mapreduce_scenario.rs`.
//!
//! ## Performance
//!
//! Word count over generated text (16 input files, `n_reduce` 10), real
//! processes on loopback, release build; the job time is what the
//! coordinator reports from serving to the last reduce done (process exit
//! adds the coordinator's 1 s exit grace):
//!
//! ```text
//! cargo bench -p mapreduce --bench wordcount                  # 50 MB
//! MR_BENCH_MB=200 cargo bench -p mapreduce --bench wordcount  # a few hundred MB
//! ```
//!
//! Measured on the shared 2-core development VM while other builds kept its
//! load average at 9-10, so the second worker found no idle core:
//!
//! | input | mrsequential | coordinator + 1 worker | coordinator + 2 workers |
//! |---|---|---|---|
//! | 50 MB  | 1.37 s, 36.4 MB/s | 2.36 s, 21.2 MB/s (x0.58) | 1.73 s, 29.0 MB/s (x0.80) |
//! | 200 MB | 7.36 s, 27.2 MB/s | 8.32 s, 24.0 MB/s (x0.88) | 7.50 s, 26.7 MB/s (x0.98) |
//!
//! (xN: speed-up against mrsequential.) What the numbers say:
//! - the distributed run's fixed cost is durability: every one of the
//!   16 x 10 intermediate files and 10 outputs is `fsync`ed before its
//!   rename, and the directory once per task; at about 5.7 ms per `fsync`
//!   on this disk that is about 1.1 s, most of the 50 MB gap to
//!   mrsequential (which `fsync`s one file). It shrinks relative to the
//!   work as inputs grow;
//! - the second worker gains 27% (50 MB) and 11% (200 MB) on a machine with
//!   no free core; on idle cores the map phase, which dominates (combined
//!   word counts make intermediate data tiny), parallelises across the 16
//!   inputs. We have not yet measured on an idle machine, so no claim of
//!   a near-2x figure is made here.

pub mod apps;
pub mod codec;
pub mod coordinator;
pub mod rpc;
pub mod sequential;
#[cfg(madsim)]
pub mod sim;
pub mod storage;
pub mod textgen;
pub mod worker;

pub use apps::App;
#[cfg(not(madsim))]
pub use storage::LocalDir;
pub use storage::{JobDir, SharedMemoryDir, StorageError};

use serde::{Deserialize, Serialize};

use apps::{AppContext, AppError};

/// One pair emitted by a map (the lab's `mr.KeyValue`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The lab's `ihash`: FNV-1a (32 bits) with the sign bit cleared.
pub fn ihash(key: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash & 0x7fff_ffff
}

/// The reduce task that owns `key`.
pub fn partition_of(key: &str, n_reduce: u32) -> usize {
    (ihash(key) % n_reduce) as usize
}

/// `mr-X-Y`: what map task `X` wrote for reduce task `Y`.
pub fn intermediate_name(map_task: u32, reduce_task: u32) -> String {
    format!("mr-{map_task}-{reduce_task}")
}

/// `mr-out-Y`: reduce task `Y`'s output.
pub fn output_name(reduce_task: u32) -> String {
    format!("mr-out-{reduce_task}")
}

/// Sorts `pairs` by key (stably: a key's values keep their order), calls
/// reduce once per key and returns the `key value` lines.
pub async fn reduce_sorted(
    app: App,
    context: &mut AppContext<'_>,
    mut pairs: Vec<KeyValue>,
) -> Result<String, AppError> {
    pairs.sort_by(|left, right| left.key.cmp(&right.key));
    let mut output = String::new();
    let mut pairs = pairs.into_iter().peekable();
    // Each round consumes at least one pair.
    while let Some(first) = pairs.next() {
        let mut values = vec![first.value];
        while let Some(next) = pairs.next_if(|pair| pair.key == first.key) {
            values.push(next.value);
        }
        let reduced = app.reduce(context, &first.key, &values).await?;
        output.push_str(&first.key);
        output.push(' ');
        output.push_str(&reduced);
        output.push('\n');
    }
    Ok(output)
}

/// Every line of every `mr-out-*` file, sorted: what the lab's test script
/// compares (`sort mr-out*`).
pub fn sorted_output_lines(dir: &dyn JobDir) -> Result<Vec<String>, StorageError> {
    let mut lines = Vec::new();
    for name in dir.list("mr-out-")? {
        let bytes = dir.read(&name)?;
        lines.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_string));
    }
    lines.sort();
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ihash_is_fnv1a_without_the_sign_bit() {
        // FNV-1a 32 of "" and "a" (published test vectors), masked.
        assert_eq!(ihash(""), 0x811c_9dc5 & 0x7fff_ffff);
        assert_eq!(ihash("a"), 0xe40c_292c & 0x7fff_ffff);
        assert!(partition_of("anything", 10) < 10);
    }
}
