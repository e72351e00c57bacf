//! The Raft layer under a random fault mix.
//!
//! The seed picks the group size (3, 5 or 7), whether the network loses
//! messages, whether replies are reordered by seconds, and the service's
//! snapshot interval (none, 5, 10 or 50 entries). Clients submit commands
//! to random servers while a fault injector disconnects and reconnects
//! servers, splits the group into two sides, crashes and restarts servers
//! and flips loss and reordering. The invariant checkers
//! (`crate::raft::invariants`) and the tester's service check every step
//! and stop the run at the first violation.
//!
//! Then the heal phase: every fault stops, every server restarts if
//! crashed and reconnects, and within a bound one more command must commit
//! on all servers, and every server must hold the same log, commit it and
//! apply it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use madsim::rand::{Rng, thread_rng};

use super::Report;
use crate::raft::tester::{Tester, TesterConfig, command};

/// How long faults are injected, in simulated time.
const FAULT_PHASE: Duration = Duration::from_secs(20);
/// How long, once faults stop, every server gets to hold, commit and apply
/// the same log (after the final agreement, which `one` bounds by 10 s).
const CONVERGE_BOUND: Duration = Duration::from_secs(10);
const CLIENTS: u64 = 2;

pub async fn run() -> Report {
    let mut rng = thread_rng();
    let servers = [3usize, 5, 7][rng.gen_range(0..3)];
    let lossy = rng.gen_bool(0.5);
    let long_reordering = rng.gen_bool(0.3);
    let snapshot_interval = [None, Some(5), Some(10), Some(50)][rng.gen_range(0..4)];
    let mut config = TesterConfig::new(servers);
    config.reliable = !lossy;
    config.snapshot_interval = snapshot_interval;
    // Apart from the other layers' nodes in the same simulation.
    config.subnet = 3;
    let tester = Tester::new(config).await;
    tester.set_long_reordering(long_reordering);
    let mut report = Report {
        layer: "raft",
        nodes: servers,
        clients: CLIENTS as usize,
        ..Report::default()
    };
    tracing::info!(
        servers,
        lossy,
        long_reordering,
        ?snapshot_interval,
        "raft swarm: fault phase"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let tester = tester.clone();
            let stop = Arc::clone(&stop);
            let accepted = Arc::clone(&accepted);
            let refused = Arc::clone(&refused);
            tokio::spawn(async move {
                let mut sequence = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    sequence += 1;
                    let server = thread_rng().gen_range(0..tester.servers());
                    let value = (client << 48) | sequence;
                    match tester.start(server, command(value)).await {
                        Some(_) => accepted.fetch_add(1, Ordering::SeqCst),
                        None => refused.fetch_add(1, Ordering::SeqCst),
                    };
                    let pause_ms = thread_rng().gen_range(5..40);
                    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                }
            })
        })
        .collect();

    inject_faults(&tester, &mut report.faults).await;

    // Heal: no more faults; everyone up and connected.
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("client task finished");
    }
    tester.net().heal_all();
    tester.set_reliable(true);
    tester.set_long_reordering(false);
    for server in 0..servers {
        if tester.raft(server).is_none() {
            tester.start1(server).await;
        }
        tester.connect(server);
    }
    let last_index = tester.one(command(u64::MAX), servers, true).await;
    report.check(
        &format!("heal: a command commits on all {servers} servers within 10 s"),
        Ok(()),
    );
    let converged = converge(&tester, last_index).await;
    report.check(
        &format!(
            "heal: every server holds, commits and applies the same log within {CONVERGE_BOUND:?}"
        ),
        converged,
    );
    let summary = tester.checker_summary();
    report.check(
        &format!(
            "invariants held on {} observations ({} terms with a leader, {} entries, commit \
             index {})",
            summary.observations,
            summary.leader_terms,
            summary.entries_seen,
            summary.highest_commit_index
        ),
        Ok(()),
    );
    report.rpcs_sent = tester.rpc_total();
    report.rpcs_delivered = tester.rpc_count_all();
    report.bytes = tester.bytes_total();
    report.calls_ok = accepted.load(Ordering::SeqCst);
    report.calls_failed = refused.load(Ordering::SeqCst);
    tester.end();
    report
}

/// The fault phase: a random fault every 100-700 ms for [`FAULT_PHASE`].
async fn inject_faults(tester: &Tester, faults: &mut BTreeMap<&'static str, u64>) {
    let servers = tester.servers();
    let began = labrpc::runtime::now();
    while began.elapsed() < FAULT_PHASE {
        let pause_ms = thread_rng().gen_range(100..700);
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        let server = thread_rng().gen_range(0..servers);
        let kind = match thread_rng().gen_range(0..100) {
            0..20 => {
                tester.disconnect(server);
                "disconnect"
            }
            20..45 => {
                tester.connect(server);
                "connect"
            }
            45..55 => {
                let mut sides: [Vec<_>; 2] = [Vec::new(), Vec::new()];
                for index in 0..servers {
                    sides[usize::from(thread_rng().gen_bool(0.5))].push(tester.node(index));
                }
                tester.net().partition(&[&sides[0], &sides[1]]);
                "partition"
            }
            55..65 => {
                tester.net().heal_all();
                for index in 0..servers {
                    if tester.raft(index).is_some() {
                        tester.connect(index);
                    }
                }
                "heal"
            }
            65..77 => {
                tester.crash1(server);
                "crash"
            }
            77..95 => {
                if tester.raft(server).is_none() {
                    tester.start1(server).await;
                }
                tester.connect(server);
                "restart"
            }
            _ => {
                if thread_rng().gen_bool(0.5) {
                    tester.set_reliable(thread_rng().gen_bool(0.5));
                    "reliability flip"
                } else {
                    tester.set_long_reordering(thread_rng().gen_bool(0.5));
                    "reordering flip"
                }
            }
        };
        *faults.entry(kind).or_default() += 1;
    }
}

/// Waits until every server stores the same log through `last_index` or
/// beyond (same last index, term and chained hash), has committed it and
/// its service has applied it.
async fn converge(tester: &Tester, last_index: u64) -> Result<(), String> {
    let deadline = labrpc::runtime::now() + CONVERGE_BOUND;
    loop {
        let tips: Vec<_> = (0..tester.servers())
            .map(|server| tester.converged_tip(server))
            .collect();
        let same = tips
            .iter()
            .all(|tip| tip.is_some_and(|tip| tip.index >= last_index) && *tip == tips[0]);
        if same {
            return Ok(());
        }
        if labrpc::runtime::now() >= deadline {
            return Err(format!(
                "after {CONVERGE_BOUND:?}, servers' tips (last stored entry, if committed and \
                 applied) differ: {tips:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
