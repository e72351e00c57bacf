//! The kvraft layer under a random fault mix.
//!
//! The seed picks the group size (3 or 5), whether the network loses
//! messages, whether replies are reordered by seconds, whether servers
//! crash, and `max_raft_state` (none, 1000 or 4000 bytes). Clients append
//! unique values to and read a few shared keys, every call recorded, while
//! a fault injector splits the group into two sides, heals, crashes and
//! restarts servers and flips loss and reordering.
//!
//! ```text
//!  fault phase (FAULT_PHASE)          heal phase
//!  clients: append/get on KEYS        faults stop, crashed servers restart,
//!  injector: a fault every 200-800 ms network heals; every client's call in
//!                                     flight must finish (HEAL_BOUND), then
//!                                     one more read per key
//!  checks: the whole history is linearizable; every acknowledged append is
//!  in its key's final value exactly once (an unacknowledged one at most
//!  once); Raft state within 8 x max_raft_state.
//! ```
//!
//! Servers live at 10.4.0.x and clients at 10.4.1.x, apart from the other
//! layers' nodes in the same simulation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::rand::{Rng, thread_rng};

use super::Report;
use crate::kvraft::{Tester, TesterConfig};

/// How long faults are injected, in simulated time.
const FAULT_PHASE: Duration = Duration::from_secs(12);
/// How long, once faults stop, every client gets to finish its call.
const HEAL_BOUND: Duration = Duration::from_secs(30);
const CLIENTS: usize = 4;
const KEYS: [&str; 3] = ["a", "b", "c"];
/// This layer's addresses: 10.4.x.y.
const SUBNET: u8 = 4;

/// Appends a client made: acknowledged ones and those of unknown outcome.
#[derive(Default)]
struct Appends {
    acknowledged: Vec<(String, String)>,
    unknown: Vec<(String, String)>,
}

pub async fn run() -> Report {
    let mut rng = thread_rng();
    let servers = [3usize, 5][rng.gen_range(0..2)];
    let lossy = rng.gen_bool(0.5);
    let long_reordering = rng.gen_bool(0.3);
    let crashes = rng.gen_bool(0.6);
    let max_raft_state = [None, Some(1000), Some(4000)][rng.gen_range(0..3)];
    let tester = Tester::with_config(TesterConfig {
        reliable: !lossy,
        max_raft_state,
        subnet: Some(SUBNET),
        // Short, so faults leave calls of unknown outcome in the history.
        operation_deadline: Duration::from_secs(3),
        ..TesterConfig::new(servers)
    });
    tester.net().set_long_reordering(long_reordering);
    let mut report = Report {
        layer: "kvraft",
        nodes: servers,
        clients: CLIENTS,
        ..Report::default()
    };
    tracing::info!(
        servers,
        lossy,
        long_reordering,
        crashes,
        ?max_raft_state,
        "kvraft swarm: fault phase"
    );

    let setup = tester.make_client();
    for key in KEYS {
        // Before any fault. Even if it timed out, the checker allows it
        // and the appends below do not need it.
        setup.put(key, "").await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let appends = Arc::new(Mutex::new(Appends::default()));
    let calls_ok = Arc::new(AtomicU64::new(0));
    let calls_failed = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let stop = Arc::clone(&stop);
            let appends = Arc::clone(&appends);
            let calls_ok = Arc::clone(&calls_ok);
            let calls_failed = Arc::clone(&calls_failed);
            tester.make_client().spawn(move |clerk| async move {
                let mut sequence = 0u64;
                // Bounded: the fault phase lasts seconds, a call takes at
                // least a round trip.
                while !stop.load(Ordering::SeqCst) && sequence < 100_000 {
                    sequence += 1;
                    let key = KEYS[thread_rng().gen_range(0..KEYS.len())];
                    let ok = if thread_rng().gen_bool(0.6) {
                        let value = format!("[{client}.{sequence}]");
                        let done = clerk.append(key, &value).await.is_some();
                        let mut appends = appends.lock().expect("appends lock");
                        let list = if done {
                            &mut appends.acknowledged
                        } else {
                            &mut appends.unknown
                        };
                        list.push((key.to_string(), value));
                        done
                    } else {
                        clerk.get(key).await.is_some()
                    };
                    let counter = if ok { &calls_ok } else { &calls_failed };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let pause_ms = thread_rng().gen_range(0..30);
                    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                }
            })
        })
        .collect();

    let mut crashed = vec![false; servers];
    inject_faults(&tester, crashes, &mut crashed, &mut report.faults).await;

    // Heal: no more faults; everyone up and connected; clients finish.
    stop.store(true, Ordering::SeqCst);
    tester.net().heal_all();
    tester.net().set_reliable(true);
    tester.net().set_long_reordering(false);
    for (id, down) in crashed.iter().enumerate() {
        if *down {
            tester.restart_server(id).await;
        }
    }
    let healed = labrpc::runtime::now();
    let finished = tokio::time::timeout(HEAL_BOUND, async {
        for worker in workers {
            worker.await.expect("client task");
        }
    })
    .await;
    report.check(
        &format!("heal: every client's call in flight finished within {HEAL_BOUND:?}"),
        finished.map_err(|_| {
            format!(
                "some client still waiting {} ms after healing",
                crate::harness::elapsed_ms(healed)
            )
        }),
    );

    let reader = tester.make_client();
    let mut finals = BTreeMap::new();
    let read_deadline = labrpc::runtime::now() + HEAL_BOUND;
    for key in KEYS {
        // A read that gives up (the group may still be electing) is
        // recorded as unknown and tried again, within the bound.
        while labrpc::runtime::now() < read_deadline {
            if let Some(value) = reader.get(key).await {
                finals.insert(key.to_string(), value.unwrap_or_default());
                break;
            }
        }
        if !finals.contains_key(key) {
            report.check(
                &format!("heal: a final read of {key} succeeds within {HEAL_BOUND:?}"),
                Err("every try gave up".to_string()),
            );
        }
    }
    let appends = std::mem::take(&mut *appends.lock().expect("appends lock"));
    if finals.len() == KEYS.len() {
        report.check(
            &format!(
                "every acknowledged append ({}) is in its key's final value exactly once; \
                 none of unknown outcome ({}) twice",
                appends.acknowledged.len(),
                appends.unknown.len()
            ),
            appends_present(&finals, &appends),
        );
    }
    report.check(
        "Raft state within 8 x max_raft_state on every server",
        tester.raft_state_bounded(),
    );
    report.check(
        "the whole client history is linearizable",
        tester.linearizability().map(|summary| {
            tracing::info!(%summary, "kvraft swarm: history checked");
        }),
    );
    report.rpcs_sent = tester.net().total_rpc_count();
    report.rpcs_delivered = (0..servers)
        .map(|id| tester.net().rpc_count(tester.server_node(id)))
        .sum();
    report.bytes = tester.net().total_bytes();
    report.calls_ok = calls_ok.load(Ordering::SeqCst);
    report.calls_failed = calls_failed.load(Ordering::SeqCst);
    for id in 0..servers {
        tester.net().kill(tester.server_node(id));
    }
    report
}

/// Every acknowledged append occurs exactly once in its key's final value
/// and every unknown one at most once (values are unique, bracketed).
fn appends_present(finals: &BTreeMap<String, String>, appends: &Appends) -> Result<(), String> {
    let count = |key: &str, value: &str| finals[key].matches(value).count();
    for (key, value) in &appends.acknowledged {
        let seen = count(key, value);
        if seen != 1 {
            return Err(format!(
                "acknowledged append {value} to {key} occurs {seen} times in {:?}",
                finals[key]
            ));
        }
    }
    for (key, value) in &appends.unknown {
        let seen = count(key, value);
        if seen > 1 {
            return Err(format!(
                "append {value} to {key} (unknown outcome) occurs {seen} times in {:?}",
                finals[key]
            ));
        }
    }
    Ok(())
}

/// The fault phase: a random fault every 200-800 ms for [`FAULT_PHASE`].
async fn inject_faults(
    tester: &Tester,
    crashes: bool,
    crashed: &mut [bool],
    faults: &mut BTreeMap<&'static str, u64>,
) {
    let servers = tester.servers();
    let began = labrpc::runtime::now();
    while began.elapsed() < FAULT_PHASE {
        let pause_ms = thread_rng().gen_range(200..800);
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        let server = thread_rng().gen_range(0..servers);
        let kind = match thread_rng().gen_range(0..100) {
            0..30 => {
                let mut sides: [Vec<_>; 2] = [Vec::new(), Vec::new()];
                for id in 0..servers {
                    sides[usize::from(thread_rng().gen_bool(0.5))].push(tester.server_node(id));
                }
                tester.net().partition(&[&sides[0], &sides[1]]);
                "partition"
            }
            30..55 => {
                tester.net().heal_all();
                "heal"
            }
            55..70 if crashes && !crashed[server] => {
                tester.net().kill(tester.server_node(server));
                crashed[server] = true;
                "crash"
            }
            55..85 if crashes && crashed[server] => {
                tester.restart_server(server).await;
                crashed[server] = false;
                "restart"
            }
            55..85 => "none",
            _ => {
                if thread_rng().gen_bool(0.5) {
                    tester.net().set_reliable(thread_rng().gen_bool(0.5));
                    "reliability flip"
                } else {
                    tester.net().set_long_reordering(thread_rng().gen_bool(0.5));
                    "reordering flip"
                }
            }
        };
        if kind != "none" {
            *faults.entry(kind).or_default() += 1;
        }
    }
}
