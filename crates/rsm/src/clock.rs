//! The leader's logical clock: the time a leader stamps on what it proposes.

use tokio::time::Instant;

/// Stamps advance from the log time of the last applied entry at the local
/// clock's rate, so no clock base shared between machines is assumed, and
/// a replica's stamps never go backwards.
///
/// Pure: the caller passes the local instant (from `labrpc::runtime::now()`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeaderClock {
    /// The log time at the last apply and the local instant of that apply.
    anchor_ms: u64,
    anchor_at: Instant,
    /// The last stamp issued.
    last_stamp_ms: u64,
}

impl LeaderClock {
    pub(crate) fn new(log_time_ms: u64, at: Instant) -> LeaderClock {
        LeaderClock {
            anchor_ms: log_time_ms,
            anchor_at: at,
            last_stamp_ms: log_time_ms,
        }
    }

    /// An entry (or snapshot) with log time `log_time_ms` was applied at
    /// `at`.
    pub(crate) fn anchor(&mut self, log_time_ms: u64, at: Instant) {
        self.anchor_ms = log_time_ms;
        self.anchor_at = at;
    }

    /// The stamp for a proposal (or a read) made at `at`.
    pub(crate) fn stamp(&mut self, at: Instant) -> u64 {
        let elapsed_ms = u64::try_from(at.saturating_duration_since(self.anchor_at).as_millis())
            .unwrap_or(u64::MAX);
        let stamp_ms = self
            .anchor_ms
            .saturating_add(elapsed_ms)
            .max(self.last_stamp_ms);
        self.last_stamp_ms = stamp_ms;
        stamp_ms
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn stamps_follow_the_local_clock_from_the_last_apply_and_never_go_back() {
        let start = labrpc::runtime::now();
        let mut clock = LeaderClock::new(1000, start);
        assert_eq!(clock.stamp(start), 1000);
        assert_eq!(clock.stamp(start + Duration::from_millis(250)), 1250);
        // An apply re-anchors: log time 1100 at +300 ms.
        clock.anchor(1100, start + Duration::from_millis(300));
        // 1100 + 50 = 1150 is behind the last stamp: stamps stay monotone.
        assert_eq!(clock.stamp(start + Duration::from_millis(350)), 1250);
        assert_eq!(clock.stamp(start + Duration::from_millis(500)), 1300);
        // An instant before the anchor counts as no time elapsed.
        clock.anchor(5000, start + Duration::from_millis(600));
        assert_eq!(clock.stamp(start), 5000);
    }
}
