//! One shard inside a group: its migration state, its store, its
//! exactly-once table and its logical time.

use api::{Error, MachineConfig, Reply};
use cache::Store;
use rsm::session::{SessionCheck, SessionLimits, SessionTable};
use serde::{Deserialize, Serialize};
use shardctrler::Gid;

use crate::rpc::{MigrationError, Op, ShardTransfer};
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
///  Serving ──config takes it, no group is left──► Parked          (frozen)
///  Parked ──config gives it to H──► Offering{to: H}
///  Parked ──config gives it back to this group──► Serving
///  Pulling{from: G}, G declared lost ──► Serving, empty, marked lost
///  (not held) ──config gives it, previous holder lost──► Serving, empty, marked lost
///  Confirming{from: G}, G declared lost ──► Serving
///  Offering{to: G}, G declared lost ──► (not held: the data is given up)
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
    /// No longer owned and no group to hand it to (every group left):
    /// kept, frozen, until a configuration gives it to a group. The
    /// controller lists this group as the shard's holder meanwhile.
    Parked,
}

impl ShardState {
    /// Whether client operations on the shard are served in this state.
    pub fn serves_clients(self) -> bool {
        matches!(self, ShardState::Serving | ShardState::Confirming { .. })
    }
}

/// A copy of a frozen shard on its way out, taken under the machine's lock
/// and encoded outside it.
#[derive(Clone, Debug)]
pub struct OfferedShard {
    shard: ShardId,
    held: Shard,
}

impl OfferedShard {
    pub(super) fn new(shard: ShardId, held: Shard) -> OfferedShard {
        OfferedShard { shard, held }
    }

    /// The encoded [`ShardTransfer`] (what [`crate::ShardMachine::offer`]
    /// would hand over, as bytes), or [`MigrationError::DonorFault`] if the
    /// shard's disk tier cannot be read back.
    pub fn encode(&self) -> Result<Vec<u8>, MigrationError> {
        Ok(self.held.export(self.shard)?.encode())
    }
}

/// A shard installed empty because the group that should have handed it
/// over was declared lost: its data is gone, by the operator's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostShard {
    /// The configuration whose migration gave up the data (the one this
    /// group was applying when it learnt, or the one that would have
    /// named the lost group as donor).
    pub config_num: u64,
    /// The lost group that held the data.
    pub previous_owner: Gid,
}

/// A shard this group waits for: being pulled from `from` in
/// configuration `config_num`, since log time `since_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullWait {
    pub shard: ShardId,
    pub from: Gid,
    pub config_num: u64,
    /// The group's log time when the shard started waiting (the apply of
    /// the configuration that gave it to this group).
    pub since_ms: u64,
}

/// The exactly-once bounds of one shard, from the group's limits.
fn session_limits(limits: &MachineConfig) -> SessionLimits {
    limits.into()
}

/// A held shard. Its logical time is the group's time plus
/// `time_offset_ms`: a shard that arrives from another group keeps that
/// group's time base (its TTL deadlines are in it), shifted so that it
/// continues from where the donor froze it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Shard {
    pub(super) state: ShardState,
    pub(super) store: Store,
    pub(super) sessions: SessionTable<Reply>,
    time_offset_ms: i64,
    /// The shard's latest logical time (never goes backwards).
    now_ms: u64,
    /// The group's log time when this group began holding the shard (for
    /// a `Pulling` shard: since when it waits).
    pub(super) held_since_ms: u64,
    /// Set when the shard was installed empty because its donor was
    /// declared lost. Stays while this group holds the shard.
    pub(super) lost: Option<LostShard>,
}

impl Shard {
    /// A shard holding `store` (empty) whose time is the group's.
    pub(super) fn empty(
        state: ShardState,
        store: Store,
        limits: &MachineConfig,
        group_now_ms: u64,
    ) -> Shard {
        Shard {
            state,
            store,
            sessions: SessionTable::new(session_limits(limits)),
            time_offset_ms: 0,
            now_ms: group_now_ms,
            held_since_ms: group_now_ms,
            lost: None,
        }
    }

    /// An empty, served shard standing in for one whose donor was
    /// declared lost.
    pub(super) fn lost(
        lost: LostShard,
        store: Store,
        limits: &MachineConfig,
        group_now_ms: u64,
    ) -> Shard {
        Shard {
            lost: Some(lost),
            ..Shard::empty(ShardState::Serving, store, limits, group_now_ms)
        }
    }

    /// Continues the shard's time from where it stopped, now that the
    /// group's time is `group_now_ms` (a parked shard served again: its
    /// TTLs did not run while it was frozen).
    pub(super) fn resume(&mut self, group_now_ms: u64) {
        let offset = i128::from(self.now_ms) - i128::from(group_now_ms);
        // Both are u64, so the difference fits in an i64 unless the times
        // are more than 292 million years apart.
        self.time_offset_ms = i64::try_from(offset).unwrap_or_else(|_| {
            panic!(
                "shard time {} and group time {group_now_ms} are too far apart",
                self.now_ms
            )
        });
    }

    /// Advances the shard's time to the group's `group_now_ms` and returns it.
    pub(super) fn advance(&mut self, group_now_ms: u64) -> u64 {
        let shifted = i128::from(group_now_ms) + i128::from(self.time_offset_ms);
        let shifted = u64::try_from(shifted.max(0)).unwrap_or(u64::MAX);
        self.now_ms = self.now_ms.max(shifted);
        self.now_ms
    }

    /// Answers a read (`op.is_read()`) at the group's time `group_now_ms`
    /// without changing anything: the shard's time is computed, not
    /// advanced, and the store is peeked (no access recorded for the
    /// eviction policy), so a read on one replica leaves it identical to
    /// the others.
    pub(super) fn read(&self, op: &Op, limits: &MachineConfig, group_now_ms: u64) -> Reply {
        let shifted = i128::from(group_now_ms) + i128::from(self.time_offset_ms);
        let shifted = u64::try_from(shifted.max(0)).unwrap_or(u64::MAX);
        api::read(&self.store, op, &limits.limits(), self.now_ms.max(shifted))
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
    ) -> Reply {
        let now_ms = self.advance(group_now_ms);
        self.sessions.expire_idle(now_ms);
        if op.is_read() {
            return api::execute(&mut self.store, op, &limits.limits(), now_ms);
        }
        match self.sessions.check(client_id, seq) {
            SessionCheck::Duplicate(reply) => return reply.clone(),
            SessionCheck::Stale { latest } => return Err(Error::Stale { seq, latest }),
            SessionCheck::New => {}
        }
        let reply = api::execute(&mut self.store, op, &limits.limits(), now_ms);
        self.sessions.record(client_id, seq, reply.clone(), now_ms);
        reply
    }

    /// Whether a write `(client_id, seq)` applied now would run (not a
    /// duplicate of the session's latest, not older than it).
    pub(super) fn is_new_write(&self, client_id: u64, seq: u64) -> bool {
        matches!(self.sessions.check(client_id, seq), SessionCheck::New)
    }

    /// The answer recorded for `(client_id, seq)`, if it is the client's
    /// latest write on this shard.
    pub(super) fn recorded_reply(&self, client_id: u64, seq: u64) -> Option<Reply> {
        self.sessions.recorded(client_id, seq).cloned()
    }

    /// The shard as it leaves this group.
    pub(super) fn export(&self, shard: ShardId) -> Result<ShardTransfer, MigrationError> {
        let store = self
            .store
            .try_snapshot()
            .map_err(|error| MigrationError::DonorFault {
                shard,
                detail: error.to_string(),
            })?;
        Ok(ShardTransfer {
            shard,
            store,
            shard_now_ms: self.now_ms,
            sessions: self.sessions.export(),
        })
    }

    /// A shard rebuilt from a transfer, its store already restored from
    /// `transfer.store`, continuing the donor's time from the group's
    /// `group_now_ms` on. Refuses a malformed transfer.
    pub(super) fn import(
        transfer: &ShardTransfer,
        store: Store,
        state: ShardState,
        limits: &MachineConfig,
        group_now_ms: u64,
    ) -> Result<Shard, String> {
        let mut sessions = SessionTable::new(session_limits(limits));
        sessions.import(transfer.sessions.iter().cloned());
        let offset = i128::from(transfer.shard_now_ms) - i128::from(group_now_ms);
        let time_offset_ms =
            i64::try_from(offset).map_err(|_| format!("time offset {offset} out of range"))?;
        Ok(Shard {
            state,
            store,
            sessions,
            time_offset_ms,
            now_ms: transfer.shard_now_ms,
            held_since_ms: group_now_ms,
            lost: None,
        })
    }

    pub(super) fn stored_bytes(&self) -> u64 {
        self.store.used_bytes()
    }
}
