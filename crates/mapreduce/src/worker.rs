//! The worker process: ask for a task, run it, publish its files, report.
//!
//! ```text
//!   loop {
//!     GetTask ──► Map { task X, input }  : read input, app.map, partition by
//!     │                                    ihash(key) % n_reduce, publish
//!     │                                    mr-X-0 .. mr-X-(n_reduce-1)
//!     │         Reduce { task Y, n_map } : read mr-0-Y .. mr-(n_map-1)-Y, sort,
//!     │                                    app.reduce per key, publish mr-out-Y
//!     │         Wait                     : sleep, ask again
//!     │         Exit                     : return
//!     └─ TaskDone { task } after publishing
//!   }
//! ```
//!
//! Every file is published with [`JobDir::write_atomic`], so a worker that
//! dies mid-task, or a second attempt racing a slow first one, never leaves
//! a partial file: readers see no file or a complete one, and complete
//! files of two attempts are identical.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use labrpc::{Client, ClientConfig, RpcError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::apps::{App, AppContext, AppError};
use crate::codec::{CorruptFile, decode_pairs_into, encode_pairs};
use crate::rpc::{Assignment, DoneAck, GetTask, TaskDone, TaskId};
use crate::storage::{JobDir, StorageError};
use crate::{KeyValue, intermediate_name, output_name, partition_of, reduce_sorted};

/// Settings of a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub coordinator: SocketAddr,
    pub app: App,
    /// Unique among the job's workers (the lab uses the process id).
    pub worker_id: u64,
    /// Seeds the worker's generator (what the `crash` and `jobcount`
    /// applications draw from). Production passes entropy; simulation
    /// passes a draw from madsim's seeded generator.
    pub seed: u64,
    /// Deadline of one call to the coordinator.
    pub rpc_timeout: Duration,
    /// A worker that has never reached the coordinator gives up after this
    /// long, with [`WorkerError::CoordinatorUnreachable`].
    pub first_contact_timeout: Duration,
    /// A worker that did reach the coordinator and then cannot for this long
    /// assumes the job is over and the coordinator exited (the lab's rule),
    /// returning [`WorkerExit::CoordinatorGone`].
    pub coordinator_gone_after: Duration,
    /// Pause between failed calls.
    pub retry_interval: Duration,
}

impl WorkerConfig {
    pub fn new(coordinator: SocketAddr, app: App, worker_id: u64, seed: u64) -> WorkerConfig {
        WorkerConfig {
            coordinator,
            app,
            worker_id,
            seed,
            rpc_timeout: Duration::from_secs(1),
            first_contact_timeout: Duration::from_secs(5),
            coordinator_gone_after: Duration::from_secs(5),
            retry_interval: Duration::from_millis(200),
        }
    }
}

/// How a worker ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerExit {
    /// The coordinator said the job is done.
    ToldToExit,
    /// The coordinator stopped answering after having answered before.
    CoordinatorGone,
}

/// Why a worker stopped before the job was done.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot reach the coordinator at {addr} within {waited_ms} ms: {last_error}")]
    CoordinatorUnreachable {
        addr: SocketAddr,
        waited_ms: u64,
        last_error: RpcError,
    },
    /// The `crash` application chose to crash this worker.
    #[error("the crash application crashed this worker on purpose")]
    Crashed,
    #[error("{task:?}: {source}")]
    Storage { task: TaskId, source: StorageError },
    #[error("{task:?}: {name}: {source}")]
    CorruptIntermediate {
        task: TaskId,
        name: String,
        source: CorruptFile,
    },
    #[error("{task:?}: {source}")]
    App { task: TaskId, source: AppError },
    #[error("the coordinator does not know {task:?}: is this worker talking to another job?")]
    UnknownTask { task: TaskId },
}

/// Runs a worker until the job is done, the coordinator is gone, or it fails.
pub async fn run_worker(
    config: WorkerConfig,
    dir: Arc<dyn JobDir>,
) -> Result<WorkerExit, WorkerError> {
    let mut worker = Worker {
        client: Client::new(ClientConfig {
            timeout: config.rpc_timeout,
            connect_timeout: config.rpc_timeout,
            ..ClientConfig::default()
        }),
        rng: ChaCha8Rng::seed_from_u64(config.seed),
        map_calls: 0,
        started: labrpc::runtime::now(),
        contacted: false,
        config,
        dir,
    };
    worker.run().await
}

struct Worker {
    config: WorkerConfig,
    dir: Arc<dyn JobDir>,
    client: Client,
    rng: ChaCha8Rng,
    map_calls: u64,
    started: tokio::time::Instant,
    contacted: bool,
}

/// Whether to go on after failing to reach the coordinator.
enum Unreachable {
    Retry,
    Stop(Result<WorkerExit, WorkerError>),
}

impl Worker {
    /// The loop ends when the coordinator says so or stops answering: each
    /// round trip either makes progress on a finite job or waits, and a
    /// coordinator exits once the job is done.
    async fn run(&mut self) -> Result<WorkerExit, WorkerError> {
        let mut last_contact = labrpc::runtime::now();
        loop {
            let request = GetTask {
                worker_id: self.config.worker_id,
            };
            let assignment = match self.client.call(self.config.coordinator, &request).await {
                Ok(assignment) => assignment,
                Err(error) => match self.on_unreachable(last_contact, error) {
                    Unreachable::Retry => {
                        tokio::time::sleep(self.config.retry_interval).await;
                        continue;
                    }
                    Unreachable::Stop(outcome) => return outcome,
                },
            };
            self.contacted = true;
            last_contact = labrpc::runtime::now();
            let (task, attempt) = match assignment {
                Assignment::Exit => return Ok(WorkerExit::ToldToExit),
                Assignment::Wait { retry_after_ms } => {
                    tokio::time::sleep(Duration::from_millis(retry_after_ms)).await;
                    continue;
                }
                Assignment::Map {
                    task,
                    attempt,
                    input,
                    n_reduce,
                } => {
                    self.run_map(task, &input, n_reduce).await?;
                    (TaskId::Map(task), attempt)
                }
                Assignment::Reduce {
                    task,
                    attempt,
                    n_map,
                } => {
                    self.run_reduce(task, n_map).await?;
                    (TaskId::Reduce(task), attempt)
                }
            };
            // The renames must be durable before the coordinator counts
            // the task done: once a task is done it is never re-run.
            self.dir
                .sync()
                .map_err(|source| WorkerError::Storage { task, source })?;
            if let Some(exit) = self.report(task, attempt).await? {
                return Ok(exit);
            }
            last_contact = labrpc::runtime::now();
        }
    }

    fn on_unreachable(&self, last_contact: tokio::time::Instant, error: RpcError) -> Unreachable {
        let silent = last_contact.elapsed();
        if !self.contacted && silent >= self.config.first_contact_timeout {
            return Unreachable::Stop(Err(WorkerError::CoordinatorUnreachable {
                addr: self.config.coordinator,
                waited_ms: u64::try_from(silent.as_millis()).unwrap_or(u64::MAX),
                last_error: error,
            }));
        }
        if self.contacted && silent >= self.config.coordinator_gone_after {
            tracing::info!(worker = self.config.worker_id, %error, "coordinator gone; assuming the job is done");
            return Unreachable::Stop(Ok(WorkerExit::CoordinatorGone));
        }
        tracing::debug!(worker = self.config.worker_id, %error, "coordinator did not answer; retrying");
        Unreachable::Retry
    }

    /// Tells the coordinator, retrying until it answers or is gone.
    async fn report(
        &mut self,
        task: TaskId,
        attempt: u64,
    ) -> Result<Option<WorkerExit>, WorkerError> {
        let report = TaskDone {
            worker_id: self.config.worker_id,
            task,
            attempt,
        };
        let since = labrpc::runtime::now();
        loop {
            match self.client.call(self.config.coordinator, &report).await {
                Ok(DoneAck::Recorded | DoneAck::AlreadyDone) => return Ok(None),
                Ok(DoneAck::UnknownTask) => return Err(WorkerError::UnknownTask { task }),
                Err(error) => match self.on_unreachable(since, error) {
                    Unreachable::Retry => tokio::time::sleep(self.config.retry_interval).await,
                    Unreachable::Stop(outcome) => return outcome.map(Some),
                },
            }
        }
    }

    fn context(&mut self) -> AppContext<'_> {
        AppContext {
            dir: self.dir.as_ref(),
            worker_id: self.config.worker_id,
            rng: &mut self.rng,
            map_calls: &mut self.map_calls,
            started: self.started,
        }
    }

    async fn run_map(&mut self, task: u32, input: &str, n_reduce: u32) -> Result<(), WorkerError> {
        let task_id = TaskId::Map(task);
        let storage = |source| WorkerError::Storage {
            task: task_id,
            source,
        };
        let bytes = self.dir.read(input).map_err(storage)?;
        let contents = String::from_utf8_lossy(&bytes);
        let app = self.config.app;
        let pairs = app
            .map(&mut self.context(), input, &contents)
            .await
            .map_err(|error| app_error(task_id, error))?;
        let mut partitions: Vec<Vec<KeyValue>> = vec![Vec::new(); n_reduce as usize];
        for pair in pairs {
            partitions[partition_of(&pair.key, n_reduce)].push(pair);
        }
        // Every partition is published, empty ones too, so a reduce task
        // can treat a missing file as the error it is.
        for (partition, pairs) in partitions.iter().enumerate() {
            let name = intermediate_name(task, partition as u32);
            self.dir
                .write_atomic(&name, &encode_pairs(pairs))
                .map_err(storage)?;
        }
        Ok(())
    }

    async fn run_reduce(&mut self, task: u32, n_map: u32) -> Result<(), WorkerError> {
        let task_id = TaskId::Reduce(task);
        let mut pairs = Vec::new();
        for map_task in 0..n_map {
            let name = intermediate_name(map_task, task);
            let bytes = self
                .dir
                .read(&name)
                .map_err(|source| WorkerError::Storage {
                    task: task_id,
                    source,
                })?;
            decode_pairs_into(&bytes, &mut pairs).map_err(|source| {
                WorkerError::CorruptIntermediate {
                    task: task_id,
                    name,
                    source,
                }
            })?;
        }
        let app = self.config.app;
        let output = reduce_sorted(app, &mut self.context(), pairs)
            .await
            .map_err(|error| app_error(task_id, error))?;
        self.dir
            .write_atomic(&output_name(task), output.as_bytes())
            .map_err(|source| WorkerError::Storage {
                task: task_id,
                source,
            })
    }
}

fn app_error(task: TaskId, error: AppError) -> WorkerError {
    match error {
        AppError::Crash => WorkerError::Crashed,
        AppError::Storage(source) => WorkerError::Storage { task, source },
        malformed @ AppError::Malformed { .. } => WorkerError::App {
            task,
            source: malformed,
        },
    }
}
