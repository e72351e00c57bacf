//! The integration tests of `labrpc`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p labrpc --test it FILE::`.

mod call_stream;
mod grpc;
mod peer_security;
