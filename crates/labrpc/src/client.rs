//! Calling: [`Client`] sends typed requests to peers by address.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tonic::Code;

use crate::DEFAULT_MAX_MESSAGE_BYTES;
use crate::error::RpcError;
use crate::rpc::{Rpc, decode, encode};
use crate::security::PeerSecurity;
use crate::transport::Connection;

/// [`ClientConfig::max_in_flight_per_peer`] unless set.
pub const DEFAULT_MAX_IN_FLIGHT_PER_PEER: usize = 256;

/// Settings of a client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Deadline of a call made with [`Client::call`]: connecting, waiting for
    /// an in-flight slot, the call and (in simulation) the network's delays.
    pub timeout: Duration,
    /// Deadline for opening a connection to a peer.
    pub connect_timeout: Duration,
    /// Calls to one peer that may be in flight at once; more wait (within
    /// their deadline) for a slot.
    pub max_in_flight_per_peer: usize,
    /// Peers remembered at once; past it an idle peer's connection is closed.
    pub max_peers: usize,
    /// Largest request or reply payload, in bytes.
    pub max_message_bytes: usize,
    /// Who this node is on its calls, and mutual TLS (see
    /// [`crate::security`]); the default calls anonymously over TCP.
    pub security: PeerSecurity,
    /// HTTP/2 pings on each peer connection (production only): a
    /// connection whose peer stops answering is closed, so calls
    /// reconnect instead of timing out on it one by one. None: no pings.
    pub keepalive: Option<KeepAlive>,
}

/// HTTP/2 keepalive of a peer connection: a ping every `interval`, the
/// connection closed if one goes unanswered for `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for KeepAlive {
    /// A ping every 5 s, 10 s to answer: a silent peer's connection is
    /// closed within 15 s, where TCP alone takes many minutes.
    fn default() -> Self {
        KeepAlive {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_millis(500),
            max_in_flight_per_peer: DEFAULT_MAX_IN_FLIGHT_PER_PEER,
            max_peers: 1024,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            security: PeerSecurity::default(),
            keepalive: Some(KeepAlive::default()),
        }
    }
}

/// One peer: its connection (made lazily, dropped after a transport error so
/// the next call reconnects) and its in-flight bound.
struct Peer {
    connection: Mutex<Option<Connection>>,
    in_flight: Semaphore,
}

struct ClientInner {
    config: ClientConfig,
    peers: Mutex<BTreeMap<SocketAddr, Arc<Peer>>>,
}

/// Sends typed requests. Cheap to clone; clones share connections and
/// in-flight bounds. Usable from many tasks at once.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new(ClientConfig::default())
    }
}

impl Client {
    /// # Panics
    /// If the config has a zero bound.
    pub fn new(config: ClientConfig) -> Client {
        assert!(
            config.max_in_flight_per_peer > 0,
            "max_in_flight_per_peer must be positive"
        );
        assert!(config.max_peers > 0, "max_peers must be positive");
        assert!(
            config.max_message_bytes > 0,
            "max_message_bytes must be positive"
        );
        Client {
            inner: Arc::new(ClientInner {
                config,
                peers: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Calls `R`'s handler at `peer` with the default deadline.
    pub async fn call<R: Rpc>(&self, peer: SocketAddr, request: &R) -> Result<R::Reply, RpcError> {
        self.call_with_timeout(peer, request, self.inner.config.timeout)
            .await
    }

    /// Calls `R`'s handler at `peer`; fails with [`RpcError::Timeout`] if no
    /// reply arrives within `timeout`.
    pub async fn call_with_timeout<R: Rpc>(
        &self,
        peer: SocketAddr,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Reply, RpcError> {
        let method = R::NAME;
        let payload = encode(request).map_err(|error| RpcError::Codec {
            peer,
            method,
            detail: format!("request did not encode: {error}"),
        })?;
        self.check_size(peer, method, "request", payload.len())?;
        let delivery = self.deliver(peer, method, payload, R::STREAMED);
        let reply = match tokio::time::timeout(timeout, delivery).await {
            Ok(reply) => reply?,
            Err(_elapsed) => {
                return Err(RpcError::Timeout {
                    peer,
                    method,
                    timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                });
            }
        };
        decode(&reply).map_err(|error| RpcError::Codec {
            peer,
            method,
            detail: format!("reply did not decode: {error}"),
        })
    }

    #[cfg(not(madsim))]
    async fn deliver(
        &self,
        peer: SocketAddr,
        method: &'static str,
        payload: Vec<u8>,
        streamed: bool,
    ) -> Result<Bytes, RpcError> {
        self.transmit(peer, method, payload, streamed).await
    }

    /// The simulated wire has no streams: every call goes alone, through
    /// the fault layer.
    #[cfg(madsim)]
    async fn deliver(
        &self,
        peer: SocketAddr,
        method: &'static str,
        payload: Vec<u8>,
        _streamed: bool,
    ) -> Result<Bytes, RpcError> {
        crate::sim::deliver(self, peer, method, payload).await
    }

    /// Sends bytes over gRPC (real or simulated) and returns the reply's
    /// bytes; `streamed` puts a small call on the peer's call stream
    /// ([`Rpc::STREAMED`]).
    pub(crate) async fn transmit(
        &self,
        peer: SocketAddr,
        method: &'static str,
        payload: Vec<u8>,
        streamed: bool,
    ) -> Result<Bytes, RpcError> {
        let peer_state = self.peer(peer);
        let _slot =
            peer_state
                .in_flight
                .acquire()
                .await
                .map_err(|_closed| RpcError::Unreachable {
                    peer,
                    method,
                    reason: "client is shutting down".to_string(),
                })?;
        let connection = self.connection(peer, &peer_state, method)?;
        match connection.call(method, payload, streamed).await {
            Ok(payload) => {
                self.check_size(peer, method, "reply", payload.len())?;
                Ok(payload)
            }
            Err(status) => {
                let error = status_to_error(peer, method, &status);
                if matches!(error, RpcError::Unreachable { .. }) {
                    // Reconnect on the next call rather than reuse a channel
                    // that may be wedged on a dead connection.
                    *lock(&peer_state.connection) = None;
                }
                Err(error)
            }
        }
    }

    /// Refuses a request or reply over the client's size limit.
    fn check_size(
        &self,
        peer: SocketAddr,
        method: &'static str,
        what: &str,
        size_bytes: usize,
    ) -> Result<(), RpcError> {
        let limit_bytes = self.inner.config.max_message_bytes;
        if size_bytes <= limit_bytes {
            return Ok(());
        }
        Err(RpcError::TooLarge {
            peer,
            method,
            detail: format!(
                "{what} is {size_bytes} bytes, over the client's {limit_bytes}-byte limit"
            ),
        })
    }

    fn peer(&self, addr: SocketAddr) -> Arc<Peer> {
        let mut peers = lock(&self.inner.peers);
        if let Some(peer) = peers.get(&addr) {
            return Arc::clone(peer);
        }
        if peers.len() >= self.inner.config.max_peers {
            let max_in_flight = self.inner.config.max_in_flight_per_peer;
            let idle = peers
                .iter()
                .find(|(_, peer)| peer.in_flight.available_permits() == max_in_flight)
                .map(|(addr, _)| *addr);
            if let Some(idle) = idle {
                peers.remove(&idle);
            }
            // If every peer is busy the map grows past the bound for a moment;
            // refusing the call instead would turn load into failures.
        }
        let peer = Arc::new(Peer {
            connection: Mutex::new(None),
            in_flight: Semaphore::new(self.inner.config.max_in_flight_per_peer),
        });
        peers.insert(addr, Arc::clone(&peer));
        peer
    }

    fn connection(
        &self,
        addr: SocketAddr,
        peer: &Peer,
        method: &'static str,
    ) -> Result<Connection, RpcError> {
        let mut connection = lock(&peer.connection);
        if let Some(existing) = connection.as_ref() {
            return Ok(existing.clone());
        }
        let config = &self.inner.config;
        let created = Connection::new(
            addr,
            config.connect_timeout,
            config.max_message_bytes,
            config.max_in_flight_per_peer,
            config.keepalive,
            &config.security,
        )
        .map_err(|reason| RpcError::Unreachable {
            peer: addr,
            method,
            reason,
        })?;
        *connection = Some(created.clone());
        Ok(created)
    }
}

/// Locks a mutex whose critical sections cannot leave its data half
/// updated (single map operations), so a poisoned lock is still
/// consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How tonic's message for an HTTP/2 protocol error begins
/// (`Status::from_h2_error`).
const H2_ERROR_PREFIX: &str = "h2 protocol error";

fn status_to_error(peer: SocketAddr, method: &'static str, status: &tonic::Status) -> RpcError {
    let message = status.message().to_string();
    match status.code() {
        Code::Unimplemented => RpcError::NoSuchMethod { peer, method },
        // tonic gives an HTTP/2 error of the connection (a GOAWAY with
        // ENHANCE_YOUR_CALM, say) the same code as an oversized message:
        // the call was lost with its connection, it was not too large.
        Code::ResourceExhausted if status.message().starts_with(H2_ERROR_PREFIX) => {
            RpcError::Unreachable {
                peer,
                method,
                reason: describe_with_sources(status),
            }
        }
        Code::ResourceExhausted | Code::OutOfRange => RpcError::TooLarge {
            peer,
            method,
            detail: message,
        },
        Code::InvalidArgument => RpcError::Codec {
            peer,
            method,
            detail: message,
        },
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Aborted => {
            RpcError::Unreachable {
                peer,
                method,
                reason: describe_with_sources(status),
            }
        }
        code => RpcError::Remote {
            peer,
            method,
            code: format!("{code:?}"),
            message,
        },
    }
}

/// The status message followed by its chain of causes: "transport error"
/// alone does not tell a refused connection from a reset one.
fn describe_with_sources(status: &tonic::Status) -> String {
    let mut description = if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_string()
    };
    let mut source = std::error::Error::source(status);
    // Bounded: real cause chains are a handful long.
    for _ in 0..8 {
        let Some(cause) = source else { break };
        description.push_str(": ");
        description.push_str(&cause.to_string());
        source = cause.source();
    }
    description
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    #[test]
    fn a_connection_lost_to_an_http2_error_is_unreachable_not_too_large() {
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("address");
        let goaway = tonic::Status::new(
            Code::ResourceExhausted,
            "h2 protocol error: http2 error: connection error received: too_many_internal_resets",
        );
        assert!(
            matches!(
                status_to_error(peer, "m", &goaway),
                RpcError::Unreachable { .. }
            ),
            "{:?}",
            status_to_error(peer, "m", &goaway)
        );
        let oversized = tonic::Status::new(
            Code::ResourceExhausted,
            "Error, decoded message length too large: found 9 bytes, the limit is: 8 bytes",
        );
        assert!(matches!(
            status_to_error(peer, "m", &oversized),
            RpcError::TooLarge { .. }
        ));
    }
}
