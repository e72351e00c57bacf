//! Follower reads (`Rsm::read_anywhere`, `Rsm::read_within`) on three
//! replicas over real labrpc on loopback, in memory: a follower answers
//! with every write acknowledged before its read; its asks follow a
//! leadership transfer while reads keep arriving (each round asks the
//! leader known then); a leader cut off from its majority grants no read
//! index; an ask naming another group or another replica is refused; a
//! killed follower answers nobody; a bounded read reuses a grant only
//! while its ask is within the bound.

#![cfg(not(madsim))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use raft::storage::MemoryStorage;
use rsm::{ApplyContext, AskReadIndex, ReplicatedMachine, Rsm, RsmConfig, SubmitError};
use serde::{Deserialize, Serialize};
use testkit::ports::free_addrs;

/// A machine that sums what it is given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Adder {
    total: u64,
}

impl ReplicatedMachine for Adder {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, amount: &u64, _: &ApplyContext) -> u64 {
        self.total += amount;
        self.total
    }

    fn check_invariants(&self) -> Result<(), String> {
        Ok(())
    }
}

const GROUP_TAG: u64 = 7;

/// Three replicas at `addrs`, each serving its labrpc server (kept
/// alongside: dropped, they would serve on anyway).
async fn start_group(
    addrs: &[std::net::SocketAddr],
    lease_reads: bool,
) -> (Vec<Rsm<Adder>>, Vec<labrpc::Server>) {
    let mut replicas = Vec::new();
    let mut servers = Vec::new();
    for id in 0..addrs.len() {
        let config = RsmConfig {
            lease_reads,
            group_tag: GROUP_TAG,
            ..RsmConfig::new(id, addrs.to_vec(), 7 + id as u64)
        };
        let rsm = Rsm::start(config, Adder::default(), MemoryStorage::new())
            .await
            .expect("storage loads");
        servers.push(rsm.serve(|_| {}).await.expect("serves"));
        replicas.push(rsm);
    }
    (replicas, servers)
}

async fn wait_leader(replicas: &[Rsm<Adder>]) -> usize {
    for _ in 0..500 {
        let leaders: Vec<usize> = (0..replicas.len())
            .filter(|&id| replicas[id].raft().state().1)
            .collect();
        if let [leader] = leaders[..] {
            return leader;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no single leader within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reads_every_acknowledged_write_and_follows_a_new_leader() {
    let (replicas, _servers) = start_group(&free_addrs(3), true).await;
    let leader = wait_leader(&replicas).await;
    let follower = (leader + 1) % 3;
    let target = (leader + 2) % 3;
    for round in 1..=20 {
        assert_eq!(replicas[leader].submit(1).await, Ok(round));
        let read = replicas[follower]
            .read_anywhere(|adder, _| adder.total)
            .await;
        assert_eq!(read, Ok(round), "a follower read right after write {round}");
    }
    assert!(replicas[follower].follower_reads() >= 20);

    // Sixteen readers keep the follower's asks busy across a transfer.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let rsm = replicas[follower].clone();
            let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if rsm.read_anywhere(|adder, _| adder.total).await.is_ok() {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    replicas[leader]
        .transfer_leader(target as u64)
        .await
        .expect("the transfer starts");
    for _ in 0..500 {
        if replicas[follower].raft().status().leader_id == Some(target as u64)
            && replicas[target].raft().state().1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(replicas[target].raft().state().1, "the transfer happened");
    assert_eq!(replicas[target].submit(1).await, Ok(21));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = answered.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = answered.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.expect("reader");
    }
    assert!(
        after > before,
        "no follower read answered in the second after the follower knew its new leader"
    );
    assert_eq!(
        replicas[follower]
            .read_anywhere(|adder, _| adder.total)
            .await,
        Ok(21)
    );

    // A killed follower answers nobody, whatever it has applied.
    replicas[follower].kill();
    assert!(matches!(
        replicas[follower]
            .read_anywhere(|adder, _| adder.total)
            .await,
        Err(SubmitError::WrongLeader { .. })
    ));
    for replica in &replicas {
        replica.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_confirmed_leader_of_the_group_asked_grants_a_read_index() {
    let addrs = free_addrs(3);
    // Without leases, so the grant needs a heartbeat round now.
    let (replicas, _servers) = start_group(&addrs, false).await;
    let leader = wait_leader(&replicas).await;
    assert_eq!(replicas[leader].submit(3).await, Ok(3));
    let client = labrpc::Client::new(labrpc::ClientConfig::default());
    let ask = |group: u64, to: usize| AskReadIndex {
        group,
        to: to as u64,
    };
    let grant = client
        .call_with_timeout(
            addrs[leader],
            &ask(GROUP_TAG, leader),
            Duration::from_secs(2),
        )
        .await;
    assert!(matches!(grant, Ok(Ok(_))), "the leader grants: {grant:?}");
    for (group, to, what) in [
        (GROUP_TAG + 1, leader, "another group's ask"),
        (
            GROUP_TAG,
            (leader + 1) % 3,
            "an ask meant for another replica",
        ),
    ] {
        let refused = client
            .call_with_timeout(addrs[leader], &ask(group, to), Duration::from_secs(2))
            .await;
        assert!(
            matches!(refused, Ok(Err(SubmitError::WrongLeader { .. }))),
            "{what} is refused: {refused:?}"
        );
    }

    // Its followers gone, the leader still believes it leads but can
    // confirm nothing: no grant.
    for (id, replica) in replicas.iter().enumerate() {
        if id != leader {
            replica.kill();
        }
    }
    assert!(
        replicas[leader].raft().state().1,
        "it still believes it leads"
    );
    let grant = client
        .call_with_timeout(
            addrs[leader],
            &ask(GROUP_TAG, leader),
            Duration::from_secs(2),
        )
        .await;
    assert!(
        !matches!(grant, Ok(Ok(_))),
        "a leader without a majority granted a read index: {grant:?}"
    );
    replicas[leader].kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_read_reuses_a_grant_only_while_it_is_fresh() {
    let (replicas, _servers) = start_group(&free_addrs(3), true).await;
    let leader = wait_leader(&replicas).await;
    assert_eq!(replicas[leader].submit(3).await, Ok(3));
    let follower = (leader + 1) % 3;
    let read = |bound: Duration| replicas[follower].read_within(bound, |adder, _| adder.total);

    assert_eq!(read(Duration::from_secs(30)).await, Ok(3), "it asks");
    assert_eq!(replicas[follower].reused_grants(), 0);
    assert_eq!(read(Duration::from_secs(30)).await, Ok(3));
    assert_eq!(
        replicas[follower].reused_grants(),
        1,
        "the second read reuses the first one's grant"
    );
    assert_eq!(replicas[leader].submit(4).await, Ok(7));
    assert_eq!(
        read(Duration::ZERO).await,
        Ok(7),
        "a zero bound asks again and sees the acknowledged write"
    );
    assert_eq!(replicas[follower].reused_grants(), 1);

    // Cut off for good (the other two killed): within the bound it still
    // answers from what it holds, and not past it.
    for (id, replica) in replicas.iter().enumerate() {
        if id != follower {
            replica.kill();
        }
    }
    assert_eq!(read(Duration::from_secs(30)).await, Ok(7));
    assert_eq!(replicas[follower].reused_grants(), 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stale = read(Duration::from_millis(100)).await;
    assert!(
        stale.is_err(),
        "a grant asked for over 200 ms ago served a read bounded at 100 ms: {stale:?}"
    );
    assert!(read(Duration::ZERO).await.is_err());
    assert_eq!(replicas[follower].reused_grants(), 2);
    replicas[follower].kill();
}
