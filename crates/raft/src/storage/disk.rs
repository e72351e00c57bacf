//! The few file operations [`super::FileStorage`] needs, over `std::fs` in
//! production and over madsim's simulated per-node disk under `--cfg madsim`
//! (the one place the storage switches worlds).

use std::io;
use std::path::Path;

pub use imp::{AppendFile, read, replace, replace_and_open_append};

/// Directory creation is a no-op in simulation (madsim's fs is flat).
#[cfg(not(madsim))]
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(madsim)]
pub fn create_dir_all(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(not(madsim))]
mod imp {
    //! Blocking `std::fs` calls behind async signatures: each save is one
    //! short write and one fsync that the node must wait for anyway.

    use std::fs::{File, OpenOptions};
    use std::io::{self, Write};
    use std::path::Path;

    /// The whole file, or None if it does not exist.
    pub async fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Atomically and durably replaces the file with `bytes`: write a
    /// temporary file, fsync it, rename it over the old one, fsync the
    /// directory. A crash at any point leaves the old or the new file.
    pub async fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
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

    /// A file open for durable appends.
    #[derive(Debug)]
    pub struct AppendFile {
        file: File,
    }

    /// [`replace`], then opens the new file for appending.
    pub async fn replace_and_open_append(path: &Path, bytes: &[u8]) -> io::Result<AppendFile> {
        replace(path, bytes).await?;
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(AppendFile { file })
    }

    impl AppendFile {
        /// Appends `bytes` and returns once they are on disk (fdatasync).
        pub async fn append_durably(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.file.write_all(bytes)?;
            self.file.sync_data()
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

    pub async fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
        replace_and_open_append(path, bytes).await.map(|_| ())
    }

    #[derive(Debug)]
    pub struct AppendFile {
        file: File,
        len: u64,
    }

    pub async fn replace_and_open_append(path: &Path, bytes: &[u8]) -> io::Result<AppendFile> {
        let file = File::create(path).await?;
        file.write_all_at(bytes, 0).await?;
        file.sync_all().await?;
        Ok(AppendFile {
            file,
            len: bytes.len() as u64,
        })
    }

    impl AppendFile {
        pub async fn append_durably(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.file.write_all_at(bytes, self.len).await?;
            self.len += bytes.len() as u64;
            self.file.sync_all().await
        }
    }
}
