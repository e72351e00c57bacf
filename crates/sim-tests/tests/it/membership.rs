//! Raft membership change under simulation (issue 21), at the kvraft
//! level: replicas join with new ids and addresses, catch up as learners,
//! are promoted, and old ones leave, while clients run and faults strike.
//! Every client call is recorded and the whole history checked for
//! linearizability; Raft's invariant checkers run on every step of every
//! replica, original or added. They are configuration-blind on purpose:
//! "one leader per term" is checked across every node that ever ran,
//! whatever configuration elected it, and "a committed entry is in every
//! later leader's log" (leader completeness, state machine safety) across
//! every change.

#![cfg(madsim)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use raft::core::{MembershipChange, MembershipError};
use rsm::ChangeError;
use sim_tests::harness::{phase, wait_until, within};
use sim_tests::kvraft::{
    ELECTION_TIMEOUT, ReplaceScenario, TestClient, Tester, TesterConfig, replace_under_faults,
    start_load,
};

const TEST_LIMIT: Duration = Duration::from_secs(120);
/// How long one membership change may take (simulated).
const CHANGE_BOUND: Duration = Duration::from_secs(30);

async fn stop_load(done: &AtomicBool, workers: Vec<madsim::task::JoinHandle<u64>>) -> u64 {
    done.store(true, Ordering::Relaxed);
    let mut appended = 0;
    for worker in workers {
        appended += worker.await.expect("client task");
    }
    appended
}

/// Waits until some running server leads and has committed in its term.
async fn wait_serving(tester: &Tester, client: &TestClient) {
    within("a write after the heal", Duration::from_secs(30), async {
        client.put("probe", "1").await.expect("a write succeeds");
    })
    .await;
    assert!(tester.leader().is_some() || tester.servers() > 0);
}

/// Every replica of a group of three is replaced, one at a time (a new
/// server joins with a new id and address, catches up as a learner, is
/// promoted once within the lag bound, the old one is removed and taken
/// down for good) while three clients run on an unreliable network and a
/// fault task cuts off or crashes-and-restarts one member at a time (half
/// the time the leader). At the end the group is the three new servers,
/// every server agrees on it, and the history is linearizable.
#[madsim::test]
async fn replace_every_replica_under_faults_linearizable() {
    within(
        "replace_every_replica_under_faults_linearizable",
        TEST_LIMIT,
        async {
            let outcome = replace_under_faults(ReplaceScenario::new(3)).await;
            for (change, report) in &outcome.changes {
                println!("{change:?}: {report:?}");
            }
            println!(
                "{} faults, {} appends acknowledged during the changes; invariants: {:?}",
                outcome.faults, outcome.appends, outcome.invariants
            );
            let membership = outcome
                .membership
                .unwrap_or_else(|problem| panic!("{problem}"));
            assert_eq!(
                membership.voters,
                BTreeSet::from([3, 4, 5]),
                "{membership:?}"
            );
            assert_eq!(membership.voters, outcome.expected_voters);
            assert!(membership.learners.is_empty(), "{membership:?}");
            outcome
                .serving
                .unwrap_or_else(|problem| panic!("{problem}"));
            assert!(
                outcome.appends > 0,
                "no append completed during the changes"
            );
            assert!(outcome.faults > 0, "no fault struck");
            outcome
                .raft_state
                .unwrap_or_else(|problem| panic!("{problem}"));
            match outcome.linearizability {
                Ok(summary) => println!("history: {summary}"),
                Err(problem) => panic!("{problem}"),
            }
        },
    )
    .await;
}

/// The leader removes itself: it leads until the removal commits, then
/// steps down and stays quiet; the others elect a leader among themselves
/// and the clients' writes go on.
#[madsim::test]
async fn remove_the_leader_it_steps_down() {
    within("remove_the_leader_it_steps_down", TEST_LIMIT, async {
        phase("four voters (one added), clients running");
        let tester = Tester::with_config(TesterConfig {
            max_servers: 4,
            check_raft_invariants: true,
            ..TesterConfig::new(3)
        });
        let done = Arc::new(AtomicBool::new(false));
        let (clients, workers) = start_load(&tester, 2, 3, &done);
        let new = tester.add_server();
        tester
            .must_change(MembershipChange::AddLearner(new as u64), CHANGE_BOUND)
            .await;
        tester
            .must_change(MembershipChange::PromoteLearner(new as u64), CHANGE_BOUND)
            .await;

        phase("the leader removes itself");
        let mut leader = None;
        wait_until(
            "one leader",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || {
                leader = tester.leader();
                std::future::ready(leader.is_some())
            },
        )
        .await;
        let leader = leader.expect("a leader");
        let server = tester.server(leader).expect("the leader runs");
        let term_before = server.raft().status().term;
        let removed = loop {
            match server
                .rsm()
                .change_membership(MembershipChange::Remove(leader as u64), None)
                .await
            {
                Ok(membership) => break membership,
                // A change of the warm-up still in flight, or a new term's
                // no-op not yet committed: passes.
                Err(ChangeError::Refused(
                    MembershipError::ChangeInProgress { .. }
                    | MembershipError::LeaderNotReady { .. },
                )) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(error) => panic!("the leader could not remove itself: {error}"),
            }
        };
        assert!(!removed.contains(leader as u64), "{removed:?}");

        phase("it steps down, the others elect a leader and serve");
        wait_until(
            "the removed leader steps down",
            Duration::from_secs(5),
            Duration::from_millis(10),
            || std::future::ready(!server.raft().state().1),
        )
        .await;
        let status = server.raft().status();
        assert!(
            !status.is_voter,
            "the removed leader still votes: {status:?}"
        );
        let before = stop_load(&done, workers).await;
        let done = Arc::new(AtomicBool::new(false));
        let (_more_clients, workers) = start_load(&tester, 2, 3, &done);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = stop_load(&done, workers).await;
        assert!(after > 0, "no write completed after the leader left");
        let new_leader = tester.leader().expect("a leader among the others");
        assert_ne!(new_leader, leader);
        assert!(
            !server.raft().state().1,
            "the removed server leads again (term {} -> {})",
            term_before,
            server.raft().status().term
        );
        println!("{before} appends before, {after} after the leader left");
        wait_serving(&tester, &clients[0]).await;
        println!("invariants: {:?}", tester.checker_summary());
        tester.check_linearizable();
    })
    .await;
}

/// A learner cut off right after it is added: the voters commit without
/// it, its promotion is refused while it lags (`LearnerBehind`), and once
/// it is reconnected it catches up through a snapshot and the log, is
/// promoted, and holds what the others hold.
#[madsim::test]
async fn learner_partitioned_while_catching_up() {
    within("learner_partitioned_while_catching_up", TEST_LIMIT, async {
        phase("three servers, more than the learner lag bound of entries");
        let tester = Tester::with_config(TesterConfig {
            max_raft_state: Some(4000),
            max_servers: 4,
            check_raft_invariants: true,
            ..TesterConfig::new(3)
        });
        let writers: Vec<TestClient> = (0..8).map(|_| tester.make_client()).collect();
        let preload: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(index, client)| {
                client.spawn(move |clerk| async move {
                    for round in 0..80 {
                        let key = (round % 4).to_string();
                        clerk
                            .append(&key, &format!("p {index} {round};"))
                            .await
                            .expect("a preload append succeeds");
                    }
                })
            })
            .collect();
        for task in preload {
            task.await.expect("preload task");
        }

        phase("server 3 joins, is cut off, and is added as a learner");
        let new = tester.add_server();
        tester.net().disconnect(tester.server_node(new));
        tester
            .must_change(MembershipChange::AddLearner(new as u64), CHANGE_BOUND)
            .await;

        phase("the voters commit without the learner; its promotion is refused");
        let done = Arc::new(AtomicBool::new(false));
        let (clients, workers) = start_load(&tester, 3, 4, &done);
        let refused = tester
            .change(
                MembershipChange::PromoteLearner(new as u64),
                Duration::from_secs(3),
            )
            .await;
        let appended = stop_load(&done, workers).await;
        assert!(
            appended > 0,
            "the voters committed nothing without the learner"
        );
        match refused {
            Err(problem) => println!("promotion while cut off: {problem}"),
            Ok((membership, _)) => {
                panic!("a learner that has nothing was promoted: {membership:?}")
            }
        }
        let status = tester.raft_status(new).expect("the learner runs");
        assert_eq!(
            status.commit_index, 0,
            "a cut-off learner got entries: {status:?}"
        );

        phase("reconnected, it catches up and is promoted");
        tester.net().connect(tester.server_node(new));
        let (_, report) = tester
            .change(MembershipChange::PromoteLearner(new as u64), CHANGE_BOUND)
            .await
            .unwrap_or_else(|problem| panic!("{problem}"));
        println!("promotion: {report:?}");
        let status = tester.raft_status(new).expect("the new voter runs");
        assert!(
            status.snapshots_received >= 1,
            "the learner caught up without a snapshot: {status:?}"
        );

        phase("an original server leaves; the new one holds the same state");
        tester
            .must_change(MembershipChange::Remove(0), CHANGE_BOUND)
            .await;
        tester.kill_server(0);
        wait_serving(&tester, &clients[0]).await;
        let keys: Vec<String> = (0..4).map(|key| key.to_string()).collect();
        wait_until(
            "server 3 holds what server 1 holds",
            Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                let same = match (
                    tester.local_values(1, &keys),
                    tester.local_values(new, &keys),
                ) {
                    (Some((a, values_a)), Some((b, values_b))) => a == b && values_a == values_b,
                    _ => false,
                };
                std::future::ready(same)
            },
        )
        .await;
        tokio::time::sleep(ELECTION_TIMEOUT).await;
        println!("invariants: {:?}", tester.checker_summary());
        tester.check_linearizable();
    })
    .await;
}
