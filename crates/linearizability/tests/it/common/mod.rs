//! Helpers shared by the integration tests: terse history builders and a
//! brute-force reference checker.

#![allow(dead_code)] // Each test file uses a different subset.

use linearizability::{History, KvInput, KvOutput, Model, Operation, Outcome, RegisterInput};

pub type KvOperation = Operation<KvInput, KvOutput>;
pub type RegisterOperation = Operation<RegisterInput, KvOutput>;

pub fn get(key: &str) -> KvInput {
    KvInput::Get { key: key.into() }
}

pub fn put(key: &str, value: &str) -> KvInput {
    KvInput::Put {
        key: key.into(),
        value: value.into(),
    }
}

pub fn append(key: &str, value: &str) -> KvInput {
    KvInput::Append {
        key: key.into(),
        value: value.into(),
    }
}

pub fn delete(key: &str) -> KvInput {
    KvInput::Delete { key: key.into() }
}

pub fn cas(key: &str, expected: Option<&str>, value: &str) -> KvInput {
    KvInput::Cas {
        key: key.into(),
        expected: expected.map(str::to_string),
        value: value.into(),
    }
}

/// A get's answer.
pub fn saw(value: Option<&str>) -> KvOutput {
    KvOutput::Value(value.map(str::to_string))
}

/// An operation that returned `output` at `return_time`.
pub fn done<I>(
    client: u64,
    call_time: u64,
    return_time: u64,
    input: I,
    output: KvOutput,
) -> Operation<I, KvOutput> {
    Operation {
        client,
        call_time,
        input,
        outcome: Outcome::Returned {
            time: return_time,
            output,
        },
    }
}

/// An operation whose client timed out: it may take effect any time after the call, or never.
pub fn timed_out<I>(client: u64, call_time: u64, input: I) -> Operation<I, KvOutput> {
    Operation {
        client,
        call_time,
        input,
        outcome: Outcome::Unknown { gave_up_at: None },
    }
}

pub fn history<I, O>(operations: Vec<Operation<I, O>>) -> History<I, O> {
    History::new(operations).expect("test histories have returns after calls")
}

/// The definition, searched naively: is there an order of the operations that
/// respects real time (a known return strictly before a call forces order) and
/// that the model accepts, in which every known-outcome operation appears and
/// unknown-outcome ones may be left out? Exponential: only for tiny histories.
pub fn brute_force_linearizable<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
) -> bool {
    let operations = history.operations();
    let mut placed = vec![false; operations.len()];
    search_orders(model, operations, &mut placed, &model.initial_state())
}

fn search_orders<M: Model>(
    model: &M,
    operations: &[Operation<M::Input, M::Output>],
    placed: &mut [bool],
    state: &M::State,
) -> bool {
    let all_known_placed = operations
        .iter()
        .zip(placed.iter())
        .all(|(operation, &placed)| placed || operation.output().is_none());
    if all_known_placed {
        return true;
    }
    for candidate in 0..operations.len() {
        if placed[candidate] {
            continue;
        }
        let call_time = operations[candidate].call_time;
        let must_wait = operations
            .iter()
            .zip(placed.iter())
            .any(|(other, &other_placed)| {
                !other_placed
                    && other
                        .return_time()
                        .is_some_and(|returned| returned < call_time)
            });
        if must_wait {
            continue;
        }
        let operation = &operations[candidate];
        if let Some(next) = model.step(state, &operation.input, operation.output()) {
            placed[candidate] = true;
            let found = search_orders(model, operations, placed, &next);
            placed[candidate] = false;
            if found {
                return true;
            }
        }
    }
    false
}

/// Whether `order` (history indices) is a valid witness: the model accepts it in
/// sequence from the initial state, it contains every known-outcome operation
/// of `members`, and it never puts an operation before one that returned before
/// it was called.
pub fn is_valid_witness<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    members: &[usize],
    order: &[usize],
) -> bool {
    let operations = history.operations();
    let mut state = model.initial_state();
    for &index in order {
        let operation = &operations[index];
        match model.step(&state, &operation.input, operation.output()) {
            Some(next) => state = next,
            None => return false,
        }
    }
    let every_known_included = members
        .iter()
        .all(|index| operations[*index].output().is_none() || order.contains(index));
    let respects_real_time = order.iter().enumerate().all(|(position, &later)| {
        order[position + 1..].iter().all(|&after| {
            operations[after]
                .return_time()
                .is_none_or(|returned| returned >= operations[later].call_time)
        })
    });
    every_known_included && respects_real_time
}
