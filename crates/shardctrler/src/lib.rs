//! # shardctrler: the shard controller (6.5840 Lab 5A) — being built
//!
//! This crate will hold the Raft-replicated configuration service (Join, Leave,
//! Move, Query) and its deterministic placement function: balanced (largest
//! group holds at most one shard more than the smallest) and moving the fewest
//! shards. So far: the [`Config`] type that shardkv reads.

pub mod config;

pub use config::{Config, Gid, UNASSIGNED};
