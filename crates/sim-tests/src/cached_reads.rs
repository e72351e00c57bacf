//! Histories in which caches served some reads, for the linearizability
//! checker.
//!
//! A cache that is told of changes promises less than linearizability,
//! by a bounded delay: a value it serves may miss a write acknowledged
//! shortly before, while that write's invalidation is still on its way.
//! The test that knows its cache's bound records such a read as a read
//! that began earlier than it did: `may_be_as_old_as`, the earliest
//! instant whose value the guarantee lets the read return. The checker
//! then accepts a history exactly when every read returned a value the
//! key held at some instant between that start and the read's end, and
//! checks everything else as it checks any history: no value from the
//! future or never written, one order of the writes for every reader.
//! A read the cluster answered is recorded with its real start, so it is
//! held to linearizability itself. A read that may have come from a cache
//! whose only promise is about acknowledged writes (no value older than a
//! write acknowledged before the read was sent) is recorded as beginning
//! at the last such acknowledgement
//! ([`CachedHistory::read_after_acknowledged`]).
//!
//! Times are the simulation's clock, which every node and client shares,
//! so the bound is checked exactly.

use linearizability::{
    History, KvInput, KvModel, KvOutput, Operation, Outcome, StepBudget, Verdict,
};
use tokio::time::Instant;

/// Most search steps a check may take. A history of a few thousand
/// operations on a handful of keys needs far fewer (measured: under a
/// million); a check that runs out fails with the verdict unknown.
const CHECK_STEPS_MAX: u64 = 200_000_000;

/// One attempt to write a key's next value.
#[derive(Clone, Debug)]
pub struct WriteAttempt {
    /// The writer (the checker's client id).
    pub writer: u64,
    pub key: String,
    pub value: String,
    pub sent: Instant,
    /// When it was acknowledged; `None` if it answered an error or no
    /// answer came.
    pub acked: Option<Instant>,
}

/// Every write attempt of a test's writers, in the order they ended.
#[derive(Clone, Debug, Default)]
pub struct WriteLog {
    pub attempts: Vec<WriteAttempt>,
}

impl WriteLog {
    /// Attempts acknowledged.
    pub fn acknowledged(&self) -> usize {
        self.attempts
            .iter()
            .filter(|attempt| attempt.acked.is_some())
            .count()
    }

    /// Whether an attempt to write `value` to `key` was not acknowledged.
    pub fn unknown(&self, key: &str, value: &str) -> bool {
        self.attempts
            .iter()
            .any(|attempt| attempt.acked.is_none() && attempt.key == key && attempt.value == value)
    }

    /// How long each acknowledged attempt took (sent to answered).
    pub fn latencies(&self) -> Vec<std::time::Duration> {
        self.attempts
            .iter()
            .filter_map(|attempt| Some(attempt.acked? - attempt.sent))
            .collect()
    }

    /// A history (its clock starting at `start`) of every attempt; add
    /// the reads to it.
    pub fn history(&self, start: Instant) -> CachedHistory {
        let mut history = CachedHistory::new(start);
        for attempt in &self.attempts {
            history.write(
                attempt.writer,
                &attempt.key,
                &attempt.value,
                attempt.sent,
                attempt.acked,
            );
        }
        history
    }
}

/// The operations of a history on string keys and values, timed in
/// microseconds since `start`.
#[derive(Clone, Debug)]
pub struct CachedHistory {
    start: Instant,
    operations: Vec<Operation<KvInput, KvOutput>>,
}

impl CachedHistory {
    /// An empty history whose clock starts at `start` (before any
    /// operation).
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            operations: Vec::new(),
        }
    }

    /// `allowance` before `time`, or the history's start if that is
    /// earlier: where a cached read served at `time` may begin.
    pub fn before(&self, time: Instant, allowance: std::time::Duration) -> Instant {
        if time.saturating_duration_since(self.start) > allowance {
            time - allowance
        } else {
            self.start
        }
    }

    fn micros(&self, time: Instant) -> u64 {
        let since = time.saturating_duration_since(self.start);
        u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
    }

    /// A write of `value` to `key` by `client`, sent at `sent`; `acked`
    /// is when it was acknowledged, `None` if it answered an error or no
    /// answer came (it may then take effect at any time after `sent`, or
    /// never).
    pub fn write(
        &mut self,
        client: u64,
        key: &str,
        value: &str,
        sent: Instant,
        acked: Option<Instant>,
    ) {
        let outcome = match acked {
            Some(acked) => Outcome::Returned {
                time: self.micros(acked),
                output: KvOutput::Done,
            },
            None => Outcome::Unknown { gave_up_at: None },
        };
        self.operations.push(Operation {
            client,
            call_time: self.micros(sent),
            input: KvInput::Put {
                key: key.to_owned(),
                value: value.to_owned(),
            },
            outcome,
        });
    }

    /// A read of `key` by `client` that answered `value` (`None`: no
    /// such key) at `returned`, allowed by its guarantee to return the
    /// key's value as of any instant from `may_be_as_old_as` on: the
    /// read's start for a linearizable read, earlier for a cached one.
    pub fn read(
        &mut self,
        client: u64,
        key: &str,
        value: Option<&str>,
        may_be_as_old_as: Instant,
        returned: Instant,
    ) {
        self.operations.push(Operation {
            client,
            call_time: self.micros(may_be_as_old_as),
            input: KvInput::Get {
                key: key.to_owned(),
            },
            outcome: Outcome::Returned {
                time: self.micros(returned),
                output: KvOutput::Value(value.map(str::to_owned)),
            },
        });
    }

    /// A read of `key` sent at `sent` that answered `value` at
    /// `returned`, held to the guarantee of client-side caching: no older
    /// than any write acknowledged before it was sent. It may return the
    /// key's value as of the acknowledgement of the last write of `key`
    /// recorded as acknowledged before `sent` (record the writes first).
    /// Exact for histories with one writer per key writing in sequence:
    /// from that acknowledgement until the writer's next write begins, the
    /// key holds that write's value, so the read is placed there if what
    /// it saw is that old, and later if newer.
    pub fn read_after_acknowledged(
        &mut self,
        client: u64,
        key: &str,
        value: Option<&str>,
        sent: Instant,
        returned: Instant,
    ) {
        let sent_us = self.micros(sent);
        let last_acknowledged = self
            .operations
            .iter()
            .filter(|operation| {
                matches!(&operation.input, KvInput::Put { key: written, .. } if written == key)
            })
            .filter_map(|operation| operation.return_time())
            .filter(|&acknowledged| acknowledged < sent_us)
            .max()
            .unwrap_or(0);
        self.operations.push(Operation {
            client,
            call_time: last_acknowledged,
            input: KvInput::Get {
                key: key.to_owned(),
            },
            outcome: Outcome::Returned {
                time: self.micros(returned),
                output: KvOutput::Value(value.map(str::to_owned)),
            },
        });
    }

    pub fn len(&self) -> usize {
        self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The checker's verdict on the history, and a report: its summary,
    /// and when not linearizable, the explanation.
    pub fn check(&self) -> (Verdict, String) {
        let history = match History::new(self.operations.clone()) {
            Ok(history) => history,
            Err(error) => {
                return (
                    Verdict::Unknown,
                    format!("the recorded history is malformed: {error}"),
                );
            }
        };
        let model = KvModel::new();
        let result = linearizability::check(&model, &history, StepBudget::new(CHECK_STEPS_MAX));
        let mut report = format!("{} operations: {}", history.len(), result.summary());
        if result.verdict == Verdict::NotLinearizable {
            report.push('\n');
            report.push_str(&result.explain(&model, &history));
        }
        (result.verdict, report)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The histories' origin: any instant serves (only offsets from it
    /// matter), so reading the real clock here decides nothing.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    /// `k` written 1 (acknowledged at 10 ms) and 2 (sent at 100 ms,
    /// acknowledged at 110 ms), on a clock that starts at `start`.
    fn two_writes(start: Instant) -> CachedHistory {
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut history = CachedHistory::new(start);
        history.write(1, "k", "1", at(0), Some(at(10)));
        history.write(1, "k", "2", at(100), Some(at(110)));
        history
    }

    #[test]
    fn a_cached_read_may_miss_a_write_acknowledged_within_its_allowance() {
        let start = origin();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut history = two_writes(start);
        // Served at 140 ms, 30 ms after 2 was acknowledged; allowed 50 ms.
        history.read(2, "k", Some("1"), at(90), at(140));
        assert_eq!(history.check().0, Verdict::Linearizable);
    }

    #[test]
    fn a_cached_read_older_than_its_allowance_is_not_linearizable() {
        let start = origin();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut history = two_writes(start);
        // Served at 200 ms, allowed 50 ms: 2 was acknowledged at 110 ms.
        history.read(2, "k", Some("1"), at(150), at(200));
        let (verdict, report) = history.check();
        assert_eq!(verdict, Verdict::NotLinearizable, "{report}");
    }

    #[test]
    fn no_allowance_lets_a_read_see_a_value_never_written_or_not_yet_sent() {
        let start = origin();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut never = two_writes(start);
        never.read(2, "k", Some("7"), at(0), at(200));
        assert_eq!(never.check().0, Verdict::NotLinearizable);
        let mut early = two_writes(start);
        early.read(2, "k", Some("2"), at(20), at(60));
        assert_eq!(early.check().0, Verdict::NotLinearizable);
    }

    #[test]
    fn a_read_after_acknowledged_may_miss_only_writes_not_yet_acknowledged() {
        let start = origin();
        let at = |ms: u64| start + Duration::from_millis(ms);
        // Another reader saw 2 at 105 ms, before 2 was acknowledged; a
        // read sent at 108 ms may still see 1, one sent at 120 ms may not.
        let mut history = two_writes(start);
        history.read(3, "k", Some("2"), at(104), at(105));
        history.read_after_acknowledged(2, "k", Some("1"), at(108), at(109));
        assert_eq!(history.check().0, Verdict::Linearizable);
        let mut history = two_writes(start);
        history.read(3, "k", Some("2"), at(104), at(105));
        history.read_after_acknowledged(2, "k", Some("1"), at(120), at(121));
        assert_eq!(history.check().0, Verdict::NotLinearizable);
        // Nor a value not yet written.
        let mut history = two_writes(start);
        history.read_after_acknowledged(2, "k", Some("2"), at(20), at(30));
        assert_eq!(history.check().0, Verdict::NotLinearizable);
    }

    #[test]
    fn a_write_of_unknown_outcome_may_take_effect_late() {
        let start = origin();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut history = CachedHistory::new(start);
        history.write(1, "k", "1", at(0), None);
        history.write(1, "k", "1", at(50), Some(at(60)));
        history.write(1, "k", "2", at(100), Some(at(110)));
        // The first attempt of 1 applied after 2.
        history.read(2, "k", Some("1"), at(200), at(210));
        assert_eq!(history.check().0, Verdict::Linearizable);
    }
}
