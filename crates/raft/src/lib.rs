//! # raft: replicated log (6.5840 Lab 3) — not built yet
//!
//! This crate will hold the consensus layer: a sans-IO core (`tick`, `step`,
//! `propose`, and a `Ready` of things to persist, send and apply), an async node
//! driver that runs the core on the runtime seam and talks through `labrpc`, and
//! crash-safe storage (simulated fs in tests, checksummed real files in
//! production). See the shared DESIGN.md, section "raft".
