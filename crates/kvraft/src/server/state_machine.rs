//! The replicated state machine: the store plus the exactly-once table.
//!
//! Pure and synchronous: the same commands in the same order give the same
//! state and the same answers on every replica. Time is the log time the
//! rsm passes in ([`ApplyContext::now_ms`]), never a clock.

use cache::{Store, StoreConfig, StoreError};
use serde::{Deserialize, Serialize};

use crate::rpc::{Op, Outcome, ServerError};
use crate::rsm::{ApplyContext, ReplicatedMachine, RestoreError, decode, encode};
use crate::session::{SessionCheck, SessionLimits, SessionTable};

/// A log entry: a clerk's request (the rsm adds the leader's time stamp).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub client_id: u64,
    pub seq: u64,
    pub op: Op,
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
        let sessions = SessionLimits::default();
        MachineConfig {
            store: StoreConfig::new(64 << 20),
            max_key_bytes: 1024,
            max_value_bytes: 1 << 20,
            max_clients: sessions.max_clients,
            client_idle_expiry_ms: sessions.idle_expiry_ms,
        }
    }
}

/// What a command answers.
pub type Reply = Result<Outcome, ServerError>;

/// Store + exactly-once table. See the module docs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateMachine {
    config: MachineConfig,
    store: Store,
    sessions: SessionTable<Reply>,
}

impl StateMachine {
    pub fn new(config: MachineConfig) -> StateMachine {
        StateMachine {
            config,
            store: Store::new(config.store),
            sessions: SessionTable::new(SessionLimits {
                max_clients: config.max_clients,
                idle_expiry_ms: config.client_idle_expiry_ms,
            }),
        }
    }

    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The recorded answer of `(client_id, seq)` if that is the client's
    /// latest applied write.
    pub fn recorded_reply(&self, client_id: u64, seq: u64) -> Option<Reply> {
        self.sessions.recorded(client_id, seq).cloned()
    }

    /// Refuses an operation whose key or value is over the limits (checked
    /// by the server before proposing, and again here at apply time).
    pub fn check_sizes(&self, op: &Op) -> Result<(), ServerError> {
        check_sizes(op, &self.config)
    }

    fn execute(&mut self, op: &Op, now_ms: u64) -> Reply {
        execute(&mut self.store, op, &self.config, now_ms)
    }

    /// Answers a Get without changing anything (a ReadIndex read on the
    /// leader alone): the store's `peek`, which respects TTLs at `now_ms`
    /// but records no access for the eviction policy.
    ///
    /// # Panics
    /// If `op` is not a read (a bug in the caller).
    pub fn read(&self, op: &Op, now_ms: u64) -> Reply {
        self.check_sizes(op)?;
        match op {
            Op::Get { key } => Ok(Outcome::Value(
                self.store.peek(key, now_ms).map(<[u8]>::to_vec),
            )),
            other => panic!("kvraft: {other:?} is not a read"),
        }
    }

    /// Every structural invariant (for tests and restores).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.store.check_invariants()?;
        if self.sessions.len() as u64 > self.config.max_clients {
            return Err(format!(
                "{} sessions over the bound of {}",
                self.sessions.len(),
                self.config.max_clients
            ));
        }
        Ok(())
    }
}

impl ReplicatedMachine for StateMachine {
    type Command = Command;
    type Output = Reply;

    /// Applies one committed command and returns its answer. A write seen
    /// before (same client, same seq) is not applied again: its recorded
    /// answer is returned.
    fn apply(&mut self, command: &Command, context: &ApplyContext) -> Reply {
        let now_ms = context.now_ms;
        self.sessions.expire_idle(now_ms);
        if command.op.is_read() {
            return self.execute(&command.op, now_ms);
        }
        match self.sessions.check(command.client_id, command.seq) {
            SessionCheck::Duplicate(reply) => return reply.clone(),
            SessionCheck::Stale { latest } => {
                return Err(ServerError::Stale {
                    seq: command.seq,
                    latest,
                });
            }
            SessionCheck::New => {}
        }
        let reply = self.execute(&command.op, now_ms);
        self.sessions
            .record(command.client_id, command.seq, reply.clone(), now_ms);
        reply
    }

    /// The whole machine as bytes (bincode).
    fn snapshot(&self) -> Vec<u8> {
        encode(self)
    }

    /// Rebuilds a machine from snapshot bytes. The snapshot carries its own
    /// configuration (the replicas' common one).
    fn restore(&self, snapshot: &[u8]) -> Result<StateMachine, RestoreError> {
        let machine: StateMachine = decode(snapshot)?;
        machine
            .check_invariants()
            .map_err(|detail| RestoreError::Inconsistent { detail })?;
        Ok(machine)
    }
}

/// Refuses an operation whose key or value is over `config`'s limits.
/// Shared with shardkv, whose shards apply the same operations.
pub fn check_sizes(op: &Op, config: &MachineConfig) -> Result<(), ServerError> {
    let key_bytes = op.key().len() as u64;
    if key_bytes > config.max_key_bytes {
        return Err(ServerError::TooLarge {
            what: "key".into(),
            size_bytes: key_bytes,
            limit_bytes: config.max_key_bytes,
        });
    }
    let value_bytes = op.value_size_bytes() as u64;
    if value_bytes > config.max_value_bytes {
        return Err(ServerError::TooLarge {
            what: "value".into(),
            size_bytes: value_bytes,
            limit_bytes: config.max_value_bytes,
        });
    }
    Ok(())
}

/// Runs `op` on `store` at log time `now_ms`, within `config`'s limits; a
/// refused operation changes nothing. Exactly-once is the caller's (this
/// runs the operation). Shared with shardkv (one store per shard).
pub fn execute(store: &mut Store, op: &Op, config: &MachineConfig, now_ms: u64) -> Reply {
    check_sizes(op, config)?;
    let max_value_bytes = config.max_value_bytes;
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
            if total_bytes > max_value_bytes {
                return Err(ServerError::TooLarge {
                    what: "appended value".into(),
                    size_bytes: total_bytes,
                    limit_bytes: max_value_bytes,
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
