//! The `kv` model: a map from string keys to string values with get, put,
//! append, delete and compare-and-set, checked one key at a time; and the
//! Redis-shaped operations on top (conditional set with the old value,
//! increment, get-and-delete, strlen, expire, persist, ttl).
//!
//! **Time is not modelled.** The state is a key's value only. The TTL
//! operations are checked as far as that allows, and are meant for
//! histories in which no deadline passes during the run (the simulation
//! tests give minutes-long TTLs to runs of seconds): an expire answers
//! whether the key is present and changes no value; a ttl read answers
//! whether the key is present; a persist's answer (whether the key had a
//! deadline) is not checked, and it changes no value.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::json::{FieldProblem, JsonModel, optional_string, required_bool, required_string};
use crate::model::{Model, describe_value};

/// A client request to the key/value store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// Read a key; an absent key reads as `None`.
    Get { key: String },
    /// Set a key to a value.
    Put { key: String, value: String },
    /// Concatenate a value onto a key's value; an absent key becomes the value.
    Append { key: String, value: String },
    /// Remove a key.
    Delete { key: String },
    /// Set the key to `value` if its current value is `expected` (`None`: absent).
    Cas {
        key: String,
        expected: Option<String>,
        value: String,
    },
    /// Redis's `SET` with a condition: write if `condition` holds; with
    /// `get`, answer the value before (`SET ... GET`). Answers
    /// [`KvOutput::Set`].
    Set {
        key: String,
        value: String,
        condition: SetIf,
        get: bool,
    },
    /// Add `delta` to the key's decimal integer (absent: 0). Answers
    /// [`KvOutput::Integer`], or [`KvOutput::Refused`] (nothing changed)
    /// when the value is not an integer or the sum overflows.
    Incr { key: String, delta: i64 },
    /// Remove the key; answers its value before ([`KvOutput::Value`]).
    GetDel { key: String },
    /// The value's length in bytes (absent: 0), [`KvOutput::Integer`].
    Strlen { key: String },
    /// Give the key a (long) deadline; [`KvOutput::Applied`]: whether the
    /// key is present.
    Expire { key: String },
    /// Remove the key's deadline; [`KvOutput::Applied`], not checked (the
    /// model keeps no deadlines).
    Persist { key: String },
    /// Whether the key is present, read by its TTL ([`KvOutput::Applied`]).
    Ttl { key: String },
}

/// [`KvInput::Set`]'s condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetIf {
    Always,
    /// Only if the key is absent (`NX`).
    Absent,
    /// Only if the key is present (`XX`).
    Present,
}

impl KvInput {
    /// The key this operation touches (its partition).
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key }
            | KvInput::Put { key, .. }
            | KvInput::Append { key, .. }
            | KvInput::Delete { key }
            | KvInput::Cas { key, .. }
            | KvInput::Set { key, .. }
            | KvInput::Incr { key, .. }
            | KvInput::GetDel { key }
            | KvInput::Strlen { key }
            | KvInput::Expire { key }
            | KvInput::Persist { key }
            | KvInput::Ttl { key } => key,
        }
    }
}

/// What the store answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// The answer to a get: the value, or `None` if the key was absent.
    Value(Option<String>),
    /// The answer to a put or append (and to a delete whose history did not
    /// record whether the key existed, as in older JSON files).
    Done,
    /// The answer to a delete: whether the key existed. Checked: a delete
    /// that answers `true` of an absent key (or `false` of a present one)
    /// is not a legal step.
    Deleted(bool),
    /// The answer to a cas: whether the swap happened.
    Cas(bool),
    /// The answer to a [`KvInput::Set`]: whether it wrote, and the value
    /// before when it was asked for (else `None`).
    Set {
        applied: bool,
        previous: Option<String>,
    },
    /// A number: an increment's result, a strlen.
    Integer(i64),
    /// An expire's, persist's or ttl's answer (see [`KvInput`]).
    Applied(bool),
    /// The operation was refused and changed nothing (an increment of a
    /// value that is not an integer).
    Refused,
}

/// The key/value store specification. Its state is the value of one key (see
/// the partitioning rule in [`Model`]); `Arc<str>` makes the many state copies
/// the memo keeps cost a reference count rather than a string copy.
///
/// [`KvModel::new`] is a store that keeps every key until an operation
/// removes it; [`KvModel::evicting`] one that may also drop any key at any
/// moment (a capacity-bounded cache).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvModel {
    /// Whether the store may drop keys on its own ([`KvModel::evicting`]).
    evictions: bool,
}

impl KvModel {
    /// A store that keeps every key until an operation removes it: every
    /// operation above is checked.
    pub const fn new() -> KvModel {
        KvModel { evictions: false }
    }

    /// A store that may drop any key at any moment (a capacity-bounded
    /// cache). Eviction is invisible to writers, so it is modelled as an
    /// event that may happen between any two operations: a get may always
    /// see the key absent (and then the key *is* absent until the next
    /// put); a get that sees a value must see the latest put's, and a put
    /// steps as without evictions. What it still catches: a stale or
    /// invented value, and a value coming back after it was seen evicted.
    ///
    /// Only puts and gets: after a silent eviction an append starts from
    /// empty (its result is not a function of the state), and the other
    /// operations answer from a state an eviction may have changed unseen.
    /// Stepping any other operation panics (a harness bug).
    pub const fn evicting() -> KvModel {
        KvModel { evictions: true }
    }
}

impl Model for KvModel {
    type State = Option<Arc<str>>;
    type Input = KvInput;
    type Output = KvOutput;

    fn initial_state(&self) -> Self::State {
        None
    }

    /// # Panics
    ///
    /// If `output` is of the wrong kind for `input` (for example a get answered
    /// with [`KvOutput::Done`]): the JSON reader never builds such a pair, so it
    /// can only come from a broken test harness. With evictions, on an
    /// operation other than put or get (see [`KvModel::evicting`]).
    fn step(
        &self,
        state: &Self::State,
        input: &KvInput,
        output: Option<&KvOutput>,
    ) -> Option<Self::State> {
        if self.evictions {
            step_evicting(state, input, output)
        } else {
            step_keeping(state, input, output)
        }
    }

    fn partition(&self, input: &KvInput) -> String {
        input.key().to_string()
    }

    /// The operations that only observe: get, strlen, ttl, persist; with
    /// evictions, get alone.
    fn is_read_only(&self, input: &KvInput) -> bool {
        match input {
            KvInput::Get { .. } => true,
            KvInput::Strlen { .. } | KvInput::Ttl { .. } | KvInput::Persist { .. } => {
                !self.evictions
            }
            _ => false,
        }
    }

    /// The read-only operations: each either fails or leaves the value as it
    /// is, whatever it answered. None with evictions: a get that sees the
    /// key absent records an eviction.
    fn never_changes_state(&self, input: &KvInput) -> bool {
        !self.evictions && self.is_read_only(input)
    }

    /// Get and append: a value only ever grows by appends. Nothing with
    /// evictions (an eviction shrinks the value).
    fn is_monotone(&self, input: &KvInput) -> bool {
        !self.evictions && matches!(input, KvInput::Get { .. } | KvInput::Append { .. })
    }

    /// Appends turn an absent key into a value and a value into a longer one
    /// with it as a prefix, so from `state` a get can still see `output` only
    /// if the state is absent (and the get saw anything), or a prefix of what
    /// the get saw.
    fn may_still_observe(&self, state: &Self::State, read: &KvInput, output: &KvOutput) -> bool {
        match (read, output) {
            (KvInput::Get { .. }, KvOutput::Value(observed)) if !self.evictions => {
                may_grow_into(state.as_deref(), observed.as_deref())
            }
            _ => true,
        }
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        arc_str_heap_bytes(state)
    }

    fn describe_operation(&self, input: &KvInput, output: Option<&KvOutput>) -> String {
        describe_kv_operation(input, output)
    }

    fn describe_state(&self, state: &Self::State) -> String {
        describe_value(state.as_deref())
    }
}

/// [`KvModel::evicting`]'s step: a get that saw the key absent records an
/// eviction; gets that saw a value and puts step as without evictions.
fn step_evicting(
    state: &Option<Arc<str>>,
    input: &KvInput,
    output: Option<&KvOutput>,
) -> Option<Option<Arc<str>>> {
    match (input, output) {
        // Evicted (or never written): absent from now on.
        (KvInput::Get { .. }, Some(KvOutput::Value(None))) => Some(None),
        (KvInput::Get { .. }, None | Some(KvOutput::Value(Some(_))))
        | (KvInput::Put { .. }, None | Some(KvOutput::Done)) => step_keeping(state, input, output),
        (input, output) => panic!(
            "kv model with evictions: only put and get with their outputs, got {input:?} -> \
             {output:?}"
        ),
    }
}

/// [`KvModel::new`]'s step (see [`Model::step`]).
fn step_keeping(
    state: &Option<Arc<str>>,
    input: &KvInput,
    output: Option<&KvOutput>,
) -> Option<Option<Arc<str>>> {
    match (input, output) {
        (KvInput::Get { .. }, None | Some(KvOutput::Value(_))) => {
            step_read(state, output.and_then(|output| output.value()))
        }
        (KvInput::Put { value, .. }, None | Some(KvOutput::Done)) => {
            Some(Some(value.as_str().into()))
        }
        (KvInput::Append { value, .. }, None | Some(KvOutput::Done)) => {
            let mut appended = String::from(state.as_deref().unwrap_or(""));
            appended.push_str(value);
            Some(Some(appended.into()))
        }
        (KvInput::Delete { .. }, None | Some(KvOutput::Done)) => Some(None),
        (KvInput::Delete { .. }, Some(KvOutput::Deleted(existed))) => {
            (*existed == state.is_some()).then_some(None)
        }
        (
            KvInput::Cas {
                expected, value, ..
            },
            None | Some(KvOutput::Cas(_)),
        ) => step_cas(
            state,
            expected.as_deref(),
            value,
            output.and_then(KvOutput::swapped),
        ),
        (
            KvInput::Set {
                value,
                condition,
                get,
                ..
            },
            None | Some(KvOutput::Set { .. }),
        ) => {
            let applied = match condition {
                SetIf::Always => true,
                SetIf::Absent => state.is_none(),
                SetIf::Present => state.is_some(),
            };
            if let Some(KvOutput::Set {
                applied: answered,
                previous,
            }) = output
            {
                let expected_previous = if *get { state.as_deref() } else { None };
                if *answered != applied || previous.as_deref() != expected_previous {
                    return None;
                }
            }
            Some(if applied {
                Some(value.as_str().into())
            } else {
                state.clone()
            })
        }
        (KvInput::Incr { delta, .. }, None | Some(KvOutput::Integer(_) | KvOutput::Refused)) => {
            let sum = match state.as_deref() {
                None => Some(*delta),
                Some(text) => text
                    .parse::<i64>()
                    .ok()
                    .and_then(|current| current.checked_add(*delta)),
            };
            match (sum, output) {
                (Some(sum), None | Some(KvOutput::Integer(_))) => {
                    if output.is_some_and(|output| *output != KvOutput::Integer(sum)) {
                        return None;
                    }
                    Some(Some(sum.to_string().into()))
                }
                (None, None | Some(KvOutput::Refused)) => Some(state.clone()),
                _ => None,
            }
        }
        (KvInput::GetDel { .. }, None) => Some(None),
        (KvInput::GetDel { .. }, Some(KvOutput::Value(seen))) => {
            (seen.as_deref() == state.as_deref()).then_some(None)
        }
        (KvInput::Strlen { .. }, None | Some(KvOutput::Integer(_))) => {
            let length = state.as_deref().map_or(0, str::len) as i64;
            match output {
                Some(KvOutput::Integer(answered)) if *answered != length => None,
                _ => Some(state.clone()),
            }
        }
        (KvInput::Expire { .. } | KvInput::Ttl { .. }, None | Some(KvOutput::Applied(_))) => {
            match output {
                Some(KvOutput::Applied(present)) if *present != state.is_some() => None,
                _ => Some(state.clone()),
            }
        }
        (KvInput::Persist { .. }, None | Some(KvOutput::Applied(_))) => Some(state.clone()),
        (input, Some(output)) => mismatched_output(input, output),
    }
}

/// An operation as reports show it: `get(k) -> "x"`, `put(k, "v")`, ...
fn describe_kv_operation(input: &KvInput, output: Option<&KvOutput>) -> String {
    let call = match input {
        KvInput::Get { key } => format!("get({key})"),
        KvInput::Put { key, value } => format!("put({key}, {value:?})"),
        KvInput::Append { key, value } => format!("append({key}, {value:?})"),
        KvInput::Delete { key } => format!("delete({key})"),
        KvInput::Cas {
            key,
            expected,
            value,
        } => {
            format!(
                "cas({key}, {} -> {value:?})",
                describe_value(expected.as_deref())
            )
        }
        KvInput::Set {
            key,
            value,
            condition,
            get,
        } => {
            let condition = match condition {
                SetIf::Always => "",
                SetIf::Absent => " nx",
                SetIf::Present => " xx",
            };
            let get = if *get { " get" } else { "" };
            format!("set({key}, {value:?}{condition}{get})")
        }
        KvInput::Incr { key, delta } => format!("incr({key}, {delta})"),
        KvInput::GetDel { key } => format!("getdel({key})"),
        KvInput::Strlen { key } => format!("strlen({key})"),
        KvInput::Expire { key } => format!("expire({key})"),
        KvInput::Persist { key } => format!("persist({key})"),
        KvInput::Ttl { key } => format!("ttl({key})"),
    };
    describe_answer(call, output)
}

impl KvOutput {
    /// The value a get observed: `Some(None)` for an absent key, `None` if this
    /// is not a get's answer.
    fn value(&self) -> Option<Option<&str>> {
        match self {
            KvOutput::Value(value) => Some(value.as_deref()),
            _ => None,
        }
    }

    /// Whether a cas swapped, or `None` if this is not a cas's answer.
    fn swapped(&self) -> Option<bool> {
        match self {
            KvOutput::Cas(ok) => Some(*ok),
            _ => None,
        }
    }
}

/// A read that observed `observed` (`None`: outcome unknown) changes nothing and
/// is legal only if it saw the current value. Shared with the register model.
pub(crate) fn step_read(
    state: &Option<Arc<str>>,
    observed: Option<Option<&str>>,
) -> Option<Option<Arc<str>>> {
    match observed {
        Some(observed) if state.as_deref() != observed => None,
        _ => Some(state.clone()),
    }
}

/// Whether appends can turn `state` into `observed`: absent grows into
/// anything present (or stays absent), a value only into values it prefixes.
pub(crate) fn may_grow_into(state: Option<&str>, observed: Option<&str>) -> bool {
    match (state, observed) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(state), Some(observed)) => observed.starts_with(state),
    }
}

/// What an `Option<Arc<str>>` owns on the heap: the string and the two
/// reference counts beside it.
pub(crate) fn arc_str_heap_bytes(state: &Option<Arc<str>>) -> usize {
    state
        .as_deref()
        .map_or(0, |value| value.len() + 2 * std::mem::size_of::<usize>())
}

/// A compare-and-set swaps exactly when the state equals `expected`; a reported
/// result (`swapped`, `None` if unknown) must agree. Shared with the register model.
pub(crate) fn step_cas(
    state: &Option<Arc<str>>,
    expected: Option<&str>,
    value: &str,
    swapped: Option<bool>,
) -> Option<Option<Arc<str>>> {
    let swaps = state.as_deref() == expected;
    if swapped.is_some_and(|swapped| swapped != swaps) {
        return None;
    }
    Some(if swaps {
        Some(value.into())
    } else {
        state.clone()
    })
}

/// Appends the answer to a described call: `get(k) -> "x"`, `cas(..) -> ok`, or
/// `-> ?` when the outcome is unknown. Shared with the register model.
pub(crate) fn describe_answer(call: String, output: Option<&KvOutput>) -> String {
    match output {
        None => format!("{call} -> ?"),
        Some(KvOutput::Value(value)) => format!("{call} -> {}", describe_value(value.as_deref())),
        Some(KvOutput::Done) => call,
        Some(KvOutput::Cas(ok)) => format!("{call} -> {}", if *ok { "ok" } else { "failed" }),
        Some(KvOutput::Deleted(existed)) => {
            format!("{call} -> {}", if *existed { "existed" } else { "absent" })
        }
        Some(KvOutput::Set { applied, previous }) => format!(
            "{call} -> {}, was {}",
            if *applied { "set" } else { "not set" },
            describe_value(previous.as_deref())
        ),
        Some(KvOutput::Integer(number)) => format!("{call} -> {number}"),
        Some(KvOutput::Applied(applied)) => format!("{call} -> {applied}"),
        Some(KvOutput::Refused) => format!("{call} -> refused"),
    }
}

fn mismatched_output(input: &KvInput, output: &KvOutput) -> ! {
    panic!(
        "kv model: operation {input:?} cannot have output {output:?}; the history recorder paired them wrongly"
    )
}

impl JsonModel for KvModel {
    const NAME: &'static str = "kv";

    fn input_from_json(&self, input: &Map<String, Value>) -> Result<KvInput, FieldProblem> {
        let op = required_string(input, "op")?;
        let key = || required_string(input, "key");
        let value = || required_string(input, "value");
        match op.as_str() {
            "get" => Ok(KvInput::Get { key: key()? }),
            "put" => Ok(KvInput::Put {
                key: key()?,
                value: value()?,
            }),
            "append" => Ok(KvInput::Append {
                key: key()?,
                value: value()?,
            }),
            "delete" => Ok(KvInput::Delete { key: key()? }),
            "cas" => Ok(KvInput::Cas {
                key: key()?,
                expected: optional_string(input, "expected")?,
                value: value()?,
            }),
            "set" => Ok(KvInput::Set {
                key: key()?,
                value: value()?,
                condition: match optional_string(input, "condition")?.as_deref() {
                    None | Some("always") => SetIf::Always,
                    Some("nx") => SetIf::Absent,
                    Some("xx") => SetIf::Present,
                    Some(other) => {
                        return Err(FieldProblem::new(
                            "condition",
                            format!("unknown condition {other:?} (expected always, nx or xx)"),
                        ));
                    }
                },
                get: input.get("get").is_some() && required_bool(input, "get")?,
            }),
            "incr" => Ok(KvInput::Incr {
                key: key()?,
                delta: required_i64(input, "delta")?,
            }),
            "getdel" => Ok(KvInput::GetDel { key: key()? }),
            "strlen" => Ok(KvInput::Strlen { key: key()? }),
            "expire" => Ok(KvInput::Expire { key: key()? }),
            "persist" => Ok(KvInput::Persist { key: key()? }),
            "ttl" => Ok(KvInput::Ttl { key: key()? }),
            unknown => Err(FieldProblem::new(
                "op",
                format!(
                    "unknown op {unknown:?} for model kv (expected get, put, append, delete, cas, set, incr, getdel, strlen, expire, persist or ttl)"
                ),
            )),
        }
    }

    fn output_from_json(
        &self,
        input: &KvInput,
        output: &Map<String, Value>,
    ) -> Result<KvOutput, FieldProblem> {
        match input {
            KvInput::Get { .. } => Ok(KvOutput::Value(optional_string(output, "value")?)),
            KvInput::Put { .. } | KvInput::Append { .. } => Ok(KvOutput::Done),
            // "existed" is optional: histories written before it was
            // recorded answer Done (unchecked).
            KvInput::Delete { .. } => match output.get("existed") {
                None => Ok(KvOutput::Done),
                Some(_) => Ok(KvOutput::Deleted(required_bool(output, "existed")?)),
            },
            KvInput::Cas { .. } => Ok(KvOutput::Cas(required_bool(output, "ok")?)),
            KvInput::Set { .. } => Ok(KvOutput::Set {
                applied: required_bool(output, "applied")?,
                previous: optional_string(output, "previous")?,
            }),
            KvInput::Incr { .. } if output.get("refused").is_some() => Ok(KvOutput::Refused),
            KvInput::Incr { .. } | KvInput::Strlen { .. } => {
                Ok(KvOutput::Integer(required_i64(output, "value")?))
            }
            KvInput::GetDel { .. } => Ok(KvOutput::Value(optional_string(output, "value")?)),
            KvInput::Expire { .. } | KvInput::Persist { .. } | KvInput::Ttl { .. } => {
                Ok(KvOutput::Applied(required_bool(output, "applied")?))
            }
        }
    }

    fn input_to_json(&self, input: &KvInput) -> Value {
        match input {
            KvInput::Get { key } => json!({"op": "get", "key": key}),
            KvInput::Put { key, value } => json!({"op": "put", "key": key, "value": value}),
            KvInput::Append { key, value } => json!({"op": "append", "key": key, "value": value}),
            KvInput::Delete { key } => json!({"op": "delete", "key": key}),
            KvInput::Cas {
                key,
                expected,
                value,
            } => {
                json!({"op": "cas", "key": key, "expected": expected, "value": value})
            }
            KvInput::Set {
                key,
                value,
                condition,
                get,
            } => {
                let condition = match condition {
                    SetIf::Always => "always",
                    SetIf::Absent => "nx",
                    SetIf::Present => "xx",
                };
                json!({"op": "set", "key": key, "value": value, "condition": condition, "get": get})
            }
            KvInput::Incr { key, delta } => json!({"op": "incr", "key": key, "delta": delta}),
            KvInput::GetDel { key } => json!({"op": "getdel", "key": key}),
            KvInput::Strlen { key } => json!({"op": "strlen", "key": key}),
            KvInput::Expire { key } => json!({"op": "expire", "key": key}),
            KvInput::Persist { key } => json!({"op": "persist", "key": key}),
            KvInput::Ttl { key } => json!({"op": "ttl", "key": key}),
        }
    }

    fn output_to_json(&self, output: &KvOutput) -> Value {
        match output {
            KvOutput::Value(value) => json!({ "value": value }),
            KvOutput::Done => json!({}),
            KvOutput::Cas(ok) => json!({ "ok": ok }),
            KvOutput::Deleted(existed) => json!({ "existed": existed }),
            KvOutput::Set { applied, previous } => {
                json!({ "applied": applied, "previous": previous })
            }
            KvOutput::Integer(value) => json!({ "value": value }),
            KvOutput::Applied(applied) => json!({ "applied": applied }),
            KvOutput::Refused => json!({ "refused": true }),
        }
    }
}

/// A required integer field.
fn required_i64(object: &Map<String, Value>, field: &str) -> Result<i64, FieldProblem> {
    object
        .get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| FieldProblem::new(field, "expected an integer".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(value: Option<&str>) -> Option<Arc<str>> {
        value.map(Arc::from)
    }

    fn step(
        before: Option<&str>,
        input: KvInput,
        output: Option<KvOutput>,
    ) -> Option<Option<String>> {
        KvModel::new()
            .step(&state(before), &input, output.as_ref())
            .map(|after| after.as_deref().map(str::to_string))
    }

    fn get(key: &str) -> KvInput {
        KvInput::Get { key: key.into() }
    }

    fn cas(expected: Option<&str>, value: &str) -> KvInput {
        KvInput::Cas {
            key: "k".into(),
            expected: expected.map(str::to_string),
            value: value.into(),
        }
    }

    #[test]
    fn get_of_absent_key_reads_null() {
        assert_eq!(
            step(None, get("k"), Some(KvOutput::Value(None))),
            Some(None)
        );
        assert_eq!(
            step(None, get("k"), Some(KvOutput::Value(Some("x".into())))),
            None
        );
    }

    #[test]
    fn get_must_read_the_current_value_and_changes_nothing() {
        let x = Some("x");
        assert_eq!(
            step(x, get("k"), Some(KvOutput::Value(Some("x".into())))),
            Some(Some("x".into()))
        );
        assert_eq!(
            step(x, get("k"), Some(KvOutput::Value(Some("y".into())))),
            None
        );
        assert_eq!(step(x, get("k"), Some(KvOutput::Value(None))), None);
    }

    #[test]
    fn get_with_unknown_outcome_is_always_possible() {
        assert_eq!(step(Some("x"), get("k"), None), Some(Some("x".into())));
    }

    #[test]
    fn put_overwrites() {
        let put = KvInput::Put {
            key: "k".into(),
            value: "y".into(),
        };
        assert_eq!(
            step(Some("x"), put.clone(), Some(KvOutput::Done)),
            Some(Some("y".into()))
        );
        assert_eq!(step(None, put, None), Some(Some("y".into())));
    }

    #[test]
    fn append_concatenates_and_creates_absent_keys() {
        let append = KvInput::Append {
            key: "k".into(),
            value: "y".into(),
        };
        assert_eq!(
            step(Some("x"), append.clone(), Some(KvOutput::Done)),
            Some(Some("xy".into()))
        );
        assert_eq!(
            step(None, append, Some(KvOutput::Done)),
            Some(Some("y".into()))
        );
    }

    #[test]
    fn delete_makes_the_key_absent() {
        let delete = KvInput::Delete { key: "k".into() };
        assert_eq!(
            step(Some("x"), delete.clone(), Some(KvOutput::Done)),
            Some(None)
        );
        assert_eq!(step(None, delete, None), Some(None));
    }

    #[test]
    fn delete_answer_must_match_whether_the_key_existed() {
        let delete = KvInput::Delete { key: "k".into() };
        assert_eq!(
            step(Some("x"), delete.clone(), Some(KvOutput::Deleted(true))),
            Some(None)
        );
        assert_eq!(
            step(None, delete.clone(), Some(KvOutput::Deleted(false))),
            Some(None)
        );
        assert_eq!(
            step(None, delete.clone(), Some(KvOutput::Deleted(true))),
            None,
            "a delete cannot find an absent key"
        );
        assert_eq!(
            step(Some("x"), delete, Some(KvOutput::Deleted(false))),
            None,
            "a delete cannot miss a present key"
        );
    }

    #[test]
    fn cas_swaps_only_when_expected_matches() {
        assert_eq!(
            step(Some("x"), cas(Some("x"), "y"), Some(KvOutput::Cas(true))),
            Some(Some("y".into()))
        );
        assert_eq!(
            step(Some("x"), cas(Some("z"), "y"), Some(KvOutput::Cas(false))),
            Some(Some("x".into()))
        );
        assert_eq!(
            step(None, cas(None, "y"), Some(KvOutput::Cas(true))),
            Some(Some("y".into()))
        );
        assert_eq!(
            step(Some("x"), cas(None, "y"), Some(KvOutput::Cas(false))),
            Some(Some("x".into()))
        );
    }

    #[test]
    fn cas_reporting_the_wrong_result_is_illegal() {
        assert_eq!(
            step(Some("x"), cas(Some("x"), "y"), Some(KvOutput::Cas(false))),
            None
        );
        assert_eq!(
            step(Some("x"), cas(Some("z"), "y"), Some(KvOutput::Cas(true))),
            None
        );
    }

    #[test]
    fn cas_with_unknown_outcome_takes_the_effect_the_state_dictates() {
        assert_eq!(
            step(Some("x"), cas(Some("x"), "y"), None),
            Some(Some("y".into()))
        );
        assert_eq!(
            step(Some("x"), cas(Some("z"), "y"), None),
            Some(Some("x".into()))
        );
    }

    #[test]
    #[should_panic(expected = "cannot have output")]
    fn mismatched_output_is_a_harness_bug() {
        step(None, get("k"), Some(KvOutput::Done));
    }

    #[test]
    fn a_later_get_bounds_what_appends_can_still_do() {
        let saw = |value: Option<&str>| KvOutput::Value(value.map(str::to_string));
        let may = |state_value: Option<&str>, observed: Option<&str>| {
            KvModel::new().may_still_observe(&state(state_value), &get("k"), &saw(observed))
        };
        assert!(may(None, None));
        assert!(may(None, Some("x 1 y")));
        assert!(may(Some(""), Some("x 1 y")));
        assert!(may(Some("x 1 y"), Some("x 1 yx 2 y")));
        assert!(may(Some("x 1 yx 2 y"), Some("x 1 yx 2 y")));
        assert!(!may(Some("x 2 y"), Some("x 1 yx 2 y")));
        assert!(!may(Some("x 1 yx 2 yx 3 y"), Some("x 1 yx 2 y")));
        assert!(!may(Some(""), None));
        assert!(KvModel::new().is_monotone(&get("k")));
        assert!(KvModel::new().is_monotone(&KvInput::Append {
            key: "k".into(),
            value: "v".into()
        }));
        assert!(!KvModel::new().is_monotone(&KvInput::Delete { key: "k".into() }));
        assert!(!KvModel::new().is_monotone(&cas(None, "v")));
    }

    #[test]
    fn only_get_is_read_only() {
        assert!(KvModel::new().is_read_only(&get("k")));
        assert!(!KvModel::new().is_read_only(&cas(Some("x"), "x")));
        assert!(!KvModel::new().is_read_only(&KvInput::Delete { key: "k".into() }));
    }

    #[test]
    fn partitions_by_key() {
        assert_eq!(KvModel::new().partition(&get("k7")), "k7");
    }

    #[test]
    fn describes_operations_readably() {
        let describe = |input: KvInput, output: Option<KvOutput>| {
            KvModel::new().describe_operation(&input, output.as_ref())
        };
        assert_eq!(
            describe(get("k"), Some(KvOutput::Value(None))),
            "get(k) -> null"
        );
        assert_eq!(
            describe(cas(None, "y"), Some(KvOutput::Cas(true))),
            "cas(k, null -> \"y\") -> ok"
        );
        assert_eq!(
            describe(KvInput::Delete { key: "k".into() }, None),
            "delete(k) -> ?"
        );
    }

    #[test]
    fn with_evictions_a_get_may_see_a_key_evicted_but_never_a_stale_value() {
        let model = KvModel::evicting();
        let x = state(Some("x"));
        let saw = |value: Option<&str>| KvOutput::Value(value.map(str::to_string));
        assert_eq!(model.step(&x, &get("k"), Some(&saw(None))), Some(None));
        assert_eq!(
            model.step(&x, &get("k"), Some(&saw(Some("x")))),
            Some(x.clone())
        );
        assert_eq!(model.step(&x, &get("k"), Some(&saw(Some("y")))), None);
        // Once seen evicted, the old value cannot come back.
        assert_eq!(model.step(&None, &get("k"), Some(&saw(Some("x")))), None);
        // A put steps as without evictions; an unknown get changes nothing.
        let put = KvInput::Put {
            key: "k".into(),
            value: "y".into(),
        };
        assert_eq!(
            model.step(&None, &put, Some(&KvOutput::Done)),
            Some(state(Some("y")))
        );
        assert_eq!(model.step(&x, &get("k"), None), Some(x.clone()));
        // Without evictions, the same absent read of a present key fails.
        assert_eq!(KvModel::new().step(&x, &get("k"), Some(&saw(None))), None);
    }

    #[test]
    fn with_evictions_no_read_is_state_free_and_nothing_is_monotone() {
        let model = KvModel::evicting();
        assert!(model.is_read_only(&get("k")));
        assert!(!model.never_changes_state(&get("k")));
        assert!(!model.is_monotone(&get("k")));
        assert!(KvModel::new().never_changes_state(&get("k")));
    }

    #[test]
    #[should_panic(expected = "only put and get")]
    fn with_evictions_an_append_is_a_harness_bug() {
        let append = KvInput::Append {
            key: "k".into(),
            value: "v".into(),
        };
        KvModel::evicting().step(&None, &append, None);
    }
}
