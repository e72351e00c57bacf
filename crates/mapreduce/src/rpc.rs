//! The coordinator's RPC service: workers ask for tasks and report them done.

use serde::{Deserialize, Serialize};

/// A task of the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskId {
    /// Map task `X`: the `X`-th input file; writes `mr-X-0 .. mr-X-(n_reduce-1)`.
    Map(u32),
    /// Reduce task `Y`: reads `mr-0-Y .. mr-(n_map-1)-Y`; writes `mr-out-Y`.
    Reduce(u32),
}

/// A worker asks for something to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetTask {
    pub worker_id: u64,
}

impl labrpc::Rpc for GetTask {
    const NAME: &'static str = "mapreduce.GetTask";
    type Reply = Assignment;
}

/// The coordinator's answer to [`GetTask`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assignment {
    Map {
        task: u32,
        /// Distinguishes re-issues of one task, for logs and reports.
        attempt: u64,
        /// The input file, named as the coordinator was given it.
        input: String,
        n_reduce: u32,
    },
    Reduce {
        task: u32,
        attempt: u64,
        n_map: u32,
    },
    /// Nothing to hand out now (every remaining task is running, or the
    /// maps are not all done yet); ask again after this long.
    Wait {
        retry_after_ms: u64,
    },
    /// The job is done: exit.
    Exit,
}

/// A worker has published a task's outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDone {
    pub worker_id: u64,
    pub task: TaskId,
    pub attempt: u64,
}

impl labrpc::Rpc for TaskDone {
    const NAME: &'static str = "mapreduce.TaskDone";
    type Reply = DoneAck;
}

/// The coordinator's answer to [`TaskDone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DoneAck {
    /// First completion of the task: recorded.
    Recorded,
    /// Another attempt finished first. Harmless: both published complete,
    /// identical files (the applications are deterministic per input).
    AlreadyDone,
    /// The task does not exist in this job (a bug or a worker of another job).
    UnknownTask,
}
