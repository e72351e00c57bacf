//! What this crate's integration tests share, so that each test file holds
//! only its scenario:
//!
//! | module | what |
//! |---|---|
//! | `cluster` | [`cluster::TestCluster`]: an in-process cluster of real nodes (real gRPC, Raft logs on disk, loopback TCP) from a builder |
//! | `processes` | real `distcache node` processes from configuration files: start, `kill -9`, SIGTERM, logs |
//! | `http` | one HTTP/1.1 request over plain TCP or any stream (TLS) |
//! | `resp` | one RESP command and its reply |
//! | `grpc` | a raw gRPC `Cache` client: a node's own answers, no retries |
//! | `keys` | write keys recording what was acknowledged, read them all back, wait on a condition |
//!
//! Each test binary (`tests/*.rs`) includes this module with `mod support;`
//! and uses only part of it; the rest would be dead code in that binary.
#![allow(dead_code)]

pub mod cluster;
pub mod grpc;
pub mod http;
pub mod keys;
pub mod processes;
pub mod resp;
