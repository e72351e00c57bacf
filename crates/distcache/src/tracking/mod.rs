//! Client-side caching: which client may hold which key, and telling it
//! when the key changes (issue 22). Each front end has its own
//! [`Tracker`] and feed pollers, through [`TrackingHost`]: the RESP
//! listener for `CLIENT TRACKING` (a connection is a client), and the gRPC
//! `Cache` service for `Cache.Track` streams ([`grpc`], the Rust client's
//! near cache; a stream is a client). Below, in RESP's terms.
//!
//! ```text
//!  connection (RESP3, tracking on)           this listener's Tracker
//!    tracked read of k ──────────────────► remember k ─► client   (before
//!                                                                  the read runs)
//!    write of k answered here ───────────► invalidate k (at once, before the
//!                                            writer's reply is written)
//!  feed poller, one per group ◄── WatchChanges long poll on the group's leader
//!    keys written anywhere ──────────────► invalidate them
//!    Reset / no confirmed answer for
//!      MAX_UNCONFIRMED / first answer ───► flush: every tracking connection
//!                                            drops everything it cached
//!  expiry timer: a tracked key with a TTL ► invalidate it when it expires
//!
//!  connection: pushes are written after the replies of the wave in flight
//!  when they were queued (a read's value before the news that it changed),
//!  or at once while it idles.
//! ```
//!
//! **The guarantee**, for a RESP3 client that caches what it read with
//! tracking on and drops what it is told (in the order the connection
//! sends replies and pushes): once a write is acknowledged to its writer,
//! its keys' invalidation (or a flush) has been queued on every tracking
//! connection of every node, and is written to the client at once or right
//! after the reply of the request it has in flight. A write made through
//! this node is told before the writer's reply is written; any other is
//! held back by the owning group's leader (shardkv's write fence) until
//! this node's poller has handed it on (its next poll says so) or lost its
//! lease. A poller vouches for its clients for [`MAX_UNCONFIRMED`] from
//! sending the poll whose answer confirmed it; when that lapses a timer
//! flushes them, and until that group's poller is confirmed again
//! whatever they read of its keys (by the configuration read last) is
//! told as changed right after the reply: nothing of it stays cached,
//! while the other groups' keys are cached as usual. So a cached value
//! lags an acknowledged write only by the push's travel. Not covered: a
//! shard moved to a group whose leader holds no lease of this node's
//! poller (the node did not follow that group, or could not reach its
//! leader): until the node reads the new configuration, the old group's
//! poller vouches for the shard's keys, and the new group answers writes
//! (and a retry of a write the old group held back, from the exactly-once
//! record that moved with the shard) without waiting for this node (a new
//! configuration flushes, within [`GROUPS_CHECK`]; a node that cannot
//! read the configuration for [`MAX_UNCONFIRMED`] flushes too; a poller
//! the new group's leader does hold a lease of is told to start over by
//! the shard's install, see shardkv's `change_feed`), a key's expiry
//! (told when its TTL, as read right after the cacheable read, runs out),
//! and a key evicted for memory (not told: the client keeps the last value
//! written, as if evicted later).
//!
//! **Bounds**: at most [`MAX_TRACKED_KEYS`] keys and
//! [`MAX_TRACKED_KEY_BYTES`] of them remembered (past either the first key
//! in byte order is told as changed and forgotten, as Redis's
//! `tracking-table-max-keys`; a client's keys are forgotten when it stops
//! tracking) and as many scheduled expiries (past it a
//! key is told at once instead); at most [`MAX_TTL_LOOKUPS`] TTL lookups
//! in flight per listener (past it the key is told at once: the client
//! reads it again); at most [`MAX_PENDING_KEYS`] keys waiting per
//! connection (past it the connection is told to flush instead).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use resp::command::TrackingOptions;
use shardkv::Changes;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::forward::ForwardError;

pub mod grpc;

/// What a tracker's tasks need from the node: the tracker itself and a
/// way to the groups (the RESP listener's backend, the gRPC service's
/// forwarder). The tasks hold it weakly and end when it is gone.
pub trait TrackingHost: Send + Sync + 'static {
    fn tracker(&self) -> &Arc<Tracker>;

    /// The configuration's number, groups and shards, read afresh; `None`
    /// if the controller did not answer lately.
    fn feed_config(&self) -> impl Future<Output = Option<FeedConfig>> + Send;

    /// One long poll of group `gid`'s change feed after `after` by poller
    /// `poller` (which has handed every change through `after` to its
    /// clients), waiting at most `wait`; `None` if no leader answered.
    fn watch_changes(
        &self,
        gid: u64,
        poller: u64,
        after: u64,
        wait: Duration,
    ) -> impl Future<Output = Option<Changes>> + Send;

    /// Runs a read (the TTL lookups after cacheable reads).
    fn read(
        &self,
        op: shardkv::Op,
    ) -> impl Future<Output = Result<shardkv::Outcome, ForwardError>> + Send;
}

/// What the feed pollers follow of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedConfig {
    /// The configuration's number: a new one flushes every client.
    pub num: u64,
    /// Its groups: one poller each.
    pub groups: Vec<u64>,
    /// The group serving each shard (its length is the number of shards):
    /// a read is cached only if its key's group's poller vouches.
    pub shards: Vec<u64>,
}

/// Most keys remembered for default-mode tracking.
pub const MAX_TRACKED_KEYS: usize = 1_000_000;
/// Most bytes of keys remembered for default-mode tracking.
pub const MAX_TRACKED_KEY_BYTES: usize = 64 << 20;
/// Most TTL lookups in flight per listener.
pub const MAX_TTL_LOOKUPS: usize = 256;
/// Most keys waiting to be told to one connection.
pub const MAX_PENDING_KEYS: usize = 4_096;
/// Longest a feed poller vouches for its clients after sending a poll
/// that was answered: with no newer confirmed answer by then, the node
/// flushes its clients' caches. The leaders' write fence counts its lease
/// from this window (it is shardkv's `POLLER_WINDOW`, one constant).
pub const MAX_UNCONFIRMED: Duration = shardkv::POLLER_WINDOW;
/// How long one poll may wait for a change on the leader.
pub const POLL_WAIT: Duration = Duration::from_millis(300);
/// Pause after a failed poll.
const POLL_RETRY: Duration = Duration::from_millis(50);
/// How often the configuration (the groups to poll) is read again.
pub const GROUPS_CHECK: Duration = Duration::from_secs(1);

/// What a connection is told.
#[derive(Debug, Default)]
struct Pending {
    keys: Vec<Bytes>,
    /// Drop everything (supersedes `keys`).
    flush: bool,
}

/// One message for a tracking client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Told {
    /// These keys may have changed.
    Keys(Vec<Bytes>),
    /// Drop everything cached.
    Flush,
}

/// One tracking connection's invalidations on their way out.
#[derive(Debug, Default)]
pub struct PushQueue {
    pending: Mutex<Pending>,
    ready: Notify,
}

impl PushQueue {
    fn push_keys<'a>(&self, keys: impl IntoIterator<Item = &'a Bytes>) {
        let mut pending = self.pending.lock().expect("push queue lock");
        if !pending.flush {
            for key in keys {
                // Told once per push (a key written twice before the
                // connection wrote out its pushes).
                if !pending.keys.contains(key) {
                    pending.keys.push(key.clone());
                }
            }
            if pending.keys.len() > MAX_PENDING_KEYS {
                pending.keys = Vec::new();
                pending.flush = true;
            }
        }
        drop(pending);
        self.ready.notify_one();
    }

    fn push_flush(&self) {
        let mut pending = self.pending.lock().expect("push queue lock");
        pending.keys = Vec::new();
        pending.flush = true;
        drop(pending);
        self.ready.notify_one();
    }

    /// What waits to be told, if anything does.
    pub fn take(&self) -> Option<Told> {
        let pending = std::mem::take(&mut *self.pending.lock().expect("push queue lock"));
        if pending.flush {
            Some(Told::Flush)
        } else if pending.keys.is_empty() {
            None
        } else {
            Some(Told::Keys(pending.keys))
        }
    }

    /// Resolves when something was queued since the last call (at once if
    /// it was queued before).
    pub async fn ready(&self) {
        self.ready.notified().await;
    }
}

#[derive(Debug)]
struct Subscriber {
    queue: Arc<PushQueue>,
    options: TrackingOptions,
}

#[derive(Debug, Default)]
struct State {
    subscribers: BTreeMap<u64, Subscriber>,
    /// Default mode: the connections that may hold each key.
    keys: BTreeMap<Bytes, BTreeSet<u64>>,
    /// The bytes of the keys in `keys`.
    key_bytes: usize,
    /// Tracked keys with a TTL: when each expires, both ways.
    expiry_by_key: BTreeMap<Bytes, Instant>,
    expiries: BTreeSet<(Instant, Bytes)>,
    /// The feed pollers are running.
    polling: bool,
    /// The groups of the configuration read last, the group serving each
    /// shard in it, and the groups whose poller vouches for its clients
    /// now (a confirmed answer within [`MAX_UNCONFIRMED`] of sending its
    /// poll): a key read stays cached only if its group is vouched for
    /// ([`Tracker::track`]).
    groups: BTreeSet<u64>,
    shards: Vec<u64>,
    confirmed: BTreeSet<u64>,
}

impl State {
    /// Whether the poller of `key`'s group (in the configuration read
    /// last) vouches for its clients now.
    fn vouches_for(&self, key: &[u8]) -> bool {
        if self.shards.is_empty() {
            return false;
        }
        let gid = self.shards[shardkv::key_to_shard(key, self.shards.len())];
        self.groups.contains(&gid) && self.confirmed.contains(&gid)
    }

    /// Splits `keys` into those whose group is vouched for and the others.
    fn split_vouched(&self, keys: &[Bytes]) -> (Vec<Bytes>, Vec<Bytes>) {
        keys.iter().cloned().partition(|key| self.vouches_for(key))
    }

    /// Tells `client` now that `keys` changed: its read's value must not
    /// stay cached (queued now, written after the read's reply).
    fn tell_now(&self, client: u64, keys: &[Bytes]) {
        if let Some(subscriber) = self.subscribers.get(&client) {
            subscriber.queue.push_keys(keys);
        }
    }
}

/// A front end's tracking table (see the module docs).
#[derive(Debug)]
pub struct Tracker {
    state: Mutex<State>,
    /// Woken when the first subscriber comes, an expiry is scheduled, or
    /// the listener is gone.
    wake: Notify,
    /// The listener is gone: the tasks end.
    closed: std::sync::atomic::AtomicBool,
    /// Bounds the TTL lookups in flight.
    lookups: Arc<tokio::sync::Semaphore>,
}

impl Default for Tracker {
    fn default() -> Tracker {
        Tracker {
            state: Mutex::default(),
            wake: Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            lookups: Arc::new(tokio::sync::Semaphore::new(MAX_TTL_LOOKUPS)),
        }
    }
}

impl Tracker {
    /// Turns tracking on (or changes its options) for connection `client`;
    /// its invalidations come through the returned queue. Whether the
    /// feed pollers must be started (the first subscriber ever).
    pub fn subscribe(&self, client: u64, options: TrackingOptions) -> (Arc<PushQueue>, bool) {
        let mut state = self.state.lock().expect("tracker lock");
        let queue = match state.subscribers.get_mut(&client) {
            Some(subscriber) => {
                subscriber.options = options;
                Arc::clone(&subscriber.queue)
            }
            None => {
                let queue = Arc::new(PushQueue::default());
                state.subscribers.insert(
                    client,
                    Subscriber {
                        queue: Arc::clone(&queue),
                        options,
                    },
                );
                queue
            }
        };
        let start = !state.polling;
        state.polling = true;
        drop(state);
        self.wake.notify_waiters();
        (queue, start)
    }

    /// Turns tracking off for `client` (or it left), forgetting the keys
    /// it read (a walk over every remembered key: clients come and go far
    /// less often than they read).
    pub fn unsubscribe(&self, client: u64) {
        let mut state = self.state.lock().expect("tracker lock");
        if state.subscribers.remove(&client).is_none() {
            return;
        }
        if state.subscribers.is_empty() {
            state.keys.clear();
            state.key_bytes = 0;
            state.expiry_by_key.clear();
            state.expiries.clear();
            return;
        }
        let mut forgotten = 0;
        state.keys.retain(|key, clients| {
            clients.remove(&client);
            if clients.is_empty() {
                forgotten += key.len();
            }
            !clients.is_empty()
        });
        state.key_bytes -= forgotten;
    }

    /// The listener (or node) is gone: its tasks end, and so do the
    /// subscribers' waits.
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake.notify_waiters();
        let state = self.state.lock().expect("tracker lock");
        for subscriber in state.subscribers.values() {
            subscriber.queue.ready.notify_one();
        }
    }

    /// Whether the listener (or node) is gone.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether any connection tracks now.
    pub fn has_subscribers(&self) -> bool {
        !self
            .state
            .lock()
            .expect("tracker lock")
            .subscribers
            .is_empty()
    }

    /// Remembers that `client` may cache `keys` (before its read runs);
    /// whether `client` tracks and may cache all of them. A key whose
    /// group's poller does not vouch for its clients (not confirmed yet,
    /// or its window lapsed: the group's leader may answer writes without
    /// waiting for this node) is not remembered but told as changed at
    /// once, so that its value does not stay cached; keys of the other
    /// groups are cached as usual.
    pub fn track(&self, client: u64, keys: &[Bytes]) -> bool {
        let mut state = self.state.lock().expect("tracker lock");
        if !state.subscribers.contains_key(&client) {
            return false;
        }
        let (keys, unvouched) = state.split_vouched(keys);
        if !unvouched.is_empty() {
            state.tell_now(client, &unvouched);
        }
        let state = &mut *state;
        for key in &keys {
            let clients = state.keys.entry(key.clone()).or_default();
            if clients.is_empty() {
                state.key_bytes += key.len();
            }
            clients.insert(client);
        }
        while state.keys.len() > MAX_TRACKED_KEYS || state.key_bytes > MAX_TRACKED_KEY_BYTES {
            let Some((key, clients)) = state.keys.pop_first() else {
                break;
            };
            state.key_bytes -= key.len();
            state.forget_expiry(&key);
            state.tell(&key, &clients, None);
        }
        unvouched.is_empty()
    }

    /// A BCAST client's read of `keys` (not remembered: it is told every
    /// write under its prefixes): a key is told as changed at once unless
    /// its group's poller vouches for its clients (see [`Tracker::track`]).
    pub fn tell_unless_vouched(&self, client: u64, keys: &[Bytes]) {
        let state = self.state.lock().expect("tracker lock");
        let (_, unvouched) = state.split_vouched(keys);
        if !unvouched.is_empty() {
            state.tell_now(client, &unvouched);
        }
    }

    /// The groups of the configuration and the group of each shard (new
    /// groups' pollers start unconfirmed).
    fn set_groups(&self, groups: BTreeSet<u64>, shards: Vec<u64>) {
        let mut state = self.state.lock().expect("tracker lock");
        state.confirmed.retain(|gid| groups.contains(gid));
        state.groups = groups;
        state.shards = shards;
    }

    /// Whether group `gid`'s poller vouches for its clients now.
    fn set_confirmed(&self, gid: u64, confirmed: bool) {
        let mut state = self.state.lock().expect("tracker lock");
        if confirmed {
            state.confirmed.insert(gid);
        } else {
            state.confirmed.remove(&gid);
        }
    }

    /// `client` will not cache `key` after all (its read failed).
    pub fn forget(&self, client: u64, key: &Bytes) {
        let mut state = self.state.lock().expect("tracker lock");
        let Some(clients) = state.keys.get_mut(key) else {
            return;
        };
        clients.remove(&client);
        if clients.is_empty() {
            state.keys.remove(key);
            state.key_bytes -= key.len();
            state.forget_expiry(key);
        }
    }

    /// Whether `client` tracks now.
    pub fn is_subscribed(&self, client: u64) -> bool {
        self.state
            .lock()
            .expect("tracker lock")
            .subscribers
            .contains_key(&client)
    }

    /// `keys` changed (written by connection `writer`, if through this
    /// listener): tell who may hold them.
    pub fn invalidate<'a>(&self, keys: impl IntoIterator<Item = &'a Bytes>, writer: Option<u64>) {
        let mut state = self.state.lock().expect("tracker lock");
        if state.subscribers.is_empty() {
            return;
        }
        let bcast: Vec<u64> = state
            .subscribers
            .iter()
            .filter(|(_, subscriber)| subscriber.options.bcast)
            .map(|(id, _)| *id)
            .collect();
        for key in keys {
            let mut told = match state.keys.remove(key) {
                Some(clients) => {
                    state.key_bytes -= key.len();
                    clients
                }
                None => BTreeSet::new(),
            };
            state.forget_expiry(key);
            told.extend(
                bcast
                    .iter()
                    .copied()
                    .filter(|id| state.subscribers[id].options.covers(key)),
            );
            state.tell(key, &told, writer);
        }
    }

    /// Every tracking connection drops everything it cached.
    pub fn flush_all(&self) {
        let mut state = self.state.lock().expect("tracker lock");
        state.keys.clear();
        state.key_bytes = 0;
        state.expiry_by_key.clear();
        state.expiries.clear();
        for subscriber in state.subscribers.values() {
            subscriber.queue.push_flush();
        }
    }

    /// A cached `key` expires `after` from now: tell its holders then (the
    /// earlier of two deadlines, should lookups finish out of order).
    pub fn expire_after(&self, key: &Bytes, after: Duration) {
        let at = crate::clock::now() + after;
        let mut state = self.state.lock().expect("tracker lock");
        let held = state.keys.contains_key(key)
            || state
                .subscribers
                .values()
                .any(|subscriber| subscriber.options.bcast && subscriber.options.covers(key));
        if !held {
            return;
        }
        if let Some(&old) = state.expiry_by_key.get(key) {
            if old <= at {
                return;
            }
            state.expiries.remove(&(old, key.clone()));
        } else if state.expiry_by_key.len() >= MAX_TRACKED_KEYS {
            // No room to wait: told now (the client reads it again).
            drop(state);
            self.invalidate([key], None);
            return;
        }
        state.expiry_by_key.insert(key.clone(), at);
        state.expiries.insert((at, key.clone()));
        drop(state);
        self.wake.notify_waiters();
    }

    /// Room for `count` TTL lookups, if there is.
    pub fn lookup_permits(&self, count: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let count = u32::try_from(count).ok()?;
        Arc::clone(&self.lookups).try_acquire_many_owned(count).ok()
    }

    /// The earliest scheduled expiry.
    fn next_expiry(&self) -> Option<Instant> {
        let state = self.state.lock().expect("tracker lock");
        state.expiries.first().map(|(at, _)| *at)
    }

    /// Tells the holders of every key whose expiry has come.
    fn expire_due(&self, now: Instant) {
        let mut due = Vec::new();
        {
            let mut state = self.state.lock().expect("tracker lock");
            while let Some((at, _)) = state.expiries.first()
                && *at <= now
            {
                if let Some((_, key)) = state.expiries.pop_first() {
                    state.expiry_by_key.remove(&key);
                    due.push(key);
                }
            }
        }
        self.invalidate(&due, None);
    }
}

trait Covers {
    /// Whether a BCAST subscription with these options is told of `key`.
    fn covers(&self, key: &[u8]) -> bool;
}

impl Covers for TrackingOptions {
    fn covers(&self, key: &[u8]) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|prefix| key.starts_with(prefix))
    }
}

impl State {
    fn forget_expiry(&mut self, key: &Bytes) {
        if let Some(at) = self.expiry_by_key.remove(key) {
            self.expiries.remove(&(at, key.clone()));
        }
    }

    /// Queues `key` for each of `clients` still tracking (not for the
    /// writer itself if it asked for NOLOOP).
    fn tell(&self, key: &Bytes, clients: &BTreeSet<u64>, writer: Option<u64>) {
        for id in clients {
            let Some(subscriber) = self.subscribers.get(id) else {
                continue;
            };
            if writer == Some(*id) && subscriber.options.noloop {
                continue;
            }
            subscriber.queue.push_keys([key]);
        }
    }
}

/// Starts the feed pollers and the expiry timer of `host`'s tracker;
/// they end once the host is gone.
pub fn start<H: TrackingHost>(host: &Arc<H>) {
    labrpc::runtime::spawn(run_groups(Arc::downgrade(host)));
    labrpc::runtime::spawn(run_expiry(Arc::clone(host.tracker())));
}

/// After cacheable reads of `keys` (each found) answered: looks up their
/// TTLs, so that their expiry is told too. Past [`MAX_TTL_LOOKUPS`] in
/// flight the keys are told at once instead (the client reads them again).
pub fn look_up_expiries<H: TrackingHost>(host: &Arc<H>, keys: Vec<Bytes>) {
    if keys.is_empty() {
        return;
    }
    let tracker = host.tracker();
    let Some(permits) = tracker.lookup_permits(keys.len()) else {
        tracker.invalidate(&keys, None);
        return;
    };
    let host = Arc::clone(host);
    labrpc::runtime::spawn(async move {
        let _permits = permits;
        let lookups = keys.into_iter().map(|key| {
            let host = &host;
            async move {
                let ttl = host.read(shardkv::Op::Ttl { key: key.to_vec() }).await;
                (key, ttl)
            }
        });
        for (key, ttl) in join_all(lookups).await {
            match ttl {
                Ok(shardkv::Outcome::Ttl(api::KeyTtl::RemainingMs(ms))) => {
                    host.tracker().expire_after(&key, Duration::from_millis(ms));
                }
                Ok(shardkv::Outcome::Ttl(api::KeyTtl::Persistent)) => {}
                // Expired since the read, or not known: told now (a
                // needless invalidation only costs the client a read).
                _ => host.tracker().invalidate([&key], None),
            }
        }
    });
}

/// The groups of the configuration, shared by the supervisor and its
/// pollers.
type Groups = Arc<Mutex<GroupsPolled>>;

#[derive(Default)]
struct GroupsPolled {
    /// In the configuration read last.
    current: BTreeSet<u64>,
    /// With a poller running.
    polled: BTreeSet<u64>,
}

/// Reads the configuration every [`GROUPS_CHECK`] while anyone tracks and
/// keeps one poller per group. A new configuration number tells every
/// tracking connection to drop everything: shards may have moved to a
/// group whose feed was not followed from before the move.
async fn run_groups<H: TrackingHost>(host: Weak<H>) {
    let groups: Groups = Arc::default();
    let mut config_num = None;
    let mut confirmed_at = crate::clock::now();
    loop {
        {
            let Some(host) = host.upgrade() else {
                return;
            };
            if host.tracker().is_closed() {
                return;
            }
            if host.tracker().has_subscribers() {
                let Some(config) = host.feed_config().await else {
                    // Shards may have moved to a group not followed yet.
                    if crate::clock::now().saturating_duration_since(confirmed_at) > MAX_UNCONFIRMED
                    {
                        tracing::warn!(
                            "no confirmed configuration for {} ms: tracking clients flushed",
                            MAX_UNCONFIRMED.as_millis()
                        );
                        host.tracker().flush_all();
                        confirmed_at = crate::clock::now();
                    }
                    drop(host);
                    tokio::time::sleep(POLL_RETRY).await;
                    continue;
                };
                confirmed_at = crate::clock::now();
                if config_num.is_some_and(|seen| seen != config.num) {
                    host.tracker().flush_all();
                }
                config_num = Some(config.num);
                let mut polled = groups.lock().expect("groups lock");
                polled.current = config.groups.into_iter().collect();
                host.tracker()
                    .set_groups(polled.current.clone(), config.shards);
                let starting: Vec<u64> = polled
                    .current
                    .iter()
                    .copied()
                    .filter(|gid| !polled.polled.contains(gid))
                    .collect();
                for gid in starting {
                    polled.polled.insert(gid);
                    labrpc::runtime::spawn(run_poller(
                        Arc::downgrade(&host),
                        Arc::clone(&groups),
                        gid,
                    ));
                }
            } else {
                config_num = None;
                confirmed_at = crate::clock::now();
                host.tracker().set_groups(BTreeSet::new(), Vec::new());
            }
        }
        tokio::time::sleep(GROUPS_CHECK).await;
    }
}

/// Follows one group's change feed (see the module docs) while the group
/// is in the configuration.
///
/// The write fence (shardkv's `write_fence` module) relies on three things
/// done here: a poll's cursor is sent only after the changes through it
/// were handed to the connections (invalidated before the next poll); the
/// window is counted from when the poll whose answer confirmed the poller
/// was *sent* (no later than it reached the leader, where the lease is
/// counted from); and when the window lapses the clients are flushed by a
/// timer (not when a slow poll finally fails), after which nothing read
/// stays cached until a confirmed answer comes.
async fn run_poller<H: TrackingHost>(host: Weak<H>, groups: Groups, gid: u64) {
    let poller = labrpc::runtime::random_u64();
    let mut cursor: Option<u64> = None;
    // Until when this poller vouches for its clients; `None`: it does not.
    let mut vouched_until: Option<Instant> = None;
    loop {
        let Some(strong) = host.upgrade() else {
            return;
        };
        if strong.tracker().is_closed() {
            return;
        }
        if !groups.lock().expect("groups lock").current.contains(&gid) {
            // Gone from the configuration: what it told last may be
            // behind (its shards left frozen, not written); started again
            // if it returns.
            strong.tracker().flush_all();
            strong.tracker().set_confirmed(gid, false);
            groups.lock().expect("groups lock").polled.remove(&gid);
            return;
        }
        if !strong.tracker().has_subscribers() {
            cursor = None;
            vouched_until = None;
            strong.tracker().set_confirmed(gid, false);
            drop(strong);
            tokio::time::sleep(GROUPS_CHECK).await;
            continue;
        }
        let sent_at = crate::clock::now();
        let poll = strong.watch_changes(gid, poller, cursor.unwrap_or(0), POLL_WAIT);
        let answer = match vouched_until {
            // Biased (the answer first): a fixed polling order, so a run
            // replays from its seed under the simulator.
            Some(until) => tokio::select! {
                biased;
                answer = poll => Some(answer),
                () = tokio::time::sleep_until(until) => None,
            },
            None => Some(poll.await),
        };
        let failed = matches!(answer, Some(None));
        let lapsed = match answer {
            // The window ran out while the poll was under way.
            None => true,
            Some(Some(changes)) => {
                let through = match changes {
                    Changes::Keys { keys, through } if cursor.is_some() => {
                        let keys: Vec<Bytes> = keys.into_iter().map(Bytes::from).collect();
                        strong.tracker().invalidate(&keys, None);
                        through
                    }
                    // The first answer, or changes missed: what clients
                    // cached from this group cannot be vouched for.
                    Changes::Keys { through, .. } | Changes::Reset { through } => {
                        strong.tracker().flush_all();
                        through
                    }
                };
                // Handed on: the next poll may say so.
                cursor = Some(through);
                let until = sent_at + MAX_UNCONFIRMED;
                if crate::clock::now() < until {
                    vouched_until = Some(until);
                    strong.tracker().set_confirmed(gid, true);
                    false
                } else {
                    // An answer slower than the window vouches for nothing.
                    true
                }
            }
            Some(None) => vouched_until.is_some_and(|until| crate::clock::now() >= until),
        };
        if lapsed && vouched_until.is_some() {
            tracing::warn!(
                gid,
                "no confirmed change feed from group {gid} for {} ms: tracking clients flushed",
                MAX_UNCONFIRMED.as_millis()
            );
        }
        if lapsed {
            strong.tracker().set_confirmed(gid, false);
            strong.tracker().flush_all();
            cursor = None;
            vouched_until = None;
        }
        if failed {
            drop(strong);
            let pause = vouched_until.map_or(POLL_RETRY, |until| {
                POLL_RETRY.min(until.saturating_duration_since(crate::clock::now()))
            });
            tokio::time::sleep(pause).await;
        }
    }
}

/// Tells tracked keys' expiries when they come.
async fn run_expiry(tracker: Arc<Tracker>) {
    while !tracker.is_closed() {
        let woken = tracker.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let now = crate::clock::now();
        tracker.expire_due(now);
        let until = tracker
            .next_expiry()
            .unwrap_or(now + GROUPS_CHECK)
            .min(now + GROUPS_CHECK);
        // Biased: a fixed polling order, so a run replays from its seed
        // under the simulator.
        tokio::select! {
            biased;
            () = &mut woken => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<Bytes> {
        names
            .iter()
            .map(|name| Bytes::copy_from_slice(name.as_bytes()))
            .collect()
    }

    fn told(queue: &PushQueue) -> Option<Told> {
        queue.take()
    }

    /// A tracker whose one group (serving every shard) vouches for its
    /// clients.
    fn vouched() -> Tracker {
        let tracker = Tracker::default();
        tracker.set_groups(BTreeSet::from([1]), vec![1; 4]);
        tracker.set_confirmed(1, true);
        tracker
    }

    /// A key of shard `shard` of `shard_count`, named from `prefix`.
    fn key_in_shard(prefix: &str, shard: usize, shard_count: usize) -> Bytes {
        (0..)
            .map(|n| format!("{prefix}{n}"))
            .find(|key| shardkv::key_to_shard(key.as_bytes(), shard_count) == shard)
            .map(Bytes::from)
            .expect("some key falls in every shard")
    }

    #[test]
    fn a_key_whose_group_is_not_vouched_for_is_told_at_once_and_not_remembered() {
        let tracker = Tracker::default();
        let (queue, _) = tracker.subscribe(1, TrackingOptions::default());
        assert!(!tracker.track(1, &keys(&["a"])), "no configuration yet");
        assert_eq!(told(&queue), Some(Told::Keys(keys(&["a"]))));
        // Two groups, one shard each; only group 1's poller vouches.
        tracker.set_groups(BTreeSet::from([1, 2]), vec![1, 2]);
        tracker.set_confirmed(1, true);
        let of_1 = key_in_shard("one", 0, 2);
        let of_2 = key_in_shard("two", 1, 2);
        assert!(tracker.track(1, std::slice::from_ref(&of_1)));
        assert_eq!(told(&queue), None, "group 1 vouches: cached");
        assert!(
            !tracker.track(1, &[of_1.clone(), of_2.clone()]),
            "group 2 is not vouched for"
        );
        assert_eq!(told(&queue), Some(Told::Keys(vec![of_2.clone()])));
        tracker.tell_unless_vouched(1, &[of_1.clone(), of_2.clone()]);
        assert_eq!(told(&queue), Some(Told::Keys(vec![of_2.clone()])));
        // Group 1's key stays remembered: a write to it is told.
        tracker.invalidate([&of_1], None);
        assert_eq!(told(&queue), Some(Told::Keys(vec![of_1.clone()])));
        tracker.set_confirmed(2, true);
        assert!(tracker.track(1, std::slice::from_ref(&of_2)));
        tracker.tell_unless_vouched(1, &[of_1.clone(), of_2.clone()]);
        assert_eq!(told(&queue), None);
        assert_eq!(
            tracker.state.lock().expect("lock").key_bytes,
            of_2.len(),
            "only the key read since its write is remembered"
        );
        // A lapsed window: that group's keys are told at once again.
        tracker.set_confirmed(2, false);
        assert!(!tracker.track(1, std::slice::from_ref(&of_2)));
        assert_eq!(told(&queue), Some(Told::Keys(vec![of_2])));
        // A group not in the configuration vouches for nothing.
        tracker.set_groups(BTreeSet::from([1]), vec![2, 2]);
        assert!(!tracker.track(1, std::slice::from_ref(&of_1)));
    }

    #[test]
    fn a_write_is_told_to_whoever_read_the_key() {
        let tracker = vouched();
        let (first, _) = tracker.subscribe(1, TrackingOptions::default());
        let (second, _) = tracker.subscribe(2, TrackingOptions::default());
        assert!(tracker.track(1, &keys(&["a", "b"])));
        assert!(tracker.track(2, &keys(&["b"])));
        assert!(!tracker.track(3, &keys(&["a"])), "3 does not track");
        tracker.invalidate(&keys(&["b"]), None);
        assert_eq!(told(&first), Some(Told::Keys(keys(&["b"]))));
        assert_eq!(told(&second), Some(Told::Keys(keys(&["b"]))));
        // Told once: b is forgotten until read again.
        tracker.invalidate(&keys(&["b"]), None);
        assert_eq!(told(&first), None);
    }

    #[test]
    fn a_client_that_leaves_is_forgotten() {
        let tracker = vouched();
        let (_stays, _) = tracker.subscribe(1, TrackingOptions::default());
        let _ = tracker.subscribe(2, TrackingOptions::default());
        tracker.track(1, &keys(&["shared"]));
        tracker.track(2, &keys(&["shared", "only-2"]));
        tracker.unsubscribe(2);
        let state = tracker.state.lock().expect("lock");
        assert_eq!(state.keys.len(), 1);
        assert_eq!(state.keys[&Bytes::from_static(b"shared")].len(), 1);
        assert_eq!(state.key_bytes, "shared".len());
        drop(state);
        tracker.unsubscribe(1);
        let state = tracker.state.lock().expect("lock");
        assert!(state.keys.is_empty());
        assert_eq!(state.key_bytes, 0);
    }

    #[test]
    fn a_failed_read_is_forgotten() {
        let tracker = vouched();
        let (queue, _) = tracker.subscribe(1, TrackingOptions::default());
        let key = Bytes::from_static(b"k");
        tracker.track(1, std::slice::from_ref(&key));
        tracker.forget(1, &key);
        assert_eq!(tracker.state.lock().expect("lock").key_bytes, 0);
        tracker.invalidate([&key], None);
        assert_eq!(told(&queue), None);
    }

    #[test]
    fn past_the_byte_bound_the_first_keys_are_told_and_forgotten() {
        let tracker = vouched();
        let (queue, _) = tracker.subscribe(1, TrackingOptions::default());
        let big = |name: u8| Bytes::from(vec![name; MAX_TRACKED_KEY_BYTES / 4]);
        let all: Vec<Bytes> = (b'a'..=b'e').map(big).collect();
        for key in &all {
            tracker.track(1, std::slice::from_ref(key));
        }
        assert!(tracker.state.lock().expect("lock").key_bytes <= MAX_TRACKED_KEY_BYTES);
        assert_eq!(told(&queue), Some(Told::Keys(vec![all[0].clone()])));
    }

    #[test]
    fn a_flush_tells_everyone_and_forgets_everything() {
        let tracker = vouched();
        let (queue, _) = tracker.subscribe(1, TrackingOptions::default());
        tracker.track(1, &keys(&["a"]));
        tracker.flush_all();
        assert_eq!(told(&queue), Some(Told::Flush));
        assert_eq!(tracker.state.lock().expect("lock").key_bytes, 0);
    }
}
