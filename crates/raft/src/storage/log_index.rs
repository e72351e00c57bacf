//! [`LogIndex`]: what [`super::FileStorage`] remembers of the stored log
//! between saves: positions, terms and sizes, never the entries' data. The
//! core holds the entries; holding them here too would keep the whole log
//! in memory twice.

use std::collections::VecDeque;

use crate::core::{Entry, HardState, PersistentState, Snapshot, SnapshotMeta};

use super::format::encoded_entry_size_bytes;
use super::sized_state::raft_state_size_bytes;
use super::{StorageError, StorageWrite};

/// One stored entry, without its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EntryMeta {
    term: u64,
    encoded_size_bytes: u64,
}

/// The stored log's shape: hard state, snapshot position, and per entry
/// after the snapshot its term and encoded size (16 bytes an entry).
#[derive(Clone, Debug, Default)]
pub struct LogIndex {
    hard_state: HardState,
    snapshot: SnapshotMeta,
    snapshot_data_size_bytes: u64,
    /// `entries[i]` is the entry at `snapshot.last_included_index + 1 + i`.
    entries: VecDeque<EntryMeta>,
    entries_size_bytes: u64,
}

impl LogIndex {
    /// The index of a loaded, reconciled state (entries start right after
    /// the snapshot).
    pub fn from_state(state: &PersistentState) -> LogIndex {
        let mut index = LogIndex {
            hard_state: state.hard_state,
            ..LogIndex::default()
        };
        if let Some(snapshot) = &state.snapshot {
            index.snapshot = snapshot.meta.clone();
            index.snapshot_data_size_bytes = snapshot.data.len() as u64;
        }
        index.push(&state.entries);
        index
    }

    fn push(&mut self, entries: &[Entry]) {
        for entry in entries {
            let encoded_size_bytes = encoded_entry_size_bytes(entry);
            self.entries_size_bytes += encoded_size_bytes;
            self.entries.push_back(EntryMeta {
                term: entry.term,
                encoded_size_bytes,
            });
        }
    }

    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot.clone()
    }

    pub fn snapshot_data_size_bytes(&self) -> u64 {
        self.snapshot_data_size_bytes
    }

    pub fn last_index(&self) -> u64 {
        self.snapshot.last_included_index + self.entries.len() as u64
    }

    /// Entries described (those after the snapshot).
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot.last_included_index {
            return Some(self.snapshot.last_included_term);
        }
        let offset = index.checked_sub(self.snapshot.last_included_index + 1)?;
        self.entries
            .get(usize::try_from(offset).ok()?)
            .map(|entry| entry.term)
    }

    /// Whether installing `snapshot` drops the whole stored log (it does not
    /// hold the snapshot's last entry with the same term): the rule of
    /// [`super::reconcile_with_snapshot`].
    pub fn snapshot_clears_log(&self, snapshot: &Snapshot) -> bool {
        self.snapshot_meta_clears_log(&snapshot.meta)
    }

    /// [`LogIndex::snapshot_clears_log`] for a snapshot known by its
    /// position only.
    pub fn snapshot_meta_clears_log(&self, meta: &SnapshotMeta) -> bool {
        let keeps_suffix = meta.last_included_index == self.snapshot.last_included_index
            || self.term_at(meta.last_included_index) == Some(meta.last_included_term);
        !keeps_suffix
    }

    pub fn validate(&self, write: &StorageWrite<'_>) -> Result<(), StorageError> {
        write.validate_against(self.snapshot.last_included_index, self.last_index())
    }

    /// Applies `write` as [`StorageWrite::apply_to`] does; on error nothing
    /// changes.
    pub fn apply(&mut self, write: &StorageWrite<'_>) -> Result<(), StorageError> {
        self.validate(write)?;
        if let Some(snapshot) = write.snapshot {
            self.apply_snapshot(&snapshot.meta, snapshot.data.len() as u64);
        }
        if let Some(first) = write.entries.first() {
            // Validated: within the stored entries or just past them.
            let kept = (first.index - self.snapshot.last_included_index - 1) as usize;
            for entry in self.entries.drain(kept..) {
                self.entries_size_bytes -= entry.encoded_size_bytes;
            }
            self.push(write.entries);
        }
        if let Some(hard_state) = write.hard_state {
            self.hard_state = hard_state;
        }
        Ok(())
    }

    /// A snapshot of `data_size_bytes` at `meta` replaces the stored one:
    /// the entries it covers go (all of them if it clears the log).
    pub fn apply_snapshot(&mut self, meta: &SnapshotMeta, data_size_bytes: u64) {
        let (covered, _) = self.covered_by(meta);
        for entry in self.entries.drain(..covered) {
            self.entries_size_bytes -= entry.encoded_size_bytes;
        }
        self.snapshot = meta.clone();
        self.snapshot_data_size_bytes = data_size_bytes;
    }

    /// How many stored entries, and how many of their encoded bytes, a
    /// snapshot at `meta` drops: those up to its last index, or all of
    /// them if it clears the log.
    pub fn covered_by(&self, meta: &SnapshotMeta) -> (usize, u64) {
        let count = if self.snapshot_meta_clears_log(meta) {
            self.entries.len()
        } else {
            let covered = meta
                .last_included_index
                .saturating_sub(self.snapshot.last_included_index);
            usize::try_from(covered)
                .unwrap_or(usize::MAX)
                .min(self.entries.len())
        };
        let bytes = self
            .entries
            .iter()
            .take(count)
            .map(|entry| entry.encoded_size_bytes)
            .sum();
        (count, bytes)
    }

    /// As `Storage::raft_state_size_bytes` reports it.
    pub fn raft_state_size_bytes(&self) -> u64 {
        self.raft_state_size_bytes_without(0, 0)
    }

    /// The size with the first `count` entries (of `bytes` encoded) left
    /// out: what it will be once a snapshot covering them is installed.
    pub fn raft_state_size_bytes_without(&self, count: usize, bytes: u64) -> u64 {
        raft_state_size_bytes(
            &self.hard_state,
            self.entries.len().saturating_sub(count),
            self.entries_size_bytes.saturating_sub(bytes),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::EntryKind;
    use crate::storage::MemoryStorage;
    use crate::storage::format::encoded_raft_state_size_bytes;

    fn entries(range: std::ops::RangeInclusive<u64>, term: u64, size: usize) -> Vec<Entry> {
        range
            .map(|index| Entry {
                index,
                term,
                kind: EntryKind::Command,
                data: vec![1; size].into(),
            })
            .collect()
    }

    fn snapshot(index: u64, term: u64) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta::at(index, term),
            data: vec![0; 7].into(),
        }
    }

    /// The index follows the full in-memory model through appends,
    /// overwrites, a matching snapshot and a conflicting one.
    #[test]
    fn the_index_matches_the_memory_model() {
        let mut model = MemoryStorage::new();
        let mut index = LogIndex::default();
        let batch = entries(1..=300, 1, 10);
        let overwrite = entries(250..=260, 2, 1000);
        let matching = snapshot(255, 2);
        let after = entries(261..=270, 3, 5);
        let conflicting = snapshot(400, 9);
        let writes = [
            StorageWrite {
                hard_state: Some(HardState {
                    term: 3,
                    voted_for: Some(1),
                    commit_index: 200,
                }),
                snapshot: None,
                entries: &batch,
            },
            StorageWrite {
                hard_state: None,
                snapshot: None,
                entries: &overwrite,
            },
            StorageWrite {
                hard_state: None,
                snapshot: Some(&matching),
                entries: &[],
            },
            StorageWrite {
                hard_state: None,
                snapshot: None,
                entries: &after,
            },
            StorageWrite {
                hard_state: None,
                snapshot: Some(&conflicting),
                entries: &[],
            },
        ];
        for write in writes {
            if let Some(snapshot) = write.snapshot {
                // Entry 255 has term 2; nothing is stored at 400.
                let conflicts = snapshot.meta.last_included_index == 400;
                assert_eq!(index.snapshot_clears_log(snapshot), conflicts);
            }
            model.save_now(write).unwrap();
            index.apply(&write).unwrap();
            let state = model.state();
            assert_eq!(index.entry_count(), state.entries.len());
            assert_eq!(
                index.raft_state_size_bytes(),
                encoded_raft_state_size_bytes(state)
            );
            assert_eq!(index.hard_state(), state.hard_state);
        }
        assert_eq!(index.last_index(), 400);
    }
}
