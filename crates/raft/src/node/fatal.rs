//! The fatal path: what happens when a node cannot go on. Two reasons
//! ([`FatalReason`]):
//!
//! - its storage failed (ENOSPC, EIO, a save refused): the node's disk
//!   state is then unknown, so it must not answer anyone again (a vote or
//!   an acknowledgement could break a promise it cannot keep), and the
//!   process must end so that a supervisor restarts it from its files;
//! - the service cannot use a committed entry or the stored snapshot
//!   (written by a newer release, during a rolling upgrade or after a
//!   rollback): a committed entry cannot be skipped, so the replica cannot
//!   go on without serving a state that is not the replicated one. The
//!   service stops the node with [`crate::node::RaftNode::stop_fatal`];
//!   restarting the same binary would stop at the same entry, so the
//!   reason says what to do (upgrade this node).
//!
//! The driver therefore:
//!
//! 1. stops at once: the failed `Ready`'s messages are never sent, its
//!    entries never applied, every task of the node is aborted, every
//!    waiting caller gets `None`;
//! 2. records the typed reason, which the owner reads with
//!    [`crate::node::RaftNode::fatal_error`] or awaits with
//!    [`crate::node::RaftNode::wait_fatal`] (a service wraps it in its own
//!    error);
//! 3. calls the [`FatalHook`] of `NodeConfig::on_fatal`, if any. A server
//!    binary sets [`FatalHook::exit_process`], which logs the reason and
//!    ends the process with [`FatalError::exit_code`]
//!    ([`EXIT_CODE_STORAGE_FAILED`] or [`EXIT_CODE_UNUSABLE_STATE`]).
//!
//! Why a hook rather than `process::exit` in the driver: the library also
//! runs inside tests and simulations, where many nodes share one process
//! and a failed node must stop alone; only the binary knows that the
//! process is the node. The hook is the one seam; the default (no hook)
//! keeps a library user in charge.

use std::fmt;
use std::sync::Arc;

use thiserror::Error;

use crate::core::NodeId;
use crate::storage::StorageError;

/// The exit status of a process ended by [`FatalHook::exit_process`]
/// (`EX_IOERR` of sysexits.h: an input/output error).
pub const EXIT_CODE_STORAGE_FAILED: i32 = 74;

/// The exit status of a process ended by [`FatalHook::exit_process`]
/// because the service cannot use a committed entry or a stored snapshot
/// (`EX_DATAERR` of sysexits.h: the input data was incorrect).
pub const EXIT_CODE_UNUSABLE_STATE: i32 = 65;

/// Why a node stopped for good.
#[derive(Clone, Debug, Error)]
#[error("raft node {node} stopped: {reason}")]
pub struct FatalError {
    pub node: NodeId,
    pub reason: FatalReason,
}

impl FatalError {
    /// The exit status [`FatalHook::exit_process`] ends the process with.
    pub fn exit_code(&self) -> i32 {
        match self.reason {
            FatalReason::Storage(_) => EXIT_CODE_STORAGE_FAILED,
            FatalReason::Unusable { .. } => EXIT_CODE_UNUSABLE_STATE,
        }
    }
}

/// What stopped the node.
#[derive(Clone, Debug, Error)]
pub enum FatalReason {
    /// A save or a read of the node's files failed.
    #[error("its storage failed: {0}")]
    Storage(Arc<StorageError>),
    /// The service cannot apply committed state this node holds: `what`
    /// ("committed entry", "snapshot") at log index `index`; `detail` says
    /// why and what to do.
    #[error("the {what} at index {index} cannot be used by this build: {detail}")]
    Unusable {
        what: &'static str,
        index: u64,
        detail: String,
    },
}

/// Called once, on the node's event loop task, when the node stops for
/// good (after it stopped answering). It must not block for long.
#[derive(Clone)]
pub struct FatalHook(Arc<dyn Fn(&FatalError) + Send + Sync>);

impl FatalHook {
    pub fn new(hook: impl Fn(&FatalError) + Send + Sync + 'static) -> FatalHook {
        FatalHook(Arc::new(hook))
    }

    /// The hook a server binary uses: log the reason and end the process
    /// with [`FatalError::exit_code`], so a supervisor sees the failure
    /// (and, for a storage failure, restarts the node from its files).
    pub fn exit_process() -> FatalHook {
        FatalHook::new(|fatal| {
            tracing::error!(%fatal, "ending the process");
            // Straight to the stderr handle, not `eprintln!`: the test
            // harness captures the macro's output and loses it when the
            // process exits, so an in-process cluster ended here would die
            // without saying why.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "fatal: {fatal}");
            std::process::exit(fatal.exit_code());
        })
    }

    pub(super) fn call(&self, fatal: &FatalError) {
        (self.0)(fatal);
    }
}

impl fmt::Debug for FatalHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FatalHook")
    }
}
