//! A deterministic, in-memory, single-threaded cluster of [`RawNode`]s.
//!
//! One loop iteration is one tick for every live node. Messages go through a
//! queue that a seeded RNG delays (reorders), drops, or cuts off by
//! partition; nodes crash (losing everything but their [`MemoryStorage`]) and
//! restart. Every iteration checks the Raft safety properties (paper Figure 3)
//! and panics with the seed and what broke.

#![allow(dead_code)]

use std::collections::BTreeMap;

use raft::core::{Config, Entry, EntryKind, Message, NodeId, RawNode, Role, TICK_INTERVAL_MS};
use raft::storage::{MemoryStorage, StorageWrite};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Fault mix for a run.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Probability that a message is lost.
    pub drop_probability: f64,
    /// Messages are delayed uniformly in 0..=max_delay_ticks.
    pub max_delay_ticks: u64,
    /// Per tick: probability to crash one live node.
    pub crash_probability: f64,
    /// Per tick: probability to repartition the cluster (or heal it).
    pub partition_probability: f64,
}

impl Faults {
    pub fn none() -> Faults {
        Faults {
            drop_probability: 0.0,
            max_delay_ticks: 1,
            crash_probability: 0.0,
            partition_probability: 0.0,
        }
    }
}

/// What the service of one node has applied.
#[derive(Clone, Debug, Default)]
struct ServiceState {
    last_applied: u64,
    /// Rolling hash of every command applied, in order.
    hash: u64,
}

fn mix(hash: u64, index: u64, data: &[u8]) -> u64 {
    let mut h = hash ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &byte in data {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn encode_service(state: &ServiceState) -> Vec<u8> {
    let mut data = state.last_applied.to_le_bytes().to_vec();
    data.extend_from_slice(&state.hash.to_le_bytes());
    data
}

fn decode_service(data: &[u8]) -> ServiceState {
    let last_applied = u64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
    let hash = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    ServiceState { last_applied, hash }
}

struct InFlight {
    deliver_at_tick: u64,
    sequence: u64,
    message: Message,
}

pub struct Cluster {
    pub seed: u64,
    /// `Config::peers` of every node (the bootstrap configuration): all
    /// nodes unless a test makes some of them join later.
    bootstrap: Vec<NodeId>,
    rng: ChaCha8Rng,
    pub nodes: Vec<Option<RawNode>>,
    storages: Vec<MemoryStorage>,
    services: Vec<ServiceState>,
    restart_count: Vec<u64>,
    /// Partition group of each node; messages cross only within a group.
    groups: Vec<u32>,
    /// Links cut in both directions, besides the groups (`cut_link`).
    cut_links: Vec<(usize, usize)>,
    in_flight: Vec<InFlight>,
    next_sequence: u64,
    pub now_ticks: u64,
    pub faults: Faults,
    /// Service snapshots every this many applied entries (None: never).
    pub snapshot_interval: Option<u64>,
    /// Every applied command, by index (state machine safety).
    applied_commands: BTreeMap<u64, Vec<u8>>,
    /// Service hash after applying each index.
    hash_at_index: BTreeMap<u64, u64>,
    /// Every committed entry's term, and a term at or after which it was
    /// committed, by index (leader completeness).
    committed_terms: BTreeMap<u64, (u64, u64)>,
    /// The leader of each term (election safety).
    leaders: BTreeMap<u64, NodeId>,
    next_command: u64,
    pub messages_delivered: u64,
    pub reads_confirmed: u64,
    /// Confirmed reads that missed a commit made before they were asked.
    pub stale_reads: u64,
    /// A stale read fails the run (the default); false counts it only.
    pub fail_on_stale_read: bool,
    /// Each node's clock rate in percent of real time (100: exact). A step
    /// is `TICK_INTERVAL_MS` of real time; a node ticks as its own clock
    /// crosses tick boundaries and reads its clock (`set_now_ms`) there.
    pub clock_percent: Vec<u64>,
    /// Ticks each node's clock has given so far.
    clock_ticks: Vec<u64>,
    /// Applied to every node's config, at start and at each restart.
    tune: Box<dyn Fn(&mut Config)>,
}

impl Cluster {
    pub fn new(size: usize, seed: u64, faults: Faults) -> Cluster {
        Cluster::with_config(size, seed, faults, |_| {})
    }

    pub fn with_config(
        size: usize,
        seed: u64,
        faults: Faults,
        tune: impl Fn(&mut Config) + 'static,
    ) -> Cluster {
        Cluster::with_bootstrap(size, size, seed, faults, tune)
    }

    /// `size` nodes of which only the first `voters` are the bootstrap
    /// configuration; the others start outside the group (they join by
    /// membership changes).
    pub fn with_bootstrap(
        size: usize,
        voters: usize,
        seed: u64,
        faults: Faults,
        tune: impl Fn(&mut Config) + 'static,
    ) -> Cluster {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let peers: Vec<NodeId> = (0..voters as u64).collect();
        let nodes = (0..size as u64)
            .map(|id| {
                let mut config = Config::new(id, peers.clone(), rng.r#gen());
                tune(&mut config);
                Some(RawNode::new(config))
            })
            .collect();
        Cluster {
            seed,
            bootstrap: peers,
            rng,
            nodes,
            storages: vec![MemoryStorage::new(); size],
            services: vec![ServiceState::default(); size],
            restart_count: vec![0; size],
            groups: vec![0; size],
            cut_links: Vec::new(),
            in_flight: Vec::new(),
            next_sequence: 0,
            now_ticks: 0,
            faults,
            snapshot_interval: None,
            applied_commands: BTreeMap::new(),
            hash_at_index: BTreeMap::new(),
            committed_terms: BTreeMap::new(),
            leaders: BTreeMap::new(),
            next_command: 0,
            messages_delivered: 0,
            reads_confirmed: 0,
            stale_reads: 0,
            fail_on_stale_read: true,
            clock_percent: vec![100; size],
            clock_ticks: vec![0; size],
            tune: Box::new(tune),
        }
    }

    /// Node `id`'s clock now, in milliseconds.
    fn clock_ms(&self, id: usize) -> u64 {
        self.now_ticks * TICK_INTERVAL_MS * self.clock_percent[id] / 100
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    fn fail(&self, what: String) -> ! {
        panic!("seed {} tick {}: {what}", self.seed, self.now_ticks)
    }

    /// One tick for every live node, message delivery, Ready handling and
    /// the safety checks.
    pub fn step(&mut self) {
        self.now_ticks += 1;
        self.inject_faults();
        for id in 0..self.size() {
            let now_ms = self.clock_ms(id);
            let due = now_ms / TICK_INTERVAL_MS;
            let ticks = due.saturating_sub(self.clock_ticks[id]);
            self.clock_ticks[id] = due;
            if let Some(node) = self.nodes[id].as_mut() {
                node.set_now_ms(now_ms);
                for _ in 0..ticks {
                    node.tick();
                }
            }
        }
        self.handle_all_ready();
        self.deliver_due_messages();
        self.handle_all_ready();
        self.check_safety();
    }

    pub fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.step();
        }
    }

    fn inject_faults(&mut self) {
        if self.rng.gen_bool(self.faults.crash_probability) {
            let victim = self.rng.gen_range(0..self.size());
            self.crash(victim);
        }
        // Crashed nodes come back after a while.
        for id in 0..self.size() {
            if self.nodes[id].is_none() && self.rng.gen_bool(0.02) {
                self.restart(id);
            }
        }
        if self.rng.gen_bool(self.faults.partition_probability) {
            if self.rng.gen_bool(0.5) {
                self.heal();
            } else {
                for group in self.groups.iter_mut() {
                    *group = self.rng.gen_range(0..2);
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.groups.iter_mut().for_each(|g| *g = 0);
    }

    /// Cuts the link between `a` and `b` (both ways) until `heal_links`.
    pub fn cut_link(&mut self, a: usize, b: usize) {
        self.cut_links.push((a, b));
    }

    pub fn heal_links(&mut self) {
        self.cut_links.clear();
    }

    pub fn isolate(&mut self, id: usize) {
        self.groups[id] = 1;
    }

    pub fn crash(&mut self, id: usize) {
        self.nodes[id] = None;
        self.services[id] = ServiceState::default();
    }

    pub fn restart(&mut self, id: usize) {
        if self.nodes[id].is_some() {
            return;
        }
        self.restart_count[id] += 1;
        let mut config = Config::new(id as u64, self.bootstrap.clone(), self.rng.r#gen());
        (self.tune)(&mut config);
        let state = self.storages[id].state().clone();
        self.nodes[id] = Some(RawNode::restart(config, state));
        self.services[id] = ServiceState::default();
    }

    pub fn restart_all(&mut self) {
        for id in 0..self.size() {
            self.restart(id);
        }
    }

    fn handle_all_ready(&mut self) {
        for id in 0..self.size() {
            // Bounded: each Ready hands out a bounded amount of work.
            for _ in 0..100 {
                let Some(node) = self.nodes[id].as_mut() else {
                    break;
                };
                if !node.has_ready() {
                    break;
                }
                let ready = node.ready();
                self.storages[id]
                    .save_now(StorageWrite::from_ready(&ready))
                    .unwrap_or_else(|error| panic!("seed {}: node {id}: save: {error}", self.seed));
                for message in &ready.messages {
                    self.send(message.clone());
                }
                if let Some(snapshot) = ready.snapshot.as_ref().filter(|s| s.apply) {
                    self.apply_snapshot(
                        id,
                        snapshot.snapshot.meta.last_included_index,
                        &snapshot.snapshot.data,
                    );
                }
                for entry in &ready.committed_entries {
                    self.apply_entry(id, entry);
                }
                for read in &ready.read_states {
                    // Linearizable read: everything committed anywhere
                    // before the read was asked must be at or below its index.
                    let committed_before =
                        u64::from_le_bytes(read.context[..8].try_into().expect("8 bytes"));
                    if read.index < committed_before && !self.fail_on_stale_read {
                        self.stale_reads += 1;
                    } else if read.index < committed_before {
                        self.fail(format!(
                            "read index: node {id} confirmed a read at {} but {committed_before} was \
                             committed before it was asked",
                            read.index
                        ));
                    }
                    self.reads_confirmed += 1;
                }
                let node = self.nodes[id].as_mut().expect("still alive");
                node.advance(ready);
                self.maybe_snapshot(id);
            }
        }
    }

    fn send(&mut self, message: Message) {
        if self.rng.gen_bool(self.faults.drop_probability) {
            return;
        }
        let delay = self.rng.gen_range(0..=self.faults.max_delay_ticks);
        self.in_flight.push(InFlight {
            deliver_at_tick: self.now_ticks + delay,
            sequence: self.next_sequence,
            message,
        });
        self.next_sequence += 1;
    }

    fn deliver_due_messages(&mut self) {
        let now = self.now_ticks;
        let (mut due, later): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|m| m.deliver_at_tick <= now);
        self.in_flight = later;
        due.sort_by_key(|m| (m.deliver_at_tick, m.sequence));
        for in_flight in due {
            let message = in_flight.message;
            let (from, to) = (message.from as usize, message.to as usize);
            if self.groups[from] != self.groups[to]
                || self
                    .cut_links
                    .iter()
                    .any(|&(a, b)| (a, b) == (from, to) || (b, a) == (from, to))
            {
                continue;
            }
            let Some(node) = self.nodes[to].as_mut() else {
                continue;
            };
            node.step(message)
                .unwrap_or_else(|error| panic!("seed {}: step: {error}", self.seed));
            self.messages_delivered += 1;
        }
    }

    fn apply_snapshot(&mut self, id: usize, index: u64, data: &[u8]) {
        let state = decode_service(data);
        if state.last_applied != index {
            self.fail(format!(
                "node {id}: snapshot at {index} holds service state of {}",
                state.last_applied
            ));
        }
        if let Some(&hash) = self.hash_at_index.get(&index)
            && hash != state.hash
        {
            self.fail(format!(
                "node {id}: snapshot at {index} differs from the applied history"
            ));
        }
        if index < self.services[id].last_applied {
            self.fail(format!(
                "node {id}: snapshot at {index} would move applied back from {}",
                self.services[id].last_applied
            ));
        }
        self.services[id] = state;
    }

    fn apply_entry(&mut self, id: usize, entry: &Entry) {
        let service = &self.services[id];
        if entry.index != service.last_applied + 1 {
            self.fail(format!(
                "node {id}: applied index {} after {} (gap or repeat)",
                entry.index, service.last_applied
            ));
        }
        let data = if entry.kind == EntryKind::Noop {
            &[][..]
        } else {
            &entry.data[..]
        };
        match self.applied_commands.get(&entry.index) {
            Some(existing) if existing != data => self.fail(format!(
                "state machine safety: node {id} applied {:?} at index {}, another node {:?}",
                data, entry.index, existing
            )),
            Some(_) => {}
            None => {
                self.applied_commands.insert(entry.index, data.to_vec());
            }
        }
        match self.committed_terms.get(&entry.index) {
            Some(&(term, _)) if term != entry.term => self.fail(format!(
                "index {} committed with terms {term} and {}",
                entry.index, entry.term
            )),
            Some(_) => {}
            None => {
                // The entry was committed in some term no later than the
                // highest term any node has reached now.
                let commit_term_bound = self
                    .nodes
                    .iter()
                    .flatten()
                    .map(|n| n.term())
                    .max()
                    .unwrap_or(0);
                self.committed_terms
                    .insert(entry.index, (entry.term, commit_term_bound));
            }
        }
        let service = &mut self.services[id];
        service.last_applied = entry.index;
        service.hash = mix(service.hash, entry.index, data);
        let hash = service.hash;
        if let Some(&known) = self.hash_at_index.get(&entry.index) {
            if known != hash {
                self.fail(format!(
                    "node {id}: service state diverged at index {}",
                    entry.index
                ));
            }
        } else {
            self.hash_at_index.insert(entry.index, hash);
        }
    }

    fn maybe_snapshot(&mut self, id: usize) {
        let Some(interval) = self.snapshot_interval else {
            return;
        };
        let service = &self.services[id];
        let node = self.nodes[id].as_mut().expect("alive");
        let since = service
            .last_applied
            .saturating_sub(node.log().snapshot_meta().last_included_index);
        if service.last_applied > 0 && since >= interval {
            node.snapshot(service.last_applied, encode_service(service))
                .unwrap_or_else(|error| panic!("seed {}: node {id}: snapshot: {error}", self.seed));
        }
    }

    /// Proposes a fresh command at every node that believes it leads.
    /// Returns how many accepted it.
    pub fn propose_at_leaders(&mut self) -> usize {
        let mut accepted = 0;
        for node in self.nodes.iter_mut().flatten() {
            if node.is_leader() {
                self.next_command += 1;
                let command = self.next_command.to_le_bytes().to_vec();
                if node.propose(command).is_ok() {
                    accepted += 1;
                }
            }
        }
        accepted
    }

    /// Asks every node that believes it leads for a read point, recording
    /// the highest commit index anywhere at this moment.
    pub fn read_at_leaders(&mut self) {
        let committed_anywhere = self
            .nodes
            .iter()
            .flatten()
            .map(|n| n.log().commit_index())
            .max()
            .unwrap_or(0);
        for id in 0..self.size() {
            let now_ms = self.clock_ms(id);
            let Some(node) = self.nodes[id].as_mut().filter(|n| n.is_leader()) else {
                continue;
            };
            node.set_now_ms(now_ms);
            // Refusals (not ready, too many pending) are fine here.
            let _ = node.read_index(committed_anywhere.to_le_bytes().to_vec());
        }
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .flatten()
            .filter(|n| n.is_leader())
            .map(|n| n.id())
            .collect()
    }

    /// The one leader with the highest term among live nodes, if any.
    pub fn current_leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .flatten()
            .filter(|n| n.is_leader())
            .max_by_key(|n| n.term())
            .map(|n| n.id())
    }

    pub fn applied_index(&self, id: usize) -> u64 {
        self.services[id].last_applied
    }

    pub fn node(&self, id: usize) -> &RawNode {
        self.nodes[id]
            .as_ref()
            .unwrap_or_else(|| panic!("node {id} is down"))
    }

    pub fn node_mut(&mut self, id: usize) -> &mut RawNode {
        self.nodes[id]
            .as_mut()
            .unwrap_or_else(|| panic!("node {id} is down"))
    }

    pub fn storage(&self, id: usize) -> &MemoryStorage {
        &self.storages[id]
    }

    /// Runs until `done` holds, at most `max_ticks`; panics with `what`.
    pub fn run_until(
        &mut self,
        max_ticks: u64,
        what: &str,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> u64 {
        for elapsed in 0..max_ticks {
            if done(self) {
                return elapsed;
            }
            self.step();
        }
        if done(self) {
            return max_ticks;
        }
        self.fail(format!("not reached within {max_ticks} ticks: {what}"))
    }

    fn check_safety(&mut self) {
        // Election safety (paper section 5.2): one leader per term.
        for node in self.nodes.iter().flatten() {
            if node.role() == Role::Leader {
                let leader = *self.leaders.entry(node.term()).or_insert(node.id());
                if leader != node.id() {
                    self.fail(format!(
                        "election safety: nodes {leader} and {} both lead term {}",
                        node.id(),
                        node.term()
                    ));
                }
            }
        }
        // Leader completeness (section 5.4): a leader holds every committed
        // entry (those it has not compacted).
        for node in self.nodes.iter().flatten().filter(|n| n.is_leader()) {
            let log = node.log();
            for (&index, &(term, commit_term_bound)) in
                self.committed_terms.range(log.first_index()..)
            {
                if node.term() > commit_term_bound && log.term_at(index) != Some(term) {
                    self.fail(format!(
                        "leader completeness: leader {} of term {} has term {:?} at committed index \
                         {index} (committed term {term})",
                        node.id(),
                        node.term(),
                        log.term_at(index)
                    ));
                }
            }
        }
        // A leader never believes a follower of its term holds more than it does.
        for leader in self.nodes.iter().flatten().filter(|n| n.is_leader()) {
            for follower in self
                .nodes
                .iter()
                .flatten()
                .filter(|n| n.term() == leader.term())
            {
                if let Some(progress) = leader.progress(follower.id())
                    && progress.match_index > follower.log().last_index()
                {
                    self.fail(format!(
                        "leader {} of term {} has match {} for node {} whose log ends at {}",
                        leader.id(),
                        leader.term(),
                        progress.match_index,
                        follower.id(),
                        follower.log().last_index()
                    ));
                }
            }
        }
        // Log matching (section 5.3), checked every 16 ticks to stay fast:
        // two logs with the same term at an index agree on every entry held
        // by both up to there.
        if self.now_ticks.is_multiple_of(16) {
            let live: Vec<&RawNode> = self.nodes.iter().flatten().collect();
            for (position, a) in live.iter().enumerate() {
                for b in &live[position + 1..] {
                    self.check_log_matching(a, b);
                }
            }
        }
    }

    fn check_log_matching(&self, a: &RawNode, b: &RawNode) {
        let (la, lb) = (a.log(), b.log());
        let low = la.first_index().max(lb.first_index());
        let high = la.last_index().min(lb.last_index());
        let mut index = high;
        while index >= low && index > 0 {
            if la.term_at(index) == lb.term_at(index) {
                break;
            }
            index -= 1;
        }
        for i in low..=index {
            if la.entry(i) != lb.entry(i) {
                self.fail(format!(
                    "log matching: nodes {} and {} agree on the term at {index} but differ at {i}",
                    a.id(),
                    b.id()
                ));
            }
        }
    }

    /// Heals the network and restarts everyone, then waits until every node
    /// has applied the same last index, which includes a fresh command of
    /// the final leader's term. Returns the ticks it took.
    pub fn converge(&mut self, max_ticks: u64) -> u64 {
        self.faults = Faults::none();
        self.heal();
        self.restart_all();
        let mut proposed: Option<(u64, u64)> = None;
        for elapsed in 0..max_ticks {
            if let Some(leader) = self.current_leader() {
                let term = self.node(leader as usize).term();
                if proposed.is_none_or(|(_, proposed_term)| proposed_term != term) {
                    self.next_command += 1;
                    let command = self.next_command.to_le_bytes().to_vec();
                    if let Ok(position) = self.node_mut(leader as usize).propose(command) {
                        proposed = Some(position);
                    }
                }
            }
            if let Some((index, _)) = proposed {
                let first = self.services[0].last_applied;
                if first >= index && self.services.iter().all(|s| s.last_applied == first) {
                    return elapsed;
                }
            }
            self.step();
        }
        let leader = self.current_leader();
        let detail: Vec<String> = self
            .nodes
            .iter()
            .flatten()
            .map(|n| {
                format!(
                    "node {} {:?} term {} log {}..={} commit {} applied {} progress at leader {:?}",
                    n.id(),
                    n.role(),
                    n.term(),
                    n.log().first_index(),
                    n.log().last_index(),
                    n.log().commit_index(),
                    n.log().applied_index(),
                    leader.and_then(|l| self.node(l as usize).progress(n.id()))
                )
            })
            .collect();
        self.fail(format!(
            "no convergence within {max_ticks} ticks: applied {:?}, proposed {proposed:?}\n{}",
            self.services
                .iter()
                .map(|s| s.last_applied)
                .collect::<Vec<_>>(),
            detail.join("\n")
        ))
    }
}
