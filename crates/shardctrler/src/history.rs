//! The controller's pure state: every configuration ever made, and the
//! four operations on it.
//!
//! Sans-IO and deterministic: the same operations in the same order give
//! the same configurations (and the same answers) on every replica. A
//! request that is refused returns a typed [`ConfigError`] and changes
//! nothing; an accepted Join, Leave, Move or BalanceLoad appends exactly
//! one new configuration, numbered one more than the latest, except a
//! Move of a shard to the group that already owns it, or a BalanceLoad
//! that finds no move worth making, which appends none and answers the
//! latest number.
//!
//! ## Retention: what groups still need, at most K
//!
//! shardkv groups walk the configurations one number at a time (a group
//! that was down catches up through every intermediate configuration to
//! hand shards over in order), so a configuration that some group has not
//! yet passed must stay queryable. Groups say how far they are with
//! [`ConfigOp::Report`] (a group's leader sends one each time its group
//! applied a newer configuration: a log entry per group per change, none
//! while nothing changes). The oldest configuration `o` is dropped once
//! every group listed (as a member or as the holder of parked shards) in
//! any retained configuration has reported a number above `o`: such a
//! group asks only for numbers above what it reported. A group no retained
//! configuration lists needs nothing the others do not: it holds no shard
//! (it handed them over before the others could pass its leave), so it may
//! jump to the oldest retained configuration (shardkv does: see its
//! `apply_config`).
//!
//! On top of that, at most [`Limits::max_retained_configs`] (K) are kept
//! whatever the reports say, so memory and snapshots stay bounded even
//! when a group never reports (down for good, or an old version). A query
//! of a dropped number gets [`ConfigError::Pruned`], naming the oldest
//! retained one. A group that held shards and fell more than K changes
//! behind cannot hand them over in order any more: it stays at its number
//! and says so (shardkv logs the error on every poll); its shards are lost
//! to the others unless an operator brings it back with its data. Reports
//! are kept only for groups a retained configuration lists, so the report
//! table is bounded too.
//!
//! The jump of a group that holds nothing strands no shard that the drop
//! had not stranded already: if a configuration it skipped named it a
//! shard's owner, only the hard bound dropped that configuration (the
//! group is listed there and had not reported past it), and some other
//! group is already waiting on it there (the frozen donor, or the next
//! owner of a shard nobody held), which staying put would not help.
//! docs/design.md ("Shards and the controller") walks through it.
//!
//! ## Lost groups
//!
//! A group whose replicas are all gone for good cannot hand its shards
//! over, and a group waiting for one of them would wait forever (and, not
//! moving on, block the groups waiting on it in turn). An operator may
//! declare it lost ([`ConfigOp::DeclareLost`]): the group is removed as by
//! a Leave and recorded in [`Config::lost_groups`] of that configuration
//! and every later one. A lost group needs no configuration kept for it,
//! may never join again under its gid ([`ConfigError::GroupLost`]), and
//! shardkv groups install the shards it should have handed over empty.
//! Declaring the last group lost is refused ([`ConfigError::LastGroup`]);
//! at most [`Limits::max_groups`] groups are recorded lost.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Gid, UNASSIGNED};
use crate::load::{HYSTERESIS_PERCENT, balance_load};
use crate::placement::rebalance;

/// An operation on the configurations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOp {
    /// Add groups (gid -> its servers); shards are rebalanced.
    Join {
        groups: BTreeMap<Gid, Vec<SocketAddr>>,
    },
    /// Remove groups; their shards go to the others.
    Leave { gids: Vec<Gid> },
    /// Give one shard to one group, without rebalancing (for tests and
    /// operators; the next Join or Leave rebalances).
    Move { shard: usize, gid: Gid },
    /// Read configuration `num` (`None`: the latest).
    Query { num: Option<u64> },
    /// Read configuration `num` (`None`: the latest) as the replica that
    /// answers has applied it, without a log entry: a number that exists
    /// there is answered by any replica (it never changes); otherwise the
    /// replica that believes it leads answers from what it has applied, so
    /// "not yet" or "the latest" may lag the committed state by a moment.
    /// For pollers and routing (shardkv groups and clerks), which simply ask
    /// again; a linearizable read is [`ConfigOp::Query`].
    QueryApplied { num: Option<u64> },
    /// Group `gid` has applied configuration `num`: it will never ask for
    /// `num` or anything older again. Lets the controller drop old
    /// configurations (see the module docs). Idempotent (a report of a
    /// number at or below the recorded one changes nothing), so it is not
    /// recorded for exactly-once.
    Report { gid: Gid, num: u64 },
    /// An operator declares group `gid` lost for good (every replica gone
    /// with its disks): it is removed as Leave would remove it (its shards
    /// rebalanced onto the others) and recorded in every later
    /// configuration's [`Config::lost_groups`]. Its data is gone: each
    /// group waiting for a shard from it installs the shard empty and says
    /// so, and it may never join again under this gid. Idempotent: declaring
    /// a group that is already lost makes no configuration and answers the
    /// latest number. Exactly once like Join/Leave/Move. Refused for a gid
    /// no kept configuration lists, and for the last group (there would be
    /// nobody left to serve).
    DeclareLost { gid: Gid },
    /// Group `gid`'s replicas changed (an operator added, removed or
    /// replaced one): the next configuration lists `servers` for it and
    /// moves no shard, so forwarders and migration reach the replicas it
    /// has now. Refused for a group the latest configuration does not
    /// list; the same servers again make no configuration (the latest
    /// number is answered). Exactly once like Join/Leave/Move.
    SetServers { gid: Gid, servers: Vec<SocketAddr> },
    /// Move up to `max_moves` shards off the busiest groups, given each
    /// shard's recent load (`loads[s]` for shard `s`: requests per
    /// interval, in any unit the same for all shards). The placement is
    /// [`crate::load::balance_load`] with the margin
    /// [`HYSTERESIS_PERCENT`]: the maximum group load never rises, and with
    /// equal loads a count-balanced placement is left alone. Makes a
    /// configuration only if a shard moves (otherwise the latest number is
    /// answered, as for a Move that changes nothing). Exactly once like
    /// Join/Leave/Move. Refused unless there is one load per shard and
    /// `max_moves` is between 1 and the shard count.
    BalanceLoad { loads: Vec<u64>, max_moves: usize },
}

impl ConfigOp {
    /// The operation's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            ConfigOp::Join { .. } => "Join",
            ConfigOp::Leave { .. } => "Leave",
            ConfigOp::Move { .. } => "Move",
            ConfigOp::Query { .. } => "Query",
            ConfigOp::QueryApplied { .. } => "QueryApplied",
            ConfigOp::Report { .. } => "Report",
            ConfigOp::DeclareLost { .. } => "DeclareLost",
            ConfigOp::SetServers { .. } => "SetServers",
            ConfigOp::BalanceLoad { .. } => "BalanceLoad",
        }
    }

    /// Join, Leave, Move, DeclareLost, SetServers and BalanceLoad:
    /// executed once per `(client_id, seq)`, their answer recorded for
    /// retries. Queries and reports are not.
    pub fn is_recorded(&self) -> bool {
        matches!(
            self,
            ConfigOp::Join { .. }
                | ConfigOp::Leave { .. }
                | ConfigOp::Move { .. }
                | ConfigOp::DeclareLost { .. }
                | ConfigOp::SetServers { .. }
                | ConfigOp::BalanceLoad { .. }
        )
    }

    /// Queries change nothing, so they are never recorded for exactly-once.
    pub fn is_read(&self) -> bool {
        matches!(self, ConfigOp::Query { .. } | ConfigOp::QueryApplied { .. })
    }

    /// The checks that do not depend on the configurations (empty request,
    /// gid 0, server lists, a gid listed twice, shard range, one load per
    /// shard and a move limit within the shard count): a server runs
    /// them before proposing, so such a request costs no log entry, and
    /// [`ConfigHistory::apply`] runs them again.
    pub fn check_shape(&self, limits: &Limits) -> Result<(), ConfigError> {
        match self {
            ConfigOp::Join { groups } => {
                if groups.is_empty() {
                    return Err(ConfigError::EmptyRequest);
                }
                if groups.len() > limits.max_groups {
                    return Err(ConfigError::TooManyGroups {
                        count: groups.len(),
                        limit: limits.max_groups,
                    });
                }
                for (&gid, servers) in groups {
                    if gid == UNASSIGNED {
                        return Err(ConfigError::ReservedGid);
                    }
                    if servers.is_empty() {
                        return Err(ConfigError::NoServers { gid });
                    }
                    if servers.len() > limits.max_servers_per_group {
                        return Err(ConfigError::TooManyServers {
                            gid,
                            count: servers.len(),
                            limit: limits.max_servers_per_group,
                        });
                    }
                }
                Ok(())
            }
            ConfigOp::Leave { gids } => {
                if gids.is_empty() {
                    return Err(ConfigError::EmptyRequest);
                }
                let mut seen = BTreeSet::new();
                for &gid in gids {
                    if gid == UNASSIGNED {
                        return Err(ConfigError::ReservedGid);
                    }
                    if !seen.insert(gid) {
                        return Err(ConfigError::DuplicateGid { gid });
                    }
                }
                Ok(())
            }
            ConfigOp::Move { shard, gid } => {
                if *shard >= limits.shard_count {
                    return Err(ConfigError::ShardOutOfRange {
                        shard: *shard,
                        shard_count: limits.shard_count,
                    });
                }
                if *gid == UNASSIGNED {
                    return Err(ConfigError::ReservedGid);
                }
                Ok(())
            }
            ConfigOp::Report { gid, .. } | ConfigOp::DeclareLost { gid } => {
                if *gid == UNASSIGNED {
                    return Err(ConfigError::ReservedGid);
                }
                Ok(())
            }
            ConfigOp::SetServers { gid, servers } => {
                if *gid == UNASSIGNED {
                    return Err(ConfigError::ReservedGid);
                }
                if servers.is_empty() {
                    return Err(ConfigError::NoServers { gid: *gid });
                }
                if servers.len() > limits.max_servers_per_group {
                    return Err(ConfigError::TooManyServers {
                        gid: *gid,
                        count: servers.len(),
                        limit: limits.max_servers_per_group,
                    });
                }
                Ok(())
            }
            ConfigOp::BalanceLoad { loads, max_moves } => {
                if loads.len() != limits.shard_count {
                    return Err(ConfigError::LoadCount {
                        count: loads.len(),
                        shard_count: limits.shard_count,
                    });
                }
                if *max_moves == 0 || *max_moves > limits.shard_count {
                    return Err(ConfigError::MoveLimit {
                        max_moves: *max_moves,
                        shard_count: limits.shard_count,
                    });
                }
                Ok(())
            }
            ConfigOp::Query { .. } | ConfigOp::QueryApplied { .. } => Ok(()),
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigAnswer {
    /// A change made configuration `num` (a change that changed nothing,
    /// such as a Move to the current owner, a DeclareLost of a lost group
    /// or a BalanceLoad that found nothing to move: `num` is the latest,
    /// unchanged).
    Changed { num: u64 },
    /// The configuration a Query asked for.
    Config(Config),
    /// A Report was taken: the oldest configuration still kept.
    Reported { oldest: u64 },
}

/// Why a request was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ConfigError {
    #[error("gid {UNASSIGNED} is reserved for unassigned shards")]
    ReservedGid,
    #[error("group {gid} has already joined")]
    GroupExists { gid: Gid },
    #[error("group {gid} is not in the latest configuration")]
    UnknownGroup { gid: Gid },
    #[error("group {gid} is listed twice")]
    DuplicateGid { gid: Gid },
    #[error("group {gid} has no servers")]
    NoServers { gid: Gid },
    #[error("group {gid} lists {count} servers, more than the limit of {limit}")]
    TooManyServers {
        gid: Gid,
        count: usize,
        limit: usize,
    },
    #[error("{count} groups would exceed the limit of {limit}")]
    TooManyGroups { count: usize, limit: usize },
    #[error("the request names no groups")]
    EmptyRequest,
    #[error("shard {shard} is out of range (the service has {shard_count} shards)")]
    ShardOutOfRange { shard: usize, shard_count: usize },
    #[error("configuration {num} does not exist yet (the latest is {latest})")]
    FutureConfig { num: u64, latest: u64 },
    /// Configuration `num` was made but is no longer kept (see the module
    /// docs on retention); `oldest` is the oldest one kept.
    #[error(
        "configuration {num} is no longer kept (the oldest kept is {oldest}); a group that \
         still needs it fell too far behind"
    )]
    Pruned { num: u64, oldest: u64 },
    /// The group was declared lost ([`ConfigOp::DeclareLost`]) in
    /// configuration `declared_in`: its gid may not join again (its old
    /// replicas could otherwise serve data the others already gave up).
    #[error(
        "group {gid} was declared lost in configuration {declared_in} and may not join again; \
         use a new gid"
    )]
    GroupLost { gid: Gid, declared_in: u64 },
    /// Declaring `gid` lost would leave no group to serve the shards.
    #[error("group {gid} is the last group; declaring it lost would leave no group to serve")]
    LastGroup { gid: Gid },
    /// As many groups are recorded lost as the configuration may list
    /// groups ([`Limits::max_groups`]).
    #[error("{count} groups are already declared lost, the limit")]
    TooManyLostGroups { count: usize },
    /// A BalanceLoad must give one load per shard.
    #[error("{count} loads given; the service has {shard_count} shards, one load each")]
    LoadCount { count: usize, shard_count: usize },
    /// A BalanceLoad may move between 1 and the shard count of shards.
    #[error("a limit of {max_moves} moves is outside 1..={shard_count} (the shard count)")]
    MoveLimit {
        max_moves: usize,
        shard_count: usize,
    },
}

/// Bounds on what a configuration may hold; identical on every replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Shards of the service (10 in the lab tests).
    pub shard_count: usize,
    /// Groups in one configuration.
    pub max_groups: usize,
    /// Servers listed for one group.
    pub max_servers_per_group: usize,
    /// Configurations kept at most (K, at least 2), whatever the groups
    /// report: older ones answer [`ConfigError::Pruned`].
    pub max_retained_configs: usize,
}

impl Limits {
    /// `shard_count` shards, at most 1024 groups of at most 64 servers,
    /// at most 256 configurations kept.
    pub fn new(shard_count: usize) -> Limits {
        Limits {
            shard_count,
            max_groups: 1024,
            max_servers_per_group: 64,
            max_retained_configs: 256,
        }
    }
}

/// Parked shards only while no group is listed, each unassigned, held by a
/// group whose servers are listed, and no servers for a group holding none.
fn check_parked(config: &Config) -> Result<(), String> {
    let num = config.num;
    if !config.groups.is_empty() && !config.parked_shards.is_empty() {
        return Err(format!(
            "configuration {num} parks shards while groups are listed"
        ));
    }
    for (&shard, &gid) in &config.parked_shards {
        if config.owner(shard) != Some(UNASSIGNED) || gid == UNASSIGNED {
            return Err(format!(
                "configuration {num} parks shard {shard} with group {gid} but assigns it to {:?}",
                config.owner(shard)
            ));
        }
        if !config.parked_groups.contains_key(&gid) {
            return Err(format!(
                "configuration {num} parks shard {shard} with group {gid} but lists no servers for it"
            ));
        }
    }
    let holders: BTreeSet<Gid> = config.parked_shards.values().copied().collect();
    if let Some(gid) = config
        .parked_groups
        .keys()
        .find(|gid| !holders.contains(gid))
    {
        return Err(format!(
            "configuration {num} lists servers for group {gid}, which holds no parked shard"
        ));
    }
    Ok(())
}

/// Lost groups are listed nowhere else, each declared at or before the
/// configuration, at most `max_groups` of them, and none forgotten since
/// the configuration before (`previous`).
fn check_lost(
    config: &Config,
    previous: Option<&BTreeMap<Gid, u64>>,
    max_groups: usize,
) -> Result<(), String> {
    let num = config.num;
    if config.lost_groups.len() > max_groups {
        return Err(format!(
            "configuration {num} lists {} lost groups, over the limit of {max_groups}",
            config.lost_groups.len()
        ));
    }
    for (&gid, &declared_in) in &config.lost_groups {
        if gid == UNASSIGNED || declared_in > num || declared_in == 0 {
            return Err(format!(
                "configuration {num} lists group {gid} as lost in configuration {declared_in}"
            ));
        }
        if config.groups.contains_key(&gid) || config.parked_groups.contains_key(&gid) {
            return Err(format!(
                "configuration {num} lists group {gid} both as lost and as a holder of shards"
            ));
        }
    }
    if let Some(previous) = previous
        && let Some((gid, _)) = previous
            .iter()
            .find(|(gid, at)| config.lost_groups.get(gid) != Some(at))
    {
        return Err(format!(
            "configuration {num} forgets (or redates) lost group {gid}"
        ));
    }
    Ok(())
}

/// The retained configurations and the groups' reports. See the module
/// docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigHistory {
    limits: Limits,
    /// Consecutive numbers, the oldest retained first, the latest last;
    /// never empty.
    configs: VecDeque<Config>,
    /// The latest configuration each group reported it applied, for the
    /// groups a retained configuration lists.
    reported: BTreeMap<Gid, u64>,
}

impl ConfigHistory {
    /// Just configuration 0: no groups, every shard unassigned.
    ///
    /// # Panics
    /// If `limits.shard_count` is 0 or `limits.max_retained_configs` is
    /// below 2 (a group catching up needs the one it is at and the next).
    pub fn new(limits: Limits) -> ConfigHistory {
        assert!(limits.shard_count > 0, "a service needs at least one shard");
        assert!(
            limits.max_retained_configs >= 2,
            "at least two configurations must be kept"
        );
        ConfigHistory {
            limits,
            configs: VecDeque::from([Config::initial(limits.shard_count)]),
            reported: BTreeMap::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn latest(&self) -> &Config {
        self.configs.back().expect("a configuration is always kept")
    }

    /// The number of the oldest configuration kept.
    pub fn oldest(&self) -> u64 {
        self.configs
            .front()
            .expect("a configuration is always kept")
            .num
    }

    /// Configuration `num`, if it exists and is kept.
    pub fn get(&self, num: u64) -> Option<&Config> {
        let position = num.checked_sub(self.oldest())?;
        usize::try_from(position)
            .ok()
            .and_then(|position| self.configs.get(position))
    }

    /// The retained configurations, oldest first.
    pub fn retained(&self) -> impl Iterator<Item = &Config> {
        self.configs.iter()
    }

    /// How many configurations are kept (at most
    /// [`Limits::max_retained_configs`]).
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// Never true: the latest configuration is always kept.
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// The latest configuration each group reported it applied (groups a
    /// retained configuration lists and that reported).
    pub fn reported(&self) -> &BTreeMap<Gid, u64> {
        &self.reported
    }

    /// Checks what every history satisfies (for a restored snapshot):
    /// consecutive numbers, at most `max_retained_configs` of them,
    /// `shard_count` shards each, every shard on a listed group (or
    /// unassigned while there are none), the limits hold, and reports only
    /// of listed groups and of numbers that exist.
    pub fn check_invariants(&self) -> Result<(), String> {
        let Some(first) = self.configs.front() else {
            return Err("no configuration".into());
        };
        if self.configs.len() > self.limits.max_retained_configs {
            return Err(format!(
                "{} configurations kept, over the limit of {}",
                self.configs.len(),
                self.limits.max_retained_configs
            ));
        }
        let first = first.num;
        let mut previous_lost = None;
        for (position, config) in self.configs.iter().enumerate() {
            let expected = first + position as u64;
            if config.num != expected {
                return Err(format!(
                    "configuration {expected} is numbered {}",
                    config.num
                ));
            }
            let position = config.num;
            if config.shards.len() != self.limits.shard_count {
                return Err(format!(
                    "configuration {position} has {} shards, the service {}",
                    config.shards.len(),
                    self.limits.shard_count
                ));
            }
            if config.groups.len() > self.limits.max_groups {
                return Err(format!(
                    "configuration {position} has {} groups, over the limit",
                    config.groups.len()
                ));
            }
            let listed = |gid: &Gid| {
                config.groups.contains_key(gid) || (config.groups.is_empty() && *gid == UNASSIGNED)
            };
            let stray = config.shards.iter().position(|gid| !listed(gid));
            if let Some(shard) = stray {
                return Err(format!(
                    "configuration {position} puts shard {shard} on unlisted group {}",
                    config.shards[shard]
                ));
            }
            check_parked(config)?;
            check_lost(config, previous_lost, self.limits.max_groups)?;
            previous_lost = Some(&config.lost_groups);
        }
        let listed = self.listed_gids();
        let latest = self.latest().num;
        for (&gid, &num) in &self.reported {
            if !listed.contains(&gid) {
                return Err(format!(
                    "a report of group {gid}, which no kept configuration lists"
                ));
            }
            if num > latest {
                return Err(format!(
                    "group {gid} reported configuration {num}, beyond the latest {latest}"
                ));
            }
        }
        Ok(())
    }

    /// Applies one operation. A refused one changes nothing.
    pub fn apply(&mut self, op: &ConfigOp) -> Result<ConfigAnswer, ConfigError> {
        op.check_shape(&self.limits)?;
        let answer = match op {
            ConfigOp::Join { groups } => self.join(groups),
            ConfigOp::Leave { gids } => self.leave(gids),
            ConfigOp::Move { shard, gid } => self.move_shard(*shard, *gid),
            ConfigOp::Query { num } | ConfigOp::QueryApplied { num } => {
                return self.query(*num).map(ConfigAnswer::Config);
            }
            ConfigOp::Report { gid, num } => self.report(*gid, *num),
            ConfigOp::DeclareLost { gid } => self.declare_lost(*gid),
            ConfigOp::SetServers { gid, servers } => self.set_servers(*gid, servers),
            ConfigOp::BalanceLoad { loads, max_moves } => Ok(self.balance_load(loads, *max_moves)),
        }?;
        self.prune();
        if let ConfigAnswer::Reported { .. } = answer {
            return Ok(ConfigAnswer::Reported {
                oldest: self.oldest(),
            });
        }
        Ok(answer)
    }

    /// Configuration `num` (`None`: the latest).
    pub fn query(&self, num: Option<u64>) -> Result<Config, ConfigError> {
        let latest = self.latest().num;
        match num {
            None => Ok(self.latest().clone()),
            Some(num) if num > latest => Err(ConfigError::FutureConfig { num, latest }),
            Some(num) => self.get(num).cloned().ok_or(ConfigError::Pruned {
                num,
                oldest: self.oldest(),
            }),
        }
    }

    /// Every group a retained configuration lists, as a member or as the
    /// holder of parked shards.
    fn listed_gids(&self) -> BTreeSet<Gid> {
        let mut listed = BTreeSet::new();
        for config in &self.configs {
            listed.extend(config.groups.keys().copied());
            listed.extend(config.parked_groups.keys().copied());
        }
        listed
    }

    /// `gid` passed [`ConfigOp::check_shape`].
    fn report(&mut self, gid: Gid, num: u64) -> Result<ConfigAnswer, ConfigError> {
        let latest = self.latest().num;
        if num > latest {
            return Err(ConfigError::FutureConfig { num, latest });
        }
        let listed = self.configs.iter().any(|config| {
            config.groups.contains_key(&gid) || config.parked_groups.contains_key(&gid)
        });
        if !listed {
            return Err(ConfigError::UnknownGroup { gid });
        }
        let entry = self.reported.entry(gid).or_insert(num);
        *entry = (*entry).max(num);
        Ok(ConfigAnswer::Reported {
            oldest: self.oldest(),
        })
    }

    /// Drops the configurations no listed group needs any more, then the
    /// oldest beyond the hard bound, then the reports of groups no kept
    /// configuration lists (see the module docs).
    fn prune(&mut self) {
        let listed = self.listed_gids();
        // A group that never reported needs everything (0); a group
        // declared lost will never ask again.
        let lost = &self.latest().lost_groups;
        let needed_above = listed
            .iter()
            .filter(|gid| !lost.contains_key(gid))
            .map(|gid| self.reported.get(gid).copied().unwrap_or(0))
            .min()
            .unwrap_or(0);
        while self.configs.len() > 1 && self.oldest() < needed_above {
            self.configs.pop_front();
        }
        while self.configs.len() > self.limits.max_retained_configs {
            self.configs.pop_front();
        }
        let listed = self.listed_gids();
        self.reported.retain(|gid, _| listed.contains(gid));
    }

    /// `groups` passed [`ConfigOp::check_shape`].
    fn join(
        &mut self,
        groups: &BTreeMap<Gid, Vec<SocketAddr>>,
    ) -> Result<ConfigAnswer, ConfigError> {
        let latest = self.latest();
        if let Some(&gid) = groups.keys().find(|gid| latest.groups.contains_key(gid)) {
            return Err(ConfigError::GroupExists { gid });
        }
        if let Some((&gid, &declared_in)) = groups
            .keys()
            .find_map(|gid| latest.lost_groups.get_key_value(gid))
        {
            return Err(ConfigError::GroupLost { gid, declared_in });
        }
        let count = latest.groups.len() + groups.len();
        if count > self.limits.max_groups {
            return Err(ConfigError::TooManyGroups {
                count,
                limit: self.limits.max_groups,
            });
        }
        let mut next_groups = latest.groups.clone();
        next_groups.extend(groups.iter().map(|(&gid, servers)| (gid, servers.clone())));
        Ok(self.push_rebalanced(next_groups))
    }

    /// `gids` passed [`ConfigOp::check_shape`].
    fn leave(&mut self, gids: &[Gid]) -> Result<ConfigAnswer, ConfigError> {
        let latest = self.latest();
        if let Some(&gid) = gids.iter().find(|gid| !latest.groups.contains_key(gid)) {
            return Err(ConfigError::UnknownGroup { gid });
        }
        let leaving: BTreeSet<Gid> = gids.iter().copied().collect();
        let mut next_groups = latest.groups.clone();
        next_groups.retain(|gid, _| !leaving.contains(gid));
        Ok(self.push_rebalanced(next_groups))
    }

    /// `gid` passed [`ConfigOp::check_shape`]. A member is removed and
    /// the shards rebalanced, as by Leave; a group kept configurations
    /// list only in the past (it left, or holds parked shards that a later
    /// Join reassigned) gets a configuration with the same placement, so
    /// that groups waiting on it learn it is lost.
    fn declare_lost(&mut self, gid: Gid) -> Result<ConfigAnswer, ConfigError> {
        let latest = self.latest();
        if latest.is_lost(gid) {
            return Ok(ConfigAnswer::Changed { num: latest.num });
        }
        if !self.listed_gids().contains(&gid) {
            return Err(ConfigError::UnknownGroup { gid });
        }
        let remaining = latest.groups.keys().filter(|&&other| other != gid).count();
        if remaining == 0 {
            return Err(ConfigError::LastGroup { gid });
        }
        let count = latest.lost_groups.len();
        if count >= self.limits.max_groups {
            return Err(ConfigError::TooManyLostGroups { count });
        }
        let answer = if latest.groups.contains_key(&gid) {
            let mut next_groups = latest.groups.clone();
            next_groups.remove(&gid);
            self.push_rebalanced(next_groups)
        } else {
            let (shards, groups) = (latest.shards.clone(), latest.groups.clone());
            self.push(shards, groups)
        };
        let ConfigAnswer::Changed { num } = answer else {
            unreachable!("push answers Changed");
        };
        let made = self
            .configs
            .back_mut()
            .expect("a configuration is always kept");
        made.lost_groups.insert(gid, num);
        Ok(answer)
    }

    /// `gid` and `servers` passed [`ConfigOp::check_shape`]. The shards
    /// stay where they are; only the group's server list changes.
    fn set_servers(
        &mut self,
        gid: Gid,
        servers: &[SocketAddr],
    ) -> Result<ConfigAnswer, ConfigError> {
        let latest = self.latest();
        let Some(current) = latest.groups.get(&gid) else {
            return Err(ConfigError::UnknownGroup { gid });
        };
        if current.as_slice() == servers {
            // Nothing to change: no new configuration (see `move_shard`).
            return Ok(ConfigAnswer::Changed { num: latest.num });
        }
        let shards = latest.shards.clone();
        let mut groups = latest.groups.clone();
        groups.insert(gid, servers.to_vec());
        Ok(self.push(shards, groups))
    }

    /// `shard` and `gid` passed [`ConfigOp::check_shape`].
    fn move_shard(&mut self, shard: usize, gid: Gid) -> Result<ConfigAnswer, ConfigError> {
        let latest = self.latest();
        if !latest.groups.contains_key(&gid) {
            return Err(ConfigError::UnknownGroup { gid });
        }
        if latest.shards[shard] == gid {
            // Nothing to change: no new configuration (each one is kept and
            // makes every group poll, so a repeated Move must not add any).
            return Ok(ConfigAnswer::Changed { num: latest.num });
        }
        let mut shards = latest.shards.clone();
        shards[shard] = gid;
        let groups = latest.groups.clone();
        Ok(self.push(shards, groups))
    }

    /// `loads` and `max_moves` passed [`ConfigOp::check_shape`]. Lost
    /// groups are in no configuration's `groups`, so they never receive;
    /// with no groups nothing can move.
    fn balance_load(&mut self, loads: &[u64], max_moves: usize) -> ConfigAnswer {
        let latest = self.latest();
        let gids: BTreeSet<Gid> = latest.groups.keys().copied().collect();
        let shards = balance_load(&latest.shards, &gids, loads, max_moves, HYSTERESIS_PERCENT);
        if shards == latest.shards {
            // Nothing worth moving: no new configuration (see `move_shard`).
            return ConfigAnswer::Changed { num: latest.num };
        }
        let groups = latest.groups.clone();
        self.push(shards, groups)
    }

    fn push_rebalanced(&mut self, groups: BTreeMap<Gid, Vec<SocketAddr>>) -> ConfigAnswer {
        let gids: BTreeSet<Gid> = groups.keys().copied().collect();
        let shards = rebalance(&self.latest().shards, &gids);
        self.push(shards, groups)
    }

    fn push(&mut self, shards: Vec<Gid>, groups: BTreeMap<Gid, Vec<SocketAddr>>) -> ConfigAnswer {
        let latest = self.latest();
        let num = latest.num + 1;
        debug_assert!(
            shards
                .iter()
                .all(|gid| groups.contains_key(gid) || (groups.is_empty() && *gid == UNASSIGNED)),
            "configuration {num} assigns a shard to a group it does not list"
        );
        // With no group left, each shard stays with the group that holds
        // its data (see `Config`'s docs on parked shards).
        let mut parked_shards = BTreeMap::new();
        let mut parked_groups = BTreeMap::new();
        if groups.is_empty() {
            for shard in 0..latest.shard_count() {
                let holder = latest.holder(shard);
                if holder != UNASSIGNED {
                    parked_shards.insert(shard, holder);
                    parked_groups
                        .entry(holder)
                        .or_insert_with(|| latest.servers_of(holder).to_vec());
                }
            }
        }
        let lost_groups = latest.lost_groups.clone();
        self.configs.push_back(Config {
            num,
            shards,
            groups,
            parked_shards,
            parked_groups,
            lost_groups,
        });
        ConfigAnswer::Changed { num }
    }
}
