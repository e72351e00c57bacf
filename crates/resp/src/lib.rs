//! # resp: the Redis protocol, without IO
//!
//! A sans-IO codec for RESP2 and RESP3 (inline commands too) and the
//! declarative Redis command table that turns a request into a typed
//! [`Command`]. Nothing here touches a socket, a clock or a runtime: the
//! RESP listener in `distcache` owns the connection and calls in.
//!
//! ```text
//!  socket bytes ─► Decoder::decode ─► Frame::Array of bulk strings
//!                  (limits, typed ProtocolError)        │
//!                                                       ▼
//!                              command::parse ─► (spec, Command) or CommandError
//!                              (one table: name, arity, flags, keys)   │
//!                                                       executor (server)
//!                                                       │
//!  socket bytes ◄─ encode(frame, Resp2 | Resp3) ◄─ Frame (reply)
//! ```
//!
//! ## The codec
//!
//! - [`Frame`] is one RESP3 value; RESP2 is a subset plus its two nulls.
//! - [`Decoder`] reads from a buffer that grows as bytes arrive. It
//!   consumes whole elements as soon as they are there and keeps the partly
//!   built frame on a stack, so a frame split into many reads costs linear
//!   time. In [`Mode::Requests`] it accepts what a Redis server accepts
//!   (arrays of bulk strings, inline lines); in [`Mode::Replies`] any RESP3
//!   frame. Streamed RESP3 types (`$?`, `*?`) are refused: no Redis
//!   sends them.
//! - Every length is bounded by [`Limits`]: bulk string bytes (the
//!   protocol's bound, Redis's 512 MiB `proto-max-bulk-len`), the longest
//!   request argument kept (the store's value limit, 1 MiB by default),
//!   aggregate length, nesting depth, line length (64 KiB, as Redis) and
//!   whole frame bytes; [`Limits::redis`] is Redis 7's, for reference. Bad
//!   input is a [`ProtocolError`] whose text is Redis's where Redis has
//!   one; the caller replies with it and closes the connection. One is not
//!   fatal ([`ProtocolError::is_recoverable`]): a request argument over the
//!   value limit. The decoder reads past its payload as it arrives,
//!   holding none of it, and refuses that request alone once it is whole
//!   (`-ERR string exceeds maximum allowed size ...`); the requests after
//!   it, in the same pipeline or later, are decoded as usual.
//! - [`encode`] writes any frame in either version, down-converting RESP3
//!   types for RESP2 connections as Redis 7 does.
//!
//! ## The command layer
//!
//! See [`command`]: one static table ([`command::COMMANDS`]) of name,
//! arity, flags, key positions, ACL categories and docs drives lookup
//! (case-insensitive), arity errors, `COMMAND COUNT/INFO/DOCS/LIST`, and
//! key extraction for routing; [`command::key_slot`] is Redis Cluster's
//! CRC16 slot with hash tags; [`command::glob_match`] is Redis's pattern
//! matcher for `KEYS`, `SCAN MATCH` and `CONFIG GET`.
//!
//! ## The session
//!
//! [`Session`] is one connection's state without IO: protocol version
//! (`HELLO 2/3`), name, library info. [`Session::handle`] answers what
//! needs no data (handshakes, `CLIENT`, `SELECT 0`, `QUIT`, `RESET`,
//! `PING`, `ECHO`, `COMMAND`, `CONFIG GET`, `HELP`, `CLUSTER KEYSLOT`, every
//! parse error) and returns [`Action::Execute`] for the rest, so the
//! server's listener is only sockets, buffers and execution.
//!
//! ## Users
//!
//! [`acl`]: users, SHA-256-hashed passwords, allowed commands by name and
//! category, key patterns, with Redis's ACL rule syntax. The session
//! answers `AUTH`, `HELLO ... AUTH` and `ACL WHOAMI` and refuses with
//! `-NOAUTH`/`-NOPERM` as Redis does; the HTTP and gRPC front ends check
//! the same users.
//!
//! ## Tests
//!
//! `cargo test -p resp`: exact-output unit tests for every type and
//! error, property tests (round trip in both versions, any split of the
//! input, arbitrary bytes never panic), and the command layer's error
//! strings checked against Redis 7's. A cargo-fuzz target lives in
//! `crates/resp/fuzz` (outside the workspace); `scripts/fuzz.sh
//! SECONDS resp/decode` runs it.

pub mod acl;
mod decode;
mod encode;
mod error;
mod frame;
mod inline;
mod limits;

pub mod command;
pub mod session;

pub use acl::{Acl, AclError, Denied, User};
pub use command::{Command, CommandError, MAX_STALENESS_MS};
pub use decode::{Decoder, Mode};
pub use encode::{encode, encode_to_vec, format_double};
pub use error::ProtocolError;
pub use frame::{Frame, Version};
pub use inline::split_inline;
pub use limits::{DEFAULT_MAX_BULK_BYTES, Limits, REDIS_MAX_BULK_BYTES, REDIS_MAX_INLINE_BYTES};
pub use session::{Action, ServerFacts, Session};
