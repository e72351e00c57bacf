//! [`EvictingKvModel`]: the kv specification of a store that may evict any
//! key at any moment (a capacity-bounded cache), for puts and gets.
//!
//! Eviction is invisible to writers, so it is modelled as an event that may
//! happen between any two operations: a get may always see the key absent
//! (and then the key *is* absent until the next put), while a get that sees
//! a value must see the latest put's. What it still catches: a stale or
//! invented value, and a value coming back after it was seen evicted.
//! Appends are left out on purpose: after a silent eviction an append
//! starts from empty, so its result is not a function of the state.

use std::sync::Arc;

use linearizability::{KvInput, KvOutput, Model};

/// See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvictingKvModel;

impl Model for EvictingKvModel {
    type State = Option<Arc<str>>;
    type Input = KvInput;
    type Output = KvOutput;

    fn initial_state(&self) -> Self::State {
        None
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
            (KvInput::Put { value, .. }, None | Some(KvOutput::Done)) => {
                Some(Some(value.as_str().into()))
            }
            (KvInput::Get { .. }, None) => Some(state.clone()),
            // Evicted (or never written): absent from now on.
            (KvInput::Get { .. }, Some(KvOutput::Value(None))) => Some(None),
            (KvInput::Get { .. }, Some(KvOutput::Value(Some(seen)))) => {
                (state.as_deref() == Some(seen.as_str())).then(|| state.clone())
            }
            (input, output) => panic!(
                "evicting kv model: only put and get with their outputs, got {input:?} -> \
                 {output:?}"
            ),
        }
    }

    fn partition(&self, input: &KvInput) -> String {
        input.key().to_string()
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get { .. })
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
    }
}
