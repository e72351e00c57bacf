//! [`LocalDir`]: the job directory on a real filesystem.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{JobDir, StorageError, check_name};

/// A real directory. Writes go to a temporary file named
/// `.<name>.tmp.<pid>.<n>` in the same directory, which is written,
/// `fsync`ed and renamed over `<name>` (atomic on POSIX filesystems);
/// [`JobDir::sync`] then `fsync`s the directory so the renames themselves
/// survive a power loss.
/// A worker that dies before the rename leaves only a dot-file, which
/// [`JobDir::list`] never returns and no reader opens.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

/// Distinguishes temporaries of concurrent writes within one process.
static TEMPORARY_SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl LocalDir {
    /// The directory `root`, which must exist.
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalDir, StorageError> {
        let root = root.into();
        match fs::metadata(&root) {
            Ok(metadata) if metadata.is_dir() => Ok(LocalDir { root }),
            Ok(_) => Err(StorageError::Io {
                name: root.display().to_string(),
                operation: "open job directory",
                source: std::io::Error::other("not a directory"),
            }),
            Err(source) => Err(io_error(&root, "open job directory", source)),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn io_error(path: &Path, operation: &'static str, source: std::io::Error) -> StorageError {
    if source.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound {
            name: path.display().to_string(),
        }
    } else {
        StorageError::Io {
            name: path.display().to_string(),
            operation,
            source,
        }
    }
}

impl JobDir for LocalDir {
    fn read(&self, name: &str) -> Result<Vec<u8>, StorageError> {
        // An absolute input path replaces the root, as `Path::join` does.
        let path = self.root.join(name);
        fs::read(&path).map_err(|source| io_error(&path, "read", source))
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        check_name(name)?;
        let sequence = TEMPORARY_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let temporary = self
            .root
            .join(format!(".{name}.tmp.{}.{sequence}", std::process::id()));
        let target = self.root.join(name);
        let written = (|| {
            let mut file = fs::File::create(&temporary)
                .map_err(|source| io_error(&temporary, "create", source))?;
            file.write_all(bytes)
                .map_err(|source| io_error(&temporary, "write", source))?;
            file.sync_all()
                .map_err(|source| io_error(&temporary, "fsync", source))?;
            fs::rename(&temporary, &target).map_err(|source| io_error(&target, "rename", source))
        })();
        if let Err(error) = written {
            // Best effort: the temporary is invisible anyway, this only
            // saves disk space. The write's own error is what matters.
            let _ = fs::remove_file(&temporary);
            return Err(error);
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        // Makes the renames durable (POSIX: fsync the directory itself).
        let directory =
            fs::File::open(&self.root).map_err(|source| io_error(&self.root, "open", source))?;
        directory
            .sync_all()
            .map_err(|source| io_error(&self.root, "fsync directory", source))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let entries =
            fs::read_dir(&self.root).map_err(|source| io_error(&self.root, "list", source))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| io_error(&self.root, "list", source))?;
            // Names that are not UTF-8 are not ours (ours are ASCII).
            if let Some(name) = entry.file_name().to_str()
                && name.starts_with(prefix)
                && !name.starts_with('.')
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn remove(&self, name: &str) -> Result<(), StorageError> {
        check_name(name)?;
        let path = self.root.join(name);
        fs::remove_file(&path).map_err(|source| io_error(&path, "remove", source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_hides_temporaries() {
        let temporary = tempfile::tempdir().unwrap();
        let dir = LocalDir::new(temporary.path()).unwrap();
        dir.write_atomic("mr-out-0", b"a 1\n").unwrap();
        dir.write_atomic("mr-out-0", b"a 2\n").unwrap();
        dir.sync().unwrap();
        assert_eq!(dir.read("mr-out-0").unwrap(), b"a 2\n");
        // A leftover temporary from a crashed writer is never listed.
        fs::write(temporary.path().join(".mr-out-1.tmp.1.0"), b"partial").unwrap();
        assert_eq!(dir.list("").unwrap(), vec!["mr-out-0"]);
        assert!(matches!(
            dir.read("missing"),
            Err(StorageError::NotFound { .. })
        ));
        dir.remove("mr-out-0").unwrap();
        assert!(dir.list("mr-").unwrap().is_empty());
        assert!(LocalDir::new(temporary.path().join("nope")).is_err());
    }
}
