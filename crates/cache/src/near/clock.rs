//! Time for the near cache, injected so tests never sleep.

use std::sync::atomic::{AtomicU64, Ordering};

/// A source of milliseconds that never goes backwards.
///
/// The near cache reads it only when an entry has a deadline, so a cache
/// without TTLs never pays for a clock read.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// A clock that moves only when told to: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        ManualClock {
            now_ms: AtomicU64::new(start_ms),
        }
    }

    pub fn advance(&self, delta_ms: u64) {
        self.now_ms.fetch_add(delta_ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}

/// Real elapsed time since construction, for production clients.
///
/// Under simulation, inject a clock that reads the simulator's time instead.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    start: std::time::Instant,
}

impl MonotonicClock {
    // The near cache lives in clients and gateways, outside the replicated
    // state machine; real time is what its TTLs mean there.
    #[allow(clippy::disallowed_methods)]
    pub fn new() -> Self {
        MonotonicClock {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock::new()
    }
}

impl Clock for MonotonicClock {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// A shared clock: the test keeps one handle and advances it while the cache
/// reads through the other.
impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}
