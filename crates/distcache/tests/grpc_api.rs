//! The public gRPC API's typed errors and `api::KvClient` over the product
//! client, against a demo cluster in this process (one data group of three
//! replicas, real gRPC, Raft logs on disk, a password and a read-only user).
//!
//! * the same generic `KvClient` script runs over `distcache-client` and
//!   over a client of one local store; both must answer alike;
//! * every error the API can return carries its reason in the status
//!   details, and the client maps it back to the `api::Error`.

#![cfg(not(madsim))]

mod support;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use api::{KeyTtl, KvClient, Op, Outcome, SetCondition, SetTtl};
use distcache_client::details::{self, Reason};
use distcache_client::proto;
use distcache_client::proto::admin_client::AdminClient;
use distcache_client::{Client, ClientConfig, ClientError, Credentials, SetOptions};
use support::cluster::TestCluster;

const PASSWORD: &str = "grpc-errors-pw";

/// One data group of three replicas, a password and a read-only user.
async fn start_demo() -> TestCluster {
    TestCluster::builder()
        .groups(1)
        .replicas(3)
        .requirepass(PASSWORD)
        .acl("user reader on >rpw ~* +get +info")
        .start()
        .await
}

fn client(addr: SocketAddr, user: &str, password: &str) -> Client {
    let config = ClientConfig {
        operation_deadline: Duration::from_secs(3),
        ..ClientConfig::default()
    };
    Client::with_credentials(&[&addr.to_string()], config, user, password).expect("client")
}

/// A raw `Cache` client of the node at `addr` as the default user: to see
/// the node's statuses themselves.
async fn raw_cache(addr: SocketAddr) -> support::grpc::RawCache {
    support::grpc::raw_cache(addr, "default", PASSWORD).await
}

/// A client of one local store: the reference the cluster must match.
struct LocalClient {
    store: Mutex<cache::Store>,
}

impl KvClient for LocalClient {
    async fn run(&self, op: Op) -> Result<Outcome, api::Error> {
        let mut store = self.store.lock().expect("local store");
        api::execute(&mut store, &op, &api::Limits::default(), 1)
    }
}

/// The same operations on any client; what each answered. Remaining TTLs
/// are reported as "has a TTL" (log time differs between clients).
async fn script<C: KvClient>(client: &C, prefix: &str) -> Vec<String> {
    let key = |name: &str| format!("{prefix}{name}").into_bytes();
    let ttl = |ttl: Result<KeyTtl, api::Error>| match ttl {
        Ok(KeyTtl::RemainingMs(ms)) if ms > 0 => "remaining".to_string(),
        other => format!("{other:?}"),
    };
    vec![
        format!("{:?}", client.get(key("a")).await),
        format!("{:?}", client.put(key("a"), "1").await),
        format!("{:?}", client.append(key("a"), "2").await),
        format!("{:?}", client.get(key("a")).await),
        format!("{:?}", client.increment(key("a"), 30).await),
        format!("{:?}", client.increment(key("a"), -100).await),
        format!("{:?}", client.append(key("a"), "x").await),
        format!("{:?}", client.increment(key("a"), 1).await),
        format!("{:?}", client.put(key("max"), i64::MAX.to_string()).await),
        format!("{:?}", client.increment(key("max"), 1).await),
        format!("{:?}", client.compare_and_set(key("c"), None, "v1").await),
        format!("{:?}", client.compare_and_set(key("c"), None, "v2").await),
        format!(
            "{:?}",
            client
                .compare_and_set(key("c"), Some(b"v1".to_vec()), "v3")
                .await
        ),
        format!("{:?}", client.get(key("c")).await),
        format!(
            "{:?}",
            client
                .set(key("s"), "x", SetCondition::IfPresent, SetTtl::Clear, false)
                .await
        ),
        format!(
            "{:?}",
            client
                .set(
                    key("s"),
                    "y",
                    SetCondition::IfAbsent,
                    SetTtl::Ms(60_000),
                    false
                )
                .await
        ),
        ttl(client.ttl(key("s")).await),
        format!(
            "{:?}",
            client
                .set(key("s"), "z", SetCondition::Always, SetTtl::Clear, false)
                .await
        ),
        ttl(client.ttl(key("s")).await),
        format!("{:?}", client.get(key("s")).await),
        format!(
            "{:?}",
            client.put_with_ttl(key("t"), "v", Some(60_000)).await
        ),
        ttl(client.ttl(key("t")).await),
        format!("{:?}", client.persist(key("t")).await),
        format!("{:?}", client.persist(key("t")).await),
        ttl(client.ttl(key("t")).await),
        format!(
            "{:?}",
            client
                .expire(key("t"), 50_000, api::ExpireCondition::default())
                .await
        ),
        ttl(client.ttl(key("t")).await),
        format!(
            "{:?}",
            client
                .expire(key("absent"), 50_000, api::ExpireCondition::default())
                .await
        ),
        ttl(client.ttl(key("absent")).await),
        format!("{:?}", client.put_with_ttl(key("zero"), "v", Some(0)).await),
        format!("{:?}", client.strlen(key("c")).await),
        format!("{:?}", client.strlen(key("absent")).await),
        format!("{:?}", client.get_range(key("c"), 1, -1).await),
        format!("{:?}", client.delete(key("a")).await),
        format!("{:?}", client.delete(key("a")).await),
        format!("{:?}", client.get(key("a")).await),
        format!("{:?}", client.put(vec![b'k'; 1025], "v").await),
        format!(
            "{:?}",
            client.put(key("big"), vec![b'v'; (1 << 20) + 1]).await
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kv_client_over_the_product_client_and_typed_errors() {
    let demo = start_demo().await;
    let node = |id: u64| demo.node_state(id).expect("node runs").grpc_addr;
    let client = client(node(1), "default", PASSWORD);

    // One generic script, two clients, the same answers.
    let local = LocalClient {
        store: Mutex::new(cache::Store::new(cache::StoreConfig::new(64 << 20))),
    };
    let expected = script(&local, "kv:").await;
    let answered = script(&client, "kv:").await;
    for (index, (want, got)) in expected.iter().zip(&answered).enumerate() {
        assert_eq!(got, want, "step {index} of the script");
    }
    assert_eq!(answered.len(), expected.len());
    // The script saw the typed errors, not texts.
    assert!(answered.contains(&"Err(NotAnInteger)".to_string()));
    assert!(answered.contains(&"Err(IncrementOverflow)".to_string()));
    assert!(answered.contains(&"Err(ZeroTtl)".to_string()));
    assert!(answered.iter().any(|line| line.starts_with("Err(TooLarge")));

    // An operation the gRPC API does not carry: refused, nothing sent.
    let unsupported = client
        .run(Op::GetDel {
            key: b"kv:c".to_vec(),
        })
        .await;
    assert_eq!(
        unsupported,
        Err(api::Error::UnexpectedOutcome {
            op: "GetDel".into(),
            outcome: distcache_client::NOT_IN_THE_API.into(),
        })
    );
    assert_eq!(
        KvClient::get(&client, "kv:c").await,
        Ok(Some(b"v3".to_vec()))
    );

    // TooLarge with its fields, through the client's own methods too.
    let error = client
        .set(b"big", &vec![b'v'; (1 << 20) + 1])
        .await
        .expect_err("too large");
    assert_eq!(
        error,
        ClientError::Refused(api::Error::TooLarge {
            what: "value".into(),
            size_bytes: (1 << 20) + 1,
            limit_bytes: 1 << 20,
        })
    );
    let options = SetOptions {
        ttl_ms: Some(0),
        ..SetOptions::default()
    };
    assert_eq!(
        client.set_with(b"k", b"v", options).await,
        Err(ClientError::Refused(api::Error::ZeroTtl))
    );

    // WrongType: a hash written over another front end, read over gRPC.
    let forwarder = &demo.node_state(2).expect("node 2").forwarder;
    forwarder
        .run(
            Op::Hash {
                key: b"a-hash".to_vec(),
                op: api::HashOp::Set {
                    pairs: vec![(b"f".to_vec(), b"v".to_vec())],
                    only_new: false,
                },
            },
            None,
        )
        .await
        .expect("HSET");
    assert_eq!(
        client.get(b"a-hash").await,
        Err(ClientError::Refused(api::Error::WrongType))
    );
    assert_eq!(
        KvClient::increment(&client, "a-hash", 1).await,
        Err(api::Error::WrongType)
    );

    // The raw statuses: code, reason, metadata.
    let mut raw = raw_cache(node(1)).await;
    let session = |seq| {
        Some(proto::Session {
            client_id: 0x5eed,
            seq,
        })
    };
    let set = |seq| proto::SetRequest {
        key: b"stale".to_vec(),
        value: b"v".to_vec(),
        session: session(seq),
        ..proto::SetRequest::default()
    };
    raw.set(set(5)).await.expect("seq 5 applies");
    let stale = raw.set(set(3)).await.expect_err("seq 3 is stale");
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition);
    assert_eq!(details::reason(&stale), Some(Reason::StaleSession));
    let info = details::error_info(&stale).expect("details");
    assert_eq!(info.metadata.get("seq").map(String::as_str), Some("3"));
    assert_eq!(info.metadata.get("latest").map(String::as_str), Some("5"));
    assert_eq!(
        details::api_error(&info),
        Some(api::Error::Stale { seq: 3, latest: 5 })
    );

    let empty = raw
        .get(proto::GetRequest {
            key: Vec::new(),
            ..Default::default()
        })
        .await
        .expect_err("empty key");
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    assert_eq!(details::reason(&empty), Some(Reason::InvalidRequest));
    assert!(matches!(
        client.get(b"").await,
        Err(ClientError::InvalidArgument(text)) if text.contains("empty")
    ));

    let too_large = raw
        .set(proto::SetRequest {
            key: vec![b'k'; 1025],
            ..proto::SetRequest::default()
        })
        .await
        .expect_err("key too large");
    assert_eq!(too_large.code(), tonic::Code::InvalidArgument);
    assert_eq!(details::reason(&too_large), Some(Reason::TooLarge));
    let info = details::error_info(&too_large).expect("details");
    assert_eq!(info.domain, details::ERROR_DOMAIN);
    assert_eq!(info.metadata.get("what").map(String::as_str), Some("key"));
    assert_eq!(
        info.metadata.get("limit_bytes").map(String::as_str),
        Some("1024")
    );

    raw.set(proto::SetRequest {
        key: b"text".to_vec(),
        value: b"abc".to_vec(),
        ..proto::SetRequest::default()
    })
    .await
    .expect("set");
    let not_integer = raw
        .increment(proto::IncrementRequest {
            key: b"text".to_vec(),
            delta: 1,
            session: None,
        })
        .await
        .expect_err("not an integer");
    assert_eq!(not_integer.code(), tonic::Code::FailedPrecondition);
    assert_eq!(details::reason(&not_integer), Some(Reason::NotAnInteger));

    // Users: no password, and a user whose ACL has no `set`.
    let anonymous = Client::new(&[&node(1).to_string()], ClientConfig::default()).expect("client");
    match anonymous.get(b"k").await {
        Err(ClientError::Server { code, reason, .. }) => {
            assert_eq!(code, "Unauthenticated");
            assert_eq!(reason.as_deref(), Some("UNAUTHENTICATED"));
        }
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
    let reader = self::client(node(1), "reader", "rpw");
    assert_eq!(reader.get(b"kv:c").await, Ok(Some(b"v3".to_vec())));
    match reader.set(b"k", b"v").await {
        Err(ClientError::Server { code, reason, .. }) => {
            assert_eq!(code, "PermissionDenied");
            assert_eq!(reason.as_deref(), Some("NO_PERMISSION"));
        }
        other => panic!("expected PERMISSION_DENIED, got {other:?}"),
    }

    // Admin: the controller refuses a group that already joined.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node(1)))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut admin = AdminClient::with_interceptor(
        channel,
        Credentials::basic("default", PASSWORD).expect("credentials"),
    );
    let peers = demo.node_state(1).expect("node 1").topology.groups[&1]
        .iter()
        .map(|(_, addr)| addr.to_string())
        .collect();
    let refused = admin
        .join(proto::JoinRequest {
            groups: vec![proto::GroupMembers {
                gid: 1,
                peer_addrs: peers,
            }],
        })
        .await
        .expect_err("gid 1 joined already");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(details::reason(&refused), Some(Reason::ControllerRefused));

    // A node that is stopping: its forwarder refuses new pooled writes.
    demo.node_state(3).expect("node 3").forwarder.close();
    let mut raw3 = raw_cache(node(3)).await;
    let stopping = raw3
        .set(proto::SetRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ..proto::SetRequest::default()
        })
        .await
        .expect_err("shutting down");
    assert_eq!(stopping.code(), tonic::Code::Unavailable);
    assert_eq!(details::reason(&stopping), Some(Reason::ShuttingDown));

    // No quorum: the node's request timeout ends in TIMEOUT with its
    // deadline; the product client's own deadline is api::Error::Timeout.
    demo.stop_node(2).await.expect("stop node 2");
    demo.stop_node(3).await.expect("stop node 3");
    // Node 1's leader lease (about 237 ms from its last acknowledged
    // heartbeat) may still hold right after the stops, and a read under
    // it is rightly answered: no other leader can exist yet. Past it, no
    // read can be confirmed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut request = tonic::Request::new(proto::GetRequest {
        key: b"kv:c".to_vec(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(30));
    let timeout = raw.get(request).await.expect_err("no quorum");
    assert_eq!(timeout.code(), tonic::Code::DeadlineExceeded, "{timeout:?}");
    assert_eq!(details::reason(&timeout), Some(Reason::Timeout));
    match details::api_error(&details::error_info(&timeout).expect("details")) {
        Some(api::Error::Timeout {
            deadline_ms,
            attempts,
        }) => {
            assert_eq!(deadline_ms, 5000);
            assert!(attempts >= 1);
        }
        other => panic!("expected a Timeout, got {other:?}"),
    }
    assert!(matches!(
        KvClient::get(&client, "kv:c").await,
        Err(api::Error::Timeout { .. })
    ));

    demo.shutdown().await;
}
