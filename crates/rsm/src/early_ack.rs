//! Asynchronous replication, opt in: a leader may answer a write once the
//! write is in its own log, before a majority holds it
//! ([`RsmConfig::early_acks`](crate::RsmConfig::early_acks)).
//!
//! **What it costs.** An early answer is a promise the leader alone has
//! made. If the leader stops leading before a majority stores the entry
//! (it crashes, is cut off, or steps down), the next leader may not have
//! the entry and the write is lost although its writer heard `OK`. At
//! most [`EarlyAcks::max_unreplicated`] early-answered entries are
//! outstanding on a leader at once (more wait for the commit as usual), so
//! one lost lead loses at most that many writes; and a leader cut off from
//! the others stops leading after one election timeout (check-quorum), so
//! the writes lost are among those answered in the last election timeout
//! before the leader failed.
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
//! decides from its applied state plus the commands this leader proposed
//! in its term and not yet applied, which it is shown. That is exact
//! because the leader holds one lock from proposing an entry to recording
//! it here, so no command of its term can slip in unseen, and it answers
//! early only once everything before its term is applied. A prediction
//! that still differs from the applied output is counted
//! ([`SpeculationStats::mispredicted`]: a bug, which tests assert never
//! happens).

use std::collections::BTreeMap;

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

struct InFlight<M: ReplicatedMachine> {
    /// This replica's proposal number for the entry.
    proposal: u64,
    command: M::Command,
    /// The answer given early, if one was.
    answered: Option<M::Output>,
}

/// A leader's record of the commands it proposed in its term and has not
/// applied yet, and of the answers it gave early.
pub(crate) struct Speculation<M: ReplicatedMachine> {
    /// The term the record is for.
    term: u64,
    /// The first index this replica placed a command at in `term`.
    first_index: u64,
    /// By index: this replica's commands not applied yet (of `term`, and
    /// possibly of earlier terms, whose fate is learnt when applied).
    in_flight: BTreeMap<u64, InFlight<M>>,
    /// The highest index answered early in `term`: what a read waits for.
    highest_early: u64,
    stats: SpeculationStats,
}

impl<M: ReplicatedMachine> Speculation<M> {
    pub(crate) fn new() -> Speculation<M> {
        Speculation {
            term: 0,
            first_index: 0,
            in_flight: BTreeMap::new(),
            highest_early: 0,
            stats: SpeculationStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> SpeculationStats {
        self.stats
    }

    /// The index a read beginning now on the leader of `term` must see
    /// applied besides its read index: every write answered early.
    pub(crate) fn read_floor(&self, term: u64) -> u64 {
        if term == self.term {
            self.highest_early
        } else {
            0
        }
    }

    /// Raft placed this replica's `command` (proposal `proposal`) at
    /// `index` in `term`. Records it, and answers it now if the machine
    /// can tell its output and the bound allows. The caller holds the
    /// propose-order lock from `raft.start` to here.
    pub(crate) fn place(
        &mut self,
        machine: &M,
        last_applied: u64,
        settings: EarlyAcks,
        placed: Placed<M>,
    ) -> Option<M::Output> {
        let Placed {
            index,
            term,
            proposal,
            command,
        } = placed;
        if term != self.term {
            self.term = term;
            self.first_index = index;
            self.highest_early = 0;
        }
        // An entry of an earlier term at this index was cut from the log.
        if let Some(replaced) = self.in_flight.remove(&index)
            && replaced.answered.is_some()
        {
            self.stats.outstanding -= 1;
            self.note_lost();
        }
        let answer = (last_applied + 1 >= self.first_index
            && self.stats.outstanding < settings.max_unreplicated.max(1))
        .then(|| {
            let earlier = self
                .in_flight
                .range(self.first_index..index)
                .map(|(_, entry)| &entry.command);
            machine.early_output(&command, earlier)
        })
        .flatten();
        if answer.is_some() {
            self.stats.early_acks += 1;
            self.stats.outstanding += 1;
            self.highest_early = self.highest_early.max(index);
        }
        self.in_flight.insert(
            index,
            InFlight {
                proposal,
                command,
                answered: answer.clone(),
            },
        );
        answer
    }

    /// The entry at `index` applied with `output`; `own` is its proposal
    /// number if this run of the replica proposed it.
    pub(crate) fn applied(&mut self, index: u64, own: Option<u64>, output: Option<&M::Output>) {
        // Entries before `index` still here were not applied as ours:
        // another leader's entry without a command (its no-op) took their
        // place.
        while let Some(entry) = self.in_flight.first_entry() {
            if *entry.key() >= index {
                break;
            }
            if entry.remove().answered.is_some() {
                self.stats.outstanding -= 1;
                self.note_lost();
            }
        }
        let Some(entry) = self.in_flight.remove(&index) else {
            return;
        };
        let Some(answered) = entry.answered else {
            return;
        };
        self.stats.outstanding -= 1;
        match output {
            Some(output) if own == Some(entry.proposal) => {
                if *output != answered {
                    self.stats.mispredicted += 1;
                    tracing::error!(index, "a write answered early applied with another output");
                }
            }
            // Another entry took its place.
            _ => self.note_lost(),
        }
    }

    /// A snapshot through `index` was installed: the entries it covers
    /// are not learnt one by one (their fate is unknown here).
    pub(crate) fn forget_through(&mut self, index: u64) {
        while let Some(entry) = self.in_flight.first_entry() {
            if *entry.key() > index {
                break;
            }
            if entry.remove().answered.is_some() {
                self.stats.outstanding -= 1;
            }
        }
    }

    fn note_lost(&mut self) {
        self.stats.lost += 1;
        tracing::warn!("a write answered early was lost: another entry took its index");
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

    #[test]
    fn answers_wait_for_the_terms_start_and_keep_to_the_bound() {
        let mut speculation = Speculation::<Evens>::new();
        // The term's first entry at 3: entries 1 and 2 (an earlier term,
        // the no-op) are not applied yet, so nothing is answered early.
        assert_eq!(speculation.place(&Evens, 1, BOUND, placed(3, 2, 10)), None);
        assert_eq!(
            speculation.place(&Evens, 2, BOUND, placed(4, 2, 12)),
            Some(12)
        );
        assert_eq!(speculation.place(&Evens, 2, BOUND, placed(5, 2, 7)), None);
        assert_eq!(
            speculation.place(&Evens, 2, BOUND, placed(6, 2, 14)),
            Some(14)
        );
        assert_eq!(speculation.stats().outstanding, 2);
        assert_eq!(
            speculation.place(&Evens, 2, BOUND, placed(7, 2, 16)),
            None,
            "past the bound"
        );
        assert_eq!(speculation.read_floor(2), 6);
        assert_eq!(speculation.read_floor(3), 0, "another term's reads");
        for index in 3..=7 {
            speculation.applied(
                index,
                Some(index),
                Some(&[10, 12, 7, 14, 16][index as usize - 3]),
            );
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
    fn early_answers_replaced_or_skipped_are_counted_lost() {
        let mut speculation = Speculation::<Evens>::new();
        let many = EarlyAcks {
            max_unreplicated: 10,
        };
        for index in 2..=5 {
            assert!(
                speculation
                    .place(&Evens, 1, many, placed(index, 1, 2 * index))
                    .is_some()
            );
        }
        // Another leader's no-op took index 2 (never handed over), its
        // command took 3 (not our proposal); ours applied at 4.
        speculation.applied(3, None, Some(&99));
        speculation.applied(4, Some(4), Some(&8));
        assert_eq!(speculation.stats().lost, 2);
        // This replica leads again in term 3, its log cut back: a new
        // entry at 5 replaces the old one there.
        assert_eq!(
            speculation.place(&Evens, 4, many, placed(5, 3, 20)),
            Some(20)
        );
        let stats = speculation.stats();
        assert_eq!((stats.lost, stats.outstanding), (3, 1));
        // A snapshot covers it: its fate is unknown here.
        speculation.forget_through(5);
        let stats = speculation.stats();
        assert_eq!(
            (stats.lost, stats.outstanding, stats.mispredicted),
            (3, 0, 0)
        );
    }

    #[test]
    fn an_applied_output_that_differs_is_counted() {
        let mut speculation = Speculation::<Evens>::new();
        assert_eq!(
            speculation.place(&Evens, 0, BOUND, placed(1, 1, 4)),
            Some(4)
        );
        speculation.applied(1, Some(1), Some(&5));
        assert_eq!(speculation.stats().mispredicted, 1);
    }
}
