//! The multi-key operations ([`Op::MultiSet`], [`Op::Rename`],
//! [`Op::Copy`]): Redis's `MSET`/`MSETNX`, `RENAME`/`RENAMENX` and `COPY`,
//! each one step on one store (so one log entry of one shard).
//!
//! Each checks everything that could refuse it before it changes anything,
//! so a refused operation changes nothing. A rename or copy carries the
//! source's value whatever its type (string, hash, set, list, sorted set)
//! and its deadline: the same absolute log time, as Redis keeps the TTL.
//!
//! That all keys are in one shard is the server's check (it knows the
//! shard count; see `shardkv::ShardMachine`): here every key is in the
//! one store.

use cache::Store;
use cache::store::{Value, entry_weight_bytes};

use crate::execute::store_error;
use crate::{Error, Op, Outcome, Reply};

/// Runs a multi-key `op` on `store` at log time `now_ms`.
///
/// # Panics
/// If `op` is not a multi-key operation ([`Op::is_multi_key`]): a bug in
/// the caller.
pub(crate) fn execute_multi_key(store: &mut Store, op: &Op, now_ms: u64) -> Reply {
    match op {
        Op::MultiSet {
            pairs,
            only_if_none_exist,
        } => {
            if *only_if_none_exist
                && pairs
                    .iter()
                    .any(|(key, _)| store.kind(key, now_ms).is_some())
            {
                return Ok(Outcome::Applied(false));
            }
            for (key, value) in pairs {
                check_fits(store, key, &Value::Str(value.clone()))?;
            }
            for (key, value) in pairs {
                store
                    .put(key, value.clone(), None, now_ms)
                    .map_err(store_error)?;
            }
            Ok(Outcome::Applied(true))
        }
        Op::Rename {
            source,
            destination,
            only_if_new,
        } => {
            let Some(value) = store.value(source, now_ms).cloned() else {
                return Err(Error::NoSuchKey);
            };
            if source == destination {
                return Ok(Outcome::Applied(!*only_if_new));
            }
            if *only_if_new && store.kind(destination, now_ms).is_some() {
                return Ok(Outcome::Applied(false));
            }
            check_fits(store, destination, &value)?;
            let expiry = store.expiry(source, now_ms);
            store.delete(source, now_ms);
            store
                .put_value(destination, value, expiry, now_ms)
                .map_err(store_error)?;
            Ok(Outcome::Applied(true))
        }
        Op::Copy {
            source,
            destination,
            replace,
        } => {
            if source == destination {
                return Ok(Outcome::Applied(false));
            }
            let Some(value) = store.value(source, now_ms).cloned() else {
                return Ok(Outcome::Applied(false));
            };
            if !*replace && store.kind(destination, now_ms).is_some() {
                return Ok(Outcome::Applied(false));
            }
            check_fits(store, destination, &value)?;
            let expiry = store.expiry(source, now_ms);
            store
                .put_value(destination, value, expiry, now_ms)
                .map_err(store_error)?;
            Ok(Outcome::Applied(true))
        }
        other => panic!(
            "api::multikey: {} is not a multi-key operation",
            other.name()
        ),
    }
}

/// Refuses (changing nothing) an entry that could never fit the store.
fn check_fits(store: &Store, key: &[u8], value: &Value) -> Result<(), Error> {
    check_weight(store, entry_weight_bytes(key, value))
}

/// Refuses (changing nothing) an entry of `weight_bytes` that could never
/// fit the store.
pub(crate) fn check_weight(store: &Store, weight_bytes: u64) -> Result<(), Error> {
    let capacity_bytes = store.config().capacity_bytes;
    if weight_bytes > capacity_bytes {
        return Err(Error::TooLarge {
            what: "entry".into(),
            size_bytes: weight_bytes,
            limit_bytes: capacity_bytes,
        });
    }
    Ok(())
}
