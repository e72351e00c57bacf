//! The deterministic store: the state inside each replica of a shard.
//!
//! Every operation takes `now_ms`, the *logical* time carried by the log entry
//! being applied. The store never reads a clock, never hashes with a random
//! seed and never iterates a hash map, so replicas that apply the same
//! operations in the same order hold the same bytes and give the same
//! answers, evictions included.
//!
//! Each operation first does bounded housekeeping: it reclaims at most
//! [`StoreConfig::reclaim_per_op`] expired entries, soonest deadline first.
//! An expired entry is invisible from its deadline on even if it has not been
//! reclaimed yet (a lookup that meets one removes it).
//!
//! # The disk tier (L3, optional, off by default)
//!
//! With [`StoreConfig::disk`] set (and the store made by [`Store::open`]
//! with a directory), an entry the memory policy evicts is not dropped: it
//! goes to [`disk::DiskTier`], a log-structured file store with its own
//! byte capacity, keeping its deadline (an expired one is not written). A
//! key is in at most one tier.
//!
//! ```text
//!   write ──► memory tier (policy) ──evicts──► disk tier (FIFO) ──evicts──► gone
//!                  ▲                               │
//!                  └──── mutating access (get, value, update, ttl, ...) ─┘
//! ```
//!
//! - **Mutating accesses** (`get`, `value`, `update`, `append`, `ttl`,
//!   `expire`, ...) of a key on disk bring it back into memory first (which
//!   may evict others to disk), then proceed as for a key in memory.
//!   [`Store::promote`] does just that, for callers that then read with
//!   [`Store::peek_value`] on the apply path. A write that replaces a
//!   value, and a delete, drop the disk copy without reading it.
//! - **Reads that change nothing**: [`Store::kind`], [`Store::peek_ttl`]
//!   and [`Store::peek_expiry`] see both tiers (the disk tier keeps type and
//!   deadline in memory). [`Store::peek`], [`Store::peek_value`] and
//!   [`Store::entries`] keep their borrowed answers and see memory only;
//!   [`Store::read`] and [`Store::read_value`] read through to disk
//!   (owned, as a `Cow`, and a disk failure is an error), [`Store::keys`]
//!   lists both tiers, and [`Store::read_view`] copies the keys of one read
//!   into a small tierless store that any read code can run on.
//! - **Determinism.** Which keys are on disk, in which order, and the
//!   tier's byte total are functions of the operations: the memory policy
//!   picks the victims (deterministic already), they are spilled in
//!   eviction order, disk eviction is FIFO by a sequence counter, weights
//!   use the memory tier's formula, and reclaim goes soonest deadline first.
//!   File offsets and segments are local and never decide anything
//!   ([`disk`] explains the split).
//! - **Snapshots** carry the disk tier's entries with their values (format
//!   version 2; see `snapshot.rs`), so a snapshot grows with the disk
//!   capacity and taking one reads the tier back. A store without a tier
//!   snapshots byte for byte as before.
//! - **Stats**: [`Stats::disk_hits`] (reads served from disk),
//!   [`Stats::disk_misses`], [`Stats::memory_hit_ratio`],
//!   [`Stats::disk_hit_ratio`], the tier's writes, promotions, evictions,
//!   expirations, bytes and entries. Latency is the caller's to measure:
//!   a `get` that counted a disk hit (`disk_hits` went up) took the disk
//!   path.
//!
//! ## Disk faults
//!
//! A value the disk cannot give back (an IO error, a damaged record) is
//! never answered as another value. Read-only reads return
//! [`StoreError::Disk`]. On the apply path the key reads as absent on this
//! replica and [`Store::disk_fault`] reports the failure from then on: the
//! replica has lost a value the others still hold, so the caller must stop
//! answering from it and rebuild it from another replica's snapshot (the
//! tier's files are only a cache of state the log and snapshots make
//! durable; [`Store::restore_with_disk`] rebuilds them). The logical state
//! (which keys, which order, the bytes) still moves as on the other
//! replicas.
//!
//! ## Not done
//!
//! - shardkv enables the tier per group (the node's `[disk_tier]`
//!   settings) and stops a replica whose store reports a
//!   [`Store::disk_fault`]; kvraft does not use it.
//! - IO is synchronous `std::fs` on the applying thread, outside the
//!   simulation seam.
//! - An operation's keys are brought back one by one; if they do not fit
//!   in memory together, bringing back one can evict another.
//! - A clone of a store with a tier is a read-only copy for a snapshot
//!   (its tier shares the open files; see "Copies for snapshots" in
//!   [`disk`]): any operation that would change its tier panics.

pub mod disk;
mod error;
mod order_tree;
mod snapshot;
mod stats;
pub mod value;
mod zset;

use std::borrow::Cow;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use disk::{DiskConfig, DiskError, DiskReadStats, DiskSnapshot, DiskTier};
pub use error::StoreError;
pub use snapshot::DiskTarget;
pub use stats::Stats;
pub use value::{Kind, Value};

use crate::hash::hash_of;
use crate::policy::{PolicyKind, PolicyRevision, SlotId};
use crate::table::{Limits, Table, TooHeavy};

/// Bytes charged per entry on top of its key and value: an estimate of the
/// slab entry, index slot, policy metadata and expiry record. It is a fixed
/// constant (not `size_of`) so that the accounting is identical on every
/// platform and compiler version.
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;

/// Expired entries reclaimed per operation by default.
pub const RECLAIM_PER_OP_DEFAULT: u64 = 8;

/// What a store may hold and how it evicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreConfig {
    /// Sum of [`weight_bytes`] over entries never exceeds this after an
    /// operation.
    pub capacity_bytes: u64,
    /// Optional bound on the number of entries.
    pub capacity_entries: Option<u64>,
    pub policy: PolicyKind,
    /// Bound on expired entries reclaimed by one operation (per tier).
    pub reclaim_per_op: u64,
    /// The optional disk tier (L3, [`disk`]): entries the memory tier
    /// evicts go there instead of vanishing. `None` (the default): no tier.
    ///
    /// Not serialized with the config, so snapshots of stores without a
    /// tier keep their old bytes; a snapshot of a store with one carries
    /// this in its tier section ([`Store::snapshot`]).
    #[serde(skip)]
    pub disk: Option<DiskConfig>,
}

impl StoreConfig {
    /// A byte-bounded store with the default policy.
    pub fn new(capacity_bytes: u64) -> Self {
        StoreConfig {
            capacity_bytes,
            capacity_entries: None,
            policy: PolicyKind::DEFAULT,
            reclaim_per_op: RECLAIM_PER_OP_DEFAULT,
            disk: None,
        }
    }

    /// Adds a disk tier of `disk` (open the store with [`Store::open`]).
    pub fn with_disk(mut self, disk: DiskConfig) -> Self {
        self.disk = Some(disk);
        self
    }

    pub fn with_policy(mut self, policy: PolicyKind) -> Self {
        self.policy = policy;
        self
    }

    pub fn with_capacity_entries(mut self, capacity_entries: u64) -> Self {
        self.capacity_entries = Some(capacity_entries);
        self
    }

    fn limits(&self) -> Limits {
        Limits {
            capacity_weight: self.capacity_bytes,
            capacity_entries: self.capacity_entries,
        }
    }
}

/// How long an entry has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    Missing,
    Persistent,
    RemainingMs(u64),
}

/// A deadline as a write gives it: `ttl_ms` of log time after the write
/// (0 is refused with [`StoreError::ZeroTtl`]), and the wall-clock instant
/// (Unix ms) the client named for it, if any.
///
/// Only `ttl_ms` decides when the entry expires (log time is the same on
/// every replica; a wall clock is not). `unix_ms` is carried through the
/// log, kept with the entry, moved by `KEEPTTL`-like writes, renames,
/// copies, snapshots and shard migration, and read back unchanged by
/// [`Store::peek_expiry`], so Redis's `PEXPIRETIME` answers exactly the
/// instant a client gave with `PXAT` or `PEXPIREAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    pub ttl_ms: u64,
    pub unix_ms: Option<i64>,
}

impl Expiry {
    /// A deadline `ttl_ms` from the write, with no wall-clock instant.
    pub fn after(ttl_ms: u64) -> Expiry {
        Expiry {
            ttl_ms,
            unix_ms: None,
        }
    }
}

/// One visible entry, as handed out for shard migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryView<'a> {
    pub key: &'a [u8],
    pub value: &'a Value,
    /// Absolute deadline in the same logical time base as `now_ms`.
    pub expire_at_ms: Option<u64>,
    /// The wall-clock instant named for it ([`Expiry::unix_ms`]).
    pub expire_at_unix_ms: Option<i64>,
}

/// The deterministic, byte-bounded key/value store. See the module docs.
///
/// `Serialize` writes the memory tier only (the snapshot layout of a store
/// without a disk tier); [`Store::snapshot`] adds the tier.
#[derive(Debug, Clone, Serialize)]
pub struct Store {
    config: StoreConfig,
    /// The latest logical time seen; time never goes backwards.
    now_ms: u64,
    stats: Stats,
    table: Table<Box<[u8]>, Value>,
    /// L3, if configured. Never holds a key the memory tier holds.
    #[serde(skip)]
    disk: Option<DiskTier>,
    /// The first disk failure since the store was opened (local, sticky):
    /// see "Disk faults" in the module docs.
    #[serde(skip)]
    disk_fault: Option<DiskError>,
}

/// The bytes a string entry counts against the capacity.
pub fn weight_bytes(key: &[u8], value: &[u8]) -> u64 {
    key.len() as u64 + value.len() as u64 + ENTRY_OVERHEAD_BYTES
}

/// The bytes an entry of any type counts against the capacity: the key,
/// the value's bytes ([`Value::bytes`], exact for every type) and
/// [`ENTRY_OVERHEAD_BYTES`].
pub fn entry_weight_bytes(key: &[u8], value: &Value) -> u64 {
    key.len() as u64 + value.bytes() + ENTRY_OVERHEAD_BYTES
}

impl Store {
    /// # Panics
    /// If a capacity is zero, or if `config` has a disk tier (which needs a
    /// directory: [`Store::open`]); both are configuration bugs.
    pub fn new(config: StoreConfig) -> Self {
        assert!(
            config.disk.is_none(),
            "a store with a disk tier is opened with Store::open(config, directory)"
        );
        Store {
            config,
            now_ms: 0,
            stats: Stats::default(),
            table: Table::new(config.policy, config.limits()),
            disk: None,
            disk_fault: None,
        }
    }

    /// An empty store; its disk tier, if `config` has one, lives in
    /// `directory` (created if missing; segment files left there by an
    /// earlier run are deleted).
    ///
    /// # Panics
    /// If a capacity is zero (a configuration bug).
    pub fn open(config: StoreConfig, directory: &Path) -> Result<Self, StoreError> {
        let mut store = Store::new(StoreConfig {
            disk: None,
            ..config
        });
        if let Some(disk) = config.disk {
            store.attach_disk(DiskTier::open(directory, disk).map_err(StoreError::Disk)?);
        }
        Ok(store)
    }

    /// Gives the store a disk tier (the config follows it).
    fn attach_disk(&mut self, tier: DiskTier) {
        self.config.disk = Some(tier.config());
        self.table.keep_evicted(true);
        self.disk = Some(tier);
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Counters, with `bytes` and `entries` current, and the disk tier's
    /// counters filled in (zero without a tier).
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            bytes: self.table.weight_total(),
            entries: self.table.len(),
            ..self.stats
        };
        if let Some(disk) = &self.disk {
            stats.fill_disk(disk.stats(), disk.used_bytes(), disk.len());
        }
        stats
    }

    /// The disk tier, if the store has one (read-only: its size, files and
    /// counters).
    pub fn disk(&self) -> Option<&DiskTier> {
        self.disk.as_ref()
    }

    /// Makes dropping the store delete its disk tier's directory (for a
    /// caller that gives every store a directory of its own). Nothing
    /// without a tier.
    pub fn delete_disk_directory_on_drop(&mut self) {
        if let Some(disk) = &mut self.disk {
            disk.delete_directory_on_drop();
        }
    }

    /// The disk tier's value reads and their summed time (local, not
    /// replicated; zero without a tier).
    pub fn disk_read_stats(&self) -> DiskReadStats {
        self.disk
            .as_ref()
            .map_or_else(DiskReadStats::default, DiskTier::read_stats)
    }

    /// Logical bytes held by the disk tier (0 without one).
    pub fn disk_used_bytes(&self) -> u64 {
        self.disk.as_ref().map_or(0, DiskTier::used_bytes)
    }

    /// The first disk failure this store met on the apply path, if any. A
    /// store with a fault has lost a value the other replicas still have,
    /// so its answers may differ from theirs: the caller must stop serving
    /// from it and rebuild it from another replica's snapshot.
    pub fn disk_fault(&self) -> Option<&DiskError> {
        self.disk_fault.as_ref()
    }

    /// Bytes currently counted against the capacity.
    pub fn used_bytes(&self) -> u64 {
        self.table.weight_total()
    }

    /// About how many bytes [`Store::snapshot`] takes without the disk
    /// tier, rounded up, for a caller sizing a buffer before encoding: the
    /// bytes counted against the capacity (each entry's key, value and
    /// overhead: more than an entry encodes to), plus a bound per slot of
    /// the policy's records and per slot of the adaptive policy's shadows
    /// (which the capacity does not count). Too small a buffer would grow
    /// by doubling while the snapshot is written, copying what is written.
    pub fn snapshot_size_hint(&self) -> u64 {
        /// A policy record's encoded bound (S3-FIFO's: two links and the
        /// key hash and weight as varints, the queue and the count).
        const RECORD_BYTES: u64 = 32;
        /// A shadow slot's: its record, its key hash, index buckets.
        const SHADOW_SLOT_BYTES: u64 = 64;
        self.used_bytes()
            .saturating_add(self.table.slot_count().saturating_mul(RECORD_BYTES))
            .saturating_add(self.table.shadow_slots().saturating_mul(SHADOW_SLOT_BYTES))
    }

    /// Resident entries (expired ones not yet reclaimed included).
    pub fn len(&self) -> u64 {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The string value of `key`, if visible. A key of another type reads
    /// as `None` here (callers that must tell the two apart ask
    /// [`Store::kind`] or [`Store::value`]).
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&[u8]> {
        self.value(key, now_ms).and_then(Value::as_str)
    }

    /// The value of `key` of any type, if visible; counts a hit or a miss.
    pub fn value(&mut self, key: &[u8], now_ms: u64) -> Option<&Value> {
        self.begin(now_ms);
        let found = self.lookup_counted(key);
        match found {
            Some(slot) => {
                self.stats.hits += 1;
                self.table.record_hit(slot);
                Some(&self.table.entry(slot).value)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Brings `key` back from the disk tier into memory if it is there
    /// (an access, as any mutating read of it would make; may evict others
    /// to disk). Changes nothing if `key` is in memory, absent, or there is
    /// no tier. For callers that then read through [`Store::peek_value`]
    /// on the apply path.
    pub fn promote(&mut self, key: &[u8], now_ms: u64) {
        if self.disk.is_none() {
            return;
        }
        self.begin(now_ms);
        self.lookup(key);
    }

    /// The value of `key` if visible at `now_ms` (or at the store's own
    /// time, if later) in either tier, changing nothing: [`Store::peek_value`]
    /// reading through to the disk tier. A value on disk comes back owned.
    /// A disk failure is an error ([`StoreError::Disk`]), never a miss.
    pub fn read_value(
        &self,
        key: &[u8],
        now_ms: u64,
    ) -> Result<Option<Cow<'_, Value>>, StoreError> {
        if let Some(value) = self.peek_value(key, now_ms) {
            return Ok(Some(Cow::Borrowed(value)));
        }
        let now_ms = now_ms.max(self.now_ms);
        match self.disk.as_ref().and_then(|disk| disk.read(key, now_ms)) {
            None => Ok(None),
            Some(Ok(value)) => Ok(Some(Cow::Owned(value))),
            Some(Err(error)) => Err(StoreError::Disk(error)),
        }
    }

    /// [`Store::read_value`] for a string: [`Store::peek`] reading through
    /// to the disk tier. A key of another type reads as `None`.
    pub fn read(&self, key: &[u8], now_ms: u64) -> Result<Option<Cow<'_, [u8]>>, StoreError> {
        Ok(match self.read_value(key, now_ms)? {
            None => None,
            Some(Cow::Borrowed(value)) => value.as_str().map(Cow::Borrowed),
            Some(Cow::Owned(Value::Str(bytes))) => Some(Cow::Owned(bytes)),
            Some(Cow::Owned(_)) => None,
        })
    }

    /// [`Store::value`] changing nothing, like [`Store::peek`]. Memory tier
    /// only: with a disk tier, read with [`Store::read_value`] (or
    /// [`Store::promote`] first on the apply path).
    pub fn peek_value(&self, key: &[u8], now_ms: u64) -> Option<&Value> {
        let now_ms = now_ms.max(self.now_ms);
        let slot = self.table.find_hashed(hash_of(key), key)?;
        let entry = self.table.entry(slot);
        (!entry.is_expired(now_ms)).then_some(&entry.value)
    }

    /// The type of `key`'s value, if visible in either tier; changes
    /// nothing (the disk tier keeps each entry's type in memory).
    pub fn kind(&self, key: &[u8], now_ms: u64) -> Option<Kind> {
        match self.peek_value(key, now_ms) {
            Some(value) => Some(value.kind()),
            None => self.peek_disk(key, now_ms).map(|entry| entry.kind),
        }
    }

    /// The disk tier's entry for `key` if visible at `now_ms` (or the
    /// store's time, if later).
    fn peek_disk(&self, key: &[u8], now_ms: u64) -> Option<&disk::DiskEntry> {
        let now_ms = now_ms.max(self.now_ms);
        self.disk.as_ref()?.visible(key, now_ms)
    }

    /// Changes the collection of `kind` at `key` in place with `change`,
    /// keeping the key's deadline; an absent key is an empty collection
    /// (created only if `change` leaves it non-empty), and a collection
    /// `change` leaves empty is removed, as Redis does.
    ///
    /// `growth_bytes` bounds how many bytes `change` can add; an existing
    /// entry whose weight plus that bound would exceed the capacity is
    /// refused ([`StoreError::TooLarge`]) before `change` runs. A new entry
    /// is checked exactly. A key of another type is refused with
    /// [`StoreError::WrongType`]. If `change` fails it must have changed
    /// nothing; its error is returned.
    pub fn update<R, E: From<StoreError>>(
        &mut self,
        key: &[u8],
        kind: Kind,
        growth_bytes: u64,
        now_ms: u64,
        change: impl FnOnce(&mut Value) -> Result<R, E>,
    ) -> Result<R, E> {
        self.begin(now_ms);
        match self.lookup(key) {
            Some(slot) => {
                let entry = self.table.entry(slot);
                if entry.value.kind() != kind {
                    return Err(StoreError::WrongType.into());
                }
                let bound = entry.weight.saturating_add(growth_bytes);
                self.table.check_weight(bound).map_err(too_large)?;
                let answer = change(self.table.value_mut(slot))?;
                let entry = self.table.entry(slot);
                if entry.value.is_empty_collection() {
                    self.table.remove(slot);
                } else {
                    let weight = entry_weight_bytes(key, &entry.value);
                    let evicted = self.table.set_weight(slot, weight).map_err(too_large)?;
                    self.stats.evictions += evicted;
                    self.spill_evicted();
                }
                Ok(answer)
            }
            None => {
                let mut value = Value::empty(kind);
                let answer = change(&mut value)?;
                if !value.is_empty_collection() {
                    self.insert_new(key, value, None)?;
                }
                Ok(answer)
            }
        }
    }

    /// Sets `key` to `value` of any type, replacing what it held, with
    /// the deadline `expiry` (`None`: none). An empty collection removes
    /// the key instead.
    pub fn put_value(
        &mut self,
        key: &[u8],
        value: Value,
        expiry: Option<Expiry>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.begin(now_ms);
        let deadline = self.deadline(expiry)?;
        if value.is_empty_collection() {
            self.delete(key, now_ms);
            return Ok(());
        }
        self.write(key, value, Deadline::Set(deadline))
    }

    /// The value of `key` if visible at `now_ms` (or at the store's own
    /// time, if later), changing nothing: no hit or miss counted, no
    /// access recorded for the eviction policy, no expired entry reclaimed.
    /// For reads served by one replica alone (ReadIndex), which must not
    /// make replicas differ.
    ///
    /// A key of another type reads as `None`, as in [`Store::get`]. Memory
    /// tier only, like [`Store::peek_value`]; [`Store::read`] reads through.
    pub fn peek(&self, key: &[u8], now_ms: u64) -> Option<&[u8]> {
        self.peek_value(key, now_ms).and_then(Value::as_str)
    }

    /// [`Store::get`] for each key, in order.
    pub fn get_many(&mut self, keys: &[&[u8]], now_ms: u64) -> Vec<Option<Vec<u8>>> {
        keys.iter()
            .map(|key| self.get(key, now_ms).map(<[u8]>::to_vec))
            .collect()
    }

    /// Sets `key` to `value`, replacing any deadline with `ttl_ms` (none:
    /// the entry persists until deleted or evicted).
    pub fn put(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        ttl_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.put_value(key, Value::Str(value), ttl_ms.map(Expiry::after), now_ms)
    }

    /// Appends `suffix` to the value of `key` (an absent key starts empty);
    /// keeps the deadline. Returns the new length of the value.
    pub fn append(&mut self, key: &[u8], suffix: &[u8], now_ms: u64) -> Result<u64, StoreError> {
        self.begin(now_ms);
        let mut value = match self.lookup(key) {
            Some(slot) => match &self.table.entry(slot).value {
                Value::Str(value) => value.clone(),
                _ => return Err(StoreError::WrongType),
            },
            None => Vec::new(),
        };
        value.extend_from_slice(suffix);
        let length = value.len() as u64;
        self.write(key, Value::Str(value), Deadline::Keep)?;
        Ok(length)
    }

    /// Changes the capacity to `capacity_bytes`, evicting (to the disk
    /// tier, if there is one) until the store fits. Returns the number of
    /// entries evicted. Deterministic like every operation: replicas that
    /// apply it at the same point evict the same entries.
    ///
    /// # Panics
    /// If `capacity_bytes` is zero (a caller's bug: a replicated command
    /// carrying it is refused before it gets here).
    pub fn set_capacity_bytes(&mut self, capacity_bytes: u64) -> u64 {
        self.config.capacity_bytes = capacity_bytes;
        let evicted = self.table.set_capacity_weight(capacity_bytes);
        self.stats.evictions += evicted;
        self.spill_evicted();
        evicted
    }

    /// Keeps the eviction policy to `revision` from the next operation on
    /// (see [`PolicyRevision`]: replicas must set it at the same point of
    /// their operations; a restored store reads as `Original` until it is
    /// set again). Changes nothing now.
    pub fn set_policy_revision(&mut self, revision: PolicyRevision) {
        self.table.set_policy_revision(revision);
    }

    /// The policy revision last set (`Original` if never).
    pub fn policy_revision(&self) -> PolicyRevision {
        self.table.policy_revision()
    }

    /// Removes `key`; returns whether it was visible.
    pub fn delete(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.begin(now_ms);
        match self.lookup_memory(key) {
            Some(slot) => {
                self.table.remove(slot);
                true
            }
            None => self.forget_on_disk(key),
        }
    }

    /// Sets `key` to `new_value` (with `ttl_ms` as in [`Store::put`]) if its
    /// current value equals `expected` (`None`: the key must be absent).
    pub fn compare_and_set(
        &mut self,
        key: &[u8],
        expected: Option<&[u8]>,
        new_value: Vec<u8>,
        ttl_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.begin(now_ms);
        let deadline = self.deadline(ttl_ms.map(Expiry::after))?;
        let current = match self.lookup(key) {
            Some(slot) => match &self.table.entry(slot).value {
                Value::Str(value) => Some(value.as_slice()),
                _ => return Err(StoreError::WrongType),
            },
            None => None,
        };
        if current != expected {
            return Err(StoreError::CasMismatch {
                current: current.map(<[u8]>::to_vec),
            });
        }
        self.write(key, Value::Str(new_value), Deadline::Set(deadline))
    }

    /// Adds `delta` to the decimal integer stored at `key` (an absent key
    /// counts as 0); keeps the deadline. Returns the new value.
    pub fn increment(&mut self, key: &[u8], delta: i64, now_ms: u64) -> Result<i64, StoreError> {
        self.begin(now_ms);
        let current = match self.lookup(key) {
            Some(slot) => match &self.table.entry(slot).value {
                Value::Str(value) => parse_integer(value)?,
                _ => return Err(StoreError::WrongType),
            },
            None => 0,
        };
        let next = current
            .checked_add(delta)
            .ok_or(StoreError::IncrementOverflow)?;
        self.write(
            key,
            Value::Str(next.to_string().into_bytes()),
            Deadline::Keep,
        )?;
        Ok(next)
    }

    /// Gives `key` a deadline `ttl_ms` from now; returns whether it was visible.
    pub fn expire(&mut self, key: &[u8], ttl_ms: u64, now_ms: u64) -> Result<bool, StoreError> {
        self.expire_with(key, Expiry::after(ttl_ms), now_ms)
    }

    /// Gives `key` the deadline `expiry`; returns whether it was visible.
    pub fn expire_with(
        &mut self,
        key: &[u8],
        expiry: Expiry,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.begin(now_ms);
        let deadline = self.deadline(Some(expiry))?;
        Ok(match self.lookup(key) {
            Some(slot) => {
                self.set_deadline(slot, deadline);
                true
            }
            None => false,
        })
    }

    /// The deadline of `key` as a write at `now_ms` would give it again
    /// (the same log-time instant and wall-clock instant): for writes that
    /// keep a key's deadline or move it to another key. `None`: absent or
    /// without a deadline.
    pub fn expiry(&mut self, key: &[u8], now_ms: u64) -> Option<Expiry> {
        self.begin(now_ms);
        let slot = self.lookup(key)?;
        let entry = self.table.entry(slot);
        entry.expire_at_ms().map(|expire_at_ms| Expiry {
            ttl_ms: expire_at_ms - self.now_ms,
            unix_ms: entry.expire_at_unix_ms(),
        })
    }

    /// [`Store::expiry`] at `now_ms` (or at the store's own time, if
    /// later), changing nothing, and telling an absent key (`None`) from
    /// one without a deadline (`Some(None)`): for reads served by one
    /// replica alone, like [`Store::peek`].
    pub fn peek_expiry(&self, key: &[u8], now_ms: u64) -> Option<Option<Expiry>> {
        let now_ms = now_ms.max(self.now_ms);
        let (expire_at_ms, expire_at_unix_ms) = self.peek_deadline(key, now_ms)?;
        Some(expire_at_ms.map(|expire_at_ms| Expiry {
            ttl_ms: expire_at_ms - now_ms,
            unix_ms: expire_at_unix_ms,
        }))
    }

    /// The deadline of `key` (log time, wall clock) if visible at `now_ms`
    /// in either tier.
    fn peek_deadline(&self, key: &[u8], now_ms: u64) -> Option<(Option<u64>, Option<i64>)> {
        match self.table.find_hashed(hash_of(key), key) {
            Some(slot) => {
                let entry = self.table.entry(slot);
                (!entry.is_expired(now_ms))
                    .then_some((entry.expire_at_ms(), entry.expire_at_unix_ms()))
            }
            None => self
                .peek_disk(key, now_ms)
                .map(|entry| (entry.expire_at_ms, entry.expire_at_unix_ms)),
        }
    }

    /// Removes the deadline of `key`; returns whether it had one.
    pub fn persist(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.begin(now_ms);
        match self.lookup(key) {
            Some(slot) if self.table.entry(slot).expire_at_ms().is_some() => {
                self.table.set_expiry(slot, None);
                true
            }
            _ => false,
        }
    }

    /// How long `key` has left.
    pub fn ttl(&mut self, key: &[u8], now_ms: u64) -> Ttl {
        self.begin(now_ms);
        match self
            .lookup(key)
            .map(|slot| self.table.entry(slot).expire_at_ms())
        {
            None => Ttl::Missing,
            Some(None) => Ttl::Persistent,
            Some(Some(expire_at_ms)) => Ttl::RemainingMs(expire_at_ms - self.now_ms),
        }
    }

    /// How long `key` has left at `now_ms` (or at the store's own time, if
    /// later), changing nothing: [`Store::ttl`] for reads served by one
    /// replica alone, like [`Store::peek`].
    pub fn peek_ttl(&self, key: &[u8], now_ms: u64) -> Ttl {
        let now_ms = now_ms.max(self.now_ms);
        match self.peek_deadline(key, now_ms) {
            None => Ttl::Missing,
            Some((None, _)) => Ttl::Persistent,
            Some((Some(expire_at_ms), _)) => Ttl::RemainingMs(expire_at_ms - now_ms),
        }
    }

    /// Visible entries for shard migration, in slot order (deterministic).
    /// Reading does not count as a hit and does not change eviction order.
    /// Memory tier only: a store with a disk tier moves as a whole
    /// ([`Store::snapshot`]).
    pub fn entries(&self, now_ms: u64) -> impl Iterator<Item = EntryView<'_>> {
        let now_ms = now_ms.max(self.now_ms);
        self.table
            .iter()
            .filter(move |entry| !entry.is_expired(now_ms))
            .map(|entry| EntryView {
                key: &entry.key,
                value: &entry.value,
                expire_at_ms: entry.expire_at_ms(),
                expire_at_unix_ms: entry.expire_at_unix_ms(),
            })
    }

    /// The visible keys of both tiers with their types, changing nothing:
    /// the memory tier's in slot order (as [`Store::entries`]), then the
    /// disk tier's, oldest first. Deterministic, like every order here.
    pub fn keys(&self, now_ms: u64) -> impl Iterator<Item = (&[u8], Kind)> + '_ {
        let now_ms = now_ms.max(self.now_ms);
        let memory = self
            .entries(now_ms)
            .map(|entry| (entry.key, entry.value.kind()));
        let disk = self
            .disk
            .iter()
            .flat_map(move |disk| disk.visible_entries(now_ms))
            .map(|(key, entry)| (key, entry.kind));
        memory.chain(disk)
    }

    /// For a read served by one replica alone whose keys may be on disk: a
    /// small store (no tier, no bound, the same time) holding copies of
    /// those of `keys` that are visible, in either tier, with their
    /// deadlines; reading it answers as reading this store would.
    /// `Ok(None)` when none of `keys` is on disk (read this store itself:
    /// no copy is made, and always so without a tier). Changes nothing.
    pub fn read_view<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        now_ms: u64,
    ) -> Result<Option<Store>, StoreError> {
        let Some(disk) = &self.disk else {
            return Ok(None);
        };
        let now_ms = now_ms.max(self.now_ms);
        let keys: Vec<&[u8]> = keys.into_iter().collect();
        if !keys.iter().any(|key| disk.visible(key, now_ms).is_some()) {
            return Ok(None);
        }
        let mut view = Store::new(StoreConfig::new(u64::MAX).with_policy(self.config.policy));
        for key in keys {
            let (value, expire_at_ms, expire_at_unix_ms) =
                match self.table.find_hashed(hash_of(key), key) {
                    Some(slot) => {
                        let entry = self.table.entry(slot);
                        if entry.is_expired(now_ms) {
                            continue;
                        }
                        (
                            Cow::Borrowed(&entry.value),
                            entry.expire_at_ms(),
                            entry.expire_at_unix_ms(),
                        )
                    }
                    None => {
                        let Some(entry) = disk.visible(key, now_ms) else {
                            continue;
                        };
                        let value = match disk.read(key, now_ms) {
                            Some(Ok(value)) => value,
                            Some(Err(error)) => return Err(StoreError::Disk(error)),
                            None => continue,
                        };
                        (
                            Cow::Owned(value),
                            entry.expire_at_ms,
                            entry.expire_at_unix_ms,
                        )
                    }
                };
            let entry = EntryView {
                key,
                value: &value,
                expire_at_ms,
                expire_at_unix_ms,
            };
            view.import(entry, now_ms)?;
        }
        Ok(Some(view))
    }

    /// Writes an entry received by migration, keeping its absolute deadline.
    /// An entry whose deadline has passed is dropped (returns `Ok(false)`).
    pub fn import(&mut self, entry: EntryView<'_>, now_ms: u64) -> Result<bool, StoreError> {
        self.begin(now_ms);
        if entry
            .expire_at_ms
            .is_some_and(|expire_at_ms| self.now_ms >= expire_at_ms)
        {
            return Ok(false);
        }
        let deadline = entry.expire_at_ms.map(|at_ms| At {
            at_ms,
            unix_ms: entry.expire_at_unix_ms,
        });
        self.write(entry.key, entry.value.clone(), Deadline::Set(deadline))?;
        Ok(true)
    }

    /// Checks every structural invariant in O(n) (for tests).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.table.check_invariants()?;
        for entry in self.table.iter() {
            entry
                .value
                .check_invariants()
                .map_err(|reason| format!("entry {:?}: {reason}", entry.key))?;
            if entry.value.is_empty_collection() {
                return Err(format!("entry {:?}: an empty collection", entry.key));
            }
            if entry.weight != entry_weight_bytes(&entry.key, &entry.value) {
                return Err(format!(
                    "entry {:?}: weight is not key + value + overhead",
                    entry.key
                ));
            }
        }
        if let Some(disk) = &self.disk {
            disk.check_invariants()?;
            if self.config.disk != Some(disk.config()) {
                return Err("disk tier config differs from the store's".to_owned());
            }
            for entry in self.table.iter() {
                if disk.contains(&entry.key) {
                    return Err(format!("key {:?} is in both tiers", entry.key));
                }
            }
        } else if self.config.disk.is_some() {
            return Err("a disk tier is configured but absent".to_owned());
        }
        Ok(())
    }

    /// Advances logical time and reclaims a bounded number of expired
    /// entries (per tier); lets the disk tier collect a bounded amount of
    /// garbage.
    ///
    /// The disk tier's parts here and below sit behind an inlined
    /// `self.disk.is_some()` test, so a store without a tier pays a
    /// branch, not a call.
    #[inline]
    fn begin(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.stats.expirations += self
            .table
            .reclaim_expired(self.now_ms, self.config.reclaim_per_op);
        if self.disk.is_some() {
            self.begin_disk();
        }
    }

    #[inline(never)]
    fn begin_disk(&mut self) {
        if let Some(disk) = &mut self.disk {
            disk.reclaim_expired(self.now_ms, self.config.reclaim_per_op);
            let collected = disk.collect_garbage();
            self.note_disk(collected);
        }
    }

    /// Records the first disk failure (see [`Store::disk_fault`]).
    fn note_disk(&mut self, outcome: Result<(), DiskError>) {
        if let Err(error) = outcome {
            self.disk_fault.get_or_insert(error);
        }
    }

    /// The slot of `key` if it is visible in memory; an expired entry found
    /// on the way is removed (one removal: bounded work).
    #[inline]
    fn lookup_memory(&mut self, key: &[u8]) -> Option<SlotId> {
        let slot = self.table.find_hashed(hash_of(key), key)?;
        if self.table.entry(slot).is_expired(self.now_ms) {
            self.table.remove(slot);
            self.stats.expirations += 1;
            return None;
        }
        Some(slot)
    }

    /// The slot of `key` if it is visible in either tier; a key on disk is
    /// brought back into memory first.
    #[inline]
    fn lookup(&mut self, key: &[u8]) -> Option<SlotId> {
        match self.lookup_memory(key) {
            None if self.disk.is_some() => self.promote_from_disk(key),
            found => found,
        }
    }

    /// [`Store::lookup`] counting the disk tier's read hits and misses.
    #[inline]
    fn lookup_counted(&mut self, key: &[u8]) -> Option<SlotId> {
        if let Some(slot) = self.lookup_memory(key) {
            return Some(slot);
        }
        self.disk.as_ref()?;
        let slot = self.promote_from_disk(key);
        if let Some(disk) = &mut self.disk {
            let stats = disk.stats_mut();
            match slot {
                Some(_) => stats.hits += 1,
                None => stats.misses += 1,
            }
        }
        slot
    }

    /// Moves `key` from the disk tier into memory if it is visible there,
    /// with its deadline; the memory tier may evict others to disk. A value
    /// the disk cannot give back is a fault, and the key reads as absent
    /// on this replica (its logical state still moves as the others' do).
    #[inline(never)]
    fn promote_from_disk(&mut self, key: &[u8]) -> Option<SlotId> {
        let disk = self.disk.as_mut()?;
        let (value, entry) = match disk.take(key, self.now_ms)? {
            Ok(taken) => taken,
            Err(error) => {
                self.disk_fault.get_or_insert(error);
                return None;
            }
        };
        disk.stats_mut().promotions += 1;
        let weight = entry_weight_bytes(key, &value);
        let (slot, evicted) = self
            .table
            .insert(
                Box::from(key),
                hash_of(key),
                value,
                weight,
                entry.expire_at_ms,
            )
            .unwrap_or_else(|error| {
                panic!(
                    "key {key:?} left memory at {} bytes but does not fit back: {error:?}",
                    entry.weight
                )
            });
        self.table.set_expiry_unix(slot, entry.expire_at_unix_ms);
        self.stats.evictions += evicted;
        self.spill_evicted();
        Some(slot)
    }

    /// Removes `key`'s disk copy; returns whether it was visible.
    fn forget_on_disk(&mut self, key: &[u8]) -> bool {
        let now_ms = self.now_ms;
        let Some(disk) = &mut self.disk else {
            return false;
        };
        match disk.remove(key) {
            Some(entry) if entry.is_expired(now_ms) => {
                disk.stats_mut().expirations += 1;
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Hands what the memory tier just evicted to the disk tier, in
    /// eviction order (expired entries are dropped, not written).
    #[inline]
    fn spill_evicted(&mut self) {
        if self.disk.is_some() {
            self.spill_evicted_to_disk();
        }
    }

    #[inline(never)]
    fn spill_evicted_to_disk(&mut self) {
        let Some(disk) = &mut self.disk else {
            return;
        };
        let mut outcome = Ok(());
        for entry in self.table.take_evicted() {
            if entry.is_expired(self.now_ms) {
                continue;
            }
            let (expire_at_ms, expire_at_unix_ms) =
                (entry.expire_at_ms(), entry.expire_at_unix_ms());
            let (_, written) = disk.insert(
                entry.key.into_vec(),
                &entry.value,
                expire_at_ms,
                expire_at_unix_ms,
            );
            outcome = outcome.and(written);
        }
        self.note_disk(outcome);
    }

    fn deadline(&self, expiry: Option<Expiry>) -> Result<Option<At>, StoreError> {
        match expiry {
            Some(Expiry { ttl_ms: 0, .. }) => Err(StoreError::ZeroTtl),
            Some(Expiry { ttl_ms, unix_ms }) => Ok(Some(At {
                at_ms: self.now_ms.saturating_add(ttl_ms),
                unix_ms,
            })),
            None => Ok(None),
        }
    }

    fn set_deadline(&mut self, slot: SlotId, deadline: Option<At>) {
        self.table
            .set_expiry(slot, deadline.map(|deadline| deadline.at_ms));
        self.table
            .set_expiry_unix(slot, deadline.and_then(|deadline| deadline.unix_ms));
    }

    /// Inserts or overwrites `key` after checking that it fits; the written
    /// entry is never evicted by its own write.
    ///
    /// A key only on disk is not read back: its disk copy is dropped. (Writes
    /// that keep the old deadline, `Deadline::Keep`, looked the key up
    /// first, which brought it back.)
    fn write(&mut self, key: &[u8], value: Value, deadline: Deadline) -> Result<(), StoreError> {
        let weight = entry_weight_bytes(key, &value);
        let resident = self.lookup_memory(key);
        if resident.is_none() && self.disk.is_some() {
            // Checked here too so that a refused write keeps the disk copy.
            self.table.check_weight(weight).map_err(too_large)?;
            self.forget_on_disk(key);
        }
        let evicted = match resident {
            Some(slot) => {
                let evicted = self
                    .table
                    .set_value(slot, value, weight)
                    .map_err(too_large)?;
                if let Deadline::Set(deadline) = deadline {
                    self.set_deadline(slot, deadline);
                }
                evicted
            }
            None => {
                let deadline = match deadline {
                    Deadline::Set(deadline) => deadline,
                    Deadline::Keep => None,
                };
                let key_hash = hash_of(key);
                let (slot, evicted) = self
                    .table
                    .insert(
                        Box::from(key),
                        key_hash,
                        value,
                        weight,
                        deadline.map(|deadline| deadline.at_ms),
                    )
                    .map_err(too_large)?;
                self.table
                    .set_expiry_unix(slot, deadline.and_then(|deadline| deadline.unix_ms));
                evicted
            }
        };
        self.stats.evictions += evicted;
        self.spill_evicted();
        Ok(())
    }
}

impl Store {
    /// Inserts a key known to be absent (after [`Store::lookup`]).
    fn insert_new(
        &mut self,
        key: &[u8],
        value: Value,
        expire_at_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let weight = entry_weight_bytes(key, &value);
        let (_, evicted) = self
            .table
            .insert(Box::from(key), hash_of(key), value, weight, expire_at_ms)
            .map_err(too_large)?;
        self.stats.evictions += evicted;
        self.spill_evicted();
        Ok(())
    }
}

/// What a write does to the entry's deadline.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    Set(Option<At>),
    Keep,
}

/// An absolute deadline: log time, and the wall-clock instant named for it.
#[derive(Debug, Clone, Copy)]
struct At {
    at_ms: u64,
    unix_ms: Option<i64>,
}

fn too_large(error: TooHeavy) -> StoreError {
    StoreError::TooLarge {
        weight_bytes: error.weight,
        capacity_bytes: error.capacity_weight,
    }
}

/// Parses a value written by `increment` (or by a client): ASCII decimal,
/// optional leading '-', nothing else.
fn parse_integer(value: &[u8]) -> Result<i64, StoreError> {
    let text = std::str::from_utf8(value).map_err(|_| StoreError::NotAnInteger)?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(StoreError::NotAnInteger);
    }
    text.parse::<i64>().map_err(|_| StoreError::NotAnInteger)
}
