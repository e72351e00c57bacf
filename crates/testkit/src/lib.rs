//! # testkit: what the real-network tests and benches share
//!
//! Only for tests, benches and test harnesses (a dev-dependency), never
//! for a node: the rsm's integration tests, kvraft's throughput bench and
//! the `distcache` crate's in-process and real-process tests take their
//! loopback ports here, so parallel test binaries do not collide and no
//! node restarted on its port finds it taken by an outgoing connection.
//!
//! ## Pieces
//!
//! | file | what |
//! |---|---|
//! | `ports.rs` | [`ports::free_port_block`], [`ports::free_ports`], [`ports::free_addrs`]: blocks of free loopback ports below the kernel's ephemeral range |
//!
//! ## Tests
//!
//! ```text
//! cargo test -p testkit
//! ```

pub mod ports;
