//! The clerk: the client library of one kvraft group.
//!
//! A thin layer on rsm's [`SessionClient`] (leader finding, retries,
//! backoff, deadline, one exactly-once session); the typed
//! operations are [`KvClient`]'s provided methods over [`Clerk::run`]. A
//! clerk is one session: its operations run one at a time (concurrent
//! calls on one clerk wait their turn), so a retry can always be matched
//! to its first attempt. [`Clone`] gives a new session that shares the
//! leader hint and the connections, so many tasks can each hold a clone
//! and run in parallel.

use std::net::SocketAddr;

use api::{Error, KvClient, Op, Outcome};
use rsm::group_client::{self, GroupClientConfig, SessionClient};

use crate::rpc::KvRequest;

/// How a clerk retries (the group client's settings).
pub type ClerkConfig = GroupClientConfig;

/// A client of one kvraft group. See the module docs.
#[derive(Clone)]
pub struct Clerk {
    session: SessionClient,
}

impl Clerk {
    /// # Panics
    /// If `servers` is empty.
    pub fn new(servers: Vec<SocketAddr>, config: ClerkConfig) -> Clerk {
        Clerk {
            session: SessionClient::new(servers, config),
        }
    }

    /// This clerk's session id.
    pub async fn client_id(&self) -> u64 {
        self.session.client_id().await
    }
}

impl KvClient for Clerk {
    /// Sends `op` until a server applies it or the deadline passes
    /// ([`Error::Timeout`]); size and TTL refusals are final.
    async fn run(&self, op: Op) -> Result<Outcome, Error> {
        let request = |client_id, seq| KvRequest { client_id, seq, op };
        self.session
            .call(request, group_client::classify)
            .await
            .map_err(Error::from)
    }
}
