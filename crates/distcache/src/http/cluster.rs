//! `/v1/cluster` and `/v1/admin/{join,leave,move,declare-lost,transfer-leader,
//! add-replica,remove-replica,replace-replica}`: the gRPC `Admin`
//! service's answers as JSON (the same code runs behind both, called
//! in-process here).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use distcache_client::proto;
use distcache_client::proto::admin_server::Admin;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::dashboard::HotKey;
use super::error::{ApiError, ErrorBody};

/// A request to the node's Admin service carrying the HTTP caller's
/// credentials (it authenticates them again, and passes them on to the
/// other nodes it asks).
fn admin_request<T>(headers: &axum::http::HeaderMap, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
    {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/cluster", get(cluster))
        .route("/v1/admin/join", post(join))
        .route("/v1/admin/leave", post(leave))
        .route("/v1/admin/move", post(move_shard))
        .route("/v1/admin/declare-lost", post(declare_lost))
        .route("/v1/admin/transfer-leader", post(transfer_leader))
        .route("/v1/admin/add-replica", post(add_replica))
        .route("/v1/admin/remove-replica", post(remove_replica))
        .route("/v1/admin/replace-replica", post(replace_replica))
}

fn from_status(status: tonic::Status) -> ApiError {
    match status.code() {
        tonic::Code::InvalidArgument => ApiError::bad_input(status.message()),
        tonic::Code::DeadlineExceeded | tonic::Code::Unavailable => {
            ApiError::new(503, "unavailable", status.message())
        }
        _ => ApiError::internal(status.message()),
    }
}

/// One replica on one node.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplicaView {
    /// `controller` or `data`.
    pub role: String,
    /// The data group (0 for the controller).
    pub gid: u64,
    pub is_leader: bool,
    /// It leads, or heard from its group's leader within a minimum election
    /// timeout. False on a replica cut off from its leader (a partition)
    /// and, briefly, during an election.
    pub leader_contact: bool,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// The newest configuration this replica knows.
    pub config_num: u64,
    pub peer_addr: String,
    /// Shards this data replica's group waits for (empty when none).
    pub waiting: Vec<ShardWaitView>,
    /// Shards its group installed empty because their donor was declared
    /// lost.
    pub lost_shards: Vec<LostShardView>,
    /// This replica's own group was declared lost: it serves nothing.
    pub declared_lost: bool,
    /// A data replica's shard stores, summed (null for the controller, and
    /// in reports from nodes too old to send it).
    #[serde(default)]
    pub store: Option<StoreView>,
}

/// A data replica's shard stores, summed over the shards it holds. The
/// figures are replicated: every replica of a group that applied as far
/// reports the same.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StoreView {
    /// Resident keys in memory, expired ones not yet reclaimed included.
    pub keys: u64,
    /// Bytes counted against the memory capacity (keys, values, overhead).
    pub bytes: u64,
    /// Reads that found their key (from either tier) and reads that did not.
    pub hits: u64,
    pub misses: u64,
    /// The group has a disk tier (`[disk_tier] groups`); the other `disk_`
    /// figures are 0 without one.
    pub disk_tier: bool,
    pub disk_keys: u64,
    /// Logical bytes on disk (the memory tier's weights, not file sizes).
    pub disk_bytes: u64,
    /// Of `hits`, those served from disk.
    pub disk_hits: u64,
}

/// A shard a data group waits for.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ShardWaitView {
    pub shard: u64,
    /// The donor group that must hand it over.
    pub waiting_on_group: u64,
    /// The configuration whose migration waits.
    pub waiting_since_config: u64,
    /// How long it has waited, in milliseconds.
    pub waiting_for_ms: u64,
}

/// A shard installed empty: its data went with a lost group.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LostShardView {
    pub shard: u64,
    /// The configuration whose migration gave its data up.
    pub lost_at_config: u64,
    /// The lost group that held the data.
    pub previous_owner: u64,
}

/// A group declared lost.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LostGroupView {
    pub gid: u64,
    pub declared_in_config: u64,
}

impl From<proto::ReplicaStatus> for ReplicaView {
    fn from(replica: proto::ReplicaStatus) -> ReplicaView {
        let role = replica.role;
        ReplicaView {
            role: role.clone(),
            gid: replica.gid,
            is_leader: replica.is_leader,
            leader_contact: replica.leader_contact,
            term: replica.term,
            commit_index: replica.commit_index,
            applied_index: replica.applied_index,
            config_num: replica.config_num,
            peer_addr: replica.peer_addr,
            waiting: replica
                .waiting
                .into_iter()
                .map(|wait| ShardWaitView {
                    shard: wait.shard,
                    waiting_on_group: wait.waiting_on_group,
                    waiting_since_config: wait.waiting_since_config,
                    waiting_for_ms: wait.waiting_for_ms,
                })
                .collect(),
            lost_shards: replica
                .lost_shards
                .into_iter()
                .map(|lost| LostShardView {
                    shard: lost.shard,
                    lost_at_config: lost.lost_at_config,
                    previous_owner: lost.previous_owner,
                })
                .collect(),
            declared_lost: replica.declared_lost,
            store: (role == "data").then_some(StoreView {
                keys: replica.store_keys,
                bytes: replica.store_bytes,
                hits: replica.store_hits,
                misses: replica.store_misses,
                disk_tier: replica.disk_tier,
                disk_keys: replica.disk_keys,
                disk_bytes: replica.disk_bytes,
                disk_hits: replica.disk_hits,
            }),
        }
    }
}

/// One node as the node answering saw it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    pub node_id: u64,
    pub grpc_addr: String,
    /// False when the node did not answer within a second (down or cut off).
    pub reachable: bool,
    pub replicas: Vec<ReplicaView>,
    /// The keys most requested through this node, most first (a decayed
    /// estimate; keys cut to 64 characters, as in `/metrics`).
    pub hot_keys: Vec<HotKey>,
}

/// A data group of the current configuration.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    pub gid: u64,
    pub peer_addrs: Vec<String>,
    /// The gRPC address of the node hosting its leader; empty if none is known.
    pub leader_grpc_addr: String,
}

/// The cluster at a glance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    pub cluster_id: String,
    /// The controller's latest configuration number.
    pub config_num: u64,
    /// The owning group of each shard, by shard number (0: none).
    pub shards: Vec<u64>,
    pub groups: Vec<GroupView>,
    pub nodes: Vec<NodeView>,
    pub controller_node_ids: Vec<u64>,
    /// Groups declared lost (their data is gone; the gids never rejoin).
    pub lost_groups: Vec<LostGroupView>,
}

impl From<proto::StatusReply> for ClusterView {
    fn from(reply: proto::StatusReply) -> ClusterView {
        ClusterView {
            cluster_id: reply.cluster_id,
            config_num: reply.config_num,
            shards: reply.shard_owners,
            groups: reply
                .groups
                .into_iter()
                .map(|group| GroupView {
                    gid: group.gid,
                    peer_addrs: group.peer_addrs,
                    leader_grpc_addr: group.leader_grpc_addr,
                })
                .collect(),
            nodes: reply
                .nodes
                .into_iter()
                .map(|node| NodeView {
                    node_id: node.node_id,
                    grpc_addr: node.grpc_addr,
                    reachable: node.reachable,
                    replicas: node.replicas.into_iter().map(ReplicaView::from).collect(),
                    hot_keys: node
                        .hot_keys
                        .into_iter()
                        .map(|hot| HotKey {
                            key: crate::metrics::key_label(&hot.key),
                            count: hot.requests,
                        })
                        .collect(),
                })
                .collect(),
            controller_node_ids: reply.controller_node_ids,
            lost_groups: reply
                .lost_groups
                .into_iter()
                .map(|lost| LostGroupView {
                    gid: lost.gid,
                    declared_in_config: lost.declared_in_config,
                })
                .collect(),
        }
    }
}

/// Groups, replicas, leaders, terms, commit and apply indexes, the shard map.
#[utoipa::path(
    get,
    path = "/v1/cluster",
    tag = "cluster",
    responses(
        (status = 200, description = "The cluster", body = ClusterView),
        (status = 429, description = "Load shed (`overloaded`)", body = ErrorBody),
        (status = 503, description = "The controller did not answer in time", body = ErrorBody),
    )
)]
pub async fn cluster(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<ClusterView>, ApiError> {
    let reply = state
        .admin
        .status(admin_request(&headers, proto::StatusRequest {}))
        .await
        .map_err(from_status)?;
    Ok(Json(reply.into_inner().into()))
}

/// The configuration a change produced.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigChange {
    pub config_num: u64,
}

/// A group to add.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JoinGroup {
    pub gid: u64,
    /// The replicas' data peer addresses (`ip:port`).
    pub peer_addrs: Vec<String>,
}

/// Groups to add.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JoinRequest {
    pub groups: Vec<JoinGroup>,
}

/// Groups to remove.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeaveRequest {
    pub gids: Vec<u64>,
}

/// A shard to give to a group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MoveRequest {
    pub shard: u64,
    pub gid: u64,
}

/// Adds data groups (the controller rebalances shards onto them).
#[utoipa::path(
    post,
    path = "/v1/admin/join",
    tag = "admin",
    request_body = JoinRequest,
    responses(
        (status = 200, description = "Applied", body = ConfigChange),
        (status = 400, description = "Refused (bad address, already joined, ...)", body = ErrorBody),
        (status = 415, description = "Not a JSON body", body = ErrorBody),
        (status = 503, description = "The controller did not answer in time", body = ErrorBody),
    )
)]
pub async fn join(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<JoinRequest>,
) -> Result<Json<ConfigChange>, ApiError> {
    let groups = request
        .groups
        .into_iter()
        .map(|group| proto::GroupMembers {
            gid: group.gid,
            peer_addrs: group.peer_addrs,
        })
        .collect();
    let reply = state
        .admin
        .join(admin_request(&headers, proto::JoinRequest { groups }))
        .await
        .map_err(from_status)?;
    Ok(Json(ConfigChange {
        config_num: reply.into_inner().config_num,
    }))
}

/// Removes data groups (their shards move to the others).
#[utoipa::path(
    post,
    path = "/v1/admin/leave",
    tag = "admin",
    request_body = LeaveRequest,
    responses(
        (status = 200, description = "Applied", body = ConfigChange),
        (status = 400, description = "Refused (unknown group, ...)", body = ErrorBody),
        (status = 415, description = "Not a JSON body", body = ErrorBody),
        (status = 503, description = "The controller did not answer in time", body = ErrorBody),
    )
)]
pub async fn leave(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<LeaveRequest>,
) -> Result<Json<ConfigChange>, ApiError> {
    let reply = state
        .admin
        .leave(admin_request(
            &headers,
            proto::LeaveRequest { gids: request.gids },
        ))
        .await
        .map_err(from_status)?;
    Ok(Json(ConfigChange {
        config_num: reply.into_inner().config_num,
    }))
}

/// Gives one shard to one group.
#[utoipa::path(
    post,
    path = "/v1/admin/move",
    tag = "admin",
    request_body = MoveRequest,
    responses(
        (status = 200, description = "Applied", body = ConfigChange),
        (status = 400, description = "Refused (no such shard or group)", body = ErrorBody),
        (status = 415, description = "Not a JSON body", body = ErrorBody),
        (status = 503, description = "The controller did not answer in time", body = ErrorBody),
    )
)]
pub async fn move_shard(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<MoveRequest>,
) -> Result<Json<ConfigChange>, ApiError> {
    let reply = state
        .admin
        .r#move(admin_request(
            &headers,
            proto::MoveRequest {
                shard: request.shard,
                gid: request.gid,
            },
        ))
        .await
        .map_err(from_status)?;
    Ok(Json(ConfigChange {
        config_num: reply.into_inner().config_num,
    }))
}

/// A group to declare lost.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeclareLostRequest {
    pub gid: u64,
    /// Must be true: the group's data, acknowledged writes included, is
    /// given up for good.
    #[serde(default)]
    pub confirm_data_is_lost: bool,
}

/// Declares a data group lost for good (every replica gone): it is removed,
/// the shards it should hand over come back EMPTY on their new owners, and
/// its gid may never join again. Idempotent.
#[utoipa::path(
    post,
    path = "/v1/admin/declare-lost",
    tag = "admin",
    request_body = DeclareLostRequest,
    responses(
        (status = 200, description = "Applied (or already lost: the latest configuration)", body = ConfigChange),
        (status = 400, description = "Refused (no confirmation, unknown group, the last group, ...)", body = ErrorBody),
        (status = 415, description = "Not a JSON body", body = ErrorBody),
        (status = 503, description = "The controller did not answer in time", body = ErrorBody),
    )
)]
pub async fn declare_lost(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<DeclareLostRequest>,
) -> Result<Json<ConfigChange>, ApiError> {
    let reply = state
        .admin
        .declare_lost(admin_request(
            &headers,
            proto::DeclareLostRequest {
                gid: request.gid,
                confirm_data_is_lost: request.confirm_data_is_lost,
            },
        ))
        .await
        .map_err(from_status)?;
    Ok(Json(ConfigChange {
        config_num: reply.into_inner().config_num,
    }))
}

/// A leadership transfer to ask for.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferLeaderRequest {
    /// The data group; 0 names the controller group.
    pub gid: u64,
    /// The node whose replica of the group is to lead.
    pub to_node_id: u64,
}

/// Who leads the group after a transfer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferLeaderAnswer {
    pub leader_node_id: u64,
}

/// Hands the leadership of a group (0: the controller group) to its
/// replica on one node. Any node takes the request and passes it on to
/// the group's leader; it answers once the target leads.
#[utoipa::path(
    post,
    path = "/v1/admin/transfer-leader",
    tag = "admin",
    request_body = TransferLeaderRequest,
    responses(
        (status = 200, description = "The target leads the group", body = TransferLeaderAnswer),
        (status = 400, description = "Refused (no such group, or the node hosts no replica of it)", body = ErrorBody),
        (status = 415, description = "Not a JSON body", body = ErrorBody),
        (status = 503, description = "No leader found, or the target did not take over within 2 s (the old leader leads on)", body = ErrorBody),
    )
)]
pub async fn transfer_leader(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<TransferLeaderRequest>,
) -> Result<Json<TransferLeaderAnswer>, ApiError> {
    let reply = state
        .admin
        .transfer_leader(admin_request(
            &headers,
            proto::TransferLeaderRequest {
                gid: request.gid,
                to_node_id: request.to_node_id,
                forwarded: false,
            },
        ))
        .await
        .map_err(from_status)?;
    Ok(Json(TransferLeaderAnswer {
        leader_node_id: reply.into_inner().leader_node_id,
    }))
}

/// A replica to add to a group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddReplicaRequest {
    /// The group; 0 names the controller group.
    pub gid: u64,
    /// The node to add (started empty with `joining = true`).
    pub node_id: u64,
    /// Its replica's peer address (`host:port`: its data port, or its
    /// controller port for gid 0); omitted: from the `[[nodes]]` table of
    /// the node that takes the request.
    #[serde(default)]
    pub peer_addr: Option<String>,
    /// How long it may take to catch up; omitted: 30000.
    #[serde(default)]
    pub catch_up_timeout_ms: Option<u64>,
}

/// A replica to remove from a group (gid 0: the controller group).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RemoveReplicaRequest {
    pub gid: u64,
    pub node_id: u64,
}

/// A group's replica to replace by a new node (gid 0: the controller
/// group).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplaceReplicaRequest {
    pub gid: u64,
    /// The node whose replica leaves.
    pub remove_node_id: u64,
    /// The node that joins (as in add-replica).
    pub add_node_id: u64,
    #[serde(default)]
    pub peer_addr: Option<String>,
    #[serde(default)]
    pub catch_up_timeout_ms: Option<u64>,
}

/// One voter of a group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupReplicaView {
    pub node_id: u64,
    /// Its replica's peer address.
    pub peer_addr: String,
}

/// A group's voters after a membership change, and the controller
/// configuration that lists them as its servers (0 for the controller
/// group, which no configuration lists).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplicasAnswer {
    pub voters: Vec<GroupReplicaView>,
    pub config_num: u64,
}

impl From<proto::ReplicasReply> for ReplicasAnswer {
    fn from(reply: proto::ReplicasReply) -> ReplicasAnswer {
        ReplicasAnswer {
            voters: reply
                .voters
                .into_iter()
                .map(|voter| GroupReplicaView {
                    node_id: voter.node_id,
                    peer_addr: voter.peer_addr,
                })
                .collect(),
            config_num: reply.config_num,
        }
    }
}

/// Adds a replica to a group (gid 0: the controller group): the node
/// (started empty with `joining = true`) joins as a learner, catches up
/// and becomes a voter; the controller then lists a data group's voters.
/// Any node takes the request and passes it on to the group's leader.
#[utoipa::path(
    post,
    path = "/v1/admin/add-replica",
    tag = "admin",
    request_body = AddReplicaRequest,
    responses(
        (status = 200, description = "The node is a voter of the group", body = ReplicasAnswer),
        (status = 400, description = "Refused, nothing changed (unknown group, a node that was an original replica, an unknown address)", body = ErrorBody),
        (status = 415, description = "Not a JSON body", body = ErrorBody),
        (status = 503, description = "Another change is under way, no leader found, or the node did not catch up in time (then it was removed again)", body = ErrorBody),
    )
)]
pub async fn add_replica(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<AddReplicaRequest>,
) -> Result<Json<ReplicasAnswer>, ApiError> {
    let reply = state
        .admin
        .add_replica(admin_request(
            &headers,
            proto::AddReplicaRequest {
                gid: request.gid,
                node_id: request.node_id,
                peer_addr: request.peer_addr.unwrap_or_default(),
                catch_up_timeout_ms: request.catch_up_timeout_ms.unwrap_or(0),
                forwarded: false,
            },
        ))
        .await
        .map_err(from_status)?;
    Ok(Json(reply.into_inner().into()))
}

/// Removes a replica from a group (gid 0: the controller group; refused
/// for its last voter).
#[utoipa::path(
    post,
    path = "/v1/admin/remove-replica",
    tag = "admin",
    request_body = RemoveReplicaRequest,
    responses(
        (status = 200, description = "The node's replica left the group", body = ReplicasAnswer),
        (status = 400, description = "Refused, nothing changed (unknown group or node, the last voter)", body = ErrorBody),
        (status = 415, description = "Not a JSON body", body = ErrorBody),
        (status = 503, description = "Another change is under way, or no leader found", body = ErrorBody),
    )
)]
pub async fn remove_replica(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<RemoveReplicaRequest>,
) -> Result<Json<ReplicasAnswer>, ApiError> {
    let reply = state
        .admin
        .remove_replica(admin_request(
            &headers,
            proto::RemoveReplicaRequest {
                gid: request.gid,
                node_id: request.node_id,
                forwarded: false,
            },
        ))
        .await
        .map_err(from_status)?;
    Ok(Json(reply.into_inner().into()))
}

/// Replaces a group's replica by a new node (gid 0: the controller
/// group): add-replica of the new one, then remove-replica of the old
/// one, both checked first.
#[utoipa::path(
    post,
    path = "/v1/admin/replace-replica",
    tag = "admin",
    request_body = ReplaceReplicaRequest,
    responses(
        (status = 200, description = "The new node is a voter, the old one left", body = ReplicasAnswer),
        (status = 400, description = "Refused, nothing changed", body = ErrorBody),
        (status = 415, description = "Not a JSON body", body = ErrorBody),
        (status = 503, description = "Another change is under way, no leader found, or the new node did not catch up in time", body = ErrorBody),
    )
)]
pub async fn replace_replica(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<ReplaceReplicaRequest>,
) -> Result<Json<ReplicasAnswer>, ApiError> {
    let reply = state
        .admin
        .replace_replica(admin_request(
            &headers,
            proto::ReplaceReplicaRequest {
                gid: request.gid,
                remove_node_id: request.remove_node_id,
                add_node_id: request.add_node_id,
                peer_addr: request.peer_addr.unwrap_or_default(),
                catch_up_timeout_ms: request.catch_up_timeout_ms.unwrap_or(0),
                forwarded: false,
            },
        ))
        .await
        .map_err(from_status)?;
    Ok(Json(reply.into_inner().into()))
}
