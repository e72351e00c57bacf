//! Prints the hit-ratio table in the crate docs: every policy of this crate,
//! Belady's offline optimum, and the peers `quick_cache` (S3-FIFO-like),
//! `moka` (W-TinyLFU) and `lru` on the same deterministic traces, capacity
//! in entries, each request a lookup that inserts on a miss.
//!
//! ```text
//! cargo run --release -p cache --example hit-ratio-table [TRACE_NAME_PART]
//! ```
//!
//! With an argument, only the traces whose name contains it are replayed.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;

use cache::hash::hash_of;
use cache::table::{Limits, Table};
use cache::workload::{shifting_trace, zipf_trace, zipf_with_scans_trace};
use cache::{PolicyKind, PolicyRevision};

fn ours(kind: PolicyKind, capacity: u64, trace: &[u64]) -> f64 {
    let limits = Limits {
        capacity_weight: capacity,
        capacity_entries: None,
    };
    let mut table: Table<u64, ()> = Table::new(kind, limits);
    // What a cluster's stores run once their group has logged it.
    table.set_policy_revision(PolicyRevision::LATEST);
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

/// Belady's optimum (MIN): knowing the whole trace, on a miss keep the
/// `capacity` keys whose next request comes soonest, the new key included
/// (so a key not worth caching is not cached). With every entry weighing 1
/// no policy, online or not, gets more hits. A harness computation, not a
/// [`cache::policy::Policy`]: it needs the future.
fn belady(capacity: u64, trace: &[u64]) -> f64 {
    const NEVER: usize = usize::MAX;
    let mut next_use = vec![NEVER; trace.len()];
    let mut seen_at: HashMap<u64, usize> = HashMap::new();
    for (position, &key) in trace.iter().enumerate().rev() {
        if let Some(later) = seen_at.insert(key, position) {
            next_use[position] = later;
        }
    }
    // (next request position, key) of every resident key; the last is the
    // victim. Positions are unique, so the order is total.
    let mut by_next_use: BTreeSet<(usize, u64)> = BTreeSet::new();
    let mut resident_next_use: HashMap<u64, usize> = HashMap::new();
    let mut hits = 0u64;
    for (position, &key) in trace.iter().enumerate() {
        if let Some(current) = resident_next_use.remove(&key) {
            by_next_use.remove(&(current, key));
            hits += 1;
        }
        let next = if next_use[position] == NEVER {
            // Never requested again: caching it cannot help. Distinct
            // positions keep such keys apart in the set.
            NEVER - position
        } else {
            next_use[position]
        };
        by_next_use.insert((next, key));
        resident_next_use.insert(key, next);
        if by_next_use.len() as u64 > capacity {
            let victim = by_next_use.pop_last().expect("over capacity, so not empty");
            resident_next_use.remove(&victim.1);
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

/// A named trace and how to build it.
type TraceBuilder = (&'static str, fn() -> Vec<u64>);

/// The traces of the table, by name; each is built only if selected.
fn traces(selected: impl Fn(&str) -> bool) -> Vec<(&'static str, Vec<u64>)> {
    let all: [TraceBuilder; 4] = [
        ("zipf0.99 1M keys", || {
            zipf_trace(1_000_000, 0.99, 2_000_000, 1)
        }),
        ("zipf0.8 1M keys", || {
            zipf_trace(1_000_000, 0.8, 2_000_000, 2)
        }),
        ("zipf0.99+scans 100k keys", || {
            zipf_with_scans_trace(100_000, 0.99, 2_000_000, 20_000, 20_000, 3)
        }),
        ("shifting zipf0.8 100k-key window", || {
            shifting_trace(100_000, 0.8, 2_000_000, 4, 4)
        }),
    ];
    all.into_iter()
        .filter(|(name, _)| selected(name))
        .map(|(name, build)| (name, build()))
        .collect()
}

/// Whether the adaptive policy meets the aims of issue 18 on one row: at
/// least `quick_cache`'s hit ratio and at least 99% of LRU's.
fn aims(adaptive: f64, quick_cache: f64, lru: f64) -> String {
    let mut misses = Vec::new();
    if adaptive < quick_cache {
        misses.push(format!("{:+.5} vs quick_cache", adaptive - quick_cache));
    }
    if adaptive < 0.99 * lru {
        misses.push(format!("{:+.5} vs 0.99 lru", adaptive - 0.99 * lru));
    }
    if misses.is_empty() {
        "yes".to_owned()
    } else {
        format!("**no** ({})", misses.join(", "))
    }
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    print!("| trace | capacity |");
    for kind in PolicyKind::ALL {
        print!(" {kind} |");
    }
    println!(" belady (optimum) | quick_cache | moka | lru crate | adaptive meets aims |");
    println!(
        "|---|---|{}---|---|---|---|---|",
        "---|".repeat(PolicyKind::ALL.len())
    );
    for (name, trace) in traces(|name| name.contains(&filter)) {
        for capacity in [1_000u64, 10_000, 100_000] {
            print!("| {name} | {capacity} |");
            let mut ratios = Vec::new();
            for kind in PolicyKind::ALL {
                let ratio = ours(kind, capacity, &trace);
                print!(" {ratio:.4} |");
                ratios.push((kind, ratio));
            }
            let ratio_of = |wanted: PolicyKind| {
                ratios
                    .iter()
                    .find(|(kind, _)| *kind == wanted)
                    .map(|(_, ratio)| *ratio)
                    .unwrap_or(f64::NAN)
            };
            let quick_cache = quick(capacity, &trace);
            println!(
                " {:.4} | {quick_cache:.4} | {:.4} | {:.4} | {} |",
                belady(capacity, &trace),
                moka(capacity, &trace),
                lru_crate(capacity, &trace),
                aims(
                    ratio_of(PolicyKind::Adaptive),
                    quick_cache,
                    ratio_of(PolicyKind::Lru)
                ),
            );
        }
    }
}
