//! [`Schedule`]: the coordinator's bookkeeping, with no IO and no clock.
//!
//! Every method takes the current time as an argument, so the unit tests
//! below drive it through re-issues without sleeping.

use std::time::Duration;

use tokio::time::Instant;

use crate::rpc::{Assignment, DoneAck, TaskId};

/// How long a waiting worker should wait before asking again.
pub const RETRY_AFTER_MS: u64 = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Idle,
    Running { attempt: u64, deadline: Instant },
    Done,
}

/// Which tasks are idle, running (and until when) or done.
///
/// Rules (6.5840 Lab 1):
/// - one map task per input file, `n_reduce` reduce tasks;
/// - no reduce is handed out until every map is done;
/// - a task whose worker has not reported it done `task_timeout` after it
///   was handed out is handed out again (the first worker may be dead, or
///   just slow; either attempt's report completes the task);
/// - once every reduce is done, every worker that asks is told to exit.
#[derive(Debug)]
pub struct Schedule {
    inputs: Vec<String>,
    n_reduce: u32,
    task_timeout: Duration,
    maps: Vec<Slot>,
    reduces: Vec<Slot>,
    attempts_issued: u64,
}

/// Counts for logs and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub maps_done: usize,
    pub maps_total: usize,
    pub reduces_done: usize,
    pub reduces_total: usize,
    /// Tasks handed out, re-issues included.
    pub attempts_issued: u64,
}

impl Schedule {
    /// # Panics
    /// With no input, `n_reduce == 0`, or more than `u32::MAX` inputs: the
    /// caller validates user input before building a schedule.
    pub fn new(inputs: Vec<String>, n_reduce: u32, task_timeout: Duration) -> Schedule {
        assert!(!inputs.is_empty(), "a job needs at least one input");
        assert!(n_reduce > 0, "a job needs at least one reduce task");
        assert!(u32::try_from(inputs.len()).is_ok(), "at most 2^32-1 inputs");
        let maps = vec![Slot::Idle; inputs.len()];
        Schedule {
            inputs,
            n_reduce,
            task_timeout,
            maps,
            reduces: vec![Slot::Idle; n_reduce as usize],
            attempts_issued: 0,
        }
    }

    /// What the worker asking at `now` should do.
    pub fn assign(&mut self, now: Instant) -> Assignment {
        if !all_done(&self.maps) {
            return match self.claim_map(now) {
                Some((task, attempt)) => Assignment::Map {
                    task,
                    attempt,
                    input: self.inputs[task as usize].clone(),
                    n_reduce: self.n_reduce,
                },
                None => Assignment::Wait {
                    retry_after_ms: RETRY_AFTER_MS,
                },
            };
        }
        if all_done(&self.reduces) {
            return Assignment::Exit;
        }
        match claim(
            &mut self.reduces,
            &mut self.attempts_issued,
            now,
            self.task_timeout,
        ) {
            Some((task, attempt)) => Assignment::Reduce {
                task,
                attempt,
                n_map: self.maps.len() as u32,
            },
            None => Assignment::Wait {
                retry_after_ms: RETRY_AFTER_MS,
            },
        }
    }

    fn claim_map(&mut self, now: Instant) -> Option<(u32, u64)> {
        claim(
            &mut self.maps,
            &mut self.attempts_issued,
            now,
            self.task_timeout,
        )
    }

    /// A worker reports `task` done. Any attempt counts, even one that was
    /// re-issued meanwhile: its outputs were published atomically and are
    /// complete.
    pub fn complete(&mut self, task: TaskId) -> DoneAck {
        let slot = match task {
            TaskId::Map(index) => self.maps.get_mut(index as usize),
            TaskId::Reduce(index) => self.reduces.get_mut(index as usize),
        };
        match slot {
            None => DoneAck::UnknownTask,
            Some(Slot::Done) => DoneAck::AlreadyDone,
            Some(slot) => {
                *slot = Slot::Done;
                DoneAck::Recorded
            }
        }
    }

    /// Every reduce is done (so every map is too).
    pub fn is_done(&self) -> bool {
        all_done(&self.maps) && all_done(&self.reduces)
    }

    pub fn progress(&self) -> Progress {
        let count = |slots: &[Slot]| slots.iter().filter(|slot| **slot == Slot::Done).count();
        Progress {
            maps_done: count(&self.maps),
            maps_total: self.maps.len(),
            reduces_done: count(&self.reduces),
            reduces_total: self.reduces.len(),
            attempts_issued: self.attempts_issued,
        }
    }
}

fn all_done(slots: &[Slot]) -> bool {
    slots.iter().all(|slot| *slot == Slot::Done)
}

/// The first idle task, or failing that the first whose attempt expired,
/// marked running with a fresh attempt number.
fn claim(
    slots: &mut [Slot],
    attempts_issued: &mut u64,
    now: Instant,
    task_timeout: Duration,
) -> Option<(u32, u64)> {
    let index = slots
        .iter()
        .position(|slot| *slot == Slot::Idle)
        .or_else(|| {
            slots
                .iter()
                .position(|slot| matches!(slot, Slot::Running { deadline, .. } if *deadline <= now))
        })?;
    if let Slot::Running { attempt, .. } = slots[index] {
        tracing::info!(
            task = index,
            attempt,
            "re-issuing a task whose worker went silent"
        );
    }
    *attempts_issued += 1;
    let attempt = *attempts_issued;
    slots[index] = Slot::Running {
        attempt,
        deadline: now + task_timeout,
    };
    Some((
        u32::try_from(index).expect("fewer than 2^32 tasks"),
        attempt,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn schedule(inputs: usize, n_reduce: u32) -> Schedule {
        let inputs = (0..inputs).map(|index| format!("in-{index}")).collect();
        Schedule::new(inputs, n_reduce, TIMEOUT)
    }

    fn map(task: u32, attempt: u64, n_reduce: u32) -> Assignment {
        Assignment::Map {
            task,
            attempt,
            input: format!("in-{task}"),
            n_reduce,
        }
    }

    const WAIT: Assignment = Assignment::Wait {
        retry_after_ms: RETRY_AFTER_MS,
    };

    #[test]
    fn maps_then_reduces_then_exit() {
        let start = labrpc::runtime::now();
        let mut schedule = schedule(2, 2);
        assert_eq!(schedule.assign(start), map(0, 1, 2));
        assert_eq!(schedule.assign(start), map(1, 2, 2));
        // Both maps running: nobody gets a reduce yet.
        assert_eq!(schedule.assign(start), WAIT);
        assert_eq!(schedule.complete(TaskId::Map(1)), DoneAck::Recorded);
        assert_eq!(schedule.assign(start), WAIT);
        assert_eq!(schedule.complete(TaskId::Map(0)), DoneAck::Recorded);
        let reduce = |task, attempt| Assignment::Reduce {
            task,
            attempt,
            n_map: 2,
        };
        assert_eq!(schedule.assign(start), reduce(0, 3));
        assert_eq!(schedule.assign(start), reduce(1, 4));
        assert_eq!(schedule.assign(start), WAIT);
        assert_eq!(schedule.complete(TaskId::Reduce(0)), DoneAck::Recorded);
        assert!(!schedule.is_done());
        assert_eq!(schedule.complete(TaskId::Reduce(1)), DoneAck::Recorded);
        assert!(schedule.is_done());
        assert_eq!(schedule.assign(start), Assignment::Exit);
        assert_eq!(
            schedule.progress(),
            Progress {
                maps_done: 2,
                maps_total: 2,
                reduces_done: 2,
                reduces_total: 2,
                attempts_issued: 4
            }
        );
    }

    #[test]
    fn silent_tasks_are_reissued_after_the_timeout_only() {
        let start = labrpc::runtime::now();
        let mut schedule = schedule(1, 1);
        assert_eq!(schedule.assign(start), map(0, 1, 1));
        let almost = start + TIMEOUT - Duration::from_millis(1);
        assert_eq!(schedule.assign(almost), WAIT);
        assert_eq!(schedule.assign(start + TIMEOUT), map(0, 2, 1));
        // The first, slow attempt reports first; the second is then a no-op.
        assert_eq!(schedule.complete(TaskId::Map(0)), DoneAck::Recorded);
        assert_eq!(schedule.complete(TaskId::Map(0)), DoneAck::AlreadyDone);
        assert_eq!(schedule.complete(TaskId::Map(7)), DoneAck::UnknownTask);
        assert_eq!(schedule.complete(TaskId::Reduce(1)), DoneAck::UnknownTask);
    }
}
