//! The integration tests of `raft`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p raft --test it FILE::`.

mod cluster_lease;
mod cluster_membership;
mod cluster_safety;
mod core_bounds;
mod core_election;
mod core_hostile;
mod core_hostile_fuzz;
mod core_membership;
mod core_prevote;
mod core_read_index;
mod core_replication;
mod core_snapshot;
mod core_snapshot_pieces;
mod core_transfer;
mod core_vote_resend;
mod fixture;
mod node_lease;
mod node_loopback;
mod snapshot_from_disk;
mod snapshot_staging;
mod storage_failure;
mod storage_file;
mod storage_segments;
mod support;
