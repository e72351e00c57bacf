//! Parsers of the hash and set commands (`HSET` ... `HRANDFIELD`, `SADD`
//! ... `SRANDMEMBER`): one [`Command::Hash`] or [`Command::SetType`] with
//! the operation and its arguments checked as Redis 7 checks them.

use bytes::Bytes;

use super::args::{Args, check_pairs_fit, is, parse_integer};
use super::error::CommandError;
use super::types::Command;

/// A hash command's operation, arguments parsed.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // named as Redis names the arguments
pub enum HashCommand {
    /// `HSET`/`HMSET` (`legacy`: `HMSET`, which answers `OK`) and
    /// `HSETNX` (`only_new`, one pair).
    Set {
        pairs: Vec<(Bytes, Bytes)>,
        only_new: bool,
        legacy: bool,
    },
    Get {
        field: Bytes,
    },
    MGet {
        fields: Vec<Bytes>,
    },
    Del {
        fields: Vec<Bytes>,
    },
    Exists {
        field: Bytes,
    },
    Len,
    StrLen {
        field: Bytes,
    },
    GetAll,
    Keys,
    Vals,
    IncrBy {
        field: Bytes,
        delta: i64,
    },
    IncrByFloat {
        field: Bytes,
        delta: f64,
    },
    RandField {
        count: Option<i64>,
        with_values: bool,
    },
    /// `HSCAN key cursor [MATCH pattern] [COUNT count]`.
    Scan(ElementScan),
}

/// `HSCAN`/`SSCAN`/`ZSCAN`'s cursor and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementScan {
    /// Where the step starts (0: the beginning).
    pub cursor: u64,
    /// `MATCH pattern`.
    pub pattern: Option<Bytes>,
    /// `COUNT count` (at least 1).
    pub count: Option<u64>,
}

/// `key cursor [MATCH pattern] [COUNT count]`, checked as Redis 7.0's
/// `scanGenericCommand`: a cursor that is not an unsigned integer is
/// "invalid cursor", a COUNT below 1 or an unknown option a syntax error.
pub(crate) fn element_scan(args: &mut Args) -> Result<(Bytes, ElementScan), CommandError> {
    let key = args.take()?;
    let raw_cursor = args.take()?;
    let cursor = std::str::from_utf8(&raw_cursor)
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or(CommandError::InvalidCursor)?;
    let mut scan = ElementScan {
        cursor,
        pattern: None,
        count: None,
    };
    while let Some(option) = args.take_optional() {
        if args.remaining() == 0 {
            return Err(CommandError::Syntax);
        }
        if is(&option, "count") {
            let count = args.integer()?;
            if count < 1 {
                return Err(CommandError::Syntax);
            }
            scan.count = Some(count as u64);
        } else if is(&option, "match") {
            scan.pattern = Some(args.take()?);
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok((key, scan))
}

pub(crate) fn hscan(args: &mut Args) -> Result<Command, CommandError> {
    let (key, scan) = element_scan(args)?;
    Ok(Command::Hash {
        key,
        op: HashCommand::Scan(scan),
    })
}

pub(crate) fn sscan(args: &mut Args) -> Result<Command, CommandError> {
    let (key, scan) = element_scan(args)?;
    Ok(Command::SetType {
        key,
        op: SetCommand::Scan(scan),
    })
}

/// A set command's operation, arguments parsed.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // named as Redis names the arguments
pub enum SetCommand {
    Add {
        members: Vec<Bytes>,
    },
    Rem {
        members: Vec<Bytes>,
    },
    IsMember {
        member: Bytes,
    },
    MIsMember {
        members: Vec<Bytes>,
    },
    Members,
    Card,
    /// `SPOP key [count]`; `count` is at least 0.
    Pop {
        count: Option<u64>,
    },
    RandMember {
        count: Option<i64>,
    },
    /// `SINTER`/`SUNION`/`SDIFF`: the command's key is the first set,
    /// `others` the rest in order.
    Combine {
        how: SetCombination,
        others: Vec<Bytes>,
    },
    /// `SINTERSTORE`/`SUNIONSTORE`/`SDIFFSTORE`: the command's key is the
    /// destination.
    Store {
        how: SetCombination,
        sources: Vec<Bytes>,
    },
    /// `SINTERCARD numkeys key [key ...] [LIMIT limit]`: the command's
    /// key is the first set; `limit` 0 counts all.
    InterCard {
        others: Vec<Bytes>,
        limit: u64,
    },
    /// `SMOVE source destination member`: the command's key is the
    /// source.
    Move {
        destination: Bytes,
        member: Bytes,
    },
    /// `SSCAN key cursor [MATCH pattern] [COUNT count]`.
    Scan(ElementScan),
}

/// How `SINTER`, `SUNION` and `SDIFF` (and their `STORE` forms) combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCombination {
    /// `SINTER`.
    Intersection,
    /// `SUNION`.
    Union,
    /// `SDIFF`.
    Difference,
}

fn hash(args: &mut Args, op: HashCommand) -> Result<Command, CommandError> {
    Ok(Command::Hash {
        key: args.take()?,
        op,
    })
}

fn take_key(args: &mut Args) -> Result<Bytes, CommandError> {
    args.take()
}

pub(crate) fn hset(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let pairs = args.pairs()?;
    Ok(Command::Hash {
        key,
        op: HashCommand::Set {
            pairs,
            only_new: false,
            legacy: false,
        },
    })
}

pub(crate) fn hmset(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let pairs = args.pairs()?;
    Ok(Command::Hash {
        key,
        op: HashCommand::Set {
            pairs,
            only_new: false,
            legacy: true,
        },
    })
}

pub(crate) fn hsetnx(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let pair = (args.take()?, args.take()?);
    Ok(Command::Hash {
        key,
        op: HashCommand::Set {
            pairs: vec![pair],
            only_new: true,
            legacy: false,
        },
    })
}

pub(crate) fn hget(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let field = args.take()?;
    Ok(Command::Hash {
        key,
        op: HashCommand::Get { field },
    })
}

pub(crate) fn hmget(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let fields = args.rest();
    Ok(Command::Hash {
        key,
        op: HashCommand::MGet { fields },
    })
}

pub(crate) fn hdel(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let fields = args.rest();
    Ok(Command::Hash {
        key,
        op: HashCommand::Del { fields },
    })
}

pub(crate) fn hexists(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let field = args.take()?;
    Ok(Command::Hash {
        key,
        op: HashCommand::Exists { field },
    })
}

pub(crate) fn hlen(args: &mut Args) -> Result<Command, CommandError> {
    hash(args, HashCommand::Len)
}

pub(crate) fn hstrlen(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let field = args.take()?;
    Ok(Command::Hash {
        key,
        op: HashCommand::StrLen { field },
    })
}

pub(crate) fn hgetall(args: &mut Args) -> Result<Command, CommandError> {
    hash(args, HashCommand::GetAll)
}

pub(crate) fn hkeys(args: &mut Args) -> Result<Command, CommandError> {
    hash(args, HashCommand::Keys)
}

pub(crate) fn hvals(args: &mut Args) -> Result<Command, CommandError> {
    hash(args, HashCommand::Vals)
}

pub(crate) fn hincrby(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let field = args.take()?;
    let delta = args.integer()?;
    Ok(Command::Hash {
        key,
        op: HashCommand::IncrBy { field, delta },
    })
}

pub(crate) fn hincrbyfloat(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let field = args.take()?;
    let delta = args.float()?;
    if delta.is_nan() {
        return Err(CommandError::NotAFloat);
    }
    if delta.is_infinite() {
        return Err(CommandError::InfiniteIncrement);
    }
    Ok(Command::Hash {
        key,
        op: HashCommand::IncrByFloat { field, delta },
    })
}

/// `HRANDFIELD key [count [WITHVALUES]]`.
pub(crate) fn hrandfield(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let count = if args.remaining() > 0 {
        Some(args.random_count()?)
    } else {
        None
    };
    let with_values = match args.take_optional() {
        Some(word) if is(&word, "withvalues") => true,
        Some(_) => return Err(CommandError::Syntax),
        None => false,
    };
    args.finish()?;
    check_pairs_fit(count, with_values)?;
    Ok(Command::Hash {
        key,
        op: HashCommand::RandField { count, with_values },
    })
}

fn set(args: &mut Args, op: SetCommand) -> Result<Command, CommandError> {
    Ok(Command::SetType {
        key: args.take()?,
        op,
    })
}

pub(crate) fn sadd(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let members = args.rest();
    Ok(Command::SetType {
        key,
        op: SetCommand::Add { members },
    })
}

pub(crate) fn srem(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let members = args.rest();
    Ok(Command::SetType {
        key,
        op: SetCommand::Rem { members },
    })
}

pub(crate) fn sismember(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let member = args.take()?;
    Ok(Command::SetType {
        key,
        op: SetCommand::IsMember { member },
    })
}

pub(crate) fn smismember(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let members = args.rest();
    Ok(Command::SetType {
        key,
        op: SetCommand::MIsMember { members },
    })
}

pub(crate) fn smembers(args: &mut Args) -> Result<Command, CommandError> {
    set(args, SetCommand::Members)
}

pub(crate) fn scard(args: &mut Args) -> Result<Command, CommandError> {
    set(args, SetCommand::Card)
}

/// `SPOP key [count]`: a negative count is Redis's "must be positive".
pub(crate) fn spop(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let count = if args.remaining() > 0 {
        let count = args.integer()?;
        Some(u64::try_from(count).map_err(|_| CommandError::MustBePositive)?)
    } else {
        None
    };
    args.finish()?;
    Ok(Command::SetType {
        key,
        op: SetCommand::Pop { count },
    })
}

pub(crate) fn srandmember(args: &mut Args) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let count = if args.remaining() > 0 {
        Some(args.random_count()?)
    } else {
        None
    };
    args.finish()?;
    Ok(Command::SetType {
        key,
        op: SetCommand::RandMember { count },
    })
}

fn combine(args: &mut Args, how: SetCombination) -> Result<Command, CommandError> {
    let key = take_key(args)?;
    let others = args.rest();
    Ok(Command::SetType {
        key,
        op: SetCommand::Combine { how, others },
    })
}

fn combine_store(args: &mut Args, how: SetCombination) -> Result<Command, CommandError> {
    let destination = take_key(args)?;
    let sources = args.rest();
    Ok(Command::SetType {
        key: destination,
        op: SetCommand::Store { how, sources },
    })
}

pub(crate) fn sinter(args: &mut Args) -> Result<Command, CommandError> {
    combine(args, SetCombination::Intersection)
}

pub(crate) fn sunion(args: &mut Args) -> Result<Command, CommandError> {
    combine(args, SetCombination::Union)
}

pub(crate) fn sdiff(args: &mut Args) -> Result<Command, CommandError> {
    combine(args, SetCombination::Difference)
}

pub(crate) fn sinterstore(args: &mut Args) -> Result<Command, CommandError> {
    combine_store(args, SetCombination::Intersection)
}

pub(crate) fn sunionstore(args: &mut Args) -> Result<Command, CommandError> {
    combine_store(args, SetCombination::Union)
}

pub(crate) fn sdiffstore(args: &mut Args) -> Result<Command, CommandError> {
    combine_store(args, SetCombination::Difference)
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`, checked in Redis
/// 7.0's order: numkeys (a positive integer, at most the arguments left),
/// then the options after the keys.
pub(crate) fn sintercard(args: &mut Args) -> Result<Command, CommandError> {
    let numkeys = parse_integer(&args.take()?)
        .filter(|&count| count > 0)
        .ok_or(CommandError::NumkeysNotPositive)?;
    let numkeys = usize::try_from(numkeys).map_err(|_| CommandError::NumkeysOverArgs)?;
    if numkeys > args.remaining() {
        return Err(CommandError::NumkeysOverArgs);
    }
    let key = take_key(args)?;
    let mut others = Vec::with_capacity(numkeys - 1);
    for _ in 1..numkeys {
        others.push(args.take()?);
    }
    let mut limit = 0;
    while let Some(option) = args.take_optional() {
        if !is(&option, "limit") || args.remaining() == 0 {
            return Err(CommandError::Syntax);
        }
        limit = parse_integer(&args.take()?)
            .and_then(|value| u64::try_from(value).ok())
            .ok_or(CommandError::LposNegative("LIMIT"))?;
    }
    Ok(Command::SetType {
        key,
        op: SetCommand::InterCard { others, limit },
    })
}

pub(crate) fn smove(args: &mut Args) -> Result<Command, CommandError> {
    let source = take_key(args)?;
    let destination = args.take()?;
    let member = args.take()?;
    Ok(Command::SetType {
        key: source,
        op: SetCommand::Move {
            destination,
            member,
        },
    })
}
