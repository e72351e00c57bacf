//! Snapshot consistency (Raft paper §7): a snapshot replaces only
//! committed entries, so every snapshot a node stores (taken by its own
//! service or installed from a leader) must end on the committed log, and
//! two snapshots through the same index must hold the same service state
//! (the service is deterministic). Its last entry's chain (the log it
//! replaced) must agree with every commit point recorded at that index.
//!
//! Checked whenever a node stores or loads a snapshot. The tester's service
//! also checks each snapshot's content against the commands applied so far
//! (see `crate::raft::service`).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use ::raft::core::{NodeId, Snapshot};

use super::node_log::NodeLog;
use super::state_machine_safety::StateMachineSafety;

#[derive(Debug, Default)]
pub struct SnapshotConsistency {
    /// Snapshot last index -> (term, hash of data, first node storing it).
    snapshots: BTreeMap<u64, (u64, u64, NodeId)>,
}

impl SnapshotConsistency {
    /// `node` stored (or loaded) `snapshot`; `log` already includes it and
    /// `commit_index` is the node's commit index after this step.
    pub fn observe(
        &mut self,
        node: NodeId,
        snapshot: &Snapshot,
        commit_index: u64,
        log: &NodeLog,
        committed: &StateMachineSafety,
    ) -> Result<(), String> {
        let meta = snapshot.meta.clone();
        let index = meta.last_included_index;
        if index > commit_index {
            return Err(format!(
                "snapshot consistency (§7): node {node} stores a snapshot through {index} but has \
                 committed only {commit_index}"
            ));
        }
        let mut hasher = DefaultHasher::new();
        snapshot.data.hash(&mut hasher);
        let data_hash = hasher.finish();
        let &mut (term, first_hash, first_node) =
            self.snapshots
                .entry(index)
                .or_insert((meta.last_included_term, data_hash, node));
        if term != meta.last_included_term || first_hash != data_hash {
            return Err(format!(
                "snapshot consistency (§7): node {node}'s snapshot through {index} (term {}) \
                 differs from node {first_node}'s (term {term}) in {}",
                meta.last_included_term,
                if term != meta.last_included_term {
                    "its last term"
                } else {
                    "its data"
                }
            ));
        }
        if let (Some(point), Some(own)) = (committed.point_at(index), log.link_at(index))
            && point.link != own
        {
            return Err(format!(
                "snapshot consistency (§7): node {node}'s snapshot through {index} replaced a log \
                 that differs from the one node {} committed there",
                point.node
            ));
        }
        Ok(())
    }
}
