//! The live dashboard: `/` (one self-contained page, no external assets),
//! the data it polls (`/v1/dashboard`, built from every node's
//! `/v1/node`), and, in `distcache demo` only, stopping and starting nodes.
//!
//! ```text
//!  browser ─ every 1 s ─► GET /v1/dashboard (on the node serving the page)
//!                            controller's configuration (shard map, groups)
//!                            + GET /v1/node on every node (800 ms each, at
//!                              once; no answer: the node is shown down)
//!  the page computes ops/s and p99 from the differences between polls of
//!  each node's operation count and latency bucket counts
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::cluster::ReplicaView;
use super::error::{ApiError, ErrorBody};
use crate::metrics::{HOT_KEYS_EXPORTED, LATENCY_BOUNDS_SECONDS, key_label};

/// How long `/v1/dashboard` waits for each node.
pub const NODE_REPORT_TIMEOUT: Duration = Duration::from_millis(800);
/// Largest `/v1/node` answer read from a peer.
pub const MAX_NODE_REPORT_BYTES: usize = 1 << 20;

const PAGE: &str = include_str!("dashboard.html");

/// Stops and starts the nodes of a demo (only `distcache demo` has one).
pub trait DemoControl: Send + Sync {
    /// Begins stopping `node_id`; `Err((status, code, message))` if it cannot.
    fn stop(&self, node_id: u64) -> Result<(), (u16, &'static str, String)>;
    /// Begins starting `node_id` again on its data directory.
    fn start(&self, node_id: u64) -> Result<(), (u16, &'static str, String)>;
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/v1/node", get(node))
        .route("/v1/dashboard", get(dashboard))
        .route("/v1/demo/nodes/{id}/{action}", post(demo_action))
}

async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE))
}

/// One shard held by this node's data replica.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ShardReport {
    pub shard: u64,
    /// Serving, Pulling, Confirming, Offering or Parked.
    pub state: String,
    pub keys: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    /// The disk tier (0 without one; absent in older nodes' reports): keys
    /// and logical bytes on disk, and of `hits` those served from disk.
    #[serde(default)]
    pub disk_keys: u64,
    #[serde(default)]
    pub disk_bytes: u64,
    #[serde(default)]
    pub disk_hits: u64,
}

/// A key and its recent request count.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct HotKey {
    pub key: String,
    pub count: u64,
}

/// What one node knows about itself.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeReport {
    pub node_id: u64,
    pub replicas: Vec<ReplicaView>,
    /// Operations through this node's forwarder since it started.
    pub operations: u64,
    /// Their latency bucket counts (bounds in `/v1/dashboard`; the last
    /// bucket is over the largest bound).
    pub latency_buckets: Vec<u64>,
    pub hot_keys: Vec<HotKey>,
    pub shards: Vec<ShardReport>,
}

/// This node's replicas, operation counts, hot keys and shards.
#[utoipa::path(
    get,
    path = "/v1/node",
    tag = "cluster",
    responses((status = 200, description = "This node", body = NodeReport))
)]
pub async fn node(State(state): State<AppState>) -> Json<NodeReport> {
    Json(local_report(&state))
}

fn local_report(state: &AppState) -> NodeReport {
    let node = &state.node;
    let status = node.local_status();
    let (operations, latency_buckets) = node.metrics.operations();
    NodeReport {
        node_id: node.node_id,
        replicas: status.replicas.into_iter().map(ReplicaView::from).collect(),
        operations,
        latency_buckets,
        hot_keys: node
            .metrics
            .hot_keys(HOT_KEYS_EXPORTED)
            .into_iter()
            .map(|(key, count)| HotKey {
                key: key_label(&key),
                count,
            })
            .collect(),
        shards: node
            .shard_report()
            .into_iter()
            .map(|(shard, state, stats)| ShardReport {
                shard: shard as u64,
                state,
                keys: stats.entries,
                bytes: stats.bytes,
                hits: stats.hits,
                misses: stats.misses,
                disk_keys: stats.disk_entries,
                disk_bytes: stats.disk_bytes,
                disk_hits: stats.disk_hits,
            })
            .collect(),
    }
}

/// A node as the dashboard shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardNode {
    pub node_id: u64,
    /// The data group it hosts a replica of.
    pub group: Option<u64>,
    /// Whether it hosts a controller replica.
    pub controller: bool,
    /// It answered `/v1/node` in time.
    pub up: bool,
    /// It answered, but none of its replicas is in contact with its group's
    /// leader (`ReplicaView::leader_contact`): it is cut off from its peers
    /// by a partition (or, for an election's length, has no leader yet).
    pub cut_off: bool,
    pub report: Option<NodeReport>,
}

/// A group as the dashboard shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardGroup {
    pub gid: u64,
    /// The node whose replica leads it (none known: null).
    pub leader_node_id: Option<u64>,
    /// The highest term its reachable replicas report.
    pub term: Option<u64>,
    /// Shards it owns in the current configuration.
    pub shards: u64,
}

/// Everything the dashboard draws.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardView {
    pub cluster_id: String,
    /// The node that answered.
    pub node_id: u64,
    pub config_num: u64,
    /// The owning group of each shard.
    pub shards: Vec<u64>,
    pub groups: Vec<DashboardGroup>,
    pub nodes: Vec<DashboardNode>,
    pub latency_bounds_seconds: Vec<f64>,
    /// Stop and start buttons are offered (`distcache demo`).
    pub demo: bool,
}

/// The cluster for the dashboard: configuration, every node's report.
#[utoipa::path(
    get,
    path = "/v1/dashboard",
    tag = "cluster",
    responses(
        (status = 200, description = "The cluster", body = DashboardView),
        (status = 429, description = "Load shed (`overloaded`)", body = ErrorBody),
    )
)]
pub async fn dashboard(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Json<DashboardView> {
    // The peers' reports are asked with the caller's own credentials.
    let authorization = headers.get(header::AUTHORIZATION).cloned();
    let node = &state.node;
    node.forwarder.refresh().await;
    let config = node.forwarder.routing();
    let reports = futures::future::join_all(node.topology.grpc.keys().map(|&node_id| {
        let state = state.clone();
        let authorization = authorization.clone();
        async move {
            if node_id == state.node.node_id {
                return (node_id, Some(local_report(&state)));
            }
            let Some(&addr) = state.node.http_peers.get(&node_id) else {
                return (node_id, None);
            };
            #[cfg(not(madsim))]
            let tls = state.node.peer_tls.as_ref().map(|peer| peer.http.clone());
            #[cfg(madsim)]
            let tls = None;
            let report =
                tokio::time::timeout(NODE_REPORT_TIMEOUT, fetch_report(addr, authorization, tls))
                    .await
                    .ok()
                    .flatten();
            (node_id, report)
        }
    }))
    .await;
    let controller_ids: Vec<u64> = node.topology.controller.iter().map(|(id, _)| *id).collect();
    let mut group_of: BTreeMap<u64, u64> = BTreeMap::new();
    for (&gid, replicas) in &node.topology.groups {
        for (id, _) in replicas {
            group_of.insert(*id, gid);
        }
    }
    let nodes: Vec<DashboardNode> = reports
        .into_iter()
        .map(|(node_id, report)| DashboardNode {
            node_id,
            group: group_of.get(&node_id).copied(),
            controller: controller_ids.contains(&node_id),
            up: report.is_some(),
            cut_off: report.as_ref().is_some_and(is_cut_off),
            report,
        })
        .collect();
    let mut gids: Vec<u64> = config.groups.keys().copied().collect();
    for gid in node.topology.groups.keys() {
        if !gids.contains(gid) {
            gids.push(*gid);
        }
    }
    gids.sort_unstable();
    let groups = gids
        .into_iter()
        .map(|gid| {
            let data_replicas = nodes.iter().filter_map(|node| {
                let report = node.report.as_ref()?;
                let replica = report
                    .replicas
                    .iter()
                    .find(|replica| replica.role == "data" && replica.gid == gid)?;
                Some((node.node_id, replica))
            });
            let mut leader = None;
            let mut term = None;
            for (node_id, replica) in data_replicas {
                term = term.max(Some(replica.term));
                if replica.is_leader
                    && leader.is_none_or(|(_, leader_term)| replica.term > leader_term)
                {
                    leader = Some((node_id, replica.term));
                }
            }
            DashboardGroup {
                gid,
                leader_node_id: leader.map(|(node_id, _)| node_id),
                term,
                shards: config.shards.iter().filter(|owner| **owner == gid).count() as u64,
            }
        })
        .collect();
    Json(DashboardView {
        cluster_id: node.cluster_id.clone(),
        node_id: node.node_id,
        config_num: config.num,
        shards: config.shards.clone(),
        groups,
        nodes,
        latency_bounds_seconds: LATENCY_BOUNDS_SECONDS.to_vec(),
        demo: state.demo.is_some(),
    })
}

/// A node that answers but whose replicas all lost their leader: a node
/// with no replica is never cut off.
fn is_cut_off(report: &NodeReport) -> bool {
    !report.replicas.is_empty()
        && report
            .replicas
            .iter()
            .all(|replica| !replica.leader_contact)
}

/// TLS towards the other nodes: `None` when they serve plain HTTP,
/// `Some(None)` when they serve HTTPS but this node has no CA to check
/// them with.
#[cfg(not(madsim))]
type PeerTls = Option<Option<std::sync::Arc<rustls::ClientConfig>>>;
#[cfg(madsim)]
type PeerTls = Option<Option<()>>;

/// `GET /v1/node` on a peer, over the runtime seam's TCP (TLS when the
/// nodes serve it).
async fn fetch_report(
    addr: SocketAddr,
    authorization: Option<axum::http::HeaderValue>,
    tls: PeerTls,
) -> Option<NodeReport> {
    #[cfg(not(madsim))]
    if let Some(config) = tls {
        let stream = crate::tls::connect(config?, addr).await.ok()?;
        return fetch_report_on(stream, addr, authorization).await;
    }
    #[cfg(madsim)]
    let _: PeerTls = tls;
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    fetch_report_on(stream, addr, authorization).await
}

async fn fetch_report_on<S>(
    stream: S,
    addr: SocketAddr,
    authorization: Option<axum::http::HeaderValue>,
) -> Option<NodeReport>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    let driver = tokio::spawn(connection);
    let mut request = hyper::Request::get("/v1/node")
        .header(header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .ok()?;
    if let Some(value) = authorization {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let response = sender.send_request(request).await.ok();
    let body = match response {
        Some(response) if response.status() == StatusCode::OK => {
            http_body_util::Limited::new(response.into_body(), MAX_NODE_REPORT_BYTES)
                .collect()
                .await
                .ok()
                .map(|collected| collected.to_bytes())
        }
        _ => None,
    };
    driver.abort();
    serde_json::from_slice(&body?).ok()
}

/// Demo only: stops (`stop`) or restarts (`start`) one node. Answers at
/// once (202); the change happens in the background and shows on the
/// dashboard.
#[utoipa::path(
    post,
    path = "/v1/demo/nodes/{id}/{action}",
    tag = "demo",
    params(
        ("id" = u64, Path, description = "The node id"),
        ("action" = String, Path, description = "`stop` or `start`"),
    ),
    responses(
        (status = 202, description = "Under way", body = super::health::Probe),
        (status = 400, description = "Unknown action", body = ErrorBody),
        (status = 404, description = "Not a demo (`not_demo`) or no such node (`no_node`)", body = ErrorBody),
        (status = 409, description = "Already stopped or running (`already`)", body = ErrorBody),
    )
)]
pub async fn demo_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(u64, String)>,
) -> Result<(StatusCode, Json<super::health::Probe>), ApiError> {
    let Some(demo) = &state.demo else {
        return Err(ApiError::new(
            404,
            "not_demo",
            "node control is only offered by `distcache demo`",
        ));
    };
    let result = match action.as_str() {
        "stop" => demo.stop(id),
        "start" => demo.start(id),
        other => {
            return Err(ApiError::bad_input(format!(
                "unknown action {other:?}: stop or start"
            )));
        }
    };
    result.map_err(|(status, code, message)| ApiError::new(status, code, message))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(super::health::Probe {
            status: format!("{action} of node {id} under way"),
        }),
    ))
}

/// Keeps `Arc<dyn DemoControl>` printable in `AppState`'s debug output.
pub type SharedDemo = Arc<dyn DemoControl>;
