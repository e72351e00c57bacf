//! The donor's encoded copies of the shards it offers: each offered shard
//! is encoded once per configuration (its data is frozen, so the bytes
//! stay valid), and pieces of it are cut from the copy on every pull.
//!
//! The copy is taken under the rsm lock (a clone of the shard) and encoded
//! outside it, so the group's applies do not wait for the encoding.
//! Bounded: copies are kept only for the configuration the replica is at
//! and at most one per shard; moving to the next configuration drops them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rsm::Rsm;
use shardctrler::Gid;

use crate::machine::ShardMachine;
use crate::rpc::MigrationError;
use crate::shard_key::ShardId;

/// One offered shard, encoded.
pub(super) struct ExportedShard {
    pub(super) bytes: Vec<u8>,
    pub(super) crc32: u32,
}

/// The encoded copies of one replica, by (configuration, shard).
pub(super) struct Exports {
    max_entries: usize,
    by_shard: Mutex<BTreeMap<(u64, ShardId), Arc<ExportedShard>>>,
}

impl Exports {
    /// At most `shard_count` copies (one per shard) at once.
    pub(super) fn new(shard_count: usize) -> Exports {
        Exports {
            max_entries: shard_count,
            by_shard: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(u64, ShardId), Arc<ExportedShard>>> {
        // A panic elsewhere while holding it leaves a consistent map.
        self.by_shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops the copies of `shards` offered in `config_num` (deleted, or no
    /// longer offered) and every copy of an earlier configuration.
    pub(super) fn forget(&self, config_num: u64, shards: &[ShardId]) {
        self.lock().retain(|&(num, shard), _| {
            num > config_num || (num == config_num && !shards.contains(&shard))
        });
    }

    /// The encoded copy of `shard` offered in `config_num`, made now if
    /// this replica has none. The offer is checked against the machine
    /// every time (a replica past `config_num` answers `MovedOn`).
    pub(super) fn get(
        &self,
        rsm: &Rsm<ShardMachine>,
        config_num: u64,
        shard: ShardId,
        from_gid: Gid,
    ) -> Result<Arc<ExportedShard>, MigrationError> {
        let key = (config_num, shard);
        let cached = self.lock().get(&key).cloned();
        let copy = rsm.with_machine(|machine| match cached {
            // Still offered: the cached bytes are the shard's.
            Some(_) => machine
                .check_offered(config_num, shard, from_gid)
                .map(|()| None),
            None => machine.offered_copy(config_num, shard, from_gid).map(Some),
        });
        let copy = match copy {
            Ok(copy) => copy,
            // Offered, but to another group: the copy stays for it.
            Err(error @ MigrationError::WrongReceiver { .. }) => return Err(error),
            Err(error) => {
                self.forget(config_num, &[shard]);
                return Err(error);
            }
        };
        let Some(copy) = copy else {
            return Ok(cached.expect("a cached copy when none was made"));
        };
        // A disk tier that cannot be read back refuses this pull (the
        // puller asks another replica); nothing is cached.
        let bytes = copy.encode().inspect_err(|error| {
            tracing::warn!(shard, config_num, "cannot hand the shard over: {error}");
        })?;
        let exported = Arc::new(ExportedShard {
            crc32: crc32fast::hash(&bytes),
            bytes,
        });
        let mut by_shard = self.lock();
        by_shard.retain(|&(num, _), _| num == config_num);
        if by_shard.len() < self.max_entries {
            by_shard.insert(key, Arc::clone(&exported));
        }
        Ok(exported)
    }
}
