//! The current time, through the runtime seam.
//!
//! clippy bans `std::time::Instant::now` so that nobody reads the real clock
//! by accident. Under madsim, `tokio::time::Instant` *is* std's `Instant`,
//! whose clock madsim replaces with simulated time, so the ban would also
//! catch the correct call. This is the one place that makes it; every crate
//! above labrpc reads time here.

/// Now: simulated time under madsim, tokio's clock in production.
#[cfg_attr(madsim, allow(clippy::disallowed_methods))]
pub fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}
