//! A snapshot is held in memory only until it is stored: then the node
//! drops its copy, and a follower that fell behind the log gets the
//! snapshot in pieces read back from the snapshot file. A follower that
//! installed it that way restarts from its own file; a leader restarted
//! from its file sends from it again.
//!
//! Three nodes on real `FileStorage`s in temporary directories, over the
//! in-process `LocalNetwork`; node 2 starts only once the other two have
//! compacted their logs, so a snapshot is the only way it can catch up.

#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use raft::node::{ApplyMsg, LocalNetwork, NodeConfig, NodeStatus, RaftNode};
use raft::storage::FileStorage;
use tokio::sync::mpsc;

const NODES: usize = 3;
/// Small pieces, so a transfer takes several reads of the file.
const SNAPSHOT_CHUNK_BYTES: usize = 1000;

/// The service's state, as this test's service snapshots it: large
/// enough for several pieces, and different at each index.
fn service_state(index: u64) -> Vec<u8> {
    (0..10_000u64)
        .map(|position| (position.wrapping_mul(31) ^ index) as u8)
        .collect()
}

struct Cluster {
    network: LocalNetwork,
    dirs: Vec<PathBuf>,
    nodes: Vec<Option<RaftNode>>,
    applied: Vec<Option<mpsc::Receiver<ApplyMsg>>>,
}

impl Cluster {
    fn new(root: &Path) -> Cluster {
        Cluster {
            network: LocalNetwork::new(),
            dirs: (0..NODES)
                .map(|id| root.join(format!("node-{id}")))
                .collect(),
            nodes: (0..NODES).map(|_| None).collect(),
            applied: (0..NODES).map(|_| None).collect(),
        }
    }

    /// Starts (or restarts) node `id` from its directory.
    async fn start(&mut self, id: usize) {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1".parse().unwrap(); NODES];
        let mut config = NodeConfig::new(id as u64, addrs, 4000 + id as u64);
        config.core.snapshot_chunk_bytes = SNAPSHOT_CHUNK_BYTES;
        let storage = FileStorage::new(&self.dirs[id]);
        let (node, applied) =
            RaftNode::make_with_transport(config, storage, Arc::new(self.network.clone()))
                .await
                .unwrap_or_else(|error| panic!("node {id} starts: {error}"));
        self.network.register(id as u64, node.clone());
        self.nodes[id] = Some(node);
        self.applied[id] = Some(applied);
    }

    fn kill(&mut self, id: usize) {
        if let Some(node) = self.nodes[id].take() {
            node.kill();
        }
        self.applied[id] = None;
    }

    fn node(&self, id: usize) -> &RaftNode {
        self.nodes[id]
            .as_ref()
            .unwrap_or_else(|| panic!("node {id} is not running"))
    }

    fn status(&self, id: usize) -> NodeStatus {
        self.node(id).status()
    }

    /// The running leader among `among` (waits at most 10 s).
    async fn wait_leader(&self, among: &[usize]) -> usize {
        wait_until("a leader", || {
            among
                .iter()
                .any(|&id| self.nodes[id].as_ref().is_some_and(|n| n.state().1))
        })
        .await;
        *among
            .iter()
            .find(|&&id| self.nodes[id].as_ref().is_some_and(|n| n.state().1))
            .expect("a leader was just seen")
    }

    /// Proposes `command` at `leader` and waits until each of `nodes`
    /// applied it; returns its index.
    async fn commit(&mut self, leader: usize, command: u64, nodes: &[usize]) -> u64 {
        let (index, _) = self
            .node(leader)
            .start(command.to_le_bytes().to_vec())
            .await
            .unwrap_or_else(|| panic!("node {leader} refused command {command}"));
        for &id in nodes {
            self.wait_applied(id, index).await;
        }
        index
    }

    /// Receives `id`'s applies up to `index`; returns the snapshots among
    /// them as (index, data).
    async fn wait_applied(&mut self, id: usize, index: u64) -> Vec<(u64, Vec<u8>)> {
        let mut snapshots = Vec::new();
        let applied = self.applied[id].as_mut().expect("node running");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let message = tokio::time::timeout_at(deadline, applied.recv())
                .await
                .unwrap_or_else(|_| panic!("node {id} did not apply index {index} within 10 s"))
                .unwrap_or_else(|| panic!("node {id}'s apply channel closed"));
            let reached = match message {
                ApplyMsg::Command { index: at, .. } => at,
                ApplyMsg::Snapshot {
                    index: at, data, ..
                } => {
                    snapshots.push((at, data.to_vec()));
                    at
                }
            };
            if reached >= index {
                return snapshots;
            }
        }
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out after 10 s waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_gets_the_snapshot_from_the_leaders_file_and_restarts_from_its_own() {
    let root = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(root.path());

    // Phase 1: nodes 0 and 1 elect a leader and commit ten commands.
    cluster.start(0).await;
    cluster.start(1).await;
    let leader = cluster.wait_leader(&[0, 1]).await;
    let mut last = 0;
    for command in 0..10 {
        last = cluster.commit(leader, command, &[0, 1]).await;
    }

    // Phase 2: both snapshot at the last index; once stored, neither holds
    // the bytes in memory.
    wait_until("both nodes' cores applied the ten commands", || {
        [0, 1]
            .iter()
            .all(|&id| cluster.status(id).applied_index >= last)
    })
    .await;
    let snapshot = service_state(last);
    for id in [0, 1] {
        cluster.node(id).snapshot(last, snapshot.clone());
    }
    wait_until("both snapshots stored and released", || {
        [0, 1].iter().all(|&id| {
            let status = cluster.status(id);
            status.snapshot_index == last
                && status.snapshot_size_bytes == snapshot.len() as u64
                && status.snapshot_held_bytes == 0
        })
    })
    .await;
    let after_snapshot = cluster.commit(leader, 10, &[0, 1]).await;

    // Phase 3: node 2 starts empty; the log it lacks is compacted, so it
    // gets the snapshot, in pieces read from the leader's file.
    cluster.start(2).await;
    let snapshots = cluster.wait_applied(2, after_snapshot).await;
    assert_eq!(
        snapshots,
        vec![(last, snapshot.clone())],
        "node 2 installs exactly the snapshot the service took"
    );
    let leader_status = cluster.status(leader);
    assert!(
        leader_status.storage.snapshot_read_bytes >= snapshot.len() as u64,
        "the leader read the snapshot back from its file: {} bytes read, {} in the snapshot",
        leader_status.storage.snapshot_read_bytes,
        snapshot.len()
    );
    assert_eq!(
        leader_status.snapshot_held_bytes, 0,
        "the leader never took the bytes back into memory"
    );
    wait_until(
        "node 2 stored and released the snapshot it received",
        || {
            let status = cluster.status(2);
            status.snapshot_index == last && status.snapshot_held_bytes == 0
        },
    )
    .await;

    // Phase 4: node 2 restarts from its directory: the snapshot comes
    // from its own file, and it goes on applying.
    cluster.kill(2);
    cluster.start(2).await;
    let restart_snapshots = cluster.wait_applied(2, last).await;
    assert_eq!(
        restart_snapshots,
        vec![(last, snapshot.clone())],
        "node 2 restarts from the snapshot it stored"
    );
    assert_eq!(cluster.status(2).snapshot_held_bytes, 0);
    let next = cluster.commit(leader, 11, &[0, 1, 2]).await;

    // Phase 5: node 2 stops; the others go on and snapshot again, then
    // the leader restarts (its snapshot loaded from its file, not held).
    // Node 2 comes back behind the new snapshot and gets it from the file
    // of whichever node leads.
    cluster.kill(2);
    for command in 12..20 {
        last = cluster.commit(leader, command, &[0, 1]).await;
    }
    wait_until(
        "both nodes' cores applied through the second snapshot",
        || {
            [0, 1]
                .iter()
                .all(|&id| cluster.status(id).applied_index >= last)
        },
    )
    .await;
    let second = service_state(last);
    for id in [0, 1] {
        cluster.node(id).snapshot(last, second.clone());
    }
    wait_until("both second snapshots stored and released", || {
        [0, 1].iter().all(|&id| {
            let status = cluster.status(id);
            status.snapshot_index == last && status.snapshot_held_bytes == 0
        })
    })
    .await;
    assert!(last > next);
    cluster.kill(leader);
    cluster.start(leader).await;
    assert_eq!(
        cluster.status(leader).snapshot_held_bytes,
        0,
        "a restarted node does not hold the snapshot it loaded"
    );
    let leader = cluster.wait_leader(&[0, 1]).await;
    let read_before = cluster.status(leader).storage.snapshot_read_bytes;
    cluster.start(2).await;
    let after_second = cluster.commit(leader, 20, &[0, 1]).await;
    let snapshots = cluster.wait_applied(2, after_second).await;
    assert_eq!(
        snapshots.last(),
        Some(&(last, second.clone())),
        "node 2 catches up through the second snapshot"
    );
    let read_bytes = cluster.status(leader).storage.snapshot_read_bytes - read_before;
    assert!(
        read_bytes >= second.len() as u64,
        "node {leader} sent the second snapshot from its file: {read_bytes} bytes read"
    );

    for id in 0..NODES {
        cluster.kill(id);
    }
}
