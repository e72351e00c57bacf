//! The RESP listener: redis-cli, redis-py and redis-benchmark talk to any
//! node as they talk to Redis.
//!
//! ```text
//!  TCP ─► accept (max clients) ─► connection task (one per client)
//!           read ─► Decoder (bounded) ─► requests ─► Session::handle
//!                                                     │ connection commands
//!                                                     │ answered at once
//!                                                     ▼
//!                                     Action::Execute ─► execute.rs ─► Forwarder
//!                                     (a pipeline runs in waves of commands on
//!                                      distinct keys, concurrently: one round
//!                                      trip per wave, not per command)
//!           write ◄─ replies, in request order, in the session's RESP version
//! ```
//!
//! **Cluster mode** (`RespConfig::cluster`, `cluster.rs`): before a
//! command with keys is queued, a key whose slot another group owns is
//! answered `-MOVED` (keys of several slots: `-CROSSSLOT`), and the
//! `CLUSTER` subcommands describe the groups. Proxy mode (the default)
//! answers every key here. Multi-key writes: `multikey.rs`.
//!
//! The protocol itself (codec, command table, per-connection state) is the
//! sans-IO `resp` crate; this module is sockets, buffers and execution.
//!
//! **Users**: each connection starts as the default user, authenticated
//! only if that user needs no password; `AUTH`/`HELLO ... AUTH` switch
//! users, and the session refuses with `-NOAUTH`/`-NOPERM` before a
//! command reaches execution (`resp::acl`, docs/security.md).
//!
//! **TLS** (`RespConfig::tls`, not under madsim): each connection's
//! handshake runs in its task, bounded by `tls::HANDSHAKE_TIMEOUT`; a
//! client that fails it (plaintext, an unknown CA) is closed unanswered.
//!
//! **Bounds**: at most `max_clients` connections (more get Redis's
//! `-ERR max number of clients reached` and are closed); a connection's
//! input holds at most one frame in progress (the decoder's limits) plus
//! one read; at most `max_pipeline` requests are decoded and answered per
//! turn, in waves of at most 128 commands, and each wave's replies are
//! written before the next wave runs, so a connection holds at most one
//! wave of replies; a client that reads none of them for `write_timeout`
//! (default 60 s) is closed, and no more of its commands run meanwhile; a
//! connection idle for `idle_timeout` is closed.

mod blocking;
mod cluster;
mod collections;
mod connection;
mod execute;
mod lists;
mod multikey;
#[cfg(all(test, not(madsim)))]
mod tests;
mod zsets;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use labrpc::runtime::watch;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::forward::Forwarder;

pub use cluster::{ClusterMap, ClusterState, node_name};
#[cfg(all(test, not(madsim)))]
use execute::Runner;
pub use execute::{Backend, Stats};

/// How long a client may leave its replies unread before it is closed.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// How a node's RESP listener behaves.
#[derive(Clone, Debug)]
pub struct RespConfig {
    /// Most connections at once (Redis's `maxclients` default: 10000).
    pub max_clients: usize,
    /// Close a connection that sends nothing for this long (`None`: never,
    /// Redis's `timeout 0` default).
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose client reads none of its replies for this
    /// long (`None`: never). Replies are written after each wave, so until
    /// then a connection holds at most one wave of replies.
    pub write_timeout: Option<Duration>,
    /// The codec's limits.
    pub limits: ::resp::Limits,
    /// Most requests decoded and answered per turn of a connection.
    pub max_pipeline: usize,
    /// Who may connect and what each user may run (`AUTH`, `-NOAUTH`,
    /// `-NOPERM`; see `resp::acl`). Default: no password.
    pub acl: Arc<::resp::Acl>,
    /// Cluster mode (`cluster.rs`): `CLUSTER SLOTS/SHARDS/NODES/MYID/INFO`
    /// from this map and the backend's configuration, `-MOVED` for keys
    /// another group owns. `None` (the default): proxy mode, any key is
    /// answered here by forwarding.
    pub cluster: Option<Arc<ClusterMap>>,
    /// TLS only (`[tls]`): every connection's handshake first; a
    /// plaintext client is closed. `None`: plaintext.
    #[cfg(not(madsim))]
    pub tls: Option<crate::tls::Acceptor>,
}

impl Default for RespConfig {
    fn default() -> RespConfig {
        RespConfig {
            max_clients: 10_000,
            idle_timeout: None,
            write_timeout: Some(DEFAULT_WRITE_TIMEOUT),
            limits: ::resp::Limits::default(),
            max_pipeline: 1024,
            acl: Arc::new(::resp::Acl::default()),
            cluster: None,
            #[cfg(not(madsim))]
            tls: None,
        }
    }
}

/// What every connection of one listener shares.
pub(crate) struct Shared<B> {
    pub(crate) backend: B,
    pub(crate) config: RespConfig,
    pub(crate) facts: ::resp::ServerFacts,
    pub(crate) stats: Stats,
    pub(crate) next_client_id: AtomicU64,
    /// Client-side caching: who may hold which key (`tracking.rs`).
    pub(crate) tracker: Arc<crate::tracking::Tracker>,
}

impl<B: Backend> crate::tracking::TrackingHost for Shared<B> {
    fn tracker(&self) -> &Arc<crate::tracking::Tracker> {
        &self.tracker
    }

    fn feed_config(
        &self,
    ) -> impl std::future::Future<Output = Option<crate::tracking::FeedConfig>> + Send {
        self.backend.feed_config()
    }

    fn watch_changes(
        &self,
        gid: u64,
        poller: u64,
        after: u64,
        wait: std::time::Duration,
    ) -> impl std::future::Future<Output = Option<shardkv::Changes>> + Send {
        self.backend.watch_changes(gid, poller, after, wait)
    }

    fn read(
        &self,
        op: shardkv::Op,
    ) -> impl std::future::Future<Output = Result<shardkv::Outcome, crate::forward::ForwardError>> + Send
    {
        self.backend.run(op)
    }
}

impl<B> Drop for Shared<B> {
    fn drop(&mut self) {
        self.tracker.close();
    }
}

/// A running RESP listener.
pub struct RespServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RespServer {
    /// Binds `addr` and serves RESP on it with `forwarder` executing the
    /// data commands.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub async fn start(
        addr: SocketAddr,
        forwarder: Arc<Forwarder>,
        config: RespConfig,
    ) -> io::Result<RespServer> {
        RespServer::start_with(addr, forwarder, config).await
    }

    /// [`RespServer::start`] with any [`Backend`] (tests use an in-memory one).
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub async fn start_with<B: Backend>(
        addr: SocketAddr,
        backend: B,
        config: RespConfig,
    ) -> io::Result<RespServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let facts = ::resp::ServerFacts::standard(
            config.cluster.is_some(),
            config.max_clients,
            config.limits.max_argument_bytes,
        )
        .with_acl(Arc::clone(&config.acl));
        let shared = Arc::new(Shared {
            backend,
            config,
            facts,
            stats: Stats::default(),
            next_client_id: AtomicU64::new(1),
            tracker: Arc::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared, stopped));
        tracing::info!(%local_addr, "RESP listener started");
        Ok(RespServer {
            local_addr,
            stop,
            task,
        })
    }

    /// The address it listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting; open connections end at their next turn.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop<B: Backend>(
    listener: TcpListener,
    shared: Arc<Shared<B>>,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_clients));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "RESP accept failed");
                continue;
            }
        };
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                shared
                    .stats
                    .rejected_connections
                    .fetch_add(1, Ordering::Relaxed);
                #[cfg(not(madsim))]
                if let Some(tls) = shared.config.tls.clone() {
                    // The refusal is said over TLS, as Redis does.
                    tokio::spawn(async move {
                        if let Ok(stream) = tls.accept(stream).await {
                            connection::refuse(stream).await;
                        }
                    });
                    continue;
                }
                tokio::spawn(connection::refuse(stream));
                continue;
            }
        };
        let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&shared);
        let stopped = stopped.clone();
        let permits = Arc::clone(&permits);
        tokio::spawn(async move {
            let open = |permits: &Semaphore| {
                (shared.config.max_clients - permits.available_permits()) as u64
            };
            shared.backend.connections_changed(open(&permits));
            let _ = stream.set_nodelay(true);
            #[cfg(not(madsim))]
            if let Some(tls) = shared.config.tls.clone() {
                match tls.accept(stream).await {
                    Ok(stream) => {
                        connection::serve(stream, peer, id, Arc::clone(&shared), stopped).await;
                    }
                    Err(error) => tracing::debug!(%peer, "RESP TLS handshake failed: {error}"),
                }
                drop(permit);
                shared.backend.connections_changed(open(&permits));
                return;
            }
            connection::serve(stream, peer, id, Arc::clone(&shared), stopped).await;
            drop(permit);
            shared.backend.connections_changed(open(&permits));
        });
    }
}
