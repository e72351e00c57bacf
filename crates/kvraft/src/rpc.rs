//! What clerks send and servers answer: one request type for every
//! operation. The operations and answers themselves are the `api` crate's.

use api::{Op, Reply};
use serde::{Deserialize, Serialize};

/// A clerk's request: `(client_id, seq)` identifies it for exactly-once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRequest {
    pub client_id: u64,
    /// Increases by one per write of this client; a retry keeps its seq.
    pub seq: u64,
    pub op: Op,
}

impl labrpc::Rpc for KvRequest {
    const NAME: &'static str = "kvraft.Command";
    type Reply = Reply;
}
