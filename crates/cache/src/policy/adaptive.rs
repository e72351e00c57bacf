//! Adaptive eviction: an LRU window in front of S3-FIFO, its share of the
//! cache set by hill climbing on the hit ratio.

use serde::{Deserialize, Serialize};

use super::ghost::Ghost;
use super::list::{LinkStore, Links, List, NIL};
use super::s3fifo::S3Fifo;
use super::{Policy, SlotId};

/// Window shares are in these units (basis points of the resident weight).
pub(crate) const SHARE_SCALE: u32 = 10_000;
/// The first move in a direction: 6.25% of the cache, the step of
/// Caffeine's hill climber (Einziger et al., "Adaptive software cache
/// management", Middleware 2018).
/// Each further move the same way after a better period doubles, up to
/// `STEP_MAX`, so a workload that wants a big window gets it in a few
/// periods (a cap of 2500 left the shifting trace at 1k entries at 0.1185,
/// just under 99% of LRU's 0.1198; 5000 gave 0.1188).
const STEP_BASE: u32 = 625;
const STEP_MAX: u32 = 5_000;
/// A period is better or worse than the one before only if their hit
/// ratios differ by at least two standard errors (this is z squared).
/// Consecutive periods of a steady workload differ by noise alone; moving
/// on noise let the share wander off 0 on Zipf traces.
const SIGNIFICANCE_Z_SQUARED: u128 = 4;
/// While the share is 0 (S3-FIFO), a window is tried after this many
/// periods. Tried every 4 periods, the trials cost Zipf 0.99 at 1k entries
/// 0.0010 of hit ratio against S3-FIFO; every 16, 0.0004, and the shifting
/// trace still found its window (measured with the `hit-ratio-table`
/// traces).
const EXPLORE_EVERY_PERIODS: u32 = 16;
/// A period lasts one counted request per `PERIOD_RESIDENTS_PER_REQUEST`
/// resident entries, and at least `PERIOD_REQUESTS_MIN`: at 1k entries a
/// period of 4k requests let noise move the share (Zipf 0.99: 0.4577
/// against S3-FIFO's 0.4910); 64k followed the scan trace's phases worse
/// than 32k. A quarter of the residents (rather than all of them) lets a
/// 100k-entry cache climb in time on the shifting trace (0.7019 -> 0.7056).
const PERIOD_RESIDENTS_PER_REQUEST: u64 = 4;
const PERIOD_REQUESTS_MIN: u64 = 32_768;
/// The ghost behind the window remembers about half as many keys as are
/// resident (S3-FIFO alone: as many). A stricter ghost admits fewer keys
/// to main: on the Zipf traces at 1k and 10k entries this gained 0.001 to
/// 0.002 (Zipf 0.99 at 1k: 0.4906 -> 0.4929), and cost the scan trace at
/// 10k 0.002.
const GHOST_RESIDENTS_DIVISOR: u64 = 2;
/// Misses on keys not seen among roughly the last
/// `SEEN_SLOTS_PER_RESIDENT` x resident insertions are cold: no share
/// would have hit them, so they do not count in the climber's hit ratio.
/// Without this a period's hit ratio followed how much of it was a scan,
/// and the climber moved on that (scan trace at 1k entries: 0.2938 ->
/// 0.2953).
const SEEN_SLOTS_PER_RESIDENT: u64 = 4;
/// Slots handed from the window to S3-FIFO per call at most, when the
/// window is over its share (after the share shrank). Bounds each call's
/// work; the window converges over the following calls.
const WINDOW_MOVES_PER_CALL_MAX: u32 = 4;

/// What the window keeps per slot (its links live in [`Links`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct WindowSlot {
    in_window: bool,
    /// Hit while in the window, or a key S3-FIFO's ghost remembered: it
    /// goes to S3-FIFO's main queue when it leaves the window.
    earned_main: bool,
    key_hash: u64,
    weight: u64,
}

/// The hill climber: moves the window share between periods of requests
/// by comparing each period's hit ratio with the previous one's.
///
/// - significantly better: keep going the same way, doubling the step;
/// - significantly worse: turn round, base step;
/// - no significant difference: step towards share 0 (S3-FIFO);
/// - at share 0, try a window every `EXPLORE_EVERY_PERIODS` periods.
///
/// Everything is an integer count, so two replicas that see the same calls
/// make the same moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Climber {
    /// The window's share of the resident weight, out of [`SHARE_SCALE`].
    window_share: u32,
    /// +1: growing the window; -1: shrinking it.
    direction: i8,
    /// The size of the next move: doubles while moves keep going the same
    /// way, back to the base step on a reversal.
    step: u32,
    /// Periods spent at share 0 since the last exploration.
    idle_periods: u32,
    /// Nothing counts until the first eviction: while the cache fills, its
    /// hit ratio rises whatever the share is.
    warm: bool,
    period_hits: u64,
    period_requests: u64,
    /// The last finished period (requests 0: none yet).
    previous_hits: u64,
    previous_requests: u64,
}

impl Default for Climber {
    fn default() -> Self {
        Climber {
            window_share: 0,
            direction: -1,
            step: STEP_BASE,
            idle_periods: 0,
            warm: false,
            period_hits: 0,
            period_requests: 0,
            previous_hits: 0,
            previous_requests: 0,
        }
    }
}

/// How one period compares with the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Better,
    Worse,
    Same,
}

impl Climber {
    /// Counts one request; ends the period (and moves the share) when it is
    /// long enough for `resident_len` entries.
    #[inline]
    fn record(&mut self, hit: bool, resident_len: u64) {
        if !self.warm {
            return;
        }
        self.period_requests += 1;
        self.period_hits += u64::from(hit);
        let period_requests =
            (resident_len / PERIOD_RESIDENTS_PER_REQUEST).max(PERIOD_REQUESTS_MIN);
        if self.period_requests >= period_requests {
            self.climb();
        }
    }

    /// Whether the current period's hit ratio differs from the previous
    /// one's by more than `z` standard errors (a two-proportion z-test in
    /// integers: squared, and multiplied through by the denominators).
    fn verdict(&self) -> Verdict {
        let (hits, requests) = (
            u128::from(self.period_hits),
            u128::from(self.period_requests),
        );
        let (previous_hits, previous_requests) = (
            u128::from(self.previous_hits),
            u128::from(self.previous_requests),
        );
        let current = hits * previous_requests;
        let previous = previous_hits * requests;
        let difference = current.abs_diff(previous);
        let hits_both = hits + previous_hits;
        let requests_both = requests + previous_requests;
        // (h1 r2 - h2 r1)^2 R >= z^2 H (R - H) r1 r2, with H, R the sums.
        // Saturating: only periods of over ~10^8 requests could overflow,
        // and saturation is as deterministic as the rest.
        let left = difference
            .saturating_mul(difference)
            .saturating_mul(requests_both);
        let right = SIGNIFICANCE_Z_SQUARED
            .saturating_mul(hits_both)
            .saturating_mul(requests_both - hits_both)
            .saturating_mul(requests)
            .saturating_mul(previous_requests);
        let significant = left >= right;
        match (significant, current > previous) {
            (false, _) => Verdict::Same,
            (true, true) => Verdict::Better,
            (true, false) => Verdict::Worse,
        }
    }

    fn climb(&mut self) {
        if self.previous_requests > 0 {
            let verdict = self.verdict();
            match verdict {
                Verdict::Worse => {
                    self.direction = -self.direction;
                    self.step = STEP_BASE;
                }
                // No evidence either way: drift towards S3-FIFO, which is
                // the better policy on every steady trace we measured; a
                // workload that needs the window shows it by getting worse.
                Verdict::Same => {
                    self.direction = -1;
                    self.step = STEP_BASE;
                }
                Verdict::Better => self.step = (self.step * 2).min(STEP_MAX),
            }
            if self.window_share == 0 && self.direction < 0 {
                self.idle_periods += 1;
                if self.idle_periods >= EXPLORE_EVERY_PERIODS {
                    self.idle_periods = 0;
                    self.direction = 1;
                    self.step = STEP_BASE;
                }
            }
            if self.window_share > 0 || self.direction > 0 {
                let share =
                    i64::from(self.window_share) + i64::from(self.direction) * i64::from(self.step);
                self.window_share = share.clamp(0, i64::from(SHARE_SCALE)) as u32;
            }
        }
        self.previous_hits = self.period_hits;
        self.previous_requests = self.period_requests;
        self.period_hits = 0;
        self.period_requests = 0;
    }
}

/// Adaptive: an exact-LRU **window** in front of [`S3Fifo`], with the
/// window's share of the cache moved by a hill climber on the hit ratio
/// (W-TinyLFU's adaptive window, in front of S3-FIFO's queues instead of a
/// frequency sketch).
///
/// ```text
///   insert ─► window (LRU) ──leaves, was hit or ghost-remembered──► main ┐
///                        └──leaves, cold──────────────────────► small ──┤ S3-FIFO
///                                                           ghost ◄─────┘
/// ```
///
/// The two ends of the share are the two policies it blends: at share 0
/// every newcomer passes straight through the window and the policy *is*
/// S3-FIFO, with a ghost half the usual size (`GHOST_RESIDENTS_DIVISOR`):
/// quick demotion of one-hit wonders, scan resistance, best on Zipf
/// traces; at share 100% nothing leaves the window except as a victim
/// and the policy *is* exact LRU (best when popularity follows age). In
/// between, keys get an LRU lifetime first and S3-FIFO's filter after. The
/// share starts at 0 and moves only when a period of requests (about one
/// per resident entry) has a significantly different hit ratio from the
/// one before; see `Climber`.
///
/// Deterministic: the climber only counts calls. Bounded: a climb is O(1);
/// a shrinking window hands at most `WINDOW_MOVES_PER_CALL_MAX` slots to
/// S3-FIFO per call; S3-FIFO's own bounds hold. Every field is serialized
/// (nothing is derived). Hits in the window relink (exclusive access),
/// hits behind it bump a counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adaptive {
    window_links: Links,
    window: List,
    window_slots: Vec<WindowSlot>,
    window_weight: u64,
    behind: S3Fifo,
    climber: Climber,
    /// Fingerprints of recently inserted keys, to tell cold misses (see
    /// `SEEN_SLOTS_PER_RESIDENT`). `u32`: a false "seen" only counts a cold
    /// miss, so half the memory of the S3-FIFO ghost's `u64` is enough.
    seen: Ghost<u32>,
}

impl Adaptive {
    /// The window's share of the resident weight, in basis points (out of
    /// 10 000).
    pub fn window_share(&self) -> u32 {
        self.climber.window_share
    }

    fn window_slot(&self, slot: SlotId) -> &WindowSlot {
        &self.window_slots[slot as usize]
    }

    fn in_window(&self, slot: SlotId) -> bool {
        self.window_slots
            .get(slot as usize)
            .is_some_and(|state| state.in_window)
    }

    fn window_target(&self) -> u64 {
        let total = u128::from(self.window_weight + self.behind.weight());
        (total * u128::from(self.climber.window_share) / u128::from(SHARE_SCALE)) as u64
    }

    fn unlink_from_window(&mut self, slot: SlotId) -> WindowSlot {
        let state = *self.window_slot(slot);
        assert!(state.in_window, "slot {slot} is not in the window");
        self.window.unlink(&mut self.window_links, slot);
        self.window_weight -= state.weight;
        self.window_slots[slot as usize].in_window = false;
        state
    }

    /// Hands window tails to S3-FIFO while the window is over its share,
    /// at most `WINDOW_MOVES_PER_CALL_MAX` of them.
    fn shrink_window(&mut self) {
        for _ in 0..WINDOW_MOVES_PER_CALL_MAX {
            if self.window.is_empty() || self.window_weight <= self.window_target() {
                return;
            }
            let slot = self.window.tail;
            let state = self.unlink_from_window(slot);
            self.behind
                .admit(slot, state.key_hash, state.weight, state.earned_main);
        }
    }

    /// The window's least recent slot other than `protected`, forgotten.
    fn evict_window(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
        let mut victim = self.window.tail;
        if victim != NIL && Some(victim) == protected {
            victim = self.window_links.newer(victim);
        }
        if victim == NIL {
            return None;
        }
        self.unlink_from_window(victim);
        Some(victim)
    }
}

impl Policy for Adaptive {
    fn on_insert(&mut self, slot: SlotId, key_hash: u64, weight: u64) {
        if self.seen.contains(key_hash) {
            self.climber.record(false, self.len());
        }
        self.seen
            .remember(key_hash, self.len().saturating_mul(SEEN_SLOTS_PER_RESIDENT));
        let index = slot as usize;
        if self.window_slots.len() <= index {
            self.window_slots.resize(index + 1, WindowSlot::default());
        }
        assert!(
            !self.in_window(slot) && !self.behind.contains(slot),
            "slot {slot} inserted twice"
        );
        let earned_main = self.behind.take_ghost(key_hash);
        self.window_slots[index] = WindowSlot {
            in_window: true,
            earned_main,
            key_hash,
            weight,
        };
        self.window_links.ensure(slot);
        self.window.push_head(&mut self.window_links, slot);
        self.window_weight += weight;
        self.shrink_window();
    }

    fn on_hit(&mut self, slot: SlotId) {
        self.climber.record(true, self.len());
        if self.in_window(slot) {
            self.window_slots[slot as usize].earned_main = true;
            self.window.move_to_head(&mut self.window_links, slot);
        } else {
            self.behind.on_hit(slot);
        }
    }

    fn on_resize(&mut self, slot: SlotId, weight: u64) {
        if self.in_window(slot) {
            let state = &mut self.window_slots[slot as usize];
            self.window_weight = self.window_weight - state.weight + weight;
            state.weight = weight;
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
        self.climber.warm = true;
        self.shrink_window();
        let victim = self
            .behind
            .evict_unprotected(protected, GHOST_RESIDENTS_DIVISOR)
            .or_else(|| self.evict_window(protected));
        match (victim, protected) {
            (Some(slot), _) => Some(slot),
            // Only the protected slot is left: the contract lets us take it.
            (None, Some(slot)) if self.len() == 1 => {
                if self.in_window(slot) {
                    self.unlink_from_window(slot);
                } else {
                    self.behind.on_remove(slot);
                }
                Some(slot)
            }
            (None, _) => {
                assert_eq!(self.len(), 0, "adaptive policy found no victim");
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::hash::hash_of;
    use crate::policy::{Lru, S3Fifo};
    use crate::workload::{shifting_trace, zipf_trace, zipf_with_scans_trace};

    /// A cache of `capacity` unit-weight entries over `policy`, replaying
    /// `trace` (a miss inserts). Returns the hits and every victim, in order.
    fn replay<P: Policy>(policy: &mut P, capacity: usize, trace: &[u64]) -> (u64, Vec<SlotId>) {
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
            policy.on_insert(slot, hash_of(&key), 1);
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

    /// S3-FIFO with the ghost sized as behind the window.
    #[derive(Default)]
    struct S3FifoHalfGhost(S3Fifo);

    impl Policy for S3FifoHalfGhost {
        fn on_insert(&mut self, slot: SlotId, key_hash: u64, weight: u64) {
            self.0.on_insert(slot, key_hash, weight);
        }
        fn on_hit(&mut self, slot: SlotId) {
            self.0.on_hit(slot);
        }
        fn on_resize(&mut self, slot: SlotId, weight: u64) {
            self.0.on_resize(slot, weight);
        }
        fn on_remove(&mut self, slot: SlotId) {
            self.0.on_remove(slot);
        }
        fn evict(&mut self, protected: Option<SlotId>) -> Option<SlotId> {
            self.0.evict_unprotected(protected, GHOST_RESIDENTS_DIVISOR)
        }
        fn len(&self) -> u64 {
            self.0.len()
        }
    }

    #[test]
    fn with_no_window_it_is_s3fifo() {
        // Shorter than one climber period: the share stays 0.
        let trace = zipf_trace(5_000, 0.9, 20_000, 11);
        assert!(trace.len() < PERIOD_REQUESTS_MIN as usize);
        let mut adaptive = Adaptive::default();
        let mut s3fifo = S3FifoHalfGhost::default();
        // Compared with `==` so a failure does not print every victim.
        assert!(
            replay(&mut adaptive, 300, &trace) == replay(&mut s3fifo, 300, &trace),
            "share 0 should evict exactly as S3-FIFO (with the smaller ghost)"
        );
        assert_eq!(adaptive.window_share(), 0);
    }

    #[test]
    fn with_the_whole_cache_as_window_it_is_lru() {
        let trace = zipf_trace(5_000, 0.9, 20_000, 12);
        // Shorter than one climber period: the share stays at 100%.
        assert!(trace.len() < PERIOD_REQUESTS_MIN as usize);
        let mut adaptive = Adaptive::default();
        adaptive.climber.window_share = SHARE_SCALE;
        let mut lru = Lru::default();
        assert!(
            replay(&mut adaptive, 300, &trace) == replay(&mut lru, 300, &trace),
            "share 100% should evict exactly as LRU"
        );
        assert_eq!(adaptive.window_share(), SHARE_SCALE);
    }

    #[test]
    fn window_grows_when_the_working_set_shifts() {
        let trace = shifting_trace(10_000, 0.8, 600_000, 4, 5);
        let mut adaptive = Adaptive::default();
        let (hits, _) = replay(&mut adaptive, 1_000, &trace);
        let share = adaptive.window_share();
        assert!(
            share >= SHARE_SCALE / 4,
            "window share {share} of {SHARE_SCALE} after a shifting trace; expected at least a quarter"
        );
        let mut s3fifo = S3Fifo::default();
        let (s3fifo_hits, _) = replay(&mut s3fifo, 1_000, &trace);
        assert!(
            hits > s3fifo_hits,
            "adaptive {hits} hits, S3-FIFO {s3fifo_hits}: adapting should pay"
        );
    }

    #[test]
    fn window_shrinks_on_a_frequency_trace_with_scans() {
        // Start as LRU: the climber must find its way back towards S3-FIFO.
        let trace = zipf_with_scans_trace(20_000, 0.99, 1_200_000, 10_000, 2_000, 6);
        let mut adaptive = Adaptive::default();
        adaptive.climber.window_share = SHARE_SCALE;
        let _ = replay(&mut adaptive, 1_000, &trace);
        let share = adaptive.window_share();
        assert!(
            share <= SHARE_SCALE / 4,
            "window share {share} of {SHARE_SCALE} after Zipf with scans, starting from all window"
        );
    }

    #[test]
    fn same_calls_give_same_state_also_after_a_round_trip() {
        let trace = shifting_trace(5_000, 0.8, 300_000, 2, 8);
        let (first_half, second_half) = trace.split_at(150_000);
        // Half window, so the round trip carries a window, S3-FIFO's queues
        // and its ghost, and the climber's counts.
        let mut first = Adaptive::default();
        first.climber.window_share = SHARE_SCALE / 2;
        let mut second = first.clone();
        let outcome_first = replay(&mut first, 500, first_half);
        assert!(outcome_first == replay(&mut second, 500, first_half));
        assert!(first == second, "same calls, different state");
        assert!(!first.window.is_empty() && first.behind.len() > 0);
        assert!(first.climber.previous_requests > 0, "the climber ran");
        let bytes = codec::encode(&first);
        let mut restored: Adaptive = codec::decode(&bytes, codec::STATE_LIMIT).expect("decodes");
        restored.rebuild_derived();
        assert!(restored == first, "state differs after the round trip");
        // Continue both on the same requests: same victims, same state.
        // (Directly on the policies, with fresh slots above the 501 the
        // replay used: each new key evicts one old entry.)
        let offset: SlotId = 1_000;
        for (index, &key) in second_half.iter().enumerate().take(20_000) {
            let slot = offset + index as SlotId;
            first.on_insert(slot, hash_of(&key), 1);
            restored.on_insert(slot, hash_of(&key), 1);
            assert_eq!(first.evict(Some(slot)), restored.evict(Some(slot)));
        }
        assert!(restored == first, "state differs after the round trip");
    }
}
