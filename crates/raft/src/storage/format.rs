//! The on-disk format shared by every file-backed storage.
//!
//! A file starts with an 8-byte magic naming its kind and version, followed by
//! records:
//!
//! ```text
//!   +-----------+--------------+----------------------+
//!   | len: u32  | crc32: u32   | payload: len bytes   |   (little endian;
//!   +-----------+--------------+----------------------+    crc32 of payload)
//! ```
//!
//! - The log file (`raft-log`) holds one [`LogRecord`] per save: the hard
//!   state and entries of one `Ready`, so one record is one group commit and
//!   a torn record loses exactly one unacknowledged write. Between the magic
//!   and the first record it has a header of two slots, each
//!   `seq: u64 | acknowledged_bytes: u64 | crc32: u32` (crc of the first
//!   16 bytes). After each append is durable, the storage writes
//!   `(seq + 1, new file length)` into slot `(seq + 1) % 2`. At load the
//!   valid slot with the highest `seq` says how many bytes of the file were
//!   acknowledged; a file shorter than that was cut (at a record boundary
//!   or not) and is [`StorageError::Corrupt`]. A slot is written only after
//!   the bytes it covers are on disk, so no crash can make it claim more
//!   than was written; two slots, so a torn slot write leaves the previous
//!   one.
//! - The snapshot file (`raft-snapshot`) holds exactly one record: the
//!   snapshot. It is always replaced atomically, never appended to.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::core::{Entry, HardState, PersistentState, Snapshot};

use super::StorageError;

pub const LOG_MAGIC: &[u8; 8] = b"DCRLOG02";
const HEADER_SLOT_BYTES: usize = 20;
/// Magic and the two header slots of the log file; records follow.
pub const LOG_HEADER_BYTES: usize = 8 + 2 * HEADER_SLOT_BYTES;
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"DCRSNP01";
const RECORD_HEADER_BYTES: usize = 8;
/// No record is larger than this; a length field above it is corruption.
pub const RECORD_SIZE_BYTES_MAX: usize = 1 << 30;

/// One save, as stored in the log file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub hard_state: Option<HardState>,
    /// Replace stored entries from `entries[0].index` on.
    pub entries: Vec<Entry>,
}

/// [`LogRecord`] by reference, for writing without copying the entries (the
/// same encoding: bincode writes a slice and a `Vec` alike).
#[derive(Serialize)]
pub struct LogRecordRef<'a> {
    pub hard_state: Option<HardState>,
    pub entries: &'a [Entry],
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Bytes `state`'s hard state and log take once encoded, the figure
/// `Storage::raft_state_size_bytes` reports.
/// (The storages track this incrementally with `SizedState`; this full
/// count is the reference it is tested against.)
#[cfg(test)]
pub fn encoded_raft_state_size_bytes(state: &PersistentState) -> u64 {
    encoded_size_bytes(&(&state.hard_state, &state.entries))
}

/// Bytes `entry` takes inside an encoded log.
pub fn encoded_entry_size_bytes(entry: &Entry) -> u64 {
    encoded_size_bytes(entry)
}

/// Bytes `hard_state` takes once encoded.
pub fn encoded_hard_state_size_bytes(hard_state: &HardState) -> u64 {
    encoded_size_bytes(hard_state)
}

fn encoded_size_bytes<T: Serialize>(value: &T) -> u64 {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, bincode_config())
        .expect("encoding to a size counter cannot fail");
    size.bytes_written as u64
}

/// Frames `payload` as one record.
pub fn encode_record<T: Serialize>(payload: &T) -> Vec<u8> {
    let body = bincode::serde::encode_to_vec(payload, bincode_config())
        .expect("encoding Raft state to memory cannot fail");
    assert!(
        body.len() <= RECORD_SIZE_BYTES_MAX,
        "record of {} bytes is too large",
        body.len()
    );
    let mut record = Vec::with_capacity(RECORD_HEADER_BYTES + body.len());
    record.extend_from_slice(&(body.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    record.extend_from_slice(&body);
    record
}

/// A whole snapshot file.
pub fn encode_snapshot_file(snapshot: &Snapshot) -> Vec<u8> {
    let mut file = SNAPSHOT_MAGIC.to_vec();
    file.extend_from_slice(&encode_record(snapshot));
    file
}

/// A whole log file holding `state`'s hard state and entries in one record;
/// its header slots carry seq 0 and 1 (the next save writes seq 2).
pub fn encode_log_file(state: &PersistentState) -> Vec<u8> {
    let record = encode_record(&LogRecordRef {
        hard_state: Some(state.hard_state),
        entries: &state.entries,
    });
    let len = (LOG_HEADER_BYTES + record.len()) as u64;
    let mut file = Vec::with_capacity(len as usize);
    file.extend_from_slice(LOG_MAGIC);
    file.extend_from_slice(&encode_header_slot(0, len));
    file.extend_from_slice(&encode_header_slot(1, len));
    file.extend_from_slice(&record);
    file
}

/// The seq of the header slots [`encode_log_file`] writes last.
pub const LOG_FILE_INITIAL_SEQ: u64 = 1;

/// One header slot: after save `seq`, the first `acknowledged_bytes` bytes
/// of the log file are durable.
pub fn encode_header_slot(seq: u64, acknowledged_bytes: u64) -> Vec<u8> {
    let mut slot = Vec::with_capacity(HEADER_SLOT_BYTES);
    slot.extend_from_slice(&seq.to_le_bytes());
    slot.extend_from_slice(&acknowledged_bytes.to_le_bytes());
    let crc = crc32fast::hash(&slot);
    slot.extend_from_slice(&crc.to_le_bytes());
    slot
}

/// Where the header slot for `seq` lives in the log file.
pub fn header_slot_offset(seq: u64) -> u64 {
    (LOG_MAGIC.len() + (seq % 2) as usize * HEADER_SLOT_BYTES) as u64
}

/// The valid header slot with the highest seq: `(seq, acknowledged_bytes)`.
fn decode_header(path: &Path, bytes: &[u8]) -> Result<(u64, u64), StorageError> {
    if bytes.len() < LOG_HEADER_BYTES {
        return Err(corrupt(
            path,
            0,
            format!(
                "file of {} bytes is shorter than its {LOG_HEADER_BYTES}-byte header",
                bytes.len()
            ),
        ));
    }
    let slot = |index: usize| {
        let start = LOG_MAGIC.len() + index * HEADER_SLOT_BYTES;
        let slot = &bytes[start..start + HEADER_SLOT_BYTES];
        let crc = u32::from_le_bytes(slot[16..20].try_into().expect("4 bytes"));
        (crc32fast::hash(&slot[..16]) == crc).then(|| {
            (
                u64::from_le_bytes(slot[0..8].try_into().expect("8 bytes")),
                u64::from_le_bytes(slot[8..16].try_into().expect("8 bytes")),
            )
        })
    };
    [slot(0), slot(1)]
        .into_iter()
        .flatten()
        .max_by_key(|&(seq, _)| seq)
        .ok_or_else(|| {
            corrupt(
                path,
                LOG_MAGIC.len(),
                "both header slots fail their checksum",
            )
        })
}

/// What reading a log file found.
#[derive(Debug)]
pub struct DecodedLog {
    pub records: Vec<LogRecord>,
    /// Bytes at the end that do not form a whole, valid record: the trace of
    /// a save interrupted by a crash (never acknowledged, so safe to drop).
    pub torn_tail_bytes: u64,
}

fn corrupt(path: &Path, offset: usize, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: reason.into(),
    }
}

fn check_magic(path: &Path, bytes: &[u8], magic: &[u8; 8]) -> Result<(), StorageError> {
    if bytes.len() < magic.len() {
        return Err(corrupt(
            path,
            0,
            format!("file of {} bytes is shorter than its header", bytes.len()),
        ));
    }
    if &bytes[..magic.len()] != magic {
        return Err(corrupt(
            path,
            0,
            format!("bad magic, expected {:?}", String::from_utf8_lossy(magic)),
        ));
    }
    Ok(())
}

/// One record at `offset`: Ok(Some((payload, next offset))), Ok(None) if the
/// bytes from `offset` to the end are not a whole record (torn), Err if the
/// record is whole but its checksum fails.
fn read_record<'a>(
    path: &Path,
    bytes: &'a [u8],
    offset: usize,
) -> Result<Option<(&'a [u8], usize)>, StorageError> {
    let rest = &bytes[offset..];
    if rest.len() < RECORD_HEADER_BYTES {
        return Ok(None);
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if len > RECORD_SIZE_BYTES_MAX {
        return Err(corrupt(
            path,
            offset,
            format!("record length {len} exceeds the maximum"),
        ));
    }
    if rest.len() < RECORD_HEADER_BYTES + len {
        return Ok(None);
    }
    let payload = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len];
    if crc32fast::hash(payload) != crc {
        return Err(corrupt(path, offset, "record checksum mismatch"));
    }
    Ok(Some((payload, offset + RECORD_HEADER_BYTES + len)))
}

fn decode_payload<T: for<'de> Deserialize<'de>>(
    path: &Path,
    offset: usize,
    payload: &[u8],
) -> Result<T, StorageError> {
    let (value, used) = bincode::serde::decode_from_slice(payload, bincode_config())
        .map_err(|error| corrupt(path, offset, format!("undecodable record: {error}")))?;
    if used != payload.len() {
        return Err(corrupt(path, offset, "trailing bytes inside a record"));
    }
    Ok(value)
}

/// Parses a log file. Everything up to the acknowledged length its header
/// records must be whole, valid records; after it, only the last record may
/// be incomplete or fail its checksum (a torn, unacknowledged append).
pub fn decode_log_file(path: &Path, bytes: &[u8]) -> Result<DecodedLog, StorageError> {
    check_magic(path, bytes, LOG_MAGIC)?;
    let (_, acknowledged_bytes) = decode_header(path, bytes)?;
    let acknowledged = usize::try_from(acknowledged_bytes).unwrap_or(usize::MAX);
    if acknowledged > bytes.len() {
        return Err(corrupt(
            path,
            bytes.len(),
            format!(
                "the file is {} bytes but its header says {acknowledged_bytes} bytes were \
                 acknowledged: acknowledged records were cut off",
                bytes.len()
            ),
        ));
    }
    let mut records = Vec::new();
    let mut offset = LOG_HEADER_BYTES;
    while offset < bytes.len() {
        let acknowledged_record = offset < acknowledged;
        let record = match read_record(path, bytes, offset) {
            Ok(Some(record)) => record,
            Ok(None) if !acknowledged_record => break,
            Ok(None) => {
                return Err(corrupt(path, offset, "acknowledged record is incomplete"));
            }
            Err(error) => {
                if !acknowledged_record && is_last_record(bytes, offset) {
                    break;
                }
                return Err(error);
            }
        };
        let (payload, next_offset) = record;
        if acknowledged_record && next_offset > acknowledged {
            return Err(corrupt(
                path,
                offset,
                format!("record ends at byte {next_offset}, past the acknowledged {acknowledged}"),
            ));
        }
        records.push(decode_payload(path, offset, payload)?);
        offset = next_offset;
    }
    if offset < acknowledged {
        return Err(corrupt(
            path,
            offset,
            format!("records end at byte {offset}, before the acknowledged {acknowledged}"),
        ));
    }
    Ok(DecodedLog {
        records,
        torn_tail_bytes: (bytes.len() - offset) as u64,
    })
}

/// True if the record at `offset` claims to end exactly at the end of the
/// file: a checksum failure there is a torn final write, not damage to
/// acknowledged data.
fn is_last_record(bytes: &[u8], offset: usize) -> bool {
    let rest = &bytes[offset..];
    rest.len() >= RECORD_HEADER_BYTES && {
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        RECORD_HEADER_BYTES + len == rest.len()
    }
}

/// Parses a snapshot file, which is replaced atomically and so must be
/// whole: any defect is corruption.
pub fn decode_snapshot_file(path: &Path, bytes: &[u8]) -> Result<Snapshot, StorageError> {
    check_magic(path, bytes, SNAPSHOT_MAGIC)?;
    let offset = SNAPSHOT_MAGIC.len();
    let Some((payload, end)) = read_record(path, bytes, offset)? else {
        return Err(corrupt(path, offset, "truncated snapshot record"));
    };
    if end != bytes.len() {
        return Err(corrupt(path, end, "bytes after the snapshot record"));
    }
    decode_payload(path, offset, payload)
}
