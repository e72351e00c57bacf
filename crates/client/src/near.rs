//! The near cache: values this client read, kept in its own memory and
//! dropped when the cluster says they changed (issue 22's L1).
//!
//! ```text
//!  get(k) ─ hit ─────────────────────────────► cached value (no call)
//!         ─ miss ─ stream open? ── no ───────► plain Get (nothing cached)
//!                        │ yes
//!                        ▼
//!    Get{k, tracking_id} to the stream's node ─► value, tracked
//!    cache it only if tracked, the stream is the same one, and no news of
//!    k (or flush) came while the Get was out
//!
//!  stream task: Track on one node ─► tracking_id, then
//!    Invalidated(keys) ─► drop them (and spoil Gets of them in flight)
//!    Flush / a broken stream / QUIET_LIMIT without any event ─► drop all
//!  own writes: drop k before sending and again after the answer
//! ```
//!
//! **The guarantee.** A value served from the near cache is one the
//! cluster held at some point after the read that cached it was sent, and
//! it is dropped:
//! - at once, for this client's own writes (read-your-writes: a `get`
//!   after a write of this client returned never sees the older value);
//! - for a write through the stream's node, before that write's writer is
//!   answered, and for a write through another node, once the key's group
//!   leader applied it, normally within a round trip; then the
//!   invalidation's trip to this client;
//! - when the node cannot follow a group it sends `Flush` within about
//!   5 s, and when the stream is silent for [`QUIET_LIMIT`] (the node or
//!   the network between went away) this client drops everything itself.
//!
//! So a cached value lags an acknowledged write by at most about 5 s (in
//! practice milliseconds); it is not a linearizable read. Reads without
//! the near cache ([`crate::ClientConfig::near_cache`] `None`, the
//! default) stay linearizable.
//!
//! Bounds: the cache holds at most `capacity_bytes` (keys and values, plus
//! [`ENTRY_OVERHEAD_BYTES`] per entry), each entry at most `ttl`; absent
//! keys are cached too (a write of them is told like any other).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use cache::near::{Clock, NearCache, NearCacheConfig};

/// How a client's near cache is sized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NearConfig {
    /// Most bytes held (keys, values and [`ENTRY_OVERHEAD_BYTES`] each).
    pub capacity_bytes: u64,
    /// Longest an entry is kept, told of changes or not (a safety net, not
    /// the mechanism: invalidations are).
    pub ttl: Duration,
}

impl Default for NearConfig {
    fn default() -> NearConfig {
        NearConfig {
            capacity_bytes: 64 << 20,
            ttl: Duration::from_secs(60),
        }
    }
}

/// What each cached entry is counted as on top of its key and value.
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;
/// The stream is given up (and everything dropped) after this long
/// without any event; the node sends a heartbeat every second.
pub const QUIET_LIMIT: Duration = Duration::from_secs(3);
/// Pause before opening a stream again after one broke.
const REOPEN_PAUSE: Duration = Duration::from_millis(100);

/// How the near cache did, since the client was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NearStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that went to the cluster.
    pub misses: u64,
    /// Keys dropped because the cluster (or this client) changed them.
    pub invalidations: u64,
    /// Times everything was dropped (a flush, a broken stream).
    pub flushes: u64,
    /// Entries and bytes held now.
    pub entries: u64,
    pub bytes: u64,
}

/// The near cache's clock: the runtime seam's (simulated under madsim).
struct RuntimeClock {
    start: tokio::time::Instant,
}

impl Clock for RuntimeClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(
            labrpc::runtime::now()
                .saturating_duration_since(self.start)
                .as_millis(),
        )
        .unwrap_or(u64::MAX)
    }
}

/// A cached answer: the value, or `None` for "absent".
pub(crate) type Cached = Option<Arc<[u8]>>;

/// Gets of one key in flight, and when the key was last told as changed.
#[derive(Debug, Default)]
struct Flights {
    count: u32,
    /// The news counter's value when the key was last told as changed (0:
    /// not while these Gets were out).
    changed_at: u64,
}

#[derive(Debug, Default)]
struct State {
    /// The open stream: its node and tracking id. None: nothing is cached.
    stream: Option<(String, u64)>,
    /// Bumped by every invalidation, flush and stream change.
    news: u64,
    /// The news counter at the last flush or stream change.
    flushed_at: u64,
    flights: HashMap<Vec<u8>, Flights>,
}

/// One client's near cache; shared by its clones.
pub(crate) struct Near {
    cache: NearCache<Vec<u8>, Cached, RuntimeClock>,
    config: NearConfig,
    /// Taken by every insert, invalidation and flush (never by a hit), so
    /// an insert cannot land after the news that spoils it.
    state: Mutex<State>,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
}

/// A Get sent with a tracking id: what to check when it answers. Dropped
/// without [`Flight::finish`] (the Get failed or was cancelled), nothing
/// is cached.
pub(crate) struct Flight {
    near: Arc<Near>,
    key: Vec<u8>,
    /// The news counter when it was sent.
    sent_at: u64,
    pub(crate) node: String,
    pub(crate) tracking_id: u64,
    /// Whether the node tracked the key, and what it answered.
    answer: Option<(bool, Cached)>,
}

impl Flight {
    /// The Get answered: `value` (`None`: absent), tracked or not.
    pub(crate) fn finish(mut self, tracked: bool, value: Cached) {
        self.answer = Some((tracked, value));
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let answer = self.answer.take();
        let key = std::mem::take(&mut self.key);
        self.near.land(key, self.sent_at, self.tracking_id, answer);
    }
}

impl Near {
    pub(crate) fn new(config: NearConfig) -> Near {
        let clock = RuntimeClock {
            start: labrpc::runtime::now(),
        };
        let cache_config = NearCacheConfig {
            default_ttl_ms: Some(ttl_ms(config.ttl)),
            ..NearCacheConfig::new(config.capacity_bytes.max(ENTRY_OVERHEAD_BYTES * 64))
        };
        Near {
            cache: NearCache::new(cache_config, clock),
            config,
            state: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    /// The cached answer for `key`, if any.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Cached> {
        let cached = self.cache.get(key);
        if cached.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        cached
    }

    /// A Get of `key` is about to be sent; `None` if no stream is open (the
    /// answer must not be cached).
    pub(crate) fn start(self: &Arc<Self>, key: &[u8]) -> Option<Flight> {
        let mut state = self.state.lock().expect("near cache lock");
        let (node, tracking_id) = state.stream.clone()?;
        state.flights.entry(key.to_vec()).or_default().count += 1;
        Some(Flight {
            near: Arc::clone(self),
            key: key.to_vec(),
            sent_at: state.news,
            node,
            tracking_id,
            answer: None,
        })
    }

    /// A flight ended with `answer` (`None`: no answer). Cached if the node
    /// tracked it, the stream is the one it was sent under, and no news of
    /// its key (or flush) came meanwhile.
    fn land(&self, key: Vec<u8>, sent_at: u64, tracking_id: u64, answer: Option<(bool, Cached)>) {
        let mut state = self.state.lock().expect("near cache lock");
        let mut spoiled = state.flushed_at > sent_at
            || state.stream.as_ref().map(|(_, id)| *id) != Some(tracking_id);
        if let Some(flights) = state.flights.get_mut(&key) {
            spoiled |= flights.changed_at > sent_at;
            flights.count -= 1;
            if flights.count == 0 {
                state.flights.remove(&key);
            }
        }
        if let Some((true, value)) = answer
            && !spoiled
        {
            let weight = ENTRY_OVERHEAD_BYTES
                + key.len() as u64
                + value.as_ref().map_or(0, |value| value.len() as u64);
            // Too heavy for a shard: not cached (refused, nothing changes).
            self.cache
                .insert_with(key, value, weight, Some(ttl_ms(self.config.ttl)));
        }
    }

    /// `keys` changed: dropped, and Gets of them in flight spoiled.
    pub(crate) fn invalidate<K: AsRef<[u8]>>(&self, keys: &[K]) {
        let mut state = self.state.lock().expect("near cache lock");
        state.news += 1;
        let news = state.news;
        for key in keys {
            let key = key.as_ref();
            self.cache.remove(key);
            if let Some(flights) = state.flights.get_mut(key) {
                flights.changed_at = news;
            }
        }
        self.invalidations
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
    }

    /// Drops everything; `stream` is the stream from now on.
    fn flush(&self, stream: Option<(String, u64)>) {
        let mut state = self.state.lock().expect("near cache lock");
        state.news += 1;
        state.flushed_at = state.news;
        state.stream = stream;
        self.cache.clear();
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> NearStats {
        let held = self.cache.stats();
        NearStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            entries: held.entries,
            bytes: held.weight,
        }
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// What the stream task needs from the client: its near cache, a node to
/// open the stream on (rotating after failures), and the call itself.
pub(crate) trait StreamOpener: Send + Sync + 'static {
    fn near(&self) -> Option<&Arc<Near>>;

    fn stream_node(&self, attempt: usize) -> String;

    fn open(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<tonic::Streaming<crate::proto::TrackEvent>, tonic::Status>> + Send;

    fn rpc_timeout(&self) -> Duration;
}

/// Keeps one Track stream open while the client lives, and applies what it
/// tells.
pub(crate) async fn run_stream<O: StreamOpener>(opener: Weak<O>) {
    use crate::proto::track_event::Event;
    let mut attempt = 0usize;
    loop {
        let Some(opener_now) = opener.upgrade() else {
            return;
        };
        let Some(near_now) = opener_now.near().cloned() else {
            return;
        };
        let near = Arc::downgrade(&near_now);
        let node = opener_now.stream_node(attempt);
        attempt += 1;
        let timeout = opener_now.rpc_timeout();
        let opened = tokio::time::timeout(timeout, async {
            let mut stream = opener_now.open(&node).await.ok()?;
            match stream.message().await {
                Ok(Some(crate::proto::TrackEvent {
                    event: Some(Event::TrackingId(id)),
                })) => Some((stream, id)),
                _ => None,
            }
        })
        .await
        .ok()
        .flatten();
        drop(opener_now);
        let Some((mut stream, id)) = opened else {
            drop(near_now);
            tokio::time::sleep(REOPEN_PAUSE).await;
            continue;
        };
        tracing::debug!(%node, "near cache: invalidation stream open");
        near_now.flush(Some((node.clone(), id)));
        drop(near_now);
        loop {
            let event = tokio::time::timeout(QUIET_LIMIT, stream.message()).await;
            let Some(near_now) = near.upgrade() else {
                return;
            };
            match event {
                Ok(Ok(Some(crate::proto::TrackEvent { event: Some(event) }))) => match event {
                    Event::Invalidated(told) => near_now.invalidate(&told.keys),
                    Event::Flush(_) => near_now.flush(Some((node.clone(), id))),
                    Event::Heartbeat(_) => {}
                    Event::TrackingId(_) => {
                        tracing::warn!(%node, "near cache: a second tracking id; stream dropped");
                        break;
                    }
                },
                Ok(Ok(Some(crate::proto::TrackEvent { event: None }))) => {}
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                    tracing::debug!(%node, "near cache: invalidation stream broke or went quiet");
                    break;
                }
            }
        }
        if let Some(near_now) = near.upgrade() {
            near_now.flush(None);
        }
        tokio::time::sleep(REOPEN_PAUSE).await;
    }
}
