//! The public gRPC API (`distcache.v1`): the `Cache` service maps each
//! request to one `Op` and hands it to the node's [`Forwarder`]; the `Admin`
//! service reads and changes the controller's configuration.
//!
//! Errors become gRPC status codes here and only here (see the proto for the
//! table), each with its machine-readable reason and fields in the status
//! details ([`distcache_client::details`]: a `google.rpc.ErrorInfo` of domain
//! `distcache.v1`), so clients act on `TOO_LARGE` or `NOT_AN_INTEGER`
//! rather than on message texts.
//!
//! **Users**: every method authenticates the `authorization` metadata
//! entry (`Basic base64(user:password)` or `Bearer <default user's
//! password>`; none needed when the default user has no password, see
//! [`crate::auth`]) and checks the Redis command the method amounts to
//! against the user's ACL rules: `Get`/`MultiGet` `get`, `Set` `set`,
//! `Delete` `del`, `CompareAndSet` `get`+`set`, `Append` `append`,
//! `Increment` `incrby`, `Expire` `pexpire`, `Persist` `persist`, `Ttl`
//! `pttl`, with the request's keys; `Admin.Status`/`NodeStatus` `info`;
//! `Join`/`Leave`/`Move` every `@admin` command. Failures are
//! `UNAUTHENTICATED` and `PERMISSION_DENIED` (with Redis's `NOPERM` text). WrongGroup and WrongLeader never reach a caller: the forwarder
//! re-routes them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use distcache_client::details::{self, Reason};
use distcache_client::proto::admin_client::AdminClient;
use distcache_client::proto::admin_server::Admin;
use distcache_client::proto::cache_server::Cache;
use distcache_client::proto::{self, SetCondition};
use shardctrler::ControllerClient;
use shardkv::{Op, Outcome};
use tonic::{Request, Response, Status};

use crate::forward::{ForwardError, Forwarder, READ_FROM, ReadFrom};
use crate::node::NodeState;
use crate::tracking::grpc::{GrpcTracking, TrackStream};

/// Most keys one MultiGet may name.
pub const MAX_MULTI_GET_KEYS: usize = 1024;

fn to_status(error: ForwardError) -> Status {
    let text = error.to_string();
    match error {
        ForwardError::InvalidArgument(detail) => invalid(detail),
        ForwardError::Timeout {
            deadline_ms,
            attempts,
        } => details::status_with(
            Reason::Timeout,
            text,
            details::api_reason(&api::Error::Timeout {
                deadline_ms,
                attempts,
            })
            .1,
        ),
        ForwardError::StaleSession { seq, latest } => details::status_with(
            Reason::StaleSession,
            text,
            details::api_reason(&api::Error::Stale { seq, latest }).1,
        ),
        ForwardError::ShuttingDown => details::status(Reason::ShuttingDown, text),
        ForwardError::OverLimit(error) | ForwardError::Refused(error) => {
            details::api_status(&error)
        }
    }
}

/// `INVALID_ARGUMENT` with reason `INVALID_REQUEST`: the request is
/// refused before anything runs.
fn invalid(detail: impl Into<String>) -> Status {
    details::status(Reason::InvalidRequest, detail)
}

/// A data replica's peer address from a request: empty is none.
fn parse_peer_addr(text: &str) -> Result<Option<SocketAddr>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<SocketAddr>()
        .map(Some)
        .map_err(|_| invalid(format!("peer_addr {text:?} is not an IP address and port")))
}

/// The user a request's `authorization` metadata authenticates as.
fn caller<T>(acl: &::resp::Acl, request: &Request<T>) -> Result<Arc<::resp::User>, Status> {
    let value = request
        .metadata()
        .get("authorization")
        .map(|value| value.as_bytes());
    crate::auth::authenticate(acl, value)
        .map_err(|error| details::status(Reason::Unauthenticated, error.to_string()))
}

/// Authenticates `request` and checks that its user may run `commands`
/// on `keys`; the user.
fn authorize<'a, T>(
    acl: &::resp::Acl,
    request: &Request<T>,
    commands: &[&str],
    keys: impl Iterator<Item = &'a [u8]> + Clone,
) -> Result<Arc<::resp::User>, Status> {
    let user = caller(acl, request)?;
    for command in commands {
        user.check_named(command, keys.clone())
            .map_err(|denied| details::status(Reason::NoPermission, denied.reply_text()))?;
    }
    Ok(user)
}

/// Authenticates `request` and checks that its user may run every
/// `@admin` command.
fn authorize_admin<T>(acl: &::resp::Acl, request: &Request<T>) -> Result<(), Status> {
    let user = caller(acl, request)?;
    if user.has_category("@admin") {
        Ok(())
    } else {
        Err(details::status(
            Reason::NoPermission,
            format!(
                "NOPERM User {} may not run every @admin command, which this method needs",
                user.name()
            ),
        ))
    }
}

fn unexpected(op: &str, outcome: &Outcome) -> Status {
    details::api_status(&api::Error::UnexpectedOutcome {
        op: op.to_string(),
        outcome: format!("{outcome:?}"),
    })
}

fn check_key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() {
        return Err(invalid("the key is empty"));
    }
    Ok(())
}

/// A request's `read_from` and `max_staleness_ms` (unknown values, a
/// bound past `shardkv::MAX_STALENESS_MS`, and a bound on a leader read are
/// refused).
fn read_from(value: i32, max_staleness_ms: u64) -> Result<ReadFrom, Status> {
    let any_replica = match proto::ReadFrom::try_from(value) {
        Ok(proto::ReadFrom::Leader) => false,
        Ok(proto::ReadFrom::AnyReplica) => true,
        Err(_) => {
            return Err(invalid(format!(
                "read_from {value} is not one of READ_FROM_LEADER (0), READ_FROM_ANY_REPLICA (1)"
            )));
        }
    };
    if max_staleness_ms > shardkv::MAX_STALENESS_MS {
        return Err(invalid(format!(
            "max_staleness_ms {max_staleness_ms} is over the limit of {} ms",
            shardkv::MAX_STALENESS_MS
        )));
    }
    if max_staleness_ms > 0 && !any_replica {
        return Err(invalid(
            "max_staleness_ms needs read_from = READ_FROM_ANY_REPLICA (the leader's reads are linearizable)",
        ));
    }
    Ok(ReadFrom::from_request(any_replica, max_staleness_ms))
}

fn check_ttl(ttl_ms: Option<u64>) -> Result<(), Status> {
    if ttl_ms == Some(0) {
        return Err(details::api_status(&api::Error::ZeroTtl));
    }
    Ok(())
}

fn session(session: Option<proto::Session>) -> Result<Option<(u64, u64)>, Status> {
    match session {
        None => Ok(None),
        Some(proto::Session { client_id: 0, .. }) => Err(invalid(
            "session.client_id 0 is reserved; leave the session out instead",
        )),
        Some(proto::Session { seq: 0, .. }) => Err(invalid("session.seq starts at 1")),
        Some(proto::Session { client_id, seq }) => Ok(Some((client_id, seq))),
    }
}

/// The `Cache` service of one node.
pub struct CacheService {
    pub(crate) forwarder: Arc<Forwarder>,
    /// Who may call, and what each user may do.
    pub(crate) acl: Arc<::resp::Acl>,
    /// Client-side caching: `Track` streams and tracked reads.
    pub(crate) tracking: Arc<GrpcTracking>,
}

impl CacheService {
    /// Runs `op`; a write is told to the tracking streams of this node
    /// once it answered (or failed: a write that timed out may apply).
    async fn run(&self, op: Op, session: Option<(u64, u64)>) -> Result<Outcome, Status> {
        let written: Option<Vec<Vec<u8>>> = (!op.is_read() && self.tracking.has_subscribers())
            .then(|| op.keys().map(<[u8]>::to_vec).collect());
        let read_from = crate::forward::current_read_from();
        let outcome = crate::metrics::FRONTEND
            .scope("grpc", self.forwarder.run_from(op, session, read_from))
            .await
            .map_err(to_status);
        if let Some(keys) = written {
            self.tracking.written(&keys);
        }
        outcome
    }

    /// Reads `key`.
    async fn get_value(&self, key: Vec<u8>) -> Result<proto::GetReply, Status> {
        check_key(&key)?;
        match self.run(Op::Get { key }, None).await? {
            Outcome::Value(Some(value)) => Ok(proto::GetReply {
                found: true,
                value,
                tracked: false,
            }),
            Outcome::Value(None) => Ok(proto::GetReply::default()),
            other => Err(unexpected("Get", &other)),
        }
    }

    /// Reads `key` for `user`, remembering it first for their stream
    /// `tracking_id` if that is open here (forgotten again if the read
    /// fails); says whether it was.
    async fn get_tracked(
        &self,
        key: Vec<u8>,
        tracking_id: u64,
        user: &str,
    ) -> Result<proto::GetReply, Status> {
        check_key(&key)?;
        let tracked_key = Bytes::from(key);
        if !self.tracking.track(tracking_id, user, &tracked_key) {
            return self.get_value(tracked_key.to_vec()).await;
        }
        // The value and its TTL in one read: the key's expiry is told
        // from it, with no lookup after (`tracking::look_up_expiries`).
        let outcome = self
            .run(
                Op::GetWithTtl {
                    key: tracked_key.to_vec(),
                },
                None,
            )
            .await;
        let (value, ttl) = match outcome {
            Ok(Outcome::ValueWithTtl { value, ttl }) => (value, ttl),
            Ok(other) => {
                self.tracking.read_failed(tracking_id, &tracked_key);
                return Err(unexpected("Get", &other));
            }
            Err(status) => {
                self.tracking.read_failed(tracking_id, &tracked_key);
                return Err(status);
            }
        };
        if value.is_some() {
            self.tracking.found_with_ttl(&tracked_key, ttl);
        }
        Ok(proto::GetReply {
            found: value.is_some(),
            value: value.unwrap_or_default(),
            tracked: true,
        })
    }
}

#[tonic::async_trait]
impl Cache for CacheService {
    async fn get(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::GetReply>, Status> {
        let user = authorize(
            &self.acl,
            &request,
            &["get"],
            std::iter::once(request.get_ref().key.as_slice()),
        )?;
        let request = request.into_inner();
        let mut read_from = read_from(request.read_from, request.max_staleness_ms)?;
        if request.tracking_id != 0 {
            read_from = read_from.for_tracked_read();
        }
        let reply = READ_FROM
            .scope(read_from, async {
                if request.tracking_id == 0 {
                    self.get_value(request.key).await
                } else {
                    self.get_tracked(request.key, request.tracking_id, user.name())
                        .await
                }
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn set(
        &self,
        request: Request<proto::SetRequest>,
    ) -> Result<Response<proto::SetReply>, Status> {
        authorize(
            &self.acl,
            &request,
            &["set"],
            std::iter::once(request.get_ref().key.as_slice()),
        )?;
        let request = request.into_inner();
        check_key(&request.key)?;
        check_ttl(request.ttl_ms)?;
        let session = session(request.session)?;
        let condition = SetCondition::try_from(request.condition)
            .map_err(|_| invalid(format!("unknown condition {}", request.condition)))?;
        let applied = match condition {
            SetCondition::Always => {
                let op = Op::Put {
                    key: request.key,
                    value: request.value,
                    ttl_ms: request.ttl_ms,
                };
                match self.run(op, session).await? {
                    Outcome::Done => true,
                    other => return Err(unexpected("Set", &other)),
                }
            }
            SetCondition::IfAbsent | SetCondition::IfPresent => {
                let op = Op::Set {
                    key: request.key,
                    value: request.value,
                    condition: if condition == SetCondition::IfAbsent {
                        api::SetCondition::IfAbsent
                    } else {
                        api::SetCondition::IfPresent
                    },
                    ttl: request.ttl_ms.map_or(api::SetTtl::Clear, api::SetTtl::Ms),
                    return_old: false,
                };
                match self.run(op, session).await? {
                    Outcome::Set { applied, .. } => applied,
                    other => return Err(unexpected("Set", &other)),
                }
            }
        };
        Ok(Response::new(proto::SetReply { applied }))
    }

    async fn delete(
        &self,
        request: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteReply>, Status> {
        authorize(
            &self.acl,
            &request,
            &["del"],
            std::iter::once(request.get_ref().key.as_slice()),
        )?;
        let request = request.into_inner();
        check_key(&request.key)?;
        let session = session(request.session)?;
        match self.run(Op::Delete { key: request.key }, session).await? {
            Outcome::Deleted(existed) => Ok(Response::new(proto::DeleteReply { existed })),
            other => Err(unexpected("Delete", &other)),
        }
    }

    async fn compare_and_set(
        &self,
        request: Request<proto::CompareAndSetRequest>,
    ) -> Result<Response<proto::CompareAndSetReply>, Status> {
        authorize(
            &self.acl,
            &request,
            &["get", "set"],
            std::iter::once(request.get_ref().key.as_slice()),
        )?;
        let request = request.into_inner();
        check_key(&request.key)?;
        check_ttl(request.ttl_ms)?;
        let session = session(request.session)?;
        let op = Op::CompareAndSet {
            key: request.key,
            expected: request.expected,
            value: request.value,
            ttl_ms: request.ttl_ms,
        };
        match self.run(op, session).await? {
            Outcome::Swapped(swapped) => Ok(Response::new(proto::CompareAndSetReply { swapped })),
            other => Err(unexpected("CompareAndSet", &other)),
        }
    }

    async fn append(
        &self,
        request: Request<proto::AppendRequest>,
    ) -> Result<Response<proto::AppendReply>, Status> {
        authorize(
            &self.acl,
            &request,
            &["append"],
            std::iter::once(request.get_ref().key.as_slice()),
        )?;
        let request = request.into_inner();
        check_key(&request.key)?;
        let session = session(request.session)?;
        let op = Op::Append {
            key: request.key,
            value: request.value,
        };
        match self.run(op, session).await? {
            Outcome::Integer(length) => Ok(Response::new(proto::AppendReply {
                length: u64::try_from(length).unwrap_or_default(),
            })),
            // Only from the deliberately broken unsafe-ack mode, which
            // answers before the write runs: the length is not known.
            Outcome::Done => Ok(Response::new(proto::AppendReply { length: 0 })),
            other => Err(unexpected("Append", &other)),
        }
    }

    async fn increment(
        &self,
        request: Request<proto::IncrementRequest>,
    ) -> Result<Response<proto::IncrementReply>, Status> {
        authorize(
            &self.acl,
            &request,
            &["incrby"],
            std::iter::once(request.get_ref().key.as_slice()),
        )?;
        let request = request.into_inner();
        check_key(&request.key)?;
        let session = session(request.session)?;
        let op = Op::Increment {
            key: request.key,
            delta: request.delta,
        };
        match self.run(op, session).await? {
            Outcome::Integer(value) => Ok(Response::new(proto::IncrementReply { value })),
            other => Err(unexpected("Increment", &other)),
        }
    }

    async fn expire(
        &self,
        request: Request<proto::ExpireRequest>,
    ) -> Result<Response<proto::ExpireReply>, Status> {
        authorize(
            &self.acl,
            &request,
            &["pexpire"],
            std::iter::once(request.get_ref().key.as_slice()),
        )?;
        let request = request.into_inner();
        check_key(&request.key)?;
        check_ttl(Some(request.ttl_ms))?;
        let session = session(request.session)?;
        let op = Op::Expire {
            key: request.key,
            ttl_ms: request.ttl_ms,
            unix_ms: None,
            condition: api::ExpireCondition::default(),
        };
        match self.run(op, session).await? {
            Outcome::Applied(applied) => Ok(Response::new(proto::ExpireReply { applied })),
            other => Err(unexpected("Expire", &other)),
        }
    }

    async fn persist(
        &self,
        request: Request<proto::PersistRequest>,
    ) -> Result<Response<proto::PersistReply>, Status> {
        authorize(
            &self.acl,
            &request,
            &["persist"],
            std::iter::once(request.get_ref().key.as_slice()),
        )?;
        let request = request.into_inner();
        check_key(&request.key)?;
        let session = session(request.session)?;
        match self.run(Op::Persist { key: request.key }, session).await? {
            Outcome::Applied(applied) => Ok(Response::new(proto::PersistReply { applied })),
            other => Err(unexpected("Persist", &other)),
        }
    }

    async fn ttl(
        &self,
        request: Request<proto::TtlRequest>,
    ) -> Result<Response<proto::TtlReply>, Status> {
        authorize(
            &self.acl,
            &request,
            &["pttl"],
            std::iter::once(request.get_ref().key.as_slice()),
        )?;
        let key = request.into_inner().key;
        check_key(&key)?;
        let reply = match self.run(Op::Ttl { key }, None).await? {
            Outcome::Ttl(api::KeyTtl::Missing) => proto::TtlReply::default(),
            Outcome::Ttl(api::KeyTtl::Persistent) => proto::TtlReply {
                found: true,
                ttl_ms: None,
            },
            Outcome::Ttl(api::KeyTtl::RemainingMs(remaining_ms)) => proto::TtlReply {
                found: true,
                ttl_ms: Some(remaining_ms),
            },
            other => return Err(unexpected("Ttl", &other)),
        };
        Ok(Response::new(reply))
    }

    async fn multi_get(
        &self,
        request: Request<proto::MultiGetRequest>,
    ) -> Result<Response<proto::MultiGetReply>, Status> {
        authorize(
            &self.acl,
            &request,
            &["get"],
            request.get_ref().keys.iter().map(Vec::as_slice),
        )?;
        let request = request.into_inner();
        let read_from = read_from(request.read_from, request.max_staleness_ms)?;
        let keys = request.keys;
        if keys.len() > MAX_MULTI_GET_KEYS {
            return Err(invalid(format!(
                "{} keys, more than the limit of {MAX_MULTI_GET_KEYS}",
                keys.len()
            )));
        }
        for key in &keys {
            check_key(key)?;
        }
        let reads = keys.into_iter().map(|key| self.get_value(key));
        let values = READ_FROM
            .scope(read_from, futures::future::try_join_all(reads))
            .await?;
        Ok(Response::new(proto::MultiGetReply { values }))
    }

    type TrackStream = TrackStream;

    async fn track(
        &self,
        request: Request<proto::TrackRequest>,
    ) -> Result<Response<TrackStream>, Status> {
        // A stream tells only keys its caller read (each Get checked as
        // usual), so opening one needs only a user who may read.
        let user = authorize(&self.acl, &request, &["get"], std::iter::empty())?;
        self.tracking
            .open(user.name())
            .map(Response::new)
            .ok_or_else(|| details::status(Reason::ShuttingDown, "the node is stopping"))
    }
}

/// The `Admin` service of one node.
pub struct AdminService {
    pub(crate) state: Arc<NodeState>,
    /// Channels to the other nodes' Admin services (one per node listed).
    pub(crate) channels: Mutex<BTreeMap<SocketAddr, tonic::transport::Channel>>,
}

/// How long Status waits for another node's replica states.
const NODE_STATUS_TIMEOUT: Duration = Duration::from_millis(1000);

impl AdminService {
    pub fn new(state: Arc<NodeState>) -> AdminService {
        AdminService {
            state,
            channels: Mutex::new(BTreeMap::new()),
        }
    }

    fn channel(&self, addr: SocketAddr) -> Result<tonic::transport::Channel, Status> {
        let mut channels = self.channels.lock().expect("channels lock");
        if let Some(channel) = channels.get(&addr) {
            return Ok(channel.clone());
        }
        #[cfg(not(madsim))]
        let endpoint = match &self.state.peer_tls {
            // The other nodes serve TLS too: trust the cluster's CA.
            Some(peer) => {
                let Some(tls) = peer.grpc.clone() else {
                    return Err(Status::unavailable(
                        "this node has no [tls] ca to check the other nodes' certificates",
                    ));
                };
                tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
                    .map_err(|error| Status::internal(error.to_string()))?
                    .tls_config(tls)
                    .map_err(|error| Status::internal(error.to_string()))?
            }
            None => tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|error| Status::internal(error.to_string()))?,
        };
        #[cfg(madsim)]
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|error| Status::internal(error.to_string()))?;
        let channel = endpoint.connect_timeout(NODE_STATUS_TIMEOUT).connect_lazy();
        channels.insert(addr, channel.clone());
        Ok(channel)
    }

    /// Another node's `NodeStatus`, asked with the caller's credentials
    /// (this node's own, without a call).
    pub(crate) async fn node_status_of(
        &self,
        node_id: u64,
        addr: SocketAddr,
        authorization: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ) -> proto::NodeStatusReply {
        if node_id == self.state.node_id {
            return self.state.local_status();
        }
        let unreachable = proto::NodeStatusReply {
            node_id,
            grpc_addr: addr.to_string(),
            reachable: false,
            replicas: Vec::new(),
            hot_keys: Vec::new(),
            shard_requests: Vec::new(),
        };
        let Ok(channel) = self.channel(addr) else {
            return unreachable;
        };
        let mut client = AdminClient::new(channel);
        let mut request = Request::new(proto::NodeStatusRequest {});
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        let call = client.node_status(request);
        match tokio::time::timeout(NODE_STATUS_TIMEOUT, call).await {
            Ok(Ok(reply)) => reply.into_inner(),
            _ => unreachable,
        }
    }

    /// The node whose replica leads group `gid` (0: the controller), as
    /// the group's nodes report themselves (NodeStatus, like `status`).
    async fn find_leader_node(
        &self,
        gid: u64,
        authorization: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ) -> Option<(u64, SocketAddr)> {
        let role = if gid == 0 { "controller" } else { "data" };
        let replicas = self.state.group_replicas(gid)?.to_vec();
        for (node_id, _) in replicas {
            let Some(&addr) = self.state.topology.grpc.get(&node_id) else {
                continue;
            };
            let status = self.node_status_of(node_id, addr, authorization).await;
            let leads = status
                .replicas
                .iter()
                .any(|replica| replica.role == role && replica.gid == gid && replica.is_leader);
            if leads {
                return Some((node_id, addr));
            }
        }
        None
    }

    /// The node that leads group `gid` (0: the controller) and its gRPC
    /// address: the hint if this node's table knows it, else by asking the
    /// group's nodes.
    async fn leader_address(
        &self,
        gid: u64,
        leader_hint: Option<u64>,
        authorization: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ) -> Result<(u64, SocketAddr), Status> {
        let hinted = leader_hint.and_then(|node| {
            let addr = self.state.topology.grpc.get(&node)?;
            Some((node, *addr))
        });
        let leader = match hinted {
            Some(leader) => Some(leader),
            None => self.find_leader_node(gid, authorization).await,
        };
        leader.ok_or_else(|| {
            let group = if gid == 0 {
                "the controller group".to_string()
            } else {
                format!("group {gid}")
            };
            details::status(
                Reason::WrongLeader,
                format!(
                    "no node reports leading {group} now (or its leader, node {leader_hint:?}, \
                     is not in this node's [[nodes]] table); retry in a moment, or ask the \
                     leader's node"
                ),
            )
        })
    }

    /// The nodes hosting the controller group's voters, in Raft id order:
    /// from this node's controller replica's configuration (replicas that
    /// joined included, removed ones left out), else from the table.
    fn controller_node_ids(&self) -> Vec<u64> {
        let topology = &self.state.topology;
        match self.state.raft_of(0) {
            Some(raft) => raft
                .membership()
                .1
                .voters
                .iter()
                .filter_map(|&id| topology.node_of_raft_id(0, id))
                .collect(),
            None => topology.controller.iter().map(|(id, _)| *id).collect(),
        }
    }

    /// Runs an operator's membership change of group `gid` here if this
    /// node leads it, then lists the group's voters in the controller.
    /// `Err(Ok(leader))`: this node does not lead; pass the request on to
    /// `leader` (node id, gRPC address).
    async fn change_replicas(
        &self,
        gid: u64,
        change: crate::membership::ReplicaChange,
        catch_up_timeout_ms: u64,
        forwarded: bool,
        authorization: Option<&tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ) -> Result<proto::ReplicasReply, Result<(u64, SocketAddr), Status>> {
        use crate::membership::{CATCH_UP_WAIT_DEFAULT, CATCH_UP_WAIT_MAX, LocalChange};

        let catch_up_wait = match catch_up_timeout_ms {
            0 => CATCH_UP_WAIT_DEFAULT,
            ms if ms > CATCH_UP_WAIT_MAX.as_millis() as u64 => {
                return Err(Err(invalid(format!(
                    "catch_up_timeout_ms {ms} is over {}",
                    CATCH_UP_WAIT_MAX.as_millis()
                ))));
            }
            ms => Duration::from_millis(ms),
        };
        let leader_hint = match self
            .state
            .change_replicas_here(gid, change, catch_up_wait)
            .await
        {
            LocalChange::Done { voters } if gid == 0 => {
                // No configuration lists the controller's replicas: nothing
                // to tell it.
                tracing::info!(?change, "controller replicas changed by an operator");
                return Ok(replicas_reply(voters, 0));
            }
            LocalChange::Done { voters } => {
                let servers: Vec<SocketAddr> = voters.iter().map(|(_, addr)| *addr).collect();
                let config_num = self
                    .state
                    .forwarder
                    .controller()
                    .set_servers(gid, servers)
                    .await
                    .map_err(|error| {
                        let status = Self::refused(error);
                        Err(Status::new(
                            status.code(),
                            format!(
                                "group {gid}'s replicas changed, but the controller was not told \
                                 (its servers are not updated; the same request again tells \
                                 it): {}",
                                status.message()
                            ),
                        ))
                    })?;
                tracing::info!(
                    gid,
                    ?change,
                    config_num,
                    "group replicas changed by an operator"
                );
                return Ok(replicas_reply(voters, config_num));
            }
            LocalChange::Refused(reason) => return Err(Err(invalid(reason))),
            LocalChange::InProgress(reason) => {
                return Err(Err(details::status(Reason::Busy, reason)));
            }
            LocalChange::Failed(reason) => {
                return Err(Err(details::status(Reason::Timeout, reason)));
            }
            LocalChange::NotLeader { leader_node_id } => leader_node_id,
        };
        if forwarded {
            return Err(Err(details::status(
                Reason::WrongLeader,
                format!(
                    "node {} does not lead group {gid} (leader: {leader_hint:?}); not passed on \
                     again",
                    self.state.node_id
                ),
            )));
        }
        Err(self.leader_address(gid, leader_hint, authorization).await)
    }

    /// A request to pass on with the caller's credentials.
    fn pass_on<T>(
        authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
        message: T,
    ) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(value) = authorization {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    fn refused(error: shardctrler::ClerkError) -> Status {
        match error {
            shardctrler::ClerkError::Refused(error) => {
                details::status(Reason::ControllerRefused, error.to_string())
            }
            error @ shardctrler::ClerkError::Timeout { .. } => {
                details::status(Reason::Timeout, error.to_string())
            }
            error @ (shardctrler::ClerkError::SessionConflict { .. }
            | shardctrler::ClerkError::UnexpectedAnswer { .. }) => {
                details::status(Reason::Internal, error.to_string())
            }
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(
        &self,
        request: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusReply>, Status> {
        authorize(&self.state.acl, &request, &["info"], std::iter::empty())?;
        let forwarder = &self.state.forwarder;
        let config = forwarder
            .controller()
            .query(None)
            .await
            .map_err(Self::refused)?;
        let topology = &self.state.topology;
        let nodes = futures::future::join_all(topology.grpc.iter().map(|(&node_id, &addr)| {
            self.node_status_of(node_id, addr, request.metadata().get("authorization"))
        }))
        .await;
        let mut leaders: BTreeMap<u64, String> = BTreeMap::new();
        for node in &nodes {
            for replica in &node.replicas {
                if replica.role == "data" && replica.is_leader {
                    leaders.insert(replica.gid, node.grpc_addr.clone());
                }
            }
        }
        let groups = config
            .groups
            .iter()
            .map(|(&gid, servers)| proto::GroupStatus {
                gid,
                peer_addrs: servers.iter().map(ToString::to_string).collect(),
                leader_grpc_addr: leaders.get(&gid).cloned().unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(proto::StatusReply {
            cluster_id: self.state.cluster_id.clone(),
            config_num: config.num,
            shard_owners: config.shards.clone(),
            groups,
            nodes,
            controller_node_ids: self.controller_node_ids(),
            lost_groups: config
                .lost_groups
                .iter()
                .map(|(&gid, &declared_in)| proto::LostGroup {
                    gid,
                    declared_in_config: declared_in,
                })
                .collect(),
        }))
    }

    async fn node_status(
        &self,
        request: Request<proto::NodeStatusRequest>,
    ) -> Result<Response<proto::NodeStatusReply>, Status> {
        authorize(&self.state.acl, &request, &["info"], std::iter::empty())?;
        Ok(Response::new(self.state.local_status()))
    }

    async fn join(
        &self,
        request: Request<proto::JoinRequest>,
    ) -> Result<Response<proto::ConfigChangeReply>, Status> {
        authorize_admin(&self.state.acl, &request)?;
        let mut groups = BTreeMap::new();
        for group in request.into_inner().groups {
            let servers = group
                .peer_addrs
                .iter()
                .map(|addr| {
                    addr.parse::<SocketAddr>().map_err(|_| {
                        invalid(format!(
                            "group {}: {addr:?} is not an IP address and port",
                            group.gid
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            groups.insert(group.gid, servers);
        }
        let num = self
            .state
            .forwarder
            .controller()
            .join(groups)
            .await
            .map_err(Self::refused)?;
        Ok(Response::new(proto::ConfigChangeReply { config_num: num }))
    }

    async fn leave(
        &self,
        request: Request<proto::LeaveRequest>,
    ) -> Result<Response<proto::ConfigChangeReply>, Status> {
        authorize_admin(&self.state.acl, &request)?;
        let gids = request.into_inner().gids;
        let num = self
            .state
            .forwarder
            .controller()
            .leave(gids)
            .await
            .map_err(Self::refused)?;
        Ok(Response::new(proto::ConfigChangeReply { config_num: num }))
    }

    async fn r#move(
        &self,
        request: Request<proto::MoveRequest>,
    ) -> Result<Response<proto::ConfigChangeReply>, Status> {
        authorize_admin(&self.state.acl, &request)?;
        let request = request.into_inner();
        let shard = usize::try_from(request.shard).map_err(|_| invalid("shard out of range"))?;
        let num = self
            .state
            .forwarder
            .controller()
            .move_shard(shard, request.gid)
            .await
            .map_err(Self::refused)?;
        Ok(Response::new(proto::ConfigChangeReply { config_num: num }))
    }

    async fn transfer_leader(
        &self,
        request: Request<proto::TransferLeaderRequest>,
    ) -> Result<Response<proto::TransferLeaderReply>, Status> {
        use crate::node::LocalTransfer;

        authorize_admin(&self.state.acl, &request)?;
        let authorization = request.metadata().get("authorization").cloned();
        let request = request.into_inner();
        let (gid, to_node_id) = (request.gid, request.to_node_id);
        let leader_hint = match self.state.transfer_leader_here(gid, to_node_id).await {
            LocalTransfer::Done { leader_node_id } => {
                return Ok(Response::new(proto::TransferLeaderReply { leader_node_id }));
            }
            LocalTransfer::NotTakenOver(reason) => {
                return Err(details::status(Reason::Timeout, reason));
            }
            LocalTransfer::Failed(reason) => return Err(invalid(reason)),
            LocalTransfer::NotLeader { leader_node_id } => leader_node_id,
        };
        let group = if gid == 0 {
            "the controller group".to_string()
        } else {
            format!("group {gid}")
        };
        if request.forwarded {
            return Err(details::status(
                Reason::WrongLeader,
                format!(
                    "node {} does not lead {group} (leader: {leader_hint:?}); not passed on again",
                    self.state.node_id
                ),
            ));
        }
        // One hop to the node that leads the group.
        let (leader_node, addr) = self
            .leader_address(gid, leader_hint, authorization.as_ref())
            .await?;
        let mut client = AdminClient::new(self.channel(addr)?);
        let mut forwarded = Request::new(proto::TransferLeaderRequest {
            forwarded: true,
            ..request
        });
        if let Some(value) = authorization {
            forwarded.metadata_mut().insert("authorization", value);
        }
        tracing::debug!(
            gid,
            to_node_id,
            leader_node,
            "leadership transfer passed on"
        );
        client.transfer_leader(forwarded).await
    }

    async fn add_replica(
        &self,
        request: Request<proto::AddReplicaRequest>,
    ) -> Result<Response<proto::ReplicasReply>, Status> {
        authorize_admin(&self.state.acl, &request)?;
        let authorization = request.metadata().get("authorization").cloned();
        let request = request.into_inner();
        let change = crate::membership::ReplicaChange::Add {
            node_id: request.node_id,
            addr: parse_peer_addr(&request.peer_addr)?,
        };
        let (leader_node, addr) = match self
            .change_replicas(
                request.gid,
                change,
                request.catch_up_timeout_ms,
                request.forwarded,
                authorization.as_ref(),
            )
            .await
        {
            Ok(reply) => return Ok(Response::new(reply)),
            Err(forward) => forward?,
        };
        tracing::debug!(gid = request.gid, leader_node, "add-replica passed on");
        let mut client = AdminClient::new(self.channel(addr)?);
        let message = proto::AddReplicaRequest {
            forwarded: true,
            ..request
        };
        client
            .add_replica(Self::pass_on(authorization, message))
            .await
    }

    async fn remove_replica(
        &self,
        request: Request<proto::RemoveReplicaRequest>,
    ) -> Result<Response<proto::ReplicasReply>, Status> {
        authorize_admin(&self.state.acl, &request)?;
        let authorization = request.metadata().get("authorization").cloned();
        let request = request.into_inner();
        let change = crate::membership::ReplicaChange::Remove {
            node_id: request.node_id,
        };
        let (leader_node, addr) = match self
            .change_replicas(
                request.gid,
                change,
                0,
                request.forwarded,
                authorization.as_ref(),
            )
            .await
        {
            Ok(reply) => return Ok(Response::new(reply)),
            Err(forward) => forward?,
        };
        tracing::debug!(gid = request.gid, leader_node, "remove-replica passed on");
        let mut client = AdminClient::new(self.channel(addr)?);
        let message = proto::RemoveReplicaRequest {
            forwarded: true,
            ..request
        };
        client
            .remove_replica(Self::pass_on(authorization, message))
            .await
    }

    async fn replace_replica(
        &self,
        request: Request<proto::ReplaceReplicaRequest>,
    ) -> Result<Response<proto::ReplicasReply>, Status> {
        authorize_admin(&self.state.acl, &request)?;
        let authorization = request.metadata().get("authorization").cloned();
        let request = request.into_inner();
        let change = crate::membership::ReplicaChange::Replace {
            remove_node_id: request.remove_node_id,
            add_node_id: request.add_node_id,
            addr: parse_peer_addr(&request.peer_addr)?,
        };
        let (leader_node, addr) = match self
            .change_replicas(
                request.gid,
                change,
                request.catch_up_timeout_ms,
                request.forwarded,
                authorization.as_ref(),
            )
            .await
        {
            Ok(reply) => return Ok(Response::new(reply)),
            Err(forward) => forward?,
        };
        tracing::debug!(gid = request.gid, leader_node, "replace-replica passed on");
        let mut client = AdminClient::new(self.channel(addr)?);
        let message = proto::ReplaceReplicaRequest {
            forwarded: true,
            ..request
        };
        client
            .replace_replica(Self::pass_on(authorization, message))
            .await
    }

    async fn declare_lost(
        &self,
        request: Request<proto::DeclareLostRequest>,
    ) -> Result<Response<proto::ConfigChangeReply>, Status> {
        authorize_admin(&self.state.acl, &request)?;
        let request = request.into_inner();
        if !request.confirm_data_is_lost {
            return Err(invalid(format!(
                "declaring group {} lost gives up its data for good; set confirm_data_is_lost \
                 to confirm",
                request.gid
            )));
        }
        let num = self
            .state
            .forwarder
            .controller()
            .declare_lost(request.gid)
            .await
            .map_err(Self::refused)?;
        tracing::warn!(
            gid = request.gid,
            config_num = num,
            "group declared lost by an operator: its shards' data is given up"
        );
        Ok(Response::new(proto::ConfigChangeReply { config_num: num }))
    }
}

/// A membership change's answer: the group's voters (node id, peer
/// address) and the configuration that lists them.
fn replicas_reply(voters: Vec<(u64, SocketAddr)>, config_num: u64) -> proto::ReplicasReply {
    proto::ReplicasReply {
        voters: voters
            .into_iter()
            .map(|(node_id, addr)| proto::GroupReplica {
                node_id,
                peer_addr: addr.to_string(),
            })
            .collect(),
        config_num,
    }
}
