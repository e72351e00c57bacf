//! L3: the disk tier, a log-structured store of entries the memory tier
//! evicted.
//!
//! ```text
//!   memory tier evicts ──► DiskTier::insert ──► append record to the active segment
//!                                   │               seg-0000000003.log
//!                 index: key ─► DiskEntry { seq, weight, deadline, kind,
//!                                           location: (segment, offset, length) }
//!                 fifo:  seq ─► key            (oldest first: disk eviction order)
//!                 expiry: (expire_at_ms, seq)  (soonest first: reclaim order)
//!   an access of a key on disk ◄── DiskTier::take (read, verify, forget)
//! ```
//!
//! # Two kinds of state
//!
//! **Logical state** is replicated and must be identical on every
//! replica: which keys the tier holds, each one's sequence number, weight,
//! deadline and type, the FIFO order, the byte total and the counters. It
//! is changed only by the store's operations, in log order, and depends
//! only on them: a sequence number comes from a counter, a weight is
//! [`super::entry_weight_bytes`] (the memory tier's formula: key + value
//! bytes + a fixed overhead, never a file size), eviction takes the lowest
//! sequence number (FIFO, oldest first) until the byte total fits the
//! capacity, and reclaim takes the soonest deadline. Snapshots carry this
//! state (and the values, which are logical state too).
//!
//! **Physical state** is local: segment ids, offsets, which segment a
//! record landed in after a restore or a collection. Nothing logical reads
//! it; two replicas can lay the same entries out differently (one restored
//! from a snapshot, one not) and still answer the same. That is why the
//! segment garbage collector is free to move records.
//!
//! # Files
//!
//! A directory of append-only segment files `seg-<id>.log`. A record is
//!
//! ```text
//!   crc32 (u32 LE) | key length (u32 LE) | value length (u32 LE) | key | value
//! ```
//!
//! The value is the entry's [`Value`] in the shared codec (bincode 2). The
//! checksum is CRC-32 (IEEE, `crc32fast`) over everything after it: both
//! lengths, the key and the value. A read takes the location from the index,
//! reads exactly that many bytes, and checks the checksum, both lengths,
//! that the key is the one asked for, that the value decodes and that its
//! invariants hold. Any failure is a [`DiskError`], never a panic and never
//! another key's or a damaged value.
//!
//! A segment is sealed when the next record would take it past
//! [`DiskConfig::segment_bytes`] (a record larger than that gets a
//! segment of its own). A sealed segment whose live bytes fall below
//! [`GC_LIVE_PERCENT`] of its bytes is collected: its live records are
//! copied to the active segment and the file deleted; one segment per
//! operation, so the work of an operation stays bounded. A segment with no
//! live record left is deleted at once (FIFO eviction empties the oldest
//! segments first, so most segments die this way, without copying).
//!
//! Nothing is fsynced and nothing is read back at start: the files are a
//! cache of state that the snapshot and the log already make durable.
//! [`DiskTier::open`] deletes any segment files it finds (a restart
//! rebuilds the tier from a snapshot, [`DiskTier::restore`]).
//!
//! # Bounds
//!
//! - Logical bytes (sum of weights) at most [`DiskConfig::capacity_bytes`]
//!   after every operation.
//! - Physical bytes: every sealed segment is at least [`GC_LIVE_PERCENT`]
//!   live or queued for collection, so about `2 × live record bytes + one
//!   segment` once the queue drains (one segment per operation).
//! - Work per operation: at most one segment collected, so at most
//!   [`DiskConfig::segment_bytes`] copied (a latency spike of that size,
//!   not growth).
//! - Memory: the index keeps each entry's key twice (by key, and in FIFO
//!   order) and about 100 bytes of metadata; values stay on disk. Since every weight counts the key plus
//!   [`super::ENTRY_OVERHEAD_BYTES`], the keys in memory are bounded by the
//!   disk capacity.
//! - Buffers: a read or a copy allocates one record, whose length the index
//!   recorded at write time (at most one entry's weight plus the header);
//!   writes go straight to the file, with no buffer of our own.
//!
//! # Failures
//!
//! An IO error or a damaged record costs the value, never the logical
//! state: the entry's location is cleared (it stays in the index with its
//! weight, sequence number and deadline, so the replica's logical state
//! still equals the others'), and reading it gives [`DiskError::Lost`] or
//! the error itself. The store turns that into a fault the caller must act
//! on (see the store docs).
//!
//! # Copies for snapshots
//!
//! A replicated state machine snapshots a *copy* of its state (taken under
//! its lock, encoded later on another thread, while the original goes on
//! applying). `Clone` gives such a copy: the logical state (index, FIFO,
//! deadlines, counters) is copied, and the segments' bookkeeping with
//! their open files, shared (`Arc<File>`). The copy is **read-only**:
//! every operation that would change it panics (`assert_writable`), so it
//! cannot drift from the original without anyone noticing; a read-only
//! copy never deletes a file or its directory. Its reads stay right
//! whatever the original does afterwards:
//!
//! - an append goes past the end of the active segment, beyond every
//!   offset the copy's index names (offsets are never reused; a failed
//!   append still advances them);
//! - nothing rewrites bytes in place: the collector copies records to the
//!   active segment and deletes the old file;
//! - a deleted file (collected, emptied, or the whole directory dropped)
//!   stays readable through a handle opened before (Unix unlinks the name,
//!   not the inode), and the copy holds one for every segment it names;
//! - [`DiskTier::open`] in the same directory only deletes names.
//!
//! So a copy's [`DiskTier::snapshot`] equals the snapshot the original
//! would have produced when copied (tested: `clone_snapshots_what_the_original_held`).
//! The price: segment files the original dropped keep their disk space
//! until the copy is dropped (for a snapshot, the time to encode it).
//!
//! # Local measurements
//!
//! [`DiskTier::read_stats`] counts the values read back from the files
//! and sums the time the reads took (a monotonic clock read around each
//! read: local, for metrics, never part of the logical state).
//!
//! # Not done
//!
//! IO is synchronous `std::fs` on the caller's thread, outside the
//! simulation seam (madsim does not see it); reads use Unix positional
//! reads. There is no read cache of its own (the OS page cache serves
//! repeated reads).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::value::{Kind, Value};

/// Bytes of a record before its key: checksum and two lengths.
pub const RECORD_HEADER_BYTES: u64 = 12;

/// Default size at which a segment is sealed.
pub const SEGMENT_BYTES_DEFAULT: u64 = 4 << 20;

/// A sealed segment with fewer live bytes than this share of its bytes
/// (in percent) is collected.
pub const GC_LIVE_PERCENT: u64 = 50;

/// Sealed segments collected per operation at most.
pub const GC_SEGMENTS_PER_OP: usize = 1;

/// The replicated part of the tier's configuration (the directory is
/// local and given separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskConfig {
    /// Sum of the weights of the entries on disk never exceeds this after an
    /// operation.
    pub capacity_bytes: u64,
    /// A segment is sealed before a record would take it past this.
    pub segment_bytes: u64,
}

impl DiskConfig {
    /// A tier of `capacity_bytes` with the default segment size.
    pub fn new(capacity_bytes: u64) -> DiskConfig {
        DiskConfig {
            capacity_bytes,
            segment_bytes: SEGMENT_BYTES_DEFAULT,
        }
    }
}

/// Why the tier could not give a value back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiskError {
    #[error("disk tier: {operation} {path}: {detail}")]
    Io {
        operation: &'static str,
        path: String,
        detail: String,
    },
    #[error("disk tier: damaged record in segment {segment} at offset {offset}: {reason}")]
    Corrupt {
        segment: u64,
        offset: u64,
        reason: String,
    },
    #[error("disk tier: the value was lost by an earlier disk failure")]
    Lost,
}

/// Where a record lies (physical, local).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    segment: u64,
    offset: u64,
    length_bytes: u64,
}

/// What the tier knows about one entry, in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskEntry {
    /// Insertion order: eviction takes the lowest.
    pub seq: u64,
    /// [`super::entry_weight_bytes`] of the entry.
    pub weight: u64,
    pub expire_at_ms: Option<u64>,
    pub expire_at_unix_ms: Option<i64>,
    pub kind: Kind,
    /// `None` once the value is lost to a disk failure.
    location: Option<Location>,
}

impl DiskEntry {
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms
            .is_some_and(|expire_at_ms| now_ms >= expire_at_ms)
    }
}

/// The tier's replicated counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskStats {
    /// Entries written to the tier (memory evictions that were kept).
    pub writes: u64,
    /// Mutating reads that found the key on disk (and brought it back).
    pub hits: u64,
    /// Mutating reads that missed memory and disk.
    pub misses: u64,
    /// Entries brought back into memory by any access.
    pub promotions: u64,
    /// Entries dropped by FIFO eviction (or too heavy for the tier).
    pub evictions: u64,
    /// Expired entries reclaimed from the tier.
    pub expirations: u64,
}

/// An entry as a snapshot carries it: logical state plus the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRecord {
    pub seq: u64,
    pub key: Vec<u8>,
    pub value: Value,
    pub expire_at_ms: Option<u64>,
    pub expire_at_unix_ms: Option<i64>,
}

/// The tier's whole logical state, as a snapshot carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSnapshot {
    pub config: DiskConfig,
    pub next_seq: u64,
    pub stats: DiskStats,
    /// In sequence order.
    pub records: Vec<DiskRecord>,
}

/// Bookkeeping of one segment file (physical).
///
/// `Clone` shares the open file (see "Copies for snapshots" in the module
/// docs).
#[derive(Debug, Clone)]
struct Segment {
    file: Arc<File>,
    /// Bytes written to the file.
    written_bytes: u64,
    /// Bytes of records the index still points at.
    live_bytes: u64,
    /// Sequence numbers of the live records in it.
    live: BTreeSet<u64>,
}

/// The disk tier. See the module docs.
#[derive(Debug)]
pub struct DiskTier {
    config: DiskConfig,
    directory: PathBuf,
    // Logical state.
    index: BTreeMap<Vec<u8>, DiskEntry>,
    fifo: BTreeMap<u64, Vec<u8>>,
    expiry: BTreeSet<(u64, u64)>,
    next_seq: u64,
    weight_total: u64,
    stats: DiskStats,
    // Physical state.
    segments: BTreeMap<u64, Segment>,
    active_segment: Option<u64>,
    next_segment_id: u64,
    /// Sealed segments below the live threshold, collected in id order.
    gc_queue: BTreeSet<u64>,
    /// A copy made by `Clone` for a snapshot: it reads, never writes.
    read_only: bool,
    /// Delete `directory` when this (writable) tier is dropped.
    owns_directory: bool,
    /// Local measurements of the reads of values (not logical state).
    reads: ReadMeter,
}

/// Count and summed duration of the value reads a tier made (local,
/// physical: never part of the logical state or of snapshots).
#[derive(Debug, Default)]
struct ReadMeter {
    count: AtomicU64,
    time_us_total: AtomicU64,
}

/// What [`DiskTier::read_stats`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskReadStats {
    /// Values read back from the segment files (promotions, read-through
    /// reads, copies by the collector, snapshots).
    pub reads: u64,
    /// Time those reads took, summed, in microseconds.
    pub read_time_us_total: u64,
}

impl DiskTier {
    /// An empty tier in `directory` (created if missing). Segment files
    /// already there are deleted: they belong to an earlier run, whose
    /// state comes back from a snapshot, not from them.
    ///
    /// # Panics
    /// If a capacity is zero (a configuration bug).
    pub fn open(directory: &Path, config: DiskConfig) -> Result<DiskTier, DiskError> {
        assert!(
            config.capacity_bytes > 0,
            "disk capacity_bytes must be positive"
        );
        assert!(
            config.segment_bytes > 0,
            "disk segment_bytes must be positive"
        );
        fs::create_dir_all(directory).map_err(|error| io_error("create", directory, &error))?;
        let listing =
            fs::read_dir(directory).map_err(|error| io_error("list", directory, &error))?;
        for item in listing {
            let item = item.map_err(|error| io_error("list", directory, &error))?;
            let path = item.path();
            if segment_id_of(&path).is_some() {
                fs::remove_file(&path).map_err(|error| io_error("remove", &path, &error))?;
            }
        }
        Ok(DiskTier {
            config,
            directory: directory.to_path_buf(),
            index: BTreeMap::new(),
            fifo: BTreeMap::new(),
            expiry: BTreeSet::new(),
            next_seq: 0,
            weight_total: 0,
            stats: DiskStats::default(),
            segments: BTreeMap::new(),
            active_segment: None,
            next_segment_id: 0,
            gc_queue: BTreeSet::new(),
            read_only: false,
            owns_directory: false,
            reads: ReadMeter::default(),
        })
    }

    /// Makes dropping this tier delete its directory and everything in it
    /// (for callers that give each tier a directory of its own).
    pub fn delete_directory_on_drop(&mut self) {
        self.assert_writable("delete_directory_on_drop");
        self.owns_directory = true;
    }

    /// Whether this is a read-only copy made by `Clone`.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The reads of values this tier made, and their summed time (local).
    pub fn read_stats(&self) -> DiskReadStats {
        DiskReadStats {
            reads: self.reads.count.load(Ordering::Relaxed),
            read_time_us_total: self.reads.time_us_total.load(Ordering::Relaxed),
        }
    }

    /// A tier in `directory` holding exactly `snapshot`'s logical state;
    /// stale files are deleted and the records written anew (in sequence
    /// order, so physically compact).
    pub fn restore(directory: &Path, snapshot: DiskSnapshot) -> Result<DiskTier, DiskError> {
        let mut tier = DiskTier::open(directory, snapshot.config)?;
        tier.next_seq = snapshot.next_seq;
        tier.stats = snapshot.stats;
        for record in snapshot.records {
            let weight = super::entry_weight_bytes(&record.key, &record.value);
            let entry = DiskEntry {
                seq: record.seq,
                weight,
                expire_at_ms: record.expire_at_ms,
                expire_at_unix_ms: record.expire_at_unix_ms,
                kind: record.value.kind(),
                location: None,
            };
            tier.link(record.key.clone(), entry);
            tier.append(&record.key, &record.value)?;
        }
        Ok(tier)
    }

    /// The tier's logical state with every value read back; fails if any
    /// value cannot be read (a damaged tier cannot be copied; its replica
    /// is rebuilt from another's snapshot instead).
    pub fn snapshot(&self) -> Result<DiskSnapshot, DiskError> {
        let mut records = Vec::with_capacity(self.fifo.len());
        for key in self.fifo.values() {
            let entry = self.entry_of(key);
            let value = self.read_value(key, entry)?;
            records.push(DiskRecord {
                seq: entry.seq,
                key: key.clone(),
                value,
                expire_at_ms: entry.expire_at_ms,
                expire_at_unix_ms: entry.expire_at_unix_ms,
            });
        }
        Ok(DiskSnapshot {
            config: self.config,
            next_seq: self.next_seq,
            stats: self.stats,
            records,
        })
    }

    pub fn config(&self) -> DiskConfig {
        self.config
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Logical bytes held (sum of weights).
    pub fn used_bytes(&self) -> u64 {
        self.weight_total
    }

    /// Entries held, expired ones not yet reclaimed included.
    pub fn len(&self) -> u64 {
        self.index.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn stats(&self) -> DiskStats {
        self.stats
    }

    pub(super) fn stats_mut(&mut self) -> &mut DiskStats {
        self.assert_writable("stats_mut");
        &mut self.stats
    }

    /// Bytes in segment files (physical; for tests and operators, never for
    /// accounting).
    pub fn file_bytes(&self) -> u64 {
        self.segments
            .values()
            .map(|segment| segment.written_bytes)
            .sum()
    }

    /// Segment files in use.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The entry for `key` if the tier holds it and it is visible at `now_ms`.
    pub fn visible(&self, key: &[u8], now_ms: u64) -> Option<&DiskEntry> {
        self.index
            .get(key)
            .filter(|entry| !entry.is_expired(now_ms))
    }

    /// The entries visible at `now_ms`, oldest first.
    pub fn visible_entries(&self, now_ms: u64) -> impl Iterator<Item = (&[u8], &DiskEntry)> + '_ {
        self.fifo
            .values()
            .map(|key| (key.as_slice(), self.entry_of(key)))
            .filter(move |(_, entry)| !entry.is_expired(now_ms))
    }

    /// Whether the tier holds `key` at all (expired or not).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.index.contains_key(key)
    }

    /// The value of `key` if visible at `now_ms`, changing nothing.
    pub fn read(&self, key: &[u8], now_ms: u64) -> Option<Result<Value, DiskError>> {
        let entry = self.visible(key, now_ms)?;
        Some(self.read_value(key, entry))
    }

    /// Stores an entry the memory tier evicted (replacing any copy of the
    /// key), then evicts the oldest entries until the capacity holds. An
    /// entry heavier than the whole tier is dropped (counted as an
    /// eviction). Returns the number evicted.
    ///
    /// The logical state changes the same way whether or not the write
    /// reaches the file; a failed write is returned after the fact, with
    /// the entry kept as lost.
    pub fn insert(
        &mut self,
        key: Vec<u8>,
        value: &Value,
        expire_at_ms: Option<u64>,
        expire_at_unix_ms: Option<i64>,
    ) -> (u64, Result<(), DiskError>) {
        self.assert_writable("insert");
        self.remove(&key);
        let weight = super::entry_weight_bytes(&key, value);
        if weight > self.config.capacity_bytes {
            self.stats.evictions += 1;
            return (1, Ok(()));
        }
        let entry = DiskEntry {
            seq: self.next_seq,
            weight,
            expire_at_ms,
            expire_at_unix_ms,
            kind: value.kind(),
            location: None,
        };
        self.next_seq += 1;
        self.stats.writes += 1;
        self.link(key.clone(), entry);
        let written = self.append(&key, value);
        let evicted = self.evict_to_fit();
        (evicted, written.and(self.collect_garbage()))
    }

    /// Removes `key` and gives back its value if it was visible at
    /// `now_ms` (an expired copy is removed and counted, giving `None`).
    pub fn take(
        &mut self,
        key: &[u8],
        now_ms: u64,
    ) -> Option<Result<(Value, DiskEntry), DiskError>> {
        self.assert_writable("take");
        let entry = self.index.get(key)?;
        if entry.is_expired(now_ms) {
            self.remove(key);
            self.stats.expirations += 1;
            return None;
        }
        let read = self.read_value(key, entry);
        let entry = self.remove(key).unwrap_or_else(|| {
            panic!("disk tier: key {key:?} vanished between lookup and removal")
        });
        Some(read.map(|value| (value, entry)))
    }

    /// Forgets `key` (deleted or overwritten above); returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<DiskEntry> {
        self.assert_writable("remove");
        let (key, entry) = self.index.remove_entry(key)?;
        let removed = self.fifo.remove(&entry.seq);
        assert!(
            removed.as_deref() == Some(key.as_slice()),
            "disk tier: seq {} of key {key:?} missing from the FIFO",
            entry.seq
        );
        if let Some(expire_at_ms) = entry.expire_at_ms {
            self.expiry.remove(&(expire_at_ms, entry.seq));
        }
        self.weight_total -= entry.weight;
        if let Some(location) = entry.location {
            self.release(location, entry.seq);
        }
        Some(entry)
    }

    /// Removes up to `reclaim_max` entries whose deadline is at or before
    /// `now_ms`, soonest first; returns how many.
    pub fn reclaim_expired(&mut self, now_ms: u64, reclaim_max: u64) -> u64 {
        self.assert_writable("reclaim_expired");
        let mut reclaimed = 0;
        while reclaimed < reclaim_max {
            let Some(&(expire_at_ms, seq)) = self.expiry.first() else {
                break;
            };
            if expire_at_ms > now_ms {
                break;
            }
            let key = self.fifo[&seq].clone();
            self.remove(&key);
            reclaimed += 1;
        }
        self.stats.expirations += reclaimed;
        reclaimed
    }

    /// Collects up to [`GC_SEGMENTS_PER_OP`] queued segments. A record that
    /// cannot be read back is kept as lost and its error returned after the
    /// rest is done.
    pub fn collect_garbage(&mut self) -> Result<(), DiskError> {
        self.assert_writable("collect_garbage");
        let mut outcome = Ok(());
        for _ in 0..GC_SEGMENTS_PER_OP {
            let Some(segment_id) = self.gc_queue.pop_first() else {
                break;
            };
            let live: Vec<u64> = self.segments[&segment_id].live.iter().copied().collect();
            for seq in live {
                let key = self.fifo[&seq].clone();
                let entry = self.entry_of(&key).clone();
                let copied = self.read_value(&key, &entry).and_then(|value| {
                    self.detach(&key);
                    self.append(&key, &value)
                });
                if let Err(error) = copied {
                    self.detach(&key);
                    outcome = outcome.and(Err(error));
                }
            }
            // Every record left, so `release` deleted the file.
            debug_assert!(!self.segments.contains_key(&segment_id));
        }
        outcome
    }

    /// Checks the logical and physical bookkeeping in O(n) (for tests).
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.weight_total > self.config.capacity_bytes {
            return Err(format!(
                "disk tier holds {} bytes, over its capacity of {}",
                self.weight_total, self.config.capacity_bytes
            ));
        }
        let mut weight_total = 0;
        let mut deadlines = 0;
        let mut live_by_segment: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
        for (key, entry) in &self.index {
            weight_total += entry.weight;
            if self.fifo.get(&entry.seq) != Some(key) {
                return Err(format!(
                    "disk key {key:?}: not in the FIFO at {}",
                    entry.seq
                ));
            }
            if entry.seq >= self.next_seq {
                return Err(format!(
                    "disk key {key:?}: seq {} not yet issued",
                    entry.seq
                ));
            }
            if let Some(expire_at_ms) = entry.expire_at_ms {
                deadlines += 1;
                if !self.expiry.contains(&(expire_at_ms, entry.seq)) {
                    return Err(format!("disk key {key:?}: deadline not indexed"));
                }
            }
            if let Some(location) = entry.location {
                let live = live_by_segment.entry(location.segment).or_default();
                live.0 += location.length_bytes;
                live.1 += 1;
                match self.segments.get(&location.segment) {
                    Some(segment) if segment.live.contains(&entry.seq) => {}
                    _ => return Err(format!("disk key {key:?}: segment does not list it")),
                }
            }
        }
        if weight_total != self.weight_total
            || self.fifo.len() != self.index.len()
            || deadlines != self.expiry.len()
        {
            return Err("disk tier accounting out of step with its entries".to_owned());
        }
        for (id, segment) in &self.segments {
            let (live_bytes, live_records) = live_by_segment.get(id).copied().unwrap_or_default();
            if segment.live_bytes != live_bytes || segment.live.len() != live_records {
                return Err(format!("segment {id}: live bytes or records miscounted"));
            }
            if segment.live_bytes > segment.written_bytes {
                return Err(format!("segment {id}: more live than written bytes"));
            }
        }
        Ok(())
    }

    /// # Panics
    /// On a read-only copy: a change there would make it differ, silently,
    /// from the tier it copies (a bug in the caller).
    fn assert_writable(&self, operation: &str) {
        assert!(
            !self.read_only,
            "disk tier {}: {operation} on a read-only copy (a copy made for a snapshot only reads)",
            self.directory.display()
        );
    }

    /// Adds an entry to the logical index (no file work).
    fn link(&mut self, key: Vec<u8>, entry: DiskEntry) {
        self.weight_total += entry.weight;
        if let Some(expire_at_ms) = entry.expire_at_ms {
            self.expiry.insert((expire_at_ms, entry.seq));
        }
        let previous_seq = self.fifo.insert(entry.seq, key.clone());
        assert!(
            previous_seq.is_none(),
            "disk tier: seq {} issued twice",
            entry.seq
        );
        let previous = self.index.insert(key, entry);
        assert!(previous.is_none(), "disk tier: key linked twice");
    }

    fn entry_of(&self, key: &[u8]) -> &DiskEntry {
        match self.index.get(key) {
            Some(entry) => entry,
            None => panic!("disk tier: key {key:?} is in the FIFO but not the index"),
        }
    }

    /// Evicts the oldest entries until the capacity holds.
    fn evict_to_fit(&mut self) -> u64 {
        let mut evicted = 0;
        while self.weight_total > self.config.capacity_bytes {
            let Some((_, key)) = self.fifo.first_key_value() else {
                panic!(
                    "disk tier over capacity ({} bytes) with nothing to evict",
                    self.weight_total
                );
            };
            let key = key.clone();
            self.remove(&key);
            evicted += 1;
        }
        self.stats.evictions += evicted;
        evicted
    }

    /// Writes `key`'s record to the active segment and points its entry at
    /// it; on failure the entry stays lost.
    fn append(&mut self, key: &[u8], value: &Value) -> Result<(), DiskError> {
        let record = encode_record(key, value)?;
        let length_bytes = record.len() as u64;
        let segment_id = self.segment_for(length_bytes)?;
        let path = self.segment_path(segment_id);
        let seq = self.entry_of(key).seq;
        let segment = self
            .segments
            .get_mut(&segment_id)
            .unwrap_or_else(|| panic!("active segment {segment_id} has no bookkeeping"));
        let offset = segment.written_bytes;
        // Counted as written even if the write fails part way: the bytes
        // may be in the file, and later offsets must not overlap them.
        segment.written_bytes += length_bytes;
        (&*segment.file)
            .write_all(&record)
            .map_err(|error| io_error("append to", &path, &error))?;
        segment.live_bytes += length_bytes;
        segment.live.insert(seq);
        let location = Location {
            segment: segment_id,
            offset,
            length_bytes,
        };
        match self.index.get_mut(key) {
            Some(entry) => entry.location = Some(location),
            None => panic!("disk tier: appended key {key:?} is not indexed"),
        }
        Ok(())
    }

    /// The active segment, sealed and replaced first if a record of
    /// `length_bytes` would take it past the segment size.
    fn segment_for(&mut self, length_bytes: u64) -> Result<u64, DiskError> {
        if let Some(active) = self.active_segment {
            let written = self.segments[&active].written_bytes;
            if written == 0 || written + length_bytes <= self.config.segment_bytes {
                return Ok(active);
            }
            self.active_segment = None;
            self.queue_if_sparse(active);
        }
        let segment_id = self.next_segment_id;
        self.next_segment_id += 1;
        let path = self.segment_path(segment_id);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|error| io_error("create", &path, &error))?;
        self.segments.insert(
            segment_id,
            Segment {
                file: Arc::new(file),
                written_bytes: 0,
                live_bytes: 0,
                live: BTreeSet::new(),
            },
        );
        self.active_segment = Some(segment_id);
        Ok(segment_id)
    }

    /// Clears an entry's location, releasing its record (the entry stays).
    fn detach(&mut self, key: &[u8]) {
        let Some(entry) = self.index.get_mut(key) else {
            panic!("disk tier: detaching unindexed key {key:?}");
        };
        let seq = entry.seq;
        if let Some(location) = entry.location.take() {
            self.release(location, seq);
        }
    }

    /// A record is no longer pointed at: update its segment, delete the
    /// segment once empty and sealed, queue it for collection once sparse.
    fn release(&mut self, location: Location, seq: u64) {
        let Some(segment) = self.segments.get_mut(&location.segment) else {
            panic!(
                "disk tier: record of seq {seq} in unknown segment {}",
                location.segment
            );
        };
        segment.live_bytes -= location.length_bytes;
        let removed = segment.live.remove(&seq);
        assert!(
            removed,
            "segment {} did not list seq {seq}",
            location.segment
        );
        if self.active_segment != Some(location.segment) {
            self.queue_if_sparse(location.segment);
        }
    }

    /// For a sealed segment: delete it if empty, queue it if sparse.
    fn queue_if_sparse(&mut self, segment_id: u64) {
        let segment = &self.segments[&segment_id];
        if segment.live.is_empty() {
            self.segments.remove(&segment_id);
            self.gc_queue.remove(&segment_id);
            // A file that cannot be deleted costs disk space, not
            // correctness: nothing points into it any more, and the next
            // `open` removes it.
            let _ = fs::remove_file(self.segment_path(segment_id));
        } else if segment.live_bytes * 100 < segment.written_bytes * GC_LIVE_PERCENT {
            self.gc_queue.insert(segment_id);
        }
    }

    fn read_value(&self, key: &[u8], entry: &DiskEntry) -> Result<Value, DiskError> {
        let location = entry.location.ok_or(DiskError::Lost)?;
        let segment = self
            .segments
            .get(&location.segment)
            .ok_or(DiskError::Lost)?;
        let corrupt = |reason: String| DiskError::Corrupt {
            segment: location.segment,
            offset: location.offset,
            reason,
        };
        let length = usize::try_from(location.length_bytes)
            .map_err(|_| corrupt("record longer than memory".to_owned()))?;
        // The tier's own IO, outside the simulation seam like the rest of
        // it; the time is a local measurement that decides nothing.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let mut record = vec![0; length];
        let read = segment
            .file
            .read_exact_at(&mut record, location.offset)
            .map_err(|error| io_error("read", &self.segment_path(location.segment), &error));
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.reads.count.fetch_add(1, Ordering::Relaxed);
        self.reads
            .time_us_total
            .fetch_add(elapsed_us, Ordering::Relaxed);
        read?;
        decode_record(key, &record).map_err(corrupt)
    }

    fn segment_path(&self, segment_id: u64) -> PathBuf {
        self.directory.join(format!("seg-{segment_id:010}.log"))
    }
}

/// A read-only copy for a snapshot: the same logical state, reading the
/// same open files (see "Copies for snapshots" in the module docs). Every
/// change to the copy panics.
impl Clone for DiskTier {
    fn clone(&self) -> Self {
        DiskTier {
            config: self.config,
            directory: self.directory.clone(),
            index: self.index.clone(),
            fifo: self.fifo.clone(),
            expiry: self.expiry.clone(),
            next_seq: self.next_seq,
            weight_total: self.weight_total,
            stats: self.stats,
            segments: self.segments.clone(),
            active_segment: self.active_segment,
            next_segment_id: self.next_segment_id,
            gc_queue: self.gc_queue.clone(),
            read_only: true,
            owns_directory: false,
            reads: ReadMeter::default(),
        }
    }
}

impl Drop for DiskTier {
    fn drop(&mut self) {
        if self.owns_directory && !self.read_only {
            // The files are a cache of replicated state: a directory left
            // behind costs disk space until the next start clears its
            // parent, never correctness (as with a segment in
            // `queue_if_sparse`). Copies still reading keep open handles.
            let _ = fs::remove_dir_all(&self.directory);
        }
    }
}

/// The id in a segment file's name, or `None` for any other file.
fn segment_id_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("seg-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn io_error(operation: &'static str, path: &Path, error: &std::io::Error) -> DiskError {
    DiskError::Io {
        operation,
        path: path.display().to_string(),
        detail: error.to_string(),
    }
}

/// The bytes of one record (see the module docs).
fn encode_record(key: &[u8], value: &Value) -> Result<Vec<u8>, DiskError> {
    let value_bytes = codec::encode(value);
    let too_long = |what: &str| DiskError::Io {
        operation: "encode",
        path: String::new(),
        detail: format!("{what} longer than 4 GiB"),
    };
    let key_length = u32::try_from(key.len()).map_err(|_| too_long("key"))?;
    let value_length = u32::try_from(value_bytes.len()).map_err(|_| too_long("value"))?;
    let mut record =
        Vec::with_capacity(RECORD_HEADER_BYTES as usize + key.len() + value_bytes.len());
    record.extend_from_slice(&[0; 4]);
    record.extend_from_slice(&key_length.to_le_bytes());
    record.extend_from_slice(&value_length.to_le_bytes());
    record.extend_from_slice(key);
    record.extend_from_slice(&value_bytes);
    let checksum = crc32fast::hash(&record[4..]);
    record[..4].copy_from_slice(&checksum.to_le_bytes());
    Ok(record)
}

/// Checks one record read back and decodes its value.
fn decode_record(key: &[u8], record: &[u8]) -> Result<Value, String> {
    let header = RECORD_HEADER_BYTES as usize;
    if record.len() < header {
        return Err(format!("{} bytes, shorter than a header", record.len()));
    }
    let word = |at: usize| {
        u32::from_le_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
    };
    let checksum = word(0);
    if crc32fast::hash(&record[4..]) != checksum {
        return Err("checksum mismatch".to_owned());
    }
    let key_length = word(4) as usize;
    let value_length = word(8) as usize;
    if header + key_length + value_length != record.len() {
        return Err("lengths disagree with the index".to_owned());
    }
    if &record[header..header + key_length] != key {
        return Err("holds another key".to_owned());
    }
    let value: Value = codec::decode(&record[header + key_length..], codec::STATE_LIMIT)
        .map_err(|error| format!("value does not decode: {error}"))?;
    value
        .check_invariants()
        .map_err(|reason| format!("value invalid: {reason}"))?;
    Ok(value)
}

#[cfg(test)]
mod tests;
