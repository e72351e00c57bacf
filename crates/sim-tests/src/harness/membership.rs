//! Membership changes as an operator makes them, for any replicated
//! service the suites run: on whichever replica leads, retried while the
//! refusal is one that passes (no leader, leader not ready, a change in
//! flight, a learner behind), within a bound.

use std::time::Duration;

use raft::core::{Membership, MembershipChange, MembershipError};
use rsm::{ChangeError, ReplicatedMachine, Rsm};

/// Pause between two rounds of attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// What [`change_on_leader`] saw on its way.
#[derive(Clone, Debug, Default)]
pub struct ChangeReport {
    /// Attempts refused because the learner lagged (`LearnerBehind`).
    pub learner_behind: u64,
    /// Attempts refused for the 2015 rule (`LeaderNotReady`) or because a
    /// change was in flight (`ChangeInProgress`).
    pub not_ready: u64,
    pub attempts: u64,
}

/// Makes `change` (with `addr`, the new member's address, for an
/// addition) on a running replica of `replicas()` that believes it leads,
/// asking `replicas` again each round, within `bound` of simulated time.
/// Returns the configuration afterwards and what the attempts met.
pub async fn change_on_leader<M: ReplicatedMachine>(
    replicas: impl Fn() -> Vec<Rsm<M>>,
    change: MembershipChange,
    addr: Option<std::net::SocketAddr>,
    bound: Duration,
) -> Result<(Membership, ChangeReport), String> {
    let deadline = labrpc::runtime::now() + bound;
    let mut report = ChangeReport::default();
    let mut last_error = None;
    while labrpc::runtime::now() < deadline {
        for rsm in replicas() {
            if rsm.raft().is_killed() || !rsm.raft().state().1 {
                continue;
            }
            report.attempts += 1;
            match rsm.change_membership(change, addr).await {
                Ok(membership) => return Ok((membership, report)),
                Err(error) if error.is_retryable() => {
                    match &error {
                        ChangeError::Refused(MembershipError::LearnerBehind { .. }) => {
                            report.learner_behind += 1;
                        }
                        ChangeError::Refused(
                            MembershipError::LeaderNotReady { .. }
                            | MembershipError::ChangeInProgress { .. },
                        ) => report.not_ready += 1,
                        _ => {}
                    }
                    last_error = Some(error);
                }
                Err(error) => return Err(format!("{change:?} refused: {error}")),
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    Err(format!(
        "{change:?} not done within {bound:?} ({} attempts); last error: {last_error:?}",
        report.attempts
    ))
}

/// The configuration every running replica of `replicas()` holds, once
/// they agree (waiting at most `bound`), or what each holds.
pub async fn membership_agreed<M: ReplicatedMachine>(
    replicas: impl Fn() -> Vec<Rsm<M>>,
    bound: Duration,
) -> Result<Membership, String> {
    let deadline = labrpc::runtime::now() + bound;
    loop {
        let held: Vec<(u64, Membership)> = replicas()
            .iter()
            .filter(|rsm| !rsm.raft().is_killed())
            .map(|rsm| (rsm.raft().id(), rsm.membership().1))
            .collect();
        if let Some((_, first)) = held.first()
            && held.iter().all(|(_, membership)| membership == first)
        {
            return Ok(first.clone());
        }
        if labrpc::runtime::now() >= deadline {
            return Err(format!(
                "replicas disagree on the configuration after {bound:?}: {held:?}"
            ));
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}
