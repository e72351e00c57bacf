//! Known histories with known answers: the classic examples of linearizable and
//! non-linearizable behaviour, unknown outcomes, partitioning and budgets.

use crate::common;

use common::*;
use linearizability::{
    CheckOptions, CheckResult, History, KvInput, KvModel, KvOutput, MemoryBudget, Model, Recorder,
    RegisterInput, RegisterModel, StepBudget, Unlimited, Verdict, check, check_with_options,
};

fn check_kv(history: &History<KvInput, KvOutput>) -> CheckResult {
    let result = check(&KvModel::new(), history, Unlimited);
    // The memo must never change the answer.
    let plain = check_with_options(
        &KvModel::new(),
        history,
        Unlimited,
        CheckOptions {
            memoize: false,
            ..CheckOptions::default()
        },
    );
    assert_eq!(
        plain.verdict, result.verdict,
        "memoization changed the verdict"
    );
    result
}

fn verdict_of(operations: Vec<KvOperation>) -> Verdict {
    check_kv(&history(operations)).verdict
}

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(verdict_of(vec![]), Verdict::Linearizable);
}

#[test]
fn sequential_history_is_linearizable() {
    let verdict = verdict_of(vec![
        done(1, 0, 10, put("k", "x"), KvOutput::Done),
        done(1, 20, 30, append("k", "y"), KvOutput::Done),
        done(2, 40, 50, get("k"), saw(Some("xy"))),
        done(2, 60, 70, delete("k"), KvOutput::Done),
        done(1, 80, 90, get("k"), saw(None)),
    ]);
    assert_eq!(verdict, Verdict::Linearizable);
}

#[test]
fn stale_read_after_a_completed_write_is_caught() {
    let history = history(vec![
        done(1, 0, 10, put("k", "x"), KvOutput::Done),
        done(1, 20, 30, put("k", "y"), KvOutput::Done),
        done(2, 40, 50, get("k"), saw(Some("x"))),
    ]);
    let result = check_kv(&history);
    assert_eq!(result.verdict, Verdict::NotLinearizable);
    let failing = result.failing_partition().expect("a failing partition");
    assert_eq!(failing.key, "k");
    assert_eq!(
        failing.linearization,
        vec![0, 1],
        "the two writes are the longest prefix"
    );
    assert_eq!(failing.stuck_at, Some(2), "stuck at the stale read");
    let explanation = result.explain(&KvModel::new(), &history);
    assert!(
        explanation.contains("State after the prefix: \"y\""),
        "{explanation}"
    );
    assert!(explanation.contains("get(k) -> \"x\""), "{explanation}");
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in [None, Some("x")] {
        let verdict = verdict_of(vec![
            done(1, 0, 100, put("k", "x"), KvOutput::Done),
            done(2, 10, 20, get("k"), saw(seen)),
        ]);
        assert_eq!(verdict, Verdict::Linearizable, "reading {seen:?}");
    }
}

#[test]
fn reads_must_not_go_back_in_time() {
    // Both reads overlap the write, but the second starts after the first saw
    // the new value: it cannot see the old one.
    let verdict = verdict_of(vec![
        done(1, 0, 100, put("k", "x"), KvOutput::Done),
        done(2, 10, 20, get("k"), saw(Some("x"))),
        done(3, 30, 40, get("k"), saw(None)),
    ]);
    assert_eq!(verdict, Verdict::NotLinearizable);
}

#[test]
fn concurrent_writes_may_land_in_either_order_but_readers_must_agree() {
    let writes = || {
        vec![
            done(1, 0, 50, put("k", "a"), KvOutput::Done),
            done(2, 0, 50, put("k", "b"), KvOutput::Done),
        ]
    };
    for last in ["a", "b"] {
        let mut operations = writes();
        operations.push(done(3, 60, 70, get("k"), saw(Some(last))));
        operations.push(done(4, 80, 90, get("k"), saw(Some(last))));
        assert_eq!(
            verdict_of(operations),
            Verdict::Linearizable,
            "both read {last}"
        );
    }
    let mut disagreeing = writes();
    disagreeing.push(done(3, 60, 70, get("k"), saw(Some("a"))));
    disagreeing.push(done(4, 80, 90, get("k"), saw(Some("b"))));
    assert_eq!(verdict_of(disagreeing), Verdict::NotLinearizable);
}

#[test]
fn lost_append_is_caught() {
    let verdict = verdict_of(vec![
        done(1, 0, 10, append("k", "a"), KvOutput::Done),
        done(2, 5, 15, append("k", "b"), KvOutput::Done),
        done(3, 20, 30, get("k"), saw(Some("b"))),
    ]);
    assert_eq!(verdict, Verdict::NotLinearizable);
}

#[test]
fn read_of_a_value_never_written_is_caught() {
    let verdict = verdict_of(vec![
        done(1, 0, 10, put("k", "x"), KvOutput::Done),
        done(2, 5, 15, get("k"), saw(Some("ghost"))),
    ]);
    assert_eq!(verdict, Verdict::NotLinearizable);
}

#[test]
fn cas_race_has_exactly_one_winner() {
    let race = |first_ok: bool, second_ok: bool| {
        verdict_of(vec![
            done(1, 0, 10, put("k", "x"), KvOutput::Done),
            done(2, 20, 40, cas("k", Some("x"), "y"), KvOutput::Cas(first_ok)),
            done(
                3,
                25,
                35,
                cas("k", Some("x"), "z"),
                KvOutput::Cas(second_ok),
            ),
        ])
    };
    assert_eq!(race(true, false), Verdict::Linearizable);
    assert_eq!(race(false, true), Verdict::Linearizable);
    assert_eq!(
        race(true, true),
        Verdict::NotLinearizable,
        "a cas that succeeds twice"
    );
    assert_eq!(
        race(false, false),
        Verdict::NotLinearizable,
        "somebody must win"
    );
}

#[test]
fn cas_on_an_absent_key() {
    let verdict = verdict_of(vec![
        done(1, 0, 10, cas("k", None, "x"), KvOutput::Cas(true)),
        done(2, 20, 30, get("k"), saw(Some("x"))),
        done(1, 40, 50, cas("k", None, "y"), KvOutput::Cas(false)),
    ]);
    assert_eq!(verdict, Verdict::Linearizable);
}

#[test]
fn operations_that_touch_at_one_instant_count_as_concurrent() {
    // The read is called at the instant the write returns; either order is fine.
    let verdict = verdict_of(vec![
        done(1, 0, 10, put("k", "x"), KvOutput::Done),
        done(2, 10, 20, get("k"), saw(None)),
    ]);
    assert_eq!(verdict, Verdict::Linearizable);
}

#[test]
fn operations_may_be_given_in_any_order() {
    let verdict = verdict_of(vec![
        done(2, 40, 50, get("k"), saw(Some("x"))),
        done(1, 0, 10, put("k", "x"), KvOutput::Done),
        done(3, 20, 30, get("k"), saw(Some("x"))),
    ]);
    assert_eq!(verdict, Verdict::Linearizable);
}

// ---- Unknown outcomes -------------------------------------------------------

#[test]
fn a_timed_out_write_that_a_later_read_observes_is_linearizable() {
    let verdict = verdict_of(vec![
        timed_out(1, 0, put("k", "x")),
        done(2, 100, 110, get("k"), saw(Some("x"))),
    ]);
    assert_eq!(verdict, Verdict::Linearizable);
}

#[test]
fn a_timed_out_write_that_nobody_observes_is_linearizable() {
    let verdict = verdict_of(vec![
        timed_out(1, 0, put("k", "x")),
        done(2, 100, 110, get("k"), saw(None)),
    ]);
    assert_eq!(verdict, Verdict::Linearizable);
}

#[test]
fn a_timed_out_write_may_take_effect_long_after_the_client_gave_up() {
    let verdict = verdict_of(vec![
        timed_out(1, 0, put("k", "x")),
        done(2, 100, 110, get("k"), saw(None)),
        done(2, 200, 210, get("k"), saw(Some("x"))),
    ]);
    assert_eq!(verdict, Verdict::Linearizable);
}

#[test]
fn a_timed_out_write_cannot_take_effect_before_its_call() {
    let verdict = verdict_of(vec![
        done(2, 0, 10, get("k"), saw(Some("x"))),
        timed_out(1, 20, put("k", "x")),
    ]);
    assert_eq!(verdict, Verdict::NotLinearizable);
}

#[test]
fn a_timed_out_write_takes_effect_at_most_once() {
    // Observed, then overwritten, then observed again: it would have to happen twice.
    let verdict = verdict_of(vec![
        timed_out(1, 0, put("k", "x")),
        done(2, 100, 110, get("k"), saw(Some("x"))),
        done(2, 120, 130, put("k", "y"), KvOutput::Done),
        done(2, 140, 150, get("k"), saw(Some("x"))),
    ]);
    assert_eq!(verdict, Verdict::NotLinearizable);
}

#[test]
fn timed_out_appends_may_each_apply_or_not() {
    let with_final_read = |seen: &str| {
        verdict_of(vec![
            timed_out(1, 0, append("k", "a")),
            timed_out(2, 0, append("k", "b")),
            done(3, 100, 110, get("k"), saw(Some(seen))),
        ])
    };
    for seen in ["a", "b", "ab", "ba"] {
        assert_eq!(with_final_read(seen), Verdict::Linearizable, "read {seen}");
    }
    assert_eq!(with_final_read("aa"), Verdict::NotLinearizable);
}

#[test]
fn a_timed_out_read_constrains_nothing() {
    let verdict = verdict_of(vec![
        done(1, 0, 10, put("k", "x"), KvOutput::Done),
        timed_out(2, 20, get("k")),
        done(3, 30, 40, get("k"), saw(Some("x"))),
    ]);
    assert_eq!(verdict, Verdict::Linearizable);
}

// ---- Register ---------------------------------------------------------------

#[test]
fn register_histories() {
    let write = |value: &str| RegisterInput::Write {
        value: value.into(),
    };
    let fine = history(vec![
        done(1, 0, 10, write("a"), KvOutput::Done),
        done(2, 5, 30, RegisterInput::Read, saw(Some("b"))),
        done(3, 8, 20, write("b"), KvOutput::Done),
        done(
            1,
            40,
            50,
            RegisterInput::Cas {
                expected: Some("b".into()),
                value: "c".into(),
            },
            KvOutput::Cas(true),
        ),
    ]);
    assert_eq!(
        check(&RegisterModel, &fine, Unlimited).verdict,
        Verdict::Linearizable
    );

    let stale = history(vec![
        done(1, 0, 10, write("a"), KvOutput::Done),
        done(2, 20, 30, RegisterInput::Read, saw(None)),
    ]);
    let result = check(&RegisterModel, &stale, Unlimited);
    assert_eq!(result.verdict, Verdict::NotLinearizable);
    assert_eq!(
        result.failing_partition().map(|partition| partition.name()),
        Some("the history".into())
    );
}

// ---- Partitioning -----------------------------------------------------------

#[test]
fn each_key_is_checked_alone_and_the_failing_key_is_named() {
    let mut operations = Vec::new();
    for key in ["a", "b", "c", "d"] {
        operations.push(done(1, 0, 10, put(key, "x"), KvOutput::Done));
        operations.push(done(2, 20, 30, get(key), saw(Some("x"))));
    }
    let fine = history(operations.clone());
    let result = check_kv(&fine);
    assert_eq!(result.verdict, Verdict::Linearizable);
    assert_eq!(result.partition_count, 4);
    assert_eq!(result.partitions.len(), 4);

    operations.push(done(3, 40, 50, get("c"), saw(None)));
    let result = check_kv(&history(operations));
    assert_eq!(result.verdict, Verdict::NotLinearizable);
    assert_eq!(
        result
            .failing_partition()
            .map(|partition| partition.key.as_str()),
        Some("c")
    );
    assert_eq!(
        result.partitions.len(),
        3,
        "checking stops at the failing partition (keys in order)"
    );
    assert_eq!(
        result
            .failing_partition()
            .and_then(|partition| partition.stuck_at),
        Some(8)
    );
}

#[test]
fn values_of_one_key_never_leak_into_another() {
    let verdict = verdict_of(vec![
        done(1, 0, 10, put("a", "x"), KvOutput::Done),
        done(2, 20, 30, get("b"), saw(Some("x"))),
    ]);
    assert_eq!(verdict, Verdict::NotLinearizable);
}

// ---- Budget -----------------------------------------------------------------

/// Many concurrent appends followed by a read nobody can explain. Every order of
/// the appends leaves a different value, so even the memo cannot merge
/// branches: the search must try about `writers!` orders before giving up. A
/// put of unknown outcome, pending from the start, keeps the lookahead from
/// pruning (it could reset the value before the read).
fn hard_history(writers: u64) -> History<KvInput, KvOutput> {
    let mut operations: Vec<KvOperation> = (0..writers)
        .map(|client| {
            done(
                client,
                0,
                100,
                append("k", &client.to_string()),
                KvOutput::Done,
            )
        })
        .collect();
    operations.push(timed_out(98, 0, put("k", "p")));
    operations.push(done(99, 200, 210, get("k"), saw(Some("impossible"))));
    history(operations)
}

#[test]
fn running_out_of_memo_memory_answers_unknown_never_a_guess() {
    let history = hard_history(12);
    let by_entries = check(&KvModel::new(), &history, MemoryBudget::entries(100));
    assert_eq!(
        by_entries.verdict,
        Verdict::Unknown,
        "{}",
        by_entries.summary()
    );
    assert!(by_entries.peak_memo_entries <= 101);
    let by_bytes = check(&KvModel::new(), &history, MemoryBudget::bytes(64 << 10));
    assert_eq!(by_bytes.verdict, Verdict::Unknown, "{}", by_bytes.summary());
    assert!(
        by_bytes.peak_memo_bytes > 64 << 10 && by_bytes.peak_memo_bytes < 1 << 20,
        "peak {} bytes",
        by_bytes.peak_memo_bytes
    );
    // An ample memory budget reaches the answer, and reports its peak.
    let decided = check(
        &KvModel::new(),
        &hard_history(6),
        MemoryBudget::bytes(1 << 30),
    );
    assert_eq!(decided.verdict, Verdict::NotLinearizable);
    assert!(decided.peak_memo_entries > 100);
    assert!(decided.peak_memo_bytes > decided.peak_memo_entries * 8);
}

/// `clients` clients each append `appends` values to one key, one after
/// another; every append overlaps the other clients' appends of its round
/// and of the neighbouring rounds (long retries). Then one read sees `seen`.
fn one_key_appends(clients: u64, appends: u64, seen: &str) -> History<KvInput, KvOutput> {
    let mut operations = vec![done(100, 0, 1, put("k", ""), KvOutput::Done)];
    for client in 0..clients {
        for index in 0..appends {
            let call = 10 + index * 30 + client * 3;
            operations.push(done(
                client,
                call,
                call + 28,
                append("k", &format!("x {client} {index} y")),
                KvOutput::Done,
            ));
        }
    }
    let read_call = 10 + appends * 30 + 40;
    operations.push(done(
        101,
        read_call,
        read_call + 5,
        get("k"),
        saw(Some(seen)),
    ));
    history(operations)
}

/// A legal order for [`one_key_appends`]: round by round, clients in
/// reverse order.
fn reversed_rounds(clients: u64, appends: u64) -> String {
    let mut value = String::new();
    for index in 0..appends {
        for client in (0..clients).rev() {
            value.push_str(&format!("x {client} {index} y"));
        }
    }
    value
}

#[test]
fn many_overlapping_appends_to_one_key_are_decided_by_the_lookahead() {
    // 8 clients x 12 appends, each overlapping about 20 others: without the
    // lookahead the memo holds every order of every window (it ran out of
    // memory on a kvraft history of this shape).
    let (clients, appends) = (8, 12);
    let value = reversed_rounds(clients, appends);
    let result = check(
        &KvModel::new(),
        &one_key_appends(clients, appends, &value),
        (StepBudget::new(100_000), MemoryBudget::bytes(64 << 20)),
    );
    assert_eq!(
        result.verdict,
        Verdict::Linearizable,
        "{}",
        result.summary()
    );
    assert!(result.steps_taken < 20_000, "{}", result.summary());
    // Without it, a much larger budget is not enough.
    let without = check_with_options(
        &KvModel::new(),
        &one_key_appends(clients, appends, &value),
        (StepBudget::new(2_000_000), MemoryBudget::bytes(64 << 20)),
        CheckOptions {
            lookahead: false,
            ..CheckOptions::default()
        },
    );
    assert_eq!(without.verdict, Verdict::Unknown, "{}", without.summary());
    println!(
        "8 x 12 overlapping appends: with lookahead {}; without: {}",
        result.summary(),
        without.summary()
    );

    // A value with two appends of one client swapped cannot be explained:
    // the first returned before the second was called.
    let swapped = value
        .replacen("x 7 0 y", "swap", 1)
        .replacen("x 7 1 y", "x 7 0 y", 1)
        .replacen("swap", "x 7 1 y", 1);
    let result = check(
        &KvModel::new(),
        &one_key_appends(clients, appends, &swapped),
        (StepBudget::new(100_000), MemoryBudget::bytes(64 << 20)),
    );
    assert_eq!(
        result.verdict,
        Verdict::NotLinearizable,
        "{}",
        result.summary()
    );
}

#[test]
fn running_out_of_steps_answers_unknown_never_a_guess() {
    let history = hard_history(12);
    let result = check(&KvModel::new(), &history, StepBudget::new(50));
    assert_eq!(result.verdict, Verdict::Unknown);
    assert_eq!(
        result
            .failing_partition()
            .map(|partition| partition.verdict),
        Some(Verdict::Unknown)
    );
    assert!(result.steps_taken <= 51);
    assert!(
        result.summary().starts_with("unknown"),
        "{}",
        result.summary()
    );
}

#[test]
fn step_budgets_are_deterministic() {
    let history = hard_history(12);
    let first = check(&KvModel::new(), &history, StepBudget::new(500));
    let second = check(&KvModel::new(), &history, StepBudget::new(500));
    assert_eq!(first, second);
}

#[test]
fn an_ample_budget_reaches_the_answer() {
    let result = check(
        &KvModel::new(),
        &hard_history(6),
        StepBudget::new(10_000_000),
    );
    assert_eq!(result.verdict, Verdict::NotLinearizable);
}

#[test]
fn a_budget_that_runs_out_in_a_later_partition_is_still_unknown() {
    // Key "a" is fine and cheap; key "k" is the hard one and runs out.
    let mut operations = hard_history(12).operations().to_vec();
    operations.push(done(1, 0, 10, put("a", "x"), KvOutput::Done));
    let result = check(&KvModel::new(), &history(operations), StepBudget::new(100));
    assert_eq!(result.verdict, Verdict::Unknown);
    assert_eq!(result.partitions[0].verdict, Verdict::Linearizable);
}

// ---- Recorder ---------------------------------------------------------------

#[test]
fn recorder_clones_share_one_log_and_pending_calls_are_unknown() {
    let recorder: Recorder<KvInput, KvOutput> = Recorder::new();
    let other_client = recorder.clone();
    let put_call = recorder.call(1, put("k", "x"), 0);
    let never_answered = other_client.call(2, put("k", "y"), 5);
    let read = other_client.call(3, get("k"), 20);
    recorder.returned(put_call, KvOutput::Done, 10);
    other_client.returned(read, saw(Some("y")), 30);
    drop(never_answered);
    let gave_up = recorder.call(4, get("k"), 40);
    recorder.timed_out(gave_up, 50);

    let history = recorder.history().expect("consistent times");
    assert_eq!(history.len(), 4);
    assert_eq!(history.unknown_outcome_count(), 2);
    assert_eq!(
        check(&KvModel::new(), &history, Unlimited).verdict,
        Verdict::Linearizable
    );
}

#[test]
fn recorder_rejects_a_clock_that_went_backwards() {
    let recorder: Recorder<KvInput, KvOutput> = Recorder::new();
    let call = recorder.call(7, get("k"), 100);
    recorder.returned(call, saw(None), 90);
    let error = recorder.history().expect_err("return before call");
    assert_eq!(
        error.to_string(),
        "operation 0 (client 7): field \"return\": return time 90 is before call time 100"
    );
}

#[test]
fn recorder_works_from_many_threads() {
    let recorder: Recorder<KvInput, KvOutput> = Recorder::new();
    std::thread::scope(|scope| {
        for client in 0..4u64 {
            let recorder = recorder.clone();
            scope.spawn(move || {
                for sequence in 0..100 {
                    let time = sequence * 10;
                    let call = recorder.call(client, append(&format!("k{client}"), "x"), time);
                    recorder.returned(call, KvOutput::Done, time + 5);
                }
            });
        }
    });
    let history = recorder.history().expect("consistent times");
    assert_eq!(history.len(), 400);
    assert_eq!(
        check(&KvModel::new(), &history, Unlimited).verdict,
        Verdict::Linearizable
    );
}

#[test]
fn recorder_history_round_trips_through_json() {
    let recorder: Recorder<KvInput, KvOutput> = Recorder::new();
    let call = recorder.call(1, cas("k", None, "v"), 3);
    recorder.returned(call, KvOutput::Cas(true), 9);
    let lost = recorder.call(2, delete("k"), 4);
    recorder.timed_out(lost, 12);
    let history = recorder.history().expect("consistent times");

    let text = history.to_json(&KvModel::new()).to_string();
    let parsed = linearizability::JsonHistory::parse(&text).expect("valid JSON");
    assert_eq!(
        parsed.decode(&KvModel::new()).expect("valid history"),
        history
    );
}

#[test]
fn models_describe_states_for_explanations() {
    assert_eq!(KvModel::new().describe_state(&Some("x".into())), "\"x\"");
    assert_eq!(RegisterModel.describe_state(&None), "null");
}

#[test]
fn unknown_outcome_reads_are_left_out_of_the_search() {
    let writes: Vec<KvOperation> = (0..4)
        .map(|client| {
            done(
                client,
                client * 10,
                client * 10 + 15,
                put("k", "v"),
                KvOutput::Done,
            )
        })
        .collect();
    let mut with_reads = writes.clone();
    with_reads.extend((10..40).map(|client| timed_out(client, client, get("k"))));
    let without = check(&KvModel::new(), &history(writes), Unlimited);
    let with = check(&KvModel::new(), &history(with_reads), Unlimited);
    assert_eq!(with.verdict, Verdict::Linearizable);
    assert_eq!(
        with.steps_taken, without.steps_taken,
        "the timed-out reads cost nothing"
    );
    assert_eq!(
        with.partitions[0].operations.len(),
        34,
        "but they are still reported"
    );
}

#[test]
fn explanations_of_long_prefixes_list_only_the_end() {
    let mut operations: Vec<KvOperation> = (0..100)
        .map(|step| {
            done(
                1,
                step * 10,
                step * 10 + 5,
                append("k", "x"),
                KvOutput::Done,
            )
        })
        .collect();
    operations.push(done(2, 2000, 2010, get("k"), saw(None)));
    let history = history(operations);
    let result = check(&KvModel::new(), &history, Unlimited);
    let explanation = result.explain(&KvModel::new(), &history);
    assert!(
        explanation.contains("(70 earlier operations not listed)"),
        "{explanation}"
    );
    assert!(explanation.contains("  100. operation 99"), "{explanation}");
    assert!(
        !explanation.contains("   70. operation 69"),
        "{explanation}"
    );
    assert!(
        explanation.contains("Stuck at operation 100"),
        "{explanation}"
    );
}

// ---- Search cost: interleaved partitions ---------------------------------------

#[test]
fn a_violation_behind_a_hard_key_is_found_in_few_steps() {
    // Key "k" (searched first in key order) is hard: thousands of orders of
    // its appends must be tried before it is known to fail. Key "z" fails
    // at once: a read of nothing after a completed put. Partitions are
    // searched interleaved, so "z" is found within a few slices instead of
    // after all of "k".
    let mut operations = hard_history(12).operations().to_vec();
    operations.push(done(1, 0, 10, put("z", "x"), KvOutput::Done));
    operations.push(done(2, 20, 30, get("z"), saw(None)));
    let result = check(
        &KvModel::new(),
        &history(operations),
        StepBudget::new(20_000),
    );
    assert_eq!(
        result.verdict,
        Verdict::NotLinearizable,
        "{}",
        result.summary()
    );
    assert_eq!(
        result
            .failing_partition()
            .map(|partition| partition.key.as_str()),
        Some("z")
    );
    assert!(
        result.steps_taken <= 2 * linearizability::PARTITION_SLICE_STEPS,
        "{}",
        result.summary()
    );
}
