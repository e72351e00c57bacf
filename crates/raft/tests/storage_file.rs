//! Real-file storage: round trips, compaction, and crash damage (torn or
//! corrupted files) that must be recovered or reported, never accepted.
//! (Under madsim the same storage runs on the simulated disk: see
//! `node_sim.rs`.)

#![cfg(not(madsim))]

use futures::executor::block_on;
use proptest::prelude::*;
use raft::core::{Entry, EntryKind, HardState, PersistentState, Snapshot, SnapshotMeta};
use raft::storage::{FileStorage, MemoryStorage, Storage, StorageError, StorageWrite};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        kind: EntryKind::Command,
        data: vec![index as u8; 10],
    }
}

fn hard_state(term: u64, commit_index: u64) -> HardState {
    HardState {
        term,
        voted_for: Some(1),
        commit_index,
    }
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            last_included_index: index,
            last_included_term: term,
        },
        data: vec![0xab; 100],
    }
}

fn open(dir: &std::path::Path) -> (FileStorage, PersistentState) {
    let mut storage = FileStorage::new(dir);
    let state = block_on(storage.load()).expect("load");
    (storage, state)
}

fn save(storage: &mut FileStorage, write: StorageWrite<'_>) {
    block_on(storage.save(write)).expect("save");
}

/// Three saves: entries 1-3 (term 1), 4-5 (term 2), then 4' replacing 4-5.
fn save_three(storage: &mut FileStorage) -> PersistentState {
    let first = [entry(1, 1), entry(2, 1), entry(3, 1)];
    let second = [entry(4, 2), entry(5, 2)];
    let third = [entry(4, 3)];
    save(
        storage,
        StorageWrite {
            hard_state: Some(hard_state(1, 0)),
            snapshot: None,
            entries: &first,
        },
    );
    save(
        storage,
        StorageWrite {
            hard_state: Some(hard_state(2, 2)),
            snapshot: None,
            entries: &second,
        },
    );
    save(
        storage,
        StorageWrite {
            hard_state: Some(hard_state(3, 3)),
            snapshot: None,
            entries: &third,
        },
    );
    PersistentState {
        hard_state: hard_state(3, 3),
        snapshot: None,
        entries: vec![entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 3)],
    }
}

#[test]
fn empty_directory_loads_an_empty_state() {
    let dir = tempfile::tempdir().unwrap();
    let (_, state) = open(&dir.path().join("node"));
    assert_eq!(state, PersistentState::default());
}

#[test]
fn saves_survive_a_reload_including_overwritten_tails() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let expected = save_three(&mut storage);
    drop(storage);
    let (reloaded, state) = open(dir.path());
    assert_eq!(state, expected);
    assert_eq!(reloaded.torn_tail_bytes_discarded(), 0);
}

#[test]
fn a_snapshot_compacts_the_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    save_three(&mut storage);
    let size_before = storage.raft_state_size_bytes();
    let snapshot = snapshot(3, 1);
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&snapshot),
            entries: &[],
        },
    );
    assert!(storage.raft_state_size_bytes() < size_before);
    assert_eq!(storage.snapshot_size_bytes(), 100);
    let (_, state) = open(dir.path());
    assert_eq!(
        state,
        PersistentState {
            hard_state: hard_state(3, 3),
            snapshot: Some(snapshot),
            entries: vec![entry(4, 3)]
        }
    );
}

#[test]
fn torn_last_record_is_dropped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    save_three(&mut storage);
    let log_path = storage.log_path().to_path_buf();
    drop(storage);
    // A crash in the middle of the third save: its record is cut short.
    let bytes = std::fs::read(&log_path).unwrap();
    std::fs::write(&log_path, &bytes[..bytes.len() - 5]).unwrap();
    let (storage, state) = open(dir.path());
    assert!(
        storage.torn_tail_bytes_discarded() > 0,
        "the torn record is reported"
    );
    assert_eq!(
        state.hard_state,
        hard_state(2, 2),
        "the state before the unacknowledged save"
    );
    assert_eq!(state.entries.len(), 5);
    drop(storage);
    let (storage, again) = open(dir.path());
    assert_eq!(
        storage.torn_tail_bytes_discarded(),
        0,
        "load rewrote the file without the tail"
    );
    assert_eq!(again, state);
}

#[test]
fn corruption_before_the_last_record_is_an_error_naming_the_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    // After load the log file holds one record; three saves append three.
    save_three(&mut storage);
    let log_path = storage.log_path().to_path_buf();
    drop(storage);
    let mut bytes = std::fs::read(&log_path).unwrap();
    bytes[30] ^= 0x40;
    std::fs::write(&log_path, &bytes).unwrap();
    let error = block_on(FileStorage::new(dir.path()).load()).unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { path, .. } if *path == log_path),
        "{error}"
    );
    assert!(error.to_string().contains("raft-log"), "{error}");
}

#[test]
fn a_damaged_snapshot_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    save_three(&mut storage);
    let snapshot = snapshot(3, 1);
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&snapshot),
            entries: &[],
        },
    );
    let snapshot_path = storage.snapshot_path().to_path_buf();
    drop(storage);
    let good = std::fs::read(&snapshot_path).unwrap();
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("flipped byte", {
            let mut bytes = good.clone();
            bytes[good.len() - 10] ^= 1;
            bytes
        }),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("extended", [good.clone(), vec![0]].concat()),
        (
            "bad magic",
            [b"XXXXXXXX".to_vec(), good[8..].to_vec()].concat(),
        ),
        ("empty", vec![]),
    ];
    for (damage, bytes) in damages {
        std::fs::write(&snapshot_path, &bytes).unwrap();
        let error = block_on(FileStorage::new(dir.path()).load()).unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt { path, .. } if *path == snapshot_path),
            "{damage}: {error}"
        );
    }
}

#[test]
fn a_log_file_with_a_bad_magic_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    save_three(&mut storage);
    let log_path = storage.log_path().to_path_buf();
    drop(storage);
    let mut bytes = std::fs::read(&log_path).unwrap();
    bytes[0] = b'X';
    std::fs::write(&log_path, &bytes).unwrap();
    let error = block_on(FileStorage::new(dir.path()).load()).unwrap_err();
    assert!(error.to_string().contains("bad magic"), "{error}");
}

#[test]
fn crash_between_snapshot_and_log_rewrite_is_reconciled() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    save_three(&mut storage);
    let log_path = storage.log_path().to_path_buf();
    let old_log = std::fs::read(&log_path).unwrap();
    // A leader's snapshot at 5 (term 4) that does not match our entry 4' .
    let snapshot = snapshot(5, 4);
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(4, 5)),
            snapshot: Some(&snapshot),
            entries: &[],
        },
    );
    drop(storage);
    // The crash hit after the snapshot file was replaced, before the log.
    std::fs::write(&log_path, &old_log).unwrap();
    let (_, state) = open(dir.path());
    assert_eq!(state.snapshot, Some(snapshot));
    assert!(
        state.entries.is_empty(),
        "the old log does not hold the snapshot's last entry"
    );
    assert_eq!(
        state.hard_state,
        hard_state(3, 3),
        "the hard state of the old log file"
    );
}

#[test]
fn a_write_that_leaves_a_gap_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let expected = save_three(&mut storage);
    let gap = [entry(9, 3)];
    let error = block_on(storage.save(StorageWrite {
        hard_state: None,
        snapshot: None,
        entries: &gap,
    }))
    .unwrap_err();
    assert!(
        matches!(error, StorageError::InvalidWrite { .. }),
        "{error}"
    );
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: None,
            entries: &[entry(5, 3)],
        },
    );
    let (_, state) = open(dir.path());
    let mut expected_entries = expected.entries;
    expected_entries.push(entry(5, 3));
    assert_eq!(state.entries, expected_entries);
}

#[test]
fn one_save_is_one_record_whatever_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let size_after_load = std::fs::metadata(storage.log_path()).unwrap().len();
    let entries: Vec<Entry> = (1..=1000).map(|i| entry(i, 1)).collect();
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(1, 0)),
            snapshot: None,
            entries: &entries,
        },
    );
    let bytes = std::fs::read(storage.log_path()).unwrap();
    // One 8-byte header for the whole batch: one append, one fsync.
    let record_len = u32::from_le_bytes(bytes[size_after_load as usize..][..4].try_into().unwrap());
    assert_eq!(
        bytes.len() as u64,
        size_after_load + 8 + u64::from(record_len)
    );
}

/// A write in a generated history: entries `start..start+count` of `term`,
/// or a snapshot at some applied index.
#[derive(Clone, Debug)]
enum Op {
    Append { back: u64, count: u64 },
    Snapshot { back: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..3, 1u64..6).prop_map(|(back, count)| Op::Append { back, count }),
        1 => (0u64..4).prop_map(|back| Op::Snapshot { back }),
    ]
}

/// Applies `op` to `memory` and returns the write, owned.
fn make_write(memory: &MemoryStorage, term: u64, op: &Op) -> (Option<Snapshot>, Vec<Entry>) {
    let state = memory.state();
    let snapshot_index = state
        .snapshot
        .as_ref()
        .map_or(0, |s| s.meta.last_included_index);
    let last = snapshot_index + state.entries.len() as u64;
    match *op {
        Op::Append { back, count } => {
            let start = (last + 1).saturating_sub(back).max(snapshot_index + 1);
            (
                (None),
                (start..start + count).map(|i| entry(i, term)).collect(),
            )
        }
        Op::Snapshot { back } => {
            let index = last.saturating_sub(back);
            if index <= snapshot_index {
                return (None, Vec::new());
            }
            let term_at = state
                .entries
                .iter()
                .find(|e| e.index == index)
                .map(|e| e.term)
                .unwrap();
            (
                Some(Snapshot {
                    meta: SnapshotMeta {
                        last_included_index: index,
                        last_included_term: term_at,
                    },
                    data: vec![index as u8; 3],
                }),
                Vec::new(),
            )
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any history of writes reloads to what the in-memory model holds; and
    /// cutting the log file anywhere inside the last append's record reloads
    /// to the state either before or after that append.
    #[test]
    fn file_storage_matches_the_memory_model_and_survives_a_torn_append(
        ops in proptest::collection::vec(op(), 1..25),
        cut in 1usize..64,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = open(dir.path());
        let mut memory = MemoryStorage::new();
        let mut previous = memory.state().clone();
        for (term, op) in ops.iter().enumerate() {
            let (snapshot, entries) = make_write(&memory, term as u64 + 1, op);
            let write = StorageWrite { hard_state: Some(hard_state(term as u64 + 1, 0)), snapshot: snapshot.as_ref(), entries: &entries };
            previous = memory.state().clone();
            memory.save_now(write).unwrap();
            save(&mut storage, write);
        }
        let log_path = storage.log_path().to_path_buf();
        drop(storage);
        let (_, state) = open(dir.path());
        prop_assert_eq!(&state, memory.state());
        // Tear the last record (the file was rewritten by the reload, so
        // append one more write first).
        let (mut storage, _) = open(dir.path());
        let before_size = std::fs::metadata(&log_path).unwrap().len() as usize;
        let (_, entries) = make_write(&memory, 1000, &Op::Append { back: 0, count: 2 });
        let write = StorageWrite { hard_state: Some(hard_state(1000, 0)), snapshot: None, entries: &entries };
        save(&mut storage, write);
        previous.clone_from(memory.state());
        memory.save_now(write).unwrap();
        drop(storage);
        let bytes = std::fs::read(&log_path).unwrap();
        let cut_at = before_size + cut.min(bytes.len() - before_size - 1);
        std::fs::write(&log_path, &bytes[..cut_at]).unwrap();
        let (reloaded, state) = open(dir.path());
        prop_assert_eq!(&state, &previous);
        prop_assert!(reloaded.torn_tail_bytes_discarded() > 0);
    }
}
