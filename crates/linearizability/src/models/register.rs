//! The `register` model: one value with read, write and compare-and-set.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::json::{FieldProblem, JsonModel, optional_string, required_bool, required_string};
use crate::model::{Model, describe_value};
use crate::models::kv::{
    KvModel, KvOutput, arc_str_heap_bytes, describe_answer, step_cas, step_read,
};

/// A client request to the register.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    /// Read the value; before any write it reads as `None`.
    Read,
    /// Replace the value.
    Write { value: String },
    /// Set the value to `value` if it currently is `expected` (`None`: never written).
    Cas {
        expected: Option<String>,
        value: String,
    },
}

/// The register answers like the key/value store: [`KvOutput::Value`] for a
/// read, [`KvOutput::Done`] for a write, [`KvOutput::Cas`] for a cas.
pub type RegisterOutput = KvOutput;

/// The single-register specification. There is one partition: every operation
/// touches the same value.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterModel;

impl Model for RegisterModel {
    type State = Option<Arc<str>>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn initial_state(&self) -> Self::State {
        None
    }

    /// # Panics
    ///
    /// If `output` is of the wrong kind for `input` (see [`KvModel`](crate::KvModel)).
    fn step(
        &self,
        state: &Self::State,
        input: &RegisterInput,
        output: Option<&RegisterOutput>,
    ) -> Option<Self::State> {
        match (input, output) {
            (RegisterInput::Read, None) => step_read(state, None),
            (RegisterInput::Read, Some(KvOutput::Value(value))) => {
                step_read(state, Some(value.as_deref()))
            }
            (RegisterInput::Write { value }, None | Some(KvOutput::Done)) => {
                Some(Some(value.as_str().into()))
            }
            (RegisterInput::Cas { expected, value }, None) => {
                step_cas(state, expected.as_deref(), value, None)
            }
            (RegisterInput::Cas { expected, value }, Some(KvOutput::Cas(ok))) => {
                step_cas(state, expected.as_deref(), value, Some(*ok))
            }
            (input, Some(output)) => panic!(
                "register model: operation {input:?} cannot have output {output:?}; \
                 the history recorder paired them wrongly"
            ),
        }
    }

    fn is_read_only(&self, input: &RegisterInput) -> bool {
        matches!(input, RegisterInput::Read)
    }

    fn never_changes_state(&self, input: &RegisterInput) -> bool {
        matches!(input, RegisterInput::Read)
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        arc_str_heap_bytes(state)
    }

    fn describe_operation(&self, input: &RegisterInput, output: Option<&RegisterOutput>) -> String {
        let call = match input {
            RegisterInput::Read => "read()".to_string(),
            RegisterInput::Write { value } => format!("write({value:?})"),
            RegisterInput::Cas { expected, value } => {
                format!("cas({} -> {value:?})", describe_value(expected.as_deref()))
            }
        };
        describe_answer(call, output)
    }

    fn describe_state(&self, state: &Self::State) -> String {
        describe_value(state.as_deref())
    }
}

impl JsonModel for RegisterModel {
    const NAME: &'static str = "register";

    fn input_from_json(&self, input: &Map<String, Value>) -> Result<RegisterInput, FieldProblem> {
        match required_string(input, "op")?.as_str() {
            "read" => Ok(RegisterInput::Read),
            "write" => Ok(RegisterInput::Write {
                value: required_string(input, "value")?,
            }),
            "cas" => Ok(RegisterInput::Cas {
                expected: optional_string(input, "expected")?,
                value: required_string(input, "value")?,
            }),
            unknown => Err(FieldProblem::new(
                "op",
                format!("unknown op {unknown:?} for model register (expected read, write or cas)"),
            )),
        }
    }

    fn output_from_json(
        &self,
        input: &RegisterInput,
        output: &Map<String, Value>,
    ) -> Result<RegisterOutput, FieldProblem> {
        match input {
            RegisterInput::Read => Ok(KvOutput::Value(optional_string(output, "value")?)),
            RegisterInput::Write { .. } => Ok(KvOutput::Done),
            RegisterInput::Cas { .. } => Ok(KvOutput::Cas(required_bool(output, "ok")?)),
        }
    }

    fn input_to_json(&self, input: &RegisterInput) -> Value {
        match input {
            RegisterInput::Read => json!({"op": "read"}),
            RegisterInput::Write { value } => json!({"op": "write", "value": value}),
            RegisterInput::Cas { expected, value } => {
                json!({"op": "cas", "expected": expected, "value": value})
            }
        }
    }

    fn output_to_json(&self, output: &RegisterOutput) -> Value {
        KvModel::new().output_to_json(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(
        before: Option<&str>,
        input: RegisterInput,
        output: Option<KvOutput>,
    ) -> Option<Option<String>> {
        RegisterModel
            .step(&before.map(Arc::from), &input, output.as_ref())
            .map(|after| after.as_deref().map(str::to_string))
    }

    fn written(value: &str) -> Option<Option<String>> {
        Some(Some(value.to_string()))
    }

    #[test]
    fn read_before_any_write_is_null() {
        assert_eq!(
            step(None, RegisterInput::Read, Some(KvOutput::Value(None))),
            Some(None)
        );
        assert_eq!(
            step(
                None,
                RegisterInput::Read,
                Some(KvOutput::Value(Some("x".into())))
            ),
            None
        );
    }

    #[test]
    fn read_must_see_the_current_value() {
        let read_x = Some(KvOutput::Value(Some("x".into())));
        assert_eq!(
            step(Some("x"), RegisterInput::Read, read_x.clone()),
            written("x")
        );
        assert_eq!(step(Some("y"), RegisterInput::Read, read_x), None);
        assert_eq!(step(Some("y"), RegisterInput::Read, None), written("y"));
    }

    #[test]
    fn write_replaces_the_value() {
        let write = RegisterInput::Write { value: "y".into() };
        assert_eq!(
            step(Some("x"), write.clone(), Some(KvOutput::Done)),
            written("y")
        );
        assert_eq!(step(None, write, None), written("y"));
    }

    #[test]
    fn cas_follows_the_state() {
        let cas = |expected: Option<&str>| RegisterInput::Cas {
            expected: expected.map(str::to_string),
            value: "y".into(),
        };
        assert_eq!(
            step(Some("x"), cas(Some("x")), Some(KvOutput::Cas(true))),
            written("y")
        );
        assert_eq!(
            step(Some("x"), cas(Some("x")), Some(KvOutput::Cas(false))),
            None
        );
        assert_eq!(
            step(Some("x"), cas(None), Some(KvOutput::Cas(false))),
            written("x")
        );
        assert_eq!(
            step(None, cas(None), Some(KvOutput::Cas(true))),
            written("y")
        );
        assert_eq!(step(None, cas(Some("x")), None), Some(None));
    }

    #[test]
    fn everything_is_one_partition() {
        assert_eq!(RegisterModel.partition(&RegisterInput::Read), "");
    }
}
