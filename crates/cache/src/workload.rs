//! Deterministic synthetic workloads for tests, benchmarks and policy
//! measurements: Zipf-distributed keys, Zipf with interleaved scans, and a
//! Zipf working set that slides over the key space (recency wins).
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

/// A working set that shifts: each request draws a rank from
/// Zipf(`working_set`, `exponent`) and maps it to a key in a window of
/// `working_set` consecutive keys, the hottest rank to the newest key. Every
/// `shift_every` requests the window slides by one key: a new key becomes
/// the hottest and every other key cools by one rank, until it falls out of
/// the window and is never requested again (think: a feed, where new posts
/// are read most and interest fades with age).
///
/// Popularity here is a function of age, so recency predicts reuse better
/// than frequency: a key's past hits were earned when it was hotter than it
/// is now. This is the trace on which exact LRU beats the frequency-minded
/// policies.
///
/// # Panics
/// If `working_set` or `shift_every` is zero (or `exponent` is bad, as for
/// [`Zipf::new`]).
pub fn shifting_trace(
    working_set: u64,
    exponent: f64,
    length: usize,
    shift_every: usize,
    seed: u64,
) -> Vec<u64> {
    assert!(shift_every > 0, "shift_every must be positive");
    let zipf = Zipf::new(working_set, exponent);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..length)
        .map(|position| {
            let newest_key = (position / shift_every) as u64 + working_set - 1;
            newest_key - zipf.sample(&mut rng)
        })
        .collect()
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

    #[test]
    fn shifting_trace_slides_its_window() {
        let trace = shifting_trace(100, 0.9, 10_000, 10, 7);
        assert_eq!(trace, shifting_trace(100, 0.9, 10_000, 10, 7));
        for (position, &key) in trace.iter().enumerate() {
            let newest_key = (position / 10) as u64 + 99;
            assert!(
                key <= newest_key && key + 100 > newest_key,
                "request {position}: key {key} outside the window ending at {newest_key}"
            );
        }
        // The hottest rank is the newest key.
        let count_at_age = |age: u64| {
            (trace.iter().enumerate())
                .filter(|&(position, &key)| (position / 10) as u64 + 99 - key == age)
                .count()
        };
        let (newest, older) = (count_at_age(0), count_at_age(50));
        assert!(
            newest > 5 * older,
            "newest key requested {newest} times, age 50 {older} times"
        );
    }
}
