//! kvraft under simulation: the 6.5840 Lab 4 tests (2024 numbering), each
//! recording its full client history and checking it for linearizability
//! (an "unknown" verdict fails). Times are simulated. Rounds last 3 s of
//! load instead of the lab's 5 s, to keep the suite's wall time small.

#![cfg(madsim)]

use std::time::Duration;

use sim_tests::harness::{elapsed_ms, phase, within};
use sim_tests::kvraft::{ELECTION_TIMEOUT, GenericTest, Tester, generic_test};

const TEST_LIMIT: Duration = Duration::from_secs(120);

/// One client, five servers, reliable: appends and gets on its own key.
#[madsim::test]
async fn basic_4a() {
    generic_test(GenericTest::new(1, 5)).await;
}

/// Five clients at once, each on its own key.
#[madsim::test]
async fn concurrent_4a() {
    generic_test(GenericTest::new(5, 5)).await;
}

/// Five clients on an unreliable network (lost and delayed messages).
#[madsim::test]
async fn unreliable_4a() {
    generic_test(GenericTest {
        reliable: false,
        ..GenericTest::new(5, 5)
    })
    .await;
}

/// One client; all servers crash and restart after every round.
#[madsim::test]
async fn persist_one_client_4a() {
    generic_test(GenericTest {
        crash: true,
        ..GenericTest::new(1, 5)
    })
    .await;
}

/// 1000 appends from one client, one after another: at most 33 ms each on
/// average (simulated time). The measured figure is printed.
#[madsim::test]
async fn speed_4a() {
    within("speed_4a", TEST_LIMIT, async {
        let tester = Tester::new(3, true, None);
        let client = tester.make_client();
        phase("first put (elects a leader)");
        client.put("x", "").await.expect("first put succeeds");
        phase("1000 appends");
        let appends = 1000u64;
        let start = labrpc::clock::now();
        let all_done = client
            .run(move |clerk| async move {
                for i in 0..appends {
                    if clerk.append("x", &format!("x 0 {i} y")).await.is_none() {
                        return false;
                    }
                }
                true
            })
            .await;
        assert!(all_done, "an append gave up");
        let per_op_ms = elapsed_ms(start) as f64 / appends as f64;
        println!("speed_4a: {per_op_ms:.2} ms per append (simulated)");
        assert!(
            per_op_ms <= 33.0,
            "{per_op_ms:.2} ms per append, expected at most 33"
        );
        tester.check_linearizable();
    })
    .await;
}

/// A partition: the majority (with the leader) keeps serving; clients cut
/// off with the minority cannot finish within 1 s; after healing they
/// finish within 3 s.
#[madsim::test]
async fn one_partition_4a() {
    within("one_partition_4a", TEST_LIMIT, async {
        let tester = Tester::new(5, true, None);
        let client = tester.make_client();
        client.put("1", "13").await.expect("put succeeds");

        phase("partition: leader with a majority, the rest apart");
        let leader = wait_leader(&tester).await;
        let majority: Vec<usize> = (0..5).map(|k| (leader + k) % 5).take(3).collect();
        let minority: Vec<usize> = (0..5).map(|k| (leader + k) % 5).skip(3).collect();
        let majority_client = tester.make_client();
        let minority_put = tester.make_client();
        let minority_get = tester.make_client();
        tester.partition(&[
            (majority.as_slice(), [&majority_client].as_slice()),
            (
                minority.as_slice(),
                [&minority_put, &minority_get].as_slice(),
            ),
        ]);

        phase("progress in the majority");
        majority_client
            .put("1", "14")
            .await
            .expect("majority put succeeds");
        majority_client.check_get("1", "14").await;

        phase("no progress in the minority");
        let put = minority_put.spawn(|clerk| async move { clerk.put("1", "15").await });
        let get = minority_get.spawn(|clerk| async move { clerk.get("1").await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!put.is_finished(), "a put in the minority finished");
        assert!(!get.is_finished(), "a get in the minority finished");

        phase("completion after heal");
        majority_client.check_get("1", "14").await;
        tester.connect_all();
        let healed = labrpc::clock::now();
        let put_done = within("minority put after heal", Duration::from_secs(3), put)
            .await
            .expect("client task");
        let get_done = within("minority get after heal", Duration::from_secs(3), get)
            .await
            .expect("client task");
        assert!(put_done.is_some() && get_done.is_some(), "a call gave up");
        println!(
            "one_partition_4a: minority calls finished {} ms after heal",
            elapsed_ms(healed)
        );
        client.check_get("1", "15").await;
        tester.check_linearizable();
    })
    .await;
}

/// One client, max_raft_state 1000: all servers crash after every round;
/// they recover from snapshots, and Raft state stays within 8 x 1000.
#[madsim::test]
async fn snapshot_recover_4b() {
    generic_test(GenericTest {
        crash: true,
        max_raft_state: Some(1000),
        ..GenericTest::new(1, 5)
    })
    .await;
}

/// 200 x (put x 0, get, put x 1, get) with max_raft_state 1000: Raft state
/// at most 8 x 1000 bytes, every snapshot at most 500 bytes.
#[madsim::test]
async fn snapshot_size_4b() {
    within("snapshot_size_4b", TEST_LIMIT, async {
        let max_raft_state = 1000;
        let tester = Tester::new(3, true, Some(max_raft_state));
        let client = tester.make_client();
        phase("200 rounds of put/get on one key");
        client
            .run(|clerk| async move {
                for _ in 0..200 {
                    for value in ["0", "1"] {
                        clerk.put("x", value).await.expect("put succeeds");
                        let read = clerk.get("x").await.expect("get succeeds");
                        assert_eq!(read.as_deref(), Some(value), "get(x)");
                    }
                }
            })
            .await;
        tester.check_raft_state_bounded();
        let snapshot_bytes = tester.max_snapshot_bytes();
        assert!(snapshot_bytes > 0, "no replica took a snapshot");
        assert!(
            snapshot_bytes <= 500,
            "snapshot of {snapshot_bytes} bytes, expected at most 500"
        );
        println!("snapshot_size_4b: largest snapshot {snapshot_bytes} bytes");
        tester.check_linearizable();
    })
    .await;
}

async fn wait_leader(tester: &Tester) -> usize {
    for _ in 0..500 {
        if let Some(leader) = tester.leader() {
            return leader;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no single leader within 5 s (election timeout {ELECTION_TIMEOUT:?})");
}

/// The lab's generic scenario with the given knobs (clients, servers,
/// reliable, crash, partitions, max_raft_state, random keys).
fn scenario(
    clients: usize,
    servers: usize,
    reliable: bool,
    crash: bool,
    partitions: bool,
    max_raft_state: Option<u64>,
    random_keys: bool,
) -> GenericTest {
    GenericTest {
        reliable,
        crash,
        partitions,
        max_raft_state,
        random_keys,
        ..GenericTest::new(clients, servers)
    }
}

/// One client while the servers are repartitioned at random.
#[madsim::test]
async fn many_partitions_one_client_4a() {
    generic_test(scenario(1, 5, true, false, true, None, false)).await;
}

/// Five clients, unreliable network, random partitions.
#[madsim::test]
async fn many_partitions_many_clients_4a() {
    generic_test(scenario(5, 5, false, false, true, None, false)).await;
}

/// Five clients; every server crashes after each round.
#[madsim::test]
async fn persist_concurrent_4a() {
    generic_test(scenario(5, 5, true, true, false, None, false)).await;
}

/// Five clients, unreliable network, crashes.
#[madsim::test]
async fn persist_concurrent_unreliable_4a() {
    generic_test(scenario(5, 5, false, true, false, None, false)).await;
}

/// Five clients, partitions and crashes.
#[madsim::test]
async fn persist_partition_4a() {
    generic_test(scenario(5, 5, true, true, true, None, false)).await;
}

/// Five clients, unreliable network, partitions and crashes.
#[madsim::test]
async fn persist_partition_unreliable_4a() {
    generic_test(scenario(5, 5, false, true, true, None, false)).await;
}

/// 15 clients on shared random keys, 7 servers, unreliable network,
/// partitions and crashes.
#[madsim::test]
async fn persist_partition_unreliable_linearizable_4a() {
    generic_test(scenario(15, 7, false, true, true, None, true)).await;
}

/// 20 clients, crashes, max_raft_state 1000.
#[madsim::test]
async fn snapshot_recover_many_clients_4b() {
    generic_test(scenario(20, 5, true, true, false, Some(1000), false)).await;
}

/// Five clients, unreliable network, max_raft_state 1000.
#[madsim::test]
async fn snapshot_unreliable_4b() {
    generic_test(scenario(5, 5, false, false, false, Some(1000), false)).await;
}

/// Five clients, unreliable network, crashes, max_raft_state 1000.
#[madsim::test]
async fn snapshot_unreliable_recover_4b() {
    generic_test(scenario(5, 5, false, true, false, Some(1000), false)).await;
}

/// Five clients, unreliable network, crashes, partitions, max_raft_state 1000.
#[madsim::test]
async fn snapshot_unreliable_recover_concurrent_partition_4b() {
    generic_test(scenario(5, 5, false, true, true, Some(1000), false)).await;
}

/// 15 clients on shared random keys, 7 servers, unreliable network, crashes,
/// partitions, max_raft_state 1000.
#[madsim::test]
async fn snapshot_unreliable_recover_concurrent_partition_linearizable_4b() {
    generic_test(scenario(15, 7, false, true, true, Some(1000), true)).await;
}
