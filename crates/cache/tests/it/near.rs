//! Near cache: capacity, TTL through an injected clock (no sleeping) and
//! concurrent use from several threads.

use std::sync::Arc;

use cache::PolicyKind;
use cache::near::{ManualClock, NearCache, NearCacheConfig};

fn cache_with(capacity: u64, policy: PolicyKind) -> NearCache<u64, u64, Arc<ManualClock>> {
    let config = NearCacheConfig {
        policy,
        ..NearCacheConfig::new(capacity)
    };
    NearCache::new(config, Arc::new(ManualClock::new(0)))
}

#[test]
fn get_insert_remove() {
    let cache = cache_with(1_000, NearCacheConfig::new(1_000).policy);
    assert_eq!(cache.get(&1), None);
    assert!(cache.insert(1, 10));
    assert_eq!(cache.get(&1), Some(10));
    assert!(cache.insert(1, 11));
    assert_eq!(cache.get(&1), Some(11));
    assert_eq!(cache.remove(&1), Some(11));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn clear_drops_everything_and_keeps_the_capacity() {
    for policy in PolicyKind::ALL {
        let cache = cache_with(1_024, policy);
        for key in 0..500u64 {
            assert!(cache.insert(key, key));
        }
        cache.clear();
        assert_eq!(cache.stats().entries, 0, "{policy}");
        assert_eq!(cache.get(&7), None, "{policy}");
        for key in 0..20_000u64 {
            cache.insert(key % 5_000, key);
        }
        let stats = cache.stats();
        assert!(
            stats.weight <= 1_024 + cache.shard_count() as u64,
            "{policy}: {stats:?}"
        );
        assert!(stats.entries > 900, "{policy}: {stats:?}");
    }
}

#[test]
fn capacity_holds_for_every_policy() {
    for policy in PolicyKind::ALL {
        let cache = cache_with(1_024, policy);
        for key in 0..20_000u64 {
            cache.insert(key % 5_000, key);
        }
        let stats = cache.stats();
        assert!(
            stats.weight <= 1_024 + cache.shard_count() as u64,
            "{policy}: {stats:?}"
        );
        assert!(
            stats.entries > 900,
            "{policy}: only {} entries kept",
            stats.entries
        );
    }
}

#[test]
fn entries_expire_by_the_injected_clock() {
    let config = NearCacheConfig {
        default_ttl_ms: Some(100),
        ..NearCacheConfig::new(1_000)
    };
    let clock = Arc::new(ManualClock::new(5_000));
    let cache: NearCache<&str, u32, _> = NearCache::new(config, Arc::clone(&clock));
    cache.insert("default", 1);
    cache.insert_with("long", 2, 1, Some(1_000));
    cache.insert_with("forever", 3, 1, None);
    clock.advance(99);
    assert_eq!(cache.get("default"), Some(1));
    clock.advance(1);
    assert_eq!(cache.get("default"), None, "invisible at the deadline");
    assert_eq!(cache.get("long"), Some(2));
    clock.advance(10_000);
    assert_eq!(cache.get("long"), None);
    assert_eq!(cache.get("forever"), Some(3));
    assert!(
        !cache.insert_with("zero", 4, 1, Some(0)),
        "a zero TTL is refused"
    );
}

#[test]
fn oversized_entries_are_refused() {
    let cache = cache_with(100, NearCacheConfig::new(100).policy);
    assert!(!cache.insert_with(1, 1, 1_000, None));
    assert_eq!(cache.get(&1), None);
}

/// Two threads hammer overlapping keys; every value read must be one that
/// was written for that key, and the capacity must hold afterwards. S3-FIFO
/// records hits under the read lock, LRU falls back to the write lock: both
/// paths run.
#[test]
fn concurrent_readers_and_writers_see_consistent_values() {
    for policy in [PolicyKind::S3Fifo, PolicyKind::Lru] {
        hammer_from_two_threads(policy);
    }
}

fn hammer_from_two_threads(policy: PolicyKind) {
    let cache = cache_with(4_096, policy);
    std::thread::scope(|scope| {
        for thread in 0..2u64 {
            let cache = &cache;
            scope.spawn(move || {
                for step in 0..50_000u64 {
                    let key = (step * 7 + thread) % 10_000;
                    match cache.get(&key) {
                        Some(value) => assert_eq!(value % 10_000, key, "value of another key"),
                        None => {
                            cache.insert(key, key + 10_000 * thread);
                        }
                    }
                }
            });
        }
    });
    let stats = cache.stats();
    assert!(
        stats.weight <= 4_096 + cache.shard_count() as u64,
        "{policy}: {stats:?}"
    );
}
