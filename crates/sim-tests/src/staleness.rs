//! The check of bounded-staleness reads (`max_staleness_ms`, `READONLY
//! MAXSTALENESS`): a read may be up to `B` old, which the linearizability
//! checker cannot express, so these histories get a check of their own.
//!
//! The workload that makes it decidable: each key has one writer, which
//! writes the versions 1, 2, 3, ... in order (the value names the version)
//! and starts a write only after the last one ended (acknowledged, or given
//! up: outcome unknown). A read that began at `sent` and ended at
//! `returned` and saw version `n` (0: no key) is **correct** when
//!
//! - **nothing from the future**: write `n` was sent before the read ended
//!   (and exists);
//! - **at most `B` old**: every write acknowledged before `sent - B` is in
//!   it, so `n` is at least the newest such version, unless write `n`'s
//!   outcome is unknown and the newer write was acknowledged within
//!   [`UNKNOWN_WRITE_WINDOW`] of write `n`'s start (a write the client gave
//!   up on may still be applied that late, after a newer one, and then be
//!   the key's value). Such excused reads are counted.
//!
//! Times are the simulation's clock, which every node and client shares, so
//! the bound is checked exactly. A read is **stale** (and still correct)
//! when it missed a write acknowledged before it began.

use std::collections::BTreeMap;
use std::time::Duration;

/// Longest after its start a write whose outcome is unknown may still be
/// applied: the client's operation deadline (8 s in the simulation
/// suites) plus a node's request timeout (5 s), with room to spare.
pub const UNKNOWN_WRITE_WINDOW: Duration = Duration::from_secs(20);

/// One write of a key's next version.
#[derive(Clone, Copy, Debug)]
pub struct Write {
    pub version: u64,
    pub sent: Duration,
    /// When it was acknowledged; `None` if its outcome is unknown.
    pub acked: Option<Duration>,
}

/// One answered read.
#[derive(Clone, Copy, Debug)]
pub struct Read {
    pub sent: Duration,
    pub returned: Duration,
    /// The version seen; 0 for "no such key".
    pub version: u64,
}

/// Every key's writes (in version order) and answered reads.
#[derive(Debug, Default)]
pub struct StalenessLog {
    keys: BTreeMap<Vec<u8>, (Vec<Write>, Vec<Read>)>,
}

/// What [`StalenessLog::check`] found in a correct history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StalenessReport {
    pub reads: usize,
    /// Reads that missed a write acknowledged before they began.
    pub stale: usize,
    /// The most any stale read lagged: from the acknowledgement of the
    /// newest write it missed to the read's start.
    pub max_lag: Duration,
    /// Reads past the bound excused because what they saw was a write of
    /// unknown outcome that may have been applied late.
    pub excused: usize,
}

impl StalenessLog {
    /// Records `key`'s next write (versions must come in order, from 1).
    pub fn wrote(&mut self, key: &[u8], write: Write) {
        let writes = &mut self.keys.entry(key.to_vec()).or_default().0;
        assert_eq!(
            write.version,
            writes.len() as u64 + 1,
            "a key's versions are written in order"
        );
        writes.push(write);
    }

    pub fn read(&mut self, key: &[u8], read: Read) {
        self.keys.entry(key.to_vec()).or_default().1.push(read);
    }

    /// Checks every read against `bound` (see the module docs); the first
    /// incorrect read, explained, if any.
    pub fn check(&self, bound: Duration) -> Result<StalenessReport, String> {
        let mut report = StalenessReport::default();
        for (key, (writes, reads)) in &self.keys {
            let key = String::from_utf8_lossy(key);
            // The newest version acknowledged before `time`, with when.
            let acked_before = |time: Duration| {
                writes
                    .iter()
                    .filter(|write| write.acked.is_some_and(|acked| acked < time))
                    .map(|write| (write.version, write.acked.unwrap_or_default()))
                    .next_back()
            };
            for read in reads {
                report.reads += 1;
                let seen = match read.version {
                    0 => None,
                    version => Some(writes.get(version as usize - 1).ok_or_else(|| {
                        format!("a read of {key} saw version {version}, which was never written")
                    })?),
                };
                if let Some(write) = seen
                    && write.sent >= read.returned
                {
                    return Err(format!(
                        "a read of {key} ({:?}..{:?}) saw version {}, written only at {:?}",
                        read.sent, read.returned, write.version, write.sent
                    ));
                }
                if let Some((required, acked)) = acked_before(read.sent.saturating_sub(bound))
                    && read.version < required
                {
                    let late_unknown = seen.is_some_and(|write| {
                        write.acked.is_none() && acked < write.sent + UNKNOWN_WRITE_WINDOW
                    });
                    if late_unknown {
                        report.excused += 1;
                        continue;
                    }
                    return Err(format!(
                        "a read of {key} sent at {:?} saw version {}, but version {required} was \
                         acknowledged at {acked:?}, more than the bound {bound:?} before",
                        read.sent, read.version
                    ));
                }
                if let Some((missed, acked)) = acked_before(read.sent)
                    && read.version < missed
                {
                    report.stale += 1;
                    report.max_lag = report.max_lag.max(read.sent - acked);
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// Versions 1 and 2 of `k`, acknowledged at 10 ms and 110 ms.
    fn two_writes() -> StalenessLog {
        let mut log = StalenessLog::default();
        for (version, sent, acked) in [(1, 0, 10), (2, 100, 110)] {
            log.wrote(
                b"k",
                Write {
                    version,
                    sent: ms(sent),
                    acked: Some(ms(acked)),
                },
            );
        }
        log
    }

    fn read(sent: u64, returned: u64, version: u64) -> Read {
        Read {
            sent: ms(sent),
            returned: ms(returned),
            version,
        }
    }

    #[test]
    fn a_read_within_its_bound_passes_and_counts_as_stale() {
        let mut log = two_writes();
        // Misses version 2 (acknowledged 50 ms before it), bound 100 ms.
        log.read(b"k", read(160, 170, 1));
        let report = log.check(ms(100)).expect("within the bound");
        assert_eq!(report.stale, 1);
        assert_eq!(report.max_lag, ms(50));
    }

    #[test]
    fn a_read_past_its_bound_fails() {
        let mut log = two_writes();
        log.read(b"k", read(300, 310, 1));
        let error = log.check(ms(100)).expect_err("version 2 is 190 ms old");
        assert!(error.contains("version 2 was acknowledged"), "{error}");
        // A missing key is as stale.
        let mut log = two_writes();
        log.read(b"k", read(300, 310, 0));
        assert!(log.check(ms(100)).is_err());
    }

    #[test]
    fn a_value_from_the_future_fails() {
        let mut log = two_writes();
        log.read(b"k", read(50, 90, 2));
        let error = log
            .check(ms(1_000))
            .expect_err("version 2 was sent at 100 ms");
        assert!(error.contains("written only at"), "{error}");
        let mut log = two_writes();
        log.read(b"k", read(50, 90, 3));
        assert!(log.check(ms(1_000)).is_err(), "version 3 was never written");
    }

    #[test]
    fn an_unknown_write_may_show_up_late() {
        let mut log = StalenessLog::default();
        log.wrote(
            b"k",
            Write {
                version: 1,
                sent: ms(0),
                acked: None,
            },
        );
        log.wrote(
            b"k",
            Write {
                version: 2,
                sent: ms(100),
                acked: Some(ms(110)),
            },
        );
        log.read(b"k", read(500, 510, 1));
        let report = log.check(ms(100)).expect("version 1 may be applied late");
        assert_eq!(report.excused, 1);
    }

    #[test]
    fn an_unknown_write_long_gone_is_no_excuse() {
        let mut log = StalenessLog::default();
        for (version, sent, acked) in [(1, 0, None), (2, 30_000, Some(30_010))] {
            log.wrote(
                b"k",
                Write {
                    version,
                    sent: ms(sent),
                    acked: acked.map(ms),
                },
            );
        }
        log.read(b"k", read(40_000, 40_010, 1));
        assert!(
            log.check(ms(100)).is_err(),
            "version 1 started 30 s before version 2 was acknowledged"
        );
    }
}
