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

/// `machine`'s snapshot, checked to be what its copy writes in place
/// (`ShardMachine::snapshot_into`, after bytes already in the buffer, as
/// the rsm calls it): the two encodings must not drift apart.
pub fn snapshot_checked(machine: &ShardMachine) -> Vec<u8> {
    let whole = machine.snapshot();
    let mut in_place = vec![0xAB; 21];
    machine.clone().snapshot_into(&mut in_place);
    assert_eq!(&in_place[..21], &[0xAB; 21], "the bytes before were kept");
    assert!(
        in_place[21..] == whole[..],
        "the snapshot written in place differs from the whole one ({} bytes against {})",
        in_place.len() - 21,
        whole.len()
    );
    whole
}

mod decode_hostile;
mod machine;
mod machine_chunks;
mod machine_disk;
mod machine_lost;
mod machine_properties;
mod machine_revision;
