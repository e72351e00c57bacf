//! TLS on every client front end of a real one-node cluster (real gRPC,
//! Raft log on disk, loopback TCP), with certificates made by the demo's
//! generator: RESP (a tokio-rustls client speaking RESP), HTTP (hyper over
//! tokio-rustls) and the gRPC API (tonic with `ClientTlsConfig`) serve a
//! client that trusts the CA; a plaintext client, a client that trusts
//! another CA, and (with `client_ca`) a client without a certificate are
//! refused; SIGHUP makes new handshakes use the files' new certificate.

#![cfg(not(madsim))]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use distcache::tls::{DemoCertificates, client_config, connect, generate_demo_certificates};
use distcache_client::proto;
use support::cluster::TestCluster;
use support::resp::command as resp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One node hosting the controller and data group 1, TLS on every front
/// end with `certs` (and client certificates required with `client_ca`).
async fn start_node(certs: &DemoCertificates, client_ca: bool) -> TestCluster {
    let mut builder = TestCluster::builder()
        .cluster_id("tls")
        .groups(1)
        .replicas(1)
        .tls(certs);
    if client_ca {
        builder = builder.client_ca(&certs.ca);
    }
    builder.start().await
}

/// What a plaintext client gets from a TLS port for `bytes`: never an
/// answer of the protocol; the node closes the connection.
async fn plaintext_answer(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    let outcome = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer))
        .await
        .expect("the node closes a plaintext connection within 15 s");
    // A reset is a refusal too.
    let _ = outcome;
    answer
}

fn tls_config(ca: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    Arc::new(client_config(ca, alpn, None).expect("client config"))
}

async fn https_get(addr: SocketAddr, ca: &Path, path: &str) -> (u16, String) {
    let stream = connect(tls_config(ca, &[b"http/1.1"]), addr)
        .await
        .expect("TLS handshake with the HTTP gateway");
    let answer = support::http::send(stream, addr, "GET", path, &[], Vec::new()).await;
    (answer.status, answer.text())
}

async fn grpc_status(
    addr: SocketAddr,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> Result<proto::StatusReply, String> {
    let endpoint = match tls {
        Some(tls) => tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
            .map_err(|error| error.to_string())?
            .tls_config(tls)
            .map_err(|error| error.to_string())?,
        None => tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|error| error.to_string())?,
    };
    let channel = endpoint
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|error| format!("connect: {error:?}"))?;
    proto::admin_client::AdminClient::new(channel)
        .status(proto::StatusRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| status.to_string())
}

fn grpc_tls(ca: &Path) -> tonic::transport::ClientTlsConfig {
    let pem = std::fs::read(ca).expect("read ca");
    tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(pem))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_front_end_serves_tls_and_refuses_plaintext() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = generate_demo_certificates(&dir.path().join("tls"), &[]).expect("certs");
    let other = generate_demo_certificates(&dir.path().join("other"), &[]).expect("certs");
    let node = start_node(&certs, false).await;
    let resp_addr = node.resp_addr(1).expect("resp");
    let http_addr = node.http_addr(1).expect("http");
    let grpc_addr = node.grpc_addr();

    // RESP over TLS.
    let mut stream = connect(tls_config(&certs.ca, &[]), resp_addr)
        .await
        .expect("TLS handshake with RESP");
    assert_eq!(resp(&mut stream, &["PING"]).await, "+PONG\r\n");
    assert_eq!(resp(&mut stream, &["SET", "tls:k", "v1"]).await, "+OK\r\n");
    assert_eq!(resp(&mut stream, &["GET", "tls:k"]).await, "$2\r\nv1\r\n");
    // Plaintext RESP on the TLS port: closed, no RESP answer.
    let answer = plaintext_answer(resp_addr, b"*1\r\n$4\r\nPING\r\n").await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("PONG"),
        "a plaintext client got {answer:?}"
    );
    // A client that trusts another CA does not finish the handshake.
    assert!(
        connect(tls_config(&other.ca, &[]), resp_addr)
            .await
            .is_err(),
        "a client trusting another CA accepted the node's certificate"
    );

    // HTTP over TLS.
    assert_eq!(https_get(http_addr, &certs.ca, "/livez").await.0, 200);
    let (status, body) = https_get(http_addr, &certs.ca, "/v1/keys/tls:k").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("v1"), "{body}");
    let answer = plaintext_answer(http_addr, b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        !String::from_utf8_lossy(&answer).starts_with("HTTP/"),
        "a plaintext HTTP client got {answer:?}"
    );

    // gRPC over TLS.
    let status = grpc_status(grpc_addr, Some(grpc_tls(&certs.ca)))
        .await
        .expect("Admin.Status over TLS");
    assert_eq!(status.cluster_id, "tls");
    assert!(
        grpc_status(grpc_addr, None).await.is_err(),
        "plaintext gRPC on a TLS port was served"
    );
    assert!(
        grpc_status(grpc_addr, Some(grpc_tls(&other.ca)))
            .await
            .is_err(),
        "a gRPC client trusting another CA was served"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ca_requires_a_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = generate_demo_certificates(&dir.path().join("tls"), &[]).expect("certs");
    let node = start_node(&certs, true).await;
    let resp_addr = node.resp_addr(1).expect("resp");
    // Without a certificate: TLS 1.3 finishes the client's side of the
    // handshake, then the server's alert ends the connection.
    let refused = match connect(tls_config(&certs.ca, &[]), resp_addr).await {
        Err(_) => true,
        Ok(mut stream) => {
            let _ = stream.write_all(b"*1\r\n$4\r\nPING\r\n").await;
            let _ = stream.flush().await;
            let mut buffer = vec![0u8; 64];
            !matches!(
                tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await,
                Ok(Ok(read)) if read > 0
            )
        }
    };
    assert!(refused, "a client without a certificate was served");
    // With a certificate the CA signed (the node's own).
    let with_identity = Arc::new(
        client_config(&certs.ca, &[], Some((&certs.cert, &certs.key))).expect("client config"),
    );
    let mut stream = connect(with_identity, resp_addr)
        .await
        .expect("handshake with a client certificate");
    assert_eq!(resp(&mut stream, &["PING"]).await, "+PONG\r\n");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls_dir = dir.path().join("tls");
    let first = generate_demo_certificates(&tls_dir, &[]).expect("certs");
    let old_ca = dir.path().join("old-ca.pem");
    std::fs::copy(&first.ca, &old_ca).expect("keep the first CA");
    let node = start_node(&first, false).await;
    let resp_addr = node.resp_addr(1).expect("resp");
    let mut stream = connect(tls_config(&old_ca, &[]), resp_addr)
        .await
        .expect("handshake with the first certificate");
    assert_eq!(resp(&mut stream, &["PING"]).await, "+PONG\r\n");

    // New CA and node certificate in the same files, then SIGHUP.
    let second = generate_demo_certificates(&tls_dir, &[]).expect("new certs");
    assert_eq!(second.cert, first.cert);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(hup.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut stream) = connect(tls_config(&second.ca, &[]), resp_addr).await {
            let served = stream
                .get_ref()
                .1
                .peer_certificates()
                .expect("a certificate")[0]
                .clone();
            let on_disk = distcache::tls::load_certs(&second.cert).expect("load")[0].clone();
            assert_eq!(
                served, on_disk,
                "the node serves the file's new certificate"
            );
            assert_eq!(resp(&mut stream, &["PING"]).await, "+PONG\r\n");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGHUP did not bring in the new certificate within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The first CA no longer verifies new handshakes; the connection made
    // before the reload still works.
    assert!(connect(tls_config(&old_ca, &[]), resp_addr).await.is_err());
    assert_eq!(resp(&mut stream, &["PING"]).await, "+PONG\r\n");

    // A broken file on reload keeps the current certificate.
    std::fs::write(&second.cert, "not a certificate").expect("write");
    assert!(node.reload_tls(1).expect("node 1 runs").is_err());
    assert!(
        connect(tls_config(&second.ca, &[]), resp_addr)
            .await
            .is_ok()
    );
    node.shutdown().await;
}
