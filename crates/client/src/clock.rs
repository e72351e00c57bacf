//! The current time, through the runtime seam.
//!
//! clippy bans `std::time::Instant::now`; under madsim `tokio::time::Instant`
//! is std's `Instant` with a simulated clock, so the ban would also catch
//! the correct call. This is the one place in the client that makes it.

/// Now: simulated time under madsim, tokio's clock in production.
#[cfg_attr(madsim, allow(clippy::disallowed_methods))]
pub fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}
