//! Which keys changed, by log index: the replica-side half of client-side
//! caching's invalidations (issue 22). A node whose clients cache values
//! long-polls the owning group's leader with [`WatchChanges`]`{after}` and
//! tells its clients the keys written since.
//!
//! ```text
//!  rsm apply (every replica, under its lock)     poller (a node)
//!    write applied at index i ─► (i, keys)        WatchChanges{after: c}
//!    FlushShard / GroupsLost ─► gap at i            leader: wait for an entry
//!    shard installed at i     ─► gap at i             past c (or the wait)
//!    snapshot installed at i  ─► gap at i
//!                                                   ReadIndex: still leader,
//!                                                     applied through r
//!                                                   ◄─ keys of (c, r], or
//!                                                      Reset if c is before
//!                                                      the feed's floor
//! ```
//!
//! **The cursor is a log index**, the same on every replica, so a poller
//! that moves to a new leader goes on from where it was if that leader's
//! feed covers it, and is told to start over ([`Changes::Reset`]: its
//! clients drop what they cached) if not.
//!
//! **Armed by polls**: a replica records only while a poll came in the last
//! [`ARMED_FOR`]; otherwise it keeps nothing and its floor follows the log,
//! so a group nobody caches from costs nothing, and a new leader's first
//! poll answers `Reset`.
//!
//! **Bounds**: at most [`MAX_FEED_KEYS`] keys and [`MAX_FEED_KEY_BYTES`]
//! bytes of keys; past either the oldest are dropped and the floor moves
//! past them (a poller that far behind starts over). A reply names at most
//! [`MAX_KEYS_PER_REPLY`] keys, whole entries only (one entry's keys are
//! bounded by the message limit it was proposed under).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use rsm::Applied;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::machine::{ChunkOutcome, GroupCommand, GroupOutput, ShardMachine};
use crate::rpc::Changes;
use api::Op;

/// Most keys a feed keeps.
pub const MAX_FEED_KEYS: usize = 16_384;
/// Most bytes of keys a feed keeps.
pub const MAX_FEED_KEY_BYTES: usize = 2 << 20;
/// Most keys in one [`Changes::Keys`] (more entries wait for the next poll).
pub const MAX_KEYS_PER_REPLY: usize = 4_096;
/// How long after a poll a replica keeps recording.
pub const ARMED_FOR: Duration = Duration::from_secs(30);

/// The keys one replica's applied writes changed, by log index.
#[derive(Debug, Default)]
pub struct ChangeFeed {
    state: Mutex<FeedState>,
    /// Woken when an entry is recorded or the floor moves.
    changed: Notify,
}

#[derive(Debug, Default)]
struct FeedState {
    /// (index, key), in log order.
    entries: VecDeque<(u64, Vec<u8>)>,
    key_bytes: usize,
    /// Every change after this index is in `entries`; nothing is known
    /// about those at or before it.
    floor: u64,
    /// The last index told to the feed.
    last: u64,
    /// Recording until then (`None`: never polled).
    armed_until: Option<Instant>,
}

impl ChangeFeed {
    /// The rsm's applied hook (see `rsm::AppliedHook`).
    pub fn on_applied(&self, applied: Applied<'_, ShardMachine>) {
        let mut state = self.state.lock().expect("change feed lock");
        let armed = state
            .armed_until
            .is_some_and(|until| labrpc::runtime::now() < until);
        match applied {
            Applied::Restored { index, .. } => state.gap(index),
            Applied::Command { index, .. } if !armed => state.gap(index),
            Applied::Command {
                index,
                command,
                output,
                ..
            } => match command {
                GroupCommand::Client { op, .. } => {
                    let applied_ok = matches!(output, GroupOutput::Client(Ok(_)));
                    if matches!(op, Op::FlushShard { .. }) && applied_ok {
                        // Every key of a shard: cheaper told as a gap.
                        state.gap(index);
                    } else {
                        if applied_ok && !op.is_read() {
                            for key in op.keys() {
                                state.record(index, key);
                            }
                        }
                        state.last = index;
                    }
                }
                // A lost group's shards come back empty: keys vanish
                // without a write naming them.
                GroupCommand::GroupsLost { .. } => state.gap(index),
                // A shard installed here brings the values its old group
                // wrote, whose changes this feed never held; and with them
                // the exactly-once record, from which a writer's retry is
                // answered here, fenced by this group's pollers only. A
                // gap makes every poller start over (its clients drop
                // what they cached) before such a retry is answered.
                GroupCommand::InstallShards { .. } | GroupCommand::ShardChunk { .. }
                    if installs(output) =>
                {
                    state.gap(index)
                }
                // Moves and configurations change no key's value.
                _ => state.last = index,
            },
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// A poll came: record from now on (a feed not armed until now starts
    /// with its floor at the last index).
    pub fn arm(&self) {
        let mut state = self.state.lock().expect("change feed lock");
        state.armed_until = Some(labrpc::runtime::now() + ARMED_FOR);
    }

    /// Whether a poll after `after` would answer at once: something was
    /// recorded past it, or the floor passed it.
    pub fn has_news(&self, after: u64) -> bool {
        let state = self.state.lock().expect("change feed lock");
        after < state.floor
            || state
                .entries
                .back()
                .is_some_and(|(index, _)| *index > after)
    }

    /// Resolves the next time something is recorded or the floor moves.
    /// Call before [`ChangeFeed::has_news`] (and await after) so that no
    /// change between the two is missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The changes after `after` through `through` (an index this replica
    /// has applied).
    pub fn read(&self, after: u64, through: u64) -> Changes {
        let state = self.state.lock().expect("change feed lock");
        let through = through.min(state.last);
        if after < state.floor {
            return Changes::Reset { through };
        }
        let start = state.entries.partition_point(|(index, _)| *index <= after);
        let mut keys = Vec::new();
        let mut reached = after;
        for (index, key) in state.entries.range(start..) {
            if *index > through {
                break;
            }
            if *index != reached && keys.len() >= MAX_KEYS_PER_REPLY {
                // Whole entries only: this one waits for the next poll.
                return Changes::Keys {
                    keys,
                    through: reached,
                };
            }
            keys.push(key.clone());
            reached = *index;
        }
        Changes::Keys {
            keys,
            through: through.max(after),
        }
    }
}

/// Whether an applied `InstallShards` or `ShardChunk` installed a shard.
fn installs(output: &GroupOutput) -> bool {
    match output {
        GroupOutput::Installed { shards } => !shards.is_empty(),
        GroupOutput::Chunk(outcome) => *outcome == ChunkOutcome::Installed,
        _ => false,
    }
}

impl FeedState {
    /// Nothing is known about changes through `index`.
    fn gap(&mut self, index: u64) {
        self.entries.clear();
        self.key_bytes = 0;
        self.floor = self.floor.max(index);
        self.last = self.last.max(index);
    }

    fn record(&mut self, index: u64, key: &[u8]) {
        self.entries.push_back((index, key.to_vec()));
        self.key_bytes += key.len();
        while self.entries.len() > MAX_FEED_KEYS || self.key_bytes > MAX_FEED_KEY_BYTES {
            let Some((dropped, key)) = self.entries.pop_front() else {
                break;
            };
            self.key_bytes -= key.len();
            // Keys of `dropped` may remain; the floor is what is whole.
            self.floor = self.floor.max(dropped);
        }
        // The rest of a partly dropped entry is not whole: drop it too.
        while self
            .entries
            .front()
            .is_some_and(|(index, _)| *index <= self.floor)
        {
            let Some((_, key)) = self.entries.pop_front() else {
                break;
            };
            self.key_bytes -= key.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use api::{MachineConfig, Outcome};

    use super::*;

    fn machine() -> ShardMachine {
        let mut machine = ShardMachine::new(1, 4, MachineConfig::default());
        let capacity_bytes = machine.store_capacity_bytes();
        machine.apply(&GroupCommand::SetStoreCapacity { capacity_bytes }, 0);
        machine
    }

    fn client(op: Op) -> GroupCommand {
        GroupCommand::Client {
            client_id: 1,
            seq: 1,
            op,
        }
    }

    fn delete(key: &str) -> GroupCommand {
        client(Op::Delete {
            key: key.as_bytes().to_vec(),
        })
    }

    fn ok() -> GroupOutput {
        GroupOutput::Client(Ok(Outcome::Applied(true)))
    }

    fn apply(feed: &ChangeFeed, index: u64, command: &GroupCommand, output: &GroupOutput) {
        feed.on_applied(Applied::Command {
            index,
            command,
            output,
            machine: &machine(),
        });
    }

    fn keys(names: &[&str]) -> Vec<Vec<u8>> {
        names.iter().map(|name| name.as_bytes().to_vec()).collect()
    }

    #[test]
    fn a_feed_never_polled_keeps_nothing_and_answers_reset() {
        let feed = ChangeFeed::default();
        apply(&feed, 1, &delete("a"), &ok());
        apply(&feed, 2, &delete("b"), &ok());
        assert_eq!(feed.read(0, 2), Changes::Reset { through: 2 });
        assert_eq!(
            feed.read(2, 2),
            Changes::Keys {
                keys: Vec::new(),
                through: 2
            }
        );
        assert!(feed.has_news(1));
        assert!(!feed.has_news(2));
    }

    #[test]
    fn an_armed_feed_answers_the_keys_written_after_the_cursor() {
        let feed = ChangeFeed::default();
        apply(&feed, 1, &delete("before"), &ok());
        feed.arm();
        apply(&feed, 2, &delete("a"), &ok());
        let read = client(Op::Get { key: b"r".to_vec() });
        apply(
            &feed,
            3,
            &read,
            &GroupOutput::Client(Ok(Outcome::Value(None))),
        );
        let refused = GroupOutput::Client(Err(api::Error::NotAnInteger));
        apply(&feed, 4, &delete("refused"), &refused);
        apply(&feed, 5, &delete("b"), &ok());
        assert_eq!(feed.read(0, 5), Changes::Reset { through: 5 });
        assert_eq!(
            feed.read(1, 5),
            Changes::Keys {
                keys: keys(&["a", "b"]),
                through: 5
            }
        );
        assert_eq!(
            feed.read(2, 5),
            Changes::Keys {
                keys: keys(&["b"]),
                through: 5
            }
        );
        // Not past what the caller has read through.
        assert_eq!(
            feed.read(1, 3),
            Changes::Keys {
                keys: keys(&["a"]),
                through: 3
            }
        );
        assert!(feed.has_news(4));
        assert!(!feed.has_news(5));
    }

    #[test]
    fn a_flushed_shard_a_lost_group_and_a_snapshot_are_gaps() {
        let feed = ChangeFeed::default();
        feed.arm();
        apply(&feed, 1, &delete("a"), &ok());
        apply(&feed, 2, &client(Op::FlushShard { shard: 0 }), &ok());
        assert_eq!(feed.read(1, 2), Changes::Reset { through: 2 });
        apply(&feed, 3, &delete("b"), &ok());
        assert_eq!(
            feed.read(2, 3),
            Changes::Keys {
                keys: keys(&["b"]),
                through: 3
            }
        );
        let lost = GroupCommand::GroupsLost {
            lost: Default::default(),
        };
        let output = GroupOutput::Reconfigured { applied: true };
        apply(&feed, 4, &lost, &output);
        assert_eq!(feed.read(3, 4), Changes::Reset { through: 4 });
        let restored = machine();
        feed.on_applied(Applied::Restored {
            index: 10,
            machine: &restored,
        });
        assert_eq!(feed.read(4, 10), Changes::Reset { through: 10 });
        assert_eq!(
            feed.read(10, 10),
            Changes::Keys {
                keys: Vec::new(),
                through: 10
            }
        );
    }

    #[test]
    fn a_shard_installed_here_is_a_gap_and_a_piece_or_a_duplicate_is_not() {
        let feed = ChangeFeed::default();
        feed.arm();
        apply(&feed, 1, &delete("a"), &ok());
        let chunk = GroupCommand::ShardChunk {
            config_num: 2,
            chunk: crate::rpc::ShardChunk {
                shard: 3,
                total_bytes: 8,
                total_crc32: 0,
                offset: 0,
                data: Vec::new(),
                data_crc32: 0,
            },
        };
        let stored = GroupOutput::Chunk(ChunkOutcome::Stored { received_bytes: 4 });
        apply(&feed, 2, &chunk, &stored);
        let install = GroupCommand::InstallShards {
            config_num: 2,
            transfers: Vec::new(),
        };
        let duplicate = GroupOutput::Installed { shards: Vec::new() };
        apply(&feed, 3, &install, &duplicate);
        assert_eq!(
            feed.read(0, 3),
            Changes::Keys {
                keys: keys(&["a"]),
                through: 3
            }
        );
        let installed = GroupOutput::Chunk(ChunkOutcome::Installed);
        apply(&feed, 4, &chunk, &installed);
        assert_eq!(feed.read(3, 4), Changes::Reset { through: 4 });
        apply(&feed, 5, &delete("b"), &ok());
        let installed = GroupOutput::Installed { shards: vec![1] };
        apply(&feed, 6, &install, &installed);
        assert_eq!(feed.read(5, 6), Changes::Reset { through: 6 });
        assert_eq!(
            feed.read(6, 6),
            Changes::Keys {
                keys: Vec::new(),
                through: 6
            }
        );
    }

    #[test]
    fn a_poller_too_far_behind_is_told_to_start_over() {
        let feed = ChangeFeed::default();
        feed.arm();
        let last = MAX_FEED_KEYS as u64 + 10;
        for index in 1..=last {
            apply(&feed, index, &delete(&format!("k{index}")), &ok());
        }
        assert_eq!(feed.read(1, last), Changes::Reset { through: last });
        // The newest are all there, and no more keys than the bound.
        let Changes::Keys { keys, through } = feed.read(last - 3, last) else {
            panic!("a recent cursor is covered");
        };
        assert_eq!(keys.len(), 3);
        assert_eq!(through, last);
        assert!(feed.state.lock().expect("lock").entries.len() <= MAX_FEED_KEYS);
    }

    #[test]
    fn a_reply_is_bounded_and_ends_on_a_whole_entry() {
        let feed = ChangeFeed::default();
        feed.arm();
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..MAX_KEYS_PER_REPLY - 1)
            .map(|n| (format!("m{n}").into_bytes(), Vec::new()))
            .collect();
        apply(
            &feed,
            1,
            &client(Op::MultiSet {
                pairs,
                only_if_none_exist: false,
            }),
            &ok(),
        );
        apply(&feed, 2, &delete("x"), &ok());
        apply(&feed, 3, &delete("y"), &ok());
        let Changes::Keys {
            keys: first,
            through,
        } = feed.read(0, 3)
        else {
            panic!("covered from index 0");
        };
        // Entry 1 (4095 keys) and entry 2 fill the reply; 3 waits.
        assert_eq!(first.len(), MAX_KEYS_PER_REPLY);
        assert_eq!(through, 2);
        assert_eq!(
            feed.read(2, 3),
            Changes::Keys {
                keys: keys(&["y"]),
                through: 3
            }
        );
    }
}
