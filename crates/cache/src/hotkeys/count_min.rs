//! Count-min sketch with conservative update.

use crate::hash::fmix64;

/// Approximate counts for an unbounded key space in fixed memory.
///
/// `depth` rows of `width` counters; a key maps to one counter per row
/// (positions derived from its fixed hash). The estimate is the minimum over
/// rows, which never undercounts. Conservative update (raise only the
/// counters that equal the minimum) keeps overcounting low on skewed streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountMinSketch {
    width_mask: u64,
    depth: usize,
    counters: Vec<u32>,
}

impl CountMinSketch {
    /// # Panics
    /// If `width` is not a power of two or `depth` is zero or above 8.
    pub fn new(width: usize, depth: usize) -> Self {
        assert!(
            width.is_power_of_two(),
            "sketch width {width} must be a power of two"
        );
        assert!(
            (1..=8).contains(&depth),
            "sketch depth {depth} must be 1..=8"
        );
        CountMinSketch {
            width_mask: width as u64 - 1,
            depth,
            counters: vec![0; width * depth],
        }
    }

    /// Memory held by the counters.
    pub fn size_bytes(&self) -> usize {
        self.counters.len() * std::mem::size_of::<u32>()
    }

    /// Counts one occurrence; returns the new estimate.
    pub fn increment(&mut self, key_hash: u64) -> u64 {
        self.increment_by(key_hash, 1)
    }

    /// Counts `weight` occurrences (a sampled access standing for
    /// `weight`); returns the new estimate. Counters saturate.
    pub fn increment_by(&mut self, key_hash: u64, weight: u64) -> u64 {
        let estimate = self.estimate(key_hash);
        let target = u32::try_from(estimate.saturating_add(weight)).unwrap_or(u32::MAX);
        for row in 0..self.depth {
            let index = self.index(row, key_hash);
            if self.counters[index] < target {
                self.counters[index] = target;
            }
        }
        u64::from(target)
    }

    /// The estimated count (never below the true count since the last decay).
    pub fn estimate(&self, key_hash: u64) -> u64 {
        (0..self.depth)
            .map(|row| self.counters[self.index(row, key_hash)])
            .min()
            .map_or(0, u64::from)
    }

    /// Halves every counter: old traffic weighs half as much as new.
    pub fn halve(&mut self) {
        for counter in &mut self.counters {
            *counter /= 2;
        }
    }

    fn index(&self, row: usize, key_hash: u64) -> usize {
        // Independent positions per row: remix the hash with the row number.
        let position =
            fmix64(key_hash ^ (row as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) & self.width_mask;
        row * (self.width_mask as usize + 1) + position as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_undercounts_and_halves() {
        let mut sketch = CountMinSketch::new(64, 4);
        for key in 0..500u64 {
            for _ in 0..(key % 7) {
                sketch.increment(key);
            }
        }
        for key in 0..500u64 {
            assert!(sketch.estimate(key) >= key % 7);
        }
        let before = sketch.estimate(6);
        sketch.halve();
        assert_eq!(sketch.estimate(6), before / 2);
    }
}
