//! The concurrent near (L1) cache for clients and gateways.
//!
//! ```text
//!   key ──fixed hash──► shard = bits 32.. of the hash & (shards - 1)
//!                          │
//!               Mutex<Table<K, V>>   (one per shard: slab + index + policy + expiry)
//! ```
//!
//! Each shard is an independent [`Table`] (the same container and policies as
//! the deterministic store) behind a `parking_lot` mutex, so threads touching
//! different shards never contend. With the default S3-FIFO policy a hit only
//! bumps a counter, so the critical section is a hash probe and a clone.
//!
//! Time comes from an injected [`Clock`], read only when an entry carries a
//! deadline. Expired entries are invisible at once and reclaimed a bounded
//! number at a time by later inserts in the same shard.

mod clock;

use std::borrow::Borrow;
use std::hash::Hash;

use parking_lot::Mutex;

pub use clock::{Clock, ManualClock, MonotonicClock};

use crate::hash::hash_of;
use crate::policy::PolicyKind;
use crate::table::{Limits, Table};

/// Expired entries reclaimed per insert, per shard.
const RECLAIM_PER_INSERT: u64 = 4;
/// Sharding stops before a shard would hold fewer than this much weight:
/// tiny shards evict badly.
const SHARD_WEIGHT_MIN: u64 = 64;

/// How a near cache is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearCacheConfig {
    /// Total weight (entries, if every entry weighs 1) across shards.
    pub capacity_weight: u64,
    /// Requested shard count; rounded down to a power of two and reduced so
    /// every shard holds at least `SHARD_WEIGHT_MIN`.
    pub shards: usize,
    pub policy: PolicyKind,
    /// Deadline for entries inserted without one.
    pub default_ttl_ms: Option<u64>,
}

impl NearCacheConfig {
    pub fn new(capacity_weight: u64) -> Self {
        NearCacheConfig {
            capacity_weight,
            shards: 64,
            policy: PolicyKind::DEFAULT,
            default_ttl_ms: None,
        }
    }
}

/// Counters summed over shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NearStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
    pub weight: u64,
}

struct Shard<K, V> {
    table: Table<K, V>,
    hits: u64,
    misses: u64,
}

/// A thread-safe, sharded, bounded cache with TTL. See the module docs.
pub struct NearCache<K, V, C: Clock = MonotonicClock> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    shard_mask: usize,
    clock: C,
    default_ttl_ms: Option<u64>,
}

impl<K: Hash + Eq, V: Clone, C: Clock> NearCache<K, V, C> {
    /// # Panics
    /// If `capacity_weight` is zero.
    pub fn new(config: NearCacheConfig, clock: C) -> Self {
        assert!(
            config.capacity_weight > 0,
            "near cache capacity must be positive"
        );
        let mut shard_count = config.shards.max(1).next_power_of_two();
        if shard_count > config.shards.max(1) {
            shard_count /= 2;
        }
        while shard_count > 1 && config.capacity_weight / (shard_count as u64) < SHARD_WEIGHT_MIN {
            shard_count /= 2;
        }
        let shard_weight = config.capacity_weight.div_ceil(shard_count as u64);
        let limits = Limits {
            capacity_weight: shard_weight,
            capacity_entries: None,
        };
        let shards = (0..shard_count)
            .map(|_| {
                Mutex::new(Shard {
                    table: Table::new(config.policy, limits),
                    hits: 0,
                    misses: 0,
                })
            })
            .collect();
        NearCache {
            shards,
            shard_mask: shard_count - 1,
            clock,
            default_ttl_ms: config.default_ttl_ms,
        }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// A clone of the value for `key`, if present and not expired.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let key_hash = hash_of(key);
        let mut shard = self.shard(key_hash).lock();
        let Some(slot) = shard.table.find_hashed(key_hash, key) else {
            shard.misses += 1;
            return None;
        };
        let entry = shard.table.entry(slot);
        if entry.expire_at_ms.is_some() && entry.is_expired(self.clock.now_ms()) {
            shard.table.remove(slot);
            shard.misses += 1;
            return None;
        }
        let value = entry.value.clone();
        shard.table.record_hit(slot);
        shard.hits += 1;
        Some(value)
    }

    /// Inserts with weight 1 and the default TTL.
    pub fn insert(&self, key: K, value: V) -> bool {
        self.insert_with(key, value, 1, self.default_ttl_ms)
    }

    /// Inserts or replaces `key`. Returns false (and changes nothing) if the
    /// entry is heavier than one shard's capacity or `ttl_ms` is zero.
    pub fn insert_with(&self, key: K, value: V, weight: u64, ttl_ms: Option<u64>) -> bool {
        if ttl_ms == Some(0) {
            return false;
        }
        let key_hash = hash_of(&key);
        let mut shard = self.shard(key_hash).lock();
        if shard.table.check_weight(weight).is_err() {
            return false;
        }
        let now_ms = if ttl_ms.is_some() || !shard.table.is_empty() {
            // Reading the clock is only needed for deadlines and reclaim.
            Some(self.clock.now_ms())
        } else {
            None
        };
        if let Some(now_ms) = now_ms {
            shard.table.reclaim_expired(now_ms, RECLAIM_PER_INSERT);
        }
        let expire_at_ms = ttl_ms
            .zip(now_ms)
            .map(|(ttl_ms, now_ms)| now_ms.saturating_add(ttl_ms));
        let table = &mut shard.table;
        match table.find_hashed(key_hash, &key) {
            Some(slot) => {
                let fits = table.set_value(slot, value, weight).is_ok();
                table.set_expiry(slot, expire_at_ms);
                fits
            }
            None => table
                .insert(key, key_hash, value, weight, expire_at_ms)
                .is_ok(),
        }
    }

    /// Removes `key`, returning its value if it was present and not expired.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let key_hash = hash_of(key);
        let mut shard = self.shard(key_hash).lock();
        let slot = shard.table.find_hashed(key_hash, key)?;
        let entry = shard.table.remove(slot);
        let expired = entry.expire_at_ms.is_some() && entry.is_expired(self.clock.now_ms());
        (!expired).then_some(entry.value)
    }

    /// Counters summed over shards (each shard read under its own lock, so
    /// the sum is not an atomic snapshot under concurrent use).
    pub fn stats(&self) -> NearStats {
        let mut stats = NearStats::default();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            stats.hits += shard.hits;
            stats.misses += shard.misses;
            stats.entries += shard.table.len();
            stats.weight += shard.table.weight_total();
        }
        stats
    }

    #[inline]
    fn shard(&self, key_hash: u64) -> &Mutex<Shard<K, V>> {
        // The table's index uses the low bits and the top 7; shards use the
        // middle, so the two choices stay independent.
        &self.shards[(key_hash >> 32) as usize & self.shard_mask]
    }
}
