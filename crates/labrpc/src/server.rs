//! Serving: a [`Router`] of typed handlers behind the one gRPC service.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Status;
use tracing::Instrument;

use crate::DEFAULT_MAX_MESSAGE_BYTES;
use crate::rpc::{Rpc, decode, encode};
use crate::security::{self, PeerSecurity};
use crate::trace::{self, TraceContext};
use crate::transport;

/// A handler erased to bytes in, bytes out.
type Handler = Arc<dyn Fn(Bytes) -> BoxFuture<'static, Result<Vec<u8>, Status>> + Send + Sync>;

/// The handlers of one server, keyed by [`Rpc::NAME`].
///
/// One router can carry several services (a shardkv node serves its Raft
/// peers and its clerks on one port): the method name selects the handler.
#[derive(Default, Clone)]
pub struct Router {
    handlers: BTreeMap<&'static str, Handler>,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for requests of type `R`.
    ///
    /// # Panics
    /// If a handler for `R::NAME` is already registered: two handlers for one
    /// method is a programming error, not something to resolve at run time.
    pub fn add<R, F, Fut>(&mut self, handler: F) -> &mut Self
    where
        R: Rpc,
        F: Fn(R) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R::Reply> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: Handler = Arc::new(move |payload: Bytes| {
            let handler = Arc::clone(&handler);
            Box::pin(async move {
                let request: R = decode(&payload).map_err(|error| {
                    Status::invalid_argument(format!(
                        "request of {} did not decode: {error}",
                        R::NAME
                    ))
                })?;
                let reply = handler(request).await;
                encode(&reply).map_err(|error| {
                    Status::internal(format!("reply of {} did not encode: {error}", R::NAME))
                })
            })
        });
        let previous = self.handlers.insert(R::NAME, erased);
        assert!(
            previous.is_none(),
            "two handlers registered for method {}",
            R::NAME
        );
        self
    }

    /// The registered method names, in order.
    pub fn methods(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.handlers.keys().copied()
    }
}

/// Settings of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request or reply payload accepted, in bytes. A request over it
    /// is refused before decoding; a reply over it is replaced by an error.
    pub max_message_bytes: usize,
    /// Who may call (see [`crate::security`]); the default admits anyone.
    pub security: PeerSecurity,
    /// Serve call streams (the calls of [`Rpc::STREAMED`] methods share
    /// one stream per caller; production only). False answers a stream's
    /// opening with `Unimplemented`, as a server of a release from before
    /// streams does, and callers then send every call alone. Default true.
    pub call_streams: bool,
    /// HTTP/2 pings on each connection from a caller (production only): a
    /// connection whose caller stops answering is closed, ending its call
    /// streams. None: no pings.
    pub keepalive: Option<crate::KeepAlive>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            security: PeerSecurity::default(),
            call_streams: true,
            keepalive: Some(crate::KeepAlive::default()),
        }
    }
}

/// Checks sizes, counts deliveries (in simulation) and runs the handler.
/// Shared by both transports, so limits and errors are the same in both.
pub(crate) struct Dispatcher {
    router: Router,
    config: ServerConfig,
    local_addr: SocketAddr,
}

impl Dispatcher {
    #[cfg(not(madsim))]
    pub(crate) fn max_message_bytes(&self) -> usize {
        self.config.max_message_bytes
    }

    #[cfg(not(madsim))]
    pub(crate) fn keepalive(&self) -> Option<crate::KeepAlive> {
        self.config.keepalive
    }

    #[cfg(not(madsim))]
    pub(crate) fn serves_call_streams(&self) -> bool {
        self.config.call_streams
    }

    #[cfg(not(madsim))]
    pub(crate) fn security(&self) -> &PeerSecurity {
        &self.config.security
    }

    /// Admits a call under the server's peer policy (see
    /// [`PeerSecurity::admit`]): the caller's node, or a
    /// `PERMISSION_DENIED` status.
    #[cfg(not(madsim))]
    pub(crate) fn admit(
        &self,
        from: Option<SocketAddr>,
        cluster: Option<&str>,
        node: Option<&str>,
        certificate: Option<&[u8]>,
    ) -> Result<Option<u64>, Status> {
        self.config
            .security
            .admit(from, cluster, node, certificate)
            .map_err(|reason| {
                Status::permission_denied(format!(
                    "peer call refused by {}: {reason}",
                    self.local_addr
                ))
            })
    }

    /// Runs `method`'s handler on `payload`. With a `trace` context from
    /// the caller, the handler runs inside a `labrpc.server` span carrying
    /// its trace id, and inside a trace scope (see [`crate::trace`]).
    /// `caller` (an admitted peer's node) is [`crate::caller`] inside the
    /// handler.
    pub(crate) async fn dispatch(
        &self,
        method: &str,
        payload: Bytes,
        trace: Option<TraceContext>,
        caller: Option<u64>,
    ) -> Result<Vec<u8>, Status> {
        let limit_bytes = self.config.max_message_bytes;
        if payload.len() > limit_bytes {
            tracing::warn!(server = %self.local_addr, %method, size_bytes = payload.len(), limit_bytes, "request over the size limit refused");
            return Err(Status::resource_exhausted(format!(
                "request of {method} is {} bytes, over the server's {limit_bytes}-byte limit",
                payload.len()
            )));
        }
        let Some(handler) = self.router.handlers.get(method) else {
            return Err(Status::unimplemented(format!(
                "no handler for method {method}"
            )));
        };
        #[cfg(madsim)]
        crate::sim::record_delivery(self.local_addr);
        let reply = match trace {
            Some(parent) => {
                let context = parent.child();
                let span = tracing::info_span!(
                    "labrpc.server",
                    method = %method,
                    trace_id = %context.trace_id_hex(),
                    span_id = %context.span_id_hex(),
                    parent_span_id = %parent.span_id_hex(),
                );
                let handled = security::as_caller(caller, handler(payload));
                trace::scope(context, handled.instrument(span)).await?
            }
            None => security::as_caller(caller, handler(payload)).await?,
        };
        if reply.len() > limit_bytes {
            tracing::warn!(server = %self.local_addr, %method, size_bytes = reply.len(), limit_bytes, "reply over the size limit dropped");
            return Err(Status::resource_exhausted(format!(
                "reply of {method} is {} bytes, over the server's {limit_bytes}-byte limit",
                reply.len()
            )));
        }
        Ok(reply)
    }
}

/// A running server. Dropping the handle detaches it: it serves until the
/// runtime ends or, in simulation, until its node is killed. Call
/// [`Server::shutdown`] to stop it.
pub struct Server {
    local_addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), String>>,
}

impl Server {
    /// Starts serving `router` at `addr` on a task of its own.
    ///
    /// `addr` may use port 0; [`Server::local_addr`] tells the port chosen.
    /// In simulation the IP must be the node's own.
    pub async fn start(
        addr: SocketAddr,
        router: Router,
        config: ServerConfig,
    ) -> std::io::Result<Server> {
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let signal = async {
            if shutdown_signal.await.is_err() {
                // The handle was dropped without a shutdown: keep serving
                // for as long as the runtime (in simulation, the node) lives,
                // as a detached task would.
                std::future::pending::<()>().await;
            }
        };
        let (local_addr, listener) = transport::bind(addr).await?;
        let dispatcher = Arc::new(Dispatcher {
            router,
            config,
            local_addr,
        });
        let task = tokio::spawn(transport::serve(dispatcher, listener, signal));
        Ok(Server {
            local_addr,
            shutdown,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting calls and waits for the serving task to end. An error
    /// says why serving had already stopped.
    pub async fn shutdown(self) -> Result<(), String> {
        let _ = self.shutdown.send(());
        match self.task.await {
            Ok(result) => result,
            // The task was aborted or panicked; either way it has ended.
            Err(_) => Ok(()),
        }
    }
}

/// The [`Server`] of a replica whose handle is cloned (every clone of a
/// shardkv or controller replica shares one): set once after the start,
/// stopped by the first [`SharedServer::shutdown`]. Stopping releases the
/// port, so that the same node can start again in the same process (a
/// demo's node restarted from the dashboard).
#[derive(Clone, Default)]
pub struct SharedServer {
    slot: Arc<std::sync::Mutex<Option<Server>>>,
}

impl SharedServer {
    /// Holds `server` until shutdown (replacing one held before, which then
    /// serves detached).
    pub fn set(&self, server: Server) {
        *self
            .slot
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(server);
    }

    /// Stops the server held, if any, and waits for its task to end.
    pub async fn shutdown(&self) -> Result<(), String> {
        let server = self
            .slot
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        match server {
            Some(server) => server.shutdown().await,
            None => Ok(()),
        }
    }
}
