//! Simulation transport: madsim's network, one connection per call.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use madsim::net::Endpoint;
use tonic::Status;

use crate::server::Dispatcher;

/// What travels on a simulated connection. Payloads are the same bincode
/// bytes as in production; madsim moves them without copying.
struct WireRequest {
    method: String,
    payload: Bytes,
}

type WireReply = Result<Vec<u8>, Status>;

/// In simulation binding is done by the serving task itself.
pub(crate) type Listener = Endpoint;

pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<(SocketAddr, Listener)> {
    let endpoint = Endpoint::bind(addr).await?;
    Ok((endpoint.local_addr()?, endpoint))
}

pub(crate) async fn serve(
    dispatcher: Arc<Dispatcher>,
    endpoint: Listener,
    signal: impl Future<Output = ()>,
) -> Result<(), String> {
    tokio::pin!(signal);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut signal => return Ok(()),
            accepted = endpoint.accept1() => accepted,
        };
        let Ok((sender, mut receiver, _caller)) = accepted else {
            // The endpoint itself failed (closed under us): stop serving.
            return Err("simulated endpoint closed".to_string());
        };
        let dispatcher = Arc::clone(&dispatcher);
        // One task per call: a slow handler or a stalled caller never holds
        // up the accept loop.
        tokio::spawn(async move {
            let Ok(message) = receiver.recv().await else {
                return;
            };
            let Ok(request) = message.downcast::<WireRequest>() else {
                return;
            };
            let reply: WireReply = dispatcher
                .dispatch(&request.method, request.payload, None, None)
                .await;
            // The caller may be gone (timed out, killed): nothing to do then.
            let _ = sender.send(Box::new(reply)).await;
        });
    }
}

/// Calls open a fresh simulated connection each; there is nothing to keep.
#[derive(Clone)]
pub(crate) struct Connection {
    peer: SocketAddr,
}

impl Connection {
    pub(crate) fn new(
        peer: SocketAddr,
        _connect_timeout: Duration,
        _max_message_bytes: usize,
        _max_in_flight: usize,
        _keepalive: Option<crate::KeepAlive>,
        _security: &crate::security::PeerSecurity,
    ) -> Result<Connection, String> {
        Ok(Connection { peer })
    }

    /// Calls `method` on a fresh connection; `_streamed` changes nothing
    /// here (there is no stream to share on the simulated wire).
    pub(crate) async fn call(
        &self,
        method: &'static str,
        payload: Vec<u8>,
        _streamed: bool,
    ) -> Result<Bytes, Status> {
        let unavailable = |error: std::io::Error| Status::unavailable(error.to_string());
        let endpoint = Endpoint::connect(self.peer).await.map_err(unavailable)?;
        let (sender, mut receiver) = endpoint.connect1(self.peer).await.map_err(unavailable)?;
        let request = WireRequest {
            method: method.to_string(),
            payload: payload.into(),
        };
        sender.send(Box::new(request)).await.map_err(unavailable)?;
        let message = receiver.recv().await.map_err(unavailable)?;
        let reply = message
            .downcast::<WireReply>()
            .map_err(|_| Status::internal("simulated peer sent an unexpected message type"))?;
        (*reply).map(Bytes::from)
    }
}
