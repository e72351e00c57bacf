//! The clerk against a forged controller (real labrpc on loopback): an
//! answer of the wrong kind is a typed error, never a panic of the client.

#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::time::Duration;

use shardctrler::{
    Clerk, ClerkConfig, ClerkError, Config, ConfigAnswer, ControllerClient, ControllerRequest,
};

/// A one-replica "controller" that answers every request with `answer`.
async fn forged_controller(answer: ConfigAnswer) -> labrpc::Server {
    let mut router = labrpc::Router::new();
    router.add::<ControllerRequest, _, _>(move |_request: ControllerRequest| {
        let answer = answer.clone();
        async move { Ok(answer) }
    });
    labrpc::Server::start(
        "127.0.0.1:0".parse().expect("address"),
        router,
        labrpc::ServerConfig::default(),
    )
    .await
    .expect("the forged controller serves")
}

fn clerk(server: &labrpc::Server) -> Clerk {
    Clerk::new(
        vec![server.local_addr()],
        ClerkConfig {
            operation_deadline: Duration::from_secs(5),
            ..ClerkConfig::default()
        },
    )
}

#[tokio::test]
async fn a_query_answered_changed_is_an_error_not_a_panic() {
    let server = forged_controller(ConfigAnswer::Changed { num: 7 }).await;
    let clerk = clerk(&server);
    for result in [clerk.query(None).await, clerk.query_applied(Some(1)).await] {
        match result {
            Err(ClerkError::UnexpectedAnswer { op, answer }) => {
                assert!(op.starts_with("Query"), "{op}");
                assert!(answer.contains("Changed"), "{answer}");
            }
            other => panic!("expected UnexpectedAnswer, got {other:?}"),
        }
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_change_answered_with_a_configuration_is_an_error_not_a_panic() {
    let server = forged_controller(ConfigAnswer::Config(Config::initial(10))).await;
    let clerk = clerk(&server);
    let results = [
        clerk.join(BTreeMap::new()).await,
        clerk.leave(vec![1]).await,
        clerk.move_shard(0, 1).await,
    ];
    for (result, expected_op) in results.into_iter().zip(["Join", "Leave", "Move"]) {
        match result {
            Err(ClerkError::UnexpectedAnswer { op, .. }) => assert_eq!(op, expected_op),
            other => panic!("expected UnexpectedAnswer from {expected_op}, got {other:?}"),
        }
    }
    server.shutdown().await.expect("shutdown");
}
