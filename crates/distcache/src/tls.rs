//! TLS on the client front ends (rustls with the ring provider; no
//! OpenSSL). Not built under madsim: the simulation runs plain TCP and a
//! `[tls]` section is refused there.
//!
//! ```text
//!  [tls] cert, key (PEM files) ─► CertResolver (the current chain + key)
//!        │                              ▲ SIGHUP (or Node::reload_tls): read
//!        │                              │ both files again; a bad pair is
//!        │                              │ logged and the old one kept
//!        │                              │ (client_ca likewise, below)
//!        ▼
//!  ServerTls::acceptor(alpn) ─► one rustls ServerConfig per listener
//!        RESP (no ALPN), HTTP (http/1.1), gRPC (h2): every new handshake
//!        takes the resolver's current certificate
//!  [tls] client_ca ─► clients must present a certificate it signed
//!                     (ClientCaVerifier: re-read on SIGHUP too, so a CA
//!                     can be rotated without a restart)
//!  [tls] ca        ─► what this node trusts when it calls the other nodes'
//!                     front ends (Admin status, the dashboard's reports)
//! ```
//!
//! A handshake must finish within [`HANDSHAKE_TIMEOUT`]; a client that
//! stalls it is disconnected. A plaintext client on a TLS port fails the
//! handshake and is closed without an answer.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::config::{ConfigError, TlsSettings};

/// Longest a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {problem}")]
    Bad { path: PathBuf, problem: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("certificate generation: {0}")]
    Generate(String),
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file, in order.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Bad {
            path: path.to_path_buf(),
            problem: format!("not PEM certificates: {error}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Bad {
            path: path.to_path_buf(),
            problem: "holds no certificate".into(),
        });
    }
    Ok(certs)
}

pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|error| TlsError::Bad {
            path: path.to_path_buf(),
            problem: format!("not a PEM private key: {error}"),
        })?
        .ok_or_else(|| TlsError::Bad {
            path: path.to_path_buf(),
            problem: "holds no private key".into(),
        })
}

/// A certificate chain and its key from PEM files, checked to match.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    let certified =
        CertifiedKey::from_der(chain, key_der, &provider()).map_err(|error| TlsError::Bad {
            path: key.to_path_buf(),
            problem: format!("does not fit {}: {error}", cert.display()),
        })?;
    Ok(certified)
}

/// Hands every handshake the current certificate; [`CertResolver::reload`]
/// swaps it.
pub struct CertResolver {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CertResolver")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The same certificate, presented as a client (mutual TLS between
/// nodes: a node dials its peers with its peer certificate).
impl rustls::client::ResolvesClientCert for CertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl CertResolver {
    /// Loads `cert` (PEM chain, leaf first) and `key`, checked to fit.
    pub fn load(cert: &Path, key: &Path) -> Result<CertResolver, TlsError> {
        let current = load_certified_key(cert, key)?;
        Ok(CertResolver {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// The certificate and key new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }

    /// Reads the files again; on success new handshakes use them. On
    /// failure the previous certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.reload_checked(|_| Ok(()))
    }

    /// [`CertResolver::reload`], refusing (and keeping the previous one) a
    /// certificate that `check` refuses.
    pub fn reload_checked(
        &self,
        check: impl FnOnce(&CertifiedKey) -> Result<(), String>,
    ) -> Result<(), TlsError> {
        let fresh = load_certified_key(&self.cert, &self.key)?;
        check(&fresh).map_err(|problem| TlsError::Bad {
            path: self.cert.clone(),
            problem,
        })?;
        *self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(fresh);
        Ok(())
    }
}

/// Verifies client certificates against the CA file `client_ca`, as it
/// was last (re)loaded: [`ClientCaVerifier::reload`] swaps the verifier
/// under every listener at once, for handshakes from then on.
///
/// It sends clients no list of acceptable CA names (TLS's optional
/// "certificate authorities" hint): the list would have to outlive a
/// reload, and clients present the certificate they are configured with
/// anyway (redis-cli `--cert`, a gRPC identity).
pub struct ClientCaVerifier {
    path: PathBuf,
    current: RwLock<Arc<dyn ClientCertVerifier>>,
}

impl fmt::Debug for ClientCaVerifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClientCaVerifier")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ClientCaVerifier {
    fn build(client_ca: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let roots = root_store(client_ca)?;
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|error| TlsError::Bad {
                path: client_ca.to_path_buf(),
                problem: format!("cannot verify clients with it: {error}"),
            })
    }

    pub fn load(client_ca: &Path) -> Result<ClientCaVerifier, TlsError> {
        Ok(ClientCaVerifier {
            path: client_ca.to_path_buf(),
            current: RwLock::new(ClientCaVerifier::build(client_ca)?),
        })
    }

    /// Reads the CA file again; on failure the previous CAs stay.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = ClientCaVerifier::build(&self.path)?;
        *self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = fresh;
        Ok(())
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }
}

impl ClientCertVerifier for ClientCaVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// A node's server-side TLS: the certificate files and the acceptors.
#[derive(Debug, Clone)]
pub struct ServerTls {
    resolver: Arc<CertResolver>,
    /// Verifies client certificates (`client_ca`); none: not asked for.
    client_verifier: Option<Arc<ClientCaVerifier>>,
    /// The peer certificate and cluster CA (`peer_*`), reloaded with the
    /// rest.
    peer: Option<crate::peer_tls::PeerTlsFiles>,
}

impl ServerTls {
    /// Loads `cert` (PEM chain, leaf first) and `key` (PEM private key).
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            resolver: Arc::new(CertResolver::load(cert, key)?),
            client_verifier: None,
            peer: None,
        })
    }

    /// Reloads `peer` (mutual TLS between nodes) with this node's
    /// certificates, on SIGHUP and [`ServerTls::reload`].
    pub fn with_peer(mut self, peer: crate::peer_tls::PeerTlsFiles) -> ServerTls {
        self.peer = Some(peer);
        self
    }

    /// Requires every client to present a certificate signed by a CA in
    /// the PEM file `client_ca`.
    pub fn require_client_certificates(mut self, client_ca: &Path) -> Result<ServerTls, TlsError> {
        self.client_verifier = Some(Arc::new(ClientCaVerifier::load(client_ca)?));
        Ok(self)
    }

    /// The node configuration's `[tls]`: every file checked, an error
    /// naming the field at fault.
    pub fn from_settings(settings: &TlsSettings) -> Result<ServerTls, ConfigError> {
        let at = |field: &str, error: TlsError| ConfigError {
            field: format!("tls.{field}"),
            problem: error.to_string(),
        };
        // Each file on its own first, so the error names the one at fault.
        load_certs(&settings.cert).map_err(|error| at("cert", error))?;
        load_key(&settings.key).map_err(|error| at("key", error))?;
        let mut tls =
            ServerTls::load(&settings.cert, &settings.key).map_err(|error| at("key", error))?;
        if let Some(client_ca) = &settings.client_ca {
            tls = tls
                .require_client_certificates(client_ca)
                .map_err(|error| at("client_ca", error))?;
        }
        if let Some(ca) = &settings.ca {
            root_store(ca).map_err(|error| at("ca", error))?;
        }
        Ok(tls)
    }

    /// An acceptor offering `alpn` protocols (none for RESP).
    pub fn acceptor(&self, alpn: &[&[u8]]) -> Result<Acceptor, TlsError> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = match &self.client_verifier {
            Some(verifier) => builder
                .with_client_cert_verifier(Arc::clone(verifier) as Arc<dyn ClientCertVerifier>),
            None => builder.with_no_client_auth(),
        };
        let mut config =
            builder.with_cert_resolver(Arc::clone(&self.resolver) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Ok(Acceptor(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    /// Re-reads the certificate files (see [`CertResolver::reload`]), the
    /// client CA file, if any ([`ClientCaVerifier::reload`]), and the
    /// peer certificate and cluster CA ([`crate::peer_tls::PeerTlsFiles::reload`]).
    /// Each that fails keeps its previous contents; the first error is
    /// returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certificate = self.resolver.reload();
        let client_ca = match &self.client_verifier {
            Some(verifier) => verifier.reload(),
            None => Ok(()),
        };
        let peer = match &self.peer {
            Some(peer) => peer.reload(),
            None => Ok(()),
        };
        certificate.and(client_ca).and(peer)
    }

    /// Reloads the certificates on every SIGHUP until the task is aborted.
    pub fn reload_on_sighup(&self) -> io::Result<tokio::task::JoinHandle<()>> {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let tls = self.clone();
        Ok(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!(
                        "SIGHUP: TLS certificates, client CA and peer certificates reloaded"
                    ),
                    Err(error) => tracing::error!(
                        "SIGHUP: a TLS file not reloaded, its previous contents stay: {error}"
                    ),
                }
            }
        }))
    }
}

/// The TLS side of one listener; every accepted connection's handshake
/// goes through [`Acceptor::accept`].
#[derive(Clone)]
pub struct Acceptor(tokio_rustls::TlsAcceptor);

impl fmt::Debug for Acceptor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Acceptor")
    }
}

impl Acceptor {
    /// The server side of the handshake, bounded by [`HANDSHAKE_TIMEOUT`].
    pub async fn accept<S>(&self, stream: S) -> io::Result<tokio_rustls::server::TlsStream<S>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.0.accept(stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
    }
}

pub(crate) fn root_store(ca: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert).map_err(|error| TlsError::Bad {
            path: ca.to_path_buf(),
            problem: format!("not a usable CA certificate: {error}"),
        })?;
    }
    Ok(roots)
}

/// A client configuration trusting only the CA certificates in `ca`;
/// with `identity` (certificate chain and key files) it presents that
/// certificate to servers that ask for one.
pub fn client_config(
    ca: &Path,
    alpn: &[&[u8]],
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(ca)?);
    let mut config = match identity {
        Some((cert, key)) => builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Ok(config)
}

/// Opens a TLS connection to `addr`, checking its certificate for the
/// address's IP.
pub async fn connect(
    config: Arc<rustls::ClientConfig>,
    addr: std::net::SocketAddr,
) -> io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_rustls::TlsConnector::from(config).connect(name, stream),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// What a node uses when it calls the other nodes' front ends over TLS:
/// the cluster CA (`[tls] ca`) and, for servers that ask, its own
/// certificate.
#[derive(Clone, Debug)]
pub struct PeerClient {
    /// For the dashboard's HTTP/1.1 calls.
    pub http: Option<Arc<rustls::ClientConfig>>,
    /// For the Admin service's gRPC calls.
    pub grpc: Option<tonic::transport::ClientTlsConfig>,
}

impl PeerClient {
    /// From `[tls]`; without a `ca` the node cannot check the others'
    /// certificates and reports them unreachable.
    pub fn from_settings(settings: &TlsSettings) -> Result<PeerClient, TlsError> {
        let Some(ca) = &settings.ca else {
            return Ok(PeerClient {
                http: None,
                grpc: None,
            });
        };
        let identity = Some((settings.cert.as_path(), settings.key.as_path()));
        let http = Arc::new(client_config(ca, &[b"http/1.1"], identity)?);
        let grpc = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?))
            .identity(tonic::transport::Identity::from_pem(
                read(&settings.cert)?,
                read(&settings.key)?,
            ));
        Ok(PeerClient {
            http: Some(http),
            grpc: Some(grpc),
        })
    }
}

/// The files `distcache demo --tls` writes under `<dir>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoCertificates {
    /// The throwaway CA's certificate (`<dir>/ca.pem`): what clients trust.
    pub ca: PathBuf,
    /// The nodes' certificate, signed by the CA, for 127.0.0.1, ::1 and
    /// localhost (`<dir>/node.pem`).
    pub cert: PathBuf,
    /// Its private key (`<dir>/node-key.pem`, mode 0600).
    pub key: PathBuf,
    /// Each peer node's certificate and key for mutual TLS between nodes
    /// (`<dir>/peer-node-<id>.pem`, `<dir>/peer-node-<id>-key.pem`),
    /// signed by the same CA and naming the node
    /// (`node-<id>.<cluster>.distcache`) and the hosts.
    pub peers: std::collections::BTreeMap<u64, (PathBuf, PathBuf)>,
}

/// Generates a throwaway CA and one certificate it signs for `hosts`
/// (IP addresses or DNS names), and writes them as PEM under `dir`.
pub fn generate_demo_certificates(
    dir: &Path,
    hosts: &[String],
) -> Result<DemoCertificates, TlsError> {
    generate_cluster_certificates(dir, hosts, "", &[])
}

/// [`generate_demo_certificates`], plus a peer certificate for each node
/// of `nodes` in cluster `cluster_id` (mutual TLS between nodes).
pub fn generate_cluster_certificates(
    dir: &Path,
    hosts: &[String],
    cluster_id: &str,
    nodes: &[u64],
) -> Result<DemoCertificates, TlsError> {
    let generate = |error: rcgen::Error| TlsError::Generate(error.to_string());
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "distcache demo CA (throwaway)");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().map_err(generate)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(generate)?;
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for host in hosts {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    let sign = |names: Vec<String>, common_name: &str| {
        let mut params = rcgen::CertificateParams::new(names).map_err(generate)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let key = rcgen::KeyPair::generate().map_err(generate)?;
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .map_err(generate)?;
        Ok::<_, TlsError>((cert, key))
    };
    let (cert, key) = sign(names.clone(), "distcache demo node")?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = DemoCertificates {
        ca: dir.join("ca.pem"),
        cert: dir.join("node.pem"),
        key: dir.join("node-key.pem"),
        peers: std::collections::BTreeMap::new(),
    };
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let write_private = |path: &Path, text: String| {
        use std::os::unix::fs::PermissionsExt;
        write(path, text)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
            TlsError::Read {
                path: path.to_path_buf(),
                source,
            }
        })
    };
    write(&files.ca, ca_cert.pem())?;
    write(&files.cert, cert.pem())?;
    write_private(&files.key, key.serialize_pem())?;
    for &node in nodes {
        let mut peer_names = vec![labrpc::security::certificate_name(cluster_id, node)];
        peer_names.extend(names.iter().cloned());
        let (peer_cert, peer_key) = sign(peer_names, &format!("distcache demo node {node}"))?;
        let cert_path = dir.join(format!("peer-node-{node}.pem"));
        let key_path = dir.join(format!("peer-node-{node}-key.pem"));
        write(&cert_path, peer_cert.pem())?;
        write_private(&key_path, peer_key.serialize_pem())?;
        files.peers.insert(node, (cert_path, key_path));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_load_and_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = generate_demo_certificates(dir.path(), &[]).expect("generate");
        let tls = ServerTls::load(&files.cert, &files.key).expect("load");
        tls.acceptor(&[]).expect("acceptor");
        client_config(&files.ca, &[], None).expect("client config");
        // A broken file on reload keeps the old certificate.
        std::fs::write(&files.cert, "not a certificate").expect("write");
        assert!(tls.reload().is_err());
        generate_demo_certificates(dir.path(), &[]).expect("again");
        tls.reload().expect("reload the new pair");
        // A key that does not fit the certificate is refused.
        let other = tempfile::tempdir().expect("tempdir");
        let others = generate_demo_certificates(other.path(), &[]).expect("generate");
        let error = ServerTls::load(&files.cert, &others.key).expect_err("mismatch");
        assert!(error.to_string().contains("does not fit"), "{error}");
    }
    /// Whether a client presenting `identity` (and trusting `ca`) gets
    /// the server's byte through `acceptor` at `addr`.
    async fn served(addr: std::net::SocketAddr, ca: &Path, identity: (&Path, &Path)) -> bool {
        use tokio::io::AsyncReadExt;
        let config = Arc::new(client_config(ca, &[], Some(identity)).expect("client config"));
        let Ok(mut stream) = connect(config, addr).await else {
            return false;
        };
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await,
            Ok(Ok(1))
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_client_ca_is_reloaded_and_a_bad_file_keeps_the_old_one() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let a = generate_demo_certificates(&dir.path().join("a"), &[]).expect("a");
        let b = generate_demo_certificates(&dir.path().join("b"), &[]).expect("b");
        let client_ca = dir.path().join("client-ca.pem");
        std::fs::copy(&a.ca, &client_ca).expect("copy");
        let tls = ServerTls::load(&a.cert, &a.key)
            .expect("load")
            .require_client_certificates(&client_ca)
            .expect("client ca");
        let acceptor = tls.acceptor(&[]).expect("acceptor");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut stream) = acceptor.accept(stream).await {
                        let _ = stream.write_all(b"!").await;
                        let _ = stream.flush().await;
                    }
                });
            }
        });
        let identity_a = (a.cert.as_path(), a.key.as_path());
        let identity_b = (b.cert.as_path(), b.key.as_path());
        assert!(served(addr, &a.ca, identity_a).await, "A's client, A's CA");
        assert!(!served(addr, &a.ca, identity_b).await, "B's client before");

        // The client CA file now holds B's CA.
        std::fs::copy(&b.ca, &client_ca).expect("rotate");
        tls.reload().expect("reload");
        assert!(served(addr, &a.ca, identity_b).await, "B's client after");
        assert!(!served(addr, &a.ca, identity_a).await, "A's client after");

        // A broken file: the reload fails and B's CA stays.
        std::fs::write(&client_ca, "not a certificate").expect("break");
        assert!(tls.reload().is_err());
        assert!(
            served(addr, &a.ca, identity_b).await,
            "kept after a bad reload"
        );
        server.abort();
    }
}
