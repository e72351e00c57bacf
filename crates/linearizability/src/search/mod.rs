//! The search core: Wing-Gong backtracking over one partition's call/return
//! entries, with Lowe's memo of `(linearized set, state)` pairs already explored.
//!
//! Plain synchronous code: no clock (the [`Budget`](crate::Budget) decides when
//! to stop), no IO, no randomness.

mod entry_list;
mod linearized_set;
mod lookahead;
mod state_table;
mod wing_gong;

pub(crate) use wing_gong::{MemoPeak, PartitionSearch, SearchOutcome, search_partition};
