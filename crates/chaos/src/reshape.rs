//! Reshapes during faults: shard moves, and a data group leaving and
//! joining again, sent to the controller through the nodes' gRPC Admin
//! API while the fault schedule runs (issue 19: "shard moves and group
//! join/leave during faults").
//!
//! A reshape is not a fault: nothing is reverted. It runs beside the
//! faults, on its own schedule from the run's seed, and may fail (the
//! controller unreachable, a node killed or paused): a failure is recorded,
//! never a finding by itself. What must hold is what the rest of the run
//! checks: the history stays linearizable, no acknowledged append is lost,
//! and after the heal every shard has an owner among the joined groups. At
//! the heal, [`rejoin_all`] brings back any group still out, so the
//! cluster converges to both groups.

use std::fmt::Write as _;
use std::time::Duration;

use distcache_client::proto::admin_client::AdminClient;
use distcache_client::proto::{
    GroupMembers, JoinRequest, LeaveRequest, MoveRequest, StatusReply, StatusRequest,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;

use crate::report::FaultEvent;
use crate::workload::Log;

/// Each admin call's limit: a paused node must not stall the schedule.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Seconds between reshapes, drawn per step.
const GAP_MS: (u64, u64) = (2_000, 5_000);
/// Most reshapes one run sends (bounded event list).
const RESHAPES_MAX: usize = 1_000;

/// What the reshaper knows of the data groups: their members as the
/// controller first reported them, used to join a group again.
#[derive(Clone, Debug)]
pub struct Groups {
    pub members: Vec<GroupMembers>,
    pub shard_count: u64,
}

/// One reshape step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Move { shard: u64, gid: u64 },
    Leave { gid: u64 },
    Join { gid: u64 },
}

impl Step {
    fn kind(&self) -> &'static str {
        match self {
            Step::Move { .. } => "reshape:move",
            Step::Leave { .. } => "reshape:leave",
            Step::Join { .. } => "reshape:join",
        }
    }

    fn describe(&self) -> String {
        match self {
            Step::Move { shard, gid } => format!("shard {shard} to group {gid}"),
            Step::Leave { gid } => format!("group {gid} leaves"),
            Step::Join { gid } => format!("group {gid} joins again"),
        }
    }
}

/// Reads the controller's latest configuration from the first node of
/// `grpc_addrs` that answers.
pub async fn status(grpc_addrs: &[String]) -> Result<StatusReply, String> {
    let mut last_error = "no node to ask".to_string();
    for address in grpc_addrs {
        match call_status(address).await {
            Ok(reply) => return Ok(reply),
            Err(error) => last_error = format!("{address}: {error}"),
        }
    }
    Err(last_error)
}

async fn call_status(address: &str) -> Result<StatusReply, String> {
    tokio::time::timeout(CALL_TIMEOUT, async {
        let mut admin = AdminClient::connect(format!("http://{address}"))
            .await
            .map_err(|error| error.to_string())?;
        admin
            .status(StatusRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| status.message().to_string())
    })
    .await
    .map_err(|_| format!("no answer within {CALL_TIMEOUT:?}"))?
}

/// The groups as the controller reports them now (before any fault).
pub async fn groups(grpc_addrs: &[String]) -> Result<Groups, String> {
    let reply = status(grpc_addrs).await?;
    Ok(Groups {
        shard_count: reply.shard_owners.len() as u64,
        members: reply
            .groups
            .into_iter()
            .map(|group| GroupMembers {
                gid: group.gid,
                peer_addrs: group.peer_addrs,
            })
            .collect(),
    })
}

/// Sends `step` through `address`; `Ok` when the controller applied it.
async fn send(address: &str, step: &Step, groups: &Groups) -> Result<(), String> {
    tokio::time::timeout(CALL_TIMEOUT, async {
        let mut admin = AdminClient::connect(format!("http://{address}"))
            .await
            .map_err(|error| error.to_string())?;
        let result = match step {
            Step::Move { shard, gid } => {
                admin
                    .r#move(MoveRequest {
                        shard: *shard,
                        gid: *gid,
                    })
                    .await
            }
            Step::Leave { gid } => admin.leave(LeaveRequest { gids: vec![*gid] }).await,
            Step::Join { gid } => {
                let members = groups
                    .members
                    .iter()
                    .find(|group| group.gid == *gid)
                    .cloned()
                    .ok_or_else(|| format!("group {gid} was never known"))?;
                admin
                    .join(JoinRequest {
                        groups: vec![members],
                    })
                    .await
            }
        };
        result
            .map(|_| ())
            .map_err(|status| status.message().to_string())
    })
    .await
    .map_err(|_| format!("no answer within {CALL_TIMEOUT:?}"))?
}

/// Step `index`: a group that left joins again; otherwise a move, or
/// (one time in four, and always at the second step if the first was not
/// one, so even a short run has one) a group leaves, when more than one
/// group is known.
fn next_step(rng: &mut ChaCha8Rng, index: usize, groups: &Groups, out: &mut Option<u64>) -> Step {
    if let Some(gid) = out.take() {
        return Step::Join { gid };
    }
    let gids: Vec<u64> = groups.members.iter().map(|group| group.gid).collect();
    let leave = rng.gen_range(0..4) == 0 || index == 1;
    if gids.len() > 1 && leave {
        let gid = gids[rng.gen_range(0..gids.len())];
        *out = Some(gid);
        return Step::Leave { gid };
    }
    Step::Move {
        shard: rng.gen_range(0..groups.shard_count.max(1)),
        gid: gids[rng.gen_range(0..gids.len())],
    }
}

/// Runs reshapes until `until` (time since the log's start) or `stop`,
/// each through a node the seed picks; returns one event per step, its
/// outcome in the target text.
pub async fn run(
    seed: u64,
    grpc_addrs: Vec<String>,
    groups: Groups,
    log: Log,
    until: Duration,
    mut stop: watch::Receiver<bool>,
) -> Vec<FaultEvent> {
    // Its own stream, apart from the fault schedule's.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7265_7368_6170_6521);
    let mut out = None;
    let mut events = Vec::new();
    if groups.members.is_empty() || grpc_addrs.is_empty() {
        return events;
    }
    while events.len() < RESHAPES_MAX {
        let gap = Duration::from_millis(rng.gen_range(GAP_MS.0..GAP_MS.1));
        let at = Duration::from_micros(log.now_us()) + gap;
        if at >= until {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(gap) => {}
            _ = stop.changed() => break,
        }
        let address = &grpc_addrs[rng.gen_range(0..grpc_addrs.len())];
        // The controller's view, when it answers, decides which group is
        // out: a leave whose answer was lost may have applied, and one
        // that seemed to apply may be followed by nothing else.
        if let Ok(reply) = call_status(address).await {
            out = groups
                .members
                .iter()
                .map(|group| group.gid)
                .find(|gid| !reply.groups.iter().any(|group| group.gid == *gid));
        }
        let step = next_step(&mut rng, events.len(), &groups, &mut out);
        let start_us = log.now_us();
        let outcome = send(address, &step, &groups).await;
        let mut target = step.describe();
        match &outcome {
            Ok(()) => target.push_str(": applied"),
            Err(error) => {
                let _ = write!(target, ": not applied ({error})");
                // Without the controller's view next time: a leave that
                // did not land leaves nobody to bring back; a join that
                // did not land is tried again.
                match step {
                    Step::Leave { .. } => out = None,
                    Step::Join { gid } => out = Some(gid),
                    Step::Move { .. } => {}
                }
            }
        }
        eprintln!(
            "chaos: {:>6.1}s {} {target}",
            start_us as f64 / 1e6,
            step.kind()
        );
        events.push(FaultEvent {
            kind: step.kind().to_string(),
            target,
            start_us,
            end_us: log.now_us(),
        });
    }
    events
}

/// At the heal: joins every known group the controller no longer has,
/// retrying until `timeout`. A leave whose answer was lost may still have
/// applied, so the controller's own view decides, not the reshaper's.
pub async fn rejoin_all(
    grpc_addrs: &[String],
    groups: &Groups,
    timeout: Duration,
) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    let mut last_problem = String::new();
    while started.elapsed() < timeout {
        match status(grpc_addrs).await {
            Ok(reply) => {
                let missing: Vec<u64> = groups
                    .members
                    .iter()
                    .map(|group| group.gid)
                    .filter(|gid| !reply.groups.iter().any(|group| group.gid == *gid))
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                for gid in missing {
                    let step = Step::Join { gid };
                    for address in grpc_addrs {
                        match send(address, &step, groups).await {
                            Ok(()) => break,
                            Err(error) => last_problem = format!("join of group {gid}: {error}"),
                        }
                    }
                }
            }
            Err(error) => last_problem = error,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(format!(
        "a group that left is not back within {timeout:?}: {last_problem}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_groups() -> Groups {
        Groups {
            members: vec![
                GroupMembers {
                    gid: 1,
                    peer_addrs: vec!["127.0.0.1:1".into()],
                },
                GroupMembers {
                    gid: 2,
                    peer_addrs: vec!["127.0.0.1:2".into()],
                },
            ],
            shard_count: 10,
        }
    }

    #[test]
    fn a_group_that_leaves_joins_again_next_and_steps_replay_from_the_seed() {
        let groups = two_groups();
        let steps = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut out = None;
            (0..200)
                .map(|index| next_step(&mut rng, index, &groups, &mut out))
                .collect::<Vec<_>>()
        };
        let plan = steps(3);
        assert_eq!(plan, steps(3));
        assert_ne!(plan, steps(4));
        let mut leaves = 0;
        for pair in plan.windows(2) {
            if let Step::Leave { gid } = pair[0] {
                leaves += 1;
                assert_eq!(pair[1], Step::Join { gid }, "{pair:?}");
            }
        }
        assert!(
            plan[..2]
                .iter()
                .any(|step| matches!(step, Step::Leave { .. })),
            "{:?}",
            &plan[..2]
        );
        assert!(leaves > 1, "200 steps hold leaves beyond the second");
        for step in &plan {
            if let Step::Move { shard, gid } = step {
                assert!(*shard < 10 && [1, 2].contains(gid), "{step:?}");
            }
        }
    }

    #[test]
    fn with_one_group_nothing_leaves() {
        let mut groups = two_groups();
        groups.members.truncate(1);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut out = None;
        for index in 0..100 {
            assert!(matches!(
                next_step(&mut rng, index, &groups, &mut out),
                Step::Move { gid: 1, .. }
            ));
        }
    }
}
