//! [`ShardMachine`] as the state machine that `rsm::Rsm` replicates.

use rsm::{ApplyContext, ReplicatedMachine};

use crate::machine::{GroupCommand, GroupOutput, ShardMachine};

impl ReplicatedMachine for ShardMachine {
    type Command = GroupCommand;
    type Output = GroupOutput;

    fn apply(&mut self, command: &GroupCommand, context: &ApplyContext) -> GroupOutput {
        ShardMachine::apply(self, command, context.now_ms)
    }

    fn check_invariants(&self) -> Result<(), String> {
        ShardMachine::check_invariants(self)
    }

    fn check_compatible(&self, restored: &ShardMachine) -> Result<(), String> {
        if restored.gid() != self.gid() {
            return Err(format!(
                "snapshot of group {} restored in group {}",
                restored.gid(),
                self.gid()
            ));
        }
        Ok(())
    }
}
