//! The replicated log as one node sees it: a snapshot prefix, the entries
//! after it, and three cursors.
//!
//! ```text
//!   compacted (in the snapshot) | entries kept in memory
//!   1 ........ snapshot_index   | first_index ..................... last_index
//!                               |      applied_index <= commit_index <= last_index
//!                               |      stable_index: entries up to here are on disk
//! ```
//!
//! `applied_index` is what has been handed to the service through a `Ready`,
//! `stable_index` what the driver has confirmed persisted. Both only move
//! forward, except that a conflicting leader can cut the unstable tail.

use super::entry::{Entry, EntryKind, PersistentState, SnapshotMeta};
use super::membership::Membership;

#[derive(Clone, Debug)]
pub struct RaftLog {
    snapshot: SnapshotMeta,
    /// `entries[i].index == snapshot.last_included_index + 1 + i`.
    entries: Vec<Entry>,
    /// The configuration entries among `entries`, decoded, by index
    /// (ascending): the newest is the configuration in force.
    configs: Vec<(u64, Membership)>,
    commit_index: u64,
    applied_index: u64,
    stable_index: u64,
}

impl RaftLog {
    /// The log as found on disk at start: everything loaded is stable; the
    /// snapshot counts as applied (the service restores it first).
    ///
    /// # Panics
    /// If a configuration entry does not decode (storage checks them at
    /// load with [`RaftLog::check_config_entries`], so only a caller that
    /// skips it gets here).
    pub fn restore(state: &PersistentState) -> RaftLog {
        let snapshot = state
            .snapshot
            .as_ref()
            .map(|s| s.meta.clone())
            .unwrap_or_default();
        if let Err(error) = RaftLog::check_config_entries(&state.entries) {
            panic!("log: {error}");
        }
        let configs = state
            .entries
            .iter()
            .filter(|entry| entry.kind == EntryKind::Config)
            .map(|entry| (entry.index, decode_config(entry)))
            .collect();
        let commit_floor = snapshot.last_included_index;
        let log = RaftLog {
            snapshot,
            configs,
            entries: state.entries.clone(),
            commit_index: state.hard_state.commit_index.max(commit_floor),
            applied_index: commit_floor,
            stable_index: 0,
        };
        let log = RaftLog {
            stable_index: log.last_index(),
            ..log
        };
        log.check_invariants();
        log
    }

    fn check_invariants(&self) {
        for (offset, entry) in self.entries.iter().enumerate() {
            let expected = self.snapshot.last_included_index + 1 + offset as u64;
            assert_eq!(
                entry.index, expected,
                "log: entry at offset {offset} has the wrong index"
            );
        }
        assert!(
            self.commit_index <= self.last_index(),
            "log: commit index {} beyond last index {}",
            self.commit_index,
            self.last_index()
        );
        assert!(
            self.applied_index <= self.commit_index,
            "log: applied index {} beyond commit index {}",
            self.applied_index,
            self.commit_index
        );
    }

    pub fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// `Err` names the first configuration entry among `entries` that does
    /// not decode to a valid configuration.
    pub fn check_config_entries(entries: &[Entry]) -> Result<(), String> {
        for entry in entries.iter().filter(|e| e.kind == EntryKind::Config) {
            Membership::decode(&entry.data).map_err(|reason| {
                format!(
                    "configuration entry {} (term {}): {reason}",
                    entry.index, entry.term
                )
            })?;
        }
        Ok(())
    }

    /// The configuration in force: the newest configuration entry held, or
    /// the snapshot's. None: neither names one (the bootstrap
    /// configuration applies).
    pub fn membership(&self) -> Option<&Membership> {
        self.configs
            .last()
            .map(|(_, membership)| membership)
            .or(self.snapshot.membership.as_ref())
    }

    /// The configuration as of `index` (the newest at or before it), as
    /// [`RaftLog::membership`] for a log ending there.
    pub fn membership_at(&self, index: u64) -> Option<&Membership> {
        self.configs
            .iter()
            .rev()
            .find(|(config_index, _)| *config_index <= index)
            .map(|(_, membership)| membership)
            .or(self.snapshot.membership.as_ref())
    }

    /// Index of the newest configuration entry held after the snapshot (0:
    /// none; the snapshot's configuration is committed).
    pub fn last_config_index(&self) -> u64 {
        self.configs.last().map_or(0, |(index, _)| *index)
    }

    /// The first index held as an entry (after the snapshot).
    pub fn first_index(&self) -> u64 {
        self.snapshot.last_included_index + 1
    }

    pub fn last_index(&self) -> u64 {
        self.snapshot.last_included_index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot.last_included_term, |e| e.term)
    }

    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn stable_index(&self) -> u64 {
        self.stable_index
    }

    /// The term of the entry at `index`: known for the snapshot's last entry
    /// and for every entry held; `None` if compacted away or beyond the end.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot.last_included_index {
            return Some(self.snapshot.last_included_term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub fn entry(&self, index: u64) -> Option<&Entry> {
        if index < self.first_index() {
            return None;
        }
        self.entries.get((index - self.first_index()) as usize)
    }

    /// The summed [`Entry::size_bytes`] of the entries held in
    /// `first..=last` (0 if the range is empty).
    pub fn size_bytes_between(&self, first: u64, last: u64) -> u64 {
        (first.max(self.first_index())..=last)
            .map_while(|index| self.entry(index))
            .map(|entry| entry.size_bytes() as u64)
            .sum()
    }

    /// True if this log holds an entry at `index` with `term` (the log
    /// matching check of AppendEntries).
    pub fn matches(&self, index: u64, term: u64) -> bool {
        self.term_at(index) == Some(term)
    }

    /// Raft's "at least as up-to-date" (paper section 5.4.1): a later last term
    /// wins; with equal last terms the longer log wins.
    pub fn is_up_to_date(&self, last_log_index: u64, last_log_term: u64) -> bool {
        last_log_term > self.last_term()
            || (last_log_term == self.last_term() && last_log_index >= self.last_index())
    }

    /// Entries from `index` on, at most `max_count` of them and at most
    /// `max_bytes` of them (but always at least one if any exist).
    ///
    /// # Panics
    /// If `index` was compacted away: the caller sends a snapshot instead.
    pub fn entries_from(&self, index: u64, max_count: usize, max_bytes: usize) -> Vec<Entry> {
        assert!(
            index >= self.first_index(),
            "log: entries from {index} requested but the log starts at {}",
            self.first_index()
        );
        let mut batch = Vec::new();
        let mut size_bytes = 0;
        let start = (index - self.first_index()) as usize;
        for entry in self.entries.iter().skip(start).take(max_count) {
            if !batch.is_empty() && size_bytes + entry.size_bytes() > max_bytes {
                break;
            }
            size_bytes += entry.size_bytes();
            batch.push(entry.clone());
        }
        batch
    }

    /// The first index of the run of entries with the same term as the entry
    /// at `index` (the follower's fast-backup hint). Stops at the first index
    /// held, since the snapshot hides earlier terms.
    pub fn first_index_of_term_at(&self, index: u64) -> u64 {
        let term = self
            .term_at(index)
            .expect("first_index_of_term_at: index not held");
        let mut first = index;
        while first > self.first_index() && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// The last index holding an entry of `term`, if the log has one (the
    /// leader's use of the fast-backup hint).
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        if let Some(entry) = self.entries.iter().rev().find(|e| e.term <= term) {
            return (entry.term == term).then_some(entry.index);
        }
        (self.snapshot.last_included_term == term && self.snapshot.last_included_index > 0)
            .then_some(self.snapshot.last_included_index)
    }

    /// The leader appends its own new entry.
    pub fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index() + 1,
            "log: appending index {} after last index {}",
            entry.index,
            self.last_index()
        );
        assert!(
            entry.term >= self.last_term(),
            "log: appending term {} after last term {} at index {}",
            entry.term,
            self.last_term(),
            entry.index
        );
        if entry.kind == EntryKind::Config {
            self.configs.push((entry.index, decode_config(&entry)));
        }
        self.entries.push(entry);
    }

    /// A follower stores the leader's entries, which follow an entry this log
    /// already matches. Entries already held with the same term are kept;
    /// from the first conflicting one on, the log is replaced (paper Figure 2,
    /// AppendEntries receiver steps 3-4). Returns the last index the request
    /// covers.
    ///
    /// # Panics
    /// If a conflict would remove a committed entry (that would break state
    /// machine safety).
    pub fn append_from_leader(&mut self, entries: Vec<Entry>) -> Option<u64> {
        let mut last_covered = None;
        for entry in entries {
            last_covered = Some(entry.index);
            match self.term_at(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(term) => {
                    assert!(
                        entry.index > self.commit_index,
                        "log: leader entry (index {}, term {}) conflicts with committed entry of \
                         term {term} (commit index {})",
                        entry.index,
                        entry.term,
                        self.commit_index
                    );
                    self.truncate_from(entry.index);
                    self.append(entry);
                }
                None => self.append(entry),
            }
        }
        last_covered
    }

    fn truncate_from(&mut self, index: u64) {
        assert!(
            index >= self.first_index(),
            "log: truncating compacted index {index}"
        );
        self.entries.truncate((index - self.first_index()) as usize);
        self.configs
            .retain(|(config_index, _)| *config_index < index);
        self.stable_index = self.stable_index.min(index - 1);
    }

    /// Moves the commit index forward.
    ///
    /// # Panics
    /// If `index` is beyond the log.
    pub fn commit_to(&mut self, index: u64) {
        if index <= self.commit_index {
            return;
        }
        assert!(
            index <= self.last_index(),
            "log: committing {index} beyond last index {}",
            self.last_index()
        );
        self.commit_index = index;
    }

    /// Entries not yet confirmed on stable storage.
    pub fn unstable_entries(&self) -> &[Entry] {
        let start = (self.stable_index.max(self.snapshot.last_included_index) + 1
            - self.first_index()) as usize;
        &self.entries[start..]
    }

    /// The driver persisted entries up to `(index, term)`. Ignored if the log
    /// was cut and rewritten there in the meantime.
    pub fn stable_to(&mut self, index: u64, term: u64) {
        if self.matches(index, term) && index > self.stable_index {
            self.stable_index = index;
        }
    }

    /// Committed entries not yet handed to the service, at most `max_count`.
    pub fn entries_to_apply(&self, max_count: usize) -> Vec<Entry> {
        if self.applied_index >= self.commit_index {
            return Vec::new();
        }
        let count = ((self.commit_index - self.applied_index) as usize).min(max_count);
        self.entries_from(self.applied_index + 1, count, usize::MAX)
    }

    pub fn applied_to(&mut self, index: u64) {
        assert!(
            index <= self.commit_index,
            "log: applying {index} beyond commit index {}",
            self.commit_index
        );
        self.applied_index = self.applied_index.max(index);
    }

    /// The service snapshotted its state through `index`: drop the entries it
    /// covers. Returns the new snapshot's metadata (its configuration is
    /// the one in force at `index`, `bootstrap` if no entry named one).
    ///
    /// # Panics
    /// If `index` was not applied yet or is already compacted.
    pub fn compact_to(&mut self, index: u64, bootstrap: &Membership) -> SnapshotMeta {
        assert!(
            index <= self.applied_index,
            "log: compacting to {index} beyond applied index {}",
            self.applied_index
        );
        let term = self
            .term_at(index)
            .expect("log: compacting to an index not held");
        let membership = self
            .membership_at(index)
            .cloned()
            .unwrap_or_else(|| bootstrap.clone());
        let drop_count = (index - self.snapshot.last_included_index) as usize;
        self.entries.drain(..drop_count);
        self.configs
            .retain(|(config_index, _)| *config_index > index);
        self.snapshot = SnapshotMeta {
            last_included_index: index,
            last_included_term: term,
            membership: Some(membership),
        };
        self.snapshot.clone()
    }

    /// A snapshot from the leader replaces the prefix it covers. If this log
    /// holds the snapshot's last entry with the same term, the entries after
    /// it are kept; otherwise the whole log is discarded (paper section 7,
    /// InstallSnapshot receiver steps 6-7). Commit and applied indexes jump to
    /// the snapshot (the service will load it before any later entry).
    /// The snapshot's configuration replaces the configurations it covers.
    pub fn install_snapshot(&mut self, meta: SnapshotMeta) {
        assert!(
            meta.last_included_index > self.commit_index,
            "log: installing snapshot at {} at or below commit index {}",
            meta.last_included_index,
            self.commit_index
        );
        if self.matches(meta.last_included_index, meta.last_included_term) {
            let drop_count =
                (meta.last_included_index - self.snapshot.last_included_index) as usize;
            self.entries.drain(..drop_count);
            self.configs
                .retain(|(config_index, _)| *config_index > meta.last_included_index);
        } else {
            self.entries.clear();
            self.configs.clear();
            self.stable_index = self.stable_index.min(meta.last_included_index);
        }
        let last_included_index = meta.last_included_index;
        self.snapshot = meta;
        self.commit_index = last_included_index;
        self.applied_index = last_included_index;
        self.stable_index = self.stable_index.max(last_included_index);
        self.check_invariants();
    }
}

/// A configuration entry this log holds: checked before it got here.
fn decode_config(entry: &Entry) -> Membership {
    Membership::decode(&entry.data).unwrap_or_else(|reason| {
        panic!(
            "log: configuration entry {} was appended without being checked: {reason}",
            entry.index
        )
    })
}
