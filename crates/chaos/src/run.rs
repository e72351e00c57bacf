//! One run: start the cluster, run the workload under the fault schedule,
//! heal, read back, check, write the output directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use distcache_client::proto::admin_client::AdminClient;
use distcache_client::proto::{NodeStatusRequest, StatusRequest};
use distcache_client::{Client, ClientConfig};
use linearizability::{KvInput, KvModel, KvOutput, Verdict, render_html};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::check::{self, AppendAudit};
use crate::cluster::{CONTROLLER_NODES, Cluster, GROUPS, NODE_COUNT, PeerPort};
use crate::faults::{FaultKind, PlannedFault, schedule};
use crate::netfilter::Netfilter;
use crate::proxy::{LinkFaults, Proxies};
use crate::report::{self, FaultEvent, Unavailability};
use crate::reshape;
use crate::workload::{self, ClientSetup, Ending, Front, Log, OpRecord};

/// What one run does.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    /// The workload's length: fault phase plus heal phase.
    pub duration: Duration,
    /// The heal phase at the end (no faults; the cluster must converge).
    pub heal: Duration,
    pub out_dir: PathBuf,
    pub binary: PathBuf,
    pub kinds: Vec<FaultKind>,
    pub grpc_clients: u64,
    pub resp_clients: u64,
    pub op_timeout: Duration,
    /// Extra top-level lines for every node's configuration.
    pub extra_config: String,
    /// Shard moves and group leave/join during the fault phase
    /// ([`crate::reshape`]).
    pub reshape: bool,
    /// Every other client's reads may be answered by any replica (gRPC
    /// `read_from = AnyReplica`, RESP `READONLY`); the rest read from
    /// leaders.
    pub replica_reads: bool,
    /// Both data groups replicate asynchronously (`[replication]
    /// async_groups`): plain puts acknowledged within
    /// [`ASYNC_LOSS_WINDOW`] of a fault count as unknown in the history
    /// (they may be lost); every other check stays as it is.
    pub async_replication: bool,
}

/// With `async_replication`: a plain put acknowledged from this long
/// before a fault began to this long after it ended may be lost (a leader
/// answers such a put before a majority has it; one paused or cut off may
/// answer a few more before it learns it lost its lead).
pub const ASYNC_LOSS_WINDOW: Duration = Duration::from_secs(1);

/// The `[replication]` table of an asynchronous run, at most 64 writes
/// answered early per leader.
pub fn async_replication_config() -> String {
    let groups: Vec<String> = crate::cluster::GROUPS
        .iter()
        .map(|(gid, _)| gid.to_string())
        .collect();
    format!(
        "\n[replication]\nasync_groups = [{}]\nasync_max_unreplicated = 64\n",
        groups.join(", ")
    )
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub seed: u64,
    pub passed: bool,
    pub operations: usize,
    pub ok: usize,
    pub unknown: usize,
    pub failed: usize,
    pub faults: usize,
    /// Reshapes sent, and those the controller applied.
    pub reshapes: usize,
    pub reshapes_applied: usize,
    pub violations: usize,
    pub lost_writes: usize,
    /// Why the run failed (empty when it passed).
    pub problems: Vec<String>,
    pub unavailability: Vec<Unavailability>,
    pub dir: PathBuf,
}

impl RunSummary {
    /// The one line a campaign collects.
    pub fn verdict_line(&self) -> String {
        let mut line = format!(
            "distcache-chaos seed={} {} ops={} ok={} unknown={} failed={} faults={} reshapes={}/{} violations={} lost={} dir={}",
            self.seed,
            if self.passed { "PASS" } else { "FAIL" },
            self.operations,
            self.ok,
            self.unknown,
            self.failed,
            self.faults,
            self.reshapes_applied,
            self.reshapes,
            self.violations,
            self.lost_writes,
            self.dir.display()
        );
        if let Some(first) = self.problems.first() {
            let _ = write!(line, " first-problem=\"{first}\"");
        }
        line
    }
}

/// A harness failure (not a finding about distcache).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("the cluster did not become ready within {0:?} (see the node logs)")]
    NotReady(Duration),
    #[error("firewall: {0}")]
    Firewall(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Keys read to decide the cluster serves (spread over the shards).
fn probe_keys() -> Vec<String> {
    (0..32).map(|i| format!("ready-probe-{i}")).collect()
}

fn harness_client(cluster: &Cluster, deadline: Duration) -> Client {
    let seeds = cluster.grpc_addrs();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    Client::new(
        &seeds,
        ClientConfig {
            rpc_timeout: Duration::from_millis(1000),
            operation_deadline: deadline,
            ..ClientConfig::default()
        },
    )
    .expect("the cluster's addresses are valid")
}

/// Waits until every probe key can be read.
async fn wait_serving(cluster: &Cluster, timeout: Duration) -> Result<Duration, RunError> {
    let started = Instant::now();
    let client = harness_client(cluster, Duration::from_secs(2));
    loop {
        let reads = probe_keys();
        let reads = reads.iter().map(|key| client.get(key.as_bytes()));
        let results = futures::future::join_all(reads).await;
        if results.iter().all(Result::is_ok) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err(RunError::NotReady(timeout));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fault in progress and how to end it.
enum Revert {
    Restart(u64),
    Resume(u64),
    /// Every proxy back to clean.
    Proxies,
    /// Every firewall rule of this harness removed.
    Firewall,
}

/// The network fault injectors of a run.
pub struct Network {
    pub proxies: Proxies,
    /// `None` when partitions cannot run here (the reason is reported).
    pub firewall: Option<Netfilter>,
}

impl Network {
    /// The proxy ports of the links from every node of `from` to every
    /// node of `to` (both peer port kinds).
    fn ports(&self, from: &[u64], to: &[u64]) -> Vec<u16> {
        let mut ports = Vec::new();
        for &a in from {
            for &b in to {
                for kind in [PeerPort::Controller, PeerPort::Data] {
                    if a != b
                        && let Some(port) = self.proxies.port(&(a, b, kind))
                    {
                        ports.push(port);
                    }
                }
            }
        }
        ports
    }

    fn block(&mut self, ports: &[u16]) -> Result<(), RunError> {
        let firewall = self
            .firewall
            .as_mut()
            .expect("partition faults are scheduled only with a firewall");
        firewall.block(ports).map_err(RunError::Firewall)
    }
}

fn all_nodes() -> Vec<u64> {
    (1..=NODE_COUNT).collect()
}

fn others(nodes: &[u64]) -> Vec<u64> {
    all_nodes()
        .into_iter()
        .filter(|node| !nodes.contains(node))
        .collect()
}

/// Which group a leader fault aims at: 0 is the controller.
fn group_nodes(gid: u64) -> Vec<u64> {
    if gid == 0 {
        return CONTROLLER_NODES.to_vec();
    }
    GROUPS
        .iter()
        .find(|(group, _)| *group == gid)
        .map(|(_, nodes)| nodes.to_vec())
        .unwrap_or_default()
}

async fn start_fault(
    cluster: &mut Cluster,
    network: &mut Network,
    fault: &PlannedFault,
) -> Result<(String, Revert), RunError> {
    let mut rng = ChaCha8Rng::seed_from_u64(fault.choice);
    match fault.kind {
        FaultKind::KillLeader => {
            let (node, target) = leader_target(cluster, &mut rng, fault.choice).await;
            cluster
                .kill(node)
                .map_err(io(format!("kill node {node}")))?;
            Ok((target, Revert::Restart(node)))
        }
        FaultKind::KillRandom => {
            let node = rng.gen_range(1..=NODE_COUNT);
            cluster
                .kill(node)
                .map_err(io(format!("kill node {node}")))?;
            Ok((format!("node {node}"), Revert::Restart(node)))
        }
        FaultKind::PauseLeader => {
            let (node, target) = leader_target(cluster, &mut rng, fault.choice).await;
            cluster
                .signal_pause(node, true)
                .map_err(io(format!("SIGSTOP node {node}")))?;
            Ok((target, Revert::Resume(node)))
        }
        FaultKind::Delay => {
            let node = rng.gen_range(1..=NODE_COUNT);
            network.proxies.set(
                Some(node),
                LinkFaults {
                    delay_ms: (20, 150),
                    ..LinkFaults::default()
                },
            );
            Ok((format!("links of node {node}"), Revert::Proxies))
        }
        FaultKind::Loss => {
            network.proxies.set(
                None,
                LinkFaults {
                    loss: 0.05,
                    ..LinkFaults::default()
                },
            );
            Ok(("every link".into(), Revert::Proxies))
        }
        FaultKind::Reorder => {
            network.proxies.set(
                None,
                LinkFaults {
                    reorder_ms: 300,
                    loss: 0.01,
                    ..LinkFaults::default()
                },
            );
            Ok(("every link".into(), Revert::Proxies))
        }
        FaultKind::PartitionMinority => {
            let minority = vec![
                GROUPS[0].1[rng.gen_range(0..3)],
                GROUPS[1].1[rng.gen_range(0..3)],
            ];
            let rest = others(&minority);
            let mut ports = network.ports(&minority, &rest);
            ports.extend(network.ports(&rest, &minority));
            network.block(&ports)?;
            Ok((
                format!("nodes {minority:?} cut from {rest:?}"),
                Revert::Firewall,
            ))
        }
        FaultKind::IsolateLeader => {
            let (node, target) = leader_target(cluster, &mut rng, fault.choice).await;
            let rest = others(&[node]);
            let mut ports = network.ports(&[node], &rest);
            ports.extend(network.ports(&rest, &[node]));
            network.block(&ports)?;
            Ok((target, Revert::Firewall))
        }
        FaultKind::Bridge => {
            let mut nodes = all_nodes();
            nodes.shuffle(&mut rng);
            let (first, second) = nodes.split_at(nodes.len() / 2);
            let bridge = first[0];
            let cut_off = &first[1..];
            let mut ports = network.ports(cut_off, second);
            ports.extend(network.ports(second, cut_off));
            network.block(&ports)?;
            Ok((
                format!("{cut_off:?} cut from {second:?}, bridge node {bridge}"),
                Revert::Firewall,
            ))
        }
        FaultKind::OneWay => {
            let (node, target) = leader_target(cluster, &mut rng, fault.choice).await;
            let ports = network.ports(&[node], &others(&[node]));
            network.block(&ports)?;
            Ok((format!("{target} cannot send"), Revert::Firewall))
        }
    }
}

/// The leader of a group the seed picks (or one of its nodes if none is
/// known), with words for the report.
async fn leader_target(cluster: &Cluster, rng: &mut ChaCha8Rng, choice: u64) -> (u64, String) {
    let gid = rng.gen_range(0..=GROUPS.len() as u64);
    let leaders = cluster.leaders(Duration::from_millis(500)).await;
    match leaders.of(gid) {
        Some(node) => (node, format!("node {node} (leader of {})", group_name(gid))),
        None => {
            let nodes = group_nodes(gid);
            let node = nodes[(choice as usize) % nodes.len()];
            (
                node,
                format!("node {node} ({} had no known leader)", group_name(gid)),
            )
        }
    }
}

fn group_name(gid: u64) -> String {
    if gid == 0 {
        "the controller".into()
    } else {
        format!("group {gid}")
    }
}

fn end_fault(cluster: &mut Cluster, network: &mut Network, revert: Revert) -> Result<(), RunError> {
    match revert {
        Revert::Proxies => {
            network.proxies.heal();
            Ok(())
        }
        Revert::Firewall => match network.firewall.as_mut() {
            Some(firewall) => firewall.heal().map_err(RunError::Firewall),
            None => Ok(()),
        },
        Revert::Restart(node) => cluster
            .start(node)
            .map_err(io(format!("restart node {node}"))),
        Revert::Resume(node) => cluster
            .signal_pause(node, false)
            .map_err(io(format!("SIGCONT node {node}"))),
    }
}

/// Runs the whole thing; the output directory is `config.out_dir`.
pub async fn run(config: &RunConfig) -> Result<RunSummary, RunError> {
    let dir = &config.out_dir;
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    crate::cleanup::stale_processes();
    let mut extra_config = config.extra_config.clone();
    if config.async_replication {
        extra_config.push_str(&async_replication_config());
    }
    let mut cluster =
        Cluster::new(dir, &config.binary, &extra_config).map_err(io("choose ports"))?;
    // Every peer link through a proxy of ours; partitions need root.
    let proxies = Proxies::start(&cluster.peer_links(), config.seed)
        .await
        .map_err(io("start the proxies"))?;
    cluster.set_view(proxies.view());
    let firewall = match Netfilter::probe() {
        Ok(firewall) => Some(firewall),
        Err(why) => {
            eprintln!("chaos: no partitions in this run ({why}): process and proxy faults only");
            None
        }
    };
    let kinds: Vec<FaultKind> = config
        .kinds
        .iter()
        .copied()
        .filter(|kind| firewall.is_some() || !kind.is_partition())
        .collect();
    let mut network = Network { proxies, firewall };
    cluster.write_configs().map_err(io("write configs"))?;
    for node in 1..=NODE_COUNT {
        cluster
            .start(node)
            .map_err(io(format!("start {}", config.binary.display())))?;
    }
    let ready_after = wait_serving(&cluster, Duration::from_secs(60)).await?;
    eprintln!(
        "chaos: cluster of {NODE_COUNT} nodes serving after {:.1} s; workload for {:?}",
        ready_after.as_secs_f64(),
        config.duration
    );
    let mut problems = Vec::new();

    // Phase 1: the workload, under the fault schedule.
    let log = Log::new(Instant::now());
    let (stop_sender, stop) = watch::channel(false);
    let mut clients = Vec::new();
    let resp_addrs: Vec<String> = (1..=NODE_COUNT)
        .map(|node| cluster.resp_addr(node))
        .collect();
    for id in 1..=config.grpc_clients + config.resp_clients {
        let setup = ClientSetup {
            id,
            seed: config.seed,
            front: if id <= config.grpc_clients {
                Front::Grpc
            } else {
                Front::Resp
            },
            grpc_seeds: cluster.grpc_addrs(),
            resp_addrs: resp_addrs.clone(),
            op_timeout: config.op_timeout,
            // Every other client of each front end.
            replica_reads: config.replica_reads && id % 2 == 0,
        };
        clients.push(tokio::spawn(workload::run_client(
            setup,
            log.clone(),
            stop.clone(),
        )));
    }
    let fault_phase = config.duration.saturating_sub(config.heal);
    let groups = if config.reshape {
        match reshape::groups(&cluster.grpc_addrs()).await {
            Ok(groups) => Some(groups),
            Err(error) => {
                problems.push(format!("reshape: the controller's groups unknown: {error}"));
                None
            }
        }
    } else {
        None
    };
    let reshaper = groups.clone().map(|groups| {
        tokio::spawn(reshape::run(
            config.seed,
            cluster.grpc_addrs(),
            groups,
            log.clone(),
            fault_phase,
            stop.clone(),
        ))
    });
    let plan = schedule(config.seed, &kinds, fault_phase);
    let mut events = Vec::new();
    for fault in &plan {
        sleep_until(&log, fault.start, &mut cluster, &mut problems).await;
        let start_us = log.now_us();
        let (target, revert) = start_fault(&mut cluster, &mut network, fault).await?;
        eprintln!(
            "chaos: {:>6.1}s {} {target}",
            start_us as f64 / 1e6,
            fault.kind
        );
        sleep_until(
            &log,
            fault.start + fault.duration,
            &mut cluster,
            &mut problems,
        )
        .await;
        end_fault(&mut cluster, &mut network, revert)?;
        events.push(FaultEvent {
            kind: fault.kind.name().to_string(),
            target,
            start_us,
            end_us: log.now_us(),
        });
    }

    // Phase 2: heal. Every fault is over; every node runs; the cluster must
    // serve again and its shard map converge.
    sleep_until(&log, fault_phase, &mut cluster, &mut problems).await;
    let heal_started = Instant::now();
    end_fault(&mut cluster, &mut network, Revert::Proxies)?;
    end_fault(&mut cluster, &mut network, Revert::Firewall)?;
    for node in 1..=NODE_COUNT {
        if cluster.paused().contains(&node) {
            end_fault(&mut cluster, &mut network, Revert::Resume(node))?;
        }
        if !cluster.is_running(node) {
            end_fault(&mut cluster, &mut network, Revert::Restart(node))?;
        }
    }
    let reshapes = match reshaper {
        Some(task) => task.await.unwrap_or_else(|_| {
            problems.push("the reshaper panicked".into());
            Vec::new()
        }),
        None => Vec::new(),
    };
    if let Some(groups) = &groups
        && let Err(problem) =
            reshape::rejoin_all(&cluster.grpc_addrs(), groups, Duration::from_secs(30)).await
    {
        problems.push(format!("heal: {problem}"));
    }
    match wait_serving(&cluster, Duration::from_secs(30)).await {
        Ok(after) => eprintln!(
            "chaos: serving again {:.1} s into the heal",
            after.as_secs_f64()
        ),
        Err(error) => problems.push(format!("heal: {error}")),
    }
    if let Err(problem) = wait_converged(&cluster, Duration::from_secs(30)).await {
        problems.push(format!("heal: {problem}"));
    }
    let heal_took = heal_started.elapsed();
    if heal_took > config.heal {
        eprintln!(
            "chaos: the heal took {:.1} s, longer than the {:?} heal phase",
            heal_took.as_secs_f64(),
            config.heal
        );
    }
    sleep_until(&log, config.duration, &mut cluster, &mut problems).await;
    let _ = stop_sender.send(true);
    for client in clients {
        if client.await.is_err() {
            problems.push("a workload client panicked".into());
        }
    }

    if config.async_replication {
        let (early, seen_lost, mispredicted) = cluster.async_acks(Duration::from_secs(5)).await;
        eprintln!(
            "chaos: writes answered before a majority had them: {early}, seen lost: {seen_lost} (since each node's last start)"
        );
        if early == 0 {
            problems.push("--async-replication: no write was answered early".into());
        }
        if mispredicted > 0 {
            problems.push(format!(
                "--async-replication: {mispredicted} early answers differed from the applied ones"
            ));
        }
    }
    if config.replica_reads {
        let served = cluster.follower_reads(Duration::from_secs(5)).await;
        eprintln!("chaos: reads answered by followers (since each node's last start): {served}");
        if served == 0 {
            problems.push("--replica-reads: no data replica answered a read as a follower".into());
        }
    }

    // Phase 3: read every append key back (recorded as client 0).
    let final_values = read_back(&cluster, &log).await;
    let records = log.records();
    cluster.stop_all();

    // Phase 4: check.
    let summary_counts = check::counts(&records);
    let history = if config.async_replication {
        let window_us = ASYNC_LOSS_WINDOW.as_micros() as u64;
        let windows: Vec<(u64, u64)> = events
            .iter()
            .map(|event| {
                (
                    event.start_us.saturating_sub(window_us),
                    event.end_us + window_us,
                )
            })
            .collect();
        check::history_with_puts_unknown_within(&records, &windows)
    } else {
        check::history(&records)
    };
    let checked = check::linearizability(&history, Duration::from_secs(120));
    let violations = usize::from(checked.verdict == Verdict::NotLinearizable);
    match checked.verdict {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable => {
            problems.push(format!("not linearizable: {}", checked.summary()));
            let html = render_html(&KvModel::new(), &history, &checked);
            std::fs::write(dir.join("violation.html"), html).map_err(io("write violation.html"))?;
        }
        Verdict::Unknown => problems.push("the checker ran out of budget: unknown".into()),
    }
    let audit = check::audit_appends(&records, &final_values);
    push_audit_problems(&audit, &mut problems);
    for (node, log_line) in panics_in_logs(&cluster) {
        problems.push(format!("node {node} log: {log_line}"));
    }
    let unavailability = report::unavailability(&records, &events);
    let history_json = history.to_json(&KvModel::new());
    std::fs::write(
        dir.join("history.json"),
        serde_json::to_string(&history_json).expect("a JSON value serializes"),
    )
    .map_err(io("write history.json"))?;
    let mut timeline: Vec<&FaultEvent> = events.iter().chain(&reshapes).collect();
    timeline.sort_by_key(|event| event.start_us);
    std::fs::write(
        dir.join("timeline.json"),
        serde_json::to_string_pretty(&timeline).expect("events serialize"),
    )
    .map_err(io("write timeline.json"))?;
    std::fs::write(dir.join("plot.svg"), report::plot_svg(&records, &events))
        .map_err(io("write plot.svg"))?;

    let summary = RunSummary {
        seed: config.seed,
        passed: problems.is_empty(),
        operations: summary_counts.total,
        ok: summary_counts.ok,
        unknown: summary_counts.unknown,
        failed: summary_counts.failed,
        faults: events.len(),
        reshapes: reshapes.len(),
        reshapes_applied: reshapes
            .iter()
            .filter(|event| event.target.ends_with(": applied"))
            .count(),
        violations,
        lost_writes: audit.lost.len(),
        problems,
        unavailability,
        dir: dir.clone(),
    };
    let report_text = report_markdown(
        config,
        &summary,
        &events,
        &reshapes,
        &audit,
        &checked.summary(),
    );
    std::fs::write(dir.join("report.md"), report_text).map_err(io("write report.md"))?;
    let summary_json = serde_json::json!({
        "seed": summary.seed,
        "passed": summary.passed,
        "operations": summary.operations,
        "ok": summary.ok,
        "unknown": summary.unknown,
        "failed": summary.failed,
        "faults": summary.faults,
        "reshapes": summary.reshapes,
        "reshapes_applied": summary.reshapes_applied,
        "violations": summary.violations,
        "lost_writes": summary.lost_writes,
        "problems": summary.problems,
        "unavailability": summary.unavailability,
    });
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary_json).expect("a JSON value serializes"),
    )
    .map_err(io("write summary.json"))?;
    std::fs::write(dir.join("verdict.txt"), summary.verdict_line() + "\n")
        .map_err(io("write verdict.txt"))?;
    Ok(summary)
}

/// Sleeps until `at` after the workload started, restarting any node that
/// exited on its own (a crash is a finding: it is reported).
async fn sleep_until(log: &Log, at: Duration, cluster: &mut Cluster, problems: &mut Vec<String>) {
    loop {
        for (node, status) in cluster.exited() {
            let message = format!("node {node} exited by itself ({status}); restarted");
            eprintln!("chaos: {message}");
            problems.push(message);
            let _ = cluster.start(node);
        }
        let now = log.start().elapsed();
        if now >= at {
            return;
        }
        tokio::time::sleep((at - now).min(Duration::from_millis(100))).await;
    }
}

/// Every data replica reports the controller's latest configuration, and
/// every shard of it has an owner among the groups.
async fn wait_converged(cluster: &Cluster, timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    let mut last_problem = String::new();
    while started.elapsed() < timeout {
        match converged(cluster).await {
            Ok(()) => return Ok(()),
            Err(problem) => last_problem = problem,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(format!("not converged within {timeout:?}: {last_problem}"))
}

async fn converged(cluster: &Cluster) -> Result<(), String> {
    let address = cluster.grpc_addr(1);
    let mut admin = AdminClient::connect(format!("http://{address}"))
        .await
        .map_err(|error| error.to_string())?;
    let status = admin
        .status(StatusRequest {})
        .await
        .map_err(|error| error.to_string())?
        .into_inner();
    let groups: BTreeSet<u64> = status.groups.iter().map(|group| group.gid).collect();
    if let Some(shard) = status
        .shard_owners
        .iter()
        .position(|owner| !groups.contains(owner))
    {
        return Err(format!(
            "shard {shard} of configuration {} has no owning group",
            status.config_num
        ));
    }
    for node in 1..=NODE_COUNT {
        let address = cluster.grpc_addr(node);
        let mut admin = AdminClient::connect(format!("http://{address}"))
            .await
            .map_err(|error| format!("node {node}: {error}"))?;
        let reply = admin
            .node_status(NodeStatusRequest {})
            .await
            .map_err(|error| format!("node {node}: {error}"))?
            .into_inner();
        for replica in reply.replicas {
            if replica.role == "data" && replica.config_num != status.config_num {
                return Err(format!(
                    "node {node}'s group {} replica is at configuration {}, the controller at {}",
                    replica.gid, replica.config_num, status.config_num
                ));
            }
        }
    }
    Ok(())
}

/// Reads every append key once the workload stopped, retrying for a while;
/// each successful read is recorded in the history too.
async fn read_back(cluster: &Cluster, log: &Log) -> BTreeMap<String, Option<String>> {
    let keys: BTreeSet<String> = log
        .records()
        .iter()
        .filter(|record| matches!(record.input, KvInput::Append { .. }))
        .map(|record| record.input.key().to_string())
        .collect();
    let client = harness_client(cluster, Duration::from_secs(5));
    let mut values = BTreeMap::new();
    for key in keys {
        for _attempt in 0..6 {
            let call_us = log.now_us();
            let result = client.get(key.as_bytes()).await;
            let value = match result {
                Ok(value) => value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
                Err(_) => continue,
            };
            log.push(OpRecord {
                client: 0,
                front: Front::Grpc,
                input: KvInput::Get { key: key.clone() },
                call_us,
                end_us: log.now_us(),
                ending: Ending::Ok(KvOutput::Value(value.clone())),
            });
            values.insert(key.clone(), value);
            break;
        }
    }
    values
}

fn push_audit_problems(audit: &AppendAudit, problems: &mut Vec<String>) {
    let list = |items: &[String]| {
        let shown: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
        format!("{} ({})", items.len(), shown.join(", "))
    };
    if !audit.lost.is_empty() {
        problems.push(format!("acknowledged appends lost: {}", list(&audit.lost)));
    }
    if !audit.duplicated.is_empty() {
        problems.push(format!("appends duplicated: {}", list(&audit.duplicated)));
    }
    if !audit.phantom.is_empty() {
        problems.push(format!("tokens no append sent: {}", list(&audit.phantom)));
    }
    if !audit.unread.is_empty() {
        problems.push(format!(
            "append keys unreadable at the end: {}",
            list(&audit.unread)
        ));
    }
}

/// Lines of the node logs that report a panic.
/// Lines in the nodes' logs (kept across restarts) that mean a bug: a
/// panic, or an early answer (asynchronous replication) that its entry
/// did not give when applied, which a node killed later cannot report
/// any other way.
const ALARMS: [&str; 2] = [
    "panicked",
    "a write answered early applied with another output",
];

fn panics_in_logs(cluster: &Cluster) -> Vec<(u64, String)> {
    let mut found = Vec::new();
    for node in 1..=NODE_COUNT {
        let text = std::fs::read_to_string(cluster.log_path(node)).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|line| ALARMS.iter().any(|alarm| line.contains(alarm)))
        {
            found.push((node, line.chars().take(300).collect()));
        }
    }
    found
}

fn report_markdown(
    config: &RunConfig,
    summary: &RunSummary,
    events: &[FaultEvent],
    reshapes: &[FaultEvent],
    audit: &AppendAudit,
    checker_summary: &str,
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# distcache-chaos run, seed {}\n", config.seed);
    let _ = writeln!(text, "{}\n", summary.verdict_line());
    let _ = writeln!(
        text,
        "Workload {:?} ({:?} heal), {} gRPC + {} RESP clients, op timeout {:?}, faults: {}.\n",
        config.duration,
        config.heal,
        config.grpc_clients,
        config.resp_clients,
        config.op_timeout,
        config
            .kinds
            .iter()
            .map(|kind| kind.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !config.extra_config.is_empty() {
        let _ = writeln!(
            text,
            "Extra node configuration: `{}`\n",
            config.extra_config.trim()
        );
    }
    let _ = writeln!(text, "## Problems\n");
    if summary.problems.is_empty() {
        let _ = writeln!(text, "None.\n");
    }
    for problem in &summary.problems {
        let _ = writeln!(text, "- {problem}");
    }
    let _ = writeln!(text, "\n## Checks\n");
    let _ = writeln!(text, "- linearizability (per key): {checker_summary}");
    let _ = writeln!(
        text,
        "- appends: {} keys, {} acknowledged, {} lost, {} duplicated, {} phantom, {} unreadable",
        audit.keys,
        audit.acknowledged,
        audit.lost.len(),
        audit.duplicated.len(),
        audit.phantom.len(),
        audit.unread.len()
    );
    let _ = writeln!(text, "\n## Fault timeline and unavailability\n");
    let _ = writeln!(
        text,
        "| start (s) | end (s) | fault | target | longest gap on one key (s) | key |\n|---|---|---|---|---|---|"
    );
    for (event, gap) in events.iter().zip(&summary.unavailability) {
        let _ = writeln!(
            text,
            "| {:.1} | {:.1} | {} | {} | {:.2} | {} |",
            event.start_us as f64 / 1e6,
            event.end_us as f64 / 1e6,
            event.kind,
            event.target,
            gap.longest_us as f64 / 1e6,
            gap.key
        );
    }
    if config.reshape {
        let _ = writeln!(
            text,
            "\n## Reshapes during the faults\n\n| start (s) | end (s) | reshape | what, outcome |\n|---|---|---|---|"
        );
        for event in reshapes {
            let _ = writeln!(
                text,
                "| {:.1} | {:.1} | {} | {} |",
                event.start_us as f64 / 1e6,
                event.end_us as f64 / 1e6,
                event.kind.trim_start_matches("reshape:"),
                event.target
            );
        }
    }
    let _ = writeln!(
        text,
        "\nFiles: `history.json` (the checker's format), `plot.svg`, `timeline.json`, `node*.log`, `node*.toml`{}.",
        if summary.violations > 0 {
            ", `violation.html`"
        } else {
            ""
        }
    );
    text
}

/// The default location of the `distcache` binary: next to this one
/// (`target/debug/distcache-chaos` -> `target/debug/distcache`).
pub fn default_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("distcache"), dir.parent()?.join("distcache")]
        .into_iter()
        .find(|path| path.is_file())
}

/// Whether `path` looks runnable.
pub fn binary_exists(path: &Path) -> bool {
    path.is_file()
}
