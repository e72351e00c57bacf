//! The node's configuration: a TOML file, then `DISTCACHE_*` environment
//! variables, then command-line flags (later layers win), validated as a
//! whole before anything starts.
//!
//! Every node of a cluster reads the same `[[nodes]]` table (who hosts
//! which replica on which ports); only `node_id` and `data_dir` differ. The
//! controller's replicas are the nodes with a `controller_port`, in `id`
//! order; a data group's replicas are the nodes with its `group`, in `id`
//! order. Raft ids are those positions, so every node must list the same
//! table, and an entry, once a group has started, is never removed (a
//! removed replica's entry stays, so that the positions after it keep
//! their meaning).
//!
//! A node added to a running group (`distcache admin add-replica` or
//! `replace-replica`) is listed with `joining = true`: it is not one of
//! the group's positions, starts as a replica that joins (an empty disk,
//! a voter of nothing until the leader adds it), and its Raft id is
//! [`JOINED_RAFT_ID_BASE`] + its node id, which no position can ever be.
//! Its own configuration must list it; the others' may (then any node
//! knows its address), and listing it changes no position. The same holds
//! for the controller group: a node with `controller_port` and
//! `joining = true` (and no `group`) hosts a controller replica that joins
//! the running controller group (`add-replica --group 0`).
//!
//! ```toml
//! cluster_id = "local"
//! node_id = 1
//! data_dir = "/var/lib/distcache/node1"
//! shard_count = 10            # default 10; the same on every node
//! request_timeout_ms = 5000   # default 5000
//! shard_capacity_bytes = 67108864  # default 64 MiB: one shard's store
//! lease_reads = true          # default: reads under a leader lease
//! lease_clock_drift_percent = 10   # default: the clock-drift bound it assumes
//! write_fence = true          # default: writes wait until tracking nodes were told
//! cluster_mode = false        # true: RESP acts as a Redis Cluster node (-MOVED)
//! balance_load = false        # true: move shards off a group that stays busiest
//! balance_interval_ms = 30000 # default: how often the balancer reads the loads
//! balance_after_intervals = 3 # default: intervals an imbalance must last
//!
//! # Where the listeners bind when `host` is not a local interface (a
//! # Kubernetes Service's ClusterIP): every port on this address instead,
//! # while `host` stays the address peers and clients are told.
//! listen_host = "0.0.0.0"     # default: each node's own `host`
//!
//! # Client authentication (docs/security.md). No password: the client
//! # listeners bind to loopback unless `protected_mode = false`.
//! requirepass = "a long password"    # the default user's password
//! users = ["user reader on >pw ~cache:* +@read -@dangerous"]
//!
//! [clients]                   # optional; these are the defaults
//! max_clients = 10000         # RESP connections at once
//! idle_timeout_ms = 0         # RESP: close after this long silent; 0: never
//! write_timeout_ms = 60000    # RESP: close a client that reads no replies
//! header_read_timeout_ms = 10000  # HTTP: a request head's deadline
//! read_cache_bytes = 33554432 # answers kept for bounded reads; 0: off
//! near_cache_bytes = 0         # answers kept for plain GETs, invalidated; 0: off
//!
//! [replication]               # optional; off by default
//! async_groups = [2]          # leaders answer plain SETs before a majority has them
//! async_max_unreplicated = 256    # default: such answers outstanding per leader
//!
//! [disk_tier]                 # optional; off by default
//! groups = [2]                # these groups' shards keep what memory evicts on disk
//! capacity_bytes = 1073741824 # default 1 GiB: one shard's disk tier
//! segment_bytes = 4194304     # default 4 MiB: a segment file's size
//!
//! [tracing]                   # optional; off by default
//! otlp_endpoint = "http://127.0.0.1:4317"   # send request spans (OTLP/gRPC)
//!
//! [[nodes]]
//! id = 1
//! host = "127.0.0.1"          # an IP address
//! grpc_port = 50051           # the client API
//! controller_port = 7001      # omit: no controller replica here
//! group = 1                   # omit (with data_port): no data replica here
//! data_port = 7101
//! # joining = true          # added to a running group (see above)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Largest shard count a cluster may have.
pub const MAX_SHARD_COUNT: usize = 1024;
/// Largest number of replicas in the controller group or in one data group.
pub const MAX_REPLICAS_PER_GROUP: usize = 15;
/// Largest number of nodes in the `[[nodes]]` table.
pub const MAX_NODES: usize = 1024;
/// A replica that joined a running group has Raft id
/// `JOINED_RAFT_ID_BASE + node id`: above every position (positions are
/// below [`MAX_REPLICAS_PER_GROUP`]), and the same on every node.
pub const JOINED_RAFT_ID_BASE: u64 = 1 << 32;

/// The whole configuration of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Names the cluster; a data directory remembers it and refuses others.
    pub cluster_id: String,
    /// This node's id: an `id` of the `[[nodes]]` table.
    pub node_id: u64,
    /// Where this node keeps its Raft logs and snapshots.
    pub data_dir: PathBuf,
    #[serde(default = "default_shard_count")]
    pub shard_count: usize,
    /// Deadline of one client request inside the cluster (forwarding
    /// included).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Snapshot a replica's state once its Raft log reaches this many bytes.
    #[serde(default = "default_max_raft_state_bytes")]
    pub max_raft_state_bytes: u64,
    /// Past `max_raft_state_bytes`, a data replica's log may also grow to
    /// this percent of its last snapshot's size before the next snapshot
    /// (0: the bound alone). A snapshot writes the group's whole state, so
    /// under a fixed bound its cost per write grows with the state; a
    /// percent keeps it at most `100 / percent` bytes per byte logged, for
    /// a log of up to that percent of the state's encoded size (on disk,
    /// and in memory at about twice that). The default, 10, changes
    /// nothing below an 80 MiB state and bounds the rewrite at 10 bytes
    /// per byte logged above it.
    #[serde(default = "default_snapshot_log_percent")]
    pub snapshot_log_percent: u64,
    /// Memory of one shard's store, in bytes: past it the store evicts
    /// (every replica alike). The same on every node.
    #[serde(default = "default_shard_capacity_bytes")]
    pub shard_capacity_bytes: u64,
    /// Reads under a leader lease (docs/design.md): no heartbeat round
    /// while a majority confirmed the leader less than about 237 ms ago.
    /// Linearizable while the nodes' clocks run within
    /// `lease_clock_drift_percent` of each other in rate; false: every
    /// read takes a ReadIndex round.
    #[serde(default = "default_lease_reads")]
    pub lease_reads: bool,
    /// The clock-drift bound (percent) the lease assumes; a larger bound
    /// gives a shorter lease.
    #[serde(default = "default_lease_clock_drift_percent")]
    pub lease_clock_drift_percent: u64,
    /// Client-side caching's write fence (docs/design.md "Client-side
    /// caching"), on the groups this node leads: a write is answered only
    /// once every node following the group's change feed has handed its
    /// invalidation to its tracking clients, or lost its lease. `false`:
    /// writes never wait for those nodes, and a value a client cached may
    /// lag an acknowledged write by up to the pollers' window (3 s) plus
    /// a poll. Set it the same on every node.
    #[serde(default = "default_write_fence")]
    pub write_fence: bool,
    /// Breaks safety on purpose: puts and appends are acknowledged before
    /// they commit. Only for the chaos harness's test that it catches a
    /// broken build (crates/chaos); never set it otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsafe_ack_before_commit: bool,
    /// Load-aware placement (`crate::balance`, docs/design.md): while this
    /// node's controller replica leads, read every node's requests per
    /// shard each `balance_interval_ms`, and when the same group stays the
    /// one to give a shard for `balance_after_intervals` intervals in a
    /// row, ask the controller to move one shard off it. Off by default;
    /// only nodes with a controller replica act on it (set it on all of
    /// them, so whichever leads balances).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub balance_load: bool,
    /// How often the balancer reads the loads (with `balance_load`).
    #[serde(default = "default_balance_interval_ms")]
    pub balance_interval_ms: u64,
    /// Consecutive intervals the same imbalance must last before a move.
    #[serde(default = "default_balance_after_intervals")]
    pub balance_after_intervals: u32,
    /// The default user's password on every client front end (Redis's
    /// `requirepass`). Not set: the default user needs none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirepass: Option<Secret>,
    /// More users, one Redis ACL-file line each
    /// (`user <name> <rules...>`, see `resp::acl`), applied in order
    /// after `requirepass`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<Secret>,
    /// With no password anywhere, the client listeners (gRPC, RESP, HTTP)
    /// bind only to loopback (127.0.0.1 or ::1, on their configured port)
    /// unless this is `false` (Redis's `protected-mode`).
    #[serde(default = "default_protected_mode")]
    pub protected_mode: bool,
    /// The IP address every listener of this node binds (gRPC, RESP,
    /// HTTP, the controller's and the data replica's peer ports, each on
    /// its port of the table), when this node's `host` is not an address
    /// of a local interface: a Kubernetes per-pod Service's ClusterIP, a
    /// NAT. `host` stays what peers, the controller and clients are told.
    /// Usually `0.0.0.0` (`::` for IPv6). Protected mode still applies:
    /// without a password the client listeners bind loopback, whatever
    /// this says. Not set: every listener binds `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_host: Option<String>,
    /// Redis Cluster mode on the RESP listener: `CLUSTER SLOTS` and
    /// friends describe the groups, and a key another group owns gets
    /// `-MOVED` to that group's leader (`redis-cli -c`, redis-py's
    /// `RedisCluster`). Default: proxy mode, any node answers any key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster_mode: bool,
    /// TLS on the client front ends (RESP, HTTP, gRPC); none: plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// `[clients]`: what one client connection may hold and how long.
    #[serde(default)]
    pub clients: ClientLimits,
    /// `[tracing]`: where spans go besides the log.
    #[serde(default, skip_serializing_if = "TracingSettings::is_default")]
    pub tracing: TracingSettings,
    /// `[replication]`: which groups replicate asynchronously.
    #[serde(default, skip_serializing_if = "ReplicationSettings::is_default")]
    pub replication: ReplicationSettings,
    /// `[disk_tier]`: which groups' shards keep what memory evicts on disk.
    #[serde(default, skip_serializing_if = "DiskTierSettings::is_default")]
    pub disk_tier: DiskTierSettings,
    pub nodes: Vec<NodeEntry>,
}

/// `[replication]`: asynchronous replication, per group (docs/design.md,
/// "Asynchronous replication"). Every node should list the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationSettings {
    /// Groups whose leader answers a plain `SET` (or gRPC `Put`) once it
    /// is in the leader's own log, before a majority has it: Redis-like
    /// latency, but such a write is lost if the leader fails before it
    /// reaches a majority. Reads never see a write before it commits.
    /// Default: none (every write waits for a majority).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub async_groups: Vec<u64>,
    /// Writes answered early that one leader may have outstanding at once
    /// (more wait for their commit): at most this many are lost when a
    /// leader fails.
    #[serde(default = "default_async_max_unreplicated")]
    pub async_max_unreplicated: usize,
}

impl Default for ReplicationSettings {
    fn default() -> ReplicationSettings {
        ReplicationSettings {
            async_groups: Vec::new(),
            async_max_unreplicated: default_async_max_unreplicated(),
        }
    }
}

impl ReplicationSettings {
    /// Largest `async_max_unreplicated` accepted.
    pub const MAX_UNREPLICATED: usize = 65_536;

    fn is_default(&self) -> bool {
        *self == ReplicationSettings::default()
    }

    /// The asynchronous replication of group `gid`, if it has it.
    pub fn early_acks(&self, gid: u64) -> Option<rsm::EarlyAcks> {
        self.async_groups.contains(&gid).then_some(rsm::EarlyAcks {
            max_unreplicated: self.async_max_unreplicated,
        })
    }

    fn validate(&self, groups: &BTreeMap<u64, Vec<(u64, SocketAddr)>>) -> Result<(), ConfigError> {
        if !(1..=Self::MAX_UNREPLICATED).contains(&self.async_max_unreplicated) {
            return Err(ConfigError::new(
                "replication.async_max_unreplicated",
                format!(
                    "{} is not in 1..={}",
                    self.async_max_unreplicated,
                    Self::MAX_UNREPLICATED
                ),
            ));
        }
        check_group_list("replication.async_groups", &self.async_groups, groups)
    }
}

/// `[disk_tier]`: the disk tier (L3, docs/design.md "The disk tier"), per
/// group. Off by default. Every node must list the same: the tier decides
/// which keys a shard keeps, so a group's replicas must agree on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskTierSettings {
    /// Groups whose shards' stores keep the entries memory evicts in
    /// segment files under `<data_dir>/disk/g<gid>` (a cache of replicated
    /// state, rebuilt from snapshots: cleared when the node starts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<u64>,
    /// Disk bytes of one shard's tier (keys + values + 64 per entry, as
    /// memory counts them); past it the oldest entries on disk go.
    #[serde(default = "default_disk_capacity_bytes")]
    pub capacity_bytes: u64,
    /// Size at which a segment file is sealed (and a unit of the
    /// collector's work).
    #[serde(default = "default_disk_segment_bytes")]
    pub segment_bytes: u64,
}

impl Default for DiskTierSettings {
    fn default() -> DiskTierSettings {
        DiskTierSettings {
            groups: Vec::new(),
            capacity_bytes: default_disk_capacity_bytes(),
            segment_bytes: default_disk_segment_bytes(),
        }
    }
}

impl DiskTierSettings {
    /// Bounds of `capacity_bytes`: 1 MiB to 16 TiB.
    pub const CAPACITY_BYTES: std::ops::RangeInclusive<u64> = (1 << 20)..=(1 << 44);
    /// Bounds of `segment_bytes`: 64 KiB to 1 GiB.
    pub const SEGMENT_BYTES: std::ops::RangeInclusive<u64> = (64 << 10)..=(1 << 30);

    fn is_default(&self) -> bool {
        *self == DiskTierSettings::default()
    }

    /// The tier of group `gid`'s shards, if it has one.
    pub fn disk(&self, gid: u64) -> Option<cache::store::DiskConfig> {
        self.groups
            .contains(&gid)
            .then_some(cache::store::DiskConfig {
                capacity_bytes: self.capacity_bytes,
                segment_bytes: self.segment_bytes,
            })
    }

    fn validate(&self, groups: &BTreeMap<u64, Vec<(u64, SocketAddr)>>) -> Result<(), ConfigError> {
        for (field, value, bounds) in [
            (
                "disk_tier.capacity_bytes",
                self.capacity_bytes,
                Self::CAPACITY_BYTES,
            ),
            (
                "disk_tier.segment_bytes",
                self.segment_bytes,
                Self::SEGMENT_BYTES,
            ),
        ] {
            if !bounds.contains(&value) {
                return Err(ConfigError::new(
                    field,
                    format!("{value} is not in {}..={}", bounds.start(), bounds.end()),
                ));
            }
        }
        check_group_list("disk_tier.groups", &self.groups, groups)
    }
}

/// A list of data groups in a setting (`field`): each a group of
/// `[[nodes]]`, none twice.
fn check_group_list(
    field: &str,
    listed: &[u64],
    groups: &BTreeMap<u64, Vec<(u64, SocketAddr)>>,
) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for &gid in listed {
        if !groups.contains_key(&gid) {
            return Err(ConfigError::new(
                field,
                format!("group {gid} is not a group of [[nodes]]"),
            ));
        }
        if !seen.insert(gid) {
            return Err(ConfigError::new(
                field,
                format!("group {gid} is listed twice"),
            ));
        }
    }
    Ok(())
}

fn default_disk_capacity_bytes() -> u64 {
    1 << 30
}

fn default_disk_segment_bytes() -> u64 {
    cache::store::disk::SEGMENT_BYTES_DEFAULT
}

fn default_async_max_unreplicated() -> usize {
    rsm::DEFAULT_MAX_UNREPLICATED
}

/// `[tracing]`: export of request spans (docs/design.md, "Tracing a
/// request"). Off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingSettings {
    /// An OTLP/gRPC collector (`http://host:4317`): the node sends its
    /// request spans there in batches. Not set: no export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
}

impl TracingSettings {
    /// Longest endpoint accepted.
    pub const ENDPOINT_CHARS_MAX: usize = 2048;

    fn is_default(&self) -> bool {
        *self == TracingSettings::default()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(());
        };
        let problem = if endpoint.len() > Self::ENDPOINT_CHARS_MAX {
            Some(format!(
                "is {} characters, over {}",
                endpoint.len(),
                Self::ENDPOINT_CHARS_MAX
            ))
        } else if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            || endpoint
                .parse::<axum::http::Uri>()
                .map_or(true, |uri| uri.host().is_none_or(str::is_empty))
        {
            Some(format!(
                "{endpoint:?} is not an http:// or https:// URL with a host"
            ))
        } else {
            None
        };
        match problem {
            Some(problem) => Err(ConfigError::new("tracing.otlp_endpoint", problem)),
            None => Ok(()),
        }
    }
}

/// `[clients]`: bounds on client connections, against clients that are
/// slow or hostile (docs/security.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientLimits {
    /// Most RESP connections at once (Redis's `maxclients`).
    #[serde(default = "default_max_clients")]
    pub max_clients: usize,
    /// RESP: close a connection that sends nothing for this long; 0: never
    /// (Redis's `timeout 0`).
    #[serde(default)]
    pub idle_timeout_ms: u64,
    /// RESP: close a client that reads none of its replies for this long
    /// (its commands wait meanwhile); 0: never.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// HTTP: a request's head must arrive within this long of the
    /// connection's start or the previous response (slowloris).
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Bytes of answers this node keeps for reads that allow staleness
    /// (`READONLY MAXSTALENESS`, `max_staleness_ms`) of keys it forwards
    /// (the read cache, docs/design.md); 0: off.
    #[serde(default = "default_read_cache_bytes")]
    pub read_cache_bytes: u64,
    /// Bytes of answers this node keeps for plain GETs of keys it
    /// forwards, invalidated by their groups (the near cache,
    /// `crate::near_cache`): every group's writes then wait for this
    /// node's feed poller. 0 (the default): off.
    #[serde(default)]
    pub near_cache_bytes: u64,
}

impl Default for ClientLimits {
    fn default() -> ClientLimits {
        ClientLimits {
            max_clients: default_max_clients(),
            idle_timeout_ms: 0,
            write_timeout_ms: default_write_timeout_ms(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            read_cache_bytes: default_read_cache_bytes(),
            near_cache_bytes: 0,
        }
    }
}

fn default_read_cache_bytes() -> u64 {
    32 << 20
}

impl ClientLimits {
    /// Most RESP connections a node may be configured for.
    pub const MAX_CLIENTS: usize = 100_000;
    /// Longest any of the timeouts may be (one hour).
    pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
    /// Largest `read_cache_bytes`.
    pub const MAX_READ_CACHE_BYTES: u64 = 64 << 30;

    fn validate(&self) -> Result<(), ConfigError> {
        for (field, bytes) in [
            ("clients.read_cache_bytes", self.read_cache_bytes),
            ("clients.near_cache_bytes", self.near_cache_bytes),
        ] {
            if bytes > Self::MAX_READ_CACHE_BYTES {
                return Err(ConfigError::new(
                    field,
                    format!("{bytes} is over {} (64 GiB)", Self::MAX_READ_CACHE_BYTES),
                ));
            }
        }
        if self.max_clients == 0 || self.max_clients > Self::MAX_CLIENTS {
            return Err(ConfigError::new(
                "clients.max_clients",
                format!("{} is not in 1..={}", self.max_clients, Self::MAX_CLIENTS),
            ));
        }
        for (field, value, zero_allowed) in [
            ("clients.idle_timeout_ms", self.idle_timeout_ms, true),
            ("clients.write_timeout_ms", self.write_timeout_ms, true),
            (
                "clients.header_read_timeout_ms",
                self.header_read_timeout_ms,
                false,
            ),
        ] {
            let low = u64::from(!zero_allowed);
            if value < low || value > Self::MAX_TIMEOUT_MS {
                return Err(ConfigError::new(
                    field,
                    format!("{value} is not in {low}..={}", Self::MAX_TIMEOUT_MS),
                ));
            }
        }
        Ok(())
    }

    /// A timeout in milliseconds where 0 means never.
    pub fn optional(ms: u64) -> Option<std::time::Duration> {
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    }
}

fn default_max_clients() -> usize {
    10_000
}

fn default_write_timeout_ms() -> u64 {
    60_000
}

fn default_header_read_timeout_ms() -> u64 {
    10_000
}

/// `[tls]`: the node's certificate for its client front ends (PEM files,
/// read again on SIGHUP). See docs/security.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf certificate.
    pub key: PathBuf,
    /// If set, every client must present a certificate signed by a CA in
    /// this file (Redis's `tls-auth-clients yes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// The cluster's CA: what this node trusts when it calls the other
    /// nodes' front ends (cluster status, the dashboard). Without it those
    /// calls fail and the other nodes show as unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Mutual TLS between nodes (Raft, migration, the controller): the
    /// cluster's CA. Set, every peer connection (`controller_port`,
    /// `data_port`) is TLS both ways and a peer must present a
    /// certificate this CA signed, naming its node
    /// (`node-<id>.<cluster_id>.distcache`); plain TCP is refused. Not
    /// set: peer traffic is plain TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_ca: Option<PathBuf>,
    /// The certificate this node presents to its peers (as server and as
    /// client), signed by `peer_ca`; default: `cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_cert: Option<PathBuf>,
    /// The private key of `peer_cert`; default: `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_key: Option<PathBuf>,
}

fn default_protected_mode() -> bool {
    true
}

/// A string that `Debug` (and so every log line) shows as `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("\"***\"")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// An ACL line with each password (`>p`, `<p`) and hash (`#h`, `!h`) rule
/// shown as `***` after its sign.
fn redact_acl_rules(line: &str) -> String {
    line.split(' ')
        .map(|rule| match rule.chars().next() {
            Some(sign @ ('>' | '<' | '#' | '!')) => format!("{sign}***"),
            _ => rule.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One node of the cluster as every node's configuration lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub id: u64,
    /// The IP address peers and clients reach this node at; its
    /// listeners bind it too unless the node sets `listen_host`.
    pub host: String,
    /// The public gRPC API.
    pub grpc_port: u16,
    /// The RESP (Redis protocol) listener, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp_port: Option<u16>,
    /// The HTTP gateway (REST API, probes, metrics, dashboard), if any.
    /// Conventionally 8080.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u16>,
    /// Peer traffic of this node's controller replica (if it hosts one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_port: Option<u16>,
    /// The data group this node hosts a replica of (if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<u64>,
    /// Peer traffic of this node's data replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_port: Option<u16>,
    /// This node's replica joins its running group (see the module docs):
    /// not a position of the group; Raft id [`JOINED_RAFT_ID_BASE`] + `id`.
    /// Keep it set after the node joined. Needs either `group` (a data
    /// replica joins that group) or `controller_port` (a controller
    /// replica joins the controller group), not both: one node joins one
    /// group at a time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joining: bool,
}

fn default_shard_count() -> usize {
    10
}

fn default_request_timeout_ms() -> u64 {
    5000
}

fn default_max_raft_state_bytes() -> u64 {
    8 << 20
}

/// The default of `snapshot_log_percent`.
pub const DEFAULT_SNAPSHOT_LOG_PERCENT: u64 = 10;
/// Bounds of `snapshot_log_percent`: past 400 the log outgrows the state
/// it replays into several times over.
pub const SNAPSHOT_LOG_PERCENT: std::ops::RangeInclusive<u64> = 0..=400;

fn default_snapshot_log_percent() -> u64 {
    DEFAULT_SNAPSHOT_LOG_PERCENT
}

/// The default of `shard_capacity_bytes` (the store's own default).
pub const DEFAULT_SHARD_CAPACITY_BYTES: u64 = 64 << 20;
/// Bounds of `shard_capacity_bytes`: at least one largest value, at most
/// 64 GiB.
pub const SHARD_CAPACITY_BYTES: std::ops::RangeInclusive<u64> = (1 << 20)..=(64 << 30);

fn default_shard_capacity_bytes() -> u64 {
    DEFAULT_SHARD_CAPACITY_BYTES
}

fn default_lease_reads() -> bool {
    true
}

fn default_write_fence() -> bool {
    true
}

fn default_lease_clock_drift_percent() -> u64 {
    10
}

fn default_balance_interval_ms() -> u64 {
    30_000
}

fn default_balance_after_intervals() -> u32 {
    3
}

/// Bounds of `balance_interval_ms`: at least 100 ms (one NodeStatus
/// round to every node must fit), at most an hour.
pub const BALANCE_INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
/// Bounds of `balance_after_intervals`.
pub const BALANCE_AFTER_INTERVALS: std::ops::RangeInclusive<u32> = 1..=100;

/// Largest `lease_clock_drift_percent`: past it the lease is too short to
/// be worth having (turn `lease_reads` off instead).
const MAX_LEASE_CLOCK_DRIFT_PERCENT: u64 = 50;

/// A configuration that cannot run, naming the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("configuration error in `{field}`: {problem}")]
pub struct ConfigError {
    /// The field, as written in the file (`nodes[2].grpc_port`), or the
    /// file itself for errors before any field.
    pub field: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Values from flags or the environment that replace the file's. The
/// per-node ones (`host`, ports, `group`) replace this node's `[[nodes]]`
/// entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub cluster_id: Option<String>,
    pub node_id: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub shard_count: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub max_raft_state_bytes: Option<u64>,
    pub host: Option<String>,
    pub grpc_port: Option<u16>,
    pub resp_port: Option<u16>,
    pub http_port: Option<u16>,
    pub controller_port: Option<u16>,
    pub data_port: Option<u16>,
    pub group: Option<u64>,
    pub listen_host: Option<String>,
    /// The default user's password (`requirepass`), e.g. from a
    /// Kubernetes Secret through `DISTCACHE_REQUIREPASS`.
    pub requirepass: Option<Secret>,
    pub protected_mode: Option<bool>,
    pub balance_load: Option<bool>,
    pub balance_interval_ms: Option<u64>,
}

/// Where each replica runs, derived from a valid configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Controller replicas in Raft id order: (node id, peer address).
    pub controller: Vec<(u64, SocketAddr)>,
    /// Data groups: gid -> replicas in Raft id order (the positions; no
    /// joining node).
    pub groups: BTreeMap<u64, Vec<(u64, SocketAddr)>>,
    /// Data replicas listed as joining their group: gid -> (node id, peer
    /// address), in node id order.
    pub joining: BTreeMap<u64, Vec<(u64, SocketAddr)>>,
    /// Controller replicas listed as joining the controller group: (node
    /// id, peer address), in node id order.
    pub controller_joining: Vec<(u64, SocketAddr)>,
    /// Every node's gRPC address.
    pub grpc: BTreeMap<u64, SocketAddr>,
}

impl NodeConfig {
    /// Parses TOML text; `source` names the file in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<NodeConfig, ConfigError> {
        toml::from_str(text).map_err(|error| {
            let message = error.message().to_string();
            let line_number = error
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let field = field_of_toml_error(&message, text, line_number)
                .unwrap_or_else(|| source.to_string());
            let problem = match line_number {
                Some(line) => format!("{message} ({source}, line {line})"),
                None => format!("{message} ({source})"),
            };
            ConfigError::new(field, problem)
        })
    }

    /// Replaces fields by the overrides that are set.
    pub fn apply(&mut self, overrides: &Overrides) -> Result<(), ConfigError> {
        if let Some(cluster_id) = &overrides.cluster_id {
            self.cluster_id.clone_from(cluster_id);
        }
        if let Some(node_id) = overrides.node_id {
            self.node_id = node_id;
        }
        if let Some(data_dir) = &overrides.data_dir {
            self.data_dir.clone_from(data_dir);
        }
        if let Some(shard_count) = overrides.shard_count {
            self.shard_count = shard_count;
        }
        if let Some(timeout) = overrides.request_timeout_ms {
            self.request_timeout_ms = timeout;
        }
        if let Some(bytes) = overrides.max_raft_state_bytes {
            self.max_raft_state_bytes = bytes;
        }
        if let Some(listen_host) = &overrides.listen_host {
            self.listen_host = Some(listen_host.clone());
        }
        if let Some(password) = &overrides.requirepass {
            self.requirepass = Some(password.clone());
        }
        if let Some(protected_mode) = overrides.protected_mode {
            self.protected_mode = protected_mode;
        }
        if let Some(balance_load) = overrides.balance_load {
            self.balance_load = balance_load;
        }
        if let Some(interval) = overrides.balance_interval_ms {
            self.balance_interval_ms = interval;
        }
        let per_node = overrides.host.is_some()
            || overrides.grpc_port.is_some()
            || overrides.resp_port.is_some()
            || overrides.http_port.is_some()
            || overrides.controller_port.is_some()
            || overrides.data_port.is_some()
            || overrides.group.is_some();
        if !per_node {
            return Ok(());
        }
        let node_id = self.node_id;
        let Some(entry) = self.nodes.iter_mut().find(|entry| entry.id == node_id) else {
            return Err(ConfigError::new(
                "node_id",
                format!("{node_id} is not an id of [[nodes]], so its ports cannot be overridden"),
            ));
        };
        if let Some(host) = &overrides.host {
            entry.host.clone_from(host);
        }
        if let Some(port) = overrides.grpc_port {
            entry.grpc_port = port;
        }
        if let Some(port) = overrides.resp_port {
            entry.resp_port = Some(port);
        }
        if let Some(port) = overrides.http_port {
            entry.http_port = Some(port);
        }
        if let Some(port) = overrides.controller_port {
            entry.controller_port = Some(port);
        }
        if let Some(port) = overrides.data_port {
            entry.data_port = Some(port);
        }
        if let Some(group) = overrides.group {
            entry.group = Some(group);
        }
        Ok(())
    }

    /// The effective configuration as TOML (`--print-config`).
    pub fn to_toml(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        toml::to_string_pretty(self).unwrap_or_else(|error| format!("# unprintable: {error}\n"))
    }

    /// [`NodeConfig::to_toml`] for showing (`--print-config`): the
    /// password and every password or hash in `users` as `***`.
    pub fn to_toml_redacted(&self) -> String {
        let mut shown = self.clone();
        if let Some(password) = &mut shown.requirepass {
            *password = Secret("***".to_owned());
        }
        for user in &mut shown.users {
            *user = Secret(redact_acl_rules(user.expose()));
        }
        shown.to_toml()
    }

    /// This node's entry.
    pub fn me(&self) -> Option<&NodeEntry> {
        self.nodes.iter().find(|entry| entry.id == self.node_id)
    }

    /// Checks everything a node needs before it starts; the first problem
    /// found is the error. On success, where every replica runs.
    pub fn validate(&self) -> Result<Topology, ConfigError> {
        validate_cluster_id(&self.cluster_id)?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data_dir", "is empty"));
        }
        if self.shard_count == 0 || self.shard_count > MAX_SHARD_COUNT {
            return Err(ConfigError::new(
                "shard_count",
                format!("{} is not in 1..={MAX_SHARD_COUNT}", self.shard_count),
            ));
        }
        if self.request_timeout_ms == 0 || self.request_timeout_ms > 600_000 {
            return Err(ConfigError::new(
                "request_timeout_ms",
                format!("{} is not in 1..=600000", self.request_timeout_ms),
            ));
        }
        if self.max_raft_state_bytes < 4096 {
            return Err(ConfigError::new(
                "max_raft_state_bytes",
                format!("{} is below the minimum of 4096", self.max_raft_state_bytes),
            ));
        }
        if !SNAPSHOT_LOG_PERCENT.contains(&self.snapshot_log_percent) {
            return Err(ConfigError::new(
                "snapshot_log_percent",
                format!(
                    "{} is not in {}..={}",
                    self.snapshot_log_percent,
                    SNAPSHOT_LOG_PERCENT.start(),
                    SNAPSHOT_LOG_PERCENT.end()
                ),
            ));
        }
        if !SHARD_CAPACITY_BYTES.contains(&self.shard_capacity_bytes) {
            return Err(ConfigError::new(
                "shard_capacity_bytes",
                format!(
                    "{} is not in {}..={}",
                    self.shard_capacity_bytes,
                    SHARD_CAPACITY_BYTES.start(),
                    SHARD_CAPACITY_BYTES.end()
                ),
            ));
        }
        if self.lease_clock_drift_percent > MAX_LEASE_CLOCK_DRIFT_PERCENT {
            return Err(ConfigError::new(
                "lease_clock_drift_percent",
                format!(
                    "{} is over {MAX_LEASE_CLOCK_DRIFT_PERCENT} (set lease_reads = false instead)",
                    self.lease_clock_drift_percent
                ),
            ));
        }
        if !BALANCE_INTERVAL_MS.contains(&self.balance_interval_ms) {
            return Err(ConfigError::new(
                "balance_interval_ms",
                format!(
                    "{} is not in {}..={}",
                    self.balance_interval_ms,
                    BALANCE_INTERVAL_MS.start(),
                    BALANCE_INTERVAL_MS.end()
                ),
            ));
        }
        if !BALANCE_AFTER_INTERVALS.contains(&self.balance_after_intervals) {
            return Err(ConfigError::new(
                "balance_after_intervals",
                format!(
                    "{} is not in {}..={}",
                    self.balance_after_intervals,
                    BALANCE_AFTER_INTERVALS.start(),
                    BALANCE_AFTER_INTERVALS.end()
                ),
            ));
        }
        self.clients.validate()?;
        self.tracing.validate()?;
        let listen_ip = self.listen_ip()?;
        self.acl()?;
        self.check_tls()?;
        if self.nodes.is_empty() {
            return Err(ConfigError::new("nodes", "lists no nodes"));
        }
        if self.nodes.len() > MAX_NODES {
            return Err(ConfigError::new(
                "nodes",
                format!(
                    "{} nodes, more than the limit of {MAX_NODES}",
                    self.nodes.len()
                ),
            ));
        }
        let mut topology = Topology {
            controller: Vec::new(),
            groups: BTreeMap::new(),
            joining: BTreeMap::new(),
            controller_joining: Vec::new(),
            grpc: BTreeMap::new(),
        };
        let mut addresses: BTreeMap<SocketAddr, String> = BTreeMap::new();
        let mut entries: Vec<(usize, &NodeEntry)> = self.nodes.iter().enumerate().collect();
        entries.sort_by_key(|(_, entry)| entry.id);
        let mut ids = BTreeSet::new();
        for (index, entry) in &entries {
            let at = |field: &str| format!("nodes[{index}].{field}");
            if entry.id == 0 {
                return Err(ConfigError::new(at("id"), "0 is reserved; ids start at 1"));
            }
            if !ids.insert(entry.id) {
                return Err(ConfigError::new(
                    at("id"),
                    format!("{} is listed twice", entry.id),
                ));
            }
            let host: IpAddr = entry.host.parse().map_err(|_| {
                ConfigError::new(at("host"), format!("{:?} is not an IP address", entry.host))
            })?;
            let mut claim = |field: &str, port: u16| -> Result<SocketAddr, ConfigError> {
                if port == 0 {
                    return Err(ConfigError::new(at(field), "port 0 is not allowed"));
                }
                let address = SocketAddr::new(host, port);
                if let Some(other) = addresses.insert(address, at(field)) {
                    return Err(ConfigError::new(
                        at(field),
                        format!("{address} is already used by {other}"),
                    ));
                }
                Ok(address)
            };
            topology
                .grpc
                .insert(entry.id, claim("grpc_port", entry.grpc_port)?);
            if let Some(port) = entry.resp_port {
                claim("resp_port", port)?;
            }
            if let Some(port) = entry.http_port {
                claim("http_port", port)?;
            }
            if entry.joining && entry.controller_port.is_some() && entry.group.is_some() {
                return Err(ConfigError::new(
                    at("joining"),
                    "a joining node joins one group: give it a `group` (its data replica joins) \
                     or a `controller_port` (its controller replica joins), not both",
                ));
            }
            if entry.joining && entry.group.is_none() && entry.controller_port.is_none() {
                return Err(ConfigError::new(
                    at("joining"),
                    "a joining node needs the `group` it joins, or a `controller_port` to join \
                     the controller group",
                ));
            }
            if let Some(port) = entry.controller_port {
                let replicas = if entry.joining {
                    &mut topology.controller_joining
                } else {
                    &mut topology.controller
                };
                replicas.push((entry.id, claim("controller_port", port)?));
            }
            match (entry.group, entry.data_port) {
                (None, None) => {}
                (Some(0), _) => {
                    return Err(ConfigError::new(
                        at("group"),
                        "0 is reserved; groups start at 1",
                    ));
                }
                (Some(gid), Some(port)) => {
                    let address = claim("data_port", port)?;
                    let replicas = if entry.joining {
                        &mut topology.joining
                    } else {
                        &mut topology.groups
                    };
                    replicas.entry(gid).or_default().push((entry.id, address));
                }
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        at("data_port"),
                        "missing: a node with a `group` needs a `data_port`",
                    ));
                }
                (None, Some(_)) => {
                    return Err(ConfigError::new(
                        at("group"),
                        "missing: a node with a `data_port` needs a `group`",
                    ));
                }
            }
        }
        if topology.controller.is_empty() {
            return Err(ConfigError::new(
                "nodes",
                "no node has a `controller_port`: the cluster needs a controller replica",
            ));
        }
        if topology.controller.len() > MAX_REPLICAS_PER_GROUP {
            return Err(ConfigError::new(
                "nodes",
                format!(
                    "{} controller replicas, more than the limit of {MAX_REPLICAS_PER_GROUP}",
                    topology.controller.len()
                ),
            ));
        }
        if topology.groups.is_empty() {
            return Err(ConfigError::new(
                "nodes",
                "no node has a `group`: the cluster needs a data group",
            ));
        }
        if let Some(gid) = topology
            .joining
            .keys()
            .find(|gid| !topology.groups.contains_key(gid))
        {
            return Err(ConfigError::new(
                "nodes",
                format!(
                    "group {gid} has only joining nodes: a group starts with at least one \
                     node without `joining`"
                ),
            ));
        }
        for (gid, replicas) in &topology.groups {
            if replicas.len() > MAX_REPLICAS_PER_GROUP {
                return Err(ConfigError::new(
                    "nodes",
                    format!(
                        "group {gid} has {} replicas, more than the limit of {MAX_REPLICAS_PER_GROUP}",
                        replicas.len()
                    ),
                ));
            }
        }
        self.replication.validate(&topology.groups)?;
        self.disk_tier.validate(&topology.groups)?;
        if !ids.contains(&self.node_id) {
            return Err(ConfigError::new(
                "node_id",
                format!("{} is not an id of [[nodes]]", self.node_id),
            ));
        }
        if let (Some(listen_ip), Some(advertised)) = (listen_ip, topology.grpc.get(&self.node_id))
            && listen_ip.is_ipv4()
            && advertised.is_ipv6()
        {
            // A v4 socket never accepts what peers send to a v6 address
            // (the other way round, `::` also accepts IPv4 on Linux).
            return Err(ConfigError::new(
                "listen_host",
                format!(
                    "{listen_ip} is an IPv4 address but this node's host {} is IPv6 \
                     (use \"::\")",
                    advertised.ip()
                ),
            ));
        }
        Ok(topology)
    }

    /// The address this node's listeners bind (`listen_host`), parsed;
    /// None when not set (each binds this node's `host`).
    pub fn listen_ip(&self) -> Result<Option<IpAddr>, ConfigError> {
        let Some(text) = &self.listen_host else {
            return Ok(None);
        };
        text.parse().map(Some).map_err(|_| {
            ConfigError::new(
                "listen_host",
                format!(
                    "{text:?} is not an IP address (host names are not resolved; \
                     \"0.0.0.0\" listens on every IPv4 interface)"
                ),
            )
        })
    }
}

impl Topology {
    /// The positions of group `gid` (0: the controller group): its
    /// replicas in Raft id order, joining ones left out. None for an
    /// unknown group.
    pub fn positions(&self, gid: u64) -> Option<&[(u64, SocketAddr)]> {
        if gid == 0 {
            return Some(&self.controller);
        }
        self.groups.get(&gid).map(Vec::as_slice)
    }

    /// The replicas listed as joining group `gid` (0: the controller
    /// group), in node id order.
    pub fn joining_of(&self, gid: u64) -> &[(u64, SocketAddr)] {
        if gid == 0 {
            return &self.controller_joining;
        }
        self.joining.get(&gid).map_or(&[], Vec::as_slice)
    }

    /// The replica the table lists at peer address `addr`, as (group,
    /// node id); group 0 is the controller group.
    pub fn replica_at(&self, addr: SocketAddr) -> Option<(u64, u64)> {
        let controller = self
            .controller
            .iter()
            .chain(&self.controller_joining)
            .map(|&(node, at)| (0, node, at));
        let data = self
            .groups
            .iter()
            .chain(&self.joining)
            .flat_map(|(&gid, replicas)| replicas.iter().map(move |&(node, at)| (gid, node, at)));
        controller
            .chain(data)
            .find(|&(_, _, at)| at == addr)
            .map(|(gid, node, _)| (gid, node))
    }

    /// The Raft id node `node_id`'s replica of group `gid` (0: the
    /// controller group) has: its position among the group's replicas,
    /// else (a node that joined, or will) [`JOINED_RAFT_ID_BASE`] +
    /// `node_id`. None for an unknown group.
    pub fn raft_id(&self, gid: u64, node_id: u64) -> Option<u64> {
        let replicas = self.positions(gid)?;
        Some(
            match replicas.iter().position(|(node, _)| *node == node_id) {
                Some(position) => position as u64,
                None => JOINED_RAFT_ID_BASE + node_id,
            },
        )
    }

    /// The node whose replica of group `gid` (0: the controller group)
    /// has Raft id `raft_id` (the inverse of [`Topology::raft_id`]); None
    /// for an unknown group or an id that is neither a position nor a
    /// joined node's.
    pub fn node_of_raft_id(&self, gid: u64, raft_id: u64) -> Option<u64> {
        let replicas = self.positions(gid)?;
        if raft_id >= JOINED_RAFT_ID_BASE {
            return Some(raft_id - JOINED_RAFT_ID_BASE).filter(|node| *node != 0);
        }
        replicas
            .get(usize::try_from(raft_id).ok()?)
            .map(|(node, _)| *node)
    }
}

impl NodeConfig {
    /// The users of the client front ends: `requirepass`, then `users`.
    pub fn acl(&self) -> Result<::resp::Acl, ConfigError> {
        if let Some(password) = &self.requirepass
            && password.expose().is_empty()
        {
            return Err(ConfigError::new(
                "requirepass",
                "is empty; omit it for no password",
            ));
        }
        let mut acl = match &self.requirepass {
            Some(password) => ::resp::Acl::with_requirepass(password.expose()),
            None => ::resp::Acl::default(),
        };
        for (index, line) in self.users.iter().enumerate() {
            acl.apply_line(line.expose())
                .map_err(|error| ConfigError::new(format!("users[{index}]"), error.to_string()))?;
        }
        Ok(acl)
    }

    /// Reads every file of `[tls]`: each must exist, be readable and hold
    /// what it should, and the key must fit the certificate.
    #[cfg(not(madsim))]
    fn check_tls(&self) -> Result<(), ConfigError> {
        let Some(settings) = &self.tls else {
            return Ok(());
        };
        // The peer fields' shape first: it needs no file.
        crate::peer_tls::PeerTlsFiles::check_fields(settings, &self.cluster_id, self.node_id)?;
        crate::tls::ServerTls::from_settings(settings)?;
        crate::peer_tls::PeerTlsFiles::from_settings(settings, &self.cluster_id, self.node_id)?;
        Ok(())
    }

    /// The simulation runs plain TCP only.
    #[cfg(madsim)]
    fn check_tls(&self) -> Result<(), ConfigError> {
        match &self.tls {
            Some(_) => Err(ConfigError::new(
                "tls",
                "TLS is not available in the simulation build",
            )),
            None => Ok(()),
        }
    }

    /// Whether the client listeners must bind to loopback: protected mode
    /// and a default user that needs no password.
    pub fn loopback_only(&self) -> Result<bool, ConfigError> {
        Ok(self.protected_mode && !self.acl()?.requires_auth())
    }
}

/// The key a TOML error is about: the one a `missing field` message names,
/// else the key on the line the error points at.
fn field_of_toml_error(message: &str, text: &str, line_number: Option<usize>) -> Option<String> {
    if let Some(rest) = message.strip_prefix("missing field `") {
        return rest.split('`').next().map(str::to_string);
    }
    let line = text.lines().nth(line_number?.checked_sub(1)?)?;
    let key = line.split('=').next()?.trim();
    let plausible = !key.is_empty()
        && key.len() < 64
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plausible.then(|| key.to_string())
}

fn validate_cluster_id(cluster_id: &str) -> Result<(), ConfigError> {
    if cluster_id.is_empty() || cluster_id.len() > 64 {
        return Err(ConfigError::new("cluster_id", "must be 1 to 64 characters"));
    }
    if !cluster_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ConfigError::new(
            "cluster_id",
            format!("{cluster_id:?} may hold only letters, digits, '-', '_' and '.'"),
        ));
    }
    Ok(())
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    fn with_tls(tls: TlsSettings) -> NodeConfig {
        let mut config = NodeConfig::from_toml(
            r#"
cluster_id = "t"
node_id = 1
data_dir = "/tmp/distcache-config-test"
[[nodes]]
id = 1
host = "127.0.0.1"
grpc_port = 50051
controller_port = 7001
group = 1
data_port = 7101
"#,
            "test.toml",
        )
        .expect("parse");
        config.tls = Some(tls);
        config
    }

    fn error_of(tls: TlsSettings) -> ConfigError {
        with_tls(tls)
            .validate()
            .expect_err("a bad [tls] is refused")
    }

    fn with_disk_tier(section: &str) -> Result<NodeConfig, ConfigError> {
        let text = format!(
            r#"
cluster_id = "t"
node_id = 1
data_dir = "/tmp/distcache-config-test"
{section}
[[nodes]]
id = 1
host = "127.0.0.1"
grpc_port = 50051
controller_port = 7001
group = 1
data_port = 7101
"#
        );
        let config = NodeConfig::from_toml(&text, "test.toml")?;
        config.validate()?;
        Ok(config)
    }

    /// `[disk_tier]`: off by default; on for the listed groups only; an
    /// unknown group, a repeated one, a bound or an unknown field refused
    /// with the field at fault.
    #[test]
    fn disk_tier_settings_are_per_group_and_checked() {
        let off = with_disk_tier("").expect("no [disk_tier] is valid");
        assert_eq!(off.disk_tier.disk(1), None);
        let on = with_disk_tier("[disk_tier]\ngroups = [1]\ncapacity_bytes = 2097152")
            .expect("a valid [disk_tier]");
        assert_eq!(
            on.disk_tier.disk(1),
            Some(cache::store::DiskConfig {
                capacity_bytes: 2 << 20,
                segment_bytes: cache::store::disk::SEGMENT_BYTES_DEFAULT,
            })
        );
        assert_eq!(on.disk_tier.disk(2), None);
        for (section, field) in [
            ("[disk_tier]\ngroups = [2]", "disk_tier.groups"),
            ("[disk_tier]\ngroups = [1, 1]", "disk_tier.groups"),
            (
                "[disk_tier]\ngroups = [1]\nsegment_bytes = 10",
                "disk_tier.segment_bytes",
            ),
            (
                "[disk_tier]\ngroups = [1]\ncapacity_bytes = 0",
                "disk_tier.capacity_bytes",
            ),
        ] {
            let error = with_disk_tier(section).expect_err(section);
            assert_eq!(error.field, field, "{section}: {error}");
        }
        assert!(with_disk_tier("[disk_tier]\ngroup = [1]").is_err());
    }

    /// The bad `[tls]` sections docs/security.md lists, each refused with
    /// the field at fault.
    #[test]
    fn bad_tls_files_are_refused_naming_the_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one =
            crate::tls::generate_demo_certificates(&dir.path().join("one"), &[]).expect("generate");
        let two =
            crate::tls::generate_demo_certificates(&dir.path().join("two"), &[]).expect("generate");
        let good = TlsSettings {
            cert: one.cert.clone(),
            key: one.key.clone(),
            client_ca: None,
            ca: Some(one.ca.clone()),
            peer_ca: None,
            peer_cert: None,
            peer_key: None,
        };
        with_tls(good.clone()).validate().expect("a good [tls]");

        let missing = error_of(TlsSettings {
            cert: dir.path().join("absent.pem"),
            ..good.clone()
        });
        assert_eq!(missing.field, "tls.cert");
        assert!(missing.problem.contains("cannot read"), "{missing}");

        let not_pem = dir.path().join("garbage.pem");
        std::fs::write(&not_pem, "hello").expect("write");
        let garbage = error_of(TlsSettings {
            cert: not_pem.clone(),
            ..good.clone()
        });
        assert_eq!(garbage.field, "tls.cert");
        assert!(garbage.problem.contains("no certificate"), "{garbage}");

        let no_key = error_of(TlsSettings {
            key: one.cert.clone(),
            ..good.clone()
        });
        assert_eq!(no_key.field, "tls.key");
        assert!(no_key.problem.contains("no private key"), "{no_key}");

        let mismatched = error_of(TlsSettings {
            key: two.key.clone(),
            ..good.clone()
        });
        assert_eq!(mismatched.field, "tls.key");
        assert!(mismatched.problem.contains("does not fit"), "{mismatched}");

        let bad_client_ca = error_of(TlsSettings {
            client_ca: Some(not_pem.clone()),
            ..good.clone()
        });
        assert_eq!(bad_client_ca.field, "tls.client_ca");

        let bad_ca = error_of(TlsSettings {
            ca: Some(dir.path().join("absent-ca.pem")),
            ..good.clone()
        });
        assert_eq!(bad_ca.field, "tls.ca");

        // Unreadable: a directory where a file should be.
        let unreadable = error_of(TlsSettings {
            key: dir.path().to_path_buf(),
            ..good
        });
        assert_eq!(unreadable.field, "tls.key");
        assert!(unreadable.problem.contains("cannot read"), "{unreadable}");
    }

    /// Mutual TLS between nodes: the peer files are checked like the
    /// others, and the peer certificate must name this node of this
    /// cluster (`node-1.t.distcache`).
    #[test]
    fn bad_peer_tls_settings_are_refused_naming_the_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ours =
            crate::tls::generate_cluster_certificates(&dir.path().join("ours"), &[], "t", &[1, 2])
                .expect("generate");
        let (cert_1, key_1) = ours.peers[&1].clone();
        let (cert_2, key_2) = ours.peers[&2].clone();
        let good = TlsSettings {
            cert: ours.cert.clone(),
            key: ours.key.clone(),
            client_ca: None,
            ca: Some(ours.ca.clone()),
            peer_ca: Some(ours.ca.clone()),
            peer_cert: Some(cert_1.clone()),
            peer_key: Some(key_1.clone()),
        };
        with_tls(good.clone())
            .validate()
            .expect("a good [tls] with peer TLS");

        let another_node = error_of(TlsSettings {
            peer_cert: Some(cert_2.clone()),
            peer_key: Some(key_2),
            ..good.clone()
        });
        assert_eq!(another_node.field, "tls.peer_cert");
        assert!(
            another_node
                .problem
                .contains("does not name node-1.t.distcache"),
            "{another_node}"
        );

        // Without peer_cert the front ends' certificate must name the node.
        let front_end_certificate = error_of(TlsSettings {
            peer_cert: None,
            peer_key: None,
            ..good.clone()
        });
        assert_eq!(front_end_certificate.field, "tls.cert");

        let half = error_of(TlsSettings {
            peer_key: None,
            ..good.clone()
        });
        assert_eq!(half.field, "tls.peer_key");

        let no_ca = error_of(TlsSettings {
            peer_ca: None,
            ..good.clone()
        });
        assert_eq!(no_ca.field, "tls.peer_ca");

        let bad_ca = error_of(TlsSettings {
            peer_ca: Some(dir.path().join("absent-ca.pem")),
            ..good.clone()
        });
        assert_eq!(bad_ca.field, "tls.peer_ca");

        let mismatched_key = error_of(TlsSettings {
            peer_key: Some(ours.key.clone()),
            ..good
        });
        assert_eq!(mismatched_key.field, "tls.peer_key");
        assert!(
            mismatched_key.problem.contains("does not fit"),
            "{mismatched_key}"
        );
    }

    /// A node with `controller_port` and `joining = true` (no group) joins
    /// the controller group: not a position, Raft id 2^32 + its id.
    #[test]
    fn a_joining_controller_replica_is_no_position_and_has_a_joined_raft_id() {
        let config = NodeConfig::from_toml(
            r#"
cluster_id = "t"
node_id = 8
data_dir = "/tmp/distcache-config-test"
[[nodes]]
id = 1
host = "127.0.0.1"
grpc_port = 50051
controller_port = 7001
group = 1
data_port = 7101
[[nodes]]
id = 8
host = "127.0.0.1"
grpc_port = 50058
controller_port = 7008
joining = true
"#,
            "test.toml",
        )
        .expect("parse");
        let topology = config.validate().expect("valid");
        let one: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let eight: SocketAddr = "127.0.0.1:7008".parse().unwrap();
        assert_eq!(topology.controller, vec![(1, one)]);
        assert_eq!(topology.controller_joining, vec![(8, eight)]);
        assert_eq!(topology.positions(0), Some(&[(1, one)][..]));
        assert_eq!(topology.joining_of(0), &[(8, eight)][..]);
        assert_eq!(topology.raft_id(0, 1), Some(0));
        assert_eq!(topology.raft_id(0, 8), Some(JOINED_RAFT_ID_BASE + 8));
        assert_eq!(
            topology.node_of_raft_id(0, JOINED_RAFT_ID_BASE + 8),
            Some(8)
        );
        assert_eq!(topology.node_of_raft_id(0, 1), None);
        assert!(topology.joining_of(1).is_empty());
        assert_eq!(topology.raft_id(2, 1), None, "no group 2");
    }

    const ONE_NODE: &str = r#"
cluster_id = "t"
node_id = 1
data_dir = "/tmp/distcache-config-test"
[[nodes]]
id = 1
host = "10.96.0.17"
grpc_port = 50051
controller_port = 7001
group = 1
data_port = 7101
"#;

    /// `--print-config` shows no password or hash; the file form keeps them.
    #[test]
    fn the_printed_configuration_hides_passwords() {
        let text = format!(
            "requirepass = \"hunter2\"\nusers = [\"user alice on >s3cret #{} ~* +@all\"]\n{ONE_NODE}",
            "a".repeat(64)
        );
        let config = NodeConfig::from_toml(&text, "t.toml").expect("parse");
        let shown = config.to_toml_redacted();
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(!shown.contains(&"a".repeat(64)), "{shown}");
        assert!(
            shown.contains("user alice on >*** #*** ~* +@all"),
            "{shown}"
        );
        assert!(shown.contains("requirepass = \"***\""), "{shown}");
        assert!(config.to_toml().contains("hunter2"));
    }

    /// `listen_host`: parsed from the file, replaced by an override,
    /// printed and read back; not set, the listeners bind `host`.
    #[test]
    fn listen_host_parses_overrides_and_prints() {
        let plain = NodeConfig::from_toml(ONE_NODE, "t.toml").expect("parse");
        assert_eq!(plain.listen_host, None);
        assert_eq!(plain.listen_ip(), Ok(None));
        assert!(
            !plain.to_toml().contains("listen_host"),
            "{}",
            plain.to_toml()
        );

        let text = format!("listen_host = \"0.0.0.0\"\n{ONE_NODE}");
        let mut config = NodeConfig::from_toml(&text, "t.toml").expect("parse");
        assert_eq!(config.listen_host.as_deref(), Some("0.0.0.0"));
        config.validate().expect("valid");
        assert_eq!(config.listen_ip(), Ok(Some(IpAddr::from([0, 0, 0, 0]))));
        // `host` is still what the others are told.
        assert_eq!(
            config.validate().expect("valid").grpc[&1],
            "10.96.0.17:50051".parse().expect("an address")
        );
        let again = NodeConfig::from_toml(&config.to_toml(), "printed").expect("reparse");
        assert_eq!(again, config);

        config
            .apply(&Overrides {
                listen_host: Some("::".into()),
                ..Overrides::default()
            })
            .expect("apply");
        assert_eq!(
            config.listen_ip(),
            Ok(Some("::".parse().expect("an address")))
        );
        // An override that sets nothing else leaves it alone.
        config.apply(&Overrides::default()).expect("apply");
        assert_eq!(config.listen_host.as_deref(), Some("::"));
        config.validate().expect("`::` serves an IPv4 host too");
    }

    #[test]
    fn balance_settings_parse_override_and_are_bounded() {
        let plain = NodeConfig::from_toml(ONE_NODE, "t.toml").expect("parse");
        assert!(!plain.balance_load, "off by default");
        assert_eq!(plain.balance_interval_ms, 30_000);
        assert_eq!(plain.balance_after_intervals, 3);
        let text = format!(
            "balance_load = true\nbalance_interval_ms = 500\nbalance_after_intervals = 2\n{ONE_NODE}"
        );
        let mut config = NodeConfig::from_toml(&text, "t.toml").expect("parse");
        config.validate().expect("valid");
        assert!(config.balance_load);
        assert_eq!(
            (config.balance_interval_ms, config.balance_after_intervals),
            (500, 2)
        );
        let again = NodeConfig::from_toml(&config.to_toml(), "printed").expect("reparse");
        assert_eq!(again, config);
        config
            .apply(&Overrides {
                balance_load: Some(false),
                balance_interval_ms: Some(99),
                ..Overrides::default()
            })
            .expect("apply");
        assert!(!config.balance_load);
        let error = config.validate().expect_err("99 ms is too short");
        assert_eq!(error.field, "balance_interval_ms");
        config.balance_interval_ms = 1000;
        config.balance_after_intervals = 0;
        let error = config.validate().expect_err("0 intervals");
        assert_eq!(error.field, "balance_after_intervals");
    }

    /// A `listen_host` that is no IP address, or an IPv4 one for an IPv6
    /// host, is refused naming the field.
    #[test]
    fn the_write_fence_is_on_unless_turned_off() {
        let plain = NodeConfig::from_toml(ONE_NODE, "t.toml").expect("parse");
        assert!(plain.write_fence, "on by default");
        let off = NodeConfig::from_toml(&format!("write_fence = false\n{ONE_NODE}"), "t.toml")
            .expect("parse");
        assert!(!off.write_fence);
        let bad = NodeConfig::from_toml(&format!("write_fence = \"no\"\n{ONE_NODE}"), "t.toml")
            .expect_err("not a boolean");
        assert!(bad.to_string().contains("write_fence"), "{bad}");
    }

    #[test]
    fn the_near_cache_is_off_unless_sized_and_bounded() {
        let plain = NodeConfig::from_toml(ONE_NODE, "t.toml").expect("parse");
        assert_eq!(plain.clients.near_cache_bytes, 0, "off by default");
        let mut sized = plain.clone();
        sized.clients.near_cache_bytes = 1 << 20;
        sized.validate().expect("1 MiB is fine");
        sized.clients.near_cache_bytes = ClientLimits::MAX_READ_CACHE_BYTES + 1;
        let error = sized.validate().expect_err("over 64 GiB");
        assert_eq!(error.field, "clients.near_cache_bytes", "{error}");
    }

    #[test]
    fn snapshot_log_percent_defaults_to_10_and_is_bounded() {
        let config = NodeConfig::from_toml(ONE_NODE, "t.toml").expect("parse");
        assert_eq!(config.snapshot_log_percent, 10);
        let text = format!("snapshot_log_percent = 400\n{ONE_NODE}");
        let config = NodeConfig::from_toml(&text, "t.toml").expect("parse");
        assert_eq!(config.snapshot_log_percent, 400);
        config.validate().expect("400 is the bound");
        let text = format!("snapshot_log_percent = 401\n{ONE_NODE}");
        let error = NodeConfig::from_toml(&text, "t.toml")
            .and_then(|config| config.validate().map(|_| config))
            .expect_err("over 400");
        assert_eq!(error.field, "snapshot_log_percent", "{error}");
        assert!(error.problem.contains("is not in 0..=400"), "{error}");
    }

    #[test]
    fn bad_listen_host_is_refused_naming_the_field() {
        for bad in ["distcache-g1-0", "0.0.0.0:7101", "", "256.0.0.1"] {
            let mut config = NodeConfig::from_toml(ONE_NODE, "t.toml").expect("parse");
            config.listen_host = Some(bad.into());
            let error = config.validate().expect_err("a bad listen_host is refused");
            assert_eq!(error.field, "listen_host", "{error}");
            assert!(error.problem.contains("is not an IP address"), "{error}");
        }

        let mut six = NodeConfig::from_toml(&ONE_NODE.replace("10.96.0.17", "fd00::17"), "t.toml")
            .expect("parse");
        six.listen_host = Some("0.0.0.0".into());
        let error = six
            .validate()
            .expect_err("IPv4 listen_host for an IPv6 host");
        assert_eq!(error.field, "listen_host", "{error}");
        assert!(error.problem.contains("is IPv6"), "{error}");
        six.listen_host = Some("::".into());
        six.validate().expect("`::` for an IPv6 host");
    }

    #[test]
    fn tls_section_parses_and_prints() {
        let text = r#"
cluster_id = "t"
node_id = 1
data_dir = "/tmp/x"

[tls]
cert = "/etc/distcache/node.pem"
key = "/etc/distcache/node-key.pem"
client_ca = "/etc/distcache/clients-ca.pem"
peer_ca = "/etc/distcache/cluster-ca.pem"
peer_cert = "/etc/distcache/peer.pem"
peer_key = "/etc/distcache/peer-key.pem"

[[nodes]]
id = 1
host = "127.0.0.1"
grpc_port = 50051
controller_port = 7001
group = 1
data_port = 7101
"#;
        let config = NodeConfig::from_toml(text, "t.toml").expect("parse");
        let tls = config.tls.clone().expect("[tls]");
        assert_eq!(tls.key, PathBuf::from("/etc/distcache/node-key.pem"));
        assert_eq!(tls.ca, None);
        assert_eq!(
            tls.peer_ca,
            Some(PathBuf::from("/etc/distcache/cluster-ca.pem"))
        );
        let again = NodeConfig::from_toml(&config.to_toml(), "printed").expect("reparse");
        assert_eq!(again, config);
        let unknown = NodeConfig::from_toml(&text.replace("client_ca =", "clientca ="), "t.toml")
            .expect_err("unknown key");
        assert!(unknown.problem.contains("unknown field"), "{unknown}");
    }
}
