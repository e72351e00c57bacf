//! A controller replica: the [`ControllerMachine`] run by a
//! [`rsm::Rsm`], and the labrpc handler clerks call.
//!
//! ```text
//!  ControllerRequest ─► handle() ─ shape ok? (gid 0, empty lists, shard range: local)
//!                     │
//!                     ├─ Query(n), n applied here ─► answer locally (immutable)
//!                     ├─ Query(n), n dropped      ─► Pruned (any replica)
//!                     ├─ Query(latest or future)  ─► rsm.read (ReadIndex; or the log)
//!                     ├─ QueryApplied(any)        ─► leader answers locally (no log)
//!                     ├─ change already recorded  ─► the recorded answer
//!                     ├─ Report already recorded  ─► answer (no log)
//!                     └─ Join / Leave / Move / Report ─► rsm.submit ─► log ─►
//!                                                     apply on every replica
//! ```
//!
//! A configuration, once some replica has applied it, is committed and
//! never changes, so a query of an existing number may be answered by any
//! replica, leader or not, without a log entry: the answer is the only
//! value that number can ever have. The latest configuration, and "does
//! number n exist yet", depend on what the leader has committed: those are
//! ReadIndex reads (no log entry; [`QueryPath::Log`] puts them in the log
//! instead). A number older than the oldest kept is refused
//! ([`crate::ConfigError::Pruned`]) by any replica; a report a replica has
//! already recorded is answered without a log entry.
//!
//! Clerks know the controller's replicas from a list made when they
//! started. A leader hint is a Raft id that clerks use as an index into
//! that list, which a replica that joined the group later (Raft id at or
//! above [`ControllerServerConfig::pass_on_from`]) is not in. So a replica
//! that does not lead, and knows that such a replica does, passes the
//! request on to it ([`ForwardedRequest`], one hop, the same exactly-once
//! identity) and returns its answer; if that call fails, the clerk gets
//! the `WrongLeader` answer it would have got.

mod machine;

use std::net::SocketAddr;

use raft::node::RaftNode;
use raft::storage::Storage;
use rsm::session::SessionLimits;
use rsm::{Rsm, RsmConfig, RsmStatus, SubmitError};

use crate::config::Config;
use crate::history::{ConfigAnswer, ConfigError, ConfigOp, Limits};
use crate::rpc::{ControllerRequest, ForwardedRequest, Reply, ServerError};
pub use machine::ControllerMachine;

/// How a replica answers a query of the latest (or a not yet known)
/// configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueryPath {
    /// The leader confirms its lead with a heartbeat round and answers
    /// once it has applied everything committed before: no log entry, so
    /// a query of a number that does not exist yet costs the log nothing.
    /// The default.
    #[default]
    ReadIndex,
    /// Every such query is a log entry (6.5840's way).
    Log,
}

/// Settings of one controller replica.
#[derive(Clone, Debug)]
pub struct ControllerServerConfig {
    /// The replica as the rsm runs it: its Raft id (`replica.id`, its
    /// index in `replica.peer_addrs`), the group's labrpc addresses, the
    /// snapshot threshold (`max_raft_state`, default
    /// `rsm::DEFAULT_MAX_RAFT_STATE_BYTES`), how long a request waits to be
    /// applied (`apply_wait`), Raft's seed, the message limit and the
    /// storage-failure hook.
    pub replica: RsmConfig,
    /// Shards of the service; the same on every replica (10 in the lab).
    pub shard_count: usize,
    /// Groups per configuration, servers per group.
    pub max_groups: usize,
    pub max_servers_per_group: usize,
    /// Configurations kept at most, whatever groups report (K, at least 2;
    /// see [`crate::history`]). The same on every replica.
    pub max_retained_configs: usize,
    /// The exactly-once table's bounds.
    pub sessions: SessionLimits,
    pub queries: QueryPath,
    /// Leaders with a Raft id at or above this joined the group after the
    /// clerks' server lists were made: a replica that does not lead passes
    /// requests on to such a leader (see the module docs). None (the
    /// default): the group's membership never changes, nothing is passed
    /// on.
    pub pass_on_from: Option<u64>,
}

impl Default for ControllerServerConfig {
    /// Replica 0 of no peers (fill in `id` and `peer_addrs`), 10 shards,
    /// snapshots at `rsm::DEFAULT_MAX_RAFT_STATE_BYTES`, at most 1024
    /// groups of 64 servers.
    fn default() -> ControllerServerConfig {
        let limits = Limits::new(10);
        ControllerServerConfig {
            replica: RsmConfig::new(0, Vec::new(), 0),
            shard_count: limits.shard_count,
            max_groups: limits.max_groups,
            max_servers_per_group: limits.max_servers_per_group,
            max_retained_configs: limits.max_retained_configs,
            sessions: SessionLimits::default(),
            queries: QueryPath::default(),
            pass_on_from: None,
        }
    }
}

impl ControllerServerConfig {
    pub fn new(
        id: usize,
        peer_addrs: Vec<SocketAddr>,
        shard_count: usize,
        raft_seed: u64,
    ) -> ControllerServerConfig {
        ControllerServerConfig {
            replica: RsmConfig::new(id, peer_addrs, raft_seed),
            shard_count,
            ..ControllerServerConfig::default()
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            shard_count: self.shard_count,
            max_groups: self.max_groups,
            max_servers_per_group: self.max_servers_per_group,
            max_retained_configs: self.max_retained_configs,
        }
    }
}

/// Counters a test or an operator reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerStatus {
    /// The latest configuration number this replica has applied.
    pub latest_config: u64,
    pub sessions: usize,
    pub rsm: RsmStatus,
}

/// One running controller replica. Cheap to clone.
#[derive(Clone)]
pub struct ControllerServer {
    rsm: Rsm<ControllerMachine>,
    queries: QueryPath,
    listener: labrpc::SharedServer,
    /// How requests reach a leader that joined the group (see the module
    /// docs); None: the group's membership never changes.
    forwarding: Option<Forwarding>,
}

/// Passing requests on to a leader clerks cannot name.
#[derive(Clone)]
struct Forwarding {
    /// [`ControllerServerConfig::pass_on_from`].
    pass_on_from: u64,
    client: labrpc::Client,
    /// How long the leader may take to answer: the time this replica
    /// would give the request itself.
    timeout: std::time::Duration,
}

impl ControllerServer {
    /// Starts Raft on `storage` (restoring its snapshot), the apply task,
    /// and one labrpc server on `peer_addrs[me]` carrying both Raft's and
    /// the controller's methods.
    pub async fn start<S: Storage + 'static>(
        config: ControllerServerConfig,
        storage: S,
    ) -> Result<ControllerServer, StartError> {
        if config.replica.id >= config.replica.peer_addrs.len() {
            return Err(StartError::BadConfig {
                detail: format!(
                    "id = {} but {} peer addresses",
                    config.replica.id,
                    config.replica.peer_addrs.len()
                ),
            });
        }
        if config.shard_count == 0 {
            return Err(StartError::BadConfig {
                detail: "shard_count is 0".into(),
            });
        }
        if config.max_retained_configs < 2 {
            return Err(StartError::BadConfig {
                detail: format!(
                    "max_retained_configs = {}, at least 2 needed",
                    config.max_retained_configs
                ),
            });
        }
        let machine = ControllerMachine::new(config.limits(), config.sessions);
        let forwarding = config.pass_on_from.map(|pass_on_from| Forwarding {
            pass_on_from,
            client: labrpc::Client::new(labrpc::ClientConfig {
                max_message_bytes: config.replica.max_message_bytes,
                security: config.replica.peer_security.clone(),
                ..labrpc::ClientConfig::default()
            }),
            timeout: config.replica.apply_wait * 2,
        });
        let rsm = Rsm::start(config.replica, machine, storage).await?;
        let server = ControllerServer {
            rsm,
            queries: config.queries,
            listener: labrpc::SharedServer::default(),
            forwarding,
        };
        let handler_server = server.clone();
        let forwarded_server = server.clone();
        let add_service = |router: &mut labrpc::Router| {
            router.add::<ControllerRequest, _, _>(move |request: ControllerRequest| {
                let server = handler_server.clone();
                async move { server.handle(request).await }
            });
            router.add::<ForwardedRequest, _, _>(move |ForwardedRequest(request)| {
                let server = forwarded_server.clone();
                async move { server.handle_here(request).await }
            });
        };
        let listener = server.rsm.serve(add_service).await?;
        server.listener.set(listener);
        Ok(server)
    }

    pub fn raft(&self) -> &RaftNode {
        self.rsm.raft()
    }

    /// The replicated state machine this server runs.
    pub fn rsm(&self) -> &Rsm<ControllerMachine> {
        &self.rsm
    }

    pub fn status(&self) -> ControllerStatus {
        let rsm = self.rsm.status();
        let (latest_config, sessions) = self
            .rsm
            .with_machine(|machine| (machine.latest().num, machine.session_count()));
        ControllerStatus {
            latest_config,
            sessions,
            rsm,
        }
    }

    /// Every configuration this replica has applied and still keeps,
    /// oldest first (a local view, possibly behind the leader's; for tests
    /// and operators).
    pub fn local_configs(&self) -> Vec<Config> {
        self.rsm
            .with_machine(|machine| machine.history().retained().cloned().collect())
    }

    /// Stops Raft; requests that need the log answer `WrongLeader` from
    /// then on.
    pub fn kill(&self) {
        self.rsm.kill();
    }

    /// [`ControllerServer::kill`], then stops serving and waits until the port
    /// is released (so that the replica can start again in this process).
    pub async fn shutdown(&self) -> Result<(), String> {
        self.kill();
        self.listener.shutdown().await
    }

    /// Serves one clerk request (the labrpc handler): here, or passed on
    /// to a leader that joined the group (see the module docs).
    pub async fn handle(&self, request: ControllerRequest) -> Reply {
        let reply = self.handle_here(request.clone()).await;
        let Err(ServerError::Replica(SubmitError::WrongLeader {
            leader_hint: Some(leader),
        })) = &reply
        else {
            return reply;
        };
        let Some(forwarding) = &self.forwarding else {
            return reply;
        };
        if *leader < forwarding.pass_on_from || *leader == self.rsm.raft().id() {
            return reply;
        }
        let Some(addr) = self.rsm.raft().peer_addr(*leader) else {
            return reply;
        };
        match forwarding
            .client
            .call_with_timeout(addr, &ForwardedRequest(request), forwarding.timeout)
            .await
        {
            Ok(answer) => answer,
            Err(error) => {
                tracing::debug!(leader, %addr, %error, "passing a request on to the leader failed");
                reply
            }
        }
    }

    /// Serves one request at this replica, never passing it on: clerks'
    /// requests through [`ControllerServer::handle`], requests another
    /// replica passed on directly.
    pub async fn handle_here(&self, request: ControllerRequest) -> Reply {
        // Read before the machine's lock: QueryApplied's "not yet" and
        // "latest" are answered only by a replica that believes it leads.
        let leads = self.rsm.raft().state().1;
        let early = self.rsm.with_machine(|machine| {
            // Malformed requests change nothing and cost no log entry.
            if let Err(error) = request.op.check_shape(machine.history().limits()) {
                return Some(Err(ServerError::Refused(error)));
            }
            let history = machine.history();
            // Kept numbers are immutable and dropped ones never come back:
            // any replica may answer either.
            let known = |num: u64| {
                if let Some(config) = history.get(num) {
                    Some(Ok(ConfigAnswer::Config(config.clone())))
                } else if num < history.oldest() {
                    Some(Err(ServerError::Refused(ConfigError::Pruned {
                        num,
                        oldest: history.oldest(),
                    })))
                } else {
                    None
                }
            };
            match request.op {
                ConfigOp::Query { num: Some(num) } => known(num),
                ConfigOp::Query { num: None } => None,
                // Pollers: no log entry, whatever the answer (see the op).
                ConfigOp::QueryApplied { num } => {
                    if let Some(answer) = num.and_then(known) {
                        return Some(answer);
                    }
                    Some(if leads {
                        history
                            .query(num)
                            .map(ConfigAnswer::Config)
                            .map_err(ServerError::Refused)
                    } else {
                        Err(ServerError::Replica(SubmitError::WrongLeader {
                            leader_hint: self.rsm.raft().status().leader_id,
                        }))
                    })
                }
                // Already recorded (so committed): nothing to add to the log.
                ConfigOp::Report { gid, num }
                    if history.reported().get(&gid).is_some_and(|&at| at >= num) =>
                {
                    Some(Ok(ConfigAnswer::Reported {
                        oldest: history.oldest(),
                    }))
                }
                ConfigOp::Report { .. } => None,
                // A retry of a change that committed: its recorded answer.
                _ => machine.recorded_reply(request.client_id, request.seq),
            }
        });
        if let Some(reply) = early {
            return reply;
        }
        if let ConfigOp::Query { num } = request.op
            && self.queries == QueryPath::ReadIndex
        {
            return self
                .rsm
                .read_reply(|machine, _| {
                    machine
                        .history()
                        .query(num)
                        .map(ConfigAnswer::Config)
                        .map_err(ServerError::Refused)
                })
                .await;
        }
        self.rsm.submit_reply(request, std::convert::identity).await
    }
}

/// Why a replica did not start (one type for the three servers).
pub use rsm::StartError;
