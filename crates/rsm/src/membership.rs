//! Membership change and leadership transfer, offered to the services
//! above (an operator's `add-replica`, `remove-replica`, `transfer-leader`).
//!
//! Raft changes the group one server at a time (`raft::core::membership`);
//! what the rsm adds is the address. Raft's configuration entries name
//! node ids only, and a replica reaches a peer through its address book,
//! so a node that joins with an address nobody was configured with must
//! become known to every replica, now and after any restart, before any
//! of them has to reach it:
//!
//! ```text
//!   add_member(id, addr, learner)      on the leader
//!     1. PeerAddress{id, addr} entry ──► every replica applies it: records
//!        (rsm's own entry, layout 2)     the address (replicated state, in
//!                                        the snapshot too) and sets it in
//!                                        Raft's address book
//!     2. AddLearner(id) config entry ──► Raft: in force once appended,
//!                                        the leader starts sending to id
//!     3. committed? reflected in the configuration? ──► Ok(configuration)
//! ```
//!
//! The address entry always precedes the change in the log, so a replica
//! that holds the change holds the address too (it may not have applied
//! it yet: a new leader applies its committed entries before it can reach
//! the new node, which costs time, not safety).
//!
//! Every call is idempotent in its effect: a change already reflected in
//! the configuration in force answers `Ok` at once, so a caller that timed
//! out can simply call again. Configuration entries are never handed to
//! the machine (Raft delivers only command entries; the rsm's own
//! entries are applied by the rsm).

use std::net::SocketAddr;
use std::time::Duration;

use raft::core::{Membership, MembershipChange, MembershipError, NodeId, TransferError};
use raft::node::AddressBook;

use crate::format::{EntryBody, EnvelopeV2, ProposalId, encode_rsm_entry};
use crate::machine::ReplicatedMachine;
use crate::replica::Rsm;

/// How often a change's caller looks whether it committed.
const COMMIT_POLL: Duration = Duration::from_millis(10);

/// Why a membership change did not take effect (or is not known to have).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// Raft refused it and nothing changed: not the leader, the leader is
    /// not ready (2015 rule), another change or a transfer is in flight,
    /// the learner lags, or the change makes no sense (see the reason).
    #[error("{0}")]
    Refused(#[from] MembershipError),
    /// This replica does not lead (or lost its lead on the way).
    #[error("not the leader (hint: {leader_hint:?})")]
    WrongLeader { leader_hint: Option<NodeId> },
    /// Proposed, but not seen committed within the rsm's `apply_wait`: it
    /// may still take effect. Read the configuration, or call again.
    #[error("not committed in time; it may still take effect")]
    Timeout,
    /// The replicated address book holds `AddressBook::MAX_ADDRESSES`
    /// nodes already.
    #[error("address book full ({max} addresses)")]
    AddressBookFull { max: usize },
    /// Bad input, refused before anything was proposed.
    #[error("{0}")]
    Invalid(String),
}

impl ChangeError {
    /// Worth retrying (here or at another leader) as is: everything but a
    /// change that makes no sense and a full book.
    pub fn is_retryable(&self) -> bool {
        match self {
            ChangeError::Refused(MembershipError::Invalid { .. }) => false,
            ChangeError::Refused(_) | ChangeError::WrongLeader { .. } | ChangeError::Timeout => {
                true
            }
            ChangeError::AddressBookFull { .. } | ChangeError::Invalid(_) => false,
        }
    }
}

/// True if `membership` already has the effect of `change`.
pub fn reflects(membership: &Membership, change: MembershipChange) -> bool {
    match change {
        MembershipChange::AddLearner(id) => membership.contains(id),
        MembershipChange::AddVoter(id) | MembershipChange::PromoteLearner(id) => {
            membership.is_voter(id)
        }
        MembershipChange::Remove(id) => !membership.contains(id),
    }
}

impl<M: ReplicatedMachine> Rsm<M> {
    /// The configuration in force on this replica (the newest in its log,
    /// committed or not) and its entry's index (0: the bootstrap one).
    pub fn membership(&self) -> (u64, Membership) {
        self.raft.membership()
    }

    /// The addresses recorded by membership changes so far (replicated
    /// state, as of what this replica applied).
    pub fn recorded_addrs(&self) -> std::collections::BTreeMap<u64, SocketAddr> {
        self.shared.lock().peer_addrs.clone()
    }

    /// Proposes `change` on this replica, which must lead, and waits until
    /// it is committed and in force. With `addr` (for `AddLearner` and
    /// `AddVoter`), the node's address is first recorded on every replica
    /// through the log (module docs). `Ok` carries the configuration in
    /// force afterwards. Refusals change nothing; see [`ChangeError`].
    pub async fn change_membership(
        &self,
        change: MembershipChange,
        addr: Option<SocketAddr>,
    ) -> Result<Membership, ChangeError> {
        if addr.is_some()
            && !matches!(
                change,
                MembershipChange::AddLearner(_) | MembershipChange::AddVoter(_)
            )
        {
            return Err(ChangeError::Invalid(format!(
                "an address goes with adding a node, not with {change:?}"
            )));
        }
        if !self.raft.state().1 {
            return Err(self.change_wrong_leader());
        }
        if let (Some(addr), MembershipChange::AddLearner(id) | MembershipChange::AddVoter(id)) =
            (addr, change)
        {
            self.record_address(id, addr).await?;
        }
        // In effect already (a retry after a timeout): the configuration
        // that reflects it may still be uncommitted, and a new leader may
        // overwrite it, so it is waited for like a new proposal. (Answering
        // Ok at once lost an acknowledged removal under faults: seed 213 of
        // `replace_every_replica_under_faults_linearizable`.)
        let (config_index, membership) = self.raft.membership();
        let (index, term) = if reflects(&membership, change) {
            (config_index, self.raft.status().term)
        } else {
            self.raft.propose_membership_change(change).await?
        };
        let deadline = labrpc::runtime::now() + self.shared.config.apply_wait;
        loop {
            let status = self.raft.status();
            if status.commit_index >= index {
                let (_, membership) = self.raft.membership();
                if reflects(&membership, change) {
                    return Ok(membership);
                }
                // Committed at `index` is another leader's entry.
                return Err(self.change_wrong_leader());
            }
            if status.term != term {
                return Err(self.change_wrong_leader());
            }
            if labrpc::runtime::now() >= deadline {
                return Err(ChangeError::Timeout);
            }
            tokio::time::sleep(COMMIT_POLL).await;
        }
    }

    /// Starts handing leadership to voter `target` (Raft thesis 3.10):
    /// `Ok` once under way, not when done (watch the Raft status).
    pub async fn transfer_leader(&self, target: NodeId) -> Result<(), TransferError> {
        self.raft.transfer_leader(target).await
    }

    /// Records `id`'s address on every replica through the log (an rsm
    /// entry) and waits until this replica applied it. Nothing is proposed
    /// if the address is already recorded.
    async fn record_address(&self, id: NodeId, addr: SocketAddr) -> Result<(), ChangeError> {
        let entry = {
            let mut inner = self.shared.lock();
            if inner.peer_addrs.get(&id) == Some(&addr) {
                return Ok(());
            }
            if inner.peer_addrs.len() >= AddressBook::MAX_ADDRESSES
                && !inner.peer_addrs.contains_key(&id)
            {
                return Err(ChangeError::AddressBookFull {
                    max: AddressBook::MAX_ADDRESSES,
                });
            }
            inner.next_proposal += 1;
            let proposal = ProposalId {
                incarnation: self.shared.incarnation,
                number: inner.next_proposal,
            };
            let stamp_ms = inner.clock.stamp(labrpc::runtime::now());
            encode_rsm_entry::<M>(&EnvelopeV2 {
                proposal,
                stamp_ms,
                body: EntryBody::PeerAddress { id, addr },
            })
        };
        let Some((index, term)) = self.raft.start(entry).await else {
            return Err(self.change_wrong_leader());
        };
        let deadline = labrpc::runtime::now() + self.shared.config.apply_wait;
        let mut applied = self.shared.applied.subscribe();
        loop {
            if *applied.borrow_and_update() >= index {
                if self.shared.lock().peer_addrs.get(&id) == Some(&addr) {
                    return Ok(());
                }
                // Another entry took the place.
                return Err(self.change_wrong_leader());
            }
            if self.raft.status().term != term {
                return Err(self.change_wrong_leader());
            }
            let remaining = deadline.saturating_duration_since(labrpc::runtime::now());
            if remaining.is_zero() {
                return Err(ChangeError::Timeout);
            }
            self.shared.nudge.notify_one();
            if let Ok(Err(_)) =
                tokio::time::timeout(COMMIT_POLL.min(remaining), applied.changed()).await
            {
                // The apply task ended: the replica was killed.
                return Err(self.change_wrong_leader());
            }
        }
    }

    fn change_wrong_leader(&self) -> ChangeError {
        ChangeError::WrongLeader {
            leader_hint: self.raft.status().leader_id,
        }
    }
}
