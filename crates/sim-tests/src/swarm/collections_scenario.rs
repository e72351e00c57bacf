//! Collections under a random fault mix (issue 20): every type (hashes,
//! lists, sets, sorted sets, and strings beside them) under faults and
//! shard migrations.
//!
//! Three groups of three and a controller, as in the shardkv scenario. The
//! seed picks whether the network loses messages and whether snapshots are
//! taken. Clients run random collection commands (the multi-key `STORE`
//! and move forms and the random ones included; see
//! [`crate::collections`]) on the keys of three hash tags while every
//! group joins and the first leaves (so shards migrate under load on every
//! seed), then while the shardkv scenario's fault injector joins and
//! leaves groups, crashes and
//! restarts replicas, splits a group, heals and flips message loss, for
//! the same fault phase.
//!
//! Then the heal phase: faults stop, every replica restarts and
//! reconnects; within a bound every shard must end with exactly one owner.
//! A final read of every key is recorded, and the whole history must be
//! linearizable under the `collections` model. Last, **replicas equal key
//! by key**: once the three replicas of a group have applied the same log
//! index, each one's keys (every shard it serves, scanned) and each key's
//! type, full contents and TTL, read from its own state machine, must be
//! the same on all three.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use linearizability::{CollectionsInput, CollectionsModel, MemoryBudget, StepBudget, Verdict};
use madsim::rand::{Rng, thread_rng};

use super::Report;
use super::shardkv_scenario::{converge, inject_faults};
use crate::collections::{CollectionsRecorder, replica_contents, run_input, run_one, tag_keys};
use crate::shardkv::{GROUP_SERVERS, Tester};

/// How long, once ownership settled, the replicas of each group get to
/// apply the same log index.
const REPLICAS_CATCH_UP_BOUND: Duration = Duration::from_secs(30);
const CLIENTS: usize = 3;
const GROUPS: usize = 3;
/// Apart from the other layers' nodes in the same simulation (clients on
/// the subnet after it).
const SUBNET: u8 = 42;
const TAGS: [&str; 3] = ["c", "k", "q"];
/// The checker's bounds: a history this scenario makes is decided far
/// below them; reaching one is reported as a failure, not a pass.
const CHECK_STEPS_MAX: u64 = 50_000_000;
const CHECK_MEMO_BYTES_MAX: u64 = 1 << 30;

pub async fn run() -> Report {
    let mut rng = thread_rng();
    let lossy = rng.gen_bool(0.5);
    let max_raft_state = [None, Some(1000)][rng.gen_range(0..2)];
    let tester = Tester::on_subnet(GROUPS, true, max_raft_state, SUBNET);
    let mut report = Report {
        layer: "collections (shardkv)",
        nodes: GROUPS * GROUP_SERVERS + GROUP_SERVERS,
        clients: CLIENTS,
        ..Report::default()
    };
    tracing::info!(lossy, ?max_raft_state, "collections swarm: setup");
    tester.join(&[0]).await;
    tester.net().set_reliable(!lossy);

    let recorder = CollectionsRecorder::new();
    let start = labrpc::runtime::now();
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicU64::new(0));
    let gave_up = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CLIENTS as u64)
        .map(|client| {
            let (recorder, stop) = (recorder.clone(), Arc::clone(&stop));
            let (finished, gave_up) = (Arc::clone(&finished), Arc::clone(&gave_up));
            tester.make_client().spawn(move |clerk| async move {
                while !stop.load(Ordering::SeqCst) {
                    let tag = TAGS[thread_rng().gen_range(0..TAGS.len())];
                    let known = run_one(clerk.inner(), &recorder, start, client, tag).await;
                    let counter = if known { &finished } else { &gave_up };
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // Migrations under load whatever the seed draws: every group joins,
    // then the first leaves (its shards move to the other two); the fault
    // mix may move them again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tester.join(&[1, 2]).await;
    *report.faults.entry("join").or_default() += 2;
    tokio::time::sleep(Duration::from_millis(500)).await;
    tester.leave(&[0]).await;
    *report.faults.entry("leave").or_default() += 1;
    let mut joined = [false, true, true];
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
            "heal: within the bound every shard has exactly one owner holding it \
             (configuration {})",
            latest.num
        ),
        converged,
    );

    let unread = final_reads(&tester, &recorder, start).await;
    report.check(
        "heal: every key reads back (its type and its whole contents)",
        if unread.is_empty() {
            Ok(())
        } else {
            Err(format!("reads of {unread:?} gave up"))
        },
    );
    report.check(
        "the whole history (every acknowledged command, the final reads) is linearizable \
         under the collections model",
        check_history(&recorder),
    );
    let (name, outcome) = match replicas_equal(&tester).await {
        Ok(keys) => (
            format!(
                "heal: the replicas of each group hold the same keys with the same values, \
                 key by key ({keys} keys in all, each compared on the three replicas of its \
                 group)"
            ),
            Ok(()),
        ),
        Err(problem) => (
            "heal: the replicas of each group hold the same keys with the same values, \
             key by key"
                .to_owned(),
            Err(problem),
        ),
    };
    report.check(&name, outcome);

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

/// Reads, recorded, every key of every tag: its type, and its contents as
/// the type its name suggests (another type answers `WRONGTYPE`, which the
/// model checks as well). Returns the keys whose reads gave up.
async fn final_reads(
    tester: &Tester,
    recorder: &CollectionsRecorder,
    start: tokio::time::Instant,
) -> Vec<String> {
    let recorder = recorder.clone();
    tester
        .make_client()
        .run(move |clerk| async move {
            let reader = CLIENTS as u64;
            let mut unread = Vec::new();
            for key in TAGS.iter().flat_map(|tag| tag_keys(tag)) {
                let contents = read_whole(&key);
                let type_read = CollectionsInput::Type { key: key.clone() };
                for input in [type_read, contents] {
                    if !run_input(clerk.inner(), &recorder, start, reader, input, 0).await {
                        unread.push(key.clone());
                    }
                }
            }
            unread
        })
        .await
}

/// The read of a key's whole contents, by the type its name suggests
/// ([`tag_keys`] names them `h`, `l1`, `s1`, `z1`, `str`, ...).
fn read_whole(key: &str) -> CollectionsInput {
    let key = key.to_owned();
    let name = key.rsplit('}').next().unwrap_or_default();
    match name.chars().next() {
        Some('h') => CollectionsInput::HGetAll { key },
        Some('l') => CollectionsInput::LRange {
            key,
            start: 0,
            stop: -1,
        },
        Some('s') if name != "str" => CollectionsInput::SMembers { key },
        Some('z') => CollectionsInput::ZRange {
            key,
            start: 0,
            stop: -1,
            reverse: false,
        },
        _ => CollectionsInput::Get { key },
    }
}

fn check_history(recorder: &CollectionsRecorder) -> Result<(), String> {
    let history = recorder
        .history()
        .map_err(|error| format!("the history is malformed: {error}"))?;
    let budget = (
        StepBudget::new(CHECK_STEPS_MAX),
        MemoryBudget::bytes(CHECK_MEMO_BYTES_MAX),
    );
    let result = linearizability::check(&CollectionsModel, &history, budget);
    match result.verdict {
        Verdict::Linearizable => {
            tracing::info!(
                "collections history is linearizable: {} operations, {}",
                history.len(),
                result.summary()
            );
            Ok(())
        }
        verdict => Err(format!(
            "{} operations: {verdict}\n{}",
            history.len(),
            result.explain(&CollectionsModel, &history)
        )),
    }
}

/// One replica's applied index and contents (`None`: it is down).
type ReplicaView = Option<(u64, Result<BTreeMap<String, String>, String>)>;

/// Waits until the replicas of each group have applied the same index,
/// then compares their contents key by key. Returns how many keys each
/// replica holds in total, or what differs.
async fn replicas_equal(tester: &Tester) -> Result<usize, String> {
    let deadline = labrpc::runtime::now() + REPLICAS_CATCH_UP_BOUND;
    let mut keys = 0;
    for group in 0..GROUPS {
        loop {
            // One synchronous look at all three replicas: nothing applies
            // in between.
            let views: Vec<ReplicaView> = (0..GROUP_SERVERS)
                .map(|replica| {
                    tester.with_machine(group, replica, |machine, applied| {
                        (applied, replica_contents(machine))
                    })
                })
                .collect();
            let applied: Vec<Option<u64>> = views
                .iter()
                .map(|view| view.as_ref().map(|(applied, _)| *applied))
                .collect();
            let caught_up = applied.iter().all(Option::is_some)
                && applied.windows(2).all(|pair| pair[0] == pair[1]);
            if !caught_up {
                if labrpc::runtime::now() >= deadline {
                    return Err(format!(
                        "group {}: the replicas never applied the same index (applied: \
                         {applied:?})",
                        tester.gid(group)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let mut contents = Vec::new();
            for (replica, view) in views.into_iter().enumerate() {
                let (_, read) = view.expect("caught up: every replica runs");
                contents.push(read.map_err(|problem| {
                    format!("group {} replica {replica}: {problem}", tester.gid(group))
                })?);
            }
            compare(tester.gid(group), &contents)?;
            keys += contents[0].len();
            break;
        }
    }
    Ok(keys)
}

/// The first key on which replica 0 and another replica differ, if any.
fn compare(gid: u64, contents: &[BTreeMap<String, String>]) -> Result<(), String> {
    let first = &contents[0];
    for (replica, other) in contents.iter().enumerate().skip(1) {
        for key in first.keys().chain(other.keys()) {
            if first.get(key) != other.get(key) {
                return Err(format!(
                    "group {gid}: key {key:?} is {:?} on replica 0 and {:?} on replica \
                     {replica}",
                    first.get(key),
                    other.get(key)
                ));
            }
        }
    }
    Ok(())
}
