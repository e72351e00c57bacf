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

/// Coordinator plus three workers for `app`; everyone must exit
/// successfully within 30 s and the output must equal mrsequential's.
fn run_and_compare(app: &str) {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path(), 100_000);
    let expected = sequential(dir.path(), app, &inputs);
    let (mut coordinator, addr) = coordinator(dir.path(), &inputs, &[]);
    let mut workers: Vec<Process> = (0..3)
        .map(|index| worker(dir.path(), app, &addr, index))
        .collect();
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
    let output = sorted_output_lines(&LocalDir::new(dir.path()).unwrap()).unwrap();
    assert_eq!(
        output.len(),
        expected.len(),
        "line count differs from mrsequential"
    );
    assert!(output == expected, "output differs from mrsequential");
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
