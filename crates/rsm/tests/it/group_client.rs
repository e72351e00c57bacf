//! The group client against scripted servers on real gRPC (loopback):
//! what each kind of answer makes it do next.

#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api::{Error, Outcome, Reply};
use rsm::group_client::{self, GroupClient, GroupClientConfig};
use serde::{Deserialize, Serialize};
use testkit::ports::free_addrs;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ping;

impl labrpc::Rpc for Ping {
    const NAME: &'static str = "test.Ping";
    type Reply = Reply;
}

/// Serves `Ping` at `addr`: the n-th call (from 0) gets `answer(n)`.
/// Returns the call counter.
async fn scripted_server(
    addr: SocketAddr,
    answer: impl Fn(u64) -> Reply + Send + Sync + 'static,
) -> (Arc<AtomicU64>, labrpc::Server) {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    let answer = Arc::new(answer);
    let mut router = labrpc::Router::new();
    router.add::<Ping, _, _>(move |_: Ping| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        let reply = answer(call);
        async move { reply }
    });
    let server = labrpc::Server::start(addr, router, labrpc::ServerConfig::default())
        .await
        .expect("server starts");
    (calls, server)
}

fn config() -> GroupClientConfig {
    GroupClientConfig {
        rpc_timeout: Duration::from_millis(500),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        operation_deadline: Duration::from_secs(5),
        ..GroupClientConfig::default()
    }
}

/// A busy leader is asked again after a backoff; the client does not go
/// looking for another leader (which would only redirect it back).
#[tokio::test]
async fn a_busy_leader_is_retried_after_a_backoff_not_abandoned() {
    let addrs = free_addrs(2);
    let (leader_calls, _leader) = scripted_server(addrs[0], |call| {
        if call < 2 {
            Err(Error::Busy { pending: 4096 })
        } else {
            Ok(Outcome::Done)
        }
    })
    .await;
    let (follower_calls, _follower) = scripted_server(addrs[1], |_| {
        Err(Error::WrongLeader {
            leader_hint: Some(0),
        })
    })
    .await;
    let client = GroupClient::new(addrs, config());
    let started = labrpc::runtime::now();
    let result = client.call(&Ping, group_client::classify).await;
    assert_eq!(result, Ok(Outcome::Done));
    assert_eq!(
        leader_calls.load(Ordering::SeqCst),
        3,
        "leader: two Busy, then done"
    );
    assert_eq!(
        follower_calls.load(Ordering::SeqCst),
        0,
        "a Busy answer must not send the client to another server"
    );
    // Two backoffs: 10 ms, then 20 ms.
    assert!(started.elapsed() >= Duration::from_millis(30));
}

/// Final answers end the call at once; `NotApplied` is retried (it may
/// still apply) and the client gives up at its deadline with `Timeout`.
#[tokio::test]
async fn final_errors_end_the_call_and_unanswered_calls_time_out() {
    let addrs = free_addrs(2);
    let (_calls, _server) = scripted_server(addrs[0], |_| Err(Error::ZeroTtl)).await;
    let client = GroupClient::new(vec![addrs[0]], config());
    let result = client.call(&Ping, group_client::classify).await;
    assert_eq!(result.map_err(Error::from), Err(Error::ZeroTtl));

    let (calls, _server) = scripted_server(addrs[1], |_| Err(Error::NotApplied)).await;
    let client = GroupClient::new(
        vec![addrs[1]],
        GroupClientConfig {
            operation_deadline: Duration::from_millis(300),
            ..config()
        },
    );
    let result = client
        .call(&Ping, group_client::classify)
        .await
        .map_err(Error::from);
    assert!(
        matches!(result, Err(Error::Timeout { deadline_ms: 300, attempts }) if attempts >= 2),
        "expected a timeout after retries, got {result:?}"
    );
    assert!(calls.load(Ordering::SeqCst) >= 2);
}

/// After a membership change the servers' Raft ids are no longer their
/// places in the list: here the leader is at place 0 while the followers
/// name Raft id 1 (the leader's id, now at place 0). The client follows the
/// hint once, finds place 1 no leader, and goes round the list to place 0
/// instead of bouncing between places 1 and 2 until its deadline.
#[tokio::test]
async fn a_hint_that_proves_wrong_is_not_followed_again() {
    let addrs = free_addrs(3);
    let (leader_calls, _leader) = scripted_server(addrs[0], |call| {
        if call == 0 {
            // Not ready yet when the client starts here.
            Err(Error::WrongLeader { leader_hint: None })
        } else {
            Ok(Outcome::Done)
        }
    })
    .await;
    let stale_hint = || {
        Err(Error::WrongLeader {
            leader_hint: Some(1),
        })
    };
    let (second_calls, _second) = scripted_server(addrs[1], move |_| stale_hint()).await;
    let (third_calls, _third) = scripted_server(addrs[2], move |_| stale_hint()).await;
    let client = GroupClient::new(addrs, config());
    let result = client.call(&Ping, group_client::classify).await;
    assert_eq!(result, Ok(Outcome::Done));
    assert_eq!(leader_calls.load(Ordering::SeqCst), 2);
    let others = second_calls.load(Ordering::SeqCst) + third_calls.load(Ordering::SeqCst);
    assert!(others <= 4, "{others} calls to the followers");
}
