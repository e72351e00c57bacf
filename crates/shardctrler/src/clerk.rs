//! The clerk: the controller's client library.
//!
//! A thin layer on the rsm's [`SessionClient`]: a [`GroupClient`] (leader
//! finding, retries with backoff, an operation deadline) with one
//! exactly-once session. Changes (Join, Leave, Move) run one at a time per clerk, each
//! with the next seq, so a retry is recognised and applied once. Queries
//! carry no seq and may run concurrently with anything. [`Clone`] gives a
//! new session sharing the leader hint and the connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rsm::group_client::{GroupCallError, GroupClient, GroupClientConfig, SessionClient, Verdict};

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
            session: SessionClient::with_group(GroupClient::with_client(servers, config, client)),
        }
    }

    /// This clerk's session id.
    pub async fn client_id(&self) -> u64 {
        self.session.client_id().await
    }

    /// Configuration `num`, or the latest with `None` (the lab's -1).
    /// A number beyond the latest is refused with
    /// [`ConfigError::FutureConfig`], one no longer kept with
    /// [`ConfigError::Pruned`].
    pub async fn query(&self, num: Option<u64>) -> Result<Config, ClerkError> {
        let request = ControllerRequest {
            client_id: 0,
            seq: 0,
            op: ConfigOp::Query { num },
        };
        match self.call(&request).await? {
            ConfigAnswer::Config(config) => Ok(config),
            other => Err(unexpected("Query", &other)),
        }
    }

    /// Like [`Clerk::query`], answered from what the leader has applied,
    /// without a log entry ([`ConfigOp::QueryApplied`]): "not yet" and "the
    /// latest" may lag the committed state by a moment. For pollers and
    /// routing, which ask again.
    pub async fn query_applied(&self, num: Option<u64>) -> Result<Config, ClerkError> {
        let request = ControllerRequest {
            client_id: 0,
            seq: 0,
            op: ConfigOp::QueryApplied { num },
        };
        match self.call(&request).await? {
            ConfigAnswer::Config(config) => Ok(config),
            other => Err(unexpected("QueryApplied", &other)),
        }
    }

    /// Tells the controller that group `gid` has applied configuration
    /// `num` (see [`ConfigOp::Report`]); returns the oldest configuration
    /// still kept. Idempotent: a repeated or older report changes nothing
    /// and costs no log entry.
    pub async fn report(&self, gid: Gid, num: u64) -> Result<u64, ClerkError> {
        let request = ControllerRequest {
            client_id: 0,
            seq: 0,
            op: ConfigOp::Report { gid, num },
        };
        match self.call(&request).await? {
            ConfigAnswer::Reported { oldest } => Ok(oldest),
            other => Err(unexpected("Report", &other)),
        }
    }

    /// Adds groups (gid -> servers); returns the new configuration's number.
    pub async fn join(&self, groups: BTreeMap<Gid, Vec<SocketAddr>>) -> Result<u64, ClerkError> {
        self.change(ConfigOp::Join { groups }).await
    }

    /// Removes groups; returns the new configuration's number.
    pub async fn leave(&self, gids: Vec<Gid>) -> Result<u64, ClerkError> {
        self.change(ConfigOp::Leave { gids }).await
    }

    /// Gives `shard` to `gid`; returns the new configuration's number.
    pub async fn move_shard(&self, shard: usize, gid: Gid) -> Result<u64, ClerkError> {
        self.change(ConfigOp::Move { shard, gid }).await
    }

    /// Declares group `gid` lost for good ([`ConfigOp::DeclareLost`]):
    /// its shards' data is given up, so groups waiting on it move on.
    /// Returns the configuration that records it (the latest, if it was
    /// already lost).
    pub async fn declare_lost(&self, gid: Gid) -> Result<u64, ClerkError> {
        self.change(ConfigOp::DeclareLost { gid }).await
    }

    async fn change(&self, op: ConfigOp) -> Result<u64, ClerkError> {
        let name = op.name();
        let request = |client_id, seq| ControllerRequest { client_id, seq, op };
        let answer = self.session.call(request, classify).await;
        match answer.map_err(clerk_error)? {
            ConfigAnswer::Changed { num } => Ok(num),
            other => Err(unexpected(name, &other)),
        }
    }

    /// A call outside the session (queries and reports carry no seq).
    async fn call(&self, request: &ControllerRequest) -> Result<ConfigAnswer, ClerkError> {
        let result = self.session.group().call(request, classify).await;
        result.map_err(clerk_error)
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
