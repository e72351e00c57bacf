//! OTLP export of request spans (`[tracing] otlp_endpoint`, off by
//! default). Production only: not built under madsim.
//!
//! ```text
//!  tracing spans ─► OtlpLayer (a tracing-subscriber layer, installed by the
//!    binary; inert until `start`)
//!      keeps only spans of a traced request: `trace_id` field, or an
//!      ancestor with one; ids from the `span_id` / `parent_span_id` fields
//!      (so both sides of a forward hop join up), else made here
//!      on close ─► bounded queue (SPAN_QUEUE_CAPACITY; full: dropped, counted)
//!                     ─► export task: batches of at most EXPORT_BATCH_MAX,
//!                        every EXPORT_INTERVAL ─► opentelemetry-otlp (gRPC)
//! ```
//!
//! The trace ids are distcache's own (`labrpc::trace`), not the
//! OpenTelemetry SDK's: the layer builds the exported spans itself, so the
//! ids a node logs, sends over the wire and exports are one and the same.
//! One exporter per process (the first `start` wins): a process runs one
//! node, except `distcache demo`, whose nodes share the first node's.

// OTLP spans carry wall-clock start and end times (`SystemTime`), the one
// thing this module reads the real clock for; it feeds no decision.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::borrow::Cow;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Finished spans waiting for export; more are dropped (and counted).
pub const SPAN_QUEUE_CAPACITY: usize = 8192;
/// Spans per export call at most.
pub const EXPORT_BATCH_MAX: usize = 512;
/// How often the export task sends what it has.
pub const EXPORT_INTERVAL: Duration = Duration::from_millis(500);
/// Deadline of one export call.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attributes kept per span (the rest are counted as dropped).
pub const SPAN_ATTRIBUTES_MAX: usize = 32;

/// Where finished spans go once [`start`] ran.
static SINK: OnceLock<mpsc::Sender<SpanData>> = OnceLock::new();
/// Spans dropped because the queue was full.
static DROPPED_SPANS: AtomicU64 = AtomicU64::new(0);

/// Why the exporter did not start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("OTLP exporter for {endpoint}: {reason}")]
    Build { endpoint: String, reason: String },
    #[error("an OTLP exporter already runs in this process")]
    AlreadyStarted,
}

/// The running export task; [`OtlpExporter::shutdown`] sends what is queued.
pub struct OtlpExporter {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl OtlpExporter {
    /// Sends the spans still queued (bounded by [`EXPORT_TIMEOUT`]) and
    /// stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(EXPORT_TIMEOUT * 2, self.task).await;
    }
}

/// Spans dropped so far because the export queue was full.
pub fn dropped_spans() -> u64 {
    DROPPED_SPANS.load(Ordering::Relaxed)
}

/// Starts exporting request spans to `endpoint` (OTLP over gRPC), naming
/// this node in the resource. The [`layer`] must be installed for spans to
/// reach it.
pub fn start(endpoint: &str, node_id: u64) -> Result<OtlpExporter, OtlpError> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|error| OtlpError::Build {
            endpoint: endpoint.to_string(),
            reason: error.to_string(),
        })?;
    exporter.set_resource(
        &Resource::builder_empty()
            .with_service_name("distcache")
            .with_attribute(KeyValue::new("distcache.node_id", node_id.to_string()))
            .build(),
    );
    let (sender, receiver) = mpsc::channel(SPAN_QUEUE_CAPACITY);
    SINK.set(sender).map_err(|_| OtlpError::AlreadyStarted)?;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = labrpc::runtime::spawn(export_loop(exporter, receiver, stopped));
    tracing::info!(endpoint, "exporting request spans over OTLP");
    Ok(OtlpExporter { task, stop })
}

async fn export_loop(
    exporter: opentelemetry_otlp::SpanExporter,
    mut receiver: mpsc::Receiver<SpanData>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut ticks = tokio::time::interval(EXPORT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u64;
    loop {
        let stopping = tokio::select! {
            biased;
            _ = ticks.tick() => false,
            _ = &mut stopped => true,
        };
        // Everything queued now, in batches (bounded: the queue is).
        loop {
            let mut batch = Vec::new();
            while batch.len() < EXPORT_BATCH_MAX {
                match receiver.try_recv() {
                    Ok(span) => batch.push(span),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            let count = batch.len();
            match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    failures += 1;
                    // The first failure and then one in a hundred: a
                    // collector that is down must not flood the log.
                    if failures % 100 == 1 {
                        tracing::warn!(%error, count, failures, "OTLP export failed; spans dropped");
                    }
                }
                Err(_) => {
                    failures += 1;
                    if failures % 100 == 1 {
                        tracing::warn!(count, failures, "OTLP export timed out; spans dropped");
                    }
                }
            }
        }
        if stopping {
            return;
        }
    }
}

/// The layer that turns finished request spans into OTLP spans. Install it
/// once, with the subscriber; it does nothing until [`start`].
pub fn layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    OtlpLayer.with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
        metadata.is_span() && SINK.get().is_some()
    }))
}

struct OtlpLayer;

/// What the layer keeps of a live span (in its extensions).
struct SpanState {
    trace_id: u128,
    span_id: u64,
    parent_span_id: u64,
    parent_is_remote: bool,
    start_time: SystemTime,
    attributes: Vec<KeyValue>,
    dropped_attributes: u32,
}

/// Reads a span's fields: the ids apart, the rest as string attributes.
#[derive(Default)]
struct FieldReader {
    trace_id: Option<u128>,
    span_id: Option<u64>,
    parent_span_id: Option<u64>,
    attributes: Vec<(&'static str, String)>,
}

impl Visit for FieldReader {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "trace_id" => self.trace_id = u128::from_str_radix(value, 16).ok(),
            "span_id" => self.span_id = u64::from_str_radix(value, 16).ok(),
            "parent_span_id" => self.parent_span_id = u64::from_str_radix(value, 16).ok(),
            name => self.attributes.push((name, value.to_string())),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attributes.push((field.name(), value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push((field.name(), value.to_string()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push((field.name(), value.to_string()));
    }
}

fn add_attributes(state: &mut SpanState, attributes: Vec<(&'static str, String)>) {
    for (name, value) in attributes {
        if let Some(existing) = state
            .attributes
            .iter_mut()
            .find(|kv| kv.key.as_str() == name)
        {
            *existing = KeyValue::new(name, value);
        } else if state.attributes.len() < SPAN_ATTRIBUTES_MAX {
            state.attributes.push(KeyValue::new(name, value));
        } else {
            state.dropped_attributes += 1;
        }
    }
}

impl<S> Layer<S> for OtlpLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let Some(span) = context.span(id) else {
            return;
        };
        let mut reader = FieldReader::default();
        attributes.record(&mut reader);
        let parent = span.parent().and_then(|parent| {
            parent
                .extensions()
                .get::<SpanState>()
                .map(|state| (state.trace_id, state.span_id))
        });
        // Only spans of a traced request.
        let Some(trace_id) = reader.trace_id.or(parent.map(|(trace_id, _)| trace_id)) else {
            return;
        };
        let (parent_span_id, parent_is_remote) = match (reader.parent_span_id, parent) {
            (Some(remote), _) => (remote, true),
            (None, Some((_, local))) => (local, false),
            (None, None) => (0, false),
        };
        let span_id = reader
            .span_id
            .unwrap_or_else(|| labrpc::trace::TraceContext::new_root().span_id);
        let mut state = SpanState {
            trace_id,
            span_id,
            parent_span_id,
            parent_is_remote,
            start_time: SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes: 0,
        };
        add_attributes(&mut state, reader.attributes);
        span.extensions_mut().insert(state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        let Some(span) = context.span(id) else {
            return;
        };
        let mut reader = FieldReader::default();
        values.record(&mut reader);
        let mut extensions = span.extensions_mut();
        if let Some(state) = extensions.get_mut::<SpanState>() {
            // A span id recorded after creation (a forward try's hop).
            if let Some(span_id) = reader.span_id {
                state.span_id = span_id;
            }
            if let Some(parent) = reader.parent_span_id {
                state.parent_span_id = parent;
                state.parent_is_remote = true;
            }
            add_attributes(state, reader.attributes);
        }
    }

    fn on_close(&self, id: Id, context: Context<'_, S>) {
        let Some(sink) = SINK.get() else {
            return;
        };
        let Some(span) = context.span(&id) else {
            return;
        };
        let Some(state) = span.extensions_mut().remove::<SpanState>() else {
            return;
        };
        let data = SpanData {
            span_context: SpanContext::new(
                TraceId::from(state.trace_id),
                SpanId::from(state.span_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(state.parent_span_id),
            parent_span_is_remote: state.parent_is_remote,
            span_kind: match span.name() {
                "labrpc.server" => SpanKind::Server,
                "forward" => SpanKind::Client,
                _ => SpanKind::Internal,
            },
            name: Cow::Borrowed(span.name()),
            start_time: state.start_time,
            end_time: SystemTime::now(),
            attributes: state.attributes,
            dropped_attributes_count: state.dropped_attributes,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("distcache").build(),
        };
        if sink.try_send(data).is_err() {
            DROPPED_SPANS.fetch_add(1, Ordering::Relaxed);
        }
    }
}
