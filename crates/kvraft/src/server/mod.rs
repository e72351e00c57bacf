//! A kvraft replica: the [`StateMachine`] run by an [`Rsm`], and the
//! labrpc handler clerks call.
//!
//! ```text
//!  KvRequest ─► handle() ─ sizes ok? a retry of a recorded write? (local)
//!                  │
//!                  ├─ Get, reads = ReadIndex: rsm.read(|machine| peek)
//!                  └─ otherwise:              rsm.submit(Command)
//!                                               └─ log, apply on every
//!                                                  replica, own output back
//! ```
//!
//! The server loop (waiters, log time, snapshots) is the `rsm` crate's;
//! this module only maps kvraft's requests onto it.

mod state_machine;

use std::net::SocketAddr;
use std::time::Duration;

use raft::node::RaftNode;
use raft::storage::{Storage, StorageError};

use api::Reply;
use rsm::{Rsm, RsmConfig};

use crate::rpc::KvRequest;
pub use api::MachineConfig;
pub use state_machine::{Command, StateMachine};

/// How a replica serves Get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadPath {
    /// Every Get is a log entry (6.5840's way): a round of replication and
    /// an fsync per batch, and the Get counts as an access for the
    /// eviction policy on every replica.
    Log,
    /// ReadIndex: the leader confirms its lead with a heartbeat round,
    /// waits until it has applied that far, and reads without an entry.
    /// Such a Get does not count as an access for the eviction policy
    /// (replicas must stay identical, and only the leader sees it).
    #[default]
    ReadIndex,
}

/// Settings of one replica.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// This replica's index in `peer_addrs`.
    pub id: usize,
    /// The labrpc address of every replica (Raft and kvraft share a server).
    pub peer_addrs: Vec<SocketAddr>,
    pub machine: MachineConfig,
    /// Snapshot once the stored Raft state reaches this many bytes (None:
    /// never; the default is `rsm::DEFAULT_MAX_RAFT_STATE_BYTES`).
    pub max_raft_state: Option<u64>,
    /// How long a request waits to see its entry applied before answering
    /// `Timeout` (the clerk then retries).
    pub apply_wait: Duration,
    /// Seed of Raft's election-timeout RNG.
    pub raft_seed: u64,
    /// How Get is served.
    pub reads: ReadPath,
}

impl ServerConfig {
    pub fn new(id: usize, peer_addrs: Vec<SocketAddr>, raft_seed: u64) -> ServerConfig {
        ServerConfig {
            id,
            peer_addrs,
            machine: MachineConfig::default(),
            max_raft_state: Some(rsm::DEFAULT_MAX_RAFT_STATE_BYTES),
            apply_wait: Duration::from_millis(800),
            raft_seed,
            reads: ReadPath::default(),
        }
    }
}

/// Counters a test or an operator reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStatus {
    pub last_applied: u64,
    pub logical_now_ms: u64,
    pub sessions: usize,
    pub last_snapshot_bytes: u64,
    pub raft_state_size_bytes: u64,
}

/// One running replica. Cheap to clone.
#[derive(Clone)]
pub struct KvServer {
    rsm: Rsm<StateMachine>,
    reads: ReadPath,
}

impl KvServer {
    /// Starts Raft on `storage` (restoring its snapshot), the apply task,
    /// and one labrpc server on `peer_addrs[me]` carrying both Raft's and
    /// kvraft's methods.
    pub async fn start<S: Storage + 'static>(
        config: ServerConfig,
        storage: S,
    ) -> Result<KvServer, StartError> {
        let addr = config.peer_addrs[config.id];
        let rsm_config = RsmConfig {
            max_raft_state: config.max_raft_state,
            apply_wait: config.apply_wait,
            ..RsmConfig::new(config.id, config.peer_addrs, config.raft_seed)
        };
        let machine = StateMachine::new(config.machine);
        let rsm = Rsm::start(rsm_config, machine, storage).await?;
        let server = KvServer {
            rsm,
            reads: config.reads,
        };
        let mut router = labrpc::Router::new();
        server.rsm.raft().add_handlers(&mut router);
        let handler_server = server.clone();
        router.add::<KvRequest, _, _>(move |request: KvRequest| {
            let server = handler_server.clone();
            async move { server.handle(request).await }
        });
        labrpc::Server::start(addr, router, labrpc::ServerConfig::default())
            .await
            .map_err(|error| StartError::Listen {
                addr,
                detail: error.to_string(),
            })?;
        Ok(server)
    }

    pub fn raft(&self) -> &RaftNode {
        self.rsm.raft()
    }

    /// The replicated state machine this server runs.
    pub fn rsm(&self) -> &Rsm<StateMachine> {
        &self.rsm
    }

    pub fn status(&self) -> ServerStatus {
        let status = self.rsm.status();
        ServerStatus {
            last_applied: status.last_applied,
            logical_now_ms: status.log_time_ms,
            sessions: self.rsm.with_machine(StateMachine::session_count),
            last_snapshot_bytes: status.last_snapshot_bytes,
            raft_state_size_bytes: status.raft.raft_state_size_bytes,
        }
    }

    /// Stops Raft; the handler answers `WrongLeader` from then on.
    pub fn kill(&self) {
        self.rsm.kill();
    }

    /// Serves one clerk request (the labrpc handler).
    pub async fn handle(&self, request: KvRequest) -> Reply {
        // Bad input changes nothing and costs no log entry; a retry of a
        // committed write gets its recorded answer at once.
        let early = self.rsm.with_machine(|machine| {
            if let Err(error) = machine.check_sizes(&request.op) {
                return Some(Err(error));
            }
            if request.op.is_read() {
                return None;
            }
            machine.recorded_reply(request.client_id, request.seq)
        });
        if let Some(reply) = early {
            return reply;
        }
        if request.op.is_read() && self.reads == ReadPath::ReadIndex {
            let read = self
                .rsm
                .read(|machine, context| machine.read(&request.op, context.now_ms))
                .await;
            return read.unwrap_or_else(|error| Err(error.into()));
        }
        let command = Command {
            client_id: request.client_id,
            seq: request.seq,
            op: request.op,
        };
        self.rsm
            .submit(command)
            .await
            .unwrap_or_else(|error| Err(error.into()))
    }
}

/// Why a replica did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("raft storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot serve on {addr}: {detail}")]
    Listen { addr: SocketAddr, detail: String },
}
