//! Collections under simulation (issues 16 and 20): hash, list, set and
//! sorted-set commands, their multi-key `STORE` and move forms and the
//! random ones, from several clients on a lossy network while groups join
//! and leave, every history checked by the linearizability checker under
//! the `collections` model (see `sim_tests::collections` for the workload).

#![cfg(madsim)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use linearizability::{CollectionsModel, Unlimited, Verdict};
use sim_tests::collections::{CollectionsRecorder, run_one};
use sim_tests::harness::{phase, within};
use sim_tests::shardkv::Tester;

const TEST_LIMIT: Duration = Duration::from_secs(120);
const CLIENTS: u64 = 3;
/// Each client runs commands until the groups have settled, at most this
/// many.
const COMMANDS_PER_CLIENT_MAX: u64 = 200;

/// Groups join, a shard moves, groups leave and come back, with pauses
/// between so that commands run under every configuration.
async fn groups_come_and_go(tester: &Tester) {
    let pause = || tokio::time::sleep(Duration::from_millis(800));
    pause().await;
    tester.join(&[1]).await;
    pause().await;
    tester.join(&[2]).await;
    pause().await;
    tester.move_shard(0, 2).await;
    pause().await;
    tester.leave(&[0]).await;
    pause().await;
    tester.leave(&[1]).await;
    pause().await;
    tester.join(&[0, 1]).await;
}

/// Three clients run random collection commands on the keys of two hash
/// tags (`{c}` and `{k}`) for as long as groups join, a shard moves and
/// groups leave on a lossy network; the whole history must be
/// linearizable under [`CollectionsModel`].
#[madsim::test]
async fn collection_ops_while_shards_move() {
    within("collection_ops_while_shards_move", TEST_LIMIT, async {
        let tester = Tester::new(3, true, Some(1000));
        tester.net().set_reliable(false);
        tester.join(&[0]).await;
        let recorder = CollectionsRecorder::new();
        let start = labrpc::runtime::now();
        phase(&format!(
            "{CLIENTS} clients run collection commands on tags {{c}} and {{k}} while groups join \
             and leave"
        ));
        let settled = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (recorder, settled) = (recorder.clone(), Arc::clone(&settled));
                tester.make_client().spawn(move |clerk| async move {
                    let mut known = 0;
                    for index in 0..COMMANDS_PER_CLIENT_MAX {
                        if settled.load(Ordering::SeqCst) {
                            break;
                        }
                        let tag = if (client + index) % 2 == 0 { "c" } else { "k" };
                        if run_one(clerk.inner(), &recorder, start, client, tag).await {
                            known += 1;
                        }
                    }
                    known
                })
            })
            .collect();
        groups_come_and_go(&tester).await;
        settled.store(true, Ordering::SeqCst);
        let mut known = 0;
        for worker in workers {
            known += worker.await.expect("client task");
        }
        let history = recorder
            .history()
            .expect("simulated clock never goes backwards");
        let operations = history.operations().len();
        assert!(
            operations as u64 >= CLIENTS * 20,
            "{operations} commands ran while the groups moved; expected at least {}",
            CLIENTS * 20
        );
        assert_eq!(
            operations as u64,
            known + history.unknown_outcome_count() as u64,
            "every call recorded"
        );
        let result = linearizability::check(&CollectionsModel, &history, Unlimited);
        assert!(
            result.verdict == Verdict::Linearizable,
            "{operations} operations: {:?}\n{}",
            result.verdict,
            result.explain(&CollectionsModel, &history)
        );
        phase(&format!(
            "linearizable: {operations} operations ({known} answered, {} unknown), {}",
            operations as u64 - known,
            result.summary()
        ));
    })
    .await;
}
