//! What a client call can end in besides success.

/// Why an operation did not give an answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The request is invalid (empty key, TTL of 0, over a size limit);
    /// nothing changed.
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// No node gave an answer before the deadline. A write may or may not
    /// have taken effect. `last_failure` is what the last attempt saw (a
    /// refused connection, a node without a leader, ...), so an operator
    /// can tell a wrong address from a cluster that lost its quorum.
    #[error(
        "no answer within {deadline_ms} ms after {attempts} attempts (last: {last_failure}); \
         a write's outcome is unknown"
    )]
    Timeout {
        deadline_ms: u64,
        attempts: u64,
        last_failure: String,
    },
    /// The server does not run this operation yet.
    #[error("the server does not implement {0}")]
    Unimplemented(String),
    /// The server refused for another reason (gRPC status code and message).
    #[error("server error {code}: {message}")]
    Server { code: String, message: String },
    /// No address to connect to, or an address that is not a URL.
    #[error("bad address {address:?}: {detail}")]
    BadAddress { address: String, detail: String },
    /// The client was built with no seed addresses.
    #[error("no seed addresses")]
    NoSeeds,
}

impl ClientError {
    /// Maps a final (not retried) gRPC status.
    pub(crate) fn from_status(status: &tonic::Status) -> ClientError {
        match status.code() {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => {
                ClientError::InvalidArgument(status.message().to_string())
            }
            tonic::Code::Unimplemented => ClientError::Unimplemented(status.message().to_string()),
            code => ClientError::Server {
                code: format!("{code:?}"),
                message: status.message().to_string(),
            },
        }
    }
}

/// Whether a status means "try again, maybe elsewhere" rather than a final
/// answer. A deadline or an unreachable node is retried (writes keep their
/// session seq, so a retried write applies once).
pub(crate) fn is_retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unknown
            | tonic::Code::Cancelled
            | tonic::Code::Aborted
            | tonic::Code::ResourceExhausted
    )
}
