//! The integration tests of `cache`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p cache --test it FILE::`.

mod cache_trace;
mod hotkeys;
mod near;
mod snapshot_format;
mod store;
mod store_disk;
mod store_model;
mod store_props;
mod store_types;
mod zset_order;
