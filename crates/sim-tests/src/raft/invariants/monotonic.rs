//! What only moves forward (Raft paper Figure 2 and §5.1): a node's current
//! term never decreases, not even across a crash (it is persistent state);
//! its snapshot never moves back (it is persistent too); while a node runs,
//! its commit index and the index it has handed to its service never
//! decrease; and always `snapshot <= applied <= commit <= last log index`.
//!
//! Also durability (Figure 2, "updated on stable storage before responding
//! to RPCs"): what a node loads at restart is exactly what it had made
//! durable before it crashed (checked in [`super::Checker`], which owns the
//! mirror of each node's storage).

use std::collections::BTreeMap;

use ::raft::core::NodeId;
use ::raft::node::{Durable, Observation};

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    term: u64,
    snapshot_index: u64,
    /// Since the node's last start.
    commit_index: u64,
    applied_index: u64,
}

#[derive(Debug, Default)]
pub struct Monotonic {
    seen: BTreeMap<NodeId, Seen>,
}

impl Monotonic {
    pub fn observe(&mut self, observation: &Observation) -> Result<(), String> {
        let node = observation.node;
        let restarted = matches!(observation.durable, Durable::Loaded(_));
        let last = self.seen.get(&node).copied().unwrap_or_default();
        let now = Seen {
            term: observation.term,
            snapshot_index: observation.snapshot.last_included_index,
            commit_index: observation.commit_index,
            applied_index: observation.applied_index,
        };
        let fail = |what: &str, before: u64, after: u64| {
            Err(format!(
                "monotonic (Figure 2): node {node}'s {what} went from {before} back to {after}"
            ))
        };
        if now.term < last.term {
            return fail("term", last.term, now.term);
        }
        if now.snapshot_index < last.snapshot_index {
            return fail("snapshot index", last.snapshot_index, now.snapshot_index);
        }
        if !restarted && now.commit_index < last.commit_index {
            return fail("commit index", last.commit_index, now.commit_index);
        }
        if !restarted && now.applied_index < last.applied_index {
            return fail("applied index", last.applied_index, now.applied_index);
        }
        let ordered = now.snapshot_index <= now.applied_index
            && now.applied_index <= now.commit_index
            && now.commit_index <= observation.last_index;
        if !ordered {
            return Err(format!(
                "monotonic (Figure 2): node {node} in term {} reports snapshot {} applied {} \
                 commit {} last index {}, out of order",
                now.term,
                now.snapshot_index,
                now.applied_index,
                now.commit_index,
                observation.last_index
            ));
        }
        self.seen.insert(node, now);
        Ok(())
    }
}
