//! openraft (the crates.io release) in the same shape as our driver
//! benchmark's group: three [`Raft`]s in one process, the log and the
//! state machine in memory ([`LogStore`], [`StateMachine`]), RPCs
//! delivered by direct calls ([`Router`]), 16-byte commands, a snapshot
//! every [`SNAPSHOT_EVERY`] entries that keeps no log behind it.
//!
//! The adapters are written from openraft's documented traits (the v2
//! storage API, feature `storage-v2`): nothing here is specific to the
//! benchmark beyond counting the commands applied.

mod log_store;
mod network;
mod state_machine;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{Config, Raft, ServerState, SnapshotPolicy};

pub use log_store::LogStore;
pub use network::Router;
pub use state_machine::StateMachine;

use crate::driver_common::{COMMAND_SIZE_BYTES, GROUP_SIZE, Proposal, SNAPSHOT_EVERY};

openraft::declare_raft_types!(
    /// Commands are the 16-byte `Vec<u8>`s our driver takes; applying one
    /// answers nothing.
    pub TypeConfig:
        D = Vec<u8>,
        R = (),
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

pub type NodeId = u64;

pub struct Group {
    pub rafts: Vec<Raft<TypeConfig>>,
}

/// openraft's settings, matched to our driver's defaults where both have
/// the setting: heartbeats every 100 ms, elections after 300-600 ms, at
/// most 512 entries per AppendEntries, a snapshot every
/// [`SNAPSHOT_EVERY`] entries after which the log before it is purged.
fn config() -> Config {
    Config {
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 600,
        max_payload_entries: 512,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY),
        max_in_snapshot_log_to_keep: 0,
        ..Config::default()
    }
    .validate()
    .expect("valid openraft config")
}

/// Starts the group, initialises it from node 0 and waits (at most 10 s)
/// for node 0 to lead.
pub async fn start_group() -> Group {
    let config = Arc::new(config());
    let router = Router::default();
    let mut rafts = Vec::new();
    for id in 0..GROUP_SIZE as NodeId {
        let raft = Raft::new(
            id,
            Arc::clone(&config),
            router.clone(),
            LogStore::default(),
            StateMachine::default(),
        )
        .await
        .expect("openraft node starts");
        router.register(id, raft.clone());
        rafts.push(raft);
    }
    let members: BTreeSet<NodeId> = (0..GROUP_SIZE as NodeId).collect();
    rafts[0]
        .initialize(members)
        .await
        .expect("a pristine group initialises");
    rafts[0]
        .wait(Some(Duration::from_secs(10)))
        .state(ServerState::Leader, "node 0 leads within 10 s")
        .await
        .expect("node 0 leads within 10 s");
    Group { rafts }
}

/// Writes one command through `raft` and waits until the leader has
/// applied it (openraft's `client_write` answers after the apply).
pub async fn propose_and_wait(raft: &Raft<TypeConfig>, command: Vec<u8>) -> Proposal {
    debug_assert_eq!(command.len(), COMMAND_SIZE_BYTES);
    match raft.client_write(command).await {
        Ok(_) => Proposal::Applied,
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Proposal::Refused,
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(error))) => {
            panic!("a command write failed as a membership change: {error}")
        }
        Err(RaftError::Fatal(_)) => Proposal::Stopped,
    }
}
