//! The data a Raft node persists: log entries, the hard state and snapshots.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::membership::Membership;

/// Identifies a node of the group. In the 6.5840 tests this is the peer's
/// position in the `peers` array.
pub type NodeId = u64;

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A command proposed by the service; it is handed back to the service when
    /// committed.
    Command,
    /// An empty entry a new leader appends (when `Config::noop_on_election` is
    /// set) so that entries of earlier terms commit without waiting for a new
    /// command (Raft paper section 5.4.2, and section 8 for read-only queries).
    /// The driver does not hand it to the service.
    Noop,
    /// A configuration change: `data` is the whole new
    /// [`super::Membership`] ([`super::Membership::encode`]). It takes
    /// effect when appended (see `core/membership.rs`); the driver does not
    /// hand it to the service as a command. Added after `Noop`, so logs
    /// written before membership changes existed decode unchanged.
    Config,
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log, starting at 1.
    pub index: u64,
    /// Term of the leader that created the entry.
    pub term: u64,
    pub kind: EntryKind,
    /// The command, opaque to Raft. Empty for [`EntryKind::Noop`].
    ///
    /// Reference-counted and immutable: the log, the `Ready`s, the
    /// AppendEntries to every follower and the in-memory storage share one
    /// copy of the bytes, so cloning an entry allocates nothing. Encoded
    /// exactly as the `Vec<u8>` it was before (see `payload_encoding`).
    #[serde(with = "payload_encoding")]
    pub data: Bytes,
}

/// An entry's payload on the wire and on disk: a length, then the bytes,
/// exactly as serde encodes a `Vec<u8>` (a sequence of `u8`), which is how
/// entries were written before payloads were shared. Log segments, snapshot
/// files and labrpc messages keep their format (and their format
/// versions); `tests::a_shared_payload_encodes_as_a_vec_did` checks it.
///
/// Written and read as serde bytes: bincode lays them out as it lays out a
/// sequence of `u8` (the length, then each byte as itself), but copies
/// them in one go instead of visiting each byte.
mod payload_encoding {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(data)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        // Decoded as a `Vec<u8>` (under the caller's decode limit), then
        // owned by the `Bytes` without a copy.
        serde_bytes::ByteBuf::deserialize(deserializer).map(|data| Bytes::from(data.into_vec()))
    }
}

impl Entry {
    /// Bytes this entry adds to a message or to the log, counting its header,
    /// used to bound batches (`Config::max_bytes_per_message`).
    pub fn size_bytes(&self) -> usize {
        const HEADER_SIZE_BYTES: usize = 8 + 8 + 1 + 8;
        HEADER_SIZE_BYTES + self.data.len()
    }
}

/// The part of a node's state that must reach stable storage before the node
/// answers anyone (Raft paper Figure 2, "Persistent state on all servers").
/// `commit_index` is not required for safety; it is saved so a restarted node
/// can re-apply its committed entries without waiting for a leader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<NodeId>,
    pub commit_index: u64,
}

/// Which prefix of the log a snapshot replaces, and the group's
/// configuration as of its last entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot includes (0: no snapshot).
    pub last_included_index: u64,
    /// Term of that entry.
    pub last_included_term: u64,
    /// The newest configuration at or before `last_included_index`. None:
    /// the bootstrap configuration (`Config::peers`); snapshots written
    /// before membership changes existed load as None.
    pub membership: Option<Membership>,
}

impl SnapshotMeta {
    /// The position only, without a configuration.
    pub fn at(last_included_index: u64, last_included_term: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_included_index,
            last_included_term,
            membership: None,
        }
    }
}

/// A snapshot of the service state covering the log up to
/// `meta.last_included_index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    /// The service's state, opaque to Raft. Shared as an entry's payload
    /// is: the core's held copy, the storage's write and the service's
    /// install are one allocation, however large the state. Encoded as
    /// the `Vec<u8>` it was.
    #[serde(with = "payload_encoding")]
    pub data: Bytes,
}

/// Everything a node needs to restart: what [`crate::storage::Storage::load`]
/// returns and what [`crate::core::RawNode::restart`] takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistentState {
    pub hard_state: HardState,
    /// The latest snapshot, if the log was ever compacted.
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot, consecutive, starting at
    /// `snapshot.last_included_index + 1` (or 1 without a snapshot).
    pub entries: Vec<Entry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry as it was declared before payloads were shared.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct EntryWithVec {
        index: u64,
        term: u64,
        kind: EntryKind,
        data: Vec<u8>,
    }

    #[test]
    fn a_shared_payload_encodes_as_a_vec_did() {
        for (kind, data) in [
            (EntryKind::Command, vec![7u8; 16]),
            (EntryKind::Noop, Vec::new()),
            (EntryKind::Command, (0..=255u8).cycle().take(1000).collect()),
        ] {
            let old = EntryWithVec {
                index: 70_000,
                term: 300,
                kind: kind.clone(),
                data: data.clone(),
            };
            let new = Entry {
                index: 70_000,
                term: 300,
                kind,
                data: Bytes::from(data),
            };
            let old_bytes = codec::encode(&old);
            assert_eq!(codec::encode(&new), old_bytes, "encodings differ");
            let decoded: Entry = codec::decode(&old_bytes, codec::ENTRY_LIMIT).unwrap();
            assert_eq!(decoded, new);
            let decoded_old: EntryWithVec =
                codec::decode(&codec::encode(&new), codec::ENTRY_LIMIT).unwrap();
            assert_eq!(decoded_old, old);
        }
    }

    /// The snapshot as it was declared before its data were serde bytes.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct SnapshotWithSeq {
        meta: SnapshotMeta,
        data: Vec<u8>,
    }

    #[test]
    fn a_snapshot_encodes_its_data_as_a_sequence_did() {
        for data in [
            Vec::new(),
            vec![0u8; 300],
            (0..=255u8).cycle().take(70_000).collect(),
        ] {
            let meta = SnapshotMeta::at(40_000, 7);
            let old = SnapshotWithSeq {
                meta: meta.clone(),
                data: data.clone(),
            };
            let new = Snapshot {
                meta,
                data: data.into(),
            };
            let old_bytes = codec::encode(&old);
            assert_eq!(codec::encode(&new), old_bytes, "encodings differ");
            let decoded: Snapshot = codec::decode(&old_bytes, codec::STATE_LIMIT).unwrap();
            assert_eq!(decoded, new);
        }
    }

    /// A payload's claimed length counts against the decode limit before
    /// anything is allocated for it: the input here is short of the limit,
    /// its length prefix is not.
    #[test]
    fn a_payload_claiming_more_than_the_decode_limit_is_refused() {
        let entry = Entry {
            index: 1,
            term: 1,
            kind: EntryKind::Command,
            data: Bytes::from(vec![1u8; 2048]),
        };
        let bytes = codec::encode(&entry);
        let refused = codec::decode::<Entry, 1024>(&bytes[..512], codec::DecodeLimit::<1024>);
        match refused {
            Err(codec::CodecError::Decode { detail }) => {
                assert!(
                    detail.contains("imit"),
                    "refused for another reason: {detail}"
                );
            }
            other => panic!("decoded past its limit: {other:?}"),
        }
    }
}
