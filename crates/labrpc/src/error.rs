//! What can go wrong with a call, as typed values (never a panic).

use std::net::SocketAddr;

/// Encoding or decoding a message failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct CodecError {
    /// What the codec said.
    pub detail: String,
}

impl From<codec::CodecError> for CodecError {
    fn from(error: codec::CodecError) -> CodecError {
        CodecError {
            detail: error.to_string(),
        }
    }
}

/// Why a call did not produce a reply.
///
/// Every variant names the peer and, where known, the method, so a log line
/// is enough to tell which call failed and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The call's deadline passed first. The request may or may not have run.
    #[error("call {method} to {peer} timed out after {timeout_ms} ms")]
    Timeout {
        peer: SocketAddr,
        method: &'static str,
        timeout_ms: u64,
    },
    /// The peer could not be reached, or the request or the reply was lost
    /// (in simulation: a disconnected node, a cut link, a dropped message,
    /// or a killed server). The request may or may not have run.
    #[error("call {method} to {peer} failed: {reason}")]
    Unreachable {
        peer: SocketAddr,
        method: &'static str,
        reason: String,
    },
    /// A request or reply over the size limit. Nothing was executed when the
    /// request was too large; when the reply was, the handler did run.
    #[error("call {method} to {peer} refused: {detail}")]
    TooLarge {
        peer: SocketAddr,
        method: &'static str,
        detail: String,
    },
    /// The peer has no handler registered for this method.
    #[error("peer {peer} has no handler for {method}")]
    NoSuchMethod {
        peer: SocketAddr,
        method: &'static str,
    },
    /// A message could not be encoded or decoded (a bug or a version mismatch).
    #[error("call {method} to {peer}: bad message: {detail}")]
    Codec {
        peer: SocketAddr,
        method: &'static str,
        detail: String,
    },
    /// The peer answered with an error of another kind.
    #[error("call {method} to {peer}: peer answered {code}: {message}")]
    Remote {
        peer: SocketAddr,
        method: &'static str,
        code: String,
        message: String,
    },
}
