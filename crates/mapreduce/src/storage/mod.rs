//! The job directory: where inputs are read and every output appears.
//!
//! 6.5840's workers share one filesystem: a worker reads the input files,
//! writes intermediate files `mr-X-Y` that other workers read, and writes
//! the outputs `mr-out-Y`. This module is the seam between that shared
//! directory and the code, with two implementations:
//!
//! - [`LocalDir`] (production only): a real directory through `std::fs`,
//!   atomic by temporary file + `fsync` + `rename` + directory `fsync`.
//! - [`SharedMemoryDir`]: an in-memory "network filesystem" that one
//!   simulated test shares among all its nodes (madsim gives each node its
//!   own disk, so madsim's own fs cannot play this part). Also handy in unit
//!   tests of the normal build.
//!
//! The operations are synchronous. A worker does one thing at a time, so
//! blocking its task for a file read is what the lab's Go worker does too;
//! the real implementation is only used by the worker and sequential
//! processes, never inside the coordinator's RPC handlers.

#[cfg(not(madsim))]
mod local;
mod shared_memory;

#[cfg(not(madsim))]
pub use local::LocalDir;
pub use shared_memory::SharedMemoryDir;

/// A directory shared by the coordinator's workers.
///
/// Names given to [`JobDir::write_atomic`], [`JobDir::remove`] and returned by
/// [`JobDir::list`] are plain file names inside the directory: not empty, no
/// `/`, not starting with `.` (names starting with `.` are reserved for the
/// implementation's temporary files). [`JobDir::read`] also accepts the input
/// paths a user gave on the command line.
///
/// The contract every implementation keeps: a file written with
/// [`JobDir::write_atomic`] becomes visible whole or not at all. A reader
/// sees the previous version (or no file) until the new one is complete,
/// and a writer that crashes in the middle leaves nothing visible that
/// [`JobDir::list`] or [`JobDir::read`] would return under the final name.
pub trait JobDir: Send + Sync {
    /// The whole contents of `name`.
    fn read(&self, name: &str) -> Result<Vec<u8>, StorageError>;

    /// Makes `name` hold exactly `bytes`, atomically (see the trait docs).
    /// Replaces an existing file of that name. The contents are durable
    /// before the name appears; the name itself is durable after
    /// [`JobDir::sync`].
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError>;

    /// Makes every completed [`JobDir::write_atomic`] survive a power loss
    /// (on a real filesystem, `fsync`s the directory). A worker calls it
    /// once per task, before reporting the task done, rather than once
    /// per file.
    fn sync(&self) -> Result<(), StorageError>;

    /// The visible files whose name starts with `prefix`, sorted.
    /// Temporary files are never listed.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;

    /// Removes `name`. Removing a file that does not exist is an error.
    fn remove(&self, name: &str) -> Result<(), StorageError>;
}

/// What can go wrong with the job directory.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{name}: no such file")]
    NotFound { name: String },
    #[error("{name}: not a valid file name in the job directory: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("{name}: {operation} failed: {source}")]
    Io {
        name: String,
        operation: &'static str,
        source: std::io::Error,
    },
}

/// Checks the rules of the trait docs for names the job writes.
pub(crate) fn check_name(name: &str) -> Result<(), StorageError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.contains('/') || name.contains('\\') {
        "contains a path separator"
    } else if name.starts_with('.') {
        "names starting with '.' are reserved for temporary files"
    } else {
        return Ok(());
    };
    Err(StorageError::InvalidName {
        name: name.to_string(),
        reason,
    })
}
