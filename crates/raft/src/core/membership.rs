//! Group membership: who votes, who only listens, and how it changes.
//!
//! # The choice: single-server changes
//!
//! The group changes one server at a time (add a voter, add a learner,
//! promote a learner, remove a node), not by joint consensus. Any majority
//! of a configuration and any majority of one that differs from it by one
//! voter overlap, so two leaders of one term can never be elected by the
//! old and the new configuration, with no intermediate joint configuration
//! to store, replicate and leave. Joint consensus buys arbitrary changes in
//! one step; an operator replacing a machine needs add-then-remove, and
//! the simpler rule has fewer states to get wrong (Raft thesis 4.1-4.3).
//!
//! Single-server changes have one known flaw: a new leader that appends a
//! change before it has committed anything in its term can, together with
//! an uncommitted change of an earlier leader, form two configurations
//! whose majorities do not overlap. The fix Ongaro published on raft-dev
//! in 2015 is applied: a leader appends a configuration change only once an
//! entry of its own term is committed
//! ([`super::MembershipError::LeaderNotReady`]), and only when no earlier
//! change is still uncommitted ([`super::MembershipError::ChangeInProgress`]).
//!
//! # How a configuration lives in the log
//!
//! A change is an [`super::EntryKind::Config`] entry whose data is the
//! whole new [`Membership`] (encoded by [`Membership::encode`]), not the
//! difference, so a node never has to replay history to know it. A node
//! uses the newest configuration in its log as soon as the entry is
//! appended, committed or not (thesis 4.1); a conflicting leader that cuts
//! the entry away brings back the configuration before it. The snapshot
//! metadata carries the configuration as of its last entry
//! ([`super::SnapshotMeta::membership`]), so compaction never loses it and
//! a restart rebuilds it from snapshot + log. Before any configuration
//! entry exists, the group is `Config::peers`, all voters (the bootstrap
//! configuration every original member is started with).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::entry::NodeId;

/// A configuration names at most this many nodes (voters and learners):
/// it bounds the size of a configuration entry and of the leader's
/// per-follower state.
pub const MAX_MEMBERS: usize = 255;

/// The nodes of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Vote in elections and count for commitment.
    pub voters: BTreeSet<NodeId>,
    /// Receive the log and snapshots, but do not vote and do not count for
    /// commitment (thesis 4.2.1: a new server catches up before it can
    /// slow down commitment). Disjoint from `voters`.
    pub learners: BTreeSet<NodeId>,
}

/// One single-server change, proposed through
/// [`super::RawNode::propose_membership_change`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// A new voter at once (without catching up as a learner first).
    AddVoter(NodeId),
    /// A new non-voting member.
    AddLearner(NodeId),
    /// A learner becomes a voter; only once it has caught up
    /// (`Config::max_learner_lag_entries`).
    PromoteLearner(NodeId),
    /// A voter or learner leaves the group. At least one voter stays.
    Remove(NodeId),
}

impl Membership {
    /// All of `voters`, no learners.
    pub fn from_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// A voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member, voters and learners, in id order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.union(&self.learners).copied()
    }

    /// Votes (or acknowledgements) that make a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// True if the voters among `ids` are a majority.
    pub fn has_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a NodeId>) -> bool {
        ids.into_iter().filter(|id| self.is_voter(**id)).count() >= self.quorum()
    }

    /// Why this configuration cannot be used, if it cannot: no voter, a
    /// node both voter and learner, or more than [`MAX_MEMBERS`] nodes.
    pub fn check(&self) -> Result<(), String> {
        if self.voters.is_empty() {
            return Err("configuration without voters".to_string());
        }
        if let Some(id) = self.voters.intersection(&self.learners).next() {
            return Err(format!("node {id} is both voter and learner"));
        }
        let size = self.voters.len() + self.learners.len();
        if size > MAX_MEMBERS {
            return Err(format!(
                "configuration of {size} nodes exceeds the limit of {MAX_MEMBERS}"
            ));
        }
        Ok(())
    }

    /// The data of a configuration entry.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// A configuration entry's data back, checked ([`Membership::check`]):
    /// `Err` says why it is unusable (it does not decode, has bytes left
    /// over, or is not a valid configuration).
    pub fn decode(data: &[u8]) -> Result<Membership, String> {
        // A configuration is small: refuse to decode anything that could
        // not be one before bincode allocates for it.
        const MAX_ENCODED_BYTES: usize = 16 + 2 * MAX_MEMBERS * 10;
        if data.len() > MAX_ENCODED_BYTES {
            return Err(format!(
                "configuration of {} bytes exceeds {MAX_ENCODED_BYTES}",
                data.len()
            ));
        }
        let membership: Membership =
            codec::decode(data, codec::ENTRY_LIMIT).map_err(|error| match error {
                codec::CodecError::TrailingBytes { trailing_bytes, .. } => {
                    format!("configuration has {trailing_bytes} trailing bytes")
                }
                error => format!("configuration {error}"),
            })?;
        membership.check()?;
        Ok(membership)
    }

    /// The configuration after `change`, or why the change makes no sense
    /// here (the node is already a member, is not one, is not a learner,
    /// or is the last voter).
    pub fn apply(&self, change: MembershipChange) -> Result<Membership, String> {
        let mut next = self.clone();
        match change {
            MembershipChange::AddVoter(id) | MembershipChange::AddLearner(id)
                if self.contains(id) =>
            {
                return Err(format!("node {id} is already a member"));
            }
            MembershipChange::AddVoter(id) => {
                next.voters.insert(id);
            }
            MembershipChange::AddLearner(id) => {
                next.learners.insert(id);
            }
            MembershipChange::PromoteLearner(id) => {
                if !next.learners.remove(&id) {
                    return Err(format!("node {id} is not a learner"));
                }
                next.voters.insert(id);
            }
            MembershipChange::Remove(id) => {
                if !self.contains(id) {
                    return Err(format!("node {id} is not a member"));
                }
                if self.voters.len() == 1 && self.is_voter(id) {
                    return Err(format!("node {id} is the last voter"));
                }
                next.voters.remove(&id);
                next.learners.remove(&id);
            }
        }
        next.check()?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_round_trips_and_garbage_is_refused() {
        let mut membership = Membership::from_voters([0, 1, 2]);
        membership.learners.insert(7);
        assert_eq!(Membership::decode(&membership.encode()), Ok(membership));
        assert!(Membership::decode(&[0xff, 0xff, 0xff]).is_err());
        let empty = Membership::default().encode();
        assert!(
            Membership::decode(&empty)
                .unwrap_err()
                .contains("without voters")
        );
        let mut both = Membership::from_voters([1]);
        both.learners.insert(1);
        assert!(Membership::decode(&both.encode()).is_err());
        let mut trailing = Membership::from_voters([1]).encode();
        trailing.push(0);
        assert!(
            Membership::decode(&trailing)
                .unwrap_err()
                .contains("trailing")
        );
    }

    #[test]
    fn changes_apply_one_server_at_a_time() {
        let base = Membership::from_voters([0, 1]);
        let with_learner = base.apply(MembershipChange::AddLearner(2)).unwrap();
        assert!(with_learner.is_learner(2) && !with_learner.is_voter(2));
        let promoted = with_learner
            .apply(MembershipChange::PromoteLearner(2))
            .unwrap();
        assert_eq!(promoted, Membership::from_voters([0, 1, 2]));
        assert!(base.apply(MembershipChange::AddVoter(1)).is_err());
        assert!(base.apply(MembershipChange::PromoteLearner(1)).is_err());
        assert!(base.apply(MembershipChange::Remove(5)).is_err());
        let single = Membership::from_voters([3]);
        assert!(single.apply(MembershipChange::Remove(3)).is_err());
        assert_eq!(
            promoted.apply(MembershipChange::Remove(0)).unwrap(),
            Membership::from_voters([1, 2])
        );
    }

    #[test]
    fn quorum_counts_voters_only() {
        let mut membership = Membership::from_voters([0, 1, 2]);
        membership.learners.extend([3, 4]);
        assert_eq!(membership.quorum(), 2);
        assert!(!membership.has_quorum(&[0, 3, 4]));
        assert!(membership.has_quorum(&[0, 2]));
    }
}
