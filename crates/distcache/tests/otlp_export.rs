//! `[tracing] otlp_endpoint`: real `distcache node` processes with the flag
//! on send their request spans to a tiny OTLP/gRPC collector in this test
//! (a tonic server implementing the trace service of opentelemetry-proto);
//! one PUT through a follower arrives as one trace: the front end's
//! `request` and `forward` spans from one node, the leader's
//! `labrpc.server` (child of that `forward`) and `raft.submit` from another.

#![cfg(not(madsim))]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use support::cluster::TestCluster;
use support::http::request;
use support::processes::NodeProcesses;
use testkit::ports::free_ports;

/// One received span, flattened.
#[derive(Clone, Debug)]
struct ReceivedSpan {
    node_id: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

fn text_of(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(text)) => text.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.spans.lock().expect("collector lock");
        for resource_spans in request.into_inner().resource_spans {
            let node_id = resource_spans
                .resource
                .iter()
                .flat_map(|resource| resource.attributes.iter())
                .find(|kv| kv.key == "distcache.node_id")
                .map(|kv| text_of(kv.value.as_ref()))
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    received.push(ReceivedSpan {
                        node_id: node_id.clone(),
                        name: span.name,
                        trace_id: span.trace_id,
                        span_id: span.span_id,
                        parent_span_id: span.parent_span_id,
                        attributes: span
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), text_of(kv.value.as_ref())))
                            .collect(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_the_flag_export_one_trace_per_request() {
    tracing::info!("phase 1: the collector");
    let collector = Collector::default();
    let collector_port = free_ports(1)[0];
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", collector_port))
        .await
        .expect("bind the collector");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(incoming),
    );

    tracing::info!("phase 2: three node processes with [tracing] otlp_endpoint");
    let mut processes = NodeProcesses::new();
    let mut configs = TestCluster::builder()
        .cluster_id("otlp")
        .groups(1)
        .replicas(3)
        .configs(processes.dir.path());
    for config in &mut configs {
        config.tracing.otlp_endpoint = Some(format!("http://127.0.0.1:{collector_port}"));
        processes.write_config(config.node_id, &config.to_toml());
    }
    for node_id in 1..=3 {
        processes.start(node_id);
    }
    let http = |node_id: u64| {
        let entry = &configs[0].nodes[(node_id - 1) as usize];
        let host: std::net::IpAddr = entry.host.parse().expect("an IP address");
        std::net::SocketAddr::new(host, entry.http_port.expect("an HTTP port"))
    };

    tracing::info!("phase 3: one PUT through each node (at least two forward)");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for node_id in 1..=3u64 {
        loop {
            let answer = tokio::time::timeout(
                Duration::from_secs(5),
                request_or_refused(http(node_id), &format!("/v1/keys/otlp-{node_id}")),
            )
            .await;
            if let Ok(Some(200)) = answer {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {node_id} did not accept a PUT within 60 s: {answer:?}\n{}",
                processes.log_of(node_id)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    tracing::info!("phase 4: the collector has a whole forwarded trace");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let spans = collector.spans.lock().expect("collector lock").clone();
        if let Some(report) = forwarded_trace(&spans) {
            println!("{report}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no whole forwarded trace within 20 s; received {} spans: {spans:#?}",
            spans.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(processes);
    server.abort();
}

/// A PUT's status, or None if the node does not answer yet.
async fn request_or_refused(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    tokio::net::TcpStream::connect(addr).await.ok()?;
    Some(
        request(addr, "PUT", path, Some("text/plain"), b"v".to_vec())
            .await
            .status,
    )
}

/// A trace with a `request` span and a remote `forward` on one node, and a
/// `labrpc.server` span (child of that forward) with a `raft.submit` under
/// it on another; a line describing it.
fn forwarded_trace(spans: &[ReceivedSpan]) -> Option<String> {
    for forward in spans
        .iter()
        .filter(|span| span.name == "forward" && span.attribute("local") == Some("false"))
    {
        let Some(request) = spans.iter().find(|span| {
            span.name == "request"
                && span.trace_id == forward.trace_id
                && span.span_id == forward.parent_span_id
                && span.node_id == forward.node_id
        }) else {
            continue;
        };
        let Some(server) = spans.iter().find(|span| {
            span.name == "labrpc.server"
                && span.trace_id == forward.trace_id
                && span.parent_span_id == forward.span_id
                && span.node_id != forward.node_id
        }) else {
            continue;
        };
        let Some(submit) = spans.iter().find(|span| {
            span.name == "raft.submit"
                && span.trace_id == server.trace_id
                && span.parent_span_id == server.span_id
                && span.attribute("index").is_some()
                && span.attribute("term").is_some()
        }) else {
            continue;
        };
        return Some(format!(
            "trace {:02x?}: {} on node {} -> labrpc.server on node {} -> raft.submit index {} term {}",
            request.trace_id,
            request.attribute("command").unwrap_or("?"),
            request.node_id,
            server.node_id,
            submit.attribute("index").unwrap_or("?"),
            submit.attribute("term").unwrap_or("?"),
        ));
    }
    None
}
