//! The shard controller as a [`ConfigSource`]: its clerk, with a short
//! deadline for the servers' polls (a poll that fails is retried on the
//! next round anyway). Polls and clerk refreshes read what the
//! controller's leader has applied ([`shardctrler::ConfigOp::QueryApplied`]),
//! so an idle cluster adds nothing to the controller's log; an answer that
//! lags by a moment only delays the next poll or costs the clerk one more
//! `WrongGroup`. Each group reports the configuration it applied, so the
//! controller can drop the ones no group needs; a number it dropped is
//! answered with the oldest it keeps.

use std::net::SocketAddr;
use std::time::Duration;

use shardctrler::{
    Clerk as ControllerClerk, ClerkConfig as ControllerClerkConfig,
    ClerkError as ControllerClerkError, Config, ConfigError, ControllerClient, Gid,
};

use crate::server::ConfigSource;

/// A controller clerk. Cheap to clone (clones share connections and the
/// leader hint; each is its own session for Join/Leave/Move).
#[derive(Clone)]
pub struct Controller {
    clerk: ControllerClerk,
}

impl Controller {
    /// A clerk of the controller replicas `servers` (in Raft id order),
    /// giving up on one query after 2 s.
    pub fn new(servers: Vec<SocketAddr>) -> Controller {
        Controller::with_security(servers, labrpc::PeerSecurity::default())
    }

    /// [`Controller::new`] calling under the peer policy `security` (a
    /// node's identity and mutual TLS).
    pub fn with_security(servers: Vec<SocketAddr>, security: labrpc::PeerSecurity) -> Controller {
        Controller::with_config(
            servers,
            ControllerClerkConfig {
                rpc_timeout: Duration::from_millis(500),
                operation_deadline: Duration::from_secs(2),
                security,
                ..ControllerClerkConfig::default()
            },
        )
    }

    pub fn with_config(servers: Vec<SocketAddr>, config: ControllerClerkConfig) -> Controller {
        Controller {
            clerk: ControllerClerk::new(servers, config),
        }
    }

    /// The clerk, for Join/Leave/Move (tests and operators).
    pub fn clerk(&self) -> &ControllerClerk {
        &self.clerk
    }
}

impl ConfigSource for Controller {
    async fn query(&self, num: Option<u64>) -> Option<Config> {
        match self.clerk.query_applied(num).await {
            Ok(config) => Some(config),
            Err(ControllerClerkError::Refused(ConfigError::Pruned { num, oldest })) => {
                // Fell behind what the controller keeps: the oldest kept,
                // which the group takes only if it holds no shard.
                tracing::warn!(
                    "configuration {num} is no longer kept by the controller; offering the \
                     oldest kept, {oldest}"
                );
                self.clerk.query_applied(Some(oldest)).await.ok()
            }
            Err(error) => {
                tracing::debug!("controller query failed: {error}");
                None
            }
        }
    }

    async fn report(&self, gid: Gid, num: u64) {
        if let Err(error) = self.clerk.report(gid, num).await {
            tracing::debug!(gid, num, "progress report failed: {error}");
        }
    }
}
