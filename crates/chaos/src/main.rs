//! `distcache-chaos`: see the crate docs and `distcache-chaos --help`.

#[cfg(madsim)]
fn main() {
    eprintln!("distcache-chaos drives real processes; it has no simulation build");
    std::process::exit(2);
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(madsim))]
mod cli {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::Duration;

    use chaos::faults::parse_kinds;
    use chaos::run::{RunConfig, default_binary, run};
    use clap::Parser;

    /// Runs a real distcache cluster under faults and checks its history.
    #[derive(Parser, Debug)]
    #[command(name = "distcache-chaos")]
    struct Args {
        /// Chooses the fault schedule and the workload.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The workload's length in seconds (faults, then the heal phase).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// The heal phase at the end, in seconds.
        #[arg(long, default_value_t = 10)]
        heal_seconds: u64,
        /// The run's output directory (default target/chaos/seed-N).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The distcache binary (default: next to this one).
        #[arg(long)]
        distcache_bin: Option<PathBuf>,
        /// Fault kinds, comma-separated, or `all`.
        #[arg(long, default_value = "all")]
        faults: String,
        #[arg(long, default_value_t = 4)]
        grpc_clients: u64,
        #[arg(long, default_value_t = 2)]
        resp_clients: u64,
        /// Per-operation timeout in milliseconds.
        #[arg(long, default_value_t = 3000)]
        op_timeout_ms: u64,
        /// Extra top-level TOML lines for every node (e.g. the broken
        /// build's switch).
        #[arg(long, default_value = "")]
        extra_config: String,
        /// No shard moves or group leave/join during the faults.
        #[arg(long)]
        no_reshape: bool,
        /// Every other client reads from any replica of the key's group
        /// (gRPC `read_from = AnyReplica`, RESP `READONLY`), the rest from
        /// leaders; one history checks both.
        #[arg(long)]
        replica_reads: bool,
        /// Both data groups replicate asynchronously (`[replication]
        /// async_groups`): plain puts acknowledged from 1 s before a fault
        /// to 1 s after it count as unknown (they may be lost); appends,
        /// reads and every other check stay as they are.
        #[arg(long)]
        async_replication: bool,
    }

    pub fn main() -> ExitCode {
        let args = Args::parse();
        let kinds = match parse_kinds(&args.faults) {
            Ok(kinds) => kinds,
            Err(error) => {
                eprintln!("distcache-chaos: --faults: {error}");
                return ExitCode::from(2);
            }
        };
        if args.heal_seconds >= args.seconds || args.seconds > 24 * 3600 {
            eprintln!(
                "distcache-chaos: --seconds must exceed --heal-seconds and be at most a day (got {} and {})",
                args.seconds, args.heal_seconds
            );
            return ExitCode::from(2);
        }
        if args.grpc_clients + args.resp_clients == 0 || args.grpc_clients + args.resp_clients > 64
        {
            eprintln!("distcache-chaos: between 1 and 64 clients in all");
            return ExitCode::from(2);
        }
        let Some(binary) = args.distcache_bin.clone().or_else(default_binary) else {
            eprintln!(
                "distcache-chaos: no distcache binary next to this one; build it (cargo build -p distcache) or pass --distcache-bin"
            );
            return ExitCode::from(2);
        };
        if !binary.is_file() {
            eprintln!("distcache-chaos: {} is not a file", binary.display());
            return ExitCode::from(2);
        }
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("target/chaos/seed-{}", args.seed)));
        if out.exists() {
            let _ = std::fs::remove_dir_all(&out);
        }
        let config = RunConfig {
            seed: args.seed,
            duration: Duration::from_secs(args.seconds),
            heal: Duration::from_secs(args.heal_seconds),
            out_dir: out,
            binary,
            kinds,
            grpc_clients: args.grpc_clients,
            resp_clients: args.resp_clients,
            op_timeout: Duration::from_millis(args.op_timeout_ms),
            extra_config: args.extra_config,
            reshape: !args.no_reshape,
            replica_reads: args.replica_reads,
            async_replication: args.async_replication,
        };
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("distcache-chaos: cannot start the runtime: {error}");
                return ExitCode::from(2);
            }
        };
        match runtime.block_on(run(&config)) {
            Ok(summary) => {
                for problem in &summary.problems {
                    eprintln!("problem: {problem}");
                }
                println!("{}", summary.verdict_line());
                if summary.passed {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(error) => {
                eprintln!("distcache-chaos: harness error: {error}");
                println!("distcache-chaos seed={} ERROR {error}", config.seed);
                ExitCode::from(2)
            }
        }
    }
}
