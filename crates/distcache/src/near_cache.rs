//! The node's near cache: plain GETs of keys this node forwards, answered
//! from memory until the owning group says the key changed (issue 22's L1
//! in the node front ends). Off unless `clients.near_cache_bytes` is set.
//!
//! ```text
//!  GET k (k's group has no replica here; any front end)
//!    apply what the tracker told ──► drop those keys (or everything)
//!    kept ─────────────────────────► answer
//!    else: note the fetch, track k (before the read runs), read k and
//!          its TTL from its leader, answer it; apply what was told
//!          meanwhile, and keep the answer only if k was not told as
//!          changed since the fetch was noted (nor everything flushed),
//!          and k's group vouched
//!  this cache's Tracker and feed pollers (crate::tracking, as for a
//!  tracking client): a write of k anywhere ──► k told changed
//!                    k's TTL runs out ──────► k told changed (a timer)
//! ```
//!
//! **Why a kept answer is not stale.** The cache is one more tracking
//! client of the node, with a tracker and feed pollers of its own, so the
//! groups' leaders hold each write back (shardkv's write fence) until this
//! node's poller has queued the write's keys for the cache, or lost its
//! lease (and then the poller's own, shorter, window has lapsed first and
//! told the cache to drop everything). A read applies everything queued
//! before it looks: so a write acknowledged before the read began has
//! already dropped the key's answer, and the read fetches. An answer
//! fetched while the key changed is not kept: the fetch is noted before
//! the key is tracked and its read sent, and the answer is kept only if
//! nothing about the key was told since (applying what was told and
//! keeping the answer happen under one lock, so a change told at any
//! moment either stops the keep or drops what was kept). A key whose
//! group's poller does not vouch for its clients is told as changed at
//! once by the tracker, so its answer is not kept.
//!
//! **The guarantee** is client-side caching's (`crate::tracking`): a GET
//! answered from here returns a value no older than any write
//! acknowledged before the GET was sent. It is **not linearizable**: the
//! fence holds a write's acknowledgement, not its visibility, so while a
//! write waits for this node's poller (cut off from the leader, say),
//! another client may already read the new value from the leader while
//! this node still answers the old one, until the write is acknowledged
//! (by then the cache has dropped it) or the poller's lease runs out (by
//! then it has dropped everything). Also not covered, as for every
//! tracking client: a key's expiry is told by this node's timer from the
//! TTL read with the value (an answer may outlive its key by the time the
//! answer took to arrive); a shard moved to a group this node did not poll
//! yet is followed from the next configuration check
//! ([`crate::tracking::GROUPS_CHECK`], which also drops everything); a key evicted for memory is not told (the
//! answer is the last value written, as if evicted later); and the lease
//! argument assumes the nodes' clocks drift less than the fence's margin.
//! The simulation test `node_near_cache_reads_follow_acknowledged_writes_
//! under_faults` (`sim-tests/tests/it/client_cache.rs`) checks histories
//! against this with the linearizability checker; it finds the
//! non-linearizable read described above on its first seed if held to
//! linearizability, and fails when told keys are not dropped or an answer
//! fetched while its key changed is kept.
//!
//! **The cost**: every group's leader holds each write until this node's
//! poller has seen it (one more long poll per group per node: about a
//! poll's round trip on the write's latency; SET throughput fell to 0.52x
//! with it on the demo's nine nodes, GET rose 1.43x: docs/status.md),
//! which is why it is opt-in. Keys whose group has a replica on this node
//! are never kept: a local read costs about as much. Until a group's
//! poller has confirmed (the first seconds after a start), its keys are
//! not kept either.
//!
//! Bounds: at most `capacity_bytes` (keys, values and
//! [`ENTRY_OVERHEAD_BYTES`] each), each entry at most [`ENTRY_TTL`] old
//! (a safety net no correctness argument leans on), at most
//! [`MAX_FETCHES`] keys with a fetch in flight (past it a read fetches
//! without keeping its answer); the tracker's own bounds
//! (`crate::tracking`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use cache::near::{NearCache, NearCacheConfig, NearStats};
use distcache_client::RuntimeClock;
use resp::command::TrackingOptions;

use crate::forward::{ForwardError, Forwarder};
use crate::metrics::Metrics;
use crate::resp::Backend;
use crate::tracking::{FeedConfig, PushQueue, Told, Tracker, TrackingHost};

/// What each entry is counted as on top of its key and value.
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;
/// Longest an entry is kept, told or not.
pub const ENTRY_TTL: Duration = Duration::from_secs(60);
/// Most keys with a fetch in flight whose answers may be kept.
pub const MAX_FETCHES: usize = 4_096;
/// Shards of the cache (as the read cache: a small idle footprint).
const SHARDS: usize = 16;
/// The cache's id as its tracker's only client.
const CLIENT: u64 = 1;

/// An answer as kept: the value, or `None` for an absent key.
pub type Answer = Option<Arc<[u8]>>;

/// See the module docs.
pub struct NodeNearCache {
    cache: NearCache<Vec<u8>, Answer, RuntimeClock>,
    tracker: Arc<Tracker>,
    queue: Arc<PushQueue>,
    /// Taking and applying what was told, and keeping an answer, happen
    /// under this lock (see the module docs).
    fetches: Mutex<Fetches>,
    forwarder: Weak<Forwarder>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Fetches {
    /// Keys with a fetch in flight.
    keys: HashMap<Vec<u8>, Fetching>,
    /// Times everything was dropped.
    flushes: u64,
}

struct Fetching {
    /// Fetches of the key in flight.
    count: u32,
    /// Times the key was told as changed since the first of them began.
    told: u64,
}

/// One fetch noted by [`NodeNearCache::begin`]; unnoted when dropped.
pub struct Fetch<'a> {
    cache: &'a NodeNearCache,
    key: Vec<u8>,
    /// `None`: the answer is not to be kept (past [`MAX_FETCHES`]).
    seen: Option<Seen>,
}

/// What a fetch saw when it was noted.
#[derive(Clone, Copy)]
struct Seen {
    told: u64,
    flushes: u64,
    /// The key's group vouched when it was tracked.
    vouched: bool,
}

impl NodeNearCache {
    /// A cache of at most `capacity_bytes` for `forwarder`'s reads, its
    /// feed pollers started; `None` for 0 (off).
    pub fn start(forwarder: &Arc<Forwarder>, capacity_bytes: u64) -> Option<Arc<NodeNearCache>> {
        if capacity_bytes == 0 {
            return None;
        }
        let config = NearCacheConfig {
            shards: SHARDS,
            default_ttl_ms: Some(millis(ENTRY_TTL)),
            ..NearCacheConfig::new(capacity_bytes)
        };
        let tracker = Arc::new(Tracker::default());
        let (queue, _) = tracker.subscribe(CLIENT, TrackingOptions::default());
        let cache = Arc::new(NodeNearCache {
            cache: NearCache::new(config, RuntimeClock::new()),
            tracker,
            queue,
            fetches: Mutex::default(),
            forwarder: Arc::downgrade(forwarder),
            metrics: Arc::clone(forwarder.metrics()),
        });
        crate::tracking::start(&cache);
        Some(cache)
    }

    /// The kept answer for `key` (`Some(None)`: absent), after applying
    /// what was told.
    pub fn get(&self, key: &[u8]) -> Option<Answer> {
        let _applied = self.apply_told();
        let kept = self.cache.get(key);
        self.metrics.record_near_cache_read(kept.is_some());
        kept
    }

    /// Notes a fetch of `key` and tracks it: call before sending the read.
    pub fn begin(&self, key: &[u8]) -> Fetch<'_> {
        let noted = {
            let mut fetches = self.fetches.lock().expect("near cache lock");
            let flushes = fetches.flushes;
            if let Some(fetching) = fetches.keys.get_mut(key) {
                fetching.count += 1;
                Some((fetching.told, flushes))
            } else if fetches.keys.len() < MAX_FETCHES {
                fetches
                    .keys
                    .insert(key.to_vec(), Fetching { count: 1, told: 0 });
                Some((0, flushes))
            } else {
                None
            }
        };
        // Tracked after the fetch is noted: what the tracker tells from
        // here on (an unvouched key at once) is counted against it.
        let seen = noted.map(|(told, flushes)| Seen {
            told,
            flushes,
            vouched: self.tracker.track(CLIENT, &[Bytes::copy_from_slice(key)]),
        });
        Fetch {
            cache: self,
            key: key.to_vec(),
            seen,
        }
    }

    /// What the cache holds (its hits, misses and flushes are counted in
    /// the node's metrics).
    pub fn stats(&self) -> NearStats {
        self.cache.stats()
    }

    /// The node is stopping: the feed pollers end.
    pub fn close(&self) {
        self.tracker.close();
    }

    /// Applies everything told so far; the lock stays held for the caller.
    fn apply_told(&self) -> std::sync::MutexGuard<'_, Fetches> {
        let mut fetches = self.fetches.lock().expect("near cache lock");
        while let Some(told) = self.queue.take() {
            match told {
                Told::Keys(keys) => {
                    for key in keys {
                        self.cache.remove(key.as_ref());
                        if let Some(fetching) = fetches.keys.get_mut(key.as_ref()) {
                            fetching.told += 1;
                        }
                    }
                }
                Told::Flush => {
                    self.cache.clear();
                    fetches.flushes += 1;
                    self.metrics.record_near_cache_flush();
                }
            }
        }
        fetches
    }
}

impl Fetch<'_> {
    /// The fetch answered `value` (`None`: absent) with `ttl` left: kept
    /// if nothing about the key was told since it was noted, and its group
    /// vouched; its expiry is then told when `ttl` runs out.
    pub fn finish(self, value: Option<&[u8]>, ttl: api::KeyTtl) {
        let Some(seen) = self.seen else {
            return;
        };
        let cache = self.cache;
        let fetches = cache.apply_told();
        let unchanged = seen.vouched
            && fetches.flushes == seen.flushes
            && fetches
                .keys
                .get(&self.key)
                .is_some_and(|fetching| fetching.told == seen.told);
        if !unchanged {
            return;
        }
        let weight = ENTRY_OVERHEAD_BYTES
            + self.key.len() as u64
            + value.map_or(0, |value| value.len() as u64);
        let kept = cache.cache.insert_with(
            self.key.clone(),
            value.map(Arc::from),
            weight,
            Some(millis(ENTRY_TTL)),
        );
        drop(fetches);
        if kept && value.is_some() {
            let key = Bytes::copy_from_slice(&self.key);
            match ttl {
                api::KeyTtl::RemainingMs(ms) => {
                    cache.tracker.expire_after(&key, Duration::from_millis(ms));
                }
                api::KeyTtl::Persistent => {}
                // Gone by the answer's time: dropped at the next read.
                api::KeyTtl::Missing => cache.tracker.invalidate([&key], None),
            }
        }
    }
}

impl Drop for Fetch<'_> {
    fn drop(&mut self) {
        if self.seen.is_none() {
            return;
        }
        let mut fetches = self.cache.fetches.lock().expect("near cache lock");
        if let Some(fetching) = fetches.keys.get_mut(&self.key) {
            fetching.count -= 1;
            if fetching.count == 0 {
                fetches.keys.remove(&self.key);
            }
        }
    }
}

impl TrackingHost for NodeNearCache {
    fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }

    async fn feed_config(&self) -> Option<FeedConfig> {
        let forwarder = self.forwarder.upgrade()?;
        Backend::feed_config(&forwarder).await
    }

    async fn watch_changes(
        &self,
        gid: u64,
        poller: u64,
        after: u64,
        wait: Duration,
    ) -> Option<shardkv::Changes> {
        let forwarder = self.forwarder.upgrade()?;
        Backend::watch_changes(&forwarder, gid, poller, after, wait).await
    }

    async fn read(&self, op: shardkv::Op) -> Result<shardkv::Outcome, ForwardError> {
        let forwarder = self.forwarder.upgrade().ok_or(ForwardError::ShuttingDown)?;
        Forwarder::run(&forwarder, op, None).await
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
