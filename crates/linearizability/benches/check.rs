//! Checking time for large generated histories, and what Lowe's memoization buys
//! over plain Wing-Gong (the named peer: the same search with the memo off).
//!
//! Run: `cargo bench -p linearizability --bench check`. The histories come from
//! `linearizability::synthetic` (a simulated sequential store, so they are
//! linearizable and the whole search space up to a witness is explored).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use linearizability::synthetic::{SyntheticShape, generate_kv_history};
use linearizability::{
    CheckOptions, History, KvInput, KvModel, KvOutput, Outcome, Unlimited, Verdict, check,
    check_with_options,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn shape(
    clients: u64,
    operations_per_client: usize,
    keys: usize,
    unknown_outcome_percent: u32,
) -> SyntheticShape {
    SyntheticShape {
        clients,
        operations_per_client,
        keys,
        unknown_outcome_percent,
        duration_max: 100,
    }
}

fn large_histories(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("check");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let cases = [
        (
            "10 clients x 1000 ops, 100 keys, 2% unknown",
            shape(10, 1000, 100, 2),
        ),
        ("50 clients x 1000 ops, 20 keys", shape(50, 1000, 20, 0)),
        (
            "15 clients x 200 ops, 5 keys, 2% unknown",
            shape(15, 200, 5, 2),
        ),
    ];
    for (name, shape) in cases {
        let history = generate_kv_history(shape, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(
            check(&KvModel::new(), &history, Unlimited).verdict,
            Verdict::Linearizable
        );
        group.bench_function(name, |bencher| {
            bencher.iter(|| check(&KvModel::new(), black_box(&history), Unlimited));
        });
    }
    group.finish();
}

/// Memoized versus plain search on one key with growing concurrency, on
/// linearizable histories (the search stops at the first witness). Plain
/// Wing-Gong is exponential in the concurrency, so the sizes stay small.
fn memoization_versus_plain(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("memo_vs_plain");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for clients in [4u64, 6, 8] {
        let history =
            generate_kv_history(shape(clients, 25, 1, 0), &mut ChaCha8Rng::seed_from_u64(2));
        compare(&mut group, &history, clients);
    }
    group.finish();
}

/// The same comparison on histories with one impossible read near the end:
/// now the whole space must be exhausted, which is where the memo matters.
fn memoization_versus_plain_on_violations(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("memo_vs_plain_violation");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for clients in [3u64, 4] {
        let history =
            generate_kv_history(shape(clients, 10, 1, 0), &mut ChaCha8Rng::seed_from_u64(2));
        let history = with_impossible_last_read(&history);
        assert_eq!(
            check(&KvModel::new(), &history, Unlimited).verdict,
            Verdict::NotLinearizable
        );
        compare(&mut group, &history, clients);
    }
    group.finish();
}

/// Replaces the answer of the last-called get with a value nobody wrote.
fn with_impossible_last_read(history: &History<KvInput, KvOutput>) -> History<KvInput, KvOutput> {
    let mut operations = history.operations().to_vec();
    let last_get = operations
        .iter()
        .enumerate()
        .filter(|(_, operation)| matches!(operation.input, KvInput::Get { .. }))
        .max_by_key(|(_, operation)| operation.call_time)
        .map(|(index, _)| index)
        .expect("the generated history has a get");
    if let Outcome::Returned { output, .. } = &mut operations[last_get].outcome {
        *output = KvOutput::Value(Some("never written".to_string()));
    }
    History::new(operations).expect("times are unchanged")
}

fn compare(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    history: &History<KvInput, KvOutput>,
    clients: u64,
) {
    for (name, memoize) in [("memo", true), ("plain", false)] {
        group.bench_with_input(
            BenchmarkId::new(name, clients),
            &history,
            |bencher, history| {
                bencher.iter(|| {
                    check_with_options(
                        &KvModel::new(),
                        black_box(history),
                        Unlimited,
                        CheckOptions {
                            memoize,
                            ..CheckOptions::default()
                        },
                    )
                });
            },
        );
    }
}

criterion_group!(
    benches,
    large_histories,
    memoization_versus_plain,
    memoization_versus_plain_on_violations
);
criterion_main!(benches);
