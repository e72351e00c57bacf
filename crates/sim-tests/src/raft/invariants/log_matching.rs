//! Log Matching (Raft paper §5.3, Figure 3): if two logs contain an entry
//! with the same index and term, the logs are identical in all entries up
//! through that index.
//!
//! Every stored entry carries a chained hash of its whole log prefix
//! ([`super::node_log::chain`]), so the property is: one `(index, term)`,
//! one chain, across all nodes and all time. Checked on every entry any
//! node writes (and on every log loaded at restart).

use std::collections::BTreeMap;

use ::raft::core::{NodeId, SnapshotMeta};

use super::node_log::Link;

#[derive(Debug, Default)]
pub struct LogMatching {
    /// `(index, term)` -> (chain, first node seen storing it).
    chains: BTreeMap<(u64, u64), (u64, NodeId)>,
}

impl LogMatching {
    /// Records links `node` just stored; fails if one contradicts a link
    /// any node stored before.
    pub fn record(&mut self, node: NodeId, links: &[Link]) -> Result<(), String> {
        for link in links {
            let (chain, first_node) = *self
                .chains
                .entry((link.index, link.term))
                .or_insert((link.chain, node));
            if chain != link.chain {
                return Err(format!(
                    "log matching (§5.3): node {node} stores entry (index {}, term {}) but its \
                     log up to there differs from node {first_node}'s, which stores the same \
                     entry",
                    link.index, link.term
                ));
            }
        }
        Ok(())
    }

    /// The chain of the log ending at a snapshot's last entry. A snapshot
    /// replaces a prefix some node stored, so that entry must be known.
    pub fn chain_of(&self, node: NodeId, meta: SnapshotMeta) -> Result<u64, String> {
        self.chains
            .get(&(meta.last_included_index, meta.last_included_term))
            .map(|&(chain, _)| chain)
            .ok_or_else(|| {
                format!(
                    "log matching (§5.3, §7): node {node} stores a snapshot through (index {}, \
                     term {}), an entry no node ever stored",
                    meta.last_included_index, meta.last_included_term
                )
            })
    }

    pub fn entries_seen(&self) -> usize {
        self.chains.len()
    }
}
