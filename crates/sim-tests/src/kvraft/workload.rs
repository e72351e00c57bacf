//! The 6.5840 Lab 4 generic test: clients appending and reading while the
//! network partitions and servers crash, in rounds; then the checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{ELECTION_TIMEOUT, Tester};
use crate::harness::{phase, within};

/// One generic test's scenario (the lab's `GenericTest` arguments).
#[derive(Clone, Copy, Debug)]
pub struct GenericTest {
    pub clients: usize,
    pub servers: usize,
    pub reliable: bool,
    pub crash: bool,
    pub partitions: bool,
    pub max_raft_state: Option<u64>,
    /// Clients pick any key (else each client its own key).
    pub random_keys: bool,
    /// Rounds of load (the lab: 3).
    pub rounds: usize,
    /// Load per round in simulated time (the lab: 5 s).
    pub round_duration: Duration,
}

impl GenericTest {
    pub fn new(clients: usize, servers: usize) -> GenericTest {
        GenericTest {
            clients,
            servers,
            reliable: true,
            crash: false,
            partitions: false,
            max_raft_state: None,
            random_keys: false,
            rounds: 3,
            round_duration: Duration::from_secs(3),
        }
    }
}

/// Runs the scenario, then checks Raft state bounds and linearizability of
/// every operation of every client (TESTS.md: "unknown" fails).
pub async fn generic_test(scenario: GenericTest) {
    within("generic kvraft test", Duration::from_secs(120), async {
        run_generic(scenario).await;
    })
    .await;
}

async fn run_generic(scenario: GenericTest) {
    let tester = Tester::new(scenario.servers, scenario.reliable, scenario.max_raft_state);
    let clients: Vec<_> = (0..scenario.clients)
        .map(|_| tester.make_client())
        .collect();
    let mut appended_all_rounds = 0;
    for round in 0..scenario.rounds {
        phase(&format!(
            "round {round}: {} clients under load",
            clients.len()
        ));
        let done = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(index, client)| {
                let done = Arc::clone(&done);
                let random_keys = scenario.random_keys;
                let key_count = scenario.clients;
                client.spawn(move |clerk| async move {
                    let own_key = index.to_string();
                    clerk.put(&own_key, "").await;
                    let mut appended = 0u64;
                    // Bounded: a round lasts a few seconds, each op takes
                    // at least a round trip.
                    for _ in 0..100_000 {
                        if done.load(Ordering::Relaxed) {
                            break;
                        }
                        let key = if random_keys {
                            (madsim::rand::random::<u64>() % key_count as u64).to_string()
                        } else {
                            own_key.clone()
                        };
                        if madsim::rand::random::<bool>() {
                            let value = format!("x {index} {round} {appended} y");
                            clerk.append(&key, &value).await;
                            appended += 1;
                        } else {
                            clerk.get(&key).await;
                        }
                    }
                    appended
                })
            })
            .collect();
        let partitioner = scenario.partitions.then(|| {
            let done = Arc::clone(&done);
            let net = tester.net().clone();
            let nodes: Vec<_> = (0..tester.servers())
                .map(|id| tester.server_node(id))
                .collect();
            tokio::spawn(async move {
                for _ in 0..10_000 {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let (left, right): (Vec<_>, Vec<_>) = nodes
                        .iter()
                        .copied()
                        .partition(|_| madsim::rand::random::<bool>());
                    net.partition(&[&left, &right]);
                    let pause_ms = 100 + madsim::rand::random::<u64>() % 200;
                    tokio::time::sleep(ELECTION_TIMEOUT + Duration::from_millis(pause_ms)).await;
                }
            })
        });
        tokio::time::sleep(scenario.round_duration).await;
        done.store(true, Ordering::Relaxed);
        if let Some(partitioner) = partitioner {
            partitioner.await.expect("partitioner task");
        }
        tester.connect_all();
        tokio::time::sleep(ELECTION_TIMEOUT).await;
        if scenario.crash {
            tester.crash_and_restart_all().await;
        }
        phase(&format!("round {round}: waiting for clients to finish"));
        let mut appended_total = 0;
        for worker in workers {
            appended_total += worker.await.expect("client task");
        }
        // Not asserted per round (the lab only warns): under random
        // partitions on an unreliable network about 1 round in 100 makes no
        // progress. Traced (seeds 1795303242952536087, ..099): the majority
        // side is often a bare majority, so a candidate needs the pre-vote
        // and the vote of every other member; with 10% loss each way an
        // attempt (2 rounds x 2 peers x request and reply) succeeds about
        // 0.9^8 ~ 43% of the time, a lost
        // reply is never re-sent within the round, and each retry costs a
        // new 300-600 ms election timeout, while the partitioner reshuffles
        // every 1.1-1.3 s. Raft liveness, not the clerk: clients finish
        // within tens of ms of a leader appearing.
        println!("round {round}: {appended_total} appends");
        appended_all_rounds += appended_total;
        tester.check_raft_state_bounded();
    }
    assert!(
        appended_all_rounds >= scenario.clients as u64,
        "only {appended_all_rounds} appends completed by {} clients in {} rounds",
        scenario.clients,
        scenario.rounds
    );
    phase("check the whole history");
    tester.check_linearizable();
}
