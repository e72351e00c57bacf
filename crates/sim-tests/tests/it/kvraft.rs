//! kvraft under simulation: the 6.5840 Lab 4 tests (2024 numbering), each
//! recording its full client history and checking it for linearizability
//! (an "unknown" verdict fails). Times are simulated. Rounds last 3 s of
//! load instead of the lab's 5 s, to keep the suite's wall time small.

#![cfg(madsim)]

use std::time::Duration;

use kvraft::MachineConfig;
use sim_tests::harness::{elapsed_ms, phase, within};
use sim_tests::kvraft::{ELECTION_TIMEOUT, GenericTest, Tester, TesterConfig, generic_test};

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

/// Five clients append ten values each to one key on an unreliable network
/// (three servers): the final value holds every client's appends exactly
/// once and in its order, and the history (one key, many long-overlapping
/// appends: the checker's hardest shape) is linearizable.
#[madsim::test]
async fn unreliable_one_key_4a() {
    within("unreliable_one_key_4a", TEST_LIMIT, async {
        let tester = Tester::new(3, false, None);
        let first = tester.make_client();
        first.put("k", "").await.expect("first put succeeds");
        phase("5 clients x 10 appends to one key");
        let (clients, appends) = (5u64, 10u64);
        let workers: Vec<_> = (0..clients)
            .map(|client| {
                tester.make_client().spawn(move |clerk| async move {
                    for index in 0..appends {
                        let value = format!("x {client} {index} y");
                        assert!(
                            clerk.append("k", &value).await.is_some(),
                            "client {client}: append {index} gave up"
                        );
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("client task");
        }
        let value = first
            .get("k")
            .await
            .expect("final get succeeds")
            .expect("k is present");
        check_concurrent_appends(&value, clients, appends);
        tester.check_linearizable();
    })
    .await;
}

/// The lab's `checkConcurrentAppends`: each client's appends `x C I y`
/// appear exactly once, in increasing `I`.
fn check_concurrent_appends(value: &str, clients: u64, appends: u64) {
    for client in 0..clients {
        let mut last_position = None;
        for index in 0..appends {
            let wanted = format!("x {client} {index} y");
            let position = value
                .find(&wanted)
                .unwrap_or_else(|| panic!("{wanted:?} missing from the final value {value:?}"));
            assert_eq!(
                value.rfind(&wanted),
                Some(position),
                "{wanted:?} appears twice in {value:?}"
            );
            if let Some(last) = last_position {
                assert!(
                    position > last,
                    "{wanted:?} is before client {client}'s earlier append in {value:?}"
                );
            }
            last_position = Some(position);
        }
    }
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
    speed_test("speed_4a", None).await;
}

/// `speed_4a` with snapshots (max_raft_state 1000): at most 33 ms per
/// append on average (simulated time), Raft state within 8 x 1000 bytes.
#[madsim::test]
async fn speed_4b() {
    speed_test("speed_4b", Some(1000)).await;
}

/// The lab's `GenericTestSpeed`: three servers, one client, 1000 appends.
async fn speed_test(name: &'static str, max_raft_state: Option<u64>) {
    within(name, TEST_LIMIT, async {
        let tester = Tester::new(3, true, max_raft_state);
        let client = tester.make_client();
        phase("first put (elects a leader)");
        client.put("x", "").await.expect("first put succeeds");
        phase("1000 appends");
        let appends = 1000u64;
        let start = labrpc::runtime::now();
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
        println!("{name}: {per_op_ms:.2} ms per append (simulated)");
        assert!(
            per_op_ms <= 33.0,
            "{per_op_ms:.2} ms per append, expected at most 33"
        );
        tester.check_raft_state_bounded();
        if max_raft_state.is_some() {
            assert!(
                tester.max_snapshot_bytes() > 0,
                "no replica took a snapshot"
            );
        }
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
        let healed = labrpc::runtime::now();
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

/// InstallSnapshot: server 2 is cut off while the majority {0, 1} takes 50
/// puts and snapshots its log away; then {0, 2} must serve, which needs
/// server 2 caught up by a snapshot (the leader no longer has the entries it
/// lacks). Raft state stays within 8 x max_raft_state throughout.
#[madsim::test]
async fn snapshot_rpc_4b() {
    within("snapshot_rpc_4b", TEST_LIMIT, async {
        let max_raft_state = 1000;
        let tester = Tester::new(3, false, Some(max_raft_state));
        let client = tester.make_client();
        client.put("a", "A").await.expect("put succeeds");
        client.check_get("a", "A").await;

        phase("50 puts in the majority {0, 1}; server 2 cut off");
        let majority_client = tester.make_client();
        let lagging_client = tester.make_client();
        tester.partition(&[
            ([0, 1].as_slice(), [&majority_client].as_slice()),
            ([2].as_slice(), [&lagging_client, &client].as_slice()),
        ]);
        majority_client
            .run(|clerk| async move {
                for i in 0..50 {
                    let key = i.to_string();
                    clerk.put(&key, &key).await.expect("majority put succeeds");
                }
            })
            .await;
        tokio::time::sleep(ELECTION_TIMEOUT).await;
        majority_client
            .put("b", "B")
            .await
            .expect("majority put succeeds");
        tester.check_raft_state_bounded();
        let lagging_last = tester.raft_status(2).expect("server 2 runs").last_log_index;
        let snapshot_index = (0..2)
            .filter_map(|id| tester.raft_status(id))
            .map(|status| status.snapshot_index)
            .min()
            .unwrap_or(0);
        assert!(
            snapshot_index > lagging_last,
            "the majority kept its log from index {snapshot_index}, server 2 ends at \
             {lagging_last}: no InstallSnapshot would be needed"
        );

        phase("{0, 2} must serve: server 2 catches up by InstallSnapshot");
        let second_client = tester.make_client();
        tester.partition(&[
            ([0, 2].as_slice(), [&second_client].as_slice()),
            (
                [1].as_slice(),
                [&majority_client, &lagging_client, &client].as_slice(),
            ),
        ]);
        second_client
            .put("c", "C")
            .await
            .expect("put with server 2 succeeds");
        second_client
            .put("d", "D")
            .await
            .expect("put with server 2 succeeds");
        for (key, value) in [("a", "A"), ("b", "B"), ("1", "1"), ("49", "49")] {
            second_client.check_get(key, value).await;
        }
        let caught_up = tester.raft_status(2).expect("server 2 runs");
        assert!(
            caught_up.snapshot_index >= snapshot_index,
            "server 2's snapshot is at {}, the majority's was at {snapshot_index}",
            caught_up.snapshot_index
        );

        phase("everyone together");
        tester.connect_all();
        client.put("e", "E").await.expect("put succeeds");
        for (key, value) in [("c", "C"), ("e", "E"), ("1", "1")] {
            client.check_get(key, value).await;
        }
        tester.check_raft_state_bounded();
        tester.check_linearizable();
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

/// Issue 6: a replica whose Raft snapshot and log disagree after a crash
/// refuses to start, so it cannot serve stale data; the others keep
/// serving. (Self-contained: the shared harness panics when a server fails
/// to start, which is what this test wants to observe.)
mod corrupt_replica {
    use std::path::Path;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::time::Duration;

    use kvraft::{Clerk, ClerkConfig, KvServer, ServerConfig};
    use labrpc::sim::{Network, NodeId};
    use linearizability::{KvInput, KvModel, KvOutput, Recorder, StepBudget};
    use raft::storage::{FileStorage, SNAPSHOT_FILE_NAME};
    use sim_tests::harness::{
        RecordingKv, check_history, client_ip, node_addr, node_ip, phase, within,
    };

    const SERVERS: usize = 3;
    const VICTIM: usize = 2;
    const DIR: &str = "/kvraft";

    #[derive(Default)]
    struct Replica {
        server: Option<KvServer>,
        /// Why its latest start failed (None if it started).
        start_error: Option<String>,
        starts: u64,
        /// Its snapshot file as its latest start found it (before any damage).
        snapshot_file_found: Option<Vec<u8>>,
        /// Written over its snapshot file at its next start.
        replace_snapshot_with: Option<Vec<u8>>,
    }

    type Replicas = Arc<Mutex<Vec<Replica>>>;

    fn lock(replicas: &Replicas) -> MutexGuard<'_, Vec<Replica>> {
        replicas
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn start_replica(id: usize, replicas: Replicas) {
        let snapshot_path = Path::new(DIR).join(SNAPSHOT_FILE_NAME);
        let found = madsim::fs::read(&snapshot_path).await.ok();
        let replacement = lock(&replicas)[id].replace_snapshot_with.take();
        if let Some(bytes) = replacement {
            let file = madsim::fs::File::create(&snapshot_path)
                .await
                .expect("create snapshot file");
            file.write_all_at(&bytes, 0).await.expect("write snapshot");
            file.sync_all().await.expect("sync snapshot");
        }
        let addrs = (0..SERVERS).map(node_addr).collect();
        let mut config = ServerConfig::new(id, addrs, madsim::rand::random());
        config.replica.max_raft_state = Some(1000);
        // Small log segments, so snapshots remove the log before them and a
        // rolled-back snapshot file leaves a gap that load detects.
        let storage = FileStorage::with_segment_size(DIR, 256);
        let result = KvServer::start(config, storage).await;
        let mut replicas = lock(&replicas);
        let replica = &mut replicas[id];
        replica.starts += 1;
        replica.snapshot_file_found = found;
        match result {
            Ok(server) => {
                replica.server = Some(server);
                replica.start_error = None;
            }
            Err(error) => {
                replica.server = None;
                replica.start_error = Some(error.to_string());
            }
        }
    }

    struct Group {
        net: Network,
        nodes: Vec<NodeId>,
        replicas: Replicas,
        client_node: NodeId,
        kv: Arc<RecordingKv<Clerk>>,
        recorder: Recorder<KvInput, KvOutput>,
        next_value: u64,
    }

    impl Group {
        async fn wait_starts(&self, id: usize, starts: u64) {
            for _ in 0..1000 {
                if lock(&self.replicas)[id].starts >= starts {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            panic!("replica {id} did not finish start {starts} within 1 s");
        }

        /// Kills replica `id` and starts it again from its files, first
        /// writing `snapshot_file` over its snapshot file if given.
        async fn restart(&self, id: usize, snapshot_file: Option<Vec<u8>>) {
            let starts = {
                let mut replicas = lock(&self.replicas);
                replicas[id].replace_snapshot_with = snapshot_file;
                replicas[id].server = None;
                replicas[id].starts
            };
            self.net.restart(self.nodes[id]).await;
            self.wait_starts(id, starts + 1).await;
        }

        fn raft_status(&self, id: usize) -> Option<raft::node::NodeStatus> {
            lock(&self.replicas)[id]
                .server
                .as_ref()
                .map(|server| server.raft().status())
        }

        /// `count` appends of fresh values to key "k", each followed by a
        /// get, from one client, recorded. Every one must succeed: a
        /// majority is always up.
        async fn load(&mut self, count: u64) {
            let first = self.next_value;
            self.next_value += count;
            let kv = Arc::clone(&self.kv);
            self.net
                .spawn(self.client_node, async move {
                    for value in first..first + count {
                        let value = format!("{value};");
                        let served = "expected the two healthy replicas to serve it";
                        kv.append("k", &value)
                            .await
                            .unwrap_or_else(|| panic!("append {value:?} to k timed out: {served}"));
                        kv.get("k")
                            .await
                            .unwrap_or_else(|| panic!("get k timed out: {served}"));
                    }
                })
                .await
                .expect("the client node is never killed");
        }
    }

    #[madsim::test]
    async fn corrupt_replica_refuses_to_serve() {
        within(
            "corrupt_replica_refuses_to_serve",
            Duration::from_secs(120),
            async {
                let net = Network::new();
                let replicas: Replicas = Arc::new(Mutex::new(
                    (0..SERVERS).map(|_| Replica::default()).collect(),
                ));
                let nodes: Vec<NodeId> = (0..SERVERS)
                    .map(|id| {
                        let replicas = Arc::clone(&replicas);
                        net.add_node(&format!("kv-{id}"), node_ip(id), move || {
                            start_replica(id, Arc::clone(&replicas))
                        })
                    })
                    .collect();
                let client_node = net.add_client_node("kv-client-0", client_ip(0));
                let clerk_config = ClerkConfig {
                    rpc_timeout: Duration::from_millis(500),
                    operation_deadline: Duration::from_secs(30),
                    ..ClerkConfig::default()
                };
                let clerk = Clerk::new((0..SERVERS).map(node_addr).collect(), clerk_config);
                let recorder = Recorder::new();
                let kv = RecordingKv::new(0, clerk, Some(recorder.clone()), labrpc::runtime::now());
                let mut group = Group {
                    net,
                    nodes,
                    replicas,
                    client_node,
                    kv: Arc::new(kv),
                    recorder,
                    next_value: 0,
                };
                for id in 0..SERVERS {
                    group.wait_starts(id, 1).await;
                }

                phase("1. load; the replicas snapshot (max_raft_state 1000)");
                group.load(40).await;
                phase("2. restart the victim cleanly; keep the snapshot file it had");
                group.restart(VICTIM, None).await;
                let old_snapshot_file = lock(&group.replicas)[VICTIM]
                    .snapshot_file_found
                    .clone()
                    .expect("the victim took a snapshot in phase 1");
                let old_snapshot_index = group
                    .raft_status(VICTIM)
                    .expect("the victim restarted from intact files")
                    .snapshot_index;
                assert!(old_snapshot_index > 0, "the victim restored a snapshot");

                phase("3. more load, until the victim's log is compacted well past that snapshot");
                group.load(60).await;
                for _ in 0..100 {
                    let status = group.raft_status(VICTIM).expect("victim running");
                    if status.snapshot_index > old_snapshot_index + 10 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let newer_index = group
                    .raft_status(VICTIM)
                    .expect("victim running")
                    .snapshot_index;
                assert!(
                    newer_index > old_snapshot_index + 10,
                    "expected the victim to snapshot past {} + 10, it is at {newer_index}",
                    old_snapshot_index
                );

                phase("4. crash it; roll its snapshot file back; it must refuse to start");
                group.restart(VICTIM, Some(old_snapshot_file)).await;
                let good_snapshot_file = {
                    let replicas = lock(&group.replicas);
                    let victim = &replicas[VICTIM];
                    assert!(
                        victim.server.is_none(),
                        "a replica whose snapshot and log disagree started (and could serve stale \
                     data)"
                    );
                    let error = victim.start_error.clone().unwrap_or_default();
                    assert!(
                        error.contains("raft-snapshot")
                            && error.contains("raft-log")
                            && error.contains("disagree"),
                        "expected an error naming both files, got {error:?}"
                    );
                    victim
                        .snapshot_file_found
                        .clone()
                        .expect("the victim's newer snapshot file")
                };

                phase("5. the other two keep serving");
                group.load(30).await;
                assert!(lock(&group.replicas)[VICTIM].server.is_none());

                phase("6. put its own snapshot file back: it starts and catches up");
                group.restart(VICTIM, Some(good_snapshot_file)).await;
                let error = lock(&group.replicas)[VICTIM].start_error.clone();
                assert_eq!(error, None, "the repaired replica starts");
                group.load(10).await;
                let leader_commit = (0..SERVERS)
                    .filter_map(|id| group.raft_status(id))
                    .map(|status| status.commit_index)
                    .max()
                    .unwrap_or(0);
                for _ in 0..100 {
                    let status = group.raft_status(VICTIM).expect("victim running");
                    if status.applied_index >= leader_commit {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let applied = group
                    .raft_status(VICTIM)
                    .expect("victim running")
                    .applied_index;
                assert!(
                    applied >= leader_commit,
                    "the repaired victim applied through {applied}, expected {leader_commit}"
                );

                phase("7. the whole history is linearizable");
                if let Err(problem) = check_history(
                    &group.recorder,
                    &KvModel::new(),
                    StepBudget::new(50_000_000),
                ) {
                    panic!("{problem}");
                }
            },
        )
        .await;
    }
}

/// Deterministic eviction: a group whose store holds at most 16 keys takes
/// puts to 48 keys from three clients; one replica is down for a while and
/// comes back through InstallSnapshot (max_raft_state 2000), and the load
/// goes on after it. Once every replica has applied the same log, all hold
/// exactly the same keys and values (eviction ran identically in every
/// replica's state machine, the restored one included), within the bound.
///
/// Linearizability with eviction: an evicted key reads as absent, which the
/// plain kv model rejects. The history is checked with
/// [`linearizability::KvModel::evicting`]: a get may always see a key absent (and it then stays
/// absent until the next put), but a value it sees must be the latest put's.
#[madsim::test]
async fn capacity_eviction_is_deterministic() {
    within("capacity_eviction_is_deterministic", TEST_LIMIT, async {
        let capacity_keys = 16;
        let key_count = 48;
        let mut machine = MachineConfig::default();
        machine.store.capacity_entries = Some(capacity_keys);
        let tester = Tester::with_config(TesterConfig {
            max_raft_state: Some(2000),
            machine,
            ..TesterConfig::new(3)
        });
        let keys: Vec<String> = (0..key_count).map(|key| format!("k{key}")).collect();
        let clients: Vec<_> = (0..3).map(|_| tester.make_client()).collect();
        let load = |round: u64| {
            let workers: Vec<_> = clients
                .iter()
                .enumerate()
                .map(|(client, test_client)| {
                    test_client.spawn(move |clerk| async move {
                        for op in 0..40u64 {
                            let key = format!("k{}", madsim::rand::random::<u64>() % key_count);
                            if madsim::rand::random::<bool>() {
                                let value = format!("{client}.{round}.{op}");
                                clerk.put(&key, &value).await.expect("put succeeds");
                            } else {
                                clerk.get(&key).await.expect("get succeeds");
                            }
                        }
                    })
                })
                .collect();
            async move {
                for worker in workers {
                    worker.await.expect("client task");
                }
            }
        };
        phase("load with every replica up");
        load(0).await;
        phase("replica 2 down; more load (the others evict and snapshot)");
        tester.kill_server(2);
        load(1).await;
        load(2).await;
        let leader_snapshot = (0..2)
            .filter_map(|id| tester.raft_status(id))
            .map(|status| status.snapshot_index)
            .min()
            .unwrap_or(0);
        phase("replica 2 back (catches up by InstallSnapshot); load goes on");
        tester.restart_server(2).await;
        load(3).await;

        phase("every replica applies the same log");
        let mut views = Vec::new();
        for _ in 0..200 {
            views = (0..3)
                .map(|id| tester.local_values(id, &keys))
                .collect::<Vec<_>>();
            let applied: Vec<_> = views
                .iter()
                .map(|view| view.as_ref().map(|v| v.0))
                .collect();
            if applied
                .iter()
                .all(|index| index.is_some() && *index == applied[0])
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let views: Vec<(u64, Vec<Option<String>>)> = views
            .into_iter()
            .map(|view| view.expect("every replica runs"))
            .collect();
        assert!(
            views.iter().all(|view| view.0 == views[0].0),
            "replicas did not converge to one applied index: {:?}",
            views.iter().map(|view| view.0).collect::<Vec<_>>()
        );
        let restored = tester.raft_status(2).expect("replica 2 runs");
        assert!(
            restored.snapshot_index >= leader_snapshot && leader_snapshot > 0,
            "replica 2 should hold a snapshot at least as new as the others' while it was \
             down ({leader_snapshot}); it has {}",
            restored.snapshot_index
        );
        for (id, view) in views.iter().enumerate().skip(1) {
            for (index, key) in keys.iter().enumerate() {
                assert_eq!(
                    view.1[index], views[0].1[index],
                    "replica {id} and replica 0 differ on {key} at applied index {}",
                    views[0].0
                );
            }
        }
        let present = views[0].1.iter().filter(|value| value.is_some()).count() as u64;
        println!(
            "capacity_eviction_is_deterministic: {present} of {key_count} keys present \
             (capacity {capacity_keys}) on every replica at index {}",
            views[0].0
        );
        assert!(
            present <= capacity_keys && present > 0,
            "{present} keys present, capacity {capacity_keys}"
        );
        for id in 0..3 {
            tester
                .machine_invariants(id)
                .expect("replica runs")
                .unwrap_or_else(|problem| panic!("replica {id}: {problem}"));
        }
        tester.check_raft_state_bounded();
        if let Err(problem) = tester.linearizability_with(&linearizability::KvModel::evicting()) {
            panic!("{problem}");
        }
    })
    .await;
}

/// The Redis-shaped operations (conditional set with the old value,
/// increment, get-and-delete, strlen, expire, persist, ttl) from four
/// clients on two shared keys, on an unreliable network, with the leader
/// cut off for a while: the whole history is linearizable under the `kv`
/// model (deadlines are an hour away, so none passes during the run).
#[madsim::test]
async fn redis_ops_unreliable_partition_linearizable() {
    use linearizability::SetIf;
    within(
        "redis_ops_unreliable_partition_linearizable",
        TEST_LIMIT,
        async {
            let tester = Tester::new(3, false, None);
            let clients: Vec<_> = (0..4).map(|_| tester.make_client()).collect();
            phase("4 clients x 40 operations on keys n (integers) and s (strings)");
            let workers: Vec<_> = clients
                .iter()
                .enumerate()
                .map(|(client, handle)| {
                    handle.spawn(move |clerk| async move {
                        for index in 0..40usize {
                            let value = format!("v{client}.{index}");
                            let done = match (client * 7 + index * 3) % 11 {
                                0 | 1 => clerk.incr("n", 1 + index as i64).await.is_some(),
                                2 => clerk.set("s", &value, SetIf::Always, true).await.is_some(),
                                3 => clerk.set("s", &value, SetIf::Absent, false).await.is_some(),
                                4 => clerk.set("s", &value, SetIf::Present, true).await.is_some(),
                                5 => clerk.get_del("s").await.is_some(),
                                6 => clerk.strlen("s").await.is_some(),
                                7 => clerk.expire("s").await.is_some(),
                                8 => clerk.ttl("s").await.is_some(),
                                9 => clerk.persist("s").await.is_some(),
                                // An increment of a string: refused, nothing changed.
                                _ => clerk.incr("s", 1).await.is_some(),
                            };
                            assert!(done, "client {client}: operation {index} gave up");
                        }
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(700)).await;
            phase("the leader alone in a minority");
            let leader = wait_leader(&tester).await;
            let others: Vec<usize> = (0..3).filter(|&id| id != leader).collect();
            let everyone: Vec<&sim_tests::kvraft::TestClient> = clients.iter().collect();
            tester.partition(&[(&[leader], &[]), (others.as_slice(), everyone.as_slice())]);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            phase("heal");
            tester.connect_all();
            for worker in workers {
                worker.await.expect("client task");
            }
            tester.check_linearizable();
        },
    )
    .await;
}
