//! The clerk: routes each key to the group serving its shard, by the
//! configuration it last read from the controller.
//!
//! ```text
//!  op(key) ─► shard = key_to_shard(key) ─► gid = config.shards[shard]
//!     ▲                                       │ GroupClient of gid (leader finding,
//!     │                                       │ retries, a short per-group deadline)
//!     │  WrongGroup, or the group gave no     ▼
//!     └─ answer in time: re-read the latest ◄─ reply
//!        configuration, back off, retry with the same (client_id, seq)
//! ```
//!
//! One clerk is one exactly-once session; its operations run one at a time.
//! The same `(client_id, seq)` is sent to every group tried, and the
//! shard's exactly-once records move with the shard, so a write applied by
//! the old owner is answered from its record by the new one.

use std::sync::Mutex;
use std::time::Duration;

use api::{Error, KvClient, Op, Outcome};
use rsm::group_client::{
    self, ClientSession, GroupCallError, GroupClient, GroupClientConfig, GroupClients,
};
use shardctrler::{Config, Gid};

use crate::rpc::ShardKvRequest;
use crate::server::ConfigSource;
use crate::shard_key::op_shard;

/// How a clerk retries.
#[derive(Clone, Debug)]
pub struct ClerkConfig {
    /// Deadline of one call to one server.
    pub rpc_timeout: Duration,
    /// How long to keep trying one group before re-reading the
    /// configuration.
    pub group_deadline: Duration,
    /// Pause before re-reading the configuration.
    pub config_backoff: Duration,
    /// Give up (with [`Error::Timeout`]) after this long.
    pub operation_deadline: Duration,
}

impl Default for ClerkConfig {
    fn default() -> ClerkConfig {
        ClerkConfig {
            rpc_timeout: Duration::from_millis(500),
            group_deadline: Duration::from_millis(1500),
            config_backoff: Duration::from_millis(100),
            operation_deadline: Duration::from_secs(30),
        }
    }
}

/// A client of the sharded service. See the module docs.
pub struct Clerk<C: ConfigSource> {
    controller: C,
    config: ClerkConfig,
    /// The latest configuration read.
    routing: Mutex<Config>,
    /// One leader-finding client per group (and its server list).
    groups: GroupClients,
    session: tokio::sync::Mutex<ClientSession>,
}

impl<C: ConfigSource> Clerk<C> {
    /// A clerk with a new session. It reads a configuration on first use.
    pub fn new(controller: C, shard_count: usize, config: ClerkConfig) -> Clerk<C> {
        let groups = GroupClients::new(GroupClientConfig {
            rpc_timeout: config.rpc_timeout,
            operation_deadline: config.group_deadline,
            ..GroupClientConfig::default()
        });
        Clerk {
            controller,
            config,
            routing: Mutex::new(Config::initial(shard_count)),
            groups,
            session: tokio::sync::Mutex::new(ClientSession::new()),
        }
    }

    pub async fn client_id(&self) -> u64 {
        self.session.lock().await.client_id()
    }

    /// The group client for `gid` at the servers `config` lists for it.
    fn group(&self, config: &Config, gid: Gid) -> Option<GroupClient> {
        self.groups.get(gid, config.groups.get(&gid)?)
    }

    async fn refresh(&self) {
        if let Some(latest) = self.controller.query(None).await {
            let mut routing = self.routing.lock().expect("clerk routing lock");
            if latest.num > routing.num {
                *routing = latest;
            }
        }
    }
}

impl<C: ConfigSource> KvClient for Clerk<C> {
    /// Sends `op` to the group serving its key until one applies it or the
    /// deadline passes.
    async fn run(&self, op: Op) -> Result<Outcome, Error> {
        let mut session = self.session.lock().await;
        let request_template = (session.client_id(), session.take_seq());
        let deadline = labrpc::runtime::now() + self.config.operation_deadline;
        let mut attempts = 0u64;
        loop {
            if labrpc::runtime::now() >= deadline {
                return Err(Error::Timeout {
                    deadline_ms: u64::try_from(self.config.operation_deadline.as_millis())
                        .unwrap_or(u64::MAX),
                    attempts,
                });
            }
            attempts += 1;
            if self.routing.lock().expect("clerk routing lock").num == 0 {
                // Nothing is assigned in configuration 0: read a real one.
                self.refresh().await;
            }
            let config = self.routing.lock().expect("clerk routing lock").clone();
            let shard = op_shard(&op, config.shard_count());
            let Some(gid) = config.owner(shard) else {
                // A whole-shard operation naming a shard the service does
                // not have: no group will ever serve it.
                return Err(Error::WrongGroup {
                    shard: shard as u64,
                    config_num: config.num,
                });
            };
            if let Some(group) = self.group(&config, gid) {
                let request = ShardKvRequest {
                    client_id: request_template.0,
                    seq: request_template.1,
                    config_num: config.num,
                    op: op.clone(),
                };
                match group.call(&request, group_client::classify).await {
                    Ok(outcome) => return Ok(outcome),
                    // Wrong group, or no answer from this group in time.
                    Err(
                        GroupCallError::Failed(Error::WrongGroup { .. })
                        | GroupCallError::Timeout { .. },
                    ) => {}
                    Err(GroupCallError::Failed(error)) => return Err(error),
                }
            }
            tokio::time::sleep(self.config.config_backoff).await;
            self.refresh().await;
        }
    }
}
