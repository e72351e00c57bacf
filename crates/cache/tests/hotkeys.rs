//! Hot-key detector: recall on a Zipf 0.99 stream, decay, bounded memory.

use std::collections::{BTreeMap, BTreeSet};

use cache::hotkeys::{HotKeyConfig, HotKeyDetector};
use cache::workload::zipf_trace;

#[test]
fn finds_the_true_top_ten_of_a_zipf_stream() {
    for seed in [2024, 7, 99] {
        check_top_ten_recall(seed);
    }
}

fn check_top_ten_recall(seed: u64) {
    // Seeded ChaCha8 via the workload module: the same stream every run.
    let stream = zipf_trace(100_000, 0.99, 300_000, seed);
    // Windows of 100 s: the 300 s stream is decayed twice, so the detector
    // weighs recent traffic more but still sees enough of it to rank keys
    // whose true frequencies differ by a few percent.
    let config = HotKeyConfig {
        window_ms: 100_000,
        ..HotKeyConfig::default()
    };
    let mut detector = HotKeyDetector::new(config, 0);
    let mut true_counts: BTreeMap<u64, u64> = BTreeMap::new();
    for (index, key) in stream.iter().enumerate() {
        // 1 ms per request.
        detector.record(key, index as u64);
        *true_counts.entry(*key).or_insert(0) += 1;
    }
    let mut by_count: Vec<(u64, u64)> = true_counts.into_iter().collect();
    by_count.sort_by(|left, right| right.1.cmp(&left.1).then(left.0.cmp(&right.0)));
    let truth: BTreeSet<u64> = by_count.iter().take(10).map(|(key, _)| *key).collect();
    let found: BTreeSet<u64> = detector.top(10).into_iter().map(|(key, _)| key).collect();
    let recall = truth.intersection(&found).count() as f64 / 10.0;
    println!(
        "seed {seed}: hot-key recall on Zipf 0.99: {recall:.2} (truth {truth:?}, found {found:?})"
    );
    assert!(
        recall >= 0.9,
        "recall {recall}: truth {truth:?}, found {found:?}"
    );
    assert!(detector.tracked_keys() <= HotKeyConfig::default().tracked_keys);
}

#[test]
fn a_key_that_cools_down_fades_out() {
    let config = HotKeyConfig {
        window_ms: 100,
        ..HotKeyConfig::default()
    };
    let mut detector = HotKeyDetector::new(config, 0);
    for _ in 0..1_000 {
        detector.record(&"old-hot", 0);
    }
    for step in 0..1_000u64 {
        detector.record(&"new-hot", 1_000 + step);
    }
    let top = detector.top(2);
    assert_eq!(top[0].0, "new-hot", "top after cooling: {top:?}");
    assert!(detector.estimate(&"old-hot") < 10);
}
