//! A kvraft replica: a labrpc handler that proposes requests to Raft, and an
//! apply task that feeds committed entries to the [`StateMachine`].
//!
//! ```text
//!  KvRequest ─► handle() ─ sizes ok? leader? ─► raft.start(Command{.., now_ms})
//!                  │                                   │
//!                  └── waits on waiters[index] ◄──┐    ▼ (commit)
//!                                                 │  apply channel
//!                                 apply task: machine.apply(command)
//!                                             waiters[index] <- answer
//!                                             raft state >= max? snapshot
//! ```
//!
//! A waiter is answered only if the entry applied at its index is its own
//! request; anything else there means leadership moved and the clerk
//! retries (with the same seq, so a write applies once).

mod state_machine;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::node::{ApplyMsg, NodeConfig, RaftNode};
use raft::storage::{Storage, StorageError};
use tokio::sync::{mpsc, oneshot};

use crate::rpc::{KvRequest, Outcome, ServerError};
pub use state_machine::{Command, MachineConfig, StateMachine};

/// Settings of one replica.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// This replica's index in `peer_addrs`.
    pub me: usize,
    /// The labrpc address of every replica (Raft and kvraft share a server).
    pub peer_addrs: Vec<SocketAddr>,
    pub machine: MachineConfig,
    /// Snapshot once the stored Raft state reaches this many bytes (None:
    /// never).
    pub max_raft_state: Option<u64>,
    /// How long a request waits to see its entry applied before answering
    /// `Timeout` (the clerk then retries).
    pub apply_wait: Duration,
    /// Seed of Raft's election-timeout RNG.
    pub raft_seed: u64,
}

impl ServerConfig {
    pub fn new(me: usize, peer_addrs: Vec<SocketAddr>, raft_seed: u64) -> ServerConfig {
        ServerConfig {
            me,
            peer_addrs,
            machine: MachineConfig::default(),
            max_raft_state: None,
            apply_wait: Duration::from_millis(800),
            raft_seed,
        }
    }
}

type Reply = Result<Outcome, ServerError>;

/// A handler waiting for the entry at some index.
struct Waiter {
    client_id: u64,
    seq: u64,
    answer: oneshot::Sender<Reply>,
}

struct Inner {
    machine: StateMachine,
    last_applied: u64,
    /// Bytes of the latest snapshot this replica asked Raft to keep.
    last_snapshot_bytes: u64,
    last_snapshot_index: u64,
    waiters: BTreeMap<u64, Waiter>,
    /// The machine's logical time at the last apply and the local instant
    /// then: a leader's stamps advance from there at the local clock's rate,
    /// so they need no clock base shared between machines.
    time_anchor: (u64, tokio::time::Instant),
    /// The last stamp this replica issued (stamps never go backwards).
    last_stamp_ms: u64,
}

impl Inner {
    fn stamp_now_ms(&mut self) -> u64 {
        let (anchor_ms, anchor_instant) = self.time_anchor;
        let elapsed_ms = u64::try_from(
            labrpc::clock::now()
                .duration_since(anchor_instant)
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        let stamp = anchor_ms.saturating_add(elapsed_ms).max(self.last_stamp_ms);
        self.last_stamp_ms = stamp;
        stamp
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
    raft: RaftNode,
    inner: Arc<Mutex<Inner>>,
    config: Arc<ServerConfig>,
}

impl KvServer {
    /// Starts Raft on `storage` (restoring its snapshot, which Raft hands
    /// back on the apply channel), the apply task, and one labrpc server on
    /// `peer_addrs[me]` carrying both Raft's and kvraft's methods.
    pub async fn start<S: Storage + 'static>(
        config: ServerConfig,
        storage: S,
    ) -> Result<KvServer, StartError> {
        let mut node_config = NodeConfig::new(
            config.me as u64,
            config.peer_addrs.clone(),
            config.raft_seed,
        );
        // A leader commits an entry of its term at once, so reads and
        // ReadIndex need not wait for the next client write.
        node_config.core.noop_on_election = true;
        let (raft, apply) = RaftNode::make(node_config, storage, labrpc::Client::default()).await?;
        let server = KvServer {
            raft,
            inner: Arc::new(Mutex::new(Inner {
                machine: StateMachine::new(config.machine),
                last_applied: 0,
                last_snapshot_bytes: 0,
                last_snapshot_index: 0,
                waiters: BTreeMap::new(),
                time_anchor: (0, labrpc::clock::now()),
                last_stamp_ms: 0,
            })),
            config: Arc::new(config),
        };
        tokio::spawn(server.clone().run_apply_loop(apply));
        let mut router = labrpc::Router::new();
        server.raft.add_handlers(&mut router);
        let handler_server = server.clone();
        router.add::<KvRequest, _, _>(move |request: KvRequest| {
            let server = handler_server.clone();
            async move { server.handle(request).await }
        });
        let addr = server.config.peer_addrs[server.config.me];
        labrpc::Server::start(addr, router, labrpc::ServerConfig::default())
            .await
            .map_err(|error| StartError::Listen {
                addr,
                detail: error.to_string(),
            })?;
        Ok(server)
    }

    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    pub fn status(&self) -> ServerStatus {
        let raft_state_size_bytes = self.raft.status().raft_state_size_bytes;
        let inner = self.lock();
        ServerStatus {
            last_applied: inner.last_applied,
            logical_now_ms: inner.machine.now_ms(),
            sessions: inner.machine.session_count(),
            last_snapshot_bytes: inner.last_snapshot_bytes,
            raft_state_size_bytes,
        }
    }

    /// Stops Raft; the handler answers `WrongLeader` from then on.
    pub fn kill(&self) {
        self.raft.kill();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("kvraft server lock poisoned")
    }

    fn wrong_leader(&self) -> ServerError {
        ServerError::WrongLeader {
            leader_hint: self.raft.status().leader_id,
        }
    }

    /// Serves one clerk request (the labrpc handler).
    pub async fn handle(&self, request: KvRequest) -> Reply {
        let now_ms = {
            let mut inner = self.lock();
            // Bad input changes nothing and costs no log entry.
            inner.machine.check_sizes(&request.op)?;
            if !request.op.is_read()
                && let Some(reply) = inner.machine.recorded_reply(request.client_id, request.seq)
            {
                // A retry of a committed write: its answer is known.
                return reply;
            }
            if !self.raft.state().1 {
                return Err(self.wrong_leader());
            }
            inner.stamp_now_ms()
        };
        let command = Command {
            client_id: request.client_id,
            seq: request.seq,
            op: request.op,
            now_ms,
        };
        let bytes = bincode::serde::encode_to_vec(&command, bincode::config::standard())
            .unwrap_or_else(|error| panic!("kvraft command failed to encode: {error}"));
        let Some((index, _term)) = self.raft.start(bytes).await else {
            return Err(self.wrong_leader());
        };
        let (answer, answered) = oneshot::channel();
        {
            let mut inner = self.lock();
            if inner.last_applied >= index {
                // Applied before we could wait for it (the apply task is a
                // separate task): the table knows a write's answer.
                return inner
                    .machine
                    .recorded_reply(command.client_id, command.seq)
                    .unwrap_or(Err(ServerError::Timeout));
            }
            // An older waiter at this index belongs to a proposal that lost
            // its place; dropping its sender makes it retry.
            inner.waiters.insert(
                index,
                Waiter {
                    client_id: command.client_id,
                    seq: command.seq,
                    answer,
                },
            );
        }
        match tokio::time::timeout(self.config.apply_wait, answered).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(self.wrong_leader()),
            Err(_) => {
                let mut inner = self.lock();
                if inner
                    .waiters
                    .get(&index)
                    .is_some_and(|w| w.client_id == command.client_id && w.seq == command.seq)
                {
                    inner.waiters.remove(&index);
                }
                Err(ServerError::Timeout)
            }
        }
    }

    async fn run_apply_loop(self, mut apply: mpsc::Receiver<ApplyMsg>) {
        while let Some(message) = apply.recv().await {
            match message {
                ApplyMsg::Command { index, command, .. } => self.apply_command(index, &command),
                ApplyMsg::Snapshot { index, data, .. } => self.install_snapshot(index, &data),
            }
        }
    }

    fn apply_command(&self, index: u64, bytes: &[u8]) {
        let me = self.config.me;
        let mut inner = self.lock();
        if index <= inner.last_applied {
            return;
        }
        let (command, read_bytes): (Command, usize) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard()).unwrap_or_else(
                |error| panic!("kvraft {me}: committed entry {index} does not decode: {error}"),
            );
        assert_eq!(
            read_bytes,
            bytes.len(),
            "kvraft {me}: trailing bytes in entry {index}"
        );
        let reply = inner.machine.apply(&command);
        inner.last_applied = index;
        inner.time_anchor = (inner.machine.now_ms(), labrpc::clock::now());
        // Answer waiters up to here: the one at `index` gets the reply if
        // the entry is its own; earlier ones were overtaken.
        while let Some(entry) = inner.waiters.first_entry() {
            if *entry.key() > index {
                break;
            }
            let waiter_index = *entry.key();
            let waiter = entry.remove();
            if waiter_index == index
                && waiter.client_id == command.client_id
                && waiter.seq == command.seq
            {
                let _ = waiter.answer.send(reply.clone());
            }
            // Otherwise the sender drops: the handler answers WrongLeader.
        }
        self.maybe_snapshot(&mut inner, index);
    }

    fn maybe_snapshot(&self, inner: &mut Inner, index: u64) {
        let Some(max_raft_state) = self.config.max_raft_state else {
            return;
        };
        if index <= inner.last_snapshot_index
            || self.raft.status().raft_state_size_bytes < max_raft_state
        {
            return;
        }
        let data = inner.machine.snapshot();
        inner.last_snapshot_bytes = data.len() as u64;
        inner.last_snapshot_index = index;
        self.raft.snapshot(index, data);
    }

    fn install_snapshot(&self, index: u64, data: &[u8]) {
        let me = self.config.me;
        let mut inner = self.lock();
        if index <= inner.last_applied {
            return;
        }
        // A snapshot that does not decode is corrupt state: refuse to serve
        // rather than serve something else.
        let machine = StateMachine::restore(data).unwrap_or_else(|error| {
            panic!("kvraft {me}: snapshot at index {index} is unusable: {error}")
        });
        inner.machine = machine;
        inner.last_applied = index;
        inner.last_snapshot_index = inner.last_snapshot_index.max(index);
        inner.last_snapshot_bytes = data.len() as u64;
        inner.time_anchor = (inner.machine.now_ms(), labrpc::clock::now());
        // Waiters covered by the snapshot cannot learn their answer here;
        // dropping them makes their clerks retry (a write then finds its
        // recorded answer).
        while let Some(entry) = inner.waiters.first_entry() {
            if *entry.key() > index {
                break;
            }
            entry.remove();
        }
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
