//! The leader's background work: follow the controller, pull shards,
//! confirm receipt. Each task is a loop with a sleep per round and stops
//! once Raft is killed; each round does a bounded amount of work (one
//! query, or one call per server of each donor group).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use futures::future::join_all;
use shardctrler::{Config, Gid};

use super::{ConfigSource, ShardServer};
use crate::machine::GroupCommand;
use crate::rpc::{DeleteShards, MigrationError, PullShards, ShardTransfer};
use crate::shard_key::ShardId;

impl ShardServer {
    /// Asks for configuration `num + 1` whenever no migration is pending,
    /// and proposes it. Configurations are thus applied one at a time, in
    /// order, each only after the previous one's migration finished.
    pub(super) async fn run_config_poller<C: ConfigSource>(self, controller: C) {
        while !self.is_killed() {
            tokio::time::sleep(self.config.poll_interval).await;
            if !self.is_leader() {
                continue;
            }
            let (ready, num) = self
                .rsm
                .with_machine(|machine| (machine.migration_done(), machine.config().num));
            if !ready {
                continue;
            }
            if let Some(next) = controller.query(Some(num + 1)).await
                && next.num == num + 1
            {
                self.propose(GroupCommand::Reconfigure(next)).await;
            }
        }
    }

    /// Pulls every shard still awaited, from each donor in parallel (a dead
    /// donor does not delay the others), and proposes the data.
    pub(super) async fn run_puller(self) {
        while !self.is_killed() {
            tokio::time::sleep(self.config.migration_interval).await;
            if !self.is_leader() {
                continue;
            }
            let (config_num, wanted) = self.rsm.with_machine(|machine| {
                let donors = donor_servers(machine.pulls_wanted(), machine.previous_config());
                (machine.config().num, donors)
            });
            let pulls = wanted.into_iter().map(|(donor, (shards, servers))| {
                let server = self.clone();
                async move {
                    let request = PullShards {
                        config_num,
                        shards,
                        from_gid: server.config.gid,
                    };
                    if let Some(transfers) = server.pull_from(donor, &servers, &request).await {
                        server
                            .propose(GroupCommand::InstallShards {
                                config_num,
                                transfers,
                            })
                            .await;
                    }
                }
            });
            join_all(pulls).await;
        }
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

    /// One call per donor server, in order, until one hands the shards over.
    async fn pull_from(
        &self,
        donor: Gid,
        servers: &[SocketAddr],
        request: &PullShards,
    ) -> Option<Vec<ShardTransfer>> {
        for &addr in servers {
            match self.peers.call(addr, request).await {
                Ok(Ok(transfers)) => return Some(transfers),
                Ok(Err(error)) => {
                    tracing::debug!(gid = self.config.gid, donor, "pull refused: {error}");
                }
                Err(error) => tracing::debug!(gid = self.config.gid, donor, "pull failed: {error}"),
            }
        }
        None
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
