//! Prometheus metrics of one node: the registry, the counters the request
//! paths bump, and the gauges read from the replicas at scrape time.
//!
//! ```text
//!  front ends ─ scope(FRONTEND = "grpc" | "resp" | "http") ─► Forwarder::run
//!                                  │ records: requests by front end,
//!                                  │ command and outcome; latency; hot keys;
//!                                  │ requests per shard; served here or
//!                                  │ forwarded one hop
//!                                  ▼
//!                              Metrics (one per node; a demo has several)
//!  GET /metrics ─► Metrics::encode(node) ─ first reads Raft status, shard
//!                  stores, RESP clients into gauges ─► text format
//! ```
//!
//! Names follow Prometheus conventions: a `distcache_` prefix, snake case,
//! `_total` on counters, units as suffixes (`_seconds`, `_bytes`). Label
//! values come from small fixed sets (front ends, command names, outcomes,
//! shard numbers, group ids), except hot keys, which are at most
//! [`HOT_KEYS_EXPORTED`] series, replaced at every scrape.
//!
//! **Hot keys** are found by the cache crate's `HotKeyDetector` (a
//! count-min sketch and a top-k list of [`HOT_KEYS_TRACKED`] keys, counts
//! halved every 10 s of seam time): memory is bounded whatever the key
//! space, and keys that stopped being hot fade out. Past
//! [`HOT_KEYS_EXACT_PER_WINDOW`] requests in a window the detector samples
//! (one in [`HOT_KEYS_SAMPLE_ONE_IN`], weighted): the counts of a busy node
//! are estimates either way.

use cache::hotkeys::{HotKeyConfig, HotKeyDetector};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use raft::node::DurationHistogram;

/// Keys whose request counts are kept.
pub const HOT_KEYS_TRACKED: usize = 64;
/// Hot keys exported per scrape (the most requested).
pub const HOT_KEYS_EXPORTED: usize = 10;
/// Longest key label (longer keys are cut, with a `…`).
pub const HOT_KEY_LABEL_CHARS: usize = 64;
/// Requests counted one by one for the hot keys in each 10 s window; past
/// them, one request in [`HOT_KEYS_SAMPLE_ONE_IN`] is counted, with that
/// weight (counting every request, the detector took 9.7% of the CPU
/// samples of pipelined GETs; see docs/status.md).
pub const HOT_KEYS_EXACT_PER_WINDOW: u64 = 10_000;
/// See [`HOT_KEYS_EXACT_PER_WINDOW`].
pub const HOT_KEYS_SAMPLE_ONE_IN: u64 = 8;

tokio::task_local! {
    /// The front end a request came through; operations run outside any
    /// scope are counted as `internal` (readiness probes and the like).
    pub static FRONTEND: &'static str;
}

/// Whether requests through `frontend` come from users (not the node itself).
fn frontend_is_user(frontend: &str) -> bool {
    frontend != "internal"
}

/// The front end of the current task.
pub fn frontend() -> &'static str {
    FRONTEND
        .try_with(|frontend| *frontend)
        .unwrap_or("internal")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RequestLabels {
    pub frontend: &'static str,
    pub command: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub frontend: &'static str,
    pub command: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    pub role: String,
    pub gid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabels {
    pub shard: String,
    pub gid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PullLabels {
    pub shard: String,
    pub from_group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrontendLabels {
    pub frontend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    pub key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplicaReadLabels {
    /// `here` (this node's replica of the group served it), `peer` (a
    /// replica on another node did), `leader` (none could: read from
    /// the leader instead), `cache` (a bounded read answered from this
    /// node's read cache).
    pub served_by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardOnlyLabels {
    pub shard: String,
}

/// Requests per shard entering through this node (one counter per shard,
/// fixed at start), exported as `distcache_shard_requests_total{shard}`
/// (shards with none yet are left out) and read by the load balancer
/// (`crate::balance`) through `Admin.NodeStatus`. Cheap to clone: the
/// clones share the counters.
#[derive(Clone, Debug, Default)]
pub struct ShardRequests(std::sync::Arc<[AtomicU64]>);

impl ShardRequests {
    pub fn new(shard_count: usize) -> ShardRequests {
        ShardRequests((0..shard_count).map(|_| AtomicU64::new(0)).collect())
    }

    pub fn shard_count(&self) -> usize {
        self.0.len()
    }

    /// One request for `shard` (ignored if the service has no such shard).
    pub fn record(&self, shard: usize) {
        if let Some(count) = self.0.get(shard) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Each shard's requests so far, by shard number.
    pub fn totals(&self) -> Vec<u64> {
        self.0
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect()
    }
}

impl TypedMetric for ShardRequests {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for ShardRequests {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (shard, total) in self.totals().into_iter().enumerate() {
            if total == 0 {
                continue;
            }
            let labels = ShardOnlyLabels {
                shard: shard.to_string(),
            };
            encoder
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&total, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A histogram counted elsewhere (the Raft driver's storage timings,
/// `raft::node::DurationHistogram`), copied in at scrape time and exported
/// as is: the raft crate knows nothing of Prometheus.
#[derive(Debug, Default)]
pub struct CopiedHistogram(Mutex<DurationHistogram>);

impl CopiedHistogram {
    fn set(&self, histogram: DurationHistogram) {
        *self.0.lock().expect("copied histogram lock") = histogram;
    }
}

impl TypedMetric for CopiedHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for CopiedHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let histogram = *self.0.lock().expect("copied histogram lock");
        encoder.encode_histogram::<NoLabelSet>(
            histogram.sum_seconds(),
            histogram.count,
            &histogram.buckets(),
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A counter that follows a total kept elsewhere (a replica's count since
/// it started): it catches up with the total. A replica restarted in this
/// process counts from 0 again; the counter moves once the new total
/// passes the old one, so it never goes back.
fn catch_up(counter: &Counter, total: u64) {
    if let Some(new) = total.checked_sub(counter.get()) {
        counter.inc_by(new);
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// One shard's store counters (replicated: every replica agrees).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStat {
    pub shard: usize,
    pub entries: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub expirations: u64,
    /// Disk tier (L3; zero without one): of `hits`, those served from
    /// disk; reads that missed both tiers; entries and bytes on disk.
    pub disk_hits: u64,
    pub disk_misses: u64,
    pub disk_entries: u64,
    pub disk_bytes: u64,
    /// Local to this replica: values read back from the tier's files (by
    /// any read: promotions, read-only reads, snapshots) and their time.
    pub disk_reads: u64,
    pub disk_read_time_us: u64,
}

/// A key as a label value: lossy UTF-8, cut to [`HOT_KEY_LABEL_CHARS`].
pub fn key_label(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(key);
    if text.chars().count() <= HOT_KEY_LABEL_CHARS {
        return text.into_owned();
    }
    let mut cut: String = text.chars().take(HOT_KEY_LABEL_CHARS).collect();
    cut.push('…');
    cut
}

/// Fixed latency buckets kept next to the histogram so the dashboard can
/// read a p99 without parsing the text format.
pub const LATENCY_BOUNDS_SECONDS: [f64; 16] = [
    0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048,
    0.4096, 0.8192, 1.6384, 3.2768,
];

/// One node's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<CommandLabels, Histogram, fn() -> Histogram>,
    http_requests: Family<RouteLabels, Counter>,
    served_locally: Counter,
    forwarded: Counter,
    batch_calls: Counter,
    batched_requests: Counter,
    replica_reads: Family<ReplicaReadLabels, Counter>,
    raft_term: Family<RoleLabels, Gauge>,
    raft_commit_index: Family<RoleLabels, Gauge>,
    raft_applied_index: Family<RoleLabels, Gauge>,
    raft_is_leader: Family<RoleLabels, Gauge>,
    raft_leader_changes: Family<RoleLabels, Counter>,
    raft_lease_reads: Family<RoleLabels, Counter>,
    raft_log_bytes: Family<RoleLabels, Gauge>,
    raft_snapshot_bytes: Family<RoleLabels, Gauge>,
    raft_snapshot_held_bytes: Family<RoleLabels, Gauge>,
    raft_fsync_seconds: Family<RoleLabels, CopiedHistogram>,
    raft_snapshot_write_seconds: Family<RoleLabels, CopiedHistogram>,
    raft_snapshot_written_bytes: Family<RoleLabels, Counter>,
    raft_entry_written_bytes: Family<RoleLabels, Counter>,
    raft_peer_messages_refused: Family<RoleLabels, Counter>,
    peer_calls_refused: Family<ReasonLabels, Counter>,
    shard_keys: Family<ShardLabels, Gauge>,
    shard_bytes: Family<ShardLabels, Gauge>,
    shard_hits: Family<ShardLabels, Gauge>,
    shard_misses: Family<ShardLabels, Gauge>,
    shard_evictions: Family<ShardLabels, Gauge>,
    shard_expirations: Family<ShardLabels, Gauge>,
    shard_memory_hits: Family<ShardLabels, Gauge>,
    shard_disk_hits: Family<ShardLabels, Gauge>,
    shard_disk_misses: Family<ShardLabels, Gauge>,
    shard_disk_keys: Family<ShardLabels, Gauge>,
    shard_disk_bytes: Family<ShardLabels, Gauge>,
    shard_disk_reads: Family<ShardLabels, Gauge>,
    shard_disk_read_seconds: Family<ShardLabels, Gauge<f64, AtomicU64>>,
    migrations_in_flight: Gauge,
    migration_requests_refused: Counter,
    follower_reads: Counter,
    follower_reads_reused: Counter,
    async_acks: Counter,
    async_acks_lost: Counter,
    async_acks_mispredicted: Counter,
    async_acks_outstanding: Gauge,
    read_cache_bytes: Gauge,
    near_cache_bytes: Gauge,
    near_cache_hits: Counter,
    near_cache_misses: Counter,
    near_cache_flushes: Counter,
    migration_sent_bytes: Counter,
    migration_received_bytes: Counter,
    shard_pull_waiting_seconds: Family<PullLabels, Gauge>,
    shards_waiting: Gauge,
    shards_lost: Counter,
    store_capacity_bytes: Gauge,
    store_policy_revision: Gauge,
    connected_clients: Family<FrontendLabels, Gauge>,
    hot_key_requests: Family<KeyLabels, Gauge>,
    hot_keys: Mutex<HotKeyDetector<Vec<u8>>>,
    shard_requests: ShardRequests,
    started: tokio::time::Instant,
    /// Every request, and its latency bucket counts (the dashboard's view).
    operations: AtomicU64,
    bucket_counts: [AtomicU64; 17],
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Metrics that count no requests per shard (a forwarder's own, before
    /// the node gives it its registry).
    pub fn new() -> Metrics {
        Metrics::for_shards(0)
    }

    /// Metrics of a node whose service has `shard_count` shards.
    pub fn for_shards(shard_count: usize) -> Metrics {
        let mut registry = Registry::with_prefix("distcache");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Operations by front end, command and outcome",
            requests.clone(),
        );
        let latency = Family::<CommandLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register_with_unit(
            "request_duration",
            "Operation latency through the forwarder, by front end and command",
            Unit::Seconds,
            latency.clone(),
        );
        let http_requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route (including probes, metrics and the dashboard)",
            http_requests.clone(),
        );
        let served_locally = Counter::default();
        registry.register(
            "served_locally",
            "Operation attempts applied by this node's own replica (it led the group)",
            served_locally.clone(),
        );
        let forwarded = Counter::default();
        registry.register(
            "forwarded_requests",
            "Operation attempts sent one hop to another node's replica",
            forwarded.clone(),
        );
        let batch_calls = Counter::default();
        registry.register(
            "forward_batch_calls",
            "Calls that carried forwarded requests to a group's leader together",
            batch_calls.clone(),
        );
        let batched_requests = Counter::default();
        registry.register(
            "forward_batched_requests",
            "Forwarded requests sent in those calls (divided by the calls: the mean batch)",
            batched_requests.clone(),
        );
        let replica_reads = Family::<ReplicaReadLabels, Counter>::default();
        registry.register(
            "replica_reads",
            "Reads a client allowed any replica to serve (READONLY, read_from = ANY_REPLICA), \
             by who served them",
            replica_reads.clone(),
        );
        let raft_term = Family::<RoleLabels, Gauge>::default();
        registry.register("raft_term", "Current Raft term", raft_term.clone());
        let raft_commit_index = Family::<RoleLabels, Gauge>::default();
        registry.register(
            "raft_commit_index",
            "Highest log index known committed",
            raft_commit_index.clone(),
        );
        let raft_applied_index = Family::<RoleLabels, Gauge>::default();
        registry.register(
            "raft_applied_index",
            "Highest log index handed to the state machine",
            raft_applied_index.clone(),
        );
        let raft_is_leader = Family::<RoleLabels, Gauge>::default();
        registry.register(
            "raft_is_leader",
            "1 if this replica leads its group",
            raft_is_leader.clone(),
        );
        let raft_leader_changes = Family::<RoleLabels, Counter>::default();
        registry.register(
            "raft_leader_changes",
            "Leaders this replica learned of, each in a newer term (the first one counts)",
            raft_leader_changes.clone(),
        );
        let raft_lease_reads = Family::<RoleLabels, Counter>::default();
        registry.register(
            "raft_lease_reads",
            "Reads this replica answered under its leader lease, with no heartbeat round",
            raft_lease_reads.clone(),
        );
        let raft_log_bytes = Family::<RoleLabels, Gauge>::default();
        registry.register_with_unit(
            "raft_log",
            "Stored Raft hard state and log",
            Unit::Bytes,
            raft_log_bytes.clone(),
        );
        let raft_snapshot_bytes = Family::<RoleLabels, Gauge>::default();
        registry.register_with_unit(
            "raft_snapshot",
            "Data of the stored Raft snapshot",
            Unit::Bytes,
            raft_snapshot_bytes.clone(),
        );
        let raft_snapshot_held_bytes = Family::<RoleLabels, Gauge>::default();
        registry.register_with_unit(
            "raft_snapshot_held",
            "Data of the latest Raft snapshot held in memory to send to lagging followers \
             (0 once stored: then read back from the snapshot file)",
            Unit::Bytes,
            raft_snapshot_held_bytes.clone(),
        );
        let raft_fsync_seconds = Family::<RoleLabels, CopiedHistogram>::default();
        registry.register_with_unit(
            "raft_fsync_duration",
            "Durable Raft storage writes (one group commit: write and fsync), by duration",
            Unit::Seconds,
            raft_fsync_seconds.clone(),
        );
        let raft_snapshot_write_seconds = Family::<RoleLabels, CopiedHistogram>::default();
        registry.register_with_unit(
            "raft_snapshot_write_duration",
            "Durable Raft storage writes that carried a snapshot (taken or received), by duration",
            Unit::Seconds,
            raft_snapshot_write_seconds.clone(),
        );
        let raft_snapshot_written_bytes = Family::<RoleLabels, Counter>::default();
        registry.register_with_unit(
            "raft_snapshot_written",
            "Snapshot data written to Raft storage",
            Unit::Bytes,
            raft_snapshot_written_bytes.clone(),
        );
        let raft_entry_written_bytes = Family::<RoleLabels, Counter>::default();
        registry.register_with_unit(
            "raft_entry_written",
            "Log entry data written to Raft storage",
            Unit::Bytes,
            raft_entry_written_bytes.clone(),
        );
        let raft_peer_messages_refused = Family::<RoleLabels, Counter>::default();
        registry.register(
            "raft_peer_messages_refused",
            "Peer messages the Raft core refused as forged or corrupt (the node's log says why)",
            raft_peer_messages_refused.clone(),
        );
        let peer_calls_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "peer_calls_refused",
            "Peer calls (Raft, migration, controller) refused before any handler ran: another cluster, an unknown node, a certificate that does not name the caller, a failed TLS handshake",
            peer_calls_refused.clone(),
        );
        let shard_keys = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_keys",
            "Entries resident in each shard this node's replica holds",
            shard_keys.clone(),
        );
        let shard_bytes = Family::<ShardLabels, Gauge>::default();
        registry.register_with_unit(
            "shard",
            "Bytes counted against the store capacity, per shard",
            Unit::Bytes,
            shard_bytes.clone(),
        );
        let shard_hits = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_hits",
            "Reads that found a value, per shard (replicated counter)",
            shard_hits.clone(),
        );
        let shard_misses = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_misses",
            "Reads that found nothing, per shard (replicated counter)",
            shard_misses.clone(),
        );
        let shard_evictions = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_evictions",
            "Entries evicted to make room, per shard (replicated counter)",
            shard_evictions.clone(),
        );
        let shard_expirations = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_expirations",
            "Expired entries removed, per shard (replicated counter)",
            shard_expirations.clone(),
        );
        let shard_memory_hits = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_memory_hits",
            "Reads through the log that memory answered, per shard (replicated counter)",
            shard_memory_hits.clone(),
        );
        let shard_disk_hits = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_disk_hits",
            "Reads through the log that the disk tier answered (the key came back into \
             memory), per shard (replicated counter; 0 without a tier)",
            shard_disk_hits.clone(),
        );
        let shard_disk_misses = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_disk_misses",
            "Reads through the log that missed memory and disk, per shard (replicated counter)",
            shard_disk_misses.clone(),
        );
        let shard_disk_keys = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_disk_keys",
            "Entries in the disk tier, per shard",
            shard_disk_keys.clone(),
        );
        let shard_disk_bytes = Family::<ShardLabels, Gauge>::default();
        registry.register_with_unit(
            "shard_disk_bytes",
            "Bytes counted against the disk tier's capacity, per shard",
            Unit::Bytes,
            shard_disk_bytes.clone(),
        );
        let shard_disk_reads = Family::<ShardLabels, Gauge>::default();
        registry.register(
            "shard_disk_reads",
            "Values this replica read back from the disk tier's files (promotions, reads \
             that change nothing, snapshots), per shard store since it was made (local)",
            shard_disk_reads.clone(),
        );
        let shard_disk_read_seconds = Family::<ShardLabels, Gauge<f64, AtomicU64>>::default();
        registry.register_with_unit(
            "shard_disk_read",
            "Time those reads took, summed, per shard store since it was made (local; divide \
             by shard_disk_reads for the mean)",
            Unit::Seconds,
            shard_disk_read_seconds.clone(),
        );
        let migrations_in_flight = Gauge::default();
        registry.register(
            "migrations_in_flight",
            "Shards this node's replica is receiving, handing over or confirming",
            migrations_in_flight.clone(),
        );
        let follower_reads = Counter::default();
        registry.register(
            "follower_reads",
            "Reads the data replica answered while following (a read index from its \
             leader): linearizable ones, and ones under a staleness bound",
            follower_reads.clone(),
        );
        let read_cache_bytes = Gauge::default();
        registry.register(
            "read_cache_bytes",
            "Bytes the read cache holds (answers kept for bounded reads of keys this node \
             forwards; its hits are distcache_replica_reads_total{served_by=\"cache\"})",
            read_cache_bytes.clone(),
        );
        let near_cache_bytes = Gauge::default();
        registry.register(
            "near_cache_bytes",
            "Bytes the near cache holds (answers kept for plain GETs of keys this node \
             forwards, invalidated by their groups; clients.near_cache_bytes)",
            near_cache_bytes.clone(),
        );
        let near_cache_hits = Counter::default();
        registry.register(
            "near_cache_hits",
            "Plain GETs the near cache answered",
            near_cache_hits.clone(),
        );
        let near_cache_misses = Counter::default();
        registry.register(
            "near_cache_misses",
            "Plain GETs of keys this node forwards that the near cache did not hold (read \
             from the group)",
            near_cache_misses.clone(),
        );
        let near_cache_flushes = Counter::default();
        registry.register(
            "near_cache_flushes",
            "Times the near cache dropped everything (a feed poller lost its lease, a new \
             configuration)",
            near_cache_flushes.clone(),
        );
        let follower_reads_reused = Counter::default();
        registry.register(
            "follower_reads_reused",
            "Of the follower reads, those under a staleness bound (READONLY MAXSTALENESS, \
             max_staleness_ms) answered from an earlier read index without asking the leader",
            follower_reads_reused.clone(),
        );
        let async_acks = Counter::default();
        registry.register(
            "async_acks",
            "Writes the data replica answered as leader before a majority had them \
             (asynchronous replication, [replication] async_groups)",
            async_acks.clone(),
        );
        let async_acks_lost = Counter::default();
        registry.register(
            "async_acks_lost",
            "Of those writes, the ones this replica saw lost: another leader's entry took \
             their place (a crashed leader's losses are counted nowhere)",
            async_acks_lost.clone(),
        );
        let async_acks_mispredicted = Counter::default();
        registry.register(
            "async_acks_mispredicted",
            "Writes answered early whose applied answer differed from the one given: \
             always 0 unless there is a bug",
            async_acks_mispredicted.clone(),
        );
        let async_acks_outstanding = Gauge::default();
        registry.register(
            "async_acks_outstanding",
            "Writes answered early and not applied yet (at most \
             [replication] async_max_unreplicated)",
            async_acks_outstanding.clone(),
        );
        let migration_requests_refused = Counter::default();
        registry.register(
            "migration_requests_refused",
            "Shard pulls and deletes refused: the asking group is not the one the configuration names",
            migration_requests_refused.clone(),
        );
        let migration_sent_bytes = Counter::default();
        registry.register_with_unit(
            "migration_sent",
            "Shard data this node's replica handed to groups pulling a shard",
            Unit::Bytes,
            migration_sent_bytes.clone(),
        );
        let migration_received_bytes = Counter::default();
        registry.register_with_unit(
            "migration_received",
            "Shard data this node's replica pulled from donors as leader and its group stored",
            Unit::Bytes,
            migration_received_bytes.clone(),
        );
        let shard_pull_waiting_seconds = Family::<PullLabels, Gauge>::default();
        registry.register_with_unit(
            "shard_pull_waiting",
            "How long each shard this node's replica waits for has waited for its donor group",
            Unit::Seconds,
            shard_pull_waiting_seconds.clone(),
        );
        let shards_waiting = Gauge::default();
        registry.register(
            "shards_waiting",
            "Shards this node's replica's group waits for (pulling from a donor group)",
            shards_waiting.clone(),
        );
        let shards_lost = Counter::default();
        registry.register(
            "shards_lost",
            "Shards this node's replica's group installed empty because their donor was declared lost",
            shards_lost.clone(),
        );
        let store_capacity_bytes = Gauge::default();
        registry.register_with_unit(
            "store_capacity",
            "The capacity of each shard's store in this node's replica's group, as its log set it (0 until it has)",
            Unit::Bytes,
            store_capacity_bytes.clone(),
        );
        let store_policy_revision = Gauge::default();
        registry.register(
            "store_policy_revision",
            "The eviction policy revision this node's replica's group logged for its stores (0: the original; each release writes its latest)",
            store_policy_revision.clone(),
        );
        let connected_clients = Family::<FrontendLabels, Gauge>::default();
        registry.register(
            "connected_clients",
            "Open client connections by front end",
            connected_clients.clone(),
        );
        let hot_key_requests = Family::<KeyLabels, Gauge>::default();
        registry.register(
            "hot_key_requests",
            format!(
                "Recent requests for the hottest keys (decayed count-min estimate, one request \
                 in {HOT_KEYS_SAMPLE_ONE_IN} counted past {HOT_KEYS_EXACT_PER_WINDOW} per 10 s, \
                 top {HOT_KEYS_EXPORTED})"
            ),
            hot_key_requests.clone(),
        );
        let shard_requests = ShardRequests::new(shard_count);
        registry.register(
            "shard_requests",
            "Requests per shard that entered through this node's front ends, whichever group \
             served them (operations without a key and the node's own probes not counted)",
            shard_requests.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            http_requests,
            served_locally,
            forwarded,
            batch_calls,
            batched_requests,
            replica_reads,
            raft_term,
            raft_commit_index,
            raft_applied_index,
            raft_is_leader,
            raft_leader_changes,
            raft_lease_reads,
            raft_log_bytes,
            raft_snapshot_bytes,
            raft_snapshot_held_bytes,
            raft_fsync_seconds,
            raft_snapshot_write_seconds,
            raft_snapshot_written_bytes,
            raft_entry_written_bytes,
            raft_peer_messages_refused,
            peer_calls_refused,
            shard_keys,
            shard_bytes,
            shard_hits,
            shard_misses,
            shard_evictions,
            shard_expirations,
            shard_memory_hits,
            shard_disk_hits,
            shard_disk_misses,
            shard_disk_keys,
            shard_disk_bytes,
            shard_disk_reads,
            shard_disk_read_seconds,
            migrations_in_flight,
            migration_requests_refused,
            follower_reads,
            follower_reads_reused,
            async_acks,
            async_acks_lost,
            async_acks_mispredicted,
            async_acks_outstanding,
            read_cache_bytes,
            near_cache_bytes,
            near_cache_hits,
            near_cache_misses,
            near_cache_flushes,
            migration_sent_bytes,
            migration_received_bytes,
            shard_pull_waiting_seconds,
            shards_waiting,
            shards_lost,
            store_capacity_bytes,
            store_policy_revision,
            connected_clients,
            hot_key_requests,
            hot_keys: Mutex::new(HotKeyDetector::new(
                HotKeyConfig {
                    tracked_keys: HOT_KEYS_TRACKED,
                    exact_per_window: HOT_KEYS_EXACT_PER_WINDOW,
                    sample_one_in: HOT_KEYS_SAMPLE_ONE_IN,
                    ..HotKeyConfig::default()
                },
                0,
            )),
            shard_requests,
            started: crate::clock::now(),
            operations: AtomicU64::new(0),
            bucket_counts: Default::default(),
        }
    }

    /// The key of an operation the forwarder is about to run (before it
    /// takes the operation, so the key needs no copy): the requests per
    /// shard and the hot keys. Both are the users': the node's own probes
    /// (readiness, `internal`) would only crowd them out, and a whole-shard
    /// operation (scan, count, flush) has no key to rank.
    /// `at` is when the operation began (the caller's clock reading: one
    /// less per request).
    pub fn record_key(&self, key: &[u8], at: tokio::time::Instant) {
        if frontend_is_user(frontend()) && !key.is_empty() {
            let shard_count = self.shard_requests.shard_count();
            if shard_count > 0 {
                self.shard_requests
                    .record(shardkv::key_to_shard(key, shard_count));
            }
            let since_start = at.saturating_duration_since(self.started);
            let now_ms = u64::try_from(since_start.as_millis()).unwrap_or(u64::MAX);
            self.hot_keys
                .lock()
                .expect("hot keys lock")
                .record(key, now_ms);
        }
    }

    /// One operation through the forwarder, once it ended. Its labels are
    /// static names, so recording allocates nothing (it runs for every
    /// request).
    pub fn record_operation(
        &self,
        command: &'static str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        let command_frontend = frontend();
        self.requests
            .get_or_create(&RequestLabels {
                frontend: command_frontend,
                command,
                outcome,
            })
            .inc();
        let seconds = elapsed.as_secs_f64();
        self.latency
            .get_or_create(&CommandLabels {
                frontend: command_frontend,
                command,
            })
            .observe(seconds);
        self.operations.fetch_add(1, Ordering::Relaxed);
        let bucket = LATENCY_BOUNDS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BOUNDS_SECONDS.len());
        self.bucket_counts[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// One attempt: applied by the local replica, or forwarded one hop.
    pub fn record_attempt(&self, local: bool) {
        if local {
            self.served_locally.inc();
        } else {
            self.forwarded.inc();
        }
    }

    /// One call carried `requests` forwarded requests together.
    pub fn record_batch(&self, requests: usize) {
        self.batch_calls.inc();
        self.batched_requests.inc_by(requests as u64);
    }

    /// A read any replica could serve ended served `by` (`here`, `peer`,
    /// or `leader` when it fell back to the leader).
    pub fn record_replica_read(&self, by: &'static str) {
        self.replica_reads
            .get_or_create(&ReplicaReadLabels { served_by: by })
            .inc();
    }

    pub fn record_http(&self, route: &str) {
        self.http_requests
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .inc();
    }

    /// Operations so far and their latency bucket counts (the last one is
    /// over the largest bound).
    pub fn operations(&self) -> (u64, Vec<u64>) {
        (
            self.operations.load(Ordering::Relaxed),
            self.bucket_counts
                .iter()
                .map(|count| count.load(Ordering::Relaxed))
                .collect(),
        )
    }

    /// Requests per shard through this node so far (empty if not counted).
    pub fn shard_requests(&self) -> Vec<u64> {
        self.shard_requests.totals()
    }

    /// The shards counted per shard (0: none).
    pub fn shard_count(&self) -> usize {
        self.shard_requests.shard_count()
    }

    /// The most requested keys, most first.
    pub fn hot_keys(&self, n: usize) -> Vec<(Vec<u8>, u64)> {
        self.hot_keys.lock().expect("hot keys lock").top(n)
    }

    /// One replica's Raft status (at scrape time).
    pub fn observe_raft(&self, role: &str, gid: u64, status: &raft::node::NodeStatus) {
        let labels = RoleLabels {
            role: role.to_string(),
            gid: gid.to_string(),
        };
        self.raft_term
            .get_or_create(&labels)
            .set(to_i64(status.term));
        self.raft_commit_index
            .get_or_create(&labels)
            .set(to_i64(status.commit_index));
        self.raft_applied_index
            .get_or_create(&labels)
            .set(to_i64(status.applied_index));
        self.raft_is_leader
            .get_or_create(&labels)
            .set(i64::from(status.is_leader));
        self.raft_log_bytes
            .get_or_create(&labels)
            .set(to_i64(status.raft_state_size_bytes));
        self.raft_snapshot_bytes
            .get_or_create(&labels)
            .set(to_i64(status.snapshot_size_bytes));
        self.raft_snapshot_held_bytes
            .get_or_create(&labels)
            .set(to_i64(status.snapshot_held_bytes));
        self.raft_fsync_seconds
            .get_or_create(&labels)
            .set(status.storage.writes);
        self.raft_snapshot_write_seconds
            .get_or_create(&labels)
            .set(status.storage.snapshot_writes);
        // The replica's counts since it started: the counters catch up.
        catch_up(
            &self.raft_snapshot_written_bytes.get_or_create(&labels),
            status.storage.snapshot_written_bytes,
        );
        catch_up(
            &self.raft_entry_written_bytes.get_or_create(&labels),
            status.storage.entry_written_bytes,
        );
        catch_up(
            &self.raft_peer_messages_refused.get_or_create(&labels),
            status.peer_messages_refused,
        );
        catch_up(
            &self.raft_leader_changes.get_or_create(&labels),
            status.leader_changes,
        );
        catch_up(
            &self.raft_lease_reads.get_or_create(&labels),
            status.lease_reads,
        );
    }

    /// The node's peer calls refused since it started, by reason (labrpc's
    /// policy, at scrape time); each reason's counter catches up.
    pub fn observe_peer_refusals(&self, refusals: &[(labrpc::Refusal, u64)]) {
        for (reason, total) in refusals {
            let labels = ReasonLabels {
                reason: reason.label().to_string(),
            };
            catch_up(&self.peer_calls_refused.get_or_create(&labels), *total);
        }
    }

    /// The data replica's follower reads since it started, and those of
    /// them that reused a grant (at scrape time); the counters catch up.
    pub fn observe_follower_reads(&self, total: u64, reused: u64) {
        catch_up(&self.follower_reads, total);
        catch_up(&self.follower_reads_reused, reused);
    }

    /// The data replica's asynchronous replication counters (at scrape
    /// time); the counters catch up.
    pub fn observe_async_acks(&self, stats: &rsm::SpeculationStats) {
        catch_up(&self.async_acks, stats.early_acks);
        catch_up(&self.async_acks_lost, stats.lost);
        catch_up(&self.async_acks_mispredicted, stats.mispredicted);
        self.async_acks_outstanding
            .set(i64::try_from(stats.outstanding).unwrap_or(i64::MAX));
    }

    /// The bytes the read cache holds now (at scrape time).
    pub fn observe_read_cache(&self, bytes: u64) {
        self.read_cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn observe_near_cache(&self, bytes: u64) {
        self.near_cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// A plain GET the near cache answered (`hit`) or did not.
    pub fn record_near_cache_read(&self, hit: bool) {
        if hit {
            self.near_cache_hits.inc();
        } else {
            self.near_cache_misses.inc();
        }
    }

    /// The near cache dropped everything.
    pub fn record_near_cache_flush(&self) {
        self.near_cache_flushes.inc();
    }

    /// The data replica's count of refused migration requests since it
    /// started (at scrape time); the counter catches up with it.
    pub fn observe_migration_refusals(&self, total: u64) {
        catch_up(&self.migration_requests_refused, total);
    }

    /// The data replica's shard bytes moved since it started, sent to
    /// pulling groups and received from donors (at scrape time).
    pub fn observe_migration_bytes(&self, sent: u64, received: u64) {
        catch_up(&self.migration_sent_bytes, sent);
        catch_up(&self.migration_received_bytes, received);
    }

    /// The shards of this node's data replica (at scrape time).
    pub fn observe_shards(&self, gid: u64, shards: &[ShardStat], migrating: usize) {
        for family in [
            &self.shard_keys,
            &self.shard_bytes,
            &self.shard_hits,
            &self.shard_misses,
            &self.shard_evictions,
            &self.shard_expirations,
            &self.shard_memory_hits,
            &self.shard_disk_hits,
            &self.shard_disk_misses,
            &self.shard_disk_keys,
            &self.shard_disk_bytes,
            &self.shard_disk_reads,
        ] {
            family.clear();
        }
        self.shard_disk_read_seconds.clear();
        for stats in shards {
            let labels = ShardLabels {
                shard: stats.shard.to_string(),
                gid: gid.to_string(),
            };
            self.shard_keys
                .get_or_create(&labels)
                .set(to_i64(stats.entries));
            self.shard_bytes
                .get_or_create(&labels)
                .set(to_i64(stats.bytes));
            self.shard_hits
                .get_or_create(&labels)
                .set(to_i64(stats.hits));
            self.shard_misses
                .get_or_create(&labels)
                .set(to_i64(stats.misses));
            self.shard_evictions
                .get_or_create(&labels)
                .set(to_i64(stats.evictions));
            self.shard_expirations
                .get_or_create(&labels)
                .set(to_i64(stats.expirations));
            self.shard_memory_hits
                .get_or_create(&labels)
                .set(to_i64(stats.hits.saturating_sub(stats.disk_hits)));
            self.shard_disk_hits
                .get_or_create(&labels)
                .set(to_i64(stats.disk_hits));
            self.shard_disk_misses
                .get_or_create(&labels)
                .set(to_i64(stats.disk_misses));
            self.shard_disk_keys
                .get_or_create(&labels)
                .set(to_i64(stats.disk_entries));
            self.shard_disk_bytes
                .get_or_create(&labels)
                .set(to_i64(stats.disk_bytes));
            self.shard_disk_reads
                .get_or_create(&labels)
                .set(to_i64(stats.disk_reads));
            self.shard_disk_read_seconds
                .get_or_create(&labels)
                .set(stats.disk_read_time_us as f64 / 1_000_000.0);
        }
        self.migrations_in_flight
            .set(i64::try_from(migrating).unwrap_or(i64::MAX));
    }

    /// The shards the data replica waits for, as (shard, donor group,
    /// waited ms), and its group's count of shards installed empty because
    /// their donor was lost (at scrape time; the counter catches up).
    pub fn observe_pull_waits(&self, waits: &[(usize, u64, u64)], lost_total: u64) {
        self.shard_pull_waiting_seconds.clear();
        for &(shard, from_group, waited_ms) in waits {
            let labels = PullLabels {
                shard: shard.to_string(),
                from_group: from_group.to_string(),
            };
            self.shard_pull_waiting_seconds
                .get_or_create(&labels)
                .set(to_i64(waited_ms / 1000));
        }
        self.shards_waiting
            .set(i64::try_from(waits.len()).unwrap_or(i64::MAX));
        catch_up(&self.shards_lost, lost_total);
    }

    /// What the data replica's group logged for its stores: the capacity
    /// (`None` until one is logged) and the policy revision's number.
    pub fn observe_store_settings(&self, capacity_bytes: Option<u64>, policy_revision: u32) {
        self.store_capacity_bytes
            .set(to_i64(capacity_bytes.unwrap_or(0)));
        self.store_policy_revision.set(i64::from(policy_revision));
    }

    pub fn observe_clients(&self, frontend: &str, connected: u64) {
        self.connected_clients
            .get_or_create(&FrontendLabels {
                frontend: frontend.to_string(),
            })
            .set(to_i64(connected));
    }

    /// The registry in the text format, hot keys refreshed first.
    pub fn encode(&self) -> String {
        self.hot_key_requests.clear();
        for (key, count) in self.hot_keys(HOT_KEYS_EXPORTED) {
            self.hot_key_requests
                .get_or_create(&KeyLabels {
                    key: key_label(&key),
                })
                .set(to_i64(count));
        }
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!("encoding metrics: {error}");
        }
        text
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_cut_in_labels() {
        let label = key_label(&[b'k'; 500]);
        assert_eq!(label.chars().count(), HOT_KEY_LABEL_CHARS + 1);
        assert!(label.ends_with('…'));
        assert_eq!(key_label(b"short"), "short");
    }

    #[test]
    fn refusal_counts_follow_the_replicas_totals() {
        let metrics = Metrics::new();
        let mut status = raft::node::NodeStatus {
            peer_messages_refused: 3,
            ..Default::default()
        };
        metrics.observe_raft("data", 2, &status);
        metrics.observe_migration_refusals(4);
        status.peer_messages_refused = 5;
        metrics.observe_raft("data", 2, &status);
        metrics.observe_migration_refusals(4);
        let text = metrics.encode();
        assert!(
            text.contains("distcache_raft_peer_messages_refused_total{role=\"data\",gid=\"2\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("distcache_migration_requests_refused_total 4"),
            "{text}"
        );
    }

    #[test]
    fn storage_timings_snapshots_and_leader_changes_are_exported() {
        let metrics = Metrics::new();
        let mut status = raft::node::NodeStatus {
            snapshot_size_bytes: 700,
            snapshot_held_bytes: 300,
            leader_changes: 1,
            ..Default::default()
        };
        status.storage.writes.record(Duration::from_micros(150));
        status.storage.writes.record(Duration::from_millis(20));
        status
            .storage
            .snapshot_writes
            .record(Duration::from_millis(20));
        status.storage.snapshot_written_bytes = 700;
        status.storage.entry_written_bytes = 1234;
        metrics.observe_raft("data", 2, &status);
        status.leader_changes = 3;
        status.lease_reads = 40;
        metrics.observe_raft("data", 2, &status);
        metrics.observe_migration_bytes(5000, 4000);
        let text = metrics.encode();
        for line in [
            "distcache_raft_snapshot_bytes{role=\"data\",gid=\"2\"} 700",
            "distcache_raft_snapshot_held_bytes{role=\"data\",gid=\"2\"} 300",
            "distcache_raft_fsync_duration_seconds_count{role=\"data\",gid=\"2\"} 2",
            "distcache_raft_fsync_duration_seconds_sum{role=\"data\",gid=\"2\"} 0.02015",
            "distcache_raft_fsync_duration_seconds_bucket{le=\"0.0002\",role=\"data\",gid=\"2\"} 1",
            "distcache_raft_fsync_duration_seconds_bucket{le=\"0.0256\",role=\"data\",gid=\"2\"} 2",
            "distcache_raft_snapshot_write_duration_seconds_count{role=\"data\",gid=\"2\"} 1",
            "distcache_raft_snapshot_written_bytes_total{role=\"data\",gid=\"2\"} 700",
            "distcache_raft_entry_written_bytes_total{role=\"data\",gid=\"2\"} 1234",
            "distcache_raft_leader_changes_total{role=\"data\",gid=\"2\"} 3",
            "distcache_raft_lease_reads_total{role=\"data\",gid=\"2\"} 40",
            "distcache_migration_sent_bytes_total 5000",
            "distcache_migration_received_bytes_total 4000",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn user_requests_are_counted_per_shard() {
        let metrics = Metrics::for_shards(10);
        let key = b"user:42";
        let shard = shardkv::key_to_shard(key, 10);
        FRONTEND.sync_scope("resp", || {
            metrics.record_key(key, crate::clock::now());
            metrics.record_key(key, crate::clock::now());
            // A whole-shard operation has no key: not counted.
            metrics.record_key(b"", crate::clock::now());
        });
        // The node's own probes are not users' requests.
        metrics.record_key(key, crate::clock::now());
        let mut expected = vec![0; 10];
        expected[shard] = 2;
        assert_eq!(metrics.shard_requests(), expected);
        let text = metrics.encode();
        assert!(
            text.contains(&format!(
                "distcache_shard_requests_total{{shard=\"{shard}\"}} 2"
            )),
            "{text}"
        );
        assert_eq!(
            text.matches("distcache_shard_requests_total{").count(),
            1,
            "shards without requests are left out: {text}"
        );
        // A forwarder's own metrics count nothing per shard.
        let uncounted = Metrics::new();
        FRONTEND.sync_scope("grpc", || {
            uncounted.record_key(key, crate::clock::now());
        });
        assert!(uncounted.shard_requests().is_empty());
    }

    #[test]
    fn pull_waits_and_lost_shards_are_exported() {
        let metrics = Metrics::new();
        metrics.observe_pull_waits(&[(3, 100, 42_500), (7, 100, 999)], 0);
        let text = metrics.encode();
        assert!(
            text.contains(
                "distcache_shard_pull_waiting_seconds{shard=\"3\",from_group=\"100\"} 42"
            ),
            "{text}"
        );
        assert!(text.contains("distcache_shards_waiting 2"), "{text}");
        assert!(text.contains("distcache_shards_lost_total 0"), "{text}");
        // The group gave up on 100: nothing waits, two shards were lost.
        metrics.observe_pull_waits(&[], 2);
        let text = metrics.encode();
        assert!(!text.contains("from_group=\"100\""), "{text}");
        assert!(text.contains("distcache_shards_waiting 0"), "{text}");
        assert!(text.contains("distcache_shards_lost_total 2"), "{text}");
    }

    #[test]
    fn the_store_settings_logged_are_exported() {
        let metrics = Metrics::new();
        let text = metrics.encode();
        assert!(text.contains("distcache_store_capacity_bytes 0"), "{text}");
        assert!(text.contains("distcache_store_policy_revision 0"), "{text}");
        metrics.observe_store_settings(Some(64 << 20), 1);
        let text = metrics.encode();
        assert!(
            text.contains("distcache_store_capacity_bytes 67108864"),
            "{text}"
        );
        assert!(text.contains("distcache_store_policy_revision 1"), "{text}");
    }
}
