//! The codec's one error type.

use thiserror::Error;

/// Bad input on the wire. After one, the stream cannot be resynchronised:
/// the caller replies with `ProtocolError::to_string` as an error (Redis
/// does: `-ERR Protocol error: ...`) and closes the connection. The one
/// exception is [`ProtocolError::ArgumentTooLarge`]
/// ([`ProtocolError::is_recoverable`]): the decoder has read the whole
/// request and is ready for the next, so the caller answers that request
/// with the error and keeps the connection.
///
/// The messages of the variants Redis also has are Redis 7's, word for word.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// An aggregate length that is not a number, negative (other than a
    /// RESP2 null), or above [`Limits::max_aggregate_len`](crate::Limits).
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A bulk length that is not a number, negative (other than a RESP2
    /// null), or above [`Limits::max_bulk_bytes`](crate::Limits).
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A `*` header line longer than the line limit.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `$` header line longer than the line limit.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// An inline command line longer than the line limit.
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// An inline command whose quotes do not close (or close mid-word).
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A request element that is not a bulk string.
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedBulk(u8),
    /// Any other line longer than the line limit.
    #[error("Protocol error: line longer than {limit} bytes")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// A line ending in a lone CR, or a bulk payload not followed by CRLF.
    #[error("Protocol error: expected CRLF")]
    ExpectedCrlf,
    /// A byte that starts no RESP3 type.
    #[error("Protocol error: unknown type byte '{}'", char::from(*.0))]
    UnknownType(u8),
    /// An integer frame (`:`) that is not a signed 64-bit decimal.
    #[error("Protocol error: invalid integer")]
    InvalidInteger,
    /// A double frame (`,`) that is not a RESP3 double.
    #[error("Protocol error: invalid double")]
    InvalidDouble,
    /// A boolean frame (`#`) other than `t` or `f`.
    #[error("Protocol error: invalid boolean")]
    InvalidBoolean,
    /// A null frame (`_`) with content.
    #[error("Protocol error: invalid null")]
    InvalidNull,
    /// A big number frame (`(`) that is not a signed decimal.
    #[error("Protocol error: invalid big number")]
    InvalidBigNumber,
    /// A verbatim string (`=`) without its `xxx:` format prefix.
    #[error("Protocol error: invalid verbatim string")]
    InvalidVerbatim,
    /// RESP3 streamed strings and aggregates (`$?`, `*?`, ...), which no
    /// Redis server or client sends, are not supported.
    #[error("Protocol error: streamed types are not supported")]
    StreamedNotSupported,
    /// Aggregates nested deeper than the limit.
    #[error("Protocol error: nesting deeper than {limit}")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// A frame larger than the limit.
    #[error("Protocol error: frame larger than {limit} bytes")]
    FrameTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A request with a bulk string over
    /// [`Limits::max_argument_bytes`](crate::Limits) (the value limit).
    /// The request has been read whole and dropped: only this request is
    /// refused. Worded as Redis's refusal of a string over its size limit
    /// (`SETRANGE`, `APPEND`), since the value could never be stored.
    #[error(
        "string exceeds maximum allowed size (an argument of {length_bytes} bytes; values are limited to {limit_bytes} bytes)"
    )]
    ArgumentTooLarge {
        /// The first oversized argument's length.
        length_bytes: usize,
        /// The limit in force.
        limit_bytes: usize,
    },
}

impl ProtocolError {
    /// Whether the connection can go on: the decoder has consumed the
    /// refused request whole and the next request starts cleanly.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, ProtocolError::ArgumentTooLarge { .. })
    }
}
