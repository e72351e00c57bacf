//! Membership change under a random fault mix (issue 21).
//!
//! The seed picks the group size (3 or 5), how many members are replaced
//! (1 to all), whether the network loses messages, whether members crash
//! besides being cut off, and `max_raft_state` (none, 2000 or 8000
//! bytes, so new members catch up by the log or by snapshots). The run is
//! `kvraft::replace_under_faults`: one member at a time, a new server
//! with a new id and address is added as a learner, promoted once caught
//! up, and the old one removed, while clients run and faults strike; then
//! the faults stop.
//!
//! Checks: every server ends on the same configuration, the expected
//! voters and no learner; a write succeeds after the heal; the whole
//! history is linearizable; Raft state within 8 x max_raft_state; Raft's
//! invariants held on every step (a broken one panics the run).
//!
//! Servers live at 10.7.0.x and clients at 10.7.1.x.

use std::time::Duration;

use madsim::rand::{Rng, thread_rng};

use super::Report;
use crate::kvraft::{ReplaceScenario, replace_under_faults};

/// This layer's addresses: 10.7.x.y.
const SUBNET: u8 = 7;

pub async fn run() -> Report {
    let mut rng = thread_rng();
    let servers = [3usize, 5][rng.gen_range(0..2)];
    let scenario = ReplaceScenario {
        replacements: rng.gen_range(1..=servers),
        reliable: rng.gen_bool(0.5),
        crashes: rng.gen_bool(0.6),
        max_raft_state: [None, Some(2000), Some(8000)][rng.gen_range(0..3)],
        clients: 3,
        subnet: Some(SUBNET),
        change_bound: Duration::from_secs(60),
        ..ReplaceScenario::new(servers)
    };
    tracing::info!(?scenario, "membership swarm: replace under faults");
    let outcome = replace_under_faults(scenario).await;
    let mut report = Report {
        layer: "membership",
        nodes: servers + scenario.replacements,
        clients: scenario.clients,
        calls_ok: outcome.appends,
        ..Report::default()
    };
    report.faults.insert("member_fault", outcome.faults);
    report
        .faults
        .insert("membership_change", outcome.changes.len() as u64);
    let expected = outcome.expected_voters.clone();
    report.check(
        "every server on one configuration: the expected voters, no learner",
        outcome.membership.and_then(|membership| {
            if membership.voters == expected && membership.learners.is_empty() {
                Ok(())
            } else {
                Err(format!("{membership:?}, expected voters {expected:?}"))
            }
        }),
    );
    report.check("a write after the heal", outcome.serving);
    report.check("raft state <= 8 x max_raft_state", outcome.raft_state);
    report.check(
        "linearizable history",
        outcome.linearizability.map(|summary| {
            tracing::info!(%summary, "membership swarm: history");
        }),
    );
    report
}
