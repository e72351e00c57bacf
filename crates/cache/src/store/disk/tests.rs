//! Unit tests of the disk tier alone: FIFO eviction, segment collection,
//! stale files, and that accounting never depends on the files.

use super::*;

fn string(bytes: &[u8]) -> Value {
    Value::Str(bytes.to_vec())
}

fn key(index: u64) -> Vec<u8> {
    format!("key-{index:03}").into_bytes()
}

/// Each entry weighs 7 (key) + 20 (value) + 64 = 91 bytes.
fn value(index: u64) -> Value {
    string(format!("value-{index:014}").as_bytes())
}

const WEIGHT: u64 = 91;

fn tier(directory: &Path, capacity_bytes: u64, segment_bytes: u64) -> DiskTier {
    DiskTier::open(
        directory,
        DiskConfig {
            capacity_bytes,
            segment_bytes,
        },
    )
    .expect("open the tier")
}

fn insert(tier: &mut DiskTier, index: u64) -> u64 {
    let (evicted, written) = tier.insert(key(index), &value(index), None, None);
    written.expect("the write reaches the file");
    evicted
}

fn segment_files(directory: &Path) -> usize {
    fs::read_dir(directory)
        .expect("list the directory")
        .filter(|item| {
            item.as_ref()
                .is_ok_and(|item| segment_id_of(&item.path()).is_some())
        })
        .count()
}

#[test]
fn eviction_takes_the_oldest_entry_until_the_capacity_holds() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut tier = tier(directory.path(), 3 * WEIGHT, 1 << 20);
    assert_eq!(super::super::entry_weight_bytes(&key(0), &value(0)), WEIGHT);
    for index in 0..3 {
        assert_eq!(insert(&mut tier, index), 0);
    }
    assert_eq!(tier.used_bytes(), 3 * WEIGHT);
    // A fourth entry pushes out the first, and only it.
    assert_eq!(insert(&mut tier, 3), 1);
    assert!(!tier.contains(&key(0)));
    for index in 1..4 {
        assert_eq!(tier.read(&key(index), 0), Some(Ok(value(index))));
    }
    // Re-inserting a key makes it the newest: the next eviction takes 2.
    assert_eq!(insert(&mut tier, 1), 0);
    assert_eq!(insert(&mut tier, 4), 1);
    assert!(!tier.contains(&key(2)));
    assert!(tier.contains(&key(1)));
    assert_eq!(tier.stats().evictions, 2);
    tier.check_invariants().expect("consistent");
}

#[test]
fn an_entry_heavier_than_the_tier_is_dropped() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut tier = tier(directory.path(), WEIGHT - 1, 1 << 20);
    assert_eq!(insert(&mut tier, 0), 1);
    assert!(tier.is_empty());
    tier.check_invariants().expect("consistent");
}

#[test]
fn a_sparse_segment_is_collected_and_its_live_records_survive() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    // Records are 12 + 7 + 22 = 41 bytes: four to a 170-byte segment.
    let mut tier = tier(directory.path(), 1 << 20, 170);
    for index in 0..12 {
        insert(&mut tier, index);
    }
    assert_eq!(tier.segment_count(), 3);
    let file_bytes = tier.file_bytes();
    // Three of the first segment's four records die: 25% live, under the
    // threshold, so it is queued and collected by the next operation.
    for index in 0..3 {
        tier.remove(&key(index)).expect("present");
    }
    assert_eq!(tier.gc_queue.len(), 1);
    tier.collect_garbage().expect("the copy succeeds");
    assert!(tier.gc_queue.is_empty());
    assert!(
        tier.file_bytes() < file_bytes,
        "the dead records' bytes are gone"
    );
    assert_eq!(segment_files(directory.path()), tier.segment_count());
    for index in 3..12 {
        assert_eq!(
            tier.read(&key(index), 0),
            Some(Ok(value(index))),
            "key {index}"
        );
    }
    tier.check_invariants().expect("consistent");
}

#[test]
fn a_segment_with_nothing_live_is_deleted_at_once() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut tier = tier(directory.path(), 1 << 20, 170);
    for index in 0..8 {
        insert(&mut tier, index);
    }
    assert_eq!(segment_files(directory.path()), 2);
    for index in 0..4 {
        tier.remove(&key(index)).expect("present");
    }
    assert_eq!(segment_files(directory.path()), 1);
    assert_eq!(tier.segment_count(), 1);
    tier.check_invariants().expect("consistent");
}

#[test]
fn accounting_and_snapshots_do_not_depend_on_the_files() {
    let small_segments = tempfile::tempdir().expect("a temporary directory");
    let large_segments = tempfile::tempdir().expect("a temporary directory");
    let mut first = tier(small_segments.path(), 10 * WEIGHT, 100);
    let mut second = tier(large_segments.path(), 10 * WEIGHT, 1 << 20);
    for index in 0..25 {
        assert_eq!(insert(&mut first, index), insert(&mut second, index));
        if index % 3 == 0 {
            first.remove(&key(index / 2));
            second.remove(&key(index / 2));
        }
        first.collect_garbage().expect("collects");
    }
    assert_ne!(first.segment_count(), second.segment_count());
    assert_eq!(first.used_bytes(), second.used_bytes());
    let mut first_snapshot = first.snapshot().expect("readable");
    let second_snapshot = second.snapshot().expect("readable");
    // Only the (local) segment size differs.
    first_snapshot.config.segment_bytes = second_snapshot.config.segment_bytes;
    assert_eq!(first_snapshot, second_snapshot);
}

#[test]
fn open_deletes_stale_segment_files_and_restore_rebuilds() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut tier = tier(directory.path(), 1 << 20, 170);
    for index in 0..10 {
        insert(&mut tier, index);
    }
    let snapshot = tier.snapshot().expect("readable");
    let other_file = directory.path().join("notes.txt");
    fs::write(&other_file, b"not ours").expect("write a file");
    drop(tier);

    let reopened = DiskTier::open(directory.path(), snapshot.config).expect("reopen");
    assert!(reopened.is_empty());
    assert_eq!(segment_files(directory.path()), 0);
    assert!(other_file.exists(), "only segment files are removed");
    drop(reopened);

    let restored = DiskTier::restore(directory.path(), snapshot.clone()).expect("restore");
    assert_eq!(restored.snapshot().expect("readable"), snapshot);
    restored.check_invariants().expect("consistent");
}

#[test]
fn expired_entries_are_reclaimed_soonest_first_and_read_as_absent() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut tier = tier(directory.path(), 1 << 20, 1 << 20);
    for (index, deadline) in [(0, 30), (1, 10), (2, 20)] {
        let (_, written) = tier.insert(key(index), &value(index), Some(deadline), None);
        written.expect("written");
    }
    assert_eq!(tier.read(&key(1), 10), None);
    assert_eq!(tier.reclaim_expired(25, 1), 1);
    assert!(!tier.contains(&key(1)));
    assert_eq!(tier.reclaim_expired(25, 5), 1);
    assert!(tier.contains(&key(0)));
    assert!(tier.take(&key(0), 30).is_none(), "expired at its deadline");
    assert!(tier.is_empty());
    assert_eq!(tier.stats().expirations, 3);
}

#[test]
fn a_damaged_record_is_reported_and_never_decoded() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut tier = tier(directory.path(), 1 << 20, 1 << 20);
    insert(&mut tier, 0);
    insert(&mut tier, 1);
    let path = tier.segment_path(0);
    let mut bytes = fs::read(&path).expect("read the segment");
    // The last byte belongs to key 1's value.
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, bytes).expect("damage the segment");
    assert_eq!(tier.read(&key(0), 0), Some(Ok(value(0))));
    assert!(matches!(
        tier.read(&key(1), 0),
        Some(Err(DiskError::Corrupt { .. }))
    ));
    assert!(matches!(tier.take(&key(1), 0), Some(Err(_))));
    assert!(!tier.contains(&key(1)));
    tier.check_invariants().expect("consistent");
}
