//! [`StorageStats`]: what the driver measured of its storage writes, read
//! by whoever exports metrics (the distcache node) through
//! [`super::NodeStatus`]. The raft crate knows nothing of the exporter: it
//! counts into fixed buckets, and the reader turns them into whatever
//! format it serves.
//!
//! Each durable `Storage::save` is one group commit: the write and its
//! fsync (for `FileStorage`, one `fdatasync` of the log segment, plus the
//! hard state and snapshot files when they change). Its duration, read
//! from the runtime seam's clock, is what an operator calls fsync latency.

use std::time::Duration;

/// Upper bounds of the duration buckets, in seconds: 50 µs doubling up to
/// about 1.6 s (a save slower than that lands in the last, open bucket).
pub const STORAGE_WRITE_BOUNDS_SECONDS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_2, 0.000_4, 0.000_8, 0.001_6, 0.003_2, 0.006_4, 0.012_8, 0.025_6,
    0.051_2, 0.102_4, 0.204_8, 0.409_6, 0.819_2, 1.638_4,
];

/// Cumulative counts of durations in [`STORAGE_WRITE_BOUNDS_SECONDS`]
/// buckets (not cumulative across buckets: each duration is in exactly one,
/// the last one being over the largest bound).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DurationHistogram {
    pub bucket_counts: [u64; STORAGE_WRITE_BOUNDS_SECONDS.len() + 1],
    pub count: u64,
    /// Sum of every duration, in microseconds (whole: `Eq` and no float
    /// drift).
    pub sum_micros: u64,
}

impl DurationHistogram {
    pub fn record(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = STORAGE_WRITE_BOUNDS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(STORAGE_WRITE_BOUNDS_SECONDS.len());
        self.bucket_counts[bucket] += 1;
        self.count += 1;
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros as f64 / 1_000_000.0
    }

    /// `(upper bound, count in the bucket)` per bucket, the last bound
    /// being infinity (exporters make the counts cumulative).
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bucket_counts
            .iter()
            .enumerate()
            .map(|(bucket, count)| {
                let bound = STORAGE_WRITE_BOUNDS_SECONDS
                    .get(bucket)
                    .copied()
                    .unwrap_or(f64::INFINITY);
                (bound, *count)
            })
            .collect()
    }
}

/// The driver's measurements of its storage since the node started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Every durable save (a group commit: write plus fsync).
    pub writes: DurationHistogram,
    /// The saves that carried a snapshot (taken here or received from the
    /// leader), timed whole.
    pub snapshot_writes: DurationHistogram,
    /// Bytes of snapshot data those saves wrote.
    pub snapshot_written_bytes: u64,
    /// Bytes of snapshot data read back from storage to send to lagging
    /// followers (`Storage::read_snapshot_piece`).
    pub snapshot_read_bytes: u64,
    /// Bytes of log entries saved (their commands; replaced entries count
    /// again).
    pub entry_written_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_bucket_and_sum() {
        let mut histogram = DurationHistogram::default();
        histogram.record(Duration::from_micros(40));
        histogram.record(Duration::from_micros(50));
        histogram.record(Duration::from_millis(3));
        histogram.record(Duration::from_secs(5));
        assert_eq!(histogram.count, 4);
        assert_eq!(histogram.bucket_counts[0], 2, "at or below 50 µs");
        assert_eq!(histogram.bucket_counts[6], 1, "3 ms is in (1.6, 3.2] ms");
        assert_eq!(histogram.bucket_counts[16], 1, "5 s is over the last bound");
        assert_eq!(histogram.sum_micros, 5_003_090);
        let buckets = histogram.buckets();
        assert_eq!(buckets.len(), 17);
        assert_eq!(buckets[0], (0.000_05, 2));
        assert_eq!(buckets[6], (0.003_2, 1));
        assert_eq!(buckets[16], (f64::INFINITY, 1));
    }
}
