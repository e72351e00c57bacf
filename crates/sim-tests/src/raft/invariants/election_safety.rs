//! Election Safety (Raft paper §5.2, Figure 3): at most one leader can be
//! elected in a given term. Also the rule that makes it hold (Figure 2,
//! RequestVote): a node votes for at most one candidate per term, and its
//! vote survives a crash.
//!
//! Checked on every observation: the role and term a node reports after
//! each durable write, and its vote.

use std::collections::BTreeMap;

use ::raft::core::{NodeId, Role};
use ::raft::node::Observation;

#[derive(Debug, Default)]
pub struct ElectionSafety {
    /// The leader seen in each term.
    leaders: BTreeMap<u64, NodeId>,
    /// The last `(term, vote)` each node reported.
    votes: BTreeMap<NodeId, (u64, Option<NodeId>)>,
}

impl ElectionSafety {
    pub fn observe(&mut self, observation: &Observation) -> Result<(), String> {
        let node = observation.node;
        let term = observation.term;
        if observation.role == Role::Leader {
            let leader = *self.leaders.entry(term).or_insert(node);
            if leader != node {
                return Err(format!(
                    "election safety (§5.2): nodes {leader} and {node} are both leader in term \
                     {term}"
                ));
            }
            if observation.voted_for != Some(node) {
                return Err(format!(
                    "election safety (§5.2): node {node} leads term {term} without having voted \
                     for itself (vote: {:?})",
                    observation.voted_for
                ));
            }
        }
        if let Some(&(last_term, Some(last_vote))) = self.votes.get(&node)
            && last_term == term
            && observation.voted_for != Some(last_vote)
        {
            return Err(format!(
                "election safety (§5.2, Figure 2): node {node} voted for {last_vote} in term \
                 {term}, now reports vote {:?} in the same term",
                observation.voted_for
            ));
        }
        self.votes.insert(node, (term, observation.voted_for));
        Ok(())
    }

    /// Terms that had a leader.
    pub fn leader_terms(&self) -> usize {
        self.leaders.len()
    }
}
