//! The few file operations [`super::FileStorage`] needs, over `std::fs` in
//! production and over madsim's simulated per-node disk under `--cfg madsim`
//! (the one place the storage switches worlds).

pub use imp::{AppendFile, create_dir_all, read, replace, replace_and_open_append};

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
    //! come just after it.

    use std::fs::{File, OpenOptions};
    use std::io::{self, Write};
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    async fn blocking<T: Send + 'static>(
        work: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(work)
                .await
                .map_err(|error| io::Error::other(format!("blocking file task failed: {error}")))?,
            Err(_) => work(),
        }
    }

    pub async fn create_dir_all(dir: &Path) -> io::Result<()> {
        let dir = dir.to_path_buf();
        blocking(move || std::fs::create_dir_all(dir)).await
    }

    /// The whole file, or None if it does not exist.
    pub async fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
        let path = path.to_path_buf();
        blocking(move || match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        })
        .await
    }

    /// Atomically and durably replaces the file with `bytes`: write a
    /// temporary file, fsync it, rename it over the old one, fsync the
    /// directory. A crash at any point leaves the old or the new file.
    fn replace_now(path: &Path, bytes: &[u8]) -> io::Result<()> {
        let temporary_path = path.with_extension("tmp");
        {
            let mut file = File::create(&temporary_path)?;
            file.write_all(bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary_path, path)?;
        let directory = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(directory)?.sync_all()
    }

    pub async fn replace(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
        let path = path.to_path_buf();
        blocking(move || replace_now(&path, &bytes)).await
    }

    /// A file open for durable appends at its end and for in-place writes
    /// before it. (Not opened `O_APPEND`: Linux ignores the offset of a
    /// positioned write to such a file.)
    #[derive(Debug)]
    pub struct AppendFile {
        file: Arc<File>,
        len: u64,
    }

    /// [`replace`], then opens the new file for appending.
    pub async fn replace_and_open_append(path: &Path, bytes: Vec<u8>) -> io::Result<AppendFile> {
        let path: PathBuf = path.to_path_buf();
        let len = bytes.len() as u64;
        let file = blocking(move || {
            replace_now(&path, &bytes)?;
            OpenOptions::new().write(true).open(&path)
        })
        .await?;
        Ok(AppendFile {
            file: Arc::new(file),
            len,
        })
    }

    impl AppendFile {
        /// Appends `bytes`, returns once they are on disk (fdatasync), and
        /// then overwrites `mark` at `mark_offset` (before the end) without
        /// waiting for the disk: the next append makes it durable. One trip
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
            blocking(move || {
                file.write_all_at(&bytes, offset)?;
                file.sync_data()?;
                file.write_all_at(&mark, mark_offset)
            })
            .await?;
            self.len += added;
            Ok(())
        }
    }
}

#[cfg(madsim)]
mod imp {
    //! madsim's simulated disk: per node, survives kill and restart. It has
    //! no rename, so `replace` rewrites the file in place; that is atomic in
    //! the simulator because a write there completes without yielding and
    //! madsim does not (yet) simulate losing unsynced data on power failure.

    use std::io;
    use std::path::Path;

    use madsim::fs::File;

    pub async fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
        match madsim::fs::read(path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Directory creation is a no-op in simulation (madsim's fs is flat).
    pub async fn create_dir_all(_dir: &Path) -> io::Result<()> {
        Ok(())
    }

    pub async fn replace(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
        replace_and_open_append(path, bytes).await.map(|_| ())
    }

    #[derive(Debug)]
    pub struct AppendFile {
        file: File,
        len: u64,
    }

    pub async fn replace_and_open_append(path: &Path, bytes: Vec<u8>) -> io::Result<AppendFile> {
        let file = File::create(path).await?;
        file.write_all_at(&bytes, 0).await?;
        file.sync_all().await?;
        Ok(AppendFile {
            file,
            len: bytes.len() as u64,
        })
    }

    impl AppendFile {
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
            self.file.write_all_at(&bytes, self.len).await?;
            self.len += bytes.len() as u64;
            self.file.sync_all().await?;
            self.file.write_all_at(&mark, mark_offset).await
        }
    }
}
