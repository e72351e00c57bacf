//! The rsm end to end in production mode (real tokio, gRPC on loopback):
//! proposals, ReadIndex reads, refusals on followers and on a leader cut
//! off from its majority, snapshots and restart. The simulated kvraft
//! suite (sim-tests) covers faults at scale.

#![cfg(not(madsim))]

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use raft::storage::{FileStorage, MemoryStorage, Storage};
use rsm::{ApplyContext, ReplicatedMachine, Rsm, RsmConfig, SubmitError};
use serde::{Deserialize, Serialize};

/// A sum of what was added, and how many additions: enough to see every
/// command applied once and in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Adder {
    total: u64,
    additions: u64,
    /// The log time of the last addition.
    last_now_ms: u64,
}

impl ReplicatedMachine for Adder {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, amount: &u64, context: &ApplyContext) -> u64 {
        assert!(context.now_ms >= self.last_now_ms, "log time went back");
        self.total += amount;
        self.additions += 1;
        self.last_now_ms = context.now_ms;
        self.total
    }

    fn check_invariants(&self) -> Result<(), String> {
        if self.total < self.additions {
            // Every addition in these tests adds at least 1.
            return Err(format!(
                "{} additions sum to {}",
                self.additions, self.total
            ));
        }
        Ok(())
    }
}

/// Loopback addresses with free ports (bound, then released).
fn free_addrs(count: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("local address"))
        .collect()
}

/// Starts one replica and its labrpc server (Raft's method only).
async fn start_replica<S: Storage + 'static>(
    id: usize,
    addrs: &[SocketAddr],
    storage: S,
    max_raft_state: Option<u64>,
) -> (Rsm<Adder>, labrpc::Server) {
    let config = RsmConfig {
        max_raft_state,
        ..RsmConfig::new(id, addrs.to_vec(), 7 + id as u64)
    };
    let rsm = Rsm::start(config, Adder::default(), storage)
        .await
        .expect("storage loads");
    let mut router = labrpc::Router::new();
    rsm.raft().add_handlers(&mut router);
    let server = labrpc::Server::start(addrs[id], router, labrpc::ServerConfig::default())
        .await
        .expect("server starts");
    (rsm, server)
}

async fn start_group(size: usize) -> (Vec<Rsm<Adder>>, Vec<labrpc::Server>) {
    let addrs = free_addrs(size);
    let mut replicas = Vec::new();
    let mut servers = Vec::new();
    for id in 0..size {
        let (rsm, server) = start_replica(id, &addrs, MemoryStorage::new(), None).await;
        replicas.push(rsm);
        servers.push(server);
    }
    (replicas, servers)
}

/// The one replica that leads, waiting at most 5 s.
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

/// Waits (at most 5 s) until `replica` has applied `additions` commands.
async fn wait_applied(replica: &Rsm<Adder>, additions: u64) -> Adder {
    for _ in 0..500 {
        let machine = replica.with_machine(Adder::clone);
        if machine.additions >= additions {
            return machine;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "replica applied {:?} within 5 s, expected {additions} additions",
        replica.with_machine(Adder::clone)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_apply_everywhere_and_reads_see_them_on_the_leader_only() {
    let (replicas, _servers) = start_group(3).await;
    let leader = wait_leader(&replicas).await;
    let follower = (leader + 1) % 3;

    // Phase 0: a read before any command: its read index is the new
    // leader's no-op, which Raft never hands to the machine.
    assert_eq!(replicas[leader].read(|adder, _| adder.total).await, Ok(0));

    // Phase 1: proposals on the leader answer with their own output.
    assert_eq!(replicas[leader].submit(5).await, Ok(5));
    assert_eq!(replicas[leader].submit(7).await, Ok(12));

    // Phase 2: a follower refuses and names the leader (once it has heard
    // from it).
    for _ in 0..500 {
        if replicas[follower].raft().status().leader_id == Some(leader as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        replicas[follower].submit(1).await,
        Err(SubmitError::WrongLeader {
            leader_hint: Some(leader as u64)
        })
    );
    assert!(matches!(
        replicas[follower].read(|adder, _| adder.total).await,
        Err(SubmitError::WrongLeader { .. })
    ));

    // Phase 3: a ReadIndex read on the leader sees every completed write,
    // at a log time no earlier than the last entry's, and changes nothing.
    let (total, context) = replicas[leader]
        .read(|adder, context| (adder.total, *context))
        .await
        .expect("the leader serves reads");
    assert_eq!(total, 12);
    let machine = replicas[leader].with_machine(Adder::clone);
    assert!(context.now_ms >= machine.last_now_ms);
    assert_eq!(machine.additions, 2, "a read added an entry's effect");

    // Phase 4: every replica applies the same commands.
    for replica in &replicas {
        let machine = wait_applied(replica, 2).await;
        assert_eq!(machine.total, 12);
    }
    // Many concurrent proposals: each gets a distinct running total.
    let proposals: Vec<_> = (0..50)
        .map(|_| {
            let rsm = replicas[leader].clone();
            tokio::spawn(async move { rsm.submit(1).await })
        })
        .collect();
    let mut totals = Vec::new();
    for proposal in proposals {
        totals.push(proposal.await.expect("task").expect("applied"));
    }
    totals.sort_unstable();
    assert_eq!(totals, (13..63).collect::<Vec<u64>>());
    assert_eq!(replicas[leader].status().pending_proposals, 0);
    // Many concurrent reads (they share heartbeat rounds) all see 62.
    let reads: Vec<_> = (0..50)
        .map(|_| {
            let rsm = replicas[leader].clone();
            tokio::spawn(async move { rsm.read(|adder, _| adder.total).await })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.expect("task"), Ok(62));
    }
    for replica in &replicas {
        replica.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_majority_serves_no_read() {
    let (replicas, _servers) = start_group(3).await;
    let leader = wait_leader(&replicas).await;
    assert_eq!(replicas[leader].submit(3).await, Ok(3));
    // The two others stop (their servers answer nothing for Raft).
    for (id, replica) in replicas.iter().enumerate() {
        if id != leader {
            replica.kill();
        }
    }
    // Whatever it believes, the old leader cannot confirm its lead: a read
    // (which could be stale) and a write both fail.
    let read = replicas[leader].read(|adder, _| adder.total).await;
    assert!(
        matches!(
            read,
            Err(SubmitError::Timeout | SubmitError::WrongLeader { .. })
        ),
        "a leader without a majority answered a read: {read:?}"
    );
    let write = replicas[leader].submit(1).await;
    assert!(
        write.is_err(),
        "a write without a majority applied: {write:?}"
    );
    replicas[leader].kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarts_from_its_snapshot_and_log() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let addrs = free_addrs(1);
    let (rsm, server) = start_replica(0, &addrs, FileStorage::new(dir.path()), Some(400)).await;
    wait_leader(std::slice::from_ref(&rsm)).await;
    for amount in 1..=60 {
        rsm.submit(amount).await.expect("a single replica leads");
    }
    let before = rsm.status();
    assert!(
        before.last_snapshot_index > 0,
        "no snapshot at max_raft_state = 400: {before:?}"
    );
    assert!(
        before.raft.raft_state_size_bytes <= 8 * 400,
        "raft state not compacted: {before:?}"
    );
    let machine = rsm.with_machine(Adder::clone);
    assert_eq!((machine.total, machine.additions), (1830, 60));
    rsm.kill();
    server.shutdown().await.expect("server stops");

    // Restart from the same files: snapshot first, then the log after it.
    let (restarted, _server) =
        start_replica(0, &addrs, FileStorage::new(dir.path()), Some(400)).await;
    wait_leader(std::slice::from_ref(&restarted)).await;
    assert_eq!(wait_applied(&restarted, 60).await, machine);
    assert!(restarted.status().log_time_ms >= before.log_time_ms);
    assert_eq!(restarted.submit(1).await, Ok(1831));
    restarted.kill();
}
