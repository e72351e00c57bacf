//! The concurrent near (L1) cache for clients and gateways.
//!
//! ```text
//!   key ──fixed hash──► shard = bits 32.. of the hash & (shards - 1)
//!                          │
//!               RwLock<shard>   one per shard, either
//!                 S3FifoShard   (default policy: entries in the hash table's
//!                                buckets, FIFO rings of bucket positions)
//!                 Table         (LRU, LFU, SIEVE: the store's container)
//! ```
//!
//! Both shard kinds implement one trait (`shard.rs`, contract in its docs),
//! so `get`, `insert` and `remove` are written once. The default S3-FIFO
//! policy gets its own shard (`s3fifo_shard.rs`) because the near cache's
//! job is throughput: a hit there reads one cache line (the bucket holding
//! key, value and frequency), where the shared [`Table`] reads the index's
//! control bytes, its slot id, the slab entry and the policy's record. The
//! deterministic store keeps using [`Table`] unchanged.
//!
//! With S3-FIFO (or SIEVE) a hit only bumps an atomic counter, so hits take
//! the *read* lock and readers of one hot shard run in parallel; inserts
//! take the write lock. LRU and LFU reorder on every hit and take the write
//! lock.
//!
//! Time comes from an injected [`Clock`], read only when an entry carries a
//! deadline. Expired entries are invisible at once and reclaimed a bounded
//! number at a time by later inserts in the same shard.

mod clock;
mod s3fifo_shard;
mod shard;

use std::borrow::Borrow;
use std::hash::Hash;

use parking_lot::RwLock;

pub use clock::{Clock, ManualClock, MonotonicClock};

use crate::hash::hash_of;
use crate::policy::PolicyKind;
use crate::table::{Limits, Table};
use s3fifo_shard::S3FifoShard;
use shard::NearShard;

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
            // Not `PolicyKind::DEFAULT` (the store's adaptive policy): the
            // near cache's S3-FIFO shards record hits under a read lock
            // and keep entries in the hash table's buckets; the adaptive
            // policy relinks window hits and runs shadow caches, both
            // under the exclusive lock, and was measured for the store only.
            policy: PolicyKind::S3Fifo,
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

/// The shards, specialised for the default policy.
enum Shards<K, V> {
    /// S3-FIFO with its state inline in each slot (see `s3fifo_shard.rs`).
    S3Fifo(Box<[RwLock<S3FifoShard<K, V>>]>),
    /// Every other policy, on the general [`Table`].
    Table(Box<[RwLock<Table<K, V>>]>),
}

/// Runs `$body` with `$shards` bound to whichever shard slice is in use:
/// one body of code, monomorphised for each shard kind.
macro_rules! with_shards {
    ($self:expr, $shards:ident => $body:expr) => {
        match &$self.shards {
            Shards::S3Fifo($shards) => $body,
            Shards::Table($shards) => $body,
        }
    };
}

/// A thread-safe, sharded, bounded cache with TTL. See the module docs.
pub struct NearCache<K, V, C: Clock = MonotonicClock> {
    shards: Shards<K, V>,
    shard_mask: usize,
    /// What each shard is built with (for [`NearCache::clear`]).
    shard_weight: u64,
    policy: PolicyKind,
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
        let shards = match config.policy {
            PolicyKind::S3Fifo => Shards::S3Fifo(
                (0..shard_count)
                    .map(|_| RwLock::new(S3FifoShard::new(shard_weight)))
                    .collect(),
            ),
            policy => {
                let limits = Limits {
                    capacity_weight: shard_weight,
                    capacity_entries: None,
                };
                Shards::Table(
                    (0..shard_count)
                        .map(|_| RwLock::new(Table::new(policy, limits)))
                        .collect(),
                )
            }
        };
        NearCache {
            shards,
            shard_mask: shard_count - 1,
            shard_weight,
            policy: config.policy,
            clock,
            default_ttl_ms: config.default_ttl_ms,
        }
    }

    pub fn shard_count(&self) -> usize {
        self.shard_mask + 1
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// A clone of the value for `key`, if present and not expired.
    ///
    /// With SIEVE or S3-FIFO a hit takes only the shard's read lock; LRU and
    /// LFU must reorder on every hit and take the write lock.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let key_hash = hash_of(key);
        with_shards!(self, shards => self.get_in(&shards[self.shard_index(key_hash)], key_hash, key))
    }

    /// Inserts with weight 1 and the default TTL.
    #[inline]
    pub fn insert(&self, key: K, value: V) -> bool {
        self.insert_with(key, value, 1, self.default_ttl_ms)
    }

    /// Inserts or replaces `key`. Returns false (and changes nothing) if the
    /// entry is heavier than one shard's capacity (or, with the default
    /// S3-FIFO policy, than `u32::MAX`) or `ttl_ms` is zero.
    pub fn insert_with(&self, key: K, value: V, weight: u64, ttl_ms: Option<u64>) -> bool {
        if ttl_ms == Some(0) {
            return false;
        }
        let key_hash = hash_of(&key);
        with_shards!(self, shards => self.insert_in(
            &shards[self.shard_index(key_hash)],
            key,
            key_hash,
            value,
            weight,
            ttl_ms,
        ))
    }

    /// Removes `key`, returning its value if it was present and not expired.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let key_hash = hash_of(key);
        with_shards!(self, shards => self.remove_in(&shards[self.shard_index(key_hash)], key_hash, key))
    }

    /// Drops every entry (shard by shard: a concurrent reader may still
    /// see an entry of a shard not yet cleared). The shards start small
    /// again and grow as they refill, so a clear costs what the cache held,
    /// not what it could hold.
    pub fn clear(&self) {
        match &self.shards {
            Shards::S3Fifo(shards) => {
                for shard in shards.iter() {
                    *shard.write() = S3FifoShard::presized(self.shard_weight, 0);
                }
            }
            Shards::Table(shards) => {
                let limits = Limits {
                    capacity_weight: self.shard_weight,
                    capacity_entries: None,
                };
                for shard in shards.iter() {
                    *shard.write() = Table::new(self.policy, limits);
                }
            }
        }
    }

    /// Occupancy summed over shards (each read under its own lock, so not an
    /// atomic snapshot under concurrent use).
    pub fn stats(&self) -> NearStats {
        let mut stats = NearStats::default();
        with_shards!(self, shards => {
            for shard in shards.iter() {
                let table = shard.read();
                stats.entries += table.len();
                stats.weight += table.weight_total();
            }
        });
        stats
    }

    #[inline]
    fn shard_index(&self, key_hash: u64) -> usize {
        // The table's index uses the low bits and the top 7; shards use the
        // middle, so the two choices stay independent.
        (key_hash >> 32) as usize & self.shard_mask
    }

    /// Whether an entry with this deadline is visible now. The clock is read
    /// only when there is a deadline.
    #[inline]
    fn is_live(&self, expire_at_ms: Option<u64>) -> bool {
        expire_at_ms.is_none_or(|expire_at_ms| self.clock.now_ms() < expire_at_ms)
    }

    #[inline]
    fn get_in<S, Q>(&self, shard: &RwLock<S>, key_hash: u64, key: &Q) -> Option<V>
    where
        S: NearShard<K, V>,
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let table = shard.read();
        let slot = table.find(key_hash, key)?;
        if self.is_live(table.expire_at_ms(slot)) {
            let value = table.value(slot).clone();
            if !table.record_hit_shared(slot) {
                drop(table);
                let mut table = shard.write();
                // The entry may have gone while no lock was held; the value
                // read under the read lock is still a correct answer.
                if let Some(slot) = table.find(key_hash, key) {
                    table.record_hit(slot);
                }
            }
            return Some(value);
        }
        drop(table);
        let mut table = shard.write();
        if let Some(slot) = table.find(key_hash, key)
            && !self.is_live(table.expire_at_ms(slot))
        {
            table.remove(slot);
        }
        None
    }

    fn remove_in<S, Q>(&self, shard: &RwLock<S>, key_hash: u64, key: &Q) -> Option<V>
    where
        S: NearShard<K, V>,
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let mut table = shard.write();
        let slot = table.find(key_hash, key)?;
        let (value, expire_at_ms) = table.remove(slot);
        self.is_live(expire_at_ms).then_some(value)
    }

    fn insert_in<S: NearShard<K, V>>(
        &self,
        shard: &RwLock<S>,
        key: K,
        key_hash: u64,
        value: V,
        weight: u64,
        ttl_ms: Option<u64>,
    ) -> bool {
        let mut table = shard.write();
        if !table.fits(weight) {
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
        match table.find(key_hash, &key) {
            Some(slot) => table.replace(slot, value, weight, expire_at_ms),
            None => table.insert(key, key_hash, value, weight, expire_at_ms),
        }
        true
    }
}
