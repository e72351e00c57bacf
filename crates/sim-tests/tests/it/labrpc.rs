//! labrpc under simulation: the 6.5840 labrpc tests in substance, plus the
//! faults our Raft and KV suites rely on (long reordering, kill, restart).
//!
//! Each test builds its nodes through `labrpc::sim::Network`, so every call
//! crosses the fault layer and madsim's network, and replays from its seed.
#![cfg(madsim)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::join_all;
use labrpc::sim::{Network, NodeId};
use labrpc::{Client, ClientConfig, Router, Rpc, RpcError, Server, ServerConfig, encode};
use serde::{Deserialize, Serialize};
use sim_tests::harness::{
    Caller, binomial_bounds, client_ip, elapsed_ms, node_addr, node_ip, phase, within,
};

const TEST_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Echo(String);
impl Rpc for Echo {
    const NAME: &'static str = "test.Echo";
    type Reply = String;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Add {
    a: i64,
    b: i64,
}
impl Rpc for Add {
    const NAME: &'static str = "test.Add";
    type Reply = i64;
}

/// Counts handler runs on the server; the reply is the count so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Bump;
impl Rpc for Bump {
    const NAME: &'static str = "test.Bump";
    type Reply = u64;
}

/// Never answers: the handler waits forever.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hang;
impl Rpc for Hang {
    const NAME: &'static str = "test.Hang";
    type Reply = ();
}

/// Shared, observable state of one server node across restarts.
#[derive(Default)]
struct Observed {
    bumps: AtomicU64,
}

fn standard_router(observed: Arc<Observed>) -> Router {
    let mut router = Router::new();
    router
        .add(|Echo(text): Echo| async move { text })
        .add(|Add { a, b }: Add| async move { a + b })
        .add(move |_: Bump| {
            let observed = Arc::clone(&observed);
            async move { observed.bumps.fetch_add(1, Ordering::SeqCst) + 1 }
        })
        .add(|_: Hang| std::future::pending::<()>());
    router
}

/// Adds server node `index`, serving the standard router from its init.
fn add_server(net: &Network, index: usize, observed: Arc<Observed>) -> NodeId {
    net.add_node(&format!("server-{index}"), node_ip(index), move || {
        let router = standard_router(Arc::clone(&observed));
        async move {
            Server::start(node_addr(index), router, ServerConfig::default())
                .await
                .expect("simulated server starts");
        }
    })
}

struct Cluster {
    net: Network,
    servers: Vec<NodeId>,
    observed: Vec<Arc<Observed>>,
}

async fn cluster(servers: usize) -> Cluster {
    let net = Network::new();
    let observed: Vec<Arc<Observed>> = (0..servers).map(|_| Arc::default()).collect();
    let nodes = (0..servers)
        .map(|index| add_server(&net, index, Arc::clone(&observed[index])))
        .collect();
    // Let every init run and bind before the first call.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Cluster {
        net,
        servers: nodes,
        observed,
    }
}

/// Runs `call` on a fresh client node, so the network's faults apply to it.
async fn on_client<T, F>(net: &Network, index: usize, call: F) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let node = net.add_client_node(&format!("client-{index}"), client_ip(index));
    net.spawn(node, call)
        .await
        .expect("client task ran to completion")
}

/// 6.5840 TestBasic: one call, the right reply.
#[madsim::test]
async fn labrpc_basic() {
    let cluster = cluster(1).await;
    let client = Caller::new(&cluster.net, 0, ClientConfig::default());
    within("basic call", TEST_LIMIT, async {
        let reply = client.call(node_addr(0), &Echo("hello".into())).await;
        assert_eq!(reply, Ok("hello".to_string()));
        let sum = client.call(node_addr(0), &Add { a: 40, b: 2 }).await;
        assert_eq!(sum, Ok(42));
    })
    .await;
    assert_eq!(cluster.net.rpc_count(cluster.servers[0]), 2);
}

/// 6.5840 TestTypes: requests and replies of many shapes survive the codec.
#[madsim::test]
async fn labrpc_types() {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Empty,
        Point(i32, i32),
        Named { name: String, tags: Vec<String> },
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Everything {
        small: u8,
        signed: i64,
        float: f64,
        flag: bool,
        text: String,
        bytes: Vec<u8>,
        maybe: Option<Box<Everything>>,
        shapes: Vec<Shape>,
        map: BTreeMap<String, u64>,
        unit: (),
    }
    impl Rpc for Everything {
        const NAME: &'static str = "test.Everything";
        type Reply = (Everything, Option<String>);
    }
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Nothing;
    impl Rpc for Nothing {
        const NAME: &'static str = "test.Nothing";
        type Reply = ();
    }

    let net = Network::new();
    net.add_node("server-0", node_ip(0), || async {
        let mut router = Router::new();
        router
            .add(|value: Everything| async move {
                let note = value.maybe.as_ref().map(|inner| inner.text.clone());
                (value, note)
            })
            .add(|_: Nothing| async {});
        Server::start(node_addr(0), router, ServerConfig::default())
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(10)).await;

    let inner = Everything {
        small: 255,
        signed: -1,
        float: 0.1,
        flag: true,
        text: "inner ✓ unicode".into(),
        bytes: vec![],
        maybe: None,
        shapes: vec![Shape::Empty],
        map: BTreeMap::new(),
        unit: (),
    };
    let outer = Everything {
        small: 0,
        signed: i64::MIN,
        float: f64::MAX,
        flag: false,
        text: String::new(),
        bytes: (0..=255).collect(),
        maybe: Some(Box::new(inner)),
        shapes: vec![
            Shape::Point(-3, 4),
            Shape::Named {
                name: "n".into(),
                tags: vec!["a".into(), "b".into()],
            },
        ],
        map: [("one".to_string(), 1u64), ("max".to_string(), u64::MAX)].into(),
        unit: (),
    };
    let client = Caller::new(&net, 0, ClientConfig::default());
    let (echoed, note) = client
        .call(node_addr(0), &outer)
        .await
        .expect("call succeeds");
    assert_eq!(echoed, outer);
    assert_eq!(note.as_deref(), Some("inner ✓ unicode"));
    assert_eq!(client.call(node_addr(0), &Nothing).await, Ok(()));
}

/// 6.5840 TestDisconnect: a disconnected client's calls fail, quickly, and
/// succeed again once it reconnects. With long delays, failures take longer
/// (up to 7 s) but never outlast the call's deadline.
#[madsim::test]
async fn labrpc_disconnect() {
    let cluster = cluster(1).await;
    let net = cluster.net.clone();
    let client_node = net.add_client_node("client-0", client_ip(0));

    phase("disconnected: calls fail within 100 ms");
    net.disconnect(client_node);
    let failures = net
        .spawn(client_node, async {
            let client = Client::default();
            let mut failures = Vec::new();
            for _ in 0..20 {
                let started = labrpc::runtime::now();
                let result = client.call(node_addr(0), &Echo("x".into())).await;
                failures.push((result, elapsed_ms(started)));
            }
            failures
        })
        .await
        .unwrap();
    for (result, took_ms) in &failures {
        assert!(
            matches!(result, Err(RpcError::Unreachable { .. })),
            "got {result:?}"
        );
        assert!(
            *took_ms <= 100,
            "a call to a disconnected peer took {took_ms} ms"
        );
    }
    assert_eq!(
        net.rpc_count(cluster.servers[0]),
        0,
        "a disconnected call was delivered"
    );

    phase("long delays: failures take up to 7 s, bounded by the deadline");
    net.set_long_delays(true);
    let long_failures = net
        .spawn(client_node, async {
            let client = Client::new(ClientConfig {
                timeout: Duration::from_secs(10),
                ..ClientConfig::default()
            });
            let calls = (0..20).map(|_| {
                let client = client.clone();
                async move {
                    let started = labrpc::runtime::now();
                    let result = client.call(node_addr(0), &Echo("x".into())).await;
                    (result.is_err(), elapsed_ms(started))
                }
            });
            join_all(calls).await
        })
        .await
        .unwrap();
    assert!(long_failures.iter().all(|(failed, _)| *failed));
    let slowest_ms = long_failures.iter().map(|(_, ms)| *ms).max().unwrap();
    assert!(
        (1_000..=7_000).contains(&slowest_ms),
        "with long delays the slowest of 20 failures took {slowest_ms} ms, expected 1-7 s"
    );
    net.set_long_delays(false);

    phase("reconnected: calls succeed");
    net.connect(client_node);
    let reply = net
        .spawn(client_node, async {
            Client::default()
                .call(node_addr(0), &Echo("back".into()))
                .await
        })
        .await
        .unwrap();
    assert_eq!(reply, Ok("back".to_string()));
    assert_eq!(net.rpc_count(cluster.servers[0]), 1);
}

/// 6.5840 TestCounts: the per-server and total counters are exact.
#[madsim::test]
async fn labrpc_counts() {
    let cluster = cluster(2).await;
    let client = Caller::new(&cluster.net, 0, ClientConfig::default());
    for i in 0..17 {
        assert_eq!(
            client.call(node_addr(0), &Add { a: i, b: i }).await,
            Ok(2 * i)
        );
    }
    for _ in 0..5 {
        client.call(node_addr(1), &Bump).await.unwrap();
    }
    assert_eq!(cluster.net.rpc_count(cluster.servers[0]), 17);
    assert_eq!(cluster.net.rpc_count(cluster.servers[1]), 5);
    assert_eq!(cluster.net.total_rpc_count(), 22);
    assert_eq!(cluster.observed[1].bumps.load(Ordering::SeqCst), 5);
}

/// 6.5840 TestBytes: the byte counter equals the encoded sizes of requests
/// sent plus replies delivered, exactly.
#[madsim::test]
async fn labrpc_bytes() {
    let cluster = cluster(1).await;
    let client = Caller::new(&cluster.net, 0, ClientConfig::default());
    let mut expected_bytes = 0u64;
    for size in [0usize, 1, 10, 100, 1_000, 10_000, 100_000] {
        let request = Echo("x".repeat(size));
        let reply = client.call(node_addr(0), &request).await.unwrap();
        expected_bytes += encode(&request).unwrap().len() as u64;
        expected_bytes += encode(&reply).unwrap().len() as u64;
        assert!(
            encode(&request).unwrap().len() >= size,
            "the encoding of {size} bytes of text is shorter than the text"
        );
    }
    assert_eq!(cluster.net.total_bytes(), expected_bytes);

    // Lost messages: a request that enters the network counts, a reply that
    // is never delivered does not.
    let client_node = cluster.net.add_client_node("client-1", client_ip(1));
    cluster.net.disconnect(client_node);
    let request = Echo("y".repeat(500));
    let request_bytes = encode(&request).unwrap().len() as u64;
    let result = cluster
        .net
        .spawn(client_node, async move {
            Client::default().call(node_addr(0), &request).await
        })
        .await
        .unwrap();
    assert!(result.is_err());
    assert_eq!(cluster.net.total_bytes(), expected_bytes + request_bytes);
}

/// 6.5840 TestConcurrentMany: many clients, each with several calls in
/// flight at once, all answered correctly and counted exactly.
#[madsim::test]
async fn labrpc_concurrent_many() {
    let cluster = cluster(1).await;
    let clients = 20usize;
    let calls_per_client = 10i64;
    let mut tasks = Vec::new();
    for index in 0..clients {
        let node = cluster
            .net
            .add_client_node(&format!("client-{index}"), client_ip(index));
        tasks.push(cluster.net.spawn(node, async move {
            let client = Client::default();
            let calls = (0..calls_per_client).map(|call| {
                let client = client.clone();
                let a = index as i64 * 1000 + call;
                async move { (a, client.call(node_addr(0), &Add { a, b: 1 }).await) }
            });
            join_all(calls).await
        }));
    }
    for task in tasks {
        for (a, reply) in task.await.unwrap() {
            assert_eq!(reply, Ok(a + 1));
        }
    }
    let total = clients as u64 * calls_per_client as u64;
    assert_eq!(cluster.net.rpc_count(cluster.servers[0]), total);
    assert_eq!(cluster.net.total_rpc_count(), total);
}

/// 6.5840 TestUnreliable: about 10% of requests and 10% of replies are lost.
/// Bounds are 5 standard deviations, so a correct network passes every seed.
#[madsim::test]
async fn labrpc_unreliable() {
    let cluster = cluster(1).await;
    cluster.net.set_reliable(false);
    let clients = 300usize;
    let mut tasks = Vec::new();
    for index in 0..clients {
        let node = cluster
            .net
            .add_client_node(&format!("client-{index}"), client_ip(index));
        tasks.push(cluster.net.spawn(node, async move {
            let started = labrpc::runtime::now();
            let reply = Client::default()
                .call(
                    node_addr(0),
                    &Add {
                        a: index as i64,
                        b: 1,
                    },
                )
                .await;
            (index, reply, elapsed_ms(started))
        }));
    }
    let mut successes = 0u64;
    for task in tasks {
        let (index, reply, _took_ms) = task.await.unwrap();
        match reply {
            Ok(sum) => {
                assert_eq!(sum, index as i64 + 1);
                successes += 1;
            }
            Err(error) => assert!(matches!(error, RpcError::Unreachable { .. }), "{error}"),
        }
    }
    let delivered = cluster.net.rpc_count(cluster.servers[0]);
    let (delivered_low, delivered_high) = binomial_bounds(clients as u64, 0.9, 5.0);
    assert!(
        (delivered_low..=delivered_high).contains(&delivered),
        "{delivered} of {clients} requests delivered, expected {delivered_low}-{delivered_high} (10% loss)"
    );
    // A success needs the request and the reply through: 0.9 * 0.9.
    let (success_low, success_high) = binomial_bounds(clients as u64, 0.81, 5.0);
    assert!(
        (success_low..=success_high).contains(&successes),
        "{successes} of {clients} calls succeeded, expected {success_low}-{success_high}"
    );
    assert!(
        successes <= delivered,
        "more replies than delivered requests"
    );
    assert_eq!(cluster.net.total_rpc_count(), clients as u64);
}

/// 6.5840 TestConcurrentOne: one client, many calls in flight to one server.
#[madsim::test]
async fn labrpc_concurrent_one() {
    let cluster = cluster(1).await;
    let calls = 50u64;
    let replies = on_client(&cluster.net, 0, async move {
        let client = Client::default();
        join_all((0..calls).map(|_| {
            let client = client.clone();
            async move { client.call(node_addr(0), &Bump).await }
        }))
        .await
    })
    .await;
    let mut counts: Vec<u64> = replies.into_iter().map(|reply| reply.unwrap()).collect();
    counts.sort_unstable();
    // Each call ran exactly once: the counter values are 1..=calls.
    assert_eq!(counts, (1..=calls).collect::<Vec<_>>());
    assert_eq!(cluster.net.rpc_count(cluster.servers[0]), calls);
}

/// 6.5840 TestRegression1: a call stuck in a server's handler comes unstuck
/// (with an error) when that server is killed, well before its deadline;
/// other servers keep answering.
#[madsim::test]
async fn labrpc_regression1() {
    let cluster = cluster(2).await;
    let client = Caller::new(
        &cluster.net,
        0,
        ClientConfig {
            timeout: Duration::from_secs(60),
            ..ClientConfig::default()
        },
    );
    let stuck = {
        let client = client.clone();
        tokio::spawn(async move {
            let result = client.call(node_addr(0), &Hang).await;
            (result, labrpc::runtime::now())
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        cluster.net.rpc_count(cluster.servers[0]),
        1,
        "the hanging call was not delivered"
    );

    let killed_at = labrpc::runtime::now();
    cluster.net.kill(cluster.servers[0]);
    let (result, returned_at) = within("the stuck call", TEST_LIMIT, stuck).await.unwrap();
    assert!(
        result.is_err(),
        "a call to a killed server returned {result:?}"
    );
    let unstuck_ms = returned_at.duration_since(killed_at).as_millis();
    assert!(
        unstuck_ms < 1_000,
        "the stuck call took {unstuck_ms} ms to fail after the kill"
    );

    assert_eq!(client.call(node_addr(1), &Add { a: 1, b: 2 }).await, Ok(3));
}

/// 6.5840 TestKilled: once a server is killed its handlers never run again,
/// whatever is sent to it; after a restart the new instance serves.
#[madsim::test]
async fn labrpc_killed() {
    let cluster = cluster(1).await;
    let server = cluster.servers[0];
    let observed = Arc::clone(&cluster.observed[0]);
    let client = Caller::new(
        &cluster.net,
        0,
        ClientConfig {
            timeout: Duration::from_millis(500),
            ..ClientConfig::default()
        },
    );
    assert_eq!(client.call(node_addr(0), &Bump).await, Ok(1));

    phase("kill: calls fail and the handler never runs");
    cluster.net.kill(server);
    for _ in 0..20 {
        let result = client.call(node_addr(0), &Bump).await;
        assert!(result.is_err(), "a killed server answered {result:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        observed.bumps.load(Ordering::SeqCst),
        1,
        "a killed server's handler ran"
    );
    assert_eq!(cluster.net.rpc_count(server), 1);

    phase("restart: the node's init runs again and serves");
    cluster.net.restart(server).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(client.call(node_addr(0), &Bump).await, Ok(2));
}

/// Long reordering: about 2/3 of replies are held back 200-2200 ms, so
/// replies overtake one another; every reply still arrives, intact.
#[madsim::test]
async fn labrpc_long_reordering() {
    let cluster = cluster(1).await;
    cluster.net.set_long_reordering(true);
    let calls = 300i64;
    let client = Caller::new(
        &cluster.net,
        0,
        ClientConfig {
            timeout: Duration::from_secs(5),
            ..ClientConfig::default()
        },
    );
    let arrivals = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for sequence in 0..calls {
        let client = client.clone();
        let arrivals = Arc::clone(&arrivals);
        tasks.push(tokio::spawn(async move {
            let started = labrpc::runtime::now();
            let reply = client.call(node_addr(0), &Add { a: sequence, b: 0 }).await;
            assert_eq!(reply, Ok(sequence), "reply to call {sequence}");
            arrivals.lock().unwrap().push(sequence);
            elapsed_ms(started)
        }));
        // Send in order, a millisecond apart.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut latencies_ms = Vec::new();
    for task in tasks {
        latencies_ms.push(task.await.unwrap());
    }
    let held_back = latencies_ms.iter().filter(|&&ms| ms >= 200).count() as u64;
    let (low, high) = binomial_bounds(calls as u64, 2.0 / 3.0, 5.0);
    assert!(
        (low..=high).contains(&held_back),
        "{held_back} of {calls} replies held back >= 200 ms, expected {low}-{high}"
    );
    let slowest_ms = *latencies_ms.iter().max().unwrap();
    assert!(
        slowest_ms <= 2_300,
        "a reply took {slowest_ms} ms, expected at most ~2200"
    );
    let arrivals = arrivals.lock().unwrap();
    let overtaken = arrivals.windows(2).filter(|pair| pair[0] > pair[1]).count();
    assert!(
        overtaken > calls as usize / 10,
        "only {overtaken} replies arrived out of order"
    );
}

/// Restart re-runs the node's init, and the files the node fsynced survive.
#[madsim::test]
async fn labrpc_restart_keeps_files() {
    /// Reads the boot count the node recorded.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Boots;
    impl Rpc for Boots {
        const NAME: &'static str = "test.Boots";
        type Reply = u64;
    }

    async fn boot_count_after_this_boot() -> u64 {
        let path = "boots";
        let previous = match madsim::fs::read(path).await {
            Ok(bytes) => String::from_utf8(bytes).unwrap().parse::<u64>().unwrap(),
            Err(_) => 0,
        };
        let file = madsim::fs::File::create(path).await.unwrap();
        let now = previous + 1;
        file.write_all_at(now.to_string().as_bytes(), 0)
            .await
            .unwrap();
        file.sync_all().await.unwrap();
        now
    }

    let net = Network::new();
    let node = net.add_node("server-0", node_ip(0), || async {
        let boots = boot_count_after_this_boot().await;
        let mut router = Router::new();
        router.add(move |_: Boots| async move { boots });
        Server::start(node_addr(0), router, ServerConfig::default())
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let client = Caller::new(&net, 0, ClientConfig::default());
    assert_eq!(client.call(node_addr(0), &Boots).await, Ok(1));

    for expected in 2..=4 {
        net.restart(node).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            client.call(node_addr(0), &Boots).await,
            Ok(expected),
            "after restart {}",
            expected - 1
        );
    }
}

/// Pause freezes a node: calls to it time out; after resume it answers.
#[madsim::test]
async fn labrpc_pause_resume() {
    let cluster = cluster(1).await;
    let client = Caller::new(
        &cluster.net,
        0,
        ClientConfig {
            timeout: Duration::from_millis(300),
            ..ClientConfig::default()
        },
    );
    cluster.net.pause(cluster.servers[0]);
    let result = client.call(node_addr(0), &Echo("frozen?".into())).await;
    assert!(
        matches!(result, Err(RpcError::Timeout { .. })),
        "got {result:?}"
    );
    cluster.net.resume(cluster.servers[0]);
    assert_eq!(
        client.call(node_addr(0), &Echo("thawed".into())).await,
        Ok("thawed".into())
    );
}
