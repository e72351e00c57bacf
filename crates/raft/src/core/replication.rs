//! Log replication, commitment and snapshot transfer (Raft paper sections
//! 5.3, 5.4.2 and 7), with batching and pipelining (see `progress.rs`).

use super::entry::{NodeId, Snapshot, SnapshotMeta};
use super::held_snapshot::{HeldSnapshot, PieceSource, SnapshotRead};
use super::message::{
    AppendEntries, AppendEntriesReply, Conflict, Heartbeat, HeartbeatReply, InstallSnapshot,
    InstallSnapshotReply, MessageBody,
};
use super::progress::{Progress, ProgressState};
use super::raw_node::{RawNode, Role, StepError};
use super::ready::ReadySnapshot;
use super::validate::PayloadKind;

impl RawNode {
    pub(super) fn tick_leader(&mut self) {
        if let Some(transfer) = &mut self.transfer {
            transfer.elapsed_ticks += 1;
            if transfer.elapsed_ticks >= self.config.election_timeout_ticks_min {
                tracing::info!(
                    node = self.config.id,
                    term = self.term,
                    target = transfer.target,
                    "leadership transfer timed out; leading on"
                );
                self.transfer = None;
            }
        }
        self.election_elapsed_ticks += 1;
        if self.election_elapsed_ticks >= self.config.election_timeout_ticks_min {
            self.election_elapsed_ticks = 0;
            if self.config.check_quorum && !self.check_quorum() {
                return;
            }
        }
        let retry_ticks = self.config.snapshot_retry_ticks;
        let mut unanswered = Vec::new();
        for (&peer, progress) in &mut self.progress {
            if let ProgressState::Snapshot {
                ticks_since_sent, ..
            } = &mut progress.state
            {
                *ticks_since_sent += 1;
                if *ticks_since_sent >= retry_ticks {
                    unanswered.push(peer);
                }
            }
        }
        for peer in unanswered {
            // No answer: assume the piece (or its answer) was lost and send
            // it again; what the follower holds is kept.
            self.send_snapshot_piece(peer);
        }
        self.heartbeat_elapsed_ticks += 1;
        if self.heartbeat_elapsed_ticks >= self.config.heartbeat_interval_ticks {
            self.heartbeat_elapsed_ticks = 0;
            self.broadcast_heartbeat();
        }
    }

    /// CheckQuorum (thesis 6.2): true if a majority, this leader included,
    /// was heard from since the last round; otherwise steps down (same
    /// term, no known leader) and returns false. Starts a new round.
    fn check_quorum(&mut self) -> bool {
        let membership = self.membership();
        let active = usize::from(membership.is_voter(self.config.id))
            + self
                .progress
                .iter()
                .filter(|&(&peer, p)| p.recent_active && membership.is_voter(peer))
                .count();
        for progress in self.progress.values_mut() {
            progress.recent_active = false;
        }
        if active >= self.quorum() {
            return true;
        }
        tracing::debug!(
            node = self.config.id,
            term = self.term,
            active,
            "heard from no majority for an election timeout; stepping down"
        );
        self.become_follower(self.term, None, true);
        false
    }

    /// Every heartbeat interval each follower hears from the leader: a probe
    /// if the leader is still looking for where their logs match, otherwise a
    /// [`Heartbeat`]. A pipeline that got no acknowledgement for a whole
    /// interval lost a batch: it falls back to probing.
    fn broadcast_heartbeat(&mut self) {
        self.renew_lease();
        let commit_index = self.log.commit_index();
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            let progress = self
                .progress
                .get_mut(&peer)
                .expect("leader has progress for each peer");
            let send_heartbeat = match &mut progress.state {
                ProgressState::Probe { paused } => {
                    *paused = false;
                    false
                }
                ProgressState::Replicate { inflight } => {
                    if !inflight.is_empty() && !progress.acked_since_heartbeat {
                        progress.become_probe();
                        false
                    } else {
                        true
                    }
                }
                ProgressState::Snapshot { .. } => true,
            };
            progress.acked_since_heartbeat = false;
            // Reads waiting for confirmation need an answer from every
            // follower we can get one from, probing or not.
            let read_id = self.read_only.newest_pending_id();
            if send_heartbeat || read_id != 0 {
                let commit_index = commit_index.min(progress.match_index);
                self.send(
                    peer,
                    MessageBody::Heartbeat(Heartbeat {
                        commit_index,
                        read_id,
                    }),
                );
            }
        }
    }

    /// With lease reads, every heartbeat round renews the lease: it
    /// carries a round of its own when no read's round is pending, so a
    /// majority's answers extend the lease before it runs out. Reads in a
    /// healthy group then never wait for a round (without this, the first
    /// reads after each lease, every `read_lease_ms`, waited for one:
    /// under load, a few milliseconds for a third of a node's reads).
    /// At most one such round is pending; a step down drops it. A group
    /// of one voter needs no lease (it confirms reads alone).
    fn renew_lease(&mut self) {
        let renewable =
            self.lease_may_hold() && self.quorum() > 1 && self.read_only.pending_count() == 0;
        if renewable {
            self.read_only.add_renewal(self.config.id, self.now_ms);
        }
    }

    fn can_send_append(&self, progress: &Progress) -> bool {
        if progress.is_paused(self.config.max_inflight_messages) {
            return false;
        }
        match progress.state {
            // A probe goes out even with nothing to carry: its answer tells
            // where the logs match.
            ProgressState::Probe { .. } => true,
            ProgressState::Replicate { .. } => progress.next_index <= self.log.last_index(),
            ProgressState::Snapshot { .. } => false,
        }
    }

    pub(super) fn has_appends_to_send(&self) -> bool {
        self.role == Role::Leader && self.progress.values().any(|p| self.can_send_append(p))
    }

    /// Sends every follower what it can take now: one probe, or batches up to
    /// the in-flight limit.
    pub(super) fn send_pending_appends(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            // Bounded: each send either pauses a probe, fills one in-flight
            // slot, or switches to snapshot.
            for _ in 0..=self.config.max_inflight_messages {
                if !self.can_send_append(&self.progress[&peer]) {
                    break;
                }
                self.send_append(peer);
            }
        }
    }

    fn send_append(&mut self, peer: NodeId) {
        let next_index = self.progress[&peer].next_index;
        if next_index < self.log.first_index() {
            self.send_snapshot(peer);
            return;
        }
        let prev_log_index = next_index - 1;
        let prev_log_term = self.log.term_at(prev_log_index).unwrap_or_else(|| {
            panic!(
                "node {} term {}: no term for prev index {prev_log_index} (log {}..={})",
                self.config.id,
                self.term,
                self.log.first_index(),
                self.log.last_index()
            )
        });
        let entries = if next_index <= self.log.last_index() {
            self.log.entries_from(
                next_index,
                self.config.max_entries_per_message,
                self.config.max_bytes_per_message,
            )
        } else {
            Vec::new()
        };
        let progress = self
            .progress
            .get_mut(&peer)
            .expect("leader has progress for each peer");
        progress.on_append_sent(prev_log_index + entries.len() as u64, entries.len());
        let request = AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.log.commit_index(),
        };
        self.send(peer, MessageBody::AppendEntries(request));
    }

    /// Starts sending the snapshot to `peer`, from its first byte.
    fn send_snapshot(&mut self, peer: NodeId) {
        assert_eq!(
            self.snapshot.meta(),
            self.log.snapshot_meta(),
            "node {} term {}: snapshot held does not match the log's",
            self.config.id,
            self.term
        );
        let snapshot_index = self.snapshot.meta().last_included_index;
        self.progress
            .get_mut(&peer)
            .expect("leader has progress for each peer")
            .become_snapshot(snapshot_index);
        self.send_snapshot_piece(peer);
    }

    /// Sends `peer` the piece of the snapshot at the offset it acknowledged.
    /// If this leader has taken a newer snapshot since, the transfer starts
    /// over with that one.
    fn send_snapshot_piece(&mut self, peer: NodeId) {
        let current_index = self.snapshot.meta().last_included_index;
        let progress = self
            .progress
            .get_mut(&peer)
            .expect("leader has progress for each peer");
        let ProgressState::Snapshot {
            snapshot_index,
            offset_bytes,
            ticks_since_sent,
        } = &mut progress.state
        else {
            return;
        };
        if *snapshot_index != current_index {
            *snapshot_index = current_index;
            *offset_bytes = 0;
        }
        *ticks_since_sent = 0;
        let total_bytes = self.snapshot.size_bytes();
        let offset = (*offset_bytes).min(total_bytes);
        let max_bytes = self
            .config
            .snapshot_chunk_bytes
            .min(self.config.max_entry_bytes);
        match self.snapshot.piece(offset, max_bytes) {
            PieceSource::Held(piece) => self.send(peer, MessageBody::InstallSnapshot(piece)),
            PieceSource::Stored {
                offset,
                length_bytes,
            } => self.snapshot_reads.push(SnapshotRead {
                to: peer,
                term: self.term,
                meta: self.snapshot.meta().clone(),
                offset,
                length_bytes,
                total_bytes,
            }),
        }
    }

    /// Follower side of AppendEntries (paper Figure 2, receiver steps 1-5).
    pub(super) fn handle_append_entries(&mut self, leader: NodeId, request: AppendEntries) {
        self.accept_leader(leader);
        let AppendEntries {
            mut prev_log_index,
            mut prev_log_term,
            mut entries,
            leader_commit,
        } = request;
        let rejected_prev_index = prev_log_index;
        let commit_index = self.log.commit_index();
        if prev_log_index < commit_index {
            // Our committed prefix matches any leader's (leader completeness),
            // and may be compacted: check from the commit index instead.
            entries.retain(|entry| entry.index > commit_index);
            prev_log_index = commit_index;
            prev_log_term = self
                .log
                .term_at(commit_index)
                .expect("commit index is held");
        }
        if !self.log.matches(prev_log_index, prev_log_term) {
            let conflict = self.conflict_at(prev_log_index);
            let reply = AppendEntriesReply {
                success: false,
                match_index: 0,
                rejected_prev_index,
                conflict: Some(conflict),
            };
            self.send(leader, MessageBody::AppendEntriesReply(reply));
            return;
        }
        let last_covered = self
            .log
            .append_from_leader(entries)
            .unwrap_or(prev_log_index);
        self.log.commit_to(leader_commit.min(last_covered));
        let reply = AppendEntriesReply {
            success: true,
            match_index: last_covered,
            rejected_prev_index: 0,
            conflict: None,
        };
        self.send(leader, MessageBody::AppendEntriesReply(reply));
    }

    /// The hint a follower gives when its log does not match at `index`.
    fn conflict_at(&self, index: u64) -> Conflict {
        match self.log.term_at(index) {
            None => Conflict {
                term: None,
                index: self.log.last_index() + 1,
            },
            Some(term) => Conflict {
                term: Some(term),
                index: self.log.first_index_of_term_at(index),
            },
        }
    }

    /// A message of the current term from its leader: follow it and restart
    /// the election timer.
    fn accept_leader(&mut self, leader: NodeId) {
        assert_ne!(
            self.role,
            Role::Leader,
            "node {}: two leaders in term {} (this one and node {leader})",
            self.config.id,
            self.term
        );
        if self.role != Role::Follower || self.leader_id != Some(leader) {
            self.become_follower(self.term, Some(leader), true);
        }
        self.election_elapsed_ticks = 0;
    }

    pub(super) fn handle_append_entries_reply(&mut self, peer: NodeId, reply: &AppendEntriesReply) {
        if self.role != Role::Leader {
            return;
        }
        let Some(progress) = self.progress.get_mut(&peer) else {
            // Answered before it left the configuration.
            return;
        };
        if reply.success {
            if progress.on_append_success(reply.match_index) {
                self.maybe_commit();
                self.maybe_send_timeout_now();
            }
            return;
        }
        let hint_next_index = match reply.conflict {
            None => reply.rejected_prev_index,
            Some(Conflict { term: None, index }) => index,
            // If we have entries of the follower's conflicting term, the logs
            // may match up to our last one; otherwise skip the whole term.
            Some(Conflict {
                term: Some(term),
                index,
            }) => self
                .log
                .last_index_of_term(term)
                .map_or(index, |last| last + 1),
        };
        if let Some(progress) = self.progress.get_mut(&peer) {
            progress.on_append_rejected(reply.rejected_prev_index, hint_next_index);
        }
    }

    pub(super) fn handle_heartbeat(&mut self, leader: NodeId, heartbeat: &Heartbeat) {
        self.accept_leader(leader);
        // The leader sends at most our match index, which we hold.
        let commit_index = heartbeat.commit_index.min(self.log.last_index());
        self.log.commit_to(commit_index);
        let reply = HeartbeatReply {
            read_id: heartbeat.read_id,
        };
        self.send(leader, MessageBody::HeartbeatReply(reply));
    }

    pub(super) fn handle_heartbeat_reply(&mut self, peer: NodeId, reply: &HeartbeatReply) {
        if self.role != Role::Leader || reply.read_id == 0 {
            return;
        }
        let membership = self.log.membership().unwrap_or(&self.bootstrap);
        let confirmed = self
            .read_only
            .acknowledge(peer, reply.read_id, |acks| membership.has_quorum(acks));
        if let Some(sent_ms) = confirmed {
            self.extend_lease(sent_ms);
        }
    }

    /// Follower side of InstallSnapshot (paper section 7, with pieces):
    /// pieces are kept in order (a piece at any other offset, or of another
    /// snapshot than the one being received, is ignored; a first piece
    /// starts over), each checked against `Config::max_snapshot_bytes` and
    /// its checksum before it is kept (a piece damaged on the way is
    /// refused and nothing else is lost: the answer says where this node
    /// stands, so the leader sends that piece again), and the snapshot is
    /// installed after the last.
    /// Every piece is answered with how many bytes are held, so the leader
    /// sends from there. Pieces live in memory only: after a restart the
    /// transfer starts again.
    pub(super) fn handle_install_snapshot(&mut self, leader: NodeId, request: InstallSnapshot) {
        self.accept_leader(leader);
        let meta = request.meta.clone();
        let commit_index = self.log.commit_index();
        if meta.last_included_index <= commit_index {
            // Nothing new: we already have (and may have applied) all of it.
            self.incoming_snapshot = None;
            let reply = InstallSnapshotReply {
                match_index: commit_index,
                snapshot_index: meta.last_included_index,
                received_bytes: request.total_bytes,
            };
            self.send(leader, MessageBody::InstallSnapshotReply(reply));
            return;
        }
        if !request.checksum_matches() {
            let reason = format!(
                "piece at {} of {} bytes fails its checksum",
                request.offset,
                request.data.len()
            );
            self.refuse(leader, &StepError::MalformedSnapshotPiece { reason });
            let reply = InstallSnapshotReply {
                match_index: commit_index,
                snapshot_index: meta.last_included_index,
                received_bytes: self.incoming_bytes(&meta),
            };
            self.send(leader, MessageBody::InstallSnapshotReply(reply));
            return;
        }
        let received_bytes = match self.receive_snapshot_piece(request) {
            Ok(Some(snapshot)) if let Err(reason) = self.check_snapshot_payload(&snapshot) => {
                // Refused whole: the leader starts over (from byte 0).
                let error = StepError::UnusablePayload {
                    index: meta.last_included_index,
                    reason,
                };
                self.refuse(leader, &error);
                0
            }
            Ok(Some(snapshot)) => {
                self.log.install_snapshot(meta.clone());
                let received_bytes = snapshot.data.len() as u64;
                // Held until stored: this node may lead before then.
                self.snapshot = HeldSnapshot::new(snapshot.clone());
                self.set_pending_snapshot(ReadySnapshot {
                    snapshot,
                    persist: true,
                    apply: true,
                });
                let reply = InstallSnapshotReply {
                    match_index: meta.last_included_index,
                    snapshot_index: meta.last_included_index,
                    received_bytes,
                };
                self.send(leader, MessageBody::InstallSnapshotReply(reply));
                return;
            }
            Ok(None) => self.incoming_bytes(&meta),
            Err(reason) => {
                self.refuse(leader, &StepError::MalformedSnapshotPiece { reason });
                self.incoming_snapshot = None;
                0
            }
        };
        let reply = InstallSnapshotReply {
            match_index: commit_index,
            snapshot_index: meta.last_included_index,
            received_bytes,
        };
        self.send(leader, MessageBody::InstallSnapshotReply(reply));
    }

    /// Adds a piece to the snapshot being received. `Ok(Some)`: it was the
    /// last, here is the whole snapshot; `Ok(None)`: kept or ignored;
    /// `Err`: malformed (nothing of it kept).
    fn receive_snapshot_piece(
        &mut self,
        piece: InstallSnapshot,
    ) -> Result<Option<Snapshot>, String> {
        let max_bytes = self.config.max_snapshot_bytes;
        if piece.total_bytes > max_bytes {
            return Err(format!(
                "snapshot of {} bytes is over max_snapshot_bytes {max_bytes}",
                piece.total_bytes
            ));
        }
        let end = piece.offset.checked_add(piece.data.len() as u64);
        if end.is_none_or(|end| end > piece.total_bytes)
            || piece.done != (end == Some(piece.total_bytes))
        {
            return Err(format!(
                "piece at {} of {} bytes (done: {}) does not fit a {}-byte snapshot",
                piece.offset,
                piece.data.len(),
                piece.done,
                piece.total_bytes
            ));
        }
        let same_snapshot = self.incoming_snapshot.as_ref().is_some_and(|incoming| {
            incoming.meta == piece.meta && incoming.total_bytes == piece.total_bytes
        });
        if piece.offset == 0 && !(same_snapshot && self.has_incoming_bytes()) {
            self.incoming_snapshot = Some(IncomingSnapshot {
                meta: piece.meta,
                total_bytes: piece.total_bytes,
                data: Vec::new(),
            });
        } else if !same_snapshot {
            return Ok(None);
        }
        let incoming = self
            .incoming_snapshot
            .as_mut()
            .expect("a snapshot being received");
        if piece.offset != incoming.data.len() as u64 {
            return Ok(None);
        }
        incoming.data.extend_from_slice(&piece.data);
        if !piece.done {
            return Ok(None);
        }
        let incoming = self
            .incoming_snapshot
            .take()
            .expect("a snapshot being received");
        Ok(Some(Snapshot {
            meta: incoming.meta,
            data: incoming.data.into(),
        }))
    }

    /// The service's `Config::payload_check` on a snapshot assembled from
    /// a leader's pieces.
    fn check_snapshot_payload(&self, snapshot: &Snapshot) -> Result<(), String> {
        match &self.config.payload_check {
            Some(check) => check.check(PayloadKind::Snapshot, &snapshot.data),
            None => Ok(()),
        }
    }

    /// How many bytes of the snapshot `meta` this node holds.
    fn incoming_bytes(&self, meta: &SnapshotMeta) -> u64 {
        self.incoming_snapshot
            .as_ref()
            .filter(|incoming| &incoming.meta == meta)
            .map_or(0, |incoming| incoming.data.len() as u64)
    }

    fn has_incoming_bytes(&self) -> bool {
        self.incoming_snapshot
            .as_ref()
            .is_some_and(|incoming| !incoming.data.is_empty())
    }

    pub(super) fn handle_install_snapshot_reply(
        &mut self,
        peer: NodeId,
        reply: &InstallSnapshotReply,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let Some(progress) = self.progress.get_mut(&peer) else {
            return;
        };
        let advanced = reply.match_index > progress.match_index;
        if advanced {
            progress.match_index = reply.match_index;
        }
        let mut send_next = false;
        match &mut progress.state {
            ProgressState::Snapshot { snapshot_index, .. }
                if progress.match_index >= *snapshot_index =>
            {
                progress.become_replicate();
            }
            ProgressState::Snapshot {
                snapshot_index,
                offset_bytes,
                ..
            } if reply.snapshot_index == *snapshot_index => {
                // The follower holds this much: go on from there (after a
                // stale answer this resends a piece it has, which it
                // ignores and answers with where it really is).
                *offset_bytes = reply.received_bytes;
                send_next = true;
            }
            _ => {}
        }
        if send_next {
            self.send_snapshot_piece(peer);
        }
        if advanced {
            self.maybe_commit();
        }
    }

    /// Commit the highest index a majority holds, but only if it is an entry
    /// of the current term: entries of earlier terms commit only indirectly
    /// (paper section 5.4.2 and Figure 8).
    ///
    /// Only voters count, this leader too only while it is one (a leader
    /// removing itself replicates but does not count, thesis 4.2.2). Once
    /// the configuration that removed it commits, it steps down.
    pub(super) fn maybe_commit(&mut self) {
        let membership = self.membership();
        let mut match_indexes: Vec<u64> = self
            .progress
            .iter()
            .filter(|&(&peer, _)| membership.is_voter(peer))
            .map(|(_, p)| p.match_index)
            .collect();
        if membership.is_voter(self.config.id) {
            match_indexes.push(self.log.stable_index());
        }
        match_indexes.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_index = match_indexes.get(self.quorum() - 1).copied().unwrap_or(0);
        let commit_index = self.log.commit_index();
        if quorum_index > commit_index && self.log.term_at(quorum_index) == Some(self.term) {
            let committed_bytes = self.log.size_bytes_between(commit_index + 1, quorum_index);
            self.uncommitted_bytes = self
                .uncommitted_bytes
                .checked_sub(committed_bytes)
                .unwrap_or_else(|| {
                    panic!(
                        "node {} term {}: committing {committed_bytes} bytes through {quorum_index} \
                         but only {} were counted uncommitted",
                        self.config.id, self.term, self.uncommitted_bytes
                    )
                });
            self.log.commit_to(quorum_index);
        }
        if !self.is_voter() && self.log.commit_index() >= self.log.last_config_index() {
            tracing::info!(
                node = self.config.id,
                term = self.term,
                "configuration without this node committed; stepping down"
            );
            self.become_follower(self.term, None, true);
        }
    }
}

/// A follower's snapshot arriving in pieces (in memory only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct IncomingSnapshot {
    pub(super) meta: SnapshotMeta,
    pub(super) total_bytes: u64,
    pub(super) data: Vec<u8>,
}
