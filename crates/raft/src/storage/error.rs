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
    /// The caller asked for a write that would leave a hole in the log.
    #[error("invalid write: {reason}")]
    InvalidWrite { reason: String },
}
