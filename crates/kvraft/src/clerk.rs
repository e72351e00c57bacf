//! The clerk: the client library. Finds the leader, remembers it, retries.
//!
//! A clerk is one exactly-once session `(client_id, seq)`: its operations
//! run one at a time (concurrent calls on one clerk wait their turn), so a
//! retry can always be matched to its first attempt. [`Clone`] gives a new
//! session that shares the leader hint and the connections, so many tasks
//! can each hold a clone and run in parallel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::rpc::{KvRequest, Op, Outcome, ServerError};

/// How a clerk retries.
#[derive(Clone, Debug)]
pub struct ClerkConfig {
    /// Deadline of one call to one server.
    pub rpc_timeout: Duration,
    /// Pause after a full round of servers failed, doubling up to
    /// `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Give up (with [`ClerkError::Timeout`]) after this long.
    pub operation_deadline: Duration,
}

impl Default for ClerkConfig {
    fn default() -> ClerkConfig {
        ClerkConfig {
            rpc_timeout: Duration::from_millis(1000),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            operation_deadline: Duration::from_secs(30),
        }
    }
}

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

struct Shared {
    servers: Vec<SocketAddr>,
    client: labrpc::Client,
    config: ClerkConfig,
    /// The server that answered last; tried first.
    leader: AtomicUsize,
}

struct Session {
    client_id: u64,
    next_seq: u64,
}

/// A client of one kvraft group. See the module docs.
pub struct Clerk {
    shared: Arc<Shared>,
    session: tokio::sync::Mutex<Session>,
}

impl Clone for Clerk {
    /// A new session sharing the leader hint and connections.
    fn clone(&self) -> Clerk {
        Clerk {
            shared: Arc::clone(&self.shared),
            session: tokio::sync::Mutex::new(Session::new()),
        }
    }
}

impl Session {
    fn new() -> Session {
        Session {
            client_id: random_client_id(),
            next_seq: 1,
        }
    }
}

#[cfg(madsim)]
fn random_client_id() -> u64 {
    madsim::rand::random()
}

#[cfg(not(madsim))]
fn random_client_id() -> u64 {
    use rand::RngCore;
    rand::rngs::OsRng.next_u64()
}

impl Clerk {
    pub fn new(servers: Vec<SocketAddr>, config: ClerkConfig) -> Clerk {
        assert!(!servers.is_empty(), "a clerk needs at least one server");
        let client = labrpc::Client::new(labrpc::ClientConfig {
            timeout: config.rpc_timeout,
            ..labrpc::ClientConfig::default()
        });
        Clerk {
            shared: Arc::new(Shared {
                servers,
                client,
                config,
                leader: AtomicUsize::new(0),
            }),
            session: tokio::sync::Mutex::new(Session::new()),
        }
    }

    /// This clerk's session id.
    pub async fn client_id(&self) -> u64 {
        self.session.lock().await.client_id
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
            client_id: session.client_id,
            seq: session.next_seq,
            op,
        };
        // The seq is used up whatever happens: a write that timed out may
        // still apply, and the next write must not be mistaken for it.
        session.next_seq += 1;
        let shared = &self.shared;
        let config = &shared.config;
        let deadline = labrpc::clock::now() + config.operation_deadline;
        let server_count = shared.servers.len();
        let mut server = shared.leader.load(Ordering::Relaxed) % server_count;
        let mut failures_in_round = 0;
        let mut backoff = config.backoff_min;
        let mut attempts = 0u64;
        loop {
            let now = labrpc::clock::now();
            if now >= deadline {
                return Err(ClerkError::Timeout {
                    deadline_ms: u64::try_from(config.operation_deadline.as_millis())
                        .unwrap_or(u64::MAX),
                    attempts,
                });
            }
            attempts += 1;
            let timeout = config.rpc_timeout.min(deadline - now);
            let result = shared
                .client
                .call_with_timeout(shared.servers[server], &request, timeout)
                .await;
            let next = match result {
                Ok(Ok(outcome)) => {
                    shared.leader.store(server, Ordering::Relaxed);
                    return Ok(outcome);
                }
                Ok(Err(ServerError::TooLarge {
                    what,
                    size_bytes,
                    limit_bytes,
                })) => {
                    return Err(ClerkError::TooLarge {
                        what,
                        size_bytes,
                        limit_bytes,
                    });
                }
                Ok(Err(ServerError::ZeroTtl)) => return Err(ClerkError::ZeroTtl),
                Ok(Err(ServerError::Stale { seq, latest })) => {
                    panic!(
                        "client {}: server saw seq {latest} after this clerk's {seq}: \
                         two clerks share a client id",
                        request.client_id
                    )
                }
                Ok(Err(ServerError::WrongLeader {
                    leader_hint: Some(hint),
                })) if (hint as usize) < server_count && hint as usize != server => hint as usize,
                // Timeout at the server: it may still lead; a fresh try
                // there or elsewhere, counted as a failure of this round.
                Ok(Err(_)) | Err(_) => (server + 1) % server_count,
            };
            failures_in_round += 1;
            if failures_in_round >= server_count {
                failures_in_round = 0;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.backoff_max);
            }
            server = next;
        }
    }
}
