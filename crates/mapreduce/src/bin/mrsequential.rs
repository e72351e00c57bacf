//! `mrsequential --app NAME FILES...`: the single-process reference; writes
//! `mr-out-0` (atomically) in the output directory, or nothing on error.

#[cfg(not(madsim))]
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    production::main().await
}

#[cfg(madsim)]
fn main() {
    eprintln!("mrsequential runs only in the normal (non-simulated) build");
    std::process::exit(2);
}

#[cfg(not(madsim))]
mod production {
    use std::process::ExitCode;

    use clap::Parser;
    use mapreduce::sequential::run_sequential;
    use mapreduce::{App, LocalDir};
    use rand::{Rng, SeedableRng};

    /// Sequential MapReduce: the reference output for a job.
    #[derive(Parser)]
    struct Args {
        /// The application: wc, indexer, crash, nocrash, mtiming, rtiming,
        /// jobcount, early_exit.
        #[arg(long)]
        app: App,
        /// Where to write mr-out-0 (input names are read relative to it too).
        #[arg(long, default_value = ".")]
        dir: String,
        /// Input files.
        #[arg(required = true)]
        files: Vec<String>,
    }

    pub async fn main() -> ExitCode {
        let args = Args::parse();
        let dir = match LocalDir::new(&args.dir) {
            Ok(dir) => dir,
            Err(error) => {
                eprintln!("mrsequential: {error}");
                return ExitCode::FAILURE;
            }
        };
        let seed = rand::rngs::StdRng::from_entropy().r#gen();
        match run_sequential(args.app, &dir, &args.files, seed).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("mrsequential: {error}");
                ExitCode::FAILURE
            }
        }
    }
}
