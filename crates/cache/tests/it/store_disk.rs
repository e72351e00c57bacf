//! The store with its disk tier (L3), against models and across restarts:
//!
//! - with a disk big enough to keep every key, a store whose memory is
//!   small answers every operation (reads that change nothing included)
//!   exactly as an unbounded store without a tier: the tier is invisible;
//! - with a small disk, two stores fed the same operations give the same
//!   answers and the same snapshot bytes, bounds hold after every
//!   operation, and snapshot + restore into a fresh directory + continue
//!   equals continuing;
//! - crash tests: a segment truncated mid-record or with a flipped byte
//!   gives errors or misses, never another value, and a restart from a
//!   healthy replica's snapshot recovers the exact state.

use std::path::Path;

use cache::store::value::HashValue;
use cache::store::{DiskConfig, Kind, Value};
use cache::{PolicyKind, Store, StoreConfig, StoreError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Operation {
    Get(u8),
    Put(u8, usize, Option<u64>),
    Append(u8, usize),
    Delete(u8),
    CompareAndSet(u8, Option<usize>, usize),
    Increment(u8, i64),
    Expire(u8, u64),
    Persist(u8),
    Ttl(u8),
    HashSet(u8, u8, usize),
    Value(u8),
}

fn operation() -> impl Strategy<Value = (Operation, u64)> {
    let key = 0u8..24;
    let size = 0usize..48;
    let ttl = prop_oneof![3 => Just(None), 1 => (0u64..60).prop_map(Some)];
    let operation = prop_oneof![
        4 => key.clone().prop_map(Operation::Get),
        4 => (key.clone(), size.clone(), ttl).prop_map(|(k, s, t)| Operation::Put(k, s, t)),
        1 => (key.clone(), size.clone()).prop_map(|(k, s)| Operation::Append(k, s)),
        1 => key.clone().prop_map(Operation::Delete),
        1 => (key.clone(), prop::option::of(0usize..4), size.clone())
            .prop_map(|(k, e, s)| Operation::CompareAndSet(k, e, s)),
        1 => (key.clone(), -3i64..3).prop_map(|(k, d)| Operation::Increment(k, d)),
        1 => (key.clone(), 0u64..60).prop_map(|(k, t)| Operation::Expire(k, t)),
        1 => key.clone().prop_map(Operation::Persist),
        1 => key.clone().prop_map(Operation::Ttl),
        1 => (key.clone(), 0u8..4, size).prop_map(|(k, f, s)| Operation::HashSet(k, f, s)),
        1 => key.prop_map(Operation::Value),
    ];
    (operation, 0u64..6)
}

fn key_bytes(key: u8) -> Vec<u8> {
    format!("key-{key}").into_bytes()
}

fn value_bytes(size: usize) -> Vec<u8> {
    vec![b'a' + (size % 26) as u8; size]
}

/// Longest string an append may make (keeps every entry under the
/// smallest memory capacity, so both stores refuse the same writes).
const APPEND_LENGTH_MAX: usize = 120;

/// Applies one operation; returns a printable answer to compare stores by.
fn apply(store: &mut Store, operation: &Operation, now_ms: u64) -> String {
    match operation {
        Operation::Get(key) => format!("{:?}", store.get(&key_bytes(*key), now_ms)),
        Operation::Put(key, size, ttl_ms) => format!(
            "{:?}",
            store.put(&key_bytes(*key), value_bytes(*size), *ttl_ms, now_ms)
        ),
        Operation::Append(key, size) => {
            let length = store.get(&key_bytes(*key), now_ms).map_or(0, <[u8]>::len);
            if length + size > APPEND_LENGTH_MAX {
                return "append skipped".to_owned();
            }
            format!(
                "{:?}",
                store.append(&key_bytes(*key), &value_bytes(*size), now_ms)
            )
        }
        Operation::Delete(key) => format!("{:?}", store.delete(&key_bytes(*key), now_ms)),
        Operation::CompareAndSet(key, expected, size) => {
            let expected = expected.map(value_bytes);
            let outcome = store.compare_and_set(
                &key_bytes(*key),
                expected.as_deref(),
                value_bytes(*size),
                None,
                now_ms,
            );
            format!("{outcome:?}")
        }
        Operation::Increment(key, delta) => {
            format!("{:?}", store.increment(&key_bytes(*key), *delta, now_ms))
        }
        Operation::Expire(key, ttl_ms) => {
            format!("{:?}", store.expire(&key_bytes(*key), *ttl_ms, now_ms))
        }
        Operation::Persist(key) => format!("{:?}", store.persist(&key_bytes(*key), now_ms)),
        Operation::Ttl(key) => format!("{:?}", store.ttl(&key_bytes(*key), now_ms)),
        Operation::HashSet(key, field, size) => {
            let field = [*field];
            let growth_bytes = 1 + *size as u64 + 32;
            let outcome = store.update(
                &key_bytes(*key),
                Kind::Hash,
                growth_bytes,
                now_ms,
                |value| match value {
                    Value::Hash(hash) => {
                        Ok::<_, StoreError>(hash.insert(&field, value_bytes(*size)))
                    }
                    other => panic!("update handed a {:?} for a hash", other.kind()),
                },
            );
            format!("{outcome:?}")
        }
        Operation::Value(key) => format!("{:?}", store.value(&key_bytes(*key), now_ms)),
    }
}

/// What the read-only calls say about `key` (they must change nothing).
fn peek_all(store: &Store, key: u8, now_ms: u64) -> String {
    let key = key_bytes(key);
    let value = store
        .read_value(&key, now_ms)
        .map(|value| value.map(|value| value.into_owned()));
    format!(
        "{value:?} {:?} {:?} {:?}",
        store.kind(&key, now_ms),
        store.peek_ttl(&key, now_ms),
        store.peek_expiry(&key, now_ms)
    )
}

fn policy_config(policy_index: usize, capacity_bytes: u64) -> StoreConfig {
    let mut config = StoreConfig::new(capacity_bytes).with_policy(PolicyKind::ALL[policy_index]);
    config.reclaim_per_op = capacity_bytes % 4;
    config
}

fn disk_config(capacity_bytes: u64, segment_bytes: u64) -> DiskConfig {
    DiskConfig {
        capacity_bytes,
        segment_bytes,
    }
}

fn open(config: StoreConfig, directory: &Path) -> Result<Store, TestCaseError> {
    Store::open(config, directory).map_err(|error| TestCaseError::fail(error.to_string()))
}

fn times(operations: &[(Operation, u64)]) -> Vec<u64> {
    operations
        .iter()
        .scan(0, |now_ms, (_, step_ms)| {
            *now_ms += step_ms;
            Some(*now_ms)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The model: a store without a tier and without a bound. With a disk
    /// that never has to evict, the tiered store must answer exactly as
    /// it does, however small its memory.
    #[test]
    fn with_room_on_disk_the_tier_is_invisible(
        policy_index in 0..PolicyKind::ALL.len(),
        memory_bytes in 600u64..1_500,
        segment_bytes in 64u64..2_048,
        operations in prop::collection::vec(operation(), 1..300),
    ) {
        let directory = tempfile::tempdir().map_err(|error| TestCaseError::fail(error.to_string()))?;
        let config = policy_config(policy_index, memory_bytes)
            .with_disk(disk_config(1 << 20, segment_bytes));
        let mut tiered = open(config, directory.path())?;
        let mut model = Store::new(policy_config(policy_index, u64::MAX));
        for ((operation, _), now_ms) in operations.iter().zip(times(&operations)) {
            let expected = apply(&mut model, operation, now_ms);
            let seen = apply(&mut tiered, operation, now_ms);
            prop_assert_eq!(&seen, &expected, "{:?} at {}", operation, now_ms);
            tiered.check_invariants().map_err(TestCaseError::fail)?;
            prop_assert!(tiered.used_bytes() <= memory_bytes);
            prop_assert!(tiered.disk_fault().is_none());
            let stats = tiered.stats();
            prop_assert_eq!(stats.disk_evictions, 0, "the disk was sized never to evict");
            // Every key reads through the same (value, type, TTL) as the
            // model, in whichever tier it is.
            for key in 0..24 {
                let model_value = model.peek_value(&key_bytes(key), now_ms).cloned();
                let expected = format!(
                    "{:?} {:?} {:?} {:?}",
                    Ok::<_, StoreError>(model_value),
                    model.kind(&key_bytes(key), now_ms),
                    model.peek_ttl(&key_bytes(key), now_ms),
                    model.peek_expiry(&key_bytes(key), now_ms)
                );
                prop_assert_eq!(peek_all(&tiered, key, now_ms), expected, "key {}", key);
            }
        }
    }

    /// With a small disk: determinism, bounds, and restore into a fresh
    /// directory.
    #[test]
    fn replicas_stay_identical_through_eviction_and_restore(
        policy_index in 0..PolicyKind::ALL.len(),
        memory_bytes in 450u64..1_000,
        disk_bytes in 1u64..2_000,
        segment_bytes in 64u64..1_024,
        operations in prop::collection::vec(operation(), 2..300),
        split_fraction in 0.0f64..1.0,
    ) {
        let directories: Vec<_> = (0..3)
            .map(|_| tempfile::tempdir())
            .collect::<Result<_, _>>()
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        let config = policy_config(policy_index, memory_bytes)
            .with_disk(disk_config(disk_bytes, segment_bytes));
        let mut first = open(config, directories[0].path())?;
        let mut second = open(config, directories[1].path())?;
        let times_ms = times(&operations);
        let split = ((operations.len() as f64) * split_fraction) as usize;
        let mut restored = None;
        for (index, ((operation, _), now_ms)) in operations.iter().zip(&times_ms).enumerate() {
            if index == split {
                let snapshot = first.snapshot();
                prop_assert!(Store::restore(&snapshot).is_err(), "a tiered snapshot needs a directory");
                let store = Store::restore_with_disk(&snapshot, directories[2].path())
                    .map_err(|error| TestCaseError::fail(error.to_string()))?;
                prop_assert_eq!(store.snapshot(), snapshot);
                restored = Some(store);
            }
            let answer = apply(&mut first, operation, *now_ms);
            prop_assert_eq!(&apply(&mut second, operation, *now_ms), &answer);
            if let Some(store) = &mut restored {
                prop_assert_eq!(&apply(store, operation, *now_ms), &answer);
            }
            first.check_invariants().map_err(TestCaseError::fail)?;
            let stats = first.stats();
            prop_assert!(stats.bytes <= memory_bytes);
            prop_assert!(stats.disk_bytes <= disk_bytes);
            prop_assert_eq!(stats, second.stats());
            prop_assert!(first.disk_fault().is_none());
        }
        let snapshot = first.snapshot();
        prop_assert_eq!(&second.snapshot(), &snapshot);
        if let Some(store) = &restored {
            store.check_invariants().map_err(TestCaseError::fail)?;
            prop_assert_eq!(&store.snapshot(), &snapshot);
        }
        // Reads that change nothing leave the snapshot as it was.
        let now_ms = times_ms.last().copied().unwrap_or(0);
        for key in 0..24 {
            peek_all(&first, key, now_ms + 7);
        }
        prop_assert_eq!(first.snapshot(), snapshot);
    }
}

/// A store whose memory holds about two entries, so most of `keys` are on
/// disk; every value names its key.
fn filled(directory: &Path, keys: u8) -> Store {
    let config = StoreConfig::new(300).with_disk(disk_config(1 << 20, 512));
    let mut store = Store::open(config, directory).expect("open the store");
    for key in 0..keys {
        store
            .put(&key_bytes(key), expected_value(key), None, 1)
            .expect("the entry fits");
    }
    store
}

fn expected_value(key: u8) -> Vec<u8> {
    format!("value of key {key} {}", "x".repeat(40)).into_bytes()
}

fn segment_files(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(directory)
        .expect("list the tier directory")
        .map(|item| item.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .collect();
    files.sort();
    files
}

/// Reads every key both ways after damage: a read-only read is the right
/// value or an error; a get is the right value or a miss with a fault.
/// Returns how many keys could not be read.
fn check_no_wrong_value(store: &mut Store, keys: u8) -> u64 {
    let mut unreadable = 0;
    for key in 0..keys {
        match store.read(&key_bytes(key), 2) {
            Ok(Some(value)) => assert_eq!(value.as_ref(), expected_value(key), "key {key}"),
            Ok(None) => panic!("key {key} vanished without an error"),
            Err(StoreError::Disk(_)) => unreadable += 1,
            Err(other) => panic!("key {key}: unexpected error {other}"),
        }
    }
    for key in 0..keys {
        match store.get(&key_bytes(key), 3) {
            Some(value) => assert_eq!(value, expected_value(key), "key {key}"),
            None => assert!(
                store.disk_fault().is_some(),
                "key {key} missed without a fault"
            ),
        }
    }
    store
        .check_invariants()
        .expect("a damaged tier keeps its bookkeeping");
    unreadable
}

/// Rebuilds the damaged store from the healthy replica's snapshot, into
/// the damaged directory, and checks it equals that replica.
fn check_restart_recovers(healthy: &Store, directory: &Path, keys: u8) {
    let snapshot = healthy.snapshot();
    let mut restarted =
        Store::restore_with_disk(&snapshot, directory).expect("restore from the healthy replica");
    assert_eq!(restarted.snapshot(), snapshot);
    assert!(restarted.disk_fault().is_none());
    for key in 0..keys {
        assert_eq!(
            restarted.get(&key_bytes(key), 2),
            Some(expected_value(key).as_slice())
        );
    }
}

#[test]
fn a_flipped_byte_is_an_error_never_a_wrong_value() {
    const KEYS: u8 = 30;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let healthy_directory = tempfile::tempdir().expect("a temporary directory");
    let mut damaged = filled(directory.path(), KEYS);
    let healthy = filled(healthy_directory.path(), KEYS);

    // Phase 1: flip one byte in the middle of every segment file.
    let files = segment_files(directory.path());
    assert!(files.len() > 2, "the entries span several segments");
    for path in &files {
        let mut bytes = std::fs::read(path).expect("read a segment");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        std::fs::write(path, bytes).expect("write the damaged segment");
    }
    assert!(
        damaged.try_snapshot().is_err(),
        "a damaged tier cannot be copied"
    );

    // Phase 2: every read is right or an error.
    let unreadable = check_no_wrong_value(&mut damaged, KEYS);
    assert!(unreadable >= 1, "the damage was seen");
    assert!(damaged.disk_fault().is_some());

    // Phase 3: a restart from a healthy replica's snapshot recovers.
    check_restart_recovers(&healthy, directory.path(), KEYS);
}

#[test]
fn a_truncated_segment_is_an_error_never_a_wrong_value() {
    const KEYS: u8 = 30;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let healthy_directory = tempfile::tempdir().expect("a temporary directory");
    let mut damaged = filled(directory.path(), KEYS);
    let healthy = filled(healthy_directory.path(), KEYS);

    // Phase 1: cut the oldest segment in the middle of a record.
    let files = segment_files(directory.path());
    let oldest = &files[0];
    let length = std::fs::metadata(oldest).expect("stat a segment").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(oldest)
        .expect("open a segment");
    file.set_len(length / 2 + 3).expect("truncate a segment");

    // Phase 2 and 3 as for a flipped byte.
    let unreadable = check_no_wrong_value(&mut damaged, KEYS);
    assert!(unreadable >= 1, "the cut record was seen");
    check_restart_recovers(&healthy, directory.path(), KEYS);
}

#[test]
fn evicted_entries_come_back_with_their_deadline() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let config = StoreConfig::new(300).with_disk(disk_config(1 << 20, 4096));
    let mut store = Store::open(config, directory.path()).expect("open the store");
    store
        .put(b"short", b"lived".to_vec(), Some(100), 0)
        .expect("fits");
    store
        .put(b"long", b"lived".to_vec(), Some(10_000), 0)
        .expect("fits");
    for key in 0..10 {
        store
            .put(&key_bytes(key), expected_value(key), None, 1)
            .expect("fits");
    }
    assert!(store.disk().is_some_and(|disk| disk.contains(b"long")));
    assert_eq!(
        store.peek_ttl(b"long", 10),
        cache::store::Ttl::RemainingMs(9_990)
    );
    // Expired on disk: invisible, and gone once touched.
    assert_eq!(store.read(b"short", 100).expect("no disk fault"), None);
    assert_eq!(store.get(b"short", 100), None);
    assert!(!store.disk().is_some_and(|disk| disk.contains(b"short")));
    // Back from disk, with its deadline.
    assert_eq!(store.get(b"long", 200), Some(&b"lived"[..]));
    assert_eq!(
        store.ttl(b"long", 200),
        cache::store::Ttl::RemainingMs(9_800)
    );
    let stats = store.stats();
    assert_eq!(stats.disk_hits, 1);
    assert_eq!(stats.disk_misses, 1);
    assert!(stats.disk_writes >= 2);
    assert!(stats.memory_hit_ratio() < stats.hit_ratio());
}

#[test]
fn a_store_without_a_tier_snapshots_as_before() {
    // The version 1 layout: no header, and `Store::restore` reads it.
    let mut store = Store::new(StoreConfig::new(1_000));
    store.put(b"key", b"value".to_vec(), None, 0).expect("fits");
    let snapshot = store.snapshot();
    assert_ne!(snapshot.first(), Some(&codec::VERSION_MARK));
    let restored = Store::restore(&snapshot).expect("restore");
    assert_eq!(restored.snapshot(), snapshot);
    let directory = tempfile::tempdir().expect("a temporary directory");
    let restored = Store::restore_with_disk(&snapshot, directory.path()).expect("restore");
    assert!(restored.disk().is_none());
}

#[test]
fn hash_values_survive_the_round_trip_through_disk() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let config = StoreConfig::new(400).with_disk(disk_config(1 << 20, 4096));
    let mut store = Store::open(config, directory.path()).expect("open the store");
    let mut expected = HashValue::default();
    expected.insert(b"field", b"value".to_vec());
    store
        .put_value(b"hash", Value::Hash(expected.clone()), None, 0)
        .expect("fits");
    for key in 0..10 {
        store
            .put(&key_bytes(key), expected_value(key), None, 1)
            .expect("fits");
    }
    assert!(
        store.peek_value(b"hash", 2).is_none(),
        "evicted from memory"
    );
    assert_eq!(store.kind(b"hash", 2), Some(Kind::Hash));
    assert_eq!(
        store
            .read_value(b"hash", 2)
            .expect("readable")
            .map(|value| value.into_owned()),
        Some(Value::Hash(expected.clone()))
    );
    assert_eq!(store.value(b"hash", 3), Some(&Value::Hash(expected)));
}

#[test]
fn failed_writes_lose_values_but_not_the_logical_state() {
    const KEYS: u8 = 60;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let healthy_directory = tempfile::tempdir().expect("a temporary directory");
    // Small segments, so that spilling keeps opening new files.
    let config = StoreConfig::new(300).with_disk(disk_config(1 << 20, 256));
    let mut failing = Store::open(config, directory.path()).expect("open the store");
    let mut healthy = Store::open(config, healthy_directory.path()).expect("open the store");

    // Phase 1: both replicas apply the same writes; halfway, the failing
    // one's directory disappears, so it can no longer open segments.
    for key in 0..KEYS {
        if key == KEYS / 2 {
            std::fs::remove_dir_all(directory.path()).expect("remove the directory");
        }
        for store in [&mut failing, &mut healthy] {
            store
                .put(&key_bytes(key), expected_value(key), None, 1)
                .expect("the entry fits");
        }
    }
    assert!(
        failing.disk_fault().is_some(),
        "the failed writes were reported"
    );
    assert!(healthy.disk_fault().is_none());

    // Phase 2: the logical state is still the healthy replica's.
    assert_eq!(failing.stats(), healthy.stats());
    let keys =
        |store: &Store| -> Vec<Vec<u8>> { store.keys(2).map(|(key, _)| key.to_vec()).collect() };
    assert_eq!(keys(&failing), keys(&healthy));
    failing.check_invariants().expect("bookkeeping intact");

    // Phase 3: values that never reached a file are errors, never wrong.
    let lost = (0..KEYS)
        .filter(|&key| match failing.read(&key_bytes(key), 2) {
            Ok(Some(value)) => {
                assert_eq!(value.as_ref(), expected_value(key), "key {key}");
                false
            }
            Ok(None) => panic!("key {key} vanished without an error"),
            Err(_) => true,
        })
        .count();
    assert!(lost > 0, "some writes failed");
    assert!(failing.try_snapshot().is_err());

    // Phase 4: rebuilt from the healthy replica, in a new directory.
    let fresh = tempfile::tempdir().expect("a temporary directory");
    check_restart_recovers(&healthy, fresh.path(), KEYS);
}

/// A clone of a store with a tier is a read-only copy for a snapshot: the
/// original then changes heavily (writes that spill to disk and evict
/// from it, segment collection, deletions, promotions, a dropped
/// directory), and the copy still snapshots exactly what the original
/// held when copied.
#[test]
fn clone_snapshots_what_the_original_held() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    // Memory holds about two entries; the disk about 25, in segments of
    // about 4 records, so evictions empty and thin out segments.
    let config = StoreConfig::new(300).with_disk(disk_config(25 * 180, 512));
    let mut original = Store::open(config, directory.path()).expect("open the store");
    for key in 0..40u8 {
        original
            .put(&key_bytes(key), expected_value(key), None, 1)
            .expect("the entry fits");
    }
    let disk_before = original.disk().expect("a tier").segment_count();
    let expected = original.snapshot();
    let copy = original.clone();
    assert!(copy.disk().expect("the copy has a tier").is_read_only());

    // Phase 1: the original keeps writing (spills, disk evictions, new
    // segments), deletes, promotes and rewrites keys on disk.
    for round in 0..5u8 {
        for key in 0..60u8 {
            let value = format!(
                "round {round} key {key} {}",
                "y".repeat(30 + usize::from(key % 7))
            );
            original
                .put(&key_bytes(key), value.into_bytes(), None, 2)
                .expect("the entry fits");
        }
        for key in (0..60u8).step_by(3) {
            original.delete(&key_bytes(key), 2);
        }
        for key in (1..60u8).step_by(5) {
            let _ = original.get(&key_bytes(key), 2);
        }
    }
    let disk = original.disk().expect("a tier");
    assert!(disk.stats().evictions > 0, "the disk tier evicted nothing");
    assert!(original.disk_fault().is_none());
    assert_ne!(original.snapshot(), expected, "the original did not change");
    // Phase 2: the original is dropped, and its files with it.
    original.delete_disk_directory_on_drop();
    drop(original);
    assert!(
        !directory.path().exists(),
        "the dropped tier kept its directory"
    );

    // Phase 3: the copy still reads what the original held.
    assert!(disk_before > 1, "the test needs several segments");
    assert_eq!(copy.snapshot(), expected);
    let restored_directory = tempfile::tempdir().expect("a temporary directory");
    let mut restored = Store::restore_with_disk(&copy.snapshot(), restored_directory.path())
        .expect("restore the copy's snapshot");
    // The disk evicted the oldest keys; the newest are all there, from
    // the copy's reads of files the original had deleted.
    let mut present = 0;
    for key in 0..40u8 {
        if let Some(value) = restored.get(&key_bytes(key), 3) {
            assert_eq!(value, expected_value(key).as_slice(), "key {key}");
            present += 1;
        } else {
            assert!(key < 10, "key {key}, among the newest, is missing");
        }
    }
    assert!(present >= 30, "only {present} keys came back");
}

/// Any change to a read-only copy panics rather than let it drift.
#[test]
#[should_panic(expected = "read-only copy")]
fn a_write_to_a_copy_panics() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let original = filled(directory.path(), 8);
    let mut copy = original.clone();
    let _ = copy.put(b"new", b"value".to_vec(), None, 5);
}

/// Restoring into a tier of another capacity keeps the newest entries
/// that fit, the same way every time; into no tier, drops the disk's.
#[test]
fn restore_for_fits_the_tier_to_its_target() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let store = filled(directory.path(), 20);
    let on_disk = store.disk().expect("a tier").len();
    assert!(on_disk > 10, "most keys are on disk");
    let snapshot = store.snapshot();
    let small = disk_config(5 * 160, 512);
    let fitted = |directory: &Path| {
        Store::restore_for(
            &snapshot,
            Some(cache::store::DiskTarget {
                config: small,
                directory,
            }),
        )
        .expect("restore into a smaller tier")
    };
    let first_directory = tempfile::tempdir().expect("a temporary directory");
    let second_directory = tempfile::tempdir().expect("a temporary directory");
    let mut first = fitted(first_directory.path());
    let second = fitted(second_directory.path());
    assert_eq!(first.snapshot(), second.snapshot());
    let disk = first.disk().expect("a tier");
    assert!(disk.used_bytes() <= small.capacity_bytes);
    assert!(disk.len() < on_disk && !disk.is_empty());
    // The newest keys (the last written) are the ones kept.
    assert_eq!(
        first.get(&key_bytes(19), 4),
        Some(expected_value(19).as_slice())
    );
    assert_eq!(first.get(&key_bytes(0), 4), None);

    let mut without = Store::restore_for(&snapshot, None).expect("restore without a tier");
    assert!(without.disk().is_none());
    assert_eq!(without.get(&key_bytes(0), 4), None);
    assert_eq!(without.stats().evictions, store.stats().evictions + on_disk);
}
