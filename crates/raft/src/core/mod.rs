//! The sans-IO Raft core: a synchronous state machine with no clock, no
//! network, no disk and no global randomness. See the crate docs for the
//! loop that drives it.

mod config;
mod election;
mod entry;
mod held_snapshot;
mod log;
mod membership;
mod message;
mod progress;
mod raw_node;
mod read_only;
mod ready;
mod replication;
mod validate;

pub use config::{Config, TICK_INTERVAL_MS};
pub use entry::{Entry, EntryKind, HardState, NodeId, PersistentState, Snapshot, SnapshotMeta};
pub use held_snapshot::SnapshotRead;
pub use log::RaftLog;
pub use membership::{MAX_MEMBERS, Membership, MembershipChange};
pub use message::{
    AppendEntries, AppendEntriesReply, Conflict, Heartbeat, HeartbeatReply, InstallSnapshot,
    InstallSnapshotReply, Message, MessageBody, RequestVote, RequestVoteReply,
};
pub use progress::{Progress, ProgressState};
pub use raw_node::{
    LeaseRead, MembershipError, ProposeError, RawNode, ReadIndexError, Role, SnapshotError,
    StepError, TransferError,
};
pub use read_only::ReadState;
pub use ready::{Ready, ReadySnapshot};
pub use validate::{MAX_INDEX, MAX_TERM, MAX_TERM_STEP, PayloadCheck, PayloadKind};
