//! Bounds on everything a peer can make the decoder hold.

/// Redis's `proto-max-bulk-len` default: 512 MiB.
pub const REDIS_MAX_BULK_BYTES: usize = 512 * 1024 * 1024;
/// Redis's limit on an inline command line and on any `*`/`$` header line:
/// 64 KiB (`PROTO_INLINE_MAX_SIZE`).
pub const REDIS_MAX_INLINE_BYTES: usize = 64 * 1024;
/// The product's largest value (kvraft's default `max_value_bytes`, 1 MiB):
/// a bulk string longer than any value the store accepts cannot be a valid
/// argument, so the product default refuses it at the protocol level.
pub const DEFAULT_MAX_BULK_BYTES: usize = 1024 * 1024;

/// Limits the decoder enforces. Exceeding any of them is a
/// [`ProtocolError`](crate::ProtocolError); the caller then closes the
/// connection.
///
/// [`Limits::default`] is the product's setting; [`Limits::redis`] is
/// Redis 7's, kept as the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (also blob errors and verbatim strings), bytes.
    pub max_bulk_bytes: usize,
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
            max_aggregate_len: i32::MAX as usize,
            max_depth: 128,
            max_line_bytes: REDIS_MAX_INLINE_BYTES,
            max_frame_bytes: 1024 * 1024 * 1024,
        }
    }

    /// Limits sized for a store whose values are at most `max_value_bytes`:
    /// bulk strings up to that size, 1 Mi elements, depth 64, 64 KiB lines,
    /// and whole frames up to 64 values of the maximum size.
    pub const fn for_value_limit(max_value_bytes: usize) -> Self {
        Limits {
            max_bulk_bytes: max_value_bytes,
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
