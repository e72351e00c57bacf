//! S3-FIFO eviction (Yang et al., "FIFO queues are all you need for cache
//! eviction", SOSP 2023).

use serde::{Deserialize, Serialize};

use super::ghost::Ghost;
use super::hit_bits::HitCell;
use super::list::{LinkStore, List, NIL};
use super::{Policy, SlotId};

/// A slot's access count saturates here (two bits in the paper).
pub(crate) const FREQUENCY_MAX: u8 = 3;
/// The small queue's share of the resident weight, in percent. The paper
/// uses 10; measured with `cache-trace` on our Zipf 0.99 / 0.8 / scan traces
/// at 1k-100k entries, 1 beat 2, 3, 5, 10 and 20 everywhere (Zipf 0.99 at 1k
/// entries: 0.4912 vs 0.4849 at 10 and 0.4775 at 20). A small "small" queue
/// plus the ghost acts as an admission filter against one-hit wonders.
pub(crate) const SMALL_SHARE_PERCENT: u64 = 1;
/// A slot leaving the small queue with at least this count is promoted.
pub(crate) const PROMOTE_FREQUENCY_MIN: u8 = 1;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
enum Queue {
    #[default]
    None,
    Small,
    Main,
    /// Held for the owner of this S3-FIFO (the adaptive policy's window,
    /// whose list runs through these records' links): not resident here,
    /// not counted in any weight. Never serialized (see [`SlotStates`]),
    /// and refused if bytes claim it.
    #[serde(skip_deserializing)]
    Held,
}

/// Everything S3-FIFO keeps per slot, in one record (32 bytes) so that a hit
/// or an eviction step touches one cache line per slot, not one per field.
/// A slot held for the window (`Queue::Held`) keeps the window's links,
/// key hash and weight here too, and `frequency` non-zero once it earned
/// main.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SlotState {
    newer: SlotId,
    older: SlotId,
    key_hash: u64,
    weight: u64,
    queue: Queue,
    frequency: HitCell,
}

impl Default for SlotState {
    fn default() -> Self {
        SlotState {
            newer: NIL,
            older: NIL,
            key_hash: 0,
            weight: 0,
            queue: Queue::None,
            frequency: HitCell::default(),
        }
    }
}

impl SlotState {
    fn is_held(&self) -> bool {
        self.queue == Queue::Held
    }

    /// A held slot's links (newer, older), key hash, weight and whether
    /// it earned main; `None` if the slot is not held.
    pub(crate) fn held_parts(&self) -> Option<(SlotId, SlotId, u64, u64, bool)> {
        self.is_held().then(|| {
            (
                self.newer,
                self.older,
                self.key_hash,
                self.weight,
                self.frequency.get() > 0,
            )
        })
    }
}

/// The per-slot records, which also carry the queues' links (and the
/// window's, for held slots).
///
/// Serialized as S3-FIFO alone always wrote them, with every record not
/// resident here written as the default: held slots travel in the
/// window's own fields (`Blend`'s serialized form), and what a freed
/// record still holds means nothing, so two policies in the same state
/// write the same bytes however their slots came to be free.
/// Equality is the same way: a free record equals any other free record.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct SlotStates(Vec<SlotState>);

impl SlotStates {
    /// What a record means: a free one means nothing but "free".
    fn meaning(state: &SlotState) -> Option<&SlotState> {
        (state.queue != Queue::None).then_some(state)
    }
}

impl Serialize for SlotStates {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let default = SlotState::default();
        serializer.collect_seq(self.0.iter().map(|state| match state.queue {
            Queue::Small | Queue::Main => state,
            Queue::None | Queue::Held => &default,
        }))
    }
}

impl PartialEq for SlotStates {
    fn eq(&self, other: &SlotStates) -> bool {
        self.0.len() == other.0.len()
            && (self.0.iter().zip(&other.0))
                .all(|(a, b)| SlotStates::meaning(a) == SlotStates::meaning(b))
    }
}

impl Eq for SlotStates {}

impl SlotStates {
    /// The records, for a held slot's fields.
    pub(crate) fn get(&self, slot: SlotId) -> Option<&SlotState> {
        self.0.get(slot as usize)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl LinkStore for SlotStates {
    #[inline]
    fn newer(&self, slot: SlotId) -> SlotId {
        self.0[slot as usize].newer
    }

    #[inline]
    fn older(&self, slot: SlotId) -> SlotId {
        self.0[slot as usize].older
    }

    #[inline]
    fn set_newer(&mut self, slot: SlotId, newer: SlotId) {
        self.0[slot as usize].newer = newer;
    }

    #[inline]
    fn set_older(&mut self, slot: SlotId, older: SlotId) {
        self.0[slot as usize].older = older;
    }
}

/// S3-FIFO: three FIFO queues.
///
/// - **small** (1% of the weight here; 10% in the paper) takes newcomers. Most keys in real traces
///   are requested once; they leave through small quickly without disturbing
///   main ("quick demotion").
/// - **main** (the rest) holds keys that were hit while in small. Eviction from
///   main is CLOCK-like: a slot with a non-zero count is reinserted at the head
///   with its count decremented.
/// - **ghost** remembers the hashes (not the data) of keys evicted from small;
///   a key that comes back while still remembered goes straight to main.
///
/// Hits only bump a 2-bit counter (no list movement). Each eviction walks at
/// most `FREQUENCY_MAX` laps of main, so its work is bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Fifo {
    slots: SlotStates,
    small: List,
    main: List,
    small_weight: u64,
    total_weight: u64,
    ghost: Ghost,
}

impl S3Fifo {
    fn is_ghost(&self, key_hash: u64) -> bool {
        self.ghost.contains(key_hash)
    }

    /// Whether `key_hash` was recently evicted from small (and so belongs in
    /// main); forgets it either way, since the key is coming back.
    #[inline]
    pub(crate) fn take_ghost(&mut self, key_hash: u64) -> bool {
        let remembered = self.is_ghost(key_hash);
        if remembered {
            self.ghost.forget(key_hash);
        }
        remembered
    }

    /// Makes a non-resident slot resident, at the head of main or of small.
    /// `on_insert` is this after a ghost lookup; a policy in front of S3-FIFO
    /// (the adaptive window) hands slots on with its own verdict.
    #[inline]
    pub(crate) fn admit(&mut self, slot: SlotId, key_hash: u64, weight: u64, to_main: bool) {
        let index = slot as usize;
        if self.slots.0.len() <= index {
            crate::growth::resize_to(&mut self.slots.0, index + 1, SlotState::default());
        }
        let state = &mut self.slots.0[index];
        assert_eq!(state.queue, Queue::None, "slot {slot} inserted twice");
        state.frequency.set(0);
        state.weight = weight;
        state.key_hash = key_hash;
        self.total_weight += weight;
        if to_main {
            state.queue = Queue::Main;
            self.main.push_head(&mut self.slots, slot);
        } else {
            state.queue = Queue::Small;
            self.small_weight += weight;
            self.small.push_head(&mut self.slots, slot);
        }
    }

    /// Whether `slot` is resident here.
    #[inline]
    pub(crate) fn contains(&self, slot: SlotId) -> bool {
        self.slots
            .0
            .get(slot as usize)
            .is_some_and(|state| matches!(state.queue, Queue::Small | Queue::Main))
    }

    /// Holds a slot that is neither resident nor held for the owner (the
    /// adaptive window), with its key hash, weight and whether it earned
    /// main. The owner links it into its own list through
    /// [`S3Fifo::records_mut`].
    pub(crate) fn hold(&mut self, slot: SlotId, key_hash: u64, weight: u64, earned_main: bool) {
        let index = slot as usize;
        crate::growth::resize_to(&mut self.slots.0, index + 1, SlotState::default());
        let state = &mut self.slots.0[index];
        assert_eq!(state.queue, Queue::None, "slot {slot} held twice");
        *state = SlotState {
            newer: NIL,
            older: NIL,
            key_hash,
            weight,
            queue: Queue::Held,
            frequency: HitCell::default(),
        };
        state.frequency.set(u8::from(earned_main));
    }

    /// [`S3Fifo::hold`] with the links the owner's list had (restoring a
    /// snapshot). Refuses a slot resident here or already held.
    pub(crate) fn hold_linked(
        &mut self,
        slot: SlotId,
        (newer, older): (SlotId, SlotId),
        key_hash: u64,
        weight: u64,
        earned_main: bool,
    ) -> Result<(), String> {
        if self.contains(slot) || self.is_held(slot) {
            return Err(format!("slot {slot} is in the window and in S3-FIFO"));
        }
        self.hold(slot, key_hash, weight, earned_main);
        let state = &mut self.slots.0[slot as usize];
        state.newer = newer;
        state.older = older;
        Ok(())
    }

    /// Gives the records at least `len` entries (restoring a snapshot in
    /// which the owner's arrays were longer than S3-FIFO's).
    pub(crate) fn reserve_records(&mut self, len: usize) {
        crate::growth::resize_to(&mut self.slots.0, len, SlotState::default());
    }

    /// Whether `slot` is held for the owner.
    #[inline]
    pub(crate) fn is_held(&self, slot: SlotId) -> bool {
        self.slots.get(slot).is_some_and(SlotState::is_held)
    }

    /// Marks a held slot as having earned main.
    #[inline]
    pub(crate) fn earn_main(&self, slot: SlotId) {
        self.held(slot).frequency.set(1);
    }

    /// Whether a held slot earned main.
    pub(crate) fn earned_main(&self, slot: SlotId) -> bool {
        self.held(slot).frequency.get() > 0
    }

    /// Changes a held slot's weight.
    pub(crate) fn set_held_weight(&mut self, slot: SlotId, weight: u64) {
        self.held(slot);
        self.slots.0[slot as usize].weight = weight;
    }

    /// Stops holding a slot the owner has unlinked; it is then free.
    pub(crate) fn release(&mut self, slot: SlotId) {
        self.held(slot);
        self.slots.0[slot as usize].queue = Queue::None;
    }

    /// The records, as links for the owner's list of held slots.
    pub(crate) fn records_mut(&mut self) -> &mut SlotStates {
        &mut self.slots
    }

    pub(crate) fn records(&self) -> &SlotStates {
        &self.slots
    }

    fn held(&self, slot: SlotId) -> &SlotState {
        let state = self.state(slot);
        assert!(state.is_held(), "slot {slot} is not held");
        state
    }

    /// The S3-FIFO victim other than `protected`, forgotten; `None` if no
    /// slot but `protected` is resident (the caller decides whether taking
    /// `protected` is allowed). The ghost is sized for `ghost_percent` of
    /// the resident count (S3-FIFO itself: 100).
    pub(crate) fn evict_unprotected(
        &mut self,
        protected: Option<SlotId>,
        ghost_percent: u64,
    ) -> Option<SlotId> {
        let small_over_share = self.small_weight * 100 >= self.total_weight * SMALL_SHARE_PERCENT;
        if small_over_share || self.main.is_empty() {
            self.evict_small(protected, ghost_percent)
                .or_else(|| self.evict_main(protected))
        } else {
            self.evict_main(protected)
                .or_else(|| self.evict_small(protected, ghost_percent))
        }
    }

    /// The sum of the resident slots' weights.
    pub(crate) fn weight(&self) -> u64 {
        self.total_weight
    }

    fn ghost_len_for(&self, ghost_percent: u64) -> u64 {
        (self.small.len + self.main.len) * ghost_percent / 100
    }

    fn remember_ghost(&mut self, key_hash: u64, ghost_percent: u64) {
        self.ghost
            .remember(key_hash, self.ghost_len_for(ghost_percent));
    }

    /// Re-sizes the ghost for `ghost_percent` of the resident count, also
    /// smaller (`remember` only grows it). O(ghost length); the adaptive
    /// policy calls it only when it changes its ghost size.
    pub(crate) fn resize_ghost(&mut self, ghost_percent: u64) {
        self.ghost.resize(self.ghost_len_for(ghost_percent));
    }

    /// Slots in the ghost's table (for tests).
    #[cfg(test)]
    pub(crate) fn ghost_len(&self) -> usize {
        self.ghost.len()
    }

    /// The key hash and weight of resident or held `slot`.
    #[inline]
    pub(crate) fn key_hash_and_weight(&self, slot: SlotId) -> (u64, u64) {
        let state = self.state(slot);
        (state.key_hash, state.weight)
    }

    fn state(&self, slot: SlotId) -> &SlotState {
        &self.slots.0[slot as usize]
    }

    fn detach(&mut self, slot: SlotId) {
        let state = self.state(slot);
        match state.queue {
            Queue::Small => {
                self.small_weight -= state.weight;
                self.small.unlink(&mut self.slots, slot);
            }
            Queue::Main => self.main.unlink(&mut self.slots, slot),
            Queue::None | Queue::Held => panic!("slot {slot} is not resident in S3-FIFO"),
        }
        self.slots.0[slot as usize].queue = Queue::None;
    }

    fn forget(&mut self, slot: SlotId) {
        self.detach(slot);
        self.total_weight -= self.state(slot).weight;
    }

    /// Walks small from the tail: promotes hit slots to main, returns the
    /// first cold one (remembered in the ghost), or `None` if small has no
    /// evictable slot.
    fn evict_small(&mut self, protected: Option<SlotId>, ghost_percent: u64) -> Option<SlotId> {
        let steps_max = self.small.len + 1;
        for _ in 0..steps_max {
            let slot = self.small.tail;
            if slot == NIL || (Some(slot) == protected && self.small.len == 1) {
                return None;
            }
            if Some(slot) == protected {
                // An overwritten slot can sit anywhere in small; it was just
                // touched, so it goes to the head rather than out.
                self.small.move_to_head(&mut self.slots, slot);
            } else if self.state(slot).frequency.get() >= PROMOTE_FREQUENCY_MIN {
                self.detach(slot);
                let state = &mut self.slots.0[slot as usize];
                state.frequency.set(0);
                state.queue = Queue::Main;
                self.main.push_head(&mut self.slots, slot);
            } else {
                self.forget(slot);
                self.remember_ghost(self.state(slot).key_hash, ghost_percent);
                return Some(slot);
            }
        }
        None
    }

    /// CLOCK over main: reinserts slots with a count, returns the first without.
    fn evict_main(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        let steps_max = (u64::from(FREQUENCY_MAX) + 1) * self.main.len + 1;
        for _ in 0..steps_max {
            let slot = self.main.tail;
            if slot == NIL {
                return None;
            }
            let frequency = self.state(slot).frequency.get();
            if frequency > 0 || Some(slot) == protected {
                self.state(slot).frequency.set(frequency.saturating_sub(1));
                self.main.move_to_head(&mut self.slots, slot);
                if self.main.len == 1 && Some(slot) == protected {
                    return None;
                }
            } else {
                self.forget(slot);
                return Some(slot);
            }
        }
        None
    }
}

impl Policy for S3Fifo {
    #[inline]
    fn on_insert(&mut self, slot: SlotId, key_hash: u64, weight: u64) {
        let to_main = self.take_ghost(key_hash);
        self.admit(slot, key_hash, weight, to_main);
    }

    #[inline]
    fn on_hit(&mut self, slot: SlotId) {
        self.state(slot).frequency.bump(FREQUENCY_MAX);
    }

    #[inline]
    fn on_hit_shared(&self, slot: SlotId) -> bool {
        self.state(slot).frequency.bump(FREQUENCY_MAX);
        true
    }

    fn on_resize(&mut self, slot: SlotId, weight: u64) {
        let state = &mut self.slots.0[slot as usize];
        let old = state.weight;
        self.total_weight = self.total_weight - old + weight;
        if state.queue == Queue::Small {
            self.small_weight = self.small_weight - old + weight;
        }
        state.weight = weight;
    }

    fn on_remove(&mut self, slot: SlotId) {
        self.forget(slot);
    }

    fn evict(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        let victim = self.evict_unprotected(protected, 100);
        match (victim, protected) {
            (Some(slot), _) => Some(slot),
            // Only the protected slot is left: the contract lets us take it.
            (None, Some(slot)) if self.small.len + self.main.len == 1 => {
                self.forget(slot);
                Some(slot)
            }
            (None, _) => {
                assert_eq!(self.small.len + self.main.len, 0, "S3-FIFO found no victim");
                None
            }
        }
    }

    fn len(&self) -> u64 {
        self.small.len + self.main.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hit_wonders_leave_through_small() {
        let mut policy = S3Fifo::default();
        // Ten slots; slot 0 is hit, so it is promoted rather than evicted.
        for slot in 0..10 {
            policy.on_insert(slot, u64::from(slot), 1);
        }
        policy.on_hit(0);
        assert_eq!(policy.evict(None), Some(1));
        assert_eq!(policy.state(0).queue, Queue::Main);
        assert!(policy.is_ghost(1));
    }

    #[test]
    fn ghost_hit_goes_straight_to_main() {
        let mut policy = S3Fifo::default();
        for slot in 0..4 {
            policy.on_insert(slot, 100 + u64::from(slot), 1);
        }
        let victim = policy.evict(None).expect("a victim");
        policy.on_insert(victim, 100 + u64::from(victim), 1);
        assert_eq!(policy.state(victim).queue, Queue::Main);
    }

    #[test]
    fn protected_slot_is_kept_while_others_exist() {
        let mut policy = S3Fifo::default();
        policy.on_insert(0, 0, 1);
        policy.on_insert(1, 1, 1);
        assert_eq!(policy.evict(Some(0)), Some(1));
        assert_eq!(policy.evict(Some(0)), Some(0));
        assert_eq!(policy.evict(None), None);
    }
    #[test]
    fn bytes_that_claim_a_held_slot_are_refused() {
        // A queue is written as its variant's index; Held (3) never is.
        let held = codec::encode(&3u32);
        let held: Result<Queue, _> = codec::decode(&held, codec::STATE_LIMIT);
        assert!(held.is_err());
        let main = codec::encode(&2u32);
        let main: Result<Queue, _> = codec::decode(&main, codec::STATE_LIMIT);
        assert_eq!(main.ok(), Some(Queue::Main));
    }
}
