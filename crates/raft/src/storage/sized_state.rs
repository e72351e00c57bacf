//! [`SizedState`]: the stored state's in-memory image, with its encoded size
//! kept up to date at the cost of each change rather than of the whole log.

use crate::core::{Entry, PersistentState};

use super::format::{encoded_entry_size_bytes, encoded_hard_state_size_bytes};
use super::{StorageError, StorageWrite};

#[derive(Clone, Debug, Default)]
pub struct SizedState {
    state: PersistentState,
    /// Sum of the encoded sizes of `state.entries`.
    entries_size_bytes: u64,
}

fn total_entries_size_bytes(entries: &[Entry]) -> u64 {
    entries.iter().map(encoded_entry_size_bytes).sum()
}

/// Bytes of the encoded hard state and log, given the log's length and the
/// sum of its entries' encoded sizes (`Storage::raft_state_size_bytes`).
pub fn raft_state_size_bytes(
    hard_state: &crate::core::HardState,
    entry_count: usize,
    entries_size_bytes: u64,
) -> u64 {
    encoded_hard_state_size_bytes(hard_state)
        + length_prefix_size_bytes(entry_count)
        + entries_size_bytes
}

/// Bytes of bincode's variable-length encoding of a sequence length.
fn length_prefix_size_bytes(length: usize) -> u64 {
    match length as u64 {
        0..=250 => 1,
        251..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

impl SizedState {
    pub fn state(&self) -> &PersistentState {
        &self.state
    }

    /// Applies `write` (see [`StorageWrite::apply_to`]); on error nothing
    /// changes.
    pub fn apply(&mut self, write: StorageWrite<'_>) -> Result<(), StorageError> {
        write.validate(&self.state)?;
        if write.snapshot.is_some() {
            // Rare, and it may drop the whole log: recount.
            write.apply_to(&mut self.state)?;
            self.entries_size_bytes = total_entries_size_bytes(&self.state.entries);
            return Ok(());
        }
        if let Some(first) = write.entries.first() {
            let replaced: u64 = self
                .state
                .entries
                .iter()
                .rev()
                .take_while(|e| e.index >= first.index)
                .map(encoded_entry_size_bytes)
                .sum();
            self.entries_size_bytes -= replaced;
            self.entries_size_bytes += total_entries_size_bytes(write.entries);
        }
        write.apply_to(&mut self.state)
    }

    /// Encoded size of the hard state and the log, as
    /// `Storage::raft_state_size_bytes` reports it.
    pub fn raft_state_size_bytes(&self) -> u64 {
        raft_state_size_bytes(
            &self.state.hard_state,
            self.state.entries.len(),
            self.entries_size_bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{EntryKind, HardState};
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

    #[test]
    fn tracked_size_equals_the_encoded_size_through_appends_overwrites_and_snapshots() {
        let mut sized = SizedState::default();
        let check = |sized: &SizedState| {
            assert_eq!(
                sized.raft_state_size_bytes(),
                encoded_raft_state_size_bytes(sized.state())
            );
        };
        check(&sized);
        let hard_state = HardState {
            term: 300,
            voted_for: Some(2),
            commit_index: 70_000,
        };
        let batch = entries(1..=300, 1, 10);
        sized
            .apply(StorageWrite {
                hard_state: Some(hard_state),
                snapshot: None,
                entries: &batch,
            })
            .unwrap();
        check(&sized);
        let overwrite = entries(250..=260, 2, 1000);
        sized
            .apply(StorageWrite {
                hard_state: None,
                snapshot: None,
                entries: &overwrite,
            })
            .unwrap();
        check(&sized);
        let snapshot = crate::core::Snapshot {
            meta: crate::core::SnapshotMeta::at(255, 2),
            data: vec![0; 10].into(),
        };
        sized
            .apply(StorageWrite {
                hard_state: None,
                snapshot: Some(&snapshot),
                entries: &[],
            })
            .unwrap();
        check(&sized);
        assert_eq!(sized.state().entries.len(), 5);
    }
}
