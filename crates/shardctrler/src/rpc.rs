//! What clerks send and controller replicas answer.

use rsm::SubmitError;
use serde::{Deserialize, Serialize};

use crate::history::{ConfigAnswer, ConfigError, ConfigOp};

/// A clerk's request. `(client_id, seq)` identifies a Join, Leave or Move
/// for exactly-once; a Query carries seq 0 and is never recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerRequest {
    pub client_id: u64,
    pub seq: u64,
    pub op: ConfigOp,
}

impl labrpc::Rpc for ControllerRequest {
    const NAME: &'static str = "shardctrler.Command";
    type Reply = Reply;
}

/// A request a controller replica passes on to its leader, for a clerk
/// that does not know the leader's address (a replica that joined the
/// controller group after the clerk's list was made). Served like a
/// [`ControllerRequest`], but never passed on again: one hop at most.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedRequest(pub ControllerRequest);

impl labrpc::Rpc for ForwardedRequest {
    const NAME: &'static str = "shardctrler.Forwarded";
    type Reply = Reply;
}

/// A replica's answer.
pub type Reply = Result<ConfigAnswer, ServerError>;

/// Why a replica did not (or could not tell whether it did) apply a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ServerError {
    /// The replica did not apply it (not the leader, not seen applied in
    /// time, busy): the clerk retries as the rsm's error says.
    #[error("{0}")]
    Replica(#[from] SubmitError),
    /// The request is invalid for the configurations; nothing changed.
    #[error("refused: {0}")]
    Refused(ConfigError),
    /// A seq older than this client's latest change: its answer is gone.
    #[error("request seq {seq} is older than the client's latest ({latest})")]
    Stale { seq: u64, latest: u64 },
}
