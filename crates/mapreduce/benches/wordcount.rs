//! Word count over generated text: `mrsequential` against a coordinator
//! with 1 and 2 `mrworker` processes, all real processes on loopback.
//!
//! ```text
//! cargo bench -p mapreduce --bench wordcount             # 50 MB (default)
//! MR_BENCH_MB=300 cargo bench -p mapreduce --bench wordcount   # a few hundred MB
//! ```
//!
//! The text is split into 16 input files (16 map tasks) and `n_reduce` is
//! 10. Each configuration's output is checked against the sequential one.
//! Wall time includes process start-up, reading inputs, writing and
//! `fsync`ing every intermediate and output file. Numbers are in the crate
//! docs (`src/lib.rs`, "Performance").
#![cfg_attr(madsim, allow(unused))]

#[cfg(madsim)]
fn main() {}

#[cfg(not(madsim))]
fn main() {
    bench::main();
}

#[cfg(not(madsim))]
mod bench {
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Command, Stdio};

    use mapreduce::textgen::generate_text;
    use mapreduce::{LocalDir, sorted_output_lines};

    use std::path::PathBuf;
    use std::sync::LazyLock;

    /// A binary of this package: where cargo says, or else next to the
    /// bench's own directory (`target/<profile>/deps/..`), where
    /// `cargo bench` puts the package's binaries.
    fn binary(compiled_in: Option<&'static str>, name: &str) -> PathBuf {
        if let Some(path) = compiled_in {
            return PathBuf::from(path);
        }
        let bench = std::env::current_exe().expect("the bench knows its own path");
        let path = bench
            .parent()
            .and_then(Path::parent)
            .expect("the bench runs from target/<profile>/deps")
            .join(name);
        assert!(
            path.exists(),
            "{} is missing: run `cargo build --release -p mapreduce --bins` first",
            path.display()
        );
        path
    }

    static COORDINATOR: LazyLock<PathBuf> =
        LazyLock::new(|| binary(option_env!("CARGO_BIN_EXE_mrcoordinator"), "mrcoordinator"));
    static WORKER: LazyLock<PathBuf> =
        LazyLock::new(|| binary(option_env!("CARGO_BIN_EXE_mrworker"), "mrworker"));
    static SEQUENTIAL: LazyLock<PathBuf> =
        LazyLock::new(|| binary(option_env!("CARGO_BIN_EXE_mrsequential"), "mrsequential"));
    const INPUT_FILES: usize = 16;

    /// Wall-clock seconds of `run`. A benchmark measures real time, which
    /// is exactly what the workspace's clippy ban on `Instant::now` guards
    /// against elsewhere.
    #[allow(clippy::disallowed_methods)]
    fn timed(run: impl FnOnce()) -> f64 {
        let started = std::time::Instant::now();
        run();
        started.elapsed().as_secs_f64()
    }

    fn clear_outputs(dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.starts_with("mr-") {
                std::fs::remove_file(dir.join(name)).unwrap();
            }
        }
    }

    fn run_sequential(dir: &Path, inputs: &[String]) {
        let status = Command::new(&*SEQUENTIAL)
            .current_dir(dir)
            .args(["--app", "wc"])
            .args(inputs)
            .status()
            .unwrap();
        assert!(status.success(), "mrsequential: {status}");
    }

    /// Runs a coordinator and `workers` workers; returns the job time the
    /// coordinator reports (from serving to the last reduce done).
    fn run_distributed(dir: &Path, inputs: &[String], workers: usize) -> f64 {
        let mut coordinator = Command::new(&*COORDINATOR)
            .current_dir(dir)
            .args(["--listen", "127.0.0.1:0", "--n-reduce", "10"])
            .args(inputs)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(coordinator.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_string();
        let mut children: Vec<_> = (0..workers)
            .map(|_| {
                Command::new(&*WORKER)
                    .current_dir(dir)
                    .args(["--app", "wc", "--coordinator", &addr])
                    .spawn()
                    .unwrap()
            })
            .collect();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        let job_seconds: f64 = line
            .trim()
            .strip_prefix("job done in ")
            .and_then(|rest| rest.strip_suffix(" s"))
            .and_then(|seconds| seconds.parse().ok())
            .unwrap_or_else(|| panic!("coordinator printed {line:?}"));
        assert!(coordinator.wait().unwrap().success());
        for child in &mut children {
            assert!(child.wait().unwrap().success());
        }
        job_seconds
    }

    pub fn main() {
        let size_mb: usize = std::env::var("MR_BENCH_MB")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(50);
        let dir = tempfile::tempdir().unwrap();
        let per_file = size_mb * 1_000_000 / INPUT_FILES;
        let inputs: Vec<String> = (0..INPUT_FILES)
            .map(|index| {
                let name = format!("input-{index:02}.txt");
                std::fs::write(
                    dir.path().join(&name),
                    generate_text(index as u64, per_file),
                )
                .unwrap();
                name
            })
            .collect();
        let total_bytes: u64 = inputs
            .iter()
            .map(|name| std::fs::metadata(dir.path().join(name)).unwrap().len())
            .sum();
        let megabytes = total_bytes as f64 / 1e6;
        let directory = LocalDir::new(dir.path()).unwrap();
        println!("word count over {megabytes:.1} MB in {INPUT_FILES} files, n_reduce 10");

        let sequential_seconds = timed(|| run_sequential(dir.path(), &inputs));
        let reference = sorted_output_lines(&directory).unwrap();
        println!(
            "  mrsequential         {sequential_seconds:7.2} s  {:7.1} MB/s",
            megabytes / sequential_seconds
        );
        for workers in [1, 2] {
            clear_outputs(dir.path());
            let mut job_seconds = 0.0;
            let process_seconds =
                timed(|| job_seconds = run_distributed(dir.path(), &inputs, workers));
            let output = sorted_output_lines(&directory).unwrap();
            assert!(output == reference, "{workers}-worker output differs");
            println!(
                "  coordinator + {workers} worker{} {job_seconds:7.2} s  {:7.1} MB/s  speed-up x{:.2} vs mrsequential \
                 (until every process exited: {process_seconds:.2} s, including the coordinator's 1 s exit grace)",
                if workers == 1 { " " } else { "s" },
                megabytes / job_seconds,
                sequential_seconds / job_seconds
            );
        }
    }
}
