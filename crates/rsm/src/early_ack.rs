//! Asynchronous replication, opt in: a leader may answer a write once the
//! write is in its own log, before a majority holds it
//! ([`RsmConfig::early_acks`](crate::RsmConfig::early_acks)).
//!
//! **What it costs.** An early answer is a promise the leader alone has
//! made. If the leader stops leading before a majority stores the entry
//! (it crashes, is cut off, or steps down), the next leader may not have
//! the entry and the write may be lost although its writer heard `OK`. At
//! most [`EarlyAcks::max_unreplicated`] early-answered entries are
//! outstanding on a leader at once (more wait for the commit as usual), so
//! one lost lead loses at most that many writes.
//!
//! **What it keeps.** Nothing uncommitted is ever read: a read on the
//! leader waits until the leader has applied every write it answered
//! early before the read began (so a writer reads its own writes while
//! the leader lives), and followers apply only committed entries. So a
//! history in which every early-answered write is taken as "may have
//! happened, at any time after its call" is still linearizable; the
//! simulation and chaos tests check exactly that.
//!
//! **Which writes.** Only a write whose answer the machine can tell
//! before applying it ([`ReplicatedMachine::early_output`]): for shardkv a
//! plain `SET`, whose answer is `OK` whatever the key held. The machine
//! decides from its applied state plus every entry between that state and
//! the write, which must all be commands this replica proposed in its
//! current term and recorded here: an entry it knows nothing of (a new
//! leader's no-op, an address or membership entry, a proposal whose caller
//! went away before recording it) stops early answers past it until it is
//! applied. Proposals are recorded in whatever order their callers get
//! here; an entry recorded behind a gap is answered early when the gap is
//! recorded, or waits for its commit. A prediction that still differs from
//! the applied output is counted ([`SpeculationStats::mispredicted`], and
//! [`mispredictions_in_process`]: a bug, which tests assert never
//! happens).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::machine::ReplicatedMachine;

/// The asynchronous replication setting of a group (every replica should
/// have the same: only the leader's counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarlyAcks {
    /// Early-answered entries a leader may have outstanding (not yet
    /// applied) at once; past it, writes wait for their commit. Bounds
    /// what one lost lead loses. At least 1.
    pub max_unreplicated: usize,
}

/// The default bound on early-answered entries outstanding at once.
pub const DEFAULT_MAX_UNREPLICATED: usize = 256;

impl Default for EarlyAcks {
    fn default() -> EarlyAcks {
        EarlyAcks {
            max_unreplicated: DEFAULT_MAX_UNREPLICATED,
        }
    }
}

/// Mispredictions by every replica of this process (a simulation runs
/// many nodes in one process; a node that restarted still counts them).
static MISPREDICTED: AtomicU64 = AtomicU64::new(0);

/// Early answers that differed from their applied output, by any replica
/// in this process since it started. Always 0 unless there is a bug.
pub fn mispredictions_in_process() -> u64 {
    MISPREDICTED.load(Ordering::Relaxed)
}

/// Counters of early answers since the replica started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpeculationStats {
    /// Writes answered before their commit.
    pub early_acks: u64,
    /// Early-answered writes this replica saw lost: another entry was
    /// applied at their index (a later leader did not have them). A lost
    /// write on a leader that crashed is not seen by anyone.
    pub lost: u64,
    /// Early-answered writes whose applied output differed from the
    /// answer given. Always 0 unless the machine's prediction is wrong.
    pub mispredicted: u64,
    /// Early-answered entries outstanding now.
    pub outstanding: usize,
}

/// Whether an entry was answered early.
enum Answer<O> {
    /// Not decided yet: an entry before it is unknown here.
    Undecided,
    /// Answered with this output before its commit.
    Early(O),
    /// Waits for its commit.
    Late,
}

struct InFlight<M: ReplicatedMachine> {
    /// The term Raft placed it in.
    term: u64,
    /// This replica's proposal number for the entry.
    proposal: u64,
    command: M::Command,
    answer: Answer<M::Output>,
}

/// A leader's record of the commands it proposed and has not applied yet,
/// and of the answers it gave early.
pub(crate) struct Speculation<M: ReplicatedMachine> {
    /// The newest term a command was recorded in.
    term: u64,
    /// By index: this replica's commands not applied yet (of `term`, and
    /// possibly of earlier terms, whose fate is learnt when applied).
    in_flight: BTreeMap<u64, InFlight<M>>,
    /// The highest index answered early in `term`: what a read waits for.
    highest_early: u64,
    /// Every entry after the applied index up to this one is a decided
    /// command of `term` (so [`Speculation::decide`] goes on from here
    /// and walks each entry once, not the whole run per submit). Only
    /// entries at the front leave the run otherwise; a cut or a new term
    /// moves it back.
    decided_through: u64,
    stats: SpeculationStats,
}

impl<M: ReplicatedMachine> Speculation<M> {
    pub(crate) fn new() -> Speculation<M> {
        Speculation {
            term: 0,
            in_flight: BTreeMap::new(),
            highest_early: 0,
            decided_through: 0,
            stats: SpeculationStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> SpeculationStats {
        self.stats
    }

    /// The index a read beginning now, on the leader of `term`, must see
    /// applied besides its read index: every write answered early.
    ///
    /// A newer term's read needs none: its read index covers every entry
    /// of earlier terms that survived, and the rest are lost.
    pub(crate) fn read_floor(&self, term: u64) -> u64 {
        if term > self.term {
            0
        } else {
            self.highest_early
        }
    }

    /// Records this replica's command that Raft placed at `index` in
    /// `term`. Entries of earlier terms at or after `index` were cut from
    /// the log (a leader's log is one line within its term). A command
    /// placed in a term older than one already recorded (its proposer was
    /// held up across elections) is not recorded: it waits for its commit.
    pub(crate) fn record(&mut self, placed: Placed<M>) {
        let Placed {
            index,
            term,
            proposal,
            command,
        } = placed;
        if term < self.term {
            return;
        }
        if term > self.term {
            self.term = term;
            self.highest_early = 0;
            self.decided_through = 0;
        }
        // Within one term an index is placed once; should it come again,
        // the run is decided anew from before it.
        self.decided_through = self.decided_through.min(index.saturating_sub(1));
        let cut: Vec<u64> = self
            .in_flight
            .range(index..)
            .filter(|(_, entry)| entry.term < term)
            .map(|(&cut, _)| cut)
            .collect();
        for cut in cut {
            self.drop_entry(cut, true);
        }
        self.in_flight.insert(
            index,
            InFlight {
                term,
                proposal,
                command,
                answer: Answer::Undecided,
            },
        );
    }

    /// Decides every undecided entry whose predecessors are all known: the
    /// entries after `applied_through` up to it are this term's recorded
    /// commands. `deliver` hands an early answer to its proposal's waiter
    /// and says whether it was still there (a caller that gave up is
    /// answered nothing, and its entry waits for its commit).
    pub(crate) fn decide(
        &mut self,
        machine: &M,
        applied_through: u64,
        settings: EarlyAcks,
        mut deliver: impl FnMut(u64, M::Output) -> bool,
    ) {
        let first = applied_through + 1;
        // Entries at or below the applied index still here were not
        // applied as ours: an entry without a command took their place.
        while let Some((&oldest, _)) = self.in_flight.first_key_value() {
            if oldest >= first {
                break;
            }
            self.drop_entry(oldest, true);
        }
        // The run of this term's recorded commands right after the
        // applied state, up to the first gap; the part decided by an
        // earlier call is still a run (see `decided_through`).
        let start = first.max(self.decided_through + 1);
        let known: Vec<u64> = self
            .in_flight
            .range(start..)
            .zip(start..)
            .take_while(|((index, entry), expected)| {
                **index == *expected && entry.term == self.term
            })
            .map(|((index, _), _)| *index)
            .collect();
        if let Some(&last) = known.last() {
            self.decided_through = last;
        }
        for index in known {
            if !matches!(self.in_flight[&index].answer, Answer::Undecided) {
                continue;
            }
            let entry = &self.in_flight[&index];
            let output = if self.stats.outstanding < settings.max_unreplicated.max(1) {
                let earlier = self
                    .in_flight
                    .range(first..index)
                    .map(|(_, entry)| &entry.command);
                machine.early_output(&entry.command, earlier)
            } else {
                None
            };
            let entry = self
                .in_flight
                .get_mut(&index)
                .expect("an index just listed");
            entry.answer = match output {
                Some(output) if deliver(entry.proposal, output.clone()) => {
                    self.stats.early_acks += 1;
                    self.stats.outstanding += 1;
                    self.highest_early = self.highest_early.max(index);
                    Answer::Early(output)
                }
                _ => Answer::Late,
            };
        }
    }

    /// The entry at `index` applied with `output`; `own` is its proposal
    /// number if this run of the replica proposed it.
    pub(crate) fn applied(&mut self, index: u64, own: Option<u64>, output: Option<&M::Output>) {
        // Entries before `index` still here were not applied as ours:
        // another leader's entry without a command (its no-op) took their
        // place.
        while let Some((&first, _)) = self.in_flight.first_key_value() {
            if first >= index {
                break;
            }
            self.drop_entry(first, true);
        }
        let Some(entry) = self.in_flight.get(&index) else {
            return;
        };
        let mine = own == Some(entry.proposal);
        let mispredicted = match (&entry.answer, output) {
            (Answer::Early(answered), Some(output)) => mine && output != answered,
            _ => false,
        };
        // Not ours: another entry took its place.
        self.drop_entry(index, !mine);
        if mispredicted {
            self.stats.mispredicted += 1;
            MISPREDICTED.fetch_add(1, Ordering::Relaxed);
            tracing::error!(index, "a write answered early applied with another output");
        }
    }

    /// A snapshot through `index` was installed: the entries it covers
    /// are not learnt one by one (their fate is unknown here).
    pub(crate) fn forget_through(&mut self, index: u64) {
        while let Some((&first, _)) = self.in_flight.first_key_value() {
            if first > index {
                break;
            }
            self.drop_entry(first, false);
        }
    }

    /// Removes the entry at `index`; `lost`: if it was answered early,
    /// that answer was lost.
    fn drop_entry(&mut self, index: u64, lost: bool) {
        let Some(entry) = self.in_flight.remove(&index) else {
            return;
        };
        if let Answer::Early(_) = entry.answer {
            self.stats.outstanding -= 1;
            if lost {
                self.stats.lost += 1;
                tracing::warn!(
                    index,
                    "a write answered early was lost: another entry took its index"
                );
            }
        }
    }
}

/// A command Raft placed in the log.
pub(crate) struct Placed<M: ReplicatedMachine> {
    pub(crate) index: u64,
    pub(crate) term: u64,
    pub(crate) proposal: u64,
    pub(crate) command: M::Command,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::ApplyContext;

    /// Commands are numbers; an even one's output (itself) is known
    /// before it applies, an odd one's is not.
    #[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
    struct Evens;

    impl ReplicatedMachine for Evens {
        type Command = u64;
        type Output = u64;

        fn apply(&mut self, command: &u64, _: &ApplyContext) -> u64 {
            *command
        }

        fn early_output<'a>(
            &self,
            command: &u64,
            _earlier: impl Iterator<Item = &'a u64>,
        ) -> Option<u64> {
            command.is_multiple_of(2).then_some(*command)
        }

        fn check_invariants(&self) -> Result<(), String> {
            Ok(())
        }
    }

    fn placed(index: u64, term: u64, command: u64) -> Placed<Evens> {
        Placed {
            index,
            term,
            proposal: index,
            command,
        }
    }

    const BOUND: EarlyAcks = EarlyAcks {
        max_unreplicated: 2,
    };

    /// Records `command` at `index` and decides: the proposals answered
    /// early now, with their answers.
    fn propose(
        speculation: &mut Speculation<Evens>,
        applied_through: u64,
        bound: EarlyAcks,
        (index, term, command): (u64, u64, u64),
    ) -> Vec<(u64, u64)> {
        speculation.record(placed(index, term, command));
        let mut answered = Vec::new();
        speculation.decide(&Evens, applied_through, bound, |proposal, output| {
            answered.push((proposal, output));
            true
        });
        answered
    }

    #[test]
    fn answers_wait_for_every_entry_before_to_be_known_and_keep_to_the_bound() {
        let mut speculation = Speculation::<Evens>::new();
        // The term's first command at 3: entry 2 (the no-op) is unknown
        // here and not applied yet, so nothing is answered early.
        assert_eq!(propose(&mut speculation, 1, BOUND, (3, 2, 10)), vec![]);
        // Once it is applied, the next proposal decides both.
        assert_eq!(
            propose(&mut speculation, 2, BOUND, (4, 2, 12)),
            vec![(3, 10), (4, 12)]
        );
        // An odd command waits for its commit; past the bound, so do all.
        assert_eq!(propose(&mut speculation, 2, BOUND, (5, 2, 7)), vec![]);
        assert_eq!(propose(&mut speculation, 2, BOUND, (6, 2, 14)), vec![]);
        assert_eq!(speculation.stats().outstanding, 2);
        assert_eq!(speculation.read_floor(2), 4);
        assert_eq!(speculation.read_floor(3), 0, "another term's reads");
        for (index, output) in [(3, 10), (4, 12), (5, 7), (6, 14)] {
            speculation.applied(index, Some(index), Some(&output));
        }
        let stats = speculation.stats();
        assert_eq!(
            (
                stats.early_acks,
                stats.outstanding,
                stats.lost,
                stats.mispredicted
            ),
            (2, 0, 0, 0)
        );
    }

    #[test]
    fn an_entry_recorded_behind_a_gap_is_answered_when_the_gap_is_recorded() {
        let mut speculation = Speculation::<Evens>::new();
        let many = EarlyAcks {
            max_unreplicated: 10,
        };
        // Raft placed 2 and 3; 3's proposer got here first.
        assert_eq!(propose(&mut speculation, 1, many, (3, 1, 6)), vec![]);
        assert_eq!(
            propose(&mut speculation, 1, many, (2, 1, 4)),
            vec![(2, 4), (3, 6)]
        );
    }

    #[test]
    fn early_answers_replaced_or_skipped_are_counted_lost() {
        let mut speculation = Speculation::<Evens>::new();
        let many = EarlyAcks {
            max_unreplicated: 10,
        };
        for index in 2..=6 {
            assert_eq!(
                propose(&mut speculation, 1, many, (index, 1, 2 * index)),
                vec![(index, 2 * index)]
            );
        }
        // Another leader's no-op took index 2 (never handed over), its
        // command took 3 (not our proposal); ours applied at 4.
        speculation.applied(3, None, Some(&99));
        speculation.applied(4, Some(4), Some(&8));
        assert_eq!(speculation.stats().lost, 2);
        // This replica leads again in term 3, its log cut back: a new
        // entry at 5 removes the old ones at 5 and 6.
        assert_eq!(
            propose(&mut speculation, 4, many, (5, 3, 20)),
            vec![(5, 20)]
        );
        let stats = speculation.stats();
        assert_eq!((stats.lost, stats.outstanding), (4, 1));
        // A snapshot covers it: its fate is unknown here.
        speculation.forget_through(5);
        let stats = speculation.stats();
        assert_eq!(
            (stats.lost, stats.outstanding, stats.mispredicted),
            (4, 0, 0)
        );
    }

    #[test]
    fn a_command_placed_in_an_older_term_and_recorded_late_changes_nothing() {
        let mut speculation = Speculation::<Evens>::new();
        let many = EarlyAcks {
            max_unreplicated: 10,
        };
        assert_eq!(
            propose(&mut speculation, 4, many, (5, 4, 10)),
            vec![(5, 10)]
        );
        // Placed in term 2, its proposer held up across two elections.
        assert_eq!(propose(&mut speculation, 4, many, (6, 2, 12)), vec![]);
        assert_eq!(speculation.read_floor(4), 5);
        let stats = speculation.stats();
        assert_eq!((stats.outstanding, stats.lost), (1, 0));
        // The term-4 entry at 5 is still answered as ours when it applies.
        speculation.applied(5, Some(5), Some(&10));
        assert_eq!(speculation.stats().outstanding, 0);
    }

    #[test]
    fn an_applied_output_that_differs_is_counted() {
        let mut speculation = Speculation::<Evens>::new();
        assert_eq!(propose(&mut speculation, 0, BOUND, (1, 1, 4)), vec![(1, 4)]);
        speculation.applied(1, Some(1), Some(&5));
        assert_eq!(speculation.stats().mispredicted, 1);
        assert!(mispredictions_in_process() >= 1);
    }
}
