//! Calling a Raft group: find the leader, remember it, retry with backoff
//! until an operation deadline. Shared by the clerks of kvraft, the shard
//! controller and shardkv.
//!
//! ```text
//!  call(request, classify)
//!    server = remembered leader
//!    loop (until operation_deadline):
//!      reply = labrpc call to server (rpc_timeout, cut to the deadline)
//!      classify(reply):
//!        Done(t)                  -> remember server; Ok(t)
//!        Fail(e)                  -> Err(Failed(e))      (final: no retry)
//!        WrongLeader{hint: Some}  -> try the hinted server next
//!        WrongLeader{None} | Retry,
//!        or no reply at all       -> try the next server
//!        Busy                     -> sleep backoff, double it (<= max),
//!                                    same server (it leads, but is full)
//!      after a full round of failures: sleep backoff, double it (<= max)
//! ```
//!
//! A leader hint is an index into the client's server list, which is
//! therefore in Raft id order (a group's `peer_addrs`).
//!
//! [`ClientSession`] is the other half of exactly-once: a random client id
//! (drawn through the runtime seam, so a simulation replays it) and the
//! next seq. A [`SessionClient`] is the two together, and a
//! [`SessionClerk`] is the clerk of one key/value group built on it.
//! [`GroupClients`] keeps one group client per group for a caller that
//! routes by configuration (shardkv's clerk, a node's forwarder).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a [`GroupClient`] retries.
#[derive(Clone, Debug)]
pub struct GroupClientConfig {
    /// Deadline of one call to one server.
    pub rpc_timeout: Duration,
    /// Pause after a full round of servers failed, doubling up to
    /// `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Give up (with [`GroupCallError::Timeout`]) after this long.
    pub operation_deadline: Duration,
    /// Who the caller is on its calls (labrpc's peer policy; the default
    /// calls anonymously over TCP).
    pub security: labrpc::PeerSecurity,
}

impl Default for GroupClientConfig {
    fn default() -> GroupClientConfig {
        GroupClientConfig {
            rpc_timeout: Duration::from_millis(1000),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            operation_deadline: Duration::from_secs(30),
            security: labrpc::PeerSecurity::default(),
        }
    }
}

/// The caller's reading of one server's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<T, E> {
    /// The operation is done; this is its result.
    Done(T),
    /// The operation failed for good (bad input, ...): no retry.
    Fail(E),
    /// That server does not lead; it believes `leader_hint` does.
    WrongLeader { leader_hint: Option<u64> },
    /// Try again, elsewhere (the server timed out, is not ready, ...).
    Retry,
    /// That server leads but has too much pending work: back off, then
    /// try it again (another server would only redirect here).
    Busy,
}

/// How a call ended without a result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupCallError<E> {
    /// No server gave a final answer before the deadline. The operation
    /// may or may not have taken effect.
    #[error("no answer within {deadline_ms} ms after {attempts} attempts")]
    Timeout { deadline_ms: u64, attempts: u64 },
    /// A server answered [`Verdict::Fail`].
    #[error("{0}")]
    Failed(E),
}

struct Shared {
    servers: Vec<SocketAddr>,
    client: labrpc::Client,
    config: GroupClientConfig,
    /// The server that answered last; tried first.
    leader: AtomicUsize,
}

/// A leader-finding caller of one group. Cheap to clone; clones share the
/// remembered leader and the connections. Usable from many tasks at once.
#[derive(Clone)]
pub struct GroupClient {
    shared: Arc<Shared>,
}

/// A labrpc client whose calls wait at most `rpc_timeout`, under the peer
/// policy `security` (labrpc's other settings as they default).
pub fn rpc_client(rpc_timeout: Duration, security: labrpc::PeerSecurity) -> labrpc::Client {
    labrpc::Client::new(labrpc::ClientConfig {
        timeout: rpc_timeout,
        security,
        ..labrpc::ClientConfig::default()
    })
}

impl GroupClient {
    /// # Panics
    /// If `servers` is empty.
    pub fn new(servers: Vec<SocketAddr>, config: GroupClientConfig) -> GroupClient {
        let client = rpc_client(config.rpc_timeout, config.security.clone());
        GroupClient::with_client(servers, config, client)
    }

    /// Like [`GroupClient::new`], reusing `client`'s connections (a client
    /// of many groups shares one).
    pub fn with_client(
        servers: Vec<SocketAddr>,
        config: GroupClientConfig,
        client: labrpc::Client,
    ) -> GroupClient {
        assert!(
            !servers.is_empty(),
            "a group client needs at least one server"
        );
        GroupClient {
            shared: Arc::new(Shared {
                servers,
                client,
                config,
                leader: AtomicUsize::new(0),
            }),
        }
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.shared.servers
    }

    pub fn config(&self) -> &GroupClientConfig {
        &self.shared.config
    }

    /// The server that answered last, tried first next time: the leader
    /// as far as this client knows.
    pub fn leader(&self) -> SocketAddr {
        let servers = &self.shared.servers;
        servers[self.shared.leader.load(Ordering::Relaxed) % servers.len()]
    }

    /// One call of `request` to `server` (one of this group's, or any),
    /// waiting at most `timeout`: for requests any replica may answer,
    /// which need no leader finding.
    pub async fn call_one<R: labrpc::Rpc>(
        &self,
        server: SocketAddr,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Reply, labrpc::RpcError> {
        self.shared
            .client
            .call_with_timeout(server, request, timeout)
            .await
    }

    /// Sends `request` until `classify` says a reply is final or the
    /// operation deadline passes. See the module docs.
    pub async fn call<R, T, E>(
        &self,
        request: &R,
        mut classify: impl FnMut(R::Reply) -> Verdict<T, E>,
    ) -> Result<T, GroupCallError<E>>
    where
        R: labrpc::Rpc,
    {
        let shared = &*self.shared;
        let config = &shared.config;
        let deadline = labrpc::runtime::now() + config.operation_deadline;
        let server_count = shared.servers.len();
        let mut server = shared.leader.load(Ordering::Relaxed) % server_count;
        let mut failures_in_round = 0;
        let mut backoff = config.backoff_min;
        let mut attempts = 0u64;
        // A hint is a Raft id, used as an index into `servers`: right while
        // the list is the group's positions, wrong once a membership change
        // made the two differ (docs/membership.md). A hint that proved
        // wrong in this call (the server it names answered that it does
        // not lead) is not followed again, so the call goes round the list
        // instead of between two servers.
        let mut followed_hint: Option<usize> = None;
        let mut distrusted = vec![false; server_count];
        loop {
            let now = labrpc::runtime::now();
            if now >= deadline {
                return Err(GroupCallError::Timeout {
                    deadline_ms: u64::try_from(config.operation_deadline.as_millis())
                        .unwrap_or(u64::MAX),
                    attempts,
                });
            }
            attempts += 1;
            let timeout = config.rpc_timeout.min(deadline - now);
            let reply = shared
                .client
                .call_with_timeout(shared.servers[server], request, timeout)
                .await;
            let verdict = match reply {
                Ok(reply) => classify(reply),
                Err(_) => Verdict::Retry,
            };
            if let (Some(hinted), Verdict::WrongLeader { .. }) = (followed_hint, &verdict) {
                distrusted[hinted] = true;
            }
            followed_hint = None;
            let next = match verdict {
                Verdict::Done(result) => {
                    shared.leader.store(server, Ordering::Relaxed);
                    return Ok(result);
                }
                Verdict::Fail(error) => return Err(GroupCallError::Failed(error)),
                Verdict::WrongLeader {
                    leader_hint: Some(hint),
                } if usize::try_from(hint).is_ok_and(|hint| {
                    hint < server_count && hint != server && !distrusted[hint]
                }) =>
                {
                    let hint = hint as usize;
                    followed_hint = Some(hint);
                    hint
                }
                Verdict::WrongLeader { .. } | Verdict::Retry => (server + 1) % server_count,
                Verdict::Busy => {
                    let remaining = deadline.saturating_duration_since(labrpc::runtime::now());
                    tokio::time::sleep(backoff.min(remaining)).await;
                    backoff = (backoff * 2).min(config.backoff_max);
                    continue;
                }
            };
            failures_in_round += 1;
            if failures_in_round >= server_count {
                failures_in_round = 0;
                let remaining = deadline.saturating_duration_since(labrpc::runtime::now());
                tokio::time::sleep(backoff.min(remaining)).await;
                backoff = (backoff * 2).min(config.backoff_max);
            }
            server = next;
        }
    }
}

/// What a key/value server's answer means to a caller of one group: the
/// internal errors become retries, the rest is final.
/// [`api::Error::WrongGroup`] is final here: a caller of several groups
/// (shardkv's clerk) looks at it and re-routes.
pub fn classify(reply: api::Reply) -> Verdict<api::Outcome, api::Error> {
    match reply {
        Ok(outcome) => Verdict::Done(outcome),
        Err(api::Error::WrongLeader { leader_hint }) => Verdict::WrongLeader { leader_hint },
        // Not applied in time at that server: it may still lead; a fresh
        // try, there or elsewhere.
        Err(api::Error::NotApplied) => Verdict::Retry,
        Err(api::Error::Busy { .. }) => Verdict::Busy,
        Err(
            error @ (api::Error::TooLarge { .. }
            | api::Error::ZeroTtl
            | api::Error::NotAnInteger
            | api::Error::IncrementOverflow
            | api::Error::NotAFloat
            | api::Error::NotFinite
            | api::Error::WrongType
            | api::Error::HashNotInteger
            | api::Error::HashNotFloat
            | api::Error::IndexOutOfRange
            | api::Error::TooManyElements { .. }
            | api::Error::NoSuchKey
            | api::Error::CrossShard
            | api::Error::Timeout { .. }
            | api::Error::WrongGroup { .. }
            | api::Error::Stale { .. }
            | api::Error::UnexpectedOutcome { .. }),
        ) => Verdict::Fail(error),
    }
}

impl<T, E> From<crate::SubmitError> for Verdict<T, E> {
    /// What a replica's refusal means to its caller.
    fn from(error: crate::SubmitError) -> Verdict<T, E> {
        match error {
            crate::SubmitError::WrongLeader { leader_hint } => Verdict::WrongLeader { leader_hint },
            // It may still apply: a fresh try, there or elsewhere.
            crate::SubmitError::Timeout => Verdict::Retry,
            crate::SubmitError::Busy { .. } => Verdict::Busy,
        }
    }
}

impl From<GroupCallError<api::Error>> for api::Error {
    fn from(error: GroupCallError<api::Error>) -> api::Error {
        match error {
            GroupCallError::Timeout {
                deadline_ms,
                attempts,
            } => api::Error::Timeout {
                deadline_ms,
                attempts,
            },
            GroupCallError::Failed(error) => error,
        }
    }
}

/// One exactly-once session: a client id and its next seq. The caller runs
/// one write at a time per session (a retry keeps its seq).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSession {
    client_id: u64,
    next_seq: u64,
}

impl ClientSession {
    /// A session with a random client id.
    pub fn new() -> ClientSession {
        ClientSession::with_id(labrpc::runtime::random_u64())
    }

    pub fn with_id(client_id: u64) -> ClientSession {
        ClientSession {
            client_id,
            next_seq: 1,
        }
    }

    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The seq of the next operation, used up whatever happens to it: a
    /// write that timed out may still apply, and the next must not be
    /// mistaken for it.
    pub fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }
}

impl Default for ClientSession {
    fn default() -> ClientSession {
        ClientSession::new()
    }
}

/// A [`GroupClient`] with one exactly-once [`ClientSession`]: what a clerk
/// of one group is. Its session calls run one at a time (a concurrent one
/// waits its turn), so a retry is always matched to its first attempt.
/// [`Clone`] gives a new session sharing the leader hint and the
/// connections, so many tasks can each hold a clone and run in parallel.
pub struct SessionClient {
    group: GroupClient,
    session: tokio::sync::Mutex<ClientSession>,
}

impl Clone for SessionClient {
    /// A new session sharing the leader hint and connections.
    fn clone(&self) -> SessionClient {
        SessionClient::with_group(self.group.clone())
    }
}

impl SessionClient {
    /// # Panics
    /// If `servers` is empty.
    pub fn new(servers: Vec<SocketAddr>, config: GroupClientConfig) -> SessionClient {
        SessionClient::with_group(GroupClient::new(servers, config))
    }

    /// Like [`SessionClient::new`], reusing `client`'s connections.
    ///
    /// # Panics
    /// If `servers` is empty.
    pub fn with_client(
        servers: Vec<SocketAddr>,
        config: GroupClientConfig,
        client: labrpc::Client,
    ) -> SessionClient {
        SessionClient::with_group(GroupClient::with_client(servers, config, client))
    }

    /// A new session over `group` (sharing its leader hint and connections).
    pub fn with_group(group: GroupClient) -> SessionClient {
        SessionClient {
            group,
            session: tokio::sync::Mutex::new(ClientSession::new()),
        }
    }

    /// The group client, for calls outside the session (reads that need no
    /// exactly-once identity).
    pub fn group(&self) -> &GroupClient {
        &self.group
    }

    /// This session's client id.
    pub async fn client_id(&self) -> u64 {
        self.session.lock().await.client_id()
    }

    /// One call in the session: `request` is made from the client id and
    /// the next seq (used up whatever happens), then sent as
    /// [`GroupClient::call`] sends it, the session held until it ends.
    pub async fn call<R, T, E>(
        &self,
        request: impl FnOnce(u64, u64) -> R,
        classify: impl FnMut(R::Reply) -> Verdict<T, E>,
    ) -> Result<T, GroupCallError<E>>
    where
        R: labrpc::Rpc,
    {
        let mut session = self.session.lock().await;
        let request = request(session.client_id(), session.take_seq());
        let result = self.group.call(&request, classify).await;
        drop(session);
        result
    }
}

/// A service's request for one operation of a session: the operation with
/// the session's identity `(client_id, seq)`.
pub trait SessionRequest: labrpc::Rpc {
    /// What the caller runs.
    type Op;
    fn from_session(client_id: u64, seq: u64, op: Self::Op) -> Self;
}

/// The clerk of one key/value group: a [`SessionClient`] whose every
/// operation is an [`api::Op`] sent as an `R` (kvraft's clerk is
/// `SessionClerk<KvRequest>`), so the typed operations are
/// [`api::KvClient`]'s. One session: its operations run one at a time
/// (concurrent calls wait their turn), so a retry is always matched to its
/// first attempt. [`Clone`] gives a new session sharing the leader hint
/// and the connections, so many tasks can each hold a clone and run in
/// parallel.
pub struct SessionClerk<R> {
    session: SessionClient,
    request: PhantomData<fn() -> R>,
}

impl<R> Clone for SessionClerk<R> {
    /// A new session sharing the leader hint and connections.
    fn clone(&self) -> SessionClerk<R> {
        SessionClerk {
            session: self.session.clone(),
            request: PhantomData,
        }
    }
}

impl<R> SessionClerk<R> {
    /// `servers` are the group's replicas in Raft id order (their
    /// `peer_addrs`), so that leader hints index them.
    ///
    /// # Panics
    /// If `servers` is empty.
    pub fn new(servers: Vec<SocketAddr>, config: GroupClientConfig) -> SessionClerk<R> {
        SessionClerk {
            session: SessionClient::new(servers, config),
            request: PhantomData,
        }
    }

    /// This clerk's session id.
    pub async fn client_id(&self) -> u64 {
        self.session.client_id().await
    }
}

impl<R> api::KvClient for SessionClerk<R>
where
    R: SessionRequest<Op = api::Op, Reply = api::Reply>,
{
    /// Sends `op` until a server applies it or the deadline passes
    /// ([`api::Error::Timeout`]); size and TTL refusals are final.
    async fn run(&self, op: api::Op) -> Result<api::Outcome, api::Error> {
        let request = |client_id, seq| R::from_session(client_id, seq, op);
        self.session
            .call(request, classify)
            .await
            .map_err(api::Error::from)
    }
}

/// Leader-finding clients of many groups, one per group id, over one
/// labrpc client: what a caller that routes by configuration keeps (shardkv's
/// clerk, a node's forwarder). A group whose server list changed gets a
/// new client (and starts again from its first server). Holds at most one
/// client per group id it was asked about: as many as the configurations
/// name.
pub struct GroupClients {
    config: GroupClientConfig,
    client: labrpc::Client,
    groups: Mutex<BTreeMap<u64, GroupClient>>,
}

impl GroupClients {
    /// Clients that call with `config`, over a new labrpc client whose
    /// calls wait at most `config.rpc_timeout`.
    pub fn new(config: GroupClientConfig) -> GroupClients {
        let client = rpc_client(config.rpc_timeout, config.security.clone());
        GroupClients::with_client(config, client)
    }

    /// Like [`GroupClients::new`], over `client`'s connections.
    pub fn with_client(config: GroupClientConfig, client: labrpc::Client) -> GroupClients {
        GroupClients {
            config,
            client,
            groups: Mutex::new(BTreeMap::new()),
        }
    }

    /// The client of group `gid` at `servers` (in Raft id order, as a
    /// configuration lists them); `None` if `servers` is empty (a
    /// configuration naming a group without servers: nobody to call).
    pub fn get(&self, gid: u64, servers: &[SocketAddr]) -> Option<GroupClient> {
        if servers.is_empty() {
            return None;
        }
        let mut groups = self.groups.lock().expect("group clients lock");
        if let Some(group) = groups.get(&gid)
            && group.servers() == servers
        {
            return Some(group.clone());
        }
        let group =
            GroupClient::with_client(servers.to_vec(), self.config.clone(), self.client.clone());
        groups.insert(gid, group.clone());
        Some(group)
    }

    /// Each group's leader as far as these clients know (the server that
    /// answered last).
    pub fn leaders(&self) -> BTreeMap<u64, SocketAddr> {
        let groups = self.groups.lock().expect("group clients lock");
        groups
            .iter()
            .map(|(gid, group)| (*gid, group.leader()))
            .collect()
    }
}
