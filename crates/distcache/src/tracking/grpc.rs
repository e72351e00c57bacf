//! Client-side caching over gRPC: the `Cache.Track` stream and tracked
//! `Get`s, on the node's tracker for the gRPC front end.
//!
//! ```text
//!  near cache (distcache-client)            this node
//!    Track ───────────────────────────────► subscribe: a random tracking id
//!          ◄─────────── tracking_id, then Invalidated / Flush / Heartbeat
//!    Get{key, tracking_id} ───────────────► remember key for id (before the
//!          ◄─────────── value, tracked         read runs), read, look up TTL
//!  writes through this node's Cache ──────► invalidate at once (before the
//!                                            writer's reply)
//!  writes elsewhere ──── feed pollers ────► invalidate (see the module above)
//! ```
//!
//! Ids are random 64-bit numbers, so a `Get` that names a stream of a
//! node's earlier life (the node restarted, the caller has not noticed
//! yet) answers `tracked = false` rather than tracking the key for a
//! stranger; the caller then must not cache the value. A stream tracks
//! keys only for `Get`s of the user who opened it.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use distcache_client::proto::{self, track_event};
use futures::Stream;
use resp::command::TrackingOptions;
use tonic::Status;

use super::{PushQueue, Told, Tracker, TrackingHost};
use crate::forward::{ForwardError, Forwarder};
use crate::resp::Backend;

/// A `Heartbeat` is sent after this long without news.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// The stream `Cache.Track` answers with.
pub type TrackStream = Pin<Box<dyn Stream<Item = Result<proto::TrackEvent, Status>> + Send>>;

/// The gRPC front end's tracker and its way to the groups.
pub struct GrpcTracking {
    forwarder: Arc<Forwarder>,
    tracker: Arc<Tracker>,
    /// The user who opened each open stream: only they may track keys
    /// for it.
    owners: Arc<Mutex<BTreeMap<u64, String>>>,
}

impl GrpcTracking {
    pub fn new(forwarder: Arc<Forwarder>) -> Arc<GrpcTracking> {
        Arc::new(GrpcTracking {
            forwarder,
            tracker: Arc::default(),
            owners: Arc::default(),
        })
    }

    /// Opens a tracking stream for `user`: its first event is its id; it
    /// is unsubscribed when the stream is dropped (the caller went away).
    /// `None` once the node stops.
    pub fn open(self: &Arc<Self>, user: &str) -> Option<TrackStream> {
        if self.tracker.is_closed() {
            return None;
        }
        let id = {
            let mut owners = self.owners.lock().expect("owners lock");
            let id = loop {
                // 0 means "not tracked" in a GetRequest; an id in use is
                // drawn again.
                let id = labrpc::runtime::random_u64();
                if id != 0 && !owners.contains_key(&id) && !self.tracker.is_subscribed(id) {
                    break id;
                }
            };
            owners.insert(id, user.to_string());
            id
        };
        let (queue, first) = self.tracker.subscribe(id, TrackingOptions::default());
        if first {
            super::start(self);
        }
        let subscription = Subscription {
            tracker: Arc::clone(&self.tracker),
            owners: Arc::clone(&self.owners),
            queue,
            id,
        };
        let first = event(track_event::Event::TrackingId(id));
        Some(Box::pin(futures::stream::unfold(
            (subscription, Some(first)),
            |(subscription, first)| async move {
                if let Some(first) = first {
                    return Some((Ok(first), (subscription, None)));
                }
                let told = subscription.next().await?;
                Some((Ok(told), (subscription, None)))
            },
        )))
    }

    /// Remembers `key` for stream `tracking_id` before its read runs;
    /// whether that stream is open here and `user`'s.
    pub fn track(&self, tracking_id: u64, user: &str, key: &Bytes) -> bool {
        let owned = self
            .owners
            .lock()
            .expect("owners lock")
            .get(&tracking_id)
            .is_some_and(|owner| owner == user);
        owned && self.tracker.track(tracking_id, std::slice::from_ref(key))
    }

    /// A tracked read of `key` failed: nothing to remember.
    pub fn read_failed(&self, tracking_id: u64, key: &Bytes) {
        self.tracker.forget(tracking_id, key);
    }

    /// A tracked read of `key` found it with `ttl` left: its expiry is to
    /// be told too (at once if it had none left by the answer's time).
    pub fn found_with_ttl(&self, key: &Bytes, ttl: api::KeyTtl) {
        match ttl {
            api::KeyTtl::RemainingMs(ms) => self
                .tracker
                .expire_after(key, std::time::Duration::from_millis(ms)),
            api::KeyTtl::Persistent => {}
            api::KeyTtl::Missing => self.tracker.invalidate([key], None),
        }
    }

    /// Whether any stream is open (writes are told only then).
    pub fn has_subscribers(&self) -> bool {
        self.tracker.has_subscribers()
    }

    /// `keys` were written through this node (answered or not: a write
    /// that timed out may still apply).
    pub fn written(&self, keys: &[Vec<u8>]) {
        let keys: Vec<Bytes> = keys.iter().map(|key| Bytes::copy_from_slice(key)).collect();
        self.tracker.invalidate(&keys, None);
    }

    /// The node is stopping: every stream ends and the feed pollers stop.
    pub fn close(&self) {
        self.tracker.close();
    }
}

impl Drop for GrpcTracking {
    fn drop(&mut self) {
        self.tracker.close();
    }
}

impl TrackingHost for GrpcTracking {
    fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }

    // The RESP front end's backend is the same forwarder: one way to the
    // feeds for both.
    fn feed_config(&self) -> impl Future<Output = Option<super::FeedConfig>> + Send {
        Backend::feed_config(&self.forwarder)
    }

    fn watch_changes(
        &self,
        gid: u64,
        poller: u64,
        after: u64,
        wait: Duration,
    ) -> impl Future<Output = Option<shardkv::Changes>> + Send {
        Backend::watch_changes(&self.forwarder, gid, poller, after, wait)
    }

    fn read(
        &self,
        op: shardkv::Op,
    ) -> impl Future<Output = Result<shardkv::Outcome, ForwardError>> + Send {
        crate::metrics::FRONTEND.scope("grpc", Forwarder::run(&self.forwarder, op, None))
    }
}

/// One open stream's subscription; unsubscribed when dropped.
struct Subscription {
    tracker: Arc<Tracker>,
    owners: Arc<Mutex<BTreeMap<u64, String>>>,
    queue: Arc<PushQueue>,
    id: u64,
}

impl Subscription {
    /// The next event: what was told, or a heartbeat after
    /// [`HEARTBEAT_EVERY`] of silence; `None` once the node stops.
    async fn next(&self) -> Option<proto::TrackEvent> {
        loop {
            if self.tracker.is_closed() {
                return None;
            }
            if let Some(told) = self.queue.take() {
                return Some(event(match told {
                    Told::Keys(keys) => track_event::Event::Invalidated(proto::Invalidated {
                        keys: keys.into_iter().map(|key| key.to_vec()).collect(),
                    }),
                    Told::Flush => track_event::Event::Flush(proto::Flush {}),
                }));
            }
            if tokio::time::timeout(HEARTBEAT_EVERY, self.queue.ready())
                .await
                .is_err()
            {
                return Some(event(track_event::Event::Heartbeat(proto::Heartbeat {})));
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.tracker.unsubscribe(self.id);
        self.owners.lock().expect("owners lock").remove(&self.id);
    }
}

fn event(event: track_event::Event) -> proto::TrackEvent {
    proto::TrackEvent { event: Some(event) }
}
