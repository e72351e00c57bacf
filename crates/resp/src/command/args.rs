//! A cursor over a request's arguments, with Redis's number rules.

use bytes::Bytes;

use super::error::CommandError;

/// The arguments after the command name (and subcommand). The table has
/// already checked the arity, so the fixed arguments are there; a parser
/// that still runs out reports the arity error rather than panicking.
#[derive(Debug)]
pub struct Args<'a> {
    args: &'a [Bytes],
    position: usize,
    full_name: &'static str,
}

impl<'a> Args<'a> {
    pub(crate) fn new(args: &'a [Bytes], full_name: &'static str) -> Self {
        Args {
            args,
            position: 0,
            full_name,
        }
    }

    /// The command's full lowercase name (`set`, `config|get`).
    pub fn full_name(&self) -> &'static str {
        self.full_name
    }

    /// Arguments not yet taken.
    pub fn remaining(&self) -> usize {
        self.args.len() - self.position
    }

    /// The next argument.
    pub fn take(&mut self) -> Result<Bytes, CommandError> {
        let arg = self
            .args
            .get(self.position)
            .ok_or(CommandError::WrongArity {
                full_name: self.full_name,
            })?;
        self.position += 1;
        Ok(arg.clone())
    }

    /// The next argument if there is one.
    pub fn take_optional(&mut self) -> Option<Bytes> {
        let arg = self.args.get(self.position)?.clone();
        self.position += 1;
        Some(arg)
    }

    /// Every argument not yet taken.
    pub fn rest(&mut self) -> Vec<Bytes> {
        let rest = self.args[self.position..].to_vec();
        self.position = self.args.len();
        rest
    }

    /// The next argument as a Redis integer.
    pub fn integer(&mut self) -> Result<i64, CommandError> {
        parse_integer(&self.take()?).ok_or(CommandError::NotAnInteger)
    }

    /// The count of `SRANDMEMBER`, `HRANDFIELD` and `ZRANDMEMBER`: an
    /// integer within ±(2^63 - 1), as Redis reads it (a negative count
    /// allows repeats, so its magnitude must fit).
    pub fn random_count(&mut self) -> Result<i64, CommandError> {
        match self.integer()? {
            i64::MIN => Err(CommandError::CountOutOfRange),
            count => Ok(count),
        }
    }

    /// The next argument as a Redis float.
    pub fn float(&mut self) -> Result<f64, CommandError> {
        parse_float(&self.take()?).ok_or(CommandError::NotAFloat)
    }

    /// The remaining arguments as key-value pairs; an odd count is an arity
    /// error (as `MSET` reports it).
    pub fn pairs(&mut self) -> Result<Vec<(Bytes, Bytes)>, CommandError> {
        if !self.remaining().is_multiple_of(2) {
            return Err(CommandError::WrongArity {
                full_name: self.full_name,
            });
        }
        let mut pairs = Vec::with_capacity(self.remaining() / 2);
        while self.remaining() > 0 {
            pairs.push((self.take()?, self.take()?));
        }
        Ok(pairs)
    }

    /// Ends parsing: leftover arguments are a syntax error.
    pub fn finish(&self) -> Result<(), CommandError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(CommandError::Syntax)
        }
    }
}

/// Whether `arg` is `word`, ignoring ASCII case (`word` is lowercase).
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's `string2ll`: an optional `-`, then digits with no leading zero
/// (`0` itself aside), at most 20 bytes, within `i64`. No `+`, no spaces.
pub fn parse_integer(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text[0] {
        b'-' => (true, &text[1..]),
        _ => (false, text),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(digit - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

/// Redis's float argument: a decimal (or `inf`), no spaces, not NaN.
pub fn parse_float(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.is_empty()
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
    {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    (!value.is_nan()).then_some(value)
}

/// Redis 7.0 refuses a random count whose element-value pairs
/// (`HRANDFIELD ... WITHVALUES`, `ZRANDMEMBER ... WITHSCORES`) would
/// overflow its reply length.
pub(crate) fn check_pairs_fit(count: Option<i64>, pairs: bool) -> Result<(), CommandError> {
    if pairs && count.is_some_and(|count| count.unsigned_abs() > (i64::MAX / 2) as u64) {
        return Err(CommandError::ValueOutOfRange);
    }
    Ok(())
}
