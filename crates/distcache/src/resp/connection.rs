//! One client connection: read, decode, answer in order, write.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ::resp::command::Parsed;
use ::resp::{Action, Decoder, Frame, Session, Version, encode};
use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use labrpc::runtime::watch;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Shared;
use super::execute::{Backend, execute};
use crate::forward::{READ_FROM, ReadFrom};
use crate::tracking::{self, PushQueue, Told};

/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Most commands run concurrently in one wave. Replies are written out
/// after each wave, so the replies a connection holds at once are bounded
/// by this many times the largest reply, however long the pipeline.
const MAX_WAVE_COMMANDS: usize = 128;
/// Encoded replies are written out once this many bytes wait.
const FLUSH_BYTES: usize = 64 * 1024;
/// While a blocking command waits, the socket is still read (to see the
/// client leave); reading stops once this much input waits unparsed.
const MAX_INPUT_WHILE_BLOCKED_BYTES: usize = 4 * READ_CHUNK_BYTES;

/// Tells a client over the limit why it is closed, as Redis does.
pub(super) async fn refuse<S: AsyncWrite + Unpin>(mut stream: S) {
    // The client is being turned away; a failed write changes nothing.
    let _ = stream
        .write_all(b"-ERR max number of clients reached\r\n")
        .await;
    let _ = stream.shutdown().await;
}

/// A reply slot of one turn: answered already, or waiting for execution.
enum Slot {
    Ready(Frame, Version),
    Pending(usize, Version),
}

/// Serves one connection until the client leaves, idles out, breaks the
/// protocol, sends `QUIT`, or the listener stops.
pub(super) async fn serve<B: Backend, S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    id: u64,
    shared: Arc<Shared<B>>,
    mut stopped: watch::Receiver<bool>,
) {
    shared
        .stats
        .connections_received
        .fetch_add(1, Ordering::Relaxed);
    shared
        .stats
        .connected_clients
        .fetch_add(1, Ordering::Relaxed);
    let mut session = Session::for_acl(id, peer.to_string(), &shared.facts.acl);
    let mut decoder = Decoder::requests(shared.config.limits);
    let mut input = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut replies = Replies {
        stream: &mut stream,
        buffer: Vec::new(),
        write_timeout: shared.config.write_timeout,
    };
    let mut tracking = Tracking::default();
    'connection: loop {
        // Decode what is buffered; read only when nothing whole is left.
        let mut requests = Vec::new();
        let mut protocol_error = None;
        while requests.len() < shared.config.max_pipeline {
            match decoder.decode(&mut input) {
                Ok(Some(frame)) => requests.push(frame),
                Ok(None) => break,
                // A request with an argument over the value limit: read
                // whole and dropped by the decoder, so only it is refused
                // (its error reply takes its place in order) and the
                // connection goes on. Nothing ran, nothing changed.
                Err(error) if error.is_recoverable() => {
                    requests.push(Frame::error(&format!("ERR {error}")));
                }
                Err(error) => {
                    protocol_error = Some(error);
                    break;
                }
            }
        }
        if requests.is_empty() && protocol_error.is_none() {
            input.reserve(READ_CHUNK_BYTES);
            let read = replies.stream.read_buf(&mut input);
            let queue = tracking.queue.clone();
            let outcome = tokio::select! {
                biased;
                outcome = async {
                    match shared.config.idle_timeout {
                        Some(limit) => tokio::time::timeout(limit, read).await.ok(),
                        None => Some(read.await),
                    }
                } => outcome,
                _ = stopped.changed() => break 'connection,
                // Idle and told of a change: say it now.
                () = async {
                    match &queue {
                        Some(queue) => queue.ready().await,
                        None => std::future::pending().await,
                    }
                } => {
                    tracking.drain(&mut replies);
                    if replies.flush().await.is_err() {
                        break 'connection;
                    }
                    continue;
                }
            };
            match outcome {
                Some(Ok(0)) | Some(Err(_)) | None => break 'connection,
                Some(Ok(_)) => continue,
            }
        }
        let answered = answer(
            &mut session,
            requests,
            &shared,
            &mut replies,
            &mut input,
            &mut tracking,
        )
        .await;
        let written = match (answered, &protocol_error) {
            (Ok(close), Some(error)) => {
                replies.push(&Frame::error(&format!("ERR {error}")), session.version());
                replies.flush().await.map(|()| close)
            }
            (Ok(close), None) => replies.flush().await.map(|()| close),
            (Err(stalled), _) => Err(stalled),
        };
        match written {
            Ok(close) if !close && protocol_error.is_none() => {}
            Ok(_) => break,
            Err(WriteError::Stalled) => {
                shared
                    .stats
                    .output_buffer_limit_disconnections
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    client = id,
                    %peer,
                    "RESP client closed: it read none of its replies for {} ms (write_timeout)",
                    shared.config.write_timeout.map_or(0, |limit| limit.as_millis())
                );
                break;
            }
            Err(WriteError::Closed) => break,
        }
    }
    if tracking.queue.is_some() {
        shared.tracker.unsubscribe(id);
    }
    shared
        .stats
        .connected_clients
        .fetch_sub(1, Ordering::Relaxed);
}

/// A connection's client-side caching (`tracking.rs`).
#[derive(Default)]
struct Tracking {
    /// Its invalidations, while tracking is on.
    queue: Option<Arc<PushQueue>>,
    /// The options it was subscribed with.
    options: Option<::resp::command::TrackingOptions>,
}

impl Tracking {
    /// Follows the session's `CLIENT TRACKING` state.
    fn sync<B: Backend>(&mut self, session: &Session, shared: &Arc<Shared<B>>) {
        if session.tracking() == self.options.as_ref() {
            return;
        }
        self.options = session.tracking().cloned();
        match &self.options {
            Some(options) => {
                let (queue, first) = shared.tracker.subscribe(session.id(), options.clone());
                if first {
                    tracking::start(shared);
                }
                self.queue = Some(queue);
            }
            None => {
                shared.tracker.unsubscribe(session.id());
                self.queue = None;
            }
        }
    }

    /// Writes what the connection was told so far (after the replies
    /// already buffered: a read's value comes before news of its change).
    fn drain<S>(&self, replies: &mut Replies<'_, S>) {
        if let Some(told) = self.queue.as_ref().and_then(|queue| queue.take()) {
            // RESP3 `invalidate`: the keys, or null for "everything".
            let keys = match told {
                Told::Keys(keys) => Frame::Array(keys.into_iter().map(Frame::BulkString).collect()),
                Told::Flush => Frame::Null,
            };
            let frame = Frame::Push(vec![Frame::bulk("invalidate"), keys]);
            encode(&frame, Version::Resp3, &mut replies.buffer);
        }
    }
}

/// What a wave's command means for client-side caching.
struct Cached {
    keys: Vec<Bytes>,
    /// A write: tell who holds its keys once it answered.
    write: bool,
    /// A default-mode tracked read: its keys are remembered just before
    /// its wave runs (not when parsed: a write or a flush told in an
    /// earlier wave would forget them before the read's value is sent).
    tracked: bool,
    /// A read whose keys the client may cache: look up their TTLs once it
    /// answered.
    read: bool,
}

/// Answers one turn's requests in order into `output`; whether to close.
///
/// Connection commands are answered at once. Data commands run in waves:
/// a wave takes commands while their keys are distinct from the wave's
/// (so each key sees this client's commands in order) and runs them
/// concurrently. A pipeline of N commands on distinct keys costs one
/// round trip, not N.
async fn answer<B: Backend, S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session,
    requests: Vec<Frame>,
    shared: &Arc<Shared<B>>,
    replies: &mut Replies<'_, S>,
    input: &mut BytesMut,
    tracking: &mut Tracking,
) -> Result<bool, WriteError> {
    let mut slots = Vec::with_capacity(requests.len());
    // Each command with its protocol and where its reads may be served
    // (`READONLY` as it stood when the command was read).
    let mut waves: Vec<Vec<(Parsed, Version, ReadFrom)>> = Vec::new();
    let mut cached: Vec<Cached> = Vec::new();
    let mut wave_keys: BTreeSet<Bytes> = BTreeSet::new();
    let mut close = false;
    // A command without keys (INFO, DBSIZE) runs alone in its wave.
    let mut wave_is_keyless = false;
    for request in requests {
        shared
            .stats
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
        if let Frame::Error(_) = request {
            // Refused by the decoder (see `serve`): answered as it is.
            slots.push(Slot::Ready(request, session.version()));
            continue;
        }
        let Some(args) = request.into_args() else {
            // The decoder yields only arrays of bulk strings in request mode.
            slots.push(Slot::Ready(
                Frame::error("ERR Protocol error: expected an array of bulk strings"),
                session.version(),
            ));
            continue;
        };
        let action = session.handle(&args, &shared.facts);
        tracking.sync(session, shared);
        match action {
            Action::Reply(frame) => slots.push(Slot::Ready(frame, session.version())),
            Action::ReplyAndClose(frame) => {
                slots.push(Slot::Ready(frame, session.version()));
                close = true;
                break;
            }
            Action::Execute(parsed) => {
                let keys: Vec<Bytes> = parsed
                    .spec
                    .key_indexes_in(&args)
                    .into_iter()
                    .filter_map(|index| args.get(index).cloned())
                    .collect();
                if let Some(reply) = super::cluster::redirect_for(shared, &keys) {
                    slots.push(Slot::Ready(reply, session.version()));
                    continue;
                }
                let tracked_read = session.tracks_last_read();
                let bcast_read = session.tracking().is_some_and(|options| options.bcast)
                    && parsed.spec.has_flag("readonly");
                let conflicts = keys.is_empty()
                    || wave_is_keyless
                    || keys.iter().any(|key| wave_keys.contains(key))
                    || waves
                        .last()
                        .is_some_and(|wave| wave.len() >= MAX_WAVE_COMMANDS);
                if waves.is_empty() || conflicts {
                    waves.push(Vec::new());
                    wave_keys.clear();
                }
                wave_is_keyless = keys.is_empty();
                wave_keys.extend(keys.iter().cloned());
                cached.push(Cached {
                    write: parsed.spec.is_write(),
                    tracked: tracked_read,
                    read: tracked_read || bcast_read,
                    keys,
                });
                let index = waves.iter().map(Vec::len).sum::<usize>();
                let Some(wave) = waves.last_mut() else {
                    unreachable!("a wave was just pushed");
                };
                let mut read_from = session
                    .replica_reads()
                    .map_or(ReadFrom::Leader, |ms| ReadFrom::from_request(true, ms));
                if tracked_read || bcast_read {
                    read_from = read_from.for_tracked_read();
                }
                wave.push((parsed, session.version(), read_from));
                slots.push(Slot::Pending(index, session.version()));
            }
        }
    }
    // Replies go out in request order as soon as they are known: after each
    // wave, every slot up to the first one still pending.
    let mut results: Vec<Option<Frame>> = Vec::new();
    let mut slots = slots.into_iter().peekable();
    for wave in waves {
        let done = results.len();
        if let Some(wave_cached) = cached.get(done..done + wave.len()) {
            // Remembered before the reads run: a write after them is told.
            // (While the node cannot vouch for its clients, told now
            // instead: written after the replies, so nothing stays cached.)
            for command in wave_cached.iter().filter(|command| command.read) {
                if command.tracked {
                    shared.tracker.track(session.id(), &command.keys);
                } else {
                    shared
                        .tracker
                        .tell_unless_vouched(session.id(), &command.keys);
                }
            }
        }
        let blocks = wave
            .iter()
            .any(|(parsed, _, _)| parsed.spec.has_flag("blocking"));
        let answers = join_all(wave.into_iter().map(|(parsed, version, read_from)| {
            READ_FROM.scope(read_from, execute(shared, parsed, version))
        }));
        let answers = if blocks {
            // A blocking command may wait long: watch the socket so that a
            // client that leaves cancels it (the wave is dropped).
            match run_watching_input(answers, replies.stream, input).await {
                Some(answers) => answers,
                None => return Err(WriteError::Closed),
            }
        } else {
            answers.await
        };
        results.extend(answers.into_iter().map(Some));
        if let Some(done_cached) = cached.get(done..results.len()) {
            tell_tracking(shared, session.id(), done_cached, &results[done..]);
        }
        while let Some(slot) = slots.next_if(|slot| match slot {
            Slot::Ready(..) => true,
            Slot::Pending(index, _) => *index < results.len(),
        }) {
            match slot {
                Slot::Ready(frame, version) => replies.push(&frame, version),
                Slot::Pending(index, version) => {
                    let Some(frame) = results.get_mut(index).and_then(Option::take) else {
                        unreachable!("every pending slot has its wave's reply (slot {index})");
                    };
                    replies.push(&frame, version);
                }
            }
            if replies.buffer.len() >= FLUSH_BYTES {
                replies.flush().await?;
            }
        }
        tracking.drain(replies);
    }
    // What is left answered at once (no wave, or after the last one).
    for slot in slots {
        let Slot::Ready(frame, version) = slot else {
            unreachable!("every wave has run, so no slot is pending");
        };
        replies.push(&frame, version);
    }
    tracking.drain(replies);
    Ok(close)
}

/// After a wave answered: its writes are told to whoever holds their keys
/// (before the writer's reply is written), and the TTLs of the keys its
/// cacheable reads returned are looked up, so their expiry is told too.
fn tell_tracking<B: Backend>(
    shared: &Arc<Shared<B>>,
    client: u64,
    commands: &[Cached],
    answers: &[Option<Frame>],
) {
    if !shared.tracker.has_subscribers() {
        return;
    }
    let mut reads = Vec::new();
    for (command, answer) in commands.iter().zip(answers) {
        if command.write && !matches!(answer, Some(Frame::Error(_)) | None) {
            shared.tracker.invalidate(&command.keys, Some(client));
        } else if command.read && !matches!(answer, Some(Frame::Error(_) | Frame::Null) | None) {
            // An absent key has no TTL: nothing to look up.
            reads.extend(command.keys.iter().cloned());
        }
    }
    tracking::look_up_expiries(shared, reads);
}

/// Runs `work` while reading the client's further input into `input`
/// (kept for after it, up to [`MAX_INPUT_WHILE_BLOCKED_BYTES`]); `None` if
/// the client closed the connection first (then `work` is dropped).
async fn run_watching_input<F: std::future::Future, S: AsyncRead + Unpin>(
    work: F,
    stream: &mut S,
    input: &mut BytesMut,
) -> Option<F::Output> {
    tokio::pin!(work);
    loop {
        if input.len() >= MAX_INPUT_WHILE_BLOCKED_BYTES {
            return Some(work.await);
        }
        input.reserve(READ_CHUNK_BYTES);
        // Biased: a fixed polling order, so a run replays from its seed
        // under the simulator (tokio's random branch order is seeded
        // outside it).
        tokio::select! {
            biased;
            output = &mut work => return Some(output),
            // `read_buf` is cancel safe: bytes are either in `input` or
            // still in the socket.
            read = stream.read_buf(input) => match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            },
        }
    }
}

/// Why replies could not be written.
enum WriteError {
    /// The client read nothing for `write_timeout`.
    Stalled,
    /// The connection broke.
    Closed,
}

/// A connection's encoded replies on their way out.
struct Replies<'a, S> {
    stream: &'a mut S,
    buffer: Vec<u8>,
    /// Longest a write may wait for the client to read.
    write_timeout: Option<Duration>,
}

impl<S: AsyncWrite + Unpin> Replies<'_, S> {
    fn push(&mut self, frame: &Frame, version: Version) {
        encode(frame, version, &mut self.buffer);
    }

    /// Writes everything buffered. Each write must make progress within
    /// `write_timeout`: a client that stops reading is closed then, so its
    /// replies are not held forever.
    async fn flush(&mut self) -> Result<(), WriteError> {
        let mut written = 0;
        while written < self.buffer.len() {
            let write = self.stream.write(&self.buffer[written..]);
            let outcome = match self.write_timeout {
                Some(limit) => tokio::time::timeout(limit, write)
                    .await
                    .map_err(|_| WriteError::Stalled)?,
                None => write.await,
            };
            match outcome {
                Ok(0) | Err(_) => return Err(WriteError::Closed),
                Ok(count) => written += count,
            }
        }
        self.buffer.clear();
        // A TLS stream holds written records until flushed.
        let flush = self.stream.flush();
        let flushed = match self.write_timeout {
            Some(limit) => tokio::time::timeout(limit, flush)
                .await
                .map_err(|_| WriteError::Stalled)?,
            None => flush.await,
        };
        flushed.map_err(|_| WriteError::Closed)
    }
}
