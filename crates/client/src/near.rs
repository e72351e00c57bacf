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
//! - for any write, wherever it was made: the key's group leader answers
//!   the write only after the stream's node has handed the invalidation
//!   to this client's stream, or has lost its lease with the leader and
//!   sent `Flush` (the write fence, docs/design.md "Client-side
//!   caching"); then the message's trip to this client and its stream
//!   task's turn;
//! - when the node cannot vouch for a group (no confirmed poll answer
//!   within 3 s of sending the poll) it sends `Flush` and answers
//!   `tracked: false` for that group's keys until it can again, and when
//!   the stream is silent for [`QUIET_LIMIT`] (the node or the network
//!   between went away, or this client's stream task cannot run) hits
//!   stop at once and this client drops everything.
//!
//! So a cached value is older than an acknowledged write only while the
//! invalidation is on its way to this client (a network delay), or for up
//! to [`QUIET_LIMIT`] if the stream stalls without breaking; it is not a
//! linearizable read (a read may still see a value whose newer write is
//! applied but not yet acknowledged). Reads without the near cache
//! ([`crate::ClientConfig::near_cache`] `None`, the default) stay
//! linearizable.
//!
//! Bounds: the cache holds at most `capacity_bytes` (keys and values, plus
//! [`ENTRY_OVERHEAD_BYTES`] per entry), each entry at most `ttl`; absent
//! keys are cached too (a write of them is told like any other).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
/// Pause before opening a stream again after one broke, doubling after
/// each failure up to [`REOPEN_PAUSE_MAX`].
const REOPEN_PAUSE: Duration = Duration::from_millis(100);
const REOPEN_PAUSE_MAX: Duration = Duration::from_secs(5);

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

/// Milliseconds since the clock was made, on the runtime seam's clock
/// (simulated under madsim): the near cache's, and the node's read cache's.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeClock {
    start: tokio::time::Instant,
}

impl RuntimeClock {
    pub fn new() -> RuntimeClock {
        RuntimeClock {
            start: labrpc::runtime::now(),
        }
    }
}

impl Default for RuntimeClock {
    fn default() -> RuntimeClock {
        RuntimeClock::new()
    }
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
    /// Numbers the flights, so an older read never replaces a newer one.
    flights_sent: u64,
    flights: HashMap<Vec<u8>, Flights>,
}

/// One client's near cache; shared by its clones.
pub(crate) struct Near {
    /// Each entry with the number of the flight that read it.
    cache: NearCache<Vec<u8>, (u64, Cached), RuntimeClock>,
    config: NearConfig,
    /// Taken by every insert, invalidation and flush (never by a hit), so
    /// an insert cannot land after the news that spoils it.
    state: Mutex<State>,
    /// Until when (the cache's clock) hits may be served: the last stream
    /// event plus [`QUIET_LIMIT`]. A stream task that cannot run (a
    /// starved runtime, a paused process) stops the hits by itself.
    alive_until_ms: AtomicU64,
    /// The stream task runs (started by the first get).
    started: AtomicBool,
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
    /// The flight's number.
    number: u64,
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
        let near = Arc::clone(&self.near);
        near.land(self);
    }
}

impl Near {
    pub(crate) fn new(config: NearConfig) -> Near {
        let clock = RuntimeClock::new();
        let cache_config = NearCacheConfig {
            default_ttl_ms: Some(ttl_ms(config.ttl)),
            ..NearCacheConfig::new(config.capacity_bytes.max(ENTRY_OVERHEAD_BYTES * 64))
        };
        Near {
            cache: NearCache::new(cache_config, clock),
            config,
            state: Mutex::default(),
            alive_until_ms: AtomicU64::new(0),
            started: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    /// Whether the stream task must be started (once, by the first get:
    /// it needs a runtime, which building the client may not have; again
    /// if its runtime went away).
    pub(crate) fn needs_stream_task(&self) -> bool {
        !self.started.swap(true, Ordering::Relaxed)
    }

    /// The cached answer for `key`, if any and the stream is alive.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Cached> {
        let alive = self.cache.clock().now_ms() < self.alive_until_ms.load(Ordering::Relaxed);
        let cached = if alive { self.cache.get(key) } else { None };
        if let Some((_, value)) = cached {
            self.hits.fetch_add(1, Ordering::Relaxed);
            Some(value)
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// A Get of `key` is about to be sent; `None` if no stream is open (the
    /// answer must not be cached).
    pub(crate) fn start(self: &Arc<Self>, key: &[u8]) -> Option<Flight> {
        let mut state = self.state.lock().expect("near cache lock");
        let (node, tracking_id) = state.stream.clone()?;
        state.flights.entry(key.to_vec()).or_default().count += 1;
        state.flights_sent += 1;
        Some(Flight {
            near: Arc::clone(self),
            key: key.to_vec(),
            number: state.flights_sent,
            sent_at: state.news,
            node,
            tracking_id,
            answer: None,
        })
    }

    /// A flight ended. Its answer is cached if the node tracked it, the
    /// stream is the one it was sent under, no news of its key (or flush)
    /// came meanwhile, and no later flight's answer is cached already.
    fn land(&self, flight: &mut Flight) {
        let key = std::mem::take(&mut flight.key);
        let mut state = self.state.lock().expect("near cache lock");
        let mut spoiled = state.flushed_at > flight.sent_at
            || state.stream.as_ref().map(|(_, id)| *id) != Some(flight.tracking_id);
        if let Some(flights) = state.flights.get_mut(&key) {
            spoiled |= flights.changed_at > flight.sent_at;
            flights.count -= 1;
            if flights.count == 0 {
                state.flights.remove(&key);
            }
        }
        let Some((true, value)) = flight.answer.take() else {
            return;
        };
        if spoiled
            || self
                .cache
                .get(&key)
                .is_some_and(|(number, _)| number > flight.number)
        {
            return;
        }
        let weight = ENTRY_OVERHEAD_BYTES
            + key.len() as u64
            + value.as_ref().map_or(0, |value| value.len() as u64);
        // Too heavy for a shard: not cached (refused, nothing changes).
        self.cache.insert_with(
            key,
            (flight.number, value),
            weight,
            Some(ttl_ms(self.config.ttl)),
        );
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
        if stream.is_none() {
            self.alive_until_ms.store(0, Ordering::Relaxed);
        }
        state.stream = stream;
        self.cache.clear();
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// The stream said something: hits may be served for [`QUIET_LIMIT`].
    fn heard(&self) {
        let until = self
            .cache
            .clock()
            .now_ms()
            .saturating_add(ttl_ms(QUIET_LIMIT));
        self.alive_until_ms.store(until, Ordering::Relaxed);
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

/// What the stream task needs from the client: its near cache, the nodes
/// to open the stream on, and the call itself.
pub(crate) trait StreamOpener: Send + Sync + 'static {
    fn near(&self) -> Option<&Arc<Near>>;

    /// The nodes to try, in order of preference.
    fn stream_nodes(&self) -> Vec<String>;

    fn open(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<tonic::Streaming<crate::proto::TrackEvent>, tonic::Status>> + Send;

    fn rpc_timeout(&self) -> Duration;
}

/// Ends the near cache's use of a stream task that is dropped (its
/// runtime went away): everything is dropped, and the next get starts a
/// new task.
struct TaskGuard {
    near: Weak<Near>,
    /// Whether the next get may start a new task.
    restart: bool,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Some(near) = self.near.upgrade() {
            near.flush(None);
            if self.restart {
                near.started.store(false, Ordering::Relaxed);
            }
        }
    }
}

/// How opening a stream went.
enum Opened {
    Stream(Box<tonic::Streaming<crate::proto::TrackEvent>>, u64),
    /// Try again (elsewhere, later).
    Failed,
    /// The node does not offer `Track` (an older release): give up.
    Unimplemented,
}

async fn open_on<O: StreamOpener>(opener: &O, node: &str) -> Opened {
    use crate::proto::track_event::Event;
    let opened = tokio::time::timeout(opener.rpc_timeout(), async {
        let mut stream = match opener.open(node).await {
            Ok(stream) => stream,
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                return Opened::Unimplemented;
            }
            Err(status) => {
                tracing::debug!(%node, %status, "near cache: Track refused");
                return Opened::Failed;
            }
        };
        match stream.message().await {
            Ok(Some(crate::proto::TrackEvent {
                event: Some(Event::TrackingId(id)),
            })) => Opened::Stream(Box::new(stream), id),
            _ => Opened::Failed,
        }
    })
    .await;
    opened.unwrap_or(Opened::Failed)
}

/// Keeps one Track stream open while the client lives, and applies what it
/// tells. After a failure it tries the next node, pausing from
/// [`REOPEN_PAUSE`] up to [`REOPEN_PAUSE_MAX`]; a stream that opened
/// starts the order over (the first seed first).
pub(crate) async fn run_stream<O: StreamOpener>(opener: Weak<O>) {
    use crate::proto::track_event::Event;
    let mut guard = match opener.upgrade() {
        Some(opener) => match opener.near() {
            Some(near) => TaskGuard {
                near: Arc::downgrade(near),
                restart: true,
            },
            None => return,
        },
        None => return,
    };
    let mut attempt = 0usize;
    let mut pause = REOPEN_PAUSE;
    loop {
        let Some(opener_now) = opener.upgrade() else {
            return;
        };
        let nodes = opener_now.stream_nodes();
        let node = nodes[attempt % nodes.len()].clone();
        attempt += 1;
        let (mut stream, id) = match open_on(&*opener_now, &node).await {
            Opened::Stream(stream, id) => (stream, id),
            Opened::Failed => {
                drop(opener_now);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(REOPEN_PAUSE_MAX);
                continue;
            }
            Opened::Unimplemented => {
                tracing::warn!(
                    %node,
                    "near cache off: the cluster does not offer Cache.Track (an older release)"
                );
                // Nothing is cached from now on, and no task runs again.
                guard.restart = false;
                return;
            }
        };
        drop(opener_now);
        attempt = 0;
        pause = REOPEN_PAUSE;
        let Some(near) = guard.near.upgrade() else {
            return;
        };
        tracing::debug!(%node, "near cache: invalidation stream open");
        near.flush(Some((node.clone(), id)));
        near.heard();
        drop(near);
        loop {
            let event = tokio::time::timeout(QUIET_LIMIT, stream.message()).await;
            let Some(near) = guard.near.upgrade() else {
                return;
            };
            match event {
                Ok(Ok(Some(crate::proto::TrackEvent { event: Some(event) }))) => {
                    match event {
                        Event::Invalidated(told) => near.invalidate(&told.keys),
                        Event::Flush(_) => near.flush(Some((node.clone(), id))),
                        Event::Heartbeat(_) => {}
                        Event::TrackingId(_) => {
                            tracing::warn!(%node, "near cache: a second tracking id; stream dropped");
                            break;
                        }
                    }
                    near.heard();
                }
                // An event this release does not know: still a sign of life.
                Ok(Ok(Some(crate::proto::TrackEvent { event: None }))) => near.heard(),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                    tracing::debug!(%node, "near cache: invalidation stream broke or went quiet");
                    break;
                }
            }
        }
        if let Some(near) = guard.near.upgrade() {
            near.flush(None);
        }
        tokio::time::sleep(REOPEN_PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near() -> Arc<Near> {
        let near = Arc::new(Near::new(NearConfig::default()));
        near.flush(Some(("node".into(), 7)));
        near.heard();
        near
    }

    fn value(text: &str) -> Cached {
        Some(Arc::from(text.as_bytes()))
    }

    #[test]
    fn a_tracked_answer_is_cached_and_served() {
        let near = near();
        assert_eq!(near.get(b"k"), None);
        near.start(b"k")
            .expect("stream open")
            .finish(true, value("v"));
        assert_eq!(near.get(b"k"), Some(value("v")));
        let stats = near.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1));
    }

    #[test]
    fn an_untracked_or_failed_answer_is_not_cached() {
        let near = near();
        near.start(b"k").expect("open").finish(false, value("v"));
        assert_eq!(near.get(b"k"), None);
        drop(near.start(b"k").expect("open"));
        assert_eq!(near.get(b"k"), None);
        assert!(near.state.lock().expect("lock").flights.is_empty());
    }

    #[test]
    fn news_while_in_flight_spoils_the_answer() {
        let near = near();
        let flight = near.start(b"k").expect("open");
        let other = near.start(b"other").expect("open");
        near.invalidate(&[b"k"]);
        flight.finish(true, value("old"));
        other.finish(true, value("fine"));
        assert_eq!(near.get(b"k"), None);
        assert_eq!(near.get(b"other"), Some(value("fine")));
        // A flight sent after the news is cached.
        near.start(b"k").expect("open").finish(true, value("new"));
        assert_eq!(near.get(b"k"), Some(value("new")));
    }

    #[test]
    fn a_flush_or_a_new_stream_spoils_every_flight() {
        let near = near();
        let before_flush = near.start(b"a").expect("open");
        near.flush(Some(("node".into(), 7)));
        before_flush.finish(true, value("a"));
        assert_eq!(near.get(b"a"), None);
        let before_reopen = near.start(b"b").expect("open");
        near.flush(Some(("other".into(), 8)));
        before_reopen.finish(true, value("b"));
        assert_eq!(near.get(b"b"), None);
        near.flush(None);
        assert!(near.start(b"c").is_none(), "no stream: nothing is cached");
    }

    #[test]
    fn an_older_read_does_not_replace_a_newer_one() {
        let near = near();
        let first = near.start(b"k").expect("open");
        let second = near.start(b"k").expect("open");
        second.finish(true, value("newer"));
        first.finish(true, value("older"));
        assert_eq!(near.get(b"k"), Some(value("newer")));
    }

    #[test]
    fn a_silent_stream_serves_no_hits() {
        let near = near();
        near.start(b"k").expect("open").finish(true, value("v"));
        assert!(near.get(b"k").is_some());
        near.alive_until_ms.store(0, Ordering::Relaxed);
        assert_eq!(near.get(b"k"), None);
        near.heard();
        assert!(near.get(b"k").is_some());
    }

    #[test]
    fn absent_keys_are_cached_too() {
        let near = near();
        near.start(b"missing").expect("open").finish(true, None);
        assert_eq!(near.get(b"missing"), Some(None));
    }
}
