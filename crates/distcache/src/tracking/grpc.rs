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
//! stranger; the caller then must not cache the value.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use distcache_client::proto::{self, track_event};
use futures::Stream;
use resp::command::TrackingOptions;
use tonic::Status;

use super::{PushQueue, Told, Tracker, TrackingHost};
use crate::forward::{ForwardError, Forwarder};

/// A `Heartbeat` is sent after this long without news.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// The stream `Cache.Track` answers with.
pub type TrackStream = Pin<Box<dyn Stream<Item = Result<proto::TrackEvent, Status>> + Send>>;

/// The gRPC front end's tracker and its way to the groups.
pub struct GrpcTracking {
    forwarder: Arc<Forwarder>,
    tracker: Arc<Tracker>,
}

impl GrpcTracking {
    pub fn new(forwarder: Arc<Forwarder>) -> Arc<GrpcTracking> {
        Arc::new(GrpcTracking {
            forwarder,
            tracker: Arc::default(),
        })
    }

    /// Opens a tracking stream: its first event is its id; it is
    /// unsubscribed when the stream is dropped (the caller went away).
    pub fn open(self: &Arc<Self>) -> TrackStream {
        let id = loop {
            // 0 means "not tracked" in a GetRequest.
            let id = labrpc::runtime::random_u64();
            if id != 0 {
                break id;
            }
        };
        let (queue, first) = self.tracker.subscribe(id, TrackingOptions::default());
        if first {
            super::start(self);
        }
        let subscription = Subscription {
            tracker: Arc::clone(&self.tracker),
            queue,
            id,
        };
        let first = event(track_event::Event::TrackingId(id));
        Box::pin(futures::stream::unfold(
            (subscription, Some(first)),
            |(subscription, first)| async move {
                if let Some(first) = first {
                    return Some((Ok(first), (subscription, None)));
                }
                let told = subscription.next().await?;
                Some((Ok(told), (subscription, None)))
            },
        ))
    }

    /// Remembers `key` for stream `tracking_id` before its read runs;
    /// whether that stream is open here.
    pub fn track(&self, tracking_id: u64, key: &[u8]) -> bool {
        self.tracker
            .track(tracking_id, &[bytes::Bytes::copy_from_slice(key)])
    }

    /// A tracked read of `key` found it: its expiry is to be told too.
    pub fn found(self: &Arc<Self>, key: &[u8]) {
        super::look_up_expiries(self, vec![bytes::Bytes::copy_from_slice(key)]);
    }

    /// `keys` were written through this node (answered or not: a write
    /// that timed out may still apply).
    pub fn written(&self, keys: &[Vec<u8>]) {
        if self.tracker.has_subscribers() {
            let keys: Vec<bytes::Bytes> = keys
                .iter()
                .map(|key| bytes::Bytes::copy_from_slice(key))
                .collect();
            self.tracker.invalidate(&keys, None);
        }
    }
}

impl GrpcTracking {
    /// The node is stopping: every stream ends (within a heartbeat
    /// period) and the feed pollers stop.
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

    async fn feed_config(&self) -> (u64, Vec<u64>) {
        self.forwarder.refresh().await;
        let routing = self.forwarder.routing();
        (routing.num, routing.groups.keys().copied().collect())
    }

    async fn watch_changes(
        &self,
        gid: u64,
        after: u64,
        wait: Duration,
    ) -> Option<shardkv::Changes> {
        self.forwarder.watch_changes(gid, after, wait).await
    }

    async fn read(&self, op: shardkv::Op) -> Result<shardkv::Outcome, ForwardError> {
        self.forwarder.run(op, None).await
    }
}

/// One open stream's subscription; unsubscribed when dropped.
struct Subscription {
    tracker: Arc<Tracker>,
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
    }
}

fn event(event: track_event::Event) -> proto::TrackEvent {
    proto::TrackEvent { event: Some(event) }
}
