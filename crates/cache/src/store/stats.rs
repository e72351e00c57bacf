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
    /// Of `hits`, those the disk tier served (the key came back from disk).
    /// This and the other `disk_` fields are filled by [`crate::Store::stats`]
    /// from the disk tier's own counters (which its snapshot section
    /// carries), so they are not serialized here.
    #[serde(skip)]
    pub disk_hits: u64,
    /// Reads that missed both tiers (with a tier, equal to `misses`).
    #[serde(skip)]
    pub disk_misses: u64,
    /// Entries the memory tier evicted that went to disk.
    #[serde(skip)]
    pub disk_writes: u64,
    /// Entries brought back from disk by any access (reads and writes).
    #[serde(skip)]
    pub disk_promotions: u64,
    /// Entries dropped by the disk tier's FIFO eviction.
    #[serde(skip)]
    pub disk_evictions: u64,
    /// Expired entries removed from the disk tier.
    #[serde(skip)]
    pub disk_expirations: u64,
    /// Logical bytes on disk (weights, as in `bytes`).
    #[serde(skip)]
    pub disk_bytes: u64,
    /// Entries on disk, expired ones not yet reclaimed included.
    #[serde(skip)]
    pub disk_entries: u64,
}

impl Stats {
    pub(super) fn fill_disk(&mut self, disk: super::disk::DiskStats, bytes: u64, entries: u64) {
        self.disk_hits = disk.hits;
        self.disk_misses = disk.misses;
        self.disk_writes = disk.writes;
        self.disk_promotions = disk.promotions;
        self.disk_evictions = disk.evictions;
        self.disk_expirations = disk.expirations;
        self.disk_bytes = bytes;
        self.disk_entries = entries;
    }

    /// Reads the memory tier answered over all reads (0 before the first).
    pub fn memory_hit_ratio(&self) -> f64 {
        ratio(self.hits - self.disk_hits, self.hits + self.misses)
    }

    /// Reads the disk tier answered over the reads that reached it (those
    /// that missed memory); 0 before the first.
    pub fn disk_hit_ratio(&self) -> f64 {
        ratio(self.disk_hits, self.disk_hits + self.disk_misses)
    }

    /// Hits over reads, or 0 before the first read.
    pub fn hit_ratio(&self) -> f64 {
        ratio(self.hits, self.hits + self.misses)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
