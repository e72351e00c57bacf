//! kvraft in production mode: a 3-replica group in one process on real
//! tokio, real gRPC on loopback and real files (`FileStorage`, one fsync
//! per Raft `Ready`: group commit), with 1, 16 and 64 concurrent clients.
//! Reports ops/s and p50/p99 latency for Put, and for Get both through the
//! log and by ReadIndex.
//!
//! ```text
//! cargo bench -p kvraft --bench kv_throughput
//! KV_BENCH_SECONDS=5 KV_BENCH_CLIENTS=1,16,64 cargo bench -p kvraft --bench kv_throughput
//! ```
//!
//! Each client is one clerk (one exactly-once session, one operation at a
//! time; clerks share the connections); keys are 1000 keys of 16 bytes,
//! values 100 bytes, preloaded before the Gets. Each cell runs for
//! `KV_BENCH_SECONDS` (default 3) after a 0.5 s warm-up. The numbers are
//! in the crate docs (`src/lib.rs`, "Performance").
#![cfg_attr(madsim, allow(unused))]

#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench::run());
}

#[cfg(not(madsim))]
mod bench {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use kvraft::{Clerk, ClerkConfig, KvClient, KvServer, ReadPath, ServerConfig};
    use raft::storage::FileStorage;
    use testkit::ports::free_addrs;

    const KEYS: u64 = 1000;
    const VALUE_BYTES: usize = 100;
    const WARM_UP: Duration = Duration::from_millis(500);

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Workload {
        Put,
        Get,
    }

    struct Cell {
        ops: u64,
        seconds: f64,
        p50: Duration,
        p99: Duration,
        failures: u64,
    }

    fn settings() -> (Duration, Vec<usize>) {
        let seconds: f64 = std::env::var("KV_BENCH_SECONDS")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(3.0);
        let clients = std::env::var("KV_BENCH_CLIENTS")
            .ok()
            .map(|text| {
                text.split(',')
                    .map(|count| count.trim().parse().expect("KV_BENCH_CLIENTS: numbers"))
                    .collect()
            })
            .unwrap_or_else(|| vec![1, 16, 64]);
        (Duration::from_secs_f64(seconds), clients)
    }

    struct Group {
        servers: Vec<KvServer>,
        addrs: Vec<SocketAddr>,
        _dir: tempfile::TempDir,
    }

    async fn start_group(reads: ReadPath) -> Group {
        let dir = tempfile::tempdir().expect("temporary directory");
        let addrs = free_addrs(3);
        let mut servers = Vec::new();
        for id in 0..addrs.len() {
            let mut config = ServerConfig {
                reads,
                ..ServerConfig::new(id, addrs.clone(), 1 + id as u64)
            };
            // Snapshots keep the log (and restart time) bounded, as a
            // deployment would.
            config.replica.max_raft_state = Some(8 << 20);
            let storage = FileStorage::new(dir.path().join(format!("replica-{id}")));
            servers.push(
                KvServer::start(config, storage)
                    .await
                    .expect("replica starts"),
            );
        }
        for _ in 0..500 {
            if servers
                .iter()
                .filter(|server| server.raft().state().1)
                .count()
                == 1
            {
                return Group {
                    servers,
                    addrs,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no leader within 5 s");
    }

    fn key(number: u64) -> Vec<u8> {
        format!("key-{number:012}").into_bytes()
    }

    async fn measure(
        clerk: &Clerk,
        workload: Workload,
        clients: usize,
        duration: Duration,
    ) -> Cell {
        let running = Arc::new(AtomicBool::new(true));
        let recording = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..clients)
            .map(|client| {
                let clerk = clerk.clone();
                let running = Arc::clone(&running);
                let recording = Arc::clone(&recording);
                tokio::spawn(async move {
                    let value = vec![b'v'; VALUE_BYTES];
                    let mut latencies = Vec::new();
                    let mut failures = 0u64;
                    let mut number = client as u64 * 7919;
                    while running.load(Ordering::Relaxed) {
                        number = (number + 1) % KEYS;
                        let started = labrpc::runtime::now();
                        let ok = match workload {
                            Workload::Put => clerk.put(key(number), value.clone()).await.is_ok(),
                            Workload::Get => clerk.get(key(number)).await.is_ok(),
                        };
                        if recording.load(Ordering::Relaxed) {
                            if ok {
                                latencies.push(labrpc::runtime::now() - started);
                            } else {
                                failures += 1;
                            }
                        }
                    }
                    (latencies, failures)
                })
            })
            .collect();
        tokio::time::sleep(WARM_UP).await;
        recording.store(true, Ordering::Relaxed);
        let started = labrpc::runtime::now();
        tokio::time::sleep(duration).await;
        recording.store(false, Ordering::Relaxed);
        let seconds = (labrpc::runtime::now() - started).as_secs_f64();
        running.store(false, Ordering::Relaxed);
        let mut latencies = Vec::new();
        let mut failures = 0;
        for task in tasks {
            let (mut task_latencies, task_failures) = task.await.expect("client task");
            latencies.append(&mut task_latencies);
            failures += task_failures;
        }
        latencies.sort_unstable();
        let percentile = |fraction: f64| {
            if latencies.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((latencies.len() as f64 * fraction).ceil() as usize).max(1);
            latencies[rank.min(latencies.len()) - 1]
        };
        Cell {
            ops: latencies.len() as u64,
            seconds,
            p50: percentile(0.50),
            p99: percentile(0.99),
            failures,
        }
    }

    fn print_row(operation: &str, clients: usize, cell: &Cell) {
        println!(
            "| {operation} | {clients} | {:.0} | {:.2} | {:.2} | {} |",
            cell.ops as f64 / cell.seconds,
            cell.p50.as_secs_f64() * 1000.0,
            cell.p99.as_secs_f64() * 1000.0,
            cell.failures
        );
    }

    pub async fn run() {
        let (duration, client_counts) = settings();
        println!(
            "kvraft: 3 replicas in one process, gRPC on loopback, FileStorage (group commit); \
             {} s per cell",
            duration.as_secs_f64()
        );
        println!("| operation | clients | ops/s | p50 ms | p99 ms | failed |");
        println!("|---|---|---|---|---|---|");
        for reads in [ReadPath::Log, ReadPath::ReadIndex] {
            let group = start_group(reads).await;
            let config = ClerkConfig {
                operation_deadline: Duration::from_secs(10),
                ..ClerkConfig::default()
            };
            let clerk = Clerk::new(group.addrs.clone(), config);
            for number in 0..KEYS {
                clerk
                    .put(key(number), vec![b'v'; VALUE_BYTES])
                    .await
                    .expect("preload");
            }
            let get_name = match reads {
                ReadPath::Log => "Get (log)",
                ReadPath::ReadIndex => "Get (ReadIndex)",
            };
            for &clients in &client_counts {
                if reads == ReadPath::Log {
                    let cell = measure(&clerk, Workload::Put, clients, duration).await;
                    print_row("Put", clients, &cell);
                }
                let cell = measure(&clerk, Workload::Get, clients, duration).await;
                print_row(get_name, clients, &cell);
            }
            for server in &group.servers {
                server.kill();
            }
        }
    }
}
