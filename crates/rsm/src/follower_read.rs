//! Linearizable reads on any replica (follower ReadIndex, Raft thesis
//! 6.4.1): a follower asks its leader for a read index, waits until it has
//! applied through it, and reads its own machine.
//!
//! ```text
//!  follower                                   leader
//!  read_anywhere(look)
//!    ask ─── AskReadIndex ──────────────────► a heartbeat round, even
//!     (concurrent reads here                    under its lease (shared by
//!      share one ask)                            concurrent asks), then its
//!                                                clock's stamp
//!    ◄── heartbeat {commit} ──────────────────   (the round's heartbeats
//!    ◄────────────── ReadGrant{index, now_ms}     carry the commit index)
//!    wait until applied >= index
//!    look(&machine, {now_ms: max(grant, log time)})
//! ```
//!
//! **Why a round, not the lease.** A follower learns that entries are
//! committed from the leader's next message; a lease grant would leave it
//! waiting for the next heartbeat (up to 100 ms with the defaults; the
//! first measurement showed a p99 of 90 ms). The round's heartbeats carry
//! the commit index, so by the time the grant arrives the follower
//! usually knows it and has applied through it.
//!
//! **Why it is linearizable.** The leader confirms its lead after the ask
//! arrived, so the grant's index covers every write acknowledged before
//! the read began. Committed entries are the same on every replica, and
//! the follower applies only committed ones, so once it has applied
//! through the index its machine holds every such write (and perhaps
//! later ones, committed before the read ends). The read's logical time
//! is the leader's stamp at the grant, never the follower's clock, so a
//! key's TTL ends at the same moment whichever replica is read.
//!
//! **Reads with a staleness bound** ([`Rsm::read_within`]). A caller that
//! accepts an answer up to `B` old lets the follower reuse a grant instead
//! of asking: the follower keeps its newest grant with the instant it
//! *sent* that ask (on its own monotonic clock), and answers from its
//! machine at once while that instant is at most `B` ago and it has
//! applied through the grant's index; otherwise it asks as above. The
//! guarantee: **such a read reflects every write acknowledged more than
//! `B` before the read began** (on this replica), and nothing that was not
//! committed. Why: the leader confirmed its lead after the ask arrived, so
//! the grant covers every write acknowledged before the ask was sent; the
//! ask was sent at most `B` before the read began. Only elapsed time on
//! one machine is compared, so no clocks need to agree (a monotonic
//! clock's rate error, parts per million, scales `B` by as much). The
//! assumption is that the monotonic clock runs while the machine does: a
//! suspended and resumed machine (Linux's `CLOCK_MONOTONIC` stops during
//! suspend) would see an old grant as fresh. A grant is reused only in
//! the term it was asked in. A read with `B = 0` always asks: it is
//! [`Rsm::read_anywhere`], linearizable.
//! Such reads are not monotonic across replicas (one may be staler than
//! the last); on one replica they are, since its machine only moves on.
//! TTLs: the read's time is the grant's stamp (or the machine's log time,
//! if later), so a key never looks expired before the leader expired it.
//! While the bound holds, a follower cut off from its leader still
//! answers; past it, it answers nothing.
//!
//! A leader answers the ask once a heartbeat round confirmed its lead
//! (concurrent asks share a round); a replica that does not lead, or is
//! not the one the ask names, answers `WrongLeader`. A follower that cannot name or
//! reach its leader, or does not catch up by the deadline, answers the
//! caller's error (`WrongLeader`, `Timeout`): the caller then reads from
//! the leader as usual. Bounds: the asks waiting on a follower, and the
//! reads waiting on a leader, are `max_pending_proposals` each (more
//! answer `Busy`); one ask waits at most `ASK_TIMEOUT`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::machine::{ApplyContext, ReplicatedMachine};
use crate::replica::{Rsm, SubmitError};

/// A follower's ask of its leader for a read index. Changes nothing. It
/// names whom it asks, so a replica at a reused address, or of another
/// group behind the same port, refuses rather than grant its own index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskReadIndex {
    /// The asker's [`crate::RsmConfig::group_tag`].
    pub group: u64,
    /// The Raft id the asker believes leads.
    pub to: u64,
}

impl labrpc::Rpc for AskReadIndex {
    const NAME: &'static str = "rsm.AskReadIndex";
    type Reply = Result<ReadGrant, SubmitError>;
}

/// A leader's answer to [`AskReadIndex`]: a read index it confirmed after
/// the ask arrived, and its logical time then (the read's `now_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadGrant {
    pub index: u64,
    pub now_ms: u64,
}

/// A follower's newest grant, kept for bounded-staleness reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeldGrant {
    pub(crate) grant: ReadGrant,
    /// When the ask that got it was sent (this replica's clock).
    pub(crate) asked_at: tokio::time::Instant,
    /// This replica's Raft term then.
    pub(crate) term: u64,
}

/// Longest one ask of the leader waits for its grant.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

impl<M: ReplicatedMachine> Rsm<M> {
    /// A linearizable read on this replica, leader or follower (see the
    /// module docs): on the leader the same as [`Rsm::read`]; on a
    /// follower one ask of the leader (shared with concurrent reads) and
    /// a wait for this replica to apply through the grant. Errors as
    /// `read`'s; the caller reads from the leader instead.
    ///
    /// Runs inside a `raft.follower_read` span whose `index` is the grant.
    pub async fn read_anywhere<R>(
        &self,
        look: impl FnOnce(&M, &ApplyContext) -> R,
    ) -> Result<R, SubmitError> {
        self.read_within(Duration::ZERO, look).await
    }

    /// A read on this replica that may be up to `max_staleness` old: it
    /// reflects every write acknowledged more than `max_staleness` before
    /// this call (see the module docs). A follower answers from a grant it
    /// asked for within the bound, without asking again; `Duration::ZERO`
    /// is [`Rsm::read_anywhere`]. A leader reads as [`Rsm::read`] does
    /// (linearizable, so within any bound).
    ///
    /// Runs inside a `raft.follower_read` span whose `index` is the grant
    /// and `reused` whether it was an earlier one.
    pub async fn read_within<R>(
        &self,
        max_staleness: Duration,
        look: impl FnOnce(&M, &ApplyContext) -> R,
    ) -> Result<R, SubmitError> {
        if self.raft().is_killed() {
            // Stopped (killed, or for good): it answers nobody.
            return Err(SubmitError::WrongLeader { leader_hint: None });
        }
        if self.raft().state().1 {
            return self.read(look).await;
        }
        let span = tracing::info_span!(
            "raft.follower_read",
            index = tracing::field::Empty,
            reused = tracing::field::Empty
        );
        async {
            let began = labrpc::runtime::now();
            let deadline = began + self.shared.config.apply_wait;
            let held = self.held_grant(began, max_staleness);
            tracing::Span::current().record("reused", held.is_some());
            let grant = match held {
                Some(grant) => grant,
                None => self.ask_leader(deadline).await?,
            };
            tracing::Span::current().record("index", grant.index);
            self.wait_applied(grant.index, deadline).await?;
            let inner = self.shared.lock();
            let context = ApplyContext {
                index: inner.last_applied,
                now_ms: grant.now_ms.max(inner.log_time_ms),
            };
            self.shared.follower_reads.fetch_add(1, Ordering::Relaxed);
            if held.is_some() {
                self.shared.reused_grants.fetch_add(1, Ordering::Relaxed);
            }
            Ok(look(&inner.machine, &context))
        }
        .instrument(span)
        .await
    }

    /// The newest grant, if its ask was sent at most `max_staleness`
    /// before `began` and in this replica's current term (never for a zero
    /// bound). The term check drops a grant from before this replica led:
    /// while it led it read at its own clock's stamps, and an older
    /// grant's stamp could bring an expired key back.
    fn held_grant(
        &self,
        began: tokio::time::Instant,
        max_staleness: Duration,
    ) -> Option<ReadGrant> {
        if max_staleness.is_zero() {
            return None;
        }
        let held = *self.shared.last_grant.lock().expect("last grant lock");
        let term = self.raft().status().term;
        held.filter(|held| {
            held.term == term && began.saturating_duration_since(held.asked_at) <= max_staleness
        })
        .map(|held| held.grant)
    }

    /// Follower reads answered from an earlier grant under a staleness
    /// bound (no ask of their own), since this replica started.
    pub fn reused_grants(&self) -> u64 {
        self.shared.reused_grants.load(Ordering::Relaxed)
    }

    /// Reads [`Rsm::read_anywhere`] answered on this replica while it
    /// followed, since it started.
    pub fn follower_reads(&self) -> u64 {
        self.shared.follower_reads.load(Ordering::Relaxed)
    }

    /// [`Rsm::read_within`] of a service answer, the rsm's refusal turned
    /// into the service's error (as [`Rsm::read_reply`]).
    pub async fn read_within_reply<T, E: From<SubmitError>>(
        &self,
        max_staleness: Duration,
        look: impl FnOnce(&M, &ApplyContext) -> Result<T, E>,
    ) -> Result<T, E> {
        self.read_within(max_staleness, look)
            .await
            .unwrap_or_else(|error| Err(error.into()))
    }

    /// A grant from the leader this replica knows, asked after this call
    /// (concurrent callers share one ask), by `deadline`. Each round looks
    /// the leader up afresh, so a leader change reaches the next round
    /// even while reads keep arriving.
    async fn ask_leader(&self, deadline: tokio::time::Instant) -> Result<ReadGrant, SubmitError> {
        let raft = self.raft().clone();
        let peers = self.shared.peers.clone();
        let group = self.shared.config.group_tag;
        let last_grant = std::sync::Arc::clone(&self.shared.last_grant);
        let ask =
            self.shared
                .follower_asks
                .join(self.shared.config.max_pending_proposals, move || {
                    let (raft, peers) = (raft.clone(), peers.clone());
                    let last_grant = std::sync::Arc::clone(&last_grant);
                    async move {
                        // Taken before the ask leaves: what bounded reads
                        // measure a grant's age from.
                        let asked_at = labrpc::runtime::now();
                        let term = raft.status().term;
                        let answer = ask_once(&raft, &peers, group).await;
                        if let Ok(grant) = answer {
                            let mut last = last_grant.lock().expect("last grant lock");
                            if last.is_none_or(|last| last.asked_at <= asked_at) {
                                *last = Some(HeldGrant {
                                    grant,
                                    asked_at,
                                    term,
                                });
                            }
                        }
                        Some(answer)
                    }
                });
        let remaining = deadline.saturating_duration_since(labrpc::runtime::now());
        match tokio::time::timeout(remaining, ask).await {
            Ok(Ok(Some(answer))) => answer,
            Ok(Ok(None)) => Err(self.wrong_leader()),
            Ok(Err(too_many)) => Err(SubmitError::Busy {
                pending: too_many.waiting,
            }),
            Err(_) => Err(SubmitError::Timeout),
        }
    }

    /// The leader's side of [`AskReadIndex`]: a read index confirmed now,
    /// and its clock's stamp. `WrongLeader` from a replica that does not
    /// lead, or is not the one asked (another Raft id, another group).
    pub(crate) async fn grant_read_index(
        &self,
        ask: AskReadIndex,
    ) -> Result<ReadGrant, SubmitError> {
        if ask.group != self.shared.config.group_tag || ask.to != self.raft().id() {
            return Err(SubmitError::WrongLeader { leader_hint: None });
        }
        let deadline = labrpc::runtime::now() + self.shared.config.apply_wait.min(ASK_TIMEOUT);
        // A heartbeat round even under the lease: its heartbeats carry the
        // commit index, so the asker can apply through the grant at once
        // instead of waiting for the next heartbeat (up to 100 ms).
        let index = self.confirmed_read_index_by(deadline, true).await?;
        let mut inner = self.shared.lock();
        let now_ms = inner
            .clock
            .stamp(labrpc::runtime::now())
            .max(inner.log_time_ms);
        Ok(ReadGrant { index, now_ms })
    }
}

/// One ask of the leader `raft` knows now (none known, or this replica
/// itself: `WrongLeader` with no hint).
async fn ask_once(
    raft: &raft::node::RaftNode,
    peers: &labrpc::Client,
    group: u64,
) -> Result<ReadGrant, SubmitError> {
    let status = raft.status();
    let leader = status
        .leader_id
        .filter(|&leader| leader != raft.id())
        .and_then(|leader| raft.peer_addr(leader).map(|addr| (leader, addr)));
    let Some((leader, addr)) = leader else {
        return Err(SubmitError::WrongLeader { leader_hint: None });
    };
    let ask = AskReadIndex { group, to: leader };
    match peers.call_with_timeout(addr, &ask, ASK_TIMEOUT).await {
        Ok(reply) => reply,
        // Unreachable, or no such method (an older build): this replica
        // cannot vouch; the caller goes to the leader itself.
        Err(_) => Err(SubmitError::WrongLeader { leader_hint: None }),
    }
}
