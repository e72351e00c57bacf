//! The shardkv layer under a random fault mix.
//!
//! Three groups of three and a controller. The seed picks whether the
//! network loses messages and whether snapshots are taken. Clients run
//! gets, puts and appends on ten keys (one per shard) while a fault
//! injector joins and leaves groups (at least one group stays joined),
//! crashes and restarts replicas, splits a group's replicas into two
//! sides, heals, and flips message loss.
//!
//! Then the heal phase: faults stop, every replica restarts and
//! reconnects; within a bound every shard must end with exactly one owner
//! holding it (the latest configuration's, on every replica of that group,
//! nothing pending) and no other group holding it; a final read of every
//! key is recorded, and the whole history (so every acknowledged write)
//! must be linearizable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use madsim::rand::{Rng, thread_rng};

use super::Report;
use crate::shardkv::{GROUP_SERVERS, Tester, keys, random_string};

/// How long faults are injected, in simulated time.
const FAULT_PHASE: Duration = Duration::from_secs(20);
/// How long, once faults stop, the groups get to settle ownership.
const CONVERGE_BOUND: Duration = Duration::from_secs(30);
const CLIENTS: usize = 3;
const GROUPS: usize = 3;
/// Apart from the other layers' nodes in the same simulation.
const SUBNET: u8 = 40;

pub async fn run() -> Report {
    let mut rng = thread_rng();
    let lossy = rng.gen_bool(0.5);
    let max_raft_state = [None, Some(1000)][rng.gen_range(0..2)];
    let tester = Tester::on_subnet(GROUPS, true, max_raft_state, SUBNET);
    let mut report = Report {
        layer: "shardkv",
        nodes: GROUPS * GROUP_SERVERS + GROUP_SERVERS,
        clients: CLIENTS,
        ..Report::default()
    };
    tracing::info!(lossy, ?max_raft_state, "shardkv swarm: setup");
    let mut joined = [true, false, false];
    tester.join(&[0]).await;
    tester.net().set_reliable(!lossy);

    let keys = Arc::new(keys(10));
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicU64::new(0));
    let gave_up = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (keys, stop) = (Arc::clone(&keys), Arc::clone(&stop));
            let (finished, gave_up) = (Arc::clone(&finished), Arc::clone(&gave_up));
            tester.make_client().spawn(move |clerk| async move {
                while !stop.load(Ordering::SeqCst) {
                    let key = &keys[thread_rng().gen_range(0..keys.len())];
                    let value = random_string(4);
                    let done = match thread_rng().gen_range(0..10) {
                        0..4 => clerk.append(key, &value).await.is_some(),
                        4..7 => clerk.get(key).await.is_some(),
                        _ => clerk.put(key, &value).await.is_some(),
                    };
                    let counter = if done { &finished } else { &gave_up };
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    inject_faults(&tester, &mut joined, &mut report.faults).await;

    stop.store(true, Ordering::SeqCst);
    tester.net().heal_all();
    tester.net().set_reliable(true);
    for group in 0..GROUPS {
        tester.start_group(group).await;
    }
    for worker in workers {
        worker.await.expect("client task finished");
    }
    let latest = tester.query().await;
    let converged = converge(&tester, &latest).await;
    report.check(
        &format!(
            "heal: within {CONVERGE_BOUND:?} every shard has exactly one owner holding it \
             (configuration {})",
            latest.num
        ),
        converged,
    );
    let reader = tester.make_client();
    let mut unread = Vec::new();
    for key in keys.iter() {
        if reader.get(key).await.is_none() {
            unread.push(key.clone());
        }
    }
    report.check(
        "heal: every key reads back",
        if unread.is_empty() {
            Ok(())
        } else {
            Err(format!("reads of {unread:?} gave up"))
        },
    );
    let linearizable = std::panic::AssertUnwindSafe(|| tester.check_linearizable());
    report.check(
        "the whole history (every acknowledged write, the final reads) is linearizable",
        std::panic::catch_unwind(linearizable).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "the checker panicked".into())
        }),
    );
    report.rpcs_sent = tester.net().total_rpc_count();
    report.rpcs_delivered = tester
        .server_nodes()
        .into_iter()
        .map(|node| tester.net().rpc_count(node))
        .sum();
    report.bytes = tester.net().total_bytes();
    report.calls_ok = finished.load(Ordering::SeqCst);
    report.calls_failed = gave_up.load(Ordering::SeqCst);
    report
}

/// The fault phase: a random fault every 200-900 ms for [`FAULT_PHASE`]
/// (the collections scenario injects the same mix).
pub(super) async fn inject_faults(
    tester: &Tester,
    joined: &mut [bool; GROUPS],
    faults: &mut BTreeMap<&'static str, u64>,
) {
    let began = labrpc::runtime::now();
    while began.elapsed() < FAULT_PHASE {
        let pause_ms = thread_rng().gen_range(200..900);
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        let group = thread_rng().gen_range(0..GROUPS);
        let server = thread_rng().gen_range(0..GROUP_SERVERS);
        let kind = match thread_rng().gen_range(0..100) {
            0..15 => {
                if joined[group] {
                    continue;
                }
                tester.join(&[group]).await;
                joined[group] = true;
                "join"
            }
            15..30 => {
                // At least one group stays: shards with no group are lost
                // by design (see the shardkv docs).
                if !joined[group] || joined.iter().filter(|&&j| j).count() < 2 {
                    continue;
                }
                tester.leave(&[group]).await;
                joined[group] = false;
                "leave"
            }
            30..45 => {
                tester.shutdown_server(group, server);
                "crash"
            }
            45..65 => {
                tester.start_server(group, server).await;
                "restart"
            }
            65..75 => {
                let nodes = tester.group_nodes(group);
                let (left, right): (Vec<_>, Vec<_>) =
                    nodes.iter().partition(|_| thread_rng().gen_bool(0.5));
                tester.net().partition(&[&left, &right]);
                "partition"
            }
            75..90 => {
                tester.net().heal_all();
                "heal"
            }
            _ => {
                tester.net().set_reliable(thread_rng().gen_bool(0.5));
                "reliability flip"
            }
        };
        *faults.entry(kind).or_default() += 1;
    }
}

/// Waits up to [`CONVERGE_BOUND`] until every shard has one owner holding
/// it (see [`Tester::check_single_owners`]).
pub(super) async fn converge(tester: &Tester, latest: &shardctrler::Config) -> Result<(), String> {
    let deadline = labrpc::runtime::now() + CONVERGE_BOUND;
    loop {
        let outcome = tester.check_single_owners(latest);
        if outcome.is_ok() || labrpc::runtime::now() >= deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
