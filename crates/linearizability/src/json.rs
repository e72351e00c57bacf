//! The JSON history format (described in the crate docs) and [`JsonModel`], which
//! says how one model's inputs and outputs look in it.

use serde_json::{Map, Value, json};

use crate::error::{HistoryError, OperationLabel};
use crate::history::{History, Operation, Outcome};
use crate::model::Model;

/// A model whose operations can be read from and written to the JSON format.
pub trait JsonModel: Model {
    /// The value of the document's `"model"` field that selects this model.
    const NAME: &'static str;

    /// Reads an operation's `"input"` object.
    ///
    /// # Errors
    ///
    /// A [`FieldProblem`] naming the field inside `input` that is missing or wrong.
    fn input_from_json(&self, input: &Map<String, Value>) -> Result<Self::Input, FieldProblem>;

    /// Reads an operation's `"output"` object; its shape depends on the input.
    ///
    /// # Errors
    ///
    /// A [`FieldProblem`] naming the field inside `output` that is missing or wrong.
    fn output_from_json(
        &self,
        input: &Self::Input,
        output: &Map<String, Value>,
    ) -> Result<Self::Output, FieldProblem>;

    /// Writes an input as its `"input"` object.
    fn input_to_json(&self, input: &Self::Input) -> Value;

    /// Writes an output as its `"output"` object.
    fn output_to_json(&self, output: &Self::Output) -> Value;
}

/// A field inside an operation's `input` or `output` that is missing or wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field name, relative to the object being read (for example `key`).
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    fn within(self, object: &str, operation: OperationLabel) -> HistoryError {
        HistoryError::Operation {
            operation,
            field: format!("{object}.{}", self.field),
            problem: self.problem,
        }
    }
}

/// Reads a field that must be a string.
///
/// # Errors
///
/// If the field is missing or not a string.
pub fn required_string(object: &Map<String, Value>, field: &str) -> Result<String, FieldProblem> {
    match object.get(field) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(FieldProblem::new(
            field,
            format!("must be a string, found {other}"),
        )),
        None => Err(FieldProblem::new(field, "is missing (it must be a string)")),
    }
}

/// Reads a field that must be present and be a string or `null`.
///
/// # Errors
///
/// If the field is missing or neither a string nor `null`.
pub fn optional_string(
    object: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, FieldProblem> {
    match object.get(field) {
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Null) => Ok(None),
        Some(other) => Err(FieldProblem::new(
            field,
            format!("must be a string or null, found {other}"),
        )),
        None => Err(FieldProblem::new(
            field,
            "is missing (it must be a string or null)",
        )),
    }
}

/// Reads a field that must be a boolean.
///
/// # Errors
///
/// If the field is missing or not a boolean.
pub fn required_bool(object: &Map<String, Value>, field: &str) -> Result<bool, FieldProblem> {
    match object.get(field) {
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(other) => Err(FieldProblem::new(
            field,
            format!("must be true or false, found {other}"),
        )),
        None => Err(FieldProblem::new(
            field,
            "is missing (it must be true or false)",
        )),
    }
}

/// A parsed JSON history whose operations are not yet interpreted: the model
/// name decides which [`JsonModel`] reads them.
#[derive(Clone, Debug)]
pub struct JsonHistory {
    /// The `"model"` field.
    pub model: String,
    operations: Vec<Value>,
}

impl JsonHistory {
    /// Parses the document's outer shape: an object with a string `model` and
    /// an array `operations`.
    ///
    /// # Errors
    ///
    /// [`HistoryError::NotJson`] or [`HistoryError::Document`].
    pub fn parse(text: &str) -> Result<Self, HistoryError> {
        let document: Value = serde_json::from_str(text)?;
        let Value::Object(mut document) = document else {
            return Err(document_problem("(document)", "must be a JSON object"));
        };
        let model = match document.remove("model") {
            Some(Value::String(model)) => model,
            Some(other) => {
                return Err(document_problem(
                    "model",
                    format!("must be a string, found {other}"),
                ));
            }
            None => return Err(document_problem("model", "is missing")),
        };
        let operations = match document.remove("operations") {
            Some(Value::Array(operations)) => operations,
            Some(_) => return Err(document_problem("operations", "must be an array")),
            None => return Err(document_problem("operations", "is missing")),
        };
        Ok(Self { model, operations })
    }

    /// Interprets the operations with `model`.
    ///
    /// # Errors
    ///
    /// [`HistoryError::Document`] if the document names another model;
    /// [`HistoryError::Operation`] naming the first bad operation and field.
    pub fn decode<M: JsonModel>(
        &self,
        model: &M,
    ) -> Result<History<M::Input, M::Output>, HistoryError> {
        if self.model != M::NAME {
            return Err(document_problem(
                "model",
                format!("is {:?}, but this reader expects {:?}", self.model, M::NAME),
            ));
        }
        let operations = self
            .operations
            .iter()
            .enumerate()
            .map(|(index, operation)| decode_operation(model, index, operation))
            .collect::<Result<Vec<_>, _>>()?;
        History::new(operations)
    }
}

fn document_problem(field: &str, problem: impl Into<String>) -> HistoryError {
    HistoryError::Document {
        field: field.to_string(),
        problem: problem.into(),
    }
}

fn decode_operation<M: JsonModel>(
    model: &M,
    index: usize,
    operation: &Value,
) -> Result<Operation<M::Input, M::Output>, HistoryError> {
    let mut label = OperationLabel {
        index,
        client: None,
    };
    let problem = |label: OperationLabel, field: &str, problem: String| HistoryError::Operation {
        operation: label,
        field: field.to_string(),
        problem,
    };
    let Value::Object(operation) = operation else {
        return Err(problem(
            label,
            "(operation)",
            format!("must be a JSON object, found {operation}"),
        ));
    };
    let time = |field: &str, label: OperationLabel| -> Result<Option<u64>, HistoryError> {
        match operation.get(field) {
            Some(Value::Null) => Ok(None),
            Some(value) => value.as_u64().map(Some).ok_or_else(|| {
                problem(
                    label,
                    field,
                    format!("must be a non-negative integer, found {value}"),
                )
            }),
            None => Err(problem(label, field, "is missing".to_string())),
        }
    };
    let client = time("client", label)?.ok_or_else(|| {
        problem(
            label,
            "client",
            "must be an integer, found null".to_string(),
        )
    })?;
    label.client = Some(client);
    let call_time = time("call", label)?
        .ok_or_else(|| problem(label, "call", "must be an integer, found null".to_string()))?;
    let return_time = time("return", label)?;
    let input = match operation.get("input") {
        Some(Value::Object(input)) => model
            .input_from_json(input)
            .map_err(|field| field.within("input", label))?,
        Some(other) => {
            return Err(problem(
                label,
                "input",
                format!("must be an object, found {other}"),
            ));
        }
        None => return Err(problem(label, "input", "is missing".to_string())),
    };
    let outcome = match (operation.get("output"), return_time) {
        (None, _) => {
            return Err(problem(
                label,
                "output",
                "is missing (use null if unknown)".to_string(),
            ));
        }
        (Some(Value::Null), gave_up_at) => Outcome::Unknown { gave_up_at },
        (Some(Value::Object(output)), Some(time)) => Outcome::Returned {
            time,
            output: model
                .output_from_json(&input, output)
                .map_err(|field| field.within("output", label))?,
        },
        (Some(Value::Object(_)), None) => {
            return Err(problem(
                label,
                "return",
                "is null but output is not: an operation with no return time has an unknown \
                 outcome, so its output must be null too"
                    .to_string(),
            ));
        }
        (Some(other), _) => {
            return Err(problem(
                label,
                "output",
                format!("must be an object or null, found {other}"),
            ));
        }
    };
    Ok(Operation {
        client,
        call_time,
        input,
        outcome,
    })
}

impl<I, O> History<I, O> {
    /// Writes this history in the JSON format.
    pub fn to_json<M>(&self, model: &M) -> Value
    where
        M: JsonModel<Input = I, Output = O>,
    {
        let operations: Vec<Value> = self
            .operations()
            .iter()
            .map(|operation| {
                let (return_time, output) = match &operation.outcome {
                    Outcome::Returned { time, output } => {
                        (json!(time), model.output_to_json(output))
                    }
                    // An unknown outcome keeps when the client gave up, if known.
                    Outcome::Unknown { gave_up_at } => (json!(gave_up_at), Value::Null),
                };
                json!({
                    "client": operation.client,
                    "call": operation.call_time,
                    "return": return_time,
                    "input": model.input_to_json(&operation.input),
                    "output": output,
                })
            })
            .collect();
        json!({ "model": M::NAME, "operations": operations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{KvModel, KvOutput, RegisterInput, RegisterModel};

    fn decode_register(operations: &str) -> Result<History<RegisterInput, KvOutput>, HistoryError> {
        JsonHistory::parse(&format!(
            r#"{{"model": "register", "operations": [{operations}]}}"#
        ))?
        .decode(&RegisterModel)
    }

    #[test]
    fn a_known_return_with_unknown_output_is_an_unknown_outcome_that_keeps_the_time() {
        let history = decode_register(
            r#"{"client": 1, "call": 5, "return": 9, "input": {"op": "write", "value": "v"}, "output": null}"#,
        )
        .expect("valid");
        assert_eq!(
            history.operations()[0].outcome,
            Outcome::Unknown {
                gave_up_at: Some(9)
            }
        );
    }

    #[test]
    fn register_histories_round_trip() {
        let history = decode_register(
            r#"{"client": 1, "call": 0, "return": 3, "input": {"op": "cas", "expected": null, "value": "v"}, "output": {"ok": false}},
               {"client": 2, "call": 1, "return": null, "input": {"op": "read"}, "output": null},
               {"client": 3, "call": 2, "return": 4, "input": {"op": "read"}, "output": {"value": "v"}}"#,
        )
        .expect("valid");
        let text = history.to_json(&RegisterModel).to_string();
        let again = JsonHistory::parse(&text).and_then(|document| document.decode(&RegisterModel));
        assert_eq!(again.expect("round trip"), history);
    }

    #[test]
    fn decoding_with_the_wrong_model_is_refused() {
        let document =
            JsonHistory::parse(r#"{"model": "register", "operations": []}"#).expect("valid");
        let error = document.decode(&KvModel::new()).expect_err("wrong model");
        assert!(error.to_string().starts_with("field \"model\""), "{error}");
    }

    #[test]
    fn a_non_object_operation_is_named() {
        let error = decode_register("42").expect_err("not an object");
        assert_eq!(
            error.to_string(),
            "operation 0: field \"(operation)\": must be a JSON object, found 42"
        );
    }

    #[test]
    fn a_wrongly_typed_value_is_named() {
        let error = decode_register(
            r#"{"client": 1, "call": 0, "return": 3, "input": {"op": "write", "value": 7}, "output": {}}"#,
        )
        .expect_err("number value");
        assert_eq!(
            error.to_string(),
            "operation 0 (client 1): field \"input.value\": must be a string, found 7"
        );
    }
}
