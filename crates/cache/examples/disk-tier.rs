//! Latency of the store's tiers, one thread: a memory hit, a disk hit (a
//! `get` that brings the key back, evicting another entry to disk), and a
//! read-only read through to disk (`Store::read`, which changes nothing).
//!
//! `cargo run --release -p cache --example disk-tier [directory]` (default:
//! a fresh directory under the system's temporary directory).
use cache::store::DiskConfig;
use cache::{Store, StoreConfig};

const KEYS: u64 = 100_000;
const VALUE_BYTES: usize = 100;
const READS: u64 = 20_000;

#[allow(clippy::disallowed_methods)] // measures real time
fn main() {
    let directory = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("disk-tier-{}", std::process::id())));
    // Memory for about a tenth of the keys; disk for all of them.
    let config = StoreConfig::new(KEYS / 10 * 180).with_disk(DiskConfig::new(KEYS * 200));
    let mut store = Store::open(config, &directory).expect("open the store");
    let key = |index: u64| format!("key-{index:08}").into_bytes();
    let start = std::time::Instant::now();
    for index in 0..KEYS {
        store
            .put(&key(index), vec![b'v'; VALUE_BYTES], None, 0)
            .expect("fits");
    }
    let fill_s = start.elapsed().as_secs_f64();
    let stats = store.stats();
    println!(
        "filled {KEYS} keys in {fill_s:.2} s ({:.0} puts/s): memory {} entries / {} bytes, disk {} entries / {} bytes, {} segment files / {} bytes",
        KEYS as f64 / fill_s,
        stats.entries,
        stats.bytes,
        stats.disk_entries,
        stats.disk_bytes,
        store.disk().map_or(0, |disk| disk.segment_count()),
        store.disk().map_or(0, |disk| disk.file_bytes()),
    );

    // The newest keys are in memory, the oldest on disk.
    let memory_keys: Vec<_> = (KEYS - 1000..KEYS).map(key).collect();
    let start = std::time::Instant::now();
    for index in 0..READS {
        let hit = store.get(&memory_keys[(index % 1000) as usize], 1);
        assert!(hit.is_some());
    }
    let memory_ns = start.elapsed().as_nanos() as f64 / READS as f64;

    let start = std::time::Instant::now();
    for index in 0..READS {
        let value = store.read(&key(index), 1).expect("no disk fault");
        assert!(value.is_some());
    }
    let read_through_ns = start.elapsed().as_nanos() as f64 / READS as f64;

    let before = store.stats();
    let start = std::time::Instant::now();
    for index in 0..READS {
        assert!(store.get(&key(index), 2).is_some());
    }
    let disk_hit_ns = start.elapsed().as_nanos() as f64 / READS as f64;
    let after = store.stats();
    assert_eq!(
        after.disk_hits - before.disk_hits,
        READS,
        "every read was a disk hit"
    );
    assert!(store.disk_fault().is_none());

    println!("memory hit (get): {memory_ns:.0} ns");
    println!("read through to disk (read, changes nothing): {read_through_ns:.0} ns");
    println!("disk hit (get: read, verify, bring back, evict one to disk): {disk_hit_ns:.0} ns");
    drop(store);
    std::fs::remove_dir_all(&directory).expect("remove the directory");
}
