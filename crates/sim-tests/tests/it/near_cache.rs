//! The Rust client's near cache under simulation: whole `distcache` nodes
//! (the six of `sim_tests::server`), one writer per key on
//! `distcache-client` (no near cache), and two readers whose clients have
//! a near cache (`ClientConfig::near_cache`), their `Cache.Track` stream
//! opened on node 1. Each reader also writes a key of its own through its
//! own client and reads it back. A third reader, the control, keeps what
//! it read in a map of its own that nothing ever invalidates: the check
//! must catch it. Meanwhile the readers' stream node is cut off from its
//! peers (its feed polls fail: it must tell its streams to flush), cut
//! off from the readers (their streams go silent: they must give them up
//! after `QUIET_LIMIT`) and killed (the streams break and move to another
//! node); then nodes drawn at random are cut off from their peers, paused
//! or killed and restarted; after each fault a key's shard moves to the
//! other group (`POST /v1/admin/move`: the stream node must flush on the
//! new configuration).
//!
//! Checks, against the guarantee of `distcache_client::near`:
//! - the bound, by the linearizability checker on each reader's history
//!   (its reads, every write): a value the near cache served may be the
//!   key's value of up to [`STALE_BOUND`] before the read began (such a
//!   read is recorded as beginning that much earlier:
//!   [`sim_tests::cached_reads`]); a value the cluster answered is
//!   linearizable;
//! - read-your-writes: a reader never reads back its own key older than
//!   its own last acknowledged write, with no tolerance at all;
//! - the check can fail: the control reader is judged stale by the same
//!   bound check;
//! - the near cache was used: each reader's `near_stats()` counts hits,
//!   and flushes while the faults ran.
//!
//! Each key has one writer writing increasing numbers, retried until
//! acknowledged. A write that answered an error is of unknown outcome: it
//! may apply late, after a newer one, or never; read-your-writes does not
//! judge its value.

#![cfg(madsim)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distcache_client::{Client, ClientConfig, NearConfig, NearStats};
use labrpc::sim::NodeId;
use linearizability::Verdict;
use sim_tests::cached_reads::{CachedHistory, WriteAttempt, WriteLog};
use sim_tests::harness::{phase, stop_clients, within};
use sim_tests::server::{Cluster, SHARDS, wait_ready};
use tokio::time::Instant;

const TEST_LIMIT: Duration = Duration::from_secs(300);
/// The node the readers' clients are seeded with, so their stream opens
/// there (group 1 and a controller replica).
const READER_NODE: usize = 1;
/// The keys the writers write (their shards fall to both groups).
const KEYS: &[&str] = &["alpha", "bravo", "charlie", "delta"];
/// The near-cache readers; each also writes `own-<index>`.
const NEAR_READERS: usize = 2;
/// Most a value from the near cache may lag an acknowledged write, as
/// `distcache_client::near` documents it ("at most about 5 s"): the
/// stream's node flushes its streams after `MAX_UNCONFIRMED` (3 s)
/// without a confirmed feed answer, a poll takes at most two RPC timeouts
/// (1 s), plus a margin for the event to reach the client; a stream that
/// goes silent is given up `QUIET_LIMIT` (3 s) after its last event, and
/// the node sends one at least every second.
const STALE_BOUND: Duration = Duration::from_secs(5);

/// The readers' near cache: the default but for its capacity (the TTL,
/// the safety net the check must not lean on, stays 60 s). The test's six
/// keys take under 500 bytes, so 16 KiB evicts nothing, no more than the
/// default 64 MiB would; but every flush rebuilds the cache's presized
/// tables (at 64 MiB, 64 shards of 8,193 buckets), which took a seed's run
/// from about 0.8 s to 1.4 s of CPU time.
fn near_config() -> NearConfig {
    NearConfig {
        capacity_bytes: 16 << 10,
        ..NearConfig::default()
    }
}

/// A writer's pause between two writes of its key: mostly 0.1-0.4 s, and
/// one time in sixteen a quiet spell of 6-9 s, longer than the bound. Were
/// every key rewritten every few hundred milliseconds, a change whose news
/// was lost while the key stayed tracked would be repaired by the next
/// change's news, within the bound, and go unseen; after a quiet spell's
/// last write nothing repairs it.
fn write_pause() -> Duration {
    let random = madsim::rand::random::<u64>();
    if random.is_multiple_of(16) {
        Duration::from_millis(6000 + random % 3000)
    } else {
        Duration::from_millis(100 + random % 300)
    }
}

/// A reader's pause between two reads.
fn read_pause() -> Duration {
    Duration::from_millis(10 + madsim::rand::random::<u64>() % 50)
}

/// Who was read, when, and what.
#[derive(Debug)]
struct Read {
    /// When the read began: every write acknowledged before then is
    /// visible to a linearizable read.
    began: Instant,
    returned: Instant,
    key: String,
    /// The number read (0: absent).
    number: u64,
    from_cache: bool,
}

/// The history of one reader (client `reader`), its reads in `reads`,
/// and of every write, for the checker: a read served from a cache may
/// return the value of [`STALE_BOUND`] before it began.
fn history(start: Instant, writes: &WriteLog, reader: u64, reads: &[Read]) -> CachedHistory {
    let mut history = writes.history(start);
    for read in reads {
        let may_be_as_old_as = if read.from_cache {
            history.before(read.began, STALE_BOUND)
        } else {
            read.began
        };
        let value = (read.number > 0).then(|| read.number.to_string());
        history.read(
            reader,
            &read.key,
            value.as_deref(),
            may_be_as_old_as,
            read.returned,
        );
    }
    history
}

/// The number a value holds (`None`: absent, 0).
fn number(value: Option<&[u8]>) -> u64 {
    value.map_or(0, |value| {
        std::str::from_utf8(value)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("only numbers are written, read {value:?}"))
    })
}

/// Writes `number` to `key` through `client` (writer `writer`) until
/// acknowledged, each attempt in `ledger`; whether it was acknowledged
/// before `running` ended.
async fn write_until_acknowledged(
    client: &Client,
    writer: u64,
    key: &str,
    number: u64,
    ledger: &Mutex<WriteLog>,
    running: &AtomicBool,
) -> bool {
    let value = number.to_string();
    while running.load(Ordering::Relaxed) {
        let sent = labrpc::runtime::now();
        let acked = client.set(key.as_bytes(), value.as_bytes()).await.is_ok();
        ledger.lock().unwrap().attempts.push(WriteAttempt {
            writer,
            key: key.to_owned(),
            value: value.clone(),
            sent,
            acked: acked.then(labrpc::runtime::now),
        });
        if acked {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// What one near-cache reader did.
struct NearOutcome {
    reads: Vec<Read>,
    /// Reads of its own key older than its own last acknowledged write.
    read_your_writes_violations: Vec<String>,
    own_reads: u64,
    own_writes: u64,
}

/// A client of the cluster seeded at node `seed`, with a near cache or
/// without, and otherwise a user's default settings (so a Get sent with
/// the stream's tracking id waits at most 2 s for a node that went away).
fn client(cluster: &Cluster, seed: usize, near_cache: Option<NearConfig>) -> Client {
    let config = ClientConfig {
        near_cache,
        ..ClientConfig::default()
    };
    Client::new(&[&cluster.grpc_addr(seed).to_string()], config).expect("seed addresses parse")
}

/// The checker's client id of the writer of `KEYS[index]`, of near
/// reader `index` writing its own key, of near reader `index` reading,
/// and of the control.
fn key_writer(index: usize) -> u64 {
    1 + index as u64
}
fn own_writer(index: usize) -> u64 {
    10 + index as u64
}
fn near_reader_id(index: usize) -> u64 {
    100 + index as u64
}
const CONTROL_ID: u64 = 200;

/// Near reader `index`: reads the shared keys and its own key
/// (`own-<index>`), and writes its own key, until `running` ends; judges
/// its own key's reads against its own writes.
async fn near_reader(
    client: Client,
    index: usize,
    ledger: Arc<Mutex<WriteLog>>,
    running: Arc<AtomicBool>,
) -> NearOutcome {
    let own_key = format!("own-{index}");
    let mut outcome = NearOutcome {
        reads: Vec::new(),
        read_your_writes_violations: Vec::new(),
        own_reads: 0,
        own_writes: 0,
    };
    // The own key's last acknowledged number.
    let mut own_acknowledged = 0u64;
    while running.load(Ordering::Relaxed) {
        // About one step in sixteen writes the own key (every ~0.6 s).
        if madsim::rand::random::<u64>().is_multiple_of(16) {
            let next = own_acknowledged + 1;
            let writer = own_writer(index);
            if write_until_acknowledged(&client, writer, &own_key, next, &ledger, &running).await {
                own_acknowledged = next;
                outcome.own_writes += 1;
            }
        } else {
            let key = match madsim::rand::random::<u64>() as usize % (KEYS.len() + 1) {
                index if index < KEYS.len() => KEYS[index],
                _ => own_key.as_str(),
            };
            let hits = near_hits(&client);
            let began = labrpc::runtime::now();
            if let Ok(value) = client.get(key.as_bytes()).await {
                let read = Read {
                    began,
                    returned: labrpc::runtime::now(),
                    key: key.to_owned(),
                    number: number(value.as_deref()),
                    from_cache: near_hits(&client) > hits,
                };
                if key == own_key {
                    outcome.own_reads += 1;
                    // A value whose write answered an error is not judged.
                    let unknown = ledger
                        .lock()
                        .unwrap()
                        .unknown(&own_key, &read.number.to_string());
                    if read.number < own_acknowledged && !unknown {
                        outcome.read_your_writes_violations.push(format!(
                            "{key} = {} read (from the cache: {}) at {began:?}, after this \
                             client's write of {own_acknowledged} was acknowledged",
                            read.number, read.from_cache
                        ));
                    }
                }
                outcome.reads.push(read);
            }
        }
        tokio::time::sleep(read_pause()).await;
    }
    outcome
}

fn near_stats(client: &Client) -> NearStats {
    client
        .near_stats()
        .expect("the readers' clients have a near cache")
}

fn near_hits(client: &Client) -> u64 {
    near_stats(client).hits
}

/// The control: reads the shared keys through a client without a near
/// cache and keeps each answer in a map nothing invalidates.
async fn ignoring_reader(client: Client, running: Arc<AtomicBool>) -> Vec<Read> {
    let mut kept: BTreeMap<&str, u64> = BTreeMap::new();
    let mut reads = Vec::new();
    while running.load(Ordering::Relaxed) {
        let key = KEYS[madsim::rand::random::<u64>() as usize % KEYS.len()];
        let began = labrpc::runtime::now();
        if let Some(&number) = kept.get(key) {
            reads.push(Read {
                began,
                returned: began,
                key: key.to_owned(),
                number,
                from_cache: true,
            });
        } else if let Ok(value) = client.get(key.as_bytes()).await {
            let number = number(value.as_deref());
            kept.insert(key, number);
            reads.push(Read {
                began,
                returned: labrpc::runtime::now(),
                key: key.to_owned(),
                number,
                from_cache: false,
            });
        }
        tokio::time::sleep(read_pause()).await;
    }
    reads
}

/// What a round of the fault phase does to its victim, and what the
/// readers' near caches must do about it if the victim holds their
/// streams.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Its links to the other nodes cut for 1-6 s: its feed polls fail,
    /// so it must tell its streams to flush.
    CutOffFromPeers,
    /// Its links to the near-cache readers' hosts clogged for 4-8 s: their
    /// streams go silent, and they must give them up after QUIET_LIMIT.
    CutOffFromReaders,
    /// Frozen for 4-8 s: silent, and serving nothing.
    Paused,
    /// Killed, and restarted from its data directory 1-3 s later: the
    /// streams break and move to another node.
    Killed,
}

/// Does `fault` to node `node_id` (1-based), and heals it.
async fn inject(cluster: &Cluster, reader_hosts: &[NodeId], node_id: usize, fault: Fault) {
    let victim = cluster.nodes[node_id - 1];
    let random_ms = |least: u64, spread: u64| {
        Duration::from_millis(least + madsim::rand::random::<u64>() % spread)
    };
    tracing::info!(node = %cluster.net.describe(victim), ?fault, "fault");
    match fault {
        Fault::CutOffFromPeers => {
            for &other in cluster.nodes.iter().filter(|&&other| other != victim) {
                cluster.net.cut_link(victim, other);
            }
            tokio::time::sleep(random_ms(1000, 5000)).await;
            cluster.net.heal_all();
        }
        Fault::CutOffFromReaders => {
            // On madsim's network rather than labrpc's: the streams are
            // gRPC. What is sent meanwhile waits, as TCP retransmits, and
            // arrives after the heal.
            let network = madsim::net::NetSim::current();
            for &host in reader_hosts {
                network.clog_link(host, victim);
                network.clog_link(victim, host);
            }
            tokio::time::sleep(random_ms(4000, 4000)).await;
            for &host in reader_hosts {
                network.unclog_link(host, victim);
                network.unclog_link(victim, host);
            }
        }
        Fault::Paused => {
            cluster.net.pause(victim);
            tokio::time::sleep(random_ms(4000, 4000)).await;
            cluster.net.resume(victim);
        }
        Fault::Killed => {
            cluster.net.kill(victim);
            tokio::time::sleep(random_ms(1000, 2000)).await;
            cluster.net.restart(victim).await;
        }
    }
}

#[madsim::test]
async fn near_cache_reads_follow_acknowledged_writes_within_the_bound_under_faults() {
    within("test", TEST_LIMIT, async {
        phase("six nodes; one writer per key, two near-cache readers and a control on node 1");
        let start = labrpc::runtime::now();
        let cluster = Cluster::start(0);
        wait_ready(&cluster).await;
        let ledger = Arc::new(Mutex::new(WriteLog::default()));
        let running = Arc::new(AtomicBool::new(true));

        let mut writers = Vec::new();
        for (index, key) in KEYS.iter().enumerate() {
            // Seeded at other nodes, and one at the readers' own node.
            let writer = client(&cluster, [READER_NODE, 3, 4, 6][index], None);
            let (ledger, running) = (Arc::clone(&ledger), Arc::clone(&running));
            writers.push(cluster.net.spawn(cluster.client_host(), async move {
                let mut number = 0u64;
                while running.load(Ordering::Relaxed) {
                    number += 1;
                    // Until acknowledged: so numbers apply in order.
                    let id = key_writer(index);
                    write_until_acknowledged(&writer, id, key, number, &ledger, &running).await;
                    tokio::time::sleep(write_pause()).await;
                }
            }));
        }

        let near_clients: Vec<Client> = (0..NEAR_READERS)
            .map(|_| client(&cluster, READER_NODE, Some(near_config())))
            .collect();
        let mut readers = Vec::new();
        let mut reader_hosts = Vec::new();
        for (index, near_client) in near_clients.iter().enumerate() {
            let near_client = near_client.clone();
            let (ledger, running) = (Arc::clone(&ledger), Arc::clone(&running));
            let host = cluster.client_host();
            reader_hosts.push(host);
            readers.push(
                cluster
                    .net
                    .spawn(host, near_reader(near_client, index, ledger, running)),
            );
        }
        let control = cluster.net.spawn(
            cluster.client_host(),
            ignoring_reader(client(&cluster, READER_NODE, None), Arc::clone(&running)),
        );

        phase("faults: nodes cut off, paused, killed and restarted; shards moved");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before_faults: Vec<NearStats> = near_clients.iter().map(near_stats).collect();
        let mut moves = 0;
        for round in 0..8u64 {
            // The readers' stream node first gets three faults in turn,
            // one for each way a cached value is dropped without a key's
            // invalidation: its Flush, the readers' quiet limit, a broken
            // stream. Then victims and faults are drawn.
            let (victim, fault) = match round {
                0 => (READER_NODE, Fault::CutOffFromPeers),
                1 => (READER_NODE, Fault::CutOffFromReaders),
                2 => (READER_NODE, Fault::Killed),
                _ => {
                    let random = madsim::rand::random::<u64>();
                    let fault = [Fault::CutOffFromPeers, Fault::Paused, Fault::Killed]
                        [(random >> 8) as usize % 3];
                    (1 + random as usize % cluster.nodes.len(), fault)
                }
            };
            inject(&cluster, &reader_hosts, victim, fault).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            // A key's shard to the other group (through a node that is up).
            let key = KEYS[madsim::rand::random::<u64>() as usize % KEYS.len()];
            let shard = shardkv::key_to_shard(key.as_bytes(), SHARDS);
            let gid = 1 + round % 2;
            if cluster.move_shard(2, shard, gid).await {
                moves += 1;
            }
            // The stream node flushes on the new configuration (within
            // GROUPS_CHECK, 1 s); the caches fill again before the next
            // fault, so that it finds values cached.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        let after_faults: Vec<NearStats> = near_clients.iter().map(near_stats).collect();
        phase("healed: a quiet spell, then stop");
        tokio::time::sleep(Duration::from_secs(8)).await;
        let outcomes = stop_clients(&running, writers, readers).await;
        let control = control.await.expect("client hosts are never killed");

        phase("each reader's history checked, every reader reads its own writes");
        let ledger = ledger.lock().unwrap();
        let acknowledged = ledger.acknowledged();
        println!(
            "{acknowledged} writes acknowledged, {} unknown; {moves} shard moves",
            ledger.attempts.len() - acknowledged,
        );
        assert!(
            acknowledged > 100,
            "only {acknowledged} writes were acknowledged"
        );
        assert!(
            moves >= 2,
            "only {moves} shard moves answered: moves not exercised"
        );
        for (index, outcome) in outcomes.iter().enumerate() {
            let stats = near_stats(&near_clients[index]);
            let cached = outcome.reads.iter().filter(|read| read.from_cache).count();
            println!(
                "near reader {index}: {} reads, {cached} from its cache, {} of its own key \
                 after {} own writes; {stats:?}; flushes while the faults ran: {}",
                outcome.reads.len(),
                outcome.own_reads,
                outcome.own_writes,
                after_faults[index].flushes - before_faults[index].flushes,
            );
            assert!(
                stats.hits > 100,
                "near reader {index}: the near cache served only {} reads: not exercised",
                stats.hits
            );
            assert!(
                stats.misses > 50,
                "near reader {index}: only {} reads went to the cluster: few invalidations \
                 were told",
                stats.misses
            );
            assert!(
                after_faults[index].flushes > before_faults[index].flushes,
                "near reader {index}: the near cache never flushed while the faults ran"
            );
            assert!(
                outcome.own_writes > 20 && outcome.own_reads > 50,
                "near reader {index}: only {} own writes and {} reads of them: read-your-writes \
                 not exercised",
                outcome.own_writes,
                outcome.own_reads
            );
            let (verdict, report) =
                history(start, &ledger, near_reader_id(index), &outcome.reads).check();
            println!("near reader {index}'s history: {report}");
            assert_eq!(
                verdict,
                Verdict::Linearizable,
                "near reader {index}: {report}"
            );
            let violations = &outcome.read_your_writes_violations;
            assert!(
                violations.is_empty(),
                "near reader {index}: {} reads older than its own acknowledged write, first: \
                 {:?}",
                violations.len(),
                violations.first()
            );
        }
        // The control: a reader that never drops what it keeps goes
        // stale, and the check sees it.
        let (verdict, report) = history(start, &ledger, CONTROL_ID, &control).check();
        println!(
            "control reader: {} reads; {}",
            control.len(),
            report.lines().next().unwrap_or("")
        );
        assert_eq!(
            verdict,
            Verdict::NotLinearizable,
            "a reader ignoring invalidations was not found stale: the check cannot fail: {report}"
        );
    })
    .await;
}
