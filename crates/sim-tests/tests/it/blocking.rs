//! The blocking commands under simulation: whole `distcache` nodes (the
//! six of `sim_tests::server`), RESP clients on hosts of their own over the
//! simulated TCP. Consumers sit in `BLPOP` on one list while a producer
//! `RPUSH`es numbered elements, and every node is cut off from its peers in
//! turn for 1-5 s (so each group's leader is cut off at least once and
//! leadership moves while clients are blocked, and requests forwarded from
//! a cut-off node outlive their 3 s deadline and are sent again), then the
//! network heals and the consumers drain the list.
//!
//! The check is conservation: every element whose push was acknowledged is
//! popped exactly once or still in the list at the end; no element is
//! popped twice; nothing is popped that was not pushed. Clients never
//! abandon a request (they wait for its reply however long), so a pop is
//! never taken and then dropped on the client side.

#![cfg(madsim)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use labrpc::sim::NodeId;
use sim_tests::harness::{phase, within};
use sim_tests::server::{Cluster, NODES, wait_ready};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEST_LIMIT: Duration = Duration::from_secs(300);
const CONSUMERS: usize = 3;
/// The list every client uses (one hash tag, one shard).
const LIST: &str = "{queue}jobs";
/// How long a client waits for one reply before the test fails (never
/// abandoned earlier: an abandoned pop could take an element).
const REPLY_LIMIT: Duration = Duration::from_secs(60);

/// One RESP reply, as much as this test reads.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// One reply parsed from the front of `bytes`, and its length; `None` if
/// it is not all there yet.
fn parse(bytes: &[u8]) -> Option<(Reply, usize)> {
    let line_end = bytes.windows(2).position(|pair| pair == b"\r\n")?;
    let line = std::str::from_utf8(&bytes[1..line_end]).expect("RESP lines are text");
    let after_line = line_end + 2;
    match bytes[0] {
        b'+' => Some((Reply::Simple(line.to_string()), after_line)),
        b'-' => Some((Reply::Error(line.to_string()), after_line)),
        b':' => Some((Reply::Integer(line.parse().expect("integer")), after_line)),
        b'_' => Some((Reply::Bulk(None), after_line)),
        b'$' => {
            let length: i64 = line.parse().expect("bulk length");
            if length < 0 {
                return Some((Reply::Bulk(None), after_line));
            }
            let end = after_line + length as usize;
            if bytes.len() < end + 2 {
                return None;
            }
            Some((Reply::Bulk(Some(bytes[after_line..end].to_vec())), end + 2))
        }
        b'*' => {
            let count: i64 = line.parse().expect("array length");
            if count < 0 {
                return Some((Reply::Array(None), after_line));
            }
            let mut items = Vec::new();
            let mut at = after_line;
            for _ in 0..count {
                let (item, used) = parse(&bytes[at..])?;
                items.push(item);
                at += used;
            }
            Some((Reply::Array(Some(items)), at))
        }
        other => panic!("unexpected RESP type byte {other}"),
    }
}

/// A RESP connection that sends one command and waits for its reply.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    /// Connects to node `node_id`, retrying while the node does not answer.
    async fn open(addr: std::net::SocketAddr) -> Connection {
        loop {
            if let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
            {
                return Connection {
                    stream,
                    buffer: Vec::new(),
                };
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends `words` and waits for the reply (at most [`REPLY_LIMIT`]).
    async fn ask(&mut self, words: &[&str]) -> Reply {
        let mut wire = format!("*{}\r\n", words.len()).into_bytes();
        for word in words {
            wire.extend(format!("${}\r\n{word}\r\n", word.len()).into_bytes());
        }
        self.stream.write_all(&wire).await.expect("write");
        // (The simulated stream sends buffered bytes on flush.)
        self.stream.flush().await.expect("flush");
        let read = async {
            loop {
                if let Some((reply, used)) = parse(&self.buffer) {
                    self.buffer.drain(..used);
                    return reply;
                }
                let mut chunk = [0u8; 4096];
                let count = self.stream.read(&mut chunk).await.expect("read");
                assert!(count > 0, "the node closed a RESP connection mid-request");
                self.buffer.extend_from_slice(&chunk[..count]);
            }
        };
        tokio::time::timeout(REPLY_LIMIT, read)
            .await
            .unwrap_or_else(|_| panic!("no reply to {words:?} within {REPLY_LIMIT:?}"))
    }
}

/// What the clients saw.
#[derive(Default)]
struct Ledger {
    /// Pushes answered with the list's length.
    acknowledged: Vec<String>,
    /// Pushes answered with an error (may or may not have applied).
    unknown: Vec<String>,
    /// Elements popped, by consumer, in order.
    popped: Vec<(usize, String)>,
    /// Blocking pops that timed out empty.
    empty_waits: u64,
}

#[madsim::test]
async fn no_element_lost_or_duplicated_while_leaders_change_under_blocked_clients() {
    within("test", TEST_LIMIT, async {
        phase("six nodes; consumers block in BLPOP, a producer pushes");
        let cluster = Cluster::start(0);
        wait_ready(&cluster).await;
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let producing = Arc::new(AtomicBool::new(true));
        let consuming = Arc::new(AtomicBool::new(true));

        let mut consumers = Vec::new();
        for consumer in 0..CONSUMERS {
            // Each consumer on its own node (and host); nodes 1..=6.
            let addr = cluster.resp_addr(1 + (consumer * 2) % NODES);
            let (ledger, consuming) = (Arc::clone(&ledger), Arc::clone(&consuming));
            consumers.push(cluster.net.spawn(cluster.client_host(), async move {
                let mut connection = Connection::open(addr).await;
                while consuming.load(Ordering::Relaxed) {
                    match connection.ask(&["BLPOP", LIST, "1"]).await {
                        Reply::Array(Some(items)) => {
                            let [_, Reply::Bulk(Some(element))] = items.as_slice() else {
                                panic!("BLPOP answered {items:?}");
                            };
                            let element = String::from_utf8(element.clone()).expect("text");
                            ledger.lock().unwrap().popped.push((consumer, element));
                        }
                        Reply::Array(None) => ledger.lock().unwrap().empty_waits += 1,
                        // A timeout of the pop's routing (the group not
                        // reachable for the request deadline) is an error
                        // the client sees; it asks again.
                        Reply::Error(error) => {
                            tracing::info!(consumer, %error, "BLPOP error");
                        }
                        other => panic!("BLPOP answered {other:?}"),
                    }
                }
            }));
        }
        let producer = {
            let addr = cluster.resp_addr(2);
            let (ledger, producing) = (Arc::clone(&ledger), Arc::clone(&producing));
            cluster.net.spawn(cluster.client_host(), async move {
                let mut connection = Connection::open(addr).await;
                let mut sequence = 0u64;
                while producing.load(Ordering::Relaxed) {
                    sequence += 1;
                    let element = format!("job-{sequence}");
                    match connection.ask(&["RPUSH", LIST, &element]).await {
                        Reply::Integer(_) => ledger.lock().unwrap().acknowledged.push(element),
                        Reply::Error(_) => ledger.lock().unwrap().unknown.push(element),
                        other => panic!("RPUSH answered {other:?}"),
                    }
                    tokio::time::sleep(Duration::from_millis(
                        50 + madsim::rand::random::<u64>() % 200,
                    ))
                    .await;
                }
            })
        };

        phase("every node cut off from its peers in turn (leaders move)");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut order: Vec<NodeId> = cluster.nodes.clone();
        for index in (1..order.len()).rev() {
            let other = madsim::rand::random::<u64>() as usize % (index + 1);
            order.swap(index, other);
        }
        for node in order {
            tracing::info!(node = %cluster.net.describe(node), "cut off from its peers");
            for &other in cluster.nodes.iter().filter(|&&other| other != node) {
                cluster.net.cut_link(node, other);
            }
            // Up to 5 s: longer than a request's deadline (3 s), so a
            // pop forwarded from the cut-off node times out and is sent
            // again (with its exactly-once identity).
            tokio::time::sleep(Duration::from_millis(
                1000 + madsim::rand::random::<u64>() % 4000,
            ))
            .await;
            cluster.net.heal_all();
            tokio::time::sleep(Duration::from_millis(700)).await;
        }

        phase("healed: the producer stops, the consumers drain the list");
        producing.store(false, Ordering::Relaxed);
        producer.await.expect("client hosts are never killed");
        // Every consumer has answered empty waits since the last push.
        let drained_after = ledger.lock().unwrap().empty_waits + 3 * CONSUMERS as u64;
        within("the consumers drain the list", Duration::from_secs(60), async {
            while ledger.lock().unwrap().empty_waits < drained_after {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        consuming.store(false, Ordering::Relaxed);
        for consumer in consumers {
            consumer.await.expect("client hosts are never killed");
        }
        let left = cluster
            .net
            .spawn(cluster.client_host(), {
                let addr = cluster.resp_addr(4);
                async move {
                    let mut connection = Connection::open(addr).await;
                    connection.ask(&["LRANGE", LIST, "0", "-1"]).await
                }
            })
            .await
            .expect("client hosts are never killed");
        let Reply::Array(Some(left)) = left else {
            panic!("LRANGE answered {left:?}");
        };
        let left: Vec<String> = left
            .into_iter()
            .map(|item| match item {
                Reply::Bulk(Some(bytes)) => String::from_utf8(bytes).expect("text"),
                other => panic!("LRANGE item {other:?}"),
            })
            .collect();

        phase("conservation: each acknowledged element once, none twice");
        let ledger = ledger.lock().unwrap();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for element in ledger
            .popped
            .iter()
            .map(|(_, element)| element.as_str())
            .chain(left.iter().map(String::as_str))
        {
            *seen.entry(element).or_default() += 1;
        }
        let duplicated: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
        assert!(duplicated.is_empty(), "elements delivered twice: {duplicated:?}");
        let lost: Vec<&String> = ledger
            .acknowledged
            .iter()
            .filter(|element| !seen.contains_key(element.as_str()))
            .collect();
        assert!(lost.is_empty(), "acknowledged elements lost: {lost:?}");
        let pushed: std::collections::BTreeSet<&str> = ledger
            .acknowledged
            .iter()
            .chain(&ledger.unknown)
            .map(String::as_str)
            .collect();
        let invented: Vec<_> = seen.keys().filter(|element| !pushed.contains(*element)).collect();
        assert!(invented.is_empty(), "popped but never pushed: {invented:?}");
        assert!(
            ledger.popped.len() > 20,
            "only {} elements were popped: the consumers did not work",
            ledger.popped.len()
        );
        println!(
            "pushed {} acknowledged + {} unknown; popped {} ({} by consumer 0), {} left, {} empty waits",
            ledger.acknowledged.len(),
            ledger.unknown.len(),
            ledger.popped.len(),
            ledger.popped.iter().filter(|(consumer, _)| *consumer == 0).count(),
            left.len(),
            ledger.empty_waits
        );
    })
    .await;
}
