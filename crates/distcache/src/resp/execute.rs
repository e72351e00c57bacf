//! Data commands to operations on the owning group.
//!
//! Each single-key command is one replicated operation (`api::Op`), run
//! by the [`Backend`] (the node's [`Forwarder`]): `SET` with all its
//! options, `INCR`/`INCRBYFLOAT`, `GETDEL`, `GETEX`, `SETRANGE`, the
//! `EXPIRE` family and `PERSIST` are applied atomically in one log entry;
//! `TTL`, `STRLEN`, `GETRANGE` are reads (no log entry).
//!
//! **Wall-clock instants.** Replicas keep TTLs in log time, which is not
//! the wall clock. `EXPIREAT`/`PEXPIREAT`, `SET ... EXAT/PXAT` and
//! `GETEX ... EXAT/PXAT` are turned into a relative TTL here, against this
//! node's wall clock (a deadline already past removes the key, as in
//! Redis); `EXPIRETIME`/`PEXPIRETIME` add the remaining TTL to this node's
//! wall clock. Both are as exact as the nodes' clocks agree.
//!
//! Multi-key writes are in `multikey.rs`: `MSETNX`, `RENAME`,
//! `RENAMENX`, `COPY` are one operation (one log entry) when their keys are
//! in one shard and `-CROSSSLOT` otherwise; `MSET` is one operation per
//! shard its keys fall in. Not atomic, and documented so: `DEL`/`UNLINK`/`EXISTS`/
//! `MGET` across keys (one operation per key, run concurrently, even within
//! a shard). The keyspace commands (`KEYS`,
//! `SCAN`, `DBSIZE`, `FLUSHDB`/`FLUSHALL`, `RANDOMKEY`) fan out across
//! the shards (`crate::keyspace`): each shard's step is one replicated
//! operation, the whole is not atomic across shards.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ::resp::Frame;
use ::resp::command::{
    Command, CommandError, ExpireTime, GetExExpiry, Parsed, SetCondition, SetExpiry, TimeUnit,
};
use bytes::Bytes;
use futures::future::join_all;
use shardkv::{Op, Outcome};

use super::Shared;
use crate::forward::{ForwardError, Forwarder};
use crate::keyspace::{
    self, KEYS_LIMIT, KeyspaceError, SCAN_COUNT_DEFAULT, ScanRequest, ShardRunner,
};

/// Runs operations for the RESP front end.
pub trait Backend: Send + Sync + 'static {
    /// Applies `op` in the group owning its key.
    fn run(&self, op: Op) -> impl Future<Output = Result<Outcome, ForwardError>> + Send;

    /// The `# Distcache` section of `INFO`: groups, leaders, shard map.
    fn describe(&self) -> String;

    /// The number of open connections changed (for metrics).
    fn connections_changed(&self, _open: u64) {}

    /// How many shards the service has (the keyspace commands visit each).
    fn shard_count(&self) -> usize;

    /// The controller's configuration and the known leaders, for cluster
    /// mode (`cluster.rs`); `None`: not known here.
    fn cluster_state(&self) -> Option<super::ClusterState> {
        None
    }

    /// Applies the write `op`, sending it again with the same exactly-once
    /// identity after a timeout until it answers (the blocking pops, whose
    /// element must be delivered exactly once). By default: [`Backend::run`].
    fn run_until_answered(
        &self,
        op: Op,
    ) -> impl Future<Output = Result<Outcome, ForwardError>> + Send {
        self.run(op)
    }

    /// The configuration's number, groups and shards, read afresh, whose
    /// change feeds client-side caching follows (see `crate::tracking`);
    /// `None` if the controller did not answer lately. By default none: only
    /// writes made through this listener are told.
    fn feed_config(&self) -> impl Future<Output = Option<crate::tracking::FeedConfig>> + Send {
        async { Some(crate::tracking::FeedConfig::default()) }
    }

    /// One long poll of group `gid`'s change feed after `after` by
    /// `poller` ([`shardkv::WatchChanges`]), waiting at most `wait`; `None`
    /// if no leader answered. By default: `None` after the wait.
    fn watch_changes(
        &self,
        gid: u64,
        poller: u64,
        after: u64,
        wait: std::time::Duration,
    ) -> impl Future<Output = Option<shardkv::Changes>> + Send {
        let _ = (gid, poller, after);
        async move {
            tokio::time::sleep(wait).await;
            None
        }
    }

    /// Waits until one of `keys` (one shard's) may have been written, at
    /// most `wait` (see [`Forwarder::wait_for_keys`]). By default: a short
    /// sleep, then "look again" (a backend without a wait facility polls).
    fn wait_for_keys(
        &self,
        keys: Vec<Vec<u8>>,
        wait: std::time::Duration,
    ) -> impl Future<Output = crate::forward::KeyWait> + Send {
        let _ = keys;
        async move {
            tokio::time::sleep(wait.min(std::time::Duration::from_millis(10))).await;
            crate::forward::KeyWait::Changed
        }
    }
}

/// A [`Backend`] as the keyspace fan-out's runner.
pub(super) struct Runner<'a, B>(pub(super) &'a B);

impl<B: Backend> ShardRunner for Runner<'_, B> {
    fn run_op(&self, op: Op) -> impl Future<Output = Result<Outcome, ForwardError>> + Send {
        self.0.run(op)
    }

    fn shard_count(&self) -> usize {
        self.0.shard_count()
    }
}

fn keyspace_error(error: &KeyspaceError) -> Frame {
    match error {
        KeyspaceError::Forward(error) => forward_error(error),
        other => Frame::error(&format!("ERR {other}")),
    }
}

impl Backend for Arc<Forwarder> {
    fn run(&self, op: Op) -> impl Future<Output = Result<Outcome, ForwardError>> + Send {
        let read_from = crate::forward::current_read_from();
        crate::metrics::FRONTEND.scope("resp", Forwarder::run_from(self, op, None, read_from))
    }

    fn connections_changed(&self, open: u64) {
        self.metrics().observe_clients("resp", open);
    }

    fn run_until_answered(
        &self,
        op: Op,
    ) -> impl Future<Output = Result<Outcome, ForwardError>> + Send {
        crate::metrics::FRONTEND.scope("resp", Forwarder::run_until_answered(self, op))
    }

    async fn wait_for_keys(
        &self,
        keys: Vec<Vec<u8>>,
        wait: std::time::Duration,
    ) -> crate::forward::KeyWait {
        Forwarder::wait_for_keys(self, &keys, wait).await
    }

    fn shard_count(&self) -> usize {
        self.routing().shard_count()
    }

    async fn feed_config(&self) -> Option<crate::tracking::FeedConfig> {
        if !self
            .refresh_confirmed(crate::tracking::GROUPS_CHECK * 2)
            .await
        {
            return None;
        }
        let routing = self.routing();
        Some(crate::tracking::FeedConfig {
            num: routing.num,
            groups: routing.groups.keys().copied().collect(),
            shards: routing.shards.clone(),
        })
    }

    async fn watch_changes(
        &self,
        gid: u64,
        poller: u64,
        after: u64,
        wait: std::time::Duration,
    ) -> Option<shardkv::Changes> {
        Forwarder::watch_changes(self, gid, poller, after, wait).await
    }

    fn cluster_state(&self) -> Option<super::ClusterState> {
        let (leaders, local_leader) = self.known_leaders();
        Some(super::ClusterState {
            config: self.routing(),
            leaders,
            local_leader,
        })
    }

    fn describe(&self) -> String {
        let routing = self.routing();
        let mut text = format!(
            "config_num:{}\r\ngroups:{}\r\nshards:{}\r\n",
            routing.num,
            routing.groups.len(),
            routing.shards.len()
        );
        for (gid, servers) in &routing.groups {
            let owned = routing.shards.iter().filter(|owner| *owner == gid).count();
            let addresses: Vec<String> = servers.iter().map(ToString::to_string).collect();
            text.push_str(&format!(
                "group{gid}:shards={owned},replicas={}\r\n",
                addresses.join(",")
            ));
        }
        // The keys most requested through this node (its front ends' sketch,
        // as on the dashboard and in /metrics), most first.
        let hot = self.metrics().hot_keys(crate::metrics::HOT_KEYS_EXPORTED);
        text.push_str(&format!("hot_keys:{}\r\n", hot.len()));
        for (rank, (key, requests)) in hot.iter().enumerate() {
            text.push_str(&format!(
                "hot_key{rank}:key={},requests={requests}\r\n",
                info_escape(key)
            ));
        }
        text
    }
}

/// A key as an `INFO` value: printable ASCII as is, except the characters
/// that separate INFO's fields (`,` `=` `:`) and `\`, which are written as
/// `\xHH` like every other byte, so a line always parses back.
fn info_escape(key: &[u8]) -> String {
    let mut text = String::with_capacity(key.len());
    for &byte in key {
        if byte.is_ascii_graphic() && !matches!(byte, b',' | b'=' | b':' | b'\\') {
            text.push(char::from(byte));
        } else {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

/// Counters `INFO stats` and `INFO clients` report.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted since start.
    pub connections_received: AtomicU64,
    /// Connections open now.
    pub connected_clients: AtomicU64,
    /// Connections waiting in a blocking command now (`BLPOP` ... found
    /// nothing and waits for a write), as Redis's `blocked_clients`.
    pub blocked_clients: AtomicU64,
    /// Connections refused at `max_clients`.
    pub rejected_connections: AtomicU64,
    /// Requests answered.
    pub commands_processed: AtomicU64,
    /// Connections closed because the client read none of its replies for
    /// `write_timeout` (Redis's `client_output_buffer_limit_disconnections`).
    pub output_buffer_limit_disconnections: AtomicU64,
}

/// Why a command failed, as a reply.
fn error_frame(error: &CommandError) -> Frame {
    Frame::error(&error.to_string())
}

pub(super) fn forward_error(error: &ForwardError) -> Frame {
    match error {
        ForwardError::Refused(api::Error::WrongType) => {
            Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value")
        }
        ForwardError::Refused(error @ (api::Error::HashNotInteger | api::Error::HashNotFloat)) => {
            Frame::error(&format!("ERR {error}"))
        }
        ForwardError::Refused(api::Error::NotAnInteger) => error_frame(&CommandError::NotAnInteger),
        ForwardError::Refused(api::Error::IncrementOverflow) => {
            error_frame(&CommandError::IncrementOverflow)
        }
        ForwardError::Refused(api::Error::NotAFloat) => error_frame(&CommandError::NotAFloat),
        ForwardError::Refused(api::Error::NotFinite) => error_frame(&CommandError::NotFinite),
        ForwardError::Refused(api::Error::NoSuchKey) => Frame::error("ERR no such key"),
        ForwardError::Refused(api::Error::CrossShard) => Frame::error(super::multikey::CROSSSLOT),
        other => Frame::error(&format!("ERR {other}")),
    }
}

fn unexpected(outcome: &Outcome) -> Frame {
    Frame::error(&format!("ERR unexpected outcome {outcome:?}"))
}

/// A Redis expiry as the replicas take it: the relative TTL in ms of log
/// time (0: already past), measured against this node's wall clock for
/// an absolute one, and the wall-clock instant in Unix ms (the one sent
/// for `EXAT`/`PXAT`/`EXPIREAT`/`PEXPIREAT`, this node's clock plus the
/// TTL for the relative forms). The instant is kept with the key as it
/// is, so `PEXPIRETIME` answers exactly what `PXAT` named.
fn ttl_of(time: ExpireTime, command: &'static str) -> Result<(u64, i64), Frame> {
    let now_ms = crate::clock::unix_ms();
    let deadline_ms = time
        .deadline_ms(now_ms)
        .ok_or_else(|| error_frame(&CommandError::InvalidExpireTime { command }))?;
    let ttl_ms = u64::try_from(deadline_ms.saturating_sub(now_ms)).unwrap_or(0);
    Ok((ttl_ms, deadline_ms))
}

/// Milliseconds as `TTL`/`PTTL`/`EXPIRETIME`/`PEXPIRETIME` answer them:
/// Redis rounds to the nearest second for the seconds forms.
fn in_unit(milliseconds: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Milliseconds => milliseconds,
        TimeUnit::Seconds => milliseconds.saturating_add(500) / 1000,
    }
}

fn not_yet(command: &str) -> Frame {
    Frame::error(&format!(
        "ERR '{command}' is not available yet: distcache has no replicated operation for it"
    ))
}

async fn get<B: Backend>(backend: &B, key: &Bytes) -> Result<Option<Vec<u8>>, Frame> {
    match backend.run(Op::Get { key: key.to_vec() }).await {
        Ok(Outcome::Value(value)) => Ok(value),
        Ok(other) => Err(Frame::error(&format!(
            "ERR unexpected outcome {other:?} for a read"
        ))),
        Err(error) => Err(forward_error(&error)),
    }
}

async fn write<B: Backend>(backend: &B, op: Op) -> Result<Outcome, Frame> {
    backend.run(op).await.map_err(|error| forward_error(&error))
}

/// A value (or nil) answer.
fn value_reply(result: Result<Outcome, Frame>) -> Frame {
    match result {
        Ok(Outcome::Value(value)) => value.map_or(Frame::Null, Frame::bulk),
        Ok(other) => unexpected(&other),
        Err(reply) => reply,
    }
}

/// An integer answer.
fn integer_reply(result: Result<Outcome, Frame>) -> Frame {
    match result {
        Ok(Outcome::Integer(number)) => Frame::Integer(number),
        Ok(other) => unexpected(&other),
        Err(reply) => reply,
    }
}

/// 1 or 0: whether an `EXPIRE`/`PERSIST` changed the deadline.
fn applied_reply(result: Result<Outcome, Frame>) -> Frame {
    match result {
        Ok(Outcome::Applied(applied)) => Frame::Integer(i64::from(applied)),
        Ok(other) => unexpected(&other),
        Err(reply) => reply,
    }
}

/// Runs one parsed data command; `version` is the connection's protocol
/// version when the command was queued (a few replies differ in shape:
/// RESP3's nested pairs of the sorted-set ranges).
pub(super) async fn execute<B: Backend>(
    shared: &Shared<B>,
    parsed: Parsed,
    version: ::resp::Version,
) -> Frame {
    let backend = &shared.backend;
    let name = parsed.spec.name;
    match parsed.command {
        Command::Get { key } => match get(backend, &key).await {
            Ok(value) => value.map_or(Frame::Null, Frame::bulk),
            Err(reply) => reply,
        },
        Command::Set {
            key,
            value,
            condition,
            expiry,
            get: return_old,
        } => {
            let ttl = match expiry {
                SetExpiry::Clear => api::SetTtl::Clear,
                SetExpiry::Keep => api::SetTtl::Keep,
                SetExpiry::At(time) => match ttl_of(time, name) {
                    Ok((ttl_ms, unix_ms)) => api::SetTtl::At { ttl_ms, unix_ms },
                    Err(reply) => return reply,
                },
            };
            if condition == SetCondition::Always && !return_old && ttl == api::SetTtl::Clear {
                // The plain SET: a Put. One with a deadline is an Op::Set,
                // which carries the deadline's wall-clock instant.
                let op = Op::Put {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    ttl_ms: None,
                };
                return match write(backend, op).await {
                    Ok(_) => Frame::ok(),
                    Err(reply) => reply,
                };
            }
            let op = Op::Set {
                key: key.to_vec(),
                value: value.to_vec(),
                condition: match condition {
                    SetCondition::Always => api::SetCondition::Always,
                    SetCondition::IfAbsent => api::SetCondition::IfAbsent,
                    SetCondition::IfPresent => api::SetCondition::IfPresent,
                },
                ttl,
                return_old,
            };
            match write(backend, op).await {
                Ok(Outcome::Set { previous, .. }) if return_old => {
                    previous.map_or(Frame::Null, Frame::bulk)
                }
                Ok(Outcome::Set { applied: true, .. }) => Frame::ok(),
                Ok(Outcome::Set { applied: false, .. }) => Frame::Null,
                Ok(other) => unexpected(&other),
                Err(reply) => reply,
            }
        }
        Command::SetNx { key, value } => {
            let op = Op::Set {
                key: key.to_vec(),
                value: value.to_vec(),
                condition: api::SetCondition::IfAbsent,
                ttl: api::SetTtl::Clear,
                return_old: false,
            };
            match write(backend, op).await {
                Ok(Outcome::Set { applied, .. }) => Frame::Integer(i64::from(applied)),
                Ok(other) => unexpected(&other),
                Err(reply) => reply,
            }
        }
        Command::GetDel { key } => {
            value_reply(write(backend, Op::GetDel { key: key.to_vec() }).await)
        }
        Command::GetEx { key, expiry } => {
            let ttl = match expiry {
                GetExExpiry::Unchanged => api::GetExTtl::Unchanged,
                GetExExpiry::Persist => api::GetExTtl::Persist,
                GetExExpiry::At(time) => match ttl_of(time, "getex") {
                    Ok((ttl_ms, unix_ms)) => api::GetExTtl::At { ttl_ms, unix_ms },
                    Err(reply) => return reply,
                },
            };
            value_reply(
                write(
                    backend,
                    Op::GetEx {
                        key: key.to_vec(),
                        ttl,
                    },
                )
                .await,
            )
        }
        Command::MGet { keys } => {
            let values = join_all(keys.iter().map(|key| get(backend, key))).await;
            Frame::Array(
                values
                    .into_iter()
                    .map(|value| match value {
                        Ok(value) => value.map_or(Frame::Null, Frame::bulk),
                        Err(_) => Frame::Null,
                    })
                    .collect(),
            )
        }
        Command::MSet { pairs } => match super::multikey::mset(backend, &pairs).await {
            Ok(()) => Frame::ok(),
            Err(reply) => reply,
        },
        Command::MSetNx { pairs } => super::multikey::msetnx(backend, &pairs).await,
        Command::Append { key, value } => {
            match write(
                backend,
                Op::Append {
                    key: key.to_vec(),
                    value: value.to_vec(),
                },
            )
            .await
            {
                // The length the append itself made (one step).
                Ok(Outcome::Integer(length)) => Frame::Integer(length),
                // Only the deliberately broken unsafe-ack mode answers
                // before the write runs: read the length afterwards.
                Ok(Outcome::Done) => {
                    integer_reply(write(backend, Op::Strlen { key: key.to_vec() }).await)
                }
                Ok(other) => unexpected(&other),
                Err(reply) => reply,
            }
        }
        Command::StrLen { key } => {
            integer_reply(write(backend, Op::Strlen { key: key.to_vec() }).await)
        }
        Command::GetRange { key, start, end } => {
            let op = Op::GetRange {
                key: key.to_vec(),
                start,
                end,
            };
            match write(backend, op).await {
                Ok(Outcome::Value(value)) => Frame::bulk(value.unwrap_or_default()),
                Ok(other) => unexpected(&other),
                Err(reply) => reply,
            }
        }
        Command::SetRange { key, offset, value } => {
            let max_bytes = shared.config.limits.max_argument_bytes as u64;
            if !value.is_empty() && offset.saturating_add(value.len() as u64) > max_bytes {
                return error_frame(&CommandError::StringTooLong);
            }
            let op = Op::SetRange {
                key: key.to_vec(),
                offset,
                value: value.to_vec(),
            };
            integer_reply(write(backend, op).await)
        }
        Command::IncrBy { key, delta } => {
            let op = Op::Increment {
                key: key.to_vec(),
                delta,
            };
            integer_reply(write(backend, op).await)
        }
        Command::IncrByFloat { key, delta } => {
            let op = Op::IncrementFloat {
                key: key.to_vec(),
                delta: api::Float(delta),
            };
            value_reply(write(backend, op).await)
        }
        Command::Expire {
            key,
            time,
            condition,
        } => {
            let (ttl_ms, unix_ms) = match ttl_of(time, name) {
                Ok(ttl) => ttl,
                Err(reply) => return reply,
            };
            let op = Op::Expire {
                key: key.to_vec(),
                ttl_ms,
                unix_ms: Some(unix_ms),
                condition: api::ExpireCondition {
                    if_no_ttl: condition.if_no_ttl,
                    if_has_ttl: condition.if_has_ttl,
                    if_greater: condition.if_greater,
                    if_less: condition.if_less,
                },
            };
            applied_reply(write(backend, op).await)
        }
        Command::Persist { key } => {
            applied_reply(write(backend, Op::Persist { key: key.to_vec() }).await)
        }
        Command::Ttl {
            key,
            unit,
            absolute: false,
        } => match write(backend, Op::Ttl { key: key.to_vec() }).await {
            Ok(Outcome::Ttl(api::KeyTtl::Missing)) => Frame::Integer(-2),
            Ok(Outcome::Ttl(api::KeyTtl::Persistent)) => Frame::Integer(-1),
            Ok(Outcome::Ttl(api::KeyTtl::RemainingMs(remaining_ms))) => {
                let remaining_ms = i64::try_from(remaining_ms).unwrap_or(i64::MAX);
                Frame::Integer(in_unit(remaining_ms, unit))
            }
            Ok(other) => unexpected(&other),
            Err(reply) => reply,
        },
        Command::Ttl {
            key,
            unit,
            absolute: true,
        } => match write(backend, Op::ExpireTime { key: key.to_vec() }).await {
            Ok(Outcome::ExpireTime(api::KeyExpireTime::Missing)) => Frame::Integer(-2),
            Ok(Outcome::ExpireTime(api::KeyExpireTime::Persistent)) => Frame::Integer(-1),
            // The instant named when the deadline was set, exactly.
            Ok(Outcome::ExpireTime(api::KeyExpireTime::UnixMs(unix_ms))) => {
                Frame::Integer(in_unit(unix_ms, unit))
            }
            // A deadline set through gRPC or REST (relative, no instant):
            // this node's clock plus what is left.
            Ok(Outcome::ExpireTime(api::KeyExpireTime::RemainingMs(remaining_ms))) => {
                let remaining_ms = i64::try_from(remaining_ms).unwrap_or(i64::MAX);
                Frame::Integer(in_unit(
                    crate::clock::unix_ms().saturating_add(remaining_ms),
                    unit,
                ))
            }
            Ok(other) => unexpected(&other),
            Err(reply) => reply,
        },
        Command::Time => {
            let micros = crate::clock::unix_micros();
            Frame::Array(vec![
                Frame::bulk((micros / 1_000_000).to_string()),
                Frame::bulk((micros % 1_000_000).to_string()),
            ])
        }
        Command::Del { keys } | Command::Unlink { keys } => {
            let deletes = keys
                .iter()
                .map(|key| write(backend, Op::Delete { key: key.to_vec() }));
            let mut removed = 0;
            for result in join_all(deletes).await {
                match result {
                    Ok(Outcome::Deleted(true)) => removed += 1,
                    Ok(_) => {}
                    Err(reply) => return reply,
                }
            }
            Frame::Integer(removed)
        }
        Command::Exists { keys } => {
            let mut present = 0;
            for result in join_all(
                keys.iter()
                    .map(|key| super::collections::exists(backend, key)),
            )
            .await
            {
                match result {
                    Ok(true) => present += 1,
                    Ok(false) => {}
                    Err(reply) => return reply,
                }
            }
            Frame::Integer(present)
        }
        Command::Type { key } => super::collections::type_of(backend, key).await,
        Command::Hash { key, op } => super::collections::hash(backend, key, op, version).await,
        Command::SetType { key, op } => super::collections::set(backend, key, op).await,
        Command::List { key, op } => super::lists::list(backend, key, op).await,
        Command::ZSet { key, op } => super::zsets::zset(backend, key, op, version).await,
        Command::MultiPop(command) => {
            super::blocking::multi_pop(backend, command, &shared.stats.blocked_clients).await
        }
        Command::BlockingMove {
            source,
            destination,
            from,
            to,
            timeout,
        } => {
            let blocked = &shared.stats.blocked_clients;
            super::blocking::blocking_move(backend, source, destination, from, to, timeout, blocked)
                .await
        }
        Command::Object { key, query } => super::blocking::object(backend, key, query).await,
        Command::Rename {
            source,
            destination,
            only_if_new,
        } => super::multikey::rename(backend, &source, &destination, only_if_new).await,
        Command::Copy {
            source,
            destination,
            replace,
        } => super::multikey::copy(backend, &source, &destination, replace).await,
        Command::Lcs {
            first,
            second,
            options,
        } => super::multikey::lcs(backend, &first, &second, options).await,
        Command::Keys { pattern } => {
            match keyspace::keys(&Runner(backend), &pattern, KEYS_LIMIT).await {
                Ok(keys) => Frame::Array(keys.into_iter().map(Frame::bulk).collect()),
                Err(error) => keyspace_error(&error),
            }
        }
        Command::Scan { cursor, options } => {
            let request = ScanRequest {
                cursor,
                count: options.count.unwrap_or(SCAN_COUNT_DEFAULT),
                pattern: options.pattern.map(|pattern| pattern.to_vec()),
                type_name: options.type_name.map(|name| name.to_vec()),
            };
            match keyspace::scan(&Runner(backend), &request).await {
                Ok(page) => Frame::Array(vec![
                    Frame::bulk(page.next_cursor.to_string()),
                    Frame::Array(page.keys.into_iter().map(Frame::bulk).collect()),
                ]),
                Err(error) => keyspace_error(&error),
            }
        }
        Command::DbSize => match keyspace::count(&Runner(backend)).await {
            Ok(count) => Frame::Integer(i64::try_from(count).unwrap_or(i64::MAX)),
            Err(error) => keyspace_error(&error),
        },
        // Both run synchronously: ASYNC answers once the shards are empty.
        Command::FlushDb { .. } | Command::FlushAll { .. } => {
            match keyspace::flush(&Runner(backend)).await {
                Ok(_) => Frame::ok(),
                Err(error) => keyspace_error(&error),
            }
        }
        Command::RandomKey => {
            match keyspace::random_key(&Runner(backend), labrpc::runtime::random_u64).await {
                Ok(key) => key.map_or(Frame::Null, Frame::bulk),
                Err(error) => keyspace_error(&error),
            }
        }
        Command::Info { sections } => info(shared, &sections),
        Command::ConfigResetStat => {
            shared.stats.commands_processed.store(0, Ordering::Relaxed);
            shared
                .stats
                .connections_received
                .store(0, Ordering::Relaxed);
            shared
                .stats
                .rejected_connections
                .store(0, Ordering::Relaxed);
            Frame::ok()
        }
        Command::ClusterInfo
        | Command::ClusterSlots
        | Command::ClusterShards
        | Command::ClusterNodes
        | Command::ClusterMyId => {
            let (Some(map), Some(state)) = (&shared.config.cluster, backend.cluster_state()) else {
                return Frame::error("ERR This instance has cluster support disabled");
            };
            match parsed.command {
                Command::ClusterInfo => super::cluster::info_reply(&state, map),
                Command::ClusterSlots => super::cluster::slots_reply(&state, map),
                Command::ClusterShards => super::cluster::shards_reply(&state, map),
                Command::ClusterNodes => super::cluster::nodes_reply(&state, map),
                _ => super::cluster::myid_reply(map),
            }
        }
        _ => not_yet(name),
    }
}

/// `INFO [section ...]`: Redis's `# Section` / `field:value` text.
fn info<B: Backend>(shared: &Shared<B>, sections: &[Bytes]) -> Frame {
    let wanted = |section: &str| {
        sections.is_empty()
            || sections.iter().any(|asked| {
                asked.eq_ignore_ascii_case(section.as_bytes())
                    || asked.eq_ignore_ascii_case(b"all")
                    || asked.eq_ignore_ascii_case(b"everything")
                    || asked.eq_ignore_ascii_case(b"default")
            })
    };
    let stats = &shared.stats;
    let mut text = String::new();
    if wanted("server") {
        text.push_str(&format!(
            "# Server\r\nredis_version:{}\r\nredis_mode:{}\r\ndistcache_version:{}\r\nprocess_id:{}\r\ntcp_port:0\r\n\r\n",
            ::resp::session::REDIS_VERSION,
            if shared.config.cluster.is_some() {
                "cluster"
            } else {
                "standalone"
            },
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        ));
    }
    if wanted("clients") {
        text.push_str(&format!(
            "# Clients\r\nconnected_clients:{}\r\nblocked_clients:{}\r\nmaxclients:{}\r\n\r\n",
            stats.connected_clients.load(Ordering::Relaxed),
            stats.blocked_clients.load(Ordering::Relaxed),
            shared.config.max_clients
        ));
    }
    if wanted("memory") {
        text.push_str("# Memory\r\nmaxmemory_policy:noeviction\r\n\r\n");
    }
    if wanted("stats") {
        text.push_str(&format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\nclient_output_buffer_limit_disconnections:{}\r\n\r\n",
            stats.connections_received.load(Ordering::Relaxed),
            stats.commands_processed.load(Ordering::Relaxed),
            stats.rejected_connections.load(Ordering::Relaxed),
            stats.output_buffer_limit_disconnections.load(Ordering::Relaxed)
        ));
    }
    if wanted("replication") {
        text.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
    }
    if wanted("cluster") {
        text.push_str(&format!(
            "# Cluster\r\ncluster_enabled:{}\r\n\r\n",
            u8::from(shared.config.cluster.is_some())
        ));
    }
    if wanted("keyspace") {
        text.push_str("# Keyspace\r\n\r\n");
    }
    if wanted("distcache") {
        text.push_str("# Distcache\r\n");
        text.push_str(&shared.backend.describe());
    }
    Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    }
}
