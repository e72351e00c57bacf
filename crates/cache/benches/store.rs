//! The deterministic store, single-threaded, against the `lru` crate in the
//! same run.
//!
//! Workload: Zipf 0.99 over 1M keys, capacity 100k entries, each operation a
//! get that puts on a miss (8-byte keys and values). The store does more per
//! operation than a plain LRU map (byte accounting, logical-time expiry
//! housekeeping, stats), so the ratio shows what determinism and accounting
//! cost.
//!
//! Run: `cargo bench -p cache --bench store -- --quick`

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use cache::workload::zipf_trace;
use cache::{PolicyKind, Store, StoreConfig};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const KEYS: u64 = 1_000_000;
const CAPACITY_ENTRIES: u64 = 100_000;
const MEASURED_OPERATIONS: usize = 200_000;

fn store(policy: PolicyKind) -> Store {
    let config = StoreConfig::new(u64::MAX).with_policy(policy);
    Store::new(config.with_capacity_entries(CAPACITY_ENTRIES))
}

fn replay_store(store: &mut Store, trace: &[u64]) -> u64 {
    let mut hits = 0;
    for (now_ms, key) in trace.iter().enumerate() {
        let key = key.to_be_bytes();
        if store.get(&key, now_ms as u64).is_some() {
            hits += 1;
        } else {
            let put = store.put(&key, key.to_vec(), None, now_ms as u64);
            debug_assert!(put.is_ok());
        }
    }
    hits
}

fn replay_lru_crate(cache: &mut lru::LruCache<u64, u64>, trace: &[u64]) -> u64 {
    let mut hits = 0;
    for &key in trace {
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.put(key, key);
        }
    }
    hits
}

/// The `lru` crate with the same owned byte keys and values as the store,
/// so the comparison isolates the store's extra work from key allocation.
fn replay_lru_crate_bytes(cache: &mut lru::LruCache<Vec<u8>, Vec<u8>>, trace: &[u64]) -> u64 {
    let mut hits = 0;
    for &key in trace {
        let key = key.to_be_bytes();
        if cache.get(key.as_slice()).is_some() {
            hits += 1;
        } else {
            cache.put(key.to_vec(), key.to_vec());
        }
    }
    hits
}

fn bench_store(criterion: &mut Criterion) {
    let trace = zipf_trace(KEYS, 0.99, 1_200_000, 42);
    let (warm, measured) = trace.split_at(trace.len() - MEASURED_OPERATIONS);
    let capacity = NonZeroUsize::new(CAPACITY_ENTRIES as usize).unwrap_or(NonZeroUsize::MIN);

    let mut group = criterion.benchmark_group("store_zipf099_get_or_put");
    group.throughput(Throughput::Elements(measured.len() as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for policy in [PolicyKind::Lru, PolicyKind::S3Fifo, PolicyKind::Adaptive] {
        let mut warmed = store(policy);
        let hits = replay_store(&mut warmed, &trace);
        println!(
            "store summary: policy={policy} hit_ratio={:.4}",
            hits as f64 / trace.len() as f64
        );
        replay_store(&mut warmed, warm);
        group.bench_function(format!("distcache_store_{policy}"), |bencher| {
            bencher.iter_batched_ref(
                || warmed.clone(),
                |store| black_box(replay_store(store, measured)),
                BatchSize::LargeInput,
            )
        });
    }
    let mut warmed = lru::LruCache::new(capacity);
    let hits = replay_lru_crate(&mut warmed, &trace);
    println!(
        "store summary: peer=lru_crate hit_ratio={:.4}",
        hits as f64 / trace.len() as f64
    );
    replay_lru_crate(&mut warmed, warm);
    group.bench_function("lru_crate", |bencher| {
        bencher.iter_batched_ref(
            || warmed.clone(),
            |cache| black_box(replay_lru_crate(cache, measured)),
            BatchSize::LargeInput,
        )
    });
    let mut warmed = lru::LruCache::new(capacity);
    replay_lru_crate_bytes(&mut warmed, &trace);
    replay_lru_crate_bytes(&mut warmed, warm);
    group.bench_function("lru_crate_byte_keys", |bencher| {
        bencher.iter_batched_ref(
            || warmed.clone(),
            |cache| black_box(replay_lru_crate_bytes(cache, measured)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
