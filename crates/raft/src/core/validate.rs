//! Checks on a peer's message before the core acts on it.
//!
//! A peer's message is input, not a promise: a bug, a bad disk or a forger
//! on the network can send anything that decodes. Every property the
//! handlers rely on and an honest peer always satisfies is checked here,
//! before any state changes; a message that fails one is refused with a
//! typed [`StepError`], logged and counted ([`RawNode::refused_messages`]),
//! and the node goes on as if it had never arrived. The asserts left in the
//! core guard this node's own invariants only.
//!
//! What is checked (each honest sender satisfies it; a message of an older
//! term is only answered with our term, so only its term is checked):
//! - terms at most [`MAX_TERM`] and at most [`MAX_TERM_STEP`] above ours,
//!   so `term + 1` never overflows and one message cannot exhaust terms;
//! - indexes at most [`MAX_INDEX`], so index arithmetic never overflows;
//! - a leader's message of our term from a second leader (we lead that
//!   term, or another node already led it to us);
//! - AppendEntries: entries consecutive after `prev_log_index`, terms
//!   non-decreasing from `prev_log_term` and at most the message's term,
//!   each entry within `Config::max_entry_bytes`, the first entry kept past
//!   our commit index not older than our committed entry before it, and
//!   each command's payload accepted by `Config::payload_check` (the
//!   service decodes it) before it is stored;
//! - configuration entries (past our commit index) and a snapshot's
//!   configuration: they decode to a valid configuration (at least one
//!   voter, voters and learners disjoint, at most `MAX_MEMBERS` nodes);
//! - InstallSnapshot: the snapshot's term at most the message's;
//! - replies to a leader: a match or rejected index beyond the leader's
//!   log, a read id the leader never issued.
//!
//! What stays trusted: what a member says about its own log and votes
//! when it is well-formed (a member that lies about having entries can
//! break safety; keeping non-members out is the transport's job).

use std::fmt;
use std::sync::Arc;

use super::entry::EntryKind;
use super::membership::Membership;
use super::message::{AppendEntries, Message, MessageBody};
use super::raw_node::{RawNode, Role, StepError};

/// The largest term a peer's message may carry; a node does not campaign
/// past it. 2^62 terms are never reached by elections (one every 300 ms
/// for longer than the universe's age), so only forged terms hit it.
pub const MAX_TERM: u64 = 1 << 62;

/// A message may raise our term by at most this much at once. Honest
/// terms grow by one per election, so a gap of 2^32 takes decades of
/// back-to-back elections.
pub const MAX_TERM_STEP: u64 = 1 << 32;

/// The largest log index a peer's message may name.
pub const MAX_INDEX: u64 = 1 << 62;

/// What [`PayloadCheck`] is asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// The data of a command entry from a leader, before it is stored.
    Entry,
    /// A snapshot from a leader, once all its pieces are in, before it is
    /// installed.
    Snapshot,
}

/// The service's check that a payload from a peer is one it can use (it
/// decodes), so that nothing unusable is stored and then met at every
/// restart. `Err` carries the reason for the log.
#[derive(Clone)]
pub struct PayloadCheck(Arc<CheckFn>);

type CheckFn = dyn Fn(PayloadKind, &[u8]) -> Result<(), String> + Send + Sync;

impl PayloadCheck {
    pub fn new(
        check: impl Fn(PayloadKind, &[u8]) -> Result<(), String> + Send + Sync + 'static,
    ) -> PayloadCheck {
        PayloadCheck(Arc::new(check))
    }

    pub fn check(&self, kind: PayloadKind, data: &[u8]) -> Result<(), String> {
        (self.0)(kind, data)
    }
}

impl fmt::Debug for PayloadCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PayloadCheck")
    }
}

impl RawNode {
    /// Every check of the module docs that `message` (already known to be
    /// addressed to us by a peer) can fail. Reads state only.
    pub(super) fn check_message(&self, message: &Message) -> Result<(), StepError> {
        let term = message.term;
        let limit = MAX_TERM.min(self.term.saturating_add(MAX_TERM_STEP));
        if term > limit {
            return Err(StepError::TermTooLarge { term, limit });
        }
        if term < self.term {
            // Stale: answered with our term (which makes an honest sender
            // catch up) and otherwise ignored, so nothing in it is used.
            return Ok(());
        }
        let from_leader = matches!(
            message.body,
            MessageBody::AppendEntries(_)
                | MessageBody::Heartbeat(_)
                | MessageBody::InstallSnapshot(_)
        );
        if from_leader && term == self.term {
            if self.role == Role::Leader {
                return Err(StepError::SecondLeader {
                    from: message.from,
                    term,
                });
            }
            if let Some(leader) = self.leader_id
                && leader != message.from
            {
                return Err(StepError::SecondLeader {
                    from: message.from,
                    term,
                });
            }
        }
        let to_leader = term == self.term && self.role == Role::Leader;
        let last_index = self.log.last_index();
        match &message.body {
            MessageBody::AppendEntries(request) => self.check_append(term, request)?,
            MessageBody::InstallSnapshot(request) => {
                let meta = &request.meta;
                if meta.last_included_index > MAX_INDEX {
                    return Err(StepError::IndexTooLarge {
                        index: meta.last_included_index,
                        limit: MAX_INDEX,
                    });
                }
                if meta.last_included_term > term {
                    return Err(StepError::EntryTermAboveMessage {
                        index: meta.last_included_index,
                        entry_term: meta.last_included_term,
                        message_term: term,
                    });
                }
                if let Some(membership) = &meta.membership {
                    membership
                        .check()
                        .map_err(|reason| StepError::BadMembership {
                            index: meta.last_included_index,
                            reason,
                        })?;
                }
            }
            MessageBody::AppendEntriesReply(reply) if to_leader => {
                let index = if reply.success {
                    reply.match_index
                } else {
                    reply.rejected_prev_index
                };
                if index > last_index {
                    return Err(StepError::BeyondLeaderLog { index, last_index });
                }
            }
            MessageBody::InstallSnapshotReply(reply)
                if to_leader && reply.match_index > last_index =>
            {
                return Err(StepError::BeyondLeaderLog {
                    index: reply.match_index,
                    last_index,
                });
            }
            MessageBody::HeartbeatReply(reply)
                if to_leader && reply.read_id > self.read_only.last_id() =>
            {
                return Err(StepError::UnknownReadId {
                    read_id: reply.read_id,
                    last_id: self.read_only.last_id(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn check_append(&self, term: u64, request: &AppendEntries) -> Result<(), StepError> {
        let last_entry_index = request
            .prev_log_index
            .checked_add(request.entries.len() as u64)
            .filter(|&index| index <= MAX_INDEX);
        if last_entry_index.is_none() {
            return Err(StepError::IndexTooLarge {
                index: request.prev_log_index,
                limit: MAX_INDEX,
            });
        }
        if request.prev_log_term > term {
            return Err(StepError::EntryTermAboveMessage {
                index: request.prev_log_index,
                entry_term: request.prev_log_term,
                message_term: term,
            });
        }
        let commit_index = self.log.commit_index();
        let mut previous_term = request.prev_log_term;
        for (expected, entry) in (request.prev_log_index + 1..).zip(&request.entries) {
            if entry.index != expected {
                return Err(StepError::EntryIndexGap {
                    expected,
                    found: entry.index,
                });
            }
            if entry.term > term {
                return Err(StepError::EntryTermAboveMessage {
                    index: entry.index,
                    entry_term: entry.term,
                    message_term: term,
                });
            }
            // Below the commit index the handler drops entries: the first
            // one kept follows our committed entry, whose term it cannot
            // precede.
            if entry.index == commit_index + 1
                && let Some(committed_term) = self.log.term_at(commit_index)
            {
                previous_term = previous_term.max(committed_term);
            }
            if entry.term < previous_term {
                return Err(StepError::EntryTermOutOfOrder {
                    index: entry.index,
                    entry_term: entry.term,
                    previous_term,
                });
            }
            previous_term = entry.term;
            let bytes = entry.size_bytes() as u64;
            let limit = self.config.max_entry_bytes as u64;
            if bytes > limit {
                return Err(StepError::EntryTooLarge {
                    index: entry.index,
                    bytes,
                    limit,
                });
            }
        }
        for entry in &request.entries {
            if entry.index > commit_index
                && entry.kind == EntryKind::Config
                && let Err(reason) = Membership::decode(&entry.data)
            {
                return Err(StepError::BadMembership {
                    index: entry.index,
                    reason,
                });
            }
        }
        // Decoding is the costly check: only once the rest holds, and only
        // for entries that may be stored (past the commit index).
        if let Some(check) = &self.config.payload_check {
            for entry in &request.entries {
                if entry.index > commit_index
                    && entry.kind == EntryKind::Command
                    && let Err(reason) = check.check(PayloadKind::Entry, &entry.data)
                {
                    return Err(StepError::UnusablePayload {
                        index: entry.index,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}
