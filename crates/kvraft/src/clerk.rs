//! The clerk: the client library of one kvraft group.
//!
//! The rsm's [`SessionClerk`] over [`KvRequest`]: leader finding, retries,
//! backoff, deadline and one exactly-once session are the rsm's group
//! client; the typed operations are [`api::KvClient`]'s provided methods
//! over its `run`. A clerk is one session: its operations run one at a
//! time (concurrent calls on one clerk wait their turn), so a retry can
//! always be matched to its first attempt. [`Clone`] gives a new session
//! that shares the leader hint and the connections, so many tasks can each
//! hold a clone and run in parallel.

use rsm::group_client::{GroupClientConfig, SessionClerk, SessionRequest};

use crate::rpc::KvRequest;

/// How a clerk retries (the group client's settings).
pub type ClerkConfig = GroupClientConfig;

/// A client of one kvraft group. See the module docs.
pub type Clerk = SessionClerk<KvRequest>;

impl SessionRequest for KvRequest {
    type Op = api::Op;

    fn from_session(client_id: u64, seq: u64, op: api::Op) -> KvRequest {
        KvRequest { client_id, seq, op }
    }
}
