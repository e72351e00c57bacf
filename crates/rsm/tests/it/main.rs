//! The integration tests of `rsm`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p rsm --test it FILE::`.

mod early_acks;
mod end_to_end;
mod follower_reads;
mod group_client;
