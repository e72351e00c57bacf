//! # shardkv: sharded key/value with migration (6.5840 Lab 5B) — not built yet
//!
//! This crate will hold the replica groups that serve the shards the current
//! configuration gives them, reject keys they do not own (`WrongGroup`), move
//! shards between groups as configurations change, delete shards they no longer
//! own and keep serving shards a change does not touch.
