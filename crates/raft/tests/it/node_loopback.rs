//! The node driver end to end, with in-memory storage: election, agreement,
//! reads, leader failure, kill; over real labrpc (gRPC on loopback), and
//! over the in-process `LocalNetwork` transport the driver benchmark uses.
//! (The simulated suites live in sim-tests.)

#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::core::{MembershipChange, MembershipError, Message};
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
    start_local_group_with_bootstrap(size, size).await
}

/// `size` nodes on one [`LocalNetwork`], of which the first `voters` are
/// the bootstrap group; the others start outside it.
async fn start_local_group_with_bootstrap(size: usize, voters: usize) -> Group {
    let network = LocalNetwork::new();
    // Only their number matters to NodeConfig here.
    let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1".parse().unwrap(); size];
    let mut nodes = Vec::new();
    let mut applied = Vec::new();
    for id in 0..size {
        let mut config = NodeConfig::new(id as u64, addrs.clone(), 2000 + id as u64);
        config.core.peers = (0..voters as u64).collect();
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
                return (index, command.to_vec());
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

/// Retries `change` at `leader` while it is refused for a transient
/// reason (an entry of the term not committed yet, a change in flight, a
/// learner still catching up); at most 5 s.
async fn change_membership(group: &Group, leader: usize, change: MembershipChange) -> u64 {
    for _ in 0..500 {
        match group.nodes[leader].propose_membership_change(change).await {
            Ok((index, _)) => return index,
            Err(
                MembershipError::LeaderNotReady { .. }
                | MembershipError::ChangeInProgress { .. }
                | MembershipError::LearnerBehind { .. },
            ) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(error) => panic!("{change:?} refused: {error}"),
        }
    }
    panic!("{change:?} not accepted within 5 s");
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 5 s: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_as_a_learner_is_promoted_the_leader_leaves_and_hands_over() {
    // Nodes 0-2 are the group; node 3 starts outside it.
    let mut group = start_local_group_with_bootstrap(4, 3).await;
    let leader = group.wait_leader(&[]).await;
    let (first, _) = group.nodes[leader].start(vec![1]).await.expect("accepted");
    assert_eq!(group.next_command(leader).await, (first, vec![1]));
    assert!(!group.nodes[3].status().is_voter);

    // Node 3 joins as a learner and receives the log.
    change_membership(&group, leader, MembershipChange::AddLearner(3)).await;
    assert_eq!(group.next_command(3).await, (first, vec![1]));
    assert!(!group.nodes[3].status().is_voter, "a learner does not vote");

    // Promoted once caught up.
    change_membership(&group, leader, MembershipChange::PromoteLearner(3)).await;
    wait_until("node 3 votes", || group.nodes[3].status().is_voter).await;

    // The leader removes itself: it steps down once that commits, and the
    // others (node 3 among them) go on without it.
    let removal = change_membership(&group, leader, MembershipChange::Remove(leader as u64)).await;
    wait_until("the removed leader steps down", || {
        !group.nodes[leader].state().1 && group.nodes[leader].status().commit_index >= removal
    })
    .await;
    let new_leader = group.wait_leader(&[leader]).await;
    assert_ne!(new_leader, leader);
    let (index, _) = group.nodes[new_leader]
        .start(vec![2])
        .await
        .expect("accepted");
    assert_eq!(group.next_command(3).await, (index, vec![2]));
    assert!(!group.nodes[leader].status().is_voter);

    // Leadership transfer to another voter.
    let target = (0..4).find(|&n| n != leader && n != new_leader).unwrap();
    assert!(matches!(
        group.nodes[new_leader].transfer_leader(leader as u64).await,
        Err(raft::core::TransferError::NotAVoter { .. })
    ));
    group.nodes[new_leader]
        .transfer_leader(target as u64)
        .await
        .expect("transfer starts");
    wait_until("the target leads", || group.nodes[target].state().1).await;
    for node in &group.nodes {
        node.kill();
    }
}
