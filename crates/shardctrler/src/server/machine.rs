//! The controller's replicated state machine: the configurations
//! ([`ConfigHistory`]) plus the shared exactly-once table
//! ([`rsm::session::SessionTable`]).
//!
//! Pure and synchronous: [`rsm::Rsm`] applies committed requests in
//! log order on every replica, passing the log time that idle sessions
//! expire by. Queries and reports are answered, never recorded (a report
//! is idempotent); a change (Join, Leave, Move, DeclareLost, SetServers,
//! BalanceLoad) is executed once per `(client_id, seq)` and its answer (a new
//! configuration number or a refusal) is recorded for its retries.

use rsm::session::{SessionCheck, SessionLimits, SessionTable};
use rsm::{ApplyContext, ReplicatedMachine};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::history::{ConfigHistory, Limits};
use crate::rpc::{ControllerRequest, Reply, ServerError};

/// Configurations + exactly-once table. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerMachine {
    history: ConfigHistory,
    sessions: SessionTable<Reply>,
}

impl ControllerMachine {
    /// # Panics
    /// If `limits.shard_count` is 0.
    pub fn new(limits: Limits, sessions: SessionLimits) -> ControllerMachine {
        ControllerMachine {
            history: ConfigHistory::new(limits),
            sessions: SessionTable::new(sessions),
        }
    }

    pub fn history(&self) -> &ConfigHistory {
        &self.history
    }

    pub fn latest(&self) -> &Config {
        self.history.latest()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The recorded answer of a change `(client_id, seq)` if that is the
    /// client's latest applied change.
    pub fn recorded_reply(&self, client_id: u64, seq: u64) -> Option<Reply> {
        self.sessions.recorded(client_id, seq).cloned()
    }
}

impl ReplicatedMachine for ControllerMachine {
    type Command = ControllerRequest;
    type Output = Reply;

    /// 2: `ConfigOp::DeclareLost` and `Config::lost_groups` (issue 13). A
    /// replica of an older build refuses such entries and snapshots with an
    /// error naming the version instead of misreading them. This build does
    /// not read version 1 snapshots or entries (configurations lack
    /// `lost_groups` there): they are refused with an error naming the
    /// version, never decoded into the new shape; a controller's data from
    /// before is not carried over.
    ///
    /// 3: `ConfigOp::SetServers` (issue 21). Version 2 entries and
    /// snapshots decode unchanged (the operation is a new last variant),
    /// so they are still read; a version 2 build refuses version 3 by its
    /// number instead of misreading it.
    ///
    /// 4: `ConfigOp::BalanceLoad` and the errors `ConfigError::LoadCount`
    /// and `ConfigError::MoveLimit` (issue 22), each a new last variant:
    /// versions 2 and 3 still decode unchanged; a version 3 build refuses
    /// version 4 by its number.
    const FORMAT_VERSION: u8 = 4;
    const OLDEST_READABLE_FORMAT_VERSION: u8 = 2;

    fn apply(&mut self, request: &ControllerRequest, context: &ApplyContext) -> Reply {
        self.sessions.expire_idle(context.now_ms);
        if !request.op.is_recorded() {
            return self
                .history
                .apply(&request.op)
                .map_err(ServerError::Refused);
        }
        match self.sessions.check(request.client_id, request.seq) {
            SessionCheck::Duplicate(reply) => return reply.clone(),
            SessionCheck::Stale { latest } => {
                return Err(ServerError::Stale {
                    seq: request.seq,
                    latest,
                });
            }
            SessionCheck::New => {}
        }
        let reply = self
            .history
            .apply(&request.op)
            .map_err(ServerError::Refused);
        self.sessions.record(
            request.client_id,
            request.seq,
            reply.clone(),
            context.now_ms,
        );
        reply
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.history.check_invariants()
    }

    fn check_compatible(&self, restored: &ControllerMachine) -> Result<(), String> {
        if restored.history.limits() != self.history.limits() {
            return Err(format!(
                "snapshot limits {:?} differ from this replica's {:?}",
                restored.history.limits(),
                self.history.limits()
            ));
        }
        Ok(())
    }
}
