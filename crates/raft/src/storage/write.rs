//! [`StorageWrite`]: one group-committed write, and the rule every storage
//! uses to apply it to a [`PersistentState`].

use crate::core::{Entry, HardState, PersistentState, Ready, Snapshot};

use super::StorageError;

/// What one `Ready` asks to persist, as one atomic, durable write.
#[derive(Clone, Copy, Debug, Default)]
pub struct StorageWrite<'a> {
    pub hard_state: Option<HardState>,
    /// Applied first: drops the stored entries it covers.
    pub snapshot: Option<&'a Snapshot>,
    /// Then: replaces stored entries from `entries[0].index` on.
    pub entries: &'a [Entry],
}

impl<'a> StorageWrite<'a> {
    /// The part of `ready` that must reach the disk.
    pub fn from_ready(ready: &'a Ready) -> StorageWrite<'a> {
        StorageWrite {
            hard_state: ready.hard_state,
            snapshot: ready
                .snapshot
                .as_ref()
                .filter(|s| s.persist)
                .map(|s| &s.snapshot),
            entries: &ready.entries,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none() && self.snapshot.is_none() && self.entries.is_empty()
    }

    /// Applies this write to `state` (the in-memory image of what is stored).
    /// Checks first (see [`StorageWrite::validate`]); on error `state` is
    /// unchanged.
    pub fn apply_to(&self, state: &mut PersistentState) -> Result<(), StorageError> {
        self.validate(state)?;
        if let Some(snapshot) = self.snapshot {
            reconcile_with_snapshot(&mut state.entries, snapshot);
            state.snapshot = Some(snapshot.clone());
        }
        if let Some(first) = self.entries.first() {
            // Stored entries are consecutive: cut at the position of the
            // first new index (validated above to be within or just past).
            let kept = state.entries.first().map_or(0, |stored_first| {
                (first.index.saturating_sub(stored_first.index) as usize).min(state.entries.len())
            });
            state.entries.truncate(kept);
            state.entries.extend_from_slice(self.entries);
        }
        if let Some(hard_state) = self.hard_state {
            state.hard_state = hard_state;
        }
        Ok(())
    }

    /// Checks that the entries are consecutive and continue the stored log
    /// (after the snapshot, if any) without a gap.
    pub fn validate(&self, state: &PersistentState) -> Result<(), StorageError> {
        let mut snapshot_index = state
            .snapshot
            .as_ref()
            .map_or(0, |s| s.meta.last_included_index);
        let mut entries_after_snapshot = state.entries.len();
        if let Some(snapshot) = self.snapshot {
            snapshot_index = snapshot.meta.last_included_index;
            entries_after_snapshot = state
                .entries
                .iter()
                .filter(|e| e.index > snapshot_index)
                .count();
        }
        if let Some(first) = self.entries.first() {
            let last_stored = snapshot_index + entries_after_snapshot as u64;
            if first.index <= snapshot_index || first.index > last_stored + 1 {
                return Err(StorageError::InvalidWrite {
                    reason: format!(
                        "entries start at {} but the stored log covers {}..={last_stored} after \
                         snapshot {snapshot_index}",
                        first.index,
                        snapshot_index + 1
                    ),
                });
            }
            for (pair_index, pair) in self.entries.windows(2).enumerate() {
                if pair[1].index != pair[0].index + 1 {
                    return Err(StorageError::InvalidWrite {
                        reason: format!("entries not consecutive at position {pair_index}"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The log entries that survive a snapshot: if the log holds the snapshot's
/// last entry with the same term, the entries after it; otherwise none (the
/// rule of paper section 7, also used at load time when a crash left an old
/// log next to a newer snapshot).
pub fn reconcile_with_snapshot(entries: &mut Vec<Entry>, snapshot: &Snapshot) {
    let meta = snapshot.meta;
    let keeps_suffix = entries
        .iter()
        .any(|e| e.index == meta.last_included_index && e.term == meta.last_included_term)
        || entries
            .first()
            .is_some_and(|e| e.index == meta.last_included_index + 1);
    if keeps_suffix {
        entries.retain(|e| e.index > meta.last_included_index);
    } else {
        entries.clear();
    }
}
