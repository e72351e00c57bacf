//! `swarm`: run the randomized fault simulation for a few seeds and print a
//! report per seed. Runs only in simulation:
//!
//! ```text
//! RUSTFLAGS="--cfg madsim" cargo run -p sim-tests --bin swarm --target-dir target/sim -- --seeds 5
//! ```
//!
//! Exit status 0 when every seed passed, 1 otherwise. A failing seed is
//! replayed exactly with `--seed N --seeds 1`.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Randomized fault simulation of every distcache layer built so far")]
struct Arguments {
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many consecutive seeds to run.
    #[arg(long, default_value_t = 5)]
    seeds: u64,
}

/// Simulated-time limit for one seed (all layers together).
#[cfg(madsim)]
const SIMULATED_SECONDS_PER_SEED: u64 = 900;

#[cfg(madsim)]
fn main() {
    use std::time::Duration;

    let arguments = Arguments::parse();
    let mut failed_seeds = Vec::new();
    for seed in arguments.seed..arguments.seed.saturating_add(arguments.seeds) {
        println!("seed {seed}");
        let outcome = std::panic::catch_unwind(|| {
            let mut runtime =
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            // Every layer's scenario bounds its own phases; this limit only
            // stops a hung simulation. It grows with the number of layers.
            runtime.set_time_limit(Duration::from_secs(SIMULATED_SECONDS_PER_SEED));
            runtime.block_on(sim_tests::swarm::run_all())
        });
        match outcome {
            Ok(reports) => {
                for report in &reports {
                    println!("{report}");
                }
                if !reports.iter().all(sim_tests::swarm::Report::passed) {
                    failed_seeds.push(seed);
                }
            }
            Err(_) => {
                println!("  verdict: FAIL (the simulation panicked; the message is above)");
                failed_seeds.push(seed);
            }
        }
    }
    let passed = arguments.seeds - failed_seeds.len() as u64;
    println!("swarm: {passed} passed, {} failed", failed_seeds.len());
    if !failed_seeds.is_empty() {
        println!("replay one with: --seed N --seeds 1 (failed: {failed_seeds:?})");
        std::process::exit(1);
    }
}

#[cfg(not(madsim))]
fn main() {
    let _ = Arguments::parse();
    eprintln!(
        "swarm runs only in simulation: RUSTFLAGS=\"--cfg madsim\" cargo run -p sim-tests --bin swarm --target-dir target/sim (or scripts/swarm.sh)"
    );
    std::process::exit(2);
}
