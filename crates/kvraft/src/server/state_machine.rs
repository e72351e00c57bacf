//! The replicated state machine: the store plus the exactly-once table.
//!
//! Pure and synchronous: the same commands in the same order give the same
//! state and the same answers on every replica. Time is the log time the
//! rsm passes in ([`ApplyContext::now_ms`]), never a clock.

use api::{Error, MachineConfig, Op, Reply};
use cache::Store;
use rsm::session::{SessionCheck, SessionTable};
use rsm::{ApplyContext, ReplicatedMachine};
use serde::{Deserialize, Serialize};

/// A log entry: a clerk's request (the rsm adds the leader's time stamp).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub client_id: u64,
    pub seq: u64,
    pub op: Op,
}

/// Store + exactly-once table. See the module docs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateMachine {
    config: MachineConfig,
    store: Store,
    sessions: SessionTable<Reply>,
}

impl StateMachine {
    pub fn new(config: MachineConfig) -> StateMachine {
        StateMachine {
            config,
            store: Store::new(config.store),
            sessions: SessionTable::new((&config).into()),
        }
    }

    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The recorded answer of `(client_id, seq)` if that is the client's
    /// latest applied write.
    pub fn recorded_reply(&self, client_id: u64, seq: u64) -> Option<Reply> {
        self.sessions.recorded(client_id, seq).cloned()
    }

    /// Refuses an operation whose key or value is over the limits (checked
    /// by the server before proposing, and again here at apply time).
    pub fn check_sizes(&self, op: &Op) -> Result<(), Error> {
        self.config.limits().check(op)
    }

    fn execute(&mut self, op: &Op, now_ms: u64) -> Reply {
        api::execute(&mut self.store, op, &self.config.limits(), now_ms)
    }

    /// Answers a Get without changing anything (a ReadIndex read on the
    /// leader alone): the store's `peek`, which respects TTLs at `now_ms`
    /// but records no access for the eviction policy.
    ///
    /// # Panics
    /// If `op` is not a read (a bug in the caller).
    pub fn read(&self, op: &Op, now_ms: u64) -> Reply {
        api::read(&self.store, op, &self.config.limits(), now_ms)
    }

    /// Every structural invariant (for tests and restores).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.store.check_invariants()?;
        if self.sessions.len() as u64 > self.config.max_clients {
            return Err(format!(
                "{} sessions over the bound of {}",
                self.sessions.len(),
                self.config.max_clients
            ));
        }
        Ok(())
    }
}

impl ReplicatedMachine for StateMachine {
    type Command = Command;
    type Output = Reply;

    /// 2: the wall-clock instant of a key's deadline in the operations and
    /// in the store's entries (issue 16). Both changed shape, so version 1
    /// entries and snapshots are refused with an error naming the
    /// version, never decoded into the new shape.
    ///
    /// 3: `ListOp::MultiPop`, `ZSetOp::MultiPop`, `Outcome::KeyValues`,
    /// `Outcome::KeyScored`, and `Op::Append` answering the new length
    /// (issue 20). New variants only: version 2 still reads.
    ///
    /// 4: stores are made with the `cache` crate's new default policy,
    /// `adaptive`, whose state in snapshots has a shape older builds do
    /// not know (issue 18). Stores in version 2 and 3 snapshots hold
    /// S3-FIFO, which decodes unchanged (and stays their policy), so they
    /// still read; an older build refuses version 4.
    const FORMAT_VERSION: u8 = 4;
    const OLDEST_READABLE_FORMAT_VERSION: u8 = 2;

    /// Applies one committed command and returns its answer. A write seen
    /// before (same client, same seq) is not applied again: its recorded
    /// answer is returned.
    fn apply(&mut self, command: &Command, context: &ApplyContext) -> Reply {
        let now_ms = context.now_ms;
        self.sessions.expire_idle(now_ms);
        if command.op.is_read() {
            return self.execute(&command.op, now_ms);
        }
        match self.sessions.check(command.client_id, command.seq) {
            SessionCheck::Duplicate(reply) => return reply.clone(),
            SessionCheck::Stale { latest } => {
                return Err(Error::Stale {
                    seq: command.seq,
                    latest,
                });
            }
            SessionCheck::New => {}
        }
        let reply = self.execute(&command.op, now_ms);
        self.sessions
            .record(command.client_id, command.seq, reply.clone(), now_ms);
        reply
    }

    /// Snapshots use the trait's default (the shared codec); a snapshot
    /// carries its own configuration (the replicas' common one).
    fn check_invariants(&self) -> Result<(), String> {
        StateMachine::check_invariants(self)
    }
}
