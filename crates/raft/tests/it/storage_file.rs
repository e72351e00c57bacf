//! Real-file storage: round trips, compaction, and crash damage (torn or
//! corrupted files) that must be recovered or reported, never accepted.
//! (Under madsim the same storage runs on the simulated disk: see
//! sim-tests' `raft_node.rs`.)

#![cfg(not(madsim))]

use futures::executor::block_on;
use proptest::prelude::*;
use raft::core::{Entry, EntryKind, HardState, PersistentState, Snapshot, SnapshotMeta};
use raft::storage::{
    FileStorage, LOG_HEADER_BYTES, MemoryStorage, Storage, StorageError, StorageWrite,
};

// (The segment layout, removal and bounds: `storage_segments.rs`.)

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        kind: EntryKind::Command,
        data: vec![index as u8; 10].into(),
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
        meta: SnapshotMeta::at(index, term),
        data: vec![0xab; 100].into(),
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
    drop(storage); // a restart: the old storage lets go of the directory
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

/// A snapshot of 3,000 distinct bytes at index 3, saved over `save_three`.
fn storage_with_a_large_snapshot(dir: &std::path::Path) -> (FileStorage, Snapshot) {
    let (mut storage, _) = open(dir);
    save_three(&mut storage);
    let snapshot = Snapshot {
        meta: SnapshotMeta::at(3, 1),
        data: (0..3000_u32).map(|byte| (byte % 253) as u8).collect(),
    };
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&snapshot),
            entries: &[],
        },
    );
    (storage, snapshot)
}

/// Reads the whole snapshot data back in pieces of `piece_bytes`, in order.
fn read_in_pieces(
    storage: &mut FileStorage,
    meta: &SnapshotMeta,
    size_bytes: u64,
    piece_bytes: u64,
) -> Result<Vec<u8>, StorageError> {
    let mut data = Vec::new();
    let mut offset = 0;
    while offset < size_bytes {
        let length = piece_bytes.min(size_bytes - offset);
        let piece = block_on(storage.read_snapshot_piece(meta, offset, length))?
            .expect("the stored snapshot is at meta");
        data.extend_from_slice(&piece);
        offset += length;
    }
    Ok(data)
}

#[test]
fn snapshot_pieces_read_back_are_the_stored_bytes_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, snapshot) = storage_with_a_large_snapshot(dir.path());
    assert!(storage.reads_snapshot_pieces());
    let size = snapshot.data.len() as u64;
    assert_eq!(
        read_in_pieces(&mut storage, &snapshot.meta, size, 700).unwrap(),
        snapshot.data
    );
    // Out of order (a follower that restarted asks from its offset).
    let piece = block_on(storage.read_snapshot_piece(&snapshot.meta, 1000, 10)).unwrap();
    assert_eq!(piece.as_deref(), Some(&snapshot.data[1000..1010]));
    // Another snapshot's meta: not stored, nothing read.
    let other = SnapshotMeta::at(2, 1);
    assert_eq!(
        block_on(storage.read_snapshot_piece(&other, 0, 10)).unwrap(),
        None
    );
    // Past the end: refused.
    let error = block_on(storage.read_snapshot_piece(&snapshot.meta, size - 5, 10)).unwrap_err();
    assert!(matches!(error, StorageError::InvalidRead { .. }), "{error}");
    drop(storage);
    let (mut storage, _) = open(dir.path());
    // Starting in the middle: the check catches up from the file's start.
    let last = block_on(storage.read_snapshot_piece(&snapshot.meta, 2500, 500)).unwrap();
    assert_eq!(last.as_deref(), Some(&snapshot.data[2500..]));
}

#[test]
fn a_snapshot_file_damaged_after_load_is_refused_before_its_last_piece() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, snapshot) = storage_with_a_large_snapshot(dir.path());
    let size = snapshot.data.len() as u64;
    // Damaged under the running storage (load checked the good file).
    let path = storage.snapshot_path().to_path_buf();
    let mut bytes = std::fs::read(&path).unwrap();
    let flipped = bytes.len() - 2000;
    bytes[flipped] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    // Pieces before the end may go out (a follower installs only after
    // the last), the last never does.
    let first = block_on(storage.read_snapshot_piece(&snapshot.meta, 0, 700)).unwrap();
    assert_eq!(first.as_deref(), Some(&snapshot.data[..700]));
    let error = read_in_pieces(&mut storage, &snapshot.meta, size, 700).unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { path: named, .. } if *named == path),
        "{error}"
    );
}

/// The log file as a crash in the middle of a save leaves it: the save's
/// record written up to `cut_at` bytes of the file, and the header as it
/// was before the save (it is updated only once the record is durable).
fn crash_image(before_save: &[u8], after_save: &[u8], cut_at: usize) -> Vec<u8> {
    [
        &before_save[..LOG_HEADER_BYTES],
        &after_save[LOG_HEADER_BYTES..cut_at],
    ]
    .concat()
}

#[test]
fn torn_last_record_is_dropped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let log_path = storage.active_segment_path().unwrap().to_path_buf();
    save_three(&mut storage);
    let after_third = std::fs::read(&log_path).unwrap();
    drop(storage);
    // The same history up to the second save, to see the file then.
    let other = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(other.path());
    let first = [entry(1, 1), entry(2, 1), entry(3, 1)];
    let second = [entry(4, 2), entry(5, 2)];
    for (term, commit, entries) in [(1, 0, &first[..]), (2, 2, &second[..])] {
        save(
            &mut storage,
            StorageWrite {
                hard_state: Some(hard_state(term, commit)),
                snapshot: None,
                entries,
            },
        );
    }
    let after_second = std::fs::read(storage.active_segment_path().unwrap()).unwrap();
    drop(storage);
    // A crash in the middle of the third save: its record is cut short.
    std::fs::write(
        &log_path,
        crash_image(&after_second, &after_third, after_third.len() - 5),
    )
    .unwrap();
    let (storage, state) = open(dir.path());
    assert!(
        storage.torn_tail_bytes_discarded() > 0,
        "the torn record is reported"
    );
    assert_eq!(
        state.hard_state,
        hard_state(3, 2),
        "the log before the unacknowledged save, with the term it wrote first"
    );
    assert_eq!(state.entries.len(), 5);
    drop(storage);
    let (storage, again) = open(dir.path());
    assert_eq!(
        storage.torn_tail_bytes_discarded(),
        0,
        "load cut the tail off"
    );
    assert_eq!(again, state);
}

#[test]
fn corruption_before_the_last_record_is_an_error_naming_the_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    // After load the segment holds no record; three saves append three.
    save_three(&mut storage);
    let log_path = storage.active_segment_path().unwrap().to_path_buf();
    drop(storage);
    let mut bytes = std::fs::read(&log_path).unwrap();
    bytes[LOG_HEADER_BYTES + 20] ^= 0x40;
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
    let log_path = storage.active_segment_path().unwrap().to_path_buf();
    drop(storage);
    let mut bytes = std::fs::read(&log_path).unwrap();
    bytes[0] = b'X';
    std::fs::write(&log_path, &bytes).unwrap();
    let error = block_on(FileStorage::new(dir.path()).load()).unwrap_err();
    assert!(error.to_string().contains("bad magic"), "{error}");
}

#[test]
fn crash_between_snapshot_and_its_log_record_is_reconciled() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    save_three(&mut storage);
    let log_path = storage.active_segment_path().unwrap().to_path_buf();
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
    // The crash hit after the snapshot file was replaced, before the
    // record dropping the log.
    std::fs::write(&log_path, &old_log).unwrap();
    let (_, state) = open(dir.path());
    assert_eq!(state.snapshot, Some(snapshot));
    assert!(
        state.entries.is_empty(),
        "the old log does not hold the snapshot's last entry"
    );
    assert_eq!(
        state.hard_state,
        hard_state(4, 3),
        "the term of the hard state file (written first), the commit index of the old log"
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
    drop(storage);
    let (_, state) = open(dir.path());
    let mut expected_entries = expected.entries;
    expected_entries.push(entry(5, 3));
    assert_eq!(state.entries, expected_entries);
}

#[test]
fn one_save_is_one_record_whatever_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let size_after_load = std::fs::metadata(storage.active_segment_path().unwrap())
        .unwrap()
        .len();
    let entries: Vec<Entry> = (1..=1000).map(|i| entry(i, 1)).collect();
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(1, 0)),
            snapshot: None,
            entries: &entries,
        },
    );
    let bytes = std::fs::read(storage.active_segment_path().unwrap()).unwrap();
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
                    meta: SnapshotMeta::at(index, term_at),
                    data: vec![index as u8; 3].into(),
                }),
                Vec::new(),
            )
        }
    }
}

/// The files of one storage after a save.
struct Files {
    segment: Vec<u8>,
    hard_state: Vec<u8>,
}

/// Saves `count` appends of two entries each to `storage` (each in a new
/// term); returns the active segment's and the hard state file's bytes
/// before the first and after each save, and the state after each.
fn save_appends(storage: &mut FileStorage, count: u64) -> (Vec<Files>, Vec<PersistentState>) {
    let read_files = |storage: &FileStorage| Files {
        segment: std::fs::read(storage.active_segment_path().unwrap()).unwrap(),
        hard_state: std::fs::read(storage.hard_state_path()).unwrap(),
    };
    let mut files = vec![read_files(storage)];
    let mut memory = MemoryStorage::new();
    let mut states = vec![memory.state().clone()];
    for k in 0..count {
        let entries = [entry(2 * k + 1, k + 1), entry(2 * k + 2, k + 1)];
        let write = StorageWrite {
            hard_state: Some(hard_state(k + 1, 2 * k)),
            snapshot: None,
            entries: &entries,
        };
        save(storage, write);
        memory.save_now(write).unwrap();
        files.push(read_files(storage));
        states.push(memory.state().clone());
    }
    (files, states)
}

#[test]
fn a_segment_cut_anywhere_below_its_acknowledged_length_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let log_path = storage.active_segment_path().unwrap().to_path_buf();
    let (files, states) = save_appends(&mut storage, 6);
    drop(storage);
    let full = files.last().unwrap().segment.clone();
    let boundaries: Vec<usize> = files.iter().map(|f| f.segment.len()).collect();
    // Every cut: at each record boundary (which would otherwise look like an
    // older, valid file) and at every byte in between.
    for cut_at in 0..full.len() {
        std::fs::write(&log_path, &full[..cut_at]).unwrap();
        let error = block_on(FileStorage::new(dir.path()).load()).expect_err(&format!(
            "cut at byte {cut_at} of {} (record boundary: {}) was accepted",
            full.len(),
            boundaries.contains(&cut_at)
        ));
        assert!(
            matches!(&error, StorageError::Corrupt { path, .. } if *path == log_path),
            "cut at byte {cut_at}: {error}"
        );
    }
    std::fs::write(&log_path, &full).unwrap();
    let (_, state) = open(dir.path());
    assert_eq!(&state, states.last().unwrap());
}

#[test]
fn a_crash_at_any_byte_of_any_save_loads_the_state_before_or_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let log_path = storage.active_segment_path().unwrap().to_path_buf();
    let hard_state_path = storage.hard_state_path().to_path_buf();
    let (files, states) = save_appends(&mut storage, 4);
    drop(storage);
    for save_index in 1..files.len() {
        let (before, after) = (&files[save_index - 1], &files[save_index]);
        // Each save writes its new term to the hard state file first, then
        // its record: the crash comes while the record is being written.
        let mut expected_before = states[save_index - 1].clone();
        expected_before.hard_state.term = states[save_index].hard_state.term;
        expected_before.hard_state.voted_for = states[save_index].hard_state.voted_for;
        // From nothing of the record written to all of it (durable, but the
        // header not yet updated: the save was not acknowledged).
        for cut_at in before.segment.len()..=after.segment.len() {
            let image = crash_image(&before.segment, &after.segment, cut_at);
            // Later saves were never made: only this one's bytes follow.
            std::fs::write(&log_path, &image).unwrap();
            std::fs::write(&hard_state_path, &after.hard_state).unwrap();
            let state = block_on(FileStorage::new(dir.path()).load()).unwrap_or_else(|error| {
                panic!("crash in save {save_index} at byte {cut_at}: {error}")
            });
            let expected = if cut_at == after.segment.len() {
                &states[save_index]
            } else {
                &expected_before
            };
            assert_eq!(
                &state, expected,
                "crash in save {save_index} at byte {cut_at}: neither before nor after"
            );
        }
    }
}

#[test]
fn a_torn_header_slot_falls_back_to_the_other_and_two_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let log_path = storage.active_segment_path().unwrap().to_path_buf();
    let (files, states) = save_appends(&mut storage, 3);
    drop(storage);
    let full = &files.last().unwrap().segment;
    // Slots are at 8..28 and 28..48; damage each in turn.
    for slot_byte in [10, 30] {
        let mut bytes = full.clone();
        bytes[slot_byte] ^= 0xff;
        std::fs::write(&log_path, &bytes).unwrap();
        let state = block_on(FileStorage::new(dir.path()).load())
            .unwrap_or_else(|error| panic!("slot byte {slot_byte} damaged: {error}"));
        assert_eq!(&state, states.last().unwrap());
    }
    let mut bytes = full.clone();
    bytes[10] ^= 0xff;
    bytes[30] ^= 0xff;
    std::fs::write(&log_path, &bytes).unwrap();
    let error = block_on(FileStorage::new(dir.path()).load()).unwrap_err();
    assert!(error.to_string().contains("both header slots"), "{error}");
}

/// A log of entries 1-6 (terms 1,1,2,2,3,3) committed through `commit`, and
/// a snapshot file taken from another directory's history at `index`/`term`.
fn disagreeing_files(commit: u64, snapshot_meta: Option<(u64, u64)>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let entries: Vec<Entry> = [1, 1, 2, 2, 3, 3]
        .iter()
        .enumerate()
        .map(|(i, &term)| entry(i as u64 + 1, term))
        .collect();
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(3, commit)),
            snapshot: None,
            entries: &entries,
        },
    );
    drop(storage);
    if let Some((index, term)) = snapshot_meta {
        let other = tempfile::tempdir().unwrap();
        let (mut storage, _) = open(other.path());
        let snapshot = snapshot(index, term);
        save(
            &mut storage,
            StorageWrite {
                hard_state: Some(hard_state(term, index)),
                snapshot: Some(&snapshot),
                entries: &[],
            },
        );
        std::fs::copy(
            storage.snapshot_path(),
            dir.path().join(raft::storage::SNAPSHOT_FILE_NAME),
        )
        .unwrap();
    }
    dir
}

fn expect_inconsistent(dir: &std::path::Path, what: &str, needle: &str) {
    let error = block_on(FileStorage::new(dir).load())
        .expect_err(&format!("{what}: files that disagree were accepted"));
    match &error {
        StorageError::Inconsistent {
            snapshot_path,
            log_path,
            reason,
        } => {
            assert!(snapshot_path.ends_with("raft-snapshot"), "{what}: {error}");
            let log_name = log_path.file_name().unwrap().to_string_lossy();
            assert!(log_name.starts_with("raft-log-"), "{what}: {error}");
            assert!(reason.contains(needle), "{what}: {error}");
        }
        other => panic!("{what}: expected Inconsistent, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("raft-snapshot") && message.contains("raft-log"),
        "{what}: the message names both files: {message}"
    );
}

#[test]
fn a_snapshot_that_contradicts_a_committed_entry_is_refused() {
    // Entry 4 has term 2 and is committed; the snapshot says term 3.
    let dir = disagreeing_files(5, Some((4, 3)));
    expect_inconsistent(dir.path(), "committed entry contradicted", "is committed");
}

#[test]
fn a_snapshot_that_contradicts_an_uncommitted_entry_is_the_install_snapshot_case() {
    // The same files with entry 4 not committed: what a crash leaves after
    // a leader's snapshot replaced a conflicting tail. The log is dropped.
    let dir = disagreeing_files(3, Some((4, 3)));
    let (_, state) = open(dir.path());
    assert_eq!(state.snapshot.map(|s| s.meta.last_included_index), Some(4));
    assert!(state.entries.is_empty());
}

#[test]
fn a_log_that_starts_past_the_snapshot_is_refused() {
    // One segment per save, so snapshots remove whole segments: the log
    // kept after a snapshot at 5 starts at 5, next to a snapshot of 2 (an
    // older snapshot file).
    let dir = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::with_segment_size(dir.path(), 1);
    block_on(storage.load()).unwrap();
    save_appends(&mut storage, 3);
    let old_snapshot = snapshot(2, 1);
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&old_snapshot),
            entries: &[],
        },
    );
    let old_snapshot_file = std::fs::read(storage.snapshot_path()).unwrap();
    let new_snapshot = snapshot(5, 3);
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&new_snapshot),
            entries: &[],
        },
    );
    assert_eq!(storage.segment_paths().len(), 1, "entries 1-4 removed");
    let snapshot_path = storage.snapshot_path().to_path_buf();
    drop(storage);
    std::fs::write(&snapshot_path, &old_snapshot_file).unwrap();
    expect_inconsistent(dir.path(), "snapshot rolled back", "are missing");
    std::fs::remove_file(&snapshot_path).unwrap();
    expect_inconsistent(dir.path(), "snapshot deleted", "no snapshot");
}

#[test]
fn a_log_after_the_snapshot_with_an_older_term_is_refused() {
    // A log whose segment of entries 1-2 was removed by a snapshot at 2
    // (entries 3.. of term 1 kept) next to a snapshot of index 2 claiming
    // term 5.
    let dir = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::with_segment_size(dir.path(), 1);
    block_on(storage.load()).unwrap();
    for (first, commit) in [(1, 0), (3, 2)] {
        save(
            &mut storage,
            StorageWrite {
                hard_state: Some(hard_state(1, commit)),
                snapshot: None,
                entries: &[entry(first, 1), entry(first + 1, 1)],
            },
        );
    }
    let own_snapshot = snapshot(2, 1);
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&own_snapshot),
            entries: &[],
        },
    );
    let snapshot_path = storage.snapshot_path().to_path_buf();
    drop(storage);
    let other = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(other.path());
    let foreign = snapshot(2, 5);
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(5, 2)),
            snapshot: Some(&foreign),
            entries: &[],
        },
    );
    std::fs::copy(storage.snapshot_path(), &snapshot_path).unwrap();
    expect_inconsistent(dir.path(), "older term after the snapshot", "older term");
}

#[test]
fn a_commit_index_beyond_the_log_and_snapshot_is_refused() {
    let dir = disagreeing_files(9, None);
    expect_inconsistent(dir.path(), "commit beyond the end", "commit index is 9");
}

#[test]
fn entries_of_a_term_beyond_the_stored_term_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(1, 0)),
            snapshot: None,
            entries: &[entry(1, 5)],
        },
    );
    drop(storage);
    let error = block_on(FileStorage::new(dir.path()).load()).unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt { reason, .. } if reason.contains("term 5")),
        "{error}"
    );
}

/// Inside a tokio runtime the file operations run on the blocking pool.
#[tokio::test(flavor = "current_thread")]
async fn file_storage_works_from_a_runtime_through_the_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::new(dir.path());
    storage.load().await.unwrap();
    let entries = [entry(1, 1), entry(2, 1)];
    storage
        .save(StorageWrite {
            hard_state: Some(hard_state(1, 1)),
            snapshot: None,
            entries: &entries,
        })
        .await
        .unwrap();
    drop(storage);
    let state = FileStorage::new(dir.path()).load().await.unwrap();
    assert_eq!(state.entries, entries.to_vec());
    assert_eq!(state.hard_state, hard_state(1, 1));
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
        let log_path = storage.active_segment_path().unwrap().to_path_buf();
        drop(storage);
        let (_, state) = open(dir.path());
        prop_assert_eq!(&state, memory.state());
        // Tear the last record: append one more write, then cut it.
        let (mut storage, _) = open(dir.path());
        let before = std::fs::read(&log_path).unwrap();
        let before_size = before.len();
        let (_, entries) = make_write(&memory, 1000, &Op::Append { back: 0, count: 2 });
        let write = StorageWrite { hard_state: Some(hard_state(1000, 0)), snapshot: None, entries: &entries };
        save(&mut storage, write);
        previous.clone_from(memory.state());
        // The term reached the hard state file before the record.
        previous.hard_state.term = 1000;
        memory.save_now(write).unwrap();
        drop(storage);
        let bytes = std::fs::read(&log_path).unwrap();
        let cut_at = before_size + cut.min(bytes.len() - before_size - 1);
        std::fs::write(&log_path, crash_image(&before, &bytes, cut_at)).unwrap();
        let (reloaded, state) = open(dir.path());
        prop_assert_eq!(&state, &previous);
        prop_assert!(reloaded.torn_tail_bytes_discarded() > 0);
    }
}

#[test]
fn a_second_storage_on_a_directory_in_use_waits_then_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = open(dir.path());
    let mut second =
        FileStorage::new(dir.path()).with_lock_wait(std::time::Duration::from_millis(100));
    let error = block_on(second.load()).unwrap_err();
    assert!(
        matches!(&error, StorageError::Io { .. }) && error.to_string().contains("is locked"),
        "{error}"
    );
    // The refused storage wrote nothing: the first one still works.
    drop(first);
    let (_, state) = open(dir.path());
    assert_eq!(state, PersistentState::default());
}

#[test]
#[allow(clippy::disallowed_methods)] // real files, a real thread and real time
fn a_second_storage_gets_the_directory_once_the_first_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, _) = open(dir.path());
    let expected = save_three(&mut first);
    let started = std::time::Instant::now();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(first);
    });
    let (_, state) = open(dir.path());
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert_eq!(state.entries, expected.entries);
    releaser.join().unwrap();
}

/// A staged snapshot (`Storage::stage_snapshot`): invisible to `load` until
/// installed, counted as taken by the size the service watches, installed
/// as a save of it alone would be, and discarded by a snapshot saved whole.
#[test]
fn a_staged_snapshot_is_loaded_only_once_installed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open(dir.path());
    let expected = save_three(&mut storage);
    let staged_path = storage.staged_snapshot_path(2);
    let size_before = storage.raft_state_size_bytes();

    let write = storage.stage_snapshot(snapshot(2, 1)).expect("staged");
    assert!(storage.raft_state_size_bytes() < size_before);
    // One at a time: another is handed back until this one is installed.
    assert!(storage.stage_snapshot(snapshot(3, 1)).is_err());
    block_on(write).expect("the staged write");
    assert!(staged_path.exists());
    // A save between the halves: entry 5 after the staged snapshot's 2.
    let fifth = [entry(5, 3)];
    save(
        &mut storage,
        StorageWrite {
            hard_state: Some(hard_state(3, 4)),
            snapshot: None,
            entries: &fifth,
        },
    );
    drop(storage);
    // Not installed: the state is as if the snapshot was never taken, and
    // the staged file is gone.
    let (mut storage, state) = open(dir.path());
    assert!(!staged_path.exists());
    let mut with_fifth = expected.clone();
    with_fifth.entries.push(entry(5, 3));
    with_fifth.hard_state = hard_state(3, 4);
    assert_eq!(state, with_fifth);

    // Staged again and installed.
    let write = storage.stage_snapshot(snapshot(2, 1)).expect("staged");
    block_on(write).expect("the staged write");
    let size_staged = storage.raft_state_size_bytes();
    block_on(storage.install_staged_snapshot(&SnapshotMeta::at(2, 1))).expect("installed");
    assert_eq!(storage.raft_state_size_bytes(), size_staged);
    assert_eq!(storage.snapshot_size_bytes(), 100);
    assert!(!staged_path.exists());
    let error = block_on(storage.install_staged_snapshot(&SnapshotMeta::at(2, 1))).unwrap_err();
    assert!(
        error.to_string().contains("no snapshot is staged"),
        "{error}"
    );
    drop(storage);
    let (mut storage, state) = open(dir.path());
    assert_eq!(state.snapshot, Some(snapshot(2, 1)));
    assert_eq!(state.entries, vec![entry(3, 1), entry(4, 3), entry(5, 3)]);

    // A snapshot saved whole discards one staged before it.
    let write = storage.stage_snapshot(snapshot(3, 1)).expect("staged");
    block_on(write).expect("the staged write");
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&snapshot(4, 3)),
            entries: &[],
        },
    );
    assert!(block_on(storage.install_staged_snapshot(&SnapshotMeta::at(3, 1))).is_err());
    let discarded = storage.staged_snapshot_path(3);
    assert!(discarded.exists());
    drop(storage);
    let (_, state) = open(dir.path());
    assert!(!discarded.exists());
    assert_eq!(state.snapshot, Some(snapshot(4, 3)));
    assert_eq!(state.entries, vec![entry(5, 3)]);
}

/// Staging hands back what it cannot stage, to be saved whole: before
/// `load`, a snapshot not newer than the stored one, one past the log, one
/// that would clear the log (its last entry's term differs).
#[test]
fn staging_hands_back_what_must_be_saved_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut unloaded = FileStorage::new(dir.path());
    assert!(unloaded.stage_snapshot(snapshot(1, 1)).is_err());
    let (mut storage, _) = open(dir.path());
    save_three(&mut storage);
    save(
        &mut storage,
        StorageWrite {
            hard_state: None,
            snapshot: Some(&snapshot(2, 1)),
            entries: &[],
        },
    );
    for refused in [
        snapshot(2, 1),
        snapshot(1, 1),
        snapshot(9, 3),
        snapshot(4, 2),
    ] {
        let meta = refused.meta.clone();
        let handed_back = storage.stage_snapshot(refused).err();
        assert_eq!(handed_back.map(|s| s.meta), Some(meta));
    }
    assert!(storage.stage_snapshot(snapshot(4, 3)).is_ok());
}
