//! Collections on one kvraft group under simulation (issues 16 and 20): the
//! same random collection commands as `shardkv_collections.rs`, here with
//! calls that give up. A client shut in with a leader cut off from the
//! majority cannot finish its call before its deadline, so the history
//! holds commands of unknown outcome (an `SPOP` among them leaves the model
//! several sets to track), and every history must still be linearizable
//! under the `collections` model.

#![cfg(madsim)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use linearizability::{CollectionsInput, CollectionsModel, Unlimited, Verdict};
use sim_tests::collections::{CollectionsRecorder, run_input, run_one};
use sim_tests::harness::{phase, within};
use sim_tests::kvraft::{Tester, TesterConfig};

const TEST_LIMIT: Duration = Duration::from_secs(120);
const CLIENTS: u64 = 3;
/// Each client runs commands until the faults are over, at most this many.
const COMMANDS_PER_CLIENT_MAX: u64 = 300;
/// Rounds of "the leader and client 0 shut in a minority, then a crash".
const ROUNDS: usize = 4;
/// Cuts of client 0 alone per round.
const CUTS_PER_ROUND: usize = 3;

async fn wait_leader(tester: &Tester) -> usize {
    for _ in 0..500 {
        if let Some(leader) = tester.leader() {
            return leader;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no single leader within 5 s");
}

/// Three clients run random collection commands on the keys of two hash
/// tags against a group of three with snapshots on, on a lossy network;
/// four times the leader is cut off with client 0 (whose calls give up
/// after 1 s, their outcome unknown), then healed, then a replica crashes
/// and restarts, then client 0 alone is cut off three times (a call in
/// flight may commit and lose its answer). Three in four of client 0's
/// commands are `SPOP`s.
/// The history must be linearizable and hold commands of unknown outcome.
#[madsim::test]
async fn collection_ops_with_lost_answers_linearizable() {
    within(
        "collection_ops_with_lost_answers_linearizable",
        TEST_LIMIT,
        async {
            let tester = Tester::with_config(TesterConfig {
                reliable: false,
                max_raft_state: Some(2000),
                operation_deadline: Duration::from_secs(1),
                ..TesterConfig::new(3)
            });
            let clients: Vec<_> = (0..CLIENTS).map(|_| tester.make_client()).collect();
            let recorder = CollectionsRecorder::new();
            let start = labrpc::runtime::now();
            let over = Arc::new(AtomicBool::new(false));
            phase("3 clients run collection commands on tags {c} and {k}");
            let workers: Vec<_> = clients
                .iter()
                .zip(0u64..)
                .map(|(handle, client)| {
                    let (recorder, over) = (recorder.clone(), Arc::clone(&over));
                    handle.spawn(move |clerk| async move {
                        for index in 0..COMMANDS_PER_CLIENT_MAX {
                            if over.load(Ordering::SeqCst) {
                                break;
                            }
                            let tag = if (client + index) % 2 == 0 { "c" } else { "k" };
                            if client == 0 && index % 4 != 0 {
                                // Client 0 is the one cut off: three in four
                                // of its commands are SPOPs, so SPOPs lose
                                // their answers, some after taking effect.
                                let pop = CollectionsInput::SPop {
                                    key: format!("{{{tag}}}s{}", 1 + index / 2 % 2),
                                    count: [None, Some(2)][(index / 4 % 2) as usize],
                                };
                                let seed = madsim::rand::random::<u64>();
                                run_input(clerk.inner(), &recorder, start, client, pop, seed).await;
                            } else {
                                run_one(clerk.inner(), &recorder, start, client, tag).await;
                            }
                        }
                    })
                })
                .collect();
            for round in 0..ROUNDS {
                tokio::time::sleep(Duration::from_millis(600)).await;
                let leader = wait_leader(&tester).await;
                phase(&format!(
                    "round {round}: leader {leader} and client 0 in a minority"
                ));
                let others: Vec<usize> = (0..3).filter(|&id| id != leader).collect();
                tester.partition(&[
                    (&[leader], &[&clients[0]]),
                    (others.as_slice(), &[&clients[1], &clients[2]]),
                ]);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                tester.connect_all();
                let crashed = (leader + 1 + round) % 3;
                phase(&format!("round {round}: healed; server {crashed} crashes"));
                tester.kill_server(crashed);
                tokio::time::sleep(Duration::from_millis(500)).await;
                tester.restart_server(crashed).await;
                // A call of client 0 in flight at a cut may commit while
                // its answer is lost: an unknown outcome that did take
                // effect. Each cut outlasts the clerk's deadline.
                for cut in 0..CUTS_PER_ROUND {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    phase(&format!("round {round}: client 0 cut off alone ({cut})"));
                    tester.partition(&[
                        (&[0, 1, 2], &[&clients[1], &clients[2]]),
                        (&[], &[&clients[0]]),
                    ]);
                    tokio::time::sleep(Duration::from_millis(1200)).await;
                    tester.connect_all();
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            over.store(true, Ordering::SeqCst);
            for worker in workers {
                worker.await.expect("client task");
            }
            let history = recorder
                .history()
                .expect("simulated clock never goes backwards");
            let operations = history.operations().len();
            let unknown = history.unknown_outcome_count();
            assert!(
                unknown > 0,
                "{operations} commands, none of unknown outcome: client 0's calls in the \
                 minority should have given up"
            );
            let result = linearizability::check(&CollectionsModel, &history, Unlimited);
            assert!(
                result.verdict == Verdict::Linearizable,
                "{operations} operations: {:?}\n{}",
                result.verdict,
                result.explain(&CollectionsModel, &history)
            );
            phase(&format!(
                "linearizable: {operations} commands, {unknown} of unknown outcome, {}",
                result.summary()
            ));
        },
    )
    .await;
}
