//! The node's read cache: answers to reads that allow an answer up to `B`
//! old (`READONLY MAXSTALENESS`, `max_staleness_ms`), kept by the node that
//! forwarded them, so a hot key's bounded reads reach its group about once
//! per node per `B / 2` (issue 22's L1 in the node front ends, for the
//! reads that allow it). Reads that miss while a fetch of the same key is
//! out fetch too (misses are not merged), so each refresh also costs the
//! reads that arrive during one fetch's latency.
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
//! Bounds: at most `capacity_bytes` (keys, values and
//! [`ENTRY_OVERHEAD_BYTES`] each); an entry is dropped
//! [`shardkv::MAX_STALENESS_MS`] after it was fetched, when it can serve
//! no read any more.

use std::sync::Arc;
use std::time::Duration;

use cache::near::{Clock, NearCache, NearCacheConfig, NearStats};

/// What each entry is counted as on top of its key and value.
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;

/// See the module docs. `C`: the clock (tests inject a manual one).
pub struct ReadCache<C: Clock = RuntimeClock> {
    cache: NearCache<Vec<u8>, Entry, C>,
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
        let clock = RuntimeClock {
            start: labrpc::runtime::now(),
        };
        ReadCache::with_clock(capacity_bytes, clock)
    }

    /// The bound to fetch with for a read bounded by `bound`.
    pub fn fetch_bound(bound: Duration) -> Duration {
        bound / 2
    }
}

impl<C: Clock> ReadCache<C> {
    /// A cache of at most `capacity_bytes` on `clock`; `None` for 0.
    pub fn with_clock(capacity_bytes: u64, clock: C) -> Option<ReadCache<C>> {
        (capacity_bytes > 0).then(|| ReadCache {
            cache: NearCache::new(NearCacheConfig::new(capacity_bytes), clock),
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
        let now_ms = self.now_ms();
        let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        // Both instants are floored to the ms, so the true age is below
        // `age_ms + 1`: counting that keeps the bound exact.
        let age_ms = now_ms.saturating_sub(entry.sent_ms).saturating_add(1);
        (age_ms.saturating_add(entry.fetched_within_ms) <= bound_ms).then_some(entry.value)
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
            fetched_within_ms: u64::try_from(fetched_within.as_millis()).unwrap_or(u64::MAX),
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

/// The cache's clock: the runtime seam's (simulated under madsim), in ms
/// since the cache was made.
pub struct RuntimeClock {
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
