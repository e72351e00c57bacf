//! Kubernetes-style probes: `/livez` (the process serves HTTP) and
//! `/readyz` (see [`crate::node::NodeState::readiness`]).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
}

/// A probe that passed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Probe {
    /// `ok`.
    pub status: String,
}

/// The process is up and serves HTTP.
#[utoipa::path(
    get,
    path = "/livez",
    tag = "health",
    responses((status = 200, description = "Alive", body = Probe))
)]
pub async fn livez() -> Json<Probe> {
    Json(Probe {
        status: "ok".into(),
    })
}

/// This node's replicas know their leaders and have applied what is
/// committed, and no shard this node must serve is still arriving.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Probe),
        (status = 503, description = "Not ready (`not_ready`; the message says why)", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Probe>, ApiError> {
    state.node.forwarder.refresh().await;
    match state.node.readiness() {
        Ok(()) => Ok(Json(Probe {
            status: "ok".into(),
        })),
        Err(reason) => Err(ApiError::new(503, "not_ready", reason)),
    }
}
