#![cfg_attr(madsim, allow(unused))]
//! Request latency through the public gRPC API on the demo cluster, and the
//! cost of one forwarding hop.
//!
//! ```text
//! cargo bench -p distcache --bench grpc_latency            # 2000 requests per case
//! REQUESTS=5000 cargo bench -p distcache --bench grpc_latency
//! ```
//!
//! Starts the demo (3 data groups x 3 replicas, a 3-replica controller,
//! real gRPC and files) in this process, then, one request at a time:
//!
//! - `direct`: gRPC to the node hosting the key's group leader (what
//!   `distcache-client` does): no hop inside the cluster;
//! - `forwarded`: gRPC to a node of another group, which forwards once
//!   (labrpc) to the leader and relays the answer;
//! - `client`: `distcache-client` (routing, session pool) end to end.
//!
//! The forwarding hop's cost is `forwarded - direct` at each percentile.

use std::time::Duration;

use distcache::demo::{Demo, DemoOptions};
use distcache_client::proto::cache_client::CacheClient;
use distcache_client::proto::{GetRequest, SetRequest};
use labrpc::runtime::now;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p50 = percentile(&samples, 0.50);
    let p99 = percentile(&samples, 0.99);
    println!(
        "{name:<22} n={:<6} p50 {:>8.1} us  p99 {:>8.1} us  max {:>8.1} us",
        samples.len(),
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        samples.last().map_or(0.0, |max| max.as_secs_f64() * 1e6),
    );
    (p50, p99)
}

fn free_port_base(count: u16) -> u16 {
    for _ in 0..100 {
        let Ok(probe) = std::net::TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(base) = probe.local_addr().map(|addr| addr.port()) else {
            continue;
        };
        drop(probe);
        if base > 65535 - count {
            continue;
        }
        let all_free = (base..base + count)
            .all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no block of {count} free ports");
}

#[cfg(not(madsim))]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let requests: usize = std::env::var("REQUESTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2000);
    let options = DemoOptions {
        grpc_port: free_port_base(21),
        ..DemoOptions::default()
    };
    let demo = Demo::start(&options, Duration::from_secs(120))
        .await
        .expect("the demo starts");
    println!("demo ready; {requests} sequential requests per case");

    // The key's group and where its leader and a node of another group are.
    let key = b"bench-key".to_vec();
    let first = demo.node_state(1).expect("node 1 runs");
    let forwarder = &first.forwarder;
    let config = forwarder.routing();
    let gid = config.shards[shardkv::key_to_shard(&key, config.shard_count())];
    let statuses: Vec<_> = demo
        .running()
        .into_iter()
        .filter_map(|id| demo.node_state(id))
        .map(|state| state.local_status())
        .collect();
    let leader = statuses
        .iter()
        .find(|node| {
            node.replicas
                .iter()
                .any(|r| r.role == "data" && r.gid == gid && r.is_leader)
        })
        .expect("the key's group has a leader")
        .grpc_addr
        .clone();
    let other = statuses
        .iter()
        .find(|node| {
            node.replicas
                .iter()
                .all(|r| r.role != "data" || r.gid != gid)
        })
        .expect("a node of another group")
        .grpc_addr
        .clone();
    println!("key group {gid}: leader node at {leader}, forwarding node at {other}");

    let mut direct = CacheClient::connect(format!("http://{leader}"))
        .await
        .expect("connect");
    let mut forwarded = CacheClient::connect(format!("http://{other}"))
        .await
        .expect("connect");
    direct
        .set(SetRequest {
            key: key.clone(),
            value: vec![7; 100],
            ..SetRequest::default()
        })
        .await
        .expect("set");

    // Warm up both paths (connections, leader hints).
    for _ in 0..200 {
        direct
            .get(GetRequest { key: key.clone() })
            .await
            .expect("get");
        forwarded
            .get(GetRequest { key: key.clone() })
            .await
            .expect("get");
    }

    let mut results = Vec::new();
    for (name, client) in [
        ("get direct", &mut direct),
        ("get forwarded", &mut forwarded),
    ] {
        let mut samples = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = now();
            client
                .get(GetRequest { key: key.clone() })
                .await
                .expect("get");
            samples.push(started.elapsed());
        }
        results.push(report(name, samples));
    }
    for (name, client) in [
        ("set direct", &mut direct),
        ("set forwarded", &mut forwarded),
    ] {
        let mut samples = Vec::with_capacity(requests);
        for i in 0..requests {
            let started = now();
            client
                .set(SetRequest {
                    key: key.clone(),
                    value: format!("value-{i:0>94}").into_bytes(),
                    ..SetRequest::default()
                })
                .await
                .expect("set");
            samples.push(started.elapsed());
        }
        results.push(report(name, samples));
    }
    let hop = |direct: (Duration, Duration), forwarded: (Duration, Duration)| {
        (
            forwarded.0.as_secs_f64() * 1e6 - direct.0.as_secs_f64() * 1e6,
            forwarded.1.as_secs_f64() * 1e6 - direct.1.as_secs_f64() * 1e6,
        )
    };
    let (get_p50, get_p99) = hop(results[0], results[1]);
    let (set_p50, set_p99) = hop(results[2], results[3]);
    println!("forwarding hop (get)   p50 {get_p50:+.1} us  p99 {get_p99:+.1} us");
    println!("forwarding hop (set)   p50 {set_p50:+.1} us  p99 {set_p99:+.1} us");

    let client = distcache_client::Client::connect(&format!("127.0.0.1:{}", options.grpc_port))
        .expect("client");
    client.set(&key, b"v").await.expect("set");
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = now();
        client.get(&key).await.expect("get");
        samples.push(started.elapsed());
    }
    report("get distcache-client", samples);
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = now();
        client.set(&key, b"value").await.expect("set");
        samples.push(started.elapsed());
    }
    report("set distcache-client", samples);
    demo.shutdown().await;
}

/// The benchmark measures real gRPC; it does not run under simulation.
#[cfg(madsim)]
fn main() {}
