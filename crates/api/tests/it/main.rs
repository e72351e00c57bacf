//! The integration tests of `api`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p api --test it FILE::`.

mod collections;
mod disk_tier;
mod keyspace;
mod known_replies;
mod lcs;
mod lists;
mod multi_pop;
mod multikey;
mod op_format;
mod operations;
mod ops;
mod set_algebra;
mod zsets;
