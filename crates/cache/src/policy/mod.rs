//! Eviction policies: one trait, one policy per file.
//!
//! A policy never sees keys or values. The container (see [`crate::table`])
//! stores entries in a slab and tells the policy about *slot ids*; the policy
//! keeps whatever per-slot metadata it needs in arrays indexed by slot id and
//! answers one question: which slot goes next.
//!
//! | policy | file | hit cost | idea |
//! |---|---|---|---|
//! | [`Lru`] | `lru.rs` | list move | exact recency |
//! | [`Lfu`] | `lfu.rs` | O(log n) | frequency with dynamic aging |
//! | [`Sieve`] | `sieve.rs` | set a bit | FIFO + visited bit + hand |
//! | [`S3Fifo`] | `s3fifo.rs` | bump a counter | small/main/ghost FIFOs |
//! | [`Adaptive`] | `adaptive.rs` (+ `blend.rs`, `miniature.rs`, `key_index.rs`) | list move (window) or bump a counter; one sampled request in 2^k also runs five shadow caches | LRU window in front of S3-FIFO; window share and ghost size chosen by miniature simulation |
//!
//! The default, [`PolicyKind::DEFAULT`], was chosen by measuring hit ratios
//! and throughput (the table is in the crate docs): the store uses
//! `Adaptive`; the near cache keeps S3-FIFO, whose shards record hits
//! under a read lock.

mod adaptive;
mod blend;
pub(crate) mod ghost;
pub(crate) mod hit_bits;
mod key_index;
mod lfu;
mod list;
mod lru;
mod miniature;
pub(crate) mod s3fifo;
mod sieve;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use adaptive::Adaptive;
pub use lfu::Lfu;
pub use lru::Lru;
pub use s3fifo::S3Fifo;
pub use sieve::Sieve;

/// Index of an entry in its container's slab.
pub type SlotId = u32;

/// The one slot id that is never allocated (policies use it as "none").
pub const NIL_SLOT: SlotId = list::NIL;

/// An eviction policy over slot ids.
///
/// # Contract
///
/// The caller guarantees:
/// - `on_insert` is called only for a slot that is not resident; afterwards it
///   is resident.
/// - `on_hit`, `on_resize` and `on_remove` are called only for resident slots;
///   after `on_remove` the slot is not resident.
/// - `key_hash` is the crate's fixed hash of the key (see [`crate::hash`]), so
///   policies that remember evicted keys (ghost queues) stay deterministic.
///
/// The policy guarantees:
/// - `evict` returns a resident slot and forgets it (it is no longer
///   resident), or `None` only when nothing is resident.
/// - `evict` never returns `protected` while any other slot is resident; the
///   container protects the entry it is writing so a put is never undone by
///   its own eviction pass.
/// - Every method does bounded work and is deterministic: the same calls in
///   the same order give the same answers and the same state.
pub trait Policy {
    fn on_insert(&mut self, slot: SlotId, key_hash: u64, weight: u64);
    fn on_hit(&mut self, slot: SlotId);
    /// Records a hit through a shared borrow, for concurrent readers; returns
    /// false if this policy needs exclusive access (the caller then calls
    /// `on_hit` under an exclusive lock). Same caller guarantees as `on_hit`.
    fn on_hit_shared(&self, _slot: SlotId) -> bool {
        false
    }
    fn on_resize(&mut self, slot: SlotId, weight: u64);
    fn on_remove(&mut self, slot: SlotId);
    fn evict(&mut self, protected: Option<SlotId>) -> Option<SlotId>;
    /// Number of resident slots (for invariant checks).
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Recomputes state that is derived and not serialized; called once after
    /// deserialization.
    fn rebuild_derived(&mut self) {}
}

/// Revisions of the policies' behaviour, where one changed after stores
/// were already running it. A store's eviction must be the same on every
/// replica applying the same operations, so a new behaviour cannot come
/// with an upgrade alone (replicas replay their logs from their own
/// snapshots, at different points): the owner of the stores records a
/// switch at one point of its log, and every replica sets it there
/// ([`crate::Store::set_policy_revision`]). The revision is not in a
/// store's snapshot: a new store, and a restored one, keep to `Original`
/// until their owner sets another (a store outside a replicated group,
/// kvraft's say, stays there unless its owner says otherwise).
///
/// Only the adaptive policy has more than one so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyRevision {
    /// As every store behaved before revisions existed: the adaptive
    /// policy's shadows hold 4096-8192 entries.
    #[default]
    Original,
    /// The adaptive policy's shadows hold 2048-4096 entries: half their
    /// fixed memory, within the hit-ratio aims on every `hit-ratio-table`
    /// trace.
    SmallerShadows,
}

impl PolicyRevision {
    /// The newest revision this build runs.
    pub const LATEST: PolicyRevision = PolicyRevision::SmallerShadows;

    /// Every revision, oldest first; a revision's number is its position.
    pub const ALL: [PolicyRevision; 2] = [PolicyRevision::Original, PolicyRevision::SmallerShadows];

    /// The number a log records it by.
    pub fn number(self) -> u32 {
        match self {
            PolicyRevision::Original => 0,
            PolicyRevision::SmallerShadows => 1,
        }
    }

    /// The revision numbered `number`, if this build knows it.
    pub fn from_number(number: u32) -> Option<PolicyRevision> {
        PolicyRevision::ALL
            .into_iter()
            .find(|revision| revision.number() == number)
    }
}

/// The names of the policies, for configuration and the `cache-trace` tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PolicyKind {
    Lru,
    Lfu,
    Sieve,
    S3Fifo,
    /// Added after the others: variants are serialized by position, so
    /// snapshots taken before it existed still decode.
    Adaptive,
}

impl PolicyKind {
    /// The policy used when none is named, by the store (chosen by
    /// measurement; see the crate docs). The near cache does not follow
    /// it: it keeps S3-FIFO ([`crate::near::NearCacheConfig::new`]).
    pub const DEFAULT: PolicyKind = PolicyKind::Adaptive;

    /// Every policy, in a fixed order.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Lru,
        PolicyKind::Lfu,
        PolicyKind::Sieve,
        PolicyKind::S3Fifo,
        PolicyKind::Adaptive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Lru => "lru",
            PolicyKind::Lfu => "lfu",
            PolicyKind::Sieve => "sieve",
            PolicyKind::S3Fifo => "s3fifo",
            PolicyKind::Adaptive => "adaptive",
        }
    }

    /// A fresh, empty policy of this kind.
    pub fn build(self) -> AnyPolicy {
        match self {
            PolicyKind::Lru => AnyPolicy::Lru(Lru::default()),
            PolicyKind::Lfu => AnyPolicy::Lfu(Lfu::default()),
            PolicyKind::Sieve => AnyPolicy::Sieve(Sieve::new()),
            PolicyKind::S3Fifo => AnyPolicy::S3Fifo(S3Fifo::default()),
            PolicyKind::Adaptive => AnyPolicy::Adaptive(Adaptive::default()),
        }
    }
}

impl Default for PolicyKind {
    fn default() -> Self {
        PolicyKind::DEFAULT
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A policy name that is not one of [`PolicyKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {name:?}; expected one of lru, lfu, sieve, s3fifo, adaptive")]
pub struct UnknownPolicy {
    pub name: String,
}

impl FromStr for PolicyKind {
    type Err = UnknownPolicy;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnknownPolicy {
                name: name.to_owned(),
            })
    }
}

/// Any policy, dispatched by `match` rather than a trait object so that it
/// can be serialized inside a snapshot and inlined on the hot path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnyPolicy {
    Lru(Lru),
    Lfu(Lfu),
    Sieve(Sieve),
    S3Fifo(S3Fifo),
    /// Last, for the same reason as [`PolicyKind::Adaptive`].
    Adaptive(Adaptive),
}

macro_rules! dispatch {
    ($self:ident, $policy:ident => $call:expr) => {
        match $self {
            AnyPolicy::Lru($policy) => $call,
            AnyPolicy::Lfu($policy) => $call,
            AnyPolicy::Sieve($policy) => $call,
            AnyPolicy::S3Fifo($policy) => $call,
            AnyPolicy::Adaptive($policy) => $call,
        }
    };
}

impl AnyPolicy {
    /// Keeps to `revision` from the next request on (see
    /// [`PolicyRevision`]); the policies it does not concern ignore it.
    pub fn set_revision(&mut self, revision: PolicyRevision) {
        if let AnyPolicy::Adaptive(adaptive) = self {
            adaptive.set_revision(revision);
        }
    }

    pub fn kind(&self) -> PolicyKind {
        match self {
            AnyPolicy::Lru(_) => PolicyKind::Lru,
            AnyPolicy::Lfu(_) => PolicyKind::Lfu,
            AnyPolicy::Sieve(_) => PolicyKind::Sieve,
            AnyPolicy::S3Fifo(_) => PolicyKind::S3Fifo,
            AnyPolicy::Adaptive(_) => PolicyKind::Adaptive,
        }
    }
}

impl Policy for AnyPolicy {
    #[inline]
    fn on_insert(&mut self, slot: SlotId, key_hash: u64, weight: u64) {
        dispatch!(self, policy => policy.on_insert(slot, key_hash, weight))
    }

    #[inline]
    fn on_hit(&mut self, slot: SlotId) {
        dispatch!(self, policy => policy.on_hit(slot))
    }

    #[inline]
    fn on_hit_shared(&self, slot: SlotId) -> bool {
        dispatch!(self, policy => policy.on_hit_shared(slot))
    }

    #[inline]
    fn on_resize(&mut self, slot: SlotId, weight: u64) {
        dispatch!(self, policy => policy.on_resize(slot, weight))
    }

    #[inline]
    fn on_remove(&mut self, slot: SlotId) {
        dispatch!(self, policy => policy.on_remove(slot))
    }

    #[inline]
    fn evict(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        dispatch!(self, policy => policy.evict(protected))
    }

    fn len(&self) -> u64 {
        dispatch!(self, policy => policy.len())
    }

    fn rebuild_derived(&mut self) {
        dispatch!(self, policy => policy.rebuild_derived())
    }
}

/// A cache of `capacity` unit-weight entries over `policy`, replaying
/// `trace` (a miss inserts), for the policies' tests. Returns the hits and
/// every victim, in order.
#[cfg(test)]
pub(crate) fn replay<P: Policy>(
    policy: &mut P,
    capacity: usize,
    trace: &[u64],
) -> (u64, Vec<SlotId>) {
    use std::collections::BTreeMap;
    let mut slot_of_key: BTreeMap<u64, SlotId> = BTreeMap::new();
    let mut key_of_slot: BTreeMap<SlotId, u64> = BTreeMap::new();
    let mut free_slots: Vec<SlotId> = Vec::new();
    let mut next_slot: SlotId = 0;
    let (mut hits, mut victims) = (0, Vec::new());
    for &key in trace {
        if let Some(&slot) = slot_of_key.get(&key) {
            policy.on_hit(slot);
            hits += 1;
            continue;
        }
        let slot = free_slots.pop().unwrap_or_else(|| {
            next_slot += 1;
            next_slot - 1
        });
        policy.on_insert(slot, crate::hash::hash_of(&key), 1);
        slot_of_key.insert(key, slot);
        key_of_slot.insert(slot, key);
        while slot_of_key.len() > capacity {
            let victim = policy
                .evict(Some(slot))
                .expect("over capacity, so a victim");
            let victim_key = key_of_slot.remove(&victim).expect("victim was resident");
            slot_of_key.remove(&victim_key);
            free_slots.push(victim);
            victims.push(victim);
        }
        assert_eq!(policy.len(), slot_of_key.len() as u64);
    }
    (hits, victims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in PolicyKind::ALL {
            assert_eq!(kind.name().parse::<PolicyKind>(), Ok(kind));
            assert_eq!(kind.build().kind(), kind);
        }
        assert!("clock".parse::<PolicyKind>().is_err());
    }

    /// Snapshots name the policy by variant position (bincode), so adding a
    /// policy must not move the old ones: a store snapshotted before
    /// `Adaptive` existed must still decode as the policy it was.
    #[test]
    fn serialized_positions_of_policies_never_move() {
        let expected: [(PolicyKind, u8); 5] = [
            (PolicyKind::Lru, 0),
            (PolicyKind::Lfu, 1),
            (PolicyKind::Sieve, 2),
            (PolicyKind::S3Fifo, 3),
            (PolicyKind::Adaptive, 4),
        ];
        for (kind, position) in expected {
            assert_eq!(codec::encode(&kind), vec![position], "{kind}");
            assert_eq!(codec::encode(&kind.build())[0], position, "{kind} state");
        }
    }

    /// Every policy honours the contract on a small random workload.
    #[test]
    fn every_policy_keeps_the_contract() {
        for kind in PolicyKind::ALL {
            let mut policy = kind.build();
            let mut resident = std::collections::BTreeSet::new();
            let mut state = 12345u64;
            for step in 0..5_000u64 {
                state = crate::hash::fmix64(state.wrapping_add(step));
                let slot = (state % 64) as SlotId;
                match (state >> 8) % 4 {
                    0 | 1 if !resident.contains(&slot) => {
                        policy.on_insert(slot, state >> 16, 1 + state % 5);
                        resident.insert(slot);
                    }
                    0 | 1 => policy.on_hit(slot),
                    2 if resident.contains(&slot) => {
                        policy.on_remove(slot);
                        resident.remove(&slot);
                    }
                    _ => {
                        let protected = resident.iter().next().copied();
                        match policy.evict(protected) {
                            Some(victim) => {
                                assert!(resident.remove(&victim), "{kind}: evicted non-resident");
                                assert!(
                                    Some(victim) != protected || resident.is_empty(),
                                    "{kind}: evicted the protected slot"
                                );
                            }
                            None => assert!(resident.is_empty(), "{kind}: no victim"),
                        }
                    }
                }
                assert_eq!(policy.len(), resident.len() as u64, "{kind}: length");
            }
        }
    }
}
