//! Many calls on one long-lived gRPC stream per peer (`LabRpc.Stream`).
//!
//! A unary gRPC call is an HTTP/2 stream of its own: request headers,
//! response headers and trailers, a task on the server, a service call
//! through tonic's and hyper's layers. Raft sends a message to each peer
//! every round, so those costs were paid per AppendEntries and per reply.
//! Calls of a method that opts in ([`crate::Rpc::STREAMED`]) travel
//! instead as frames of one bidirectional stream per peer connection and
//! method (so that one method's slow handlers never hold another's),
//! each frame tagged with an id that its reply carries back: one DATA
//! frame each way per call.
//!
//! - **Order and concurrency.** The caller's frames go out in the order
//!   the calls were made; the server starts each handler as its frame
//!   arrives and runs them concurrently (on the stream's task), so a slow
//!   handler does not hold the replies behind it.
//! - **Bounds.** The caller side is bounded by the client's in-flight
//!   slots per peer (the outgoing queue has that many places); the server
//!   holds at most [`MAX_RUNNING_PER_STREAM`] handlers running and replies
//!   unsent per stream and stops reading the stream while it is full
//!   (HTTP/2 flow control then holds the sender back). A payload over [`MAX_STREAMED_PAYLOAD_BYTES`] goes
//!   as a call of its own, so that a large message (a snapshot) never
//!   holds the small ones behind it.
//! - **Failure.** If the stream breaks or cannot be opened, every call
//!   waiting on it fails as unreachable; the client then drops the
//!   connection, and the next call opens a new one (as after a failed
//!   unary call).
//! - **No cancellation.** A caller that gives up (its deadline) forgets
//!   its id; the server still runs the handler and its reply is dropped
//!   on arrival. Only methods whose handlers end promptly opt in.
//! - **Shutdown.** A server shutting down ends its streams (the handlers
//!   still running are dropped, their callers fail as unreachable), since
//!   a graceful shutdown waits for every open stream to end and the caller
//!   never ends one on its own.
//! - **Older peers.** A peer of a version without streams answers the
//!   stream's opening with `Unimplemented`; the connection then sends
//!   every call alone (nothing was sent on the stream, so nothing runs
//!   twice).
//! - **Admission.** The server admits a stream once, at its start, with
//!   the same checks as a unary call (cluster and node headers, the TLS
//!   certificate); every call on it runs as that caller.
//!
//! Production only: the simulated wire has one connection per call, and a
//! streamed method's calls there go as plain calls.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot, watch};
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};

use super::grpc::Claim;
use super::grpc::proto::lab_rpc_client::LabRpcClient;
use super::grpc::proto::{StreamCall, StreamReply};
use crate::client::lock;
use crate::server::Dispatcher;
use crate::trace::TraceContext;

/// How long a call whose stream let go of its queue waits for the
/// stream's task to say why (it does so as it ends, at once).
const CLOSE_REASON_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Largest payload sent on a stream; larger ones go as calls of their own.
pub(crate) const MAX_STREAMED_PAYLOAD_BYTES: usize = 256 * 1024;

/// Handlers a server runs at once for one stream, together with replies
/// the caller has not yet taken; past it the server stops reading the
/// stream until one is sent. The same as a client's default in-flight
/// bound per peer, so an honest caller that reads its replies never waits
/// on it.
pub(crate) const MAX_RUNNING_PER_STREAM: usize = crate::client::DEFAULT_MAX_IN_FLIGHT_PER_PEER;

type Answer = Result<Bytes, Status>;

/// The calls waiting for a reply, by id, or why none will come.
#[derive(Default)]
struct Waiting {
    state: Mutex<WaitingState>,
}

#[derive(Default)]
struct WaitingState {
    /// Set once the stream is gone; no call is registered after it.
    closed: Option<Status>,
    replies: HashMap<u64, oneshot::Sender<Answer>>,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, WaitingState> {
        // Each critical section is one map operation: never half done.
        lock(&self.state)
    }

    fn register(&self, id: u64) -> Result<oneshot::Receiver<Answer>, Status> {
        let mut state = self.lock();
        if let Some(status) = &state.closed {
            return Err(status.clone());
        }
        let (sender, receiver) = oneshot::channel();
        state.replies.insert(id, sender);
        Ok(receiver)
    }

    fn is_waiting(&self, id: u64) -> bool {
        self.lock().replies.contains_key(&id)
    }

    fn forget(&self, id: u64) {
        self.lock().replies.remove(&id);
    }

    /// Hands a reply to its caller. The id comes from the peer: one that
    /// no call waits for (given up, or never sent) is dropped.
    fn answer(&self, reply: StreamReply) {
        let Some(sender) = self.lock().replies.remove(&reply.id) else {
            return;
        };
        let answer = if reply.code == Code::Ok as i32 {
            Ok(reply.payload)
        } else {
            Err(Status::new(Code::from_i32(reply.code), reply.message))
        };
        let _ = sender.send(answer);
    }

    /// Fails every waiting call and every later one with `status`.
    fn close(&self, status: Status) {
        let replies = {
            let mut state = self.lock();
            state.closed.get_or_insert(status.clone());
            std::mem::take(&mut state.replies)
        };
        for sender in replies.into_values() {
            let _ = sender.send(Err(status.clone()));
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }
}

/// Forgets a call's id if the call is dropped before its reply came.
struct Registration<'a> {
    waiting: &'a Waiting,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.waiting.forget(self.id);
    }
}

/// The caller's end of one stream. Dropping it ends the stream: the
/// outgoing queue closes and the task reading replies stops.
pub(crate) struct CallStream {
    outgoing: mpsc::Sender<StreamCall>,
    waiting: Arc<Waiting>,
    next_id: AtomicU64,
    /// Dropped with the stream; tells the reading task to stop.
    _stop: oneshot::Sender<()>,
}

impl CallStream {
    /// Opens a stream on `client`'s channel, on a task of its own; calls
    /// made meanwhile queue (at most `capacity`) until it is open.
    pub(crate) fn open(
        client: LabRpcClient<Channel>,
        identity: Option<Claim>,
        capacity: usize,
    ) -> CallStream {
        let (outgoing, queued) = mpsc::channel::<StreamCall>(capacity.max(1));
        let (stop, stopped) = oneshot::channel::<()>();
        let waiting = Arc::new(Waiting::default());
        tokio::spawn(read_replies(
            client,
            identity,
            queued,
            Arc::clone(&waiting),
            stopped,
        ));
        CallStream {
            outgoing,
            waiting,
            next_id: AtomicU64::new(0),
            _stop: stop,
        }
    }

    /// True if the peer turned out to serve no call streams (a version
    /// from before them): send its calls alone.
    pub(crate) fn unsupported(&self) -> bool {
        self.waiting
            .lock()
            .closed
            .as_ref()
            .is_some_and(|status| status.code() == Code::Unimplemented)
    }

    /// True once the stream broke (or never opened): open another.
    pub(crate) fn is_closed(&self) -> bool {
        self.waiting.is_closed() || self.outgoing.is_closed()
    }

    /// Sends one call and waits for its reply.
    pub(crate) async fn call(
        &self,
        method: &'static str,
        payload: Bytes,
        trace: Option<TraceContext>,
    ) -> Answer {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let reply = self.waiting.register(id)?;
        let _registration = Registration {
            waiting: &self.waiting,
            id,
        };
        let call = StreamCall {
            id,
            method: method.to_string(),
            payload,
            traceparent: trace
                .map(|context| context.to_traceparent())
                .unwrap_or_default(),
        };
        if self.outgoing.send(call).await.is_err() {
            // The stream's task let go of its queue: it is ending, and it
            // ends by closing `waiting` with the reason, which fails this
            // registered call with it. Wait for that reason: returned at
            // once, "closed" would hide a peer without streams (the
            // caller then sends alone) behind a broken stream.
            return match tokio::time::timeout(CLOSE_REASON_WAIT, reply).await {
                Ok(Ok(answer)) => answer,
                _ => Err(Status::unavailable(
                    "the call stream to this peer has closed",
                )),
            };
        }
        reply.await.unwrap_or_else(|_| {
            Err(Status::unavailable(
                "the call stream to this peer has closed",
            ))
        })
    }
}

/// Opens the stream and hands each reply to its caller, until the stream
/// ends, breaks, or its [`CallStream`] is dropped.
async fn read_replies(
    mut client: LabRpcClient<Channel>,
    identity: Option<Claim>,
    queued: mpsc::Receiver<StreamCall>,
    waiting: Arc<Waiting>,
    mut stopped: oneshot::Receiver<()>,
) {
    // A call whose caller gave up while it was queued is not sent: the
    // peer would run it for no one.
    let still_waiting = Arc::clone(&waiting);
    let calls = futures::stream::unfold(queued, |mut queued| async move {
        queued.recv().await.map(|call| (call, queued))
    })
    .filter(move |call| std::future::ready(still_waiting.is_waiting(call.id)));
    let mut request = Request::new(calls);
    if let Some(claim) = &identity {
        claim.stamp(&mut request);
    }
    let opened = tokio::select! {
        opened = client.stream(request) => opened,
        _ = &mut stopped => return waiting.close(Status::cancelled("the call stream was dropped")),
    };
    let mut replies = match opened {
        Ok(response) => response.into_inner(),
        // A peer of a version without call streams: its calls go alone.
        Err(status) if status.code() == Code::Unimplemented => {
            return waiting.close(Status::unimplemented(NO_STREAMS));
        }
        // Refused (not a member, say): as a call would be.
        Err(status) if status.code() == Code::PermissionDenied => return waiting.close(status),
        Err(status) => return waiting.close(stream_lost(&status)),
    };
    loop {
        let next = tokio::select! {
            next = replies.message() => next,
            _ = &mut stopped => return waiting.close(Status::cancelled("the call stream was dropped")),
        };
        match next {
            Ok(Some(reply)) => waiting.answer(reply),
            Ok(None) => {
                return waiting.close(Status::unavailable("the peer ended the call stream"));
            }
            Err(status) => return waiting.close(stream_lost(&status)),
        }
    }
}

/// Why every call on a stream failed, when the stream itself did: the
/// peer is unreachable as far as those calls know, whatever code the
/// stream's own failure had (an undecodable frame is not each call's
/// `TooLarge`).
fn stream_lost(status: &Status) -> Status {
    Status::unavailable(format!(
        "the call stream to this peer failed: {}",
        status.message()
    ))
}

/// The message of the status that says a peer has no call streams.
pub(crate) const NO_STREAMS: &str = "the peer serves no call streams";

/// The server's end of one stream: runs each call's handler as its frame
/// arrives and sends the replies back, in the order they finish. Returns
/// the replies as the response stream; the work runs on a task of its own,
/// which ends when the caller has ended its side and every reply is sent,
/// when either direction breaks, or when `closing` turns true (the server
/// is shutting down).
pub(crate) fn serve_stream(
    dispatcher: Arc<Dispatcher>,
    caller: Option<u64>,
    calls: Streaming<StreamCall>,
    closing: watch::Receiver<bool>,
) -> impl futures::Stream<Item = Result<StreamReply, Status>> + Send + 'static {
    let (replies, outgoing) = mpsc::channel::<Result<StreamReply, Status>>(MAX_RUNNING_PER_STREAM);
    tokio::spawn(run_calls(dispatcher, caller, calls, replies, closing));
    futures::stream::unfold(outgoing, |mut outgoing| async move {
        outgoing.recv().await.map(|reply| (reply, outgoing))
    })
}

async fn run_calls(
    dispatcher: Arc<Dispatcher>,
    caller: Option<u64>,
    mut calls: Streaming<StreamCall>,
    replies: mpsc::Sender<Result<StreamReply, Status>>,
    mut closing: watch::Receiver<bool>,
) {
    let mut running = FuturesUnordered::new();
    // Replies finished but not yet taken by the response stream. Handlers
    // running and replies waiting are bounded together, so neither grows
    // while the caller does not read.
    let mut unsent: VecDeque<StreamReply> = VecDeque::new();
    let mut reading = true;
    loop {
        if !reading && running.is_empty() && unsent.is_empty() {
            return; // the caller ended its side and has every reply
        }
        let room = running.len() + unsent.len() < MAX_RUNNING_PER_STREAM;
        tokio::select! {
            biased;
            // Shutting down (or the server gone): end the stream now.
            () = shutting_down(&mut closing) => return,
            // The caller is gone: no one is left to answer.
            () = replies.closed() => return,
            permit = replies.reserve(), if !unsent.is_empty() => {
                let Ok(permit) = permit else { return };
                if let Some(reply) = unsent.pop_front() {
                    permit.send(Ok(reply));
                }
            }
            Some(reply) = running.next(), if !running.is_empty() => unsent.push_back(reply),
            call = calls.message(), if reading && room => {
                match call {
                    Ok(Some(call)) => running.push(run_call(Arc::clone(&dispatcher), caller, call)),
                    Ok(None) => reading = false,
                    // The connection broke: no one is left to answer.
                    Err(_status) => return,
                }
            }
        }
    }
}

/// Resolves once `closing` is true or its sender is gone.
async fn shutting_down(closing: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not held across the caller's awaits.
    let _ = closing.wait_for(|closing| *closing).await;
}

async fn run_call(
    dispatcher: Arc<Dispatcher>,
    caller: Option<u64>,
    call: StreamCall,
) -> StreamReply {
    let StreamCall {
        id,
        method,
        payload,
        traceparent,
    } = call;
    // A malformed trace context is ignored, as on a unary call.
    let trace = TraceContext::parse_traceparent(&traceparent);
    match dispatcher.dispatch(&method, payload, trace, caller).await {
        Ok(reply) => StreamReply {
            id,
            payload: reply.into(),
            code: Code::Ok as i32,
            message: String::new(),
        },
        Err(status) => StreamReply {
            id,
            payload: Bytes::new(),
            code: status.code() as i32,
            message: status.message().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that finds the stream's queue already gone (the stream's
    /// task is ending: tonic dropped the request stream before the task
    /// saw the peer's `Unimplemented`) answers with the reason the task
    /// closes with, not a bare "closed": the caller must learn that the
    /// peer has no streams, to send alone (the gate once failed
    /// `a_peer_without_call_streams_gets_every_call_alone` this way).
    #[tokio::test]
    async fn a_call_after_the_queue_closed_gets_the_reason_the_stream_ends_with() {
        let (outgoing, queued) = mpsc::channel::<StreamCall>(1);
        drop(queued);
        let (stop, _stopped) = oneshot::channel::<()>();
        let stream = CallStream {
            outgoing,
            waiting: Arc::new(Waiting::default()),
            next_id: AtomicU64::new(0),
            _stop: stop,
        };
        let waiting = Arc::clone(&stream.waiting);
        let closing = tokio::spawn(async move {
            tokio::task::yield_now().await;
            waiting.close(Status::unimplemented(NO_STREAMS));
        });
        let answer = stream.call("test.Method", Bytes::new(), None).await;
        closing.await.expect("closing task");
        let status = answer.expect_err("no reply can come");
        assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
        assert!(stream.unsupported());
    }
}
