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
        let snapshot_index = state
            .snapshot
            .as_ref()
            .map_or(0, |s| s.meta.last_included_index);
        self.validate_against(snapshot_index, snapshot_index + state.entries.len() as u64)
    }

    /// [`StorageWrite::validate`] against a stored log described by its
    /// snapshot index and last index (for storages that do not keep the
    /// entries in memory).
    pub fn validate_against(
        &self,
        stored_snapshot_index: u64,
        stored_last_index: u64,
    ) -> Result<(), StorageError> {
        let (snapshot_index, last_stored) = match self.snapshot {
            Some(snapshot) => {
                let index = snapshot.meta.last_included_index;
                (index, stored_last_index.max(index))
            }
            None => (stored_snapshot_index, stored_last_index),
        };
        if let Some(first) = self.entries.first() {
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
    let meta = &snapshot.meta;
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

/// Checks a state read back from storage that the log file alone cannot
/// break: entry terms never decrease and never exceed the stored current
/// term (entries and the hard state are written together, so no crash
/// separates them). Returns what is wrong.
pub fn check_loaded_log(state: &PersistentState) -> Result<(), String> {
    let term = state.hard_state.term;
    if let Some(entry) = state.entries.iter().find(|e| e.term > term) {
        return Err(format!(
            "log entry {} has term {} but the stored current term is {term}",
            entry.index, entry.term
        ));
    }
    if let Some(pair) = state.entries.windows(2).find(|p| p[1].term < p[0].term) {
        return Err(format!(
            "log terms go down from {} at index {} to {} at index {}",
            pair[0].term, pair[0].index, pair[1].term, pair[1].index
        ));
    }
    Ok(())
}

/// Fits a loaded snapshot and log together, or says why they cannot be.
///
/// A crash between replacing the snapshot and rewriting the log leaves an
/// older log next to a newer snapshot; [`reconcile_with_snapshot`] resolves
/// that as InstallSnapshot would. Everything else is refused:
/// - the log starts after the snapshot's last index + 1 (or after 1 with no
///   snapshot): the entries between are gone;
/// - the log holds the snapshot's last index with another term although
///   the stored commit index covers it: two different committed entries;
/// - the entries kept after the snapshot have a term below its last term;
/// - the stored commit index is beyond both the snapshot and the log.
///
/// On success `state.entries` holds only the entries after the snapshot.
pub fn reconcile_loaded(state: &mut PersistentState) -> Result<(), String> {
    let commit_index = state.hard_state.commit_index;
    match &state.snapshot {
        None => {
            if let Some(first) = state.entries.first()
                && first.index != 1
            {
                return Err(format!(
                    "there is no snapshot but the log starts at index {}: entries 1..={} are \
                     missing",
                    first.index,
                    first.index - 1
                ));
            }
        }
        Some(snapshot) => {
            let meta = &snapshot.meta;
            if let Some(entry) = state
                .entries
                .iter()
                .find(|e| e.index == meta.last_included_index)
                && entry.term != meta.last_included_term
                && commit_index >= meta.last_included_index
            {
                return Err(format!(
                    "the log's entry {} has term {} and is committed (commit index \
                     {commit_index}), but the snapshot ends there with term {}",
                    entry.index, entry.term, meta.last_included_term
                ));
            }
            if let Some(first) = state.entries.first()
                && first.index > meta.last_included_index + 1
            {
                return Err(format!(
                    "the snapshot ends at index {} (term {}) but the log starts at index {}: \
                     entries {}..={} are missing",
                    meta.last_included_index,
                    meta.last_included_term,
                    first.index,
                    meta.last_included_index + 1,
                    first.index - 1
                ));
            }
            reconcile_with_snapshot(&mut state.entries, snapshot);
            if let Some(first) = state.entries.first()
                && first.term < meta.last_included_term
            {
                return Err(format!(
                    "the snapshot ends with term {} but the log's next entry {} has the older \
                     term {}",
                    meta.last_included_term, first.index, first.term
                ));
            }
        }
    }
    let snapshot_index = state
        .snapshot
        .as_ref()
        .map_or(0, |s| s.meta.last_included_index);
    let last_index = state.entries.last().map_or(snapshot_index, |e| e.index);
    if commit_index > last_index {
        return Err(format!(
            "the stored commit index is {commit_index} but the snapshot and the log end at \
             index {last_index}"
        ));
    }
    Ok(())
}
