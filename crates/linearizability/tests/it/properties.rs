//! Property tests: the checker agrees with the definition (brute force) on small
//! random histories, accepts every history produced by a sequential store, and
//! catches the classic violations wherever they hide.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use linearizability::synthetic::{SyntheticShape, generate_kv_history};
use linearizability::{
    History, KvInput, KvModel, KvOutput, Model, Operation, Outcome, RegisterInput, RegisterModel,
    StepBudget, Unlimited, Verdict, check,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Enough for every history generated here; running out would be a bug (and
/// shows up as `Unknown`, which every assertion below rejects).
const STEPS_MAX: u64 = 50_000_000;

const VALUES: [&str; 2] = ["x", "y"];
/// What a get may claim to have seen: absent, a written value, or concatenations.
const OBSERVATIONS: [Option<&str>; 5] = [None, Some("x"), Some("y"), Some("xy"), Some("yx")];

/// A random small kv operation over keys "a" and "b", with a random (often
/// impossible) output and a 1-in-7 chance of an unknown outcome.
fn small_kv_operation(client: u64) -> impl Strategy<Value = KvOperation> {
    (
        0..20u64,
        0..15u64,
        0..5u8,
        0..2usize,
        0..2usize,
        0..3usize,
        0..5usize,
        any::<bool>(),
        0..7u8,
    )
        .prop_map(
            move |(call_time, duration, kind, key, value, expected, seen, ok, unknown_roll)| {
                let key = ["a", "b"][key];
                let value = VALUES[value];
                let (input, output) = match kind {
                    0 => (get(key), saw(OBSERVATIONS[seen])),
                    1 => (put(key, value), KvOutput::Done),
                    2 => (append(key, value), KvOutput::Done),
                    3 => (delete(key), KvOutput::Done),
                    _ => {
                        let expected = [None, Some("x"), Some("y")][expected];
                        (cas(key, expected, value), KvOutput::Cas(ok))
                    }
                };
                if unknown_roll == 0 {
                    timed_out(client, call_time, input)
                } else {
                    done(client, call_time, call_time + duration, input, output)
                }
            },
        )
}

/// What a get of an append-heavy key may claim to have seen.
const APPEND_OBSERVATIONS: [Option<&str>; 9] = [
    None,
    Some(""),
    Some("x"),
    Some("xy"),
    Some("yx"),
    Some("xyz"),
    Some("yxz"),
    Some("zyx"),
    Some("xz"),
];

/// One key with mostly appends and gets (the lookahead's case), some puts
/// of "" (which block it) and unknown outcomes.
fn append_heavy_operation(client: u64) -> impl Strategy<Value = KvOperation> {
    (0..20u64, 0..15u64, 0..10u8, 0..3usize, 0..9usize, 0..7u8).prop_map(
        move |(call_time, duration, kind, value, seen, unknown_roll)| {
            let (input, output) = match kind {
                0..5 => (append("a", ["x", "y", "z"][value]), KvOutput::Done),
                5..9 => (get("a"), saw(APPEND_OBSERVATIONS[seen])),
                _ => (put("a", ""), KvOutput::Done),
            };
            if unknown_roll == 0 {
                timed_out(client, call_time, input)
            } else {
                done(client, call_time, call_time + duration, input, output)
            }
        },
    )
}

fn append_heavy_history() -> impl Strategy<Value = History<KvInput, KvOutput>> {
    (1..=7usize)
        .prop_flat_map(|length| {
            (0..length as u64)
                .map(append_heavy_operation)
                .collect::<Vec<_>>()
        })
        .prop_map(history)
}

fn small_kv_history() -> impl Strategy<Value = History<KvInput, KvOutput>> {
    (1..=7usize)
        .prop_flat_map(|length| {
            (0..length as u64)
                .map(small_kv_operation)
                .collect::<Vec<_>>()
        })
        .prop_map(history)
}

fn small_register_history() -> impl Strategy<Value = History<RegisterInput, KvOutput>> {
    small_kv_history().prop_map(|kv| {
        let operations = kv
            .operations()
            .iter()
            .map(|operation| Operation {
                client: operation.client,
                call_time: operation.call_time,
                input: match &operation.input {
                    KvInput::Get { .. } | KvInput::Delete { .. } => RegisterInput::Read,
                    KvInput::Put { value, .. } | KvInput::Append { value, .. } => {
                        RegisterInput::Write {
                            value: value.clone(),
                        }
                    }
                    KvInput::Cas {
                        expected, value, ..
                    } => RegisterInput::Cas {
                        expected: expected.clone(),
                        value: value.clone(),
                    },
                    other => panic!("small_kv_history makes no {other:?}"),
                },
                outcome: match (&operation.input, &operation.outcome) {
                    // A delete becomes a read of nothing.
                    (KvInput::Delete { .. }, Outcome::Returned { time, .. }) => Outcome::Returned {
                        time: *time,
                        output: saw(None),
                    },
                    (_, outcome) => outcome.clone(),
                },
            })
            .collect();
        history(operations)
    })
}

/// The whole map as one state, without partitioning: the reference for
/// "checking each key alone gives the same answer as checking the map".
struct WholeMapModel;

impl Model for WholeMapModel {
    type State = BTreeMap<String, Arc<str>>;
    type Input = KvInput;
    type Output = KvOutput;

    fn initial_state(&self) -> Self::State {
        BTreeMap::new()
    }

    fn step(
        &self,
        state: &Self::State,
        input: &KvInput,
        output: Option<&KvOutput>,
    ) -> Option<Self::State> {
        let key = input.key();
        let value = KvModel::new().step(&state.get(key).cloned(), input, output)?;
        let mut next = state.clone();
        match value {
            Some(value) => next.insert(key.to_string(), value),
            None => next.remove(key),
        };
        Some(next)
    }
}

fn verdict_from(linearizable: bool) -> Verdict {
    if linearizable {
        Verdict::Linearizable
    } else {
        Verdict::NotLinearizable
    }
}

fn synthetic(seed: u64, shape: SyntheticShape) -> History<KvInput, KvOutput> {
    generate_kv_history(shape, &mut ChaCha8Rng::seed_from_u64(seed))
}

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

/// Unrelated traffic on other keys ("k0".."k2") to hide a violation in.
fn noise(seed: u64) -> Vec<KvOperation> {
    synthetic(seed, shape(4, 10, 3, 5)).operations().to_vec()
}

fn assert_caught_on_victim(
    mut operations: Vec<KvOperation>,
    seed: u64,
) -> Result<(), TestCaseError> {
    operations.extend(noise(seed));
    let history = history(operations);
    let result = check(&KvModel::new(), &history, StepBudget::new(STEPS_MAX));
    prop_assert_eq!(result.verdict, Verdict::NotLinearizable);
    let failing = result
        .failing_partition()
        .map(|partition| partition.key.clone());
    prop_assert_eq!(failing.as_deref(), Some("victim"));
    Ok(())
}

/// A register operation over three values, a third of them timed out (the
/// shape of Jepsen's etcd histories: many writes and cas of unknown outcome).
fn often_unknown_register_operation(client: u64) -> impl Strategy<Value = RegisterOperation> {
    (
        0..20u64,
        0..15u64,
        0..3u8,
        0..3usize,
        0..4usize,
        any::<bool>(),
        0..3u8,
    )
        .prop_map(
            move |(call_time, duration, kind, value, other, ok, unknown_roll)| {
                let values = [None, Some("0"), Some("1"), Some("2")];
                let value = ["0", "1", "2"][value].to_string();
                let (input, output) = match kind {
                    0 => (RegisterInput::Read, saw(values[other])),
                    1 => (RegisterInput::Write { value }, KvOutput::Done),
                    _ => (
                        RegisterInput::Cas {
                            expected: values[other].map(str::to_string),
                            value,
                        },
                        KvOutput::Cas(ok),
                    ),
                };
                if unknown_roll == 0 {
                    timed_out(client, call_time, input)
                } else {
                    done(client, call_time, call_time + duration, input, output)
                }
            },
        )
}

fn often_unknown_register_history() -> impl Strategy<Value = History<RegisterInput, KvOutput>> {
    (1..=8usize)
        .prop_flat_map(|length| {
            (0..length as u64)
                .map(often_unknown_register_operation)
                .collect::<Vec<_>>()
        })
        .prop_map(history)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn kv_checker_agrees_with_brute_force(history in small_kv_history()) {
        let expected = verdict_from(brute_force_linearizable(&WholeMapModel, &history));
        let result = check(&KvModel::new(), &history, Unlimited);
        prop_assert_eq!(result.verdict, expected);
        if result.verdict == Verdict::Linearizable {
            for partition in &result.partitions {
                prop_assert!(
                    is_valid_witness(&KvModel::new(), &history, &partition.operations, &partition.linearization),
                    "bad witness {:?} for key {}", partition.linearization, partition.key
                );
            }
        }
    }

    #[test]
    fn lookahead_on_append_heavy_keys_agrees_with_brute_force(history in append_heavy_history()) {
        let expected = verdict_from(brute_force_linearizable(&KvModel::new(), &history));
        let result = check(&KvModel::new(), &history, Unlimited);
        prop_assert_eq!(result.verdict, expected);
        if result.verdict == Verdict::Linearizable {
            let partition = &result.partitions[0];
            prop_assert!(
                is_valid_witness(&KvModel::new(), &history, &partition.operations, &partition.linearization),
                "bad witness {:?}", partition.linearization
            );
        }
    }

    #[test]
    fn register_checker_agrees_with_brute_force(history in small_register_history()) {
        let expected = verdict_from(brute_force_linearizable(&RegisterModel, &history));
        let result = check(&RegisterModel, &history, Unlimited);
        prop_assert_eq!(result.verdict, expected);
        if let Some(partition) = result.partitions.first()
            && result.verdict == Verdict::Linearizable
        {
            prop_assert!(
                is_valid_witness(&RegisterModel, &history, &partition.operations, &partition.linearization),
                "bad witness {:?}", partition.linearization
            );
        }
    }

    #[test]
    fn register_checker_with_many_timed_out_operations_agrees_with_brute_force(
        history in often_unknown_register_history()
    ) {
        let expected = verdict_from(brute_force_linearizable(&RegisterModel, &history));
        let result = check(&RegisterModel, &history, Unlimited);
        prop_assert_eq!(result.verdict, expected);
        if let Some(partition) = result.partitions.first()
            && result.verdict == Verdict::Linearizable
        {
            prop_assert!(
                is_valid_witness(&RegisterModel, &history, &partition.operations, &partition.linearization),
                "bad witness {:?}", partition.linearization
            );
        }
    }

    #[test]
    fn checking_keys_alone_agrees_with_checking_the_whole_map(history in small_kv_history()) {
        prop_assert_eq!(
            check(&KvModel::new(), &history, Unlimited).verdict,
            check(&WholeMapModel, &history, Unlimited).verdict
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn histories_of_a_sequential_store_are_linearizable(
        seed in any::<u64>(),
        clients in 1..8u64,
        operations_per_client in 1..40usize,
        keys in 1..5usize,
        unknown_outcome_percent in 0..20u32,
    ) {
        let history = synthetic(seed, shape(clients, operations_per_client, keys, unknown_outcome_percent));
        let result = check(&KvModel::new(), &history, StepBudget::new(STEPS_MAX));
        prop_assert_eq!(result.verdict, Verdict::Linearizable, "{}", result.summary());
        let witness_length: usize = result.partitions.iter().map(|partition| partition.linearization.len()).sum();
        prop_assert!(witness_length >= history.len() - history.unknown_outcome_count());
    }

    #[test]
    fn a_read_of_a_value_nobody_wrote_is_rejected(seed in any::<u64>(), pick in any::<prop::sample::Index>()) {
        let history = synthetic(seed, shape(5, 20, 3, 5));
        let mut operations = history.operations().to_vec();
        let known_gets: Vec<usize> = operations
            .iter()
            .enumerate()
            .filter(|(_, operation)| matches!(operation.input, KvInput::Get { .. }) && operation.output().is_some())
            .map(|(index, _)| index)
            .collect();
        prop_assume!(!known_gets.is_empty());
        let victim = known_gets[pick.index(known_gets.len())];
        if let Outcome::Returned { output, .. } = &mut operations[victim].outcome {
            *output = saw(Some("never-written"));
        }
        let key = operations[victim].input.key().to_string();
        let result = check(&KvModel::new(), &linearizability::History::new(operations).expect("valid"), StepBudget::new(STEPS_MAX));
        prop_assert_eq!(result.verdict, Verdict::NotLinearizable);
        prop_assert_eq!(result.failing_partition().map(|partition| partition.key.clone()), Some(key));
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught(
        seed in any::<u64>(), start in 0..500u64, first in 1..50u64, gap in 1..50u64, second in 1..50u64, lag in 1..50u64,
    ) {
        let first_return = start + first;
        let second_call = first_return + gap;
        let second_return = second_call + second;
        assert_caught_on_victim(vec![
            done(100, start, first_return, put("victim", "old"), KvOutput::Done),
            done(101, second_call, second_return, put("victim", "new"), KvOutput::Done),
            done(102, second_return + lag, second_return + lag + 5, get("victim"), saw(Some("old"))),
        ], seed)?;
    }

    #[test]
    fn a_lost_write_is_caught(
        seed in any::<u64>(), first_call in 0..100u64, second_call in 0..100u64, duration in 1..50u64, keep_first in any::<bool>(),
    ) {
        let read_call = first_call.max(second_call) + duration + 1;
        let survivor = if keep_first { "a" } else { "b" };
        assert_caught_on_victim(vec![
            done(100, first_call, first_call + duration, append("victim", "a"), KvOutput::Done),
            done(101, second_call, second_call + duration, append("victim", "b"), KvOutput::Done),
            done(102, read_call, read_call + 5, get("victim"), saw(Some(survivor))),
        ], seed)?;
    }

    #[test]
    fn a_cas_that_succeeds_twice_is_caught(
        seed in any::<u64>(), first_call in 20..100u64, second_call in 20..100u64, first in 1..50u64, second in 1..50u64,
    ) {
        assert_caught_on_victim(vec![
            done(100, 0, 10, put("victim", "x"), KvOutput::Done),
            done(101, first_call, first_call + first, cas("victim", Some("x"), "y"), KvOutput::Cas(true)),
            done(102, second_call, second_call + second, cas("victim", Some("x"), "z"), KvOutput::Cas(true)),
        ], seed)?;
    }

    #[test]
    fn a_read_of_a_value_never_written_is_caught(seed in any::<u64>(), call in 0..100u64, duration in 1..100u64) {
        assert_caught_on_victim(vec![
            done(100, 0, 50, put("victim", "x"), KvOutput::Done),
            done(101, call, call + duration, get("victim"), saw(Some("ghost"))),
        ], seed)?;
    }
}

#[test]
fn ten_thousand_operations_over_a_hundred_keys_need_few_steps() {
    // The benchmark's headline history; the step count guards against
    // performance regressions deterministically (wall time is in the bench).
    let history = synthetic(
        7,
        SyntheticShape {
            clients: 10,
            operations_per_client: 1000,
            keys: 100,
            unknown_outcome_percent: 2,
            duration_max: 100,
        },
    );
    let result = check(&KvModel::new(), &history, StepBudget::new(STEPS_MAX));
    assert_eq!(
        result.verdict,
        Verdict::Linearizable,
        "{}",
        result.summary()
    );
    assert!(result.steps_taken < 200_000, "{} steps", result.steps_taken);
}
