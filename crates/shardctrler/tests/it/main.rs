//! The integration tests of `shardctrler`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p shardctrler --test it FILE::`.

mod clerk;
mod declare_lost;
mod history;
mod load;
mod machine;
mod placement;
mod retention;
