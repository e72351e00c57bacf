//! [`FileStorage`]: crash-safe, checksummed files in one directory.
//!
//! ```text
//!   dir/raft-hard-state            term and vote: two slots, written in place
//!   dir/raft-snapshot              the snapshot; replaced atomically
//!   dir/raft-snapshot.staged-<index>   a snapshot written, not yet
//!                                  installed (`load` removes it)
//!   dir/raft-log-00000000000000000007   log segments, oldest first: one
//!   dir/raft-log-00000000000000000008   record per save (entries + commit
//!   ...                                 index), appended, never rewritten
//!   dir/LOCK                       empty; locked (flock) while a storage
//!                                  works here: one storage per directory
//! ```
//!
//! **Saves.** A save appends one checksummed record to the newest segment
//! and fsyncs once, however many entries it carries (group commit). A save
//! whose term or vote changed first writes them to the hard state file
//! (one more fsync, at elections only), so the file always holds the
//! newest term and vote. A conflicting leader's entries are a record like
//! any other ("replace from this index on"): nothing is rewritten. Once the
//! newest segment reaches the segment size, the next save starts a new one.
//!
//! **Snapshots.** A save with a snapshot replaces the snapshot file
//! (temporary file, fsync, rename, fsync of the directory), appends a
//! record (saying "drop every entry" when the snapshot does not match the
//! log), then removes the oldest segments whose entries the snapshot all
//! covers. The log is truncated by whole segments and never rewritten: after
//! a snapshot at index `s` the files hold the entries after `s` plus at most
//! the rest of the segments that straddle `s`.
//!
//! **Staged snapshots.** A snapshot the node's own service took can be
//! stored in two halves instead ([`Storage::stage_snapshot`]): the slow
//! one (encoding, writing and fsyncing the snapshot file, under its staged
//! name) runs off the driver's task while saves go on; the quick one
//! renames it into place, fsyncs the directory and removes the segments it
//! covers. A crash before the rename leaves the old snapshot and every
//! segment, which still hold all the snapshot covered; `load` removes the
//! staged file left behind. Each staged file is named by its snapshot's
//! last index, so a write still running for a discarded staging can never
//! be renamed in place of a later one.
//!
//! **Load** reads the hard state and snapshot files and replays the
//! segments one at a time; it reads and holds only what is kept, and
//! writes nothing but the repair of a torn tail (and removes staged
//! snapshot files left by a crash). Between saves the storage
//! keeps no entry data in memory, only each entry's term and size
//! ([`super::log_index`]).
//!
//! **Crash safety.** A crash during an append leaves a torn last record in
//! the newest segment, which was never acknowledged: `load` drops it, counts
//! it in [`FileStorage::torn_tail_bytes_discarded`], logs a warning and cuts
//! it off. A crash between the snapshot file and the segment removals
//! leaves older segments next to a newer snapshot; `load` reconciles them
//! with the rule of InstallSnapshot. Anything else that fails a check (a
//! bad record before the last one, a damaged snapshot or hard state file,
//! a bad magic) is [`StorageError::Corrupt`], naming the file; a file of an
//! unknown format version is [`StorageError::UnsupportedVersion`]; a log or
//! snapshot without the hard state file is [`StorageError::Refused`] (the
//! node could otherwise vote twice in a term); a snapshot and a log that
//! disagree in a way no crash produces (see [`super::reconcile_loaded`])
//! are [`StorageError::Inconsistent`], naming both. The node refuses to
//! start rather than run on altered state.
//!
//! A segment cut short, at a record boundary or not, is detected too: after
//! each append is durable the storage records the segment's length in its
//! header (see `format.rs`), and `load` refuses a segment shorter than
//! that. The header write is not itself fsynced (one fsync per save); it is
//! made durable by the next save's. So the one cut that goes unnoticed is
//! one that removes exactly the last acknowledged save of a node that
//! crashed before that header write reached the disk: a crash and outside
//! damage together.
//!
//! File IO runs on tokio's blocking pool (`disk.rs`); under madsim, on the
//! simulated disk, which loses unsynced writes when the node is killed.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::{Entry, HardState, PersistentState, Snapshot, SnapshotMeta};

use super::disk::{self, AppendFile, DirLock};
use super::format::{
    HARD_STATE_FILE_BYTES, HARD_STATE_INITIAL_SEQ, LogRecordRef, SEGMENT_INITIAL_SEQ, TermAndVote,
    decode_hard_state_file, decode_segment, decode_snapshot_file, encode_hard_state_file,
    encode_hard_state_slot, encode_header_slot, encode_record, encode_segment_header,
    encode_snapshot_file, hard_state_slot_offset, header_slot_offset,
};
use super::log_index::LogIndex;
use super::{
    StagedSnapshotWrite, Storage, StorageError, StorageWrite, check_loaded_log, reconcile_loaded,
};

mod snapshot_check;

use snapshot_check::SnapshotCheck;

pub const SNAPSHOT_FILE_NAME: &str = "raft-snapshot";
/// Prefix of a snapshot staged (written) but not yet installed, followed
/// by its last index in 20 digits; `load` removes such files.
pub const STAGED_SNAPSHOT_FILE_PREFIX: &str = "raft-snapshot.staged-";
pub const HARD_STATE_FILE_NAME: &str = "raft-hard-state";
/// Log segments are named this prefix and a 20-digit number, increasing.
pub const SEGMENT_FILE_PREFIX: &str = "raft-log-";
/// The single log file of releases before segments; refused at load.
pub const LEGACY_LOG_FILE_NAME: &str = "raft-log";
/// A new segment is started once the newest reaches this size.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 8 << 20;
/// How long `load` waits for the directory's lock by default: long enough
/// for a stopped storage's last write in this process (a large snapshot, on
/// a slow disk) to finish, short enough that a second process on the same
/// directory gets its error soon.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);

/// What the last [`Storage::load`] of a [`FileStorage`] cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Bytes read from every file.
    pub bytes_read: u64,
    /// Bytes written (the repair of a torn tail, a first segment, a record
    /// dropping a log a snapshot contradicts).
    pub bytes_written: u64,
    pub segments_read: usize,
    /// Entries returned (those after the snapshot).
    pub entries_loaded: usize,
}

#[derive(Debug)]
struct Segment {
    number: u64,
    path: PathBuf,
    /// The highest entry index any record of the segment wrote (0: none).
    max_index: u64,
}

/// The segment saves append to.
#[derive(Debug)]
struct ActiveSegment {
    file: AppendFile,
    /// Seq of the header slot written last.
    header_seq: u64,
    has_records: bool,
}

/// A snapshot written under [`FileStorage::staged_snapshot_path`], not
/// installed.
#[derive(Debug)]
struct Staged {
    meta: SnapshotMeta,
    data_size_bytes: u64,
    /// The stored entries it covers: how many, and their encoded bytes.
    covered: (usize, u64),
}

/// Raft state in files under one directory.
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    snapshot_path: PathBuf,
    /// The snapshot last staged, until installed or discarded.
    staged: Option<Staged>,
    hard_state_path: PathBuf,
    segment_size_bytes: u64,
    /// Oldest first; the last is the active one.
    segments: VecDeque<Segment>,
    /// Open after a successful `load`; saves before that are refused.
    active: Option<ActiveSegment>,
    hard_state_file: Option<AppendFile>,
    hard_state_seq: u64,
    term_and_vote: TermAndVote,
    index: LogIndex,
    load_stats: LoadStats,
    torn_tail_bytes_discarded: u64,
    /// The directory's lock, taken by the first `load` and held from then
    /// on (see `disk::lock_dir`): no other storage works in `dir` meanwhile.
    lock: Option<DirLock>,
    lock_wait: Duration,
    /// A save failed half-way: what is on disk is no longer known, so every
    /// later save is refused (the node must stop and restart from `load`).
    failed: bool,
    /// How far `read_snapshot_piece` has checked the stored snapshot's
    /// file against its CRC.
    snapshot_check: Option<SnapshotCheck>,
}

impl FileStorage {
    /// Storage in `dir` (created at `load` if missing), with segments of
    /// [`DEFAULT_SEGMENT_SIZE_BYTES`]. Does no IO.
    pub fn new(dir: impl Into<PathBuf>) -> FileStorage {
        FileStorage::with_segment_size(dir, DEFAULT_SEGMENT_SIZE_BYTES)
    }

    /// Storage in `dir` that starts a new segment once the newest reaches
    /// `segment_size_bytes` (a single save larger than that gets a segment
    /// of its own).
    pub fn with_segment_size(dir: impl Into<PathBuf>, segment_size_bytes: u64) -> FileStorage {
        let dir = dir.into();
        FileStorage {
            snapshot_path: dir.join(SNAPSHOT_FILE_NAME),
            staged: None,
            hard_state_path: dir.join(HARD_STATE_FILE_NAME),
            dir,
            segment_size_bytes,
            segments: VecDeque::new(),
            active: None,
            hard_state_file: None,
            hard_state_seq: 0,
            term_and_vote: TermAndVote::default(),
            index: LogIndex::default(),
            load_stats: LoadStats::default(),
            torn_tail_bytes_discarded: 0,
            lock: None,
            lock_wait: DEFAULT_LOCK_WAIT,
            failed: false,
            snapshot_check: None,
        }
    }

    /// How long `load` waits for the directory's lock
    /// ([`DEFAULT_LOCK_WAIT`] unless set here) before it fails.
    pub fn with_lock_wait(mut self, wait: Duration) -> FileStorage {
        self.lock_wait = wait;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn snapshot_path(&self) -> &Path {
        &self.snapshot_path
    }

    pub fn hard_state_path(&self) -> &Path {
        &self.hard_state_path
    }

    /// The segments' paths, oldest first (known after `load`).
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    /// The segment saves append to (known after `load`).
    pub fn active_segment_path(&self) -> Option<&Path> {
        self.segments.back().map(|s| s.path.as_path())
    }

    /// Bytes of a torn final record the last `load` dropped (0 normally).
    pub fn torn_tail_bytes_discarded(&self) -> u64 {
        self.torn_tail_bytes_discarded
    }

    /// What the last `load` read and wrote.
    pub fn load_stats(&self) -> LoadStats {
        self.load_stats
    }

    /// Entries the storage describes in memory (their terms and sizes, not
    /// their data): those after the snapshot.
    pub fn entries_indexed(&self) -> usize {
        self.index.entry_count()
    }

    /// Where the snapshot ending at `index` is staged.
    pub fn staged_snapshot_path(&self, index: u64) -> PathBuf {
        self.dir
            .join(format!("{STAGED_SNAPSHOT_FILE_PREFIX}{index:020}"))
    }

    fn segment_path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{SEGMENT_FILE_PREFIX}{number:020}"))
    }

    fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
        move |source| StorageError::from_io(path.to_path_buf(), source)
    }

    /// The log's name in errors: the oldest segment, or the directory.
    fn log_path(&self) -> PathBuf {
        self.segments
            .front()
            .map_or_else(|| self.dir.clone(), |s| s.path.clone())
    }

    /// The directory's lock for a disk call; an error before `load`.
    fn dir_lock(&self) -> Result<DirLock, StorageError> {
        self.lock.clone().ok_or_else(|| StorageError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other("save before load"),
        })
    }

    async fn read_counted(&mut self, path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
        let bytes = disk::read(&self.dir_lock()?, path)
            .await
            .map_err(Self::io_error(path))?;
        if let Some(bytes) = &bytes {
            self.load_stats.bytes_read += bytes.len() as u64;
        }
        Ok(bytes)
    }

    async fn load_from_disk(&mut self) -> Result<PersistentState, StorageError> {
        disk::create_dir_all(&self.dir)
            .await
            .map_err(Self::io_error(&self.dir))?;
        if self.lock.is_none() {
            let lock = disk::lock_dir(&self.dir, self.lock_wait)
                .await
                .map_err(Self::io_error(&self.dir))?;
            self.lock = Some(lock);
        }
        let lock = self.dir_lock()?;
        let names = disk::list(&lock, &self.dir)
            .await
            .map_err(Self::io_error(&self.dir))?;
        if names.iter().any(|name| name == LEGACY_LOG_FILE_NAME) {
            return Err(StorageError::Refused {
                path: self.dir.join(LEGACY_LOG_FILE_NAME),
                reason: "a log in the single-file format of earlier releases; this release keeps \
                         the log in segments (raft-log-<number>) and does not convert it: start \
                         this node with the release that wrote it, or remove the node's files \
                         and let it catch up from its peers"
                    .to_owned(),
            });
        }
        let mut numbers: Vec<u64> = names
            .iter()
            .filter_map(|name| name.strip_prefix(SEGMENT_FILE_PREFIX))
            .filter(|digits| digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|digits| digits.parse().ok())
            .collect();
        numbers.sort_unstable();
        // Staged snapshots a crash (or a discarded staging) left: never
        // installed, so never part of the state.
        let mut removed_staged = false;
        for name in names
            .iter()
            .filter(|name| name.starts_with(STAGED_SNAPSHOT_FILE_PREFIX))
        {
            let path = self.dir.join(name);
            disk::remove(&lock, &path)
                .await
                .map_err(Self::io_error(&path))?;
            removed_staged = true;
        }
        if removed_staged {
            disk::sync_dir(&lock, &self.dir)
                .await
                .map_err(Self::io_error(&self.dir))?;
        }

        let snapshot_path = self.snapshot_path.clone();
        let snapshot = match self.read_counted(&snapshot_path).await? {
            Some(bytes) => Some(decode_snapshot_file(&snapshot_path, &bytes)?),
            None => None,
        };
        let hard_state_path = self.hard_state_path.clone();
        let stored_term_and_vote = match self.read_counted(&hard_state_path).await? {
            Some(bytes) => Some(decode_hard_state_file(&hard_state_path, &bytes)?),
            None => None,
        };
        if stored_term_and_vote.is_none() && (snapshot.is_some() || !numbers.is_empty()) {
            let found = if snapshot.is_some() {
                "a snapshot"
            } else {
                "a log"
            };
            return Err(StorageError::Refused {
                path: hard_state_path,
                reason: format!(
                    "the hard state file (term and vote) is missing next to {found}: starting \
                     with term 0 and no vote could vote twice in a term"
                ),
            });
        }
        let term_and_vote = stored_term_and_vote
            .map(|(_, value)| value)
            .unwrap_or_default();

        let mut entries: Vec<Entry> = Vec::new();
        let mut commit_index = 0;
        let mut tail = None;
        for (position, &number) in numbers.iter().enumerate() {
            let path = self.segment_path(number);
            let newest = position + 1 == numbers.len();
            let Some(bytes) = self.read_counted(&path).await? else {
                return Err(StorageError::Corrupt {
                    path,
                    offset: 0,
                    reason: "listed in the directory but not readable".to_owned(),
                });
            };
            self.load_stats.segments_read += 1;
            let mut decoded = decode_segment(&path, &bytes, newest)?;
            drop(bytes);
            let mut max_index = 0;
            let has_records = !decoded.records.is_empty();
            for record in std::mem::take(&mut decoded.records) {
                if let Some(hard_state) = record.hard_state {
                    if hard_state.term > term_and_vote.term {
                        return Err(StorageError::Corrupt {
                            path,
                            offset: 0,
                            reason: format!(
                                "a record has term {} but the hard state file says {} (it is \
                                 always written first)",
                                hard_state.term, term_and_vote.term
                            ),
                        });
                    }
                    commit_index = hard_state.commit_index;
                }
                if record.clear_log {
                    entries.clear();
                }
                replay_entries(&path, &mut entries, &record.entries)?;
                if let Some(last) = record.entries.last() {
                    max_index = max_index.max(last.index);
                }
            }
            if newest {
                tail = Some((decoded, has_records));
            }
            self.segments.push_back(Segment {
                number,
                path,
                max_index,
            });
        }

        let mut state = PersistentState {
            hard_state: HardState {
                term: term_and_vote.term,
                voted_for: term_and_vote.voted_for,
                commit_index,
            },
            snapshot,
            entries,
        };
        check_loaded_log(&state).map_err(|reason| StorageError::Corrupt {
            path: self.log_path(),
            offset: 0,
            reason,
        })?;
        let replayed_entries = state.entries.len();
        reconcile_loaded(&mut state).map_err(|reason| StorageError::Inconsistent {
            snapshot_path: self.snapshot_path.clone(),
            log_path: self.log_path(),
            reason,
        })?;
        // Every check passed: now repair and open for writing.

        match stored_term_and_vote {
            Some((seq, _)) => {
                self.hard_state_file = Some(
                    disk::open_for_writing(
                        &lock,
                        &self.hard_state_path,
                        HARD_STATE_FILE_BYTES as u64,
                    )
                    .await
                    .map_err(Self::io_error(&self.hard_state_path))?,
                );
                self.hard_state_seq = seq;
            }
            None => {
                let bytes = encode_hard_state_file(term_and_vote);
                self.load_stats.bytes_written += bytes.len() as u64;
                self.hard_state_file = Some(
                    disk::create_file(&lock, &self.hard_state_path, bytes)
                        .await
                        .map_err(Self::io_error(&self.hard_state_path))?,
                );
                self.hard_state_seq = HARD_STATE_INITIAL_SEQ;
            }
        }
        self.term_and_vote = term_and_vote;

        self.torn_tail_bytes_discarded = 0;
        match tail {
            Some((decoded, has_records)) => {
                let path = self.segment_path(*numbers.last().expect("a tail has a segment"));
                if decoded.torn_tail_bytes > 0 {
                    tracing::warn!(
                        path = %path.display(),
                        bytes = decoded.torn_tail_bytes,
                        "dropping the torn last record of an interrupted save"
                    );
                }
                self.torn_tail_bytes_discarded = decoded.torn_tail_bytes;
                let mut file = disk::open_for_writing(&lock, &path, decoded.valid_end_bytes)
                    .await
                    .map_err(Self::io_error(&path))?;
                let mut header_seq = decoded.header_seq;
                if decoded.acknowledged_bytes != decoded.valid_end_bytes {
                    // A durable record the header does not cover yet (the
                    // crash came before the header write): cover it.
                    header_seq += 1;
                    let slot = encode_header_slot(header_seq, decoded.valid_end_bytes);
                    self.load_stats.bytes_written += slot.len() as u64;
                    file.overwrite_durably(header_slot_offset(header_seq), slot)
                        .await
                        .map_err(Self::io_error(&path))?;
                }
                self.active = Some(ActiveSegment {
                    file,
                    header_seq,
                    has_records,
                });
            }
            None => self.start_segment(1).await?,
        }

        if replayed_entries > 0 && state.entries.is_empty() && state.snapshot.is_some() {
            // The snapshot replaced the whole log (a crash came before the
            // record saying so): say so now, so no later load sees those
            // entries next to newer ones.
            self.load_stats.bytes_written += self
                .append_record(Some(state.hard_state), true, &[])
                .await?;
        }
        self.index = LogIndex::from_state(&state);
        self.remove_covered_segments().await?;
        self.load_stats.entries_loaded = state.entries.len();
        Ok(state)
    }

    /// Creates segment `number` (header only) and makes it the active one.
    async fn start_segment(&mut self, number: u64) -> Result<(), StorageError> {
        let path = self.segment_path(number);
        let header = encode_segment_header();
        let header_bytes = header.len() as u64;
        let file = disk::create_file(&self.dir_lock()?, &path, header)
            .await
            .map_err(Self::io_error(&path))?;
        if self.active.is_none() {
            self.load_stats.bytes_written += header_bytes;
        }
        self.segments.push_back(Segment {
            number,
            path,
            max_index: 0,
        });
        self.active = Some(ActiveSegment {
            file,
            header_seq: SEGMENT_INITIAL_SEQ,
            has_records: false,
        });
        Ok(())
    }

    /// Appends one record to the active segment (starting a new one first
    /// if it is full) and returns once it is durable, with its size.
    async fn append_record(
        &mut self,
        hard_state: Option<HardState>,
        clear_log: bool,
        entries: &[Entry],
    ) -> Result<u64, StorageError> {
        let full = self.active.as_ref().is_some_and(|active| {
            active.has_records && active.file.size_bytes() >= self.segment_size_bytes
        });
        if full {
            let number = self.segments.back().map_or(1, |s| s.number + 1);
            self.start_segment(number).await?;
        }
        let current_hard_state = self.index.hard_state();
        let (Some(active), Some(segment)) = (self.active.as_mut(), self.segments.back_mut()) else {
            return Err(StorageError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other("save before load"),
            });
        };
        // Each segment's first record carries the hard state, so removing
        // older segments never loses the commit index.
        let hard_state = hard_state.or((!active.has_records).then_some(current_hard_state));
        let record = encode_record(&LogRecordRef {
            hard_state,
            clear_log,
            entries,
        })?;
        let record_bytes = record.len() as u64;
        let size_bytes = active.file.size_bytes() + record_bytes;
        // Once the record is durable, the header may say so (`format.rs`).
        active.header_seq += 1;
        active
            .file
            .append_durably_then_mark(
                record,
                header_slot_offset(active.header_seq),
                encode_header_slot(active.header_seq, size_bytes),
            )
            .await
            .map_err(Self::io_error(&segment.path))?;
        active.has_records = true;
        if let Some(last) = entries.last() {
            segment.max_index = segment.max_index.max(last.index);
        }
        Ok(record_bytes)
    }

    /// Removes the oldest segments (never the active one) whose entries the
    /// snapshot covers.
    async fn remove_covered_segments(&mut self) -> Result<(), StorageError> {
        let snapshot_index = self.index.snapshot_meta().last_included_index;
        let lock = self.dir_lock()?;
        let mut removed = false;
        while self.segments.len() > 1
            && self
                .segments
                .front()
                .is_some_and(|s| s.max_index <= snapshot_index)
        {
            let Some(segment) = self.segments.pop_front() else {
                break;
            };
            disk::remove(&lock, &segment.path)
                .await
                .map_err(Self::io_error(&segment.path))?;
            removed = true;
        }
        if removed {
            disk::sync_dir(&lock, &self.dir)
                .await
                .map_err(Self::io_error(&self.dir))?;
        }
        Ok(())
    }

    async fn save_term_and_vote(&mut self, value: TermAndVote) -> Result<(), StorageError> {
        if value == self.term_and_vote {
            return Ok(());
        }
        let Some(file) = self.hard_state_file.as_mut() else {
            return Err(StorageError::Io {
                path: self.hard_state_path.clone(),
                source: std::io::Error::other("save before load"),
            });
        };
        let seq = self.hard_state_seq + 1;
        file.overwrite_durably(
            hard_state_slot_offset(seq),
            encode_hard_state_slot(seq, value),
        )
        .await
        .map_err(Self::io_error(&self.hard_state_path))?;
        self.hard_state_seq = seq;
        self.term_and_vote = value;
        Ok(())
    }

    async fn save_to_disk(&mut self, write: StorageWrite<'_>) -> Result<(), StorageError> {
        self.check_usable()?;
        self.index.validate(&write)?;
        if write.is_empty() {
            return Ok(());
        }
        // Term and vote first: a crash before the record leaves a newer
        // term and vote with an older log, a state the node could have been
        // in; the other order could leave entries of a term it never saw.
        if let Some(hard_state) = write.hard_state {
            self.save_term_and_vote(TermAndVote {
                term: hard_state.term,
                voted_for: hard_state.voted_for,
            })
            .await?;
        }
        let mut clear_log = false;
        if let Some(snapshot) = write.snapshot {
            // A snapshot saved whole supersedes one staged before it.
            self.staged = None;
            clear_log = self.index.snapshot_clears_log(snapshot);
            disk::replace(
                &self.dir_lock()?,
                &self.snapshot_path,
                encode_snapshot_file(snapshot)?,
            )
            .await
            .map_err(Self::io_error(&self.snapshot_path))?;
        }
        if write.hard_state.is_some() || clear_log || !write.entries.is_empty() {
            self.append_record(write.hard_state, clear_log, write.entries)
                .await?;
        }
        self.index.apply(&write)?;
        if write.snapshot.is_some() {
            self.remove_covered_segments().await?;
        }
        Ok(())
    }
}

impl FileStorage {
    /// Marks the storage failed if `result` is an I/O error or a file call
    /// cut short by shutdown: what is on disk is then unknown, and later
    /// writes are refused until a `load`.
    fn note_failure(&mut self, result: Result<(), StorageError>) -> Result<(), StorageError> {
        if matches!(
            result,
            Err(StorageError::Io { .. } | StorageError::ShuttingDown { .. })
        ) {
            self.failed = true;
        }
        result
    }

    /// Refuses work on a storage that is not loaded or whose last save
    /// failed (what is on disk is then unknown).
    fn check_usable(&self) -> Result<(), StorageError> {
        if self.failed {
            return Err(StorageError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other("an earlier save failed; reload before saving"),
            });
        }
        if self.active.is_none() {
            return Err(StorageError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other("save before load"),
            });
        }
        Ok(())
    }

    async fn install_staged_now(&mut self, meta: &SnapshotMeta) -> Result<(), StorageError> {
        self.check_usable()?;
        let Some(staged) = self.staged.take_if(|staged| staged.meta == *meta) else {
            return Err(StorageError::InvalidWrite {
                reason: format!(
                    "no snapshot is staged at index {} (term {})",
                    meta.last_included_index, meta.last_included_term
                ),
            });
        };
        // Staging refused a snapshot that would clear the log, and nothing
        // since (saves of committed entries' successors) changed that.
        if self.index.snapshot_meta_clears_log(meta) {
            return Err(StorageError::InvalidWrite {
                reason: format!(
                    "the staged snapshot at index {} no longer matches the stored log",
                    meta.last_included_index
                ),
            });
        }
        disk::rename_durably(
            &self.dir_lock()?,
            &self.staged_snapshot_path(meta.last_included_index),
            &self.snapshot_path,
        )
        .await
        .map_err(Self::io_error(&self.snapshot_path))?;
        self.index.apply_snapshot(meta, staged.data_size_bytes);
        self.remove_covered_segments().await
    }
}

/// Applies one record's entries to the entries replayed so far: they replace
/// everything from their first index on, and must not leave a gap. A record
/// may start before the entries replayed so far: the segments that held the
/// entries before it were removed, covered by the snapshot.
fn replay_entries(
    path: &Path,
    entries: &mut Vec<Entry>,
    record: &[Entry],
) -> Result<(), StorageError> {
    let Some(first) = record.first() else {
        return Ok(());
    };
    let corrupt = |reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason,
    };
    for pair in record.windows(2) {
        if pair[1].index != pair[0].index + 1 {
            return Err(corrupt(format!(
                "record entries jump from {} to {}",
                pair[0].index, pair[1].index
            )));
        }
    }
    if let Some(stored_last) = entries.last()
        && first.index > stored_last.index + 1
    {
        return Err(corrupt(format!(
            "record entries start at {} but the log so far ends at {}",
            first.index, stored_last.index
        )));
    }
    let kept = entries.partition_point(|e| e.index < first.index);
    entries.truncate(kept);
    entries.extend_from_slice(record);
    Ok(())
}

impl Storage for FileStorage {
    /// Reads the files, checks them, repairs a torn tail, and opens the
    /// newest segment for appending.
    async fn load(&mut self) -> Result<PersistentState, StorageError> {
        self.active = None;
        self.hard_state_file = None;
        self.segments.clear();
        self.index = LogIndex::default();
        self.staged = None;
        self.snapshot_check = None;
        self.load_stats = LoadStats::default();
        self.failed = false;
        let result = self.load_from_disk().await;
        if result.is_err() {
            self.active = None;
        }
        result
    }

    async fn save(&mut self, write: StorageWrite<'_>) -> Result<(), StorageError> {
        let result = self.save_to_disk(write).await;
        self.note_failure(result)
    }

    /// Refused (handed back) before `load`, after a failed save, while
    /// another snapshot is staged, and for a snapshot that is not newer
    /// than the stored one or would clear the stored log: those are saved
    /// whole.
    fn stage_snapshot(&mut self, snapshot: Snapshot) -> Result<StagedSnapshotWrite, Snapshot> {
        let meta = &snapshot.meta;
        let stageable = self.check_usable().is_ok()
            && self.staged.is_none()
            && meta.last_included_index > self.index.snapshot_meta().last_included_index
            && meta.last_included_index <= self.index.last_index()
            && !self.index.snapshot_meta_clears_log(meta);
        let Some(lock) = self.lock.clone().filter(|_| stageable) else {
            return Err(snapshot);
        };
        self.staged = Some(Staged {
            meta: meta.clone(),
            data_size_bytes: snapshot.data.len() as u64,
            covered: self.index.covered_by(meta),
        });
        let path = self.staged_snapshot_path(meta.last_included_index);
        Ok(Box::pin(async move {
            // The file's parts share the snapshot's data.
            let parts = encode_snapshot_file(&snapshot)?;
            drop(snapshot);
            disk::write_durably(&lock, &path, parts)
                .await
                .map_err(|source| StorageError::from_io(path, source))
        }))
    }

    async fn install_staged_snapshot(&mut self, meta: &SnapshotMeta) -> Result<(), StorageError> {
        let result = self.install_staged_now(meta).await;
        self.note_failure(result)
    }

    fn reads_snapshot_pieces(&self) -> bool {
        true
    }

    /// Reads the piece from the snapshot file, whose data is its last
    /// bytes (the snapshot record ends with them), checking the file
    /// against its CRC as pieces are read (see `SnapshotCheck`).
    async fn read_snapshot_piece(
        &mut self,
        meta: &SnapshotMeta,
        offset: u64,
        length_bytes: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.check_usable()?;
        if self.index.snapshot_meta() != *meta {
            return Ok(None);
        }
        let data_size_bytes = self.index.snapshot_data_size_bytes();
        if offset
            .checked_add(length_bytes)
            .is_none_or(|end| end > data_size_bytes)
        {
            return Err(StorageError::InvalidRead {
                reason: format!(
                    "snapshot piece of {length_bytes} bytes at {offset} past the \
                     {data_size_bytes} bytes stored at index {}",
                    meta.last_included_index
                ),
            });
        }
        let mut check = match self.snapshot_check.take() {
            Some(check) if check.meta == *meta => check,
            _ => self.start_snapshot_check(meta).await?,
        };
        let piece = self
            .read_checked_piece(&mut check, offset, length_bytes)
            .await?;
        self.snapshot_check = Some(check);
        Ok(Some(piece))
    }

    fn raft_state_size_bytes(&self) -> u64 {
        match &self.staged {
            None => self.index.raft_state_size_bytes(),
            Some(staged) => self
                .index
                .raft_state_size_bytes_without(staged.covered.0, staged.covered.1),
        }
    }

    fn snapshot_size_bytes(&self) -> u64 {
        self.index.snapshot_data_size_bytes()
    }
}
