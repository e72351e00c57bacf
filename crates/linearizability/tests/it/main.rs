//! The integration tests of `linearizability`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p linearizability --test it FILE::`.

mod cli;
mod common;
mod examples;
mod html;
mod properties;
