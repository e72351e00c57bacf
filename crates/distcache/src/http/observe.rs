//! `/metrics`: the node's registry in the OpenMetrics text format (gauges
//! read from the replicas first; see [`crate::metrics`]).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// The OpenMetrics text format (which Prometheus scrapes; not in the
/// OpenAPI document: it is not JSON).
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.node.observe();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.node.metrics.encode(),
    )
}
