//! The leader's background work: follow the controller, pull shards,
//! confirm receipt. Each task is a loop with a sleep per round and stops
//! once Raft is killed; each round does a bounded amount of work (one
//! query, or one call per server of each donor group).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use futures::future::join_all;
use shardctrler::{Config, Gid};

use super::{ConfigSource, ShardServer};
use crate::machine::{ChunkOutcome, GroupCommand, GroupOutput, ShardMachine};
use crate::rpc::{DeleteShards, MigrationError, PullChunk, ShardChunk};
use crate::shard_key::ShardId;

/// Pieces one shard's pull moves per round at most (a round then ends and
/// the next one resumes where the group's state says).
const MAX_PIECES_PER_ROUND: usize = 4096;

impl ShardServer {
    /// Asks for configuration `num + 1` whenever no migration is pending,
    /// and proposes it. Configurations are thus applied one at a time, in
    /// order, each only after the previous one's migration finished (the
    /// one exception: a group holding no shard may jump to the oldest
    /// configuration the controller still keeps, see
    /// [`GroupCommand::Reconfigure`]). Once per number it
    /// reaches with its migration done, it reports it to the controller.
    ///
    /// While a migration is blocked it says so (a WARN line at a bounded
    /// rate once a pull waited `pull_wait_warn_after`), and every
    /// `lost_check_rounds` rounds (and on its first round as leader) it
    /// reads the latest configuration: if a group it waits on, or this
    /// group itself, was declared lost, it proposes
    /// [`GroupCommand::GroupsLost`], which ends the wait (or, for this
    /// group, its serving: a lost group's replicas started again stop
    /// within a round of electing a leader).
    pub(super) async fn run_config_poller<C: ConfigSource>(self, controller: C) {
        let mut reported = None;
        let mut last_warning: Option<tokio::time::Instant> = None;
        let mut round: u64 = 0;
        let mut led_last_round = false;
        while !self.is_killed() {
            tokio::time::sleep(self.config.poll_interval).await;
            round += 1;
            // Every replica keeps its estimate of the log time current, so
            // that its status can say how long a pull has waited.
            let waiting = self.waiting();
            let newly_leading = !led_last_round;
            led_last_round = self.is_leader();
            if !led_last_round {
                continue;
            }
            let lost_check = newly_leading
                || round.is_multiple_of(u64::from(self.config.lost_check_rounds.max(1)));
            if lost_check {
                self.learn_lost_groups(&controller).await;
            }
            let (ready, num) = self
                .rsm
                .with_machine(|machine| (machine.migration_done(), machine.config().num));
            if !ready {
                self.warn_of_long_pulls(&waiting, &mut last_warning);
                continue;
            }
            if reported != Some(num) && num > 0 {
                controller.report(self.config.gid, num).await;
                reported = Some(num);
            }
            if let Some(next) = controller.query(Some(num + 1)).await
                && next.num > num
            {
                self.propose(GroupCommand::Reconfigure(next)).await;
            }
        }
    }

    /// Reads the latest configuration and, if a group this group waits on
    /// (or this group itself) was declared lost, proposes
    /// [`GroupCommand::GroupsLost`] with those groups. The controller's
    /// configuration is the evidence: the machine takes the list as given.
    async fn learn_lost_groups<C: ConfigSource>(&self, controller: &C) {
        let gid = self.config.gid;
        let (mut asked, known_self) = self
            .rsm
            .with_machine(|machine| (machine.peers_waited_on(), machine.is_declared_lost()));
        if !known_self {
            asked.push(gid);
        }
        if asked.is_empty() {
            return;
        }
        let Some(latest) = controller.query(None).await else {
            return;
        };
        let lost: BTreeMap<Gid, u64> = asked
            .iter()
            .filter_map(|asked| latest.lost_groups.get_key_value(asked))
            .map(|(&gid, &at)| (gid, at))
            .collect();
        if lost.is_empty() {
            return;
        }
        tracing::warn!(
            gid,
            lost = ?lost,
            config_num = latest.num,
            "the controller declared groups this group waits on lost: giving up their data"
        );
        self.propose(GroupCommand::GroupsLost { lost }).await;
    }

    /// A WARN line naming each shard that has waited at least
    /// `pull_wait_warn_after`, at most once per that interval.
    fn warn_of_long_pulls(
        &self,
        waiting: &[super::ShardWait],
        last_warning: &mut Option<tokio::time::Instant>,
    ) {
        let now = labrpc::runtime::now();
        let long = pulls_to_warn_of(waiting, self.config.pull_wait_warn_after, last_warning, now);
        for wait in long {
            tracing::warn!(
                gid = self.config.gid,
                shard = wait.shard,
                waiting_on_group = wait.waiting_on_group,
                waiting_since_config = wait.waiting_since_config,
                waiting_for_ms = wait.waiting_for_ms,
                "a shard has waited long for its donor group; if that group is gone for good, \
                 an operator may declare it lost (distcache admin declare-lost), giving up its data"
            );
        }
    }

    /// Pulls every shard still awaited, from each donor in parallel (a dead
    /// donor does not delay the others), piece by piece: each piece is
    /// asked for only once the previous one applied here (the receiver's
    /// log sets the pace), from where the group's state says the transfer
    /// stands, so a retry, a lost reply or a new leader resumes it.
    pub(super) async fn run_puller(self) {
        while !self.is_killed() {
            tokio::time::sleep(self.config.migration_interval).await;
            // No piece goes in before the group's store size (its bound
            // is twice that size): the capacity keeper writes it first.
            if !self.is_leader() || !self.rsm.with_machine(ShardMachine::capacity_logged) {
                continue;
            }
            let (config_num, wanted) = self.rsm.with_machine(|machine| {
                let donors = donor_servers(machine.pulls_wanted(), machine.previous_config());
                (machine.config().num, donors)
            });
            let pulls = wanted.into_iter().map(|(donor, (shards, servers))| {
                let server = self.clone();
                async move {
                    for shard in shards {
                        server.pull_shard(donor, &servers, config_num, shard).await;
                    }
                }
            });
            join_all(pulls).await;
        }
    }

    /// Moves one shard's pieces from `donor` into this group's log until it
    /// is installed or a step fails (the next round resumes). At most
    /// `MAX_PIECES_PER_ROUND` pieces per round, so a round ends.
    async fn pull_shard(
        &self,
        donor: Gid,
        servers: &[SocketAddr],
        config_num: u64,
        shard: ShardId,
    ) {
        // The server that answered last is asked first: every replica's
        // encoding is the same, but one source keeps a transfer simple.
        let mut first_server = 0;
        for _ in 0..MAX_PIECES_PER_ROUND {
            if self.is_killed() || !self.is_leader() {
                return;
            }
            let Some(offset) = self
                .rsm
                .with_machine(|machine| machine.pull_progress(shard))
            else {
                return;
            };
            let request = PullChunk {
                config_num,
                shard,
                offset,
                max_bytes: self.config.transfer_chunk_bytes,
                from_gid: self.config.gid,
            };
            let Some((answered, chunk)) = self
                .pull_chunk_from(donor, servers, first_server, &request)
                .await
            else {
                return;
            };
            first_server = answered;
            let piece_bytes = chunk.data.len() as u64;
            let proposed = self
                .propose(GroupCommand::ShardChunk { config_num, chunk })
                .await;
            if let Some(GroupOutput::Chunk(ChunkOutcome::Stored { .. } | ChunkOutcome::Installed)) =
                &proposed
            {
                self.migration_bytes_received
                    .fetch_add(piece_bytes, Ordering::Relaxed);
            }
            match proposed {
                Some(GroupOutput::Chunk(
                    ChunkOutcome::Stored { .. } | ChunkOutcome::Refused { .. },
                )) => {}
                Some(GroupOutput::Chunk(ChunkOutcome::Installed)) => {
                    tracing::debug!(gid = self.config.gid, donor, shard, "shard installed");
                    return;
                }
                _ => return,
            }
        }
    }

    /// One call per donor server, starting at `first`, until one answers
    /// with a piece; returns which server answered and the piece.
    async fn pull_chunk_from(
        &self,
        donor: Gid,
        servers: &[SocketAddr],
        first: usize,
        request: &PullChunk,
    ) -> Option<(usize, ShardChunk)> {
        for step in 0..servers.len() {
            let index = (first + step) % servers.len();
            match self.peers.call(servers[index], request).await {
                Ok(Ok(chunk)) => return Some((index, chunk)),
                Ok(Err(error)) => {
                    tracing::debug!(gid = self.config.gid, donor, "pull refused: {error}");
                }
                Err(error) => tracing::debug!(gid = self.config.gid, donor, "pull failed: {error}"),
            }
        }
        None
    }

    /// Tells each donor of a received shard to delete its copy, then
    /// records that nothing is pending for the shard.
    pub(super) async fn run_confirmer(self) {
        while !self.is_killed() {
            tokio::time::sleep(self.config.migration_interval).await;
            if !self.is_leader() {
                continue;
            }
            let (config_num, wanted) = self.rsm.with_machine(|machine| {
                let donors =
                    donor_servers(machine.confirmations_wanted(), machine.previous_config());
                (machine.config().num, donors)
            });
            let confirmations = wanted.into_iter().map(|(donor, (shards, servers))| {
                let server = self.clone();
                async move {
                    let request = DeleteShards {
                        config_num,
                        shards: shards.clone(),
                        from_gid: server.config.gid,
                    };
                    if server.delete_at(donor, &servers, &request).await {
                        server
                            .propose(GroupCommand::ShardsConfirmed { config_num, shards })
                            .await;
                    }
                }
            });
            join_all(confirmations).await;
        }
    }

    /// One call per donor server, in order, until one confirms deletion.
    async fn delete_at(&self, donor: Gid, servers: &[SocketAddr], request: &DeleteShards) -> bool {
        for &addr in servers {
            match self.peers.call(addr, request).await {
                // Moved on: it deleted them before advancing.
                Ok(Ok(()) | Err(MigrationError::MovedOn { .. })) => return true,
                Ok(Err(error)) => {
                    tracing::debug!(gid = self.config.gid, donor, "delete refused: {error}");
                }
                Err(error) => {
                    tracing::debug!(gid = self.config.gid, donor, "delete failed: {error}")
                }
            }
        }
        false
    }
}

/// Each donor's shards and servers, as the previous configuration lists
/// them (a member, or a group holding parked shards; a donor listed in
/// neither has no servers: nothing to call).
fn donor_servers(
    wanted: BTreeMap<Gid, Vec<ShardId>>,
    previous: &Config,
) -> BTreeMap<Gid, (Vec<ShardId>, Vec<SocketAddr>)> {
    wanted
        .into_iter()
        .map(|(donor, shards)| {
            let servers = previous.servers_of(donor).to_vec();
            (donor, (shards, servers))
        })
        .collect()
}

/// The waits worth a WARN line now: those of at least `threshold`, if
/// none was logged within the last `threshold` (then `last_warning`
/// becomes `now`). Pure, so the rate bound is tested without a server.
fn pulls_to_warn_of<'a>(
    waiting: &'a [super::ShardWait],
    threshold: std::time::Duration,
    last_warning: &mut Option<tokio::time::Instant>,
    now: tokio::time::Instant,
) -> Vec<&'a super::ShardWait> {
    let threshold_ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX);
    let long: Vec<_> = waiting
        .iter()
        .filter(|wait| wait.waiting_for_ms >= threshold_ms)
        .collect();
    if long.is_empty()
        || last_warning.is_some_and(|at| now.saturating_duration_since(at) < threshold)
    {
        return Vec::new();
    }
    *last_warning = Some(now);
    long
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::server::ShardWait;

    fn wait(shard: usize, waiting_for_ms: u64) -> ShardWait {
        ShardWait {
            shard,
            waiting_on_group: 7,
            waiting_since_config: 3,
            waiting_for_ms,
        }
    }

    #[test]
    fn long_pulls_are_warned_of_at_most_once_per_threshold() {
        let threshold = Duration::from_secs(30);
        let start = labrpc::runtime::now();
        let mut last = None;
        let short = [wait(1, 29_999)];
        assert!(pulls_to_warn_of(&short, threshold, &mut last, start).is_empty());
        assert_eq!(last, None, "nothing logged, nothing remembered");

        let waits = [wait(1, 30_000), wait(2, 500)];
        let warned = pulls_to_warn_of(&waits, threshold, &mut last, start);
        assert_eq!(warned, vec![&waits[0]], "only the long one");
        let soon = start + Duration::from_secs(29);
        assert!(
            pulls_to_warn_of(&waits, threshold, &mut last, soon).is_empty(),
            "not again within the interval"
        );
        let later = start + Duration::from_secs(30);
        assert_eq!(
            pulls_to_warn_of(&waits, threshold, &mut last, later).len(),
            1,
            "again once the interval passed"
        );
        assert_eq!(last, Some(later));
    }
}
