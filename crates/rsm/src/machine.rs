//! The contract between [`crate::Rsm`] and the state machine it replicates.
//! Entries and snapshots are encoded with the shared `codec` crate.

use serde::{Serialize, de::DeserializeOwned};

/// Where in the log a command applies, and the log's time there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyContext {
    /// The log index of the entry being applied (for a read: the index
    /// the replica had applied when the read ran).
    pub index: u64,
    /// Logical time in ms: the largest leader stamp applied so far (for a
    /// read: the leader's current stamp, never less). Never goes backwards
    /// on a replica, is the same on every replica at the same index, and is
    /// part of the snapshot. TTLs and idle expiry use only this.
    pub now_ms: u64,
}

/// A deterministic state machine that [`crate::Rsm`] replicates with Raft.
///
/// The caller ([`crate::Rsm`]) guarantees:
/// - `apply` is called once per committed command, in log order, with the
///   same `ApplyContext` on every replica;
/// - `restore` is called with bytes that some replica's `snapshot` produced
///   at a log index, and the commands after that index follow;
/// - calls never overlap (the machine is behind one lock).
///
/// The machine guarantees: `apply` is a pure function of the machine's
/// state, the command and the context (no clock, no randomness, no IO, no
/// `HashMap` iteration order), so every replica holds the same state and
/// answers the same. Expected refusals (bad input) are part of `Output`
/// and change nothing.
///
/// A machine is a serde value: [`ReplicatedMachine::snapshot`] and
/// [`ReplicatedMachine::restore`] have defaults (the shared codec, then
/// [`ReplicatedMachine::check_invariants`] and
/// [`ReplicatedMachine::check_compatible`]) that machines need not replace.
/// `Clone`: a snapshot is encoded from a copy, off the replica's lock and
/// off the runtime's workers, so a large state does not stall the replica's
/// requests (or, sharing the workers, every other group's) while it is
/// written out.
pub trait ReplicatedMachine: Serialize + DeserializeOwned + Clone + Send + 'static {
    /// What a log entry carries (besides the envelope the rsm adds).
    type Command: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// What applying a command answers to whoever submitted it.
    type Output: Clone + PartialEq + Send + 'static;

    /// The format version of `Command` and of the snapshot, written into
    /// every entry and snapshot (after the rsm's own version). Raise it
    /// when either changes in a way an older build cannot read (a new
    /// command variant, a new field): an older replica then refuses such an
    /// entry or snapshot with an error naming the version instead of
    /// misreading it. Starts at 1.
    const FORMAT_VERSION: u8 = 1;

    /// The oldest format version of `Command` and of the snapshot this
    /// build still reads. Raise it when a change makes older entries or
    /// snapshots undecodable in the current shape (a field added to a type
    /// a command or the snapshot carries): they are then refused with an
    /// error naming both versions, never decoded into the new shape, which
    /// could misread them. Starts at 1.
    const OLDEST_READABLE_FORMAT_VERSION: u8 = 1;

    /// Applies one committed command.
    fn apply(&mut self, command: &Self::Command, context: &ApplyContext) -> Self::Output;

    /// For asynchronous replication ([`crate::EarlyAcks`]): the output
    /// `command` will have when applied after `earlier` (this leader's
    /// commands between the applied state and `command`, in log order),
    /// if the machine can tell it for sure now; the leader then answers
    /// before the commit. None (the default): answer after the commit.
    ///
    /// It must be exact: given this state and only `earlier` in between,
    /// `apply` of `command` answers the value returned. Return None for
    /// anything whose answer depends on what `earlier` may change.
    fn early_output<'a>(
        &self,
        command: &Self::Command,
        earlier: impl Iterator<Item = &'a Self::Command>,
    ) -> Option<Self::Output>
    where
        Self::Command: 'a,
    {
        let _ = (command, earlier);
        None
    }

    /// A local failure that makes this replica's state differ from the
    /// others' (say, a value its disk lost), if any. Checked after every
    /// applied command: a replica with a fault stops through the fatal
    /// path before that command's output reaches anyone, so it never
    /// answers from state it lost; it comes back from a snapshot when
    /// restarted. None (the default): no such failure is possible.
    fn fault(&self) -> Option<String> {
        None
    }

    /// The machine's own invariants, checked on every restored state.
    fn check_invariants(&self) -> Result<(), String>;

    /// Whether `restored`, decoded from a snapshot, may replace `self`, the
    /// replica's current machine (local settings that must agree, such as
    /// a group id or limits). The default accepts.
    fn check_compatible(&self, restored: &Self) -> Result<(), String> {
        let _ = restored;
        Ok(())
    }

    /// The whole machine as bytes.
    fn snapshot(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// [`ReplicatedMachine::snapshot`]'s bytes, appended to `out` (which
    /// may hold bytes already), from a machine given up for it: the rsm
    /// calls this on its copy, off the replica's lock, and writes its frame
    /// around the bytes instead of copying them. The default appends
    /// `snapshot()`; a machine with a large state writes in place, and may
    /// drop its parts as they are written, so that its copy and its bytes
    /// are not both whole at once.
    fn snapshot_into(self, out: &mut Vec<u8>)
    where
        Self: Sized,
    {
        out.extend_from_slice(&self.snapshot());
    }

    /// A machine rebuilt from [`ReplicatedMachine::snapshot`] bytes. `self`
    /// is the replica's current machine. Bytes that do not decode (within
    /// `codec::STATE_LIMIT`), or that decode to a state breaking the
    /// machine's invariants or not compatible with `self`, are an error
    /// (the rsm then stops the replica rather than serve other state).
    fn restore(&self, snapshot: &[u8]) -> Result<Self, RestoreError>
    where
        Self: Sized,
    {
        let machine: Self = codec::decode(snapshot, codec::STATE_LIMIT)?;
        machine
            .check_invariants()
            .and_then(|()| self.check_compatible(&machine))
            .map_err(|detail| RestoreError::Inconsistent { detail })?;
        Ok(machine)
    }
}

/// A snapshot (or log entry) that cannot be turned back into state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("does not decode: {detail}")]
    Decode { detail: String },
    #[error("{trailing_bytes} trailing bytes after {read_bytes} bytes of state")]
    TrailingBytes {
        read_bytes: usize,
        trailing_bytes: usize,
    },
    /// Decoded, but the state breaks an invariant of the machine.
    #[error("inconsistent state: {detail}")]
    Inconsistent { detail: String },
}

impl From<codec::CodecError> for RestoreError {
    fn from(error: codec::CodecError) -> RestoreError {
        match error {
            codec::CodecError::TrailingBytes {
                read_bytes,
                trailing_bytes,
            } => RestoreError::TrailingBytes {
                read_bytes,
                trailing_bytes,
            },
            error => RestoreError::Decode {
                detail: error.to_string(),
            },
        }
    }
}
