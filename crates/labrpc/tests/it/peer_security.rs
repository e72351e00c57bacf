//! Peer authentication on the production transport (real tonic, real
//! TCP, rustls): a server of node 1 of cluster "test" admits calls only
//! from members of its cluster whose mutual-TLS certificate, signed by the
//! cluster's CA, names the node the call claims. Every refusal is counted
//! by reason, and a refused call never reaches its handler.
#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use labrpc::security::certificate_name;
use labrpc::{
    Client, ClientConfig, Members, PeerIdentity, PeerSecurity, PeerTls, Refusal, Router, Rpc,
    RpcError, Server, ServerConfig,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};

const CLUSTER: &str = "test";
const MEMBERS: [u64; 3] = [1, 2, 3];

/// Answers the caller the server's policy admitted.
#[derive(Serialize, Deserialize)]
struct WhoAmI;
impl Rpc for WhoAmI {
    const NAME: &'static str = "test.WhoAmI";
    type Reply = Option<u64>;
}

/// The same question on the caller's call stream (`Rpc::STREAMED`).
#[derive(Serialize, Deserialize)]
struct StreamedWhoAmI;
impl Rpc for StreamedWhoAmI {
    const NAME: &'static str = "test.StreamedWhoAmI";
    type Reply = Option<u64>;
    const STREAMED: bool = true;
}

struct Authority {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        Authority { cert, key }
    }

    fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A certificate for `names` (DNS names or IP addresses) and its key.
    fn issue(&self, names: &[String]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let params = rcgen::CertificateParams::new(names.to_vec()).expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key_der)
    }

    /// A node's certificate: its peer name and the loopback address.
    fn node(
        &self,
        cluster: &str,
        node_id: u64,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        self.issue(&[certificate_name(cluster, node_id), "127.0.0.1".into()])
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Mutual TLS trusting `ca`, presenting `identity`.
fn peer_tls(
    ca: &Authority,
    identity: (CertificateDer<'static>, PrivateKeyDer<'static>),
) -> PeerTls {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).expect("root");
    let roots = Arc::new(roots);
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider())
            .build()
            .expect("client verifier");
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.0.clone()], identity.1.clone_key())
        .expect("server certificate");
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![identity.0], identity.1)
        .expect("client certificate");
    PeerTls {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}

/// A member of the listed nodes over mutual TLS: it claims to be node
/// `claimed` (cluster, id), presents `certificate` and trusts `trusted`.
fn tls_member(
    trusted: &Authority,
    claimed: (&str, u64),
    certificate: (CertificateDer<'static>, PrivateKeyDer<'static>),
) -> PeerSecurity {
    PeerSecurity::with_tls(
        identity(claimed.0, claimed.1),
        Members::listed(MEMBERS),
        peer_tls(trusted, certificate),
    )
}

fn identity(cluster: &str, node_id: u64) -> PeerIdentity {
    PeerIdentity {
        cluster_id: cluster.into(),
        node_id,
    }
}

fn client(security: PeerSecurity) -> Client {
    Client::new(ClientConfig {
        timeout: Duration::from_secs(5),
        security,
        ..ClientConfig::default()
    })
}

/// Node 1's server; counts the calls its handler ran.
async fn serve(security: PeerSecurity) -> (Server, Arc<AtomicUsize>) {
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&handled);
    let mut router = Router::new();
    let streamed_counter = Arc::clone(&counter);
    router
        .add(move |WhoAmI| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { labrpc::caller() }
        })
        .add(move |StreamedWhoAmI| {
            streamed_counter.fetch_add(1, Ordering::SeqCst);
            async move { labrpc::caller() }
        });
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(
        addr,
        router,
        ServerConfig {
            security,
            ..ServerConfig::default()
        },
    )
    .await
    .expect("serve");
    (server, handled)
}

fn refused(security: &PeerSecurity, reason: Refusal) -> u64 {
    security
        .refusals()
        .into_iter()
        .find(|(seen, _)| *seen == reason)
        .map_or(0, |(_, count)| count)
}

/// The count of `reason` once it reaches `at_least`, waiting up to 5 s: a
/// handshake's refusal is noted by the server's accepting task, which may
/// run after the client has already seen the handshake fail (with TLS 1.3
/// the server checks the client's certificate after the client is done).
async fn refused_at_least(security: &PeerSecurity, reason: Refusal, at_least: u64) -> u64 {
    for _ in 0..500 {
        let count = refused(security, reason);
        if count >= at_least {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    refused(security, reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_with_certificates_naming_them_are_admitted() {
    let cluster_ca = Authority::new("cluster CA");
    let other_ca = Authority::new("another CA");
    let server_security = tls_member(&cluster_ca, (CLUSTER, 1), cluster_ca.node(CLUSTER, 1));
    let (server, handled) = serve(server_security.clone()).await;
    let addr = server.local_addr();

    // Node 2, with its own certificate from the cluster's CA.
    let node_2 = client(tls_member(
        &cluster_ca,
        (CLUSTER, 2),
        cluster_ca.node(CLUSTER, 2),
    ));
    assert_eq!(node_2.call(addr, &WhoAmI).await.expect("admitted"), Some(2));
    assert_eq!(handled.load(Ordering::SeqCst), 1);

    // Node 2's claim with node 3's certificate.
    let impostor = client(tls_member(
        &cluster_ca,
        (CLUSTER, 2),
        cluster_ca.node(CLUSTER, 3),
    ));
    let answer = impostor.call(addr, &WhoAmI).await;
    assert!(answer.is_err(), "an impostor was answered: {answer:?}");
    assert_eq!(refused(&server_security, Refusal::CertificateMismatch), 1);

    // Another cluster, its certificate from the same CA.
    let stranger = client(tls_member(
        &cluster_ca,
        ("other", 2),
        cluster_ca.node("other", 2),
    ));
    assert!(stranger.call(addr, &WhoAmI).await.is_err());
    assert_eq!(refused(&server_security, Refusal::WrongCluster), 1);

    // A node the cluster does not list.
    let unknown = client(PeerSecurity::with_tls(
        identity(CLUSTER, 9),
        Members::listed([1, 2, 3, 9]),
        peer_tls(&cluster_ca, cluster_ca.node(CLUSTER, 9)),
    ));
    assert!(unknown.call(addr, &WhoAmI).await.is_err());
    assert_eq!(refused(&server_security, Refusal::UnknownNode), 1);

    // Node 2's name on a certificate from another CA: no handshake.
    let forged = client(tls_member(
        &cluster_ca,
        (CLUSTER, 2),
        other_ca.node(CLUSTER, 2),
    ));
    assert!(forged.call(addr, &WhoAmI).await.is_err());
    let after_forged = refused_at_least(&server_security, Refusal::TlsHandshake, 1).await;
    assert!(
        after_forged >= 1,
        "the other CA's handshake was not refused"
    );

    // Plain TCP, with a claim of node 2.
    let plain = client(PeerSecurity::new(
        identity(CLUSTER, 2),
        Members::listed(MEMBERS),
    ));
    assert!(plain.call(addr, &WhoAmI).await.is_err());
    assert!(
        refused_at_least(&server_security, Refusal::TlsHandshake, after_forged + 1).await
            > after_forged,
        "the plain-TCP connection was not refused"
    );

    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "a refused call reached the handler"
    );
    // The member is still served after all of that.
    assert_eq!(node_2.call(addr, &WhoAmI).await.expect("admitted"), Some(2));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_the_cluster_and_node_claims_are_still_checked() {
    let server_security = PeerSecurity::new(identity(CLUSTER, 1), Members::listed(MEMBERS));
    let (server, handled) = serve(server_security.clone()).await;
    let addr = server.local_addr();
    let member = client(PeerSecurity::new(
        identity(CLUSTER, 3),
        Members::listed(MEMBERS),
    ));
    assert_eq!(member.call(addr, &WhoAmI).await.expect("admitted"), Some(3));
    let anonymous = client(PeerSecurity::default());
    assert!(anonymous.call(addr, &WhoAmI).await.is_err());
    assert_eq!(refused(&server_security, Refusal::NoIdentity), 1);
    let other_cluster = client(PeerSecurity::new(
        identity("other", 3),
        Members::listed(MEMBERS),
    ));
    assert!(other_cluster.call(addr, &WhoAmI).await.is_err());
    assert_eq!(refused(&server_security, Refusal::WrongCluster), 1);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_stream_is_admitted_as_a_call_is() {
    let cluster_ca = Authority::new("cluster CA");
    let server_security = tls_member(&cluster_ca, (CLUSTER, 1), cluster_ca.node(CLUSTER, 1));
    let (server, handled) = serve(server_security.clone()).await;
    let addr = server.local_addr();

    let node_2 = client(tls_member(
        &cluster_ca,
        (CLUSTER, 2),
        cluster_ca.node(CLUSTER, 2),
    ));
    for _ in 0..3 {
        assert_eq!(
            node_2.call(addr, &StreamedWhoAmI).await.expect("admitted"),
            Some(2),
            "a streamed call ran as another caller"
        );
    }
    let impostor = client(tls_member(
        &cluster_ca,
        (CLUSTER, 2),
        cluster_ca.node(CLUSTER, 3),
    ));
    let denied = |answer: &Result<Option<u64>, RpcError>| matches!(answer, Err(RpcError::Remote { code, .. }) if code == "PermissionDenied");
    let answer = impostor.call(addr, &StreamedWhoAmI).await;
    assert!(denied(&answer), "an impostor's stream: {answer:?}");
    assert_eq!(refused(&server_security, Refusal::CertificateMismatch), 1);
    let stranger = client(tls_member(
        &cluster_ca,
        ("other", 2),
        cluster_ca.node("other", 2),
    ));
    let answer = stranger.call(addr, &StreamedWhoAmI).await;
    assert!(denied(&answer), "another cluster's stream: {answer:?}");
    assert_eq!(refused(&server_security, Refusal::WrongCluster), 1);
    assert_eq!(
        handled.load(Ordering::SeqCst),
        3,
        "a refused stream reached the handler"
    );
    server.shutdown().await.expect("shutdown");
}
