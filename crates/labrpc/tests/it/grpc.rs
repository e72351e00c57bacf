//! The production transport on loopback: real tonic, real TCP.
#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use labrpc::{Client, ClientConfig, Router, Rpc, RpcError, Server, ServerConfig};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Echo(String);
impl Rpc for Echo {
    const NAME: &'static str = "test.Echo";
    type Reply = String;
}

/// Asks for a reply of the given size.
#[derive(Serialize, Deserialize)]
struct Blob(usize);
impl Rpc for Blob {
    const NAME: &'static str = "test.Blob";
    type Reply = Vec<u8>;
}

/// Sleeps a little while counting how many calls run at once.
#[derive(Serialize, Deserialize)]
struct Slow(u64);
impl Rpc for Slow {
    const NAME: &'static str = "test.Slow";
    type Reply = u64;
}

#[derive(Serialize, Deserialize)]
struct Unregistered;
impl Rpc for Unregistered {
    const NAME: &'static str = "test.Unregistered";
    type Reply = ();
}

#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

fn router(concurrency: Arc<Concurrency>) -> Router {
    let mut router = Router::new();
    router
        .add(|Echo(text): Echo| async move { text })
        .add(|Blob(size_bytes): Blob| async move { vec![7u8; size_bytes] })
        .add(move |Slow(value): Slow| {
            let concurrency = Arc::clone(&concurrency);
            async move {
                let now = concurrency.now.fetch_add(1, Ordering::SeqCst) + 1;
                concurrency.max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                concurrency.now.fetch_sub(1, Ordering::SeqCst);
                value * 2
            }
        });
    router
}

async fn start(addr: SocketAddr, config: ServerConfig) -> (Server, Arc<Concurrency>) {
    let concurrency = Arc::new(Concurrency::default());
    let server = Server::start(addr, router(Arc::clone(&concurrency)), config)
        .await
        .expect("server starts");
    (server, concurrency)
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn call_round_trips_a_typed_request() {
    let (server, _) = start(loopback(), ServerConfig::default()).await;
    let client = Client::default();
    let reply = client
        .call(server.local_addr(), &Echo("hello".into()))
        .await;
    assert_eq!(reply, Ok("hello".to_string()));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_1000_concurrent_calls_all_succeed_within_the_in_flight_bound() {
    let (server, concurrency) = start(loopback(), ServerConfig::default()).await;
    let max_in_flight_per_peer = 32;
    let client = Client::new(ClientConfig {
        max_in_flight_per_peer,
        timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    });
    let peer = server.local_addr();
    let calls: Vec<_> = (0..1000u64)
        .map(|value| {
            let client = client.clone();
            tokio::spawn(async move { (value, client.call(peer, &Slow(value)).await) })
        })
        .collect();
    for call in calls {
        let (value, reply) = call.await.unwrap();
        assert_eq!(reply, Ok(value * 2), "call {value}");
    }
    let max_seen = concurrency.max.load(Ordering::SeqCst);
    assert!(
        max_seen <= max_in_flight_per_peer,
        "server saw {max_seen} concurrent calls, bound is {max_in_flight_per_peer}"
    );
    assert!(
        max_seen > 1,
        "calls never overlapped: the burst ran one at a time"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn dead_peer_is_an_error_within_the_deadline() {
    // Reserve a port, then free it: nothing listens there.
    let listener = std::net::TcpListener::bind(loopback()).unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);

    let client = Client::default();
    let timeout = Duration::from_millis(500);
    let started = tokio::time::Instant::now();
    let result = client
        .call_with_timeout(dead, &Echo("anyone?".into()), timeout)
        .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(
            result,
            Err(RpcError::Unreachable { .. } | RpcError::Timeout { .. })
        ),
        "expected unreachable or timeout, got {result:?}"
    );
    assert!(
        elapsed <= timeout + Duration::from_millis(200),
        "took {elapsed:?}"
    );
}

#[tokio::test]
async fn restarted_peer_is_reachable_again() {
    let (server, _) = start(loopback(), ServerConfig::default()).await;
    let addr = server.local_addr();
    let client = Client::default();
    assert_eq!(
        client.call(addr, &Echo("one".into())).await,
        Ok("one".into())
    );

    server.shutdown().await.unwrap();
    let down = client
        .call_with_timeout(addr, &Echo("two".into()), Duration::from_millis(300))
        .await;
    assert!(
        down.is_err(),
        "call to a stopped server succeeded: {down:?}"
    );

    let (server, _) = start(addr, ServerConfig::default()).await;
    // The client reconnects on its own; give the new listener a few tries.
    let mut reply = Err(None);
    for _attempt in 0..50 {
        match client.call(addr, &Echo("three".into())).await {
            Ok(text) => {
                reply = Ok(text);
                break;
            }
            Err(error) => {
                reply = Err(Some(error));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(reply, Ok("three".to_string()));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversize_messages_are_refused_on_both_sides_and_nothing_else_breaks() {
    let limit_bytes = 64 * 1024;
    let (server, _) = start(
        loopback(),
        ServerConfig {
            max_message_bytes: limit_bytes,
            ..ServerConfig::default()
        },
    )
    .await;
    let addr = server.local_addr();

    // The client's own limit: refused before sending.
    let small_client = Client::new(ClientConfig {
        max_message_bytes: limit_bytes,
        ..ClientConfig::default()
    });
    let big = "x".repeat(limit_bytes + 1);
    match small_client.call(addr, &Echo(big.clone())).await {
        Err(RpcError::TooLarge { detail, .. }) => assert!(detail.contains("client"), "{detail}"),
        other => panic!("expected TooLarge from the client, got {other:?}"),
    }

    // The server's limit: a client with a larger limit sends, the server refuses.
    let big_client = Client::default();
    match big_client.call(addr, &Echo(big)).await {
        Err(RpcError::TooLarge { detail, .. }) => assert!(detail.contains("server"), "{detail}"),
        other => panic!("expected TooLarge from the server, got {other:?}"),
    }

    // A reply over the server's limit is replaced by an error.
    match big_client.call(addr, &Blob(limit_bytes * 2)).await {
        Err(RpcError::TooLarge { detail, .. }) => assert!(detail.contains("reply"), "{detail}"),
        other => panic!("expected TooLarge for the reply, got {other:?}"),
    }

    // Everything else still works, on both clients.
    assert_eq!(
        small_client.call(addr, &Echo("ok".into())).await,
        Ok("ok".into())
    );
    assert_eq!(big_client.call(addr, &Blob(10)).await, Ok(vec![7u8; 10]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_method_is_a_clear_error() {
    let (server, _) = start(loopback(), ServerConfig::default()).await;
    let result = Client::default()
        .call(server.local_addr(), &Unregistered)
        .await;
    assert!(
        matches!(
            result,
            Err(RpcError::NoSuchMethod {
                method: "test.Unregistered",
                ..
            })
        ),
        "{result:?}"
    );
    server.shutdown().await.unwrap();
}

/// Blocks its server's only runtime thread for the given milliseconds.
#[derive(Serialize, Deserialize)]
struct Block(u64);
impl Rpc for Block {
    const NAME: &'static str = "test.Block";
    type Reply = ();
}

/// Calls a client gave up on while the server was too busy to accept them
/// (each a stream reset before the server took it) do not cost the
/// connection: h2's default answers more than 20 such resets with GOAWAY,
/// failing every call then in flight on it, and a busy node met that under
/// load (a snapshot, a loaded machine), from honest peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The server needs a runtime of its own to stall: an OS thread (this file
// tests the production transport only, never the simulation).
#[allow(clippy::disallowed_methods)]
async fn calls_given_up_while_the_server_was_busy_do_not_cost_the_connection() {
    // The server runs on a runtime of one thread of its own, which the
    // Block call stalls.
    let (addr_sender, addr_receiver) = std::sync::mpsc::channel();
    let (stop_sender, stop_receiver) = tokio::sync::oneshot::channel::<()>();
    let server_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut router = Router::new();
            router
                .add(|Echo(text): Echo| async move { text })
                .add(|Block(ms): Block| async move {
                    std::thread::sleep(Duration::from_millis(ms));
                });
            let server = Server::start(loopback(), router, ServerConfig::default())
                .await
                .expect("server starts");
            addr_sender.send(server.local_addr()).expect("send");
            let _ = stop_receiver.await;
            server.shutdown().await.expect("shutdown");
        });
    });
    let addr = addr_receiver.recv().expect("address");
    let client = Client::default();
    assert_eq!(
        client.call(addr, &Echo("warm".into())).await,
        Ok("warm".into())
    );

    let blocker = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call_with_timeout(addr, &Block(800), Duration::from_secs(5))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 100 calls given up on while the server cannot accept them, then 20
    // that wait: the server reads them all, in that order, once it can.
    let given_up = futures::future::join_all((0..100).map(|i| {
        let client = client.clone();
        async move {
            client
                .call_with_timeout(addr, &Echo(format!("{i}")), Duration::from_millis(20))
                .await
        }
    }))
    .await;
    assert!(
        given_up
            .iter()
            .all(|reply| matches!(reply, Err(RpcError::Timeout { .. }))),
        "{given_up:?}"
    );
    let waiting = futures::future::join_all((0..20).map(|i| {
        let client = client.clone();
        async move {
            client
                .call_with_timeout(addr, &Echo(format!("w{i}")), Duration::from_secs(5))
                .await
        }
    }));
    let (waited, blocked) = tokio::join!(waiting, blocker);
    assert_eq!(blocked.expect("task"), Ok(()));
    let failed: Vec<_> = waited.iter().filter(|reply| reply.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of 20 failed: {failed:?}",
        failed.len()
    );
    let _ = stop_sender.send(());
    server_thread.join().expect("server thread");
}

/// Echo on the caller's call stream (`Rpc::STREAMED`).
#[derive(Serialize, Deserialize)]
struct StreamedEcho(String);
impl Rpc for StreamedEcho {
    const NAME: &'static str = "test.StreamedEcho";
    type Reply = String;
    const STREAMED: bool = true;
}

/// A TCP proxy whose connections can go silent: after
/// [`SilentProxy::silence`], the connections open then forward nothing
/// more and stay open (a peer whose packets are dropped with no reset);
/// later connections forward as usual.
struct SilentProxy {
    addr: SocketAddr,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl SilentProxy {
    async fn start(target: SocketAddr) -> SilentProxy {
        let listener = tokio::net::TcpListener::bind(loopback())
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let current = Arc::clone(&generation);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let born = current.load(Ordering::SeqCst);
                let (inbound_read, inbound_write) = inbound.into_split();
                let (outbound_read, outbound_write) = outbound.into_split();
                tokio::spawn(pipe(
                    inbound_read,
                    outbound_write,
                    Arc::clone(&current),
                    born,
                ));
                tokio::spawn(pipe(
                    outbound_read,
                    inbound_write,
                    Arc::clone(&current),
                    born,
                ));
            }
        });
        SilentProxy { addr, generation }
    }

    fn silence(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    generation: Arc<std::sync::atomic::AtomicU64>,
    born: u64,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if generation.load(Ordering::SeqCst) != born {
            // Silenced: keep both sockets open and forward nothing.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// A connection whose peer goes silent is closed by the keepalive pings,
/// and calls, plain and streamed, reach the peer again on a new one; with
/// no pings they would time out on it for as long as TCP keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_peer_goes_silent_is_closed_and_calls_reconnect() {
    let mut router = Router::new();
    router
        .add(|Echo(text): Echo| async move { text })
        .add(|StreamedEcho(text): StreamedEcho| async move { text });
    let keepalive = Some(labrpc::KeepAlive {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(200),
    });
    // The server pings too: its end of the silent connection closes soon,
    // so its shutdown does not wait for it.
    let server = Server::start(
        loopback(),
        router,
        ServerConfig {
            keepalive,
            ..ServerConfig::default()
        },
    )
    .await
    .expect("server starts");
    let proxy = SilentProxy::start(server.local_addr()).await;
    let client = Client::new(ClientConfig {
        keepalive,
        ..ClientConfig::default()
    });
    let deadline = Duration::from_millis(300);
    let plain = |text: &str| {
        let (client, request) = (client.clone(), Echo(text.into()));
        async move {
            client
                .call_with_timeout(proxy.addr, &request, deadline)
                .await
        }
    };
    let streamed = |text: &str| {
        let (client, request) = (client.clone(), StreamedEcho(text.into()));
        async move {
            client
                .call_with_timeout(proxy.addr, &request, deadline)
                .await
        }
    };
    assert_eq!(plain("one").await, Ok("one".into()));
    assert_eq!(streamed("one").await, Ok("one".into()));

    proxy.silence();
    assert!(plain("two").await.is_err(), "a silent connection answered");
    let mut answers = (None, None);
    for _attempt in 0..40 {
        if answers.0.is_none() {
            answers.0 = plain("three").await.ok();
        }
        if answers.1.is_none() {
            answers.1 = streamed("three").await.ok();
        }
        if answers.0.is_some() && answers.1.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        answers,
        (Some("three".to_string()), Some("three".to_string())),
        "calls never left the silent connection"
    );
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("the shutdown waited on the silent connection")
        .expect("shutdown");
}
