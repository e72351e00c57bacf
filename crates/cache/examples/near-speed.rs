//! Quick single-threaded speed check of the near cache (see
//! benches/near_cache.rs for the comparison with peers).
use cache::near::{MonotonicClock, NearCache, NearCacheConfig};
use cache::workload::zipf_trace;

#[allow(clippy::disallowed_methods)] // measures real time
fn main() {
    let trace = zipf_trace(1_000_000, 0.99, 4_000_000, 42);
    let cache: NearCache<u64, u64> =
        NearCache::new(NearCacheConfig::new(100_000), MonotonicClock::new());
    let start = std::time::Instant::now();
    let mut hits = 0u64;
    for &key in &trace {
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, key);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "distcache ops_per_s={:.0} hit_ratio={:.4}",
        trace.len() as f64 / seconds,
        hits as f64 / trace.len() as f64
    );
    let peer: quick_cache::sync::Cache<u64, u64> = quick_cache::sync::Cache::new(100_000);
    let start = std::time::Instant::now();
    let mut hits = 0u64;
    for &key in &trace {
        if peer.get(&key).is_some() {
            hits += 1;
        } else {
            peer.insert(key, key);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "quick_cache ops_per_s={:.0} hit_ratio={:.4}",
        trace.len() as f64 / seconds,
        hits as f64 / trace.len() as f64
    );
}
