//! Snapshot and restore.
//!
//! A snapshot is the whole store: configuration, logical time, counters, the
//! slab in slot order, the policy's state and the expiry index. Restoring it
//! gives a store that continues *identically*: the same future operations
//! give the same answers and evict the same entries. Derived state (the hash
//! index) is not stored; it is rebuilt and the result checked.

use serde::Deserialize;

use super::{Stats, Store, StoreConfig, StoreError};
use crate::table::Table;

/// The serialized form; field order matches [`Store`]'s `Serialize`.
#[derive(Deserialize)]
struct StoreParts {
    config: StoreConfig,
    now_ms: u64,
    stats: Stats,
    table: Table<Vec<u8>, super::Value>,
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
    /// the same bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Rebuilds a store from [`Store::snapshot`] bytes, rejecting anything
    /// malformed or internally inconsistent, allocating at most
    /// `codec::STATE_LIMIT` while decoding.
    pub fn restore(bytes: &[u8]) -> Result<Store, StoreError> {
        codec::decode(bytes, codec::STATE_LIMIT).map_err(|error| StoreError::CorruptSnapshot {
            reason: error.to_string(),
        })
    }
}
