//! # raft: the replicated log (6.5840 Lab 3)
//!
//! placeholder overview, rewritten below.

pub mod core;
pub mod storage;
