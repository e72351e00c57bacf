//! Client authentication on every front end of a real one-node cluster
//! (real gRPC, Raft log on disk, loopback TCP): a node with `requirepass`
//! and an ACL user refuses the unauthenticated (RESP `-NOAUTH`, HTTP 401,
//! gRPC UNAUTHENTICATED), the wrong password (`-WRONGPASS`, 401,
//! UNAUTHENTICATED) and what a user's rules deny (`-NOPERM`, 403,
//! PERMISSION_DENIED), and serves the right password.

#![cfg(not(madsim))]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use distcache::NodeConfig;
use distcache_client::{Client, ClientConfig, ClientError};
use support::cluster::{TestCluster, TestClusterBuilder};
use support::http::Answer;

/// One node hosting the controller and data group 1, with a password and
/// two more users.
fn one_node_with_users() -> TestClusterBuilder {
    TestCluster::builder()
        .cluster_id("auth")
        .groups(1)
        .replicas(1)
        .requirepass("s3cret")
        .acl("user reader on >rpw ~cache:* +@read -@dangerous +info")
        .acl("user off-user off >opw allcommands allkeys")
}

/// One request with an `authorization` header if given (a PUT sends "v").
async fn http(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let headers: Vec<(&str, &str)> = auth
        .map(|auth| ("authorization", auth))
        .into_iter()
        .collect();
    let body = if method == "PUT" {
        b"v".to_vec()
    } else {
        Vec::new()
    };
    support::http::send(stream, addr, method, path, &headers, body).await
}

fn basic(user: &str, password: &str) -> String {
    distcache::auth::basic(user, password)
}

fn server_code(error: &ClientError) -> String {
    match error {
        ClientError::Server { code, .. } => code.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_front_end_takes_the_same_users() {
    let node = one_node_with_users().start().await;
    let http_addr = node.http_addr(1).expect("http");
    let resp_addr = node.resp_addr(1).expect("resp");
    let grpc = node.grpc_addr().to_string();

    // RESP.
    let mut stream = tokio::net::TcpStream::connect(resp_addr)
        .await
        .expect("connect");
    assert_eq!(
        support::resp::command(&mut stream, &["GET", "cache:1"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        support::resp::command(&mut stream, &["AUTH", "nope"]).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        support::resp::command(&mut stream, &["AUTH", "off-user", "opw"]).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        support::resp::command(&mut stream, &["AUTH", "s3cret"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        support::resp::command(&mut stream, &["SET", "cache:1", "one"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        support::resp::command(&mut stream, &["AUTH", "reader", "rpw"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        support::resp::command(&mut stream, &["GET", "cache:1"]).await,
        "$3\r\none\r\n"
    );
    assert_eq!(
        support::resp::command(&mut stream, &["SET", "cache:1", "x"]).await,
        "-NOPERM User reader has no permissions to run the 'set' command\r\n"
    );
    assert_eq!(
        support::resp::command(&mut stream, &["GET", "other"]).await,
        "-NOPERM No permissions to access a key\r\n"
    );

    // REST.
    let key = "/v1/keys/cache:1";
    let answer = http(http_addr, "GET", key, None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["code"], "unauthenticated");
    let answer = http(http_addr, "GET", key, Some(&basic("default", "wrong"))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["code"], "unauthenticated");
    let answer = http(http_addr, "GET", key, Some(&basic("default", "s3cret"))).await;
    assert_eq!(answer.status, 200);
    let answer = http(http_addr, "GET", key, Some("Bearer s3cret")).await;
    assert_eq!(answer.status, 200);
    let answer = http(http_addr, "GET", key, Some(&basic("reader", "rpw"))).await;
    assert_eq!(answer.status, 200);
    let answer = http(http_addr, "PUT", key, Some(&basic("reader", "rpw"))).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["code"], "forbidden");
    assert_eq!(
        answer.json()["message"],
        "NOPERM User reader has no permissions to run the 'set' command"
    );
    let answer = http(
        http_addr,
        "GET",
        "/v1/keys/other",
        Some(&basic("reader", "rpw")),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.json()["message"],
        "NOPERM No permissions to access a key"
    );
    let answer = http(http_addr, "PUT", key, Some(&basic("default", "s3cret"))).await;
    assert_eq!(answer.status, 200);
    // Admin routes need every @admin command; the cluster view needs INFO.
    let answer = http(
        http_addr,
        "POST",
        "/v1/admin/leave",
        Some(&basic("reader", "rpw")),
    )
    .await;
    assert_eq!(answer.status, 403);
    let answer = http(
        http_addr,
        "GET",
        "/v1/cluster",
        Some(&basic("reader", "rpw")),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(http(http_addr, "GET", "/metrics", None).await.status, 401);
    // Probes stay open.
    assert_eq!(http(http_addr, "GET", "/livez", None).await.status, 200);
    assert_eq!(http(http_addr, "GET", "/readyz", None).await.status, 200);

    // gRPC.
    let config = ClientConfig {
        operation_deadline: Duration::from_secs(5),
        ..ClientConfig::default()
    };
    let anonymous = Client::new(&[&grpc], config.clone()).expect("client");
    let error = anonymous.get(b"cache:1").await.expect_err("no credentials");
    assert_eq!(server_code(&error), "Unauthenticated", "{error}");
    let wrong = Client::with_credentials(&[&grpc], config.clone(), "default", "x").expect("client");
    let error = wrong.get(b"cache:1").await.expect_err("wrong password");
    assert_eq!(server_code(&error), "Unauthenticated", "{error}");
    let admin =
        Client::with_credentials(&[&grpc], config.clone(), "default", "s3cret").expect("client");
    assert_eq!(
        admin.get(b"cache:1").await.expect("get"),
        Some(b"v".to_vec())
    );
    admin.set(b"cache:2", b"two").await.expect("set");
    let reader = Client::with_credentials(&[&grpc], config, "reader", "rpw").expect("client");
    assert_eq!(
        reader.get(b"cache:2").await.expect("get"),
        Some(b"two".to_vec())
    );
    let error = reader.set(b"cache:2", b"x").await.expect_err("denied");
    assert_eq!(server_code(&error), "PermissionDenied", "{error}");
    let error = reader.get(b"secret").await.expect_err("denied key");
    assert_eq!(server_code(&error), "PermissionDenied", "{error}");

    node.shutdown().await;
}

#[test]
fn bad_users_in_the_config_are_refused_naming_the_line() {
    let text = r#"cluster_id = "c"
node_id = 1
data_dir = "/tmp/x"
users = ["user ok on >pw +get", "user bad on +nosuchcommand"]

[[nodes]]
id = 1
host = "127.0.0.1"
grpc_port = 1
controller_port = 2
group = 1
data_port = 3
"#;
    let config = NodeConfig::from_toml(text, "t.toml").expect("parses");
    let error = config.validate().expect_err("bad rule");
    assert_eq!(error.field, "users[1]");
    assert!(
        error.problem.contains("'+nosuchcommand'"),
        "{}",
        error.problem
    );
    // The password never shows in Debug (logs).
    assert!(!format!("{config:?}").contains(">pw"));
}
