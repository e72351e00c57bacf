//! [`EvictingKvModel`]: the `kv` model with evictions, for a store that may
//! drop any key at any moment (a capacity-bounded cache).
//!
//! Eviction is invisible to writers, so it is modelled as an event that may
//! happen between any two operations: a get may always see the key absent
//! (and then the key *is* absent until the next put); a get that sees a
//! value must see the latest put's, and a put steps as in [`KvModel`]. What
//! it still catches: a stale or invented value, and a value coming back
//! after it was seen evicted.
//!
//! Only puts and gets: after a silent eviction an append starts from empty
//! (its result is not a function of the state), and the other operations
//! answer from a state an eviction may have changed unseen.

use std::sync::Arc;

use crate::model::Model;
use crate::models::kv::{KvInput, KvModel, KvOutput};

/// See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvictingKvModel;

impl Model for EvictingKvModel {
    type State = Option<Arc<str>>;
    type Input = KvInput;
    type Output = KvOutput;

    fn initial_state(&self) -> Self::State {
        KvModel.initial_state()
    }

    /// # Panics
    /// On an operation other than put or get, or a mismatched output (a
    /// harness bug).
    fn step(
        &self,
        state: &Self::State,
        input: &KvInput,
        output: Option<&KvOutput>,
    ) -> Option<Self::State> {
        match (input, output) {
            // Evicted (or never written): absent from now on.
            (KvInput::Get { .. }, Some(KvOutput::Value(None))) => Some(None),
            (KvInput::Get { .. }, None | Some(KvOutput::Value(Some(_))))
            | (KvInput::Put { .. }, None | Some(KvOutput::Done)) => {
                KvModel.step(state, input, output)
            }
            (input, output) => panic!(
                "evicting kv model: only put and get with their outputs, got {input:?} -> \
                 {output:?}"
            ),
        }
    }

    fn partition(&self, input: &KvInput) -> String {
        KvModel.partition(input)
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get { .. })
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        KvModel.state_heap_bytes(state)
    }

    fn describe_operation(&self, input: &KvInput, output: Option<&KvOutput>) -> String {
        KvModel.describe_operation(input, output)
    }

    fn describe_state(&self, state: &Self::State) -> String {
        KvModel.describe_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get() -> KvInput {
        KvInput::Get { key: "k".into() }
    }

    fn saw(value: Option<&str>) -> KvOutput {
        KvOutput::Value(value.map(str::to_string))
    }

    #[test]
    fn a_get_may_see_a_key_evicted_but_never_a_stale_value() {
        let model = EvictingKvModel;
        let x: Option<Arc<str>> = Some("x".into());
        assert_eq!(model.step(&x, &get(), Some(&saw(None))), Some(None));
        assert_eq!(
            model.step(&x, &get(), Some(&saw(Some("x")))),
            Some(x.clone())
        );
        assert_eq!(model.step(&x, &get(), Some(&saw(Some("y")))), None);
        // Once seen evicted, the old value cannot come back.
        assert_eq!(model.step(&None, &get(), Some(&saw(Some("x")))), None);
        // A put steps as in the kv model; an unknown get changes nothing.
        let put = KvInput::Put {
            key: "k".into(),
            value: "y".into(),
        };
        let y: Option<Arc<str>> = Some("y".into());
        assert_eq!(model.step(&None, &put, Some(&KvOutput::Done)), Some(y));
        assert_eq!(model.step(&x, &get(), None), Some(x.clone()));
    }

    #[test]
    #[should_panic(expected = "only put and get")]
    fn an_append_is_a_harness_bug() {
        let append = KvInput::Append {
            key: "k".into(),
            value: "v".into(),
        };
        EvictingKvModel.step(&None, &append, None);
    }
}
