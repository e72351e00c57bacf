//! What the core benchmarks share: a 3-node group driven in one thread,
//! messages passed in memory, in-memory storage, node 0 the leader.

use std::collections::VecDeque;

use raft::core::{Config, Message, RawNode};
use raft::storage::{MemoryStorage, StorageWrite};

const GROUP_SIZE: u64 = 3;

pub struct Group {
    pub nodes: Vec<RawNode>,
    storages: Vec<MemoryStorage>,
    queue: VecDeque<Message>,
    /// Commands applied at the leader, per round.
    pub applied_at_leader: Vec<u64>,
}

impl Group {
    pub fn new() -> Group {
        let peers: Vec<u64> = (0..GROUP_SIZE).collect();
        let nodes = peers
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, peers.clone(), id);
                // Node 0 campaigns first; the others wait.
                if id == 0 {
                    config.election_timeout_ticks_min = 11;
                    config.election_timeout_ticks_max = 12;
                } else {
                    config.election_timeout_ticks_min = 1_000_000;
                    config.election_timeout_ticks_max = 1_000_001;
                }
                RawNode::new(config)
            })
            .collect();
        Group {
            nodes,
            storages: vec![MemoryStorage::new(); GROUP_SIZE as usize],
            queue: VecDeque::new(),
            applied_at_leader: Vec::new(),
        }
    }

    /// Handles every node's Ready and delivers every message, until quiet.
    pub fn settle(&mut self) {
        loop {
            let mut progressed = false;
            for id in 0..self.nodes.len() {
                while self.nodes[id].has_ready() {
                    progressed = true;
                    let ready = self.nodes[id].ready();
                    self.storages[id]
                        .save_now(StorageWrite::from_ready(&ready))
                        .expect("save");
                    self.queue.extend(ready.messages.iter().cloned());
                    if id == 0 {
                        self.applied_at_leader
                            .extend(ready.committed_entries.iter().map(|e| e.index));
                    }
                    self.nodes[id].advance(ready);
                }
            }
            while let Some(message) = self.queue.pop_front() {
                progressed = true;
                let to = message.to as usize;
                self.nodes[to].step(message).expect("valid message");
            }
            if !progressed {
                return;
            }
        }
    }

    pub fn elect(&mut self) {
        for _ in 0..20 {
            for node in &mut self.nodes {
                node.tick();
            }
            self.settle();
        }
        assert!(self.nodes[0].is_leader(), "node 0 should lead");
    }
}
