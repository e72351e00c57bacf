//! The `collections` model: Redis's hashes, lists, sets and sorted sets
//! (with a plain string beside them, so that `WRONGTYPE` can be seen) over
//! the few keys of one hash tag, the commands over several keys included
//! (`LMOVE`, `SMOVE`, `SINTERSTORE`..., `ZUNIONSTORE`...), and the random
//! ones (`SPOP`, `SRANDMEMBER`, `HRANDFIELD`, `ZRANDMEMBER`).
//!
//! Written from Redis 7's documented semantics over `BTreeMap`, `Vec` and
//! `BTreeSet`, not from the store: a key holds one [`Value`]; a command on
//! a key of another type is refused ([`Refusal::WrongType`]) and changes
//! nothing; an absent key reads as an empty collection; a collection left
//! empty is removed (`TYPE` then answers none); sorted sets order by score,
//! then member bytes.
//!
//! **Several keys, one tag.** A command over several keys sees them in one
//! step, so the state is the whole map of one tag's keys, and operations
//! are partitioned by tag ([`CollectionsInput::tag`]), as in the
//! [`strings`](super::strings) model. Every key of one operation must
//! share the tag.
//!
//! **Order Redis leaves open.** `SMEMBERS`, `SINTER`/`SUNION`/`SDIFF` and
//! `HGETALL` answer in an order Redis does not specify, so the model
//! accepts any order of the right elements (distcache answers byte order;
//! that is its own promise, not Redis's).
//!
//! **Random commands.** The server draws `SPOP`'s members (and the random
//! reads') from a seed the log carries; the model does not know the seed,
//! so it accepts any answer that is a valid choice (the right count,
//! members of the collection, distinct where Redis says distinct, values
//! and scores that belong to their fields and members) and applies the
//! effect the answer names (`SPOP` removes exactly what it answered). An
//! `SPOP` whose answer is unknown (the client gave up) may have removed
//! any valid choice, so the model's state is a *set* of keyspaces (the
//! trait's recipe for nondeterministic objects): each step maps every
//! member, and an unknown `SPOP` fans out into every choice. A known
//! answer later narrows the set again.
//!
//! Deadlines, the element limit and the size limits are not modelled (the
//! simulation tests stay far from them).
//!
//! ## Files
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the inputs, outputs, values and the [`Model`] implementation |
//! | `semantics.rs` | what each deterministic command answers and leaves |
//! | `choices.rs` | the random commands: which answers are valid, and their effects |
//! | `tests/` | unit tests: the commands type by type, the random ones, the multi-key ones, whole histories |

mod choices;
mod semantics;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::model::Model;

pub use super::strings::hash_tag;

/// The most keyspaces the model tracks at once (see the module docs): an
/// unknown `SPOP` of `k` out of `n` members multiplies them by `n choose
/// k`. A test whose sets are small never comes near.
pub const POSSIBLE_KEYSPACES_MAX: usize = 4096;

/// A sorted-set score: an `f64` that is never NaN, with `-0` read as `0`,
/// ordered and hashed by its value so that a state can be memoized.
#[derive(Clone, Copy, Debug)]
pub struct Score(f64);

impl Score {
    /// # Panics
    ///
    /// If `value` is NaN (Redis refuses NaN scores before they are stored).
    pub fn new(value: f64) -> Score {
        assert!(!value.is_nan(), "collections model: a NaN score");
        Score(if value == 0.0 { 0.0 } else { value })
    }

    pub fn value(self) -> f64 {
        self.0
    }
}

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Hash for Score {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

/// What one key holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    String(String),
    Hash(BTreeMap<String, String>),
    List(Vec<String>),
    Set(BTreeSet<String>),
    /// Member to score; Redis orders the members by score, then by bytes.
    ZSet(BTreeMap<String, Score>),
}

impl Value {
    /// Redis's `TYPE` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// Whether this is a collection with no elements (which Redis never
    /// keeps).
    fn is_empty_collection(&self) -> bool {
        match self {
            Value::String(_) => false,
            Value::Hash(hash) => hash.is_empty(),
            Value::List(list) => list.is_empty(),
            Value::Set(set) => set.is_empty(),
            Value::ZSet(zset) => zset.is_empty(),
        }
    }
}

/// One tag's keys and what they hold.
pub type Keyspace = BTreeMap<String, Value>;

/// Every keyspace the tag may be in (see the module docs), never empty.
pub type CollectionsState = Arc<BTreeSet<Keyspace>>;

/// Which end of a list (`LEFT` is index 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    Left,
    Right,
}

/// A bound of a range by member (`ZRANGEBYLEX`): `-`, `+`, `[member` or
/// `(member`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LexBound {
    Lowest,
    Highest,
    Inclusive(String),
    Exclusive(String),
}

/// How several sets combine (`SINTER`, `SUNION`, `SDIFF` and the sorted
/// sets' `ZINTERSTORE`, `ZUNIONSTORE`, `ZDIFFSTORE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Combine {
    Inter,
    Union,
    Diff,
}

/// How `ZUNIONSTORE`/`ZINTERSTORE` merge one member's weighted scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

/// `ZADD`'s flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ZAddFlags {
    /// `NX`: only add new members.
    pub nx: bool,
    /// `XX`: only update existing members.
    pub xx: bool,
    /// `GT`: update only to a greater score (new members still added).
    pub gt: bool,
    /// `LT`: update only to a lesser score (new members still added).
    pub lt: bool,
    /// `CH`: count changed members, not only added ones.
    pub ch: bool,
    /// `INCR`: add the one entry's score to the member's (answers the new
    /// score, or nil when a flag stopped it).
    pub incr: bool,
}

/// A client request. Each names its answer's kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CollectionsInput {
    /// `SET key value` (a string): [`CollectionsOutput::Done`].
    Set { key: String, value: String },
    /// `GET key`: [`CollectionsOutput::Value`].
    Get { key: String },
    /// `DEL key`: [`CollectionsOutput::Integer`] 0 or 1.
    Del { key: String },
    /// `RENAME source destination`: the value of any type moves
    /// ([`CollectionsOutput::Done`]; [`Refusal::NoSuchKey`] for an absent
    /// source).
    Rename { source: String, destination: String },
    /// `COPY source destination [REPLACE]`: 1 if copied, 0 if the source
    /// is absent, the destination exists without `replace`, or both are
    /// one key.
    Copy {
        source: String,
        destination: String,
        replace: bool,
    },
    /// `TYPE key`: [`CollectionsOutput::Value`], `None` for an absent key.
    Type { key: String },

    /// `HSET key field value [...]`: fields added.
    HSet {
        key: String,
        pairs: Vec<(String, String)>,
    },
    /// `HSETNX key field value`: 1 if set, 0 if the field existed.
    HSetNx {
        key: String,
        field: String,
        value: String,
    },
    /// `HDEL key field [...]`: fields removed.
    HDel { key: String, fields: Vec<String> },
    /// `HINCRBY key field delta`: the new value, or
    /// [`Refusal::NotAnInteger`].
    HIncrBy {
        key: String,
        field: String,
        delta: i64,
    },
    /// `HGET key field`: [`CollectionsOutput::Value`].
    HGet { key: String, field: String },
    /// `HGETALL key`: [`CollectionsOutput::Values`], field, value, ... in
    /// any order of the pairs.
    HGetAll { key: String },
    /// `HLEN key`.
    HLen { key: String },
    /// `HMGET key field [...]`: [`CollectionsOutput::MaybeValues`].
    HMGet { key: String, fields: Vec<String> },
    /// `HEXISTS key field`: 0 or 1.
    HExists { key: String, field: String },
    /// `HSTRLEN key field`: the value's length (0 if absent).
    HStrLen { key: String, field: String },
    /// `HKEYS key` (`values` false) or `HVALS key` (true):
    /// [`CollectionsOutput::Values`] in any order.
    HKeysOrVals { key: String, values: bool },
    /// `HINCRBYFLOAT key field delta` with an integer delta (so the sum's
    /// text is exact): the new value ([`CollectionsOutput::Value`]), or
    /// [`Refusal::NotAFloat`] if the field does not hold a number (the
    /// model's fields only ever hold integers or other text).
    HIncrByFloat {
        key: String,
        field: String,
        delta: i64,
    },
    /// `HRANDFIELD key [count [WITHVALUES]]`: without `count` one field
    /// ([`CollectionsOutput::Value`]); with it [`CollectionsOutput::Values`].
    HRandField {
        key: String,
        count: Option<i64>,
        with_values: bool,
    },

    /// `LPUSH`/`RPUSH` (with `only_existing`, `LPUSHX`/`RPUSHX`): the
    /// length after.
    Push {
        key: String,
        end: End,
        elements: Vec<String>,
        only_existing: bool,
    },
    /// `LPOP`/`RPOP [count]`: without `count`
    /// [`CollectionsOutput::Value`]; with it [`CollectionsOutput::Values`],
    /// or `Value(None)` for an absent key.
    Pop {
        key: String,
        end: End,
        count: Option<u64>,
    },
    /// `LRANGE key start stop`: [`CollectionsOutput::Values`].
    LRange { key: String, start: i64, stop: i64 },
    /// `LLEN key`.
    LLen { key: String },
    /// `LINDEX key index`: [`CollectionsOutput::Value`].
    LIndex { key: String, index: i64 },
    /// `LMOVE source destination from to`: the element moved, nil if the
    /// source is absent.
    LMove {
        source: String,
        destination: String,
        from: End,
        to: End,
    },
    /// `LREM key count element`: elements removed.
    LRem {
        key: String,
        count: i64,
        element: String,
    },
    /// `LTRIM key start stop`: [`CollectionsOutput::Done`].
    LTrim { key: String, start: i64, stop: i64 },
    /// `LSET key index element`: [`CollectionsOutput::Done`], or
    /// [`Refusal::NoSuchKey`] / [`Refusal::IndexOutOfRange`].
    LSet {
        key: String,
        index: i64,
        element: String,
    },
    /// `LPOS key element RANK rank COUNT 0`: the positions of every match
    /// ([`CollectionsOutput::Integers`]), from the head for rank 1, from
    /// the tail (nearest the tail first) for rank -1.
    LPos {
        key: String,
        element: String,
        from_tail: bool,
    },
    /// `LMPOP numkeys key [...] LEFT|RIGHT COUNT count`: up to `count`
    /// elements of the first non-empty list ([`CollectionsOutput::KeyValues`]),
    /// nil if none; a key of another type met before it is
    /// [`Refusal::WrongType`].
    LMPop {
        keys: Vec<String>,
        end: End,
        count: u64,
    },
    /// `LINSERT key BEFORE|AFTER pivot element`: the length after, -1
    /// without the pivot, 0 for an absent key.
    LInsert {
        key: String,
        before: bool,
        pivot: String,
        element: String,
    },

    /// `SADD key member [...]`: members added.
    SAdd { key: String, members: Vec<String> },
    /// `SREM key member [...]`: members removed.
    SRem { key: String, members: Vec<String> },
    /// `SCARD key`.
    SCard { key: String },
    /// `SISMEMBER key member`: 0 or 1.
    SIsMember { key: String, member: String },
    /// `SMEMBERS key`: [`CollectionsOutput::Values`] in any order.
    SMembers { key: String },
    /// `SMISMEMBER key member [...]`: [`CollectionsOutput::Integers`].
    SMIsMember { key: String, members: Vec<String> },
    /// `SPOP key [count]`: without `count` [`CollectionsOutput::Value`];
    /// with it [`CollectionsOutput::Values`] of distinct members.
    SPop { key: String, count: Option<u64> },
    /// `SRANDMEMBER key [count]`: as [`CollectionsInput::HRandField`]
    /// without values.
    SRandMember { key: String, count: Option<i64> },
    /// `SMOVE source destination member`: 1 if moved, else 0.
    SMove {
        source: String,
        destination: String,
        member: String,
    },
    /// `SINTER`/`SUNION`/`SDIFF key [key ...]`: [`CollectionsOutput::Values`]
    /// in any order.
    SCombine { how: Combine, keys: Vec<String> },
    /// `SINTERSTORE`/`SUNIONSTORE`/`SDIFFSTORE destination key [...]`: the
    /// result's size; it replaces whatever `destination` held.
    SStore {
        how: Combine,
        destination: String,
        sources: Vec<String>,
    },
    /// `SINTERCARD numkeys key [...] LIMIT limit` (0: no limit).
    SInterCard { keys: Vec<String>, limit: u64 },

    /// `ZADD key [flags] score member [...]`: [`CollectionsOutput::Integer`],
    /// or with `INCR` [`CollectionsOutput::Scores`] with one score or nil.
    /// `ZINCRBY key delta member` is `ZADD key INCR delta member`.
    ZAdd {
        key: String,
        entries: Vec<(Score, String)>,
        flags: ZAddFlags,
    },
    /// `ZREM key member [...]`: members removed.
    ZRem { key: String, members: Vec<String> },
    /// `ZCARD key`.
    ZCard { key: String },
    /// `ZSCORE key member`: [`CollectionsOutput::Scores`] with one entry.
    ZScore { key: String, member: String },
    /// `ZMSCORE key member [...]`: [`CollectionsOutput::Scores`].
    ZMScore { key: String, members: Vec<String> },
    /// `ZRANK`/`ZREVRANK key member`: [`CollectionsOutput::Integer`], or
    /// `Value(None)` for an absent member.
    ZRank {
        key: String,
        member: String,
        reverse: bool,
    },
    /// `ZRANGE key start stop [REV] WITHSCORES` by rank:
    /// [`CollectionsOutput::Scored`].
    ZRange {
        key: String,
        start: i64,
        stop: i64,
        reverse: bool,
    },
    /// `ZRANGEBYSCORE key min max WITHSCORES` (inclusive), or with
    /// `reverse` `ZREVRANGEBYSCORE key max min`: highest first.
    ZRangeByScore {
        key: String,
        min: Score,
        max: Score,
        reverse: bool,
    },
    /// `ZCOUNT key min max` (inclusive).
    ZCount { key: String, min: Score, max: Score },
    /// `ZPOPMIN`/`ZPOPMAX key [count]` (`highest`): [`CollectionsOutput::Scored`].
    ZPop {
        key: String,
        highest: bool,
        count: Option<u64>,
    },
    /// `ZRANGEBYLEX key min max [LIMIT offset count]` (with `reverse`,
    /// `ZREVRANGEBYLEX key max min ...`): [`CollectionsOutput::Scored`].
    /// Redis defines these only when every member has the same score; the
    /// model orders members by bytes, so a test must keep such a key's
    /// scores equal. `LIMIT`: a negative offset selects nothing, a
    /// negative count everything after the offset.
    ZRangeByLex {
        key: String,
        min: LexBound,
        max: LexBound,
        reverse: bool,
        limit: Option<(i64, i64)>,
    },
    /// `ZLEXCOUNT key min max` (same scores, as above).
    ZLexCount {
        key: String,
        min: LexBound,
        max: LexBound,
    },
    /// `ZREMRANGEBYLEX key min max` (same scores, as above): members
    /// removed.
    ZRemRangeByLex {
        key: String,
        min: LexBound,
        max: LexBound,
    },
    /// `ZMPOP numkeys key [...] MIN|MAX COUNT count`: up to `count`
    /// members of the first non-empty sorted set
    /// ([`CollectionsOutput::KeyScored`]), nil if none; a key of another
    /// type met before it is [`Refusal::WrongType`].
    ZMPop {
        keys: Vec<String>,
        highest: bool,
        count: u64,
    },
    /// `ZREMRANGEBYRANK key start stop`: members removed.
    ZRemRangeByRank { key: String, start: i64, stop: i64 },
    /// `ZREMRANGEBYSCORE key min max` (inclusive): members removed.
    ZRemRangeByScore { key: String, min: Score, max: Score },
    /// `ZRANDMEMBER key [count] WITHSCORES`: [`CollectionsOutput::Scored`]
    /// (without `count`: one member, none for an absent key).
    ZRandMember { key: String, count: Option<i64> },
    /// `ZUNIONSTORE`/`ZINTERSTORE destination numkeys key [...] WEIGHTS ...
    /// AGGREGATE ...`, `ZDIFFSTORE destination numkeys key [...]` (which
    /// takes no weights): the result's size. A source may be a set (every
    /// score 1).
    ZStore {
        how: Combine,
        destination: String,
        sources: Vec<String>,
        weights: Vec<Score>,
        aggregate: Aggregate,
    },
    /// `ZRANGESTORE destination source start stop` (by rank): the members
    /// that `ZRANGE` would answer replace whatever `destination` held; the
    /// count. `source` must be a sorted set (or absent).
    ZRangeStore {
        destination: String,
        source: String,
        start: i64,
        stop: i64,
    },
    /// `ZUNION`/`ZINTER`/`ZDIFF numkeys key [...] [WEIGHTS ...] [AGGREGATE
    /// ...] WITHSCORES`: as [`CollectionsInput::ZStore`] computes it, read
    /// in score order ([`CollectionsOutput::Scored`]).
    ZCombine {
        how: Combine,
        keys: Vec<String>,
        weights: Vec<Score>,
        aggregate: Aggregate,
    },
    /// `ZINTERCARD numkeys key [...] LIMIT limit` (0: no limit); sets count
    /// as sorted sets.
    ZInterCard { keys: Vec<String>, limit: u64 },
}

/// Why a command was refused (it changed nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// `WRONGTYPE Operation against a key holding the wrong kind of value`.
    WrongType,
    /// `HINCRBY` of a field that is not an integer, or a sum out of range.
    NotAnInteger,
    /// `HINCRBYFLOAT` of a field that is not a number.
    NotAFloat,
    /// `LSET` of an absent key.
    NoSuchKey,
    /// `LSET` past the ends.
    IndexOutOfRange,
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CollectionsOutput {
    Done,
    Integer(i64),
    Value(Option<String>),
    Values(Vec<String>),
    /// Members with their scores, in answer order.
    Scored(Vec<(String, Score)>),
    /// Scores, nil where absent (`ZSCORE`, `ZMSCORE`, `ZADD ... INCR`).
    Scores(Vec<Option<Score>>),
    /// Values, nil where absent (`HMGET`).
    MaybeValues(Vec<Option<String>>),
    /// Numbers (`SMISMEMBER`, `LPOS ... COUNT`).
    Integers(Vec<i64>),
    /// The key an `LMPOP` popped from and its elements, in pop order.
    KeyValues(String, Vec<String>),
    /// The key a `ZMPOP` popped from and its members, in pop order.
    KeyScored(String, Vec<(String, Score)>),
    Refused(Refusal),
}

impl CollectionsInput {
    /// Every key the operation names.
    pub fn keys(&self) -> Vec<&str> {
        use CollectionsInput as I;
        match self {
            I::LMove {
                source,
                destination,
                ..
            }
            | I::Rename {
                source,
                destination,
            }
            | I::Copy {
                source,
                destination,
                ..
            }
            | I::SMove {
                source,
                destination,
                ..
            } => vec![source, destination],
            I::SCombine { keys, .. }
            | I::SInterCard { keys, .. }
            | I::LMPop { keys, .. }
            | I::ZMPop { keys, .. }
            | I::ZCombine { keys, .. }
            | I::ZInterCard { keys, .. } => keys.iter().map(String::as_str).collect(),
            I::SStore {
                destination,
                sources,
                ..
            }
            | I::ZStore {
                destination,
                sources,
                ..
            } => std::iter::once(destination.as_str())
                .chain(sources.iter().map(String::as_str))
                .collect(),
            I::ZRangeStore {
                destination,
                source,
                ..
            } => vec![destination, source],
            I::Set { key, .. }
            | I::Get { key }
            | I::Del { key }
            | I::Type { key }
            | I::HSet { key, .. }
            | I::HSetNx { key, .. }
            | I::HDel { key, .. }
            | I::HIncrBy { key, .. }
            | I::HGet { key, .. }
            | I::HGetAll { key }
            | I::HLen { key }
            | I::HMGet { key, .. }
            | I::HExists { key, .. }
            | I::HStrLen { key, .. }
            | I::HKeysOrVals { key, .. }
            | I::HIncrByFloat { key, .. }
            | I::LPos { key, .. }
            | I::SMIsMember { key, .. }
            | I::ZMScore { key, .. }
            | I::HRandField { key, .. }
            | I::Push { key, .. }
            | I::Pop { key, .. }
            | I::LRange { key, .. }
            | I::LLen { key }
            | I::LIndex { key, .. }
            | I::LRem { key, .. }
            | I::LTrim { key, .. }
            | I::LSet { key, .. }
            | I::LInsert { key, .. }
            | I::SAdd { key, .. }
            | I::SRem { key, .. }
            | I::SCard { key }
            | I::SIsMember { key, .. }
            | I::SMembers { key }
            | I::SPop { key, .. }
            | I::SRandMember { key, .. }
            | I::ZAdd { key, .. }
            | I::ZRem { key, .. }
            | I::ZCard { key }
            | I::ZScore { key, .. }
            | I::ZRank { key, .. }
            | I::ZRange { key, .. }
            | I::ZRangeByScore { key, .. }
            | I::ZCount { key, .. }
            | I::ZPop { key, .. }
            | I::ZRemRangeByRank { key, .. }
            | I::ZRangeByLex { key, .. }
            | I::ZLexCount { key, .. }
            | I::ZRemRangeByLex { key, .. }
            | I::ZRemRangeByScore { key, .. }
            | I::ZRandMember { key, .. } => vec![key],
        }
    }

    /// The hash tag of the first key; every key of one operation must
    /// share it.
    pub fn tag(&self) -> String {
        let key = self.keys().first().copied().unwrap_or_default();
        hash_tag(key).to_owned()
    }

    /// Whether the command only reads (its answer may be random, but it
    /// changes nothing).
    pub fn is_read(&self) -> bool {
        use CollectionsInput as I;
        matches!(
            self,
            I::Get { .. }
                | I::Type { .. }
                | I::HGet { .. }
                | I::HGetAll { .. }
                | I::HLen { .. }
                | I::HRandField { .. }
                | I::LRange { .. }
                | I::LLen { .. }
                | I::LIndex { .. }
                | I::SCard { .. }
                | I::SIsMember { .. }
                | I::SMembers { .. }
                | I::SRandMember { .. }
                | I::SCombine { .. }
                | I::SInterCard { .. }
                | I::ZCard { .. }
                | I::ZScore { .. }
                | I::ZRank { .. }
                | I::ZRange { .. }
                | I::ZRangeByScore { .. }
                | I::ZCount { .. }
                | I::ZRandMember { .. }
                | I::HMGet { .. }
                | I::HExists { .. }
                | I::HStrLen { .. }
                | I::HKeysOrVals { .. }
                | I::LPos { .. }
                | I::SMIsMember { .. }
                | I::ZMScore { .. }
                | I::ZCombine { .. }
                | I::ZInterCard { .. }
                | I::ZRangeByLex { .. }
                | I::ZLexCount { .. }
        )
    }

    /// Whether Redis lets the server choose the answer (see the module
    /// docs): such commands are judged by [`choices`].
    fn is_random(&self) -> bool {
        matches!(
            self,
            CollectionsInput::SPop { .. }
                | CollectionsInput::SRandMember { .. }
                | CollectionsInput::HRandField { .. }
                | CollectionsInput::ZRandMember { .. }
        )
    }
}

/// Redis's collections over one tag's keys. See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct CollectionsModel;

impl CollectionsModel {
    /// The keyspaces `input` may leave from `keyspace` when its answer was
    /// `output` (`None`: unknown); empty when `output` is impossible.
    fn successors(
        keyspace: &Keyspace,
        input: &CollectionsInput,
        output: Option<&CollectionsOutput>,
    ) -> Vec<Keyspace> {
        if input.is_random() {
            return match output {
                Some(output) => choices::accept(keyspace, input, output)
                    .into_iter()
                    .collect(),
                None => choices::every_effect(keyspace, input),
            };
        }
        let (expected, next) = semantics::apply(keyspace, input);
        match output {
            None => vec![next],
            Some(output) if semantics::same_answer(input, output, &expected) => vec![next],
            Some(_) => Vec::new(),
        }
    }
}

impl Model for CollectionsModel {
    type State = CollectionsState;
    type Input = CollectionsInput;
    type Output = CollectionsOutput;

    fn initial_state(&self) -> CollectionsState {
        Arc::new(BTreeSet::from([Keyspace::new()]))
    }

    /// # Panics
    ///
    /// If an unknown `SPOP` would make the possible keyspaces more than
    /// [`POSSIBLE_KEYSPACES_MAX`]: the test's sets are too large for this
    /// model.
    fn step(
        &self,
        state: &CollectionsState,
        input: &CollectionsInput,
        output: Option<&CollectionsOutput>,
    ) -> Option<CollectionsState> {
        let mut next = BTreeSet::new();
        for keyspace in state.iter() {
            next.extend(CollectionsModel::successors(keyspace, input, output));
            assert!(
                next.len() <= POSSIBLE_KEYSPACES_MAX,
                "collections model: {input:?} of unknown outcome leaves more than \
                 {POSSIBLE_KEYSPACES_MAX} possible keyspaces; keep the test's sets smaller"
            );
        }
        if next.is_empty() {
            return None;
        }
        if next == **state {
            return Some(state.clone());
        }
        Some(Arc::new(next))
    }

    fn partition(&self, input: &CollectionsInput) -> String {
        input.tag()
    }

    fn is_read_only(&self, input: &CollectionsInput) -> bool {
        input.is_read()
    }

    fn state_heap_bytes(&self, state: &CollectionsState) -> usize {
        let value_bytes = |value: &Value| match value {
            Value::String(text) => text.len(),
            Value::Hash(hash) => hash.iter().map(|(f, v)| f.len() + v.len() + 64).sum(),
            Value::List(list) => list.iter().map(|e| e.len() + 24).sum(),
            Value::Set(set) => set.iter().map(|m| m.len() + 40).sum(),
            Value::ZSet(zset) => zset.keys().map(|m| m.len() + 48).sum(),
        };
        state
            .iter()
            .map(|keyspace| {
                keyspace
                    .iter()
                    .map(|(key, value)| key.len() + 64 + value_bytes(value))
                    .sum::<usize>()
                    + 48
            })
            .sum()
    }

    fn describe_operation(
        &self,
        input: &CollectionsInput,
        output: Option<&CollectionsOutput>,
    ) -> String {
        match output {
            None => format!("{input:?} -> ?"),
            Some(output) => format!("{input:?} -> {output:?}"),
        }
    }
}
