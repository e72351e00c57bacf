//! The ways storage fails.

use std::path::PathBuf;

use thiserror::Error;

/// A storage failure. Every variant that concerns a file names it.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file's contents fail a check (bad magic, bad checksum, bad length,
    /// undecodable record). The node must not start from it.
    #[error("corrupt file {path} at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The snapshot file and the log file each pass their checks but
    /// disagree in a way no crash produces (a gap between the snapshot and
    /// the log, a committed entry the snapshot contradicts, a commit index
    /// beyond both). The node must not start from them: it could serve a
    /// state that is not the replicated one.
    #[error("snapshot file {snapshot_path} and log file {log_path} disagree: {reason}")]
    Inconsistent {
        snapshot_path: PathBuf,
        log_path: PathBuf,
        reason: String,
    },
    /// The file was written in a format version this build does not read
    /// (by a newer release, during a rolling upgrade or after a rollback).
    /// Nothing is read from it: guessing could replay the log wrongly.
    #[error(
        "{path}: {kind} file format version {found} is not supported (this build reads version \
         {supported}); it was written by another release"
    )]
    UnsupportedVersion {
        path: PathBuf,
        kind: &'static str,
        found: u32,
        supported: u32,
    },
    /// The files present cannot be started from safely (for example a log
    /// or snapshot without the hard state file that holds the node's vote:
    /// starting with term 0 and no vote could vote twice in a term).
    #[error("refusing to start from {path}: {reason}")]
    Refused { path: PathBuf, reason: String },
    /// A file call on `path` never ran: the runtime was shutting down
    /// (the end of a graceful shutdown, or a test's runtime dropped under a
    /// running node). No disk failure: that call did not touch the disk.
    /// Earlier steps of the same save may have run, so what was asked is
    /// not known to be durable; the storage refuses further saves until
    /// reloaded (as after an I/O error) and the node stops quietly.
    #[error("work on {path} was not done: the runtime is shutting down")]
    ShuttingDown { path: PathBuf },
    /// The caller asked for a write that would leave a hole in the log.
    #[error("invalid write: {reason}")]
    InvalidWrite { reason: String },
    /// The caller asked for bytes the storage does not hold (a snapshot
    /// piece past the end of the stored snapshot).
    #[error("invalid read: {reason}")]
    InvalidRead { reason: String },
}

impl StorageError {
    /// The error of `source` on `path`: [`StorageError::ShuttingDown`] if
    /// the call never ran (see `disk::is_cancellation`), else
    /// [`StorageError::Io`].
    pub fn from_io(path: PathBuf, source: std::io::Error) -> Self {
        if super::disk::is_cancellation(&source) {
            StorageError::ShuttingDown { path }
        } else {
            StorageError::Io { path, source }
        }
    }
}
