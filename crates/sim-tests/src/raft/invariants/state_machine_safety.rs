//! State Machine Safety (Raft paper §5.4.3, Figure 3): if a server has
//! applied a log entry at a given index, no other server ever applies a
//! different log entry for the same index.
//!
//! Checked here at the Raft level, where it starts: whenever a node reports
//! a commit index `c`, its stored log up to `c` (one chained hash) must be
//! the log every other node committed up to `c`, and must extend the
//! highest commit point recorded below `c`. The tester's service checks the
//! same property again at the service level, on every `ApplyMsg` (see
//! `crate::raft::service`).

use std::collections::BTreeMap;

use ::raft::core::NodeId;

use super::node_log::{Link, NodeLog};

/// One commit point: the log up to `link.index` is committed.
#[derive(Clone, Copy, Debug)]
pub struct CommitPoint {
    pub link: Link,
    /// The node that first reported it.
    pub node: NodeId,
}

#[derive(Debug, Default)]
pub struct StateMachineSafety {
    /// Commit points reported by any node, by index.
    points: BTreeMap<u64, CommitPoint>,
    /// For each term, the highest commit index a node reported while in it.
    /// An entry committed as seen in term `t` was committed by the leader of
    /// some term at or before `t` (leader completeness needs this).
    highest_commit_by_term: BTreeMap<u64, u64>,
}

impl StateMachineSafety {
    /// `node`, in `term`, reports commit index `commit_index` over its
    /// stored log `log`.
    pub fn record_commit(
        &mut self,
        node: NodeId,
        term: u64,
        commit_index: u64,
        log: &NodeLog,
    ) -> Result<(), String> {
        if commit_index == 0 {
            return Ok(());
        }
        let link = log.link_at(commit_index).ok_or_else(|| {
            format!(
                "state machine safety (§5.4.3): node {node} in term {term} reports commit index \
                 {commit_index}, but its stored log covers {}..={} (snapshot through {})",
                log.first_index(),
                log.last_index(),
                log.snapshot_index()
            )
        })?;
        let highest = self.highest_commit_by_term.entry(term).or_insert(0);
        *highest = (*highest).max(commit_index);
        if let Some(point) = self.points.get(&commit_index) {
            if point.link != link {
                return Err(format!(
                    "state machine safety (§5.4.3): node {node} committed index {commit_index} \
                     with term {} and a log that differs from the one node {} committed there \
                     (term {})",
                    link.term, point.node, point.link.term
                ));
            }
            return Ok(());
        }
        // The commit point below must be a prefix of this node's log (if the
        // node still holds that index; compacted ones are covered by the
        // snapshot checks).
        if let Some((&below, point)) = self.points.range(..commit_index).next_back()
            && let Some(own) = log.link_at(below)
            && own != point.link
        {
            return Err(format!(
                "state machine safety (§5.4.3): node {node} commits index {commit_index}, but its \
                 log at index {below} (term {}) differs from what node {} committed there (term \
                 {})",
                own.term, point.node, point.link.term
            ));
        }
        self.points.insert(commit_index, CommitPoint { link, node });
        Ok(())
    }

    /// The highest index known committed by a leader of a term before
    /// `term`, with its commit point.
    pub fn committed_before_term(&self, term: u64) -> Option<CommitPoint> {
        let index = self
            .highest_commit_by_term
            .range(..term)
            .map(|(_, &index)| index)
            .max()?;
        self.points.get(&index).copied()
    }

    /// The commit point recorded at exactly `index`, if any.
    pub fn point_at(&self, index: u64) -> Option<CommitPoint> {
        self.points.get(&index).copied()
    }

    pub fn highest_commit_index(&self) -> u64 {
        self.points.keys().next_back().copied().unwrap_or(0)
    }
}
