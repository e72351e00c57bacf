//! Where a replica keeps its shards' disk tiers (L3): local placement, not
//! replicated state.
//!
//! ```text
//!   <root> = <data_dir>/disk/g<gid>           (cleared when the replica starts)
//!     s3-0/seg-0000000000.log ...             shard 3's store
//!     s3-7/...                                shard 3 again (restored, migrated in);
//!                                             the number is never reused in a process
//! ```
//!
//! Whether a group's shards have a tier, and its capacity, is the
//! machine's [`api::MachineConfig`] (`store.disk`), which every replica of
//! the group must set alike (the node's `[disk_tier]`); the tier's logical
//! state is then the same on every replica (the store's deterministic
//! eviction). Only the files are local: each store incarnation (a new
//! shard, one rebuilt from a snapshot, one that arrived from another
//! group) gets a fresh directory, and dropping the store deletes it. The
//! files are a cache of state the log and snapshots make durable, so the
//! whole root is cleared when the replica starts, and an IO failure costs
//! this replica (it stops, see [`DiskPlacement::fault`]), never the data.
//!
//! Disk IO is `std::fs`, outside the simulation seam; the simulation
//! suites never configure a tier.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use cache::store::{DiskConfig, DiskSnapshot, DiskTarget};
use cache::{Store, StoreConfig, StoreError};

use crate::shard_key::ShardId;

/// Numbers the store directories made in this process. Process-wide, not
/// per placement: a replica restarted inside one process (the tests' and
/// the demo's nodes) opens a new placement on the same root while the old
/// machine may still be dropping its stores, which delete their
/// directories; with names never reused, they cannot delete the new ones.
static NEXT_INCARNATION: AtomicU64 = AtomicU64::new(0);

/// A replica's root directory for its shards' tiers. Clones share the
/// fault (a restored machine continues the one it replaces).
#[derive(Clone)]
pub struct DiskPlacement {
    root: PathBuf,
    /// The first failure to set up a tier's directory (sticky).
    fault: Arc<OnceLock<String>>,
}

impl fmt::Debug for DiskPlacement {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("DiskPlacement")
            .field("root", &self.root)
            .field("fault", &self.fault.get())
            .finish_non_exhaustive()
    }
}

impl DiskPlacement {
    /// The placement under `root`, which is emptied (tiers of an earlier
    /// run are rebuilt from snapshots, never read back) and created.
    pub fn open(root: &Path) -> Result<DiskPlacement, String> {
        match std::fs::remove_dir_all(root) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(format!(
                    "cannot clear the disk tier directory {}: {error}",
                    root.display()
                ));
            }
        }
        std::fs::create_dir_all(root).map_err(|error| {
            format!(
                "cannot create the disk tier directory {}: {error}",
                root.display()
            )
        })?;
        Ok(DiskPlacement {
            root: root.to_path_buf(),
            fault: Arc::new(OnceLock::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The first failure to set up a store's tier here, if any: the
    /// replica then holds a store without its tier and must stop.
    pub fn fault(&self) -> Option<&str> {
        self.fault.get().map(String::as_str)
    }

    /// A directory no store of this replica used before.
    fn fresh_directory(&self, shard: ShardId) -> PathBuf {
        let incarnation = NEXT_INCARNATION.fetch_add(1, Ordering::Relaxed);
        self.root.join(format!("s{shard}-{incarnation}"))
    }

    /// An empty store for `shard` with `config`'s tier (a store without
    /// one if `config` has none). A tier that cannot be set up is recorded
    /// as this placement's fault and the store made without it.
    pub(super) fn empty_store(&self, shard: ShardId, config: StoreConfig) -> Store {
        let mut store = Store::new(StoreConfig {
            disk: None,
            ..config
        });
        if let Err(error) = self.settle(shard, config.disk, &mut store, None) {
            panic!("shard {shard}: an empty store refused an empty disk section: {error}");
        }
        store
    }

    /// Gives `store` (decoded without its tier) the tier `disk` names, in a
    /// fresh directory, from the snapshot's section `tier`
    /// ([`Store::settle_disk`]). A malformed section is an error; a
    /// failure of the files is recorded as this placement's fault and
    /// `store` keeps no tier (the replica stops before answering from it).
    pub(super) fn settle(
        &self,
        shard: ShardId,
        disk: Option<DiskConfig>,
        store: &mut Store,
        tier: Option<DiskSnapshot>,
    ) -> Result<(), StoreError> {
        let Some(disk) = disk else {
            return store.settle_disk(tier, None);
        };
        let directory = self.fresh_directory(shard);
        match store.settle_disk(tier, Some(target(disk, &directory))) {
            Ok(()) => {
                store.delete_disk_directory_on_drop();
                Ok(())
            }
            Err(StoreError::Disk(error)) => {
                self.note_fault(format!("shard {shard}: {error}"));
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// A store from [`Store::snapshot`] bytes (a shard arriving from
    /// another group) with `config`'s tier: as [`DiskPlacement::settle`].
    pub(super) fn restored(
        &self,
        shard: ShardId,
        config: StoreConfig,
        bytes: &[u8],
    ) -> Result<Store, StoreError> {
        let directory = self.fresh_directory(shard);
        let target = config.disk.map(|disk| target(disk, &directory));
        match Store::restore_for(bytes, target) {
            Ok(mut store) => {
                store.delete_disk_directory_on_drop();
                Ok(store)
            }
            Err(StoreError::Disk(error)) => {
                self.note_fault(format!("shard {shard}: {error}"));
                Store::restore_for(bytes, None)
            }
            Err(error) => Err(error),
        }
    }

    fn note_fault(&self, detail: String) {
        tracing::error!(root = %self.root.display(), %detail, "disk tier failure: this replica must stop");
        // Only the first failure is kept: it is the one that stops the
        // replica.
        let _ = self.fault.set(detail);
    }
}

fn target(config: DiskConfig, directory: &Path) -> DiskTarget<'_> {
    DiskTarget { config, directory }
}
