//! The node driver end to end, with in-memory storage: election, agreement,
//! reads, leader failure, kill; over real labrpc (gRPC on loopback), and
//! over the in-process `LocalNetwork` transport the driver benchmark uses.
//! (The simulated suites live in sim-tests.)

#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::core::Message;
use raft::node::{ApplyMsg, LocalNetwork, NodeConfig, RaftNode};
use raft::storage::MemoryStorage;
use tokio::sync::mpsc;

struct Group {
    nodes: Vec<RaftNode>,
    applied: Vec<mpsc::Receiver<ApplyMsg>>,
    servers: Vec<labrpc::Server>,
}

/// Starts `size` nodes, each behind its own labrpc server on loopback.
async fn start_group(size: usize) -> Group {
    // Servers first (their ports are needed by every node), with a handler
    // that forwards to the node once it exists.
    let mut servers = Vec::new();
    let mut slots: Vec<Arc<Mutex<Option<RaftNode>>>> = Vec::new();
    for _ in 0..size {
        let slot: Arc<Mutex<Option<RaftNode>>> = Arc::new(Mutex::new(None));
        let mut router = labrpc::Router::new();
        let handler_slot = Arc::clone(&slot);
        router.add::<Message, _, _>(move |message: Message| {
            let node = handler_slot.lock().unwrap().clone();
            async move {
                match node {
                    Some(node) => node.handle_message(message).await,
                    None => None,
                }
            }
        });
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = labrpc::Server::start(addr, router, labrpc::ServerConfig::default())
            .await
            .expect("server starts");
        servers.push(server);
        slots.push(slot);
    }
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.local_addr()).collect();
    let mut nodes = Vec::new();
    let mut applied = Vec::new();
    for (id, slot) in slots.iter().enumerate() {
        let config = NodeConfig::new(id as u64, addrs.clone(), 1000 + id as u64);
        let (node, apply) = RaftNode::make(config, MemoryStorage::new(), labrpc::Client::default())
            .await
            .unwrap();
        *slot.lock().unwrap() = Some(node.clone());
        nodes.push(node);
        applied.push(apply);
    }
    Group {
        nodes,
        applied,
        servers,
    }
}

/// Starts `size` nodes that reach each other through one [`LocalNetwork`].
async fn start_local_group(size: usize) -> Group {
    let network = LocalNetwork::new();
    // Only their number matters to NodeConfig here.
    let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1".parse().unwrap(); size];
    let mut nodes = Vec::new();
    let mut applied = Vec::new();
    for id in 0..size {
        let config = NodeConfig::new(id as u64, addrs.clone(), 2000 + id as u64);
        let (node, apply) =
            RaftNode::make_with_transport(config, MemoryStorage::new(), Arc::new(network.clone()))
                .await
                .unwrap();
        network.register(id as u64, node.clone());
        nodes.push(node);
        applied.push(apply);
    }
    Group {
        nodes,
        applied,
        servers: Vec::new(),
    }
}

impl Group {
    /// Waits (at most 5 s) for exactly one live leader; returns it.
    async fn wait_leader(&self, excluded: &[usize]) -> usize {
        for _ in 0..500 {
            let leaders: Vec<usize> = (0..self.nodes.len())
                .filter(|i| !excluded.contains(i) && self.nodes[*i].state().1)
                .collect();
            if leaders.len() == 1 {
                return leaders[0];
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no single leader within 5 s");
    }

    /// Receives the next command applied by `node` (at most 5 s).
    async fn next_command(&mut self, node: usize) -> (u64, Vec<u8>) {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.applied[node].recv())
                .await
                .unwrap_or_else(|_| panic!("node {node} applied nothing within 5 s"))
                .expect("apply channel open");
            if let ApplyMsg::Command { index, command, .. } = message {
                return (index, command);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_agree_and_survive_a_leader_kill() {
    elect_agree_and_survive_a_leader_kill(start_group(3).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_over_the_in_process_transport() {
    elect_agree_and_survive_a_leader_kill(start_local_group(3).await).await;
}

async fn elect_agree_and_survive_a_leader_kill(mut group: Group) {
    // Phase 1: a leader emerges.
    let leader = group.wait_leader(&[]).await;

    // Phase 2: ten commands commit on every node, in order.
    for i in 1..=10u64 {
        let position = group.nodes[leader].start(vec![i as u8]).await;
        assert_eq!(
            position.map(|(index, _)| index),
            Some(i),
            "command {i} accepted at index {i}"
        );
    }
    for node in 0..3 {
        for i in 1..=10u64 {
            assert_eq!(
                group.next_command(node).await,
                (i, vec![i as u8]),
                "node {node}"
            );
        }
    }
    let read_index = group.nodes[leader]
        .read_index()
        .await
        .expect("the leader confirms a read");
    assert!(
        read_index >= 10,
        "a read sees every acknowledged write: read index {read_index}"
    );
    let follower = (leader + 1) % 3;
    assert_eq!(
        group.nodes[follower].read_index().await,
        None,
        "followers refuse reads"
    );
    assert_eq!(
        group.nodes[follower].start(vec![0]).await,
        None,
        "followers refuse"
    );

    // Phase 3: the leader dies; the other two elect a new one and commit.
    group.nodes[leader].kill();
    assert_eq!(group.nodes[leader].start(vec![0]).await, None);
    let new_leader = group.wait_leader(&[leader]).await;
    assert_ne!(new_leader, leader);
    let (index, _) = group.nodes[new_leader]
        .start(vec![99])
        .await
        .expect("accepted");
    for node in (0..3).filter(|&n| n != leader) {
        assert_eq!(
            group.next_command(node).await,
            (index, vec![99]),
            "node {node}"
        );
    }

    // Phase 4: kill everything.
    for node in &group.nodes {
        node.kill();
    }
    for server in group.servers.drain(..) {
        let _ = server.shutdown().await;
    }
}
