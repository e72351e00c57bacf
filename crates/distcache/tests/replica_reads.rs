//! Reads any replica may answer, through each front end, on an in-process
//! cluster (one data group of three replicas): RESP's `READONLY`, gRPC's
//! `read_from = READ_FROM_ANY_REPLICA` and REST's `?read_from=any_replica`
//! sent to a node whose replica follows. The follower must answer with
//! every write acknowledged before the read (it asks its leader for a read
//! index), and its `distcache_follower_reads_total` must count the reads;
//! `READWRITE` and the defaults go back to the leader. (Linearizability
//! under faults: `sim-tests/tests/it/replica_reads.rs`.)

#![cfg(not(madsim))]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use distcache_client::proto::{GetRequest, ReadFrom};
use distcache_client::{Client, ClientConfig};
use support::cluster::TestCluster;
use support::http::request;
use support::keys::wait_for;
use support::resp::command;

/// A node whose data replica follows (the group has a leader elsewhere).
async fn a_follower(cluster: &TestCluster) -> u64 {
    wait_for(
        "a data group with a leader and a follower",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let roles: Vec<(u64, bool)> = cluster
                .running()
                .into_iter()
                .filter_map(|node| {
                    let status = cluster.node_state(node)?.local_status();
                    let data = status.replicas.iter().find(|r| r.role == "data")?;
                    Some((node, data.is_leader))
                })
                .collect();
            let led = roles.iter().any(|(_, leads)| *leads);
            led.then(|| {
                roles
                    .iter()
                    .find(|(_, leads)| !leads)
                    .map(|(node, _)| *node)
            })
            .flatten()
        },
    )
    .await
}

/// `distcache_follower_reads_total` on `node`.
async fn follower_reads(cluster: &TestCluster, node: u64) -> f64 {
    counter(cluster, node, "distcache_follower_reads_total").await
}

/// `distcache_follower_reads_reused_total` on `node`.
async fn reused_grants(cluster: &TestCluster, node: u64) -> f64 {
    counter(cluster, node, "distcache_follower_reads_reused_total").await
}

/// The unlabelled counter `name` in `node`'s `/metrics`.
async fn counter(cluster: &TestCluster, node: u64, name: &str) -> f64 {
    let addr = cluster.http_addr(node).expect("the node serves HTTP");
    let metrics = request(addr, "GET", "/metrics", None, Vec::new())
        .await
        .text();
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .filter_map(|value| value.trim().parse::<f64>().ok())
        .sum()
}

/// Whether `node`'s data replica still follows (it did when the test
/// picked it; an election may have made it the leader since).
fn still_follows(cluster: &TestCluster, node: u64) -> bool {
    !cluster
        .node_state(node)
        .expect("running")
        .local_status()
        .replicas
        .iter()
        .any(|replica| replica.role == "data" && replica.is_leader)
}

fn grpc_addr(cluster: &TestCluster, node: u64) -> SocketAddr {
    let entry = &cluster.configs[0].nodes[(node - 1) as usize];
    format!("{}:{}", entry.host, entry.grpc_port)
        .parse()
        .expect("an address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_answers_reads_any_replica_may_serve_with_the_latest_write() {
    let cluster = TestCluster::builder().start().await;
    let seeds = cluster.grpc_seeds();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let client = Client::new(&seeds, ClientConfig::default()).expect("seeds");
    client.set(b"k", b"v0").await.expect("first write");
    let follower = a_follower(&cluster).await;
    let before = follower_reads(&cluster, follower).await;

    // RESP: READONLY, then every read right after an acknowledged write.
    let resp = cluster.resp_addr(follower).expect("the node serves RESP");
    let mut stream = tokio::net::TcpStream::connect(resp).await.expect("connect");
    assert_eq!(command(&mut stream, &["READONLY"]).await, "+OK\r\n");
    for round in 1..=20 {
        let value = format!("v{round}");
        client.set(b"k", value.as_bytes()).await.expect("write");
        assert_eq!(
            command(&mut stream, &["GET", "k"]).await,
            format!("${}\r\n{value}\r\n", value.len()),
            "a READONLY read on node {follower} after write {round}"
        );
    }
    assert_eq!(command(&mut stream, &["GET", "absent"]).await, "$-1\r\n");

    // gRPC: read_from = ANY_REPLICA; an unknown value is refused.
    let mut raw = support::grpc::raw_cache(grpc_addr(&cluster, follower), "default", "").await;
    client.set(b"k", b"grpc").await.expect("write");
    let reply = raw
        .get(GetRequest {
            key: b"k".to_vec(),
            read_from: ReadFrom::AnyReplica as i32,
            ..GetRequest::default()
        })
        .await
        .expect("a gRPC read any replica may answer")
        .into_inner();
    assert!(reply.found);
    assert_eq!(reply.value, b"grpc");
    let refused = raw
        .get(GetRequest {
            key: b"k".to_vec(),
            read_from: 7,
            ..GetRequest::default()
        })
        .await
        .expect_err("read_from 7 is no such value");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("READ_FROM_ANY_REPLICA"),
        "the refusal names the values: {}",
        refused.message()
    );

    // REST: ?read_from=any_replica; a bad value is a 400.
    let http = cluster.http_addr(follower).expect("the node serves HTTP");
    client.set(b"k", b"rest").await.expect("write");
    let answer = request(
        http,
        "GET",
        "/v1/keys/k?read_from=any_replica",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), "rest");
    let bad = request(
        http,
        "GET",
        "/v1/keys/k?read_from=nearest",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text());

    let served = follower_reads(&cluster, follower).await - before;
    if still_follows(&cluster, follower) {
        // 21 RESP reads, one gRPC, one REST.
        assert!(
            served >= 23.0,
            "node {follower} answered only {served} reads as a follower"
        );
    }

    // READWRITE: reads go to the leader again; the follower answers none.
    assert_eq!(command(&mut stream, &["READWRITE"]).await, "+OK\r\n");
    let before = follower_reads(&cluster, follower).await;
    for _ in 0..5 {
        assert_eq!(command(&mut stream, &["GET", "k"]).await, "$4\r\nrest\r\n");
    }
    assert_eq!(follower_reads(&cluster, follower).await, before);
    cluster.shutdown().await;
}

/// Reads bounded to 200 ms old, through each front end at a follower:
/// every write acknowledged more than the bound before a read is in it,
/// the follower answers most of them from an earlier grant, and bad bounds
/// are refused without changing the connection's setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_reads_through_each_front_end_and_their_refusals() {
    const BOUND_MS: u64 = 200;
    let past_the_bound = Duration::from_millis(BOUND_MS + 100);
    let cluster = TestCluster::builder().start().await;
    let seeds = cluster.grpc_seeds();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let client = Client::new(&seeds, ClientConfig::default()).expect("seeds");
    client.set(b"k", b"v0").await.expect("first write");
    let follower = a_follower(&cluster).await;
    let before = reused_grants(&cluster, follower).await;

    // RESP.
    let resp = cluster.resp_addr(follower).expect("the node serves RESP");
    let mut stream = tokio::net::TcpStream::connect(resp).await.expect("connect");
    let bound = BOUND_MS.to_string();
    assert_eq!(
        command(&mut stream, &["READONLY", "MAXSTALENESS", &bound]).await,
        "+OK\r\n"
    );
    for round in 1..=5 {
        let value = format!("v{round}");
        client.set(b"k", value.as_bytes()).await.expect("write");
        tokio::time::sleep(past_the_bound).await;
        for _ in 0..10 {
            assert_eq!(
                command(&mut stream, &["GET", "k"]).await,
                format!("${}\r\n{value}\r\n", value.len()),
                "a read bounded at {BOUND_MS} ms, {past_the_bound:?} after write {round}"
            );
        }
    }
    for (args, error) in [
        (
            &["READONLY", "MAXSTALENESS", "60001"][..],
            "-ERR MAXSTALENESS must be between 0 and 60000 milliseconds\r\n",
        ),
        (
            &["READONLY", "MAXSTALENESS", "-1"][..],
            "-ERR MAXSTALENESS must be between 0 and 60000 milliseconds\r\n",
        ),
        (
            &["READONLY", "MAXSTALENESS", "soon"][..],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["READONLY", "NEWEST"][..], "-ERR syntax error\r\n"),
    ] {
        assert_eq!(command(&mut stream, args).await, error, "{args:?}");
    }
    // The refusals changed nothing: still bounded reads on the follower.
    let reused = reused_grants(&cluster, follower).await;
    assert_eq!(command(&mut stream, &["GET", "k"]).await, "$2\r\nv5\r\n");
    if still_follows(&cluster, follower) {
        assert!(
            reused_grants(&cluster, follower).await > reused,
            "after the refusals, a read was not a bounded follower read"
        );
    }

    // gRPC.
    let mut raw = support::grpc::raw_cache(grpc_addr(&cluster, follower), "default", "").await;
    client.set(b"k", b"grpc").await.expect("write");
    tokio::time::sleep(past_the_bound).await;
    let get = |read_from: ReadFrom, max_staleness_ms| GetRequest {
        key: b"k".to_vec(),
        read_from: read_from as i32,
        max_staleness_ms,
        ..GetRequest::default()
    };
    let reply = raw
        .get(get(ReadFrom::AnyReplica, BOUND_MS))
        .await
        .expect("a bounded gRPC read")
        .into_inner();
    assert_eq!((reply.found, reply.value.as_slice()), (true, &b"grpc"[..]));
    for (request, what) in [
        (get(ReadFrom::Leader, BOUND_MS), "a bound on a leader read"),
        (get(ReadFrom::AnyReplica, 60_001), "a bound over a minute"),
    ] {
        let refused = raw.get(request).await.expect_err(what);
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{what}");
        assert!(
            refused.message().contains("max_staleness_ms"),
            "{what}: {}",
            refused.message()
        );
    }

    // REST.
    let http = cluster.http_addr(follower).expect("the node serves HTTP");
    client.set(b"k", b"rest").await.expect("write");
    tokio::time::sleep(past_the_bound).await;
    let path = format!("/v1/keys/k?read_from=any_replica&max_staleness_ms={BOUND_MS}");
    let answer = request(http, "GET", &path, None, Vec::new()).await;
    assert_eq!((answer.status, answer.text().as_str()), (200, "rest"));
    for path in [
        "/v1/keys/k?max_staleness_ms=200",
        "/v1/keys/k?read_from=any_replica&max_staleness_ms=60001",
        "/v1/keys/k?read_from=any_replica&max_staleness_ms=soon",
    ] {
        let bad = request(http, "GET", path, None, Vec::new()).await;
        assert_eq!(bad.status, 400, "{path}: {}", bad.text());
    }

    if still_follows(&cluster, follower) {
        // 50 RESP reads, then one more, one gRPC and one REST read: each
        // bound's first read asks, and reads soon after reuse its grant.
        let served = reused_grants(&cluster, follower).await - before;
        assert!(
            served >= 20.0,
            "node {follower} answered only {served} reads from an earlier grant"
        );
    }
    cluster.shutdown().await;
}
