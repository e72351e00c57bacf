//! [`ShardMachine`] as the state machine that `rsm::Rsm` replicates.

use rsm::{ApplyContext, ReplicatedMachine, RestoreError, decode, encode};

use crate::machine::{GroupCommand, GroupOutput, ShardMachine};

impl ReplicatedMachine for ShardMachine {
    type Command = GroupCommand;
    type Output = GroupOutput;

    fn apply(&mut self, command: &GroupCommand, context: &ApplyContext) -> GroupOutput {
        ShardMachine::apply(self, command, context.now_ms)
    }

    fn snapshot(&self) -> Vec<u8> {
        encode(self)
    }

    fn restore(&self, snapshot: &[u8]) -> Result<ShardMachine, RestoreError> {
        let machine: ShardMachine = decode(snapshot)?;
        machine
            .check_invariants()
            .map_err(|detail| RestoreError::Inconsistent { detail })?;
        if machine.gid() != self.gid() {
            return Err(RestoreError::Inconsistent {
                detail: format!(
                    "snapshot of group {} restored in group {}",
                    machine.gid(),
                    self.gid()
                ),
            });
        }
        Ok(machine)
    }
}
