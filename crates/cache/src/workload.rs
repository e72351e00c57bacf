//! Deterministic synthetic workloads for tests, benchmarks and policy
//! measurements: Zipf-distributed keys and Zipf with interleaved scans.
//!
//! Everything takes a seed and uses ChaCha8, so a trace is the same on every
//! run and platform.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Samples ranks `0..items` with probability proportional to
/// `1 / (rank + 1)^exponent` (rank 0 is the most popular), by binary search
/// over the precomputed cumulative distribution.
#[derive(Debug, Clone)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// # Panics
    /// If `items` is zero or `exponent` is negative or not finite.
    pub fn new(items: u64, exponent: f64) -> Self {
        assert!(items > 0, "a Zipf distribution needs at least one item");
        assert!(
            exponent.is_finite() && exponent >= 0.0,
            "bad Zipf exponent {exponent}"
        );
        let mut cumulative = Vec::with_capacity(items as usize);
        let mut total = 0.0;
        for rank in 0..items {
            total += 1.0 / ((rank + 1) as f64).powf(exponent);
            cumulative.push(total);
        }
        for value in &mut cumulative {
            *value /= total;
        }
        Zipf { cumulative }
    }

    pub fn sample<R: Rng>(&self, rng: &mut R) -> u64 {
        let uniform: f64 = rng.r#gen();
        let rank = self.cumulative.partition_point(|&value| value < uniform);
        rank.min(self.cumulative.len() - 1) as u64
    }

    /// The probability of `rank`.
    pub fn probability(&self, rank: u64) -> f64 {
        let index = rank as usize;
        let below = if index == 0 {
            0.0
        } else {
            self.cumulative[index - 1]
        };
        self.cumulative[index] - below
    }
}

/// `length` keys drawn from Zipf(`items`, `exponent`).
pub fn zipf_trace(items: u64, exponent: f64, length: usize, seed: u64) -> Vec<u64> {
    let zipf = Zipf::new(items, exponent);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..length).map(|_| zipf.sample(&mut rng)).collect()
}

/// A Zipf trace interrupted by scans: after every `scan_every` Zipf requests
/// comes a run of `scan_length` keys never seen before (think: a batch job
/// reading cold data). Scan keys start at `items`, so they never collide with
/// Zipf keys.
pub fn zipf_with_scans_trace(
    items: u64,
    exponent: f64,
    length: usize,
    scan_every: usize,
    scan_length: usize,
    seed: u64,
) -> Vec<u64> {
    assert!(scan_every > 0, "scan_every must be positive");
    let zipf = Zipf::new(items, exponent);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut next_scan_key = items;
    let mut trace = Vec::with_capacity(length);
    while trace.len() < length {
        for _ in 0..scan_every {
            trace.push(zipf.sample(&mut rng));
        }
        for _ in 0..scan_length {
            trace.push(next_scan_key);
            next_scan_key += 1;
        }
    }
    trace.truncate(length);
    trace
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_deterministic_and_skewed() {
        let trace = zipf_trace(1_000, 0.99, 20_000, 7);
        assert_eq!(trace, zipf_trace(1_000, 0.99, 20_000, 7));
        let top = trace.iter().filter(|&&key| key == 0).count() as f64 / 20_000.0;
        let expected = Zipf::new(1_000, 0.99).probability(0);
        assert!(
            (top - expected).abs() < 0.02,
            "rank 0 share {top}, expected {expected}"
        );
    }
}
