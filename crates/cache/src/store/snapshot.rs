//! Snapshot and restore.
//!
//! A snapshot is the whole store: configuration, logical time, counters, the
//! slab in slot order, the policy's state and the expiry index. Restoring it
//! gives a store that continues *identically*: the same future operations
//! give the same answers and evict the same entries. Derived state (the hash
//! index) is not stored; it is rebuilt and the result checked.
//!
//! # Format versions
//!
//! A store without a disk tier is written as it always was: the memory
//! tier's parts, no header (version 1). A store with one is written behind
//! the codec's version header ([`codec::encode_versioned`]) as version 2:
//! the same memory parts, then the tier's [`DiskSnapshot`] (its config,
//! sequence counter, counters and every entry *with its value*, oldest
//! first). So a snapshot costs the disk tier's values too: its size grows
//! with the disk capacity (up to `DiskConfig::capacity_bytes` of weights),
//! and taking one reads every value back from the segment files.
//! Restoring rebuilds the tier's files in a directory the caller names
//! ([`Store::restore_with_disk`]).

use std::path::Path;

use serde::Deserialize;

use super::disk::{DiskConfig, DiskSnapshot, DiskTier};
use super::{Stats, Store, StoreConfig, StoreError};
use crate::table::Table;

/// The store snapshot's format: 1 is the memory tier alone (no header),
/// 2 adds the disk tier.
const SNAPSHOT_FORMAT: codec::Format = codec::Format {
    what: "cache store snapshot",
    version: 2,
};

/// The serialized form; field order matches [`Store`]'s `Serialize`.
#[derive(Deserialize)]
struct StoreParts {
    config: StoreConfig,
    now_ms: u64,
    stats: Stats,
    table: Table<Box<[u8]>, super::Value>,
}

impl TryFrom<StoreParts> for Store {
    type Error = StoreError;

    fn try_from(parts: StoreParts) -> Result<Self, Self::Error> {
        let corrupt = |reason: String| StoreError::CorruptSnapshot { reason };
        let StoreParts {
            config,
            now_ms,
            stats,
            mut table,
        } = parts;
        if config.capacity_bytes == 0 || config.capacity_entries == Some(0) {
            return Err(corrupt("zero capacity".to_owned()));
        }
        if table.limits() != config.limits() || table.policy_kind() != config.policy {
            return Err(corrupt(
                "table limits or policy disagree with the config".to_owned(),
            ));
        }
        table.rebuild_derived();
        table.check_invariants().map_err(corrupt)?;
        let store = Store {
            config,
            now_ms,
            stats,
            table,
            disk: None,
            disk_fault: None,
        };
        store.check_invariants().map_err(corrupt)?;
        Ok(store)
    }
}

impl<'de> Deserialize<'de> for Store {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parts = StoreParts::deserialize(deserializer)?;
        Store::try_from(parts).map_err(serde::de::Error::custom)
    }
}

impl Store {
    /// The store as bytes (the shared `codec`: bincode 2, standard
    /// configuration). Two stores that applied the same operations give
    /// the same bytes, disk tiers included (their files may differ; the
    /// bytes do not).
    ///
    /// # Panics
    /// If the disk tier cannot read a value back: this replica has lost
    /// data and must be rebuilt from another's snapshot. Use
    /// [`Store::try_snapshot`] to get that as an error.
    pub fn snapshot(&self) -> Vec<u8> {
        self.try_snapshot()
            .unwrap_or_else(|error| panic!("cannot snapshot the store: {error}"))
    }

    /// [`Store::snapshot`], with a disk failure as an error.
    pub fn try_snapshot(&self) -> Result<Vec<u8>, StoreError> {
        match &self.disk {
            None => Ok(codec::encode(self)),
            Some(disk) => {
                let disk = disk.snapshot().map_err(StoreError::Disk)?;
                Ok(codec::encode_versioned(&[SNAPSHOT_FORMAT], &(self, disk)))
            }
        }
    }

    /// Rebuilds a store from [`Store::snapshot`] bytes, rejecting anything
    /// malformed or internally inconsistent, allocating at most
    /// `codec::STATE_LIMIT` while decoding. A snapshot with a disk tier
    /// needs a directory: [`Store::restore_with_disk`].
    pub fn restore(bytes: &[u8]) -> Result<Store, StoreError> {
        match decode_parts(bytes)? {
            (store, None) => Ok(store),
            (_, Some(_)) => Err(StoreError::CorruptSnapshot {
                reason: "the snapshot has a disk tier; restore it with a directory".to_owned(),
            }),
        }
    }

    /// [`Store::restore`] for snapshots of either version: a disk tier in
    /// the snapshot is rebuilt in `directory` (its old segment files are
    /// deleted first); a snapshot without one leaves `directory` alone.
    pub fn restore_with_disk(bytes: &[u8], directory: &Path) -> Result<Store, StoreError> {
        let (mut store, disk) = decode_parts(bytes)?;
        if let Some(disk) = disk {
            let corrupt = |reason: String| StoreError::CorruptSnapshot { reason };
            if disk.config.capacity_bytes == 0 || disk.config.segment_bytes == 0 {
                return Err(corrupt("zero disk capacity".to_owned()));
            }
            check_disk_records(&store, &disk).map_err(corrupt)?;
            store.attach_disk(DiskTier::restore(directory, disk).map_err(StoreError::Disk)?);
            store.check_invariants().map_err(corrupt)?;
        }
        Ok(store)
    }
}

/// Where a restored store's disk tier is to live, and its configuration
/// there: see [`Store::restore_for`].
#[derive(Debug, Clone, Copy)]
pub struct DiskTarget<'a> {
    pub config: DiskConfig,
    /// A directory of this tier's own (its segment files are deleted).
    pub directory: &'a Path,
}

impl Store {
    /// The disk tier's section of a snapshot (None without a tier), for
    /// callers that write the memory tier through `Serialize` and the tier
    /// beside it; [`Store::settle_disk`] puts them back together.
    pub fn disk_snapshot(&self) -> Result<Option<DiskSnapshot>, StoreError> {
        self.disk
            .as_ref()
            .map(|disk| disk.snapshot().map_err(StoreError::Disk))
            .transpose()
    }

    /// Rebuilds a store from [`Store::snapshot`] bytes of either version so
    /// that its disk tier is `target`'s, whatever tier the snapshot had:
    /// [`Store::settle_disk`].
    pub fn restore_for(bytes: &[u8], target: Option<DiskTarget<'_>>) -> Result<Store, StoreError> {
        let (mut store, disk) = decode_parts(bytes)?;
        store.settle_disk(disk, target)?;
        Ok(store)
    }

    /// Gives a store decoded without its tier (memory tier only) the tier
    /// `target` names, from the snapshot's section `disk`. The outcome
    /// depends only on the logical state and `target`'s config, never on
    /// files, so replicas that settle the same state alike stay identical:
    ///
    /// - section and target with equal configs: the tier as it was;
    /// - section and a target of another config: its entries oldest first,
    ///   the oldest dropped (counted as disk evictions) until the new
    ///   capacity holds;
    /// - a section and no target: its entries are dropped (they were
    ///   already evicted from memory; counted as evictions);
    /// - no section and a target: an empty tier.
    ///
    /// # Errors
    /// A malformed section ([`StoreError::CorruptSnapshot`]), or the files
    /// could not be written ([`StoreError::Disk`]). The store is unchanged
    /// then.
    ///
    /// # Panics
    /// If the store has a tier already, or `target`'s capacities are zero
    /// (caller bugs).
    pub fn settle_disk(
        &mut self,
        disk: Option<DiskSnapshot>,
        target: Option<DiskTarget<'_>>,
    ) -> Result<(), StoreError> {
        assert!(self.disk.is_none(), "settle_disk on a store with a tier");
        let corrupt = |reason: String| StoreError::CorruptSnapshot { reason };
        if let Some(disk) = &disk {
            if disk.config.capacity_bytes == 0 || disk.config.segment_bytes == 0 {
                return Err(corrupt("zero disk capacity".to_owned()));
            }
            check_disk_records(self, disk).map_err(corrupt)?;
        }
        let tier = match (disk, target) {
            (None, None) => return Ok(()),
            (Some(disk), None) => {
                self.stats.evictions += disk.records.len() as u64;
                return Ok(());
            }
            (None, Some(target)) => {
                DiskTier::open(target.directory, target.config).map_err(StoreError::Disk)?
            }
            (Some(disk), Some(target)) => {
                DiskTier::restore(target.directory, refit(disk, target.config))
                    .map_err(StoreError::Disk)?
            }
        };
        self.attach_disk(tier);
        self.check_invariants().map_err(corrupt)
    }
}

/// `disk` under `config`: the oldest entries dropped (counted as
/// evictions) until the rest fit its capacity.
fn refit(mut disk: DiskSnapshot, config: DiskConfig) -> DiskSnapshot {
    if disk.config == config {
        return disk;
    }
    let mut weight_total: u64 = disk
        .records
        .iter()
        .map(|record| super::entry_weight_bytes(&record.key, &record.value))
        .sum();
    let mut dropped = 0;
    while weight_total > config.capacity_bytes {
        let record = &disk.records[dropped];
        weight_total -= super::entry_weight_bytes(&record.key, &record.value);
        dropped += 1;
    }
    disk.records.drain(..dropped);
    disk.stats.evictions += dropped as u64;
    disk.config = config;
    disk
}

/// The memory tier and, for version 2, the disk tier's section.
fn decode_parts(bytes: &[u8]) -> Result<(Store, Option<DiskSnapshot>), StoreError> {
    let corrupt = |error: codec::CodecError| StoreError::CorruptSnapshot {
        reason: error.to_string(),
    };
    let (versions, body) = codec::split_versions(bytes, &[SNAPSHOT_FORMAT]).map_err(corrupt)?;
    if versions == [1] {
        let store = codec::decode(body, codec::STATE_LIMIT).map_err(corrupt)?;
        return Ok((store, None));
    }
    let (store, disk): (Store, DiskSnapshot) =
        codec::decode(body, codec::STATE_LIMIT).map_err(corrupt)?;
    Ok((store, Some(disk)))
}

/// A disk section must be in sequence order, below its counter, free of
/// duplicate keys and keys the memory tier holds, and within its capacity.
fn check_disk_records(store: &Store, disk: &DiskSnapshot) -> Result<(), String> {
    let mut previous_seq = None;
    let mut weight_total = 0u64;
    let mut keys = std::collections::BTreeSet::new();
    for record in &disk.records {
        if previous_seq.is_some_and(|previous| record.seq <= previous)
            || record.seq >= disk.next_seq
        {
            return Err(format!("disk record seq {} out of order", record.seq));
        }
        previous_seq = Some(record.seq);
        if !keys.insert(record.key.as_slice()) || store.table.find(record.key.as_slice()).is_some()
        {
            return Err(format!("disk key {:?} held twice", record.key));
        }
        if record.value.is_empty_collection() || record.value.check_invariants().is_err() {
            return Err(format!("disk key {:?}: invalid value", record.key));
        }
        if record.expire_at_unix_ms.is_some() && record.expire_at_ms.is_none() {
            return Err(format!(
                "disk key {:?}: wall-clock deadline alone",
                record.key
            ));
        }
        weight_total =
            weight_total.saturating_add(super::entry_weight_bytes(&record.key, &record.value));
    }
    if weight_total > disk.config.capacity_bytes {
        return Err("disk records exceed the disk capacity".to_owned());
    }
    Ok(())
}
