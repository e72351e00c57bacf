//! Real processes: `mrcoordinator`, `mrworker` and `mrsequential` as the
//! lab's `test-mr.sh` runs them, on 127.0.0.1, in a temporary directory.
//!
//! Bounded: every wait polls a bounded number of times, and every child is
//! killed when its guard drops (so a failing test leaves no process behind).
#![cfg(not(madsim))]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use mapreduce::textgen::{LAB_INPUT_NAMES, generate_text};
use mapreduce::{LocalDir, sorted_output_lines};

const COORDINATOR: &str = env!("CARGO_BIN_EXE_mrcoordinator");
const WORKER: &str = env!("CARGO_BIN_EXE_mrworker");
const SEQUENTIAL: &str = env!("CARGO_BIN_EXE_mrsequential");

/// Between polls of a child.
const POLL: Duration = Duration::from_millis(50);

/// A child process killed on drop unless it already exited.
struct Process {
    name: String,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Process {
    /// The exit status if the process exits within `bound`.
    fn wait_within(&mut self, bound: Duration) -> Option<ExitStatus> {
        let polls = bound.as_millis() / POLL.as_millis() + 1;
        for _ in 0..polls {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(POLL);
        }
        None
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }
}

/// Writes the eight lab-named inputs of `size_bytes` each into `dir`.
fn write_inputs(dir: &Path, size_bytes: usize) -> Vec<String> {
    LAB_INPUT_NAMES
        .iter()
        .enumerate()
        .map(|(index, name)| {
            std::fs::write(dir.join(name), generate_text(index as u64, size_bytes)).unwrap();
            name.to_string()
        })
        .collect()
}

/// Runs mrsequential in `dir` and returns its sorted lines (its mr-out-0
/// is then removed so it does not mix with the distributed outputs).
fn sequential(dir: &Path, app: &str, inputs: &[String]) -> Vec<String> {
    let status = Command::new(SEQUENTIAL)
        .current_dir(dir)
        .args(["--app", app])
        .args(inputs)
        .status()
        .unwrap();
    assert!(status.success(), "mrsequential {app}: {status}");
    let output = std::fs::read_to_string(dir.join("mr-out-0")).unwrap();
    std::fs::remove_file(dir.join("mr-out-0")).unwrap();
    let mut lines: Vec<String> = output.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Starts mrcoordinator on a free port; returns it and its address.
fn coordinator(dir: &Path, inputs: &[String], extra: &[&str]) -> (Process, String) {
    let mut child = Command::new(COORDINATOR)
        .current_dir(dir)
        .args(["--listen", "127.0.0.1:0", "--n-reduce", "10"])
        .args(extra)
        .args(inputs)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let addr = first_line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("coordinator printed {first_line:?}"))
        .trim()
        .to_string();
    (
        Process {
            name: "coordinator".into(),
            child,
        },
        addr,
    )
}

fn worker(dir: &Path, app: &str, addr: &str, index: usize) -> Process {
    let child = Command::new(WORKER)
        .current_dir(dir)
        .args(["--app", app, "--coordinator", addr])
        .spawn()
        .unwrap();
    Process {
        name: format!("worker-{index}"),
        child,
    }
}

/// What a job of real processes produced.
struct JobRun {
    /// Sorted output lines when the first process (coordinator or worker) exited.
    output_at_first_exit: Vec<String>,
    /// Sorted output lines after everyone exited.
    output: Vec<String>,
}

/// Runs a coordinator and `workers` workers of `app` in `dir`; everyone
/// must exit successfully, the coordinator within 30 s and the workers
/// within 10 s after it.
fn run_job(dir: &Path, inputs: &[String], app: &str, workers: usize) -> JobRun {
    let (mut coordinator, addr) = coordinator(dir, inputs, &[]);
    let mut workers: Vec<Process> = (0..workers)
        .map(|index| worker(dir, app, &addr, index))
        .collect();
    let directory = LocalDir::new(dir).unwrap();
    // Poll everyone until someone exits, then snapshot (at most 30 s).
    let mut output_at_first_exit = None;
    for _ in 0..Duration::from_secs(30).as_millis() / POLL.as_millis() {
        let someone_exited = coordinator.exited().is_some()
            || workers.iter_mut().any(|worker| worker.exited().is_some());
        if someone_exited {
            output_at_first_exit = Some(sorted_output_lines(&directory).unwrap());
            break;
        }
        std::thread::sleep(POLL);
    }
    let output_at_first_exit = output_at_first_exit.expect("some process exits within 30 s");
    let status = coordinator
        .wait_within(Duration::from_secs(30))
        .expect("the coordinator exits within 30 s");
    assert!(status.success(), "coordinator: {status}");
    for worker in &mut workers {
        let status = worker
            .wait_within(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{} still running 10 s after the coordinator", worker.name));
        assert!(status.success(), "{}: {status}", worker.name);
    }
    JobRun {
        output_at_first_exit,
        output: sorted_output_lines(&directory).unwrap(),
    }
}

/// Coordinator plus three workers for `app`, compared with mrsequential.
fn run_and_compare(app: &str) {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path(), 100_000);
    let expected = sequential(dir.path(), app, &inputs);
    let run = run_job(dir.path(), &inputs, app, 3);
    assert_eq!(
        run.output.len(),
        expected.len(),
        "line count differs from mrsequential"
    );
    assert!(run.output == expected, "output differs from mrsequential");
}

/// test-mr.sh "map parallelism": two workers both ran maps, at once.
#[test]
fn processes_map_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path(), 1_000);
    let output = run_job(dir.path(), &inputs, "mtiming", 2).output;
    let times = output
        .iter()
        .filter(|line| line.starts_with("times-"))
        .count();
    assert_eq!(
        times, 2,
        "maps ran on {times} workers, expected 2: {output:?}"
    );
    assert!(
        output
            .iter()
            .any(|line| line.starts_with("parallel-") && line.contains(" 2")),
        "map workers never ran in parallel: {output:?}"
    );
}

/// test-mr.sh "reduce parallelism": at least two reduce calls overlapped.
#[test]
fn processes_reduce_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path(), 1_000);
    let output = run_job(dir.path(), &inputs, "rtiming", 2).output;
    let parallel = output
        .iter()
        .filter(|line| line.len() == 3 && line.ends_with(" 2"))
        .count();
    assert!(
        parallel >= 2,
        "too few parallel reduces ({parallel}): {output:?}"
    );
}

/// test-mr.sh "job count": each of the 8 map tasks ran exactly once.
#[test]
fn processes_job_count() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path(), 1_000);
    let output = run_job(dir.path(), &inputs, "jobcount", 4).output;
    assert_eq!(output, vec!["a 8".to_string()]);
}

/// test-mr.sh "early exit": the output is complete when the first process exits.
#[test]
fn processes_early_exit() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path(), 1_000);
    let expected = sequential(dir.path(), "early_exit", &inputs);
    let run = run_job(dir.path(), &inputs, "early_exit", 3);
    assert_eq!(
        run.output_at_first_exit, expected,
        "output incomplete at the first exit"
    );
    assert_eq!(run.output, expected);
}

#[test]
fn processes_wc() {
    run_and_compare("wc");
}

#[test]
fn processes_indexer() {
    run_and_compare("indexer");
}

/// test-mr.sh "crash": workers running `crash` die (exit 1) or stall at
/// random; a supervisor loop restarts dead ones until the coordinator
/// exits. To keep this under ~30 s the coordinator re-issues after 2 s
/// instead of the lab's 10 s (the simulated mr_crash uses the lab's 10 s).
#[test]
fn processes_crash() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path(), 2_000);
    let expected = sequential(dir.path(), "nocrash", &inputs);
    let (mut coordinator, addr) = coordinator(dir.path(), &inputs, &["--task-timeout-ms", "2000"]);
    let mut workers: Vec<Process> = (0..3)
        .map(|index| worker(dir.path(), "crash", &addr, index))
        .collect();
    let mut restarts = 0;
    // At most 60 s of supervising.
    let rounds = Duration::from_secs(60).as_millis() / POLL.as_millis();
    for _ in 0..rounds {
        if coordinator.exited().is_some() {
            break;
        }
        for (index, slot) in workers.iter_mut().enumerate() {
            if slot.exited().is_some() {
                *slot = worker(dir.path(), "crash", &addr, index);
                restarts += 1;
            }
        }
        std::thread::sleep(POLL);
    }
    let status = coordinator
        .wait_within(Duration::from_secs(1))
        .expect("the coordinator finished the crash job within 60 s");
    assert!(status.success(), "coordinator: {status}");
    for worker in &mut workers {
        // Survivors exit by themselves (told to, or finding the coordinator
        // gone); a stalled one may need its 10 s stall plus 5 s.
        assert!(
            worker.wait_within(Duration::from_secs(20)).is_some(),
            "{} did not exit after the job",
            worker.name
        );
    }
    let output = sorted_output_lines(&LocalDir::new(dir.path()).unwrap()).unwrap();
    assert_eq!(
        output, expected,
        "crash output differs from nocrash's sequential run ({restarts} restarts)"
    );
}

fn run_expecting_failure(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success(), "{command:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_input_fails_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path(), 1_000);
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();

    let stderr = run_expecting_failure(Command::new(COORDINATOR).current_dir(dir.path()).args([
        "--listen",
        "127.0.0.1:0",
        "--n-reduce",
        "3",
        "pg-grimm.txt",
        "missing.txt",
    ]));
    assert!(stderr.contains("missing.txt"), "coordinator said: {stderr}");

    let stderr = run_expecting_failure(Command::new(SEQUENTIAL).current_dir(dir.path()).args([
        "--app",
        "wc",
        &inputs[0],
        "missing.txt",
    ]));
    assert!(
        stderr.contains("missing.txt"),
        "mrsequential said: {stderr}"
    );

    let stderr = run_expecting_failure(Command::new(WORKER).current_dir(dir.path()).args([
        "--app",
        "wordcount",
        "--coordinator",
        "127.0.0.1:1",
    ]));
    assert!(stderr.contains("wordcount"), "mrworker said: {stderr}");

    let stderr = run_expecting_failure(Command::new(SEQUENTIAL).current_dir(dir.path()).args([
        "--app",
        "nosuchapp",
        &inputs[0],
    ]));
    assert!(stderr.contains("nosuchapp"), "mrsequential said: {stderr}");

    // Port 1 on loopback: nothing listens there, so every call is refused.
    let stderr = run_expecting_failure(Command::new(WORKER).current_dir(dir.path()).args([
        "--app",
        "wc",
        "--coordinator",
        "127.0.0.1:1",
    ]));
    assert!(
        stderr.contains("cannot reach the coordinator"),
        "mrworker said: {stderr}"
    );

    assert_eq!(listing(), before, "a failed command left files behind");
}
