//! # linearizability: a history checker — not built yet
//!
//! This crate will hold a Wing-Gong/Lowe checker partitioned by key, with `kv`
//! and `register` models, operations of unknown outcome, a time budget that
//! answers "unknown" rather than guessing, an HTML picture of failing histories
//! and a `linearizability` command-line tool.
