//! The on-disk formats of [`super::FileStorage`]'s three kinds of file.
//!
//! Every file starts with an 8-byte magic: six bytes naming its kind and
//! two ASCII digits giving its format version (`DCRSEG01`: log segment,
//! version 1). A file of a known kind but a version this build does not
//! read is refused with [`StorageError::UnsupportedVersion`], naming the
//! file and both versions (a newer release wrote it: roll back the upgrade
//! or finish it, never guess). After the magic, records:
//!
//! ```text
//!   +-----------+--------------+----------------------+
//!   | len: u32  | crc32: u32   | payload: len bytes   |   (little endian;
//!   +-----------+--------------+----------------------+    crc32 of payload)
//! ```
//!
//! - A **log segment** (`raft-log-<number>`) holds one [`LogRecord`] per
//!   save: the entries (and commit index) of one `Ready`, so one record is
//!   one group commit and a torn record loses exactly one unacknowledged
//!   write. Between the magic and the first record it has a header of two
//!   slots, each `seq: u64 | acknowledged_bytes: u64 | crc32: u32` (crc of
//!   the first 16 bytes). After each append is durable, the storage writes
//!   `(seq + 1, new file length)` into slot `(seq + 1) % 2`. At load the
//!   valid slot with the highest `seq` says how many bytes of the segment
//!   were acknowledged; a segment shorter than that was cut (at a record
//!   boundary or not) and is [`StorageError::Corrupt`]. A slot is written
//!   only after the bytes it covers are on disk, so no crash can make it
//!   claim more than was written; two slots, so a torn slot write leaves
//!   the previous one.
//! - The **hard state file** (`raft-hard-state`) holds the term and vote in
//!   two slots of fixed size, `seq: u64 | term: u64 | voted: u8 |
//!   voted_for: u64 | crc32: u32`, written in place alternately and
//!   fsynced; the valid slot with the highest seq wins.
//! - The **snapshot file** (`raft-snapshot`) holds exactly one record: the
//!   snapshot. It is always replaced atomically, never appended to.
//!   Version 2 adds the configuration to the snapshot metadata; version 1
//!   files (written before membership changes) are still read, as the
//!   bootstrap configuration.
//!
//! Log segments stay at version 1: a configuration entry is one more
//! [`crate::core::EntryKind`] variant, added last, so older segments decode
//! unchanged. A configuration entry that does not decode is
//! [`StorageError::Corrupt`] at load (an older build meeting the new
//! variant also refuses the record as undecodable, never misreads it).

use std::path::Path;

use bytes::Bytes;

use serde::{Deserialize, Serialize};

use crate::core::{Entry, HardState, NodeId, Snapshot, SnapshotMeta};

use super::StorageError;

/// A file kind: its 6-byte name in the magic, the format version this
/// build writes, and older versions it still reads.
#[derive(Clone, Copy, Debug)]
pub struct FileKind {
    pub name: &'static str,
    pub magic_prefix: &'static [u8; 6],
    pub version: u8,
    pub also_reads: &'static [u8],
}

pub const SEGMENT_KIND: FileKind = FileKind {
    name: "log segment",
    magic_prefix: b"DCRSEG",
    version: 1,
    also_reads: &[],
};
pub const HARD_STATE_KIND: FileKind = FileKind {
    name: "hard state",
    magic_prefix: b"DCRHST",
    version: 1,
    also_reads: &[],
};
pub const SNAPSHOT_KIND: FileKind = FileKind {
    name: "snapshot",
    magic_prefix: b"DCRSNP",
    version: 2,
    also_reads: &[1],
};

/// A snapshot as version 1 of the snapshot file holds it: before
/// membership changes, without a configuration (it loads as the bootstrap
/// configuration, `SnapshotMeta::membership` None).
#[derive(Deserialize)]
struct SnapshotV1 {
    meta: SnapshotMetaV1,
    data: Vec<u8>,
}

#[derive(Deserialize)]
struct SnapshotMetaV1 {
    last_included_index: u64,
    last_included_term: u64,
}

const MAGIC_BYTES: usize = 8;
const HEADER_SLOT_BYTES: usize = 20;
/// Magic and the two header slots of a log segment; records follow.
pub const LOG_HEADER_BYTES: usize = MAGIC_BYTES + 2 * HEADER_SLOT_BYTES;
const HARD_STATE_SLOT_BYTES: usize = 8 + 8 + 1 + 8 + 4;
/// Size of the hard state file: magic and two slots.
pub const HARD_STATE_FILE_BYTES: usize = MAGIC_BYTES + 2 * HARD_STATE_SLOT_BYTES;
const RECORD_HEADER_BYTES: usize = 8;
/// No record is larger than this; a length field above it is corruption,
/// and a save that would need a larger record is refused.
pub const RECORD_SIZE_BYTES_MAX: usize = 1 << 30;

/// One save, as stored in a log segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The hard state after this save. Its term and vote are informative
    /// (the hard state file is authoritative); its commit index is the one
    /// a restart uses.
    pub hard_state: Option<HardState>,
    /// Drop every stored entry before applying `entries` (a snapshot that
    /// replaced a log it does not match).
    pub clear_log: bool,
    /// Replace stored entries from `entries[0].index` on.
    pub entries: Vec<Entry>,
}

/// [`LogRecord`] by reference, for writing without copying the entries (the
/// same encoding: bincode writes a slice and a `Vec` alike).
#[derive(Serialize)]
pub struct LogRecordRef<'a> {
    pub hard_state: Option<HardState>,
    pub clear_log: bool,
    pub entries: &'a [Entry],
}

/// Bytes `state`'s hard state and log take once encoded, the figure
/// `Storage::raft_state_size_bytes` reports.
/// (The storages track this incrementally; this full count is the
/// reference it is tested against.)
#[cfg(test)]
pub fn encoded_raft_state_size_bytes(state: &crate::core::PersistentState) -> u64 {
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
    codec::encoded_len(value)
}

/// Frames `payload` as one record, or says why it cannot be stored.
pub fn encode_record<T: Serialize>(payload: &T) -> Result<Vec<u8>, StorageError> {
    let body = codec::encode(payload);
    if body.len() > RECORD_SIZE_BYTES_MAX {
        return Err(StorageError::InvalidWrite {
            reason: format!(
                "one save of {} bytes exceeds the record limit of {RECORD_SIZE_BYTES_MAX} bytes",
                body.len()
            ),
        });
    }
    let mut record = Vec::with_capacity(RECORD_HEADER_BYTES + body.len());
    record.extend_from_slice(&(body.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    record.extend_from_slice(&body);
    Ok(record)
}

fn magic(kind: FileKind) -> [u8; MAGIC_BYTES] {
    let mut magic = [0; MAGIC_BYTES];
    magic[..6].copy_from_slice(kind.magic_prefix);
    magic[6] = b'0' + kind.version / 10;
    magic[7] = b'0' + kind.version % 10;
    magic
}

/// A whole snapshot file, in two parts to be written one after the other:
/// the magic, the record's header and the snapshot's encoding up to its
/// data; then the data itself, shared, not copied (a snapshot is as large
/// as the service's state). Joined, the same bytes as the magic followed
/// by [`encode_record`] of the snapshot.
pub fn encode_snapshot_file(snapshot: &Snapshot) -> Result<Vec<Bytes>, StorageError> {
    let body_len = codec::encoded_len(snapshot);
    if body_len > RECORD_SIZE_BYTES_MAX as u64 {
        return Err(StorageError::InvalidWrite {
            reason: format!(
                "one save of {body_len} bytes exceeds the record limit of \
                 {RECORD_SIZE_BYTES_MAX} bytes"
            ),
        });
    }
    let mut head = Vec::with_capacity(SNAPSHOT_HEAD_BYTES + 64);
    head.extend_from_slice(&magic(SNAPSHOT_KIND));
    head.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    // A struct's encoding is its fields' in order, and bytes are their
    // length (as a `u64`) then themselves: the meta, the length, the data.
    let encode_error = |error: codec::CodecError| StorageError::InvalidWrite {
        reason: format!("the snapshot does not encode: {error}"),
    };
    codec::encode_into(&snapshot.meta, &mut head).map_err(encode_error)?;
    codec::encode_into(&(snapshot.data.len() as u64), &mut head).map_err(encode_error)?;
    assert_eq!(
        (head.len() + snapshot.data.len()) as u64,
        SNAPSHOT_HEAD_BYTES as u64 + body_len,
        "snapshot at index {}: encoded length differs from its measured length",
        snapshot.meta.last_included_index
    );
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[SNAPSHOT_HEAD_BYTES..]);
    crc.update(&snapshot.data);
    head[MAGIC_BYTES..MAGIC_BYTES + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    head[MAGIC_BYTES + 4..SNAPSHOT_HEAD_BYTES].copy_from_slice(&crc.finalize().to_le_bytes());
    Ok(vec![Bytes::from(head), snapshot.data.clone()])
}

/// Bytes before a snapshot file's record body: the magic, then the
/// record's length and CRC-32.
pub const SNAPSHOT_HEAD_BYTES: usize = MAGIC_BYTES + RECORD_HEADER_BYTES;

/// Checks the head (the first [`SNAPSHOT_HEAD_BYTES`]) of a snapshot file
/// of `file_len` bytes: its magic, and a record that ends where the file
/// does. Returns the CRC-32 the record body must have, for a caller that
/// reads the body in pieces.
pub fn check_snapshot_file_head(
    path: &Path,
    head: &[u8],
    file_len: u64,
) -> Result<u32, StorageError> {
    check_magic(path, head, SNAPSHOT_KIND)?;
    if head.len() != SNAPSHOT_HEAD_BYTES {
        return Err(corrupt(path, 0, "truncated snapshot record header"));
    }
    let body_len = u64::from(le_u32(&head[MAGIC_BYTES..]));
    if SNAPSHOT_HEAD_BYTES as u64 + body_len != file_len {
        return Err(corrupt(
            path,
            MAGIC_BYTES,
            format!("a snapshot record of {body_len} bytes in a file of {file_len} bytes"),
        ));
    }
    Ok(le_u32(&head[MAGIC_BYTES + 4..]))
}

/// The header of a new, empty log segment; its slots carry seq 0 and 1 (the
/// first append writes seq 2).
pub fn encode_segment_header() -> Vec<u8> {
    let len = LOG_HEADER_BYTES as u64;
    let mut file = Vec::with_capacity(LOG_HEADER_BYTES);
    file.extend_from_slice(&magic(SEGMENT_KIND));
    file.extend_from_slice(&encode_header_slot(0, len));
    file.extend_from_slice(&encode_header_slot(1, len));
    file
}

/// The seq of the header slots [`encode_segment_header`] writes last.
pub const SEGMENT_INITIAL_SEQ: u64 = 1;

/// One header slot: after save `seq`, the first `acknowledged_bytes` bytes
/// of the segment are durable.
pub fn encode_header_slot(seq: u64, acknowledged_bytes: u64) -> Vec<u8> {
    let mut slot = Vec::with_capacity(HEADER_SLOT_BYTES);
    slot.extend_from_slice(&seq.to_le_bytes());
    slot.extend_from_slice(&acknowledged_bytes.to_le_bytes());
    let crc = crc32fast::hash(&slot);
    slot.extend_from_slice(&crc.to_le_bytes());
    slot
}

/// Where the header slot for `seq` lives in a segment.
pub fn header_slot_offset(seq: u64) -> u64 {
    (MAGIC_BYTES + (seq % 2) as usize * HEADER_SLOT_BYTES) as u64
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

/// The valid header slot with the highest seq: `(seq, acknowledged_bytes)`.
fn decode_header(path: &Path, bytes: &[u8]) -> Result<(u64, u64), StorageError> {
    if bytes.len() < LOG_HEADER_BYTES {
        return Err(corrupt(
            path,
            0,
            format!(
                "segment of {} bytes is shorter than its {LOG_HEADER_BYTES}-byte header",
                bytes.len()
            ),
        ));
    }
    let slot = |index: usize| {
        let start = MAGIC_BYTES + index * HEADER_SLOT_BYTES;
        let slot = &bytes[start..start + HEADER_SLOT_BYTES];
        (crc32fast::hash(&slot[..16]) == le_u32(&slot[16..20]))
            .then(|| (le_u64(&slot[0..8]), le_u64(&slot[8..16])))
    };
    [slot(0), slot(1)]
        .into_iter()
        .flatten()
        .max_by_key(|&(seq, _)| seq)
        .ok_or_else(|| corrupt(path, MAGIC_BYTES, "both header slots fail their checksum"))
}

/// The term and vote as the hard state file stores them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TermAndVote {
    pub term: u64,
    pub voted_for: Option<NodeId>,
}

/// One slot of the hard state file.
pub fn encode_hard_state_slot(seq: u64, value: TermAndVote) -> Vec<u8> {
    let mut slot = Vec::with_capacity(HARD_STATE_SLOT_BYTES);
    slot.extend_from_slice(&seq.to_le_bytes());
    slot.extend_from_slice(&value.term.to_le_bytes());
    slot.push(u8::from(value.voted_for.is_some()));
    slot.extend_from_slice(&value.voted_for.unwrap_or(0).to_le_bytes());
    let crc = crc32fast::hash(&slot);
    slot.extend_from_slice(&crc.to_le_bytes());
    slot
}

/// Where the hard state slot for `seq` lives in its file.
pub fn hard_state_slot_offset(seq: u64) -> u64 {
    (MAGIC_BYTES + (seq % 2) as usize * HARD_STATE_SLOT_BYTES) as u64
}

/// A new hard state file holding `value` in both slots (seq 0 and 1).
pub fn encode_hard_state_file(value: TermAndVote) -> Vec<u8> {
    let mut file = magic(HARD_STATE_KIND).to_vec();
    file.extend_from_slice(&encode_hard_state_slot(0, value));
    file.extend_from_slice(&encode_hard_state_slot(1, value));
    file
}

/// The seq of the slot [`encode_hard_state_file`] writes last.
pub const HARD_STATE_INITIAL_SEQ: u64 = 1;

/// Parses the hard state file: `(seq, value)` of its newest valid slot.
pub fn decode_hard_state_file(
    path: &Path,
    bytes: &[u8],
) -> Result<(u64, TermAndVote), StorageError> {
    check_magic(path, bytes, HARD_STATE_KIND)?;
    if bytes.len() != HARD_STATE_FILE_BYTES {
        return Err(corrupt(
            path,
            0,
            format!(
                "hard state file of {} bytes, expected {HARD_STATE_FILE_BYTES}",
                bytes.len()
            ),
        ));
    }
    let slot = |index: usize| {
        let start = MAGIC_BYTES + index * HARD_STATE_SLOT_BYTES;
        let slot = &bytes[start..start + HARD_STATE_SLOT_BYTES];
        let body = HARD_STATE_SLOT_BYTES - 4;
        if crc32fast::hash(&slot[..body]) != le_u32(&slot[body..]) {
            return None;
        }
        let voted_for = match slot[16] {
            0 => None,
            1 => Some(le_u64(&slot[17..25])),
            _ => return None,
        };
        Some((
            le_u64(&slot[0..8]),
            TermAndVote {
                term: le_u64(&slot[8..16]),
                voted_for,
            },
        ))
    };
    [slot(0), slot(1)]
        .into_iter()
        .flatten()
        .max_by_key(|&(seq, _)| seq)
        .ok_or_else(|| {
            corrupt(
                path,
                MAGIC_BYTES,
                "both hard state slots fail their checksum",
            )
        })
}

/// What reading a log segment found.
#[derive(Debug)]
pub struct DecodedSegment {
    pub records: Vec<LogRecord>,
    /// Where the last whole, valid record ends.
    pub valid_end_bytes: u64,
    /// The length the header says was acknowledged.
    pub acknowledged_bytes: u64,
    /// Seq of the header slot in force.
    pub header_seq: u64,
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

/// Checks the magic: the right kind, and a version this build reads (which
/// it returns).
fn check_magic(path: &Path, bytes: &[u8], kind: FileKind) -> Result<u8, StorageError> {
    if bytes.len() < MAGIC_BYTES {
        return Err(corrupt(
            path,
            0,
            format!("file of {} bytes is shorter than its header", bytes.len()),
        ));
    }
    let expected = magic(kind);
    if &bytes[..6] != kind.magic_prefix {
        return Err(corrupt(
            path,
            0,
            format!(
                "bad magic, expected {:?} (a {} file)",
                String::from_utf8_lossy(&expected),
                kind.name
            ),
        ));
    }
    let digits = &bytes[6..8];
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(corrupt(
            path,
            6,
            format!(
                "bad magic: version {:?} is not two digits",
                String::from_utf8_lossy(digits)
            ),
        ));
    }
    let version = (digits[0] - b'0') * 10 + (digits[1] - b'0');
    if version != kind.version && !kind.also_reads.contains(&version) {
        return Err(StorageError::UnsupportedVersion {
            path: path.to_path_buf(),
            kind: kind.name,
            found: u32::from(version),
            supported: u32::from(kind.version),
        });
    }
    Ok(version)
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
    let len = le_u32(&rest[0..4]) as usize;
    let crc = le_u32(&rest[4..8]);
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
    codec::decode(payload, codec::STATE_LIMIT).map_err(|error| match error {
        codec::CodecError::TrailingBytes { .. } => {
            corrupt(path, offset, "trailing bytes inside a record")
        }
        error => corrupt(path, offset, format!("undecodable record: {error}")),
    })
}

/// Parses a log segment. Everything up to the acknowledged length its
/// header records must be whole, valid records; after it, only the last
/// record may be incomplete or fail its checksum (a torn, unacknowledged
/// append), and only if `may_be_torn` (the newest segment: no other was
/// ever appended to after a crash).
pub fn decode_segment(
    path: &Path,
    bytes: &[u8],
    may_be_torn: bool,
) -> Result<DecodedSegment, StorageError> {
    check_magic(path, bytes, SEGMENT_KIND)?;
    let (header_seq, acknowledged_bytes) = decode_header(path, bytes)?;
    let acknowledged = usize::try_from(acknowledged_bytes).unwrap_or(usize::MAX);
    if acknowledged > bytes.len() {
        return Err(corrupt(
            path,
            bytes.len(),
            format!(
                "the segment is {} bytes but its header says {acknowledged_bytes} bytes were \
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
        let record: LogRecord = decode_payload(path, offset, payload)?;
        // A configuration entry that does not decode would stop the node
        // later; refuse it here, as the corruption it is.
        crate::core::RaftLog::check_config_entries(&record.entries)
            .map_err(|reason| corrupt(path, offset, reason))?;
        records.push(record);
        offset = next_offset;
    }
    if offset < acknowledged {
        return Err(corrupt(
            path,
            offset,
            format!("records end at byte {offset}, before the acknowledged {acknowledged}"),
        ));
    }
    let torn_tail_bytes = (bytes.len() - offset) as u64;
    if torn_tail_bytes > 0 && !may_be_torn {
        return Err(corrupt(
            path,
            offset,
            format!(
                "{torn_tail_bytes} bytes after the last record of a segment that is not the \
                 newest (only the newest can hold a torn save)"
            ),
        ));
    }
    Ok(DecodedSegment {
        records,
        valid_end_bytes: offset as u64,
        acknowledged_bytes,
        header_seq,
        torn_tail_bytes,
    })
}

/// True if the record at `offset` claims to end exactly at the end of the
/// file: a checksum failure there is a torn final write, not damage to
/// acknowledged data.
fn is_last_record(bytes: &[u8], offset: usize) -> bool {
    let rest = &bytes[offset..];
    rest.len() >= RECORD_HEADER_BYTES && {
        let len = le_u32(&rest[0..4]) as usize;
        RECORD_HEADER_BYTES + len == rest.len()
    }
}

/// Parses a snapshot file, which is replaced atomically and so must be
/// whole: any defect is corruption. Version 1 (no configuration) is read
/// too, and gets version 2 when the next snapshot replaces it.
pub fn decode_snapshot_file(path: &Path, bytes: &[u8]) -> Result<Snapshot, StorageError> {
    let version = check_magic(path, bytes, SNAPSHOT_KIND)?;
    let offset = MAGIC_BYTES;
    let Some((payload, end)) = read_record(path, bytes, offset)? else {
        return Err(corrupt(path, offset, "truncated snapshot record"));
    };
    if end != bytes.len() {
        return Err(corrupt(path, end, "bytes after the snapshot record"));
    }
    if version == 1 {
        let old: SnapshotV1 = decode_payload(path, offset, payload)?;
        return Ok(Snapshot {
            meta: SnapshotMeta::at(old.meta.last_included_index, old.meta.last_included_term),
            data: old.data.into(),
        });
    }
    let snapshot: Snapshot = decode_payload(path, offset, payload)?;
    if let Some(membership) = &snapshot.meta.membership {
        membership
            .check()
            .map_err(|reason| corrupt(path, offset, format!("snapshot configuration: {reason}")))?;
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_a_newer_version_is_refused_naming_the_file_and_both_versions() {
        let path = Path::new("/data/raft-log-00000000000000000001");
        let mut bytes = encode_segment_header();
        bytes[6..8].copy_from_slice(b"02");
        let error = decode_segment(path, &bytes, true).unwrap_err();
        assert!(
            matches!(
                error,
                StorageError::UnsupportedVersion {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("raft-log-00000000000000000001"),
            "{message}"
        );
        assert!(message.contains("version 2"), "{message}");
    }

    #[test]
    fn a_version_1_snapshot_file_loads_without_a_configuration() {
        #[derive(Serialize)]
        struct OldMeta {
            last_included_index: u64,
            last_included_term: u64,
        }
        #[derive(Serialize)]
        struct OldSnapshot {
            meta: OldMeta,
            data: Vec<u8>,
        }
        let old = OldSnapshot {
            meta: OldMeta {
                last_included_index: 9,
                last_included_term: 3,
            },
            data: b"service".to_vec(),
        };
        let mut file = b"DCRSNP01".to_vec();
        file.extend_from_slice(&encode_record(&old).unwrap());
        let snapshot = decode_snapshot_file(Path::new("snap"), &file).unwrap();
        assert_eq!(
            snapshot,
            Snapshot {
                meta: SnapshotMeta::at(9, 3),
                data: b"service".to_vec().into(),
            }
        );
        // The same bytes labelled version 2 do not decode: refused, not
        // misread.
        file[6..8].copy_from_slice(b"02");
        assert!(matches!(
            decode_snapshot_file(Path::new("snap"), &file),
            Err(StorageError::Corrupt { .. })
        ));
    }

    /// The file's parts, joined, are the magic and the snapshot's record
    /// as one buffer would hold them, whatever the data's length (its
    /// prefix takes 1, 3, 5 or 9 bytes).
    #[test]
    fn a_snapshot_file_in_parts_is_its_record_in_one_piece() {
        for len in [0, 1, 250, 251, 65_535, 65_536, (1 << 20) + 3] {
            let mut snapshot = Snapshot {
                meta: SnapshotMeta::at(77, 3),
                data: (0..len)
                    .map(|i| (i % 251) as u8)
                    .collect::<Vec<u8>>()
                    .into(),
            };
            snapshot.meta.membership = Some(crate::core::Membership::from_voters([0, 1, 2]));
            let parts = encode_snapshot_file(&snapshot).unwrap();
            assert_eq!(parts.len(), 2);
            assert_eq!(
                parts[1].as_ptr(),
                snapshot.data.as_ptr(),
                "the data is shared, not copied"
            );
            let mut one_piece = magic(SNAPSHOT_KIND).to_vec();
            one_piece.extend(encode_record(&snapshot).unwrap());
            assert_eq!(parts.concat(), one_piece, "{len} bytes of data");
            assert_eq!(
                decode_snapshot_file(Path::new("s"), &one_piece).unwrap(),
                snapshot
            );
        }
    }

    #[test]
    fn a_snapshot_file_round_trips_its_configuration_and_a_bad_one_is_refused() {
        let mut membership = crate::core::Membership::from_voters([0, 1, 2]);
        membership.learners.insert(5);
        let mut snapshot = Snapshot {
            meta: SnapshotMeta::at(4, 2),
            data: vec![1, 2, 3].into(),
        };
        snapshot.meta.membership = Some(membership);
        let file = encode_snapshot_file(&snapshot).unwrap().concat();
        assert_eq!(&file[..8], b"DCRSNP02");
        assert_eq!(
            decode_snapshot_file(Path::new("s"), &file).unwrap(),
            snapshot
        );
        snapshot.meta.membership = Some(crate::core::Membership::default());
        let file = encode_snapshot_file(&snapshot).unwrap().concat();
        let error = decode_snapshot_file(Path::new("s"), &file).unwrap_err();
        assert!(error.to_string().contains("without voters"), "{error}");
    }

    #[test]
    fn hard_state_slots_round_trip_and_a_torn_slot_falls_back() {
        let path = Path::new("hs");
        let older = TermAndVote {
            term: 3,
            voted_for: Some(2),
        };
        let newer = TermAndVote {
            term: 4,
            voted_for: None,
        };
        let mut file = encode_hard_state_file(older);
        let offset = hard_state_slot_offset(2) as usize;
        let slot = encode_hard_state_slot(2, newer);
        file[offset..offset + slot.len()].copy_from_slice(&slot);
        assert_eq!(decode_hard_state_file(path, &file).unwrap(), (2, newer));
        file[offset + 3] ^= 1;
        assert_eq!(decode_hard_state_file(path, &file).unwrap(), (1, older));
    }
}
