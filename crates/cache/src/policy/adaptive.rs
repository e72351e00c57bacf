//! Adaptive eviction: an LRU window in front of S3-FIFO, its share of the
//! cache set by hill climbing on the hit ratio.

use serde::{Deserialize, Serialize};

use super::list::{LinkStore, Links, List, NIL};
use super::s3fifo::S3Fifo;
use super::{Policy, SlotId};

/// Window shares are in these units (basis points of the resident weight).
pub(crate) const SHARE_SCALE: u32 = 10_000;
/// The first and the restarted step of the climber: 6.25% of the cache, as
/// in Caffeine's hill climber (Einziger et al., "Lightweight robust
/// size-aware cache management", 2022).
const STEP_INITIAL: i32 = 625;
/// Steps shrink by this factor (percent) each period, down to `STEP_MIN`,
/// so the window settles once the climber has found its hill.
const STEP_DECAY_PERCENT: i32 = 98;
/// The smallest step: never zero, so a window that settled can still move
/// when the workload changes slowly (a big change restarts the step).
const STEP_MIN: i32 = 25;
/// A change of the hit ratio between periods of at least this (percentage
/// points) means the workload changed: the step restarts at `STEP_INITIAL`.
const RESTART_CHANGE_PERCENT: u64 = 5;
/// A period lasts this many requests per resident entry, and at least
/// `PERIOD_REQUESTS_MIN`: long enough that the hit ratios being compared
/// are not mostly noise, short enough to follow a shifting workload.
const PERIOD_REQUESTS_PER_RESIDENT: u64 = 1;
const PERIOD_REQUESTS_MIN: u64 = 4_096;
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

/// The hill climber: after each period of requests it compares the period's
/// hit ratio with the previous one's and keeps moving the window share the
/// same way if the ratio did not fall, the other way if it did.
///
/// Everything is an integer count, so two replicas that see the same calls
/// make the same moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Climber {
    /// The window's share of the resident weight, out of [`SHARE_SCALE`].
    window_share: u32,
    /// The next move of `window_share`, signed.
    step: i32,
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
            step: STEP_INITIAL,
            period_hits: 0,
            period_requests: 0,
            previous_hits: 0,
            previous_requests: 0,
        }
    }
}

impl Climber {
    /// Counts one request; ends the period (and moves the share) when it is
    /// long enough for `resident_len` entries.
    #[inline]
    fn record(&mut self, hit: bool, resident_len: u64) {
        self.period_requests += 1;
        self.period_hits += u64::from(hit);
        let period_requests = resident_len
            .saturating_mul(PERIOD_REQUESTS_PER_RESIDENT)
            .max(PERIOD_REQUESTS_MIN);
        if self.period_requests >= period_requests {
            self.climb();
        }
    }

    fn climb(&mut self) {
        if self.previous_requests > 0 {
            // Compare hits / requests across periods without division:
            // current = h / r, previous = ph / pr, so compare h * pr with ph * r.
            let current = u128::from(self.period_hits) * u128::from(self.previous_requests);
            let previous = u128::from(self.previous_hits) * u128::from(self.period_requests);
            if current < previous {
                self.step = -self.step;
            }
            let both_requests =
                u128::from(self.period_requests) * u128::from(self.previous_requests);
            let change = current.abs_diff(previous);
            let restart = change * 100 >= both_requests * u128::from(RESTART_CHANGE_PERCENT);
            let magnitude = if restart {
                STEP_INITIAL
            } else {
                (self.step.abs() * STEP_DECAY_PERCENT / 100).max(STEP_MIN)
            };
            self.step = magnitude * self.step.signum();
        }
        let share = i64::from(self.window_share) + i64::from(self.step);
        self.window_share = share.clamp(0, i64::from(SHARE_SCALE)) as u32;
        self.previous_hits = self.period_hits;
        self.previous_requests = self.period_requests;
        self.period_hits = 0;
        self.period_requests = 0;
    }
}

/// Adaptive: an exact-LRU **window** in front of [`S3Fifo`], with the
/// window's share of the cache moved by a hill climber on the hit ratio
/// (the window of W-TinyLFU and its climber, in front of S3-FIFO's queues
/// instead of a frequency sketch).
///
/// ```text
///   insert ─► window (LRU) ──leaves, hit or ghost-remembered──► main ┐
///                        └──leaves, cold──────────────────► small ──┤ S3-FIFO
///                                                       ghost ◄─────┘
/// ```
///
/// The two ends of the share are the two policies it blends: at share 0
/// every newcomer passes straight through the window and the policy *is*
/// S3-FIFO (the frequency-minded default: quick demotion of one-hit
/// wonders, scan resistance); at share 100% nothing leaves the window
/// except as a victim and the policy *is* exact LRU (best when popularity
/// follows age). In between, keys get an LRU lifetime first and S3-FIFO's
/// filter after. Every period of requests (about one per resident entry)
/// the climber compares the hit ratio with the previous period's and keeps
/// moving the share the same way if it did not fall, else reverses; steps
/// decay so the share settles, and restart after a large change.
///
/// The climber only counts, so the policy is deterministic. Its work is
/// bounded per call: a climb is O(1); a shrinking window hands at most
/// `WINDOW_MOVES_PER_CALL_MAX` slots to S3-FIFO per call; S3-FIFO's own
/// bounds hold. Hits in the window relink (exclusive access), hits behind
/// it bump a counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adaptive {
    window_links: Links,
    window: List,
    window_slots: Vec<WindowSlot>,
    window_weight: u64,
    behind: S3Fifo,
    climber: Climber,
}

impl Adaptive {
    /// The window's share of the resident weight, out of [`SHARE_SCALE`].
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
        self.climber.record(false, self.len());
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
        self.shrink_window();
        let victim = self
            .behind
            .evict_unprotected(protected)
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
