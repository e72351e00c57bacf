//! Which replica of a group gets the next read any replica may serve: the
//! group's servers in turn, passing over any that failed such a read in
//! the last [`PASS_OVER_FOR`]. Without this, a dead or cut-off replica
//! costs every read whose turn lands on it the whole try on that replica
//! (up to half a second) before the read goes to the leader.
//!
//! A failure is a call that got nothing back within a whole try (timed
//! out, or did not connect), or a refusal of a replica that lost its
//! leader or does not catch up. A stale routing (`WrongGroup`), a busy
//! replica, or a try cut short by the request's deadline is not one. One
//! answer clears it. When every server of the group failed lately, none is picked: the
//! read goes straight to the leader. Bounds: at most
//! [`MAX_REMEMBERED`] failed servers are remembered; past it the oldest
//! failure is forgotten.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How long a replica that failed a read is passed over.
pub const PASS_OVER_FOR: Duration = Duration::from_secs(2);
/// Most failed servers remembered.
pub const MAX_REMEMBERED: usize = 1024;

/// See the module docs.
#[derive(Debug, Default)]
pub struct ReplicaTurns {
    next: AtomicUsize,
    /// Server -> when it last failed.
    failed: Mutex<BTreeMap<SocketAddr, Instant>>,
}

impl ReplicaTurns {
    /// The next of `servers` in turn that has not failed within
    /// [`PASS_OVER_FOR`] of `now`; `None` if there is none.
    pub fn pick(&self, servers: &[SocketAddr], now: Instant) -> Option<SocketAddr> {
        if servers.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let failed = self.failed.lock().expect("replica turns lock");
        (0..servers.len())
            .map(|step| servers[(turn + step) % servers.len()])
            .find(|server| {
                failed
                    .get(server)
                    .is_none_or(|&at| now.saturating_duration_since(at) >= PASS_OVER_FOR)
            })
    }

    /// `server` failed a read at `now`.
    pub fn failed(&self, server: SocketAddr, now: Instant) {
        let mut failed = self.failed.lock().expect("replica turns lock");
        failed.retain(|_, &mut at| now.saturating_duration_since(at) < PASS_OVER_FOR);
        if failed.len() >= MAX_REMEMBERED
            && !failed.contains_key(&server)
            && let Some(oldest) = failed.iter().min_by_key(|(_, at)| **at).map(|(s, _)| *s)
        {
            failed.remove(&oldest);
        }
        failed.insert(server, now);
    }

    /// `server` answered a read.
    pub fn answered(&self, server: SocketAddr) {
        let mut failed = self.failed.lock().expect("replica turns lock");
        failed.remove(&server);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(count: u16) -> Vec<SocketAddr> {
        (1..=count)
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .collect()
    }

    #[test]
    fn servers_take_turns() {
        let turns = ReplicaTurns::default();
        let servers = servers(3);
        let now = crate::clock::now();
        let picked: Vec<_> = (0..6).map(|_| turns.pick(&servers, now)).collect();
        let expected: Vec<_> = servers.iter().chain(&servers).copied().map(Some).collect();
        assert_eq!(picked, expected);
        assert_eq!(turns.pick(&[], now), None);
    }

    #[test]
    fn a_failed_server_is_passed_over_until_its_time_is_up_or_it_answers() {
        let turns = ReplicaTurns::default();
        let servers = servers(3);
        let now = crate::clock::now();
        turns.failed(servers[1], now);
        let picked: Vec<_> = (0..4).filter_map(|_| turns.pick(&servers, now)).collect();
        assert!(!picked.contains(&servers[1]), "{picked:?}");
        assert_eq!(picked.len(), 4, "the others still serve");
        let later = now + PASS_OVER_FOR;
        let picked: Vec<_> = (0..3).filter_map(|_| turns.pick(&servers, later)).collect();
        assert!(picked.contains(&servers[1]), "its time is up: {picked:?}");
        turns.failed(servers[2], now);
        turns.answered(servers[2]);
        let picked: Vec<_> = (0..3).filter_map(|_| turns.pick(&servers, now)).collect();
        assert!(
            picked.contains(&servers[2]),
            "it answered since: {picked:?}"
        );
    }

    #[test]
    fn when_every_server_failed_none_is_picked() {
        let turns = ReplicaTurns::default();
        let servers = servers(2);
        let now = crate::clock::now();
        for &server in &servers {
            turns.failed(server, now);
        }
        assert_eq!(turns.pick(&servers, now), None);
    }

    #[test]
    fn at_most_max_remembered_failures_are_kept() {
        let turns = ReplicaTurns::default();
        let now = crate::clock::now();
        let many: Vec<SocketAddr> = (0..=MAX_REMEMBERED as u32)
            .map(|n| SocketAddr::from((n.to_be_bytes(), 1)))
            .collect();
        for (offset, &server) in many.iter().enumerate() {
            turns.failed(server, now + Duration::from_micros(offset as u64));
        }
        let failed = turns.failed.lock().expect("lock");
        assert_eq!(failed.len(), MAX_REMEMBERED);
        assert!(!failed.contains_key(&many[0]), "the oldest was forgotten");
    }
}
