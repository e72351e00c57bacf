//! The MapReduce layer under a random fault mix.
//!
//! The seed picks the application (`wc`, `indexer` or `crash`), the worker
//! count and `n_reduce`. During the fault phase the injector kills,
//! restarts, pauses and disconnects workers, briefly disconnects the
//! coordinator and flips the network's reliability. In the heal phase every
//! fault stops, dead workers are restarted (again and again for `crash`,
//! whose workers keep dying on purpose, as the lab's script does), and:
//! - the job finishes (the coordinator exits) within 60 s of healing;
//! - the output equals the sequential run (`nocrash` for `crash`);
//! - there is exactly one `mr-out-*` per reduce task;
//! - every worker exits within 20 s of the coordinator (a `crash` worker
//!   may be stalled for up to 10 s, then gives the silent coordinator 5 s).
//!
//! The coordinator re-issues silent tasks after 2 s, not the lab's 10 s:
//! the swarm runs every layer in one simulation with a 120 s limit, and with
//! 10 s per crash the `crash` job's tail alone can exceed that (see
//! `mr_crash` in `tests/mapreduce.rs`). A short timeout also re-issues tasks
//! that are merely slow far more often, which exercises duplicate attempts.

use std::time::Duration;

use madsim::rand::{Rng, thread_rng};
use mapreduce::sim::{SimJob, SimJobConfig};
use mapreduce::{App, JobDir};

use super::Report;

/// How long faults are injected, in simulated time.
const FAULT_PHASE: Duration = Duration::from_secs(10);
/// How long the job gets to finish once faults stop.
const HEAL_BOUND: Duration = Duration::from_secs(60);
/// The coordinator's re-issue timeout here (see the module docs).
const TASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long workers get to exit after the coordinator.
const EXIT_BOUND: Duration = Duration::from_secs(20);

pub async fn run() -> Report {
    let mut rng = thread_rng();
    let app = [App::Wc, App::Indexer, App::Crash][rng.gen_range(0..3)];
    let workers = rng.gen_range(1..=5usize);
    let mut config = SimJobConfig::new(app, workers);
    config.n_reduce = rng.gen_range(1..=10);
    config.input_bytes = 4_000;
    config.task_timeout = TASK_TIMEOUT;
    let n_reduce = config.n_reduce;
    let job = SimJob::start(config).await;
    let reference_app = if app == App::Crash { App::NoCrash } else { app };
    let expected = job.reference(reference_app).await;

    let mut report = Report {
        layer: "mapreduce",
        nodes: workers + 1,
        clients: 0,
        ..Report::default()
    };
    inject_faults(&job, &mut report).await;

    // Heal phase: no more faults; keep dead workers restarted until done.
    job.net.heal_all();
    job.net.set_reliable(true);
    for &node in job.worker_nodes() {
        job.net.resume(node);
    }
    let healed = labrpc::runtime::now();
    // Bounded by HEAL_BOUND.
    while job.log().coordinator_exit.is_none() && healed.elapsed() < HEAL_BOUND {
        for index in 0..workers {
            if !job.worker_running(index) && job.log().coordinator_exit.is_none() {
                job.restart_worker(index).await;
                *report.faults.entry("heal-restart").or_insert(0) += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let finished = job.log().coordinator_exit.is_some();
    report.check(
        &format!("{app} job with {workers} workers finishes within {HEAL_BOUND:?} of healing"),
        if finished {
            Ok(())
        } else {
            let progress = job.log().coordinator_exit;
            Err(format!("coordinator still running; progress {progress:?}"))
        },
    );
    report.check(
        &format!("every worker exits within {EXIT_BOUND:?} of the coordinator"),
        if finished {
            job.wait_all_exited(EXIT_BOUND).await.map(|_| ())
        } else {
            Err("the job never finished".into())
        },
    );
    let output = job.output();
    report.check(
        "output equals the sequential run",
        if output == expected {
            Ok(())
        } else {
            Err(format!(
                "{} lines, expected {}; first differing: {:?}",
                output.len(),
                expected.len(),
                output
                    .iter()
                    .zip(&expected)
                    .find(|(seen, wanted)| seen != wanted)
            ))
        },
    );
    let outputs = job
        .dir
        .list("mr-out-")
        .map(|names| names.len())
        .unwrap_or(0);
    report.check(
        "one mr-out file per reduce task",
        if outputs == n_reduce as usize {
            Ok(())
        } else {
            Err(format!("{outputs} files for {n_reduce} reduce tasks"))
        },
    );
    report.rpcs_sent = job.net.total_rpc_count();
    report.rpcs_delivered = job.net.rpc_count(job.coordinator_node());
    report.bytes = job.net.total_bytes();
    report
}

async fn inject_faults(job: &SimJob, report: &mut Report) {
    let mut rng = thread_rng();
    let workers = job.worker_nodes().to_vec();
    let coordinator = job.coordinator_node();
    let started = labrpc::runtime::now();
    let mut paused = vec![false; workers.len()];
    while started.elapsed() < FAULT_PHASE && job.log().coordinator_exit.is_none() {
        // Frequent: a healthy wc or indexer job takes about a second of
        // simulated time, and faults should land while tasks are running.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(10..400))).await;
        let index = rng.gen_range(0..workers.len());
        let kind = match rng.gen_range(0..8) {
            0 | 1 => {
                if !job.worker_running(index) {
                    continue;
                }
                job.kill_worker(index);
                "kill-worker"
            }
            2 | 3 => {
                paused[index] = false;
                job.restart_worker(index).await;
                "restart-worker"
            }
            4 => {
                if paused[index] {
                    job.net.resume(workers[index]);
                    paused[index] = false;
                    "resume-worker"
                } else {
                    job.net.pause(workers[index]);
                    paused[index] = true;
                    "pause-worker"
                }
            }
            5 => {
                job.net.disconnect(workers[index]);
                "disconnect-worker"
            }
            6 => {
                // Short enough (under the workers' 5 s give-up) most times,
                // but not always: a worker that gives up is restarted later.
                job.net.disconnect(coordinator);
                tokio::time::sleep(Duration::from_millis(rng.gen_range(100..3_000))).await;
                job.net.connect(coordinator);
                "disconnect-coordinator"
            }
            _ => {
                job.net.set_reliable(rng.gen_bool(0.5));
                job.net.heal_all();
                "reliability-flip-and-heal"
            }
        };
        *report.faults.entry(kind).or_insert(0) += 1;
    }
}
