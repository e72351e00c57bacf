//! [`Rsm`]: one running replica of a replicated state machine (the server
//! loop: proposals and their waiters, log time, ReadIndex reads,
//! snapshots). See the crate docs for the flow and the contracts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use labrpc::runtime::watch;
use raft::node::{AddressBook, ApplyMsg, FatalReason, NodeConfig, NodeStatus, Observer, RaftNode};
use raft::storage::{Storage, StorageError};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tracing::Instrument;

use crate::clock::LeaderClock;
use crate::early_ack::{EarlyAcks, Placed, Speculation, SpeculationStats};
use crate::follower_read::{AskReadIndex, ReadGrant};
use crate::format::{
    EntryBody, Envelope, ProposalId, decode_entry, decode_snapshot, encode_entry,
    encode_snapshot_of, payload_check, unusable_detail,
};
use crate::machine::{ApplyContext, ReplicatedMachine};
use crate::read_batch::ReadBatcher;
use crate::waiters::Waiters;

/// Pause before asking again for a read index a leader could not give yet
/// (one Raft tick).
const READ_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Settings of one replica of a replicated state machine.
#[derive(Clone, Debug)]
pub struct RsmConfig {
    /// This replica's index in `peer_addrs` (its Raft id).
    pub id: usize,
    /// The labrpc address of every replica's server: where the others
    /// reach it.
    pub peer_addrs: Vec<SocketAddr>,
    /// Where this replica's server listens when that is not the address
    /// the others reach it at (`peer_addrs[id]`): behind an address that
    /// is not a local interface (a Kubernetes Service's ClusterIP, a
    /// NAT), it binds e.g. `0.0.0.0:<port>`. None: `peer_addrs[id]`.
    pub listen_addr: Option<SocketAddr>,
    /// Snapshot once the stored Raft state reaches this many bytes (None:
    /// never, for tests of the log itself; the default is
    /// [`DEFAULT_MAX_RAFT_STATE_BYTES`], so that the log, and a restart's
    /// time and memory, stay bounded).
    pub max_raft_state: Option<u64>,
    /// With `max_raft_state`: also let the log grow to this percent of the
    /// last snapshot's size before the next snapshot (0, the default: the
    /// bound alone decides). A snapshot encodes and writes the whole
    /// machine, so under a fixed bound its cost per written byte grows
    /// with the machine (a 640 MiB machine and an 8 MiB bound: 80 bytes
    /// copied, encoded and written per byte logged, on every replica).
    /// Proportional growth bounds that cost at `100 / percent` bytes per
    /// logged byte, as Redis's `auto-aof-rewrite-percentage` does for its
    /// rewrites; the price is a log (kept in memory and on disk until the
    /// snapshot) of up to that percent of the machine's encoded size, and
    /// a restart replays it.
    pub snapshot_log_percent: u64,
    /// How long `submit` waits to see its entry applied, and `read` waits
    /// for the read index and the apply, before answering `Timeout`.
    pub apply_wait: Duration,
    /// Seed of Raft's election-timeout RNG.
    pub raft_seed: u64,
    /// Proposals waiting for their entry at once, and reads waiting for a
    /// read index at once; more answer `Busy`.
    pub max_pending_proposals: usize,
    /// Watches every Raft step (tests' invariant checkers).
    pub raft_observer: Option<Observer>,
    /// Largest message between replicas (labrpc's limit by default). Raft's
    /// sizes are derived from it ([`fit_raft_to_message_limit`]); the
    /// service's labrpc server should use the same limit.
    pub max_message_bytes: usize,
    /// What happens when Raft's storage fails (the replica stops either
    /// way): a server binary sets [`raft::node::FatalHook::exit_process`]
    /// so that the process ends and a supervisor restarts it.
    pub on_fatal: Option<raft::node::FatalHook>,
    /// This replica joins a running group (a new id, an empty disk): it
    /// is a voter of no configuration until the group's leader adds it
    /// (as a learner, then promoted), so it never campaigns on its own,
    /// and learns the group's configuration from the leader's log or
    /// snapshot. Its Raft bootstrap configuration is every other id of
    /// `peer_addrs` (those addresses are where it is reachable from at
    /// first; the group's leader finds it at the address the membership
    /// change recorded). False: `peer_addrs` is the group as it was
    /// first started (the bootstrap voters).
    pub join: bool,
    /// This replica's Raft id when it is not its index `id` (None: it is).
    /// Only with `join`: a service whose bootstrap members' ids are their
    /// positions gives a joining replica an id that can never be a
    /// position (distcache: 2^32 + its node id), so that no two nodes ever
    /// share an id whatever the tables list later. `peer_addrs[id]` is
    /// still where this replica serves.
    pub raft_id: Option<u64>,
    /// Reads under a leader lease (`raft::core::Config::lease_reads`): a
    /// read on a leader that a majority confirmed less than
    /// `Config::read_lease_ms` ago (about 237 ms with the default timeouts
    /// and a 10% clock-drift bound) takes no heartbeat round. Linearizable
    /// while the replicas' clocks drift apart by less than
    /// `lease_clock_drift_percent` in rate. On by default.
    pub lease_reads: bool,
    /// The clock-drift bound the lease assumes, in percent (default 10).
    pub lease_clock_drift_percent: u64,
    /// Names this replica's group to the other replicas' follower reads
    /// ([`crate::AskReadIndex`]): a leader grants a read index only to an
    /// ask with its own tag, so a stale address that now reaches another
    /// group's replica is refused. shardkv uses the group id; 0 by default.
    pub group_tag: u64,
    /// Who this replica is on its calls and whom its server admits
    /// (labrpc's peer policy; the default admits anyone, anonymously).
    pub peer_security: labrpc::PeerSecurity,
    /// The node of each Raft id (`raft_nodes[id]`), when `peer_security`
    /// authenticates callers: a Raft message is served only if the node
    /// that sent it is the one its `from` names, so a node outside the
    /// group cannot speak Raft to it, nor one replica as another. Refused
    /// messages are counted as [`labrpc::Refusal::SenderMismatch`]. None:
    /// not checked (the labs, simulation).
    pub raft_nodes: Option<Vec<u64>>,
    /// With `raft_nodes`: a Raft id at or above this base names node
    /// `id - base` (distcache gives a replica that joined a running group
    /// the id 2^32 + its node id, which no table lists), so a joined
    /// replica's messages are served when its node sent them. None: ids
    /// outside `raft_nodes` are refused.
    pub joined_raft_id_base: Option<u64>,
    /// Asynchronous replication: the leader answers a write whose output
    /// the machine can tell ([`ReplicatedMachine::early_output`]) once it
    /// is in the leader's log, before a majority has it; such a write is
    /// lost if the leader fails first (see [`EarlyAcks`]). None (the
    /// default): every write is answered after its commit.
    pub early_acks: Option<EarlyAcks>,
}

/// The default snapshot trigger of every replicated service: snapshot once
/// the stored Raft state (hard state and log) reaches 8 MiB, the product's
/// default too (`max_raft_state_bytes` in the node configuration).
pub const DEFAULT_MAX_RAFT_STATE_BYTES: u64 = 8 << 20;

/// The Raft state size at which a replica snapshots: `max_raft_state`, or
/// `percent` of the last snapshot's size if that is more.
fn snapshot_trigger_bytes(max_raft_state: u64, last_snapshot_bytes: u64, percent: u64) -> u64 {
    max_raft_state.max(last_snapshot_bytes.saturating_mul(percent) / 100)
}

/// Sets Raft's size bounds so that every message it sends fits in
/// `max_message_bytes`: one entry leaves a sixteenth of the limit (at least
/// 4 KiB) for the envelope (15 MiB of 16 MiB, Raft's default); a batch of
/// entries is at most 1 MiB and at most one entry's bound; a snapshot piece
/// is a quarter of the limit, at most 4 MiB.
///
/// # Panics
/// If `max_message_bytes` is under 16 KiB (nothing useful fits).
pub fn fit_raft_to_message_limit(core: &mut raft::core::Config, max_message_bytes: usize) {
    assert!(
        max_message_bytes >= 16 << 10,
        "max_message_bytes {max_message_bytes} is under 16 KiB"
    );
    let envelope_bytes = (max_message_bytes / 16).max(4 << 10);
    core.max_entry_bytes = max_message_bytes - envelope_bytes;
    core.max_bytes_per_message = core.max_entry_bytes.min(1 << 20);
    core.snapshot_chunk_bytes = (max_message_bytes / 4).min(4 << 20);
}

impl RsmConfig {
    /// This replica's Raft id: `raft_id` if set, else its index `id`.
    pub fn raft_id(&self) -> u64 {
        self.raft_id.unwrap_or(self.id as u64)
    }

    pub fn new(id: usize, peer_addrs: Vec<SocketAddr>, raft_seed: u64) -> RsmConfig {
        RsmConfig {
            id,
            peer_addrs,
            listen_addr: None,
            max_raft_state: Some(DEFAULT_MAX_RAFT_STATE_BYTES),
            snapshot_log_percent: 0,
            apply_wait: Duration::from_millis(800),
            raft_seed,
            max_pending_proposals: 4096,
            raft_observer: None,
            max_message_bytes: labrpc::DEFAULT_MAX_MESSAGE_BYTES,
            on_fatal: None,
            join: false,
            raft_id: None,
            lease_reads: true,
            lease_clock_drift_percent: 10,
            group_tag: 0,
            peer_security: labrpc::PeerSecurity::default(),
            raft_nodes: None,
            joined_raft_id_base: None,
            early_acks: None,
        }
    }
}

/// Why a submitted command or a read has no output. Serializable, so a
/// service may answer it on the wire as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SubmitError {
    /// This replica does not lead (or lost its lead before the entry
    /// applied); `leader_hint` is the Raft id it believes leads.
    #[error("not the leader (hint: {leader_hint:?})")]
    WrongLeader { leader_hint: Option<u64> },
    /// Not seen applied (or the read not confirmed) within `apply_wait`.
    /// A submitted command may still apply.
    #[error("not applied in time")]
    Timeout,
    /// Too many proposals or reads pending here, or too many entries
    /// uncommitted in Raft; nothing was proposed. `pending` counts this
    /// replica's waiting proposals.
    #[error("{pending} proposals pending: busy")]
    Busy { pending: usize },
}

impl From<SubmitError> for api::Error {
    /// The rsm's refusals as a key/value client knows them.
    fn from(error: SubmitError) -> api::Error {
        match error {
            SubmitError::WrongLeader { leader_hint } => api::Error::WrongLeader { leader_hint },
            SubmitError::Timeout => api::Error::NotApplied,
            SubmitError::Busy { pending } => api::Error::Busy {
                pending: pending as u64,
            },
        }
    }
}

/// Counters a test or an operator reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RsmStatus {
    pub last_applied: u64,
    /// The log time at `last_applied`.
    pub log_time_ms: u64,
    /// The latest snapshot taken (its encoding may still be running) or
    /// installed.
    pub last_snapshot_index: u64,
    /// Size of the latest snapshot taken (once encoded) or installed.
    pub last_snapshot_bytes: u64,
    pub pending_proposals: usize,
    /// Asynchronous replication's answers (all 0 when it is off).
    pub early_acks: SpeculationStats,
    pub raft: NodeStatus,
}

pub(crate) struct Inner<M: ReplicatedMachine> {
    pub(crate) machine: M,
    pub(crate) last_applied: u64,
    pub(crate) log_time_ms: u64,
    last_snapshot_index: u64,
    last_snapshot_bytes: u64,
    /// A snapshot is being encoded (from a copy, off the lock): at most
    /// one at a time, so at most one copy of the machine.
    snapshot_encoding: bool,
    pub(crate) clock: LeaderClock,
    waiters: Waiters<M::Output>,
    pub(crate) next_proposal: u64,
    /// Addresses recorded by `PeerAddress` entries, as of `last_applied`
    /// (replicated state: in the snapshot too). At most
    /// `AddressBook::MAX_ADDRESSES`.
    pub(crate) peer_addrs: BTreeMap<u64, SocketAddr>,
    /// With asynchronous replication: this leader's commands not applied
    /// yet, and the answers it gave early.
    speculation: Speculation<M>,
}

pub(crate) struct Shared<M: ReplicatedMachine> {
    pub(crate) config: RsmConfig,
    /// Random per start: proposals of an earlier run of this replica that
    /// are still in the log are never mistaken for this run's.
    pub(crate) incarnation: u64,
    inner: Mutex<Inner<M>>,
    /// The index this replica has applied through, entries without a
    /// command (a new leader's no-op) included: what a read waits on.
    pub(crate) applied: watch::Sender<u64>,
    /// A read asks the apply task to publish `applied` (see
    /// `run_apply_loop`).
    pub(crate) nudge: Notify,
    /// Concurrent reads share a read index.
    pub(crate) reads: ReadBatcher<u64>,
    /// On a leader: concurrent followers' asks share one heartbeat round.
    pub(crate) granted_reads: ReadBatcher<u64>,
    /// Concurrent follower reads share one ask of the leader.
    pub(crate) follower_asks: ReadBatcher<Result<ReadGrant, SubmitError>>,
    /// Calls to the other replicas of the group (a follower's asks).
    pub(crate) peers: labrpc::Client,
    /// Reads answered here while following, since start.
    pub(crate) follower_reads: std::sync::atomic::AtomicU64,
    /// The newest grant this replica got from a leader, and when it asked
    /// for it: what a bounded-staleness read reuses.
    pub(crate) last_grant: Arc<Mutex<Option<crate::follower_read::HeldGrant>>>,
    /// Follower reads answered under a staleness bound from an earlier
    /// grant, without an ask of their own, since start.
    pub(crate) reused_grants: std::sync::atomic::AtomicU64,
    /// Told of every applied command and installed snapshot, under the
    /// lock (see [`AppliedHook`]).
    hook: Option<AppliedHook<M>>,
}

/// Where Raft placed a proposal: its log index and the term it was
/// proposed in ([`Rsm::submit_placed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPlace {
    pub index: u64,
    pub term: u64,
}

/// What a replica applied, as told to its [`AppliedHook`].
pub enum Applied<'a, M: ReplicatedMachine> {
    /// `command` applied at `index`, answering `output`; `machine` is the
    /// state after it.
    Command {
        index: u64,
        command: &'a M::Command,
        output: &'a M::Output,
        machine: &'a M,
    },
    /// A snapshot through `index` replaced the machine (now `machine`):
    /// whatever came before it was not told command by command.
    Restored { index: u64, machine: &'a M },
}

/// Called for every command a replica applies and every snapshot it
/// installs, in log order, under the replica's lock (so a read sees the
/// hook's effects of exactly the entries it sees): keep it short and never
/// call back into the replica. For side effects outside the replicated
/// state, such as a feed of changed keys; what it does must not change
/// what the machine answers.
pub type AppliedHook<M> = Arc<dyn Fn(Applied<'_, M>) + Send + Sync>;

/// Why a replica did not start (kvraft's, the controller's and shardkv's
/// alike).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("raft storage: {0}")]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("bad configuration: {detail}")]
    BadConfig { detail: String },
}

/// Why [`Rsm::serve`] could not serve (the address is taken, say).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot serve on {addr}: {detail}")]
pub struct ListenError {
    pub addr: SocketAddr,
    pub detail: String,
}

/// One running replica of a replicated state machine. Cheap to clone.
pub struct Rsm<M: ReplicatedMachine> {
    pub(crate) raft: RaftNode,
    pub(crate) shared: Arc<Shared<M>>,
}

impl<M: ReplicatedMachine> Clone for Rsm<M> {
    fn clone(&self) -> Rsm<M> {
        Rsm {
            raft: self.raft.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Removes a waiter when its caller stops waiting (answered or not).
struct WaiterGuard<'a, M: ReplicatedMachine> {
    shared: &'a Shared<M>,
    proposal: u64,
}

impl<M: ReplicatedMachine> Drop for WaiterGuard<'_, M> {
    fn drop(&mut self) {
        self.shared.lock().waiters.remove(self.proposal);
    }
}

impl<M: ReplicatedMachine> Shared<M> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner<M>> {
        self.inner
            .lock()
            .unwrap_or_else(|_| panic!("rsm {}: state lock poisoned", self.config.id))
    }
}

impl<M: ReplicatedMachine> Rsm<M> {
    /// Starts Raft on `storage` and the apply task. Raft hands back the
    /// stored snapshot (if any) first, which replaces `machine`. Register
    /// [`RaftNode::add_handlers`] of [`Rsm::raft`] on the labrpc server at
    /// `peer_addrs[me]`.
    pub async fn start<S: Storage + 'static>(
        config: RsmConfig,
        machine: M,
        storage: S,
    ) -> Result<Rsm<M>, StorageError> {
        Rsm::start_with_hook(config, machine, storage, None).await
    }

    /// [`Rsm::start`], with `hook` told of every applied command and
    /// installed snapshot (the stored one at start included).
    pub async fn start_with_hook<S: Storage + 'static>(
        config: RsmConfig,
        machine: M,
        storage: S,
        hook: Option<AppliedHook<M>>,
    ) -> Result<Rsm<M>, StorageError> {
        assert!(
            config.id < config.peer_addrs.len(),
            "rsm: id = {} but only {} peers",
            config.id,
            config.peer_addrs.len()
        );
        assert!(
            config.raft_id.is_none() || config.join,
            "rsm {}: an explicit Raft id is only for a joining replica",
            config.id
        );
        let mut node_config = NodeConfig::new(
            config.raft_id(),
            config.peer_addrs.clone(),
            config.raft_seed,
        );
        if config.join {
            // Not a bootstrap voter: see `RsmConfig::join`. (With an
            // explicit Raft id, `id` is only where it serves.)
            node_config
                .core
                .peers
                .retain(|&peer| peer != config.id as u64);
            assert!(
                !node_config.core.peers.is_empty(),
                "rsm {}: a joining replica needs another member's address",
                config.id
            );
        }
        // A new leader commits an entry of its term at once, so ReadIndex
        // and waiting proposals need not wait for the next client write.
        node_config.core.noop_on_election = true;
        // Entries and snapshots from a leader are decoded before Raft
        // stores them: one that does not decode is refused there, instead
        // of stopping this replica when applied (and at every restart).
        node_config.core.payload_check = Some(payload_check::<M>());
        node_config.core.lease_reads = config.lease_reads;
        node_config.core.lease_clock_drift_percent = config.lease_clock_drift_percent;
        node_config.observer = config.raft_observer.clone();
        node_config.on_fatal = config.on_fatal.clone();
        fit_raft_to_message_limit(&mut node_config.core, config.max_message_bytes);
        let client = labrpc::Client::new(labrpc::ClientConfig {
            max_message_bytes: config.max_message_bytes,
            security: config.peer_security.clone(),
            ..labrpc::ClientConfig::default()
        });
        let (raft, apply) = RaftNode::make(node_config, storage, client.clone()).await?;
        let (applied, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            incarnation: labrpc::runtime::random_u64(),
            inner: Mutex::new(Inner {
                machine,
                last_applied: 0,
                log_time_ms: 0,
                last_snapshot_index: 0,
                last_snapshot_bytes: 0,
                snapshot_encoding: false,
                clock: LeaderClock::new(0, labrpc::runtime::now()),
                waiters: Waiters::new(),
                next_proposal: 0,
                peer_addrs: BTreeMap::new(),
                speculation: Speculation::new(),
            }),
            applied,
            nudge: Notify::new(),
            reads: ReadBatcher::default(),
            granted_reads: ReadBatcher::default(),
            follower_asks: ReadBatcher::default(),
            peers: client,
            follower_reads: std::sync::atomic::AtomicU64::new(0),
            last_grant: Arc::new(Mutex::new(None)),
            reused_grants: std::sync::atomic::AtomicU64::new(0),
            hook,
            config,
        });
        let rsm = Rsm { raft, shared };
        labrpc::runtime::spawn(rsm.clone().run_apply_loop(apply));
        Ok(rsm)
    }

    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    /// Serves this replica's labrpc server on its address
    /// (`listen_addr`, else `peer_addrs[id]`) with its message limit:
    /// Raft's methods, and the service's, which `add_service` adds to the
    /// router. Keep the returned server to stop it; dropped, it serves on.
    pub async fn serve(
        &self,
        add_service: impl FnOnce(&mut labrpc::Router),
    ) -> Result<labrpc::Server, ListenError> {
        let config = &self.shared.config;
        let addr = config.listen_addr.unwrap_or(config.peer_addrs[config.id]);
        let mut router = labrpc::Router::new();
        match &config.raft_nodes {
            None => self.raft.add_handlers(&mut router),
            Some(raft_nodes) => self.add_checked_raft_handler(&mut router, raft_nodes.clone()),
        }
        self.add_read_index_handler(&mut router);
        add_service(&mut router);
        let server_config = labrpc::ServerConfig {
            max_message_bytes: config.max_message_bytes,
            security: config.peer_security.clone(),
            ..labrpc::ServerConfig::default()
        };
        labrpc::Server::start(addr, router, server_config)
            .await
            .map_err(|error| ListenError {
                addr,
                detail: error.to_string(),
            })
    }

    pub fn config(&self) -> &RsmConfig {
        &self.shared.config
    }

    /// Raft's handler behind a check of its sender: the authenticated
    /// caller ([`labrpc::caller`]) must be `raft_nodes[message.from]`. A
    /// message that fails it gets no reply (as one Raft refuses), and is
    /// counted and logged by the peer policy.
    fn add_checked_raft_handler(&self, router: &mut labrpc::Router, raft_nodes: Vec<u64>) {
        let raft = self.raft.clone();
        let security = self.shared.config.peer_security.clone();
        let raft_nodes = Arc::new(raft_nodes);
        let joined_base = self.shared.config.joined_raft_id_base;
        router.add::<raft::core::Message, _, _>(move |message: raft::core::Message| {
            let raft = raft.clone();
            let security = security.clone();
            let raft_nodes = Arc::clone(&raft_nodes);
            async move {
                let claimed = match joined_base {
                    Some(base) if message.from >= base => Some(message.from - base),
                    _ => usize::try_from(message.from)
                        .ok()
                        .and_then(|id| raft_nodes.get(id).copied()),
                };
                match labrpc::caller() {
                    // No policy: nobody is authenticated, nothing to check.
                    None => raft.handle_message(message).await,
                    Some(node) if claimed == Some(node) => raft.handle_message(message).await,
                    Some(node) => {
                        security.note_refusal(
                            labrpc::Refusal::SenderMismatch,
                            None,
                            &format!(
                                "node {node} sent a Raft message from raft id {} ({})",
                                message.from,
                                match claimed {
                                    Some(owner) => format!("node {owner}'s"),
                                    None => "no replica's".to_string(),
                                }
                            ),
                        );
                        None
                    }
                }
            }
        });
    }

    /// The leader's half of follower reads ([`crate::AskReadIndex`]).
    /// With `raft_nodes`, only a node of the group may ask (anyone else is
    /// refused as Raft's handler refuses: no answer, counted).
    fn add_read_index_handler(&self, router: &mut labrpc::Router) {
        let rsm = self.clone();
        router.add::<AskReadIndex, _, _>(move |ask: AskReadIndex| {
            let rsm = rsm.clone();
            async move {
                if let Some(node) = labrpc::caller()
                    && !rsm.is_group_node(node)
                {
                    rsm.shared.config.peer_security.note_refusal(
                        labrpc::Refusal::SenderMismatch,
                        None,
                        &format!("node {node} asked for a read index but holds no replica here"),
                    );
                    return Err(SubmitError::WrongLeader { leader_hint: None });
                }
                rsm.grant_read_index(ask).await
            }
        });
    }

    /// `node` holds a replica of this group: it is in `raft_nodes`, or
    /// its joined Raft id is in the configuration in force. Always true
    /// without `raft_nodes` (nothing is authenticated).
    fn is_group_node(&self, node: u64) -> bool {
        let config = &self.shared.config;
        let Some(raft_nodes) = &config.raft_nodes else {
            return true;
        };
        if raft_nodes.contains(&node) {
            return true;
        }
        config.joined_raft_id_base.is_some_and(|base| {
            let (_, membership) = self.raft.membership();
            let id = base.saturating_add(node);
            membership.voters.contains(&id) || membership.learners.contains(&id)
        })
    }

    pub fn status(&self) -> RsmStatus {
        let raft = self.raft.status();
        let inner = self.shared.lock();
        RsmStatus {
            last_applied: inner.last_applied,
            log_time_ms: inner.log_time_ms,
            last_snapshot_index: inner.last_snapshot_index,
            last_snapshot_bytes: inner.last_snapshot_bytes,
            pending_proposals: inner.waiters.len(),
            early_acks: inner.speculation.stats(),
            raft,
        }
    }

    /// Stops Raft (and with it the apply task); every call answers
    /// `WrongLeader` from then on.
    pub fn kill(&self) {
        self.raft.kill();
    }

    /// Runs `look` on this replica's machine as applied so far: for
    /// prechecks and local answers. Not linearizable (a follower may lag;
    /// use [`Rsm::read`] for that). `look` runs under the rsm's lock: keep
    /// it short.
    pub fn with_machine<R>(&self, look: impl FnOnce(&M) -> R) -> R {
        look(&self.shared.lock().machine)
    }

    pub(crate) fn wrong_leader(&self) -> SubmitError {
        SubmitError::WrongLeader {
            leader_hint: self.raft.status().leader_id,
        }
    }

    /// Proposes `command` and waits for its own entry to apply; returns
    /// the machine's output for it. See the module docs for the errors.
    ///
    /// Runs inside a `raft.submit` span (a child of the caller's, so a
    /// request's trace reaches Raft) whose `index` and `term` are recorded
    /// once Raft has placed the entry.
    pub async fn submit(&self, command: M::Command) -> Result<M::Output, SubmitError> {
        self.submit_placed(command).await.map(|(output, _)| output)
    }

    /// [`Rsm::submit`], also answering where Raft placed the entry: a
    /// caller that must hold its answer back until something has caught up
    /// with the entry (shardkv's write fence) needs its index and term.
    /// With asynchronous replication the output may come before the entry
    /// commits (see the module docs).
    pub async fn submit_placed(
        &self,
        command: M::Command,
    ) -> Result<(M::Output, LogPlace), SubmitError> {
        let span = tracing::info_span!(
            "raft.submit",
            index = tracing::field::Empty,
            term = tracing::field::Empty,
        );
        self.submit_in(command, &span)
            .instrument(span.clone())
            .await
    }

    async fn submit_in(
        &self,
        command: M::Command,
        span: &tracing::Span,
    ) -> Result<(M::Output, LogPlace), SubmitError> {
        let shared = &*self.shared;
        let (proposal, stamp_ms, answered) = {
            let mut inner = shared.lock();
            if !self.raft.state().1 {
                return Err(self.wrong_leader());
            }
            let pending = inner.waiters.len();
            if pending >= shared.config.max_pending_proposals {
                return Err(SubmitError::Busy { pending });
            }
            inner.next_proposal += 1;
            let proposal = inner.next_proposal;
            let stamp_ms = inner.clock.stamp(labrpc::runtime::now());
            (proposal, stamp_ms, inner.waiters.register(proposal))
        };
        let _guard = WaiterGuard { shared, proposal };
        let entry = encode_entry::<M>(&Envelope {
            proposal: ProposalId {
                incarnation: shared.incarnation,
                number: proposal,
            },
            stamp_ms,
            command: &command,
        });
        let Some((index, term)) = self.raft.start(entry).await else {
            // Raft refuses a proposal for two reasons: not the leader, or
            // too many uncommitted entries. `start` does not say which, so
            // a refusal while this replica still leads is the second: the
            // caller backs off and comes back here rather than look for
            // another leader. (If the lead was lost and regained in
            // between, a Busy costs only a backoff.)
            if self.raft.state().1 {
                return Err(SubmitError::Busy {
                    pending: shared.lock().waiters.len(),
                });
            }
            return Err(self.wrong_leader());
        };
        span.record("index", index);
        span.record("term", term);
        {
            let mut inner = shared.lock();
            // Already applied at `index` (the apply task runs apart): if it
            // was ours, the waiter has the output and is gone; if it is
            // still here, another entry took the place.
            if inner.waiters.place(proposal, index) && inner.last_applied >= index {
                return Err(self.wrong_leader());
            }
            // (An entry applied already has its output in the waiter.)
            if let Some(settings) = shared.config.early_acks
                && inner.last_applied < index
            {
                let Inner {
                    machine,
                    last_applied,
                    speculation,
                    waiters,
                    ..
                } = &mut *inner;
                speculation.record(Placed {
                    index,
                    term,
                    proposal,
                    command,
                });
                // Applied through, no-ops included (which the machine's
                // `last_applied` does not count).
                let applied_through = (*last_applied).max(*shared.applied.borrow());
                // This entry, and any recorded behind it, may now be
                // answered (whoever's they are).
                speculation.decide(machine, applied_through, settings, |proposal, output| {
                    waiters.answer_early(proposal, output)
                });
            }
        }
        match tokio::time::timeout(shared.config.apply_wait, answered).await {
            Ok(Ok(output)) => Ok((output, LogPlace { index, term })),
            Ok(Err(_)) => Err(self.wrong_leader()),
            Err(_) => Err(SubmitError::Timeout),
        }
    }

    /// A linearizable read without a log entry (ReadIndex): confirms with
    /// a heartbeat round that this replica leads, waits until it has
    /// applied through the commit index of that moment, then runs `look`
    /// on the machine. The context's `now_ms` is the leader's current
    /// stamp (at least the log time), as a write proposed now would get.
    ///
    /// `look` gets `&M`: it must not change what replicas hold (they would
    /// diverge), so reads served this way change no policy state either.
    ///
    /// Runs inside a `raft.read_index` span whose `index` is the read index
    /// once confirmed.
    pub async fn read<R>(
        &self,
        look: impl FnOnce(&M, &ApplyContext) -> R,
    ) -> Result<R, SubmitError> {
        let span = tracing::info_span!("raft.read_index", index = tracing::field::Empty);
        self.read_in(look, &span).instrument(span.clone()).await
    }

    async fn read_in<R>(
        &self,
        look: impl FnOnce(&M, &ApplyContext) -> R,
        span: &tracing::Span,
    ) -> Result<R, SubmitError> {
        let deadline = labrpc::runtime::now() + self.shared.config.apply_wait;
        let read_index = self.confirmed_read_index(deadline).await?;
        span.record("index", read_index);
        self.wait_applied(read_index, deadline).await?;
        let mut inner = self.shared.lock();
        let stamp_ms = inner.clock.stamp(labrpc::runtime::now());
        let context = ApplyContext {
            index: inner.last_applied,
            now_ms: stamp_ms.max(inner.log_time_ms),
        };
        Ok(look(&inner.machine, &context))
    }

    /// A read index confirmed now by this replica as leader (a heartbeat
    /// round shared with concurrent reads, or its lease), by `deadline`.
    pub(crate) async fn confirmed_read_index(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<u64, SubmitError> {
        self.confirmed_read_index_by(deadline, false).await
    }

    /// [`Rsm::confirmed_read_index`]; with `round`, by a heartbeat round
    /// even under the lease (the followers learn the commit index in it:
    /// what a follower's read needs), shared with other such reads.
    pub(crate) async fn confirmed_read_index_by(
        &self,
        deadline: tokio::time::Instant,
        round: bool,
    ) -> Result<u64, SubmitError> {
        let remaining = || deadline.saturating_duration_since(labrpc::runtime::now());
        // Taken as the read begins: every write answered early before it.
        let early_floor = self.early_read_floor();
        if !round && let Some(index) = self.raft.lease_read_index() {
            // Under the lease: no round, no batch, no turn of Raft's loop.
            return Ok(index.max(early_floor));
        }
        loop {
            if !self.raft.state().1 {
                return Err(self.wrong_leader());
            }
            let max_waiting = self.shared.config.max_pending_proposals;
            let raft = self.raft.clone();
            let batcher = if round {
                &self.shared.granted_reads
            } else {
                &self.shared.reads
            };
            let read_index = batcher.join(max_waiting, move || {
                let raft = raft.clone();
                async move {
                    if round {
                        raft.read_index_with_round().await
                    } else {
                        raft.read_index().await
                    }
                }
            });
            match tokio::time::timeout(remaining(), read_index).await {
                Ok(Err(too_many)) => {
                    return Err(SubmitError::Busy {
                        pending: too_many.waiting,
                    });
                }
                Ok(Ok(Some(index))) => return Ok(index.max(early_floor)),
                // Still the leader but not ready (a new leader whose first
                // entry is not committed yet): try again shortly, here.
                Ok(Ok(None)) if self.raft.state().1 => {
                    tokio::time::sleep(READ_RETRY_PAUSE.min(remaining())).await;
                    if remaining().is_zero() {
                        return Err(SubmitError::Timeout);
                    }
                }
                Ok(Ok(None)) => return Err(self.wrong_leader()),
                Err(_) => return Err(SubmitError::Timeout),
            }
        }
    }

    /// The index a read beginning now must see applied besides its read
    /// index (asynchronous replication): every write this replica
    /// answered early in its current term, so that the read sees them.
    /// (Writes of an earlier term are committed before any read index of
    /// a later one, or lost.)
    fn early_read_floor(&self) -> u64 {
        if self.shared.config.early_acks.is_none() {
            return 0;
        }
        let term = self.raft.status().term;
        self.shared.lock().speculation.read_floor(term)
    }

    /// Waits until this replica has applied through `index`, by
    /// `deadline`. Raft does not hand over entries without a command (a
    /// new leader's no-op), so the apply task learns how far it is from
    /// Raft when nudged.
    pub async fn wait_applied(
        &self,
        index: u64,
        deadline: tokio::time::Instant,
    ) -> Result<(), SubmitError> {
        let remaining = || deadline.saturating_duration_since(labrpc::runtime::now());
        let mut applied = self.shared.applied.subscribe();
        while *applied.borrow_and_update() < index {
            self.shared.nudge.notify_one();
            let wait = READ_RETRY_PAUSE.min(remaining());
            if let Ok(Err(_)) = tokio::time::timeout(wait, applied.changed()).await {
                // The apply task ended: the replica was killed.
                return Err(self.wrong_leader());
            }
            if remaining().is_zero() && *applied.borrow() < index {
                return Err(SubmitError::Timeout);
            }
        }
        Ok(())
    }

    /// How a service's handler ends for a read: [`Rsm::read`] of a
    /// service answer, the rsm's refusal (not the leader, not in time,
    /// busy) turned into the service's own error, which its callers retry.
    pub async fn read_reply<T, E: From<SubmitError>>(
        &self,
        look: impl FnOnce(&M, &ApplyContext) -> Result<T, E>,
    ) -> Result<T, E> {
        self.read(look)
            .await
            .unwrap_or_else(|error| Err(error.into()))
    }

    /// How a service's handler ends for a command: [`Rsm::submit`], the
    /// machine's output read by `answer`, the rsm's refusal turned into
    /// the service's own error, which its callers retry.
    pub async fn submit_reply<T, E: From<SubmitError>>(
        &self,
        command: M::Command,
        answer: impl FnOnce(M::Output) -> Result<T, E>,
    ) -> Result<T, E> {
        match self.submit(command).await {
            Ok(output) => answer(output),
            Err(error) => Err(error.into()),
        }
    }

    async fn run_apply_loop(self, mut apply: mpsc::Receiver<ApplyMsg>) {
        loop {
            tokio::select! {
                biased;
                message = apply.recv() => match message {
                    Some(ApplyMsg::Command { index, command, .. }) => {
                        if let Err(reason) = self.apply_entry(index, &command) {
                            self.stop_fatal(reason);
                            return;
                        }
                    }
                    Some(ApplyMsg::Snapshot { index, data, .. }) => {
                        if let Err(reason) = self.install_snapshot(index, &data) {
                            self.stop_fatal(reason);
                            return;
                        }
                    }
                    None => return,
                },
                () = self.shared.nudge.notified() => {}
            }
            // Raft publishes how far it handed entries over after sending
            // them; so once the channel is empty, everything up to what it
            // published before is applied, no-ops included. The exception
            // is a restart, where the status names the stored snapshot
            // before handing it over: wait until it is installed.
            let raft = self.raft.status();
            if apply.is_empty() && self.shared.lock().last_applied >= raft.snapshot_index {
                self.publish_applied(raft.applied_index);
            }
        }
    }

    /// Committed state this replica cannot use: it cannot skip it, and it
    /// must not serve a state that is not the replicated one, so the
    /// replica stops through Raft's fatal path (the node answers nobody,
    /// waiting callers get an error, a server binary exits with the
    /// reason). No lock is held here, so nothing is poisoned.
    fn stop_fatal(&self, reason: FatalReason) {
        tracing::error!(rsm = self.shared.config.id, %reason, "replica stops");
        self.raft.stop_fatal(reason);
    }

    /// Raises the applied-through index (never lowers it).
    fn publish_applied(&self, index: u64) {
        self.shared.applied.send_if_modified(|through| {
            let raised = index > *through;
            if raised {
                *through = index;
            }
            raised
        });
    }

    /// Applies one committed entry; an entry this build cannot decode (a
    /// newer format version, damage) is the fatal reason returned, with
    /// nothing applied.
    fn apply_entry(&self, index: u64, bytes: &[u8]) -> Result<(), FatalReason> {
        let shared = &*self.shared;
        let mut inner = shared.lock();
        if index <= inner.last_applied {
            return Ok(());
        }
        let entry = decode_entry::<M>(bytes).map_err(|error| FatalReason::Unusable {
            what: "committed entry",
            index,
            detail: unusable_detail(&error),
        })?;
        inner.log_time_ms = inner.log_time_ms.max(entry.stamp_ms);
        let context = ApplyContext {
            index,
            now_ms: inner.log_time_ms,
        };
        match entry.body {
            EntryBody::Command(command) => {
                let output = inner.machine.apply(&command, &context);
                if let Some(detail) = inner.machine.fault() {
                    // The output may be wrong (a value lost reads as
                    // absent): nobody gets it, and the replica stops.
                    return Err(FatalReason::Unusable {
                        what: "machine state",
                        index,
                        detail: format!("the machine reports a local fault: {detail}"),
                    });
                }
                if let Some(hook) = &shared.hook {
                    hook(Applied::Command {
                        index,
                        command: &command,
                        output: &output,
                        machine: &inner.machine,
                    });
                }
                let own = (entry.proposal.incarnation == shared.incarnation)
                    .then_some(entry.proposal.number);
                if shared.config.early_acks.is_some() {
                    inner.speculation.applied(index, own, Some(&output));
                }
                inner.waiters.applied(index, own, output);
            }
            EntryBody::PeerAddress { id, addr } => {
                self.record_peer_addr(&mut inner, index, id, addr);
                // No waiter waits for an rsm entry; one placed here lost
                // its place.
                inner.waiters.drop_through(index);
                inner.speculation.applied(index, None, None);
            }
        }
        inner.last_applied = index;
        let log_time_ms = inner.log_time_ms;
        inner.clock.anchor(log_time_ms, labrpc::runtime::now());
        self.maybe_snapshot(&mut inner, index);
        drop(inner);
        self.publish_applied(index);
        Ok(())
    }

    fn maybe_snapshot(&self, inner: &mut Inner<M>, index: u64) {
        let Some(max_raft_state) = self.shared.config.max_raft_state else {
            return;
        };
        // Not while one is encoded, nor before Raft took the last one
        // asked for (its log size still counts the entries that one
        // covers: another would be encoded for nothing).
        let raft = self.raft.status();
        if index <= inner.last_snapshot_index
            || inner.snapshot_encoding
            || raft.snapshot_index < inner.last_snapshot_index
            || raft.raft_state_size_bytes
                < snapshot_trigger_bytes(
                    max_raft_state,
                    inner.last_snapshot_bytes,
                    self.shared.config.snapshot_log_percent,
                )
        {
            return;
        }
        // Encoding a large machine takes long (up to a second measured on
        // a loaded 2-core machine for a 100,000-key store); under the lock
        // it held up this replica's requests, and the runtime workers they
        // blocked, so every group stood still. A copy is quicker (a
        // 100,000-key store: 5-26 ms against 32-43 ms to encode, measured
        // in review; a million keys in ten stores: 125 ms against 256 ms,
        // 2026-12-07) and is encoded on the blocking pool.
        inner.snapshot_encoding = true;
        inner.last_snapshot_index = index;
        let machine = inner.machine.clone();
        let log_time_ms = inner.log_time_ms;
        let peer_addrs = inner.peer_addrs.clone();
        let rsm = self.clone();
        labrpc::runtime::spawn(async move {
            let encoded = labrpc::runtime::spawn_blocking(move || {
                // Peak memory: the live machine and the copy, which turns
                // into the frame's bytes as it writes itself out (a
                // machine that drops its parts as they are written holds
                // little more than the larger of the two).
                encode_snapshot_of(machine, log_time_ms, &peer_addrs)
            })
            .await;
            let mut inner = rsm.shared.lock();
            inner.snapshot_encoding = false;
            let data = match encoded {
                Ok(data) => data,
                Err(error) if error.is_panic() => {
                    // A machine that cannot be written out cannot be
                    // compacted: stop loudly rather than grow the log
                    // forever, copying the machine at every entry.
                    drop(inner);
                    rsm.stop_fatal(FatalReason::Unusable {
                        what: "machine state",
                        index,
                        detail: format!("encoding its snapshot panicked: {error}"),
                    });
                    return;
                }
                // The runtime is shutting down.
                Err(_) => return,
            };
            // A leader's snapshot installed meanwhile went past `index`
            // (only an install moves it): this one is stale.
            if inner.last_snapshot_index != index {
                return;
            }
            inner.last_snapshot_bytes = data.len() as u64;
            // Under the lock, so a later snapshot's request cannot come
            // first and be replaced by this older one.
            rsm.raft.snapshot(index, data);
        });
    }

    /// Records node `id`'s address (a `PeerAddress` entry at `index`, or
    /// a snapshot through `index`) in the replicated book and in Raft's.
    /// Every replica decides alike: past `AddressBook::MAX_ADDRESSES` a
    /// new id is not recorded (logged), on every replica.
    fn record_peer_addr(&self, inner: &mut Inner<M>, index: u64, id: u64, addr: SocketAddr) {
        if inner.peer_addrs.len() >= AddressBook::MAX_ADDRESSES
            && !inner.peer_addrs.contains_key(&id)
        {
            tracing::warn!(rsm = self.shared.config.id, index, id, %addr, "address book full: address not recorded");
            return;
        }
        inner.peer_addrs.insert(id, addr);
        if id != self.shared.config.raft_id() {
            self.raft.set_peer_addr(id, addr);
        }
    }

    /// Installs a snapshot (the stored one at start, or a leader's); one
    /// this build cannot decode or restore is the fatal reason returned,
    /// with nothing installed: refuse to serve rather than serve something
    /// else.
    fn install_snapshot(&self, index: u64, data: &[u8]) -> Result<(), FatalReason> {
        let shared = &*self.shared;
        let mut inner = shared.lock();
        if index <= inner.last_applied {
            return Ok(());
        }
        let unusable = |detail: String| FatalReason::Unusable {
            what: "snapshot",
            index,
            detail,
        };
        let frame =
            decode_snapshot::<M>(data).map_err(|error| unusable(unusable_detail(&error)))?;
        inner.machine = inner
            .machine
            .restore(&frame.machine)
            .map_err(|error| unusable(format!("it does not restore the machine: {error}")))?;
        inner.last_applied = index;
        inner.log_time_ms = frame.log_time_ms;
        for (&id, &addr) in &frame.peer_addrs {
            self.record_peer_addr(&mut inner, index, id, addr);
        }
        inner.last_snapshot_index = inner.last_snapshot_index.max(index);
        inner.last_snapshot_bytes = data.len() as u64;
        let log_time_ms = inner.log_time_ms;
        inner.clock.anchor(log_time_ms, labrpc::runtime::now());
        // Waiters covered by the snapshot cannot learn their output here:
        // dropped, their callers retry.
        inner.waiters.drop_through(index);
        inner.speculation.forget_through(index);
        if let Some(hook) = &shared.hook {
            hook(Applied::Restored {
                index,
                machine: &inner.machine,
            });
        }
        drop(inner);
        self.publish_applied(index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_snapshot_by_default() {
        let config = RsmConfig::new(0, vec!["127.0.0.1:1".parse().unwrap()], 1);
        assert_eq!(config.max_raft_state, Some(DEFAULT_MAX_RAFT_STATE_BYTES));
        assert_eq!(config.snapshot_log_percent, 0);
    }

    #[test]
    fn the_snapshot_trigger_is_the_bound_or_the_percent_of_the_last_snapshot() {
        // No snapshot yet, or a percent of 0: the bound.
        assert_eq!(snapshot_trigger_bytes(8 << 20, 0, 50), 8 << 20);
        assert_eq!(snapshot_trigger_bytes(8 << 20, 640 << 20, 0), 8 << 20);
        // A snapshot under twice the bound: still the bound at 50%.
        assert_eq!(snapshot_trigger_bytes(8 << 20, 10 << 20, 50), 8 << 20);
        // A 640 MiB machine: its half at 50%, all of it at 100%.
        assert_eq!(snapshot_trigger_bytes(8 << 20, 640 << 20, 50), 320 << 20);
        assert_eq!(snapshot_trigger_bytes(8 << 20, 640 << 20, 100), 640 << 20);
        // No overflow at the extremes.
        assert_eq!(snapshot_trigger_bytes(1, u64::MAX, 400), u64::MAX / 100);
    }
}
