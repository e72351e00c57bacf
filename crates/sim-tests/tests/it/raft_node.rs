//! The node driver in simulation (`RUSTFLAGS="--cfg madsim"`): three nodes
//! with file storage on madsim's per-node disk, a killed node restarting
//! from its files. The 6.5840 suite (`raft.rs`) runs the driver on
//! in-memory storage; this checks the file storage wiring beneath it.

#![cfg(madsim)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use labrpc::sim::Network;
use raft::node::{ApplyMsg, NodeConfig, RaftNode};
use raft::storage::FileStorage;
use sim_tests::harness::within;

/// TESTS.md: 120 s of simulated time per test.
const TEST_LIMIT: Duration = Duration::from_secs(120);

const SIZE: usize = 3;
const PORT: u16 = 7000;

fn addr(id: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8 + 1)), PORT)
}

/// What the test sees of each node: its handle and what it applied since
/// its last start.
#[derive(Default)]
struct Slot {
    node: Option<RaftNode>,
    applied: Vec<(u64, Vec<u8>)>,
    snapshots_installed: u64,
}

type Slots = Arc<Mutex<Vec<Slot>>>;

/// The node's init: open its files, start Raft and its server, record what
/// it applies. Runs again on every restart.
async fn start_node(id: usize, slots: Slots, snapshot_every: Option<u64>) {
    let addrs: Vec<SocketAddr> = (0..SIZE).map(addr).collect();
    let config = NodeConfig::new(id as u64, addrs, madsim::rand::random());
    let storage = FileStorage::new("/raft");
    let (node, mut apply) = RaftNode::make(config, storage, labrpc::Client::default())
        .await
        .expect("storage loads");
    let mut router = labrpc::Router::new();
    node.add_handlers(&mut router);
    labrpc::Server::start(addr(id), router, labrpc::ServerConfig::default())
        .await
        .expect("server starts");
    {
        let mut slots = slots.lock().unwrap();
        slots[id] = Slot {
            node: Some(node),
            ..Slot::default()
        };
    }
    // The service: its state is the list of one-byte commands applied; a
    // snapshot is that list.
    tokio::spawn(async move {
        while let Some(message) = apply.recv().await {
            let mut slots = slots.lock().unwrap();
            let slot = &mut slots[id];
            match message {
                ApplyMsg::Command { index, command, .. } => {
                    assert_eq!(
                        index,
                        slot.applied.len() as u64 + 1,
                        "node {id}: apply out of order"
                    );
                    slot.applied.push((index, command.to_vec()));
                    if snapshot_every.is_some_and(|every| index % every == 0) {
                        let data: Vec<u8> = slot.applied.iter().map(|(_, c)| c[0]).collect();
                        slot.node.as_ref().expect("started").snapshot(index, data);
                    }
                }
                ApplyMsg::Snapshot { index, data, .. } => {
                    assert_eq!(index, data.len() as u64, "node {id}: snapshot size");
                    slot.applied = data
                        .iter()
                        .enumerate()
                        .map(|(k, &c)| (k as u64 + 1, vec![c]))
                        .collect();
                    slot.snapshots_installed += 1;
                }
            }
        }
    });
}

fn node(slots: &Slots, id: usize) -> RaftNode {
    slots.lock().unwrap()[id]
        .node
        .clone()
        .expect("node started")
}

async fn wait_leader(slots: &Slots, excluded: Option<usize>) -> usize {
    for _ in 0..500 {
        let leaders: Vec<usize> = (0..SIZE)
            .filter(|&id| Some(id) != excluded && node(slots, id).state().1)
            .collect();
        if leaders.len() == 1 {
            return leaders[0];
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no single leader within 5 s of simulated time");
}

async fn wait_applied(slots: &Slots, id: usize, count: usize) -> Vec<(u64, Vec<u8>)> {
    for _ in 0..500 {
        let applied = slots.lock().unwrap()[id].applied.clone();
        if applied.len() >= count {
            return applied;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let applied = slots.lock().unwrap()[id].applied.len();
    panic!("node {id} applied {applied} commands, expected {count} within 5 s");
}

#[madsim::test]
async fn a_killed_node_restarts_from_its_files_and_catches_up() {
    within(
        "a killed node restarting from its files",
        TEST_LIMIT,
        async {
            let network = Network::new();
            let slots: Slots = Arc::new(Mutex::new((0..SIZE).map(|_| Slot::default()).collect()));
            let mut handles = Vec::new();
            for id in 0..SIZE {
                let slots = Arc::clone(&slots);
                let init = move || start_node(id, Arc::clone(&slots), None);
                handles.push(network.add_node(&format!("raft-{id}"), addr(id).ip(), init));
            }

            // Phase 1: a leader; five commands everywhere.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let leader = wait_leader(&slots, None).await;
            for i in 1..=5u8 {
                node(&slots, leader)
                    .start(vec![i])
                    .await
                    .expect("leader accepts");
            }
            let expected: Vec<(u64, Vec<u8>)> =
                (1..=5u8).map(|i| (u64::from(i), vec![i])).collect();
            for id in 0..SIZE {
                assert_eq!(wait_applied(&slots, id, 5).await, expected, "node {id}");
            }

            // Phase 2: a follower dies; five more commands commit without it.
            let follower = (leader + 1) % SIZE;
            let term_before = node(&slots, follower).state().0;
            network.kill(handles[follower]);
            for i in 6..=10u8 {
                node(&slots, leader)
                    .start(vec![i])
                    .await
                    .expect("leader accepts");
            }
            wait_applied(&slots, leader, 10).await;

            // Phase 3: it restarts from its files, cut off from the others: its
            // log comes from its own disk. The commit index is written only with
            // entries (a change of it alone waits for the next write, as the
            // commit index is volatile state), so what it applies while cut off is
            // a prefix of the five, possibly empty, and never anything else.
            network.disconnect(handles[follower]);
            network.kill(handles[follower]);
            // Forget what the old incarnation applied; the new one reports afresh.
            slots.lock().unwrap()[follower] = Slot::default();
            network.restart(handles[follower]).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let status = node(&slots, follower).status();
            assert!(
                status.last_log_index >= 5,
                "the five entries were on its disk: {status:?}"
            );
            let first_five: Vec<(u64, Vec<u8>)> =
                (1..=5u8).map(|i| (u64::from(i), vec![i])).collect();
            let applied = slots.lock().unwrap()[follower].applied.clone();
            assert!(
                first_five.starts_with(&applied),
                "cut off, it applied {applied:?}: not a prefix of what was committed"
            );
            assert!(
                node(&slots, follower).state().0 >= term_before,
                "the term survived the restart"
            );

            // Phase 4: reconnected, it catches up on what it missed.
            network.connect(handles[follower]);
            let expected: Vec<(u64, Vec<u8>)> =
                (1..=10u8).map(|i| (u64::from(i), vec![i])).collect();
            assert_eq!(wait_applied(&slots, follower, 10).await, expected);
        },
    )
    .await;
}

#[madsim::test]
async fn a_lagging_follower_catches_up_through_a_snapshot() {
    within("a lagging follower catching up", TEST_LIMIT, async {
        let network = Network::new();
        let slots: Slots = Arc::new(Mutex::new((0..SIZE).map(|_| Slot::default()).collect()));
        let mut handles = Vec::new();
        for id in 0..SIZE {
            let slots = Arc::clone(&slots);
            let init = move || start_node(id, Arc::clone(&slots), Some(5));
            handles.push(network.add_node(&format!("raft-{id}"), addr(id).ip(), init));
        }

        // Phase 1: a leader; a follower is cut off.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let leader = wait_leader(&slots, None).await;
        let follower = (leader + 1) % SIZE;
        network.disconnect(handles[follower]);

        // Phase 2: 23 commands commit without it; the others snapshot every 5,
        // so the entries it lacks are compacted away.
        for i in 1..=23u8 {
            node(&slots, leader)
                .start(vec![i])
                .await
                .expect("leader accepts");
        }
        wait_applied(&slots, leader, 23).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let status = node(&slots, leader).status();
        assert_eq!(status.snapshot_index, 20, "the leader compacted through 20");
        assert!(
            status.raft_state_size_bytes < 2000,
            "log stays small: {status:?}"
        );

        // Phase 3: reconnected, it receives the snapshot, then the rest.
        network.connect(handles[follower]);
        let expected: Vec<(u64, Vec<u8>)> = (1..=23u8).map(|i| (u64::from(i), vec![i])).collect();
        assert_eq!(wait_applied(&slots, follower, 23).await, expected);
        assert_eq!(slots.lock().unwrap()[follower].snapshots_installed, 1);
    })
    .await;
}
