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
    /// The cluster refused the operation with a typed [`api::Error`] (read
    /// from the status details, see [`crate::details`]): bad input over a
    /// limit ([`api::Error::TooLarge`], [`api::Error::ZeroTtl`]), an
    /// operation that does not fit what the key holds
    /// ([`api::Error::NotAnInteger`], [`api::Error::IncrementOverflow`],
    /// [`api::Error::WrongType`], ...), or a session seq older than the
    /// session's latest write ([`api::Error::Stale`]). Nothing changed.
    #[error("refused: {0}")]
    Refused(api::Error),
    /// The server does not run this operation yet.
    #[error("the server does not implement {0}")]
    Unimplemented(String),
    /// The server refused for another reason: gRPC status code, message,
    /// and the details' reason (`UNAUTHENTICATED`, `NO_PERMISSION`, ...;
    /// see [`crate::details::Reason`]) when the server sent one.
    #[error("server error {code}: {message}")]
    Server {
        code: String,
        message: String,
        reason: Option<String>,
    },
    /// No address to connect to, or an address that is not a URL.
    #[error("bad address {address:?}: {detail}")]
    BadAddress { address: String, detail: String },
    /// The client was built with no seed addresses.
    #[error("no seed addresses")]
    NoSeeds,
}

impl ClientError {
    /// Maps a final (not retried) gRPC status: its typed details first,
    /// else its code.
    pub(crate) fn from_status(status: &tonic::Status) -> ClientError {
        let info = crate::details::error_info(status);
        if let Some(error) = info.as_ref().and_then(crate::details::api_error) {
            return ClientError::Refused(error);
        }
        match status.code() {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => {
                ClientError::InvalidArgument(status.message().to_string())
            }
            tonic::Code::Unimplemented => ClientError::Unimplemented(status.message().to_string()),
            code => ClientError::Server {
                code: format!("{code:?}"),
                message: status.message().to_string(),
                reason: info.map(|info| info.reason),
            },
        }
    }
}

impl ClientError {
    /// The [`api::Error`] this is, if the cluster answered one, or the
    /// client's own timeout as [`api::Error::Timeout`].
    pub fn api_error(&self) -> Option<api::Error> {
        match self {
            ClientError::Refused(error) => Some(error.clone()),
            ClientError::Timeout {
                deadline_ms,
                attempts,
                ..
            } => Some(api::Error::Timeout {
                deadline_ms: *deadline_ms,
                attempts: *attempts,
            }),
            _ => None,
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
