//! An operator's membership changes of a group (issue 21), a data group or
//! the controller group (gid 0): `add-replica`, `remove-replica`,
//! `replace-replica`, run on the node whose replica leads the group (the
//! `Admin` service passes a request on to it, once, as it does
//! `transfer-leader`).
//!
//! ```text
//!  add N        validate ─► AddLearner(2^32 + N) with N's data address
//!               (rsm: the address goes through the log first) ─► wait
//!               until the learner acknowledged the commit index the leader
//!               had when it was added (bounded; not caught up: removed
//!               again, nothing changed) ─► PromoteLearner
//!  remove N     validate ─► Remove(N's Raft id)
//!  replace O N  validate both ─► add N ─► remove O
//!  then         a data group's voters and their addresses, in Raft id
//!               order, go to the controller (`SetServers`, by the caller)
//!               so that forwarders and shard migration reach the replicas
//!               it has
//! ```
//!
//! Everything is checked before the first step: an unknown group or node,
//! removing the last voter, a node that was one of the group's original
//! replicas coming back, an address nobody knows, a change already under
//! way. A refusal changes nothing. One change runs at a time per node (a
//! second one is refused, not queued); Raft refuses a change while another
//! configuration entry is uncommitted anywhere in the group.
//!
//! The controller group (gid 0) changes the same way. No configuration
//! lists its replicas: every node's clerks reach the controller at the
//! addresses of its `[[nodes]]` table, and a replica there that does not
//! lead passes requests on to a leader that joined later
//! (`shardctrler::ControllerServer`). So at least one replica a node's
//! table lists must stay in the group for that node to reach the
//! controller (docs/membership.md).

use std::net::SocketAddr;
use std::time::Duration;

use raft::core::{Membership, MembershipChange, MembershipError};
use rsm::{ChangeError, ReplicatedMachine, Rsm};

use crate::config::{JOINED_RAFT_ID_BASE, MAX_REPLICAS_PER_GROUP};
use crate::node::NodeState;

/// How long an added learner may take to catch up when the request does
/// not say.
pub const CATCH_UP_WAIT_DEFAULT: Duration = Duration::from_secs(30);
/// Longest catch-up wait a request may ask for.
pub const CATCH_UP_WAIT_MAX: Duration = Duration::from_secs(600);
/// Attempts of one Raft change refused for a passing reason (a new leader
/// not ready, a commit not seen in time), 100 ms apart.
const CHANGE_ATTEMPTS_MAX: u32 = 20;
const CHANGE_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How often the catch-up wait looks at the learner's progress.
const CATCH_UP_POLL: Duration = Duration::from_millis(20);

/// One operator change of a data group's replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaChange {
    /// Node `node_id` (started with `joining = true`) joins the group as a
    /// learner, catches up and becomes a voter. `addr`: its data replica's
    /// peer address, if the request names it (else this node's table).
    Add {
        node_id: u64,
        addr: Option<SocketAddr>,
    },
    /// Node `node_id`'s replica leaves the group.
    Remove { node_id: u64 },
    /// `add_node_id` joins (as by `Add`), then `remove_node_id` leaves.
    Replace {
        remove_node_id: u64,
        add_node_id: u64,
        addr: Option<SocketAddr>,
    },
}

/// What a node did with an operator's membership change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalChange {
    /// Done (or already in effect): the group's voters afterwards, as
    /// (node id, data peer address) in Raft id order.
    Done { voters: Vec<(u64, SocketAddr)> },
    /// This node hosts no replica of the group, or its replica does not
    /// lead (`leader_node_id`: the leader it knows of, if any).
    NotLeader { leader_node_id: Option<u64> },
    /// Refused before anything changed; the reason says why.
    Refused(String),
    /// Another change is under way; nothing changed. Retry once it ends.
    InProgress(String),
    /// Started but not finished (the leader changed, a step was not seen
    /// committed in time); the reason says what is in force.
    Failed(String),
}

/// A change's steps, decided before the first one runs.
struct Plan {
    /// A node to add: (node id, Raft id, data peer address).
    add: Option<(u64, u64, SocketAddr)>,
    /// A node to remove: (node id, Raft id).
    remove: Option<(u64, u64)>,
}

impl NodeState {
    /// The Raft id node `node_id`'s replica of group `gid` (0: the
    /// controller) has, or would have if it joined; None for an unknown
    /// group.
    pub fn raft_id_of(&self, gid: u64, node_id: u64) -> Option<u64> {
        self.topology.raft_id(gid, node_id)
    }

    /// The node whose replica of group `gid` (0: the controller) has Raft
    /// id `raft_id`.
    pub fn node_of_raft_id(&self, gid: u64, raft_id: u64) -> Option<u64> {
        self.topology.node_of_raft_id(gid, raft_id)
    }

    /// Runs `change` on group `gid` if this node's replica leads it. The
    /// added learner gets `catch_up_wait` to acknowledge what was committed
    /// when it was added.
    pub async fn change_replicas_here(
        &self,
        gid: u64,
        change: ReplicaChange,
        catch_up_wait: Duration,
    ) -> LocalChange {
        if self.topology.positions(gid).is_none() {
            return LocalChange::Refused(format!("no group {gid} in the configuration"));
        }
        let not_here = LocalChange::NotLeader {
            leader_node_id: None,
        };
        if gid == 0 {
            let Some((server, own_addr)) = self.controller_replica() else {
                return not_here;
            };
            return self
                .change_replicas_of(gid, server.rsm(), *own_addr, change, catch_up_wait)
                .await;
        }
        let Some((server, own_addr)) = self
            .data_replica()
            .filter(|(server, _)| server.gid() == gid)
        else {
            return not_here;
        };
        self.change_replicas_of(gid, server.rsm(), *own_addr, change, catch_up_wait)
            .await
    }

    /// [`NodeState::change_replicas_here`] on this node's replica `rsm` of
    /// group `gid`, which serves peers at `own_addr`.
    async fn change_replicas_of<M: ReplicatedMachine>(
        &self,
        gid: u64,
        rsm: &Rsm<M>,
        own_addr: SocketAddr,
        change: ReplicaChange,
        catch_up_wait: Duration,
    ) -> LocalChange {
        let raft = rsm.raft();
        let status = raft.status();
        if !status.is_leader {
            return LocalChange::NotLeader {
                leader_node_id: status
                    .leader_id
                    .and_then(|leader| self.node_of_raft_id(gid, leader)),
            };
        }
        let Ok(_one_at_a_time) = self.membership_change.try_lock() else {
            return LocalChange::InProgress(format!(
                "another membership change of group {gid} is under way on node {}; retry once \
                 it ends",
                self.node_id
            ));
        };
        let (config_index, membership) = raft.membership();
        if config_index > status.commit_index {
            return LocalChange::InProgress(format!(
                "group {gid}'s configuration change at index {config_index} is not committed \
                 yet; retry once it is"
            ));
        }
        let plan = match self.plan(gid, change, &membership, raft) {
            Ok(plan) => plan,
            Err(refusal) => return LocalChange::Refused(refusal),
        };
        if let Some((node_id, raft_id, addr)) = plan.add
            && let Err(failure) = self
                .add_member(gid, rsm, node_id, raft_id, addr, catch_up_wait)
                .await
        {
            return failure;
        }
        if let Some((node_id, raft_id)) = plan.remove {
            if let Err(error) =
                change_with_retries(rsm, MembershipChange::Remove(raft_id), None).await
            {
                return LocalChange::Failed(format!(
                    "removing node {node_id} from group {gid}: {error}{}",
                    if plan.add.is_some() {
                        " (the new replica was added and is a voter)"
                    } else {
                        ""
                    }
                ));
            }
            tracing::info!(gid, node_id, raft_id, "replica removed by an operator");
        }
        match self.voter_addresses(gid, raft, own_addr) {
            Ok(voters) => LocalChange::Done { voters },
            Err(reason) => LocalChange::Failed(reason),
        }
    }

    /// Checks `change` against the configuration in force; the steps to
    /// run, or why it is refused.
    fn plan(
        &self,
        gid: u64,
        change: ReplicaChange,
        membership: &Membership,
        raft: &raft::node::RaftNode,
    ) -> Result<Plan, String> {
        let members = |membership: &Membership| -> Vec<u64> {
            membership
                .members()
                .filter_map(|id| self.node_of_raft_id(gid, id))
                .collect()
        };
        let (add, remove) = match change {
            ReplicaChange::Add { node_id, addr } => (Some((node_id, addr)), None),
            ReplicaChange::Remove { node_id } => (None, Some(node_id)),
            ReplicaChange::Replace {
                remove_node_id,
                add_node_id,
                addr,
            } => {
                if remove_node_id == add_node_id {
                    return Err(format!(
                        "node {add_node_id} cannot replace itself; a replica that lost its disk \
                         comes back as a new node with a new id"
                    ));
                }
                (Some((add_node_id, addr)), Some(remove_node_id))
            }
        };
        if let (Some((add_node_id, _)), Some(remove_node_id)) = (add, remove) {
            let remove_gone = self
                .topology
                .raft_id(gid, remove_node_id)
                .is_none_or(|id| !membership.contains(id));
            if remove_gone && membership.is_voter(JOINED_RAFT_ID_BASE + add_node_id) {
                // The replacement is in effect already (a caller that
                // timed out calls again).
                return Ok(Plan {
                    add: None,
                    remove: None,
                });
            }
        }
        let remove = match remove {
            None => None,
            Some(0) => {
                return Err("node id 0 is reserved; ids start at 1".into());
            }
            Some(node_id) => {
                let raft_id = self
                    .topology
                    .raft_id(gid, node_id)
                    .filter(|id| membership.contains(*id));
                let Some(raft_id) = raft_id else {
                    if add.is_none() {
                        // Not a member: the removal is in effect (a caller
                        // that timed out calls again). The answer lists
                        // the voters, so a mistyped id shows there.
                        return Ok(Plan {
                            add: None,
                            remove: None,
                        });
                    }
                    return Err(format!(
                        "node {node_id} hosts no replica of group {gid} (its replicas are on \
                         nodes {:?})",
                        members(membership)
                    ));
                };
                let voters_left = membership
                    .voters
                    .iter()
                    .filter(|&&id| id != raft_id)
                    .count();
                if voters_left == 0 {
                    return Err(format!(
                        "node {node_id} is group {gid}'s last voter: removing it would leave \
                         nobody to serve the group{}",
                        if gid == 0 { "" } else { "'s shards" }
                    ));
                }
                if gid == 0 && !Self::position_controller_voter_left(membership, raft_id) {
                    return Err(format!(
                        "node {node_id} is the last of the controller's original replicas (the \
                         positions every node's [[nodes]] table lists): nodes reach the \
                         controller through them, and a node whose table does not list the \
                         replicas that joined would reach none"
                    ));
                }
                Some((node_id, raft_id))
            }
        };
        let add = match add {
            None => None,
            Some((0, _)) => {
                return Err("node id 0 is reserved; ids start at 1".into());
            }
            Some((node_id, _)) if membership.is_voter(JOINED_RAFT_ID_BASE + node_id) => {
                // Already a voter: the add is in effect (a caller that
                // timed out calls again).
                None
            }
            Some((node_id, addr)) => {
                let raft_id = self.topology.raft_id(gid, node_id).unwrap_or(0);
                if raft_id < JOINED_RAFT_ID_BASE {
                    return Err(if membership.is_voter(raft_id) {
                        format!("node {node_id} is already a replica of group {gid}")
                    } else {
                        format!(
                            "node {node_id} was one of group {gid}'s original replicas (Raft id \
                             {raft_id}) and left it: a node comes back only with a new id, \
                             listed with joining = true (its old id on an empty disk would \
                             be a voter that forgot what it acknowledged)"
                        )
                    });
                }
                let listed = self
                    .topology
                    .joining_of(gid)
                    .iter()
                    .find(|(node, _)| *node == node_id)
                    .map(|(_, addr)| *addr);
                let addr = match (addr, listed) {
                    (Some(addr), _) | (None, Some(addr)) => addr,
                    (None, None) => {
                        let listing = if gid == 0 {
                            "a controller_port".to_string()
                        } else {
                            format!("group = {gid}")
                        };
                        return Err(format!(
                            "node {node_id}'s {} address is not known on node {}: list node \
                             {node_id} in its [[nodes]] table with {listing} and joining = true, \
                             send the request to node {node_id} itself, or pass its peer address \
                             (--peer-addr)",
                            if gid == 0 { "controller" } else { "data" },
                            self.node_id
                        ));
                    }
                };
                if let Some((other_gid, other_node)) = self
                    .topology
                    .replica_at(addr)
                    .filter(|&owner| owner != (gid, node_id))
                {
                    return Err(format!(
                        "{addr} is the peer address of {} on node {other_node} in this node's \
                         [[nodes]] table, not of node {node_id}'s {} replica",
                        if other_gid == 0 {
                            "the controller replica".to_string()
                        } else {
                            format!("group {other_gid}'s replica")
                        },
                        if gid == 0 { "controller" } else { "data" }
                    ));
                }
                if let Some(other) = membership
                    .members()
                    .filter(|&id| id != raft_id)
                    .find(|&id| raft.peer_addr(id) == Some(addr))
                {
                    return Err(format!(
                        "{addr} is the address of group {gid}'s replica on node {}",
                        self.node_of_raft_id(gid, other)
                            .map_or_else(|| format!("(Raft id {other})"), |node| node.to_string())
                    ));
                }
                // A replace adds before it removes: the peak counts.
                let members_peak =
                    membership.members().count() + usize::from(!membership.contains(raft_id));
                if members_peak > MAX_REPLICAS_PER_GROUP {
                    return Err(format!(
                        "group {gid} would have {members_peak} replicas, more than the limit \
                         of {MAX_REPLICAS_PER_GROUP}"
                    ));
                }
                Some((node_id, raft_id, addr))
            }
        };
        Ok(Plan { add, remove })
    }

    /// Whether a controller voter that is one of the group's positions
    /// (listed in every node's table) is left once `removed` goes: the
    /// replicas through which every node's clerks reach the controller.
    fn position_controller_voter_left(membership: &Membership, removed: u64) -> bool {
        membership
            .voters
            .iter()
            .any(|&id| id != removed && id < JOINED_RAFT_ID_BASE)
    }

    /// Adds node `node_id` as a learner (unless it is one already), waits
    /// until it acknowledged what was committed when it was added, and
    /// promotes it. A learner that does not catch up in time is removed
    /// again, so nothing changes.
    async fn add_member<M: ReplicatedMachine>(
        &self,
        gid: u64,
        rsm: &Rsm<M>,
        node_id: u64,
        raft_id: u64,
        addr: SocketAddr,
        catch_up_wait: Duration,
    ) -> Result<(), LocalChange> {
        let raft = rsm.raft();
        change_with_retries(rsm, MembershipChange::AddLearner(raft_id), Some(addr))
            .await
            .map_err(|error| {
                LocalChange::Failed(format!(
                    "adding node {node_id} to group {gid} as a learner: {error}"
                ))
            })?;
        tracing::info!(gid, node_id, raft_id, %addr, "learner added by an operator; catching up");
        let needed = raft.status().commit_index;
        let deadline = crate::clock::now() + catch_up_wait;
        loop {
            match raft.learner_match_index(raft_id) {
                Some(matched) if matched >= needed => break,
                Some(_) => {}
                None if !raft.state().1 => {
                    return Err(LocalChange::Failed(format!(
                        "node {} lost the leadership of group {gid} while node {node_id} caught \
                         up; node {node_id} stays a learner (remove-replica to undo, or \
                         add-replica again to promote it)",
                        self.node_id
                    )));
                }
                None => {}
            }
            if crate::clock::now() >= deadline {
                let undone =
                    change_with_retries(rsm, MembershipChange::Remove(raft_id), None).await;
                return Err(LocalChange::Failed(format!(
                    "node {node_id} did not catch up with group {gid} within {catch_up_wait:?} \
                     (is it running with joining = true, and reachable at {addr}?); {}",
                    match undone {
                        Ok(_) => "it was removed again: nothing changed".to_string(),
                        Err(error) =>
                            format!("removing it again failed ({error}): it may still be a learner"),
                    }
                )));
            }
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
        // Raft refuses the promotion while the learner lags by more than
        // its bound; it caught up above, so a refusal here is passing.
        change_with_retries(rsm, MembershipChange::PromoteLearner(raft_id), None)
            .await
            .map_err(|error| {
                LocalChange::Failed(format!(
                    "promoting node {node_id} in group {gid}: {error} (it stays a learner; \
                     add-replica again to promote it)"
                ))
            })?;
        tracing::info!(gid, node_id, raft_id, "learner promoted to voter");
        Ok(())
    }

    /// The voters of this leader's configuration as (node id, data peer
    /// address), in Raft id order.
    fn voter_addresses(
        &self,
        gid: u64,
        raft: &raft::node::RaftNode,
        own_addr: SocketAddr,
    ) -> Result<Vec<(u64, SocketAddr)>, String> {
        let (_, membership) = raft.membership();
        membership
            .voters
            .iter()
            .map(|&voter| {
                let node = self
                    .node_of_raft_id(gid, voter)
                    .ok_or_else(|| format!("group {gid}'s voter {voter} maps to no node id"))?;
                let addr = if voter == raft.id() {
                    Some(own_addr)
                } else {
                    raft.peer_addr(voter)
                };
                let addr = addr
                    .ok_or_else(|| format!("no address is known for group {gid}'s node {node}"))?;
                Ok((node, addr))
            })
            .collect()
    }
}

/// One Raft change through the rsm, retried while the refusal is passing
/// (a new leader not ready yet, a commit not seen in time: the call is
/// idempotent), at most [`CHANGE_ATTEMPTS_MAX`] times.
async fn change_with_retries<M: ReplicatedMachine>(
    rsm: &Rsm<M>,
    change: MembershipChange,
    addr: Option<SocketAddr>,
) -> Result<Membership, ChangeError> {
    let mut attempt = 1;
    loop {
        let error = match rsm.change_membership(change, addr).await {
            Ok(membership) => return Ok(membership),
            Err(error) => error,
        };
        let passing = matches!(
            error,
            ChangeError::Timeout
                | ChangeError::Refused(
                    MembershipError::LeaderNotReady { .. } | MembershipError::LearnerBehind { .. }
                )
        );
        if !passing || attempt >= CHANGE_ATTEMPTS_MAX {
            return Err(error);
        }
        attempt += 1;
        tokio::time::sleep(CHANGE_RETRY_PAUSE).await;
    }
}
