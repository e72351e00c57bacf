//! The controller's pure state: every configuration ever made, and the
//! four operations on it.
//!
//! Sans-IO and deterministic: the same operations in the same order give
//! the same configurations (and the same answers) on every replica. A
//! request that is refused returns a typed [`ConfigError`] and changes
//! nothing; an accepted Join, Leave or Move appends exactly one new
//! configuration, numbered one more than the latest.
//!
//! ## Retention: every configuration is kept
//!
//! shardkv groups walk the configurations one number at a time (a group
//! that was down catches up through every intermediate configuration to
//! hand shards over in order), so a configuration that some group has not
//! yet processed must stay queryable, and the controller cannot know which
//! ones that is. Keeping all of them is the simple, always-correct choice.
//! The cost is memory and snapshot size growing by about one
//! configuration per change: with 10 shards and a few groups a
//! configuration encodes to tens of bytes plus the server addresses; with
//! 1024 shards about 1-3 bytes per shard (bincode varints) plus the
//! groups, so a few KiB. Changes are rare (operators add and remove
//! groups), so thousands of changes cost megabytes, not more. The number of
//! groups and servers per group is bounded by [`Limits`], so each
//! configuration is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Gid, UNASSIGNED};
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
}

impl ConfigOp {
    /// Queries change nothing, so they are never recorded for exactly-once.
    pub fn is_read(&self) -> bool {
        matches!(self, ConfigOp::Query { .. })
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigAnswer {
    /// A Join, Leave or Move made configuration `num`.
    Changed { num: u64 },
    /// The configuration a Query asked for.
    Config(Config),
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
}

impl Limits {
    /// `shard_count` shards, at most 1024 groups of at most 64 servers.
    pub fn new(shard_count: usize) -> Limits {
        Limits {
            shard_count,
            max_groups: 1024,
            max_servers_per_group: 64,
        }
    }
}

/// Every configuration, numbered from 0. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigHistory {
    limits: Limits,
    /// `configs[n].num == n`; never empty.
    configs: Vec<Config>,
}

impl ConfigHistory {
    /// Just configuration 0: no groups, every shard unassigned.
    ///
    /// # Panics
    /// If `limits.shard_count` is 0.
    pub fn new(limits: Limits) -> ConfigHistory {
        assert!(limits.shard_count > 0, "a service needs at least one shard");
        ConfigHistory {
            limits,
            configs: vec![Config::initial(limits.shard_count)],
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn latest(&self) -> &Config {
        self.configs.last().expect("configuration 0 always exists")
    }

    /// Configuration `num`, if it exists.
    pub fn get(&self, num: u64) -> Option<&Config> {
        usize::try_from(num).ok().and_then(|n| self.configs.get(n))
    }

    /// How many configurations exist (the latest number plus one).
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// Never true: configuration 0 always exists.
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// Applies one operation. A refused one changes nothing.
    pub fn apply(&mut self, op: &ConfigOp) -> Result<ConfigAnswer, ConfigError> {
        match op {
            ConfigOp::Join { groups } => self.join(groups),
            ConfigOp::Leave { gids } => self.leave(gids),
            ConfigOp::Move { shard, gid } => self.move_shard(*shard, *gid),
            ConfigOp::Query { num } => self.query(*num).map(ConfigAnswer::Config),
        }
    }

    /// Configuration `num` (`None`: the latest).
    pub fn query(&self, num: Option<u64>) -> Result<Config, ConfigError> {
        let latest = self.latest().num;
        match num {
            None => Ok(self.latest().clone()),
            Some(num) => self
                .get(num)
                .cloned()
                .ok_or(ConfigError::FutureConfig { num, latest }),
        }
    }

    fn join(
        &mut self,
        groups: &BTreeMap<Gid, Vec<SocketAddr>>,
    ) -> Result<ConfigAnswer, ConfigError> {
        if groups.is_empty() {
            return Err(ConfigError::EmptyRequest);
        }
        let latest = self.latest();
        for (&gid, servers) in groups {
            if gid == UNASSIGNED {
                return Err(ConfigError::ReservedGid);
            }
            if latest.groups.contains_key(&gid) {
                return Err(ConfigError::GroupExists { gid });
            }
            if servers.is_empty() {
                return Err(ConfigError::NoServers { gid });
            }
            if servers.len() > self.limits.max_servers_per_group {
                return Err(ConfigError::TooManyServers {
                    gid,
                    count: servers.len(),
                    limit: self.limits.max_servers_per_group,
                });
            }
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

    fn leave(&mut self, gids: &[Gid]) -> Result<ConfigAnswer, ConfigError> {
        if gids.is_empty() {
            return Err(ConfigError::EmptyRequest);
        }
        let latest = self.latest();
        let mut seen = BTreeSet::new();
        for &gid in gids {
            if gid == UNASSIGNED {
                return Err(ConfigError::ReservedGid);
            }
            if !seen.insert(gid) {
                return Err(ConfigError::DuplicateGid { gid });
            }
            if !latest.groups.contains_key(&gid) {
                return Err(ConfigError::UnknownGroup { gid });
            }
        }
        let mut next_groups = latest.groups.clone();
        next_groups.retain(|gid, _| !seen.contains(gid));
        Ok(self.push_rebalanced(next_groups))
    }

    fn move_shard(&mut self, shard: usize, gid: Gid) -> Result<ConfigAnswer, ConfigError> {
        let latest = self.latest();
        if shard >= latest.shard_count() {
            return Err(ConfigError::ShardOutOfRange {
                shard,
                shard_count: latest.shard_count(),
            });
        }
        if gid == UNASSIGNED {
            return Err(ConfigError::ReservedGid);
        }
        if !latest.groups.contains_key(&gid) {
            return Err(ConfigError::UnknownGroup { gid });
        }
        let mut shards = latest.shards.clone();
        shards[shard] = gid;
        let groups = latest.groups.clone();
        Ok(self.push(shards, groups))
    }

    fn push_rebalanced(&mut self, groups: BTreeMap<Gid, Vec<SocketAddr>>) -> ConfigAnswer {
        let gids: BTreeSet<Gid> = groups.keys().copied().collect();
        let shards = rebalance(&self.latest().shards, &gids);
        self.push(shards, groups)
    }

    fn push(&mut self, shards: Vec<Gid>, groups: BTreeMap<Gid, Vec<SocketAddr>>) -> ConfigAnswer {
        let num = self.latest().num + 1;
        debug_assert!(
            shards
                .iter()
                .all(|gid| groups.contains_key(gid) || (groups.is_empty() && *gid == UNASSIGNED)),
            "configuration {num} assigns a shard to a group it does not list"
        );
        self.configs.push(Config {
            num,
            shards,
            groups,
        });
        ConfigAnswer::Changed { num }
    }
}
