//! What the binaries that loop over seeds themselves share (the `swarm`,
//! the migration benchmark): their seed arguments, and what they do when
//! built outside the simulator.

use std::ops::Range;

/// The seeds to run: `--seed N --seeds K` runs N, N+1, ..., N+K-1.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct SeedRange {
    /// First seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many consecutive seeds to run.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
}

impl SeedRange {
    pub fn range(&self) -> Range<u64> {
        self.seed..self.seed.saturating_add(self.seeds)
    }
}

/// Exits with status 1, naming the failed seeds and how to replay one, if
/// there are any.
pub fn exit_if_failed(what: &str, failed_seeds: &[u64]) {
    if !failed_seeds.is_empty() {
        println!("{what}: replay one with: --seed N --seeds 1 (failed: {failed_seeds:?})");
        std::process::exit(1);
    }
}

/// Ends a simulation binary built without `--cfg madsim`: prints `how` to
/// run it and exits with status 2.
pub fn exit_outside_simulation(how: &str) -> ! {
    eprintln!("{how}");
    std::process::exit(2);
}
