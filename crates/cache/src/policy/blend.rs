//! An exact-LRU window in front of S3-FIFO, at a window share and ghost
//! size set from outside: the cache the adaptive policy runs, and each of
//! its miniature shadows.

use serde::{Deserialize, Serialize};

use super::list::{LinkStore, Links, List, NIL};
use super::s3fifo::{S3Fifo, SlotStates};
use super::{Policy, SlotId};

/// Window shares are in these units (basis points of the resident weight).
pub(crate) const SHARE_SCALE: u32 = 10_000;
/// Slots handed from the window to S3-FIFO per call at most, when the
/// window is over its share (after the share shrank). Bounds each call's
/// work; the window converges over the following calls.
const WINDOW_MOVES_PER_CALL_MAX: u32 = 4;

/// How many keys S3-FIFO's ghost remembers, against the resident count.
/// S3-FIFO alone uses `Same`. Which is best depends on the workload and
/// the cache size (measured on the `hit-ratio-table` traces with no
/// window: `Half` was best on the Zipf and scan traces at 1k entries,
/// `Double` on the scan trace at 10k and 100k), so the adaptive policy
/// picks it by miniature simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum GhostSize {
    Half,
    #[default]
    Same,
    Double,
}

impl GhostSize {
    pub(crate) const ALL: [GhostSize; 3] = [GhostSize::Half, GhostSize::Same, GhostSize::Double];

    pub(crate) fn percent(self) -> u64 {
        match self {
            GhostSize::Half => 50,
            GhostSize::Same => 100,
            GhostSize::Double => 200,
        }
    }
}

/// What the window keeps per slot, as serialized (its links travel as
/// [`Links`]). In memory a window slot lives in S3-FIFO's record for the
/// slot, held there (`S3Fifo::hold`): one record per slot instead of two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct WindowSlot {
    in_window: bool,
    /// Hit while in the window, or a key S3-FIFO's ghost remembered: it
    /// goes to S3-FIFO's main queue when it leaves the window.
    earned_main: bool,
    key_hash: u64,
    weight: u64,
}

/// An exact-LRU **window** in front of [`S3Fifo`].
///
/// ```text
///   insert ─► window (LRU) ──leaves, was hit or ghost-remembered──► main ┐
///                        └──leaves, cold──────────────────────► small ──┤ S3-FIFO
///                                                           ghost ◄─────┘
/// ```
///
/// At window share 0 every newcomer passes straight through the window and
/// this *is* S3-FIFO (with the ghost size chosen); at share 100% nothing
/// leaves the window except as a victim and this *is* exact LRU. In
/// between, keys get an LRU lifetime first and S3-FIFO's filter after.
///
/// Bounded: a shrinking window hands at most `WINDOW_MOVES_PER_CALL_MAX`
/// slots to S3-FIFO per call; S3-FIFO's own bounds hold; a ghost size
/// change re-sizes the ghost once (O(ghost length)).
///
/// The window's slots are held in S3-FIFO's per-slot records (their
/// links, key hash and weight), so a slot costs one 32-byte record
/// wherever it is. Serialized as the window's own arrays and S3-FIFO
/// (`BlendParts`), the layout snapshots have always had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Blend {
    window: List,
    window_weight: u64,
    behind: S3Fifo,
    /// The window's share of the resident weight, out of [`SHARE_SCALE`].
    window_share: u32,
    ghost_size: GhostSize,
}

/// [`Blend`]'s serialized form: the window's links and per-slot states as
/// arrays of their own beside S3-FIFO, whose records show held slots as
/// free. Field order is the format.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Blend")]
struct BlendParts<L, W, B> {
    window_links: L,
    window: List,
    window_slots: W,
    window_weight: u64,
    behind: B,
    window_share: u32,
    ghost_size: GhostSize,
}

/// The window's links as [`Links`] serializes them, read from the held
/// records without copying them.
struct HeldLinks<'a>(&'a SlotStates);

/// The window's per-slot states as a sequence of [`WindowSlot`]s.
struct HeldSlots<'a>(&'a SlotStates);

impl HeldLinks<'_> {
    fn side(&self, newer: bool) -> impl Iterator<Item = SlotId> + '_ {
        (0..self.0.len() as SlotId).map(move |slot| {
            match self.0.get(slot).and_then(|state| state.held_parts()) {
                Some((newer_slot, older_slot, ..)) => {
                    if newer {
                        newer_slot
                    } else {
                        older_slot
                    }
                }
                None => NIL,
            }
        })
    }
}

impl Serialize for HeldLinks<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Side<'a>(&'a HeldLinks<'a>, bool);
        impl Serialize for Side<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.side(self.1))
            }
        }
        let mut links = serializer.serialize_struct("Links", 2)?;
        links.serialize_field("newer", &Side(self, true))?;
        links.serialize_field("older", &Side(self, false))?;
        links.end()
    }
}

impl Serialize for HeldSlots<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((0..self.0.len() as SlotId).map(|slot| {
            match self.0.get(slot).and_then(|state| state.held_parts()) {
                Some((_, _, key_hash, weight, earned_main)) => WindowSlot {
                    in_window: true,
                    earned_main,
                    key_hash,
                    weight,
                },
                None => WindowSlot::default(),
            }
        }))
    }
}

impl Serialize for Blend {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let records = self.behind.records();
        BlendParts {
            window_links: HeldLinks(records),
            window: self.window.clone(),
            window_slots: HeldSlots(records),
            window_weight: self.window_weight,
            behind: &self.behind,
            window_share: self.window_share,
            ghost_size: self.ghost_size,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Blend {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parts = BlendParts::<Links, Vec<WindowSlot>, S3Fifo>::deserialize(deserializer)?;
        Blend::from_parts(parts).map_err(serde::de::Error::custom)
    }
}

/// Walks the window's list from its head: every slot on it is held, each
/// link back matches, and the walk covers `window.len` slots and ends at
/// the tail. With the count of held slots equal to the length (checked by
/// the caller), no held slot is off the list.
fn check_window_list(window: &List, records: &SlotStates) -> Result<(), String> {
    let (mut previous, mut slot, mut walked) = (NIL, window.head, 0u64);
    while slot != NIL {
        if walked == window.len {
            return Err(format!("the window's list is longer than {}", window.len));
        }
        let Some((newer, older, ..)) = records.get(slot).and_then(|state| state.held_parts())
        else {
            return Err(format!(
                "the window's list names slot {slot}, not in the window"
            ));
        };
        if newer != previous {
            return Err(format!(
                "window slot {slot}'s newer link is {newer}, not {previous}"
            ));
        }
        (previous, slot, walked) = (slot, older, walked + 1);
    }
    if walked != window.len || previous != window.tail {
        return Err(format!(
            "the window's list has {walked} slots ending at {previous}, not {} ending at {}",
            window.len, window.tail
        ));
    }
    Ok(())
}

impl Blend {
    /// Moves the window's serialized slots into S3-FIFO's records.
    fn from_parts(parts: BlendParts<Links, Vec<WindowSlot>, S3Fifo>) -> Result<Blend, String> {
        let BlendParts {
            window_links,
            window,
            window_slots,
            window_weight,
            mut behind,
            window_share,
            ghost_size,
        } = parts;
        if window_share > SHARE_SCALE {
            return Err(format!("window share {window_share} over {SHARE_SCALE}"));
        }
        let (mut held, mut held_weight) = (0u64, 0u64);
        for (slot, state) in window_slots.iter().enumerate() {
            if !state.in_window {
                continue;
            }
            let slot = SlotId::try_from(slot).map_err(|_| "window slot out of range".to_owned())?;
            let links = window_links
                .get(slot)
                .ok_or_else(|| format!("window slot {slot} has no links"))?;
            behind.hold_linked(slot, links, state.key_hash, state.weight, state.earned_main)?;
            held += 1;
            held_weight = held_weight.saturating_add(state.weight);
        }
        if held != window.len || held_weight != window_weight {
            return Err(format!(
                "window holds {held} slots of weight {held_weight}, its list says {} of {window_weight}",
                window.len
            ));
        }
        check_window_list(&window, behind.records())?;
        // Every slot the window ever took has a record (as when the
        // window's slots are held as they come).
        behind.reserve_records(window_slots.len());
        Ok(Blend {
            window,
            window_weight,
            behind,
            window_share,
            ghost_size,
        })
    }

    pub(crate) fn window_share(&self) -> u32 {
        self.window_share
    }

    pub(crate) fn ghost_size(&self) -> GhostSize {
        self.ghost_size
    }

    /// Sets the window's share; the window reaches it over the next calls.
    pub(crate) fn set_window_share(&mut self, window_share: u32) {
        assert!(
            window_share <= SHARE_SCALE,
            "window share {window_share} over {SHARE_SCALE}"
        );
        self.window_share = window_share;
    }

    pub(crate) fn set_ghost_size(&mut self, ghost_size: GhostSize) {
        if ghost_size != self.ghost_size {
            self.ghost_size = ghost_size;
            self.behind.resize_ghost(ghost_size.percent());
        }
    }

    /// The sum of the resident slots' weights.
    pub(crate) fn weight(&self) -> u64 {
        self.window_weight + self.behind.weight()
    }

    /// The key hash and weight of resident `slot`.
    #[inline]
    pub(crate) fn key_hash_and_weight(&self, slot: SlotId) -> (u64, u64) {
        self.behind.key_hash_and_weight(slot)
    }

    #[inline]
    fn in_window(&self, slot: SlotId) -> bool {
        self.behind.is_held(slot)
    }

    fn window_target(&self) -> u64 {
        let total = u128::from(self.weight());
        (total * u128::from(self.window_share) / u128::from(SHARE_SCALE)) as u64
    }

    /// Unlinks a window slot and frees its record. Returns its key hash,
    /// weight and whether it earned main.
    fn unlink_from_window(&mut self, slot: SlotId) -> (u64, u64, bool) {
        let (key_hash, weight) = self.behind.key_hash_and_weight(slot);
        let earned_main = self.behind.earned_main(slot);
        self.window.unlink(self.behind.records_mut(), slot);
        self.behind.release(slot);
        self.window_weight -= weight;
        (key_hash, weight, earned_main)
    }

    /// Hands window tails to S3-FIFO while the window is over its share,
    /// at most `WINDOW_MOVES_PER_CALL_MAX` of them.
    fn shrink_window(&mut self) {
        for _ in 0..WINDOW_MOVES_PER_CALL_MAX {
            if self.window.is_empty() || self.window_weight <= self.window_target() {
                return;
            }
            let slot = self.window.tail;
            let (key_hash, weight, earned_main) = self.unlink_from_window(slot);
            self.behind.admit(slot, key_hash, weight, earned_main);
        }
    }

    /// The window's least recent slot other than `protected`, forgotten.
    fn evict_window(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        let mut victim = self.window.tail;
        if victim != NIL && Some(victim) == protected {
            victim = self.behind.records().newer(victim);
        }
        if victim == NIL {
            return None;
        }
        self.unlink_from_window(victim);
        Some(victim)
    }
}

impl Policy for Blend {
    fn on_insert(&mut self, slot: SlotId, key_hash: u64, weight: u64) {
        assert!(
            !self.in_window(slot) && !self.behind.contains(slot),
            "slot {slot} inserted twice"
        );
        let earned_main = self.behind.take_ghost(key_hash);
        self.behind.hold(slot, key_hash, weight, earned_main);
        self.window.push_head(self.behind.records_mut(), slot);
        self.window_weight += weight;
        self.shrink_window();
    }

    #[inline]
    fn on_hit(&mut self, slot: SlotId) {
        if self.in_window(slot) {
            self.behind.earn_main(slot);
            self.window.move_to_head(self.behind.records_mut(), slot);
        } else {
            self.behind.on_hit(slot);
        }
    }

    fn on_resize(&mut self, slot: SlotId, weight: u64) {
        if self.in_window(slot) {
            let (_, old) = self.behind.key_hash_and_weight(slot);
            self.window_weight = self.window_weight - old + weight;
            self.behind.set_held_weight(slot, weight);
        } else {
            self.behind.on_resize(slot, weight);
        }
    }

    fn on_remove(&mut self, slot: SlotId) {
        if self.in_window(slot) {
            self.unlink_from_window(slot);
        } else {
            self.behind.on_remove(slot);
        }
    }

    fn evict(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        self.shrink_window();
        let victim = self
            .behind
            .evict_unprotected(protected, self.ghost_size.percent())
            .or_else(|| self.evict_window(protected));
        match (victim, protected) {
            (Some(slot), _) => Some(slot),
            // Only the protected slot is left: the contract lets us take it.
            (None, Some(slot)) if self.len() == 1 => {
                self.on_remove(slot);
                Some(slot)
            }
            (None, _) => {
                assert_eq!(self.len(), 0, "blend policy found no victim");
                None
            }
        }
    }

    fn len(&self) -> u64 {
        self.window.len + self.behind.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Lru, replay};
    use crate::workload::zipf_trace;

    #[test]
    fn with_no_window_and_the_same_ghost_it_is_s3fifo() {
        let trace = zipf_trace(5_000, 0.9, 50_000, 11);
        let mut blend = Blend::default();
        assert_eq!(
            (blend.window_share(), blend.ghost_size()),
            (0, GhostSize::Same)
        );
        let mut s3fifo = S3Fifo::default();
        // Compared with `==` so a failure does not print every victim.
        assert!(
            replay(&mut blend, 300, &trace) == replay(&mut s3fifo, 300, &trace),
            "share 0 with the same ghost should evict exactly as S3-FIFO"
        );
    }

    #[test]
    fn with_the_whole_cache_as_window_it_is_lru() {
        let trace = zipf_trace(5_000, 0.9, 50_000, 12);
        let mut blend = Blend::default();
        blend.set_window_share(SHARE_SCALE);
        let mut lru = Lru::default();
        assert!(
            replay(&mut blend, 300, &trace) == replay(&mut lru, 300, &trace),
            "share 100% should evict exactly as LRU"
        );
    }

    #[test]
    fn ghost_size_changes_shrink_and_grow_the_ghost() {
        let trace = zipf_trace(5_000, 0.9, 50_000, 13);
        let mut blend = Blend::default();
        let _ = replay(&mut blend, 1_000, &trace);
        let same = blend.behind.ghost_len();
        blend.set_ghost_size(GhostSize::Half);
        assert_eq!(blend.behind.ghost_len(), same / 2, "half the ghost");
        blend.set_ghost_size(GhostSize::Double);
        assert_eq!(blend.behind.ghost_len(), same * 2, "twice the ghost");
    }
    fn window_slot(key_hash: u64) -> WindowSlot {
        WindowSlot {
            in_window: true,
            earned_main: false,
            key_hash,
            weight: 1,
        }
    }

    /// Serialized parts of a window holding slots 0 and 1 (0 the newer),
    /// with S3-FIFO holding slot 2.
    fn parts() -> BlendParts<Links, Vec<WindowSlot>, S3Fifo> {
        let mut links = Links::default();
        links.ensure(2);
        links.set_older(0, 1);
        links.set_newer(1, 0);
        let mut behind = S3Fifo::default();
        behind.on_insert(2, 30, 1);
        BlendParts {
            window_links: links,
            window: List {
                head: 0,
                tail: 1,
                len: 2,
            },
            window_slots: vec![window_slot(10), window_slot(20)],
            window_weight: 2,
            behind,
            window_share: SHARE_SCALE / 2,
            ghost_size: GhostSize::Same,
        }
    }

    #[test]
    fn a_consistent_window_is_restored_and_round_trips() {
        let blend = Blend::from_parts(parts()).expect("consistent");
        assert_eq!(blend.key_hash_and_weight(1), (20, 1));
        let bytes = codec::encode(&blend);
        let again: Blend = codec::decode(&bytes, codec::STATE_LIMIT).expect("decodes");
        assert!(again == blend);
    }

    #[test]
    fn an_inconsistent_window_is_refused_not_restored() {
        // A back link that does not match.
        let mut bad = parts();
        bad.window_links.set_newer(1, 2);
        assert!(Blend::from_parts(bad).is_err());
        // The list runs on into a slot S3-FIFO holds.
        let mut bad = parts();
        bad.window_links.set_older(1, 2);
        bad.window.tail = 2;
        assert!(Blend::from_parts(bad).is_err());
        // A slot both in the window and in S3-FIFO.
        let mut bad = parts();
        bad.window_slots.push(window_slot(30));
        bad.window.len = 3;
        bad.window_weight = 3;
        assert!(Blend::from_parts(bad).is_err());
        // A length or weight the slots do not add up to.
        let mut bad = parts();
        bad.window_weight = 5;
        assert!(Blend::from_parts(bad).is_err());
    }
}
