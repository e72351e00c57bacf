//! How long a shard of 10,000 keys (100-byte values) takes to move between
//! two groups, and the throughput of the shards that do not move before,
//! during and after the move (5 closed-loop clients). Simulated time on a
//! reliable network: the numbers depend on the seed, not on the machine or
//! the build profile, so the test profile serves:
//!
//! ```text
//! RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/sim \
//!   cargo test -p sim-tests --bench migration -- --seed 1 --seeds 3
//! # or, building in the release profile (slower to build, same numbers):
//! RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/sim \
//!   cargo bench -p sim-tests --bench migration
//! ```
//!
//! Each seed prints its numbers; the history of every seed is checked for
//! linearizability. Exit status 1 if a seed failed.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Shard migration benchmark (simulated time)")]
struct Arguments {
    #[command(flatten)]
    seeds: sim_tests::seeds::SeedRange,
    /// Passed by `cargo bench`; nothing to do with it.
    #[arg(long, hide = true)]
    bench: bool,
}

#[cfg(madsim)]
fn main() {
    let arguments = Arguments::parse();
    let mut failed_seeds = Vec::new();
    for seed in arguments.seeds.range() {
        println!("seed {seed}");
        let outcome = sim_tests::harness::run_seed(
            seed,
            simulation::TIME_LIMIT,
            simulation::bench_migration(),
        );
        if outcome.is_none() {
            println!("  seed {seed} FAILED (the message is above)");
            failed_seeds.push(seed);
        }
    }
    sim_tests::seeds::exit_if_failed("migration", &failed_seeds);
}

#[cfg(not(madsim))]
fn main() {
    let _ = Arguments::parse();
    sim_tests::seeds::exit_outside_simulation(
        "the migration benchmark runs only in simulation: RUSTFLAGS=\"--cfg madsim\" \
         CARGO_TARGET_DIR=target/sim cargo test -p sim-tests --bench migration",
    );
}

#[cfg(madsim)]
mod simulation {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use shardkv::key_to_shard;
    use sim_tests::harness::{phase, wait_until, within};
    use sim_tests::shardkv::{SHARDS, Tester, keys};

    /// Simulated time one seed may take.
    pub const TIME_LIMIT: Duration = Duration::from_secs(600);
    const VALUE_BYTES: usize = 100;
    const KEY_COUNT: usize = 10_000;

    /// See the file's docs.
    pub async fn bench_migration() {
        within("bench_migration", TIME_LIMIT, async {
            let tester = Tester::new(2, true, None);
            tester.join(&[0, 1]).await;
            let config = tester.query().await;
            let donor_gid = tester.gid(0);
            let moving = config
                .shards
                .iter()
                .position(|&gid| gid == donor_gid)
                .expect("group 100 owns a shard");
            let key_count = KEY_COUNT;
            let moving_keys: Arc<Vec<String>> = Arc::new(
                (0..)
                    .map(|index| format!("bench-{index}"))
                    .filter(|key| key_to_shard(key.as_bytes(), SHARDS) == moving)
                    .take(key_count)
                    .collect(),
            );
            phase("load 10k keys of 100 bytes into one shard");
            let loaders = 20;
            let load_start = labrpc::runtime::now();
            let tasks: Vec<_> = (0..loaders)
                .map(|loader| {
                    let keys = Arc::clone(&moving_keys);
                    tester.make_client().spawn(move |clerk| async move {
                        for key in keys.iter().skip(loader).step_by(loaders) {
                            clerk
                                .put(key, &"v".repeat(VALUE_BYTES))
                                .await
                                .expect("load put succeeds");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("loader task");
            }
            println!(
                "bench_migration: loaded {key_count} keys in {:?} (simulated)",
                load_start.elapsed()
            );

            phase("steady load on the shards that do not move");
            let unaffected: Arc<Vec<String>> = Arc::new(
                keys(SHARDS * 3)
                    .into_iter()
                    .filter(|key| key_to_shard(key.as_bytes(), SHARDS) != moving)
                    .collect(),
            );
            let completions = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
            let done = Arc::new(AtomicBool::new(false));
            let origin = labrpc::runtime::now();
            let workers: Vec<_> = (0..5)
                .map(|worker| {
                    let (keys, done, completions) = (
                        Arc::clone(&unaffected),
                        Arc::clone(&done),
                        Arc::clone(&completions),
                    );
                    tester.make_client().spawn(move |clerk| async move {
                        let mut index = worker;
                        while !done.load(Ordering::Relaxed) {
                            let key = &keys[index % keys.len()];
                            index += 5;
                            clerk.append(key, "x").await.expect("append succeeds");
                            completions
                                .lock()
                                .expect("completions")
                                .push(origin.elapsed());
                        }
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_secs(3)).await;
            let moved_at = origin.elapsed();
            tester.move_shard(moving, 1).await;
            let probe = tester.make_client();
            let probe_key = moving_keys[0].clone();
            // Both clocks run from the move: the first read served by the new
            // owner, and the old owner's deletion (which may come first).
            let (served_at, deleted_at) = futures::join!(
                async {
                    probe.check_get(&probe_key, &"v".repeat(VALUE_BYTES)).await;
                    origin.elapsed()
                },
                async {
                    wait_deleted(&tester, moving).await;
                    origin.elapsed()
                }
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
            done.store(true, Ordering::Relaxed);
            for worker in workers {
                worker.await.expect("worker task");
            }
            let completions = completions.lock().expect("completions").clone();
            let rate = |from: Duration, to: Duration| {
                let count = completions
                    .iter()
                    .filter(|&&at| at >= from && at < to)
                    .count();
                count as f64 / (to - from).as_secs_f64()
            };
            let before = rate(moved_at - Duration::from_secs(2), moved_at);
            let during = rate(moved_at, served_at.max(moved_at + Duration::from_millis(1)));
            let settled = served_at.max(deleted_at);
            let after = rate(settled, settled + Duration::from_secs(2));
            println!(
                "bench_migration: shard of {key_count} keys served by the new owner {:?} after the \
                 move, deleted by the old owner {:?} after it (simulated)",
                served_at - moved_at,
                deleted_at - moved_at
            );
            println!(
                "bench_migration: unaffected shards {before:.0} ops/s before, {during:.0} ops/s \
                 during, {after:.0} ops/s after the migration (5 clients, simulated)"
            );
            tester.check_linearizable();
        })
        .await;
    }

    /// Waits until no replica of group 100 holds `shard`.
    async fn wait_deleted(tester: &Tester, shard: usize) {
        wait_until(
            "the old owner deletes the moved shard",
            Duration::from_secs(60),
            Duration::from_millis(10),
            || async {
                tester
                    .statuses(0)
                    .iter()
                    .all(|status| !status.shard_states.contains_key(&shard))
            },
        )
        .await;
    }
}
