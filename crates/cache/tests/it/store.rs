//! Scenario tests for the deterministic store: each operation's answers,
//! logical-time TTL, exact byte accounting and "an error changes nothing".

use cache::store::{ENTRY_OVERHEAD_BYTES, Ttl, weight_bytes};
use cache::{PolicyKind, Store, StoreConfig, StoreError};

fn store_with(capacity_bytes: u64) -> Store {
    Store::new(StoreConfig::new(capacity_bytes))
}

#[test]
fn get_put_append_delete_answer_like_a_map() {
    let mut store = store_with(10_000);
    assert_eq!(store.get(b"k", 0), None);
    store.put(b"k", b"v1".to_vec(), None, 1).expect("fits");
    assert_eq!(store.get(b"k", 2), Some(&b"v1"[..]));
    assert_eq!(store.append(b"k", b"+x", 3), Ok(4));
    assert_eq!(store.append(b"new", b"abc", 3), Ok(3));
    assert_eq!(store.get(b"k", 4), Some(&b"v1+x"[..]));
    assert!(store.delete(b"k", 5));
    assert!(!store.delete(b"k", 5));
    assert_eq!(
        store.get_many(&[b"k", b"new"], 6),
        vec![None, Some(b"abc".to_vec())]
    );
    let stats = store.stats();
    assert_eq!((stats.hits, stats.misses), (3, 2));
    assert_eq!(stats.bytes, weight_bytes(b"new", b"abc"));
}

#[test]
fn bytes_are_key_plus_value_plus_fixed_overhead() {
    let mut store = store_with(10_000);
    store.put(b"abc", vec![0; 10], None, 0).expect("fits");
    assert_eq!(store.used_bytes(), 3 + 10 + ENTRY_OVERHEAD_BYTES);
    store.put(b"abc", vec![0; 4], None, 0).expect("fits");
    assert_eq!(store.used_bytes(), 3 + 4 + ENTRY_OVERHEAD_BYTES);
}

#[test]
fn compare_and_set_swaps_only_on_match() {
    let mut store = store_with(10_000);
    assert_eq!(
        store.compare_and_set(b"k", None, b"a".to_vec(), None, 0),
        Ok(())
    );
    assert_eq!(
        store.compare_and_set(b"k", Some(b"zzz"), b"b".to_vec(), None, 1),
        Err(StoreError::CasMismatch {
            current: Some(b"a".to_vec())
        })
    );
    assert_eq!(
        store.compare_and_set(b"k", Some(b"a"), b"b".to_vec(), None, 2),
        Ok(())
    );
    assert_eq!(store.get(b"k", 3), Some(&b"b"[..]));
}

#[test]
fn increment_parses_strictly_and_changes_nothing_on_error() {
    let mut store = store_with(10_000);
    assert_eq!(store.increment(b"n", 5, 0), Ok(5));
    assert_eq!(store.increment(b"n", -7, 0), Ok(-2));
    store.put(b"text", b"12a".to_vec(), None, 0).expect("fits");
    let before = store.snapshot();
    assert_eq!(
        store.increment(b"text", 1, 0),
        Err(StoreError::NotAnInteger)
    );
    store
        .put(b"max", i64::MAX.to_string().into_bytes(), None, 0)
        .expect("fits");
    let before_overflow = store.snapshot();
    assert_eq!(
        store.increment(b"max", 1, 0),
        Err(StoreError::IncrementOverflow)
    );
    assert_eq!(store.snapshot(), before_overflow);
    assert_ne!(before, before_overflow);
    for bad in [&b" 1"[..], b"+1", b"", b"-", b"1.0"] {
        store.put(b"bad", bad.to_vec(), None, 0).expect("fits");
        assert_eq!(
            store.increment(b"bad", 1, 0),
            Err(StoreError::NotAnInteger),
            "{bad:?}"
        );
    }
}

#[test]
fn too_large_is_refused_and_changes_nothing() {
    let capacity_bytes = 200;
    let mut store = store_with(capacity_bytes);
    store.put(b"k", b"small".to_vec(), None, 0).expect("fits");
    let before = store.snapshot();
    let error = store.put(b"k", vec![0; 200], None, 0);
    assert_eq!(
        error,
        Err(StoreError::TooLarge {
            weight_bytes: 1 + 200 + ENTRY_OVERHEAD_BYTES,
            capacity_bytes
        })
    );
    assert!(matches!(
        store.append(b"k", &[0; 200], 0),
        Err(StoreError::TooLarge { .. })
    ));
    assert_eq!(store.snapshot(), before);
    assert_eq!(store.get(b"k", 0), Some(&b"small"[..]));
}

#[test]
fn ttl_uses_logical_time_only() {
    let mut store = store_with(10_000);
    store
        .put(b"k", b"v".to_vec(), Some(100), 1_000)
        .expect("fits");
    assert_eq!(store.ttl(b"k", 1_040), Ttl::RemainingMs(60));
    assert_eq!(store.get(b"k", 1_099), Some(&b"v"[..]));
    // Invisible at the deadline exactly, before any cleanup ran.
    assert_eq!(store.get(b"k", 1_100), None);
    assert_eq!(store.ttl(b"k", 1_100), Ttl::Missing);
    assert_eq!(store.stats().expirations, 1);
    assert_eq!(
        store.put(b"k", b"v".to_vec(), Some(0), 0),
        Err(StoreError::ZeroTtl)
    );
}

#[test]
fn time_never_goes_backwards() {
    let mut store = store_with(10_000);
    store.put(b"k", b"v".to_vec(), Some(10), 100).expect("fits");
    assert_eq!(store.get(b"k", 200), None);
    store.put(b"j", b"v".to_vec(), Some(10), 100).expect("fits");
    // `now_ms` 100 is older than the 200 already seen: the deadline is 210.
    assert_eq!(store.ttl(b"j", 0), Ttl::RemainingMs(10));
}

#[test]
fn expire_persist_and_writes_that_keep_the_deadline() {
    let mut store = store_with(10_000);
    store.put(b"k", b"1".to_vec(), None, 0).expect("fits");
    assert_eq!(store.ttl(b"k", 0), Ttl::Persistent);
    assert_eq!(store.expire(b"k", 50, 10), Ok(true));
    assert_eq!(store.expire(b"absent", 50, 10), Ok(false));
    store.append(b"k", b"0", 20).expect("fits");
    store.increment(b"k", 1, 20).expect("integer");
    assert_eq!(
        store.ttl(b"k", 20),
        Ttl::RemainingMs(40),
        "append/increment keep the deadline"
    );
    assert!(store.persist(b"k", 30));
    assert!(!store.persist(b"k", 30));
    assert_eq!(store.get(b"k", 1_000_000), Some(&b"11"[..]));
    store.expire(b"k", 5, 1_000_000).expect("non-zero ttl");
    store
        .put(b"k", b"x".to_vec(), None, 1_000_001)
        .expect("fits");
    assert_eq!(
        store.ttl(b"k", 1_000_001),
        Ttl::Persistent,
        "put replaces the deadline"
    );
}

#[test]
fn cleanup_reclaims_a_bounded_number_per_operation() {
    let mut store = store_with(1 << 20);
    for index in 0..100u32 {
        store
            .put(&index.to_be_bytes(), vec![1], Some(10), 0)
            .expect("fits");
    }
    // One unrelated operation after the deadline reclaims at most the bound.
    assert_eq!(store.get(b"other", 10), None);
    let reclaim_per_op = store.config().reclaim_per_op;
    assert_eq!(store.stats().expirations, reclaim_per_op);
    assert_eq!(store.len(), 100 - reclaim_per_op);
    for _ in 0..20 {
        store.get(b"other", 11);
    }
    assert_eq!(store.len(), 0);
    assert_eq!(store.stats().expirations, 100);
}

#[test]
fn eviction_respects_byte_and_entry_capacity() {
    for policy in PolicyKind::ALL {
        let config = StoreConfig::new(10 * weight_bytes(b"k00", b"v")).with_policy(policy);
        let mut store = Store::new(config.with_capacity_entries(5));
        for index in 0..50u32 {
            let key = format!("k{index:02}");
            store
                .put(key.as_bytes(), b"v".to_vec(), None, 0)
                .expect("fits");
            assert_eq!(
                store.get(key.as_bytes(), 0),
                Some(&b"v"[..]),
                "{policy}: just written"
            );
            assert!(store.len() <= 5, "{policy}: {} entries", store.len());
        }
        assert_eq!(store.stats().evictions, 45, "{policy}");
        store.check_invariants().expect("invariants");
    }
}

#[test]
fn lru_evicts_the_least_recently_used() {
    let config = StoreConfig::new(1 << 20)
        .with_policy(PolicyKind::Lru)
        .with_capacity_entries(2);
    let mut store = Store::new(config);
    store.put(b"a", b"1".to_vec(), None, 0).expect("fits");
    store.put(b"b", b"2".to_vec(), None, 0).expect("fits");
    store.get(b"a", 0);
    store.put(b"c", b"3".to_vec(), None, 0).expect("fits");
    assert_eq!(store.get(b"b", 0), None);
    assert!(store.get(b"a", 0).is_some());
}

#[test]
fn peek_respects_ttl_and_changes_nothing() {
    let config = StoreConfig::new(1 << 20)
        .with_policy(PolicyKind::Lru)
        .with_capacity_entries(2);
    let mut store = Store::new(config);
    store.put(b"a", b"1".to_vec(), None, 0).expect("fits");
    store.put(b"b", b"2".to_vec(), Some(10), 0).expect("fits");
    let before = store.snapshot();
    assert_eq!(store.peek(b"a", 5), Some(&b"1"[..]));
    assert_eq!(store.peek(b"b", 9), Some(&b"2"[..]));
    assert_eq!(store.peek(b"b", 10), None, "expired at its deadline");
    assert_eq!(store.peek(b"zz", 10), None);
    assert_eq!(store.snapshot(), before, "a peek changed the store");
    // A peek of "a" is no access: "a" is still the least recently used.
    store.put(b"c", b"3".to_vec(), None, 5).expect("fits");
    assert_eq!(store.get(b"a", 5), None);
}

#[test]
fn migration_exports_visible_entries_with_deadlines() {
    let mut source = store_with(10_000);
    source
        .put(b"keep", b"1".to_vec(), Some(1_000), 0)
        .expect("fits");
    source
        .put(b"gone", b"2".to_vec(), Some(5), 0)
        .expect("fits");
    source
        .put(b"forever", b"3".to_vec(), None, 0)
        .expect("fits");
    let mut target = store_with(10_000);
    for entry in source.entries(10) {
        assert!(target.import(entry, 10).expect("fits"));
    }
    assert_eq!(target.len(), 2);
    assert_eq!(target.ttl(b"keep", 10), Ttl::RemainingMs(990));
    assert_eq!(target.ttl(b"forever", 10), Ttl::Persistent);
}

#[test]
fn restore_rejects_garbage_and_truncation() {
    let mut store = store_with(10_000);
    store.put(b"k", b"v".to_vec(), Some(10), 0).expect("fits");
    let bytes = store.snapshot();
    let restored = Store::restore(&bytes).expect("round trip");
    assert_eq!(restored.snapshot(), bytes);
    assert!(matches!(
        Store::restore(&bytes[..bytes.len() - 1]),
        Err(StoreError::CorruptSnapshot { .. })
    ));
    assert!(matches!(
        Store::restore(b"not a snapshot"),
        Err(StoreError::CorruptSnapshot { .. })
    ));
    let mut extended = bytes.clone();
    extended.push(0);
    assert!(matches!(
        Store::restore(&extended),
        Err(StoreError::CorruptSnapshot { .. })
    ));
}

#[test]
fn a_smaller_capacity_evicts_until_the_store_fits_and_a_larger_one_evicts_nothing() {
    let mut store = store_with(10_000);
    for key in 0..40u32 {
        store
            .put(format!("key:{key}").as_bytes(), vec![7; 100], None, 1)
            .expect("fits");
    }
    let before = store.stats();
    assert!(
        before.bytes > 5_000,
        "the store holds {} bytes",
        before.bytes
    );
    let evicted = store.set_capacity_bytes(5_000);
    let after = store.stats();
    assert!(evicted > 0);
    assert_eq!(after.evictions, before.evictions + evicted);
    assert_eq!(after.entries, before.entries - evicted);
    assert!(after.bytes <= 5_000, "{} bytes in 5000", after.bytes);
    assert_eq!(store.config().capacity_bytes, 5_000);
    store.check_invariants().expect("invariants hold");
    // The new capacity is the store's: a snapshot restores with it, and an
    // entry that no longer fits is refused.
    let restored = Store::restore(&store.snapshot()).expect("restores");
    assert_eq!(restored.config().capacity_bytes, 5_000);
    assert!(matches!(
        store.put(b"big", vec![0; 6_000], None, 2),
        Err(StoreError::TooLarge { .. })
    ));
    assert_eq!(store.set_capacity_bytes(20_000), 0);
    assert_eq!(store.stats().entries, after.entries);
}

#[test]
fn replicas_that_change_capacity_at_the_same_point_stay_identical() {
    let fill = |store: &mut Store, from: u32| {
        for key in from..from + 60 {
            let key = format!("key:{}", key % 70);
            store
                .put(key.as_bytes(), vec![1; 80], None, 1)
                .expect("fits");
            store.get(b"key:3", 1);
        }
    };
    let (mut first, mut second) = (store_with(8_000), store_with(8_000));
    for store in [&mut first, &mut second] {
        fill(store, 0);
        store.set_capacity_bytes(3_000);
        fill(store, 60);
    }
    assert_eq!(first.snapshot(), second.snapshot());
}

/// `snapshot_size_hint` is room for the whole snapshot (a buffer of that
/// size never grows while the store is written), and not far over it (at
/// most four times: the capacity counts 64 bytes of overhead per entry,
/// which encodes to far less), for small and 100-byte values, with
/// evictions (the policy's records and its shadows at their fullest),
/// under each policy. With the charged bytes alone, small values under the
/// adaptive policy wrote more than twice the hint (its shadows).
#[test]
fn the_snapshot_size_hint_covers_the_snapshot() {
    for kind in PolicyKind::ALL {
        for (keys, value_bytes, capacity_bytes) in [
            (20_000u64, 8usize, 1u64 << 30),
            (30_000, 100, 2 << 20),
            (200, 3, 1 << 20),
        ] {
            let mut store = Store::new(StoreConfig::new(capacity_bytes).with_policy(kind));
            for index in 0..keys {
                let key = format!("key:{:08}", index.wrapping_mul(2_654_435_761) % keys);
                store
                    .put(key.as_bytes(), vec![b'v'; value_bytes], None, index)
                    .expect("fits");
            }
            let written = store.snapshot().len() as u64;
            let hint = store.snapshot_size_hint();
            assert!(
                written <= hint && hint <= 4 * written,
                "{kind}, {keys} keys of {value_bytes} bytes: {written} bytes written, hint {hint}"
            );
        }
    }
}
