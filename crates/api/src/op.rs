//! The operations a user runs on a key, and what they answer.

use serde::{Deserialize, Serialize};

use crate::collections::{HashOp, SetOp};
use crate::lcs::{LcsAnswer, LcsMatch};
use crate::lists::ListOp;
use crate::zsets::ZSetOp;

/// One operation on the store. Keys and values are bytes.
///
/// Adding an operation (increment, expire, multi-get, ...) means a variant
/// here, its meaning in [`crate::execute`] (and [`crate::read`] if it only
/// reads), its size in [`Op::value_size_bytes`], and (if users call it by
/// name) a provided method on [`crate::KvClient`]; every server and client
/// carries it unchanged.
///
/// **Time.** Every TTL here is relative: milliseconds of *log time* after
/// the entry that carries the operation is applied. Log time is the
/// replicated clock of the group (identical on every replica, advancing at
/// the leader's clock rate), not the wall clock, so a wall-clock deadline
/// (Redis's `EXPIREAT`, `SET ... PXAT`) is converted to a relative TTL by
/// the node that receives the command, with its wall clock, before the
/// operation is built (a deadline already past becomes a TTL of 0, which
/// [`Op::Expire`], [`Op::Set`] and [`Op::GetEx`] read as "remove the key
/// now"). Expiry follows that TTL alone. The wall-clock instant itself
/// travels beside it ([`SetTtl::At`], [`GetExTtl::At`], `Op::Expire`'s
/// `unix_ms`; for a relative `EX`/`PX` the receiving node's clock plus the
/// TTL), is kept with the key through every later write that keeps the
/// deadline, renames, copies, snapshots and shard moves, and is answered
/// unchanged by [`Op::ExpireTime`] (Redis's `PEXPIRETIME`): a `PXAT`
/// deadline reads back to the millisecond. The replicas themselves never
/// read a wall clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Read a key (absent or expired: `None`).
    Get {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// Set a key; with `ttl_ms` the entry expires that many logical
    /// milliseconds after the entry's log time. (The most common commands'
    /// bytes are serde bytes: the layout of a `Vec<u8>` in bincode, copied
    /// in one go.)
    Put {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    /// Concatenate onto a key's value (an absent key starts empty); keeps
    /// the key's deadline. [`Outcome::Integer`]: the value's length after
    /// the append, read in the same step (so Redis's `APPEND` answers the
    /// length its own write made, whatever runs concurrently).
    Append { key: Vec<u8>, value: Vec<u8> },
    /// Remove a key.
    Delete { key: Vec<u8> },
    /// Set the key to `value` if its current value is `expected` (`None`:
    /// the key must be absent).
    CompareAndSet {
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    /// Redis's `SET` with its options: set `value` if `condition` holds,
    /// with `ttl` deciding the deadline; with `return_old` the answer
    /// carries the value before (`SET ... GET`, `GETSET`). Answers
    /// [`Outcome::Set`].
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
        condition: SetCondition,
        ttl: SetTtl,
        return_old: bool,
    },
    /// Add `delta` to the decimal 64-bit integer the key holds (absent:
    /// 0); keeps the deadline. Answers [`Outcome::Integer`], or
    /// [`crate::Error::NotAnInteger`] / [`crate::Error::IncrementOverflow`]
    /// with nothing changed.
    Increment { key: Vec<u8>, delta: i64 },
    /// Add `delta` to the decimal number the key holds (absent: 0); keeps
    /// the deadline. The result is stored and answered as
    /// [`format_float`] writes it. Answers [`Outcome::Value`], or
    /// [`crate::Error::NotAFloat`] / [`crate::Error::NotFinite`].
    IncrementFloat { key: Vec<u8>, delta: Float },
    /// Remove the key and answer its value ([`Outcome::Value`]).
    GetDel { key: Vec<u8> },
    /// Read the key ([`Outcome::Value`]) and change its deadline.
    GetEx { key: Vec<u8>, ttl: GetExTtl },
    /// Give the key a deadline `ttl_ms` from now (0: the deadline has
    /// passed, remove the key) if `condition` holds, with `unix_ms` the
    /// wall-clock instant named for it (kept, never used to expire).
    /// Answers [`Outcome::Applied`]: false when the key is absent or the
    /// condition does not hold.
    Expire {
        key: Vec<u8>,
        ttl_ms: u64,
        unix_ms: Option<i64>,
        condition: ExpireCondition,
    },
    /// Remove the key's deadline; [`Outcome::Applied`]: whether it had one.
    Persist { key: Vec<u8> },
    /// How long the key has left ([`Outcome::Ttl`]); a read.
    Ttl { key: Vec<u8> },
    /// The length of the key's value ([`Outcome::Integer`], absent: 0); a
    /// read.
    Strlen { key: Vec<u8> },
    /// Bytes `start..=end` of the key's value, Redis's `GETRANGE` (negative
    /// positions count from the end); [`Outcome::Value`] with the bytes
    /// (absent key: empty); a read.
    GetRange { key: Vec<u8>, start: i64, end: i64 },
    /// Overwrite the key's value from `offset` with `value`, padding with
    /// zero bytes (absent key: empty); keeps the deadline. An empty
    /// `value` changes nothing. [`Outcome::Integer`]: the new length.
    SetRange {
        key: Vec<u8>,
        offset: u64,
        value: Vec<u8>,
    },
    /// An operation on the hash at `key` (see [`crate::collections`]).
    Hash { key: Vec<u8>, op: HashOp },
    /// An operation on the set at `key` (see [`crate::collections`]).
    Sets { key: Vec<u8>, op: SetOp },
    /// An operation on the list at `key` (see [`crate::lists`]).
    List { key: Vec<u8>, op: ListOp },
    /// An operation on the sorted set at `key` (see [`crate::zsets`]).
    ZSet { key: Vec<u8>, op: ZSetOp },
    /// The type of the key's value, Redis's `TYPE`: [`Outcome::Value`]
    /// with `string`, `hash`, `set`, `list` or `zset`, `None` if absent.
    /// A read.
    Type { key: Vec<u8> },
    /// Redis's `OBJECT ENCODING`: [`Outcome::Value`] with the name Redis
    /// gives the representation closest to what this store holds (see
    /// [`crate::encoding_name`]), `None` if absent. A read that does not
    /// count as an access for eviction.
    Encoding { key: Vec<u8> },
    /// One step of a scan over one shard's keys (Redis's `SCAN`, `KEYS`,
    /// the REST paged scan); a read. Keys are visited in the order of
    /// [`scan_position`]: the step visits the `count` keys at or after
    /// `position` (more only when keys share a position, which are never
    /// split between steps) and answers those that match `pattern` (a
    /// Redis glob) and `type_name` ([`Outcome::Keys`]). A key present for
    /// the whole scan is answered exactly once, whatever is written
    /// between steps; keys written meanwhile may or may not be. Each step
    /// costs O(keys in the shard).
    ScanShard {
        shard: u64,
        position: u64,
        count: u64,
        pattern: Option<Vec<u8>>,
        type_name: Option<Vec<u8>>,
    },
    /// The number of live keys in one shard ([`Outcome::Integer`]); a read.
    CountShard { shard: u64 },
    /// Remove every key of one shard ([`Outcome::Integer`]: how many).
    FlushShard { shard: u64 },
    /// A key of one shard picked with `seed` (the caller's randomness, so
    /// every replica picks the same one); [`Outcome::Value`] with the key,
    /// `None` if the shard is empty. A read.
    RandomKey { shard: u64, seed: u64 },
    /// Redis's `MSET` (with `only_if_none_exist`, `MSETNX`): every pair
    /// written as a string without a deadline, in order (a key named twice
    /// ends with its last value), in one step. Every key must be in the
    /// shard of the first: the servers refuse others with
    /// [`crate::Error::CrossShard`] before anything changes.
    /// [`Outcome::Applied`]: false when `only_if_none_exist` and some key
    /// held a value of any type (then nothing was written).
    MultiSet {
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        only_if_none_exist: bool,
    },
    /// Redis's `RENAME` (with `only_if_new`, `RENAMENX`): the source's
    /// value, of any type, and its deadline move to the destination in one
    /// step (what the destination held is replaced). Both keys in one
    /// shard. [`crate::Error::NoSuchKey`] if the source is absent;
    /// [`Outcome::Applied`]: false when `only_if_new` and the destination
    /// exists (a rename onto itself: true without `only_if_new`, false
    /// with it, as Redis 7 answers).
    Rename {
        source: Vec<u8>,
        destination: Vec<u8>,
        only_if_new: bool,
    },
    /// Redis's `COPY`: the source's value, of any type, and its deadline
    /// copied to the destination in one step; an existing destination is
    /// replaced only with `replace`. Both keys in one shard.
    /// [`Outcome::Applied`]: whether it copied (false: the source is
    /// absent, the destination exists without `replace`, or both are the
    /// same key).
    Copy {
        source: Vec<u8>,
        destination: Vec<u8>,
        replace: bool,
    },
    /// When the key expires ([`Outcome::ExpireTime`]); a read.
    ExpireTime { key: Vec<u8> },
    /// Redis's `LCS` of the strings at `first` and `second` (absent:
    /// empty; another type: [`crate::Error::WrongType`]), answered as
    /// `answer` says (see [`crate::lcs`]); a read. Both keys in one shard.
    Lcs {
        first: Vec<u8>,
        second: Vec<u8>,
        answer: LcsAnswer,
    },
    /// Redis's `MEMORY USAGE`: [`Outcome::Integer`] with the bytes the
    /// store accounts to the key and its value (what its capacity and
    /// eviction count, [`cache::store::entry_weight_bytes`]), [`Outcome::Value`]
    /// `None` if absent. A read that does not count as an access for
    /// eviction.
    MemoryUsage { key: Vec<u8> },
    /// A Get that also answers the key's remaining time to live, both as of
    /// one instant: [`Outcome::ValueWithTtl`]. For a node that remembers a
    /// client cached the value (the near cache's tracked reads): it tells
    /// the key when the TTL runs out, without a second read.
    GetWithTtl { key: Vec<u8> },
}

/// What an [`Op`] is routed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// The shard that owns this key.
    Key(&'a [u8]),
    /// This shard (the whole-shard operations).
    Shard(u64),
}

/// The most keys one [`Op::ScanShard`] step may visit.
pub const SCAN_COUNT_MAX: u64 = 100_000;

/// The end of a shard's scan positions: an [`Outcome::Keys`] whose
/// `next_position` is this has visited the whole shard.
pub const SCAN_POSITION_END: u64 = 1 << SCAN_POSITION_BITS;

/// Scan positions are key hashes of this many bits, so a position and a
/// shard index fit in one 64-bit cursor (Redis's `SCAN` cursor).
pub const SCAN_POSITION_BITS: u32 = 48;

/// A key's place in a shard scan: the top [`SCAN_POSITION_BITS`] bits of
/// its FNV-1a 64-bit hash passed through MurmurHash3's 64-bit finalizer
/// (FNV alone leaves short keys that differ in their last byte close
/// together in the high bits, which would make [`Op::RandomKey`] unfair).
/// Fixed (no seed, no platform dependence), so a cursor handed out by one
/// replica means the same on every other.
pub fn scan_position(key: &[u8]) -> u64 {
    const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = key.iter().fold(FNV_OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    });
    let mut mixed = hash;
    mixed ^= mixed >> 33;
    mixed = mixed.wrapping_mul(0xff51_afd7_ed55_8ccd);
    mixed ^= mixed >> 33;
    mixed = mixed.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    mixed ^= mixed >> 33;
    mixed >> (64 - SCAN_POSITION_BITS)
}

/// When [`Op::Set`] writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetCondition {
    /// Whatever the key holds.
    #[default]
    Always,
    /// Only if the key is absent (Redis `NX`).
    IfAbsent,
    /// Only if the key is present (Redis `XX`).
    IfPresent,
}

/// What [`Op::Set`] does to the deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetTtl {
    /// No deadline (Redis's default for `SET`).
    #[default]
    Clear,
    /// Keep the key's current deadline (`KEEPTTL`).
    Keep,
    /// Expire `ms` after the write (0: the deadline has already passed, so
    /// the key ends absent).
    Ms(u64),
    /// Expire `ttl_ms` after the write (0 as in [`SetTtl::Ms`]), the
    /// wall-clock instant `unix_ms` (Unix ms) being what the client named
    /// (`EXAT`/`PXAT`) or its node's clock plus the TTL (`EX`/`PX`).
    At { ttl_ms: u64, unix_ms: i64 },
}

/// What [`Op::GetEx`] does to the deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GetExTtl {
    /// Nothing (a plain read).
    #[default]
    Unchanged,
    /// Remove it (`PERSIST`).
    Persist,
    /// Expire `ms` from now (0: remove the key after reading it).
    Ms(u64),
    /// [`GetExTtl::Ms`] with the wall-clock instant named for it, as in
    /// [`SetTtl::At`].
    At { ttl_ms: u64, unix_ms: i64 },
}

/// [`Op::Expire`]'s conditions, Redis's `NX`, `XX`, `GT`, `LT`. A key
/// without a deadline counts as an infinite TTL for `GT` and `LT`. All
/// that are set must hold (Redis refuses `NX` with another, and `GT` with
/// `LT`, before building the operation; here such a set simply never
/// holds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireCondition {
    /// Only if the key has no deadline (`NX`).
    pub if_no_ttl: bool,
    /// Only if the key has a deadline (`XX`).
    pub if_has_ttl: bool,
    /// Only if the new deadline is later (`GT`).
    pub if_greater: bool,
    /// Only if the new deadline is sooner (`LT`).
    pub if_less: bool,
}

/// A float carried by an operation, compared by its bits so that [`Op`]
/// stays `Eq` (a NaN equals itself; the operations refuse it anyway).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Float(pub f64);

impl PartialEq for Float {
    fn eq(&self, other: &Float) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Float {}

/// How long a key has left ([`Outcome::Ttl`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyTtl {
    /// The key is absent.
    Missing,
    /// The key has no deadline.
    Persistent,
    /// Milliseconds of log time until it expires (at least 1).
    RemainingMs(u64),
}

/// When a key expires ([`Outcome::ExpireTime`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyExpireTime {
    /// The key is absent.
    Missing,
    /// The key has no deadline.
    Persistent,
    /// The wall-clock instant (Unix ms) named when the deadline was set.
    UnixMs(i64),
    /// A deadline set without a wall-clock instant (a relative TTL through
    /// gRPC or REST): the milliseconds of log time it has left (at least
    /// 1), for the caller to add to its own clock.
    RemainingMs(u64),
}

/// The text [`Op::IncrementFloat`] stores: the shortest decimal that reads
/// back as the same `f64`, never in exponent form, without a trailing
/// `.0`, and `0` for negative zero (Redis's "human" float format, which
/// `INCRBYFLOAT` writes). Deterministic on every platform.
pub fn format_float(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    format!("{value}")
}

impl Op {
    /// What the operation is routed by: its key, or for the whole-shard
    /// operations their shard.
    pub fn target(&self) -> Target<'_> {
        match self {
            Op::ScanShard { shard, .. }
            | Op::CountShard { shard }
            | Op::FlushShard { shard }
            | Op::RandomKey { shard, .. } => Target::Shard(*shard),
            keyed => Target::Key(keyed.key()),
        }
    }

    /// Every key the operation acts on, in order: one for most; a
    /// [`Op::MultiSet`]'s keys; a rename's or copy's source, then
    /// destination; a set operation's key, then its
    /// [`SetOp::other_keys`]; none for the whole-shard operations.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let pairs: &[(Vec<u8>, Vec<u8>)] = match self {
            Op::MultiSet { pairs, .. } => pairs,
            _ => &[],
        };
        let others: &[Vec<u8>] = match self {
            Op::Sets { op, .. } => op.other_keys(),
            Op::ZSet { op, .. } => op.other_keys(),
            Op::List { op, .. } => op.other_keys(),
            _ => &[],
        };
        let named: [Option<&[u8]>; 2] = match self {
            Op::MultiSet { .. } => [None, None],
            Op::Rename {
                source,
                destination,
                ..
            }
            | Op::Copy {
                source,
                destination,
                ..
            } => [Some(source), Some(destination)],
            Op::Lcs { first, second, .. } => [Some(first), Some(second)],
            Op::List {
                key,
                op: ListOp::Move { destination, .. },
            } => [Some(key), Some(destination)],
            other => match other.target() {
                Target::Key(key) => [Some(key), None],
                Target::Shard(_) => [None, None],
            },
        };
        pairs
            .iter()
            .map(|(key, _)| key.as_slice())
            .chain(named.into_iter().flatten())
            .chain(others.iter().map(Vec::as_slice))
    }

    /// Whether the operation names more than one key (and so must find
    /// them all in one shard).
    pub fn is_multi_key(&self) -> bool {
        matches!(
            self,
            Op::MultiSet { .. }
                | Op::Rename { .. }
                | Op::Copy { .. }
                | Op::Lcs { .. }
                | Op::List {
                    op: ListOp::Move { .. } | ListOp::MultiPop { .. },
                    ..
                }
        ) || matches!(self, Op::Sets { op, .. } if op.is_multi_key())
            || matches!(self, Op::ZSet { op, .. } if op.is_multi_key())
    }

    /// The key the operation acts on (a multi-key operation's first key);
    /// empty for the whole-shard operations (route by [`Op::target`]).
    pub fn key(&self) -> &[u8] {
        match self {
            Op::MultiSet { pairs, .. } => pairs.first().map_or(&[], |(key, _)| key.as_slice()),
            Op::Rename { source, .. } | Op::Copy { source, .. } => source,
            Op::Lcs { first, .. } => first,
            Op::ScanShard { .. }
            | Op::CountShard { .. }
            | Op::FlushShard { .. }
            | Op::RandomKey { .. } => &[],
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Append { key, .. }
            | Op::Delete { key }
            | Op::CompareAndSet { key, .. }
            | Op::Set { key, .. }
            | Op::Increment { key, .. }
            | Op::IncrementFloat { key, .. }
            | Op::GetDel { key }
            | Op::GetEx { key, .. }
            | Op::Expire { key, .. }
            | Op::Persist { key }
            | Op::Ttl { key }
            | Op::ExpireTime { key }
            | Op::Strlen { key }
            | Op::GetRange { key, .. }
            | Op::SetRange { key, .. }
            | Op::Hash { key, .. }
            | Op::Sets { key, .. }
            | Op::List { key, .. }
            | Op::ZSet { key, .. }
            | Op::Type { key }
            | Op::Encoding { key }
            | Op::MemoryUsage { key }
            | Op::GetWithTtl { key } => key,
        }
    }

    /// Reads change nothing, so they are never recorded for exactly-once
    /// and may be served without a log entry ([`crate::read`]).
    pub fn is_read(&self) -> bool {
        match self {
            Op::Hash { op, .. } => return op.is_read(),
            Op::Sets { op, .. } => return op.is_read(),
            Op::List { op, .. } => return op.is_read(),
            Op::ZSet { op, .. } => return op.is_read(),
            Op::Type { .. } | Op::Encoding { .. } | Op::MemoryUsage { .. } => return true,
            _ => {}
        }
        matches!(
            self,
            Op::Get { .. }
                | Op::GetWithTtl { .. }
                | Op::Ttl { .. }
                | Op::ExpireTime { .. }
                | Op::Lcs { .. }
                | Op::Strlen { .. }
                | Op::GetRange { .. }
                | Op::GetEx {
                    ttl: GetExTtl::Unchanged,
                    ..
                }
                | Op::ScanShard { .. }
                | Op::CountShard { .. }
                | Op::RandomKey { .. }
        )
    }

    /// The largest value this operation carries or (for `SetRange`)
    /// demands, in bytes.
    pub fn value_size_bytes(&self) -> usize {
        match self {
            Op::Get { .. }
            | Op::GetWithTtl { .. }
            | Op::Delete { .. }
            | Op::Increment { .. }
            | Op::IncrementFloat { .. }
            | Op::GetDel { .. }
            | Op::GetEx { .. }
            | Op::Expire { .. }
            | Op::Persist { .. }
            | Op::Ttl { .. }
            | Op::ExpireTime { .. }
            | Op::Strlen { .. }
            | Op::GetRange { .. }
            | Op::ScanShard { .. }
            | Op::CountShard { .. }
            | Op::FlushShard { .. }
            | Op::RandomKey { .. }
            | Op::Rename { .. }
            | Op::Copy { .. }
            | Op::Lcs { .. } => 0,
            // Each value is checked alone, as a SET of it would be.
            Op::MultiSet { pairs, .. } => pairs
                .iter()
                .map(|(_, value)| value.len())
                .max()
                .unwrap_or(0),
            Op::Put { value, .. } | Op::Append { value, .. } | Op::Set { value, .. } => value.len(),
            Op::CompareAndSet {
                expected, value, ..
            } => value.len().max(expected.as_ref().map_or(0, Vec::len)),
            // The value the write needs: the bytes up to the range's end.
            Op::SetRange { offset, value, .. } if !value.is_empty() => usize::try_from(*offset)
                .unwrap_or(usize::MAX)
                .saturating_add(value.len()),
            Op::SetRange { .. } => 0,
            // Everything a collection operation carries, in total.
            Op::Hash { op, .. } => op.carried_bytes(),
            Op::Sets { op, .. } => op.carried_bytes(),
            Op::List { op, .. } => op.carried_bytes(),
            Op::ZSet { op, .. } => op.carried_bytes(),
            Op::Type { .. } | Op::Encoding { .. } | Op::MemoryUsage { .. } => 0,
        }
    }

    /// The operation's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get { .. } => "Get",
            Op::Put { .. } => "Put",
            Op::Append { .. } => "Append",
            Op::Delete { .. } => "Delete",
            Op::CompareAndSet { .. } => "CompareAndSet",
            Op::Set { .. } => "Set",
            Op::Increment { .. } => "Increment",
            Op::IncrementFloat { .. } => "IncrementFloat",
            Op::GetDel { .. } => "GetDel",
            Op::GetEx { .. } => "GetEx",
            Op::Expire { .. } => "Expire",
            Op::Persist { .. } => "Persist",
            Op::Ttl { .. } => "Ttl",
            Op::ExpireTime { .. } => "ExpireTime",
            Op::Strlen { .. } => "Strlen",
            Op::GetRange { .. } => "GetRange",
            Op::SetRange { .. } => "SetRange",
            Op::Hash { .. } => "Hash",
            Op::Sets { .. } => "Sets",
            Op::List { .. } => "List",
            Op::ZSet { .. } => "ZSet",
            Op::Type { .. } => "Type",
            Op::Encoding { .. } => "Encoding",
            Op::MemoryUsage { .. } => "MemoryUsage",
            Op::ScanShard { .. } => "ScanShard",
            Op::CountShard { .. } => "CountShard",
            Op::FlushShard { .. } => "FlushShard",
            Op::RandomKey { .. } => "RandomKey",
            Op::MultiSet { .. } => "MultiSet",
            Op::Rename { .. } => "Rename",
            Op::Copy { .. } => "Copy",
            Op::Lcs { .. } => "Lcs",
            Op::GetWithTtl { .. } => "GetWithTtl",
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The answer to a Get (and GetDel, GetEx, GetRange, IncrementFloat).
    Value(Option<Vec<u8>>),
    /// A Put or Append took effect.
    Done,
    /// A Delete took effect; whether the key was there.
    Deleted(bool),
    /// A compare-and-set ran; whether it swapped.
    Swapped(bool),
    /// A [`Op::Set`] ran: whether it wrote (its condition held), and the
    /// value before it when `return_old` was asked (else `None`).
    Set {
        applied: bool,
        previous: Option<Vec<u8>>,
    },
    /// A number: Increment's result, Strlen's, Append's and SetRange's
    /// length.
    Integer(i64),
    /// Expire or Persist ran; whether it changed the deadline.
    Applied(bool),
    /// The answer to a Ttl.
    Ttl(KeyTtl),
    /// The answer to an [`Op::ExpireTime`].
    ExpireTime(KeyExpireTime),
    /// A list of values (nil where absent): `HMGET`, `HGETALL`,
    /// `SMEMBERS`, ...
    Values(Vec<Option<Vec<u8>>>),
    /// A list of numbers: `SMISMEMBER`.
    Integers(Vec<i64>),
    /// Sorted-set members with their scores, in answer order: ranges,
    /// pops, random members.
    Scored(Vec<(Vec<u8>, Float)>),
    /// One step of `ZSCAN`: members with their scores, and where the next
    /// step starts ([`SCAN_POSITION_END`]: done).
    ScoredPage {
        members: Vec<(Vec<u8>, Float)>,
        next_position: u64,
    },
    /// Scores (nil where absent): `ZSCORE`, `ZMSCORE`, `ZINCRBY`, `ZADD
    /// ... INCR` (nil: a condition stopped it).
    Scores(Vec<Option<Float>>),
    /// One step of a [`Op::ScanShard`]: the matching keys it visited, in
    /// scan order, and where the next step starts ([`SCAN_POSITION_END`]:
    /// the shard is done).
    Keys {
        keys: Vec<Vec<u8>>,
        next_position: u64,
    },
    /// An [`Op::Lcs`] with [`LcsAnswer::Matches`]: the matching runs, last
    /// first, and the subsequence's length.
    LcsMatches { matches: Vec<LcsMatch>, length: u64 },
    /// A [`crate::ListOp::MultiPop`]: the key popped from and its
    /// elements, in pop order.
    KeyValues { key: Vec<u8>, values: Vec<Vec<u8>> },
    /// A [`crate::ZSetOp::MultiPop`]: the key popped from and its members
    /// with their scores, in pop order.
    KeyScored {
        key: Vec<u8>,
        members: Vec<(Vec<u8>, Float)>,
    },
    /// The answer to a [`Op::GetWithTtl`]: the value (`None`: absent) and
    /// its remaining time to live ([`KeyTtl::Missing`] when absent).
    ValueWithTtl { value: Option<Vec<u8>>, ttl: KeyTtl },
}
