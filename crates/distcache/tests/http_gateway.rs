//! The HTTP gateway against a real demo cluster in this process (two data
//! groups of three replicas, real gRPC and Raft logs on disk, HTTP over
//! loopback TCP): every route, and every error status with its `code`.

#![cfg(not(madsim))]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use distcache::http::{AppState, HttpConfig, HttpServer};
use serde_json::Value;
use support::cluster::TestCluster;
use support::http::{Answer, request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A cluster of `groups` x 3 on free ports.
async fn start_demo(groups: usize) -> TestCluster {
    TestCluster::builder()
        .groups(groups)
        .replicas(3)
        .start()
        .await
}

/// A PUT announcing `length` body bytes with `Expect: 100-continue`, as curl
/// sends large bodies: the gateway must answer from the headers alone. (Sending
/// the body regardless races the server's early 413 and its close: the client
/// may see a broken pipe or a reset instead of the answer.)
async fn expect_continue_refused(addr: SocketAddr, path: &str, length: usize) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {length}\r\n\
         expect: 100-continue\r\nconnection: close\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 30 s")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {text:?}"));
    assert!(
        !head.starts_with("HTTP/1.1 100"),
        "the gateway asked for a body over its limit: {text:?}"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        body: body.as_bytes().to_vec(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, None, Vec::new()).await
}

async fn put(addr: SocketAddr, path: &str, body: &[u8]) -> Answer {
    request(addr, "PUT", path, Some("text/plain"), body.to_vec()).await
}

async fn post_json(addr: SocketAddr, path: &str, body: Value) -> Answer {
    request(
        addr,
        "POST",
        path,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

/// A key whose shard `gid` owns.
fn key_of_group(shards: &[u64], gid: u64) -> String {
    (0..100_000)
        .map(|i| format!("key-{i}"))
        .find(|key| shards[shardkv::key_to_shard(key.as_bytes(), shards.len())] == gid)
        .expect("a key in the group")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_every_error_status() {
    let demo = start_demo(2).await;
    let addr = demo.http_addr(1).expect("node 1 serves HTTP");
    // A second node answers too (any node answers any key).
    let other = demo.http_addr(5).expect("node 5 serves HTTP");

    // Probes.
    let live = get(addr, "/livez").await;
    assert_eq!(live.status, 200);
    assert_eq!(live.json()["status"], "ok");
    let mut ready = get(addr, "/readyz").await;
    for _ in 0..100 {
        if ready.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = get(addr, "/readyz").await;
    }
    assert_eq!(
        ready.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&ready.body)
    );

    // Keys: PUT, GET (on another node), DELETE, 404s.
    let written = put(addr, "/v1/keys/greeting", b"hello world").await;
    assert_eq!(written.status, 200);
    assert_eq!(written.json()["applied"], true);
    let read = get(other, "/v1/keys/greeting").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, b"hello world");
    assert_eq!(read.content_type, "application/octet-stream");
    get(addr, "/v1/keys/absent")
        .await
        .expect_error(404, "not_found");
    let deleted = request(addr, "DELETE", "/v1/keys/greeting", None, Vec::new()).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["deleted"], true);
    request(addr, "DELETE", "/v1/keys/greeting", None, Vec::new())
        .await
        .expect_error(404, "not_found");
    get(addr, "/v1/keys/greeting")
        .await
        .expect_error(404, "not_found");
    // Percent-encoded keys.
    assert_eq!(put(addr, "/v1/keys/a%20b%2Fc", b"x").await.status, 200);
    assert_eq!(get(other, "/v1/keys/a%20b%2Fc").await.body, b"x");

    // nx / xx / ttl_ms.
    assert_eq!(put(addr, "/v1/keys/cond?nx=true", b"1").await.status, 200);
    put(addr, "/v1/keys/cond?nx=true", b"2")
        .await
        .expect_error(409, "condition_failed");
    assert_eq!(get(addr, "/v1/keys/cond").await.body, b"1");
    assert_eq!(put(addr, "/v1/keys/cond?xx=true", b"3").await.status, 200);
    assert_eq!(get(addr, "/v1/keys/cond").await.body, b"3");
    put(addr, "/v1/keys/nothing?xx=true", b"3")
        .await
        .expect_error(409, "condition_failed");
    get(addr, "/v1/keys/nothing")
        .await
        .expect_error(404, "not_found");
    put(addr, "/v1/keys/cond?nx=true&xx=true", b"4")
        .await
        .expect_error(400, "invalid_argument");
    put(addr, "/v1/keys/cond?ttl_ms=0", b"4")
        .await
        .expect_error(400, "invalid_argument");
    put(addr, "/v1/keys/cond?ttl_ms=soon", b"4")
        .await
        .expect_error(400, "bad_request");
    // Over the schema's int64: refused, not wrapped or saturated.
    put(addr, "/v1/keys/cond?ttl_ms=9223372036854775808", b"4")
        .await
        .expect_error(400, "invalid_argument");
    assert_eq!(
        get(addr, "/v1/keys/cond").await.body,
        b"3",
        "bad input changed nothing"
    );
    assert_eq!(
        put(addr, "/v1/keys/ttl?ttl_ms=60000", b"t").await.status,
        200
    );
    assert_eq!(get(addr, "/v1/keys/ttl").await.body, b"t");
    let long_key = "k".repeat(2000);
    put(addr, &format!("/v1/keys/{long_key}"), b"v")
        .await
        .expect_error(400, "invalid_argument");

    // Compare-and-set.
    let swapped = post_json(
        addr,
        "/v1/keys/cond/cas",
        serde_json::json!({"expected": "3", "value": "4"}),
    )
    .await;
    assert_eq!(swapped.status, 200);
    assert_eq!(swapped.json()["swapped"], true);
    post_json(
        addr,
        "/v1/keys/cond/cas",
        serde_json::json!({"expected": "3", "value": "5"}),
    )
    .await
    .expect_error(409, "cas_failed");
    post_json(addr, "/v1/keys/cond/cas", serde_json::json!({"value": "5"}))
        .await
        .expect_error(409, "cas_failed");
    let created = post_json(
        addr,
        "/v1/keys/fresh/cas",
        serde_json::json!({"expected": null, "value": "new"}),
    )
    .await;
    assert_eq!(created.status, 200);
    assert_eq!(get(addr, "/v1/keys/fresh").await.body, b"new");
    request(
        addr,
        "POST",
        "/v1/keys/cond/cas",
        Some("application/json"),
        b"{not json".to_vec(),
    )
    .await
    .expect_error(400, "bad_request");
    request(
        addr,
        "POST",
        "/v1/keys/cond/cas",
        None,
        b"{\"value\":\"x\"}".to_vec(),
    )
    .await
    .expect_error(415, "unsupported_media_type");
    // A JSON body of the wrong shape is a 400 like any bad input; a TTL
    // with a fraction is refused, one written `195.0` is the integer it is.
    post_json(addr, "/v1/keys/cond/cas", serde_json::json!({"value": {}}))
        .await
        .expect_error(400, "bad_request");
    post_json(
        addr,
        "/v1/keys/cond/cas",
        serde_json::json!({"expected": "4", "value": "x", "ttl_ms": 1.5}),
    )
    .await
    .expect_error(400, "bad_request");
    assert_eq!(get(addr, "/v1/keys/cond").await.body, b"4");
    let whole = post_json(
        addr,
        "/v1/keys/whole/cas",
        serde_json::json!({"value": "w", "ttl_ms": 60000.0}),
    )
    .await;
    assert_eq!(
        whole.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&whole.body)
    );

    // Increment.
    let counter = request(addr, "POST", "/v1/keys/counter/incr", None, Vec::new()).await;
    assert_eq!(counter.status, 200);
    assert_eq!(counter.json()["value"], 1);
    let counter = request(
        addr,
        "POST",
        "/v1/keys/counter/incr?by=41",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(counter.json()["value"], 42);
    let counter = request(
        addr,
        "POST",
        "/v1/keys/counter/incr?by=-2",
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(counter.json()["value"], 40);
    assert_eq!(get(other, "/v1/keys/counter").await.body, b"40");
    assert_eq!(put(addr, "/v1/keys/word", b"hello").await.status, 200);
    request(addr, "POST", "/v1/keys/word/incr", None, Vec::new())
        .await
        .expect_error(409, "not_an_integer");
    assert_eq!(
        put(addr, "/v1/keys/big", i64::MAX.to_string().as_bytes())
            .await
            .status,
        200
    );
    request(addr, "POST", "/v1/keys/big/incr", None, Vec::new())
        .await
        .expect_error(409, "not_an_integer");

    // Scan: bad input first, then pages over every group's shards.
    get(addr, "/v1/keys?limit=0")
        .await
        .expect_error(400, "invalid_argument");
    get(addr, "/v1/keys?cursor=banana")
        .await
        .expect_error(400, "invalid_argument");
    get(addr, &format!("/v1/keys?cursor={}", u64::MAX))
        .await
        .expect_error(400, "invalid_argument");
    for index in 0..25 {
        assert_eq!(
            put(addr, &format!("/v1/keys/page*{index}"), b"v")
                .await
                .status,
            200
        );
    }
    // A prefix is literal: "page*" does not glob.
    assert_eq!(put(addr, "/v1/keys/pageX", b"v").await.status, 200);
    let mut listed = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let page = get(
            addr,
            &format!("/v1/keys?prefix=page%2A&limit=7&cursor={cursor}"),
        )
        .await;
        assert_eq!(
            page.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&page.body)
        );
        let page = page.json();
        let keys = page["keys"].as_array().expect("keys").clone();
        assert!(keys.len() <= 7, "a page holds at most its limit: {page}");
        listed.extend(
            keys.into_iter()
                .map(|key| key.as_str().expect("a key").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    listed.sort();
    let mut expected: Vec<String> = (0..25).map(|index| format!("page*{index}")).collect();
    expected.sort();
    assert_eq!(
        listed, expected,
        "every key once, and only those with the prefix"
    );

    // The body limit: one byte over is refused and writes nothing.
    expect_continue_refused(addr, "/v1/keys/huge", (1 << 20) + 1)
        .await
        .expect_error(413, "payload_too_large");
    get(addr, "/v1/keys/huge")
        .await
        .expect_error(404, "not_found");
    let at_limit_key = put(addr, "/v1/keys/limit", &vec![b'y'; 1 << 19]).await;
    assert_eq!(at_limit_key.status, 200);

    // Unknown routes and methods.
    get(addr, "/v2/nothing").await.expect_error(404, "no_route");
    request(addr, "PATCH", "/v1/keys/cond", None, Vec::new())
        .await
        .expect_error(405, "method_not_allowed");

    // The cluster view (after 30 reads of one key through this node, which
    // makes it the node's hottest key).
    for _ in 0..30 {
        assert_eq!(get(addr, "/v1/keys/limit").await.status, 200);
    }
    let cluster = get(addr, "/v1/cluster").await;
    assert_eq!(cluster.status, 200);
    let view = cluster.json();
    assert_eq!(view["cluster_id"], "demo");
    let shards: Vec<u64> = serde_json::from_value(view["shards"].clone()).expect("shards");
    assert_eq!(shards.len(), 10);
    assert!(shards.iter().all(|&gid| gid == 1 || gid == 2), "{shards:?}");
    assert_eq!(view["groups"].as_array().expect("groups").len(), 2);
    for group in view["groups"].as_array().expect("groups") {
        assert_ne!(group["leader_grpc_addr"], "", "{group}");
    }
    let nodes = view["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 6);
    assert!(nodes.iter().all(|node| node["reachable"] == true));
    let leaders = nodes
        .iter()
        .flat_map(|node| node["replicas"].as_array().expect("replicas").iter())
        .filter(|replica| replica["role"] == "data" && replica["is_leader"] == true)
        .count();
    assert_eq!(leaders, 2);
    let hottest: Vec<&serde_json::Value> = nodes
        .iter()
        .filter_map(|node| node["hot_keys"].as_array()?.first())
        .collect();
    assert!(
        hottest
            .iter()
            .any(|hot| hot["key"] == "limit" && hot["count"].as_u64() >= Some(30)),
        "no node lists key limit first: {nodes:?}"
    );

    // Admin: move a shard, then refusals.
    let shard0_owner = shards[0];
    let target = if shard0_owner == 1 { 2 } else { 1 };
    let moved = post_json(
        addr,
        "/v1/admin/move",
        serde_json::json!({"shard": 0, "gid": target}),
    )
    .await;
    assert_eq!(
        moved.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&moved.body)
    );
    let config_num = moved.json()["config_num"].as_u64().expect("config_num");
    assert!(config_num > view["config_num"].as_u64().expect("num"));
    let after = get(addr, "/v1/cluster").await.json();
    assert_eq!(after["shards"][0], target);
    post_json(
        addr,
        "/v1/admin/move",
        serde_json::json!({"shard": 0, "gid": 99}),
    )
    .await
    .expect_error(400, "invalid_argument");
    post_json(
        addr,
        "/v1/admin/join",
        serde_json::json!({"groups": [{"gid": 7, "peer_addrs": ["not an address"]}]}),
    )
    .await
    .expect_error(400, "invalid_argument");
    post_json(addr, "/v1/admin/leave", serde_json::json!({"gids": [99]}))
        .await
        .expect_error(400, "invalid_argument");
    post_json(addr, "/v1/admin/leave", serde_json::json!({"gid": 1}))
        .await
        .expect_error(400, "bad_request");

    // OpenAPI: every route is in it.
    let document = get(addr, "/v1/openapi.json").await;
    assert_eq!(document.status, 200);
    let document = document.json();
    assert!(
        document["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.")
    );
    for path in [
        "/v1/keys/{key}",
        "/v1/keys/{key}/cas",
        "/v1/keys/{key}/incr",
        "/v1/keys",
        "/v1/cluster",
        "/v1/admin/join",
        "/v1/admin/leave",
        "/v1/admin/move",
        "/livez",
        "/readyz",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path} missing");
    }

    // 429: a gateway on the same node that admits nothing in flight.
    let state = demo.node_state(1).expect("node 1 runs");
    let shedding = HttpConfig {
        max_in_flight: 0,
        ..HttpConfig::default()
    };
    let server = HttpServer::start(
        "127.0.0.1:0".parse().expect("addr"),
        AppState::new(state.clone(), shedding),
    )
    .await
    .expect("start");
    get(server.local_addr(), "/v1/keys/cond")
        .await
        .expect_error(429, "overloaded");
    server.shutdown().await;

    // Slowloris: a client that sends part of a request head and then
    // nothing is closed after `header_read_timeout`; one that sends its
    // head in time on the same gateway is answered.
    let strict = HttpConfig {
        header_read_timeout: Duration::from_millis(500),
        ..HttpConfig::default()
    };
    let server = HttpServer::start(
        "127.0.0.1:0".parse().expect("addr"),
        AppState::new(state.clone(), strict),
    )
    .await
    .expect("start");
    let mut slow = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write part of a head");
    let started = tokio::time::Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "a client that never finished its request head was not closed within 5 s"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "closed after {:?}, before the header-read timeout",
        started.elapsed()
    );
    assert_eq!(get(server.local_addr(), "/livez").await.status, 200);
    server.shutdown().await;

    // 503 `unavailable`: group 2's replicas stop; a key of group 2 finds
    // no leader before the request deadline (5 s). (With one replica left,
    // a leader that has not yet noticed it lost its quorum may still
    // answer a read, so all three stop.)
    // A shard group 2 owned before and after the move (a moved shard's
    // old owner may serve it until it learns of the new configuration).
    let now: Vec<u64> =
        serde_json::from_value(get(addr, "/v1/cluster").await.json()["shards"].clone())
            .expect("shards");
    let steady: Vec<u64> = shards
        .iter()
        .zip(&now)
        .enumerate()
        .map(|(shard, (&was, &is))| {
            if shard != 0 && was == 2 && is == 2 {
                2
            } else {
                0
            }
        })
        .collect();
    let key = key_of_group(&steady, 2);
    for node_id in 4..=6 {
        demo.stop_node(node_id).await.expect("a running node stops");
    }
    // 503 `timeout`: a gateway whose request timeout (200 ms) is shorter
    // than the forwarding deadline (5 s), asked for a key of the stopped
    // group, times out first. (A timeout shorter than any read would race
    // a fast local read on an idle machine: the read can finish before the
    // timer's first tick.)
    let hasty = HttpConfig {
        request_timeout: Duration::from_millis(200),
        ..HttpConfig::default()
    };
    let server = HttpServer::start(
        "127.0.0.1:0".parse().expect("addr"),
        AppState::new(state, hasty),
    )
    .await
    .expect("start");
    get(server.local_addr(), &format!("/v1/keys/{key}"))
        .await
        .expect_error(503, "timeout");
    server.shutdown().await;

    get(addr, &format!("/v1/keys/{key}"))
        .await
        .expect_error(503, "unavailable");
    demo.shutdown().await;
}

/// Parses the Prometheus text with a parser made for it, checks the names
/// follow the conventions, and checks the counters move with requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_follow_naming_and_move() {
    let demo = start_demo(1).await;
    let addr = demo.http_addr(1).expect("node 1 serves HTTP");
    let scrape = |addr| async move {
        let answer = get(addr, "/metrics").await;
        assert_eq!(answer.status, 200);
        assert!(
            answer
                .content_type
                .starts_with("application/openmetrics-text"),
            "{}",
            answer.content_type
        );
        let text = String::from_utf8(answer.body).expect("UTF-8");
        let lines = text.lines().map(|line| Ok(line.to_string()));
        let parsed = prometheus_parse::Scrape::parse(lines).expect("a valid exposition");
        (text, parsed)
    };
    let count = |scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|sample| sample.metric == name)
            .filter(|sample| labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v)))
            .map(|sample| match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let (_, before) = scrape(addr).await;
    let puts_before = count(
        &before,
        "distcache_requests_total",
        &[("frontend", "http"), ("command", "Put"), ("outcome", "ok")],
    );
    for i in 0..20 {
        assert_eq!(
            put(addr, &format!("/v1/keys/metric-{i}"), b"v")
                .await
                .status,
            200
        );
    }
    for _ in 0..30 {
        assert_eq!(get(addr, "/v1/keys/metric-hot").await.status, 404);
    }
    let (text, after) = scrape(addr).await;
    let puts_after = count(
        &after,
        "distcache_requests_total",
        &[("frontend", "http"), ("command", "Put"), ("outcome", "ok")],
    );
    assert_eq!(puts_after - puts_before, 20.0, "{text}");
    assert!(count(&after, "distcache_requests_total", &[("command", "Get")]) >= 30.0);
    assert!(
        count(
            &after,
            "distcache_request_duration_seconds_count",
            &[("frontend", "http"), ("command", "Put")]
        ) >= 20.0
    );
    assert!(
        count(&after, "distcache_served_locally_total", &[])
            + count(&after, "distcache_forwarded_requests_total", &[])
            >= 50.0
    );
    // (The parser cuts label values at braces: read this one from the text.)
    assert!(
        text.contains("distcache_http_requests_total{route=\"/v1/keys/{key}\"}"),
        "{text}"
    );
    assert!(count(&after, "distcache_raft_term", &[("role", "data")]) >= 1.0);
    assert!(
        count(
            &after,
            "distcache_raft_commit_index",
            &[("role", "controller")]
        ) >= 1.0
    );
    assert!(count(&after, "distcache_shard_keys", &[]) >= 1.0, "{text}");
    assert!(count(&after, "distcache_shard_bytes", &[]) > 0.0, "{text}");
    assert!(
        count(
            &after,
            "distcache_hot_key_requests",
            &[("key", "metric-hot")]
        ) >= 30.0,
        "{text}"
    );
    assert!(
        count(
            &after,
            "distcache_connected_clients",
            &[("frontend", "http")]
        ) >= 1.0,
        "{text}"
    );

    // Naming: promtool's conventions.
    let mut families = 0;
    for line in text.lines().filter(|line| line.starts_with("# TYPE ")) {
        let mut words = line.split_whitespace().skip(2);
        let name = words.next().expect("name");
        let kind = words.next().expect("type");
        families += 1;
        assert!(name.starts_with("distcache_"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name} is not snake case"
        );
        match kind {
            "counter" => assert!(
                !name.ends_with("_total"),
                "{name}: TYPE names the family, samples add _total"
            ),
            "histogram" => assert!(
                name.ends_with("_seconds") || name.ends_with("_bytes"),
                "{name}: a unit suffix"
            ),
            "gauge" => assert!(!name.ends_with("_total"), "{name}: a gauge is not a total"),
            other => panic!("{name}: unexpected type {other}"),
        }
    }
    assert!(families >= 15, "{families} families");
    // No counter sample goes without `_total`.
    for line in text.lines().filter(|line| line.ends_with(" counter")) {
        let name = line.split_whitespace().nth(2).expect("name");
        for sample in text.lines().filter(|sample| !sample.starts_with('#')) {
            let metric = sample.split(['{', ' ']).next().unwrap_or("");
            assert_ne!(metric, name, "{name}: a counter sample without _total");
        }
    }
    demo.shutdown().await;
}

/// A sample's value (counter, gauge or untyped), summed over the samples
/// of `name` whose labels include `labels`.
fn sample_sum(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .filter(|sample| labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v)))
        .map(|sample| match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Every node's `/metrics`, parsed.
async fn scrape_all(demo: &TestCluster, nodes: u64) -> Vec<prometheus_parse::Scrape> {
    let mut scrapes = Vec::new();
    for node in 1..=nodes {
        let addr = demo.http_addr(node).expect("the node serves HTTP");
        let answer = get(addr, "/metrics").await;
        assert_eq!(answer.status, 200);
        let text = String::from_utf8(answer.body).expect("UTF-8");
        let lines = text.lines().map(|line| Ok(line.to_string()));
        scrapes.push(prometheus_parse::Scrape::parse(lines).expect("a valid exposition"));
    }
    scrapes
}

/// Summed over every node.
fn cluster_sum(scrapes: &[prometheus_parse::Scrape], name: &str, labels: &[(&str, &str)]) -> f64 {
    scrapes
        .iter()
        .map(|scrape| sample_sum(scrape, name, labels))
        .sum()
}

/// The storage, snapshot, leader and migration metrics move when the
/// thing each measures happens: writes (fsyncs, entry bytes), snapshots (a
/// small `max_raft_state_bytes` forces them), elections (at start), and a
/// shard move (bytes sent by the donor group, received by the new owner).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_snapshot_leader_and_migration_metrics_move() {
    const NODES: u64 = 6;
    tracing::info!("phase 1: two groups that snapshot every 4 KiB of log");
    let demo = TestCluster::builder()
        .groups(2)
        .replicas(3)
        .max_raft_state_bytes(4096)
        .start()
        .await;
    let addr = demo.http_addr(1).expect("node 1 serves HTTP");
    let before = scrape_all(&demo, NODES).await;
    let data = [("role", "data")];
    for scrape in &before {
        assert!(
            sample_sum(scrape, "distcache_raft_leader_changes_total", &data) >= 1.0,
            "every data replica has seen its group's first leader"
        );
    }

    tracing::info!("phase 2: 60 writes of 200 bytes into shard 0");
    let view = get(addr, "/v1/cluster").await.json();
    let shards: Vec<u64> = serde_json::from_value(view["shards"].clone()).expect("shards");
    let keys: Vec<String> = (0..100_000)
        .map(|i| format!("moving-{i}"))
        .filter(|key| shardkv::key_to_shard(key.as_bytes(), shards.len()) == 0)
        .take(60)
        .collect();
    for key in &keys {
        assert_eq!(
            put(addr, &format!("/v1/keys/{key}"), &[b'v'; 200])
                .await
                .status,
            200
        );
    }
    let after_writes = scrape_all(&demo, NODES).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        cluster_sum(&after_writes, name, labels) - cluster_sum(&before, name, labels)
    };
    // Three replicas of the owning group each store every write.
    assert!(
        moved("distcache_raft_fsync_duration_seconds_count", &data) >= 60.0,
        "fsyncs: {}",
        moved("distcache_raft_fsync_duration_seconds_count", &data)
    );
    assert!(moved("distcache_raft_fsync_duration_seconds_sum", &data) > 0.0);
    assert!(
        moved("distcache_raft_entry_written_bytes_total", &data) >= 3.0 * 60.0 * 200.0,
        "entry bytes: {}",
        moved("distcache_raft_entry_written_bytes_total", &data)
    );
    assert!(moved("distcache_raft_snapshot_written_bytes_total", &data) > 0.0);
    assert!(
        moved(
            "distcache_raft_snapshot_write_duration_seconds_count",
            &data
        ) >= 1.0
    );
    assert!(cluster_sum(&after_writes, "distcache_raft_snapshot_bytes", &data) > 0.0);

    tracing::info!("phase 3: move shard 0 to the other group");
    let target = if shards[0] == 1 { 2 } else { 1 };
    let answer = post_json(
        addr,
        "/v1/admin/move",
        serde_json::json!({"shard": 0, "gid": target}),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
    // The move is done once the new owner serves a moved key.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (sent, received) = loop {
        let scrapes = scrape_all(&demo, NODES).await;
        let sent = cluster_sum(&scrapes, "distcache_migration_sent_bytes_total", &[]);
        let received = cluster_sum(&scrapes, "distcache_migration_received_bytes_total", &[]);
        // 60 values of 200 bytes, encoded: at least their values.
        if sent >= 60.0 * 200.0 && received >= 60.0 * 200.0 {
            break (sent, received);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no migration bytes within 30 s: sent {sent}, received {received}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tracing::info!("moved: {sent} bytes sent, {received} received");
    let key = &keys[0];
    assert_eq!(get(addr, &format!("/v1/keys/{key}")).await.status, 200);
    demo.shutdown().await;
}

/// `/readyz` on `addr` until `accept` takes its answer, at most `bound`.
async fn wait_for_readyz(
    addr: SocketAddr,
    bound: Duration,
    what: &str,
    accept: impl Fn(&Answer) -> bool,
) -> Answer {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let answer = get(addr, "/readyz").await;
        if accept(&answer) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not seen within {bound:?}; last /readyz: {} {}",
            answer.status,
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/readyz` is 503 `not_ready` while a shard this node must serve is still
/// arriving (its donor group has lost its majority, so the pull waits), and
/// 200 again once it has arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_not_ready_while_a_shard_arrives() {
    tracing::info!("phase 1: two groups; node 1 (group 1, a controller replica) ready");
    let demo = start_demo(2).await;
    let addr = demo.http_addr(1).expect("node 1 serves HTTP");
    wait_for_readyz(addr, Duration::from_secs(30), "node 1 ready", |answer| {
        answer.status == 200
    })
    .await;
    let view = get(addr, "/v1/cluster").await.json();
    let shards: Vec<u64> = serde_json::from_value(view["shards"].clone()).expect("shards");
    let shard = shards
        .iter()
        .position(|&gid| gid == 2)
        .expect("group 2 owns a shard");

    tracing::info!("phase 2: group 2 loses its majority (nodes 5 and 6 stop)");
    for node in [5, 6] {
        demo.stop_node_without_handoff(node).await.expect("stop");
    }

    tracing::info!("phase 3: shard {shard} moves to group 1; it cannot arrive");
    let moved = post_json(
        addr,
        "/v1/admin/move",
        serde_json::json!({"shard": shard, "gid": 1}),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.text());
    let waiting = wait_for_readyz(
        addr,
        Duration::from_secs(30),
        "not ready while the shard arrives",
        |answer| answer.status == 503 && answer.text().contains("arriving"),
    )
    .await;
    waiting.expect_error(503, "not_ready");

    tracing::info!("phase 4: group 2 comes back; the shard arrives; ready again");
    for node in [5, 6] {
        demo.start_node(node).await.expect("start");
    }
    wait_for_readyz(addr, Duration::from_secs(60), "ready again", |answer| {
        answer.status == 200
    })
    .await;
    demo.shutdown().await;
}
