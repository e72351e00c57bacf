//! The store's expected failures.

use thiserror::Error;

/// An operation the store refused. Every error leaves the visible state
/// unchanged (housekeeping such as reclaiming already-invisible expired
/// entries may still have happened; it changes no answer).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("entry of {weight_bytes} bytes exceeds the store capacity of {capacity_bytes} bytes")]
    TooLarge {
        weight_bytes: u64,
        capacity_bytes: u64,
    },
    #[error("value is not a decimal 64-bit signed integer")]
    NotAnInteger,
    #[error("increment overflows a 64-bit signed integer")]
    IncrementOverflow,
    #[error("a TTL of 0 ms would expire the entry before anyone could read it")]
    ZeroTtl,
    #[error("compare-and-set mismatch: the current value differs from the expected one")]
    CasMismatch { current: Option<Vec<u8>> },
    /// The key holds a value of another type than the operation works on
    /// (Redis's `WRONGTYPE`).
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("snapshot rejected: {reason}")]
    CorruptSnapshot { reason: String },
    /// The disk tier could not read or write a value (an IO error or a
    /// damaged record); see [`crate::Store::disk_fault`].
    #[error(transparent)]
    Disk(super::DiskError),
}
