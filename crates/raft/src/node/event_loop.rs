//! The task that owns the core and the storage.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::core::{
    EntryKind, HardState, InstallSnapshot, MAX_MEMBERS, Message, MessageBody, NodeId, RawNode,
    Ready, Snapshot, SnapshotMeta, SnapshotRead, TICK_INTERVAL_MS,
};
use crate::storage::{Storage, StorageError, StorageWrite};

use super::storage_stats::StorageStats;
use super::transport::Transport;
use super::{
    ApplyMsg, Durable, Event, FatalError, FatalReason, NodeConfig, NodeStatus, Observation,
    Observer, Shared,
};

/// Events handled in one round before the loop persists and sends, so a
/// burst of proposals goes out as one batch without starving the tick.
const EVENTS_PER_ROUND_MAX: usize = 256;
/// Times a round gives way to the node's other tasks before it persists
/// and sends, to take in what they hand over meanwhile (see
/// [`EventLoop::gather_events`]).
const GATHER_YIELDS_MAX: usize = 3;
/// Readies handled in one round (each is bounded by the core).
const READIES_PER_ROUND_MAX: usize = 64;
/// A storage write the loop waited longer than this for is logged (with
/// what it carried): the group stood still meanwhile.
const SLOW_WRITE: Duration = Duration::from_millis(200);

/// A snapshot of the node's own service being written by a task of its own
/// (`Storage::stage_snapshot`), so the loop goes on meanwhile; installed
/// once written, and before any other snapshot is saved or staged.
struct StagedSnapshot {
    meta: SnapshotMeta,
    data_size_bytes: u64,
    /// A copy for the observer, made only when there is one.
    observed: Option<Snapshot>,
    /// The write's result and how long it took.
    written: JoinHandle<(Result<(), StorageError>, Duration)>,
}

impl Drop for StagedSnapshot {
    /// A stopped node's write is not waited for: the staged file is left
    /// as it is (the next `load` removes it). A file call already running
    /// finishes on its own, holding the directory's lock until then.
    fn drop(&mut self) {
        self.written.abort();
    }
}

/// What a staged snapshot's write task ended with.
type StagedWritten = Result<(Result<(), StorageError>, Duration), tokio::task::JoinError>;

pub(super) struct EventLoop<S> {
    core: RawNode,
    storage: S,
    /// At most one snapshot being written off the loop.
    staged: Option<StagedSnapshot>,
    shared: Arc<Shared>,
    /// Requests to each peer, in order, for its sender task; a peer's
    /// outbox and task start with the first request to it, so a node added
    /// by a membership change is reached like the others (see
    /// `send_request` for the bound).
    outboxes: BTreeMap<NodeId, mpsc::Sender<Message>>,
    transport: Arc<dyn Transport>,
    events_sender: mpsc::Sender<Event>,
    max_rpcs_in_flight_per_peer: usize,
    /// Handlers waiting for the core's reply, per requesting peer, in order.
    responders: BTreeMap<NodeId, VecDeque<oneshot::Sender<Option<Message>>>>,
    /// Callers of `read_index` waiting for confirmation, by read id (bounded
    /// by the core's `max_pending_reads`; dropped when leadership is lost).
    read_waiters: BTreeMap<u64, oneshot::Sender<Option<u64>>>,
    next_read_id: u64,
    events: mpsc::Receiver<Event>,
    apply: mpsc::Sender<ApplyMsg>,
    observer: Option<Observer>,
    /// Snapshots installed from a leader since start (for the status).
    snapshots_received: u64,
    /// Storage write timings and sizes since start (for the status).
    storage_stats: StorageStats,
    /// Times a leader became known for a newer term (for the status), and
    /// the last term in which one was known.
    leader_changes: u64,
    last_leader_term: Option<u64>,
    /// The origin of the clock handed to the core (`RawNode::set_now_ms`).
    started: tokio::time::Instant,
    /// The term and vote as last made durable (see [`EventLoop::defer_commit`]).
    saved_term_and_vote: (u64, Option<NodeId>),
    /// A commit index not written yet: it goes with the next write that
    /// must be durable anyway.
    unsaved_commit: Option<HardState>,
}

impl<S: Storage + 'static> EventLoop<S> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        config: NodeConfig,
        core: RawNode,
        storage: S,
        transport: Arc<dyn Transport>,
        shared: Arc<Shared>,
        events_sender: mpsc::Sender<Event>,
        events: mpsc::Receiver<Event>,
        apply: mpsc::Sender<ApplyMsg>,
    ) -> EventLoop<S> {
        let saved_term_and_vote = (core.term(), core.voted_for());
        EventLoop {
            core,
            storage,
            staged: None,
            shared,
            outboxes: BTreeMap::new(),
            transport,
            events_sender,
            max_rpcs_in_flight_per_peer: config.max_rpcs_in_flight_per_peer,
            responders: BTreeMap::new(),
            read_waiters: BTreeMap::new(),
            next_read_id: 0,
            events,
            apply,
            observer: config.observer,
            snapshots_received: 0,
            storage_stats: StorageStats::default(),
            leader_changes: 0,
            last_leader_term: None,
            started: labrpc::runtime::now(),
            saved_term_and_vote,
            unsaved_commit: None,
        }
    }

    /// Hands the core the runtime clock's time (simulated under madsim),
    /// just before it acts, so a lease is judged by the time it is used.
    fn update_clock(&mut self) {
        let elapsed = self.started.elapsed().as_millis();
        self.core
            .set_now_ms(u64::try_from(elapsed).unwrap_or(u64::MAX));
    }

    pub(super) async fn run(mut self) {
        let mut ticks = tokio::time::interval(Duration::from_millis(TICK_INTERVAL_MS));
        // After a stall (a slow disk, a full apply channel) do not fire the
        // missed ticks in a burst: that would make a follower campaign at once.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut staged_written = None;
            tokio::select! {
                // Fixed order keeps simulation runs reproducible.
                biased;
                _ = ticks.tick() => {
                    self.update_clock();
                    self.core.tick();
                }
                _ = self.shared.snapshot_requested.notified() => {}
                written = staged_write_done(&mut self.staged) => {
                    staged_written = Some(written);
                }
                event = self.events.recv() => {
                    let Some(event) = event else { return };
                    self.handle_event(event);
                    self.gather_events(1).await;
                }
                // Work left over from a round that hit its bound: go on at
                // once, after anything more urgent above.
                _ = std::future::ready(()), if self.core.has_ready() => {}
            }
            self.take_snapshot_request();
            if let Err(error) = self.finish_round(staged_written).await {
                if matches!(error, StorageError::ShuttingDown { .. }) {
                    self.stop_at_shutdown(error);
                } else {
                    self.stop_for_good(error);
                }
                return;
            }
            self.publish_status();
        }
    }

    /// The fatal path (`fatal.rs`): the disk state is unknown, so stop
    /// answering rather than risk breaking a promise (a vote, an
    /// acknowledged entry); tell the owner why; run the hook.
    fn stop_for_good(&mut self, error: StorageError) {
        let fatal = FatalError {
            node: self.core.id(),
            reason: FatalReason::Storage(Arc::new(error)),
        };
        self.shared
            .killed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Waiting callers learn at once (their senders are dropped).
        self.responders.clear();
        self.read_waiters.clear();
        self.shared.stop_for_good(fatal);
    }

    /// A write never ran because the runtime is shutting down: not a disk
    /// failure, so no fatal error and no hook (in `distcache node` the hook
    /// exits 74, which a supervisor reads as a failed disk). The node stops
    /// as a killed one does: what was not written is acknowledged to no
    /// one.
    fn stop_at_shutdown(&mut self, error: StorageError) {
        tracing::info!(node = self.core.id(), %error, "node stops: its runtime is shutting down");
        // Killed first, as on the fatal path: a caller whose sender is
        // dropped below finds the node killed.
        self.shared
            .killed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.responders.clear();
        self.read_waiters.clear();
        self.shared.stop();
    }

    fn handle_event(&mut self, event: Event) {
        // A proposal does not read the clock (only lease reads do, in
        // `read_index` and in the steps that extend or check a lease), and
        // proposals are most of the events under load: reading the clock
        // for each cost about 1.5% of the loop's time (2026-12-06 profile).
        if !matches!(event, Event::Propose { .. }) {
            self.update_clock();
        }
        match event {
            Event::Inbound { message, responder } => {
                let from = message.from;
                match self.core.step(message) {
                    Ok(()) => {
                        if let Some(responder) = responder {
                            self.responders
                                .entry(from)
                                .or_default()
                                .push_back(responder);
                        }
                    }
                    // The core logged and counted the refusal.
                    Err(_) => {
                        if let Some(responder) = responder {
                            let _ = responder.send(None);
                        }
                    }
                }
            }
            Event::Propose { command, reply } => {
                let _ = reply.send(self.core.propose(command).ok());
            }
            Event::ChangeMembership { change, reply } => {
                let _ = reply.send(self.core.propose_membership_change(change));
            }
            Event::TransferLeader { target, reply } => {
                let _ = reply.send(self.core.transfer_leader(target));
            }
            Event::ReadIndex { reply, round } => {
                self.next_read_id += 1;
                let read_id = self.next_read_id;
                let context = read_id.to_le_bytes().to_vec();
                let asked = if round {
                    self.core.read_index_with_round(context)
                } else {
                    self.core.read_index(context)
                };
                match asked {
                    Ok(()) => {
                        self.read_waiters.insert(read_id, reply);
                    }
                    Err(_) => {
                        let _ = reply.send(None);
                    }
                }
            }
        }
    }

    /// Handles the events already queued, then, while the round has
    /// entries to write, gives way to the node's other tasks (its
    /// connections, its streams from peers) and handles what they queued
    /// meanwhile, until a turn brings nothing, or after
    /// [`GATHER_YIELDS_MAX`] turns, or at the round's bound; `handled` were
    /// handled this round before.
    ///
    /// Each round with new entries ends in one fsync, and its cost (the
    /// system call, the wake-ups of the blocking pool: about 50 µs of CPU
    /// on this project's 2-core test machine) is the same for one entry
    /// or fifty. Without these turns a round took only what was queued at
    /// the instant it began, though other clients' requests and a leader's
    /// next AppendEntries were ready to run on the same workers: 5 entries
    /// per fsync at 50 clients; with them 10, and a third to a half more
    /// SETs a second (docs/status.md, 2026-12-07 third session). A turn
    /// with nothing else to run comes back at once: a lone request waits
    /// for no batch. Under tokio a yielded task runs again once its worker
    /// has no other local work (or after its event interval, 61 polls), so
    /// a turn costs at most that many other tasks' polls.
    async fn gather_events(&mut self, mut handled: usize) {
        for turn in 0..=GATHER_YIELDS_MAX {
            if turn > 0 {
                if self.core.log().unstable_entries().is_empty() {
                    // Nothing to write: nothing to amortise, and a lease
                    // read is answered at the end of this round.
                    return;
                }
                tokio::task::yield_now().await;
            }
            let before = handled;
            while handled < EVENTS_PER_ROUND_MAX {
                match self.events.try_recv() {
                    Ok(event) => self.handle_event(event),
                    Err(_) => break,
                }
                handled += 1;
            }
            if handled == EVENTS_PER_ROUND_MAX || (turn > 0 && handled == before) {
                return;
            }
        }
    }

    fn take_snapshot_request(&mut self) {
        let request = self
            .shared
            .snapshot_request
            .lock()
            .expect("snapshot lock poisoned")
            .take();
        if let Some((index, data)) = request
            && let Err(error) = self.core.snapshot(index, data)
        {
            tracing::warn!(node = self.core.id(), %error, "snapshot request refused");
        }
    }

    /// Installs a staged snapshot whose write ended this round, then handles
    /// the core's readies.
    async fn finish_round(
        &mut self,
        staged_written: Option<StagedWritten>,
    ) -> Result<(), StorageError> {
        if let Some(written) = staged_written {
            let staged = self
                .staged
                .take()
                .expect("a staged write ended, so one was staged");
            self.install_written(staged, written).await?;
        }
        self.handle_readies().await
    }

    /// Waits for the staged snapshot's write (if any) and installs it.
    async fn finish_staged(&mut self) -> Result<(), StorageError> {
        let Some(mut staged) = self.staged.take() else {
            return Ok(());
        };
        let written = (&mut staged.written).await;
        self.install_written(staged, written).await
    }

    /// Makes a written staged snapshot the stored one, then tells the
    /// observer, with no await between (as for a save).
    async fn install_written(
        &mut self,
        mut staged: StagedSnapshot,
        written: StagedWritten,
    ) -> Result<(), StorageError> {
        let (result, write_time) = written.unwrap_or_else(|join_error| {
            // Cancelled: its runtime is shutting down (madsim, or a
            // dropped test runtime). Anything else is a panic in the write.
            let path = std::path::PathBuf::from("(staged snapshot)");
            let error = if join_error.is_cancelled() {
                StorageError::ShuttingDown { path }
            } else {
                StorageError::Io {
                    path,
                    source: std::io::Error::other(format!("snapshot write failed: {join_error}")),
                }
            };
            (Err(error), Duration::ZERO)
        });
        result?;
        let started = labrpc::runtime::now();
        self.storage.install_staged_snapshot(&staged.meta).await?;
        self.note_snapshot_stored(&staged.meta);
        let elapsed = started.elapsed();
        if elapsed > SLOW_WRITE {
            tracing::warn!(
                node = self.core.id(),
                elapsed_ms = elapsed.as_millis() as u64,
                snapshot_index = staged.meta.last_included_index,
                "slow storage write: installing a written snapshot"
            );
        }
        let stats = &mut self.storage_stats;
        stats.writes.record(elapsed);
        stats.snapshot_writes.record(write_time + started.elapsed());
        stats.snapshot_written_bytes += staged.data_size_bytes;
        if self.observer.is_some() {
            self.observe(Durable::Saved {
                hard_state: None,
                snapshot: staged.observed.take(),
                entries: Vec::new(),
            });
        }
        Ok(())
    }

    /// Hands a snapshot the node's service took to the storage to write off
    /// the loop, if it can (`Storage::stage_snapshot`): the ready then
    /// neither persists nor applies it, but still names it for `advance`.
    /// The log keeps every entry it covers until it is installed, so
    /// nothing waits for it.
    async fn stage_own_snapshot(&mut self, ready: &mut Ready) -> Result<(), StorageError> {
        let Some(own) = ready.snapshot.as_mut().filter(|s| s.persist && !s.apply) else {
            return Ok(());
        };
        // One at a time, in order.
        self.finish_staged().await?;
        let snapshot = Snapshot {
            meta: own.snapshot.meta.clone(),
            data: std::mem::take(&mut own.snapshot.data),
        };
        let observed = self.observer.is_some().then(|| snapshot.clone());
        let data_size_bytes = snapshot.data.len() as u64;
        match self.storage.stage_snapshot(snapshot) {
            Ok(write) => {
                own.persist = false;
                let written = tokio::spawn(async move {
                    let started = labrpc::runtime::now();
                    let result = write.await;
                    (result, started.elapsed())
                });
                self.staged = Some(StagedSnapshot {
                    meta: own.snapshot.meta.clone(),
                    data_size_bytes,
                    observed,
                    written,
                });
            }
            // Saved whole with the rest of the ready.
            Err(snapshot) => own.snapshot.data = snapshot.data,
        }
        Ok(())
    }

    async fn handle_readies(&mut self) -> Result<(), StorageError> {
        for _ in 0..READIES_PER_ROUND_MAX {
            // Before anything of this ready leaves the loop.
            self.publish_lease();
            if !self.core.has_ready() {
                break;
            }
            let mut ready = self.core.ready();
            self.stage_own_snapshot(&mut ready).await?;
            let mut messages = std::mem::take(&mut ready.messages);
            let mut write = StorageWrite::from_ready(&ready);
            self.defer_commit(&mut write);
            if write.snapshot.is_some() {
                // A leader's snapshot (or one not staged) comes after the
                // staged one, never overtaken by it.
                self.finish_staged().await?;
            }
            if !write.is_empty() {
                self.send_appends_early(&write, &mut messages);
                let started = labrpc::runtime::now();
                self.storage.save(write).await?;
                self.record_save(&write, started.elapsed());
                if let Some(hard_state) = write.hard_state {
                    self.saved_term_and_vote = (hard_state.term, hard_state.voted_for);
                }
                if let Some(snapshot) = write.snapshot {
                    self.note_snapshot_stored(&snapshot.meta);
                }
            }
            // No await between the durable write and its observation.
            if self.observer.is_some() {
                self.observe(Durable::Saved {
                    hard_state: write.hard_state,
                    snapshot: write.snapshot.cloned(),
                    entries: write.entries.to_vec(),
                });
            }
            for message in messages {
                self.dispatch(message);
            }
            for read in std::mem::take(&mut ready.snapshot_reads) {
                self.send_stored_piece(&read).await?;
            }
            for read in std::mem::take(&mut ready.read_states) {
                let read_id = u64::from_le_bytes(
                    read.context
                        .as_slice()
                        .try_into()
                        .expect("read contexts are 8-byte ids"),
                );
                if let Some(waiter) = self.read_waiters.remove(&read_id) {
                    let _ = waiter.send(Some(read.index));
                }
            }
            self.apply(&mut ready).await;
            self.core.advance(ready);
        }
        if !self.core.is_leader() {
            // The core dropped its pending reads; so do we (callers get None).
            self.read_waiters.clear();
        }
        Ok(())
    }

    /// Publishes the core's lease for reads that skip the loop
    /// ([`super::RaftNode::lease_read_index`]). Called before anything of
    /// a ready leaves the loop: its messages (a vote, `TimeoutNow`, a
    /// configuration entry, an acknowledgement), its read answers, its
    /// commands to apply. A read answered from the published lease is
    /// then one the core would have answered when it was published: no
    /// other node has learned anything from this one since, and every
    /// command handed to the service (whose caller may have been
    /// answered) is at or below the published commit index.
    fn publish_lease(&self) {
        let lease = self.core.lease_read().map(|lease| {
            let until = self.started + Duration::from_millis(lease.until_ms);
            (lease.commit_index, until)
        });
        *self.shared.lease.lock().expect("lease lock poisoned") = lease;
    }

    /// Leaves a change of the commit index alone unwritten, and writes it
    /// with the next write that must be durable anyway (as etcd's raft does:
    /// its `MustSync`). The commit index is volatile state (paper Figure
    /// 2): after a crash the stored one may be older, and the node learns
    /// the rest from its leader (the core takes at least the snapshot's
    /// index as committed at restart). Writing it at once costs an fsync on
    /// every node every time entries commit, in the path of every write.
    fn defer_commit(&mut self, write: &mut StorageWrite<'_>) {
        let Some(hard_state) = write.hard_state else {
            if !write.is_empty() {
                // Carries the latest commit index (the core's hard state
                // did not change since the deferred one).
                write.hard_state = self.unsaved_commit.take();
            }
            return;
        };
        let commit_only = write.entries.is_empty()
            && write.snapshot.is_none()
            && (hard_state.term, hard_state.voted_for) == self.saved_term_and_vote;
        if commit_only {
            self.unsaved_commit = write.hard_state.take();
        } else {
            self.unsaved_commit = None;
        }
    }

    /// A leader's AppendEntries and heartbeats go out before its own
    /// durable write, so the followers' writes run alongside the leader's
    /// (thesis 10.2.1). Safe: the core counts the leader's own entries
    /// towards commitment only once they are stable (`advance`, after the
    /// write), and a follower's acknowledgement is handled only after this
    /// write (the loop handles events between rounds). Everything else
    /// waits for the write, and so does everything when the write changes
    /// the term or vote (a message must never carry a term the node could
    /// forget).
    fn send_appends_early(&mut self, write: &StorageWrite<'_>, messages: &mut Vec<Message>) {
        let term_and_vote_kept = write
            .hard_state
            .is_none_or(|h| (h.term, h.voted_for) == self.saved_term_and_vote);
        if !term_and_vote_kept || !self.core.is_leader() || messages.is_empty() {
            return;
        }
        let (early, later): (Vec<Message>, Vec<Message>) =
            std::mem::take(messages).into_iter().partition(|m| {
                matches!(
                    m.body,
                    MessageBody::AppendEntries(_) | MessageBody::Heartbeat(_)
                )
            });
        *messages = later;
        for message in early {
            self.dispatch(message);
        }
    }

    /// Tells the core that the storage holds the snapshot at `meta`, if
    /// the storage reads pieces back: the core drops its copy.
    fn note_snapshot_stored(&mut self, meta: &SnapshotMeta) {
        if self.storage.reads_snapshot_pieces() {
            self.core.snapshot_stored(meta);
        }
    }

    /// Reads the snapshot piece `read` asks for from storage and sends it.
    /// A read that finds another snapshot stored (a newer one) sends
    /// nothing: the leader starts the follower on the newer one when it
    /// sends again. A failed read is a storage failure, as a failed save is.
    async fn send_stored_piece(&mut self, read: &SnapshotRead) -> Result<(), StorageError> {
        let piece = self
            .storage
            .read_snapshot_piece(&read.meta, read.offset, read.length_bytes)
            .await?;
        let Some(data) = piece else {
            tracing::debug!(
                node = self.core.id(),
                to = read.to,
                snapshot_index = read.meta.last_included_index,
                "snapshot piece not sent: a newer snapshot is stored"
            );
            return Ok(());
        };
        self.storage_stats.snapshot_read_bytes += data.len() as u64;
        self.dispatch(Message {
            from: self.core.id(),
            to: read.to,
            term: read.term,
            body: MessageBody::InstallSnapshot(InstallSnapshot::from_stored(read, data)),
        });
        Ok(())
    }

    fn dispatch(&mut self, message: Message) {
        if message.body.is_request() {
            self.send_request(message);
            return;
        }
        let responder = self
            .responders
            .get_mut(&message.to)
            .and_then(VecDeque::pop_front);
        match responder {
            Some(responder) => {
                let _ = responder.send(Some(message));
            }
            None => tracing::warn!(
                node = self.core.id(),
                to = message.to,
                "reply without a waiting request"
            ),
        }
    }

    /// Queues a request for its peer's sender task; if the queue is full
    /// (the peer is slow or unreachable) the request is dropped: Raft
    /// retries.
    fn send_request(&mut self, message: Message) {
        let peer = message.to;
        if peer == self.core.id() {
            tracing::warn!(node = peer, "request to itself dropped");
            return;
        }
        let outbox = match self.outboxes.get(&peer) {
            Some(outbox) => outbox,
            None => {
                // The core only sends to members of its configuration (at
                // most `MAX_MEMBERS`); outboxes of nodes that left are
                // closed (ending their tasks) before they could pile up.
                if self.outboxes.len() >= 2 * MAX_MEMBERS {
                    let membership = self.core.membership().clone();
                    self.outboxes.retain(|id, _| membership.contains(*id));
                }
                let (sender, receiver) = mpsc::channel(self.max_rpcs_in_flight_per_peer);
                let task = tokio::spawn(peer_sender(
                    Arc::clone(&self.transport),
                    receiver,
                    self.events_sender.clone(),
                    self.max_rpcs_in_flight_per_peer,
                ));
                self.shared.track(task);
                self.outboxes.entry(peer).or_insert(sender)
            }
        };
        if outbox.try_send(message).is_err() {
            tracing::debug!(
                node = self.core.id(),
                peer,
                "too many requests queued; dropped"
            );
        }
    }

    /// Hands `ready`'s snapshot and committed commands to the service. The
    /// commands' payloads are moved out (`advance` only reads the entries'
    /// positions); they are shared with the log, so nothing is copied.
    async fn apply(&mut self, ready: &mut Ready) {
        if let Some(snapshot) = ready.snapshot.as_ref().filter(|s| s.apply) {
            if snapshot.persist {
                // Both persisted and applied: it came from a leader.
                self.snapshots_received += 1;
            }
            let meta = &snapshot.snapshot.meta;
            let message = ApplyMsg::Snapshot {
                index: meta.last_included_index,
                term: meta.last_included_term,
                data: snapshot.snapshot.data.clone(),
            };
            // A service that dropped its receiver no longer applies: fine.
            if !send_or_wait(&self.apply, message).await {
                return;
            }
        }
        for entry in &mut ready.committed_entries {
            if entry.kind != EntryKind::Command {
                continue;
            }
            let message = ApplyMsg::Command {
                index: entry.index,
                term: entry.term,
                command: std::mem::take(&mut entry.data),
            };
            if !send_or_wait(&self.apply, message).await {
                return;
            }
        }
    }

    /// Counts one durable save into the status's storage stats.
    fn record_save(&mut self, write: &StorageWrite<'_>, elapsed: Duration) {
        if elapsed > SLOW_WRITE {
            tracing::warn!(
                node = self.core.id(),
                elapsed_ms = elapsed.as_millis() as u64,
                entries = write.entries.len(),
                hard_state = write.hard_state.is_some(),
                snapshot_bytes = write.snapshot.map_or(0, |s| s.data.len()),
                "slow storage write"
            );
        }
        let stats = &mut self.storage_stats;
        stats.writes.record(elapsed);
        if let Some(snapshot) = write.snapshot {
            stats.snapshot_writes.record(elapsed);
            stats.snapshot_written_bytes += snapshot.data.len() as u64;
        }
        let entry_bytes: u64 = write.entries.iter().map(|e| e.data.len() as u64).sum();
        stats.entry_written_bytes += entry_bytes;
    }

    /// Hands the observer (if any) what was made durable and the core's state.
    pub(super) fn observe(&self, durable: Durable) {
        let Some(observer) = &self.observer else {
            return;
        };
        let log = self.core.log();
        observer.observe(Observation {
            node: self.core.id(),
            durable,
            term: self.core.term(),
            voted_for: self.core.voted_for(),
            role: self.core.role(),
            commit_index: log.commit_index(),
            applied_index: log.applied_index(),
            last_index: log.last_index(),
            snapshot: log.snapshot_meta().clone(),
        });
    }

    pub(super) fn publish_status(&mut self) {
        // A leader change: a leader known in a newer term than the last
        // one in which a leader was known (the first one counts too).
        let term = self.core.term();
        if self.core.leader_id().is_some() && self.last_leader_term.is_none_or(|last| last < term) {
            self.leader_changes += 1;
            self.last_leader_term = Some(term);
        }
        let status = NodeStatus {
            term: self.core.term(),
            is_leader: self.core.is_leader(),
            leader_id: self.core.leader_id(),
            voted_for: self.core.voted_for(),
            leader_contact: self.core.leader_contact(),
            commit_index: self.core.log().commit_index(),
            applied_index: self.core.log().applied_index(),
            last_log_index: self.core.log().last_index(),
            last_log_term: self.core.log().last_term(),
            is_voter: self.core.is_voter(),
            snapshot_index: self.core.log().snapshot_meta().last_included_index,
            raft_state_size_bytes: self.storage.raft_state_size_bytes(),
            snapshots_received: self.snapshots_received,
            peer_messages_refused: self.core.refused_messages(),
            snapshot_size_bytes: self.storage.snapshot_size_bytes(),
            snapshot_held_bytes: self.core.snapshot_held_bytes(),
            leader_changes: self.leader_changes,
            lease_reads: self.core.lease_reads_served(),
            storage: self.storage_stats,
        };
        *self.shared.status.lock().expect("status lock poisoned") = status;
        // A configuration compacted into the snapshot is dated by the
        // snapshot's last index (its entry is at or before it).
        let log = self.core.log();
        let config_index = match log.last_config_index() {
            0 if log.snapshot_meta().membership.is_some() => {
                log.snapshot_meta().last_included_index
            }
            index => index,
        };
        let mut membership = self
            .shared
            .membership
            .lock()
            .expect("membership lock poisoned");
        if membership.0 != config_index || membership.1 != *self.core.membership() {
            *membership = (config_index, self.core.membership().clone());
        }
        drop(membership);
        let mut learner_match = self
            .shared
            .learner_match
            .lock()
            .expect("learner match lock poisoned");
        learner_match.clear();
        if self.core.is_leader() {
            for &learner in &self.core.membership().learners {
                let matched = self
                    .core
                    .progress(learner)
                    .map_or(0, |progress| progress.match_index);
                learner_match.insert(learner, matched);
            }
        }
    }
}

/// Sends `message` on `channel`, waiting for room if it is full, as
/// `Sender::send` does; false if the receiver is gone. A message that fits
/// at once takes `try_send`'s path, which skips the waiting future (and its
/// share of the task's cooperative budget): the apply channel and the event
/// channel carry one message per command, and that future was about 3% of
/// the driver's time at 64 proposers (2026-12-06 profile). Permits go to
/// waiting senders first, so a sender trying first never overtakes them.
pub(super) async fn send_or_wait<T>(channel: &mpsc::Sender<T>, message: T) -> bool {
    match channel.try_send(message) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(message)) => channel.send(message).await.is_ok(),
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// The staged snapshot's write ending (never, if there is none).
async fn staged_write_done(staged: &mut Option<StagedSnapshot>) -> StagedWritten {
    match staged {
        Some(staged) => (&mut staged.written).await,
        None => std::future::pending().await,
    }
}

/// The task that sends one peer's requests: in the order the core produced
/// them (so a pipeline of AppendEntries reaches the peer in order when the
/// transport keeps order, instead of racing in separate tasks), with at
/// most `max_in_flight` awaiting replies; replies are stepped back into the
/// event loop in whatever order they come.
async fn peer_sender(
    transport: Arc<dyn Transport>,
    mut requests: mpsc::Receiver<Message>,
    events: mpsc::Sender<Event>,
    max_in_flight: usize,
) {
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            Some(reply) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(message) = reply
                    && events
                        .send(Event::Inbound { message, responder: None })
                        .await
                        .is_err()
                {
                    return;
                }
            }
            request = requests.recv(), if in_flight.len() < max_in_flight => {
                let Some(request) = request else { return };
                in_flight.push(transport.call(request));
            }
            else => return,
        }
    }
}
