//! Any node answers any key: the [`Forwarder`] takes one operation from a
//! front end and gets it applied by the group that owns the key.
//!
//! ```text
//!   op(key) ─► shard = key_to_shard(key) ─► gid = routing.shards[shard]
//!     this node hosts gid's leader?  yes ─► submit to the local replica
//!                                    no  ─► one labrpc call to gid's leader
//!                                           (a small command in a batch with
//!                                           the others sent it at the same
//!                                           moment, `hop_batch`; alone with
//!                                           leader finding if that fails)
//!     WrongGroup / no answer ─► re-read the configuration, back off, retry
//!   all of it bounded by the request deadline
//!
//!   a read any replica may answer (ReadFrom::AnyReplica), first:
//!     this node hosts a replica of gid (any role)? ─► read it there
//!     else ─► ReadAnywhere to gid's replicas in turn (spread; one that
//!             failed such a read in the last 2 s is passed over)
//!     not served (no leader known, not caught up) ─► the leader path above
//! ```
//!
//! **Bounded forwarding**: the node that receives a forwarded request is a
//! group replica (`ShardServer::handle_client`), which applies it or answers
//! an error and never forwards again, so a request makes at most one hop
//! between nodes per attempt, and the attempts end at the request deadline.
//!
//! **Exactly once**: a write carries a session `(client_id, seq)`: the
//! caller's, or one from this node's pool (one write at a time per pooled
//! session). Every retry of the write, in whatever group, carries the same
//! pair, and the shard's exactly-once records move with the shard.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use api::Error;
use rsm::group_client::{
    ClientSession, GroupCallError, GroupClient, GroupClientConfig, GroupClients, Verdict,
};
use shardctrler::{Config, ControllerClient, Gid};
use shardkv::{Op, Outcome, ShardKvRequest, ShardServer};
use tokio::sync::Semaphore;

use crate::hop_batch::{HopAnswer, HopBatches};
use crate::near_cache::NodeNearCache;
use crate::read_cache::{Flight, ReadCache};
use crate::replica_turns::ReplicaTurns;
use tokio::time::Instant;
use tracing::Instrument;

use crate::metrics::Metrics;

/// Sessions a node keeps for writes that come without one.
pub const MAX_POOLED_SESSIONS: usize = 256;

/// How a forwarded operation ended without an outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// Bad input the front end or the forwarder refused (no such shard);
    /// nothing changed.
    #[error("{0}")]
    InvalidArgument(String),
    /// Bad input a replica refused: always one of [`Error::TooLarge`],
    /// [`Error::ZeroTtl`], [`Error::TooManyElements`]; nothing changed.
    #[error("{0}")]
    OverLimit(Error),
    /// The operation does not fit what the key holds (an increment of a
    /// value that is not a number, an overflow); nothing changed. Always
    /// one of [`Error::NotAnInteger`], [`Error::IncrementOverflow`],
    /// [`Error::NotAFloat`], [`Error::NotFinite`], [`Error::WrongType`],
    /// the hash errors, [`Error::NoSuchKey`], [`Error::CrossShard`], so
    /// front ends can answer each in their own words.
    #[error("{0}")]
    Refused(Error),
    /// No group applied it before the deadline; a write may still apply.
    #[error(
        "no answer from the owning group within {deadline_ms} ms after {attempts} attempts \
         (a write may have applied)"
    )]
    Timeout { deadline_ms: u64, attempts: u64 },
    /// The session's seq is older than its latest write.
    #[error("session seq {seq} is older than the session's latest write ({latest})")]
    StaleSession { seq: u64, latest: u64 },
    /// The node is stopping.
    #[error("the node is shutting down")]
    ShuttingDown,
}

/// Routes operations to their group's leader. Shared by every front end of
/// a node; usable from many tasks at once.
pub struct Forwarder {
    controller: shardctrler::Clerk,
    local: Option<ShardServer>,
    request_timeout: Duration,
    /// Deadline of one call to one replica.
    rpc_timeout: Duration,
    /// Shared, not copied, by each request (swapped whole on a refresh).
    routing: Mutex<std::sync::Arc<Config>>,
    /// One leader-finding client per group, over the connections the
    /// controller's clerk uses too.
    groups: GroupClients,
    idle_sessions: Mutex<Vec<ClientSession>>,
    /// Turns through a group's replicas for reads any replica may serve.
    replica_turns: ReplicaTurns,
    /// Answers kept for bounded reads of keys this node forwards.
    /// Made at the first bounded read it serves (most nodes never see one:
    /// no memory until then); `read_cache_bytes` 0: never.
    read_cache: std::sync::OnceLock<Option<ReadCache>>,
    read_cache_bytes: u64,
    /// Answers kept for plain GETs of keys this node forwards, invalidated
    /// by their groups (see [`crate::near_cache`]); set only by
    /// [`Forwarder::enable_near_cache`].
    near_cache: std::sync::OnceLock<std::sync::Arc<NodeNearCache>>,
    session_permits: Semaphore,
    /// The last configuration refresh, to avoid a storm of queries when
    /// many requests miss at once.
    refreshed_at: Mutex<Option<Instant>>,
    /// When the controller last answered a refresh.
    confirmed_at: Mutex<Option<Instant>>,
    /// Set only by [`Forwarder::enable_unsafe_ack_before_commit`].
    unsafe_ack: std::sync::OnceLock<UnsafeAck>,
    /// Commands forwarded to a group at the same moment share one call.
    hops: HopBatches,
    metrics: std::sync::Arc<Metrics>,
}

/// The deliberately broken mode: puts and appends are answered before they
/// commit (see [`Forwarder::enable_unsafe_ack_before_commit`]).
struct UnsafeAck {
    forwarder: std::sync::Weak<Forwarder>,
    /// Bounds the writes still running after their early answer.
    in_flight: std::sync::Arc<Semaphore>,
}

/// Longest one forwarded try to another group may take before the routing
/// is re-read and the request tried again (same session and seq: applied
/// at most once).
const REMOTE_TRY_MAX: Duration = Duration::from_secs(1);

/// Longest a read any replica may answer waits on one replica before it
/// goes to the leader (a third of the request's time left, at most this).
const ANYWHERE_TRY_MAX: Duration = Duration::from_millis(500);

/// Most early-answered writes in flight at once (more run normally).
const UNSAFE_ACK_IN_FLIGHT_MAX: usize = 1024;

impl Forwarder {
    pub fn new(
        controller_addrs: Vec<SocketAddr>,
        shard_count: usize,
        local: Option<ShardServer>,
        request_timeout: Duration,
        security: labrpc::PeerSecurity,
    ) -> Forwarder {
        let rpc_timeout = Duration::from_millis(500).min(request_timeout);
        let peers = rsm::group_client::rpc_client(rpc_timeout, security.clone());
        let controller = shardctrler::Clerk::with_client(
            controller_addrs,
            shardctrler::ClerkConfig {
                rpc_timeout,
                operation_deadline: Duration::from_secs(2).min(request_timeout),
                security: security.clone(),
                ..shardctrler::ClerkConfig::default()
            },
            peers.clone(),
        );
        Forwarder {
            controller,
            local,
            request_timeout,
            rpc_timeout,
            routing: Mutex::new(std::sync::Arc::new(Config::initial(shard_count))),
            groups: GroupClients::with_client(
                GroupClientConfig {
                    rpc_timeout,
                    operation_deadline: request_timeout,
                    security,
                    ..GroupClientConfig::default()
                },
                peers,
            ),
            idle_sessions: Mutex::new(Vec::new()),
            replica_turns: ReplicaTurns::default(),
            read_cache: std::sync::OnceLock::new(),
            read_cache_bytes: 0,
            near_cache: std::sync::OnceLock::new(),
            session_permits: Semaphore::new(MAX_POOLED_SESSIONS),
            refreshed_at: Mutex::new(None),
            confirmed_at: Mutex::new(None),
            unsafe_ack: std::sync::OnceLock::new(),
            hops: HopBatches::default(),
            metrics: std::sync::Arc::new(Metrics::new()),
        }
    }

    /// Records operations into `metrics` (the node's registry) instead of
    /// a private one.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<Metrics>) -> Forwarder {
        self.metrics = metrics;
        self
    }

    /// Keeps up to `capacity_bytes` of answers for bounded reads of keys
    /// this node forwards (see [`crate::read_cache`]); 0: none.
    pub fn with_read_cache(mut self, capacity_bytes: u64) -> Forwarder {
        self.read_cache_bytes = capacity_bytes;
        self
    }

    /// Keeps up to `capacity_bytes` of answers to plain GETs of keys this
    /// node forwards, invalidated by their groups (see
    /// [`crate::near_cache`]; its feed pollers start now); 0: none.
    pub fn enable_near_cache(self: &std::sync::Arc<Self>, capacity_bytes: u64) {
        if let Some(cache) = NodeNearCache::start(self, capacity_bytes) {
            let _ = self.near_cache.set(cache);
        }
    }

    /// What the near cache holds (`None`: it is off).
    pub fn near_cache_stats(&self) -> Option<cache::near::NearStats> {
        self.near_cache.get().map(|cache| cache.stats())
    }

    /// What the read cache holds now (`None`: it is off).
    pub fn read_cache_stats(&self) -> Option<cache::near::NearStats> {
        self.read_cache.get()?.as_ref().map(ReadCache::stats)
    }

    /// The registry operations are recorded in.
    pub fn metrics(&self) -> &std::sync::Arc<Metrics> {
        &self.metrics
    }

    /// **Breaks safety on purpose** (`unsafe_ack_before_commit = true` in
    /// the node configuration; for the chaos harness's test that it can
    /// catch a broken build, never for real use): a put or append is
    /// answered "done" at once and submitted in the background, so an
    /// acknowledged write may be read stale, overtaken by a later write of
    /// the same session (then refused as stale), or lost.
    pub fn enable_unsafe_ack_before_commit(self: &std::sync::Arc<Self>) {
        let _ = self.unsafe_ack.set(UnsafeAck {
            forwarder: std::sync::Arc::downgrade(self),
            in_flight: std::sync::Arc::new(Semaphore::new(UNSAFE_ACK_IN_FLIGHT_MAX)),
        });
    }

    /// The controller's clerk (admin changes share its connections).
    pub fn controller(&self) -> &shardctrler::Clerk {
        &self.controller
    }

    /// The configuration this node routes by.
    pub fn routing(&self) -> std::sync::Arc<Config> {
        std::sync::Arc::clone(&self.routing.lock().expect("routing lock"))
    }

    /// Reads the latest configuration the controller's leader has applied
    /// (no log entry; at most every 20 ms). A moment's lag costs one more
    /// `WrongGroup` and another refresh.
    pub async fn refresh(&self) {
        {
            let mut refreshed_at = self.refreshed_at.lock().expect("refresh lock");
            if refreshed_at.is_some_and(|at| at.elapsed() < Duration::from_millis(20)) {
                return;
            }
            *refreshed_at = Some(crate::clock::now());
        }
        if let Ok(latest) = self.controller.query_applied(None).await {
            *self.confirmed_at.lock().expect("refresh lock") = Some(crate::clock::now());
            let mut routing = self.routing.lock().expect("routing lock");
            if latest.num > routing.num {
                *routing = std::sync::Arc::new(latest);
            }
        }
    }

    /// [`Forwarder::refresh`], then whether the controller answered within
    /// the last `within` (the configuration in use is that recent).
    pub async fn refresh_confirmed(&self, within: Duration) -> bool {
        self.refresh().await;
        self.confirmed_at
            .lock()
            .expect("refresh lock")
            .is_some_and(|at| at.elapsed() < within)
    }

    /// Stops taking new operations (those waiting for a session fail).
    pub fn close(&self) {
        self.session_permits.close();
        if let Some(near_cache) = self.near_cache.get() {
            near_cache.close();
        }
    }

    /// Applies `op` in the group owning its key. `session`: the caller's
    /// exactly-once identity for a write; `None` takes one from the pool.
    ///
    /// Tracing: the operation runs in a `request` span (front end, command,
    /// a new `trace_id`, or the caller's if it runs inside a
    /// `labrpc::trace::scope`), each try in a `forward` span under it; a
    /// hop to another node carries the trace context (`labrpc::trace`), so
    /// the remote replica's spans, down to `raft.submit`, share the id.
    pub async fn run(&self, op: Op, session: Option<(u64, u64)>) -> Result<Outcome, ForwardError> {
        self.run_from(op, session, ReadFrom::Leader).await
    }

    /// [`Forwarder::run`], with a read served where `read_from` allows
    /// (writes ignore it).
    pub async fn run_from(
        &self,
        op: Op,
        session: Option<(u64, u64)>,
        read_from: ReadFrom,
    ) -> Result<Outcome, ForwardError> {
        let started = crate::clock::now();
        let command = op.name();
        self.metrics.record_key(op.key(), started);
        let context = labrpc::trace::current()
            .map(|parent| parent.child())
            .unwrap_or_else(labrpc::trace::TraceContext::new_root);
        let span = tracing::debug_span!(
            "request",
            frontend = crate::metrics::frontend(),
            command,
            trace_id = %context.trace_id_hex(),
            span_id = %context.span_id_hex(),
            parent_span_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        if let Some(caller) = labrpc::trace::current() {
            span.record("parent_span_id", caller.span_id_hex());
        }
        let result = labrpc::trace::scope(
            context,
            self.run_recorded(op, session, read_from)
                .instrument(span.clone()),
        )
        .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(ForwardError::InvalidArgument(_) | ForwardError::OverLimit(_)) => {
                "invalid_argument"
            }
            Err(ForwardError::Timeout { .. }) => "timeout",
            Err(ForwardError::StaleSession { .. }) => "stale_session",
            Err(ForwardError::ShuttingDown) => "shutting_down",
            Err(ForwardError::Refused(_)) => "refused",
        };
        span.record("outcome", outcome);
        self.metrics
            .record_operation(command, outcome, started.elapsed());
        result
    }

    async fn run_recorded(
        &self,
        op: Op,
        session: Option<(u64, u64)>,
        read_from: ReadFrom,
    ) -> Result<Outcome, ForwardError> {
        if let Some((near_cache, key)) = self.near_cache_for(&op, read_from) {
            if let Some(answer) = near_cache.get(key) {
                return Ok(Outcome::Value(answer.map(|value| value.to_vec())));
            }
            let fetch = near_cache.begin(key);
            // The value and its TTL in one read: its expiry is told from it.
            let with_ttl = Op::GetWithTtl { key: key.to_vec() };
            return match self.run_with(with_ttl, 0, 0, read_from).await {
                Ok(Outcome::ValueWithTtl { value, ttl }) => {
                    fetch.finish(value.as_deref(), ttl);
                    Ok(Outcome::Value(value))
                }
                other => other,
            };
        }
        if op.is_read() {
            // Reads are never recorded: no session needed.
            return self.run_with(op, 0, 0, read_from).await;
        }
        if matches!(op, Op::Put { .. } | Op::Append { .. })
            && let Some(unsafe_ack) = self.unsafe_ack.get()
            && let Some(forwarder) = unsafe_ack.forwarder.upgrade()
            && let Ok(permit) = std::sync::Arc::clone(&unsafe_ack.in_flight).try_acquire_owned()
        {
            tokio::spawn(async move {
                let _permit = permit;
                let _ = forwarder.run_write(op, session).await;
            });
            return Ok(Outcome::Done);
        }
        self.run_write(op, session).await
    }

    /// A write with the caller's session, or one from the pool.
    async fn run_write(
        &self,
        op: Op,
        session: Option<(u64, u64)>,
    ) -> Result<Outcome, ForwardError> {
        if let Some((client_id, seq)) = session {
            return self.run_with(op, client_id, seq, ReadFrom::Leader).await;
        }
        let _permit = self
            .session_permits
            .acquire()
            .await
            .map_err(|_| ForwardError::ShuttingDown)?;
        let mut pooled = self
            .idle_sessions
            .lock()
            .expect("sessions lock")
            .pop()
            .unwrap_or_default();
        let seq = pooled.take_seq();
        let result = self
            .run_with(op, pooled.client_id(), seq, ReadFrom::Leader)
            .await;
        self.idle_sessions
            .lock()
            .expect("sessions lock")
            .push(pooled);
        result
    }

    async fn run_with(
        &self,
        op: Op,
        client_id: u64,
        seq: u64,
        mut read_from: ReadFrom,
    ) -> Result<Outcome, ForwardError> {
        let deadline = crate::clock::now() + self.request_timeout;
        let mut backoff = Duration::from_millis(5);
        let mut attempts = 0u64;
        loop {
            if self.routing.lock().expect("routing lock").num == 0 {
                Box::pin(self.refresh()).await;
            }
            let config = self.routing();
            let shard = shardkv::op_shard(&op, config.shard_count());
            let Some(gid) = config.owner(shard) else {
                return Err(ForwardError::InvalidArgument(format!(
                    "shard {shard} does not exist (the service has {} shards)",
                    config.shard_count()
                )));
            };
            let request = ShardKvRequest {
                client_id,
                seq,
                config_num: config.num,
                op: op.clone(),
            };
            let remaining = deadline.saturating_duration_since(crate::clock::now());
            if remaining.is_zero() {
                return Err(ForwardError::Timeout {
                    deadline_ms: u64::try_from(self.request_timeout.as_millis())
                        .unwrap_or(u64::MAX),
                    attempts,
                });
            }
            attempts += 1;
            if let Some(max_staleness) = read_from.replica_staleness()
                && op.is_read()
            {
                // One short try on a replica; if none could serve it, the
                // leader's path from here on, at once.
                read_from = ReadFrom::Leader;
                let budget = (remaining / 3).min(ANYWHERE_TRY_MAX);
                let cache = self.read_cache_for(&op, gid, max_staleness);
                let mut lead = None;
                let mut fetch_bound = max_staleness;
                let mut sent_ms = 0;
                if let Some((cache, key)) = cache {
                    if let Some(value) = cache.get(key, max_staleness) {
                        self.metrics.record_replica_read("cache");
                        return Ok(Outcome::Value(value.map(|value| value.to_vec())));
                    }
                    match cache.join(key, max_staleness) {
                        Flight::Follow(answer) => {
                            // The fetch in flight answers; if it failed,
                            // fetch here.
                            if let Ok(Ok(Some(value))) = tokio::time::timeout(budget, answer).await
                            {
                                self.metrics.record_replica_read("cache");
                                return Ok(Outcome::Value(value.map(|value| value.to_vec())));
                            }
                            (fetch_bound, sent_ms) =
                                (ReadCache::fetch_bound(max_staleness), cache.now_ms());
                        }
                        Flight::Lead(flight) => {
                            (fetch_bound, sent_ms) = (flight.fetched_within, flight.sent_ms);
                            lead = Some(flight);
                        }
                        Flight::Alone => {
                            (fetch_bound, sent_ms) =
                                (ReadCache::fetch_bound(max_staleness), cache.now_ms());
                        }
                    }
                }
                // Boxed, as rare paths are here: see `attempt`.
                let attempt =
                    Box::pin(self.attempt_anywhere(&config, gid, &request, fetch_bound, budget))
                        .await;
                let answer = match &attempt {
                    Attempt::Done(Ok(Outcome::Value(value))) => Some(value.as_deref()),
                    _ => None,
                };
                match (lead, cache) {
                    (Some(lead), _) => lead.finish(answer),
                    (None, Some((cache, key))) => {
                        if let Some(value) = answer {
                            cache.put(key, value, sent_ms, fetch_bound);
                        }
                    }
                    (None, None) => {}
                }
                match attempt {
                    Attempt::Done(result) => return result,
                    Attempt::Reroute => {
                        self.metrics.record_replica_read("leader");
                        continue;
                    }
                }
            }
            match self.attempt(&config, gid, request, remaining).await {
                Attempt::Done(result) => return result,
                Attempt::Reroute => {}
            }
            let remaining = deadline.saturating_duration_since(crate::clock::now());
            tokio::time::sleep(backoff.min(remaining)).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
            Box::pin(self.refresh()).await;
        }
    }

    /// One try in the group `gid`: locally if this node leads it, else one
    /// hop to its leader.
    async fn attempt(
        &self,
        config: &Config,
        gid: Gid,
        request: ShardKvRequest,
        remaining: Duration,
    ) -> Attempt {
        if let Some(local) = &self.local
            && local.gid() == gid
            && local.raft().state().1
        {
            self.metrics.record_attempt(true);
            let span = tracing::debug_span!("forward", gid, local = true);
            let reply =
                tokio::time::timeout(remaining, local.handle_client(request).instrument(span))
                    .await;
            return match reply {
                Ok(reply) => match classify(reply) {
                    Verdict::Done(outcome) => Attempt::Done(Ok(outcome)),
                    Verdict::Fail(Some(error)) => Attempt::Done(Err(error)),
                    Verdict::Fail(None)
                    | Verdict::WrongLeader { .. }
                    | Verdict::Retry
                    | Verdict::Busy => Attempt::Reroute,
                },
                Err(_) => Attempt::Reroute,
            };
        }
        // Boxed: a hop's future (a batch's wait, a gRPC call) is twice the
        // local path's, and every future above this one would carry that
        // size and copy it at each await, local tries included.
        Box::pin(self.attempt_remote(config, gid, request, remaining)).await
    }

    /// [`Forwarder::attempt`] in a group this node does not lead: one hop
    /// to its leader.
    async fn attempt_remote(
        &self,
        config: &Config,
        gid: Gid,
        request: ShardKvRequest,
        remaining: Duration,
    ) -> Attempt {
        let Some(group) = self.group(config, gid) else {
            return Attempt::Reroute;
        };
        self.metrics.record_attempt(false);
        let try_for = remaining.min(REMOTE_TRY_MAX);
        // The hop's context names this try's span: the remote side's
        // `labrpc.server` span (or, in a batch, its request's spans) is its
        // child.
        let hop = labrpc::trace::current().map(|context| context.child());
        let span = tracing::debug_span!(
            "forward",
            gid,
            local = false,
            span_id = tracing::field::Empty,
        );
        if let Some(hop) = hop {
            span.record("span_id", hop.span_id_hex());
        }
        // Small commands ride with the others this node sends the group at
        // the same moment (`hop_batch`); what the batch could not serve
        // goes alone below, with leader finding. Cut to the request's
        // deadline: dropping a call mid-flight is safe (its answer is
        // simply not awaited).
        let request = if crate::hop_batch::batchable(&request.op) {
            let sent = self
                .hops
                .send(gid, &group, request, hop, self.rpc_timeout, &self.metrics)
                .instrument(span.clone());
            match tokio::time::timeout(try_for, sent).await {
                Ok(HopAnswer::Done(result)) => return Attempt::Done(result),
                Ok(HopAnswer::Alone(request)) => request,
                Ok(HopAnswer::Reroute | HopAnswer::Lost) | Err(_) => return Attempt::Reroute,
            }
        } else {
            request
        };
        let call = group.call(&request, classify).instrument(span);
        let call = match hop {
            Some(hop) => futures::future::Either::Left(labrpc::trace::scope(hop, call)),
            None => futures::future::Either::Right(call),
        };
        // At most REMOTE_TRY_MAX per try: a group whose server list changed
        // (an operator replaced a replica) is reached only once the routing
        // is re-read, which happens between tries; a try as long as the
        // request's deadline would outlast a client's call (2 s), and the
        // routing would never be re-read.
        match tokio::time::timeout(try_for, call).await {
            Ok(Ok(outcome)) => Attempt::Done(Ok(outcome)),
            Ok(Err(GroupCallError::Failed(Some(error)))) => Attempt::Done(Err(error)),
            Ok(Err(GroupCallError::Failed(None) | GroupCallError::Timeout { .. })) | Err(_) => {
                Attempt::Reroute
            }
        }
    }

    /// One try of a read on a replica of `gid` that need not lead it, with
    /// an answer at most `max_staleness` old (zero: linearizable): this
    /// node's own, if it holds one, else the group's servers in turn (so
    /// a hot key's reads spread over the group). `Reroute` when that
    /// replica could not serve it (the caller reads from the leader).
    async fn attempt_anywhere(
        &self,
        config: &Config,
        gid: Gid,
        request: &ShardKvRequest,
        max_staleness: Duration,
        limit: Duration,
    ) -> Attempt {
        let read = shardkv::ReadAnywhere {
            config_num: request.config_num,
            op: request.op.clone(),
            max_staleness_ms: u64::try_from(max_staleness.as_millis()).unwrap_or(u64::MAX),
        };
        // This node's replica, unless it lost touch with its leader (it
        // could only wait and refuse): then the group's others.
        let (reply, by, peer) = if let Some(local) = &self.local
            && local.gid() == gid
            && local.raft().status().leader_contact
        {
            self.metrics.record_attempt(true);
            let span = tracing::debug_span!("forward", gid, local = true, anywhere = true);
            let reply =
                tokio::time::timeout(limit, local.handle_read_anywhere(read).instrument(span))
                    .await
                    .ok();
            (reply, "here", None)
        } else {
            let Some(group) = self.group(config, gid) else {
                return Attempt::Reroute;
            };
            // Every replica failed lately: the leader's path at once.
            let Some(server) = self
                .replica_turns
                .pick(group.servers(), crate::clock::now())
            else {
                return Attempt::Reroute;
            };
            self.metrics.record_attempt(false);
            let hop = labrpc::trace::current().map(|context| context.child());
            let span = tracing::debug_span!(
                "forward",
                gid,
                local = false,
                anywhere = true,
                span_id = tracing::field::Empty,
            );
            if let Some(hop) = &hop {
                span.record("span_id", hop.span_id_hex());
            }
            let call = group.call_one(server, &read, limit).instrument(span);
            let reply = match hop {
                Some(hop) => labrpc::trace::scope(hop, call).await,
                None => call.await,
            };
            (reply.ok(), "peer", Some(server))
        };
        let verdict = reply.map(classify);
        if let Some(server) = peer {
            match verdict {
                Some(Verdict::Done(_) | Verdict::Fail(Some(_))) => {
                    self.replica_turns.answered(server);
                }
                // It cannot serve such reads now (no leader, not caught
                // up), or nothing came back in a whole try.
                Some(Verdict::WrongLeader { .. }) => {
                    self.replica_turns.failed(server, crate::clock::now());
                }
                None if limit >= ANYWHERE_TRY_MAX => {
                    self.replica_turns.failed(server, crate::clock::now());
                }
                // A stale routing (WrongGroup), a busy replica, or a try
                // cut short by the request's deadline: says nothing of the
                // replica.
                _ => {}
            }
        }
        match verdict {
            Some(Verdict::Done(outcome)) => {
                self.metrics.record_replica_read(by);
                Attempt::Done(Ok(outcome))
            }
            Some(Verdict::Fail(Some(error))) => Attempt::Done(Err(error)),
            _ => Attempt::Reroute,
        }
    }

    /// The read cache and the key, for a bounded (non-zero) GET of a key
    /// whose group `gid` has no replica on this node.
    fn read_cache_for<'a>(
        &'a self,
        op: &'a Op,
        gid: Gid,
        max_staleness: Duration,
    ) -> Option<(&'a ReadCache, &'a [u8])> {
        let Op::Get { key } = op else {
            return None;
        };
        let hosted = self.local.as_ref().is_some_and(|local| local.gid() == gid);
        if max_staleness.is_zero() || hosted || self.read_cache_bytes == 0 {
            return None;
        }
        let cache = self
            .read_cache
            .get_or_init(|| ReadCache::new(self.read_cache_bytes))
            .as_ref()?;
        Some((cache, key.as_slice()))
    }

    /// The near cache and the key, for a plain GET (from the leader or any
    /// replica; bounded reads have the read cache) of a key whose group has
    /// no replica on this node, when the near cache is on.
    fn near_cache_for<'a>(
        &'a self,
        op: &'a Op,
        read_from: ReadFrom,
    ) -> Option<(&'a std::sync::Arc<NodeNearCache>, &'a [u8])> {
        let near_cache = self.near_cache.get()?;
        let Op::Get { key } = op else {
            return None;
        };
        if !matches!(read_from, ReadFrom::Leader | ReadFrom::AnyReplica) {
            return None;
        }
        let gid = {
            let routing = self.routing.lock().expect("routing lock");
            routing.owner(shardkv::key_to_shard(key, routing.shard_count()))?
        };
        let hosted = self.local.as_ref().is_some_and(|local| local.gid() == gid);
        (!hosted).then_some((near_cache, key.as_slice()))
    }

    /// The leader of each group as far as this node knows (the server that
    /// answered its last forwarded request), and the group this node's own
    /// replica leads, if any: `CLUSTER SLOTS` names these as masters.
    pub fn known_leaders(&self) -> (BTreeMap<Gid, SocketAddr>, Option<Gid>) {
        let leaders = self.groups.leaders();
        let local = self
            .local
            .as_ref()
            .filter(|local| local.raft().state().1)
            .map(ShardServer::gid);
        (leaders, local)
    }

    /// The leader-finding client of `gid` at the servers `config` lists.
    fn group(&self, config: &Config, gid: Gid) -> Option<GroupClient> {
        self.groups.get(gid, config.groups.get(&gid)?)
    }
}

tokio::task_local! {
    /// Where a front end's reads may be served, for front ends whose
    /// connection decides it (RESP's `READONLY`); outside any scope,
    /// [`ReadFrom::Leader`].
    pub static READ_FROM: ReadFrom;
}

/// The [`READ_FROM`] of the running task.
pub fn current_read_from() -> ReadFrom {
    READ_FROM
        .try_with(|read_from| *read_from)
        .unwrap_or_default()
}

/// Where a read may be served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadFrom {
    /// The group's leader (a ReadIndex read; the default).
    #[default]
    Leader,
    /// Any replica of the group, as linearizable as the leader's: a
    /// follower asks its leader for a read index and answers once it has
    /// applied through it (`rsm`'s follower reads). Spreads a hot key's
    /// reads over the group; costs the leader one small call per batch of
    /// a follower's reads instead of the reads themselves.
    AnyReplica,
    /// Any replica, with an answer at most this old (RESP's `READONLY
    /// MAXSTALENESS`, gRPC's and REST's `max_staleness_ms`): it reflects
    /// every write acknowledged more than this before the read began. A
    /// follower answers from a read index it was granted within the bound,
    /// without asking its leader, so the leader sees about one ask per
    /// bound per follower however many reads there are. At most
    /// [`shardkv::MAX_STALENESS_MS`].
    AnyReplicaWithin(Duration),
}

impl ReadFrom {
    /// Where a read goes from the front ends' settings: the leader without
    /// `any_replica`; else any replica, bounded by `max_staleness_ms` if
    /// it is not zero.
    pub fn from_request(any_replica: bool, max_staleness_ms: u64) -> ReadFrom {
        match (any_replica, max_staleness_ms) {
            (false, _) => ReadFrom::Leader,
            (true, 0) => ReadFrom::AnyReplica,
            (true, ms) => ReadFrom::AnyReplicaWithin(Duration::from_millis(ms)),
        }
    }

    /// Where a read that a client will cache (client-side caching's
    /// tracked reads) goes: never with a staleness bound. Such a client
    /// keeps the answer until told of a write; a bounded answer may predate
    /// a write whose news went out before the key was tracked, and the
    /// client would keep it for good. Any replica stays allowed (its reads
    /// are linearizable).
    pub fn for_tracked_read(self) -> ReadFrom {
        match self {
            ReadFrom::AnyReplicaWithin(_) => ReadFrom::AnyReplica,
            other => other,
        }
    }

    /// `None` for the leader; for any replica, how old its answer may be
    /// (zero: linearizable).
    pub fn replica_staleness(self) -> Option<Duration> {
        match self {
            ReadFrom::Leader => None,
            ReadFrom::AnyReplica => Some(Duration::ZERO),
            ReadFrom::AnyReplicaWithin(bound) => Some(bound),
        }
    }
}

enum Attempt {
    Done(Result<Outcome, ForwardError>),
    Reroute,
}

/// How a [`Forwarder::wait_for_keys`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyWait {
    /// A key is present, or was written: run the operation again.
    Changed,
    /// The wait passed with nothing written.
    TimedOut,
    /// The owning group's leader holds as many waiters as it may.
    Full,
    /// No leader answered (a leader change, a shard move, a lost reply):
    /// nothing is known, so run the operation again.
    Unknown,
}

impl Forwarder {
    /// Waits (a long poll on the owning group's leader, [`shardkv::WaitKeys`])
    /// until one of `keys` (all in one shard) is present or written, at
    /// most `wait` and at most one RPC's timeout minus a margin (the
    /// caller asks again). Nothing is changed, so a dropped wait is
    /// harmless.
    pub async fn wait_for_keys(&self, keys: &[Vec<u8>], wait: Duration) -> KeyWait {
        let Some(first) = keys.first() else {
            return KeyWait::Changed;
        };
        if self.routing.lock().expect("routing lock").num == 0 {
            self.refresh().await;
        }
        let config = self.routing();
        let shard = shardkv::key_to_shard(first, config.shard_count());
        let Some(gid) = config.owner(shard) else {
            return KeyWait::Unknown;
        };
        // Room for the reply inside one RPC's timeout.
        let longest = self.rpc_timeout.saturating_sub(self.rpc_timeout / 4);
        let wait = wait.min(longest);
        let request = shardkv::WaitKeys {
            keys: keys.to_vec(),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        };
        let reply = if let Some(local) = &self.local
            && local.gid() == gid
            && local.raft().state().1
        {
            Some(local.handle_wait(request).await)
        } else {
            match self.group(&config, gid) {
                None => None,
                Some(group) => {
                    let call = group.call(&request, |reply: api::Reply| match reply {
                        Err(Error::WrongLeader { leader_hint }) => {
                            Verdict::WrongLeader { leader_hint }
                        }
                        other => Verdict::<api::Reply, ()>::Done(other),
                    });
                    match tokio::time::timeout(self.rpc_timeout * 2, call).await {
                        Ok(Ok(reply)) => Some(reply),
                        Ok(Err(_)) | Err(_) => None,
                    }
                }
            }
        };
        match reply {
            Some(Ok(Outcome::Applied(false))) => KeyWait::TimedOut,
            Some(Ok(_)) => KeyWait::Changed,
            Some(Err(Error::Busy { .. })) => KeyWait::Full,
            Some(Err(Error::WrongGroup { .. })) => {
                self.refresh().await;
                KeyWait::Unknown
            }
            Some(Err(_)) | None => KeyWait::Unknown,
        }
    }

    /// One long poll of `gid`'s leader for the keys written after log
    /// index `after` ([`shardkv::WatchChanges`]), waiting at most `wait`
    /// and at most one RPC's timeout minus a margin; `None` if no leader
    /// answered in time.
    pub async fn watch_changes(
        &self,
        gid: Gid,
        poller: u64,
        after: u64,
        wait: Duration,
    ) -> Option<shardkv::Changes> {
        let longest = self.rpc_timeout.saturating_sub(self.rpc_timeout / 4);
        let request = shardkv::WatchChanges {
            poller,
            after,
            wait_ms: u64::try_from(wait.min(longest).as_millis()).unwrap_or(u64::MAX),
        };
        let reply = if let Some(local) = &self.local
            && local.gid() == gid
            && local.raft().state().1
        {
            local.handle_watch_changes(request).await
        } else {
            let config = self.routing();
            let group = self.group(&config, gid)?;
            let call = group.call(
                &request,
                |reply: Result<shardkv::Changes, Error>| match reply {
                    Err(Error::WrongLeader { leader_hint }) => Verdict::WrongLeader { leader_hint },
                    other => Verdict::<Result<shardkv::Changes, Error>, ()>::Done(other),
                },
            );
            match tokio::time::timeout(self.rpc_timeout * 2, call).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(_)) | Err(_) => return None,
            }
        };
        reply.ok()
    }

    /// Applies the write `op` and does not give up: with one session and
    /// one seq, it is sent again after every timeout until an answer comes
    /// (the exactly-once record answers a retry of a write that already
    /// applied), so a pop's element is delivered once or, if the caller
    /// stops waiting, never answered (it was taken, as the caller asked).
    /// Other errors are answered.
    pub async fn run_until_answered(&self, op: Op) -> Result<Outcome, ForwardError> {
        if op.is_read() {
            return self.run(op, None).await;
        }
        let _permit = self
            .session_permits
            .acquire()
            .await
            .map_err(|_| ForwardError::ShuttingDown)?;
        let mut pooled = self
            .idle_sessions
            .lock()
            .expect("sessions lock")
            .pop()
            .unwrap_or_default();
        let seq = pooled.take_seq();
        let result = loop {
            match self.run(op.clone(), Some((pooled.client_id(), seq))).await {
                Err(ForwardError::Timeout { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => break other,
            }
        };
        self.idle_sessions
            .lock()
            .expect("sessions lock")
            .push(pooled);
        result
    }
}

/// Reads one replica's reply: `Fail(None)` means "wrong group, re-route";
/// `Fail(Some(error))` is final.
pub(crate) fn classify(reply: api::Reply) -> Verdict<Outcome, Option<ForwardError>> {
    match reply {
        Ok(outcome) => Verdict::Done(outcome),
        Err(Error::WrongGroup { .. }) => Verdict::Fail(None),
        Err(Error::WrongLeader { leader_hint }) => Verdict::WrongLeader { leader_hint },
        // The leader is full: back off and ask it again.
        Err(Error::Busy { .. }) => Verdict::Busy,
        // Not seen applied (it may still apply), or an answer no replica
        // gives: try again.
        Err(Error::NotApplied | Error::Timeout { .. } | Error::UnexpectedOutcome { .. }) => {
            Verdict::Retry
        }
        Err(
            error @ (Error::NotAnInteger
            | Error::IncrementOverflow
            | Error::NotAFloat
            | Error::NotFinite
            | Error::WrongType
            | Error::HashNotInteger
            | Error::HashNotFloat
            | Error::NoSuchKey
            | Error::IndexOutOfRange
            | Error::CrossShard),
        ) => Verdict::Fail(Some(ForwardError::Refused(error))),
        Err(error @ (Error::TooLarge { .. } | Error::ZeroTtl | Error::TooManyElements { .. })) => {
            Verdict::Fail(Some(ForwardError::OverLimit(error)))
        }
        Err(Error::Stale { seq, latest }) => {
            Verdict::Fail(Some(ForwardError::StaleSession { seq, latest }))
        }
    }
}
