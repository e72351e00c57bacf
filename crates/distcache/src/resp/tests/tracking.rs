//! Client-side caching over real sockets: a tracking connection is told
//! (RESP3 `invalidate` pushes) of writes through this listener, of writes
//! seen only through the change feed, and of expiries; BCAST with
//! prefixes, NOLOOP and OPTIN tell what they should and nothing else.

use std::time::Duration;

use shardkv::Op;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ask, command, start};
use crate::resp::RespConfig;

async fn connect(server: &crate::resp::RespServer) -> TcpStream {
    TcpStream::connect(server.local_addr())
        .await
        .expect("connect")
}

/// A RESP3 connection with tracking on (`options` after `ON`).
async fn tracking_client(server: &crate::resp::RespServer, options: &[&str]) -> TcpStream {
    let mut stream = connect(server).await;
    let mut words = vec!["CLIENT", "TRACKING", "ON"];
    words.extend_from_slice(options);
    let mut wire = command(&["HELLO", "3"]);
    wire.extend(command(&words));
    wire.extend(command(&["PING"]));
    stream.write_all(&wire).await.expect("write");
    let received = read_until(&mut stream, "+OK\r\n+PONG\r\n").await;
    assert!(received.contains("+OK\r\n+PONG\r\n"), "{received:?}");
    stream
}

/// Reads until `needle` has arrived; everything read, bounded by 10 s.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains(needle) {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {needle:?} within 10 s; got {:?}",
                    String::from_utf8_lossy(&received)
                )
            })
            .expect("read");
        assert_ne!(read, 0, "the connection closed");
        received.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8(received).expect("UTF-8 in these tests")
}

/// Everything that arrives within `wait` (nothing expected).
async fn read_for(stream: &mut TcpStream, wait: Duration) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = crate::clock::now() + wait;
    while let Ok(read) = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
        let read = read.expect("read");
        assert_ne!(read, 0, "the connection closed");
        received.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8(received).expect("UTF-8 in these tests")
}

fn invalidate(key: &str) -> String {
    format!(
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{key}\r\n",
        key.len()
    )
}

/// Whether `received` has an `invalidate` push naming `key` (with
/// others, maybe: writes close together are told in one push).
fn told(received: &str, key: &str) -> bool {
    received.contains(">2\r\n$10\r\ninvalidate\r\n*")
        && received.contains(&format!("${}\r\n{key}\r\n", key.len()))
}

/// Reads until a push names `key`; everything read.
async fn read_until_told(stream: &mut TcpStream, key: &str) -> String {
    let mut received = String::new();
    while !told(&received, key) {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("not told of {key:?} within 10 s; got {received:?}"))
            .expect("read");
        assert_ne!(read, 0, "the connection closed");
        received.push_str(&String::from_utf8_lossy(&chunk[..read]));
    }
    received
}

const FLUSH: &str = ">2\r\n$10\r\ninvalidate\r\n_\r\n";

/// The first answer of the feed poller flushes (what was cached before it
/// followed the feed cannot be vouched for); wait for it so that later
/// reads see only what a test does.
async fn past_first_flush(stream: &mut TcpStream) {
    read_until(stream, FLUSH).await;
}

#[tokio::test]
async fn a_write_through_another_connection_invalidates_a_tracked_read() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut reader = tracking_client(&server, &[]).await;
    past_first_flush(&mut reader).await;
    let mut writer = connect(&server).await;
    assert_eq!(ask(&mut writer, &["SET", "k", "1"]).await, "+OK\r\n");
    reader
        .write_all(&command(&["GET", "k"]))
        .await
        .expect("write");
    read_until(&mut reader, "$1\r\n1\r\n").await;
    assert_eq!(ask(&mut writer, &["SET", "k", "2"]).await, "+OK\r\n");
    read_until(&mut reader, &invalidate("k")).await;
    // Told once: the key is forgotten until read again.
    assert_eq!(ask(&mut writer, &["SET", "k", "3"]).await, "+OK\r\n");
    reader.write_all(&command(&["PING"])).await.expect("write");
    let after = read_until(&mut reader, "+PONG\r\n").await;
    assert!(!after.contains("invalidate"), "told twice: {after:?}");
    // A key never read is not told.
    assert_eq!(ask(&mut writer, &["SET", "other", "1"]).await, "+OK\r\n");
    let quiet = read_for(&mut reader, Duration::from_millis(400)).await;
    assert!(quiet.is_empty(), "told of a key never read: {quiet:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_own_write_is_told_after_its_reply_unless_noloop() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut client = tracking_client(&server, &[]).await;
    past_first_flush(&mut client).await;
    assert_eq!(ask(&mut client, &["GET", "k"]).await, "_\r\n");
    client
        .write_all(&command(&["SET", "k", "v"]))
        .await
        .expect("write");
    let received = read_until(&mut client, &invalidate("k")).await;
    assert!(
        received.starts_with("+OK\r\n"),
        "the reply first, then the push (as Redis): {received:?}"
    );
    let mut quiet = tracking_client(&server, &["NOLOOP"]).await;
    past_first_flush_or_nothing(&mut quiet).await;
    assert_eq!(ask(&mut quiet, &["GET", "n"]).await, "_\r\n");
    quiet
        .write_all(&command(&["SET", "n", "v"]))
        .await
        .expect("write");
    let received = read_for(&mut quiet, Duration::from_millis(400)).await;
    assert_eq!(received, "+OK\r\n", "NOLOOP: not told of its own write");
    server.shutdown().await;
}

/// A second tracking connection may or may not see a flush (the poller
/// is already past its first answer): read whatever comes briefly.
async fn past_first_flush_or_nothing(stream: &mut TcpStream) {
    let _ = read_for(stream, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_write_made_elsewhere_is_told_through_the_change_feed() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut reader = tracking_client(&server, &[]).await;
    past_first_flush(&mut reader).await;
    memory.write_elsewhere(&Op::Delete {
        key: b"warmup".to_vec(),
    });
    assert_eq!(ask(&mut reader, &["GET", "far"]).await, "_\r\n");
    memory.write_elsewhere(&Op::Set {
        key: b"far".to_vec(),
        value: b"v".to_vec(),
        condition: api::SetCondition::Always,
        ttl: api::SetTtl::Clear,
        return_old: false,
    });
    read_until_told(&mut reader, "far").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_tracked_key_with_a_ttl_is_told_when_it_expires() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut reader = tracking_client(&server, &[]).await;
    past_first_flush(&mut reader).await;
    let mut writer = connect(&server).await;
    assert_eq!(
        ask(&mut writer, &["SET", "brief", "v", "PX", "300"]).await,
        "+OK\r\n"
    );
    let asked = crate::clock::now();
    reader
        .write_all(&command(&["GET", "brief"]))
        .await
        .expect("write");
    read_until_told(&mut reader, "brief").await;
    let after = asked.elapsed();
    assert!(
        after >= Duration::from_millis(150),
        "told before it expired ({after:?})"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bcast_tells_every_write_under_its_prefixes_and_optin_only_what_it_chose() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut bcast = tracking_client(&server, &["BCAST", "PREFIX", "user:"]).await;
    past_first_flush(&mut bcast).await;
    let mut optin = tracking_client(&server, &["OPTIN"]).await;
    past_first_flush_or_nothing(&mut optin).await;
    assert_eq!(ask(&mut optin, &["GET", "user:2"]).await, "_\r\n");
    assert_eq!(
        ask(&mut optin, &["CLIENT", "CACHING", "YES"]).await,
        "+OK\r\n"
    );
    assert_eq!(ask(&mut optin, &["GET", "user:1"]).await, "_\r\n");
    let mut writer = connect(&server).await;
    for key in ["user:1", "item:1", "user:2"] {
        assert_eq!(ask(&mut writer, &["SET", key, "v"]).await, "+OK\r\n");
    }
    let bcast_told = read_until_told(&mut bcast, "user:2").await;
    let bcast_more = read_for(&mut bcast, Duration::from_millis(400)).await;
    assert!(told(&bcast_told, "user:1"), "{bcast_told:?}");
    assert!(
        !bcast_told.contains("item:1") && !bcast_more.contains("item:1"),
        "item:1 is not under user: {bcast_told:?} {bcast_more:?}"
    );
    let optin_told = read_until_told(&mut optin, "user:1").await;
    let optin_more = read_for(&mut optin, Duration::from_millis(400)).await;
    assert!(
        !optin_told.contains("user:2") && !optin_more.contains("user:2"),
        "user:2 was read without CACHING YES: {optin_told:?} {optin_more:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_read_pipelined_after_a_write_of_its_key_stays_tracked() {
    let (server, _memory) = start(RespConfig::default()).await;
    let mut client = tracking_client(&server, &[]).await;
    past_first_flush(&mut client).await;
    let mut wire = command(&["SET", "k", "1"]);
    wire.extend(command(&["GET", "k"]));
    client.write_all(&wire).await.expect("write");
    let received = read_until(&mut client, "$1\r\n1\r\n").await;
    assert!(received.starts_with("+OK\r\n"), "{received:?}");
    let (_, after_reply) = received
        .split_once("$1\r\n1\r\n")
        .expect("read up to the GET's value");
    if told(after_reply, "k") {
        // Told after the value (the feed's echo of the SET): the client
        // dropped it, nothing stale is kept.
        server.shutdown().await;
        return;
    }
    let mut writer = connect(&server).await;
    assert_eq!(ask(&mut writer, &["SET", "k", "2"]).await, "+OK\r\n");
    // A push naming k must come after the GET's value, or the client keeps
    // "1" (a push before it, as tracking at parse time sent, is too early).
    read_until_told(&mut client, "k").await;
    server.shutdown().await;
}

#[tokio::test]
async fn bcast_is_told_of_expiries_and_a_new_configuration_flushes() {
    let (server, memory) = start(RespConfig::default()).await;
    let mut bcast = tracking_client(&server, &["BCAST", "PREFIX", "t:"]).await;
    past_first_flush(&mut bcast).await;
    let mut writer = connect(&server).await;
    assert_eq!(
        ask(&mut writer, &["SET", "t:1", "v", "PX", "300"]).await,
        "+OK\r\n"
    );
    read_until_told(&mut bcast, "t:1").await;
    assert_eq!(ask(&mut bcast, &["GET", "t:1"]).await, "$1\r\nv\r\n");
    read_until_told(&mut bcast, "t:1").await;
    *memory.config_num.lock().expect("test config") += 1;
    read_until(&mut bcast, FLUSH).await;
    server.shutdown().await;
}

/// A tracked read is never a bounded one: the client would keep an answer
/// that may predate a write whose news went out before the key was
/// tracked. Under `READONLY MAXSTALENESS` a tracking connection's reads go
/// to any replica linearizably; an untracked connection's keep the bound.
#[tokio::test]
async fn a_tracked_read_ignores_the_staleness_bound() {
    use crate::forward::ReadFrom::{AnyReplica, AnyReplicaWithin};
    let (server, memory) = start(RespConfig::default()).await;
    let mut tracking = tracking_client(&server, &[]).await;
    past_first_flush(&mut tracking).await;
    let mut wire = command(&["READONLY", "MAXSTALENESS", "500"]);
    wire.extend(command(&["GET", "tracked"]));
    tracking.write_all(&wire).await.expect("write");
    read_until(&mut tracking, "+OK\r\n_\r\n").await;
    let mut plain = connect(&server).await;
    assert_eq!(
        ask(&mut plain, &["READONLY", "MAXSTALENESS", "500"]).await,
        "+OK\r\n"
    );
    assert_eq!(ask(&mut plain, &["GET", "untracked"]).await, "$-1\r\n");
    let read_froms = memory.read_froms.lock().expect("test read_from").clone();
    // (A TTL lookup after a tracked read would run from the leader.)
    let of = |key: &[u8]| -> Vec<_> {
        read_froms
            .iter()
            .filter(|(read, _)| read == key)
            .map(|(_, from)| *from)
            .collect()
    };
    let tracked = of(b"tracked");
    assert!(tracked.contains(&AnyReplica), "{tracked:?}");
    assert!(
        !tracked
            .iter()
            .any(|from| matches!(from, AnyReplicaWithin(_))),
        "a tracked read was bounded: {tracked:?}"
    );
    assert_eq!(
        of(b"untracked"),
        vec![AnyReplicaWithin(Duration::from_millis(500))]
    );
    server.shutdown().await;
}
