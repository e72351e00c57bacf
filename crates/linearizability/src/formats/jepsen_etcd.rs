//! Jepsen's etcd logs as porcupine keeps them (`test_data/jepsen/etcd_*.log`):
//! one register, read, written and compare-and-set by numbered processes.
//!
//! ```text
//! INFO  jepsen.util - 2   :invoke   :write   4
//! INFO  jepsen.util - 2   :ok   :write   4
//! INFO  jepsen.util - 3   :invoke   :cas   [4 1]
//! INFO  jepsen.util - 3   :fail   :cas   [4 1]
//! INFO  jepsen.util - 0   :invoke   :read   nil
//! INFO  jepsen.util - 0   :ok   :read   1
//! INFO  jepsen.util - 4   :invoke   :write   3
//! INFO  jepsen.util - 4   :info   :write   :timed-out
//! ```
//!
//! Lines that are not `INFO jepsen.util - PROCESS TYPE F VALUE` events are
//! skipped (the logs carry other output); an event line that cannot be read
//! is an error, and so is a file with text but without any event line (it
//! is not such a log; an empty file is an empty history, as for porcupine). Values are integers and become the register's strings
//! (`nil` is the never-written register). How completions are read:
//!
//! | completion | outcome |
//! |---|---|
//! | `:ok :read V` | returned, read `V` (`nil`: never written) |
//! | `:ok :write V` | returned |
//! | `:ok :cas [A B]` / `:fail :cas [A B]` | returned, the cas swapped / did not |
//! | `:fail :read :timed-out`, `:info` of anything | unknown: the client gave up here; the operation may take effect later or never |
//! | none before the end of the log | unknown |
//!
//! porcupine's own reader leaves `:info` operations outstanding until the
//! end of the log and then lets them take effect or not with any answer,
//! which is the same thing.

use crate::error::HistoryError;
use crate::formats::{LogReader, line_error};
use crate::history::{History, Outcome};
use crate::models::{KvOutput, RegisterInput, RegisterOutput};

const EVENT_PREFIX: &str = "INFO";
const LOGGER: &str = "jepsen.util";

/// Reads a log into a history for the [`RegisterModel`](crate::RegisterModel).
///
/// # Errors
///
/// [`HistoryError::Line`] for an event line with a bad process, type,
/// function or value, a process that invokes twice without completing, or a
/// completion that does not match its invocation;
/// [`HistoryError::Document`] if there is text but no event line at all.
pub fn parse(text: &str) -> Result<History<RegisterInput, RegisterOutput>, HistoryError> {
    let mut reader = LogReader::new();
    let mut events = 0usize;
    for (position, line_text) in text.lines().enumerate() {
        let line = position + 1;
        let Some(event) = event_fields(line_text) else {
            continue;
        };
        events += 1;
        let [process, kind, function, value] = event;
        let process: u64 = process
            .parse()
            .map_err(|_| line_error(line, format!("process {process:?} is not an integer")))?;
        match kind {
            ":invoke" => {
                let input = input(function, value).map_err(|problem| line_error(line, problem))?;
                reader.invoke(line, process, input)?;
            }
            ":ok" | ":fail" | ":info" => {
                let operation = reader.complete(line, process)?;
                operation.outcome = completion(&operation.input, kind, function, value, line)
                    .map_err(|problem| line_error(line, problem))?;
            }
            other => {
                return Err(line_error(
                    line,
                    format!(
                        "type {other} is not supported (expected :invoke, :ok, :fail or :info)"
                    ),
                ));
            }
        }
    }
    if events == 0 && !text.trim().is_empty() {
        return Err(HistoryError::Document {
            field: "events".to_string(),
            problem: format!("no \"{EVENT_PREFIX} {LOGGER} - ...\" event line: not a Jepsen log"),
        });
    }
    reader.into_history()
}

/// `[process, type, function, value]` of an event line, or `None` for a
/// line that is not a `jepsen.util` event.
fn event_fields(line_text: &str) -> Option<[&str; 4]> {
    let mut words = line_text.split_whitespace();
    if words.next() != Some(EVENT_PREFIX)
        || words.next() != Some(LOGGER)
        || words.next() != Some("-")
    {
        return None;
    }
    let process = words.next()?;
    let kind = words.next()?;
    let function = words.next()?;
    // The value is the rest of the line: a cas value `[4 1]` has a space
    // inside, so it is the text from the start of the next word on.
    let value_word = words.next()?;
    let value_start = value_word.as_ptr() as usize - line_text.as_ptr() as usize;
    Some([process, kind, function, line_text[value_start..].trim_end()])
}

fn input(function: &str, value: &str) -> Result<RegisterInput, String> {
    match function {
        ":read" => Ok(RegisterInput::Read),
        ":write" => Ok(RegisterInput::Write {
            value: integer(value)?,
        }),
        ":cas" => {
            let (expected, value) = cas_arguments(value)?;
            Ok(RegisterInput::Cas {
                expected: Some(expected),
                value,
            })
        }
        other => Err(format!(
            "function {other} is not supported (expected :read, :write or :cas)"
        )),
    }
}

fn completion(
    invoked: &RegisterInput,
    kind: &str,
    function: &str,
    value: &str,
    line: usize,
) -> Result<Outcome<RegisterOutput>, String> {
    let invoked_function = match invoked {
        RegisterInput::Read => ":read",
        RegisterInput::Write { .. } => ":write",
        RegisterInput::Cas { .. } => ":cas",
    };
    if function != invoked_function {
        return Err(format!(
            "the completion {kind} {function} does not match the invocation {invoked_function}"
        ));
    }
    let returned = |output| Outcome::Returned {
        time: line as u64,
        output,
    };
    match (kind, invoked) {
        (":info", _) | (":fail", RegisterInput::Read) => Ok(Outcome::Unknown {
            gave_up_at: Some(line as u64),
        }),
        (":ok", RegisterInput::Read) if value == "nil" => Ok(returned(KvOutput::Value(None))),
        (":ok", RegisterInput::Read) => Ok(returned(KvOutput::Value(Some(integer(value)?)))),
        (":ok", RegisterInput::Write { .. }) => Ok(returned(KvOutput::Done)),
        (
            ":ok" | ":fail",
            RegisterInput::Cas {
                expected,
                value: new,
            },
        ) => {
            let (completed_expected, completed_new) = cas_arguments(value)?;
            if Some(&completed_expected) != expected.as_ref() || completed_new != *new {
                return Err(format!(
                    "the completion's cas arguments {value} differ from the invocation's"
                ));
            }
            Ok(returned(KvOutput::Cas(kind == ":ok")))
        }
        (kind, _) => Err(format!("{kind} {function} is not supported")),
    }
}

/// An integer value, normalized (`007` reads as `7`).
fn integer(value: &str) -> Result<String, String> {
    value
        .parse::<i64>()
        .map(|integer| integer.to_string())
        .map_err(|_| format!("value {value:?} is not an integer"))
}

/// `[A B]` -> `(A, B)`.
fn cas_arguments(value: &str) -> Result<(String, String), String> {
    let inner = value
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(|| format!("cas value {value:?} is not [expected new]"))?;
    let mut parts = inner.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(expected), Some(new), None) => Ok((integer(expected)?, integer(new)?)),
        _ => Err(format!("cas value {value:?} is not [expected new]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "INFO  jepsen.util - 2\t:invoke\t:write\t4\n\
                       some other output\n\
                       INFO  jepsen.util - 2\t:ok\t:write\t4\n\
                       INFO  jepsen.util - 3   :invoke :cas    [4 1]\n\
                       INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                       INFO  jepsen.util - 3\t:fail\t:cas\t[4 1]\n\
                       INFO  jepsen.util - 0\t:ok\t:read\t4\n\
                       INFO  jepsen.util - 4\t:invoke\t:write\t3\n\
                       INFO  jepsen.util - 4\t:info\t:write\t:timed-out\n\
                       INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
                       INFO  jepsen.util - 1\t:fail\t:read\t:timed-out\n\
                       INFO  jepsen.util - 5\t:invoke\t:cas\t[3 2]\n";

    #[test]
    fn reads_every_kind_of_completion() {
        let history = parse(LOG).expect("valid log");
        let summary: Vec<(u64, u64, Option<u64>, Option<KvOutput>)> = history
            .operations()
            .iter()
            .map(|operation| {
                (
                    operation.client,
                    operation.call_time,
                    operation.return_time(),
                    operation.output().cloned(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (2, 1, Some(3), Some(KvOutput::Done)),
                (3, 4, Some(6), Some(KvOutput::Cas(false))),
                (0, 5, Some(7), Some(KvOutput::Value(Some("4".into())))),
                (4, 8, None, None),
                (1, 10, None, None),
                (5, 12, None, None),
            ]
        );
        assert_eq!(
            history.operations()[1].input,
            RegisterInput::Cas {
                expected: Some("4".into()),
                value: "1".into()
            }
        );
    }

    #[test]
    fn an_empty_log_is_an_empty_history_but_other_text_is_refused() {
        assert!(parse("").expect("empty log").is_empty());
        let message = parse("{\"model\": \"register\"}")
            .expect_err("not a log")
            .to_string();
        assert!(message.contains("not a Jepsen log"), "{message}");
    }

    #[test]
    fn bad_event_lines_are_named() {
        let cases = [
            (
                "INFO  jepsen.util - x\t:invoke\t:read\tnil",
                "line 1: process \"x\"",
            ),
            ("INFO  jepsen.util - 1\t:invoke\t:incr\t1", "function :incr"),
            (
                "INFO  jepsen.util - 1\t:invoke\t:write\tabc",
                "not an integer",
            ),
            (
                "INFO  jepsen.util - 1\t:invoke\t:cas\t[1]",
                "not [expected new]",
            ),
            ("INFO  jepsen.util - 1\t:ok\t:read\t1", "never invoked"),
            (
                "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:write\t1",
                "does not match",
            ),
            (
                "INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2]\nINFO  jepsen.util - 1\t:ok\t:cas\t[1 3]",
                "differ",
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
