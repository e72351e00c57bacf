//! A group whose nodes were configured with different store capacities.
//! Each replica used to size its shards from its own file, so the small
//! one evicted keys the others kept; now the group's log decides the size
//! (`GroupCommand::SetStoreCapacity`, written by each leader once per
//! term), and the replicas hold the same state, also after the leader
//! changes and the size with it. The same holds for the stores' policy
//! revision (`GroupCommand::SetPolicyRevision`).

#![cfg(madsim)]

use std::time::Duration;

use cache::PolicyRevision;
use sim_tests::harness::{phase, wait_until, within};
use sim_tests::shardkv::{GROUP_SERVERS, TestClient, Tester, keys, random_string};

const TEST_LIMIT: Duration = Duration::from_secs(120);
const SMALL: u64 = 16 << 10;
const LARGE: u64 = 4 << 20;

/// Puts a 1,000-byte value under each key: 30 keys per shard hold about
/// 31 KiB a shard, more than `SMALL`.
async fn fill(client: &TestClient, keys: &[String]) {
    for key in keys {
        client
            .put(key, &random_string(1_000))
            .await
            .expect("put succeeds");
    }
}

fn leader(tester: &Tester) -> usize {
    (0..GROUP_SERVERS)
        .find(|&i| {
            tester
                .status(0, i)
                .is_some_and(|status| status.rsm.raft.is_leader)
        })
        .expect("the group has a leader")
}

/// Waits until every running replica has applied the same index, then
/// returns the store capacity they agree on, after checking that their
/// machines are byte for byte the same and that a leader wrote this
/// build's latest policy revision (`GroupCommand::SetPolicyRevision`).
async fn replicas_agree(tester: &Tester, running: &[usize]) -> u64 {
    let mut agreed = None;
    wait_until(
        "the replicas apply the same index",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let views: Vec<_> = running
                .iter()
                .map(|&i| {
                    tester.with_machine(0, i, |machine, applied| {
                        (
                            applied,
                            machine.store_capacity_bytes(),
                            machine.snapshot(),
                            machine.policy_revision(),
                        )
                    })
                })
                .collect();
            let same_index = views.iter().all(|view| {
                view.as_ref()
                    .zip(views[0].as_ref())
                    .is_some_and(|(view, first)| view.0 == first.0)
            });
            if same_index {
                let first = views[0].as_ref().expect("running");
                for (view, i) in views.iter().zip(running) {
                    let view = view.as_ref().expect("running");
                    assert_eq!(view.1, first.1, "replica {i}'s capacity");
                    assert!(view.2 == first.2, "replica {i}'s state differs");
                    assert_eq!(
                        view.3,
                        PolicyRevision::LATEST,
                        "replica {i}'s policy revision"
                    );
                }
                agreed = Some(first.1);
            }
            async move { same_index }
        },
    )
    .await;
    agreed.expect("agreed")
}

#[madsim::test]
async fn replicas_configured_with_different_capacities_hold_the_same_state() {
    within("capacity test", TEST_LIMIT, async {
        let tester = Tester::with_store_capacities(1, true, [SMALL, LARGE, LARGE]);
        tester.join(&[0]).await;
        let client = tester.make_client();
        let keys = keys(300);
        fill(&client, &keys).await;
        let first_leader = leader(&tester);
        let capacity = replicas_agree(&tester, &[0, 1, 2]).await;
        let expected = if first_leader == 0 { SMALL } else { LARGE };
        assert_eq!(capacity, expected, "the leader's size");

        // Another leader, which writes its own size; the replicas follow
        // it, whichever size it has.
        phase("the leader stops");
        tester.shutdown_server(0, first_leader);
        let running: Vec<usize> = (0..GROUP_SERVERS).filter(|&i| i != first_leader).collect();
        fill(&client, &keys[..100]).await;
        let new_leader = leader(&tester);
        assert_ne!(new_leader, first_leader);
        let capacity = replicas_agree(&tester, &running).await;
        let expected = if new_leader == 0 { SMALL } else { LARGE };
        assert_eq!(capacity, expected, "the new leader's size");

        phase("the old leader back");
        tester.start_server(0, first_leader).await;
        fill(&client, &keys[100..150]).await;
        replicas_agree(&tester, &[0, 1, 2]).await;
        tester.check_linearizable();
    })
    .await;
}
