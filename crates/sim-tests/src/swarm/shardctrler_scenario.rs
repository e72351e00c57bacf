//! The shard controller under a random fault mix.
//!
//! The seed picks the group size (3 or 5), the shard count (10, 64 or
//! 256), whether the network loses messages, and whether replicas snapshot
//! (and how often). Three clerks send concurrent Joins, Leaves, Moves and
//! Queries (each clerk 5 s per call, after which its outcome is unknown)
//! while an injector disconnects and reconnects replicas, splits the group,
//! crashes and restarts replicas and flips the network's reliability.
//!
//! Then the heal phase: faults stop, every replica runs and is connected,
//! and within bounds a new change must commit, every replica must hold the
//! same configurations, and the whole recorded history must pass the
//! controller's history check (every accepted change present exactly once,
//! identical contents for identical numbers, real-time order, every
//! Join/Leave configuration balanced with the fewest moves).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use madsim::rand::{Rng, thread_rng};
use shardctrler::{ControllerClient, Gid};

use super::Report;
use crate::shardctrler::history::Outcome;
use crate::shardctrler::{KEEP_EVERY_CONFIG, TestClerk, Tester, TesterConfig, group_servers};

/// How long faults are injected, in simulated time.
const FAULT_PHASE: Duration = Duration::from_secs(15);
/// Once faults stop: for the final change to commit.
const HEAL_CHANGE_BOUND: Duration = Duration::from_secs(10);
const CLIENTS: u64 = 3;
/// The swarm's addresses for this layer: 10.6.0.x servers, 10.6.1.x clients.
const SUBNET: u8 = 6;

pub async fn run() -> Report {
    let mut rng = thread_rng();
    let servers = [3usize, 5][rng.gen_range(0..2)];
    let shard_count = [10usize, 64, 256][rng.gen_range(0..3)];
    let lossy = rng.gen_bool(0.5);
    let max_raft_state = [None, Some(2_000u64), Some(20_000)][rng.gen_range(0..3)];
    let config = TesterConfig {
        servers,
        shard_count,
        reliable: !lossy,
        max_raft_state,
        subnet: SUBNET,
        clerk_deadline: Duration::from_secs(5),
        retained_configs: KEEP_EVERY_CONFIG,
    };
    let tester = Tester::new(config);
    let mut report = Report {
        layer: "shardctrler",
        nodes: servers,
        clients: CLIENTS as usize,
        ..Report::default()
    };
    tracing::info!(
        servers,
        shard_count,
        lossy,
        ?max_raft_state,
        "shardctrler swarm: fault phase"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let clerk = tester.make_client();
            let stop = Arc::clone(&stop);
            tokio::spawn(client_loop(client, clerk, shard_count, stop))
        })
        .collect();

    inject_faults(&tester, &mut report.faults).await;

    // Heal: no more faults; everyone up and connected.
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("client task finished");
    }
    tester.net().set_reliable(true);
    for id in 0..servers {
        if !tester.is_up(id) {
            tester.start_server(id).await;
        }
    }
    tester.connect_all();
    let final_clerk = tester.make_client();
    let final_gid: Gid = 999_999;
    let committed = tokio::time::timeout(
        HEAL_CHANGE_BOUND,
        final_clerk.join(BTreeMap::from([(final_gid, group_servers(final_gid, 3))])),
    )
    .await;
    report.check(
        &format!("heal: a Join commits within {HEAL_CHANGE_BOUND:?}"),
        match committed {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("the final Join failed: {error}")),
            Err(_) => Err("the final Join did not return".into()),
        },
    );
    let history = tester.check_history().await;
    let calls = tester.calls();
    let changes_ok = calls
        .iter()
        .filter(|call| matches!(call.outcome, Some(Outcome::Changed(_))))
        .count();
    report.check(
        &format!(
            "heal: all {servers} replicas agree; history of {} calls ({changes_ok} accepted \
             changes) replays exactly once, in real-time order, balanced with fewest moves \
             ({shard_count} shards)",
            calls.len()
        ),
        history.map(|_| ()),
    );
    report.rpcs_sent = tester.net().total_rpc_count();
    report.rpcs_delivered = (0..servers)
        .map(|id| tester.net().rpc_count(tester.server_node(id)))
        .sum();
    report.bytes = tester.net().total_bytes();
    report.calls_ok = calls.iter().filter(|call| call.outcome.is_some()).count() as u64;
    report.calls_failed = calls.iter().filter(|call| call.outcome.is_none()).count() as u64;
    report
}

/// One clerk: random changes and queries until `stop`. Gids are the
/// clerk's own (`client * 1000 + n`), so its Leaves and Moves name groups
/// it joined; other clerks' groups still shape every rebalance.
pub async fn client_loop(client: u64, clerk: TestClerk, shard_count: usize, stop: Arc<AtomicBool>) {
    let mut joined: Vec<Gid> = Vec::new();
    let mut next_gid: Gid = client * 1000 + 1;
    while !stop.load(Ordering::SeqCst) {
        let choice = thread_rng().gen_range(0..100);
        match choice {
            0..30 => {
                let gid = next_gid;
                next_gid += 1;
                let groups = BTreeMap::from([(gid, group_servers(gid, 3))]);
                // A timed-out Join may still apply: keep the gid either way
                // (a later Leave of it may then be refused, which is fine).
                let _ = clerk.join(groups).await;
                joined.push(gid);
            }
            30..50 if !joined.is_empty() => {
                let gid = joined.remove(thread_rng().gen_range(0..joined.len()));
                let _ = clerk.leave(vec![gid]).await;
            }
            50..65 if !joined.is_empty() => {
                let gid = joined[thread_rng().gen_range(0..joined.len())];
                let shard = thread_rng().gen_range(0..shard_count);
                let _ = clerk.move_shard(shard, gid).await;
            }
            65..85 => {
                let _ = clerk.query(None).await;
            }
            _ => {
                let num = thread_rng().gen_range(0..40);
                let _ = clerk.query(Some(num)).await;
            }
        }
        let pause_ms = thread_rng().gen_range(10..100);
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
}

/// The fault phase: a random fault every 200-800 ms for [`FAULT_PHASE`].
pub async fn inject_faults(tester: &Tester, faults: &mut BTreeMap<&'static str, u64>) {
    let servers = tester.servers();
    let began = labrpc::runtime::now();
    while began.elapsed() < FAULT_PHASE {
        let pause_ms = thread_rng().gen_range(200..800);
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        let id = thread_rng().gen_range(0..servers);
        let kind = match thread_rng().gen_range(0..100) {
            0..20 => {
                tester.net().disconnect(tester.server_node(id));
                "disconnect"
            }
            20..40 => {
                tester.net().connect(tester.server_node(id));
                "connect"
            }
            40..50 => {
                let mut sides: [Vec<_>; 2] = [Vec::new(), Vec::new()];
                for index in 0..servers {
                    sides[usize::from(thread_rng().gen_bool(0.5))].push(tester.server_node(index));
                }
                tester.net().partition(&[&sides[0], &sides[1]]);
                "partition"
            }
            50..60 => {
                tester.connect_all();
                "heal"
            }
            60..72 => {
                if tester.is_up(id) {
                    tester.shutdown_server(id);
                }
                "crash"
            }
            72..92 => {
                if !tester.is_up(id) {
                    tester.start_server(id).await;
                }
                "restart"
            }
            _ => {
                tester.net().set_reliable(thread_rng().gen_bool(0.5));
                "reliability flip"
            }
        };
        *faults.entry(kind).or_default() += 1;
    }
}
