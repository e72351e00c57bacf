//! The runtime seam: the one module through which distcache reads the time,
//! draws randomness and spawns tasks.
//!
//! The same code runs on real tokio in production and under madsim in
//! simulation (`RUSTFLAGS="--cfg madsim"`). In simulation the clock, the
//! random numbers and the task scheduler all come from the seed, so a run
//! replays exactly; that holds only if nobody reaches past this module.
//! clippy's `disallowed_methods` bans the direct calls (`Instant::now`,
//! `rand::thread_rng`, `std::thread::spawn`, ...) everywhere else.
//!
//! It lives in labrpc, the lowest crate that needs it, so every crate above
//! (raft, the rsm, the services, the tests) uses the same one. The file
//! part of the seam stays with Raft's storage, in `raft/src/storage/disk.rs`:
//! real files (`std::fs` on a blocking thread, fsync) in production and
//! madsim's simulated per-node disk in simulation, chosen by the same cfg.
//!
//! | what | production | simulation |
//! |---|---|---|
//! | [`now`] | tokio's clock | madsim's simulated clock |
//! | [`random_u64`] | the OS's random source | madsim's seeded RNG |
//! | [`spawn`] | a tokio task | a madsim task (seeded scheduling) |
//! | [`watch`] | `tokio::sync::watch` | the same API, waking waiters in the order they began to wait |

/// Now: simulated time under madsim, tokio's clock in production.
///
/// clippy bans `std::time::Instant::now` so that nobody reads the real
/// clock by accident. Under madsim, `tokio::time::Instant` *is* std's
/// `Instant`, whose clock madsim replaces with simulated time, so the ban
/// would also catch the correct call; this is the one place that makes it.
#[cfg_attr(madsim, allow(clippy::disallowed_methods))]
pub fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// A random `u64` for identities (client ids, incarnations), never for
/// behaviour a test must replay differently: madsim's seeded RNG in
/// simulation, the OS otherwise.
#[cfg(madsim)]
pub fn random_u64() -> u64 {
    madsim::rand::random()
}

/// A random `u64` for identities (client ids, incarnations): madsim's
/// seeded RNG in simulation, the OS otherwise.
#[cfg(not(madsim))]
pub fn random_u64() -> u64 {
    use rand::RngCore;
    rand::rngs::OsRng.next_u64()
}

/// Spawns a task on the runtime (madsim's scheduler in simulation).
pub use tokio::spawn;

/// Runs `work` (a long computation, or blocking IO) where it does not hold
/// up the runtime's workers: tokio's blocking pool. Under madsim, a task
/// like any other (simulated time does not pass while it runs).
#[cfg(not(madsim))]
pub fn spawn_blocking<F, R>(work: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(work)
}

/// Runs `work` (a long computation, or blocking IO) where it does not hold
/// up the runtime's workers: tokio's blocking pool. Under madsim, a task
/// like any other (simulated time does not pass while it runs).
#[cfg(madsim)]
pub fn spawn_blocking<F, R>(work: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::spawn(async move { work() })
}

/// `tokio::sync::watch`; under madsim a copy whose wake-up order does not
/// depend on tokio's process-seeded RNG (see `sim/watch.rs`), so a seed
/// replays the same in a second run in one process. Use it, not tokio's.
#[cfg(not(madsim))]
pub use tokio::sync::watch;

/// `tokio::sync::watch`; under madsim a copy whose wake-up order does not
/// depend on tokio's process-seeded RNG (see `sim/watch.rs`), so a seed
/// replays the same in a second run in one process. Use it, not tokio's.
#[cfg(madsim)]
pub use crate::sim::watch;
