//! Production transport: gRPC (tonic) over TCP.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::server::Dispatcher;
use crate::trace::{self, TraceContext};

/// The W3C trace context header, as gRPC metadata.
const TRACEPARENT_HEADER: &str = "traceparent";

/// Room for the gRPC envelope (method name, field tags) around a payload, so
/// that labrpc's own size checks, with their clear messages, fire before
/// tonic's.
const FRAMING_OVERHEAD_BYTES: usize = 4096;

/// The generated gRPC service (one method, `Call`, carrying opaque payloads).
#[allow(clippy::all, unreachable_pub)]
mod proto {
    tonic::include_proto!("labrpc");
}

use proto::lab_rpc_client::LabRpcClient;
use proto::lab_rpc_server::{LabRpc, LabRpcServer};
use proto::{CallReply, CallRequest};

pub(crate) type Listener = tokio::net::TcpListener;

pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<(SocketAddr, Listener)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok((listener.local_addr()?, listener))
}

struct GrpcService {
    dispatcher: Arc<Dispatcher>,
}

#[tonic::async_trait]
impl LabRpc for GrpcService {
    async fn call(&self, request: Request<CallRequest>) -> Result<Response<CallReply>, Status> {
        // A malformed or non-ASCII header is ignored: the call is served,
        // untraced.
        let trace = request
            .metadata()
            .get(TRACEPARENT_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(TraceContext::parse_traceparent);
        let CallRequest { method, payload } = request.into_inner();
        let reply = self.dispatcher.dispatch(&method, payload, trace).await?;
        Ok(Response::new(CallReply {
            payload: reply.into(),
        }))
    }
}

pub(crate) async fn serve(
    dispatcher: Arc<Dispatcher>,
    listener: Listener,
    signal: impl Future<Output = ()>,
) -> Result<(), String> {
    // tonic's own limits sit just above ours so our clearer errors fire first.
    let limit_bytes = dispatcher.max_message_bytes() + FRAMING_OVERHEAD_BYTES;
    let service = LabRpcServer::new(GrpcService { dispatcher })
        .max_decoding_message_size(limit_bytes)
        .max_encoding_message_size(limit_bytes);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, signal)
        .await
        .map_err(|error| error.to_string())
}

/// A multiplexed HTTP/2 channel to one peer. tonic connects lazily and
/// reconnects after failures; the client also drops a connection after a
/// transport error so that a wedged one is never reused.
#[derive(Clone)]
pub(crate) struct Connection {
    client: LabRpcClient<Channel>,
}

impl Connection {
    pub(crate) fn new(
        peer: SocketAddr,
        connect_timeout: Duration,
        max_message_bytes: usize,
    ) -> Result<Connection, String> {
        let endpoint = Endpoint::from_shared(format!("http://{peer}"))
            .map_err(|error| format!("bad address: {error}"))?
            .connect_timeout(connect_timeout);
        let limit_bytes = max_message_bytes + FRAMING_OVERHEAD_BYTES;
        let client = LabRpcClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(limit_bytes)
            .max_encoding_message_size(limit_bytes);
        Ok(Connection { client })
    }

    pub(crate) async fn call(
        &self,
        method: &'static str,
        payload: Vec<u8>,
    ) -> Result<Bytes, Status> {
        let mut request = Request::new(CallRequest {
            method: method.to_string(),
            payload: payload.into(),
        });
        // The caller's span is the remote side's parent.
        if let Some(context) = trace::current()
            && let Ok(value) = context.to_traceparent().parse()
        {
            request.metadata_mut().insert(TRACEPARENT_HEADER, value);
        }
        let reply = self.client.clone().call(request).await?;
        Ok(reply.into_inner().payload)
    }
}
