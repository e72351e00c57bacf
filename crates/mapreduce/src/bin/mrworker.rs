//! `mrworker --app NAME --coordinator ADDR`: works for the coordinator until
//! the job is done. Exits 0 when told to (or when the coordinator is gone
//! after having answered), 1 on a failure or when the `crash` application
//! crashes it.

#[cfg(not(madsim))]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    production::main().await
}

#[cfg(madsim)]
fn main() {
    eprintln!("mrworker runs only in the normal (non-simulated) build");
    std::process::exit(2);
}

#[cfg(not(madsim))]
mod production {
    use std::net::SocketAddr;
    use std::process::ExitCode;
    use std::sync::Arc;

    use clap::Parser;
    use mapreduce::worker::{WorkerConfig, WorkerError, WorkerExit, run_worker};
    use mapreduce::{App, LocalDir};
    use rand::{Rng, SeedableRng};

    /// A MapReduce worker (6.5840 Lab 1).
    #[derive(Parser)]
    struct Args {
        /// The application: wc, indexer, crash, nocrash, mtiming, rtiming,
        /// jobcount, early_exit.
        #[arg(long)]
        app: App,
        /// The coordinator's address.
        #[arg(long)]
        coordinator: SocketAddr,
        /// The shared job directory.
        #[arg(long, default_value = ".")]
        dir: String,
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
        let dir = match LocalDir::new(&args.dir) {
            Ok(dir) => dir,
            Err(error) => {
                eprintln!("mrworker: {error}");
                return ExitCode::FAILURE;
            }
        };
        // Production randomness: entropy, as the lab's crypto/rand. (The
        // simulation passes a seed from madsim instead.)
        let seed = rand::rngs::StdRng::from_entropy().r#gen();
        let config = WorkerConfig::new(
            args.coordinator,
            args.app,
            u64::from(std::process::id()),
            seed,
        );
        match run_worker(config, Arc::new(dir)).await {
            Ok(WorkerExit::ToldToExit) => ExitCode::SUCCESS,
            Ok(WorkerExit::CoordinatorGone) => {
                eprintln!("mrworker: the coordinator is gone; assuming the job is done");
                ExitCode::SUCCESS
            }
            Err(WorkerError::Crashed) => {
                // The lab's crash plugin calls os.Exit(1): no cleanup.
                std::process::exit(1);
            }
            Err(error) => {
                eprintln!("mrworker: {error}");
                ExitCode::FAILURE
            }
        }
    }
}
