//! The listener over real sockets with an in-memory backend: pipelining,
//! ordering, limits, protocol errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shardkv::{Op, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Backend, RespConfig, RespServer};
use crate::forward::ForwardError;

/// A map that answers after a delay, counting operations in flight.
#[derive(Default)]
struct Memory {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    in_flight: AtomicUsize,
    in_flight_max: AtomicUsize,
}

impl Backend for std::sync::Arc<Memory> {
    async fn run(&self, op: Op) -> Result<Outcome, ForwardError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.in_flight_max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut map = self.map.lock().expect("test map");
        Ok(match op {
            Op::Get { key } => Outcome::Value(map.get(&key).cloned()),
            Op::Put { key, value, .. } => {
                map.insert(key, value);
                Outcome::Done
            }
            Op::Append { key, value } => {
                map.entry(key).or_default().extend(value);
                Outcome::Done
            }
            Op::Delete { key } => Outcome::Deleted(map.remove(&key).is_some()),
            Op::CompareAndSet {
                key,
                expected,
                value,
                ..
            } => {
                if map.get(&key) == expected.as_ref() {
                    map.insert(key, value);
                    Outcome::Swapped(true)
                } else {
                    Outcome::Swapped(false)
                }
            }
        })
    }

    fn describe(&self) -> String {
        "groups:1\r\n".to_owned()
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
        memory.map.lock().expect("map").is_empty(),
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
