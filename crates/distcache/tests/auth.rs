//! Client authentication on every front end of a real one-node cluster
//! (real gRPC, Raft log on disk, loopback TCP): a node with `requirepass`
//! and an ACL user refuses the unauthenticated (RESP `-NOAUTH`, HTTP 401,
//! gRPC UNAUTHENTICATED), the wrong password (`-WRONGPASS`, 401,
//! UNAUTHENTICATED) and what a user's rules deny (`-NOPERM`, 403,
//! PERMISSION_DENIED), and serves the right password.

#![cfg(not(madsim))]

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use distcache::{Node, NodeConfig};
use distcache_client::{Client, ClientConfig, ClientError};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn free_ports(count: usize) -> Vec<u16> {
    // Hold them all at once so they differ, then release.
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("addr").port())
        .collect()
}

async fn start_node(dir: &std::path::Path) -> Node {
    let ports = free_ports(5);
    let text = format!(
        r#"cluster_id = "auth"
node_id = 1
data_dir = "{}"
requirepass = "s3cret"
users = [
  "user reader on >rpw ~cache:* +@read -@dangerous +info",
  "user off-user off >opw allcommands allkeys",
]

[[nodes]]
id = 1
host = "127.0.0.1"
grpc_port = {}
controller_port = {}
group = 1
data_port = {}
resp_port = {}
http_port = {}
"#,
        dir.display(),
        ports[0],
        ports[1],
        ports[2],
        ports[3],
        ports[4]
    );
    let config = NodeConfig::from_toml(&text, "auth.toml").expect("valid config");
    let node = Node::start(config).await.expect("the node starts");
    assert!(node.wait_ready(Duration::from_secs(30)).await, "ready");
    node
}

struct Answer {
    status: u16,
    body: serde_json::Value,
}

async fn http(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(auth) = auth {
        builder = builder.header("authorization", auth);
    }
    let body = if method == "PUT" {
        b"v".to_vec()
    } else {
        Vec::new()
    };
    let request = builder.body(Full::new(Bytes::from(body))).expect("request");
    let response = tokio::time::timeout(Duration::from_secs(30), sender.send_request(request))
        .await
        .expect("an answer within 30 s")
        .expect("a response");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}

fn basic(user: &str, password: &str) -> String {
    distcache::auth::basic(user, password)
}

async fn resp_exchange(stream: &mut tokio::net::TcpStream, words: &[&str]) -> String {
    let mut wire = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        wire.extend(format!("${}\r\n{word}\r\n", word.len()).into_bytes());
    }
    stream.write_all(&wire).await.expect("write");
    let mut buffer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
        .await
        .expect("a reply within 10 s")
        .expect("read");
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

fn server_code(error: &ClientError) -> String {
    match error {
        ClientError::Server { code, .. } => code.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_front_end_takes_the_same_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start_node(dir.path()).await;
    let http_addr = node.http_addr().expect("http");
    let resp_addr = node.resp_addr().expect("resp");
    let grpc = node.grpc_addr().to_string();

    // RESP.
    let mut stream = tokio::net::TcpStream::connect(resp_addr)
        .await
        .expect("connect");
    assert_eq!(
        resp_exchange(&mut stream, &["GET", "cache:1"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        resp_exchange(&mut stream, &["AUTH", "nope"]).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        resp_exchange(&mut stream, &["AUTH", "off-user", "opw"]).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        resp_exchange(&mut stream, &["AUTH", "s3cret"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        resp_exchange(&mut stream, &["SET", "cache:1", "one"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        resp_exchange(&mut stream, &["AUTH", "reader", "rpw"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        resp_exchange(&mut stream, &["GET", "cache:1"]).await,
        "$3\r\none\r\n"
    );
    assert_eq!(
        resp_exchange(&mut stream, &["SET", "cache:1", "x"]).await,
        "-NOPERM User reader has no permissions to run the 'set' command\r\n"
    );
    assert_eq!(
        resp_exchange(&mut stream, &["GET", "other"]).await,
        "-NOPERM No permissions to access a key\r\n"
    );

    // REST.
    let key = "/v1/keys/cache:1";
    let answer = http(http_addr, "GET", key, None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["code"], "unauthenticated");
    let answer = http(http_addr, "GET", key, Some(&basic("default", "wrong"))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["code"], "unauthenticated");
    let answer = http(http_addr, "GET", key, Some(&basic("default", "s3cret"))).await;
    assert_eq!(answer.status, 200);
    let answer = http(http_addr, "GET", key, Some("Bearer s3cret")).await;
    assert_eq!(answer.status, 200);
    let answer = http(http_addr, "GET", key, Some(&basic("reader", "rpw"))).await;
    assert_eq!(answer.status, 200);
    let answer = http(http_addr, "PUT", key, Some(&basic("reader", "rpw"))).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.body["code"], "forbidden");
    assert_eq!(
        answer.body["message"],
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
        answer.body["message"],
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
    assert_eq!(answer.status, 200, "{}", answer.body);
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
