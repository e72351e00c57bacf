//! The integration tests of `resp`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p resp --test it FILE::`.

mod blocking_commands;
mod codec;
mod codec_props;
mod commands;
mod session;
mod zset_commands;
