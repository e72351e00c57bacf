//! A shardkv replica: the group's [`ShardMachine`] replicated by
//! `rsm::Rsm`, the labrpc handlers (client requests, pulls, deletes),
//! and three background tasks that run on the group's leader.
//!
//! ```text
//!  labrpc server on peer_addrs[me]
//!    raft methods ─────────────► Raft
//!    ShardKvRequest ──► handle_client ─► read: rsm.read (ReadIndex; served
//!                       here? else WrongGroup) / write: rsm.submit(Client{..})
//!    PullChunk ───────► exports: encode the offered shard once (outside the
//!                       rsm lock), answer a bounded piece (no log entry:
//!                       offered shards are frozen)
//!    DeleteShards ────► rsm.submit(DeleteShards{..})
//!    WaitKeys ────────► key_watch: wait until a key is written (BLPOP ...)
//!    WatchChanges ────► change_feed: the keys written after a log index
//!                       (client-side caching's invalidations); the poller's
//!                       lease and cursor go to the write fence
//!    a write applied ─► write_fence: answered once every node polling the
//!                       feed handed it on (or lost its lease)
//!
//!  tasks (each loop: sleep; stop once Raft is killed; act only as leader)
//!    config poller  : migration done? report(num) once per num;
//!                     query(num + 1) ─► submit(Reconfigure)
//!                     blocked? warn (bounded rate) of long pulls; every
//!                     few rounds: query(latest), a peer waited on (or this
//!                     group) declared lost? ─► submit(GroupsLost)
//!    puller         : per donor (in parallel), per shard, piece by piece:
//!                     PullChunk ─► submit(ShardChunk) (the last installs it)
//!    confirmer      : per donor (in parallel): DeleteShards ─► submit(ShardsConfirmed)
//!    lease retirer  : no poller for a lease? submit(PollerLeases{false})
//! ```

mod change_feed;
mod exports;
mod key_watch;
mod machine_impl;
mod tasks;
mod write_fence;

pub use change_feed::{ARMED_FOR, ChangeFeed, MAX_FEED_KEYS, MAX_KEYS_PER_REPLY};
pub use key_watch::{KeyWatch, MAX_WATCH_KEYS, Watch, WatchFull};
pub use write_fence::{
    Admission, CLOCK_DRIFT_PERCENT, FenceCheck, FenceCore, LEASE_MARGIN, MAX_ACK_WAIT, MAX_POLLERS,
    POLLER_LEASE, POLLER_WINDOW, Refusal, WriteFence,
};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api::{MachineConfig, Op, Outcome, Reply};
use cache::PolicyRevision;
use raft::node::RaftNode;
use raft::storage::Storage;
use rsm::{Applied, LogPlace, Rsm, RsmConfig, RsmStatus};
use shardctrler::{Config, Gid};

use crate::machine::{DiskPlacement, GroupCommand, GroupOutput, LostShard, ShardMachine};
use crate::rpc::{
    BatchTrace, Changes, DeleteShards, MAX_BATCH_REQUESTS, MigrationError, PullChunk, ReadAnywhere,
    ShardChunk, ShardKvBatch, ShardKvRequest, WaitKeys, WatchChanges,
};
use exports::Exports;

/// Room left in a message next to a piece's data (the request or reply's
/// other fields and framing): a piece is at most the message limit minus
/// this.
pub const CHUNK_FRAME_BYTES: u64 = 4096;

/// Where a group reads configurations (the shard controller's clerk in
/// production; anything in tests).
pub trait ConfigSource: Clone + Send + Sync + 'static {
    /// Configuration `num` (None: the latest). `None` if it could not be
    /// read now (the caller retries later). A `num` past the latest may
    /// answer the latest; one the source no longer keeps may answer the
    /// oldest it keeps (the group jumps there only if it holds nothing:
    /// see [`GroupCommand::Reconfigure`]).
    fn query(&self, num: Option<u64>) -> impl Future<Output = Option<Config>> + Send;

    /// Group `gid` has applied configuration `num`, so the source may stop
    /// keeping older ones for it. Best effort (the poller reports again
    /// after its next step); nothing by default.
    fn report(&self, gid: Gid, num: u64) -> impl Future<Output = ()> + Send {
        let _ = (gid, num);
        async {}
    }
}

/// Which nodes may speak for which group in migration requests: a pull
/// or delete that names `from_gid` is served only if the node that sent
/// it (labrpc's authenticated [`labrpc::caller`]) is a replica of that
/// group. A node builds it from its cluster's node table.
#[derive(Clone)]
pub struct GroupMembership(Arc<dyn Fn(Gid, u64) -> Option<bool> + Send + Sync>);

impl GroupMembership {
    /// `is_member(gid, node)`: whether node `node` is a replica of `gid`;
    /// `None` for a node it does not know (a node of a group added after
    /// this one started): the configuration check alone applies then.
    pub fn new(
        is_member: impl Fn(Gid, u64) -> Option<bool> + Send + Sync + 'static,
    ) -> GroupMembership {
        GroupMembership(Arc::new(is_member))
    }

    pub fn is_member(&self, gid: Gid, node: u64) -> Option<bool> {
        (self.0)(gid, node)
    }
}

impl std::fmt::Debug for GroupMembership {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("GroupMembership")
    }
}

/// Settings of one replica.
#[derive(Clone, Debug)]
pub struct ShardServerConfig {
    pub gid: Gid,
    /// The replica as the rsm runs it: its Raft id (`replica.id`, its
    /// index in `replica.peer_addrs`), the group's labrpc addresses in
    /// Raft id order (the order the controller lists them in), the
    /// snapshot threshold (`max_raft_state`, default
    /// `rsm::DEFAULT_MAX_RAFT_STATE_BYTES`), how long a request waits to be
    /// applied (`apply_wait`), Raft's seed, the largest message this
    /// replica sends or accepts (`max_message_bytes`: Raft's sizes derive
    /// from it, and so does `transfer_chunk_bytes`'s bound) and the
    /// storage-failure hook.
    pub replica: RsmConfig,
    pub shard_count: usize,
    /// Limits of each shard (store capacity, key/value sizes, sessions).
    /// `machine.store.disk` gives every shard's store a disk tier (L3):
    /// then `disk_dir` must be set.
    pub machine: MachineConfig,
    /// Where this replica keeps its shards' disk tiers (local; cleared at
    /// start, see [`crate::DiskPlacement`]). Set exactly when
    /// `machine.store.disk` is.
    pub disk_dir: Option<std::path::PathBuf>,
    /// How often the leader asks the controller for the next configuration.
    pub poll_interval: Duration,
    /// How often the leader retries pending pulls and confirmations.
    pub migration_interval: Duration,
    /// Deadline of one call to another group's server.
    pub peer_rpc_timeout: Duration,
    /// Largest piece of a moving shard, in one message and one log entry:
    /// at most Raft's entry bound for `max_message_bytes` minus
    /// `CHUNK_FRAME_BYTES`.
    pub transfer_chunk_bytes: u64,
    /// Reads (Get and the other read-only operations) as ReadIndex reads
    /// on the leader, without a log entry (the default), or through the
    /// log (`false`, 6.5840's way).
    pub read_index_reads: bool,
    /// A pull that has waited this long is logged at WARN by the group's
    /// leader, again at most once per this interval while any pull waits
    /// (a dead donor shows in the log, not only in status and metrics).
    pub pull_wait_warn_after: Duration,
    /// How often (in config-poller rounds) the leader asks the controller
    /// for its latest configuration to learn of groups declared lost: the
    /// peers a blocked migration waits on, or this group itself.
    pub lost_check_rounds: u32,
    /// Most [`WaitKeys`] waits (blocked clients) this replica holds at
    /// once, and most on one key; more are refused with `Busy`.
    pub max_waiters: usize,
    pub max_waiters_per_key: usize,
    /// With an authenticated caller (labrpc's peer policy), the groups it
    /// may speak for: a pull or delete naming another group is refused
    /// ([`MigrationError::NotGroupMember`]). None (the labs, simulation):
    /// `from_gid` is checked against the configuration only.
    pub group_membership: Option<GroupMembership>,
    /// Client-side caching's write fence (the `write_fence` module): a
    /// write is answered only once every node polling this group's change
    /// feed has handed its invalidation to its clients, or lost its lease.
    /// On by default; off, a cached value may lag an acknowledged write by
    /// up to the pollers' window (about 5 s), and writes never wait.
    pub write_fence: bool,
}

impl ShardServerConfig {
    pub fn new(
        gid: Gid,
        id: usize,
        peer_addrs: Vec<SocketAddr>,
        shard_count: usize,
        raft_seed: u64,
    ) -> ShardServerConfig {
        ShardServerConfig {
            gid,
            replica: RsmConfig::new(id, peer_addrs, raft_seed),
            shard_count,
            machine: MachineConfig::default(),
            disk_dir: None,
            poll_interval: Duration::from_millis(100),
            migration_interval: Duration::from_millis(50),
            peer_rpc_timeout: Duration::from_millis(500),
            transfer_chunk_bytes: DEFAULT_TRANSFER_CHUNK_BYTES,
            read_index_reads: true,
            pull_wait_warn_after: Duration::from_secs(30),
            lost_check_rounds: 10,
            max_waiters: DEFAULT_MAX_WAITERS,
            max_waiters_per_key: DEFAULT_MAX_WAITERS_PER_KEY,
            group_membership: None,
            write_fence: true,
        }
    }

    /// Refuses sizes that do not fit each other.
    pub fn check(&self) -> Result<(), StartError> {
        let max_message_bytes = self.replica.max_message_bytes;
        if max_message_bytes < MIN_MESSAGE_BYTES {
            return Err(StartError::BadConfig {
                detail: format!(
                    "max_message_bytes {max_message_bytes} is under {MIN_MESSAGE_BYTES}"
                ),
            });
        }
        if self.max_waiters == 0 || self.max_waiters_per_key == 0 {
            return Err(StartError::BadConfig {
                detail: format!(
                    "max_waiters ({}) and max_waiters_per_key ({}) must be at least 1",
                    self.max_waiters, self.max_waiters_per_key
                ),
            });
        }
        let mut raft = raft::core::Config::new(0, vec![0], 0);
        rsm::fit_raft_to_message_limit(&mut raft, max_message_bytes);
        let room = (raft.max_entry_bytes as u64).saturating_sub(CHUNK_FRAME_BYTES);
        if self.transfer_chunk_bytes == 0 || self.transfer_chunk_bytes > room {
            return Err(StartError::BadConfig {
                detail: format!(
                    "transfer_chunk_bytes {} must be between 1 and {room} (Raft's entry bound \
                     {} for max_message_bytes {}, minus {CHUNK_FRAME_BYTES})",
                    self.transfer_chunk_bytes, raft.max_entry_bytes, max_message_bytes
                ),
            });
        }
        if self.machine.store.disk.is_some() != self.disk_dir.is_some() {
            return Err(StartError::BadConfig {
                detail: format!(
                    "group {}: a disk tier needs both its settings (machine.store.disk: {}) \
                     and a directory (disk_dir: {})",
                    self.gid,
                    self.machine.store.disk.is_some(),
                    self.disk_dir.is_some()
                ),
            });
        }
        if let Some(disk) = self.machine.store.disk
            && (disk.capacity_bytes == 0 || disk.segment_bytes == 0)
        {
            return Err(StartError::BadConfig {
                detail: format!(
                    "group {}: disk capacity_bytes ({}) and segment_bytes ({}) must be positive",
                    self.gid, disk.capacity_bytes, disk.segment_bytes
                ),
            });
        }
        Ok(())
    }
}

/// How many blocked clients a write may serve: one per element a push or
/// `ZADD` adds, one for any other write (a move into the key, a type change
/// that a waiter must see as WRONGTYPE, ...).
fn waiters_served(op: &Op) -> usize {
    match op {
        Op::List {
            op: api::ListOp::Push { elements, .. },
            ..
        } => elements.len().max(1),
        Op::ZSet {
            op: api::ZSetOp::Add { entries, .. },
            ..
        } => entries.len().max(1),
        _ => 1,
    }
}

/// Blocked clients one replica holds at once, by default.
pub const DEFAULT_MAX_WAITERS: usize = 10_000;
/// Blocked clients on one key, by default.
pub const DEFAULT_MAX_WAITERS_PER_KEY: usize = 1_000;
/// The longest one [`WaitKeys`] waits; a caller that wants longer asks
/// again (and so re-finds the leader, and the shard's owner, each time).
pub const MAX_WAIT_MS: u64 = 10_000;
/// How often a waiting [`WaitKeys`] checks that this replica still leads;
/// a leader that stepped down answers its waiters `WrongLeader` then.
const WAIT_LEADERSHIP_CHECK: Duration = Duration::from_millis(50);
/// The longest a write waits on the write fence: a lagging poller loses
/// its lease after `MAX_ACK_WAIT`, and the lease then runs out.
const FENCE_WAIT_MAX: Duration = Duration::from_millis(
    MAX_ACK_WAIT.as_millis() as u64 + POLLER_LEASE.as_millis() as u64 + 1_000,
);
/// Most markers one poll's admission writes (two suffice: one may land
/// before an off marker already on its way).
const MAX_MARKER_ROUNDS: usize = 4;
/// How often the leader looks whether its `PollerLeases` marker can be
/// retired.
const LEASE_RETIRE_CHECK: Duration = Duration::from_millis(500);

/// How often a replica looks whether, as leader, it has its store capacity
/// (or policy revision) to write. Short: a leader proposes no client write
/// until a capacity is logged.
const CAPACITY_CHECK: Duration = Duration::from_millis(50);

/// The smallest message limit a replica accepts.
pub const MIN_MESSAGE_BYTES: usize = 16 << 10;

/// A piece of a moving shard by default: a quarter of labrpc's message
/// limit, well under Raft's 15 MiB entry bound.
pub const DEFAULT_TRANSFER_CHUNK_BYTES: u64 = 4 << 20;

/// Counters a test or an operator reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardServerStatus {
    pub config_num: u64,
    pub shard_states: std::collections::BTreeMap<usize, crate::ShardState>,
    pub stored_bytes: u64,
    /// Every shard this replica's group waits for (a shard `Pulling`).
    pub waiting: Vec<ShardWait>,
    /// Held shards installed empty because their donor was declared lost.
    pub lost_shards: std::collections::BTreeMap<usize, LostShard>,
    /// Whether this group itself was declared lost (it serves nothing).
    pub declared_lost: bool,
    pub rsm: RsmStatus,
}

/// A shard the group waits for, as status shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardWait {
    pub shard: usize,
    /// The donor group that must hand it over.
    pub waiting_on_group: Gid,
    /// The configuration whose migration is waiting.
    pub waiting_since_config: u64,
    /// How long it has waited, in the group's log time (advanced by this
    /// replica's clock since the last entry it applied, so an idle,
    /// blocked group still counts up).
    pub waiting_for_ms: u64,
}

/// One running replica. Cheap to clone.
#[derive(Clone)]
pub struct ShardServer {
    rsm: Rsm<ShardMachine>,
    config: Arc<ShardServerConfig>,
    peers: labrpc::Client,
    exports: Arc<Exports>,
    listener: labrpc::SharedServer,
    /// Pulls and deletes refused because the asker is not the group the
    /// configuration names ([`MigrationError::WrongReceiver`]).
    migration_refused: Arc<AtomicU64>,
    /// Shard bytes this replica handed to pulling groups, and stored from
    /// donors (as the pulling leader, once the piece committed): see
    /// [`ShardServer::migration_bytes`].
    migration_bytes_sent: Arc<AtomicU64>,
    migration_bytes_received: Arc<AtomicU64>,
    /// This replica's estimate of the group's log time now (see
    /// [`LogTimeAnchor`]).
    log_time: Arc<std::sync::Mutex<LogTimeAnchor>>,
    /// Clients waiting for keys ([`WaitKeys`]), woken by the writes this
    /// replica applies as leader.
    key_watch: Arc<KeyWatch>,
    /// The keys this replica's applied writes changed ([`WatchChanges`]).
    changes: Arc<ChangeFeed>,
    /// The pollers' leases and cursors; writes wait on it.
    fence: Arc<WriteFence>,
    /// Held while proposing a `PollerLeases` marker, so that this
    /// leader's markers reach Raft in the order they were decided.
    marker_proposals: Arc<tokio::sync::Mutex<()>>,
}

/// The group's log time advances only when an entry applies; a blocked,
/// idle group applies nothing. So a replica keeps the log time it last saw
/// change and the instant (the runtime seam's clock) it saw it, and counts
/// on from there.
#[derive(Clone, Copy, Debug)]
struct LogTimeAnchor {
    log_time_ms: u64,
    seen_at: tokio::time::Instant,
}

impl LogTimeAnchor {
    /// The log time now, given the latest applied log time.
    fn now_ms(&mut self, applied_log_time_ms: u64) -> u64 {
        let now = labrpc::runtime::now();
        if applied_log_time_ms != self.log_time_ms {
            self.log_time_ms = applied_log_time_ms;
            self.seen_at = now;
        }
        let elapsed_ms = u64::try_from(now.saturating_duration_since(self.seen_at).as_millis())
            .unwrap_or(u64::MAX);
        self.log_time_ms.saturating_add(elapsed_ms)
    }
}

/// Why a replica did not start (one type for the three servers).
pub use rsm::StartError;

impl ShardServer {
    /// Starts Raft and the apply task (restoring the stored snapshot), the
    /// labrpc server on `peer_addrs[me]` and the background tasks.
    pub async fn start<S: Storage + 'static, C: ConfigSource>(
        config: ShardServerConfig,
        controller: C,
        storage: S,
    ) -> Result<ShardServer, StartError> {
        config.check()?;
        let machine = match &config.disk_dir {
            None => ShardMachine::new(config.gid, config.shard_count, config.machine),
            Some(directory) => {
                let placement = DiskPlacement::open(directory)
                    .map_err(|detail| StartError::BadConfig { detail })?;
                ShardMachine::with_disk(config.gid, config.shard_count, config.machine, placement)
            }
        };
        let changes = Arc::new(ChangeFeed::default());
        let feed = Arc::clone(&changes);
        // A stored snapshot restored at start is told to the hook with its
        // marker (`PollerLeases` as of the snapshot); an empty log means no
        // poller ever polled.
        let fence = Arc::new(WriteFence::new(true));
        let fence_hook = Arc::clone(&fence);
        let hook: rsm::AppliedHook<ShardMachine> = Arc::new(move |applied| {
            match &applied {
                Applied::Restored { machine, .. } => {
                    fence_hook.update(|core| core.on_restored(machine.pollers_may_exist()));
                }
                Applied::Command {
                    command: GroupCommand::PollerLeases { may_exist },
                    ..
                } => fence_hook.update(|core| core.on_marker(*may_exist)),
                Applied::Command { .. } => {}
            }
            feed.on_applied(applied);
        });
        let replica = rsm::RsmConfig {
            group_tag: config.gid,
            ..config.replica.clone()
        };
        let rsm = Rsm::start_with_hook(replica, machine, storage, Some(hook)).await?;
        let peers = labrpc::Client::new(labrpc::ClientConfig {
            timeout: config.peer_rpc_timeout,
            max_message_bytes: config.replica.max_message_bytes,
            security: config.replica.peer_security.clone(),
            ..labrpc::ClientConfig::default()
        });
        let server = ShardServer {
            rsm,
            exports: Arc::new(Exports::new(config.shard_count)),
            migration_refused: Arc::new(AtomicU64::new(0)),
            migration_bytes_sent: Arc::new(AtomicU64::new(0)),
            migration_bytes_received: Arc::new(AtomicU64::new(0)),
            log_time: Arc::new(std::sync::Mutex::new(LogTimeAnchor {
                log_time_ms: 0,
                seen_at: labrpc::runtime::now(),
            })),
            key_watch: Arc::new(KeyWatch::new(
                config.max_waiters,
                config.max_waiters_per_key,
            )),
            changes,
            fence,
            marker_proposals: Arc::new(tokio::sync::Mutex::new(())),
            config: Arc::new(config),
            peers,
            listener: labrpc::SharedServer::default(),
        };
        let (client_server, anywhere_server, pull_server, delete_server) = (
            server.clone(),
            server.clone(),
            server.clone(),
            server.clone(),
        );
        let (wait_server, changes_server) = (server.clone(), server.clone());
        let batch_server = server.clone();
        let add_service = |router: &mut labrpc::Router| {
            router.add::<ShardKvRequest, _, _>(move |request: ShardKvRequest| {
                let server = client_server.clone();
                async move { server.handle_client(request).await }
            });
            router.add::<ShardKvBatch, _, _>(move |batch: ShardKvBatch| {
                let server = batch_server.clone();
                async move { server.handle_batch(batch).await }
            });
            router.add::<ReadAnywhere, _, _>(move |request: ReadAnywhere| {
                let server = anywhere_server.clone();
                async move { server.handle_read_anywhere(request).await }
            });
            router.add::<PullChunk, _, _>(move |request: PullChunk| {
                let server = pull_server.clone();
                async move { server.handle_pull_chunk(&request) }
            });
            router.add::<DeleteShards, _, _>(move |request: DeleteShards| {
                let server = delete_server.clone();
                async move { server.handle_delete(request).await }
            });
            router.add::<WaitKeys, _, _>(move |request: WaitKeys| {
                let server = wait_server.clone();
                async move { server.handle_wait(request).await }
            });
            router.add::<WatchChanges, _, _>(move |request: WatchChanges| {
                let server = changes_server.clone();
                async move { server.handle_watch_changes(request).await }
            });
        };
        let listener = server.rsm.serve(add_service).await?;
        server.listener.set(listener);
        tokio::spawn(server.clone().run_config_poller(controller));
        tokio::spawn(server.clone().run_puller());
        tokio::spawn(server.clone().run_confirmer());
        if server.config.write_fence {
            tokio::spawn(server.clone().run_lease_retirer());
        }
        tokio::spawn(server.clone().run_store_keeper());
        Ok(server)
    }

    pub fn raft(&self) -> &RaftNode {
        self.rsm.raft()
    }

    /// The replicated state machine this server runs (membership changes
    /// go through it: `Rsm::change_membership`).
    pub fn rsm(&self) -> &Rsm<ShardMachine> {
        &self.rsm
    }

    pub fn gid(&self) -> Gid {
        self.config.gid
    }

    pub fn status(&self) -> ShardServerStatus {
        let rsm = self.rsm.status();
        let status = self.rsm.with_machine(|machine| ShardServerStatus {
            config_num: machine.config().num,
            shard_states: machine.shard_states(),
            stored_bytes: machine.stored_bytes(),
            waiting: Vec::new(),
            lost_shards: machine.lost_shards(),
            declared_lost: machine.is_declared_lost(),
            rsm,
        });
        ShardServerStatus {
            waiting: self.waiting(),
            ..status
        }
    }

    /// The shards this replica's group waits for, with their donors and
    /// how long they have waited.
    pub fn waiting(&self) -> Vec<ShardWait> {
        let (waits, applied_ms) = self
            .rsm
            .with_machine(|machine| (machine.pull_waits(), machine.now_ms()));
        let now_ms = self
            .log_time
            .lock()
            .expect("log time lock")
            .now_ms(applied_ms);
        waits
            .into_iter()
            .map(|wait| ShardWait {
                shard: wait.shard,
                waiting_on_group: wait.from,
                waiting_since_config: wait.config_num,
                waiting_for_ms: now_ms.saturating_sub(wait.since_ms),
            })
            .collect()
    }

    /// Runs `look` on this replica's machine as applied so far (tests).
    pub fn with_machine<R>(&self, look: impl FnOnce(&ShardMachine) -> R) -> R {
        self.rsm.with_machine(look)
    }

    /// Stops Raft; handlers answer `WrongLeader` and the tasks end.
    pub fn kill(&self) {
        self.rsm.kill();
    }

    /// [`ShardServer::kill`], then stops serving peers and clerks and waits
    /// until the port is released (so that the replica can start again in
    /// this process).
    pub async fn shutdown(&self) -> Result<(), String> {
        self.kill();
        self.listener.shutdown().await
    }

    fn is_killed(&self) -> bool {
        self.rsm.raft().is_killed()
    }

    fn is_leader(&self) -> bool {
        self.rsm.raft().state().1
    }

    /// Serves one clerk request. Ownership is decided when the entry
    /// applies (a stale leader's view must not turn a clerk away), so the
    /// precheck only refuses bad input, answers recorded retries, and
    /// holds writes back until the group's store size is logged.
    pub async fn handle_client(&self, request: ShardKvRequest) -> Reply {
        let (recorded, capacity_logged) = self.rsm.with_machine(|machine| {
            machine.limits().limits().check(&request.op)?;
            let recorded = machine.recorded_reply(request.client_id, request.seq, &request.op);
            Ok::<_, api::Error>((recorded, machine.capacity_logged()))
        })?;
        if let Some(reply) = recorded {
            if reply.is_ok() && !request.op.is_read() {
                // A retry of a write applied before, maybe under a leader
                // that fell before its fence opened: fenced again here.
                // (Boxed, as `submit_client` is below.)
                Box::pin(self.fence_recorded_write()).await?;
            }
            return reply;
        }
        if !capacity_logged && !request.op.is_read() {
            // The group's store size is not in its log yet (the capacity
            // keeper writes it moments after an election): no write goes
            // in before it, so no replica evicts at a size of its own.
            // Nothing is proposed: the leader's client backs off and
            // retries; another replica's looks for the leader.
            let status = self.rsm.raft().status();
            return Err(if status.is_leader {
                api::Error::Busy { pending: 0 }
            } else {
                api::Error::WrongLeader {
                    leader_hint: status.leader_id,
                }
            });
        }
        if request.op.is_read() && self.config.read_index_reads {
            // Ownership is checked at read time, against the configuration
            // this leader has applied through the read index.
            return self
                .rsm
                .read_reply(|machine, context| machine.read(&request.op, context.now_ms))
                .await;
        }
        // Boxed: its future (a proposal, then the write fence) is several
        // times a read's, and every caller's future would carry that size
        // and copy it at each await, reads included.
        Box::pin(self.submit_client(request)).await
    }

    /// A client command through the log (every write; a read without
    /// ReadIndex reads): proposed, applied, then fenced if it wrote.
    async fn submit_client(&self, request: ShardKvRequest) -> Reply {
        // The keys to wake once applied, copied only if someone waits, and
        // how many waiters the write may serve.
        let (written_keys, wakes): (Vec<Vec<u8>>, usize) = if self.key_watch.waiting() > 0 {
            (
                request.op.keys().map(<[u8]>::to_vec).collect(),
                waiters_served(&request.op),
            )
        } else {
            (Vec::new(), 0)
        };
        let write = !request.op.is_read();
        let command = GroupCommand::Client {
            client_id: request.client_id,
            seq: request.seq,
            op: request.op,
        };
        let gid = self.config.gid;
        let (output, place) = self.rsm.submit_placed(command).await?;
        let reply = match output {
            GroupOutput::Client(reply) => reply,
            other => panic!("group {gid}: a client command answered {other:?}"),
        };
        if reply.is_ok() {
            // Applied here as leader: wake who waits on its keys.
            self.key_watch
                .notify(written_keys.iter().map(Vec::as_slice), wakes);
            // A refused write changed nothing, a read (through the log)
            // nothing at all: no need to wait.
            if write {
                self.fence_write(place).await?;
            }
        }
        reply
    }

    /// Serves each request of `batch` as [`ShardServer::handle_client`]
    /// would alone, all at once (so their proposals share Raft's batches),
    /// and answers their replies in order.
    pub async fn handle_batch(&self, batch: ShardKvBatch) -> Result<Vec<Reply>, api::Error> {
        let count = batch.requests.len();
        if count > MAX_BATCH_REQUESTS {
            return Err(api::Error::TooManyElements {
                count: count as u64,
                limit: MAX_BATCH_REQUESTS as u64,
            });
        }
        let mut traces = batch.traces.into_iter();
        let served = batch.requests.into_iter().map(|request| {
            let context = traces.next().flatten().and_then(BatchTrace::context);
            let served = self.handle_client(request);
            async move {
                match context {
                    Some(context) => labrpc::trace::scope(context, served).await,
                    None => served.await,
                }
            }
        });
        Ok(futures::future::join_all(served).await)
    }

    /// Waits until the write at `place` may be answered (see the
    /// `write_fence` module): every poller with a lease here handed it
    /// on, or lost its lease. `WrongLeader` if this replica stops leading
    /// in the write's term meanwhile (the writer retries; the retry is
    /// answered from the exactly-once record, fenced by the new leader).
    async fn fence_write(&self, place: LogPlace) -> Result<(), api::Error> {
        if !self.config.write_fence {
            return Ok(());
        }
        let deadline = labrpc::runtime::now() + FENCE_WAIT_MAX;
        if self.fence.with(|core| core.office_undecided(place.term)) {
            // The first write check of a term decides from the markers of
            // earlier terms: applied once an entry of this term is (an
            // early answer may come before its entry applied).
            self.rsm.wait_applied(place.index, deadline).await?;
        }
        loop {
            let polled = self.fence.polled();
            tokio::pin!(polled);
            polled.as_mut().enable();
            let status = self.rsm.raft().status();
            if !status.is_leader || status.term != place.term || self.is_killed() {
                return Err(api::Error::WrongLeader {
                    leader_hint: status.leader_id,
                });
            }
            let now = labrpc::runtime::now();
            let recheck_at = match self
                .fence
                .with(|core| core.check(place.term, place.index, now))
            {
                FenceCheck::Open => return Ok(()),
                FenceCheck::Closed { recheck_at } => recheck_at,
            };
            if now >= deadline {
                return Err(rsm::SubmitError::Timeout.into());
            }
            let wake_at = recheck_at.min(deadline).min(now + WAIT_LEADERSHIP_CHECK);
            // Biased (a poll first): a fixed polling order, so a run
            // replays from its seed under the simulator.
            tokio::select! {
                biased;
                () = &mut polled => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    /// The fence for a write answered from the exactly-once record: its
    /// index is unknown here but at most what this leader has applied
    /// through a read index (which also applies an entry of its term, as
    /// the fence's first check of a term needs).
    async fn fence_recorded_write(&self) -> Result<(), api::Error> {
        if !self.config.write_fence {
            return Ok(());
        }
        let status = self.rsm.raft().status();
        if !status.is_leader {
            return Err(api::Error::WrongLeader {
                leader_hint: status.leader_id,
            });
        }
        let index = self.rsm.read(|_, context| context.index).await?;
        self.fence_write(LogPlace {
            index,
            term: status.term,
        })
        .await
    }

    /// Serves a read on this replica, leader or follower (see
    /// [`ReadAnywhere`]); ownership is checked against the configuration
    /// applied through the grant, as on the leader.
    pub async fn handle_read_anywhere(&self, request: ReadAnywhere) -> Reply {
        if !request.op.is_read() || !self.config.read_index_reads {
            return Err(api::Error::WrongLeader {
                leader_hint: self.rsm.raft().status().leader_id,
            });
        }
        self.rsm
            .with_machine(|machine| machine.limits().limits().check(&request.op))?;
        self.rsm
            .read_within_reply(
                std::time::Duration::from_millis(
                    request.max_staleness_ms.min(crate::rpc::MAX_STALENESS_MS),
                ),
                |machine, context| machine.read(&request.op, context.now_ms),
            )
            .await
    }

    /// Waits until one of the request's keys is present or written here,
    /// or its wait passes (see [`WaitKeys`] and the `key_watch` module).
    /// Only the leader waits: writes are applied (and so seen) on every
    /// replica, but only the leader's `handle_client` wakes watches.
    pub async fn handle_wait(&self, request: WaitKeys) -> Reply {
        let Some(first) = request.keys.first() else {
            return Ok(Outcome::Applied(true));
        };
        let status = self.rsm.raft().status();
        if !status.is_leader {
            return Err(api::Error::WrongLeader {
                leader_hint: status.leader_id,
            });
        }
        let watch = self
            .key_watch
            .watch(&request.keys)
            .map_err(|_| api::Error::Busy {
                pending: self.key_watch.waiting() as u64,
            })?;
        // Registered first, then looked: a write applied before this look
        // is seen by it, one applied after wakes the watch.
        let present = self.rsm.with_machine(|machine| {
            request.keys.iter().try_fold(false, |found, key| {
                if found {
                    return Ok(true);
                }
                let shape = Op::Type { key: key.clone() };
                // Keys of several shards: `read` of the first key's shard
                // answers for it; the others must share it.
                if key != first
                    && crate::key_to_shard(key, machine.shard_count())
                        != crate::key_to_shard(first, machine.shard_count())
                {
                    return Err(api::Error::CrossShard);
                }
                Ok(matches!(machine.read(&shape, 0)?, Outcome::Value(Some(_))))
            })
        })?;
        if present {
            return Ok(Outcome::Applied(true));
        }
        let wait = Duration::from_millis(request.wait_ms.min(MAX_WAIT_MS));
        let deadline = labrpc::runtime::now() + wait;
        loop {
            let check = deadline.min(labrpc::runtime::now() + WAIT_LEADERSHIP_CHECK);
            // Biased (a wake first): a fixed polling order, so a run
            // replays from its seed under the simulator.
            tokio::select! {
                biased;
                () = watch.changed() => return Ok(Outcome::Applied(true)),
                () = tokio::time::sleep_until(check) => {}
            }
            if labrpc::runtime::now() >= deadline {
                return Ok(Outcome::Applied(false));
            }
            let status = self.rsm.raft().status();
            if !status.is_leader || self.is_killed() {
                return Err(api::Error::WrongLeader {
                    leader_hint: status.leader_id,
                });
            }
        }
    }

    /// Answers the keys written after `request.after` as soon as one is
    /// (or the wait passes), on the leader only; see [`WatchChanges`] and
    /// the `change_feed` module. The answer is read through the read index,
    /// so every write this group acknowledged before it is covered.
    pub async fn handle_watch_changes(&self, request: WatchChanges) -> Result<Changes, api::Error> {
        let status = self.rsm.raft().status();
        if !status.is_leader {
            return Err(api::Error::WrongLeader {
                leader_hint: status.leader_id,
            });
        }
        self.changes.arm();
        let wait = Duration::from_millis(request.wait_ms.min(MAX_WAIT_MS));
        let deadline = labrpc::runtime::now() + wait;
        if self.config.write_fence {
            self.admit_poller(&request, status.term, deadline).await?;
        }
        loop {
            let changed = self.changes.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.changes.has_news(request.after) || labrpc::runtime::now() >= deadline {
                break;
            }
            let check = deadline.min(labrpc::runtime::now() + WAIT_LEADERSHIP_CHECK);
            // Biased (news first): a fixed polling order, so a run replays
            // from its seed under the simulator.
            tokio::select! {
                biased;
                () = &mut changed => {}
                () = tokio::time::sleep_until(check) => {}
            }
            let status = self.rsm.raft().status();
            if !status.is_leader || self.is_killed() {
                return Err(api::Error::WrongLeader {
                    leader_hint: status.leader_id,
                });
            }
        }
        let (changes, fence) = (&self.changes, &self.fence);
        let fenced = self.config.write_fence;
        let (answer, may_answer) = self
            .rsm
            .read(|_, context| {
                // Under the replica's lock, markers applied through the
                // read index: an off marker of an earlier term that
                // applied since the admission withholds the answer.
                let may_answer = !fenced || fence.with(|core| core.may_answer());
                (changes.read(request.after, context.index), may_answer)
            })
            .await
            .map_err(api::Error::from)?;
        if !may_answer {
            return Err(api::Error::Busy { pending: 0 });
        }
        Ok(answer)
    }

    /// Gives the poller a lease (its cursor says what it handed on) and
    /// makes sure the log says pollers may exist before it is answered
    /// (see the `write_fence` module). `Busy` if it is refused a lease.
    async fn admit_poller(
        &self,
        request: &WatchChanges,
        term: u64,
        deadline: tokio::time::Instant,
    ) -> Result<(), api::Error> {
        // Bounded: each round writes a marker or ends.
        for _ in 0..MAX_MARKER_ROUNDS {
            let now = labrpc::runtime::now();
            let admission = self
                .fence
                .update(|core| core.on_poll(term, request.poller, request.after, now));
            match admission {
                Admission::Answer => return Ok(()),
                Admission::Refused(refusal) => {
                    tracing::debug!(gid = self.config.gid, poller = request.poller, %refusal, "poll refused");
                    return Err(api::Error::Busy {
                        pending: MAX_POLLERS as u64,
                    });
                }
                Admission::WriteMarker => {
                    if labrpc::runtime::now() >= deadline {
                        return Err(rsm::SubmitError::Timeout.into());
                    }
                    self.propose_marker(true).await?;
                }
            }
        }
        Err(rsm::SubmitError::Timeout.into())
    }

    /// Proposes `PollerLeases{may_exist}` and waits for it to apply. One at
    /// a time, so a leader's markers reach Raft in the order decided.
    async fn propose_marker(&self, may_exist: bool) -> Result<(), rsm::SubmitError> {
        let _one_at_a_time = self.marker_proposals.lock().await;
        self.rsm
            .submit(GroupCommand::PollerLeases { may_exist })
            .await
            .map(|_| ())
    }

    /// On the leader: once no poller has held a lease for a lease's length
    /// (and it has led that long), writes `PollerLeases{false}`, so that
    /// the next leader need not hold writes back after a failover.
    async fn run_lease_retirer(self) {
        while !self.is_killed() {
            tokio::time::sleep(LEASE_RETIRE_CHECK).await;
            let status = self.rsm.raft().status();
            if !status.is_leader {
                continue;
            }
            let now = labrpc::runtime::now();
            if !self.fence.with(|core| core.retire(status.term, now)) {
                continue;
            }
            match self.propose_marker(false).await {
                Ok(()) => {}
                // Refused before Raft placed it: it will never apply.
                Err(rsm::SubmitError::Busy { .. }) => {
                    self.fence.update(FenceCore::marker_not_placed);
                }
                // Placed maybe: it applies (clearing the flag) or a new
                // term does.
                Err(error) => tracing::debug!(
                    gid = self.config.gid,
                    "poller-lease marker not applied yet: {error}"
                ),
            }
        }
    }

    /// Keeps the group's log up to date with what its stores must share:
    /// every `CAPACITY_CHECK`, [`ShardServer::keep_store_capacity`] and
    /// [`ShardServer::keep_policy_revision`].
    async fn run_store_keeper(self) {
        let mut warned_for = None;
        while !self.is_killed() {
            tokio::time::sleep(CAPACITY_CHECK).await;
            self.keep_store_capacity(&mut warned_for).await;
            self.keep_policy_revision().await;
        }
    }

    /// On the leader: writes this node's store capacity
    /// ([`GroupCommand::SetStoreCapacity`]) when the group's log has none
    /// yet or another, so that the group's stores have the size its log
    /// says, whatever each node's file says. A follower configured
    /// otherwise applies the leader's and logs a warning (once per size:
    /// `warned_for`); the node that leads next writes its own, so a
    /// cluster whose nodes disagree changes size with its leader (loudly)
    /// but never diverges. A size too small for a shard arriving in pieces
    /// waits until it is in (the machine would refuse it).
    async fn keep_store_capacity(&self, warned_for: &mut Option<u64>) {
        let mine = self.config.machine.store.capacity_bytes;
        // The first size written is at least what shards already
        // arriving in pieces need (pieces held in a snapshot from
        // before sizes were logged: they complete only once one is).
        let (logged, group, size, acceptable) = self.rsm.with_machine(|machine| {
            let logged = machine.capacity_logged();
            let size = if logged {
                mine
            } else {
                mine.max(machine.smallest_store_capacity_for_arrivals())
            };
            let acceptable = machine.accepts_store_capacity(size);
            (logged, machine.store_capacity_bytes(), size, acceptable)
        });
        if logged && group != mine && *warned_for != Some(group) {
            tracing::warn!(
                gid = self.config.gid,
                group_capacity_bytes = group,
                node_capacity_bytes = mine,
                "this group's stores have the size its leader wrote, not this node's \
                 shard_capacity_bytes; set the same on every node"
            );
            *warned_for = Some(group);
        }
        let wanted = !logged || group != size;
        if !wanted || !acceptable || !self.rsm.raft().status().is_leader {
            return;
        }
        let command = GroupCommand::SetStoreCapacity {
            capacity_bytes: size,
        };
        if let Err(error) = self.rsm.submit(command).await {
            tracing::debug!(
                gid = self.config.gid,
                "store capacity not written yet: {error}"
            );
        }
    }

    /// On the leader: writes this build's latest policy revision
    /// ([`GroupCommand::SetPolicyRevision`]) when the group's log has an
    /// older one, so every replica switches its stores' eviction at one
    /// index (an upgrade alone would switch each at its own).
    async fn keep_policy_revision(&self) {
        let logged = self.rsm.with_machine(|machine| machine.policy_revision());
        if logged >= PolicyRevision::LATEST || !self.rsm.raft().status().is_leader {
            return;
        }
        let command = GroupCommand::SetPolicyRevision {
            revision: PolicyRevision::LATEST.number(),
        };
        if let Err(error) = self.rsm.submit(command).await {
            tracing::debug!(
                gid = self.config.gid,
                "policy revision not written yet: {error}"
            );
        }
    }

    /// Clients blocked on keys here now (a node exports it as a metric).
    pub fn waiters(&self) -> usize {
        self.key_watch.waiting()
    }

    /// Hands over a piece of a shard offered in the requested
    /// configuration. Any replica that applied that configuration has the
    /// frozen data; each replica encodes it once (see `Exports`).
    pub fn handle_pull_chunk(&self, request: &PullChunk) -> Result<ShardChunk, MigrationError> {
        self.check_sender("pull", request.from_gid)?;
        let export = self
            .exports
            .get(
                &self.rsm,
                request.config_num,
                request.shard,
                request.from_gid,
            )
            .inspect_err(|error| self.note_refusal("pull", error))?;
        let total_bytes = export.bytes.len() as u64;
        if request.offset > total_bytes {
            return Err(MigrationError::BadOffset {
                shard: request.shard,
                offset: request.offset,
                total_bytes,
            });
        }
        let max_bytes = request
            .max_bytes
            .min(self.config.transfer_chunk_bytes)
            .max(1);
        let chunk = ShardChunk::cut(
            request.shard,
            &export.bytes,
            export.crc32,
            request.offset,
            max_bytes,
        );
        self.migration_bytes_sent
            .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
        Ok(chunk)
    }

    /// Deletes shards the asking group confirms it holds (through the log,
    /// so every replica deletes at the same point).
    pub async fn handle_delete(&self, request: DeleteShards) -> Result<(), MigrationError> {
        self.check_sender("delete", request.from_gid)?;
        let command = GroupCommand::DeleteShards {
            config_num: request.config_num,
            shards: request.shards.clone(),
            from_gid: request.from_gid,
        };
        let gid = self.config.gid;
        self.rsm
            .submit_reply(command, |output| match output {
                GroupOutput::Deleted(result) => {
                    match &result {
                        Ok(()) => self.exports.forget(request.config_num, &request.shards),
                        Err(error) => self.note_refusal("delete", error),
                    }
                    result
                }
                other => panic!("group {gid}: a delete answered {other:?}"),
            })
            .await
    }

    /// Refuses (logs and counts) a migration request whose authenticated
    /// sender is not a replica of the group it names, `from_gid`: a
    /// member of one group cannot pull or delete as another.
    fn check_sender(&self, what: &str, from_gid: Gid) -> Result<(), MigrationError> {
        let (Some(membership), Some(node)) = (&self.config.group_membership, labrpc::caller())
        else {
            return Ok(());
        };
        match membership.is_member(from_gid, node) {
            Some(true) => return Ok(()),
            Some(false) => {}
            None => {
                tracing::debug!(
                    gid = self.config.gid,
                    node,
                    from_gid,
                    "{what} from a node this replica's table does not list: checked against the configuration only"
                );
                return Ok(());
            }
        }
        let error = MigrationError::NotGroupMember { from_gid, node };
        self.migration_refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(gid = self.config.gid, %error, "{what} refused");
        Err(error)
    }

    /// Logs and counts a migration request refused because its sender is
    /// not the group the configuration names (other errors are the normal
    /// "not yet" / "already" answers of the protocol).
    fn note_refusal(&self, what: &str, error: &MigrationError) {
        if let MigrationError::WrongReceiver { .. } = error {
            self.migration_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(gid = self.config.gid, %error, "{what} refused");
        }
    }

    /// Migration requests (pulls, deletes) refused since start because the
    /// asking group is not the one the configuration names; a node exports
    /// it as a metric.
    pub fn migration_requests_refused(&self) -> u64 {
        self.migration_refused.load(Ordering::Relaxed)
    }

    /// Shard bytes moved since start, as `(sent, received)`: pieces this
    /// replica handed to pulling groups (a piece asked for twice counts
    /// twice), and pieces it pulled as leader and its group committed. A
    /// node exports both as metrics.
    pub fn migration_bytes(&self) -> (u64, u64) {
        (
            self.migration_bytes_sent.load(Ordering::Relaxed),
            self.migration_bytes_received.load(Ordering::Relaxed),
        )
    }

    /// Proposes an internal command; its outcome is read from the machine
    /// by the next round, so errors only mean "try again later".
    async fn propose(&self, command: GroupCommand) -> Option<GroupOutput> {
        match self.rsm.submit(command).await {
            Ok(output) => Some(output),
            Err(error) => {
                tracing::debug!(
                    gid = self.config.gid,
                    "internal proposal not applied: {error}"
                );
                None
            }
        }
    }
}
