//! The exactly-once table: per client, its latest write's seq, the answer
//! recorded for it, and when (in log time) it was last active.
//!
//! ```text
//!  command (client_id, seq) ─► check ─┬─ New        -> execute, record(reply)
//!                                     ├─ Duplicate  -> the recorded reply
//!                                     └─ Stale      -> refuse (an older seq)
//!  every apply: expire_idle(log time)   clients idle >= idle_expiry_ms go
//!  every record: over max_clients?      the least recently active goes
//! ```
//!
//! Generic over the recorded reply and serializable, so a state machine
//! keeps it in its snapshot; shardkv keeps one table per shard and moves a
//! shard's entries with the shard ([`SessionTable::export`],
//! [`SessionTable::import`]).
//!
//! The caller guarantees that a client runs one write at a time with
//! increasing seqs (a clerk's session), and that the idle expiry exceeds
//! the clerk's operation deadline: a client forgotten while a retry is in
//! flight could see that write applied twice.
//!
//! Everything is in log time and ordered maps, so every replica forgets
//! the same clients at the same log position.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bounds of a [`SessionTable`]; identical on every replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLimits {
    /// Past this many clients the least recently active is forgotten.
    pub max_clients: u64,
    /// A client silent this long (log time) is forgotten.
    pub idle_expiry_ms: u64,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            max_clients: api::DEFAULT_MAX_CLIENTS,
            idle_expiry_ms: api::DEFAULT_CLIENT_IDLE_EXPIRY_MS,
        }
    }
}

impl From<&api::MachineConfig> for SessionLimits {
    /// The exactly-once bounds of a key/value machine.
    fn from(config: &api::MachineConfig) -> SessionLimits {
        SessionLimits {
            max_clients: config.max_clients,
            idle_expiry_ms: config.client_idle_expiry_ms,
        }
    }
}

/// One client's latest write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry<R> {
    pub last_seq: u64,
    /// The answer that write got, returned to its retries.
    pub reply: R,
    pub last_active_ms: u64,
}

/// What the table knows of `(client_id, seq)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionCheck<'a, R> {
    /// Not applied yet: execute it, then [`SessionTable::record`].
    New,
    /// Applied already; this is its recorded answer.
    Duplicate(&'a R),
    /// Older than the client's latest write, whose answer replaced it.
    Stale { latest: u64 },
}

/// The table. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTable<R> {
    limits: SessionLimits,
    sessions: BTreeMap<u64, SessionEntry<R>>,
    /// `(last_active_ms, client_id)` of every session: the idle order.
    /// Derived from `sessions` (not serialized; rebuilt on decode).
    idle_order: BTreeSet<(u64, u64)>,
}

impl<R> SessionTable<R> {
    pub fn new(limits: SessionLimits) -> SessionTable<R> {
        SessionTable {
            limits,
            sessions: BTreeMap::new(),
            idle_order: BTreeSet::new(),
        }
    }

    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn check(&self, client_id: u64, seq: u64) -> SessionCheck<'_, R> {
        match self.sessions.get(&client_id) {
            Some(entry) if seq == entry.last_seq => SessionCheck::Duplicate(&entry.reply),
            Some(entry) if seq < entry.last_seq => SessionCheck::Stale {
                latest: entry.last_seq,
            },
            _ => SessionCheck::New,
        }
    }

    /// The recorded answer of `(client_id, seq)` if that is the client's
    /// latest write.
    pub fn recorded(&self, client_id: u64, seq: u64) -> Option<&R> {
        match self.check(client_id, seq) {
            SessionCheck::Duplicate(reply) => Some(reply),
            _ => None,
        }
    }

    /// Records the answer of a write that [`SessionTable::check`] found
    /// `New`, applied at log time `now_ms`; then enforces `max_clients`.
    ///
    /// # Panics
    /// If `seq` is not newer than the client's recorded one (the caller
    /// skipped the check: a bug).
    pub fn record(&mut self, client_id: u64, seq: u64, reply: R, now_ms: u64) {
        let entry = SessionEntry {
            last_seq: seq,
            reply,
            last_active_ms: now_ms,
        };
        if let Some(old) = self.sessions.insert(client_id, entry) {
            assert!(
                seq > old.last_seq,
                "client {client_id}: recording seq {seq} over seq {}",
                old.last_seq
            );
            self.idle_order.remove(&(old.last_active_ms, client_id));
        }
        self.idle_order.insert((now_ms, client_id));
        self.enforce_bound();
    }

    /// Forgets clients idle for `idle_expiry_ms` at log time `now_ms`;
    /// returns how many.
    pub fn expire_idle(&mut self, now_ms: u64) -> u64 {
        let mut forgotten = 0;
        while let Some(&(last_active_ms, _)) = self.idle_order.first() {
            if last_active_ms.saturating_add(self.limits.idle_expiry_ms) > now_ms {
                break;
            }
            self.forget_least_recent();
            forgotten += 1;
        }
        forgotten
    }

    /// Every entry, by client id.
    pub fn entries(&self) -> impl Iterator<Item = (u64, &SessionEntry<R>)> {
        self.sessions
            .iter()
            .map(|(&client_id, entry)| (client_id, entry))
    }

    /// Every entry, to move with a shard.
    pub fn export(&self) -> Vec<(u64, SessionEntry<R>)>
    where
        R: Clone,
    {
        self.entries()
            .map(|(client_id, entry)| (client_id, entry.clone()))
            .collect()
    }

    /// Merges entries from another table (a shard arriving). Per client the
    /// later write wins (higher seq; on a tie, the entry already here);
    /// then `max_clients` is enforced.
    pub fn import(&mut self, entries: impl IntoIterator<Item = (u64, SessionEntry<R>)>) {
        for (client_id, entry) in entries {
            match self.sessions.get(&client_id) {
                Some(existing) if existing.last_seq >= entry.last_seq => continue,
                Some(existing) => {
                    self.idle_order
                        .remove(&(existing.last_active_ms, client_id));
                }
                None => {}
            }
            self.idle_order.insert((entry.last_active_ms, client_id));
            self.sessions.insert(client_id, entry);
        }
        self.enforce_bound();
    }

    fn enforce_bound(&mut self) {
        while self.sessions.len() as u64 > self.limits.max_clients {
            self.forget_least_recent();
        }
        debug_assert_eq!(self.sessions.len(), self.idle_order.len());
    }

    fn forget_least_recent(&mut self) {
        if let Some((_, client_id)) = self.idle_order.pop_first() {
            self.sessions.remove(&client_id);
        }
    }
}

/// What a table serializes as: the limits and the entries.
#[derive(Serialize)]
struct TableWireRef<'a, R> {
    limits: &'a SessionLimits,
    sessions: &'a BTreeMap<u64, SessionEntry<R>>,
}

#[derive(Deserialize)]
struct TableWire<R> {
    limits: SessionLimits,
    sessions: BTreeMap<u64, SessionEntry<R>>,
}

impl<R: Serialize> Serialize for SessionTable<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        TableWireRef {
            limits: &self.limits,
            sessions: &self.sessions,
        }
        .serialize(serializer)
    }
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for SessionTable<R> {
    /// Rebuilds the idle order; a table over its own bound is refused.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = TableWire::<R>::deserialize(deserializer)?;
        if wire.sessions.len() as u64 > wire.limits.max_clients {
            return Err(D::Error::custom(format!(
                "session table holds {} clients, over its bound of {}",
                wire.sessions.len(),
                wire.limits.max_clients
            )));
        }
        let idle_order = wire
            .sessions
            .iter()
            .map(|(&client_id, entry)| (entry.last_active_ms, client_id))
            .collect();
        Ok(SessionTable {
            limits: wire.limits,
            sessions: wire.sessions,
            idle_order,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::{STATE_LIMIT, decode, encode};

    fn limits(max_clients: u64, idle_expiry_ms: u64) -> SessionLimits {
        SessionLimits {
            max_clients,
            idle_expiry_ms,
        }
    }

    #[test]
    fn checks_new_duplicate_and_stale() {
        let mut table = SessionTable::new(SessionLimits::default());
        assert_eq!(table.check(1, 1), SessionCheck::New);
        table.record(1, 1, "first", 0);
        assert_eq!(table.check(1, 1), SessionCheck::Duplicate(&"first"));
        assert_eq!(table.check(1, 2), SessionCheck::New);
        table.record(1, 2, "second", 5);
        assert_eq!(table.check(1, 1), SessionCheck::Stale { latest: 2 });
        assert_eq!(table.recorded(1, 2), Some(&"second"));
        assert_eq!(table.recorded(1, 1), None);
    }

    #[test]
    #[should_panic(expected = "recording seq 1 over seq 1")]
    fn recording_an_old_seq_is_a_bug() {
        let mut table = SessionTable::new(SessionLimits::default());
        table.record(1, 1, (), 0);
        table.record(1, 1, (), 0);
    }

    #[test]
    fn bounded_and_idle_clients_are_forgotten_in_log_time() {
        let mut table = SessionTable::new(limits(2, 1000));
        table.record(1, 1, 'a', 0);
        table.record(2, 1, 'b', 10);
        table.record(3, 1, 'c', 20);
        assert_eq!(table.len(), 2);
        assert_eq!(table.check(1, 1), SessionCheck::New, "least recent went");
        assert_eq!(table.expire_idle(1009), 0);
        assert_eq!(table.expire_idle(1010), 1);
        assert_eq!(table.recorded(3, 1), Some(&'c'));
        assert_eq!(table.expire_idle(1020), 1);
        assert!(table.is_empty());
    }

    #[test]
    fn export_and_import_keep_the_later_write_and_the_bound() {
        let mut source = SessionTable::new(limits(10, 1000));
        source.record(1, 5, "five", 100);
        source.record(2, 1, "one", 200);
        let mut target = SessionTable::new(limits(2, 1000));
        target.record(1, 7, "seven", 50);
        target.record(3, 1, "three", 10);
        target.import(source.export());
        // Client 1 keeps seq 7; client 2 arrives; client 3 (least recent)
        // goes to keep the bound of 2.
        assert_eq!(target.recorded(1, 7), Some(&"seven"));
        assert_eq!(target.recorded(2, 1), Some(&"one"));
        assert_eq!(target.len(), 2);
        assert_eq!(target.check(3, 1), SessionCheck::New);
    }

    #[test]
    fn round_trips_and_refuses_a_table_over_its_bound() {
        let mut table = SessionTable::new(limits(3, 1000));
        table.record(9, 2, 42u32, 7);
        table.record(4, 1, 43u32, 8);
        let restored: SessionTable<u32> = decode(&encode(&table), STATE_LIMIT).expect("decodes");
        assert_eq!(restored, table);
        let over = TableWireRef {
            limits: &limits(1, 1000),
            sessions: &table.sessions,
        };
        assert!(decode::<SessionTable<u32>, { 8 << 30 }>(&encode(&over), STATE_LIMIT).is_err());
    }
}
