//! # kvraft: fault-tolerant key/value service (6.5840 Lab 4) — not built yet
//!
//! This crate will hold a linearizable key/value service on one Raft group:
//! Get, Put, Append, Delete and compare-and-set, exactly-once through
//! `(client_id, seq)`, snapshots when the Raft state grows past
//! `max_raft_state`, with the data in the `cache` crate's deterministic store.
