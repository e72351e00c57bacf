//! One shard inside a group: its migration state, its store, its
//! exactly-once table and its logical time.

use cache::{Store, StoreError};
use kvraft::MachineConfig;
use serde::{Deserialize, Serialize};
use shardctrler::Gid;

use super::sessions::{SessionCheck, Sessions};
use crate::rpc::{Op, Outcome, ShardKvError, ShardTransfer};
use crate::shard_key::ShardId;

/// Where a shard this group holds stands in the current configuration.
///
/// ```text
///  (not held) ──config gives it, previous owner UNASSIGNED──► Serving
///  (not held) ──config gives it, previous owner G──► Pulling{from: G}
///  Pulling ──InstallShards (data from G)──► Confirming{from: G}   (served)
///  Confirming ──ShardsConfirmed (G deleted its copy)──► Serving
///  Serving ──config takes it, new owner H──► Offering{to: H}      (frozen)
///  Offering ──DeleteShards from H──► (not held)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardState {
    /// Owned, data present, nothing pending.
    Serving,
    /// Owned, waiting for the data from group `from`. Not served.
    Pulling { from: Gid },
    /// Owned and served; group `from` still keeps its copy until told that
    /// this group has the data.
    Confirming { from: Gid },
    /// No longer owned: kept, frozen, until group `to` confirms it has it.
    /// Not served.
    Offering { to: Gid },
}

impl ShardState {
    /// Whether client operations on the shard are served in this state.
    pub fn serves_clients(self) -> bool {
        matches!(self, ShardState::Serving | ShardState::Confirming { .. })
    }
}

/// A held shard. Its logical time is the group's time plus
/// `time_offset_ms`: a shard that arrives from another group keeps that
/// group's time base (its TTL deadlines are in it), shifted so that it
/// continues from where the donor froze it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Shard {
    pub(super) state: ShardState,
    pub(super) store: Store,
    pub(super) sessions: Sessions,
    time_offset_ms: i64,
    /// The shard's latest logical time (never goes backwards).
    now_ms: u64,
}

impl Shard {
    /// An empty shard whose time is the group's.
    pub(super) fn empty(state: ShardState, limits: &MachineConfig, group_now_ms: u64) -> Shard {
        Shard {
            state,
            store: Store::new(limits.store),
            sessions: Sessions::default(),
            time_offset_ms: 0,
            now_ms: group_now_ms,
        }
    }

    /// Advances the shard's time to the group's `group_now_ms` and returns it.
    pub(super) fn advance(&mut self, group_now_ms: u64) -> u64 {
        let shifted = i128::from(group_now_ms) + i128::from(self.time_offset_ms);
        let shifted = u64::try_from(shifted.max(0)).unwrap_or(u64::MAX);
        self.now_ms = self.now_ms.max(shifted);
        self.now_ms
    }

    /// Applies a client operation the group serves (ownership already
    /// checked). Writes are applied once per `(client_id, seq)`.
    pub(super) fn apply_client(
        &mut self,
        client_id: u64,
        seq: u64,
        op: &Op,
        limits: &MachineConfig,
        group_now_ms: u64,
    ) -> Result<Outcome, ShardKvError> {
        let now_ms = self.advance(group_now_ms);
        self.sessions.expire(now_ms, limits.client_idle_expiry_ms);
        if op.is_read() {
            return execute(&mut self.store, op, limits, now_ms);
        }
        match self.sessions.check(client_id, seq) {
            SessionCheck::Duplicate(reply) => return reply,
            SessionCheck::Stale { latest } => return Err(ShardKvError::Stale { seq, latest }),
            SessionCheck::New => {}
        }
        let reply = execute(&mut self.store, op, limits, now_ms);
        self.sessions
            .record(client_id, seq, reply.clone(), now_ms, limits.max_clients);
        reply
    }

    /// The answer recorded for `(client_id, seq)`, if it is the client's
    /// latest write on this shard.
    pub(super) fn recorded_reply(
        &self,
        client_id: u64,
        seq: u64,
    ) -> Option<Result<Outcome, ShardKvError>> {
        match self.sessions.check(client_id, seq) {
            SessionCheck::Duplicate(reply) => Some(reply),
            _ => None,
        }
    }

    /// The shard as it leaves this group.
    pub(super) fn export(&self, shard: ShardId) -> ShardTransfer {
        ShardTransfer {
            shard,
            store: self.store.snapshot(),
            shard_now_ms: self.now_ms,
            sessions: self.sessions.export(),
        }
    }

    /// A shard rebuilt from a transfer, continuing the donor's time from
    /// the group's `group_now_ms` on. Refuses a malformed transfer.
    pub(super) fn import(
        transfer: &ShardTransfer,
        state: ShardState,
        group_now_ms: u64,
    ) -> Result<Shard, String> {
        let store = Store::restore(&transfer.store).map_err(|error| error.to_string())?;
        let sessions = Sessions::import(&transfer.sessions)?;
        let offset = i128::from(transfer.shard_now_ms) - i128::from(group_now_ms);
        let time_offset_ms =
            i64::try_from(offset).map_err(|_| format!("time offset {offset} out of range"))?;
        Ok(Shard {
            state,
            store,
            sessions,
            time_offset_ms,
            now_ms: transfer.shard_now_ms,
        })
    }

    pub(super) fn stored_bytes(&self) -> u64 {
        self.store.used_bytes()
    }
}

/// Refuses an operation whose key or value is over the limits.
pub fn check_sizes(op: &Op, limits: &MachineConfig) -> Result<(), ShardKvError> {
    let key_bytes = op.key().len() as u64;
    if key_bytes > limits.max_key_bytes {
        return Err(ShardKvError::TooLarge {
            what: "key".into(),
            size_bytes: key_bytes,
            limit_bytes: limits.max_key_bytes,
        });
    }
    let value_bytes = op.value_size_bytes() as u64;
    if value_bytes > limits.max_value_bytes {
        return Err(ShardKvError::TooLarge {
            what: "value".into(),
            size_bytes: value_bytes,
            limit_bytes: limits.max_value_bytes,
        });
    }
    Ok(())
}

/// Runs `op` on `store` at logical time `now_ms`. A refused operation
/// changes nothing.
fn execute(
    store: &mut Store,
    op: &Op,
    limits: &MachineConfig,
    now_ms: u64,
) -> Result<Outcome, ShardKvError> {
    check_sizes(op, limits)?;
    match op {
        Op::Get { key } => Ok(Outcome::Value(store.get(key, now_ms).map(<[u8]>::to_vec))),
        Op::Put { key, value, ttl_ms } => store
            .put(key, value.clone(), *ttl_ms, now_ms)
            .map(|()| Outcome::Done)
            .map_err(store_error),
        Op::Append { key, value } => {
            // The result must stay under the value limit; checked first so
            // a refused append changes nothing.
            let current_bytes = store.get(key, now_ms).map_or(0, <[u8]>::len) as u64;
            let total_bytes = current_bytes + value.len() as u64;
            if total_bytes > limits.max_value_bytes {
                return Err(ShardKvError::TooLarge {
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

fn store_error(error: StoreError) -> ShardKvError {
    match error {
        StoreError::TooLarge {
            weight_bytes,
            capacity_bytes,
        } => ShardKvError::TooLarge {
            what: "entry".into(),
            size_bytes: weight_bytes,
            limit_bytes: capacity_bytes,
        },
        StoreError::ZeroTtl => ShardKvError::ZeroTtl,
        other => panic!("the store refused a shardkv operation unexpectedly: {other}"),
    }
}
