//! # sim-tests: the deterministic simulation suites
//!
//! One integration-test file per layer (`tests/labrpc.rs`, `tests/raft.rs`,
//! `tests/mapreduce.rs`, `tests/kvraft.rs`, `tests/shardctrler.rs`, `tests/shardkv.rs`,
//! `tests/shardkv_collections.rs` and `tests/kvraft_collections.rs` for hashes,
//! lists, sets and sorted sets, and
//! `tests/server.rs` for whole product nodes),
//! every test a `#[madsim::test]`
//! whose names follow the MIT 6.5840 lab tests (see the shared TESTS.md), and
//! the `swarm` binary, which runs a randomized fault mix per seed over every
//! layer built so far and prints a report. `src/collections.rs` is the
//! collection-command workload both the collections test and the swarm's
//! collections scenario run, recorded for the linearizability checker's
//! `collections` model.
//!
//! Everything here runs only under the simulator:
//!
//! ```text
//! RUSTFLAGS="--cfg madsim" cargo test -p sim-tests --target-dir target/sim
//! MADSIM_TEST_NUM=20 ...                   # twenty seeds per test
//! MADSIM_TEST_SEED=1234 ...                # replay one seed exactly
//! MADSIM_TEST_CHECK_DETERMINISM=1 ...      # run twice, compare every step
//! ```
//!
//! A failing test prints its seed (madsim does) and a message that says what
//! was expected and what was seen.

pub mod cached_reads;
#[cfg(madsim)]
pub mod collections;
#[cfg(madsim)]
pub mod harness;
#[cfg(madsim)]
pub mod kvraft;
#[cfg(madsim)]
pub mod raft;
#[cfg(madsim)]
pub mod replica_reads;
pub mod seeds;
#[cfg(madsim)]
pub mod server;
#[cfg(madsim)]
pub mod shardctrler;
#[cfg(madsim)]
pub mod shardkv;
pub mod staleness;
#[cfg(madsim)]
pub mod swarm;
