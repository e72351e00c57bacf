//! `mrcoordinator --listen ADDR --n-reduce N FILES...`: serves one job and
//! exits when it is done. Prints `listening on ADDR` first, so a caller that
//! asked for port 0 learns the port, and `job done in S s` when the output
//! is complete (it then keeps answering `Exit` for a second, and exits).

#[cfg(not(madsim))]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    production::main().await
}

#[cfg(madsim)]
fn main() {
    eprintln!("mrcoordinator runs only in the normal (non-simulated) build");
    std::process::exit(2);
}

#[cfg(not(madsim))]
mod production {
    use std::io::Write;
    use std::net::SocketAddr;
    use std::process::ExitCode;
    use std::time::Duration;

    use clap::Parser;
    use mapreduce::coordinator::{Coordinator, CoordinatorConfig};

    /// The MapReduce coordinator (6.5840 Lab 1).
    #[derive(Parser)]
    struct Args {
        /// Address to serve on, e.g. 127.0.0.1:7000 (port 0: any free port).
        #[arg(long)]
        listen: SocketAddr,
        /// Number of reduce tasks.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        n_reduce: u32,
        /// Re-issue a task whose worker is silent this long.
        #[arg(long, default_value_t = 10_000)]
        task_timeout_ms: u64,
        /// Input files, one map task each; workers read them by these names,
        /// so run workers in the same directory or give absolute paths.
        #[arg(required = true)]
        files: Vec<String>,
    }

    pub async fn main() -> ExitCode {
        let args = Args::parse();
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .init();
        for file in &args.files {
            match std::fs::metadata(file) {
                Ok(metadata) if metadata.is_file() => {}
                Ok(_) => return fail(&format!("input {file}: not a regular file")),
                Err(error) => return fail(&format!("input {file}: {error}")),
            }
        }
        let mut config = CoordinatorConfig::new(args.listen, args.files, args.n_reduce);
        config.task_timeout = Duration::from_millis(args.task_timeout_ms);
        let mut coordinator = match Coordinator::start(config).await {
            Ok(coordinator) => coordinator,
            Err(error) => return fail(&error.to_string()),
        };
        // A caller that has stopped reading stdout (closed the pipe) must
        // not kill the job: these lines are informational after the first.
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on {}", coordinator.local_addr());
        let _ = stdout.flush();
        let started = labrpc::runtime::now();
        coordinator.wait_done().await;
        let _ = writeln!(
            stdout,
            "job done in {:.3} s",
            started.elapsed().as_secs_f64()
        );
        let _ = stdout.flush();
        let progress = coordinator.finish().await;
        eprintln!(
            "mrcoordinator: job done: {} maps, {} reduces, {} tasks handed out",
            progress.maps_total, progress.reduces_total, progress.attempts_issued
        );
        ExitCode::SUCCESS
    }

    fn fail(message: &str) -> ExitCode {
        eprintln!("mrcoordinator: {message}");
        ExitCode::FAILURE
    }
}
