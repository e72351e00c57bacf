//! A fault-injecting TCP proxy on every peer link (this kernel has no
//! `tc netem`).
//!
//! One listener per directed link `(from, to, kind)`: node `from`'s
//! configuration names the listener's port as `to`'s peer port, so every
//! byte `from` sends to `to` (and the replies) passes through it.
//!
//! ```text
//!  node A ──► proxy (A→B, data) ──► node B's data_port
//!               │ per chunk, in each direction:
//!               │   delay: sleep a random time in [min, max] first
//!               │   loss:  with probability p, cut the connection (both
//!               │          ways; bytes in flight are lost, the caller's RPC
//!               │          fails and is retried on a new connection)
//!               │   reorder: a random delay per connection and a cut now
//!               │          and then, so a new connection's messages
//!               │          overtake an older one's
//! ```
//!
//! TCP itself never reorders or drops bytes inside one connection, so
//! losing bytes means losing the connection; reordering is between
//! connections. Bounds: at most [`CONNECTIONS_MAX`] connections per link,
//! chunks of at most [`CHUNK_BYTES`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::cluster::PeerPort;

/// Most connections one link carries at once.
pub const CONNECTIONS_MAX: usize = 64;
/// Largest chunk read and forwarded at once.
pub const CHUNK_BYTES: usize = 16 * 1024;

/// What a link does to its traffic now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Delay per chunk, uniformly in `delay_ms.0..=delay_ms.1`.
    pub delay_ms: (u64, u64),
    /// Probability per chunk of cutting the connection.
    pub loss: f64,
    /// Each connection gets its own random delay in `0..=reorder_ms` and
    /// connections are cut with probability `loss` (set it > 0 too).
    pub reorder_ms: u64,
}

impl LinkFaults {
    pub fn is_clean(&self) -> bool {
        *self == LinkFaults::default()
    }
}

type LinkKey = (u64, u64, PeerPort);

struct Link {
    faults: watch::Sender<LinkFaults>,
    connections: Arc<AtomicUsize>,
}

/// Every link's proxy.
pub struct Proxies {
    links: BTreeMap<LinkKey, Link>,
    ports: BTreeMap<LinkKey, u16>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    cut_connections: Arc<AtomicUsize>,
}

impl Proxies {
    /// Starts a proxy for each `(link, real port)`.
    pub async fn start(links: &[(LinkKey, u16)], seed: u64) -> std::io::Result<Proxies> {
        let mut proxies = Proxies {
            links: BTreeMap::new(),
            ports: BTreeMap::new(),
            tasks: Vec::new(),
            cut_connections: Arc::new(AtomicUsize::new(0)),
        };
        for (index, &(key, target)) in links.iter().enumerate() {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            let (faults, watcher) = watch::channel(LinkFaults::default());
            let connections = Arc::new(AtomicUsize::new(0));
            let rng = ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x2545_f491));
            proxies.tasks.push(tokio::spawn(accept_loop(
                listener,
                target,
                watcher,
                Arc::clone(&connections),
                Arc::clone(&proxies.cut_connections),
                rng,
            )));
            proxies.links.insert(
                key,
                Link {
                    faults,
                    connections,
                },
            );
            proxies.ports.insert(key, port);
        }
        Ok(proxies)
    }

    /// The proxy port of each link (the nodes' view of each other).
    pub fn view(&self) -> BTreeMap<LinkKey, u16> {
        self.ports.clone()
    }

    pub fn port(&self, key: &LinkKey) -> Option<u16> {
        self.ports.get(key).copied()
    }

    /// Sets the faults of every link that touches `node` (`None`: every
    /// link).
    pub fn set(&self, node: Option<u64>, faults: LinkFaults) {
        for ((from, to, _), link) in &self.links {
            if node.is_none_or(|node| node == *from || node == *to) {
                link.faults.send_replace(faults);
            }
        }
    }

    /// Every link back to clean.
    pub fn heal(&self) {
        self.set(None, LinkFaults::default());
    }

    /// Connections cut by loss or reordering so far.
    pub fn cut_connections(&self) -> usize {
        self.cut_connections.load(Ordering::Relaxed)
    }

    /// Connections open now, over all links.
    pub fn open_connections(&self) -> usize {
        self.links
            .values()
            .map(|link| link.connections.load(Ordering::Relaxed))
            .sum()
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: u16,
    faults: watch::Receiver<LinkFaults>,
    connections: Arc<AtomicUsize>,
    cut: Arc<AtomicUsize>,
    mut rng: ChaCha8Rng,
) {
    let shared_rng = Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(rng.r#gen())));
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if connections.load(Ordering::Relaxed) >= CONNECTIONS_MAX {
            drop(inbound);
            continue;
        }
        connections.fetch_add(1, Ordering::Relaxed);
        let connection_delay_ms = rng.gen_range(0..=1000u64);
        let faults = faults.clone();
        let connections = Arc::clone(&connections);
        let cut = Arc::clone(&cut);
        let rng = Arc::clone(&shared_rng);
        tokio::spawn(async move {
            if let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (inbound_read, inbound_write) = inbound.into_split();
                let (outbound_read, outbound_write) = outbound.into_split();
                let pump = |read, write| {
                    pump(
                        read,
                        write,
                        faults.clone(),
                        Arc::clone(&rng),
                        connection_delay_ms,
                    )
                };
                // Either direction ending (closed, failed or cut) ends both.
                let was_cut = tokio::select! {
                    cut = pump(inbound_read, outbound_write) => cut,
                    cut = pump(outbound_read, inbound_write) => cut,
                };
                if was_cut {
                    cut.fetch_add(1, Ordering::Relaxed);
                }
            }
            connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Copies one direction until it closes or the link's faults cut it;
/// whether it was cut.
async fn pump(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    faults: watch::Receiver<LinkFaults>,
    rng: Arc<Mutex<ChaCha8Rng>>,
    connection_delay_ms: u64,
) -> bool {
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        let Ok(read_bytes) = read.read(&mut buffer).await else {
            return false;
        };
        if read_bytes == 0 {
            return false;
        }
        let now = *faults.borrow();
        if !now.is_clean() {
            let (delay_ms, lose) = {
                let mut rng = rng.lock().expect("proxy rng lock");
                let (low, high) = now.delay_ms;
                let mut delay_ms = if high > low {
                    rng.gen_range(low..=high)
                } else {
                    low
                };
                if now.reorder_ms > 0 {
                    delay_ms += connection_delay_ms.min(now.reorder_ms);
                }
                (delay_ms, now.loss > 0.0 && rng.gen_bool(now.loss.min(1.0)))
            };
            if lose {
                return true;
            }
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
        }
        if write.write_all(&buffer[..read_bytes]).await.is_err() {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buffer).await {
                        if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    async fn round_trip(port: u16) -> std::io::Result<Duration> {
        let started = tokio::time::Instant::now();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"ping").await?;
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).await?;
        assert_eq!(&reply, b"ping");
        Ok(started.elapsed())
    }

    #[tokio::test]
    async fn the_proxy_forwards_delays_and_cuts() {
        let target = echo_server().await;
        let key = (1, 2, PeerPort::Data);
        let proxies = Proxies::start(&[(key, target)], 7).await.expect("proxies");
        let port = proxies.port(&key).expect("a port for the link");

        let clean = round_trip(port).await.expect("clean link");
        assert!(clean < Duration::from_millis(100), "{clean:?}");

        proxies.set(
            Some(2),
            LinkFaults {
                delay_ms: (150, 150),
                ..LinkFaults::default()
            },
        );
        let delayed = round_trip(port).await.expect("delayed link");
        // Delayed both ways.
        assert!(delayed >= Duration::from_millis(300), "{delayed:?}");

        proxies.set(
            None,
            LinkFaults {
                loss: 1.0,
                ..LinkFaults::default()
            },
        );
        assert!(round_trip(port).await.is_err(), "a lossy link answered");
        assert_eq!(proxies.cut_connections(), 1);

        proxies.heal();
        round_trip(port).await.expect("healed link");
    }
}
