//! Bounds on everything a peer can make the decoder hold.

/// Redis's `proto-max-bulk-len` default: 512 MiB.
pub const REDIS_MAX_BULK_BYTES: usize = 512 * 1024 * 1024;
/// Redis's limit on an inline command line and on any `*`/`$` header line:
/// 64 KiB (`PROTO_INLINE_MAX_SIZE`).
pub const REDIS_MAX_INLINE_BYTES: usize = 64 * 1024;
/// The product's largest value (kvraft's default `max_value_bytes`, 1 MiB):
/// a bulk string longer than any value the store accepts cannot be a valid
/// argument, so the product default keeps no request argument longer than
/// this ([`Limits::max_argument_bytes`]).
pub const DEFAULT_MAX_BULK_BYTES: usize = 1024 * 1024;

/// Limits the decoder enforces. Exceeding any of them is a
/// [`ProtocolError`](crate::ProtocolError); the caller then closes the
/// connection, except after [`ProtocolError::ArgumentTooLarge`]
/// (a request argument over [`Limits::max_argument_bytes`] but within
/// [`Limits::max_bulk_bytes`]), which the decoder reads past in bounded
/// memory, so the caller answers it with an error and carries on.
///
/// [`ProtocolError::ArgumentTooLarge`]: crate::ProtocolError::ArgumentTooLarge
///
/// [`Limits::default`] is the product's setting; [`Limits::redis`] is
/// Redis 7's, kept as the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (also blob errors and verbatim strings), bytes:
    /// the protocol's bound (Redis's `proto-max-bulk-len`). A longer one
    /// is a protocol error that ends the connection.
    pub max_bulk_bytes: usize,
    /// Longest request argument the decoder keeps, bytes (the value
    /// limit). A request whose bulk string is longer (up to
    /// `max_bulk_bytes`) has that payload read and dropped as it arrives,
    /// never buffered whole, and is refused as a whole with
    /// [`ProtocolError::ArgumentTooLarge`](crate::ProtocolError) once it
    /// has been read; the requests after it decode normally. Replies
    /// (the client side) are not subject to it.
    pub max_argument_bytes: usize,
    /// Most elements in one aggregate (array, set, push; entries of a map).
    pub max_aggregate_len: usize,
    /// Deepest nesting of aggregates; a request (a flat array) has depth 1.
    pub max_depth: usize,
    /// Longest line: an inline command, a simple string or error, a header.
    pub max_line_bytes: usize,
    /// Largest whole frame, headers included, bytes. Bounds what one
    /// connection's input buffer must hold.
    pub max_frame_bytes: usize,
}

impl Limits {
    /// Redis 7.0's defaults: 512 MiB bulk strings, `INT_MAX` elements,
    /// 64 KiB lines, 1 GiB per request (`client-query-buffer-limit`). Redis
    /// requests are flat, so the depth Redis never needs is set to 128.
    pub const fn redis() -> Self {
        Limits {
            max_bulk_bytes: REDIS_MAX_BULK_BYTES,
            max_argument_bytes: REDIS_MAX_BULK_BYTES,
            max_aggregate_len: i32::MAX as usize,
            max_depth: 128,
            max_line_bytes: REDIS_MAX_INLINE_BYTES,
            max_frame_bytes: 1024 * 1024 * 1024,
        }
    }

    /// Limits sized for a store whose values are at most `max_value_bytes`:
    /// request arguments kept up to that size (longer ones, up to Redis's
    /// 512 MiB `proto-max-bulk-len`, skipped and refused), 1 Mi elements,
    /// depth 64, 64 KiB lines, and whole frames up to 64 values of the
    /// maximum size (skipped payloads do not count: they are not held).
    pub const fn for_value_limit(max_value_bytes: usize) -> Self {
        Limits {
            max_bulk_bytes: if max_value_bytes > REDIS_MAX_BULK_BYTES {
                max_value_bytes
            } else {
                REDIS_MAX_BULK_BYTES
            },
            max_argument_bytes: max_value_bytes,
            max_aggregate_len: 1024 * 1024,
            max_depth: 64,
            max_line_bytes: REDIS_MAX_INLINE_BYTES,
            max_frame_bytes: max_value_bytes.saturating_mul(64),
        }
    }
}

impl Default for Limits {
    /// The product default: [`Limits::for_value_limit`] with
    /// [`DEFAULT_MAX_BULK_BYTES`].
    fn default() -> Self {
        Limits::for_value_limit(DEFAULT_MAX_BULK_BYTES)
    }
}
