//! A snapshot the service takes is written off the Raft loop: while its
//! file is still being written, the node goes on committing; once written,
//! it is installed; a node stopped before that restarts from the old
//! snapshot and the whole log, losing nothing.
//!
//! The disk here is a real `FileStorage` whose snapshot writes wait at a
//! gate the test opens. The gate holds a snapshot in `save` too, so a
//! driver that wrote snapshots in line (as it did before) would stop
//! committing, and the first test would fail.

#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use labrpc::runtime::watch;
use raft::core::{PersistentState, Snapshot, SnapshotMeta};
use raft::node::{ApplyMsg, Durable, LocalNetwork, NodeConfig, Observer, RaftNode};
use raft::storage::{
    FileStorage, STAGED_SNAPSHOT_FILE_PREFIX, StagedSnapshotWrite, Storage, StorageError,
    StorageWrite,
};

/// A `FileStorage` whose snapshot writes (staged or saved whole) wait
/// until the gate is open.
struct GatedSnapshots {
    inner: FileStorage,
    gate: watch::Receiver<bool>,
}

async fn pass(mut gate: watch::Receiver<bool>) {
    // The sender lives as long as the test: an error cannot come first.
    let _ = gate.wait_for(|open| *open).await;
}

impl Storage for GatedSnapshots {
    async fn load(&mut self) -> Result<PersistentState, StorageError> {
        self.inner.load().await
    }

    async fn save(&mut self, write: StorageWrite<'_>) -> Result<(), StorageError> {
        if write.snapshot.is_some() {
            pass(self.gate.clone()).await;
        }
        self.inner.save(write).await
    }

    fn stage_snapshot(&mut self, snapshot: Snapshot) -> Result<StagedSnapshotWrite, Snapshot> {
        let write = self.inner.stage_snapshot(snapshot)?;
        let gate = self.gate.clone();
        Ok(Box::pin(async move {
            pass(gate).await;
            write.await
        }))
    }

    async fn install_staged_snapshot(&mut self, meta: &SnapshotMeta) -> Result<(), StorageError> {
        self.inner.install_staged_snapshot(meta).await
    }

    fn raft_state_size_bytes(&self) -> u64 {
        self.inner.raft_state_size_bytes()
    }

    fn snapshot_size_bytes(&self) -> u64 {
        self.inner.snapshot_size_bytes()
    }
}

async fn wait_for<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A one-node group on a gated `FileStorage` in `dir`, elected, with
/// `commands` commands committed and applied. The observer records in
/// `stored_snapshot` the index of the last snapshot it was told is durable.
async fn node_with_commands(
    dir: &Path,
    gate: watch::Receiver<bool>,
    commands: u64,
    stored_snapshot: Arc<AtomicU64>,
) -> (RaftNode, tokio::sync::mpsc::Receiver<ApplyMsg>) {
    let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1".parse().unwrap()];
    let storage = GatedSnapshots {
        inner: FileStorage::new(dir),
        gate,
    };
    let mut config = NodeConfig::new(0, addrs, 7);
    config.observer = Some(Observer::new(move |observation| {
        if let Durable::Saved {
            snapshot: Some(snapshot),
            ..
        } = observation.durable
        {
            stored_snapshot.store(snapshot.meta.last_included_index, Ordering::SeqCst);
        }
    }));
    let (node, mut applied) =
        RaftNode::make_with_transport(config, storage, Arc::new(LocalNetwork::new()))
            .await
            .unwrap();
    wait_for("the election", async {
        while !node.state().1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    for n in 0..commands {
        commit(&node, &mut applied, n).await;
    }
    (node, applied)
}

/// Proposes command `n` and waits until it is applied; returns its index.
async fn commit(
    node: &RaftNode,
    applied: &mut tokio::sync::mpsc::Receiver<ApplyMsg>,
    n: u64,
) -> u64 {
    let (index, _) = node.start(n.to_le_bytes().to_vec()).await.expect("leader");
    wait_for("the command's apply", async {
        loop {
            match applied.recv().await {
                Some(ApplyMsg::Command { index: i, .. }) if i == index => return index,
                Some(_) => {}
                None => panic!("apply channel closed"),
            }
        }
    })
    .await
}

/// The names of the staged snapshot files in `dir`.
fn staged_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
        .filter(|name| name.starts_with(STAGED_SNAPSHOT_FILE_PREFIX))
        .collect()
}

async fn reload(dir: &Path) -> PersistentState {
    // The stopped node's storage lets go of the directory's lock once its
    // last file call is done.
    FileStorage::new(dir)
        .with_lock_wait(Duration::from_secs(10))
        .load()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_commits_while_its_snapshot_is_written_then_installs_it() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, gate_receiver) = watch::channel(false);
    let stored = Arc::new(AtomicU64::new(0));
    let (node, mut applied) =
        node_with_commands(dir.path(), gate_receiver, 10, Arc::clone(&stored)).await;
    let snapshot_index = node.status().applied_index;
    let size_before = node.status().raft_state_size_bytes;

    node.snapshot(snapshot_index, vec![7; 100_000]);
    wait_for("the core's compaction", async {
        while node.status().snapshot_index < snapshot_index {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // Staged, not installed: the service sees the log as compacted (it
    // would otherwise take the same snapshot again on every apply) but the
    // stored snapshot is still none.
    let status = node.status();
    assert!(
        status.raft_state_size_bytes < size_before,
        "{} >= {size_before}",
        status.raft_state_size_bytes
    );
    assert_eq!(status.snapshot_size_bytes, 0, "installed before written");

    // The gate is shut: the snapshot is not written, yet commands commit.
    let mut last = 0;
    for n in 100..120 {
        last = commit(&node, &mut applied, n).await;
    }
    assert_eq!(node.status().snapshot_size_bytes, 0);
    assert_eq!(stored.load(Ordering::SeqCst), 0, "observed as stored");

    gate.send_replace(true);
    wait_for("the snapshot's install", async {
        while node.status().snapshot_size_bytes == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(node.status().snapshot_size_bytes, 100_000);
    assert_eq!(stored.load(Ordering::SeqCst), snapshot_index);
    assert_eq!(staged_files(dir.path()), Vec::<String>::new());
    let after = commit(&node, &mut applied, 200).await;
    assert_eq!(after, last + 1);

    node.kill();
    let state = reload(dir.path()).await;
    let snapshot = state.snapshot.expect("the installed snapshot");
    assert_eq!(snapshot.meta.last_included_index, snapshot_index);
    assert_eq!(snapshot.data, vec![7; 100_000]);
    assert_eq!(
        state.entries.first().map(|e| e.index),
        Some(snapshot_index + 1)
    );
    assert_eq!(state.entries.last().map(|e| e.index), Some(after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_before_its_snapshot_is_written_restarts_from_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let (_gate, gate_receiver) = watch::channel(false);
    let stored = Arc::new(AtomicU64::new(0));
    let (node, mut applied) =
        node_with_commands(dir.path(), gate_receiver, 10, Arc::clone(&stored)).await;
    let snapshot_index = node.status().applied_index;
    node.snapshot(snapshot_index, vec![7; 1000]);
    wait_for("the core's compaction", async {
        while node.status().snapshot_index < snapshot_index {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let last = commit(&node, &mut applied, 100).await;

    node.kill();
    let state = reload(dir.path()).await;
    assert!(
        state.snapshot.is_none(),
        "a snapshot never written was loaded"
    );
    assert_eq!(stored.load(Ordering::SeqCst), 0, "observed as stored");
    assert_eq!(state.entries.first().map(|e| e.index), Some(1));
    assert_eq!(state.entries.last().map(|e| e.index), Some(last));
    assert!(state.hard_state.commit_index >= snapshot_index);
}
