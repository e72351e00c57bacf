//! What each operation means on a store.

use cache::store::{Expiry, Ttl};
use cache::{Store, StoreError};

use crate::lcs::LcsAnswer;
use crate::op::{
    ExpireCondition, GetExTtl, KeyExpireTime, KeyTtl, SetCondition, SetTtl, format_float,
};
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
    // With a disk tier, the operation's keys come back into memory first
    // (an access, the same on every replica), so everything below reads
    // them with the memory-only `peek_value`. No-op without a tier. Writes
    // that never read the old value skip it: the store drops a disk copy
    // they replace without reading it. A plain `Get` skips it too: the
    // store's `get` brings the key back itself and counts the read as a
    // disk hit or miss (the tier's hit ratio), which a promotion first
    // would hide. `GetWithTtl` is a `Get`.
    if !matches!(
        op,
        Op::Put { .. }
            | Op::Delete { .. }
            | Op::MultiSet { .. }
            | Op::Get { .. }
            | Op::GetWithTtl { .. }
    ) {
        for key in op.keys() {
            store.promote(key, now_ms);
        }
    }
    check_string(store, op, now_ms)?;
    match op {
        Op::Get { key } => Ok(Outcome::Value(store.get(key, now_ms).map(<[u8]>::to_vec))),
        Op::GetWithTtl { key } => Ok(Outcome::ValueWithTtl {
            value: store.get(key, now_ms).map(<[u8]>::to_vec),
            ttl: key_ttl(store.peek_ttl(key, now_ms)),
        }),
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
                .map(|length| Outcome::Integer(length as i64))
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
        Op::Set {
            key,
            value,
            condition,
            ttl,
            return_old,
        } => set(store, key, value, *condition, *ttl, *return_old, now_ms),
        Op::Increment { key, delta } => {
            let current = match store.get(key, now_ms) {
                Some(value) => parse_redis_integer(value).ok_or(Error::NotAnInteger)?,
                None => 0,
            };
            current
                .checked_add(*delta)
                .ok_or(Error::IncrementOverflow)?;
            store
                .increment(key, *delta, now_ms)
                .map(Outcome::Integer)
                .map_err(store_error)
        }
        Op::IncrementFloat { key, delta } => {
            let current = match store.get(key, now_ms) {
                Some(value) => parse_float(value).ok_or(Error::NotAFloat)?,
                None => 0.0,
            };
            let next = current + delta.0;
            if !next.is_finite() {
                return Err(Error::NotFinite);
            }
            let text = format_float(next).into_bytes();
            write_keeping_ttl(store, key, text.clone(), now_ms)?;
            Ok(Outcome::Value(Some(text)))
        }
        Op::GetDel { key } => {
            let value = store.get(key, now_ms).map(<[u8]>::to_vec);
            if value.is_some() {
                store.delete(key, now_ms);
            }
            Ok(Outcome::Value(value))
        }
        Op::GetEx { key, ttl } => {
            let Some(value) = store.get(key, now_ms).map(<[u8]>::to_vec) else {
                return Ok(Outcome::Value(None));
            };
            match ttl {
                GetExTtl::Unchanged => {}
                GetExTtl::Persist => {
                    store.persist(key, now_ms);
                }
                GetExTtl::Ms(0) | GetExTtl::At { ttl_ms: 0, .. } => {
                    store.delete(key, now_ms);
                }
                GetExTtl::Ms(ttl_ms) => {
                    store.expire(key, *ttl_ms, now_ms).map_err(store_error)?;
                }
                GetExTtl::At { ttl_ms, unix_ms } => {
                    let expiry = Expiry {
                        ttl_ms: *ttl_ms,
                        unix_ms: Some(*unix_ms),
                    };
                    store
                        .expire_with(key, expiry, now_ms)
                        .map_err(store_error)?;
                }
            }
            Ok(Outcome::Value(Some(value)))
        }
        Op::Expire {
            key,
            ttl_ms,
            unix_ms,
            condition,
        } => {
            if store.ttl(key, now_ms) == Ttl::Missing {
                return Ok(Outcome::Applied(false));
            }
            let current = store.expiry(key, now_ms);
            let expiry = Expiry {
                ttl_ms: *ttl_ms,
                unix_ms: *unix_ms,
            };
            if !expire_allowed(*condition, current, expiry) {
                return Ok(Outcome::Applied(false));
            }
            if *ttl_ms == 0 {
                store.delete(key, now_ms);
            } else {
                store
                    .expire_with(key, expiry, now_ms)
                    .map_err(store_error)?;
            }
            Ok(Outcome::Applied(true))
        }
        Op::Persist { key } => Ok(Outcome::Applied(store.persist(key, now_ms))),
        Op::Ttl { .. }
        | Op::ExpireTime { .. }
        | Op::Lcs { .. }
        | Op::Strlen { .. }
        | Op::GetRange { .. } => read(store, op, limits, now_ms),
        Op::ScanShard { .. }
        | Op::CountShard { .. }
        | Op::FlushShard { .. }
        | Op::RandomKey { .. } => crate::keyspace::execute_shard_op(store, op, now_ms),
        Op::MultiSet { .. } | Op::Rename { .. } | Op::Copy { .. } => {
            crate::multikey::execute_multi_key(store, op, now_ms)
        }
        Op::SetRange { key, offset, value } => {
            let current = store.get(key, now_ms).map(<[u8]>::to_vec);
            if value.is_empty() {
                return Ok(Outcome::Integer(current.map_or(0, |v| v.len()) as i64));
            }
            // Limits::check bounded offset + value by the value limit.
            let offset = usize::try_from(*offset).expect("checked against the value limit");
            let mut updated = current.unwrap_or_default();
            if updated.len() < offset + value.len() {
                updated.resize(offset + value.len(), 0);
            }
            updated[offset..offset + value.len()].copy_from_slice(value);
            let length = updated.len() as i64;
            write_keeping_ttl(store, key, updated, now_ms)?;
            Ok(Outcome::Integer(length))
        }
        Op::Hash { key, op } => crate::collections::execute_hash(store, key, op, limits, now_ms),
        Op::Sets { key, op } => crate::collections::execute_set(store, key, op, limits, now_ms),
        Op::List { key, op } => crate::lists::execute_list(store, key, op, limits, now_ms),
        Op::ZSet { key, op } => crate::zsets::execute_zset(store, key, op, limits, now_ms),
        Op::Type { .. } | Op::Encoding { .. } | Op::MemoryUsage { .. } => {
            read(store, op, limits, now_ms)
        }
    }
}

/// The store's answer as the API's.
fn key_ttl(ttl: Ttl) -> KeyTtl {
    match ttl {
        Ttl::Missing => KeyTtl::Missing,
        Ttl::Persistent => KeyTtl::Persistent,
        Ttl::RemainingMs(remaining_ms) => KeyTtl::RemainingMs(remaining_ms),
    }
}

/// Whether `op` works on a string value only (a key of another type
/// answers `WRONGTYPE`). `SET` without `GET` and `PUT` overwrite any type;
/// `DEL`, the `EXPIRE` family, `PERSIST` and `TTL` work on any type.
fn is_string_op(op: &Op) -> bool {
    match op {
        Op::Get { .. }
        | Op::GetWithTtl { .. }
        | Op::Append { .. }
        | Op::CompareAndSet { .. }
        | Op::Increment { .. }
        | Op::IncrementFloat { .. }
        | Op::GetDel { .. }
        | Op::GetEx { .. }
        | Op::Strlen { .. }
        | Op::GetRange { .. }
        | Op::SetRange { .. } => true,
        Op::Set { return_old, .. } => *return_old,
        Op::Put { .. }
        | Op::Delete { .. }
        | Op::Expire { .. }
        | Op::Persist { .. }
        | Op::Ttl { .. }
        | Op::ExpireTime { .. }
        | Op::Lcs { .. }
        | Op::Hash { .. }
        | Op::Sets { .. }
        | Op::List { .. }
        | Op::ZSet { .. }
        | Op::Type { .. }
        | Op::Encoding { .. }
        | Op::MemoryUsage { .. }
        | Op::ScanShard { .. }
        | Op::CountShard { .. }
        | Op::FlushShard { .. }
        | Op::RandomKey { .. }
        | Op::MultiSet { .. }
        | Op::Rename { .. }
        | Op::Copy { .. } => false,
    }
}

/// The reply [`execute`] gives `op` on a store with `store_config`,
/// whatever the store holds, when that can be told without running it:
/// a plain write of strings (`Put` without a zero TTL; `Set` with no
/// condition and no `GET`; `MultiSet` without `NX`) that passes `limits`
/// and fits the store always answers the same. None for anything else. Asynchronous replication
/// answers such a write before it commits.
pub fn reply_known_before(
    op: &Op,
    limits: &Limits,
    store_config: &cache::StoreConfig,
) -> Option<Reply> {
    let (key, value, reply) = match op {
        Op::Put { key, value, ttl_ms } if *ttl_ms != Some(0) => (key, value, Outcome::Done),
        Op::Set {
            key,
            value,
            condition: SetCondition::Always,
            return_old: false,
            ..
        } => (
            key,
            value,
            Outcome::Set {
                applied: true,
                previous: None,
            },
        ),
        Op::MultiSet {
            pairs,
            only_if_none_exist: false,
        } => {
            let fits = pairs.iter().all(|(key, value)| {
                cache::store::weight_bytes(key, value) <= store_config.capacity_bytes
            });
            return (limits.check(op).is_ok() && fits).then_some(Ok(Outcome::Applied(true)));
        }
        _ => return None,
    };
    let fits = cache::store::weight_bytes(key, value) <= store_config.capacity_bytes;
    (limits.check(op).is_ok() && fits).then_some(Ok(reply))
}

/// Refuses a string operation on a key that holds another type.
fn check_string(store: &Store, op: &Op, now_ms: u64) -> Result<(), Error> {
    if is_string_op(op)
        && store
            .kind(op.key(), now_ms)
            .is_some_and(|kind| kind != cache::store::Kind::String)
    {
        return Err(Error::WrongType);
    }
    Ok(())
}

/// [`Op::Set`].
fn set(
    store: &mut Store,
    key: &[u8],
    value: &[u8],
    condition: SetCondition,
    ttl: SetTtl,
    return_old: bool,
    now_ms: u64,
) -> Reply {
    let current = store.get(key, now_ms).map(<[u8]>::to_vec);
    let applied = match condition {
        SetCondition::Always => true,
        SetCondition::IfAbsent => current.is_none(),
        SetCondition::IfPresent => current.is_some(),
    };
    if applied {
        let expiry = match ttl {
            SetTtl::Clear => None,
            SetTtl::Keep => store.expiry(key, now_ms),
            SetTtl::Ms(ttl_ms) => Some(Expiry::after(ttl_ms)),
            SetTtl::At { ttl_ms, unix_ms } => Some(Expiry {
                ttl_ms,
                unix_ms: Some(unix_ms),
            }),
        };
        if expiry.is_some_and(|expiry| expiry.ttl_ms == 0) {
            // The deadline has passed already: the key ends absent.
            store.delete(key, now_ms);
        } else {
            store
                .put_value(
                    key,
                    cache::store::Value::Str(value.to_vec()),
                    expiry,
                    now_ms,
                )
                .map_err(store_error)?;
        }
    }
    Ok(Outcome::Set {
        applied,
        previous: if return_old { current } else { None },
    })
}

/// Writes `value` at `key`, keeping the deadline the key has (the same
/// absolute log time, since the remaining TTL is counted from the same
/// `now`, and the same wall-clock instant).
fn write_keeping_ttl(
    store: &mut Store,
    key: &[u8],
    value: Vec<u8>,
    now_ms: u64,
) -> Result<(), Error> {
    let expiry = store.expiry(key, now_ms);
    store
        .put_value(key, cache::store::Value::Str(value), expiry, now_ms)
        .map_err(store_error)
}

/// Whether [`Op::Expire`]'s conditions hold, given the key's remaining TTL
/// (`None`: no deadline, an infinite TTL for `GT`/`LT`).
///
/// Two deadlines that both carry the wall-clock instant named for them are
/// compared by those instants (so `EXPIREAT k t GT` on a key set with
/// `EXAT t` is refused, as in Redis, however log time and the receiving
/// node's clock drifted apart in between); otherwise by the TTLs.
fn expire_allowed(condition: ExpireCondition, current: Option<Expiry>, new: Expiry) -> bool {
    let later = |new: Expiry, current: Expiry| match (new.unix_ms, current.unix_ms) {
        (Some(new_unix_ms), Some(current_unix_ms)) => new_unix_ms.cmp(&current_unix_ms),
        _ => new.ttl_ms.cmp(&current.ttl_ms),
    };
    if condition.if_no_ttl && current.is_some() {
        return false;
    }
    if condition.if_has_ttl && current.is_none() {
        return false;
    }
    if condition.if_greater && current.is_none_or(|current| later(new, current).is_le()) {
        return false;
    }
    if condition.if_less && current.is_some_and(|current| later(new, current).is_ge()) {
        return false;
    }
    true
}

/// A value as Redis reads an integer: ASCII decimal, an optional `-`, no
/// `+`, no leading zeros, no spaces, within 64 bits.
pub fn parse_redis_integer(value: &[u8]) -> Option<i64> {
    let digits = value.strip_prefix(b"-").unwrap_or(value);
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && (digits.len() > 1 || value.len() > 1))
    {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A value as Redis reads a float for `INCRBYFLOAT`: a decimal number
/// with no surrounding spaces, not NaN.
pub(crate) fn parse_float(value: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(value).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let number: f64 = text.parse().ok()?;
    (!number.is_nan()).then_some(number)
}

/// Redis's `GETRANGE` on a value: `start..=end`, negative positions from
/// the end, clamped.
pub fn substring(value: &[u8], start: i64, end: i64) -> &[u8] {
    let length = value.len() as i64;
    if length == 0 || (start < 0 && end < 0 && start > end) {
        return &[];
    }
    let start = if start < 0 {
        (length + start).max(0)
    } else {
        start
    };
    let end = if end < 0 {
        (length + end).max(0)
    } else {
        end.min(length - 1)
    };
    if start > end || start >= length {
        return &[];
    }
    &value[start as usize..=end as usize]
}

/// Answers a read without changing anything (a ReadIndex read on the
/// leader alone): the store's `peek`, which respects TTLs at `now_ms` but
/// records no access for the eviction policy, so replicas stay identical.
///
/// # Panics
/// If `op` is not a read ([`Op::is_read`]): a bug in the caller.
pub fn read(store: &Store, op: &Op, limits: &Limits, now_ms: u64) -> Reply {
    limits.check(op)?;
    // With a disk tier, a read whose keys are on disk reads a copy of
    // them (`peek_value` below sees memory only); a disk failure is an
    // internal error, never a miss. `None` without a tier or when every
    // key is in memory.
    match store.read_view(op.keys(), now_ms) {
        Ok(Some(view)) => return read(&view, op, limits, now_ms),
        Ok(None) => {}
        Err(error) => {
            return Err(Error::UnexpectedOutcome {
                op: op.name().to_owned(),
                outcome: error.to_string(),
            });
        }
    }
    // A plain GET checks the key's type as it reads the value: one lookup.
    let plain_get = matches!(
        op,
        Op::Get { .. }
            | Op::GetEx {
                ttl: GetExTtl::Unchanged,
                ..
            }
    );
    if !plain_get {
        check_string(store, op, now_ms)?;
    }
    match op {
        Op::Get { key }
        | Op::GetEx {
            key,
            ttl: GetExTtl::Unchanged,
        } => match store.peek_value(key, now_ms) {
            None => Ok(Outcome::Value(None)),
            Some(value) => value
                .as_str()
                .map(|bytes| Outcome::Value(Some(bytes.to_vec())))
                .ok_or(Error::WrongType),
        },
        Op::GetWithTtl { key } => Ok(Outcome::ValueWithTtl {
            value: store.peek(key, now_ms).map(<[u8]>::to_vec),
            ttl: key_ttl(store.peek_ttl(key, now_ms)),
        }),
        Op::Ttl { key } => Ok(Outcome::Ttl(key_ttl(store.peek_ttl(key, now_ms)))),
        Op::ExpireTime { key } => Ok(Outcome::ExpireTime(match store.peek_expiry(key, now_ms) {
            None => KeyExpireTime::Missing,
            Some(None) => KeyExpireTime::Persistent,
            Some(Some(Expiry {
                unix_ms: Some(unix_ms),
                ..
            })) => KeyExpireTime::UnixMs(unix_ms),
            Some(Some(Expiry { ttl_ms, .. })) => KeyExpireTime::RemainingMs(ttl_ms),
        })),
        Op::Lcs {
            first,
            second,
            answer,
        } => {
            // An absent key is an empty string, as in Redis.
            let string = |key: &[u8]| match store.peek_value(key, now_ms) {
                None => Ok(&[][..]),
                Some(value) => value.as_str().ok_or(Error::WrongType),
            };
            let (first, second) = (string(first)?, string(second)?);
            let want_matches = *answer == LcsAnswer::Matches;
            let (subsequence, matches) =
                crate::lcs::longest_common_subsequence(first, second, want_matches)?;
            Ok(match answer {
                LcsAnswer::Subsequence => Outcome::Value(Some(subsequence)),
                LcsAnswer::Length => Outcome::Integer(subsequence.len() as i64),
                LcsAnswer::Matches => Outcome::LcsMatches {
                    matches,
                    length: subsequence.len() as u64,
                },
            })
        }
        Op::Strlen { key } => Ok(Outcome::Integer(
            store.peek(key, now_ms).map_or(0, <[u8]>::len) as i64,
        )),
        Op::GetRange { key, start, end } => {
            let value = store.peek(key, now_ms).unwrap_or_default();
            Ok(Outcome::Value(Some(
                substring(value, *start, *end).to_vec(),
            )))
        }
        Op::Hash { .. } | Op::Sets { .. } | Op::List { .. } | Op::ZSet { .. } | Op::Type { .. } => {
            crate::collections::read_collection(store, op, limits, now_ms)
        }
        Op::ScanShard { .. } | Op::CountShard { .. } | Op::RandomKey { .. } => {
            crate::keyspace::read_shard_op(store, op, now_ms)
        }
        Op::Encoding { key } => Ok(Outcome::Value(
            store
                .peek_value(key, now_ms)
                .map(|value| encoding_name(value).as_bytes().to_vec()),
        )),
        Op::MemoryUsage { key } => Ok(match store.peek_value(key, now_ms) {
            Some(value) => Outcome::Integer(
                i64::try_from(cache::store::entry_weight_bytes(key, value)).unwrap_or(i64::MAX),
            ),
            None => Outcome::Value(None),
        }),
        other => panic!("api::read: {} is not a read", other.name()),
    }
}

/// What `OBJECT ENCODING` answers for a value: Redis 7.0's name for the
/// representation nearest to the one this store holds. Strings are one
/// byte vector here, named as Redis would name the same bytes set by `SET`
/// (`int` for a decimal 64-bit integer of at most 20 bytes, `embstr` up to
/// 44 bytes, `raw` above), whatever wrote them (Redis names a string grown
/// by `APPEND` or `SETRANGE` `raw` at any length); a hash and a set are ordered maps (`hashtable`: Redis's
/// compact `listpack`/`intset` forms are never used here), a list a ring
/// buffer (`quicklist`, Redis 7.0's only list encoding) and a sorted set a
/// member map plus an order tree (`skiplist`, Redis's map-plus-ordered-
/// index form).
pub fn encoding_name(value: &cache::store::Value) -> &'static str {
    use cache::store::Value;
    match value {
        Value::Str(bytes) if bytes.len() <= 20 && parse_redis_integer(bytes).is_some() => "int",
        Value::Str(bytes) if bytes.len() <= 44 => "embstr",
        Value::Str(_) => "raw",
        Value::Hash(_) | Value::Set(_) => "hashtable",
        Value::List(_) => "quicklist",
        Value::ZSet(_) => "skiplist",
    }
}

pub(crate) fn store_error(error: StoreError) -> Error {
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
        StoreError::WrongType => Error::WrongType,
        other => panic!("the store refused a key/value operation unexpectedly: {other}"),
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Error {
        store_error(error)
    }
}
