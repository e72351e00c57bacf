//! The concurrent near (L1) cache for clients and gateways.
//!
//! ```text
//!   key ──fixed hash──► shard = bits 32.. of the hash & (shards - 1)
//!                          │
//!               RwLock<Table<K, V>>  (one per shard: slab + index + policy + expiry)
//! ```
//!
//! Each shard is an independent [`Table`] (the same container and policies as
//! the deterministic store) behind a `parking_lot` read-write lock, so
//! threads touching different shards never contend. With the default S3-FIFO
//! policy (or SIEVE) a hit only bumps an atomic counter, so hits take the
//! *read* lock and readers of one hot shard run in parallel; inserts take the
//! write lock.
//!
//! Time comes from an injected [`Clock`], read only when an entry carries a
//! deadline. Expired entries are invisible at once and reclaimed a bounded
//! number at a time by later inserts in the same shard.

mod clock;

use std::borrow::Borrow;
use std::hash::Hash;

use parking_lot::RwLock;

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
    /// Total weight (entries, if every entry weighs 1) across shards. It is
    /// split evenly and rounded up, so the cache may hold up to
    /// `shards - 1` more; one entry may weigh at most one shard's share.
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

/// Occupancy summed over shards.
///
/// The near cache keeps no hit/miss counters: a shared counter would be
/// written by every reader of a hot shard, which is exactly the contention
/// the read-locked hit path avoids. Callers count what they need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NearStats {
    pub entries: u64,
    pub weight: u64,
}

/// A thread-safe, sharded, bounded cache with TTL. See the module docs.
pub struct NearCache<K, V, C: Clock = MonotonicClock> {
    shards: Box<[RwLock<Table<K, V>>]>,
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
            .map(|_| RwLock::new(Table::new(config.policy, limits)))
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
    ///
    /// With SIEVE or S3-FIFO a hit takes only the shard's read lock; LRU and
    /// LFU must reorder on every hit and take the write lock.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let key_hash = hash_of(key);
        let shard = self.shard(key_hash);
        let table = shard.read();
        let slot = table.find_hashed(key_hash, key)?;
        let entry = table.entry(slot);
        let expired = entry.expire_at_ms.is_some() && entry.is_expired(self.clock.now_ms());
        if !expired {
            let value = entry.value.clone();
            if !table.record_hit_shared(slot) {
                drop(table);
                let mut table = shard.write();
                // The entry may have gone while no lock was held; the value
                // read under the read lock is still a correct answer.
                if let Some(slot) = table.find_hashed(key_hash, key) {
                    table.record_hit(slot);
                }
            }
            return Some(value);
        }
        drop(table);
        let mut table = shard.write();
        if let Some(slot) = table.find_hashed(key_hash, key)
            && table.entry(slot).is_expired(self.clock.now_ms())
        {
            table.remove(slot);
        }
        None
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
        let mut table = self.shard(key_hash).write();
        if table.check_weight(weight).is_err() {
            return false;
        }
        // The clock is read only when a deadline is involved.
        let now_ms = (ttl_ms.is_some() || table.has_deadlines()).then(|| self.clock.now_ms());
        if let Some(now_ms) = now_ms {
            table.reclaim_expired(now_ms, RECLAIM_PER_INSERT);
        }
        let expire_at_ms = ttl_ms
            .zip(now_ms)
            .map(|(ttl_ms, now_ms)| now_ms.saturating_add(ttl_ms));
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
        let mut table = self.shard(key_hash).write();
        let slot = table.find_hashed(key_hash, key)?;
        let entry = table.remove(slot);
        let expired = entry.expire_at_ms.is_some() && entry.is_expired(self.clock.now_ms());
        (!expired).then_some(entry.value)
    }

    /// Occupancy summed over shards (each read under its own lock, so not an
    /// atomic snapshot under concurrent use).
    pub fn stats(&self) -> NearStats {
        let mut stats = NearStats::default();
        for shard in self.shards.iter() {
            let table = shard.read();
            stats.entries += table.len();
            stats.weight += table.weight_total();
        }
        stats
    }

    #[inline]
    fn shard(&self, key_hash: u64) -> &RwLock<Table<K, V>> {
        // The table's index uses the low bits and the top 7; shards use the
        // middle, so the two choices stay independent.
        &self.shards[(key_hash >> 32) as usize & self.shard_mask]
    }
}
