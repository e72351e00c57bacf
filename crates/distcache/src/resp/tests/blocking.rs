//! The blocking commands over real sockets: a client blocked in `BLPOP`
//! is woken by another connection's push (through the backend's key
//! watch, without polling), times out with Redis's null array, and a
//! client that disconnects while blocked takes nothing; `LMPOP`/`ZMPOP`
//! and the flat `BZPOPMIN` answer in Redis 7.0's shapes; `OBJECT` and
//! `APPEND`'s length.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{ask, command, read_reply, start};
use crate::resp::RespConfig;

async fn connect(server: &crate::resp::RespServer) -> TcpStream {
    TcpStream::connect(server.local_addr())
        .await
        .expect("connect")
}

fn list_ops(memory: &super::Memory) -> usize {
    memory
        .ops
        .lock()
        .expect("test ops")
        .iter()
        .filter(|name| **name == "List")
        .count()
}

/// Switches the connection to RESP3 (the map HELLO answers is read past,
/// up to the PONG sent after it).
async fn hello3(stream: &mut TcpStream) {
    let mut wire = command(&["HELLO", "3"]);
    wire.extend(command(&["PING"]));
    stream.write_all(&wire).await.expect("write");
    let mut received = Vec::new();
    while !received.ends_with(b"+PONG\r\n") {
        received.extend(super::read_exactly(stream, 1).await);
        assert!(received.len() < 4096, "no PONG after HELLO 3: {received:?}");
    }
}

/// Waits (bounded) until `condition` holds, or fails naming `what`.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 5 s: {what}");
}

#[tokio::test]
async fn a_blocked_pop_is_woken_by_another_connections_push() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut blocked = connect(&server).await;
    let mut pusher = connect(&server).await;

    // Phase 1: BLPOP on an empty list blocks; a PING pipelined after it
    // is not answered before it (the connection answers nothing else).
    let mut wire = command(&["BLPOP", "{q}other", "{q}queue", "0"]);
    wire.extend(command(&["PING"]));
    blocked.write_all(&wire).await.expect("write");
    wait_until("the blocked client waits on its keys", || {
        memory.watch.waiting() == 1
    })
    .await;
    let info = ask(&mut pusher, &["INFO", "clients"]).await;
    assert!(info.contains("blocked_clients:1\r\n"), "{info:?}");
    let pops_before = list_ops(&memory);

    // Phase 2: a push on another connection wakes it with the element.
    assert_eq!(
        ask(&mut pusher, &["RPUSH", "{q}queue", "job"]).await,
        ":1\r\n"
    );
    let reply = read_reply(&mut blocked).await;
    assert_eq!(reply, "*2\r\n$8\r\n{q}queue\r\n$3\r\njob\r\n");
    assert_eq!(read_reply(&mut blocked).await, "+PONG\r\n");

    // Woken, not polling: while blocked the client ran one empty pop;
    // after the push, one more pop (and the push itself).
    let pops_after = list_ops(&memory);
    assert_eq!(
        pops_after - pops_before,
        2,
        "the push and one pop (the blocked client must not poll)"
    );
    assert_eq!(ask(&mut pusher, &["LLEN", "{q}queue"]).await, ":0\r\n");
    assert_eq!(memory.watch.waiting(), 0, "the wait is unregistered");
    let info = ask(&mut pusher, &["INFO", "clients"]).await;
    assert!(info.contains("blocked_clients:0\r\n"), "{info:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn blocking_commands_time_out_with_the_null_array() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut client = connect(&server).await;
    let started = tokio::time::Instant::now();
    assert_eq!(ask(&mut client, &["BLPOP", "l", "0.2"]).await, "*-1\r\n");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "answered after {:?}, before the timeout",
        started.elapsed()
    );
    assert_eq!(ask(&mut client, &["BRPOP", "l", "0.01"]).await, "*-1\r\n");
    assert_eq!(
        ask(&mut client, &["BZPOPMIN", "z", "0.01"]).await,
        "*-1\r\n"
    );
    assert_eq!(
        ask(
            &mut client,
            &["BLMOVE", "{t}a", "{t}b", "LEFT", "RIGHT", "0.01"]
        )
        .await,
        "*-1\r\n"
    );
    assert_eq!(
        ask(&mut client, &["BLMPOP", "0.01", "1", "l", "LEFT"]).await,
        "*-1\r\n"
    );
    assert_eq!(
        ask(&mut client, &["BZMPOP", "0.01", "1", "z", "MAX"]).await,
        "*-1\r\n"
    );
    // RESP3's null.
    hello3(&mut client).await;
    assert_eq!(ask(&mut client, &["BLPOP", "l", "0.01"]).await, "_\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_disconnects_while_blocked_takes_nothing() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut blocked = connect(&server).await;
    blocked
        .write_all(&command(&["BRPOPLPUSH", "{q}src", "{q}dst", "0"]))
        .await
        .expect("write");
    wait_until("the client blocks", || memory.watch.waiting() == 1).await;

    // The client leaves: its wait ends, and a later push stays.
    drop(blocked);
    wait_until("the wait of the departed client is dropped", || {
        memory.watch.waiting() == 0
    })
    .await;
    let mut other = connect(&server).await;
    assert_eq!(ask(&mut other, &["LPUSH", "{q}src", "x"]).await, ":1\r\n");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ask(&mut other, &["LLEN", "{q}src"]).await, ":1\r\n");
    assert_eq!(ask(&mut other, &["LLEN", "{q}dst"]).await, ":0\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn multi_pops_answer_in_redis_7_0_shapes() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut client = connect(&server).await;
    let cases: &[(&[&str], &str)] = &[
        (&["LMPOP", "2", "{t}a", "{t}b", "LEFT"], "*-1\r\n"),
        (&["RPUSH", "{t}b", "1", "2", "3"], ":3\r\n"),
        (
            &["LMPOP", "2", "{t}a", "{t}b", "RIGHT", "COUNT", "2"],
            "*2\r\n$4\r\n{t}b\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n",
        ),
        (
            &["BLPOP", "{t}a", "{t}b", "0"],
            "*2\r\n$4\r\n{t}b\r\n$1\r\n1\r\n",
        ),
        (&["ZADD", "{z}1", "1", "a", "2", "b"], ":2\r\n"),
        (
            &["ZMPOP", "1", "{z}1", "MAX"],
            "*2\r\n$4\r\n{z}1\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
        ),
        (
            &["BZPOPMIN", "{z}0", "{z}1", "0"],
            "*3\r\n$4\r\n{z}1\r\n$1\r\na\r\n$1\r\n1\r\n",
        ),
        (&["ZMPOP", "1", "{z}1", "MIN"], "*-1\r\n"),
        (
            &["LMPOP", "2", "a", "b", "LEFT"],
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
        ),
        (
            &["BLPOP", "a", "b", "0"],
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
        ),
        (&["SET", "s", "x"], "+OK\r\n"),
        (
            &["BLPOP", "s", "0"],
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
        (
            &["BZPOPMAX", "s", "0"],
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
        (
            &["LMPOP", "1", "l", "LEFT", "COUNT", "0"],
            "-ERR count should be greater than 0\r\n",
        ),
        (&["BLPOP", "l", "-1"], "-ERR timeout is negative\r\n"),
    ];
    for (words, expected) in cases {
        assert_eq!(&ask(&mut client, words).await, expected, "{words:?}");
    }
    // RESP3: the score is a double.
    hello3(&mut client).await;
    assert_eq!(ask(&mut client, &["ZADD", "z", "1.5", "m"]).await, ":1\r\n");
    assert_eq!(
        ask(&mut client, &["ZMPOP", "1", "z", "MIN"]).await,
        "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nm\r\n,1.5\r\n"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn object_encoding_refcount_and_append_length() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut client = connect(&server).await;
    let long = "x".repeat(45);
    let cases: &[(&[&str], &str)] = &[
        (&["OBJECT", "ENCODING", "missing"], "$-1\r\n"),
        (&["SET", "n", "12345"], "+OK\r\n"),
        (&["OBJECT", "ENCODING", "n"], "$3\r\nint\r\n"),
        (&["APPEND", "n", "x"], ":6\r\n"),
        (&["OBJECT", "ENCODING", "n"], "$6\r\nembstr\r\n"),
        (&["SET", "long", &long], "+OK\r\n"),
        (&["OBJECT", "ENCODING", "long"], "$3\r\nraw\r\n"),
        (&["RPUSH", "l", "a"], ":1\r\n"),
        (&["OBJECT", "ENCODING", "l"], "$9\r\nquicklist\r\n"),
        (&["SADD", "s", "1"], ":1\r\n"),
        (&["OBJECT", "ENCODING", "s"], "$9\r\nhashtable\r\n"),
        (&["OBJECT", "REFCOUNT", "l"], ":1\r\n"),
        (&["OBJECT", "REFCOUNT", "missing"], "$-1\r\n"),
        (
            &["OBJECT", "NOPE", "l"],
            "-ERR unknown subcommand 'NOPE'. Try OBJECT HELP.\r\n",
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(&ask(&mut client, words).await, expected, "{words:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn memory_usage_answers_the_accounted_bytes() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut client = connect(&server).await;
    let long = "x".repeat(45);
    let bytes = cache::store::entry_weight_bytes(
        b"long",
        &cache::store::Value::Str(long.as_bytes().to_vec()),
    );
    let integer = format!(":{bytes}\r\n");
    let cases: &[(&[&str], &str)] = &[
        (&["MEMORY", "USAGE", "missing"], "$-1\r\n"),
        (&["SET", "long", &long], "+OK\r\n"),
        (&["MEMORY", "USAGE", "long"], &integer),
        (&["memory", "usage", "long", "SAMPLES", "5"], &integer),
        (
            &["MEMORY", "USAGE", "long", "SAMPLES", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["MEMORY", "USAGE", "long", "SAMPLES"],
            "-ERR syntax error\r\n",
        ),
        (
            &["MEMORY", "NOPE"],
            "-ERR unknown subcommand 'NOPE'. Try MEMORY HELP.\r\n",
        ),
    ];
    for (words, expected) in cases {
        assert_eq!(&ask(&mut client, words).await, expected, "{words:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn hrandfield_with_values_answers_pairs_in_resp3() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut client = connect(&server).await;
    assert_eq!(
        ask(&mut client, &["HSET", "h", "a", "1", "b", "2", "c", "3"]).await,
        ":3\r\n"
    );
    // RESP2: a flat array of field, value, field, value...
    let flat = ask(&mut client, &["HRANDFIELD", "h", "3", "WITHVALUES"]).await;
    assert!(flat.starts_with("*6\r\n$1\r\n"), "{flat:?}");
    hello3(&mut client).await;
    // RESP3: one two-element array per field, as Redis 7 answers.
    let paired = ask(&mut client, &["HRANDFIELD", "h", "3", "WITHVALUES"]).await;
    assert!(paired.starts_with("*3\r\n*2\r\n$1\r\n"), "{paired:?}");
    assert_eq!(paired.matches("*2\r\n").count(), 3, "{paired:?}");
    let fields = ask(&mut client, &["HRANDFIELD", "h", "3"]).await;
    assert!(fields.starts_with("*3\r\n$1\r\n"), "{fields:?}");
    server.shutdown().await;
}
