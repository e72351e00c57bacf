//! What only moves forward (Raft paper Figure 2 and §5.1): a node's current
//! term never decreases, not even across a crash (it is persistent state);
//! its stored snapshot never moves back (it is persistent too); while a
//! node runs, its commit index, the index it has handed to its service and
//! its core's snapshot never decrease; and always `snapshot <= applied <=
//! commit <= last log index`. (The core's snapshot may be ahead of the
//! stored one while the snapshot is written off the loop: a crash then
//! restarts the node from the older stored one, with the log that covers
//! the difference.)
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
    /// The snapshot stored (durable).
    stored_snapshot_index: u64,
    /// Since the node's last start.
    snapshot_index: u64,
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
        let stored_snapshot_index = match &observation.durable {
            Durable::Loaded(state) => state
                .snapshot
                .as_ref()
                .map_or(0, |s| s.meta.last_included_index),
            Durable::Saved {
                snapshot: Some(snapshot),
                ..
            } => snapshot.meta.last_included_index,
            Durable::Saved { snapshot: None, .. } => last.stored_snapshot_index,
        };
        let now = Seen {
            term: observation.term,
            stored_snapshot_index,
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
        if now.stored_snapshot_index < last.stored_snapshot_index {
            return fail(
                "stored snapshot index",
                last.stored_snapshot_index,
                now.stored_snapshot_index,
            );
        }
        if !restarted && now.snapshot_index < last.snapshot_index {
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

#[cfg(test)]
mod tests {
    use ::raft::core::{PersistentState, Role, Snapshot, SnapshotMeta};

    use super::*;

    fn observation(durable: Durable, snapshot_index: u64) -> Observation {
        Observation {
            node: 1,
            durable,
            term: 2,
            voted_for: None,
            role: Role::Follower,
            commit_index: 20,
            applied_index: 20,
            last_index: 20,
            snapshot: SnapshotMeta::at(snapshot_index, 2),
        }
    }

    fn saved(snapshot: Option<u64>) -> Durable {
        Durable::Saved {
            hard_state: None,
            snapshot: snapshot.map(|index| Snapshot {
                meta: SnapshotMeta::at(index, 2),
                data: Default::default(),
            }),
            entries: Vec::new(),
        }
    }

    fn loaded(snapshot: Option<u64>) -> Durable {
        let mut state = PersistentState::default();
        state.hard_state.term = 2;
        state.snapshot = snapshot.map(|index| Snapshot {
            meta: SnapshotMeta::at(index, 2),
            data: Default::default(),
        });
        Durable::Loaded(state)
    }

    /// A snapshot the core took but the node had not yet stored when it
    /// crashed may be gone after the restart; a stored one may not.
    #[test]
    fn the_stored_snapshot_never_moves_back_the_cores_only_while_running() {
        let mut monotonic = Monotonic::default();
        monotonic.observe(&observation(loaded(None), 0)).unwrap();
        // Taken, being written: the core is ahead of the stored snapshot.
        monotonic.observe(&observation(saved(None), 10)).unwrap();
        let running_back = monotonic.observe(&observation(saved(None), 5));
        assert!(
            running_back
                .unwrap_err()
                .contains("snapshot index went from 10 back to 5")
        );
        // A crash before it was stored: the restart starts from none.
        let mut monotonic = Monotonic::default();
        monotonic.observe(&observation(saved(None), 10)).unwrap();
        monotonic.observe(&observation(loaded(None), 0)).unwrap();
        // Stored, then lost at the restart: broken.
        monotonic
            .observe(&observation(saved(Some(10)), 10))
            .unwrap();
        let lost = monotonic.observe(&observation(loaded(None), 0));
        assert!(
            lost.unwrap_err()
                .contains("stored snapshot index went from 10 back to 0")
        );
    }
}
