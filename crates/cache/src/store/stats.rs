//! Counters kept by the store.

use serde::{Deserialize, Serialize};

/// Store counters. They are part of the replicated state (and of snapshots),
/// so every replica reports the same numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Reads (get, batch get) that found a visible entry.
    pub hits: u64,
    /// Reads that found nothing, or only an expired entry.
    pub misses: u64,
    /// Entries removed to make room.
    pub evictions: u64,
    /// Expired entries removed (by cleanup or when a lookup found them).
    pub expirations: u64,
    /// Bytes counted against the capacity (keys + values + overhead).
    pub bytes: u64,
    /// Resident entries, including expired ones not yet reclaimed.
    pub entries: u64,
}

impl Stats {
    /// Hits over reads, or 0 before the first read.
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits + self.misses;
        if reads == 0 {
            0.0
        } else {
            self.hits as f64 / reads as f64
        }
    }
}
