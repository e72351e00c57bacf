//! The typed commands: what a request means, with its options checked.

use bytes::Bytes;

use super::blocking::{BlockTimeout, MultiPop};
use super::collections::{HashCommand, SetCommand};
use super::lists::{ListCommand, ListEnd};
use super::zsets::ZSetCommand;

/// A point in time for an expiry, as sent: relative to now or absolute,
/// already in milliseconds (seconds were multiplied, overflow refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpireTime {
    /// Milliseconds from now, or since the Unix epoch.
    pub milliseconds: i64,
    /// Whether `milliseconds` counts from now.
    pub relative: bool,
}

impl ExpireTime {
    /// The absolute deadline in Unix milliseconds, given the current time;
    /// `None` when it overflows (reply
    /// [`CommandError::InvalidExpireTime`](super::CommandError)).
    pub fn deadline_ms(self, now_ms: i64) -> Option<i64> {
        if self.relative {
            now_ms.checked_add(self.milliseconds)
        } else {
            Some(self.milliseconds)
        }
    }
}

/// What `OBJECT` (or `MEMORY USAGE`) asks of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectQuery {
    /// `OBJECT ENCODING`: the representation's name.
    Encoding,
    /// `OBJECT REFCOUNT`: how many references hold the value.
    RefCount,
    /// `MEMORY USAGE`: the bytes the store accounts to the key and its
    /// value.
    MemoryUsage,
}

/// `SET`'s condition on the key's existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    /// Always set.
    #[default]
    Always,
    /// `NX`: only if the key does not exist.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// What a write does to the key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetExpiry {
    /// Clear any TTL (`SET`'s default).
    #[default]
    Clear,
    /// `KEEPTTL`: keep the current TTL.
    Keep,
    /// `EX`/`PX`/`EXAT`/`PXAT`: expire then.
    At(ExpireTime),
}

/// `GETEX`'s change to the TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GetExExpiry {
    /// No option: leave the TTL alone.
    #[default]
    Unchanged,
    /// `PERSIST`: remove the TTL.
    Persist,
    /// `EX`/`PX`/`EXAT`/`PXAT`.
    At(ExpireTime),
}

/// `EXPIRE`'s options (Redis allows `XX` with `GT` or `LT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpireCondition {
    /// `NX`: only if the key has no TTL.
    pub if_no_ttl: bool,
    /// `XX`: only if the key has a TTL.
    pub if_has_ttl: bool,
    /// `GT`: only if the new TTL is greater (no TTL counts as infinite).
    pub if_greater: bool,
    /// `LT`: only if the new TTL is less (no TTL counts as infinite).
    pub if_less: bool,
}

/// Seconds or milliseconds, for `TTL`-like replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds (`TTL`, `EXPIRETIME`).
    Seconds,
    /// Milliseconds (`PTTL`, `PEXPIRETIME`).
    Milliseconds,
}

/// `CLIENT TRACKING ON`'s options (client-side caching).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackingOptions {
    /// `BCAST`: told of every write to a key under `prefixes` (all keys if
    /// none), whether read or not.
    pub bcast: bool,
    /// `PREFIX p` (BCAST only), without overlaps.
    pub prefixes: Vec<Bytes>,
    /// `OPTIN`: only reads right after `CLIENT CACHING YES` are tracked.
    pub optin: bool,
    /// `OPTOUT`: reads are tracked unless right after `CLIENT CACHING NO`.
    pub optout: bool,
    /// `NOLOOP`: not told of its own writes.
    pub noloop: bool,
}

/// `CLIENT SETINFO`'s attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInfoAttribute {
    /// `LIB-NAME`.
    LibraryName,
    /// `LIB-VER`.
    LibraryVersion,
}

/// `LCS`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LcsOptions {
    /// `LEN`: reply with the length only.
    pub length_only: bool,
    /// `IDX`: reply with the match positions.
    pub indexes: bool,
    /// `MINMATCHLEN n` (negative becomes 0).
    pub min_match_length: i64,
    /// `WITHMATCHLEN`: add each match's length.
    pub with_match_length: bool,
}

/// `SCAN`'s options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanOptions {
    /// `MATCH pattern`.
    pub pattern: Option<Bytes>,
    /// `COUNT n` (at least 1).
    pub count: Option<u64>,
    /// `TYPE name`.
    pub type_name: Option<Bytes>,
}

/// A parsed request. Several Redis commands that mean the same operation
/// share a variant (`SETEX`, `PSETEX` and `GETSET` are [`Command::Set`];
/// `INCR`, `DECR`, `INCRBY`, `DECRBY` are [`Command::IncrBy`]); the
/// [`CommandSpec`](super::CommandSpec) parsed alongside still says which
/// was sent.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // the fields are the commands' arguments, named as Redis names them
pub enum Command {
    // Connection.
    Ping {
        message: Option<Bytes>,
    },
    Echo {
        message: Bytes,
    },
    Hello {
        protocol: Option<u8>,
        auth: Option<(Bytes, Bytes)>,
        client_name: Option<Bytes>,
    },
    Select {
        index: i64,
    },
    Quit,
    Reset,
    /// `ASKING`: a cluster client's redirect step. Every node answers every
    /// slot it owns, so it changes nothing (answered `OK`).
    ClusterNoop,
    /// `READONLY [MAXSTALENESS ms]` (`Some(ms)`, 0 without the option)
    /// and `READWRITE` (`None`): whether this connection's reads may be
    /// served by any replica of the owning group instead of its leader,
    /// and how old their answers may be (see
    /// [`crate::Session::replica_reads`]).
    ReplicaReads(Option<u64>),
    /// `AUTH [username] password` (no username: the default user).
    Auth {
        username: Option<Bytes>,
        password: Bytes,
    },
    AclWhoami,
    ClientSetName {
        name: Bytes,
    },
    ClientGetName,
    ClientId,
    ClientInfo,
    ClientList,
    ClientSetInfo {
        attribute: ClientInfoAttribute,
        value: Bytes,
    },
    /// `CLIENT TRACKING OFF`, or `ON` with its options (`REDIRECT`, if
    /// given, is kept to be refused: see the session).
    ClientTracking {
        on: bool,
        options: TrackingOptions,
        redirect: Option<i64>,
    },
    /// `CLIENT CACHING YES|NO`.
    ClientCaching {
        yes: bool,
    },
    ClientTrackingInfo,
    ClientGetRedir,
    // Strings.
    Get {
        key: Bytes,
    },
    Set {
        key: Bytes,
        value: Bytes,
        condition: SetCondition,
        expiry: SetExpiry,
        get: bool,
    },
    SetNx {
        key: Bytes,
        value: Bytes,
    },
    GetDel {
        key: Bytes,
    },
    GetEx {
        key: Bytes,
        expiry: GetExExpiry,
    },
    MGet {
        keys: Vec<Bytes>,
    },
    MSet {
        pairs: Vec<(Bytes, Bytes)>,
    },
    MSetNx {
        pairs: Vec<(Bytes, Bytes)>,
    },
    Append {
        key: Bytes,
        value: Bytes,
    },
    StrLen {
        key: Bytes,
    },
    GetRange {
        key: Bytes,
        start: i64,
        end: i64,
    },
    SetRange {
        key: Bytes,
        offset: u64,
        value: Bytes,
    },
    IncrBy {
        key: Bytes,
        delta: i64,
    },
    IncrByFloat {
        key: Bytes,
        delta: f64,
    },
    Lcs {
        first: Bytes,
        second: Bytes,
        options: LcsOptions,
    },
    // Hashes and sets (see `collections`).
    Hash {
        key: Bytes,
        op: HashCommand,
    },
    SetType {
        key: Bytes,
        op: SetCommand,
    },
    /// A list command (see `lists`).
    List {
        key: Bytes,
        op: ListCommand,
    },
    /// A sorted-set command (see `zsets`).
    ZSet {
        key: Bytes,
        op: ZSetCommand,
    },
    /// `LMPOP`, `ZMPOP` and the blocking pops (see `blocking`).
    MultiPop(MultiPop),
    /// `BLMOVE`, `BRPOPLPUSH`: `LMOVE` that waits for the source.
    BlockingMove {
        source: Bytes,
        destination: Bytes,
        from: ListEnd,
        to: ListEnd,
        timeout: BlockTimeout,
    },
    /// `OBJECT ENCODING|REFCOUNT key`, `MEMORY USAGE key`.
    Object {
        key: Bytes,
        query: ObjectQuery,
    },
    // Keys and expiry.
    Del {
        keys: Vec<Bytes>,
    },
    Unlink {
        keys: Vec<Bytes>,
    },
    Exists {
        keys: Vec<Bytes>,
    },
    Type {
        key: Bytes,
    },
    Expire {
        key: Bytes,
        time: ExpireTime,
        condition: ExpireCondition,
    },
    Ttl {
        key: Bytes,
        unit: TimeUnit,
        absolute: bool,
    },
    Persist {
        key: Bytes,
    },
    Rename {
        source: Bytes,
        destination: Bytes,
        only_if_new: bool,
    },
    Copy {
        source: Bytes,
        destination: Bytes,
        replace: bool,
    },
    Keys {
        pattern: Bytes,
    },
    Scan {
        cursor: u64,
        options: ScanOptions,
    },
    RandomKey,
    DbSize,
    FlushDb {
        asynchronous: bool,
    },
    FlushAll {
        asynchronous: bool,
    },
    // Server.
    Info {
        sections: Vec<Bytes>,
    },
    Time,
    ConfigGet {
        patterns: Vec<Bytes>,
    },
    ConfigSet {
        pairs: Vec<(Bytes, Bytes)>,
    },
    ConfigResetStat,
    /// `COMMAND` with no subcommand: every command's info.
    CommandAll,
    CommandCount,
    CommandList,
    CommandInfo {
        names: Vec<Bytes>,
    },
    CommandDocs {
        names: Vec<Bytes>,
    },
    CommandGetKeys {
        args: Vec<Bytes>,
    },
    /// `X HELP` of a container command `X` (its full lowercase name).
    Help {
        container: &'static str,
    },
    // Cluster.
    ClusterInfo,
    ClusterSlots,
    ClusterShards,
    ClusterNodes,
    ClusterMyId,
    ClusterKeySlot {
        key: Bytes,
    },
}
