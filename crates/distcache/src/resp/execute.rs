//! Data commands to operations on the owning group.
//!
//! Each command becomes operations run by the [`Backend`] (the node's
//! [`Forwarder`]). Read-modify-write commands (`INCR`, `SETRANGE`,
//! `SET ... GET/XX`, `GETSET`) read the value and swap it with a
//! compare-and-set, retrying when another writer got in between, so they
//! are atomic. The operations of today's log carry no TTL reads, no
//! expiry changes and no keyspace scans; the commands that need those
//! (`TTL`, `EXPIRE`, `PERSIST`, `KEEPTTL`, `EXAT`, `KEYS`, `SCAN`,
//! `DBSIZE`, `FLUSHDB`, ...) answer an error that says so until the
//! replicated operations for them exist. Not atomic today, and documented
//! so: `GETDEL`, `RENAME`, `RENAMENX`, `COPY` (a read, then writes), and
//! `MSET`/`DEL`/`EXISTS`/`MGET` across keys (one operation per key, run
//! concurrently).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ::resp::Frame;
use ::resp::command::{Command, CommandError, Parsed, SetCondition, SetExpiry};
use bytes::Bytes;
use futures::future::join_all;
use shardkv::{Op, Outcome};

use super::Shared;
use crate::forward::{ForwardError, Forwarder};

/// Compare-and-set attempts before a read-modify-write gives up.
const SWAP_ATTEMPTS_MAX: usize = 64;

/// Runs operations for the RESP front end.
pub trait Backend: Send + Sync + 'static {
    /// Applies `op` in the group owning its key.
    fn run(&self, op: Op) -> impl Future<Output = Result<Outcome, ForwardError>> + Send;

    /// The `# Distcache` section of `INFO`: groups, leaders, shard map.
    fn describe(&self) -> String;
}

impl Backend for Arc<Forwarder> {
    fn run(&self, op: Op) -> impl Future<Output = Result<Outcome, ForwardError>> + Send {
        Forwarder::run(self, op, None)
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
        text
    }
}

/// Counters `INFO stats` and `INFO clients` report.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted since start.
    pub connections_received: AtomicU64,
    /// Connections open now.
    pub connected_clients: AtomicU64,
    /// Connections refused at `max_clients`.
    pub rejected_connections: AtomicU64,
    /// Requests answered.
    pub commands_processed: AtomicU64,
}

/// Why a command failed, as a reply.
fn error_frame(error: &CommandError) -> Frame {
    Frame::error(&error.to_string())
}

fn forward_error(error: &ForwardError) -> Frame {
    Frame::error(&format!("ERR {error}"))
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

async fn swap<B: Backend>(
    backend: &B,
    key: &Bytes,
    expected: Option<Vec<u8>>,
    value: Vec<u8>,
    ttl_ms: Option<u64>,
) -> Result<bool, Frame> {
    let op = Op::CompareAndSet {
        key: key.to_vec(),
        expected,
        value,
        ttl_ms,
    };
    match backend.run(op).await {
        Ok(Outcome::Swapped(swapped)) => Ok(swapped),
        Ok(other) => Err(Frame::error(&format!(
            "ERR unexpected outcome {other:?} for a swap"
        ))),
        Err(error) => Err(forward_error(&error)),
    }
}

async fn write<B: Backend>(backend: &B, op: Op) -> Result<Outcome, Frame> {
    backend.run(op).await.map_err(|error| forward_error(&error))
}

/// Stripes of the per-key lock that queues this node's read-modify-writes
/// of one key, so that concurrent `INCR`s of a hot key from many clients
/// of this node take turns instead of failing each other's swaps.
pub(crate) const RMW_LOCK_STRIPES: usize = 256;

/// The stripe of `key` (FNV-1a, fixed: no random seed).
fn stripe(key: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    (hash % RMW_LOCK_STRIPES as u64) as usize
}

/// Reads the value, computes the new one (or a reply that ends the
/// command), and swaps; retries while another writer (on another node)
/// changes the value.
async fn read_modify_write<B, F>(
    shared: &Shared<B>,
    key: &Bytes,
    ttl_ms: Option<u64>,
    mut update: F,
) -> Frame
where
    B: Backend,
    F: FnMut(Option<&[u8]>) -> Result<(Vec<u8>, Frame), Frame>,
{
    let backend = &shared.backend;
    let _turn = shared.rmw_locks[stripe(key)].lock().await;
    for _ in 0..SWAP_ATTEMPTS_MAX {
        let current = match get(backend, key).await {
            Ok(current) => current,
            Err(reply) => return reply,
        };
        let (value, reply) = match update(current.as_deref()) {
            Ok(pair) => pair,
            Err(reply) => return reply,
        };
        match swap(backend, key, current, value, ttl_ms).await {
            Ok(true) => return reply,
            Ok(false) => continue,
            Err(reply) => return reply,
        }
    }
    Frame::error("ERR the key changed under every attempt to update it; try again")
}

/// A stored value as a 64-bit integer, Redis's way.
fn as_integer(value: Option<&[u8]>) -> Result<i64, Frame> {
    match value {
        None => Ok(0),
        Some(bytes) => ::resp::command::parse_integer(bytes)
            .ok_or_else(|| error_frame(&CommandError::NotAnInteger)),
    }
}

/// Redis's `GETRANGE` on a value.
fn substring(value: &[u8], start: i64, end: i64) -> &[u8] {
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

/// Runs one parsed data command.
pub(super) async fn execute<B: Backend>(shared: &Shared<B>, parsed: Parsed) -> Frame {
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
            let ttl_ms = match expiry {
                SetExpiry::Clear => None,
                SetExpiry::At(time) if time.relative => Some(time.milliseconds as u64),
                SetExpiry::At(_) | SetExpiry::Keep => {
                    return not_yet("SET with EXAT, PXAT or KEEPTTL");
                }
            };
            if condition == SetCondition::Always && !return_old {
                let op = Op::Put {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    ttl_ms,
                };
                return match write(backend, op).await {
                    Ok(_) => Frame::ok(),
                    Err(reply) => reply,
                };
            }
            read_modify_write(shared, &key, ttl_ms, |current| {
                let allowed = match condition {
                    SetCondition::Always => true,
                    SetCondition::IfAbsent => current.is_none(),
                    SetCondition::IfPresent => current.is_some(),
                };
                let old = current.map_or(Frame::Null, Frame::bulk);
                if !allowed {
                    return Err(if return_old { old } else { Frame::Null });
                }
                Ok((value.to_vec(), if return_old { old } else { Frame::ok() }))
            })
            .await
        }
        Command::SetNx { key, value } => {
            match swap(backend, &key, None, value.to_vec(), None).await {
                Ok(swapped) => Frame::Integer(i64::from(swapped)),
                Err(reply) => reply,
            }
        }
        Command::GetDel { key } => match get(backend, &key).await {
            Ok(None) => Frame::Null,
            Ok(Some(value)) => match write(backend, Op::Delete { key: key.to_vec() }).await {
                Ok(_) => Frame::bulk(value),
                Err(reply) => reply,
            },
            Err(reply) => reply,
        },
        Command::GetEx { key, expiry } => match expiry {
            ::resp::command::GetExExpiry::Unchanged => match get(backend, &key).await {
                Ok(value) => value.map_or(Frame::Null, Frame::bulk),
                Err(reply) => reply,
            },
            _ => not_yet("GETEX with an expiry option"),
        },
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
        Command::MSet { pairs } => {
            let writes = pairs.iter().map(|(key, value)| {
                write(
                    backend,
                    Op::Put {
                        key: key.to_vec(),
                        value: value.to_vec(),
                        ttl_ms: None,
                    },
                )
            });
            for result in join_all(writes).await {
                if let Err(reply) = result {
                    return reply;
                }
            }
            Frame::ok()
        }
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
                Ok(_) => match get(backend, &key).await {
                    Ok(value) => Frame::Integer(value.map_or(0, |value| value.len() as i64)),
                    Err(reply) => reply,
                },
                Err(reply) => reply,
            }
        }
        Command::StrLen { key } => match get(backend, &key).await {
            Ok(value) => Frame::Integer(value.map_or(0, |value| value.len() as i64)),
            Err(reply) => reply,
        },
        Command::GetRange { key, start, end } => match get(backend, &key).await {
            Ok(value) => Frame::bulk(substring(value.as_deref().unwrap_or_default(), start, end)),
            Err(reply) => reply,
        },
        Command::SetRange { key, offset, value } => {
            let max_bytes = shared.config.limits.max_bulk_bytes as u64;
            if !value.is_empty() && offset.saturating_add(value.len() as u64) > max_bytes {
                return error_frame(&CommandError::StringTooLong);
            }
            if value.is_empty() {
                return match get(backend, &key).await {
                    Ok(current) => {
                        Frame::Integer(current.map_or(0, |current| current.len() as i64))
                    }
                    Err(reply) => reply,
                };
            }
            read_modify_write(shared, &key, None, |current| {
                let mut updated = current.unwrap_or_default().to_vec();
                let offset = offset as usize;
                if updated.len() < offset + value.len() {
                    updated.resize(offset + value.len(), 0);
                }
                updated[offset..offset + value.len()].copy_from_slice(&value);
                let length = updated.len() as i64;
                Ok((updated, Frame::Integer(length)))
            })
            .await
        }
        Command::IncrBy { key, delta } => {
            read_modify_write(shared, &key, None, |current| {
                let number = as_integer(current)?;
                let result = number
                    .checked_add(delta)
                    .ok_or_else(|| error_frame(&CommandError::IncrementOverflow))?;
                Ok((result.to_string().into_bytes(), Frame::Integer(result)))
            })
            .await
        }
        Command::IncrByFloat { key, delta } => {
            read_modify_write(shared, &key, None, |current| {
                let number = match current {
                    None => 0.0,
                    Some(bytes) => ::resp::command::parse_float(bytes)
                        .ok_or_else(|| error_frame(&CommandError::NotAFloat))?,
                };
                let result = number + delta;
                if !result.is_finite() {
                    return Err(error_frame(&CommandError::NotFinite));
                }
                let text = ::resp::format_double(result);
                Ok((text.clone().into_bytes(), Frame::bulk(text)))
            })
            .await
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
            for result in join_all(keys.iter().map(|key| get(backend, key))).await {
                match result {
                    Ok(Some(_)) => present += 1,
                    Ok(None) => {}
                    Err(reply) => return reply,
                }
            }
            Frame::Integer(present)
        }
        Command::Type { key } => match get(backend, &key).await {
            Ok(Some(_)) => Frame::simple("string"),
            Ok(None) => Frame::simple("none"),
            Err(reply) => reply,
        },
        Command::Rename {
            source,
            destination,
            only_if_new,
        } => {
            let value = match get(backend, &source).await {
                Ok(Some(value)) => value,
                Ok(None) => return Frame::error("ERR no such key"),
                Err(reply) => return reply,
            };
            if source == destination {
                return if only_if_new {
                    Frame::Integer(0)
                } else {
                    Frame::ok()
                };
            }
            let stored = if only_if_new {
                swap(backend, &destination, None, value, None).await
            } else {
                write(
                    backend,
                    Op::Put {
                        key: destination.to_vec(),
                        value,
                        ttl_ms: None,
                    },
                )
                .await
                .map(|_| true)
            };
            match stored {
                Ok(false) => Frame::Integer(0),
                Ok(true) => match write(
                    backend,
                    Op::Delete {
                        key: source.to_vec(),
                    },
                )
                .await
                {
                    Ok(_) if only_if_new => Frame::Integer(1),
                    Ok(_) => Frame::ok(),
                    Err(reply) => reply,
                },
                Err(reply) => reply,
            }
        }
        Command::Copy {
            source,
            destination,
            replace,
        } => {
            let value = match get(backend, &source).await {
                Ok(Some(value)) => value,
                Ok(None) => return Frame::Integer(0),
                Err(reply) => return reply,
            };
            let stored = if replace {
                write(
                    backend,
                    Op::Put {
                        key: destination.to_vec(),
                        value,
                        ttl_ms: None,
                    },
                )
                .await
                .map(|_| true)
            } else {
                swap(backend, &destination, None, value, None).await
            };
            match stored {
                Ok(stored) => Frame::Integer(i64::from(stored)),
                Err(reply) => reply,
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
        | Command::ClusterMyId => Frame::error("ERR This instance has cluster support disabled"),
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
            "# Server\r\nredis_version:{}\r\nredis_mode:standalone\r\ndistcache_version:{}\r\nprocess_id:{}\r\ntcp_port:0\r\n\r\n",
            ::resp::session::REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        ));
    }
    if wanted("clients") {
        text.push_str(&format!(
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n\r\n",
            stats.connected_clients.load(Ordering::Relaxed),
            shared.config.max_clients
        ));
    }
    if wanted("memory") {
        text.push_str("# Memory\r\nmaxmemory_policy:noeviction\r\n\r\n");
    }
    if wanted("stats") {
        text.push_str(&format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\n\r\n",
            stats.connections_received.load(Ordering::Relaxed),
            stats.commands_processed.load(Ordering::Relaxed),
            stats.rejected_connections.load(Ordering::Relaxed)
        ));
    }
    if wanted("replication") {
        text.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
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

#[cfg(test)]
mod tests {
    use super::substring;

    #[test]
    fn getrange_follows_redis() {
        let value = b"Hello World";
        assert_eq!(substring(value, 0, 4), b"Hello");
        assert_eq!(substring(value, -5, -1), b"World");
        assert_eq!(substring(value, 5, 3), b"");
        assert_eq!(substring(value, 0, -100), b"H");
        assert_eq!(substring(value, -100, 100), value);
        assert_eq!(substring(b"", 0, -1), b"");
    }
}
