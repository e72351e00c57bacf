//! The current time, through the runtime seam (`labrpc::runtime`).

pub use labrpc::runtime::now;

/// The wall clock in microseconds since the Unix epoch, for what users
/// give or read as wall-clock instants (Redis's `EXPIREAT`, `EXPIRETIME`,
/// `TIME`): the front end converts them to and from relative TTLs in log
/// time, which is what replicas apply (see `api::Op`). Under madsim the
/// system clock is simulated, so a run still replays from its seed; a
/// clock before 1970 reads as 0.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
        })
}

/// [`unix_micros`] in milliseconds.
pub fn unix_ms() -> i64 {
    unix_micros() / 1000
}
