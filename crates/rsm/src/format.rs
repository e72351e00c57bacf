//! How the rsm writes what it hands to Raft, and reads it back: log
//! entries (a machine's command, or one of the rsm's own entries) and
//! snapshots, each behind a version header (the rsm's layout, then the
//! machine's [`ReplicatedMachine::FORMAT_VERSION`]). A version this build
//! does not read is refused with the version named, never guessed at; Raft
//! runs [`payload_check`] on a leader's entries and snapshots before it
//! stores them.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use raft::core::{PayloadCheck, PayloadKind};
use serde::{Deserialize, Serialize};

use crate::machine::ReplicatedMachine;

/// Identifies one proposal of one replica incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProposalId {
    pub(crate) incarnation: u64,
    pub(crate) number: u64,
}

/// A log entry as the rsm writes a machine's command (layout version 1).
#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope<C> {
    pub(crate) proposal: ProposalId,
    pub(crate) stamp_ms: u64,
    pub(crate) command: C,
}

/// Layout version 2 of an entry: a machine's command or one of the rsm's
/// own entries. Commands are still written in layout 1, so a build that
/// knows only layout 1 reads every command; only the rsm's own entries
/// (written when an operator changes the membership) need this build.
#[derive(Serialize, Deserialize)]
pub(crate) struct EnvelopeV2<C> {
    pub(crate) proposal: ProposalId,
    pub(crate) stamp_ms: u64,
    pub(crate) body: EntryBody<C>,
}

#[derive(Serialize, Deserialize)]
pub(crate) enum EntryBody<C> {
    Command(C),
    /// Node `id`'s labrpc server is at `addr`: every replica records it in
    /// its address book when it applies the entry, which the operator's
    /// membership change puts before the change that adds the node.
    PeerAddress {
        id: u64,
        addr: SocketAddr,
    },
}

/// A decoded entry of either layout.
pub(crate) struct DecodedEntry<C> {
    pub(crate) proposal: ProposalId,
    pub(crate) stamp_ms: u64,
    pub(crate) body: EntryBody<C>,
}

/// A snapshot as the rsm hands it to Raft (layout version 1: no
/// addresses recorded). The machine's bytes are serde bytes here and in
/// [`SnapshotFrame`]: laid out by bincode as a `Vec<u8>` is, copied in one
/// go instead of a byte at a time.
#[derive(Deserialize)]
struct SnapshotFrameV1 {
    log_time_ms: u64,
    #[serde(with = "serde_bytes")]
    machine: Vec<u8>,
}

/// [`SnapshotFrameV1`] as written, borrowing the machine's bytes.
#[cfg(test)]
#[derive(Serialize)]
struct SnapshotFrameV1Ref<'a> {
    log_time_ms: u64,
    #[serde(with = "serde_bytes")]
    machine: &'a [u8],
}

/// A snapshot as the rsm hands it to Raft; written in layout version 1
/// while `peer_addrs` is empty, in version 2 once an address was recorded.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotFrame {
    pub(crate) log_time_ms: u64,
    #[serde(with = "serde_bytes")]
    pub(crate) machine: Vec<u8>,
    /// The addresses recorded by the rsm's `PeerAddress` entries so far.
    pub(crate) peer_addrs: BTreeMap<u64, SocketAddr>,
}

/// The newest layout of an entry this build reads ([`EnvelopeV2`]).
const ENTRY_FORMAT: codec::Format = codec::Format {
    what: "rsm log entry",
    version: 2,
};
/// The layout commands are written in ([`Envelope`]).
const COMMAND_ENTRY_FORMAT: codec::Format = codec::Format {
    version: 1,
    ..ENTRY_FORMAT
};
/// The newest layout of a snapshot this build reads ([`SnapshotFrame`]).
const SNAPSHOT_FORMAT: codec::Format = codec::Format {
    what: "rsm snapshot",
    version: 2,
};

/// The version header of entries (`kind` = [`ENTRY_FORMAT`]) or snapshots
/// (`kind` = [`SNAPSHOT_FORMAT`]) of machine `M`: the rsm's layout, then
/// the machine's ([`ReplicatedMachine::FORMAT_VERSION`]). Entries and
/// snapshots written before versions existed have no header and read as
/// version 1 of both.
fn formats<M: ReplicatedMachine>(kind: codec::Format) -> [codec::Format; 2] {
    [
        kind,
        codec::Format {
            what: std::any::type_name::<M>(),
            version: M::FORMAT_VERSION,
        },
    ]
}

pub(crate) fn encode_entry<M: ReplicatedMachine>(envelope: &Envelope<&M::Command>) -> Vec<u8> {
    codec::encode_versioned(&formats::<M>(COMMAND_ENTRY_FORMAT), envelope)
}

/// One of the rsm's own entries (layout 2).
pub(crate) fn encode_rsm_entry<M: ReplicatedMachine>(
    envelope: &EnvelopeV2<&M::Command>,
) -> Vec<u8> {
    codec::encode_versioned(&formats::<M>(ENTRY_FORMAT), envelope)
}

/// Refuses a machine format older than `M` still reads
/// ([`ReplicatedMachine::OLDEST_READABLE_FORMAT_VERSION`]).
fn check_machine_version<M: ReplicatedMachine>(versions: &[u8]) -> Result<(), codec::CodecError> {
    match versions.get(1) {
        Some(&found) if found < M::OLDEST_READABLE_FORMAT_VERSION => {
            Err(codec::CodecError::RetiredVersion {
                what: std::any::type_name::<M>(),
                found,
                oldest: M::OLDEST_READABLE_FORMAT_VERSION,
            })
        }
        _ => Ok(()),
    }
}

pub(crate) fn decode_entry<M: ReplicatedMachine>(
    bytes: &[u8],
) -> Result<DecodedEntry<M::Command>, codec::CodecError> {
    let (versions, body) = codec::split_versions(bytes, &formats::<M>(ENTRY_FORMAT))?;
    check_machine_version::<M>(&versions)?;
    if versions[0] == 1 {
        let envelope: Envelope<M::Command> = codec::decode(body, codec::ENTRY_LIMIT)?;
        return Ok(DecodedEntry {
            proposal: envelope.proposal,
            stamp_ms: envelope.stamp_ms,
            body: EntryBody::Command(envelope.command),
        });
    }
    let envelope: EnvelopeV2<M::Command> = codec::decode(body, codec::ENTRY_LIMIT)?;
    Ok(DecodedEntry {
        proposal: envelope.proposal,
        stamp_ms: envelope.stamp_ms,
        body: envelope.body,
    })
}

/// Raft's check of a leader's entry or snapshot before it is stored: it
/// must decode (a newer format version is refused, named in the reason).
pub(crate) fn payload_check<M: ReplicatedMachine>() -> PayloadCheck {
    PayloadCheck::new(|kind, data| {
        let decoded = match kind {
            PayloadKind::Entry => decode_entry::<M>(data).map(drop),
            PayloadKind::Snapshot => decode_snapshot::<M>(data).map(drop),
        };
        decoded.map_err(|error| error.to_string())
    })
}

/// Room kept in front of a machine's bytes for its frame's head: the
/// version mark and two versions, then two varints of at most 9 bytes
/// (the log time and the machine's length).
const FRAME_HEAD_ROOM: usize = 3 + 9 + 9;

/// The snapshot of `machine` (the replica's copy, given up for it), in the
/// frame [`encode_snapshot`] writes, with the same bytes; the machine
/// writes itself in place ([`ReplicatedMachine::snapshot_into`]) and the
/// frame goes around it, so its bytes are never copied: the head goes into
/// room left in front of them, and the bytes returned start where it
/// starts.
pub(crate) fn encode_snapshot_of<M: ReplicatedMachine>(
    machine: M,
    log_time_ms: u64,
    peer_addrs: &BTreeMap<u64, SocketAddr>,
) -> Bytes {
    let mut out = vec![0; FRAME_HEAD_ROOM];
    machine.snapshot_into(&mut out);
    let machine_bytes = (out.len() - FRAME_HEAD_ROOM) as u64;
    // Both layouts start the same way: the log time, then the machine as
    // serde bytes (its length, then itself); layout 2 then has the
    // addresses.
    let layout = if peer_addrs.is_empty() {
        1
    } else {
        SNAPSHOT_FORMAT.version
    };
    let format = codec::Format {
        version: layout,
        ..SNAPSHOT_FORMAT
    };
    let head = codec::encode_versioned(&formats::<M>(format), &(log_time_ms, machine_bytes));
    let start = FRAME_HEAD_ROOM - head.len();
    out[start..FRAME_HEAD_ROOM].copy_from_slice(&head);
    if !peer_addrs.is_empty() {
        codec::encode_into(peer_addrs, &mut out)
            .unwrap_or_else(|error| panic!("addresses failed to encode: {error}"));
    }
    Bytes::from(out).slice(start..)
}

/// A frame encoded whole, through serde: what [`encode_snapshot_of`]
/// must write, byte for byte (the tests compare them).
#[cfg(test)]
pub(crate) fn encode_snapshot<M: ReplicatedMachine>(frame: &SnapshotFrame) -> Vec<u8> {
    if frame.peer_addrs.is_empty() {
        let v1 = codec::Format {
            version: 1,
            ..SNAPSHOT_FORMAT
        };
        let frame = SnapshotFrameV1Ref {
            log_time_ms: frame.log_time_ms,
            machine: &frame.machine,
        };
        // Measuring a frame is cheap: the machine is one run of bytes.
        let bytes = codec::encoded_len(&frame) as usize;
        return codec::encode_versioned_into_capacity(&formats::<M>(v1), &frame, bytes);
    }
    let bytes = codec::encoded_len(frame) as usize;
    codec::encode_versioned_into_capacity(&formats::<M>(SNAPSHOT_FORMAT), frame, bytes)
}

pub(crate) fn decode_snapshot<M: ReplicatedMachine>(
    bytes: &[u8],
) -> Result<SnapshotFrame, codec::CodecError> {
    let (versions, body) = codec::split_versions(bytes, &formats::<M>(SNAPSHOT_FORMAT))?;
    check_machine_version::<M>(&versions)?;
    if versions[0] == 1 {
        let frame: SnapshotFrameV1 = codec::decode(body, codec::STATE_LIMIT)?;
        return Ok(SnapshotFrame {
            log_time_ms: frame.log_time_ms,
            machine: frame.machine,
            peer_addrs: BTreeMap::new(),
        });
    }
    codec::decode(body, codec::STATE_LIMIT)
}

/// Why bytes this replica holds do not decode, and what the operator can
/// do: a newer format version names the version and asks for an upgrade.
pub(crate) fn unusable_detail(error: &codec::CodecError) -> String {
    match error {
        codec::CodecError::UnknownVersion { .. } => {
            format!("{error}; upgrade this node to a release that reads it")
        }
        codec::CodecError::RetiredVersion { .. } => format!(
            "{error}; start this node with a release that reads it, or remove the node's files \
             and let it catch up from its peers"
        ),
        _ => format!("{error}; the node's files are damaged or were written by another release"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::ApplyContext;

    /// The smallest machine: a sum.
    #[derive(Clone, Serialize, Deserialize)]
    struct Sum(u64);

    impl ReplicatedMachine for Sum {
        type Command = u64;
        type Output = u64;

        fn apply(&mut self, amount: &u64, _context: &ApplyContext) -> u64 {
            self.0 += amount;
            self.0
        }

        fn check_invariants(&self) -> Result<(), String> {
            Ok(())
        }
    }

    /// A machine of any size, to cross the varints' widths.
    #[derive(Clone, Serialize, Deserialize)]
    struct Blob(#[serde(with = "serde_bytes")] Vec<u8>);

    impl ReplicatedMachine for Blob {
        type Command = u8;
        type Output = ();

        fn apply(&mut self, byte: &u8, _context: &ApplyContext) {
            self.0.push(*byte);
        }

        fn check_invariants(&self) -> Result<(), String> {
            Ok(())
        }
    }

    /// The frame written around the machine's bytes in place is the frame
    /// serde writes from a whole `SnapshotFrame`, in both layouts, with the
    /// head's varints at each width (1, 3 and 9 bytes for the log time;
    /// 1, 3 and 5 for the machine's length).
    #[test]
    fn a_frame_written_in_place_is_the_frame_written_whole() {
        let addr: SocketAddr = "10.0.0.9:7000".parse().unwrap();
        let address_books = [BTreeMap::new(), BTreeMap::from([(9, addr), (12, addr)])];
        for length in [0, 248, 249, 250, 65_531, 65_532, 65_533, 70_000] {
            let machine = Blob((0..length).map(|i| i as u8).collect());
            for log_time_ms in [0, 250, 251, 65_536, u64::MAX] {
                for peer_addrs in &address_books {
                    let whole = encode_snapshot::<Blob>(&SnapshotFrame {
                        log_time_ms,
                        machine: machine.snapshot(),
                        peer_addrs: peer_addrs.clone(),
                    });
                    let in_place = encode_snapshot_of(machine.clone(), log_time_ms, peer_addrs);
                    assert_eq!(
                        &in_place[..],
                        &whole[..],
                        "machine of {length} bytes, log time {log_time_ms}, {} addresses",
                        peer_addrs.len()
                    );
                    let back = decode_snapshot::<Blob>(&in_place).expect("decodes");
                    assert_eq!(back.machine, machine.snapshot());
                    assert_eq!(back.log_time_ms, log_time_ms);
                    assert_eq!(&back.peer_addrs, peer_addrs);
                }
            }
        }
    }

    fn envelope(command: &u64) -> Envelope<&u64> {
        Envelope {
            proposal: ProposalId {
                incarnation: 3,
                number: 4,
            },
            stamp_ms: 5,
            command,
        }
    }

    fn frame() -> SnapshotFrame {
        SnapshotFrame {
            log_time_ms: 9,
            machine: Sum(12).snapshot(),
            peer_addrs: BTreeMap::new(),
        }
    }

    fn machine_format(version: u8) -> codec::Format {
        codec::Format {
            what: std::any::type_name::<Sum>(),
            version,
        }
    }

    fn newer(format: codec::Format) -> codec::Format {
        codec::Format {
            version: format.version + 1,
            ..format
        }
    }

    /// The two snapshot layouts as declared before the machine's bytes
    /// were serde bytes.
    #[derive(Serialize)]
    struct FrameV1WithSeq {
        log_time_ms: u64,
        machine: Vec<u8>,
    }
    #[derive(Serialize)]
    struct FrameWithSeq {
        log_time_ms: u64,
        machine: Vec<u8>,
        peer_addrs: BTreeMap<u64, SocketAddr>,
    }

    #[test]
    fn snapshot_frames_lay_out_the_machine_as_a_sequence_did() {
        let machine: Vec<u8> = (0..=255u8).cycle().take(5_000).collect();
        let v1 = SnapshotFrameV1Ref {
            log_time_ms: 9,
            machine: &machine,
        };
        let old_v1 = FrameV1WithSeq {
            log_time_ms: 9,
            machine: machine.clone(),
        };
        assert_eq!(codec::encode(&v1), codec::encode(&old_v1));
        let back: SnapshotFrameV1 = codec::decode(&codec::encode(&old_v1), codec::STATE_LIMIT)
            .expect("the old layout decodes");
        assert_eq!(back.machine, machine);

        let peer_addrs = BTreeMap::from([(2, "127.0.0.1:7000".parse().unwrap())]);
        let v2 = SnapshotFrame {
            log_time_ms: 9,
            machine: machine.clone(),
            peer_addrs: peer_addrs.clone(),
        };
        let old_v2 = FrameWithSeq {
            log_time_ms: 9,
            machine: machine.clone(),
            peer_addrs,
        };
        assert_eq!(codec::encode(&v2), codec::encode(&old_v2));
        let back: SnapshotFrame = codec::decode(&codec::encode(&old_v2), codec::STATE_LIMIT)
            .expect("the old layout decodes");
        assert_eq!(back.machine, machine);
    }

    #[test]
    fn entries_and_snapshots_carry_versions_and_round_trip() {
        let bytes = encode_entry::<Sum>(&envelope(&7));
        assert_eq!(&bytes[..3], &[codec::VERSION_MARK, 1, 1]);
        let back = decode_entry::<Sum>(&bytes).expect("decodes");
        assert!(matches!(back.body, EntryBody::Command(7)));
        assert_eq!(back.stamp_ms, 5);

        let bytes = encode_snapshot::<Sum>(&frame());
        assert_eq!(&bytes[..3], &[codec::VERSION_MARK, 1, 1]);
        let back = decode_snapshot::<Sum>(&bytes).expect("decodes");
        assert_eq!(back.log_time_ms, 9);
        let machine = Sum(0).restore(&back.machine).expect("restores");
        assert_eq!(machine.0, 12);
    }

    /// The rsm's own entries (an address) use layout 2; a snapshot with
    /// recorded addresses too. Commands and address-free snapshots stay
    /// in layout 1 (above), which older builds read.
    #[test]
    fn address_entries_and_snapshots_with_addresses_use_layout_2() {
        let addr: SocketAddr = "10.0.0.9:7000".parse().unwrap();
        let bytes = encode_rsm_entry::<Sum>(&EnvelopeV2 {
            proposal: ProposalId {
                incarnation: 1,
                number: 2,
            },
            stamp_ms: 3,
            body: EntryBody::PeerAddress { id: 9, addr },
        });
        assert_eq!(&bytes[..3], &[codec::VERSION_MARK, 2, 1]);
        let back = decode_entry::<Sum>(&bytes).expect("decodes");
        assert!(matches!(back.body, EntryBody::PeerAddress { id: 9, addr: a } if a == addr));

        let frame = SnapshotFrame {
            peer_addrs: BTreeMap::from([(9, addr)]),
            ..frame()
        };
        let bytes = encode_snapshot::<Sum>(&frame);
        assert_eq!(&bytes[..3], &[codec::VERSION_MARK, 2, 1]);
        let back = decode_snapshot::<Sum>(&bytes).expect("decodes");
        assert_eq!(back.peer_addrs, frame.peer_addrs);
        assert_eq!(back.log_time_ms, 9);

        // A build that reads only layout 1 refuses them by version.
        let old = [COMMAND_ENTRY_FORMAT, machine_format(1)];
        assert!(matches!(
            codec::split_versions(&bytes, &old),
            Err(codec::CodecError::UnknownVersion { found: 2, .. })
        ));
    }

    #[test]
    fn entries_and_snapshots_written_before_versions_still_read() {
        // What this code wrote before versions: the bare encoding.
        let old_entry = codec::encode(&envelope(&7));
        let decoded = decode_entry::<Sum>(&old_entry).expect("decodes");
        assert!(matches!(decoded.body, EntryBody::Command(7)));
        let old_snapshot = codec::encode(&SnapshotFrameV1Ref {
            log_time_ms: 9,
            machine: &Sum(12).snapshot(),
        });
        assert_eq!(
            decode_snapshot::<Sum>(&old_snapshot)
                .expect("decodes")
                .log_time_ms,
            9
        );
    }

    #[test]
    fn an_entry_of_a_newer_version_is_refused_with_its_version_named() {
        // A newer rsm layout.
        let bytes =
            codec::encode_versioned(&[newer(ENTRY_FORMAT), machine_format(1)], &envelope(&7));
        let error = decode_entry::<Sum>(&bytes).map(drop).unwrap_err();
        assert_eq!(
            error,
            codec::CodecError::UnknownVersion {
                what: "rsm log entry",
                found: 3,
                supported: 2
            }
        );
        // A newer machine command format (a rolling upgrade that added a
        // command): refused before Raft stores it, the reason names it.
        let bytes = codec::encode_versioned(&[ENTRY_FORMAT, machine_format(2)], &envelope(&7));
        let reason = payload_check::<Sum>()
            .check(PayloadKind::Entry, &bytes)
            .unwrap_err();
        assert!(
            reason.contains(std::any::type_name::<Sum>()) && reason.contains("format version 2"),
            "{reason}"
        );
    }

    /// A machine whose version 1 can no longer be read (as the shardkv
    /// and controller machines since version 2).
    #[derive(Clone, Serialize, Deserialize)]
    struct Retired(u64);

    impl ReplicatedMachine for Retired {
        type Command = u64;
        type Output = u64;
        const FORMAT_VERSION: u8 = 2;
        const OLDEST_READABLE_FORMAT_VERSION: u8 = 2;

        fn apply(&mut self, amount: &u64, _context: &ApplyContext) -> u64 {
            self.0 += amount;
            self.0
        }

        fn check_invariants(&self) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn an_entry_or_snapshot_older_than_the_machine_reads_is_refused_not_misread() {
        let machine = |version| codec::Format {
            what: std::any::type_name::<Retired>(),
            version,
        };
        let retired = codec::CodecError::RetiredVersion {
            what: std::any::type_name::<Retired>(),
            found: 1,
            oldest: 2,
        };
        // Written by the older release: with a header naming version 1, or
        // from before headers existed (which reads as version 1).
        let old_entry = codec::encode_versioned(&[COMMAND_ENTRY_FORMAT, machine(1)], &envelope(&7));
        assert_eq!(
            decode_entry::<Retired>(&old_entry).map(drop),
            Err(retired.clone())
        );
        let headerless = codec::encode(&envelope(&7));
        assert_eq!(
            decode_entry::<Retired>(&headerless).map(drop),
            Err(retired.clone())
        );
        let old_snapshot = codec::encode_versioned(&[SNAPSHOT_FORMAT, machine(1)], &frame());
        assert_eq!(
            decode_snapshot::<Retired>(&old_snapshot).map(drop),
            Err(retired.clone())
        );
        let detail = unusable_detail(&retired);
        assert!(
            detail.contains("format version 1 is older") && detail.contains("catch up"),
            "{detail}"
        );
        // Raft refuses to store such an entry from a leader.
        let reason = payload_check::<Retired>()
            .check(PayloadKind::Entry, &old_entry)
            .unwrap_err();
        assert!(reason.contains("version 1 is older"), "{reason}");
        // Its own version reads.
        let current = codec::encode_versioned(&[COMMAND_ENTRY_FORMAT, machine(2)], &envelope(&7));
        assert!(decode_entry::<Retired>(&current).is_ok());
        let current = codec::encode_versioned(&[SNAPSHOT_FORMAT, machine(2)], &frame());
        assert!(decode_snapshot::<Retired>(&current).is_ok());
    }

    /// A committed entry of a newer machine format (a rolling upgrade
    /// wrote it, then this node was rolled back, or its leader ran the
    /// newer release) cannot be skipped: the replica stops through Raft's
    /// fatal path, naming the version and what to do, instead of
    /// panicking with the state lock held.
    #[cfg(not(madsim))]
    #[tokio::test]
    async fn a_committed_entry_of_a_newer_version_stops_the_replica_through_the_fatal_path() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;

        use raft::node::FatalReason;

        use crate::replica::{Rsm, RsmConfig};

        let hook_calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hook_calls);
        let config = RsmConfig {
            on_fatal: Some(raft::node::FatalHook::new(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            })),
            ..RsmConfig::new(0, vec!["127.0.0.1:1".parse().unwrap()], 1)
        };
        let rsm = Rsm::start(config, Sum(0), raft::storage::MemoryStorage::new())
            .await
            .expect("memory storage loads");

        // Phase 1: the single replica leads and applies a current entry.
        let deadline = labrpc::runtime::now() + Duration::from_secs(10);
        let total = loop {
            match rsm.submit(5).await {
                Ok(total) => break total,
                Err(_) if labrpc::runtime::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("no leader within 10 s: {error}"),
            }
        };
        assert_eq!(total, 5);

        // Phase 2: an entry of machine format version 2 commits (a leader
        // does not check its own proposals; followers would refuse it).
        let newer_entry =
            codec::encode_versioned(&[ENTRY_FORMAT, machine_format(2)], &envelope(&7));
        let (index, _) = rsm
            .raft()
            .start(newer_entry)
            .await
            .expect("the leader takes the proposal");
        let fatal = tokio::time::timeout(Duration::from_secs(10), rsm.raft().wait_fatal())
            .await
            .expect("the replica stops within 10 s");
        let message = fatal.to_string();
        println!("fatal: {message}");
        match &fatal.reason {
            FatalReason::Unusable {
                what,
                index: at,
                detail,
            } => {
                assert_eq!((*what, *at), ("committed entry", index), "{message}");
                assert!(detail.contains("format version 2"), "{message}");
                assert!(detail.contains("upgrade this node"), "{message}");
            }
            other => panic!("stopped for another reason: {other}"),
        }
        assert_eq!(fatal.exit_code(), raft::node::EXIT_CODE_UNUSABLE_STATE);
        assert_eq!(hook_calls.load(Ordering::SeqCst), 1, "the hook ran once");

        // Phase 3: nothing of it was applied, and the replica answers
        // errors, not panics (its state lock is not poisoned).
        assert_eq!(rsm.status().last_applied, index - 1);
        assert_eq!(rsm.with_machine(|machine| machine.0), 5);
        assert!(rsm.submit(1).await.is_err());
        assert!(rsm.read(|machine, _| machine.0).await.is_err());
    }

    #[test]
    fn a_snapshot_of_a_newer_version_is_refused_with_its_version_named() {
        let bytes = codec::encode_versioned(&[newer(SNAPSHOT_FORMAT), machine_format(1)], &frame());
        let reason = payload_check::<Sum>()
            .check(PayloadKind::Snapshot, &bytes)
            .unwrap_err();
        assert!(reason.contains("rsm snapshot format version 3"), "{reason}");
        let bytes = codec::encode_versioned(&[SNAPSHOT_FORMAT, machine_format(2)], &frame());
        assert!(matches!(
            decode_snapshot::<Sum>(&bytes),
            Err(codec::CodecError::UnknownVersion {
                found: 2,
                supported: 1,
                ..
            })
        ));
        // The current version passes the same check.
        let current = encode_snapshot::<Sum>(&frame());
        assert_eq!(
            payload_check::<Sum>().check(PayloadKind::Snapshot, &current),
            Ok(())
        );
    }
}
