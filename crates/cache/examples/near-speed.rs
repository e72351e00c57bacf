//! Single-threaded throughput of the near cache against `quick_cache`,
//! interleaved over several rounds so that load from other processes hits
//! both alike; prints every round and the best of each.
//!
//! `cargo run --release -p cache --example near-speed`
//!
//! With an argument (`distcache`, `quick_cache` or `none`) and an optional
//! round count it replays only that cache, so that a per-process counter
//! that other load does not disturb can compare them: for example
//! `valgrind --tool=cachegrind --cache-sim=yes` (instructions and simulated
//! last-level misses) on each, minus `none` (trace generation alone).
//! (benches/near_cache.rs is the criterion comparison with both peers.)

use cache::near::{MonotonicClock, NearCache, NearCacheConfig};
use cache::workload::zipf_trace;

const ROUNDS: usize = 5;

/// Replays `trace` (get, insert on miss); returns (ops/s, hit ratio).
#[allow(clippy::disallowed_methods)] // measures real time
fn measure(trace: &[u64], get: impl Fn(u64) -> bool, insert: impl Fn(u64)) -> (f64, f64) {
    let start = std::time::Instant::now();
    let mut hits = 0u64;
    for &key in trace {
        if get(key) {
            hits += 1;
        } else {
            insert(key);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    (
        trace.len() as f64 / seconds,
        hits as f64 / trace.len() as f64,
    )
}

fn main() {
    let trace = zipf_trace(1_000_000, 0.99, 2_000_000, 42);
    if let Some(only) = std::env::args().nth(1) {
        let rounds = std::env::args().nth(2).map_or(ROUNDS, |rounds| {
            rounds.parse().expect("rounds must be a number")
        });
        replay_only(&only, &trace, rounds);
        return;
    }
    let (mut best_ours, mut best_peer) = (0.0f64, 0.0f64);
    for round in 0..ROUNDS {
        let ours: NearCache<u64, u64> =
            NearCache::new(NearCacheConfig::new(100_000), MonotonicClock::new());
        let (ours_ops, ours_hits) = measure(
            &trace,
            |key| ours.get(&key).is_some(),
            |key| {
                ours.insert(key, key);
            },
        );
        let peer: quick_cache::sync::Cache<u64, u64> = quick_cache::sync::Cache::new(100_000);
        let (peer_ops, peer_hits) = measure(
            &trace,
            |key| peer.get(&key).is_some(),
            |key| peer.insert(key, key),
        );
        println!(
            "round {round}: distcache {ours_ops:.0} ops/s (hit ratio {ours_hits:.4}), quick_cache {peer_ops:.0} ops/s (hit ratio {peer_hits:.4})"
        );
        best_ours = best_ours.max(ours_ops);
        best_peer = best_peer.max(peer_ops);
    }
    println!(
        "best: distcache {best_ours:.0} ops/s, quick_cache {best_peer:.0} ops/s, ratio {:.2}",
        best_ours / best_peer
    );
}

/// Replays `rounds` fresh caches of one kind and prints the hit ratio.
fn replay_only(only: &str, trace: &[u64], rounds: usize) {
    for _ in 0..rounds {
        let (_, hit_ratio) = match only {
            "distcache" => {
                let ours: NearCache<u64, u64> =
                    NearCache::new(NearCacheConfig::new(100_000), MonotonicClock::new());
                measure(
                    trace,
                    |key| ours.get(&key).is_some(),
                    |key| {
                        ours.insert(key, key);
                    },
                )
            }
            "quick_cache" => {
                let peer: quick_cache::sync::Cache<u64, u64> =
                    quick_cache::sync::Cache::new(100_000);
                measure(
                    trace,
                    |key| peer.get(&key).is_some(),
                    |key| peer.insert(key, key),
                )
            }
            "none" => (0.0, 0.0),
            other => panic!("unknown cache {other:?}; expected distcache, quick_cache or none"),
        };
        println!("{only}: hit ratio {hit_ratio:.4}");
    }
}
