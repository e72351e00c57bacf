//! One shard's exactly-once table: each client's latest write on the
//! shard and its answer. It moves with the shard.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::rpc::{Outcome, SessionRecord, ShardKvError};

/// What the table says about a write `(client_id, seq)`.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionCheck {
    /// Not seen: apply it.
    New,
    /// Applied before: this is its answer.
    Duplicate(Result<Outcome, ShardKvError>),
    /// Older than the client's latest write here.
    Stale { latest: u64 },
}

/// Bounded table; times are the shard's logical time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sessions {
    records: BTreeMap<u64, SessionRecord>,
    /// `(last_active_ms, client_id)` of every record: the idle order.
    idle_order: BTreeSet<(u64, u64)>,
}

impl Sessions {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn check(&self, client_id: u64, seq: u64) -> SessionCheck {
        match self.records.get(&client_id) {
            Some(record) if record.last_seq == seq => SessionCheck::Duplicate(record.reply.clone()),
            Some(record) if record.last_seq > seq => SessionCheck::Stale {
                latest: record.last_seq,
            },
            _ => SessionCheck::New,
        }
    }

    /// Records a write's answer, then forgets the least recently active
    /// clients beyond `max_clients`.
    pub fn record(
        &mut self,
        client_id: u64,
        seq: u64,
        reply: Result<Outcome, ShardKvError>,
        now_ms: u64,
        max_clients: u64,
    ) {
        let record = SessionRecord {
            client_id,
            last_seq: seq,
            reply,
            last_active_ms: now_ms,
        };
        if let Some(old) = self.records.insert(client_id, record) {
            self.idle_order.remove(&(old.last_active_ms, client_id));
        }
        self.idle_order.insert((now_ms, client_id));
        while self.records.len() as u64 > max_clients {
            self.forget_least_recent();
        }
    }

    /// Forgets clients idle for `expiry_ms` or longer at `now_ms`.
    pub fn expire(&mut self, now_ms: u64, expiry_ms: u64) {
        while let Some(&(last_active_ms, _)) = self.idle_order.first() {
            if last_active_ms.saturating_add(expiry_ms) > now_ms {
                break;
            }
            self.forget_least_recent();
        }
    }

    fn forget_least_recent(&mut self) {
        if let Some((_, client_id)) = self.idle_order.pop_first() {
            self.records.remove(&client_id);
        }
    }

    /// The records, by client id (for a transfer).
    pub fn export(&self) -> Vec<SessionRecord> {
        self.records.values().cloned().collect()
    }

    /// Rebuilds a table from transferred records; refuses duplicates.
    pub fn import(records: &[SessionRecord]) -> Result<Sessions, String> {
        let mut sessions = Sessions::default();
        for record in records {
            if sessions
                .records
                .insert(record.client_id, record.clone())
                .is_some()
            {
                return Err(format!("client {} recorded twice", record.client_id));
            }
            sessions
                .idle_order
                .insert((record.last_active_ms, record.client_id));
        }
        Ok(sessions)
    }

    /// The idle index agrees with the records.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.records.len() != self.idle_order.len() {
            return Err("exactly-once table and its idle index disagree".into());
        }
        for &(last_active_ms, client_id) in &self.idle_order {
            match self.records.get(&client_id) {
                Some(record) if record.last_active_ms == last_active_ms => {}
                _ => return Err(format!("idle index entry for client {client_id} is stale")),
            }
        }
        Ok(())
    }
}
