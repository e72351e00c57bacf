//! Peer authentication: who may call a node's labrpc server, and how a
//! node's calls say who it is.
//!
//! A [`PeerSecurity`] belongs to one node. Its clients put the node's
//! claimed identity (cluster id, node id) in every call's metadata and, with
//! [`PeerTls`], present the node's certificate (mutual TLS). Its servers
//! admit a call only if:
//!
//! ```text
//!  caller                                   callee: PeerSecurity::admit
//!  ──────                                   ──────────────────────────
//!  TLS handshake, node certificate   ──►   chain signed by the cluster CA?   (rustls;
//!                                           plain TCP or another CA: the     refused as
//!                                           handshake fails)                 tls_handshake)
//!  metadata distcache-cluster: C     ──►   C is this node's cluster?         wrong_cluster
//!  metadata distcache-node: N        ──►   N is a node of the cluster?       unknown_node
//!                                           the certificate names N           certificate_mismatch
//!                                           (DNS SAN node-N.C.distcache)?
//!  ── admitted: the handler runs with [`caller`] = Some(N) ──
//! ```
//!
//! A refused call is counted by reason ([`PeerSecurity::refusals`], a node
//! exports them as a metric), logged (the first few of each reason, then
//! one in [`LOG_EVERY`]) and answered `PERMISSION_DENIED`; nothing else
//! happens. Without a policy ([`PeerSecurity::default`]) every call is
//! admitted and carries no identity: the labs' tests and the simulation.
//!
//! Under madsim there is no TLS and the simulated wire carries no
//! metadata: a policy's checks apply on the production transport only.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The metadata entry naming the caller's cluster.
pub const CLUSTER_HEADER: &str = "distcache-cluster";
/// The metadata entry naming the caller's node id (decimal).
pub const NODE_HEADER: &str = "distcache-node";
/// After the first [`LOG_FIRST`] refusals of a reason, one in this many
/// is logged (a flood of forged calls must not flood the log).
pub const LOG_EVERY: u64 = 1000;
/// Refusals of each reason logged one by one before thinning out.
pub const LOG_FIRST: u64 = 10;

/// The DNS name a node's peer certificate must carry (as a subject
/// alternative name) to speak as node `node_id` of `cluster_id`.
pub fn certificate_name(cluster_id: &str, node_id: u64) -> String {
    format!("node-{node_id}.{cluster_id}.distcache")
}

/// Who a node is among its cluster's peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub cluster_id: String,
    pub node_id: u64,
}

/// Why a peer's call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// The call names no cluster or no node (or an unreadable one).
    NoIdentity,
    /// The call names another cluster.
    WrongCluster,
    /// The call names a node that is not a member of this cluster.
    UnknownNode,
    /// Mutual TLS is on and the connection carries no client certificate.
    NoCertificate,
    /// The client certificate does not name the node the call claims.
    CertificateMismatch,
    /// The TLS handshake failed: plain TCP, a certificate from another
    /// CA, no certificate, or a stall.
    TlsHandshake,
    /// The message names a sender (a Raft message's `from`) that is not
    /// the node that sent it: a node outside the group, or one replica
    /// speaking as another. Checked by the service (rsm), counted here.
    SenderMismatch,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::NoIdentity,
        Refusal::WrongCluster,
        Refusal::UnknownNode,
        Refusal::NoCertificate,
        Refusal::CertificateMismatch,
        Refusal::TlsHandshake,
        Refusal::SenderMismatch,
    ];

    /// The metric label of this reason.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NoIdentity => "no_identity",
            Refusal::WrongCluster => "wrong_cluster",
            Refusal::UnknownNode => "unknown_node",
            Refusal::NoCertificate => "no_certificate",
            Refusal::CertificateMismatch => "certificate_mismatch",
            Refusal::TlsHandshake => "tls_handshake",
            Refusal::SenderMismatch => "sender_mismatch",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.label())
    }
}

/// The rustls configurations of a node's peer traffic (production only).
///
/// `server` must require a client certificate signed by the cluster's CA
/// (rustls refuses the handshake otherwise); `client` must trust only that
/// CA and present the node's certificate. Both may resolve certificates
/// and CAs through reloadable resolvers: each new connection's handshake
/// takes what they hold then.
#[cfg(not(madsim))]
#[derive(Clone)]
pub struct PeerTls {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
}

#[cfg(not(madsim))]
impl fmt::Debug for PeerTls {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PeerTls")
    }
}

/// Which nodes of its cluster a policy admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Members {
    /// Only these node ids (and the policy's own node).
    Listed(BTreeSet<u64>),
    /// Any node id of the cluster: who is a member is then decided by
    /// mutual TLS (a certificate the cluster's CA signed, naming the
    /// node). A distcache cluster grows at run time (a new group's nodes
    /// are not in the older nodes' tables), so its nodes admit any id.
    Any,
}

impl Members {
    pub fn listed(nodes: impl IntoIterator<Item = u64>) -> Members {
        Members::Listed(nodes.into_iter().collect())
    }

    fn contains(&self, node: u64) -> bool {
        match self {
            Members::Listed(nodes) => nodes.contains(&node),
            Members::Any => true,
        }
    }
}

struct Policy {
    me: PeerIdentity,
    members: Members,
    #[cfg(not(madsim))]
    tls: Option<PeerTls>,
    refused: [AtomicU64; Refusal::ALL.len()],
}

/// A node's peer policy, shared by its labrpc servers and clients (cheap
/// to clone). The default has no policy: every call is admitted.
#[derive(Clone, Default)]
pub struct PeerSecurity {
    policy: Option<Arc<Policy>>,
}

impl fmt::Debug for PeerSecurity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.policy {
            None => formatter.write_str("PeerSecurity(none)"),
            Some(policy) => {
                let mut debug = formatter.debug_struct("PeerSecurity");
                debug
                    .field("me", &policy.me)
                    .field("members", &policy.members);
                #[cfg(not(madsim))]
                debug.field("tls", &policy.tls.is_some());
                debug.finish()
            }
        }
    }
}

impl PeerSecurity {
    /// A policy for node `me`: calls are admitted from the nodes in
    /// `members` of `me.cluster_id` (this node included: it calls its own
    /// replicas too).
    pub fn new(me: PeerIdentity, members: Members) -> PeerSecurity {
        PeerSecurity::build(
            me,
            members,
            #[cfg(not(madsim))]
            None,
        )
    }

    /// [`PeerSecurity::new`] with mutual TLS on every peer connection.
    #[cfg(not(madsim))]
    pub fn with_tls(me: PeerIdentity, members: Members, tls: PeerTls) -> PeerSecurity {
        PeerSecurity::build(me, members, Some(tls))
    }

    fn build(
        me: PeerIdentity,
        mut members: Members,
        #[cfg(not(madsim))] tls: Option<PeerTls>,
    ) -> PeerSecurity {
        if let Members::Listed(nodes) = &mut members {
            nodes.insert(me.node_id);
        }
        PeerSecurity {
            policy: Some(Arc::new(Policy {
                me,
                members,
                #[cfg(not(madsim))]
                tls,
                refused: std::array::from_fn(|_| AtomicU64::new(0)),
            })),
        }
    }

    /// Who this node claims to be on its calls; none without a policy.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.policy.as_ref().map(|policy| &policy.me)
    }

    /// The rustls configurations, when peer traffic runs over mutual TLS.
    #[cfg(not(madsim))]
    pub fn tls(&self) -> Option<&PeerTls> {
        self.policy.as_ref().and_then(|policy| policy.tls.as_ref())
    }

    /// Calls refused since this policy was made, by reason (every reason,
    /// zeros included).
    pub fn refusals(&self) -> Vec<(Refusal, u64)> {
        Refusal::ALL
            .iter()
            .map(|&reason| {
                let count = self.policy.as_ref().map_or(0, |policy| {
                    policy.refused[reason.index()].load(Ordering::Relaxed)
                });
                (reason, count)
            })
            .collect()
    }

    /// Checks a call's claimed identity (`cluster`, `node`: its metadata)
    /// and, with mutual TLS, the client certificate the connection
    /// presented. `Ok(Some(node))`: admitted from `node`; `Ok(None)`: no
    /// policy, admitted anonymously. A refusal is counted and logged.
    pub fn admit(
        &self,
        from: Option<SocketAddr>,
        cluster: Option<&str>,
        node: Option<&str>,
        certificate: Option<&[u8]>,
    ) -> Result<Option<u64>, Refusal> {
        let Some(policy) = &self.policy else {
            return Ok(None);
        };
        let checked = policy.check(cluster, node, certificate);
        if let Err(reason) = checked {
            self.note_refusal(
                reason,
                from,
                &format!("claims cluster {cluster:?}, node {node:?}"),
            );
        }
        checked.map(Some)
    }

    /// Counts and logs a refusal (a failed handshake is noted by the
    /// transport this way too).
    pub fn note_refusal(&self, reason: Refusal, from: Option<SocketAddr>, detail: &str) {
        let Some(policy) = &self.policy else {
            return;
        };
        let count = policy.refused[reason.index()].fetch_add(1, Ordering::Relaxed) + 1;
        if count <= LOG_FIRST || count % LOG_EVERY == 0 {
            tracing::warn!(
                node = policy.me.node_id,
                cluster = %policy.me.cluster_id,
                from = ?from,
                %reason,
                refused_so_far = count,
                "peer call refused: {detail}"
            );
        }
    }
}

impl Policy {
    fn check(
        &self,
        cluster: Option<&str>,
        node: Option<&str>,
        certificate: Option<&[u8]>,
    ) -> Result<u64, Refusal> {
        let (Some(cluster), Some(node)) = (cluster, node) else {
            return Err(Refusal::NoIdentity);
        };
        let node: u64 = node.parse().map_err(|_| Refusal::NoIdentity)?;
        if cluster != self.me.cluster_id {
            return Err(Refusal::WrongCluster);
        }
        if !self.members.contains(node) {
            return Err(Refusal::UnknownNode);
        }
        #[cfg(not(madsim))]
        if self.tls.is_some() {
            let certificate = certificate.ok_or(Refusal::NoCertificate)?;
            if !certificate_names(certificate, &certificate_name(cluster, node)) {
                return Err(Refusal::CertificateMismatch);
            }
        }
        #[cfg(madsim)]
        let _ = certificate;
        Ok(node)
    }
}

/// Whether the DER certificate `certificate` is valid for the DNS name
/// `name` (its subject alternative names; rustls already checked its
/// chain during the handshake).
#[cfg(not(madsim))]
pub fn certificate_names(certificate: &[u8], name: &str) -> bool {
    use rustls::pki_types::{CertificateDer, ServerName};
    let Ok(name) = ServerName::try_from(name) else {
        return false;
    };
    let der = CertificateDer::from(certificate);
    let Ok(parsed) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    parsed.verify_is_valid_for_subject_name(&name).is_ok()
}

tokio::task_local! {
    static CALLER: u64;
}

/// The node whose call the current handler serves, as its policy admitted
/// it; `None` without a policy (or outside a handler).
pub fn caller() -> Option<u64> {
    CALLER.try_with(|node| *node).ok()
}

/// Runs `future` with `node` as [`caller`].
pub(crate) async fn as_caller<F: std::future::Future>(node: Option<u64>, future: F) -> F::Output {
    match node {
        Some(node) => CALLER.scope(node, future).await,
        None => future.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PeerSecurity {
        PeerSecurity::new(
            PeerIdentity {
                cluster_id: "prod".into(),
                node_id: 1,
            },
            Members::listed([2, 3]),
        )
    }

    #[test]
    fn a_member_of_the_cluster_is_admitted_and_others_refused() {
        let security = policy();
        assert_eq!(
            security.admit(None, Some("prod"), Some("2"), None),
            Ok(Some(2))
        );
        assert_eq!(
            security.admit(None, Some("prod"), Some("1"), None),
            Ok(Some(1))
        );
        assert_eq!(
            security.admit(None, Some("test"), Some("2"), None),
            Err(Refusal::WrongCluster)
        );
        assert_eq!(
            security.admit(None, Some("prod"), Some("9"), None),
            Err(Refusal::UnknownNode)
        );
        assert_eq!(
            security.admit(None, None, Some("2"), None),
            Err(Refusal::NoIdentity)
        );
        assert_eq!(
            security.admit(None, Some("prod"), Some("two"), None),
            Err(Refusal::NoIdentity)
        );
        let counts: Vec<(Refusal, u64)> = security
            .refusals()
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .collect();
        assert_eq!(
            counts,
            vec![
                (Refusal::NoIdentity, 2),
                (Refusal::WrongCluster, 1),
                (Refusal::UnknownNode, 1)
            ]
        );
    }

    #[test]
    fn without_a_policy_everyone_is_admitted_anonymously() {
        let security = PeerSecurity::default();
        assert_eq!(security.admit(None, None, None, None), Ok(None));
        assert!(security.refusals().iter().all(|(_, count)| *count == 0));
    }
}
