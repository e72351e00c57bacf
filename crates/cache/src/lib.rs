//! # cache: the data plane — not built yet
//!
//! This crate will hold every byte the system serves: the deterministic,
//! memory-bounded store inside each replica (eviction policies, TTL in logical
//! time, snapshots), the concurrent near cache, the consistent hash ring, the
//! hot-key detector and the `cache-trace` tool.
