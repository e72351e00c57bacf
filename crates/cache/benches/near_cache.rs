//! Near cache against `moka` and `quick_cache`, in the same run.
//!
//! Workload (from the issue): Zipf 0.99 over 1M keys, capacity 100k entries,
//! each operation a get that inserts on a miss, with 1 and 2 threads.
//!
//! Two parts:
//! 1. a summary that replays the whole trace once on a fresh cache per peer
//!    and prints `ops_per_s` and `hit_ratio` (cold start included, same trace
//!    for everyone);
//! 2. criterion groups that time warmed caches, for statistics.
//!
//! Run: `cargo bench -p cache --bench near_cache -- --quick`
//! (real threads and real time are the point here, hence the local lint
//! allows).

use std::hint::black_box;
use std::time::Duration;

use cache::near::{MonotonicClock, NearCache, NearCacheConfig};
use cache::workload::zipf_trace;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const KEYS: u64 = 1_000_000;
const CAPACITY: u64 = 100_000;
const TRACE_LENGTH: usize = 2_000_000;

trait BenchCache: Sync {
    fn name(&self) -> &'static str;
    fn get(&self, key: u64) -> Option<u64>;
    fn insert(&self, key: u64, value: u64);
}

struct Ours(NearCache<u64, u64, MonotonicClock>);
struct Moka(moka::sync::Cache<u64, u64>);
struct Quick(quick_cache::sync::Cache<u64, u64>);

impl BenchCache for Ours {
    fn name(&self) -> &'static str {
        "distcache"
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
}

impl BenchCache for Moka {
    fn name(&self) -> &'static str {
        "moka"
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
}

impl BenchCache for Quick {
    fn name(&self) -> &'static str {
        "quick_cache"
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
}

fn fresh_caches() -> Vec<Box<dyn BenchCache>> {
    vec![
        Box::new(Ours(NearCache::new(
            NearCacheConfig::new(CAPACITY),
            MonotonicClock::new(),
        ))),
        Box::new(Moka(moka::sync::Cache::new(CAPACITY))),
        Box::new(Quick(quick_cache::sync::Cache::new(CAPACITY as usize))),
    ]
}

/// Replays `trace` split round-robin in chunks over `threads` threads;
/// returns the number of hits.
fn replay(cache: &dyn BenchCache, trace: &[u64], threads: usize) -> u64 {
    let chunk_length = trace.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = trace
            .chunks(chunk_length)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut hits = 0u64;
                    for &key in chunk {
                        match cache.get(key) {
                            Some(value) => hits += u64::from(black_box(value) == key),
                            None => cache.insert(key, key),
                        }
                    }
                    hits
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or(0))
            .sum()
    })
}

#[allow(clippy::disallowed_methods)] // a benchmark measures real time
fn print_summary(trace: &[u64]) {
    for threads in [1, 2] {
        for cache in fresh_caches() {
            let start = std::time::Instant::now();
            let hits = replay(cache.as_ref(), trace, threads);
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "near_cache summary: cache={} threads={threads} ops_per_s={:.0} hit_ratio={:.4}",
                cache.name(),
                trace.len() as f64 / seconds,
                hits as f64 / trace.len() as f64
            );
        }
    }
}

#[allow(clippy::disallowed_methods)] // a benchmark measures real time
fn bench_near_cache(criterion: &mut Criterion) {
    let trace = zipf_trace(KEYS, 0.99, TRACE_LENGTH, 42);
    print_summary(&trace);
    let measured = &trace[..200_000];
    for threads in [1, 2] {
        let mut group =
            criterion.benchmark_group(format!("zipf099_get_or_insert_{threads}_threads"));
        group.throughput(Throughput::Elements(measured.len() as u64));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500));
        for cache in fresh_caches() {
            replay(cache.as_ref(), &trace, 1); // warm
            group.bench_function(cache.name(), |bencher| {
                bencher.iter_custom(|iterations| {
                    let start = std::time::Instant::now();
                    for _ in 0..iterations {
                        black_box(replay(cache.as_ref(), measured, threads));
                    }
                    start.elapsed()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_near_cache);
criterion_main!(benches);
