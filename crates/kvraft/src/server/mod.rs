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

use raft::node::RaftNode;
use raft::storage::Storage;

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
    /// The replica as the rsm runs it: its Raft id (`replica.id`, its
    /// index in `replica.peer_addrs`), the group's labrpc addresses, the
    /// snapshot threshold (`max_raft_state`, default
    /// `rsm::DEFAULT_MAX_RAFT_STATE_BYTES`), how long a request waits to be
    /// applied (`apply_wait`), Raft's seed, the message limit and the
    /// storage-failure hook.
    pub replica: RsmConfig,
    pub machine: MachineConfig,
    /// How Get is served.
    pub reads: ReadPath,
}

impl ServerConfig {
    pub fn new(id: usize, peer_addrs: Vec<SocketAddr>, raft_seed: u64) -> ServerConfig {
        ServerConfig {
            replica: RsmConfig::new(id, peer_addrs, raft_seed),
            machine: MachineConfig::default(),
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
        let machine = StateMachine::new(config.machine);
        let rsm = Rsm::start(config.replica, machine, storage).await?;
        let server = KvServer {
            rsm,
            reads: config.reads,
        };
        let handler_server = server.clone();
        let add_service = |router: &mut labrpc::Router| {
            router.add::<KvRequest, _, _>(move |request: KvRequest| {
                let server = handler_server.clone();
                async move { server.handle(request).await }
            });
        };
        server.rsm.serve(add_service).await?;
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
            return self
                .rsm
                .read_reply(|machine, context| machine.read(&request.op, context.now_ms))
                .await;
        }
        let command = Command {
            client_id: request.client_id,
            seq: request.seq,
            op: request.op,
        };
        self.rsm.submit_reply(command, std::convert::identity).await
    }
}

/// Why a replica did not start (one type for the three servers).
pub use rsm::StartError;
