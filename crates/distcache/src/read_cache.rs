//! The node's read cache: answers to reads that allow an answer up to `B`
//! old (`READONLY MAXSTALENESS`, `max_staleness_ms`), kept by the node that
//! forwarded them, so a hot key's bounded reads reach its group about once
//! per node per `B / 2` (issue 22's L1 in the node front ends, for the
//! reads that allow it). A read that misses while a fetch of the same key
//! is out waits for that fetch's answer instead of fetching too, when the
//! answer is young enough for it (see below), so a hot key costs one fetch
//! at a time per node.
//!
//! ```text
//!  GET k, bound B, k's group not hosted here
//!    entry (value, sent, fetched_within) with now - sent + fetched_within <= B ─► answer
//!    else: read k from any replica with the bound B / 2 (sent = now),
//!          answer it, and keep (value, sent, B / 2)
//! ```
//!
//! **Why an answer from here keeps the bound.** A read fetched with bound
//! `b` and sent at `sent` holds every write acknowledged before
//! `sent - b` (the follower-read guarantee, `rsm`'s `read_within`). Served
//! at `now` to a read that began at or before `now` with bound `B`, it
//! must hold every write acknowledged before `now - B`: true when
//! `now - B <= sent - b`. Both instants are on this node's monotonic clock
//! (in whole ms, so the age is counted 1 ms high to stay on the safe side;
//! and, as for follower reads, the clock is assumed to run while the
//! machine does).
//! The answer was committed when it was read. Nothing else is needed: no
//! invalidation, no tracking. What is not promised, as for any bounded
//! read: reading your own write (an answer may predate it, within `B`),
//! and order between nodes.
//!
//! Fetching with `B / 2` splits the bound between the follower's grant and
//! the cache: an entry serves reads with the same bound for `B / 2`.
//! Reads with a zero bound, reads of keys whose group has a replica on
//! this node (a local bounded read costs about as much as a lookup) and
//! anything but a single-key GET never use it.
//!
//! **Why a read may take a fetch in flight.** A read that began at `t`,
//! while a fetch sent at `sent` with bound `b` was out, needs every write
//! acknowledged before `t - B`; the fetch's answer holds every one
//! acknowledged before `sent - b`. So it may wait for that answer when
//! `t - sent + b <= B`: the same test as for a kept answer, made when the
//! read joins (its own start), not when the answer comes.
//!
//! Bounds: at most [`MAX_FLIGHTS`] keys with a fetch in flight and
//! [`MAX_WAITERS`] reads waiting on one (past either a read fetches alone);
//! at most `capacity_bytes` (keys, values and
//! [`ENTRY_OVERHEAD_BYTES`] each); an entry is dropped
//! [`shardkv::MAX_STALENESS_MS`] after it was fetched, when it can serve
//! no read any more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache::near::{Clock, NearCache, NearCacheConfig, NearStats};
use distcache_client::RuntimeClock;
use tokio::sync::oneshot;

/// What each entry is counted as on top of its key and value.
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;
/// Shards of the cache: each is made with room for a few thousand entries,
/// so fewer shards than a client's near cache keep an idle node's cache
/// small (about 2.5 MB).
const SHARDS: usize = 16;
/// Most keys with a fetch in flight that later reads may wait for.
pub const MAX_FLIGHTS: usize = 4_096;
/// Most reads waiting for one fetch.
pub const MAX_WAITERS: usize = 1_024;

/// An answer as kept: the value, or `None` for an absent key.
pub type Answer = Option<Arc<[u8]>>;

/// See the module docs. `C`: the clock (tests inject a manual one).
pub struct ReadCache<C: Clock = RuntimeClock> {
    cache: NearCache<Vec<u8>, Entry, C>,
    /// Keys with a fetch in flight, and the reads waiting for it.
    flights: Mutex<HashMap<Vec<u8>, InFlight>>,
}

/// A fetch in flight.
struct InFlight {
    sent_ms: u64,
    fetched_within_ms: u64,
    /// `None` sent: the fetch failed (each waiter then fetches itself).
    waiters: Vec<oneshot::Sender<Option<Answer>>>,
}

/// What a read that missed does (see [`ReadCache::join`]).
pub enum Flight<'a, C: Clock = RuntimeClock> {
    /// Fetch, then [`Lead::finish`] with the answer: later reads wait for
    /// it.
    Lead(Lead<'a, C>),
    /// Wait for the fetch in flight (a closed channel or `None`: it
    /// failed; fetch yourself).
    Follow(oneshot::Receiver<Option<Answer>>),
    /// Fetch, alone (noting [`ReadCache::now_ms`] first for
    /// [`ReadCache::put`]).
    Alone,
}

/// The fetch of one key that later reads of it may wait for. Dropped
/// without [`Lead::finish`] (the read was cancelled), its waiters are told
/// to fetch themselves.
pub struct Lead<'a, C: Clock = RuntimeClock> {
    cache: &'a ReadCache<C>,
    key: Vec<u8>,
    /// When the fetch was sent, and its bound: what [`ReadCache::put`]
    /// needs.
    pub sent_ms: u64,
    pub fetched_within: Duration,
    /// `finish` ran: the flight is gone (and a newer one of the same key
    /// may exist, which `drop` must leave alone).
    finished: bool,
}

/// One kept answer.
#[derive(Clone, Debug)]
struct Entry {
    /// The value; `None`: the key was absent.
    value: Option<Arc<[u8]>>,
    /// When the read that fetched it was sent (this node's clock, ms).
    sent_ms: u64,
    /// The bound that read was fetched with, ms.
    fetched_within_ms: u64,
}

impl ReadCache {
    /// A cache of at most `capacity_bytes` on the runtime's clock; `None`
    /// for 0 (off).
    pub fn new(capacity_bytes: u64) -> Option<ReadCache> {
        ReadCache::with_clock(capacity_bytes, RuntimeClock::new())
    }

    /// The bound to fetch with for a read bounded by `bound`.
    pub fn fetch_bound(bound: Duration) -> Duration {
        bound / 2
    }
}

impl<C: Clock> ReadCache<C> {
    /// A cache of at most `capacity_bytes` on `clock`; `None` for 0.
    pub fn with_clock(capacity_bytes: u64, clock: C) -> Option<ReadCache<C>> {
        let config = NearCacheConfig {
            shards: SHARDS,
            ..NearCacheConfig::new(capacity_bytes)
        };
        (capacity_bytes > 0).then(|| ReadCache {
            cache: NearCache::new(config, clock),
            flights: Mutex::new(HashMap::new()),
        })
    }

    /// What a read of `key` bounded by `bound`, beginning now, does after
    /// a miss: wait for a fetch in flight young enough for it, lead a new
    /// fetch, or fetch alone (past the bounds).
    pub fn join(&self, key: &[u8], bound: Duration) -> Flight<'_, C> {
        let now_ms = self.now_ms();
        let mut flights = self.flights.lock().expect("read cache flights lock");
        if let Some(flight) = flights.get_mut(key) {
            let fits = fits(now_ms, flight.sent_ms, flight.fetched_within_ms, bound);
            if fits && flight.waiters.len() < MAX_WAITERS {
                let (answer, answered) = oneshot::channel();
                flight.waiters.push(answer);
                return Flight::Follow(answered);
            }
            return Flight::Alone;
        }
        if flights.len() >= MAX_FLIGHTS {
            return Flight::Alone;
        }
        let fetched_within = ReadCache::fetch_bound(bound);
        flights.insert(
            key.to_vec(),
            InFlight {
                sent_ms: now_ms,
                fetched_within_ms: millis(fetched_within),
                waiters: Vec::new(),
            },
        );
        Flight::Lead(Lead {
            cache: self,
            key: key.to_vec(),
            sent_ms: now_ms,
            fetched_within,
            finished: false,
        })
    }

    /// The time to note as a fetch's `sent`: call before sending it.
    pub fn now_ms(&self) -> u64 {
        self.cache.clock().now_ms()
    }

    /// A kept answer for `key` that a read bounded by `bound`, beginning
    /// now or later, may return (`Some(None)`: absent), or `None`.
    pub fn get(&self, key: &[u8], bound: Duration) -> Option<Option<Arc<[u8]>>> {
        let entry = self.cache.get(key)?;
        fits(self.now_ms(), entry.sent_ms, entry.fetched_within_ms, bound).then_some(entry.value)
    }

    /// Keeps the answer of a read of `key` sent at `sent_ms` with bound
    /// `fetched_within`, unless a newer one is kept.
    pub fn put(&self, key: &[u8], value: Option<&[u8]>, sent_ms: u64, fetched_within: Duration) {
        if self
            .cache
            .get(key)
            .is_some_and(|kept| kept.sent_ms >= sent_ms)
        {
            return;
        }
        let entry = Entry {
            value: value.map(Arc::from),
            sent_ms,
            fetched_within_ms: millis(fetched_within),
        };
        let weight = ENTRY_OVERHEAD_BYTES
            + key.len() as u64
            + entry.value.as_ref().map_or(0, |value| value.len() as u64);
        let ttl_ms = shardkv::MAX_STALENESS_MS.saturating_sub(entry.fetched_within_ms);
        self.cache
            .insert_with(key.to_vec(), entry, weight, Some(ttl_ms.max(1)));
    }

    pub fn stats(&self) -> NearStats {
        self.cache.stats()
    }
}

impl<C: Clock> Lead<'_, C> {
    /// The fetch ended: `Some(answer)` is kept and given to the waiting
    /// reads; `None` (it failed) tells them to fetch themselves.
    pub fn finish(mut self, answer: Option<Option<&[u8]>>) {
        if let Some(value) = answer {
            self.cache
                .put(&self.key, value, self.sent_ms, self.fetched_within);
        }
        let shared: Option<Answer> = answer.map(|value| value.map(Arc::from));
        let waiters = self.take_waiters();
        self.finished = true;
        for waiter in waiters {
            // A waiter that gave up: fine.
            let _ = waiter.send(shared.clone());
        }
    }

    fn take_waiters(&mut self) -> Vec<oneshot::Sender<Option<Answer>>> {
        let mut flights = self.cache.flights.lock().expect("read cache flights lock");
        flights
            .remove(&self.key)
            .map(|flight| flight.waiters)
            .unwrap_or_default()
    }
}

impl<C: Clock> Drop for Lead<'_, C> {
    fn drop(&mut self) {
        // The read was dropped before `finish`: its waiters' channels
        // close, and they fetch themselves.
        if !self.finished {
            drop(self.take_waiters());
        }
    }
}

/// Whether an answer fetched at `sent_ms` with bound `fetched_within_ms`
/// serves, at `now_ms`, a read bounded by `bound` (module docs). Both
/// instants are floored to the ms, so the true age is below `age + 1`:
/// counting that keeps the bound exact.
fn fits(now_ms: u64, sent_ms: u64, fetched_within_ms: u64, bound: Duration) -> bool {
    let age_ms = now_ms.saturating_sub(sent_ms).saturating_add(1);
    age_ms.saturating_add(fetched_within_ms) <= millis(bound)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use cache::near::ManualClock;

    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn cache() -> ReadCache<ManualClock> {
        ReadCache::with_clock(1 << 20, ManualClock::new(1_000)).expect("on")
    }

    #[test]
    fn an_entry_serves_a_bound_only_while_age_plus_its_fetch_bound_fits() {
        let cache = cache();
        let sent = cache.now_ms();
        cache.put(b"k", Some(b"v1"), sent, ms(100));
        // Up to 1 ms may have passed unseen (whole ms): it is counted.
        assert_eq!(
            cache.get(b"k", ms(101)).flatten().as_deref(),
            Some(&b"v1"[..])
        );
        assert_eq!(
            cache.get(b"k", ms(100)),
            None,
            "the fetch alone used 100 ms"
        );
        cache.cache.clock().advance(50);
        assert!(cache.get(b"k", ms(151)).is_some());
        assert_eq!(cache.get(b"k", ms(150)), None);
        assert_eq!(cache.get(b"other", ms(60_000)), None);
    }

    #[test]
    fn absent_keys_are_kept_and_older_fetches_never_replace_newer_ones() {
        let cache = cache();
        let first = cache.now_ms();
        cache.cache.clock().advance(10);
        let second = cache.now_ms();
        cache.put(b"k", None, second, ms(0));
        cache.put(b"k", Some(b"old"), first, ms(0));
        assert_eq!(
            cache.get(b"k", ms(1_000)),
            Some(None),
            "the newer fetch stays"
        );
    }

    #[test]
    fn entries_leave_when_no_bound_can_use_them() {
        let cache = cache();
        cache.put(b"k", Some(b"v"), cache.now_ms(), ms(0));
        cache.cache.clock().advance(shardkv::MAX_STALENESS_MS + 1);
        assert_eq!(cache.get(b"k", Duration::MAX), None);
        assert_eq!(cache.stats().entries, 0, "dropped, not only refused");
        assert!(ReadCache::new(0).is_none(), "0 bytes: off");
    }

    #[tokio::test]
    async fn a_miss_waits_for_a_young_enough_fetch_in_flight() {
        let cache = cache();
        let Flight::Lead(lead) = cache.join(b"k", ms(1_000)) else {
            panic!("the first miss leads");
        };
        assert_eq!(lead.fetched_within, ms(500));
        let Flight::Follow(answer) = cache.join(b"k", ms(1_000)) else {
            panic!("a second miss at once waits");
        };
        // A tighter bound than the fetch's own cannot use it.
        assert!(matches!(cache.join(b"k", ms(400)), Flight::Alone));
        cache.cache.clock().advance(600);
        assert!(
            matches!(cache.join(b"k", ms(1_000)), Flight::Alone),
            "600 ms after the fetch was sent, it is too old for a 1 s bound"
        );
        lead.finish(Some(Some(b"v")));
        assert_eq!(
            answer.await.expect("answered"),
            Some(Some(Arc::from(&b"v"[..])))
        );
        assert!(cache.get(b"k", ms(2_000)).is_some(), "and kept");
        let Flight::Lead(next) = cache.join(b"k", ms(1_000)) else {
            panic!("the flight ended: a new one leads");
        };
        assert!(
            matches!(cache.join(b"k", ms(1_000)), Flight::Follow(_)),
            "the finished lead, dropped, left the new flight alone"
        );
        drop(next);
    }

    #[tokio::test]
    async fn a_failed_or_dropped_fetch_sends_its_waiters_to_fetch_themselves() {
        let cache = cache();
        let Flight::Lead(lead) = cache.join(b"k", ms(1_000)) else {
            panic!("leads");
        };
        let Flight::Follow(answer) = cache.join(b"k", ms(1_000)) else {
            panic!("waits");
        };
        lead.finish(None);
        assert_eq!(answer.await.expect("told"), None);
        assert_eq!(cache.get(b"k", ms(60_000)), None, "nothing kept");
        let Flight::Lead(lead) = cache.join(b"k", ms(1_000)) else {
            panic!("leads again");
        };
        let Flight::Follow(answer) = cache.join(b"k", ms(1_000)) else {
            panic!("waits");
        };
        drop(lead);
        assert!(answer.await.is_err(), "the channel closed");
        assert!(matches!(cache.join(b"k", ms(1_000)), Flight::Lead(_)));
    }

    #[test]
    fn capacity_bounds_what_is_kept() {
        let cache = ReadCache::with_clock(64 * 1024, ManualClock::new(0)).expect("on");
        for key in 0..10_000u32 {
            cache.put(&key.to_be_bytes(), Some(&[0; 100]), 0, ms(0));
        }
        let stats = cache.stats();
        assert!(stats.weight <= 64 * 1024 + 64 * 1024 / 8, "{stats:?}");
        assert!(stats.entries > 100, "{stats:?}");
    }
}
