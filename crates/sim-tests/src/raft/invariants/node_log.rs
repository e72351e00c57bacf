//! [`NodeLog`]: the checker's mirror of what one node has stored, with a
//! chained hash per entry so that "these two logs are identical up to index
//! i" is one comparison.

use ::raft::core::{Entry, EntryKind, PersistentState, SnapshotMeta};
use ::raft::node::Durable;
use ::raft::storage::StorageWrite;

/// One position of a log: its index and term, and a hash of the whole log
/// up to and including it (`chain(i) = hash(chain(i - 1), entry i)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u64,
    pub term: u64,
    pub chain: u64,
}

/// What one node has durably stored, rebuilt from its observations with the
/// storage's own write rule ([`StorageWrite::apply_to`]), so it is exactly
/// what the node would load after a crash.
#[derive(Clone, Debug, Default)]
pub struct NodeLog {
    pub stored: PersistentState,
    /// The snapshot's last entry, with the chain of the log it replaced.
    pub snapshot: Option<Link>,
    /// One link per stored entry, in order.
    pub links: Vec<Link>,
}

/// Chains `entry` onto the log hash `previous` (FNV-1a over the fields).
pub fn chain(previous: u64, entry: &Entry) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = previous ^ 0xcbf2_9ce4_8422_2325;
    let kind: u8 = match entry.kind {
        EntryKind::Command => 1,
        EntryKind::Noop => 2,
        EntryKind::Config => 3,
    };
    let header = entry
        .index
        .to_le_bytes()
        .into_iter()
        .chain(entry.term.to_le_bytes());
    for byte in header.chain([kind]).chain(entry.data.iter().copied()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
    }
    hash
}

impl NodeLog {
    /// Applies what the node made durable. `snapshot_chain` gives the chain
    /// of a snapshot's last entry (known from whichever node stored that
    /// entry). Returns the links that are new or rewritten.
    pub fn apply(
        &mut self,
        durable: &Durable,
        snapshot_chain: impl Fn(SnapshotMeta) -> Result<u64, String>,
    ) -> Result<Vec<Link>, String> {
        match durable {
            Durable::Loaded(state) => {
                self.stored = state.clone();
                self.rebuild_from(0, snapshot_chain)
            }
            Durable::Saved {
                hard_state,
                snapshot,
                entries,
            } => {
                let write = StorageWrite {
                    hard_state: *hard_state,
                    snapshot: snapshot.as_ref(),
                    entries,
                };
                write
                    .apply_to(&mut self.stored)
                    .map_err(|error| format!("the driver saved an invalid write: {error}"))?;
                if snapshot.is_some() {
                    // The kept suffix now hangs off a new snapshot: rechain all.
                    return self.rebuild_from(0, snapshot_chain);
                }
                match entries.first() {
                    Some(first) => {
                        let position = first.index - self.first_index();
                        self.rebuild_from(position as usize, snapshot_chain)
                    }
                    None => Ok(Vec::new()),
                }
            }
        }
    }

    /// Recomputes the links from stored entry `position` on.
    fn rebuild_from(
        &mut self,
        position: usize,
        snapshot_chain: impl Fn(SnapshotMeta) -> Result<u64, String>,
    ) -> Result<Vec<Link>, String> {
        if position == 0 {
            self.snapshot = match &self.stored.snapshot {
                Some(snapshot) => Some(Link {
                    index: snapshot.meta.last_included_index,
                    term: snapshot.meta.last_included_term,
                    chain: snapshot_chain(snapshot.meta.clone())?,
                }),
                None => None,
            };
        }
        self.links.truncate(position);
        let mut previous = match position {
            0 => self.snapshot.map_or(0, |link| link.chain),
            _ => self.links[position - 1].chain,
        };
        for entry in &self.stored.entries[position..] {
            previous = chain(previous, entry);
            self.links.push(Link {
                index: entry.index,
                term: entry.term,
                chain: previous,
            });
        }
        Ok(self.links[position..].to_vec())
    }

    /// Index of the first stored entry (one past the snapshot).
    pub fn first_index(&self) -> u64 {
        self.snapshot.map_or(1, |link| link.index + 1)
    }

    pub fn last_index(&self) -> u64 {
        self.links
            .last()
            .or(self.snapshot.as_ref())
            .map_or(0, |link| link.index)
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.map_or(0, |link| link.index)
    }

    /// The link at `index`: a stored entry or the snapshot's last entry.
    /// None for index 0, for compacted indexes and beyond the log.
    pub fn link_at(&self, index: u64) -> Option<Link> {
        if index == 0 {
            return None;
        }
        if let Some(snapshot) = self.snapshot.filter(|link| link.index == index) {
            return Some(snapshot);
        }
        let position = index.checked_sub(self.first_index())?;
        self.links.get(usize::try_from(position).ok()?).copied()
    }
}
