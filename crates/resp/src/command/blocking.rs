//! Parsers of the multi-key pops and the blocking commands: `LMPOP`,
//! `ZMPOP`, `BLPOP`, `BRPOP`, `BLMPOP`, `BZPOPMIN`, `BZPOPMAX`, `BZMPOP`,
//! `BLMOVE`, `BRPOPLPUSH`, with Redis 7.0's checks in Redis 7.0's order
//! (error texts included).
//!
//! A blocking command's timeout is in seconds, a float (`0.1`), `0`
//! meaning "forever"; it becomes whole milliseconds rounded up, so
//! `0.0001` waits 1 ms rather than forever (Redis 7.0's rule).

use bytes::Bytes;

use super::args::{Args, is, parse_integer};
use super::error::CommandError;
use super::lists::ListEnd;
use super::types::Command;

/// Where a multi-key pop takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopFrom {
    /// A list, at this end.
    List(ListEnd),
    /// A sorted set: the lowest scores, or with `highest` the highest.
    ZSet {
        /// `MAX`, `BZPOPMAX`.
        highest: bool,
    },
}

/// How a pop's answer is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopReply {
    /// `LMPOP`, `ZMPOP`, `BLMPOP`, `BZMPOP`: `[key, [element ...]]`
    /// (sorted sets: `[key, [[member, score] ...]]`).
    Nested,
    /// `BLPOP`, `BRPOP`: `[key, element]`; `BZPOPMIN`, `BZPOPMAX`: `[key,
    /// member, score]`.
    Flat,
}

/// How long a blocking command may wait, in milliseconds (`0`: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockTimeout {
    /// Milliseconds; 0 waits forever.
    pub ms: u64,
}

/// A pop from the first non-empty key among several (`LMPOP` and the
/// like), blocking until one has something if `timeout` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiPop {
    /// The keys, looked at in this order (at least one).
    pub keys: Vec<Bytes>,
    /// A list end or a sorted set's end.
    pub from: PopFrom,
    /// Most elements taken (at least 1).
    pub count: u64,
    /// The answer's shape.
    pub reply: PopReply,
    /// `None`: answer at once (`LMPOP`, `ZMPOP`); else wait.
    pub timeout: Option<BlockTimeout>,
}

/// A timeout in seconds as redis-server 7.0.15 reads it
/// (`getTimeoutFromObjectOrReply` with seconds): a long double (decimal,
/// `inf`, or a `0x` hexadecimal integer, as `strtold` reads them), times
/// 1000, rounded up to a whole millisecond. A product past the 64-bit
/// range (`inf`, `1e16`) becomes negative in Redis's conversion, so it is
/// refused as negative, as redis-server 7.0.15 answers (checked against
/// it); a small negative one (`-0.0001`) rounds to 0: forever. (Redis
/// computes in 80-bit long doubles, this in `f64`, so within a few parts in
/// 10^16 of the 64-bit bound the two may disagree.)
pub fn parse_timeout(text: &[u8]) -> Result<BlockTimeout, CommandError> {
    let seconds = parse_long_double(text).ok_or(CommandError::TimeoutNotFloat)?;
    let ms = (seconds * 1000.0).ceil();
    if !(0.0..i64::MAX as f64).contains(&ms) {
        return Err(CommandError::TimeoutNegative);
    }
    Ok(BlockTimeout { ms: ms as u64 })
}

/// `strtold` on the whole argument: a decimal float, `inf`, or a
/// hexadecimal integer with `0x`; no spaces; not NaN.
fn parse_long_double(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        if hex.is_empty() || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let magnitude = hex.bytes().fold(0.0f64, |value, digit| {
            value * 16.0 + f64::from((digit as char).to_digit(16).unwrap_or(0))
        });
        return Some(if negative { -magnitude } else { magnitude });
    }
    super::args::parse_float(text.as_bytes())
}

/// `numkeys` as `LMPOP`/`ZMPOP` read it: 1 or more, anything else
/// "numkeys should be greater than 0".
fn numkeys(args: &mut Args) -> Result<usize, CommandError> {
    parse_integer(&args.take()?)
        .filter(|&count| count > 0)
        .and_then(|count| usize::try_from(count).ok())
        .ok_or(CommandError::NumkeysNotPositive)
}

/// The part `LMPOP`/`BLMPOP`/`ZMPOP`/`BZMPOP` share: `numkeys key [key
/// ...] <where> [COUNT count]`; `end` reads `where`.
fn multi_pop_arguments(
    args: &mut Args,
    end: fn(&[u8]) -> Option<PopFrom>,
) -> Result<(Vec<Bytes>, PopFrom, u64), CommandError> {
    let count_of_keys = numkeys(args)?;
    if count_of_keys >= args.remaining() {
        return Err(CommandError::Syntax);
    }
    let mut keys = Vec::with_capacity(count_of_keys);
    for _ in 0..count_of_keys {
        keys.push(args.take()?);
    }
    let from = end(&args.take()?).ok_or(CommandError::Syntax)?;
    let mut count = None;
    while let Some(option) = args.take_optional() {
        if count.is_none() && is(&option, "count") && args.remaining() > 0 {
            count = Some(
                parse_integer(&args.take()?)
                    .filter(|&count| count > 0)
                    .ok_or(CommandError::CountNotPositive)? as u64,
            );
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok((keys, from, count.unwrap_or(1)))
}

fn list_end(word: &[u8]) -> Option<PopFrom> {
    if is(word, "left") {
        Some(PopFrom::List(ListEnd::Left))
    } else if is(word, "right") {
        Some(PopFrom::List(ListEnd::Right))
    } else {
        None
    }
}

fn zset_end(word: &[u8]) -> Option<PopFrom> {
    if is(word, "min") {
        Some(PopFrom::ZSet { highest: false })
    } else if is(word, "max") {
        Some(PopFrom::ZSet { highest: true })
    } else {
        None
    }
}

fn multi_pop(
    args: &mut Args,
    end: fn(&[u8]) -> Option<PopFrom>,
    blocking: bool,
) -> Result<Command, CommandError> {
    // The blocking forms name the timeout first, and Redis checks it last.
    let timeout_text = if blocking { Some(args.take()?) } else { None };
    let (keys, from, count) = multi_pop_arguments(args, end)?;
    let timeout = timeout_text.map(|text| parse_timeout(&text)).transpose()?;
    Ok(Command::MultiPop(MultiPop {
        keys,
        from,
        count,
        reply: PopReply::Nested,
        timeout,
    }))
}

pub(crate) fn lmpop(args: &mut Args) -> Result<Command, CommandError> {
    multi_pop(args, list_end, false)
}

pub(crate) fn blmpop(args: &mut Args) -> Result<Command, CommandError> {
    multi_pop(args, list_end, true)
}

pub(crate) fn zmpop(args: &mut Args) -> Result<Command, CommandError> {
    multi_pop(args, zset_end, false)
}

pub(crate) fn bzmpop(args: &mut Args) -> Result<Command, CommandError> {
    multi_pop(args, zset_end, true)
}

/// `BLPOP key [key ...] timeout` and the like: one element, flat answer.
fn single_pop(args: &mut Args, from: PopFrom) -> Result<Command, CommandError> {
    let mut keys = args.rest();
    let Some(timeout_text) = keys.pop() else {
        return Err(CommandError::WrongArity {
            full_name: args.full_name(),
        });
    };
    let timeout = parse_timeout(&timeout_text)?;
    Ok(Command::MultiPop(MultiPop {
        keys,
        from,
        count: 1,
        reply: PopReply::Flat,
        timeout: Some(timeout),
    }))
}

pub(crate) fn blpop(args: &mut Args) -> Result<Command, CommandError> {
    single_pop(args, PopFrom::List(ListEnd::Left))
}

pub(crate) fn brpop(args: &mut Args) -> Result<Command, CommandError> {
    single_pop(args, PopFrom::List(ListEnd::Right))
}

pub(crate) fn bzpopmin(args: &mut Args) -> Result<Command, CommandError> {
    single_pop(args, PopFrom::ZSet { highest: false })
}

pub(crate) fn bzpopmax(args: &mut Args) -> Result<Command, CommandError> {
    single_pop(args, PopFrom::ZSet { highest: true })
}

/// `BLMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout`.
pub(crate) fn blmove(args: &mut Args) -> Result<Command, CommandError> {
    let source = args.take()?;
    let destination = args.take()?;
    let from = list_end(&args.take()?).ok_or(CommandError::Syntax)?;
    let to = list_end(&args.take()?).ok_or(CommandError::Syntax)?;
    let timeout = parse_timeout(&args.take()?)?;
    let (PopFrom::List(from), PopFrom::List(to)) = (from, to) else {
        unreachable!("list_end answers list ends");
    };
    Ok(Command::BlockingMove {
        source,
        destination,
        from,
        to,
        timeout,
    })
}

/// `BRPOPLPUSH source destination timeout`: `BLMOVE ... RIGHT LEFT`.
pub(crate) fn brpoplpush(args: &mut Args) -> Result<Command, CommandError> {
    let source = args.take()?;
    let destination = args.take()?;
    let timeout = parse_timeout(&args.take()?)?;
    Ok(Command::BlockingMove {
        source,
        destination,
        from: ListEnd::Right,
        to: ListEnd::Left,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_redis_7_reads_them() {
        let ms = |text: &str| parse_timeout(text.as_bytes()).map(|timeout| timeout.ms);
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(ms("1"), Ok(1000));
        assert_eq!(ms("0.1"), Ok(100));
        assert_eq!(ms("0.001"), Ok(1));
        // Rounded up: a tiny timeout is not "forever".
        assert_eq!(ms("0.0001"), Ok(1));
        assert_eq!(ms("0x10"), Ok(16_000));
        assert_eq!(ms("-0.0001"), Ok(0));
        assert_eq!(ms("-1"), Err(CommandError::TimeoutNegative));
        assert_eq!(ms("abc"), Err(CommandError::TimeoutNotFloat));
        assert_eq!(ms(" 1"), Err(CommandError::TimeoutNotFloat));
        assert_eq!(ms("nan"), Err(CommandError::TimeoutNotFloat));
        // Past the 64-bit range: negative, as redis-server 7.0.15 says.
        assert_eq!(ms("inf"), Err(CommandError::TimeoutNegative));
        assert_eq!(ms("1e16"), Err(CommandError::TimeoutNegative));
        assert_eq!(ms("0x7FFFFFFFFFFFFF"), Err(CommandError::TimeoutNegative));
        // Inside: accepted (a deadline past any clock: forever).
        assert_eq!(ms("1e15"), Ok(1_000_000_000_000_000_000));
    }

    #[test]
    fn timeout_errors_read_as_redis_writes_them() {
        assert_eq!(
            CommandError::TimeoutNegative.to_string(),
            "ERR timeout is negative"
        );
        assert_eq!(
            CommandError::TimeoutNotFloat.to_string(),
            "ERR timeout is not a float or out of range"
        );
        assert_eq!(
            CommandError::CountNotPositive.to_string(),
            "ERR count should be greater than 0"
        );
    }
}
