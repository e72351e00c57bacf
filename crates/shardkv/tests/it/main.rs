//! The integration tests of `shardkv`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p shardkv --test it FILE::`.

mod decode_hostile;
mod machine;
mod machine_chunks;
mod machine_disk;
mod machine_lost;
mod machine_properties;
