//! One request's spans, captured by a test subscriber: the front end's
//! `request` span, its `forward` try, and, on the node that owns the key,
//! the `labrpc.server` span and its `raft.submit` (with index and term),
//! all with the same trace id carried across the gRPC hop (`traceparent`).
//!
//! Its own test binary: it installs the process's global subscriber (the
//! cluster's tasks run on every worker thread).

#![cfg(not(madsim))]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use support::cluster::TestCluster;
use support::http::{request, send};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One span as seen at its creation and later `record`s.
#[derive(Clone, Debug)]
struct CapturedSpan {
    name: &'static str,
    /// Index of the parent in the capture (spans are kept in creation
    /// order; the subscriber's ids are reused once a span closes).
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Captured {
    spans: Vec<CapturedSpan>,
    /// The subscriber's id of each live span -> its index in `spans`.
    live: BTreeMap<u64, usize>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Captured>>);

struct FieldsVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldsVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S> Layer<S> for Capture
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let parent_id = context
            .span(id)
            .and_then(|span| span.parent().map(|parent| parent.id().into_u64()));
        let mut fields = BTreeMap::new();
        attributes.record(&mut FieldsVisitor(&mut fields));
        let mut captured = self.0.lock().expect("capture lock");
        let parent = parent_id.and_then(|parent| captured.live.get(&parent).copied());
        let index = captured.spans.len();
        captured.spans.push(CapturedSpan {
            name: attributes.metadata().name(),
            parent,
            fields,
        });
        captured.live.insert(id.into_u64(), index);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _context: Context<'_, S>) {
        let mut captured = self.0.lock().expect("capture lock");
        if let Some(&index) = captured.live.get(&id.into_u64()) {
            values.record(&mut FieldsVisitor(&mut captured.spans[index].fields));
        }
    }
}

fn is_descendant(spans: &[CapturedSpan], mut index: usize, ancestor: usize) -> bool {
    for _ in 0..spans.len() {
        match spans[index].parent {
            Some(parent) if parent == ancestor => return true,
            Some(parent) => index = parent,
            None => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_requests_spans_cross_the_forward_hop_with_one_trace_id() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .expect("the only subscriber of this test binary");

    tracing::info!("phase 1: two groups; node 1 hosts only group 1's replica");
    let demo = TestCluster::builder().groups(2).replicas(3).start().await;
    let addr = demo.http_addr(1).expect("node 1 serves HTTP");
    let view = request(addr, "GET", "/v1/cluster", None, Vec::new())
        .await
        .json();
    let shards: Vec<u64> = serde_json::from_value(view["shards"].clone()).expect("shards");
    let local_gid = view["nodes"][0]["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .find(|replica| replica["role"] == "data")
        .and_then(|replica| replica["gid"].as_u64())
        .expect("node 1 has a data replica");
    let remote_gid = if local_gid == 1 { 2 } else { 1 };
    let key = (0..100_000)
        .map(|i| format!("traced-{i}"))
        .find(|key| shards[shardkv::key_to_shard(key.as_bytes(), shards.len())] == remote_gid)
        .expect("a key of the other group");

    tracing::info!("phase 2: one PUT through node 1 to group {remote_gid}");
    let answer = request(
        addr,
        "PUT",
        &format!("/v1/keys/{key}"),
        Some("text/plain"),
        b"v".to_vec(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let spans = capture.0.lock().expect("capture lock").spans.clone();

    tracing::info!("phase 3: the front end's request span and its forward try");
    let requests: Vec<usize> = (0..spans.len())
        .filter(|&i| {
            spans[i].name == "request"
                && spans[i].fields.get("frontend").map(String::as_str) == Some("http")
                && spans[i].fields.get("command").map(String::as_str) == Some("Put")
        })
        .collect();
    assert_eq!(requests.len(), 1, "one HTTP Put request span: {requests:?}");
    let request_span = requests[0];
    let trace_id = spans[request_span].fields["trace_id"].clone();
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    assert_eq!(
        spans[request_span]
            .fields
            .get("outcome")
            .map(String::as_str),
        Some("ok")
    );
    let forward = (0..spans.len()).find(|&i| {
        spans[i].name == "forward"
            && spans[i].fields.get("local").map(String::as_str) == Some("false")
            && is_descendant(&spans, i, request_span)
    });
    assert!(forward.is_some(), "a remote forward try under the request");

    tracing::info!("phase 4: the owning node's server span and Raft submit");
    let servers: Vec<usize> = (0..spans.len())
        .filter(|&i| {
            spans[i].name == "labrpc.server" && spans[i].fields.get("trace_id") == Some(&trace_id)
        })
        .collect();
    assert!(
        !servers.is_empty(),
        "no labrpc.server span with trace id {trace_id}"
    );
    for &server in &servers {
        // A root span on the other side of the wire: the id came in the
        // gRPC metadata, not through the caller's task.
        assert_eq!(spans[server].parent, None, "{:?}", spans[server]);
    }
    let submit = (0..spans.len())
        .find(|&i| {
            spans[i].name == "raft.submit"
                && servers
                    .iter()
                    .any(|&server| is_descendant(&spans, i, server))
                && spans[i].fields.contains_key("index")
        })
        .unwrap_or_else(|| panic!("no raft.submit with an index under the server span"));
    let index: u64 = spans[submit].fields["index"].parse().expect("an index");
    let term: u64 = spans[submit].fields["term"].parse().expect("a term");
    assert!(index >= 1 && term >= 1, "index {index}, term {term}");
    tracing::info!("trace {trace_id}: submitted at index {index}, term {term}");

    tracing::info!("phase 5: a caller's traceparent header names the trace");
    let caller_trace = "0af7651916cd43dd8448eb211c80319c";
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let answer = send(
        stream,
        addr,
        "GET",
        &format!("/v1/keys/{key}"),
        &[(
            "traceparent",
            &format!("00-{caller_trace}-b7ad6b7169203331-01"),
        )],
        Vec::new(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let spans = capture.0.lock().expect("capture lock").spans.clone();
    let named = |name: &str| {
        spans.iter().any(|span| {
            span.name == name
                && span.fields.get("trace_id").map(String::as_str) == Some(caller_trace)
        })
    };
    assert!(
        named("request"),
        "the request span takes the caller's trace id"
    );
    assert!(named("labrpc.server"), "and carries it over the hop");

    tracing::info!("phase 6: so does a gRPC caller's traceparent metadata");
    let grpc_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", demo.grpc_seeds()[0]))
            .expect("url")
            .connect()
            .await
            .expect("connect");
    let mut cache = distcache_client::proto::cache_client::CacheClient::new(channel);
    let mut call = tonic::Request::new(distcache_client::proto::GetRequest {
        key: key.clone().into_bytes(),
        ..Default::default()
    });
    call.metadata_mut().insert(
        "traceparent",
        format!("00-{grpc_trace}-00f067aa0ba902b7-01")
            .parse()
            .expect("ascii metadata"),
    );
    let reply = cache.get(call).await.expect("a gRPC Get").into_inner();
    assert_eq!(reply.value, b"v");
    let spans = capture.0.lock().expect("capture lock").spans.clone();
    let traced = |name: &str| {
        spans.iter().any(|span| {
            span.name == name && span.fields.get("trace_id").map(String::as_str) == Some(grpc_trace)
        })
    };
    assert!(
        traced("request"),
        "the gRPC request span takes the caller's trace id"
    );
    assert!(traced("labrpc.server"), "and carries it over the hop");
    demo.shutdown().await;
}
