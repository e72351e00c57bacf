//! The coordinator process: a [`Schedule`] behind the labrpc service.

mod schedule;

pub use schedule::{Progress, RETRY_AFTER_MS, Schedule};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use labrpc::runtime::watch;
use labrpc::{Router, Server, ServerConfig};

use crate::rpc::{DoneAck, GetTask, TaskDone};

/// Settings of a coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Where to serve (port 0 picks a free port; see [`Coordinator::local_addr`]).
    pub listen: SocketAddr,
    /// The input files, one map task each, named as workers will read them.
    pub inputs: Vec<String>,
    pub n_reduce: u32,
    /// Re-issue a task whose worker has not reported it done after this
    /// long (the lab's 10 s).
    pub task_timeout: Duration,
    /// After the job is done, keep answering `Exit` this long so waiting
    /// workers hear it (the lab's coordinator sleeps a second); workers that
    /// miss it find the coordinator gone and exit too.
    pub exit_grace: Duration,
}

/// How long [`Coordinator::wait`] waits for the server to stop.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// Limits on what a coordinator accepts: the schedule holds a slot per task.
pub const MAX_INPUTS: usize = 100_000;
pub const MAX_REDUCE_TASKS: u32 = 100_000;

impl CoordinatorConfig {
    /// The lab's settings: 10 s re-issue, 1 s grace after the job.
    pub fn new(listen: SocketAddr, inputs: Vec<String>, n_reduce: u32) -> CoordinatorConfig {
        CoordinatorConfig {
            listen,
            inputs,
            n_reduce,
            task_timeout: Duration::from_secs(10),
            exit_grace: Duration::from_secs(1),
        }
    }
}

/// Why a coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("bad job: {0}")]
    BadJob(String),
    #[error("cannot serve on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running coordinator. [`Coordinator::wait`] returns once the job is
/// done and the grace period is over, having stopped the server: the
/// coordinator process then exits, as the lab's does.
pub struct Coordinator {
    server: Server,
    schedule: Arc<Mutex<Schedule>>,
    done: watch::Receiver<bool>,
    exit_grace: Duration,
}

fn lock(schedule: &Mutex<Schedule>) -> MutexGuard<'_, Schedule> {
    // Schedule methods either finish or panic before mutating (their
    // asserts come first), so a poisoned lock still guards a valid schedule.
    schedule
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Coordinator {
    /// Validates the job's shape and starts serving. (Whether the inputs
    /// exist is the caller's check: the binary looks at the real files.)
    pub async fn start(config: CoordinatorConfig) -> Result<Coordinator, CoordinatorError> {
        if config.inputs.is_empty() {
            return Err(CoordinatorError::BadJob("no input files".into()));
        }
        if config.inputs.len() > MAX_INPUTS {
            return Err(CoordinatorError::BadJob(format!(
                "{} input files, at most {MAX_INPUTS}",
                config.inputs.len()
            )));
        }
        if config.n_reduce == 0 || config.n_reduce > MAX_REDUCE_TASKS {
            return Err(CoordinatorError::BadJob(format!(
                "n_reduce is {}, must be 1..={MAX_REDUCE_TASKS}",
                config.n_reduce
            )));
        }
        let schedule = Arc::new(Mutex::new(Schedule::new(
            config.inputs,
            config.n_reduce,
            config.task_timeout,
        )));
        let (done_sender, done) = watch::channel(false);
        let done_sender = Arc::new(done_sender);

        let mut router = Router::new();
        let for_get = Arc::clone(&schedule);
        router.add(move |request: GetTask| {
            let assignment = lock(&for_get).assign(labrpc::runtime::now());
            tracing::debug!(worker = request.worker_id, ?assignment, "assigned");
            async move { assignment }
        });
        let for_done = Arc::clone(&schedule);
        router.add(move |report: TaskDone| {
            let mut schedule = lock(&for_done);
            let ack = schedule.complete(report.task);
            match ack {
                DoneAck::Recorded => {
                    let progress = schedule.progress();
                    tracing::info!(
                        worker = report.worker_id,
                        task = ?report.task,
                        attempt = report.attempt,
                        maps_done = progress.maps_done,
                        reduces_done = progress.reduces_done,
                        "task done"
                    );
                }
                DoneAck::AlreadyDone => {
                    tracing::debug!(worker = report.worker_id, task = ?report.task, "duplicate completion");
                }
                DoneAck::UnknownTask => {
                    tracing::warn!(worker = report.worker_id, task = ?report.task, "completion of a task this job does not have");
                }
            }
            if schedule.is_done() {
                done_sender.send_replace(true);
            }
            async move { ack }
        });
        let server = Server::start(config.listen, router, ServerConfig::default())
            .await
            .map_err(|source| CoordinatorError::Bind {
                addr: config.listen,
                source,
            })?;
        Ok(Coordinator {
            server,
            schedule,
            done,
            exit_grace: config.exit_grace,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn progress(&self) -> Progress {
        lock(&self.schedule).progress()
    }

    /// Waits until every reduce task is done (the output is complete).
    pub async fn wait_done(&mut self) {
        // Ends when the job is done; the only sender lives in the router,
        // which lives as long as the server, which `self` owns.
        while !*self.done.borrow_and_update() {
            if self.done.changed().await.is_err() {
                break;
            }
        }
    }

    /// Waits for the job to finish, answers `Exit` for the grace period,
    /// stops serving and returns the final counts.
    pub async fn wait(mut self) -> Progress {
        self.wait_done().await;
        self.finish().await
    }

    /// After [`Coordinator::wait_done`]: answers `Exit` for the grace
    /// period, stops serving and returns the final counts.
    pub async fn finish(self) -> Progress {
        tokio::time::sleep(self.exit_grace).await;
        let progress = self.progress();
        // Bounded: a graceful shutdown waits for calls in flight, and a
        // wedged connection must not keep a finished job's process alive.
        match tokio::time::timeout(SHUTDOWN_BOUND, self.server.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => tracing::warn!(%reason, "server had already stopped"),
            Err(_elapsed) => {
                tracing::warn!("server did not stop within {SHUTDOWN_BOUND:?}; exiting anyway")
            }
        }
        progress
    }
}
