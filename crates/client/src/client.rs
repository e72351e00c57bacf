//! [`Client`]: one handle shared by any number of concurrent callers.
//!
//! ```text
//!  client.set(key, ..)
//!    session = idle session from the pool (at most max_sessions exist)
//!    loop until operation_deadline:
//!      shard = key_to_shard(key); gid = routing.shard_owners[shard]
//!      node  = routing.leader of gid, else another node or a seed (any
//!              node answers any key), nodes that gave no answer last
//!      gRPC call on the node's shared channel, with the session's seq
//!        ok / final error  -> answer
//!        unavailable / deadline -> mark routing stale, next node, back off
//!    session back to the pool (its seq used up whatever happened)
//! ```
//!
//! Routing comes from `Admin.Status` and is re-read when a call fails or it
//! is older than `routing_max_age`, in the background while calls go on
//! with the old map (see [`crate::routing`]). A stale routing entry costs
//! one forwarding hop inside the cluster, never a wrong answer: every node
//! answers every key.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::error::{ClientError, is_retryable};
use crate::near::{self, Near, NearConfig, NearStats, StreamOpener};
use crate::proto::admin_client::AdminClient;
use crate::proto::cache_client::CacheClient;
use crate::routing::{Router, Routing, first_answer};

/// A `Cache` client whose calls carry the client's credentials.
#[cfg(not(madsim))]
type Cache = CacheClient<tonic::codegen::InterceptedService<Channel, Credentials>>;
/// A `Cache` client whose calls carry the client's credentials (madsim's
/// generated client takes the interceptor as a type parameter).
#[cfg(madsim)]
type Cache = CacheClient<Channel, Credentials>;

/// Adds the `authorization` metadata entry (HTTP basic auth of a user of
/// the node's ACL) to every call; nothing when no credentials were given.
#[derive(Clone, Default)]
pub struct Credentials {
    value: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl std::fmt::Debug for Credentials {
    /// Never shows the password.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(if self.value.is_some() {
            "Credentials(***)"
        } else {
            "Credentials(none)"
        })
    }
}

impl Credentials {
    /// Basic credentials of `user` (`default` for `requirepass`).
    pub fn basic(user: &str, password: &str) -> Result<Credentials, ClientError> {
        use base64::Engine;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let value = format!("Basic {encoded}")
            .parse()
            .map_err(|_| ClientError::BadAddress {
                address: user.to_string(),
                detail: "credentials that do not fit a metadata value".into(),
            })?;
        Ok(Credentials { value: Some(value) })
    }

    fn apply<T>(&self, request: &mut tonic::Request<T>) {
        if let Some(value) = &self.value {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        self.apply(&mut request);
        Ok(request)
    }
}
use crate::proto::{self, SetCondition};

/// How a [`Client`] connects and retries.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Deadline of one gRPC call to one node.
    pub rpc_timeout: Duration,
    /// Give up (with [`ClientError::Timeout`]) after this long.
    pub operation_deadline: Duration,
    /// Exactly-once sessions kept for writes; a write waits for a free one.
    pub max_sessions: usize,
    /// Re-read the shard map at least this often.
    pub routing_max_age: Duration,
    /// Pause after a failed attempt, doubling up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A near cache of what `get` read, dropped when the cluster says it
    /// changed (see [`crate::near`] for the guarantee: a cached value may
    /// lag a write of another client by milliseconds, at worst about 5 s).
    /// `None` (the default): every `get` is a linearizable read.
    pub near_cache: Option<NearConfig>,
    /// Which replica of a key's group may answer `get` (outside the near
    /// cache). [`ReadFrom::AnyReplica`] sends each read to the next node
    /// hosting a replica of the key's group, in turn, and the group's
    /// followers answer too, as linearizably: a hot key's reads spread
    /// over its group instead of all landing on its leader.
    pub read_from: ReadFrom,
}

/// Where a read may be served (the wire's `ReadFrom`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadFrom {
    /// The group's leader (the default).
    #[default]
    Leader,
    /// Any replica of the group: a follower asks its leader for a read
    /// index and answers once it has applied through it, so the read is
    /// still linearizable. Costs a hop when the node asked holds no
    /// replica of the key's group.
    AnyReplica,
    /// Any replica of the group, with an answer at most this old (at most
    /// 60 s; a larger bound is refused as an invalid argument). The answer
    /// reflects every write acknowledged more than this before the read
    /// began, and was committed; it may be older than an answer this
    /// client got before from another replica. A follower answers from a
    /// read index it was granted within the bound, without asking its
    /// leader: much cheaper than [`ReadFrom::AnyReplica`] when reads are
    /// many.
    AnyReplicaWithin(Duration),
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            rpc_timeout: Duration::from_secs(2),
            operation_deadline: Duration::from_secs(10),
            max_sessions: 64,
            routing_max_age: Duration::from_secs(5),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(200),
            near_cache: None,
            read_from: ReadFrom::Leader,
        }
    }
}

/// Options of [`Client::set_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Milliseconds until the key expires (`None`: never; 0 is refused).
    pub ttl_ms: Option<u64>,
    pub condition: Condition,
}

/// When a set applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Condition {
    #[default]
    Always,
    /// Only if the key is absent (Redis NX).
    IfAbsent,
    /// Only if the key is present (Redis XX).
    IfPresent,
}

/// Which nodes an operation tries.
#[derive(Clone, Copy)]
enum Route<'a> {
    /// The key's leader first, then the others.
    Key(&'a [u8]),
    /// The known nodes in turn from `start`.
    Any { start: usize },
    /// The nodes hosting a replica of the key's group, in turn from
    /// `start`, then the others (reads any replica may answer).
    Replicas { key: &'a [u8], start: usize },
}

/// One exactly-once identity and its next seq.
#[derive(Clone, Copy, Debug)]
struct SessionState {
    client_id: u64,
    next_seq: u64,
}

struct Shared {
    config: ClientConfig,
    /// One multiplexed HTTP/2 channel per node URL; bounded by the nodes
    /// the cluster lists plus the seeds.
    channels: Mutex<BTreeMap<String, Channel>>,
    /// The seeds, the shard map, the nodes that gave no answer, and the
    /// one routing refresh.
    router: Router,
    idle_sessions: Mutex<Vec<SessionState>>,
    session_permits: Semaphore,
    credentials: Credentials,
    /// The near cache, if configured.
    near: Option<Arc<Near>>,
    /// Where the next read any replica may answer starts in the node
    /// list (random at first, so clients do not all start at one node).
    next_spread: AtomicUsize,
}

impl Shared {
    fn channel(&self, url: &str) -> Channel {
        let mut channels = self.channels.lock().expect("channels lock");
        if let Some(channel) = channels.get(url) {
            return channel.clone();
        }
        // The URL was validated when it entered the client (seeds) or is a
        // node address the cluster published; a bad one fails at connect.
        let channel = match Endpoint::from_shared(url.to_string()) {
            Ok(endpoint) => endpoint
                .connect_timeout(self.config.rpc_timeout)
                .connect_lazy(),
            Err(_) => Endpoint::from_static("http://0.0.0.0:1").connect_lazy(),
        };
        channels.insert(url.to_string(), channel.clone());
        channel
    }

    fn cache_client(&self, url: &str) -> Cache {
        CacheClient::with_interceptor(self.channel(url), self.credentials.clone())
    }

    /// Starts a routing refresh in the background unless one is running
    /// (callers share it); it asks the candidates staggered and installs
    /// the first answer. Wait for it with [`Router::refresh_waiter`].
    fn start_refresh(self: &Arc<Shared>) {
        if !self.router.begin_refresh() {
            return;
        }
        let shared = Arc::clone(self);
        // Holds the client for at most the refresh's own bound (see
        // `routing::first_answer`).
        labrpc::runtime::spawn(async move {
            let candidates = shared.router.refresh_candidates();
            let outcome = first_answer(&candidates, |url| shared.ask_status(url))
                .await
                .map(|status| shared.install_routing(status));
            shared.router.end_refresh(outcome);
        });
    }

    /// `Admin.Status` of one node, within the RPC timeout; a node that
    /// gives no answer becomes suspect.
    async fn ask_status(&self, url: String) -> Result<proto::StatusReply, ClientError> {
        let mut admin = AdminClient::new(self.channel(&url));
        let mut request = tonic::Request::new(proto::StatusRequest {});
        request.set_timeout(self.config.rpc_timeout);
        self.credentials.apply(&mut request);
        match tokio::time::timeout(self.config.rpc_timeout, admin.status(request)).await {
            Ok(Ok(reply)) => {
                self.router.clear_suspect(&url);
                Ok(reply.into_inner())
            }
            Ok(Err(status)) => {
                if gave_no_answer(&status) {
                    self.router.suspect(&url);
                }
                Err(ClientError::from_status(&status))
            }
            Err(_) => {
                self.router.suspect(&url);
                Err(ClientError::Timeout {
                    deadline_ms: millis(self.config.rpc_timeout),
                    attempts: 1,
                    last_failure: format!("{url} did not answer"),
                })
            }
        }
    }

    fn install_routing(&self, status: proto::StatusReply) {
        let mut leaders = BTreeMap::new();
        for group in &status.groups {
            if !group.leader_grpc_addr.is_empty()
                && let Ok(url) = normalize_address(&group.leader_grpc_addr)
            {
                leaders.insert(group.gid, url);
            }
        }
        let nodes = status
            .nodes
            .iter()
            .filter(|node| node.reachable)
            .filter_map(|node| normalize_address(&node.grpc_addr).ok())
            .collect();
        let unreachable = status
            .nodes
            .iter()
            .filter(|node| !node.reachable)
            .filter_map(|node| normalize_address(&node.grpc_addr).ok())
            .collect();
        let mut members: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for node in status.nodes.iter().filter(|node| node.reachable) {
            let Ok(url) = normalize_address(&node.grpc_addr) else {
                continue;
            };
            for replica in node
                .replicas
                .iter()
                .filter(|replica| replica.role == "data")
            {
                members.entry(replica.gid).or_default().push(url.clone());
            }
        }
        self.router.install(Routing {
            config_num: status.config_num,
            shard_owners: status.shard_owners,
            leaders,
            nodes,
            unreachable,
            members,
            read_at: Some(labrpc::runtime::now()),
        });
    }
}

/// Whether a failed call's status came from the client's side (a refused,
/// reset or timed-out connection) rather than from the node: every status
/// a node sends carries an `ErrorInfo` ([`crate::details`]), so a node
/// that answered "not the leader" or "busy" is alive and stays a
/// candidate.
fn gave_no_answer(status: &tonic::Status) -> bool {
    crate::details::error_info(status).is_none()
}

impl StreamOpener for Shared {
    fn near(&self) -> Option<&Arc<Near>> {
        self.near.as_ref()
    }

    /// The seeds (the nodes the user named, usually the nearest), then the
    /// other known nodes.
    fn stream_nodes(&self) -> Vec<String> {
        let routing = self.router.routing();
        let mut nodes = self.router.seeds().to_vec();
        for node in &routing.nodes {
            if !nodes.contains(node) {
                nodes.push(node.clone());
            }
        }
        nodes
    }

    async fn open(&self, node: &str) -> Result<tonic::Streaming<proto::TrackEvent>, tonic::Status> {
        let mut client = self.cache_client(node);
        Ok(client.track(proto::TrackRequest {}).await?.into_inner())
    }

    fn rpc_timeout(&self) -> Duration {
        self.config.rpc_timeout
    }
}

/// A client of a distcache cluster. Cheap to clone: clones share the
/// connections, the routing and the session pool.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

/// Drops `key` from the near cache when a write ends, however it ends.
struct InvalidateOnDrop<'a> {
    near: &'a Near,
    key: &'a [u8],
}

impl Drop for InvalidateOnDrop<'_> {
    fn drop(&mut self) {
        self.near.invalidate(&[self.key]);
    }
}

/// Accepts `host:port` or a full `http://host:port` URL.
pub(crate) fn normalize_address(address: &str) -> Result<String, ClientError> {
    let trimmed = address.trim();
    if trimmed.is_empty() {
        return Err(ClientError::BadAddress {
            address: address.to_string(),
            detail: "empty".into(),
        });
    }
    let url = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    Endpoint::from_shared(url.clone()).map_err(|error| ClientError::BadAddress {
        address: address.to_string(),
        detail: error.to_string(),
    })?;
    Ok(url)
}

/// A retryable status in a few words: tonic puts a refused connection in
/// the status's source chain, not its message.
fn describe_status(status: &tonic::Status) -> String {
    use std::error::Error as _;
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = status.source();
    while let Some(cause) = source {
        // Transport errors repeat their cause in their own message.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn random_client_id() -> u64 {
    labrpc::runtime::random_u64() | 1
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Client {
    /// A client that starts from `seeds` (any nodes of the cluster). Nothing
    /// is contacted until the first call.
    pub fn new(seeds: &[&str], config: ClientConfig) -> Result<Client, ClientError> {
        if seeds.is_empty() {
            return Err(ClientError::NoSeeds);
        }
        let seeds = seeds
            .iter()
            .map(|seed| normalize_address(seed))
            .collect::<Result<Vec<_>, _>>()?;
        let max_sessions = config.max_sessions.max(1);
        let near = config
            .near_cache
            .clone()
            .map(|near| Arc::new(Near::new(near)));
        Ok(Client {
            shared: Arc::new(Shared {
                config,
                channels: Mutex::new(BTreeMap::new()),
                router: Router::new(seeds),
                idle_sessions: Mutex::new(Vec::new()),
                session_permits: Semaphore::new(max_sessions),
                credentials: Credentials::default(),
                near,
                next_spread: AtomicUsize::new(labrpc::runtime::random_u64() as usize),
            }),
        })
    }

    /// A client from `seeds` whose calls authenticate as `user` with
    /// `password` (servers with `requirepass` or ACL users).
    pub fn with_credentials(
        seeds: &[&str],
        config: ClientConfig,
        user: &str,
        password: &str,
    ) -> Result<Client, ClientError> {
        let credentials = Credentials::basic(user, password)?;
        let mut client = Client::new(seeds, config)?;
        if let Some(shared) = Arc::get_mut(&mut client.shared) {
            shared.credentials = credentials;
        }
        Ok(client)
    }

    /// Connects to `seed` with the default settings.
    pub fn connect(seed: &str) -> Result<Client, ClientError> {
        Client::new(&[seed], ClientConfig::default())
    }

    /// Re-reads the shard map: starts a refresh (or joins the one
    /// running) and waits for its outcome. A refresh asks the seeds and
    /// known nodes staggered, not one after another, so a node that does
    /// not answer delays it by a fraction of a second (150 ms), not by an
    /// RPC timeout.
    pub async fn refresh_routing(&self) -> Result<(), ClientError> {
        let waiter = self.shared.router.refresh_waiter();
        self.shared.start_refresh();
        waiter.outcome().await
    }

    /// The configuration number of the shard map in use (0: none read yet).
    pub fn routing_config_num(&self) -> u64 {
        self.shared.router.routing().config_num
    }

    /// Runs `call` against the node that should own `key` until it gives a
    /// final answer or the operation deadline passes.
    async fn retry<T, F, Fut>(&self, key: Option<&[u8]>, call: F) -> Result<T, ClientError>
    where
        F: FnMut(Cache) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = labrpc::runtime::now() + self.shared.config.operation_deadline;
        self.retry_until(key, deadline, call).await
    }

    /// [`Client::retry`] with the operation's deadline given.
    async fn retry_until<T, F, Fut>(
        &self,
        key: Option<&[u8]>,
        deadline: Instant,
        call: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Cache) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let route = key.map_or(Route::Any { start: 0 }, Route::Key);
        self.retry_routed(route, deadline, call).await
    }

    /// [`Client::retry_until`] to the nodes `route` names.
    async fn retry_routed<T, F, Fut>(
        &self,
        route: Route<'_>,
        deadline: Instant,
        mut call: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(Cache) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let config = &self.shared.config;
        let router = &self.shared.router;
        let mut backoff = config.backoff_min;
        let mut attempt = 0usize;
        let mut last_failure = String::from("no attempt made");
        loop {
            if router.is_stale(config.routing_max_age) {
                if router.has_routing() {
                    // The old map serves meanwhile: at worst a hop.
                    self.shared.start_refresh();
                } else {
                    // No map yet: wait for the first (bounded by the
                    // deadline); a failed one leaves the seeds to try, as
                    // any node answers.
                    let waiter = router.refresh_waiter();
                    self.shared.start_refresh();
                    let remaining = deadline.saturating_duration_since(labrpc::runtime::now());
                    let _ = tokio::time::timeout(remaining, waiter.outcome()).await;
                }
            }
            let now = labrpc::runtime::now();
            if now >= deadline {
                return Err(ClientError::Timeout {
                    deadline_ms: millis(config.operation_deadline),
                    attempts: attempt as u64,
                    last_failure,
                });
            }
            let url = match route {
                Route::Key(key) => router.node_for(Some(key), attempt),
                Route::Any { start } => router.node_for(None, start.wrapping_add(attempt)),
                Route::Replicas { key, start } => router.replica_for(key, start, attempt),
            };
            attempt += 1;
            let timeout = config.rpc_timeout.min(deadline - now);
            let client = self.shared.cache_client(&url);
            match tokio::time::timeout(timeout, call(client)).await {
                Ok(Ok(reply)) => {
                    router.clear_suspect(&url);
                    return Ok(reply.into_inner());
                }
                Ok(Err(status)) if !is_retryable(&status) => {
                    return Err(ClientError::from_status(&status));
                }
                Ok(Err(status)) => {
                    tracing::debug!(%url, %status, "retrying elsewhere");
                    if gave_no_answer(&status) {
                        router.suspect(&url);
                    }
                    last_failure = format!("{url}: {}", describe_status(&status));
                }
                Err(_) => {
                    tracing::debug!(%url, "call timed out; retrying");
                    router.suspect(&url);
                    last_failure = format!("{url} did not answer within {} ms", millis(timeout));
                }
            }
            router.mark_stale();
            let remaining = deadline.saturating_duration_since(labrpc::runtime::now());
            tokio::time::sleep(backoff.min(remaining)).await;
            backoff = (backoff * 2).min(config.backoff_max);
        }
    }

    /// Runs a write with a session from the pool: every retry carries the
    /// same `(client_id, seq)`, so the write applies at most once.
    async fn write<T, F, Fut>(&self, key: &[u8], mut call: F) -> Result<T, ClientError>
    where
        F: FnMut(Cache, proto::Session) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let _permit = self
            .shared
            .session_permits
            .acquire()
            .await
            .map_err(|_| ClientError::NoSeeds)?;
        let mut state = self
            .shared
            .idle_sessions
            .lock()
            .expect("sessions lock")
            .pop()
            .unwrap_or_else(|| SessionState {
                client_id: random_client_id(),
                next_seq: 1,
            });
        let session = proto::Session {
            client_id: state.client_id,
            seq: state.next_seq,
        };
        // Used up whatever happens: a write that timed out may still apply.
        state.next_seq += 1;
        // The near cache drops the key before the write and again after its
        // answer, failure or cancellation, spoiling reads of it in flight
        // meanwhile: a get after this write returned never sees the older
        // value.
        let _dropped_after = self.shared.near.as_ref().map(|near| {
            near.invalidate(&[key]);
            InvalidateOnDrop { near, key }
        });
        let result = self.retry(Some(key), |client| call(client, session)).await;
        self.shared
            .idle_sessions
            .lock()
            .expect("sessions lock")
            .push(state);
        result
    }

    /// The key's value, or `None` if absent or expired. With a near cache
    /// ([`ClientConfig::near_cache`]) it may come from there.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        let deadline = labrpc::runtime::now() + self.shared.config.operation_deadline;
        if let Some(near) = &self.shared.near {
            if let Some(cached) = near.get(key) {
                return Ok(cached.map(|value| value.to_vec()));
            }
            if near.needs_stream_task() {
                labrpc::runtime::spawn(near::run_stream(Arc::downgrade(&self.shared)));
            }
            // Misses may all go to the stream's node and never retry: keep
            // the map fresh anyway (in the background), so that the client
            // knows the other nodes when that node goes.
            if self
                .shared
                .router
                .is_stale(self.shared.config.routing_max_age)
            {
                self.shared.start_refresh();
            }
            if let Some(flight) = near.start(key) {
                // One try at the stream's node, which remembers the key for
                // the stream before reading it; a final error is the
                // answer, anything else ends in a plain read.
                let mut client = self.shared.cache_client(&flight.node);
                let request = proto::GetRequest {
                    key: key.to_vec(),
                    tracking_id: flight.tracking_id,
                    ..proto::GetRequest::default()
                };
                let timeout = self
                    .shared
                    .config
                    .rpc_timeout
                    .min(deadline.saturating_duration_since(labrpc::runtime::now()));
                match tokio::time::timeout(timeout, client.get(request)).await {
                    Ok(Ok(reply)) => {
                        let reply = reply.into_inner();
                        let value = reply.found.then_some(reply.value);
                        flight.finish(reply.tracked, value.as_deref().map(Arc::from));
                        return Ok(value);
                    }
                    Ok(Err(status)) if !is_retryable(&status) => {
                        return Err(ClientError::from_status(&status));
                    }
                    Ok(Err(_)) | Err(_) => {}
                }
            }
        }
        let spread = || Route::Replicas {
            key,
            start: self.shared.next_spread.fetch_add(1, Ordering::Relaxed),
        };
        let (route, read_from, max_staleness_ms) = match self.shared.config.read_from {
            ReadFrom::Leader => (Route::Key(key), proto::ReadFrom::Leader, 0),
            ReadFrom::AnyReplica => (spread(), proto::ReadFrom::AnyReplica, 0),
            ReadFrom::AnyReplicaWithin(bound) => (
                spread(),
                proto::ReadFrom::AnyReplica,
                u64::try_from(bound.as_millis()).unwrap_or(u64::MAX),
            ),
        };
        let reply = self
            .retry_routed(route, deadline, |mut client| {
                let request = proto::GetRequest {
                    key: key.to_vec(),
                    read_from: read_from as i32,
                    max_staleness_ms,
                    ..proto::GetRequest::default()
                };
                async move { client.get(request).await }
            })
            .await?;
        Ok(reply.found.then_some(reply.value))
    }

    /// How the near cache did; `None` without one.
    pub fn near_stats(&self) -> Option<NearStats> {
        self.shared.near.as_ref().map(|near| near.stats())
    }

    pub async fn set(&self, key: &[u8], value: &[u8]) -> Result<(), ClientError> {
        self.set_with(key, value, SetOptions::default())
            .await
            .map(|_| ())
    }

    /// Sets with a TTL and/or a condition; whether it applied.
    pub async fn set_with(
        &self,
        key: &[u8],
        value: &[u8],
        options: SetOptions,
    ) -> Result<bool, ClientError> {
        let condition = match options.condition {
            Condition::Always => SetCondition::Always,
            Condition::IfAbsent => SetCondition::IfAbsent,
            Condition::IfPresent => SetCondition::IfPresent,
        };
        let reply = self
            .write(key, |mut client, session| {
                let request = proto::SetRequest {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    ttl_ms: options.ttl_ms,
                    condition: condition as i32,
                    session: Some(session),
                };
                async move { client.set(request).await }
            })
            .await?;
        Ok(reply.applied)
    }

    /// Removes the key; whether it was there.
    pub async fn delete(&self, key: &[u8]) -> Result<bool, ClientError> {
        let reply = self
            .write(key, |mut client, session| {
                let request = proto::DeleteRequest {
                    key: key.to_vec(),
                    session: Some(session),
                };
                async move { client.delete(request).await }
            })
            .await?;
        Ok(reply.existed)
    }

    /// Sets the key to `value` if it holds `expected` (`None`: absent);
    /// whether it swapped.
    pub async fn compare_and_set(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, ClientError> {
        self.compare_and_set_with_ttl(key, expected, value, None)
            .await
    }

    /// [`Client::compare_and_set`] whose new value expires `ttl_ms` after
    /// the swap (`None`: never; 0 is refused).
    pub async fn compare_and_set_with_ttl(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<bool, ClientError> {
        let reply = self
            .write(key, |mut client, session| {
                let request = proto::CompareAndSetRequest {
                    key: key.to_vec(),
                    expected: expected.map(<[u8]>::to_vec),
                    value: value.to_vec(),
                    ttl_ms,
                    session: Some(session),
                };
                async move { client.compare_and_set(request).await }
            })
            .await?;
        Ok(reply.swapped)
    }

    /// Appends to the key's value (absent: starts empty); the value's
    /// length in bytes after the append.
    pub async fn append(&self, key: &[u8], value: &[u8]) -> Result<u64, ClientError> {
        let reply = self
            .write(key, |mut client, session| {
                let request = proto::AppendRequest {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    session: Some(session),
                };
                async move { client.append(request).await }
            })
            .await?;
        Ok(reply.length)
    }

    /// Adds `delta` to the key's decimal integer (absent: 0); the new
    /// value. A value that is not an integer, or an overflow, is
    /// [`ClientError::Server`] (`FailedPrecondition`) or
    /// [`ClientError::InvalidArgument`] (`OutOfRange`); nothing changed.
    pub async fn increment(&self, key: &[u8], delta: i64) -> Result<i64, ClientError> {
        let reply = self
            .write(key, |mut client, session| {
                let request = proto::IncrementRequest {
                    key: key.to_vec(),
                    delta,
                    session: Some(session),
                };
                async move { client.increment(request).await }
            })
            .await?;
        Ok(reply.value)
    }

    /// Gives the key a time to live of `ttl_ms` (0 is refused); whether
    /// the key was there.
    pub async fn expire(&self, key: &[u8], ttl_ms: u64) -> Result<bool, ClientError> {
        let reply = self
            .write(key, |mut client, session| {
                let request = proto::ExpireRequest {
                    key: key.to_vec(),
                    ttl_ms,
                    session: Some(session),
                };
                async move { client.expire(request).await }
            })
            .await?;
        Ok(reply.applied)
    }

    /// Removes the key's time to live; whether it had one.
    pub async fn persist(&self, key: &[u8]) -> Result<bool, ClientError> {
        let reply = self
            .write(key, |mut client, session| {
                let request = proto::PersistRequest {
                    key: key.to_vec(),
                    session: Some(session),
                };
                async move { client.persist(request).await }
            })
            .await?;
        Ok(reply.applied)
    }

    /// The key's remaining time to live: `None` if the key is absent,
    /// `Some(None)` if it has none, `Some(Some(ms))` otherwise.
    pub async fn ttl(&self, key: &[u8]) -> Result<Option<Option<u64>>, ClientError> {
        let reply = self
            .retry(Some(key), |mut client| {
                let request = proto::TtlRequest { key: key.to_vec() };
                async move { client.ttl(request).await }
            })
            .await?;
        Ok(reply.found.then_some(reply.ttl_ms))
    }

    /// Reads several keys (each linearizably; not one common instant).
    pub async fn multi_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, ClientError> {
        let reads = keys.iter().map(|key| self.get(key));
        futures::future::join_all(reads).await.into_iter().collect()
    }
}
