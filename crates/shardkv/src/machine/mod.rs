//! The per-group replicated state machine, pure and synchronous: the same
//! commands in the same order give the same state and answers on every
//! replica of the group. No IO, no clock (time is the leader's stamp on
//! each log entry), no randomness.
//!
//! The migration protocol it implements is described in the crate docs;
//! the per-shard states are in [`ShardState`].

mod disk;
mod incoming;
mod shard;

use std::collections::BTreeMap;

use api::{Error, MachineConfig, Reply};
use cache::store::DiskSnapshot;
use cache::{PolicyRevision, Store};
use serde::{Deserialize, Serialize};
use shardctrler::{Config, Gid, UNASSIGNED};

use crate::rpc::{MigrationError, Op, PullShards, ShardChunk, ShardTransfer};
use crate::shard_key::{ShardId, key_to_shard, op_shard};
pub use disk::DiskPlacement;
use incoming::{Added, IncomingShard};
pub use incoming::{ChunkOutcome, max_transfer_bytes};
use shard::Shard;
pub use shard::{LostShard, OfferedShard, PullWait, ShardState};

/// One entry of a group's Raft log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupCommand {
    /// A clerk's operation.
    Client { client_id: u64, seq: u64, op: Op },
    /// Move to the next configuration (applied only if it is the next one
    /// and no migration is in progress). A later one is taken only by a
    /// group that holds no shard and gets none in it: it has nothing to
    /// hand over or pull, so the numbers in between (which the controller
    /// may no longer keep) cannot concern it.
    Reconfigure(Config),
    /// One piece of a shard this group is pulling in configuration
    /// `config_num`; the last piece installs it.
    ShardChunk { config_num: u64, chunk: ShardChunk },
    /// Data of whole shards this group is pulling in configuration
    /// `config_num` (the servers send [`GroupCommand::ShardChunk`]s; this
    /// one installs transfers that are at hand in full).
    InstallShards {
        config_num: u64,
        transfers: Vec<ShardTransfer>,
    },
    /// The new owner `from_gid` has the shards this group offered it in
    /// `config_num`: delete them (shards offered to another group stay).
    DeleteShards {
        config_num: u64,
        shards: Vec<ShardId>,
        from_gid: Gid,
    },
    /// The previous owner deleted its copy of these shards received in
    /// `config_num`: nothing is pending for them any more.
    ShardsConfirmed {
        config_num: u64,
        shards: Vec<ShardId>,
    },
    /// The controller declared these groups lost (gid -> the configuration
    /// that declared it; a leader copies them from a configuration it
    /// read). Every pending exchange with them ends: a shard pulled from
    /// one is installed empty and marked lost, a shard it should confirm
    /// becomes plain Serving, a shard offered to it is dropped (its data
    /// went with the lost group). If this group itself is listed, it drops
    /// every shard and serves nothing from then on.
    GroupsLost { lost: BTreeMap<Gid, u64> },
    /// Whether nodes' change-feed pollers may hold leases on this group's
    /// leader (client-side caching's write fence, `server::write_fence`):
    /// a leader writes `true` before it answers a poll, `false` once no
    /// poller has held a lease for a lease's length. A new leader that
    /// finds `true` holds writes back for one lease; with `false` it need
    /// not. Changes nothing in the machine (format version 7).
    PollerLeases { may_exist: bool },
    /// The capacity of the group's stores, which every replica must share:
    /// replicas that evicted at different sizes would answer differently.
    /// A leader writes its node's setting when the log has none yet or
    /// another (`ShardServer::keep_store_capacity`), so the log, not each
    /// node's file, decides. Until the first one applies, a leader
    /// proposes no client write and no piece of a shard (it answers
    /// `Busy`; clients retry), so no replica evicts at a size of its own.
    /// Every store but frozen ones (offered, parked) takes it at once
    /// (evicting, to the disk tier if there is one: work in proportion to
    /// what they evict, in one apply), frozen ones too at the first size
    /// (they were made at each node's own); shards created, received or
    /// given back later get it. Refused: zero, and a size under
    /// which a shard arriving in pieces would exceed its transfer bound
    /// (decided from replicated state only: the pieces held and the size
    /// asked). Format version 8.
    SetStoreCapacity { capacity_bytes: u64 },
    /// The revision of the stores' eviction behaviour
    /// ([`cache::PolicyRevision`], by number), which every replica must
    /// share for the same reason as the capacity. A leader whose group's
    /// log has an older one than its build's latest writes the latest
    /// (`ShardServer::keep_policy_revision`). Every store takes it at once
    /// (frozen ones too: it changes nothing until their next operation),
    /// and stores made, received or restored later get it. Refused: a
    /// number this build does not know, and one older than the group's
    /// (revisions only go forward). Format version 10.
    SetPolicyRevision { revision: u32 },
}

/// The answer to one applied command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupOutput {
    Client(Reply),
    /// Whether the configuration was taken.
    Reconfigured {
        applied: bool,
    },
    /// The shards installed by this command (empty: duplicate or stale).
    Installed {
        shards: Vec<ShardId>,
    },
    /// What a [`GroupCommand::ShardChunk`] did.
    Chunk(ChunkOutcome),
    /// Ok once the shards are gone from this group.
    Deleted(Result<(), MigrationError>),
    /// The shards that became plain Serving.
    Confirmed {
        shards: Vec<ShardId>,
    },
    /// What a [`GroupCommand::GroupsLost`] changed: shards installed empty
    /// (their donor is lost) and shards dropped (offered to a lost group,
    /// or every shard of this group if it is the one declared lost).
    GroupsLost {
        emptied: Vec<ShardId>,
        dropped: Vec<ShardId>,
    },
    /// A [`GroupCommand::PollerLeases`] was noted (by the write fence, not
    /// the machine).
    Noted,
    /// What a [`GroupCommand::SetStoreCapacity`] did: whether it was taken
    /// and how many entries the served shards evicted.
    StoreCapacity {
        applied: bool,
        evicted: u64,
    },
    /// Whether a [`GroupCommand::SetPolicyRevision`] was taken.
    PolicyRevision {
        applied: bool,
    },
}

/// A group's state: its configuration, the previous one, the shards it
/// holds, the pieces of shards still arriving, and its logical time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardMachine {
    gid: Gid,
    limits: MachineConfig,
    now_ms: u64,
    config: Config,
    previous: Config,
    shards: BTreeMap<ShardId, Shard>,
    /// Pieces received of `Pulling` shards (none for other shards).
    incoming: BTreeMap<ShardId, IncomingShard>,
    /// Groups this group knows were declared lost (gid -> the
    /// configuration that declared it): from the configurations it applied
    /// and from [`GroupCommand::GroupsLost`]. At most the controller's
    /// bound on lost groups.
    lost_groups: BTreeMap<Gid, u64>,
    /// Shards ever installed empty here because their donor was lost
    /// (never goes down; a metric's counter).
    shards_lost_total: u64,
    /// Where this replica keeps its shards' disk tiers, when
    /// `limits.store.disk` gives the group one (local: not in snapshots;
    /// see [`DiskPlacement`]).
    #[serde(skip)]
    disk: Option<DiskPlacement>,
    /// The last [`GroupCommand::PollerLeases`] applied: whether nodes'
    /// change-feed pollers may hold leases on the group's leader (the
    /// write fence's marker). False for a new group (an empty log: no
    /// poller ever polled); true when unknown (a snapshot written before
    /// snapshots carried it). Carried by snapshot format 3, outside the
    /// serialized machine (so the machine's own bytes are unchanged).
    #[serde(skip)]
    pollers_may_exist: bool,
    /// Whether a [`GroupCommand::SetStoreCapacity`] has applied: until
    /// then the stores' size is this node's own setting, and a leader
    /// proposes no client write. Carried by snapshot format 4, outside the
    /// serialized machine; older formats read as false (the next leader
    /// writes it again).
    #[serde(skip)]
    capacity_logged: bool,
    /// The last [`GroupCommand::SetPolicyRevision`] applied, which every
    /// store keeps to (`Original` before one). Carried by snapshot format
    /// 5, outside the serialized machine; older formats read as
    /// `Original`, as the stores in them behaved.
    #[serde(skip)]
    policy_revision: PolicyRevision,
}

/// The format of [`ShardMachine::snapshot`]: 1 (no header) is the machine
/// alone, as always; 2 (behind the codec's version header) adds each
/// shard's disk tier section, written only when some shard has a tier;
/// 3 adds the write fence's marker
/// ([`ShardMachine::pollers_may_exist`]), which 1 and 2 read as true;
/// 4 adds whether the stores' capacity is logged
/// ([`ShardMachine::capacity_logged`]), which 1 to 3 read as false;
/// 5 (always written now) adds the stores' policy revision
/// ([`ShardMachine::policy_revision`], by number), which 1 to 4 read as
/// `Original`.
const SNAPSHOT_FORMAT: codec::Format = codec::Format {
    what: "shard machine snapshot",
    version: 5,
};

/// Lost groups a machine remembers at most (see
/// [`ShardMachine::lost_groups`]): the controller records at most as many
/// as a configuration may list groups (1024 by default), which a group
/// does not know; a generous fixed bound keeps the table bounded anyway.
pub const MAX_LOST_GROUPS: usize = 4096;

impl ShardMachine {
    /// A group `gid` at configuration 0, holding nothing, whose shards'
    /// stores have no disk tier.
    ///
    /// # Panics
    /// If `gid` is [`UNASSIGNED`], `shard_count` is 0, or `limits` gives
    /// the stores a disk tier (that needs a place:
    /// [`ShardMachine::with_disk`]).
    pub fn new(gid: Gid, shard_count: usize, limits: MachineConfig) -> ShardMachine {
        assert!(
            limits.store.disk.is_none(),
            "group {gid}: a disk tier needs a placement (ShardMachine::with_disk)"
        );
        ShardMachine::build(gid, shard_count, limits, None)
    }

    /// A group `gid` whose shards' stores have the disk tier
    /// `limits.store.disk`, their files under `placement` (local to this
    /// replica).
    ///
    /// # Panics
    /// As [`ShardMachine::new`], or if `limits` gives no disk tier.
    pub fn with_disk(
        gid: Gid,
        shard_count: usize,
        limits: MachineConfig,
        placement: DiskPlacement,
    ) -> ShardMachine {
        assert!(
            limits.store.disk.is_some(),
            "group {gid}: a disk placement without a disk tier configured"
        );
        ShardMachine::build(gid, shard_count, limits, Some(placement))
    }

    fn build(
        gid: Gid,
        shard_count: usize,
        limits: MachineConfig,
        disk: Option<DiskPlacement>,
    ) -> ShardMachine {
        assert_ne!(gid, UNASSIGNED, "gid 0 means 'no group'");
        assert!(shard_count > 0, "a service needs at least one shard");
        ShardMachine {
            gid,
            limits,
            now_ms: 0,
            config: Config::initial(shard_count),
            previous: Config::initial(shard_count),
            shards: BTreeMap::new(),
            incoming: BTreeMap::new(),
            lost_groups: BTreeMap::new(),
            shards_lost_total: 0,
            disk,
            pollers_may_exist: false,
            capacity_logged: false,
            policy_revision: PolicyRevision::Original,
        }
    }

    /// Whether a [`GroupCommand::SetStoreCapacity`] has applied (a leader
    /// proposes no client write until one has).
    pub fn capacity_logged(&self) -> bool {
        self.capacity_logged
    }

    /// The stores' policy revision: the last
    /// [`GroupCommand::SetPolicyRevision`] applied (`Original` before one).
    pub fn policy_revision(&self) -> PolicyRevision {
        self.policy_revision
    }

    /// Whether [`GroupCommand::SetStoreCapacity`] of `capacity_bytes`
    /// would apply now: not zero, and every shard arriving in pieces still
    /// within the transfer bound that size gives.
    pub fn accepts_store_capacity(&self, capacity_bytes: u64) -> bool {
        capacity_bytes > 0 && capacity_bytes >= self.smallest_store_capacity_for_arrivals()
    }

    /// The smallest store capacity whose transfer bound still admits every
    /// shard arriving in pieces (0 if none is).
    pub fn smallest_store_capacity_for_arrivals(&self) -> u64 {
        let mut limits = self.limits;
        limits.store.capacity_bytes = 0;
        let sessions = max_transfer_bytes(&limits);
        (self.incoming.values())
            .map(|piece| piece.total_bytes.saturating_sub(sessions).div_ceil(2))
            .max()
            .unwrap_or(0)
    }

    /// Whether nodes' change-feed pollers may hold leases on this group's
    /// leader, as the last [`GroupCommand::PollerLeases`] applied says
    /// (true if a snapshot from before format 3 left it unknown).
    pub fn pollers_may_exist(&self) -> bool {
        self.pollers_may_exist
    }

    /// Where this replica keeps its shards' disk tiers, if the group has
    /// them.
    pub fn disk_placement(&self) -> Option<&DiskPlacement> {
        self.disk.as_ref()
    }

    /// A disk failure that makes this replica's state differ from the
    /// others' (a value lost, a tier that could not be set up), if any.
    /// The replica must stop answering: the rsm stops it
    /// (`ReplicatedMachine::fault`), and it comes back from a snapshot.
    pub fn disk_fault(&self) -> Option<String> {
        let placement = self.disk.as_ref()?;
        if let Some(fault) = placement.fault() {
            return Some(fault.to_owned());
        }
        self.shards.iter().find_map(|(shard, held)| {
            held.store
                .disk_fault()
                .map(|error| format!("shard {shard}: {error}"))
        })
    }

    /// Local measurements of each held shard's disk tier: the values read
    /// back from its files and their summed time (zero without a tier).
    pub fn disk_read_stats(&self) -> BTreeMap<ShardId, cache::store::DiskReadStats> {
        self.shards
            .iter()
            .map(|(&shard, held)| (shard, held.store.disk_read_stats()))
            .collect()
    }

    /// How many shards this group ever installed empty because their donor
    /// was declared lost.
    pub fn shards_lost_total(&self) -> u64 {
        self.shards_lost_total
    }

    /// The groups this group knows were declared lost (gid -> the
    /// configuration that declared it).
    pub fn lost_groups(&self) -> &BTreeMap<Gid, u64> {
        &self.lost_groups
    }

    /// Whether this group itself was declared lost (it then holds and
    /// serves nothing).
    pub fn is_declared_lost(&self) -> bool {
        self.lost_groups.contains_key(&self.gid)
    }

    /// Every shard this group waits for, with its donor, the configuration
    /// and the log time since when, by shard.
    pub fn pull_waits(&self) -> Vec<PullWait> {
        self.shards
            .iter()
            .filter_map(|(&shard, held)| match held.state {
                ShardState::Pulling { from } => Some(PullWait {
                    shard,
                    from,
                    config_num: self.config.num,
                    since_ms: held.held_since_ms,
                }),
                _ => None,
            })
            .collect()
    }

    /// The held shards that were installed empty because their donor was
    /// declared lost.
    pub fn lost_shards(&self) -> BTreeMap<ShardId, LostShard> {
        self.shards
            .iter()
            .filter_map(|(&shard, held)| held.lost.map(|lost| (shard, lost)))
            .collect()
    }

    /// The groups this group waits on (donors of shards it pulls or must
    /// confirm, receivers of shards it offers) that it does not yet know
    /// are lost: the ones worth asking the controller about.
    pub fn peers_waited_on(&self) -> Vec<Gid> {
        let mut peers: Vec<Gid> = self
            .shards
            .values()
            .filter_map(|held| match held.state {
                ShardState::Pulling { from } | ShardState::Confirming { from } => Some(from),
                ShardState::Offering { to } => Some(to),
                ShardState::Serving | ShardState::Parked => None,
            })
            .filter(|gid| !self.lost_groups.contains_key(gid))
            .collect();
        peers.sort_unstable();
        peers.dedup();
        peers
    }

    pub fn gid(&self) -> Gid {
        self.gid
    }

    pub fn limits(&self) -> &MachineConfig {
        &self.limits
    }

    /// The group's logical time (the latest stamp applied).
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration before the current one (where shards come from).
    pub fn previous_config(&self) -> &Config {
        &self.previous
    }

    pub fn shard_count(&self) -> usize {
        self.config.shard_count()
    }

    /// The state of every shard this group holds.
    pub fn shard_states(&self) -> BTreeMap<ShardId, ShardState> {
        self.shards
            .iter()
            .map(|(&shard, held)| (shard, held.state))
            .collect()
    }

    /// The state and store counters of every held shard.
    pub fn shard_stats(&self) -> BTreeMap<ShardId, (ShardState, cache::store::Stats)> {
        self.shards
            .iter()
            .map(|(&shard, held)| (shard, (held.state, held.store.stats())))
            .collect()
    }

    /// Bytes stored over every held shard (the stores' accounting).
    pub fn stored_bytes(&self) -> u64 {
        self.shards.values().map(Shard::stored_bytes).sum()
    }

    /// Exactly-once records over every held shard.
    pub fn session_count(&self) -> usize {
        self.shards.values().map(|held| held.sessions.len()).sum()
    }

    /// True when no migration is in progress: the next configuration may
    /// be applied.
    pub fn migration_done(&self) -> bool {
        self.shards
            .values()
            .all(|held| matches!(held.state, ShardState::Serving | ShardState::Parked))
    }

    /// Shards to pull, by donor group.
    pub fn pulls_wanted(&self) -> BTreeMap<Gid, Vec<ShardId>> {
        self.by_peer(|state| match state {
            ShardState::Pulling { from } => Some(from),
            _ => None,
        })
    }

    /// Bytes received so far of `shard`'s transfer if it is `Pulling`
    /// here (where the next piece starts); None if it is not awaited.
    pub fn pull_progress(&self, shard: ShardId) -> Option<u64> {
        match self.shards.get(&shard)?.state {
            ShardState::Pulling { .. } => Some(
                self.incoming
                    .get(&shard)
                    .map_or(0, |incoming| incoming.bytes.len() as u64),
            ),
            _ => None,
        }
    }

    /// Shards whose donor must still be told to delete, by donor group.
    pub fn confirmations_wanted(&self) -> BTreeMap<Gid, Vec<ShardId>> {
        self.by_peer(|state| match state {
            ShardState::Confirming { from } => Some(from),
            _ => None,
        })
    }

    fn by_peer(&self, peer: impl Fn(ShardState) -> Option<Gid>) -> BTreeMap<Gid, Vec<ShardId>> {
        let mut wanted: BTreeMap<Gid, Vec<ShardId>> = BTreeMap::new();
        for (&shard, held) in &self.shards {
            if let Some(gid) = peer(held.state) {
                wanted.entry(gid).or_default().push(shard);
            }
        }
        wanted
    }

    /// Checks a client request before it is proposed: sizes, and whether
    /// the key's shard is served here now. The apply-time check is the one
    /// that counts; this one saves log entries.
    pub fn check_client(&self, op: &Op) -> Result<(), Error> {
        self.limits.limits().check(op)?;
        self.serving(op).map(|_| ())
    }

    /// The recorded answer of a write already applied here.
    pub fn recorded_reply(&self, client_id: u64, seq: u64, op: &Op) -> Option<Reply> {
        if op.is_read() {
            return None;
        }
        let shard = self.serving(op).ok()?;
        self.shards.get(&shard)?.recorded_reply(client_id, seq)
    }

    /// The shard `op` is routed to if this group serves it now, else
    /// `WrongGroup` (also for a shard out of range). A multi-key
    /// operation whose keys span shards is refused (`CrossShard`, whoever
    /// serves them): one log entry changes one shard, and its exactly-once
    /// record moves with that shard.
    fn serving(&self, op: &Op) -> Result<ShardId, Error> {
        let shard = op_shard(op, self.shard_count());
        if op.is_multi_key()
            && op
                .keys()
                .any(|key| key_to_shard(key, self.shard_count()) != shard)
        {
            return Err(Error::CrossShard);
        }
        let served = self.config.owner(shard) == Some(self.gid)
            && self
                .shards
                .get(&shard)
                .is_some_and(|held| held.state.serves_clients());
        if served {
            Ok(shard)
        } else {
            Err(Error::WrongGroup {
                shard: shard as u64,
                config_num: self.config.num,
            })
        }
    }

    /// Answers a pull (read-only; any replica that applied the
    /// configuration may answer, since offered shards are frozen).
    pub fn offer(&self, request: &PullShards) -> Result<Vec<ShardTransfer>, MigrationError> {
        let wanted = request.config_num;
        let donor_config_num = self.config.num;
        if donor_config_num < wanted {
            return Err(MigrationError::NotReady {
                donor_config_num,
                wanted,
            });
        }
        if donor_config_num > wanted {
            return Err(MigrationError::MovedOn {
                donor_config_num,
                wanted,
            });
        }
        request
            .shards
            .iter()
            .map(|&shard| {
                self.offered_to(wanted, shard, request.from_gid)?;
                self.shards[&shard].export(shard)
            })
            .collect()
    }

    /// Ok if `shard` is offered here to `from_gid` in configuration
    /// `wanted` (the caller checked `wanted` is the current one): the
    /// configuration names the asker as the shard's new owner.
    fn offered_to(&self, wanted: u64, shard: ShardId, from_gid: Gid) -> Result<(), MigrationError> {
        match self.shards.get(&shard).map(|held| held.state) {
            Some(ShardState::Offering { to }) if to == from_gid => Ok(()),
            Some(ShardState::Offering { to }) => Err(MigrationError::WrongReceiver {
                shard,
                wanted,
                from_gid,
                owner: to,
            }),
            _ => Err(MigrationError::NotOffered { shard, wanted }),
        }
    }

    /// Whether `shard` is offered to `from_gid` in configuration
    /// `config_num` here: the checks of [`ShardMachine::offer`] for one
    /// shard, without the data.
    pub fn check_offered(
        &self,
        config_num: u64,
        shard: ShardId,
        from_gid: Gid,
    ) -> Result<(), MigrationError> {
        let request = PullShards {
            config_num,
            shards: Vec::new(),
            from_gid,
        };
        // The configuration checks of a pull, with no shard to export.
        self.offer(&request)?;
        self.offered_to(config_num, shard, from_gid)
    }

    /// A copy of one shard offered to `from_gid` in configuration
    /// `config_num`, to be encoded away from whatever lock guards this
    /// machine (cloning is a copy; encoding is the slow part).
    pub fn offered_copy(
        &self,
        config_num: u64,
        shard: ShardId,
        from_gid: Gid,
    ) -> Result<OfferedShard, MigrationError> {
        self.check_offered(config_num, shard, from_gid)?;
        let held = self
            .shards
            .get(&shard)
            .cloned()
            .unwrap_or_else(|| panic!("group {}: offered shard {shard} vanished", self.gid));
        Ok(OfferedShard::new(shard, held))
    }

    /// Applies one committed command stamped with the leader's logical
    /// time `now_ms`.
    pub fn apply(&mut self, command: &GroupCommand, now_ms: u64) -> GroupOutput {
        self.now_ms = self.now_ms.max(now_ms);
        match command {
            GroupCommand::Client { client_id, seq, op } => {
                GroupOutput::Client(self.apply_client(*client_id, *seq, op))
            }
            GroupCommand::Reconfigure(next) => GroupOutput::Reconfigured {
                applied: self.apply_config(next),
            },
            GroupCommand::ShardChunk { config_num, chunk } => {
                GroupOutput::Chunk(self.apply_chunk(*config_num, chunk))
            }
            GroupCommand::InstallShards {
                config_num,
                transfers,
            } => GroupOutput::Installed {
                shards: self.install(*config_num, transfers),
            },
            GroupCommand::DeleteShards {
                config_num,
                shards,
                from_gid,
            } => GroupOutput::Deleted(self.delete_offered(*config_num, shards, *from_gid)),
            GroupCommand::ShardsConfirmed { config_num, shards } => GroupOutput::Confirmed {
                shards: self.confirm(*config_num, shards),
            },
            GroupCommand::GroupsLost { lost } => self.apply_groups_lost(lost),
            GroupCommand::PollerLeases { may_exist } => {
                self.pollers_may_exist = *may_exist;
                GroupOutput::Noted
            }
            GroupCommand::SetStoreCapacity { capacity_bytes } => {
                self.apply_store_capacity(*capacity_bytes)
            }
            GroupCommand::SetPolicyRevision { revision } => GroupOutput::PolicyRevision {
                applied: self.apply_policy_revision(*revision),
            },
        }
    }

    /// See [`GroupCommand::SetPolicyRevision`].
    fn apply_policy_revision(&mut self, number: u32) -> bool {
        let revision = PolicyRevision::from_number(number);
        let Some(revision) = revision.filter(|&revision| revision >= self.policy_revision) else {
            tracing::warn!(
                gid = self.gid,
                revision = number,
                current = self.policy_revision.number(),
                "refused a policy revision (unknown to this build, or older than the group's)"
            );
            return false;
        };
        self.policy_revision = revision;
        for held in self.shards.values_mut() {
            held.store.set_policy_revision(revision);
        }
        true
    }

    /// See [`GroupCommand::SetStoreCapacity`].
    fn apply_store_capacity(&mut self, capacity_bytes: u64) -> GroupOutput {
        let refused = GroupOutput::StoreCapacity {
            applied: false,
            evicted: 0,
        };
        if !self.accepts_store_capacity(capacity_bytes) {
            tracing::warn!(
                gid = self.gid,
                capacity_bytes,
                "refused a store capacity (zero, or too small for a shard arriving)"
            );
            return refused;
        }
        // Frozen shards keep their size (their data is on its way out, or
        // parked), except at the first size: one frozen before it was made
        // at its node's own size, and replicas must hold the same bytes. A
        // shard being pulled holds an empty store until its data arrives.
        let first = !self.capacity_logged;
        self.capacity_logged = true;
        self.limits.store.capacity_bytes = capacity_bytes;
        let evicted = (self.shards.values_mut())
            .filter(|held| {
                first || !matches!(held.state, ShardState::Offering { .. } | ShardState::Parked)
            })
            .map(|held| held.store.set_capacity_bytes(capacity_bytes))
            .sum();
        GroupOutput::StoreCapacity {
            applied: true,
            evicted,
        }
    }

    /// The capacity of the group's stores (the last
    /// [`GroupCommand::SetStoreCapacity`] applied, or this node's setting
    /// before one).
    pub fn store_capacity_bytes(&self) -> u64 {
        self.limits.store.capacity_bytes
    }

    /// Answers a read (`op.is_read()`) from this replica's applied state
    /// at the leader's time `now_ms`, changing nothing (for ReadIndex
    /// reads): ownership is checked against the configuration applied now,
    /// so a shard that is not served here (not owned, or still pulling)
    /// answers `WrongGroup`, as through the log.
    ///
    /// # Panics
    /// If `op` is not a read (a bug in the caller).
    pub fn read(&self, op: &Op, now_ms: u64) -> Reply {
        assert!(op.is_read(), "ShardMachine::read of a write: {op:?}");
        let shard = self.serving(op)?;
        let held = self
            .shards
            .get(&shard)
            .unwrap_or_else(|| panic!("group {}: served shard {shard} is not held", self.gid));
        held.read(op, &self.limits, self.now_ms.max(now_ms))
    }

    /// The output `command` will have when applied after `earlier` (the
    /// leader's commands between this applied state and it), if it can be
    /// told now (asynchronous replication answers it before the commit):
    /// a client's plain string write ([`api::reply_known_before`]) to a
    /// shard served here, new to its session, with only client operations
    /// in `earlier` (a configuration or a shard's move could change who
    /// serves it) and none of them from the same session at this sequence
    /// number or later (it would make this one a duplicate or stale).
    pub fn output_known_before<'a>(
        &self,
        command: &GroupCommand,
        mut earlier: impl Iterator<Item = &'a GroupCommand>,
    ) -> Option<GroupOutput> {
        let GroupCommand::Client { client_id, seq, op } = command else {
            return None;
        };
        if !self.capacity_logged {
            return None;
        }
        let shard = self.serving(op).ok()?;
        let held = self.shards.get(&shard)?;
        let reply = api::reply_known_before(op, &self.limits.limits(), held.store.config())?;
        let later_in_session = earlier.any(|other| match other {
            GroupCommand::Client {
                client_id: other_client,
                seq: other_seq,
                ..
            } => other_client == client_id && other_seq >= seq,
            _ => true,
        });
        let new = held.is_new_write(*client_id, *seq);
        (new && !later_in_session).then_some(GroupOutput::Client(reply))
    }

    fn apply_client(&mut self, client_id: u64, seq: u64, op: &Op) -> Reply {
        let shard = self.serving(op)?;
        let limits = self.limits;
        let now_ms = self.now_ms;
        let held = self
            .shards
            .get_mut(&shard)
            .unwrap_or_else(|| panic!("group {}: served shard {shard} is not held", self.gid));
        held.apply_client(client_id, seq, op, &limits, now_ms)
    }

    /// Takes `next` if it is the next configuration and no migration is in
    /// progress. A later one is taken only by a group that holds no shard
    /// and neither owns nor parks one in it: such a group has nothing to
    /// hand over and nothing to pull, so the configurations in between
    /// (which the controller may no longer keep) cannot concern it.
    fn apply_config(&mut self, next: &Config) -> bool {
        let skips = next.num > self.config.num + 1;
        let holds_nothing = self.shards.is_empty()
            && !next.shards.contains(&self.gid)
            && !next.parked_shards.values().any(|&gid| gid == self.gid);
        if next.num <= self.config.num
            || (skips && !holds_nothing)
            || next.shard_count() != self.shard_count()
            || !self.migration_done()
        {
            return false;
        }
        // Learn who was declared lost first: a shard whose holder is lost
        // is installed empty rather than pulled (forever) from it.
        let newly_lost: BTreeMap<Gid, u64> = next
            .lost_groups
            .iter()
            .filter(|(gid, _)| !self.lost_groups.contains_key(gid))
            .map(|(&gid, &at)| (gid, at))
            .collect();
        if !newly_lost.is_empty() {
            // Nothing is pending (the migration is done), so this only
            // drops shards if this group itself is the lost one.
            self.apply_groups_lost(&newly_lost);
        }
        if !self.is_declared_lost() {
            for shard in 0..self.shard_count() {
                self.reassign(shard, next.shards[shard], next.num);
            }
        }
        self.previous = std::mem::replace(&mut self.config, next.clone());
        true
    }

    /// Ends every pending exchange with the groups in `lost` (see
    /// [`GroupCommand::GroupsLost`]). Idempotent.
    fn apply_groups_lost(&mut self, lost: &BTreeMap<Gid, u64>) -> GroupOutput {
        let mut emptied = Vec::new();
        let mut dropped = Vec::new();
        for (&gid, &declared_in) in lost {
            if gid == UNASSIGNED
                || (self.lost_groups.len() >= MAX_LOST_GROUPS
                    && !self.lost_groups.contains_key(&gid))
            {
                tracing::warn!(
                    gid = self.gid,
                    lost = gid,
                    "ignored a declaration of a lost group (gid 0, or over the bound)"
                );
                continue;
            }
            self.lost_groups.entry(gid).or_insert(declared_in);
        }
        if self.is_declared_lost() {
            dropped = self.shards.keys().copied().collect();
            self.shards.clear();
            self.incoming.clear();
            if !dropped.is_empty() {
                tracing::warn!(
                    gid = self.gid,
                    shards = ?dropped,
                    "this group was declared lost: its shards are dropped and it serves nothing"
                );
            }
            return GroupOutput::GroupsLost { emptied, dropped };
        }
        let config_num = self.config.num;
        let now_ms = self.now_ms;
        let disk = self.disk.clone();
        let store_config = self.limits.store;
        let revision = self.policy_revision;
        for (&shard, held) in self.shards.iter_mut() {
            match held.state {
                ShardState::Pulling { from } if self.lost_groups.contains_key(&from) => {
                    let marker = LostShard {
                        config_num,
                        previous_owner: from,
                    };
                    let store = empty_store(disk.as_ref(), shard, store_config, revision);
                    *held = Shard::lost(marker, store, &self.limits, now_ms);
                    emptied.push(shard);
                    self.shards_lost_total += 1;
                }
                ShardState::Confirming { from } if self.lost_groups.contains_key(&from) => {
                    // The data is here; nobody is left to tell.
                    held.state = ShardState::Serving;
                }
                ShardState::Offering { to } if self.lost_groups.contains_key(&to) => {
                    dropped.push(shard);
                }
                _ => {}
            }
        }
        for shard in &emptied {
            self.incoming.remove(shard);
        }
        for shard in &dropped {
            self.shards.remove(shard);
        }
        for &shard in &emptied {
            let previous_owner = self.shards[&shard].lost.map(|lost| lost.previous_owner);
            tracing::warn!(
                gid = self.gid,
                shard,
                config_num,
                previous_owner = ?previous_owner,
                "shard installed EMPTY: its donor was declared lost, its data is gone"
            );
        }
        if !dropped.is_empty() {
            tracing::warn!(
                gid = self.gid,
                shards = ?dropped,
                config_num,
                "shards offered to a lost group are dropped (their data went with it)"
            );
        }
        GroupOutput::GroupsLost { emptied, dropped }
    }

    /// Moves `shard` to the state the next configuration (which gives it
    /// to `after`) asks for. Runs before `self.config` becomes the next one.
    fn reassign(&mut self, shard: ShardId, after: Gid, next_num: u64) {
        let held_state = self.shards.get(&shard).map(|held| held.state);
        match held_state {
            None if after == self.gid => {
                // Whoever holds its data now hands it over: the owner, or
                // the group it is parked with; a lost holder hands over
                // nothing.
                let store = self.empty_store(shard);
                let held = match self.config.holder(shard) {
                    UNASSIGNED => {
                        Shard::empty(ShardState::Serving, store, &self.limits, self.now_ms)
                    }
                    from if self.lost_groups.contains_key(&from) => {
                        let marker = LostShard {
                            config_num: next_num,
                            previous_owner: from,
                        };
                        tracing::warn!(
                            gid = self.gid,
                            shard,
                            config_num = next_num,
                            previous_owner = from,
                            "shard installed EMPTY: its previous owner was declared lost, its \
                             data is gone"
                        );
                        self.shards_lost_total += 1;
                        Shard::lost(marker, store, &self.limits, self.now_ms)
                    }
                    from => Shard::empty(
                        ShardState::Pulling { from },
                        store,
                        &self.limits,
                        self.now_ms,
                    ),
                };
                self.shards.insert(shard, held);
            }
            None => {}
            Some(ShardState::Serving | ShardState::Parked)
                if after != self.gid && self.lost_groups.contains_key(&after) =>
            {
                // Given to a group already known lost (declared after this
                // configuration was made): it would never take it, and the
                // configuration that declared it gives up what it owned.
                tracing::warn!(
                    gid = self.gid,
                    shard,
                    config_num = next_num,
                    new_owner = after,
                    "shard dropped: the configuration gives it to a group declared lost"
                );
                self.shards.remove(&shard);
            }
            Some(ShardState::Serving) if after == self.gid => {}
            Some(ShardState::Serving | ShardState::Parked) => {
                let now_ms = self.now_ms;
                let held = self
                    .shards
                    .get_mut(&shard)
                    .unwrap_or_else(|| panic!("group {}: shard {shard} vanished", self.gid));
                if after == self.gid {
                    // Parked here and given back here: served again, its
                    // time continuing from where it froze, at the group's
                    // size.
                    held.resume(now_ms);
                    held.state = ShardState::Serving;
                    let logged = self
                        .capacity_logged
                        .then_some(self.limits.store.capacity_bytes);
                    take_logged_capacity(&mut held.store, logged);
                } else {
                    // Frozen now: its time stops here, so a TTL keeps the
                    // time it had left when it arrives elsewhere. With no
                    // group to take it, it stays here, parked.
                    held.advance(now_ms);
                    held.state = if after == UNASSIGNED {
                        ShardState::Parked
                    } else {
                        ShardState::Offering { to: after }
                    };
                }
            }
            Some(state) => panic!(
                "group {}: shard {shard} is {state:?} while configuration {} is applied",
                self.gid, self.config.num
            ),
        }
    }

    /// The donor of `shard` if it is `Pulling` in configuration
    /// `config_num` here.
    fn pulling_from(&self, config_num: u64, shard: ShardId) -> Option<Gid> {
        if config_num != self.config.num {
            return None;
        }
        match self.shards.get(&shard)?.state {
            ShardState::Pulling { from } => Some(from),
            _ => None,
        }
    }

    fn install(&mut self, config_num: u64, transfers: &[ShardTransfer]) -> Vec<ShardId> {
        let mut installed = Vec::new();
        for transfer in transfers {
            // Not pulling it: installed already (a duplicate) or stale.
            let Some(from) = self.pulling_from(config_num, transfer.shard) else {
                continue;
            };
            match self.install_one(transfer, from) {
                Ok(()) => installed.push(transfer.shard),
                Err(reason) => tracing::warn!(
                    gid = self.gid,
                    shard = transfer.shard,
                    "refused a malformed shard transfer: {reason}"
                ),
            }
        }
        installed
    }

    /// Installs a `Pulling` shard's data: served from here on, its donor
    /// still to be told.
    fn install_one(&mut self, transfer: &ShardTransfer, from: Gid) -> Result<(), String> {
        let store = self
            .restored_store(transfer.shard, &transfer.store)
            .map_err(|error| error.to_string())?;
        let shard = Shard::import(
            transfer,
            store,
            ShardState::Confirming { from },
            &self.limits,
            self.now_ms,
        )?;
        self.shards.insert(transfer.shard, shard);
        self.incoming.remove(&transfer.shard);
        Ok(())
    }

    /// Keeps one piece of a shard being pulled; the last one installs it.
    /// A malformed piece or whole is refused and nothing of it is kept.
    fn apply_chunk(&mut self, config_num: u64, chunk: &ShardChunk) -> ChunkOutcome {
        let Some(from) = self.pulling_from(config_num, chunk.shard) else {
            return ChunkOutcome::Ignored;
        };
        let refused = |reason: String, restarted: bool| {
            tracing::warn!(
                shard = chunk.shard,
                offset = chunk.offset,
                "refused a piece of a shard transfer: {reason}"
            );
            ChunkOutcome::Refused { reason, restarted }
        };
        if let Err(reason) = IncomingShard::check_chunk(chunk, max_transfer_bytes(&self.limits)) {
            return refused(reason, false);
        }
        let mut staged = self.incoming.remove(&chunk.shard);
        let added = IncomingShard::add(&mut staged, chunk);
        if let Some(incoming) = staged {
            self.incoming.insert(chunk.shard, incoming);
        }
        match added {
            Added::Partial(received_bytes) => ChunkOutcome::Stored { received_bytes },
            Added::Ignored => ChunkOutcome::Ignored,
            Added::Refused { reason, restarted } => refused(reason, restarted),
            Added::Complete(whole) => {
                let installed = ShardTransfer::decode(&whole).and_then(|transfer| {
                    if transfer.shard != chunk.shard {
                        return Err(format!(
                            "the transfer holds shard {}, not {}",
                            transfer.shard, chunk.shard
                        ));
                    }
                    self.install_one(&transfer, from)
                });
                match installed {
                    Ok(()) => ChunkOutcome::Installed,
                    Err(reason) => refused(reason, true),
                }
            }
        }
    }

    /// Deletes the shards offered to `from_gid` in `config_num`; a shard
    /// offered to another group stays (`WrongReceiver`).
    fn delete_offered(
        &mut self,
        config_num: u64,
        shards: &[ShardId],
        from_gid: Gid,
    ) -> Result<(), MigrationError> {
        let current = self.config.num;
        if config_num > current {
            return Err(MigrationError::NotReady {
                donor_config_num: current,
                wanted: config_num,
            });
        }
        if config_num < current {
            // Moving on required every offered shard to be deleted.
            return Ok(());
        }
        let mut result = Ok(());
        for &shard in shards {
            match self.shards.get(&shard).map(|held| held.state) {
                Some(ShardState::Offering { to }) if to == from_gid => {
                    self.shards.remove(&shard);
                }
                None => {}
                Some(_) => result = self.offered_to(config_num, shard, from_gid),
            }
        }
        result
    }

    fn confirm(&mut self, config_num: u64, shards: &[ShardId]) -> Vec<ShardId> {
        if config_num != self.config.num {
            return Vec::new();
        }
        let mut confirmed = Vec::new();
        for &shard in shards {
            if let Some(held) = self.shards.get_mut(&shard)
                && matches!(held.state, ShardState::Confirming { .. })
            {
                held.state = ShardState::Serving;
                confirmed.push(shard);
            }
        }
        confirmed
    }

    /// An empty store for `shard`, with the group's disk tier if it has
    /// one.
    fn empty_store(&self, shard: ShardId) -> Store {
        empty_store(
            self.disk.as_ref(),
            shard,
            self.limits.store,
            self.policy_revision,
        )
    }

    /// A store from a transfer's [`Store::snapshot`] bytes, with the
    /// group's disk tier if it has one (whatever tier the donor had:
    /// [`Store::settle_disk`]).
    ///
    /// Once the group's capacity is logged, the store takes it (the
    /// donor's may differ), evicting if it must; before, it keeps the
    /// donor's (the same on every replica) until the first one applies.
    fn restored_store(&self, shard: ShardId, bytes: &[u8]) -> Result<Store, cache::StoreError> {
        let mut store = match &self.disk {
            Some(placement) => placement.restored(shard, self.limits.store, bytes),
            None => Store::restore_for(bytes, None),
        }?;
        let logged = self
            .capacity_logged
            .then_some(self.limits.store.capacity_bytes);
        store.set_policy_revision(self.policy_revision);
        take_logged_capacity(&mut store, logged);
        Ok(store)
    }

    /// The whole machine as bytes (the shared `codec`), for a Raft
    /// snapshot (the same bytes as `ReplicatedMachine::snapshot`): behind
    /// a version header (the machine snapshot's format, 5), the machine,
    /// each disk tier's section (none without tiers), the write fence's
    /// marker, whether the stores' capacity is logged and their policy
    /// revision. Formats 1 to 4 are still read. Two
    /// replicas that applied the same commands give the same bytes,
    /// whatever their files.
    ///
    /// # Panics
    /// If a disk tier cannot read a value back: this replica lost data
    /// (the rsm stops a replica whose snapshot encoding panics).
    pub fn snapshot(&self) -> Vec<u8> {
        let tiers = self.disk_sections();
        codec::encode_versioned_into_capacity(
            &[SNAPSHOT_FORMAT],
            &(
                self,
                &tiers,
                self.pollers_may_exist,
                self.capacity_logged,
                self.policy_revision.number(),
            ),
            self.snapshot_estimate_bytes(),
        )
    }

    /// [`ShardMachine::snapshot`]'s bytes, appended to `out`, from a
    /// machine given up for it (the rsm's copy): each shard is dropped as
    /// soon as it is written, so the copy shrinks while its bytes grow and
    /// the two are never both whole. Written field by field in the order
    /// serde writes them (a struct: its fields one after another; a map:
    /// its length, then each key and value); the destructuring below names
    /// every field, so a field added to the machine does not compile here
    /// until it is written, and the tests compare the bytes with
    /// `snapshot`'s.
    ///
    /// # Panics
    /// As [`ShardMachine::snapshot`].
    pub fn snapshot_into(self, out: &mut Vec<u8>) {
        fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
            codec::encode_into(value, out).unwrap_or_else(|error| {
                panic!("{} failed to encode: {error}", std::any::type_name::<T>())
            });
        }
        let tiers = self.disk_sections();
        // The version header (the mark and one version), then the machine.
        out.reserve(1 + 1 + self.snapshot_estimate_bytes());
        codec::encode_versions_into(&[SNAPSHOT_FORMAT], out);
        let ShardMachine {
            gid,
            limits,
            now_ms,
            config,
            previous,
            shards,
            incoming,
            lost_groups,
            shards_lost_total,
            disk: _,
            pollers_may_exist,
            capacity_logged,
            policy_revision,
        } = self;
        put(out, &gid);
        put(out, &limits);
        put(out, &now_ms);
        put(out, &config);
        put(out, &previous);
        put(out, &(shards.len() as u64));
        for (shard, held) in shards {
            put(out, &shard);
            put(out, &held);
        }
        put(out, &incoming);
        put(out, &lost_groups);
        put(out, &shards_lost_total);
        put(out, &tiers);
        put(out, &pollers_may_exist);
        put(out, &capacity_logged);
        put(out, &policy_revision.number());
    }

    /// Each shard's disk tier section, for a snapshot (none without tiers).
    fn disk_sections(&self) -> BTreeMap<ShardId, DiskSnapshot> {
        let mut tiers: BTreeMap<ShardId, DiskSnapshot> = BTreeMap::new();
        for (&shard, held) in &self.shards {
            let section = held.store.disk_snapshot().unwrap_or_else(|error| {
                panic!(
                    "group {}: shard {shard}'s disk tier cannot be written out: {error}",
                    self.gid
                )
            });
            if let Some(section) = section {
                tiers.insert(shard, section);
            }
        }
        tiers
    }

    /// Room for about what the stores encode to
    /// ([`Store::snapshot_size_hint`]: their charged bytes and a bound for
    /// their policies' records; a disk tier's values are not counted, and
    /// the buffer grows for them as it would anyway): one allocation
    /// rather than a doubling buffer's.
    fn snapshot_estimate_bytes(&self) -> usize {
        let estimate = self
            .shards
            .values()
            .map(|held| held.store.snapshot_size_hint())
            .sum::<u64>();
        usize::try_from(estimate).unwrap_or(0)
    }

    /// Rebuilds a machine from [`ShardMachine::snapshot`] bytes (decoded
    /// within `codec::STATE_LIMIT`), checking that it is consistent. A
    /// snapshot with disk tiers needs a replica's placement:
    /// [`ShardMachine::restore_here`].
    pub fn restore(bytes: &[u8]) -> Result<ShardMachine, String> {
        let (machine, tiers) = decode_snapshot(bytes)?;
        if !tiers.is_empty() {
            return Err(
                "snapshot has disk tiers: restore it on a replica (ShardMachine::restore_here)"
                    .to_owned(),
            );
        }
        machine.check_invariants()?;
        Ok(machine)
    }

    /// Rebuilds a machine from [`ShardMachine::snapshot`] bytes to replace
    /// this replica's: its local settings (the disk tier's config and
    /// placement) carry over, and every shard's store gets this group's
    /// tier in a fresh directory, rebuilt from the snapshot's section
    /// ([`Store::settle_disk`]: the same on every replica configured
    /// alike). A failure of the files is this replica's fault
    /// ([`ShardMachine::disk_fault`]), not an error of the snapshot.
    pub fn restore_here(&self, bytes: &[u8]) -> Result<ShardMachine, String> {
        let (mut machine, mut tiers) = decode_snapshot(bytes)?;
        machine.limits.store.disk = self.limits.store.disk;
        machine.disk = self.disk.clone();
        let disk_config = machine.limits.store.disk;
        for (&shard, held) in machine.shards.iter_mut() {
            let tier = tiers.remove(&shard);
            let settled = match &machine.disk {
                Some(placement) => placement.settle(shard, disk_config, &mut held.store, tier),
                None => held.store.settle_disk(tier, None),
            };
            settled.map_err(|error| format!("snapshot shard {shard}: {error}"))?;
        }
        if let Some(shard) = tiers.keys().next() {
            return Err(format!(
                "snapshot has a disk tier section for shard {shard}, which it does not hold"
            ));
        }
        machine.check_invariants()?;
        Ok(machine)
    }

    /// Every held shard is consistent with the configurations.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.config.shard_count() != self.previous.shard_count() {
            return Err("current and previous configurations differ in shard count".into());
        }
        for (&shard, held) in &self.shards {
            held.store.check_invariants()?;
            if held.store.policy_revision() != self.policy_revision {
                return Err(format!(
                    "shard {shard}'s store keeps to policy revision {:?}, the group to {:?}",
                    held.store.policy_revision(),
                    self.policy_revision
                ));
            }
            let owner = self.config.owner(shard);
            let owned = owner == Some(self.gid);
            let consistent = match held.state {
                ShardState::Offering { to } => owner == Some(to) && !owned,
                ShardState::Parked => {
                    owner == Some(UNASSIGNED)
                        && self.config.parked_shards.get(&shard) == Some(&self.gid)
                }
                _ => owned,
            };
            if !consistent {
                return Err(format!(
                    "shard {shard} is {:?} but configuration {} gives it to {owner:?}",
                    held.state, self.config.num
                ));
            }
        }
        if self.is_declared_lost() && !self.shards.is_empty() {
            return Err(format!(
                "group {} was declared lost but holds shards",
                self.gid
            ));
        }
        // A group declared lost holds nothing, whatever it owned.
        let owned = if self.is_declared_lost() {
            Vec::new()
        } else {
            self.config.shards_of(self.gid)
        };
        for shard in owned {
            if !self.shards.contains_key(&shard) {
                return Err(format!("owned shard {shard} is not held"));
            }
        }
        let max_bytes = max_transfer_bytes(&self.limits);
        for (&shard, incoming) in &self.incoming {
            if self.pull_progress(shard).is_none() {
                return Err(format!(
                    "pieces are kept for shard {shard}, not being pulled"
                ));
            }
            if incoming.total_bytes > max_bytes
                || incoming.bytes.len() as u64 >= incoming.total_bytes
            {
                return Err(format!(
                    "shard {shard}: {} bytes kept of a {}-byte transfer (bound {max_bytes})",
                    incoming.bytes.len(),
                    incoming.total_bytes
                ));
            }
        }
        Ok(())
    }
}

/// An empty store for `shard` with `config`'s tier, placed by `disk`,
/// keeping to the policy `revision`.
fn empty_store(
    disk: Option<&DiskPlacement>,
    shard: ShardId,
    config: cache::StoreConfig,
    revision: PolicyRevision,
) -> Store {
    let mut store = match disk {
        Some(placement) => placement.empty_store(shard, config),
        None => Store::new(config),
    };
    store.set_policy_revision(revision);
    store
}

/// Resizes `store` to the group's store capacity once one is logged
/// (`logged`; see [`GroupCommand::SetStoreCapacity`]), evicting if it
/// must; before, a store keeps the size it was made with.
fn take_logged_capacity(store: &mut Store, logged: Option<u64>) {
    if let Some(capacity_bytes) = logged
        && store.config().capacity_bytes != capacity_bytes
    {
        store.set_capacity_bytes(capacity_bytes);
    }
}

/// The machine (its stores without their tiers) and the tiers' sections.
fn decode_snapshot(
    bytes: &[u8],
) -> Result<(ShardMachine, BTreeMap<ShardId, DiskSnapshot>), String> {
    let decode_error = |error: codec::CodecError| format!("snapshot {error}");
    let (versions, body) =
        codec::split_versions(bytes, &[SNAPSHOT_FORMAT]).map_err(decode_error)?;
    type Parts = (
        ShardMachine,
        BTreeMap<ShardId, DiskSnapshot>,
        bool,
        bool,
        u32,
    );
    let original = PolicyRevision::Original.number();
    let parts: Parts = match versions[..] {
        [1] => {
            let machine = codec::decode(body, codec::STATE_LIMIT).map_err(decode_error)?;
            (machine, BTreeMap::new(), true, false, original)
        }
        [2] => {
            let (machine, tiers) = codec::decode(body, codec::STATE_LIMIT).map_err(decode_error)?;
            (machine, tiers, true, false, original)
        }
        [3] => {
            let (machine, tiers, pollers) =
                codec::decode(body, codec::STATE_LIMIT).map_err(decode_error)?;
            (machine, tiers, pollers, false, original)
        }
        [4] => {
            let (machine, tiers, pollers, capacity) =
                codec::decode(body, codec::STATE_LIMIT).map_err(decode_error)?;
            (machine, tiers, pollers, capacity, original)
        }
        _ => codec::decode(body, codec::STATE_LIMIT).map_err(decode_error)?,
    };
    let (mut machine, tiers, pollers_may_exist, capacity_logged, revision) = parts;
    machine.pollers_may_exist = pollers_may_exist;
    machine.capacity_logged = capacity_logged;
    machine.policy_revision = PolicyRevision::from_number(revision).ok_or_else(|| {
        format!("snapshot names policy revision {revision}, unknown to this build")
    })?;
    // The stores' bytes do not carry it (`cache::PolicyRevision`).
    for held in machine.shards.values_mut() {
        held.store.set_policy_revision(machine.policy_revision);
    }
    Ok((machine, tiers))
}
