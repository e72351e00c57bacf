//! Quick single-threaded speed check of the store (see benches/store.rs for
//! the real comparison).
use cache::workload::zipf_trace;
use cache::{PolicyKind, Store, StoreConfig};

#[allow(clippy::disallowed_methods)] // measures real time
fn main() {
    let trace = zipf_trace(1_000_000, 0.99, 2_000_000, 42);
    for policy in PolicyKind::ALL {
        let mut store = Store::new(
            StoreConfig::new(u64::MAX)
                .with_policy(policy)
                .with_capacity_entries(100_000),
        );
        let start = std::time::Instant::now();
        let mut hits = 0u64;
        for (now_ms, key) in trace.iter().enumerate() {
            let key = key.to_be_bytes();
            if store.get(&key, now_ms as u64).is_some() {
                hits += 1;
            } else if store.put(&key, key.to_vec(), None, now_ms as u64).is_err() {
                unreachable!("fits");
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "policy={policy} ops_per_s={:.0} hit_ratio={:.4}",
            trace.len() as f64 / seconds,
            hits as f64 / trace.len() as f64
        );
    }
}
