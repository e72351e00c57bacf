//! The clerk: the client library of one kvraft group.
//!
//! A thin layer on [`GroupClient`] (leader finding, retries, backoff,
//! deadline) and [`ClientSession`] (exactly-once identity); the typed
//! operations are [`KvClient`]'s provided methods over [`Clerk::run`]. A
//! clerk is one session: its operations run one at a time (concurrent
//! calls on one clerk wait their turn), so a retry can always be matched
//! to its first attempt. [`Clone`] gives a new session that shares the
//! leader hint and the connections, so many tasks can each hold a clone
//! and run in parallel.

use std::net::SocketAddr;

use api::{Error, KvClient, Op, Outcome};
use rsm::group_client::{self, ClientSession, GroupClient, GroupClientConfig};

use crate::rpc::KvRequest;

/// How a clerk retries (the group client's settings).
pub type ClerkConfig = GroupClientConfig;

/// A client of one kvraft group. See the module docs.
pub struct Clerk {
    group: GroupClient,
    session: tokio::sync::Mutex<ClientSession>,
}

impl Clone for Clerk {
    /// A new session sharing the leader hint and connections.
    fn clone(&self) -> Clerk {
        Clerk {
            group: self.group.clone(),
            session: tokio::sync::Mutex::new(ClientSession::new()),
        }
    }
}

impl Clerk {
    /// # Panics
    /// If `servers` is empty.
    pub fn new(servers: Vec<SocketAddr>, config: ClerkConfig) -> Clerk {
        Clerk {
            group: GroupClient::new(servers, config),
            session: tokio::sync::Mutex::new(ClientSession::new()),
        }
    }

    /// This clerk's session id.
    pub async fn client_id(&self) -> u64 {
        self.session.lock().await.client_id()
    }
}

impl KvClient for Clerk {
    /// Sends `op` until a server applies it or the deadline passes
    /// ([`Error::Timeout`]); size and TTL refusals are final.
    async fn run(&self, op: Op) -> Result<Outcome, Error> {
        let mut session = self.session.lock().await;
        let request = KvRequest {
            client_id: session.client_id(),
            seq: session.take_seq(),
            op,
        };
        let result = self.group.call(&request, group_client::classify).await;
        drop(session);
        result.map_err(Error::from)
    }
}
