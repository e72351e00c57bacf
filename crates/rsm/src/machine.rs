//! The contract between [`crate::Rsm`] and the state machine it replicates,
//! and the codec both sides use for entries and snapshots.

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
pub trait ReplicatedMachine: Send + 'static {
    /// What a log entry carries (besides the envelope the rsm adds).
    type Command: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// What applying a command answers to whoever submitted it.
    type Output: Clone + Send + 'static;

    /// Applies one committed command.
    fn apply(&mut self, command: &Self::Command, context: &ApplyContext) -> Self::Output;

    /// The whole machine as bytes (use [`encode`] for a serde type).
    fn snapshot(&self) -> Vec<u8>;

    /// A machine rebuilt from [`ReplicatedMachine::snapshot`] bytes. `self`
    /// is the replica's current machine, so local settings that are not in
    /// the snapshot can be carried over. Bytes that do not decode, or that
    /// decode to a state breaking the machine's invariants, are an error
    /// (the rsm then stops the replica rather than serve other state).
    fn restore(&self, snapshot: &[u8]) -> Result<Self, RestoreError>
    where
        Self: Sized;
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

/// bincode (standard configuration) of a serde value: the encoding of log
/// entries and snapshots.
///
/// # Panics
/// If serde refuses the value (a bug in its `Serialize`, not an input
/// error).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .unwrap_or_else(|error| panic!("{} failed to encode: {error}", std::any::type_name::<T>()))
}

/// The inverse of [`encode`]; trailing bytes are an error, not ignored.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RestoreError> {
    let (value, read_bytes) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|error| RestoreError::Decode {
            detail: error.to_string(),
        })?;
    if read_bytes != bytes.len() {
        return Err(RestoreError::TrailingBytes {
            read_bytes,
            trailing_bytes: bytes.len() - read_bytes,
        });
    }
    Ok(value)
}
