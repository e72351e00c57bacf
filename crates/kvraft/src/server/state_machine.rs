//! The replicated state machine: the store plus the exactly-once table.
//!
//! Pure and synchronous: the same commands in the same order give the same
//! state and the same answers on every replica. Time is the logical time
//! the leader stamped on each command, never a clock.

use std::collections::{BTreeMap, BTreeSet};

use cache::{Store, StoreConfig, StoreError};
use serde::{Deserialize, Serialize};

use crate::rpc::{Op, Outcome, ServerError};

/// A log entry: a clerk's request plus the leader's logical time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub client_id: u64,
    pub seq: u64,
    pub op: Op,
    /// The proposing leader's logical time, in ms. The machine's time is
    /// the maximum seen so far, so it never goes backwards.
    pub now_ms: u64,
}

/// Limits of the state machine; identical on every replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineConfig {
    pub store: StoreConfig,
    pub max_key_bytes: u64,
    pub max_value_bytes: u64,
    /// Bound on the exactly-once table; past it the least recently active
    /// client is forgotten.
    pub max_clients: u64,
    /// A client silent for this long (log time) is forgotten.
    pub client_idle_expiry_ms: u64,
}

impl Default for MachineConfig {
    fn default() -> MachineConfig {
        MachineConfig {
            store: StoreConfig::new(64 << 20),
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
            max_clients: 10_000,
            client_idle_expiry_ms: 10 * 60 * 1000,
        }
    }
}

/// The last write of one client and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    last_seq: u64,
    reply: Result<Outcome, ServerError>,
    last_active_ms: u64,
}

/// Store + exactly-once table + logical time. See the module docs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateMachine {
    config: MachineConfig,
    store: Store,
    now_ms: u64,
    sessions: BTreeMap<u64, Session>,
    /// `(last_active_ms, client_id)` for every session: the idle order.
    idle_order: BTreeSet<(u64, u64)>,
}

impl StateMachine {
    pub fn new(config: MachineConfig) -> StateMachine {
        StateMachine {
            config,
            store: Store::new(config.store),
            now_ms: 0,
            sessions: BTreeMap::new(),
            idle_order: BTreeSet::new(),
        }
    }

    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    /// The logical time of the latest applied command.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The recorded answer of `(client_id, seq)` if that is the client's
    /// latest applied write.
    pub fn recorded_reply(&self, client_id: u64, seq: u64) -> Option<Result<Outcome, ServerError>> {
        self.sessions
            .get(&client_id)
            .filter(|session| session.last_seq == seq)
            .map(|session| session.reply.clone())
    }

    /// Refuses an operation whose key or value is over the limits (checked
    /// by the server before proposing, and again here at apply time).
    pub fn check_sizes(&self, op: &Op) -> Result<(), ServerError> {
        let key_bytes = op.key().len() as u64;
        if key_bytes > self.config.max_key_bytes {
            return Err(ServerError::TooLarge {
                what: "key".into(),
                size_bytes: key_bytes,
                limit_bytes: self.config.max_key_bytes,
            });
        }
        let value_bytes = op.value_size_bytes() as u64;
        if value_bytes > self.config.max_value_bytes {
            return Err(ServerError::TooLarge {
                what: "value".into(),
                size_bytes: value_bytes,
                limit_bytes: self.config.max_value_bytes,
            });
        }
        Ok(())
    }

    /// Applies one committed command and returns its answer. A write seen
    /// before (same client, same seq) is not applied again: its recorded
    /// answer is returned.
    pub fn apply(&mut self, command: &Command) -> Result<Outcome, ServerError> {
        self.now_ms = self.now_ms.max(command.now_ms);
        self.expire_idle_sessions();
        if command.op.is_read() {
            return self.execute(&command.op);
        }
        if let Some(session) = self.sessions.get(&command.client_id) {
            if command.seq == session.last_seq {
                return session.reply.clone();
            }
            if command.seq < session.last_seq {
                return Err(ServerError::Stale {
                    seq: command.seq,
                    latest: session.last_seq,
                });
            }
        }
        let reply = self.execute(&command.op);
        self.record(command.client_id, command.seq, reply.clone());
        reply
    }

    fn execute(&mut self, op: &Op) -> Result<Outcome, ServerError> {
        self.check_sizes(op)?;
        let now_ms = self.now_ms;
        let max_value_bytes = self.config.max_value_bytes;
        match op {
            Op::Get { key } => Ok(Outcome::Value(
                self.store.get(key, now_ms).map(<[u8]>::to_vec),
            )),
            Op::Put { key, value, ttl_ms } => self
                .store
                .put(key, value.clone(), *ttl_ms, now_ms)
                .map(|()| Outcome::Done)
                .map_err(store_error),
            Op::Append { key, value } => {
                // The result must stay under the value limit too; checked
                // before writing so a refused append changes nothing.
                let current_bytes = self.store.get(key, now_ms).map_or(0, <[u8]>::len) as u64;
                let total_bytes = current_bytes + value.len() as u64;
                if total_bytes > max_value_bytes {
                    return Err(ServerError::TooLarge {
                        what: "appended value".into(),
                        size_bytes: total_bytes,
                        limit_bytes: max_value_bytes,
                    });
                }
                self.store
                    .append(key, value, now_ms)
                    .map(|_| Outcome::Done)
                    .map_err(store_error)
            }
            Op::Delete { key } => Ok(Outcome::Deleted(self.store.delete(key, now_ms))),
            Op::CompareAndSet {
                key,
                expected,
                value,
                ttl_ms,
            } => match self.store.compare_and_set(
                key,
                expected.as_deref(),
                value.clone(),
                *ttl_ms,
                now_ms,
            ) {
                Ok(()) => Ok(Outcome::Swapped(true)),
                Err(StoreError::CasMismatch { .. }) => Ok(Outcome::Swapped(false)),
                Err(error) => Err(store_error(error)),
            },
        }
    }

    fn record(&mut self, client_id: u64, seq: u64, reply: Result<Outcome, ServerError>) {
        let now_ms = self.now_ms;
        if let Some(old) = self.sessions.insert(
            client_id,
            Session {
                last_seq: seq,
                reply,
                last_active_ms: now_ms,
            },
        ) {
            self.idle_order.remove(&(old.last_active_ms, client_id));
        }
        self.idle_order.insert((now_ms, client_id));
        while self.sessions.len() as u64 > self.config.max_clients {
            self.forget_least_recent();
        }
        debug_assert_eq!(self.sessions.len(), self.idle_order.len());
    }

    fn expire_idle_sessions(&mut self) {
        while let Some(&(last_active_ms, _)) = self.idle_order.first() {
            if last_active_ms.saturating_add(self.config.client_idle_expiry_ms) > self.now_ms {
                break;
            }
            self.forget_least_recent();
        }
    }

    fn forget_least_recent(&mut self) {
        if let Some((_, client_id)) = self.idle_order.pop_first() {
            self.sessions.remove(&client_id);
        }
    }

    /// The whole machine as bytes (bincode), for a Raft snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard())
            .unwrap_or_else(|error| panic!("state machine snapshot failed to encode: {error}"))
    }

    /// Rebuilds a machine from [`StateMachine::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<StateMachine, String> {
        let (machine, read_bytes): (StateMachine, usize) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard())
                .map_err(|error| format!("snapshot does not decode: {error}"))?;
        if read_bytes != bytes.len() {
            return Err(format!(
                "{} trailing bytes after the snapshot",
                bytes.len() - read_bytes
            ));
        }
        if machine.sessions.len() != machine.idle_order.len() {
            return Err("exactly-once table and its idle index disagree".into());
        }
        Ok(machine)
    }
}

fn store_error(error: StoreError) -> ServerError {
    match error {
        StoreError::TooLarge {
            weight_bytes,
            capacity_bytes,
        } => ServerError::TooLarge {
            what: "entry".into(),
            size_bytes: weight_bytes,
            limit_bytes: capacity_bytes,
        },
        StoreError::ZeroTtl => ServerError::ZeroTtl,
        other => panic!("the store refused a kvraft operation unexpectedly: {other}"),
    }
}
