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
    #[command(flatten)]
    seeds: sim_tests::seeds::SeedRange,
}

/// Simulated-time limit for one seed (all layers together).
#[cfg(madsim)]
const SIMULATED_SECONDS_PER_SEED: u64 = 900;

#[cfg(madsim)]
fn main() {
    use std::time::Duration;

    let arguments = Arguments::parse();
    let mut failed_seeds = Vec::new();
    for seed in arguments.seeds.range() {
        println!("seed {seed}");
        // Every layer's scenario bounds its own phases; this limit only
        // stops a hung simulation. It grows with the number of layers.
        let outcome = sim_tests::harness::run_seed(
            seed,
            Duration::from_secs(SIMULATED_SECONDS_PER_SEED),
            sim_tests::swarm::run_all(),
        );
        match outcome {
            Some(reports) => {
                for report in &reports {
                    println!("{report}");
                }
                if !reports.iter().all(sim_tests::swarm::Report::passed) {
                    failed_seeds.push(seed);
                }
            }
            None => {
                println!("  verdict: FAIL (the simulation panicked; the message is above)");
                failed_seeds.push(seed);
            }
        }
    }
    let passed = arguments.seeds.seeds - failed_seeds.len() as u64;
    println!("swarm: {passed} passed, {} failed", failed_seeds.len());
    sim_tests::seeds::exit_if_failed("swarm", &failed_seeds);
}

#[cfg(not(madsim))]
fn main() {
    let _ = Arguments::parse();
    sim_tests::seeds::exit_outside_simulation(
        "swarm runs only in simulation: RUSTFLAGS=\"--cfg madsim\" cargo run -p sim-tests --bin swarm --target-dir target/sim (or scripts/swarm.sh)",
    );
}
