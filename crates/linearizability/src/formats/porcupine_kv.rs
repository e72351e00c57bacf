//! porcupine's key/value logs (`test_data/kv/*.txt`, recorded from MIT
//! 6.824's kvraft): one EDN map per line.
//!
//! ```text
//! {:process 3, :type :invoke, :f :append, :key "9", :value "x 3 0 y"}
//! {:process 2, :type :invoke, :f :get, :key "0", :value nil}
//! {:process 3, :type :ok, :f :append, :key "9", :value "x 3 0 y"}
//! {:process 2, :type :ok, :f :get, :key "0", :value "x 1 0 y"}
//! ```
//!
//! `:f` is `:get`, `:put` or `:append`; `:type` is `:invoke` or `:ok`.
//! porcupine's model of these logs keeps a key's value as a string that
//! starts empty, so a get that answers `""` read an absent key: it becomes
//! [`KvOutput::Value(None)`](crate::KvOutput). A put or an append of the empty
//! string cannot be told apart from that, so it is refused. An operation still
//! outstanding at the end of the log is read as porcupine reads it: completed
//! after the last line, a get answering `""` (none of porcupine's logs has
//! one).

use crate::error::HistoryError;
use crate::formats::{LogReader, line_error};
use crate::history::{History, Outcome};
use crate::models::{KvInput, KvOutput};

/// Reads a log into a history for the [`KvModel`](crate::KvModel).
///
/// # Errors
///
/// [`HistoryError::Line`] for a line that is not such a map, a missing or
/// ill-typed field, an unknown `:f` or `:type`, an empty put or append
/// value, a process that invokes twice without completing, or a completion
/// that does not match its invocation.
pub fn parse(text: &str) -> Result<History<KvInput, KvOutput>, HistoryError> {
    let mut reader = LogReader::new();
    let mut last_line = 0;
    for (position, line_text) in text.lines().enumerate() {
        let line = position + 1;
        last_line = line;
        if line_text.trim().is_empty() {
            continue;
        }
        let fields = parse_map(line_text).map_err(|problem| line_error(line, problem))?;
        let event = Event::from_fields(&fields).map_err(|problem| line_error(line, problem))?;
        match event.kind.as_str() {
            "invoke" => {
                let input = event.input().map_err(|problem| line_error(line, problem))?;
                reader.invoke(line, event.process, input)?;
            }
            "ok" => {
                let operation = reader.complete(line, event.process)?;
                let output = event
                    .output_for(&operation.input)
                    .map_err(|problem| line_error(line, problem))?;
                operation.outcome = Outcome::Returned {
                    time: line as u64,
                    output,
                };
            }
            other => {
                return Err(line_error(
                    line,
                    format!(":type :{other} is not supported (expected :invoke or :ok)"),
                ));
            }
        }
    }
    let end = last_line as u64 + 1;
    for operation in reader.outstanding_operations() {
        let output = match operation.input {
            KvInput::Get { .. } => KvOutput::Value(None),
            _ => KvOutput::Done,
        };
        operation.outcome = Outcome::Returned { time: end, output };
    }
    reader.into_history()
}

/// One line's fields, checked for type.
struct Event {
    process: u64,
    kind: String,
    function: String,
    key: String,
    /// `None` for `nil`.
    value: Option<String>,
}

impl Event {
    fn from_fields(fields: &[(String, EdnValue)]) -> Result<Self, String> {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(field, _)| field == name)
                .map(|(_, value)| value)
                .ok_or_else(|| format!("field :{name} is missing"))
        };
        let process = match field("process")? {
            EdnValue::Integer(process) => *process,
            other => return Err(format!("field :process is {other:?}, not an integer")),
        };
        let keyword = |name: &str| match field(name)? {
            EdnValue::Keyword(keyword) => Ok(keyword.clone()),
            other => Err(format!("field :{name} is {other:?}, not a keyword")),
        };
        let key = match field("key")? {
            EdnValue::String(key) => key.clone(),
            other => return Err(format!("field :key is {other:?}, not a string")),
        };
        let value = match field("value")? {
            EdnValue::Nil => None,
            EdnValue::String(value) => Some(value.clone()),
            other => return Err(format!("field :value is {other:?}, not a string or nil")),
        };
        Ok(Self {
            process,
            kind: keyword("type")?,
            function: keyword("f")?,
            key,
            value,
        })
    }

    fn input(&self) -> Result<KvInput, String> {
        let key = self.key.clone();
        let value = || match self.value.as_deref() {
            None => Err(format!(":{} needs a string :value", self.function)),
            Some("") => Err(format!(
                "an empty :{} value is not supported (porcupine's kv model cannot tell it from \
                 an absent key)",
                self.function
            )),
            Some(value) => Ok(value.to_string()),
        };
        match self.function.as_str() {
            "get" => Ok(KvInput::Get { key }),
            "put" => Ok(KvInput::Put {
                key,
                value: value()?,
            }),
            "append" => Ok(KvInput::Append {
                key,
                value: value()?,
            }),
            other => Err(format!(
                ":f :{other} is not supported (expected :get, :put or :append)"
            )),
        }
    }

    /// The output of this completion, which must match `invoked`.
    fn output_for(&self, invoked: &KvInput) -> Result<KvOutput, String> {
        let (function, key) = match invoked {
            KvInput::Get { key } => ("get", key),
            KvInput::Put { key, .. } => ("put", key),
            KvInput::Append { key, .. } => ("append", key),
            other => unreachable!("this format never produces {other:?}"),
        };
        if self.function != function || self.key != *key {
            return Err(format!(
                "the completion :{} of key {:?} does not match the invocation {function} of key \
                 {key:?}",
                self.function, self.key
            ));
        }
        match invoked {
            KvInput::Get { .. } => match self.value.as_deref() {
                Some("") => Ok(KvOutput::Value(None)),
                Some(value) => Ok(KvOutput::Value(Some(value.to_string()))),
                None => Err("a completed :get needs a string :value".to_string()),
            },
            _ => Ok(KvOutput::Done),
        }
    }
}

/// A value in one of these maps.
#[derive(Debug, PartialEq, Eq)]
enum EdnValue {
    Nil,
    Integer(u64),
    Keyword(String),
    String(String),
}

/// Parses `{:name value, :name value ...}` (the subset of EDN these logs use:
/// keyword names; values `nil`, non-negative integers, keywords and strings
/// with `\"` and `\\` escapes).
fn parse_map(text: &str) -> Result<Vec<(String, EdnValue)>, String> {
    let mut rest = text.trim();
    rest = rest
        .strip_prefix('{')
        .ok_or("expected a map starting with '{'")?;
    let mut fields = Vec::new();
    loop {
        rest = rest
            .trim_start_matches(|character: char| character.is_whitespace() || character == ',');
        if let Some(after) = rest.strip_prefix('}') {
            if !after.trim().is_empty() {
                return Err(format!("unexpected text after the map: {:?}", after.trim()));
            }
            return Ok(fields);
        }
        let after_colon = rest
            .strip_prefix(':')
            .ok_or_else(|| format!("expected a :field name at {:?}", excerpt(rest)))?;
        let (name, after_name) = take_symbol(after_colon);
        if name.is_empty() {
            return Err(format!("expected a :field name at {:?}", excerpt(rest)));
        }
        let (value, after_value) = parse_value(after_name.trim_start())?;
        fields.push((name.to_string(), value));
        rest = after_value;
    }
}

fn parse_value(text: &str) -> Result<(EdnValue, &str), String> {
    if let Some(after_quote) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut characters = after_quote.char_indices();
        while let Some((offset, character)) = characters.next() {
            match character {
                '"' => return Ok((EdnValue::String(value), &after_quote[offset + 1..])),
                '\\' => match characters.next() {
                    Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    other => {
                        return Err(format!(
                            "unsupported escape {:?} in a string",
                            other.map(|(_, character)| character)
                        ));
                    }
                },
                _ => value.push(character),
            }
        }
        return Err("a string is not closed".to_string());
    }
    if let Some(after_colon) = text.strip_prefix(':') {
        let (keyword, rest) = take_symbol(after_colon);
        if keyword.is_empty() {
            return Err(format!("expected a keyword at {:?}", excerpt(text)));
        }
        return Ok((EdnValue::Keyword(keyword.to_string()), rest));
    }
    let (symbol, rest) = take_symbol(text);
    if symbol == "nil" {
        return Ok((EdnValue::Nil, rest));
    }
    match symbol.parse::<u64>() {
        Ok(integer) => Ok((EdnValue::Integer(integer), rest)),
        Err(_) => Err(format!("expected a value at {:?}", excerpt(text))),
    }
}

/// Splits off a name made of letters, digits and `-_?!.*+/`.
fn take_symbol(text: &str) -> (&str, &str) {
    let end = text
        .find(|character: char| !(character.is_alphanumeric() || "-_?!.*+/".contains(character)))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// The start of `text`, for messages.
fn excerpt(text: &str) -> &str {
    let end = text
        .char_indices()
        .nth(20)
        .map_or(text.len(), |(offset, _)| offset);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_calls_and_returns_with_line_numbers_as_times() {
        let history = parse(
            "{:process 3, :type :invoke, :f :append, :key \"9\", :value \"x 3 0 y\"}\n\
             {:process 2, :type :invoke, :f :get, :key \"9\", :value nil}\n\
             {:process 3, :type :ok, :f :append, :key \"9\", :value \"x 3 0 y\"}\n\
             {:process 2, :type :ok, :f :get, :key \"9\", :value \"\"}\n",
        )
        .expect("valid log");
        let operations = history.operations();
        assert_eq!(operations.len(), 2);
        assert_eq!(operations[0].client, 3);
        assert_eq!(
            (operations[0].call_time, operations[0].return_time()),
            (1, Some(3))
        );
        assert_eq!(
            operations[0].input,
            KvInput::Append {
                key: "9".into(),
                value: "x 3 0 y".into()
            }
        );
        assert_eq!(
            (operations[1].call_time, operations[1].return_time()),
            (2, Some(4))
        );
        assert_eq!(operations[1].output(), Some(&KvOutput::Value(None)));
    }

    #[test]
    fn an_outstanding_operation_completes_after_the_last_line_as_porcupine_reads_it() {
        let history = parse(
            "{:process 1, :type :invoke, :f :put, :key \"k\", :value \"v\"}\n\
             {:process 2, :type :invoke, :f :get, :key \"k\", :value nil}\n",
        )
        .expect("valid log");
        let operations = history.operations();
        assert_eq!(operations[0].return_time(), Some(3));
        assert_eq!(operations[0].output(), Some(&KvOutput::Done));
        assert_eq!(operations[1].output(), Some(&KvOutput::Value(None)));
    }

    #[test]
    fn strings_keep_escaped_quotes() {
        let fields = parse_map(r#"{:key "a \"b\" \\", :value nil}"#).expect("valid map");
        assert_eq!(fields[0].1, EdnValue::String(r#"a "b" \"#.to_string()));
        assert_eq!(fields[1].1, EdnValue::Nil);
    }

    #[test]
    fn bad_lines_are_named() {
        let cases = [
            ("{:process 1, :type :invoke, :f :get, :key \"k\"", "line 1"),
            (
                "{:process 1, :type :invoke, :f :incr, :key \"k\", :value nil}",
                ":f :incr",
            ),
            (
                "{:process 1, :type :invoke, :f :put, :key \"k\", :value \"\"}",
                "empty :put",
            ),
            (
                "{:process x, :type :invoke, :f :get, :key \"k\", :value nil}",
                "expected a value",
            ),
            (
                "{:process 1, :type :fail, :f :get, :key \"k\", :value nil}",
                ":type :fail",
            ),
            (
                "{:process 1, :type :ok, :f :get, :key \"k\", :value \"\"}",
                "never invoked",
            ),
            (
                "{:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n\
                 {:process 1, :type :invoke, :f :get, :key \"k\", :value nil}",
                "line 2: process 1 invokes again",
            ),
            (
                "{:process 1, :type :invoke, :f :get, :key \"k\", :value nil}\n\
                 {:process 1, :type :ok, :f :put, :key \"k\", :value \"v\"}",
                "does not match",
            ),
        ];
        for (text, expected) in cases {
            let message = parse(text).expect_err(text).to_string();
            assert!(
                message.contains(expected),
                "{text:?}: expected {expected:?} in {message:?}"
            );
        }
    }
}
