//! A disk that fails (ENOSPC) under a running node: the node acknowledges
//! nothing that was not made durable, stops for good, hands its owner the
//! typed reason and runs the fatal hook (a server binary's exits the
//! process). A write that never ran because the runtime is shutting down
//! is no disk failure: the node stops, acknowledges nothing, and neither
//! records a fatal error nor runs the hook.

#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use raft::core::PersistentState;
use raft::node::{ApplyMsg, FatalHook, FatalReason, LocalNetwork, NodeConfig, RaftNode};
use raft::storage::{MemoryStorage, Storage, StorageError, StorageWrite};

/// Memory storage whose saves fail once `full` is set: with ENOSPC, or
/// (`shutting_down`) as a file call cancelled by the runtime's shutdown.
struct FillingDisk {
    inner: MemoryStorage,
    full: Arc<AtomicBool>,
    shutting_down: bool,
}

impl Storage for FillingDisk {
    async fn load(&mut self) -> Result<PersistentState, StorageError> {
        self.inner.load().await
    }

    async fn save(&mut self, write: StorageWrite<'_>) -> Result<(), StorageError> {
        if self.full.load(Ordering::SeqCst) && self.shutting_down {
            return Err(StorageError::ShuttingDown {
                path: "/data/raft-snapshot".into(),
            });
        }
        if self.full.load(Ordering::SeqCst) {
            return Err(StorageError::Io {
                path: "/data/raft-log-00000000000000000001".into(),
                source: std::io::Error::from_raw_os_error(28),
            });
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

async fn wait_for<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A one-node group on a [`FillingDisk`] (which fails as `shutting_down`
/// says once the returned flag is set), its fatal hook `on_fatal`, once
/// it has elected itself.
async fn elected_node(
    shutting_down: bool,
    on_fatal: FatalHook,
) -> (
    RaftNode,
    tokio::sync::mpsc::Receiver<ApplyMsg>,
    Arc<AtomicBool>,
) {
    let full = Arc::new(AtomicBool::new(false));
    let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1".parse().unwrap()];
    let mut config = NodeConfig::new(0, addrs, 7);
    config.on_fatal = Some(on_fatal);
    let storage = FillingDisk {
        inner: MemoryStorage::new(),
        full: Arc::clone(&full),
        shutting_down,
    };
    let (node, applied) =
        RaftNode::make_with_transport(config, storage, Arc::new(LocalNetwork::new()))
            .await
            .unwrap();
    wait_for("the election", async {
        while !node.state().1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    (node, applied, full)
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_disk_stops_the_node_acknowledges_nothing_and_reaches_the_owner_and_the_hook() {
    // Phase 1: a one-node group elects itself and commits a command.
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&hook_calls);
    let hook = FatalHook::new(move |fatal| {
        assert!(fatal.to_string().contains("os error 28"), "{fatal}");
        calls.fetch_add(1, Ordering::SeqCst);
    });
    let (node, mut applied, full) = elected_node(false, hook).await;
    let (index, _) = node.start(b"durable".to_vec()).await.expect("leader");
    wait_for("the first command", async {
        loop {
            match applied.recv().await {
                Some(ApplyMsg::Command { index: i, .. }) if i == index => break,
                Some(_) => {}
                None => panic!("apply channel closed"),
            }
        }
    })
    .await;
    assert!(node.fatal_error().is_none());

    // Phase 2: the disk fills; the next command cannot be made durable.
    full.store(true, Ordering::SeqCst);
    let lost = node.start(b"not durable".to_vec()).await;
    let fatal = wait_for("the fatal error", node.wait_fatal()).await;
    println!("fatal: {fatal}");
    assert_eq!(fatal.node, 0);
    assert!(
        matches!(&fatal.reason, FatalReason::Storage(error)
            if matches!(&**error, StorageError::Io { source, .. } if source.raw_os_error() == Some(28))),
        "{fatal}"
    );
    assert_eq!(hook_calls.load(Ordering::SeqCst), 1, "the hook ran once");
    assert!(node.is_killed());

    // Phase 3: nothing after the failure was acknowledged or applied.
    let after_failure = wait_for("the apply channel to close", applied.recv()).await;
    assert_eq!(
        after_failure, None,
        "applied after the disk failed (proposal {lost:?})"
    );
    assert_eq!(node.start(b"after".to_vec()).await, None);
    assert_eq!(node.read_index().await, None);
    assert!(node.fatal_error().is_some());
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_cancelled_by_the_runtime_shutting_down_stops_the_node_without_a_fatal_error() {
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&hook_calls);
    let hook = FatalHook::new(move |_| {
        calls.fetch_add(1, Ordering::SeqCst);
    });
    let (node, mut applied, full) = elected_node(true, hook).await;

    full.store(true, Ordering::SeqCst);
    let never_written = node.start(b"never written".to_vec()).await;
    wait_for("the node to stop", async {
        while !node.is_killed() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    loop {
        match wait_for("the apply channel to close", applied.recv()).await {
            Some(ApplyMsg::Command { command, .. }) => assert_ne!(
                command,
                b"never written".to_vec(),
                "applied a command that was never written ({never_written:?})"
            ),
            Some(_) => {}
            None => break,
        }
    }
    assert!(node.fatal_error().is_none(), "{:?}", node.fatal_error());
    assert_eq!(hook_calls.load(Ordering::SeqCst), 0, "the fatal hook ran");
    assert_eq!(node.start(b"after".to_vec()).await, None);
}
