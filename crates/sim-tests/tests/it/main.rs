//! The integration tests of `sim-tests`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p sim-tests --test it FILE::`.

mod async_replication;
mod blocking;
mod client_cache;
mod client_routing;
mod kvraft;
mod kvraft_collections;
mod labrpc;
mod load_balance;
mod mapreduce;
mod membership;
mod near_cache;
mod raft;
mod raft_node;
mod raft_storage;
mod replica_reads;
mod server;
mod shardctrler;
mod shardkv;
mod shardkv_capacity;
mod shardkv_collections;
mod shardkv_dead_donor;
mod shardkv_write_fence;
