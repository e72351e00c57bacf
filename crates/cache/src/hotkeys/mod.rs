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

mod count_min;
mod top_k;

use std::borrow::Borrow;
use std::hash::Hash;

pub use count_min::CountMinSketch;
pub use top_k::TopK;

use crate::hash::hash_of;

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
}

impl Default for HotKeyConfig {
    fn default() -> Self {
        HotKeyConfig {
            sketch_width: 4_096,
            sketch_depth: 4,
            tracked_keys: 64,
            window_ms: 10_000,
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
}

/// Windows past which further halving changes nothing (u32 counters).
const DECAY_STEPS_MAX: u64 = 32;

impl<K: Hash + Ord + Clone> HotKeyDetector<K> {
    /// # Panics
    /// On a zero `window_ms`, `tracked_keys`, or a bad sketch shape.
    pub fn new(config: HotKeyConfig, now_ms: u64) -> Self {
        assert!(config.window_ms > 0, "window_ms must be positive");
        HotKeyDetector {
            config,
            sketch: CountMinSketch::new(config.sketch_width, config.sketch_depth),
            top: TopK::new(config.tracked_keys),
            window_start_ms: now_ms,
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
        let key_hash = hash_of(key);
        let estimate = self.sketch.increment(key_hash);
        self.top.offer(key, key_hash, estimate);
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
    }
}
