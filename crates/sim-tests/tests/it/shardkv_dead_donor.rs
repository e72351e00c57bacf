//! shardkv under simulation, issue 13: a donor group dies for good while
//! a configuration moves its shards away. Its receiver blocks (and, not
//! moving on, blocks the group that receives from it in turn); status says
//! which shard waits on which group since when. The operator declares the
//! dead group lost; the receivers install its shards empty (marked lost)
//! and proceed through later configurations, and every other shard's
//! acknowledged writes are intact (the history without the lost shards'
//! keys is checked for linearizability; those keys read as missing).
//! Same tester as `shardkv.rs` (3 groups x 3 servers, 10 shards, a
//! 3-replica controller).

#![cfg(madsim)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shardkv::key_to_shard;
use sim_tests::harness::{phase, wait_until, within};
use sim_tests::shardkv::{SHARDS, Tester, keys, random_string};

const TEST_LIMIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(100);

/// Every running replica of `group` is at configuration `num`.
fn group_at(tester: &Tester, group: usize, num: u64) -> bool {
    let statuses = tester.statuses(group);
    !statuses.is_empty() && statuses.iter().all(|status| status.config_num == num)
}

#[madsim::test]
async fn a_dead_donor_declared_lost_unblocks_its_receivers() {
    within(
        "a_dead_donor_declared_lost_unblocks_its_receivers",
        TEST_LIMIT,
        dead_donor_scenario(true),
    )
    .await;
}

/// The same on a lossy network (messages dropped and delayed), snapshots
/// at 1000 bytes of Raft state.
#[madsim::test]
async fn a_dead_donor_declared_lost_on_a_lossy_network() {
    within(
        "a_dead_donor_declared_lost_on_a_lossy_network",
        TEST_LIMIT,
        dead_donor_scenario(false),
    )
    .await;
}

async fn dead_donor_scenario(reliable: bool) {
    let tester = Tester::new(3, true, (!reliable).then_some(1000));
    tester.net().set_reliable(reliable);
    let (dead, receiver, third) = (0, 1, 2);
    let (dead_gid, receiver_gid) = (tester.gid(dead), tester.gid(receiver));
    let client = tester.make_client();

    phase("groups 100 and 101 serve; every key is written");
    tester.join(&[dead, receiver]).await;
    let keys = keys(20);
    let mut values = Vec::new();
    for key in &keys {
        let value = random_string(8);
        client.put(key, &value).await.expect("put succeeds");
        values.push(value);
    }
    let before = tester.query().await;
    let lost_shards: BTreeSet<usize> = before.shards_of(dead_gid).into_iter().collect();
    assert!(!lost_shards.is_empty());
    let is_lost_key = |key: &String| lost_shards.contains(&key_to_shard(key.as_bytes(), SHARDS));
    let lost_keys: BTreeSet<String> = keys
        .iter()
        .filter(|key| is_lost_key(key))
        .cloned()
        .collect();

    phase("writers on the keys that survive, for the whole test");
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = keys
        .iter()
        .zip(&values)
        .filter(|(key, _)| !is_lost_key(key))
        .map(|(key, value)| {
            let writer = tester.make_client();
            let (key, mut value, done) = (key.clone(), value.clone(), Arc::clone(&done));
            writer.spawn(move |clerk| async move {
                for _ in 0..100_000 {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let suffix = random_string(3);
                    // An unknown outcome ends the writer (the history check
                    // covers it).
                    clerk.append(&key, &suffix).await?;
                    value.push_str(&suffix);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Some((key, value))
            })
        })
        .collect();

    phase("group 100 dies for good; it leaves, then 102 joins");
    tester.shutdown_group(dead);
    tester.leave(&[dead]).await;
    let left = tester.query().await.num;
    tester.join(&[third]).await;
    let joined = tester.query().await.num;

    phase("101 is blocked on 100 and stays at the leave's configuration");
    wait_until(
        "101 waits on 100 for 2 s",
        Duration::from_secs(20),
        POLL,
        || {
            let statuses = tester.statuses(receiver);
            async move {
                statuses.iter().any(|status| {
                    status.waiting.iter().any(|wait| {
                        wait.waiting_on_group == dead_gid
                            && wait.waiting_since_config == left
                            && wait.waiting_for_ms >= 2000
                    })
                })
            }
        },
    )
    .await;
    for status in tester.statuses(receiver) {
        assert_eq!(status.config_num, left, "101 cannot move past the leave");
        let waited: BTreeSet<usize> = status
            .waiting
            .iter()
            .filter(|wait| wait.waiting_on_group == dead_gid)
            .map(|wait| wait.shard)
            .collect();
        assert_eq!(waited, lost_shards, "status names every shard 100 held");
    }
    // 102 took the join's configuration but waits on 101, which is
    // not at that configuration and so cannot hand over: the block
    // spreads.
    for status in tester.statuses(third) {
        assert!(
            status
                .waiting
                .iter()
                .any(|wait| wait.waiting_on_group == receiver_gid
                    && wait.waiting_since_config == joined),
            "102 waits on 101: {:?}",
            status.waiting
        );
    }

    phase("the operator declares 100 lost");
    let declared_at = labrpc::runtime::now();
    let declared = tester.declare_lost(dead).await;
    assert!(declared > joined);

    phase("the receivers proceed to the latest configuration");
    wait_until(
        "101 and 102 reach the declaration",
        Duration::from_secs(30),
        POLL,
        || {
            let reached =
                group_at(&tester, receiver, declared) && group_at(&tester, third, declared);
            async move { reached }
        },
    )
    .await;
    println!(
        "dead donor ({} network): the receivers reached the declaration {:?} (simulated) \
         after the operator declared the donor lost",
        if reliable { "reliable" } else { "lossy" },
        declared_at.elapsed()
    );
    for status in tester
        .statuses(receiver)
        .iter()
        .chain(&tester.statuses(third))
    {
        assert!(
            status.waiting.is_empty(),
            "nothing waits: {:?}",
            status.waiting
        );
    }
    let config = tester.query().await;
    let mut marked = BTreeSet::new();
    for group in [receiver, third] {
        for status in tester.statuses(group) {
            for (&shard, lost) in &status.lost_shards {
                assert_eq!(lost.previous_owner, dead_gid, "shard {shard}");
                assert!(lost_shards.contains(&shard), "shard {shard} was 100's");
                marked.insert(shard);
            }
        }
    }
    assert!(
        lost_shards
            .iter()
            .all(|&shard| config.owner(shard) != Some(receiver_gid) || marked.contains(&shard)),
        "101's shards that 100 held are marked lost"
    );

    phase("a later configuration applies too: the poller advances");
    tester.move_shard(0, receiver).await;
    let moved = tester.query().await.num;
    wait_until(
        "every group reaches the move",
        Duration::from_secs(30),
        POLL,
        || {
            let reached = group_at(&tester, receiver, moved) && group_at(&tester, third, moved);
            async move { reached }
        },
    )
    .await;

    phase("keys of 100's shards read as missing; the others kept every write");
    done.store(true, Ordering::Relaxed);
    for writer in writers {
        if let Some((key, expected)) = writer.await.expect("writer task") {
            client.check_get(&key, &expected).await;
        }
    }
    for key in &lost_keys {
        assert_eq!(
            client.get(key).await,
            Some(None),
            "{key} was in a lost shard: it reads as missing"
        );
    }
    tester.check_linearizable_except(&lost_keys);

    if reliable {
        phase("100's replicas start again from their disks: they find they were declared lost");
        tester.start_group(dead).await;
        wait_until(
            "every replica of 100 reports it was declared lost and holds nothing",
            Duration::from_secs(20),
            POLL,
            || {
                let statuses = tester.statuses(dead);
                async move {
                    statuses.len() == 3
                        && statuses
                            .iter()
                            .all(|status| status.declared_lost && status.shard_states.is_empty())
                }
            },
        )
        .await;
        for key in &lost_keys {
            assert_eq!(
                client.get(key).await,
                Some(None),
                "{key} still reads as missing"
            );
        }
    }
}
