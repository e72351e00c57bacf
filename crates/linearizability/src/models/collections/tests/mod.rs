//! The model itself, command by command, and whole histories it must
//! accept or reject.

mod commands;
mod histories;
mod multi_key;
mod random;

use super::*;
use CollectionsInput as I;
use CollectionsOutput as O;

fn s(text: &str) -> String {
    text.to_owned()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| s(item)).collect()
}

fn score(value: f64) -> Score {
    Score::new(value)
}

/// Runs `inputs` in order from an empty keyspace, each answer checked
/// against `expected`; returns the state after.
fn run(steps: &[(I, O)]) -> CollectionsState {
    let mut state = CollectionsModel.initial_state();
    for (input, output) in steps {
        state = CollectionsModel
            .step(&state, input, Some(output))
            .unwrap_or_else(|| {
                let keyspace = state.iter().next().expect("never empty");
                let (answer, _) = semantics::apply(keyspace, input);
                panic!("{input:?} should answer {output:?}; the model answers {answer:?} from {state:?}")
            });
    }
    state
}

/// The one keyspace `state` holds.
fn only(state: &CollectionsState) -> &Keyspace {
    assert_eq!(state.len(), 1, "one possible keyspace: {state:?}");
    state.iter().next().expect("one")
}

fn refuses(state: &CollectionsState, input: &I, output: &O) {
    assert_eq!(
        CollectionsModel.step(state, input, Some(output)),
        None,
        "{input:?} -> {output:?} must be impossible from {state:?}"
    );
}
