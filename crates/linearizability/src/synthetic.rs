//! [`generate_kv_history`]: linearizable-by-construction histories for tests and
//! benchmarks.
//!
//! Clients run one operation at a time against a simulated sequential store.
//! Each operation gets a random interval and a random instant inside it at which
//! it "really" happens; applying the operations to the store in the order of
//! those instants gives every output. The result is linearizable by
//! construction (the instants are a witness), with as much overlap as the
//! interval lengths produce.

use std::collections::BTreeMap;

use rand::Rng;

use crate::history::{History, Operation, Outcome};
use crate::model::Model;
use crate::models::{KvInput, KvModel, KvOutput};

/// The shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub struct SyntheticShape {
    pub clients: u64,
    pub operations_per_client: usize,
    pub keys: usize,
    /// Percentage (0..=100) of operations whose client times out. Half of those
    /// take effect anyway (at a random instant, possibly after the client gave
    /// up); the other half never do.
    pub unknown_outcome_percent: u32,
    /// Operations last between 1 and this many time units; longer means more
    /// overlap between clients, so a harder search.
    pub duration_max: u64,
}

/// One operation being generated, before its output is known.
struct Draft {
    operation_index: usize,
    takes_effect_at: Option<u64>,
}

/// Generates a linearizable kv history of the given shape from `rng`.
pub fn generate_kv_history<R: Rng>(
    shape: SyntheticShape,
    rng: &mut R,
) -> History<KvInput, KvOutput> {
    let mut operations = Vec::new();
    let mut drafts = Vec::new();
    for client in 0..shape.clients {
        let mut now = rng.gen_range(0..shape.duration_max.max(1));
        for sequence in 0..shape.operations_per_client {
            let call_time = now + rng.gen_range(0..=shape.duration_max / 4);
            let return_time = call_time + rng.gen_range(1..=shape.duration_max.max(1));
            let input = random_input(client, sequence, shape.keys, rng);
            let unknown = rng.gen_range(0..100) < shape.unknown_outcome_percent;
            let takes_effect_at = match (unknown, rng.gen_bool(0.5)) {
                (false, _) => Some(rng.gen_range(call_time..=return_time)),
                // A timed-out request that still arrives, perhaps late.
                (true, true) => Some(rng.gen_range(call_time..=return_time + shape.duration_max)),
                (true, false) => None,
            };
            let outcome = if unknown {
                Outcome::Unknown {
                    gave_up_at: Some(return_time),
                }
            } else {
                // A placeholder; the real output is filled in below.
                Outcome::Returned {
                    time: return_time,
                    output: KvOutput::Done,
                }
            };
            drafts.push(Draft {
                operation_index: operations.len(),
                takes_effect_at,
            });
            operations.push(Operation {
                client,
                call_time,
                input,
                outcome,
            });
            now = return_time;
        }
    }
    apply_in_effect_order(&mut operations, &drafts);
    History::new(operations).unwrap_or_else(|error| panic!("generated an invalid history: {error}"))
}

/// Runs the operations against a sequential store in the order they take
/// effect and records each known-outcome operation's output.
fn apply_in_effect_order(operations: &mut [Operation<KvInput, KvOutput>], drafts: &[Draft]) {
    let mut effects: Vec<(u64, usize)> = drafts
        .iter()
        .filter_map(|draft| Some((draft.takes_effect_at?, draft.operation_index)))
        .collect();
    effects.sort_unstable();
    let mut store: BTreeMap<String, <KvModel as Model>::State> = BTreeMap::new();
    for (_, index) in effects {
        let operation = &mut operations[index];
        let key = operation.input.key().to_string();
        let before = store.get(&key).cloned().flatten();
        let output = match &operation.input {
            KvInput::Get { .. } => KvOutput::Value(before.as_deref().map(str::to_string)),
            KvInput::Cas { expected, .. } => {
                KvOutput::Cas(before.as_deref() == expected.as_deref())
            }
            KvInput::Put { .. } | KvInput::Append { .. } | KvInput::Delete { .. } => KvOutput::Done,
            other => {
                panic!("the generator makes get, put, append, delete and cas only, not {other:?}")
            }
        };
        let after = KvModel::new()
            .step(&before, &operation.input, Some(&output))
            .unwrap_or_else(|| {
                panic!(
                    "the store's own answer must be legal: {:?}",
                    operation.input
                )
            });
        store.insert(key, after);
        if let Outcome::Returned {
            output: recorded, ..
        } = &mut operation.outcome
        {
            *recorded = output;
        }
    }
}

fn random_input<R: Rng>(client: u64, sequence: usize, keys: usize, rng: &mut R) -> KvInput {
    let key = format!("k{}", rng.gen_range(0..keys.max(1)));
    // Values name their writer, so every written value is distinct.
    let value = format!("{client}.{sequence};");
    match rng.gen_range(0..100) {
        0..40 => KvInput::Get { key },
        40..60 => KvInput::Put { key, value },
        60..85 => KvInput::Append { key, value },
        85..90 => KvInput::Delete { key },
        _ => {
            // Expect either absence or a value some client wrote, so some swaps succeed.
            let expected = rng.gen_bool(0.5).then(|| {
                format!(
                    "{}.{};",
                    rng.gen_range(0..=client),
                    sequence.saturating_sub(1)
                )
            });
            KvInput::Cas {
                key,
                expected,
                value,
            }
        }
    }
}
