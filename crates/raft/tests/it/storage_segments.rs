//! The log in segments: a log many times the snapshot threshold restarts
//! reading only what is kept; snapshots remove whole segments and conflicts
//! append, never rewriting; term and vote in their own file; file format
//! versions.

#![cfg(not(madsim))]

use futures::executor::block_on;
use raft::core::{Entry, EntryKind, HardState, Snapshot, SnapshotMeta};
use raft::storage::{
    FileStorage, HARD_STATE_FILE_NAME, LEGACY_LOG_FILE_NAME, Storage, StorageError, StorageWrite,
};

const ENTRY_DATA_BYTES: usize = 100;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        kind: EntryKind::Command,
        data: vec![index as u8; ENTRY_DATA_BYTES].into(),
    }
}

fn hard_state(term: u64, voted_for: u64, commit_index: u64) -> HardState {
    HardState {
        term,
        voted_for: Some(voted_for),
        commit_index,
    }
}

fn snapshot(index: u64, term: u64, size: usize) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta::at(index, term),
        data: vec![7; size].into(),
    }
}

fn save(storage: &mut FileStorage, write: StorageWrite<'_>) {
    block_on(storage.save(write)).expect("save");
}

fn file_sizes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

/// A service that snapshots whenever the Raft state passes its threshold,
/// keeping the last `lag` entries in the log, as kvraft does.
#[test]
fn a_node_restarts_after_a_log_many_times_the_snapshot_threshold_reading_only_what_is_kept() {
    const SEGMENT_BYTES: u64 = 16 << 10;
    const THRESHOLD_BYTES: u64 = 64 << 10;
    const SNAPSHOT_BYTES: usize = 4 << 10;
    const ENTRIES: u64 = 20_000;
    const BATCH: u64 = 40;
    const LAG: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::with_segment_size(dir.path(), SEGMENT_BYTES);
    block_on(storage.load()).unwrap();
    let mut written_bytes = 0u64;
    let mut snapshots = 0;
    let mut files_bytes_max = 0;
    for first in (1..=ENTRIES).step_by(BATCH as usize) {
        let entries: Vec<Entry> = (first..first + BATCH).map(|i| entry(i, 1)).collect();
        written_bytes += entries.iter().map(|e| e.size_bytes() as u64).sum::<u64>();
        let last = first + BATCH - 1;
        save(
            &mut storage,
            StorageWrite {
                hard_state: Some(hard_state(1, 0, last)),
                snapshot: None,
                entries: &entries,
            },
        );
        if storage.raft_state_size_bytes() > THRESHOLD_BYTES {
            let snapshot = snapshot(last - LAG, 1, SNAPSHOT_BYTES);
            save(
                &mut storage,
                StorageWrite {
                    hard_state: None,
                    snapshot: Some(&snapshot),
                    entries: &[],
                },
            );
            snapshots += 1;
        }
        files_bytes_max = files_bytes_max.max(file_sizes(dir.path()));
    }
    assert!(
        written_bytes > 30 * THRESHOLD_BYTES,
        "the log written ({written_bytes} bytes) is many times the threshold"
    );
    assert!(snapshots > 20, "{snapshots} snapshots");
    // What is kept at any time: the state below the threshold, the segments
    // straddling the snapshot point, the snapshot and the hard state file.
    let kept_bound = THRESHOLD_BYTES + 2 * SEGMENT_BYTES + 2 * SNAPSHOT_BYTES as u64 + 4096;
    assert!(
        files_bytes_max <= kept_bound,
        "files held {files_bytes_max} bytes at most, bound {kept_bound}"
    );
    let held_before_restart = storage.entries_indexed();
    assert!(
        held_before_restart as u64 <= THRESHOLD_BYTES / ENTRY_DATA_BYTES as u64,
        "the storage describes {held_before_restart} entries, only those after the snapshot"
    );
    drop(storage);

    let mut restarted = FileStorage::with_segment_size(dir.path(), SEGMENT_BYTES);
    let state = block_on(restarted.load()).unwrap();
    let stats = restarted.load_stats();
    println!(
        "restart after {ENTRIES} entries ({written_bytes} bytes, {snapshots} snapshots): read \
         {} bytes in {} segments, loaded {} entries, wrote {} bytes",
        stats.bytes_read, stats.segments_read, stats.entries_loaded, stats.bytes_written
    );
    assert!(
        stats.bytes_read <= kept_bound,
        "load read {} bytes, bound {kept_bound}",
        stats.bytes_read
    );
    assert_eq!(stats.bytes_written, 0, "load rewrites nothing");
    assert_eq!(stats.entries_loaded, state.entries.len());
    let snapshot_index = state.snapshot.as_ref().unwrap().meta.last_included_index;
    assert_eq!(state.entries.first().unwrap().index, snapshot_index + 1);
    assert_eq!(state.entries.last().unwrap().index, ENTRIES);
    assert_eq!(state.entries.len() as u64, ENTRIES - snapshot_index);
    assert_eq!(state.hard_state, hard_state(1, 0, ENTRIES));
}

#[test]
fn conflicting_entries_are_appended_and_a_snapshot_does_not_rewrite_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::new(dir.path());
    block_on(storage.load()).unwrap();
    let first: Vec<Entry> = (1..=100).map(|i| entry(i, 1)).collect();
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(1, 0, 40)),
            snapshot: None,
            entries: &first,
        },
    );
    let segment = storage.active_segment_path().unwrap().to_path_buf();
    let before_conflict = std::fs::read(&segment).unwrap();
    let conflict: Vec<Entry> = (50..=60).map(|i| entry(i, 2)).collect();
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(2, 0, 45)),
            snapshot: None,
            entries: &conflict,
        },
    );
    let snapshot = snapshot(45, 1, 1000);
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&snapshot),
            entries: &[],
        },
    );
    let after = std::fs::read(&segment).unwrap();
    // Append-only: the bytes before the header slots' updates are kept...
    assert_eq!(
        &after[raft::storage::LOG_HEADER_BYTES..before_conflict.len()],
        &before_conflict[raft::storage::LOG_HEADER_BYTES..],
        "the stored records are never rewritten"
    );
    // ...and the conflict cost one small record, not a rewrite.
    let conflict_bytes = (after.len() - before_conflict.len()) as u64;
    assert!(conflict_bytes < 11 * 150, "{conflict_bytes} bytes appended");
    drop(storage);
    let (_, state) = {
        let mut storage = FileStorage::new(dir.path());
        let state = block_on(storage.load()).unwrap();
        (storage, state)
    };
    let expected: Vec<Entry> = (46..=49)
        .map(|i| entry(i, 1))
        .chain((50..=60).map(|i| entry(i, 2)))
        .collect();
    assert_eq!(state.entries, expected);
    assert_eq!(state.hard_state, hard_state(2, 0, 45));
}

/// Term and vote live in their own file: a node whose log was lost keeps
/// them; a node whose hard state file was lost refuses to start.
#[test]
fn the_vote_survives_without_the_log_and_a_missing_hard_state_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::with_segment_size(dir.path(), 1);
    block_on(storage.load()).unwrap();
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(7, 2, 3)),
            snapshot: None,
            entries: &[entry(1, 7), entry(2, 7), entry(3, 7)],
        },
    );
    let snapshot = snapshot(3, 7, 10);
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&snapshot),
            entries: &[],
        },
    );
    let segments = storage.segment_paths();
    drop(storage);
    for segment in segments {
        std::fs::remove_file(segment).unwrap();
    }
    let state = block_on(FileStorage::new(dir.path()).load()).unwrap();
    assert_eq!(
        (state.hard_state.term, state.hard_state.voted_for),
        (7, Some(2)),
        "the term and vote outlive the log"
    );
    std::fs::remove_file(dir.path().join(HARD_STATE_FILE_NAME)).unwrap();
    let error = block_on(FileStorage::new(dir.path()).load()).unwrap_err();
    assert!(
        matches!(&error, StorageError::Refused { path, .. } if path.ends_with(HARD_STATE_FILE_NAME)),
        "{error}"
    );
    assert!(error.to_string().contains("vote twice"), "{error}");
}

#[test]
fn files_of_a_newer_format_version_are_refused_naming_the_file_and_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::new(dir.path());
    block_on(storage.load()).unwrap();
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(1, 0, 1)),
            snapshot: None,
            entries: &[entry(1, 1), entry(2, 1)],
        },
    );
    let snapshot = snapshot(1, 1, 10);
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&snapshot),
            entries: &[],
        },
    );
    let paths = [
        storage.active_segment_path().unwrap().to_path_buf(),
        storage.hard_state_path().to_path_buf(),
        storage.snapshot_path().to_path_buf(),
    ];
    drop(storage);
    let paths_snapshot = paths[2].clone();
    for path in paths {
        let good = std::fs::read(&path).unwrap();
        let mut newer = good.clone();
        newer[6..8].copy_from_slice(b"99");
        std::fs::write(&path, &newer).unwrap();
        let error = block_on(FileStorage::new(dir.path()).load()).unwrap_err();
        match &error {
            StorageError::UnsupportedVersion {
                path: named,
                found,
                supported,
                ..
            } => {
                assert_eq!(named, &path);
                // Snapshot files are at version 2 (they carry the
                // configuration), the others at 1.
                let expected = if path == paths_snapshot { 2 } else { 1 };
                assert_eq!((*found, *supported), (99, expected));
            }
            other => panic!(
                "{}: expected UnsupportedVersion, got {other}",
                path.display()
            ),
        }
        assert!(error.to_string().contains("version 99"), "{error}");
        std::fs::write(&path, &good).unwrap();
    }
    block_on(FileStorage::new(dir.path()).load()).expect("the good files load again");
}

#[test]
fn a_log_of_the_single_file_format_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(LEGACY_LOG_FILE_NAME), b"DCRLOG02").unwrap();
    let error = block_on(FileStorage::new(dir.path()).load()).unwrap_err();
    assert!(
        matches!(&error, StorageError::Refused { .. }) && error.to_string().contains("segments"),
        "{error}"
    );
}

#[test]
fn a_torn_tail_in_a_segment_that_is_not_the_newest_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::with_segment_size(dir.path(), 1);
    block_on(storage.load()).unwrap();
    for index in 1..=3 {
        save(
            &mut storage,
            StorageWrite {
                hard_state: Some(hard_state(1, 0, 0)),
                snapshot: None,
                entries: &[entry(index, 1)],
            },
        );
    }
    let segments = storage.segment_paths();
    assert_eq!(segments.len(), 3, "one segment per save");
    drop(storage);
    let mut bytes = std::fs::read(&segments[1]).unwrap();
    bytes.extend_from_slice(&[1, 2, 3]);
    std::fs::write(&segments[1], &bytes).unwrap();
    let error = block_on(FileStorage::new(dir.path()).load()).unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { path, .. } if *path == segments[1]),
        "{error}"
    );
}

#[test]
fn a_first_boot_creates_every_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b").join("node");
    let mut storage = FileStorage::new(&nested);
    block_on(storage.load()).unwrap();
    assert!(nested.join(HARD_STATE_FILE_NAME).exists());
    assert!(storage.active_segment_path().unwrap().exists());
}

/// A crash between a leader's snapshot (which replaces a log it does not
/// match) and the record saying so: the next load drops the old log and
/// records it, so entries appended later never sit next to the stale ones
/// (which would contradict the snapshot once committed).
#[test]
fn a_log_dropped_by_a_snapshot_stays_dropped_after_a_crash_before_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::new(dir.path());
    block_on(storage.load()).unwrap();
    let entries: Vec<Entry> = [1, 1, 2, 2, 3, 3]
        .iter()
        .enumerate()
        .map(|(i, &term)| entry(i as u64 + 1, term))
        .collect();
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(3, 1, 3)),
            snapshot: None,
            entries: &entries,
        },
    );
    let segment = storage.active_segment_path().unwrap().to_path_buf();
    let before_snapshot = std::fs::read(&segment).unwrap();
    let leader_snapshot = snapshot(5, 4, 10);
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(4, 0, 5)),
            snapshot: Some(&leader_snapshot),
            entries: &[],
        },
    );
    drop(storage);
    // The crash came after the snapshot file, before the record.
    std::fs::write(&segment, &before_snapshot).unwrap();

    let mut storage = FileStorage::new(dir.path());
    let state = block_on(storage.load()).unwrap();
    assert!(state.entries.is_empty(), "the old log does not match");
    assert!(
        storage.load_stats().bytes_written > 0,
        "load recorded the drop"
    );
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(4, 0, 7)),
            snapshot: None,
            entries: &[entry(6, 4), entry(7, 4)],
        },
    );
    drop(storage);
    let state = block_on(FileStorage::new(dir.path()).load())
        .expect("the stale entries do not come back next to the new ones");
    assert_eq!(state.entries, vec![entry(6, 4), entry(7, 4)]);
    assert_eq!(state.hard_state, hard_state(4, 0, 7));
}
