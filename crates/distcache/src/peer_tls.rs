//! Mutual TLS between nodes: the files behind labrpc's [`labrpc::PeerTls`]
//! (not built under madsim, whose simulated wire has no TLS).
//!
//! ```text
//!  [tls] peer_cert, peer_key ─► CertResolver: presented as server (to
//!        (default: cert, key)    peers dialing in) and as client (when
//!                                dialing them); must name this node,
//!                                node-<id>.<cluster_id>.distcache
//!  [tls] peer_ca ─► ClientCaVerifier: a peer dialing in must present a
//!                   certificate it signed (else the handshake fails)
//!                ─► ServerCaVerifier: a peer dialed must present one it
//!                   signed, for the address dialed (an IP SAN)
//!  SIGHUP (Node::reload_tls) ─► all three read again; a file that does not
//!                   load, or a certificate that no longer names this node,
//!                   is logged and the previous contents stay
//! ```
//!
//! Which node a certificate names is checked per call by labrpc's policy
//! (`labrpc::security`): the call's claimed node must be the one its
//! connection's certificate names.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ResolvesServerCert;
use rustls::server::danger::ClientCertVerifier;
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::{ConfigError, TlsSettings};
use crate::tls::{CertResolver, ClientCaVerifier, TlsError, provider, root_store};

/// Verifies the certificates of the peers a node dials against the
/// cluster CA file, as it was last (re)loaded.
pub struct ServerCaVerifier {
    path: PathBuf,
    current: RwLock<Arc<WebPkiServerVerifier>>,
}

impl fmt::Debug for ServerCaVerifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ServerCaVerifier")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ServerCaVerifier {
    fn build(ca: &Path) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
        WebPkiServerVerifier::builder_with_provider(Arc::new(root_store(ca)?), provider())
            .build()
            .map_err(|error| TlsError::Bad {
                path: ca.to_path_buf(),
                problem: format!("cannot verify peers with it: {error}"),
            })
    }

    pub fn load(ca: &Path) -> Result<ServerCaVerifier, TlsError> {
        Ok(ServerCaVerifier {
            path: ca.to_path_buf(),
            current: RwLock::new(ServerCaVerifier::build(ca)?),
        })
    }

    /// Reads the CA file again; on failure the previous CAs stay.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = ServerCaVerifier::build(&self.path)?;
        *self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = fresh;
        Ok(())
    }

    fn current(&self) -> Arc<WebPkiServerVerifier> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }
}

impl ServerCertVerifier for ServerCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.current().verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
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

/// A node's peer certificate and the cluster CA, reloadable; the source
/// of its labrpc [`labrpc::PeerTls`].
#[derive(Clone, Debug)]
pub struct PeerTlsFiles {
    /// The DNS name the peer certificate must carry.
    name: String,
    resolver: Arc<CertResolver>,
    clients: Arc<ClientCaVerifier>,
    servers: Arc<ServerCaVerifier>,
}

impl PeerTlsFiles {
    /// From `[tls]`: `None` without `peer_ca`. Every file is read and
    /// checked, and the certificate must name node `node_id` of
    /// `cluster_id`; an error names the field at fault.
    pub fn from_settings(
        settings: &TlsSettings,
        cluster_id: &str,
        node_id: u64,
    ) -> Result<Option<PeerTlsFiles>, ConfigError> {
        PeerTlsFiles::check_fields(settings, cluster_id, node_id)?;
        let Some(ca) = &settings.peer_ca else {
            return Ok(None);
        };
        let (cert, key, cert_field, key_field) = match (&settings.peer_cert, &settings.peer_key) {
            (Some(cert), Some(key)) => (cert, key, "tls.peer_cert", "tls.peer_key"),
            _ => (&settings.cert, &settings.key, "tls.cert", "tls.key"),
        };
        let at = |field: &str, error: TlsError| ConfigError::new(field, error.to_string());
        let name = labrpc::security::certificate_name(cluster_id, node_id);
        crate::tls::load_certs(cert).map_err(|error| at(cert_field, error))?;
        crate::tls::load_key(key).map_err(|error| at(key_field, error))?;
        let resolver = CertResolver::load(cert, key).map_err(|error| at(key_field, error))?;
        check_names(&resolver, &name, cert).map_err(|error| at(cert_field, error))?;
        let clients = ClientCaVerifier::load(ca).map_err(|error| at("tls.peer_ca", error))?;
        let servers = ServerCaVerifier::load(ca).map_err(|error| at("tls.peer_ca", error))?;
        Ok(Some(PeerTlsFiles {
            name,
            resolver: Arc::new(resolver),
            clients: Arc::new(clients),
            servers: Arc::new(servers),
        }))
    }

    /// The checks of the `peer_*` fields that read no file: `peer_ca` with
    /// any of them, `peer_cert` and `peer_key` together, and a cluster id
    /// that makes a DNS name for the certificates.
    pub fn check_fields(
        settings: &TlsSettings,
        cluster_id: &str,
        node_id: u64,
    ) -> Result<(), ConfigError> {
        if settings.peer_ca.is_none() {
            if settings.peer_cert.is_some() || settings.peer_key.is_some() {
                return Err(ConfigError::new(
                    "tls.peer_ca",
                    "is needed with peer_cert and peer_key (peers are checked against it)",
                ));
            }
            return Ok(());
        }
        match (&settings.peer_cert, &settings.peer_key) {
            (Some(_), None) => {
                return Err(ConfigError::new("tls.peer_key", "is needed with peer_cert"));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new("tls.peer_cert", "is needed with peer_key"));
            }
            _ => {}
        }
        let name = labrpc::security::certificate_name(cluster_id, node_id);
        if ServerName::try_from(name.as_str()).is_err() {
            return Err(ConfigError::new(
                "cluster_id",
                format!("{cluster_id:?} does not make a DNS name for peer certificates ({name:?})"),
            ));
        }
        Ok(())
    }

    /// The rustls configurations for labrpc: a server that requires a
    /// client certificate the cluster CA signed, and a client that trusts
    /// only that CA; both present this node's peer certificate. Both go
    /// through the reloadable files, so a reload reaches new connections.
    pub fn labrpc(&self) -> Result<labrpc::PeerTls, TlsError> {
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::clone(&self.clients) as Arc<dyn ClientCertVerifier>)
            .with_cert_resolver(Arc::clone(&self.resolver) as Arc<dyn ResolvesServerCert>);
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            // Not dangerous: the verifier is webpki's, over the cluster CA
            // file, behind a lock so that SIGHUP can swap it.
            .with_custom_certificate_verifier(
                Arc::clone(&self.servers) as Arc<dyn ServerCertVerifier>
            )
            .with_client_cert_resolver(Arc::clone(&self.resolver) as Arc<dyn ResolvesClientCert>);
        // gRPC over TLS names HTTP/2 in ALPN (tools such as curl and
        // grpcurl rely on it; labrpc speaks HTTP/2 either way).
        let (mut server, mut client) = (server, client);
        server.alpn_protocols = vec![b"h2".to_vec()];
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(labrpc::PeerTls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// Reads the peer certificate, its key and the cluster CA again. A
    /// certificate that does not load or no longer names this node, or a
    /// CA file that does not load, keeps its previous contents.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certificate = self
            .resolver
            .reload_checked(|fresh| check_certified_names(fresh, &self.name));
        let clients = self.clients.reload();
        let servers = self.servers.reload();
        certificate.and(clients).and(servers)
    }
}

/// Refuses a peer certificate that does not name `name`.
fn check_names(resolver: &CertResolver, name: &str, cert: &Path) -> Result<(), TlsError> {
    check_certified_names(&resolver.current(), name).map_err(|problem| TlsError::Bad {
        path: cert.to_path_buf(),
        problem,
    })
}

fn check_certified_names(certified: &rustls::sign::CertifiedKey, name: &str) -> Result<(), String> {
    let Some(leaf) = certified.cert.first() else {
        return Err("holds no certificate".into());
    };
    if labrpc::security::certificate_names(leaf.as_ref(), name) {
        Ok(())
    } else {
        Err(format!(
            "does not name {name} (a peer certificate must carry its node's name as a DNS SAN)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{DemoCertificates, generate_cluster_certificates};

    /// Answers the caller labrpc's policy admitted.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct WhoAmI;
    impl labrpc::Rpc for WhoAmI {
        const NAME: &'static str = "test.WhoAmI";
        type Reply = Option<u64>;
    }

    fn settings(certificates: &DemoCertificates, node_id: u64) -> TlsSettings {
        let (cert, key) = certificates.peers[&node_id].clone();
        TlsSettings {
            cert: certificates.cert.clone(),
            key: certificates.key.clone(),
            client_ca: None,
            ca: None,
            peer_ca: Some(certificates.ca.clone()),
            peer_cert: Some(cert),
            peer_key: Some(key),
        }
    }

    fn security(files: &PeerTlsFiles, node_id: u64) -> labrpc::PeerSecurity {
        labrpc::PeerSecurity::with_tls(
            labrpc::PeerIdentity {
                cluster_id: "t".into(),
                node_id,
            },
            labrpc::Members::Any,
            files.labrpc().expect("rustls configurations"),
        )
    }

    /// Whether node 2, with `files`, gets an answer from `addr`.
    async fn admitted(files: &PeerTlsFiles, addr: std::net::SocketAddr) -> bool {
        let client = labrpc::Client::new(labrpc::ClientConfig {
            timeout: std::time::Duration::from_secs(5),
            security: security(files, 2),
            ..labrpc::ClientConfig::default()
        });
        client.call(addr, &WhoAmI).await == Ok(Some(2))
    }

    /// A cluster moves to a new CA: node 1's files are replaced and
    /// reloaded (what SIGHUP does); its server then admits node 2 with the
    /// new CA's certificate and refuses the old one. A certificate that
    /// does not name node 1 is not taken on reload: the previous stays.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_brings_in_a_new_cluster_ca_and_refuses_a_certificate_for_another_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = generate_cluster_certificates(&dir.path().join("old"), &[], "t", &[1, 2])
            .expect("old CA");
        let new = generate_cluster_certificates(&dir.path().join("new"), &[], "t", &[1, 2])
            .expect("new CA");
        // Node 1's files live where its configuration says, and change.
        let live = dir.path().join("live");
        std::fs::create_dir_all(&live).expect("mkdir");
        let (ca, cert, key) = (
            live.join("ca.pem"),
            live.join("peer.pem"),
            live.join("peer-key.pem"),
        );
        let install = |from: &DemoCertificates, node_id: u64| {
            std::fs::copy(&from.ca, &ca).expect("ca");
            std::fs::copy(&from.peers[&node_id].0, &cert).expect("cert");
            std::fs::copy(&from.peers[&node_id].1, &key).expect("key");
        };
        install(&old, 1);
        let node_1_settings = TlsSettings {
            peer_ca: Some(ca.clone()),
            peer_cert: Some(cert.clone()),
            peer_key: Some(key.clone()),
            ..settings(&old, 1)
        };
        let files = PeerTlsFiles::from_settings(&node_1_settings, "t", 1)
            .expect("node 1's files")
            .expect("peer TLS on");
        let mut router = labrpc::Router::new();
        router.add(|WhoAmI| async { labrpc::caller() });
        let server = labrpc::Server::start(
            "127.0.0.1:0".parse().expect("addr"),
            router,
            labrpc::ServerConfig {
                security: security(&files, 1),
                ..labrpc::ServerConfig::default()
            },
        )
        .await
        .expect("serve");
        let addr = server.local_addr();
        let node_2_old = PeerTlsFiles::from_settings(&settings(&old, 2), "t", 2)
            .expect("old node 2")
            .expect("on");
        let node_2_new = PeerTlsFiles::from_settings(&settings(&new, 2), "t", 2)
            .expect("new node 2")
            .expect("on");
        assert!(admitted(&node_2_old, addr).await, "the old CA, before");
        assert!(!admitted(&node_2_new, addr).await, "the new CA, before");

        // Node 2's certificate in node 1's place: refused, the old stays.
        install(&old, 2);
        let error = files.reload().expect_err("a certificate for node 2");
        assert!(
            error
                .to_string()
                .contains("does not name node-1.t.distcache"),
            "{error}"
        );
        std::fs::copy(&old.peers[&1].0, &cert).expect("cert back");
        std::fs::copy(&old.peers[&1].1, &key).expect("key back");

        install(&new, 1);
        files.reload().expect("the new CA and certificate");
        assert!(admitted(&node_2_new, addr).await, "the new CA, after");
        assert!(!admitted(&node_2_old, addr).await, "the old CA, after");
        server.shutdown().await.expect("shutdown");
    }
}
