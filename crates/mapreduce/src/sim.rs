//! The simulation tester (only under `--cfg madsim`): a MapReduce job on
//! simulated nodes, shared by the `sim-tests` suite and the swarm scenario.
//!
//! ```text
//!   coordinator node (10.2.0.1)        worker nodes (10.2.0.2 ...)
//!   init: Coordinator::start, wait     init: run_worker (new id, new seed)
//!          │                                   │   restart = a new process
//!          └──── labrpc over sim::Network ─────┘
//!                        │
//!             SharedMemoryDir (one per job, shared by every node,
//!             survives kills: the lab's shared filesystem)
//! ```
//!
//! Every node records how it ended in a [`JobLog`] held outside the nodes,
//! so the test can see exits, crashes and the output at the first exit.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use labrpc::sim::{Network, NodeId};
use madsim::rand::{Rng, thread_rng};

use crate::coordinator::{Coordinator, CoordinatorConfig, Progress};
use crate::sequential::sequential_output;
use crate::storage::{JobDir, SharedMemoryDir};
use crate::textgen::{LAB_INPUT_NAMES, generate_text};
use crate::worker::{WorkerConfig, WorkerExit, run_worker};
use crate::{App, sorted_output_lines};

/// The port the simulated coordinator serves on.
pub const COORDINATOR_PORT: u16 = 7000;

/// The shape of a simulated job.
#[derive(Debug, Clone)]
pub struct SimJobConfig {
    pub app: App,
    pub workers: usize,
    pub n_reduce: u32,
    /// Size of each of the eight generated inputs.
    pub input_bytes: usize,
    /// The coordinator's re-issue timeout (the lab's 10 s by default).
    pub task_timeout: Duration,
}

impl SimJobConfig {
    /// The lab's defaults: eight inputs, `n_reduce` 10, 10 s re-issue.
    pub fn new(app: App, workers: usize) -> SimJobConfig {
        SimJobConfig {
            app,
            workers,
            n_reduce: 10,
            input_bytes: 8_000,
            task_timeout: Duration::from_secs(10),
        }
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEnd {
    Exited(WorkerExit),
    /// The `crash` application crashed it.
    Crashed,
    /// Another error, described.
    Failed(String),
}

/// What the nodes recorded.
#[derive(Debug, Default)]
pub struct JobLog {
    /// Set when the coordinator's `wait` returned (it then stops serving).
    pub coordinator_exit: Option<Progress>,
    /// Per worker index: the worker id of the incarnation running now, if any.
    pub running: BTreeMap<usize, u64>,
    /// Every worker process that ended by itself: (index, worker id, how).
    pub worker_ends: Vec<(usize, u64, WorkerEnd)>,
    /// The sorted output lines at the moment the first process exited.
    pub output_at_first_exit: Option<Vec<String>>,
    /// Worker processes started (restarts included).
    pub worker_starts: u64,
}

/// A job running on simulated nodes.
pub struct SimJob {
    pub net: Network,
    pub dir: SharedMemoryDir,
    pub config: SimJobConfig,
    pub inputs: Vec<String>,
    coordinator: NodeId,
    workers: Vec<NodeId>,
    log: Arc<Mutex<JobLog>>,
}

fn lock(log: &Mutex<JobLog>) -> MutexGuard<'_, JobLog> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ip(index: usize) -> IpAddr {
    let index = u8::try_from(index + 1).expect("fewer than 255 simulated MapReduce nodes");
    IpAddr::V4(Ipv4Addr::new(10, 2, 0, index))
}

/// The simulated coordinator's address.
pub fn coordinator_addr() -> SocketAddr {
    SocketAddr::new(ip(0), COORDINATOR_PORT)
}

/// Records `end` for the first process to exit: snapshots the output.
fn note_first_exit(log: &mut JobLog, dir: &SharedMemoryDir) {
    if log.output_at_first_exit.is_none() {
        log.output_at_first_exit =
            Some(sorted_output_lines(dir).expect("the in-memory directory cannot fail"));
    }
}

impl SimJob {
    /// Creates the network, writes eight generated inputs (from the
    /// simulation's seed), starts the coordinator and the workers.
    ///
    /// # Panics
    /// Outside a madsim runtime, or with zero workers.
    pub async fn start(config: SimJobConfig) -> SimJob {
        assert!(config.workers > 0, "a job needs a worker");
        let net = Network::new();
        let dir = SharedMemoryDir::new();
        let mut inputs = Vec::new();
        for name in LAB_INPUT_NAMES {
            let text = generate_text(thread_rng().r#gen(), config.input_bytes);
            dir.write_atomic(name, text.as_bytes())
                .expect("the in-memory directory cannot fail");
            inputs.push(name.to_string());
        }
        let log: Arc<Mutex<JobLog>> = Arc::default();

        let coordinator = {
            let mut coordinator_config =
                CoordinatorConfig::new(coordinator_addr(), inputs.clone(), config.n_reduce);
            coordinator_config.task_timeout = config.task_timeout;
            let log = Arc::clone(&log);
            let dir = dir.clone();
            net.add_node("mr-coordinator", ip(0), move || {
                let coordinator_config = coordinator_config.clone();
                let log = Arc::clone(&log);
                let dir = dir.clone();
                async move {
                    let coordinator = Coordinator::start(coordinator_config)
                        .await
                        .expect("the simulated coordinator starts");
                    let progress = coordinator.wait().await;
                    let mut log = lock(&log);
                    note_first_exit(&mut log, &dir);
                    log.coordinator_exit = Some(progress);
                }
            })
        };
        // Let the coordinator bind before workers call it.
        tokio::time::sleep(Duration::from_millis(10)).await;

        let workers = (0..config.workers)
            .map(|index| {
                let log = Arc::clone(&log);
                let dir = dir.clone();
                let app = config.app;
                net.add_node(&format!("mr-worker-{index}"), ip(index + 1), move || {
                    worker_process(index, app, Arc::clone(&log), dir.clone())
                })
            })
            .collect();
        SimJob {
            net,
            dir,
            config,
            inputs,
            coordinator,
            workers,
            log,
        }
    }

    /// What the nodes have recorded so far.
    pub fn log(&self) -> MutexGuard<'_, JobLog> {
        lock(&self.log)
    }

    pub fn worker_nodes(&self) -> &[NodeId] {
        &self.workers
    }

    pub fn coordinator_node(&self) -> NodeId {
        self.coordinator
    }

    /// Whether worker `index` has a process running.
    pub fn worker_running(&self, index: usize) -> bool {
        self.log().running.contains_key(&index)
    }

    /// Kills worker `index`'s node (its process dies without a word).
    pub fn kill_worker(&self, index: usize) {
        self.net.kill(self.workers[index]);
        self.log().running.remove(&index);
    }

    /// Starts a new worker process on node `index` (killing any old one).
    pub async fn restart_worker(&self, index: usize) {
        self.log().running.remove(&index);
        self.net.restart(self.workers[index]).await;
    }

    /// Waits until the coordinator and every running worker have exited.
    pub async fn wait_all_exited(&self, bound: Duration) -> Result<Progress, String> {
        let deadline = labrpc::runtime::now() + bound;
        loop {
            {
                let log = self.log();
                if let Some(progress) = log.coordinator_exit
                    && log.running.is_empty()
                {
                    return Ok(progress);
                }
                if labrpc::runtime::now() >= deadline {
                    return Err(format!(
                        "after {bound:?}: coordinator exited: {}, workers still running: {:?}",
                        log.coordinator_exit.is_some(),
                        log.running.keys().collect::<Vec<_>>()
                    ));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The job's output: every `mr-out-*` line, sorted.
    pub fn output(&self) -> Vec<String> {
        sorted_output_lines(&self.dir).expect("the in-memory directory cannot fail")
    }

    /// The sequential reference for `app` over this job's inputs, sorted
    /// (computed in the calling task; it touches no network).
    pub async fn reference(&self, app: App) -> Vec<String> {
        let scratch = SharedMemoryDir::new();
        for name in &self.inputs {
            let bytes = self.dir.read(name).expect("inputs were written at start");
            scratch
                .write_atomic(name, &bytes)
                .expect("the in-memory directory cannot fail");
        }
        let output = sequential_output(app, &scratch, &self.inputs, thread_rng().r#gen())
            .await
            .unwrap_or_else(|error| panic!("sequential {app} failed: {error}"));
        let mut lines: Vec<String> = output.lines().map(str::to_string).collect();
        lines.sort();
        lines
    }
}

/// One worker process: a fresh id and seed per incarnation, so a restarted
/// node is a new process as far as the job can tell.
async fn worker_process(index: usize, app: App, log: Arc<Mutex<JobLog>>, dir: SharedMemoryDir) {
    let worker_id = {
        let mut log = lock(&log);
        log.worker_starts += 1;
        let worker_id = (index as u64 + 1) * 1_000_000 + log.worker_starts;
        log.running.insert(index, worker_id);
        worker_id
    };
    let config = WorkerConfig::new(coordinator_addr(), app, worker_id, thread_rng().r#gen());
    let outcome = run_worker(config, Arc::new(dir.clone())).await;
    let end = match outcome {
        Ok(exit) => WorkerEnd::Exited(exit),
        Err(crate::worker::WorkerError::Crashed) => WorkerEnd::Crashed,
        Err(error) => WorkerEnd::Failed(error.to_string()),
    };
    let mut log = lock(&log);
    note_first_exit(&mut log, &dir);
    log.running.remove(&index);
    log.worker_ends.push((index, worker_id, end));
}
