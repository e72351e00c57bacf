//! [`LogStore`]: openraft's log, vote and committed id in memory.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogId, LogState, RaftLogReader, StorageError, Vote};

use super::{NodeId, TypeConfig};

/// The log in a map by index. Clones share it: openraft reads through a
/// clone ([`RaftLogStorage::get_log_reader`]) while the core appends.
#[derive(Clone, Default)]
pub struct LogStore {
    state: Arc<Mutex<LogStoreState>>,
}

#[derive(Default)]
struct LogStoreState {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    /// The last entry removed by [`RaftLogStorage::purge`].
    last_purged: Option<LogId<NodeId>>,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
}

impl LogStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogStoreState> {
        self.state.lock().expect("log store lock poisoned")
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<Range: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: Range,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let bounds: (Bound<u64>, Bound<u64>) =
            (range.start_bound().cloned(), range.end_bound().cloned());
        Ok(self
            .lock()
            .entries
            .range(bounds)
            .map(|(_, entry)| entry.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let state = self.lock();
        let last_log_id = state
            .entries
            .last_key_value()
            .map(|(_, entry)| entry.log_id)
            .or(state.last_purged);
        Ok(LogState {
            last_purged_log_id: state.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().committed)
    }

    /// In memory an append is durable at once, so the callback runs before
    /// returning.
    async fn append<Entries>(
        &mut self,
        entries: Entries,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        Entries: IntoIterator<Item = Entry<TypeConfig>> + Send,
        Entries::IntoIter: Send,
    {
        {
            let mut state = self.lock();
            for entry in entries {
                state.entries.insert(entry.log_id.index, entry);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    /// Removes the entries from `log_id` on (a conflicting suffix).
    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut state = self.lock();
        assert!(
            state.committed.is_none_or(|c| c.index < log_id.index),
            "truncating committed entries: from {log_id}, committed {:?}",
            state.committed
        );
        state.entries.split_off(&log_id.index);
        Ok(())
    }

    /// Removes the entries up to and including `log_id` (a snapshot has
    /// them).
    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut state = self.lock();
        let kept = state.entries.split_off(&(log_id.index + 1));
        state.entries = kept;
        state.last_purged = Some(log_id);
        Ok(())
    }
}
