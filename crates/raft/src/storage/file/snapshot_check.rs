//! Reading the stored snapshot back in pieces, for a leader sending it to
//! a follower that fell behind its log (`Storage::read_snapshot_piece`),
//! with the file checked against its CRC as the pieces go.

use std::path::Path;

use crate::core::SnapshotMeta;
use crate::storage::StorageError;
use crate::storage::disk;
use crate::storage::format::{SNAPSHOT_HEAD_BYTES, check_snapshot_file_head};

use super::FileStorage;

/// At most this much of a snapshot file is read at once to catch its
/// CRC check up with a piece asked for further on.
const SNAPSHOT_CHECK_READ_BYTES_MAX: u64 = 1 << 20;

/// The stored snapshot file checked against its record's CRC-32 as its
/// pieces are read: the bytes from the record's start up to `checked_to`
/// are hashed. The piece that ends the file is returned only once the
/// whole file matches, so a follower (which installs only after the last
/// piece) never installs a damaged snapshot, and no single read has to
/// go through the whole file (which would hold the Raft loop).
#[derive(Debug)]
pub(super) struct SnapshotCheck {
    pub(super) meta: SnapshotMeta,
    file_len: u64,
    expected_crc: u32,
    hasher: crc32fast::Hasher,
    /// File offset up to which the bytes are hashed.
    checked_to: u64,
    /// The whole file matched.
    matched: bool,
}

pub(super) fn snapshot_shorter_than_data(
    path: &Path,
    file_len: u64,
    data_size_bytes: u64,
) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: format!(
            "a snapshot file of {file_len} bytes cannot hold the {data_size_bytes} bytes of data \
             stored"
        ),
    }
}

impl FileStorage {
    /// Starts checking the stored snapshot file (at `meta`): its length
    /// and head.
    pub(super) async fn start_snapshot_check(
        &self,
        meta: &SnapshotMeta,
    ) -> Result<SnapshotCheck, StorageError> {
        let lock = self.dir_lock()?;
        let path = &self.snapshot_path;
        let (file_len, _) = disk::read_range(&lock, path, 0, 0)
            .await
            .map_err(Self::io_error(path))?;
        let data_size_bytes = self.index.snapshot_data_size_bytes();
        if file_len < SNAPSHOT_HEAD_BYTES as u64 + data_size_bytes {
            return Err(snapshot_shorter_than_data(path, file_len, data_size_bytes));
        }
        let (_, head) = disk::read_range(&lock, path, 0, SNAPSHOT_HEAD_BYTES)
            .await
            .map_err(Self::io_error(path))?;
        Ok(SnapshotCheck {
            meta: meta.clone(),
            file_len,
            expected_crc: check_snapshot_file_head(path, &head, file_len)?,
            hasher: crc32fast::Hasher::new(),
            checked_to: SNAPSHOT_HEAD_BYTES as u64,
            matched: false,
        })
    }

    /// Hashes the file from `check.checked_to` up to `to`, in bounded reads.
    async fn catch_up_snapshot_check(
        &self,
        check: &mut SnapshotCheck,
        to: u64,
    ) -> Result<(), StorageError> {
        let lock = self.dir_lock()?;
        let path = &self.snapshot_path;
        // Bounded: each round hashes at least one byte of a finite file.
        while check.checked_to < to {
            let length = SNAPSHOT_CHECK_READ_BYTES_MAX.min(to - check.checked_to);
            let (_, bytes) = disk::read_range(&lock, path, check.checked_to, length as usize)
                .await
                .map_err(Self::io_error(path))?;
            check.hasher.update(&bytes);
            check.checked_to += length;
        }
        Ok(())
    }

    /// Reads `length_bytes` at `offset` of the stored snapshot's data,
    /// hashing what its check has not seen; refuses the piece that ends
    /// the file unless the whole file matches its CRC.
    pub(super) async fn read_checked_piece(
        &self,
        check: &mut SnapshotCheck,
        offset: u64,
        length_bytes: u64,
    ) -> Result<Vec<u8>, StorageError> {
        let data_start = check.file_len - self.index.snapshot_data_size_bytes();
        let start = data_start + offset;
        let end = start + length_bytes;
        if !check.matched {
            self.catch_up_snapshot_check(check, start).await?;
        }
        let lock = self.dir_lock()?;
        let path = &self.snapshot_path;
        let (_, bytes) = disk::read_range(&lock, path, start, length_bytes as usize)
            .await
            .map_err(Self::io_error(path))?;
        if !check.matched && check.checked_to < end {
            let unseen = usize::try_from(check.checked_to - start).expect("within one piece");
            check.hasher.update(&bytes[unseen..]);
            check.checked_to = end;
        }
        if !check.matched && check.checked_to == check.file_len {
            if check.hasher.clone().finalize() != check.expected_crc {
                return Err(StorageError::Corrupt {
                    path: path.clone(),
                    offset: SNAPSHOT_HEAD_BYTES as u64,
                    reason: "snapshot record fails its checksum".to_owned(),
                });
            }
            check.matched = true;
        }
        Ok(bytes)
    }
}
