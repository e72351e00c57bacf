//! The integration tests of `shardkv`, one module per former test file,
//! built as one binary: every file a binary of its own linked the whole
//! dependency tree again and compiled the same generic code once per file.
//! Run one file's tests with `cargo test -p shardkv --test it FILE::`.

use shardkv::{GroupCommand, GroupOutput, ShardMachine};

/// A machine as its group's first leader leaves it: the stores' capacity
/// written in the log (`SetStoreCapacity`), so it takes client writes.
pub fn logged(mut machine: ShardMachine) -> ShardMachine {
    let capacity_bytes = machine.store_capacity_bytes();
    let output = machine.apply(&GroupCommand::SetStoreCapacity { capacity_bytes }, 0);
    assert!(
        matches!(output, GroupOutput::StoreCapacity { applied: true, .. }),
        "{output:?}"
    );
    machine
}

mod decode_hostile;
mod machine;
mod machine_chunks;
mod machine_disk;
mod machine_lost;
mod machine_properties;
