//! The HTTP gateway: a REST API, health probes and the OpenAPI document,
//! served by every node that has an `http_port`.
//!
//! ```text
//!  TCP (runtime seam: tokio, or madsim's simulated TCP)
//!   └─ accept (at most max_connections) ─► one task per connection:
//!        hyper HTTP/1.1 ─► axum Router
//!          layers, outermost first:
//!            JSON errors for the body limit (413) and unknown routes
//!            body limit (tower-http RequestBodyLimitLayer)
//!            in-flight limit: over max_in_flight ─► 429 `overloaded`
//!            request timeout (seam time) ─► 503 `timeout`
//!          routes:
//!            /v1/keys/...      keys.rs    ─► Forwarder (like gRPC and RESP)
//!            /v1/cluster, /v1/admin/...   cluster.rs ─► the Admin service
//!            /livez /readyz    health.rs
//!            /v1/openapi.json  openapi.rs (generated from the handlers)
//!            /metrics          observe.rs (Prometheus text)
//!            /, /v1/dashboard, /v1/node, /v1/demo/...   dashboard.rs
//! ```
//!
//! **Users** ([`auth`]): every route but `/livez`, `/readyz` and
//! `/v1/openapi.json` needs a user of the node's ACL (HTTP basic auth, or
//! a bearer token that is the default user's password; none when the
//! default user has no password) and is checked as the Redis command it
//! amounts to: 401 `unauthenticated`, 403 `forbidden`.
//!
//! **TLS** (`HttpConfig::tls`, `[tls]`; not under madsim): HTTPS only,
//! each connection's handshake in its own task, bounded in time.
//!
//! **Errors** are JSON `{"code": "...", "message": "..."}` with a stable
//! `code` (see [`error::ApiError`]): 400 bad input, 404 missing key, 409 a
//! failed condition (CAS, `nx`/`xx`, a non-integer under `incr`), 413 a body
//! over the limit, 429 load shed, 503 no leader reached in time.
//!
//! **Bounds**: connections (`max_connections`; more are closed at once),
//! requests in flight (`max_in_flight`; more get 429 without queueing),
//! request bodies (`max_body_bytes`), and every request's time
//! (`request_timeout`), and the time a client may take to send a
//! request's head (`header_read_timeout`, against slowloris: a client that
//! connects and trickles or sends nothing is closed then). hyper's timer is
//! real tokio's, so under madsim the head has no deadline.

pub mod auth;
pub mod cluster;
pub mod dashboard;
pub mod error;
pub mod health;
pub mod keys;
pub mod observe;
pub mod openapi;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use labrpc::runtime::watch;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::node::NodeState;
use crate::service::AdminService;
use error::ApiError;

/// How a node's HTTP gateway behaves.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Largest request body (a value), in bytes.
    pub max_body_bytes: usize,
    /// Requests handled at once; more are answered 429 at once.
    pub max_in_flight: usize,
    /// Open connections; more are closed on accept.
    pub max_connections: usize,
    /// Longest a request may take before it is answered 503 `timeout`.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request's head (from the
    /// connection's start, or the previous response); a slower one is
    /// closed (slowloris). Not enforced under madsim.
    pub header_read_timeout: Duration,
    /// HTTPS only (`[tls]`, ALPN `http/1.1`); `None`: plain HTTP.
    #[cfg(not(madsim))]
    pub tls: Option<crate::tls::Acceptor>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            // The store's value limit (api::Limits::default()).
            max_body_bytes: 1 << 20,
            max_in_flight: 1024,
            max_connections: 4096,
            request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            #[cfg(not(madsim))]
            tls: None,
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub node: Arc<NodeState>,
    pub admin: Arc<AdminService>,
    pub config: HttpConfig,
    /// Node control, in `distcache demo` only.
    pub demo: Option<dashboard::SharedDemo>,
    in_flight: Arc<Semaphore>,
}

impl AppState {
    pub fn new(node: Arc<NodeState>, config: HttpConfig) -> AppState {
        let admin = Arc::new(AdminService::new(Arc::clone(&node)));
        AppState {
            node,
            admin,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            config,
            demo: None,
        }
    }

    /// Offers node control (`distcache demo`).
    pub fn with_demo(mut self, demo: Option<dashboard::SharedDemo>) -> AppState {
        self.demo = demo;
        self
    }
}

/// The whole gateway as one axum router (usable without a socket).
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(keys::routes())
        .merge(cluster::routes())
        .merge(health::routes())
        .merge(openapi::routes())
        .merge(observe::routes())
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::new(404, "no_route", "no such route") });
    api.layer(middleware::from_fn_with_state(
        state.clone(),
        auth::authenticate,
    ))
    .layer(middleware::from_fn_with_state(
        state.clone(),
        limit_and_time,
    ))
    .layer(tower_http::limit::RequestBodyLimitLayer::new(
        state.config.max_body_bytes,
    ))
    .layer(middleware::map_response(json_errors))
    .with_state(state)
}

/// Sheds load over `max_in_flight` (429) and bounds each request's time
/// (503), in the runtime seam's time.
async fn limit_and_time(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(_permit) = state.in_flight.clone().try_acquire_owned() else {
        return ApiError::new(
            429,
            "overloaded",
            format!(
                "more than {} requests in flight on this node; retry later",
                state.config.max_in_flight
            ),
        )
        .into_response();
    };
    let route = route_label(request.uri().path());
    state.node.metrics.record_http(route);
    let timeout = state.config.request_timeout;
    // Under madsim the scoped future is not provably Send for the layer;
    // simulated HTTP requests count as `internal` there.
    // A caller's W3C `traceparent` header makes the request part of its
    // trace (a malformed one is ignored).
    #[cfg(not(madsim))]
    let run = {
        let trace = request
            .headers()
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .and_then(labrpc::trace::TraceContext::parse_traceparent);
        let run = crate::metrics::FRONTEND.scope("http", next.run(request));
        match trace {
            Some(context) => futures::future::Either::Left(labrpc::trace::scope(context, run)),
            None => futures::future::Either::Right(run),
        }
    };
    #[cfg(madsim)]
    let run = next.run(request);
    match tokio::time::timeout(timeout, run).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            503,
            "timeout",
            format!("no answer within {} ms", timeout.as_millis()),
        )
        .into_response(),
    }
}

/// The route of `path` as a metric label (a fixed set: keys are never
/// labels here).
fn route_label(path: &str) -> &'static str {
    if let Some(rest) = path.strip_prefix("/v1/keys/") {
        return if rest.ends_with("/cas") {
            "/v1/keys/{key}/cas"
        } else if rest.ends_with("/incr") {
            "/v1/keys/{key}/incr"
        } else {
            "/v1/keys/{key}"
        };
    }
    if path.starts_with("/v1/demo/") {
        return "/v1/demo/nodes/{id}/{action}";
    }
    const FIXED: [&str; 12] = [
        "/",
        "/v1/keys",
        "/v1/cluster",
        "/v1/admin/join",
        "/v1/admin/leave",
        "/v1/admin/move",
        "/livez",
        "/readyz",
        "/v1/openapi.json",
        "/metrics",
        "/v1/node",
        "/v1/dashboard",
    ];
    FIXED
        .into_iter()
        .find(|route| *route == path)
        .unwrap_or("other")
}

/// Turns the plain-text answers of layers and extractors (the body limit's
/// 413, a 405, a rejected path or query) into the JSON error shape.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (_, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_string();
    let (code, message) = match status.as_u16() {
        413 => (
            "payload_too_large",
            "the request body is over this node's limit".to_string(),
        ),
        405 => ("method_not_allowed", "method not allowed here".to_string()),
        415 => ("unsupported_media_type", detail),
        422 | 400 => ("bad_request", detail),
        _ => ("error", detail),
    };
    // A JSON body of the wrong shape (axum's 422) is bad input like any
    // other: one status for it, 400, as the API documents.
    let status = if status.as_u16() == 422 {
        400
    } else {
        status.as_u16()
    };
    ApiError::new(status, code, message).into_response()
}

/// A running gateway.
pub struct HttpServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Binds `addr` and serves [`router`]`(state)` until
    /// [`HttpServer::shutdown`].
    pub async fn start(addr: SocketAddr, state: AppState) -> io::Result<HttpServer> {
        let config = state.config.clone();
        let metrics = Arc::clone(&state.node.metrics);
        let app = router(state);
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let connections = Arc::new(Semaphore::new(config.max_connections));
        let task = tokio::spawn(accept_loop(
            listener,
            app,
            config,
            connections,
            metrics,
            stopped,
        ));
        Ok(HttpServer {
            local_addr,
            stop,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets open requests finish (bounded), and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            tracing::warn!("HTTP connections did not close within 5 s");
        }
    }
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it closes or
/// the gateway stops.
async fn serve_connection<S>(
    stream: S,
    service: TowerToHyperService<Router>,
    header_read_timeout: Duration,
    stop: &mut watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // hyper's timer is real tokio's, which does not run under madsim.
    #[cfg_attr(madsim, allow(unused_mut))]
    let mut builder = hyper::server::conn::http1::Builder::new();
    #[cfg(not(madsim))]
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    #[cfg(madsim)]
    let _ = header_read_timeout;
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        biased;
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!("HTTP connection: {error}");
            }
        }
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(3), connection).await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    config: HttpConfig,
    connections: Arc<Semaphore>,
    metrics: Arc<crate::metrics::Metrics>,
    mut stopped: watch::Receiver<bool>,
) {
    let max_connections = config.max_connections;
    let header_read_timeout = config.header_read_timeout;
    let open =
        move |connections: &Semaphore| (max_connections - connections.available_permits()) as u64;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!("HTTP accept: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stopped.clone();
        metrics.observe_clients("http", open(&connections));
        let connections = Arc::clone(&connections);
        let metrics = Arc::clone(&metrics);
        #[cfg(not(madsim))]
        let tls = config.tls.clone();
        tokio::spawn(async move {
            let permit = permit;
            #[cfg(not(madsim))]
            if let Some(tls) = tls {
                match tls.accept(stream).await {
                    Ok(stream) => {
                        serve_connection(stream, service, header_read_timeout, &mut stop).await
                    }
                    Err(error) => tracing::debug!("HTTPS handshake failed: {error}"),
                }
                drop(permit);
                metrics.observe_clients("http", open(&connections));
                return;
            }
            serve_connection(stream, service, header_read_timeout, &mut stop).await;
            drop(permit);
            metrics.observe_clients("http", open(&connections));
        });
    }
    // Wait for the connection tasks to finish (each holds a permit).
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(4), connections.acquire_many(all)).await;
}
