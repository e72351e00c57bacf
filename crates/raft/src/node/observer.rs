//! [`Observer`]: an optional hook through which a test watches every step
//! of a node, to check Raft's safety invariants as the run goes (the
//! simulation suites in `sim-tests` do this).
//!
//! The driver calls the observer synchronously:
//! - once at start, right after `Storage::load`, with everything loaded;
//! - after every `Ready`, right after its write is durable and before its
//!   messages leave, with what was written and the core's state;
//! - after a snapshot written off the loop is installed
//!   (`Storage::stage_snapshot`), with that snapshot alone, as if a `Ready`
//!   had saved it. Until then the core's snapshot
//!   ([`Observation::snapshot`]) is ahead of the stored one.
//!
//! Between the durable write and the call there is no await, so a node
//! killed at any point has had every completed write observed, and nothing
//! else: what a test learns this way is exactly what survives a crash.
//! Without an observer the driver does no extra work (no clones).

use std::fmt;
use std::sync::Arc;

use crate::core::{Entry, HardState, NodeId, PersistentState, Role, Snapshot, SnapshotMeta};

/// What one step made durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Durable {
    /// The node (re)started from this stored state.
    Loaded(PersistentState),
    /// A `Ready` wrote this, with the semantics of
    /// [`crate::storage::StorageWrite`]: the snapshot first, then the
    /// entries (replacing stored ones from the first index on), then the
    /// hard state. All empty when the `Ready` wrote nothing.
    Saved {
        hard_state: Option<HardState>,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
    },
}

/// One node's state after one step, as the core sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub node: NodeId,
    pub durable: Durable,
    pub term: u64,
    pub voted_for: Option<NodeId>,
    pub role: Role,
    pub commit_index: u64,
    /// Entries handed to the service so far (this `Ready`'s are not yet).
    pub applied_index: u64,
    pub last_index: u64,
    /// The core's snapshot: the stored one, or a newer one being written
    /// off the loop (see the module docs).
    pub snapshot: SnapshotMeta,
}

/// Called with every [`Observation`] of a node, on the node's event loop
/// task. It must not block; it may panic to stop a run on a broken
/// invariant.
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(Observation) + Send + Sync>);

impl Observer {
    pub fn new(observe: impl Fn(Observation) + Send + Sync + 'static) -> Observer {
        Observer(Arc::new(observe))
    }

    pub(super) fn observe(&self, observation: Observation) {
        (self.0)(observation);
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}
