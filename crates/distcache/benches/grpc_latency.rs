#![cfg_attr(madsim, allow(unused))]
//! Request latency through the public gRPC API and through RESP on the
//! demo cluster, the cost of one forwarding hop, and redis-server through
//! the same RESP client.
//!
//! ```text
//! cargo bench -p distcache --bench grpc_latency            # 2000 requests per case
//! REQUESTS=5000 cargo bench -p distcache --bench grpc_latency
//! REDIS_PORT=6390 cargo bench -p distcache --bench grpc_latency   # + a redis-server
//! scripts/latency-report.sh   # all of it, with the machine's load, in release
//! ```
//!
//! Starts the demo (3 data groups x 3 replicas, a 3-replica controller,
//! real gRPC, RESP and files) in this process, then, one request at a
//! time, every case taking its turn in each round (so a slow moment of a
//! shared machine hits every case alike):
//!
//! - `grpc direct`: gRPC to the node hosting the key's group leader (what
//!   `distcache-client` does): no hop inside the cluster;
//! - `grpc forwarded`: gRPC to a node of another group, which forwards once
//!   (labrpc) to the leader and relays the answer;
//! - `resp direct` / `resp forwarded`: the same over RESP (`GET`/`SET` on
//!   one connection);
//! - `redis-server` (with `REDIS_PORT`): the same RESP client against a
//!   redis-server on loopback, for scale: it keeps one copy in memory and
//!   replicates nothing, where a distcache write is a Raft commit on three
//!   replicas with an fsync;
//! - `distcache-client`: the Rust client (routing, session pool) end to
//!   end, over gRPC;
//! - `near cache`: the same client with its near cache on
//!   (`ClientConfig::near_cache`): a get of the one key is a hit in the
//!   client's memory once cached; its set drops the key there and runs as
//!   the plain client's does.
//!
//! The forwarding hop's cost is `forwarded - direct` at each percentile.

// The integration tests' cluster builder (crates/distcache/tests/support;
// real sockets and processes, so not in the simulation build).
#[cfg(not(madsim))]
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use distcache_client::proto::cache_client::CacheClient;
use distcache_client::proto::{GetRequest, SetRequest};
use labrpc::runtime::now;
#[cfg(not(madsim))]
use support::cluster::TestCluster;

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

/// A minimal RESP client: one connection, one command at a time.
#[cfg(not(madsim))]
struct Resp {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
}

#[cfg(not(madsim))]
impl Resp {
    async fn connect(addr: &str) -> Resp {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|error| panic!("RESP connect {addr}: {error}"));
        stream.set_nodelay(true).expect("nodelay");
        Resp {
            stream: tokio::io::BufReader::new(stream),
        }
    }

    /// Sends `words` as a RESP array; the reply's bulk payload (or the
    /// simple string), panicking on an error reply.
    async fn call(&mut self, words: &[&[u8]]) -> Vec<u8> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let mut frame = format!("*{}\r\n", words.len()).into_bytes();
        for word in words {
            frame.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
            frame.extend_from_slice(word);
            frame.extend_from_slice(b"\r\n");
        }
        self.stream
            .get_mut()
            .write_all(&frame)
            .await
            .expect("write");
        let mut line = Vec::new();
        self.stream
            .read_until(b'\n', &mut line)
            .await
            .expect("read");
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        match line.first() {
            Some(b'+') => text.as_bytes()[1..].to_vec(),
            Some(b'$') => {
                let length: i64 = text[1..].parse().expect("bulk length");
                if length < 0 {
                    return Vec::new();
                }
                let mut payload = vec![0; usize::try_from(length).expect("length") + 2];
                self.stream.read_exact(&mut payload).await.expect("read");
                payload.truncate(payload.len() - 2);
                payload
            }
            _ => panic!("RESP reply {text:?}"),
        }
    }
}

/// One way of reaching a store: gRPC, RESP, or the Rust client.
#[cfg(not(madsim))]
enum Target {
    Grpc(CacheClient<tonic::transport::Channel>),
    Resp(Resp),
    Client(distcache_client::Client),
}

#[cfg(not(madsim))]
impl Target {
    async fn get(&mut self, key: &[u8]) {
        match self {
            Target::Grpc(client) => {
                let reply = client
                    .get(GetRequest {
                        key: key.to_vec(),
                        ..Default::default()
                    })
                    .await
                    .expect("get");
                assert!(reply.into_inner().found);
            }
            Target::Resp(resp) => {
                assert!(!resp.call(&[b"GET".as_slice(), key]).await.is_empty());
            }
            Target::Client(client) => {
                assert!(client.get(key).await.expect("get").is_some());
            }
        }
    }

    async fn set(&mut self, key: &[u8], value: &[u8]) {
        match self {
            Target::Grpc(client) => {
                client
                    .set(SetRequest {
                        key: key.to_vec(),
                        value: value.to_vec(),
                        ..SetRequest::default()
                    })
                    .await
                    .expect("set");
            }
            Target::Resp(resp) => {
                assert_eq!(resp.call(&[b"SET".as_slice(), key, value]).await, b"OK");
            }
            Target::Client(client) => client.set(key, value).await.expect("set"),
        }
    }
}

#[cfg(not(madsim))]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let requests: usize = std::env::var("REQUESTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2000);
    let redis_port: Option<u16> = std::env::var("REDIS_PORT")
        .ok()
        .and_then(|value| value.parse().ok());
    // The demo's shape: three data groups of three replicas.
    let demo = TestCluster::builder()
        .groups(3)
        .replicas(3)
        .ready_timeout(Duration::from_secs(120))
        .start()
        .await;
    println!("demo ready; {requests} sequential requests per case, cases interleaved");

    // The key's group and where its leader and a node of another group are.
    let key = b"bench-key".to_vec();
    let value = vec![7u8; 100];
    let first = demo.node_state(1).expect("node 1 runs");
    let config = first.forwarder.routing();
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
        .expect("the key's group has a leader");
    let other = statuses
        .iter()
        .find(|node| {
            node.replicas
                .iter()
                .all(|r| r.role != "data" || r.gid != gid)
        })
        .expect("a node of another group");
    let resp_of = |node_id: u64| {
        demo.resp_addr(node_id)
            .expect("the demo serves RESP")
            .to_string()
    };
    println!(
        "key group {gid}: leader node {} (gRPC {}, RESP {}), forwarding node {} (gRPC {}, RESP {})",
        leader.node_id,
        leader.grpc_addr,
        resp_of(leader.node_id),
        other.node_id,
        other.grpc_addr,
        resp_of(other.node_id)
    );

    let grpc = |addr: String| async move {
        Target::Grpc(
            CacheClient::connect(format!("http://{addr}"))
                .await
                .expect("connect"),
        )
    };
    let mut targets: Vec<(&str, Target)> = vec![
        ("grpc direct", grpc(leader.grpc_addr.clone()).await),
        ("grpc forwarded", grpc(other.grpc_addr.clone()).await),
        (
            "resp direct",
            Target::Resp(Resp::connect(&resp_of(leader.node_id)).await),
        ),
        (
            "resp forwarded",
            Target::Resp(Resp::connect(&resp_of(other.node_id)).await),
        ),
        (
            "distcache-client",
            Target::Client(
                distcache_client::Client::connect(&demo.grpc_addr().to_string()).expect("client"),
            ),
        ),
    ];
    let near_config = distcache_client::ClientConfig {
        near_cache: Some(distcache_client::NearConfig::default()),
        ..distcache_client::ClientConfig::default()
    };
    targets.push((
        "near cache",
        Target::Client(
            distcache_client::Client::new(&[&demo.grpc_addr().to_string()], near_config)
                .expect("client"),
        ),
    ));
    if let Some(port) = redis_port {
        targets.push((
            "redis-server",
            Target::Resp(Resp::connect(&format!("127.0.0.1:{port}")).await),
        ));
    }

    // Warm up every path (connections, leader hints, routing).
    for (_, target) in &mut targets {
        target.set(&key, &value).await;
        for _ in 0..200 {
            target.get(&key).await;
        }
    }

    let mut results: Vec<(String, (Duration, Duration))> = Vec::new();
    for operation in ["get", "set"] {
        let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(requests); targets.len()];
        for _ in 0..requests {
            for ((_, target), samples) in targets.iter_mut().zip(&mut samples) {
                let started = now();
                if operation == "get" {
                    target.get(&key).await;
                } else {
                    target.set(&key, &value).await;
                }
                samples.push(started.elapsed());
            }
        }
        for ((name, _), samples) in targets.iter().zip(samples) {
            let name = format!("{operation} {name}");
            let percentiles = report(&name, samples);
            results.push((name, percentiles));
        }
    }
    let find = |name: &str| {
        results
            .iter()
            .find(|(case, _)| case == name)
            .map(|(_, percentiles)| *percentiles)
            .expect("measured")
    };
    for protocol in ["grpc", "resp"] {
        for operation in ["get", "set"] {
            let direct = find(&format!("{operation} {protocol} direct"));
            let forwarded = find(&format!("{operation} {protocol} forwarded"));
            println!(
                "forwarding hop ({operation} {protocol}) p50 {:+.1} us  p99 {:+.1} us",
                forwarded.0.as_secs_f64() * 1e6 - direct.0.as_secs_f64() * 1e6,
                forwarded.1.as_secs_f64() * 1e6 - direct.1.as_secs_f64() * 1e6,
            );
        }
    }
    demo.shutdown().await;
}

/// The benchmark measures real gRPC; it does not run under simulation.
#[cfg(madsim)]
fn main() {}
