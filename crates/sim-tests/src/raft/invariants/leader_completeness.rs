//! Leader Completeness (Raft paper §5.4, Figure 3): if a log entry is
//! committed in a given term, that entry will be present in the logs of the
//! leaders of all higher-numbered terms.
//!
//! Checked on every observation of a leader: the highest index any node saw
//! committed while in an earlier term must be in the leader's stored log,
//! with the same log up to it (one chained hash). An index the leader has
//! compacted into its snapshot is covered by the snapshot checks.

use ::raft::core::Role;
use ::raft::node::Observation;

use super::node_log::NodeLog;
use super::state_machine_safety::StateMachineSafety;

#[derive(Debug, Default)]
pub struct LeaderCompleteness {
    checks: u64,
}

impl LeaderCompleteness {
    pub fn observe(
        &mut self,
        observation: &Observation,
        log: &NodeLog,
        committed: &StateMachineSafety,
    ) -> Result<(), String> {
        if observation.role != Role::Leader {
            return Ok(());
        }
        let Some(point) = committed.committed_before_term(observation.term) else {
            return Ok(());
        };
        self.checks += 1;
        if point.link.index <= log.snapshot_index() {
            return Ok(());
        }
        match log.link_at(point.link.index) {
            Some(own) if own == point.link => Ok(()),
            own => Err(format!(
                "leader completeness (§5.4): node {} leads term {} but its log at index {} is \
                 {:?}, not the entry (term {}) committed before its term (reported by node {})",
                observation.node,
                observation.term,
                point.link.index,
                own.map(|link| link.term),
                point.link.term,
                point.node
            )),
        }
    }

    pub fn checks(&self) -> u64 {
        self.checks
    }
}
