//! Hot-key detection in bounded memory.
//!
//! ```text
//!   record(key, now_ms) ──► count-min sketch ──estimate──► top-k list
//!                              │                              │
//!                   every window_ms: halve both (decay)   top(n) ──► hottest keys
//! ```
//!
//! The sketch counts every key approximately in fixed memory; the top-k list
//! keeps the keys whose estimates are largest. Every `window_ms` of the
//! caller's time, all counts are halved, so a key that stopped being hot
//! fades out within a few windows. Time is passed in; nothing reads a clock.
//!
//! A busy caller can sample: past `exact_per_window` accesses in a window,
//! one access in `sample_one_in` is counted, weighted by `sample_one_in`,
//! so estimates stay unbiased while the sketch and the list see a fraction
//! of the stream. Which accesses are counted is decided by a fixed
//! pseudo-random sequence, not by position, so a client cycling through a
//! few keys cannot fall in step with it; the same stream gives the same
//! answer every run.

mod count_min;
mod top_k;

use std::borrow::Borrow;
use std::hash::Hash;

pub use count_min::CountMinSketch;
pub use top_k::TopK;

use crate::hash::{fmix64, hash_of};

/// Sizing of a [`HotKeyDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotKeyConfig {
    /// Counters per sketch row (power of two).
    pub sketch_width: usize,
    pub sketch_depth: usize,
    /// Keys tracked by the top-k list (more than will be asked for, so that
    /// keys near the cut-off are not lost to estimate noise).
    pub tracked_keys: usize,
    /// Counts halve once per window.
    pub window_ms: u64,
    /// Accesses counted one by one in each window; past them, sampling.
    /// `u64::MAX`: every access is counted.
    pub exact_per_window: u64,
    /// Past `exact_per_window`, one access in this many is counted, with
    /// this weight (1: every access).
    pub sample_one_in: u64,
}

impl Default for HotKeyConfig {
    fn default() -> Self {
        HotKeyConfig {
            sketch_width: 4_096,
            sketch_depth: 4,
            tracked_keys: 64,
            window_ms: 10_000,
            exact_per_window: u64::MAX,
            sample_one_in: 1,
        }
    }
}

/// Finds the most frequent keys of a stream. See the module docs.
#[derive(Debug, Clone)]
pub struct HotKeyDetector<K> {
    config: HotKeyConfig,
    sketch: CountMinSketch,
    top: TopK<K>,
    window_start_ms: u64,
    /// Accesses offered in the current window (counted or not).
    window_accesses: u64,
    /// The sampling sequence's state (a Weyl sequence, mixed).
    sampler: u64,
}

/// The step of the sampling sequence (2^64 over the golden ratio, odd).
const SAMPLER_STEP: u64 = 0x9e37_79b9_7f4a_7c15;

/// Windows past which further halving changes nothing (u32 counters).
const DECAY_STEPS_MAX: u64 = 32;

impl<K: Hash + Ord + Clone> HotKeyDetector<K> {
    /// # Panics
    /// On a zero `window_ms`, `tracked_keys` or `sample_one_in`, or a bad
    /// sketch shape.
    pub fn new(config: HotKeyConfig, now_ms: u64) -> Self {
        assert!(config.window_ms > 0, "window_ms must be positive");
        assert!(config.sample_one_in > 0, "sample_one_in must be positive");
        HotKeyDetector {
            config,
            sketch: CountMinSketch::new(config.sketch_width, config.sketch_depth),
            top: TopK::new(config.tracked_keys),
            window_start_ms: now_ms,
            window_accesses: 0,
            sampler: 0,
        }
    }

    /// Counts one access to `key` at `now_ms`. A borrowed form of the key
    /// (`&[u8]` for `Vec<u8>`) is enough: `Borrow` promises it hashes and
    /// compares alike, and the key is copied only if it joins the top list.
    pub fn record<Q>(&mut self, key: &Q, now_ms: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.decay_to(now_ms);
        let Some(weight) = self.weight_of_next_access() else {
            return;
        };
        let key_hash = hash_of(key);
        let estimate = self.sketch.increment_by(key_hash, weight);
        self.top.offer(key, key_hash, estimate);
    }

    /// The weight the next access counts with: 1 within the window's exact
    /// budget; past it `sample_one_in` for one access in `sample_one_in`
    /// (by the sampling sequence), None for the others.
    fn weight_of_next_access(&mut self) -> Option<u64> {
        self.window_accesses = self.window_accesses.saturating_add(1);
        if self.window_accesses <= self.config.exact_per_window || self.config.sample_one_in == 1 {
            return Some(1);
        }
        self.sampler = self.sampler.wrapping_add(SAMPLER_STEP);
        fmix64(self.sampler)
            .is_multiple_of(self.config.sample_one_in)
            .then_some(self.config.sample_one_in)
    }

    /// The `limit` hottest keys with their (decayed) estimated counts.
    pub fn top(&self, limit: usize) -> Vec<(K, u64)> {
        self.top.top(limit)
    }

    /// The estimated (decayed) count of `key`.
    pub fn estimate(&self, key: &K) -> u64 {
        self.sketch.estimate(hash_of(key))
    }

    /// Memory held, which does not grow with the stream: the sketch plus a
    /// fixed number of tracked keys.
    pub fn tracked_keys(&self) -> usize {
        self.top.len()
    }

    pub fn sketch_size_bytes(&self) -> usize {
        self.sketch.size_bytes()
    }

    fn decay_to(&mut self, now_ms: u64) {
        if now_ms < self.window_start_ms + self.config.window_ms {
            return;
        }
        let windows = (now_ms - self.window_start_ms) / self.config.window_ms;
        for _ in 0..windows.min(DECAY_STEPS_MAX) {
            self.sketch.halve();
            self.top.halve();
        }
        self.window_start_ms += windows * self.config.window_ms;
        self.window_accesses = 0;
    }
}
