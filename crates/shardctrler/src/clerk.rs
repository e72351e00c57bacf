//! The clerk: the controller's client library.
//!
//! A thin layer on the rsm's [`SessionClient`]: a group client (leader
//! finding, retries with backoff, an operation deadline) with one
//! exactly-once session. Changes (Join, Leave, Move) run one at a time per clerk, each
//! with the next seq, so a retry is recognised and applied once. Queries
//! carry no seq and may run concurrently with anything. [`Clone`] gives a
//! new session sharing the leader hint and the connections.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;

use rsm::group_client::{GroupCallError, GroupClientConfig, SessionClient, Verdict};

use crate::config::{Config, Gid};
use crate::history::{ConfigAnswer, ConfigError, ConfigOp};
use crate::rpc::{ControllerRequest, Reply, ServerError};

/// How a clerk retries (the group client's settings).
pub type ClerkConfig = GroupClientConfig;

/// What an operation can end in besides success.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    /// No replica answered before the deadline. A change may or may not
    /// have taken effect.
    #[error("no answer within {deadline_ms} ms after {attempts} attempts")]
    Timeout { deadline_ms: u64, attempts: u64 },
    /// The controller refused the request; nothing changed.
    #[error("refused: {0}")]
    Refused(ConfigError),
    /// The controller holds a newer change of this clerk's client id than
    /// the one sent: another clerk uses the same id.
    #[error("seq {seq} is older than this client id's latest change ({latest}): id shared")]
    SessionConflict { seq: u64, latest: u64 },
    /// A replica answered with a kind of answer this operation never gets
    /// (a bug, a replica of another version, or a forged reply). Nothing
    /// can be concluded from it: a change may or may not have taken effect.
    #[error("a {op} was answered {answer}")]
    UnexpectedAnswer { op: &'static str, answer: String },
}

fn unexpected(op: &'static str, answer: &ConfigAnswer) -> ClerkError {
    ClerkError::UnexpectedAnswer {
        op,
        answer: format!("{answer:?}"),
    }
}

/// A client of the controller group. See the module docs.
#[derive(Clone)]
pub struct Clerk {
    session: SessionClient,
}

impl Clerk {
    /// `servers` are the controller replicas in Raft id order (their
    /// `peer_addrs`), so that leader hints index them.
    ///
    /// # Panics
    /// If `servers` is empty.
    pub fn new(servers: Vec<SocketAddr>, config: ClerkConfig) -> Clerk {
        Clerk {
            session: SessionClient::new(servers, config),
        }
    }

    /// Like [`Clerk::new`], reusing `client`'s connections.
    pub fn with_client(
        servers: Vec<SocketAddr>,
        config: ClerkConfig,
        client: labrpc::Client,
    ) -> Clerk {
        Clerk {
            session: SessionClient::with_client(servers, config, client),
        }
    }

    /// This clerk's session id.
    pub async fn client_id(&self) -> u64 {
        self.session.client_id().await
    }
}

/// A client of the controller group: one required method,
/// [`ControllerClient::run`], and the typed operations over it (the
/// shape of `api::KvClient`). Implemented by [`Clerk`]; a test harness
/// wraps a clerk (to record what it did) by implementing `run` alone.
///
/// The implementer guarantees that `run` answers only final outcomes:
/// it retries the replicas' internal refusals until its deadline.
pub trait ControllerClient: Send + Sync {
    /// Runs one operation to its answer.
    fn run(&self, op: ConfigOp) -> impl Future<Output = Result<ConfigAnswer, ClerkError>> + Send;

    /// Configuration `num`, or the latest with `None` (the lab's -1).
    /// A number beyond the latest is refused with
    /// [`ConfigError::FutureConfig`], one no longer kept with
    /// [`ConfigError::Pruned`].
    fn query(&self, num: Option<u64>) -> impl Future<Output = Result<Config, ClerkError>> + Send {
        async move {
            match self.run(ConfigOp::Query { num }).await? {
                ConfigAnswer::Config(config) => Ok(config),
                other => Err(unexpected("Query", &other)),
            }
        }
    }

    /// Like [`ControllerClient::query`], answered from what the leader has
    /// applied, without a log entry ([`ConfigOp::QueryApplied`]): "not
    /// yet" and "the latest" may lag the committed state by a moment. For
    /// pollers and routing, which ask again.
    fn query_applied(
        &self,
        num: Option<u64>,
    ) -> impl Future<Output = Result<Config, ClerkError>> + Send {
        async move {
            match self.run(ConfigOp::QueryApplied { num }).await? {
                ConfigAnswer::Config(config) => Ok(config),
                other => Err(unexpected("QueryApplied", &other)),
            }
        }
    }

    /// Tells the controller that group `gid` has applied configuration
    /// `num` (see [`ConfigOp::Report`]); returns the oldest configuration
    /// still kept. Idempotent: a repeated or older report changes nothing
    /// and costs no log entry.
    fn report(&self, gid: Gid, num: u64) -> impl Future<Output = Result<u64, ClerkError>> + Send {
        async move {
            match self.run(ConfigOp::Report { gid, num }).await? {
                ConfigAnswer::Reported { oldest } => Ok(oldest),
                other => Err(unexpected("Report", &other)),
            }
        }
    }

    /// Adds groups (gid -> servers); returns the new configuration's number.
    fn join(
        &self,
        groups: BTreeMap<Gid, Vec<SocketAddr>>,
    ) -> impl Future<Output = Result<u64, ClerkError>> + Send {
        self.change(ConfigOp::Join { groups })
    }

    /// Removes groups; returns the new configuration's number.
    fn leave(&self, gids: Vec<Gid>) -> impl Future<Output = Result<u64, ClerkError>> + Send {
        self.change(ConfigOp::Leave { gids })
    }

    /// Gives `shard` to `gid`; returns the new configuration's number.
    fn move_shard(
        &self,
        shard: usize,
        gid: Gid,
    ) -> impl Future<Output = Result<u64, ClerkError>> + Send {
        self.change(ConfigOp::Move { shard, gid })
    }

    /// Declares group `gid` lost for good ([`ConfigOp::DeclareLost`]):
    /// its shards' data is given up, so groups waiting on it move on.
    /// Returns the configuration that records it (the latest, if it was
    /// already lost).
    fn declare_lost(&self, gid: Gid) -> impl Future<Output = Result<u64, ClerkError>> + Send {
        self.change(ConfigOp::DeclareLost { gid })
    }

    /// Lists `servers` for group `gid` from the next configuration on,
    /// moving no shard ([`ConfigOp::SetServers`]); the latest number if
    /// they are listed already.
    fn set_servers(
        &self,
        gid: Gid,
        servers: Vec<SocketAddr>,
    ) -> impl Future<Output = Result<u64, ClerkError>> + Send {
        self.change(ConfigOp::SetServers { gid, servers })
    }

    /// Moves up to `max_moves` shards off the busiest groups given each
    /// shard's recent load ([`ConfigOp::BalanceLoad`]); returns the new
    /// configuration's number, or the latest if nothing was worth moving.
    fn balance_load(
        &self,
        loads: Vec<u64>,
        max_moves: usize,
    ) -> impl Future<Output = Result<u64, ClerkError>> + Send {
        self.change(ConfigOp::BalanceLoad { loads, max_moves })
    }

    /// A change (Join, Leave, Move, DeclareLost, SetServers,
    /// BalanceLoad): the new configuration's number.
    fn change(&self, op: ConfigOp) -> impl Future<Output = Result<u64, ClerkError>> + Send {
        async move {
            let name = op.name();
            match self.run(op).await? {
                ConfigAnswer::Changed { num } => Ok(num),
                other => Err(unexpected(name, &other)),
            }
        }
    }
}

impl ControllerClient for Clerk {
    /// Changes (Join, Leave, Move, DeclareLost, SetServers, BalanceLoad)
    /// run in the session, one at a time, each with the next seq; queries
    /// and reports carry no seq and run outside it, concurrently with
    /// anything.
    async fn run(&self, op: ConfigOp) -> Result<ConfigAnswer, ClerkError> {
        let answer = match op {
            ConfigOp::Query { .. } | ConfigOp::QueryApplied { .. } | ConfigOp::Report { .. } => {
                let request = ControllerRequest {
                    client_id: 0,
                    seq: 0,
                    op,
                };
                self.session.group().call(&request, classify).await
            }
            ConfigOp::Join { .. }
            | ConfigOp::Leave { .. }
            | ConfigOp::Move { .. }
            | ConfigOp::DeclareLost { .. }
            | ConfigOp::SetServers { .. }
            | ConfigOp::BalanceLoad { .. } => {
                let request = |client_id, seq| ControllerRequest { client_id, seq, op };
                self.session.call(request, classify).await
            }
        };
        answer.map_err(clerk_error)
    }
}

fn clerk_error(error: GroupCallError<ClerkError>) -> ClerkError {
    match error {
        GroupCallError::Timeout {
            deadline_ms,
            attempts,
        } => ClerkError::Timeout {
            deadline_ms,
            attempts,
        },
        GroupCallError::Failed(error) => error,
    }
}

fn classify(reply: Reply) -> Verdict<ConfigAnswer, ClerkError> {
    match reply {
        Ok(answer) => Verdict::Done(answer),
        Err(ServerError::Refused(error)) => Verdict::Fail(ClerkError::Refused(error)),
        Err(ServerError::Stale { seq, latest }) => {
            Verdict::Fail(ClerkError::SessionConflict { seq, latest })
        }
        Err(ServerError::Replica(error)) => error.into(),
    }
}
