//! Production transport: gRPC (tonic) over TCP, or over mutual TLS when
//! the node's [`PeerSecurity`] has [`crate::PeerTls`].
//!
//! With TLS the server accepts each connection in an accept task, runs its
//! handshake on a task of its own (at most [`MAX_HANDSHAKES`] at once,
//! each bounded by [`HANDSHAKE_TIMEOUT`]) and hands finished streams to
//! tonic; a failed handshake (plain TCP, another CA, no certificate) is a
//! [`Refusal::TlsHandshake`]. The client dials through a connector that
//! runs the TLS handshake under tonic's channel, checking the server's
//! certificate for the peer's IP address.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::client::lock;
use crate::security::{CLUSTER_HEADER, NODE_HEADER, PeerSecurity, Refusal};
use crate::server::Dispatcher;
use crate::trace::{self, TraceContext};

/// Longest a peer may take to finish a TLS handshake (either side).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress at once on one server; more connections
/// wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// The W3C trace context header, as gRPC metadata.
const TRACEPARENT_HEADER: &str = "traceparent";

/// Room for the gRPC envelope (method name, field tags) around a payload, so
/// that labrpc's own size checks, with their clear messages, fire before
/// tonic's.
const FRAMING_OVERHEAD_BYTES: usize = 4096;

/// The generated gRPC service (one method, `Call`, carrying opaque payloads).
#[allow(clippy::all, unreachable_pub)]
pub(super) mod proto {
    tonic::include_proto!("labrpc");
}

use proto::lab_rpc_client::LabRpcClient;
use proto::lab_rpc_server::{LabRpc, LabRpcServer};
use proto::{CallReply, CallRequest, StreamCall, StreamReply};

use super::call_stream::{self, CallStream, MAX_STREAMED_PAYLOAD_BYTES};

pub(crate) type Listener = tokio::net::TcpListener;

/// Streams a client may reset before this server accepted them, per
/// connection, before the connection is closed (see `serve`). An honest
/// client resets at most its in-flight bound per call deadline; four
/// times that covers a server that cannot accept for four deadlines in a
/// row, and still closes a connection that floods it with resets.
const MAX_PENDING_ACCEPT_RESETS: usize = 4 * crate::client::DEFAULT_MAX_IN_FLIGHT_PER_PEER;

pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<(SocketAddr, Listener)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok((listener.local_addr()?, listener))
}

struct GrpcService {
    dispatcher: Arc<Dispatcher>,
    /// Turns true when the server starts shutting down: its call streams
    /// end then (see `call_stream`).
    closing: tokio::sync::watch::Receiver<bool>,
}

impl GrpcService {
    /// Admits a call or a stream under the server's peer policy, from its
    /// headers and the connection's certificate: the caller's node.
    fn admit<T>(&self, request: &Request<T>) -> Result<Option<u64>, Status> {
        let header = |name: &str| {
            request
                .metadata()
                .get(name)
                .and_then(|value| value.to_str().ok())
        };
        // The leaf certificate the connection presented (mutual TLS only).
        let certificates = request.peer_certs();
        let certificate = certificates
            .as_ref()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.as_ref());
        self.dispatcher.admit(
            request.remote_addr(),
            header(CLUSTER_HEADER),
            header(NODE_HEADER),
            certificate,
        )
    }
}

type ReplyStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<StreamReply, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl LabRpc for GrpcService {
    type StreamStream = ReplyStream;

    async fn call(&self, request: Request<CallRequest>) -> Result<Response<CallReply>, Status> {
        // A malformed or non-ASCII header is ignored: the call is served,
        // untraced.
        let trace = request
            .metadata()
            .get(TRACEPARENT_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(TraceContext::parse_traceparent);
        let caller = self.admit(&request)?;
        let CallRequest { method, payload } = request.into_inner();
        let reply = self
            .dispatcher
            .dispatch(&method, payload, trace, caller)
            .await?;
        Ok(Response::new(CallReply {
            payload: reply.into(),
        }))
    }

    async fn stream(
        &self,
        request: Request<tonic::Streaming<StreamCall>>,
    ) -> Result<Response<ReplyStream>, Status> {
        if !self.dispatcher.serves_call_streams() {
            return Err(Status::unimplemented("this server serves no call streams"));
        }
        let caller = self.admit(&request)?;
        let replies = call_stream::serve_stream(
            Arc::clone(&self.dispatcher),
            caller,
            request.into_inner(),
            self.closing.clone(),
        );
        Ok(Response::new(Box::pin(replies)))
    }
}

pub(crate) async fn serve(
    dispatcher: Arc<Dispatcher>,
    listener: Listener,
    signal: impl Future<Output = ()>,
) -> Result<(), String> {
    // tonic's own limits sit just above ours so our clearer errors fire first.
    let limit_bytes = dispatcher.max_message_bytes() + FRAMING_OVERHEAD_BYTES;
    let security = dispatcher.security().clone();
    let dispatcher_keepalive = dispatcher.keepalive();
    let (close, closing) = tokio::sync::watch::channel(false);
    let signal = async move {
        signal.await;
        let _ = close.send(true);
    };
    let service = LabRpcServer::new(GrpcService {
        dispatcher,
        closing,
    })
    .max_decoding_message_size(limit_bytes)
    .max_encoding_message_size(limit_bytes);
    // h2 answers a client that resets more than 20 streams the server had
    // not yet accepted with GOAWAY (its guard against "rapid reset"
    // floods), which fails every call on the connection. Our clients reset
    // a stream for each call they give up on (a deadline passed while this
    // node was busy: a large snapshot, a loaded machine), so under load an
    // honest peer hit it and every call it had in flight failed at once.
    // The bound stays, above what one honest client reaches
    // (`MAX_PENDING_ACCEPT_RESETS`).
    let keepalive = dispatcher_keepalive;
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(keepalive.map(|keepalive| keepalive.interval))
        .http2_keepalive_timeout(keepalive.map(|keepalive| keepalive.timeout))
        .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_ACCEPT_RESETS))
        .add_service(service);
    let Some(tls) = security.tls() else {
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        return router
            .serve_with_incoming_shutdown(incoming, signal)
            .await
            .map_err(|error| error.to_string());
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.server));
    let (streams, accept) = accept_tls(listener, acceptor, security);
    let served = router
        .serve_with_incoming_shutdown(streams, signal)
        .await
        .map_err(|error| error.to_string());
    // Releases the port: the listener lives in the accept task.
    accept.abort();
    served
}

type TlsServerStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Accepts connections and runs their TLS handshakes, each on a task of
/// its own; the stream yields the connections that finished one.
fn accept_tls(
    listener: Listener,
    acceptor: tokio_rustls::TlsAcceptor,
    security: PeerSecurity,
) -> (
    impl futures::Stream<Item = std::io::Result<TlsServerStream>>,
    tokio::task::JoinHandle<()>,
) {
    let (ready, streams) = tokio::sync::mpsc::channel::<std::io::Result<TlsServerStream>>(64);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    let accept = tokio::spawn(async move {
        loop {
            let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                return;
            };
            let (stream, from) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: try again soon.
                    tracing::debug!("labrpc accept: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let ready = ready.clone();
            let security = security.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                match handshake.await {
                    Ok(Ok(stream)) => {
                        let _ = ready.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => security.note_refusal(
                        Refusal::TlsHandshake,
                        Some(from),
                        &format!("TLS handshake failed: {error}"),
                    ),
                    Err(_elapsed) => security.note_refusal(
                        Refusal::TlsHandshake,
                        Some(from),
                        "TLS handshake timed out",
                    ),
                }
                drop(permit);
            });
        }
    });
    let streams = futures::stream::unfold(streams, |mut streams| async move {
        streams.recv().await.map(|stream| (stream, streams))
    });
    (streams, accept)
}

/// A multiplexed HTTP/2 channel to one peer. tonic connects lazily and
/// reconnects after failures; the client also drops a connection after a
/// transport error so that a wedged one is never reused.
#[derive(Clone)]
pub(crate) struct Connection {
    client: LabRpcClient<Channel>,
    /// This node's claimed identity, sent on every call and stream.
    identity: Option<Claim>,
    /// One stream per streamed method (so that one method's slow handlers
    /// never hold another's frames), opened on the method's first call and
    /// again after it broke. As many as the streamed methods in the code.
    streams: Arc<std::sync::Mutex<BTreeMap<&'static str, Arc<CallStream>>>>,
    /// Set once the peer answered a stream's opening with
    /// `Unimplemented` (a version without streams): every call goes alone.
    no_streams: Arc<std::sync::atomic::AtomicBool>,
    /// Calls queued on a stream at most: the client's in-flight bound.
    stream_capacity: usize,
}

impl Connection {
    pub(crate) fn new(
        peer: SocketAddr,
        connect_timeout: Duration,
        max_message_bytes: usize,
        max_in_flight: usize,
        keepalive: Option<crate::KeepAlive>,
        security: &PeerSecurity,
    ) -> Result<Connection, String> {
        let mut endpoint = Endpoint::from_shared(format!("http://{peer}"))
            .map_err(|error| format!("bad address: {error}"))?
            .connect_timeout(connect_timeout);
        if let Some(keepalive) = keepalive {
            endpoint = endpoint
                .http2_keep_alive_interval(keepalive.interval)
                .keep_alive_timeout(keepalive.timeout)
                .keep_alive_while_idle(true);
        }
        let channel = match security.tls() {
            None => endpoint.connect_lazy(),
            Some(tls) => {
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.client));
                endpoint.connect_with_connector_lazy(tower::service_fn(
                    move |_: tonic::codegen::http::Uri| dial_tls(peer, connector.clone()),
                ))
            }
        };
        let limit_bytes = max_message_bytes + FRAMING_OVERHEAD_BYTES;
        let client = LabRpcClient::new(channel)
            .max_decoding_message_size(limit_bytes)
            .max_encoding_message_size(limit_bytes);
        let identity = match security.identity() {
            None => None,
            Some(identity) => Some(Claim {
                cluster: identity
                    .cluster_id
                    .parse()
                    .map_err(|_| format!("cluster id {:?} is not ASCII", identity.cluster_id))?,
                node: MetadataValue::from(identity.node_id),
            }),
        };
        Ok(Connection {
            client,
            identity,
            streams: Arc::default(),
            no_streams: Arc::default(),
            stream_capacity: max_in_flight,
        })
    }

    /// Calls `method` with `payload`: on the peer's call stream if
    /// `streamed` and the payload is small enough, else as a call of its
    /// own.
    pub(crate) async fn call(
        &self,
        method: &'static str,
        payload: Vec<u8>,
        streamed: bool,
    ) -> Result<Bytes, Status> {
        let payload = Bytes::from(payload);
        if streamed
            && payload.len() <= MAX_STREAMED_PAYLOAD_BYTES
            && !self.no_streams.load(Ordering::Relaxed)
        {
            let stream = self.call_stream(method);
            match stream.call(method, payload.clone(), trace::current()).await {
                Err(_) if stream.unsupported() => {
                    // An older peer: this call and the later ones go alone.
                    self.no_streams.store(true, Ordering::Relaxed);
                }
                answer => return answer,
            }
        }
        let mut request = Request::new(CallRequest {
            method: method.to_string(),
            payload,
        });
        // The caller's span is the remote side's parent.
        if let Some(context) = trace::current()
            && let Ok(value) = context.to_traceparent().parse()
        {
            request.metadata_mut().insert(TRACEPARENT_HEADER, value);
        }
        if let Some(claim) = &self.identity {
            claim.stamp(&mut request);
        }
        let reply = self.client.clone().call(request).await?;
        Ok(reply.into_inner().payload)
    }

    /// `method`'s open call stream, or a new one if there is none or it
    /// broke.
    fn call_stream(&self, method: &'static str) -> Arc<CallStream> {
        let mut streams = lock(&self.streams);
        match streams.get(method) {
            Some(open) if !open.is_closed() => Arc::clone(open),
            _ => {
                let opened = Arc::new(CallStream::open(
                    self.client.clone(),
                    self.identity.clone(),
                    self.stream_capacity,
                ));
                streams.insert(method, Arc::clone(&opened));
                opened
            }
        }
    }
}

/// A node's claimed identity as gRPC metadata values.
#[derive(Clone)]
pub(super) struct Claim {
    cluster: MetadataValue<Ascii>,
    node: MetadataValue<Ascii>,
}

impl Claim {
    /// Puts the claim in `request`'s headers (a call's, or a stream's).
    pub(super) fn stamp<T>(&self, request: &mut Request<T>) {
        let metadata = request.metadata_mut();
        metadata.insert(CLUSTER_HEADER, self.cluster.clone());
        metadata.insert(NODE_HEADER, self.node.clone());
    }
}

/// Opens a TCP connection to `peer` and runs the client side of the TLS
/// handshake, checking the server's certificate for `peer`'s IP address.
async fn dial_tls(
    peer: SocketAddr,
    connector: tokio_rustls::TlsConnector,
) -> std::io::Result<hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>
{
    let stream = tokio::net::TcpStream::connect(peer).await?;
    stream.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::IpAddress(peer.ip().into());
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, stream))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
        })??;
    Ok(hyper_util::rt::TokioIo::new(stream))
}
