//! # mapreduce: 6.5840 Lab 1 — not built yet
//!
//! This crate will hold the MapReduce coordinator and workers, talking over
//! `labrpc`, with the lab's applications compiled in.
