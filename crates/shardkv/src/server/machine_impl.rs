//! [`ShardMachine`] as the state machine that `rsm::Rsm` replicates.

use rsm::{ApplyContext, ReplicatedMachine, RestoreError};

use crate::machine::{GroupCommand, GroupOutput, ShardMachine};

impl ReplicatedMachine for ShardMachine {
    type Command = GroupCommand;
    type Output = GroupOutput;

    /// 2: `GroupCommand::GroupsLost`, the lost-group and lost-shard state
    /// and `Config::lost_groups` (issue 13). A replica of an older build
    /// refuses such entries and snapshots with an error naming the version
    /// instead of misreading them. This build does not read version 1
    /// snapshots or entries (`Reconfigure` entries' configurations lack
    /// `lost_groups`, and telling them apart would mean decoding them):
    /// they are refused with an error naming the version, never decoded
    /// into the new shape; a group's data from before is not carried over.
    ///
    /// 3: the wall-clock instant of a key's deadline (`api::SetTtl::At`,
    /// `api::GetExTtl::At`, `Op::Expire`'s `unix_ms`, `Op::ExpireTime`,
    /// and the store entry's `expire_at_unix_ms`; `Op::Lcs` and
    /// `Outcome::LcsMatches`; issue 16). `Op::Expire` and the store's
    /// entries changed shape, so version 2 entries and snapshots are
    /// refused the same way.
    ///
    /// 4: `ListOp::MultiPop` and `ZSetOp::MultiPop` (`LMPOP`, `ZMPOP` and
    /// the blocking pops), their answers `Outcome::KeyValues` and
    /// `Outcome::KeyScored`, and `Op::Append` answering the new length
    /// (`Outcome::Integer`, recorded as such for exactly-once; issue 20).
    /// New variants only, appended: version 3 entries and snapshots decode
    /// unchanged, so 3 is still read; an older build refuses version 4.
    ///
    /// 5: stores (in snapshots, and in the shards one group sends another,
    /// installed through its log) are made with the `cache` crate's new
    /// default policy, `adaptive`, whose state has a shape older builds do
    /// not know (issue 18). Stores in version 3 and 4 data hold S3-FIFO,
    /// which decodes unchanged (and stays their policy), so they still
    /// read; an older build refuses version 5.
    ///
    /// 6: a snapshot of a group whose shards have a disk tier (L3,
    /// issue 22) is written behind a version header with each tier's
    /// section ([`ShardMachine::snapshot`]); an older build would refuse
    /// it as undecodable, and refuses version 6 by name instead. A group
    /// without the tier writes the version 5 bytes, and 3 to 5 still read.
    ///
    /// 7: `GroupCommand::PollerLeases` (client-side caching's write fence,
    /// issue 22), appended, and machine snapshots that carry its marker
    /// (the machine's snapshot format 3, always behind its own header).
    /// Version 3 to 6 entries and snapshots decode unchanged, so they still
    /// read; an older build refuses version 7.
    ///
    /// 8: `GroupCommand::SetStoreCapacity` (the group's store capacity
    /// decided by its log, not by each node's file; issue 18), appended.
    /// Version 3 to 7 entries and snapshots decode unchanged, so they still
    /// read; an older build refuses version 8.
    ///
    /// 9: not released. For two hours of 2026-12-07 (edb6905 to 45359cf)
    /// main wrote 9 for the adaptive policy's halved shadows without a
    /// logged switch (replicas would evict apart after an upgrade); that
    /// was reverted, and its data reads here as the original revision.
    /// Skipped so that no number means two things.
    ///
    /// 10: `GroupCommand::SetPolicyRevision` (the stores' eviction
    /// behaviour switched at one index of the log; issue 18), appended,
    /// and machine snapshots that carry the revision (the machine's
    /// snapshot format 5). Version 3 to 9 entries and snapshots decode
    /// unchanged, so they still read (their stores at the original
    /// revision); an older build refuses version 10. A new
    /// `cache::PolicyRevision` needs a new version too, so that a build
    /// that does not know it refuses the entry instead of skipping it
    /// (`a_new_policy_revision_comes_with_a_new_format_version`).
    const FORMAT_VERSION: u8 = 10;
    const OLDEST_READABLE_FORMAT_VERSION: u8 = 3;

    fn apply(&mut self, command: &GroupCommand, context: &ApplyContext) -> GroupOutput {
        ShardMachine::apply(self, command, context.now_ms)
    }

    fn early_output<'a>(
        &self,
        command: &GroupCommand,
        earlier: impl Iterator<Item = &'a GroupCommand>,
    ) -> Option<GroupOutput> {
        self.output_known_before(command, earlier)
    }

    fn check_invariants(&self) -> Result<(), String> {
        ShardMachine::check_invariants(self)
    }

    fn fault(&self) -> Option<String> {
        self.disk_fault()
    }

    fn snapshot(&self) -> Vec<u8> {
        ShardMachine::snapshot(self)
    }

    fn snapshot_into(self, out: &mut Vec<u8>) {
        ShardMachine::snapshot_into(self, out)
    }

    /// [`ShardMachine::restore_here`]: the disk tiers are rebuilt in this
    /// replica's placement.
    fn restore(&self, snapshot: &[u8]) -> Result<ShardMachine, RestoreError> {
        let machine = self
            .restore_here(snapshot)
            .map_err(|detail| RestoreError::Inconsistent { detail })?;
        self.check_compatible(&machine)
            .map_err(|detail| RestoreError::Inconsistent { detail })?;
        Ok(machine)
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
