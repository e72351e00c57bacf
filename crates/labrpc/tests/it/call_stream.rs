//! Streamed methods (`Rpc::STREAMED`) on the production transport: many
//! calls on one long-lived stream per peer, real tonic, real TCP.
#![cfg(not(madsim))]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use labrpc::{Client, ClientConfig, Router, Rpc, RpcError, Server, ServerConfig};
use serde::{Deserialize, Serialize};

/// Waits the given milliseconds, then answers its id and the task that
/// ran its handler.
#[derive(Serialize, Deserialize)]
struct Streamed {
    id: u64,
    wait_ms: u64,
    padding: Vec<u8>,
}
impl Rpc for Streamed {
    const NAME: &'static str = "test.Streamed";
    type Reply = (u64, String);
    const STREAMED: bool = true;
}

/// Another streamed method, answered at once.
#[derive(Serialize, Deserialize)]
struct OtherStreamed(u64);
impl Rpc for OtherStreamed {
    const NAME: &'static str = "test.OtherStreamed";
    type Reply = (u64, String);
    const STREAMED: bool = true;
}

/// The same, as a call of its own each.
#[derive(Serialize, Deserialize)]
struct Unary(u64);
impl Rpc for Unary {
    const NAME: &'static str = "test.Unary";
    type Reply = (u64, String);
}

/// Which task runs a handler: streamed calls run on their stream's task,
/// unary calls each on a task of their own.
fn task() -> String {
    format!("{:?}", tokio::task::try_id())
}

fn router() -> Router {
    let mut router = Router::new();
    router
        .add(|call: Streamed| async move {
            tokio::time::sleep(Duration::from_millis(call.wait_ms)).await;
            (call.id, task())
        })
        .add(|OtherStreamed(id): OtherStreamed| async move { (id, task()) })
        .add(|Unary(id): Unary| async move { (id, task()) });
    router
}

async fn start(addr: SocketAddr) -> Server {
    Server::start(addr, router(), ServerConfig::default())
        .await
        .expect("server starts")
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

fn small(id: u64, wait_ms: u64) -> Streamed {
    Streamed {
        id,
        wait_ms,
        padding: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streamed_calls_share_one_stream_and_each_gets_its_own_reply() {
    let server = start(loopback()).await;
    let peer = server.local_addr();
    let client = Client::new(ClientConfig {
        max_in_flight_per_peer: 32,
        timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    });
    // Handlers that finish out of order (the later calls wait less).
    let calls: Vec<_> = (0..500u64)
        .map(|id| {
            let client = client.clone();
            tokio::spawn(async move { (id, client.call(peer, &small(id, (500 - id) % 7)).await) })
        })
        .collect();
    let mut tasks = BTreeSet::new();
    for call in calls {
        let (id, reply) = call.await.expect("task");
        let (answered, task) = reply.expect("streamed call");
        assert_eq!(answered, id, "a reply reached the wrong call");
        tasks.insert(task);
    }
    assert_eq!(
        tasks.len(),
        1,
        "streamed calls ran on several tasks: {tasks:?}"
    );
    // Unary calls still go as calls of their own.
    let mut unary_tasks = BTreeSet::new();
    for id in 0..3 {
        let (answered, task) = client.call(peer, &Unary(id)).await.expect("unary call");
        assert_eq!(answered, id);
        unary_tasks.insert(task);
    }
    assert!(
        unary_tasks.is_disjoint(&tasks),
        "a unary call ran on the stream's task"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_payload_over_the_frame_limit_goes_as_its_own_call() {
    let server = start(loopback()).await;
    let peer = server.local_addr();
    let client = Client::default();
    let (_, stream_task) = client.call(peer, &small(1, 0)).await.expect("small call");
    let large = Streamed {
        id: 2,
        wait_ms: 0,
        padding: vec![1u8; 300 * 1024],
    };
    let (id, large_task) = client.call(peer, &large).await.expect("large call");
    assert_eq!(id, 2);
    assert_ne!(large_task, stream_task, "the large call rode the stream");
    let (_, again) = client.call(peer, &small(3, 0)).await.expect("small call");
    assert_eq!(again, stream_task, "the stream was not kept");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_call_given_up_leaves_the_stream_to_the_next_ones() {
    let server = start(loopback()).await;
    let peer = server.local_addr();
    let client = Client::default();
    let given_up = client
        .call_with_timeout(peer, &small(1, 300), Duration::from_millis(50))
        .await;
    assert!(
        matches!(given_up, Err(RpcError::Timeout { .. })),
        "{given_up:?}"
    );
    // The next calls get their own replies; the given-up call's comes
    // during the wait below and is dropped.
    let replies: Vec<_> = futures::future::join_all((2..12u64).map(|id| {
        let client = client.clone();
        async move { client.call(peer, &small(id, 0)).await }
    }))
    .await;
    for (id, reply) in (2..12u64).zip(replies) {
        assert_eq!(reply.expect("call after a timeout").0, id);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.call(peer, &small(99, 0)).await.expect("call").0, 99);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_calls_fail_while_the_peer_is_down_and_reach_it_once_back() {
    let server = start(loopback()).await;
    let addr = server.local_addr();
    let client = Client::default();
    client.call(addr, &small(1, 0)).await.expect("call");

    // Calls waiting on the stream when the server goes fail, within their
    // deadline, instead of hanging.
    let waiting: Vec<_> = (0..5u64)
        .map(|id| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call_with_timeout(addr, &small(id, 2_000), Duration::from_secs(5))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Shutting down ends the server's streams rather than waiting for
    // them: a stream is never done on its own.
    let shutdown = tokio::spawn(server.shutdown());
    let stopping = tokio::time::Instant::now();
    for call in waiting {
        let reply = call.await.expect("task");
        assert!(
            matches!(reply, Err(RpcError::Unreachable { .. })),
            "a call waiting on the stream of a stopped server: {reply:?}"
        );
    }
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "the calls waited {:?} for a stopped server",
        stopping.elapsed()
    );
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown waited on the open stream")
        .expect("task")
        .expect("shutdown");
    let down = client
        .call_with_timeout(addr, &small(2, 0), Duration::from_millis(300))
        .await;
    assert!(
        down.is_err(),
        "a call to a stopped server succeeded: {down:?}"
    );

    let server = start(addr).await;
    let mut reply = None;
    for _attempt in 0..50 {
        match client.call(addr, &small(3, 0)).await {
            Ok(answer) => {
                reply = Some(answer);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let (id, _) = reply.expect("the restarted peer was never reached");
    assert_eq!(id, 3);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_methods_slow_calls_do_not_hold_another_methods_stream() {
    let server = start(loopback()).await;
    let peer = server.local_addr();
    // Room for more calls than a server runs at once on one stream (256).
    let client = Client::new(ClientConfig {
        max_in_flight_per_peer: 400,
        timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    });
    let slow: Vec<_> = (0..300u64)
        .map(|id| {
            let client = client.clone();
            tokio::spawn(async move { client.call(peer, &small(id, 3_000)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The slow method's stream is full; the other method has its own.
    let started = tokio::time::Instant::now();
    let (id, other_task) = client
        .call(peer, &OtherStreamed(7))
        .await
        .expect("the other method's call");
    assert_eq!(id, 7);
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "the other method waited {:?} behind the slow one",
        started.elapsed()
    );
    let mut slow_tasks = BTreeSet::new();
    for call in slow {
        slow_tasks.insert(call.await.expect("task").expect("slow call").1);
    }
    assert!(
        !slow_tasks.contains(&other_task),
        "the methods shared a stream"
    );
    server.shutdown().await.expect("shutdown");
}

/// A server that serves no call streams, as one of a release from before
/// them: streamed calls to it still succeed, each as a call of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_call_streams_gets_every_call_alone() {
    let server = Server::start(
        loopback(),
        router(),
        ServerConfig {
            call_streams: false,
            ..ServerConfig::default()
        },
    )
    .await
    .expect("server starts");
    let peer = server.local_addr();
    let client = Client::default();
    let mut tasks = BTreeSet::new();
    for id in 0..10u64 {
        let (answered, task) = client
            .call(peer, &small(id, 0))
            .await
            .expect("a streamed call to a peer without streams");
        assert_eq!(answered, id);
        tasks.insert(task);
    }
    assert_eq!(tasks.len(), 10, "the calls did not go alone: {tasks:?}");
    server.shutdown().await.expect("shutdown");
}
