//! Reads under a leader lease answered beside the loop
//! (`RaftNode::lease_read_index`), with real time: they see the commit
//! index, do not wait for a disk write under way, stop when the lease
//! ends, never hold past a new leader's election (a cut-off leader, a
//! leadership transfer), and stop with a killed node. The lease's safety under clock drift is
//! `cluster_lease.rs`'s, with cores.

#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::core::{Message, PersistentState};
use raft::node::{ApplyMsg, LocalNetwork, NodeConfig, RaftNode, ReplyFuture, Transport};
use raft::storage::{MemoryStorage, Storage, StorageError, StorageWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A [`LocalNetwork`] that can cut one node off both ways.
#[derive(Clone, Default)]
struct CuttableNetwork {
    network: LocalNetwork,
    cut: Arc<Mutex<Option<u64>>>,
}

impl CuttableNetwork {
    fn cut_off(&self, node: usize) {
        *self.cut.lock().unwrap() = Some(node as u64);
    }
}

impl Transport for CuttableNetwork {
    fn call(&self, request: Message) -> ReplyFuture {
        let cut = *self.cut.lock().unwrap();
        if cut.is_some_and(|node| node == request.from || node == request.to) {
            return Box::pin(async { None });
        }
        self.network.call(request)
    }
}

/// Memory storage whose saves wait while `stalled` is set (a slow disk).
struct StallingDisk {
    inner: MemoryStorage,
    stalled: Arc<AtomicBool>,
}

impl Storage for StallingDisk {
    async fn load(&mut self) -> Result<PersistentState, StorageError> {
        self.inner.load().await
    }

    async fn save(&mut self, write: StorageWrite<'_>) -> Result<(), StorageError> {
        while self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.inner.save(write).await
    }

    fn raft_state_size_bytes(&self) -> u64 {
        self.inner.raft_state_size_bytes()
    }

    fn snapshot_size_bytes(&self) -> u64 {
        self.inner.snapshot_size_bytes()
    }
}

struct Group {
    nodes: Vec<RaftNode>,
    /// Each node's disk stalls while its flag is set.
    stalls: Vec<Arc<AtomicBool>>,
    network: CuttableNetwork,
    read_lease: Duration,
    /// Kept open: a node whose service dropped its receiver stops applying.
    _applied: Vec<mpsc::Receiver<ApplyMsg>>,
}

async fn start_group_with_leases() -> Group {
    let network = CuttableNetwork::default();
    let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1".parse().unwrap(); 3];
    let mut nodes = Vec::new();
    let mut applied = Vec::new();
    let mut stalls = Vec::new();
    let mut read_lease = Duration::ZERO;
    for id in 0..3u64 {
        let mut config = NodeConfig::new(id, addrs.clone(), 3000 + id);
        config.core.lease_reads = true;
        read_lease = Duration::from_millis(config.core.read_lease_ms());
        let stalled = Arc::new(AtomicBool::new(false));
        let storage = StallingDisk {
            inner: MemoryStorage::new(),
            stalled: Arc::clone(&stalled),
        };
        let (node, apply) =
            RaftNode::make_with_transport(config, storage, Arc::new(network.clone()))
                .await
                .unwrap();
        network.network.register(id, node.clone());
        nodes.push(node);
        applied.push(apply);
        stalls.push(stalled);
    }
    Group {
        nodes,
        stalls,
        network,
        read_lease,
        _applied: applied,
    }
}

impl Group {
    /// The live leader other than `excluded`, if exactly one.
    fn leader_except(&self, excluded: Option<usize>) -> Option<usize> {
        let leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| Some(i) != excluded && self.nodes[i].state().1)
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    async fn wait_leader_except(&self, excluded: Option<usize>) -> usize {
        let deadline = labrpc::runtime::now() + Duration::from_secs(5);
        loop {
            if let Some(leader) = self.leader_except(excluded) {
                return leader;
            }
            assert!(
                labrpc::runtime::now() < deadline,
                "no single leader within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Once a leader is elected and has committed a write, waits for its
    /// lease; returns the leader and the write's index.
    async fn leader_with_lease(&self) -> (usize, u64) {
        let leader = self.wait_leader_except(None).await;
        let (index, _) = self.nodes[leader]
            .start(b"written".to_vec())
            .await
            .expect("the leader accepts");
        self.wait_lease_read(leader, index).await;
        (leader, index)
    }

    /// Waits until `node`'s lease answers a read index at or past `index`.
    /// A lease starts with a ReadIndex round (the core's).
    async fn wait_lease_read(&self, node: usize, index: u64) -> u64 {
        let deadline = labrpc::runtime::now() + Duration::from_secs(5);
        loop {
            if let Some(read) = self.nodes[node].lease_read_index()
                && read >= index
            {
                return read;
            }
            self.nodes[node].read_index().await;
            assert!(
                labrpc::runtime::now() < deadline,
                "node {node} answered no lease read at {index} within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Polls until `successor` (or any node but `old`) leads, checking at
    /// every turn, after looking for the new leader, that `old` answers
    /// no lease read once one is elected; returns when the lease stopped
    /// answering, measured from `since`.
    async fn lease_ends_before_a_new_leader(
        &self,
        old: usize,
        since: Instant,
    ) -> (usize, Duration) {
        let deadline = labrpc::runtime::now() + Duration::from_secs(5);
        let mut lease_ended = None;
        loop {
            let successor = self.leader_except(Some(old));
            let read = self.nodes[old].lease_read_index();
            if read.is_none() && lease_ended.is_none() {
                lease_ended = Some(since.elapsed());
            }
            if let Some(successor) = successor {
                assert_eq!(
                    read, None,
                    "node {old} answered a read under its lease after node {successor} was elected"
                );
                let ended = lease_ended.expect("the lease ended before this turn");
                return (successor, ended);
            }
            assert!(
                labrpc::runtime::now() < deadline,
                "no new leader within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_leader_answers_lease_reads_until_its_lease_ends_and_not_after() {
    let group = start_group_with_leases().await;
    let (leader, index) = group.leader_with_lease().await;
    let read = group.wait_lease_read(leader, index).await;
    assert_eq!(
        group.nodes[leader].read_index().await,
        Some(read),
        "read_index answers from the lease too"
    );
    let served = group.nodes[leader].status().lease_reads;
    for _ in 0..10 {
        assert!(group.nodes[leader].lease_read_index().is_some());
    }
    assert!(
        group.nodes[leader].status().lease_reads >= served + 10,
        "the status counts the reads answered beside the loop"
    );

    // Heartbeats renew the lease: with no read for three leases, it holds
    // (without renewal it lapses a lease in, two thirds of the spell; a
    // heartbeat answered late on a loaded machine may lapse it briefly).
    let quiet = labrpc::runtime::now();
    let (mut polls, mut lapsed) = (0u32, 0u32);
    while quiet.elapsed() < 3 * group.read_lease {
        polls += 1;
        if group.nodes[leader].lease_read_index().is_none() {
            lapsed += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        lapsed * 10 <= polls,
        "the lease lapsed at {lapsed} of {polls} polls in a quiet spell"
    );

    let cut = labrpc::runtime::now();
    group.network.cut_off(leader);
    let (successor, lease_lasted) = group.lease_ends_before_a_new_leader(leader, cut).await;
    assert_ne!(successor, leader);
    // The last confirmation came before the cut (the slack is for this
    // task's own turns on a loaded machine).
    let slack = Duration::from_millis(500);
    assert!(
        lease_lasted <= group.read_lease + slack,
        "the lease held {lease_lasted:?} after the cut; it lasts {:?}",
        group.read_lease
    );
    assert_eq!(group.nodes[leader].lease_read_index(), None);
    assert_eq!(group.nodes[leader].read_index().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_ends_the_lease_before_the_target_leads_and_a_killed_leader_answers_nothing() {
    let group = start_group_with_leases().await;
    let (leader, _) = group.leader_with_lease().await;

    let target = (leader + 1) % 3;
    let asked = labrpc::runtime::now();
    group.nodes[leader]
        .transfer_leader(target as u64)
        .await
        .expect("the transfer starts");
    let (successor, _) = group.lease_ends_before_a_new_leader(leader, asked).await;
    assert_eq!(successor, target);

    // The new leader's own lease (once an entry of its term commits),
    // then a kill: nothing more from it.
    let (index, _) = group.nodes[target]
        .start(b"written again".to_vec())
        .await
        .expect("the new leader accepts");
    group.wait_lease_read(target, index).await;
    group.nodes[target].kill();
    assert_eq!(group.nodes[target].lease_read_index(), None);
    assert_eq!(group.nodes[target].read_index().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_read_does_not_wait_for_a_disk_write_under_way() {
    let group = start_group_with_leases().await;
    let (leader, mut written) = group.leader_with_lease().await;
    // The stalled loop renews no lease: an attempt whose lease ran out
    // first (a heartbeat answered late on a loaded machine) is tried
    // again; a read that waits for the write fails every attempt.
    for attempt in 1..=3 {
        group.wait_lease_read(leader, written).await;
        // The leader's disk stalls; a newer write's round waits on it.
        group.stalls[leader].store(true, Ordering::SeqCst);
        let (unwritten, _) = group.nodes[leader]
            .start(format!("write {attempt}").into_bytes())
            .await
            .expect("the leader accepts");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let read =
            tokio::time::timeout(Duration::from_millis(100), group.nodes[leader].read_index())
                .await;
        group.stalls[leader].store(false, Ordering::SeqCst);
        if let Ok(read) = read {
            let read = read.expect("the lease holds");
            assert!(
                (written..unwritten).contains(&read),
                "the read index {read} covers the written entry ({written}), \
                 not the unwritten one ({unwritten})"
            );
            group.wait_lease_read(leader, unwritten).await;
            return;
        }
        written = unwritten;
    }
    panic!("a read under the lease waited for the disk write in three attempts");
}
