//! [`FileStorage`]: crash-safe, checksummed files in one directory.
//!
//! ```text
//!   dir/raft-snapshot   magic + one record (the snapshot); replaced atomically
//!   dir/raft-log        magic + one record per save (hard state + entries)
//! ```
//!
//! A save without a snapshot appends one checksummed record and fsyncs once,
//! however many entries it carries (group commit). A save with a snapshot
//! replaces the snapshot file, then rewrites the log file compacted; both
//! replacements are atomic (temporary file, fsync, rename, fsync of the
//! directory). The log file is also rewritten when superseded records make it
//! much larger than the state it holds, and at every load.
//!
//! Crash safety: a crash during an append leaves a torn last record, which
//! was never acknowledged; `load` drops it, counts it in
//! [`FileStorage::torn_tail_bytes_discarded`] and logs a warning. A crash
//! between the snapshot and the log rewrite leaves an older log next to the
//! newer snapshot; `load` reconciles them with the rule of InstallSnapshot.
//! Anything else that fails a check (a bad record before the last one, a
//! damaged snapshot file, a bad magic) is [`StorageError::Corrupt`], naming
//! the file; a snapshot and a log that disagree in a way no crash produces
//! (see [`super::reconcile_loaded`]) are [`StorageError::Inconsistent`],
//! naming both. The node refuses to start rather than run on altered state.
//!
//! A log file cut short, at a record boundary or not, is detected too: after
//! each append is durable the storage records the file's length in the
//! file's header (see `format.rs`), and `load` refuses a file shorter than
//! that. The header write is not itself fsynced (one fsync per save); it is
//! made durable by the next save's. So the one cut that goes unnoticed is
//! one that removes exactly the last acknowledged save of a node that
//! crashed before that header write reached the disk: a crash and outside
//! damage together.
//!
//! File IO runs on tokio's blocking pool (`disk.rs`); under madsim, on the
//! simulated disk.

use std::path::{Path, PathBuf};

use crate::core::{Entry, PersistentState};

use super::disk::{self, AppendFile};
use super::format::{
    LOG_FILE_INITIAL_SEQ, LogRecordRef, decode_log_file, decode_snapshot_file, encode_header_slot,
    encode_log_file, encode_record, encode_snapshot_file, header_slot_offset,
};
use super::sized_state::SizedState;
use super::{Storage, StorageError, StorageWrite, check_loaded_log, reconcile_loaded};

pub const LOG_FILE_NAME: &str = "raft-log";
pub const SNAPSHOT_FILE_NAME: &str = "raft-snapshot";
/// The log file is rewritten once it exceeds twice the state it holds plus
/// this slack.
const LOG_REWRITE_SLACK_BYTES: u64 = 1 << 20;

/// Raft state in two files under one directory. Keeps an image of the stored
/// state in memory (to validate writes and to rewrite the log file).
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    log_path: PathBuf,
    snapshot_path: PathBuf,
    /// Open after a successful `load`; saves before that are refused.
    log_file: Option<AppendFile>,
    log_file_size_bytes: u64,
    /// Seq of the log file header slot written last.
    log_header_seq: u64,
    state: SizedState,
    torn_tail_bytes_discarded: u64,
    /// A save failed half-way: what is on disk is no longer known, so every
    /// later save is refused (the node must stop and restart from `load`).
    failed: bool,
}

impl FileStorage {
    /// Storage in `dir` (created at `load` if missing). Does no IO.
    pub fn new(dir: impl Into<PathBuf>) -> FileStorage {
        let dir = dir.into();
        FileStorage {
            log_path: dir.join(LOG_FILE_NAME),
            snapshot_path: dir.join(SNAPSHOT_FILE_NAME),
            dir,
            log_file: None,
            log_file_size_bytes: 0,
            log_header_seq: 0,
            state: SizedState::default(),
            torn_tail_bytes_discarded: 0,
            failed: false,
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn snapshot_path(&self) -> &Path {
        &self.snapshot_path
    }

    /// Bytes of a torn final record the last `load` dropped (0 normally).
    pub fn torn_tail_bytes_discarded(&self) -> u64 {
        self.torn_tail_bytes_discarded
    }

    fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
        move |source| StorageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    async fn load_from_disk(&mut self) -> Result<PersistentState, StorageError> {
        disk::create_dir_all(&self.dir)
            .await
            .map_err(Self::io_error(&self.dir))?;
        let snapshot = match disk::read(&self.snapshot_path)
            .await
            .map_err(Self::io_error(&self.snapshot_path))?
        {
            Some(bytes) => Some(decode_snapshot_file(&self.snapshot_path, &bytes)?),
            None => None,
        };
        let mut state = PersistentState {
            snapshot,
            ..PersistentState::default()
        };
        self.torn_tail_bytes_discarded = 0;
        if let Some(bytes) = disk::read(&self.log_path)
            .await
            .map_err(Self::io_error(&self.log_path))?
        {
            let decoded = decode_log_file(&self.log_path, &bytes)?;
            if decoded.torn_tail_bytes > 0 {
                tracing::warn!(
                    path = %self.log_path.display(),
                    bytes = decoded.torn_tail_bytes,
                    "dropping the torn last record of an interrupted save"
                );
            }
            self.torn_tail_bytes_discarded = decoded.torn_tail_bytes;
            for record in decoded.records {
                replay_entries(&self.log_path, &mut state.entries, &record.entries)?;
                if let Some(hard_state) = record.hard_state {
                    state.hard_state = hard_state;
                }
            }
        }
        check_loaded_log(&state).map_err(|reason| StorageError::Corrupt {
            path: self.log_path.clone(),
            offset: 0,
            reason,
        })?;
        reconcile_loaded(&mut state).map_err(|reason| StorageError::Inconsistent {
            snapshot_path: self.snapshot_path.clone(),
            log_path: self.log_path.clone(),
            reason,
        })?;
        Ok(state)
    }

    async fn rewrite_log_file(&mut self) -> Result<(), StorageError> {
        let bytes = encode_log_file(self.state.state());
        let size_bytes = bytes.len() as u64;
        let file = disk::replace_and_open_append(&self.log_path, bytes)
            .await
            .map_err(Self::io_error(&self.log_path))?;
        self.log_file = Some(file);
        self.log_file_size_bytes = size_bytes;
        self.log_header_seq = LOG_FILE_INITIAL_SEQ;
        Ok(())
    }

    async fn save_to_disk(&mut self, write: StorageWrite<'_>) -> Result<(), StorageError> {
        if self.failed {
            return Err(StorageError::Io {
                path: self.log_path.clone(),
                source: std::io::Error::other("an earlier save failed; reload before saving"),
            });
        }
        let Some(log_file) = self.log_file.as_mut() else {
            return Err(StorageError::Io {
                path: self.log_path.clone(),
                source: std::io::Error::other("save before load"),
            });
        };
        write.validate(self.state.state())?;
        if write.is_empty() {
            return Ok(());
        }
        if let Some(snapshot) = write.snapshot {
            disk::replace(&self.snapshot_path, encode_snapshot_file(snapshot))
                .await
                .map_err(Self::io_error(&self.snapshot_path))?;
            self.state.apply(write)?;
            return self.rewrite_log_file().await;
        }
        let record = encode_record(&LogRecordRef {
            hard_state: write.hard_state,
            entries: write.entries,
        });
        self.log_file_size_bytes += record.len() as u64;
        // Once the record is durable, the header may say so (`format.rs`).
        self.log_header_seq += 1;
        log_file
            .append_durably_then_mark(
                record,
                header_slot_offset(self.log_header_seq),
                encode_header_slot(self.log_header_seq, self.log_file_size_bytes),
            )
            .await
            .map_err(Self::io_error(&self.log_path))?;
        self.state.apply(write)?;
        let state_size_bytes = self.state.raft_state_size_bytes();
        if self.log_file_size_bytes > 2 * state_size_bytes + LOG_REWRITE_SLACK_BYTES {
            self.rewrite_log_file().await?;
        }
        Ok(())
    }
}

/// Applies one record's entries to the entries replayed so far: they replace
/// everything from their first index on, and must not leave a gap.
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
    if let (Some(stored_first), Some(stored_last)) = (entries.first(), entries.last())
        && (first.index < stored_first.index || first.index > stored_last.index + 1)
    {
        return Err(corrupt(format!(
            "record entries start at {} but the log so far covers {}..={}",
            first.index, stored_first.index, stored_last.index
        )));
    }
    entries.retain(|e| e.index < first.index);
    entries.extend_from_slice(record);
    Ok(())
}

impl Storage for FileStorage {
    /// Reads both files, checks them, and rewrites the log file compacted
    /// (which also removes a torn tail for good).
    async fn load(&mut self) -> Result<PersistentState, StorageError> {
        self.log_file = None;
        self.failed = false;
        self.state = SizedState::new(self.load_from_disk().await?);
        self.rewrite_log_file().await?;
        Ok(self.state.state().clone())
    }

    async fn save(&mut self, write: StorageWrite<'_>) -> Result<(), StorageError> {
        let result = self.save_to_disk(write).await;
        if matches!(result, Err(StorageError::Io { .. })) {
            self.failed = true;
        }
        result
    }

    fn raft_state_size_bytes(&self) -> u64 {
        self.state.raft_state_size_bytes()
    }

    fn snapshot_size_bytes(&self) -> u64 {
        self.state
            .state()
            .snapshot
            .as_ref()
            .map_or(0, |s| s.data.len() as u64)
    }
}
