//! shardkv under simulation: client-side caching's write fence across a
//! shard move (issue 22), the hole `client_cache` seed 19 found (fixed in
//! commit 9cd7100, `change_feed`). Two groups (100 and 101) of three
//! servers, 10 shards, a 3-replica controller, a reliable network; the
//! feed poller P is played by the test with raw `WatchChanges` calls.

#![cfg(madsim)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardkv::{Changes, Op, Outcome, POLLER_LEASE, ShardKvRequest, WatchChanges, key_to_shard};
use sim_tests::harness::{phase, wait_until, within};
use sim_tests::shardkv::{GROUP_SERVERS, SHARDS, Tester, keys};

const TEST_LIMIT: Duration = Duration::from_secs(120);
/// How long P's polls of group 101 wait for news (a node's poller waits
/// longer; a short wait only makes a missing `Reset` show sooner).
const POLL_WAIT_MS: u64 = 500;
/// How long P's last poll of group 100 waits: briefly, so that it is not
/// pending there when the put applies.
const LAST_POLL_WAIT_MS: u64 = 10;
/// Rounds over a group's replicas before a request is given up.
const MAX_ROUNDS: usize = 200;
const ROUND_PAUSE: Duration = Duration::from_millis(20);

/// The hole, step by step: (1) P polls groups 100 and 101; (2) P stops
/// polling 100 (as a poller cut off from it would), keeping its lease
/// there; (3) a put of key k applies in 100 and is held back by the
/// fence (P has not handed its index through); (4) k's shard moves to
/// 101, the exactly-once record with it; (5) the writer's retry (same
/// client id and seq) reaches 101, which answers it from that record,
/// fenced by its own pollers at its read index.
///
/// The guarantee checked: before 101 acknowledges the retry, P has had
/// from 101 an answer that is `Reset`, or names k, with `through` at or
/// past the shard's install (so P's clients dropped what they cached of
/// k). The install's index is bracketed by sampling 101's replicas every
/// simulated millisecond (the check uses the bracket's lower end, an
/// index the install is certainly after). The scenario is checked too:
/// the retry is acknowledged while P still holds its lease at 100 and the
/// first attempt is still held there, and from the record (101's feed
/// never names k). Red without the fix (the install is not a gap in 101's
/// feed: P gets only empty `Keys` from 101, and its next poll opens the
/// fence). The put and its retry are raw requests, so no history is
/// checked here.
#[madsim::test]
async fn a_retry_answered_from_a_moved_record_waits_for_the_pollers_reset() {
    within(
        "a_retry_answered_from_a_moved_record_waits_for_the_pollers_reset",
        TEST_LIMIT,
        moved_record_scenario(),
    )
    .await;
}

async fn moved_record_scenario() {
    let tester = Tester::new(2, true, None);
    let (old_group, new_group) = (0, 1);
    let (old_addrs, new_addrs) = (
        tester.group_addrs(old_group).to_vec(),
        tester.group_addrs(new_group).to_vec(),
    );

    phase("groups 100 and 101 serve; k is a key of a shard of 100");
    tester.join(&[old_group, new_group]).await;
    let config = tester.query().await;
    let key = key_owned_by(&config, tester.gid(old_group));
    let shard = key_to_shard(key.as_bytes(), SHARDS);
    let key_bytes = key.as_bytes().to_vec();
    let key_of_new = key_owned_by(&config, tester.gid(new_group));

    phase("each group answers a write before anyone polls");
    // A leader's first write of its term opens the fence for the term
    // when the log says no poller may hold a lease (it does not yet);
    // after P's marker it would hold every write for a lease since the
    // term began. Opened now, the first attempt in 100 is held by P's
    // lease alone, and the retry in 101 by P's cursor alone.
    let writer = tester.make_client();
    writer.put(&key, "before").await.expect("put to 100");
    writer.put(&key_of_new, "before").await.expect("put to 101");

    phase("P polls 100 twice, then no more; P keeps polling 101");
    let poller_node = tester.make_client();
    let poller_id: u64 = madsim::rand::random();
    let poll_client = labrpc::Client::new(labrpc::ClientConfig {
        timeout: Duration::from_secs(2),
        ..labrpc::ClientConfig::default()
    });
    let last_poll_of_old_sent = {
        let (client, addrs) = (poll_client.clone(), old_addrs.clone());
        poller_node
            .run(move |_| async move {
                // The first poll waits while the leader writes the
                // marker that says pollers may exist, and answers Reset.
                let first = poll(&client, &addrs, poller_id, 0, POLL_WAIT_MS).await;
                let sent_at = labrpc::runtime::now();
                poll(
                    &client,
                    &addrs,
                    poller_id,
                    through(&first),
                    LAST_POLL_WAIT_MS,
                )
                .await;
                sent_at
            })
            .await
    };
    // P's answers from 101, in the order they came.
    let answers_from_new: Arc<Mutex<Vec<Changes>>> = Arc::default();
    let polling = Arc::new(AtomicBool::new(true));
    let poll_loop = {
        let (client, addrs) = (poll_client.clone(), new_addrs.clone());
        let (answers, polling) = (Arc::clone(&answers_from_new), Arc::clone(&polling));
        poller_node.spawn(move |_| async move {
            let mut cursor = 0;
            while polling.load(Ordering::Relaxed) {
                let answer = poll(&client, &addrs, poller_id, cursor, POLL_WAIT_MS).await;
                // P hands the answer to its clients, then polls after it.
                cursor = through(&answer);
                answers.lock().expect("answers lock").push(answer);
            }
        })
    };
    wait_until(
        "P's first answer from 101",
        Duration::from_secs(5),
        Duration::from_millis(10),
        || {
            let answered = !answers_from_new.lock().expect("answers lock").is_empty();
            async move { answered }
        },
    )
    .await;

    phase("a put of k applies in 100 and is held back by the fence");
    let value = b"moved-with-its-shard".to_vec();
    let request = ShardKvRequest {
        client_id: madsim::rand::random(),
        seq: 1,
        config_num: config.num,
        op: Op::Put {
            key: key_bytes.clone(),
            value: value.clone(),
            ttl_ms: None,
        },
    };
    let old_leader = (0..GROUP_SERVERS)
        .find(|&i| {
            tester
                .status(old_group, i)
                .is_some_and(|status| status.rsm.raft.is_leader)
        })
        .expect("group 100 has a leader after the join");
    let first_attempt_answered = Arc::new(AtomicBool::new(false));
    let first_attempt = {
        let (request, answered) = (request.clone(), Arc::clone(&first_attempt_answered));
        let leader_addr = old_addrs[old_leader];
        writer.spawn(move |_| async move {
            // Long enough for the fence to hold it for P's whole lease.
            let client = labrpc::Client::new(labrpc::ClientConfig {
                timeout: Duration::from_secs(10),
                ..labrpc::ClientConfig::default()
            });
            let reply = client.call(leader_addr, &request).await;
            answered.store(true, Ordering::Relaxed);
            reply
        })
    };
    wait_until(
        "the put applies in 100",
        Duration::from_secs(2),
        Duration::from_millis(1),
        || {
            let applied = holds_value(&tester, old_group, &key_bytes, &value);
            async move { applied }
        },
    )
    .await;
    assert!(
        !first_attempt_answered.load(Ordering::Relaxed),
        "the put applied in 100 must be held back: P has a lease there and has not handed it \
         through"
    );

    phase("k's shard moves to 101; the writer retries there");
    let moved_and_retried = async {
        tester.move_shard(shard, new_group).await;
        // Sent once 101 has installed the shard, so that its leader
        // answers the retry from the record that came with it (sent
        // earlier, the retry may be logged in 101 and deduplicated as it
        // applies: a write 101's feed holds, the path that was safe).
        wait_until(
            "every replica of 101 serves k's shard",
            Duration::from_secs(3),
            Duration::from_millis(1),
            || {
                let installed = (0..GROUP_SERVERS).all(|i| {
                    tester
                        .with_machine(new_group, i, |machine, _| serves(machine, shard))
                        .unwrap_or(false)
                });
                async move { installed }
            },
        )
        .await;
        let (request, answers) = (request.clone(), Arc::clone(&answers_from_new));
        writer
            .run(move |_| async move { retry_until_answered(&new_addrs, &request, &answers).await })
            .await
    };
    let retried = AtomicBool::new(false);
    let ((reply, answers_before_ack, acknowledged_at), install) = tokio::join!(
        async {
            let outcome = moved_and_retried.await;
            retried.store(true, Ordering::Relaxed);
            outcome
        },
        watch_install(&tester, new_group, shard, &retried),
    );
    println!(
        "write fence across a move: group 101 installed shard {shard} in ({}, {}], \
         acknowledged the retry {:?} after P's last poll of 100; P's answers from 101 \
         before it: {answers_before_ack:?}",
        install.served_by_none_through,
        install
            .first_served_at
            .map_or_else(|| "?".to_string(), |index| index.to_string()),
        acknowledged_at - last_poll_of_old_sent,
    );
    assert_eq!(reply, Outcome::Done, "the retry is answered as the put");

    phase("check: the scenario happened as described");
    assert!(
        install.first_served_at.is_some(),
        "group 101 never served shard {shard}, yet answered the retry"
    );
    assert!(
        acknowledged_at < last_poll_of_old_sent + POLLER_LEASE,
        "the retry was acknowledged {:?} after P's last poll of 100, after its lease there \
         ({POLLER_LEASE:?}): the move was too slow to reproduce the hole",
        acknowledged_at - last_poll_of_old_sent
    );
    assert!(
        !first_attempt_answered.load(Ordering::Relaxed),
        "the first attempt was still held in 100 when 101 acknowledged the retry"
    );
    assert!(
        !answers_before_ack.iter().any(|answer| matches!(
            answer,
            Changes::Keys { keys, .. } if keys.contains(&key_bytes)
        )),
        "expected 101 to answer the retry from the exactly-once record (its feed never naming \
         {key}); P's answers from 101: {answers_before_ack:?}"
    );

    phase("check: P was told before the retry was acknowledged");
    let told = answers_before_ack.iter().any(|answer| match answer {
        Changes::Reset { through } => *through > install.served_by_none_through,
        Changes::Keys { keys, through } => {
            *through > install.served_by_none_through && keys.contains(&key_bytes)
        }
    });
    assert!(
        told,
        "group 101 acknowledged the retry of the put of {key} (shard {shard}, installed after \
         index {}) before P had from 101 a Reset or {key} with `through` past the install; P's \
         answers from 101 before the acknowledgement: {answers_before_ack:?}",
        install.served_by_none_through
    );

    phase("the first attempt is answered once P's lease in 100 ran out; k reads the put");
    let first_reply = first_attempt.await.expect("client nodes are never killed");
    assert!(
        matches!(first_reply, Ok(Ok(Outcome::Done))),
        "the first attempt is answered as the put once P's lease ran out: {first_reply:?}"
    );
    polling.store(false, Ordering::Relaxed);
    poll_loop.await.expect("client nodes are never killed");
    writer
        .check_get(&key, std::str::from_utf8(&value).expect("UTF-8 value"))
        .await;
}

/// A key of a shard `gid` owns in `config`.
///
/// # Panics
/// If `gid` owns no shard there.
fn key_owned_by(config: &shardctrler::Config, gid: shardctrler::Gid) -> String {
    keys(SHARDS)
        .into_iter()
        .find(|key| config.owner(key_to_shard(key.as_bytes(), SHARDS)) == Some(gid))
        .unwrap_or_else(|| panic!("group {gid} owns no shard in configuration {}", config.num))
}

/// The `through` of an answer: the cursor of the next poll.
fn through(changes: &Changes) -> u64 {
    match changes {
        Changes::Keys { through, .. } | Changes::Reset { through } => *through,
    }
}

/// One poll of the group at `addrs` by `poller` (its leader answers; the
/// others are tried in turn).
///
/// # Panics
/// If the poll is refused a lease (`Busy`: P never holds a write back, so
/// it should not be), or no leader answers within [`MAX_ROUNDS`].
async fn poll(
    client: &labrpc::Client,
    addrs: &[SocketAddr],
    poller: u64,
    after: u64,
    wait_ms: u64,
) -> Changes {
    let request = WatchChanges {
        poller,
        after,
        wait_ms,
    };
    let mut last_error = String::new();
    for _ in 0..MAX_ROUNDS {
        for &addr in addrs {
            match client.call(addr, &request).await {
                Ok(Ok(changes)) => return changes,
                Ok(Err(api::Error::Busy { .. })) => {
                    panic!("{addr} refused P a lease (poll after {after})")
                }
                Ok(Err(error)) => last_error = format!("{addr}: {error}"),
                Err(error) => last_error = format!("{addr}: {error}"),
            }
        }
        tokio::time::sleep(ROUND_PAUSE).await;
    }
    panic!("no leader of {addrs:?} answered P's poll after {after} (last error: {last_error})")
}

/// Sends `request` to the group at `addrs` until one answers it `Ok`
/// (`WrongGroup` until the shard is installed there, `WrongLeader` from
/// the followers); returns the answer, P's answers from the group as they
/// stood when it came, and when it came.
///
/// # Panics
/// If nobody answers `Ok` within [`MAX_ROUNDS`].
async fn retry_until_answered(
    addrs: &[SocketAddr],
    request: &ShardKvRequest,
    answers: &Mutex<Vec<Changes>>,
) -> (Outcome, Vec<Changes>, tokio::time::Instant) {
    let client = labrpc::Client::new(labrpc::ClientConfig {
        timeout: Duration::from_secs(2),
        ..labrpc::ClientConfig::default()
    });
    for _ in 0..MAX_ROUNDS {
        for &addr in addrs {
            if let Ok(Ok(outcome)) = client.call(addr, request).await {
                let seen = answers.lock().expect("answers lock").clone();
                return (outcome, seen, labrpc::runtime::now());
            }
        }
        tokio::time::sleep(ROUND_PAUSE).await;
    }
    panic!("group at {addrs:?} never answered the retry")
}

/// Whether some replica of `group` holds `value` under `key`.
fn holds_value(tester: &Tester, group: usize, key: &[u8], value: &[u8]) -> bool {
    let get = Op::Get { key: key.to_vec() };
    (0..GROUP_SERVERS).any(|i| {
        tester
            .with_machine(group, i, |machine, _| {
                machine.read(&get, machine.now_ms()) == Ok(Outcome::Value(Some(value.to_vec())))
            })
            .unwrap_or(false)
    })
}

/// Whether `machine` serves `shard` (holds it, data installed).
fn serves(machine: &shardkv::ShardMachine, shard: usize) -> bool {
    machine
        .shard_states()
        .get(&shard)
        .is_some_and(|state| state.serves_clients())
}

/// Where a group installed a shard, as far as sampling its replicas shows:
/// after `served_by_none_through`, at or before `first_served_at`.
struct InstallBounds {
    /// The highest index some replica had applied while not serving the
    /// shard: the install is after it.
    served_by_none_through: u64,
    /// The lowest applied index at which a replica was seen serving it.
    first_served_at: Option<u64>,
}

/// Samples every replica of `group` each simulated millisecond until
/// `stop`: whether it serves `shard`, and the index it has applied (read
/// together).
async fn watch_install(
    tester: &Tester,
    group: usize,
    shard: usize,
    stop: &AtomicBool,
) -> InstallBounds {
    let mut bounds = InstallBounds {
        served_by_none_through: 0,
        first_served_at: None,
    };
    while !stop.load(Ordering::Relaxed) {
        for i in 0..GROUP_SERVERS {
            let sample = tester.with_machine(group, i, |machine, applied| {
                (serves(machine, shard), applied)
            });
            match sample {
                Some((false, applied)) => {
                    bounds.served_by_none_through = bounds.served_by_none_through.max(applied);
                }
                Some((true, applied)) => {
                    bounds.first_served_at =
                        Some(bounds.first_served_at.map_or(applied, |at| at.min(applied)));
                }
                None => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    bounds
}
