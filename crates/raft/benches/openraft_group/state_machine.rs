//! [`StateMachine`]: counts the commands applied, as our driver
//! benchmark's service does; its snapshot is that count.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StoredMembership,
};

use super::{NodeId, TypeConfig};
use crate::driver_common::COMMAND_SIZE_BYTES;

/// Clones share the state: the snapshot builder openraft runs on a task
/// of its own is a clone.
#[derive(Clone, Default)]
pub struct StateMachine {
    state: Arc<Mutex<MachineState>>,
}

#[derive(Default)]
struct MachineState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    commands_applied: u64,
    /// The last snapshot built or installed: its meta and its bytes.
    snapshot: Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>,
}

impl StateMachine {
    fn lock(&self) -> std::sync::MutexGuard<'_, MachineState> {
        self.state.lock().expect("state machine lock poisoned")
    }
}

fn snapshot_of(meta: SnapshotMeta<NodeId, BasicNode>, data: Vec<u8>) -> Snapshot<TypeConfig> {
    Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(data)),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let mut state = self.lock();
        let data = state.commands_applied.to_le_bytes().to_vec();
        let meta = SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.membership.clone(),
            snapshot_id: format!("{:?}", state.last_applied.map(|id| id.index)),
        };
        state.snapshot = Some((meta.clone(), data.clone()));
        Ok(snapshot_of(meta, data))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let state = self.lock();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<Entries>(&mut self, entries: Entries) -> Result<Vec<()>, StorageError<NodeId>>
    where
        Entries: IntoIterator<Item = Entry<TypeConfig>> + Send,
        Entries::IntoIter: Send,
    {
        let mut state = self.lock();
        let mut responses = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(command) => {
                    assert_eq!(command.len(), COMMAND_SIZE_BYTES, "bench commands only");
                    state.commands_applied += 1;
                }
                EntryPayload::Membership(membership) => {
                    state.membership = StoredMembership::new(Some(entry.log_id), membership);
                }
            }
            responses.push(());
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let count: [u8; 8] = data
            .as_slice()
            .try_into()
            .unwrap_or_else(|_| panic!("snapshot {meta} is {} bytes, not 8", data.len()));
        let mut state = self.lock();
        state.commands_applied = u64::from_le_bytes(count);
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.snapshot = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self
            .lock()
            .snapshot
            .clone()
            .map(|(meta, data)| snapshot_of(meta, data)))
    }
}
