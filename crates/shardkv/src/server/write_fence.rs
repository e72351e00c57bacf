//! The write fence: client-side caching's invalidation before
//! acknowledgement (issue 22, Chubby's rule). A write is answered to its
//! writer only once every node that may cache keys of the group has been
//! told of it, or can no longer vouch for what its clients cached.
//!
//! ```text
//!  node's feed poller P                    the group's leader
//!    WatchChanges{poller, after: c} ───►  on_poll: P handed every change
//!      ("I have handed every change          through c to its connections;
//!        through c to my connections")       P's lease: arrival + POLLER_LEASE
//!    ◄── keys of (c, r] ─ hand them to
//!        the connections, then poll
//!        again with after = r
//!                                          write applied at index i:
//!                                            wait until every leased poller
//!                                            handed through >= i, or its lease
//!                                            ran out ─► answer the writer
//! ```
//!
//! **The invariant.** Before the leader answers a write at index `i`, every
//! poller that may hold keys of the group has either handed the write's
//! invalidation to its clients' connections, or has lost its lease, and a
//! poller that lost its lease has flushed its clients (or will have by the
//! time the lease ran out) and lets nothing be cached until it is confirmed
//! again. Why it holds:
//!
//! - *The poller's side* (distcache's `tracking` module): a poll with cursor
//!   `c` is sent only after the invalidations through `c` were handed to
//!   the connections. The poller counts its window ([`POLLER_WINDOW`]) from
//!   when it *sent* the poll whose answer confirmed it last, and flushes by a
//!   timer when the window ends without a newer confirmed answer; while
//!   unconfirmed, whatever its clients read is told as changed right after
//!   the reply (nothing stays cached).
//! - *The leader's side*: a poll that arrives at `a` (no earlier than it was
//!   sent) extends the poller's lease to `a + POLLER_LEASE`, the window
//!   stretched for clock-rate drift ([`CLOCK_DRIFT_PERCENT`]) plus
//!   [`LEASE_MARGIN`] for the poller's timer to run. Any poll this leader
//!   answered was recorded here first, so a poller whose lease ran out here
//!   has, by its own clock, passed the window of every answer this leader
//!   gave it.
//! - *Other leaders*: an answer from a leader of an earlier term was
//!   confirmed (ReadIndex) before this leader's election, so the poll was
//!   sent before this leader took office: its window ends before
//!   `office + POLLER_LEASE`. A new leader therefore answers no write before
//!   one lease has passed since it noticed its term ([`FenceCore::check`]),
//!   unless the log says no poller may hold a lease: a leader writes
//!   [`GroupCommand::PollerLeases`]`{may_exist: true}` before it answers a
//!   poll, and `false` only once it has had no poller for a lease and has
//!   led for a lease; while a `false` may be in flight it answers no poll.
//!   The marker is read after the new leader applied an entry of its own
//!   term (so every earlier one); a snapshot carries the marker as of its
//!   index (machine snapshot format 3), and one written before it did
//!   counts as `true`. An answer from a leader of a later term covers every
//!   write committed before it (Raft's leader completeness), so `i` too.
//!   So a group nobody tracks pays nothing, even after a failover.
//! - *Other groups*: a write applied in one group and then moved, with its
//!   shard, to another before it was answered is answered by the new group
//!   from the exactly-once record, fenced by the new group's pollers at its
//!   read index. Installing the shard is a gap in the new group's change
//!   feed (`change_feed`), so each of those pollers has started over (its
//!   clients flushed) before its cursor reaches that index.
//!
//! **Bounds.** At most [`MAX_POLLERS`] pollers per leader; a new one past
//! it is refused (no answer: it flushes and caches nothing). A poller that
//! holds a write back for more than [`MAX_ACK_WAIT`] loses its lease: its
//! polls are refused until the lease runs out (it flushes, then starts
//! over). So a write waits at most `MAX_ACK_WAIT + POLLER_LEASE` (after a
//! failover of a tracked group, one lease) and usually one poll round trip.
//!
//! [`GroupCommand::PollerLeases`]: crate::machine::GroupCommand::PollerLeases

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a poller vouches for its clients after sending a poll that
/// was answered: with no newer confirmed answer by then, it flushes them.
pub const POLLER_WINDOW: Duration = Duration::from_millis(POLLER_WINDOW_MS);
const POLLER_WINDOW_MS: u64 = 3_000;
/// How much faster a poller's clock may run than the leader's, in percent
/// of the window (generous: real clocks drift far less).
pub const CLOCK_DRIFT_PERCENT: u64 = 10;
/// Added to a lease for the poller's flush timer to fire and run.
pub const LEASE_MARGIN: Duration = Duration::from_millis(LEASE_MARGIN_MS);
const LEASE_MARGIN_MS: u64 = 250;
/// A poller's lease at the leader, from its latest poll's arrival.
pub const POLLER_LEASE: Duration = Duration::from_millis(
    POLLER_WINDOW_MS + POLLER_WINDOW_MS * CLOCK_DRIFT_PERCENT / 100 + LEASE_MARGIN_MS,
);
/// Most pollers one leader holds leases for.
pub const MAX_POLLERS: usize = 1_024;
/// Longest a poller may hold a write back before it loses its lease.
pub const MAX_ACK_WAIT: Duration = Duration::from_secs(1);

/// What a poll may do next ([`FenceCore::on_poll`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Answer it.
    Answer,
    /// The log does not say (or may soon not say) that pollers may exist:
    /// write `PollerLeases{may_exist: true}` first, then ask again.
    WriteMarker,
    /// No lease for this poller: answer it nothing (it flushes).
    Refused(Refusal),
}

/// Why a poll was refused a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the leader holds leases for {MAX_POLLERS} pollers already")]
    Full,
    #[error("the poller held a write back too long; its lease is not renewed")]
    TooSlow,
    #[error("the poll was admitted under an earlier term of this replica")]
    StaleTerm,
}

/// Whether a write may be answered ([`FenceCore::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceCheck {
    Open,
    /// Not yet: look again by `recheck_at` (or at the next poll).
    Closed {
        recheck_at: Instant,
    },
}

/// One poller's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PollerLease {
    /// The cursor of its latest poll: every change through it was handed
    /// to its connections.
    handed_through: u64,
    lease_until: Instant,
    /// The highest index it holds back, and since when.
    holding: Option<(u64, Instant)>,
    /// Its lease is no longer renewed ([`Refusal::TooSlow`]).
    refused: bool,
}

/// When a new leader may answer writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Office {
    /// Not decided yet: at the first write check of the term.
    Undecided,
    /// Pollers of earlier leaders may hold leases until then.
    Until(Instant),
    /// The log said no poller may hold a lease.
    Open,
}

/// The fence's state on one replica: plain data, the clock passed in.
#[derive(Debug)]
pub struct FenceCore {
    /// The term this replica last acted in as leader.
    term: u64,
    /// When it noticed that term (no earlier than it took office).
    term_seen_at: Option<Instant>,
    office: Office,
    pollers: BTreeMap<u64, PollerLease>,
    /// The log's `PollerLeases` marker as applied here, or restored from a
    /// snapshot (`true` while unknown: a replica that restored state
    /// before its first marker, or a snapshot older than the marker).
    marked: bool,
    /// A `PollerLeases{may_exist: false}` may be on its way.
    retiring: bool,
}

impl FenceCore {
    /// A replica that starts from an empty log: no poller ever held a
    /// lease (`fresh`); one that restores state cannot tell.
    pub fn new(fresh: bool) -> FenceCore {
        FenceCore {
            term: 0,
            term_seen_at: None,
            office: Office::Undecided,
            pollers: BTreeMap::new(),
            marked: !fresh,
            retiring: false,
        }
    }

    /// This replica leads in `term` now: a new term forgets the pollers
    /// (they polled another leader, or this one in an earlier term).
    /// Whether `term` is current: a caller that read its term before an
    /// await may come back after a later term was seen (it acts on
    /// nothing then).
    fn observe(&mut self, term: u64, now: Instant) -> bool {
        if self.term_seen_at.is_some() && term == self.term {
            return true;
        }
        if term < self.term {
            return false;
        }
        self.term = term;
        self.term_seen_at = Some(now);
        self.office = Office::Undecided;
        self.pollers.clear();
        // An off marker of the earlier term is applied before any entry of
        // this one, and polls are answered only after such an entry.
        self.retiring = false;
        true
    }

    fn prune(&mut self, now: Instant) {
        self.pollers.retain(|_, lease| lease.lease_until > now);
    }

    /// A poll from `poller` arrived at `now` at this leader of `term`,
    /// saying it handed every change through `handed_through`.
    pub fn on_poll(
        &mut self,
        term: u64,
        poller: u64,
        handed_through: u64,
        now: Instant,
    ) -> Admission {
        if !self.observe(term, now) {
            return Admission::Refused(Refusal::StaleTerm);
        }
        self.prune(now);
        let lease_until = now + POLLER_LEASE;
        let full = self.pollers.len() >= MAX_POLLERS;
        match self.pollers.get_mut(&poller) {
            Some(lease) if lease.refused => return Admission::Refused(Refusal::TooSlow),
            Some(lease) => {
                // The latest poll's cursor (a delayed older poll may lower
                // it: that only holds writes back longer).
                lease.handed_through = handed_through;
                lease.lease_until = lease.lease_until.max(lease_until);
                if lease
                    .holding
                    .is_some_and(|(index, _)| handed_through >= index)
                {
                    lease.holding = None;
                }
            }
            None if full => {
                return Admission::Refused(Refusal::Full);
            }
            None => {
                self.pollers.insert(
                    poller,
                    PollerLease {
                        handed_through,
                        lease_until,
                        holding: None,
                        refused: false,
                    },
                );
            }
        }
        if self.may_answer() {
            Admission::Answer
        } else {
            Admission::WriteMarker
        }
    }

    /// Whether a poll may be answered now: the log says pollers may exist
    /// and no marker saying otherwise is on its way. Checked again as the
    /// answer is read (under the replica's lock, with the markers applied
    /// through the read index).
    pub fn may_answer(&self) -> bool {
        self.marked && !self.retiring
    }

    /// A `PollerLeases{may_exist}` entry applied here.
    pub fn on_marker(&mut self, may_exist: bool) {
        self.marked = may_exist;
        if !may_exist {
            self.retiring = false;
        }
    }

    /// A snapshot replaced the machine; `may_exist` is its marker (the
    /// last `PollerLeases` it applied; true if the snapshot is from before
    /// snapshots carried it).
    pub fn on_restored(&mut self, may_exist: bool) {
        self.on_marker(may_exist);
    }

    /// Whether to write `PollerLeases{may_exist: false}` now, as leader of
    /// `term`: the log says pollers may exist, none has a lease here, and
    /// this replica has led for a lease (so earlier leaders' pollers are
    /// gone too). If so, polls are held (not answered) until the marker
    /// applies or [`FenceCore::marker_not_placed`].
    pub fn retire(&mut self, term: u64, now: Instant) -> bool {
        if !self.observe(term, now) {
            return false;
        }
        self.prune(now);
        let led_a_lease = self
            .term_seen_at
            .is_some_and(|seen| now >= seen + POLLER_LEASE);
        if self.marked && !self.retiring && self.pollers.is_empty() && led_a_lease {
            self.retiring = true;
            return true;
        }
        false
    }

    /// The off marker [`FenceCore::retire`] asked for was refused before
    /// Raft placed it (it will never apply).
    pub fn marker_not_placed(&mut self) {
        self.retiring = false;
    }

    /// Whether the first write check of `term` is still to come: the caller
    /// must then have applied an entry of `term` before it checks.
    pub fn office_undecided(&self, term: u64) -> bool {
        term != self.term || self.office == Office::Undecided
    }

    /// Whether a write at `index`, proposed in `term`, may be answered at
    /// `now`. The caller guarantees that it leads in `term` and has
    /// applied an entry of `term` (so every marker of earlier terms).
    pub fn check(&mut self, term: u64, index: u64, now: Instant) -> FenceCheck {
        if !self.observe(term, now) {
            // The caller no longer leads in `term`: it will see so.
            return FenceCheck::Closed { recheck_at: now };
        }
        self.prune(now);
        if self.office == Office::Undecided {
            let seen = self.term_seen_at.expect("observe sets it");
            self.office = if self.marked || self.retiring {
                Office::Until(seen + POLLER_LEASE)
            } else {
                Office::Open
            };
        }
        if let Office::Until(until) = self.office {
            if now < until {
                return FenceCheck::Closed { recheck_at: until };
            }
            self.office = Office::Open;
        }
        let mut recheck_at: Option<Instant> = None;
        for lease in self.pollers.values_mut() {
            if lease.handed_through >= index {
                continue;
            }
            let (held, since) = lease.holding.unwrap_or((index, now));
            lease.holding = Some((held.max(index), since));
            if now >= since + MAX_ACK_WAIT {
                lease.refused = true;
            }
            let next = if lease.refused {
                lease.lease_until
            } else {
                lease.lease_until.min(since + MAX_ACK_WAIT)
            };
            recheck_at = Some(recheck_at.map_or(next, |at| at.min(next)));
        }
        match recheck_at {
            None => FenceCheck::Open,
            Some(recheck_at) => FenceCheck::Closed { recheck_at },
        }
    }

    /// Pollers holding a lease (status, tests).
    pub fn pollers(&self) -> usize {
        self.pollers.len()
    }
}

/// The fence of one replica: its [`FenceCore`] behind a lock, and a wake-up
/// for writes waiting on it.
#[derive(Debug)]
pub struct WriteFence {
    core: Mutex<FenceCore>,
    /// Woken by every poll and every marker applied.
    polled: Notify,
}

impl WriteFence {
    pub fn new(fresh: bool) -> WriteFence {
        WriteFence {
            core: Mutex::new(FenceCore::new(fresh)),
            polled: Notify::new(),
        }
    }

    /// Runs `act` on the core and wakes the waiting writes.
    pub fn update<R>(&self, act: impl FnOnce(&mut FenceCore) -> R) -> R {
        let result = act(&mut self.core.lock().expect("write fence lock"));
        self.polled.notify_waiters();
        result
    }

    /// Runs `look` on the core (it may prune or decide, but wakes nobody).
    pub fn with<R>(&self, look: impl FnOnce(&mut FenceCore) -> R) -> R {
        look(&mut self.core.lock().expect("write fence lock"))
    }

    /// Resolves at the next poll or marker. Enable it before checking.
    pub fn polled(&self) -> tokio::sync::futures::Notified<'_> {
        self.polled.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERM: u64 = 2;

    /// An instant to count from. The core never reads the clock (every
    /// call is given `now`); only differences from this one matter.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    /// A core of a group that has been tracked (marker on), leading in
    /// `TERM` since `start`, with its office wait passed at the returned
    /// instant.
    fn tracked_leader(start: Instant) -> (FenceCore, Instant) {
        let mut core = FenceCore::new(true);
        core.on_marker(true);
        assert_eq!(core.on_poll(TERM, 9, 0, start), Admission::Answer);
        let open = start + POLLER_LEASE;
        (core, open)
    }

    #[test]
    fn an_untracked_group_answers_writes_at_once_even_after_a_failover() {
        let now = origin();
        let mut core = FenceCore::new(true);
        assert_eq!(core.check(TERM, 5, now), FenceCheck::Open);
        assert_eq!(core.check(TERM + 1, 6, now), FenceCheck::Open);
    }

    #[test]
    fn a_first_poll_asks_for_the_marker_and_is_answered_once_it_applied() {
        let now = origin();
        let mut core = FenceCore::new(true);
        assert_eq!(core.on_poll(TERM, 1, 0, now), Admission::WriteMarker);
        core.on_marker(true);
        assert_eq!(core.on_poll(TERM, 1, 0, now), Admission::Answer);
        assert_eq!(core.pollers(), 1);
    }

    #[test]
    fn a_write_waits_until_every_leased_poller_handed_it_on() {
        let start = origin();
        let (mut core, open) = tracked_leader(start);
        // Office: a new leader of a tracked group waits one lease.
        assert_eq!(
            core.check(TERM, 10, start),
            FenceCheck::Closed { recheck_at: open }
        );
        let now = open;
        assert_eq!(core.on_poll(TERM, 1, 9, now), Admission::Answer);
        assert_eq!(core.on_poll(TERM, 9, 10, now), Admission::Answer);
        // Poller 1 has handed through 9 only.
        assert_eq!(
            core.check(TERM, 10, now),
            FenceCheck::Closed {
                recheck_at: now + MAX_ACK_WAIT
            }
        );
        let later = now + Duration::from_millis(20);
        assert_eq!(core.on_poll(TERM, 1, 12, later), Admission::Answer);
        assert_eq!(core.check(TERM, 10, later), FenceCheck::Open);
        assert_eq!(
            core.check(TERM, 11, later),
            FenceCheck::Closed {
                recheck_at: later + MAX_ACK_WAIT
            }
        );
    }

    #[test]
    fn a_poller_that_stops_polling_stops_holding_writes_when_its_lease_ends() {
        let start = origin();
        let (mut core, open) = tracked_leader(start);
        let polled_at = open;
        assert_eq!(core.on_poll(TERM, 1, 3, polled_at), Admission::Answer);
        assert_eq!(core.on_poll(TERM, 9, 50, polled_at), Admission::Answer);
        let lease_end = polled_at + POLLER_LEASE;
        assert!(matches!(
            core.check(TERM, 4, polled_at),
            FenceCheck::Closed { .. }
        ));
        // Past MAX_ACK_WAIT it is refused; it still counts until its lease ends.
        let slow = polled_at + MAX_ACK_WAIT;
        assert_eq!(
            core.check(TERM, 4, slow),
            FenceCheck::Closed {
                recheck_at: lease_end
            }
        );
        assert_eq!(
            core.on_poll(TERM, 1, 3, slow),
            Admission::Refused(Refusal::TooSlow)
        );
        assert!(matches!(
            core.check(TERM, 4, lease_end - Duration::from_millis(1)),
            FenceCheck::Closed { .. }
        ));
        // Poller 9 handed through 50 but its own lease ends at the same
        // time; both are gone then.
        assert_eq!(core.check(TERM, 4, lease_end), FenceCheck::Open);
        assert_eq!(core.pollers(), 0);
        // Starting over, it gets a lease again.
        assert_eq!(core.on_poll(TERM, 1, 0, lease_end), Admission::Answer);
    }

    #[test]
    fn past_the_bound_a_new_poller_is_refused() {
        let start = origin();
        let (mut core, _) = tracked_leader(start);
        for poller in 100..100 + MAX_POLLERS as u64 - 1 {
            assert_eq!(core.on_poll(TERM, poller, 0, start), Admission::Answer);
        }
        assert_eq!(core.pollers(), MAX_POLLERS);
        assert_eq!(
            core.on_poll(TERM, 7, 0, start),
            Admission::Refused(Refusal::Full)
        );
        // One already known is renewed.
        assert_eq!(core.on_poll(TERM, 9, 1, start), Admission::Answer);
    }

    #[test]
    fn a_new_term_forgets_the_pollers_and_waits_a_lease() {
        let start = origin();
        let (mut core, open) = tracked_leader(start);
        assert_eq!(core.check(TERM, 1, open), FenceCheck::Open);
        let elected = open + Duration::from_secs(1);
        assert_eq!(
            core.check(TERM + 1, 2, elected),
            FenceCheck::Closed {
                recheck_at: elected + POLLER_LEASE
            }
        );
        assert_eq!(core.pollers(), 0);
        assert_eq!(
            core.check(TERM + 1, 2, elected + POLLER_LEASE),
            FenceCheck::Open
        );
    }

    #[test]
    fn a_caller_of_an_earlier_term_is_refused_not_obeyed() {
        let start = origin();
        let (mut core, open) = tracked_leader(start);
        assert!(matches!(
            core.check(TERM + 1, 1, open),
            FenceCheck::Closed { .. }
        ));
        assert_eq!(
            core.on_poll(TERM, 1, 0, open),
            Admission::Refused(Refusal::StaleTerm)
        );
        assert_eq!(
            core.check(TERM, 1, open),
            FenceCheck::Closed { recheck_at: open }
        );
        assert!(!core.retire(TERM, open + POLLER_LEASE));
    }

    #[test]
    fn a_restored_replica_counts_pollers_as_possible() {
        let now = origin();
        let mut core = FenceCore::new(false);
        assert!(matches!(
            core.check(TERM, 1, now),
            FenceCheck::Closed { .. }
        ));
        let mut fresh = FenceCore::new(true);
        fresh.on_restored(true);
        assert!(matches!(
            fresh.check(TERM, 1, now),
            FenceCheck::Closed { .. }
        ));
        // A snapshot whose log said no poller may exist opens at once.
        let mut quiet = FenceCore::new(false);
        quiet.on_restored(false);
        assert_eq!(quiet.check(TERM, 1, now), FenceCheck::Open);
    }

    #[test]
    fn the_marker_is_retired_only_after_a_lease_without_pollers() {
        let start = origin();
        let (mut core, open) = tracked_leader(start);
        // Poller 9 still has its lease until start + POLLER_LEASE.
        assert!(!core.retire(TERM, start + Duration::from_secs(1)));
        assert!(core.retire(TERM, open));
        // While the off marker is on its way, polls are not answered...
        assert_eq!(core.on_poll(TERM, 1, 0, open), Admission::WriteMarker);
        assert!(!core.may_answer());
        // ...an on marker applied before the off one does not clear it...
        core.on_marker(true);
        assert!(!core.may_answer());
        // ...until the off one applies: then an on marker is written again.
        core.on_marker(false);
        assert_eq!(core.on_poll(TERM, 1, 0, open), Admission::WriteMarker);
        core.on_marker(true);
        assert_eq!(core.on_poll(TERM, 1, 0, open), Admission::Answer);
        // A new leader reading "off" answers writes at once.
        let mut next = FenceCore::new(true);
        next.on_marker(true);
        next.on_marker(false);
        assert_eq!(next.check(TERM + 1, 3, open), FenceCheck::Open);
    }

    #[test]
    fn a_marker_refused_before_placement_is_forgotten() {
        let start = origin();
        let (mut core, open) = tracked_leader(start);
        assert!(core.retire(TERM, open));
        core.marker_not_placed();
        assert!(core.may_answer());
    }

    #[test]
    fn a_new_leader_within_its_first_lease_does_not_retire() {
        let start = origin();
        let mut core = FenceCore::new(false);
        assert!(!core.retire(TERM, start));
        assert!(!core.retire(TERM, start + POLLER_LEASE - Duration::from_millis(1)));
        assert!(core.retire(TERM, start + POLLER_LEASE));
    }
}
