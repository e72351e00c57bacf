//! Faults: the kinds, and the schedule a seed chooses.
//!
//! The schedule is a list of faults, one at a time: each starts, lasts its
//! duration, is reverted, and the next starts after a gap. The first faults
//! are every enabled kind once, in an order the seed shuffles; the rest are
//! drawn from the seed. Which node a fault hits (the leader of which group,
//! which random node) is chosen when it starts, from the fault's own
//! random `choice`, since leaders are known only then.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL the leader of a group (the controller or a data group), then
    /// restart it on its data directory.
    KillLeader,
    /// SIGKILL a random node, then restart it.
    KillRandom,
    /// SIGSTOP a group's leader, SIGCONT it later (a leader that wakes up
    /// believing it still leads).
    PauseLeader,
    /// The proxies delay every chunk on the links of one node by 20-150 ms.
    Delay,
    /// The proxies cut connections on every link (5% per chunk).
    Loss,
    /// The proxies hold each connection back by its own delay (up to
    /// 300 ms) and cut 1% per chunk: a new connection overtakes an old one.
    Reorder,
    /// Firewall: one node of each Raft group (a minority) cut off from the
    /// other four nodes, both ways.
    PartitionMinority,
    /// Firewall: a group's leader cut off from every other node.
    IsolateLeader,
    /// Firewall: two halves that cannot talk, except through one bridge
    /// node in the first half that talks to both.
    Bridge,
    /// Firewall: a group's leader cannot send to any other node, but
    /// every other node can still send to it.
    OneWay,
}

impl FaultKind {
    pub const ALL: [FaultKind; 10] = [
        FaultKind::KillLeader,
        FaultKind::KillRandom,
        FaultKind::PauseLeader,
        FaultKind::Delay,
        FaultKind::Loss,
        FaultKind::Reorder,
        FaultKind::PartitionMinority,
        FaultKind::IsolateLeader,
        FaultKind::Bridge,
        FaultKind::OneWay,
    ];

    /// Needs the firewall (root and iptables).
    pub fn is_partition(self) -> bool {
        matches!(
            self,
            FaultKind::PartitionMinority
                | FaultKind::IsolateLeader
                | FaultKind::Bridge
                | FaultKind::OneWay
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillLeader => "kill-leader",
            FaultKind::KillRandom => "kill-random",
            FaultKind::PauseLeader => "pause-leader",
            FaultKind::Delay => "delay",
            FaultKind::Loss => "loss",
            FaultKind::Reorder => "reorder",
            FaultKind::PartitionMinority => "partition-minority",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::Bridge => "bridge",
            FaultKind::OneWay => "one-way",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(text: &str) -> Result<FaultKind, String> {
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|kind| kind.name()).collect();
                format!("unknown fault kind {text:?}; known: {}", names.join(", "))
            })
    }
}

/// A fault of the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedFault {
    pub kind: FaultKind,
    /// Since the workload started.
    pub start: Duration,
    pub duration: Duration,
    /// Chooses the target when the fault starts.
    pub choice: u64,
}

/// Time before the first fault (the workload runs fault-free).
pub const WARM_UP: Duration = Duration::from_secs(3);
/// Most faults in one schedule.
pub const FAULTS_MAX: usize = 10_000;

/// The faults for `fault_phase` (from the start of the workload): every kind
/// of `kinds` once first, then random kinds, none starting after the phase
/// and each reverted by its end.
pub fn schedule(seed: u64, kinds: &[FaultKind], fault_phase: Duration) -> Vec<PlannedFault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut first: Vec<FaultKind> = kinds.to_vec();
    first.shuffle(&mut rng);
    let mut plan = Vec::new();
    let mut at = WARM_UP;
    while plan.len() < FAULTS_MAX && !kinds.is_empty() {
        let kind = if plan.len() < first.len() {
            first[plan.len()]
        } else {
            kinds[rng.gen_range(0..kinds.len())]
        };
        let duration = Duration::from_millis(rng.gen_range(1500..3500));
        if at + duration > fault_phase {
            break;
        }
        plan.push(PlannedFault {
            kind,
            start: at,
            duration,
            choice: rng.r#gen(),
        });
        at += duration + Duration::from_millis(rng.gen_range(700..1500));
    }
    plan
}

/// Parses `kill-leader,pause-leader` (or `all`).
pub fn parse_kinds(text: &str) -> Result<Vec<FaultKind>, String> {
    if text == "all" {
        return Ok(FaultKind::ALL.to_vec());
    }
    let mut kinds = Vec::new();
    for name in text.split(',').filter(|name| !name.is_empty()) {
        let kind: FaultKind = name.parse()?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_starts_with_every_kind_and_replays_from_its_seed() {
        let plan = schedule(7, &FaultKind::ALL, Duration::from_secs(90));
        let mut first: Vec<FaultKind> = plan
            .iter()
            .take(FaultKind::ALL.len())
            .map(|fault| fault.kind)
            .collect();
        first.sort();
        assert_eq!(first, FaultKind::ALL.to_vec());
        assert_eq!(plan, schedule(7, &FaultKind::ALL, Duration::from_secs(90)));
        assert_ne!(plan, schedule(8, &FaultKind::ALL, Duration::from_secs(90)));
        for pair in plan.windows(2) {
            assert!(pair[0].start + pair[0].duration < pair[1].start, "{pair:?}");
        }
        let last = plan.last().expect("a 60 s phase holds faults");
        assert!(last.start + last.duration <= Duration::from_secs(90));
    }

    #[test]
    fn kinds_parse_and_unknown_names_are_refused() {
        assert_eq!(
            parse_kinds("pause-leader,kill-leader,pause-leader"),
            Ok(vec![FaultKind::PauseLeader, FaultKind::KillLeader])
        );
        assert_eq!(parse_kinds("all"), Ok(FaultKind::ALL.to_vec()));
        let error = parse_kinds("kill-leader,flood").expect_err("unknown kind");
        assert!(error.contains("\"flood\""), "{error}");
    }
}
