//! The listener over real sockets with an in-memory backend: pipelining,
//! ordering, limits, protocol errors. The blocking commands: `blocking.rs`.

mod blocking;
mod tracking;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shardkv::{Op, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Backend, RespConfig, RespServer, Runner};
use crate::forward::ForwardError;
use crate::keyspace::{self, KeyspaceError};

/// Shards of the in-memory backend.
const SHARDS: usize = 4;

/// Real stores, one per shard (the replicas' `api::execute`, log time =
/// ms since the test began), that answer after a delay, counting
/// operations in flight.
struct Memory {
    stores: Mutex<Vec<cache::Store>>,
    started: tokio::time::Instant,
    in_flight: AtomicUsize,
    in_flight_max: AtomicUsize,
    /// The name of every operation run, in order.
    ops: Mutex<Vec<&'static str>>,
    /// Each operation's first key and where its read could be served
    /// (`READONLY`), in the order they ran.
    read_froms: Mutex<Vec<(Vec<u8>, crate::forward::ReadFrom)>>,
    /// Waits on keys, woken by the writes `run` applies (as a group
    /// leader's `shardkv::KeyWatch` is).
    watch: std::sync::Arc<shardkv::KeyWatch>,
    /// The keys written, in order (a one-group change feed: the index is
    /// the position + 1), and its wake-up.
    feed: Mutex<Vec<Vec<u8>>>,
    feed_changed: tokio::sync::Notify,
    /// The configuration number `feed_config` answers.
    config_num: Mutex<u64>,
}

impl Default for Memory {
    fn default() -> Memory {
        Memory {
            stores: Mutex::new(
                (0..SHARDS)
                    .map(|_| cache::Store::new(cache::StoreConfig::new(1 << 24)))
                    .collect(),
            ),
            started: crate::clock::now(),
            in_flight: AtomicUsize::new(0),
            in_flight_max: AtomicUsize::new(0),
            ops: Mutex::new(Vec::new()),
            read_froms: Mutex::new(Vec::new()),
            watch: std::sync::Arc::new(shardkv::KeyWatch::new(64, 8)),
            feed: Mutex::new(Vec::new()),
            feed_changed: tokio::sync::Notify::new(),
            config_num: Mutex::new(1),
        }
    }
}

impl Memory {
    /// Applies a write as another node's client would: straight to the
    /// store, seen here only through the change feed.
    fn write_elsewhere(&self, op: &Op) {
        let log_time_ms = u64::try_from(self.started.elapsed().as_millis()).expect("ms");
        let mut stores = self.stores.lock().expect("test stores");
        let store = &mut stores[shardkv::op_shard(op, SHARDS)];
        api::execute(store, op, &api::Limits::default(), log_time_ms).expect("a valid write");
        self.record(op);
    }

    fn record(&self, op: &Op) {
        let mut feed = self.feed.lock().expect("test feed");
        feed.extend(op.keys().map(<[u8]>::to_vec));
        drop(feed);
        self.feed_changed.notify_waiters();
    }
}

impl Backend for std::sync::Arc<Memory> {
    async fn run(&self, op: Op) -> Result<Outcome, ForwardError> {
        self.ops.lock().expect("test ops").push(op.name());
        self.read_froms
            .lock()
            .expect("test read_from")
            .push((op.key().to_vec(), crate::forward::current_read_from()));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.in_flight_max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let log_time_ms = u64::try_from(self.started.elapsed().as_millis()).expect("ms");
        let mut stores = self.stores.lock().expect("test stores");
        let Some(store) = stores.get_mut(shardkv::op_shard(&op, SHARDS)) else {
            return Err(ForwardError::InvalidArgument("no such shard".into()));
        };
        let result =
            api::execute(store, &op, &api::Limits::default(), log_time_ms).map_err(|error| {
                match error {
                    api::Error::TooLarge { .. }
                    | api::Error::ZeroTtl
                    | api::Error::TooManyElements { .. } => ForwardError::OverLimit(error),
                    other => ForwardError::Refused(other),
                }
            });
        if result.is_ok() && !op.is_read() {
            self.watch.notify(op.keys(), usize::MAX);
            drop(stores);
            self.record(&op);
        }
        result
    }

    async fn feed_config(&self) -> Option<crate::tracking::FeedConfig> {
        Some(crate::tracking::FeedConfig {
            num: *self.config_num.lock().expect("test config"),
            groups: vec![1],
            shards: vec![1],
        })
    }

    async fn watch_changes(
        &self,
        _gid: u64,
        _poller: u64,
        after: u64,
        wait: Duration,
    ) -> Option<shardkv::Changes> {
        let deadline = crate::clock::now() + wait;
        loop {
            let changed = self.feed_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let feed = self.feed.lock().expect("test feed").clone();
            let through = feed.len() as u64;
            if through > after || crate::clock::now() >= deadline {
                let keys = feed[usize::try_from(after).expect("index")..].to_vec();
                return Some(shardkv::Changes::Keys { keys, through });
            }
            let _ = tokio::time::timeout_at(deadline, changed).await;
        }
    }

    async fn wait_for_keys(&self, keys: Vec<Vec<u8>>, wait: Duration) -> crate::forward::KeyWait {
        use crate::forward::KeyWait;
        let Ok(watch) = self.watch.watch(&keys) else {
            return KeyWait::Full;
        };
        let present = {
            let log_time_ms = u64::try_from(self.started.elapsed().as_millis()).expect("ms");
            let stores = self.stores.lock().expect("test stores");
            keys.iter().any(|key| {
                stores[shardkv::key_to_shard(key, SHARDS)]
                    .peek_value(key, log_time_ms)
                    .is_some()
            })
        };
        if present {
            return KeyWait::Changed;
        }
        match tokio::time::timeout(wait, watch.changed()).await {
            Ok(()) => KeyWait::Changed,
            Err(_) => KeyWait::TimedOut,
        }
    }

    fn describe(&self) -> String {
        "groups:1\r\n".to_owned()
    }

    fn shard_count(&self) -> usize {
        SHARDS
    }

    fn cluster_state(&self) -> Option<super::ClusterState> {
        Some(cluster_state())
    }
}

fn peer(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 7000))
}

/// Group 1 (nodes 1 and 2, led by this node) owns shards 0-1, group 2
/// (node 3) shards 2-3 of the test's 4.
fn cluster_state() -> super::ClusterState {
    let mut groups = std::collections::BTreeMap::new();
    groups.insert(1, vec![peer(1), peer(2)]);
    groups.insert(2, vec![peer(3)]);
    super::ClusterState {
        config: std::sync::Arc::new(shardctrler::Config {
            num: 7,
            shards: vec![1, 1, 2, 2],
            groups,
            parked_shards: std::collections::BTreeMap::new(),
            parked_groups: std::collections::BTreeMap::new(),
            lost_groups: std::collections::BTreeMap::new(),
        }),
        leaders: [(2, peer(3))].into_iter().collect(),
        local_leader: Some(1),
    }
}

/// This node is node 1 of group 1; node n serves RESP on port 7000 + n.
fn cluster_map() -> super::ClusterMap {
    super::ClusterMap {
        my_node: 1,
        my_addr: Some(SocketAddr::from(([127, 0, 0, 1], 7001))),
        my_gid: Some(1),
        replicas: (1..=3)
            .map(|n| {
                (
                    peer(n),
                    (
                        u64::from(n),
                        SocketAddr::from(([127, 0, 0, 1], 7000 + u16::from(n))),
                    ),
                )
            })
            .collect(),
    }
}

async fn start(config: RespConfig) -> (RespServer, std::sync::Arc<Memory>) {
    let memory = std::sync::Arc::new(Memory::default());
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let server = RespServer::start_with(addr, std::sync::Arc::clone(&memory), config)
        .await
        .expect("bind a free port");
    (server, memory)
}

fn command(words: &[&str]) -> Vec<u8> {
    let mut wire = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        wire.extend(format!("${}\r\n{word}\r\n", word.len()).into_bytes());
    }
    wire
}

/// Reads until `expected` bytes arrived (or the peer closed), bounded.
async fn read_exactly(stream: &mut TcpStream, expected: usize) -> Vec<u8> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while received.len() < expected {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a reply within 10 s")
            .expect("read");
        if read == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..read]);
    }
    received
}

#[tokio::test]
async fn a_pipeline_on_distinct_keys_runs_concurrently_and_answers_in_order() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut wire = Vec::new();
    for index in 0..100 {
        wire.extend(command(&[
            "SET",
            &format!("key{index}"),
            &index.to_string(),
        ]));
    }
    // Same key, in order: each must see the one before.
    wire.extend(command(&["SET", "counter", "10"]));
    wire.extend(command(&["INCR", "counter"]));
    wire.extend(command(&["GET", "counter"]));
    stream.write_all(&wire).await.expect("write");
    let mut expected = b"+OK\r\n".repeat(101);
    expected.extend_from_slice(b":11\r\n$2\r\n11\r\n");
    assert_eq!(read_exactly(&mut stream, expected.len()).await, expected);
    let concurrency = memory.in_flight_max.load(Ordering::SeqCst);
    assert!(
        concurrency >= 50,
        "100 SETs on distinct keys should run together, at most {concurrency} did"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn readonly_lets_any_replica_serve_the_commands_after_it_until_readwrite() {
    use crate::forward::ReadFrom::{AnyReplica, Leader};
    let (server, memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    // One pipeline: each command keeps the mode that stood when it came,
    // although the pipeline's commands run together.
    let mut wire = Vec::new();
    for words in [
        &["GET", "a"][..],
        &["READONLY"],
        &["GET", "b"],
        &["MGET", "c", "d"],
        &["READWRITE"],
        &["GET", "e"],
        &["READONLY"],
        &["RESET"],
        &["GET", "f"],
    ] {
        wire.extend(command(words));
    }
    stream.write_all(&wire).await.expect("write");
    let expected =
        b"$-1\r\n+OK\r\n$-1\r\n*2\r\n$-1\r\n$-1\r\n+OK\r\n$-1\r\n+OK\r\n+RESET\r\n$-1\r\n";
    assert_eq!(read_exactly(&mut stream, expected.len()).await, expected);
    let mut read_froms = memory.read_froms.lock().expect("test read_from").clone();
    read_froms.sort_by(|one, other| one.0.cmp(&other.0));
    let expected: Vec<(Vec<u8>, _)> = [
        ("a", Leader),
        ("b", AnyReplica),
        ("c", AnyReplica),
        ("d", AnyReplica),
        ("e", Leader),
        ("f", Leader),
    ]
    .into_iter()
    .map(|(key, from)| (key.as_bytes().to_vec(), from))
    .collect();
    assert_eq!(read_froms, expected);
    server.shutdown().await;
}

#[tokio::test]
async fn resp3_after_hello_and_errors_change_nothing() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut wire = command(&["HELLO", "3"]);
    wire.extend(command(&["GET", "missing"]));
    wire.extend(command(&["SET", "k", "v", "NX", "XX"]));
    wire.extend(command(&["PING"]));
    stream.write_all(&wire).await.expect("write");
    let mut received = Vec::new();
    for _ in 0..100 {
        if received.ends_with(b"+PONG\r\n") {
            break;
        }
        received.extend(read_exactly(&mut stream, 1).await);
    }
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.starts_with("%7\r\n"),
        "HELLO 3 answers a map: {text:?}"
    );
    assert!(
        text.ends_with("_\r\n-ERR syntax error\r\n+PONG\r\n"),
        "got {text:?}"
    );
    assert!(
        memory
            .stores
            .lock()
            .expect("stores")
            .iter()
            .all(cache::Store::is_empty),
        "the refused SET changed nothing"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_protocol_error_is_answered_then_the_connection_closes() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    stream.write_all(b"*1\r\n$-5\r\n").await.expect("write");
    let received = read_exactly(&mut stream, usize::MAX).await;
    assert_eq!(received, b"-ERR Protocol error: invalid bulk length\r\n");
    server.shutdown().await;
}

/// Issue 16: a value over the value limit (1 MiB by default) gets an
/// error reply, changes nothing and leaves the connection working, also
/// in the middle of a pipeline; only a bulk over the protocol's bound
/// (Redis's 512 MiB `proto-max-bulk-len`) still ends the connection.
#[tokio::test]
async fn a_value_over_the_limit_is_refused_and_the_pipeline_goes_on() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    assert_eq!(ask(&mut stream, &["SET", "k", "old"]).await, "+OK\r\n");
    let ops_of = |memory: &Memory| memory.ops.lock().expect("test ops").clone();
    let ops_before = ops_of(&memory).len();

    // Phase 1: one write holds an oversized SET between ordinary commands.
    let big = "x".repeat(::resp::DEFAULT_MAX_BULK_BYTES + 1);
    let mut pipeline = command(&["INCR", "n"]);
    pipeline.extend(command(&["SET", "k", &big]));
    pipeline.extend(command(&["GET", "k"]));
    pipeline.extend(command(&["APPEND", "k", &big]));
    pipeline.extend(b"PING\r\n");
    stream.write_all(&pipeline).await.expect("write");
    assert_eq!(read_reply(&mut stream).await, ":1\r\n");
    let refused = read_reply(&mut stream).await;
    assert_eq!(
        refused,
        format!(
            "-ERR string exceeds maximum allowed size (an argument of {} bytes; values are limited to {} bytes)\r\n",
            big.len(),
            ::resp::DEFAULT_MAX_BULK_BYTES
        )
    );
    assert_eq!(read_reply(&mut stream).await, "$3\r\nold\r\n");
    assert!(
        read_reply(&mut stream)
            .await
            .starts_with("-ERR string exceeds")
    );
    assert_eq!(read_reply(&mut stream).await, "+PONG\r\n");
    // Nothing ran for the refused commands: INCR and GET only.
    assert_eq!(&ops_of(&memory)[ops_before..], &["Increment", "Get"]);

    // Phase 2: the connection still works; a value at the limit is kept.
    let at_limit = "y".repeat(::resp::DEFAULT_MAX_BULK_BYTES);
    assert_eq!(ask(&mut stream, &["SET", "k", &at_limit]).await, "+OK\r\n");
    assert_eq!(
        ask(&mut stream, &["STRLEN", "k"]).await,
        format!(":{}\r\n", at_limit.len())
    );

    // Phase 3: a length over the protocol's bound is a protocol error.
    stream
        .write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870913\r\n")
        .await
        .expect("write");
    let received = read_exactly(&mut stream, usize::MAX).await;
    assert_eq!(received, b"-ERR Protocol error: invalid bulk length\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn clients_over_the_limit_are_refused() {
    let config = RespConfig {
        max_clients: 1,
        ..RespConfig::default()
    };
    let (server, _memory) = start(config).await;
    let mut first = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    first.write_all(&command(&["PING"])).await.expect("write");
    assert_eq!(read_exactly(&mut first, 7).await, b"+PONG\r\n");
    let mut second = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    assert_eq!(
        read_exactly(&mut second, usize::MAX).await,
        b"-ERR max number of clients reached\r\n"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let config = RespConfig {
        idle_timeout: Some(Duration::from_millis(200)),
        ..RespConfig::default()
    };
    let (server, _memory) = start(config).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    assert_eq!(
        read_exactly(&mut stream, usize::MAX).await,
        b"",
        "closed without a reply"
    );
    server.shutdown().await;
}

/// This process's resident memory, in bytes (Linux).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("resident pages");
    pages * 4096
}

/// A client that pipelines thousands of reads of 1 MiB values and never
/// reads a reply: the listener stops running its commands once its socket
/// is full, holds at most one wave of replies, and closes it after
/// `write_timeout`. (Before replies were written per wave, every read ran,
/// 16 at a time, and their encoded replies, about 1 MiB each, waited in
/// the connection's buffer: after 1.5 s, 544 had run and resident memory
/// had grown by 528 MiB; now 16 run and it grows by about 17 MiB.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_bounded_then_closed() {
    const GETS: usize = 2048;
    let config = RespConfig {
        write_timeout: Some(Duration::from_secs(3)),
        ..RespConfig::default()
    };
    let (server, memory) = start(config).await;
    let mut writer = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    // 16 keys, so that the reads run in waves of 16 distinct keys.
    let keys: Vec<String> = (0..16).map(|index| format!("big{index}")).collect();
    let value = "v".repeat(1 << 20);
    for key in &keys {
        assert_eq!(ask(&mut writer, &["SET", key, &value]).await, "+OK\r\n");
    }
    let before = resident_bytes();

    let mut hostile = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let pipeline: Vec<u8> = keys
        .iter()
        .cycle()
        .take(GETS)
        .flat_map(|key| command(&["GET", key]))
        .collect();
    hostile.write_all(&pipeline).await.expect("write");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let grown = resident_bytes().saturating_sub(before);
    let ran = memory
        .ops
        .lock()
        .expect("test ops")
        .iter()
        .filter(|name| **name == "Get")
        .count();
    // One wave (16 reads) runs; its first replies fill the socket.
    assert!(
        ran <= 64,
        "{ran} of {GETS} reads ran for a client that reads nothing"
    );
    assert!(
        grown < 128 << 20,
        "resident memory grew by {} MiB for one client that reads nothing",
        grown >> 20
    );

    // Closed after write_timeout (3 s) without progress.
    let mut closed = false;
    for _ in 0..50 {
        let info = ask(&mut writer, &["INFO", "stats"]).await;
        if info.contains("client_output_buffer_limit_disconnections:1\r\n") {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the client that reads nothing was not closed");
    let info = ask(&mut writer, &["INFO", "clients"]).await;
    assert!(info.contains("connected_clients:1\r\n"), "{info:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn quit_answers_then_closes() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut wire = command(&["QUIT"]);
    wire.extend(command(&["PING"]));
    stream.write_all(&wire).await.expect("write");
    assert_eq!(read_exactly(&mut stream, usize::MAX).await, b"+OK\r\n");
    server.shutdown().await;
}

/// Reads one reply (simple types, bulk strings, arrays of them), bounded.
async fn read_reply(stream: &mut TcpStream) -> String {
    async fn line(stream: &mut TcpStream) -> String {
        let mut bytes = Vec::new();
        while !bytes.ends_with(b"\r\n") {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
                .await
                .expect("a reply within 10 s")
                .expect("read");
            assert_eq!(read, 1, "the connection closed mid-reply");
            bytes.push(byte[0]);
        }
        String::from_utf8(bytes).expect("UTF-8 replies in these tests")
    }
    let first = line(stream).await;
    match first.as_bytes()[0] {
        b'$' if !first.starts_with("$-1") => {
            let length: usize = first[1..first.len() - 2].parse().expect("bulk length");
            let mut body = vec![0u8; length + 2];
            stream.read_exact(&mut body).await.expect("bulk body");
            format!("{first}{}", String::from_utf8(body).expect("UTF-8"))
        }
        b'*' if !first.starts_with("*-1") => {
            let count: usize = first[1..first.len() - 2].parse().expect("array length");
            let mut text = first;
            for _ in 0..count {
                text.push_str(&Box::pin(read_reply(stream)).await);
            }
            text
        }
        _ => first,
    }
}

async fn ask(stream: &mut TcpStream, words: &[&str]) -> String {
    stream.write_all(&command(words)).await.expect("write");
    read_reply(stream).await
}

#[tokio::test]
async fn string_commands_run_as_single_replicated_operations() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let cases: &[(&[&str], &str)] = &[
        (&["SET", "k", "10", "EX", "100"], "+OK\r\n"),
        (&["INCRBY", "k", "5"], ":15\r\n"),
        (&["DECR", "k"], ":14\r\n"),
        // INCR keeps the TTL; TTL rounds to the nearest second.
        (&["TTL", "k"], ":100\r\n"),
        (&["SET", "k", "v", "KEEPTTL", "GET"], "$2\r\n14\r\n"),
        (&["TTL", "k"], ":100\r\n"),
        (&["SET", "k", "w", "NX", "GET"], "$1\r\nv\r\n"),
        (&["SET", "k", "w", "NX"], "$-1\r\n"),
        (&["SET", "none", "w", "XX"], "$-1\r\n"),
        (&["GETSET", "k", "x"], "$1\r\nv\r\n"),
        (&["TTL", "k"], ":-1\r\n"),
        (&["TTL", "none"], ":-2\r\n"),
        (
            &["INCR", "k"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["SET", "big", "9223372036854775807"], "+OK\r\n"),
        (
            &["INCR", "big"],
            "-ERR increment or decrement would overflow\r\n",
        ),
        (&["GET", "big"], "$19\r\n9223372036854775807\r\n"),
        (&["SET", "f", "10.5"], "+OK\r\n"),
        (&["INCRBYFLOAT", "f", "0.1"], "$4\r\n10.6\r\n"),
        (
            &["INCRBYFLOAT", "k", "1"],
            "-ERR value is not a valid float\r\n",
        ),
        (&["SETNX", "k", "y"], ":0\r\n"),
        (&["SETNX", "new", "y"], ":1\r\n"),
        (&["GETDEL", "new"], "$1\r\ny\r\n"),
        (&["GETDEL", "new"], "$-1\r\n"),
        (&["SET", "s", "Hello World"], "+OK\r\n"),
        (&["STRLEN", "s"], ":11\r\n"),
        (&["GETRANGE", "s", "-5", "-1"], "$5\r\nWorld\r\n"),
        (&["SETRANGE", "s", "6", "Redis"], ":11\r\n"),
        (&["GET", "s"], "$11\r\nHello Redis\r\n"),
        (&["APPEND", "s", "!"], ":12\r\n"),
        (&["EXPIRE", "s", "100", "XX"], ":0\r\n"),
        (&["EXPIRE", "s", "100", "NX"], ":1\r\n"),
        (&["EXPIRE", "s", "50", "GT"], ":0\r\n"),
        (&["EXPIRE", "s", "50", "LT"], ":1\r\n"),
        (&["TTL", "s"], ":50\r\n"),
        (&["PERSIST", "s"], ":1\r\n"),
        (&["PERSIST", "s"], ":0\r\n"),
        (&["GETEX", "s", "EX", "30"], "$12\r\nHello Redis!\r\n"),
        (&["TTL", "s"], ":30\r\n"),
        (&["GETEX", "s", "PERSIST"], "$12\r\nHello Redis!\r\n"),
        (&["TTL", "s"], ":-1\r\n"),
        // A deadline in the past removes the key.
        (&["EXPIREAT", "s", "1"], ":1\r\n"),
        (&["EXISTS", "s"], ":0\r\n"),
        (&["SET", "gone", "v", "PXAT", "1"], "+OK\r\n"),
        (&["GET", "gone"], "$-1\r\n"),
        (&["EXPIRE", "k", "-1"], ":1\r\n"),
        (&["GET", "k"], "$-1\r\n"),
    ];
    for (words, expected) in cases {
        assert_eq!(ask(&mut stream, words).await, *expected, "{words:?}");
    }
    // Absolute times, read back against this node's wall clock.
    let deadline_s = crate::clock::unix_ms() / 1000 + 1000;
    assert_eq!(
        ask(
            &mut stream,
            &["SET", "at", "v", "EXAT", &deadline_s.to_string()]
        )
        .await,
        "+OK\r\n"
    );
    let expire_time = ask(&mut stream, &["EXPIRETIME", "at"]).await;
    let read_back: i64 = expire_time[1..expire_time.len() - 2]
        .parse()
        .expect("integer");
    assert!(
        (read_back - deadline_s).abs() <= 1,
        "EXPIRETIME read {read_back}, set {deadline_s}"
    );
    let time = ask(&mut stream, &["TIME"]).await;
    assert!(time.starts_with("*2\r\n$10\r\n"), "TIME answered {time:?}");
    // A key with a short TTL is gone on time.
    assert_eq!(
        ask(&mut stream, &["SET", "short", "v", "PX", "100"]).await,
        "+OK\r\n"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(ask(&mut stream, &["GET", "short"]).await, "$-1\r\n");
    server.shutdown().await;
}

/// Issue 16: an absolute deadline reads back exactly. The backend here
/// applies each operation 20 ms after it arrives, as forwarding to a
/// group's leader delays it; before the instant was carried with the key,
/// `PEXPIRETIME` after `SET ... PXAT t` answered about `t + 20`.
#[tokio::test]
async fn absolute_deadlines_read_back_exactly() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let integer = |reply: String| -> i64 {
        reply
            .strip_prefix(':')
            .and_then(|rest| rest.strip_suffix("\r\n"))
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_else(|| panic!("an integer reply, got {reply:?}"))
    };
    let at_ms = crate::clock::unix_ms() + 100_000;
    let at = at_ms.to_string();
    let at_s = (at_ms / 1000 + 100).to_string();

    // Phase 1: SET PXAT / EXAT, read back to the millisecond / second.
    assert_eq!(
        ask(&mut stream, &["SET", "k", "1", "PXAT", &at]).await,
        "+OK\r\n"
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        integer(ask(&mut stream, &["PEXPIRETIME", "k"]).await),
        at_ms
    );
    assert_eq!(
        ask(&mut stream, &["SET", "s", "1", "EXAT", &at_s]).await,
        "+OK\r\n"
    );
    assert_eq!(
        ask(&mut stream, &["EXPIRETIME", "s"]).await,
        format!(":{at_s}\r\n")
    );

    // Phase 2: writes that keep the deadline keep the instant.
    for words in [
        &["SET", "k", "2", "KEEPTTL"][..],
        &["APPEND", "k", "0"],
        &["INCR", "k"],
        &["INCRBYFLOAT", "k", "0.5"],
        &["SETRANGE", "k", "0", "3"],
    ] {
        let reply = ask(&mut stream, words).await;
        assert!(!reply.starts_with('-'), "{words:?} answered {reply:?}");
        assert_eq!(
            integer(ask(&mut stream, &["PEXPIRETIME", "k"]).await),
            at_ms,
            "after {words:?}"
        );
    }
    // Phase 3: RENAME and COPY carry it ({k} keeps the keys in one shard).
    assert_eq!(
        ask(&mut stream, &["SET", "{k}a", "v", "PXAT", &at]).await,
        "+OK\r\n"
    );
    assert_eq!(ask(&mut stream, &["COPY", "{k}a", "{k}b"]).await, ":1\r\n");
    assert_eq!(
        ask(&mut stream, &["RENAME", "{k}a", "{k}c"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        integer(ask(&mut stream, &["PEXPIRETIME", "{k}b"]).await),
        at_ms
    );
    assert_eq!(
        integer(ask(&mut stream, &["PEXPIRETIME", "{k}c"]).await),
        at_ms
    );

    // Phase 4: PEXPIREAT, EXPIREAT and GETEX PXAT set a new instant.
    let later_ms = at_ms + 5_555;
    let later = later_ms.to_string();
    assert_eq!(
        ask(&mut stream, &["PEXPIREAT", "k", &later]).await,
        ":1\r\n"
    );
    assert_eq!(
        integer(ask(&mut stream, &["PEXPIRETIME", "k"]).await),
        later_ms
    );
    assert_eq!(
        ask(&mut stream, &["EXPIREAT", "s", &at_s, "GT"]).await,
        ":0\r\n"
    );
    assert_eq!(
        ask(&mut stream, &["GETEX", "s", "PXAT", &later]).await,
        "$1\r\n1\r\n"
    );
    assert_eq!(
        integer(ask(&mut stream, &["PEXPIRETIME", "s"]).await),
        later_ms
    );
    // A relative TTL: the receiving node's clock plus the TTL, also kept.
    let before_ms = crate::clock::unix_ms();
    assert_eq!(ask(&mut stream, &["PEXPIRE", "s", "60000"]).await, ":1\r\n");
    let first = integer(ask(&mut stream, &["PEXPIRETIME", "s"]).await);
    assert!(
        (before_ms + 60_000..=crate::clock::unix_ms() + 60_000).contains(&first),
        "PEXPIRE 60000 read back as {first} (sent at {before_ms})"
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        integer(ask(&mut stream, &["PEXPIRETIME", "s"]).await),
        first
    );
    server.shutdown().await;
}

/// Issue 16: `LCS` with Redis 7.0's replies (the example of Redis's
/// documentation), one read of both keys, `-CROSSSLOT` across shards.
#[tokio::test]
async fn lcs_answers_as_redis() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let run = |first: &str, second: &str| format!("*2\r\n*2\r\n:{first}\r\n*2\r\n:{second}\r\n");
    let cases: &[(&[&str], String)] = &[
        (&["SET", "{t}a", "ohmytext"], "+OK\r\n".into()),
        (&["SET", "{t}b", "mynewtext"], "+OK\r\n".into()),
        (&["LCS", "{t}a", "{t}b"], "$6\r\nmytext\r\n".into()),
        (&["lcs", "{t}a", "{t}b", "len"], ":6\r\n".into()),
        (
            &["LCS", "{t}a", "{t}b", "IDX"],
            format!(
                "*4\r\n$7\r\nmatches\r\n*2\r\n{}\r\n{}\r\n$3\r\nlen\r\n:6\r\n",
                run("4\r\n:7", "5\r\n:8").trim_end_matches("\r\n"),
                run("2\r\n:3", "0\r\n:1").trim_end_matches("\r\n"),
            ),
        ),
        (
            &["LCS", "{t}a", "{t}b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"],
            "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n".into(),
        ),
        (&["LCS", "{t}a", "{t}missing"], "$0\r\n\r\n".into()),
        (
            &["LCS", "{t}a", "{t}b", "LEN", "IDX"],
            "-ERR If you want both the length and indexes, please just use IDX.\r\n".into(),
        ),
        (
            &["LCS", "{t}a", "{t}b", "MINMATCHLEN"],
            "-ERR syntax error\r\n".into(),
        ),
        (&["HSET", "{t}h", "f", "v"], ":1\r\n".into()),
        (
            &["LCS", "{t}a", "{t}h"],
            "-ERR The specified keys must contain string values\r\n".into(),
        ),
        (
            &["LCS", "a", "b"],
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n".into(),
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(&ask(&mut stream, words).await, expected, "{words:?}");
    }
    let ops = memory.ops.lock().expect("test ops").clone();
    assert_eq!(ops.iter().filter(|name| **name == "Lcs").count(), 6);
    server.shutdown().await;
}

#[tokio::test]
async fn hash_and_set_commands_answer_as_redis_with_wrongtype() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    const WRONGTYPE: &str =
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    let cases: &[(&[&str], &str)] = &[
        (&["HSET", "h", "b", "2", "a", "1"], ":2\r\n"),
        (&["HSET", "h", "a", "x", "c", "3"], ":1\r\n"),
        (&["HMSET", "h", "d", "4"], "+OK\r\n"),
        (&["HSETNX", "h", "a", "y"], ":0\r\n"),
        (&["HSETNX", "h", "e", "5"], ":1\r\n"),
        (&["HGET", "h", "a"], "$1\r\nx\r\n"),
        (&["HGET", "h", "zz"], "$-1\r\n"),
        (&["HMGET", "h", "b", "zz"], "*2\r\n$1\r\n2\r\n$-1\r\n"),
        (&["HLEN", "h"], ":5\r\n"),
        (&["HSTRLEN", "h", "b"], ":1\r\n"),
        (&["HEXISTS", "h", "c"], ":1\r\n"),
        (&["HDEL", "h", "d", "e", "nope"], ":2\r\n"),
        (&["HKEYS", "h"], "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        (&["HVALS", "h"], "*3\r\n$1\r\nx\r\n$1\r\n2\r\n$1\r\n3\r\n"),
        (
            &["HGETALL", "h"],
            "*6\r\n$1\r\na\r\n$1\r\nx\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n",
        ),
        (&["HINCRBY", "h", "b", "40"], ":42\r\n"),
        (
            &["HINCRBY", "h", "a", "1"],
            "-ERR hash value is not an integer\r\n",
        ),
        (
            &["HINCRBY", "h", "b", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["HINCRBYFLOAT", "h", "c", "0.5"], "$3\r\n3.5\r\n"),
        (
            &["HINCRBYFLOAT", "h", "a", "1"],
            "-ERR hash value is not a float\r\n",
        ),
        (
            &["HINCRBYFLOAT", "h", "c", "+inf"],
            "-ERR value is NaN or Infinity\r\n",
        ),
        (
            &["HINCRBYFLOAT", "h", "c", "nan"],
            "-ERR value is not a valid float\r\n",
        ),
        (
            &["HSET", "h", "odd"],
            "-ERR wrong number of arguments for 'hset' command\r\n",
        ),
        (
            &["HRANDFIELD", "h", "5", "WITHVALUES", "x"],
            "-ERR syntax error\r\n",
        ),
        (&["HRANDFIELD", "nohash"], "$-1\r\n"),
        (&["TYPE", "h"], "+hash\r\n"),
        (&["SADD", "s", "b", "a", "b"], ":2\r\n"),
        (&["SADD", "s", "c"], ":1\r\n"),
        (&["SCARD", "s"], ":3\r\n"),
        (&["SISMEMBER", "s", "a"], ":1\r\n"),
        (&["SMISMEMBER", "s", "a", "z"], "*2\r\n:1\r\n:0\r\n"),
        (
            &["SMEMBERS", "s"],
            "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
        ),
        (&["SREM", "s", "a", "z"], ":1\r\n"),
        (&["SRANDMEMBER", "s", "10"], "*2\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        (
            &["SPOP", "s", "-1"],
            "-ERR value is out of range, must be positive\r\n",
        ),
        (&["SPOP", "s", "5"], "*2\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        (&["EXISTS", "s", "h"], ":1\r\n"),
        (&["TYPE", "s"], "+none\r\n"),
        (&["SADD", "s", "m"], ":1\r\n"),
        (&["TYPE", "s"], "+set\r\n"),
        (&["SET", "str", "v"], "+OK\r\n"),
        (&["HGET", "str", "f"], WRONGTYPE),
        (&["HSET", "str", "f", "v"], WRONGTYPE),
        (&["SADD", "h", "m"], WRONGTYPE),
        (&["SMEMBERS", "h"], WRONGTYPE),
        (&["GET", "h"], WRONGTYPE),
        (&["INCR", "s"], WRONGTYPE),
        (&["APPEND", "s", "x"], WRONGTYPE),
        (&["STRLEN", "h"], WRONGTYPE),
        (&["TYPE", "str"], "+string\r\n"),
        // The refusals changed nothing.
        (&["GET", "str"], "$1\r\nv\r\n"),
        (&["SMEMBERS", "s"], "*1\r\n$1\r\nm\r\n"),
        // DEL and SET work on every type.
        (&["DEL", "h"], ":1\r\n"),
        (&["SET", "s", "now a string"], "+OK\r\n"),
        (&["TYPE", "s"], "+string\r\n"),
    ];
    for (words, expected) in cases {
        assert_eq!(ask(&mut stream, words).await, *expected, "{words:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn list_commands_answer_as_redis() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    const WRONGTYPE: &str =
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    // Replies as redis-server 7.0.15 gives them (RESP2).
    let cases: &[(&[&str], &str)] = &[
        (&["RPUSH", "l", "a", "b", "c", "a", "b"], ":5\r\n"),
        (&["LPUSH", "l", "z"], ":6\r\n"),
        (&["LPUSHX", "nolist", "z"], ":0\r\n"),
        (&["RPUSHX", "l", "y"], ":7\r\n"),
        (&["LLEN", "l"], ":7\r\n"),
        (&["LINDEX", "l", "-1"], "$1\r\ny\r\n"),
        (&["LINDEX", "l", "100"], "$-1\r\n"),
        (
            &["LINDEX", "l", "abc"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["LRANGE", "l", "1", "2"], "*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
        (&["LRANGE", "l", "5", "1"], "*0\r\n"),
        (&["LRANGE", "nolist", "0", "-1"], "*0\r\n"),
        (&["LPOP", "l"], "$1\r\nz\r\n"),
        (&["RPOP", "l", "1"], "*1\r\n$1\r\ny\r\n"),
        (&["LPOP", "l", "0"], "*0\r\n"),
        (&["LPOP", "nolist", "2"], "*-1\r\n"),
        (&["LPOP", "nolist"], "$-1\r\n"),
        (
            &["LPOP", "l", "-1"],
            "-ERR value is out of range, must be positive\r\n",
        ),
        (
            &["LPOP", "l", "1", "2"],
            "-ERR wrong number of arguments for 'lpop' command\r\n",
        ),
        (&["LPOS", "l", "b"], ":1\r\n"),
        (&["LPOS", "l", "b", "RANK", "-1"], ":4\r\n"),
        (&["LPOS", "l", "b", "COUNT", "0"], "*2\r\n:1\r\n:4\r\n"),
        (&["LPOS", "l", "nope"], "$-1\r\n"),
        (&["LPOS", "l", "nope", "COUNT", "2"], "*0\r\n"),
        (
            &["LPOS", "l", "b", "RANK", "0"],
            "-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list\r\n",
        ),
        (
            &["LPOS", "l", "b", "COUNT", "-1"],
            "-ERR COUNT can't be negative\r\n",
        ),
        (
            &["LPOS", "l", "b", "MAXLEN", "-1"],
            "-ERR MAXLEN can't be negative\r\n",
        ),
        (&["LPOS", "l", "b", "FOO", "1"], "-ERR syntax error\r\n"),
        (&["LSET", "l", "0", "A"], "+OK\r\n"),
        (&["LSET", "l", "10", "A"], "-ERR index out of range\r\n"),
        (&["LSET", "nolist", "0", "A"], "-ERR no such key\r\n"),
        (&["LINSERT", "l", "BEFORE", "c", "x"], ":6\r\n"),
        (&["LINSERT", "l", "AFTER", "nope", "x"], ":-1\r\n"),
        (&["LINSERT", "nolist", "AFTER", "c", "x"], ":0\r\n"),
        (
            &["LINSERT", "l", "MIDDLE", "c", "x"],
            "-ERR syntax error\r\n",
        ),
        (&["LREM", "l", "0", "x"], ":1\r\n"),
        (&["LTRIM", "l", "1", "-2"], "+OK\r\n"),
        (
            &["LRANGE", "l", "0", "-1"],
            "*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n",
        ),
        (&["TYPE", "l"], "+list\r\n"),
        // Moves: within a shard ({tag}), and refused across shards.
        (&["RPUSH", "{t}a", "1", "2", "3"], ":3\r\n"),
        (&["LMOVE", "{t}a", "{t}b", "LEFT", "RIGHT"], "$1\r\n1\r\n"),
        (&["RPOPLPUSH", "{t}a", "{t}b"], "$1\r\n3\r\n"),
        (&["LMOVE", "{t}a", "{t}a", "RIGHT", "LEFT"], "$1\r\n2\r\n"),
        (
            &["LRANGE", "{t}b", "0", "-1"],
            "*2\r\n$1\r\n3\r\n$1\r\n1\r\n",
        ),
        (
            &["LMOVE", "{t}a", "{t}b", "UP", "LEFT"],
            "-ERR syntax error\r\n",
        ),
        (&["LMOVE", "{t}none", "{t}b", "LEFT", "LEFT"], "$-1\r\n"),
        (
            &["LMOVE", "a", "b", "LEFT", "LEFT"],
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
        ),
        (&["SET", "{t}s", "v"], "+OK\r\n"),
        (&["LMOVE", "{t}a", "{t}s", "LEFT", "LEFT"], WRONGTYPE),
        (&["LPUSH", "{t}s", "x"], WRONGTYPE),
        (&["LRANGE", "{t}s", "0", "1"], WRONGTYPE),
        (&["GET", "l"], WRONGTYPE),
        (&["LRANGE", "{t}a", "0", "-1"], "*1\r\n$1\r\n2\r\n"),
    ];
    for (words, expected) in cases {
        assert_eq!(ask(&mut stream, words).await, *expected, "{words:?}");
    }
    server.shutdown().await;
}

/// The bulk strings of a flat reply text, in order (skipping headers).
fn bulk_strings(reply: &str) -> Vec<String> {
    let mut lines = reply.split("\r\n");
    let mut strings = Vec::new();
    while let Some(line) = lines.next() {
        if line.starts_with('$') && line != "$-1" {
            strings.push(lines.next().expect("a bulk body").to_owned());
        }
    }
    strings
}

#[tokio::test]
async fn keyspace_commands_fan_out_over_every_shard() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    for index in 0..50 {
        let key = format!("user:{index}");
        assert_eq!(ask(&mut stream, &["SET", &key, "v"]).await, "+OK\r\n");
    }
    for index in 0..10 {
        let key = format!("item:{index}");
        assert_eq!(ask(&mut stream, &["SET", &key, "v"]).await, "+OK\r\n");
    }
    let shards_used = memory
        .stores
        .lock()
        .expect("stores")
        .iter()
        .filter(|store| !store.is_empty())
        .count();
    assert_eq!(shards_used, SHARDS, "the keys spread over every shard");
    assert_eq!(ask(&mut stream, &["DBSIZE"]).await, ":60\r\n");

    // SCAN with a small COUNT walks every shard; every key once.
    let mut cursor = "0".to_owned();
    let mut seen = Vec::new();
    for _ in 0..1000 {
        let reply = ask(
            &mut stream,
            &["SCAN", &cursor, "MATCH", "user:*", "COUNT", "7"],
        )
        .await;
        let mut strings = bulk_strings(&reply).into_iter();
        cursor = strings.next().expect("a cursor");
        seen.extend(strings);
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0", "the scan ended");
    assert_eq!(seen.len(), 50, "each user key once: {seen:?}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 50);
    let typed = ask(&mut stream, &["SCAN", "0", "COUNT", "1000", "TYPE", "hash"]).await;
    assert_eq!(typed, "*2\r\n$1\r\n0\r\n*0\r\n", "no hashes anywhere");

    let keys = bulk_strings(&ask(&mut stream, &["KEYS", "item:*"]).await);
    assert_eq!(keys.len(), 10, "{keys:?}");
    assert!(keys.iter().all(|key| key.starts_with("item:")));
    // KEYS refuses to answer past its limit (a small one here).
    let too_many = keyspace::keys(&Runner(&memory), b"*", 20).await;
    assert_eq!(too_many, Err(KeyspaceError::TooManyKeys { limit: 20 }));

    let random = bulk_strings(&ask(&mut stream, &["RANDOMKEY"]).await);
    assert_eq!(random.len(), 1);
    assert!(
        random[0].starts_with("user:") || random[0].starts_with("item:"),
        "{random:?}"
    );
    // A cursor this service never handed out is refused.
    let bad = ask(&mut stream, &["SCAN", &u64::MAX.to_string()]).await;
    assert_eq!(bad, "-ERR invalid cursor\r\n");

    assert_eq!(ask(&mut stream, &["FLUSHALL"]).await, "+OK\r\n");
    assert_eq!(ask(&mut stream, &["DBSIZE"]).await, ":0\r\n");
    assert_eq!(ask(&mut stream, &["RANDOMKEY"]).await, "$-1\r\n");
    assert_eq!(ask(&mut stream, &["KEYS", "*"]).await, "*0\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn users_passwords_and_acl_rules_over_a_socket() {
    let acl = ::resp::Acl::from_config(
        Some("s3cret"),
        &["user reader on >r ~cache:* +@read -@dangerous".to_owned()],
    )
    .expect("valid users");
    let config = RespConfig {
        acl: std::sync::Arc::new(acl),
        ..RespConfig::default()
    };
    let (server, memory) = start(config).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut exchange = async |words: &[&str], expected: &[u8]| {
        stream.write_all(&command(words)).await.expect("write");
        let reply = read_exactly(&mut stream, expected.len()).await;
        assert_eq!(
            String::from_utf8_lossy(&reply),
            String::from_utf8_lossy(expected),
            "{words:?}"
        );
    };
    exchange(
        &["SET", "cache:1", "v"],
        b"-NOAUTH Authentication required.\r\n",
    )
    .await;
    exchange(
        &["AUTH", "wrong"],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    exchange(&["AUTH", "s3cret"], b"+OK\r\n").await;
    exchange(&["SET", "cache:1", "v"], b"+OK\r\n").await;
    exchange(&["SET", "private", "p"], b"+OK\r\n").await;
    exchange(&["AUTH", "reader", "r"], b"+OK\r\n").await;
    exchange(&["GET", "cache:1"], b"$1\r\nv\r\n").await;
    exchange(
        &["GET", "private"],
        b"-NOPERM No permissions to access a key\r\n",
    )
    .await;
    exchange(
        &["DEL", "cache:1"],
        b"-NOPERM User reader has no permissions to run the 'del' command\r\n",
    )
    .await;
    // Refused commands never reached the store: two SETs and one GET did.
    let stored: u64 = memory
        .stores
        .lock()
        .expect("stores")
        .iter()
        .map(cache::Store::len)
        .sum();
    assert_eq!(stored, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn multi_key_commands_are_one_operation_in_one_shard_and_crossslot_across() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    // Among the test's 4 shards, "a" (slot 15495) is in shard 3 and "b"
    // (slot 3300) in shard 0; keys tagged {t} share one shard.
    assert_ne!(
        shardkv::key_to_shard(b"a", SHARDS),
        shardkv::key_to_shard(b"b", SHARDS)
    );
    let ops_of = |memory: &Memory| std::mem::take(&mut *memory.ops.lock().expect("test ops"));
    let crossslot = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    let cases: &[(&[&str], &str, &[&str])] = &[
        (
            &["MSET", "{t}a", "1", "{t}b", "2"],
            "+OK\r\n",
            &["MultiSet"],
        ),
        (
            &["MSETNX", "{t}a", "x", "{t}c", "3"],
            ":0\r\n",
            &["MultiSet"],
        ),
        (&["EXISTS", "{t}c"], ":0\r\n", &["Type"]),
        (
            &["MSETNX", "{t}c", "3", "{t}d", "4"],
            ":1\r\n",
            &["MultiSet"],
        ),
        // Keys of two shards: refused without an operation.
        (&["MSETNX", "a", "1", "b", "2"], crossslot, &[]),
        (&["RENAME", "{t}a", "b"], crossslot, &[]),
        (&["RENAMENX", "{t}a", "b"], crossslot, &[]),
        (&["COPY", "{t}a", "b"], crossslot, &[]),
        (&["EXISTS", "a", "b"], ":0\r\n", &["Type", "Type"]),
        // MSET across shards is split: one atomic MultiSet per shard ("t",
        // slot 15891, is in shard 3 with "a").
        (
            &["MSET", "a", "1", "b", "2", "{t}e", "5"],
            "+OK\r\n",
            &["MultiSet", "MultiSet"],
        ),
        (
            &["MGET", "a", "b", "{t}e"],
            "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n5\r\n",
            &["Get", "Get", "Get"],
        ),
        // With a deadline, SET is an Op::Set: it carries the instant.
        (&["SET", "{t}a", "v", "EX", "100"], "+OK\r\n", &["Set"]),
        (&["RENAME", "{t}a", "{t}r"], "+OK\r\n", &["Rename"]),
        (&["TTL", "{t}r"], ":100\r\n", &["Ttl"]),
        (&["GET", "{t}a"], "$-1\r\n", &["Get"]),
        (
            &["RENAME", "{t}a", "{t}r"],
            "-ERR no such key\r\n",
            &["Rename"],
        ),
        (&["RENAMENX", "{t}r", "{t}b"], ":0\r\n", &["Rename"]),
        (&["RENAMENX", "{t}r", "{t}r"], ":0\r\n", &["Rename"]),
        (&["RENAME", "{t}r", "{t}r"], "+OK\r\n", &["Rename"]),
        (&["RENAMENX", "{t}r", "{t}n"], ":1\r\n", &["Rename"]),
        (&["COPY", "{t}n", "{t}b"], ":0\r\n", &["Copy"]),
        (&["COPY", "{t}n", "{t}b", "REPLACE"], ":1\r\n", &["Copy"]),
        (&["GET", "{t}b"], "$1\r\nv\r\n", &["Get"]),
        (&["TTL", "{t}b"], ":100\r\n", &["Ttl"]),
        (
            &["COPY", "{t}n", "{t}n"],
            "-ERR source and destination objects are the same\r\n",
            &[],
        ),
        (
            &["COPY", "{t}n", "{t}x", "DB", "1"],
            "-ERR DB index is out of range\r\n",
            &[],
        ),
        // Any type moves: a hash renamed, then copied.
        (&["HSET", "{t}h", "f", "v"], ":1\r\n", &["Hash"]),
        (&["RENAME", "{t}h", "{t}h2"], "+OK\r\n", &["Rename"]),
        (&["COPY", "{t}h2", "{t}h3"], ":1\r\n", &["Copy"]),
        (&["HGET", "{t}h3", "f"], "$1\r\nv\r\n", &["Hash"]),
        (&["TYPE", "{t}h2"], "+hash\r\n", &["Type"]),
        (&["EXISTS", "{t}h"], ":0\r\n", &["Type"]),
    ];
    for (words, expected, ops) in cases {
        assert_eq!(&ask(&mut stream, words).await, expected, "{words:?}");
        assert_eq!(&ops_of(&memory), ops, "operations run by {words:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn set_algebra_and_smove_are_one_operation_in_one_shard() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let ops_of = |memory: &Memory| std::mem::take(&mut *memory.ops.lock().expect("test ops"));
    let crossslot = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    let wrongtype = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    let cases: &[(&[&str], &str, &[&str])] = &[
        (&["SADD", "{t}a", "1", "2", "3"], ":3\r\n", &["Sets"]),
        (&["SADD", "{t}b", "2", "3", "4"], ":3\r\n", &["Sets"]),
        (&["SET", "{t}s", "x"], "+OK\r\n", &["Put"]),
        (
            &["SINTER", "{t}a", "{t}b"],
            "*2\r\n$1\r\n2\r\n$1\r\n3\r\n",
            &["Sets"],
        ),
        (
            &["SUNION", "{t}a", "{t}none", "{t}b"],
            "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n",
            &["Sets"],
        ),
        (&["SDIFF", "{t}a", "{t}b"], "*1\r\n$1\r\n1\r\n", &["Sets"]),
        (&["SINTER", "{t}none", "{t}s"], wrongtype, &["Sets"]),
        (&["SDIFFSTORE", "{t}s", "{t}a", "{t}b"], ":1\r\n", &["Sets"]),
        (&["TYPE", "{t}s"], "+set\r\n", &["Type"]),
        (
            &["SINTERSTORE", "{t}s", "{t}a", "{t}none"],
            ":0\r\n",
            &["Sets"],
        ),
        (&["EXISTS", "{t}s"], ":0\r\n", &["Type"]),
        (&["SINTERCARD", "2", "{t}a", "{t}b"], ":2\r\n", &["Sets"]),
        (
            &["SINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "1"],
            ":1\r\n",
            &["Sets"],
        ),
        (
            &["SINTERCARD", "0", "{t}a"],
            "-ERR numkeys should be greater than 0\r\n",
            &[],
        ),
        (
            &["SINTERCARD", "3", "{t}a", "{t}b"],
            "-ERR Number of keys can't be greater than number of args\r\n",
            &[],
        ),
        (
            &["SINTERCARD", "1", "{t}a", "LIMIT", "-1"],
            "-ERR LIMIT can't be negative\r\n",
            &[],
        ),
        (
            &["SINTERCARD", "1", "{t}a", "LIMIT"],
            "-ERR syntax error\r\n",
            &[],
        ),
        (&["SMOVE", "{t}a", "{t}b", "1"], ":1\r\n", &["Sets"]),
        (&["SMOVE", "{t}a", "{t}b", "1"], ":0\r\n", &["Sets"]),
        (&["SMOVE", "{t}none", "{t}b", "1"], ":0\r\n", &["Sets"]),
        // Keys of two shards: refused without an operation ("a", "b").
        (&["SINTER", "a", "b"], crossslot, &[]),
        (&["SUNIONSTORE", "{t}d", "b"], crossslot, &[]),
        (&["SINTERCARD", "2", "{t}a", "b"], crossslot, &[]),
        (&["SMOVE", "{t}a", "b", "2"], crossslot, &[]),
        (&["SCARD", "{t}a"], ":2\r\n", &["Sets"]),
    ];
    for (words, expected, ops) in cases {
        assert_eq!(&ask(&mut stream, words).await, expected, "{words:?}");
        assert_eq!(&ops_of(&memory), ops, "operations run by {words:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn cluster_mode_describes_the_groups_and_redirects_other_groups_keys() {
    let config = RespConfig {
        cluster: Some(std::sync::Arc::new(cluster_map())),
        ..RespConfig::default()
    };
    let (server, memory) = start(config).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let id = |n: u64| super::node_name(n);
    let node = |n: u64| {
        format!(
            "*3\r\n$9\r\n127.0.0.1\r\n:{}\r\n$40\r\n{}\r\n",
            7000 + n,
            id(n)
        )
    };
    assert_eq!(id(3), format!("{}3", "0".repeat(39)));
    assert_eq!(
        ask(&mut stream, &["CLUSTER", "MYID"]).await,
        format!("$40\r\n{}\r\n", id(1))
    );
    assert_eq!(
        ask(&mut stream, &["CLUSTER", "SLOTS"]).await,
        format!(
            "*2\r\n*4\r\n:0\r\n:8191\r\n{}{}*3\r\n:8192\r\n:16383\r\n{}",
            node(1),
            node(2),
            node(3)
        ),
        "group 1: master node 1 (this node leads), replica node 2; group 2: node 3"
    );
    let nodes = ask(&mut stream, &["CLUSTER", "NODES"]).await;
    for line in [
        format!(
            "{} 127.0.0.1:7001@17001 myself,master - 0 0 7 connected 0-8191\n",
            id(1)
        ),
        format!(
            "{} 127.0.0.1:7002@17002 slave {} 0 0 7 connected\n",
            id(2),
            id(1)
        ),
        format!(
            "{} 127.0.0.1:7003@17003 master - 0 0 7 connected 8192-16383\n",
            id(3)
        ),
    ] {
        assert!(
            nodes.contains(&line),
            "CLUSTER NODES lacks {line:?}: {nodes:?}"
        );
    }
    let shards = ask(&mut stream, &["CLUSTER", "SHARDS"]).await;
    assert!(
        shards.starts_with("*2\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:8191\r\n$5\r\nnodes\r\n*2\r\n"),
        "{shards:?}"
    );
    assert_eq!(shards.matches("$6\r\nmaster\r\n").count(), 2, "{shards:?}");
    assert_eq!(shards.matches("$7\r\nreplica\r\n").count(), 1, "{shards:?}");
    let info = ask(&mut stream, &["CLUSTER", "INFO"]).await;
    for field in [
        "cluster_state:ok",
        "cluster_slots_assigned:16384",
        "cluster_known_nodes:3",
        "cluster_size:2",
        "cluster_current_epoch:7",
    ] {
        assert!(info.contains(field), "CLUSTER INFO lacks {field}: {info:?}");
    }
    assert!(
        ask(&mut stream, &["INFO", "server"])
            .await
            .contains("redis_mode:cluster")
    );

    memory.ops.lock().expect("test ops").clear();
    // "a" (slot 15495) is group 2's: redirected to its master, nothing run.
    let cases: &[(&[&str], &str)] = &[
        (&["SET", "a", "1"], "-MOVED 15495 127.0.0.1:7003\r\n"),
        (&["GET", "a"], "-MOVED 15495 127.0.0.1:7003\r\n"),
        (
            &["MSET", "b", "1", "a", "2"],
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
        ),
        (&["READONLY"], "+OK\r\n"),
        (&["ASKING"], "+OK\r\n"),
        (&["READWRITE"], "+OK\r\n"),
        (&["CLUSTER", "KEYSLOT", "a"], ":15495\r\n"),
    ];
    for (words, expected) in cases {
        assert_eq!(&ask(&mut stream, words).await, expected, "{words:?}");
    }
    assert!(
        memory.ops.lock().expect("test ops").is_empty(),
        "a redirect runs nothing"
    );
    // "b" (slot 3300) is this group's: served here.
    assert_eq!(ask(&mut stream, &["SET", "b", "1"]).await, "+OK\r\n");
    assert_eq!(
        ask(&mut stream, &["MSET", "{b}x", "1", "{b}y", "2"]).await,
        "+OK\r\n"
    );
    assert_eq!(ask(&mut stream, &["GET", "b"]).await, "$1\r\n1\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn proxy_mode_answers_every_key_and_refuses_cluster_subcommands() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    for sub in ["SLOTS", "SHARDS", "NODES", "MYID", "INFO"] {
        assert_eq!(
            ask(&mut stream, &["CLUSTER", sub]).await,
            "-ERR This instance has cluster support disabled\r\n"
        );
    }
    assert_eq!(ask(&mut stream, &["SET", "a", "1"]).await, "+OK\r\n");
    assert_eq!(
        ask(&mut stream, &["CLUSTER", "KEYSLOT", "a"]).await,
        ":15495\r\n"
    );
    assert!(
        ask(&mut stream, &["INFO", "server"])
            .await
            .contains("redis_mode:standalone")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn sorted_set_commands_answer_as_redis_7_0_in_both_protocols() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let ops_of = |memory: &Memory| std::mem::take(&mut *memory.ops.lock().expect("test ops"));
    let wrongtype = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    let crossslot = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    // Phase 1: RESP2, each command one operation (none for a parse error).
    let resp2: &[(&[&str], &str, &[&str])] = &[
        (
            &["ZADD", "{t}z", "1", "a", "2", "b", "1.1", "c"],
            ":3\r\n",
            &["ZSet"],
        ),
        (
            &["ZADD", "{t}z", "CH", "GT", "0", "a", "5", "b"],
            ":1\r\n",
            &["ZSet"],
        ),
        (
            &["ZSCORE", "{t}z", "c"],
            "$18\r\n1.1000000000000001\r\n",
            &["ZSet"],
        ),
        (&["ZSCORE", "{t}z", "x"], "$-1\r\n", &["ZSet"]),
        (
            &["ZINCRBY", "{t}z", "+inf", "a"],
            "$3\r\ninf\r\n",
            &["ZSet"],
        ),
        (
            &["ZINCRBY", "{t}z", "-inf", "a"],
            "-ERR resulting score is not a number (NaN)\r\n",
            &["ZSet"],
        ),
        (
            &["ZRANGE", "{t}z", "0", "-1", "WITHSCORES"],
            "*6\r\n$1\r\nc\r\n$18\r\n1.1000000000000001\r\n$1\r\nb\r\n$1\r\n5\r\n$1\r\na\r\n$3\r\ninf\r\n",
            &["ZSet"],
        ),
        (
            &["ZRANGE", "{t}z", "(5", "-inf", "BYSCORE", "REV"],
            "*1\r\n$1\r\nc\r\n",
            &["ZSet"],
        ),
        (&["ZREVRANK", "{t}z", "c"], ":2\r\n", &["ZSet"]),
        (&["ZRANK", "{t}z", "x"], "$-1\r\n", &["ZSet"]),
        (&["ZCOUNT", "{t}z", "-inf", "(inf"], ":2\r\n", &["ZSet"]),
        (
            &["ZMSCORE", "{t}z", "b", "x"],
            "*2\r\n$1\r\n5\r\n$-1\r\n",
            &["ZSet"],
        ),
        (
            &["ZPOPMIN", "{t}z"],
            "*2\r\n$1\r\nc\r\n$18\r\n1.1000000000000001\r\n",
            &["ZSet"],
        ),
        (&["ZCARD", "{t}z"], ":2\r\n", &["ZSet"]),
        (&["SET", "{t}s", "x"], "+OK\r\n", &["Put"]),
        (&["ZADD", "{t}s", "1", "a"], wrongtype, &["ZSet"]),
        (&["ZRANGE", "{t}s", "0", "-1"], wrongtype, &["ZSet"]),
        (
            &["ZUNIONSTORE", "{t}d", "2", "{t}z", "{t}s"],
            wrongtype,
            &["ZSet"],
        ),
        (
            &["ZUNIONSTORE", "{t}d", "1", "{t}z", "WEIGHTS", "2"],
            ":2\r\n",
            &["ZSet"],
        ),
        (&["ZUNIONSTORE", "{t}d", "1", "other"], crossslot, &[]),
        (
            &["ZRANGESTORE", "{t}r", "{t}d", "0", "0"],
            ":1\r\n",
            &["ZSet"],
        ),
        (&["TYPE", "{t}r"], "+zset\r\n", &["Type"]),
        (
            &["ZADD", "{t}z", "NX", "XX", "1", "a"],
            "-ERR XX and NX options at the same time are not compatible\r\n",
            &[],
        ),
        (
            &["ZREMRANGEBYSCORE", "{t}z", "-inf", "+inf"],
            ":2\r\n",
            &["ZSet"],
        ),
        (&["EXISTS", "{t}z"], ":0\r\n", &["Type"]),
    ];
    for (words, expected, ops) in resp2 {
        assert_eq!(ask(&mut stream, words).await, *expected, "{words:?}");
        assert_eq!(ops_of(&memory), *ops, "{words:?}");
    }
    // Phase 2: RESP3 doubles, nested pairs, and a flat single pop.
    let mut wire = command(&["HELLO", "3"]);
    wire.extend(command(&["PING"]));
    stream.write_all(&wire).await.expect("write");
    let mut hello = Vec::new();
    while !hello.ends_with(b"+PONG\r\n") {
        hello.extend(read_exactly(&mut stream, 1).await);
        assert!(hello.len() < 4096, "HELLO 3's map, then PONG");
    }
    let resp3: &[(&[&str], &str)] = &[
        (&["ZADD", "{t}z", "1", "a", "2.5", "b"], ":2\r\n"),
        (&["ZSCORE", "{t}z", "b"], ",2.5\r\n"),
        (&["ZADD", "{t}z", "NX", "INCR", "1", "a"], "_\r\n"),
        (
            &["ZRANGE", "{t}z", "0", "-1", "WITHSCORES"],
            "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n",
        ),
        (&["ZMSCORE", "{t}z", "a", "x"], "*2\r\n,1\r\n_\r\n"),
        (&["ZPOPMAX", "{t}z"], "*2\r\n$1\r\nb\r\n,2.5\r\n"),
        (&["ZPOPMAX", "{t}z", "5"], "*1\r\n*2\r\n$1\r\na\r\n,1\r\n"),
        (&["ZPOPMAX", "{t}z", "5"], "*0\r\n"),
        (&["ZRANDMEMBER", "{t}z"], "_\r\n"),
    ];
    for (words, expected) in resp3 {
        assert_eq!(ask(&mut stream, words).await, *expected, "{words:?}");
    }
    server.shutdown().await;
}
