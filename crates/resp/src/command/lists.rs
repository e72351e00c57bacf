//! Parsers of the list commands (`LPUSH` ... `RPOPLPUSH`): one
//! [`Command::List`] with the operation and its arguments checked as Redis
//! 7.0 checks them (error texts included).

use bytes::Bytes;

use super::args::{Args, is};
use super::error::CommandError;
use super::types::Command;

/// An end of a list, as `LMOVE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEnd {
    /// `LEFT`: the head.
    Left,
    /// `RIGHT`: the tail.
    Right,
}

/// A list command's operation, arguments parsed.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // named as Redis names the arguments
pub enum ListCommand {
    /// `LPUSH`/`RPUSH`, and with `only_existing` `LPUSHX`/`RPUSHX`.
    Push {
        end: ListEnd,
        elements: Vec<Bytes>,
        only_existing: bool,
    },
    /// `LPOP`/`RPOP key [count]`.
    Pop {
        end: ListEnd,
        count: Option<u64>,
    },
    Len,
    Index {
        index: i64,
    },
    Range {
        start: i64,
        stop: i64,
    },
    Set {
        index: i64,
        element: Bytes,
    },
    Rem {
        count: i64,
        element: Bytes,
    },
    Trim {
        start: i64,
        stop: i64,
    },
    Insert {
        before: bool,
        pivot: Bytes,
        element: Bytes,
    },
    /// `LPOS key element [RANK rank] [COUNT num] [MAXLEN len]`;
    /// `count: None` when `COUNT` is not given (a single answer).
    Pos {
        element: Bytes,
        rank: i64,
        count: Option<u64>,
        max_len: u64,
    },
    /// `LMOVE source destination from to`; `RPOPLPUSH` is `Right`, `Left`.
    Move {
        destination: Bytes,
        from: ListEnd,
        to: ListEnd,
    },
}

fn list(key: Bytes, op: ListCommand) -> Result<Command, CommandError> {
    Ok(Command::List { key, op })
}

fn push(args: &mut Args, end: ListEnd, only_existing: bool) -> Result<Command, CommandError> {
    let key = args.take()?;
    let elements = args.rest();
    list(
        key,
        ListCommand::Push {
            end,
            elements,
            only_existing,
        },
    )
}

pub(crate) fn lpush(args: &mut Args) -> Result<Command, CommandError> {
    push(args, ListEnd::Left, false)
}

pub(crate) fn rpush(args: &mut Args) -> Result<Command, CommandError> {
    push(args, ListEnd::Right, false)
}

pub(crate) fn lpushx(args: &mut Args) -> Result<Command, CommandError> {
    push(args, ListEnd::Left, true)
}

pub(crate) fn rpushx(args: &mut Args) -> Result<Command, CommandError> {
    push(args, ListEnd::Right, true)
}

/// `LPOP`/`RPOP key [count]`: more than one count is an arity error, a
/// count that is not a non-negative integer is "must be positive".
fn pop(args: &mut Args, end: ListEnd) -> Result<Command, CommandError> {
    let key = args.take()?;
    if args.remaining() > 1 {
        return Err(CommandError::WrongArity {
            full_name: args.full_name(),
        });
    }
    let count = match args.take_optional() {
        Some(text) => Some(
            super::args::parse_integer(&text)
                .and_then(|count| u64::try_from(count).ok())
                .ok_or(CommandError::MustBePositive)?,
        ),
        None => None,
    };
    list(key, ListCommand::Pop { end, count })
}

pub(crate) fn lpop(args: &mut Args) -> Result<Command, CommandError> {
    pop(args, ListEnd::Left)
}

pub(crate) fn rpop(args: &mut Args) -> Result<Command, CommandError> {
    pop(args, ListEnd::Right)
}

pub(crate) fn llen(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    list(key, ListCommand::Len)
}

pub(crate) fn lindex(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let index = args.integer()?;
    list(key, ListCommand::Index { index })
}

pub(crate) fn lrange(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let start = args.integer()?;
    let stop = args.integer()?;
    list(key, ListCommand::Range { start, stop })
}

pub(crate) fn lset(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let index = args.integer()?;
    let element = args.take()?;
    list(key, ListCommand::Set { index, element })
}

pub(crate) fn lrem(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let count = args.integer()?;
    let element = args.take()?;
    list(key, ListCommand::Rem { count, element })
}

pub(crate) fn ltrim(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let start = args.integer()?;
    let stop = args.integer()?;
    list(key, ListCommand::Trim { start, stop })
}

pub(crate) fn linsert(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let place = args.take()?;
    let before = if is(&place, "before") {
        true
    } else if is(&place, "after") {
        false
    } else {
        return Err(CommandError::Syntax);
    };
    let pivot = args.take()?;
    let element = args.take()?;
    list(
        key,
        ListCommand::Insert {
            before,
            pivot,
            element,
        },
    )
}

pub(crate) fn lpos(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let element = args.take()?;
    let mut rank = 1;
    let mut count = None;
    let mut max_len = 0;
    while let Some(option) = args.take_optional() {
        if args.remaining() == 0 {
            return Err(CommandError::Syntax);
        }
        if is(&option, "rank") {
            rank = args.integer()?;
            if rank == 0 {
                return Err(CommandError::LposRankZero);
            }
        } else if is(&option, "count") {
            count = Some(
                u64::try_from(args.integer()?).map_err(|_| CommandError::LposNegative("COUNT"))?,
            );
        } else if is(&option, "maxlen") {
            max_len =
                u64::try_from(args.integer()?).map_err(|_| CommandError::LposNegative("MAXLEN"))?;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    list(
        key,
        ListCommand::Pos {
            element,
            rank,
            count,
            max_len,
        },
    )
}

fn end(word: &[u8]) -> Result<ListEnd, CommandError> {
    if is(word, "left") {
        Ok(ListEnd::Left)
    } else if is(word, "right") {
        Ok(ListEnd::Right)
    } else {
        Err(CommandError::Syntax)
    }
}

pub(crate) fn lmove(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let destination = args.take()?;
    let from = end(&args.take()?)?;
    let to = end(&args.take()?)?;
    list(
        key,
        ListCommand::Move {
            destination,
            from,
            to,
        },
    )
}

pub(crate) fn rpoplpush(args: &mut Args) -> Result<Command, CommandError> {
    let key = args.take()?;
    let destination = args.take()?;
    list(
        key,
        ListCommand::Move {
            destination,
            from: ListEnd::Right,
            to: ListEnd::Left,
        },
    )
}
