//! What the near cache needs from one shard, so that one body of `get` /
//! `insert` / `remove` serves both shard kinds: the specialised
//! [`S3FifoShard`](super::s3fifo_shard::S3FifoShard) (the default policy) and
//! the general [`Table`] (every other policy).

use std::borrow::Borrow;
use std::hash::Hash;

use crate::policy::SlotId;
use crate::table::Table;

/// One shard's container, used under the shard's lock.
///
/// # Contract
///
/// The caller guarantees:
/// - `key_hash` is the crate's fixed hash of the key ([`crate::hash::hash_of`]);
/// - `value`, `expire_at_ms`, `record_hit*`, `replace` and `remove` get only a
///   slot that `find` returned under the same lock guard (or a later write
///   guard with no intervening release);
/// - `insert` is called only for a key that `find` does not see, and only
///   with a weight that `fits` accepted.
///
/// The shard guarantees that after `insert` or `replace` the sum of weights
/// is at most its capacity, evicting other entries (never the one being
/// written) as needed, with bounded work per call.
pub(super) trait NearShard<K, V> {
    fn find<Q>(&self, key_hash: u64, key: &Q) -> Option<SlotId>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized;
    fn value(&self, slot: SlotId) -> &V;
    fn expire_at_ms(&self, slot: SlotId) -> Option<u64>;
    /// Records a hit through a shared borrow; false if the policy needs
    /// [`NearShard::record_hit`] under the write lock instead.
    fn record_hit_shared(&self, slot: SlotId) -> bool;
    fn record_hit(&mut self, slot: SlotId);
    /// Whether an entry of `weight` could ever be stored.
    fn fits(&self, weight: u64) -> bool;
    fn has_deadlines(&self) -> bool;
    /// Removes at most `reclaim_max` entries whose deadline is at or before
    /// `now_ms`.
    fn reclaim_expired(&mut self, now_ms: u64, reclaim_max: u64);
    fn insert(&mut self, key: K, key_hash: u64, value: V, weight: u64, expire_at_ms: Option<u64>);
    fn replace(&mut self, slot: SlotId, value: V, weight: u64, expire_at_ms: Option<u64>);
    /// Removes the entry; returns its value and deadline.
    fn remove(&mut self, slot: SlotId) -> (V, Option<u64>);
    fn len(&self) -> u64;
    fn weight_total(&self) -> u64;
}

/// Every policy other than S3-FIFO runs on the general table.
impl<K: Hash + Eq, V> NearShard<K, V> for Table<K, V> {
    #[inline]
    fn find<Q>(&self, key_hash: u64, key: &Q) -> Option<SlotId>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find_hashed(key_hash, key)
    }

    #[inline]
    fn value(&self, slot: SlotId) -> &V {
        &self.entry(slot).value
    }

    #[inline]
    fn expire_at_ms(&self, slot: SlotId) -> Option<u64> {
        self.entry(slot).expire_at_ms()
    }

    #[inline]
    fn record_hit_shared(&self, slot: SlotId) -> bool {
        Table::record_hit_shared(self, slot)
    }

    fn record_hit(&mut self, slot: SlotId) {
        Table::record_hit(self, slot);
    }

    fn fits(&self, weight: u64) -> bool {
        self.check_weight(weight).is_ok()
    }

    fn has_deadlines(&self) -> bool {
        Table::has_deadlines(self)
    }

    fn reclaim_expired(&mut self, now_ms: u64, reclaim_max: u64) {
        Table::reclaim_expired(self, now_ms, reclaim_max);
    }

    fn insert(&mut self, key: K, key_hash: u64, value: V, weight: u64, expire_at_ms: Option<u64>) {
        if let Err(too_heavy) = Table::insert(self, key, key_hash, value, weight, expire_at_ms) {
            panic!("near cache inserted an entry that does not fit: {too_heavy:?}");
        }
    }

    fn replace(&mut self, slot: SlotId, value: V, weight: u64, expire_at_ms: Option<u64>) {
        if let Err(too_heavy) = self.set_value(slot, value, weight) {
            panic!("near cache replaced with an entry that does not fit: {too_heavy:?}");
        }
        self.set_expiry(slot, expire_at_ms);
    }

    fn remove(&mut self, slot: SlotId) -> (V, Option<u64>) {
        let entry = Table::remove(self, slot);
        let expire_at_ms = entry.expire_at_ms();
        (entry.value, expire_at_ms)
    }

    fn len(&self) -> u64 {
        Table::len(self)
    }

    fn weight_total(&self) -> u64 {
        Table::weight_total(self)
    }
}
