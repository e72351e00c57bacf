//! The `strings` model: Redis's string commands over the few keys of one
//! hash tag (one shard), the multi-key ones included: `MSETNX`, `RENAME`,
//! `COPY`, and `APPEND`, `SETRANGE`, `INCRBYFLOAT`, `GETEX`, `GET`, `SET`.
//!
//! A multi-key command touches several keys at once, so the state is the
//! whole map of one tag's keys, and operations are partitioned by their
//! tag ([`StringsInput::tag`]): keys of different tags never share an
//! operation. Deadlines are not modelled (the simulation tests use none,
//! or an hour away for `GETEX`), so `GETEX` reads like `GET`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{Model, describe_value};

/// One tag's keys and their values (absent keys are not in the map).
pub type StringsState = Arc<BTreeMap<String, String>>;

/// A client request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StringsInput {
    /// `GET key`: [`StringsOutput::Value`].
    Get { key: String },
    /// `GETEX key EX seconds`: the value ([`StringsOutput::Value`]); the
    /// deadline is not modelled.
    GetEx { key: String },
    /// `SET key value`: [`StringsOutput::Done`].
    Set { key: String, value: String },
    /// `MSETNX k v [k v ...]`: all or nothing, [`StringsOutput::Applied`].
    MsetNx { pairs: Vec<(String, String)> },
    /// `RENAME source destination`: [`StringsOutput::Done`], or
    /// [`StringsOutput::NoSuchKey`] (nothing changed) if the source is absent.
    Rename { source: String, destination: String },
    /// `COPY source destination [REPLACE]`: [`StringsOutput::Applied`].
    Copy {
        source: String,
        destination: String,
        replace: bool,
    },
    /// `APPEND key value`: the length after ([`StringsOutput::Integer`],
    /// as `api::Op::Append` answers it).
    Append { key: String, value: String },
    /// `SETRANGE key offset value` (`offset` small, `value` non-empty):
    /// the new length ([`StringsOutput::Integer`]); zero bytes pad.
    SetRange {
        key: String,
        offset: usize,
        value: String,
    },
    /// `INCRBYFLOAT key delta` with a delta that is an integer (so the
    /// sum's text is exact): the new value ([`StringsOutput::Value`]), or
    /// [`StringsOutput::Refused`] (nothing changed) if the value is not a
    /// number.
    IncrByFloat { key: String, delta: i64 },
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StringsOutput {
    Value(Option<String>),
    Done,
    Applied(bool),
    Integer(i64),
    NoSuchKey,
    Refused,
}

impl StringsInput {
    /// Every key the operation names.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            StringsInput::Get { key }
            | StringsInput::GetEx { key }
            | StringsInput::Set { key, .. }
            | StringsInput::Append { key, .. }
            | StringsInput::SetRange { key, .. }
            | StringsInput::IncrByFloat { key, .. } => vec![key],
            StringsInput::MsetNx { pairs } => pairs.iter().map(|(key, _)| key.as_str()).collect(),
            StringsInput::Rename {
                source,
                destination,
            }
            | StringsInput::Copy {
                source,
                destination,
                ..
            } => vec![source, destination],
        }
    }

    /// The hash tag of the first key (Redis Cluster's rule: the text
    /// between the first `{` and the next `}`, if not empty; else the key).
    /// Every key of one operation must share it.
    pub fn tag(&self) -> String {
        let key = self.keys().first().copied().unwrap_or_default();
        hash_tag(key).to_owned()
    }
}

/// Redis Cluster's hash tag of `key` (the whole key if it has none).
pub fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{')
        && let Some(length) = key[open + 1..].find('}')
        && length > 0
    {
        return &key[open + 1..open + 1 + length];
    }
    key
}

/// Redis's string commands over one tag's keys. See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct StringsModel;

impl Model for StringsModel {
    type State = StringsState;
    type Input = StringsInput;
    type Output = StringsOutput;

    fn initial_state(&self) -> StringsState {
        Arc::new(BTreeMap::new())
    }

    /// # Panics
    ///
    /// If `output` is of the wrong kind for `input`: only a broken test
    /// harness builds such a pair.
    fn step(
        &self,
        state: &StringsState,
        input: &StringsInput,
        output: Option<&StringsOutput>,
    ) -> Option<StringsState> {
        let (expected, next) = apply(state, input);
        match output {
            None => Some(next),
            Some(output) if *output == expected => Some(next),
            Some(output) if same_kind(output, &expected) => None,
            Some(output) => panic!(
                "strings model: {input:?} answered with {output:?}, an output of another kind"
            ),
        }
    }

    fn partition(&self, input: &StringsInput) -> String {
        input.tag()
    }

    fn is_read_only(&self, input: &StringsInput) -> bool {
        matches!(input, StringsInput::Get { .. } | StringsInput::GetEx { .. })
    }

    fn state_heap_bytes(&self, state: &StringsState) -> usize {
        state
            .iter()
            .map(|(key, value)| key.len() + value.len() + 48)
            .sum()
    }

    fn describe_operation(&self, input: &StringsInput, output: Option<&StringsOutput>) -> String {
        let call = match input {
            StringsInput::Get { key } => format!("get({key})"),
            StringsInput::GetEx { key } => format!("getex({key})"),
            StringsInput::Set { key, value } => format!("set({key}, {value:?})"),
            StringsInput::MsetNx { pairs } => format!("msetnx({pairs:?})"),
            StringsInput::Rename {
                source,
                destination,
            } => format!("rename({source}, {destination})"),
            StringsInput::Copy {
                source,
                destination,
                replace,
            } => format!(
                "copy({source}, {destination}{})",
                if *replace { ", replace" } else { "" }
            ),
            StringsInput::Append { key, value } => format!("append({key}, {value:?})"),
            StringsInput::SetRange { key, offset, value } => {
                format!("setrange({key}, {offset}, {value:?})")
            }
            StringsInput::IncrByFloat { key, delta } => format!("incrbyfloat({key}, {delta})"),
        };
        match output {
            None => format!("{call} -> ?"),
            Some(StringsOutput::Value(value)) => {
                format!("{call} -> {}", describe_value(value.as_deref()))
            }
            Some(other) => format!("{call} -> {other:?}"),
        }
    }
}

fn same_kind(left: &StringsOutput, right: &StringsOutput) -> bool {
    use StringsOutput::{Applied, Done, Integer, NoSuchKey, Refused, Value};
    matches!(
        (left, right),
        (Value(_) | Refused, Value(_) | Refused)
            | (Done | NoSuchKey, Done | NoSuchKey)
            | (Applied(_), Applied(_))
            | (Integer(_), Integer(_))
    )
}

/// What `input` answers from `state`, and the state after it.
fn apply(state: &StringsState, input: &StringsInput) -> (StringsOutput, StringsState) {
    let with = |change: &dyn Fn(&mut BTreeMap<String, String>)| {
        let mut next = (**state).clone();
        change(&mut next);
        Arc::new(next)
    };
    match input {
        StringsInput::Get { key } | StringsInput::GetEx { key } => {
            (StringsOutput::Value(state.get(key).cloned()), state.clone())
        }
        StringsInput::Set { key, value } => (
            StringsOutput::Done,
            with(&|map| {
                map.insert(key.clone(), value.clone());
            }),
        ),
        StringsInput::MsetNx { pairs } => {
            if pairs.iter().any(|(key, _)| state.contains_key(key)) {
                return (StringsOutput::Applied(false), state.clone());
            }
            let next = with(&|map| {
                for (key, value) in pairs {
                    map.insert(key.clone(), value.clone());
                }
            });
            (StringsOutput::Applied(true), next)
        }
        StringsInput::Rename {
            source,
            destination,
        } => match state.get(source) {
            None => (StringsOutput::NoSuchKey, state.clone()),
            Some(value) => {
                let value = value.clone();
                let next = with(&|map| {
                    map.remove(source);
                    map.insert(destination.clone(), value.clone());
                });
                (StringsOutput::Done, next)
            }
        },
        StringsInput::Copy {
            source,
            destination,
            replace,
        } => match state.get(source) {
            Some(value)
                if source != destination && (*replace || !state.contains_key(destination)) =>
            {
                let value = value.clone();
                let next = with(&|map| {
                    map.insert(destination.clone(), value.clone());
                });
                (StringsOutput::Applied(true), next)
            }
            _ => (StringsOutput::Applied(false), state.clone()),
        },
        StringsInput::Append { key, value } => {
            let mut text = state.get(key).cloned().unwrap_or_default();
            text.push_str(value);
            let next = with(&|map| {
                map.insert(key.clone(), text.clone());
            });
            (StringsOutput::Integer(text.len() as i64), next)
        }
        StringsInput::SetRange { key, offset, value } => {
            let mut bytes = state.get(key).cloned().unwrap_or_default().into_bytes();
            let end = offset + value.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[*offset..end].copy_from_slice(value.as_bytes());
            let length = bytes.len() as i64;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let next = with(&|map| {
                map.insert(key.clone(), text.clone());
            });
            (StringsOutput::Integer(length), next)
        }
        StringsInput::IncrByFloat { key, delta } => {
            let current = state
                .get(key)
                .map_or(Some(0), |text| text.parse::<i64>().ok());
            match current.and_then(|current| current.checked_add(*delta)) {
                None => (StringsOutput::Refused, state.clone()),
                Some(sum) => {
                    let text = sum.to_string();
                    let next = with(&|map| {
                        map.insert(key.clone(), text.clone());
                    });
                    (StringsOutput::Value(Some(text)), next)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: &StringsState, input: StringsInput) -> (StringsOutput, StringsState) {
        apply(state, &input)
    }

    #[test]
    fn multi_key_commands_follow_redis() {
        let empty = StringsModel.initial_state();
        let pairs = vec![
            ("{t}a".to_owned(), "1".to_owned()),
            ("{t}b".to_owned(), "2".to_owned()),
        ];
        let (answer, state) = run(
            &empty,
            StringsInput::MsetNx {
                pairs: pairs.clone(),
            },
        );
        assert_eq!(answer, StringsOutput::Applied(true));
        assert_eq!(
            run(&state, StringsInput::MsetNx { pairs }).0,
            StringsOutput::Applied(false)
        );
        let (answer, state) = run(
            &state,
            StringsInput::Rename {
                source: "{t}a".into(),
                destination: "{t}c".into(),
            },
        );
        assert_eq!(answer, StringsOutput::Done);
        assert_eq!(state.get("{t}a"), None);
        assert_eq!(state.get("{t}c").map(String::as_str), Some("1"));
        let missing = StringsInput::Rename {
            source: "{t}a".into(),
            destination: "{t}d".into(),
        };
        assert_eq!(run(&state, missing).0, StringsOutput::NoSuchKey);
        let copy = |replace| StringsInput::Copy {
            source: "{t}c".into(),
            destination: "{t}b".into(),
            replace,
        };
        assert_eq!(run(&state, copy(false)).0, StringsOutput::Applied(false));
        let (answer, state) = run(&state, copy(true));
        assert_eq!(answer, StringsOutput::Applied(true));
        assert_eq!(state.get("{t}b").map(String::as_str), Some("1"));
        let (answer, state) = run(
            &state,
            StringsInput::IncrByFloat {
                key: "{t}b".into(),
                delta: 4,
            },
        );
        assert_eq!(answer, StringsOutput::Value(Some("5".into())));
        let (answer, state) = run(
            &state,
            StringsInput::SetRange {
                key: "{t}b".into(),
                offset: 2,
                value: "x".into(),
            },
        );
        assert_eq!(answer, StringsOutput::Integer(3));
        assert_eq!(state.get("{t}b").map(String::as_str), Some("5\0x"));
        let refused = StringsInput::IncrByFloat {
            key: "{t}b".into(),
            delta: 1,
        };
        assert_eq!(run(&state, refused).0, StringsOutput::Refused);
        assert_eq!(StringsModel.partition(&copy(true)), "t");
        assert_eq!(hash_tag("{}x"), "{}x");
        assert_eq!(hash_tag("a{b}c{d}"), "b");
    }

    #[test]
    fn a_wrong_answer_has_no_next_state() {
        let empty = StringsModel.initial_state();
        let get = StringsInput::Get { key: "{t}a".into() };
        let seen = StringsOutput::Value(Some("x".into()));
        assert_eq!(StringsModel.step(&empty, &get, Some(&seen)), None);
        assert!(StringsModel.step(&empty, &get, None).is_some());
    }
}
