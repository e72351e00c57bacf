//! Prints the hit-ratio table in the crate docs: every policy of this crate
//! and the peers `quick_cache` (S3-FIFO-like), `moka` (W-TinyLFU) and `lru`
//! on the same deterministic traces, capacity in entries, each request a
//! lookup that inserts on a miss.
//!
//! `cargo run --release -p cache --example hit-ratio-table`

use std::num::NonZeroUsize;

use cache::PolicyKind;
use cache::hash::hash_of;
use cache::table::{Limits, Table};
use cache::workload::{zipf_trace, zipf_with_scans_trace};

fn ours(kind: PolicyKind, capacity: u64, trace: &[u64]) -> f64 {
    let limits = Limits {
        capacity_weight: capacity,
        capacity_entries: None,
    };
    let mut table: Table<u64, ()> = Table::new(kind, limits);
    let mut hits = 0u64;
    for &key in trace {
        let key_hash = hash_of(&key);
        match table.find_hashed(key_hash, &key) {
            Some(slot) => {
                table.record_hit(slot);
                hits += 1;
            }
            None => {
                let _fits = table.insert(key, key_hash, (), 1, None);
            }
        }
    }
    hits as f64 / trace.len() as f64
}

fn quick(capacity: u64, trace: &[u64]) -> f64 {
    let mut cache = quick_cache::unsync::Cache::new(capacity as usize);
    let mut hits = 0u64;
    for &key in trace {
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, ());
        }
    }
    hits as f64 / trace.len() as f64
}

fn moka(capacity: u64, trace: &[u64]) -> f64 {
    let cache = moka::sync::Cache::new(capacity);
    let mut hits = 0u64;
    for &key in trace {
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, ());
        }
    }
    hits as f64 / trace.len() as f64
}

fn lru_crate(capacity: u64, trace: &[u64]) -> f64 {
    let mut cache =
        lru::LruCache::new(NonZeroUsize::new(capacity as usize).unwrap_or(NonZeroUsize::MIN));
    let mut hits = 0u64;
    for &key in trace {
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.put(key, ());
        }
    }
    hits as f64 / trace.len() as f64
}

fn main() {
    let traces: [(&str, Vec<u64>); 3] = [
        (
            "zipf0.99 1M keys",
            zipf_trace(1_000_000, 0.99, 2_000_000, 1),
        ),
        ("zipf0.8 1M keys", zipf_trace(1_000_000, 0.8, 2_000_000, 2)),
        (
            "zipf0.99+scans 100k keys",
            zipf_with_scans_trace(100_000, 0.99, 2_000_000, 20_000, 20_000, 3),
        ),
    ];
    print!("| trace | capacity |");
    for kind in PolicyKind::ALL {
        print!(" {kind} |");
    }
    println!(" quick_cache | moka | lru crate |");
    println!(
        "|---|---|{}---|---|---|",
        "---|".repeat(PolicyKind::ALL.len())
    );
    for (name, trace) in &traces {
        for capacity in [1_000u64, 10_000, 100_000] {
            print!("| {name} | {capacity} |");
            for kind in PolicyKind::ALL {
                print!(" {:.4} |", ours(kind, capacity, trace));
            }
            println!(
                " {:.4} | {:.4} | {:.4} |",
                quick(capacity, trace),
                moka(capacity, trace),
                lru_crate(capacity, trace)
            );
        }
    }
}
