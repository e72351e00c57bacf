//! The rsm end to end in production mode (real tokio, gRPC on loopback):
//! proposals, ReadIndex reads, refusals on followers and on a leader cut
//! off from its majority, snapshots and restart. The simulated kvraft
//! suite (sim-tests) covers faults at scale.

#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::time::Duration;

use raft::storage::{FileStorage, MemoryStorage, Storage};
use rsm::{ApplyContext, ReplicatedMachine, Rsm, RsmConfig, SubmitError};
use serde::{Deserialize, Serialize};
use testkit::ports::free_addrs;

/// A sum of what was added, and how many additions: enough to see every
/// command applied once and in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Adder {
    total: u64,
    additions: u64,
    /// The log time of the last addition.
    last_now_ms: u64,
}

impl ReplicatedMachine for Adder {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, amount: &u64, context: &ApplyContext) -> u64 {
        assert!(context.now_ms >= self.last_now_ms, "log time went back");
        self.total += amount;
        self.additions += 1;
        self.last_now_ms = context.now_ms;
        self.total
    }

    fn check_invariants(&self) -> Result<(), String> {
        if self.total < self.additions {
            // Every addition in these tests adds at least 1.
            return Err(format!(
                "{} additions sum to {}",
                self.additions, self.total
            ));
        }
        Ok(())
    }
}

/// Starts one replica and its labrpc server (Raft's method only).
async fn start_replica<S: Storage + 'static>(
    id: usize,
    addrs: &[SocketAddr],
    storage: S,
    max_raft_state: Option<u64>,
) -> (Rsm<Adder>, labrpc::Server) {
    let config = RsmConfig {
        max_raft_state,
        ..RsmConfig::new(id, addrs.to_vec(), 7 + id as u64)
    };
    let rsm = Rsm::start(config, Adder::default(), storage)
        .await
        .expect("storage loads");
    let mut router = labrpc::Router::new();
    rsm.raft().add_handlers(&mut router);
    let server = labrpc::Server::start(addrs[id], router, labrpc::ServerConfig::default())
        .await
        .expect("server starts");
    (rsm, server)
}

async fn start_group(size: usize) -> (Vec<Rsm<Adder>>, Vec<labrpc::Server>) {
    let addrs = free_addrs(size);
    let mut replicas = Vec::new();
    let mut servers = Vec::new();
    for id in 0..size {
        let (rsm, server) = start_replica(id, &addrs, MemoryStorage::new(), None).await;
        replicas.push(rsm);
        servers.push(server);
    }
    (replicas, servers)
}

/// The one replica that leads, waiting at most 5 s.
async fn wait_leader(replicas: &[Rsm<Adder>]) -> usize {
    for _ in 0..500 {
        let leaders: Vec<usize> = (0..replicas.len())
            .filter(|&id| replicas[id].raft().state().1)
            .collect();
        if let [leader] = leaders[..] {
            return leader;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no single leader within 5 s");
}

/// Waits (at most 5 s) until `replica` has applied `additions` commands.
async fn wait_applied(replica: &Rsm<Adder>, additions: u64) -> Adder {
    for _ in 0..500 {
        let machine = replica.with_machine(Adder::clone);
        if machine.additions >= additions {
            return machine;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "replica applied {:?} within 5 s, expected {additions} additions",
        replica.with_machine(Adder::clone)
    );
}

/// Waits (up to 5 s) until `replica` has recorded `addr` for node `id`.
async fn wait_recorded(replica: &Rsm<Adder>, id: u64, addr: SocketAddr) {
    for _ in 0..500 {
        if replica.recorded_addrs().get(&id) == Some(&addr) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "replica recorded {:?} within 5 s, expected node {id} at {addr}",
        replica.recorded_addrs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_apply_everywhere_and_reads_see_them_on_the_leader_only() {
    let (replicas, _servers) = start_group(3).await;
    let leader = wait_leader(&replicas).await;
    let follower = (leader + 1) % 3;

    // Phase 0: a read before any command: its read index is the new
    // leader's no-op, which Raft never hands to the machine.
    assert_eq!(replicas[leader].read(|adder, _| adder.total).await, Ok(0));

    // Phase 1: proposals on the leader answer with their own output.
    assert_eq!(replicas[leader].submit(5).await, Ok(5));
    assert_eq!(replicas[leader].submit(7).await, Ok(12));

    // Phase 2: a follower refuses and names the leader (once it has heard
    // from it).
    for _ in 0..500 {
        if replicas[follower].raft().status().leader_id == Some(leader as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        replicas[follower].submit(1).await,
        Err(SubmitError::WrongLeader {
            leader_hint: Some(leader as u64)
        })
    );
    assert!(matches!(
        replicas[follower].read(|adder, _| adder.total).await,
        Err(SubmitError::WrongLeader { .. })
    ));

    // Phase 3: a ReadIndex read on the leader sees every completed write,
    // at a log time no earlier than the last entry's, and changes nothing.
    let (total, context) = replicas[leader]
        .read(|adder, context| (adder.total, *context))
        .await
        .expect("the leader serves reads");
    assert_eq!(total, 12);
    let machine = replicas[leader].with_machine(Adder::clone);
    assert!(context.now_ms >= machine.last_now_ms);
    assert_eq!(machine.additions, 2, "a read added an entry's effect");

    // Phase 4: every replica applies the same commands.
    for replica in &replicas {
        let machine = wait_applied(replica, 2).await;
        assert_eq!(machine.total, 12);
    }
    // Many concurrent proposals: each gets a distinct running total.
    let proposals: Vec<_> = (0..50)
        .map(|_| {
            let rsm = replicas[leader].clone();
            tokio::spawn(async move { rsm.submit(1).await })
        })
        .collect();
    let mut totals = Vec::new();
    for proposal in proposals {
        totals.push(proposal.await.expect("task").expect("applied"));
    }
    totals.sort_unstable();
    assert_eq!(totals, (13..63).collect::<Vec<u64>>());
    assert_eq!(replicas[leader].status().pending_proposals, 0);
    // Many concurrent reads (they share heartbeat rounds) all see 62.
    let reads: Vec<_> = (0..50)
        .map(|_| {
            let rsm = replicas[leader].clone();
            tokio::spawn(async move { rsm.read(|adder, _| adder.total).await })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.expect("task"), Ok(62));
    }
    for replica in &replicas {
        replica.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_majority_serves_no_read() {
    let (replicas, _servers) = start_group(3).await;
    let leader = wait_leader(&replicas).await;
    assert_eq!(replicas[leader].submit(3).await, Ok(3));
    // The two others stop (their servers answer nothing for Raft).
    for (id, replica) in replicas.iter().enumerate() {
        if id != leader {
            replica.kill();
        }
    }
    // Whatever it believes, the old leader cannot confirm its lead: a read
    // (which could be stale) and a write both fail.
    let read = replicas[leader].read(|adder, _| adder.total).await;
    assert!(
        matches!(
            read,
            Err(SubmitError::Timeout | SubmitError::WrongLeader { .. })
        ),
        "a leader without a majority answered a read: {read:?}"
    );
    let write = replicas[leader].submit(1).await;
    assert!(
        write.is_err(),
        "a write without a majority applied: {write:?}"
    );
    replicas[leader].kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarts_from_its_snapshot_and_log() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let addrs = free_addrs(1);
    let (rsm, server) = start_replica(0, &addrs, FileStorage::new(dir.path()), Some(400)).await;
    wait_leader(std::slice::from_ref(&rsm)).await;
    for amount in 1..=60 {
        rsm.submit(amount).await.expect("a single replica leads");
    }
    let before = rsm.status();
    assert!(
        before.last_snapshot_index > 0,
        "no snapshot at max_raft_state = 400: {before:?}"
    );
    assert!(
        before.raft.raft_state_size_bytes <= 8 * 400,
        "raft state not compacted: {before:?}"
    );
    let machine = rsm.with_machine(Adder::clone);
    assert_eq!((machine.total, machine.additions), (1830, 60));
    rsm.kill();
    server.shutdown().await.expect("server stops");

    // Restart from the same files: snapshot first, then the log after it.
    let (restarted, _server) =
        start_replica(0, &addrs, FileStorage::new(dir.path()), Some(400)).await;
    wait_leader(std::slice::from_ref(&restarted)).await;
    assert_eq!(wait_applied(&restarted, 60).await, machine);
    assert!(restarted.status().log_time_ms >= before.log_time_ms);
    assert_eq!(restarted.submit(1).await, Ok(1831));
    restarted.kill();
}

/// Submits `amount` on whichever replica leads (at most 10 s of retries).
async fn submit_anywhere(replicas: &[Option<Rsm<Adder>>], amount: u64) -> u64 {
    for _ in 0..1000 {
        for replica in replicas.iter().flatten() {
            if replica.raft().state().1
                && let Ok(total) = replica.submit(amount).await
            {
                return total;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no replica took {amount} within 10 s");
}

/// `change` on whichever replica leads, retried while it is refused for a
/// reason that passes (no leader yet, leader not ready, learner behind),
/// at most 10 s. Returns the configuration afterwards.
async fn change_anywhere(
    replicas: &[Option<Rsm<Adder>>],
    change: raft::core::MembershipChange,
    addr: Option<SocketAddr>,
) -> raft::core::Membership {
    let mut last_error = None;
    for _ in 0..1000 {
        for replica in replicas.iter().flatten() {
            if !replica.raft().state().1 {
                continue;
            }
            match replica.change_membership(change, addr).await {
                Ok(membership) => return membership,
                Err(error) if error.is_retryable() => last_error = Some(error),
                Err(error) => panic!("{change:?} refused: {error}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{change:?} not done within 10 s; last error: {last_error:?}");
}

/// A replica joins with a new id at an address the group was never
/// configured with: the address travels through the log, it catches up as
/// a learner, is promoted, the original leader removes itself and steps
/// down, and the group goes on with the newcomer as a voter. Configuration
/// and address entries never reach the machine (it counts every command).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_a_new_id_and_address_joins_and_the_leader_leaves() {
    // Phase 1: three replicas that know only each other.
    let addrs = free_addrs(4);
    let mut replicas: Vec<Option<Rsm<Adder>>> = Vec::new();
    let mut servers = Vec::new();
    for id in 0..3 {
        let (rsm, server) = start_replica(id, &addrs[..3], MemoryStorage::new(), None).await;
        replicas.push(Some(rsm));
        servers.push(server);
    }
    for amount in 1..=5 {
        submit_anywhere(&replicas, amount).await;
    }

    // Phase 2: node 3 starts empty, joining: it does not campaign.
    let config = RsmConfig {
        join: true,
        max_raft_state: None,
        ..RsmConfig::new(3, addrs.clone(), 10)
    };
    let newcomer = Rsm::start(config, Adder::default(), MemoryStorage::new())
        .await
        .expect("storage loads");
    let newcomer_server = newcomer.serve(|_| {}).await.expect("server starts");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !newcomer.raft().status().is_voter && newcomer.raft().status().term == 0,
        "a joining replica campaigned: {:?}",
        newcomer.raft().status()
    );
    replicas.push(Some(newcomer.clone()));
    servers.push(newcomer_server);

    // Phase 3: added as a learner with its address; it receives the log.
    let added = change_anywhere(
        &replicas,
        raft::core::MembershipChange::AddLearner(3),
        Some(addrs[3]),
    )
    .await;
    assert!(added.is_learner(3), "{added:?}");
    let machine = wait_applied(&newcomer, 5).await;
    assert_eq!(machine.total, 15);
    // The change answers once the leader applied it; a follower may apply
    // the address entry a moment later.
    for replica in replicas[..3].iter().flatten() {
        wait_recorded(replica, 3, addrs[3]).await;
    }

    // Phase 4: promoted; the leader removes itself and steps down.
    let promoted = change_anywhere(
        &replicas,
        raft::core::MembershipChange::PromoteLearner(3),
        None,
    )
    .await;
    assert!(promoted.is_voter(3), "{promoted:?}");
    let old_leader = wait_leader(&replicas.iter().flatten().cloned().collect::<Vec<_>>()).await;
    let removed = replicas[old_leader]
        .as_ref()
        .expect("running")
        .change_membership(
            raft::core::MembershipChange::Remove(old_leader as u64),
            None,
        )
        .await
        .expect("the leader removes itself");
    assert!(!removed.contains(old_leader as u64));
    for _ in 0..500 {
        if !replicas[old_leader]
            .as_ref()
            .expect("running")
            .raft()
            .state()
            .1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !replicas[old_leader]
            .as_ref()
            .expect("running")
            .raft()
            .state()
            .1,
        "the removed leader still leads"
    );
    replicas[old_leader].take().expect("running").kill();

    // Phase 5: the three voters left (the newcomer among them) commit.
    let total = submit_anywhere(&replicas, 100).await;
    assert_eq!(total, 115);
    let machine = wait_applied(&newcomer, 6).await;
    assert_eq!((machine.total, machine.additions), (115, 6));

    // Phase 6: leadership moves to the newcomer on request.
    let live: Vec<Rsm<Adder>> = replicas.iter().flatten().cloned().collect();
    let leader = wait_leader(&live).await;
    if !newcomer.raft().state().1 {
        live[leader]
            .transfer_leader(3)
            .await
            .expect("transfer starts");
    }
    for _ in 0..500 {
        if newcomer.raft().state().1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(newcomer.raft().state().1, "the newcomer did not take over");
    assert_eq!(newcomer.submit(1).await, Ok(116));
    for replica in replicas.iter().flatten() {
        replica.kill();
    }
}

/// A repeated membership change (a retry after a timeout) whose
/// configuration entry is in the leader's log but not committed is not
/// acknowledged: the entry may still be overwritten by a new leader. (It
/// was answered `Ok` at once, and an acknowledged removal was lost: seed
/// 213 of the simulation's `replace_every_replica_under_faults_linearizable`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_change_is_not_acknowledged_before_it_commits() {
    // The leader must still lead at the retry (CheckQuorum steps it down
    // after an election timeout alone): a slow machine may need a second
    // try, and a run where it never did proves nothing.
    for _attempt in 0..3 {
        let addrs = free_addrs(3);
        let mut replicas = Vec::new();
        let mut servers = Vec::new();
        for id in 0..3 {
            let config = RsmConfig {
                apply_wait: Duration::from_millis(100),
                ..RsmConfig::new(id, addrs.clone(), 7 + id as u64)
            };
            let rsm = Rsm::start(config, Adder::default(), MemoryStorage::new())
                .await
                .expect("storage loads");
            servers.push(rsm.serve(|_| {}).await.expect("server starts"));
            replicas.push(rsm);
        }
        let leader = wait_leader(&replicas).await;
        // A first command commits an entry of the leader's term (changes
        // wait for one).
        assert_eq!(replicas[leader].submit(1).await, Ok(1));
        for (id, replica) in replicas.iter().enumerate() {
            if id != leader {
                replica.kill();
            }
        }
        let removed = ((leader + 1) % 3) as u64;
        let change = raft::core::MembershipChange::Remove(removed);
        let first = replicas[leader].change_membership(change, None).await;
        assert!(first.is_err(), "committed without a majority: {first:?}");
        let still_leads = replicas[leader].raft().state().1;
        let retry = replicas[leader].change_membership(change, None).await;
        assert!(
            retry.is_err(),
            "the retry was acknowledged although its entry is not committed: {retry:?}"
        );
        let in_log = !replicas[leader].membership().1.contains(removed);
        replicas[leader].kill();
        if still_leads && in_log {
            // The entry was in the log (the configuration reflects it) and
            // the leader led at the retry: the case this test is about.
            return;
        }
    }
    panic!("in 3 tries the leader never still led at the retry");
}

/// Set by the test: lets [`GatedAdder`]'s snapshot encoding finish.
static ENCODING_GATE_OPEN: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);
/// Snapshot encodings of [`GatedAdder`] started so far.
static ENCODINGS_STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// An [`Adder`] whose snapshot encoding waits at a gate, as a large state's
/// encoding takes long.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct GatedAdder(Adder);

impl ReplicatedMachine for GatedAdder {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, amount: &u64, context: &ApplyContext) -> u64 {
        self.0.apply(amount, context)
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.0.check_invariants()
    }

    fn snapshot(&self) -> Vec<u8> {
        use std::sync::atomic::Ordering;
        ENCODINGS_STARTED.fetch_add(1, Ordering::SeqCst);
        // On the blocking pool: waiting here holds up no runtime worker.
        while !ENCODING_GATE_OPEN.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        codec::encode(self)
    }
}

/// While a snapshot is being encoded, the replica goes on applying and
/// answering: the encoding works on a copy, off the replica's lock and off
/// the runtime's workers. (It ran under the lock on a worker: a large
/// state's encoding stalled the replica's requests, and through the
/// workers they blocked every other group of the process, for up to 3 s
/// under `redis-benchmark -P 16`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_answers_while_its_snapshot_is_encoded() {
    use std::sync::atomic::Ordering;
    let addrs = free_addrs(1);
    let config = RsmConfig {
        max_raft_state: Some(500),
        ..RsmConfig::new(0, addrs.clone(), 7)
    };
    let rsm = Rsm::start(config, GatedAdder::default(), MemoryStorage::new())
        .await
        .expect("storage loads");
    for _ in 0..500 {
        if rsm.raft().state().1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A watchdog opens the gate after 10 s, so that a replica that waits
    // for the encoding fails this test instead of hanging it (its runtime
    // cannot even fire a timer then). A thread of its own: the runtime's
    // may all be stuck.
    #[allow(clippy::disallowed_methods)]
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(10));
        ENCODING_GATE_OPEN.store(true, Ordering::SeqCst);
    });
    let started = labrpc::runtime::now();
    let mut total = 0;
    let mut submitted = 0;
    while ENCODINGS_STARTED.load(Ordering::SeqCst) == 0 {
        submitted += 1;
        assert!(submitted < 1000, "no snapshot was taken");
        total = rsm.submit(1).await.expect("applied");
    }
    // The encoding waits at the gate: writes and reads go on.
    for _ in 0..20 {
        let answer = tokio::time::timeout(Duration::from_secs(5), rsm.submit(1)).await;
        total = answer
            .expect("a write waited for the snapshot's encoding")
            .expect("applied");
    }
    let read = tokio::time::timeout(Duration::from_secs(5), rsm.read(|m, _| m.0.total)).await;
    assert_eq!(read.expect("a read waited").expect("read"), total);
    assert!(
        started.elapsed() < Duration::from_secs(5) && !ENCODING_GATE_OPEN.load(Ordering::SeqCst),
        "the replica waited for the snapshot's encoding ({:?})",
        started.elapsed()
    );
    assert_eq!(
        rsm.status().last_snapshot_bytes,
        0,
        "the snapshot was encoded before the gate opened"
    );

    ENCODING_GATE_OPEN.store(true, Ordering::SeqCst);
    for _ in 0..500 {
        if rsm.status().raft.snapshot_index > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rsm.status().raft.snapshot_index > 0, "{:?}", rsm.status());
    assert!(rsm.status().last_snapshot_bytes > 0);
    rsm.kill();
}

/// An [`Adder`] with a fixed ballast: its snapshot is about 16 KiB however
/// few the additions.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BallastAdder {
    adder: Adder,
    ballast: Vec<u8>,
}

impl ReplicatedMachine for BallastAdder {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, amount: &u64, context: &ApplyContext) -> u64 {
        self.adder.apply(amount, context)
    }

    fn check_invariants(&self) -> Result<(), String> {
        self.adder.check_invariants()
    }
}

/// Snapshots one replica takes over `writes` writes, as seen after each,
/// with a 512-byte bound and `snapshot_log_percent`; and its last
/// snapshot's size.
async fn snapshots_over(writes: u64, snapshot_log_percent: u64) -> (usize, u64) {
    let config = RsmConfig {
        max_raft_state: Some(512),
        snapshot_log_percent,
        ..RsmConfig::new(0, free_addrs(1), 7)
    };
    let machine = BallastAdder {
        adder: Adder::default(),
        ballast: vec![7; 16 << 10],
    };
    let rsm = Rsm::start(config, machine, MemoryStorage::new())
        .await
        .expect("storage loads");
    wait_leader_of(std::slice::from_ref(&rsm)).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..writes {
        rsm.submit(1).await.expect("applied");
        let index = rsm.status().raft.snapshot_index;
        if index > 0 {
            seen.insert(index);
        }
    }
    let last_snapshot_bytes = rsm.status().last_snapshot_bytes;
    rsm.kill();
    (seen.len(), last_snapshot_bytes)
}

/// `snapshot_log_percent` lets the log grow with the snapshot's size: with
/// 100, a 16 KiB machine is written out about once per 16 KiB of log, not
/// at every 512 bytes of it as the bound alone has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_grows_with_the_snapshot_by_snapshot_log_percent() {
    let (bound_alone, snapshot_bytes) = snapshots_over(1500, 0).await;
    let (proportional, _) = snapshots_over(1500, 100).await;
    assert!(snapshot_bytes > 16 << 10, "{snapshot_bytes}");
    // 1,500 writes are about 35 KiB of log: dozens of snapshots at 512
    // bytes (fewer are seen than taken: one asked for while the last is
    // still being written waits), and at 100% one at 512 bytes, then one
    // per 16 KiB.
    assert!(
        bound_alone >= 30,
        "{bound_alone} snapshots with the bound alone"
    );
    assert!(
        (2..=4).contains(&proportional),
        "{proportional} snapshots at 100% (against {bound_alone})"
    );
}

/// An [`Adder`] whose replica may report a local fault (as a store that
/// lost a value on its disk does) once its total reaches `fault_at`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct FaultyAdder {
    total: u64,
    /// Local, as a disk is: only the replica made with it faults.
    #[serde(skip)]
    fault_at: Option<u64>,
}

impl ReplicatedMachine for FaultyAdder {
    type Command = u64;
    type Output = u64;

    fn apply(&mut self, amount: &u64, _context: &ApplyContext) -> u64 {
        self.total += amount;
        self.total
    }

    fn fault(&self) -> Option<String> {
        self.fault_at
            .filter(|&fault_at| self.total >= fault_at)
            .map(|fault_at| format!("lost a value at total {fault_at}"))
    }

    fn check_invariants(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A replica whose machine reports a fault stops through the fatal path
/// at that entry (its output goes to nobody); the others go on.
#[tokio::test]
async fn a_replica_whose_machine_reports_a_fault_stops_and_the_others_go_on() {
    eprintln!("phase 1: three replicas, replica 0 faults once its total reaches 10");
    let addrs = free_addrs(3);
    let mut replicas = Vec::new();
    let mut servers = Vec::new();
    for id in 0..3 {
        let machine = FaultyAdder {
            total: 0,
            fault_at: (id == 0).then_some(10),
        };
        let rsm = Rsm::start(
            RsmConfig::new(id, addrs.clone(), 31 + id as u64),
            machine,
            MemoryStorage::new(),
        )
        .await
        .expect("storage loads");
        let mut router = labrpc::Router::new();
        rsm.raft().add_handlers(&mut router);
        servers.push(
            labrpc::Server::start(addrs[id], router, labrpc::ServerConfig::default())
                .await
                .expect("server starts"),
        );
        replicas.push(rsm);
    }

    eprintln!("phase 2: 5, then 10 (which takes replica 0 to its fault)");
    let leader = wait_leader_of(&replicas).await;
    assert_eq!(replicas[leader].submit(5).await, Ok(5));
    let leader = wait_leader_of(&replicas).await;
    // Submitted once: a leader that faults applies it and stops without
    // answering (its majority has the entry, so it commits anyway).
    match replicas[leader].submit(10).await {
        Ok(total) => {
            assert_ne!(leader, 0, "the faulty replica answered past its fault");
            assert_eq!(total, 15);
        }
        Err(error) => assert_eq!(leader, 0, "a healthy leader refused: {error:?}"),
    }

    eprintln!("phase 3: replica 0 stopped on its fault; the others hold 15");
    for _ in 0..500 {
        if replicas[0].raft().fatal_error().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fatal = replicas[0]
        .raft()
        .fatal_error()
        .expect("replica 0 stopped on its fault");
    assert!(
        format!("{fatal:?}").contains("lost a value"),
        "the reason names the fault: {fatal:?}"
    );
    for replica in &replicas[1..] {
        assert!(replica.raft().fatal_error().is_none());
        for _ in 0..500 {
            if replica.with_machine(|machine| machine.total) == 15 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(replica.with_machine(|machine| machine.total), 15);
    }
    drop(servers);
}

/// The replica that leads among `replicas` (waiting at most 5 s).
async fn wait_leader_of<M: ReplicatedMachine>(replicas: &[Rsm<M>]) -> usize {
    for _ in 0..500 {
        if let Some(leader) = (0..replicas.len()).find(|&id| replicas[id].raft().state().1) {
            return leader;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no leader within 5 s");
}
