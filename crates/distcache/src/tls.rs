//! TLS on the client front ends (rustls with the ring provider; no
//! OpenSSL). Not built under madsim: the simulation runs plain TCP and a
//! `[tls]` section is refused there.
//!
//! ```text
//!  [tls] cert, key (PEM files) ─► CertResolver (the current chain + key)
//!        │                              ▲ SIGHUP (or Node::reload_tls): read
//!        │                              │ both files again; a bad pair is
//!        │                              │ logged and the old one kept
//!        ▼
//!  ServerTls::acceptor(alpn) ─► one rustls ServerConfig per listener
//!        RESP (no ALPN), HTTP (http/1.1), gRPC (h2): every new handshake
//!        takes the resolver's current certificate
//!  [tls] client_ca ─► clients must present a certificate it signed
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

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

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

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
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

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
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
        Some(Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poison| poison.into_inner()),
        ))
    }
}

impl CertResolver {
    /// Reads the files again; on success new handshakes use them. On
    /// failure the previous certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load_certified_key(&self.cert, &self.key)?;
        *self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(fresh);
        Ok(())
    }
}

/// A node's server-side TLS: the certificate files and the acceptors.
#[derive(Debug, Clone)]
pub struct ServerTls {
    resolver: Arc<CertResolver>,
    /// Verifies client certificates (`client_ca`); none: not asked for.
    client_verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
}

impl ServerTls {
    /// Loads `cert` (PEM chain, leaf first) and `key` (PEM private key).
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let current = load_certified_key(cert, key)?;
        Ok(ServerTls {
            resolver: Arc::new(CertResolver {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                current: RwLock::new(Arc::new(current)),
            }),
            client_verifier: None,
        })
    }

    /// Requires every client to present a certificate signed by a CA in
    /// the PEM file `client_ca`.
    pub fn require_client_certificates(mut self, client_ca: &Path) -> Result<ServerTls, TlsError> {
        let roots = root_store(client_ca)?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|error| TlsError::Bad {
            path: client_ca.to_path_buf(),
            problem: format!("cannot verify clients with it: {error}"),
        })?;
        self.client_verifier = Some(verifier);
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
            Some(verifier) => builder.with_client_cert_verifier(Arc::clone(verifier)),
            None => builder.with_no_client_auth(),
        };
        let mut config =
            builder.with_cert_resolver(Arc::clone(&self.resolver) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Ok(Acceptor(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    /// Re-reads the certificate files (see [`CertResolver::reload`]).
    pub fn reload(&self) -> Result<(), TlsError> {
        self.resolver.reload()
    }

    /// Reloads the certificates on every SIGHUP until the task is aborted.
    pub fn reload_on_sighup(&self) -> io::Result<tokio::task::JoinHandle<()>> {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let tls = self.clone();
        Ok(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificates reloaded"),
                    Err(error) => tracing::error!(
                        "SIGHUP: TLS certificates not reloaded, the previous ones stay: {error}"
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

fn root_store(ca: &Path) -> Result<rustls::RootCertStore, TlsError> {
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
}

/// Generates a throwaway CA and one certificate it signs for `hosts`
/// (IP addresses or DNS names), and writes them as PEM under `dir`.
pub fn generate_demo_certificates(
    dir: &Path,
    hosts: &[String],
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
    let mut params = rcgen::CertificateParams::new(names).map_err(generate)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "distcache demo node");
    let key = rcgen::KeyPair::generate().map_err(generate)?;
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .map_err(generate)?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = DemoCertificates {
        ca: dir.join("ca.pem"),
        cert: dir.join("node.pem"),
        key: dir.join("node-key.pem"),
    };
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    write(&files.ca, ca_cert.pem())?;
    write(&files.cert, cert.pem())?;
    write(&files.key, key.serialize_pem())?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| TlsError::Read {
                path: files.key.clone(),
                source,
            },
        )?;
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
}
