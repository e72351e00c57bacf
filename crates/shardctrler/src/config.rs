//! Configurations: which group serves which shard, and where each group is.
//!
//! A configuration is numbered and immutable. Number 0 is the initial one:
//! no groups, every shard [`UNASSIGNED`]. Every accepted Join, Leave or
//! Move creates the next number.
//!
//! ## Parked shards
//!
//! When a Leave removes every remaining group there is nobody to hand the
//! shards to, yet they hold acknowledged writes. The leaving groups keep
//! them, frozen, and the configuration says where: `parked_shards[s]` is
//! the group holding shard `s`, `parked_groups` that group's servers. The
//! next Join assigns every shard again; a group given a parked shard pulls
//! it from its holder as from any previous owner, so nothing is lost.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A replica group's id. `0` is reserved for "no group" ([`UNASSIGNED`]).
pub type Gid = u64;

/// The owner of a shard while there are no groups.
pub const UNASSIGNED: Gid = 0;

/// One numbered configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// 0 for the initial configuration, then one more per change.
    pub num: u64,
    /// `shards[s]` is the group serving shard `s` ([`UNASSIGNED`] only while
    /// `groups` is empty). Its length is the service's number of shards.
    pub shards: Vec<Gid>,
    /// Each group's servers, in the order its clerks try them. A `BTreeMap`
    /// so that iteration order is the same on every replica.
    pub groups: BTreeMap<Gid, Vec<SocketAddr>>,
    /// Shards whose data is held by a group that left when no group was
    /// left to take them (shard -> holding group). Only while `groups` is
    /// empty; each listed shard is [`UNASSIGNED`].
    pub parked_shards: BTreeMap<usize, Gid>,
    /// The servers of each group in `parked_shards`.
    pub parked_groups: BTreeMap<Gid, Vec<SocketAddr>>,
    /// Groups an operator declared lost (gid -> the configuration that
    /// declared it), carried into every later configuration. A lost group
    /// is in no `groups`, may never join again, and its data is gone: a
    /// group whose shard's previous holder is lost installs the shard
    /// empty instead of pulling it (see [`crate::ConfigOp::DeclareLost`]).
    pub lost_groups: BTreeMap<Gid, u64>,
}

impl Config {
    /// Configuration 0: `shard_count` unassigned shards and no groups.
    pub fn initial(shard_count: usize) -> Config {
        Config {
            num: 0,
            shards: vec![UNASSIGNED; shard_count],
            groups: BTreeMap::new(),
            parked_shards: BTreeMap::new(),
            parked_groups: BTreeMap::new(),
            lost_groups: BTreeMap::new(),
        }
    }

    /// Whether `gid` was declared lost in this configuration or before.
    pub fn is_lost(&self, gid: Gid) -> bool {
        self.lost_groups.contains_key(&gid)
    }

    /// The group that holds `shard`'s data in this configuration: its
    /// owner, or while it is unassigned the group it is parked with.
    /// [`UNASSIGNED`] if nobody holds data for it.
    pub fn holder(&self, shard: usize) -> Gid {
        match self.owner(shard) {
            Some(UNASSIGNED) | None => self
                .parked_shards
                .get(&shard)
                .copied()
                .unwrap_or(UNASSIGNED),
            Some(gid) => gid,
        }
    }

    /// The servers of `gid`, a member or a group holding parked shards
    /// (empty if neither).
    pub fn servers_of(&self, gid: Gid) -> &[SocketAddr] {
        self.groups
            .get(&gid)
            .or_else(|| self.parked_groups.get(&gid))
            .map_or(&[], Vec::as_slice)
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The group serving `shard`, or `None` if out of range.
    pub fn owner(&self, shard: usize) -> Option<Gid> {
        self.shards.get(shard).copied()
    }

    /// The shards `gid` serves, ascending.
    pub fn shards_of(&self, gid: Gid) -> Vec<usize> {
        (0..self.shards.len())
            .filter(|&shard| self.shards[shard] == gid)
            .collect()
    }

    /// The servers of the group serving `shard` (empty if unassigned).
    pub fn servers_for(&self, shard: usize) -> &[SocketAddr] {
        self.owner(shard)
            .and_then(|gid| self.groups.get(&gid))
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_config_has_no_owners() {
        let config = Config::initial(10);
        assert_eq!(config.num, 0);
        assert_eq!(config.shard_count(), 10);
        assert!(config.shards.iter().all(|&gid| gid == UNASSIGNED));
        assert!(config.servers_for(3).is_empty());
        assert_eq!(config.owner(10), None);
    }

    #[test]
    fn shards_of_lists_a_groups_shards_in_order() {
        let mut config = Config::initial(4);
        config.shards = vec![7, 9, 7, 9];
        let addr: SocketAddr = "10.0.0.1:7000".parse().unwrap();
        config.groups.insert(7, vec![addr]);
        config.groups.insert(9, vec![]);
        assert_eq!(config.shards_of(7), vec![0, 2]);
        assert_eq!(config.servers_for(2), &[addr]);
    }
}
