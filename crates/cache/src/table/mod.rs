//! The container shared by the deterministic store, the near cache and the
//! trace tool: a slab of entries, a hash index, an eviction policy and an
//! expiry index.
//!
//! ```text
//!   key ──hash──► index (slot ids) ──► slab[slot] = { key, value, weight, expire_at_ms, expire_at_unix_ms }
//!                                         │
//!                         policy (per-slot metadata, picks victims)
//!                         expiry: BTreeSet<(expire_at_ms, slot)>
//! ```
//!
//! Each key is stored once, in the slab; the index holds 4-byte slot ids,
//! placed by the key's hash (computed again from the key when the index
//! grows or an entry leaves it: a slab entry does not keep it, 8 bytes a
//! key less). Freed slots are reused last-freed-first, so
//! slot numbering (and therefore the policy's state) is a pure function of the
//! operations applied: that is what makes the store deterministic.
//!
//! The table knows nothing about clocks: callers pass `now_ms` in whatever
//! time base they use (log time for the store, a [`crate::near::Clock`] for
//! the near cache).

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::hash::Hash;

use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use crate::hash::hash_of;
use crate::policy::{AnyPolicy, Policy, PolicyKind, PolicyRevision, SlotId};

/// One resident entry.
///
/// The two deadlines are kept in 8 bytes each (`None` as a reserved
/// value) rather than as 16-byte `Option`s: at a million keys that is
/// 16 MB. The key's hash is not kept (it is the crate's fixed hash of the
/// key, [`Entry::key_hash`]). Serialized with the hash and `Option`s, as
/// before, so the snapshot's bytes are unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<K, V> {
    pub key: K,
    pub value: V,
    /// What this entry counts against `capacity_weight` (bytes, or 1).
    pub weight: u64,
    /// [`Entry::expire_at_ms`], [`NO_DEADLINE`] for none.
    expire_at_ms: u64,
    /// [`Entry::expire_at_unix_ms`], [`NO_UNIX_DEADLINE`] for none.
    expire_at_unix_ms: i64,
}

/// The packed form of "no deadline". A deadline at this instant would
/// never fall due anyway; one asked for is kept as the instant before.
const NO_DEADLINE: u64 = u64::MAX;
/// The packed form of "no wall-clock instant"; one asked for is kept as
/// the instant after.
const NO_UNIX_DEADLINE: i64 = i64::MIN;

fn pack_deadline(expire_at_ms: Option<u64>) -> u64 {
    expire_at_ms.map_or(NO_DEADLINE, |at| at.min(NO_DEADLINE - 1))
}

fn pack_unix_deadline(expire_at_unix_ms: Option<i64>) -> i64 {
    expire_at_unix_ms.map_or(NO_UNIX_DEADLINE, |at| at.max(NO_UNIX_DEADLINE + 1))
}

impl<K: Hash, V> Entry<K, V> {
    /// The crate's fixed hash of the key ([`hash_of`]), computed.
    #[inline]
    pub fn key_hash(&self) -> u64 {
        hash_of(&self.key)
    }
}

impl<K, V> Entry<K, V> {
    fn new(key: K, value: V, weight: u64, expire_at_ms: Option<u64>) -> Self {
        Entry {
            key,
            value,
            weight,
            expire_at_ms: pack_deadline(expire_at_ms),
            expire_at_unix_ms: NO_UNIX_DEADLINE,
        }
    }

    /// The entry is invisible from this instant on (`now_ms >= expire_at_ms`).
    #[inline]
    pub fn expire_at_ms(&self) -> Option<u64> {
        (self.expire_at_ms != NO_DEADLINE).then_some(self.expire_at_ms)
    }

    /// The wall-clock instant (Unix ms) a client named for that deadline,
    /// kept only to be read back (Redis's `EXPIRETIME`); expiry never
    /// looks at it. Only an entry with a deadline has one.
    #[inline]
    pub fn expire_at_unix_ms(&self) -> Option<i64> {
        (self.expire_at_unix_ms != NO_UNIX_DEADLINE).then_some(self.expire_at_unix_ms)
    }

    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms != NO_DEADLINE && now_ms >= self.expire_at_ms
    }
}

/// [`Entry`]'s serialized form: the fields in order, deadlines as `Option`s.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Entry")]
struct EntryParts<K, V> {
    key: K,
    value: V,
    key_hash: u64,
    weight: u64,
    expire_at_ms: Option<u64>,
    expire_at_unix_ms: Option<i64>,
}

impl<K: Serialize + Hash, V: Serialize> Serialize for Entry<K, V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut entry = serializer.serialize_struct("Entry", 6)?;
        entry.serialize_field("key", &self.key)?;
        entry.serialize_field("value", &self.value)?;
        entry.serialize_field("key_hash", &self.key_hash())?;
        entry.serialize_field("weight", &self.weight)?;
        entry.serialize_field("expire_at_ms", &self.expire_at_ms())?;
        entry.serialize_field("expire_at_unix_ms", &self.expire_at_unix_ms())?;
        entry.end()
    }
}

impl<'de, K: Deserialize<'de> + Hash, V: Deserialize<'de>> Deserialize<'de> for Entry<K, V> {
    /// Refuses an entry whose hash is not its key's.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parts = EntryParts::<K, V>::deserialize(deserializer)?;
        if parts.key_hash != hash_of(&parts.key) {
            return Err(serde::de::Error::custom(
                "an entry's cached hash does not match its key",
            ));
        }
        Ok(Entry {
            key: parts.key,
            value: parts.value,
            weight: parts.weight,
            expire_at_ms: pack_deadline(parts.expire_at_ms),
            expire_at_unix_ms: pack_unix_deadline(parts.expire_at_unix_ms),
        })
    }
}

/// What a table may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The sum of entry weights never exceeds this after an operation.
    pub capacity_weight: u64,
    /// The number of entries never exceeds this, if set.
    pub capacity_entries: Option<u64>,
}

/// An entry heavier than the whole table: it could never be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooHeavy {
    pub weight: u64,
    pub capacity_weight: u64,
}

/// Slab + index + policy + expiry. See the module docs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Hash, V: Serialize",
    deserialize = "K: Deserialize<'de> + Hash, V: Deserialize<'de>"
))]
pub struct Table<K, V> {
    limits: Limits,
    slots: Vec<Option<Entry<K, V>>>,
    free_slots: Vec<SlotId>,
    policy: AnyPolicy,
    /// `(expire_at_ms, slot)` for every entry with a deadline, soonest first.
    expiry: BTreeSet<(u64, SlotId)>,
    weight_total: u64,
    len: u64,
    /// Derived from `slots`; rebuilt by [`Table::rebuild_derived`].
    #[serde(skip)]
    index: HashTable<SlotId>,
    /// Entries evicted since the last [`Table::take_evicted`], in eviction
    /// order, when the owner asked to keep them ([`Table::keep_evicted`]:
    /// the store's disk tier); `None` drops them as they are evicted.
    /// Bounded by one operation's evictions (the owner drains it after
    /// each).
    #[serde(skip)]
    evicted: Option<Vec<Entry<K, V>>>,
    /// The policy revision its owner set ([`Table::set_policy_revision`]);
    /// not serialized (see [`PolicyRevision`]).
    #[serde(skip)]
    revision: PolicyRevision,
}

impl<K: Hash + Eq, V> Table<K, V> {
    /// # Panics
    /// If a capacity is zero: such a table could hold nothing, which is a
    /// configuration bug, not a runtime condition.
    pub fn new(policy: PolicyKind, limits: Limits) -> Self {
        assert!(
            limits.capacity_weight > 0,
            "capacity_weight must be positive"
        );
        assert!(
            limits.capacity_entries != Some(0),
            "capacity_entries must be positive"
        );
        Table {
            limits,
            slots: Vec::new(),
            free_slots: Vec::new(),
            policy: policy.build(),
            expiry: BTreeSet::new(),
            weight_total: 0,
            len: 0,
            index: HashTable::new(),
            evicted: None,
            revision: PolicyRevision::Original,
        }
    }

    /// Keep evicted entries for [`Table::take_evicted`] (`true`) or drop
    /// them (`false`, the default).
    pub fn keep_evicted(&mut self, keep: bool) {
        self.evicted = keep.then(Vec::new);
    }

    /// The entries evicted since the last call, in eviction order (empty
    /// unless [`Table::keep_evicted`] is on).
    pub fn take_evicted(&mut self) -> Vec<Entry<K, V>> {
        match &mut self.evicted {
            Some(evicted) => std::mem::take(evicted),
            None => Vec::new(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// See [`AnyPolicy::set_revision`].
    pub fn set_policy_revision(&mut self, revision: PolicyRevision) {
        self.revision = revision;
        self.policy.set_revision(revision);
    }

    /// The policy revision last set (`Original` if never).
    pub fn policy_revision(&self) -> PolicyRevision {
        self.revision
    }

    /// The slab's length in slots (resident or free), what the
    /// policies' per-slot arrays scale with.
    pub fn slot_count(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Slots of the adaptive policy's shadows (0 for other policies).
    pub fn shadow_slots(&self) -> u64 {
        match &self.policy {
            AnyPolicy::Adaptive(adaptive) => adaptive.shadow_slots(),
            _ => 0,
        }
    }

    pub fn policy_kind(&self) -> PolicyKind {
        self.policy.kind()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn weight_total(&self) -> u64 {
        self.weight_total
    }

    /// The slot holding `key` (expired or not).
    #[inline]
    pub fn find<Q>(&self, key: &Q) -> Option<SlotId>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find_hashed(hash_of(key), key)
    }

    /// Like [`Table::find`] with the key's hash already computed.
    #[inline]
    pub fn find_hashed<Q>(&self, key_hash: u64, key: &Q) -> Option<SlotId>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slots = &self.slots;
        self.index
            .find(key_hash, |&slot| match &slots[slot as usize] {
                Some(entry) => entry.key.borrow() == key,
                None => false,
            })
            .copied()
    }

    /// The entry in a resident slot.
    ///
    /// # Panics
    /// If `slot` is not resident (a caller bug).
    #[inline]
    pub fn entry(&self, slot: SlotId) -> &Entry<K, V> {
        match &self.slots[slot as usize] {
            Some(entry) => entry,
            None => panic!("slot {slot} is not resident"),
        }
    }

    /// Mutable access to a resident slot's value. Changing the weight goes
    /// through [`Table::set_value`] instead, so the accounting stays exact.
    #[inline]
    pub fn value_mut(&mut self, slot: SlotId) -> &mut V {
        match &mut self.slots[slot as usize] {
            Some(entry) => &mut entry.value,
            None => panic!("slot {slot} is not resident"),
        }
    }

    /// Tells the policy that a resident slot was read.
    #[inline]
    pub fn record_hit(&mut self, slot: SlotId) {
        self.policy.on_hit(slot);
    }

    /// Records a hit through a shared borrow if the policy allows it (see
    /// [`Policy::on_hit_shared`]); returns false if an exclusive
    /// [`Table::record_hit`] is needed instead.
    #[inline]
    pub fn record_hit_shared(&self, slot: SlotId) -> bool {
        self.policy.on_hit_shared(slot)
    }

    /// Whether any entry has a deadline (so whether reclaim has work to do).
    #[inline]
    pub fn has_deadlines(&self) -> bool {
        !self.expiry.is_empty()
    }

    /// Checks that an entry of `weight` could ever fit.
    pub fn check_weight(&self, weight: u64) -> Result<(), TooHeavy> {
        if weight > self.limits.capacity_weight {
            return Err(TooHeavy {
                weight,
                capacity_weight: self.limits.capacity_weight,
            });
        }
        Ok(())
    }

    /// Inserts a key that is not present, then evicts (never the new entry)
    /// until the limits hold. Returns the new slot and the number evicted.
    pub fn insert(
        &mut self,
        key: K,
        key_hash: u64,
        value: V,
        weight: u64,
        expire_at_ms: Option<u64>,
    ) -> Result<(SlotId, u64), TooHeavy> {
        self.check_weight(weight)?;
        debug_assert!(
            self.find_hashed(key_hash, &key).is_none(),
            "insert of a present key"
        );
        let entry = Entry::new(key, value, weight, expire_at_ms);
        let expire_at_ms = entry.expire_at_ms();
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(entry);
                slot
            }
            None => {
                let slot = SlotId::try_from(self.slots.len())
                    .ok()
                    .filter(|&slot| slot != crate::policy::NIL_SLOT)
                    .unwrap_or_else(|| panic!("table slab is full ({} slots)", self.slots.len()));
                crate::growth::reserve_for(&mut self.slots, slot as usize + 1);
                self.slots.push(Some(entry));
                slot
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(key_hash, slot, |&other| Self::slot_hash(slots, other));
        if let Some(expire_at_ms) = expire_at_ms {
            self.expiry.insert((expire_at_ms, slot));
        }
        self.weight_total += weight;
        self.len += 1;
        self.policy.on_insert(slot, key_hash, weight);
        let evicted = self.evict_to_fit(Some(slot));
        Ok((slot, evicted))
    }

    /// Replaces a resident slot's value and weight, then evicts (never this
    /// slot) until the limits hold. Returns the number evicted.
    pub fn set_value(&mut self, slot: SlotId, value: V, weight: u64) -> Result<u64, TooHeavy> {
        self.check_weight(weight)?;
        let entry = match &mut self.slots[slot as usize] {
            Some(entry) => entry,
            None => panic!("slot {slot} is not resident"),
        };
        self.weight_total = self.weight_total - entry.weight + weight;
        entry.value = value;
        entry.weight = weight;
        self.policy.on_resize(slot, weight);
        self.policy.on_hit(slot);
        Ok(self.evict_to_fit(Some(slot)))
    }

    /// Sets a resident slot's weight after its value changed in place
    /// (through [`Table::value_mut`]), then evicts (never this slot) until
    /// the limits hold. Returns the number evicted.
    pub fn set_weight(&mut self, slot: SlotId, weight: u64) -> Result<u64, TooHeavy> {
        self.check_weight(weight)?;
        let entry = match &mut self.slots[slot as usize] {
            Some(entry) => entry,
            None => panic!("slot {slot} is not resident"),
        };
        self.weight_total = self.weight_total - entry.weight + weight;
        entry.weight = weight;
        self.policy.on_resize(slot, weight);
        self.policy.on_hit(slot);
        Ok(self.evict_to_fit(Some(slot)))
    }

    /// Changes the weight capacity, then evicts until the limits hold.
    /// Returns the number evicted.
    ///
    /// # Panics
    /// If `capacity_weight` is zero (see [`Table::new`]).
    pub fn set_capacity_weight(&mut self, capacity_weight: u64) -> u64 {
        assert!(capacity_weight > 0, "capacity_weight must be positive");
        self.limits.capacity_weight = capacity_weight;
        self.evict_to_fit(None)
    }

    /// Sets or clears a resident slot's deadline (and forgets any
    /// wall-clock instant named for the old one).
    pub fn set_expiry(&mut self, slot: SlotId, expire_at_ms: Option<u64>) {
        let entry = match &mut self.slots[slot as usize] {
            Some(entry) => entry,
            None => panic!("slot {slot} is not resident"),
        };
        if let Some(old) = entry.expire_at_ms() {
            let removed = self.expiry.remove(&(old, slot));
            assert!(removed, "slot {slot} missing from the expiry index");
        }
        entry.expire_at_ms = pack_deadline(expire_at_ms);
        entry.expire_at_unix_ms = NO_UNIX_DEADLINE;
        if let Some(new) = entry.expire_at_ms() {
            self.expiry.insert((new, slot));
        }
    }

    /// Records the wall-clock instant a client named for a resident slot's
    /// deadline (after [`Table::set_expiry`]).
    ///
    /// # Panics
    /// If `expire_at_unix_ms` is set and the slot has no deadline: an
    /// instant without a deadline would be read back for a key that never
    /// expires.
    pub fn set_expiry_unix(&mut self, slot: SlotId, expire_at_unix_ms: Option<i64>) {
        let entry = match &mut self.slots[slot as usize] {
            Some(entry) => entry,
            None => panic!("slot {slot} is not resident"),
        };
        assert!(
            expire_at_unix_ms.is_none() || entry.expire_at_ms().is_some(),
            "slot {slot}: a wall-clock deadline without a log-time deadline"
        );
        entry.expire_at_unix_ms = pack_unix_deadline(expire_at_unix_ms);
    }

    /// Removes a resident slot and returns its entry.
    pub fn remove(&mut self, slot: SlotId) -> Entry<K, V> {
        self.policy.on_remove(slot);
        self.take(slot)
    }

    /// Removes up to `reclaim_max` entries whose deadline is at or before
    /// `now_ms`, soonest first. Returns how many were removed.
    pub fn reclaim_expired(&mut self, now_ms: u64, reclaim_max: u64) -> u64 {
        let mut reclaimed = 0;
        while reclaimed < reclaim_max {
            match self.expiry.first() {
                Some(&(expire_at_ms, slot)) if expire_at_ms <= now_ms => {
                    self.remove(slot);
                    reclaimed += 1;
                }
                _ => break,
            }
        }
        reclaimed
    }

    /// Resident entries in slot order (deterministic: slot numbering is a
    /// function of the operations applied), expired ones included.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<K, V>> {
        self.slots.iter().flatten()
    }

    /// Recomputes the index (and the policy's derived state) after
    /// deserialization.
    pub fn rebuild_derived(&mut self) {
        let mut index = HashTable::with_capacity(self.len as usize);
        for (slot, entry) in self.slots.iter().enumerate() {
            if let Some(entry) = entry {
                let slots = &self.slots;
                index.insert_unique(entry.key_hash(), slot as SlotId, |&other| {
                    Self::slot_hash(slots, other)
                });
            }
        }
        self.index = index;
        // A deadline at the packed form of "none" can only come from a
        // snapshot written before the packing: its entry now holds the
        // instant before (`pack_deadline`), and so must the index.
        if let Some(&(NO_DEADLINE, _)) = self.expiry.last() {
            self.expiry = std::mem::take(&mut self.expiry)
                .into_iter()
                .map(|(at, slot)| (at.min(NO_DEADLINE - 1), slot))
                .collect();
        }
        self.policy.rebuild_derived();
    }

    /// Checks every structural invariant in O(n); for tests and restore.
    pub fn check_invariants(&self) -> Result<(), String> {
        if let AnyPolicy::Adaptive(adaptive) = &self.policy
            && adaptive.revision() != self.revision
        {
            return Err(format!(
                "the policy keeps to revision {:?}, the table says {:?}",
                adaptive.revision(),
                self.revision
            ));
        }
        let mut weight_total = 0u64;
        let mut len = 0u64;
        let mut deadlines = 0usize;
        for (slot, entry) in self.slots.iter().enumerate() {
            let Some(entry) = entry else { continue };
            weight_total += entry.weight;
            len += 1;
            if self.find_hashed(entry.key_hash(), &entry.key) != Some(slot as SlotId) {
                return Err(format!("slot {slot}: key not found through the index"));
            }
            if let Some(expire_at_ms) = entry.expire_at_ms() {
                deadlines += 1;
                if !self.expiry.contains(&(expire_at_ms, slot as SlotId)) {
                    return Err(format!(
                        "slot {slot}: deadline missing from the expiry index"
                    ));
                }
            } else if entry.expire_at_unix_ms().is_some() {
                return Err(format!(
                    "slot {slot}: a wall-clock deadline without a log-time deadline"
                ));
            }
        }
        let free = self.free_slots.len() as u64;
        if weight_total != self.weight_total || len != self.len {
            return Err(format!(
                "accounting: counted {len} entries / {weight_total} weight, recorded {} / {}",
                self.len, self.weight_total
            ));
        }
        if len + free != self.slots.len() as u64 || deadlines != self.expiry.len() {
            return Err("slab or expiry index out of step with the entries".to_owned());
        }
        if self.policy.len() != len {
            return Err(format!(
                "policy tracks {} slots, table {len}",
                self.policy.len()
            ));
        }
        if !self.within_limits() {
            return Err(format!(
                "limits exceeded: {len} entries, {weight_total} weight"
            ));
        }
        Ok(())
    }

    fn within_limits(&self) -> bool {
        self.weight_total <= self.limits.capacity_weight
            && self
                .limits
                .capacity_entries
                .is_none_or(|capacity| self.len <= capacity)
    }

    fn evict_to_fit(&mut self, protected: Option<SlotId>) -> u64 {
        let mut evicted = 0;
        while !self.within_limits() {
            let victim = match self.policy.evict(protected) {
                Some(victim) => victim,
                None => panic!(
                    "over limits ({} entries, {} weight) with nothing to evict",
                    self.len, self.weight_total
                ),
            };
            assert!(
                Some(victim) != protected,
                "policy evicted the protected slot {victim}; a single entry cannot exceed the limits"
            );
            let entry = self.take(victim);
            if let Some(kept) = &mut self.evicted {
                kept.push(entry);
            }
            evicted += 1;
        }
        evicted
    }

    /// Detaches a slot the policy has already forgotten.
    fn take(&mut self, slot: SlotId) -> Entry<K, V> {
        let entry = match self.slots[slot as usize].take() {
            Some(entry) => entry,
            None => panic!("slot {slot} is not resident"),
        };
        match self
            .index
            .find_entry(entry.key_hash(), |&other| other == slot)
        {
            Ok(found) => {
                found.remove();
            }
            Err(_) => panic!("slot {slot} missing from the index"),
        }
        if let Some(expire_at_ms) = entry.expire_at_ms() {
            self.expiry.remove(&(expire_at_ms, slot));
        }
        self.weight_total -= entry.weight;
        self.len -= 1;
        self.free_slots.push(slot);
        entry
    }

    #[inline]
    fn slot_hash(slots: &[Option<Entry<K, V>>], slot: SlotId) -> u64 {
        match &slots[slot as usize] {
            Some(entry) => entry.key_hash(),
            None => panic!("index refers to empty slot {slot}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_deadlines_read_back_as_given_and_none_never_expires() {
        let forever: Entry<u8, ()> = Entry::new(1, (), 1, None);
        assert_eq!(forever.expire_at_ms(), None);
        assert!(!forever.is_expired(u64::MAX));
        let due: Entry<u8, ()> = Entry::new(1, (), 1, Some(10));
        assert_eq!(due.expire_at_ms(), Some(10));
        assert!(!due.is_expired(9) && due.is_expired(10));
        // The reserved value is kept as the instant before.
        let latest: Entry<u8, ()> = Entry::new(1, (), 1, Some(u64::MAX));
        assert_eq!(latest.expire_at_ms(), Some(u64::MAX - 1));
        assert!(latest.is_expired(u64::MAX));
        assert_eq!(pack_unix_deadline(Some(i64::MIN)), i64::MIN + 1);
        assert_eq!(pack_unix_deadline(None), NO_UNIX_DEADLINE);
    }

    /// The entry's serialized form still carries the key's hash (the
    /// bytes are as before it was dropped from memory); bytes whose hash
    /// is not the key's are refused, not trusted.
    #[test]
    fn an_entry_is_written_with_its_hash_and_read_only_if_it_matches() {
        #[derive(Serialize)]
        struct Written {
            key: u64,
            value: (),
            key_hash: u64,
            weight: u64,
            expire_at_ms: Option<u64>,
            expire_at_unix_ms: Option<i64>,
        }
        let entry: Entry<u64, ()> = Entry::new(7, (), 3, Some(10));
        let as_before = |key_hash| Written {
            key: 7,
            value: (),
            key_hash,
            weight: 3,
            expire_at_ms: Some(10),
            expire_at_unix_ms: None,
        };
        let bytes = codec::encode(&entry);
        assert_eq!(bytes, codec::encode(&as_before(hash_of(&7u64))));
        let read: Entry<u64, ()> = codec::decode(&bytes, codec::STATE_LIMIT).expect("decodes");
        assert_eq!(read, entry);
        let wrong = codec::encode(&as_before(hash_of(&7u64) ^ 1));
        let refused = codec::decode::<Entry<u64, ()>, _>(&wrong, codec::STATE_LIMIT);
        assert!(refused.is_err(), "a wrong hash was trusted");
    }
}
