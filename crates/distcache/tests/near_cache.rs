//! The client's near cache against a real cluster in this process (two
//! data groups of three replicas, real gRPC): hits are served without a
//! call, writes through other clients and nodes reach it within the
//! documented bound, the client's own writes at once, expiries and
//! deletes too, and a broken invalidation stream drops everything; on the
//! wire, a stream tracks only its own user's gets.

#![cfg(not(madsim))]

mod support;

use std::time::Duration;

use distcache_client::proto;
use distcache_client::{Client, ClientConfig, NearConfig, NearStats, SetOptions};
use support::cluster::TestCluster;

/// The documented bound on how long a cached value may lag a write of
/// another client (`distcache_client::near`), with a margin for a loaded
/// test machine.
const STALE_BOUND: Duration = Duration::from_secs(6);

fn near_client(seed: &str) -> Client {
    let config = ClientConfig {
        near_cache: Some(NearConfig::default()),
        ..ClientConfig::default()
    };
    Client::new(&[seed], config).expect("client")
}

fn stats(client: &Client) -> NearStats {
    client.near_stats().expect("a near cache")
}

/// Reads `key` until the read is answered from the near cache (the
/// stream opens after the first call); the value then.
async fn read_until_cached(client: &Client, key: &[u8]) -> Option<Vec<u8>> {
    let deadline = labrpc::runtime::now() + STALE_BOUND;
    loop {
        let hits = stats(client).hits;
        let value = client.get(key).await.expect("get");
        if stats(client).hits > hits {
            return value;
        }
        assert!(
            labrpc::runtime::now() < deadline,
            "{} never served from the near cache: {:?}",
            String::from_utf8_lossy(key),
            stats(client)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `key` until it answers `expected`; how long that took. Fails
/// past [`STALE_BOUND`].
async fn read_until(client: &Client, key: &[u8], expected: Option<&[u8]>) -> Duration {
    let start = labrpc::runtime::now();
    loop {
        let value = client.get(key).await.expect("get");
        if value.as_deref() == expected {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < STALE_BOUND,
            "{} still {:?} after {:?}, want {:?}",
            String::from_utf8_lossy(key),
            value.map(|value| String::from_utf8_lossy(&value).into_owned()),
            STALE_BOUND,
            expected.map(String::from_utf8_lossy)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_near_cache_is_told_of_every_change() {
    let cluster = TestCluster::builder().groups(2).replicas(3).start().await;
    let seeds = cluster.grpc_seeds();
    let reader = near_client(&seeds[0]);
    // The writer enters through another node; its writes go to the
    // owning leaders, wherever they are.
    let writer = Client::new(&[&seeds[4]], ClientConfig::default()).expect("writer");

    // Hits: a cached key is answered without a call.
    writer.set(b"k", b"one").await.expect("set");
    // A hundred reads in a row with no call. The node's first feed answers
    // flush its streams (once per group, as it starts following them): a
    // round that meets a flush starts over, any other miss fails.
    let mut all_hits = false;
    for _ in 0..5 {
        assert_eq!(
            read_until_cached(&reader, b"k").await,
            Some(b"one".to_vec())
        );
        let before = stats(&reader);
        for _ in 0..100 {
            assert_eq!(reader.get(b"k").await.expect("get"), Some(b"one".to_vec()));
        }
        let after = stats(&reader);
        if after.flushes == before.flushes {
            assert_eq!(after.hits - before.hits, 100, "{after:?}");
            assert_eq!(after.misses, before.misses, "{after:?}");
            assert!(after.entries >= 1 && after.bytes > 0, "{after:?}");
            all_hits = true;
            break;
        }
    }
    assert!(all_hits, "five rounds of reads each met a flush");

    // Another client's write, through another node: told within the bound.
    writer.set(b"k", b"two").await.expect("set");
    let lag = read_until(&reader, b"k", Some(b"two")).await;
    eprintln!("a write elsewhere reached the near cache after {lag:?}");
    assert_eq!(
        read_until_cached(&reader, b"k").await,
        Some(b"two".to_vec())
    );

    // The client's own write: the next read sees it, with no wait.
    reader.set(b"k", b"three").await.expect("own set");
    assert_eq!(
        reader.get(b"k").await.expect("get"),
        Some(b"three".to_vec())
    );

    // An absent key is cached too, and told when it appears.
    assert_eq!(read_until_cached(&reader, b"absent").await, None);
    writer.set(b"absent", b"here").await.expect("set");
    read_until(&reader, b"absent", Some(b"here")).await;

    // A delete elsewhere.
    assert_eq!(
        read_until_cached(&reader, b"k").await,
        Some(b"three".to_vec())
    );
    assert!(writer.delete(b"k").await.expect("delete"));
    read_until(&reader, b"k", None).await;

    // An expiry: nobody writes, the node tells the key when its TTL ends.
    let options = SetOptions {
        ttl_ms: Some(400),
        ..SetOptions::default()
    };
    writer
        .set_with(b"short", b"lived", options)
        .await
        .expect("set with ttl");
    assert_eq!(
        read_until_cached(&reader, b"short").await,
        Some(b"lived".to_vec())
    );
    read_until(&reader, b"short", None).await;

    // Many keys in both groups: each write elsewhere is told.
    let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("many:{i}").into_bytes()).collect();
    for key in &keys {
        writer.set(key, b"old").await.expect("set");
        assert_eq!(read_until_cached(&reader, key).await, Some(b"old".to_vec()));
    }
    for key in &keys {
        writer.set(key, b"new").await.expect("set");
    }
    for key in &keys {
        read_until(&reader, key, Some(b"new")).await;
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stream_drops_everything() {
    let cluster = TestCluster::builder().groups(1).replicas(3).start().await;
    let seeds = cluster.grpc_seeds();
    // The stream opens on the first seed: node 3 (node 1 hosts a
    // controller replica the test keeps).
    let reader = near_client(&seeds[2]);
    let writer = Client::new(&[&seeds[0]], ClientConfig::default()).expect("writer");
    writer.set(b"k", b"one").await.expect("set");
    assert_eq!(
        read_until_cached(&reader, b"k").await,
        Some(b"one".to_vec())
    );
    let flushes = stats(&reader).flushes;

    // The stream's node goes away: the reader drops what it holds.
    cluster
        .stop_node_without_handoff(3)
        .await
        .expect("stop node 3");
    let start = labrpc::runtime::now();
    while stats(&reader).flushes == flushes {
        assert!(
            start.elapsed() < STALE_BOUND,
            "no flush after the stream's node stopped: {:?}",
            stats(&reader)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stats(&reader).entries, 0, "{:?}", stats(&reader));

    // A write meanwhile is read, and caching resumes on another node.
    writer.set(b"k", b"two").await.expect("set");
    assert_eq!(
        read_until_cached(&reader, b"k").await,
        Some(b"two".to_vec())
    );
    writer.set(b"k", b"three").await.expect("set");
    read_until(&reader, b"k", Some(b"three")).await;
    cluster.shutdown().await;
}

/// A raw `Cache` client of the cluster's first node, as `user`.
async fn raw_cache(cluster: &TestCluster, user: &str, password: &str) -> support::grpc::RawCache {
    let addr = cluster.grpc_seeds()[0].parse().expect("a node address");
    support::grpc::raw_cache(addr, user, password).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_tracks_only_its_own_users_gets() {
    let cluster = TestCluster::builder()
        .groups(1)
        .replicas(3)
        .requirepass("near-pw")
        .acl("user reader on >rpw ~* +get")
        .acl("user writer on >wpw ~* +set")
        .start()
        .await;
    let mut owner = raw_cache(&cluster, "default", "near-pw").await;
    let mut stream = owner
        .track(proto::TrackRequest {})
        .await
        .expect("track")
        .into_inner();
    let first = stream
        .message()
        .await
        .expect("stream")
        .expect("first event");
    let Some(proto::track_event::Event::TrackingId(id)) = first.event else {
        panic!("the first event is not the tracking id: {first:?}");
    };
    let get = |tracking_id: u64| proto::GetRequest {
        key: b"k".to_vec(),
        tracking_id,
        ..Default::default()
    };
    let tracked = |reply: tonic::Response<proto::GetReply>| reply.into_inner().tracked;
    // Tracked once the node vouches for its streams (its feed pollers
    // have a confirmed answer from every group): until then a read is
    // answered untracked (the write fence does not cover it yet).
    let vouched_by = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !tracked(owner.get(get(id)).await.expect("get")) {
        assert!(
            tokio::time::Instant::now() < vouched_by,
            "its own stream: a Get not tracked within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        !tracked(owner.get(get(id ^ 1)).await.expect("get")),
        "no such stream"
    );
    assert!(!tracked(owner.get(get(0)).await.expect("get")), "not asked");
    let mut reader = raw_cache(&cluster, "reader", "rpw").await;
    assert!(
        !tracked(reader.get(get(id)).await.expect("get")),
        "another user's stream"
    );
    // Opening a stream needs a user who may read.
    let mut writer = raw_cache(&cluster, "writer", "wpw").await;
    let refused = writer
        .track(proto::TrackRequest {})
        .await
        .expect_err("writer may not get");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    // A write through this node is told on the stream as its key. The
    // node's first feed answers flush its streams (documented: the node
    // starts following the feeds), and a flush forgets what was tracked;
    // so a round that meets a flush tracks the key again and writes again.
    let mut told_as_key = false;
    for round in 0..5 {
        assert!(tracked(owner.get(get(id)).await.expect("get")));
        owner
            .set(proto::SetRequest {
                key: b"k".to_vec(),
                value: format!("v{round}").into_bytes(),
                ..proto::SetRequest::default()
            })
            .await
            .expect("set");
        let deadline = labrpc::runtime::now() + STALE_BOUND;
        loop {
            let event = tokio::time::timeout_at(deadline, stream.message())
                .await
                .expect("told within the bound")
                .expect("stream")
                .expect("event");
            match event.event {
                Some(proto::track_event::Event::Invalidated(told)) => {
                    assert_eq!(told.keys, vec![b"k".to_vec()]);
                    told_as_key = true;
                    break;
                }
                Some(proto::track_event::Event::Flush(_)) => break,
                Some(proto::track_event::Event::Heartbeat(_)) => {}
                other => panic!("unexpected event {other:?}"),
            }
        }
        if told_as_key {
            break;
        }
    }
    assert!(told_as_key, "five rounds each met a flush");
    cluster.shutdown().await;
}

/// A counter's value in the `/metrics` text at `http` (0 if absent).
async fn counter(http: std::net::SocketAddr, name: &str) -> u64 {
    let text = support::http::request(http, "GET", "/metrics", None, Vec::new())
        .await
        .text();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// The node's own near cache (`clients.near_cache_bytes`), through RESP on
/// real nodes: a node answers GETs of keys it forwards from memory, and a
/// write acknowledged through another node is seen by the very next GET
/// (the write waits on the leader's fence until this node's poller has
/// handed it to the cache, and each read applies what was handed first),
/// deletes too, and expiries shortly after the TTL. No retries: the
/// guarantee has no bound to wait out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_near_cache_answers_forwarded_gets_and_never_an_acknowledged_write_late() {
    let cluster = TestCluster::builder()
        .groups(2)
        .replicas(3)
        .near_cache_bytes(1 << 20)
        .start()
        .await;
    // Node 1 serves group 1, node 4 group 2: each forwards the other's keys.
    let (reader_resp, reader_http) = cluster.front_ends(0);
    let (writer_resp, _) = cluster.front_ends(3);
    let mut reader = tokio::net::TcpStream::connect(reader_resp)
        .await
        .expect("connect");
    let mut writer = tokio::net::TcpStream::connect(writer_resp)
        .await
        .expect("connect");
    let command = support::resp::command;
    let keys: Vec<String> = (0..40).map(|index| format!("near:{index}")).collect();
    for key in &keys {
        assert_eq!(command(&mut writer, &["SET", key, "one"]).await, "+OK\r\n");
    }
    for _ in 0..2 {
        for key in &keys {
            assert_eq!(
                command(&mut reader, &["GET", key]).await,
                "$3\r\none\r\n",
                "{key}"
            );
        }
    }
    let hits = counter(reader_http, "distcache_near_cache_hits_total").await;
    let misses = counter(reader_http, "distcache_near_cache_misses_total").await;
    assert!(
        hits >= 5 && misses >= 5,
        "the near cache answered {hits} GETs and missed {misses}: about half of 80 GETs are \
         of keys node 1 forwards, and half of those should hit"
    );
    for round in ["two", "three"] {
        for key in &keys {
            assert_eq!(command(&mut writer, &["SET", key, round]).await, "+OK\r\n");
            let expected = format!("${}\r\n{round}\r\n", round.len());
            assert_eq!(
                command(&mut reader, &["GET", key]).await,
                expected,
                "{key}: the GET right after an acknowledged SET"
            );
            // Cached again for the next round.
            assert_eq!(command(&mut reader, &["GET", key]).await, expected, "{key}");
        }
    }
    for key in &keys {
        assert_eq!(command(&mut writer, &["DEL", key]).await, ":1\r\n");
        assert_eq!(
            command(&mut reader, &["GET", key]).await,
            "$-1\r\n",
            "{key}: the GET right after an acknowledged DEL"
        );
    }
    // An expiry is told by the node's timer, from the TTL read with the
    // value: kept until then, gone just after.
    for key in &keys {
        assert_eq!(
            command(&mut writer, &["SET", key, "brief", "PX", "1500"]).await,
            "+OK\r\n"
        );
        for _ in 0..2 {
            assert_eq!(command(&mut reader, &["GET", key]).await, "$5\r\nbrief\r\n");
        }
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for key in &keys {
        assert_eq!(
            command(&mut reader, &["GET", key]).await,
            "$-1\r\n",
            "{key}: a GET at least 500 ms after its TTL ran out"
        );
    }
    let hits_after = counter(reader_http, "distcache_near_cache_hits_total").await;
    assert!(
        hits_after > hits,
        "no near-cache hits after the first round ({hits} then {hits_after})"
    );
    println!(
        "near cache on node 1: {hits} hits, {misses} misses after the first round; {hits_after} hits in the end"
    );
    cluster.shutdown().await;
}
