//! The node driver: runs a [`RawNode`] on the runtime, with the 6.5840 API.
//!
//! ```text
//!   service ── start(cmd) ──────────┐            ┌── labrpc handler (peer requests)
//!   service ── snapshot(i, data) ─┐ │            │
//!                                 v v            v
//!                  +------------------------------------------+
//!                  | event loop task (owns RawNode + Storage) |<── tick every 10 ms
//!                  |  1. storage.save(ready)  (fsync)         |
//!                  |  2. requests -> one sender task per peer ────> Transport (labrpc,
//!                  |     replies  -> the waiting handler      |    or LocalNetwork);
//!                  |                                          |    replies come back as events
//!                  |  3. ApplyMsg -> bounded apply channel ──────> service
//!                  |  4. advance                              |
//!                  +------------------------------------------+
//! ```
//!
//! - Persist before send: a `Ready`'s messages leave only after its write is
//!   durable, replies to peers included.
//! - Requests and replies: a peer's request waits in its labrpc handler
//!   until the core's reply comes out of a `Ready` (the core answers every
//!   request exactly once, in order, so replies are matched per peer FIFO).
//!   Outgoing requests go to one sender task per peer, which starts the
//!   [`Transport`] calls in the core's order (a pipeline of AppendEntries
//!   arrives in order when the transport keeps order) and steps replies
//!   back in as they come.
//! - `snapshot()` never blocks (it leaves the request in a slot the loop
//!   picks up), so a service may call it from its apply loop while the
//!   event loop waits on a full apply channel.
//! - Bounds: event and apply channels, requests queued and in flight per
//!   peer (more are dropped: Raft retries), events handled per round.
//! - `kill()` aborts the loop and every RPC task; nothing outlives it.
//! - A storage failure is fatal: the node stops answering at once, the
//!   owner gets the typed reason ([`RaftNode::wait_fatal`]) and the
//!   [`FatalHook`] runs (a server binary ends the process): see `fatal.rs`.

mod event_loop;
mod fatal;
mod observer;
mod storage_stats;
mod transport;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use labrpc::runtime::watch;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::core::{
    Config, Membership, MembershipChange, MembershipError, Message, NodeId, RawNode, TransferError,
};
use crate::storage::{Storage, StorageError};

use event_loop::EventLoop;
pub use fatal::{
    EXIT_CODE_STORAGE_FAILED, EXIT_CODE_UNUSABLE_STATE, FatalError, FatalHook, FatalReason,
};
pub use observer::{Durable, Observation, Observer};
pub use storage_stats::{DurationHistogram, STORAGE_WRITE_BOUNDS_SECONDS, StorageStats};
pub use transport::{AddressBook, LabrpcTransport, LocalNetwork, ReplyFuture, Transport};

/// What the node delivers to its service, in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyMsg {
    /// A committed command.
    Command {
        index: u64,
        term: u64,
        /// The log entry's own bytes, shared (reference-counted), not a
        /// copy: handing a command over allocates nothing.
        command: Bytes,
    },
    /// Replace the service state with this snapshot (sent by the leader, or
    /// the node's own at restart); commands after `index` follow.
    Snapshot {
        index: u64,
        term: u64,
        /// Shared with the core's copy, as a command's bytes are.
        data: Bytes,
    },
}

/// Settings of a [`RaftNode`].
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The core's settings; `core.peers` (the bootstrap voters) must be
    /// ids below `peer_addrs.len()`.
    pub core: Config,
    /// Address of each node's labrpc server known at start, indexed by
    /// node id (the bootstrap peers' at least). A node added later by a
    /// membership change gets its address through
    /// [`RaftNode::set_peer_addr`] (the rsm replicates it). Used by
    /// [`RaftNode::make`]; with [`RaftNode::make_with_transport`] only its
    /// length counts.
    pub peer_addrs: Vec<SocketAddr>,
    pub apply_channel_capacity: usize,
    pub event_channel_capacity: usize,
    /// Requests to one peer awaiting their reply; more are dropped.
    pub max_rpcs_in_flight_per_peer: usize,
    /// Deadline of each labrpc request to a peer.
    pub rpc_timeout: Duration,
    /// Watches every step (tests' invariant checkers); None by default.
    pub observer: Option<Observer>,
    /// Called when the node stops for good (its storage failed); None by
    /// default. A server binary sets [`FatalHook::exit_process`].
    pub on_fatal: Option<FatalHook>,
}

impl NodeConfig {
    /// Defaults for node `id` of the group at `peer_addrs`.
    pub fn new(id: u64, peer_addrs: Vec<SocketAddr>, rng_seed: u64) -> NodeConfig {
        let peers = (0..peer_addrs.len() as u64).collect();
        NodeConfig {
            core: Config::new(id, peers, rng_seed),
            peer_addrs,
            apply_channel_capacity: 256,
            event_channel_capacity: 1024,
            max_rpcs_in_flight_per_peer: 32,
            rpc_timeout: Duration::from_millis(1000),
            observer: None,
            on_fatal: None,
        }
    }
}

/// Published by the loop after every round, read by `state()` and friends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub term: u64,
    pub is_leader: bool,
    /// The leader of the current term, if known.
    pub leader_id: Option<u64>,
    pub voted_for: Option<u64>,
    /// It leads, or heard from its leader within a minimum election
    /// timeout (`RawNode::leader_contact`).
    pub leader_contact: bool,
    pub commit_index: u64,
    /// Highest index handed to the service (its `ApplyMsg`s may still be in
    /// the channel).
    pub applied_index: u64,
    pub last_log_index: u64,
    pub last_log_term: u64,
    /// This node votes in its configuration (false for a learner, a node
    /// not yet added, or one removed).
    pub is_voter: bool,
    pub snapshot_index: u64,
    /// Stored hard state and log, in bytes (`Storage::raft_state_size_bytes`).
    pub raft_state_size_bytes: u64,
    /// Snapshots this node installed from a leader (InstallSnapshot) since
    /// it started.
    pub snapshots_received: u64,
    /// Peer messages the core refused since start (`RawNode::refused_messages`:
    /// forged or corrupt input, each logged with its reason).
    pub peer_messages_refused: u64,
    /// Bytes of the stored snapshot's data (`Storage::snapshot_size_bytes`).
    pub snapshot_size_bytes: u64,
    /// Bytes of the latest snapshot the node holds in memory to send to
    /// lagging followers (`RawNode::snapshot_held_bytes`): 0 once its
    /// storage holds it and reads pieces back
    /// (`Storage::reads_snapshot_pieces`).
    pub snapshot_held_bytes: u64,
    /// Times this node learned of a leader in a newer term since it
    /// started (itself included; the first leader it knew counts).
    pub leader_changes: u64,
    /// Reads answered under this node's leader lease since it started
    /// (`Config::lease_reads`), with no heartbeat round.
    pub lease_reads: u64,
    /// Durations and sizes of its storage writes since it started.
    pub storage: StorageStats,
}

enum Event {
    /// A message from a peer; `responder` waits for the reply if it is a
    /// request.
    Inbound {
        message: Message,
        responder: Option<oneshot::Sender<Option<Message>>>,
    },
    Propose {
        command: Vec<u8>,
        reply: oneshot::Sender<Option<(u64, u64)>>,
    },
    ReadIndex {
        reply: oneshot::Sender<Option<u64>>,
        /// A heartbeat round even under the lease
        /// ([`RawNode::read_index_with_round`]).
        round: bool,
    },
    ChangeMembership {
        change: MembershipChange,
        reply: oneshot::Sender<Result<(u64, u64), MembershipError>>,
    },
    TransferLeader {
        target: NodeId,
        reply: oneshot::Sender<Result<(), TransferError>>,
    },
}

struct Shared {
    /// This node's id.
    id: NodeId,
    status: Mutex<NodeStatus>,
    /// The latest snapshot the service asked for, not yet taken by the loop.
    snapshot_request: Mutex<Option<(u64, Bytes)>>,
    snapshot_requested: Notify,
    killed: AtomicBool,
    /// The leader's lease as the loop last published it
    /// (`EventLoop::publish_lease`): the read index and the instant the
    /// lease ends. Reads under it skip the loop
    /// ([`RaftNode::lease_read_index`]).
    lease: Mutex<Option<(u64, tokio::time::Instant)>>,
    /// Reads answered from `lease` since start (the core counts the ones
    /// it answers).
    lease_reads_direct: AtomicU64,
    /// Why the node stopped for good, once it has.
    fatal: watch::Sender<Option<FatalError>>,
    /// Run once when the node stops for good (`NodeConfig::on_fatal`).
    on_fatal: Option<FatalHook>,
    /// Every task of this node (the loop and RPC calls), aborted by `kill`.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The configuration in force (the newest in the log) and the index
    /// of its entry (0: the bootstrap configuration), published with the
    /// status.
    membership: Mutex<(u64, Membership)>,
    /// On a leader: each learner's acknowledged index (its `match_index`),
    /// published with the status; empty on any other node.
    learner_match: Mutex<BTreeMap<NodeId, u64>>,
    /// The peers' addresses ([`RaftNode::make`]'s transport); None over
    /// another transport.
    addresses: Option<AddressBook>,
}

impl Shared {
    fn track(&self, task: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().expect("tasks lock poisoned");
        // Bounded: finished tasks are pruned as new ones come.
        if tasks.len() >= 64 {
            tasks.retain(|t| !t.is_finished());
        }
        tasks.push(task);
    }

    /// The fatal path's common part (see `fatal.rs`): marks the node
    /// killed, records why, runs the hook, aborts every task. Only the
    /// first reason is kept and the hook runs once.
    fn stop_for_good(&self, fatal: FatalError) {
        self.killed.store(true, Ordering::SeqCst);
        let first = self.fatal.send_if_modified(|recorded| {
            if recorded.is_some() {
                return false;
            }
            *recorded = Some(fatal.clone());
            true
        });
        if first {
            tracing::error!(%fatal, "node stops for good");
            if let Some(hook) = &self.on_fatal {
                hook.call(&fatal);
            }
        }
        self.stop();
    }

    /// Marks the node killed and aborts every task it tracks (the caller's
    /// own task included, if tracked: it must return at once).
    fn stop(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks lock poisoned"));
        for task in tasks {
            task.abort();
        }
    }
}

/// A running Raft node. Cheap to clone; all clones drive the same node.
#[derive(Clone)]
pub struct RaftNode {
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
}

impl RaftNode {
    /// Loads `storage`, restarts the core from it and starts the event loop
    /// (6.5840's `Make`).
    /// Returns the node and the receiving end of its apply channel. Register
    /// [`RaftNode::add_handlers`] on the labrpc router the peers call.
    pub async fn make<S: Storage + 'static>(
        config: NodeConfig,
        storage: S,
        client: labrpc::Client,
    ) -> Result<(RaftNode, mpsc::Receiver<ApplyMsg>), StorageError> {
        let book = AddressBook::from_list(&config.peer_addrs);
        let transport = LabrpcTransport::with_book(client, book.clone(), config.rpc_timeout);
        RaftNode::launch(config, storage, Arc::new(transport), Some(book)).await
    }

    /// [`RaftNode::make`] over any [`Transport`] (only the length of
    /// `config.peer_addrs` is used: node ids are `0..peer_addrs.len()`).
    pub async fn make_with_transport<S: Storage + 'static>(
        config: NodeConfig,
        storage: S,
        transport: Arc<dyn Transport>,
    ) -> Result<(RaftNode, mpsc::Receiver<ApplyMsg>), StorageError> {
        RaftNode::launch(config, storage, transport, None).await
    }

    async fn launch<S: Storage + 'static>(
        config: NodeConfig,
        mut storage: S,
        transport: Arc<dyn Transport>,
        addresses: Option<AddressBook>,
    ) -> Result<(RaftNode, mpsc::Receiver<ApplyMsg>), StorageError> {
        // The bootstrap peers need addresses; this node's own id need not
        // be among them (a node joining a running group is not).
        let node_count = config.peer_addrs.len() as u64;
        assert!(
            config.core.peers.iter().all(|&p| p < node_count),
            "node {}: its bootstrap peers {:?} must be below the {node_count} addresses",
            config.core.id,
            config.core.peers,
        );
        let state = storage.load().await?;
        let loaded = config.observer.as_ref().map(|_| state.clone());
        let stored_snapshot = state.snapshot.as_ref().map(|s| s.meta.clone());
        let mut core = RawNode::restart(config.core.clone(), state);
        // The loaded snapshot is on disk: the core need not hold it too.
        if let Some(meta) = stored_snapshot.filter(|_| storage.reads_snapshot_pieces()) {
            core.snapshot_stored(&meta);
        }
        let (events_sender, events_receiver) = mpsc::channel(config.event_channel_capacity);
        let (apply_sender, apply_receiver) = mpsc::channel(config.apply_channel_capacity);
        let shared = Arc::new(Shared {
            id: config.core.id,
            status: Mutex::new(NodeStatus::default()),
            snapshot_request: Mutex::new(None),
            snapshot_requested: Notify::new(),
            killed: AtomicBool::new(false),
            lease: Mutex::new(None),
            lease_reads_direct: AtomicU64::new(0),
            fatal: watch::channel(None).0,
            on_fatal: config.on_fatal.clone(),
            tasks: Mutex::new(Vec::new()),
            membership: Mutex::new((0, core.membership().clone())),
            learner_match: Mutex::new(BTreeMap::new()),
            addresses,
        });
        let mut event_loop = EventLoop::new(
            config,
            core,
            storage,
            transport,
            Arc::clone(&shared),
            events_sender.clone(),
            events_receiver,
            apply_sender,
        );
        if let Some(loaded) = loaded {
            event_loop.observe(Durable::Loaded(loaded));
        }
        event_loop.publish_status();
        let task = tokio::spawn(event_loop.run());
        shared.track(task);
        Ok((
            RaftNode {
                shared,
                events: events_sender,
            },
            apply_receiver,
        ))
    }

    /// Registers the handler peers call (`raft.Message`) on `router`.
    pub fn add_handlers(&self, router: &mut labrpc::Router) {
        let node = self.clone();
        router.add::<Message, _, _>(move |message: Message| {
            let node = node.clone();
            async move { node.handle_message(message).await }
        });
    }

    /// Hands a peer's message to the node and waits for the reply, which
    /// leaves only once what it promises is persisted. None if the node
    /// refused the message, sent no reply, or is killed.
    pub async fn handle_message(&self, message: Message) -> Option<Message> {
        if self.is_killed() {
            return None;
        }
        let (responder, reply) = oneshot::channel();
        let event = Event::Inbound {
            message,
            responder: Some(responder),
        };
        self.events.send(event).await.ok()?;
        reply.await.ok().flatten()
    }

    /// Proposes `command`. Returns where it will be if it commits, or None
    /// if this node is not the leader (or is killed).
    pub async fn start(&self, command: Vec<u8>) -> Option<(u64, u64)> {
        if self.is_killed() {
            return None;
        }
        let (reply, answer) = oneshot::channel();
        if !event_loop::send_or_wait(&self.events, Event::Propose { command, reply }).await {
            return None;
        }
        answer.await.ok().flatten()
    }

    /// A linearizable read point (ReadIndex): once a majority confirmed this
    /// node leads, the index the service must have applied before serving a
    /// read. None if this node is not (or stops being) the leader, or is not
    /// ready yet (no entry of its term committed): retry, possibly elsewhere.
    /// Under this node's leader lease, the read index is answered at once
    /// ([`RaftNode::lease_read_index`]).
    pub async fn read_index(&self) -> Option<u64> {
        if self.is_killed() {
            return None;
        }
        if let Some(index) = self.lease_read_index() {
            return Some(index);
        }
        let (reply, answer) = oneshot::channel();
        let read = Event::ReadIndex {
            reply,
            round: false,
        };
        self.events.send(read).await.ok()?;
        answer.await.ok().flatten()
    }

    /// A read index under this node's leader lease, from what the loop
    /// last published, without a turn of the loop (two task hand-offs
    /// less per read, and no wait behind a round's disk write); None if
    /// the lease does not hold now (then [`RaftNode::read_index`] asks
    /// the core, which may confirm by a heartbeat round).
    ///
    /// As linearizable as the core's lease read: the loop publishes before
    /// anything of a round leaves it (messages, read answers, commands to
    /// apply), so no other node has learned anything from this one since
    /// (a vote, a leadership transfer, a configuration change), no command
    /// past the published commit index is applied, and the lease's end is
    /// compared with the runtime clock now.
    pub fn lease_read_index(&self) -> Option<u64> {
        if self.is_killed() {
            return None;
        }
        let (index, until) = (*self.shared.lease.lock().expect("lease lock poisoned"))?;
        if labrpc::runtime::now() >= until {
            return None;
        }
        self.shared
            .lease_reads_direct
            .fetch_add(1, Ordering::Relaxed);
        Some(index)
    }

    /// [`RaftNode::read_index`] confirmed by a heartbeat round even while
    /// the lease holds, so that the followers learn the commit index in
    /// the same round ([`RawNode::read_index_with_round`]): for a read
    /// index a follower asked for.
    pub async fn read_index_with_round(&self) -> Option<u64> {
        if self.is_killed() {
            return None;
        }
        let (reply, answer) = oneshot::channel();
        let read = Event::ReadIndex { reply, round: true };
        self.events.send(read).await.ok()?;
        answer.await.ok().flatten()
    }

    /// Proposes a single-server configuration change
    /// ([`RawNode::propose_membership_change`]: the 2015 rules, one change
    /// at a time). `Ok` says where the configuration entry will be if it
    /// commits; it is in force on this leader at once. A killed node
    /// answers `NotLeader`.
    pub async fn propose_membership_change(
        &self,
        change: MembershipChange,
    ) -> Result<(u64, u64), MembershipError> {
        let not_leader = || MembershipError::NotLeader {
            term: self.status().term,
            leader_hint: None,
        };
        if self.is_killed() {
            return Err(not_leader());
        }
        let (reply, answer) = oneshot::channel();
        let event = Event::ChangeMembership { change, reply };
        if self.events.send(event).await.is_err() {
            return Err(not_leader());
        }
        answer.await.unwrap_or_else(|_| Err(not_leader()))
    }

    /// Starts handing leadership to `target` ([`RawNode::transfer_leader`]):
    /// `Ok` once the transfer is under way, not when it is done (watch
    /// [`RaftNode::state`]). Meanwhile `start` answers None. A killed node
    /// answers `NotLeader`.
    pub async fn transfer_leader(&self, target: NodeId) -> Result<(), TransferError> {
        let not_leader = || TransferError::NotLeader {
            term: self.status().term,
            leader_hint: None,
        };
        if self.is_killed() {
            return Err(not_leader());
        }
        let (reply, answer) = oneshot::channel();
        let event = Event::TransferLeader { target, reply };
        if self.events.send(event).await.is_err() {
            return Err(not_leader());
        }
        answer.await.unwrap_or_else(|_| Err(not_leader()))
    }

    /// The configuration in force on this node (the newest in its log,
    /// committed or not) and the index of its entry (0 before any change:
    /// the bootstrap configuration).
    pub fn membership(&self) -> (u64, Membership) {
        self.shared
            .membership
            .lock()
            .expect("membership lock poisoned")
            .clone()
    }

    /// This node's Raft id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// On the leader, the highest log index learner `id` has acknowledged
    /// (0 until it answers); None if this node does not lead or `id` is not
    /// a learner of its configuration. Lets an operator's promotion wait
    /// until the learner really holds the log, not only until it lags by
    /// less than `Config::max_learner_lag_entries` (a learner that never
    /// answered lags by the whole log, which may be short).
    pub fn learner_match_index(&self, id: NodeId) -> Option<u64> {
        self.shared
            .learner_match
            .lock()
            .expect("learner match lock poisoned")
            .get(&id)
            .copied()
    }

    /// Records node `id`'s address for this node's requests to it (over
    /// [`RaftNode::make`]'s transport; false, and nothing done, over
    /// another transport or when the book is full).
    pub fn set_peer_addr(&self, id: NodeId, addr: SocketAddr) -> bool {
        self.shared
            .addresses
            .as_ref()
            .is_some_and(|book| book.set(id, addr))
    }

    /// The address this node uses for node `id`, if it knows one.
    pub fn peer_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.shared.addresses.as_ref()?.get(id)
    }

    /// `(current term, is this node the leader)`.
    pub fn state(&self) -> (u64, bool) {
        let status = self.status();
        (status.term, status.is_leader)
    }

    pub fn status(&self) -> NodeStatus {
        let mut status = *self.shared.status.lock().expect("status lock poisoned");
        status.lease_reads += self.shared.lease_reads_direct.load(Ordering::Relaxed);
        status
    }

    /// The service has saved its state through `index`: compact the log.
    /// Never blocks; a later request replaces one not yet taken. `data` is
    /// kept as given (a `Vec` or `Bytes`, not copied).
    pub fn snapshot(&self, index: u64, data: impl Into<Bytes>) {
        *self
            .shared
            .snapshot_request
            .lock()
            .expect("snapshot lock poisoned") = Some((index, data.into()));
        self.shared.snapshot_requested.notify_one();
    }

    /// Stops the node: aborts its loop and every RPC task. Idempotent.
    pub fn kill(&self) {
        self.shared.stop();
    }

    /// Stops the node for good because the service cannot go on
    /// (`reason`; see `fatal.rs`): it answers nobody from now on, every
    /// waiting caller gets `None`, [`RaftNode::wait_fatal`] returns and the
    /// `on_fatal` hook runs (a server binary ends the process). Only the
    /// first fatal reason is kept.
    pub fn stop_fatal(&self, reason: FatalReason) {
        let fatal = FatalError {
            node: self.shared.id,
            reason,
        };
        self.shared.stop_for_good(fatal);
    }

    /// Why the node stopped for good, if it has (see `fatal.rs`).
    pub fn fatal_error(&self) -> Option<FatalError> {
        self.shared.fatal.borrow().clone()
    }

    /// Waits until the node stops for good and returns why. Never returns
    /// for a node that keeps running (or is only killed).
    pub async fn wait_fatal(&self) -> FatalError {
        let mut fatal = self.shared.fatal.subscribe();
        loop {
            if let Some(error) = fatal.borrow_and_update().clone() {
                return error;
            }
            if fatal.changed().await.is_err() {
                // The sender lives in `shared`, which `self` holds.
                std::future::pending::<()>().await;
            }
        }
    }

    pub fn is_killed(&self) -> bool {
        self.shared.killed.load(Ordering::SeqCst)
    }
}
