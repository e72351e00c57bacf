//! The few file operations [`super::FileStorage`] needs, over `std::fs` in
//! production and over a simulated disk under `--cfg madsim` (the one place
//! the storage switches worlds). Both offer the same functions:
//!
//! - `create_dir_all`: creates the directory and makes its creation durable
//!   (each new directory's parent is fsynced);
//! - `read`, `list`: a whole file (None if absent), a directory's names;
//! - `replace`: atomically and durably replaces a file, with contents
//!   given in parts (a snapshot's head and its shared data: written one
//!   after the other, never joined in memory);
//! - `write_durably` then `rename_durably`: the two halves of `replace`,
//!   for a caller that writes the new file off its own task and installs
//!   it later;
//! - `create_file`: atomically creates a file with initial contents, durably
//!   (its directory entry included), open for writing;
//! - `open_for_writing`: opens an existing file, cutting it to a length;
//! - `remove` then `sync_dir`: removes files durably;
//! - [`AppendFile`]: positioned writes, each call returning once durable;
//! - [`lock_dir`]: the directory's lock, a [`DirLock`].
//!
//! Every call but `create_dir_all` takes the [`DirLock`] of the directory it
//! works in, and holds it until its work on the disk is done, even when its
//! caller has gone (see the production module): one storage at a time
//! works in a directory.
//!
//! The simulated disk loses what was not synced when its node is killed,
//! as a power failure would: see its module.

pub use imp::{
    AppendFile, DirLock, create_dir_all, create_file, list, lock_dir, open_for_writing, read,
    read_range, remove, rename_durably, replace, sync_dir, write_durably,
};

/// The error inside the `io::Error` of a file call that never ran because
/// the runtime was shutting down (tokio cancels the blocking tasks that
/// have not started when its runtime is dropped). Not a disk failure: the
/// disk was not touched. [`is_cancellation`] tells it apart.
#[derive(Debug)]
pub struct CancelledAtShutdown;

impl std::fmt::Display for CancelledAtShutdown {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .write_str("the file task was cancelled before it ran: the runtime is shutting down")
    }
}

impl std::error::Error for CancelledAtShutdown {}

/// Whether `error` is a [`CancelledAtShutdown`], not a failure of the disk.
pub fn is_cancellation(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<CancelledAtShutdown>())
}

#[cfg(not(madsim))]
mod imp {
    //! `std::fs` calls, each run on tokio's blocking pool
    //! (`spawn_blocking`) so a slow disk or a long fsync never stalls the
    //! runtime's worker threads and the other tasks on them. Called outside
    //! any tokio runtime (a synchronous caller such as a test using
    //! `futures::executor::block_on`), they run inline: there is no worker
    //! thread to stall.
    //!
    //! A blocking call is not cancelled when its caller is dropped (a node
    //! killed mid-save): it runs to completion, which is as if the kill had
    //! come just after it. It holds the directory's [`DirLock`] until then,
    //! so a node restarted in the same process (the demo's stop and start)
    //! cannot load, or write, while the stopped node's last write is still
    //! going on: the two would race on the same files (a snapshot's
    //! temporary file written by both, a segment created twice).

    use std::fs::{File, OpenOptions, TryLockError};
    use std::io::{self, Write};
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    /// The file in a storage directory whose lock [`lock_dir`] takes.
    const LOCK_FILE_NAME: &str = "LOCK";

    /// The exclusive lock (`flock`) on a storage directory's
    /// [`LOCK_FILE_NAME`], held while any clone lives: by the
    /// storage, its open files and each blocking call in flight. The lock
    /// belongs to the open file, so it also keeps out a second storage in
    /// this process, not only other processes; the kernel drops it when
    /// the last clone is dropped or the process dies.
    #[derive(Clone, Debug)]
    pub struct DirLock {
        /// Never read: it is held for its lock.
        _file: Arc<File>,
    }

    /// How often [`lock_dir`] tries again while the lock is held.
    const LOCK_RETRY: Duration = Duration::from_millis(20);

    /// Takes the lock of `dir` (which must exist), waiting up to `wait`
    /// for a holder to let go: in this process, a stopped storage's last
    /// blocking call finishing. Past `wait`, an error that says the
    /// directory is in use.
    pub async fn lock_dir(dir: &Path, wait: Duration) -> io::Result<DirLock> {
        let path = dir.join(LOCK_FILE_NAME);
        let work = move || {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            // Counted in tries, not read from a clock: this is the
            // production world, but the seam keeps clocks out of storage.
            let mut tries_left = wait.as_millis() / LOCK_RETRY.as_millis();
            loop {
                match file.try_lock() {
                    Ok(()) => {
                        return Ok(DirLock {
                            _file: Arc::new(file),
                        });
                    }
                    Err(TryLockError::WouldBlock) if tries_left > 0 => {
                        tries_left -= 1;
                        std::thread::sleep(LOCK_RETRY);
                    }
                    Err(TryLockError::WouldBlock) => {
                        return Err(io::Error::new(
                            io::ErrorKind::WouldBlock,
                            format!(
                                "{} is locked: another process (or another node of this \
                                 process) is using this data directory; waited {wait:?}",
                                path.display()
                            ),
                        ));
                    }
                    Err(TryLockError::Error(error)) => return Err(error),
                }
            }
        };
        unlocked(work).await
    }

    /// Runs `work` on the blocking pool, holding `lock` until it is done.
    async fn blocking<T: Send + 'static>(
        lock: &DirLock,
        work: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let held = lock.clone();
        unlocked(move || {
            let result = work();
            drop(held);
            result
        })
        .await
    }

    /// Runs `work` on the blocking pool (inline outside a runtime).
    async fn unlocked<T: Send + 'static>(
        work: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn_blocking(work).await.map_err(join_failed)?,
            Err(_) => work(),
        }
    }

    /// The blocking task did not return: cancelled (it never ran, see
    /// [`super::CancelledAtShutdown`]) or panicked (a bug, reported as an
    /// I/O error: what the task did to its file is unknown).
    fn join_failed(error: tokio::task::JoinError) -> io::Error {
        if error.is_cancelled() {
            io::Error::other(super::CancelledAtShutdown)
        } else {
            io::Error::other(format!("blocking file task failed: {error}"))
        }
    }

    fn parent_of(path: &Path) -> &Path {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    fn sync_dir_now(dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    /// Creates `dir` and its missing ancestors, then fsyncs the parent of
    /// each one created (a directory entry is durable only once its parent
    /// is synced: without this a crash on first boot could lose the
    /// directory, and with it the vote stored inside).
    pub async fn create_dir_all(dir: &Path) -> io::Result<()> {
        let dir = dir.to_path_buf();
        unlocked(move || {
            let mut missing: Vec<PathBuf> = Vec::new();
            let mut cursor = Some(dir.as_path());
            while let Some(path) = cursor {
                if path.as_os_str().is_empty() || path.exists() {
                    break;
                }
                missing.push(path.to_path_buf());
                cursor = path.parent();
            }
            if missing.is_empty() {
                return Ok(());
            }
            std::fs::create_dir_all(&dir)?;
            // Deepest first up to the existing ancestor: each new entry's
            // parent.
            for created in &missing {
                sync_dir_now(parent_of(created))?;
            }
            Ok(())
        })
        .await
    }

    pub async fn sync_dir(lock: &DirLock, dir: &Path) -> io::Result<()> {
        let dir = dir.to_path_buf();
        blocking(lock, move || sync_dir_now(&dir)).await
    }

    /// The whole file, or None if it does not exist.
    pub async fn read(lock: &DirLock, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let path = path.to_path_buf();
        blocking(lock, move || match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        })
        .await
    }

    /// The file's length and its `length_bytes` bytes at `offset` (an
    /// error if the file is shorter).
    pub async fn read_range(
        lock: &DirLock,
        path: &Path,
        offset: u64,
        length_bytes: usize,
    ) -> io::Result<(u64, Vec<u8>)> {
        let path = path.to_path_buf();
        blocking(lock, move || {
            let file = File::open(path)?;
            let file_len = file.metadata()?.len();
            let mut bytes = vec![0; length_bytes];
            file.read_exact_at(&mut bytes, offset)?;
            Ok((file_len, bytes))
        })
        .await
    }

    /// The names of the entries of `dir` (not valid UTF-8: skipped, no file
    /// of ours has such a name).
    pub async fn list(lock: &DirLock, dir: &Path) -> io::Result<Vec<String>> {
        let dir = dir.to_path_buf();
        blocking(lock, move || {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(dir)? {
                if let Ok(name) = entry?.file_name().into_string() {
                    names.push(name);
                }
            }
            names.sort();
            Ok(names)
        })
        .await
    }

    /// Atomically and durably replaces the file with `parts`, one after
    /// the other: write a temporary file, fsync it, rename it over the old
    /// one, fsync the directory. A crash at any point leaves the old or
    /// the new file.
    fn replace_now(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
        let temporary_path = path.with_extension("tmp");
        write_now(&temporary_path, parts)?;
        rename_now(&temporary_path, path)
    }

    /// Creates (or truncates) the file and writes `parts` in order,
    /// fsynced; its directory entry is not (see [`rename_durably`]).
    fn write_now(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
        let mut file = File::create(path)?;
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_all()
    }

    fn slices(parts: &[Bytes]) -> Vec<&[u8]> {
        parts.iter().map(|part| &part[..]).collect()
    }

    fn rename_now(from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)?;
        sync_dir_now(parent_of(to))
    }

    /// The first half of [`replace`]: the new contents in a file of their
    /// own (named by the caller), durable, not yet in place.
    pub async fn write_durably(lock: &DirLock, path: &Path, parts: Vec<Bytes>) -> io::Result<()> {
        let path = path.to_path_buf();
        blocking(lock, move || write_now(&path, &slices(&parts))).await
    }

    /// The second half of [`replace`]: `from` renamed over `to`, the
    /// directory fsynced. A crash leaves the old or the new `to`.
    pub async fn rename_durably(lock: &DirLock, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        blocking(lock, move || rename_now(&from, &to)).await
    }

    pub async fn replace(lock: &DirLock, path: &Path, parts: Vec<Bytes>) -> io::Result<()> {
        let path = path.to_path_buf();
        blocking(lock, move || replace_now(&path, &slices(&parts))).await
    }

    /// [`replace`] (so a crash leaves no half-made file), then opens the new
    /// file for writing.
    pub async fn create_file(
        lock: &DirLock,
        path: &Path,
        bytes: Vec<u8>,
    ) -> io::Result<AppendFile> {
        let path: PathBuf = path.to_path_buf();
        let len = bytes.len() as u64;
        let file = blocking(lock, move || {
            replace_now(&path, &[&bytes])?;
            OpenOptions::new().write(true).open(&path)
        })
        .await?;
        Ok(AppendFile {
            lock: lock.clone(),
            file: Arc::new(file),
            len,
        })
    }

    /// Opens an existing file for writing and durably cuts it to `len` bytes
    /// (dropping a torn tail).
    pub async fn open_for_writing(lock: &DirLock, path: &Path, len: u64) -> io::Result<AppendFile> {
        let path: PathBuf = path.to_path_buf();
        let file = blocking(lock, move || {
            let file = OpenOptions::new().write(true).open(&path)?;
            if file.metadata()?.len() != len {
                file.set_len(len)?;
                file.sync_all()?;
            }
            Ok(file)
        })
        .await?;
        Ok(AppendFile {
            lock: lock.clone(),
            file: Arc::new(file),
            len,
        })
    }

    /// Removes a file; durable after [`sync_dir`] of its directory.
    pub async fn remove(lock: &DirLock, path: &Path) -> io::Result<()> {
        let path = path.to_path_buf();
        blocking(lock, move || match std::fs::remove_file(path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await
    }

    /// A file open for durable appends at its end and for in-place writes
    /// before it. (Not opened `O_APPEND`: Linux ignores the offset of a
    /// positioned write to such a file.)
    #[derive(Debug)]
    pub struct AppendFile {
        lock: DirLock,
        file: Arc<File>,
        len: u64,
    }

    impl AppendFile {
        pub fn size_bytes(&self) -> u64 {
            self.len
        }

        /// Appends `bytes`, returns once they are on disk (fdatasync), and
        /// then overwrites `mark` at `mark_offset` (before the end) without
        /// waiting for the disk: the next sync makes it durable. One trip
        /// to the blocking pool for both.
        pub async fn append_durably_then_mark(
            &mut self,
            bytes: Vec<u8>,
            mark_offset: u64,
            mark: Vec<u8>,
        ) -> io::Result<()> {
            assert!(
                mark_offset + mark.len() as u64 <= self.len,
                "mark past the end of the file"
            );
            let file = Arc::clone(&self.file);
            let offset = self.len;
            let added = bytes.len() as u64;
            blocking(&self.lock, move || {
                file.write_all_at(&bytes, offset)?;
                file.sync_data()?;
                file.write_all_at(&mark, mark_offset)
            })
            .await?;
            self.len += added;
            Ok(())
        }

        /// Overwrites `bytes` at `offset` (inside the file) and returns once
        /// they are on disk.
        pub async fn overwrite_durably(&mut self, offset: u64, bytes: Vec<u8>) -> io::Result<()> {
            assert!(
                offset + bytes.len() as u64 <= self.len,
                "overwrite past the end of the file"
            );
            let file = Arc::clone(&self.file);
            blocking(&self.lock, move || {
                file.write_all_at(&bytes, offset)?;
                file.sync_data()
            })
            .await
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test(flavor = "current_thread")]
        async fn a_cancelled_task_is_told_apart_from_a_failed_one() {
            let never_ran = tokio::spawn(std::future::pending::<()>());
            never_ran.abort();
            let cancelled = join_failed(never_ran.await.unwrap_err());
            assert!(super::super::is_cancellation(&cancelled), "{cancelled}");
            assert!(
                cancelled.to_string().contains("shutting down"),
                "{cancelled}"
            );

            let panicked = tokio::spawn(async { panic!("a bug in a file task") });
            let failed = join_failed(panicked.await.unwrap_err());
            assert!(!super::super::is_cancellation(&failed), "{failed}");
            assert!(!super::super::is_cancellation(
                &io::Error::from_raw_os_error(28)
            ));
        }
    }
}

#[cfg(madsim)]
mod imp {
    //! A simulated disk over madsim's per-node file store (which survives a
    //! node's kill and restart, but keeps every write at once and has no
    //! directories, rename or removal).
    //!
    //! - **Unsynced data is lost on a crash.** An [`AppendFile`] keeps its
    //!   writes in memory until a sync, which applies them to madsim's store
    //!   in order. Killing the node drops the `AppendFile` and with it every
    //!   write not yet synced, as a power failure drops the page cache. (A
    //!   real disk may also keep part of an unsynced write; the storage's
    //!   torn-write handling is tested with real files, byte by byte.)
    //! - **Atomic operations** (`replace`, `create_file`, removal): madsim's
    //!   file calls complete without yielding, so a sequence of them in one
    //!   function is atomic in the simulation, and durable at once.
    //! - **Directories** are simulated by a listing file per directory
    //!   (`<dir>/.listing`, one name a line), updated atomically with each
    //!   creation and removal; removal empties the file and unlists it.

    use std::io;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use bytes::Bytes;

    use madsim::fs::File;

    const LISTING_FILE_NAME: &str = ".listing";

    /// No lock is needed in the simulation: a killed node's file calls end
    /// with it (they never outlive their caller, as blocking calls can), and
    /// each simulated node has a disk of its own.
    #[derive(Clone, Debug)]
    pub struct DirLock;

    pub async fn lock_dir(_dir: &Path, _wait: Duration) -> io::Result<DirLock> {
        Ok(DirLock)
    }

    fn parent_of(path: &Path) -> &Path {
        path.parent().unwrap_or(Path::new("/"))
    }

    fn name_of(path: &Path) -> io::Result<String> {
        path.file_name()
            .and_then(|name| name.to_str())
            .map(str::to_owned)
            .ok_or_else(|| io::Error::other(format!("no file name in {}", path.display())))
    }

    pub async fn read(_lock: &DirLock, path: &Path) -> io::Result<Option<Vec<u8>>> {
        if !list(&DirLock, parent_of(path))
            .await?
            .contains(&name_of(path)?)
        {
            return Ok(None);
        }
        match madsim::fs::read(path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The file's length and its `length_bytes` bytes at `offset` (an
    /// error if the file is shorter or missing). Reads the whole file:
    /// simulated files are small.
    pub async fn read_range(
        lock: &DirLock,
        path: &Path,
        offset: u64,
        length_bytes: usize,
    ) -> io::Result<(u64, Vec<u8>)> {
        let Some(bytes) = read(lock, path).await? else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} does not exist", path.display()),
            ));
        };
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(length_bytes)?))
            .filter(|range| range.end <= bytes.len())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} bytes at {offset} past the end of {} ({} bytes)",
                        length_bytes,
                        path.display(),
                        bytes.len()
                    ),
                )
            })?;
        Ok((bytes.len() as u64, bytes[range].to_vec()))
    }

    pub async fn list(_lock: &DirLock, dir: &Path) -> io::Result<Vec<String>> {
        match madsim::fs::read(dir.join(LISTING_FILE_NAME)).await {
            Ok(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| io::Error::other("simulated directory listing is not UTF-8"))?;
                Ok(text.lines().map(str::to_owned).collect())
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(error),
        }
    }

    async fn set_listed(path: &Path, listed: bool) -> io::Result<()> {
        let dir = parent_of(path);
        let name = name_of(path)?;
        let mut names = list(&DirLock, dir).await?;
        let present = names.contains(&name);
        if present == listed {
            return Ok(());
        }
        if listed {
            names.push(name);
            names.sort();
        } else {
            names.retain(|n| *n != name);
        }
        let file = File::create(dir.join(LISTING_FILE_NAME)).await?;
        file.write_all_at(names.join("\n").as_bytes(), 0).await?;
        file.sync_all().await
    }

    /// Directories need no creation in madsim's flat store.
    pub async fn create_dir_all(_dir: &Path) -> io::Result<()> {
        Ok(())
    }

    /// Directory changes are durable at once in the simulation.
    pub async fn sync_dir(_lock: &DirLock, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    /// The parts joined: a copy costs nothing that matters in the
    /// simulation.
    pub async fn replace(_lock: &DirLock, path: &Path, parts: Vec<Bytes>) -> io::Result<()> {
        create_file(&DirLock, path, parts.concat())
            .await
            .map(|_| ())
    }

    /// madsim's file calls never yield, so this is atomic in the
    /// simulation; the file is listed (as a real directory would show it).
    pub async fn write_durably(_lock: &DirLock, path: &Path, parts: Vec<Bytes>) -> io::Result<()> {
        create_file(&DirLock, path, parts.concat())
            .await
            .map(|_| ())
    }

    /// madsim has no rename: the contents are copied over `to` and `from`
    /// is removed, with no yield between (atomic here, as above).
    pub async fn rename_durably(_lock: &DirLock, from: &Path, to: &Path) -> io::Result<()> {
        let bytes = madsim::fs::read(from).await?;
        create_file(&DirLock, to, bytes).await?;
        remove(&DirLock, from).await
    }

    pub async fn create_file(
        _lock: &DirLock,
        path: &Path,
        bytes: Vec<u8>,
    ) -> io::Result<AppendFile> {
        let file = File::create(path).await?;
        file.write_all_at(&bytes, 0).await?;
        file.sync_all().await?;
        set_listed(path, true).await?;
        Ok(AppendFile {
            path: path.to_path_buf(),
            file,
            len: bytes.len() as u64,
            unsynced: Vec::new(),
        })
    }

    /// madsim opens existing files read-only; "reopening" for writing
    /// rewrites the kept bytes into a fresh file (atomic here, see above).
    pub async fn open_for_writing(
        _lock: &DirLock,
        path: &Path,
        len: u64,
    ) -> io::Result<AppendFile> {
        let mut bytes = madsim::fs::read(path).await?;
        let kept = usize::try_from(len).unwrap_or(usize::MAX);
        if kept > bytes.len() {
            return Err(io::Error::other(format!(
                "{} is {} bytes, cannot keep {len}",
                path.display(),
                bytes.len()
            )));
        }
        bytes.truncate(kept);
        create_file(&DirLock, path, bytes).await
    }

    pub async fn remove(_lock: &DirLock, path: &Path) -> io::Result<()> {
        File::create(path).await?;
        set_listed(path, false).await
    }

    /// A file open for writing whose writes reach the (simulated) disk only
    /// when synced; dropped unsynced writes are lost.
    pub struct AppendFile {
        path: PathBuf,
        file: File,
        len: u64,
        /// Writes not yet synced, in order: `(offset, bytes)`.
        unsynced: Vec<(u64, Vec<u8>)>,
    }

    impl std::fmt::Debug for AppendFile {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter
                .debug_struct("AppendFile")
                .field("path", &self.path)
                .field("len", &self.len)
                .field("unsynced_writes", &self.unsynced.len())
                .finish()
        }
    }

    impl AppendFile {
        pub fn size_bytes(&self) -> u64 {
            self.len
        }

        async fn sync(&mut self) -> io::Result<()> {
            for (offset, bytes) in std::mem::take(&mut self.unsynced) {
                self.file.write_all_at(&bytes, offset).await?;
            }
            self.file.sync_all().await
        }

        pub async fn append_durably_then_mark(
            &mut self,
            bytes: Vec<u8>,
            mark_offset: u64,
            mark: Vec<u8>,
        ) -> io::Result<()> {
            assert!(
                mark_offset + mark.len() as u64 <= self.len,
                "mark past the end of the file"
            );
            let added = bytes.len() as u64;
            self.unsynced.push((self.len, bytes));
            self.sync().await?;
            self.len += added;
            // Not synced: lost if the node is killed before the next sync.
            self.unsynced.push((mark_offset, mark));
            Ok(())
        }

        pub async fn overwrite_durably(&mut self, offset: u64, bytes: Vec<u8>) -> io::Result<()> {
            assert!(
                offset + bytes.len() as u64 <= self.len,
                "overwrite past the end of the file"
            );
            self.unsynced.push((offset, bytes));
            self.sync().await
        }
    }
}
