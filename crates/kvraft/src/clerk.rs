//! The clerk: the client library of one kvraft group.
//!
//! A thin layer on [`GroupClient`] (leader finding, retries, deadline) and
//! [`ClientSession`] (exactly-once identity). A clerk is one session: its
//! operations run one at a time (concurrent calls on one clerk wait their
//! turn), so a retry can always be matched to its first attempt. [`Clone`]
//! gives a new session that shares the leader hint and the connections, so
//! many tasks can each hold a clone and run in parallel.

use std::net::SocketAddr;

use crate::group_client::{ClientSession, GroupCallError, GroupClient, GroupClientConfig, Verdict};
use crate::rpc::{KvRequest, Op, Outcome, ServerError};

/// How a clerk retries (the group client's settings).
pub type ClerkConfig = GroupClientConfig;

/// What an operation can end in besides success.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    /// No server applied the request before the deadline. A write may or
    /// may not have taken effect.
    #[error("no answer within {deadline_ms} ms after {attempts} attempts")]
    Timeout { deadline_ms: u64, attempts: u64 },
    /// The key or value is over the service's limit; nothing changed.
    #[error("{what} of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    TooLarge {
        what: String,
        size_bytes: u64,
        limit_bytes: u64,
    },
    #[error("a TTL of 0 ms is refused")]
    ZeroTtl,
}

/// A client of one kvraft group. See the module docs.
pub struct Clerk {
    group: GroupClient,
    session: tokio::sync::Mutex<ClientSession>,
}

impl Clone for Clerk {
    /// A new session sharing the leader hint and connections.
    fn clone(&self) -> Clerk {
        Clerk {
            group: self.group.clone(),
            session: tokio::sync::Mutex::new(ClientSession::new()),
        }
    }
}

impl Clerk {
    /// # Panics
    /// If `servers` is empty.
    pub fn new(servers: Vec<SocketAddr>, config: ClerkConfig) -> Clerk {
        Clerk {
            group: GroupClient::new(servers, config),
            session: tokio::sync::Mutex::new(ClientSession::new()),
        }
    }

    /// This clerk's session id.
    pub async fn client_id(&self) -> u64 {
        self.session.lock().await.client_id()
    }

    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<Option<Vec<u8>>, ClerkError> {
        match self.run(Op::Get { key: key.into() }).await? {
            Outcome::Value(value) => Ok(value),
            other => panic!("a Get answered {other:?}"),
        }
    }

    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<(), ClerkError> {
        self.put_with_ttl(key, value, None).await
    }

    /// Put whose entry expires `ttl_ms` logical ms after it is applied.
    pub async fn put_with_ttl(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> Result<(), ClerkError> {
        let op = Op::Put {
            key: key.into(),
            value: value.into(),
            ttl_ms,
        };
        self.run(op).await.map(|_| ())
    }

    pub async fn append(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<(), ClerkError> {
        let op = Op::Append {
            key: key.into(),
            value: value.into(),
        };
        self.run(op).await.map(|_| ())
    }

    /// Removes the key; whether it was there.
    pub async fn delete(&self, key: impl Into<Vec<u8>>) -> Result<bool, ClerkError> {
        match self.run(Op::Delete { key: key.into() }).await? {
            Outcome::Deleted(existed) => Ok(existed),
            other => panic!("a Delete answered {other:?}"),
        }
    }

    /// Sets the key to `value` if it holds `expected` (`None`: absent);
    /// whether it swapped.
    pub async fn compare_and_set(
        &self,
        key: impl Into<Vec<u8>>,
        expected: Option<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<bool, ClerkError> {
        let op = Op::CompareAndSet {
            key: key.into(),
            expected,
            value: value.into(),
            ttl_ms: None,
        };
        match self.run(op).await? {
            Outcome::Swapped(swapped) => Ok(swapped),
            other => panic!("a CompareAndSet answered {other:?}"),
        }
    }

    /// Sends `op` until a server applies it or the deadline passes.
    async fn run(&self, op: Op) -> Result<Outcome, ClerkError> {
        let mut session = self.session.lock().await;
        let request = KvRequest {
            client_id: session.client_id(),
            seq: session.take_seq(),
            op,
        };
        let client_id = request.client_id;
        let result = self
            .group
            .call(&request, |reply| classify(client_id, reply))
            .await;
        drop(session);
        result.map_err(|error| match error {
            GroupCallError::Timeout {
                deadline_ms,
                attempts,
            } => ClerkError::Timeout {
                deadline_ms,
                attempts,
            },
            GroupCallError::Failed(error) => error,
        })
    }
}

/// What a server's answer means to the clerk.
fn classify(client_id: u64, reply: Result<Outcome, ServerError>) -> Verdict<Outcome, ClerkError> {
    match reply {
        Ok(outcome) => Verdict::Done(outcome),
        Err(ServerError::TooLarge {
            what,
            size_bytes,
            limit_bytes,
        }) => Verdict::Fail(ClerkError::TooLarge {
            what,
            size_bytes,
            limit_bytes,
        }),
        Err(ServerError::ZeroTtl) => Verdict::Fail(ClerkError::ZeroTtl),
        Err(ServerError::Stale { seq, latest }) => panic!(
            "client {client_id}: server saw seq {latest} after this clerk's {seq}: \
             two clerks share a client id"
        ),
        Err(ServerError::WrongLeader { leader_hint }) => Verdict::WrongLeader { leader_hint },
        // Not applied in time at that server: it may still lead; a fresh
        // try, there or elsewhere.
        Err(ServerError::Timeout) => Verdict::Retry,
    }
}
