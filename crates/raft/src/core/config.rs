//! Tunables of the core, all counted in ticks, entries or bytes.

use super::entry::NodeId;
use super::validate::PayloadCheck;

/// How long a tick is in the driver (`crate` docs explain the choice). The core
/// itself only counts ticks.
pub const TICK_INTERVAL_MS: u64 = 10;

/// Configuration of one [`crate::core::RawNode`].
///
/// The defaults follow the 6.5840 limits with a 10 ms tick:
/// - heartbeat every 10 ticks = 100 ms, so at most 10 heartbeats per second;
/// - election timeout drawn uniformly from 30..60 ticks = 300-600 ms, well
///   above the heartbeat interval, so a healthy leader is never deposed, and
///   short enough that a split vote retried a few times still elects a leader
///   within the lab's 5 s;
/// - (pre-)vote requests re-sent to silent peers every 10 ticks, at most 3
///   times a round: on a reliable network every answer arrives well within
///   100 ms, so the lab's RPC counts are unchanged, and on a lossy one a lost
///   message costs 100 ms instead of a new election timeout.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// The bootstrap configuration: the group's voters before any
    /// configuration entry (`core/membership.rs`), this node included for
    /// an original member. A node joining a running group is started with
    /// the group's original peers (or any list without itself): it is not
    /// a voter, so it never campaigns, until a configuration entry from the
    /// leader makes it one.
    pub peers: Vec<NodeId>,
    /// Seeds the RNG that randomizes election timeouts.
    pub rng_seed: u64,
    pub heartbeat_interval_ticks: u64,
    /// Lower bound (inclusive) of the randomized election timeout.
    pub election_timeout_ticks_min: u64,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_timeout_ticks_max: u64,
    /// A (pre-)candidate sends its request again to the peers that have not
    /// answered after this many ticks of its round, so one lost request or
    /// reply costs this long instead of a whole election timeout (twice with
    /// PreVote).
    pub vote_resend_interval_ticks: u64,
    /// At most this many re-sends per peer in one (pre-)vote round (0: never
    /// re-send). With the defaults a round lasts at most 59 ticks, which
    /// leaves room for at most 5 re-sends every 10 ticks; 3 keeps the count
    /// of vote requests per round within 4 per peer.
    pub vote_resends_per_round_max: u64,
    /// At most this many entries in one AppendEntries.
    pub max_entries_per_message: usize,
    /// At most this many entry bytes ([`crate::core::Entry::size_bytes`]) in
    /// one AppendEntries (a single entry larger than this still goes, alone).
    pub max_bytes_per_message: usize,
    /// `propose` refuses an entry larger than this
    /// ([`crate::core::Entry::size_bytes`]), so that an AppendEntries
    /// carrying it alone still fits in one transport message. The default,
    /// 15 MiB, leaves 1 MiB of labrpc's 16 MiB message limit for the
    /// envelope; `tests/core_bounds.rs` checks the encoded size.
    pub max_entry_bytes: usize,
    /// At most this many AppendEntries with entries in flight per follower
    /// (pipelining). 1 means one round trip per batch.
    pub max_inflight_messages: usize,
    /// `propose` refuses new entries while this many are uncommitted, so the
    /// log cannot grow without bound when followers are unreachable.
    pub max_uncommitted_entries: u64,
    /// `propose` refuses an entry that would take the uncommitted entries
    /// past this many bytes ([`crate::core::Entry::size_bytes`]): the entry
    /// count alone allows 65,536 entries of 15 MiB. The default, 64 MiB,
    /// bounds the leader's unreplicated memory, holds at least 4 entries of
    /// the largest size, and keeps what a leader persists in one `Ready` (its
    /// new entries are all uncommitted) far below the storage's 1 GiB record
    /// limit. It must be at least `max_entry_bytes`, so that an entry of any
    /// accepted size goes through once the pipeline drains.
    pub max_uncommitted_bytes: u64,
    /// At most this many committed entries in one `Ready`.
    pub max_committed_entries_per_ready: usize,
    /// `read_index` refuses new reads while this many await confirmation.
    pub max_pending_reads: usize,
    /// A snapshot piece sent to a follower that has not answered is sent
    /// again after this many ticks.
    pub snapshot_retry_ticks: u64,
    /// Largest piece of a snapshot in one InstallSnapshot; pieces are also
    /// at most `max_entry_bytes`, so a piece fits a transport message as an
    /// entry does. The default is 4 MiB.
    pub snapshot_chunk_bytes: usize,
    /// A follower refuses a snapshot larger than this (checked on every
    /// piece, before any byte is kept): it bounds the buffer of pieces
    /// received. The default, 1 GiB, is the storage's record limit.
    pub max_snapshot_bytes: u64,
    /// A new leader appends an empty entry of its term (off by default to keep
    /// the 6.5840 index numbering: the first command is index 1).
    pub noop_on_election: bool,
    /// A learner is promoted to voter only if its log is at most this many
    /// entries behind the leader's (`MembershipError::LearnerBehind`), so
    /// a new voter does not stall commitment while it catches up.
    pub max_learner_lag_entries: u64,
    /// PreVote (Raft thesis 9.6): a node whose election timer fires first
    /// asks, without changing its term, whether a majority would vote for
    /// it; only then does it start a real election. A node grants such a
    /// pre-vote only to an up-to-date log and only if it has not heard from
    /// a leader for at least `election_timeout_ticks_min`. So a node cut off
    /// from the group does not inflate its term, and one that rejoins does
    /// not depose a healthy leader. On by default.
    pub pre_vote: bool,
    /// CheckQuorum (Raft thesis 6.2 and 9.6): a leader that has not heard
    /// from a majority (itself included) during `election_timeout_ticks_min`
    /// ticks steps down, so clients of a leader cut off in a minority learn
    /// it; and a node that heard from a leader less than
    /// `election_timeout_ticks_min` ago disregards RequestVote (thesis
    /// 4.2.3). On by default.
    pub check_quorum: bool,
    /// Lease reads (Raft thesis 6.4.1): a leader that a majority confirmed
    /// at time t answers reads from its own commit index, with no
    /// heartbeat round, until t + [`Config::read_lease_ms`] on its clock;
    /// after that a read takes a ReadIndex round, which renews the lease.
    /// Safe because, with CheckQuorum, a voter that heard from the leader
    /// refuses every vote for `election_timeout_ticks_min` ticks, so no
    /// other leader can be elected before the lease ends; that holds only
    /// while clocks run within `lease_clock_drift_percent` of each other.
    /// To keep it across restarts, a node with leases on grants no vote
    /// during its first `election_timeout_ticks_min` ticks; a leader
    /// handing over (`transfer_leader`) or changing the membership gives
    /// its lease up. Needs `check_quorum`. Off by default.
    pub lease_reads: bool,
    /// How far, in percent, two nodes' clocks may drift apart in rate
    /// (the lease is shortened by this bound on both sides). Default 10.
    pub lease_clock_drift_percent: u64,
    /// The service's check that a command entry or a snapshot from the
    /// leader is usable (decodes) before it is stored; one that is not is
    /// refused (`core/validate.rs`). None (the default): payloads are
    /// opaque and stored as they come.
    pub payload_check: Option<PayloadCheck>,
}

impl Config {
    /// How long a confirmation keeps a leader's lease, in milliseconds of
    /// its own clock: the shortest time a voter refuses votes after hearing
    /// from it, `(election_timeout_ticks_min - 1)` ticks (the first tick
    /// after a heartbeat may come at once), shrunk for a leader clock
    /// running slow and a voter clock running fast by the drift bound:
    /// `window * (100 - d) / (100 + d)`.
    pub fn read_lease_ms(&self) -> u64 {
        let window_ms = self.election_timeout_ticks_min.saturating_sub(1) * TICK_INTERVAL_MS;
        let drift = self.lease_clock_drift_percent;
        window_ms * (100 - drift) / (100 + drift)
    }

    /// The defaults described on [`Config`] for node `id` of `peers`.
    pub fn new(id: NodeId, peers: Vec<NodeId>, rng_seed: u64) -> Config {
        Config {
            id,
            peers,
            rng_seed,
            heartbeat_interval_ticks: 10,
            election_timeout_ticks_min: 30,
            election_timeout_ticks_max: 60,
            vote_resend_interval_ticks: 10,
            vote_resends_per_round_max: 3,
            max_entries_per_message: 512,
            max_bytes_per_message: 1 << 20,
            max_entry_bytes: 15 << 20,
            max_inflight_messages: 8,
            max_uncommitted_entries: 1 << 16,
            max_uncommitted_bytes: 64 << 20,
            max_committed_entries_per_ready: 1024,
            max_pending_reads: 4096,
            snapshot_retry_ticks: 30,
            snapshot_chunk_bytes: 4 << 20,
            max_snapshot_bytes: 1 << 30,
            noop_on_election: false,
            max_learner_lag_entries: 512,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            lease_clock_drift_percent: 10,
            payload_check: None,
        }
    }

    /// Panics with the offending field if the configuration cannot work.
    pub fn validate(&self) {
        assert!(!self.peers.is_empty(), "config: peers is empty");
        assert!(
            !self.lease_reads || self.check_quorum,
            "config: lease_reads needs check_quorum (voters that refuse votes while a leader is alive)"
        );
        assert!(
            self.lease_clock_drift_percent < 100,
            "config: lease_clock_drift_percent {} must be under 100",
            self.lease_clock_drift_percent
        );
        assert!(
            self.peers.len() <= super::membership::MAX_MEMBERS,
            "config: {} peers exceed the limit of {}",
            self.peers.len(),
            super::membership::MAX_MEMBERS
        );
        let mut sorted = self.peers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            self.peers.len(),
            "config: duplicate peers {:?}",
            self.peers
        );
        assert!(
            self.heartbeat_interval_ticks > 0,
            "config: heartbeat_interval_ticks is 0"
        );
        assert!(
            self.election_timeout_ticks_min > self.heartbeat_interval_ticks,
            "config: election timeout min {} must exceed the heartbeat interval {}",
            self.election_timeout_ticks_min,
            self.heartbeat_interval_ticks
        );
        assert!(
            self.election_timeout_ticks_max > self.election_timeout_ticks_min,
            "config: election timeout range {}..{} is empty",
            self.election_timeout_ticks_min,
            self.election_timeout_ticks_max
        );
        assert!(
            self.vote_resend_interval_ticks > 0,
            "config: vote_resend_interval_ticks is 0"
        );
        assert!(
            self.max_entries_per_message > 0,
            "config: max_entries_per_message is 0"
        );
        assert!(
            self.max_inflight_messages > 0,
            "config: max_inflight_messages is 0"
        );
        assert!(
            self.max_uncommitted_entries > 0,
            "config: max_uncommitted_entries is 0"
        );
        assert!(
            self.max_bytes_per_message > 0,
            "config: max_bytes_per_message is 0"
        );
        assert!(
            self.max_entry_bytes as u64 <= self.max_uncommitted_bytes,
            "config: max_entry_bytes {} exceeds max_uncommitted_bytes {}: an entry that large \
             could never be proposed",
            self.max_entry_bytes,
            self.max_uncommitted_bytes
        );
        assert!(
            self.snapshot_chunk_bytes > 0 && self.max_entry_bytes > 0,
            "config: snapshot_chunk_bytes {} and max_entry_bytes {} must be positive",
            self.snapshot_chunk_bytes,
            self.max_entry_bytes
        );
        assert!(
            self.max_snapshot_bytes > 0,
            "config: max_snapshot_bytes is 0"
        );
        assert!(
            self.max_committed_entries_per_ready > 0,
            "config: max_committed_entries_per_ready is 0"
        );
    }
}
