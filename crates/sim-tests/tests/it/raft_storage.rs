//! File storage on the simulated disk (`RUSTFLAGS="--cfg madsim"`), which
//! loses what was not synced when its node is killed: what a save returned
//! for survives, the header write each save leaves unsynced does not, and
//! the restarted node loads every acknowledged save all the same.

#![cfg(madsim)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::core::{Entry, EntryKind, HardState};
use raft::storage::{FileStorage, LoadStats, Storage, StorageWrite};
use sim_tests::harness::within;

/// TESTS.md: 120 s of simulated time per test.
const TEST_LIMIT: Duration = Duration::from_secs(120);

const DIR: &str = "/disk";
/// Small segments, so the saves span several.
const SEGMENT_BYTES: u64 = 256;
const SAVES: u64 = 12;

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        kind: EntryKind::Command,
        data: vec![index as u8; 40].into(),
    }
}

/// What one incarnation of the node found at load.
#[derive(Clone, Debug)]
struct Loaded {
    entries: Vec<Entry>,
    hard_state: HardState,
    stats: LoadStats,
    segments: usize,
}

#[madsim::test]
async fn a_killed_node_loses_its_unsynced_writes_and_keeps_every_acknowledged_save() {
    within("unsynced writes lost, saves kept", TEST_LIMIT, async {
        let handle = madsim::runtime::Handle::current();
        let loads: Arc<Mutex<Vec<Loaded>>> = Arc::default();
        let saves_done = Arc::new(AtomicUsize::new(0));
        let incarnations = Arc::new(AtomicUsize::new(0));
        let node = {
            let loads = Arc::clone(&loads);
            let saves_done = Arc::clone(&saves_done);
            handle
                .create_node()
                .name("disk")
                .init(move || {
                    let loads = Arc::clone(&loads);
                    let saves_done = Arc::clone(&saves_done);
                    let incarnation = incarnations.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let mut storage = FileStorage::with_segment_size(DIR, SEGMENT_BYTES);
                        let state = storage.load().await.expect("load");
                        loads.lock().unwrap().push(Loaded {
                            entries: state.entries,
                            hard_state: state.hard_state,
                            stats: storage.load_stats(),
                            segments: storage.segment_paths().len(),
                        });
                        if incarnation > 0 {
                            return;
                        }
                        for index in 1..=SAVES {
                            let entries = [entry(index)];
                            storage
                                .save(StorageWrite {
                                    hard_state: Some(HardState {
                                        term: 1,
                                        voted_for: Some(0),
                                        commit_index: index - 1,
                                    }),
                                    snapshot: None,
                                    entries: &entries,
                                })
                                .await
                                .expect("save");
                            saves_done.fetch_add(1, Ordering::SeqCst);
                        }
                        // Hold the storage (and its unsynced header write) until
                        // the node is killed.
                        std::future::pending::<()>().await;
                    }
                })
                .build()
        };

        // Phase 1: the first incarnation saves, then is killed.
        for _ in 0..100 {
            if saves_done.load(Ordering::SeqCst) == SAVES as usize {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(saves_done.load(Ordering::SeqCst), SAVES as usize);
        handle.kill(node.id());

        // Phase 2: the restarted node finds every acknowledged save.
        handle.restart(node.id());
        for _ in 0..100 {
            if loads.lock().unwrap().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let loads = loads.lock().unwrap().clone();
        assert_eq!(loads.len(), 2, "two incarnations loaded");
        let restarted = &loads[1];
        assert!(restarted.segments > 2, "{} segments", restarted.segments);
        let expected: Vec<Entry> = (1..=SAVES).map(entry).collect();
        assert_eq!(restarted.entries, expected, "every acknowledged save");
        assert_eq!(restarted.hard_state.commit_index, SAVES - 1);
        // The last save's header write (the newest segment's acknowledged
        // length) was never synced: the kill dropped it, and load had to
        // cover the durable record the header missed, with one slot write.
        assert_eq!(
            restarted.stats.bytes_written, 20,
            "load repaired the header the crash lost: {:?}",
            restarted.stats
        );
    })
    .await;
}
