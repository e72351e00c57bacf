//! What the driver benchmarks (`driver_throughput`, `vs_openraft`) share:
//! a group of three [`RaftNode`]s in one process (requests delivered in
//! memory by [`LocalNetwork`], logs in [`MemoryStorage`], every node's
//! service snapshotting every [`SNAPSHOT_EVERY`] entries), one closed-loop
//! proposal, and the measurement helpers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft::node::{ApplyMsg, LocalNetwork, NodeConfig, RaftNode};
use raft::storage::MemoryStorage;
use tokio::sync::{mpsc, oneshot};

pub const GROUP_SIZE: usize = 3;
pub const COMMAND_SIZE_BYTES: usize = 16;
/// Each node's service snapshots when its applied index is a multiple of
/// this, so the logs stay bounded as a real service's would.
pub const SNAPSHOT_EVERY: u64 = 10_000;

/// Proposers waiting for their index to be applied on the leader.
#[derive(Default)]
pub struct Waiters {
    applied_index: u64,
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
}

pub struct Group {
    pub nodes: Vec<RaftNode>,
    pub leader: usize,
    pub waiters: Vec<Arc<Mutex<Waiters>>>,
}

/// What became of one proposal.
pub enum Proposal {
    /// Committed and applied on the leader.
    Applied,
    /// Refused (too many uncommitted entries, or not the leader): retry.
    Refused,
    /// The node stopped.
    Stopped,
}

/// A node's service: applies in order, wakes proposers, snapshots.
async fn apply_loop(
    node: RaftNode,
    mut applies: mpsc::Receiver<ApplyMsg>,
    waiters: Arc<Mutex<Waiters>>,
) {
    let mut count: u64 = 0;
    while let Some(message) = applies.recv().await {
        let index = match message {
            ApplyMsg::Command { index, command, .. } => {
                assert_eq!(command.len(), COMMAND_SIZE_BYTES, "bench commands only");
                count += 1;
                index
            }
            ApplyMsg::Snapshot { index, data, .. } => {
                count = u64::from_le_bytes(data[..].try_into().expect("8-byte snapshot"));
                index
            }
        };
        {
            let mut waiters = waiters.lock().unwrap();
            waiters.applied_index = index;
            while let Some(entry) = waiters.waiting.first_entry() {
                if *entry.key() > index {
                    break;
                }
                let _ = entry.remove().send(());
            }
        }
        if index % SNAPSHOT_EVERY == 0 {
            node.snapshot(index, count.to_le_bytes().to_vec());
        }
    }
}

/// Starts the group and waits (at most 10 s) for node 0 to lead.
pub async fn start_group() -> Group {
    let network = LocalNetwork::new();
    // Unused by the local network, but NodeConfig numbers peers by them.
    let addrs = vec!["127.0.0.1:1".parse().unwrap(); GROUP_SIZE];
    let mut nodes = Vec::new();
    let mut waiters = Vec::new();
    for id in 0..GROUP_SIZE {
        let mut config = NodeConfig::new(id as u64, addrs.clone(), id as u64);
        // Node 0 campaigns first and wins; the others wait for it.
        if id == 0 {
            config.core.election_timeout_ticks_min = 11;
            config.core.election_timeout_ticks_max = 12;
        }
        let (node, applies) =
            RaftNode::make_with_transport(config, MemoryStorage::new(), Arc::new(network.clone()))
                .await
                .expect("memory storage loads");
        network.register(id as u64, node.clone());
        let node_waiters = Arc::new(Mutex::new(Waiters::default()));
        tokio::spawn(apply_loop(node.clone(), applies, Arc::clone(&node_waiters)));
        nodes.push(node);
        waiters.push(node_waiters);
    }
    let started = Instant::now();
    let leader = loop {
        if let Some(leader) = nodes.iter().position(|n| n.state().1) {
            break leader;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no leader within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    Group {
        nodes,
        leader,
        waiters,
    }
}

/// Proposes `command` on `node` and waits until `waiters` (the node's
/// service) has applied its index.
pub async fn propose_and_wait(
    node: &RaftNode,
    waiters: &Mutex<Waiters>,
    command: Vec<u8>,
) -> Proposal {
    let Some((index, _)) = node.start(command).await else {
        return Proposal::Refused;
    };
    let applied = {
        let mut waiters = waiters.lock().unwrap();
        if waiters.applied_index >= index {
            None
        } else {
            let (sender, receiver) = oneshot::channel();
            waiters.waiting.insert(index, sender);
            Some(receiver)
        }
    };
    match applied {
        Some(applied) => match applied.await {
            Ok(()) => Proposal::Applied,
            Err(_) => Proposal::Stopped,
        },
        None => Proposal::Applied,
    }
}

/// CPU time this process has used (all threads), from /proc, so a run
/// on a machine other work is loading can be judged by commits per
/// CPU-second as well as per second. None where /proc is missing.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime), in clock ticks of
    // 1/100 s, counted after the command name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The `fraction` percentile of `sorted` (ascending); zero when empty.
pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * fraction) as usize]
}
