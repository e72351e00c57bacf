//! Membership changes driven by the kvraft tester, as an operator would
//! (`crate::harness::membership`), and the "replace every replica under
//! faults" scenario.

use std::time::Duration;

use raft::core::{Membership, MembershipChange};

pub use crate::harness::membership::ChangeReport;
use crate::harness::membership::{change_on_leader, membership_agreed};

use super::{TestClient, Tester, TesterConfig};

impl Tester {
    /// The running servers' replicated state machines.
    fn running_rsms(&self) -> Vec<rsm::Rsm<kvraft::StateMachine>> {
        (0..self.servers())
            .filter_map(|id| self.server(id))
            .map(|server| server.rsm().clone())
            .collect()
    }

    /// Makes `change` (with the new member's address for an addition) on
    /// the replica that leads, retrying within `bound` of simulated time.
    /// Returns the configuration afterwards and what the attempts met.
    pub async fn change(
        &self,
        change: MembershipChange,
        bound: Duration,
    ) -> Result<(Membership, ChangeReport), String> {
        let addr = match change {
            MembershipChange::AddLearner(id) | MembershipChange::AddVoter(id) => {
                Some(self.server_addr(id as usize))
            }
            _ => None,
        };
        change_on_leader(|| self.running_rsms(), change, addr, bound).await
    }

    /// [`Tester::change`], panicking with the reason if it fails.
    pub async fn must_change(&self, change: MembershipChange, bound: Duration) -> Membership {
        match self.change(change, bound).await {
            Ok((membership, report)) => {
                println!("{change:?}: {membership:?} after {report:?}");
                membership
            }
            Err(problem) => panic!("{problem}"),
        }
    }

    /// The configuration every running server holds, once they agree
    /// (waiting at most `bound`), or what each holds.
    pub async fn membership_agreed(&self, bound: Duration) -> Result<Membership, String> {
        membership_agreed(|| self.running_rsms(), bound).await
    }
}

/// One "replace replicas under faults" run: its shape.
#[derive(Clone, Copy, Debug)]
pub struct ReplaceScenario {
    /// The group's size at start (its ids `0..servers`).
    pub servers: usize,
    /// Replicas replaced one by one, oldest id first (at most `servers`:
    /// each original member once).
    pub replacements: usize,
    pub reliable: bool,
    pub max_raft_state: Option<u64>,
    pub clients: usize,
    /// Crash-and-restart faults besides cutting members off.
    pub crashes: bool,
    /// See [`TesterConfig::subnet`].
    pub subnet: Option<u8>,
    /// How long one change may take, in simulated time.
    pub change_bound: Duration,
}

impl ReplaceScenario {
    pub fn new(servers: usize) -> ReplaceScenario {
        ReplaceScenario {
            servers,
            replacements: servers,
            reliable: false,
            max_raft_state: Some(2000),
            clients: 3,
            crashes: true,
            subnet: None,
            change_bound: Duration::from_secs(30),
        }
    }
}

/// What a [`replace_under_faults`] run did and found.
#[derive(Debug)]
pub struct ReplaceOutcome {
    pub faults: u64,
    /// Appends acknowledged while the changes ran.
    pub appends: u64,
    pub changes: Vec<(MembershipChange, ChangeReport)>,
    /// Every running server's configuration at the end, once they agree.
    pub membership: Result<Membership, String>,
    /// The voters expected at the end.
    pub expected_voters: std::collections::BTreeSet<u64>,
    /// A write after the heal.
    pub serving: Result<(), String>,
    pub raft_state: Result<(), String>,
    pub linearizability: Result<String, String>,
    pub invariants: Option<crate::raft::invariants::CheckerSummary>,
}

/// Replaces members of a group one at a time (a new server joins with a
/// new id and address, is added as a learner, promoted once caught up
/// within the lag bound, and the old member is removed and taken down for
/// good), with 1-2 s of load before each step, while clients append and
/// read and a fault task strikes one member at a time (half the time the
/// leader): cut off for 0.2-1.2 s, or crashed and restarted from its
/// files. Then the faults stop and the group must converge. Raft's
/// invariant checkers run on every step (a broken one panics).
pub async fn replace_under_faults(scenario: ReplaceScenario) -> ReplaceOutcome {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    assert!(scenario.replacements <= scenario.servers);
    let tester = Arc::new(Tester::with_config(TesterConfig {
        reliable: scenario.reliable,
        max_raft_state: scenario.max_raft_state,
        max_servers: scenario.servers + scenario.replacements,
        check_raft_invariants: true,
        operation_deadline: Duration::from_secs(20),
        subnet: scenario.subnet,
        ..TesterConfig::new(scenario.servers)
    }));
    let done = Arc::new(AtomicBool::new(false));
    let (clients, workers) = start_load(&tester, scenario.clients, 4, &done);

    // The members the fault task may strike; the lock is held by a fault
    // and by the removal of a member, so a removed server is never
    // restarted.
    let active = Arc::new(tokio::sync::Mutex::new(
        (0..scenario.servers).collect::<BTreeSet<usize>>(),
    ));
    let fault_count = Arc::new(AtomicU64::new(0));
    let faults = {
        let tester = Arc::clone(&tester);
        let active = Arc::clone(&active);
        let done = Arc::clone(&done);
        let counted = Arc::clone(&fault_count);
        tokio::spawn(async move {
            for _ in 0..10_000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(
                    300 + madsim::rand::random::<u64>() % 700,
                ))
                .await;
                let members = active.lock().await;
                let ids: Vec<usize> = members.iter().copied().collect();
                // Half the faults strike the leader, if one is known, so
                // changes meet leader changes too.
                let id = match tester.leader() {
                    Some(leader) if members.contains(&leader) && madsim::rand::random::<bool>() => {
                        leader
                    }
                    _ => ids[madsim::rand::random::<u64>() as usize % ids.len()],
                };
                counted.fetch_add(1, Ordering::Relaxed);
                if !scenario.crashes || madsim::rand::random::<bool>() {
                    let node = tester.server_node(id);
                    tester.net().disconnect(node);
                    drop(members);
                    tokio::time::sleep(Duration::from_millis(
                        200 + madsim::rand::random::<u64>() % 1000,
                    ))
                    .await;
                    tester.net().connect(node);
                } else {
                    tester.restart_server(id).await;
                }
            }
        })
    };

    let mut changes = Vec::new();
    let mut expected_voters: BTreeSet<u64> = (0..scenario.servers as u64).collect();
    for old in 0..scenario.replacements {
        load_for_a_while().await;
        let new = tester.add_server();
        active.lock().await.insert(new);
        for change in [
            MembershipChange::AddLearner(new as u64),
            MembershipChange::PromoteLearner(new as u64),
            MembershipChange::Remove(old as u64),
        ] {
            if !matches!(change, MembershipChange::AddLearner(_)) {
                load_for_a_while().await;
            }
            crate::harness::phase(&format!("replace server {old} by {new}: {change:?}"));
            match tester.change(change, scenario.change_bound).await {
                Ok((membership, report)) => {
                    assert!(
                        crate::kvraft::membership_reflects(&membership, change),
                        "{change:?} answered Ok with {membership:?}"
                    );
                    changes.push((change, report));
                }
                Err(problem) => panic!("{problem}"),
            }
        }
        let mut members = active.lock().await;
        members.remove(&old);
        tester.kill_server(old);
        drop(members);
        expected_voters.remove(&(old as u64));
        expected_voters.insert(new as u64);
    }

    crate::harness::phase("faults stop; the group converges");
    done.store(true, Ordering::Relaxed);
    faults.await.expect("fault task");
    tester.connect_all();
    let mut appends = 0;
    for worker in workers {
        appends += worker.await.expect("client task");
    }
    let membership = tester.membership_agreed(Duration::from_secs(10)).await;
    let serving = tokio::time::timeout(Duration::from_secs(30), clients[0].put("probe", "1"))
        .await
        .map_err(|_| "no write within 30 s after the heal".to_string())
        .and_then(|put| put.ok_or_else(|| "the write after the heal gave up".to_string()));
    ReplaceOutcome {
        faults: fault_count.load(Ordering::Relaxed),
        appends,
        changes,
        membership,
        expected_voters,
        serving,
        raft_state: tester.raft_state_bounded(),
        linearizability: tester.linearizability(),
        invariants: tester.checker_summary(),
    }
}

/// Lets the clients and the faults run for 1-2 s (simulated) between two
/// steps of a replacement.
async fn load_for_a_while() {
    tokio::time::sleep(Duration::from_millis(
        1000 + madsim::rand::random::<u64>() % 1000,
    ))
    .await;
}

/// `clients` clients appending to and reading `keys` keys until `done`;
/// each returns how many appends it completed.
pub fn start_load(
    tester: &Tester,
    clients: usize,
    keys: u64,
    done: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<TestClient>, Vec<madsim::task::JoinHandle<u64>>) {
    use std::sync::atomic::Ordering;

    let clients: Vec<TestClient> = (0..clients).map(|_| tester.make_client()).collect();
    let workers = clients
        .iter()
        .enumerate()
        .map(|(index, client)| {
            let done = std::sync::Arc::clone(done);
            client.spawn(move |clerk| async move {
                let mut appended = 0u64;
                for round in 0..100_000u64 {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = (madsim::rand::random::<u64>() % keys).to_string();
                    if madsim::rand::random::<bool>() {
                        let value = format!("x {index} {round} y");
                        if clerk.append(&key, &value).await.is_some() {
                            appended += 1;
                        }
                    } else {
                        clerk.get(&key).await;
                    }
                }
                appended
            })
        })
        .collect();
    (clients, workers)
}
