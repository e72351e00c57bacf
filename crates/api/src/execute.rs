//! What each operation means on a store.

use cache::{Store, StoreError};

use crate::{Error, Limits, Op, Outcome, Reply};

/// Runs `op` on `store` at log time `now_ms`, within `limits`; a refused
/// operation changes nothing. A Get is an access for the eviction policy.
///
/// Deterministic: the same store, operation and time give the same answer
/// and the same store afterwards, on every replica. Exactly-once is the
/// caller's (this runs the operation every time it is called).
///
/// # Panics
/// If the store refuses an operation for a reason these operations cannot
/// cause (an integer error from a non-integer operation): a store bug.
pub fn execute(store: &mut Store, op: &Op, limits: &Limits, now_ms: u64) -> Reply {
    limits.check(op)?;
    match op {
        Op::Get { key } => Ok(Outcome::Value(store.get(key, now_ms).map(<[u8]>::to_vec))),
        Op::Put { key, value, ttl_ms } => store
            .put(key, value.clone(), *ttl_ms, now_ms)
            .map(|()| Outcome::Done)
            .map_err(store_error),
        Op::Append { key, value } => {
            // The result must stay under the value limit too; checked
            // before writing so a refused append changes nothing.
            let current_bytes = store.get(key, now_ms).map_or(0, <[u8]>::len) as u64;
            let total_bytes = current_bytes + value.len() as u64;
            if total_bytes > limits.max_value_bytes {
                return Err(Error::TooLarge {
                    what: "appended value".into(),
                    size_bytes: total_bytes,
                    limit_bytes: limits.max_value_bytes,
                });
            }
            store
                .append(key, value, now_ms)
                .map(|_| Outcome::Done)
                .map_err(store_error)
        }
        Op::Delete { key } => Ok(Outcome::Deleted(store.delete(key, now_ms))),
        Op::CompareAndSet {
            key,
            expected,
            value,
            ttl_ms,
        } => {
            match store.compare_and_set(key, expected.as_deref(), value.clone(), *ttl_ms, now_ms) {
                Ok(()) => Ok(Outcome::Swapped(true)),
                Err(StoreError::CasMismatch { .. }) => Ok(Outcome::Swapped(false)),
                Err(error) => Err(store_error(error)),
            }
        }
    }
}

/// Answers a read without changing anything (a ReadIndex read on the
/// leader alone): the store's `peek`, which respects TTLs at `now_ms` but
/// records no access for the eviction policy, so replicas stay identical.
///
/// # Panics
/// If `op` is not a read ([`Op::is_read`]): a bug in the caller.
pub fn read(store: &Store, op: &Op, limits: &Limits, now_ms: u64) -> Reply {
    limits.check(op)?;
    match op {
        Op::Get { key } => Ok(Outcome::Value(store.peek(key, now_ms).map(<[u8]>::to_vec))),
        other => panic!("api::read: {} is not a read", other.name()),
    }
}

fn store_error(error: StoreError) -> Error {
    match error {
        StoreError::TooLarge {
            weight_bytes,
            capacity_bytes,
        } => Error::TooLarge {
            what: "entry".into(),
            size_bytes: weight_bytes,
            limit_bytes: capacity_bytes,
        },
        StoreError::ZeroTtl => Error::ZeroTtl,
        other => panic!("the store refused a key/value operation unexpectedly: {other}"),
    }
}
