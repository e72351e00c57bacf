//! The labrpc layer under a random fault mix.
//!
//! Servers record every request they handle; clients call random servers
//! with random deadlines while a fault injector disconnects, cuts links,
//! partitions, flips reliability, reorders, delays, pauses, kills and
//! restarts. Afterwards:
//! - every successful reply is the right answer from the right server;
//! - no request ran twice (labrpc never duplicates);
//! - every successful reply's request was really handled;
//! - the network's counters agree with what clients sent and servers saw;
//! - after healing, every client reaches every server within 10 s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use labrpc::sim::{Network, NodeId};
use labrpc::{Client, ClientConfig, Router, Rpc, Server, ServerConfig};
use madsim::rand::{Rng, thread_rng};
use serde::{Deserialize, Serialize};

use super::Report;
use crate::harness::{client_ip, node_addr, node_ip};

/// How long faults are injected, in simulated time.
const FAULT_PHASE: Duration = Duration::from_secs(20);
/// How long the system gets to answer everyone once faults stop.
const HEAL_BOUND: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    client: u64,
    sequence: u64,
    value: u64,
}

impl Rpc for Record {
    const NAME: &'static str = "swarm.Record";
    /// `(server index, value * 2)`.
    type Reply = (u64, u64);
}

/// What every server has handled, kept outside the simulated nodes so it
/// survives kills and restarts: server index -> (client, sequence) seen, in
/// order.
type Handled = Arc<Mutex<BTreeMap<usize, Vec<(u64, u64)>>>>;

#[derive(Default)]
struct ClientLog {
    sent: u64,
    ok: Vec<(usize, u64, u64, (u64, u64))>,
    failed: u64,
}

pub async fn run() -> Report {
    let mut rng = thread_rng();
    let servers = [3usize, 5, 7][rng.gen_range(0..3)];
    let clients = rng.gen_range(2..=4usize);
    let net = Network::new();
    let handled: Handled = Arc::default();

    let server_nodes: Vec<NodeId> = (0..servers)
        .map(|index| {
            let handled = Arc::clone(&handled);
            net.add_node(&format!("server-{index}"), node_ip(index), move || {
                let handled = Arc::clone(&handled);
                let mut router = Router::new();
                router.add(move |request: Record| {
                    let handled = Arc::clone(&handled);
                    async move {
                        handled
                            .lock()
                            .unwrap()
                            .entry(index)
                            .or_default()
                            .push((request.client, request.sequence));
                        (index as u64, request.value * 2)
                    }
                });
                async move {
                    Server::start(node_addr(index), router, ServerConfig::default())
                        .await
                        .expect("simulated server starts");
                }
            })
        })
        .collect();
    let client_nodes: Vec<NodeId> = (0..clients)
        .map(|index| net.add_client_node(&format!("client-{index}"), client_ip(index)))
        .collect();
    // A moment for the servers' init to bind. Not a check: a call that
    // finds no server yet fails and is counted like any other failure.
    tokio::time::sleep(Duration::from_millis(10)).await;

    // Fault phase: clients call while the injector breaks things.
    let logs: Vec<Arc<Mutex<ClientLog>>> = (0..clients).map(|_| Arc::default()).collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut client_tasks = Vec::new();
    for (index, &node) in client_nodes.iter().enumerate() {
        let log = Arc::clone(&logs[index]);
        let stop = Arc::clone(&stop);
        client_tasks.push(net.spawn(node, client_loop(index as u64, servers, log, stop)));
    }
    let mut report = Report {
        layer: "labrpc",
        nodes: servers,
        clients,
        ..Report::default()
    };
    inject_faults(&net, &server_nodes, &client_nodes, &mut report).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for task in client_tasks {
        // A client task cannot die: client nodes are never killed.
        task.await.expect("client task finished");
    }

    // Heal phase: stop every fault, then everyone must reach everyone.
    net.heal_all();
    net.set_reliable(true);
    net.set_long_reordering(false);
    net.set_long_delays(false);
    for &node in &server_nodes {
        net.resume(node);
    }
    let (liveness, heal_calls) = heal_and_reach_everyone(&net, servers, &client_nodes).await;
    report.check(
        &format!("after healing, every client reaches every server within {HEAL_BOUND:?}"),
        liveness,
    );

    check_invariants(
        &net,
        &server_nodes,
        &handled,
        &logs,
        heal_calls,
        &mut report,
    );
    report
}

async fn client_loop(
    client: u64,
    servers: usize,
    log: Arc<Mutex<ClientLog>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let rpc_client = Client::new(ClientConfig {
        timeout: Duration::from_millis(thread_rng().gen_range(200..3_000)),
        ..ClientConfig::default()
    });
    let mut sequence = 0u64;
    // Bounded: the fault phase is 20 s and every call or pause takes > 0 time;
    // the cap only guards against a bug that made calls instantaneous.
    while !stop.load(std::sync::atomic::Ordering::SeqCst) && sequence < 100_000 {
        sequence += 1;
        let server = thread_rng().gen_range(0..servers);
        let value = thread_rng().gen_range(0..1_000_000u64);
        log.lock().unwrap().sent += 1;
        let request = Record {
            client,
            sequence,
            value,
        };
        match rpc_client.call(node_addr(server), &request).await {
            Ok(reply) => log
                .lock()
                .unwrap()
                .ok
                .push((server, sequence, value, reply)),
            Err(_) => log.lock().unwrap().failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(thread_rng().gen_range(0..50))).await;
    }
}

async fn inject_faults(net: &Network, servers: &[NodeId], clients: &[NodeId], report: &mut Report) {
    let mut rng = thread_rng();
    let everyone: Vec<NodeId> = servers.iter().chain(clients).copied().collect();
    let started = labrpc::runtime::now();
    let mut killed: BTreeSet<NodeId> = BTreeSet::new();
    let mut paused: BTreeSet<NodeId> = BTreeSet::new();
    while started.elapsed() < FAULT_PHASE {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..1_000))).await;
        let server = servers[rng.gen_range(0..servers.len())];
        let kind = match rng.gen_range(0..11) {
            0 => {
                net.disconnect(everyone[rng.gen_range(0..everyone.len())]);
                "disconnect"
            }
            1 => {
                net.connect(everyone[rng.gen_range(0..everyone.len())]);
                "connect"
            }
            2 => {
                let a = everyone[rng.gen_range(0..everyone.len())];
                let b = everyone[rng.gen_range(0..everyone.len())];
                net.cut_link(a, b);
                "cut-link"
            }
            3 => {
                let mut shuffled = everyone.clone();
                for i in (1..shuffled.len()).rev() {
                    shuffled.swap(i, rng.gen_range(0..=i));
                }
                let split = rng.gen_range(1..shuffled.len());
                net.partition(&[&shuffled[..split], &shuffled[split..]]);
                "partition"
            }
            4 => {
                net.heal_all();
                "heal"
            }
            5 => {
                net.set_reliable(rng.gen_bool(0.5));
                "reliability-flip"
            }
            6 => {
                net.set_long_reordering(rng.gen_bool(0.5));
                "reordering-flip"
            }
            7 => {
                net.set_long_delays(rng.gen_bool(0.5));
                "long-delays-flip"
            }
            8 if !killed.contains(&server) => {
                net.kill(server);
                killed.insert(server);
                "kill"
            }
            8 | 9 => match killed.pop_first() {
                Some(node) => {
                    net.restart(node).await;
                    "restart"
                }
                None => continue,
            },
            _ => {
                if paused.remove(&server) {
                    net.resume(server);
                    "resume"
                } else {
                    net.pause(server);
                    paused.insert(server);
                    "pause"
                }
            }
        };
        *report.faults.entry(kind).or_insert(0) += 1;
    }
    for node in killed {
        net.restart(node).await;
        *report.faults.entry("restart").or_insert(0) += 1;
    }
}

async fn heal_and_reach_everyone(
    net: &Network,
    servers: usize,
    clients: &[NodeId],
) -> (Result<(), String>, u64) {
    // Let restarted nodes run their init. The loop below is the wait on
    // the condition (every server answers, within HEAL_BOUND, or the
    // unreached ones are named).
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut tasks = Vec::new();
    for (index, &node) in clients.iter().enumerate() {
        tasks.push(net.spawn(node, async move {
            let client = Client::new(ClientConfig {
                timeout: Duration::from_millis(500),
                ..ClientConfig::default()
            });
            let deadline = labrpc::runtime::now() + HEAL_BOUND;
            let mut unreached: BTreeSet<usize> = (0..servers).collect();
            let mut sequence = 1_000_000u64;
            let mut calls = 0u64;
            while !unreached.is_empty() && labrpc::runtime::now() < deadline {
                for server in unreached.clone() {
                    sequence += 1;
                    calls += 1;
                    let request = Record {
                        client: 1_000 + index as u64,
                        sequence,
                        value: 1,
                    };
                    if client.call(node_addr(server), &request).await == Ok((server as u64, 2)) {
                        unreached.remove(&server);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (unreached, calls)
        }));
    }
    let mut failures = Vec::new();
    let mut calls_total = 0;
    for (index, task) in tasks.into_iter().enumerate() {
        let (unreached, calls) = task.await.expect("heal task finished");
        calls_total += calls;
        if !unreached.is_empty() {
            failures.push(format!(
                "client-{index} never reached servers {unreached:?}"
            ));
        }
    }
    let _ = net;
    let outcome = if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    };
    (outcome, calls_total)
}

fn check_invariants(
    net: &Network,
    servers: &[NodeId],
    handled: &Handled,
    logs: &[Arc<Mutex<ClientLog>>],
    heal_calls: u64,
    report: &mut Report,
) {
    let handled = handled.lock().unwrap();
    report.rpcs_sent = net.total_rpc_count();
    report.rpcs_delivered = servers.iter().map(|&node| net.rpc_count(node)).sum();
    report.bytes = net.total_bytes();

    let mut wrong_replies = Vec::new();
    let mut unhandled_replies = Vec::new();
    let mut sent = 0;
    for (client, log) in logs.iter().enumerate() {
        let log = log.lock().unwrap();
        sent += log.sent;
        report.calls_ok += log.ok.len() as u64;
        report.calls_failed += log.failed;
        for &(server, sequence, value, reply) in &log.ok {
            if reply != (server as u64, value * 2) {
                wrong_replies.push(format!(
                    "client-{client} #{sequence} to server-{server}: {reply:?}"
                ));
            }
            let ran = handled
                .get(&server)
                .is_some_and(|seen| seen.contains(&(client as u64, sequence)));
            if !ran {
                unhandled_replies.push(format!("client-{client} #{sequence} to server-{server}"));
            }
        }
    }
    report.check(
        "every successful reply is the right answer from the right server",
        first_few(&wrong_replies),
    );
    report.check(
        "every successful reply's request was handled by its server",
        first_few(&unhandled_replies),
    );

    let mut duplicates = Vec::new();
    for (server, seen) in handled.iter() {
        let mut unique = BTreeSet::new();
        for request in seen {
            if !unique.insert(*request) {
                duplicates.push(format!("server-{server} ran {request:?} twice"));
            }
        }
    }
    report.check("no request ran twice", first_few(&duplicates));

    let handled_total: u64 = handled.values().map(|seen| seen.len() as u64).sum();
    let calls_total = sent + heal_calls;
    report.check(
        "deliveries counted by the network equal handler runs",
        if report.rpcs_delivered == handled_total {
            Ok(())
        } else {
            Err(format!(
                "network counted {} deliveries, handlers ran {handled_total} times",
                report.rpcs_delivered
            ))
        },
    );
    report.check(
        "requests counted by the network equal calls the clients made",
        if calls_total == report.rpcs_sent {
            Ok(())
        } else {
            Err(format!(
                "network counted {} requests, clients made {calls_total} calls",
                report.rpcs_sent
            ))
        },
    );
    report.check(
        "no more deliveries than requests",
        if report.rpcs_delivered <= report.rpcs_sent {
            Ok(())
        } else {
            Err(format!(
                "{} delivered > {} sent",
                report.rpcs_delivered, report.rpcs_sent
            ))
        },
    );
}

fn first_few(problems: &[String]) -> Result<(), String> {
    if problems.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
    Err(format!(
        "{} problems, e.g. {}",
        problems.len(),
        shown.join("; ")
    ))
}
